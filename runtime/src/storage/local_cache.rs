//! The optional local cache file: an SQLite file of records a process
//! loaded, so that a restarted process starts warm. The object store keeps
//! one in its `cache-dir`, a PostgreSQL or remote client (its state cache)
//! at the path it is given; both have the same layout.
//!
//! A record is immutable once committed: the state of `oid` written by
//! `tid` never changes, so an entry keyed by (oid, tid) never goes stale.
//! That is all the object store needs ([`RecordFile`]): its index says
//! which tid a snapshot reads.
//!
//! A PostgreSQL or remote client asks for an oid, not a tid, so it also
//! needs to know which entry is current ([`StateCache`]). The file keeps a
//! tid `valid`, and an entry marked `current` is the newest state of its
//! object up to `valid`: a snapshot at tid `s` may use a current entry of
//! tid `t` when `t <= s <= valid`. At each transaction start the client
//! moves `valid` up to its snapshot, deleting the entries of objects
//! committed in between, so a restart after a day costs one query for the
//! day's changed oids.
//!
//! A file belongs to one database, whose id it stores; a file of another
//! database is emptied when opened. It holds about `max_bytes` of records
//! at most; past that, the oldest entries leave first.

#[cfg(test)]
mod tests;

#[cfg(any(feature = "postgres", feature = "remote"))]
use crate::storage::Loaded;
use crate::{Oid, StorageError, Tid};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
#[cfg(any(feature = "postgres", feature = "remote"))]
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// The layout's number, kept in the file's `user_version`.
const LAYOUT_VERSION: i64 = 1;

/// `record.current` is 1 for the one entry of an oid that is its newest
/// state up to `meta.valid`, 0 for an entry only known by its (oid, tid).
/// Rowids grow with insertion, so eviction goes by rowid.
const LAYOUT: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE record (
    oid     INTEGER NOT NULL,
    tid     INTEGER NOT NULL,
    record  BLOB NOT NULL,
    current INTEGER NOT NULL,
    PRIMARY KEY (oid, tid)
);
CREATE UNIQUE INDEX record_current ON record (oid) WHERE current;
";

/// The tables of every layout a cache file has had. A file whose
/// `user_version` is not [`LAYOUT_VERSION`] and that holds only these is
/// an older cache: it is emptied and laid out anew, since a cache holds
/// nothing the database lacks. A file with other tables is not a cache and
/// is left alone.
const CACHE_TABLES: &[&str] = &["meta", "record", "state", "cache_meta"];

fn cache_error(e: rusqlite::Error) -> StorageError {
    StorageError::Backend { backend: "local cache", source: Box::new(e) }
}

/// Whether other connections may use the file while this one has it open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sharing {
    /// One connection holds the file: `valid` and the byte count live in
    /// memory, and another writer would make them wrong.
    #[cfg_attr(not(any(feature = "postgres", feature = "remote")), allow(dead_code))]
    Exclusive,
    /// Processes share the file: entries keyed by (oid, tid) never go
    /// stale, whoever wrote them.
    #[cfg_attr(not(feature = "object-store"), allow(dead_code))]
    Shared,
}

/// Why a file could not be opened.
#[derive(Debug, thiserror::Error)]
enum Opening {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("it holds tables a cache file does not have ({0})")]
    Foreign(String),
}

struct File {
    conn: Connection,
    /// The tid up to which current entries are known current (the
    /// object store reads no current entry).
    #[cfg_attr(not(any(feature = "postgres", feature = "remote")), allow(dead_code))]
    valid: u64,
    /// The bytes of records in the file, as this connection counts them
    /// (processes sharing the file add theirs).
    bytes: u64,
    max_bytes: u64,
}

