//! OpenTelemetry export: the real binary sends OTLP/HTTP protobuf to a receiver here that
//! decodes it with the `opentelemetry-proto` types (the protocol's own messages), and the
//! tests read an order's story from what arrived.

use std::collections::HashMap;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::lifecycle::{service_command, wait_ready};

/// A span as received, with its resource's attributes.
#[derive(Debug, Clone)]
struct Received {
    span: opentelemetry_proto::tonic::trace::v1::Span,
    resource: Vec<KeyValue>,
}

impl Received {
    fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }
    fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }
    fn parent(&self) -> String {
        hex(&self.span.parent_span_id)
    }
    fn kind(&self) -> SpanKind {
        SpanKind::try_from(self.span.kind).unwrap_or(SpanKind::Unspecified)
    }
    fn attr(&self, key: &str) -> Option<Value> {
        attribute(&self.span.attributes, key)
    }
    fn text(&self, key: &str) -> String {
        self.attr(key)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

fn attribute(attributes: &[KeyValue], key: &str) -> Option<Value> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?;
    Some(match value.value.as_ref()? {
        any_value::Value::StringValue(s) => json!(s),
        any_value::Value::IntValue(i) => json!(i),
        any_value::Value::BoolValue(b) => json!(b),
        any_value::Value::DoubleValue(d) => json!(d),
        other => json!(format!("{other:?}")),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An OTLP/HTTP receiver: every export request decoded and kept, with its headers.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Received>>>,
    requests: Arc<Mutex<Vec<HeaderMap>>>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let receiver = Receiver::default();
        let app = axum::Router::new()
            .route("/v1/traces", axum::routing::post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, address)
    }

    fn spans(&self) -> Vec<Received> {
        self.spans.lock().unwrap().clone()
    }

    /// Waits until `check` finds what it needs among the spans received.
    async fn wait_for<T>(&self, what: &str, check: impl Fn(&[Received]) -> Option<T>) -> T {
        poll_until(
            what,
            Duration::from_secs(20),
            Duration::from_millis(100),
            || {
                let spans = self.spans();
                let found = check(&spans);
                async move {
                    found.ok_or_else(|| {
                        spans
                            .iter()
                            .map(|s| format!("{} {} {}", s.span.name, s.trace_id(), s.span_id()))
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                }
            },
        )
        .await
    }
}

async fn receive(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], Vec<u8>) {
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/x-protobuf")
    );
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf request");
    let mut spans = receiver.spans.lock().unwrap();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| r.attributes)
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                spans.push(Received {
                    span,
                    resource: resource.clone(),
                });
            }
        }
    }
    receiver.requests.lock().unwrap().push(headers);
    let answer = ExportTraceServiceResponse::default().encode_to_vec();
    (
        StatusCode::OK,
        [("content-type", "application/x-protobuf")],
        answer,
    )
}

/// The binary with the test's topics, exporting per `otel` (variables), ready; its JSON
/// log lines (per-order lines on) go to the returned file.
async fn start_exporting(
    broker: &TestBroker,
    otel: &[(&str, &str)],
) -> (
    orderflow::config::Settings,
    Child,
    String,
    reqwest::Client,
    std::path::PathBuf,
) {
    let settings = test_settings(broker);
    let port = free_port();
    let log_path = log_dir().join(format!("orderflow-otel-{port}.jsonl"));
    let mut command = service_command(broker, &settings, port);
    command
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("ORDERFLOW__TELEMETRY__LOG_FORMAT", "json")
        .env("RUST_LOG", "info,librdkafka=warn,orderflow=debug")
        .stdout(std::fs::File::create(&log_path).unwrap());
    for (name, value) in otel {
        command.env(name, value);
    }
    let child = command.spawn().expect("start orderflow");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;
    (settings, child, base, client, log_path)
}

/// The JSON log lines with `message` that mention `trace`.
fn log_lines(path: &std::path::Path, message: &str, trace: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("every log line is JSON"))
        .filter(|l| l["message"] == message && l.to_string().contains(trace))
        .collect()
}

