//! A child process for the multi-process and crash tests.
//!
//! `<db>` is an SQLite path, `postgres:<schema>`, or an etcd or object-store
//! URL (see `place::open_spec`).
//!
//! `pbpersist-worker count <db> <n> plain|resolving`: adds 1 to the root's
//! "counter" `n` times, one transaction each, and prints the retries.
//! `pbpersist-worker crash <db>`: sets the counters "a", "b" and "c" to the
//! next value after the stored one, one transaction each, printing each value
//! once its commit returned.
//! `pbpersist-worker build <db> <n>`: stores a chain of `n` towers.
//! `pbpersist-worker env-open`: opens the PostgreSQL database named by
//! `PBPERSIST_POSTGRES_URL` and adds a counter named "from-env" to the root.
//! `pbpersist-worker interop-write-db <db>`: stores the Tower example's objects.
//! `pbpersist-worker interop-write|interop-check|interop-check-editions|interop-write-tree|interop-check-tree <dir>`:
//! the Rust side of the Python interop test; `interop-write-index <dir>` also
//! prints what Rust's index lookups find.
//! `pbpersist-worker format-write|format-check <dir>`: the database
//! docs/format.md's Python examples run against, and the check of what they wrote.
//! `pbpersist-worker tree-insert <db> <worker> <n> <per transaction>`: inserts
//! the keys `i * 4 + worker` for `i` below `n` into the root's tree "tree",
//! and prints the retries.
//! `pbpersist-worker tree-build <db> <n>`: stores a tree "tree" of `n` keys
//! `user-0000000`, ... with integer values, 1,000 per transaction.
//! `pbpersist-worker tree-walk <db> <cache objects>`: reads every entry of
//! that tree in order and prints the peak resident memory.
//! `pbpersist-worker index-build <db>`: builds the indexes of the catalog
//! (`tests/proto/catalog.proto`) in `db`.
//! `pbpersist-worker index-insert <db> <worker> <n>`: adds `n` catalog
//! products named `w<worker>-<i>`, all tagged "shared", one per
//! transaction, and prints the conflicts that reached the retry loop.
//! `pbpersist-worker steady-writer <db> <name>`: sets the root's counters
//! `<name>.a`, `<name>.b` and `<name>.c` to 1, 2, 3, ... in one transaction
//! each, printing each value once its commit returned, riding out transient
//! errors (a lost etcd member) until killed.
//! `pbpersist-worker db-pack <db> <tid>`: packs through the database (gc,
//! then the storage's pack), keeping every state from `tid`.
//! `pbpersist-worker traverse <db> <cache objects>`: follows the chain from the
//! last tower to the first and prints the peak resident memory.

