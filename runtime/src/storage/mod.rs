//! Storages: where records live. The runtime talks to them only through
//! [`Storage`] and [`Session`], so every backend gives the same guarantees.
//!
//! A storage never decodes an object's state; it keeps record bytes, tids and
//! oids.

pub mod commit;
mod copy;
#[cfg(feature = "etcd")]
mod etcd;
pub mod gc;
mod layout;
#[cfg(any(feature = "postgres", feature = "remote", feature = "object-store"))]
mod local_cache;
mod memory;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod migrate;
#[cfg(feature = "object-store")]
mod object;
mod oids;
pub mod past;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "remote")]
pub mod protocol;
#[cfg(feature = "remote")]
mod remote;
pub(crate) mod schema_files;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use copy::{CopyReport, copy};
#[cfg(feature = "etcd")]
pub use etcd::EtcdStorage;
#[cfg(any(feature = "postgres", feature = "remote"))]
pub use local_cache::StateCacheStats;
pub use memory::MemoryStorage;
#[cfg(feature = "object-store")]
pub use object::{ObjectRequests, ObjectStorage};
pub use oids::{MAX_NEW_OIDS, OID_LIMIT};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresBuilder, PostgresStorage};
#[cfg(feature = "remote")]
pub use remote::{Invalidations, RemoteBuilder, RemoteStorage};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteBuilder, SqliteStorage};

use crate::{Oid, StorageError, Tid};

/// A stored record and the tid of the transaction that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The tid that wrote this state.
    pub tid: Tid,
    /// The encoded `pbpersist.Record`.
    pub record: Vec<u8>,
}

/// One object to write in a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The object.
    pub oid: Oid,
    /// The tid the change is based on, or `None` for a new object. If the
    /// stored tid differs, the commit fails with a conflict.
    pub base: Option<Tid>,
    /// The encoded `pbpersist.Record`.
    pub record: Vec<u8>,
}

/// Which committed transactions [`Storage::transactions`] lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionRange {
    /// Only transactions with a larger tid.
    pub after: Tid,
    /// Only transactions with this tid or a smaller one, if set.
    pub until: Option<Tid>,
    /// At most this many.
    pub limit: usize,
    /// The newest first; otherwise the oldest first, in tid order.
    pub newest_first: bool,
    /// With the records each transaction wrote that are still stored.
    pub records: bool,
}

/// Who made a transaction and why, stored with it in every storage and
/// readable by any language (`docs/format.md`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionMeta {
    /// Who committed it, as the application names users.
    pub user: String,
    /// What it did, in words; notes are separated by newlines.
    pub description: String,
    /// Anything else the application wants to keep with it, such as a
    /// request id.
    pub extension: std::collections::BTreeMap<String, String>,
}

impl TransactionMeta {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.user.is_empty() && self.description.is_empty() && self.extension.is_empty()
    }

    /// The extension as `pb_transaction.extension` stores it: an encoded
    /// `pbpersist.TransactionExtension`, or `None` when empty.
    pub fn encode_extension(&self) -> Option<Vec<u8>> {
        use prost::Message;
        (!self.extension.is_empty()).then(|| Extension { entries: self.extension.clone() }.encode_to_vec())
    }

    /// Reads an extension stored by [`encode_extension`](Self::encode_extension).
    pub fn decode_extension(bytes: &[u8]) -> Result<std::collections::BTreeMap<String, String>, StorageError> {
        use prost::Message;
        Extension::decode(bytes)
            .map(|e| e.entries)
            .map_err(|e| StorageError::Format(format!("a transaction's extension is malformed: {e}")))
    }
}

/// `pbpersist.TransactionExtension` in `proto/pbpersist/record.proto`.
#[derive(Clone, PartialEq, prost::Message)]
struct Extension {
    #[prost(btree_map = "string, string", tag = "1")]
    entries: std::collections::BTreeMap<String, String>,
}

/// Whether a database keeps the states its commits replace, chosen when it is
/// created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum History {
    /// Only each object's current state is kept (the default).
    #[default]
    Free,
    /// Every replaced state is kept, until a pack removes it: what
    /// [`Database::history`](crate::Database::history),
    /// [`Database::at`](crate::Database::at) and
    /// [`Database::undo`](crate::Database::undo) read.
    Preserving,
}

/// One stored state of an object, as [`Storage::history`] lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// The transaction that wrote it.
    pub tid: Tid,
    /// When that transaction committed.
    pub time: std::time::SystemTime,
    /// Who made that transaction and why.
    pub meta: TransactionMeta,
    /// The size of the record in bytes.
    pub size: usize,
}

