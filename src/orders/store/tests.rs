//! Unit tests of the order view.

use super::*;
use crate::orders::OrderRules;
use crate::orders::model::OrderRequest;

fn order(seconds: i64, customer: &str) -> Order {
    let request: OrderRequest = serde_json::from_value(serde_json::json!({
        "customer_id": customer, "currency": "EUR",
        "items": [{"product_id": "p", "quantity": 1, "unit_price": "1.00"}]
    }))
    .unwrap();
    let at = DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap();
    let rules = OrderRules {
        max_items: 10,
        currencies: vec![],
    };
    request.parse(&rules, at).unwrap()
}

fn settings(dir: &tempfile::TempDir, cache_orders: usize) -> StatusViewSettings {
    StatusViewSettings {
        path: dir.path().join("view.db").display().to_string(),
        cache_orders,
        store_cache_mb: 1,
        flush_interval: Duration::from_millis(100),
        retain_final_days: 0,
        max_wait: Duration::from_secs(1),
        max_live_streams: 1,
        live_keep_alive: Duration::from_secs(1),
    }
}

fn completed(order: &Order) -> OrderSnapshot {
    OrderSnapshot::pending(order.clone())
        .advance(OrderStatus::Processing, None, Utc::now())
        .advance(OrderStatus::Completed, None, Utc::now())
}

/// The projector found an order unknown, then this instance wrote it through (intake's
/// local change) before the projector inserted what it had read: the order must be
/// committed with the offsets that include its record, or a restart (which resumes after
/// them) never sees it. Seen once as 3,004 of 3,005 orders after a restart.
#[test]
fn an_order_written_through_while_the_projector_reads_its_record_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let o = order(0, "c");
    {
        let store = OrderStore::open(&settings(&dir, 10)).unwrap();
        assert!(store.known(&o.order_id).is_none(), "the projector looks");
        store.insert_pending(o.clone(), None);
        store.insert_unknown(o.clone(), Origin::Topic);
        store.set_position("orders", 0, 1);
        store.flush().unwrap();
    }
    let store = OrderStore::open(&settings(&dir, 10)).unwrap();
    assert_eq!(store.positions().unwrap()[&("orders".to_string(), 0)], 1);
    assert_eq!(
        store.get(&o.order_id).map(|s| s.status),
        Some(OrderStatus::Pending),
        "the order its offsets include"
    );
}

/// An order this instance accepted is stored with the `PENDING` JSON the intake made around
/// the order's JSON as its record holds it, and reads back as the order's `PENDING` snapshot
/// after a restart.
#[test]
fn an_accepted_order_stored_from_its_records_json_reads_back_as_placed() {
    let dir = tempfile::tempdir().unwrap();
    let o = order(0, "c");
    let record =
        serde_json::to_vec(&crate::orders::events::OrderEvent::OrderPlaced { order: o.clone() })
            .unwrap();
    let json = crate::orders::events::written_order_json(&record).expect("the service's layout");
    let row = OrderSnapshot::pending_json(json, o.accepted_at).unwrap();
    {
        let store = OrderStore::open(&settings(&dir, 10)).unwrap();
        store.insert_pending(o.clone(), Some(row));
        assert!(
            store.commit_local(&o.order_id),
            "the projector read its record"
        );
        store.set_position("orders", 0, 1);
        store.flush().unwrap();
    }
    let store = OrderStore::open(&settings(&dir, 10)).unwrap();
    assert_eq!(store.get(&o.order_id), Some(OrderSnapshot::pending(o)));
}

/// A local change dropped by the cache between the projector's look and its commit is
/// reported, so the projector applies the record itself.
#[test]
fn committing_a_local_change_the_cache_dropped_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = OrderStore::open(&settings(&dir, 1)).unwrap();
    let a = order(0, "c");
    store.insert_pending(a.clone(), None);
    assert_eq!(
        store
            .known(&a.order_id)
            .map(|(s, uncommitted)| (s.status, uncommitted)),
        Some((OrderStatus::Pending, true))
    );
    // Local changes are held up to three times the capacity (1), then the oldest goes.
    let later: Vec<Order> = (1..4).map(|i| order(i, "c")).collect();
    for o in &later {
        store.insert_pending(o.clone(), None);
    }
    assert!(
        !store.commit_local(&a.order_id),
        "a was dropped for the others"
    );
    assert!(store.commit_local(&later[2].order_id));
}

