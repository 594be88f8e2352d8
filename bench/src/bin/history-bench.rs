//! What keeping history costs, side by side in one run: the Tower workload's
//! add and update on pbpersist history-free, pbpersist history-preserving
//! and ZODB with FileStorage (which keeps history by nature), or with
//! `--postgres URL` on PostgreSQL beside RelStorage keeping history; then a
//! pack of a million replaced states against ZODB's pack (FileStorage).
//! Writes `docs/benchmarks/history.md` with `--report`.
//!
//! `cargo run --release -p pbpersist-bench --bin history-bench [-- --postgres URL]`

use clap::Parser;
use pbpersist::storage::History;
use pbpersist::storage::{PostgresStorage, SqliteStorage};
use pbpersist::{Database, Keep, Options, Tid};
use pbpersist_bench::Rates;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// Objects in the Tower workload.
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    /// Objects per transaction.
    #[arg(long, default_value_t = 1000)]
    per_tx: usize,
    /// Rounds of all systems in turn; each measure's median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Objects in the pack benchmark; each is changed `--pack-rounds` times.
    #[arg(long, default_value_t = 10_000)]
    pack_objects: usize,
    /// Changes of every object before the pack.
    #[arg(long, default_value_t = 100)]
    pack_rounds: usize,
    /// Run on this PostgreSQL server (the Tower part) beside RelStorage.
    #[arg(long)]
    postgres: Option<String>,
    /// Skip Python ZODB.
    #[arg(long)]
    no_zodb: bool,
    /// Where to write the report; nothing if absent.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Internal: pack the SQLite file at this path and print JSON (time, peak memory).
    #[arg(long, hide = true)]
    pack_only: Option<PathBuf>,
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(path) = &args.pack_only {
        return pack_only(path);
    }
    let scratch = tempfile::tempdir_in(std::env::current_dir()?)?;
    let (mut free, mut kept, mut zodb) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..args.rounds.max(1) {
        eprintln!("round {} of {}", round + 1, args.rounds.max(1));
        let dir = scratch.path().join(format!("round{round}"));
        std::fs::create_dir_all(&dir)?;
        free.push(tower(&args, &dir, History::Free)?);
        kept.push(tower(&args, &dir, History::Preserving)?);
        if !args.no_zodb {
            eprintln!("  ZODB ...");
            let target = match &args.postgres {
                Some(url) => pbpersist_bench::zodb::relstorage_dsn(url, "pbbench_relstorage_history")?,
                None => {
                    let d = dir.join("zodb");
                    std::fs::create_dir_all(&d)?;
                    d.display().to_string()
                }
            };
            zodb.push(pbpersist_bench::zodb::tower(&target, args.n, args.per_tx, true)?);
        }
    }
    let floor = match args.postgres {
        Some(_) => None,
        None => {
            eprintln!("raw SQLite, with and without a copy of each replaced row ...");
            let runs: Vec<RawHistory> = (0..args.rounds.max(1))
                .map(|r| raw_history_cost(&scratch.path().join(format!("raw{r}")), args.n, args.per_tx))
                .collect::<rusqlite::Result<_>>()?;
            let m = |f: fn(&RawHistory) -> f64| pbpersist_bench::median_by(&runs, f);
            Some(RawHistory {
                copy_update: m(|r| r.copy_update),
                split_update: m(|r| r.split_update),
                split_load: m(|r| r.split_load),
            })
        }
    };
    let (free, kept) = (Rates::median(&free), Rates::median(&kept));
    let zodb = (!zodb.is_empty()).then(|| Rates::median(&zodb));

    eprintln!("pack: building {} x {} replaced states ...", args.pack_objects, args.pack_rounds);
    let ours = pack(&args, scratch.path())?;
    let theirs = match args.no_zodb {
        true => None,
        false => Some(zodb_pack(&args, scratch.path())?),
    };
    let mut text = report(&args, &free, &kept, zodb.as_ref(), &ours, theirs.as_ref());
    if let Some(f) = floor {
        text.push_str(&format!(
            "\nKeeping history in SQLite alone, none of pbpersist (`raw_history_cost`, {} rows updated {} per \
             transaction, then read back in a scrambled order), against plain `UPDATE`s of one table:\n\n\
             | layout | update cost | load cost |\n|---|---|---|\n\
             | replaced rows copied into an `(oid, tid)`-keyed table first (pbpersist's) | {:.2}x | 1.00x |\n\
             | every state only in the keyed table, current tids beside (RelStorage's) | {:.2}x | {:.2}x |\n",
            args.n, args.per_tx, f.copy_update, f.split_update, f.split_load
        ));
    }
    pbpersist_bench::write_report(args.report.as_deref(), &text)?;
    Ok(())
}

