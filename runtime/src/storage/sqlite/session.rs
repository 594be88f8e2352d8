//! One connection's session: a read transaction for each snapshot (a WAL
//! snapshot), an immediate transaction for each commit, and historical
//! sessions that read as of a past tid.

use super::{backend, open_connection};
use crate::storage::commit::{self, CommitTx, Row};
use crate::storage::sql::{KEEP_CHANGES, sql_bound, sql_int};
use crate::storage::{History, Loaded, Resolve, Session, Snapshot, TransactionMeta, Write};
use crate::{ConflictError, Oid, StorageError, Tid};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;

/// Loads an object's current state.
const LOAD: &str = "SELECT tid, record FROM pb_object WHERE oid = ?1";

/// Loads an object's state as of tid `?2`: the current one if it is that old,
/// else the replaced one that was current then.
const LOAD_AT: &str = "SELECT tid, record FROM pb_object WHERE oid = ?1 AND tid <= ?2
                       UNION ALL SELECT tid, record FROM pb_object_revision
                       WHERE oid = ?1 AND tid <= ?2 AND end_tid > ?2 LIMIT 1";

/// Every object's state as of tid `?3` with an oid above `?1`, in oid order, at most `?2`.
const SCAN_AT: &str = "SELECT oid, tid, record FROM (
                           SELECT oid, tid, record FROM pb_object WHERE oid > ?1 AND tid <= ?3
                           UNION ALL SELECT oid, tid, record FROM pb_object_revision
                           WHERE oid > ?1 AND tid <= ?3 AND end_tid > ?3)
                       ORDER BY oid LIMIT ?2";

/// Statements a session keeps prepared for its whole life. Going through
/// rusqlite's statement cache costs a lookup and a reinsertion per call, about
/// a third of the time of loading one object.
struct Prepared<'c> {
    load: rusqlite::Statement<'c>,
}

self_cell::self_cell!(
    /// A connection and the statements prepared on it.
    struct SessionConn {
        owner: Connection,
        #[covariant]
        dependent: Prepared,
    }
);

// SAFETY: `Statement` is not `Send` only because it holds a `&Connection`,
// and `Connection` is not `Sync`: two threads must not use one connection at
// once. Here the connection and the only statements that refer to it live in
// one cell that hands out no reference outliving a borrow of the cell, so
// they move between threads together and are used by one thread at a time,
// exactly as a `Connection` with its own statement cache inside (which is
// `Send`) is.
#[allow(unsafe_code)]
unsafe impl Send for SessionConn {}

pub(super) struct SqliteSession {
    cell: SessionConn,
    /// Whether a read transaction (the snapshot) is open.
    in_read: bool,
    /// Whether commits keep the states they replace.
    history: History,
    /// For a historical session, the tid it reads as of.
    at: Option<Tid>,
}

impl SqliteSession {
    pub(super) fn open(path: &Path, read_only: bool, history: History, at: Option<Tid>) -> Result<Self, StorageError> {
        let cell = SessionConn::try_new(open_connection(path, read_only)?, |conn| {
            Ok::<_, rusqlite::Error>(Prepared { load: conn.prepare(if at.is_some() { LOAD_AT } else { LOAD })? })
        })
        .map_err(backend)?;
        Ok(SqliteSession { cell, in_read: false, history, at })
    }

    /// The objects committed after `since`, from the transactions' oid
    /// lists; by a scan of `pb_object` when a list in the range is missing
    /// (pruned, or written by a program that does not keep them).
    fn changes_since(&self, since: Tid) -> Result<Vec<(Oid, Tid)>, StorageError> {
        // Every tid is below 2^63: nothing was committed after one at or above it.
        let Some(since) = sql_int(since.0) else { return Ok(Vec::new()) };
        let mut changed = Vec::new();
        let mut complete = true;
        let mut stmt =
            self.conn().prepare_cached("SELECT tid, oids FROM pb_transaction WHERE tid > ?1").map_err(backend)?;
        let mut rows = stmt.query([since]).map_err(backend)?;
        while let Some(row) = rows.next().map_err(backend)? {
            let tid = Tid(row.get::<_, i64>(0).map_err(backend)? as u64);
            let oids: Option<Vec<u8>> = row.get(1).map_err(backend)?;
            match oids.as_deref().map(decode_oids) {
                Some(Some(oids)) => changed.extend(oids.into_iter().map(|o| (Oid(o), tid))),
                _ => {
                    complete = false;
                    break;
                }
            }
        }
        if complete {
            return Ok(changed);
        }
        let mut stmt = self.conn().prepare_cached("SELECT oid, tid FROM pb_object WHERE tid > ?1").map_err(backend)?;
        let rows = stmt
            .query_map([since], |r| Ok((Oid(r.get::<_, i64>(0)? as u64), Tid(r.get::<_, i64>(1)? as u64))))
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }

