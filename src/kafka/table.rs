//! Compacted topics read as tables: every instance reads every partition of them from the
//! beginning, with one consumer for all of them (an idle consumer still costs the broker its
//! fetches), without a consumer group and without committing, and hands each record (topic,
//! key, and value or tombstone) to the caller in order. It says when it has reached the ends
//! the topics had when reading began ([`TableReader::is_caught_up`]), and lets a writer
//! wait until its own record has been read back ([`TableReader::wait_past`]), so a change
//! made through one request is visible to the next.

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

/// What the reader does with each record: the topic, the key, and the value (`None` for a
/// tombstone).
pub type Apply = dyn Fn(&str, &str, Option<&[u8]>) + Send + Sync;

/// A topic and partition.
type Partition = (String, i32);

/// Reads compacted topics into the caller's state.
pub struct TableReader {
    client: ClientSettings,
    topics: Vec<String>,
    timeout: Duration,
    /// Next offset to read, by topic and partition.
    positions: Mutex<HashMap<Partition, i64>>,
    progress: watch::Sender<u64>,
    caught_up: AtomicBool,
    /// Set when the topic was made again: positions may be past its new end.
    check_offsets: AtomicBool,
}

impl TableReader {
    /// A reader of `topics`; start it with [`TableReader::run`].
    pub fn new(client: ClientSettings, topics: Vec<String>, timeout: Duration) -> Arc<Self> {
        Arc::new(TableReader {
            client,
            topics,
            timeout,
            positions: Mutex::new(HashMap::new()),
            progress: watch::channel(0).0,
            caught_up: AtomicBool::new(false),
            check_offsets: AtomicBool::new(false),
        })
    }

    /// Tells the reader that its topics were made again (the broker lost them): it reads
    /// them again from the start. Its positions are from logs that are gone: past the new
    /// ends they would let [`TableReader::wait_past`] report records it never read, and
    /// within them they would skip new records.
    pub fn request_offset_check(&self) {
        self.check_offsets.store(true, Ordering::Release);
    }

    /// Whether the reader has reached the ends the topics had when it began.
    pub fn is_caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Acquire)
    }

    /// Waits until the record at `offset` of `partition` of `topic` has been applied; false
    /// on timeout.
    pub async fn wait_past(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        timeout: Duration,
    ) -> bool {
        let partition = (topic.to_string(), partition);
        let mut progress = self.progress.subscribe();
        tokio::time::timeout(timeout, async {
            loop {
                if self.position(&partition).is_some_and(|p| p > offset) {
                    return;
                }
                if progress.changed().await.is_err() {
                    return;
                }
            }
        })
        .await
        .is_ok()
            && self.position(&partition).is_some_and(|p| p > offset)
    }

    /// Reads until shutdown, starting again (from where it was) after an error.
    pub async fn run(self: Arc<Self>, apply: Arc<Apply>, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        loop {
            match self.read(&apply, &shutdown).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(topics = ?self.topics, %error, "table reader restarting");
                }
            }
            if !backoff.wait(&shutdown).await {
                return;
            }
        }
    }

    async fn read(&self, apply: &Arc<Apply>, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let mut ends: HashMap<Partition, i64> = HashMap::new();
        for topic in &self.topics {
            let marks = watermarks(&self.client, topic, self.timeout).await?;
            anyhow::ensure!(!marks.is_empty(), "topic {topic} does not exist yet");
            ends.extend(marks.iter().map(|&(partition, low, high)| {
                (
                    (topic.clone(), partition),
                    if high > low { high } else { 0 },
                )
            }));
        }
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
                .position(partition)
                .map_or(Offset::Beginning, Offset::Offset);
            assignment.add_partition_offset(&partition.0, partition.1, start)?;
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
        ends: &HashMap<Partition, i64>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        loop {
            if self.check_offsets.swap(false, Ordering::AcqRel) {
                self.positions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clear();
                anyhow::bail!(
                    "the topics were made again (records lost); reading them from the start"
                );
            }
            if !self.is_caught_up() && self.reached(ends) {
                tracing::debug!(topics = ?self.topics, "tables caught up");
                self.caught_up.store(true, Ordering::Release);
            }
            let message = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                received = tokio::time::timeout(Duration::from_millis(250), consumer.recv()) => received,
            };
            match message {
                Ok(Ok(message)) => {
                    if let Some(key) = message.key().and_then(|k| std::str::from_utf8(k).ok()) {
                        apply(message.topic(), key, message.payload());
                    }
                    self.advance(
                        (message.topic().to_string(), message.partition()),
                        message.offset() + 1,
                    );
                }
                Ok(Err(error)) => {
                    tracing::debug!(topics = ?self.topics, %error, "table read error")
                }
                Err(_idle) => {
                    if let Ok(positions) = consumer.position() {
                        for e in positions.elements() {
                            if let Offset::Offset(o) = e.offset() {
                                self.advance((e.topic().to_string(), e.partition()), o);
                            }
                        }
                    }
                }
            }
        }
    }

    fn advance(&self, partition: Partition, next: i64) {
        let mut positions = self.positions.lock().unwrap_or_else(|e| e.into_inner());
        let entry = positions.entry(partition).or_insert(0);
        if next > *entry {
            *entry = next;
            drop(positions);
            self.progress.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    fn position(&self, partition: &Partition) -> Option<i64> {
        self.positions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(partition)
            .copied()
    }

    fn reached(&self, ends: &HashMap<Partition, i64>) -> bool {
        let positions = self.positions.lock().unwrap_or_else(|e| e.into_inner());
        ends.iter()
            .all(|(p, &end)| end <= 0 || positions.get(p).is_some_and(|&at| at >= end))
    }
}
