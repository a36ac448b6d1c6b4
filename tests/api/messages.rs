//! Messages read like the consoles read them: search every partition by position, time and
//! filter, page with a cursor, stream, export, and follow live.
//!
//! The searched data is written one record per request with its own timestamp, so that no
//! record sits after the first of a batch (Tansu's memory engine reports a partition's end
//! as its last batch's start + 1). Searches by time run on SQLite: Tansu's memory engine
//! answers every offsets-for-times with 0.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::helpers::*;

async fn search_app() -> (TestBroker, TestApp) {
    let broker = TestBroker::start(Engine::Sqlite).await;
    let mut settings = test_settings(&broker);
    settings.processing.consumers = 0;
    let app = TestApp::spawn(settings).await;
    (broker, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_finds_records_on_every_partition_by_filter_in_timestamp_order() {
    let (broker, app) = search_app().await;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let topic = format!("search-{run}");
    write_records(&app, "/api/admin", &broker.bootstrap(), &topic, 3).await;

    // A record on any partition, found by its value without knowing where it is.
    let page = search(
        &app,
        &topic,
        &[
            ("from", "beginning"),
            (
                "filter",
                r#"value.customer_id == "cust-1" && value.total > 100.0"#,
            ),
        ],
    )
    .await;
    assert_eq!(keys(&page), keys_of([13, 17, 21]), "{page}");
    assert_eq!(page["scanned"], RECORDS);
    assert_eq!(page["matched"], 3);
    assert_eq!(page["stopped"], "end");
    // Newest first by default; a header filter.
    let page = search(
        &app,
        &topic,
        &[("filter", r#"headers["event-type"] == "OrderFailed""#)],
    )
    .await;
    assert_eq!(keys(&page), keys_of([20, 15, 10, 5, 0]), "{page}");
    // Plain text, like AKHQ's search.
    let page = search(&app, &topic, &[("contains", "o-7")]).await;
    assert_eq!(keys(&page), keys_of([7]));
    // The key, the position and the timestamp are there too.
    let page = search(
        &app,
        &topic,
        &[
            ("from", "beginning"),
            ("filter", r#"key == "o-5" && partition == 2 && offset == 1"#),
        ],
    )
    .await;
    assert_eq!(keys(&page), keys_of([5]));
    let page = search(
        &app,
        &topic,
        &[
            ("from", "beginning"),
            ("filter", "timestamp >= timestamp(\"2025-11-24T16:00:20Z\")"),
        ],
    )
    .await;
    assert_eq!(keys(&page), keys_of(20..RECORDS), "{page}");
    // One partition only.
    let page = search(&app, &topic, &[("partition", "1"), ("from", "beginning")]).await;
    assert_eq!(keys(&page), keys_of((1..RECORDS).step_by(3)));

    // A bad expression names where; nothing is read.
    let path = format!(
        "/api/admin/topics/{topic}/messages?{}",
        query(&[("filter", "value.total >")])
    );
    let (status, problem) = app.get_json(&path).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("validation_failed"))
    );
    let why = problem["errors"][0]["message"].as_str().unwrap();
    assert!(why.contains("line 1, column"), "{problem}");
    assert_eq!(problem["errors"][0]["field"], "filter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_early_stops_continue_by_cursor_without_loss_or_repeat_whatever_the_partitions() {
    let (broker, app) = search_app().await;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (one, six) = (format!("one-{run}"), format!("six-{run}"));
    write_records(&app, "/api/admin", &broker.bootstrap(), &one, 1).await;
    write_records(&app, "/api/admin", &broker.bootstrap(), &six, 6).await;
    let even = r#"value.n % 2 == 0"#;
    let expected = keys_of((0..RECORDS).step_by(2));
    for topic in [&one, &six] {
        // Pages of 5 by cursor: 5, 5, 2.
        let mut seen = Vec::new();
        let mut cursor = None::<String>;
        let mut stops = Vec::new();
        loop {
            let mut pairs = vec![("filter", even), ("limit", "5")];
            match &cursor {
                Some(c) => pairs.push(("cursor", c)),
                None => pairs.push(("from", "beginning")),
            }
            let page = search(&app, topic, &pairs).await;
            seen.extend(keys(&page));
            stops.push(page["stopped"].as_str().unwrap().to_string());
            if page["stopped"] == "end" {
                break;
            }
            cursor = Some(page["next"].as_str().unwrap().to_string());
            assert!(stops.len() < 10, "{stops:?}");
        }
        assert_eq!(seen, expected, "{topic}");
        assert_eq!(stops, ["limit", "limit", "end"], "{topic}");

        // max_scan stops early; the cursor goes on from the record after the last read.
        let first = search(
            &app,
            topic,
            &[("from", "beginning"), ("max_scan", "7"), ("limit", "1000")],
        )
        .await;
        assert_eq!(
            (first["stopped"].as_str(), first["scanned"].as_u64()),
            (Some("max_scan"), Some(7))
        );
        assert_eq!(keys(&first), keys_of(0..7));
        let rest = search(
            &app,
            topic,
            &[
                ("cursor", first["next"].as_str().unwrap()),
                ("limit", "1000"),
            ],
        )
        .await;
        assert_eq!(rest["stopped"], "end");
        assert_eq!(keys(&rest), keys_of(7..RECORDS), "{topic}");

        // Newest first, paged the same way.
        let newest = search(&app, topic, &[("filter", even), ("limit", "4")]).await;
        assert_eq!(keys(&newest), keys_of([22, 20, 18, 16]));
        let older = search(
            &app,
            topic,
            &[
                ("filter", even),
                ("limit", "4"),
                ("cursor", newest["next"].as_str().unwrap()),
            ],
        )
        .await;
        assert_eq!(keys(&older), keys_of([14, 12, 10, 8]), "{topic}");
    }

    // A time window, forward and backward: the same records, in opposite orders.
    let from = "2025-11-24T16:00:05Z";
    let until = "2025-11-24T16:00:12Z";
    let window = search(
        &app,
        &six,
        &[("from_time", from), ("until_time", until), ("limit", "100")],
    )
    .await;
    assert_eq!(keys(&window), keys_of(5..=12), "{window}");
    let backward = search(
        &app,
        &six,
        &[
            ("until_time", until),
            ("from_time", from),
            ("direction", "backward"),
            ("limit", "100"),
        ],
    )
    .await;
    assert_eq!(keys(&backward), keys_of((5..=12).rev()), "{backward}");
    let before = search(&app, &six, &[("until_time", until), ("limit", "3")]).await;
    assert_eq!(keys(&before), keys_of([12, 11, 10]));
    // A cursor that this service did not give is refused.
    let path = format!("/api/admin/topics/{six}/messages?cursor=f.0-x");
    let (status, problem) = app.get_json(&path).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_query"))
    );
}

/// The events of an SSE body: (event, data).
fn sse_events(body: &str) -> Vec<(String, String, Option<String>)> {
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .filter_map(|block| {
            let mut event = None;
            let mut data = String::new();
            let mut id = None;
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = Some(e.trim().to_string());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                } else if let Some(i) = line.strip_prefix("id:") {
                    id = Some(i.trim().to_string());
                }
            }
            event.map(|e| (e, data, id))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_search_ends_with_done_and_an_export_round_trips_into_another_topic() {
    let broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    settings.processing.consumers = 0;
    let app = TestApp::spawn(settings).await;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (source, copy) = (format!("exp-{run}"), format!("copy-{run}"));
    write_records(&app, "/api/admin", &broker.bootstrap(), &source, 3).await;

    let url = app.url(&format!(
        "/api/admin/topics/{source}/messages?{}",
        query(&[
            ("from", "beginning"),
            ("filter", r#"headers["event-type"] == "OrderFailed""#)
        ])
    ));
    let response = app
        .client
        .get(&url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = sse_events(&response.text().await.unwrap());
    let records: Vec<String> = events
        .iter()
        .filter(|(e, ..)| e == "record")
        .map(|(_, data, _)| {
            serde_json::from_str::<Value>(data).unwrap()["key"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(records, keys_of([0, 5, 10, 15, 20]));
    let (last, data, _) = events.last().unwrap();
    assert_eq!(last, "done", "{events:?}");
    let done: Value = serde_json::from_str(data).unwrap();
    assert_eq!(
        (done["matched"].as_u64(), done["stopped"].as_str()),
        (Some(5), Some("end"))
    );

    // The whole topic as NDJSON: one record per line, then how it ended.
    let url = app.url(&format!(
        "/api/admin/topics/{source}/messages?from=beginning"
    ));
    let response = app
        .client
        .get(&url)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (done, exported) = lines.split_last().unwrap();
    assert_eq!(done["done"]["stopped"], "end", "{text}");
    assert_eq!(exported.len() as i64, RECORDS);
    // Into another topic through the produce endpoint, as an operator would replay them.
    let (status, _) = send(
        &app,
        reqwest::Method::POST,
        "/api/admin/topics",
        Some(json!({"name": copy, "partitions": 3})),
    )
    .await;
    assert_eq!(status, 201);
    for line in exported {
        let record = json!({"records": [{"key": line["key"], "value": line["value"], "headers": line["headers"], "partition": line["partition"]}]});
        let (status, body) = send(
            &app,
            reqwest::Method::POST,
            &format!("/api/admin/topics/{copy}/messages"),
            Some(record),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let copied = search(
        &app,
        &copy,
        &[("partition", "0"), ("from", "beginning"), ("limit", "100")],
    )
    .await;
    let original = search(
        &app,
        &source,
        &[("partition", "0"), ("from", "beginning"), ("limit", "100")],
    )
    .await;
    let strip = |page: &Value| -> Vec<(Value, Value, Value)> {
        page["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["key"].clone(), r["value"].clone(), r["headers"].clone()))
            .collect()
    };
    assert_eq!(strip(&copied), strip(&original));
    assert_eq!(strip(&copied).len() as i64, RECORDS / 3);

    // A handful copied by filter, oldest first, with their bytes and timestamps.
    let few = format!("few-{run}");
    let (status, _) = send(
        &app,
        reqwest::Method::POST,
        "/api/admin/topics",
        Some(json!({"name": few, "partitions": 1})),
    )
    .await;
    assert_eq!(status, 201);
    let request = json!({"target_topic": few, "filter": r#"headers["event-type"] == "OrderFailed""#, "limit": 3});
    let (status, answer) = send(
        &app,
        reqwest::Method::POST,
        &format!("/api/admin/topics/{source}/messages/copy"),
        Some(request),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["copied"].as_array().unwrap().len(), 3);
    assert_eq!(answer["stopped"], "limit");
    // Read with a plain consumer: the three may share one batch, past the end Tansu's memory
    // engine reports.
    let written = read_topic(&broker.bootstrap(), &few, 3).await;
    let written_keys: Vec<String> = written.iter().map(|r| r.key.clone().unwrap()).collect();
    assert_eq!(written_keys, keys_of([0, 5, 10]));
    assert_eq!(written[1].value, value(5));
    assert_eq!(written[1].header("event-type"), Some("OrderFailed"));
    let orders = app.settings.topics.orders.name.clone();
    let (status, problem) = send(
        &app,
        reqwest::Method::POST,
        &format!("/api/admin/topics/{source}/messages/copy"),
        Some(json!({"target_topic": orders})),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("topic_protected"))
    );
}

/// Reads SSE events from a live response until `want` records arrived.
async fn next_records<B: AsRef<[u8]>>(
    body: &mut (impl futures::Stream<Item = reqwest::Result<B>> + Unpin),
    buffer: &mut String,
    want: usize,
) -> Vec<(String, String, Option<String>)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let events: Vec<_> = sse_events(buffer)
            .into_iter()
            .filter(|(e, ..)| e == "record")
            .collect();
        if events.len() >= want {
            buffer.clear();
            return events;
        }
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("records in time")
            .expect("stream open")
            .unwrap();
        buffer.push_str(&String::from_utf8_lossy(chunk.as_ref()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_tail_sees_new_records_and_resumes_after_a_reconnect_without_a_gap() {
    let broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    settings.processing.consumers = 0;
    settings.admin.max_message_streams = 1;
    let app = TestApp::spawn(settings).await;
    let topic = format!("tail-{}", uuid::Uuid::new_v4().simple());
    let (status, _) = send(
        &app,
        reqwest::Method::POST,
        "/api/admin/topics",
        Some(json!({"name": topic, "partitions": 3})),
    )
    .await;
    assert_eq!(status, 201);
    let produce = |key: &'static str, partition: i32| {
        let app = &app;
        let topic = topic.clone();
        async move {
            let record =
                json!({"records": [{"key": key, "value": {"k": key}, "partition": partition}]});
            let (status, body) = send(
                app,
                reqwest::Method::POST,
                &format!("/api/admin/topics/{topic}/messages"),
                Some(record),
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
    };
    produce("before", 0).await;
    let live = app.url(&format!(
        "/api/admin/topics/{topic}/messages/live?{}",
        query(&[("filter", r#"key != "skipped""#)])
    ));
    let response = app.client.get(&live).send().await.unwrap();
    assert_eq!(response.status(), 200);
    // One stream per instance here: a second is refused at once.
    let second = app.client.get(&live).send().await.unwrap();
    assert_eq!(second.status(), 503);
    assert!(second.headers().contains_key("retry-after"));

    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    // From now: the record written before the stream opened is not sent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    produce("first", 1).await;
    produce("skipped", 2).await;
    produce("second", 2).await;
    let events = next_records(&mut body, &mut buffer, 2).await;
    let seen: Vec<Value> = events
        .iter()
        .map(|(_, d, _)| serde_json::from_str(d).unwrap())
        .collect();
    let mut got: Vec<&str> = seen.iter().map(|r| r["key"].as_str().unwrap()).collect();
    got.sort();
    assert_eq!(got, ["first", "second"]);
    let last_id = events.last().unwrap().2.clone().expect("records carry ids");
    drop(body);

    // Written while nobody listens; a reconnect with the last id gets it, and only it.
    produce("while-away", 0).await;
    let resumed = poll_until(
        "the stream's place is free again",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || {
            let (client, live, last_id) = (&app.client, &live, &last_id);
            async move {
                let response = client
                    .get(live)
                    .header("last-event-id", last_id)
                    .send()
                    .await
                    .unwrap();
                if response.status() == 200 {
                    Ok(response)
                } else {
                    Err(response.status().to_string())
                }
            }
        },
    )
    .await;
    let mut body = resumed.bytes_stream();
    let events = next_records(&mut body, &mut buffer, 1).await;
    let record: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(record["key"], "while-away", "{events:?}");
    assert_eq!(events.len(), 1, "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masked_fields_are_hidden_from_one_key_and_shown_to_another_and_filters_see_them() {
    use orderflow::http::auth::Scope;
    let broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    settings.processing.consumers = 0;
    let (reader, reader_entry) = key("reader", &[Scope::AdminRead, Scope::AdminWrite]);
    let (trusted, trusted_entry) = key("trusted", &[Scope::AdminRead, Scope::AdminReadUnmasked]);
    keys_mode(&mut settings, vec![reader_entry, trusted_entry]);
    let run = uuid::Uuid::new_v4().simple().to_string();
    let topic = format!("masked-{run}");
    settings.admin.masking = vec![orderflow::config::MaskRule {
        topics: format!("masked-{}*", &run[..8]),
        fields: vec!["customer_id".into()],
    }];
    let app = TestApp::spawn(settings).await;
    let (status, _) = {
        let response = app
            .client
            .post(app.url("/api/admin/topics"))
            .headers(bearer(&reader))
            .json(&json!({"name": topic, "partitions": 1}))
            .send()
            .await
            .unwrap();
        (response.status(), ())
    };
    assert_eq!(status, 201);
    let response = app
        .client
        .post(app.url(&format!("/api/admin/topics/{topic}/messages")))
        .headers(bearer(&reader))
        .json(&json!({"records": [{"key": "o-1", "value": {"customer_id": "cust-42", "total": 5.0}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let as_key = |key: &str| {
        let (app, key, topic) = (&app, key.to_string(), topic.clone());
        async move {
            let url = app.url(&format!(
                "/api/admin/topics/{topic}/messages?{}",
                query(&[("filter", r#"value.customer_id == "cust-42""#)])
            ));
            let page: Value = app
                .client
                .get(url)
                .headers(bearer(&key))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            page
        }
    };
    let hidden = as_key(&reader).await;
    assert_eq!(
        hidden["matched"], 1,
        "the filter ran on the real value: {hidden}"
    );
    assert_eq!(
        hidden["records"][0]["value"],
        json!({"customer_id": "***", "total": 5.0})
    );
    let shown = as_key(&trusted).await;
    assert_eq!(shown["records"][0]["value"]["customer_id"], "cust-42");
    // The export masks the same way.
    let export = app
        .client
        .get(app.url(&format!(
            "/api/admin/topics/{topic}/messages?from=beginning"
        )))
        .headers(bearer(&reader))
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let first: Value = serde_json::from_str(export.lines().next().unwrap()).unwrap();
    assert_eq!(first["value"]["customer_id"], "***", "{export}");
}
