//! History on a history-preserving database: an object's revisions, the
//! database as it was at a tid or a time, and undo.

use crate::storage::{Committed, HistoryStorage, Revision, Session, Storage, TransactionMeta, TransactionRange, Write};
use crate::{Database, Oid, Result, StorageError, Tid, UndoError};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// How much history a pack keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Everything needed to see the database as it was at any time in this
    /// last stretch (and from the newest transaction before it on).
    Last(std::time::Duration),
    /// Everything needed to see the database as of this tid and later.
    From(Tid),
}

impl From<std::time::Duration> for Keep {
    fn from(d: std::time::Duration) -> Self {
        Keep::Last(d)
    }
}

impl From<Tid> for Keep {
    fn from(tid: Tid) -> Self {
        Keep::From(tid)
    }
}

/// What a pack did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackReport {
    /// The database can be seen as of this tid and later.
    pub kept_from: Tid,
    /// Replaced states removed.
    pub states_removed: u64,
    /// The unreachable objects gc removed, sorted (on a history-preserving
    /// database their states stay in the history until a later pack).
    pub unreachable: Vec<Oid>,
}

/// Replaced states a pack removes per backend transaction.
const PACK_BATCH: usize = 10_000;

impl Database {
    /// The stored states of the object `oid`, newest first, at most `limit`:
    /// each with the tid, time, user and description of the transaction
    /// that wrote it, and its size. A history-free database lists the
    /// current state only.
    pub fn history(&self, oid: Oid, limit: usize) -> Result<Vec<Revision>> {
        Ok(self.shared.storage.revisions(oid, limit)?)
    }

    /// The database as it was when transaction `tid` committed: a read-only
    /// database whose transactions load every object (and follow every
    /// reference) as of that tid. Fails with
    /// [`StorageError::NoHistory`] on a history-free database.
    pub fn at(&self, tid: Tid) -> Result<Database> {
        // Starting a session first reports a database without history, or
        // packed past `tid`, here.
        let storage = &*self.shared.storage;
        let past = storage.require_history()?;
        let mut session = past.open_session_at(tid)?;
        session.begin(None)?;
        session.end()?;
        Database::with_storage_and_options(AtStorage { base: self.clone(), at: tid }, self.shared.options.clone())
    }

    /// The database as it was just before `time`: [`at`](Self::at) the
    /// newest transaction committed before it (an empty database if none was).
    pub fn before(&self, time: SystemTime) -> Result<Database> {
        let tid = self.shared.storage.tid_before(time)?.unwrap_or(Tid(0));
        self.at(tid)
    }

    /// Removes unreachable objects (as [`gc`](Self::gc) does) and the
    /// replaced states that no view of the database from `keep` on needs.
    /// Never decodes a state; removes states in batches, each in a
    /// transaction of its own, so commits go on meanwhile. A pack cut short
    /// (killed, say) leaves a consistent database, and the tid it promised
    /// to keep from already applies. Views of older tids fail with
    /// [`StorageError::Packed`]. On a history-free database it is gc.
    pub fn pack(&self, keep: impl Into<Keep>) -> Result<PackReport> {
        self.shared.refuse_writes()?;
        let storage = &*self.shared.storage;
        let kept_from = match keep.into() {
            Keep::From(tid) => tid,
            Keep::Last(d) => {
                let cutoff = SystemTime::now().checked_sub(d).unwrap_or(std::time::UNIX_EPOCH);
                storage.tid_before(cutoff)?.unwrap_or(Tid(0))
            }
        };
        let unreachable = self.gc(false)?.unreachable;
        let admin = storage.admin().ok_or(StorageError::NoAdmin { backend: storage.name() })?;
        let states_removed = admin.pack(kept_from, PACK_BATCH)?;
        Ok(PackReport { kept_from, states_removed, unreachable })
    }

