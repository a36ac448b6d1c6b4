//! The status projector: reads every partition of `orders` and `orders.status`, without a
//! consumer group and without committing, into the [`OrderStore`]. So every instance can
//! answer for every order. `orders` gives `PENDING` orders and cancel requests;
//! `orders.status` gives every later change. It starts where the store's last commit ended
//! (the store keeps the offsets with its rows), or from the beginning of the topics when the
//! store is new, unreadable, from other topics or a cluster, or its offsets are gone.
//!
//! It also tells how far it has read: [`Projector::is_caught_up`] (for readiness: the view
//! has reached the end the topics had at start-up) and [`Projector::catch_up`] (for the
//! processor after a rebalance: wait until the view reaches the topics' current end).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rdkafka::Offset;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::events::OrderEvent;
use super::status::OrderSnapshot;
use super::store::{OrderStore, Origin, RebuildReason, Summary};
use crate::backoff::Backoff;
use crate::config::Settings;
use crate::kafka::reader::{self, ReaderOptions};
use crate::kafka::topics::watermarks;
use crate::kafka::{ClientContext, ClientSettings};
use crate::metrics::Metrics;
use crate::trace::TraceContext;
use crate::trace::spans;

/// How every `order_placed` record the service writes begins (serde writes an internally
/// tagged enum's tag first).
const PLACED_PREFIX: &[u8] = br#"{"type":"order_placed","#;

/// Longest wait for the view to catch up after a rebalance.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(30);

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

/// Reads the topics into the store and reports its progress.
pub struct Projector {
    client: ClientSettings,
    orders_topic: String,
    status_topic: String,
    store: Arc<OrderStore>,
    timeout: Duration,
    fetch_wait_max: Duration,
    metrics: Arc<Metrics>,
    /// Next offset to read, by (topic, partition).
    positions: Mutex<HashMap<(String, i32), i64>>,
    progress: watch::Sender<u64>,
    caught_up: AtomicBool,
    /// Whether this process has checked the store against the topics (once).
    resumed: AtomicBool,
    /// Set when the topics were made again under the running service: the positions may
    /// be past the new logs' ends (see [`Projector::request_offset_check`]).
    check_offsets: AtomicBool,
}

/// The store's offsets are no longer in the topics: `auto.offset.reset` is `error`, so a
/// checkpoint that points outside a partition (topic recreated, records past retention) is
/// reported instead of being silently moved.
#[derive(Debug, thiserror::Error)]
#[error("the status view's offsets are no longer in the topics")]
struct OffsetsGone;

impl Projector {
    /// A projector for the two topics; start it with [`Projector::run`].
    pub fn new(
        settings: &Settings,
        client: ClientSettings,
        store: Arc<OrderStore>,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new(Projector {
            client,
            orders_topic: settings.topics.orders.name.clone(),
            status_topic: settings.topics.status.name.clone(),
            store,
            timeout: settings.kafka.admin_timeout,
            fetch_wait_max: settings.processing.fetch_wait_max,
            metrics,
            positions: Mutex::new(HashMap::new()),
            progress: watch::channel(0).0,
            caught_up: AtomicBool::new(false),
            resumed: AtomicBool::new(false),
            check_offsets: AtomicBool::new(false),
        })
    }

    /// Tells the projector that the service had to make its topics again (the broker lost
    /// them): the view rebuilds from the new topics. Its offsets are from logs that are gone;
    /// where they are past the new ends, a broker that does not answer such a read with
    /// `OFFSET_OUT_OF_RANGE` would leave the view reading nothing for ever, and where new
    /// records have already filled the logs beyond them, the view would skip those.
    pub fn request_offset_check(&self) {
        self.check_offsets.store(true, Ordering::Release);
    }

