//! Order intake: what a client sees, and what lands on the `orders` topic.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

async fn problem(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(content_type, "application/problem+json", "status {status}");
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_valid_order_is_acknowledged_and_lands_on_the_topic() {
    let broker = TestBroker::start(Engine::Memory).await;
    let app = TestApp::spawn(test_settings(&broker)).await;

    let response = app
        .client
        .post(app.url("/api/orders"))
        .header("x-request-id", "req-abc-1")
        .json(&valid_order())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["x-request-id"], "req-abc-1");
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let body: Value = response.json().await.unwrap();
    let order_id = body["order_id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/api/orders/{order_id}"));
    assert_eq!(body["status"], "PENDING");
    assert_eq!(body["total"], "40.08");
    assert!(body["offset"].as_i64().unwrap() >= 0);

    let records = read_topic(&broker.bootstrap(), &app.settings.topics.orders.name, 1).await;
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.key.as_deref(), Some(order_id.as_str()));
    assert_eq!(record.partition, body["partition"].as_i64().unwrap() as i32);
    assert_eq!(record.offset, body["offset"].as_i64().unwrap());
    assert_eq!(record.header("content-type"), Some("application/json"));
    assert_eq!(record.header("schema-version"), Some("1"));
    assert_eq!(record.header("event-type"), Some("order_placed"));
    assert_eq!(record.header("request-id"), Some("req-abc-1"));
    assert_eq!(record.value["type"], "order_placed");
    let order = &record.value["order"];
    assert_eq!(order["order_id"], order_id.as_str());
    assert_eq!(order["total"], "40.08");
    assert_eq!(order["items"][0]["unit_price"], "19.99");
    assert_eq!(order["items"][1]["unit_price"], "0.10");
    assert_eq!(order["currency"], "EUR");

    let metrics = app.scrape().await;
    assert_eq!(metrics.value("orderflow_orders_accepted_total", &[]), 1.0);
    assert_eq!(
        metrics.value(
            "orderflow_http_requests_total",
            &[
                ("route", "/api/orders"),
                ("method", "POST"),
                ("status", "202")
            ]
        ),
        1.0
    );
}

#[tokio::test]
async fn bad_input_gets_a_problem_and_writes_nothing() {
    let broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    settings.http.max_body_bytes = 2048;
    let app = TestApp::spawn(settings).await;
    let url = app.url("/api/orders");

    let malformed = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"customer_id\": ")
        .send()
        .await
        .unwrap();
    let (status, body) = problem(malformed).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("malformed_json"))
    );
    assert!(body["request_id"].as_str().is_some_and(|id| !id.is_empty()));

    let wrong_type = app
        .client
        .post(&url)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await;
    let (status, body) = problem(wrong_type.unwrap()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );

    let mut unknown_field = valid_order();
    unknown_field["coupon"] = json!("FREE");
    let (status, body) = problem(app.post_json("/api/orders", &unknown_field).await).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("invalid_body")));
    assert!(body["detail"].as_str().unwrap().contains("coupon"));

    let mut float_price = valid_order();
    float_price["items"][0]["unit_price"] = json!(19.99);
    let (status, body) = problem(app.post_json("/api/orders", &float_price).await).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("invalid_body")));

    let invalid = json!({
        "customer_id": "",
        "currency": "JPY",
        "items": [{"product_id": "a", "quantity": 0, "unit_price": "1.5"}]
    });
    let (status, body) = problem(app.post_json("/api/orders", &invalid).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("validation_failed"))
    );
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["customer_id", "items[0].quantity", "items[0].unit_price"]
    );

    let mut too_large = valid_order();
    too_large["metadata"]["note"] = json!("x".repeat(4000));
    let (status, body) = problem(app.post_json("/api/orders", &too_large).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("payload_too_large"))
    );

    // Nothing above was written: after one good order, the topic holds exactly that one.
    let good = app.post_json("/api/orders", &valid_order()).await;
    assert_eq!(good.status(), 202);
    let good: Value = good.json().await.unwrap();
    let records = read_topic(&broker.bootstrap(), &app.settings.topics.orders.name, 1).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].key.as_deref(), good["order_id"].as_str());
}

