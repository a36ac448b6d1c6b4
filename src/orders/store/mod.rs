//! The view of every order's current status: rows in an embedded store on local disk
//! ([`db`]), a bounded cache of recent orders in front of it, and the changes not yet
//! written. Fed by the status projector (and written through by intake and the processor on
//! this instance so they read their own writes). A writer task commits the changes in
//! batches together with the Kafka offsets they include, so a restart resumes from there.
//! Waiters are woken when an order changes (long-poll, live streams), and every change goes
//! to the live feed ([`notify`]).

mod cache;
mod db;
mod notify;
mod presence;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use cache::{Cache, Cached, Slot};
use db::{Db, Reads, Row};
pub use db::{RebuildReason, Summary};
use notify::{Feed, Watchers};
pub use notify::{FeedEntry, FeedFilter, FeedSubscription, OrderWatch};
use presence::Presence;

use super::model::Order;
use super::status::{OrderSnapshot, OrderStatus};
use crate::config::StatusViewSettings;

/// Changes waiting for the writer that make it write at once instead of at its interval.
const FLUSH_AT: usize = 2_000;
/// Changes waiting for the writer at which the projector waits for it (bounds the memory
/// of a rebuild, which reads faster than the store writes).
const MAX_PENDING: usize = 4_000;
/// SQLite's page cache of each reader connection, in KiB (point reads and pages of a list
/// touch few pages; the operating system's file cache serves the rest).
const READER_CACHE_KIB: u64 = 2 * 1024;
/// Cache entries one change may look at to evict.
const EVICT_BUDGET: usize = 64;
/// How often the WAL is checkpointed at most while the writer commits.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// Reader connections kept open between reads.
const READERS: usize = 2;

/// A change the writer took: the order, the slot's version, its snapshot and JSON.
type Taken = (Uuid, u64, Arc<OrderSnapshot>, Option<Arc<Vec<u8>>>);

/// Where a page ends: the (accepted_at, order_id) of its last order.
pub type Cursor = (DateTime<Utc>, Uuid);

/// A page request for [`OrderStore::list`].
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
    /// Only this customer's orders.
    pub customer_id: Option<String>,
    /// Only orders accepted at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only orders accepted before this time.
    pub to: Option<DateTime<Utc>>,
    /// Page size.
    pub limit: usize,
    /// Continue after this position (from the previous page's `next_cursor`).
    pub cursor: Option<Cursor>,
}

/// Where a change comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Read from the topics by the projector: committed with the offsets it includes.
    Topic,
    /// Written through by this instance before its record comes back (read-your-writes):
    /// held in the cache only, and committed when the projector reads the record. So the
    /// store is written at the projector's pace, which waits for the writer, and memory
    /// stays bounded whatever intake and processing do.
    Local,
}

/// A reader connection, and the commit count when its open read transaction began.
struct Reader {
    conn: Connection,
    since: Option<u64>,
}

impl Reader {
    /// Makes sure a read transaction that saw `commits` commits is open.
    fn begin(&mut self, commits: u64) -> rusqlite::Result<()> {
        if self.since == Some(commits) {
            return Ok(());
        }
        self.end();
        self.conn.execute_batch("BEGIN")?;
        self.since = Some(commits);
        Ok(())
    }

    fn end(&mut self) {
        if self.since.take().is_some() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("COMMIT");
        }
    }
}

