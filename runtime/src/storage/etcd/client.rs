//! The connection to the cluster: the URL, the Tokio runtime the client runs
//! on, the key layout, and the storage-wide operations (oids, schemas, the
//! transaction log, gc).

use super::TransactionEntry;
use crate::storage::{Committed, TransactionMeta, TransactionRange, commit, gc};
use crate::{Oid, StorageError, Tid};
use etcd_client::{Client, Compare, CompareOp, GetOptions, KeyValue, SortOrder, SortTarget, Txn, TxnOp};
use prost::Message;
use std::future::Future;

const BACKEND: &str = "etcd";

/// A connected client and the prefix its keys live under.
pub(super) struct Etcd {
    /// Runs the client; the storage's calls wait on it from any thread.
    /// Taken only when dropped.
    runtime: Option<tokio::runtime::Runtime>,
    client: Client,
    prefix: String,
    /// The members and prefix, without credentials.
    pub(super) target: String,
    limits: Limits,
    /// `meta/next_oid` as last read or raised by this process: a lower
    /// bound of it, since it only grows.
    next_oid: std::sync::atomic::AtomicU64,
}

/// What an etcd URL says.
struct Url {
    endpoints: Vec<String>,
    prefix: String,
    user: Option<(String, String)>,
    limits: Limits,
    tls: Tls,
}

/// TLS settings from the URL: files, read at connect.
#[derive(Default)]
struct Tls {
    /// The CA certificate (PEM) that signed the members' certificates;
    /// given, the connection uses TLS.
    ca: Option<String>,
    /// This client's certificate and key (PEM), for `--client-cert-auth`.
    cert: Option<String>,
    key: Option<String>,
}

/// The cluster's limits on one request, as its flags set them; a commit
/// over them is refused before anything is sent.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// `--max-txn-ops` (etcd's default: 128).
    pub(super) txn_ops: usize,
    /// `--max-request-bytes` (etcd's default: 1.5 MiB).
    pub(super) request_bytes: usize,
}

fn parse(url: &str) -> Result<Url, StorageError> {
    let bad = |why: &str| {
        StorageError::Config(format!("the etcd URL is malformed ({why}; it is not shown: it may hold a password)"))
    };
    let rest = url.strip_prefix("etcd://").ok_or_else(|| bad("it must start with etcd://"))?;
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut limits = Limits { txn_ops: 128, request_bytes: 1536 * 1024 };
    let mut tls = Tls::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').ok_or_else(|| bad("a query parameter has no value"))?;
        let number = || value.parse::<usize>().map_err(|_| bad("a limit is not a number"));
        match name {
            "max-txn-ops" => limits.txn_ops = number()?,
            "max-request-bytes" => limits.request_bytes = number()?,
            "tls-ca" => tls.ca = Some(value.to_owned()),
            "tls-cert" => tls.cert = Some(value.to_owned()),
            "tls-key" => tls.key = Some(value.to_owned()),
            _ => {
                return Err(bad("unknown parameter; known: max-txn-ops, max-request-bytes, tls-ca, tls-cert, tls-key"));
            }
        }
    }
    if tls.cert.is_some() != tls.key.is_some() {
        return Err(bad("tls-cert and tls-key go together"));
    }
    let scheme = if tls.ca.is_some() { "https" } else { "http" };
    let (hosts, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let (user, hosts) = match hosts.rsplit_once('@') {
        Some((cred, hosts)) => {
            let (name, password) =
                cred.split_once(':').ok_or_else(|| bad("a user needs a password: user:password@"))?;
            (Some((name.to_owned(), password.to_owned())), hosts)
        }
        None => match (std::env::var("PBPERSIST_ETCD_USER"), std::env::var("PBPERSIST_ETCD_PASSWORD")) {
            (Ok(name), Ok(password)) => (Some((name, password)), hosts),
            _ => (None, hosts),
        },
    };
    let endpoints: Vec<String> =
        hosts.split(',').filter(|h| !h.is_empty()).map(|h| format!("{scheme}://{h}")).collect();
    if endpoints.is_empty() {
        return Err(bad("it names no host"));
    }
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return Err(bad("it names no key prefix: etcd://host:2379/prefix"));
    }
    Ok(Url { endpoints, prefix: prefix.to_owned(), user, limits, tls })
}

