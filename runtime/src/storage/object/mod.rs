//! The object-store storage: a database as a log of immutable commit
//! objects in S3, another object store, or a local directory. The layout is
//! in docs/format.md; the design and its alternatives in
//! docs/object-store.md.
//!
//! The tid is the number of a commit object (`log/<tid>`). A commit is one
//! create-if-absent write of the object after the newest: whoever creates
//! it committed, and a loser reads the winner's object and decides again.
//! A snapshot is a tid; each process indexes where every record lies,
//! starting from the newest checkpoint.

mod index;
mod layout;
mod session;
mod store;

use super::{
    AdminStorage, Committed, History, HistoryStorage, Revision, Session, Storage, TransactionMeta, TransactionRange,
};
use crate::{Oid, StorageError, Tid};
use std::sync::Arc;
use store::{Created, Shared, Tuning};

/// A storage on an object store, under a key prefix.
///
/// Opened with a URL ([`ObjectStorage::open`]) or over any
/// [`object_store::ObjectStore`] ([`ObjectStorage::with_store`]). The
/// client runs on a Tokio runtime of its own, so the storage may be used
/// from inside another runtime.
#[derive(Clone)]
pub struct ObjectStorage {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ObjectStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStorage").field("target", &self.shared.target).finish_non_exhaustive()
    }
}

/// The version of the layout under the prefix (`<prefix>/format`).
const FORMAT_VERSION: u64 = 1;

/// ObjectRequests an [`ObjectStorage`] made to its store, as
/// [`ObjectStorage::requests`] counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObjectRequests {
    /// Reads of whole objects or ranges of one (ranges of one object read
    /// together count once).
    pub gets: u64,
    /// Writes, conditional or not.
    pub puts: u64,
    /// Listings.
    pub lists: u64,
    /// Deletions.
    pub deletes: u64,
}

/// In-memory stores by name, so that every `memory://name` URL in a process
/// opens the same data.
fn memory_store(name: &str) -> Arc<dyn object_store::ObjectStore> {
    static STORES: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, Arc<object_store::memory::InMemory>>>,
    > = std::sync::OnceLock::new();
    let mut stores = STORES.get_or_init(Default::default).lock().expect("memory stores lock");
    stores.entry(name.to_owned()).or_insert_with(|| Arc::new(object_store::memory::InMemory::new())).clone()
}

impl ObjectStorage {
    /// The version of the layout under the prefix (`<prefix>/format`).
    pub const FORMAT_VERSION: u64 = FORMAT_VERSION;

    /// Opens (or creates) the database a URL names:
    /// - `file:///path/to/dir`: a local directory (created if missing),
    ///   written with fsync;
    /// - `memory://name`: an in-memory store shared by everything in this
    ///   process that opens the same name, for tests;
    /// - `s3://bucket/prefix` (feature `s3`): S3 or an S3-protocol server,
    ///   with credentials, region and endpoint from the usual `AWS_*`
    ///   variables (`AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP=true` for a local
    ///   server). They are never shown in errors.
    ///
    /// The query may set `checkpoint-every=N` (a checkpoint every N
    /// commits, 1000 unless told; 0 for none), `cache-mib=N` (the record
    /// cache in memory, 64 MiB unless told), and `cache-dir=/path` with
    /// `cache-dir-mib=N` (a local file of records, 1 GiB unless told, so
    /// that a restarted process reads records from its disk). A new
    /// database is history-free unless the query says `history=preserving`;
    /// an existing one keeps the mode it was created with.
    pub fn open(url: &str) -> Result<ObjectStorage, StorageError> {
        ObjectStorage::open_url(url, true)
    }

    /// Opens the database a URL names, as [`open`](Self::open) does, but
    /// refuses a place that holds none instead of creating one.
    pub fn open_existing(url: &str) -> Result<ObjectStorage, StorageError> {
        ObjectStorage::open_url(url, false)
    }

