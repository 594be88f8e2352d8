//! An optional local state cache: an SQLite file of records this process
//! loaded, so that a restarted process starts warm.
//!
//! Each entry is a record and the tid that wrote it. The file also keeps a
//! tid `valid`: no entry changed on the server between its own tid and
//! `valid`. A snapshot at tid `s` may use an entry of tid `t` when
//! `t <= s <= valid`. At each transaction start the session moves `valid` up
//! to its snapshot, deleting the entries of objects committed in between, so
//! a restart after a day costs one query for the day's changed oids.

use crate::storage::Loaded;
use crate::{Oid, StorageError, Tid};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// How the local state cache has done since the storage was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCacheStats {
    /// Loads answered from the file.
    pub hits: u64,
    /// Loads that went to the server.
    pub misses: u64,
    /// Records in the file now.
    pub entries: u64,
}

pub(crate) struct StateCache {
    file: Mutex<File>,
    hits: AtomicU64,
    misses: AtomicU64,
}

struct File {
    conn: Connection,
    valid: u64,
    bytes: u64,
    max_bytes: u64,
    /// Insertion counter: eviction drops the oldest entries first.
    clock: i64,
}

const LAYOUT: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state (
    oid    INTEGER PRIMARY KEY NOT NULL,
    tid    INTEGER NOT NULL,
    record BLOB NOT NULL,
    added  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS state_added ON state (added);
";

fn cache_error(e: rusqlite::Error) -> StorageError {
    StorageError::Backend { backend: "state cache", source: Box::new(e) }
}

impl StateCache {
    /// Opens or creates the file for the database `database_id`. A file of
    /// another database, or one that cannot be read, is emptied.
    pub(crate) fn open(path: &Path, database_id: u64, max_bytes: u64) -> Result<StateCache, StorageError> {
        // SQLite integers are signed; the id's bits are what matter.
        let database_id = database_id as i64;
        let file = match File::open(path, database_id, max_bytes) {
            Ok(f) => f,
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
                return Err(StorageError::Config(format!(
                    "the state cache {} is in use by another storage or process",
                    path.display()
                )));
            }
            Err(_) => {
                // A cache is disposable: start over rather than fail.
                let _ = std::fs::remove_file(path);
                File::open(path, database_id, max_bytes).map_err(cache_error)?
            }
        };
        Ok(StateCache { file: Mutex::new(file), hits: AtomicU64::new(0), misses: AtomicU64::new(0) })
    }

    fn file(&self) -> std::sync::MutexGuard<'_, File> {
        // Every update below leaves `File` consistent before anything that can panic.
        self.file.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The tid up to which entries are known current, and whether there
    /// are no entries at all.
    pub(crate) fn valid(&self) -> (u64, bool) {
        let f = self.file();
        (f.valid, f.bytes == 0)
    }

    /// Drops `changed` (objects committed after `from`) and moves `valid` to
    /// `to`. `from` is the `valid` the caller read before it asked for the
    /// list, or `None` if the file was empty then and no list was asked for.
    /// Sessions put records meanwhile, each known current as of its own
    /// snapshot; the list covers them only if the file is as the caller saw
    /// it: not emptied since (`valid` only grows otherwise), and, for a file
    /// that was empty, still empty. Otherwise `valid` stays where it is,
    /// which costs misses, never a stale record.
    pub(crate) fn advance(&self, from: Option<Tid>, to: Tid, changed: impl Iterator<Item = Oid>) {
        let mut f = self.file();
        let covered = match from {
            Some(v) => f.valid >= v.0,
            None => f.bytes == 0,
        };
        if !covered {
            return;
        }
        if f.advance(to.0, changed).is_err() {
            // If the file cannot be updated, stop trusting it.
            let _ = f.clear();
        }
    }

    /// The record of `oid` as of `snapshot`, if the file has it.
    pub(crate) fn get(&self, snapshot: Tid, oid: Oid) -> Option<Loaded> {
        let f = self.file();
        let found = if snapshot.0 <= f.valid { f.get(oid, snapshot.0).ok().flatten() } else { None };
        drop(f);
        let counter = if found.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Keeps a record loaded in a snapshot, unless the file has moved past it.
    pub(crate) fn put(&self, snapshot: Tid, oid: Oid, loaded: &Loaded) {
        let mut f = self.file();
        // An older snapshot may hold a state the file has already dropped.
        if snapshot.0 >= f.valid && f.put(oid, loaded).is_err() {
            let _ = f.clear();
        }
    }

    pub(crate) fn stats(&self) -> StateCacheStats {
        let entries = self.file().conn.query_row("SELECT count(*) FROM state", [], |r| r.get(0)).unwrap_or(0);
        StateCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries,
        }
    }
}

