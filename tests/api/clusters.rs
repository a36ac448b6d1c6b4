//! Many clusters: the registry, and the management resources of a registered cluster under
//! `/api/clusters/{cluster}/…`, served by the same handlers as `/api/admin/…`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

/// A cluster's settings for the registry.
fn cluster(
    name: &str,
    environment: &str,
    bootstrap_servers: String,
) -> orderflow::clusters::ClusterSettings {
    orderflow::clusters::ClusterSettings {
        name: name.into(),
        description: String::new(),
        environment: environment.into(),
        tags: vec![],
        bootstrap_servers,
        librdkafka: Default::default(),
        template_id: None,
        local: None,
    }
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.client.request(method, app.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

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
    assert_eq!(browsed[0]["key"], "k1");

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
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = send(&other, get.clone(), "/api/clusters/dark", None).await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the other instance never saw the registration"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    let home = TestBroker::start(Engine::Memory).await;
    let second = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&home);
    settings.clusters.insert(
        "second".into(),
        cluster("Second", "testing", second.bootstrap()),
    );
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

async fn wait_finished(app: &TestApp, location: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, operation) = app.get_json(location).await;
        assert_eq!(status, 200, "{operation}");
        if !["pending", "running"].contains(&operation["status"].as_str().unwrap()) {
            return operation;
        }
        assert!(
            Instant::now() < deadline,
            "operation never finished: {operation}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn replicate_creates_the_topic_structure_on_the_targets_as_a_tracked_operation() {
    let home = TestBroker::start(Engine::Memory).await;
    let second = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&home);
    settings.processing.consumers = 0;
    settings.clusters.insert(
        "second".into(),
        cluster("Second", "testing", second.bootstrap()),
    );
    let app = TestApp::spawn(settings.clone()).await;
    let other = TestApp::spawn(another_instance(&settings)).await;
    let post = reqwest::Method::POST;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (wide, narrow, later) = (
        format!("rep-w-{run}"),
        format!("rep-n-{run}"),
        format!("rep-l-{run}"),
    );
    for (name, partitions) in [(&wide, 3), (&narrow, 1), (&later, 2)] {
        let (status, _) = send(
            &app,
            post.clone(),
            "/api/admin/topics",
            Some(json!({"name": name, "partitions": partitions, "configs": {"retention.ms": "3600000"}})),
        )
        .await;
        assert_eq!(status, 201);
    }

    let request = json!({"source_cluster_id": "default", "target_cluster_ids": ["second"], "topics": [wide, narrow]});
    let response = app
        .client
        .post(app.url("/api/operations/replicate"))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let accepted: Value = response.json().await.unwrap();
    assert_eq!(accepted["operation_type"], "replicate");
    assert!(["pending", "running", "completed"].contains(&accepted["status"].as_str().unwrap()));
    let done = wait_finished(&app, &location).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["progress_percent"], 100.0);
    let results = done["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert!(
        results
            .iter()
            .all(|r| r["outcome"] == "created" && r["target"] == "second"),
        "{done}"
    );
    let (status, copied) = app
        .get_json(&format!("/api/clusters/second/topics/{wide}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(copied["partitions"].as_array().unwrap().len(), 3);
    // Only configs set on the topic are copied, never the broker's defaults. Tansu 0.6.0
    // reports a topic's overrides as defaults (Apache Kafka says DYNAMIC_TOPIC_CONFIG), so
    // here the expected set is whatever the source reports as set on the topic.
    let wide_result = results
        .iter()
        .find(|r| r["topic"] == wide.as_str())
        .unwrap();
    let (_, source) = app.get_json(&format!("/api/admin/topics/{wide}")).await;
    let set_on_topic: serde_json::Map<String, Value> = source["configs"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, c)| c["source"] == "topic" || c["is_default"] == false)
        .map(|(name, c)| (name.clone(), c["value"].clone()))
        .collect();
    assert_eq!(wide_result["configs"].as_object().unwrap(), &set_on_topic);
    for (name, value) in &set_on_topic {
        assert_eq!(
            &copied["configs"][name]["value"], value,
            "config {name} copied"
        );
    }

    // Any instance answers for it; a second run finds the topics there; a dry run changes nothing.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, seen) = other.get_json(&location).await;
        if status == 200 && seen["status"] == "completed" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the other instance never saw it: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = app
        .client
        .post(app.url("/api/operations/replicate"))
        .json(&request)
        .send()
        .await
        .unwrap();
    let again = wait_finished(&app, again.headers()["location"].to_str().unwrap()).await;
    assert!(
        again["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["outcome"] == "exists"),
        "{again}"
    );
    let dry = json!({"source_cluster_id": "default", "target_cluster_ids": ["second"], "topics": [later], "dry_run": true});
    let dry = app
        .client
        .post(app.url("/api/operations/replicate"))
        .json(&dry)
        .send()
        .await
        .unwrap();
    let dry = wait_finished(&app, dry.headers()["location"].to_str().unwrap()).await;
    assert_eq!(dry["results"][0]["outcome"], "would_create");
    let (status, _) = app
        .get_json(&format!("/api/clusters/second/topics/{later}"))
        .await;
    assert_eq!(status, 404, "a dry run creates nothing");

    let (_, listed) = app.get_json("/api/operations").await;
    assert_eq!(listed.as_array().unwrap().len(), 3);
    let (status, problem) = send(&app, reqwest::Method::DELETE, &location, None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("conflict")),
        "a finished operation"
    );
    let (status, _) = app
        .get_json(&format!("/api/operations/{}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(status, 404);
    let bad = json!({"source_cluster_id": "default", "target_cluster_ids": ["default"]});
    let (status, _) = send(&app, post.clone(), "/api/operations/replicate", Some(bad)).await;
    assert_eq!(status, 422, "the source is not a target");
    let unknown = json!({"source_cluster_id": "default", "target_cluster_ids": ["nowhere"]});
    let (status, problem) = send(
        &app,
        post.clone(),
        "/api/operations/replicate",
        Some(unknown),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("cluster_not_found"))
    );

    // An operation whose instance died mid-way shows as interrupted, not running for ever.
    let orphan = json!({
        "id": "orphan", "operation_type": "replicate", "source_cluster_id": "default",
        "target_cluster_ids": ["second"], "topics": [], "overwrite_configs": false, "dry_run": false,
        "status": "running", "progress_percent": 40.0, "results": [],
        "created_at": "2026-01-01T00:00:00Z", "started_at": "2026-01-01T00:00:00Z", "finished_at": null,
        "heartbeat_at": "2026-01-01T00:00:05Z", "cancel_requested": false
    });
    produce_raw(
        &home.bootstrap(),
        &settings.topics.operations.name,
        &[(Some("orphan"), orphan.to_string().as_bytes())],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, seen) = app.get_json("/api/operations/orphan").await;
        if status == 200 {
            assert_eq!(seen["status"], "interrupted");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the orphan record was never read"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_cancelled_operation_stops_and_says_so() {
    let home = TestBroker::start(Engine::Memory).await;
    // The target's broker takes requests but its answers are held back, so the operation
    // is still at work when the cancel arrives.
    let target = TestBroker::start_behind_proxy(Engine::Memory).await;
    let mut settings = test_settings(&home);
    settings.processing.consumers = 0;
    settings.kafka.admin_timeout = Duration::from_millis(3_000);
    settings.clusters.insert(
        "slow".into(),
        cluster("Slow", "testing", target.bootstrap()),
    );
    let app = TestApp::spawn(settings).await;
    target.hold_answers(true);
    let request = json!({"source_cluster_id": "default", "target_cluster_ids": ["slow"]});
    let response = app
        .client
        .post(app.url("/api/operations/replicate"))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, cancelling) = send(&app, reqwest::Method::DELETE, &location, None).await;
    assert_eq!(status, 202, "{cancelling}");
    assert_eq!(cancelling["cancel_requested"], true);
    let started = Instant::now();
    let stopped = wait_finished(&app, &location).await;
    assert_eq!(stopped["status"], "cancelled", "{stopped}");
    assert!(stopped["progress_percent"].as_f64().unwrap() < 100.0);
    assert!(stopped["finished_at"].is_string());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the cancel did not wait for the target"
    );
    target.hold_answers(false);
}

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
async fn migrate_copies_every_record_and_translates_group_offsets() {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let home = TestBroker::start(Engine::Memory).await;
    let second = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&home);
    settings.processing.consumers = 0;
    settings.clusters.insert(
        "second".into(),
        cluster("Second", "testing", second.bootstrap()),
    );
    let app = TestApp::spawn(settings).await;
    let post = reqwest::Method::POST;
    let topic = format!("mig-{}", uuid::Uuid::new_v4().simple());
    for cluster_id in ["default", "second"] {
        let (status, _) = send(
            &app,
            post.clone(),
            &format!("/api/clusters/{cluster_id}/topics"),
            Some(json!({"name": topic, "partitions": 3})),
        )
        .await;
        assert_eq!(status, 201);
    }
    // One record per send, awaited: Tansu's memory watermarks are right for single-record
    // batches (see BROKER.md), and the copy stops at the watermarks it read at the start.
    let producer = |bootstrap: String| -> FutureProducer {
        rdkafka::ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("linger.ms", "0")
            .create()
            .unwrap()
    };
    let source = producer(home.bootstrap());
    let records = 3000;
    for i in 0..records {
        let headers = rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
            key: "origin",
            value: Some("home"),
        });
        let (key, value) = (format!("k{i}"), format!("{{\"n\":{i}}}"));
        source
            .send(
                FutureRecord::to(&topic)
                    .key(&key)
                    .payload(&value)
                    .partition(i % 3)
                    .timestamp(1_700_000_000_000 + i64::from(i))
                    .headers(headers),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    // The target already holds 10 records in each partition, so offsets really move.
    let target = producer(second.bootstrap());
    for i in 0..30 {
        target
            .send(
                FutureRecord::to(&topic)
                    .key("old")
                    .payload("old")
                    .partition(i % 3),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    let (status, _) = send(
        &app,
        post.clone(),
        "/api/admin/consumer-groups/mig-readers/offsets",
        Some(json!({"topic": topic, "to": "offset", "offset": 100})),
    )
    .await;
    assert_eq!(status, 200);

    let request = json!({"source_cluster_id": "default", "target_cluster_id": "second",
        "topics": [topic], "include_consumer_groups": true});
    let response = app
        .client
        .post(app.url("/api/operations/migrate"))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let done = wait_finished(&app, &location).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["records_total"], records);
    assert_eq!(done["records_copied"], records);
    assert_eq!(done["progress_percent"], 100.0);
    assert_eq!(done["results"][0]["outcome"], "copied");
    assert_eq!(done["groups"][0]["group"], "mig-readers");
    assert_eq!(done["groups"][0]["outcome"], "committed", "{done}");

    // Every record is on the target, read back by a plain consumer.
    let copied = read_topic(&second.bootstrap(), &topic, records as usize + 30).await;
    assert_eq!(copied.len(), records as usize + 30);
    let mut numbers: Vec<i64> = copied
        .iter()
        .filter(|r| r.key.as_deref() != Some("old"))
        .map(|r| r.value["n"].as_i64().unwrap())
        .collect();
    numbers.sort();
    assert_eq!(numbers, (0..i64::from(records)).collect::<Vec<_>>());
    // Same partition, key, value, headers and timestamp.
    let (_, first) = app
        .get_json(&format!(
            "/api/clusters/second/topics/{topic}/messages?partition=1&offset=10&limit=1"
        ))
        .await;
    assert_eq!(first[0]["key"], "k1");
    assert_eq!(first[0]["value"], json!({"n": 1}));
    assert_eq!(first[0]["headers"]["origin"], "home");
    assert_eq!(first[0]["timestamp_ms"], 1_700_000_000_001_i64);
    // The group resumes where it stopped: source offset 100 is target offset 110.
    let (_, group) = app
        .get_json("/api/clusters/second/consumer-groups/mig-readers")
        .await;
    let offsets: Vec<i64> = group["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["committed_offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, [110, 110, 110], "{group}");
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

#[tokio::test]
async fn a_cancelled_migrate_stops_and_says_how_far_it_got() {
    let home = TestBroker::start(Engine::Memory).await;
    let target = TestBroker::start_behind_proxy(Engine::Memory).await;
    let mut settings = test_settings(&home);
    settings.processing.consumers = 0;
    settings.kafka.admin_timeout = Duration::from_millis(3_000);
    settings.clusters.insert(
        "slow".into(),
        cluster("Slow", "testing", target.bootstrap()),
    );
    let app = TestApp::spawn(settings).await;
    let topic = format!("mig-cancel-{}", uuid::Uuid::new_v4().simple());
    for cluster_id in ["default", "slow"] {
        let (status, _) = send(
            &app,
            reqwest::Method::POST,
            &format!("/api/clusters/{cluster_id}/topics"),
            Some(json!({"name": topic, "partitions": 3})),
        )
        .await;
        assert_eq!(status, 201);
    }
    // Enough records that the copy is still running when it is cancelled.
    let producer: rdkafka::producer::FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", home.bootstrap())
        .set("linger.ms", "20")
        .create()
        .unwrap();
    let sends = (0..300_000).map(|i| {
        let key = format!("k{i}");
        let producer = producer.clone();
        let topic = topic.clone();
        async move {
            producer
                .send(
                    rdkafka::producer::FutureRecord::to(&topic)
                        .key(&key)
                        .payload("v"),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| e)
        }
    });
    for sent in futures::future::join_all(sends).await {
        sent.unwrap();
    }

    let request =
        json!({"source_cluster_id": "default", "target_cluster_id": "slow", "topics": [topic]});
    let response = app
        .client
        .post(app.url("/api/operations/migrate"))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    // Once some records are across, the target stops answering and the migrate is cancelled.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, operation) = app.get_json(&location).await;
        if operation["records_copied"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            ["pending", "running"].contains(&operation["status"].as_str().unwrap()),
            "{operation}"
        );
        assert!(Instant::now() < deadline, "nothing was copied: {operation}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    target.hold_answers(true);
    let (status, _) = send(&app, reqwest::Method::DELETE, &location, None).await;
    assert_eq!(status, 202);
    let stopped = wait_finished(&app, &location).await;
    target.hold_answers(false);
    assert_eq!(stopped["status"], "cancelled", "{stopped}");
    let (copied, total) = (
        stopped["records_copied"].as_u64().unwrap(),
        stopped["records_total"].as_u64().unwrap(),
    );
    assert!(
        copied > 0 && copied < total,
        "how far it got: {copied} of {total}"
    );
    assert!(stopped["progress_percent"].as_f64().unwrap() < 100.0);
}
