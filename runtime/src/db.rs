//! `Database`: the shared handle over a storage, with a pool of connections.

use crate::connection::Connection;
use crate::storage::{Storage, Write};
use crate::{Oid, Options, Result, Root, Tid, Transaction};
use std::sync::atomic::{AtomicU64, Ordering};
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
            shared: Arc::new(Shared {
                storage: Box::new(storage),
                read_only,
                oids: Mutex::new(OidBlock { next: 0, end: 0, size: 64 }),
                stats: Counters::default(),
                options,
                described: Mutex::new(std::collections::HashSet::new()),
            }),
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
    /// `dry_run`, only reports. Commits wait while it runs.
    pub fn gc(&self, dry_run: bool) -> Result<GcReport> {
        if !dry_run {
            self.shared.refuse_writes()?;
        }
        let unreachable = self.shared.storage.collect_garbage(dry_run)?;
        let removed = !dry_run && !unreachable.is_empty();
        Ok(GcReport { unreachable, removed })
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

impl Shared {
    /// Stores the `.proto` schema of any of `objects`' types not stored yet
    /// by this process, so other languages and tools can decode them.
    pub(crate) fn describe<'o>(&self, objects: impl Iterator<Item = &'o dyn crate::Object>) -> Result<()> {
        // Commits usually hold few types: find them by pointer first, then
        // ask the shared set once per type.
        let mut types: Vec<&dyn crate::Object> = Vec::new();
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
        let mut files = schema.files();
        if !files.is_empty() {
            // A package's file keeps the types others stored in it.
            let stored = self.storage.schemas()?;
            for (name, text) in &mut files {
                if let Some((_, old)) = stored.iter().find(|(n, _)| n == name) {
                    *text = crate::schema::merge_with_stored(text, old);
                }
            }
            self.storage.put_schemas(&files)?;
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

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("storage", &self.shared.storage.name()).field("stats", &self.stats()).finish()
    }
}