/// The order view. Shared as `Arc<OrderStore>`.
pub struct OrderStore {
    cache: Mutex<Cache>,
    cache_capacity: usize,
    db: Mutex<Db>,
    path: std::path::PathBuf,
    readers: Mutex<Vec<Reader>>,
    /// Commits so far (rows, a reset, a retention sweep): a reader's open read transaction
    /// serves reads only while no commit came after it began.
    commits: AtomicU64,
    /// Orders held (store and not yet committed).
    count: AtomicUsize,
    flush_soon: Notify,
    /// Signalled when the writer takes a batch and after each commit (or failed attempt).
    flushed: Notify,
    /// Changes waiting for the writer (`Cache::dirty`), read without the lock.
    pending: AtomicUsize,
    /// Why the store started empty, if it did.
    opened_empty: Option<RebuildReason>,
    watchers: Watchers,
    /// Every status change in the order it reached this view, for live feeds.
    feed: Feed,
    /// False while writes to disk fail.
    writable: AtomicBool,
    /// Whether the list indexes are built (not during a rebuild: see `db::LIST_INDEXES`).
    list_indexes: AtomicBool,
    /// Set when the projector has caught up: the writer then builds the list indexes.
    list_indexes_due: AtomicBool,
    /// The connection that checkpoints the WAL beside the writer (see
    /// [`OrderStore::checkpoint_soon`]); `true` in the flag while a checkpoint runs.
    checkpointer: Mutex<Option<Connection>>,
    checkpointing: AtomicBool,
    last_checkpoint: Mutex<std::time::Instant>,
}

/// How often a failing status view writer says so.
const WRITE_FAILURE_WARNING_EVERY: Duration = Duration::from_secs(30);

impl OrderStore {
    /// Opens (or creates) the view's store at `settings.path`.
    pub fn open(settings: &StatusViewSettings) -> anyhow::Result<Arc<OrderStore>> {
        let sqlite_cache_kib = settings.store_cache_mb * 1024;
        let (db, opened_empty) = Db::open(Path::new(&settings.path), sqlite_cache_kib)?;
        let count = db.count()?;
        let mut presence = Presence::new(count * 2);
        db.each_id(|id| presence.insert(&id))?;
        let mut advanced = Presence::new(count * 2);
        db.each_advanced_id(|id| advanced.insert(&id))?;
        let list_indexes = db.has_list_indexes()?;
        Ok(Arc::new(OrderStore {
            cache: Mutex::new(Cache::new(presence, advanced)),
            cache_capacity: settings.cache_orders.max(1),
            db: Mutex::new(db),
            path: settings.path.clone().into(),
            readers: Mutex::new(Vec::new()),
            commits: AtomicU64::new(0),
            count: AtomicUsize::new(count),
            flush_soon: Notify::new(),
            flushed: Notify::new(),
            pending: AtomicUsize::new(0),
            opened_empty,
            watchers: Watchers::default(),
            feed: Feed::new(),
            writable: AtomicBool::new(true),
            list_indexes: AtomicBool::new(list_indexes),
            list_indexes_due: AtomicBool::new(false),
            checkpointer: Mutex::new(None),
            checkpointing: AtomicBool::new(false),
            last_checkpoint: Mutex::new(std::time::Instant::now()),
        }))
    }

    /// Why the store was empty when opened (`None`: it held a view to resume from).
    pub fn opened_empty(&self) -> Option<RebuildReason> {
        self.opened_empty
    }

    /// The next offset of every topic partition the committed rows include.
    pub fn positions(&self) -> anyhow::Result<HashMap<(String, i32), i64>> {
        Ok(self.lock_db().positions()?)
    }

    /// The source (cluster and topics) the store was written from.
    pub fn source(&self) -> anyhow::Result<Option<String>> {
        Ok(self.lock_db().source()?)
    }

    /// Empties the view for a rebuild from `source`.
    pub fn reset(&self, source: &str) -> anyhow::Result<()> {
        let mut db = self.lock_db();
        db.reset(source)?;
        self.list_indexes.store(false, Ordering::Release);
        self.committed();
        *self.lock_cache() = Cache::new(Presence::new(0), Presence::new(0));
        self.count.store(0, Ordering::Release);
        Ok(())
    }

    /// Notes that the view has applied everything before `next` in this partition; committed
    /// with the next batch of rows.
    pub fn set_position(&self, topic: &str, partition: i32, next: i64) {
        let mut cache = self.lock_cache();
        // A walk over a few entries: no key made per record.
        match cache
            .positions
            .iter_mut()
            .find(|((t, p), _)| *p == partition && t == topic)
        {
            Some((_, position)) => *position = next,
            None => {
                cache.positions.insert((topic.to_string(), partition), next);
            }
        }
        cache.positions_changed = true;
    }

