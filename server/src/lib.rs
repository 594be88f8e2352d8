//! # pbpersist-server
//!
//! Serves a pbpersist storage over gRPC (`proto/pbpersist/server.proto`), so
//! that programs on other hosts, in any language with a gRPC library, load
//! and commit objects. Rust programs use
//! [`RemoteStorage`](pbpersist::storage::RemoteStorage) and run unchanged.
//! `docs/server.md` describes the protocol for client writers.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use pbpersist::storage::SqliteStorage;
//!
//! let server = pbpersist_server::Server::new(SqliteStorage::open("app.db")?);
//! let running = server.start("127.0.0.1:7600".parse()?)?;
//! println!("serving on {}", running.address());
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod access;
mod metrics;
mod service;
mod session;
mod state;
mod validate;
mod watch;

pub use access::{Access, Client, hash_token};
pub use metrics::{Counts, Metrics};
pub use validate::RecordGate;

use std::net::SocketAddr;
use std::sync::Arc;

use pbpersist::storage::Storage;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The address could not be listened on.
    #[error("cannot listen on {address}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server's runtime could not start.
    #[error("cannot start the server's runtime")]
    Runtime(#[source] std::io::Error),
    /// The configuration file could not be read or is malformed.
    #[error("the configuration file {path} is unusable: {reason}")]
    Config {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong, with the line and column.
        reason: String,
    },
    /// A TLS file could not be read.
    #[error("cannot read the TLS file {path}")]
    Tls {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC transport failed.
    #[error("the gRPC transport failed")]
    Transport(#[from] tonic::transport::Error),
}

/// What a server allows and how much it takes.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest request accepted, in bytes.
    pub max_request_bytes: usize,
    /// How deep messages may nest in a validated state.
    pub max_depth: usize,
    /// How many sessions one client (one token, or one address when the
    /// server asks for no tokens) may have open at once.
    pub max_sessions_per_client: usize,
    /// How many `Watch` streams one client may have open at once.
    pub max_watches_per_client: usize,
    /// How long, in all, one commit may wait for its client's merges while
    /// it holds the storage's locks; when it is spent the remaining
    /// conflicts stay conflicts. Other writers wait at most this long for
    /// a client that does not answer.
    pub merge_wait: std::time::Duration,
    /// How long a session may wait for its next request; an idle one is
    /// ended, and its client opens another when it needs one.
    pub idle_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_bytes: 64 << 20,
            max_depth: 32,
            max_sessions_per_client: 64,
            max_watches_per_client: 16,
            merge_wait: std::time::Duration::from_secs(2),
            idle_timeout: std::time::Duration::from_secs(600),
        }
    }
}

/// Who may call a server: the configuration file (TOML), as
/// docs/server.md describes it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Networks allowed to call (`10.0.0.0/8`); any address if empty.
    #[serde(default)]
    pub allow: Vec<ipnet::IpNet>,
    /// The clients (`[[client]]` tables); if there are none, no token is
    /// asked for.
    #[serde(default, rename = "client")]
    pub clients: Vec<Client>,
    /// Whether every record clients send is checked against the stored
    /// schemas ([`Server::validate`]).
    #[serde(default)]
    pub validate: bool,
    /// TLS: the server's certificate and key, and the CA whose client
    /// certificates it requires, if any. Plain HTTP/2 without it.
    #[serde(default)]
    pub tls: Option<Tls>,
    /// Where to serve `/metrics` and `/health` over plain HTTP
    /// ([`Server::metrics_address`]); not served if absent.
    #[serde(default)]
    pub metrics: Option<SocketAddr>,
}

/// The `[tls]` table: PEM files.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// The server's certificate chain.
    pub cert: std::path::PathBuf,
    /// Its private key.
    pub key: std::path::PathBuf,
    /// If set, clients must present a certificate this CA signed.
    #[serde(default)]
    pub client_ca: Option<std::path::PathBuf>,
}

impl Tls {
    fn load(&self) -> Result<tonic::transport::ServerTlsConfig, ServerError> {
        pbpersist::protocol::use_ring();
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|source| ServerError::Tls { path: path.to_owned(), source })
        };
        let identity = tonic::transport::Identity::from_pem(read(&self.cert)?, read(&self.key)?);
        let mut config = tonic::transport::ServerTlsConfig::new().identity(identity);
        if let Some(ca) = &self.client_ca {
            config = config.client_ca_root(tonic::transport::Certificate::from_pem(read(ca)?));
        }
        Ok(config)
    }
}

