//! Snapshots as a tid of the log, and commits as one create-if-absent write
//! of the next commit object.

use super::layout::{self, Commit};
use super::store::{BACKEND, Created, Shared, failed};
use crate::storage::commit::{self, CommitTx, Row};
use crate::storage::{Loaded, Resolve, Session, Snapshot, TransactionMeta, Write};
use crate::{ConflictError, Oid, StorageError, Tid};
use std::sync::Arc;

pub(super) struct ObjectSession {
    shared: Arc<Shared>,
    /// The open snapshot's tid.
    snapshot: Option<u64>,
    /// For a historical session, the tid it reads as of.
    past: Option<u64>,
}

impl ObjectSession {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        ObjectSession { shared, snapshot: None, past: None }
    }

    /// A session that reads the database as of `at` and refuses writes.
    pub(super) fn historical(shared: Arc<Shared>, at: u64) -> Self {
        ObjectSession { shared, snapshot: None, past: Some(at) }
    }

    /// The snapshot's tid, or the newest one outside a snapshot.
    fn at(&self) -> Result<u64, StorageError> {
        match self.snapshot.or(self.past) {
            Some(t) => Ok(t),
            None => self.shared.refresh(),
        }
    }

    fn close(&mut self) {
        if let Some(t) = self.snapshot.take() {
            self.shared.close_snapshot(t);
        }
    }
}

impl Drop for ObjectSession {
    fn drop(&mut self) {
        self.close();
    }
}

fn loaded(record: bytes::Bytes, tid: Tid) -> Loaded {
    Loaded { tid, record: record.to_vec() }
}

impl Session for ObjectSession {
    fn begin(&mut self, since: Option<Tid>) -> Result<Snapshot, StorageError> {
        self.close();
        if let Some(at) = self.past {
            // Nothing before `at` changes, and a history-preserving index
            // keeps every state, so no snapshot needs registering.
            return Ok(Snapshot { tid: Tid(at), changed: Vec::new() });
        }
        self.shared.refresh()?;
        let head = self.shared.open_snapshot();
        self.snapshot = Some(head);
        let changed = match since {
            Some(since) if since.0 < head => self.shared.index.read().expect("index lock").changed(since.0, head),
            _ => Vec::new(),
        };
        Ok(Snapshot { tid: Tid(head), changed })
    }

    fn load(&mut self, oid: Oid) -> Result<Option<Loaded>, StorageError> {
        Ok(self.load_many(&[oid])?.pop().map(|(_, l)| l))
    }

    fn load_many(&mut self, oids: &[Oid]) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        let at = self.at()?;
        let places: Vec<_> = {
            let index = self.shared.index.read().expect("index lock");
            oids.iter().filter_map(|oid| index.at(*oid, at).map(|p| (*oid, p))).collect()
        };
        let mut got = self.shared.read(&places)?;
        // In the order asked for.
        let position = |oid: Oid| oids.iter().position(|o| *o == oid);
        got.sort_by_key(|(oid, _, _)| position(*oid));
        Ok(got.into_iter().map(|(oid, place, bytes)| (oid, loaded(bytes, place.tid))).collect())
    }

    fn scan(&mut self, after: Option<Oid>, limit: usize) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        let at = self.at()?;
        let places = self.shared.index.read().expect("index lock").scan(after, limit, at);
        let mut got = self.shared.read(&places)?;
        got.sort_by_key(|(oid, _, _)| *oid);
        Ok(got.into_iter().map(|(oid, place, bytes)| (oid, loaded(bytes, place.tid))).collect())
    }

    fn end(&mut self) -> Result<(), StorageError> {
        self.close();
        Ok(())
    }

    fn commit(
        &mut self,
        writes: &[Write],
        reads: &[(Oid, Tid)],
        meta: &TransactionMeta,
        resolve: &mut Resolve<'_>,
    ) -> Result<Option<Tid>, StorageError> {
        self.close();
        // Commits of one process take turns: each decides against the
        // commit before it instead of racing it for the same tid.
        let _turn = self.shared.commit_turn.lock().expect("commit lock");
        // The first attempt decides against what this process knows; the
        // create of the next tid fails if that is stale.
        let begin = |attempt| ObjectCommit {
            shared: &self.shared,
            head: (attempt == 0).then(|| self.shared.known_head()),
            written: None,
        };
        commit::run_racing(RACE_ATTEMPTS, begin, writes, reads, meta, resolve)
    }
}

/// How often a commit decides again after losing the race for its tid
/// before it reports the race as a transient error.
const RACE_ATTEMPTS: u32 = 64;

