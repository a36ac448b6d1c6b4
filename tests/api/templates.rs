//! Cluster templates, and the local clusters made from them: a broker run by the service.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn templates_are_listed_stored_and_give_topics_their_defaults() {
    let home = TestBroker::start(Engine::Memory).await;
    let second = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&home);
    settings.processing.consumers = 0;
    let app = TestApp::spawn(settings).await;
    let (post, delete) = (reqwest::Method::POST, reqwest::Method::DELETE);

    let (_, listed) = app.get_json("/api/templates").await;
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["development", "testing", "production"]);
    let (_, production) = app.get_json("/api/templates/production").await;
    assert_eq!(production["topic_defaults"]["replication_factor"], 3);
    assert_eq!(production["builtin"], true);

    let batch = json!({"id": "batch", "name": "Batch", "topic_defaults": {
        "partitions": 4, "replication_factor": 1, "configs": {"retention.ms": "5000"}}});
    let (status, stored) = send(&app, post.clone(), "/api/templates", Some(batch.clone())).await;
    assert_eq!(
        (status, stored["builtin"].as_bool()),
        (201, Some(false)),
        "{stored}"
    );
    let (status, _) = send(&app, post.clone(), "/api/templates", Some(batch)).await;
    assert_eq!(status, 409);
    let (status, _) = send(&app, delete.clone(), "/api/templates/development", None).await;
    assert_eq!(status, 409, "a built-in template stays");
    let bad = json!({"id": "bad", "name": "Bad", "topic_defaults": {"partitions": 0, "replication_factor": 1}});
    let (status, _) = send(&app, post.clone(), "/api/templates", Some(bad)).await;
    assert_eq!(status, 422);

    // A cluster made with the template: topics created there take its defaults.
    let registration = json!({"id": "batchy", "name": "Batchy", "environment": "testing",
        "bootstrap_servers": second.bootstrap(), "template_id": "batch"});
    let (status, cluster) = send(
        &app,
        post.clone(),
        "/api/clusters",
        Some(registration.clone()),
    )
    .await;
    assert_eq!(
        (status, cluster["template_id"].as_str()),
        (201, Some("batch")),
        "{cluster}"
    );
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (status, defaulted) = send(
        &app,
        post.clone(),
        "/api/clusters/batchy/topics",
        Some(json!({"name": format!("tpl-a-{run}")})),
    )
    .await;
    assert_eq!(status, 201, "{defaulted}");
    assert_eq!(defaulted["partitions"].as_array().unwrap().len(), 4);
    assert_eq!(defaulted["configs"]["retention.ms"]["value"], "5000");
    let (status, explicit) = send(
        &app,
        post.clone(),
        "/api/clusters/batchy/topics",
        Some(json!({"name": format!("tpl-b-{run}"), "partitions": 2, "configs": {"retention.ms": "9000"}})),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        explicit["partitions"].as_array().unwrap().len(),
        2,
        "the request wins"
    );
    assert_eq!(explicit["configs"]["retention.ms"]["value"], "9000");
    let (status, problem) = send(
        &app,
        post.clone(),
        "/api/admin/topics",
        Some(json!({"name": format!("tpl-c-{run}")})),
    )
    .await;
    assert_eq!(status, 422, "without a template, partitions are needed");
    assert_eq!(problem["errors"][0]["field"], "partitions");

    let mut unknown = registration;
    unknown["id"] = json!("other");
    unknown["template_id"] = json!("no-such-template");
    let (status, problem) = send(&app, post.clone(), "/api/clusters", Some(unknown)).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("template_id"))
    );
    let (status, _) = send(&app, delete.clone(), "/api/templates/batch", None).await;
    assert_eq!(status, 204);
    let (status, _) = app.get_json("/api/templates/batch").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_local_cluster_from_the_development_template_is_started_used_and_stopped() {
    let home = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&home);
    settings.processing.consumers = 0;
    let port = free_port();
    let data = tempfile::tempdir().unwrap();
    settings.local_broker.command = tansu_bin().display().to_string();
    settings.local_broker.data_dir = data.path().display().to_string();
    settings.local_broker.cluster_port_min = port;
    settings.local_broker.cluster_port_max = port;
    let app = TestApp::spawn(settings).await;
    let post = reqwest::Method::POST;

    let (status, local) = send(
        &app,
        post.clone(),
        "/api/clusters",
        Some(json!({"name": "Dev Local", "environment": "development", "local": true})),
    )
    .await;
    assert_eq!(status, 201, "{local}");
    assert_eq!(local["local"], true);
    assert_eq!(local["template_id"], "development");
    assert_eq!(local["bootstrap_servers"], format!("127.0.0.1:{port}"));
    assert_eq!(local["status"]["reachable"], false, "not started yet");
    let (_, stopped) = app.get_json("/api/clusters/dev-local/status").await;
    assert_eq!(stopped["state"], "stopped");

    let (status, running) = send(&app, post.clone(), "/api/clusters/dev-local/start", None).await;
    assert_eq!(status, 200, "{running}");
    assert_eq!(running["state"], "running");
    assert_eq!(
        running["storage"], "memory://tansu/",
        "the development template's storage"
    );
    let (status, again) = send(&app, post.clone(), "/api/clusters/dev-local/start", None).await;
    assert_eq!(
        (status, again["code"].as_str()),
        (409, Some("local_broker_state"))
    );
    // Used like any cluster; its topics get the development template's defaults.
    let topic = format!("local-{}", uuid::Uuid::new_v4().simple());
    let (status, created) = send(
        &app,
        post.clone(),
        "/api/clusters/dev-local/topics",
        Some(json!({"name": topic})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["partitions"].as_array().unwrap().len(), 1);
    let (_, described) = app.get_json("/api/clusters/dev-local").await;
    assert_eq!(described["status"]["reachable"], true);

    let (status, halted) = send(&app, post.clone(), "/api/clusters/dev-local/stop", None).await;
    assert_eq!((status, halted["state"].as_str()), (200, Some("stopped")));
    let (_, described) = app.get_json("/api/clusters/dev-local").await;
    assert_eq!(described["status"]["reachable"], false);

    // The range has one port, and it is taken; a cluster that is not local has no broker.
    let (status, _) = send(
        &app,
        post.clone(),
        "/api/clusters",
        Some(json!({"name": "Second Local", "environment": "development", "local": true})),
    )
    .await;
    assert_eq!(status, 409);
    let (status, problem) = send(&app, post.clone(), "/api/clusters/default/start", None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("local_broker_state"))
    );
    let (status, _) = send(
        &app,
        reqwest::Method::DELETE,
        "/api/clusters/dev-local",
        None,
    )
    .await;
    assert_eq!(status, 204);
}