/// A committed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Its tid.
    pub tid: Tid,
    /// When it committed, by the clock of the process that committed it.
    pub time: std::time::SystemTime,
    /// Who made it and why.
    pub meta: TransactionMeta,
    /// The oids it wrote, sorted, or `None` where the storage no longer
    /// knows them (the SQL backends keep the lists of the last 10,000
    /// transactions).
    pub oids: Option<Vec<Oid>>,
    /// When asked for: the records it wrote that are still stored, in oid
    /// order: on a history-free database those no later transaction has
    /// overwritten and gc has not removed; on a history-preserving one also
    /// those kept as history.
    pub records: Vec<(Oid, Vec<u8>)>,
}

/// Merges a conflicting write with the stored state: given the oid and the
/// stored record, the merged record to write, or `None` to keep the conflict.
pub type Resolve<'a> = dyn FnMut(Oid, &Loaded) -> Option<Vec<u8>> + 'a;

/// What a read snapshot starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The newest tid visible in the snapshot.
    pub tid: Tid,
    /// Objects committed after the `since` tid given to `begin`, with their
    /// new tids: the entries a cache must drop.
    pub changed: Vec<(Oid, Tid)>,
}

/// A database backend: the data path every storage has. Shared by every
/// connection of a [`Database`](crate::Database).
///
/// What only some storages can do is behind a capability: [`history`]
/// (kept states, time travel, pack) and [`admin`] (gc, copying in,
/// identity). A capability a storage lacks is `None`, so a caller learns it
/// once instead of from an error of each call.
///
/// [`history`]: Storage::history
/// [`admin`]: Storage::admin
pub trait Storage: Send + Sync + 'static {
    /// A short name for errors and statistics, such as `"sqlite"`.
    fn name(&self) -> &'static str;
    /// Opens a session: the storage side of one connection.
    fn open_session(&self) -> Result<Box<dyn Session>, StorageError>;
    /// Reserves `count` new oids, never handed out before (oid 0 is the
    /// root's): the only oids a commit may create objects at. A count of 0
    /// reserves none; one over [`MAX_NEW_OIDS`], or one that would pass
    /// 2^63, is refused with [`StorageError::TooManyOids`] and changes
    /// nothing.
    fn new_oids(&self, count: u64) -> Result<std::ops::Range<u64>, StorageError>;
    /// Stores the `.proto` file `name` with `source` if the stored file of
    /// that name is still `expected` (`None`: there is none), as one step
    /// against every other write of that file, by this process or another;
    /// `Ok(false)`, with nothing written, when it is not. The one schema
    /// write a storage implements: a program adding its types to a
    /// package's file reads it, merges and swaps, and retries on `false`, so
    /// that two programs storing different types in one package never drop
    /// each other's.
    fn swap_schema(&self, name: &str, expected: Option<&str>, source: &str) -> Result<bool, StorageError>;
    /// Stores `.proto` files (name, source) describing stored types,
    /// replacing files of the same name, each with [`swap_schema`] on the
    /// text it last read.
    ///
    /// [`swap_schema`]: Storage::swap_schema
    fn put_schemas(&self, files: &[(String, String)]) -> Result<(), StorageError> {
        for (name, source) in files {
            schema_files::update_stored(self, name, |_| Some(source.clone()))?;
        }
        Ok(())
    }
    /// Removes the stored `.proto` files of these names; names with no
    /// file are passed over. Whether stored records still need them is the
    /// caller's to check (the server's `DeleteSchemas` does).
    fn delete_schemas(&self, names: &[String]) -> Result<(), StorageError>;
    /// The stored `.proto` files, sorted by name.
    fn schemas(&self) -> Result<Vec<(String, String)>, StorageError>;
    /// Committed transactions in `range`, in tid order (or newest first),
    /// with the records each wrote where still stored: what a copy, a
    /// replica's catch-up or a transaction log reads.
    fn transactions(&self, range: TransactionRange) -> Result<Vec<Committed>, StorageError>;
    /// Whether the storage was opened read-only. A read-only storage
    /// refuses every write with [`StorageError::ReadOnly`], and the
    /// [`Database`](crate::Database) over it refuses them before they reach it.
    fn read_only(&self) -> bool {
        false
    }
    /// The storage's history, if the database keeps the states its commits
    /// replace ([`History::Preserving`]); `None` on a history-free one.
    fn history(&self) -> Option<&dyn HistoryStorage> {
        None
    }
    /// Administration of the whole database, if this view of it allows
    /// any: `None` for a view that is not the database itself (as of a
    /// past tid, say).
    fn admin(&self) -> Option<&dyn AdminStorage> {
        None
    }

    // Derived from the methods above: a storage has no reason to write them.

    /// The storage's [`history`](Storage::history), or
    /// [`StorageError::NoHistory`] on a history-free database.
    fn require_history(&self) -> Result<&dyn HistoryStorage, StorageError> {
        self.history().ok_or(StorageError::NoHistory { backend: self.name() })
    }

    /// Whether the database keeps replaced states: whether it has a
    /// [`history`](Storage::history).
    fn history_mode(&self) -> History {
        if self.history().is_some() { History::Preserving } else { History::Free }
    }

    /// The committed transaction `tid` without its records, if there is one.
    fn transaction(&self, tid: Tid) -> Result<Option<Committed>, StorageError> {
        let after = Tid(tid.0.saturating_sub(1));
        let range = TransactionRange { after, until: Some(tid), limit: 1, newest_first: false, records: false };
        Ok(self.transactions(range)?.pop().filter(|t| t.tid == tid))
    }

    /// The newest tid committed before `time`, or `None` if none was.
    /// Commit times come from the committers' clocks, which need not agree,
    /// so this is as good as they are.
    fn tid_before(&self, time: std::time::SystemTime) -> Result<Option<Tid>, StorageError> {
        let mut after = Tid(0);
        let mut found = None;
        loop {
            let page = self.transactions(TransactionRange {
                after,
                until: None,
                limit: 1000,
                newest_first: false,
                records: false,
            })?;
            let Some(last) = page.last() else { return Ok(found) };
            after = last.tid;
            found = page.iter().rev().find(|t| t.time < time).map(|t| t.tid).or(found);
        }
    }

    /// The stored states of `oid`, newest first, at most `limit`: every one
    /// still kept where the storage has a history, else the current one;
    /// none for an object that does not exist.
    fn revisions(&self, oid: Oid, limit: usize) -> Result<Vec<Revision>, StorageError> {
        if let Some(history) = self.history() {
            return history.states(oid, limit);
        }
        let mut session = self.open_session()?;
        session.begin(None)?;
        let current = session.load(oid)?;
        session.end()?;
        let Some(current) = current.filter(|_| limit > 0) else { return Ok(Vec::new()) };
        let (time, meta) = match self.transaction(current.tid)? {
            Some(t) => (t.time, t.meta),
            None => (std::time::UNIX_EPOCH, TransactionMeta::default()),
        };
        Ok(vec![Revision { tid: current.tid, time, meta, size: current.record.len() }])
    }
}

