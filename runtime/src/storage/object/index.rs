//! What a process knows of the log: where each object's states lie, and a
//! bounded cache of record bytes.
//!
//! The index is built from the newest checkpoint and the commit objects
//! after it, and grows by one commit object at a time, in tid order. It
//! keeps an object's older states only while an open snapshot may need
//! them.

use super::layout::{Checkpoint, Commit, Place};
use crate::{Oid, Tid};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// How many recent transactions keep their oid lists, so a snapshot learns
/// what changed without walking the whole index.
const KEEP_CHANGES: usize = 10_000;

/// One state of an object: written by `tid` at `place`, or removed by gc
/// at `tid` (`None`).
pub(super) type Version = (Tid, Option<Place>);

#[derive(Default)]
pub(super) struct Index {
    /// The newest tid applied.
    pub head: u64,
    /// Each object's states, oldest first.
    objects: BTreeMap<Oid, Vec<Version>>,
    /// The oids each recent transaction wrote or removed, oldest first.
    recent: VecDeque<(u64, Vec<Oid>)>,
    /// Every transaction after this tid is in `recent`.
    recent_after: u64,
}

impl Index {
    /// The index a checkpoint describes. An object may have several
    /// entries, oldest first (a history-preserving database's kept states);
    /// size 0 marks its removal by gc at that tid.
    pub fn from_checkpoint(cp: &Checkpoint) -> Result<Index, String> {
        let n = cp.oids.len();
        if cp.tids.len() != n || cp.offsets.len() != n || cp.sizes.len() != n {
            return Err("its arrays differ in length".into());
        }
        let mut objects: BTreeMap<Oid, Vec<Version>> = BTreeMap::new();
        for i in 0..n {
            let place = Place { tid: Tid(cp.tids[i]), offset: cp.offsets[i], size: cp.sizes[i] };
            if place.tid.0 > cp.tid {
                return Err(format!("object {} has a state from tid {}, after the checkpoint", cp.oids[i], place.tid));
            }
            let versions = objects.entry(Oid(cp.oids[i])).or_default();
            if versions.last().is_some_and(|(t, _)| *t >= place.tid) {
                return Err(format!("object {} has its states out of tid order", cp.oids[i]));
            }
            versions.push((place.tid, (place.size > 0).then_some(place)));
        }
        Ok(Index { head: cp.tid, objects, recent: VecDeque::new(), recent_after: cp.tid })
    }

    /// Where every object stood at `tid`, as a checkpoint; with `history`,
    /// every state kept up to `tid`, removals included.
    pub fn checkpoint(&self, tid: u64, history: bool) -> Checkpoint {
        let mut cp = Checkpoint { tid, ..Default::default() };
        let mut push = |oid: Oid, at: Tid, place: Option<Place>| {
            cp.oids.push(oid.0);
            cp.tids.push(at.0);
            cp.offsets.push(place.map_or(0, |p| p.offset));
            cp.sizes.push(place.map_or(0, |p| p.size));
        };
        if history {
            for (oid, versions) in &self.objects {
                for (at, place) in versions.iter().filter(|(t, _)| t.0 <= tid) {
                    push(*oid, *at, *place);
                }
            }
        } else {
            for (oid, place) in self.live(tid) {
                push(oid, place.tid, Some(place));
            }
        }
        cp
    }

    /// The kept states of `oid`, oldest first (`None`: removed by gc).
    pub fn versions(&self, oid: Oid) -> &[Version] {
        self.objects.get(&oid).map_or(&[], Vec::as_slice)
    }

    /// Drops the states replaced at or before `before`, and objects whose
    /// removal is that old. Returns how many states it dropped.
    pub fn pack(&mut self, before: u64) -> u64 {
        let mut dropped = 0;
        for versions in self.objects.values_mut() {
            // A state is replaced when the next one (or its removal) is written.
            let keep_from = versions.iter().skip(1).take_while(|(t, _)| t.0 <= before).count();
            dropped += versions.drain(..keep_from).filter(|(_, p)| p.is_some()).count() as u64;
        }
        self.objects.retain(|_, versions| versions.iter().any(|(_, p)| p.is_some()));
        dropped
    }

    /// The commit objects that hold a state the index keeps.
    pub fn referenced(&self) -> std::collections::HashSet<Tid> {
        self.objects.values().flatten().filter_map(|(_, p)| p.map(|p| p.tid)).collect()
    }

    /// Where `oid`'s state as of `at` lies, if it existed then.
    pub fn at(&self, oid: Oid, at: u64) -> Option<Place> {
        self.objects.get(&oid).and_then(|v| version_at(v, at)).and_then(|(_, place)| place)
    }

