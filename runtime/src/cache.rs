//! The object cache of a connection: the identity map, bounded by object
//! count and estimated bytes, evicting least recently used objects.

use crate::{Object, Oid, Tid};
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
    /// For types that resolve conflicts: the state before this transaction changed it.
    pub(crate) original: Option<Arc<dyn Object>>,
    /// References in fields this program does not know, kept when saving.
    pub(crate) hidden_refs: Vec<u64>,
    /// The record size, for the byte bound.
    size: usize,
    /// When the object was last used, for LRU eviction.
    stamp: u64,
}

impl Entry {
    pub(crate) fn new(obj: Arc<dyn Object>, tid: Option<Tid>, size: usize) -> Self {
        Entry { obj, tid, original: None, hidden_refs: Vec::new(), size, stamp: 0 }
    }
}

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
