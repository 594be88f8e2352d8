//! The Tower workload on a three-member etcd cluster beside SQLite and
//! PostgreSQL, in one run, and the time an invalidation takes to reach
//! another process's next snapshot. Writes `docs/benchmarks/etcd.md`.
//!
//! `cargo run --release -p pbpersist-bench --features etcd --bin etcd-bench -- --report docs/benchmarks/etcd.md`
//! (needs Debian's etcd-server and protoc, as the etcd tests do).

use clap::Parser;
use pbpersist::storage::{EtcdStorage, PostgresStorage, Storage};
use pbpersist::{Database, Options};
use pbpersist_bench::Rates;
use pbpersist_tests::bank::Counter;
use pbpersist_tests::etcd::Cluster;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// Objects.
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    /// Objects per transaction.
    #[arg(long, default_value_t = 1000)]
    per_tx: usize,
    /// The PostgreSQL server to compare with; skipped if unreachable.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres: String,
    /// Commits whose invalidation is timed.
    #[arg(long, default_value_t = 300)]
    invalidations: usize,
    /// Where to write the report; nothing if absent.
    #[arg(long)]
    report: Option<PathBuf>,
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args = Args::parse();
    let cluster = Cluster::start(3);
    let url = cluster.url("bench");
    let scratch = tempfile::tempdir()?;

    eprintln!("etcd ...");
    let on_etcd = |options: Options| Database::with_storage_and_options(EtcdStorage::open(&url)?, options);
    let before = metrics(&cluster)?;
    let etcd = pbpersist_bench::pbpersist_on(&on_etcd, args.n, args.per_tx)?;
    let spent = metrics(&cluster)?.since(&before);
    let etcd_invalidation = invalidation(|| Ok(EtcdStorage::open(&cluster.url("invalidation"))?), &args)?;

    eprintln!("SQLite ...");
    let sqlite = pbpersist_bench::pbpersist(scratch.path(), args.n, args.per_tx)?;
    let path = scratch.path().join("invalidation.db");
    let sqlite_invalidation =
        invalidation(|| pbpersist::storage::SqliteStorage::open(&path).map_err(Into::into), &args)?;

    let postgres = match pbpersist_bench::postgres::fresh_schema(&args.postgres, "pbbench_etcd") {
        Ok(()) => {
            eprintln!("PostgreSQL ...");
            let open = |options: Options| {
                let storage = PostgresStorage::builder(&args.postgres).schema("pbbench_etcd").open()?;
                Database::with_storage_and_options(storage, options)
            };
            let rates = pbpersist_bench::pbpersist_on(&open, args.n, args.per_tx)?;
            pbpersist_bench::postgres::fresh_schema(&args.postgres, "pbbench_etcd_inv")?;
            let open = || Ok(PostgresStorage::builder(&args.postgres).schema("pbbench_etcd_inv").open()?);
            Some((rates, invalidation(open, &args)?))
        }
        Err(e) => {
            eprintln!("skipping PostgreSQL: {e}");
            None
        }
    };
    let mut text = report(&args, &etcd, etcd_invalidation, &sqlite, sqlite_invalidation, postgres.as_ref());
    text.push_str(&spent.table(args.n / args.per_tx * 2));
    pbpersist_bench::write_report(args.report.as_deref(), &text)?;
    Ok(())
}