/// Three layouts in SQLite alone, none of pbpersist: the update and load
/// costs of keeping history, against plain `UPDATE`s of one table.
struct RawHistory {
    /// Copying each replaced row into an `(oid, tid)`-keyed table first
    /// (one `INSERT ... SELECT` per 500 rows), as pbpersist does: updates.
    copy_update: f64,
    /// Every state only in the keyed table, current tids in a table of
    /// their own (RelStorage's history-preserving layout): updates.
    split_update: f64,
    /// The same: point loads, which join the two tables.
    split_load: f64,
}

/// Times [`RawHistory`] on fresh files in `dir`.
fn raw_history_cost(dir: &Path, n: usize, per_tx: usize) -> rusqlite::Result<RawHistory> {
    #[derive(Clone, Copy, PartialEq)]
    enum Layout {
        Plain,
        Copy,
        Split,
    }
    std::fs::create_dir_all(dir).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    // Records of a tower's size.
    let record = |i: i64, v: usize| format!("tower {i:08} height {v:08} and a few more bytes").into_bytes();
    let oids: Vec<i64> = (1..=n as i64).collect();
    let time = |layout: Layout, name: &str| -> rusqlite::Result<(f64, f64)> {
        let mut c = rusqlite::Connection::open(dir.join(format!("{name}.db")))?;
        c.pragma_update(None, "journal_mode", "WAL")?;
        c.pragma_update(None, "synchronous", "FULL")?;
        c.execute_batch(
            "CREATE TABLE pb_object (oid INTEGER PRIMARY KEY NOT NULL, tid INTEGER NOT NULL, record BLOB NOT NULL);
             CREATE TABLE pb_object_revision (oid INTEGER NOT NULL, tid INTEGER NOT NULL, end_tid INTEGER NOT NULL,
                 record BLOB NOT NULL, PRIMARY KEY (oid, tid)) WITHOUT ROWID;
             CREATE TABLE object_state (oid INTEGER NOT NULL, tid INTEGER NOT NULL, record BLOB NOT NULL,
                 PRIMARY KEY (oid, tid)) WITHOUT ROWID;
             CREATE TABLE current_object (oid INTEGER PRIMARY KEY NOT NULL, tid INTEGER NOT NULL);",
        )?;
        for chunk in oids.chunks(per_tx) {
            let tx = c.transaction()?;
            for oid in chunk {
                if layout == Layout::Split {
                    tx.prepare_cached("INSERT INTO object_state VALUES (?1, 1, ?2)")?
                        .execute(rusqlite::params![oid, record(*oid, 0)])?;
                    tx.prepare_cached("INSERT INTO current_object VALUES (?1, 1)")?.execute([oid])?;
                } else {
                    tx.prepare_cached("INSERT INTO pb_object VALUES (?1, 1, ?2)")?
                        .execute(rusqlite::params![oid, record(*oid, 0)])?;
                }
            }
            tx.commit()?;
        }
        let start = Instant::now();
        for (t, chunk) in oids.chunks(per_tx).enumerate() {
            let tid = 2 + t as i64;
            let tx = c.transaction()?;
            if layout == Layout::Copy {
                for part in chunk.chunks(500) {
                    let sql = format!(
                        "INSERT INTO pb_object_revision SELECT oid, tid, ?, record FROM pb_object WHERE oid IN ({})",
                        vec!["?"; part.len()].join(",")
                    );
                    let params = std::iter::once(tid).chain(part.iter().copied());
                    tx.prepare_cached(&sql)?.execute(rusqlite::params_from_iter(params))?;
                }
            }
            for oid in chunk {
                if layout == Layout::Split {
                    tx.prepare_cached("INSERT INTO object_state VALUES (?1, ?2, ?3)")?.execute(rusqlite::params![
                        oid,
                        tid,
                        record(*oid, 1)
                    ])?;
                    tx.prepare_cached("UPDATE current_object SET tid = ?2 WHERE oid = ?1")?
                        .execute(rusqlite::params![oid, tid])?;
                } else {
                    tx.prepare_cached("UPDATE pb_object SET tid = ?2, record = ?3 WHERE oid = ?1")?
                        .execute(rusqlite::params![oid, tid, record(*oid, 1)])?;
                }
            }
            tx.commit()?;
        }
        let update = start.elapsed().as_secs_f64();
        let load = match layout {
            Layout::Split => {
                "SELECT s.record FROM current_object c JOIN object_state s \
                              ON s.oid = c.oid AND s.tid = c.tid WHERE c.oid = ?1"
            }
            _ => "SELECT record FROM pb_object WHERE oid = ?1",
        };
        let mut select = c.prepare(load)?;
        let start = Instant::now();
        for i in 0..n as i64 {
            // A scrambled order: a multiplicative walk over the oids.
            let oid = (i * 1_000_003) % n as i64 + 1;
            std::hint::black_box(select.query_row([oid], |r| r.get::<_, Vec<u8>>(0))?);
        }
        Ok((update, start.elapsed().as_secs_f64()))
    };
    let (plain_update, plain_load) = time(Layout::Plain, "plain")?;
    let (copy_update, _) = time(Layout::Copy, "copy")?;
    let (split_update, split_load) = time(Layout::Split, "split")?;
    Ok(RawHistory {
        copy_update: copy_update / plain_update,
        split_update: split_update / plain_update,
        split_load: split_load / plain_load,
    })
}