    /// Subscribes to the later changes `filter` wants, with the recent ones after `after`
    /// (oldest first) that are still held.
    pub fn follow(self: &Arc<Self>, after: u64, filter: &FeedFilter) -> FeedSubscription {
        Feed::follow(self, after, filter)
    }

    /// The position of the last change on this instance's feed (a feed from now on starts
    /// after it).
    pub fn feed_position(&self) -> u64 {
        self.feed.position()
    }

    /// Subscribes to the changes of order `id` (known or not yet).
    pub fn watch(self: &Arc<Self>, id: Uuid) -> OrderWatch {
        OrderWatch::new(self.clone(), id)
    }

    /// The current snapshot of an order.
    pub fn get(&self, id: &Uuid) -> Option<OrderSnapshot> {
        match self.lock_cache().cached(id) {
            Cached::Here(slot) => return Some(OrderSnapshot::clone(&slot.snapshot)),
            Cached::NotHeld => return None,
            Cached::MaybeStored => {}
        }
        let stored = self.read(|conn| Reads::get(conn, id))?;
        let mut cache = self.lock_cache();
        if let Some(slot) = cache.slots.get(id) {
            return Some(OrderSnapshot::clone(&slot.snapshot));
        }
        cache.next_version += 1;
        let version = cache.next_version;
        cache.slots.insert(
            *id,
            Slot {
                snapshot: Arc::new(stored.clone()),
                encoded: None,
                dirty: false,
                stored: true,
                version,
            },
        );
        cache.fifo.push_back(*id);
        cache.evict(self.cache_capacity, EVICT_BUDGET);
        Some(stored)
    }

    /// Where an order stands (status, changes, cancel requested), without decoding its
    /// snapshot when it has to be read from the store.
    pub fn summary(&self, id: &Uuid) -> Option<Summary> {
        self.look(id, false).map(|(summary, _)| summary)
    }

    /// [`OrderStore::summary`] of an order whose record the view has already applied (so it
    /// holds the order, or removed it as final): an order held exactly as it was placed,
    /// as most are when they are processed, is answered without reading the store.
    pub fn summary_of_applied(&self, id: &Uuid) -> Option<Summary> {
        self.look(id, true).map(|(summary, _)| summary)
    }

    /// Where an order stands and whether it still has to be committed (a local change
    /// whose record the projector has now read; see [`OrderStore::commit_local`]).
    pub fn known(&self, id: &Uuid) -> Option<(Summary, bool)> {
        self.look(id, false)
    }

    /// [`OrderStore::known`] for the projector's status records: a local change the cache
    /// had to drop before its record came back is answered from what it left (as not yet
    /// committed, so the record is applied over it) instead of reading the store.
    pub fn known_for_status(&self, id: &Uuid) -> Option<(Summary, bool)> {
        if let Some(summary) = self.lock_cache().dropped.get(id) {
            return Some((*summary, true));
        }
        self.look(id, false)
    }

    /// Whether the view holds the order at all, and if so whether as a local change not yet
    /// committed (what the projector needs of an `order_placed` record): past the cache, only
    /// the id's index is read, never the row. A local change the cache dropped before its
    /// record came back is held with nothing to commit: its status record, still to come, is
    /// applied over what it left (the processor can run ahead of the view's read of `orders`).
    pub fn held(&self, id: &Uuid) -> Option<bool> {
        {
            let cache = self.lock_cache();
            if cache.dropped.contains_key(id) {
                return Some(false);
            }
            match cache.cached(id) {
                Cached::Here(slot) => return Some(!slot.dirty && !slot.stored),
                Cached::NotHeld => return None,
                Cached::MaybeStored => {}
            }
        }
        self.read(|conn| Reads::holds(conn, id)).map(|()| false)
    }

