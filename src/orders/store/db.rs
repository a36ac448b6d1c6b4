//! The status view's rows on local disk: one SQLite file (WAL, `synchronous = NORMAL`), an
//! `orders` row per order with its snapshot and the columns the list filters on, and the
//! next offset of every topic partition the rows include, written in the same transaction.
//! A crash loses at most the last batches, rows and offsets together; the projector reads
//! them again. (`benches/store.rs` chose SQLite over redb; docs/design.md has the numbers.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params, params_from_iter, types::Value};
use uuid::Uuid;

use super::ListQuery;
use crate::orders::status::{OrderSnapshot, OrderStatus};

/// Bumped when the layout changes; a store of another version is rebuilt.
const SCHEMA_VERSION: &str = "3";

const SCHEMA: &str = "
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE positions (topic TEXT NOT NULL, partition INTEGER NOT NULL,
        next INTEGER NOT NULL, PRIMARY KEY (topic, partition)) WITHOUT ROWID;
    CREATE TABLE orders (id BLOB NOT NULL UNIQUE, accepted_at INTEGER NOT NULL,
        customer_id TEXT NOT NULL, status TEXT NOT NULL, final INTEGER NOT NULL,
        updated_at INTEGER NOT NULL, changes INTEGER NOT NULL,
        cancel_requested INTEGER NOT NULL, snapshot BLOB NOT NULL);
";

/// The indexes the list filters use. A rebuild writes its rows without them and builds
/// them once it has caught up: each row then goes into two B-trees instead of five, and
/// building an index from the finished table sorts once.
const LIST_INDEXES: &str = "
    CREATE INDEX IF NOT EXISTS orders_by_time ON orders (accepted_at, id);
    CREATE INDEX IF NOT EXISTS orders_by_status ON orders (status, accepted_at, id);
    CREATE INDEX IF NOT EXISTS orders_by_customer ON orders (customer_id, accepted_at, id);
";
const LIST_INDEX_NAMES: [&str; 3] = ["orders_by_time", "orders_by_status", "orders_by_customer"];

/// One order's row, encoded off the lock.
pub struct Row {
    pub id: Uuid,
    pub accepted_at: i64,
    pub customer_id: String,
    pub status: OrderStatus,
    pub updated_at: i64,
    /// Entries in the history: a row is never replaced by one with fewer.
    pub changes: i64,
    pub cancel_requested: bool,
    pub snapshot: Vec<u8>,
}

impl Row {
    /// The row of `snapshot`; `encoded`, when given, is its JSON (stored as it is).
    pub fn of(snapshot: &OrderSnapshot, encoded: Option<&[u8]>) -> Row {
        Row {
            id: snapshot.order.order_id,
            accepted_at: nanos(snapshot.order.accepted_at),
            customer_id: snapshot.order.customer_id.clone(),
            status: snapshot.status,
            updated_at: snapshot.history.last().map_or(0, |change| nanos(change.at)),
            changes: snapshot.history.len() as i64,
            cancel_requested: snapshot.cancel_requested,
            // A snapshot always encodes.
            snapshot: match encoded {
                Some(json) => json.to_vec(),
                None => serde_json::to_vec(snapshot).unwrap_or_default(),
            },
        }
    }
}

fn nanos(at: DateTime<Utc>) -> i64 {
    at.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Where an order stands, as far as applying a change to it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub status: OrderStatus,
    /// Entries in its history.
    pub changes: usize,
    pub cancel_requested: bool,
}

impl Summary {
    /// An order exactly as it was placed: `PENDING`, one change, no cancel request.
    pub const PLACED: Summary = Summary {
        status: OrderStatus::Pending,
        changes: 1,
        cancel_requested: false,
    };

    pub fn of(snapshot: &OrderSnapshot) -> Summary {
        Summary {
            status: snapshot.status,
            changes: snapshot.history.len(),
            cancel_requested: snapshot.cancel_requested,
        }
    }
}

/// Why the view starts from the beginning of the topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildReason {
    /// No store at the path.
    Missing,
    /// The file could not be opened or read, or has another layout.
    Unreadable,
    /// The store was written from other topics or another cluster.
    OtherSource,
    /// Its offsets are no longer in the topics (recreated, or past retention).
    OffsetsGone,
}

impl RebuildReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RebuildReason::Missing => "missing",
            RebuildReason::Unreadable => "unreadable",
            RebuildReason::OtherSource => "other_source",
            RebuildReason::OffsetsGone => "offsets_gone",
        }
    }
}

/// The file and its writing connection.
pub struct Db {
    conn: Connection,
    /// Held open for the process's life: the advisory lock that keeps a second instance off.
    _lock: std::fs::File,
}

/// WAL pages at which the writer checkpoints by itself: a backstop, as the store checkpoints
/// beside the writer (`OrderStore::checkpoint_soon`) long before.
const WRITER_AUTOCHECKPOINT: u32 = 65_536;