    fn open_url(url: &str, create: bool) -> Result<ObjectStorage, StorageError> {
        let bad = |why: &str| StorageError::Config(format!("the object store URL is malformed ({why})"));
        let (rest, query) = url.split_once('?').unwrap_or((url, ""));
        let mut tuning = Tuning::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').ok_or_else(|| bad("a query parameter has no value"))?;
            let number = || value.parse::<u64>().map_err(|_| bad("a parameter is not a number"));
            match name {
                "checkpoint-every" => tuning.checkpoint_every = number()?,
                "cache-mib" => tuning.cache_bytes = (number()? as usize) << 20,
                "cache-dir" => tuning.cache_dir = Some(value.into()),
                "cache-dir-mib" => tuning.cache_dir_bytes = number()? << 20,
                "history" => {
                    tuning.history = match value {
                        "preserving" => History::Preserving,
                        "free" => History::Free,
                        _ => return Err(bad("history is preserving or free")),
                    }
                }
                _ => {
                    return Err(bad(
                        "unknown parameter; known: checkpoint-every, cache-mib, cache-dir, cache-dir-mib, history",
                    ));
                }
            }
        }
        let (scheme, path) = rest.split_once("://").ok_or_else(|| bad("it has no scheme"))?;
        match scheme {
            "file" => {
                if !path.starts_with('/') {
                    return Err(bad("a file URL needs an absolute path: file:///path"));
                }
                if create {
                    std::fs::create_dir_all(path)
                        .map_err(|e| StorageError::Config(format!("cannot create the directory {path}: {e}")))?;
                }
                std::fs::metadata(path)
                    .map_err(|e| StorageError::Config(format!("cannot open the directory {path}: {e}")))?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(path)
                    .map_err(|e| StorageError::Config(format!("cannot open the directory {path}: {e}")))?
                    .with_fsync(true);
                ObjectStorage::build(Arc::new(store), "", rest.to_owned(), tuning, create)
            }
            "memory" => {
                let (name, prefix) = path.split_once('/').unwrap_or((path, ""));
                ObjectStorage::build(memory_store(name), prefix, rest.to_owned(), tuning, create)
            }
            #[cfg(feature = "s3")]
            "s3" => {
                let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
                if bucket.is_empty() {
                    return Err(bad("it names no bucket: s3://bucket/prefix"));
                }
                let store = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .build()
                    .map_err(|e| StorageError::Config(format!("cannot open the bucket {bucket}: {e}")))?;
                ObjectStorage::build(Arc::new(store), prefix, format!("s3://{bucket}/{prefix}"), tuning, create)
            }
            _ => Err(bad("known schemes: file://, memory://, and s3:// with the s3 feature")),
        }
    }

    /// Opens (or creates) the database under `prefix` in any object store,
    /// such as one configured by hand for GCS or Azure. The store must
    /// honour create-if-absent writes ([`object_store::PutMode::Create`]);
    /// creating a database checks that it does.
    pub fn with_store(store: Arc<dyn object_store::ObjectStore>, prefix: &str) -> Result<ObjectStorage, StorageError> {
        let target = format!("{store}/{prefix}");
        ObjectStorage::build(store, prefix, target, Tuning::default(), true)
    }

    fn build(
        store: Arc<dyn object_store::ObjectStore>,
        prefix: &str,
        target: String,
        tuning: Tuning,
        create: bool,
    ) -> Result<ObjectStorage, StorageError> {
        let shared = Shared::new(store, prefix, target, tuning)?;
        shared.prepare(FORMAT_VERSION, create)?;
        Ok(ObjectStorage { shared: Arc::new(shared) })
    }

    /// The store and prefix, without credentials, as errors show them.
    pub fn target(&self) -> &str {
        &self.shared.target
    }

    /// The requests made so far by this storage and its sessions.
    pub fn requests(&self) -> ObjectRequests {
        use std::sync::atomic::Ordering::Relaxed;
        let r = &self.shared.requests;
        ObjectRequests {
            gets: r.gets.load(Relaxed),
            puts: r.puts.load(Relaxed),
            lists: r.lists.load(Relaxed),
            deletes: r.deletes.load(Relaxed),
        }
    }

    /// Writes a checkpoint of the newest commit now, besides those written
    /// every `checkpoint-every` commits, so that the next process to open
    /// the database reads it instead of the log before it. Returns its tid.
    pub fn checkpoint(&self) -> Result<Tid, StorageError> {
        for _ in 0..64 {
            let head = self.shared.refresh()?;
            if self.shared.checkpoint_at(head)? {
                return Ok(Tid(head));
            }
        }
        Err(StorageError::Aborted {
            backend: store::BACKEND,
            source: "commits kept arriving during the checkpoint".into(),
        })
    }

    /// Removes every object under the prefix: the whole database. For tests
    /// and benchmarks that start from nothing.
    pub fn destroy(self) -> Result<(), StorageError> {
        self.shared.delete_all()
    }
}

