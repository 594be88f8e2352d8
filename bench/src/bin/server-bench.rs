//! The Tower workload through `pbpersist-server` on loopback, beside the same
//! workload on the server's storage (SQLite) directly, and beside Python ZEO
//! over FileStorage (its server a process of its own), in one run; then the
//! time a commit takes to reach another client's watch, and the throughput
//! of 1, 4 and 16 concurrent clients beside ZEO's. Writes
//! `docs/benchmarks/server.md`.
//!
//! `cargo run --release -p pbpersist-bench --bin server-bench -- --report docs/benchmarks/server.md`

use clap::Parser;
use pbpersist::storage::{RemoteStorage, SqliteStorage};
use pbpersist::{Database, Options};
use pbpersist_bench::{Rates, percentile};
use pbpersist_examples::demo::Tower;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// Objects.
    #[arg(long, default_value_t = 20_000)]
    n: usize,
    /// Objects per transaction.
    #[arg(long, default_value_t = 1000)]
    per_tx: usize,
    /// Commits timed from commit to a watcher's push.
    #[arg(long, default_value_t = 500)]
    pushes: usize,
    /// Seconds each count of concurrent clients runs.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Objects each concurrent client changes per transaction.
    #[arg(long, default_value_t = 10)]
    client_tx: usize,
    /// Where to write the report; nothing if absent.
    #[arg(long)]
    report: Option<PathBuf>,
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args = Args::parse();
    let scratch = tempfile::tempdir()?;

    eprintln!("SQLite directly ...");
    let direct = pbpersist_bench::pbpersist(scratch.path(), args.n, args.per_tx)?;

    eprintln!("through pbpersist-server ...");
    let storage = SqliteStorage::open(scratch.path().join("served.db"))?;
    let running = pbpersist_server::Server::new(storage).start("127.0.0.1:0".parse()?)?;
    let url = running.url();
    let open = |options: Options| Database::with_storage_and_options(RemoteStorage::connect(&url)?, options);
    let served = pbpersist_bench::pbpersist_on(&open, args.n, args.per_tx)?;
    let (push_p50, push_p99) = pushes(&url, args.pushes)?;
    eprintln!("concurrent clients ...");
    let ours = throughput(&url, &CLIENTS, args.seconds, args.client_tx)?;
    drop(running);
    eprintln!("concurrent clients, PostgreSQL behind the server ...");
    let pg_url = std::env::var(pbpersist::storage::PostgresStorage::URL_VARIABLE)
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    pbpersist_bench::postgres::fresh_schema(&pg_url, "server_bench")?;
    let storage = pbpersist::storage::PostgresStorage::builder(&pg_url).schema("server_bench").open()?;
    let running = pbpersist_server::Server::new(storage).start("127.0.0.1:0".parse()?)?;
    let ours_pg = throughput(&running.url(), &CLIENTS, args.seconds, args.client_tx)?;
    drop(running);

    eprintln!("ZEO ...");
    let zeo_dir = scratch.path().join("zeo");
    std::fs::create_dir_all(&zeo_dir)?;
    let zeo = pbpersist_bench::zodb::tower(&format!("zeo:{}", zeo_dir.display()), args.n, args.per_tx, false)?;
    eprintln!("concurrent ZEO clients ...");
    let zeo_clients_dir = scratch.path().join("zeo-clients");
    std::fs::create_dir_all(&zeo_clients_dir)?;
    let mut zeo_args =
        vec![zeo_clients_dir.display().to_string(), args.seconds.to_string(), args.client_tx.to_string()];
    zeo_args.extend(CLIENTS.iter().map(|c| c.to_string()));
    let v = pbpersist_bench::zodb::script("zeo_clients.py", &zeo_args)?;
    let theirs: Vec<f64> = CLIENTS.iter().map(|c| v[c.to_string()].as_f64().unwrap_or(0.0)).collect();

    let mut text = report(&args, &direct, &served, &zeo, (push_p50, push_p99));
    text.push_str(&concurrency(&args, &ours, &ours_pg, &theirs));
    pbpersist_bench::write_report(args.report.as_deref(), &text)?;
    Ok(())
}

/// Microseconds from a commit's return to its push reaching a watch of
/// the same server: p50 and p99.
fn pushes(url: &str, count: usize) -> Result<(f64, f64)> {
    let remote = RemoteStorage::connect(url)?;
    let db = Database::with_storage(remote.clone())?;
    let tower = db.transact(|tx| {
        let mut t = Tower::new();
        t.set_name("watched");
        t.set_width(1.0);
        t.set_height(1.0);
        tx.add(t)
    })?;
    let mut watch = remote.watch(None)?;
    let mut latencies = Vec::with_capacity(count);
    for i in 0..count {
        db.transact(|tx| {
            tx.get_mut(tower)?.set_height(i as f32);
            Ok(())
        })?;
        let start = Instant::now();
        watch.next().ok_or("the watch ended")??;
        latencies.push(start.elapsed().as_secs_f64() * 1e6);
    }
    Ok((percentile(&mut latencies, 0.5), percentile(&mut latencies, 0.99)))
}

/// The numbers of concurrent clients measured.
const CLIENTS: [usize; 3] = [1, 4, 16];

