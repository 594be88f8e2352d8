//! `pbpersist-server`: serves a pbpersist database over gRPC.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use pbpersist::storage::{History, PostgresStorage, SqliteStorage};
use pbpersist_server::{Config, Server};

/// Serves a pbpersist database over gRPC (proto/pbpersist/server.proto).
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serves a database until SIGINT or SIGTERM.
    Serve {
        /// The database: an SQLite file (created if missing) or a PostgreSQL URL.
        database: String,
        /// Where to listen; port 0 picks a free port, printed on start.
        #[arg(long, default_value = "127.0.0.1:7600")]
        listen: SocketAddr,
        /// The configuration file: clients with their token hashes and
        /// rights, and the addresses allowed to call (docs/server.md).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Refuse every write.
        #[arg(long)]
        read_only: bool,
        /// Create a new database history-preserving.
        #[arg(long)]
        history: bool,
        /// Serve `/metrics` (Prometheus) and `/health` over plain HTTP here
        /// (overrides the configuration file's `metrics`).
        #[arg(long)]
        metrics: Option<SocketAddr>,
    },
    /// Makes a new random token: prints it, and the hash the configuration
    /// file keeps (the server never stores the token itself).
    NewToken,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "pbpersist_server=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match Args::parse().command {
        Command::Serve { database, listen, config, read_only, history, metrics } => {
            serve(&database, listen, config, read_only, history, metrics)
        }
        Command::NewToken => new_token(),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", pbpersist::report(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

fn new_token() -> Result<(), Box<dyn std::error::Error>> {
    let mut bytes = [0u8; 24];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    println!("token (give it to the client, as PBPERSIST_TOKEN): {token}");
    println!("token_sha256 = \"{}\"", pbpersist_server::hash_token(&token));
    Ok(())
}

fn serve(
    database: &str,
    listen: SocketAddr,
    config: Option<PathBuf>,
    read_only: bool,
    history: bool,
    metrics: Option<SocketAddr>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = match &config {
        Some(path) => Config::read(path)?,
        None => Config::default(),
    };
    if metrics.is_some() {
        config.metrics = metrics;
    }
    let history = if history { History::Preserving } else { History::Free };
    let server = if database.starts_with("postgres://") || database.starts_with("postgresql://") {
        Server::new(PostgresStorage::builder(database).history(history).open()?)
    } else {
        Server::new(SqliteStorage::builder(database).history(history).open()?)
    }
    .read_only(read_only)
    .config(config);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let address = listener.local_addr()?;
        // Tests and scripts read the address from this first line.
        println!("listening on {address}");
        tracing::info!(%address, "serving");
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            let terminated = async {
                match term.as_mut() {
                    Some(t) => drop(t.recv().await),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = terminated => {}
            }
            tracing::info!("shutting down; calls in flight finish");
        };
        server.serve(listener, shutdown).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
