//! The OpenAPI document and the interactive docs, served by the service itself.

use serde_json::Value;

use crate::helpers::*;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[tokio::test]
async fn every_route_is_documented_and_every_documented_route_is_served() {
    let broker = TestBroker::start(Engine::Memory).await;
    let app = TestApp::spawn(test_settings(&broker)).await;

    let (status, doc) = app.get_json("/api-docs/openapi.json").await;
    assert_eq!(status, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");

    // The routes a user of the README knows, at least, are in the document.
    let mut documented = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if item.get(method).is_some() {
                documented.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    for expected in [
        "POST /api/orders",
        "GET /api/orders",
        "POST /api/orders/bulk",
        "GET /api/orders/{id}",
        "POST /api/orders/{id}/cancel",
        "GET /api/admin/cluster",
        "GET /api/admin/topics",
        "POST /api/admin/topics",
        "PATCH /api/admin/topics/{name}/configs",
        "GET /api/admin/consumer-groups/{id}",
        "POST /api/admin/consumer-groups/{id}/offsets",
        "GET /api/admin/topics/{name}/messages",
        "GET /api/catalog",
        "GET /health/ready",
        "GET /metrics",
    ] {
        assert!(
            documented.iter().any(|d| d == expected),
            "{expected} not documented"
        );
    }

    // Every documented operation reaches a handler (the router's fallback answers an
    // unknown route with "route not found"), and every other method on a documented path is
    // 405: the router serves exactly what the document says. Path parameters get values
    // that exist nowhere; bodies are left out, so nothing changes.
    for (path, item) in paths {
        let concrete = path
            .replace("{id}", "00000000-0000-4000-8000-000000000000")
            .replace("{name}", "no-such-topic-docs-probe");
        for method in METHODS {
            let response = app
                .client
                .request(method.to_uppercase().parse().unwrap(), app.url(&concrete))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            // An event stream (the live feed) never ends: its 200 with the stream's type is
            // the proof that it is routed; the body is not read.
            let streaming = response
                .headers()
                .get("content-type")
                .is_some_and(|v| v == "text/event-stream");
            let body: Value = if streaming {
                Value::Null
            } else {
                response.json().await.unwrap_or(Value::Null)
            };
            if item.get(method).is_some() {
                assert_ne!(status, 405, "{method} {path} documented but not routed");
                assert_ne!(
                    body["detail"], "route not found",
                    "{method} {path} not routed"
                );
            } else {
                assert_eq!(status, 405, "{method} {path} routed but not documented");
            }
        }
    }

    // The catalog lists the same operations.
    let (_, catalog) = app.get_json("/api/catalog").await;
    let mut listed: Vec<String> = serde_json::from_value(catalog["endpoints"].clone()).unwrap();
    listed.sort();
    documented.sort();
    assert_eq!(listed, documented);
    assert_eq!(catalog["docs"], "/docs");

    // Every problem response and the bulk answer refer to the shared schemas.
    let order_post = &paths["/api/orders"]["post"]["responses"];
    assert_eq!(
        order_post["422"]["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
    assert!(order_post["503"]["headers"]["Retry-After"].is_object());
    let bulk =
        &paths["/api/orders/bulk"]["post"]["responses"]["207"]["content"]["application/json"];
    assert_eq!(bulk["schema"]["$ref"], "#/components/schemas/BulkResponse");
    assert!(bulk["example"]["results"].is_array());
    let item = &doc["components"]["schemas"]["BulkItem"]["properties"];
    assert!(
        item["problem"]
            .to_string()
            .contains("#/components/schemas/Problem")
    );
}

#[tokio::test]
async fn the_docs_ui_and_its_assets_come_from_the_service() {
    let broker = TestBroker::start(Engine::Memory).await;
    let app = TestApp::spawn(test_settings(&broker)).await;

    let response = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = response.text().await.unwrap();
    // Every script and stylesheet is a relative path on this service, never a CDN.
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    ] {
        assert!(html.contains(asset), "{asset} not referenced");
        let response = app
            .client
            .get(app.url(&format!("/docs/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        assert!(
            response.bytes().await.unwrap().len() > 100,
            "{asset} is empty"
        );
    }
    let initializer = app
        .client
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        initializer.contains("/api-docs/openapi.json"),
        "{initializer}"
    );
}

/// The GitHub anchor of a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_relative_link_of_the_readme_and_docs_resolves_inside_the_repository() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        files.push(entry.unwrap().path());
    }
    let anchors = |path: &std::path::Path| -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix('#'))
            .map(|l| anchor(l.trim_start_matches('#')))
            .collect()
    };
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(readme.lines().count() <= 250, "the README is a front door");
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (_, rest) in text.match_indices("](").map(|(i, _)| text.split_at(i + 2)) {
            let target = &rest[..rest.find(')').unwrap()];
            if target.starts_with("http") || target.starts_with("mailto:") {
                continue;
            }
            let (path, fragment) = target.split_once('#').unwrap_or((target, ""));
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            let canonical = resolved
                .canonicalize()
                .unwrap_or_else(|_| panic!("{}: {target} does not exist", file.display()));
            assert!(
                canonical.starts_with(root.canonicalize().unwrap()),
                "{}: {target} leaves the repository",
                file.display()
            );
            if !fragment.is_empty() {
                assert!(
                    anchors(&canonical).contains(&fragment.to_string()),
                    "{}: no heading for #{fragment} in {}",
                    file.display(),
                    canonical.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} links found");
}
