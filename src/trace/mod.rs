//! W3C Trace Context (`traceparent` and `tracestate`): accepted from the client or started
//! here, carried in every Kafka record's headers, and put into the log spans of everything
//! done for an order, so one trace id follows an order from its HTTP request to its final
//! status.
//!
//! With OpenTelemetry export on ([`export`], `[telemetry.otlp]`), the ids written onward are
//! those of the exported spans ([`spans`]); with it off, the service makes its own span id
//! for a request and passes the caller's `tracestate` through unchanged. [`TRACE`] holds the
//! context of the work in hand: the request's, or a processed record's span. A malformed
//! `traceparent` starts a new trace and a malformed `tracestate` is dropped, as the
//! specification asks.

pub mod export;
pub mod spans;

use std::fmt;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

/// The header name, in Kafka records and in HTTP.
pub const TRACEPARENT: &str = "traceparent";
/// The vendor-specific companion of `traceparent`, in Kafka records and in HTTP.
pub const TRACESTATE: &str = "tracestate";
/// The longest `tracestate` passed on (the specification asks to propagate at least 512
/// characters; longer ones are dropped whole rather than cut mid-entry).
const MAX_TRACESTATE: usize = 512;

tokio::task_local! {
    /// The trace context of the work in hand: the HTTP request being handled, or the record
    /// being processed (its exported span's).
    pub static TRACE: TraceContext;
}

/// A trace id, the id of the span that sent it, the sampled flag, and the `tracestate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
    state: Option<Arc<str>>,
}

impl TraceContext {
    /// A new trace with a random trace id (a v4 UUID's 122 random bits), sampled.
    pub fn start() -> Self {
        TraceContext {
            trace_id: uuid::Uuid::new_v4().into_bytes(),
            span_id: new_span_id(),
            flags: 0x01,
            state: None,
        }
    }

    /// Parses a `traceparent` value. `None` when it is not a valid version-00 header (then
    /// the caller starts a new trace).
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        // Version 00 has exactly four fields; later versions may append more.
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        let _version = hex_bytes::<1>(version)?;
        let trace_id = hex_bytes::<16>(trace)?;
        let span_id = hex_bytes::<8>(span)?;
        let [flags] = hex_bytes::<1>(flags)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            span_id,
            flags,
            state: None,
        })
    }

    /// The context a message or request carries: its `traceparent`, with its `tracestate`
    /// when that is valid.
    pub fn from_parts(traceparent: Option<&str>, tracestate: Option<&str>) -> Option<Self> {
        let mut context = Self::parse(traceparent?)?;
        context.state = tracestate.and_then(valid_tracestate).map(Arc::from);
        Some(context)
    }

    /// The context in HTTP headers (several `tracestate` fields are one list).
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let traceparent = headers.get(TRACEPARENT)?.to_str().ok()?;
        let states: Vec<&str> = headers
            .get_all(TRACESTATE)
            .iter()
            .map(|v| v.to_str())
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        let state = (!states.is_empty()).then(|| states.join(","));
        Self::from_parts(Some(traceparent), state.as_deref())
    }

    /// The same trace with a new span id: what this service sends on.
    pub fn child(&self) -> Self {
        TraceContext {
            span_id: new_span_id(),
            ..self.clone()
        }
    }

    /// The trace id as 32 lowercase hex digits, the field logged as `trace_id`.
    pub fn trace_id(&self) -> String {
        hex(&self.trace_id)
    }

    /// The span id as 16 lowercase hex digits.
    pub fn span_id(&self) -> String {
        hex(&self.span_id)
    }

    /// Whether the trace is sampled (recorded by whoever exports spans).
    pub fn is_sampled(&self) -> bool {
        self.flags & 0x01 == 0x01
    }

    /// The `tracestate` carried along, if any.
    pub fn tracestate(&self) -> Option<&str> {
        self.state.as_deref()
    }

    /// The headers that carry this context into a Kafka record.
    pub fn record_headers(&self) -> impl Iterator<Item = (&'static str, String)> + use<> {
        let state = self.state.as_deref().map(|s| (TRACESTATE, s.to_string()));
        std::iter::once((TRACEPARENT, self.to_string())).chain(state)
    }

    /// The trace context of the current HTTP request, or a new trace outside one.
    pub fn current() -> Self {
        Self::in_scope().unwrap_or_else(Self::start)
    }

    /// The trace context of the work in hand (an HTTP request, or a record being processed
    /// while its span is exported), if any.
    pub fn in_scope() -> Option<Self> {
        TRACE.try_with(|t| t.clone()).ok()
    }

    /// This context as OpenTelemetry's, received from elsewhere.
    pub fn span_context(&self) -> SpanContext {
        let state = self
            .state
            .as_deref()
            .and_then(|s| s.parse::<TraceState>().ok())
            .unwrap_or_default();
        SpanContext::new(
            TraceId::from_bytes(self.trace_id),
            SpanId::from_bytes(self.span_id),
            TraceFlags::new(self.flags),
            true,
            state,
        )
    }

    /// OpenTelemetry's span context as this service's; `None` when it is not valid (no
    /// span was made).
    pub fn from_span_context(context: &SpanContext) -> Option<Self> {
        if !context.is_valid() {
            return None;
        }
        let state = context.trace_state().header();
        Some(TraceContext {
            trace_id: context.trace_id().to_bytes(),
            span_id: context.span_id().to_bytes(),
            flags: context.trace_flags().to_u8(),
            state: (!state.is_empty()).then(|| Arc::from(state)),
        })
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            self.flags
        )
    }
}