impl Config {
    /// Reads a configuration file.
    pub fn read(path: &std::path::Path) -> Result<Config, ServerError> {
        let error = |reason: String| ServerError::Config { path: path.to_owned(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        toml::from_str(&text).map_err(|e| error(e.to_string()))
    }
}

/// A server for one storage, not yet listening.
pub struct Server {
    storage: Arc<dyn Storage>,
    read_only: bool,
    limits: Limits,
    clients: Vec<Client>,
    allow: Vec<ipnet::IpNet>,
    validate: bool,
    tls: Option<Tls>,
    metrics: Arc<Metrics>,
    metrics_address: Option<SocketAddr>,
    health_interval: std::time::Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("storage", &self.storage.name()).field("read_only", &self.read_only).finish()
    }
}

impl Server {
    /// A server for `storage`.
    pub fn new(storage: impl Storage) -> Self {
        Server {
            storage: Arc::new(storage),
            read_only: false,
            limits: Limits::default(),
            clients: Vec::new(),
            allow: Vec::new(),
            validate: false,
            tls: None,
            metrics: Arc::default(),
            metrics_address: None,
            health_interval: std::time::Duration::from_secs(5),
        }
    }

    /// The server's counters, to read while it runs.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Serves `/metrics` (Prometheus text: sessions, loads, commits,
    /// conflicts, merges, refusals, health) and `/health` over plain HTTP
    /// on `address`, meant for a private network or loopback.
    pub fn metrics_address(mut self, address: Option<SocketAddr>) -> Self {
        self.metrics_address = address;
        self
    }

    /// How often the health probe takes a snapshot of the storage (5 s
    /// unless told). The gRPC health service (`grpc.health.v1.Health`),
    /// `/health` and the `up` metric report its last answer.
    pub fn health_interval(mut self, every: std::time::Duration) -> Self {
        self.health_interval = every;
        self
    }

    /// Serves over TLS with these files.
    pub fn tls(mut self, tls: Option<Tls>) -> Self {
        self.tls = tls;
        self
    }

    /// Checks every record a client commits against the database's stored
    /// schemas: a known type, a state that decodes as it, required fields
    /// set, nesting within [`Limits::max_depth`], and a reference list that
    /// names exactly the state's references. A commit with one record that
    /// fails writes nothing. What a server for untrusted clients needs.
    pub fn validate(mut self, validate: bool) -> Self {
        self.validate = validate;
        self
    }

    /// Asks every call for a bearer token of one of `clients`, and lets
    /// each do what its entry allows. Without clients, no token is asked
    /// for and every caller may do everything the server allows.
    pub fn clients(mut self, clients: Vec<Client>) -> Self {
        self.clients = clients;
        self
    }

    /// Takes the clients and allowed networks of `config`.
    pub fn config(self, config: Config) -> Self {
        self.clients(config.clients)
            .allow(config.allow)
            .validate(config.validate)
            .tls(config.tls)
            .metrics_address(config.metrics)
    }

    /// Accepts calls only from addresses in `networks` (any address if
    /// empty).
    pub fn allow(mut self, networks: Vec<ipnet::IpNet>) -> Self {
        self.allow = networks;
        self
    }

