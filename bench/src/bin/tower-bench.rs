//! The Tower workload, side by side: pbpersist, the raw ceiling (rusqlite +
//! prost) and Python ZODB with FileStorage, in one run. Prints a table,
//! writes `docs/benchmarks/tower.md` and `docs/benchmarks/tower.svg`.
//!
//! With `--postgres URL`, the same on a PostgreSQL server: pbpersist's
//! PostgreSQL storage, the raw postgres crate + prost, and ZODB + RelStorage,
//! each in a schema of its own (`docs/benchmarks/postgres.md`).
//!
//! `cargo run --release -p pbpersist-bench --bin tower-bench [-- --n 100000]`

use clap::Parser;
use pbpersist_bench::Rates;
use std::path::{Path, PathBuf};

#[derive(Parser)]
struct Args {
    /// Objects.
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    /// Objects per transaction.
    #[arg(long, default_value_t = 1000)]
    per_tx: usize,
    /// Skip Python ZODB (no virtualenv).
    #[arg(long)]
    no_zodb: bool,
    /// Where to write the report (docs/benchmarks/tower.md and .svg); nothing if absent.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Run on this PostgreSQL server instead of SQLite and FileStorage.
    #[arg(long)]
    postgres: Option<String>,
    /// Rounds of all systems in turn; each measure's median is reported, as
    /// the machine's speed drifts within a run.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

/// What one run compares: the names of the peers and how they store.
struct Setting {
    raw: &'static str,
    zodb: &'static str,
    storage: String,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let scratch = tempfile::tempdir_in(std::env::current_dir()?)?;
    let (mut ours, mut raw, mut zodb) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..args.rounds.max(1) {
        eprintln!("round {} of {}", round + 1, args.rounds.max(1));
        let (o, r, z) = self::round(&args, &dir(scratch.path(), &format!("round{round}"))?)?;
        ours.push(o);
        raw.push(r);
        zodb.extend(z);
    }
    let setting = match args.postgres {
        None => Setting {
            raw: "raw rusqlite + prost",
            zodb: "Python ZODB",
            storage: "SQLite bundled with rusqlite, Python ZODB with FileStorage".into(),
        },
        Some(_) => Setting {
            raw: "raw postgres + prost",
            zodb: "Python ZODB + RelStorage",
            storage: "PostgreSQL on this machine (postgres crate; RelStorage history-free with psycopg2)".into(),
        },
    };
    let (ours, raw) = (Rates::median(&ours), Rates::median(&raw));
    let zodb = (!zodb.is_empty()).then(|| Rates::median(&zodb));
    let table = report::table(&setting, &ours, &raw, zodb.as_ref());
    println!("{table}");
    if let Some(path) = &args.report {
        report::write(path, &args, &setting, &ours, &raw, zodb.as_ref(), &table)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// One round: pbpersist, the raw ceiling and (unless skipped) ZODB, one
/// after the other, each in a fresh place under `scratch`.
fn round(args: &Args, scratch: &Path) -> Result<(Rates, Rates, Option<Rates>), Box<dyn std::error::Error>> {
    match &args.postgres {
        None => {
            eprintln!("pbpersist ...");
            let ours = pbpersist_bench::pbpersist(&dir(scratch, "pbpersist")?, args.n, args.per_tx)?;
            eprintln!("raw rusqlite + prost ...");
            let raw = pbpersist_bench::raw(&dir(scratch, "raw")?, args.n, args.per_tx)?;
            let zodb = match args.no_zodb {
                true => None,
                false => {
                    eprintln!("Python ZODB ...");
                    Some(zodb(&dir(scratch, "zodb")?.display().to_string(), args.n, args.per_tx)?)
                }
            };
            Ok((ours, raw, zodb))
        }
        Some(url) => {
            use pbpersist_bench::postgres as pg;
            eprintln!("pbpersist on PostgreSQL ...");
            pg::fresh_schema(url, "pbbench_pbpersist")?;
            let open = |options| {
                let storage = pbpersist::storage::PostgresStorage::builder(url).schema("pbbench_pbpersist").open()?;
                pbpersist::Database::with_storage_and_options(storage, options)
            };
            let mut ours = pbpersist_bench::pbpersist_on(&open, args.n, args.per_tx)?;
            eprintln!("pbpersist on PostgreSQL, restarted with a warm state cache ...");
            let cache = scratch.join("states.db");
            ours.warm_traversal = pg::warm_traversal(url, "pbbench_pbpersist", &cache, args.n)?;
            eprintln!("raw postgres + prost ...");
            let raw = pg::raw(url, "pbbench_raw", args.n, args.per_tx)?;
            let zodb = match args.no_zodb {
                true => None,
                false => {
                    eprintln!("Python ZODB + RelStorage ...");
                    Some(zodb(&pbpersist_bench::zodb::relstorage_dsn(url, "pbbench_relstorage")?, args.n, args.per_tx)?)
                }
            };
            Ok((ours, raw, zodb))
        }
    }
}

fn dir(base: &Path, name: &str) -> std::io::Result<PathBuf> {
    let d = base.join(name);
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn zodb(target: &str, n: usize, per_tx: usize) -> Result<Rates, Box<dyn std::error::Error>> {
    pbpersist_bench::zodb::tower(target, n, per_tx, false)
}

mod report {
    use super::{Args, Setting};
    use pbpersist_bench::Rates;
    use std::path::Path;

    fn ratio(a: f64, b: f64) -> String {
        if b > 0.0 { format!("{:.2}x", a / b) } else { "-".into() }
    }

    pub fn table(setting: &Setting, ours: &Rates, raw: &Rates, zodb: Option<&Rates>) -> String {
        let z = zodb.cloned().unwrap_or_default();
        let rows: [(&str, f64, f64, f64); 7] = [
            ("add (obj/s)", ours.add, raw.add, z.add),
            ("update (obj/s)", ours.update, raw.update, z.update),
            ("cold load (obj/s)", ours.cold_load, raw.cold_load, z.cold_load),
            ("cold traversal (obj/s)", ours.traversal, 0.0, z.traversal),
            ("cold traversal, prefetch_refs (obj/s; ZODB: plain)", ours.prefetch_traversal, 0.0, z.traversal),
            ("restarted traversal, warm state cache (obj/s)", ours.warm_traversal, 0.0, 0.0),
            ("hot read (obj/s)", ours.hot_read, raw.hot_read, z.hot_read),
        ];
        let mut s = format!(
            "| measure | pbpersist | {} | {} | vs raw | vs ZODB |\n|---|---|---|---|---|---|\n",
            setting.raw, setting.zodb
        );
        // A measure this setting does not take (the state cache on SQLite) has no row.
        for (name, o, r, zz) in rows.into_iter().filter(|row| row.1 > 0.0) {
            let fmt = |v: f64| if v > 0.0 { format!("{v:.0}") } else { "-".into() };
            s.push_str(&format!(
                "| {name} | {} | {} | {} | {} | {} |\n",
                fmt(o),
                fmt(r),
                fmt(zz),
                ratio(o, r),
                ratio(o, zz)
            ));
        }
        s.push_str(&format!(
            "| cold load p50 / p99 (us) | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | | |\n",
            ours.cold_p50_us, ours.cold_p99_us, raw.cold_p50_us, raw.cold_p99_us, z.cold_p50_us, z.cold_p99_us
        ));
        s.push_str(&format!("| peak RSS after cold load (KiB) | {} | | | | |\n", ours.peak_rss_kib));
        s
    }

    pub fn write(
        path: &Path,
        args: &Args,
        setting: &Setting,
        ours: &Rates,
        raw: &Rates,
        zodb: Option<&Rates>,
        table: &str,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let svg = path.with_extension("svg");
        chart(&svg, setting, ours, raw, zodb)?;
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        let rustc = std::process::Command::new("rustc")
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        let text = format!(
            "# Benchmarks{}\n\n\
             Generated by `cargo run --release -p pbpersist-bench --bin tower-bench -- {}--report {}`\n\
             on {} cores ({cpu}), {}, {}.\n\
             N = {} towers, {} per transaction; every system writes to the same local disk.\n\
             Each figure is the median of {} rounds, each round running every system in turn.\n\n\
             ![Tower workload]({})\n\n{table}\n",
            if args.postgres.is_some() { " on PostgreSQL" } else { "" },
            if args.postgres.is_some() { "--postgres <url> " } else { "" },
            path.display(),
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            rustc.unwrap_or_default(),
            setting.storage,
            args.n,
            args.per_tx,
            args.rounds.max(1),
            svg.file_name().and_then(|f| f.to_str()).unwrap_or_default(),
        );
        pbpersist_bench::write_page(path, &text)?;
        Ok(())
    }

    fn chart(
        path: &Path,
        setting: &Setting,
        ours: &Rates,
        raw: &Rates,
        zodb: Option<&Rates>,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let z = zodb.cloned().unwrap_or_default();
        let measures = ["add", "update", "cold load", "hot read"];
        let values = [
            [ours.add, raw.add, z.add],
            [ours.update, raw.update, z.update],
            [ours.cold_load, raw.cold_load, z.cold_load],
            [ours.hot_read, raw.hot_read, z.hot_read],
        ];
        let labels: Vec<String> = measures.iter().map(|m| m.to_string()).collect();
        let systems = ["pbpersist", setting.raw, setting.zodb];
        let caption = "Tower workload, objects per second (log scale)";
        pbpersist_bench::bar_chart(path, caption, (800, 420), 100.0, &labels, systems, &values)
    }
}
