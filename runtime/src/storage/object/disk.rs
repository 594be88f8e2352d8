//! The optional local file of records (`?cache-dir=...`), so that a
//! restarted process reads records from its disk instead of the store.
//!
//! A record is immutable once committed: the state of `oid` written by
//! `tid` never changes. An entry therefore never goes stale, and the file
//! needs no invalidation, only the identity of the database it belongs to
//! (the random id in `<prefix>/id`); a file of another database is emptied.

use crate::{Oid, StorageError, Tid};
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::Mutex;

pub(super) struct DiskCache {
    /// The connection and the bytes of records the file holds (as this
    /// process counts them; other processes sharing the file add theirs).
    conn: Mutex<(Connection, u64)>,
    max_bytes: u64,
}

fn failed(e: rusqlite::Error) -> StorageError {
    StorageError::Backend { backend: "object store's local record file", source: Box::new(e) }
}

impl DiskCache {
    /// Opens (or creates) `dir/records.db` for the database `id`, keeping
    /// at most about `max_bytes` of records.
    pub fn open(dir: &std::path::Path, id: u64, max_bytes: u64) -> Result<DiskCache, StorageError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError::Config(format!("cannot create the cache directory {}: {e}", dir.display())))?;
        let conn = Connection::open(dir.join("records.db")).map_err(failed)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(failed)?;
        // A cache: losing the newest entries to a power cut is fine, a
        // corrupt file is not, so WAL with normal syncing.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS cache_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS record (oid INTEGER NOT NULL, tid INTEGER NOT NULL,
                 seq INTEGER NOT NULL, bytes BLOB NOT NULL, PRIMARY KEY (oid, tid)) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS record_seq ON record (seq);",
        )
        .map_err(failed)?;
        let stored: Option<i64> = conn
            .query_row("SELECT value FROM cache_meta WHERE key = 'database'", [], |r| r.get(0))
            .optional()
            .map_err(failed)?;
        if stored != Some(id as i64) {
            conn.execute_batch("DELETE FROM record").map_err(failed)?;
            conn.execute("INSERT OR REPLACE INTO cache_meta VALUES ('database', ?1)", [id as i64]).map_err(failed)?;
        }
        let bytes: i64 =
            conn.query_row("SELECT coalesce(sum(length(bytes)), 0) FROM record", [], |r| r.get(0)).map_err(failed)?;
        Ok(DiskCache { conn: Mutex::new((conn, bytes as u64)), max_bytes })
    }

    /// The records of `keys` the file holds; missing ones are `None`.
    /// A read that fails counts as a miss: the store has every record.
    pub fn get(&self, keys: &[(Oid, Tid)]) -> Vec<Option<Vec<u8>>> {
        let guard = self.conn.lock().expect("record file lock");
        let Ok(mut select) = guard.0.prepare_cached("SELECT bytes FROM record WHERE oid = ?1 AND tid = ?2") else {
            return vec![None; keys.len()];
        };
        keys.iter()
            .map(|(oid, tid)| {
                select.query_row(params![oid.0 as i64, tid.0 as i64], |r| r.get(0)).optional().ok().flatten()
            })
            .collect()
    }

    /// Keeps `records`, then drops the oldest entries while the file holds
    /// more than its budget. Failures are ignored: it is only a cache.
    pub fn put(&self, records: &[(Oid, Tid, &[u8])]) {
        if records.is_empty() {
            return;
        }
        let mut guard = self.conn.lock().expect("record file lock");
        let (conn, bytes) = &mut *guard;
        let _ = Self::insert(conn, bytes, records, self.max_bytes);
    }

    fn insert(
        conn: &mut Connection,
        bytes: &mut u64,
        records: &[(Oid, Tid, &[u8])],
        max_bytes: u64,
    ) -> rusqlite::Result<()> {
        let tx = conn.transaction()?;
        let next: i64 = tx.query_row("SELECT coalesce(max(seq), 0) + 1 FROM record", [], |r| r.get(0))?;
        let mut added = 0;
        {
            let mut insert = tx.prepare_cached("INSERT OR IGNORE INTO record VALUES (?1, ?2, ?3, ?4)")?;
            for (oid, tid, record) in records {
                if insert.execute(params![oid.0 as i64, tid.0 as i64, next, record])? > 0 {
                    added += record.len() as u64;
                }
            }
        }
        if *bytes + added > max_bytes {
            // Down to nine tenths, oldest insertions first.
            let total: i64 = tx.query_row("SELECT coalesce(sum(length(bytes)), 0) FROM record", [], |r| r.get(0))?;
            let excess = (total as u64).saturating_sub(max_bytes * 9 / 10);
            let cut: Option<i64> = tx
                .query_row(
                    "SELECT seq FROM (SELECT seq, sum(length(bytes)) OVER (ORDER BY seq) AS running FROM record)
                     WHERE running >= ?1 ORDER BY seq LIMIT 1",
                    [excess as i64],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(cut) = cut {
                tx.execute("DELETE FROM record WHERE seq <= ?1", [cut])?;
            }
            tx.commit()?;
            *bytes = conn.query_row("SELECT coalesce(sum(length(bytes)), 0) FROM record", [], |r| r.get::<_, i64>(0))?
                as u64;
            return Ok(());
        }
        tx.commit()?;
        *bytes += added;
        Ok(())
    }
}
