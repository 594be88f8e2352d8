//! One connection's session: a `REPEATABLE READ` snapshot for reads, and a
//! `READ COMMITTED` transaction for each commit.

use super::Inner;
use crate::storage::commit::{self, CommitTx, Row};
use crate::storage::sql::KEEP_CHANGES;
use crate::storage::{History, Loaded, Resolve, Session, Snapshot, TransactionMeta, Write};
use crate::{ConflictError, Oid, StorageError, Tid};
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

/// The parts of a commit's one statement: choose the tid, insert new rows,
/// update the others, log the transaction.
macro_rules! write_ctes {
    () => {
        "WITH t AS (UPDATE pb_meta SET value = value + 1 WHERE key = 'last_tid' RETURNING value AS tid),
ins AS (INSERT INTO pb_object (oid, tid, record, refs)
        SELECT w.oid, t.tid, w.record, w.refs::bigint[]
        FROM t, unnest($1::bigint[], $2::bytea[], $3::text[]) AS w(oid, record, refs)
        ON CONFLICT (oid) DO NOTHING RETURNING 1),
upd AS (UPDATE pb_object SET tid = t.tid, record = w.record, refs = w.refs::bigint[]
        FROM t, unnest($4::bigint[], $5::bytea[], $6::text[]) AS w(oid, record, refs) WHERE pb_object.oid = w.oid),
log AS (INSERT INTO pb_transaction (tid, committed_at, oids, user_name, description, extension)
        SELECT tid, $7, $1::bigint[] || $4::bigint[], $8, $9, $10 FROM t)"
    };
}

/// Chooses the tid and writes everything in one statement: the `last_tid`
/// row lock, held until `COMMIT`, is the one serialized step of a commit,
/// and it orders commits so that tids grow in commit order. Also counts the
/// new objects inserted: one fewer than given means a row existed.
const WRITE: &str = concat!(write_ctes!(), "\nSELECT tid, (SELECT count(*) FROM ins) FROM t");

/// As `WRITE`, and keeps the states the update replaces (a history-preserving
/// database): every sub-statement sees the rows as they were before it.
const WRITE_KEEPING: &str = concat!(
    write_ctes!(),
    ", rev AS (INSERT INTO pb_object_revision (oid, tid, end_tid, record)
              SELECT o.oid, o.tid, t.tid, o.record FROM pb_object o, t WHERE o.oid = ANY($4::bigint[]))",
    "\nSELECT tid, (SELECT count(*) FROM ins) FROM t"
);

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
    write_keeping: Statement,
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
        let write_keeping = prepare(WRITE_KEEPING)?;
        let changed = prepare(CHANGED)?;
        let reachable = prepare(REACHABLE)?;
        Ok(Conn { client, poll, load, load_many, lock, write, write_keeping, changed, reachable })
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
    // Every tid is below 2^63, so a `since` at or above it lists nothing.
    let since = since.map(|t| crate::storage::sql::sql_bound(t.0));
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
        if empty {
            cache.advance(None, snapshot.tid, std::iter::empty());
            return Ok(());
        }
        if since == Some(Tid(valid)) {
            cache.advance(since, snapshot.tid, snapshot.changed.iter().map(|c| c.0));
            return Ok(());
        }
        let inner = self.inner.clone();
        let c = self.conn()?;
        match poll(c, Some(Tid(valid))) {
            Ok(poll) => {
                if let Some(cache) = &inner.state_cache {
                    cache.advance(Some(Tid(valid)), snapshot.tid, poll.changed.iter().map(|c| c.0));
                }
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
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
        // No object has an oid at or above 2^63.
        let Some(key) = crate::storage::sql::sql_int(oid.0) else { return Ok(None) };
        let c = self.conn()?;
        let loaded = match c.client.query_opt(&c.load, &[&key]) {
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
                // No object has an oid at or above 2^63.
                None => missing.extend(crate::storage::sql::sql_int(oid.0)),
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
        for (oid, loaded) in rows.iter().map(super::loaded) {
            self.keep(oid, &loaded);
            out.push((oid, loaded));
        }
        Ok(out)
    }

    fn load_reachable(&mut self, roots: &[Oid], depth: u32, limit: usize) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        let c = self.conn()?;
        let roots = super::to_i64(roots.iter().copied());
        let depth = i32::try_from(depth).unwrap_or(i32::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match c.client.query(&c.reachable, &[&roots, &depth, &limit]) {
            Ok(rows) => rows,
            Err(e) => return Err(self.fail(e)),
        };
        let mut out = Vec::with_capacity(rows.len());
        for (oid, loaded) in rows.iter().map(super::loaded) {
            self.keep(oid, &loaded);
            out.push((oid, loaded));
        }
        Ok(out)
    }

    fn scan(&mut self, after: Option<Oid>, limit: usize) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        // No object has an oid above one at or above 2^63.
        let Some(after) = after.map_or(Some(-1), |o| crate::storage::sql::sql_int(o.0)) else { return Ok(Vec::new()) };
        let c = self.conn()?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = "SELECT oid, tid, record FROM pb_object WHERE oid > $1 ORDER BY oid LIMIT $2";
        let rows = match c.client.query(sql, &[&after, &limit]) {
            Ok(rows) => rows,
            Err(e) => return Err(self.fail(e)),
        };
        Ok(rows.iter().map(super::loaded).collect())
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
        let in_read = std::mem::replace(&mut self.in_read, false);
        self.snapshot = None;
        let c = self.conn()?;
        // Ending the snapshot and starting the commit share one round trip.
        if let Err(e) = c.client.batch_execute(if in_read { "ROLLBACK; BEGIN" } else { "BEGIN" }) {
            return Err(self.fail(e));
        }
        commit::run(&mut PgCommit { session: self, open: true, tid: None }, writes, reads, meta, resolve)
    }
}

