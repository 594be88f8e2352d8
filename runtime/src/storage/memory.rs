//! An in-memory storage with the same semantics as the others, for tests.

use super::commit::{self, CommitTx, Row};
use super::{
    AdminStorage, Committed, History, HistoryStorage, Loaded, Resolve, Revision, Session, Snapshot, Storage,
    TransactionMeta, TransactionRange, Write,
};
use crate::{ConflictError, Oid, StorageError, Tid};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Keeps every committed state in memory; nothing survives the process.
///
/// It keeps old states so that each session reads a consistent snapshot;
/// created with [`History::Preserving`], it also lets them be read.
#[derive(Debug, Clone)]
pub struct MemoryStorage {
    inner: Arc<Mutex<State>>,
    history: History,
    id: u64,
}

/// One committed state of an object; `None` once gc removed it.
type Version = (Tid, Option<Arc<Vec<u8>>>);

/// The state of `versions` as of `at`, if it existed then.
fn as_of(versions: &[Version], at: Tid) -> Option<Loaded> {
    let (tid, record) = versions.iter().rev().find(|(t, _)| *t <= at)?;
    Some(Loaded { tid: *tid, record: record.as_ref()?.as_ref().clone() })
}

#[derive(Debug, Default)]
struct State {
    /// Every version of every object, oldest first.
    objects: HashMap<Oid, Vec<Version>>,
    /// Every transaction, in tid order.
    log: Vec<Logged>,
    last_tid: u64,
    next_oid: u64,
    schemas: std::collections::BTreeMap<String, String>,
    /// The tid the last pack kept everything from.
    packed: Tid,
}

/// A committed transaction: when, by whom, and the oids it wrote.
#[derive(Debug)]
struct Logged {
    tid: Tid,
    time: std::time::SystemTime,
    meta: TransactionMeta,
    oids: Vec<Oid>,
}

impl Default for MemoryStorage {
    fn default() -> Self {
        MemoryStorage { inner: Default::default(), history: History::Free, id: crate::storage::layout::random_u64() }
    }
}

