//! Many clusters: the registry, and the management resources of a registered cluster under
//! `/api/clusters/{cluster}/…`, served by the same handlers as `/api/admin/…`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

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
            name: "Second".into(),
            description: "a test cluster".into(),
            environment: "testing".into(),
            tags: vec!["eu".into()],
            bootstrap_servers: second.bootstrap(),
            librdkafka: Default::default(),
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
    settings.kafka.admin_timeout_ms = 1500;
    settings.clusters.insert(
        "gone".into(),
        orderflow::clusters::ClusterSettings {
            name: "Gone".into(),
            description: String::new(),
            environment: "testing".into(),
            tags: vec![],
            bootstrap_servers: format!("127.0.0.1:{}", free_port()),
            librdkafka: Default::default(),
        },
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