#[test]
fn a_later_snapshot_wins_and_an_older_one_is_ignored_in_memory_and_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = OrderStore::open(&settings(&dir, 10)).unwrap();
    let o = order(0, "c");
    store.apply(completed(&o), Origin::Topic);
    store.flush().unwrap();
    store.insert_pending(o.clone(), None);
    store.apply(OrderSnapshot::pending(o.clone()), Origin::Topic);
    assert_eq!(
        store.get(&o.order_id).unwrap().status,
        OrderStatus::Completed
    );
    assert_eq!(store.len(), 1);
}

#[test]
fn a_change_to_an_order_only_on_disk_keeps_its_history_and_its_cancel_request() {
    let dir = tempfile::tempdir().unwrap();
    let store = OrderStore::open(&settings(&dir, 1)).unwrap();
    let (done, waiting) = (order(0, "c"), order(1, "c"));
    store.apply(completed(&done), Origin::Topic);
    store.insert_unknown(waiting.clone(), Origin::Topic);
    store.mark_cancel_requested(&waiting.order_id, Origin::Topic);
    store.flush().unwrap();
    for filler in (2..6).map(|i| order(i, "other")) {
        store.insert_unknown(filler, Origin::Topic);
        store.flush().unwrap();
    }
    assert!(
        !store.lock_cache().slots.contains_key(&done.order_id)
            && !store.lock_cache().slots.contains_key(&waiting.order_id),
        "both only on disk"
    );
    store.apply(OrderSnapshot::pending(done.clone()), Origin::Topic);
    assert_eq!(
        store.get(&done.order_id).unwrap().status,
        OrderStatus::Completed,
        "an older snapshot never replaces a stored later one"
    );
    let processing =
        OrderSnapshot::pending(waiting.clone()).advance(OrderStatus::Processing, None, Utc::now());
    store.apply(processing, Origin::Topic);
    let current = store.get(&waiting.order_id).unwrap();
    assert_eq!(current.status, OrderStatus::Processing);
    assert!(
        current.cancel_requested,
        "the stored cancel request is kept"
    );
}

/// A new store (rebuilt from the topics) has no list indexes until the projector has caught
/// up; lists answer the same without them and with them, and a reset drops them again.
#[test]
fn lists_newest_first_with_a_cursor_filters_and_a_time_range() {
    let dir = tempfile::tempdir().unwrap();
    let store = OrderStore::open(&settings(&dir, 2)).unwrap();
    let orders: Vec<Order> = (0..5)
        .map(|i| order(i, if i % 2 == 0 { "even" } else { "odd" }))
        .collect();
    for o in &orders {
        store.insert_unknown(o.clone(), Origin::Topic);
    }
    store.apply(completed(&orders[1]), Origin::Topic);
    let indexed = |store: &OrderStore| store.lock_db().has_list_indexes().unwrap();
    assert!(!indexed(&store), "a new store is rebuilt without them");
    assert_lists(&store, &orders);
    store.flush().unwrap();
    assert!(
        !indexed(&store),
        "built only once the projector has caught up"
    );
    store.build_list_indexes();
    store.flush().unwrap();
    assert!(indexed(&store));
    assert_lists(&store, &orders);
    drop(store);
    let store = OrderStore::open(&settings(&dir, 2)).unwrap();
    assert!(indexed(&store), "kept on disk");
    store.reset("other").unwrap();
    assert!(!indexed(&store), "a rebuild drops them");
    store.build_list_indexes();
    store.flush().unwrap();
    assert!(indexed(&store));
}

