//! The store a database lives in, the runtime its client runs on, and the
//! storage-wide operations: reading the log, records, oid blocks,
//! checkpoints, schemas, gc.

use super::index::{Index, RecordCache};
use super::layout::{self, Checkpoint, Commit, CommitHeader, Keys, OidBlock, Place, SchemaFile};
use crate::storage::local_cache::RecordFile;
use crate::{Oid, StorageError, Tid};
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use prost::Message;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};

pub(super) const BACKEND: &str = "object store";

/// How a storage behaves, from the URL's query.
#[derive(Debug, Clone)]
pub(super) struct Tuning {
    /// A checkpoint is written by the commit whose tid is a multiple of this.
    pub checkpoint_every: u64,
    /// The byte budget of the record cache.
    pub cache_bytes: usize,
    /// Where the local file of records lives, if anywhere.
    pub cache_dir: Option<std::path::PathBuf>,
    /// The byte budget of that file.
    pub cache_dir_bytes: u64,
    /// The mode a new database is created in.
    pub history: crate::storage::History,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            checkpoint_every: 1000,
            cache_bytes: 64 << 20,
            cache_dir: None,
            cache_dir_bytes: 1 << 30,
            history: crate::storage::History::Free,
        }
    }
}

/// Requests made to the store, by kind.
#[derive(Debug, Default)]
pub(super) struct Requests {
    pub gets: AtomicU64,
    pub puts: AtomicU64,
    pub lists: AtomicU64,
    pub deletes: AtomicU64,
}

pub(super) struct Shared {
    /// Runs the client; taken only when dropped.
    runtime: Option<tokio::runtime::Runtime>,
    store: Arc<dyn ObjectStore>,
    pub keys: Keys,
    /// The store and prefix, without credentials.
    pub target: String,
    pub tuning: Tuning,
    /// Whether the database keeps replaced states, as stored at its creation.
    pub history: std::sync::OnceLock<crate::storage::History>,
    pub index: RwLock<Index>,
    /// Held while the index is brought up to date, so one thread reads each
    /// commit object.
    refreshing: Mutex<Refreshes>,
    /// Counts refreshes begun, so a caller that waited for another thread's
    /// refresh begun after its call can use that one.
    refresh_tickets: AtomicU64,
    cache: Mutex<RecordCache>,
    /// The local file of records, when the URL names a cache directory.
    disk: std::sync::OnceLock<RecordFile>,
    /// Open snapshots by tid, with how many sessions hold each.
    snapshots: Mutex<BTreeMap<u64, usize>>,
    oids: Mutex<OidPool>,
    /// The newest oid block this process has seen and its end: the
    /// database's next oid, as far as this process knows.
    oid_horizon: Mutex<Option<(u64, u64)>>,
    /// Held by a commit from its decision to its write.
    pub commit_turn: Mutex<()>,
    pub requests: Requests,
}

#[derive(Default)]
struct Refreshes {
    /// The ticket of the newest refresh that completed.
    done: Option<u64>,
}

/// The oids this process reserved and has not handed out.
#[derive(Default)]
struct OidPool {
    next: u64,
    end: u64,
    /// The newest block number known to be taken, once a block was looked for.
    block: Option<u64>,
}

/// A record's commit object was removed by a pack.
#[derive(Debug, thiserror::Error)]
#[error("a pack removed the commit object that held this state; a newer snapshot reads the kept one")]
pub(super) struct Packed;

/// How a create-if-absent ended.
pub(super) enum Created {
    /// This write created the object.
    Yes,
    /// The object was already there.
    Exists,
}

/// A client error as a storage error: a refused or broken connection is
/// `Unavailable`, anything else the backend's failure.
pub(super) fn failed(target: &str, e: object_store::Error) -> StorageError {
    match e {
        object_store::Error::Generic { .. } => {
            StorageError::Unavailable { backend: BACKEND, target: target.to_owned(), source: Box::new(e) }
        }
        _ => StorageError::Backend { backend: BACKEND, source: Box::new(e) },
    }
}

fn malformed(what: &Path, why: impl std::fmt::Display) -> StorageError {
    StorageError::Format(format!("the object {what} is malformed: {why}"))
}

