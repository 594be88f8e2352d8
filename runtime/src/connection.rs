//! Connections (one object cache each) and the transactions that run on them.

use crate::cache::{Cache, Entry};
use crate::loaded::{Merge, decode_any, loaded_entry, merge, unwrap_record};
use crate::persistent::{Object, lookup_type};
use crate::record::RecordView;
use crate::shared::Shared;
use crate::storage::{Loaded, Session, TransactionMeta, Write};
use crate::{Error, Oid, Persistent, Ref, Result, Root, StorageError, Tid};
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// One connection to a database: a storage session and an object cache in
/// which each oid has at most one object (the identity map).
///
/// A connection belongs to one thread at a time. Its cache lives across
/// transactions; at the start of each, objects that other connections
/// committed since are dropped from it, and least recently used objects are
/// evicted down to the bounds in [`Options`](crate::Options).
pub struct Connection {
    shared: Arc<Shared>,
    session: Box<dyn Session>,
    cache: Cache,
    /// The snapshot tid of the last transaction started, for polling.
    polled: Option<Tid>,
    /// The last transaction's write lists, emptied: the next one reuses
    /// their allocations instead of growing new ones object by object.
    spare: (Vec<Oid>, FxHashSet<Oid>),
}

impl Connection {
    pub(crate) fn new(shared: Arc<Shared>) -> Result<Self> {
        let session = shared.storage.open_session()?;
        let cache = Cache::new(shared.options.cache_objects, shared.options.cache_bytes);
        Ok(Connection { shared, session, cache, polled: None, spare: Default::default() })
    }