/// The history of a history-preserving database: the states its commits
/// replaced, sessions that see the database as it was, and how far back a
/// pack ([`AdminStorage::pack`]) left them reaching. [`Storage::history`]
/// returns it.
pub trait HistoryStorage: Send + Sync {
    /// The stored states of `oid`, newest first, at most `limit`: the
    /// current one and every replaced one still kept; none for an object
    /// that never existed.
    fn states(&self, oid: Oid, limit: usize) -> Result<Vec<Revision>, StorageError>;
    /// A session that sees the database as it was when `at` committed (or
    /// as it is now, if `at` is newer than every commit): its `begin` always
    /// shows that tid, it loads each object's state as of it, and it refuses
    /// writes ([`past::Past`] wraps it). Fails with [`StorageError::Packed`]
    /// for a tid a pack removed states of.
    fn open_session_at(&self, at: Tid) -> Result<Box<dyn Session>, StorageError>;
    /// The tid a pack kept everything from (`Tid(0)` if never packed).
    fn packed_tid(&self) -> Result<Tid, StorageError>;
}

/// Administration of a whole database: gc, pack, identity, copies in.
/// [`Storage::admin`] returns it.
pub trait AdminStorage: Send + Sync {
    /// Removes every object not reachable from the root by following the
    /// records' reference lists, atomically with respect to commits
    /// ([`gc::collect`] is the protocol). With `dry_run`, removes nothing.
    /// Returns the unreachable oids, sorted.
    fn collect_garbage(&self, dry_run: bool) -> Result<Vec<Oid>, StorageError>;
    /// A random number fixed when the database was created, telling it
    /// from every other, so that a cache kept outside the database (a
    /// client's file of records) never serves another database's records.
    /// `None` when the storage keeps none.
    fn database_id(&self) -> Result<Option<u64>, StorageError>;
    /// Removes what no view of the database from `before` on needs: on a
    /// history-preserving database the states replaced at or before
    /// `before`, at most `batch` per backend transaction so commits wait
    /// little, having first recorded `before`, so that from then on
    /// sessions of older tids fail with [`StorageError::Packed`] and a pack
    /// cut short leaves a consistent database; on a storage whose log holds
    /// the records (object stores) also the log entries that hold nothing
    /// kept, in either mode. Returns how many states it removed. Pack is
    /// administration rather than history because of the latter.
    fn pack(&self, before: Tid, batch: usize) -> Result<u64, StorageError>;
    /// Writes a transaction copied from another storage, keeping its tid,
    /// time and metadata: its records, and `removed` (objects it removed,
    /// as gc does on a history-preserving database). The tid must be above
    /// every tid stored here; oids handed out later stay above the copied
    /// ones. What a copy between storages ([`copy`]) writes. A storage that
    /// cannot receive copies refuses with [`StorageError::Config`].
    fn restore(&self, txn: &Committed, removed: &[Oid]) -> Result<(), StorageError>;
}

