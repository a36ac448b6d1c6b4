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
//! Messages are handled in batches, Kafka Streams-style: what one poll returned (up to
//! [`MAX_BATCH`]) goes to the handler together ([`Handler::handle_batch`]), and batches run
//! concurrently up to `max_in_flight` messages in all, but never two messages with the same
//! key at once: a batch is cut where a key repeats, and a batch with a key of an earlier
//! unfinished one waits for it. So per-key (and so per-order) order is kept. A message that
//! cannot be decoded,
//! or whose handler fails permanently or after `max_attempts`, is written to the dead-letter
//! topic with headers saying where it came from and why; only then is its offset stored.
//! Nothing in this module knows what the messages mean.

use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::{FutureExt, Shared};
use futures::stream::FuturesOrdered;
use futures::{Stream, StreamExt};
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

/// The most messages taken from librdkafka's queue into one batch.
pub const MAX_BATCH: usize = 500;

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
}

impl Done {
    fn of<T>(message: &Received<T>, finished: bool) -> Self {
        Done {
            topic: message.topic.clone(),
            partition: message.partition,
            offset: message.offset,
            finished,
        }
    }
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
        // Messages in the batches in flight.
        let mut held = 0;
        // The completion of the newest unfinished batch holding each key.
        let mut key_tails: HashMap<Vec<u8>, Shared<oneshot::Receiver<()>>> = HashMap::new();
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
        // One stream for the consumer's life: each `recv` would register a waker of its own.
        let mut messages = this.client().stream();
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
                    held -= Vec::<Done>::len(&done);
                    this.store(done, &mut interrupted);
                }
                received = messages.next(), if held < this.options.max_in_flight => {
                    let message = match received {
                        Some(Ok(message)) => message,
                        Some(Err(error)) => {
                            // librdkafka reconnects by itself; its own log says when.
                            tracing::debug!(%error, "consumer error");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                        None => break,
                    };
                    let received_at = SystemTime::now();
                    let room = (this.options.max_in_flight - held).min(MAX_BATCH);
                    let batch = take_ready(Incoming::copy(&message), &mut messages, room);
                    drop(message);
                    held += batch.len();
                    this.count(&batch);
                    // The unfinished batches this one must wait for: those holding one of its keys.
                    let (finished, done) = oneshot::channel();
                    let done = done.shared();
                    let mut earlier = Vec::new();
                    for key in batch.iter().filter_map(|m| m.key.as_ref()) {
                        // (A key repeated inside the batch finds the batch itself.)
                        if let Some(tail) = key_tails.insert(key.clone(), done.clone())
                            && tail.peek().is_none()
                            && !Shared::ptr_eq(&tail, &done)
                            && !earlier.iter().any(|e| Shared::ptr_eq(e, &tail))
                        {
                            earlier.push(tail);
                        }
                    }
                    if key_tails.len() > this.options.max_in_flight * 4 {
                        key_tails.retain(|_, tail| tail.peek().is_none());
                    }
                    let (this, handler, shutdown) = (this.clone(), handler.clone(), shutdown.clone());
                    in_flight.push_back(async move {
                        for tail in earlier {
                            let _ = tail.await;
                        }
                        let done = this.handle_batch(batch, received_at, handler.as_ref(), &shutdown).await;
                        let _ = finished.send(());
                        done
                    });
                }
            }
        }
        drop(messages);
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

    /// Counts what was received, by topic.
    fn count(&self, batch: &[Incoming]) {
        let Some(m) = &self.metrics else { return };
        let mut rest = batch;
        while let Some(first) = rest.first() {
            let same = rest.iter().take_while(|m| m.topic == first.topic).count();
            m.consumed
                .with_label_values(&[&first.topic])
                .inc_by(same as u64);
            rest = &rest[same..];
        }
    }

    /// Stores the offsets of a batch's messages, in receive order: per partition the last
    /// message finished before the first interrupted one.
    fn store(&self, done: Vec<Done>, interrupted: &mut HashSet<(String, i32)>) {
        let mut last: Vec<(String, i32, i64)> = Vec::new();
        for done in done {
            let partition = (done.topic, done.partition);
            if !done.finished {
                interrupted.insert(partition);
                continue;
            }
            // After an interrupted message, later offsets of its partition must not be stored.
            if interrupted.contains(&partition) {
                continue;
            }
            match last
                .iter_mut()
                .find(|(t, p, _)| *p == partition.1 && *t == partition.0)
            {
                Some(entry) => entry.2 = done.offset,
                None => last.push((partition.0, partition.1, done.offset)),
            }
        }
        for (topic, partition, offset) in last {
            if let Err(error) = self.client().store_offset(&topic, partition, offset) {
                // The partition was revoked meanwhile; its new owner will see the message again.
                tracing::debug!(%error, %topic, partition, offset, "offset not stored");
            }
        }
    }

    /// Handles one batch: decodes every message, hands the decoded ones to the handler in
    /// runs without a repeated key, retries what failed, and dead-letters what
    /// cannot be decoded or kept failing. The outcomes come back in receive order.
    async fn handle_batch<H: Handler<T>>(
        &self,
        batch: Vec<Incoming>,
        received_at: SystemTime,
        handler: &H,
        shutdown: &CancellationToken,
    ) -> Vec<Done> {
        let mut done = Vec::with_capacity(batch.len());
        let mut run: Vec<(Received<T>, spans::Span)> = Vec::with_capacity(batch.len());
        let mut keys: HashSet<Vec<u8>> = HashSet::new();
        for message in batch {
            if let Some(key) = &message.key
                && !keys.insert(key.clone())
            {
                // The key repeats: what came before it is handled first.
                self.handle_run(std::mem::take(&mut run), handler, shutdown, &mut done)
                    .await;
                keys.clear();
                keys.insert(key.clone());
            }
            match self.received(message, received_at, shutdown).await {
                Ok(received) => run.push(received),
                Err(undecodable) => {
                    // Its key's earlier messages are done or in the run; it waits for neither.
                    done.push(undecodable);
                }
            }
        }
        self.handle_run(run, handler, shutdown, &mut done).await;
        // Back in each partition's order (an undecodable message was finished before the
        // run it was received in).
        done.sort_unstable_by_key(|d| (d.partition, d.offset));
        done
    }

    /// Decodes a message for its handler, with its spans; an undecodable one is
    /// dead-lettered here.
    async fn received(
        &self,
        message: Incoming,
        received_at: SystemTime,
        shutdown: &CancellationToken,
    ) -> Result<(Received<T>, spans::Span), Done> {
        // The exported span (when on): from here (the batch's earlier batches of its keys
        // and earlier runs are done) to its outcome, continuing the producer's trace; the
        // handler sees its context.
        let process = message.span(spans::Consume::Process, &self.options.group_id);
        let trace = process.context();
        // Every log line about this record carries where it is and the trace it belongs to
        // (W3C traceparent header, when the producer set one).
        let span = tracing::debug_span!(
            "consume",
            topic = message.topic,
            partition = message.partition,
            offset = message.offset,
            trace_id = crate::trace::trace_id_of(message.header(crate::trace::TRACEPARENT))
                .unwrap_or_default(),
            span_id = trace.as_ref().map(|c| c.span_id()),
        );
        let Incoming {
            topic,
            partition,
            offset,
            key,
            payload,
            headers,
            timestamp_ms,
        } = message;
        match decode::<T>(payload.as_deref()) {
            Ok(value) => Ok((
                Received {
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
                    trace,
                    span,
                },
                process,
            )),
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
                    .instrument(span)
                    .await;
                let mut process = process;
                process.record_error("undecodable");
                Err(Done {
                    topic,
                    partition,
                    offset,
                    finished,
                })
            }
        }
    }

    /// Hands messages with distinct keys to the handler together; those that failed
    /// transiently go back to it together after a backoff, until they succeed or run out of
    /// attempts; what failed for good is dead-lettered.
    async fn handle_run<H: Handler<T>>(
        &self,
        run: Vec<(Received<T>, spans::Span)>,
        handler: &H,
        shutdown: &CancellationToken,
        done: &mut Vec<Done>,
    ) {
        let (mut messages, mut processes): (Vec<_>, Vec<_>) = run.into_iter().unzip();
        // (message, its span, error, attempts, reason) to dead-letter.
        let mut failed = Vec::new();
        let mut attempt = 1;
        let mut backoff = self.backoff();
        while !messages.is_empty() {
            let mut results = handler.handle_batch(&messages).await;
            // A result per message, whatever the handler returned: a message without one
            // must not count as done.
            results.resize_with(messages.len(), || {
                Err(HandlerError::Transient(anyhow::anyhow!(
                    "the handler gave no result for this message"
                )))
            });
            let mut again = (Vec::new(), Vec::new());
            for ((message, process), result) in messages.into_iter().zip(processes).zip(results) {
                match result {
                    Ok(()) => done.push(Done::of(&message, true)),
                    Err(HandlerError::Permanent(error)) => {
                        failed.push((message, process, format!("{error:#}"), attempt, "permanent"));
                    }
                    Err(HandlerError::Transient(error)) if attempt >= self.options.max_attempts => {
                        failed.push((message, process, format!("{error:#}"), attempt, "exhausted"));
                    }
                    Err(HandlerError::Transient(error)) => {
                        message.span.in_scope(|| {
                            tracing::warn!(error = %format!("{error:#}"), attempt, topic = %message.topic, partition = message.partition, offset = message.offset, "handler failed; retrying");
                        });
                        if let Some(m) = &self.metrics {
                            m.retries.inc();
                        }
                        again.0.push(message);
                        again.1.push(process);
                    }
                }
            }
            (messages, processes) = again;
            if messages.is_empty() {
                break;
            }
            if !backoff.wait(shutdown).await {
                // Interrupted: their offsets must not be stored.
                done.extend(messages.iter().map(|m| Done::of(m, false)));
                break;
            }
            attempt += 1;
        }
        for (message, mut process, error, attempts, reason) in failed {
            process.record_error(reason);
            let source = Source {
                topic: &message.topic,
                partition: message.partition,
                offset: message.offset,
                key: message.key.as_deref().map(str::as_bytes),
                payload: Some(&message.payload),
                headers: &message.headers,
            };
            let finished = self
                .dead_letter(source, &error, attempts, reason, shutdown)
                .instrument(message.span.clone())
                .await;
            done.push(Done::of(&message, finished));
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

/// `first`, and what else librdkafka has ready now, up to `room` messages in all.
fn take_ready<'a, S>(first: Incoming, messages: &mut S, room: usize) -> Vec<Incoming>
where
    S: Stream<Item = KafkaResult<rdkafka::message::BorrowedMessage<'a>>> + Unpin,
{
    let mut batch = Vec::with_capacity(room.min(64));
    batch.push(first);
    while batch.len() < room {
        match messages.next().now_or_never() {
            Some(Some(Ok(message))) => batch.push(Incoming::copy(&message)),
            Some(Some(Err(error))) => {
                tracing::debug!(%error, "consumer error");
                break;
            }
            _ => break,
        }
    }
    batch
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
