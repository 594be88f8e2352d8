//! The Tower workload through `pbpersist-server` on loopback, beside the same
//! workload on the server's storage (SQLite) directly, and beside Python ZEO
//! over FileStorage (its server a process of its own), in one run; then the
//! time a commit takes to reach another client's watch. Writes
//! `docs/benchmarks-server.md`.
//!
//! `cargo run --release -p pbpersist-bench --bin server-bench -- --report docs/benchmarks-server.md`

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
    drop(running);

    eprintln!("ZEO ...");
    let zeo_dir = scratch.path().join("zeo");
    std::fs::create_dir_all(&zeo_dir)?;
    let zeo = pbpersist_bench::zodb::tower(&format!("zeo:{}", zeo_dir.display()), args.n, args.per_tx, false)?;

    let text = report(&args, &direct, &served, &zeo, (push_p50, push_p99));
    println!("{text}");
    if let Some(path) = &args.report {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("benchmarks-server");
        let notes = std::fs::read_to_string(path.with_file_name(format!("{stem}-notes.md"))).unwrap_or_default();
        std::fs::write(path, format!("{text}\n{notes}"))?;
    }
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
