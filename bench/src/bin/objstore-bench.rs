//! The Tower workload on the object-store storage, on a local directory and
//! on an S3-protocol server (moto, as the tests run it), beside SQLite, in
//! one run; then what an object store costs: requests per commit and per
//! cold load, bytes stored per object, the cold start of a fresh process
//! with and without a checkpoint, and the latency of loads that go to the
//! store. Writes `docs/benchmarks/objstore.md`.
//!
//! `cargo run --release -p pbpersist-bench --bin objstore-bench -- --report docs/benchmarks/objstore.md`
//! (needs moto in `target/s3-venv`, as `.ci/run` installs it).

use clap::Parser;
use pbpersist::storage::ObjectStorage;
use pbpersist::{Database, Options, Ref};
use pbpersist_bench::Rates;
use pbpersist_examples::demo::Tower;
use pbpersist_tests::s3::S3Server;
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
    /// Single loads from the store timed after a cold start.
    #[arg(long, default_value_t = 2000)]
    loads: usize,
    /// Where to write the report; nothing if absent.
    #[arg(long)]
    report: Option<PathBuf>,
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// What one store showed besides the workload's rates.
#[derive(Default)]
struct Costs {
    rates: Rates,
    /// Reads and writes of one commit of `per_tx` changed objects.
    commit_gets: f64,
    commit_puts: f64,
    /// Requests per load of an object whose record is not cached.
    load_requests: f64,
    /// Bytes of commit objects per object state written.
    bytes_per_state: f64,
    /// Opening the database in a fresh storage, milliseconds, and its reads.
    cold_without: (f64, u64),
    cold_with: (f64, u64),
    /// Loads that go to the store, p50 and p99 in microseconds.
    store_p50: f64,
    store_p99: f64,
    /// Loads from the local file of records by a restarted process.
    disk_p50: f64,
    disk_p99: f64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let scratch = tempfile::tempdir()?;
    let server = S3Server::start()?;
    for (name, value) in server.environment() {
        // SAFETY: no other thread runs yet; the server is a child process.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var(name, value)
        };
    }

    eprintln!("local directory ...");
    let dir = scratch.path().join("store");
    let file = measure(&format!("file://{}", dir.display()), &args)?;
    eprintln!("S3 (moto) ...");
    let s3 = measure(&server.url("bench"), &args)?;
    eprintln!("SQLite ...");
    let sqlite = pbpersist_bench::pbpersist(scratch.path(), args.n, args.per_tx)?;
    server.stop();

    let text = report(&args, &file, &s3, &sqlite);
    pbpersist_bench::write_report(args.report.as_deref(), &text)?;
    Ok(())
}

fn measure(url: &str, args: &Args) -> Result<Costs> {
    let open = |options: Options| Database::with_storage_and_options(ObjectStorage::open(url)?, options);
    let mut out = Costs { rates: pbpersist_bench::pbpersist_on(&open, args.n, args.per_tx)?, ..Default::default() };

    // One more update of `per_tx` towers, counted.
    let storage = ObjectStorage::open(url)?;
    let db = Database::with_storage(storage.clone())?;
    let towers: Vec<Ref<Tower>> = db.transact(|tx| {
        let mut next = Some(tx.root()?.require::<Tower>("last")?);
        let mut out = Vec::new();
        while let Some(r) = next.filter(|_| out.len() < args.per_tx) {
            out.push(r);
            next = tx.get(r)?.neighbor();
        }
        Ok(out)
    })?;
    // The first commit of a type in a database's life also stores its
    // schema; the second is what every later commit costs.
    let update = |height: f32| {
        db.transact(|tx| {
            for r in &towers {
                tx.get_mut(*r)?.set_height(height);
            }
            Ok(())
        })
    };
    update(12.0)?;
    let before = storage.requests();
    update(13.0)?;
    let after = storage.requests();
    (out.commit_gets, out.commit_puts) = ((after.gets - before.gets) as f64, (after.puts - before.puts) as f64);
    let log = db.transactions_after(pbpersist::Tid(0), usize::MAX)?;
    let states: usize = log.iter().map(|t| t.oids.as_ref().map_or(0, Vec::len)).sum();
    out.bytes_per_state = stored_bytes(url)? as f64 / states.max(1) as f64;

    // Cold starts: the whole log, then a checkpoint and nothing after it.
    let t0 = Instant::now();
    let cold = ObjectStorage::open(url)?;
    out.cold_without = (t0.elapsed().as_secs_f64() * 1e3, cold.requests().gets);
    cold.checkpoint()?;
    let t0 = Instant::now();
    let cold = ObjectStorage::open(url)?;
    out.cold_with = (t0.elapsed().as_secs_f64() * 1e3, cold.requests().gets);

    // From the checkpoint, no record is in memory: each load reads the
    // store, and keeps the record in a local file; a restarted process
    // reads them from there.
    let cache = tempfile::tempdir()?;
    let cached = format!("{url}?cache-dir={}", cache.path().display());
    let step = (towers.len() / args.loads.max(1)).max(1);
    let sample: Vec<Ref<Tower>> = towers.iter().step_by(step).copied().collect();
    let storage = ObjectStorage::open(&cached)?;
    let before = storage.requests();
    (out.store_p50, out.store_p99) = time_loads(&storage, &sample)?;
    out.load_requests = (storage.requests().gets - before.gets) as f64 / sample.len() as f64;
    (out.disk_p50, out.disk_p99) = time_loads(&ObjectStorage::open(&cached)?, &sample)?;
    Ok(out)
}