fn assert_lists(store: &OrderStore, orders: &[Order]) {
    let ids = |page: &[OrderSnapshot]| page.iter().map(|s| s.order.order_id).collect::<Vec<_>>();
    let (page, next) = store
        .list(&ListQuery {
            limit: 2,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(ids(&page), [orders[4].order_id, orders[3].order_id]);
    let (page, last) = store
        .list(&ListQuery {
            limit: 10,
            cursor: next,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        ids(&page),
        [orders[2].order_id, orders[1].order_id, orders[0].order_id]
    );
    assert_eq!(last, None);
    let completed_only = ListQuery {
        limit: 10,
        status: Some(OrderStatus::Completed),
        ..Default::default()
    };
    assert_eq!(
        ids(&store.list(&completed_only).unwrap().0),
        [orders[1].order_id]
    );
    let odd = ListQuery {
        limit: 10,
        customer_id: Some("odd".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(&store.list(&odd).unwrap().0),
        [orders[3].order_id, orders[1].order_id]
    );
    let range = ListQuery {
        limit: 10,
        from: Some(orders[1].accepted_at),
        to: Some(orders[3].accepted_at),
        ..Default::default()
    };
    assert_eq!(
        ids(&store.list(&range).unwrap().0),
        [orders[2].order_id, orders[1].order_id]
    );
}

#[test]
fn memory_holds_the_cache_only_and_every_order_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let store = OrderStore::open(&settings(&dir, 3)).unwrap();
    let orders: Vec<Order> = (0..20).map(|i| order(i, "c")).collect();
    for o in &orders {
        store.insert_unknown(o.clone(), Origin::Topic);
    }
    store.flush().unwrap();
    assert!(
        store.lock_cache().slots.len() <= 3,
        "the cache is bounded once committed"
    );
    for o in &orders {
        assert_eq!(store.get(&o.order_id).unwrap().order, *o);
    }
    assert_eq!(store.len(), 20);
}

#[test]
fn a_reopened_store_keeps_rows_offsets_and_source() {
    let dir = tempfile::tempdir().unwrap();
    let o = order(0, "c");
    {
        let store = OrderStore::open(&settings(&dir, 10)).unwrap();
        assert_eq!(store.opened_empty(), Some(RebuildReason::Missing));
        store.reset("cluster/orders/status").unwrap();
        store.apply(completed(&o), Origin::Topic);
        store.set_position("orders.status", 2, 41);
        store.flush().unwrap();
        // Not committed: lost with the process, and read again from the topics.
        store.set_position("orders.status", 2, 99);
    }
    let store = OrderStore::open(&settings(&dir, 10)).unwrap();
    assert_eq!(store.opened_empty(), None);
    assert_eq!(
        store.source().unwrap().as_deref(),
        Some("cluster/orders/status")
    );
    assert_eq!(
        store.positions().unwrap()[&("orders.status".to_string(), 2)],
        41
    );
    assert_eq!(
        store.get(&o.order_id).unwrap().status,
        OrderStatus::Completed
    );
    assert_eq!(store.len(), 1);
}

#[test]
fn an_unreadable_store_is_replaced_and_a_second_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(&dir, 10);
    std::fs::write(&settings.path, b"not a database at all, just bytes").unwrap();
    let store = OrderStore::open(&settings).unwrap();
    assert_eq!(store.opened_empty(), Some(RebuildReason::Unreadable));
    let second = OrderStore::open(&settings)
        .err()
        .expect("the path is in use");
    assert!(
        format!("{second:#}").contains("in use by another process"),
        "{second:#}"
    );
}

#[test]
fn retention_removes_only_old_final_orders() {
    let dir = tempfile::tempdir().unwrap();
    let store = OrderStore::open(&settings(&dir, 10)).unwrap();
    let (old, live) = (order(0, "c"), order(1, "c"));
    let at = DateTime::from_timestamp(1_700_000_100, 0).unwrap();
    store.apply(
        OrderSnapshot::pending(old.clone()).advance(OrderStatus::Completed, None, at),
        Origin::Topic,
    );
    store.insert_unknown(live.clone(), Origin::Topic);
    store.flush().unwrap();
    assert_eq!(
        store
            .remove_final_older_than(Duration::from_secs(86_400))
            .unwrap(),
        1
    );
    assert_eq!(store.len(), 1);
    let (page, _) = store
        .list(&ListQuery {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].order.order_id, live.order_id);
}

#[test]
fn a_local_change_is_committed_when_its_record_comes_back_and_is_never_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let store = OrderStore::open(&settings(&dir, 2)).unwrap();
    let mine = order(0, "c");
    store.insert_pending(mine.clone(), None);
    store.apply(completed(&mine), Origin::Local);
    let known = |store: &OrderStore| {
        store
            .known(&mine.order_id)
            .map(|(s, uncommitted)| (s.status, uncommitted))
    };
    assert_eq!(known(&store), Some((OrderStatus::Completed, true)));
    assert_eq!(
        store.flush().unwrap(),
        0,
        "nothing to commit before the record is read"
    );
    store.commit_local(&mine.order_id);
    assert_eq!(store.flush().unwrap(), 1);
    assert_eq!(known(&store), Some((OrderStatus::Completed, false)));
    // Local changes hold memory up to three times the cache's capacity (2): past that they
    // go (the topics have them).
    let others: Vec<Order> = (1..20).map(|i| order(i, "c")).collect();
    for o in &others {
        store.insert_pending(o.clone(), None);
    }
    assert_eq!(store.lock_cache().slots.len(), 6);
    assert_eq!(
        store.get(&mine.order_id).unwrap().status,
        OrderStatus::Completed
    );
}

#[test]
fn a_read_after_a_commit_sees_it_though_readers_keep_their_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let store = OrderStore::open(&settings(&dir, 1)).unwrap();
    let o = order(0, "c");
    let evict = |from: i64| {
        for filler in (from..from + 3).map(|i| order(i, "other")) {
            store.insert_unknown(filler, Origin::Topic);
            store.flush().unwrap();
        }
        assert!(!store.lock_cache().slots.contains_key(&o.order_id));
    };
    store.insert_unknown(o.clone(), Origin::Topic);
    store.flush().unwrap();
    evict(10);
    // This read leaves its reader with an open read transaction.
    assert_eq!(store.get(&o.order_id).unwrap().status, OrderStatus::Pending);
    store.apply(completed(&o), Origin::Topic);
    store.flush().unwrap();
    evict(20);
    assert_eq!(
        store.get(&o.order_id).unwrap().status,
        OrderStatus::Completed,
        "a read transaction from before the commit must not serve this read"
    );
}

