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

use super::{Loaded, OID_LIMIT, Resolve, TransactionMeta, Write};
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
/// [`run`] calls `next_oid` at most once, then `lock` at most once, then
/// `stored` at most once, then `write` at most once, and always ends with
/// exactly one of `commit` or `rollback`, also after one of these returned
/// an error.
pub trait CommitTx {
    /// The backend's short name, as [`Storage::name`](super::Storage::name)
    /// gives it, for errors.
    fn name(&self) -> &'static str;
    /// The database's next oid: [`Storage::new_oids`](super::Storage::new_oids)
    /// has handed out every oid from 1 below it and none above, and a
    /// restore raised it past every oid it wrote. `highest` is the largest
    /// oid the commit creates: since the next oid only grows, a backend may
    /// answer from a value it read before when `highest` is below it, and
    /// reads it again only otherwise.
    fn next_oid(&mut self, highest: Oid) -> Result<Oid, StorageError>;
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
/// First, every written oid is below 2^63 ([`OID_LIMIT`]) and every new
/// object's oid is the root's or below the database's next oid
/// ([`CommitTx::next_oid`]): oids are only ever created where
/// [`Storage::new_oids`](super::Storage::new_oids) handed them out, so it
/// never hands out one that exists. Otherwise the commit fails with
/// [`StorageError::OidOutOfRange`] naming the first oid that breaks the
/// rule, having locked and written nothing.
///
/// Then the checks, in order, each failing the whole commit with a
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

/// Runs [`run`] for a backend whose write does not lock but checks that
/// nothing changed since its reads (etcd's compare, an object store's
/// create-if-absent). A write that finds another commit got there first
/// returns [`raced`]; nothing was written, so the commit decides again at
/// once against the newer state, merges included, with a fresh transaction
/// from `begin` (passed the attempt number, from 0), rather than failing
/// the application's transaction. After two lost races in a row it waits a
/// little longer each time, to spread out many racing writers. After
/// `attempts` lost races the last one is returned, an
/// [`Aborted`](StorageError::Aborted) error that is transient.
pub fn run_racing<T: CommitTx>(
    attempts: u32,
    mut begin: impl FnMut(u32) -> T,
    writes: &[Write],
    reads: &[(Oid, Tid)],
    meta: &TransactionMeta,
    resolve: &mut Resolve<'_>,
) -> Result<Option<Tid>, StorageError> {
    retry_races(attempts, |attempt| run(&mut begin(attempt), writes, reads, meta, resolve))
}

/// Runs `attempt` (passed the attempt number, from 0) again while it loses
/// a race ([`raced`]), at most `attempts` more times, waiting a little longer
/// each time after the second, as [`run_racing`] describes. Garbage
/// collection on the same backends retries through it too.
pub fn retry_races<T>(
    attempts: u32,
    mut attempt: impl FnMut(u32) -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    let mut n = 0;
    loop {
        match attempt(n) {
            Err(e) if is_race(&e) && n < attempts => {
                n += 1;
                if n > 2 {
                    std::thread::sleep(std::time::Duration::from_micros(200 * u64::from(n.min(20))));
                }
            }
            other => return other,
        }
    }
}

/// Another commit wrote between this commit's checks and its write.
#[derive(Debug, thiserror::Error)]
#[error("another commit wrote between this commit's checks and its write")]
struct Raced;

/// The error a [`CommitTx`] run by [`run_racing`] returns from `write` (or
/// `commit`) when another commit got there first and nothing was written.
pub fn raced(backend: &'static str) -> StorageError {
    StorageError::Aborted { backend, source: Box::new(Raced) }
}

fn is_race(e: &StorageError) -> bool {
    matches!(e, StorageError::Aborted { source, .. } if source.is::<Raced>())
}

fn decide_and_write(
    tx: &mut dyn CommitTx,
    writes: &[Write],
    reads: &[(Oid, Tid)],
    meta: &TransactionMeta,
    resolve: &mut Resolve<'_>,
) -> Result<Option<Tid>, StorageError> {
    check_oids(tx, writes)?;
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

/// Refuses a write at or above 2^63, and a new object at an oid the
/// database never handed out (other than the root's).
fn check_oids(tx: &mut dyn CommitTx, writes: &[Write]) -> Result<(), StorageError> {
    let backend = tx.name();
    if let Some(w) = writes.iter().find(|w| w.oid.0 >= OID_LIMIT) {
        return Err(StorageError::OidOutOfRange { backend, oid: w.oid, reason: "oids stay below 2^63".into() });
    }
    let created = || writes.iter().filter(|w| w.base.is_none() && w.oid != Oid::ROOT).map(|w| w.oid);
    let Some(highest) = created().max() else { return Ok(()) };
    let next = tx.next_oid(highest)?;
    match created().find(|oid| *oid >= next) {
        Some(oid) => Err(StorageError::OidOutOfRange {
            backend,
            oid,
            reason: format!(
                "a new object needs an oid the database handed out, and it handed out only those below {next}"
            ),
        }),
        None => Ok(()),
    }
}

/// Microseconds since the Unix epoch, as the SQL backends store times.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "etcd", feature = "object-store"))]
pub(crate) fn micros(time: SystemTime) -> i64 {
    time.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}