    /// Adds commit `tid`, the one after the head. States older than
    /// `oldest_view` that a newer state at or before it replaced are
    /// dropped: no snapshot can see them.
    pub fn apply(&mut self, tid: u64, commit: &Commit, oldest_view: u64) {
        debug_assert_eq!(tid, self.head + 1);
        let mut touched: Vec<Oid> = Vec::with_capacity(commit.records.len() + commit.header.removed.len());
        for (oid, place) in &commit.records {
            self.objects.entry(*oid).or_default().push((Tid(tid), Some(*place)));
            touched.push(*oid);
        }
        for oid in commit.header.removed.iter().map(|o| Oid(*o)) {
            self.objects.entry(oid).or_default().push((Tid(tid), None));
            touched.push(oid);
        }
        let horizon = oldest_view.min(tid);
        for oid in &touched {
            let Some(versions) = self.objects.get_mut(oid) else { continue };
            // Keep the newest state visible at the horizon and everything after it.
            let keep_from = versions.iter().rposition(|(t, _)| t.0 <= horizon).unwrap_or(0);
            versions.drain(..keep_from);
            if versions.len() == 1 && versions[0].1.is_none() && versions[0].0.0 <= horizon {
                self.objects.remove(oid);
            }
        }
        touched.sort_unstable();
        touched.dedup();
        self.recent.push_back((tid, touched));
        while self.recent.len() > KEEP_CHANGES {
            if let Some((t, _)) = self.recent.pop_front() {
                self.recent_after = t;
            }
        }
        self.head = tid;
    }

    /// The objects whose state changed after `since` and at or before
    /// `until`, with the tid of their newest change.
    pub fn changed(&self, since: u64, until: u64) -> Vec<(Oid, Tid)> {
        let mut newest: HashMap<Oid, Tid> = HashMap::new();
        if since >= self.recent_after {
            for (tid, oids) in self.recent.iter().filter(|(t, _)| *t > since && *t <= until) {
                newest.extend(oids.iter().map(|o| (*o, Tid(*tid))));
            }
        } else {
            for (oid, versions) in &self.objects {
                if let Some((tid, _)) = version_at(versions, until).filter(|(t, _)| t.0 > since) {
                    newest.insert(*oid, tid);
                }
            }
        }
        let mut out: Vec<(Oid, Tid)> = newest.into_iter().collect();
        out.sort_unstable();
        out
    }

    /// Objects with an oid above `after`, in oid order, as of `at`.
    pub fn scan(&self, after: Option<Oid>, limit: usize, at: u64) -> Vec<(Oid, Place)> {
        let from = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        self.objects
            .range((from, std::ops::Bound::Unbounded))
            .filter_map(|(oid, v)| version_at(v, at).and_then(|(_, p)| p).map(|p| (*oid, p)))
            .take(limit)
            .collect()
    }

    /// Every object that exists at `at`, in oid order.
    pub fn live(&self, at: u64) -> Vec<(Oid, Place)> {
        self.scan(None, usize::MAX, at)
    }
}

/// The newest version at or before `at`.
fn version_at(versions: &[Version], at: u64) -> Option<Version> {
    versions.iter().rev().find(|(t, _)| t.0 <= at).copied()
}

/// Record bytes by object and tid, up to a byte budget; the oldest entries
/// leave first.
pub(super) struct RecordCache {
    map: HashMap<(Oid, Tid), Bytes>,
    order: VecDeque<(Oid, Tid)>,
    bytes: usize,
    limit: usize,
}

impl RecordCache {
    pub fn new(limit: usize) -> Self {
        RecordCache { map: HashMap::new(), order: VecDeque::new(), bytes: 0, limit }
    }

    pub fn get(&self, oid: Oid, tid: Tid) -> Option<Bytes> {
        self.map.get(&(oid, tid)).cloned()
    }

    /// Keeps a copy of `record`, so a slice of a large object does not keep
    /// the whole object alive.
    pub fn insert(&mut self, oid: Oid, tid: Tid, record: &[u8]) {
        if record.len() > self.limit / 4 || self.map.contains_key(&(oid, tid)) {
            return;
        }
        self.bytes += record.len();
        self.map.insert((oid, tid), Bytes::copy_from_slice(record));
        self.order.push_back((oid, tid));
        while self.bytes > self.limit {
            let Some(key) = self.order.pop_front() else { break };
            if let Some(r) = self.map.remove(&key) {
                self.bytes -= r.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::object::layout::CommitHeader;

    fn commit(tid: u64, oids: &[u64], removed: &[u64]) -> Commit {
        let header = CommitHeader { removed: removed.to_vec(), ..Default::default() };
        let records = oids.iter().map(|o| (Oid(*o), Place { tid: Tid(tid), offset: *o, size: 1 })).collect();
        Commit { header, records }
    }

    #[test]
    fn old_states_stay_while_a_snapshot_may_read_them() {
        let mut index = Index::default();
        index.apply(1, &commit(1, &[1, 2], &[]), u64::MAX);
        index.apply(2, &commit(2, &[1], &[]), 1);
        assert_eq!(index.at(Oid(1), 1).map(|p| p.tid), Some(Tid(1)), "a snapshot at 1 still sees tid 1");
        index.apply(3, &commit(3, &[1], &[2]), 3);
        assert_eq!(index.objects[&Oid(1)].len(), 1, "nothing older than the horizon is kept");
        assert!(!index.objects.contains_key(&Oid(2)), "a removal everyone sees drops the object");
        assert_eq!(index.changed(1, 3), [(Oid(1), Tid(3)), (Oid(2), Tid(3))]);
        let cp = index.checkpoint(3, false);
        assert_eq!((cp.oids, cp.tids), (vec![1], vec![3]));
    }

    #[test]
    fn the_cache_keeps_within_its_budget() {
        let mut cache = RecordCache::new(100);
        for i in 0..10 {
            cache.insert(Oid(i), Tid(1), &[0; 20]);
        }
        assert!(cache.bytes <= 100);
        assert!(cache.get(Oid(9), Tid(1)).is_some() && cache.get(Oid(0), Tid(1)).is_none());
    }
}