/// The number an object holds as decimal text (`format`, `id`, `packed`).
fn decimal(key: &Path, bytes: &[u8]) -> Result<u64, StorageError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| malformed(key, "it is not a decimal number"))
}

impl Shared {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        target: String,
        tuning: Tuning,
    ) -> Result<Self, StorageError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pbpersist-object-store")
            .enable_all()
            .build()
            .map_err(|e| StorageError::Backend { backend: BACKEND, source: Box::new(e) })?;
        Ok(Shared {
            runtime: Some(runtime),
            store,
            keys: Keys::new(prefix),
            target,
            cache: Mutex::new(RecordCache::new(tuning.cache_bytes)),
            disk: std::sync::OnceLock::new(),
            tuning,
            history: std::sync::OnceLock::new(),
            index: RwLock::new(Index::default()),
            refreshing: Mutex::new(Refreshes::default()),
            refresh_tickets: AtomicU64::new(0),
            snapshots: Mutex::new(BTreeMap::new()),
            oids: Mutex::new(OidPool::default()),
            oid_horizon: Mutex::new(None),
            commit_turn: Mutex::new(()),
            requests: Requests::default(),
        })
    }

    /// Runs `f` with the store on the storage's runtime and waits for it,
    /// from any thread, inside another runtime or not.
    pub fn run<T, F>(&self, f: impl FnOnce(Arc<dyn ObjectStore>) -> F) -> Result<T, object_store::Error>
    where
        F: Future<Output = Result<T, object_store::Error>> + Send + 'static,
        T: Send + 'static,
    {
        let (send, receive) = std::sync::mpsc::sync_channel(1);
        let task = f(self.store.clone());
        self.runtime.as_ref().expect("the runtime is only taken by drop").spawn(async move {
            let _ = send.send(task.await);
        });
        receive.recv().unwrap_or_else(|_| {
            Err(object_store::Error::Generic { store: "pbpersist", source: "the client's runtime stopped".into() })
        })
    }

    /// The whole object at `path`, or `None` if there is none.
    pub fn get(&self, path: &Path) -> Result<Option<Bytes>, StorageError> {
        self.requests.gets.fetch_add(1, Relaxed);
        let path = path.clone();
        match self.run(|s| async move { s.get(&path).await?.bytes().await }) {
            Ok(b) => Ok(Some(b)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(failed(&self.target, e)),
        }
    }

    /// Creates `path` unless it exists.
    pub fn create(&self, path: &Path, bytes: Vec<u8>) -> Result<Created, StorageError> {
        match self.try_create(path, bytes) {
            Ok(c) => Ok(c),
            Err(e) => Err(failed(&self.target, e)),
        }
    }

    /// [`create`](Self::create), with the client's error as it came.
    pub fn try_create(&self, path: &Path, bytes: Vec<u8>) -> Result<Created, object_store::Error> {
        self.requests.puts.fetch_add(1, Relaxed);
        let path = path.clone();
        let options = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.run(|s| async move { s.put_opts(&path, PutPayload::from(bytes), options).await }) {
            Ok(_) => Ok(Created::Yes),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Created::Exists),
            Err(e) => Err(e),
        }
    }

    /// Writes `path`, replacing what is there.
    pub fn overwrite(&self, path: &Path, bytes: Vec<u8>) -> Result<(), StorageError> {
        self.requests.puts.fetch_add(1, Relaxed);
        let path = path.clone();
        self.run(|s| async move { s.put(&path, PutPayload::from(bytes)).await })
            .map(|_| ())
            .map_err(|e| failed(&self.target, e))
    }

    /// The keys under `prefix`, sorted.
    pub fn list(&self, prefix: &Path) -> Result<Vec<Path>, StorageError> {
        use futures_util::TryStreamExt;
        self.requests.lists.fetch_add(1, Relaxed);
        let prefix = prefix.clone();
        let mut keys: Vec<Path> = self
            .run(|s| async move { s.list(Some(&prefix)).map_ok(|m| m.location).try_collect().await })
            .map_err(|e| failed(&self.target, e))?;
        keys.sort();
        Ok(keys)
    }

    /// Deletes every object under the prefix.
    pub fn delete_all(&self) -> Result<(), StorageError> {
        let keys = match self.keys.all() {
            Some(prefix) => self.list(&prefix)?,
            None => self.list(&Path::from(""))?,
        };
        for key in keys {
            self.requests.deletes.fetch_add(1, Relaxed);
            self.run(|s| async move { s.delete(&key).await }).map_err(|e| failed(&self.target, e))?;
        }
        Ok(())
    }

    /// Checks the layout version, creating it (and checking that the store
    /// honours create-if-absent) in an empty prefix, then reads the newest
    /// checkpoint and the log after it.
    pub fn prepare(&self, version: u64, create: bool) -> Result<(), StorageError> {
        let key = self.keys.format();
        let stored = match self.get(&key)? {
            Some(b) => b,
            None if !create => {
                return Err(StorageError::Config(format!("{} holds no pbpersist database", self.target)));
            }
            None => {
                let text = version.to_string().into_bytes();
                let refused = |why: String| {
                    StorageError::Config(format!(
                        "{} does not refuse a second create of one object ({why}); pbpersist's commits need \
                         create-if-absent writes (If-None-Match)",
                        self.target
                    ))
                };
                match self.try_create(&key, text.clone()) {
                    Ok(_) => {}
                    Err(object_store::Error::NotImplemented { operation, .. }) => return Err(refused(operation)),
                    Err(e) => return Err(failed(&self.target, e)),
                }
                match self.try_create(&key, text) {
                    Ok(Created::Exists) => {}
                    Ok(Created::Yes) => return Err(refused("it accepted it".into())),
                    Err(e) => return Err(refused(e.to_string())),
                }
                self.database_id()?;
                if self.tuning.history == crate::storage::History::Preserving {
                    self.create(&self.keys.mode(), b"history-preserving".to_vec())?;
                }
                self.get(&key)?.ok_or_else(|| malformed(&key, "it vanished after it was created"))?
            }
        };
        let found = decimal(&key, &stored)?;
        if found > version {
            return Err(crate::storage::layout::too_new(&self.target, found as i64, version as i64));
        }
        let history = match self.get(&self.keys.mode())? {
            None => crate::storage::History::Free,
            Some(b) if b.as_ref() == b"history-preserving" => crate::storage::History::Preserving,
            Some(_) => return Err(malformed(&self.keys.mode(), "it names no known mode")),
        };
        let _ = self.history.set(history);
        if let Some(dir) = &self.tuning.cache_dir {
            std::fs::create_dir_all(dir).map_err(|e| {
                StorageError::Config(format!("cannot create the cache directory {}: {e}", dir.display()))
            })?;
            let disk = RecordFile::open(&dir.join("records.db"), self.database_id()?, self.tuning.cache_dir_bytes)?;
            let _ = self.disk.set(disk);
        }
        if let Some(newest) = self.list(&self.keys.checkpoints())?.pop() {
            let bytes = self.get(&newest)?.ok_or_else(|| malformed(&newest, "it vanished"))?;
            let cp = Checkpoint::decode(bytes.as_ref()).map_err(|e| malformed(&newest, e))?;
            let index = Index::from_checkpoint(&cp).map_err(|why| malformed(&newest, why))?;
            *self.index.write().expect("index lock") = index;
        }
        self.refresh()?;
        Ok(())
    }

    /// The random number that tells this database from others
    /// (`<prefix>/id`), made by whoever creates it first.
    pub(super) fn database_id(&self) -> Result<u64, StorageError> {
        let key = self.keys.id();
        loop {
            if let Some(bytes) = self.get(&key)? {
                return decimal(&key, &bytes);
            }
            self.create(&key, crate::storage::layout::random_u64().to_string().into_bytes())?;
        }
    }

    /// Keeps records in the local file, if there is one.
    fn keep_on_disk(&self, records: &[(Oid, Tid, &[u8])]) {
        if let Some(disk) = self.disk.get() {
            disk.put(records);
        }
    }

    /// Reads the commit objects after the index's head, adding each to the
    /// index, and returns the newest tid: one request when nothing is new.
    pub fn refresh(&self) -> Result<u64, StorageError> {
        let ticket = self.refresh_tickets.load(Relaxed);
        let mut guard = self.refreshing.lock().expect("refresh lock");
        if guard.done.is_some_and(|done| done >= ticket) {
            // A refresh begun after this call began has completed.
            return Ok(self.index.read().expect("index lock").head);
        }
        let mine = self.refresh_tickets.fetch_add(1, Relaxed);
        loop {
            let next = self.index.read().expect("index lock").head + 1;
            let key = self.keys.commit(next);
            let Some(bytes) = self.get(&key)? else { break };
            let commit = layout::decode_commit(Tid(next), &bytes)?;
            let records: Vec<(Oid, Tid, &[u8])> = commit
                .records
                .iter()
                .map(|(oid, p)| (*oid, p.tid, &bytes[p.offset as usize..(p.offset + p.size) as usize]))
                .collect();
            let mut cache = self.cache.lock().expect("cache lock");
            for (oid, tid, record) in &records {
                cache.insert(*oid, *tid, record);
            }
            drop(cache);
            self.keep_on_disk(&records);
            self.apply(next, &commit);
        }
        guard.done = Some(mine);
        Ok(self.index.read().expect("index lock").head)
    }

    /// The newest tid this process has read, without asking the store.
    pub fn known_head(&self) -> u64 {
        self.index.read().expect("index lock").head
    }

    /// Adds a commit this process wrote, unless a refresh already read it.
    pub fn applied_own(&self, tid: u64, commit: &Commit, records: &[&[u8]]) {
        let _guard = self.refreshing.lock().expect("refresh lock");
        if self.index.read().expect("index lock").head + 1 == tid {
            let mut cache = self.cache.lock().expect("cache lock");
            for ((oid, place), record) in commit.records.iter().zip(records) {
                cache.insert(*oid, place.tid, record);
            }
            drop(cache);
            let on_disk: Vec<(Oid, Tid, &[u8])> =
                commit.records.iter().zip(records).map(|((oid, place), record)| (*oid, place.tid, *record)).collect();
            self.keep_on_disk(&on_disk);
            self.apply(tid, commit);
        }
    }

    /// Whether the database keeps replaced states.
    pub fn keeps_history(&self) -> bool {
        self.history.get() == Some(&crate::storage::History::Preserving)
    }

    fn apply(&self, tid: u64, commit: &Commit) {
        let mut index = self.index.write().expect("index lock");
        // A history-preserving database keeps every state until a pack.
        let oldest = if self.keeps_history() {
            0
        } else {
            self.snapshots.lock().expect("snapshot lock").keys().next().copied().unwrap_or(u64::MAX)
        };
        index.apply(tid, commit, oldest);
    }

    /// Opens a snapshot at the index's head and returns its tid.
    pub fn open_snapshot(&self) -> u64 {
        // Registered under the index lock, so no commit applied meanwhile
        // drops a state the snapshot needs.
        let index = self.index.read().expect("index lock");
        *self.snapshots.lock().expect("snapshot lock").entry(index.head).or_default() += 1;
        index.head
    }

    pub fn close_snapshot(&self, tid: u64) {
        let mut snapshots = self.snapshots.lock().expect("snapshot lock");
        if let Some(n) = snapshots.get_mut(&tid) {
            *n -= 1;
            if *n == 0 {
                snapshots.remove(&tid);
            }
        }
    }

    /// The records at `places`, from the cache or the store: one request
    /// per commit object not cached, sent together.
    pub fn read(&self, places: &[(Oid, Place)]) -> Result<Vec<(Oid, Place, Bytes)>, StorageError> {
        let mut out = Vec::with_capacity(places.len());
        let mut wanted: BTreeMap<Tid, Vec<(Oid, Place)>> = BTreeMap::new();
        {
            let cache = self.cache.lock().expect("cache lock");
            for (oid, place) in places {
                match cache.get(*oid, place.tid) {
                    Some(b) => out.push((*oid, *place, b)),
                    None => wanted.entry(place.tid).or_default().push((*oid, *place)),
                }
            }
        }
        if let Some(disk) = self.disk.get().filter(|_| !wanted.is_empty()) {
            let entries: Vec<(Oid, Place)> = std::mem::take(&mut wanted).into_values().flatten().collect();
            let keys: Vec<(Oid, Tid)> = entries.iter().map(|(oid, p)| (*oid, p.tid)).collect();
            let mut cache = self.cache.lock().expect("cache lock");
            for ((oid, place), found) in entries.into_iter().zip(disk.get(&keys)) {
                match found.filter(|r| r.len() as u64 == place.size) {
                    Some(record) => {
                        cache.insert(oid, place.tid, &record);
                        out.push((oid, place, Bytes::from(record)));
                    }
                    None => wanted.entry(place.tid).or_default().push((oid, place)),
                }
            }
        }
        if wanted.is_empty() {
            return Ok(out);
        }
        self.requests.gets.fetch_add(wanted.len() as u64, Relaxed);
        let jobs: Vec<(Path, Vec<(Oid, Place)>)> =
            wanted.into_iter().map(|(tid, list)| (self.keys.commit(tid.0), list)).collect();
        let fetched = self.run(|s| async move {
            let reads = jobs.into_iter().map(|(path, list)| {
                let s = s.clone();
                async move {
                    let ranges: Vec<std::ops::Range<u64>> =
                        list.iter().map(|(_, p)| p.offset..p.offset + p.size).collect();
                    let got = s.get_ranges(&path, &ranges).await?;
                    Ok::<_, object_store::Error>(list.into_iter().zip(got).collect::<Vec<_>>())
                }
            });
            futures_util::future::try_join_all(reads).await
        });
        let fetched = fetched.map_err(|e| match e {
            // A pack removed it after this process indexed it: a snapshot
            // from before the pack's tid read a state the pack dropped.
            object_store::Error::NotFound { .. } => {
                StorageError::Aborted { backend: BACKEND, source: Box::new(Packed) }
            }
            e => failed(&self.target, e),
        })?;
        let fetched: Vec<((Oid, Place), Bytes)> = fetched.into_iter().flatten().collect();
        let on_disk: Vec<(Oid, Tid, &[u8])> =
            fetched.iter().map(|((oid, place), bytes)| (*oid, place.tid, bytes.as_ref())).collect();
        self.keep_on_disk(&on_disk);
        let mut cache = self.cache.lock().expect("cache lock");
        for ((oid, place), bytes) in fetched {
            cache.insert(oid, place.tid, &bytes);
            out.push((oid, place, bytes));
        }
        Ok(out)
    }

    /// Writes a checkpoint at `tid`, the index's head, if it is due.
    pub fn checkpoint_if_due(&self, tid: u64) {
        if self.tuning.checkpoint_every == 0 || !tid.is_multiple_of(self.tuning.checkpoint_every) {
            return;
        }
        // A failure leaves the next checkpoint to come.
        let _ = self.checkpoint_at(tid);
    }

    /// Writes a checkpoint at `tid` if the index's head is still there
    /// (once later commits are applied, states it needs may have been
    /// dropped). Whether one exists at `tid` now.
    pub fn checkpoint_at(&self, tid: u64) -> Result<bool, StorageError> {
        let index = self.index.read().expect("index lock");
        if index.head != tid {
            return Ok(false);
        }
        let cp = index.checkpoint(tid, self.keeps_history()).encode_to_vec();
        drop(index);
        // Another process may have written the same one.
        self.create(&self.keys.checkpoint(tid), cp)?;
        Ok(true)
    }

    /// The tid a pack kept every state from (`<prefix>/packed`), 0 if none.
    pub fn packed_tid(&self) -> Result<Tid, StorageError> {
        let key = self.keys.packed();
        match self.get(&key)? {
            None => Ok(Tid(0)),
            Some(b) => decimal(&key, &b).map(Tid),
        }
    }

    /// Drops the states replaced at or before `before` (on a
    /// history-preserving database; a history-free one keeps none), writes
    /// a checkpoint of what is left, and deletes the older checkpoints and
    /// the commit objects up to `before` that hold no kept state. Each
    /// step leaves a consistent database, so a pack cut short is finished
    /// by the next. Returns how many states it dropped.
    pub fn pack(&self, before: u64) -> Result<u64, StorageError> {
        let before = before.min(self.refresh()?);
        let mut dropped = 0;
        if self.keeps_history() {
            // First the promise, so that no one reads below it from now on.
            if before > self.packed_tid()?.0 {
                self.overwrite(&self.keys.packed(), before.to_string().into_bytes())?;
            }
            dropped = self.index.write().expect("index lock").pack(before);
        }
        // A checkpoint of the packed index: a process starting from it never
        // looks for a state in a commit object about to go.
        let checkpoint = loop {
            let head = self.refresh()?;
            if self.checkpoint_at(head)? {
                break head;
            }
        };
        let mut doomed: Vec<Path> = self
            .list(&self.keys.checkpoints())?
            .into_iter()
            .filter(|k| layout::number_of(k).is_some_and(|t| t < checkpoint))
            .collect();
        let referenced = self.index.read().expect("index lock").referenced();
        doomed.extend(
            self.list(&self.keys.log())?
                .into_iter()
                .filter(|k| layout::number_of(k).is_some_and(|t| t <= before && !referenced.contains(&Tid(t)))),
        );
        for key in doomed {
            self.requests.deletes.fetch_add(1, Relaxed);
            match self.run(|s| async move { s.delete(&key).await }) {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(failed(&self.target, e)),
            }
        }
        Ok(dropped)
    }

    /// Reserves `count` oids from this process's block, taking a new block
    /// (`oids/<n>`, created if absent) when it runs out.
    pub fn new_oids(&self, count: u64) -> Result<std::ops::Range<u64>, StorageError> {
        let mut pool = self.oids.lock().expect("oid lock");
        // A block holds at most `MAX_NEW_OIDS`, so a larger count always
        // takes a new one, which `oid_range` refuses.
        if pool.end - pool.next < count {
            let (mut n, mut start) = match pool.block {
                Some(n) => (n, pool.end),
                None => match self.list(&self.keys.oid_blocks())?.pop() {
                    Some(key) => {
                        let n = layout::number_of(&key).ok_or_else(|| malformed(&key, "its name is not a number"))?;
                        (n, self.oid_block(n)?.end)
                    }
                    // The root is oid 0.
                    None => (0, 1),
                },
            };
            loop {
                let wanted = crate::storage::oids::oid_range(BACKEND, start, count)?;
                // A thousand at least, to ask the store rarely; all below 2^63.
                let end = wanted.start.saturating_add(count.max(1000)).min(crate::storage::OID_LIMIT);
                let block = OidBlock { start: wanted.start, end };
                match self.create(&self.keys.oid_block(n + 1), block.encode_to_vec())? {
                    Created::Yes => {
                        *pool = OidPool { next: block.start, end: block.end, block: Some(n + 1) };
                        self.saw_oid_block(n + 1, block.end);
                        break;
                    }
                    Created::Exists => {
                        n += 1;
                        start = self.oid_block(n)?.end;
                        self.saw_oid_block(n, start);
                    }
                }
            }
        }
        let range = pool.next..pool.next + count;
        pool.next += count;
        Ok(range)
    }

    /// The database's next oid: the end of the newest oid block, or 1
    /// before the first. Answered from what this process saw when
    /// `highest` is below that, since blocks are only added; otherwise the
    /// blocks after the newest one seen are read.
    pub fn next_oid(&self, highest: u64) -> Result<u64, StorageError> {
        let seen = *self.oid_horizon.lock().expect("oid horizon lock");
        if let Some((_, end)) = seen
            && highest < end
        {
            return Ok(end);
        }
        let (mut n, mut end) = match seen {
            Some(newest) => newest,
            None => match self.list(&self.keys.oid_blocks())?.pop() {
                Some(key) => {
                    let n = layout::number_of(&key).ok_or_else(|| malformed(&key, "its name is not a number"))?;
                    (n, self.oid_block(n)?.end)
                }
                // The root is oid 0.
                None => (0, 1),
            },
        };
        // Block `n + 1` is created only after block `n`, and starts where it ends.
        while let Some(block) = self.find_oid_block(n + 1)? {
            n += 1;
            end = block.end;
        }
        self.saw_oid_block(n, end);
        Ok(end)
    }

    /// Remembers oid block `n`, ending at `end`, if it is the newest seen.
    fn saw_oid_block(&self, n: u64, end: u64) {
        let mut seen = self.oid_horizon.lock().expect("oid horizon lock");
        if seen.is_none_or(|(newest, _)| newest < n) {
            *seen = Some((n, end));
        }
    }

    fn oid_block(&self, n: u64) -> Result<OidBlock, StorageError> {
        let key = self.keys.oid_block(n);
        self.find_oid_block(n)?.ok_or_else(|| malformed(&key, "it vanished"))
    }

    /// Oid block `n`, if it exists.
    fn find_oid_block(&self, n: u64) -> Result<Option<OidBlock>, StorageError> {
        let key = self.keys.oid_block(n);
        let Some(bytes) = self.get(&key)? else { return Ok(None) };
        let block = OidBlock::decode(bytes.as_ref()).map_err(|e| malformed(&key, e))?;
        if block.end < block.start {
            return Err(malformed(&key, "it ends before it starts"));
        }
        Ok(Some(block))
    }

    /// Each stored schema file's versions, keyed by the hex of its name,
    /// oldest first.
    fn schema_versions(&self) -> Result<BTreeMap<String, Vec<(u64, Path)>>, StorageError> {
        let mut files: BTreeMap<String, Vec<(u64, Path)>> = BTreeMap::new();
        for key in self.list(&self.keys.schemas())? {
            let (hex, version) =
                Keys::schema_version(&key).ok_or_else(|| malformed(&key, "not a schema object's name"))?;
            files.entry(hex.to_owned()).or_default().push((version, key.clone()));
        }
        for versions in files.values_mut() {
            versions.sort_by_key(|(v, _)| *v);
        }
        Ok(files)
    }

    /// The schema object at `key`, decoded, or `None` when it was deleted
    /// since the listing.
    fn read_schema(&self, key: &Path) -> Result<Option<SchemaFile>, StorageError> {
        let Some(bytes) = self.get(key)? else { return Ok(None) };
        SchemaFile::decode(bytes.as_ref()).map(Some).map_err(|e| malformed(key, e))
    }

    pub fn swap_schema(&self, name: &str, expected: Option<&str>, source: &str) -> Result<bool, StorageError> {
        let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
        let newest = self.schema_versions()?.remove(&hex).and_then(|mut v| v.pop());
        let next = match newest {
            None if expected.is_none() => 0,
            None => return Ok(false),
            Some((version, key)) => {
                let stored = self.read_schema(&key)?;
                if stored.as_ref().map(|f| f.source.as_str()) != expected {
                    return Ok(false);
                }
                version + 1
            }
        };
        // Versions are never reused while the file exists: a writer that
        // read version n can only create n + 1, and loses if another did.
        let file = SchemaFile { name: name.to_owned(), source: source.to_owned() };
        Ok(matches!(self.create(&self.keys.schema(name, next), file.encode_to_vec())?, Created::Yes))
    }

    pub fn delete_schemas(&self, names: &[String]) -> Result<(), StorageError> {
        let mut files = self.schema_versions()?;
        for name in names {
            let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
            for (_, key) in files.remove(&hex).unwrap_or_default() {
                self.requests.deletes.fetch_add(1, Relaxed);
                match self.run(|s| async move { s.delete(&key).await }) {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(failed(&self.target, e)),
                }
            }
        }
        Ok(())
    }

    pub fn schemas(&self) -> Result<Vec<(String, String)>, StorageError> {
        let mut out = Vec::new();
        for versions in self.schema_versions()?.into_values() {
            let Some((_, key)) = versions.last() else { continue };
            let Some(file) = self.read_schema(key)? else { continue };
            out.push((file.name, file.source));
        }
        out.sort();
        Ok(out)
    }

    /// The commit object of `tid`, read whole.
    pub fn commit_object(&self, tid: u64) -> Result<Option<(Commit, Bytes)>, StorageError> {
        let Some(bytes) = self.get(&self.keys.commit(tid))? else { return Ok(None) };
        Ok(Some((layout::decode_commit(Tid(tid), &bytes)?, bytes)))
    }

    /// A fresh header for a commit.
    pub fn header(time: std::time::SystemTime, meta: &crate::storage::TransactionMeta) -> CommitHeader {
        CommitHeader {
            committed_at: crate::storage::commit::micros(time),
            user: meta.user.clone(),
            description: meta.description.clone(),
            extension: meta.extension.clone(),
            nonce: crate::storage::layout::random_u64(),
            ..Default::default()
        }
    }
}

/// A number no other commit's writer picks, in practice.
impl Drop for Shared {
    fn drop(&mut self) {
        // Shutting down in the background never blocks, so dropping the
        // storage inside another Tokio runtime is fine.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