#[tokio::test]
async fn duplicates_by_order_id_or_idempotency_key_write_one_record() {
    let broker = TestBroker::start(Engine::Memory).await;
    let app = TestApp::spawn(test_settings(&broker)).await;

    let mut with_id = valid_order();
    let order_id = uuid::Uuid::new_v4().to_string();
    with_id["order_id"] = json!(order_id);
    let first = app.post_json("/api/orders", &with_id).await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let again = app.post_json("/api/orders", &with_id).await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);

    let keyed = |body: &Value| {
        app.client
            .post(app.url("/api/orders"))
            .header("idempotency-key", "client-key-7")
            .json(body)
            .send()
    };
    // Concurrent repeats with the same key: one record, one answer.
    let (a, b) = tokio::join!(keyed(&valid_order()), keyed(&valid_order()));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        (a.status(), b.status()),
        (reqwest::StatusCode::ACCEPTED, reqwest::StatusCode::ACCEPTED)
    );
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    assert_eq!(a, b);

    let mut other_body = valid_order();
    other_body["customer_id"] = json!("someone-else");
    let (status, body) = problem(keyed(&other_body).await.unwrap()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("idempotency_conflict"))
    );
    // A key must be visible ASCII, as documented: no inner space.
    let spaced = app
        .client
        .post(app.url("/api/orders"))
        .header("idempotency-key", "two words")
        .json(&valid_order())
        .send()
        .await
        .unwrap();
    let (status, body) = problem(spaced).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("validation_failed"))
    );

    let records = read_topic(&broker.bootstrap(), &app.settings.topics.orders.name, 2).await;
    let mut keys: Vec<_> = records.iter().map(|r| r.key.clone().unwrap()).collect();
    keys.sort();
    let mut expected = vec![order_id, a["order_id"].as_str().unwrap().to_string()];
    expected.sort();
    assert_eq!(keys, expected);
}

#[tokio::test]
async fn bulk_answers_each_order_and_writes_only_the_valid_ones() {
    let broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    settings.orders.max_bulk = 5;
    let app = TestApp::spawn(settings).await;

    let mut bad_currency = valid_order();
    bad_currency["currency"] = json!("EURO");
    let mut unknown_field = valid_order();
    unknown_field["extra"] = json!(1);
    let body = json!({ "orders": [valid_order(), bad_currency, valid_order(), unknown_field] });
    let response = app.post_json("/api/orders/bulk", &body).await;
    assert_eq!(response.status(), 207);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        (answer["accepted"].as_u64(), answer["rejected"].as_u64()),
        (Some(2), Some(2))
    );
    let results = answer["results"].as_array().unwrap();
    let outcomes: Vec<(u64, &str)> = results
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (0, "accepted"),
            (1, "rejected"),
            (2, "accepted"),
            (3, "rejected")
        ]
    );
    assert_eq!(results[1]["problem"]["code"], "validation_failed");
    assert_eq!(results[1]["problem"]["errors"][0]["field"], "currency");
    assert_eq!(results[3]["problem"]["code"], "invalid_body");

    let records = read_topic(&broker.bootstrap(), &app.settings.topics.orders.name, 2).await;
    let mut keys: Vec<_> = records.iter().map(|r| r.key.clone().unwrap()).collect();
    keys.sort();
    let mut accepted: Vec<String> = [0, 2]
        .iter()
        .map(|&i| results[i]["order_id"].as_str().unwrap().to_string())
        .collect();
    accepted.sort();
    assert_eq!(keys, accepted);

    let none_valid = json!({ "orders": [{"customer_id": "x"}] });
    let response = app.post_json("/api/orders/bulk", &none_valid).await;
    assert_eq!(response.status(), 422);

    let all_valid = json!({ "orders": [valid_order(), valid_order()] });
    assert_eq!(
        app.post_json("/api/orders/bulk", &all_valid).await.status(),
        202
    );

    let too_many = json!({ "orders": vec![valid_order(); 6] });
    let (status, body) = problem(app.post_json("/api/orders/bulk", &too_many).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("bulk_too_large"))
    );

    // 2 + 2 accepted; the 422 and 413 requests added nothing.
    let records = read_topic(&broker.bootstrap(), &app.settings.topics.orders.name, 4).await;
    assert_eq!(records.len(), 4);
}

#[tokio::test]
async fn broker_unreachable_gives_503_with_retry_after_in_time_and_recovers() {
    // The network is cut rather than the broker restarted: Tansu 0.6.0's sqlite engine
    // panics when a producer it knew before a restart sends again, and the memory engine
    // forgets its topics, neither of which a Kafka cluster does.
    let mut broker = TestBroker::start_behind_proxy(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    settings.http.request_timeout = Duration::from_millis(3000);
    settings.producer.delivery_timeout = Duration::from_millis(2000);
    let app = TestApp::spawn(settings).await;
    assert_eq!(
        app.post_json("/api/orders", &valid_order()).await.status(),
        202
    );

    broker.cut_network();
    let started = Instant::now();
    let response = app.post_json("/api/orders", &valid_order()).await;
    let waited = started.elapsed();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let (status, body) = problem(response).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("kafka_unavailable"))
    );
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert!(
        waited <= Duration::from_millis(3000),
        "answered after {waited:?}"
    );
    let ready = app
        .client
        .get(app.url("/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);

    broker.restore_network().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = app.post_json("/api/orders", &valid_order()).await;
        if response.status() == 202 {
            break;
        }
        let status = response.status();
        assert_eq!(status, 503, "{}", response.text().await.unwrap());
        assert!(
            Instant::now() < deadline,
            "not accepting again after the broker came back"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn unknown_routes_and_liveness() {
    let broker = TestBroker::start(Engine::Memory).await;
    let app = TestApp::spawn(test_settings(&broker)).await;
    let live = app
        .client
        .get(app.url("/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let (status, body) = problem(app.client.get(app.url("/nope")).send().await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
}