/// p50 and p99, in microseconds, of loading each of `sample` once in one
/// transaction.
fn time_loads(storage: &ObjectStorage, sample: &[Ref<Tower>]) -> Result<(f64, f64)> {
    let db = Database::with_storage(storage.clone())?;
    let mut conn = db.connect()?;
    let mut tx = conn.begin()?;
    let mut latencies = Vec::with_capacity(sample.len());
    for r in sample {
        let t0 = Instant::now();
        std::hint::black_box(tx.get(*r)?);
        latencies.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    let p50 = pbpersist_bench::percentile(&mut latencies, 0.5);
    Ok((p50, pbpersist_bench::percentile(&mut latencies, 0.99)))
}

/// The bytes of the database's commit objects, as the store lists them.
fn stored_bytes(url: &str) -> Result<u64> {
    use futures_util::TryStreamExt;
    use object_store::{ObjectStore, path::Path};
    let (store, prefix): (Box<dyn ObjectStore>, Path) = match url.strip_prefix("file://") {
        Some(dir) => (Box::new(object_store::local::LocalFileSystem::new_with_prefix(dir)?), Path::from("log")),
        None => {
            let rest = url.strip_prefix("s3://").ok_or("an s3:// or file:// URL")?;
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let store = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket).build()?;
            (Box::new(store), Path::from(format!("{prefix}/log")))
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let sizes: Vec<u64> = runtime.block_on(store.list(Some(&prefix)).map_ok(|m| m.size).try_collect())?;
    Ok(sizes.iter().sum())
}

fn report(args: &Args, file: &Costs, s3: &Costs, sqlite: &Rates) -> String {
    let ratio = |a: f64, b: f64| if b > 0.0 { format!("{:.2}x", a / b) } else { "-".into() };
    let mut s = format!(
        "# The object-store storage beside SQLite\n\n\
         Generated by `cargo run --release -p pbpersist-bench --bin objstore-bench -- --report <file>` on {} cores:\n\
         the object-store storage on a local directory (fsync on) and on moto's S3 server (from PyPI, one\n\
         request at a time, loopback), SQLite bundled with rusqlite. N = {} towers, {} per transaction, one run.\n\n\
         | measure | directory | S3 (moto) | SQLite | directory vs SQLite | S3 vs SQLite |\n|---|---|---|---|---|---|\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        args.n,
        args.per_tx,
    );
    let rows = [
        ("add (obj/s)", file.rates.add, s3.rates.add, sqlite.add),
        ("update (obj/s)", file.rates.update, s3.rates.update, sqlite.update),
        ("cold load after reading the log (obj/s)", file.rates.cold_load, s3.rates.cold_load, sqlite.cold_load),
        (
            "cold traversal, prefetch_refs (obj/s)",
            file.rates.prefetch_traversal,
            s3.rates.prefetch_traversal,
            sqlite.prefetch_traversal,
        ),
        ("hot read (obj/s)", file.rates.hot_read, s3.rates.hot_read, sqlite.hot_read),
    ];
    for (name, f, o, q) in rows {
        s.push_str(&format!("| {name} | {f:.0} | {o:.0} | {q:.0} | {} | {} |\n", ratio(f, q), ratio(o, q)));
    }
    s.push_str(&format!(
        "| load from the record cache, p50 / p99 (us) | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | | |\n",
        file.rates.cold_p50_us,
        file.rates.cold_p99_us,
        s3.rates.cold_p50_us,
        s3.rates.cold_p99_us,
        sqlite.cold_p50_us,
        sqlite.cold_p99_us
    ));
    s.push_str(&format!(
        "| load from the store, p50 / p99 (us) | {:.0} / {:.0} | {:.0} / {:.0} | | | |\n",
        file.store_p50, file.store_p99, s3.store_p50, s3.store_p99
    ));
    s.push_str(&format!(
        "| load from the local record file after a restart, p50 / p99 (us) | {:.0} / {:.0} | {:.0} / {:.0} | | | |\n",
        file.disk_p50, file.disk_p99, s3.disk_p50, s3.disk_p99
    ));
    s.push_str(&format!(
        "\nWhat each costs in requests and bytes:\n\n\
         | measure | directory | S3 (moto) |\n|---|---|---|\n\
         | requests for a commit of {} changed objects (reads + writes) | {:.0} + {:.0} | {:.0} + {:.0} |\n\
         | requests per load of an uncached object | {:.2} | {:.2} |\n\
         | bytes stored per object state written | {:.0} | {:.0} |\n\
         | cold start reading the whole log: ms (reads) | {:.0} ({}) | {:.0} ({}) |\n\
         | cold start from a checkpoint: ms (reads) | {:.0} ({}) | {:.0} ({}) |\n",
        args.per_tx,
        file.commit_gets,
        file.commit_puts,
        s3.commit_gets,
        s3.commit_puts,
        file.load_requests,
        s3.load_requests,
        file.bytes_per_state,
        s3.bytes_per_state,
        file.cold_without.0,
        file.cold_without.1,
        s3.cold_without.0,
        s3.cold_without.1,
        file.cold_with.0,
        file.cold_with.1,
        s3.cold_with.0,
        s3.cold_with.1,
    ));
    s
}
