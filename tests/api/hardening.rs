//! The service under attack and under broker faults: nothing crashes it, nothing hangs it.
//! Crash tests run the real binary as a child process and check it still serves afterwards.

use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;
use crate::lifecycle::{start_service_process, wait_ready};

/// Panics unless the child process is still running.
fn assert_alive(child: &mut Child) {
    if let Some(status) = child.try_wait().expect("wait on the service") {
        panic!("the service exited: {status:?}");
    }
}

/// Places orders until one is accepted and reaches a final status, for up to `within`.
async fn wait_until_an_order_completes(client: &reqwest::Client, base: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let response = client
            .post(format!("{base}/api/orders"))
            .json(&valid_order())
            .send()
            .await;
        if let Ok(response) = response
            && response.status() == 202
        {
            let body: Value = response.json().await.unwrap();
            let id = body["order_id"].as_str().unwrap().to_string();
            let view = wait_status(client, base, &id, "COMPLETED").await;
            assert_eq!(view["status"], "COMPLETED", "{view}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no order completed in {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_topics_cannot_be_deleted_through_its_api_even_with_force() {
    let broker = TestBroker::start(Engine::Memory).await;
    let (settings, mut child, base, client) = start_service_process(&broker).await;

    for topic in [
        &settings.topics.orders.name,
        &settings.topics.status.name,
        &settings.topics.dlq.name,
    ] {
        for query in ["", "?force=true"] {
            let response = client
                .delete(format!("{base}/api/admin/topics/{topic}{query}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 409, "{topic}{query}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["code"], "topic_protected");
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_alive(&mut child);
    wait_until_an_order_completes(&client, &base, Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_restarts_empty_under_a_stream_of_orders_does_not_crash_the_service() {
    // Memory storage: a restart loses every topic, which is the fault under test. Tansu then
    // answers fetches of the vanished topics with a zero topic id and a "current leader",
    // which unpatched librdkafka 2.12.1 dereferenced as a NULL topic name (SIGSEGV).
    let mut broker = TestBroker::start(Engine::Memory).await;
    let (_, mut child, base, client) = start_service_process(&broker).await;
    wait_until_an_order_completes(&client, &base, Duration::from_secs(20)).await;

    let streaming = {
        let (client, url) = (client.clone(), format!("{base}/api/orders"));
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(12);
            let mut answers = 0;
            while Instant::now() < deadline {
                if client.post(&url).json(&valid_order()).send().await.is_ok() {
                    answers += 1;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answers
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    broker.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    broker.spawn().await;
    // The crash came about 4 s after the broker returned; watch well past that.
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_alive(&mut child);
    }
    assert!(
        streaming.await.unwrap() > 0,
        "no answer while the broker was away"
    );

    // The topics are recreated (topics.create is on) and the service comes back by itself:
    // ready, and taking orders again. (Processing is not checked here: the members commit
    // their old positions to the new broker on revoke, and Tansu never answers a fetch
    // beyond the log end with OFFSET_OUT_OF_RANGE, so the processors wait until the new log
    // passes those offsets; Apache Kafka answers it and the consumer resets to earliest.)
    wait_ready(&client, &base).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = client
            .post(format!("{base}/api/orders"))
            .json(&valid_order())
            .send()
            .await
            .unwrap();
        if response.status() == 202 {
            break;
        }
        assert_eq!(response.status(), 503);
        assert!(Instant::now() < deadline, "intake never came back");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_alive(&mut child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_topic_deleted_behind_its_back_is_recreated_and_readiness_recovers() {
    let broker = TestBroker::start(Engine::Memory).await;
    let (settings, mut child, base, client) = start_service_process(&broker).await;

    delete_topic_directly(&broker.bootstrap(), &settings.topics.status.name).await;
    // The watcher checks every 5 s and recreates at once, so the window in which readiness
    // says "topics missing" can be shorter than a poll (this test once missed it); the
    // recreation itself is counted, and readiness must then recover.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut recreated = 0.0;
    while Instant::now() < deadline && recreated < 1.0 {
        recreated = Scrape::fetch(&client, &base)
            .await
            .value("orderflow_topics_recreated_total", &[]);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(recreated, 1.0, "the deleted topic was not recreated");
    wait_ready(&client, &base).await;
    wait_until_an_order_completes(&client, &base, Duration::from_secs(40)).await;
    assert_alive(&mut child);
}

/// Deletes a topic with a plain admin client, as an operator's tool would.
async fn delete_topic_directly(bootstrap: &str, topic: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let results = admin
        .delete_topics(&[topic], &AdminOptions::new())
        .await
        .unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_input_that_kafka_cannot_take_is_refused_with_a_4xx() {
    let broker = TestBroker::start(Engine::Memory).await;
    let app = TestApp::spawn(test_settings(&broker)).await;
    let client = &app.client;
    let topic = format!("hard-{}", uuid::Uuid::new_v4().simple());
    let created = app
        .post_json(
            "/api/admin/topics",
            &json!({"name": topic, "partitions": 1}),
        )
        .await;
    assert_eq!(created.status(), 201);

    let cases: Vec<(reqwest::Method, String, Option<Value>, u16)> = vec![
        (
            reqwest::Method::POST,
            format!("/api/admin/topics/{topic}/partitions"),
            Some(json!({"count": 488143})),
            409,
        ),
        (
            reqwest::Method::POST,
            "/api/admin/topics".into(),
            Some(json!({"name": "huge", "partitions": 2147483646})),
            422,
        ),
        (
            reqwest::Method::POST,
            "/api/admin/topics".into(),
            Some(json!({"name": "big", "partitions": 100000})),
            409,
        ),
        (
            reqwest::Method::POST,
            "/api/admin/topics".into(),
            Some(json!({"name": "cfg", "partitions": 1, "configs": {"": "1"}})),
            422,
        ),
        (
            reqwest::Method::PATCH,
            format!("/api/admin/topics/{topic}/configs"),
            Some(json!({"configs": {"retention\u{0}.ms": "1"}})),
            422,
        ),
        (
            reqwest::Method::PATCH,
            format!("/api/admin/topics/{topic}/configs"),
            Some(json!({"configs": {"retention.ms": "1\u{0}"}})),
            422,
        ),
        (
            reqwest::Method::GET,
            "/api/admin/topics/%00".into(),
            None,
            404,
        ),
        (
            reqwest::Method::DELETE,
            "/api/admin/topics/%00".into(),
            None,
            404,
        ),
        (
            reqwest::Method::GET,
            "/api/admin/consumer-groups/%0A".into(),
            None,
            404,
        ),
    ];
    for (method, path, body, expected) in cases {
        let mut request = client.request(method.clone(), app.url(&path));
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        let text = response.text().await.unwrap();
        assert_eq!(status, expected, "{method} {path} {body:?}: {text}");
        assert_eq!(content_type, "application/problem+json", "{method} {path}");
    }
    // Nothing was created by the refused requests, and the cluster still answers.
    let (status, topics) = app.get_json("/api/admin/topics").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = topics
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(!names.contains(&"huge") && !names.contains(&"big") && !names.contains(&"cfg"));
    let (status, described) = app.get_json(&format!("/api/admin/topics/{topic}")).await;
    assert_eq!(status, 200);
    assert_eq!(described["partitions"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_group_with_members_cannot_be_deleted() {
    let broker = TestBroker::start(Engine::Memory).await;
    let app = TestApp::spawn(test_settings(&broker)).await;
    let group = &app.settings.processing.group_id;
    // Tansu lists a group only once it has committed offsets: process one order first.
    let first = app.place(&valid_order()).await;
    app.wait_status(&first, "COMPLETED").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = app
            .get_json(&format!("/api/admin/consumer-groups/{group}"))
            .await;
        if status == 200 && body["members"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        let (_, groups) = app.get_json("/api/admin/consumer-groups").await;
        assert!(
            Instant::now() < deadline,
            "group never had members: {body} {groups}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let response = app
        .client
        .delete(app.url(&format!("/api/admin/consumer-groups/{group}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "conflict", "{body}");
    // Processing goes on.
    let id = app.place(&valid_order()).await;
    assert_eq!(
        app.wait_status(&id, "COMPLETED").await["status"],
        "COMPLETED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_after_a_stored_write_then_a_retry_with_the_same_key_gives_one_order_one_outcome() {
    // Memory storage behind a proxy that can hold the broker's answers back: the order is
    // stored, its acknowledgement never arrives in time, and the client hears 503.
    let broker = TestBroker::start_behind_proxy(Engine::Memory).await;
    let app = TestApp::spawn(test_settings(&broker)).await;
    let warm = app.place(&valid_order()).await;
    app.wait_status(&warm, "COMPLETED").await;

    let key = format!("retry-{}", uuid::Uuid::new_v4());
    let order = valid_order();
    let post = || {
        app.client
            .post(app.url("/api/orders"))
            .header("idempotency-key", &key)
            .json(&order)
            .send()
    };
    broker.hold_answers(true);
    let first = post().await.unwrap();
    assert_eq!(first.status(), 503);
    assert!(first.headers().contains_key("retry-after"));
    let problem: Value = first.json().await.unwrap();
    assert_eq!(problem["code"], "kafka_unavailable");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("outcome of a write is unknown"),
        "{problem}"
    );
    broker.hold_answers(false);

    // The client retries as the answer says, until the order is accepted.
    let deadline = Instant::now() + Duration::from_secs(30);
    let accepted: Value = loop {
        let response = post().await.unwrap();
        if response.status() == 202 {
            break response.json().await.unwrap();
        }
        assert_eq!(response.status(), 503);
        assert!(Instant::now() < deadline, "the retry was never accepted");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let id = accepted["order_id"].as_str().unwrap().to_string();
    let view = app.wait_status(&id, "COMPLETED").await;
    assert_eq!(view["status"], "COMPLETED", "{view}");

    // Both writes are on Kafka (the first was stored despite the 503) under one order id...
    let settings = &app.settings;
    let orders = read_topic(&broker.bootstrap(), &settings.topics.orders.name, 3).await;
    let copies = orders
        .iter()
        .filter(|r| r.key.as_deref() == Some(&id))
        .count();
    assert_eq!(copies, 2, "the first write should have been stored");
    // ...and they make one order with one final status.
    let statuses = read_topic(&broker.bootstrap(), &settings.topics.status.name, 1).await;
    let finals: Vec<&str> = statuses
        .iter()
        .filter(|r| r.key.as_deref() == Some(&id))
        .filter_map(|r| r.value["status"].as_str())
        .filter(|s| ["COMPLETED", "FAILED", "CANCELLED"].contains(s))
        .collect();
    assert_eq!(finals, ["COMPLETED"]);
    let (_, listed) = app.get_json("/api/orders?limit=100").await;
    let listed = listed["orders"].as_array().unwrap();
    assert_eq!(
        listed
            .iter()
            .filter(|o| o["order_id"] == id.as_str())
            .count(),
        1
    );
}

/// Reads until the server closes the connection (or `limit` passes) and returns what came.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, limit: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(limit, stream.read_to_end(&mut answer)).await;
    read.ok()
        .map(|_| String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_slow_and_unfinished_connections_are_closed_and_capped() {
    use tokio::io::AsyncWriteExt;
    let broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    settings.http.header_read_timeout = Duration::from_millis(1000);
    settings.http.body_read_timeout = Duration::from_millis(1000);
    settings.http.max_connections = 50;
    let app = TestApp::spawn(settings).await;
    let address = app.address.trim_start_matches("http://").to_string();

    // A connection that sends nothing is closed once the header time is up.
    let mut idle = tokio::net::TcpStream::connect(&address).await.unwrap();
    let closed = read_until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "an idle connection was left open");

    // Half a request head: closed too.
    let mut half = tokio::net::TcpStream::connect(&address).await.unwrap();
    half.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(
        read_until_closed(&mut half, Duration::from_secs(5))
            .await
            .is_some()
    );

    // A body that never completes is 408 problem+json, not a 503 after the request timeout.
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(
        b"POST /api/orders HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n{\"customer_id\":",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let answer = read_until_closed(&mut slow, Duration::from_secs(5))
        .await
        .expect("answered");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // Far more idle sockets than the cap: they wait or are closed, and the service still
    // answers a real client within a few header timeouts.
    let mut flood = Vec::new();
    for _ in 0..300 {
        if let Ok(stream) = tokio::net::TcpStream::connect(&address).await {
            flood.push(stream);
        }
    }
    let response = tokio::time::timeout(
        Duration::from_secs(15),
        app.client.get(app.url("/health/live")).send(),
    )
    .await
    .expect("served despite the flood")
    .unwrap();
    assert_eq!(response.status(), 200);
    drop(flood);
    let id = app.place(&valid_order()).await;
    assert_eq!(
        app.wait_status(&id, "COMPLETED").await["status"],
        "COMPLETED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_problem_json_with_security_headers_and_a_sane_request_id() {
    let broker = TestBroker::start(Engine::Memory).await;
    let app = TestApp::spawn(test_settings(&broker)).await;

    for (method, path) in [
        (reqwest::Method::GET, "/%FF"),
        (reqwest::Method::GET, "/api/orders/%FF"),
        (reqwest::Method::PUT, "/api/orders"),
        (reqwest::Method::GET, "/no/such/route"),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!((400..500).contains(&status), "{method} {path}: {status}");
        let headers = response.headers().clone();
        assert_eq!(
            headers["content-type"], "application/problem+json",
            "{method} {path}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert!(headers.contains_key("content-security-policy"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], status, "{body}");
        assert!(!body["code"].as_str().unwrap().is_empty());
    }
    let docs = app.client.get(app.url("/docs/")).send().await.unwrap();
    let policy = docs.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(policy.contains("script-src 'self'"), "{policy}");

    // A request id of 60 KB or an empty one is not echoed: a fresh one is made.
    let long = "x".repeat(60_000);
    for sent in [long.as_str(), ""] {
        let response = app
            .client
            .get(app.url("/api/orders/not-a-uuid"))
            .header("x-request-id", sent)
            .send()
            .await
            .unwrap();
        let echoed = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(!echoed.is_empty() && echoed.len() <= 128 && echoed != sent);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["request_id"], echoed.as_str());
    }
    let response = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "my-id-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "my-id-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_array_is_a_bulk_and_other_shapes_are_named() {
    let broker = TestBroker::start(Engine::Memory).await;
    let app = TestApp::spawn(test_settings(&broker)).await;

    let response = app
        .post_json("/api/orders/bulk", &json!([valid_order(), valid_order()]))
        .await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["accepted"], 2);

    for shape in [
        json!({"orders": {}}),
        json!("orders"),
        json!({"orders": [], "x": 1}),
    ] {
        let response = app.post_json("/api/orders/bulk", &shape).await;
        assert_eq!(response.status(), 422, "{shape}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "invalid_body");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("JSON array of orders"), "{detail}");
    }
    // serde's own words are translated: "sequence" and "map" are JSON's array and object.
    let response = app
        .post_json(
            "/api/orders",
            &json!({"customer_id": "c", "currency": "EUR", "items": {}}),
        )
        .await;
    let problem: Value = response.json().await.unwrap();
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("JSON array") && !detail.contains("sequence"),
        "{detail}"
    );
    // A bulk item is an object too: an array of an order's field values is refused on its
    // own (serde would read a struct from it), the valid item beside it is accepted.
    let response = app
        .post_json(
            "/api/orders/bulk",
            &json!([["c", "EUR", [{"product_id": "p", "quantity": 1, "unit_price": "1.00"}]], valid_order()]),
        )
        .await;
    assert_eq!(response.status(), 207);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["results"][0]["outcome"], "rejected", "{body}");
    let detail = body["results"][0]["problem"]["detail"].as_str().unwrap();
    assert!(detail.contains("JSON object"), "{detail}");
    assert_eq!(body["results"][1]["outcome"], "accepted", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_flow_to_kafka_over_tls() {
    let (broker, ca) = TestBroker::start_behind_tls_proxy(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    let options = &mut settings.kafka.librdkafka;
    options.insert("security.protocol".into(), "SSL".into());
    options.insert("ssl.ca.location".into(), ca.display().to_string());
    let app = TestApp::spawn(settings).await;
    let id = app.place(&valid_order()).await;
    assert_eq!(
        app.wait_status(&id, "COMPLETED").await["status"],
        "COMPLETED"
    );
    let (status, cluster) = app.get_json("/api/admin/cluster").await;
    assert_eq!(status, 200, "{cluster}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_to_the_service_topics_through_the_admin_api_needs_force() {
    let broker = TestBroker::start(Engine::Memory).await;
    let app = TestApp::spawn(test_settings(&broker)).await;
    let orders = app.settings.topics.orders.name.clone();
    let forged = json!({"records": [{"key": "forged", "value": {"forged": true}}]});
    let path = format!("/api/admin/topics/{orders}/messages");
    let response = app.post_json(&path, &forged).await;
    assert_eq!(response.status(), 409);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "topic_protected");
    let on_topic = read_topic(&broker.bootstrap(), &orders, 0).await;
    assert!(on_topic.is_empty(), "{on_topic:?}");

    let response = app.post_json(&format!("{path}?force=true"), &forged).await;
    assert_eq!(response.status(), 200);
    let on_topic = read_topic(&broker.bootstrap(), &orders, 1).await;
    assert_eq!(on_topic.len(), 1);
    assert_eq!(on_topic[0].key.as_deref(), Some("forged"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_allowed_origins_only_and_is_off_by_default() {
    let broker = TestBroker::start(Engine::Memory).await;
    let preflight = |app: &TestApp, origin: &str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/orders"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed_origin = |response: &reqwest::Response| {
        response
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_string())
    };

    let mut plain = TestApp::spawn(test_settings(&broker)).await;
    let response = plain
        .client
        .get(plain.url("/health/live"))
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed_origin(&response), None, "CORS is off by default");
    // Gone before the next one starts: its processors have left the group.
    plain.stop().await;

    let mut settings = test_settings(&broker);
    settings.http.cors.allowed_origins = vec!["https://shop.example".into()];
    let app = TestApp::spawn(settings).await;
    let response = preflight(&app, "https://shop.example").await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        allowed_origin(&response).as_deref(),
        Some("https://shop.example")
    );
    let methods = response.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(methods.contains("POST"), "{methods}");

    let response = preflight(&app, "https://evil.example").await.unwrap();
    assert_eq!(allowed_origin(&response), None);
    let response = app
        .client
        .get(app.url("/health/live"))
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        allowed_origin(&response).as_deref(),
        Some("https://shop.example")
    );
}
