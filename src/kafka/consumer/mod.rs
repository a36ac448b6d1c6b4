//! [`BaseConsumer<T>`]: a consumer-group member that hands typed messages to a [`Handler`].
//!
//! Delivery is at-least-once. Automatic offset *store* is off: a message's offset is stored
//! only after its handler has returned and everything the handler produced has been
//! acknowledged (the handler awaits its own sends), and only once every earlier message of
//! the same partition is done too. Stored offsets are committed by librdkafka every
//! `commit_interval`, when partitions are revoked, and when the consumer closes (librdkafka's
//! close commits stored offsets when auto commit is on). A crash
//! therefore redelivers at most the messages after the last commit; handlers must be
//! idempotent.
//!
//! Messages are handled concurrently up to `max_in_flight`, but never two with the same key
//! at once, so per-key (and so per-order) order is kept. A message that cannot be decoded,
//! or whose handler fails permanently or after `max_attempts`, is written to the dead-letter
//! topic with headers saying where it came from and why; only then is its offset stored.
//! Nothing in this module knows what the messages mean.

use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use prometheus::{IntCounter, IntCounterVec, IntGaugeVec};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaResult;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

mod generation;
mod group;
mod handler;
mod positions;
mod record;

pub use generation::{AssignmentGeneration, Ended};
pub use group::GroupContext;
use group::group_config;
pub use handler::{Handler, HandlerError, Received};
pub use record::Headers;
use record::{Incoming, Source, decode};

use super::producer::RawRecord;
use super::{BaseProducer, ClientSettings};
use crate::backoff::Backoff;
use crate::trace::spans;

/// How often the consumer looks whether its positions must be checked against the logs'
/// ends (a counter read; the check itself runs only after an assignment or when asked).
const OFFSET_CHECK_POLL: Duration = Duration::from_secs(1);

/// How long shutdown waits for the consumer to commit and leave the group.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a consumer behaves; see `[processing]` in `config/default.toml`.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// Consumer group id.
    pub group_id: String,
    /// Topics to subscribe to.
    pub topics: Vec<String>,
    /// Where undecodable and failed messages go.
    pub dead_letter_topic: String,
    /// Attempts per message before it is dead-lettered (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before the first retry; doubles per attempt up to `retry_backoff_max`.
    pub retry_backoff: Duration,
    /// Longest backoff between attempts.
    pub retry_backoff_max: Duration,
    /// Messages handled at once.
    pub max_in_flight: usize,
    /// `auto.commit.interval.ms`: how often stored offsets are committed.
    pub commit_interval: Duration,
    /// `session.timeout.ms`.
    pub session_timeout: Duration,
    /// `statistics.interval.ms` (0 turns statistics, and so lag metrics, off).
    pub statistics_interval: Duration,
    /// `fetch.wait.max.ms`.
    pub fetch_wait_max: Duration,
    /// `auto.offset.reset`: where a partition without a committed offset starts, and where a
    /// position past the end of the log (records lost) moves: `earliest` (default),
    /// `latest`, or `error` (stay, count, and say not ready).
    pub offset_reset: String,
}

/// Consumer metrics, registered by the owner of the registry.
#[derive(Clone)]
pub struct ConsumerMetrics {
    /// Messages received, by topic.
    pub consumed: IntCounterVec,
    /// Handler retries.
    pub retries: IntCounter,
    /// Messages written to the dead-letter topic, by source topic and reason.
    pub dead_lettered: IntCounterVec,
    /// Rebalances, by kind (assign, revoke, error).
    pub rebalances: IntCounterVec,
    /// Consumer lag by topic and partition, from librdkafka statistics.
    pub lag: IntGaugeVec,
    /// Offset commits, by result (ok, error).
    pub commits: IntCounterVec,
    /// Last committed offset by topic and partition, from librdkafka statistics.
    pub committed: IntGaugeVec,
    /// Positions found past the end of their partition's log and moved by
    /// `auto.offset.reset`, by topic and the policy applied (earliest, latest, error).
    pub offset_resets: IntCounterVec,
}

