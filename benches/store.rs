//! Chooses the status view's embedded store by measuring two candidates on the view's own
//! workload: SQLite (rusqlite, bundled) and redb. Same data, same batches, same durability
//! (every batch committed durably, as the view commits a batch with its Kafka offsets):
//!
//! 1. `PENDING` rows for N orders, in batches (the projector reading `orders`),
//! 2. each row replaced by its final status (the projector reading `orders.status`),
//! 3. random point reads (`GET /api/orders/{id}` past the cache),
//! 4. the newest-first filtered list (`GET /api/orders?status=` / `?customer_id=`), p50/p99.
//!
//! `cargo bench --bench store [-- --orders N]` (default 200,000). docs/design.md has a run.

use std::time::{Duration, Instant};

use redb::{ReadableDatabase, TableDefinition};
use rusqlite::params;

const BATCH: usize = 1_000;
const CUSTOMERS: u64 = 1_000;
const PAGE: usize = 50;

/// One synthetic order: what the view indexes, and a snapshot of a realistic size.
struct Row {
    id: u128,
    accepted_at: u64,
    customer: String,
    status: u8,
    snapshot: Vec<u8>,
}

fn rows(n: usize) -> Vec<Row> {
    let snapshot = vec![b'x'; 700];
    (0..n as u64)
        .map(|i| Row {
            id: u128::from(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) << 64 | u128::from(i),
            accepted_at: 1_700_000_000_000_000 + i * 1_000,
            customer: format!("customer-{}", i % CUSTOMERS),
            status: 0,
            snapshot: snapshot.clone(),
        })
        .collect()
}

fn final_status(i: usize) -> u8 {
    if i.is_multiple_of(10) { 3 } else { 2 }
}

/// The operations the view needs from a store.
trait Store {
    fn name(&self) -> &'static str;
    fn write(&mut self, batch: &[Row]);
    fn get(&self, id: u128) -> Option<Vec<u8>>;
    /// Ids of a page, newest first, with this status or customer.
    fn list(&self, status: Option<u8>, customer: Option<&str>) -> Vec<u128>;
}

struct Sqlite(rusqlite::Connection, &'static str);

impl Sqlite {
    /// `table` is how the orders table is keyed: a rowid table with a unique index on the
    /// id, or the id as the primary key of a `WITHOUT ROWID` table.
    fn open(path: &std::path::Path, keyed: Keyed) -> Sqlite {
        let (key, suffix, name) = match keyed {
            Keyed::RowidUniqueId => (
                "id BLOB NOT NULL UNIQUE",
                "",
                "sqlite (rusqlite 0.43, bundled)",
            ),
            Keyed::WithoutRowid => (
                "id BLOB NOT NULL PRIMARY KEY",
                " WITHOUT ROWID",
                "sqlite, WITHOUT ROWID",
            ),
        };
        let db = rusqlite::Connection::open(path).unwrap();
        db.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 16384;
             CREATE TABLE orders ({key}, accepted_at INTEGER NOT NULL,
                 customer_id TEXT NOT NULL, status INTEGER NOT NULL, snapshot BLOB NOT NULL){suffix};
             CREATE INDEX by_time ON orders (accepted_at, id);
             CREATE INDEX by_status ON orders (status, accepted_at, id);
             CREATE INDEX by_customer ON orders (customer_id, accepted_at, id);"
        ))
        .unwrap();
        Sqlite(db, name)
    }
}

#[derive(Clone, Copy)]
enum Keyed {
    RowidUniqueId,
    WithoutRowid,
}