/// One `READ COMMITTED` commit on the session's connection.
struct PgCommit<'s> {
    session: &'s mut PgSession,
    /// Whether the transaction is still open.
    open: bool,
    /// The tid `write` chose, for an error that cannot tell whether it committed.
    tid: Option<Tid>,
}

impl PgCommit<'_> {
    /// Runs `f` on the connection; a failure ends the transaction.
    fn with<T>(&mut self, f: impl FnOnce(&mut Conn) -> Result<T, postgres::Error>) -> Result<T, StorageError> {
        let Some(c) = self.session.conn.as_mut() else {
            self.open = false;
            return Err(StorageError::Unavailable {
                backend: "postgres",
                target: self.session.inner.target.clone(),
                source: "the connection was lost during the commit".into(),
            });
        };
        f(c).map_err(|e| {
            self.open = false;
            self.session.fail(e)
        })
    }
}

impl CommitTx for PgCommit<'_> {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn next_oid(&mut self, highest: Oid) -> Result<Oid, StorageError> {
        let known = self.session.inner.known_next_oid();
        if highest.0 < known {
            return Ok(Oid(known));
        }
        let row = self.with(|c| c.client.query_one("SELECT value FROM pb_meta WHERE key = 'next_oid'", &[]))?;
        Ok(Oid(self.session.inner.saw_next_oid(row.get::<_, i64>(0).max(0) as u64)))
    }

    fn lock(&mut self, oids: &[Oid]) -> Result<Vec<(Oid, Tid)>, StorageError> {
        let keys = super::to_i64(oids.iter().copied());
        let rows = self.with(|c| c.client.query(&c.lock, &[&keys]))?;
        Ok(rows.iter().map(|r| (Oid(r.get::<_, i64>(0) as u64), Tid(r.get::<_, i64>(1) as u64))).collect())
    }

    fn stored(&mut self, oids: &[Oid]) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        let keys = super::to_i64(oids.iter().copied());
        let rows = self.with(|c| c.client.query(&c.load_many, &[&keys]))?;
        Ok(rows.iter().map(super::loaded).collect())
    }

    fn write(
        &mut self,
        rows: &[Row<'_>],
        time: std::time::SystemTime,
        meta: &TransactionMeta,
    ) -> Result<Tid, StorageError> {
        let (mut new, mut old) = (Rows::default(), Rows::default());
        for row in rows {
            if row.new { &mut new } else { &mut old }.push(row.oid, row.record);
        }
        let now = commit::micros(time);
        let extension = meta.encode_extension();
        let params: [&(dyn postgres::types::ToSql + Sync); 10] = [
            &new.oids,
            &new.records,
            &new.refs,
            &old.oids,
            &old.records,
            &old.refs,
            &now,
            &meta.user,
            &meta.description,
            &extension,
        ];
        let history = self.session.inner.history == History::Preserving;
        let row = self.with(|c| c.client.query_one(if history { &c.write_keeping } else { &c.write }, &params))?;
        let (tid, inserted): (i64, i64) = (row.get(0), row.get(1));
        if inserted != new.oids.len() as i64 {
            // A new object's row existed (two sessions both creating the
            // root, say). Name one that exists now, after rolling back.
            self.rollback();
            let existing =
                self.with(|c| c.client.query_opt("SELECT min(oid) FROM pb_object WHERE oid = ANY($1)", &[&new.oids]));
            let oid = existing.ok().flatten().and_then(|r| r.get::<_, Option<i64>>(0)).or(new.oids.first().copied());
            return Err(ConflictError { oid: Oid(oid.unwrap_or(0) as u64) }.into());
        }
        if tid % 1000 == 0 && !history {
            // Old oid lists go a thousand at a time; the rows stay. A
            // history-preserving database keeps them for undo.
            let cutoff = tid - KEEP_CHANGES;
            self.with(|c| {
                c.client.execute(
                    "UPDATE pb_transaction SET oids = NULL \
                     WHERE tid > $1::bigint - 1000 AND tid <= $1::bigint AND oids IS NOT NULL",
                    &[&cutoff],
                )
            })?;
        }
        self.tid = Some(Tid(tid as u64));
        Ok(Tid(tid as u64))
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        self.open = false;
        let committed = self.with(|c| c.client.batch_execute("COMMIT"));
        match committed {
            // The COMMIT may have reached the server before the connection
            // broke: the outcome is unknowable from here.
            Err(StorageError::Unavailable { source, .. }) => {
                Err(StorageError::CommitUnknown { backend: "postgres", tid: self.tid.unwrap_or(Tid(0)), source })
            }
            other => other,
        }
    }

    fn rollback(&mut self) {
        if std::mem::replace(&mut self.open, false)
            && let Some(c) = self.session.conn.as_mut()
            && let Err(e) = c.client.batch_execute("ROLLBACK")
        {
            // `fail` drops a connection that cannot roll back.
            self.session.fail(e);
        }
    }
}
