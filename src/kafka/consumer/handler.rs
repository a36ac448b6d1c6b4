//! What a [`BaseConsumer`](super::BaseConsumer) hands its [`Handler`]: the decoded message
//! with Kafka's facts about it, and the two ways a handler can fail.

use std::future::Future;
use std::time::SystemTime;

use super::record::Headers;

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

/// What a consumer does with each message. The returned future must only resolve once
/// everything the handler produced is acknowledged.
pub trait Handler<T>: Send + Sync + 'static {
    /// Handles one message.
    fn handle(
        &self,
        message: &Received<T>,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}