    /// The cache's answer, else the store's. An order the filter of orders that moved on
    /// has never seen is, if held, exactly as placed: when `applied` it is held (no read),
    /// otherwise only whether it is held is read (from the id's index alone).
    fn look(&self, id: &Uuid, applied: bool) -> Option<(Summary, bool)> {
        let placed_if_held = {
            let cache = self.lock_cache();
            match cache.cached(id) {
                Cached::Here(slot) => {
                    let uncommitted = !slot.dirty && !slot.stored;
                    return Some((Summary::of(&slot.snapshot), uncommitted));
                }
                Cached::NotHeld => return None,
                Cached::MaybeStored => !cache.advanced.may_hold(id),
            }
        };
        let summary = match (placed_if_held, applied) {
            (true, true) => Summary::PLACED,
            (true, false) => self
                .read(|conn| Reads::holds(conn, id))
                .map(|()| Summary::PLACED)?,
            (false, _) => self.read(|conn| Reads::summary(conn, id))?,
        };
        Some((summary, false))
    }

    /// Marks every cached local change for the next commit.
    fn commit_all_local(&self) {
        let mut cache = self.lock_cache();
        let Cache { slots, dirty, .. } = &mut *cache;
        for (id, slot) in slots.iter_mut() {
            if !slot.dirty && !slot.stored {
                slot.dirty = true;
                dirty.push(*id);
            }
        }
    }

    /// Commits a local change as it is (its record has come back from the topics). False
    /// when the order is no longer cached: the cache dropped it since the caller looked, so
    /// the caller must apply the record itself, or the view's offsets would move past an
    /// order it never wrote.
    pub fn commit_local(&self, id: &Uuid) -> bool {
        let mut cache = self.lock_cache();
        let found = cache.commit_local(id);
        let pending = cache.dirty.len();
        drop(cache);
        self.pending.store(pending, Ordering::Release);
        found
    }

    /// Number of orders held.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Whether no order is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records an order this instance accepted as `PENDING` (a local change) unless
    /// something newer is known; `encoded`, when given, is the `PENDING` snapshot's JSON
    /// ([`OrderSnapshot::pending_json`]), which the writer stores as it is.
    pub fn insert_pending(&self, order: Order, encoded: Option<Vec<u8>>) {
        if self.known(&order.order_id).is_none() {
            self.insert_new(OrderSnapshot::pending(order), encoded, Origin::Local);
        }
    }

    /// Records an order the caller has just found unknown (with [`OrderStore::known`]) as
    /// `PENDING`; the store is not read again.
    pub fn insert_unknown(&self, order: Order, origin: Origin) {
        let snapshot = OrderSnapshot::pending(order);
        // A row to write (read from the topics) is encoded here, by the projector, and not
        // by the single writer, which sets the pace of a start-up or a rebuild.
        let encoded = (origin == Origin::Topic)
            .then(|| serde_json::to_vec(&snapshot).ok())
            .flatten();
        self.insert_new(snapshot, encoded, origin);
    }

    /// [`OrderStore::insert_unknown`] of an order read from the topics, with its `PENDING`
    /// snapshot's JSON already made ([`OrderSnapshot::pending_json`]).
    pub fn insert_read(&self, order: Order, encoded: Vec<u8>) {
        self.insert_new(OrderSnapshot::pending(order), Some(encoded), Origin::Topic);
    }

    fn insert_new(&self, snapshot: OrderSnapshot, encoded: Option<Vec<u8>>, origin: Origin) {
        let id = snapshot.order.order_id;
        let encoded = encoded.map(Arc::new);
        let mut cache = self.lock_cache();
        if cache.slots.contains_key(&id) {
            // Written through by this instance since the caller looked: its record is the
            // one the projector read now, so the change is committed with its offsets.
            if origin == Origin::Topic && cache.commit_local(&id) {
                let pending = cache.dirty.len();
                drop(cache);
                self.pending.store(pending, Ordering::Release);
            }
            return;
        }
        self.feed.publish(&snapshot, 0);
        cache.put(snapshot, encoded, origin);
        self.changed(cache, &id, true);
    }

