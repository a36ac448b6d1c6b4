//! The in-memory view of every order's current status, fed by the status projector (and
//! written through by intake and the processor on this instance so they read their own
//! writes). Bounded: past `capacity`, the oldest orders that reached a final status are
//! evicted first. Waiters can be woken when an order changes (long-poll).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use std::time::Duration;
use tokio::sync::broadcast;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use uuid::Uuid;

use super::live::StatusEvent;
use super::model::Order;
use super::status::{OrderSnapshot, OrderStatus};

/// Changes kept for `Last-Event-ID` replay on the live feed.
const FEED_REPLAY: usize = 10_000;
/// Changes a feed subscriber may fall behind before it is dropped.
const FEED_BUFFER: usize = 4_096;

/// A page request for [`OrderStore::list`].
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
    /// Only this customer's orders.
    pub customer_id: Option<String>,
    /// Page size.
    pub limit: usize,
    /// Continue after this position (from the previous page's `next_cursor`).
    pub cursor: Option<(DateTime<Utc>, Uuid)>,
}

struct Inner {
    orders: HashMap<Uuid, OrderSnapshot>,
    /// (accepted_at, order_id) of every order, for newest-first listing and eviction.
    by_time: BTreeSet<(DateTime<Utc>, Uuid)>,
}

/// The order view. Shared as `Arc<OrderStore>`.
pub struct OrderStore {
    inner: RwLock<Inner>,
    capacity: usize,
    /// One channel per order someone waits on (long-polls, live streams), so a change wakes
    /// only those waiting for that order.
    watchers: Mutex<HashMap<Uuid, watch::Sender<()>>>,
    /// Entries in `watchers`: a change takes the lock only when someone waits at all.
    watched: AtomicUsize,
    /// Every status change in the order it reached this view, for live feeds.
    feed: Feed,
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
struct Feed {
    recent: Mutex<(u64, VecDeque<FeedEntry>)>,
    replay: usize,
    live: broadcast::Sender<FeedEntry>,
}

/// A subscription to one order's changes; see [`OrderStore::watch`].
pub struct OrderWatch {
    store: Arc<OrderStore>,
    id: Uuid,
    changes: watch::Receiver<()>,
}

impl OrderWatch {
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
        let mut watchers = self.store.watchers();
        // This receiver still counts: it is the last one when the count is one.
        if watchers
            .get(&self.id)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            watchers.remove(&self.id);
            self.store.watched.store(watchers.len(), Ordering::Release);
        }
    }
}

impl OrderStore {
    /// An empty view holding at most `capacity` orders.
    pub fn new(capacity: usize) -> Self {
        OrderStore {
            inner: RwLock::new(Inner {
                orders: HashMap::new(),
                by_time: BTreeSet::new(),
            }),
            capacity: capacity.max(1),
            watchers: Mutex::new(HashMap::new()),
            watched: AtomicUsize::new(0),
            feed: Feed {
                recent: Mutex::new((0, VecDeque::new())),
                replay: FEED_REPLAY,
                live: broadcast::channel(FEED_BUFFER).0,
            },
        }
    }

    /// Subscribes to every later change, and returns the recent ones after `after` (oldest
    /// first) that are still held.
    pub fn follow(&self, after: u64) -> (broadcast::Receiver<FeedEntry>, Vec<FeedEntry>) {
        let recent = self.feed.recent.lock().unwrap_or_else(|e| e.into_inner());
        // Subscribed under the lock, so no change falls between the replay and the live part.
        let live = self.feed.live.subscribe();
        let replay = recent.1.iter().filter(|e| e.seq > after).cloned().collect();
        (live, replay)
    }

    /// Puts the history entries of `snapshot` from `from` on the feed.
    fn publish(&self, snapshot: &OrderSnapshot, from: usize) {
        if from >= snapshot.history.len() {
            return;
        }
        let mut recent = self.feed.recent.lock().unwrap_or_else(|e| e.into_inner());
        for change in &snapshot.history[from..] {
            recent.0 += 1;
            let entry = FeedEntry {
                seq: recent.0,
                event: Arc::new(StatusEvent::of(snapshot, change)),
            };
            if recent.1.len() == self.feed.replay {
                recent.1.pop_front();
            }
            recent.1.push_back(entry.clone());
            // No subscriber is fine.
            let _ = self.feed.live.send(entry);
        }
    }

