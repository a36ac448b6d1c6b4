//! Consumer-group offsets moved like the consoles move them: to a time, shifted by ±N, to
//! explicit per-partition offsets, copied from another group, for some partitions only, and
//! previewed with `dry_run`.

use std::time::Duration;

use rdkafka::producer::FutureRecord;
use serde_json::{Value, json};

use crate::helpers::*;

/// A topic of 3 partitions with 10 records each, written one per request at `BASE + n` s.
async fn topic_with_records(app: &TestApp, bootstrap: &str) -> String {
    let topic = format!("offsets-{}", uuid::Uuid::new_v4().simple());
    let producer = create_for_writing(app, "/api/admin", bootstrap, &topic, 3).await;
    for n in 0..30_i64 {
        producer
            .send(
                FutureRecord::to(&topic)
                    .key("k")
                    .payload("v")
                    .partition((n % 3) as i32)
                    .timestamp(BASE + n * 1_000),
                Duration::from_secs(10),
            )
            .await
            .expect("record written");
    }
    topic
}

const BASE: i64 = 1_764_000_000_000;

/// Each partition's committed offset as the reset answered it.
fn committed(moves: &Value) -> Vec<Option<i64>> {
    moves
        .as_array()
        .unwrap_or_else(|| panic!("moves: {moves}"))
        .iter()
        .map(|m| m["committed_offset"].as_i64())
        .collect()
}

async fn reset(app: &TestApp, group: &str, body: Value) -> (u16, Value) {
    let path = format!("/api/admin/consumer-groups/{group}/offsets");
    send(app, reqwest::Method::POST, &path, Some(body)).await
}

async fn moved(app: &TestApp, group: &str, body: Value) -> Value {
    let (status, moves) = reset(app, group, body.clone()).await;
    assert_eq!(status, 200, "{body}: {moves}");
    moves
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_move_by_shift_explicit_partitions_and_another_group_and_a_dry_run_moves_nothing() {
    let broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    settings.processing.consumers = 0;
    let app = TestApp::spawn(settings).await;
    let topic = topic_with_records(&app, &broker.bootstrap()).await;
    let (group, copy) = ("offsets-g1", "offsets-g2");

    let first = moved(
        &app,
        group,
        json!({"topic": topic, "to": "offset", "offset": 4}),
    )
    .await;
    assert_eq!(committed(&first), [Some(4); 3]);
    assert_eq!(first[0]["previous_offset"], Value::Null);
    assert_eq!(first[0]["lag"], 6);
    // Shifted, and clamped to the log.
    let back = moved(
        &app,
        group,
        json!({"topic": topic, "to": "shift", "by": -3}),
    )
    .await;
    assert_eq!(committed(&back), [Some(1); 3]);
    assert_eq!(back[0]["previous_offset"], 4);
    let past = moved(
        &app,
        group,
        json!({"topic": topic, "to": "shift", "by": 100}),
    )
    .await;
    assert_eq!(committed(&past), [Some(10); 3]);
    // Each partition its own offset; the others stay.
    let explicit = json!({"topic": topic, "partitions": [{"partition": 0, "offset": 2}, {"partition": 2, "offset": 7}]});
    assert_eq!(
        committed(&moved(&app, group, explicit).await),
        [Some(2), Some(10), Some(7)]
    );
    // Only some partitions.
    let only = json!({"topic": topic, "to": "earliest", "partitions": [1]});
    let only = moved(&app, group, only).await;
    assert_eq!(committed(&only), [Some(0)]);
    assert_eq!(only[0]["partition"], 1);
    // Another group's offsets, copied.
    let copied = moved(
        &app,
        copy,
        json!({"topic": topic, "to": "group", "group": group}),
    )
    .await;
    assert_eq!(committed(&copied), [Some(2), Some(0), Some(7)]);
    // A dry run says where they would go and moves nothing.
    let preview = moved(
        &app,
        copy,
        json!({"topic": topic, "to": "latest", "dry_run": true}),
    )
    .await;
    assert_eq!(committed(&preview), [Some(10); 3]);
    let (status, described) = app
        .get_json(&format!("/api/admin/consumer-groups/{copy}"))
        .await;
    assert_eq!(status, 200, "{described}");
    let now: Vec<Option<i64>> = described["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["committed_offset"].as_i64())
        .collect();
    assert_eq!(now, [Some(2), Some(0), Some(7)], "{described}");

    // Each mode's fields, and nothing else.
    for (body, field) in [
        (json!({"topic": topic, "to": "shift"}), "by"),
        (json!({"topic": topic, "to": "latest", "by": 1}), "by"),
        (
            json!({"topic": topic, "to": "timestamp", "timestamp": "yesterday"}),
            "timestamp",
        ),
        (json!({"topic": topic, "to": "group", "group": ""}), "group"),
        (json!({"topic": topic}), "to"),
        (
            json!({"topic": topic, "to": "latest", "partitions": [{"partition": 0, "offset": 1}]}),
            "partitions",
        ),
        (
            json!({"topic": topic, "partitions": [0, {"partition": 1, "offset": 1}]}),
            "partitions",
        ),
    ] {
        let (status, problem) = reset(&app, group, body.clone()).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
    }
    let (status, _) = reset(
        &app,
        group,
        json!({"topic": topic, "to": "earliest", "partitions": [7]}),
    )
    .await;
    assert_eq!(status, 404, "a partition the topic does not have");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_go_to_the_first_record_at_or_after_a_time() {
    // Tansu's memory engine answers every offsets-for-times with 0; SQLite answers them,
    // but lists no groups, so the reset is previewed (a dry run asks nothing of the group).
    let broker = TestBroker::start(Engine::Sqlite).await;
    let mut settings = test_settings(&broker);
    settings.processing.consumers = 0;
    let app = TestApp::spawn(settings).await;
    let topic = topic_with_records(&app, &broker.bootstrap()).await;
    // 16:00:10 is record 10, offset 3 of partition 1; partitions 2 and 0 go to records 11
    // (offset 3) and 12 (offset 4), their first at or after it.
    let at = json!({"topic": topic, "to": "timestamp", "timestamp": "2025-11-24T16:00:10Z", "dry_run": true});
    let moves = moved(&app, "offsets-by-time", at).await;
    assert_eq!(committed(&moves), [Some(4), Some(3), Some(3)], "{moves}");
}