/// Opens or creates the file at `path` for the database `database_id`. A
/// file of another database is emptied; one that cannot be read is
/// removed and made anew.
fn open(path: &Path, database_id: u64, max_bytes: u64, sharing: Sharing) -> Result<Mutex<File>, StorageError> {
    // SQLite integers are signed; the id's bits are what matter.
    let database_id = database_id as i64;
    let in_use =
        || StorageError::Config(format!("the cache file {} is in use by another storage or process", path.display()));
    let file = match File::open(path, database_id, max_bytes, sharing) {
        Ok(f) => f,
        Err(Opening::Sqlite(e)) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
            return Err(in_use());
        }
        Err(Opening::Foreign(tables)) => {
            return Err(StorageError::Config(format!(
                "{} is not a pbpersist cache file: it holds tables a cache does not have ({tables})",
                path.display()
            )));
        }
        Err(Opening::Sqlite(_)) => {
            // A cache is disposable: start over rather than fail. The
            // journal goes too, or SQLite would replay it into the new file.
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut name = path.as_os_str().to_owned();
                name.push(suffix);
                let _ = std::fs::remove_file(name);
            }
            match File::open(path, database_id, max_bytes, sharing) {
                Ok(f) => f,
                Err(Opening::Sqlite(e)) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
                    return Err(in_use());
                }
                Err(Opening::Sqlite(e)) => return Err(cache_error(e)),
                Err(foreign) => return Err(StorageError::Config(foreign.to_string())),
            }
        }
    };
    Ok(Mutex::new(file))
}

fn lock(file: &Mutex<File>) -> MutexGuard<'_, File> {
    // Every update leaves `File` consistent before anything that can panic.
    file.lock().unwrap_or_else(|e| e.into_inner())
}

/// The cache file as the object store uses it: records by (oid, tid).
/// Processes share it.
#[cfg(feature = "object-store")]
pub(crate) struct RecordFile {
    file: Mutex<File>,
}

#[cfg(feature = "object-store")]
impl RecordFile {
    /// Opens or creates the file at `path` for the database `database_id`,
    /// keeping at most about `max_bytes` of records.
    pub(crate) fn open(path: &Path, database_id: u64, max_bytes: u64) -> Result<RecordFile, StorageError> {
        Ok(RecordFile { file: open(path, database_id, max_bytes, Sharing::Shared)? })
    }

    /// The records of `keys` the file holds; missing ones are `None`.
    /// A read that fails counts as a miss: the store has every record.
    pub(crate) fn get(&self, keys: &[(Oid, Tid)]) -> Vec<Option<Vec<u8>>> {
        let f = lock(&self.file);
        keys.iter().map(|(oid, tid)| f.record(*oid, *tid).ok().flatten()).collect()
    }

    /// Keeps `records`. Failures are ignored: it is only a cache.
    pub(crate) fn put(&self, records: &[(Oid, Tid, &[u8])]) {
        if !records.is_empty() {
            let _ = lock(&self.file).insert(records, false);
        }
    }
}

/// How the local state cache has done since the storage was opened.
#[cfg(any(feature = "postgres", feature = "remote"))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCacheStats {
    /// Loads answered from the file.
    pub hits: u64,
    /// Loads that went to the server.
    pub misses: u64,
    /// Records in the file now.
    pub entries: u64,
}

/// The cache file as a PostgreSQL or remote client uses it: the current
/// state of each oid it holds, up to `valid`. One connection holds it.
#[cfg(any(feature = "postgres", feature = "remote"))]
pub(crate) struct StateCache {
    file: Mutex<File>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[cfg(any(feature = "postgres", feature = "remote"))]
impl StateCache {
    /// Opens or creates the file at `path` for the database `database_id`,
    /// keeping at most about `max_bytes` of records.
    pub(crate) fn open(path: &Path, database_id: u64, max_bytes: u64) -> Result<StateCache, StorageError> {
        let file = open(path, database_id, max_bytes, Sharing::Exclusive)?;
        Ok(StateCache { file, hits: AtomicU64::new(0), misses: AtomicU64::new(0) })
    }

    /// The tid up to which entries are known current, and whether there
    /// are no entries at all.
    pub(crate) fn valid(&self) -> (u64, bool) {
        let f = lock(&self.file);
        (f.valid, f.bytes == 0)
    }