/// One garbage collection: the walk reads the newest commit's objects, and
/// the removal is the next commit object, created only if no commit took
/// its tid in between.
struct ObjectGc<'s> {
    shared: &'s Shared,
    /// The newest tid when the walk read the objects.
    head: u64,
    /// The removal's commit, applied to the index once it is the whole story.
    removed: Option<(u64, layout::Commit)>,
}

impl super::gc::GcTx for ObjectGc<'_> {
    fn current(&mut self) -> Result<Vec<(Oid, Vec<u8>)>, StorageError> {
        self.head = self.shared.refresh()?;
        let live = self.shared.index.read().expect("index lock").live(self.head);
        let records = self.shared.read(&live)?;
        Ok(records.into_iter().map(|(oid, _, bytes)| (oid, bytes.to_vec())).collect())
    }

    fn remove(&mut self, dead: &[Oid], meta: &TransactionMeta) -> Result<(), StorageError> {
        // On a history-preserving database the removal is a transaction of
        // its own in the log, as on the other storages.
        let tid = self.head + 1;
        let mut header = Shared::header(std::time::SystemTime::now(), meta);
        header.removed = dead.iter().map(|o| o.0).collect();
        let bytes = layout::encode_commit(&header, &[]);
        match self.shared.create(&self.shared.keys.commit(tid), bytes.clone())? {
            Created::Yes => {
                self.removed = Some((tid, layout::decode_commit(Tid(tid), &bytes)?));
                Ok(())
            }
            Created::Exists => Err(super::commit::raced(store::BACKEND)),
        }
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        if let Some((tid, commit)) = self.removed.take() {
            self.shared.applied_own(tid, &commit, &[]);
            self.shared.checkpoint_if_due(tid);
        }
        Ok(())
    }

    fn rollback(&mut self) {}
}

