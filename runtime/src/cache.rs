//! The object cache of a connection: the identity map, bounded by object
//! count and estimated bytes, evicting least recently used objects.

use crate::persistent::Object;
use crate::{Oid, Tid};
use rustc_hash::FxHashSet;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Hashes an oid to itself with its low 7 bits copied to the top. Oids are
/// handed out in sequence, so neighbouring objects land in neighbouring
/// slots (few cache misses when a program walks what it created or loaded
/// together), while the top bits, which the table uses as tags, still differ.
#[derive(Default)]
pub(crate) struct OidHasher(u64);

impl Hasher for OidHasher {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 << 57)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type OidMap<V> = HashMap<Oid, V, BuildHasherDefault<OidHasher>>;
use std::sync::Arc;

/// The fixed cost per cached object added to its record size, a rough
/// measure of the map slot, the `Arc` and the decoded struct.
const OVERHEAD: usize = 128;

pub(crate) struct Entry {
    pub(crate) obj: Arc<dyn Object>,
    /// The tid of the stored state this object was loaded from or saved as;
    /// `None` for an object added in the current transaction.
    pub(crate) tid: Option<Tid>,
    /// What few entries have, boxed so that a map slot (key and entry) is
    /// one 64-byte cache line: a cache hit then reads one line of the map.
    rare: Option<Box<RareParts>>,
    /// The record size, for the byte bound.
    size: usize,
    /// When the object was last used, for LRU eviction.
    stamp: u64,
}

#[derive(Default)]
struct RareParts {
    /// For types that resolve conflicts: the state before this transaction changed it.
    original: Option<Arc<dyn Object>>,
    /// References in fields this program does not know, kept when saving.
    hidden_refs: Vec<u64>,
}

impl Entry {
    pub(crate) fn new(obj: Arc<dyn Object>, tid: Option<Tid>, size: usize) -> Self {
        Entry { obj, tid, rare: None, size, stamp: 0 }
    }

    /// For types that resolve conflicts: the state before this transaction changed it.
    pub(crate) fn original(&self) -> Option<&Arc<dyn Object>> {
        self.rare.as_ref().and_then(|r| r.original.as_ref())
    }

    pub(crate) fn set_original(&mut self, original: Option<Arc<dyn Object>>) {
        self.rare_mut(|r| r.original = original);
    }

    /// References in fields this program does not know, kept when saving.
    pub(crate) fn hidden_refs(&self) -> &[u64] {
        self.rare.as_ref().map_or(&[], |r| &r.hidden_refs)
    }

    pub(crate) fn set_hidden_refs(&mut self, refs: Vec<u64>) {
        self.rare_mut(|r| r.hidden_refs = refs);
    }

    /// Changes the rare parts, boxed only while something is in them.
    fn rare_mut(&mut self, change: impl FnOnce(&mut RareParts)) {
        match &mut self.rare {
            Some(rare) => {
                change(rare);
                if rare.is_empty() {
                    self.rare = None;
                }
            }
            None => {
                let mut fresh = RareParts::default();
                change(&mut fresh);
                if !fresh.is_empty() {
                    self.rare = Some(Box::new(fresh));
                }
            }
        }
    }
}

impl RareParts {
    fn is_empty(&self) -> bool {
        self.original.is_none() && self.hidden_refs.is_empty()
    }
}

// A map slot is the oid and the entry: one cache line.
const _: () = assert!(std::mem::size_of::<(Oid, Entry)>() <= 64);

pub(crate) struct Cache {
    map: OidMap<Entry>,
    bytes: usize,
    clock: u64,
    max_objects: usize,
    max_bytes: usize,
}

impl Cache {
    pub(crate) fn new(max_objects: usize, max_bytes: usize) -> Self {
        Cache { map: OidMap::default(), bytes: 0, clock: 0, max_objects, max_bytes }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    #[inline]
    pub(crate) fn get(&self, oid: Oid) -> Option<&Entry> {
        self.map.get(&oid)
    }

    pub(crate) fn get_mut(&mut self, oid: Oid) -> Option<&mut Entry> {
        self.map.get_mut(&oid)
    }

    /// Looks up and marks the entry as just used.
    #[inline]
    pub(crate) fn touch(&mut self, oid: Oid) -> Option<&Entry> {
        self.clock += 1;
        let clock = self.clock;
        let e = self.map.get_mut(&oid)?;
        e.stamp = clock;
        Some(e)
    }

    pub(crate) fn insert(&mut self, oid: Oid, mut entry: Entry) {
        self.clock += 1;
        entry.stamp = self.clock;
        self.bytes += entry.size + OVERHEAD;
        if let Some(old) = self.map.insert(oid, entry) {
            self.bytes -= old.size + OVERHEAD;
        }
    }

    pub(crate) fn remove(&mut self, oid: Oid) -> Option<Entry> {
        let e = self.map.remove(&oid)?;
        self.bytes -= e.size + OVERHEAD;
        Some(e)
    }

    pub(crate) fn set_size(&mut self, oid: Oid, size: usize) {
        if let Some(e) = self.map.get_mut(&oid) {
            self.bytes = self.bytes - e.size + size;
            e.size = size;
        }
    }

    pub(crate) fn over_limit(&self) -> bool {
        self.map.len() > self.max_objects || self.bytes > self.max_bytes
    }

    /// Evicts least recently used objects until the cache is at 90% of its
    /// bounds. Objects in `keep` (registered for writing) stay; with
    /// `unshared_only`, so do objects that someone outside the cache holds,
    /// which keeps identity within a transaction intact. Returns how many went.
    pub(crate) fn evict(&mut self, keep: &FxHashSet<Oid>, unshared_only: bool) -> u64 {
        if !self.over_limit() {
            return 0;
        }
        let target_objects = self.max_objects - self.max_objects / 10;
        let target_bytes = self.max_bytes - self.max_bytes / 10;
        let mut candidates: Vec<(u64, Oid)> = self
            .map
            .iter()
            .filter(|(oid, e)| {
                !keep.contains(oid)
                    && e.tid.is_some()
                    && !e.obj.is_changed()
                    && (!unshared_only || Arc::strong_count(&e.obj) == 1)
            })
            .map(|(oid, e)| (e.stamp, *oid))
            .collect();
        candidates.sort_unstable();
        let mut evicted = 0;
        for (_, oid) in candidates {
            if self.map.len() <= target_objects && self.bytes <= target_bytes {
                break;
            }
            self.remove(oid);
            evicted += 1;
        }
        evicted
    }
}