    fn conn(&self) -> &Connection {
        self.cell.borrow_owner()
    }

    fn end_read(&mut self) -> Result<(), StorageError> {
        if self.in_read {
            self.in_read = false;
            self.conn().execute_batch("COMMIT").map_err(backend)?;
        }
        Ok(())
    }
}

impl Session for SqliteSession {
    fn begin(&mut self, since: Option<Tid>) -> Result<Snapshot, StorageError> {
        self.end_read()?;
        self.conn().execute_batch("BEGIN").map_err(backend)?;
        self.in_read = true;
        // The first read fixes the WAL snapshot that every later load sees.
        if let Some(at) = self.at {
            // A pack records its tid before removing anything, so a snapshot
            // that could miss a state sees that it was packed.
            let packed = super::packed_tid(self.conn())?;
            if at < packed {
                self.end_read()?;
                return Err(StorageError::Packed { backend: "sqlite", at, packed });
            }
            // A past state never changes: nothing to list.
            return Ok(Snapshot { tid: at, changed: Vec::new() });
        }
        let tid: i64 = self
            .conn()
            .prepare_cached("SELECT coalesce(max(tid), 0) FROM pb_transaction")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(backend)?;
        let changed = match since {
            Some(since) => self.changes_since(since)?,
            None => Vec::new(),
        };
        Ok(Snapshot { tid: Tid(tid as u64), changed })
    }

    fn load(&mut self, oid: Oid) -> Result<Option<Loaded>, StorageError> {
        // No object has an oid at or above 2^63.
        let Some(oid) = sql_int(oid.0) else { return Ok(None) };
        let at = self.at.map(|at| sql_bound(at.0));
        self.cell.with_dependent_mut(|_, prepared| {
            let row = |r: &rusqlite::Row<'_>| Ok(Loaded { tid: Tid(r.get::<_, i64>(0)? as u64), record: r.get(1)? });
            match at {
                Some(at) => prepared.load.query_row([oid, at], row),
                None => prepared.load.query_row([oid], row),
            }
            .optional()
            .map_err(backend)
        })
    }

