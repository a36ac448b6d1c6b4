//! The view's cache: recent orders, and the changes the writer has still to commit.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use uuid::Uuid;

use super::presence::Presence;
use super::{Origin, Summary};
use crate::orders::status::{OrderSnapshot, OrderStatus};

/// How many times the cache's capacity local changes may hold it (see [`Cache::evict`]).
const LOCAL_HELD: usize = 3;
/// How many times the cache's capacity of dropped local changes are remembered (a summary
/// each, a few dozen bytes; see [`Cache::dropped`]).
const DROPPED_HELD: usize = 4;

/// A cached order.
pub(super) struct Slot {
    /// Shared with the writer's batch while it is being committed.
    pub(super) snapshot: Arc<OrderSnapshot>,
    /// The snapshot's JSON when it came that way (a status record, or what the processor
    /// wrote), so the writer stores those bytes instead of encoding it again.
    pub(super) encoded: Option<Arc<Vec<u8>>>,
    /// To be committed by the writer; never evicted while set.
    pub(super) dirty: bool,
    /// The store holds this version.
    pub(super) stored: bool,
    /// Bumped on every change, so the writer knows whether what it committed is current.
    pub(super) version: u64,
}

/// Recent orders and what the writer has still to commit.
pub(super) struct Cache {
    pub(super) slots: HashMap<Uuid, Slot>,
    /// Every order the view holds (and a few it does not).
    pub(super) presence: Presence,
    /// Every order the view has held as more than just placed (a later status, a cancel
    /// request, more than one change), and a few others: an order not in it is, if held,
    /// exactly as it was placed.
    pub(super) advanced: Presence,
    /// Insertion order, for eviction.
    pub(super) fifo: VecDeque<Uuid>,
    /// Orders changed since the last commit (each once).
    pub(super) dirty: Vec<Uuid>,
    /// Local changes dropped while crowded before their record came back, by order: where
    /// each left the order. The projector applies the record over it instead of reading
    /// the store (the order is held: it was changed here, and counted then). Forgotten
    /// when the order is put again; bounded (beyond it, the store is read as before).
    pub(super) dropped: HashMap<Uuid, Summary>,
    /// Next offsets the projector has applied, to commit with the rows.
    pub(super) positions: HashMap<(String, i32), i64>,
    pub(super) positions_changed: bool,
    pub(super) next_version: u64,
}

impl Cache {
    pub(super) fn new(presence: Presence, advanced: Presence) -> Cache {
        Cache {
            slots: HashMap::new(),
            presence,
            advanced,
            fifo: VecDeque::new(),
            dropped: HashMap::new(),
            dirty: Vec::new(),
            positions: HashMap::new(),
            positions_changed: false,
            next_version: 0,
        }
    }

    /// Puts a changed snapshot in (with its JSON, when the caller has it); one from the
    /// topics is to be committed.
    pub(super) fn put(
        &mut self,
        snapshot: OrderSnapshot,
        encoded: Option<Arc<Vec<u8>>>,
        origin: Origin,
    ) {
        if !placed_only(&snapshot) {
            self.advanced.insert(&snapshot.order.order_id);
        }
        self.dropped.remove(&snapshot.order.order_id);
        let snapshot = Arc::new(snapshot);
        self.next_version += 1;
        let version = self.next_version;
        let id = snapshot.order.order_id;
        let was_dirty = match self.slots.get(&id) {
            Some(slot) => slot.dirty,
            None => {
                self.fifo.push_back(id);
                self.presence.insert(&id);
                false
            }
        };
        // A local change to a slot already waiting for the writer is written with it.
        let dirty = was_dirty || origin == Origin::Topic;
        if dirty && !was_dirty {
            self.dirty.push(id);
        }
        let slot = Slot {
            snapshot,
            encoded,
            dirty,
            stored: false,
            version,
        };
        self.slots.insert(id, slot);
    }

    /// Marks a local change of `id` for the writer: its record has come back from the
    /// topics. False when the order is not cached (evicted since the caller looked).
    pub(super) fn commit_local(&mut self, id: &Uuid) -> bool {
        let Some(slot) = self.slots.get_mut(id) else {
            return false;
        };
        if !slot.dirty && !slot.stored {
            slot.dirty = true;
            self.dirty.push(*id);
        }
        true
    }

    /// Where order `id` is to be found.
    pub(super) fn cached(&self, id: &Uuid) -> Cached<'_> {
        match self.slots.get(id) {
            Some(slot) => Cached::Here(slot),
            None if self.presence.may_hold(id) => Cached::MaybeStored,
            None => Cached::NotHeld,
        }
    }

    /// Drops the oldest orders while over `capacity`, up to `budget` of them. The oldest
    /// waiting for the writer stops it (the writer soon makes it droppable; going around it
    /// would cost every change a walk over all that wait), and so does a local change whose
    /// record has not come back yet, until the cache holds [`LOCAL_HELD`] times `capacity`:
    /// dropping it makes the projector read and decode what this instance had in hand.
    pub(super) fn evict(&mut self, capacity: usize, budget: usize) {
        let mut tries = self.fifo.len().min(budget);
        while self.slots.len() > capacity && tries > 0 {
            tries -= 1;
            let Some(id) = self.fifo.pop_front() else {
                break;
            };
            let crowded = self.slots.len() > capacity.saturating_mul(LOCAL_HELD);
            match self.slots.get(&id) {
                Some(slot) if slot.dirty && !crowded => {
                    self.fifo.push_front(id);
                    break;
                }
                Some(slot) if slot.dirty => self.fifo.push_back(id),
                Some(slot) if !slot.stored && !crowded => {
                    self.fifo.push_front(id);
                    break;
                }
                Some(_) => {
                    if let Some(slot) = self.slots.remove(&id)
                        && !slot.stored
                        && self.dropped.len() < capacity.saturating_mul(DROPPED_HELD)
                    {
                        self.dropped.insert(id, Summary::of(&slot.snapshot));
                    }
                }
                None => {}
            }
        }
    }
}

/// Whether a snapshot is its order exactly as placed: `PENDING`, one change, no cancel.
pub(super) fn placed_only(snapshot: &OrderSnapshot) -> bool {
    snapshot.status == OrderStatus::Pending
        && snapshot.history.len() == 1
        && !snapshot.cancel_requested
}

/// What the cache knows of an order.
pub(super) enum Cached<'a> {
    Here(&'a Slot),
    /// Not cached, and perhaps in the store.
    MaybeStored,
    /// Neither cached nor in the store.
    NotHeld,
}