    /// Undoes the transactions `tids` in one new transaction, which it
    /// returns: every object they wrote gets back the state it had before
    /// the earliest of them that wrote it. Objects they created keep their
    /// state and become unreachable as the references to them are undone
    /// (gc removes them). Fails with [`UndoError::Changed`] if a transaction
    /// not being undone changed one of those objects later, and writes
    /// nothing. The new transaction's description says what it undid.
    pub fn undo(&self, tids: &[Tid]) -> Result<Tid> {
        self.shared.refuse_writes()?;
        let storage = &*self.shared.storage;
        let past = storage.require_history()?;
        let mut tids = tids.to_vec();
        tids.sort_unstable();
        tids.dedup();
        // Undoing `t` restores states as of `t - 1`, which a pack may have removed.
        let packed = past.packed_tid()?;
        if let Some(t) = tids.first().filter(|t| **t <= packed) {
            let at = Tid(t.0.saturating_sub(1));
            return Err(StorageError::Packed { backend: storage.name(), at, packed }.into());
        }
        // Each object, and the earliest undone transaction that wrote it.
        let mut first: BTreeMap<Oid, Tid> = BTreeMap::new();
        for tid in &tids {
            let oids = storage.transaction(*tid)?.and_then(|c| c.oids).ok_or(UndoError::UnknownTransaction(*tid))?;
            for oid in oids {
                first.entry(oid).or_insert(*tid);
            }
        }
        // Every state written since an object's earliest undone transaction
        // must itself be undone; fetching one more than could be undone shows
        // whether an older, not undone one follows.
        let mut changed = Vec::new();
        for (oid, since) in &first {
            let revisions = past.states(*oid, tids.len() + 1)?;
            if revisions.iter().take_while(|r| r.tid >= *since).any(|r| tids.binary_search(&r.tid).is_err()) {
                changed.push(*oid);
            }
        }
        if !changed.is_empty() {
            return Err(UndoError::Changed { oids: changed }.into());
        }
        // The states to restore, read as of just before each earliest tid.
        let mut restore: Vec<(Oid, Option<Vec<u8>>)> = Vec::with_capacity(first.len());
        let mut sessions: BTreeMap<Tid, Box<dyn Session>> = BTreeMap::new();
        for (oid, since) in &first {
            let session = match sessions.entry(*since) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let mut s = past.open_session_at(Tid(since.0.saturating_sub(1)))?;
                    s.begin(None)?;
                    e.insert(s)
                }
            };
            restore.push((*oid, session.load(*oid)?.map(|l| l.record)));
        }
        drop(sessions);
        // Written on the current state, each based on the undone tid it still
        // has: a commit that slipped in since is a conflict.
        let mut session = storage.open_session()?;
        session.begin(None)?;
        let mut writes = Vec::new();
        for (oid, record) in restore {
            let Some(record) = record else { continue };
            let base = session.load(oid)?.map(|l| l.tid);
            writes.push(Write { oid, base, record });
        }
        let undone = tids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        let meta = TransactionMeta { description: format!("undo of transaction {undone}"), ..Default::default() };
        match session.commit(&writes, &[], &meta, &mut |_, _| None) {
            Ok(Some(tid)) => Ok(tid),
            // Only objects created by the undone transactions: nothing to write.
            Ok(None) => Ok(session.begin(None)?.tid),
            Err(StorageError::Conflict(c)) => Err(UndoError::Changed { oids: vec![c.oid] }.into()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The storage of a database seen as of one tid: reads go to the base
/// storage's historical sessions, writes are refused.
struct AtStorage {
    base: Database,
    at: Tid,
}

impl AtStorage {
    fn base(&self) -> &dyn Storage {
        &*self.base.shared.storage
    }

    /// The base storage's history, which [`Database::at`] made sure of.
    fn past(&self) -> std::result::Result<&dyn HistoryStorage, StorageError> {
        self.base().require_history()
    }

    fn refuse<T>(&self) -> std::result::Result<T, StorageError> {
        Err(StorageError::ReadOnly { backend: self.base().name() })
    }
}

impl Storage for AtStorage {
    fn name(&self) -> &'static str {
        self.base().name()
    }

    fn open_session(&self) -> std::result::Result<Box<dyn Session>, StorageError> {
        self.past()?.open_session_at(self.at)
    }

    fn new_oids(&self, _: u64) -> std::result::Result<std::ops::Range<u64>, StorageError> {
        self.refuse()
    }

    fn swap_schema(&self, _: &str, _: Option<&str>, _: &str) -> std::result::Result<bool, StorageError> {
        self.refuse()
    }

    fn delete_schemas(&self, _: &[String]) -> std::result::Result<(), StorageError> {
        self.refuse()
    }

    fn schemas(&self) -> std::result::Result<Vec<(String, String)>, StorageError> {
        self.base().schemas()
    }

    /// The base's transactions up to the view's tid, so that everything
    /// derived from the log (`transaction`, `tid_before`) stops there too.
    fn transactions(&self, range: TransactionRange) -> std::result::Result<Vec<Committed>, StorageError> {
        let until = range.until.map_or(self.at, |u| u.min(self.at));
        self.base().transactions(TransactionRange { until: Some(until), ..range })
    }

    fn read_only(&self) -> bool {
        true
    }

    fn history(&self) -> Option<&dyn HistoryStorage> {
        self.base().history().is_some().then_some(self)
    }
}

/// The base's history as far as the view's tid.
impl HistoryStorage for AtStorage {
    fn states(&self, oid: Oid, limit: usize) -> std::result::Result<Vec<Revision>, StorageError> {
        let mut all = self.past()?.states(oid, usize::MAX)?;
        all.retain(|r| r.tid <= self.at);
        all.truncate(limit);
        Ok(all)
    }

    fn open_session_at(&self, at: Tid) -> std::result::Result<Box<dyn Session>, StorageError> {
        self.past()?.open_session_at(at.min(self.at))
    }

    fn packed_tid(&self) -> std::result::Result<Tid, StorageError> {
        self.past()?.packed_tid()
    }
}
