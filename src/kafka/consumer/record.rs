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
    pub(super) headers: Headers,
    pub(super) timestamp_ms: Option<i64>,
}

/// A record's headers as text (values as UTF-8, lossily), held in one buffer: copying every
/// header into two strings of its own was about 6% of a processor's consumer task.
#[derive(Debug, Clone, Default)]
pub struct Headers {
    text: String,
    /// Where each header's key and value end in `text`.
    ends: Vec<(usize, usize)>,
}

impl Headers {
    /// The headers of `message`.
    pub(super) fn copy(message: &impl Message) -> Self {
        use rdkafka::message::Headers as _;
        let Some(headers) = message.headers() else {
            return Headers::default();
        };
        let mut copied = Headers {
            text: String::with_capacity(256),
            ends: Vec::with_capacity(headers.count()),
        };
        for header in headers.iter() {
            copied.text.push_str(header.key);
            let key_end = copied.text.len();
            copied
                .text
                .push_str(&String::from_utf8_lossy(header.value.unwrap_or_default()));
            copied.ends.push((key_end, copied.text.len()));
        }
        copied
    }

    /// Each header's key and value, in the record's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut start = 0;
        self.ends.iter().map(move |&(key_end, end)| {
            let pair = (&self.text[start..key_end], &self.text[key_end..end]);
            start = end;
            pair
        })
    }

    /// The value of the first header named `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// The headers as owned pairs.
    pub fn to_vec(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

impl Incoming {
    pub(super) fn copy(message: &BorrowedMessage<'_>) -> Self {
        Incoming {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            headers: Headers::copy(message),
            timestamp_ms: message.timestamp().to_millis(),
        }
    }

    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
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

/// Where a dead letter comes from, and what it carried.
pub(super) struct Source<'a> {
    pub(super) topic: &'a str,
    pub(super) partition: i32,
    pub(super) offset: i64,
    pub(super) key: Option<&'a [u8]>,
    pub(super) payload: Option<&'a [u8]>,
    pub(super) headers: &'a Headers,
}

pub(super) fn decode<T: DeserializeOwned>(payload: Option<&[u8]>) -> Result<T, String> {
    let payload = payload.ok_or_else(|| "record has no value".to_string())?;
    serde_json::from_slice(crate::kafka::wire::json_payload(payload))
        .map_err(|e| format!("cannot decode value: {e}"))
}