    fn load_many(&mut self, oids: &[Oid]) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        // Below a full chunk, the prepared one-object load is faster: an
        // `IN` list of another length is a statement prepared anew, and an
        // embedded database has no round trip to save (index-bench's cold
        // ranges of 100: 5,200 queries/s with the list, 7,600 without).
        if self.at.is_some() || oids.len() < 500 {
            let mut out = Vec::with_capacity(oids.len());
            for oid in oids {
                out.extend(self.load(*oid)?.map(|l| (*oid, l)));
            }
            return Ok(out);
        }
        // SQLite allows 32766 parameters; chunks of 500 keep statements cacheable.
        const CHUNK: usize = 500;
        let mut out = Vec::with_capacity(oids.len());
        // No object has an oid at or above 2^63.
        let keys: Vec<i64> = oids.iter().filter_map(|o| sql_int(o.0)).collect();
        for chunk in keys.chunks(CHUNK) {
            let placeholders = vec!["?"; chunk.len()].join(",");
            let sql = format!("SELECT oid, tid, record FROM pb_object WHERE oid IN ({placeholders})");
            let mut stmt = self.conn().prepare_cached(&sql).map_err(backend)?;
            let params = rusqlite::params_from_iter(chunk);
            let rows = stmt
                .query_map(params, |r| {
                    let oid = Oid(r.get::<_, i64>(0)? as u64);
                    Ok((oid, Loaded { tid: Tid(r.get::<_, i64>(1)? as u64), record: r.get(2)? }))
                })
                .map_err(backend)?;
            for row in rows {
                out.push(row.map_err(backend)?);
            }
        }
        Ok(out)
    }

    fn scan(&mut self, after: Option<Oid>, limit: usize) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        let sql = match self.at {
            Some(_) => SCAN_AT,
            None => "SELECT oid, tid, record FROM pb_object WHERE oid > ?1 ORDER BY oid LIMIT ?2",
        };
        // No object has an oid above one at or above 2^63.
        let Some(after) = after.map_or(Some(-1), |o| sql_int(o.0)) else { return Ok(Vec::new()) };
        let mut stmt = self.conn().prepare_cached(sql).map_err(backend)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let at = self.at.map(|t| sql_bound(t.0));
        let params: &[&dyn rusqlite::ToSql] = match &at {
            Some(at) => &[&after, &limit, at],
            None => &[&after, &limit],
        };
        let rows = stmt
            .query_map(params, |r| {
                Ok((
                    Oid(r.get::<_, i64>(0)? as u64),
                    Loaded { tid: Tid(r.get::<_, i64>(1)? as u64), record: r.get(2)? },
                ))
            })
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }

    fn end(&mut self) -> Result<(), StorageError> {
        self.end_read()
    }

    fn commit(
        &mut self,
        writes: &[Write],
        reads: &[(Oid, Tid)],
        meta: &TransactionMeta,
        resolve: &mut Resolve<'_>,
    ) -> Result<Option<Tid>, StorageError> {
        self.end_read()?;
        // The immediate transaction holds the database's write lock, which
        // locks every row at once.
        self.conn().execute_batch("BEGIN IMMEDIATE").map_err(backend)?;
        let history = self.history == History::Preserving;
        commit::run(&mut SqliteCommit { tx: self.conn(), open: true, history }, writes, reads, meta, resolve)
    }
}

/// One commit inside an immediate transaction on the session's connection.
struct SqliteCommit<'c> {
    tx: &'c Connection,
    /// Whether the transaction is still open; dropping it open rolls back.
    open: bool,
    /// Whether replaced states are kept.
    history: bool,
}

impl SqliteCommit<'_> {
    /// Runs `sql` with `?` repeated for each oid in chunks of 500 (SQLite
    /// allows 32766 parameters; equal chunks keep the statements cached).
    fn by_oid<T>(
        &self,
        oids: &[Oid],
        sql: impl Fn(&str) -> String,
        row: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StorageError> {
        let tx = self.tx;
        let mut out = Vec::with_capacity(oids.len());
        // No row has an oid at or above 2^63.
        let keys: Vec<i64> = oids.iter().filter_map(|o| sql_int(o.0)).collect();
        for chunk in keys.chunks(500) {
            let mut stmt = tx.prepare_cached(&sql(&vec!["?"; chunk.len()].join(","))).map_err(backend)?;
            let params = rusqlite::params_from_iter(chunk);
            for r in stmt.query_map(params, &row).map_err(backend)? {
                out.push(r.map_err(backend)?);
            }
        }
        Ok(out)
    }
}

