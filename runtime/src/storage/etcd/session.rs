//! Snapshots as reads at one revision, and commits as one etcd transaction
//! comparing the revision of every key read or written.

use super::TransactionEntry;
use super::client::{Etcd, at_revision};
use super::watch::Watch;
use crate::storage::commit::{self, CommitTx, Row};
use crate::storage::{Loaded, Resolve, Session, Snapshot, TransactionMeta, Write};
use crate::{ConflictError, Oid, StorageError, Tid};
use etcd_client::{Compare, CompareOp, GetOptions, KeyValue, Txn, TxnOp, TxnOpResponse};
use prost::Message;
use std::sync::Arc;

pub(super) struct EtcdSession {
    etcd: Arc<Etcd>,
    watch: Arc<Watch>,
    /// The revision reads are made at, while a snapshot is open.
    snapshot: Option<i64>,
}

impl EtcdSession {
    pub(super) fn new(etcd: Arc<Etcd>, watch: Arc<Watch>) -> Self {
        EtcdSession { etcd, watch, snapshot: None }
    }

    /// The snapshot's revision, or the newest tid outside one.
    fn at(&self) -> Result<i64, StorageError> {
        match self.snapshot {
            Some(r) => Ok(r),
            None => self.etcd.head(),
        }
    }
}

impl Session for EtcdSession {
    fn begin(&mut self, since: Option<Tid>) -> Result<Snapshot, StorageError> {
        let head = self.etcd.head()?;
        self.snapshot = Some(head);
        let mut changed = Vec::new();
        // A `since` at or above 2^63 is after every revision: nothing changed.
        if let Some(since) = since.filter(|s| i64::try_from(s.0).is_ok_and(|s| s < head)) {
            if let Some(pushed) = self.watch.changed(since, head) {
                return Ok(Snapshot { tid: Tid(head as u64), changed: pushed });
            }
            // The watch cannot tell: ask the server, keys only, filtered by
            // revision there.
            let (first, end) = self.etcd.object_range();
            let options = GetOptions::new()
                .with_range(end)
                .with_revision(head)
                .with_keys_only()
                .with_min_mod_revision(since.0 as i64 + 1);
            let mut got = self.etcd.run(|mut c| async move { c.get(first, Some(options)).await })?;
            for kv in got.take_kvs() {
                changed.push((self.etcd.oid_of(kv.key())?, Tid(kv.mod_revision() as u64)));
            }
        }
        Ok(Snapshot { tid: Tid(head as u64), changed })
    }

    fn load(&mut self, oid: Oid) -> Result<Option<Loaded>, StorageError> {
        let (key, at) = (self.etcd.object_key(oid), self.snapshot);
        let mut got = self.etcd.read_at_revision(at.is_some(), |serializable| {
            let (key, options) = (key.clone(), at.map(|r| at_revision(r, serializable)));
            move |mut c: etcd_client::Client| async move { c.get(key, options).await }
        })?;
        Ok(got.take_kvs().pop().map(|kv| loaded(&kv)))
    }

    fn load_many(&mut self, oids: &[Oid]) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        let keys = oids.iter().map(|o| self.etcd.object_key(*o)).collect();
        let got = self.etcd.get_many(keys, Some(self.at()?))?;
        Ok(oids.iter().zip(got).filter_map(|(oid, kv)| kv.map(|kv| (*oid, loaded(&kv)))).collect())
    }

    fn scan(&mut self, after: Option<Oid>, limit: usize) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        let page = self.etcd.scan(after, limit, self.at()?)?;
        page.into_iter()
            .map(|kv| {
                let oid = self.etcd.oid_of(kv.key())?;
                Ok((oid, loaded(&kv)))
            })
            .collect()
    }

    fn end(&mut self) -> Result<(), StorageError> {
        self.snapshot = None;
        Ok(())
    }

    fn commit(
        &mut self,
        writes: &[Write],
        reads: &[(Oid, Tid)],
        meta: &TransactionMeta,
        resolve: &mut Resolve<'_>,
    ) -> Result<Option<Tid>, StorageError> {
        self.snapshot = None;
        let begin = |_| EtcdCommit { etcd: &self.etcd, locked: Vec::new() };
        commit::run_racing(RACE_ATTEMPTS, begin, writes, reads, meta, resolve)
    }
}

