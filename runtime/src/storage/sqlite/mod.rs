//! The embedded default: one SQLite file in WAL mode with `synchronous=FULL`.
//!
//! The tables are plain and documented in `docs/format.md`, so any language's
//! SQLite library can read them.

mod session;

use super::migrate::{MigrateError, Migration, migrate};
use super::{
    AdminStorage, Committed, History, HistoryStorage, Revision, Session, Storage, TransactionMeta, TransactionRange,
};
use crate::{Oid, StorageError, Tid};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use session::{SqliteSession, decode_oids, encode_oids};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// The layout version this code reads and writes (`pb_meta.format`).
/// Version 1 kept an index on `pb_object.tid` for polling; version 2 lists
/// each transaction's oids in `pb_transaction.oids` instead; version 3 keeps
/// each transaction's user, description and extension; version 4 can keep
/// history (`pb_object_revision`).
const FORMAT_VERSION: i64 = MIGRATIONS.len() as i64;

/// `pb_meta`, which records the layout version.
const META: &str = "
CREATE TABLE IF NOT EXISTS pb_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
) WITHOUT ROWID";

/// Migration `i` takes a database from version `i` to `i + 1`
/// (`storage/migrate.rs` runs them); only ever appended.
const MIGRATIONS: &[Migration<fn()>] = &[
    Migration {
        sql: "
CREATE TABLE pb_transaction (
    tid          INTEGER PRIMARY KEY NOT NULL,
    committed_at INTEGER NOT NULL
);
CREATE TABLE pb_object (
    oid    INTEGER PRIMARY KEY NOT NULL,
    tid    INTEGER NOT NULL,
    record BLOB NOT NULL
);
CREATE INDEX pb_object_tid ON pb_object (tid);
CREATE TABLE pb_schema (
    file   TEXT PRIMARY KEY NOT NULL,
    source TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO pb_meta (key, value) VALUES ('next_oid', 1);
",
        backfill: None,
    },
    Migration {
        // The tid index gives way to per-transaction oid lists. Transactions
        // committed before have none, and polls across them scan.
        sql: "
ALTER TABLE pb_transaction ADD COLUMN oids BLOB;
DROP INDEX IF EXISTS pb_object_tid;
",
        backfill: None,
    },
    Migration {
        // Transaction metadata; earlier transactions have none.
        sql: "
ALTER TABLE pb_transaction ADD COLUMN user_name TEXT NOT NULL DEFAULT '';
ALTER TABLE pb_transaction ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE pb_transaction ADD COLUMN extension BLOB;
",
        backfill: None,
    },
    Migration {
        // Replaced states, kept by history-preserving databases, in key order:
        // an object's states side by side.
        sql: "
CREATE TABLE pb_object_revision (
    oid     INTEGER NOT NULL,
    tid     INTEGER NOT NULL,
    end_tid INTEGER NOT NULL,
    record  BLOB NOT NULL,
    PRIMARY KEY (oid, tid)
) WITHOUT ROWID;
INSERT INTO pb_meta (key, value) VALUES ('history', 0);
",
        backfill: None,
    },
];

/// A SQLite database file.
#[derive(Debug)]
pub struct SqliteStorage {
    path: PathBuf,
    /// A connection of its own for oid reservations, which must not wait on
    /// any session's read snapshot.
    allocator: Mutex<Connection>,
    /// Whether every connection is opened read-only.
    read_only: bool,
    /// Whether replaced states are kept.
    history: History,
    /// `pb_meta.database_id`, if the database has one (one opened only
    /// read-only since before ids were kept may not).
    database_id: Option<u64>,
}

/// Opens a SQLite database with choices beyond [`SqliteStorage::open`].
#[derive(Debug, Clone)]
pub struct SqliteBuilder {
    path: PathBuf,
    history: Option<History>,
    read_only: bool,
}

impl SqliteBuilder {
    /// Creates a new database keeping history or not, and requires an
    /// existing one to have been created so. Without it, a new database is
    /// history-free and an existing one opens as it is.
    pub fn history(mut self, history: History) -> Self {
        self.history = Some(history);
        self
    }

    /// Opens an existing database read-only (see [`SqliteStorage::open_read_only`]).
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Opens the database.
    pub fn open(self) -> Result<SqliteStorage, StorageError> {
        let path = self.path;
        let name = path.display().to_string();
        let (conn, history) = if self.read_only {
            let mut conn = open_connection(&path, true)?;
            super::migrate::require_current(&mut conn, FORMAT_VERSION, &name)?;
            let history = history_of(&conn)?;
            (conn, history)
        } else {
            let mut conn = open_connection(&path, false)?;
            let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
            let found = migrate(&mut tx, META, MIGRATIONS, |_, _| Ok(())).map_err(|e| match e {
                MigrateError::Db(e) => backend(e),
                MigrateError::TooNew(v) => crate::storage::layout::too_new(&name, v, FORMAT_VERSION),
            })?;
            if found == 0 && self.history == Some(History::Preserving) {
                tx.execute_batch("UPDATE pb_meta SET value = 1 WHERE key = 'history'").map_err(backend)?;
            }
            // Not a migration: a key older versions ignore, added by the
            // first writable open of any version.
            tx.execute("INSERT OR IGNORE INTO pb_meta (key, value) VALUES ('database_id', random())", [])
                .map_err(backend)?;
            let history = history_of(&tx)?;
            tx.commit().map_err(backend)?;
            (conn, history)
        };
        if let Some(wanted) = self.history.filter(|h| *h != history) {
            return Err(StorageError::Config(format!(
                "{name} was created {}, not {}: a database keeps the choice it was created with",
                crate::storage::sql::describe_history(history),
                crate::storage::sql::describe_history(wanted)
            )));
        }
        let database_id = conn
            .query_row("SELECT value FROM pb_meta WHERE key = 'database_id'", [], |r| r.get::<_, i64>(0))
            .optional()
            .map_err(backend)?
            .map(|id| id as u64);
        Ok(SqliteStorage { path, allocator: Mutex::new(conn), read_only: self.read_only, history, database_id })
    }
}

/// The tid a pack kept everything from (`pb_meta.packed_tid`, absent before the first pack).
pub(super) fn packed_tid(conn: &Connection) -> Result<Tid, StorageError> {
    let tid: Option<i64> = conn
        .query_row("SELECT value FROM pb_meta WHERE key = 'packed_tid'", [], |r| r.get(0))
        .optional()
        .map_err(backend)?;
    Ok(Tid(tid.unwrap_or(0) as u64))
}

/// The history mode `pb_meta` records.
fn history_of(conn: &Connection) -> Result<History, StorageError> {
    let value: i64 =
        conn.query_row("SELECT value FROM pb_meta WHERE key = 'history'", [], |r| r.get(0)).map_err(backend)?;
    Ok(if value == 0 { History::Free } else { History::Preserving })
}

fn backend(e: rusqlite::Error) -> StorageError {
    StorageError::Backend { backend: "sqlite", source: Box::new(e) }
}

fn open_connection(path: &Path, read_only: bool) -> Result<Connection, StorageError> {
    let conn = if read_only {
        // SQLite itself refuses writes on such a connection; the file must exist.
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(backend)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(backend)?;
        conn
    } else {
        let conn = Connection::open(path).map_err(backend)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(backend)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(backend)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(backend)?;
        conn
    };
    // 32 MiB of page cache per connection (SQLite's default is 2 MiB): the
    // B-tree pages of a few hundred thousand objects stay in memory.
    conn.pragma_update(None, "cache_size", -32768).map_err(backend)?;
    Ok(conn)
}

impl SqliteStorage {
    /// The layout version this program reads and writes (`pb_meta.format`,
    /// docs/format.md); older databases are migrated up to it on open.
    pub const FORMAT_VERSION: i64 = FORMAT_VERSION;

    /// Opens the database file at `path`, creating it and its tables if needed.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        Self::builder(path).open()
    }

    /// Opens an existing database file at `path` read-only: nothing is
    /// created or migrated, every write is refused, and other processes may
    /// write meanwhile (each transaction still sees one snapshot).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        Self::builder(path).read_only().open()
    }

    /// A builder for the database file at `path`, to choose history or
    /// read-only access.
    pub fn builder(path: impl AsRef<Path>) -> SqliteBuilder {
        SqliteBuilder { path: path.as_ref().to_path_buf(), history: None, read_only: false }
    }

    fn refuse_writes(&self) -> Result<(), StorageError> {
        if self.read_only { Err(StorageError::ReadOnly { backend: "sqlite" }) } else { Ok(()) }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Storage for SqliteStorage {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn open_session(&self) -> Result<Box<dyn Session>, StorageError> {
        Ok(Box::new(SqliteSession::open(&self.path, self.read_only, self.history, None)?))
    }

    fn tid_before(&self, time: std::time::SystemTime) -> Result<Option<Tid>, StorageError> {
        let conn = self.allocator.lock().unwrap_or_else(|e| e.into_inner());
        let micros = super::commit::micros(time);
        let tid: Option<i64> = conn
            .query_row("SELECT max(tid) FROM pb_transaction WHERE committed_at < ?1", [micros], |r| r.get(0))
            .map_err(backend)?;
        Ok(tid.map(|t| Tid(t as u64)))
    }

    fn new_oids(&self, count: u64) -> Result<std::ops::Range<u64>, StorageError> {
        self.refuse_writes()?;
        // The connection holds no state a panic could corrupt; reuse it.
        let mut conn = self.allocator.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
        let next: i64 =
            tx.query_row("SELECT value FROM pb_meta WHERE key = 'next_oid'", [], |r| r.get(0)).map_err(backend)?;
        let range = crate::storage::oids::oid_range("sqlite", next.max(0) as u64, count)?;
        if count > 0 {
            // Below 2^63, so stored as it is.
            tx.execute("UPDATE pb_meta SET value = ?1 WHERE key = 'next_oid'", [range.end as i64]).map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(range)
    }

    fn swap_schema(&self, name: &str, expected: Option<&str>, source: &str) -> Result<bool, StorageError> {
        self.refuse_writes()?;
        let conn = self.allocator.lock().unwrap_or_else(|e| e.into_inner());
        // One statement each: SQLite runs it under the database's write lock.
        let changed = match expected {
            None => conn.execute(
                "INSERT INTO pb_schema (file, source) VALUES (?1, ?2) ON CONFLICT (file) DO NOTHING",
                params![name, source],
            ),
            Some(old) => conn.execute(
                "UPDATE pb_schema SET source = ?2 WHERE file = ?1 AND source = ?3",
                params![name, source, old],
            ),
        };
        Ok(changed.map_err(backend)? == 1)
    }

    fn delete_schemas(&self, names: &[String]) -> Result<(), StorageError> {
        self.refuse_writes()?;
        let mut conn = self.allocator.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
        {
            let mut delete = tx.prepare("DELETE FROM pb_schema WHERE file = ?1").map_err(backend)?;
            for name in names {
                delete.execute([name]).map_err(backend)?;
            }
        }
        tx.commit().map_err(backend)
    }

    fn schemas(&self) -> Result<Vec<(String, String)>, StorageError> {
        let conn = self.allocator.lock().unwrap_or_else(|e| e.into_inner());
        let mut stmt = conn.prepare("SELECT file, source FROM pb_schema ORDER BY file").map_err(backend)?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }

    fn transactions(&self, range: TransactionRange) -> Result<Vec<Committed>, StorageError> {
        // Every tid is below 2^63: none comes after one at or above it.
        let Some(after) = crate::storage::sql::sql_int(range.after.0) else { return Ok(Vec::new()) };
        let until = range.until.map_or(i64::MAX, |u| crate::storage::sql::sql_bound(u.0));
        let mut conn = self.allocator.lock().unwrap_or_else(|e| e.into_inner());
        // One read transaction: the list and the records are of one snapshot.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred).map_err(backend)?;
        let order = if range.newest_first { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT tid, committed_at, oids, user_name, description, extension FROM pb_transaction WHERE tid > ?1 AND tid <= ?3 ORDER BY tid {order} LIMIT ?2"
        );
        let mut list = tx.prepare(&sql).map_err(backend)?;
        let limit = i64::try_from(range.limit).unwrap_or(i64::MAX);
        let rows = list
            .query_map(params![after, limit, until], |r| {
                let meta = (r.get::<_, String>(3)?, r.get::<_, String>(4)?, r.get::<_, Option<Vec<u8>>>(5)?);
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, Option<Vec<u8>>>(2)?, meta))
            })
            .map_err(backend)?;
        // The state as the transaction wrote it: current, or kept as history.
        let mut current = tx
            .prepare(
                "SELECT record FROM pb_object WHERE oid = ?1 AND tid = ?2
                 UNION ALL SELECT record FROM pb_object_revision WHERE oid = ?1 AND tid = ?2",
            )
            .map_err(backend)?;
        let mut out = Vec::new();
        for row in rows {
            let (tid, micros, oids, (user, description, extension)) = row.map_err(backend)?;
            let extension =
                extension.as_deref().map(TransactionMeta::decode_extension).transpose()?.unwrap_or_default();
            let meta = TransactionMeta { user, description, extension };
            let oids = oids.as_deref().and_then(decode_oids).map(|mut oids| {
                oids.sort_unstable();
                oids.into_iter().map(Oid).collect::<Vec<_>>()
            });
            let mut records = Vec::new();
            if range.records {
                for oid in oids.iter().flatten() {
                    let record: Option<Vec<u8>> =
                        current.query_row([oid.0 as i64, tid], |r| r.get(0)).optional().map_err(backend)?;
                    records.extend(record.map(|r| (*oid, r)));
                }
            }
            out.push(Committed {
                tid: Tid(tid as u64),
                time: crate::storage::layout::time_from_micros(micros),
                meta,
                oids,
                records,
            });
        }
        Ok(out)
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn history(&self) -> Option<&dyn HistoryStorage> {
        (self.history == History::Preserving).then_some(self)
    }

    fn admin(&self) -> Option<&dyn AdminStorage> {
        Some(self)
    }
}

impl HistoryStorage for SqliteStorage {
    fn states(&self, oid: Oid, limit: usize) -> Result<Vec<Revision>, StorageError> {
        let Some(oid) = crate::storage::sql::sql_int(oid.0) else { return Ok(Vec::new()) };
        let conn = self.allocator.lock().unwrap_or_else(|e| e.into_inner());
        // The current state and the replaced ones (none when history-free).
        let mut stmt = conn
            .prepare_cached(
                "SELECT h.tid, length(h.record), t.committed_at, t.user_name, t.description, t.extension
                 FROM (SELECT tid, record FROM pb_object WHERE oid = ?1
                       UNION ALL SELECT tid, record FROM pb_object_revision WHERE oid = ?1) AS h
                 LEFT JOIN pb_transaction AS t ON t.tid = h.tid ORDER BY h.tid DESC LIMIT ?2",
            )
            .map_err(backend)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![oid, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<Vec<u8>>>(5)?,
                ))
            })
            .map_err(backend)?;
        let mut out = Vec::new();
        for row in rows {
            let (tid, size, micros, user, description, extension) = row.map_err(backend)?;
            let extension =
                extension.as_deref().map(TransactionMeta::decode_extension).transpose()?.unwrap_or_default();
            out.push(Revision {
                tid: Tid(tid as u64),
                time: crate::storage::layout::time_from_micros(micros.unwrap_or(0)),
                meta: TransactionMeta {
                    user: user.unwrap_or_default(),
                    description: description.unwrap_or_default(),
                    extension,
                },
                size: size as usize,
            });
        }
        Ok(out)
    }

    fn open_session_at(&self, at: Tid) -> Result<Box<dyn Session>, StorageError> {
        if self.history != History::Preserving {
            return Err(StorageError::NoHistory { backend: "sqlite" });
        }
        let last: i64 = {
            let conn = self.allocator.lock().unwrap_or_else(|e| e.into_inner());
            conn.query_row("SELECT coalesce(max(tid), 0) FROM pb_transaction", [], |r| r.get(0)).map_err(backend)?
        };
        let at = at.min(Tid(last as u64));
        Ok(super::past::Past::wrap("sqlite", SqliteSession::open(&self.path, true, self.history, Some(at))?))
    }

    fn packed_tid(&self) -> Result<Tid, StorageError> {
        let conn = self.allocator.lock().unwrap_or_else(|e| e.into_inner());
        packed_tid(&conn)
    }
}

