//! Many clusters: the registry, and the management resources of a registered cluster under
//! `/api/clusters/{cluster}/…`, served by the same handlers as `/api/admin/…`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

const SECONDS_10: Duration = Duration::from_secs(10);
const TENTH: Duration = Duration::from_millis(100);

#[tokio::test]
async fn a_registered_cluster_is_managed_beside_the_home_one() {
    let home = TestBroker::start(Engine::Memory).await;
    let second = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&home);
    settings.clusters.insert(
        "second".into(),
        orderflow::clusters::ClusterSettings {
            tags: vec!["eu".into()],
            ..cluster("Second", "testing", second.bootstrap())
        },
    );
    let app = TestApp::spawn(settings).await;
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;

    // The registry: home first and default, the other one reachable.
    let (status, described) = send(&app, get.clone(), "/api/clusters/second", None).await;
    assert_eq!(status, 200);
    assert_eq!(described["status"]["reachable"], true, "{described}");
    assert_eq!(described["status"]["brokers"], 1);
    assert_eq!(described["default"], false);
    assert_eq!(described["bootstrap_servers"], second.bootstrap());
    let (_, all) = send(&app, get.clone(), "/api/clusters", None).await;
    let ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["default", "second"]);
    assert_eq!(all[0]["default"], true);
    let (_, testing) = send(&app, get.clone(), "/api/clusters?environment=testing", None).await;
    assert_eq!(testing.as_array().unwrap().len(), 1);
    let (_, tagged) = send(&app, get.clone(), "/api/clusters?tag=eu", None).await;
    assert_eq!(tagged[0]["id"], "second");
    let (status, _) = send(&app, get.clone(), "/api/clusters?status=sleepy", None).await;
    assert_eq!(status, 400);
    let (status, problem) = send(&app, get.clone(), "/api/clusters/nowhere/topics", None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("cluster_not_found"))
    );

    // A topic made on the second cluster is there, not on the home one.
    let topic = format!("second-{}", uuid::Uuid::new_v4().simple());
    let (status, created) = send(
        &app,
        post.clone(),
        "/api/clusters/second/topics",
        Some(json!({"name": topic, "partitions": 2})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["partitions"].as_array().unwrap().len(), 2);
    let (status, _) = send(
        &app,
        get.clone(),
        &format!("/api/clusters/second/topics/{topic}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = send(
        &app,
        get.clone(),
        &format!("/api/admin/topics/{topic}"),
        None,
    )
    .await;
    assert_eq!(status, 404, "the home cluster is unchanged");

    // Messages on the second cluster, read back straight from its broker.
    let (status, produced) = send(
        &app,
        post.clone(),
        &format!("/api/clusters/second/topics/{topic}/messages"),
        Some(json!({"records": [{"key": "k1", "value": {"hello": "second"}, "partition": 1}]})),
    )
    .await;
    assert_eq!(status, 200, "{produced}");
    let records = read_topic(&second.bootstrap(), &topic, 1).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].value["hello"], "second");
    let (_, browsed) = send(
        &app,
        get.clone(),
        &format!("/api/clusters/second/topics/{topic}/messages?partition=1&offset=0"),
        None,
    )
    .await;
    assert_eq!(browsed["records"][0]["key"], "k1", "{browsed}");

    // The service's own topics are protected on its home cluster only.
    let orders = app.settings.topics.orders.name.clone();
    let (status, _) = send(
        &app,
        post.clone(),
        "/api/clusters/second/topics",
        Some(json!({"name": orders, "partitions": 1})),
    )
    .await;
    assert_eq!(status, 201);
    let write = json!({"records": [{"key": "k", "value": "v"}]});
    let (status, _) = send(
        &app,
        post.clone(),
        &format!("/api/clusters/second/topics/{orders}/messages"),
        Some(write.clone()),
    )
    .await;
    assert_eq!(
        status, 200,
        "a topic of the same name elsewhere is not the service's"
    );
    let (status, problem) = send(
        &app,
        post.clone(),
        &format!("/api/clusters/default/topics/{orders}/messages"),
        Some(write),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("topic_protected"))
    );

    // The home cluster by its id is /api/admin.
    let (_, by_id) = send(&app, get.clone(), "/api/clusters/default/topics", None).await;
    let (_, short) = send(&app, get.clone(), "/api/admin/topics", None).await;
    let names = |v: &Value| {
        let mut n: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&by_id), names(&short));
    assert!(names(&short).contains(&orders));
}

