//! What operators see: /metrics parsed as Prometheus does, counters moving by exactly what
//! the test did, and one trace id following an order through the logs.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;
use crate::lifecycle::{service_command, wait_ready};

/// Polls /metrics until `check` holds (statistics gauges arrive on librdkafka's schedule).
async fn scrape_until(app: &TestApp, what: &str, check: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let scrape = app.scrape().await;
        if check(&scrape) {
            return scrape;
        }
        if Instant::now() > deadline {
            let text = app.metrics_text().await;
            let kafka: Vec<&str> = text.lines().filter(|l| l.contains("kafka_")).collect();
            panic!("never saw {what} in /metrics:\n{}", kafka.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn metrics_show_every_family_and_count_exactly_what_happened() {
    let broker = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&broker);
    settings.producer.statistics_interval = Duration::from_millis(200);
    settings.processing.statistics_interval = Duration::from_millis(200);
    let app = TestApp::spawn(settings).await;
    let orders_topic = app.settings.topics.orders.name.clone();
    let status_topic = app.settings.topics.status.name.clone();
    let before = app.scrape().await;

    // Three single orders, one that a rule fails, a bulk of two good and one bad, a
    // malformed body and an invalid order. Bodies are sent as bytes to know their sizes.
    let mut sent_bytes = 0usize;
    let mut post = |body: String| {
        sent_bytes += body.len();
        app.client
            .post(app.url("/api/orders"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let mut ids = Vec::new();
    for _ in 0..3 {
        let response = post(valid_order().to_string()).await.unwrap();
        assert_eq!(response.status(), 202);
        ids.push(
            response.json::<Value>().await.unwrap()["order_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let mut blocked = valid_order();
    blocked["customer_id"] = json!("blocked-customer");
    let response = post(blocked.to_string()).await.unwrap();
    assert_eq!(response.status(), 202);
    let blocked_id = response.json::<Value>().await.unwrap()["order_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(post("{not json".into()).await.unwrap().status(), 400);
    let mut invalid = valid_order();
    invalid["items"] = json!([]);
    assert_eq!(post(invalid.to_string()).await.unwrap().status(), 422);

    let mut bad_line = valid_order();
    bad_line["items"][0]["quantity"] = json!(0);
    let bulk = app
        .post_json(
            "/api/orders/bulk",
            &json!({"orders": [valid_order(), bad_line, valid_order()]}),
        )
        .await;
    assert_eq!(bulk.status(), 207);
    let bulk: Value = bulk.json().await.unwrap();
    for item in bulk["results"].as_array().unwrap() {
        if let Some(id) = item["order_id"]
            .as_str()
            .filter(|_| item["outcome"] == "accepted")
        {
            ids.push(id.to_string());
        }
    }
    assert_eq!(ids.len(), 5);
    for id in &ids {
        app.wait_status(id, "COMPLETED").await;
    }
    app.wait_status(&blocked_id, "FAILED").await;

    // Offsets are committed every 200 ms and statistics come every 200 ms: wait until the
    // committed offsets of the orders topic account for all six records.
    let after = scrape_until(&app, "committed offsets of all six orders", |s| {
        s.value(
            "orderflow_kafka_consumer_committed_offset",
            &[("topic", &orders_topic)],
        ) == 6.0
            && s.value("orderflow_kafka_producer_broker_requests", &[]) > 0.0
            && s.value(
                "orderflow_kafka_producer_batch_size_bytes",
                &[("topic", &orders_topic)],
            ) > 0.0
    })
    .await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };

    // Orders.
    assert_eq!(delta("orderflow_orders_accepted_total", &[]), 6.0);
    assert_eq!(
        delta(
            "orderflow_orders_rejected_total",
            &[("code", "malformed_json")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "orderflow_orders_rejected_total",
            &[("code", "validation_failed")]
        ),
        2.0
    );
    assert_eq!(delta("orderflow_orders_rejected_total", &[]), 3.0);
    assert_eq!(delta("orderflow_orders_bulk_size", &[]), 1.0);
    assert_eq!(delta("orderflow_orders_bulk_size_sum", &[]), 3.0);
    assert_eq!(
        delta(
            "orderflow_orders_processed_total",
            &[("status", "COMPLETED")]
        ),
        5.0
    );
    assert_eq!(
        delta("orderflow_orders_processed_total", &[("status", "FAILED")]),
        1.0
    );
    assert_eq!(
        delta(
            "orderflow_orders_processed_total",
            &[("status", "CANCELLED")]
        ),
        0.0
    );
    assert_eq!(delta("orderflow_order_accept_to_final_seconds", &[]), 6.0);

    // HTTP, by route template.
    let post_orders = [("route", "/api/orders"), ("method", "POST")];
    let with_status = |s: &'static str| [post_orders[0], post_orders[1], ("status", s)];
    assert_eq!(
        delta("orderflow_http_requests_total", &with_status("202")),
        4.0
    );
    assert_eq!(
        delta("orderflow_http_requests_total", &with_status("400")),
        1.0
    );
    assert_eq!(
        delta("orderflow_http_requests_total", &with_status("422")),
        1.0
    );
    assert_eq!(
        delta(
            "orderflow_http_requests_total",
            &[("route", "/api/orders/bulk"), ("status", "207")]
        ),
        1.0
    );
    assert_eq!(
        delta("orderflow_http_request_duration_seconds", &post_orders),
        6.0
    );
    let size = [("route", "/api/orders")];
    assert_eq!(delta("orderflow_http_request_size_bytes", &size), 6.0);
    assert_eq!(
        delta("orderflow_http_request_size_bytes_sum", &size),
        sent_bytes as f64
    );
    assert_eq!(delta("orderflow_http_response_size_bytes", &size), 6.0);
    assert!(delta("orderflow_http_response_size_bytes_sum", &size) > 6.0 * 100.0);
    assert!(after.value("orderflow_http_requests_in_flight", &[]) >= 0.0);
    assert!(
        after
            .samples("orderflow_http_requests_in_flight", &[])
            .count()
            == 1
    );

    // Producer: six orders, and one final status record for each on the status topic.
    let orders = [("topic", orders_topic.as_str())];
    let status = [("topic", status_topic.as_str())];
    assert_eq!(
        delta("orderflow_kafka_producer_records_sent_total", &orders),
        6.0
    );
    assert_eq!(
        delta("orderflow_kafka_producer_records_sent_total", &status),
        6.0
    );
    assert_eq!(
        delta("orderflow_kafka_producer_records_failed_total", &[]),
        0.0
    );
    assert_eq!(
        delta("orderflow_kafka_producer_delivery_seconds", &orders),
        6.0
    );
    assert!(delta("orderflow_kafka_producer_bytes_total", &orders) > 6.0 * 200.0);
    assert_eq!(
        after
            .samples("orderflow_kafka_producer_queue_records", &[])
            .count(),
        1
    );
    assert_eq!(
        after
            .samples("orderflow_kafka_producer_queue_bytes", &[])
            .count(),
        1
    );
    let rtt: Vec<_> = after
        .samples(
            "orderflow_kafka_producer_broker_rtt_seconds",
            &[("stat", "avg")],
        )
        .collect();
    assert!(!rtt.is_empty(), "no broker round-trip gauge");
    assert!(rtt.iter().all(|s| {
        s.labels
            .get("broker")
            .is_some_and(|b| b.contains(&broker.port.to_string()))
    }));
    for family in [
        "orderflow_kafka_producer_broker_outbuf_requests",
        "orderflow_kafka_producer_broker_waitresp_requests",
        "orderflow_kafka_producer_broker_request_errors",
        "orderflow_kafka_producer_batch_records",
    ] {
        assert!(after.samples(family, &[]).count() > 0, "{family} missing");
    }

    // Consumers.
    assert_eq!(
        delta("orderflow_kafka_consumer_records_total", &orders),
        6.0
    );
    assert!(
        after.value(
            "orderflow_kafka_consumer_rebalances_total",
            &[("kind", "assign")]
        ) >= 1.0
    );
    assert!(
        after.value(
            "orderflow_kafka_consumer_commits_total",
            &[("result", "ok")]
        ) >= 1.0
    );
    let lag: Vec<_> = after
        .samples("orderflow_kafka_consumer_lag_records", &orders)
        .collect();
    // librdkafka knows a partition's lag once it has a committed offset there.
    assert!(!lag.is_empty());
    for gauge in &lag {
        let partition = gauge.labels.get("partition").unwrap();
        assert!(["0", "1", "2"].contains(&partition), "{partition}");
    }
    assert_eq!(
        after
            .samples("orderflow_kafka_consumer_dead_lettered_total", &orders)
            .count(),
        3
    );
    assert_eq!(
        after.value("orderflow_consumer_task_restarts_total", &[]),
        0.0
    );

    // Process and build.
    // CPU time is counted in whole seconds by the collector: present, maybe still 0.
    assert_eq!(
        after
            .samples("orderflow_process_cpu_seconds_total", &[])
            .count(),
        1
    );
    for family in [
        "orderflow_process_resident_memory_bytes",
        "orderflow_process_open_fds",
        "orderflow_process_start_time_seconds",
    ] {
        assert!(after.value(family, &[]) > 0.0, "{family}");
    }
    let build: Vec<_> = after.samples("orderflow_build_info", &[]).collect();
    assert_eq!(build.len(), 1);
    assert_eq!(
        build[0].labels.get("version"),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert!(!build[0].labels.get("commit").unwrap_or_default().is_empty());

    // Every family has help text; no label carries an unbounded value such as an order id.
    let families: BTreeSet<&str> = after.all().iter().map(|s| s.metric.as_str()).collect();
    for family in &families {
        let base = family.trim_end_matches("_sum").trim_end_matches("_count");
        assert!(
            after.help(base).is_some_and(|h| !h.is_empty()),
            "{family} has no HELP"
        );
    }
    for sample in after.all() {
        for (name, value) in sample.labels.iter() {
            assert!(
                value.parse::<uuid::Uuid>().is_err(),
                "{} has an id in label {name}",
                sample.metric
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_id_follows_an_order_from_post_to_final_status() {
    let broker = TestBroker::start(Engine::Memory).await;
    let settings = test_settings(&broker);
    let port = free_port();
    let log_path = log_dir().join(format!("orderflow-trace-{port}.jsonl"));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut command = service_command(&broker, &settings, port);
    command
        .env("ORDERFLOW__TELEMETRY__LOG_FORMAT", "json")
        // Per-order lines are at debug (docs/operating.md, "Logs"): this is how an operator follows one.
        .env("RUST_LOG", "info,librdkafka=warn,orderflow=debug")
        .stdout(Stdio::from(log));
    let mut child = command.spawn().expect("start orderflow");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;

    // A client's trace: the service continues it (same trace id, its own span id).
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = client
        .post(format!("{base}/api/orders"))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&valid_order())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let answered = answered_traceparent(&response);
    assert!(
        answered.starts_with(&format!("00-{trace_id}-")),
        "{answered}"
    );
    assert!(
        !answered.contains("00f067aa0ba902b7"),
        "the service's span has its own id"
    );
    let order_id = response.json::<Value>().await.unwrap()["order_id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_status(&client, &base, &order_id, "COMPLETED").await;

    // Without a traceparent the service starts a trace and says which.
    let response = client
        .post(format!("{base}/api/orders"))
        .json(&valid_order())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let started = answered_traceparent(&response);
    let started_id = started.split('-').nth(1).unwrap().to_string();
    assert_eq!(started_id.len(), 32);
    let second_id = response.json::<Value>().await.unwrap()["order_id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_status(&client, &base, &second_id, "COMPLETED").await;

    // Both topics carry the trace on each record of these orders.
    let placed = read_topic(&broker.bootstrap(), &settings.topics.orders.name, 2).await;
    let statuses = read_topic(&broker.bootstrap(), &settings.topics.status.name, 2).await;
    for (id, trace) in [(&order_id, trace_id), (&second_id, started_id.as_str())] {
        let records: Vec<_> = placed
            .iter()
            .chain(&statuses)
            .filter(|r| r.key.as_deref() == Some(id))
            .collect();
        assert_eq!(records.len(), 2, "the order, then its final status");
        for record in records {
            let header = record.header("traceparent").expect("traceparent header");
            assert_eq!(header.split('-').nth(1), Some(trace), "{header}");
        }
    }

    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;

    // Every JSON line that mentions the trace id, and what it says.
    let lines: Vec<Value> = std::io::BufReader::new(std::fs::File::open(&log_path).unwrap())
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).expect("every log line is JSON"))
        .collect();
    let messages_for = |trace: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.to_string().contains(trace))
            .map(|l| l["message"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    for trace in [trace_id, started_id.as_str()] {
        let messages = messages_for(trace);
        for expected in [
            "finished processing request",
            "order accepted (acknowledged by kafka)",
            "order record received",
            "order status written to the status topic",
        ] {
            assert!(
                messages.iter().any(|m| m == expected),
                "no {expected:?} line for trace {trace}: {messages:?}"
            );
        }
    }
    // The request's line names the service's span for it: the span id the response gave.
    let answered_span = answered.split('-').nth(2).unwrap();
    let request_line = lines
        .iter()
        .find(|l| l["message"] == "finished processing request" && l.to_string().contains(trace_id))
        .unwrap();
    assert!(
        request_line
            .to_string()
            .contains(&format!("\"span_id\":\"{answered_span}\"")),
        "{request_line}"
    );
    // The processing lines say which record and which order.
    let processed = lines
        .iter()
        .find(|l| l["message"] == "order record received" && l.to_string().contains(trace_id))
        .unwrap();
    let text = processed.to_string();
    for field in [
        "\"partition\"",
        "\"offset\"",
        &format!("\"order_id\":\"{order_id}\""),
    ] {
        assert!(text.contains(field), "{field} missing in {text}");
    }
}

#[tokio::test]
async fn a_request_its_client_abandons_is_no_longer_counted_in_flight() {
    let home = TestBroker::start(Engine::Memory).await;
    let mut settings = test_settings(&home);
    // Orders stay PENDING, so a long-poll for their outcome waits its whole timeout.
    settings.processing.consumers = 0;
    let app = TestApp::spawn(settings).await;
    let id = app.place(&valid_order()).await;
    let in_flight = || async {
        app.scrape()
            .await
            .value("orderflow_http_requests_in_flight", &[])
    };
    // The scrape counts itself.
    let idle = in_flight().await;
    let waiting = tokio::spawn(
        app.client
            .get(app.url(&format!("/api/orders/{id}?wait_for=COMPLETED&timeout=4s")))
            .send(),
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while in_flight().await != idle + 1.0 {
        assert!(
            Instant::now() < deadline,
            "the long-poll never showed in flight"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The client goes away; the long-poll had nearly 4 s left, so only a request counted
    // out when its client left is gone from the gauge well before then.
    waiting.abort();
    let deadline = Instant::now() + Duration::from_millis(2_500);
    loop {
        let now = in_flight().await;
        if now == idle {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {now} in flight (idle: {idle}) after the client left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
