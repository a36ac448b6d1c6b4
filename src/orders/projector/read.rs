//! One read of the topics into the view: the status topic first, then both, with the
//! progress told to whoever waits for the view.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::Offset;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use tokio_util::sync::CancellationToken;

use super::{OffsetsGone, Projector, ends};
use crate::kafka::ClientContext;
use crate::kafka::reader::{self, ReaderOptions};

/// How long records applied to the view may wait before whoever waits for it hears of them
/// (and the read's progress is taken stock of): telling them of every record cost more than
/// the records.
const PROGRESS_EVERY: Duration = Duration::from_millis(5);

/// What a read of the topics is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The status topic alone, up to where it ended at the start of the read.
    StatusFirst,
    /// Both topics, for as long as the service runs.
    Both,
}

/// Where one read of the topics stands.
struct ReadState<'a> {
    started: Instant,
    last_report: Instant,
    /// Where the topics ended when this read began.
    start_targets: &'a HashMap<(String, i32), i64>,
    /// Whether this read has reached them (a rebuild under the running service starts a
    /// new read).
    reached_start_ends: bool,
    /// What this read is of.
    phase: Phase,
    /// A [`Phase::StatusFirst`] read has reached where the status topic ended.
    status_read: bool,
    /// Whether records were applied since whoever waits for the view last heard.
    unsent: bool,
    last_sent: Instant,
}

impl Projector {
    pub(super) async fn read(self: Arc<Self>, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let (marks, cluster) = self.watermarks().await?;
        let targets = ends(&marks);
        if !self.resumed.load(Ordering::Acquire) {
            self.resume_or_rebuild(&cluster, &marks, &targets)?;
            self.resumed.store(true, Ordering::Release);
        }
        // A view read from the start begins at each partition's first offset as just read
        // (librdkafka asking for the beginning itself took 0.5-0.6 s before the first
        // record on Tansu). Should retention move past it meanwhile, the reset error below
        // starts the rebuild again, which costs nothing then; a view resumed from its store
        // reads a partition it has no offset for from the beginning.
        let from_start = self
            .positions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        // The status topic first, up to where it ended now: an order whose final status is
        // read first is written once, final, and its `order_placed` record then only asks
        // whether the order is held (read side by side, most orders of a rebuild were
        // written as `PENDING`, then again). The view's answers do not depend on the order
        // the two topics are read in. A reader of its own, closed when done, rather than
        // paused `orders` partitions: a client fetches newly resumed partitions only once
        // its fetch in flight returns, and Kafka holds that one for up to the fetch wait
        // when the status topic has nothing more.
        if !self.reached_in(&self.status_topic, &targets) {
            let status = self.reader()?;
            self.assign_starts(
                &status,
                &marks,
                &targets,
                from_start,
                Some(&self.status_topic),
            )?;
            let result = self
                .consume(&status, &targets, shutdown, Phase::StatusFirst)
                .await;
            // Not awaited: its last fetch may still be waiting on the broker.
            tokio::spawn(reader::close(status));
            result?;
            if shutdown.is_cancelled() {
                return Ok(());
            }
        }
        let consumer = self.reader()?;
        self.assign_starts(&consumer, &marks, &targets, from_start, None)?;
        let result = self
            .consume(&consumer, &targets, shutdown, Phase::Both)
            .await;
        reader::close(consumer).await;
        result
    }

    /// A group-less reader for the view.
    fn reader(&self) -> anyhow::Result<Arc<StreamConsumer<ClientContext>>> {
        let consumer: StreamConsumer<ClientContext> = self
            .client
            .reader(
                "view",
                &ReaderOptions {
                    fetch_wait_ms: Some(self.fetch_wait_max.as_millis() as u64),
                    // The view's memory is bounded by what it holds, not by how far ahead
                    // the client reads: these bounds apply to each of the (by default
                    // twelve) partitions.
                    read_ahead_kib: Some(2048),
                    offset_reset: Some("error"),
                    min_messages: Some(2_000),
                    refill_soon: true,
                },
            )
            .context("creating the projector consumer")?;
        Ok(Arc::new(consumer))
    }

