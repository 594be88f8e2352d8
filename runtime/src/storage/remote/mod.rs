//! The remote storage: a client of `pbpersist-server` over gRPC, so that a
//! program runs against a server unchanged (`docs/server.md`).
//!
//! The gRPC client is asynchronous (tonic); it runs on a Tokio runtime the
//! storage owns, and callers wait on a channel, never in a nested
//! `block_on`, so the storage works from plain threads and from inside
//! another Tokio runtime alike.

mod session;

use std::sync::Arc;

use crate::storage::protocol::storage_client::StorageClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::{AdminStorage, Committed, HistoryStorage, Revision, Session, Storage, TransactionRange};
use crate::storage::protocol::BACKEND;
use crate::{Oid, StorageError, Tid};

/// A storage served by a `pbpersist-server`.
#[derive(Clone)]
pub struct RemoteStorage {
    inner: Arc<Inner>,
}

/// The gRPC client, adding the token to every call.
type Client = StorageClient<InterceptedService<Channel, Token>>;

/// Sends `authorization: Bearer <token>` with every call, if there is a token.
#[derive(Clone)]
struct Token(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Token {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = &self.0 {
            request.metadata_mut().insert("authorization", token.clone());
        }
        Ok(request)
    }
}

struct Inner {
    runtime: Option<tokio::runtime::Runtime>,
    client: Client,
    /// The server's address, for errors.
    target: String,
    hello: crate::storage::protocol::HelloReply,
    /// The file of records kept across restarts, if asked for.
    state_cache: Option<super::local_cache::StateCache>,
}

impl std::fmt::Debug for RemoteStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStorage").field("server", &self.inner.target).finish_non_exhaustive()
    }
}

/// How to connect to a server: its address and the client's token.
#[derive(Clone)]
pub struct RemoteBuilder {
    url: String,
    token: Option<String>,
    ca: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    state_cache: Option<(std::path::PathBuf, u64)>,
}

impl std::fmt::Debug for RemoteBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: only whether there is one is shown.
        f.debug_struct("RemoteBuilder")
            .field("url", &self.url)
            .field("token", &self.token.is_some())
            .field("ca", &self.ca.is_some())
            .field("identity", &self.identity.is_some())
            .field("state_cache", &self.state_cache)
            .finish()
    }
}

impl RemoteBuilder {
    /// Sends `token` with every call, as the server's configuration names
    /// the client (instead of `PBPERSIST_TOKEN`).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Trusts the server certificates this CA (PEM) signed, for an
    /// `https://` URL (instead of the file `PBPERSIST_CA` names).
    pub fn ca_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca = Some(pem.into());
        self
    }

    /// Presents this client certificate and key (PEM) to a server that asks
    /// for one (instead of the files `PBPERSIST_CLIENT_CERT` and
    /// `PBPERSIST_CLIENT_KEY` name).
    pub fn identity(mut self, cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        self.identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Keeps the records this process loads in a local SQLite file at
    /// `path`, up to about `max_bytes`, so that a restarted client reads
    /// them from disk instead of asking the server (instead of
    /// `PBPERSIST_STATE_CACHE`). The file remembers up to which tid it is
    /// current; the first transaction after a restart asks the server for
    /// the objects committed since (one list of oids, not a reload) and
    /// drops those, so the file never serves a stale state. One process
    /// uses a file at a time; a file made for another database is emptied.
    pub fn state_cache(mut self, path: impl Into<std::path::PathBuf>, max_bytes: u64) -> Self {
        self.state_cache = Some((path.into(), max_bytes));
        self
    }

    /// Connects and agrees on a protocol version with the server.
    pub fn connect(self) -> Result<RemoteStorage, StorageError> {
        RemoteStorage::connect_with(self)
    }
}

/// The contents of the file the environment variable `name` names, if set.
fn file_from_env(name: &str) -> Result<Option<Vec<u8>>, StorageError> {
    match std::env::var_os(name).filter(|v| !v.is_empty()) {
        Some(path) => std::fs::read(&path)
            .map(Some)
            .map_err(|e| StorageError::Config(format!("cannot read {} ({name}): {e}", path.to_string_lossy()))),
        None => Ok(None),
    }
}

