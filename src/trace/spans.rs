//! The spans exported over OpenTelemetry, named and attributed by its semantic conventions
//! (HTTP server spans; Kafka messaging spans with `messaging.operation.type` publish and
//! process). They are made with the OpenTelemetry SDK directly, their parents passed
//! explicitly as this service's [`TraceContext`]: measured, a span through `tracing` and its
//! OpenTelemetry bridge cost about five times as much (docs/benchmarks.md, "Span export").
//! With export off every constructor returns [`Span::none`] at the cost of one load.

use std::borrow::Cow;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanKind, Status, TraceContextExt, Tracer as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;

use super::TraceContext;

struct Exporting {
    tracer: SdkTracer,
    parent_based: bool,
}

static EXPORTING: OnceLock<Exporting> = OnceLock::new();
static ON: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported in this process.
pub fn exporting() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Called once, when export starts; `parent_based`: whether the sampler keeps a parent's (or
/// linked trace's) decision.
pub(crate) fn install(tracer: SdkTracer, parent_based: bool) {
    if EXPORTING
        .set(Exporting {
            tracer,
            parent_based,
        })
        .is_ok()
    {
        ON.store(true, Ordering::Release);
    }
}

fn tracer() -> Option<&'static Exporting> {
    if exporting() { EXPORTING.get() } else { None }
}

/// Whether a span continuing `context` can be recorded. The sampler would drop a span whose
/// parent is not sampled anyway; deciding here, before the span is made, keeps unsampled
/// orders (99 of 100 at a 1% ratio) at the cost of no span at all.
fn follows(context: Option<&TraceContext>) -> Option<&'static SdkTracer> {
    let exporting = tracer()?;
    (context.is_none_or(TraceContext::is_sampled) || !exporting.parent_based)
        .then_some(&exporting.tracer)
}

/// An exported span, or none; it ends when dropped.
#[derive(Debug, Default)]
pub struct Span(Option<opentelemetry_sdk::trace::Span>);

impl Span {
    /// No span (export off, or not recorded).
    pub fn none() -> Span {
        Span(None)
    }

    /// The context this span hands on (into record headers and responses); `None` when
    /// there is no span.
    pub fn context(&self) -> Option<TraceContext> {
        self.0
            .as_ref()
            .and_then(|span| TraceContext::from_span_context(span.span_context()))
    }

    fn recording(&mut self) -> Option<&mut opentelemetry_sdk::trace::Span> {
        self.0.as_mut().filter(|span| span.is_recording())
    }

    /// Names the server span by its route template (`POST /api/orders/{id}`).
    pub fn record_route(&mut self, method: &str, route: &str) {
        if let Some(span) = self.recording() {
            span.set_attribute(KeyValue::new("http.route", route.to_string()));
            span.update_name(format!("{method} {route}"));
        }
    }

    /// The answer's status on the server span; a server error marks the span as failed.
    pub fn record_response(&mut self, status: u16) {
        if let Some(span) = self.recording() {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
            if status >= 500 {
                span.set_status(Status::error(""));
            }
        }
    }

    /// Where the broker put the record.
    pub fn record_delivery(&mut self, partition: i32, offset: i64) {
        if let Some(span) = self.recording() {
            span.set_attribute(KeyValue::new(
                "messaging.kafka.destination.partition",
                i64::from(partition),
            ));
            span.set_attribute(KeyValue::new("messaging.kafka.offset", offset));
        }
    }

    /// A failure, by its kind (never the error's text, which may name internals).
    pub fn record_error(&mut self, kind: &'static str) {
        if let Some(span) = self.recording() {
            span.set_attribute(KeyValue::new("error.type", kind));
            span.set_status(Status::error(""));
        }
    }

    /// A status change put on the live feed (server-sent events and WebSockets) by the work
    /// of this span (a status write or a view update).
    pub fn live_event(&mut self, order_id: &uuid::Uuid, status: &'static str) {
        if let Some(span) = self.recording() {
            span.add_event(
                "live status published",
                vec![
                    KeyValue::new("orderflow.order.id", order_id.to_string()),
                    KeyValue::new("orderflow.order.status", status),
                ],
            );
        }
    }
}

/// `context` as the parent of a span made here: `remote` when it came from elsewhere (a
/// caller's header, a record's headers), local when this process made it.
fn parent(context: &TraceContext, remote: bool) -> Context {
    let span = context.span_context();
    let span = if remote {
        span
    } else {
        SpanContext::new(
            span.trace_id(),
            span.span_id(),
            span.trace_flags(),
            false,
            span.trace_state().clone(),
        )
    };
    Context::new().with_remote_span_context(span)
}

fn start(
    tracer: &SdkTracer,
    name: impl Into<Cow<'static, str>>,
    kind: SpanKind,
    attributes: Vec<KeyValue>,
    parent: &Context,
    links: Vec<Link>,
) -> Span {
    let builder = tracer
        .span_builder(name)
        .with_kind(kind)
        .with_attributes(attributes)
        .with_links(links);
    Span(Some(tracer.build_with_context(builder, parent)))
}

/// A span that starts a trace of its own, linked to `to` (a bulk order's produce, a view's
/// update).
fn start_linked(
    tracer: &SdkTracer,
    name: impl Into<Cow<'static, str>>,
    kind: SpanKind,
    attributes: Vec<KeyValue>,
    to: &TraceContext,
) -> Span {
    let links = vec![Link::with_context(to.span_context())];
    start(tracer, name, kind, attributes, &Context::new(), links)
}

