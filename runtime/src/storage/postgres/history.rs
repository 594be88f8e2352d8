//! Reading the past of a history-preserving database: an object's
//! revisions, and sessions that load as of a tid.

use super::Inner;
use crate::storage::{Loaded, Resolve, Revision, Session, Snapshot, TransactionMeta, Write};
use crate::{Oid, StorageError, Tid};
use postgres::{Client, Statement};
use std::sync::Arc;

/// An object's state as of tid `$2`: the current one if it is that old, else
/// the replaced one that was current then.
const LOAD_AT: &str = "SELECT oid, tid, record FROM pb_object WHERE oid = ANY($1) AND tid <= $2
                       UNION ALL SELECT oid, tid, record FROM pb_object_revision
                       WHERE oid = ANY($1) AND tid <= $2 AND end_tid > $2";

/// Every object's state as of tid `$3` with an oid above `$1`, in oid order, at most `$2`.
const SCAN_AT: &str = "SELECT oid, tid, record FROM (
                           SELECT oid, tid, record FROM pb_object WHERE oid > $1 AND tid <= $3
                           UNION ALL SELECT oid, tid, record FROM pb_object_revision
                           WHERE oid > $1 AND tid <= $3 AND end_tid > $3) AS s
                       ORDER BY oid LIMIT $2";

/// The stored states of `oid`, newest first, with their transactions.
pub(super) fn revisions(
    c: &mut Client,
    oid: Oid,
    limit: usize,
) -> Result<Result<Vec<Revision>, StorageError>, postgres::Error> {
    // No object has an oid at or above 2^63.
    let Some(oid) = crate::storage::sql::sql_int(oid.0) else { return Ok(Ok(Vec::new())) };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = c.query(
        "SELECT h.tid, length(h.record), t.committed_at, t.user_name, t.description, t.extension
         FROM (SELECT tid, record FROM pb_object WHERE oid = $1
               UNION ALL SELECT tid, record FROM pb_object_revision WHERE oid = $1) AS h
         LEFT JOIN pb_transaction AS t ON t.tid = h.tid ORDER BY h.tid DESC LIMIT $2",
        &[&oid, &limit],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let extension = match row.get::<_, Option<Vec<u8>>>(5) {
            Some(bytes) => match TransactionMeta::decode_extension(&bytes) {
                Ok(e) => e,
                Err(e) => return Ok(Err(e)),
            },
            None => Default::default(),
        };
        let meta = TransactionMeta {
            user: row.get::<_, Option<String>>(3).unwrap_or_default(),
            description: row.get::<_, Option<String>>(4).unwrap_or_default(),
            extension,
        };
        out.push(Revision {
            tid: Tid(row.get::<_, i64>(0) as u64),
            time: crate::storage::layout::time_from_micros(row.get::<_, Option<i64>>(2).unwrap_or(0)),
            meta,
            size: row.get::<_, i32>(1) as usize,
        });
    }
    Ok(Ok(out))
}

/// A session that reads as of one tid, in read-only `REPEATABLE READ`
/// transactions (a pack running meanwhile cannot pull states from under one).
pub(super) struct PgAtSession {
    inner: Arc<Inner>,
    client: Client,
    load_at: Statement,
    at: Tid,
    in_read: bool,
}

impl PgAtSession {
    pub(super) fn new(inner: Arc<Inner>, at: Tid) -> Result<Self, StorageError> {
        let mut client = inner.connect()?;
        let load_at = client.prepare(LOAD_AT).map_err(|e| inner.error(e))?;
        Ok(PgAtSession { inner, client, load_at, at, in_read: false })
    }

    fn end_read(&mut self) -> Result<(), StorageError> {
        if std::mem::replace(&mut self.in_read, false) {
            self.client.batch_execute("ROLLBACK").map_err(|e| self.inner.error(e))?;
        }
        Ok(())
    }
}

impl Session for PgAtSession {
    fn begin(&mut self, _since: Option<Tid>) -> Result<Snapshot, StorageError> {
        self.end_read()?;
        self.client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(|e| self.inner.error(e))?;
        self.in_read = true;
        // A pack records its tid before removing anything, so a snapshot
        // that could miss a state sees that it was packed.
        let packed = self
            .client
            .query_opt("SELECT value FROM pb_meta WHERE key = 'packed_tid'", &[])
            .map_err(|e| self.inner.error(e))?
            .map_or(0, |r| r.get::<_, i64>(0));
        if self.at.0 < packed as u64 {
            self.end_read()?;
            return Err(StorageError::Packed { backend: "postgres", at: self.at, packed: Tid(packed as u64) });
        }
        // A past state never changes: nothing to list.
        Ok(Snapshot { tid: self.at, changed: Vec::new() })
    }

    fn load(&mut self, oid: Oid) -> Result<Option<Loaded>, StorageError> {
        Ok(self.load_many(&[oid])?.pop().map(|(_, l)| l))
    }

    fn load_many(&mut self, oids: &[Oid]) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        let keys = super::to_i64(oids.iter().copied());
        let at = crate::storage::sql::sql_bound(self.at.0);
        let rows = self.client.query(&self.load_at, &[&keys, &at]).map_err(|e| self.inner.error(e))?;
        Ok(rows.iter().map(super::loaded).collect())
    }

    fn scan(&mut self, after: Option<Oid>, limit: usize) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        // No object has an oid above one at or above 2^63.
        let Some(after) = after.map_or(Some(-1), |o| crate::storage::sql::sql_int(o.0)) else { return Ok(Vec::new()) };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let at = crate::storage::sql::sql_bound(self.at.0);
        let rows = self.client.query(SCAN_AT, &[&after, &limit, &at]).map_err(|e| self.inner.error(e))?;
        Ok(rows.iter().map(super::loaded).collect())
    }

    fn end(&mut self) -> Result<(), StorageError> {
        self.end_read()
    }

    fn commit(
        &mut self,
        writes: &[Write],
        _reads: &[(Oid, Tid)],
        _meta: &TransactionMeta,
        _resolve: &mut Resolve<'_>,
    ) -> Result<Option<Tid>, StorageError> {
        // `open_session_at` wraps this session in `Past`, which answers
        // commits itself; this answers the same if called directly.
        self.end_read()?;
        crate::storage::past::refuse("postgres", writes)
    }
}