/// One connection's view of the storage. Used by one thread at a time.
pub trait Session: Send {
    /// Starts a read snapshot. With `since`, also lists what others committed after it.
    fn begin(&mut self, since: Option<Tid>) -> Result<Snapshot, StorageError>;
    /// Loads one object as of the snapshot.
    fn load(&mut self, oid: Oid) -> Result<Option<Loaded>, StorageError>;
    /// Loads many objects as of the snapshot; missing oids are left out.
    fn load_many(&mut self, oids: &[Oid]) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        let mut out = Vec::with_capacity(oids.len());
        for oid in oids {
            if let Some(l) = self.load(*oid)? {
                out.push((*oid, l));
            }
        }
        Ok(out)
    }
    /// Every stored object with an oid above `after` (all of them from
    /// `None`), in oid order, at most `limit`, as of the snapshot: how a copy
    /// or a tool pages through a whole database.
    fn scan(&mut self, after: Option<Oid>, limit: usize) -> Result<Vec<(Oid, Loaded)>, StorageError>;
    /// Loads the objects reachable from `roots` by following stored
    /// reference lists, at most `depth` references away and at most `limit`
    /// objects, as of the snapshot; the roots are included. States are never
    /// decoded. The default walks one `load_many` per level; a server can do
    /// the whole walk in one query.
    fn load_reachable(&mut self, roots: &[Oid], depth: u32, limit: usize) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        let mut seen: std::collections::HashSet<Oid> = roots.iter().copied().collect();
        let mut frontier = roots.to_vec();
        let mut out = Vec::new();
        for level in 0..=depth {
            if frontier.is_empty() || out.len() >= limit {
                break;
            }
            let mut next = Vec::new();
            for (oid, loaded) in self.load_many(&frontier)? {
                if level < depth {
                    // A malformed record is left for the object's own load to report.
                    let refs = crate::record::refs_only(&loaded.record).unwrap_or_default();
                    next.extend(refs.into_iter().map(Oid).filter(|o| seen.insert(*o)));
                }
                out.push((oid, loaded));
            }
            frontier = next;
        }
        out.truncate(limit);
        Ok(out)
    }

    /// Ends the read snapshot without writing.
    fn end(&mut self) -> Result<(), StorageError>;
    /// Ends the read snapshot and writes all of `writes` atomically under a new
    /// tid, with `meta` recorded beside it, or nothing.
    ///
    /// A write whose base tid is not the stored tid is a conflict. While the
    /// commit holds its locks, `resolve` is offered the stored state of each
    /// such object (one that still exists) and may return a merged record to
    /// write instead. A storage that decides again after losing a race (etcd)
    /// may offer an object more than once; the last merge is what it writes. An unresolved conflict, or a read in `reads` whose
    /// object's stored tid moved, fails the whole commit with
    /// [`StorageError::Conflict`]. A write at an oid at or above 2^63, or of
    /// a new object at an oid [`Storage::new_oids`] never handed out (other
    /// than the root's), fails it with [`StorageError::OidOutOfRange`]
    /// before anything else is checked. With no writes, only checks `reads`
    /// and returns `None`.
    fn commit(
        &mut self,
        writes: &[Write],
        reads: &[(Oid, Tid)],
        meta: &TransactionMeta,
        resolve: &mut Resolve<'_>,
    ) -> Result<Option<Tid>, StorageError>;
}
