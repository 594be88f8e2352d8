//! An in-memory storage with the same semantics as the others, for tests.

use super::{Committed, Loaded, Resolve, Session, Snapshot, Storage, TransactionRange, Write};
use crate::{ConflictError, Oid, StorageError, Tid};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Keeps every committed state in memory; nothing survives the process.
///
/// It keeps old states so that each session reads a consistent snapshot.
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    inner: Arc<Mutex<State>>,
}

/// One committed state of an object.
type Version = (Tid, Arc<Vec<u8>>);

#[derive(Debug, Default)]
struct State {
    /// Every version of every object, oldest first.
    objects: HashMap<Oid, Vec<Version>>,
    /// The oids each transaction wrote, in tid order, and when.
    log: Vec<(Tid, std::time::SystemTime, Vec<Oid>)>,
    last_tid: u64,
    next_oid: u64,
    schemas: std::collections::BTreeMap<String, String>,
}

impl MemoryStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
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
        Ok(Box::new(MemorySession { storage: self.clone(), snapshot: None }))
    }

    fn new_oids(&self, count: u64) -> Result<std::ops::Range<u64>, StorageError> {
        let mut s = self.lock();
        let start = s.next_oid.max(1);
        s.next_oid = start + count;
        Ok(start..start + count)
    }

    fn put_schemas(&self, files: &[(String, String)]) -> Result<(), StorageError> {
        self.lock().schemas.extend(files.iter().cloned());
        Ok(())
    }

    fn schemas(&self) -> Result<Vec<(String, String)>, StorageError> {
        Ok(self.lock().schemas.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    fn transactions(&self, range: TransactionRange) -> Result<Vec<Committed>, StorageError> {
        let s = self.lock();
        let listed = s.log.iter().filter(|(t, _, _)| *t > range.after);
        let chosen: Vec<_> = if range.newest_first {
            listed.rev().take(range.limit).collect()
        } else {
            listed.take(range.limit).collect()
        };
        Ok(chosen
            .into_iter()
            .map(|(tid, time, oids)| {
                let mut oids = oids.clone();
                oids.sort_unstable();
                // As the SQL backends: only states that are still current.
                let records = if range.records {
                    oids.iter()
                        .filter_map(|oid| {
                            let (t, record) = s.objects.get(oid)?.last()?;
                            (t == tid).then(|| (*oid, record.as_ref().clone()))
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                Committed { tid: *tid, time: *time, oids: Some(oids), records }
            })
            .collect())
    }

    fn collect_garbage(&self, dry_run: bool) -> Result<Vec<Oid>, StorageError> {
        let mut s = self.lock();
        let current =
            s.objects.iter().filter_map(|(oid, versions)| versions.last().map(|(_, rec)| (*oid, rec.as_ref().clone())));
        let dead = super::unreachable(current)?;
        if !dry_run {
            for oid in &dead {
                s.objects.remove(oid);
            }
        }
        Ok(dead)
    }
}

struct MemorySession {
    storage: MemoryStorage,
    snapshot: Option<Tid>,
}

impl Session for MemorySession {
    fn begin(&mut self, since: Option<Tid>) -> Result<Snapshot, StorageError> {
        let s = self.storage.lock();
        let tid = Tid(s.last_tid);
        let mut changed = Vec::new();
        if let Some(since) = since {
            for (t, _, oids) in s.log.iter().filter(|(t, _, _)| *t > since) {
                changed.extend(oids.iter().map(|o| (*o, *t)));
            }
        }
        self.snapshot = Some(tid);
        Ok(Snapshot { tid, changed })
    }

    fn load(&mut self, oid: Oid) -> Result<Option<Loaded>, StorageError> {
        let s = self.storage.lock();
        let limit = self.snapshot.unwrap_or(Tid(s.last_tid));
        Ok(s.objects.get(&oid).and_then(|versions| {
            versions
                .iter()
                .rev()
                .find(|(t, _)| *t <= limit)
                .map(|(tid, rec)| Loaded { tid: *tid, record: rec.as_ref().clone() })
        }))
    }

    fn scan(&mut self, after: Option<Oid>, limit: usize) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        let s = self.storage.lock();
        let at = self.snapshot.unwrap_or(Tid(s.last_tid));
        let mut oids: Vec<Oid> = s.objects.keys().copied().filter(|o| after.is_none_or(|a| *o > a)).collect();
        oids.sort_unstable();
        let visible = oids.into_iter().filter_map(|oid| {
            let (tid, record) = s.objects[&oid].iter().rev().find(|(t, _)| *t <= at)?;
            Some((oid, Loaded { tid: *tid, record: record.as_ref().clone() }))
        });
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
        resolve: &mut Resolve<'_>,
    ) -> Result<Option<Tid>, StorageError> {
        self.snapshot = None;
        let mut s = self.storage.lock();
        let current = |s: &State, oid: Oid| s.objects.get(&oid).and_then(|v| v.last()).cloned();
        let mut merged: Vec<Option<Vec<u8>>> = vec![None; writes.len()];
        for (w, slot) in writes.iter().zip(&mut merged) {
            let stored = current(&s, w.oid);
            if stored.as_ref().map(|(t, _)| *t) == w.base {
                continue;
            }
            match (stored, w.base) {
                (Some((tid, record)), Some(_)) => {
                    *slot = Some(
                        resolve(w.oid, &Loaded { tid, record: record.as_ref().clone() })
                            .ok_or(ConflictError { oid: w.oid })?,
                    );
                }
                _ => return Err(ConflictError { oid: w.oid }.into()),
            }
        }
        for (oid, tid) in reads {
            if current(&s, *oid).map(|(t, _)| t) != Some(*tid) {
                return Err(ConflictError { oid: *oid }.into());
            }
        }
        if writes.is_empty() {
            return Ok(None);
        }
        s.last_tid += 1;
        let tid = Tid(s.last_tid);
        for (w, merged) in writes.iter().zip(merged) {
            let record = merged.unwrap_or_else(|| w.record.clone());
            s.objects.entry(w.oid).or_default().push((tid, Arc::new(record)));
        }
        s.log.push((tid, std::time::SystemTime::now(), writes.iter().map(|w| w.oid).collect()));
        Ok(Some(tid))
    }
}
