//! [`BaseProducer<T>`]: sends `T` as JSON with a string key and headers, and answers only
//! once Kafka has acknowledged the record (idempotent producer, `acks=all`), with its
//! partition and offset.
//!
//! Errors are split by what the caller should do: [`ProduceError::is_retryable`] is true
//! when Kafka could not take the record now (local queue full, broker unreachable, delivery
//! timed out, a broker-side error) and the same record may be sent again later; the others
//! (record too large, serialization) will fail the same way every time.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use prometheus::{GaugeVec, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use serde::Serialize;

use super::{ClientContext, ClientSettings};

/// How long past `message.timeout.ms` a send waits for librdkafka's own answer.
pub const DELIVERY_GUARD: Duration = Duration::from_millis(250);

/// How a producer behaves; see `[producer]` in `config/default.toml`.
#[derive(Clone)]
pub struct ProducerOptions {
    /// `message.timeout.ms`: how long a record may wait for its acknowledgement.
    pub delivery_timeout: Duration,
    /// `queue.buffering.max.messages`.
    pub queue_max_messages: u32,
    /// `linger.ms`.
    pub linger: Duration,
    /// `compression.type`.
    pub compression: String,
    /// `statistics.interval.ms`; zero turns librdkafka statistics (and the gauges made from
    /// them) off.
    pub statistics_interval: Duration,
    /// Where to count sends and librdkafka statistics; `None` counts nothing.
    pub metrics: Option<ProducerMetrics>,
}

/// Producer metrics, registered by the owner of the registry. Topic and broker labels are
/// bounded by the cluster's topics and brokers.
#[derive(Clone)]
pub struct ProducerMetrics {
    /// Records acknowledged, by topic.
    pub sent: IntCounterVec,
    /// Records not acknowledged, by topic and reason (queue_full, unavailable, too_large,
    /// serialize, kafka).
    pub failed: IntCounterVec,
    /// Seconds from send to acknowledgement (or failure), by topic.
    pub delivery_seconds: HistogramVec,
    /// Key and value bytes acknowledged, by topic.
    pub bytes: IntCounterVec,
    /// Records in the local queue not yet acknowledged (updated on each statistics report;
    /// the owner may also set it from [`BaseProducer::in_flight`]).
    pub queue_messages: IntGauge,
    /// Bytes in the local queue (statistics).
    pub queue_bytes: IntGauge,
    /// Broker round-trip time in seconds, by broker and window statistic (avg, p99).
    pub broker_rtt_seconds: GaugeVec,
    /// Requests sent to each broker since the client started (statistics `tx`); its rate()
    /// is the request rate.
    pub broker_requests: IntGaugeVec,
    /// Request errors towards each broker since the client started (statistics `txerrs`).
    pub broker_request_errors: IntGaugeVec,
    /// Requests waiting to be sent to each broker (statistics `outbuf_cnt`).
    pub broker_outbuf_requests: IntGaugeVec,
    /// Requests sent and waiting for each broker's answer (statistics `waitresp_cnt`).
    pub broker_waitresp_requests: IntGaugeVec,
    /// Average batch size in bytes, by topic (statistics `batchsize.avg`, last window with
    /// batches).
    pub topic_batch_bytes: GaugeVec,
    /// Average records per batch, by topic (statistics `batchcnt.avg`).
    pub topic_batch_records: GaugeVec,
}

impl ProducerMetrics {
    /// Sets the statistics gauges from one librdkafka report.
    pub fn record_statistics(&self, stats: &rdkafka::Statistics) {
        self.queue_messages
            .set(i64::try_from(stats.msg_cnt).unwrap_or(i64::MAX));
        self.queue_bytes
            .set(i64::try_from(stats.msg_size).unwrap_or(i64::MAX));
        for broker in stats.brokers.values() {
            // Bootstrap entries (node id -1) are replaced by the real brokers once known.
            if broker.nodeid < 0 {
                continue;
            }
            let name = broker.nodename.as_str();
            // Window statistics cover the last interval only; an empty window (no request)
            // would read as zero, so the last real value stays instead.
            if let Some(rtt) = broker.rtt.as_ref().filter(|w| w.cnt > 0) {
                // librdkafka reports microseconds; 0 means no request in the window.
                let seconds = |us: i64| us as f64 / 1e6;
                self.broker_rtt_seconds
                    .with_label_values(&[name, "avg"])
                    .set(seconds(rtt.avg));
                self.broker_rtt_seconds
                    .with_label_values(&[name, "p99"])
                    .set(seconds(rtt.p99));
            }
            let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            self.broker_requests
                .with_label_values(&[name])
                .set(count(broker.tx));
            self.broker_request_errors
                .with_label_values(&[name])
                .set(count(broker.txerrs));
            self.broker_outbuf_requests
                .with_label_values(&[name])
                .set(broker.outbuf_cnt);
            self.broker_waitresp_requests
                .with_label_values(&[name])
                .set(broker.waitresp_cnt);
        }
        for (name, topic) in stats.topics.iter().filter(|(_, t)| t.batchcnt.cnt > 0) {
            self.topic_batch_bytes
                .with_label_values(&[name])
                .set(topic.batchsize.avg as f64);
            self.topic_batch_records
                .with_label_values(&[name])
                .set(topic.batchcnt.avg as f64);
        }
    }