    /// Assigns the partitions of `targets` (of `only` that topic, if given) at the view's
    /// positions, or where a partition starts.
    fn assign_starts(
        &self,
        consumer: &StreamConsumer<ClientContext>,
        marks: &HashMap<(String, i32), (i64, i64)>,
        targets: &HashMap<(String, i32), i64>,
        from_start: bool,
        only: Option<&str>,
    ) -> anyhow::Result<()> {
        reader::assign(
            consumer,
            targets
                .keys()
                .filter(|(topic, _)| only.is_none_or(|only| topic == only))
                .map(|(topic, partition)| {
                    let first = marks
                        .get(&(topic.clone(), *partition))
                        .filter(|_| from_start)
                        .map_or(Offset::Beginning, |&(low, _)| Offset::Offset(low));
                    let start = self
                        .position(topic, *partition)
                        .map_or(first, Offset::Offset);
                    (topic.as_str(), *partition, start)
                }),
        )?;
        Ok(())
    }

    async fn consume(
        &self,
        consumer: &StreamConsumer<ClientContext>,
        start_targets: &HashMap<(String, i32), i64>,
        shutdown: &CancellationToken,
        phase: Phase,
    ) -> anyhow::Result<()> {
        let mut idle_wait = reader::IDLE_WAIT_FIRST;
        let now = Instant::now();
        let mut read = ReadState {
            started: now,
            last_report: now,
            start_targets,
            reached_start_ends: false,
            phase,
            status_read: false,
            unsent: true,
            last_sent: now,
        };
        loop {
            if read.unsent && read.last_sent.elapsed() >= PROGRESS_EVERY {
                self.take_stock(&mut read);
            }
            if read.status_read {
                return Ok(());
            }
            // The topics were lost and made again: the view's offsets are from logs that are
            // gone, even where new records have already filled the logs beyond them.
            if self.check_offsets.swap(false, Ordering::AcqRel) {
                return Err(OffsetsGone.into());
            }
            // A rebuild reads faster than the store writes: wait for the writer.
            self.store.wait_for_room().await;
            // Records applied and not yet told are told soon, whether more come or not.
            let wait = if read.unsent {
                PROGRESS_EVERY
            } else {
                idle_wait
            };
            let message = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                received = tokio::time::timeout(wait, consumer.recv()) => received,
            };
            match message {
                Ok(Ok(message)) => {
                    idle_wait = reader::IDLE_WAIT_FIRST;
                    self.metrics.view_records_read.inc();
                    let mut span = self.apply_span(&message);
                    self.apply(&message, &mut span);
                    if self.is_caught_up() && message.topic() == self.status_topic {
                        self.observe_lag(message.timestamp().to_millis());
                    }
                    if self.advance(message.topic(), message.partition(), message.offset() + 1) {
                        read.unsent = true;
                    }
                }
                Ok(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset))) => {
                    return Err(OffsetsGone.into());
                }
                // librdkafka reconnects by itself; its own log says when.
                Ok(Err(error)) => tracing::debug!(%error, "status projector read error"),
                Err(_quiet) if read.unsent => self.take_stock(&mut read),
                Err(_idle) => {
                    idle_wait = reader::longer_idle_wait(idle_wait, self.is_caught_up());
                    // Positions also move past records the client skips (control records),
                    // which never arrive as messages.
                    if let Ok(positions) = consumer.position() {
                        for e in positions.elements() {
                            if let Offset::Offset(o) = e.offset() {
                                self.advance(e.topic(), e.partition(), o);
                            }
                        }
                    }
                    self.take_stock(&mut read);
                }
            }
        }
    }

    /// Tells whoever waits for the view how far it has read, and notes reaching the ends of
    /// the start (or, reading the status topic first, of that topic).
    fn take_stock(&self, read: &mut ReadState<'_>) {
        self.notify_progress();
        read.unsent = false;
        read.last_sent = Instant::now();
        if read.phase == Phase::StatusFirst
            && self.reached_in(&self.status_topic, read.start_targets)
        {
            read.status_read = true;
        }
        if read.reached_start_ends && self.is_caught_up() {
            return;
        }
        let remaining = self.remaining(read.start_targets);
        if !read.reached_start_ends && remaining == 0 {
            read.reached_start_ends = true;
            self.store.build_list_indexes();
        }
        if self.is_caught_up() {
            return;
        }
        self.metrics.view_catch_up_remaining.set(remaining);
        if remaining == 0 {
            tracing::info!(
                orders = self.store.len(),
                records_read = self.metrics.view_records_read.get(),
                seconds = read.started.elapsed().as_secs_f64(),
                "status view caught up"
            );
            self.caught_up.store(true, Ordering::Release);
        } else if read.last_report.elapsed() >= Duration::from_secs(5) {
            read.last_report = Instant::now();
            tracing::info!(
                records_read = self.metrics.view_records_read.get(),
                records_remaining = remaining,
                orders = self.store.len(),
                "status view catching up"
            );
        }
    }
}