impl RemoteStorage {
    /// Connects to the server at `url` (`http://host:port`) and agrees on a
    /// protocol version with it. The token, if the server asks for one, is
    /// read from the environment variable `PBPERSIST_TOKEN`.
    /// For `https://`, the server's CA is read from the file
    /// `PBPERSIST_CA`, and a client certificate from `PBPERSIST_CLIENT_CERT`
    /// and `PBPERSIST_CLIENT_KEY` if set. With `PBPERSIST_STATE_CACHE` set to
    /// a file's path, records are kept there across restarts, up to 1 GiB
    /// ([`RemoteBuilder::state_cache`]).
    pub fn connect(url: &str) -> Result<Self, StorageError> {
        let mut builder = Self::builder(url);
        if let Some(path) = std::env::var_os("PBPERSIST_STATE_CACHE").filter(|v| !v.is_empty()) {
            builder = builder.state_cache(path, 1 << 30);
        }
        builder.token = std::env::var("PBPERSIST_TOKEN").ok().filter(|t| !t.is_empty());
        builder.ca = file_from_env("PBPERSIST_CA")?;
        if let (Some(cert), Some(key)) =
            (file_from_env("PBPERSIST_CLIENT_CERT")?, file_from_env("PBPERSIST_CLIENT_KEY")?)
        {
            builder.identity = Some((cert, key));
        }
        builder.connect()
    }

    /// A connection to the server at `url`, with options.
    pub fn builder(url: &str) -> RemoteBuilder {
        RemoteBuilder { url: url.to_owned(), token: None, ca: None, identity: None, state_cache: None }
    }

    fn connect_with(options: RemoteBuilder) -> Result<Self, StorageError> {
        /// How long a connection waits for the server's first answer.
        const HELLO_WAIT: std::time::Duration = std::time::Duration::from_secs(15);
        let url = options.url.as_str();
        let token = match options.token {
            Some(t) => Some(
                format!("Bearer {t}")
                    .parse()
                    .map_err(|_| StorageError::Config("the token has characters a header cannot carry".into()))?,
            ),
            None => None,
        };
        let endpoint = Channel::from_shared(url.to_owned())
            .map_err(|e| StorageError::Config(format!("{url} is not a server address: {e}")))?
            .connect_timeout(std::time::Duration::from_secs(5))
            .tcp_nodelay(true);
        let endpoint = if url.starts_with("https://") {
            crate::storage::protocol::use_ring();
            let mut tls = tonic::transport::ClientTlsConfig::new();
            match options.ca {
                Some(ca) => tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(ca)),
                None => {
                    return Err(StorageError::Config(format!(
                        "{url} needs the CA that signed the server's certificate (PBPERSIST_CA or \
                         RemoteStorage::builder(..).ca_certificate)"
                    )));
                }
            }
            if let Some((cert, key)) = options.identity {
                tls = tls.identity(tonic::transport::Identity::from_pem(cert, key));
            }
            endpoint.tls_config(tls).map_err(|e| StorageError::Config(format!("TLS for {url}: {e}")))?
        } else {
            endpoint
        };
        let target = endpoint.uri().to_string();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pbpersist-remote")
            .enable_all()
            .build()
            .map_err(|e| StorageError::Backend { backend: BACKEND, source: Box::new(e) })?;
        let unavailable = |e: tonic::transport::Error, target: &str| StorageError::Unavailable {
            backend: BACKEND,
            target: target.to_owned(),
            source: Box::new(e),
        };
        let channel = wait(&runtime, async move { endpoint.connect().await })?.map_err(|e| unavailable(e, &target))?;
        let client = StorageClient::with_interceptor(channel, Token(token)).max_decoding_message_size(usize::MAX);
        let mut hello_client = client.clone();
        let request = crate::storage::protocol::HelloRequest { versions: crate::storage::protocol::VERSIONS.to_vec() };
        // A TLS server that refuses the client's certificate may leave the
        // first request unanswered rather than close: bound the wait.
        let hello = wait(&runtime, async move { tokio::time::timeout(HELLO_WAIT, hello_client.hello(request)).await })?
            .map_err(|_| StorageError::Unavailable {
                backend: BACKEND,
                target: target.clone(),
                source: format!("no answer to Hello within {} s", HELLO_WAIT.as_secs()).into(),
            })?
            .map_err(|s| crate::storage::protocol::from_status(s, &target))?
            .into_inner();
        if !crate::storage::protocol::VERSIONS.contains(&hello.version) {
            return Err(StorageError::Refused {
                backend: BACKEND,
                reason: format!(
                    "the server picked protocol version {}, which this client does not speak",
                    hello.version
                ),
            });
        }
        let state_cache = match options.state_cache {
            Some((path, max_bytes)) => {
                if hello.database_id == 0 {
                    return Err(StorageError::Config(format!(
                        "the server's {} storage keeps no database id, so a state cache could not tell its \
                         records from another database's",
                        hello.backend
                    )));
                }
                Some(super::local_cache::StateCache::open(&path, hello.database_id, max_bytes)?)
            }
            None => None,
        };
        let inner = Inner { runtime: Some(runtime), client, target, hello, state_cache };
        Ok(RemoteStorage { inner: Arc::new(inner) })
    }

    /// How the local state cache has done, if one was asked for.
    pub fn state_cache_stats(&self) -> Option<super::StateCacheStats> {
        self.inner.state_cache.as_ref().map(|c| c.stats())
    }

    /// The storage behind the server, such as `"sqlite"`.
    pub fn server_backend(&self) -> &str {
        &self.inner.hello.backend
    }

    /// The protocol version agreed with the server.
    pub fn protocol_version(&self) -> u32 {
        self.inner.hello.version
    }

    /// The commits from `since` on (from now if `None`), pushed by the
    /// server as they happen: what a cache drops. The iterator blocks for
    /// the next commit; it ends with an error when the connection breaks.
    pub fn watch(&self, since: Option<Tid>) -> Result<Invalidations, StorageError> {
        let request = crate::storage::protocol::WatchRequest { since: since.map(|t| t.0) };
        let mut stream = self.call(move |mut c| async move { c.watch(request).await })?;
        let (send, receive) = std::sync::mpsc::sync_channel(64);
        let target = self.inner.target.clone();
        self.inner.runtime().spawn(async move {
            loop {
                let next = match stream.message().await {
                    Ok(Some(i)) => Ok(Committed {
                        tid: Tid(i.tid),
                        time: std::time::UNIX_EPOCH,
                        meta: Default::default(),
                        oids: i.oids_known.then(|| i.oids.into_iter().map(Oid).collect()),
                        records: Vec::new(),
                    }),
                    Ok(None) => return,
                    Err(s) => Err(crate::storage::protocol::from_status(s, &target)),
                };
                let failed = next.is_err();
                if send.send(next).is_err() || failed {
                    return;
                }
            }
        });
        Ok(Invalidations { receive, _storage: self.clone() })
    }

    /// Runs one unary call on the storage's runtime and waits for it.
    fn call<T, F>(&self, f: impl FnOnce(Client) -> F) -> Result<T, StorageError>
    where
        F: Future<Output = Result<tonic::Response<T>, tonic::Status>> + Send + 'static,
        T: Send + 'static,
    {
        let inner = &self.inner;
        wait(inner.runtime(), f(inner.client.clone()))?
            .map(tonic::Response::into_inner)
            .map_err(|s| crate::storage::protocol::from_status(s, &inner.target))
    }
}