    /// Drops `changed`, the objects committed after `from` up to `to`, and
    /// moves `valid` to `to`. `from` is the `valid` the caller read, `None`
    /// when it found the file empty and so listed nothing.
    pub(crate) fn advance(&self, from: Option<Tid>, to: Tid, changed: impl Iterator<Item = Oid>) {
        let mut f = lock(&self.file);
        // Another session may have moved `valid` or kept records since the
        // caller read it: a list that does not reach back to `valid` (or
        // none, for a file that is no longer empty) cannot vouch for them.
        let covered = match from {
            Some(from) => from.0 <= f.valid,
            None => f.bytes == 0,
        };
        if (!covered && f.clear().is_err()) || f.advance(to.0, changed).is_err() {
            // If the file cannot be updated, stop trusting it.
            let _ = f.clear();
        }
    }

    /// The record of `oid` as of `snapshot`, if the file has it.
    pub(crate) fn get(&self, snapshot: Tid, oid: Oid) -> Option<Loaded> {
        let f = lock(&self.file);
        let found = if snapshot.0 <= f.valid { f.current(oid, snapshot.0).ok().flatten() } else { None };
        drop(f);
        let counter = if found.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Keeps a record loaded in a snapshot, unless the file has moved past it.
    pub(crate) fn put(&self, snapshot: Tid, oid: Oid, loaded: &Loaded) {
        let mut f = lock(&self.file);
        // An older snapshot may hold a state the file has already dropped.
        if snapshot.0 >= f.valid && f.insert(&[(oid, loaded.tid, &loaded.record)], true).is_err() {
            let _ = f.clear();
        }
    }

    pub(crate) fn stats(&self) -> StateCacheStats {
        let entries =
            lock(&self.file).conn.query_row("SELECT count(*) FROM record WHERE current", [], |r| r.get(0)).unwrap_or(0);
        StateCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries,
        }
    }
}

/// An oid or tid as SQLite stores it, or `None` at or above 2^63, where no
/// object or transaction is.
fn key(n: u64) -> Option<i64> {
    i64::try_from(n).ok()
}

impl File {
    fn open(path: &Path, database_id: i64, max_bytes: u64, sharing: Sharing) -> Result<File, Opening> {
        let mut conn = Connection::open(path)?;
        match sharing {
            Sharing::Exclusive => {
                conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
                // Its holder keeps the file while open: waiting is futile.
                conn.busy_timeout(std::time::Duration::ZERO)?;
            }
            Sharing::Shared => conn.busy_timeout(std::time::Duration::from_secs(5))?,
        }
        // Losing the newest entries to a power cut only costs warmth; WAL
        // with normal syncing never leaves a corrupt file.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version != LAYOUT_VERSION {
            let tables: Vec<String> = tx
                .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let foreign: Vec<&str> = tables.iter().map(String::as_str).filter(|t| !CACHE_TABLES.contains(t)).collect();
            if !foreign.is_empty() {
                return Err(Opening::Foreign(foreign.join(", ")));
            }
            for table in &tables {
                tx.execute_batch(&format!("DROP TABLE \"{table}\""))?;
            }
            tx.execute_batch(LAYOUT)?;
            tx.pragma_update(None, "user_version", LAYOUT_VERSION)?;
        }
        let meta = |key: &str| -> rusqlite::Result<Option<i64>> {
            tx.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()
        };
        let valid = if meta("database_id")? == Some(database_id) {
            meta("valid")?.unwrap_or(0) as u64
        } else {
            tx.execute_batch("DELETE FROM record; INSERT OR REPLACE INTO meta (key, value) VALUES ('valid', 0);")?;
            tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('database_id', ?1)", [database_id])?;
            0
        };
        let bytes: i64 = tx.query_row("SELECT coalesce(sum(length(record)), 0) FROM record", [], |r| r.get(0))?;
        tx.commit()?;
        Ok(File { conn, valid, bytes: bytes as u64, max_bytes })
    }

    #[cfg(any(feature = "postgres", feature = "remote"))]
    fn clear(&mut self) -> rusqlite::Result<()> {
        self.valid = 0;
        self.bytes = 0;
        self.conn.execute_batch("DELETE FROM record; INSERT OR REPLACE INTO meta (key, value) VALUES ('valid', 0);")
    }