    /// Starts a transaction that sees the database as of now.
    pub fn begin(&mut self) -> Result<Transaction<'_>> {
        let snapshot = self.session.begin(self.polled)?;
        for (oid, tid) in &snapshot.changed {
            // An oid can be listed once per transaction that wrote it: only
            // states older than the listed one are stale.
            if self.cache.get(*oid).is_some_and(|e| e.tid.is_none_or(|cached| cached < *tid)) {
                self.cache.remove(*oid);
            }
        }
        self.polled = Some(snapshot.tid);
        let evicted = self.cache.evict(&FxHashSet::default(), false);
        self.shared.stats.evictions.fetch_add(evicted, Ordering::Relaxed);
        let (writes, written) = std::mem::take(&mut self.spare);
        Ok(Transaction {
            conn: self,
            snapshot: snapshot.tid,
            writes,
            written,
            reads: FxHashMap::default(),
            meta: TransactionMeta::default(),
            finished: false,
            hits: 0,
            before: FxHashMap::default(),
        })
    }

    /// Runs `f` in a transaction and commits. On a conflict, runs it again in
    /// a new transaction (which sees the other commits), up to
    /// [`Options::max_attempts`](crate::Options::max_attempts) times with a
    /// growing, jittered pause. On any other error nothing is written and the
    /// transaction's changes are discarded.
    pub fn transact<R>(&mut self, mut f: impl FnMut(&mut Transaction<'_>) -> Result<R>) -> Result<R> {
        let max = self.shared.options.max_attempts;
        let mut attempt = 1;
        loop {
            let result = {
                let mut tx = self.begin()?;
                match f(&mut tx) {
                    Ok(value) => tx.commit().map(|_| value),
                    Err(e) => Err(e),
                }
            };
            match result {
                Err(e) if e.is_transient() && attempt < max => {
                    self.shared.stats.retries.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(backoff(attempt));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// How many objects the cache holds.
    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }
}

/// A pause before attempt `attempt + 1`: exponential from 1 ms, capped at
/// 64 ms, with jitter so that colliding writers spread out.
fn backoff(attempt: u32) -> std::time::Duration {
    use std::hash::{BuildHasher, Hasher};
    let ceiling = 1u64 << attempt.min(6);
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    std::time::Duration::from_micros(500 * ceiling + random % (1000 * ceiling))
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("storage", &self.shared.storage.name())
            .field("cached", &self.cache.len())
            .field("polled", &self.polled)
            .finish()
    }
}

/// A transaction: reads see one snapshot, changes are written at commit.
///
/// Objects come back as `Arc<T>`: loading the same oid twice in one
/// transaction gives the same object (`Arc::ptr_eq`). [`get_mut`](Self::get_mut)
/// registers the object for writing; commit writes only added objects and
/// registered objects whose fields changed. Dropping a transaction without
/// committing aborts it.
pub struct Transaction<'c> {
    conn: &'c mut Connection,
    snapshot: Tid,
    /// Oids to consider at commit, in the order first registered.
    writes: Vec<Oid>,
    written: FxHashSet<Oid>,
    /// Objects whose stored tid must not move before commit (`read_current`).
    reads: FxHashMap<Oid, Tid>,
    /// Who makes it and why, stored with it.
    meta: TransactionMeta,
    finished: bool,
    /// Cache hits, added to the shared statistics when the transaction ends
    /// (one atomic add per transaction, not per read).
    hits: u64,
    /// The stored states of the objects this transaction got for changing
    /// whose type a [`CommitHook`] watches (indexed types).
    before: FxHashMap<Oid, Arc<dyn Object>>,
}

impl Transaction<'_> {
    /// The tid this transaction's snapshot shows.
    pub fn snapshot_tid(&self) -> Tid {
        self.snapshot
    }

    /// Records who makes this transaction; stored with it if it writes.
    pub fn set_user(&mut self, user: impl Into<String>) {
        self.meta.user = user.into();
    }

    /// Adds a line to the transaction's description (lines are joined by
    /// newlines); stored with it if it writes.
    pub fn note(&mut self, text: impl AsRef<str>) {
        if !self.meta.description.is_empty() {
            self.meta.description.push('\n');
        }
        self.meta.description.push_str(text.as_ref());
    }

    /// Keeps `value` under `key` in the transaction's extension (a later
    /// value replaces an earlier one); stored with it if it writes.
    pub fn set_extension(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.meta.extension.insert(key.into(), value.into());
    }

    /// The metadata the transaction will be stored with.
    pub fn meta(&self) -> &TransactionMeta {
        &self.meta
    }

    /// The object `r` points to, loading it on first use.
    pub fn get<T: Persistent>(&mut self, r: Ref<T>) -> Result<Arc<T>> {
        // The hot path: a cached object of the asked type.
        if let Some(e) = self.conn.cache.touch(r.oid()) {
            let any: Arc<dyn std::any::Any + Send + Sync> = e.obj.clone();
            if let Ok(obj) = any.downcast::<T>() {
                self.hits += 1;
                return Ok(obj);
            }
        }
        let entry = self.entry::<T>(r.oid())?;
        let found = entry.obj.type_name();
        entry.obj.clone().into_any().downcast::<T>().map_err(|_| wrong_type::<T>(r.oid(), found))
    }

    /// The object `r` points to, borrowed from the cache, loading it on first
    /// use. The cheapest read of many: no reference count is taken, so reads
    /// of objects spread over memory overlap instead of waiting on each
    /// other. The borrow ends before the transaction is used again; use
    /// [`get`](Self::get) for an object to keep.
    pub fn get_ref<T: Persistent>(&mut self, r: Ref<T>) -> Result<&T> {
        let oid = r.oid();
        let entry = self.entry::<T>(oid)?;
        let any: &dyn std::any::Any = &*entry.obj;
        any.downcast_ref::<T>().ok_or_else(|| wrong_type::<T>(oid, entry.obj.type_name()))
    }

    /// The object `r` points to, for changing. Its changes are written at commit.
    pub fn get_mut<T: Persistent>(&mut self, r: Ref<T>) -> Result<&mut T> {
        let oid = r.oid();
        self.entry::<T>(oid)?;
        if self.written.insert(oid) {
            self.writes.push(oid);
        }
        let entry = self.conn.cache.get_mut(oid).ok_or(Error::NotFound { oid })?;
        if entry.tid.is_some() && !self.before.contains_key(&oid) && hooks_watch(entry.obj.type_name()) {
            // Hooks see what changed from the stored state; the copy on
            // write below keeps it as it is.
            self.before.insert(oid, entry.obj.clone());
        }
        if entry.original().is_none() && entry.tid.is_some() && entry.obj.resolves_conflicts() {
            // Conflict resolution needs the state this transaction started from.
            entry.set_original(Some(entry.obj.clone()));
        }
        if Arc::get_mut(&mut entry.obj).is_none() {
            // Someone holds the `Arc` from `get`: they keep that state, the
            // transaction continues with a copy.
            entry.obj = entry.obj.clone_object();
        }
        let found = entry.obj.type_name();
        let obj = Arc::get_mut(&mut entry.obj)
            .and_then(|o| o.as_any_mut().downcast_mut::<T>())
            .ok_or_else(|| wrong_type::<T>(oid, found))?;
        if !T::TRACKS_FIELDS {
            // Public fields change without accessors: count the object as changed.
            obj.meta_mut().touch();
        }
        Ok(obj)
    }

    /// Adds a new object; it is written at commit. Returns its reference.
    pub fn add<T: Persistent>(&mut self, obj: T) -> Result<Ref<T>> {
        let oid = self.conn.shared.new_oid()?;
        let size = obj.encoded_len();
        self.conn.cache.insert(oid, Entry::new(Arc::new(obj), None, size));
        self.written.insert(oid);
        self.writes.push(oid);
        Ok(Ref::new(oid))
    }

    /// Asks that the commit fail with a conflict if another transaction
    /// commits `r` after this one read it, even if this one does not change
    /// it (a read conflict, for invariants across objects).
    pub fn read_current<T: Persistent>(&mut self, r: Ref<T>) -> Result<()> {
        let entry = self.entry::<T>(r.oid())?;
        if let Some(tid) = entry.tid {
            self.reads.insert(r.oid(), tid);
        }
        Ok(())
    }

    /// The root object.
    pub fn root(&mut self) -> Result<Arc<Root>> {
        self.get(Ref::new(Oid::ROOT))
    }

    /// The root object, for changing.
    pub fn root_mut(&mut self) -> Result<&mut Root> {
        self.get_mut(Ref::new(Oid::ROOT))
    }

    /// The object with this oid, of whatever registered type it is.
    pub fn get_object(&mut self, oid: Oid) -> Result<Arc<dyn Object>> {
        if let Some(e) = self.conn.cache.touch(oid) {
            let obj = e.obj.clone();
            self.hits += 1;
            return Ok(obj);
        }
        let (tid, size, mut record) = self.load_record(oid)?;
        let obj = decode_any(&self.conn.shared, oid, &mut record)?;
        self.conn.cache.insert(oid, loaded_entry(obj.clone(), tid, size, &record));
        self.evict_unused();
        Ok(obj)
    }

    /// Loads every object of `oids` that is not cached yet, in one storage
    /// call, so that following them later costs no round trip. Objects of
    /// types this program does not know are left for `get` to report.
    pub fn prefetch(&mut self, oids: impl IntoIterator<Item = Oid>) -> Result<usize> {
        let missing: Vec<Oid> = oids.into_iter().filter(|o| self.conn.cache.get(*o).is_none()).collect();
        if missing.is_empty() {
            return Ok(0);
        }
        let loaded = self.conn.session.load_many(&missing)?;
        self.cache_loaded(loaded)
    }

    /// Loads `r` and the objects below it, following references at most
    /// `depth` levels down (at most 10,000 objects), so that a traversal of
    /// that part of the graph costs no further round trips. The storage
    /// follows the stored reference lists itself: on PostgreSQL the whole
    /// walk is one query, even along a chain. Objects already cached are
    /// walked through, not loaded again. Returns how many objects were loaded.
    pub fn prefetch_refs<T: ?Sized>(&mut self, r: Ref<T>, depth: u32) -> Result<usize> {
        const LIMIT: usize = 10_000;
        let mut frontier = vec![r.oid()];
        let mut seen: FxHashSet<Oid> = frontier.iter().copied().collect();
        let mut total = 0;
        for level in 0..=depth {
            let missing: Vec<Oid> = frontier.iter().copied().filter(|o| self.conn.cache.get(*o).is_none()).collect();
            if !missing.is_empty() {
                let loaded = self.conn.session.load_reachable(&missing, depth - level, LIMIT)?;
                total += self.cache_loaded(loaded)?;
            }
            if level == depth || total >= LIMIT {
                break;
            }
            let mut next = Vec::new();
            for oid in &frontier {
                if let Some(e) = self.conn.cache.get(*oid) {
                    e.obj.visit_refs(&mut |o| next.push(o));
                    next.extend(e.hidden_refs().iter().map(|o| Oid(*o)));
                }
            }
            next.retain(|o| seen.insert(*o));
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        Ok(total)
    }

    /// The reference lists stored with the records of `oids` as of the
    /// snapshot, what gc follows, for the objects that exist and that this
    /// transaction did not change (their lists are written at commit): a
    /// checker compares them with what the decoded states reference.
    pub(crate) fn stored_refs(&mut self, oids: &[Oid]) -> Result<Vec<(Oid, Vec<u64>)>> {
        let unchanged: Vec<Oid> = oids.iter().copied().filter(|o| !self.written.contains(o)).collect();
        let mut out = Vec::with_capacity(unchanged.len());
        for chunk in unchanged.chunks(1000) {
            for (oid, loaded) in self.conn.session.load_many(chunk)? {
                let refs = crate::record::refs_only(&loaded.record)
                    .map_err(|e| StorageError::Format(format!("object {oid} has a malformed reference list: {e}")))?;
                out.push((oid, refs));
            }
        }
        Ok(out)
    }

    /// Decodes loaded records into the cache, skipping oids already cached
    /// and types this program does not know. Returns how many were added.
    fn cache_loaded(&mut self, loaded: Vec<(Oid, Loaded)>) -> Result<usize> {
        self.conn.shared.stats.loads.fetch_add(loaded.len() as u64, Ordering::Relaxed);
        let mut count = 0;
        for (oid, loaded) in loaded {
            if self.conn.cache.get(oid).is_some() {
                continue;
            }
            let (tid, size, mut record) = unwrap_record(&self.conn.shared, oid, loaded)?;
            if lookup_type(record.type_name()).is_none() {
                continue;
            }
            let obj = decode_any(&self.conn.shared, oid, &mut record)?;
            self.conn.cache.insert(oid, loaded_entry(obj, tid, size, &record));
            count += 1;
        }
        self.evict_unused();
        Ok(count)
    }

    /// Writes every added object and every registered object that changed,
    /// atomically. Returns the new tid, or `None` if there was nothing to write.
    ///
    /// On failure nothing is written, and the transaction's changes are
    /// discarded from the cache.
    pub fn commit(mut self) -> Result<Option<Tid>> {
        self.finished = true;
        let result = self.write_changes();
        match &result {
            Ok(_) => {
                for oid in &self.writes {
                    if let Some(e) = self.conn.cache.get_mut(*oid) {
                        e.set_original(None);
                    }
                }
                let evicted = self.conn.cache.evict(&FxHashSet::default(), false);
                self.conn.shared.stats.evictions.fetch_add(evicted, Ordering::Relaxed);
            }
            Err(e) => {
                if matches!(e, Error::Conflict(_)) {
                    self.conn.shared.stats.conflicts.fetch_add(1, Ordering::Relaxed);
                }
                self.discard();
            }
        }
        result
    }

    /// Discards the transaction's changes and writes nothing.
    pub fn abort(mut self) {
        self.finished = true;
        self.discard();
    }

    /// Writes the transaction's changes: collects them, commits them with
    /// merges under the storage's locks, and applies the outcome to the
    /// cache and the statistics.
    fn write_changes(&mut self) -> Result<Option<Tid>> {
        // What the program wrote; hooks (index maintenance) append theirs.
        let plain = self.writes.len();
        let mut rebases = 0;
        loop {
            if !hooks().is_empty() {
                self.run_hooks(plain)?;
            }
            let mut writes = self.collect_writes()?;
            if self.conn.shared.read_only {
                // A read-only transaction's snapshot was consistent throughout;
                // there is nothing to check and nothing may be written.
                if !writes.is_empty() {
                    self.conn.shared.refuse_writes()?;
                }
                self.conn.session.end()?;
                return Ok(None);
            }
            self.conn
                .shared
                .describe(writes.iter().filter_map(|w| self.conn.cache.get(w.oid)).map(|e| e.obj.as_ref()))?;
            let reads: Vec<(Oid, Tid)> = self.reads.iter().map(|(o, t)| (*o, *t)).collect();
            if writes.is_empty() && reads.is_empty() {
                self.conn.session.end()?;
                return Ok(None);
            }
            match self.commit_with_merges(&writes, &reads) {
                Err(Error::Conflict(c)) if rebases < MAX_REBASES && self.may_rebase(plain, c.oid) => {
                    rebases += 1;
                    self.rebase_hooks(plain)?;
                }
                result => {
                    let (tid, merges) = result?;
                    self.apply_merges(merges, &mut writes);
                    let Some(tid) = tid else { return Ok(None) };
                    self.apply_commit(tid, &writes);
                    return Ok(Some(tid));
                }
            }
        }
    }

    /// Whether a conflict on `oid` can be settled by running the hooks
    /// again on the newest state: only the hooks wrote `oid` (an index
    /// bucket a concurrent commit split), and the program did not write the
    /// root, which a hook also writes when it creates an index.
    fn may_rebase(&self, plain: usize, oid: Oid) -> bool {
        self.writes[plain..].contains(&oid) && !self.writes[..plain].contains(&Oid::ROOT)
    }

    /// Drops what the hooks wrote and moves the transaction's snapshot to
    /// the newest commit, so that the hooks run again on the index trees as
    /// they are now. The program's own writes keep the tids they were read
    /// at, so the commit still refuses them if another commit changed them;
    /// cached objects that changed meanwhile and that it did not write are
    /// dropped, as at the start of a transaction.
    fn rebase_hooks(&mut self, plain: usize) -> Result<()> {
        for oid in self.writes.drain(plain..) {
            self.written.remove(&oid);
            self.conn.cache.remove(oid);
        }
        // The failed commit may have ended the storage's transaction already.
        let _ = self.conn.session.end();
        let snapshot = self.conn.session.begin(self.conn.polled)?;
        for (oid, tid) in &snapshot.changed {
            if self.written.contains(oid) {
                continue;
            }
            if self.conn.cache.get(*oid).is_some_and(|e| e.tid.is_none_or(|cached| cached < *tid)) {
                self.conn.cache.remove(*oid);
            }
        }
        self.conn.polled = Some(snapshot.tid);
        self.snapshot = snapshot.tid;
        self.conn.shared.stats.conflicts_resolved.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Shows the hooks every new or changed object of a type they watch
    /// among the first `plain` writes (the program's), so that their writes
    /// (index entries) join this transaction's.
    fn run_hooks(&mut self, plain: usize) -> Result<()> {
        for i in 0..plain {
            let oid = self.writes[i];
            let Some(entry) = self.conn.cache.get(oid) else { continue };
            if entry.tid.is_some() && !entry.obj.is_changed() {
                continue;
            }
            if !hooks_watch(entry.obj.type_name()) {
                continue;
            }
            let now = entry.obj.clone();
            // Kept, not taken: a rebase runs the hooks again.
            let before = self.before.get(&oid).cloned();
            for hook in hooks() {
                hook.written(self, oid, before.as_deref(), now.as_ref())?;
            }
        }
        Ok(())
    }

    /// Up to `limit` stored objects with oids above `after` (all, for
    /// `None`), in oid order as of the snapshot: each one's oid and stored
    /// type name.
    pub(crate) fn scan_types(&mut self, after: Option<Oid>, limit: usize) -> Result<Vec<(Oid, String)>> {
        let found = self.conn.session.scan(after, limit)?;
        let mut out = Vec::with_capacity(found.len());
        for (oid, loaded) in found {
            let (_, _, record) = unwrap_record(&self.conn.shared, oid, loaded)?;
            out.push((oid, record.type_name().to_owned()));
        }
        Ok(out)
    }

    /// [`read_current`](Self::read_current) for an object of any type,
    /// read by this transaction already.
    pub(crate) fn read_current_oid(&mut self, oid: Oid) {
        if let Some(tid) = self.conn.cache.get(oid).and_then(|e| e.tid) {
            self.reads.insert(oid, tid);
        }
    }

    /// The database's next oid: every object created from now on is at or
    /// above it.
    pub(crate) fn next_oid(&mut self) -> Result<Oid> {
        self.conn.shared.refuse_writes()?;
        Ok(Oid(self.conn.shared.storage.new_oids(0)?.start))
    }

    /// Whether object `oid` exists in this transaction's snapshot (or was
    /// added by it), loading it into the cache if it is not there: an index
    /// query's caller gets the objects it found next.
    pub(crate) fn exists(&mut self, oid: Oid) -> Result<bool> {
        match self.get_object(oid) {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The records of the objects to write: new ones, and loaded ones that
    /// changed, each with its required fields checked.
    fn collect_writes(&self) -> Result<Vec<Write>> {
        let mut writes = Vec::with_capacity(self.writes.len());
        for oid in &self.writes {
            let Some(entry) = self.conn.cache.get(*oid) else { continue };
            if entry.tid.is_some() && !entry.obj.is_changed() {
                continue;
            }
            entry.obj.check_required().map_err(|source| Error::Required { oid: *oid, source })?;
            let mut record = Vec::new();
            entry.obj.encode_record(&mut record, entry.hidden_refs());
            writes.push(Write { oid: *oid, base: entry.tid, record });
        }
        Ok(writes)
    }

    /// Commits `writes`, checking `reads`. Conflicts on types with conflict
    /// resolution are merged by the storage while it holds the commit's
    /// locks, so a merge cannot be overtaken by yet another commit; the
    /// merges made are returned beside the tid.
    fn commit_with_merges(&mut self, writes: &[Write], reads: &[(Oid, Tid)]) -> Result<(Option<Tid>, Vec<Merge>)> {
        let conn = &mut *self.conn;
        let (cache, shared) = (&conn.cache, &conn.shared);
        let mut merges: Vec<Merge> = Vec::new();
        let mut failure: Option<Error> = None;
        let mut resolve = |oid: Oid, committed: &Loaded| match merge(cache, shared, oid, committed) {
            Ok(Some(m)) => {
                let bytes = m.record.clone();
                merges.push(m);
                Some(bytes)
            }
            Ok(None) => None,
            Err(e) => {
                failure = Some(e);
                None
            }
        };
        match conn.session.commit(writes, reads, &self.meta, &mut resolve) {
            Ok(tid) => Ok((tid, merges)),
            Err(StorageError::Conflict(c)) => Err(failure.unwrap_or(Error::Conflict(c))),
            Err(e) => Err(e.into()),
        }
    }

    /// Puts each merged object in the cache and its record among `writes`.
    /// A storage that decides again after a lost race merges again: the
    /// last merge of each object is the one written.
    fn apply_merges(&mut self, mut merges: Vec<Merge>, writes: &mut [Write]) {
        let mut seen = rustc_hash::FxHashSet::default();
        merges.reverse();
        merges.retain(|m| seen.insert(m.oid));
        for m in merges {
            if let Some(entry) = self.conn.cache.get_mut(m.oid) {
                entry.obj = m.merged;
                entry.set_original(Some(m.committed));
            }
            if let Some(w) = writes.iter_mut().find(|w| w.oid == m.oid) {
                w.record = m.record;
            }
            self.conn.shared.stats.conflicts_resolved.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Marks the written objects as stored at `tid`, unchanged, and counts
    /// the commit.
    fn apply_commit(&mut self, tid: Tid, writes: &[Write]) {
        if tid.0 == self.snapshot.0 + 1 {
            // Nobody committed between our snapshot and our commit: the next
            // poll need not read back our own writes.
            self.conn.polled = Some(tid);
        }
        for w in writes {
            self.conn.cache.set_size(w.oid, w.record.len());
            if let Some(entry) = self.conn.cache.get_mut(w.oid) {
                entry.tid = Some(tid);
                if Arc::get_mut(&mut entry.obj).is_none() {
                    entry.obj = entry.obj.clone_object();
                }
                if let Some(o) = Arc::get_mut(&mut entry.obj) {
                    o.mark_unchanged();
                }
            }
        }
        let stats = &self.conn.shared.stats;
        stats.commits.fetch_add(1, Ordering::Relaxed);
        stats.objects_written.fetch_add(writes.len() as u64, Ordering::Relaxed);
    }

    /// Drops every object this transaction added or registered for writing,
    /// so the next access reloads the stored state.
    fn discard(&mut self) {
        self.before.clear();
        for oid in self.writes.drain(..) {
            self.conn.cache.remove(oid);
        }
        self.written.clear();
        self.reads.clear();
        // Ending a read cannot lose data; a failure here resurfaces at the next begin.
        let _ = self.conn.session.end();
    }

    /// Evicts objects nobody else holds, if the cache is over its bounds.
    fn evict_unused(&mut self) {
        if self.conn.cache.over_limit() {
            let evicted = self.conn.cache.evict(&self.written, true);
            self.conn.shared.stats.evictions.fetch_add(evicted, Ordering::Relaxed);
        }
    }

    /// The cache entry for `oid`, loaded as a `T` if missing.
    fn entry<T: Persistent>(&mut self, oid: Oid) -> Result<&Entry> {
        if let Some(e) = self.conn.cache.touch(oid) {
            // Every cache hit comes here. Viewing the object as `Any` is an
            // upcast (a vtable load, where `as_any` was a call), so the check
            // makes one virtual call, `type_id`.
            if !<dyn std::any::Any>::is::<T>(&*e.obj) {
                let same_message = e.obj.type_name() == T::TYPE_NAME || T::FORMER_NAMES.contains(&e.obj.type_name());
                if !same_message || self.written.contains(&oid) || e.obj.is_changed() {
                    return Err(wrong_type::<T>(oid, e.obj.type_name()));
                }
                // Two Rust types for one protobuf message (say, generated and
                // hand-written): see the cached state through the one asked for.
                let state = e.obj.encode_state();
                let depth = self.conn.shared.options.max_depth;
                let obj = crate::wire::with_depth_limit(depth, || T::decode(state.as_slice()))
                    .map_err(|source| Error::Corrupt { oid, source })?;
                if let Some(entry) = self.conn.cache.get_mut(oid) {
                    entry.obj = Arc::new(obj);
                }
            }
            self.hits += 1;
        } else {
            let (tid, size, record) = self.load_record(oid)?;
            if record.type_name() != T::TYPE_NAME && !T::FORMER_NAMES.contains(&record.type_name()) {
                return Err(Error::WrongType { oid, expected: T::TYPE_NAME, found: record.type_name().to_owned() });
            }
            let depth = self.conn.shared.options.max_depth;
            let obj = crate::wire::with_depth_limit(depth, || T::decode(record.state.clone()))
                .map_err(|source| Error::Corrupt { oid, source })?;
            // Room is made before the insert: evicting after it could take
            // the object just loaded, when everything else is held or written.
            self.evict_unused();
            self.conn.cache.insert(oid, loaded_entry(Arc::new(obj), tid, size, &record));
        }
        self.conn.cache.get(oid).ok_or(Error::NotFound { oid })
    }

    /// The stored type name and encoded state of `oid`, not decoded: for
    /// readers that decode with stored schemas instead of Rust types.
    #[cfg(feature = "reflect")]
    pub(crate) fn load_state(&mut self, oid: Oid) -> Result<(String, bytes::Bytes)> {
        let (_, _, record) = self.load_record(oid)?;
        Ok((record.type_name().to_owned(), record.state))
    }

    /// Loads and unwraps a record; the state stays encoded.
    fn load_record(&mut self, oid: Oid) -> Result<(Tid, usize, RecordView)> {
        let loaded = self.conn.session.load(oid)?.ok_or(Error::NotFound { oid })?;
        self.conn.shared.stats.loads.fetch_add(1, Ordering::Relaxed);
        unwrap_record(&self.conn.shared, oid, loaded)
    }
}

/// Work a commit does for objects of some types before its writes are
/// collected, in the same transaction: how indexes stay current. Modules
/// above this one register one with `inventory::submit!(CommitHooks(..))`.
pub(crate) trait CommitHook: Sync {
    /// Whether objects of this stored type concern the hook.
    fn watches(&self, type_name: &str) -> bool;
    /// Object `oid` is new (`before` is `None`) or changed from `before`.
    fn written(&self, tx: &mut Transaction<'_>, oid: Oid, before: Option<&dyn Object>, now: &dyn Object) -> Result<()>;
}

/// A registered [`CommitHook`].
pub(crate) struct CommitHooks(pub &'static dyn CommitHook);

inventory::collect!(CommitHooks);

fn hooks() -> &'static [&'static dyn CommitHook] {
    static HOOKS: std::sync::OnceLock<Vec<&'static dyn CommitHook>> = std::sync::OnceLock::new();
    HOOKS.get_or_init(|| inventory::iter::<CommitHooks>.into_iter().map(|h| h.0).collect())
}

/// How many times one commit runs its hooks again on the newest index
/// state before its conflict goes to the retry loop.
const MAX_REBASES: u32 = 10;

fn hooks_watch(type_name: &str) -> bool {
    hooks().iter().any(|h| h.watches(type_name))
}

fn wrong_type<T: Persistent>(oid: Oid, found: &str) -> Error {
    Error::WrongType { oid, expected: T::TYPE_NAME, found: found.to_owned() }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.discard();
        }
        self.conn.shared.stats.cache_hits.fetch_add(self.hits, Ordering::Relaxed);
        // A very large transaction's lists are not kept for the next one.
        if self.written.capacity() <= 1 << 16 {
            self.writes.clear();
            self.written.clear();
            self.conn.spare = (std::mem::take(&mut self.writes), std::mem::take(&mut self.written));
        }
    }
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("snapshot", &self.snapshot)
            .field("pending_writes", &self.writes.len())
            .finish()
    }
}