#[tokio::test]
async fn an_unreachable_cluster_shows_unhealthy_and_its_routes_answer_503() {
    let home = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&home);
    settings.kafka.admin_timeout = Duration::from_millis(1500);
    settings.clusters.insert(
        "gone".into(),
        cluster("Gone", "testing", format!("127.0.0.1:{}", free_port())),
    );
    let app = TestApp::spawn(settings).await;
    let started = Instant::now();
    let (status, gone) = app.get_json("/api/clusters/gone").await;
    assert_eq!(status, 200);
    assert_eq!(gone["status"]["reachable"], false);
    assert!(gone["status"]["error"].is_string());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the check is bounded"
    );
    let (_, unhealthy) = app.get_json("/api/clusters?status=unreachable").await;
    assert_eq!(unhealthy.as_array().unwrap().len(), 1);
    let (status, problem) = app.get_json("/api/clusters/gone/topics").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (503, Some("kafka_unavailable"))
    );
}

#[tokio::test]
async fn clusters_registered_at_run_time_are_shared_by_instances_and_kept_across_restarts() {
    let home = TestBroker::start(Engine::Memory).await;
    let second = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&home);
    settings.processing.consumers = 0;
    let mut first = TestApp::spawn(settings.clone()).await;
    let other = TestApp::spawn(another_instance(&settings)).await;
    let (get, post, put, delete) = (
        reqwest::Method::GET,
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    );

    let registration = json!({
        "name": "Second Cluster",
        "environment": "testing",
        "tags": ["eu"],
        "bootstrap_servers": second.bootstrap(),
    });
    let response = first
        .client
        .post(first.url("/api/clusters"))
        .json(&registration)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.headers()["location"],
        "/api/clusters/second-cluster"
    );
    let registered: Value = response.json().await.unwrap();
    assert_eq!(
        registered["id"], "second-cluster",
        "the id is made from the name"
    );
    assert_eq!(registered["source"], "registered");
    assert_eq!(registered["status"]["reachable"], true, "{registered}");
    let (status, problem) = send(
        &first,
        post.clone(),
        "/api/clusters",
        Some(registration.clone()),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("already_exists"))
    );

    // Refused registrations change nothing: a literal secret, a bad id, bad servers.
    let mut literal = registration.clone();
    literal["id"] = json!("leaky");
    literal["librdkafka"] = json!({"sasl.password": "hunter2"});
    let (status, problem) = send(&first, post.clone(), "/api/clusters", Some(literal)).await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["field"], "librdkafka.sasl.password");
    assert!(!problem.to_string().contains("hunter2"));
    for (field, value) in [
        ("id", json!("Bad_Id")),
        ("bootstrap_servers", json!("no-port")),
    ] {
        let mut bad = registration.clone();
        bad["id"] = json!("fine-id");
        bad[field] = value;
        let (status, _) = send(&first, post.clone(), "/api/clusters", Some(bad)).await;
        assert_eq!(status, 422, "{field}");
    }

    // An unreachable cluster may be registered, with its secret as a reference.
    let dark = json!({
        "id": "dark",
        "name": "Dark",
        "environment": "testing",
        "bootstrap_servers": format!("127.0.0.1:{}", free_port()),
        "librdkafka": {"sasl.password": "${ORDERFLOW_SECRET_TEST_UNSET}"},
    });
    let (status, dark_view) = send(&first, post.clone(), "/api/clusters", Some(dark)).await;
    assert_eq!(status, 201);
    assert_eq!(dark_view["status"]["reachable"], false);
    assert!(
        dark_view["status"]["error"]
            .as_str()
            .unwrap()
            .contains("ORDERFLOW_SECRET_TEST_UNSET"),
        "{dark_view}"
    );
    let (_, listed) = send(&first, get.clone(), "/api/clusters", None).await;
    assert_eq!(
        listed.as_array().unwrap().len(),
        3,
        "home, second-cluster, dark: {listed}"
    );

    // The other instance knows both, and can use the second one.
    poll_until(
        "the other instance never saw the registration",
        SECONDS_10,
        TENTH,
        || async {
            match send(&other, get.clone(), "/api/clusters/dark", None).await {
                (200, _) => Ok(()),
                (status, body) => Err(format!("{status} {body}")),
            }
        },
    )
    .await;
    let topic = format!("shared-{}", uuid::Uuid::new_v4().simple());
    let (status, _) = send(
        &other,
        post.clone(),
        "/api/clusters/second-cluster/topics",
        Some(json!({"name": topic, "partitions": 1})),
    )
    .await;
    assert_eq!(status, 201);

    // Changes: a registered cluster changes; the home one does not.
    let mut changed = registration.clone();
    changed["description"] = json!("now described");
    let (status, view) = send(
        &first,
        put.clone(),
        "/api/clusters/second-cluster",
        Some(changed),
    )
    .await;
    assert_eq!(
        (status, view["description"].as_str()),
        (200, Some("now described"))
    );
    let (status, _) = send(
        &first,
        put.clone(),
        "/api/clusters/default",
        Some(registration.clone()),
    )
    .await;
    assert_eq!(status, 409);
    let (status, _) = send(&first, delete.clone(), "/api/clusters/default", None).await;
    assert_eq!(status, 409);

    // The registry topic holds no secret value, only the reference.
    let records = read_topic(&home.bootstrap(), &settings.topics.clusters.name, 3).await;
    let text = serde_json::to_string(&records.iter().map(|r| r.value.clone()).collect::<Vec<_>>())
        .unwrap();
    assert!(text.contains("${ORDERFLOW_SECRET_TEST_UNSET}"));

    // A restart keeps every registration, known as soon as the instance is ready.
    first.stop().await;
    let restarted = TestApp::spawn(settings.clone()).await;
    let (status, kept) = send(
        &restarted,
        get.clone(),
        "/api/clusters/second-cluster",
        None,
    )
    .await;
    assert_eq!(
        (status, kept["description"].as_str()),
        (200, Some("now described"))
    );
    // Its secret is not set on this instance: unusable from here, which is a 503 (every
    // operation documents it), not a fault of the request.
    let (status, problem) = send(&restarted, get.clone(), "/api/clusters/dark/topics", None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (503, Some("kafka_unavailable"))
    );
    let (status, _) = send(&restarted, delete.clone(), "/api/clusters/dark", None).await;
    assert_eq!(status, 204);
    let (status, _) = send(&restarted, get.clone(), "/api/clusters/dark", None).await;
    assert_eq!(status, 404);
    let (status, problem) = send(&restarted, get.clone(), "/api/clusters/dark/topics", None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("cluster_not_found"))
    );
}