impl MemoryStorage {
    /// An empty, history-free storage.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty storage, keeping history or not.
    pub fn with_history(history: History) -> Self {
        MemoryStorage { history, ..Self::default() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held cannot leave `State` half-updated:
        // every mutation below completes before anything that can panic.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Storage for MemoryStorage {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn open_session(&self) -> Result<Box<dyn Session>, StorageError> {
        Ok(Box::new(MemorySession { storage: self.clone(), snapshot: None, at: None }))
    }

    fn new_oids(&self, count: u64) -> Result<std::ops::Range<u64>, StorageError> {
        let mut s = self.lock();
        let range = crate::storage::oids::oid_range("memory", s.next_oid, count)?;
        s.next_oid = s.next_oid.max(range.end);
        Ok(range)
    }

    fn swap_schema(&self, name: &str, expected: Option<&str>, source: &str) -> Result<bool, StorageError> {
        let mut s = self.lock();
        if s.schemas.get(name).map(String::as_str) != expected {
            return Ok(false);
        }
        s.schemas.insert(name.to_owned(), source.to_owned());
        Ok(true)
    }

    fn delete_schemas(&self, names: &[String]) -> Result<(), StorageError> {
        let mut s = self.lock();
        for name in names {
            s.schemas.remove(name);
        }
        Ok(())
    }

    fn schemas(&self) -> Result<Vec<(String, String)>, StorageError> {
        Ok(self.lock().schemas.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    fn transactions(&self, range: TransactionRange) -> Result<Vec<Committed>, StorageError> {
        let s = self.lock();
        let listed = s.log.iter().filter(|l| l.tid > range.after && range.until.is_none_or(|u| l.tid <= u));
        let chosen: Vec<_> = if range.newest_first {
            listed.rev().take(range.limit).collect()
        } else {
            listed.take(range.limit).collect()
        };
        Ok(chosen
            .into_iter()
            .map(|Logged { tid, time, meta, oids }| {
                let mut oids = oids.clone();
                oids.sort_unstable();
                // As the SQL backends: only states that are still current.
                let records = if range.records {
                    oids.iter()
                        .filter_map(|oid| {
                            // History keeps every version; otherwise only the current one counts.
                            let versions = s.objects.get(oid)?;
                            let kept = if self.history == History::Preserving { versions.len() } else { 1 };
                            let (_, record) = versions.iter().rev().take(kept).find(|(t, _)| t == tid)?;
                            Some((*oid, record.as_ref()?.as_ref().clone()))
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                Committed { tid: *tid, time: *time, meta: meta.clone(), oids: Some(oids), records }
            })
            .collect())
    }

    fn history(&self) -> Option<&dyn HistoryStorage> {
        (self.history == History::Preserving).then_some(self)
    }

    fn admin(&self) -> Option<&dyn AdminStorage> {
        Some(self)
    }
}

impl HistoryStorage for MemoryStorage {
    fn states(&self, oid: Oid, limit: usize) -> Result<Vec<Revision>, StorageError> {
        let s = self.lock();
        let Some(versions) = s.objects.get(&oid) else { return Ok(Vec::new()) };
        let kept = if self.history == History::Preserving { versions.len() } else { 1 };
        let stored = versions.iter().rev().take(kept).filter_map(|(tid, record)| Some((*tid, record.as_ref()?.len())));
        Ok(stored
            .take(limit)
            .map(|(tid, size)| {
                let logged = s.log.binary_search_by_key(&tid, |l| l.tid).ok().map(|i| &s.log[i]);
                Revision {
                    tid,
                    time: logged.map_or(std::time::UNIX_EPOCH, |l| l.time),
                    meta: logged.map(|l| l.meta.clone()).unwrap_or_default(),
                    size,
                }
            })
            .collect())
    }

    fn packed_tid(&self) -> Result<Tid, StorageError> {
        Ok(self.lock().packed)
    }

    fn open_session_at(&self, at: Tid) -> Result<Box<dyn Session>, StorageError> {
        if self.history != History::Preserving {
            return Err(StorageError::NoHistory { backend: "memory" });
        }
        let packed = self.lock().packed;
        if at < packed {
            return Err(StorageError::Packed { backend: "memory", at, packed });
        }
        let at = at.min(Tid(self.lock().last_tid));
        Ok(super::past::Past::wrap("memory", MemorySession { storage: self.clone(), snapshot: None, at: Some(at) }))
    }
}

impl AdminStorage for MemoryStorage {
    fn database_id(&self) -> Result<Option<u64>, StorageError> {
        Ok(Some(self.id))
    }

    fn restore(&self, txn: &Committed, removed: &[Oid]) -> Result<(), StorageError> {
        let next = crate::storage::oids::restored_next_oid("memory", txn, removed)?;
        let mut s = self.lock();
        if txn.tid.0 <= s.last_tid {
            return Err(StorageError::Config(format!(
                "cannot copy in transaction {}: this database has {}",
                txn.tid, s.last_tid
            )));
        }
        s.last_tid = txn.tid.0;
        for (oid, record) in &txn.records {
            s.objects.entry(*oid).or_default().push((txn.tid, Some(Arc::new(record.clone()))));
        }
        for oid in removed {
            s.objects.entry(*oid).or_default().push((txn.tid, None));
        }
        let oids: Vec<Oid> = txn.records.iter().map(|r| r.0).chain(removed.iter().copied()).collect();
        s.next_oid = s.next_oid.max(next);
        s.log.push(Logged { tid: txn.tid, time: txn.time, meta: txn.meta.clone(), oids });
        Ok(())
    }

    fn collect_garbage(&self, dry_run: bool) -> Result<Vec<Oid>, StorageError> {
        // The storage's lock keeps commits out for the whole collection.
        super::gc::collect(&mut MemoryGc { state: self.lock(), history: self.history }, dry_run)
    }

    fn pack(&self, before: Tid, _batch: usize) -> Result<u64, StorageError> {
        if self.history != History::Preserving {
            return Ok(0);
        }
        let mut s = self.lock();
        // A tid not committed yet packs up to the newest one.
        let before = before.min(Tid(s.last_tid));
        s.packed = s.packed.max(before);
        let mut removed = 0;
        for versions in s.objects.values_mut() {
            // A version is replaced when the next one is written.
            let ends: Vec<Tid> = versions.iter().skip(1).map(|v| v.0).collect();
            let keep_from = ends.iter().take_while(|end| **end <= before).count();
            removed += versions.drain(..keep_from).filter(|v| v.1.is_some()).count() as u64;
        }
        s.objects.retain(|_, versions| versions.iter().any(|v| v.1.is_some()));
        Ok(removed)
    }
}

/// One garbage collection under the storage's lock; nothing changes before
/// `remove`, which applies everything at once.
struct MemoryGc<'a> {
    state: MutexGuard<'a, State>,
    history: History,
}

impl super::gc::GcTx for MemoryGc<'_> {
    fn current(&mut self) -> Result<Vec<(Oid, Vec<u8>)>, StorageError> {
        let current = self.state.objects.iter();
        Ok(current.filter_map(|(oid, versions)| Some((*oid, versions.last()?.1.as_deref()?.clone()))).collect())
    }

    fn remove(&mut self, dead: &[Oid], meta: &TransactionMeta) -> Result<(), StorageError> {
        let s = &mut *self.state;
        if self.history == History::Preserving {
            // The removed states stay in the history, ended by this transaction.
            s.last_tid += 1;
            let tid = Tid(s.last_tid);
            for oid in dead {
                s.objects.entry(*oid).or_default().push((tid, None));
            }
            s.log.push(Logged { tid, time: std::time::SystemTime::now(), meta: meta.clone(), oids: dead.to_vec() });
        } else {
            for oid in dead {
                s.objects.remove(oid);
            }
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        Ok(())
    }

    fn rollback(&mut self) {}
}

struct MemorySession {
    storage: MemoryStorage,
    snapshot: Option<Tid>,
    /// For a historical session, the tid it reads as of.
    at: Option<Tid>,
}

impl Session for MemorySession {
    fn begin(&mut self, since: Option<Tid>) -> Result<Snapshot, StorageError> {
        let s = self.storage.lock();
        if let Some(at) = self.at {
            self.snapshot = Some(at);
            return Ok(Snapshot { tid: at, changed: Vec::new() });
        }
        let tid = Tid(s.last_tid);
        let mut changed = Vec::new();
        if let Some(since) = since {
            for l in s.log.iter().filter(|l| l.tid > since) {
                changed.extend(l.oids.iter().map(|o| (*o, l.tid)));
            }
        }
        self.snapshot = Some(tid);
        Ok(Snapshot { tid, changed })
    }

    fn load(&mut self, oid: Oid) -> Result<Option<Loaded>, StorageError> {
        let s = self.storage.lock();
        let at = self.snapshot.or(self.at).unwrap_or(Tid(s.last_tid));
        Ok(s.objects.get(&oid).and_then(|versions| as_of(versions, at)))
    }

    fn scan(&mut self, after: Option<Oid>, limit: usize) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        let s = self.storage.lock();
        let at = self.snapshot.or(self.at).unwrap_or(Tid(s.last_tid));
        let mut oids: Vec<Oid> = s.objects.keys().copied().filter(|o| after.is_none_or(|a| *o > a)).collect();
        oids.sort_unstable();
        let visible = oids.into_iter().filter_map(|oid| Some((oid, as_of(&s.objects[&oid], at)?)));
        Ok(visible.take(limit).collect())
    }

    fn end(&mut self) -> Result<(), StorageError> {
        self.snapshot = None;
        Ok(())
    }

    fn commit(
        &mut self,
        writes: &[Write],
        reads: &[(Oid, Tid)],
        meta: &TransactionMeta,
        resolve: &mut Resolve<'_>,
    ) -> Result<Option<Tid>, StorageError> {
        self.snapshot = None;
        // The storage's lock is held for the whole commit.
        commit::run(&mut MemoryCommit { state: self.storage.lock() }, writes, reads, meta, resolve)
    }
}

/// One commit under the storage's lock. Nothing is changed before `write`,
/// which applies everything at once, so a rollback has nothing to undo.
struct MemoryCommit<'a> {
    state: MutexGuard<'a, State>,
}

impl MemoryCommit<'_> {
    /// The stored state of `oid`, unless it does not exist (or gc removed it).
    fn current(&self, oid: Oid) -> Option<(Tid, &Arc<Vec<u8>>)> {
        let (tid, record) = self.state.objects.get(&oid)?.last()?;
        Some((*tid, record.as_ref()?))
    }
}

impl CommitTx for MemoryCommit<'_> {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn next_oid(&mut self, _highest: Oid) -> Result<Oid, StorageError> {
        Ok(Oid(self.state.next_oid))
    }