    /// Subscribes to the changes of order `id` (known or not yet).
    pub fn watch(self: &Arc<Self>, id: Uuid) -> OrderWatch {
        let mut watchers = self.watchers();
        let changes = watchers
            .entry(id)
            .or_insert_with(|| watch::channel(()).0)
            .subscribe();
        self.watched.store(watchers.len(), Ordering::Release);
        OrderWatch {
            store: self.clone(),
            id,
            changes,
        }
    }

    fn watchers(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, watch::Sender<()>>> {
        self.watchers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current snapshot of an order.
    pub fn get(&self, id: &Uuid) -> Option<OrderSnapshot> {
        self.read().orders.get(id).cloned()
    }

    /// The current status of an order, without copying its snapshot.
    pub fn status_of(&self, id: &Uuid) -> Option<OrderStatus> {
        self.read().orders.get(id).map(|s| s.status)
    }

    /// Number of orders held.
    pub fn len(&self) -> usize {
        self.read().orders.len()
    }

    /// Whether no order is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records an accepted order as `PENDING` unless something newer is known.
    pub fn insert_pending(&self, order: Order) {
        let id = order.order_id;
        let mut inner = self.write();
        if inner.orders.contains_key(&id) {
            return;
        }
        inner.by_time.insert((order.accepted_at, id));
        let snapshot = OrderSnapshot::pending(order);
        self.publish(&snapshot, 0);
        inner.orders.insert(id, snapshot);
        self.evict(&mut inner);
        drop(inner);
        self.notify(&id);
    }

    /// Applies a snapshot unless the view already holds a later one.
    pub fn apply(&self, snapshot: OrderSnapshot) {
        let id = snapshot.order.order_id;
        let mut inner = self.write();
        match inner.orders.get_mut(&id) {
            Some(current) if !snapshot.supersedes(current) => return,
            Some(current) => {
                let keep_cancel = current.cancel_requested && !snapshot.status.is_final();
                self.publish(&snapshot, current.history.len());
                *current = snapshot;
                current.cancel_requested |= keep_cancel;
            }
            None => {
                self.publish(&snapshot, 0);
                inner.by_time.insert((snapshot.order.accepted_at, id));
                inner.orders.insert(id, snapshot);
                self.evict(&mut inner);
            }
        }
        drop(inner);
        self.notify(&id);
    }

    /// Notes that a cancel was requested. Returns false when the order is unknown.
    pub fn mark_cancel_requested(&self, id: &Uuid) -> bool {
        let mut inner = self.write();
        let Some(current) = inner.orders.get_mut(id) else {
            return false;
        };
        if !current.status.is_final() {
            current.cancel_requested = true;
        }
        drop(inner);
        self.notify(id);
        true
    }

    /// A page of orders, newest first, and the cursor of the next page if there is one.
    pub fn list(&self, query: &ListQuery) -> (Vec<OrderSnapshot>, Option<(DateTime<Utc>, Uuid)>) {
        let inner = self.read();
        let upper = match query.cursor {
            Some(cursor) => std::ops::Bound::Excluded(cursor),
            None => std::ops::Bound::Unbounded,
        };
        let mut page = Vec::with_capacity(query.limit);
        let mut next = None;
        for position in inner
            .by_time
            .range((std::ops::Bound::Unbounded, upper))
            .rev()
        {
            let Some(snapshot) = inner.orders.get(&position.1) else {
                continue;
            };
            let wanted = query.status.is_none_or(|s| s == snapshot.status)
                && query
                    .customer_id
                    .as_deref()
                    .is_none_or(|c| c == snapshot.order.customer_id);
            if !wanted {
                continue;
            }
            if page.len() == query.limit {
                next = page
                    .last()
                    .map(|s: &OrderSnapshot| (s.order.accepted_at, s.order.order_id));
                break;
            }
            page.push(snapshot.clone());
        }
        (page, next)
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

    /// Wakes whoever watches order `id`.
    fn notify(&self, id: &Uuid) {
        if self.watched.load(Ordering::Acquire) == 0 {
            return;
        }
        if let Some(sender) = self.watchers().get(id) {
            sender.send_replace(());
        }
    }

    /// Evicts the oldest final orders while over capacity; live orders are never evicted.
    fn evict(&self, inner: &mut Inner) {
        if inner.orders.len() <= self.capacity {
            return;
        }
        // Evict a little more than needed so that eviction runs once per many inserts.
        let target = self.capacity - self.capacity / 100;
        let victims: Vec<(DateTime<Utc>, Uuid)> = inner
            .by_time
            .iter()
            .filter(|(_, id)| inner.orders.get(id).is_some_and(|s| s.status.is_final()))
            .take(inner.orders.len() - target)
            .copied()
            .collect();
        for position in victims {
            inner.by_time.remove(&position);
            inner.orders.remove(&position.1);
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::OrderRules;
    use crate::orders::model::OrderRequest;

    fn order(seconds: i64) -> Order {
        let request: OrderRequest = serde_json::from_value(serde_json::json!({
            "customer_id": "c", "currency": "EUR",
            "items": [{"product_id": "p", "quantity": 1, "unit_price": "1.00"}]
        }))
        .unwrap();
        let at = DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap();
        request
            .parse(
                &OrderRules {
                    max_items: 10,
                    currencies: vec![],
                },
                at,
            )
            .unwrap()
    }

    #[test]
    fn a_later_snapshot_wins_and_an_older_one_is_ignored() {
        let store = OrderStore::new(10);
        let o = order(0);
        let pending = OrderSnapshot::pending(o.clone());
        let done = pending
            .advanced(OrderStatus::Processing, None, Utc::now())
            .advanced(OrderStatus::Completed, None, Utc::now());
        store.apply(done.clone());
        store.insert_pending(o.clone());
        store.apply(pending);
        assert_eq!(
            store.get(&o.order_id).unwrap().status,
            OrderStatus::Completed
        );
    }

    #[test]
    fn lists_newest_first_with_a_cursor_and_filters() {
        let store = OrderStore::new(10);
        let orders: Vec<Order> = (0..5).map(order).collect();
        for o in &orders {
            store.insert_pending(o.clone());
        }
        let done = OrderSnapshot::pending(orders[1].clone()).advanced(
            OrderStatus::Completed,
            None,
            Utc::now(),
        );
        store.apply(done);
        let (page, next) = store.list(&ListQuery {
            limit: 2,
            ..Default::default()
        });
        let ids: Vec<_> = page.iter().map(|s| s.order.order_id).collect();
        assert_eq!(ids, [orders[4].order_id, orders[3].order_id]);
        let (page, _) = store.list(&ListQuery {
            limit: 10,
            cursor: next,
            ..Default::default()
        });
        assert_eq!(page.len(), 3);
        let (page, next) = store.list(&ListQuery {
            limit: 10,
            status: Some(OrderStatus::Completed),
            ..Default::default()
        });
        assert_eq!((page.len(), next), (1, None));
    }

    #[test]
    fn evicts_oldest_final_orders_only() {
        let store = OrderStore::new(3);
        let orders: Vec<Order> = (0..4).map(order).collect();
        store.insert_pending(orders[0].clone());
        store.apply(OrderSnapshot::pending(orders[1].clone()).advanced(
            OrderStatus::Failed,
            Some("x".into()),
            Utc::now(),
        ));
        store.insert_pending(orders[2].clone());
        store.insert_pending(orders[3].clone());
        assert_eq!(store.len(), 3);
        assert!(
            store.get(&orders[1].order_id).is_none(),
            "the final order goes first"
        );
        assert!(
            store.get(&orders[0].order_id).is_some(),
            "a live order stays"
        );
    }
}
