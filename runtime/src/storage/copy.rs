//! Copying a database from one storage to another, transaction by
//! transaction, keeping tids, times and metadata: the equivalent of
//! ZODB's `zodbconvert`, and the backup story (`docs/history.md`).

use super::{Committed, History, Storage, TransactionRange};
use crate::{Oid, StorageError, Tid};
use std::collections::{BTreeMap, BTreeSet};

/// Transactions read from the source at a time.
const PAGE: usize = 200;

/// What a copy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyReport {
    /// Transactions copied.
    pub transactions: u64,
    /// Records copied.
    pub records: u64,
    /// The newest tid the destination now has.
    pub last: Tid,
}

/// The refusal of a storage that cannot receive copied transactions
/// ([`AdminStorage::restore`](super::AdminStorage::restore)).
#[cfg(any(feature = "etcd", feature = "object-store", feature = "remote"))]
pub(crate) fn cannot_restore(backend: &str) -> StorageError {
    StorageError::Config(format!("the {backend} storage cannot receive copied transactions"))
}

/// The newest tid `storage` has committed (`Tid(0)` if none).
fn newest(storage: &dyn Storage) -> Result<Tid, StorageError> {
    let range = TransactionRange { after: Tid(0), until: None, limit: 1, newest_first: true, records: false };
    Ok(storage.transactions(range)?.first().map_or(Tid(0), |t| t.tid))
}

/// Copies into `to` every transaction of `from` newer than the newest one
/// `to` has, in tid order, with the stored `.proto` files: into an empty
/// storage the whole database, into an earlier copy what it lacks (an
/// interrupted copy resumes where it stopped). `progress` sees each
/// transaction as it is written.
///
/// Between two history-preserving storages every kept state is copied, so
/// the history is the same on both sides; from a history-free one, the
/// states still stored. Objects a history-preserving source removed by gc
/// are removed in the copy by the same transaction. Transactions whose oid
/// lists were dropped (older than the newest 10,000 on a history-free SQL
/// database, or packed) have their surviving records found by one scan of
/// the source, held in memory until written.
pub fn copy(
    from: &dyn Storage,
    to: &dyn Storage,
    progress: &mut dyn FnMut(&Committed),
) -> Result<CopyReport, StorageError> {
    let receiver = to.admin().ok_or(StorageError::NoAdmin { backend: to.name() })?;
    let start = newest(to)?;
    if start > Tid(0) {
        let theirs = from.transaction(start)?.map(|t| (t.tid, t.time));
        let ours = to.transaction(start)?.map(|t| (t.tid, t.time));
        if theirs != ours {
            return Err(StorageError::Config(format!(
                "the destination has transaction {start}, which the source does not have as it is: \
                 it is not an earlier copy of this source"
            )));
        }
    }
    to.put_schemas(&from.schemas()?)?;

    // Which transactions to copy have no oid list, so their records must be found by a scan.
    let mut unlisted = BTreeSet::new();
    let mut after = start;
    loop {
        let range = TransactionRange { after, until: None, limit: PAGE, newest_first: false, records: false };
        let page = from.transactions(range)?;
        let Some(last) = page.last() else { break };
        after = last.tid;
        unlisted.extend(page.iter().filter(|t| t.oids.is_none()).map(|t| t.tid));
    }
    let mut orphans: BTreeMap<Tid, Vec<(Oid, Vec<u8>)>> = BTreeMap::new();
    if !unlisted.is_empty() {
        let mut session = from.open_session()?;
        session.begin(None)?;
        let mut after = None;
        loop {
            let page = session.scan(after, 1000)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(*last);
            for (oid, loaded) in page {
                if unlisted.contains(&loaded.tid) {
                    orphans.entry(loaded.tid).or_default().push((oid, loaded.record));
                }
            }
        }
        session.end()?;
    }

    let keeps_history = from.history_mode() == History::Preserving;
    let mut report = CopyReport { last: start, ..CopyReport::default() };
    let mut after = start;
    loop {
        let range = TransactionRange { after, until: None, limit: PAGE, newest_first: false, records: true };
        let page = from.transactions(range)?;
        let Some(last) = page.last() else { break };
        after = last.tid;
        for mut txn in page {
            let mut removed = Vec::new();
            match &txn.oids {
                None => txn.records = orphans.remove(&txn.tid).unwrap_or_default(),
                // With history, every state a transaction wrote is stored:
                // a listed object without one was removed by it.
                Some(oids) if keeps_history => {
                    let written: BTreeSet<Oid> = txn.records.iter().map(|r| r.0).collect();
                    removed = oids.iter().copied().filter(|o| !written.contains(o)).collect();
                }
                Some(_) => {}
            }
            receiver.restore(&txn, &removed)?;
            report.transactions += 1;
            report.records += txn.records.len() as u64;
            report.last = txn.tid;
            progress(&txn);
        }
    }
    Ok(report)
}