/// A driver error as a storage error. A lost or refused connection is
/// `Unavailable` (nothing was written); a revision compacted away is the
/// transient `Aborted`, so `transact` retries with a fresh snapshot.
pub(super) fn failed(target: &str, e: etcd_client::Error) -> StorageError {
    use etcd_client::Error as E;
    match &e {
        E::TransportError(_) | E::IoError(_) => {
            StorageError::Unavailable { backend: BACKEND, target: target.to_owned(), source: Box::new(e) }
        }
        // A broken connection, or a cluster between leaders. The storage
        // never cancels its own calls, so `Cancelled` is a connection that
        // closed under the call (a member killed).
        E::GRpcStatus(s)
            if matches!(
                s.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
            ) || s.message() == "transport error"
                || ["leader changed", "no leader", "timed out"].iter().any(|m| s.message().contains(m)) =>
        {
            StorageError::Unavailable { backend: BACKEND, target: target.to_owned(), source: Box::new(e) }
        }
        E::GRpcStatus(s) if s.message().contains("compacted") => {
            StorageError::Aborted { backend: BACKEND, source: Box::new(e) }
        }
        _ => StorageError::Backend { backend: BACKEND, source: Box::new(e) },
    }
}

fn corrupt(what: String) -> StorageError {
    StorageError::Format(what)
}

impl Etcd {
    pub(super) fn connect(url: &str) -> Result<Etcd, StorageError> {
        let url = parse(url)?;
        let target = format!("{}/{}", url.endpoints.join(","), url.prefix);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pbpersist-etcd")
            .enable_all()
            .build()
            .map_err(|e| StorageError::Backend { backend: BACKEND, source: Box::new(e) })?;
        let mut options = etcd_client::ConnectOptions::new()
            .with_connect_timeout(std::time::Duration::from_secs(5))
            .with_timeout(std::time::Duration::from_secs(30));
        if let Some((name, password)) = url.user {
            options = options.with_user(name, password);
        }
        if let Some(ca) = &url.tls.ca {
            let read = |path: &str| {
                std::fs::read(path).map_err(|e| StorageError::Config(format!("cannot read the TLS file {path}: {e}")))
            };
            let mut config =
                etcd_client::TlsOptions::new().ca_certificate(etcd_client::Certificate::from_pem(read(ca)?));
            if let (Some(cert), Some(key)) = (&url.tls.cert, &url.tls.key) {
                config = config.identity(etcd_client::Identity::from_pem(read(cert)?, read(key)?));
            }
            options = options.with_tls(config);
        }
        let endpoints = url.endpoints.clone();
        let client = wait(&runtime, async move { Client::connect(endpoints, Some(options)).await })
            .map_err(|e| failed(&target, e))?;
        Ok(Etcd {
            runtime: Some(runtime),
            client,
            prefix: url.prefix,
            target,
            limits: url.limits,
            next_oid: Default::default(),
        })
    }

    /// Operations one etcd transaction may hold: what the URL says the
    /// cluster allows (128 unless told), so reads of many keys take as few
    /// round trips as the cluster permits.
    pub(super) fn ops_per_txn(&self) -> usize {
        self.limits.txn_ops.max(1)
    }

    /// Refuses a commit of `ops` operations and about `bytes` bytes that the
    /// cluster would refuse, before anything is sent.
    pub(super) fn check_limits(&self, ops: usize, bytes: usize) -> Result<(), StorageError> {
        let Limits { txn_ops, request_bytes } = self.limits;
        if ops > txn_ops || bytes > request_bytes {
            return Err(StorageError::Config(format!(
                "this commit needs {ops} etcd operations and {bytes} bytes in one transaction; the cluster allows \
                 {txn_ops} and {request_bytes} (raise --max-txn-ops and --max-request-bytes, tell pbpersist with \
                 ?max-txn-ops=N&max-request-bytes=N in the URL, or commit fewer objects at once)"
            )));
        }
        Ok(())
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime is only taken by drop")
    }

