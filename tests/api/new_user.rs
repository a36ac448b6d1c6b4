//! What a new user ran into, following the README: the customer feed, a bulk over the
//! burst, settings from the environment, every codec, the words of 503s and conflicts,
//! readiness, the command line and the local runner.

use std::time::{Duration, Instant};

use orderflow::http::auth::Scope;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_feed_starts_now_without_last_event_id() {
    let broker = TestBroker::start(Engine::Memory).await;
    let app = TestApp::spawn(test_settings(&broker)).await;
    let mut order = valid_order();
    order["customer_id"] = "feed-now".into();
    let old = app.place(&order).await;
    app.wait_status(&old, "COMPLETED").await;

    let mut feed = app
        .client
        .get(app.url("/api/orders/events?customer_id=feed-now"))
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    let new = app.place(&order).await;
    app.wait_status(&new, "COMPLETED").await;
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while text.matches("data: ").count() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, feed.chunk()).await {
            Ok(Ok(Some(bytes))) => text.push_str(&String::from_utf8_lossy(&bytes)),
            other => panic!("three events did not come: {other:?}; got {text:?}"),
        }
    }
    assert!(!text.contains(&old), "the past was replayed: {text}");
    assert_eq!(text.matches(&new).count(), 3, "{text}");
}

#[tokio::test]
async fn a_bulk_larger_than_the_burst_is_told_it_can_never_pass() {
    let broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    settings.processing.consumers = 0;
    let (writer, mut entry) = key("small", &[Scope::OrdersWrite]);
    entry.rate_per_second = Some(1);
    entry.burst = Some(3);
    keys_mode(&mut settings, vec![entry]);
    let app = TestApp::spawn(settings).await;
    let bulk = |n: usize| json!({ "orders": vec![valid_order(); n] });
    for _ in 0..3 {
        let response = app
            .client
            .post(app.url("/api/orders/bulk"))
            .headers(bearer(&writer))
            .json(&bulk(4))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 429);
        assert!(!response.headers().contains_key("retry-after"));
        let problem: Value = response.json().await.unwrap();
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("at most 3 orders"),
            "{problem}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_settings_come_from_the_environment_as_json_or_comma_separated() {
    let broker = TestBroker::start(Engine::Memory).await;
    let settings = test_settings(&broker);
    let port = free_port();
    let mut command = crate::lifecycle::service_command(&broker, &settings, port);
    command
        .env("ORDERFLOW__ORDERS__CURRENCIES", r#"["EUR","USD"]"#)
        .env(
            "ORDERFLOW__HTTP__CORS__ALLOWED_ORIGINS",
            "https://a.example, https://b.example",
        );
    let mut child = command.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    crate::lifecycle::wait_ready(&client, &base).await;
    let mut order = valid_order();
    order["currency"] = "GBP".into();
    let refused = client
        .post(format!("{base}/api/orders"))
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let preflight = client
        .request(reqwest::Method::OPTIONS, format!("{base}/api/orders"))
        .header("origin", "https://b.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://b.example"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_offered_codec_carries_orders_end_to_end_and_a_wrong_one_is_named() {
    let broker = TestBroker::start(Engine::Memory).await;
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let mut settings = test_settings(&broker);
        settings.producer.compression = codec.into();
        // One processor: this is about the codec, not the group's rebalance at each start.
        settings.processing.consumers = 1;
        let mut app = TestApp::spawn(settings).await;
        let id = app.place(&valid_order()).await;
        app.wait_status(&id, "COMPLETED").await;
        app.stop().await;
    }
    let mut settings = test_settings(&broker);
    settings.producer.compression = "brotli".into();
    let error = match orderflow::app::Application::build(
        settings,
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    {
        Ok(_) => panic!("an unknown codec was taken"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("producer.compression"), "{error}");
}

#[tokio::test]
async fn a_503_from_an_unreachable_cluster_says_what_a_retry_does() {
    let home = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&home);
    settings.processing.consumers = 0;
    settings.kafka.admin_timeout = Duration::from_millis(1_500);
    settings
        .clusters
        .insert("dark".into(), unreachable_cluster());
    let app = TestApp::spawn(settings).await;
    let read = app
        .client
        .get(app.url("/api/clusters/dark/topics"))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 503);
    assert!(read.headers().contains_key("retry-after"));
    let detail = read.json::<Value>().await.unwrap()["detail"].to_string();
    assert!(detail.contains("only reads"), "{detail}");
    assert!(!detail.contains("order"), "{detail}");
    let write = app
        .post_json(
            "/api/clusters/dark/topics",
            &json!({"name": "t", "partitions": 1}),
        )
        .await;
    assert_eq!(write.status(), 503);
    let detail = write.json::<Value>().await.unwrap()["detail"].to_string();
    assert!(
        detail.contains("whether this change took effect"),
        "{detail}"
    );
    assert!(!detail.contains("order"), "{detail}");
}

#[tokio::test]
async fn a_reused_order_id_is_named_and_the_example_order_can_be_sent_twice() {
    let broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    settings.processing.consumers = 0;
    let app = TestApp::spawn(settings).await;
    let mut order = valid_order();
    order["order_id"] = uuid::Uuid::new_v4().to_string().into();
    assert_eq!(app.post_json("/api/orders", &order).await.status(), 202);
    order["customer_id"] = "someone-else".into();
    let conflict = app.post_json("/api/orders", &order).await;
    assert_eq!(conflict.status(), 422);
    let problem: Value = conflict.json().await.unwrap();
    assert_eq!(problem["code"], "idempotency_conflict");
    assert!(
        problem["detail"].as_str().unwrap().contains("order_id"),
        "{problem}"
    );
    assert!(
        !problem["detail"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key")
    );

    let (_, document) = app.get_json("/api-docs/openapi.json").await;
    let example = &document["paths"]["/api/orders"]["post"]["requestBody"]["content"]["application/json"]
        ["example"];
    assert!(example.is_object(), "{example}");
    assert!(example.get("order_id").is_none(), "{example}");
    for _ in 0..2 {
        assert_eq!(app.post_json("/api/orders", example).await.status(), 202);
    }
}

#[tokio::test]
async fn a_replication_factor_above_the_brokers_is_an_invalid_request() {
    let broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    settings.processing.consumers = 0;
    let app = TestApp::spawn(settings).await;
    let response = app
        .post_json(
            "/api/admin/topics",
            &json!({"name": "too-many-replicas", "partitions": 1, "replication_factor": 3}),
        )
        .await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "kafka_invalid_request");
    let (_, document) = app.get_json("/api-docs/openapi.json").await;
    let answers = &document["paths"]["/api/admin/topics"]["post"]["responses"];
    assert!(
        answers["422"]["description"]
            .as_str()
            .unwrap()
            .contains("replication factor"),
        "{answers}"
    );
}

#[tokio::test]
async fn ready_means_every_processor_has_its_share() {
    let broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    settings.processing.consumers = 3;
    let app = TestApp::spawn(settings).await;
    let assigned = app
        .metric(
            "orderflow_kafka_consumer_rebalances_total",
            &[("kind", "assign")],
        )
        .await;
    assert!(assigned >= 3.0, "ready after {assigned} assignments");
}

fn orderflow(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_command_line_has_help_version_and_usage_on_errors() {
    let help = orderflow(&["keys", "new", "--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("--scopes") && text.contains("--name"),
        "{text}"
    );
    let version = orderflow(&["--version"]);
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
    let missing = orderflow(&["keys", "new", "--name", "x"]);
    assert_eq!(missing.status.code(), Some(2));
    let text = String::from_utf8_lossy(&missing.stderr);
    assert!(
        text.contains("--scopes") && text.contains("Usage"),
        "{text}"
    );
    let made = orderflow(&["keys", "new", "--name", "ci", "--scopes", "orders:write"]);
    assert!(made.status.success());
    assert!(String::from_utf8_lossy(&made.stdout).contains("sha256 = "));
}

#[tokio::test]
async fn run_local_refuses_a_port_in_use_and_says_what_holds_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let data = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/run-local.sh"))
        .env("BROKER_PORT", port.to_string())
        .env("ORDERFLOW_DATA_DIR", data.path())
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("the script stops at once")
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains(&format!("port {port} is in use")), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_from_any_folder_on_its_built_in_defaults() {
    let broker = TestBroker::start(Engine::Memory).await;
    let settings = test_settings(&broker);
    let elsewhere = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = crate::lifecycle::service_command(&broker, &settings, port);
    command
        .env_remove("ORDERFLOW_CONFIG_DIR")
        .current_dir(elsewhere.path());
    let mut child = command.spawn().unwrap();
    let client = reqwest::Client::new();
    crate::lifecycle::wait_ready(&client, &format!("http://127.0.0.1:{port}")).await;
    let _ = child.kill();
    let _ = child.wait();

    // A named environment whose file is not there is an error that names it.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .current_dir(elsewhere.path())
        .env("ORDERFLOW_ENV", "staging")
        .env("ORDERFLOW__KAFKA__BOOTSTRAP_SERVERS", broker.bootstrap())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(
        text.contains("staging.toml") && text.contains("ORDERFLOW_ENV"),
        "{text}"
    );
}
