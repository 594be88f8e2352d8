//! One connection's session: a `REPEATABLE READ` snapshot for reads, and a
//! `READ COMMITTED` transaction for each commit.

use super::Inner;
use crate::storage::{KEEP_CHANGES, Loaded, Resolve, Session, Snapshot, Write};
use crate::{ConflictError, Oid, StorageError, Tid};
use postgres::error::SqlState;
use postgres::{Client, Statement};
use std::sync::Arc;

/// The snapshot's newest tid (the row with a null oid) and what changed
/// since `$1`, from the transactions' oid lists: one round trip. The tid row
/// is written by every commit, so a snapshot that sees a tid sees all of
/// that commit's objects. A row with oid -1 says a list in the range is
/// missing (pruned, or written by a program that keeps none): then
/// `CHANGED`, a scan of `pb_object`, answers instead.
const POLL: &str = "SELECT NULL::bigint, value FROM pb_meta WHERE key = 'last_tid'
                    UNION ALL SELECT unnest(oids), tid FROM pb_transaction WHERE tid > $1
                    UNION ALL (SELECT -1, tid FROM pb_transaction WHERE tid > $1 AND oids IS NULL LIMIT 1)";

/// What changed since `$1`, when an oid list is missing.
const CHANGED: &str = "SELECT oid, tid FROM pb_object WHERE tid > $1";

/// Locks every row the commit writes or must find unchanged, in oid order,
/// so two committers never wait on each other in a cycle.
const LOCK: &str = "SELECT oid, tid FROM pb_object WHERE oid = ANY($1) ORDER BY oid FOR NO KEY UPDATE";

/// Chooses the tid and writes everything in one statement: the `last_tid`
/// row lock, held until `COMMIT`, is the one serialized step of a commit,
/// and it orders commits so that tids grow in commit order.
const WRITE: &str = "
WITH t AS (UPDATE pb_meta SET value = value + 1 WHERE key = 'last_tid' RETURNING value AS tid),
ins AS (INSERT INTO pb_object (oid, tid, record, refs)
        SELECT w.oid, t.tid, w.record, w.refs::bigint[]
        FROM t, unnest($1::bigint[], $2::bytea[], $3::text[]) AS w(oid, record, refs)),
upd AS (UPDATE pb_object SET tid = t.tid, record = w.record, refs = w.refs::bigint[]
        FROM t, unnest($4::bigint[], $5::bytea[], $6::text[]) AS w(oid, record, refs) WHERE pb_object.oid = w.oid),
log AS (INSERT INTO pb_transaction (tid, committed_at, oids) SELECT tid, $7, $1::bigint[] || $4::bigint[] FROM t)
SELECT tid FROM t";

/// Everything reachable from `$1` within `$2` references, at most `$3`
/// objects, walked on the server along `pb_object.refs`.
const REACHABLE: &str = "
WITH RECURSIVE walk(oid, depth) AS (
    SELECT unnest($1::bigint[]), 0
    UNION
    SELECT r, walk.depth + 1 FROM walk JOIN pb_object o ON o.oid = walk.oid, unnest(o.refs) AS r
    WHERE walk.depth < $2
)
SELECT oid, tid, record FROM pb_object WHERE oid IN (SELECT oid FROM walk) LIMIT $3";

/// A client with the session's statements prepared on it.
struct Conn {
    client: Client,
    poll: Statement,
    load: Statement,
    load_many: Statement,
    lock: Statement,
    write: Statement,
    changed: Statement,
    reachable: Statement,
}

impl Conn {
    fn open(inner: &Inner) -> Result<Conn, StorageError> {
        let mut client = inner.connect()?;
        let mut prepare = |sql| client.prepare(sql).map_err(|e| inner.error(e));
        let poll = prepare(POLL)?;
        let load = prepare("SELECT tid, record FROM pb_object WHERE oid = $1")?;
        let load_many = prepare("SELECT oid, tid, record FROM pb_object WHERE oid = ANY($1)")?;
        let lock = prepare(LOCK)?;
        let write = prepare(WRITE)?;
        let changed = prepare(CHANGED)?;
        let reachable = prepare(REACHABLE)?;
        Ok(Conn { client, poll, load, load_many, lock, write, changed, reachable })
    }
}

/// The columns of the rows one commit writes, as arrays for `unnest`.
#[derive(Default)]
struct Rows<'a> {
    oids: Vec<i64>,
    records: Vec<&'a [u8]>,
    /// Each record's reference list as an array literal (`{1,2}`), cast on
    /// the server: arrays of arrays cannot be passed to `unnest` row by row.
    refs: Vec<String>,
}