    /// The record `tid` wrote for `oid`, current or not.
    #[cfg(feature = "object-store")]
    fn record(&self, oid: Oid, tid: Tid) -> rusqlite::Result<Option<Vec<u8>>> {
        let (Some(oid), Some(tid)) = (key(oid.0), key(tid.0)) else { return Ok(None) };
        let mut stmt = self.conn.prepare_cached("SELECT record FROM record WHERE oid = ?1 AND tid = ?2")?;
        stmt.query_row(params![oid, tid], |r| r.get(0)).optional()
    }

    /// The current entry of `oid`, if a snapshot at `snapshot` may use it.
    #[cfg(any(feature = "postgres", feature = "remote"))]
    fn current(&self, oid: Oid, snapshot: u64) -> rusqlite::Result<Option<Loaded>> {
        let Some(oid) = key(oid.0) else { return Ok(None) };
        // A snapshot at or above 2^63 sees every entry.
        let snapshot = key(snapshot).unwrap_or(i64::MAX);
        let mut stmt =
            self.conn.prepare_cached("SELECT tid, record FROM record WHERE oid = ?1 AND current AND tid <= ?2")?;
        stmt.query_row(params![oid, snapshot], |r| {
            Ok(Loaded { tid: Tid(r.get::<_, i64>(0)? as u64), record: r.get(1)? })
        })
        .optional()
    }

    /// Drops every entry of `changed` and moves `valid` up to `to`.
    #[cfg(any(feature = "postgres", feature = "remote"))]
    fn advance(&mut self, to: u64, changed: impl Iterator<Item = Oid>) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        let mut freed = 0;
        for oid in changed.filter_map(|o| key(o.0)) {
            freed += Self::forget(&tx, oid)?;
        }
        let valid = self.valid.max(to);
        tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('valid', ?1)", [key(valid).unwrap_or(i64::MAX)])?;
        tx.commit()?;
        self.valid = valid;
        self.bytes = self.bytes.saturating_sub(freed);
        Ok(())
    }

    /// Deletes every entry of `oid`, returning the bytes freed.
    fn forget(conn: &Connection, oid: i64) -> rusqlite::Result<u64> {
        let mut delete = conn.prepare_cached("DELETE FROM record WHERE oid = ?1 RETURNING length(record)")?;
        let freed: Vec<i64> = delete.query_map([oid], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok(freed.into_iter().sum::<i64>() as u64)
    }

    /// Keeps `records`; as `current`, each replaces every entry of its
    /// oid. Then, past the byte bound, drops the oldest entries down to
    /// nine tenths of it, so that eviction runs once per many inserts.
    fn insert(&mut self, records: &[(Oid, Tid, &[u8])], current: bool) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        let (mut added, mut freed) = (0u64, 0u64);
        {
            let mut insert = tx.prepare_cached(if current {
                "INSERT INTO record (oid, tid, record, current) VALUES (?1, ?2, ?3, 1)"
            } else {
                // A current entry of the same (oid, tid) holds the same record.
                "INSERT OR IGNORE INTO record (oid, tid, record, current) VALUES (?1, ?2, ?3, 0)"
            })?;
            for (oid, tid, record) in records {
                let (Some(oid), Some(tid)) = (key(oid.0), key(tid.0)) else { continue };
                if current {
                    freed += Self::forget(&tx, oid)?;
                }
                if insert.execute(params![oid, tid, record])? > 0 {
                    added += record.len() as u64;
                }
            }
        }
        let mut bytes = (self.bytes + added).saturating_sub(freed);
        if bytes > self.max_bytes {
            let total: i64 = tx.query_row("SELECT coalesce(sum(length(record)), 0) FROM record", [], |r| r.get(0))?;
            let excess = (total as u64).saturating_sub(self.max_bytes / 10 * 9);
            let cut: Option<i64> = tx
                .query_row(
                    "SELECT id FROM (SELECT rowid AS id, sum(length(record)) OVER (ORDER BY rowid) AS running
                     FROM record) WHERE running >= ?1 ORDER BY id LIMIT 1",
                    [excess as i64],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(cut) = cut {
                tx.execute("DELETE FROM record WHERE rowid <= ?1", [cut])?;
            }
            bytes =
                tx.query_row("SELECT coalesce(sum(length(record)), 0) FROM record", [], |r| r.get::<_, i64>(0))? as u64;
        }
        tx.commit()?;
        self.bytes = bytes;
        Ok(())
    }
}