    /// Whether the view has read up to where the topics ended when the service started.
    pub fn is_caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Acquire)
    }

    /// Waits until the view has read everything the topics hold now.
    pub async fn catch_up(&self) -> anyhow::Result<()> {
        let targets = self.end_offsets().await?;
        let mut progress = self.progress.subscribe();
        tokio::time::timeout(CATCH_UP_LIMIT, async {
            while !self.reached(&targets) {
                if progress.changed().await.is_err() {
                    anyhow::bail!("status projector stopped");
                }
            }
            Ok(())
        })
        .await
        .context("status view did not catch up in time")?
    }

    /// Runs until shutdown, retrying with backoff when Kafka or the topics are not there yet.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        while !shutdown.is_cancelled() {
            match self.clone().read(&shutdown).await {
                Ok(()) => return,
                Err(error) if error.is::<OffsetsGone>() => {
                    tracing::warn!("status view's offsets are gone from the topics; rebuilding it");
                    if let Err(error) = self.rebuild(RebuildReason::OffsetsGone).await {
                        tracing::error!(error = %format!("{error:#}"), "status view reset failed");
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "status projector restarting")
                }
            }
            if !backoff.wait(&shutdown).await {
                return;
            }
        }
    }

    async fn read(self: Arc<Self>, shutdown: &CancellationToken) -> anyhow::Result<()> {
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
                &*status,
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
        self.assign_starts(&*consumer, &marks, &targets, from_start, None)?;
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
                    // the client reads.
                    read_ahead_kib: Some(8192),
                    offset_reset: Some("error"),
                    min_messages: None,
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

    /// Resumes from the store's offsets when it was written from these topics, or empties it.
    fn resume_or_rebuild(
        &self,
        cluster: &str,
        marks: &HashMap<(String, i32), (i64, i64)>,
        targets: &HashMap<(String, i32), i64>,
    ) -> anyhow::Result<()> {
        // The store's source: the cluster and the two topics.
        let source = format!("{cluster}/{}/{}", self.orders_topic, self.status_topic);
        let stored = self.store.source()?;
        if stored.as_deref() != Some(source.as_str()) {
            let reason = match stored {
                None => self.store.opened_empty().unwrap_or(RebuildReason::Missing),
                Some(_) => RebuildReason::OtherSource,
            };
            return self.rebuild_from(reason, &source);
        }
        let positions = self.store.positions()?;
        // A committed offset is never past the end of its partition on Kafka, unless the
        // topic was deleted and created again (or a different cluster answers).
        if positions
            .iter()
            .any(|(tp, &next)| marks.get(tp).is_some_and(|&(_, high)| next > high))
        {
            return self.rebuild_from(RebuildReason::OffsetsGone, &source);
        }
        *self.positions.lock().unwrap_or_else(|e| e.into_inner()) = positions;
        let behind = self.remaining(targets);
        tracing::info!(
            orders = self.store.len(),
            records_behind = behind,
            "status view resuming from its store"
        );
        Ok(())
    }

    async fn rebuild(&self, reason: RebuildReason) -> anyhow::Result<()> {
        let stored = self.store.source()?.unwrap_or_default();
        self.rebuild_from(reason, &stored)
    }

    /// Empties the store (and this projector's positions) to read the topics from the start.
    fn rebuild_from(&self, reason: RebuildReason, source: &str) -> anyhow::Result<()> {
        tracing::info!(
            reason = reason.as_str(),
            "status view rebuilding from the beginning of the topics"
        );
        // Positions first: a processor never finds a record applied that the emptied view
        // does not hold (see `has_applied`).
        self.positions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.store.reset(source)?;
        self.metrics
            .view_rebuilds
            .with_label_values(&[reason.as_str()])
            .inc();
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

    /// The exported span of a live status record applied to this instance's view: linked to
    /// the order's trace when that is sampled; none while replaying (a rebuild would make
    /// one per record).
    fn apply_span(&self, message: &impl Message) -> spans::Span {
        if !spans::exporting() || message.topic() != self.status_topic || !self.is_caught_up() {
            return spans::Span::none();
        }
        let header = |name: &str| crate::kafka::header(message, name);
        spans::consume(
            spans::Consume::Apply,
            &spans::Consumed {
                topic: message.topic(),
                partition: message.partition(),
                offset: message.offset(),
                key: message.key().and_then(|k| std::str::from_utf8(k).ok()),
                group: None,
                context: TraceContext::from_parts(
                    header(crate::trace::TRACEPARENT),
                    header(crate::trace::TRACESTATE),
                ),
            },
        )
    }

    fn apply(&self, message: &impl Message, span: &mut spans::Span) {
        let Some(payload) = message.payload() else {
            return;
        };
        // Plain JSON or Confluent's wire format (`[schemas] wire_format`): the same JSON.
        let payload = crate::kafka::wire::json_payload(payload);
        // Records of orders the view holds at least as far along are not decoded again: an
        // order's final status is written once and nothing supersedes it, and an order
        // already known stays as it is when its `order_placed` record arrives. When the view
        // holds them as this instance's own local change, the record's arrival commits it.
        let id = message
            .key()
            .and_then(|key| std::str::from_utf8(key).ok())
            .and_then(|key| Uuid::parse_str(key).ok());
        if message.topic() == self.status_topic {
            let known = id.and_then(|id| self.store.known_for_status(&id).map(|k| (id, k)));
            // Whether the record needs nothing more: the view holds the order final, stored
            // or waiting for the writer, or as a local change now committed. False when the
            // cache dropped the order since `known` looked: the record is then applied like
            // any other.
            let settled = |(id, (_, uncommitted)): (Uuid, (Summary, bool))| {
                !uncommitted || self.store.commit_local(&id)
            };
            if let Some(known) = known.filter(|(_, (summary, _))| summary.status.is_final())
                && settled(known)
            {
                return;
            }
            match serde_json::from_slice::<OrderSnapshot>(payload) {
                Ok(snapshot) => {
                    let (id, status) = (snapshot.order.order_id, snapshot.status.as_str());
                    // What `known` found stands for the store's row (not read again), when
                    // the record's key names the order it carries.
                    let seen = known
                        .filter(|(key, _)| *key == id)
                        .map(|(_, (summary, _))| summary);
                    // The record's JSON is the row's (what an older version wrote, too: it
                    // decodes to this snapshot).
                    self.store
                        .apply_over(snapshot, Some(payload.to_vec()), Origin::Topic, seen);
                    span.live_event(&id, status);
                }
                Err(error) => tracing::warn!(%error, "undecodable status record skipped"),
            }
        } else {
            // An `order_placed` record needs nothing more when the view holds its order at
            // all (whatever its status), stored or waiting for the writer, or as a local
            // change now committed; asked only of those (a look has a side effect).
            let settled = |id: &Uuid| match self.store.held(id) {
                Some(uncommitted) => !uncommitted || self.store.commit_local(id),
                None => false,
            };
            // The service writes the tag first; anything else is decoded in full below.
            let placed = payload.starts_with(PLACED_PREFIX);
            if placed && id.as_ref().is_some_and(settled) {
                return;
            }
            // Undecodable order records are the processor's to dead-letter.
            match serde_json::from_slice::<OrderEvent>(payload) {
                Ok(OrderEvent::OrderPlaced { order }) => {
                    if placed || !id.as_ref().is_some_and(settled) {
                        self.store.insert_unknown(order, Origin::Topic);
                    }
                }
                Ok(OrderEvent::CancelRequested { order_id, .. }) => {
                    self.store.mark_cancel_requested(&order_id, Origin::Topic);
                }
                Err(_) => {}
            }
        }
    }

    /// How long a status record took to reach the view (live records only: a replay at start
    /// would measure the records' age).
    fn observe_lag(&self, timestamp_ms: Option<i64>) {
        let Some(written) = timestamp_ms.and_then(|ms| u64::try_from(ms).ok()) else {
            return;
        };
        let written = UNIX_EPOCH + Duration::from_millis(written);
        let seconds = SystemTime::now()
            .duration_since(written)
            .unwrap_or_default()
            .as_secs_f64();
        self.metrics
            .order_stage
            .with_label_values(&["status_record_to_view"])
            .observe(seconds);
    }

    /// Moves a partition's position to `next`; true when it moved. Whoever waits for the
    /// view hears of it from [`Projector::notify_progress`].
    fn advance(&self, topic: &str, partition: i32, next: i64) -> bool {
        let mut positions = self.positions.lock().unwrap_or_else(|e| e.into_inner());
        // A walk over a few entries: no key made per record.
        match positions
            .iter_mut()
            .find(|((t, p), _)| *p == partition && t == topic)
        {
            Some((_, position)) if next <= *position => return false,
            Some((_, position)) => *position = next,
            None => {
                positions.insert((topic.to_string(), partition), next);
            }
        }
        drop(positions);
        self.store.set_position(topic, partition, next);
        true
    }

    /// Wakes whoever waits for the view to reach an offset ([`Projector::catch_up`]).
    fn notify_progress(&self) {
        self.progress.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Whether the view has applied the record at `offset` of `topic`'s `partition`.
    pub fn has_applied(&self, topic: &str, partition: i32, offset: i64) -> bool {
        // A walk over a few entries, without making a key.
        self.positions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|((t, p), &next)| *p == partition && t == topic && next > offset)
    }

    fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        self.positions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(topic.to_string(), partition))
            .copied()
    }

    /// Records between the positions and `targets`.
    fn remaining(&self, targets: &HashMap<(String, i32), i64>) -> i64 {
        let positions = self.positions.lock().unwrap_or_else(|e| e.into_inner());
        targets
            .iter()
            .map(|(tp, &end)| (end - positions.get(tp).copied().unwrap_or(0)).max(0))
            .sum()
    }

    fn reached(&self, targets: &HashMap<(String, i32), i64>) -> bool {
        let positions = self.positions.lock().unwrap_or_else(|e| e.into_inner());
        targets
            .iter()
            .all(|(tp, &end)| end <= 0 || positions.get(tp).is_some_and(|&p| p >= end))
    }

    /// [`Projector::reached`] for the partitions of one topic.
    fn reached_in(&self, topic: &str, targets: &HashMap<(String, i32), i64>) -> bool {
        let positions = self.positions.lock().unwrap_or_else(|e| e.into_inner());
        targets
            .iter()
            .filter(|((t, _), _)| t == topic)
            .all(|(tp, &end)| end <= 0 || positions.get(tp).is_some_and(|&p| p >= end))
    }

    /// The end of every partition of both topics, 0 for an empty one.
    async fn end_offsets(&self) -> anyhow::Result<HashMap<(String, i32), i64>> {
        Ok(ends(&self.watermarks().await?.0))
    }

    /// (low, high) watermarks of every partition of both topics, and the cluster's id (empty
    /// when it gives none).
    async fn watermarks(&self) -> anyhow::Result<(HashMap<(String, i32), (i64, i64)>, String)> {
        let topics = [self.orders_topic.as_str(), self.status_topic.as_str()];
        let read = watermarks(&self.client, &topics, self.timeout)
            .await
            .context("reading the watermarks of the order topics")?;
        let mut marks_by_partition = HashMap::new();
        for (topic, partition, low, high) in read.partitions {
            marks_by_partition.insert((topic, partition), (low, high));
        }
        for topic in topics {
            anyhow::ensure!(
                marks_by_partition.keys().any(|(t, _)| t == topic),
                "topic {topic} does not exist yet"
            );
        }
        Ok((marks_by_partition, read.cluster_id.unwrap_or_default()))
    }
}

/// The end of every partition from its (low, high) watermarks, 0 for an empty one (nothing
/// to wait for).
fn ends(marks: &HashMap<(String, i32), (i64, i64)>) -> HashMap<(String, i32), i64> {
    marks
        .iter()
        .map(|(tp, &(low, high))| (tp.clone(), if high > low { high } else { 0 }))
        .collect()
}