/// The outcome of one message, in receive order.
struct Done {
    topic: String,
    partition: i32,
    offset: i64,
    /// False when shutdown interrupted the message: its offset must not be stored.
    finished: bool,
    /// Why the message went to the dead-letter topic, if it did.
    dead_lettered: Option<&'static str>,
}

/// A typed consumer-group member. Create one per consumer task.
pub struct BaseConsumer<T> {
    /// Present until the consumer is closed (see the `Drop` impl).
    consumer: Option<StreamConsumer<GroupContext>>,
    options: ConsumerOptions,
    dead_letters: BaseProducer<serde_json::Value>,
    metrics: Option<ConsumerMetrics>,
    generation: Arc<AssignmentGeneration>,
    _value: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + Send + Sync + 'static> BaseConsumer<T> {
    /// Creates the consumer and subscribes it. `dead_letters` writes to the dead-letter topic.
    pub fn new(
        client: &ClientSettings,
        options: ConsumerOptions,
        dead_letters: BaseProducer<serde_json::Value>,
        metrics: Option<ConsumerMetrics>,
        generation: Arc<AssignmentGeneration>,
    ) -> KafkaResult<Self> {
        let config = group_config(client, &options);
        let context = GroupContext {
            metrics: metrics.clone(),
            generation: generation.clone(),
            group_id: options.group_id.clone(),
        };
        let consumer: StreamConsumer<GroupContext> = config.create_with_context(context)?;
        let topics: Vec<&str> = options.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        Ok(BaseConsumer {
            consumer: Some(consumer),
            options,
            dead_letters,
            metrics,
            generation,
            _value: PhantomData,
        })
    }