/// Commits pushed by the server ([`RemoteStorage::watch`]): each with its
/// tid and, where the server knows them, the oids it wrote (time and
/// metadata are not sent).
pub struct Invalidations {
    receive: std::sync::mpsc::Receiver<Result<Committed, StorageError>>,
    /// Keeps the runtime that feeds `receive` alive.
    _storage: RemoteStorage,
}

impl std::fmt::Debug for Invalidations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invalidations").finish_non_exhaustive()
    }
}

impl Iterator for Invalidations {
    type Item = Result<Committed, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.receive.recv().ok()
    }
}

impl Inner {
    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime is only taken by drop")
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Shutting down in the background never blocks, so dropping the
        // storage inside another Tokio runtime is fine.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs `f` on `runtime` and blocks this thread until it is done, with a
/// channel receive rather than a nested `block_on`.
fn wait<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    f: impl Future<Output = T> + Send + 'static,
) -> Result<T, StorageError> {
    let (send, receive) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = send.send(f.await);
    });
    receive
        .recv()
        .map_err(|_| StorageError::Backend { backend: BACKEND, source: "the remote storage's runtime stopped".into() })
}

impl Storage for RemoteStorage {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn open_session(&self) -> Result<Box<dyn Session>, StorageError> {
        Ok(Box::new(session::RemoteSession::new(self.inner.clone(), None)))
    }

    fn new_oids(&self, count: u64) -> Result<std::ops::Range<u64>, StorageError> {
        let r = self
            .call(move |mut c| async move { c.new_oids(crate::storage::protocol::NewOidsRequest { count }).await })?;
        Ok(r.start..r.end)
    }