impl Storage for ObjectStorage {
    fn name(&self) -> &'static str {
        "object-store"
    }

    fn open_session(&self) -> Result<Box<dyn Session>, StorageError> {
        Ok(Box::new(session::ObjectSession::new(self.shared.clone())))
    }

    fn new_oids(&self, count: u64) -> Result<std::ops::Range<u64>, StorageError> {
        self.shared.new_oids(count)
    }

    fn swap_schema(&self, name: &str, expected: Option<&str>, source: &str) -> Result<bool, StorageError> {
        self.shared.swap_schema(name, expected, source)
    }

    fn delete_schemas(&self, names: &[String]) -> Result<(), StorageError> {
        self.shared.delete_schemas(names)
    }

    fn schemas(&self) -> Result<Vec<(String, String)>, StorageError> {
        self.shared.schemas()
    }

    fn transactions(&self, range: TransactionRange) -> Result<Vec<Committed>, StorageError> {
        let shared = &self.shared;
        let head = shared.refresh()?;
        let last = range.until.map_or(head, |u| u.0.min(head));
        // No tid comes after `u64::MAX`.
        let Some(first) = range.after.0.checked_add(1) else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        let mut visit = |tid: u64| -> Result<bool, StorageError> {
            if out.len() >= range.limit {
                return Ok(false);
            }
            // A pack removes commit objects; the listing goes on past them.
            let Some((commit, bytes)) = shared.commit_object(tid)? else { return Ok(true) };
            // Empty objects (a claimed tid) are not transactions; gc's
            // removals are only where history is kept.
            let removal = !commit.header.removed.is_empty() && shared.keeps_history();
            if commit.records.is_empty() && !removal {
                return Ok(true);
            }
            let h = &commit.header;
            let mut records = Vec::new();
            if range.records {
                let index = shared.index.read().expect("index lock");
                for (oid, place) in &commit.records {
                    let stored = if shared.keeps_history() {
                        index.versions(*oid).contains(&(place.tid, Some(*place)))
                    } else {
                        index.at(*oid, head) == Some(*place)
                    };
                    if stored {
                        records.push((*oid, layout::slice(&bytes, *place).to_vec()));
                    }
                }
            }
            out.push(Committed {
                tid: Tid(tid),
                time: crate::storage::layout::time_from_micros(h.committed_at),
                meta: TransactionMeta {
                    user: h.user.clone(),
                    description: h.description.clone(),
                    extension: h.extension.clone(),
                },
                oids: Some(if removal {
                    commit.header.removed.iter().map(|o| Oid(*o)).collect()
                } else {
                    commit.records.iter().map(|(o, _)| *o).collect()
                }),
                records,
            });
            Ok(true)
        };
        if range.newest_first {
            for tid in (first..=last).rev() {
                if !visit(tid)? {
                    break;
                }
            }
        } else {
            for tid in first..=last {
                if !visit(tid)? {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn history(&self) -> Option<&dyn HistoryStorage> {
        self.shared.keeps_history().then_some(self)
    }

    fn admin(&self) -> Option<&dyn AdminStorage> {
        Some(self)
    }
}

impl HistoryStorage for ObjectStorage {
    fn states(&self, oid: Oid, limit: usize) -> Result<Vec<Revision>, StorageError> {
        self.shared.refresh()?;
        let kept: Vec<layout::Place> = {
            let index = self.shared.index.read().expect("index lock");
            index.versions(oid).iter().rev().filter_map(|(_, p)| *p).take(limit).collect()
        };
        let mut out = Vec::with_capacity(kept.len());
        for place in kept {
            let (time, meta) = match self.shared.commit_object(place.tid.0)? {
                Some((commit, _)) => {
                    let h = commit.header;
                    let meta = TransactionMeta { user: h.user, description: h.description, extension: h.extension };
                    (crate::storage::layout::time_from_micros(h.committed_at), meta)
                }
                None => (std::time::UNIX_EPOCH, TransactionMeta::default()),
            };
            out.push(Revision { tid: place.tid, time, meta, size: place.size as usize });
        }
        Ok(out)
    }

    fn open_session_at(&self, at: Tid) -> Result<Box<dyn Session>, StorageError> {
        if !self.shared.keeps_history() {
            return Err(StorageError::NoHistory { backend: store::BACKEND });
        }
        let packed = self.packed_tid()?;
        if at < packed {
            return Err(StorageError::Packed { backend: store::BACKEND, at, packed });
        }
        let head = self.shared.refresh()?;
        Ok(super::past::Past::wrap(
            store::BACKEND,
            session::ObjectSession::historical(self.shared.clone(), at.0.min(head)),
        ))
    }

    fn packed_tid(&self) -> Result<Tid, StorageError> {
        self.shared.packed_tid()
    }
}

impl AdminStorage for ObjectStorage {
    fn collect_garbage(&self, dry_run: bool) -> Result<Vec<Oid>, StorageError> {
        super::gc::collect_racing(64, || ObjectGc { shared: &self.shared, head: 0, removed: None }, dry_run)
    }

    fn database_id(&self) -> Result<Option<u64>, StorageError> {
        self.shared.database_id().map(Some)
    }

    fn restore(&self, _: &Committed, _: &[Oid]) -> Result<(), StorageError> {
        Err(super::copy::cannot_restore(self.name()))
    }

    fn pack(&self, before: Tid, _batch: usize) -> Result<u64, StorageError> {
        self.shared.pack(before.0)
    }
}

#[cfg(test)]
mod tests {
    /// docs/format.md states the version the code writes.
    #[test]
    fn the_documented_layout_version_is_the_codes() {
        let doc = include_str!("../../../../docs/format.md");
        assert!(doc.contains(&format!("the object-store layout version, {}, as decimal text", super::FORMAT_VERSION)));
    }
}