/// The Tower workload on pbpersist keeping history or not.
fn tower(args: &Args, dir: &Path, history: History) -> Result<Rates> {
    eprintln!("  pbpersist, {history:?} ...");
    Ok(match &args.postgres {
        Some(url) => {
            let schema = format!("pbbench_{}", if history == History::Free { "free" } else { "kept" });
            pbpersist_bench::postgres::fresh_schema(url, &schema)?;
            let open = |options: Options| {
                let storage = PostgresStorage::builder(url).schema(&schema).history(history).open()?;
                Database::with_storage_and_options(storage, options)
            };
            pbpersist_bench::pbpersist_on(&open, args.n, args.per_tx)?
        }
        None => {
            let path = dir.join(format!("{history:?}.db"));
            let open = |options: Options| {
                let storage = SqliteStorage::builder(&path).history(history).open()?;
                Database::with_storage_and_options(storage, options)
            };
            pbpersist_bench::pbpersist_on(&open, args.n, args.per_tx)?
        }
    })
}

/// A pack's time and peak memory (the packing process's own).
struct Packed {
    states: u64,
    seconds: f64,
    peak_kib: u64,
}

/// Builds a history-preserving SQLite file of replaced states, then packs
/// it to its newest tid in a process of its own.
fn pack(args: &Args, scratch: &Path) -> Result<Packed> {
    let path = scratch.join("pack.db");
    let storage = SqliteStorage::builder(&path).history(History::Preserving).open()?;
    let db = Database::with_storage_and_options(storage, Options::default().cache_objects(args.pack_objects + 1000))?;
    use pbpersist_tests::bank::Counter;
    let counters: Vec<pbpersist::Ref<Counter>> = db.transact(|tx| {
        let counters = (0..args.pack_objects).map(|_| tx.add(Counter::new())).collect::<pbpersist::Result<Vec<_>>>()?;
        tx.root_mut()?.insert("first", counters[0]);
        Ok(counters)
    })?;
    for round in 0..args.pack_rounds {
        for chunk in counters.chunks(1000) {
            db.transact(|tx| {
                for c in chunk {
                    tx.get_mut(*c)?.set_value(round as i64 + 1);
                }
                Ok(())
            })?;
        }
    }
    drop(db);
    let out = std::process::Command::new(std::env::current_exe()?).arg("--pack-only").arg(&path).output()?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(Packed {
        states: v["states"].as_u64().unwrap_or(0),
        seconds: v["seconds"].as_f64().unwrap_or(0.0),
        peak_kib: v["peak_kib"].as_u64().unwrap_or(0),
    })
}