    fn record_send(
        &self,
        topic: &str,
        size: usize,
        result: &Result<Delivery, ProduceError>,
        started: Instant,
    ) {
        self.delivery_seconds
            .with_label_values(&[topic])
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(_) => {
                self.sent.with_label_values(&[topic]).inc();
                self.bytes.with_label_values(&[topic]).inc_by(size as u64);
            }
            Err(error) => self
                .failed
                .with_label_values(&[topic, error.reason()])
                .inc(),
        }
    }
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
    /// Extra headers, after `content-type` (set for plain JSON).
    pub headers: Vec<(&'a str, String)>,
    /// Written in Confluent's wire format with this registered schema's id, when set; plain
    /// JSON otherwise.
    pub schema_id: Option<u32>,
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
    /// Create time in milliseconds since the epoch; `None` for now.
    pub timestamp: Option<i64>,
}

/// Where Kafka stored an acknowledged record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Partition of the record.
    pub partition: i32,
    /// Offset of the record in its partition.
    pub offset: i64,
}

/// A record in the local queue (or refused by it), waiting for
/// [`BaseProducer::acknowledged`]. Dropping it stops nothing: the record is sent anyway.
pub struct Queued {
    producer: FutureProducer<ClientContext>,
    delivery: Result<DeliveryFuture, ProduceError>,
    topic: String,
    size: usize,
    started: Instant,
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

    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ProduceError::QueueFull => "queue_full",
            ProduceError::Unavailable(_) => "unavailable",
            ProduceError::TooLarge => "too_large",
            ProduceError::Serialize(_) => "serialize",
            ProduceError::Kafka(_) => "kafka",
        }
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
    context: ClientContext,
    current: RwLock<FutureProducer<ClientContext>>,
    progress: Progress,
}

/// Whether the current client still gets records acknowledged. Lock-free: an
/// acknowledgement costs one relaxed load on the hot path.
#[derive(Default)]
struct Progress {
    /// Delivery timeouts since the last acknowledgement.
    timeouts: AtomicU32,
    /// When the first of them came, in milliseconds since `epoch`.
    first_timeout_ms: AtomicU64,
    /// Reference for `first_timeout_ms`.
    epoch: std::sync::OnceLock<Instant>,
}

impl Progress {
    fn now_ms(&self) -> u64 {
        let epoch = self.epoch.get_or_init(Instant::now);
        u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Delivery timeouts in a row, over at least this many delivery timeouts' time, after which
/// the client is considered stuck and replaced.
const STALL_TIMEOUTS: u32 = 3;

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
        self.replace_client(used, &format!("{code}: {reason}"));
    }

    /// Counts an acknowledgement or a delivery timeout, and replaces the client when it has
    /// only timed out for a while. An idempotent client whose producer id the cluster lost
    /// (a broker that restarted empty answers UNKNOWN_PRODUCER_ID) can retry for ever while
    /// the cluster answers everything else; a new client gets a new producer id. When the
    /// cluster is really down, the new client waits like the old one did.
    fn note_outcome(&self, used: &FutureProducer<ClientContext>, timed_out: bool) {
        let progress = &self.shared.progress;
        if !timed_out {
            if progress.timeouts.load(Ordering::Relaxed) != 0 {
                progress.timeouts.store(0, Ordering::Relaxed);
            }
            return;
        }
        let now = progress.now_ms();
        let count = progress.timeouts.fetch_add(1, Ordering::AcqRel) + 1;
        if count == 1 {
            progress.first_timeout_ms.store(now, Ordering::Release);
            return;
        }
        // From the first timeout, which came a delivery timeout after its send.
        let window = self.delivery_timeout.as_millis() as u64 * u64::from(STALL_TIMEOUTS - 1);
        let since = now.saturating_sub(progress.first_timeout_ms.load(Ordering::Acquire));
        // The send that resets the count is the one that replaces the client.
        if count >= STALL_TIMEOUTS
            && since > window
            && progress
                .timeouts
                .compare_exchange(count, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.replace_client(used, "no acknowledgement for several delivery timeouts");
        }
    }

    /// Replaces `used` with a new client, unless another send already did.
    fn replace_client(&self, used: &FutureProducer<ClientContext>, reason: &str) {
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
            .create_with_context::<_, FutureProducer<ClientContext>>(self.shared.context.clone())
        {
            Ok(fresh) => {
                tracing::error!(
                    reason,
                    "kafka producer unusable (fatal, fenced or stuck); replaced it"
                );
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
            // A write never creates a topic: topics are made with their partitions and
            // configs on purpose, so a record for a missing one fails instead of making
            // it with the broker's defaults.
            ("allow.auto.create.topics", "false".into()),
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
            (
                "statistics.interval.ms",
                options.statistics_interval.as_millis().to_string(),
            ),
        ]);
        let context = ClientContext {
            producer_metrics: options.metrics.clone(),
        };
        let current = config.create_with_context(context.clone())?;
        Ok(BaseProducer {
            shared: Arc::new(Shared {
                config,
                context,
                current: RwLock::new(current),
                progress: Progress::default(),
            }),
            delivery_timeout: options.delivery_timeout,
            _value: PhantomData,
        })
    }

