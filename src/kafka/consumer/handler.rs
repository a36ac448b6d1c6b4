//! What a [`BaseConsumer`](super::BaseConsumer) hands its [`Handler`]: the decoded message
//! with Kafka's facts about it, and the two ways a handler can fail.

use std::future::Future;
use std::time::SystemTime;

use tracing::Instrument;

use super::record::Headers;
use crate::trace::TraceContext;

/// A decoded message with everything Kafka said about it.
#[derive(Debug, Clone)]
pub struct Received<T> {
    /// The decoded value.
    pub value: T,
    /// The value's bytes as read, the wire format's header included (`value` is decoded from
    /// them): for a handler that passes parts of them on as they are.
    pub payload: Vec<u8>,
    /// The record key, if any, as UTF-8.
    pub key: Option<String>,
    /// Headers with UTF-8 values.
    pub headers: Headers,
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// Record timestamp in milliseconds since the epoch, when the broker gave one.
    pub timestamp_ms: Option<i64>,
    /// When this consumer took the record from librdkafka (before it waited for earlier
    /// records of its key or for a free handler slot).
    pub received_at: SystemTime,
    /// The trace the handling belongs to: the consumer's exported span for this record,
    /// when spans are exported (the record's own context is in its headers).
    pub trace: Option<TraceContext>,
    /// The record's log span (topic, partition, offset, trace id): whatever the handler
    /// logs about this record belongs inside it.
    pub span: tracing::Span,
}

impl<T> Received<T> {
    /// The value of the first header named `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }
}

/// Why a handler did not finish a message.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// May succeed if tried again (e.g. Kafka unavailable); retried with backoff.
    #[error("transient: {0}")]
    Transient(#[source] anyhow::Error),
    /// Will fail the same way every time; dead-lettered at once.
    #[error("permanent: {0}")]
    Permanent(#[source] anyhow::Error),
}

/// What a consumer does with each message. The returned futures must only resolve once
/// everything the handler produced is acknowledged.
pub trait Handler<T: Sync>: Send + Sync + 'static {
    /// Handles one message.
    fn handle(
        &self,
        message: &Received<T>,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// Handles what one poll returned, in the consumer's order: no two of `messages` have
    /// the same key, and every earlier message of their keys is done. One result per
    /// message, in the same order; those that failed transiently come back together after a
    /// backoff. By default each is handled on its own, all at once, inside its trace and log
    /// span; a handler that decides many at a time (produces every outcome, then waits for
    /// the acknowledgements together) does better.
    fn handle_batch(
        &self,
        messages: &[Received<T>],
    ) -> impl Future<Output = Vec<Result<(), HandlerError>>> + Send {
        futures::future::join_all(messages.iter().map(|message| {
            crate::trace::within(message.trace.clone(), self.handle(message))
                .instrument(message.span.clone())
        }))
    }
}