impl Store for Sqlite {
    fn name(&self) -> &'static str {
        self.1
    }

    fn write(&mut self, batch: &[Row]) {
        let tx = self.0.transaction().unwrap();
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO orders (id, accepted_at, customer_id, status, snapshot)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (id) DO UPDATE SET status = excluded.status,
                         snapshot = excluded.snapshot",
                )
                .unwrap();
            for row in batch {
                upsert
                    .execute(params![
                        &row.id.to_be_bytes()[..],
                        row.accepted_at as i64,
                        row.customer,
                        row.status,
                        row.snapshot
                    ])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }

    fn get(&self, id: u128) -> Option<Vec<u8>> {
        let mut query = self
            .0
            .prepare_cached("SELECT snapshot FROM orders WHERE id = ?1")
            .unwrap();
        query
            .query_row([&id.to_be_bytes()[..]], |row| row.get(0))
            .ok()
    }

    fn list(&self, status: Option<u8>, customer: Option<&str>) -> Vec<u128> {
        // One statement per filter, so SQLite picks that filter's index.
        let (sql, filter) = match (status, customer) {
            (Some(status), _) => (
                "SELECT id FROM orders WHERE status = ?1
                 ORDER BY accepted_at DESC, id DESC LIMIT ?2",
                rusqlite::types::Value::Integer(status.into()),
            ),
            (None, Some(customer)) => (
                "SELECT id FROM orders WHERE customer_id = ?1
                 ORDER BY accepted_at DESC, id DESC LIMIT ?2",
                rusqlite::types::Value::Text(customer.to_string()),
            ),
            (None, None) => unreachable!("the benchmark always filters"),
        };
        let mut query = self.0.prepare_cached(sql).unwrap();
        query
            .query_map(params![filter, PAGE as i64], |row| {
                let id: Vec<u8> = row.get(0)?;
                Ok(u128::from_be_bytes(id.try_into().unwrap()))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

/// redb has no secondary indexes: the view keeps them as tables of its own.
const ORDERS: TableDefinition<u128, &[u8]> = TableDefinition::new("orders");
const BY_STATUS: TableDefinition<(u8, u64, u128), ()> = TableDefinition::new("by_status");
const BY_CUSTOMER: TableDefinition<(&str, u64, u128), ()> = TableDefinition::new("by_customer");

/// redb, with the last of every ten batches durable (like SQLite's WAL at `synchronous =
/// NORMAL`: a crash loses recent batches, never consistency).
struct Redb(redb::Database, usize);

impl Store for Redb {
    fn name(&self) -> &'static str {
        "redb 4"
    }

    fn write(&mut self, batch: &[Row]) {
        let mut tx = self.0.begin_write().unwrap();
        self.1 += 1;
        if !self.1.is_multiple_of(10) {
            tx.set_durability(redb::Durability::None).unwrap();
        }
        {
            let mut orders = tx.open_table(ORDERS).unwrap();
            let mut by_status = tx.open_table(BY_STATUS).unwrap();
            let mut by_customer = tx.open_table(BY_CUSTOMER).unwrap();
            for row in batch {
                // Value: status, then the snapshot; the old status is needed to move the row
                // in the status index.
                let mut value = Vec::with_capacity(1 + row.snapshot.len());
                value.push(row.status);
                value.extend_from_slice(&row.snapshot);
                let old = orders
                    .insert(row.id, value.as_slice())
                    .unwrap()
                    .map(|old| old.value()[0]);
                match old {
                    Some(old) => {
                        by_status.remove((old, row.accepted_at, row.id)).unwrap();
                    }
                    None => {
                        by_customer
                            .insert((row.customer.as_str(), row.accepted_at, row.id), ())
                            .unwrap();
                    }
                }
                by_status
                    .insert((row.status, row.accepted_at, row.id), ())
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }

    fn get(&self, id: u128) -> Option<Vec<u8>> {
        let tx = self.0.begin_read().unwrap();
        let orders = tx.open_table(ORDERS).unwrap();
        orders.get(id).unwrap().map(|v| v.value()[1..].to_vec())
    }

    fn list(&self, status: Option<u8>, customer: Option<&str>) -> Vec<u128> {
        let tx = self.0.begin_read().unwrap();
        match (status, customer) {
            (Some(status), _) => tx
                .open_table(BY_STATUS)
                .unwrap()
                .range((status, 0, 0)..=(status, u64::MAX, u128::MAX))
                .unwrap()
                .rev()
                .take(PAGE)
                .map(|e| e.unwrap().0.value().2)
                .collect(),
            (None, Some(customer)) => tx
                .open_table(BY_CUSTOMER)
                .unwrap()
                .range((customer, 0, 0)..=(customer, u64::MAX, u128::MAX))
                .unwrap()
                .rev()
                .take(PAGE)
                .map(|e| e.unwrap().0.value().2)
                .collect(),
            (None, None) => unreachable!("the benchmark always filters"),
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn measure(store: &mut dyn Store, n: usize) {
    let mut data = rows(n);
    let started = Instant::now();
    for batch in data.chunks(BATCH) {
        store.write(batch);
    }
    let pending = n as f64 / started.elapsed().as_secs_f64();
    for (i, row) in data.iter_mut().enumerate() {
        row.status = final_status(i);
    }
    let started = Instant::now();
    for batch in data.chunks(BATCH) {
        store.write(batch);
    }
    let finals = n as f64 / started.elapsed().as_secs_f64();

    let reads = 50_000.min(n);
    let started = Instant::now();
    for i in 0..reads {
        let row = &data[(i * 7_919) % n];
        assert!(store.get(row.id).is_some());
    }
    let read = started.elapsed() / reads as u32;

    let mut times = Vec::new();
    for i in 0..1_000 {
        let started = Instant::now();
        let page = if i % 2 == 0 {
            store.list(Some(3), None)
        } else {
            store.list(None, Some(&format!("customer-{}", i % CUSTOMERS as usize)))
        };
        times.push(started.elapsed());
        assert_eq!(page.len(), PAGE.min(n / 10));
    }
    times.sort();
    println!(
        "| {} | {:.0} | {:.0} | {:.1} | {:.2} / {:.2} |",
        store.name(),
        pending,
        finals,
        read.as_secs_f64() * 1e6,
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut n = 200_000;
    while let Some(arg) = args.next() {
        if arg == "--orders" {
            n = args
                .next()
                .and_then(|v| v.parse().ok())
                .expect("--orders N");
        }
    }
    println!("{n} orders, batches of {BATCH}, pages of {PAGE}");
    println!(
        "| store | PENDING rows/s | final rows/s | point read µs | filtered page p50 / p99 ms |"
    );
    println!("|---|---|---|---|---|");
    let dir = tempfile::tempdir().unwrap();
    measure(
        &mut Sqlite::open(&dir.path().join("view.sqlite"), Keyed::RowidUniqueId),
        n,
    );
    measure(
        &mut Sqlite::open(&dir.path().join("view-wr.sqlite"), Keyed::WithoutRowid),
        n,
    );
    measure(
        &mut Redb(
            redb::Database::create(dir.path().join("view.redb")).unwrap(),
            0,
        ),
        n,
    );
}
