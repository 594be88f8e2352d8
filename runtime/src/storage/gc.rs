//! Garbage collection, for every backend: which objects are unreachable,
//! when nothing is removed, and how a removal is recorded.
//!
//! A backend supplies the primitives of one collection as a [`GcTx`],
//! inside a backend transaction that keeps commits out while the graph is
//! walked (or, for a backend whose writes compare instead of lock, one that
//! fails its removal with [`commit::raced`] when a commit came between).
//! [`collect`] does the rest, as [`commit::run`] does for commits.

use super::{TransactionMeta, commit};
use crate::{Oid, StorageError};

/// The primitives of one garbage collection.
///
/// [`collect`] calls `current` once, then `remove` at most once, and always
/// ends with exactly one of `commit` or `rollback`, also after an error.
pub trait GcTx {
    /// Every stored object's oid and current record.
    fn current(&mut self) -> Result<Vec<(Oid, Vec<u8>)>, StorageError>;
    /// Removes the objects `dead` (sorted, not empty). A history-preserving
    /// database records the removal as a transaction with `meta` of its own,
    /// so that the database as it was before still loads them; a
    /// history-free one deletes them.
    fn remove(&mut self, dead: &[Oid], meta: &TransactionMeta) -> Result<(), StorageError>;
    /// Makes the removal durable and visible, and lets commits in again.
    fn commit(&mut self) -> Result<(), StorageError>;
    /// Ends without removing anything.
    fn rollback(&mut self);
}

/// Finds the objects unreachable from the root, following the reference
/// lists stored in records (states are never decoded), and removes them
/// unless `dry_run`. Returns them, sorted.
pub fn collect(tx: &mut dyn GcTx, dry_run: bool) -> Result<Vec<Oid>, StorageError> {
    let result = tx.current().and_then(unreachable).and_then(|dead| {
        if !dry_run && !dead.is_empty() {
            tx.remove(&dead, &removal(dead.len()))?;
        }
        Ok(dead)
    });
    match result {
        Ok(dead) if !dry_run && !dead.is_empty() => tx.commit().map(|()| dead),
        Ok(dead) => {
            tx.rollback();
            Ok(dead)
        }
        Err(e) => {
            tx.rollback();
            Err(e)
        }
    }
}

/// [`collect`] for a backend whose removal fails with [`commit::raced`]
/// when a commit came between its walk and its removal: walks again, with
/// a fresh transaction from `begin`, as [`commit::retry_races`] does.
pub fn collect_racing<T: GcTx>(
    attempts: u32,
    mut begin: impl FnMut() -> T,
    dry_run: bool,
) -> Result<Vec<Oid>, StorageError> {
    commit::retry_races(attempts, |_| collect(&mut begin(), dry_run))
}

/// The metadata of the transaction that records a removal.
fn removal(count: usize) -> TransactionMeta {
    TransactionMeta { description: format!("gc: removed {count} unreachable object(s)"), ..Default::default() }
}

/// The oids not reachable from the root, given every object's reference list.
/// Fails on a record whose reference list cannot be read.
pub fn unreachable(records: Vec<(Oid, Vec<u8>)>) -> Result<Vec<Oid>, StorageError> {
    let mut refs: std::collections::HashMap<Oid, Vec<u64>> = std::collections::HashMap::new();
    for (oid, record) in records {
        let list = crate::record::refs_only(&record)
            .map_err(|e| StorageError::Format(format!("object {oid} has a malformed record: {e}")))?;
        refs.insert(oid, list);
    }
    let mut live = std::collections::HashSet::new();
    let mut stack = vec![Oid::ROOT];
    while let Some(oid) = stack.pop() {
        if !live.insert(oid) {
            continue;
        }
        if let Some(list) = refs.get(&oid) {
            stack.extend(list.iter().map(|r| Oid(*r)).filter(|o| !live.contains(o)));
        }
    }
    let mut dead: Vec<Oid> = refs.into_keys().filter(|o| !live.contains(o)).collect();
    dead.sort_unstable();
    Ok(dead)
}
