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

use rdkafka::Offset;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::reader::{self, ReaderOptions};
use super::topics::watermarks;
use super::{BaseProducer, ClientContext, ClientSettings, OutgoingRecord, ProduceError, RawRecord};

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
    /// `fetch.wait.max.ms`.
    fetch_wait: Duration,
    /// Next offset to read, by topic and partition.
    positions: Mutex<HashMap<Partition, i64>>,
    progress: watch::Sender<u64>,
    caught_up: AtomicBool,
    /// Set when the topic was made again: positions may be past its new end.
    check_offsets: AtomicBool,
}

impl TableReader {
    /// A reader of `topics` whose fetches wait up to `fetch_wait` for new records; start it
    /// with [`TableReader::run`].
    pub fn new(
        client: ClientSettings,
        topics: Vec<String>,
        timeout: Duration,
        fetch_wait: Duration,
    ) -> Arc<Self> {
        Arc::new(TableReader {
            client,
            topics,
            timeout,
            fetch_wait,
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
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        let marks = watermarks(&self.client, &topics, self.timeout).await?;
        for topic in &topics {
            anyhow::ensure!(
                marks.partitions.iter().any(|(t, ..)| t == topic),
                "topic {topic} does not exist yet"
            );
        }
        let ends: HashMap<Partition, i64> = marks
            .partitions
            .into_iter()
            .map(|(topic, partition, low, high)| {
                ((topic, partition), if high > low { high } else { 0 })
            })
            .collect();
        let consumer: StreamConsumer<ClientContext> = self.client.reader(
            "table",
            &ReaderOptions {
                fetch_wait_ms: Some(self.fetch_wait.as_millis() as u64),
                ..ReaderOptions::default()
            },
        )?;
        reader::assign(
            &consumer,
            ends.keys().map(|partition| {
                let start = self
                    .position(partition)
                    .map_or(Offset::Beginning, Offset::Offset);
                (partition.0.as_str(), partition.1, start)
            }),
        )?;
        let consumer = Arc::new(consumer);
        let result = self.consume(&consumer, apply, &ends, shutdown).await;
        reader::close(consumer).await;
        result
    }

    async fn consume(
        &self,
        consumer: &StreamConsumer<ClientContext>,
        apply: &Arc<Apply>,
        ends: &HashMap<Partition, i64>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut idle_wait = reader::IDLE_WAIT_FIRST;
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
                received = tokio::time::timeout(idle_wait, consumer.recv()) => received,
            };
            match message {
                Ok(Ok(message)) => {
                    idle_wait = reader::IDLE_WAIT_FIRST;
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
                    idle_wait = reader::longer_idle_wait(idle_wait, self.is_caught_up());
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

/// What a record of a [`Table`]'s topic becomes.
pub trait Row: Clone + Send + Sync + 'static {
    /// What the topic's records hold (JSON).
    type Record: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static;

    /// The row a record of `key` makes; `None` leaves the table as it is (the implementor
    /// says why in the log).
    fn from_record(key: &str, record: Self::Record) -> Option<Self>;

    /// Called with a row that a newer record or a tombstone took out of the table.
    fn retired(&self) {}
}

/// A compacted topic as a map from key to row, fed by a [`TableReader`]: every instance
/// holds every row, a write waits until this instance has read it back (so the next request
/// sees it), and a tombstone deletes.
pub struct Table<R: Row> {
    /// What a row is, for the log ("template", "operation", …).
    what: &'static str,
    rows: std::sync::RwLock<std::collections::BTreeMap<String, R>>,
    store: TableWriter<R::Record>,
}

impl<R: Row> Table<R> {
    /// The table of `topic`, read by `reader` (which must be given its records through
    /// [`Table::apply`]) and written by `writer`; a write waits up to `timeout` to be read
    /// back.
    pub fn new(
        what: &'static str,
        topic: String,
        reader: Arc<TableReader>,
        writer: BaseProducer<R::Record>,
        timeout: Duration,
    ) -> Self {
        Table {
            what,
            rows: std::sync::RwLock::new(std::collections::BTreeMap::new()),
            store: TableWriter::new(topic, reader, writer, timeout),
        }
    }

    /// Whether every row stored before this instance started is known.
    pub fn is_caught_up(&self) -> bool {
        self.store.is_caught_up()
    }

    /// Applies one record of the topic: a row, or (`None`) a tombstone. Returns the row the
    /// record made.
    pub fn apply(&self, key: &str, value: Option<&[u8]>) -> Option<R> {
        let row = match value.map(serde_json::from_slice::<R::Record>) {
            None => None,
            Some(Ok(record)) => Some(R::from_record(key, record)?),
            Some(Err(error)) => {
                tracing::warn!(what = self.what, key, %error, "undecodable record ignored");
                return None;
            }
        };
        let mut rows = self.rows.write().unwrap_or_else(|e| e.into_inner());
        let old = match &row {
            Some(row) => rows.insert(key.to_string(), row.clone()),
            None => rows.remove(key),
        };
        drop(rows);
        if let Some(old) = old {
            old.retired();
        }
        row
    }

    /// The row of `key`.
    pub fn get(&self, key: &str) -> Option<R> {
        self.read().get(key).cloned()
    }

    /// Every row, by key.
    pub fn rows(&self) -> Vec<R> {
        self.read().values().cloned().collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, std::collections::BTreeMap<String, R>> {
        self.rows.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the row of `key` and waits until this instance has read it back.
    pub async fn put(&self, key: &str, record: &R::Record) -> Result<(), ProduceError> {
        let read = self.store.write(key, Some(record)).await?;
        self.read_back(read);
        Ok(())
    }

    /// Deletes the row of `key` (a tombstone) and waits until this instance has read it back.
    pub async fn delete(&self, key: &str) -> Result<(), ProduceError> {
        let read = self.store.write(key, None).await?;
        self.read_back(read);
        Ok(())
    }

    fn read_back(&self, read: bool) {
        if !read {
            tracing::warn!(
                what = self.what,
                topic = self.store.topic(),
                "a change was written but not read back in time"
            );
        }
    }
}

/// Writes records of a compacted topic that a [`TableReader`] reads, and waits until this
/// instance has read each one back (so the next request it answers sees the change).
pub struct TableWriter<T> {
    topic: String,
    reader: Arc<TableReader>,
    writer: BaseProducer<T>,
    timeout: Duration,
}

impl<T: serde::Serialize> TableWriter<T> {
    /// Writes `topic`, read by `reader`; a write waits up to `timeout` to be read back.
    pub fn new(
        topic: String,
        reader: Arc<TableReader>,
        writer: BaseProducer<T>,
        timeout: Duration,
    ) -> Self {
        TableWriter {
            topic,
            reader,
            writer,
            timeout,
        }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Whether every record stored before this instance started has been read.
    pub fn is_caught_up(&self) -> bool {
        self.reader.is_caught_up()
    }

    /// Writes `value` as the record of `key` (a tombstone when `None`): whether this
    /// instance read it back within the timeout.
    pub async fn write(&self, key: &str, value: Option<&T>) -> Result<bool, ProduceError> {
        let delivery = match value {
            Some(value) => {
                self.writer
                    .send(OutgoingRecord {
                        topic: &self.topic,
                        key,
                        value,
                        headers: vec![],
                        schema_id: None,
                    })
                    .await?
            }
            None => {
                self.writer
                    .send_raw(RawRecord {
                        topic: &self.topic,
                        key: Some(key.as_bytes()),
                        payload: None,
                        headers: &[],
                        partition: None,
                        timestamp: None,
                    })
                    .await?
            }
        };
        Ok(self
            .reader
            .wait_past(
                &self.topic,
                delivery.partition,
                delivery.offset,
                self.timeout,
            )
            .await)
    }
}