    /// Runs `f` with a client on the storage's runtime and waits for it.
    pub(super) fn run<T, F>(&self, f: impl FnOnce(Client) -> F) -> Result<T, StorageError>
    where
        F: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
        T: Send + 'static,
    {
        wait(self.runtime(), f(self.client.clone())).map_err(|e| failed(&self.target, e))
    }

    /// Runs a read made by `read(serializable)`: a read at a fixed revision
    /// goes to whichever member the client picks without a round to the
    /// leader (serializable), since the revision fixes what it sees; a
    /// member that has not applied that revision yet answers that it is in
    /// the future, and the read is made again, linearizable.
    pub(super) fn read_at_revision<T, F, G>(&self, fixed: bool, read: impl Fn(bool) -> G) -> Result<T, StorageError>
    where
        G: FnOnce(Client) -> F,
        F: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
        T: Send + 'static,
    {
        if fixed {
            match wait(self.runtime(), read(true)(self.client.clone())) {
                Err(etcd_client::Error::GRpcStatus(s)) if s.message().contains("future revision") => {}
                other => return other.map_err(|e| failed(&self.target, e)),
            }
        }
        self.run(read(false))
    }

    /// After the connection broke during a commit: the commit's tid if its
    /// log entry is there once a member answers, else `CommitUnknown` (a
    /// request in flight may still be applied; tid 0 there means unknown).
    pub(super) fn find_commit(
        &self,
        log_key: Vec<u8>,
        cause: Box<dyn std::error::Error + Send + Sync>,
    ) -> Result<Tid, StorageError> {
        for _ in 0..30 {
            let key = log_key.clone();
            match self.run(|mut c| async move { c.get(key, None).await }) {
                Ok(got) => match got.kvs().first() {
                    Some(kv) => return Ok(Tid(kv.mod_revision() as u64)),
                    None => break,
                },
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
            }
        }
        Err(StorageError::CommitUnknown { backend: BACKEND, tid: Tid(0), source: cause })
    }

    /// Starts the watch that pushes invalidations, from the newest commit.
    pub(super) fn watch(&self) -> Result<std::sync::Arc<super::watch::Watch>, StorageError> {
        let head = self.head()?;
        Ok(super::watch::Watch::start(self.runtime(), self.client.clone(), self.prefix.clone(), head))
    }

    pub(super) fn object_key(&self, oid: Oid) -> Vec<u8> {
        format!("{}/o/{:016x}", self.prefix, oid.0).into_bytes()
    }

    /// The oid of an object key.
    pub(super) fn oid_of(&self, key: &[u8]) -> Result<Oid, StorageError> {
        let hex = key.get(self.prefix.len() + 3..).and_then(|h| std::str::from_utf8(h).ok());
        hex.and_then(|h| u64::from_str_radix(h, 16).ok())
            .map(Oid)
            .ok_or_else(|| corrupt(format!("{} holds a malformed object key", self.target)))
    }

    /// The first key of the objects and the key after the last.
    pub(super) fn object_range(&self) -> (Vec<u8>, Vec<u8>) {
        (format!("{}/o/", self.prefix).into_bytes(), format!("{}/o0", self.prefix).into_bytes())
    }

    fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    /// A fresh log key for a transaction entry: its name only has to be
    /// unique, the key's revision is the tid.
    pub(super) fn log_key(&self) -> Vec<u8> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!("{}/t/{nanos:x}-{:x}-{n:x}", self.prefix, std::process::id()).into_bytes()
    }

    /// Writes the layout version and reserves the root's oid in an empty
    /// prefix; refuses a prefix of another version.
    pub(super) fn prepare(&self, format: u64) -> Result<(), StorageError> {
        let (format_key, oid_key, head_key) = (self.key("meta/format"), self.key("meta/next_oid"), self.head_key());
        let stored = self.run(|mut c| {
            let format_key = format_key.clone();
            async move {
                let txn = Txn::new()
                    .when([Compare::version(format_key.clone(), CompareOp::Equal, 0)])
                    .and_then([
                        TxnOp::put(format_key.clone(), format.to_string(), None),
                        TxnOp::put(oid_key, "1", None),
                        TxnOp::put(head_key, "", None),
                    ])
                    .or_else([TxnOp::get(format_key, None)]);
                c.txn(txn).await
            }
        })?;
        if stored.succeeded() {
            return Ok(());
        }
        let found = stored.op_responses().into_iter().find_map(|r| match r {
            etcd_client::TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.value().to_vec()),
            _ => None,
        });
        match found.as_deref().and_then(|v| std::str::from_utf8(v).ok()).and_then(|v| v.parse::<u64>().ok()) {
            Some(v) if v == format => Ok(()),
            Some(v) => Err(crate::storage::layout::too_new(BACKEND, v as i64, format as i64)),
            None => Err(corrupt(format!("{} has a malformed layout version", self.target))),
        }
    }

    /// Raises the oid counter by `count` with a compare-and-swap, retried
    /// when another process raised it first.
    pub(super) fn new_oids(&self, count: u64) -> Result<std::ops::Range<u64>, StorageError> {
        let key = self.key("meta/next_oid");
        loop {
            let (next, revision) = self.oid_counter()?;
            let range = crate::storage::oids::oid_range(BACKEND, next, count)?;
            if count == 0 {
                return Ok(range);
            }
            let (k, end) = (key.clone(), range.end);
            let swapped = self.run(|mut c| async move {
                let txn = Txn::new()
                    .when([Compare::mod_revision(k.clone(), CompareOp::Equal, revision)])
                    .and_then([TxnOp::put(k, end.to_string(), None)]);
                c.txn(txn).await
            })?;
            if swapped.succeeded() {
                self.next_oid.fetch_max(end, std::sync::atomic::Ordering::Relaxed);
                return Ok(range);
            }
        }
    }

    /// The database's next oid. Answered from what this process last read
    /// or raised it to when `highest` is below that, since it only grows;
    /// otherwise read again.
    pub(super) fn next_oid(&self, highest: u64) -> Result<u64, StorageError> {
        use std::sync::atomic::Ordering::Relaxed;
        let known = self.next_oid.load(Relaxed);
        if highest < known {
            return Ok(known);
        }
        let (next, _) = self.oid_counter()?;
        Ok(self.next_oid.fetch_max(next, Relaxed).max(next))
    }

    /// The oid counter (`meta/next_oid`) and its key's revision.
    fn oid_counter(&self) -> Result<(u64, i64), StorageError> {
        let key = self.key("meta/next_oid");
        let current = self.run(|mut c| async move { c.get(key, None).await })?;
        let kv = current.kvs().first().ok_or_else(|| corrupt(format!("{} has no oid counter", self.target)))?;
        let next: u64 = std::str::from_utf8(kv.value())
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| corrupt(format!("{} has a malformed oid counter", self.target)))?;
        Ok((next, kv.mod_revision()))
    }

    pub(super) fn swap_schema(&self, name: &str, expected: Option<&str>, source: &str) -> Result<bool, StorageError> {
        let key = self.key(&format!("s/{name}"));
        let unchanged = match expected {
            None => Compare::version(key.clone(), CompareOp::Equal, 0),
            Some(old) => Compare::value(key.clone(), CompareOp::Equal, old),
        };
        let source = source.to_owned();
        let swapped = self.run(|mut c| async move {
            c.txn(Txn::new().when([unchanged]).and_then([TxnOp::put(key, source, None)])).await
        })?;
        Ok(swapped.succeeded())
    }

    pub(super) fn delete_schemas(&self, names: &[String]) -> Result<(), StorageError> {
        let ops: Vec<TxnOp> = names.iter().map(|name| TxnOp::delete(self.key(&format!("s/{name}")), None)).collect();
        for chunk in ops.chunks(self.ops_per_txn()) {
            let chunk = chunk.to_vec();
            self.run(|mut c| async move { c.txn(Txn::new().and_then(chunk)).await })?;
        }
        Ok(())
    }

    pub(super) fn schemas(&self) -> Result<Vec<(String, String)>, StorageError> {
        let start = self.key("s/");
        let got = self.run(|mut c| async move { c.get(start, Some(GetOptions::new().with_prefix())).await })?;
        let skip = self.key("s/").len();
        got.kvs()
            .iter()
            .map(|kv| {
                let text = |b: &[u8]| String::from_utf8(b.to_vec()).ok();
                let name = kv.key().get(skip..).and_then(text);
                match (name, text(kv.value())) {
                    (Some(n), Some(s)) => Ok((n, s)),
                    _ => Err(corrupt(format!("{} holds a schema that is not UTF-8", self.target))),
                }
            })
            .collect()
    }

    /// The transaction log in `range`: the entries under `t/` whose
    /// revisions fall in it, sorted by revision on the server.
    pub(super) fn transactions(&self, range: TransactionRange) -> Result<Vec<Committed>, StorageError> {
        if range.limit == 0 || range.until.is_some_and(|u| u <= range.after) {
            // etcd reads a limit of 0, and a maximum revision of 0, as none.
            return Ok(Vec::new());
        }
        // A revision is below 2^63: none comes after one at or above it,
        // and a bound at or above it bounds nothing.
        let Some(first) = i64::try_from(range.after.0).ok().and_then(|a| a.checked_add(1)) else {
            return Ok(Vec::new());
        };
        let start = self.key("t/");
        let mut options = GetOptions::new()
            .with_prefix()
            .with_min_mod_revision(first)
            .with_sort(SortTarget::Mod, if range.newest_first { SortOrder::Descend } else { SortOrder::Ascend })
            .with_limit(range.limit.min(i64::MAX as usize) as i64);
        if let Some(until) = range.until.and_then(|u| i64::try_from(u.0).ok()) {
            options = options.with_max_mod_revision(until);
        }
        let got = self.run(|mut c| async move { c.get(start, Some(options)).await })?;
        let mut out = Vec::with_capacity(got.kvs().len());
        for kv in got.kvs() {
            let tid = Tid(kv.mod_revision() as u64);
            let entry = TransactionEntry::decode(kv.value())
                .map_err(|_| corrupt(format!("{} holds a malformed log entry at tid {tid}", self.target)))?;
            let mut committed = entry.into_committed(tid);
            if range.records {
                committed.records = self.records_written(tid, committed.oids.as_deref().unwrap_or_default())?;
            }
            out.push(committed);
        }
        Ok(out)
    }

    /// The records transaction `tid` wrote that still hold its state.
    fn records_written(&self, tid: Tid, oids: &[Oid]) -> Result<Vec<(Oid, Vec<u8>)>, StorageError> {
        let keys: Vec<Vec<u8>> = oids.iter().map(|o| self.object_key(*o)).collect();
        let got = self.get_many(keys, None)?;
        let mut out = Vec::new();
        for kv in got.into_iter().flatten() {
            if kv.mod_revision() as u64 == tid.0 {
                out.push((self.oid_of(kv.key())?, kv.value().to_vec()));
            }
        }
        Ok(out)
    }

    /// The current values of `keys`, or as of `revision`, in as few etcd
    /// transactions as the cluster's operation limit allows; `None` for a
    /// missing key.
    pub(super) fn get_many(
        &self,
        keys: Vec<Vec<u8>>,
        revision: Option<i64>,
    ) -> Result<Vec<Option<KeyValue>>, StorageError> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(self.ops_per_txn()) {
            let ops = |serializable: bool| -> Vec<TxnOp> {
                chunk.iter().map(|k| TxnOp::get(k.clone(), revision.map(|r| at_revision(r, serializable)))).collect()
            };
            let got = self.read_at_revision(revision.is_some(), |serializable| {
                let ops = ops(serializable);
                move |mut c: Client| async move { c.txn(Txn::new().and_then(ops)).await }
            })?;
            for r in got.op_responses() {
                if let etcd_client::TxnOpResponse::Get(g) = r {
                    out.push(g.kvs().first().cloned());
                }
            }
        }
        Ok(out)
    }

    /// Every object key with its record, as of `revision`, a page at a time.
    pub(super) fn scan(&self, after: Option<Oid>, limit: usize, revision: i64) -> Result<Vec<KeyValue>, StorageError> {
        let (first, end) = self.object_range();
        let start = match after {
            Some(oid) => {
                let mut k = self.object_key(oid);
                k.push(0);
                k
            }
            None => first,
        };
        let options = GetOptions::new().with_range(end).with_revision(revision).with_limit(limit.min(1 << 30) as i64);
        let mut got = self.run(|mut c| async move { c.get(start, Some(options)).await })?;
        Ok(got.take_kvs())
    }

    /// Removes the objects unreachable from the root as of the newest
    /// commit, in etcd transactions that each check no commit happened since
    /// (every commit puts `meta/head`): an unreachable object can only
    /// become reachable again through a commit.
    pub(super) fn collect_garbage(&self, dry_run: bool) -> Result<Vec<Oid>, StorageError> {
        gc::collect_racing(64, || EtcdGc { etcd: self, head: 0 }, dry_run)
    }

    /// The key every commit puts, so that its revision is the newest tid.
    pub(super) fn head_key(&self) -> String {
        self.key("meta/head")
    }

    /// The newest tid: the revision of the last commit (or of the
    /// database's creation).
    pub(super) fn head(&self) -> Result<i64, StorageError> {
        let key = self.head_key();
        let got = self.run(|mut c| async move { c.get(key, None).await })?;
        got.kvs()
            .first()
            .map(|kv| kv.mod_revision())
            .ok_or_else(|| corrupt(format!("{} has no meta/head key", self.target)))
    }

    pub(super) fn delete_prefix(&self) -> Result<(), StorageError> {
        let prefix = format!("{}/", self.prefix);
        self.run(|mut c| async move {
            c.delete(prefix, Some(etcd_client::DeleteOptions::new().with_prefix())).await.map(drop)
        })
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        // Shutting down in the background never blocks, so dropping the
        // storage inside another Tokio runtime is fine.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Options of a read as of `revision`.
pub(super) fn at_revision(revision: i64, serializable: bool) -> GetOptions {
    let options = GetOptions::new().with_revision(revision);
    if serializable { options.with_serializable() } else { options }
}

/// Runs `f` on `runtime` and blocks this thread until it is done: from a
/// plain thread or from inside another Tokio runtime alike, since the
/// waiting is a channel receive, not a nested `block_on`.
fn wait<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    f: impl Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
) -> Result<T, etcd_client::Error> {
    let (send, receive) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = send.send(f.await);
    });
    receive.recv().unwrap_or_else(|_| Err(etcd_client::Error::InvalidArgs("the etcd client's runtime stopped".into())))
}