fn stop(child: Child) -> std::process::ExitStatus {
    let mut child = child;
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap()
}

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const CALLER_STATE: &str = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_one_trace_from_the_request_to_its_status_and_the_views() {
    let broker = TestBroker::start(Engine::Memory).await;
    let (receiver, endpoint) = Receiver::start().await;
    let (settings, child, base, client, log) = start_exporting(
        &broker,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-team-key=s3cret"),
            ("OTEL_SERVICE_NAME", "orders-under-test"),
        ],
    )
    .await;
    let orders = settings.topics.orders.name.as_str();
    let statuses = settings.topics.status.name.as_str();

    let response = client
        .post(format!("{base}/api/orders"))
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .header("tracestate", CALLER_STATE)
        .json(&valid_order())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let answered = answered_traceparent(&response);
    let order_id = response.json::<Value>().await.unwrap()["order_id"]
        .as_str()
        .unwrap()
        .to_string();
    let view = wait_status(&client, &base, &order_id, "COMPLETED").await;
    // From the order to its trace.
    assert_eq!(view["trace_id"], CALLER_TRACE);

    let named = |spans: &[Received], name: &str| -> Option<Received> {
        spans
            .iter()
            .find(|s| s.trace_id() == CALLER_TRACE && s.span.name == name)
            .cloned()
    };
    let story = receiver
        .wait_for("the order's spans", |spans| {
            Some((
                named(spans, "POST /api/orders")?,
                named(spans, &format!("publish {orders}"))?,
                named(spans, &format!("process {orders}"))?,
                named(spans, &format!("publish {statuses}"))?,
            ))
        })
        .await;
    let (server, publish, process, status_write) = story;

    // The request continues the caller's span; the response names the server span.
    assert_eq!(server.kind(), SpanKind::Server);
    assert_eq!(server.parent(), CALLER_SPAN);
    assert_eq!(
        answered,
        format!("00-{CALLER_TRACE}-{}-01", server.span_id())
    );
    assert_eq!(server.text("http.request.method"), "POST");
    assert_eq!(server.text("http.route"), "/api/orders");
    assert_eq!(server.attr("http.response.status_code"), Some(json!(202)));
    // The produce, inside the request, with where the record went.
    assert_eq!(publish.kind(), SpanKind::Producer);
    assert_eq!(publish.parent(), server.span_id());
    assert_eq!(publish.text("messaging.system"), "kafka");
    assert_eq!(publish.text("messaging.destination.name"), orders);
    assert_eq!(publish.text("messaging.operation.type"), "publish");
    assert_eq!(publish.text("messaging.kafka.message.key"), order_id);
    let partition = publish.attr("messaging.kafka.destination.partition");
    let offset = publish.attr("messaging.kafka.offset");
    assert!(
        partition.as_ref().is_some_and(Value::is_i64),
        "{partition:?}"
    );
    assert!(offset.as_ref().is_some_and(Value::is_i64), "{offset:?}");
    // The processor continues the trace from the record's headers.
    assert_eq!(process.kind(), SpanKind::Consumer);
    assert_eq!(process.parent(), publish.span_id());
    assert_eq!(process.text("messaging.operation.type"), "process");
    assert_eq!(process.text("messaging.destination.name"), orders);
    assert_eq!(
        process.attr("messaging.kafka.destination.partition"),
        partition
    );
    assert_eq!(process.attr("messaging.kafka.offset"), offset);
    assert_eq!(
        process.text("messaging.consumer.group.name"),
        settings.processing.group_id
    );
    // The status write, inside the processing, and the live event it made.
    assert_eq!(status_write.kind(), SpanKind::Producer);
    assert_eq!(status_write.parent(), process.span_id());
    assert_eq!(status_write.text("messaging.destination.name"), statuses);
    let live = status_write
        .span
        .events
        .iter()
        .find(|e| e.name == "live status published")
        .expect("the live event");
    assert_eq!(
        attribute(&live.attributes, "orderflow.order.id"),
        Some(json!(order_id))
    );
    assert_eq!(
        attribute(&live.attributes, "orderflow.order.status"),
        Some(json!("COMPLETED"))
    );
    // The caller's tracestate travels with the trace.
    for span in [&server, &publish, &process, &status_write] {
        assert_eq!(span.span.trace_state, CALLER_STATE, "{}", span.span.name);
    }
    // The status view's update (its own trace) links to the status write.
    let applied = receiver
        .wait_for("the view's update", |spans| {
            spans
                .iter()
                .find(|s| {
                    s.span.name == format!("process {statuses}")
                        && s.span.links.iter().any(|l| {
                            hex(&l.trace_id) == CALLER_TRACE
                                && hex(&l.span_id) == status_write.span_id()
                        })
                })
                .cloned()
        })
        .await;
    assert_ne!(applied.trace_id(), CALLER_TRACE);
    assert_eq!(applied.kind(), SpanKind::Consumer);
    assert_eq!(applied.text("messaging.operation.type"), "process");
    assert_eq!(applied.parent(), "");

    // The log lines name the spans they belong to.
    let span_of = |message: &str| -> Vec<String> {
        log_lines(&log, message, CALLER_TRACE)
            .iter()
            .flat_map(|l| l["spans"].as_array().cloned().unwrap_or_default())
            .filter_map(|s| s["span_id"].as_str().map(str::to_string))
            .collect()
    };
    assert!(
        span_of("finished processing request").contains(&server.span_id()),
        "{:?}",
        span_of("finished processing request")
    );
    assert!(
        span_of("order record received").contains(&process.span_id()),
        "{:?}",
        span_of("order record received")
    );

    // Who sent it, and with the configured headers.
    assert_eq!(
        attribute(&server.resource, "service.name"),
        Some(json!("orders-under-test"))
    );
    let requests = receiver.requests.lock().unwrap().clone();
    assert!(requests.iter().all(|h| h["x-team-key"] == "s3cret"));
    assert!(stop(child).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_order_of_a_bulk_request_has_its_own_trace_linked_to_the_request() {
    let broker = TestBroker::start(Engine::Memory).await;
    let (receiver, endpoint) = Receiver::start().await;
    let (settings, child, base, client, _log) =
        start_exporting(&broker, &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)]).await;
    let orders = settings.topics.orders.name.clone();

    let response = client
        .post(format!("{base}/api/orders/bulk"))
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .json(&json!({ "orders": [valid_order(), valid_order(), valid_order()] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.unwrap();
    let ids: Vec<String> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["order_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    let mut traces = HashMap::new();
    for id in &ids {
        let view = wait_status(&client, &base, id, "COMPLETED").await;
        traces.insert(id.clone(), view["trace_id"].as_str().unwrap().to_string());
    }

    let server = receiver
        .wait_for("the bulk request's span", |spans| {
            spans
                .iter()
                .find(|s| s.trace_id() == CALLER_TRACE && s.span.name == "POST /api/orders/bulk")
                .cloned()
        })
        .await;
    for id in &ids {
        let trace = &traces[id];
        assert_ne!(trace, CALLER_TRACE, "each order has a trace of its own");
        let (publish, process) = receiver
            .wait_for("the order's trace", |spans| {
                let of = |name: String| {
                    spans
                        .iter()
                        .find(|s| &s.trace_id() == trace && s.span.name == name)
                        .cloned()
                };
                Some((
                    of(format!("publish {orders}"))?,
                    of(format!("process {orders}"))?,
                ))
            })
            .await;
        assert_eq!(
            publish.parent(),
            "",
            "the order's trace starts at its produce"
        );
        assert_eq!(publish.text("messaging.kafka.message.key"), *id);
        assert!(
            publish
                .span
                .links
                .iter()
                .any(|l| hex(&l.trace_id) == CALLER_TRACE && hex(&l.span_id) == server.span_id()),
            "linked to the request"
        );
        assert_eq!(process.parent(), publish.span_id());
    }
    let distinct: std::collections::HashSet<_> = traces.values().collect();
    assert_eq!(distinct.len(), 3);
    assert!(stop(child).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_does_not_sample_is_followed() {
    let broker = TestBroker::start(Engine::Memory).await;
    let (receiver, endpoint) = Receiver::start().await;
    let (_settings, child, base, client, _log) =
        start_exporting(&broker, &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)]).await;
    let unsampled = "0af7651916cd43dd8448eb211c80319c";
    let response = client
        .post(format!("{base}/api/orders"))
        .header("traceparent", format!("00-{unsampled}-b7ad6b7169203331-00"))
        .json(&valid_order())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    // The decision travels on: the answer says "not sampled".
    assert!(answered_traceparent(&response).ends_with("-00"));
    let unsampled_id = response.json::<Value>().await.unwrap()["order_id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_status(&client, &base, &unsampled_id, "COMPLETED").await;
    // Bad bytes and oversize values in the trace headers start a trace of the service's
    // own (the tracestate is dropped), never a 4xx or 500.
    let long_state = format!("a={}", "x".repeat(600));
    for (traceparent, tracestate) in [
        (&b"\xff\xfe00-not-a-trace"[..], &b"k=\xff"[..]),
        (
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            long_state.as_bytes(),
        ),
        (
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"=,=,,",
        ),
    ] {
        let response = client
            .post(format!("{base}/api/orders"))
            .header(
                "traceparent",
                reqwest::header::HeaderValue::from_bytes(traceparent).unwrap(),
            )
            .header(
                "tracestate",
                reqwest::header::HeaderValue::from_bytes(tracestate).unwrap(),
            )
            .json(&valid_order())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        let answered = answered_traceparent(&response);
        assert!(
            orderflow::trace::TraceContext::parse(&answered).is_some(),
            "{answered}"
        );
    }
    // A sampled order afterwards arrives whole; nothing of the unsampled one does.
    let sampled_id = place(&client, &base).await;
    let view = wait_status(&client, &base, &sampled_id, "COMPLETED").await;
    let sampled_trace = view["trace_id"].as_str().unwrap().to_string();
    receiver
        .wait_for("the sampled order's view update", |spans| {
            spans
                .iter()
                .any(|s| {
                    s.span
                        .links
                        .iter()
                        .any(|l| hex(&l.trace_id) == sampled_trace)
                })
                .then_some(())
        })
        .await;
    let spans = receiver.spans();
    assert!(
        !spans.iter().any(|s| s.trace_id() == unsampled
            || s.span.links.iter().any(|l| hex(&l.trace_id) == unsampled))
    );
    assert!(stop(child).success());
}

async fn place(client: &reqwest::Client, base: &str) -> String {
    let response = client
        .post(format!("{base}/api/orders"))
        .json(&valid_order())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    response.json::<Value>().await.unwrap()["order_id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn metric(client: &reqwest::Client, base: &str, name: &str) -> f64 {
    Scrape::fetch(client, base).await.value(name, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_collector_down_orders_complete_and_dropped_spans_are_counted() {
    let broker = TestBroker::start(Engine::Memory).await;
    // Nothing listens on this port.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let (_settings, child, base, client, _log) = start_exporting(
        &broker,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &nowhere),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
        ],
    )
    .await;
    for _ in 0..3 {
        let id = place(&client, &base).await;
        wait_status(&client, &base, &id, "COMPLETED").await;
    }
    poll_until(
        "dropped spans counted",
        Duration::from_secs(20),
        Duration::from_millis(200),
        || async {
            let dropped = metric(&client, &base, "orderflow_trace_spans_dropped_total").await;
            // At least the request, produce, receive, process and status write of 3 orders.
            if dropped >= 15.0 {
                Ok(dropped)
            } else {
                Err(format!("{dropped}"))
            }
        },
    )
    .await;
    assert_eq!(
        metric(&client, &base, "orderflow_trace_spans_exported_total").await,
        0.0
    );
    assert!(stop(child).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_export_off_nothing_is_sent_and_shutdown_flushes_when_on() {
    let broker = TestBroker::start(Engine::Memory).await;
    let (receiver, endpoint) = Receiver::start().await;
    // The endpoint is set, but the exporter is switched off the standard way.
    let (_settings, child, base, client, _log) = start_exporting(
        &broker,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_TRACES_EXPORTER", "none"),
        ],
    )
    .await;
    let id = place(&client, &base).await;
    let view = wait_status(&client, &base, &id, "COMPLETED").await;
    // The trace still travels (the id is the one the records carry).
    assert_eq!(view["trace_id"].as_str().map(str::len), Some(32));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        metric(&client, &base, "orderflow_trace_spans_exported_total").await,
        0.0
    );
    assert!(stop(child).success());
    assert!(receiver.spans().is_empty());
    assert!(receiver.requests.lock().unwrap().is_empty());

    // On, with batches held for a minute: only the shutdown sends them.
    let (_settings, child, base, client, _log) = start_exporting(
        &broker,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
        ],
    )
    .await;
    let id = place(&client, &base).await;
    let view = wait_status(&client, &base, &id, "COMPLETED").await;
    let trace = view["trace_id"].as_str().unwrap().to_string();
    assert!(
        receiver.spans().is_empty(),
        "held until the batch fills or shutdown"
    );
    let started = std::time::Instant::now();
    assert!(stop(child).success());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "within the grace period"
    );
    let spans = receiver.spans();
    assert!(
        spans
            .iter()
            .any(|s| s.trace_id() == trace && s.span.name == "POST /api/orders"),
        "{} spans",
        spans.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_change_and_the_operation_it_starts_are_spans_with_the_operation_id() {
    let broker = TestBroker::start(Engine::Memory).await;
    let second = TestBroker::start(Engine::Memory).await;
    let (receiver, endpoint) = Receiver::start().await;
    let (_settings, child, base, client, _log) =
        start_exporting(&broker, &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)]).await;
    let call = |path: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
            .json(&body)
            .send()
    };
    let registered = call(
        "/api/clusters",
        json!({"id": "second", "name": "second", "environment": "testing", "bootstrap_servers": second.bootstrap()}),
    )
    .await
    .unwrap();
    assert_eq!(registered.status(), 201);
    let topic = format!("traced-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let created = call("/api/admin/topics", json!({"name": topic, "partitions": 1}))
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let started = call(
        "/api/operations/replicate",
        json!({"source_cluster_id": "default", "target_cluster_ids": ["second"], "topics": [topic]}),
    )
    .await
    .unwrap();
    assert_eq!(started.status(), 202);
    let id = started.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    let (request, operation) = receiver
        .wait_for("the replicate's spans", |spans| {
            let request = spans.iter().find(|s| {
                s.trace_id() == CALLER_TRACE && s.span.name == "POST /api/operations/replicate"
            })?;
            let operation = spans
                .iter()
                .find(|s| s.span.name == "operation replicate")?;
            Some((request.clone(), operation.clone()))
        })
        .await;
    assert_eq!(operation.trace_id(), CALLER_TRACE);
    assert_eq!(operation.parent(), request.span_id());
    assert_eq!(operation.text("orderflow.operation.id"), id);
    assert_eq!(operation.text("orderflow.operation.kind"), "replicate");
    let spans = receiver.spans();
    for name in ["POST /api/clusters", "POST /api/admin/topics"] {
        assert!(
            spans
                .iter()
                .any(|s| s.trace_id() == CALLER_TRACE && s.span.name == name),
            "{name}"
        );
    }
    assert!(stop(child).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_never_answers_holds_no_request_up() {
    let broker = TestBroker::start(Engine::Memory).await;
    // Accepts connections and reads nothing, answers nothing.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = silent.accept().await {
            keep.lock().unwrap().push(socket);
        }
    });
    // A small queue, so it fills while the exporter waits out its 10 s timeout.
    let (_settings, child, base, client, _log) = start_exporting(
        &broker,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "8"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4"),
        ],
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        let started = std::time::Instant::now();
        ids.push(place(&client, &base).await);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a POST took {:?}",
            started.elapsed()
        );
    }
    for id in &ids {
        wait_status(&client, &base, id, "COMPLETED").await;
    }
    assert!(!held.lock().unwrap().is_empty(), "the exporter did connect");
    poll_until(
        "spans dropped while the collector hangs",
        Duration::from_secs(20),
        Duration::from_millis(200),
        || async {
            let dropped = metric(&client, &base, "orderflow_trace_spans_dropped_total").await;
            if dropped >= 20.0 {
                Ok(())
            } else {
                Err(format!("{dropped}"))
            }
        },
    )
    .await;
    // Shutdown does not wait for the hung export beyond the grace period.
    let stopping = std::time::Instant::now();
    assert!(stop(child).success());
    assert!(
        stopping.elapsed() < Duration::from_secs(8),
        "{:?}",
        stopping.elapsed()
    );
}
