//! What a database's connections share: the storage, the options, the
//! counters, the oid block and which schemas this process stored. Below
//! both `Database` (which hands it out) and `Connection` (which uses it).

use crate::storage::Storage;
use crate::{Oid, Options, Result};
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

pub(crate) struct Shared {
    pub(crate) storage: Box<dyn Storage>,
    oids: Mutex<OidBlock>,
    pub(crate) stats: Counters,
    pub(crate) options: Options,
    /// Types whose schema this process already stored.
    pub(crate) described: Mutex<std::collections::HashSet<&'static str>>,
    /// Whether the storage is read-only (asked once, not per write).
    pub(crate) read_only: bool,
}

/// Oids reserved from the storage and not yet handed out. Blocks grow so that
/// bulk inserts reserve rarely, while small programs waste few oids.
struct OidBlock {
    next: u64,
    end: u64,
    size: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) loads: AtomicU64,
    pub(crate) cache_hits: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) objects_written: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) conflicts: AtomicU64,
    pub(crate) conflicts_resolved: AtomicU64,
    pub(crate) evictions: AtomicU64,
}

impl Shared {
    pub(crate) fn new(storage: Box<dyn Storage>, read_only: bool, options: Options) -> Shared {
        Shared {
            storage,
            read_only,
            oids: Mutex::new(OidBlock { next: 0, end: 0, size: 64 }),
            stats: Counters::default(),
            options,
            described: Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// Stores the `.proto` schema of any of `objects`' types not stored yet
    /// by this process, so other languages and tools can decode them.
    pub(crate) fn describe<'o>(&self, objects: impl Iterator<Item = &'o dyn crate::persistent::Object>) -> Result<()> {
        // Commits usually hold few types: find them by pointer first, then
        // ask the shared set once per type.
        let mut types: Vec<&dyn crate::persistent::Object> = Vec::new();
        for obj in objects {
            if !types.iter().any(|t| std::ptr::eq(t.type_name(), obj.type_name())) {
                types.push(obj);
            }
        }
        let mut described = self.described.lock().unwrap_or_else(|e| e.into_inner());
        let mut schema = crate::schema::ProtoSchema::new();
        let mut new = Vec::new();
        for obj in types {
            if !described.contains(obj.type_name()) && !new.contains(&obj.type_name()) {
                new.push(obj.type_name());
                obj.describe_schema(&mut schema);
            }
        }
        if new.is_empty() {
            return Ok(());
        }
        // A package's file keeps the types others stored in it, even those
        // another process stores at the same moment.
        for (name, ours) in schema.files() {
            crate::storage::schema_files::update_stored(&*self.storage, &name, |stored| {
                Some(stored.map_or_else(|| ours.clone(), |stored| crate::schema::merge_with_stored(&ours, stored)))
            })?;
        }
        described.extend(new);
        Ok(())
    }

    /// A typed error, before anything reaches the storage, when the storage
    /// is read-only.
    pub(crate) fn refuse_writes(&self) -> Result<()> {
        if self.read_only {
            return Err(crate::StorageError::ReadOnly { backend: self.storage.name() }.into());
        }
        Ok(())
    }

    pub(crate) fn new_oid(&self) -> Result<Oid> {
        let mut block = self.oids.lock().unwrap_or_else(|e| e.into_inner());
        if block.next == block.end {
            // Only a refill reaches the storage; a read-only one never has a block.
            self.refuse_writes()?;
            let range = self.storage.new_oids(block.size)?;
            block.next = range.start;
            block.end = range.end;
            block.size = (block.size * 2).min(1 << 16);
        }
        let oid = block.next;
        block.next += 1;
        Ok(Oid(oid))
    }
}
