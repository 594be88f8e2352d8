//! The oid space every backend shares: the 2^63 bound, how many oids one
//! reservation hands out, and where a reservation or a copied-in
//! transaction leaves the next oid.

use super::Committed;
use crate::{Oid, StorageError};

/// The bound every oid and tid stays below, 2^63, so that the SQL backends
/// store them as signed 64-bit integers (`docs/format.md`).
pub const OID_LIMIT: u64 = 1 << 63;

/// The most oids one [`Storage::new_oids`] call reserves; every backend
/// refuses a larger count with [`StorageError::TooManyOids`]. A
/// [`Database`](crate::Database) asks for blocks of at most 65,536.
pub const MAX_NEW_OIDS: u64 = 1_000_000;

/// The oids `new_oids(count)` hands out when the database's next oid is
/// `next` (the root's oid 0 is never handed out): an empty range for a
/// count of 0, and [`StorageError::TooManyOids`] for a count over
/// [`MAX_NEW_OIDS`] or one that would pass [`OID_LIMIT`]. Every backend
/// reserves through this, and stores the range's end only if it grew.
pub(crate) fn oid_range(backend: &'static str, next: u64, count: u64) -> Result<std::ops::Range<u64>, StorageError> {
    let start = next.max(1);
    let refuse = |reason: String| StorageError::TooManyOids { backend, count, reason };
    if count > MAX_NEW_OIDS {
        return Err(refuse(format!("one call reserves at most {MAX_NEW_OIDS}")));
    }
    match start.checked_add(count).filter(|end| *end <= OID_LIMIT) {
        Some(end) => Ok(start..end),
        None => Err(refuse(format!("oids stay below 2^63, and only {} remain", OID_LIMIT.saturating_sub(start)))),
    }
}

/// The next oid a restore of `txn` and `removed` ([`Storage::restore`])
/// implies, one above the largest oid it writes (0 if none), after
/// refusing a tid or an oid at or above [`OID_LIMIT`], which no storage
/// stores.
pub(crate) fn restored_next_oid(backend: &'static str, txn: &Committed, removed: &[Oid]) -> Result<u64, StorageError> {
    if txn.tid.0 >= OID_LIMIT {
        return Err(StorageError::Config(format!("cannot copy in transaction {}: tids stay below 2^63", txn.tid)));
    }
    let oids = txn.records.iter().map(|r| r.0).chain(removed.iter().copied());
    let mut next = 0;
    for oid in oids {
        if oid.0 >= OID_LIMIT {
            return Err(StorageError::OidOutOfRange { backend, oid, reason: "oids stay below 2^63".into() });
        }
        next = next.max(oid.0 + 1);
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tid;
    use crate::storage::{AdminStorage, MemoryStorage, Storage, TransactionMeta};

    /// A reservation is refused, never wrapped, where it would pass 2^63,
    /// however close the next oid is; a count of 0 is an empty range.
    #[test]
    fn oid_ranges_stop_at_2_63() {
        assert_eq!(oid_range("memory", 0, 3).unwrap(), 1..4, "oid 0 is the root's");
        assert_eq!(oid_range("memory", 67, 0).unwrap(), 67..67);
        assert_eq!(oid_range("memory", OID_LIMIT - 5, 5).unwrap(), OID_LIMIT - 5..OID_LIMIT);
        for (next, count) in [(OID_LIMIT - 5, 6), (OID_LIMIT, 1), (u64::MAX, 1), (67, MAX_NEW_OIDS + 1), (67, u64::MAX)]
        {
            match oid_range("memory", next, count) {
                Err(StorageError::TooManyOids { count: c, .. }) => assert_eq!(c, count),
                other => panic!("{next} + {count}: {other:?}"),
            }
        }
        let e = oid_range("sqlite", OID_LIMIT - 5, 6).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the sqlite database refuses to reserve 6 oids: oids stay below 2^63, and only 5 remain"
        );
    }

    /// A restore names the next oid it implies, and refuses an oid or a
    /// tid that no storage stores.
    #[test]
    fn a_restore_stays_below_2_63() {
        let txn = |tid: u64, oids: &[u64]| Committed {
            tid: Tid(tid),
            time: std::time::UNIX_EPOCH,
            meta: TransactionMeta::default(),
            oids: None,
            records: oids.iter().map(|o| (Oid(*o), Vec::new())).collect(),
        };
        assert_eq!(restored_next_oid("memory", &txn(3, &[0, 9, 4]), &[Oid(12)]).unwrap(), 13);
        assert_eq!(restored_next_oid("memory", &txn(3, &[]), &[]).unwrap(), 0);
        assert!(matches!(
            restored_next_oid("memory", &txn(3, &[5, u64::MAX]), &[]),
            Err(StorageError::OidOutOfRange { oid: Oid(u64::MAX), .. })
        ));
        assert!(matches!(
            restored_next_oid("memory", &txn(3, &[5]), &[Oid(OID_LIMIT)]),
            Err(StorageError::OidOutOfRange { .. })
        ));
        assert!(matches!(restored_next_oid("memory", &txn(OID_LIMIT, &[5]), &[]), Err(StorageError::Config(_))));
        let copied = MemoryStorage::new();
        assert!(copied.restore(&txn(2, &[1 << 63]), &[]).is_err());
        copied.restore(&txn(2, &[40]), &[]).unwrap();
        assert_eq!(copied.new_oids(1).unwrap(), 41..42, "oids handed out after a restore stay above it");
    }
}
