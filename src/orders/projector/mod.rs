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

mod apply;
mod read;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::store::{OrderStore, RebuildReason};
use crate::backoff::Backoff;
use crate::config::Settings;
use crate::kafka::ClientSettings;
use crate::kafka::topics::watermarks;
use crate::metrics::Metrics;

/// Longest wait for the view to catch up after a rebalance.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(30);

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

    /// Waits until the view has read everything the topics hold now: what earlier owners of
    /// a processor's partitions wrote, and every cancel asked so far (so an order whose
    /// cancel was asked while it waited ends `CANCELLED`, even in a backlog, where the
    /// processor reaches the order before its cancel record).
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
