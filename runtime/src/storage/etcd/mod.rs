//! The etcd storage: objects in an etcd cluster (Raft), so every member
//! accepts writes and every read is consistent. The layout and the mapping
//! of snapshots and commits onto etcd are in docs/etcd.md and docs/format.md.
//!
//! etcd's revision is the tid: a commit is one etcd transaction that
//! compares the revision of every key it read or writes and puts all of
//! them, so its revision is the tid of every record it wrote, and a snapshot
//! is a read at one revision.

mod client;
mod session;
mod watch;

use super::{AdminStorage, Committed, Session, Storage, TransactionMeta, TransactionRange};
use crate::{Oid, StorageError, Tid};
use client::Etcd;
use std::sync::Arc;

/// A storage in an etcd cluster, under a key prefix.
///
/// Opened with a URL naming the members and the prefix,
/// `etcd://host1:2379,host2:2379,host3:2379/prefix`; a user and password
/// may precede the hosts (`etcd://user:password@host:2379/prefix`) or come
/// from `PBPERSIST_ETCD_USER` and `PBPERSIST_ETCD_PASSWORD`. They are never
/// shown in errors. The client runs on a Tokio runtime of its own, so the
/// storage may be used from inside another runtime.
#[derive(Clone)]
pub struct EtcdStorage {
    etcd: Arc<Etcd>,
    watch: Arc<watch::Watch>,
}

impl std::fmt::Debug for EtcdStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStorage").field("target", &self.etcd.target).finish_non_exhaustive()
    }
}

/// The version of the layout under the prefix (`<prefix>/meta/format`).
const FORMAT_VERSION: u64 = 1;

impl EtcdStorage {
    /// The version of the layout under the prefix (`<prefix>/meta/format`).
    pub const FORMAT_VERSION: u64 = FORMAT_VERSION;

    /// Connects to the cluster `url` names and prepares the prefix: an empty
    /// prefix gets the layout version and the root's oid reserved.
    pub fn open(url: &str) -> Result<EtcdStorage, StorageError> {
        let etcd = Etcd::connect(url)?;
        etcd.prepare(FORMAT_VERSION)?;
        let watch = etcd.watch()?;
        Ok(EtcdStorage { etcd: Arc::new(etcd), watch })
    }

    /// The members and prefix, without credentials, as errors show them.
    pub fn target(&self) -> &str {
        &self.etcd.target
    }

    /// How many snapshots learned what changed since the previous one from
    /// the watch, and how many had to ask the server (the watch lagged more
    /// than two seconds, was cut off, or was cancelled by compaction).
    pub fn invalidations(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.watch.told.load(Relaxed), self.watch.missed.load(Relaxed))
    }

    /// Removes every key under the prefix: the whole database. For tests
    /// and benchmarks that start from nothing.
    pub fn destroy(self) -> Result<(), StorageError> {
        self.etcd.delete_prefix()
    }
}

impl Storage for EtcdStorage {
    fn name(&self) -> &'static str {
        "etcd"
    }

    fn open_session(&self) -> Result<Box<dyn Session>, StorageError> {
        Ok(Box::new(session::EtcdSession::new(self.etcd.clone(), self.watch.clone())))
    }

    fn new_oids(&self, count: u64) -> Result<std::ops::Range<u64>, StorageError> {
        self.etcd.new_oids(count)
    }

    fn swap_schema(&self, name: &str, expected: Option<&str>, source: &str) -> Result<bool, StorageError> {
        self.etcd.swap_schema(name, expected, source)
    }

    fn delete_schemas(&self, names: &[String]) -> Result<(), StorageError> {
        self.etcd.delete_schemas(names)
    }

    fn schemas(&self) -> Result<Vec<(String, String)>, StorageError> {
        self.etcd.schemas()
    }

    fn transactions(&self, range: TransactionRange) -> Result<Vec<Committed>, StorageError> {
        self.etcd.transactions(range)
    }

    fn admin(&self) -> Option<&dyn AdminStorage> {
        Some(self)
    }
}

impl AdminStorage for EtcdStorage {
    fn collect_garbage(&self, dry_run: bool) -> Result<Vec<Oid>, StorageError> {
        self.etcd.collect_garbage(dry_run)
    }

    fn database_id(&self) -> Result<Option<u64>, StorageError> {
        Ok(None)
    }

    fn restore(&self, _: &Committed, _: &[Oid]) -> Result<(), StorageError> {
        Err(super::copy::cannot_restore(self.name()))
    }

    /// Nothing to remove: the database keeps no replaced states, and
    /// etcd's own compaction bounds its revisions.
    fn pack(&self, _: crate::Tid, _: usize) -> Result<u64, StorageError> {
        Ok(0)
    }
}

/// A transaction's entry in the log (`<prefix>/t/...`), the value of its
/// key; its tid is the key's revision. `pbpersist.TransactionEntry` in
/// `proto/pbpersist/record.proto`.
#[derive(Clone, PartialEq, crate::Persistent)]
#[pbpersist(message = "pbpersist.TransactionEntry")]
pub(crate) struct TransactionEntry {
    /// Microseconds since the Unix epoch, by the committer's clock.
    #[pbpersist(tag = 1, sint64)]
    committed_at: i64,
    /// The oids written, ascending.
    #[pbpersist(tag = 2, packed)]
    oids: Vec<u64>,
    #[pbpersist(tag = 3)]
    user: String,
    #[pbpersist(tag = 4)]
    description: String,
    #[pbpersist(tag = 5)]
    extension: std::collections::BTreeMap<String, String>,
    #[pbpersist(meta)]
    meta: crate::Meta,
}

impl TransactionEntry {
    fn of(time: std::time::SystemTime, oids: Vec<u64>, meta: &TransactionMeta) -> Self {
        let mut e = TransactionEntry::default();
        e.set_committed_at(super::commit::micros(time));
        e.set_oids(oids);
        e.set_user(meta.user.clone());
        e.set_description(meta.description.clone());
        *e.extension_mut() = meta.extension.clone();
        e
    }

    fn into_committed(self, tid: Tid) -> Committed {
        Committed {
            tid,
            time: crate::storage::layout::time_from_micros(self.committed_at),
            meta: TransactionMeta { user: self.user, description: self.description, extension: self.extension },
            oids: Some(self.oids.into_iter().map(Oid).collect()),
            records: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    /// docs/format.md states the version the code writes.
    #[test]
    fn the_documented_layout_version_is_the_codes() {
        let doc = include_str!("../../../../docs/format.md");
        assert!(doc.contains(&format!("the etcd layout version, {}, as decimal text", super::FORMAT_VERSION)));
    }
}