impl File {
    fn open(path: &Path, database_id: i64, max_bytes: u64) -> rusqlite::Result<File> {
        let conn = Connection::open(path)?;
        // One process per file; losing the file's last writes only costs warmth.
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "OFF")?;
        conn.execute_batch(LAYOUT)?;
        let meta = |key: &str| -> rusqlite::Result<Option<i64>> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()
        };
        let same_database = meta("database_id")? == Some(database_id);
        let valid = if same_database { meta("valid")?.unwrap_or(0) as u64 } else { 0 };
        let (bytes, clock): (i64, i64) =
            conn.query_row("SELECT coalesce(sum(length(record)), 0), coalesce(max(added), 0) FROM state", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let mut file = File { conn, valid, bytes: bytes as u64, max_bytes, clock };
        if !same_database {
            file.clear()?;
            file.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('database_id', ?1)", [database_id])?;
        }
        Ok(file)
    }

    fn clear(&mut self) -> rusqlite::Result<()> {
        self.valid = 0;
        self.bytes = 0;
        self.conn.execute_batch("DELETE FROM state; INSERT OR REPLACE INTO meta (key, value) VALUES ('valid', 0);")
    }

    fn advance(&mut self, to: u64, changed: impl Iterator<Item = Oid>) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        let mut freed = 0u64;
        {
            let mut delete = tx.prepare_cached("DELETE FROM state WHERE oid = ?1 RETURNING length(record)")?;
            for oid in changed {
                if let Some(len) = delete.query_row([oid.0 as i64], |r| r.get::<_, i64>(0)).optional()? {
                    freed += len as u64;
                }
            }
        }
        let valid = self.valid.max(to);
        tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('valid', ?1)", [valid as i64])?;
        tx.commit()?;
        self.valid = valid;
        self.bytes = self.bytes.saturating_sub(freed);
        Ok(())
    }

    fn get(&self, oid: Oid, snapshot: u64) -> rusqlite::Result<Option<Loaded>> {
        // No object has an oid at or above 2^63 (nor a tid, so any snapshot
        // at or above it sees every entry).
        let Ok(oid) = i64::try_from(oid.0) else { return Ok(None) };
        let snapshot = i64::try_from(snapshot).unwrap_or(i64::MAX);
        let mut stmt = self.conn.prepare_cached("SELECT tid, record FROM state WHERE oid = ?1 AND tid <= ?2")?;
        stmt.query_row(params![oid, snapshot], |r| {
            Ok(Loaded { tid: Tid(r.get::<_, i64>(0)? as u64), record: r.get(1)? })
        })
        .optional()
    }

    fn put(&mut self, oid: Oid, loaded: &Loaded) -> rusqlite::Result<()> {
        self.clock += 1;
        let mut stmt = self
            .conn
            .prepare_cached("INSERT OR REPLACE INTO state (oid, tid, record, added) VALUES (?1, ?2, ?3, ?4)")?;
        stmt.execute(params![oid.0 as i64, loaded.tid.0 as i64, loaded.record, self.clock])?;
        self.bytes += loaded.record.len() as u64;
        if self.bytes > self.max_bytes {
            // Drop the oldest tenth of the entries at once, not one per insert.
            let count: i64 = self.conn.query_row("SELECT count(*) FROM state", [], |r| r.get(0))?;
            self.conn.execute(
                "DELETE FROM state WHERE oid IN (SELECT oid FROM state ORDER BY added LIMIT ?1)",
                [(count / 10).max(1)],
            )?;
            let left: i64 =
                self.conn.query_row("SELECT coalesce(sum(length(record)), 0) FROM state", [], |r| r.get(0))?;
            self.bytes = left as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tid: u64) -> Loaded {
        Loaded { tid: Tid(tid), record: vec![1, 2, 3] }
    }

    /// Two connections begin on an empty file: one fills it while the
    /// other waits for its snapshot. The other's advance has no list of
    /// changes to drop, so it must not vouch for what the first one put;
    /// and a file emptied under a connection is not vouched for either.
    #[test]
    fn an_advance_vouches_only_for_the_file_it_read() {
        let dir = tempfile::tempdir().unwrap();
        let cache = StateCache::open(&dir.path().join("cache"), 7, 1 << 20).unwrap();
        let (_, empty) = cache.valid();
        assert!(empty);
        // One connection, at snapshot 5, keeps object 1 as of tid 3.
        cache.advance(None, Tid(5), std::iter::empty());
        cache.put(Tid(5), Oid(1), &record(3));
        // Object 1 changed at tid 8; the other connection, which saw the
        // file empty, begins at snapshot 10 with no list.
        cache.advance(None, Tid(10), std::iter::empty());
        assert_eq!(cache.valid().0, 5, "the other connection cannot know that object 1 is current at 10");
        assert_eq!(cache.get(Tid(9), Oid(1)), None, "a snapshot past what the file knows reads the server");
        assert_eq!(cache.get(Tid(5), Oid(1)), Some(record(3)));
        // A begin with the list from 5 moves it on, dropping object 1.
        cache.advance(Some(Tid(5)), Tid(10), [Oid(1)].into_iter());
        assert_eq!((cache.valid().0, cache.get(Tid(10), Oid(1))), (10, None));
        // A list from a tid the file no longer stands at (it was emptied)
        // vouches for nothing.
        cache.file().clear().unwrap();
        cache.put(Tid(4), Oid(2), &record(4));
        cache.advance(Some(Tid(10)), Tid(12), std::iter::empty());
        assert_eq!(cache.valid().0, 0);
    }
}
