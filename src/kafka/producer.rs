//! [`BaseProducer<T>`]: sends `T` as JSON with a string key and headers, and answers only
//! once Kafka has acknowledged the record (idempotent producer, `acks=all`), with its
//! partition and offset.
//!
//! Errors are split by what the caller should do: [`ProduceError::is_retryable`] is true
//! when Kafka could not take the record now (local queue full, broker unreachable, delivery
//! timed out, a broker-side error) and the same record may be sent again later; the others
//! (record too large, serialization) will fail the same way every time.

use std::marker::PhantomData;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use serde::Serialize;

use super::{ClientContext, ClientSettings};

/// How long past `message.timeout.ms` a send waits for librdkafka's own answer.
pub const DELIVERY_GUARD: Duration = Duration::from_millis(250);

/// How a producer behaves; see `[producer]` in `config/default.toml`.
#[derive(Debug, Clone)]
pub struct ProducerOptions {
    /// `message.timeout.ms`: how long a record may wait for its acknowledgement.
    pub delivery_timeout: Duration,
    /// `queue.buffering.max.messages`.
    pub queue_max_messages: u32,
    /// `linger.ms`.
    pub linger: Duration,
    /// `compression.type`.
    pub compression: String,
}

/// One record to send: a typed value, its key and headers.
#[derive(Debug)]
pub struct OutgoingRecord<'a, T> {
    /// Destination topic.
    pub topic: &'a str,
    /// Record key; records with the same key go to the same partition, in order.
    pub key: &'a str,
    /// The value, written as JSON.
    pub value: &'a T,
    /// Extra headers, after `content-type` which is always set.
    pub headers: Vec<(&'a str, String)>,
}

/// A record of bytes, sent as given.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    /// Destination topic.
    pub topic: &'a str,
    /// Record key.
    pub key: Option<&'a [u8]>,
    /// Record value.
    pub payload: Option<&'a [u8]>,
    /// Headers, in order.
    pub headers: &'a [(String, String)],
    /// Partition; `None` lets the partitioner choose from the key.
    pub partition: Option<i32>,
}

/// Where Kafka stored an acknowledged record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Partition of the record.
    pub partition: i32,
    /// Offset of the record in its partition.
    pub offset: i64,
}

/// Why a record was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// The local queue is full: Kafka is slower than the intake. Retry later.
    #[error("producer queue is full")]
    QueueFull,
    /// Kafka did not acknowledge in time or refused for a passing reason. Retry later.
    #[error("kafka unavailable: {0}")]
    Unavailable(#[source] KafkaError),
    /// The record is over the broker's or producer's size limit; retrying cannot help.
    #[error("record too large")]
    TooLarge,
    /// The value could not be written as JSON: a bug in the caller's type.
    #[error("cannot serialize record: {0}")]
    Serialize(#[from] serde_json::Error),
    /// Any other failure on Kafka's side (a broker error the client cannot act on). Retried
    /// like unavailability: the record itself is fine.
    #[error("kafka error: {0}")]
    Kafka(#[source] KafkaError),
}

impl ProduceError {
    /// Whether sending the same record again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProduceError::QueueFull | ProduceError::Unavailable(_) | ProduceError::Kafka(_)
        )
    }

    fn from_kafka(error: KafkaError) -> Self {
        use RDKafkaErrorCode as Code;
        match error.rdkafka_error_code() {
            Some(Code::QueueFull) => ProduceError::QueueFull,
            Some(Code::MessageSizeTooLarge | Code::InvalidMessageSize) => ProduceError::TooLarge,
            Some(
                Code::MessageTimedOut
                | Code::RequestTimedOut
                | Code::BrokerTransportFailure
                | Code::AllBrokersDown
                | Code::NotLeaderForPartition
                | Code::LeaderNotAvailable
                | Code::NotEnoughReplicas
                | Code::NotEnoughReplicasAfterAppend
                | Code::NetworkException
                | Code::UnknownTopicOrPartition
                | Code::PurgeQueue
                | Code::PurgeInflight
                | Code::Resolve,
            ) => ProduceError::Unavailable(error),
            _ => ProduceError::Kafka(error),
        }
    }
}

/// A typed producer of JSON records over rdkafka's `FutureProducer`. Cheap to clone: clones
/// share one connection and queue.
///
/// An idempotent producer can enter a fatal state (for example when the cluster fences its
/// producer id); librdkafka then fails every send until the client is recreated. This
/// wrapper notices that after a failed send and replaces the client, so one fatal error does
/// not turn into a permanent outage.
pub struct BaseProducer<T> {
    shared: Arc<Shared>,
    delivery_timeout: Duration,
    _value: PhantomData<fn(&T)>,
}

struct Shared {
    config: rdkafka::ClientConfig,
    current: RwLock<FutureProducer<ClientContext>>,
}

impl<T> Clone for BaseProducer<T> {
    fn clone(&self) -> Self {
        BaseProducer {
            shared: self.shared.clone(),
            delivery_timeout: self.delivery_timeout,
            _value: PhantomData,
        }
    }
}

