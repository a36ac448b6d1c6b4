//! A record as the consumer holds it, and what a dead letter carries.

use rdkafka::message::{BorrowedMessage, Message};
use serde::de::DeserializeOwned;

use crate::trace::TraceContext;
use crate::trace::spans;

/// A record taken from librdkafka, copied once into owned memory. (rdkafka's `detach` also
/// copies every header through librdkafka's C API, and the headers were then copied again
/// as text: together about a tenth of the processors' CPU.)
pub(super) struct Incoming {
    pub(super) topic: String,
    pub(super) partition: i32,
    pub(super) offset: i64,
    pub(super) key: Option<Vec<u8>>,
    pub(super) payload: Option<Vec<u8>>,
    pub(super) headers: Vec<(String, String)>,
    pub(super) timestamp_ms: Option<i64>,
}

impl Incoming {
    pub(super) fn copy(message: &BorrowedMessage<'_>) -> Self {
        Incoming {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            headers: crate::kafka::utf8_headers(message),
            timestamp_ms: message.timestamp().to_millis(),
        }
    }

    pub(super) fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The record as its consumer span describes it, read by `group`.
    pub(super) fn span(&self, operation: spans::Consume, group: &str) -> spans::Span {
        if !spans::exporting() {
            return spans::Span::none();
        }
        spans::consume(
            operation,
            &spans::Consumed {
                topic: &self.topic,
                partition: self.partition,
                offset: self.offset,
                key: self
                    .key
                    .as_deref()
                    .and_then(|k| std::str::from_utf8(k).ok()),
                group: Some(group),
                context: TraceContext::from_parts(
                    self.header(crate::trace::TRACEPARENT),
                    self.header(crate::trace::TRACESTATE),
                ),
            },
        )
    }
}

pub(super) fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Where a dead letter comes from, and what it carried.
pub(super) struct Source<'a> {
    pub(super) topic: &'a str,
    pub(super) partition: i32,
    pub(super) offset: i64,
    pub(super) key: Option<&'a [u8]>,
    pub(super) payload: Option<&'a [u8]>,
    pub(super) headers: &'a [(String, String)],
}

pub(super) fn decode<T: DeserializeOwned>(payload: Option<&[u8]>) -> Result<T, String> {
    let payload = payload.ok_or_else(|| "record has no value".to_string())?;
    serde_json::from_slice(crate::kafka::wire::json_payload(payload))
        .map_err(|e| format!("cannot decode value: {e}"))
}