/// [`connect`] for the writer.
fn connect_writer(path: &Path, cache_kib: u64) -> rusqlite::Result<Connection> {
    let conn = connect(path, cache_kib)?;
    conn.execute_batch(&format!(
        "PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT};"
    ))?;
    Ok(conn)
}

/// Opens a connection with the view's settings.
pub(super) fn connect(path: &Path, cache_kib: u64) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         PRAGMA cache_size = -{cache_kib}; PRAGMA wal_autocheckpoint = 16384;"
    ))?;
    Ok(conn)
}

impl Db {
    /// Opens the store at `path`, creating or recreating it when it is missing or unreadable
    /// (and saying why).
    pub fn open(path: &Path, cache_kib: u64) -> anyhow::Result<(Db, Option<RebuildReason>)> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the status view's folder {}", dir.display()))?;
        }
        let lock = lock(path)?;
        let reason = match path.exists().then(|| Self::check(path, cache_kib)) {
            None => RebuildReason::Missing,
            Some(Ok(conn)) => {
                return Ok((Db { conn, _lock: lock }, None));
            }
            Some(Err(error)) => {
                tracing::warn!(path = %path.display(), error = %format!("{error:#}"),
                    "status view store unreadable; rebuilding it from the topics");
                RebuildReason::Unreadable
            }
        };
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("removing {}", file.display()));
                }
                _ => {}
            }
        }
        let conn = connect_writer(path, cache_kib)?;
        conn.execute_batch(SCHEMA)?;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema', ?1)",
            [SCHEMA_VERSION],
        )?;
        Ok((Db { conn, _lock: lock }, Some(reason)))
    }

    /// A connection to an existing store of this layout, checked by reading it.
    fn check(path: &Path, cache_kib: u64) -> anyhow::Result<Connection> {
        let conn = connect_writer(path, cache_kib)?;
        let version: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .optional()?;
        anyhow::ensure!(
            version.as_deref() == Some(SCHEMA_VERSION),
            "layout {version:?}, expected {SCHEMA_VERSION}"
        );
        conn.query_row("SELECT count(*) FROM positions", [], |r| r.get::<_, i64>(0))?;
        Ok(conn)
    }

    /// The source the store was written from (topics and cluster), if recorded.
    pub fn source(&self) -> rusqlite::Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = 'source'", [], |r| {
                r.get(0)
            })
            .optional()
    }

    /// Empties the store for a rebuild from `source` (without the list indexes: see
    /// [`LIST_INDEXES`]).
    pub fn reset(&mut self, source: &str) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        for name in LIST_INDEX_NAMES {
            tx.execute_batch(&format!("DROP INDEX IF EXISTS {name}"))?;
        }
        tx.execute_batch("DELETE FROM orders; DELETE FROM positions;")?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('source', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [source],
        )?;
        tx.commit()
    }

    /// Whether the list indexes are there (a rebuild that has not caught up yet has none).
    pub fn has_list_indexes(&self) -> rusqlite::Result<bool> {
        let present: i64 = self.conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN (?1, ?2, ?3)",
            LIST_INDEX_NAMES,
            |r| r.get(0),
        )?;
        Ok(present == LIST_INDEX_NAMES.len() as i64)
    }

    /// Builds the list indexes that are missing.
    pub fn create_list_indexes(&mut self) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute_batch(LIST_INDEXES)?;
        tx.commit()
    }

    /// The next offset of every partition the rows include.
    pub fn positions(&self) -> rusqlite::Result<HashMap<(String, i32), i64>> {
        let mut query = self
            .conn
            .prepare("SELECT topic, partition, next FROM positions")?;
        let rows = query.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?;
        rows.collect()
    }

    /// Calls `f` with the id of every order held.
    pub fn each_id(&self, mut f: impl FnMut(Uuid)) -> rusqlite::Result<()> {
        let mut query = self.conn.prepare("SELECT id FROM orders")?;
        let mut rows = query.query([])?;
        while let Some(row) = rows.next()? {
            if let Ok(id) = Uuid::from_slice(row.get_ref(0)?.as_blob()?) {
                f(id);
            }
        }
        Ok(())
    }

    /// Calls `f` with the id of every order held as more than just placed (see
    /// [`Summary::PLACED`]): every one not `PENDING` (read from the status index), and the
    /// `PENDING` ones with a cancel request or more than one change.
    pub fn each_advanced_id(&self, mut f: impl FnMut(Uuid)) -> rusqlite::Result<()> {
        let mut query = self.conn.prepare(
            "SELECT id FROM orders WHERE status <> 'PENDING'
             UNION ALL
             SELECT id FROM orders WHERE status = 'PENDING'
                 AND (changes > 1 OR cancel_requested <> 0)",
        )?;
        let mut rows = query.query([])?;
        while let Some(row) = rows.next()? {
            if let Ok(id) = Uuid::from_slice(row.get_ref(0)?.as_blob()?) {
                f(id);
            }
        }
        Ok(())
    }

    /// Orders held.
    pub fn count(&self) -> rusqlite::Result<usize> {
        self.conn
            .query_row("SELECT count(*) FROM orders", [], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
    }

    /// Writes rows and the offsets they include in one transaction.
    pub fn write(
        &mut self,
        rows: &[Row],
        positions: &[((String, i32), i64)],
    ) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO orders
                     (id, accepted_at, customer_id, status, final, updated_at, changes,
                      cancel_requested, snapshot)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (id) DO UPDATE SET status = excluded.status,
                     final = excluded.final, updated_at = excluded.updated_at,
                     changes = excluded.changes,
                     cancel_requested = excluded.cancel_requested,
                     snapshot = excluded.snapshot
                 WHERE excluded.changes >= orders.changes",
            )?;
            for row in rows {
                upsert.execute(params![
                    row.id.as_bytes(),
                    row.accepted_at,
                    row.customer_id,
                    row.status.as_str(),
                    row.status.is_final(),
                    row.updated_at,
                    row.changes,
                    row.cancel_requested,
                    row.snapshot,
                ])?;
            }
            let mut position = tx.prepare_cached(
                "INSERT INTO positions (topic, partition, next) VALUES (?1, ?2, ?3)
                 ON CONFLICT (topic, partition) DO UPDATE SET next = excluded.next",
            )?;
            for ((topic, partition), next) in positions {
                position.execute(params![topic, partition, next])?;
            }
        }
        tx.commit()
    }

    /// Removes final orders whose last change is older than `before`; returns how many.
    pub fn remove_final_before(&mut self, before: DateTime<Utc>) -> rusqlite::Result<usize> {
        self.conn.execute(
            "DELETE FROM orders WHERE final = 1 AND updated_at < ?1",
            [nanos(before)],
        )
    }
}