/// The processor's read of an order the view has applied: one held as placed is answered
/// without the store, and one that moved on (a cancel request, a final status) never as
/// placed — also after a restart, when the cache starts empty and only the store knows.
#[test]
fn an_applied_order_is_placed_only_when_nothing_moved_it_on_before_or_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (placed, cancelled, done) = (order(0, "c"), order(1, "c"), order(2, "c"));
    let check = |store: &OrderStore| {
        assert_eq!(
            store.summary_of_applied(&placed.order_id),
            Some(Summary::PLACED)
        );
        let asked = store.summary_of_applied(&cancelled.order_id).unwrap();
        assert_eq!(
            (asked.status, asked.cancel_requested),
            (OrderStatus::Pending, true)
        );
        assert_eq!(
            store.summary_of_applied(&done.order_id).map(|s| s.status),
            Some(OrderStatus::Completed)
        );
        assert_eq!(store.summary_of_applied(&Uuid::new_v4()), None);
        // Not known to be applied: the store is asked whether it holds the order.
        assert_eq!(store.summary(&placed.order_id), Some(Summary::PLACED));
        assert_eq!(
            store.known(&done.order_id).map(|(s, _)| s.status),
            Some(OrderStatus::Completed)
        );
        assert_eq!(store.summary(&Uuid::new_v4()), None);
    };
    {
        let store = OrderStore::open(&settings(&dir, 1)).unwrap();
        for o in [&placed, &cancelled, &done] {
            store.insert_unknown(o.clone(), Origin::Topic);
        }
        assert!(store.mark_cancel_requested(&cancelled.order_id, Origin::Topic));
        store.apply(completed(&done), Origin::Topic);
        store.flush().unwrap();
        // One more change evicts the three (the cache holds one order).
        store.insert_unknown(order(3, "c"), Origin::Topic);
        assert!(
            matches!(
                store.lock_cache().cached(&cancelled.order_id),
                Cached::MaybeStored
            ),
            "evicted, so the answers below come from the filter or the store"
        );
        check(&store);
        store.flush().unwrap();
    }
    let store = OrderStore::open(&settings(&dir, 1)).unwrap();
    check(&store);
}

/// The processor ran ahead of the view: its local final changes were more than the cache
/// keeps, so some went before their records came back. Each such record is applied over
/// what the dropped change left, not over the store's older row: the order stays counted
/// once, and its changes reach the live feed once.
#[test]
fn a_status_record_of_a_dropped_local_change_is_applied_over_what_it_left() {
    let dir = tempfile::tempdir().unwrap();
    let store = OrderStore::open(&settings(&dir, 2)).unwrap();
    let orders: Vec<Order> = (0..10).map(|i| order(i, "c")).collect();
    for o in &orders {
        store.insert_unknown(o.clone(), Origin::Topic);
    }
    store.flush().unwrap();
    let feed = store.feed_position();
    for o in &orders {
        store.apply_over(completed(o), None, Origin::Local, Some(Summary::PLACED));
    }
    assert_eq!(
        store.feed_position(),
        feed + 20,
        "PROCESSING and COMPLETED of each"
    );
    let dropped: Vec<&Order> = orders
        .iter()
        .filter(|o| store.lock_cache().dropped.contains_key(&o.order_id))
        .collect();
    assert!(!dropped.is_empty(), "a crowded cache drops local changes");
    let first = dropped[0];
    let (summary, uncommitted) = store.known_for_status(&first.order_id).unwrap();
    assert_eq!(summary.status, OrderStatus::Completed);
    assert!(uncommitted, "the record must still be applied");
    assert!(!store.commit_local(&first.order_id));
    // The store itself still has the placed row.
    assert_eq!(
        store.known(&first.order_id).map(|(s, _)| s.status),
        Some(OrderStatus::Pending)
    );
    // The projector applies the record over what `known_for_status` gave.
    store.apply_over(completed(first), None, Origin::Topic, Some(summary));
    assert_eq!(
        store.feed_position(),
        feed + 20,
        "no change published twice"
    );
    assert_eq!(store.len(), 10, "counted once");
    assert!(!store.lock_cache().dropped.contains_key(&first.order_id));
    store.flush().unwrap();
    drop(store);
    let store = OrderStore::open(&settings(&dir, 2)).unwrap();
    assert_eq!(
        store.get(&first.order_id).map(|s| s.status),
        Some(OrderStatus::Completed)
    );
}