impl<'a> Rows<'a> {
    fn push(&mut self, oid: Oid, record: &'a [u8]) {
        use std::fmt::Write;
        self.oids.push(oid.0 as i64);
        self.records.push(record);
        let mut list = String::from("{");
        // Records were encoded by this process; a list that cannot be read
        // is stored empty rather than failing the commit.
        for (i, r) in crate::record::refs_only(record).unwrap_or_default().iter().enumerate() {
            let _ = write!(list, "{}{}", if i == 0 { "" } else { "," }, *r as i64);
        }
        list.push('}');
        self.refs.push(list);
    }
}

/// The snapshot's newest tid and the objects committed after `since`
/// (none listed without a `since`).
fn poll(c: &mut Conn, since: Option<Tid>) -> Result<Snapshot, postgres::Error> {
    let since = since.map(|t| t.0 as i64);
    let rows = c.client.query(&c.poll, &[&since])?;
    let mut tid = 0;
    let mut changed = Vec::with_capacity(rows.len().saturating_sub(1));
    let mut complete = true;
    for row in rows {
        match row.get::<_, Option<i64>>(0) {
            None => tid = row.get::<_, i64>(1),
            Some(-1) => complete = false,
            Some(oid) => changed.push((Oid(oid as u64), Tid(row.get::<_, i64>(1) as u64))),
        }
    }
    if !complete {
        let rows = c.client.query(&c.changed, &[&since])?;
        changed = rows.iter().map(|r| (Oid(r.get::<_, i64>(0) as u64), Tid(r.get::<_, i64>(1) as u64))).collect();
    }
    Ok(Snapshot { tid: Tid(tid as u64), changed })
}

pub(super) struct PgSession {
    inner: Arc<Inner>,
    /// `None` after the connection was lost; the next `begin` opens another.
    conn: Option<Conn>,
    /// Whether the read snapshot's transaction is open.
    in_read: bool,
    /// The open snapshot's tid, for the state cache.
    snapshot: Option<Tid>,
}

impl PgSession {
    pub(super) fn new(inner: Arc<Inner>) -> Result<Self, StorageError> {
        let conn = Conn::open(&inner)?;
        Ok(PgSession { inner, conn: Some(conn), in_read: false, snapshot: None })
    }

    fn conn(&mut self) -> Result<&mut Conn, StorageError> {
        if self.conn.is_none() {
            self.in_read = false;
            self.conn = Some(Conn::open(&self.inner)?);
        }
        Ok(self.conn.as_mut().expect("set above"))
    }

    /// Turns a driver error into a typed one and leaves the session usable:
    /// a lost connection is dropped, an open transaction rolled back.
    fn fail(&mut self, e: postgres::Error) -> StorageError {
        let err = self.inner.error(e);
        if matches!(err, StorageError::Unavailable { .. }) {
            self.conn = None;
        } else if let Some(c) = &mut self.conn
            && c.client.batch_execute("ROLLBACK").is_err()
        {
            self.conn = None;
        }
        self.in_read = false;
        self.snapshot = None;
        err
    }

    fn try_begin(&mut self, since: Option<Tid>) -> Result<Snapshot, postgres::Error> {
        let in_read = std::mem::replace(&mut self.in_read, false);
        let Some(c) = &mut self.conn else { unreachable!("callers open the connection first") };
        let start = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
        c.client.batch_execute(if in_read {
            "ROLLBACK; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        } else {
            start
        })?;
        self.in_read = true;
        poll(c, since)
    }

    /// The state cache's record of `oid` for the open snapshot.
    fn cached(&self, oid: Oid) -> Option<Loaded> {
        self.inner.state_cache.as_ref()?.get(self.snapshot?, oid)
    }

    /// Offers a record loaded in the open snapshot to the state cache.
    fn keep(&self, oid: Oid, loaded: &Loaded) {
        if let (Some(cache), Some(snapshot)) = (&self.inner.state_cache, self.snapshot) {
            cache.put(snapshot, oid, loaded);
        }
    }