impl AdminStorage for SqliteStorage {
    fn restore(&self, txn: &Committed, removed: &[Oid]) -> Result<(), StorageError> {
        self.refuse_writes()?;
        // Every oid and the tid are below 2^63, so the casts below keep them.
        let next = crate::storage::oids::restored_next_oid("sqlite", txn, removed)? as i64;
        let mut conn = self.allocator.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
        let last: i64 =
            tx.query_row("SELECT coalesce(max(tid), 0) FROM pb_transaction", [], |r| r.get(0)).map_err(backend)?;
        let tid = txn.tid.0 as i64;
        if tid <= last {
            return Err(StorageError::Config(format!("cannot copy in transaction {tid}: this database has {last}")));
        }
        {
            let history = self.history == History::Preserving;
            let mut keep = tx
                .prepare(
                    "INSERT INTO pb_object_revision (oid, tid, end_tid, record)
                     SELECT oid, tid, ?2, record FROM pb_object WHERE oid = ?1",
                )
                .map_err(backend)?;
            let mut put = tx
                .prepare(
                    "INSERT INTO pb_object (oid, tid, record) VALUES (?1, ?2, ?3)
                     ON CONFLICT (oid) DO UPDATE SET tid = excluded.tid, record = excluded.record",
                )
                .map_err(backend)?;
            let mut delete = tx.prepare("DELETE FROM pb_object WHERE oid = ?1").map_err(backend)?;
            for (oid, record) in &txn.records {
                if history {
                    keep.execute(params![oid.0 as i64, tid]).map_err(backend)?;
                }
                put.execute(params![oid.0 as i64, tid, record]).map_err(backend)?;
            }
            for oid in removed {
                if history {
                    keep.execute(params![oid.0 as i64, tid]).map_err(backend)?;
                }
                delete.execute([oid.0 as i64]).map_err(backend)?;
            }
        }
        let oids = encode_oids(txn.records.iter().map(|r| r.0.0).chain(removed.iter().map(|o| o.0)));
        tx.execute(
            "INSERT INTO pb_transaction (tid, committed_at, oids, user_name, description, extension)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                tid,
                super::commit::micros(txn.time),
                oids,
                txn.meta.user,
                txn.meta.description,
                txn.meta.encode_extension()
            ],
        )
        .map_err(backend)?;
        tx.execute("UPDATE pb_meta SET value = max(value, ?1) WHERE key = 'next_oid'", [next]).map_err(backend)?;
        tx.commit().map_err(backend)
    }

    fn database_id(&self) -> Result<Option<u64>, StorageError> {
        Ok(self.database_id)
    }

    fn collect_garbage(&self, dry_run: bool) -> Result<Vec<Oid>, StorageError> {
        if !dry_run {
            self.refuse_writes()?;
        }
        let mut conn = self.allocator.lock().unwrap_or_else(|e| e.into_inner());
        // The write lock keeps commits out while the graph is walked; a
        // read-only report walks one snapshot instead.
        let behavior = if self.read_only { TransactionBehavior::Deferred } else { TransactionBehavior::Immediate };
        let tx = conn.transaction_with_behavior(behavior).map_err(backend)?;
        super::gc::collect(&mut SqliteGc { tx: Some(tx), history: self.history }, dry_run)
    }

    fn pack(&self, before: Tid, batch: usize) -> Result<u64, StorageError> {
        self.refuse_writes()?;
        if self.history != History::Preserving {
            return Ok(0);
        }
        let conn = self.allocator.lock().unwrap_or_else(|e| e.into_inner());
        // A tid not committed yet packs up to the newest one.
        let last: i64 =
            conn.query_row("SELECT coalesce(max(tid), 0) FROM pb_transaction", [], |r| r.get(0)).map_err(backend)?;
        let before = crate::storage::sql::sql_bound(before.0).min(last);
        // First the promise, then the deletions it allows: a pack killed at
        // any point leaves every state a session from `packed_tid` on needs.
        conn.execute(
            "INSERT INTO pb_meta (key, value) VALUES ('packed_tid', ?1)
             ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
            [before],
        )
        .map_err(backend)?;
        let batch = i64::try_from(batch.max(1)).unwrap_or(i64::MAX);
        let mut removed = 0;
        // A range of about `batch` oids at a time, in key order: each batch
        // reads and deletes neighbouring rows.
        let mut low = -1i64;
        loop {
            let high: Option<i64> = conn
                .query_row(
                    "SELECT oid FROM pb_object_revision WHERE oid > ?1 ORDER BY oid, tid LIMIT 1 OFFSET ?2",
                    params![low, batch],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            let high = high.unwrap_or(i64::MAX);
            removed += conn
                .execute(
                    "DELETE FROM pb_object_revision WHERE oid > ?1 AND oid <= ?2 AND end_tid <= ?3",
                    params![low, high, before],
                )
                .map_err(backend)? as u64;
            if high == i64::MAX {
                break;
            }
            low = high;
        }
        // Oid lists up to the packed tid serve neither undo nor a poll any more.
        let mut low = 0i64;
        while low < before {
            conn.execute(
                "UPDATE pb_transaction SET oids = NULL WHERE tid > ?1 AND tid <= min(?1 + ?2, ?3)",
                params![low, batch, before],
            )
            .map_err(backend)?;
            low += batch;
        }
        Ok(removed)
    }
}