/// What the projector asks of an `order_placed` record: whether the view holds the order at
/// all (any status) and whether as an uncommitted local change, from the cache or, past it,
/// from the id's index.
#[test]
fn held_tells_a_held_order_of_any_status_and_an_uncommitted_local_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = OrderStore::open(&settings(&dir, 1)).unwrap();
    let (final_one, placed, unknown) = (order(0, "c"), order(1, "c"), order(2, "c"));
    store.apply(completed(&final_one), Origin::Topic);
    store.insert_unknown(placed.clone(), Origin::Topic);
    store.flush().unwrap();
    assert!(
        !store.lock_cache().slots.contains_key(&final_one.order_id),
        "the final order is past the cache (capacity 1)"
    );
    assert_eq!(store.held(&final_one.order_id), Some(false));
    assert_eq!(store.held(&placed.order_id), Some(false));
    assert_eq!(store.held(&unknown.order_id), None);
    store.insert_pending(unknown.clone(), None);
    assert_eq!(store.held(&unknown.order_id), Some(true), "a local change");
    store.commit_local(&unknown.order_id);
    assert_eq!(store.held(&unknown.order_id), Some(false));
}

/// The processor ran ahead of the view's read of `orders`: its local final changes were more
/// than the cache keeps. An `order_placed` record read after its order's change was dropped
/// finds the order held, with nothing to commit, so it is not written again as `PENDING`
/// (nor counted twice); the status record then applies over what the change left.
#[test]
fn an_order_placed_after_its_dropped_local_change_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let store = OrderStore::open(&settings(&dir, 2)).unwrap();
    let orders: Vec<Order> = (0..10).map(|i| order(i, "c")).collect();
    for o in &orders {
        store.apply_over(completed(o), None, Origin::Local, None);
    }
    let dropped = orders
        .iter()
        .find(|o| store.lock_cache().dropped.contains_key(&o.order_id))
        .expect("a crowded cache drops local changes");
    assert_eq!(store.held(&dropped.order_id), Some(false));
    assert_eq!(store.len(), 10);
    let (summary, uncommitted) = store.known_for_status(&dropped.order_id).unwrap();
    assert!(uncommitted);
    store.apply_over(completed(dropped), None, Origin::Topic, Some(summary));
    assert_eq!(store.len(), 10, "counted once");
    store.flush().unwrap();
    assert_eq!(
        store.get(&dropped.order_id).map(|s| s.status),
        Some(OrderStatus::Completed)
    );
}

/// An idle view's writer has nothing to do; a change, an offset or due indexes give it work.
#[test]
fn the_writer_has_work_only_when_something_waits() {
    let dir = tempfile::tempdir().unwrap();
    let store = OrderStore::open(&settings(&dir, 10)).unwrap();
    store.flush().unwrap();
    assert!(!store.has_writes());
    store.set_position("orders", 0, 1);
    assert!(store.has_writes(), "an offset to write");
    store.flush().unwrap();
    assert!(!store.has_writes());
    store.insert_unknown(order(0, "c"), Origin::Topic);
    assert!(store.has_writes(), "a row to write");
    store.flush().unwrap();
    assert!(!store.has_writes());
    let mine = order(1, "c");
    store.insert_pending(mine.clone(), None);
    assert!(!store.has_writes(), "a local change waits for its record");
    store.commit_local(&mine.order_id);
    assert!(store.has_writes());
    store.flush().unwrap();
    assert!(!store.has_writes());
}
