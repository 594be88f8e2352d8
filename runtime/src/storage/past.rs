//! Sessions at a past tid, for every backend: the one place that makes
//! them refuse writes.
//!
//! A backend's [`Storage::open_session_at`](super::Storage::open_session_at)
//! builds a session that reads as of the tid and wraps it with
//! [`Past::wrap`]; the wrapper passes reads through and answers `commit`
//! itself, so no backend's own commit path ever sees a past session.

use super::{Loaded, Resolve, Session, Snapshot, TransactionMeta, Write};
use crate::{Oid, StorageError, Tid};

/// A session at a past tid: reads as the wrapped session does, and a commit
/// ends the snapshot and writes nothing, failing with
/// [`StorageError::ReadOnly`] if there was anything to write (with nothing
/// to write there is nothing to check either: the past never changes).
pub struct Past<S> {
    backend: &'static str,
    inner: S,
}

impl<S: Session + 'static> Past<S> {
    /// `inner`, reading as of the past tid, as a session that refuses writes.
    pub fn wrap(backend: &'static str, inner: S) -> Box<dyn Session> {
        Box::new(Past { backend, inner })
    }
}

impl<S> std::fmt::Debug for Past<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Past").field("backend", &self.backend).finish_non_exhaustive()
    }
}

impl<S: Session> Session for Past<S> {
    fn begin(&mut self, since: Option<Tid>) -> Result<Snapshot, StorageError> {
        self.inner.begin(since)
    }

    fn load(&mut self, oid: Oid) -> Result<Option<Loaded>, StorageError> {
        self.inner.load(oid)
    }

    fn load_many(&mut self, oids: &[Oid]) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        self.inner.load_many(oids)
    }

    fn scan(&mut self, after: Option<Oid>, limit: usize) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        self.inner.scan(after, limit)
    }

    fn load_reachable(&mut self, roots: &[Oid], depth: u32, limit: usize) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        self.inner.load_reachable(roots, depth, limit)
    }

    fn end(&mut self) -> Result<(), StorageError> {
        self.inner.end()
    }

    fn commit(
        &mut self,
        writes: &[Write],
        _reads: &[(Oid, Tid)],
        _meta: &TransactionMeta,
        _resolve: &mut Resolve<'_>,
    ) -> Result<Option<Tid>, StorageError> {
        self.inner.end()?;
        refuse(self.backend, writes)
    }
}

/// What a commit in the past answers, once its snapshot ended.
pub fn refuse(backend: &'static str, writes: &[Write]) -> Result<Option<Tid>, StorageError> {
    if writes.is_empty() { Ok(None) } else { Err(StorageError::ReadOnly { backend }) }
}
