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

mod service;
mod session;

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
    /// The gRPC transport failed.
    #[error("the gRPC transport failed")]
    Transport(#[from] tonic::transport::Error),
}

/// What a server allows and how much it takes.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest request accepted, in bytes.
    pub max_request_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_request_bytes: 64 << 20 }
    }
}

/// A server for one storage, not yet listening.
pub struct Server {
    storage: Arc<dyn Storage>,
    read_only: bool,
    limits: Limits,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("storage", &self.storage.name()).field("read_only", &self.read_only).finish()
    }
}

impl Server {
    /// A server for `storage`.
    pub fn new(storage: impl Storage) -> Self {
        Server { storage: Arc::new(storage), read_only: false, limits: Limits::default() }
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
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServerError> {
        let max = self.limits.max_request_bytes;
        let service = service::Service::new(self.storage, self.read_only, self.limits);
        let grpc = pbpersist::storage::remote::protocol::storage_server::StorageServer::new(service)
            .max_decoding_message_size(max)
            .max_encoding_message_size(usize::MAX);
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(grpc)
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await?;
        Ok(())
    }

    /// Starts serving on `address` (port 0 picks a free one) on a runtime
    /// of its own; the server stops when the returned handle is dropped.
    pub fn start(self, address: SocketAddr) -> Result<Running, ServerError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pbpersist-server")
            .enable_all()
            .build()
            .map_err(ServerError::Runtime)?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(address))
            .map_err(|source| ServerError::Listen { address, source })?;
        let address = listener.local_addr().map_err(|source| ServerError::Listen { address, source })?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = self.serve(listener, shutdown).await {
                tracing::error!(error = %pbpersist::report(&e), "the server stopped");
            }
        });
        Ok(Running { address, runtime: Some(runtime), _stop: stop })
    }
}

/// A server started by [`Server::start`]; dropping it stops the server at
/// once, breaking open connections.
#[derive(Debug)]
pub struct Running {
    address: SocketAddr,
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
        format!("http://{}", self.address)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