    /// Applies a snapshot unless the view already holds a later one.
    pub fn apply(&self, snapshot: OrderSnapshot, origin: Origin) {
        self.apply_encoded(snapshot, None, origin)
    }

    /// [`OrderStore::apply`] with the snapshot's JSON (exactly `snapshot` encoded), which
    /// the writer then stores as it is.
    pub fn apply_encoded(&self, snapshot: OrderSnapshot, encoded: Option<Vec<u8>>, origin: Origin) {
        self.apply_over(snapshot, encoded, origin, None)
    }

    /// [`OrderStore::apply_encoded`] when the caller has just read what the view holds of
    /// the order ([`OrderStore::summary`]): `seen` stands for the store's row if the order
    /// is no longer cached (the cache is never older than the store, and the store refuses
    /// a row with fewer changes than it holds). An order the caller found unknown is looked
    /// for again (it may have arrived since; mostly the presence filter answers).
    pub fn apply_over(
        &self,
        snapshot: OrderSnapshot,
        mut encoded: Option<Vec<u8>>,
        origin: Origin,
        seen: Option<Summary>,
    ) {
        let id = snapshot.order.order_id;
        let stored = seen.or_else(|| self.summary(&id));
        let mut cache = self.lock_cache();
        let current = cache
            .slots
            .get(&id)
            .map(|s| Summary::of(&s.snapshot))
            .or(stored);
        let (snapshot, new) = match current {
            // Never back in history: a snapshot replaces one with as many changes or fewer.
            Some(current) if snapshot.history.len() < current.changes => return,
            Some(current) => {
                let keep_cancel = current.cancel_requested && !snapshot.status.is_final();
                self.feed.publish(&snapshot, current.changes);
                let mut snapshot = snapshot;
                if keep_cancel && !snapshot.cancel_requested {
                    // No longer what the bytes say.
                    snapshot.cancel_requested = true;
                    encoded = None;
                }
                (snapshot, false)
            }
            None => {
                self.feed.publish(&snapshot, 0);
                (snapshot, true)
            }
        };
        cache.put(snapshot, encoded.map(Arc::new), origin);
        self.changed(cache, &id, new);
    }

    /// Notes that a cancel was requested. Returns false when the order is unknown.
    pub fn mark_cancel_requested(&self, id: &Uuid, origin: Origin) -> bool {
        let stored = self.stored_unless_cached(id, Reads::get);
        let mut cache = self.lock_cache();
        let Some(mut current) = cache
            .slots
            .get(id)
            .map(|s| OrderSnapshot::clone(&s.snapshot))
            .or(stored)
        else {
            return false;
        };
        if !current.status.is_final() && !current.cancel_requested {
            current.cancel_requested = true;
            cache.put(current, None, origin);
        } else if origin == Origin::Topic {
            // The cancel may have been this instance's local change: its record is here
            // (committed under the same lock, so the cache cannot drop it in between).
            cache.commit_local(id);
        }
        self.changed(cache, id, false);
        true
    }

    /// A page of orders, newest first, and the cursor of the next page if there is one.
    /// Blocking (it commits what is pending, then queries): call it off the async runtime.
    pub fn list(&self, query: &ListQuery) -> anyhow::Result<(Vec<OrderSnapshot>, Option<Cursor>)> {
        // The list reads the store: local changes go in first, so this instance's own
        // orders are on it (their records, when they come back, find them stored).
        self.commit_all_local();
        self.flush()?;
        let mut page = self
            .read(|conn| Reads::list(conn, query).map(Some))
            .unwrap_or_default();
        let next = (page.len() > query.limit).then(|| {
            page.truncate(query.limit);
            page.last().map(|s| (s.order.accepted_at, s.order.order_id))
        });
        // A change after the commit above is newer than the stored row.
        let cache = self.lock_cache();
        for snapshot in &mut page {
            if let Some(slot) = cache.slots.get(&snapshot.order.order_id) {
                snapshot.clone_from(&*slot.snapshot);
            }
        }
        Ok((page, next.flatten()))
    }

