//! Telling others about changes: per-order watches (long-polls, one order's live stream)
//! and the live feed of every change (bounded replay for `Last-Event-ID`, broadcast).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use super::OrderStore;
use crate::orders::live::StatusEvent;
use crate::orders::status::{OrderSnapshot, OrderStatus};

/// Changes kept for `Last-Event-ID` replay on the live feed.
const FEED_REPLAY: usize = 10_000;
/// Changes a feed subscriber may fall behind before it is dropped.
const FEED_BUFFER: usize = 4_096;
/// The same for a subscriber to one customer's changes (a channel per followed customer).
const CUSTOMER_BUFFER: usize = 256;

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

/// The recent changes (bounded, for `Last-Event-ID` replay) and their live broadcast,
/// routed when published: a subscriber to one customer or one status is woken only by
/// those changes, not by every change to filter it out.
pub(super) struct Feed {
    recent: Mutex<(u64, VecDeque<FeedEntry>)>,
    all: broadcast::Sender<FeedEntry>,
    by_status: [broadcast::Sender<FeedEntry>; 5],
    by_customer: Mutex<HashMap<String, broadcast::Sender<FeedEntry>>>,
    /// Entries in `by_customer`: a change takes that lock only when a customer is followed.
    customers: AtomicUsize,
}

/// What a feed subscriber wants.
#[derive(Debug, Clone, Default)]
pub struct FeedFilter {
    /// Only this customer's changes.
    pub customer_id: Option<String>,
    /// Only changes into this status.
    pub status: Option<OrderStatus>,
}

impl FeedFilter {
    /// Whether `event` passes.
    pub fn wants(&self, event: &StatusEvent) -> bool {
        self.customer_id
            .as_deref()
            .is_none_or(|c| c == event.customer_id)
            && self.status.is_none_or(|s| s == event.status)
    }
}

fn status_index(status: OrderStatus) -> usize {
    match status {
        OrderStatus::Pending => 0,
        OrderStatus::Processing => 1,
        OrderStatus::Completed => 2,
        OrderStatus::Failed => 3,
        OrderStatus::Cancelled => 4,
    }
}

/// A feed subscription: the recent changes after the client's last, then live ones.
pub struct FeedSubscription {
    store: Arc<OrderStore>,
    /// The recent changes after `after` that were still held (oldest first).
    pub replay: Vec<FeedEntry>,
    /// Later changes (of the followed customer or status, or all).
    pub receiver: broadcast::Receiver<FeedEntry>,
    customer_id: Option<String>,
}

impl Drop for FeedSubscription {
    fn drop(&mut self) {
        let Some(customer) = &self.customer_id else {
            return;
        };
        let feed = &self.store.feed;
        let mut channels = feed.by_customer.lock().unwrap_or_else(|e| e.into_inner());
        if channels
            .get(customer)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            channels.remove(customer);
            feed.customers.store(channels.len(), Ordering::Release);
        }
    }
}

impl Feed {
    pub(super) fn new() -> Feed {
        Feed {
            recent: Mutex::new((0, VecDeque::new())),
            all: broadcast::channel(FEED_BUFFER).0,
            by_status: std::array::from_fn(|_| broadcast::channel(FEED_BUFFER).0),
            by_customer: Mutex::new(HashMap::new()),
            customers: AtomicUsize::new(0),
        }
    }

    /// The position of the last change on the feed.
    pub(super) fn position(&self) -> u64 {
        self.recent.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    /// Subscribes to the later changes `filter` wants, with the recent ones after `after`
    /// that are still held.
    pub(super) fn follow(
        store: &Arc<OrderStore>,
        after: u64,
        filter: &FeedFilter,
    ) -> FeedSubscription {
        let feed = &store.feed;
        let recent = feed.recent.lock().unwrap_or_else(|e| e.into_inner());
        // Subscribed under the lock, so no change falls between the replay and the live part.
        let receiver = match (&filter.customer_id, filter.status) {
            (Some(customer), _) => {
                let mut channels = feed.by_customer.lock().unwrap_or_else(|e| e.into_inner());
                let receiver = channels
                    .entry(customer.clone())
                    .or_insert_with(|| broadcast::channel(CUSTOMER_BUFFER).0)
                    .subscribe();
                feed.customers.store(channels.len(), Ordering::Release);
                receiver
            }
            (None, Some(status)) => feed.by_status[status_index(status)].subscribe(),
            (None, None) => feed.all.subscribe(),
        };
        let replay = recent
            .1
            .iter()
            .filter(|e| e.seq > after && filter.wants(&e.event))
            .cloned()
            .collect();
        FeedSubscription {
            store: store.clone(),
            replay,
            receiver,
            customer_id: filter.customer_id.clone(),
        }
    }

    /// Puts the history entries of `snapshot` from `from` on the feed.
    pub(super) fn publish(&self, snapshot: &OrderSnapshot, from: usize) {
        if from >= snapshot.history.len() {
            return;
        }
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let customer = (self.customers.load(Ordering::Acquire) > 0)
            .then(|| {
                self.by_customer
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&snapshot.order.customer_id)
                    .cloned()
            })
            .flatten();
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
            let by_status = &self.by_status[status_index(change.status)];
            if by_status.receiver_count() > 0 {
                let _ = by_status.send(entry.clone());
            }
            if let Some(customer) = &customer {
                let _ = customer.send(entry.clone());
            }
            if self.all.receiver_count() > 0 {
                let _ = self.all.send(entry);
            }
        }
    }
}
