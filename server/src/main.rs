//! `pbpersist-server`: serves a pbpersist database over gRPC.

use std::net::SocketAddr;

use clap::Parser;
use pbpersist::storage::{History, PostgresStorage, SqliteStorage};
use pbpersist_server::Server;

/// Serves a pbpersist database over gRPC (proto/pbpersist/server.proto).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The database: an SQLite file (created if missing) or a PostgreSQL URL.
    database: String,
    /// Where to listen; port 0 picks a free port, printed on start.
    #[arg(long, default_value = "127.0.0.1:7600")]
    listen: SocketAddr,
    /// Refuse every write.
    #[arg(long)]
    read_only: bool,
    /// Create a new database history-preserving.
    #[arg(long)]
    history: bool,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "pbpersist_server=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", pbpersist::report(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let history = if args.history { History::Preserving } else { History::Free };
    let server = if args.database.starts_with("postgres://") || args.database.starts_with("postgresql://") {
        Server::new(PostgresStorage::builder(&args.database).history(history).open()?)
    } else {
        Server::new(SqliteStorage::builder(&args.database).history(history).open()?)
    }
    .read_only(args.read_only);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        let address = listener.local_addr()?;
        // Tests and scripts read the address from this first line.
        println!("listening on {address}");
        tracing::info!(%address, "serving");
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
            tracing::info!("shutting down; commits in flight finish");
        };
        server.serve(listener, shutdown).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