    /// Sends one record and waits for Kafka's acknowledgement. Fails at once with
    /// [`ProduceError::QueueFull`] rather than waiting for room in the local queue.
    pub async fn send(&self, record: OutgoingRecord<'_, T>) -> Result<Delivery, ProduceError> {
        let queued = self.queue(record)?;
        self.acknowledged(queued).await
    }

    /// Puts one record in the local queue now, for [`BaseProducer::acknowledged`] to wait
    /// for: records queued one after another go out in the same batches, and their
    /// acknowledgements are waited for together.
    pub fn queue(&self, record: OutgoingRecord<'_, T>) -> Result<Queued, ProduceError> {
        self.queue_keeping(record).map(|(queued, _)| queued)
    }

    /// [`BaseProducer::queue`], handing back the value as written (the wire format's header
    /// when the record has a schema, then the JSON: see [`super::wire::json_payload`]).
    pub fn queue_keeping(
        &self,
        record: OutgoingRecord<'_, T>,
    ) -> Result<(Queued, Vec<u8>), ProduceError> {
        let mut payload = Vec::with_capacity(256);
        let mut headers = Vec::with_capacity(record.headers.len() + 1);
        match record.schema_id {
            Some(id) => super::wire::write_header(id, &mut payload),
            None => headers.push(("content-type".to_string(), "application/json".to_string())),
        }
        serde_json::to_writer(&mut payload, record.value)?;
        headers.extend(record.headers.into_iter().map(|(k, v)| (k.to_string(), v)));
        let queued = self.queue_raw(RawRecord {
            topic: record.topic,
            key: Some(record.key.as_bytes()),
            payload: Some(&payload),
            headers: &headers,
            partition: None,
            timestamp: None,
        });
        Ok((queued, payload))
    }

    /// Sends bytes as they are (dead letters keep the original record untouched).
    pub async fn send_raw(&self, record: RawRecord<'_>) -> Result<Delivery, ProduceError> {
        let queued = self.queue_raw(record);
        self.acknowledged(queued).await
    }

    /// Puts bytes in the local queue as they are (librdkafka copies them); see
    /// [`BaseProducer::queue`].
    pub fn queue_raw(&self, record: RawRecord<'_>) -> Queued {
        let started = Instant::now();
        let size = record.key.map_or(0, <[u8]>::len) + record.payload.map_or(0, <[u8]>::len);
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
        if let Some(timestamp) = record.timestamp {
            future_record = future_record.timestamp(timestamp);
        }
        let producer = self.current();
        let delivery = match producer.send_result(future_record) {
            Ok(delivery) => Ok(delivery),
            Err((error, _)) => {
                self.recover_if_fatal(&producer, &error);
                Err(ProduceError::from_kafka(error))
            }
        };
        Queued {
            producer,
            delivery,
            topic: record.topic.to_string(),
            size,
            started,
        }
    }

    /// Waits for Kafka's answer to a queued record.
    pub async fn acknowledged(&self, queued: Queued) -> Result<Delivery, ProduceError> {
        let Queued {
            producer,
            delivery,
            topic,
            size,
            started,
        } = queued;
        let result = match delivery {
            Ok(delivery) => self.wait(&producer, delivery).await,
            Err(error) => Err(error),
        };
        if let Some(metrics) = &self.shared.context.producer_metrics {
            metrics.record_send(&topic, size, &result, started);
        }
        result
    }

    async fn wait(
        &self,
        producer: &FutureProducer<ClientContext>,
        delivery: DeliveryFuture,
    ) -> Result<Delivery, ProduceError> {
        // librdkafka expires queued records on a once-a-second scan, so its own answer can
        // come up to a second after message.timeout.ms; callers are promised an answer in
        // time, so stop waiting shortly after the timeout. A record that Kafka still takes
        // after this answered "unavailable", which is why clients retry with the same key.
        let guard = self.delivery_timeout + DELIVERY_GUARD;
        match tokio::time::timeout(guard, delivery).await {
            Ok(Ok(Ok(d))) => {
                self.note_outcome(producer, false);
                Ok(Delivery {
                    partition: d.partition,
                    offset: d.offset,
                })
            }
            Ok(Ok(Err((error, _)))) => {
                self.recover_if_fatal(producer, &error);
                if error.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageTimedOut) {
                    self.note_outcome(producer, true);
                }
                Err(ProduceError::from_kafka(error))
            }
            Ok(Err(_canceled)) => Err(ProduceError::Unavailable(KafkaError::Canceled)),
            Err(_elapsed) => {
                self.note_outcome(producer, true);
                Err(ProduceError::Unavailable(KafkaError::MessageProduction(
                    RDKafkaErrorCode::MessageTimedOut,
                )))
            }
        }
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
