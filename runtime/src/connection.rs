//! Connections (one object cache each) and the transactions that run on them.

use crate::db::Shared;
use crate::storage::{Loaded, Session, Write};
use crate::{Error, Object, Oid, Persistent, Record, Ref, Result, Root, Tid};
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// One connection to a database: a storage session and an object cache in
/// which each oid has at most one object (the identity map).
///
/// A connection belongs to one thread at a time. Its cache lives across
/// transactions; at the start of each, objects that other connections
/// committed since are dropped from it.
pub struct Connection {
    shared: Arc<Shared>,
    session: Box<dyn Session>,
    cache: FxHashMap<Oid, Entry>,
    /// The snapshot tid of the last transaction started, for polling.
    polled: Option<Tid>,
}

struct Entry {
    obj: Arc<dyn Object>,
    /// The tid of the stored state this object was loaded from or saved as;
    /// `None` for an object added in the current transaction.
    tid: Option<Tid>,
}

impl Connection {
    pub(crate) fn new(shared: Arc<Shared>) -> Result<Self> {
        let session = shared.storage.open_session()?;
        Ok(Connection {
            shared,
            session,
            cache: FxHashMap::default(),
            polled: None,
        })
    }

    /// Starts a transaction that sees the database as of now.
    pub fn begin(&mut self) -> Result<Transaction<'_>> {
        let snapshot = self.session.begin(self.polled)?;
        for (oid, tid) in &snapshot.changed {
            if self.cache.get(oid).is_some_and(|e| e.tid != Some(*tid)) {
                self.cache.remove(oid);
            }
        }
        self.polled = Some(snapshot.tid);
        Ok(Transaction {
            conn: self,
            snapshot: snapshot.tid,
            writes: Vec::new(),
            written: FxHashSet::default(),
            finished: false,
        })
    }

    /// Runs `f` in a transaction and commits if it returns `Ok`. On any error
    /// nothing is written and the transaction's changes are discarded.
    pub fn transact<R>(&mut self, f: impl FnOnce(&mut Transaction<'_>) -> Result<R>) -> Result<R> {
        let mut tx = self.begin()?;
        let value = f(&mut tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// How many objects the cache holds.
    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }
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
    finished: bool,
}

impl Transaction<'_> {
    /// The tid this transaction's snapshot shows.
    pub fn snapshot_tid(&self) -> Tid {
        self.snapshot
    }

    /// The object `r` points to, loading it on first use.
    pub fn get<T: Persistent>(&mut self, r: Ref<T>) -> Result<Arc<T>> {
        let entry = self.entry::<T>(r.oid())?;
        entry
            .obj
            .clone()
            .into_any()
            .downcast::<T>()
            .map_err(|_| unreachable_type::<T>(r.oid(), entry.obj.type_name()))
    }

    /// The object `r` points to, for changing. Its changes are written at commit.
    pub fn get_mut<T: Persistent>(&mut self, r: Ref<T>) -> Result<&mut T> {
        let oid = r.oid();
        self.entry::<T>(oid)?;
        if self.written.insert(oid) {
            self.writes.push(oid);
        }
        let entry = self
            .conn
            .cache
            .get_mut(&oid)
            .ok_or(Error::NotFound { oid })?;
        if Arc::get_mut(&mut entry.obj).is_none() {
            // Someone holds the `Arc` from `get`: they keep that state, the
            // transaction continues with a copy.
            entry.obj = entry.obj.clone_object();
        }
        let found = entry.obj.type_name();
        Arc::get_mut(&mut entry.obj)
            .and_then(|o| o.as_any_mut().downcast_mut::<T>())
            .ok_or_else(|| unreachable_type::<T>(oid, found))
    }

    /// Adds a new object; it is written at commit. Returns its reference.
    pub fn add<T: Persistent>(&mut self, obj: T) -> Result<Ref<T>> {
        let oid = self.conn.shared.new_oid()?;
        self.conn.cache.insert(
            oid,
            Entry {
                obj: Arc::new(obj),
                tid: None,
            },
        );
        self.written.insert(oid);
        self.writes.push(oid);
        Ok(Ref::new(oid))
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
        if let Some(e) = self.conn.cache.get(&oid) {
            self.conn
                .shared
                .stats
                .cache_hits
                .fetch_add(1, Ordering::Relaxed);
            return Ok(e.obj.clone());
        }
        let (tid, record) = self.load_record(oid)?;
        let entry = crate::lookup_type(&record.r#type).ok_or_else(|| Error::UnknownType {
            oid,
            type_name: record.r#type.clone(),
        })?;
        let mut obj =
            (entry.decode)(&record.state).map_err(|source| Error::Corrupt { oid, source })?;
        if let Some(o) = Arc::get_mut(&mut obj) {
            o.mark_unchanged();
        }
        self.conn.cache.insert(
            oid,
            Entry {
                obj: obj.clone(),
                tid: Some(tid),
            },
        );
        Ok(obj)
    }

    /// Loads every object of `oids` that is not cached yet, in one storage
    /// call, so that following them later costs no round trip. Objects of
    /// types this program does not know are left for `get` to report.
    pub fn prefetch(&mut self, oids: impl IntoIterator<Item = Oid>) -> Result<usize> {
        let missing: Vec<Oid> = oids
            .into_iter()
            .filter(|o| !self.conn.cache.contains_key(o))
            .collect();
        if missing.is_empty() {
            return Ok(0);
        }
        let loaded = self.conn.session.load_many(&missing)?;
        self.conn
            .shared
            .stats
            .loads
            .fetch_add(loaded.len() as u64, Ordering::Relaxed);
        let mut count = 0;
        for (oid, Loaded { tid, record }) in loaded {
            let record = Record::from_bytes(bytes::Bytes::from(record))
                .map_err(|source| Error::Corrupt { oid, source })?;
            let Some(entry) = crate::lookup_type(&record.r#type) else {
                continue;
            };
            let obj =
                (entry.decode)(&record.state).map_err(|source| Error::Corrupt { oid, source })?;
            self.conn.cache.insert(
                oid,
                Entry {
                    obj,
                    tid: Some(tid),
                },
            );
            count += 1;
        }
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
        if result.is_err() {
            self.discard();
        }
        result
    }

    /// Discards the transaction's changes and writes nothing.
    pub fn abort(mut self) {
        self.finished = true;
        self.discard();
    }

    fn write_changes(&mut self) -> Result<Option<Tid>> {
        let mut writes = Vec::new();
        for oid in &self.writes {
            let Some(entry) = self.conn.cache.get(oid) else {
                continue;
            };
            if entry.tid.is_some() && !entry.obj.is_changed() {
                continue;
            }
            entry
                .obj
                .check_required()
                .map_err(|source| Error::Required { oid: *oid, source })?;
            let mut record = Vec::new();
            entry.obj.encode_record(&mut record);
            writes.push(Write {
                oid: *oid,
                base: entry.tid,
                record,
            });
        }
        if writes.is_empty() {
            self.conn.session.end()?;
            return Ok(None);
        }
        let tid = self.conn.session.commit(&writes)?;
        for w in &writes {
            if let Some(entry) = self.conn.cache.get_mut(&w.oid) {
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
        stats
            .objects_written
            .fetch_add(writes.len() as u64, Ordering::Relaxed);
        Ok(Some(tid))
    }

    /// Drops every object this transaction added or registered for writing,
    /// so the next access reloads the stored state.
    fn discard(&mut self) {
        for oid in self.writes.drain(..) {
            self.conn.cache.remove(&oid);
        }
        self.written.clear();
        // Ending a read cannot lose data; a failure here resurfaces at the next begin.
        let _ = self.conn.session.end();
    }

    /// The cache entry for `oid`, loaded as a `T` if missing.
    fn entry<T: Persistent>(&mut self, oid: Oid) -> Result<&Entry> {
        if let Some(e) = self.conn.cache.get(&oid) {
            if !e.obj.as_any().is::<T>() {
                return Err(Error::WrongType {
                    oid,
                    expected: T::TYPE_NAME,
                    found: e.obj.type_name().to_owned(),
                });
            }
            self.conn
                .shared
                .stats
                .cache_hits
                .fetch_add(1, Ordering::Relaxed);
        } else {
            let (tid, record) = self.load_record(oid)?;
            if record.r#type != T::TYPE_NAME {
                return Err(Error::WrongType {
                    oid,
                    expected: T::TYPE_NAME,
                    found: record.r#type,
                });
            }
            let obj = T::decode(record.state).map_err(|source| Error::Corrupt { oid, source })?;
            self.conn.cache.insert(
                oid,
                Entry {
                    obj: Arc::new(obj),
                    tid: Some(tid),
                },
            );
        }
        self.conn.cache.get(&oid).ok_or(Error::NotFound { oid })
    }

    /// Loads and unwraps a record; the state stays encoded.
    fn load_record(&mut self, oid: Oid) -> Result<(Tid, Record)> {
        let Loaded { tid, record } = self
            .conn
            .session
            .load(oid)?
            .ok_or(Error::NotFound { oid })?;
        self.conn.shared.stats.loads.fetch_add(1, Ordering::Relaxed);
        let record = Record::from_bytes(bytes::Bytes::from(record))
            .map_err(|source| Error::Corrupt { oid, source })?;
        Ok((tid, record))
    }
}

fn unreachable_type<T: Persistent>(oid: Oid, found: &str) -> Error {
    Error::WrongType {
        oid,
        expected: T::TYPE_NAME,
        found: found.to_owned(),
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.discard();
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