    /// Brings the state cache up to the new snapshot: drops what was
    /// committed after the cache's tid. The poll already listed that when it
    /// started from the same tid; otherwise one more query does.
    fn advance_state_cache(&mut self, since: Option<Tid>, snapshot: &Snapshot) -> Result<(), StorageError> {
        let Some(cache) = &self.inner.state_cache else { return Ok(()) };
        let (valid, empty) = cache.valid();
        if valid >= snapshot.tid.0 {
            return Ok(());
        }
        if empty || since == Some(Tid(valid)) {
            cache.advance(snapshot.tid, snapshot.changed.iter().map(|c| c.0));
            return Ok(());
        }
        let inner = self.inner.clone();
        let c = self.conn()?;
        match poll(c, Some(Tid(valid))) {
            Ok(poll) => {
                if let Some(cache) = &inner.state_cache {
                    cache.advance(snapshot.tid, poll.changed.iter().map(|c| c.0));
                }
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Rolls the commit's transaction back and reports a conflict on `oid`.
    fn conflict(&mut self, oid: Oid) -> StorageError {
        match self.conn.as_mut().map(|c| c.client.batch_execute("ROLLBACK")) {
            Some(Err(e)) => self.fail(e),
            _ => ConflictError { oid }.into(),
        }
    }

    fn end_read(&mut self) -> Result<(), StorageError> {
        self.snapshot = None;
        if std::mem::replace(&mut self.in_read, false)
            && let Some(c) = &mut self.conn
            && let Err(e) = c.client.batch_execute("ROLLBACK")
        {
            return Err(self.fail(e));
        }
        Ok(())
    }
}

impl Session for PgSession {
    fn begin(&mut self, since: Option<Tid>) -> Result<Snapshot, StorageError> {
        let fresh = self.conn.is_none();
        self.conn()?;
        let snapshot = match self.try_begin(since) {
            Ok(s) => s,
            Err(e) => match self.fail(e) {
                // A pooled connection may have died while idle (a restarted
                // server): nothing has happened yet, so try a new one once.
                StorageError::Unavailable { .. } if !fresh => {
                    self.conn()?;
                    self.try_begin(since).map_err(|e| self.fail(e))?
                }
                other => return Err(other),
            },
        };
        self.snapshot = Some(snapshot.tid);
        self.advance_state_cache(since, &snapshot)?;
        Ok(snapshot)
    }

    fn load(&mut self, oid: Oid) -> Result<Option<Loaded>, StorageError> {
        if let Some(found) = self.cached(oid) {
            return Ok(Some(found));
        }
        let c = self.conn()?;
        let loaded = match c.client.query_opt(&c.load, &[&(oid.0 as i64)]) {
            Ok(row) => row.map(|r| Loaded { tid: Tid(r.get::<_, i64>(0) as u64), record: r.get(1) }),
            Err(e) => return Err(self.fail(e)),
        };
        if let Some(l) = &loaded {
            self.keep(oid, l);
        }
        Ok(loaded)
    }

    fn load_many(&mut self, oids: &[Oid]) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        let mut out = Vec::with_capacity(oids.len());
        let mut missing = Vec::with_capacity(oids.len());
        for oid in oids {
            match self.cached(*oid) {
                Some(found) => out.push((*oid, found)),
                None => missing.push(oid.0 as i64),
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let c = self.conn()?;
        let rows = match c.client.query(&c.load_many, &[&missing]) {
            Ok(rows) => rows,
            Err(e) => return Err(self.fail(e)),
        };
        for r in rows {
            let oid = Oid(r.get::<_, i64>(0) as u64);
            let loaded = Loaded { tid: Tid(r.get::<_, i64>(1) as u64), record: r.get(2) };
            self.keep(oid, &loaded);
            out.push((oid, loaded));
        }
        Ok(out)
    }

    fn load_reachable(&mut self, roots: &[Oid], depth: u32, limit: usize) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        let c = self.conn()?;
        let roots = super::to_i64(roots.iter().copied());
        let (depth, limit) = (depth as i32, limit as i64);
        let rows = match c.client.query(&c.reachable, &[&roots, &depth, &limit]) {
            Ok(rows) => rows,
            Err(e) => return Err(self.fail(e)),
        };
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let oid = Oid(r.get::<_, i64>(0) as u64);
            let loaded = Loaded { tid: Tid(r.get::<_, i64>(1) as u64), record: r.get(2) };
            self.keep(oid, &loaded);
            out.push((oid, loaded));
        }
        Ok(out)
    }

    fn scan(&mut self, after: Option<Oid>, limit: usize) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        let c = self.conn()?;
        let after = after.map_or(-1, |o| o.0 as i64);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = "SELECT oid, tid, record FROM pb_object WHERE oid > $1 ORDER BY oid LIMIT $2";
        let rows = match c.client.query(sql, &[&after, &limit]) {
            Ok(rows) => rows,
            Err(e) => return Err(self.fail(e)),
        };
        Ok(rows
            .iter()
            .map(|r| (Oid(r.get::<_, i64>(0) as u64), Loaded { tid: Tid(r.get::<_, i64>(1) as u64), record: r.get(2) }))
            .collect())
    }

    fn end(&mut self) -> Result<(), StorageError> {
        self.end_read()
    }

    fn commit(
        &mut self,
        writes: &[Write],
        reads: &[(Oid, Tid)],
        resolve: &mut Resolve<'_>,
    ) -> Result<Option<Tid>, StorageError> {
        let in_read = std::mem::replace(&mut self.in_read, false);
        self.snapshot = None;
        let c = self.conn()?;
        // Ending the snapshot and starting the commit share one round trip.
        let begin = if in_read { "ROLLBACK; BEGIN" } else { "BEGIN" };
        // New objects have no row to lock: their oids are this process's
        // own, and inserting one that exists fails as a conflict.
        let existing = writes.iter().filter(|w| w.base.is_some()).map(|w| w.oid);
        let mut keys: Vec<i64> = existing.chain(reads.iter().map(|r| r.0)).map(|o| o.0 as i64).collect();
        keys.sort_unstable();
        keys.dedup();
        let locked = c.client.batch_execute(begin).and_then(|()| {
            // Only adding objects: nothing to lock.
            if keys.is_empty() { Ok(Vec::new()) } else { c.client.query(&c.lock, &[&keys]) }
        });
        let stored = match locked {
            Ok(rows) => rows.iter().map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1))).collect::<Vec<_>>(),
            Err(e) => return Err(self.fail(e)),
        };
        // `stored` is sorted by oid (the lock query orders it).
        let current =
            |oid: Oid| stored.binary_search_by_key(&(oid.0 as i64), |r| r.0).ok().map(|i| Tid(stored[i].1 as u64));
        let stale_read = reads.iter().find(|(oid, tid)| current(*oid) != Some(*tid)).map(|r| r.0);
        // Writes based on an older state than the stored one: mergeable if
        // both exist, which the merge step below decides.
        let stale: Vec<&Write> = writes.iter().filter(|w| current(w.oid) != w.base).collect();
        let unmergeable = stale.iter().find(|w| w.base.is_none() || current(w.oid).is_none()).map(|w| w.oid);
        if let Some(oid) = stale_read.or(unmergeable) {
            return Err(self.conflict(oid));
        }
        let mut merged: Vec<(Oid, Vec<u8>)> = Vec::with_capacity(stale.len());
        if !stale.is_empty() {
            // The rows are locked, so the states offered cannot move before
            // the merges are written.
            let keys = super::to_i64(stale.iter().map(|w| w.oid));
            let rows = match c.client.query(&c.load_many, &[&keys]) {
                Ok(rows) => rows,
                Err(e) => return Err(self.fail(e)),
            };
            for row in rows {
                let oid = Oid(row.get::<_, i64>(0) as u64);
                let loaded = Loaded { tid: Tid(row.get::<_, i64>(1) as u64), record: row.get(2) };
                match resolve(oid, &loaded) {
                    Some(record) => merged.push((oid, record)),
                    None => {
                        return Err(self.conflict(oid));
                    }
                }
            }
        }
        if writes.is_empty() {
            // Only reads were checked: releasing their locks is all that is left.
            return c.client.batch_execute("ROLLBACK").map(|()| None).map_err(|e| self.fail(e));
        }
        let (mut new, mut old) = (Rows::default(), Rows::default());
        for w in writes {
            let record = merged.iter().find(|(oid, _)| *oid == w.oid).map_or(w.record.as_slice(), |(_, r)| r);
            if w.base.is_none() { &mut new } else { &mut old }.push(w.oid, record);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        let params: [&(dyn postgres::types::ToSql + Sync); 7] =
            [&new.oids, &new.records, &new.refs, &old.oids, &old.records, &old.refs, &now];
        let tid: i64 = match c.client.query_one(&c.write, &params) {
            Ok(row) => row.get(0),
            // Two sessions inserted the same new oid (both creating the root,
            // say): the later one conflicts.
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                let oid = Oid(new.oids.first().copied().unwrap_or(0) as u64);
                return Err(self.conflict(oid));
            }
            Err(e) => return Err(self.fail(e)),
        };
        if tid % 1000 == 0 {
            // Old oid lists go a thousand at a time; the rows stay.
            let cutoff = tid - KEEP_CHANGES;
            let pruned = c.client.execute(
                "UPDATE pb_transaction SET oids = NULL WHERE tid > $1::bigint - 1000 AND tid <= $1::bigint AND oids IS NOT NULL",
                &[&cutoff],
            );
            if let Err(e) = pruned {
                return Err(self.fail(e));
            }
        }
        match c.client.batch_execute("COMMIT") {
            Ok(()) => Ok(Some(Tid(tid as u64))),
            Err(e) => match self.fail(e) {
                // The COMMIT may have reached the server before the
                // connection broke: the outcome is unknowable from here.
                StorageError::Unavailable { source, .. } => {
                    Err(StorageError::CommitUnknown { backend: "postgres", tid: Tid(tid as u64), source })
                }
                other => Err(other),
            },
        }
    }
}