/// p50 and p99, in microseconds, of the time from one database's commit
/// returning to another database's next transaction seeing it, where the
/// second starts a transaction as soon as the first's commit returned.
fn invalidation<S: Storage>(open: impl Fn() -> pbpersist::Result<S>, args: &Args) -> Result<(f64, f64)> {
    let writer = Database::with_storage(open()?)?;
    let reader = Database::with_storage(open()?)?;
    let counter = writer.transact(|tx| tx.add(Counter::new()))?;
    let mut latencies = Vec::with_capacity(args.invalidations);
    for i in 1..=args.invalidations as i64 {
        reader.transact(|tx| Ok(tx.get(counter)?.value()))?;
        writer.transact(|tx| {
            tx.get_mut(counter)?.set_value(i);
            Ok(())
        })?;
        let t0 = Instant::now();
        while reader.transact(|tx| Ok(tx.get(counter)?.value()))? != i {}
        latencies.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    let p50 = pbpersist_bench::percentile(&mut latencies, 0.5);
    Ok((p50, pbpersist_bench::percentile(&mut latencies, 0.99)))
}

/// Sums of one member's Prometheus metrics (`/metrics` on its client port).
#[derive(Debug, Default, Clone)]
struct Metrics {
    fsyncs: f64,
    fsync_seconds: f64,
    backend_commits: f64,
    backend_commit_seconds: f64,
    proposals: f64,
    peer_bytes_sent: f64,
}

fn metrics(cluster: &Cluster) -> Result<Metrics> {
    use std::io::{Read, Write};
    let endpoint = &cluster.endpoints()[0];
    let mut stream = std::net::TcpStream::connect(endpoint)?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {endpoint}\r\n\r\n")?;
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    let sum = |name: &str| -> f64 {
        body.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    Ok(Metrics {
        fsyncs: sum("etcd_disk_wal_fsync_duration_seconds_count"),
        fsync_seconds: sum("etcd_disk_wal_fsync_duration_seconds_sum"),
        backend_commits: sum("etcd_disk_backend_commit_duration_seconds_count"),
        backend_commit_seconds: sum("etcd_disk_backend_commit_duration_seconds_sum"),
        proposals: sum("etcd_server_proposals_committed_total"),
        peer_bytes_sent: sum("etcd_network_peer_sent_bytes_total"),
    })
}

impl Metrics {
    fn since(&self, before: &Metrics) -> Metrics {
        Metrics {
            fsyncs: self.fsyncs - before.fsyncs,
            fsync_seconds: self.fsync_seconds - before.fsync_seconds,
            backend_commits: self.backend_commits - before.backend_commits,
            backend_commit_seconds: self.backend_commit_seconds - before.backend_commit_seconds,
            proposals: self.proposals - before.proposals,
            peer_bytes_sent: self.peer_bytes_sent - before.peer_bytes_sent,
        }
    }

    /// Where the time of the etcd run went, by the first member's metrics;
    /// `commits` is how many pbpersist commits the add and update steps made.
    fn table(&self, commits: usize) -> String {
        let per = |v: f64, n: f64| if n > 0.0 { v / n } else { 0.0 };
        format!(
            "\nThe first member's own metrics over the etcd run ({commits} commits of the add and update steps):\n\n\
             | metric | value |\n|---|---|\n\
             | Raft proposals committed | {:.0} |\n\
             | WAL fsyncs, mean duration | {:.0}, {:.2} ms |\n\
             | backend (bbolt) commits, mean duration | {:.0}, {:.2} ms |\n\
             | bytes sent to peers | {:.0} |\n",
            self.proposals,
            self.fsyncs,
            per(self.fsync_seconds, self.fsyncs) * 1e3,
            self.backend_commits,
            per(self.backend_commit_seconds, self.backend_commits) * 1e3,
            self.peer_bytes_sent,
        )
    }
}

fn report(
    args: &Args,
    etcd: &Rates,
    etcd_inv: (f64, f64),
    sqlite: &Rates,
    sqlite_inv: (f64, f64),
    postgres: Option<&(Rates, (f64, f64))>,
) -> String {
    let pg = postgres.map(|p| p.0.clone()).unwrap_or_default();
    let pg_inv = postgres.map(|p| p.1).unwrap_or_default();
    let fmt = |v: f64| if v > 0.0 { format!("{v:.0}") } else { "-".into() };
    let ratio = |a: f64, b: f64| if b > 0.0 { format!("{:.2}x", a / b) } else { "-".into() };
    let mut s = format!(
        "# etcd beside SQLite and PostgreSQL\n\n\
         Generated by `cargo run --release -p pbpersist-bench --features etcd --bin etcd-bench -- --report <file>`\n\
         on {} cores: a three-member etcd cluster (Debian's etcd-server, loopback ports, one disk) started by the\n\
         benchmark, SQLite bundled with rusqlite, PostgreSQL on the same machine. N = {} towers, {} per transaction, one run.\n\n\
         | measure | etcd (3 members) | SQLite | PostgreSQL | etcd vs SQLite | etcd vs PostgreSQL |\n|---|---|---|---|---|---|\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        args.n,
        args.per_tx,
    );
    let rows = [
        ("add (obj/s)", etcd.add, sqlite.add, pg.add),
        ("update (obj/s)", etcd.update, sqlite.update, pg.update),
        ("cold load (obj/s)", etcd.cold_load, sqlite.cold_load, pg.cold_load),
        (
            "cold traversal, prefetch_refs (obj/s)",
            etcd.prefetch_traversal,
            sqlite.prefetch_traversal,
            pg.prefetch_traversal,
        ),
        ("hot read (obj/s)", etcd.hot_read, sqlite.hot_read, pg.hot_read),
    ];
    for (name, e, q, p) in rows {
        s.push_str(&format!("| {name} | {} | {} | {} | {} | {} |\n", fmt(e), fmt(q), fmt(p), ratio(e, q), ratio(e, p)));
    }
    s.push_str(&format!(
        "| cold load p50 / p99 (us) | {:.0} / {:.0} | {:.1} / {:.1} | {:.0} / {:.0} | | |\n",
        etcd.cold_p50_us, etcd.cold_p99_us, sqlite.cold_p50_us, sqlite.cold_p99_us, pg.cold_p50_us, pg.cold_p99_us
    ));
    s.push_str(&format!(
        "| invalidation reaches another database, p50 / p99 (us) | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | | |\n",
        etcd_inv.0, etcd_inv.1, sqlite_inv.0, sqlite_inv.1, pg_inv.0, pg_inv.1
    ));
    s
}