/// Transactions per second of `counts` clients at once, each with its own
/// connection, changing `per_tx` objects of its own per transaction (so
/// they never conflict) for `seconds`.
fn throughput(url: &str, counts: &[usize], seconds: f64, per_tx: usize) -> Result<Vec<f64>> {
    let most = counts.iter().copied().max().unwrap_or(1);
    let setup = Database::with_storage(RemoteStorage::connect(url)?)?;
    let towers: Vec<Vec<pbpersist::Ref<Tower>>> = setup.transact(|tx| {
        (0..most)
            .map(|c| {
                (0..per_tx)
                    .map(|i| {
                        let mut t = Tower::new();
                        t.set_name(format!("c{c}-{i}"));
                        t.set_width(1.0);
                        t.set_height(1.0);
                        tx.add(t)
                    })
                    .collect()
            })
            .collect()
    })?;
    let mut rates = Vec::new();
    for &k in counts {
        let barrier = std::sync::Barrier::new(k + 1);
        let total = std::thread::scope(|s| -> Result<f64> {
            let workers: Vec<_> = towers[..k]
                .iter()
                .map(|mine| {
                    let barrier = &barrier;
                    s.spawn(move || -> std::result::Result<usize, String> {
                        let db = RemoteStorage::connect(url)
                            .map_err(pbpersist::Error::from)
                            .and_then(Database::with_storage)
                            .map_err(|e| pbpersist::report(&e).to_string());
                        let db = match db {
                            Ok(db) => db,
                            Err(e) => {
                                barrier.wait();
                                return Err(e);
                            }
                        };
                        let warm = db.transact(|tx| mine.iter().try_for_each(|t| tx.get(*t).map(drop)));
                        barrier.wait();
                        warm.map_err(|e| pbpersist::report(&e).to_string())?;
                        let deadline = Instant::now() + std::time::Duration::from_secs_f64(seconds);
                        let mut commits = 0;
                        while Instant::now() < deadline {
                            db.transact(|tx| {
                                for t in mine {
                                    let tower = tx.get_mut(*t)?;
                                    tower.set_height(tower.height() + 1.0);
                                }
                                Ok(())
                            })
                            .map_err(|e| pbpersist::report(&e).to_string())?;
                            commits += 1;
                        }
                        Ok(commits)
                    })
                })
                .collect();
            barrier.wait();
            let start = Instant::now();
            let mut total = 0;
            for w in workers {
                total += w.join().map_err(|_| "a client panicked")??;
            }
            Ok(total as f64 / start.elapsed().as_secs_f64())
        })?;
        rates.push(total);
    }
    Ok(rates)
}

fn concurrency(args: &Args, ours: &[f64], ours_pg: &[f64], zeo: &[f64]) -> String {
    let mut t = format!(
        "
## Concurrent clients

Transactions per second of 1, 4 and 16 clients at once, each with its own \
         connection, each transaction changing {} objects of that client's own (so none conflict), for {} s \
         per row, through the server over SQLite, over PostgreSQL (on the same machine), and on ZEO over \
         FileStorage. Our clients are threads of the benchmark's process beside the server; ZEO's are \
         processes (Python's GIL would serialise threads), its server another. Everything shares the same \
         2 cores.\n\n",
        args.client_tx, args.seconds
    );
    t.push_str(
        "| clients | server on SQLite (tx/s) | server on PostgreSQL (tx/s) | ZEO (tx/s) | SQLite / ZEO | \
         PostgreSQL / ZEO |\n|---:|---:|---:|---:|---:|---:|\n",
    );
    for (((k, o), p), z) in CLIENTS.iter().zip(ours).zip(ours_pg).zip(zeo) {
        t.push_str(&format!("| {k} | {o:.0} | {p:.0} | {z:.0} | {:.1}x | {:.1}x |\n", o / z, p / z));
    }
    t
}

/// A measure's name, how to read it, and whether more is better.
type Row = (&'static str, fn(&Rates) -> f64, bool);

fn report(args: &Args, direct: &Rates, served: &Rates, zeo: &Rates, push: (f64, f64)) -> String {
    let mut t = String::new();
    t.push_str("# Benchmark: pbpersist-server beside its storage and beside ZEO\n\n");
    t.push_str(&format!(
        "The Tower workload ({} objects, {} per transaction) through `pbpersist-server` on loopback (SQLite \
         behind it, client and server in one process with separate runtimes), on SQLite directly, and on \
         Python ZEO over FileStorage with its server in a process of its own; one run, 2 cores. Rates are \
         objects per second; latencies microseconds. Produced by `server-bench`.\n\n",
        args.n, args.per_tx
    ));
    t.push_str("| measure | SQLite directly | through the server | ZEO | server / ZEO | server / direct |\n");
    t.push_str("|---|---:|---:|---:|---:|---:|\n");
    let rows: [Row; 8] = [
        ("add", |r| r.add, true),
        ("update", |r| r.update, true),
        ("cold load", |r| r.cold_load, true),
        ("cold load p50 (us)", |r| r.cold_p50_us, false),
        ("cold load p99 (us)", |r| r.cold_p99_us, false),
        ("cold traversal", |r| r.traversal, true),
        (
            "cold traversal, prefetching",
            |r| if r.prefetch_traversal > 0.0 { r.prefetch_traversal } else { r.traversal },
            true,
        ),
        ("hot read", |r| r.hot_read, true),
    ];
    for (name, f, higher_is_better) in rows {
        let (d, s, z) = (f(direct), f(served), f(zeo));
        // Ratios read "times better": rates divide, latencies invert.
        let ratio = |a: f64, b: f64| if higher_is_better { a / b } else { b / a };
        t.push_str(&format!("| {name} | {d:.0} | {s:.0} | {z:.0} | {:.1}x | {:.2}x |\n", ratio(s, z), ratio(s, d)));
    }
    t.push_str(&format!(
        "\nA commit reaches another client's watch in {:.0} us (p50), {:.0} us (p99). ZEO's traversal row \
         has no prefetch: ZEO loads one object per round trip.\n",
        push.0, push.1
    ));
    t
}