impl<T> BaseProducer<T> {
    fn current(&self) -> FutureProducer<ClientContext> {
        self.shared
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces `used` if it is in a fatal state, or the cluster says its producer id or
    /// epoch is stale (fenced), and it is still the current client. Sends on such a client
    /// can only fail again; a new client gets a fresh producer id.
    fn recover_if_fatal(&self, used: &FutureProducer<ClientContext>, error: &KafkaError) {
        let fenced = matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch)
        );
        let Some((code, reason)) = used
            .client()
            .fatal_error()
            .or_else(|| fenced.then(|| (RDKafkaErrorCode::ProducerFenced, error.to_string())))
        else {
            return;
        };
        let mut current = self
            .shared
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if current.client().native_ptr() != used.client().native_ptr() {
            return; // another send already replaced it
        }
        match self
            .shared
            .config
            .create_with_context::<_, FutureProducer<ClientContext>>(ClientContext)
        {
            Ok(fresh) => {
                tracing::error!(%code, reason, "kafka producer unusable (fatal or fenced); replaced it");
                let old = std::mem::replace(&mut *current, fresh);
                // Dropping a client joins its threads; keep that off the async workers.
                tokio::task::spawn_blocking(move || drop(old));
            }
            Err(error) => tracing::error!(%error, "cannot recreate the kafka producer"),
        }
    }
}

impl<T: Serialize> BaseProducer<T> {
    /// Creates the producer. Connections are made lazily; this fails only on bad options.
    pub fn new(client: &ClientSettings, options: &ProducerOptions) -> Result<Self, KafkaError> {
        let config = client.client_config(&[
            ("enable.idempotence", "true".into()),
            ("acks", "all".into()),
            (
                "message.timeout.ms",
                options.delivery_timeout.as_millis().to_string(),
            ),
            (
                "queue.buffering.max.messages",
                options.queue_max_messages.to_string(),
            ),
            ("linger.ms", options.linger.as_millis().to_string()),
            ("compression.type", options.compression.clone()),
        ]);
        let current = config.create_with_context(ClientContext)?;
        Ok(BaseProducer {
            shared: Arc::new(Shared {
                config,
                current: RwLock::new(current),
            }),
            delivery_timeout: options.delivery_timeout,
            _value: PhantomData,
        })
    }

    /// Sends one record and waits for Kafka's acknowledgement. Fails at once with
    /// [`ProduceError::QueueFull`] rather than waiting for room in the local queue.
    pub async fn send(&self, record: OutgoingRecord<'_, T>) -> Result<Delivery, ProduceError> {
        let payload = serde_json::to_vec(record.value)?;
        let mut headers = Vec::with_capacity(record.headers.len() + 1);
        headers.push(("content-type".to_string(), "application/json".to_string()));
        headers.extend(record.headers.into_iter().map(|(k, v)| (k.to_string(), v)));
        self.send_raw(RawRecord {
            topic: record.topic,
            key: Some(record.key.as_bytes()),
            payload: Some(&payload),
            headers: &headers,
            partition: None,
        })
        .await
    }

    /// Sends bytes as they are (dead letters keep the original record untouched).
    pub async fn send_raw(&self, record: RawRecord<'_>) -> Result<Delivery, ProduceError> {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (key, value) in record.headers {
            headers = headers.insert(Header {
                key,
                value: Some(value.as_str()),
            });
        }
        let mut future_record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(record.topic).headers(headers);
        if let Some(key) = record.key {
            future_record = future_record.key(key);
        }
        if let Some(payload) = record.payload {
            future_record = future_record.payload(payload);
        }
        if let Some(partition) = record.partition {
            future_record = future_record.partition(partition);
        }
        let producer = self.current();
        let delivery = match producer.send_result(future_record) {
            Ok(delivery) => delivery,
            Err((error, _)) => {
                self.recover_if_fatal(&producer, &error);
                return Err(ProduceError::from_kafka(error));
            }
        };
        // librdkafka expires queued records on a once-a-second scan, so its own answer can
        // come up to a second after message.timeout.ms; callers are promised an answer in
        // time, so stop waiting shortly after the timeout. A record that Kafka still takes
        // after this answered "unavailable", which is why clients retry with the same key.
        let guard = self.delivery_timeout + DELIVERY_GUARD;
        match tokio::time::timeout(guard, delivery).await {
            Ok(Ok(Ok(d))) => Ok(Delivery {
                partition: d.partition,
                offset: d.offset,
            }),
            Ok(Ok(Err((error, _)))) => {
                self.recover_if_fatal(&producer, &error);
                Err(ProduceError::from_kafka(error))
            }
            Ok(Err(_canceled)) => Err(ProduceError::Unavailable(KafkaError::Canceled)),
            Err(_elapsed) => Err(ProduceError::Unavailable(KafkaError::MessageProduction(
                RDKafkaErrorCode::MessageTimedOut,
            ))),
        }
    }

    /// Sends records concurrently and answers each in input order.
    pub async fn send_batch(
        &self,
        records: Vec<OutgoingRecord<'_, T>>,
    ) -> Vec<Result<Delivery, ProduceError>> {
        futures::future::join_all(records.into_iter().map(|r| self.send(r))).await
    }

    /// A producer of another value type over the same connection and queue.
    pub fn with_type<U>(&self) -> BaseProducer<U> {
        BaseProducer {
            shared: self.shared.clone(),
            delivery_timeout: self.delivery_timeout,
            _value: PhantomData,
        }
    }

    /// Records queued locally and not yet acknowledged.
    pub fn in_flight(&self) -> i32 {
        self.current().in_flight_count()
    }

    /// Waits, off the async worker threads, until every queued record is acknowledged or
    /// `timeout` passes.
    pub async fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        let inner = self.current();
        tokio::task::spawn_blocking(move || inner.flush(timeout))
            .await
            .unwrap_or(Err(KafkaError::Canceled))
    }

    /// A handle for metadata requests that can move to a blocking thread.
    pub fn metadata_handle(&self) -> FutureProducer<ClientContext> {
        self.current()
    }
}
