//! W3C Trace Context (`traceparent`): accepted from the client or started here, carried in
//! every Kafka record's headers, and put into the log spans of everything done for an order,
//! so one trace id follows an order from its HTTP request to its final status.
//!
//! Only the `traceparent` header is handled (version `00`); `tracestate` is vendor data this
//! service neither reads nor needs. A malformed `traceparent` starts a new trace, as the
//! specification asks.

use std::fmt;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The header name, in Kafka records and in HTTP.
pub const TRACEPARENT: &str = "traceparent";

tokio::task_local! {
    /// The trace context of the HTTP request being handled.
    pub static TRACE: TraceContext;
}

/// A trace id, the id of the span that sent it, and the sampled flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

impl TraceContext {
    /// A new trace with a random trace id (a v4 UUID's 122 random bits), sampled.
    pub fn start() -> Self {
        TraceContext {
            trace_id: uuid::Uuid::new_v4().into_bytes(),
            span_id: new_span_id(),
            flags: 0x01,
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
        })
    }

    /// The same trace with a new span id: what this service sends on.
    pub fn child(&self) -> Self {
        TraceContext {
            span_id: new_span_id(),
            ..*self
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

    /// The trace context of the current HTTP request, or a new trace outside one.
    pub fn current() -> Self {
        TRACE.try_with(|t| *t).unwrap_or_else(|_| Self::start())
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

/// Middleware: takes the client's `traceparent` (or starts a trace), makes it the request's
/// trace context for handlers and log spans, and returns this service's `traceparent` on
/// the response so a client that sent none learns the trace id.
pub async fn propagate(mut request: Request, next: Next) -> Response {
    let incoming = request
        .headers()
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse);
    let trace = match incoming {
        Some(parent) => parent.child(),
        None => TraceContext::start(),
    };
    let value = HeaderValue::from_str(&trace.to_string()).ok();
    // The log span of the request (made further in) reads it from here.
    if let Some(value) = &value {
        request
            .headers_mut()
            .insert(HeaderName::from_static(TRACEPARENT), value.clone());
    }
    let mut response = TRACE.scope(trace, next.run(request)).await;
    if let Some(value) = value {
        response
            .headers_mut()
            .insert(HeaderName::from_static(TRACEPARENT), value);
    }
    response
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
    use fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
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
}