/// The server span of one HTTP request, continuing the caller's trace when it sent one.
/// Named `{method}` until the route is known ([`Span::record_route`]). Probes and scrapes
/// (`/health/…`, `/metrics`) have none: they would bury the traces worth reading.
pub fn http_server(method: &axum::http::Method, path: &str, caller: Option<&TraceContext>) -> Span {
    if path.starts_with("/health/") || path == "/metrics" {
        return Span::none();
    }
    let Some(tracer) = follows(caller) else {
        return Span::none();
    };
    let attributes = vec![
        KeyValue::new("http.request.method", method.as_str().to_string()),
        KeyValue::new("url.path", path.to_string()),
        KeyValue::new("url.scheme", "http"),
    ];
    let parent = caller.map(|c| parent(c, true)).unwrap_or_default();
    start(
        tracer,
        method.as_str().to_string(),
        SpanKind::Server,
        attributes,
        &parent,
        Vec::new(),
    )
}

/// Where a produced record's span belongs.
pub enum Parent<'a> {
    /// Inside this service's span with this context (the request's, or the processing's).
    Within(&'a TraceContext),
    /// A trace of its own, linked to this one (each order of a bulk request).
    Linked(&'a TraceContext),
}

/// A producer span for one record to `topic`; its context goes into the record's headers.
pub fn publish(topic: &str, key: &str, parent_span: Parent<'_>) -> Span {
    let (Parent::Within(trace) | Parent::Linked(trace)) = parent_span;
    let Some(tracer) = follows(Some(trace)) else {
        return Span::none();
    };
    let attributes = vec![
        KeyValue::new("messaging.system", "kafka"),
        KeyValue::new("messaging.operation.type", "publish"),
        KeyValue::new("messaging.destination.name", topic.to_string()),
        KeyValue::new("messaging.kafka.message.key", key.to_string()),
    ];
    let name = format!("publish {topic}");
    match parent_span {
        Parent::Within(trace) => start(
            tracer,
            name,
            SpanKind::Producer,
            attributes,
            &parent(trace, false),
            Vec::new(),
        ),
        Parent::Linked(trace) => start_linked(tracer, name, SpanKind::Producer, attributes, trace),
    }
}

/// A consumed record, as the messaging spans describe it.
pub struct Consumed<'a> {
    /// The record's topic.
    pub topic: &'a str,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key, when it is text.
    pub key: Option<&'a str>,
    /// The consumer group reading it, if any.
    pub group: Option<&'a str>,
    /// The context its producer wrote into its headers.
    pub context: Option<TraceContext>,
}

/// What a consumer span stands for.
#[derive(Clone, Copy)]
pub enum Consume {
    /// The record handled, from its receipt (waits behind earlier records of the same key
    /// included) until it is done: continues the producer's trace.
    Process,
    /// The record applied to this instance's status view: a trace of its own, linked to the
    /// producer's (every instance does it, so it is no single trace's child). Made only when
    /// the producer's trace is sampled.
    Apply,
}

/// A consumer span for `record`.
pub fn consume(operation: Consume, record: &Consumed<'_>) -> Span {
    let tracer = match operation {
        Consume::Process => follows(record.context.as_ref()),
        // A trace of its own, recorded with the order's: never for an unsampled order.
        Consume::Apply => tracer()
            .filter(|_| {
                record
                    .context
                    .as_ref()
                    .is_some_and(TraceContext::is_sampled)
            })
            .map(|e| &e.tracer),
    };
    let Some(tracer) = tracer else {
        return Span::none();
    };
    let mut attributes = vec![
        KeyValue::new("messaging.system", "kafka"),
        KeyValue::new("messaging.operation.type", "process"),
        KeyValue::new("messaging.destination.name", record.topic.to_string()),
        KeyValue::new(
            "messaging.kafka.destination.partition",
            i64::from(record.partition),
        ),
        KeyValue::new("messaging.kafka.offset", record.offset),
    ];
    if let Some(key) = record.key {
        attributes.push(KeyValue::new(
            "messaging.kafka.message.key",
            key.to_string(),
        ));
    }
    if let Some(group) = record.group {
        attributes.push(KeyValue::new(
            "messaging.consumer.group.name",
            group.to_string(),
        ));
    }
    let name = format!("process {}", record.topic);
    match (operation, &record.context) {
        (Consume::Apply, Some(context)) => {
            start_linked(tracer, name, SpanKind::Consumer, attributes, context)
        }
        (_, context) => {
            let parent = context
                .as_ref()
                .map(|c| parent(c, true))
                .unwrap_or_default();
            start(
                tracer,
                name,
                SpanKind::Consumer,
                attributes,
                &parent,
                Vec::new(),
            )
        }
    }
}

/// A tracked operation (replicate, migrate, …) running after the request that started it,
/// in that request's trace.
pub fn operation(kind: &'static str, id: &str, request: Option<&TraceContext>) -> Span {
    let Some(tracer) = follows(request) else {
        return Span::none();
    };
    let parent = request.map(|r| parent(r, false)).unwrap_or_default();
    start(
        tracer,
        format!("operation {kind}"),
        SpanKind::Internal,
        vec![
            KeyValue::new("orderflow.operation.id", id.to_string()),
            KeyValue::new("orderflow.operation.kind", kind),
        ],
        &parent,
        Vec::new(),
    )
}
