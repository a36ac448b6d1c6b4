//! Records written for message searches: known keys, values, headers and timestamps, one
//! per request (so that no record sits after the first of a batch: Tansu's memory engine
//! reports a partition's end as its last batch's start + 1); and the helpers that read
//! search answers.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};

use super::app::TestApp;
use super::clusters::send;

/// The first record's timestamp.
pub const BASE: i64 = 1_764_000_000_000;
/// Records in the searched topics.
pub const RECORDS: i64 = 24;

/// The value of record `i`: its customer, total and number.
pub fn value(i: i64) -> Value {
    json!({"customer_id": format!("cust-{}", i % 4), "total": i as f64 * 10.0, "n": i})
}

pub fn event_type(i: i64) -> &'static str {
    if i % 5 == 0 {
        "OrderFailed"
    } else {
        "OrderCompleted"
    }
}

/// Creates `topic` with `partitions` (through `prefix`: `/api/admin` or
/// `/api/clusters/{id}`) and writes the records `0..RECORDS`: record `i` on
/// partition `i % partitions`, key `o-{i}`, at `BASE + i` seconds, one per request.
pub async fn write_records(
    app: &TestApp,
    prefix: &str,
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) {
    let producer = create_for_writing(app, prefix, bootstrap, topic, partitions).await;
    for i in 0..RECORDS {
        let (key, payload) = (format!("o-{i}"), value(i).to_string());
        let headers = OwnedHeaders::new().insert(Header {
            key: "event-type",
            value: Some(event_type(i)),
        });
        producer
            .send(
                FutureRecord::to(topic)
                    .key(&key)
                    .payload(&payload)
                    .headers(headers)
                    .partition((i % i64::from(partitions)) as i32)
                    .timestamp(BASE + i * 1_000),
                Duration::from_secs(10),
            )
            .await
            .expect("record written");
    }
}

/// Creates `topic` through the API (`prefix`: `/api/admin` or `/api/clusters/{id}`).
pub async fn create_topic(app: &TestApp, prefix: &str, topic: &str, partitions: i32) {
    let (status, body) = send(
        app,
        reqwest::Method::POST,
        &format!("{prefix}/topics"),
        Some(json!({"name": topic, "partitions": partitions})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

/// Creates `topic` through the API (`prefix`: `/api/admin` or `/api/clusters/{id}`) and
/// answers a plain producer that sends each record on its own (`linger.ms` 0).
pub async fn create_for_writing(
    app: &TestApp,
    prefix: &str,
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> FutureProducer {
    create_topic(app, prefix, topic, partitions).await;
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "0")
        .create()
        .unwrap()
}

/// The keys of a page's records, in its order.
pub fn keys(page: &Value) -> Vec<String> {
    page["records"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {page}"))
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_string())
        .collect()
}

pub fn keys_of(numbers: impl IntoIterator<Item = i64>) -> Vec<String> {
    numbers.into_iter().map(|i| format!("o-{i}")).collect()
}

/// A query string from pairs, encoded.
pub fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A search of a home-cluster topic, answered 200.
pub async fn search(app: &TestApp, topic: &str, pairs: &[(&str, &str)]) -> Value {
    let path = format!("/api/admin/topics/{topic}/messages?{}", query(pairs));
    let (status, page) = app.get_json(&path).await;
    assert_eq!(status, 200, "{path}: {page}");
    page
}
