//! What an attacker tried: a cluster-restricted key reaching past its clusters through an
//! alias, code and files loaded through a cluster's options, environment variables sent to a
//! caller's broker, orders stuck after the broker lost its data, floods of operations, local
//! brokers and refusals, and a body that never comes.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use orderflow::http::auth::Scope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app
        .client
        .request(method, app.url(path))
        .headers(bearer(key));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn registration(id: &str, bootstrap: &str) -> Value {
    json!({"id": id, "name": id, "environment": "development", "bootstrap_servers": bootstrap})
}

#[tokio::test]
async fn a_cluster_restricted_key_reaches_only_its_clusters_whatever_an_entry_is_called() {
    let home = TestBroker::start(Engine::Memory).await;
    let dev = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&home);
    settings.processing.consumers = 0;
    let (admin, admin_entry) = key("admin", &[Scope::AdminRead, Scope::AdminWrite]);
    let (dev_key, mut dev_entry) = key("dev-only", &[Scope::AdminRead, Scope::AdminWrite]);
    dev_entry.clusters = vec!["dev-*".into()];
    keys_mode(&mut settings, vec![admin_entry, dev_entry]);
    let app = TestApp::spawn(settings.clone()).await;

    // The restricted key cannot define a connection; the unrestricted one can.
    let (status, _) = call(
        &app,
        Method::POST,
        "/api/clusters",
        &dev_key,
        Some(registration("dev-a", &dev.bootstrap())),
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/clusters",
        &admin,
        Some(registration("dev-a", &dev.bootstrap())),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // One Kafka cluster, one entry: the home cluster's brokers under another id are refused.
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/clusters",
        &admin,
        Some(registration("dev-b", &home.bootstrap())),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("already_exists")),
        "{body}"
    );
    assert!(
        body["detail"].as_str().unwrap().contains("default"),
        "{body}"
    );

    // It lists the clusters it reaches, reads templates and operations, and is refused the rest.
    let (status, listed) = call(&app, Method::GET, "/api/clusters", &dev_key, None).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["dev-a"]);
    for path in ["/api/templates", "/api/operations"] {
        let (status, body) = call(&app, Method::GET, path, &dev_key, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, _) = call(&app, Method::GET, "/api/admin/topics", &dev_key, None).await;
    assert_eq!(status, 403);

    // It may rename its cluster, but not point it elsewhere.
    let mut renamed = registration("dev-a", &dev.bootstrap());
    renamed["description"] = json!("renamed by its team");
    let (status, body) = call(
        &app,
        Method::PUT,
        "/api/clusters/dev-a",
        &dev_key,
        Some(renamed),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &app,
        Method::PUT,
        "/api/clusters/dev-a",
        &dev_key,
        Some(registration("dev-a", &home.bootstrap())),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );

    // An alias of the home cluster written to the registry by other means (as before this
    // fix) is judged by what it reaches: the home cluster.
    let forged = json!({"settings": {"name": "x", "environment": "development", "bootstrap_servers": home.bootstrap()}, "changed_at": "2026-11-30T00:00:00Z"});
    produce_raw(
        &home.bootstrap(),
        &settings.topics.clusters.name,
        &[(Some("dev-x"), forged.to_string().as_bytes())],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while call(&app, Method::GET, "/api/clusters/dev-x", &admin, None)
        .await
        .0
        != 200
    {
        assert!(Instant::now() < deadline, "the forged entry was never read");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dlq = format!("/api/clusters/dev-x/topics/{}", settings.topics.dlq.name);
    let (status, body) = call(&app, Method::DELETE, &dlq, &dev_key, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let (status, body) = call(&app, Method::DELETE, &dlq, &admin, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("topic_protected")),
        "{body}"
    );
    let audit = format!(
        "/api/clusters/dev-x/topics/{}/messages?force=true",
        settings.topics.audit.name
    );
    let (status, body) = call(
        &app,
        Method::POST,
        &audit,
        &admin,
        Some(json!({"records": [{"value": {"forged": true}}]})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("topic_protected")),
        "{body}"
    );
    // The home cluster still has its topic.
    let (status, _) = call(
        &app,
        Method::GET,
        &format!("/api/admin/topics/{}", settings.topics.dlq.name),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200);
}

/// A shared library whose constructor writes `marker` when the process loads it.
fn library_that_marks(dir: &std::path::Path, marker: &std::path::Path) -> std::path::PathBuf {
    let source = dir.join("mark.c");
    std::fs::write(
        &source,
        format!(
            "#include <stdio.h>\n__attribute__((constructor)) static void mark(void) {{ FILE *f = fopen(\"{}\", \"w\"); if (f) fclose(f); }}\n",
            marker.display()
        ),
    )
    .unwrap();
    let library = dir.join("libmark.so");
    let built = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&library)
        .arg(&source)
        .status()
        .expect("a C compiler (the build of librdkafka needs one too)");
    assert!(built.success());
    library
}

#[tokio::test]
async fn options_from_the_api_load_no_code_open_no_file_and_read_no_variable_the_operator_did_not_allow()
 {
    let home = TestBroker::start(Engine::Memory).await;
    let dev = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&home);
    settings.processing.consumers = 0;
    let app = TestApp::spawn(settings.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("loaded");
    let library = library_that_marks(dir.path(), &marker);
    // SAFETY: variables only this test reads.
    unsafe { std::env::set_var("ORDERFLOW_SECRET_DEV_PASSWORD", "allowed") };

    for (name, value) in [
        ("plugin.library.paths", library.display().to_string()),
        ("ssl.engine.location", library.display().to_string()),
        ("ssl.ca.location", "/etc/shadow".to_string()),
        ("ssl.keystore.location", "/etc/shadow".to_string()),
        ("sasl.kerberos.kinit.cmd", "touch /tmp/x".to_string()),
        ("sasl.password", "${HOME}".to_string()),
        ("sasl.password", "${STAGING_KAFKA_PASSWORD}".to_string()),
        (
            "sasl.username",
            "${ORDERFLOW_SECRET_DEV_PASSWORD}".to_string(),
        ),
    ] {
        let mut body = registration("dev-opts", &dev.bootstrap());
        body["librdkafka"] = json!({ name: value });
        let response = app.post_json("/api/clusters", &body).await;
        assert_eq!(response.status(), 422, "{name} = {value}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(
            problem["errors"][0]["field"],
            format!("librdkafka.{name}"),
            "{problem}"
        );
        assert!(!problem.to_string().contains("shadow:"), "{problem}");
    }
    assert!(!marker.exists(), "the service process loaded the library");
    let (status, _) = app.get_json("/api/clusters/dev-opts").await;
    assert_eq!(status, 404, "nothing was registered");

    // What a connection needs passes, with the secret from an allowed variable.
    let mut body = registration("dev-opts", &dev.bootstrap());
    body["librdkafka"] =
        json!({"socket.timeout.ms": "30000", "sasl.password": "${ORDERFLOW_SECRET_DEV_PASSWORD}"});
    let response = app.post_json("/api/clusters", &body).await;
    assert_eq!(response.status(), 201);

    // An entry written to the registry topic by other means is held to the same rules when
    // it is used: its variable is not read.
    let forged = json!({"settings": {"name": "x", "environment": "development", "bootstrap_servers": dev.bootstrap(), "librdkafka": {"sasl.password": "${HOME}"}}, "changed_at": "2026-11-30T00:00:00Z"});
    produce_raw(
        &home.bootstrap(),
        &settings.topics.clusters.name,
        &[(Some("forged"), forged.to_string().as_bytes())],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let view = loop {
        let (status, view) = app.get_json("/api/clusters/forged").await;
        if status == 200 {
            break view;
        }
        assert!(Instant::now() < deadline, "the forged entry was never read");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(view["status"]["reachable"], false, "{view}");
    assert!(
        view["status"]["error"]
            .as_str()
            .unwrap()
            .contains("not a variable the operator allows"),
        "{view}"
    );
}

/// A cluster definition from the API names a schema registry the service then sends
/// requests to: only under URLs the operator allows, with its password as an allowed
/// `${NAME}` reference; an entry forged onto the registry topic is held to the same rules
/// when it is used, and no request goes out.
#[tokio::test]
async fn a_registered_cluster_s_schema_registry_is_one_the_operator_allows() {
    let home = TestBroker::start(Engine::Memory).await;
    let dev = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&home);
    settings.processing.consumers = 0;
    // A listener standing in for a metadata endpoint: it must never be called.
    let trap = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let trap_url = format!("http://{}/latest/meta-data/", trap.local_addr().unwrap());
    let allowed = "http://registry.internal:8081/".to_string();
    settings.admin.schema_registry_urls = vec![allowed.clone()];
    let app = TestApp::spawn(settings.clone()).await;
    // SAFETY: a variable only this test reads.
    unsafe { std::env::set_var("ORDERFLOW_SECRET_REGISTRY_PASSWORD", "allowed") };

    for (field, registry) in [
        ("schema_registry.url", json!({"url": trap_url})),
        ("schema_registry.url", json!({"url": "file:///etc/passwd"})),
        (
            "schema_registry.url",
            json!({"url": "http://registry.internal:8081.evil.example/"}),
        ),
        (
            "schema_registry.password",
            json!({"url": allowed, "password": "plain-secret"}),
        ),
        (
            "schema_registry.password",
            json!({"url": allowed, "password": "${HOME}"}),
        ),
        (
            "schema_registry.username",
            json!({"url": allowed, "username": "${HOME}"}),
        ),
    ] {
        let mut body = registration("dev-registry", &dev.bootstrap());
        body["schema_registry"] = registry.clone();
        let response = app.post_json("/api/clusters", &body).await;
        assert_eq!(response.status(), 422, "{registry}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
        assert!(!problem.to_string().contains("plain-secret"), "{problem}");
    }
    let mut body = registration("dev-registry", &dev.bootstrap());
    body["schema_registry"] =
        json!({"url": format!("{allowed}sr"), "password": "${ORDERFLOW_SECRET_REGISTRY_PASSWORD}"});
    let response = app.post_json("/api/clusters", &body).await;
    assert_eq!(response.status(), 201);

    // Forged onto the registry topic: refused when used, before any request is sent.
    let forged = json!({"settings": {"name": "x", "environment": "development", "bootstrap_servers": dev.bootstrap(), "schema_registry": {"url": trap_url}}, "changed_at": "2026-11-30T00:00:00Z"});
    produce_raw(
        &home.bootstrap(),
        &settings.topics.clusters.name,
        &[(Some("forged-registry"), forged.to_string().as_bytes())],
    )
    .await;
    let (status, problem) = poll_until(
        "the forged entry was never read",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async {
            match app
                .get_json("/api/clusters/forged-registry/topics/any/messages")
                .await
            {
                (404, body) if body["code"] == "cluster_not_found" => Err(body.to_string()),
                other => Ok(other),
            }
        },
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("admin.schema_registry_urls"),
        "{problem}"
    );
    let called = tokio::time::timeout(Duration::from_millis(300), trap.accept()).await;
    assert!(called.is_err(), "a request went to the forged registry URL");
}

#[tokio::test]
async fn orders_accepted_after_the_broker_lost_its_data_are_processed() {
    // The memory engine loses everything on a restart, as a broker that lost its disk does;
    // it does not answer a fetch past the end with OFFSET_OUT_OF_RANGE, as Kafka does.
    let mut broker = TestBroker::start(Engine::Memory).await;
    let settings = test_settings(&broker);
    let app = TestApp::spawn(settings).await;
    let template = |id: &str| json!({"id": id, "name": id, "topic_defaults": {"partitions": 1, "replication_factor": 1, "configs": {}}});
    for i in 0..3 {
        let created = app
            .post_json("/api/templates", &template(&format!("before-{i}")))
            .await;
        assert_eq!(created.status(), 201);
    }
    for _ in 0..12 {
        let id = app.place(&valid_order()).await;
        app.wait_status(&id, "COMPLETED").await;
    }
    broker.stop();
    broker.spawn().await;
    // The service makes its topics again; the processors' positions are past their ends.
    app.wait_ready().await;
    let mut placed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while placed.len() < 6 {
        let response = app.post_json("/api/orders", &valid_order()).await;
        if response.status() == 202 {
            let body: Value = response.json().await.unwrap();
            placed.push(body["order_id"].as_str().unwrap().to_string());
        } else {
            assert!(Instant::now() < deadline, "orders are not accepted again");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    for id in &placed {
        app.wait_status(id, "COMPLETED").await;
    }
    // The compacted tables read what is written after the loss, too.
    let created = app.post_json("/api/templates", &template("after")).await;
    assert_eq!(created.status(), 201);
    let (status, _) = app.get_json("/api/templates/after").await;
    assert_eq!(status, 200);
    let total = app
        .metric("orderflow_kafka_consumer_offset_resets_total", &[])
        .await;
    assert!(total >= 1.0, "the reset is counted");
}

#[tokio::test]
async fn operations_beyond_the_bound_wait_as_pending_and_then_are_refused() {
    let home = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&home);
    settings.processing.consumers = 0;
    settings.kafka.admin_timeout = Duration::from_millis(3_000);
    settings.admin.max_running_operations = 1;
    settings.admin.max_pending_operations = 1;
    // A target that never answers keeps an operation running for the admin timeout.
    settings
        .clusters
        .insert("dark".into(), unreachable_cluster());
    let app = TestApp::spawn(settings).await;
    let body = json!({"source_cluster_id": "default", "target_cluster_ids": ["dark"]});
    let first = app.post_json("/api/operations/replicate", &body).await;
    assert_eq!(first.status(), 202);
    let second = app.post_json("/api/operations/replicate", &body).await;
    assert_eq!(second.status(), 202);
    let second: Value = second.json().await.unwrap();
    let third = app.post_json("/api/operations/replicate", &body).await;
    assert_eq!(third.status(), 503);
    assert!(third.headers().contains_key("retry-after"));
    let third: Value = third.json().await.unwrap();
    assert_eq!(third["code"], "overloaded");
    let (_, waiting) = app
        .get_json(&format!(
            "/api/operations/{}",
            second["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(waiting["status"], "pending", "{waiting}");
    // It runs once the first has ended.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, now) = app
            .get_json(&format!(
                "/api/operations/{}",
                second["id"].as_str().unwrap()
            ))
            .await;
        if now["status"] != "pending" {
            break;
        }
        assert!(Instant::now() < deadline, "the waiting operation never ran");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn local_brokers_are_bounded() {
    let home = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&home);
    settings.processing.consumers = 0;
    let data = tempfile::tempdir().unwrap();
    settings.local_broker.command = tansu_bin().display().to_string();
    settings.local_broker.data_dir = data.path().display().to_string();
    settings.local_broker.cluster_port_min = free_port_pair();
    settings.local_broker.cluster_port_max = settings.local_broker.cluster_port_min + 1;
    settings.local_broker.max_clusters = 1;
    let app = TestApp::spawn(settings).await;
    for name in ["Dev One", "Dev Two"] {
        let response = app
            .post_json(
                "/api/clusters",
                &json!({"name": name, "environment": "development", "local": true}),
            )
            .await;
        assert_eq!(response.status(), 201);
    }
    let started = app
        .post_json("/api/clusters/dev-one/start", &json!({}))
        .await;
    assert_eq!(started.status(), 200);
    let refused = app
        .post_json("/api/clusters/dev-two/start", &json!({}))
        .await;
    assert_eq!(refused.status(), 409);
    let problem: Value = refused.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("max_clusters"),
        "{problem}"
    );
    let (_, status) = app.get_json("/api/clusters/dev-two/status").await;
    assert_eq!(status["state"], "stopped");
    let stopped = app
        .post_json("/api/clusters/dev-one/stop", &json!({}))
        .await;
    assert_eq!(stopped.status(), 200);
}

#[tokio::test]
async fn refusals_are_audited_in_aggregate_and_unauthenticated_callers_share_a_bucket() {
    let broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    settings.processing.consumers = 0;
    settings.auth.audit_refusal_window = Duration::from_secs(2);
    settings.auth.rate_limit.unauthenticated_per_second = 1;
    settings.auth.rate_limit.unauthenticated_burst = 30;
    let (admin, entry) = key("admin", &[Scope::AdminRead, Scope::AdminWrite]);
    keys_mode(&mut settings, vec![entry]);
    let app = TestApp::spawn(settings.clone()).await;

    let mut statuses = Vec::new();
    for _ in 0..40 {
        let response = app
            .client
            .get(app.url("/api/admin/topics"))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    // The shared bucket holds 30: the rest are 429 whatever the address.
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        30,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        10,
        "{statuses:?}"
    );

    // A topic created by a key: its record names the topic and the cluster.
    let topic = format!("audited-{}", uuid::Uuid::new_v4().simple());
    let (status, _) = call(
        &app,
        Method::POST,
        "/api/admin/topics",
        &admin,
        Some(json!({"name": topic, "partitions": 1})),
    )
    .await;
    assert_eq!(status, 201);

    // 30 refusals: the first at once, the other 29 as one record when the window ends.
    let records: Vec<Value> = read_topic(&broker.bootstrap(), &settings.topics.audit.name, 3)
        .await
        .into_iter()
        .map(|r| r.value)
        .collect();
    assert_eq!(records.len(), 3, "{records:?}");
    let refusals: Vec<&Value> = records.iter().filter(|r| r["status"] == 401).collect();
    assert_eq!(refusals.len(), 2, "{records:?}");
    assert!(refusals.iter().any(|r| r.get("repeated").is_none()));
    assert!(refusals.iter().any(|r| r["repeated"] == 29), "{refusals:?}");
    let created = records.iter().find(|r| r["status"] == 201).unwrap();
    assert_eq!(
        created["parameters"]["details"]["name"],
        topic.as_str(),
        "{created}"
    );
    assert_eq!(created["parameters"]["cluster"], "default", "{created}");
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_refused_at_once() {
    let broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    settings.processing.consumers = 0;
    let app = TestApp::spawn(settings).await;
    let address = app.address.trim_start_matches("http://").to_string();
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        stream
            .write_all(b"POST /api/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n")
            .unwrap();
        let started = Instant::now();
        let mut answer = vec![0u8; 4096];
        let read = stream.read(&mut answer).unwrap_or(0);
        (String::from_utf8_lossy(&answer[..read]).to_string(), started.elapsed())
    })
    .await
    .unwrap();
    assert!(answer.0.starts_with("HTTP/1.1 413"), "{}", answer.0);
    assert!(answer.0.contains("payload_too_large"), "{}", answer.0);
    assert!(
        answer.1 < Duration::from_secs(1),
        "answered after {:?}",
        answer.1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_the_status_view_makes_the_service_not_ready_and_loses_nothing() {
    // The real binary in a mount namespace of its own, its status view on a small tmpfs
    // that the test fills (through /proc/<pid>/root) and then frees.
    let broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("view");
    std::fs::create_dir(&mount).unwrap();
    settings.status_view.path = mount.join("view.db").display().to_string();
    let port = free_port();
    let service = crate::lifecycle::service_command(&broker, &settings, port);
    let mut command = std::process::Command::new("unshare");
    command
        .args([
            "-m",
            "sh",
            "-c",
            r#"mount -t tmpfs -o size=8m tmpfs "$0" && exec "$1""#,
        ])
        .arg(&mount)
        .arg(service.get_program());
    for (name, value) in service.get_envs() {
        if let Some(value) = value {
            command.env(name, value);
        }
    }
    command.stdin(std::process::Stdio::null());
    kill_with_parent(&mut command);
    let mut child = command.spawn().expect("unshare (util-linux) as root");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    crate::lifecycle::wait_ready(&client, &base).await;

    // Fill what is left of the tmpfs, as seen by the service.
    let filler = std::path::PathBuf::from(format!("/proc/{}/root", child.id()))
        .join(mount.strip_prefix("/").unwrap())
        .join("filler");
    {
        let mut file = std::fs::File::create(&filler).expect("the service's tmpfs");
        let block = vec![7u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
    }
    let mut placed = Vec::new();
    for _ in 0..3 {
        let orders = json!({"orders": vec![valid_order(); 500]});
        let answer: Value = client
            .post(format!("{base}/api/orders/bulk"))
            .json(&orders)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        placed.extend(
            answer["results"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|r| r["order_id"].as_str().map(String::from)),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = client
            .get(format!("{base}/health/ready"))
            .send()
            .await
            .unwrap();
        if ready.status() == 503 {
            let body: Value = ready.json().await.unwrap();
            assert!(
                body["reason"].as_str().unwrap().contains("status view"),
                "{body}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "still ready with its disk full");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    std::fs::remove_file(&filler).unwrap();
    crate::lifecycle::wait_ready(&client, &base).await;
    for id in placed.iter().step_by(97) {
        wait_status(&client, &base, id, "COMPLETED").await;
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn requests_beyond_the_in_flight_bound_are_refused_on_every_route_but_the_probes() {
    let home = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&home);
    // Orders stay PENDING, so a long-poll for their outcome holds its place until it ends.
    settings.processing.consumers = 0;
    settings.http.max_concurrent_requests = 2;
    let app = TestApp::spawn(settings).await;
    let id = app.place(&valid_order()).await;
    let hold = |app: &TestApp| {
        let request = app
            .client
            .get(app.url(&format!("/api/orders/{id}?wait_for=COMPLETED&timeout=3s")))
            .send();
        async move { request.await.unwrap().status().as_u16() }
    };
    let held = tokio::spawn({
        let first = hold(&app);
        let second = hold(&app);
        async move { tokio::join!(first, second) }
    });
    // Both long-polls are in flight once a third request on their route is refused.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let (status, _) = app.get_json(&format!("/api/orders/{id}")).await;
        if status == 503 {
            break;
        }
        assert!(Instant::now() < deadline, "the bound was never reached");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The bound is the instance's, not each route's: another route is refused too.
    let other = app.post_json("/api/orders", &valid_order()).await;
    assert_eq!(other.status(), 503);
    assert!(other.headers().contains_key("retry-after"));
    let other: Value = other.json().await.unwrap();
    assert_eq!(other["code"], "overloaded");
    // The probes and /metrics still answer: an overloaded instance is alive.
    let (live, _) = app.get_json("/health/live").await;
    assert_eq!(live, 200);
    let (ready, readiness) = app.get_json("/health/ready").await;
    assert_eq!(ready, 200, "{readiness}");
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert_eq!(
        held.await.unwrap(),
        (200, 200),
        "the held long-polls end normally"
    );
    let (after, order) = app.get_json(&format!("/api/orders/{id}")).await;
    assert_eq!(after, 200, "the places are free again");
    assert_eq!(order["status"], "PENDING");
}