use pbpersist::Options;
use pbpersist_tests::bank::{Counter, ResolvingCounter};
use pbpersist_tests::demo::Tower;
use pbpersist_tests::place::open_spec;
use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("count") => {
            let db = open_spec(&args[2], Options::default().max_attempts(10_000))?;
            let n: u32 = args[3].parse()?;
            let resolving = args[4] == "resolving";
            for _ in 0..n {
                db.transact(|tx| {
                    let root = tx.root()?;
                    if resolving {
                        let r = root.require::<ResolvingCounter>("counter")?;
                        let c = tx.get_mut(r)?;
                        c.set_value(c.value() + 1);
                    } else {
                        let r = root.require::<Counter>("counter")?;
                        let c = tx.get_mut(r)?;
                        c.set_value(c.value() + 1);
                    }
                    Ok(())
                })?;
            }
            println!("retries {}", db.stats().retries);
        }
        Some("tree-insert") => {
            let db = open_spec(&args[2], Options::default().max_attempts(10_000))?;
            let (worker, n, per_tx): (i64, i64, i64) = (args[3].parse()?, args[4].parse()?, args[5].parse()?);
            for start in (0..n).step_by(per_tx as usize) {
                db.transact(|tx| {
                    let tree = tx.root()?.require::<pbpersist::PTreeMap<i64, i64>>("tree")?;
                    for i in start..(start + per_tx).min(n) {
                        tree.insert(tx, i * 4 + worker, worker)?;
                    }
                    Ok(())
                })?;
            }
            println!("retries {}", db.stats().retries);
        }
        Some("index-insert") => {
            use pbpersist_tests::catalog::Product;
            let db = open_spec(&args[2], Options::default().max_attempts(10_000))?;
            db.build_indexes()?;
            let (worker, n): (u32, u32) = (args[3].parse()?, args[4].parse()?);
            for i in 0..n {
                db.transact(|tx| {
                    let mut p = Product::new();
                    p.set_name(format!("w{worker}-{i}"));
                    p.set_price_cents(i64::from(i));
                    p.tags_mut().push("shared".into());
                    tx.add(p).map(drop)
                })?;
            }
            println!("retries {}", db.stats().conflicts);
        }
        Some("pack") => {
            // pack <sqlite file> <tid to keep from> <states per batch>
            use pbpersist::storage::AdminStorage;
            let storage = pbpersist::storage::SqliteStorage::open(&args[2])?;
            let removed = storage.pack(pbpersist::Tid(args[3].parse()?), args[4].parse()?)?;
            println!("removed {removed}");
        }
        Some("crash") => {
            let db = open_spec(&args[2], Options::default())?;
            let mut out = std::io::stdout().lock();
            let start = db.transact(|tx| {
                let root = tx.root()?;
                Ok(tx.get(root.require::<Counter>("a")?)?.value())
            })?;
            for i in start + 1.. {
                db.transact(|tx| {
                    let root = tx.root()?;
                    for name in ["a", "b", "c"] {
                        tx.get_mut(root.require::<Counter>(name)?)?.set_value(i);
                    }
                    Ok(())
                })?;
                writeln!(out, "{i}")?;
                out.flush()?;
            }
        }
        Some("build") => {
            // A chain of towers, each pointing at the previous one; the root names the last.
            let db = open_spec(&args[2], Options::default().cache_objects(10_000))?;
            let n: u64 = args[3].parse()?;
            let mut previous: Option<pbpersist::Ref<Tower>> = None;
            for chunk in 0..n.div_ceil(1000) {
                previous = db.transact(|tx| {
                    let mut prev = previous;
                    for i in chunk * 1000..((chunk + 1) * 1000).min(n) {
                        let mut t = Tower::new();
                        t.set_name(format!("tower-{i}"));
                        t.set_width(i as f32);
                        t.set_height(10.0);
                        if let Some(p) = prev {
                            t.set_neighbor(p);
                        }
                        prev = Some(tx.add(t)?);
                    }
                    if let Some(last) = prev {
                        tx.root_mut()?.insert("last", last);
                    }
                    Ok(prev)
                })?;
            }
        }
        Some("traverse") => {
            let cache: usize = args[3].parse()?;
            let db = open_spec(&args[2], Options::default().cache_objects(cache))?;
            let before = peak_rss_kib();
            let visited = db.transact(|tx| {
                let mut next = Some(tx.root()?.require::<Tower>("last")?);
                let mut visited = 0u64;
                while let Some(r) = next {
                    next = tx.get(r)?.neighbor();
                    visited += 1;
                }
                Ok(visited)
            })?;
            println!("visited {visited} peak_rss_kib {} start_rss_kib {before}", peak_rss_kib());
        }
        Some("db-pack") => {
            let db = open_spec(&args[2], Options::default())?;
            db.pack(pbpersist::Keep::From(pbpersist::Tid(args[3].parse()?)))?;
        }
        #[cfg(feature = "server")]
        Some("serve") => {
            // A server over an SQLite file until killed, with the
            // configuration file if given, logging to stderr; prints its
            // address.
            tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(false).init();
            let storage = pbpersist::storage::SqliteStorage::open(&args[2])?;
            let mut server = pbpersist_server::Server::new(storage);
            if let Some(config) = args.get(3) {
                server = server.config(pbpersist_server::Config::read(config.as_ref())?);
            }
            let listen = std::env::var("PBPERSIST_LISTEN").unwrap_or_else(|_| "127.0.0.1:0".into());
            let running = server.start(listen.parse()?)?;
            println!("{}", running.url());
            std::io::stdout().flush()?;
            loop {
                std::thread::park();
            }
        }
        Some("steady-writer") => {
            let db = open_spec(&args[2], Options::default().max_attempts(100))?;
            let name = &args[3];
            let names = ["a", "b", "c"].map(|c| format!("{name}.{c}"));
            let mut out = std::io::stdout().lock();
            for i in 1.. {
                // A writer whose cluster is gone for good stops, rather
                // than retrying forever.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                loop {
                    let done = db.transact(|tx| {
                        let root = tx.root()?;
                        for n in &names {
                            tx.get_mut(root.require::<Counter>(n)?)?.set_value(i);
                        }
                        Ok(())
                    });
                    match done {
                        Ok(()) => break,
                        // Setting the same values again is harmless, so an
                        // unknown outcome is retried like a transient error.
                        Err(e)
                            if std::time::Instant::now() < deadline
                                && (e.is_transient()
                                    || matches!(
                                        e,
                                        pbpersist::Error::Storage(pbpersist::StorageError::CommitUnknown { .. })
                                    )) =>
                        {
                            std::thread::sleep(std::time::Duration::from_millis(50))
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                writeln!(out, "{i}")?;
                out.flush()?;
            }
        }
        Some("tree-build") => {
            use pbpersist::PTreeMap;
            let db = open_spec(&args[2], Options::default().cache_objects(10_000))?;
            let n: i64 = args[3].parse()?;
            let tree = db.transact(|tx| {
                let tree = PTreeMap::<String, i64>::create(tx)?;
                tx.root_mut()?.insert("tree", tree);
                Ok(tree)
            })?;
            for start in (0..n).step_by(1000) {
                db.transact(|tx| {
                    for i in start..(start + 1000).min(n) {
                        tree.insert(tx, format!("user-{i:07}"), i)?;
                    }
                    Ok(())
                })?;
            }
        }
        Some("tree-walk") => {
            let cache: usize = args[3].parse()?;
            let db = open_spec(&args[2], Options::default().cache_objects(cache))?;
            let before = peak_rss_kib();
            let visited = db.transact(|tx| {
                let tree = tx.root()?.require::<pbpersist::PTreeMap<String, i64>>("tree")?;
                let mut visited = 0u64;
                for entry in tree.iter(tx) {
                    let (key, value) = entry?;
                    if key != format!("user-{value:07}") {
                        return Err(pbpersist::Error::NameNotFound { name: key });
                    }
                    visited += 1;
                }
                Ok(visited)
            })?;
            println!("visited {visited} peak_rss_kib {} start_rss_kib {before}", peak_rss_kib());
        }
        Some("env-open") => {
            let storage = pbpersist::storage::PostgresStorage::from_env()?;
            let db = pbpersist::Database::with_storage(storage)?;
            db.transact(|tx| {
                let r = tx.add(Counter::new())?;
                tx.root_mut()?.insert("from-env", r);
                Ok(())
            })?;
        }
        Some("interop-write-db") => pbpersist_examples::tower::store_in(&open_spec(&args[2], Options::default())?)?,
        Some("tower-height") => {
            // The height of the tower the root names `args[3]`.
            let db = open_spec(&args[2], Options::default())?;
            let height = db.transact(|tx| {
                let tower = tx.root()?.require::<Tower>(&args[3])?;
                Ok(tx.get(tower)?.height())
            })?;
            println!("{height}");
        }
        Some("interop-write") => pbpersist_tests::interop::write(std::path::Path::new(&args[2]))?,
        Some("interop-write-history") => pbpersist_tests::interop::write_history(std::path::Path::new(&args[2]))?,
        Some("interop-write-tree") => pbpersist_tests::interop::write_tree(std::path::Path::new(&args[2]))?,
        Some("index-build") => {
            // Builds the indexes of a catalog, printing each batch's progress.
            let db = open_spec(&args[2], Options::default())?;
            for built in db.build_indexes()? {
                println!("{} {} {}", built.index, built.scanned, built.indexed);
            }
        }
        Some("interop-write-index") => pbpersist_tests::interop::write_index(std::path::Path::new(&args[2]))?,
        Some("format-write") => pbpersist_tests::interop::write_format(std::path::Path::new(&args[2]))?,
        Some("format-check") => pbpersist_tests::interop::check_format(std::path::Path::new(&args[2]))?,
        Some("interop-check-tree") => pbpersist_tests::interop::check_tree(std::path::Path::new(&args[2]))?,
        Some("interop-check") => pbpersist_tests::interop::check(std::path::Path::new(&args[2]))?,
        Some("interop-check-editions") => pbpersist_tests::interop::check_editions(std::path::Path::new(&args[2]))?,
        _ => return Err("usage: pbpersist-worker count|crash|build|traverse|interop-write|interop-check ...".into()),
    }
    Ok(())
}

/// The peak resident set size of this process, from `/proc/self/status`.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}