#[tokio::test]
async fn a_key_limited_to_some_clusters_is_refused_on_the_others() {
    use orderflow::http::auth::Scope;
    use orderflow::http::auth::keys::{self, KeyEntry};
    let home = TestBroker::start(Engine::Memory).await;
    let dev = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&home);
    settings.clusters.insert(
        "dev-1".into(),
        cluster("Dev 1", "development", dev.bootstrap()),
    );
    let key = keys::generate().unwrap();
    settings.auth.mode = orderflow::http::auth::AuthMode::Keys;
    settings.auth.keys = vec![KeyEntry {
        name: "dev-operator".into(),
        sha256: keys::hex(&keys::digest(&key)),
        scopes: vec![Scope::AdminRead, Scope::AdminWrite],
        rate_per_second: None,
        burst: None,
        clusters: vec!["dev-*".into()],
    }];
    let app = TestApp::spawn(settings).await;
    let get = |path: &str| {
        app.client
            .get(app.url(path))
            .header("authorization", format!("Bearer {key}"))
            .send()
    };
    assert_eq!(
        get("/api/clusters/dev-1/topics").await.unwrap().status(),
        200
    );
    for path in [
        "/api/clusters/default/topics",
        "/api/admin/topics",
        "/api/admin/cluster",
    ] {
        let refused = get(path).await.unwrap();
        assert_eq!(refused.status(), 403, "{path}");
        let problem: Value = refused.json().await.unwrap();
        assert_eq!(problem["code"], "forbidden");
        assert!(
            problem["detail"].as_str().unwrap().contains("\"default\""),
            "{problem}"
        );
    }
    let refusals = app
        .metric(
            "orderflow_access_refusals_total",
            &[("key", "dev-operator"), ("reason", "forbidden")],
        )
        .await;
    assert_eq!(refusals, 3.0);
}

