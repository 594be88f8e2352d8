//! From stored records to cached objects: the checks and decoding a load
//! goes through, and merging a conflicting change under a commit's locks.

use crate::cache::{Cache, Entry};
use crate::persistent::{Object, lookup_type};
use crate::record::RecordView;
use crate::shared::Shared;
use crate::storage::Loaded;
use crate::{Error, Oid, Result, Tid};
use std::sync::Arc;

/// Decodes a record's state with the registered type of its name. The state
/// moves into the decoder (unknown fields may keep a slice of it), leaving the
/// record's type name and references.
pub(crate) fn decode_any(shared: &Shared, oid: Oid, record: &mut RecordView) -> Result<Arc<dyn Object>> {
    let entry = lookup_type(record.type_name())
        .ok_or_else(|| Error::UnknownType { oid, type_name: record.type_name().to_owned() })?;
    let depth = shared.options.max_depth;
    let mut obj = crate::wire::with_depth_limit(depth, || (entry.decode)(std::mem::take(&mut record.state)))
        .map_err(|source| Error::Corrupt { oid, source })?;
    if let Some(o) = Arc::get_mut(&mut obj) {
        o.mark_unchanged();
    }
    Ok(obj)
}

/// Checks a loaded record's size and parses it; the state stays encoded.
pub(crate) fn unwrap_record(shared: &Shared, oid: Oid, loaded: Loaded) -> Result<(Tid, usize, RecordView)> {
    let Loaded { tid, record } = loaded;
    let size = record.len();
    let limit = shared.options.max_record_size;
    if size > limit {
        return Err(Error::RecordTooLarge { oid, size, limit });
    }
    let record = RecordView::parse(bytes::Bytes::from(record)).map_err(|source| Error::Corrupt { oid, source })?;
    Ok((tid, size, record))
}

/// A conflict merged during a commit, applied to the cache if it succeeds.
pub(crate) struct Merge {
    pub(crate) oid: Oid,
    pub(crate) merged: Arc<dyn Object>,
    /// The committed state the merge is based on: the new "original".
    pub(crate) committed: Arc<dyn Object>,
    pub(crate) record: Vec<u8>,
}

/// Merges this transaction's change to `oid` with the state committed
/// since, if its type resolves conflicts. `Ok(None)`: it cannot be merged.
pub(crate) fn merge(cache: &Cache, shared: &Shared, oid: Oid, committed: &Loaded) -> Result<Option<Merge>> {
    let Some(entry) = cache.get(oid) else { return Ok(None) };
    let Some(original) = entry.original().cloned() else { return Ok(None) };
    let (_, _, mut record) = unwrap_record(shared, oid, committed.clone())?;
    let Some(merged) = entry.obj.resolve_conflict(original.as_ref(), &record.state) else { return Ok(None) };
    let committed = decode_any(shared, oid, &mut record)?;
    let mut bytes = Vec::new();
    merged.encode_record(&mut bytes, entry.hidden_refs());
    Ok(Some(Merge { oid, merged, committed, record: bytes }))
}

/// A cache entry for a freshly loaded object.
pub(crate) fn loaded_entry(obj: Arc<dyn Object>, tid: Tid, size: usize, record: &RecordView) -> Entry {
    let mut entry = Entry::new(obj, Some(tid), size);
    entry.set_hidden_refs(crate::record::hidden_refs(record, entry.obj.as_ref()));
    entry
}
