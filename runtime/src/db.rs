//! `Database`: the shared handle over a storage, with a pool of connections.

use crate::connection::Connection;
use crate::shared::Shared;
use crate::storage::{Storage, Write};
use crate::{Oid, Options, Result, Root, StorageError, Tid, Transaction};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// A database: a storage plus the state its connections share.
///
/// `Database` is cheap to clone, `Send` and `Sync`. Each
/// [`Connection`] has its own object cache and belongs to one thread;
/// [`Database::transact`] borrows one from a pool.
#[derive(Clone)]
pub struct Database {
    pub(crate) shared: Arc<Shared>,
    /// Idle connections. Kept beside `shared`, not in it: each connection
    /// holds the `Shared`, and a pool inside it would be a cycle that never
    /// frees the storage's connections.
    pool: Arc<Mutex<Vec<Connection>>>,
}

/// Counters since the database was opened, across all its connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Objects loaded from the storage.
    pub loads: u64,
    /// Lookups answered by a connection's object cache.
    pub cache_hits: u64,
    /// Transactions that wrote something.
    pub commits: u64,
    /// Object states written.
    pub objects_written: u64,
    /// Times `transact` ran its closure again after a conflict.
    pub retries: u64,
    /// Commits that failed with a conflict.
    pub conflicts: u64,
    /// Conflicts merged by a type's conflict resolution, so the commit went through.
    pub conflicts_resolved: u64,
    /// Objects evicted from connection caches.
    pub evictions: u64,
}

/// What garbage collection found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// The unreachable objects, sorted: removed unless this was a dry run.
    pub unreachable: Vec<Oid>,
    /// Whether anything was removed.
    pub removed: bool,
    /// Index entries of the removed objects, removed after them.
    pub index_entries: u64,
}

impl Database {
    /// Opens (or creates) the SQLite database file at `path`: the embedded default.
    #[cfg(feature = "sqlite")]
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Database> {
        Database::open_with(path, Options::default())
    }

    /// Opens (or creates) the SQLite database file at `path` with these options.
    #[cfg(feature = "sqlite")]
    pub fn open_with(path: impl AsRef<std::path::Path>, options: Options) -> Result<Database> {
        Database::with_storage_and_options(crate::storage::SqliteStorage::open(path)?, options)
    }

    /// Opens the existing SQLite database file at `path` read-only: objects
    /// load as usual, and anything that would write (adding an object,
    /// committing a change, gc) fails with [`StorageError::ReadOnly`](crate::StorageError::ReadOnly)
    /// and writes nothing.
    #[cfg(feature = "sqlite")]
    pub fn open_read_only(path: impl AsRef<std::path::Path>) -> Result<Database> {
        Database::with_storage(crate::storage::SqliteStorage::open_read_only(path)?)
    }

    /// A database that lives in memory only, for tests.
    pub fn in_memory() -> Result<Database> {
        Database::with_storage(crate::storage::MemoryStorage::new())
    }

    /// A database over any storage. Creates the root object if it is missing
    /// (unless the storage is read-only).
    pub fn with_storage(storage: impl Storage) -> Result<Database> {
        Database::with_storage_and_options(storage, Options::default())
    }

    /// A database over any storage, with these options.
    pub fn with_storage_and_options(storage: impl Storage, options: Options) -> Result<Database> {
        let read_only = storage.read_only();
        let db = Database {
            shared: Arc::new(Shared::new(Box::new(storage), read_only, options)),
            pool: Arc::new(Mutex::new(Vec::new())),
        };
        if !read_only {
            db.ensure_root()?;
        }
        Ok(db)
    }