/// Takes the advisory lock beside the store, so two instances never share one.
fn lock(path: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let lock_path = PathBuf::from(format!("{}.lock", path.display()));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    // SAFETY: flock on a descriptor this function owns.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    anyhow::ensure!(
        locked,
        "the status view store {} is in use by another process (each instance needs its own \
         status_view.path)",
        path.display()
    );
    Ok(file)
}

/// Reads, on a reader connection.
pub struct Reads;

impl Reads {
    pub fn get(conn: &Connection, id: &Uuid) -> anyhow::Result<Option<OrderSnapshot>> {
        let bytes: Option<Vec<u8>> = conn
            .prepare_cached("SELECT snapshot FROM orders WHERE id = ?1")?
            .query_row([id.as_bytes()], |r| r.get(0))
            .optional()?;
        bytes
            .map(|b| serde_json::from_slice(&b).context("decoding a stored snapshot"))
            .transpose()
    }

    /// Whether the store holds the order (from the id's index alone).
    pub fn holds(conn: &Connection, id: &Uuid) -> anyhow::Result<Option<()>> {
        Ok(conn
            .prepare_cached("SELECT 1 FROM orders WHERE id = ?1")?
            .query_row([id.as_bytes()], |_| Ok(()))
            .optional()?)
    }

    /// The columns that decide how a change applies, without decoding the snapshot.
    pub fn summary(conn: &Connection, id: &Uuid) -> anyhow::Result<Option<Summary>> {
        let row: Option<(String, i64, bool)> = conn
            .prepare_cached("SELECT status, changes, cancel_requested FROM orders WHERE id = ?1")?
            .query_row([id.as_bytes()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        Ok(row.and_then(|(status, changes, cancel_requested)| {
            Some(Summary {
                status: OrderStatus::parse(&status)?,
                changes: changes as usize,
                cancel_requested,
            })
        }))
    }

    /// A page newest first; one more row than the limit tells that a next page exists.
    pub fn list(conn: &Connection, query: &ListQuery) -> anyhow::Result<Vec<OrderSnapshot>> {
        let mut sql = String::from("SELECT snapshot FROM orders WHERE 1 = 1");
        let mut values: Vec<Value> = Vec::new();
        if let Some(status) = query.status {
            sql.push_str(" AND status = ?");
            values.push(Value::Text(status.as_str().into()));
        }
        if let Some(customer) = &query.customer_id {
            sql.push_str(" AND customer_id = ?");
            values.push(Value::Text(customer.clone()));
        }
        if let Some(from) = query.from {
            sql.push_str(" AND accepted_at >= ?");
            values.push(Value::Integer(nanos(from)));
        }
        if let Some(to) = query.to {
            sql.push_str(" AND accepted_at < ?");
            values.push(Value::Integer(nanos(to)));
        }
        if let Some((at, id)) = query.cursor {
            sql.push_str(" AND (accepted_at, id) < (?, ?)");
            values.push(Value::Integer(nanos(at)));
            values.push(Value::Blob(id.as_bytes().to_vec()));
        }
        sql.push_str(" ORDER BY accepted_at DESC, id DESC LIMIT ?");
        values.push(Value::Integer(query.limit as i64 + 1));
        let mut statement = conn.prepare_cached(&sql)?;
        let rows = statement.query_map(params_from_iter(values), |r| r.get::<_, Vec<u8>>(0))?;
        rows.map(|bytes| serde_json::from_slice(&bytes?).context("decoding a stored snapshot"))
            .collect()
    }
}