    fn delete_schemas(&self, names: &[String]) -> Result<(), StorageError> {
        let request = crate::storage::protocol::DeleteSchemasRequest { names: names.to_vec() };
        self.call(move |mut c| async move { c.delete_schemas(request).await }).map(drop)
    }

    fn swap_schema(&self, name: &str, expected: Option<&str>, source: &str) -> Result<bool, StorageError> {
        use crate::storage::protocol::{Expected, SchemaFile, SchemaFiles};
        let file = SchemaFile {
            name: name.to_owned(),
            source: source.to_owned(),
            expected: Some(Expected { source: expected.map(str::to_owned) }),
        };
        let request = SchemaFiles { files: vec![file], force: false };
        Ok(self.call(move |mut c| async move { c.put_schemas(request).await })?.stored)
    }

    fn put_schemas(&self, files: &[(String, String)]) -> Result<(), StorageError> {
        // One request, checked by the server as one change.
        let files = files.iter().map(|(name, source)| crate::storage::protocol::SchemaFile {
            name: name.clone(),
            source: source.clone(),
            expected: None,
        });
        let request = crate::storage::protocol::SchemaFiles { files: files.collect(), force: false };
        self.call(move |mut c| async move { c.put_schemas(request).await }).map(drop)
    }

    fn schemas(&self) -> Result<Vec<(String, String)>, StorageError> {
        let r = self.call(move |mut c| async move { c.schemas(crate::storage::protocol::SchemasRequest {}).await })?;
        Ok(r.files.into_iter().map(|f| (f.name, f.source)).collect())
    }

    fn transactions(&self, range: TransactionRange) -> Result<Vec<Committed>, StorageError> {
        let request = crate::storage::protocol::TransactionsRequest {
            after: range.after.0,
            until: range.until.map(|t| t.0),
            limit: u32::try_from(range.limit).unwrap_or(u32::MAX),
            newest_first: range.newest_first,
            records: range.records,
        };
        let r = self.call(move |mut c| async move { c.transactions(request).await })?;
        Ok(r.transactions.into_iter().map(Committed::from).collect())
    }

    fn read_only(&self) -> bool {
        self.inner.hello.read_only
    }

    fn history(&self) -> Option<&dyn HistoryStorage> {
        self.inner.hello.history_preserving.then_some(self)
    }

    fn admin(&self) -> Option<&dyn AdminStorage> {
        Some(self)
    }
}

impl HistoryStorage for RemoteStorage {
    fn open_session_at(&self, at: Tid) -> Result<Box<dyn Session>, StorageError> {
        if !self.inner.hello.history_preserving {
            return Err(StorageError::NoHistory { backend: BACKEND });
        }
        Ok(Box::new(session::RemoteSession::new(self.inner.clone(), Some(at))))
    }

    fn states(&self, oid: Oid, limit: usize) -> Result<Vec<Revision>, StorageError> {
        let request =
            crate::storage::protocol::HistoryRequest { oid: oid.0, limit: u32::try_from(limit).unwrap_or(u32::MAX) };
        let r = self.call(move |mut c| async move { c.history(request).await })?;
        Ok(r.revisions.into_iter().map(Revision::from).collect())
    }

    fn packed_tid(&self) -> Result<Tid, StorageError> {
        let request = crate::storage::protocol::PackedTidRequest {};
        Ok(Tid(self.call(move |mut c| async move { c.packed_tid(request).await })?.packed_tid))
    }
}

impl AdminStorage for RemoteStorage {
    fn collect_garbage(&self, dry_run: bool) -> Result<Vec<Oid>, StorageError> {
        let request = crate::storage::protocol::CollectGarbageRequest { dry_run };
        let r = self.call(move |mut c| async move { c.collect_garbage(request).await })?;
        Ok(r.oids.into_iter().map(Oid).collect())
    }

    fn database_id(&self) -> Result<Option<u64>, StorageError> {
        Ok(Some(self.inner.hello.database_id).filter(|id| *id != 0))
    }

    fn restore(&self, _: &Committed, _: &[Oid]) -> Result<(), StorageError> {
        Err(super::copy::cannot_restore(self.name()))
    }

    fn pack(&self, before: Tid, batch: usize) -> Result<u64, StorageError> {
        let request =
            crate::storage::protocol::PackRequest { before: before.0, batch: u32::try_from(batch).unwrap_or(u32::MAX) };
        Ok(self.call(move |mut c| async move { c.pack(request).await })?.removed)
    }
}