/// One commit: `lock` reads the current revisions, `write` sends the one
/// etcd transaction that compares them and writes everything.
struct EtcdCommit<'e> {
    etcd: &'e Etcd,
    /// Each locked oid with the key and value `lock` read: the revision the
    /// write compares, and the record `stored` hands to a merge.
    locked: Vec<(Oid, KeyValue)>,
}

/// A stored record as a load returns it.
fn loaded(kv: &KeyValue) -> Loaded {
    Loaded { tid: Tid(kv.mod_revision() as u64), record: kv.value().to_vec() }
}

/// How often a commit decides again after losing a race before it reports
/// the race as a transient error.
const RACE_ATTEMPTS: u32 = 16;

impl CommitTx for EtcdCommit<'_> {
    fn name(&self) -> &'static str {
        "etcd"
    }

    fn next_oid(&mut self, highest: Oid) -> Result<Oid, StorageError> {
        self.etcd.next_oid(highest.0).map(Oid)
    }

    fn lock(&mut self, oids: &[Oid]) -> Result<Vec<(Oid, Tid)>, StorageError> {
        // etcd has no locks: the write compares these revisions instead.
        let keys = oids.iter().map(|o| self.etcd.object_key(*o)).collect();
        let got = self.etcd.get_many(keys, None)?;
        self.locked = oids.iter().zip(got).filter_map(|(oid, kv)| Some((*oid, kv?))).collect();
        Ok(self.locked.iter().map(|(oid, kv)| (*oid, Tid(kv.mod_revision() as u64))).collect())
    }

    fn stored(&mut self, oids: &[Oid]) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        // `lock` read the records with their revisions; the write's compares
        // make sure they are still the stored ones.
        oids.iter()
            .map(|oid| match self.locked.iter().find(|(o, _)| o == oid) {
                Some((_, kv)) => Ok((*oid, loaded(kv))),
                None => Err(commit::raced("etcd")),
            })
            .collect()
    }

    fn write(
        &mut self,
        rows: &[Row<'_>],
        time: std::time::SystemTime,
        meta: &TransactionMeta,
    ) -> Result<Tid, StorageError> {
        let etcd = self.etcd;
        let mut compares: Vec<Compare> = self
            .locked
            .iter()
            .map(|(oid, kv)| Compare::mod_revision(etcd.object_key(*oid), CompareOp::Equal, kv.mod_revision()))
            .collect();
        let new: Vec<Oid> = rows.iter().filter(|r| r.new).map(|r| r.oid).collect();
        compares.extend(new.iter().map(|oid| Compare::version(etcd.object_key(*oid), CompareOp::Equal, 0)));
        let mut puts: Vec<TxnOp> = rows.iter().map(|r| TxnOp::put(etcd.object_key(r.oid), r.record, None)).collect();
        let mut oids: Vec<u64> = rows.iter().map(|r| r.oid.0).collect();
        oids.sort_unstable();
        let entry = TransactionEntry::of(time, oids, meta).encode_to_vec();
        let log_key = etcd.log_key();
        puts.push(TxnOp::put(log_key.clone(), entry, None));
        puts.push(TxnOp::put(etcd.head_key(), "", None));
        etcd.check_limits(compares.len() + puts.len(), rows.iter().map(|r| r.record.len() + 32).sum())?;
        // On failure, whether each new object's key exists tells a conflict
        // on it from a race on a locked key.
        let probes: Vec<TxnOp> =
            new.iter().map(|oid| TxnOp::get(etcd.object_key(*oid), Some(GetOptions::new().with_keys_only()))).collect();
        let sent =
            etcd.run(|mut c| async move { c.txn(Txn::new().when(compares).and_then(puts).or_else(probes)).await });
        let done = match sent {
            Ok(done) => done,
            Err(StorageError::Unavailable { source, .. }) => return etcd.find_commit(log_key, source),
            Err(e) => return Err(e),
        };
        if done.succeeded() {
            let revision = done.header().map(|h| h.revision()).unwrap_or_default();
            return Ok(Tid(revision as u64));
        }
        for (oid, response) in new.iter().zip(done.op_responses()) {
            if let TxnOpResponse::Get(g) = response
                && !g.kvs().is_empty()
            {
                return Err(ConflictError { oid: *oid }.into());
            }
        }
        Err(commit::raced("etcd"))
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        // `write` committed: one etcd transaction is the whole commit.
        Ok(())
    }

    fn rollback(&mut self) {}
}