/// One garbage collection: the walk reads every object at the newest
/// commit's revision, and each deleting transaction compares `meta/head`
/// with the revision the walk (or the previous deletion) saw.
struct EtcdGc<'e> {
    etcd: &'e Etcd,
    head: i64,
}

impl gc::GcTx for EtcdGc<'_> {
    fn current(&mut self) -> Result<Vec<(Oid, Vec<u8>)>, StorageError> {
        self.head = self.etcd.head()?;
        let mut records = Vec::new();
        let mut after = None;
        loop {
            let page = self.etcd.scan(after, 1000, self.head)?;
            let Some(last) = page.last() else { break };
            after = Some(self.etcd.oid_of(last.key())?);
            for kv in &page {
                records.push((self.etcd.oid_of(kv.key())?, kv.value().to_vec()));
            }
        }
        Ok(records)
    }

    fn remove(&mut self, dead: &[Oid], _meta: &TransactionMeta) -> Result<(), StorageError> {
        // etcd keeps no history: the removal deletes. Each deleting
        // transaction puts `meta/head` too, so snapshots from then on read at
        // a revision without the removed objects; the next one expects the
        // revision the previous one made. A commit in between sends the
        // collection back to its walk, keeping what was already removed.
        let etcd = self.etcd;
        let mut expected = self.head;
        for chunk in dead.chunks(etcd.ops_per_txn().saturating_sub(2).max(1)) {
            let unchanged = Compare::mod_revision(etcd.head_key(), CompareOp::Equal, expected);
            let mut ops: Vec<TxnOp> = chunk.iter().map(|o| TxnOp::delete(etcd.object_key(*o), None)).collect();
            ops.push(TxnOp::put(etcd.head_key(), "", None));
            let done = etcd.run(|mut c| async move { c.txn(Txn::new().when([unchanged]).and_then(ops)).await })?;
            if !done.succeeded() {
                return Err(commit::raced("etcd"));
            }
            expected = done.header().map_or(expected, |h| h.revision());
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        Ok(())
    }

    fn rollback(&mut self) {}
}
