//! A compacted topic read as a table: every instance reads every partition from the
//! beginning, without a consumer group and without committing, and hands each record (key,
//! and value or tombstone) to the caller in order. It says when it has reached the end the
//! topic had when reading began ([`TableReader::is_caught_up`]), and lets a writer wait
//! until its own record has been read back ([`TableReader::wait_past`]), so a change made
//! through one request is visible to the next.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::topics::watermarks;
use super::{ClientContext, ClientSettings};

use crate::backoff::Backoff;

/// What the reader does with each record: the key, and the value (`None` for a tombstone).
pub type Apply = dyn Fn(&str, Option<&[u8]>) + Send + Sync;

/// Reads one compacted topic into the caller's state.
pub struct TableReader {
    client: ClientSettings,
    topic: String,
    timeout: Duration,
    /// Next offset to read, by partition.
    positions: Mutex<HashMap<i32, i64>>,
    progress: watch::Sender<u64>,
    caught_up: AtomicBool,
    /// Set when the topic was made again: positions may be past its new end.
    check_offsets: AtomicBool,
}

impl TableReader {
    /// A reader of `topic`; start it with [`TableReader::run`].
    pub fn new(client: ClientSettings, topic: String, timeout: Duration) -> Arc<Self> {
        Arc::new(TableReader {
            client,
            topic,
            timeout,
            positions: Mutex::new(HashMap::new()),
            progress: watch::channel(0).0,
            caught_up: AtomicBool::new(false),
            check_offsets: AtomicBool::new(false),
        })
    }

    /// Asks the reader to compare its positions with the topic's end now (the topic was made
    /// again: the broker lost it). A position past the end would let [`TableReader::wait_past`]
    /// report records it never read; the reader then reads the topic again from the start.
    pub fn request_offset_check(&self) {
        self.check_offsets.store(true, Ordering::Release);
    }

    /// Whether the reader has reached the end the topic had when it began.
    pub fn is_caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Acquire)
    }

    /// Waits until the record at `offset` of `partition` has been applied; false on timeout.
    pub async fn wait_past(&self, partition: i32, offset: i64, timeout: Duration) -> bool {
        let mut progress = self.progress.subscribe();
        tokio::time::timeout(timeout, async {
            loop {
                if self.position(partition).is_some_and(|p| p > offset) {
                    return;
                }
                if progress.changed().await.is_err() {
                    return;
                }
            }
        })
        .await
        .is_ok()
            && self.position(partition).is_some_and(|p| p > offset)
    }

    /// Reads until shutdown, starting again (from where it was) after an error.
    pub async fn run(self: Arc<Self>, apply: Arc<Apply>, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        loop {
            match self.read(&apply, &shutdown).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(topic = self.topic, %error, "table reader restarting");
                }
            }
            if !backoff.wait(&shutdown).await {
                return;
            }
        }
    }

    async fn read(&self, apply: &Arc<Apply>, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let marks = watermarks(&self.client, &self.topic, self.timeout).await?;
        anyhow::ensure!(!marks.is_empty(), "topic {} does not exist yet", self.topic);
        let ends: HashMap<i32, i64> = marks
            .iter()
            .map(|&(partition, low, high)| (partition, if high > low { high } else { 0 }))
            .collect();
        let consumer: StreamConsumer<ClientContext> = self
            .client
            .client_config(&[
                (
                    "group.id",
                    format!("orderflow-table-{}", uuid::Uuid::new_v4()),
                ),
                ("enable.auto.commit", "false".into()),
                ("enable.auto.offset.store", "false".into()),
                ("fetch.wait.max.ms", "50".into()),
            ])
            .create_with_context(ClientContext::default())?;
        let mut assignment = TopicPartitionList::new();
        for partition in ends.keys() {
            let start = self
                .position(*partition)
                .map_or(Offset::Beginning, Offset::Offset);
            assignment.add_partition_offset(&self.topic, *partition, start)?;
        }
        consumer.assign(&assignment)?;
        let consumer = Arc::new(consumer);
        let result = self.consume(&consumer, apply, &ends, shutdown).await;
        // Closing a client blocks; never on the runtime's threads.
        tokio::task::spawn_blocking(move || drop(consumer))
            .await
            .ok();
        result
    }

    async fn consume(
        &self,
        consumer: &StreamConsumer<ClientContext>,
        apply: &Arc<Apply>,
        ends: &HashMap<i32, i64>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        loop {
            if self.check_offsets.swap(false, Ordering::AcqRel) {
                let marks = watermarks(&self.client, &self.topic, self.timeout).await?;
                let past = marks
                    .iter()
                    .any(|&(p, _, high)| self.position(p).is_some_and(|at| at > high));
                if past {
                    self.positions
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clear();
                    anyhow::bail!(
                        "positions past the end of the topic (records lost); reading it again from the start"
                    );
                }
            }
            if !self.is_caught_up() && self.reached(ends) {
                tracing::debug!(topic = self.topic, "table caught up");
                self.caught_up.store(true, Ordering::Release);
            }
            let message = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                received = tokio::time::timeout(Duration::from_millis(250), consumer.recv()) => received,
            };
            match message {
                Ok(Ok(message)) => {
                    if let Some(key) = message.key().and_then(|k| std::str::from_utf8(k).ok()) {
                        apply(key, message.payload());
                    }
                    self.advance(message.partition(), message.offset() + 1);
                }
                Ok(Err(error)) => tracing::debug!(topic = self.topic, %error, "table read error"),
                Err(_idle) => {
                    if let Ok(positions) = consumer.position() {
                        for e in positions.elements() {
                            if let Offset::Offset(o) = e.offset() {
                                self.advance(e.partition(), o);
                            }
                        }
                    }
                }
            }
        }
    }

    fn advance(&self, partition: i32, next: i64) {
        let mut positions = self.positions.lock().unwrap_or_else(|e| e.into_inner());
        let entry = positions.entry(partition).or_insert(0);
        if next > *entry {
            *entry = next;
            drop(positions);
            self.progress.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    fn position(&self, partition: i32) -> Option<i64> {
        self.positions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&partition)
            .copied()
    }

    fn reached(&self, ends: &HashMap<i32, i64>) -> bool {
        let positions = self.positions.lock().unwrap_or_else(|e| e.into_inner());
        ends.iter()
            .all(|(p, &end)| end <= 0 || positions.get(p).is_some_and(|&at| at >= end))
    }
}
