//! Telling others about changes: per-order watches (long-polls, one order's live stream)
//! and the live feed of every change (bounded replay for `Last-Event-ID`, broadcast).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use super::OrderStore;
use crate::orders::live::StatusEvent;
use crate::orders::status::OrderSnapshot;

/// Changes kept for `Last-Event-ID` replay on the live feed.
const FEED_REPLAY: usize = 10_000;
/// Changes a feed subscriber may fall behind before it is dropped.
const FEED_BUFFER: usize = 4_096;

/// One channel per order someone waits on, so a change wakes only those waiting for it.
#[derive(Default)]
pub(super) struct Watchers {
    channels: Mutex<HashMap<Uuid, watch::Sender<()>>>,
    /// Entries in `channels`: a change takes the lock only when someone waits at all.
    count: AtomicUsize,
}

impl Watchers {
    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, watch::Sender<()>>> {
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes whoever watches order `id`.
    pub(super) fn notify(&self, id: &Uuid) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        if let Some(sender) = self.lock().get(id) {
            sender.send_replace(());
        }
    }
}

/// A subscription to one order's changes; see [`OrderStore::watch`].
pub struct OrderWatch {
    store: Arc<OrderStore>,
    id: Uuid,
    changes: watch::Receiver<()>,
}

impl OrderWatch {
    pub(super) fn new(store: Arc<OrderStore>, id: Uuid) -> OrderWatch {
        let watchers = &store.watchers;
        let mut channels = watchers.lock();
        let changes = channels
            .entry(id)
            .or_insert_with(|| watch::channel(()).0)
            .subscribe();
        watchers.count.store(channels.len(), Ordering::Release);
        drop(channels);
        OrderWatch { store, id, changes }
    }

    /// Resolves at the next change of the order after the last call (or after the watch
    /// began).
    pub async fn changed(&mut self) {
        // The sender lives as long as any watch of this order, so this cannot fail.
        let _ = self.changes.changed().await;
    }

    /// The order's current snapshot.
    pub fn get(&self) -> Option<OrderSnapshot> {
        self.store.get(&self.id)
    }
}

impl Drop for OrderWatch {
    fn drop(&mut self) {
        let watchers = &self.store.watchers;
        let mut channels = watchers.lock();
        // This receiver still counts: it is the last one when the count is one.
        if channels
            .get(&self.id)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            channels.remove(&self.id);
            watchers.count.store(channels.len(), Ordering::Release);
        }
    }
}

/// One status change on the feed.
#[derive(Debug, Clone)]
pub struct FeedEntry {
    /// Position on this instance's feed, from 1 (the SSE event id).
    pub seq: u64,
    /// The change (shared, not copied per subscriber).
    pub event: Arc<StatusEvent>,
}

/// The recent changes (bounded, for `Last-Event-ID` replay) and their live broadcast.
pub(super) struct Feed {
    recent: Mutex<(u64, VecDeque<FeedEntry>)>,
    live: broadcast::Sender<FeedEntry>,
}

impl Feed {
    pub(super) fn new() -> Feed {
        Feed {
            recent: Mutex::new((0, VecDeque::new())),
            live: broadcast::channel(FEED_BUFFER).0,
        }
    }

    /// Subscribes to every later change, and returns the recent ones after `after` (oldest
    /// first) that are still held.
    pub(super) fn follow(&self, after: u64) -> (broadcast::Receiver<FeedEntry>, Vec<FeedEntry>) {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        // Subscribed under the lock, so no change falls between the replay and the live part.
        let live = self.live.subscribe();
        let replay = recent.1.iter().filter(|e| e.seq > after).cloned().collect();
        (live, replay)
    }

    /// Puts the history entries of `snapshot` from `from` on the feed.
    pub(super) fn publish(&self, snapshot: &OrderSnapshot, from: usize) {
        if from >= snapshot.history.len() {
            return;
        }
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        for change in &snapshot.history[from..] {
            recent.0 += 1;
            let entry = FeedEntry {
                seq: recent.0,
                event: Arc::new(StatusEvent::of(snapshot, change)),
            };
            if recent.1.len() == FEED_REPLAY {
                recent.1.pop_front();
            }
            recent.1.push_back(entry.clone());
            // No subscriber is fine.
            let _ = self.live.send(entry);
        }
    }
}