    /// Refuses every write from every client.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Sets the limits on what clients send.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Serves on `listener` until `shutdown` completes; then stops taking
    /// calls and lets those in flight finish.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let metrics = match self.metrics_address {
            Some(address) => Some(
                tokio::net::TcpListener::bind(address)
                    .await
                    .map_err(|source| ServerError::Listen { address, source })?,
            ),
            None => None,
        };
        self.run(listener, metrics, shutdown).await
    }

    async fn run(
        self,
        listener: tokio::net::TcpListener,
        metrics_listener: Option<tokio::net::TcpListener>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        // One shutdown signal for the gRPC server, the HTTP server and the
        // health probe.
        let (stop, stopping) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let stopped = |mut s: tokio::sync::watch::Receiver<bool>| async move {
            let _ = s.wait_for(|v| *v).await;
        };
        let max = self.limits.max_request_bytes;
        let gate = access::Gate::new(self.clients, self.allow, self.metrics.clone());
        let validator = self.validate.then(|| validate::Validator::new(self.limits.max_depth));
        let service = service::Service::new(
            self.storage.clone(),
            self.read_only,
            self.limits,
            validator,
            self.metrics.clone(),
            stopping.clone(),
        );
        let grpc = pbpersist::protocol::storage_server::StorageServer::new(service)
            .max_decoding_message_size(max)
            .max_encoding_message_size(usize::MAX);
        let grpc = tonic::service::interceptor::InterceptedService::new(grpc, move |r| gate.admit(r));
        let (reporter, health) = tonic_health::server::health_reporter();
        tokio::spawn(metrics::probe(
            self.storage,
            self.metrics.clone(),
            reporter,
            self.health_interval,
            stopped(stopping.clone()),
        ));
        if let Some(listener) = metrics_listener {
            if let Ok(address) = listener.local_addr() {
                tracing::info!(%address, "metrics and health over HTTP");
            }
            let metrics = self.metrics.clone();
            let until = stopped(stopping.clone());
            tokio::spawn(async move {
                if let Err(e) = metrics::serve_http(metrics, listener, until).await {
                    tracing::error!(error = %e, "the metrics server stopped");
                }
            });
        }
        // Small replies go out at once: without TCP_NODELAY, Nagle's
        // algorithm holds them for the peer's delayed acknowledgement.
        let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let mut builder = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .layer(tower::util::MapResponseLayer::new(refusals_carry_failures));
        if let Some(tls) = &self.tls {
            builder = builder.tls_config(tls.load()?)?;
        }
        builder.add_service(health).add_service(grpc).serve_with_incoming_shutdown(incoming, stopped(stopping)).await?;
        Ok(())
    }

    /// Starts serving on `address` (port 0 picks a free one) on a runtime
    /// of its own; the server stops when the returned handle is dropped.
    pub fn start(self, address: SocketAddr) -> Result<Running, ServerError> {
        // A TLS file that cannot be read fails here, not in the background.
        if let Some(tls) = &self.tls {
            tls.load()?;
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pbpersist-server")
            .enable_all()
            .build()
            .map_err(ServerError::Runtime)?;
        let bind = |address: SocketAddr| {
            runtime
                .block_on(tokio::net::TcpListener::bind(address))
                .and_then(|l| l.local_addr().map(|a| (l, a)))
                .map_err(|source| ServerError::Listen { address, source })
        };
        let (listener, address) = bind(address)?;
        let (metrics_listener, metrics_address) = match self.metrics_address {
            Some(a) => bind(a).map(|(l, a)| (Some(l), Some(a)))?,
            None => (None, None),
        };
        let metrics = self.metrics.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = self.run(listener, metrics_listener, shutdown).await {
                tracing::error!(error = %pbpersist::report(&e), "the server stopped");
            }
        });
        Ok(Running { address, scheme, metrics, metrics_address, runtime: Some(runtime), _stop: stop })
    }
}

/// tonic answers a unary request it cannot take before any handler runs:
/// over the size limit with `OUT_OF_RANGE`, one that does not decode with
/// `INTERNAL`, both without details. The protocol says `RESOURCE_EXHAUSTED`
/// with a `LIMIT` failure and `INVALID_ARGUMENT` with an `INVALID` one, as
/// for every limit and malformed request. Such an answer is a trailers-only
/// response, so its status is in the headers; every status the handlers
/// make has details, so one without them is tonic's. (A session stream's
/// requests are decoded in `session.rs`, which answers them so itself.)
fn refusals_carry_failures<B>(mut response: http::Response<B>) -> http::Response<B> {
    use pbpersist::protocol as p;
    let headers = response.headers();
    if headers.contains_key("grpc-status-details-bin") {
        return response;
    }
    let code = headers.get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i32>().ok());
    let kind = match code.map(tonic::Code::from_i32) {
        Some(tonic::Code::OutOfRange) => p::failure::Kind::Limit,
        Some(tonic::Code::Internal) => p::failure::Kind::Invalid,
        _ => return response,
    };
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .map(|m| percent_encoding::percent_decode_str(m).decode_utf8_lossy().into_owned())
        .unwrap_or_default();
    let message = match kind {
        p::failure::Kind::Invalid => format!("the request does not decode: {message}"),
        _ => message,
    };
    let status = p::refusal(kind, message);
    let headers = response.headers_mut();
    headers.remove("grpc-status");
    headers.remove("grpc-message");
    if let Err(e) = status.add_header(headers) {
        tracing::warn!(error = %e, "cannot rewrite a transport's refusal");
    }
    response
}

/// A server started by [`Server::start`]; dropping it stops the server at
/// once, breaking open connections.
#[derive(Debug)]
pub struct Running {
    address: SocketAddr,
    scheme: &'static str,
    metrics: Arc<Metrics>,
    metrics_address: Option<SocketAddr>,
    runtime: Option<tokio::runtime::Runtime>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Running {
    /// Where the server listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The URL clients connect to.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.address)
    }

    /// The server's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Where `/metrics` and `/health` are served, if they are.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_address
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