/// One commit: `lock` brings the index up to date and reads the current
/// tids from it, `write` creates the next commit object. The create is the
/// whole commit; if another commit created it first, nothing was written.
struct ObjectCommit<'s> {
    shared: &'s Shared,
    /// The newest tid when the commit decided.
    head: Option<u64>,
    /// The tid written, for `commit` to checkpoint after.
    written: Option<u64>,
}

impl ObjectCommit<'_> {
    fn head(&mut self) -> Result<u64, StorageError> {
        match self.head {
            Some(h) => Ok(h),
            None => {
                let h = self.shared.refresh()?;
                self.head = Some(h);
                Ok(h)
            }
        }
    }

    /// After the create's outcome was lost with the connection: claim the
    /// tid with an empty commit object. If that create wins, this commit's
    /// object was never stored and never will be (creates of one key
    /// succeed once), so the commit lost nothing and may decide again.
    fn settle(&self, tid: u64, nonce: u64, cause: object_store::Error) -> Result<bool, StorageError> {
        let unknown = |source: Box<dyn std::error::Error + Send + Sync>| StorageError::CommitUnknown {
            backend: BACKEND,
            tid: Tid(tid),
            source,
        };
        let blocker = layout::encode_commit(&Shared::header(std::time::SystemTime::now(), &Default::default()), &[]);
        for _ in 0..30 {
            match self.shared.try_create(&self.shared.keys.commit(tid), blocker.clone()) {
                Ok(Created::Yes) => return Ok(false),
                Ok(Created::Exists) => {
                    return match self.shared.commit_object(tid) {
                        Ok(Some((c, _))) => Ok(c.header.nonce == nonce),
                        Ok(None) => Err(unknown(Box::new(cause))),
                        Err(e) => Err(unknown(Box::new(e))),
                    };
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
            }
        }
        Err(unknown(Box::new(cause)))
    }
}

impl CommitTx for ObjectCommit<'_> {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn next_oid(&mut self, highest: Oid) -> Result<Oid, StorageError> {
        self.shared.next_oid(highest.0).map(Oid)
    }

    fn lock(&mut self, oids: &[Oid]) -> Result<Vec<(Oid, Tid)>, StorageError> {
        // No locks: the create of the next tid fails if anything committed
        // after this head.
        let head = self.head()?;
        let index = self.shared.index.read().expect("index lock");
        Ok(oids.iter().filter_map(|oid| index.at(*oid, head).map(|p| (*oid, p.tid))).collect())
    }

    fn stored(&mut self, oids: &[Oid]) -> Result<Vec<(Oid, crate::storage::Loaded)>, StorageError> {
        let head = self.head()?;
        let places: Vec<_> = {
            let index = self.shared.index.read().expect("index lock");
            oids.iter().filter_map(|oid| index.at(*oid, head).map(|p| (*oid, p))).collect()
        };
        Ok(self.shared.read(&places)?.into_iter().map(|(oid, place, bytes)| (oid, loaded(bytes, place.tid))).collect())
    }

    fn write(
        &mut self,
        rows: &[Row<'_>],
        time: std::time::SystemTime,
        meta: &TransactionMeta,
    ) -> Result<Tid, StorageError> {
        let head = self.head()?;
        {
            let index = self.shared.index.read().expect("index lock");
            if let Some(row) = rows.iter().find(|r| r.new && index.at(r.oid, head).is_some()) {
                return Err(ConflictError { oid: row.oid }.into());
            }
        }
        let mut sorted: Vec<&Row<'_>> = rows.iter().collect();
        sorted.sort_unstable_by_key(|r| r.oid);
        let mut header = Shared::header(time, meta);
        header.oids = sorted.iter().map(|r| r.oid.0).collect();
        header.sizes = sorted.iter().map(|r| r.record.len() as u64).collect();
        let records: Vec<&[u8]> = sorted.iter().map(|r| r.record).collect();
        let bytes = layout::encode_commit(&header, &records);
        let tid = head + 1;
        let won = match self.shared.try_create(&self.shared.keys.commit(tid), bytes.clone()) {
            Ok(Created::Yes) => true,
            Ok(Created::Exists) => false,
            Err(e @ object_store::Error::Generic { .. }) => self.settle(tid, header.nonce, e)?,
            Err(e) => return Err(failed(&self.shared.target, e)),
        };
        if !won {
            return Err(commit::raced(BACKEND));
        }
        let commit: Commit = layout::decode_commit(Tid(tid), &bytes)?;
        self.shared.applied_own(tid, &commit, &records);
        self.written = Some(tid);
        Ok(Tid(tid))
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        if let Some(tid) = self.written {
            self.shared.checkpoint_if_due(tid);
        }
        Ok(())
    }

    fn rollback(&mut self) {}
}