    /// Runs until `shutdown` is cancelled: finishes the messages in hand, stores and commits
    /// their offsets, and leaves the group.
    ///
    /// Also returns, with [`Ended::TopicsMadeAgain`], once its topics were lost and made
    /// again ([`AssignmentGeneration::request_offset_check`]): the caller starts a new
    /// consumer, whose fresh metadata knows the new topics (a client keeps fetching a
    /// topic it knew by its old id), and whose assignment starts again from the policy's
    /// start.
    pub async fn run<H: Handler<T>>(
        self,
        handler: Arc<H>,
        shutdown: CancellationToken,
    ) -> KafkaResult<Ended> {
        let this = Arc::new(self);
        let made_at_start = this.generation.offset_checks();
        let mut ended = Ended::Shutdown;
        let mut in_flight = FuturesOrdered::new();
        // The completion signal of the newest in-flight message of each key.
        let mut key_tails: HashMap<Vec<u8>, oneshot::Receiver<()>> = HashMap::new();
        let mut interrupted: HashSet<(String, i32)> = HashSet::new();
        // Positions are checked against the logs' ends after each assignment and when asked
        // (the service's topics were made again): see `reset_out_of_range`.
        let mut checked = (0, 0);
        let mut stalled = 0;
        // A check asks the coordinator and the partitions' leaders (seconds on a slow
        // broker): it runs beside the loop, which goes on handling messages meanwhile.
        let (checked_tx, mut checked_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let mut ticks = tokio::time::interval(OFFSET_CHECK_POLL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Made once, not at every turn of the loop (each makes and drops a waiter).
        let cancelled = shutdown.cancelled();
        tokio::pin!(cancelled);
        loop {
            tokio::select! {
                biased;
                () = &mut cancelled => break,
                _ = ticks.tick() => {
                    if this.generation.offset_checks() != made_at_start {
                        tracing::warn!(group = %this.options.group_id, "the topics were made again; leaving the positions from before and starting a new consumer");
                        // Every position from before the loss is abandoned: counted as a reset
                        // of each topic by the policy the new consumer starts from.
                        if let Some(m) = &this.metrics {
                            for topic in &this.options.topics {
                                m.offset_resets
                                    .with_label_values(&[topic, &this.options.offset_reset])
                                    .inc();
                            }
                        }
                        ended = Ended::TopicsMadeAgain;
                        break;
                    }
                    let wanted = (this.generation.current(), this.generation.offset_checks());
                    if wanted != checked && wanted.0 > 0 {
                        checked = wanted;
                        let (consumer, answer) = (this.clone(), checked_tx.clone());
                        tokio::task::spawn_blocking(move || {
                            let _ = answer.send(consumer.reset_out_of_range());
                        });
                    }
                }
                Some(now) = checked_rx.recv() => {
                    this.generation.set_stalled(stalled, now);
                    stalled = now;
                }
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    this.store(done, &mut interrupted);
                }
                received = this.client().recv(), if in_flight.len() < this.options.max_in_flight => {
                    let message = match received {
                        Ok(message) => message,
                        Err(error) => {
                            // librdkafka reconnects by itself; its own log says when.
                            tracing::debug!(%error, "consumer error");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let received_at = SystemTime::now();
                    let message = Incoming::copy(&message);
                    if let Some(m) = &this.metrics {
                        m.consumed.with_label_values(&[&message.topic]).inc();
                    }
                    let (tx, rx) = oneshot::channel();
                    let previous = message.key.as_ref().and_then(|k| key_tails.insert(k.clone(), rx));
                    if key_tails.len() > this.options.max_in_flight * 4 {
                        key_tails.retain(|_, rx| matches!(rx.try_recv(), Err(oneshot::error::TryRecvError::Empty)));
                    }
                    let (this, handler, shutdown) = (this.clone(), handler.clone(), shutdown.clone());
                    // The exported span (when on): from here, waits behind earlier records
                    // of the key included, continuing the producer's trace; the handler
                    // sees its context as the trace in scope.
                    let process = message.span(spans::Consume::Process, &this.options.group_id);
                    let trace = process.context();
                    // Every log line about this record carries where it is and the trace
                    // it belongs to (W3C traceparent header, when the producer set one).
                    let span = tracing::debug_span!(
                        "consume",
                        topic = message.topic,
                        partition = message.partition,
                        offset = message.offset,
                        trace_id = crate::trace::trace_id_of(message.header(crate::trace::TRACEPARENT)).unwrap_or_default(),
                        span_id = trace.as_ref().map(|c| c.span_id()),
                    );
                    in_flight.push_back(async move {
                        let mut process = process;
                        if let Some(previous) = previous {
                            let _ = previous.await;
                        }
                        let done = crate::trace::within(
                            trace,
                            this.handle_one(message, received_at, handler.as_ref(), &shutdown),
                        )
                        .await;
                        if let Some(reason) = done.dead_lettered {
                            process.record_error(reason);
                        }
                        let _ = tx.send(());
                        done
                    }.instrument(span));
                }
            }
        }
        // The messages in hand finish (retries stop early on shutdown) before the final commit.
        while let Some(done) = in_flight.next().await {
            this.store(done, &mut interrupted);
        }
        let group = this.options.group_id.clone();
        // Closing the client commits the stored offsets (auto commit is on) and leaves the
        // group; both block inside librdkafka, without bound when the coordinator is gone.
        // So they run on a thread of their own (not tokio's blocking pool, whose shutdown
        // would wait for them), which takes the last reference, and are waited for at most
        // CLOSE_TIMEOUT.
        let (closed, close) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("consumer-close".into())
            .spawn(move || {
                this.client().unsubscribe();
                if let Some(mut owned) = Arc::into_inner(this) {
                    drop(owned.consumer.take());
                }
                let _ = closed.send(());
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, %group, "cannot close the consumer on its own thread");
        }
        match tokio::time::timeout(CLOSE_TIMEOUT, close).await {
            Ok(_) => tracing::info!(%group, "consumer closed"),
            Err(_) => tracing::warn!(%group, "consumer close still waiting for Kafka; moving on"),
        }
        Ok(ended)
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(self.options.retry_backoff, self.options.retry_backoff_max)
    }

    fn client(&self) -> &StreamConsumer<GroupContext> {
        self.consumer
            .as_ref()
            .expect("the client is only taken when the consumer is closed")
    }

    /// The assignment generation handlers can watch.
    pub fn generation(&self) -> Arc<AssignmentGeneration> {
        self.generation.clone()
    }

    fn store(&self, done: Done, interrupted: &mut HashSet<(String, i32)>) {
        let partition = (done.topic, done.partition);
        if !done.finished {
            interrupted.insert(partition);
            return;
        }
        // After an interrupted message, later offsets of its partition must not be stored.
        if interrupted.contains(&partition) {
            return;
        }
        if let Err(error) = self
            .client()
            .store_offset(&partition.0, partition.1, done.offset)
        {
            // The partition was revoked meanwhile; its new owner will see the message again.
            tracing::debug!(%error, topic = %partition.0, partition = partition.1, offset = done.offset, "offset not stored");
        }
    }

    async fn handle_one<H: Handler<T>>(
        &self,
        message: Incoming,
        received_at: SystemTime,
        handler: &H,
        shutdown: &CancellationToken,
    ) -> Done {
        let Incoming {
            topic,
            partition,
            offset,
            key,
            payload,
            headers,
            timestamp_ms,
        } = message;
        let value = match decode::<T>(payload.as_deref()) {
            Ok(value) => value,
            Err(error) => {
                let source = Source {
                    topic: &topic,
                    partition,
                    offset,
                    key: key.as_deref(),
                    payload: payload.as_deref(),
                    headers: &headers,
                };
                let finished = self
                    .dead_letter(source, &error, 0, "undecodable", shutdown)
                    .await;
                return Done {
                    topic,
                    partition,
                    offset,
                    finished,
                    dead_lettered: Some("undecodable"),
                };
            }
        };
        let received = Received {
            value,
            payload: payload.unwrap_or_default(),
            key: key
                .as_deref()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            headers,
            topic,
            partition,
            offset,
            timestamp_ms,
            received_at,
        };
        let failure = self.retry(&received, handler, shutdown).await;
        let dead_lettered = match &failure {
            Some(Ok((_, _, reason))) => Some(*reason),
            _ => None,
        };
        let finished = match failure {
            None => true,
            Some(Err(interrupted)) => interrupted,
            Some(Ok((error, attempts, reason))) => {
                let source = Source {
                    topic: &received.topic,
                    partition,
                    offset,
                    key: key.as_deref(),
                    payload: Some(&received.payload),
                    headers: &received.headers,
                };
                self.dead_letter(source, &error, attempts, reason, shutdown)
                    .await
            }
        };
        Done {
            topic: received.topic,
            partition,
            offset,
            finished,
            dead_lettered,
        }
    }

    /// Runs the handler, retrying transient failures with backoff. `None` when it succeeded;
    /// `Some(Ok((error, attempts, reason)))` when the message must be dead-lettered;
    /// `Some(Err(false))` when shutdown interrupted the retries.
    async fn retry<H: Handler<T>>(
        &self,
        received: &Received<T>,
        handler: &H,
        shutdown: &CancellationToken,
    ) -> Option<Result<(String, u32, &'static str), bool>> {
        let mut attempt = 1;
        let mut backoff = self.backoff();
        loop {
            match handler.handle(received).await {
                Ok(()) => return None,
                Err(HandlerError::Permanent(error)) => {
                    return Some(Ok((format!("{error:#}"), attempt, "permanent")));
                }
                Err(HandlerError::Transient(error)) if attempt >= self.options.max_attempts => {
                    return Some(Ok((format!("{error:#}"), attempt, "exhausted")));
                }
                Err(HandlerError::Transient(error)) => {
                    tracing::warn!(error = %format!("{error:#}"), attempt, topic = %received.topic, partition = received.partition, offset = received.offset, "handler failed; retrying");
                    if let Some(m) = &self.metrics {
                        m.retries.inc();
                    }
                }
            }
            if !backoff.wait(shutdown).await {
                return Some(Err(false));
            }
            attempt += 1;
        }
    }

    /// Writes the original record to the dead-letter topic, retrying until Kafka takes it.
    /// Returns false only when shutdown interrupted it.
    async fn dead_letter(
        &self,
        source: Source<'_>,
        error: &str,
        attempts: u32,
        reason: &str,
        shutdown: &CancellationToken,
    ) -> bool {
        tracing::error!(
            topic = source.topic,
            partition = source.partition,
            offset = source.offset,
            error,
            attempts,
            reason,
            "dead-lettering message"
        );
        let mut headers = source.headers.to_vec();
        headers.extend([
            ("dlq-source-topic".to_string(), source.topic.to_string()),
            (
                "dlq-source-partition".to_string(),
                source.partition.to_string(),
            ),
            ("dlq-source-offset".to_string(), source.offset.to_string()),
            ("dlq-error".to_string(), error.chars().take(1000).collect()),
            ("dlq-reason".to_string(), reason.to_string()),
            ("dlq-attempts".to_string(), attempts.to_string()),
            (
                "dlq-consumer-group".to_string(),
                self.options.group_id.clone(),
            ),
            ("dlq-failed-at".to_string(), chrono::Utc::now().to_rfc3339()),
        ]);
        let mut backoff = self.backoff();
        loop {
            let record = RawRecord {
                topic: &self.options.dead_letter_topic,
                key: source.key,
                payload: source.payload,
                headers: &headers,
                partition: None,
                timestamp: None,
            };
            match self.dead_letters.send_raw(record).await {
                Ok(_) => {
                    if let Some(m) = &self.metrics {
                        m.dead_lettered
                            .with_label_values(&[source.topic, reason])
                            .inc();
                    }
                    return true;
                }
                Err(error) => tracing::warn!(%error, "cannot write dead letter yet"),
            }
            if !backoff.wait(shutdown).await {
                return false;
            }
        }
    }
}

impl<T> Drop for BaseConsumer<T> {
    /// A consumer not closed by [`BaseConsumer::run`] (its task aborted, say by a runtime
    /// shutting down) is closed on a thread of its own: closing leaves the group and commits,
    /// which librdkafka waits for without bound when the coordinator is unreachable, and
    /// that must not hold up whoever dropped it.
    fn drop(&mut self) {
        if let Some(consumer) = self.consumer.take() {
            let spawned = std::thread::Builder::new()
                .name("consumer-close".into())
                .spawn(move || drop(consumer));
            if let Err(error) = spawned {
                tracing::warn!(%error, "cannot close the consumer on its own thread");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> ConsumerOptions {
        ConsumerOptions {
            group_id: "g".into(),
            topics: vec!["t".into()],
            dead_letter_topic: "t.dlq".into(),
            max_attempts: 1,
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            max_in_flight: 10,
            commit_interval: Duration::from_millis(1000),
            session_timeout: Duration::from_secs(10),
            statistics_interval: Duration::ZERO,
            fetch_wait_max: Duration::from_millis(7),
            offset_reset: "earliest".into(),
        }
    }

    #[test]
    fn every_option_reaches_librdkafka_and_the_operator_has_the_last_word() {
        let mut client = ClientSettings {
            bootstrap_servers: "b:9092".into(),
            client_id: "c".into(),
            librdkafka: Default::default(),
        };
        let config = group_config(&client, &options());
        for (key, value) in [
            ("group.id", "g"),
            ("enable.auto.offset.store", "false"),
            ("auto.commit.interval.ms", "1000"),
            ("session.timeout.ms", "10000"),
            ("statistics.interval.ms", "0"),
            // Once missing: the consumer waited librdkafka's default 500 ms per fetch.
            ("fetch.wait.max.ms", "7"),
        ] {
            assert_eq!(config.get(key), Some(value), "{key}");
        }
        client
            .librdkafka
            .insert("fetch.wait.max.ms".into(), "100".into());
        assert_eq!(
            group_config(&client, &options()).get("fetch.wait.max.ms"),
            Some("100")
        );
    }
}