/// A `tracestate` value worth passing on: a well-formed list no longer than
/// [`MAX_TRACESTATE`].
fn valid_tracestate(value: &str) -> Option<&str> {
    let value = value.trim();
    if value.is_empty() || value.len() > MAX_TRACESTATE {
        return None;
    }
    value.parse::<TraceState>().ok().map(|_| value)
}

/// Where the route layer leaves the matched route for the request's server span.
#[derive(Clone, Default)]
struct ServerRoute(Arc<std::sync::Mutex<Option<String>>>);

/// Middleware: takes the client's `traceparent` and `tracestate` (or starts a trace), opens
/// the request's server span when spans are exported, makes the request's context the one
/// handlers and log spans see, and returns this service's `traceparent` on the response so a
/// client that sent none learns the trace id.
pub async fn propagate(mut request: Request, next: Next) -> Response {
    let incoming = TraceContext::from_headers(request.headers());
    let mut span = spans::http_server(request.method(), request.uri().path(), incoming.as_ref());
    let trace = span.context().unwrap_or_else(|| match &incoming {
        Some(parent) => parent.child(),
        None => TraceContext::start(),
    });
    let value = HeaderValue::from_str(&trace.to_string()).ok();
    // The log span of the request (made further in) reads it from here.
    if let Some(value) = &value {
        request
            .headers_mut()
            .insert(HeaderName::from_static(TRACEPARENT), value.clone());
    }
    let route = span.context().map(|_| {
        let route = ServerRoute::default();
        request.extensions_mut().insert(route.clone());
        (request.method().clone(), route)
    });
    let mut response = TRACE.scope(trace, next.run(request)).await;
    if let Some((method, ServerRoute(route))) = route
        && let Some(route) = route.lock().unwrap_or_else(|e| e.into_inner()).take()
    {
        span.record_route(method.as_str(), &route);
    }
    span.record_response(response.status().as_u16());
    if let Some(value) = value {
        response
            .headers_mut()
            .insert(HeaderName::from_static(TRACEPARENT), value);
    }
    response
}

/// Route middleware: tells the request's server span its matched route.
pub async fn name_server_span(request: Request, next: Next) -> Response {
    if let (Some(ServerRoute(cell)), Some(route)) = (
        request.extensions().get::<ServerRoute>(),
        request.extensions().get::<axum::extract::MatchedPath>(),
    ) {
        *cell.lock().unwrap_or_else(|e| e.into_inner()) = Some(route.as_str().to_string());
    }
    next.run(request).await
}

/// Runs `work` with `context` as its trace context ([`TraceContext::in_scope`]), if any.
pub async fn within<F: std::future::Future>(context: Option<TraceContext>, work: F) -> F::Output {
    match context {
        Some(context) => TRACE.scope(context, work).await,
        None => work.await,
    }
}

/// The trace id in a `traceparent` header value, if valid (for log fields of consumed
/// records).
pub fn trace_id_of(traceparent: Option<&str>) -> Option<String> {
    traceparent
        .and_then(TraceContext::parse)
        .map(|t| t.trace_id())
}

fn new_span_id() -> [u8; 8] {
    loop {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let mut id = [0u8; 8];
        id.copy_from_slice(&bytes[..8]);
        if id != [0; 8] {
            return id;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    text
}

fn hex_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    // The specification allows lowercase hex only.
    if text.len() != N * 2 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_prints_a_valid_header() {
        let t = TraceContext::parse(SAMPLE).expect("valid");
        assert_eq!(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.span_id(), "00f067aa0ba902b7");
        assert_eq!(t.to_string(), SAMPLE);
    }

    #[test]
    fn child_keeps_the_trace_and_changes_the_span() {
        let t = TraceContext::parse(SAMPLE).expect("valid");
        let c = t.child();
        assert_eq!(c.trace_id(), t.trace_id());
        assert_ne!(c.span_id(), t.span_id());
        assert_eq!(TraceContext::parse(&c.to_string()), Some(c));
    }

    #[test]
    fn refuses_malformed_headers() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?}");
        }
        // A later version may carry more fields; the first four are still read.
        assert!(
            TraceContext::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
                .is_some()
        );
    }

    #[test]
    fn started_traces_are_valid_and_distinct() {
        let a = TraceContext::start();
        let b = TraceContext::start();
        assert_ne!(a.trace_id(), b.trace_id());
        assert_eq!(TraceContext::parse(&a.to_string()), Some(a));
    }

    #[test]
    fn tracestate_travels_when_valid_and_is_dropped_when_not() {
        let t = TraceContext::from_parts(
            Some(SAMPLE),
            Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
        )
        .expect("valid");
        assert_eq!(
            t.tracestate(),
            Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")
        );
        let headers: Vec<_> = t.child().record_headers().collect();
        assert_eq!(
            headers[1],
            (
                TRACESTATE,
                "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7".to_string()
            )
        );
        // Round trip through OpenTelemetry's type keeps every field.
        assert_eq!(TraceContext::from_span_context(&t.span_context()), Some(t));
        for bad in [
            "no equals sign",
            "UPPER=1",
            &format!("a={}", "x".repeat(600)),
        ] {
            let t = TraceContext::from_parts(Some(SAMPLE), Some(bad)).expect("traceparent kept");
            assert_eq!(t.tracestate(), None, "{bad:?}");
            assert_eq!(t.record_headers().count(), 1);
        }
    }

    #[test]
    fn several_tracestate_fields_are_one_list() {
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, HeaderValue::from_static(SAMPLE));
        headers.append(TRACESTATE, HeaderValue::from_static("a=1"));
        headers.append(TRACESTATE, HeaderValue::from_static("b=2"));
        let t = TraceContext::from_headers(&headers).expect("valid");
        assert_eq!(t.tracestate(), Some("a=1,b=2"));
    }
}