    /// Waits until the order has `status` (or any final status after it) or `timeout`
    /// passes, and returns the snapshot then.
    pub async fn wait_for(
        self: &Arc<Self>,
        id: &Uuid,
        status: OrderStatus,
        timeout: Duration,
    ) -> Option<OrderSnapshot> {
        let mut watch = self.watch(*id);
        let reached = |s: &OrderSnapshot| s.status == status || s.status.is_final();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let snapshot = watch.get();
            if snapshot.as_ref().is_none_or(reached) {
                return snapshot;
            }
            if tokio::time::timeout_at(deadline, watch.changed())
                .await
                .is_err()
            {
                return snapshot;
            }
        }
    }

    /// Waits while too many changes wait for the writer (the projector calls this).
    pub async fn wait_for_room(&self) {
        loop {
            let flushed = self.flushed.notified();
            tokio::pin!(flushed);
            flushed.as_mut().enable();
            if self.pending.load(Ordering::Acquire) < MAX_PENDING {
                return;
            }
            self.flush_soon.notify_one();
            flushed.await;
        }
    }

    /// Tells the writer that the projector has read up to the end the topics had: a view
    /// rebuilt from the topics gets its list indexes now.
    pub fn build_list_indexes(&self) {
        if !self.list_indexes.load(Ordering::Acquire) {
            self.list_indexes_due.store(true, Ordering::Release);
            self.flush_soon.notify_one();
        }
    }

    /// Whether the list indexes are built (readiness waits for them after a rebuild).
    pub fn has_list_indexes(&self) -> bool {
        self.list_indexes.load(Ordering::Acquire)
    }

    /// Commits the pending changes and offsets in one transaction (and builds the list
    /// indexes when they are due). Blocking.
    pub fn flush(&self) -> anyhow::Result<usize> {
        let result = self.write_pending();
        self.pending
            .store(self.lock_cache().dirty.len(), Ordering::Release);
        self.flushed.notify_waiters();
        let result = result?;
        if self.list_indexes_due.load(Ordering::Acquire)
            && !self.list_indexes.load(Ordering::Acquire)
        {
            let started = std::time::Instant::now();
            let built = self.lock_db().create_list_indexes();
            self.committed();
            built.context("building the status view's list indexes")?;
            self.list_indexes.store(true, Ordering::Release);
            self.list_indexes_due.store(false, Ordering::Release);
            // The end of a rebuild: what it allocated on the way (librdkafka's read-ahead,
            // SQLite's sorter) goes back now rather than at the next periodic release.
            crate::memory::release_freed();
            tracing::info!(
                orders = self.len(),
                seconds = started.elapsed().as_secs_f64(),
                "status view list indexes built"
            );
        }
        Ok(result)
    }

    fn write_pending(&self) -> anyhow::Result<usize> {
        let mut db = self.lock_db();
        let (batch, positions) = {
            let mut cache = self.lock_cache();
            let ids = std::mem::take(&mut cache.dirty);
            // The projector goes on while this batch is written (memory: at most two
            // batches' worth of changes wait).
            self.pending.store(0, Ordering::Release);
            self.flushed.notify_waiters();
            let batch: Vec<Taken> = ids
                .iter()
                .filter_map(|id| {
                    let slot = cache.slots.get(id)?;
                    Some((
                        *id,
                        slot.version,
                        slot.snapshot.clone(),
                        slot.encoded.clone(),
                    ))
                })
                .collect();
            let positions: Vec<((String, i32), i64)> = if cache.positions_changed {
                cache.positions_changed = false;
                cache
                    .positions
                    .iter()
                    .map(|(k, v)| (k.clone(), *v))
                    .collect()
            } else {
                Vec::new()
            };
            (batch, positions)
        };
        if batch.is_empty() && positions.is_empty() {
            return Ok(0);
        }
        let rows: Vec<Row> = batch
            .iter()
            .map(|(_, _, snapshot, encoded)| {
                Row::of(snapshot, encoded.as_deref().map(Vec::as_slice))
            })
            .collect();
        let written = db.write(&rows, &positions);
        self.committed();
        let mut cache = self.lock_cache();
        if let Err(error) = written {
            // Kept for the next attempt.
            for (id, ..) in &batch {
                if cache.slots.get(id).is_some_and(|s| s.dirty) {
                    cache.dirty.push(*id);
                }
            }
            cache.positions_changed |= !positions.is_empty();
            return Err(error.into());
        }
        for (id, version, ..) in &batch {
            if let Some(slot) = cache.slots.get_mut(id) {
                if slot.version == *version {
                    slot.dirty = false;
                    slot.stored = true;
                } else {
                    // Changed while being written: it is still in `dirty` only if it was
                    // marked again, which `put` does only for a clean slot.
                    cache.dirty.push(*id);
                }
            }
        }
        cache.evict(self.cache_capacity, usize::MAX);
        Ok(batch.len())
    }

    /// Commits changes every `interval` (sooner when many are waiting) until shutdown, then
    /// once more.
    ///
    /// While writes fail (a full or broken disk), it retries every second at most, says so
    /// once per [`WRITE_FAILURE_WARNING_EVERY`], and [`OrderStore::is_writable`] is false
    /// (readiness says not ready); nothing is lost, as the changes stay in the cache and the
    /// view's offsets do not move past them.
    pub async fn run_writer(self: Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        let mut last_warning: Option<std::time::Instant> = None;
        loop {
            let failing = !self.is_writable();
            let wait = if failing {
                interval.max(Duration::from_secs(1))
            } else {
                interval
            };
            let stop = tokio::select! {
                () = shutdown.cancelled() => true,
                () = tokio::time::sleep(wait) => false,
                () = self.flush_soon.notified(), if !failing => false,
            };
            // An idle view has nothing to write: no trip to the blocking pool for it.
            if !stop && !failing && !self.has_writes() {
                continue;
            }
            let store = self.clone();
            let outcome = match tokio::task::spawn_blocking(move || store.flush()).await {
                Ok(Ok(written)) => {
                    if written > 0 {
                        self.checkpoint_soon();
                    }
                    Ok(())
                }
                Ok(Err(error)) => Err(format!("{error:#}")),
                Err(error) => Err(format!("the writer panicked: {error}")),
            };
            match outcome {
                Ok(()) if failing => {
                    tracing::info!("status view writes again");
                    self.writable.store(true, Ordering::Release);
                    last_warning = None;
                }
                Ok(()) => {}
                Err(error) => {
                    self.writable.store(false, Ordering::Release);
                    if last_warning.is_none_or(|at| at.elapsed() >= WRITE_FAILURE_WARNING_EVERY) {
                        tracing::warn!(
                            %error,
                            pending = self.pending.load(Ordering::Acquire),
                            "status view cannot write to its disk; retrying every second (not ready until it can)"
                        );
                        last_warning = Some(std::time::Instant::now());
                    }
                }
            }
            if stop {
                return;
            }
        }
    }

    /// Checkpoints the WAL on a connection of its own, beside the writer, at most every
    /// [`CHECKPOINT_EVERY`] and one at a time. A passive checkpoint copies what readers no
    /// longer need into the database without holding up the writer, which then starts the
    /// WAL over at its next commit once all of it is copied. The writer's own automatic
    /// checkpoint, which stopped every commit that crossed its threshold (half of a fresh
    /// instance's commit time while it read a backlog), stays as the backstop at a higher
    /// threshold (`db::connect_writer`).
    fn checkpoint_soon(self: &Arc<Self>) {
        {
            let mut last = self
                .last_checkpoint
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.elapsed() < CHECKPOINT_EVERY || self.checkpointing.swap(true, Ordering::AcqRel)
            {
                return;
            }
            *last = std::time::Instant::now();
        }
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = store.checkpointer.lock().unwrap_or_else(|e| e.into_inner());
            if conn.is_none() {
                *conn = db::connect(&store.path, READER_CACHE_KIB)
                    .inspect_err(|error| tracing::debug!(%error, "status view checkpointer"))
                    .ok();
            }
            if let Some(conn) = conn.as_ref()
                && let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            {
                // The writer's own checkpoint is the backstop.
                tracing::debug!(%error, "status view checkpoint");
            }
            store.checkpointing.store(false, Ordering::Release);
        });
    }

    /// Whether [`OrderStore::flush`] has anything to do: changes or offsets to write, or
    /// the list indexes to build.
    fn has_writes(&self) -> bool {
        let cache = self.lock_cache();
        !cache.dirty.is_empty()
            || cache.positions_changed
            || (self.list_indexes_due.load(Ordering::Acquire)
                && !self.list_indexes.load(Ordering::Acquire))
    }

    /// Whether the last write of the view to its disk succeeded.
    pub fn is_writable(&self) -> bool {
        self.writable.load(Ordering::Acquire)
    }

    /// Removes final orders whose last change is older than `age`. Blocking.
    pub fn remove_final_older_than(&self, age: Duration) -> anyhow::Result<usize> {
        let before = Utc::now() - chrono::Duration::from_std(age)?;
        let removed = self.lock_db().remove_final_before(before)?;
        self.committed();
        self.count
            .fetch_sub(removed.min(self.len()), Ordering::AcqRel);
        Ok(removed)
    }

    /// What `read` finds in the store when the order is not in the cache (read before taking
    /// the cache lock; the cache, when it has the order, is never older than the store).
    fn stored_unless_cached<T>(
        &self,
        id: &Uuid,
        read: impl FnOnce(&Connection, &Uuid) -> anyhow::Result<Option<T>>,
    ) -> Option<T> {
        if !matches!(self.lock_cache().cached(id), Cached::MaybeStored) {
            return None;
        }
        self.read(|conn| read(conn, id))
    }

    /// After a change under the cache lock: keeps the cache to its size, counts a new order,
    /// wakes the order's waiters, and asks the writer to hurry when much is pending.
    fn changed(&self, mut cache: MutexGuard<'_, Cache>, id: &Uuid, new: bool) {
        cache.evict(self.cache_capacity, EVICT_BUDGET);
        let pending = cache.dirty.len();
        drop(cache);
        self.pending.store(pending, Ordering::Release);
        if new {
            self.count.fetch_add(1, Ordering::AcqRel);
        }
        self.watchers.notify(id);
        if pending >= FLUSH_AT {
            self.flush_soon.notify_one();
        }
    }

    /// After a write (or an attempt): later reads need a read transaction that sees it, and
    /// idle readers let go of theirs, so that the WAL can be checkpointed in full.
    fn committed(&self) {
        self.commits.fetch_add(1, Ordering::AcqRel);
        for reader in self
            .readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter_mut()
        {
            reader.end();
        }
    }

    /// Runs a read on a pooled reader connection; a failed read is logged and reads as
    /// nothing. Reads between two commits share one read transaction per reader (taking
    /// SQLite's read locks was a third of a point read's cost): it sees every commit made
    /// before it began, and none has been made since.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> anyhow::Result<Option<T>>) -> Option<T> {
        // Before the transaction begins, so that it sees at least this many commits.
        let commits = self.commits.load(Ordering::Acquire);
        let pooled = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut reader = match pooled {
            Some(reader) => reader,
            // Not through the writer's lock: a read never waits for a commit (WAL).
            None => match db::connect(&self.path, READER_CACHE_KIB) {
                Ok(conn) => Reader { conn, since: None },
                Err(error) => {
                    tracing::error!(%error, "status view store cannot be read");
                    return None;
                }
            },
        };
        let result = reader
            .begin(commits)
            .map_err(anyhow::Error::from)
            .and_then(|()| f(&reader.conn));
        if result.is_err() {
            reader.end();
        }
        let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if readers.len() < READERS {
            readers.push(reader);
        }
        drop(readers);
        result.unwrap_or_else(|error| {
            tracing::error!(error = %format!("{error:#}"), "status view read failed");
            None
        })
    }

    fn lock_cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests;