impl CommitTx for SqliteCommit<'_> {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn next_oid(&mut self, _highest: Oid) -> Result<Oid, StorageError> {
        // Read under the write lock: one row of a table the commit holds.
        let next: i64 = self
            .tx
            .prepare_cached("SELECT value FROM pb_meta WHERE key = 'next_oid'")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(backend)?;
        Ok(Oid(next.max(0) as u64))
    }

    fn lock(&mut self, oids: &[Oid]) -> Result<Vec<(Oid, Tid)>, StorageError> {
        self.by_oid(
            oids,
            |list| format!("SELECT oid, tid FROM pb_object WHERE oid IN ({list})"),
            |r| Ok((Oid(r.get::<_, i64>(0)? as u64), Tid(r.get::<_, i64>(1)? as u64))),
        )
    }

    fn stored(&mut self, oids: &[Oid]) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        self.by_oid(
            oids,
            |list| format!("SELECT oid, tid, record FROM pb_object WHERE oid IN ({list})"),
            |r| {
                Ok((
                    Oid(r.get::<_, i64>(0)? as u64),
                    Loaded { tid: Tid(r.get::<_, i64>(1)? as u64), record: r.get(2)? },
                ))
            },
        )
    }

    fn write(
        &mut self,
        rows: &[Row<'_>],
        time: std::time::SystemTime,
        meta: &TransactionMeta,
    ) -> Result<Tid, StorageError> {
        let tx = self.tx;
        let last: i64 = tx
            .prepare_cached("SELECT coalesce(max(tid), 0) FROM pb_transaction")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(backend)?;
        let tid = last + 1;
        let mut insert = tx
            .prepare_cached("INSERT INTO pb_object (oid, tid, record) VALUES (?1, ?2, ?3) ON CONFLICT (oid) DO NOTHING")
            .map_err(backend)?;
        // The rows were locked and checked: a plain update seeks each once.
        let mut update =
            tx.prepare_cached("UPDATE pb_object SET tid = ?2, record = ?3 WHERE oid = ?1").map_err(backend)?;
        if self.history {
            // The states about to be replaced, copied a chunk at a time: one
            // statement per row would double an update's cost.
            let replaced: Vec<i64> = rows.iter().filter(|r| !r.new).map(|r| r.oid.0 as i64).collect();
            for chunk in replaced.chunks(500) {
                let sql = format!(
                    "INSERT INTO pb_object_revision (oid, tid, end_tid, record)
                     SELECT oid, tid, ?, record FROM pb_object WHERE oid IN ({})",
                    vec!["?"; chunk.len()].join(",")
                );
                let mut keep = tx.prepare_cached(&sql).map_err(backend)?;
                let params = std::iter::once(tid).chain(chunk.iter().copied());
                keep.execute(rusqlite::params_from_iter(params)).map_err(backend)?;
            }
        }
        for row in rows {
            let statement = if row.new { &mut insert } else { &mut update };
            if statement.execute(params![row.oid.0 as i64, tid, row.record]).map_err(backend)? != 1 {
                return Err(ConflictError { oid: row.oid }.into());
            }
        }
        let oids = encode_oids(rows.iter().map(|r| r.oid.0));
        tx.prepare_cached(
            "INSERT INTO pb_transaction (tid, committed_at, oids, user_name, description, extension) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .and_then(|mut s| {
            s.execute(params![tid, commit::micros(time), oids, meta.user, meta.description, meta.encode_extension()])
        })
        .map_err(backend)?;
        if tid % 1000 == 0 && !self.history {
            // Old oid lists are dropped a thousand at a time; the rows stay.
            // A history-preserving database keeps them for undo.
            tx.prepare_cached("UPDATE pb_transaction SET oids = NULL WHERE tid > ?1 - 1000 AND tid <= ?1")
                .and_then(|mut s| s.execute([tid - KEEP_CHANGES]))
                .map_err(backend)?;
        }
        Ok(Tid(tid as u64))
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        self.open = false;
        let committed = self.tx.execute_batch("COMMIT").map_err(backend);
        if committed.is_err() && !self.tx.is_autocommit() {
            // A busy or failed COMMIT can leave the transaction open.
            let _ = self.tx.execute_batch("ROLLBACK");
        }
        committed
    }

    fn rollback(&mut self) {
        if std::mem::replace(&mut self.open, false) {
            // A failed rollback leaves nothing open: SQLite rolls back on error.
            let _ = self.tx.execute_batch("ROLLBACK");
        }
    }
}

impl Drop for SqliteCommit<'_> {
    fn drop(&mut self) {
        self.rollback();
    }
}

/// An oid list as `pb_transaction.oids` stores it: varints, the body of a
/// packed `repeated uint64` field.
pub(super) fn encode_oids(oids: impl Iterator<Item = u64>) -> Vec<u8> {
    let mut out = Vec::new();
    for oid in oids {
        prost::encoding::encode_varint(oid, &mut out);
    }
    out
}

/// Reads an oid list; `None` if it is malformed.
pub(super) fn decode_oids(mut bytes: &[u8]) -> Option<Vec<u64>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        out.push(prost::encoding::decode_varint(&mut bytes).ok()?);
    }
    Some(out)
}

impl Drop for SqliteSession {
    fn drop(&mut self) {
        // Closing the connection ends any read snapshot anyway; this is tidiness.
        let _ = self.end_read();
    }
}