fn pack_only(path: &Path) -> Result<()> {
    let db = Database::open(path)?;
    let newest = db.last_transactions(1)?.first().map_or(Tid(0), |t| t.tid);
    let start = Instant::now();
    let report = db.pack(Keep::From(newest))?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"states": report.states_removed, "seconds": seconds, "peak_kib": pbpersist_bench::peak_rss_kib()})
    );
    Ok(())
}

fn zodb_pack(args: &Args, scratch: &Path) -> Result<Packed> {
    let dir = scratch.join("zodb-pack");
    std::fs::create_dir_all(&dir)?;
    let dir_arg = dir.display().to_string();
    eprintln!("pack: building the same on ZODB ...");
    let build = ["build".to_owned(), dir_arg.clone(), args.pack_objects.to_string(), args.pack_rounds.to_string()];
    let python = pbpersist_bench::zodb::python()?;
    let status = std::process::Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("zodb_pack.py"))
        .args(build)
        .status()?;
    if !status.success() {
        return Err("zodb_pack.py build failed".into());
    }
    let v = pbpersist_bench::zodb::script("zodb_pack.py", &["pack".to_owned(), dir_arg])?;
    Ok(Packed {
        states: (args.pack_objects * args.pack_rounds) as u64,
        seconds: v["seconds"].as_f64().unwrap_or(0.0),
        peak_kib: v["peak_kib"].as_u64().unwrap_or(0),
    })
}

fn report(
    args: &Args,
    free: &Rates,
    kept: &Rates,
    zodb: Option<&Rates>,
    ours: &Packed,
    theirs: Option<&Packed>,
) -> String {
    let ratio = |a: f64, b: f64| if b > 0.0 { format!("{:.2}x", a / b) } else { "-".into() };
    let (setting, peer) = match &args.postgres {
        Some(_) => ("PostgreSQL on this machine", "ZODB + RelStorage, history-preserving"),
        None => ("SQLite bundled with rusqlite", "ZODB + FileStorage"),
    };
    let z = zodb.cloned().unwrap_or_default();
    let mut s = format!(
        "# What history costs{}\n\n\
         Generated by `cargo run --release -p pbpersist-bench --bin history-bench -- {}--report <file>` \
         on {} cores; {setting}. N = {} towers, {} per transaction; medians of {} rounds, each running every system in turn.\n\n\
         | measure | pbpersist history-free | pbpersist history-preserving | {peer} | cost of history (free / preserving) | preserving vs ZODB |\n\
         |---|---|---|---|---|---|\n",
        if args.postgres.is_some() { " on PostgreSQL" } else { "" },
        if args.postgres.is_some() { "--postgres <url> " } else { "" },
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        args.n,
        args.per_tx,
        args.rounds.max(1),
    );
    for (name, f, k, zz) in
        [("add (obj/s)", free.add, kept.add, z.add), ("update (obj/s)", free.update, kept.update, z.update)]
    {
        s.push_str(&format!(
            "| {name} | {f:.0} | {k:.0} | {} | {} | {} |\n",
            if zz > 0.0 { format!("{zz:.0}") } else { "-".into() },
            ratio(f, k),
            ratio(k, zz)
        ));
    }
    s.push_str(&format!(
        "\nPack of {} replaced states ({} objects changed {} times) to the newest tid, each pack in a process of its own:\n\n\
         | | pbpersist (SQLite) | ZODB (FileStorage) | ratio |\n|---|---|---|---|\n",
        ours.states, args.pack_objects, args.pack_rounds
    ));
    let t = theirs.map_or((0.0, 0), |p| (p.seconds, p.peak_kib));
    s.push_str(&format!("| time (s) | {:.2} | {:.2} | {} |\n", ours.seconds, t.0, ratio(t.0, ours.seconds)));
    s.push_str(&format!(
        "| peak memory (KiB) | {} | {} | {} |\n",
        ours.peak_kib,
        t.1,
        ratio(t.1 as f64, ours.peak_kib as f64)
    ));
    s
}