#[tokio::test]
async fn compare_finds_topics_on_one_side_and_configs_that_differ() {
    let (_home, _second, settings) = two_clusters().await;
    let app = TestApp::spawn(settings).await;
    let post = reqwest::Method::POST;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let [only_home, only_second, differing, same] =
        ["a", "b", "c", "d"].map(|t| format!("cmp-{t}-{run}"));
    let create = |cluster: &'static str, body: Value| {
        let app = &app;
        let post = post.clone();
        async move {
            let (status, answer) = send(
                app,
                post,
                &format!("/api/clusters/{cluster}/topics"),
                Some(body),
            )
            .await;
            assert_eq!(status, 201, "{answer}");
        }
    };
    create("default", json!({"name": only_home, "partitions": 1})).await;
    create("second", json!({"name": only_second, "partitions": 1})).await;
    create(
        "default",
        json!({"name": differing, "partitions": 2, "configs": {"retention.ms": "1000"}}),
    )
    .await;
    create(
        "second",
        json!({"name": differing, "partitions": 1, "configs": {"retention.ms": "2000"}}),
    )
    .await;
    create("default", json!({"name": same, "partitions": 1})).await;
    create("second", json!({"name": same, "partitions": 1})).await;
    // One record per request: Tansu's memory watermarks are right for single-record batches.
    for n in 0..3 {
        let (status, _) = send(
            &app,
            post.clone(),
            &format!("/api/admin/topics/{differing}/messages"),
            Some(json!({"records": [{"key": format!("k{n}"), "value": "v", "partition": 0}]})),
        )
        .await;
        assert_eq!(status, 200);
    }

    let (status, diff) = app
        .get_json("/api/operations/compare?source_cluster=default&target_cluster=second&include_data=true")
        .await;
    assert_eq!(status, 200, "{diff}");
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let only_source = names(&diff["topics_only_in_source"]);
    assert!(only_source.contains(&only_home), "{diff}");
    assert!(
        only_source.contains(&app.settings.topics.orders.name),
        "the service's topics are on home only"
    );
    assert_eq!(
        names(&diff["topics_only_in_target"]),
        vec![only_second.clone()]
    );
    let differences = diff["topics_with_different_config"].as_array().unwrap();
    assert_eq!(differences.len(), 1, "only {differing} differs: {diff}");
    assert_eq!(differences[0]["topic"], differing.as_str());
    assert_eq!(
        differences[0]["partitions"],
        json!({"source": 2, "target": 1})
    );
    let retention = differences[0]["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "retention.ms")
        .expect("retention.ms differs");
    assert_eq!(
        (retention["source"].as_str(), retention["target"].as_str()),
        (Some("1000"), Some("2000"))
    );
    assert_eq!(
        diff["message_counts"][&differing],
        json!({"source": 3, "target": 0})
    );
    assert_eq!(diff["message_counts"][&only_second]["source"], Value::Null);
    assert_eq!(diff["summary"]["topics_in_both"], 2);
    assert_eq!(diff["summary"]["identical_topics"], 1);
    assert_eq!(diff["summary"]["equal"], false);

    let (_, itself) = app
        .get_json("/api/operations/compare?source_cluster=second&target_cluster=second")
        .await;
    assert_eq!(itself["summary"]["equal"], true, "{itself}");
    assert!(itself.get("message_counts").is_none());
    let (status, problem) = app
        .get_json("/api/operations/compare?source_cluster=default&target_cluster=elsewhere")
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("cluster_not_found"))
    );
}
