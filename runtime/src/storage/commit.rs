//! The commit protocol every backend shares.
//!
//! A backend supplies the primitives of one commit as a [`CommitTx`]: lock
//! rows and read their tids, read stored records, write rows under a new tid,
//! end. [`run`] decides everything else once, for every backend: which rows
//! to lock, the order of the checks, which conflicts a merge may resolve, and
//! when nothing is written at all. A backend's [`Session::commit`] opens its
//! transaction and hands it to [`run`].
//!
//! [`Session::commit`]: super::Session::commit

use super::{Loaded, Resolve, TransactionMeta, Write};
use crate::{ConflictError, Oid, StorageError, Tid};
use std::time::SystemTime;

/// One row a commit writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row<'a> {
    /// The object.
    pub oid: Oid,
    /// Whether the object is new: its row must not exist yet.
    pub new: bool,
    /// The encoded `pbpersist.Record` to store.
    pub record: &'a [u8],
}

/// The primitives of one commit, inside a backend transaction that the
/// backend began before handing it to [`run`].
///
/// [`run`] calls `lock` at most once, then `stored` at most once, then
/// `write` at most once, and always ends with exactly one of `commit` or
/// `rollback`, also after one of these returned an error.
pub trait CommitTx {
    /// Keeps other commits from changing the rows of `oids` (sorted, without
    /// duplicates) until this commit ends, and returns the tid each row is
    /// stored with, in any order; oids with no row are left out. New objects
    /// are never passed: they have no row to lock.
    fn lock(&mut self, oids: &[Oid]) -> Result<Vec<(Oid, Tid)>, StorageError>;
    /// The stored records of `oids`, all locked, in any order.
    fn stored(&mut self, oids: &[Oid]) -> Result<Vec<(Oid, Loaded)>, StorageError>;
    /// Writes `rows` under a new tid, larger than every committed tid, and
    /// records the transaction: its tid, `time`, `meta` and the oids it
    /// wrote. Returns the tid. A new object whose row exists is a
    /// [`ConflictError`] naming it.
    fn write(&mut self, rows: &[Row<'_>], time: SystemTime, meta: &TransactionMeta) -> Result<Tid, StorageError>;
    /// Makes what was written durable and visible to later snapshots,
    /// atomically, and releases the locks.
    fn commit(&mut self) -> Result<(), StorageError>;
    /// Ends the transaction without writing and releases the locks. A backend
    /// that cannot roll back must leave the session usable (by discarding its
    /// connection, say).
    fn rollback(&mut self);
}

/// Commits `writes` through `tx`, checking `reads`, as
/// [`Session::commit`](super::Session::commit) describes.
///
/// The checks, in order, each failing the whole commit with a
/// [`ConflictError`] naming the first oid that fails it:
/// 1. every read's stored tid is the tid it was read at;
/// 2. every write of an existing object is based on a stored row (one that
///    gc removed cannot be merged into);
/// 3. every write whose base is not the stored tid is merged by `resolve`,
///    which is offered the stored state under the locks;
/// 4. every new object has no row yet (checked by the backend's `write`).
///
/// `resolve` is only called when checks 1 and 2 pass, so a commit that fails
/// anyway merges nothing. With no writes, the reads are checked and nothing
/// is written.
pub fn run(
    tx: &mut dyn CommitTx,
    writes: &[Write],
    reads: &[(Oid, Tid)],
    meta: &TransactionMeta,
    resolve: &mut Resolve<'_>,
) -> Result<Option<Tid>, StorageError> {
    match decide_and_write(tx, writes, reads, meta, resolve) {
        Ok(Some(tid)) => tx.commit().map(|()| Some(tid)),
        Ok(None) => {
            tx.rollback();
            Ok(None)
        }
        Err(e) => {
            tx.rollback();
            Err(e)
        }
    }
}

fn decide_and_write(
    tx: &mut dyn CommitTx,
    writes: &[Write],
    reads: &[(Oid, Tid)],
    meta: &TransactionMeta,
    resolve: &mut Resolve<'_>,
) -> Result<Option<Tid>, StorageError> {
    let mut keys: Vec<Oid> = writes.iter().filter(|w| w.base.is_some()).map(|w| w.oid).collect();
    keys.extend(reads.iter().map(|r| r.0));
    keys.sort_unstable();
    keys.dedup();
    let mut stored = if keys.is_empty() { Vec::new() } else { tx.lock(&keys)? };
    stored.sort_unstable_by_key(|s| s.0);
    let current = |oid: Oid| stored.binary_search_by_key(&oid, |s| s.0).ok().map(|i| stored[i].1);

    if let Some((oid, _)) = reads.iter().find(|(oid, tid)| current(*oid) != Some(*tid)) {
        return Err(ConflictError { oid: *oid }.into());
    }
    let stale: Vec<&Write> = writes.iter().filter(|w| w.base.is_some() && current(w.oid) != w.base).collect();
    if let Some(w) = stale.iter().find(|w| current(w.oid).is_none()) {
        return Err(ConflictError { oid: w.oid }.into());
    }
    let mut merged: Vec<(Oid, Vec<u8>)> = Vec::with_capacity(stale.len());
    if !stale.is_empty() {
        let oids: Vec<Oid> = stale.iter().map(|w| w.oid).collect();
        let mut states = tx.stored(&oids)?;
        states.sort_unstable_by_key(|s| s.0);
        for w in &stale {
            let conflict = || ConflictError { oid: w.oid };
            let i = states.binary_search_by_key(&w.oid, |s| s.0).map_err(|_| conflict())?;
            merged.push((w.oid, resolve(w.oid, &states[i].1).ok_or_else(conflict)?));
        }
        merged.sort_unstable_by_key(|m| m.0);
    }
    if writes.is_empty() {
        return Ok(None);
    }
    let rows: Vec<Row<'_>> = writes
        .iter()
        .map(|w| {
            let record = match merged.binary_search_by_key(&w.oid, |m| m.0) {
                Ok(i) => merged[i].1.as_slice(),
                Err(_) => w.record.as_slice(),
            };
            Row { oid: w.oid, new: w.base.is_none(), record }
        })
        .collect();
    tx.write(&rows, SystemTime::now(), meta).map(Some)
}

/// Microseconds since the Unix epoch, as the SQL backends store times.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "etcd", feature = "object-store"))]
pub(crate) fn micros(time: SystemTime) -> i64 {
    time.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}