/// One garbage collection inside a transaction on the allocator's connection.
struct SqliteGc<'c> {
    tx: Option<rusqlite::Transaction<'c>>,
    history: History,
}

impl SqliteGc<'_> {
    fn tx(&self) -> &rusqlite::Transaction<'_> {
        self.tx.as_ref().expect("used before commit or rollback")
    }
}

impl super::gc::GcTx for SqliteGc<'_> {
    fn current(&mut self) -> Result<Vec<(Oid, Vec<u8>)>, StorageError> {
        let mut stmt = self.tx().prepare("SELECT oid, record FROM pb_object").map_err(backend)?;
        let rows =
            stmt.query_map([], |r| Ok((Oid(r.get::<_, i64>(0)? as u64), r.get::<_, Vec<u8>>(1)?))).map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }

    fn remove(&mut self, dead: &[Oid], meta: &TransactionMeta) -> Result<(), StorageError> {
        let tx = self.tx();
        if self.history == History::Preserving {
            // The removed states stay in the history, replaced by this
            // transaction, so the database as it was before still loads them.
            let tid: i64 = tx
                .query_row("SELECT coalesce(max(tid), 0) + 1 FROM pb_transaction", [], |r| r.get(0))
                .map_err(backend)?;
            let now = super::commit::micros(std::time::SystemTime::now());
            tx.execute(
                "INSERT INTO pb_transaction (tid, committed_at, oids, description) VALUES (?1, ?2, ?3, ?4)",
                params![tid, now, encode_oids(dead.iter().map(|o| o.0)), meta.description],
            )
            .map_err(backend)?;
            let mut keep = tx
                .prepare(
                    "INSERT INTO pb_object_revision (oid, tid, end_tid, record)
                     SELECT oid, tid, ?2, record FROM pb_object WHERE oid = ?1",
                )
                .map_err(backend)?;
            for oid in dead {
                keep.execute(params![oid.0 as i64, tid]).map_err(backend)?;
            }
        }
        let mut delete = tx.prepare("DELETE FROM pb_object WHERE oid = ?1").map_err(backend)?;
        for oid in dead {
            delete.execute([oid.0 as i64]).map_err(backend)?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        self.tx.take().map_or(Ok(()), |tx| tx.commit().map_err(backend))
    }

    fn rollback(&mut self) {
        // Dropping the transaction rolls it back.
        self.tx = None;
    }
}