    fn lock(&mut self, oids: &[Oid]) -> Result<Vec<(Oid, Tid)>, StorageError> {
        Ok(oids.iter().filter_map(|oid| Some((*oid, self.current(*oid)?.0))).collect())
    }

    fn stored(&mut self, oids: &[Oid]) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        Ok(oids
            .iter()
            .filter_map(|oid| {
                let (tid, record) = self.current(*oid)?;
                Some((*oid, Loaded { tid, record: record.as_ref().clone() }))
            })
            .collect())
    }

    fn write(
        &mut self,
        rows: &[Row<'_>],
        time: std::time::SystemTime,
        meta: &TransactionMeta,
    ) -> Result<Tid, StorageError> {
        if let Some(row) = rows.iter().find(|r| r.new && self.current(r.oid).is_some()) {
            return Err(ConflictError { oid: row.oid }.into());
        }
        let s = &mut *self.state;
        s.last_tid += 1;
        let tid = Tid(s.last_tid);
        for row in rows {
            s.objects.entry(row.oid).or_default().push((tid, Some(Arc::new(row.record.to_vec()))));
        }
        s.log.push(Logged { tid, time, meta: meta.clone(), oids: rows.iter().map(|r| r.oid).collect() });
        Ok(tid)
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        Ok(())
    }

    fn rollback(&mut self) {}
}