    fn ensure_root(&self) -> Result<()> {
        let mut session = self.shared.storage.open_session()?;
        session.begin(None)?;
        if session.load(Oid::ROOT)?.is_some() {
            session.end()?;
            return Ok(());
        }
        let mut record = Vec::new();
        crate::record::encode(&Root::default(), &mut record, &[]);
        match session
            .commit(&[Write { oid: Oid::ROOT, base: None, record }], &[], &Default::default(), &mut |_, _| None)
        {
            Ok(_) => Ok(()),
            // Another process created it first, which is just as good.
            Err(crate::StorageError::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens a new connection with an empty object cache.
    pub fn connect(&self) -> Result<Connection> {
        Connection::new(self.shared.clone())
    }

    /// Runs `f` in a transaction on a pooled connection and commits if it
    /// returns `Ok`, retrying on conflicts as [`Connection::transact`] does.
    /// If `f` or the commit fails, nothing is written and the transaction's
    /// in-memory changes are discarded.
    pub fn transact<R>(&self, f: impl FnMut(&mut Transaction<'_>) -> Result<R>) -> Result<R> {
        let mut conn = self.checkout()?;
        let result = conn.transact(f);
        self.checkin(conn);
        result
    }

    /// Counters across all connections.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.stats;
        Stats {
            loads: c.loads.load(Ordering::Relaxed),
            cache_hits: c.cache_hits.load(Ordering::Relaxed),
            commits: c.commits.load(Ordering::Relaxed),
            objects_written: c.objects_written.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            conflicts: c.conflicts.load(Ordering::Relaxed),
            conflicts_resolved: c.conflicts_resolved.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
        }
    }

    /// The options this database was opened with.
    pub fn options(&self) -> &Options {
        &self.shared.options
    }

    /// Removes every object not reachable from the root, following the
    /// reference lists stored in records (states are never decoded). With
    /// `dry_run`, only reports. Commits wait while it runs. Then removes
    /// the removed objects' index entries, in transactions of their own.
    pub fn gc(&self, dry_run: bool) -> Result<GcReport> {
        if !dry_run {
            self.shared.refuse_writes()?;
        }
        let storage = &*self.shared.storage;
        let admin = storage.admin().ok_or(StorageError::NoAdmin { backend: storage.name() })?;
        let unreachable = admin.collect_garbage(dry_run)?;
        let removed = !dry_run && !unreachable.is_empty();
        // Indexes hold oids, not references: their entries of what went go now.
        let index_entries = if removed { self.prune_indexes(&unreachable)? } else { 0 };
        Ok(GcReport { unreachable, removed, index_entries })
    }

    /// The committed transactions in `range` (oldest or newest first, with
    /// or without the records each wrote): the whole log, a page at a time.
    pub fn transactions(&self, range: crate::storage::TransactionRange) -> Result<Vec<crate::storage::Committed>> {
        Ok(self.shared.storage.transactions(range)?)
    }

    /// The newest `n` committed transactions, newest first: each one's tid,
    /// commit time and the oids it wrote.
    pub fn last_transactions(&self, n: usize) -> Result<Vec<crate::storage::Committed>> {
        let range = crate::storage::TransactionRange {
            after: Tid(0),
            until: None,
            limit: n,
            newest_first: true,
            records: false,
        };
        Ok(self.shared.storage.transactions(range)?)
    }

    /// Up to `limit` committed transactions after `tid`, oldest first, with
    /// the records each wrote that no later transaction has overwritten:
    /// what a copy or a replica applies to catch up.
    pub fn transactions_after(&self, tid: Tid, limit: usize) -> Result<Vec<crate::storage::Committed>> {
        let range =
            crate::storage::TransactionRange { after: tid, until: None, limit, newest_first: false, records: true };
        Ok(self.shared.storage.transactions(range)?)
    }

    /// Whether the database was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.shared.read_only
    }

    /// The storage under this database.
    pub fn storage(&self) -> &dyn Storage {
        &*self.shared.storage
    }

    fn checkout(&self) -> Result<Connection> {
        let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match pooled {
            Some(c) => Ok(c),
            None => self.connect(),
        }
    }

    fn checkin(&self, conn: Connection) {
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("storage", &self.shared.storage.name()).field("stats", &self.stats()).finish()
    }
}
