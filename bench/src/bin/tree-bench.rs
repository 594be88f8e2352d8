//! Trees, side by side: pbpersist's `PTreeMap` on SQLite, a plain SQLite
//! table with a primary key (the ceiling) and Python ZODB's BTrees on
//! FileStorage, with string keys and with integer keys, in one run. Prints a
//! table, writes `docs/benchmarks/trees.md` and `docs/benchmarks/trees.svg`.
//!
//! `cargo run --release -p pbpersist-bench --bin tree-bench [-- --n 1000000]`

use clap::Parser;
use pbpersist_bench::trees::{self, Keys, Plan, TreeRates};
use std::path::PathBuf;

#[derive(Parser)]
struct Args {
    /// Keys in each tree.
    #[arg(long, default_value_t = 1_000_000)]
    n: u64,
    /// Inserts (and removals) per transaction.
    #[arg(long, default_value_t = 1000)]
    per_tx: usize,
    /// Rounds of all systems in turn; each measure's median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Skip Python ZODB.
    #[arg(long)]
    no_zodb: bool,
    /// Skip the SQLite table (to profile pbpersist alone).
    #[arg(long)]
    no_raw: bool,
    /// Only this key kind.
    #[arg(long, value_parser = ["strings", "ints"])]
    keys: Option<String>,
    /// Only time the hot lookups on an in-memory `std::collections::BTreeMap`
    /// with the same keys, and print the rates.
    #[arg(long)]
    std_map: bool,
    /// Where to write the report (and the chart beside it); nothing if absent.
    #[arg(long)]
    report: Option<PathBuf>,
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// One key kind's medians: pbpersist, raw SQLite, ZODB.
struct Results {
    keys: Keys,
    ours: TreeRates,
    raw: TreeRates,
    zodb: Option<TreeRates>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let plan = Plan::new(args.n);
    if args.std_map {
        println!("std BTreeMap, hot lookups/s: strings {:.0}", trees::std_map_hot(&plan, trees::string_key));
        println!("std BTreeMap, hot lookups/s: ints {:.0}", trees::std_map_hot(&plan, |i| i as i64));
        return Ok(());
    }
    let mut results = Vec::new();
    let kinds = match args.keys.as_deref() {
        Some("strings") => vec![Keys::Strings],
        Some(_) => vec![Keys::Ints],
        None => vec![Keys::Strings, Keys::Ints],
    };
    for keys in kinds {
        let (mut ours, mut raw, mut zodb) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..args.rounds.max(1) {
            eprintln!("{keys:?}, round {} of {}", round + 1, args.rounds.max(1));
            let dir = tempfile::tempdir()?;
            eprintln!("  pbpersist ...");
            ours.push(match keys {
                Keys::Strings => trees::pbpersist(&dir.path().join("tree.db"), &plan, args.per_tx, trees::string_key)?,
                Keys::Ints => trees::pbpersist(&dir.path().join("tree.db"), &plan, args.per_tx, |i| i as i64)?,
            });
            if !args.no_raw {
                eprintln!("  raw SQLite ...");
                raw.push(trees::raw(&dir.path().join("raw.db"), &plan, args.per_tx, keys)?);
            }
            if !args.no_zodb {
                eprintln!("  ZODB BTrees ...");
                zodb.push(trees::zodb(dir.path(), args.n, args.per_tx, keys)?);
            }
        }
        results.push(Results {
            keys,
            ours: TreeRates::median(&ours),
            raw: TreeRates::median(&raw),
            zodb: (!zodb.is_empty()).then(|| TreeRates::median(&zodb)),
        });
    }
    let tables: String = results.iter().map(table).collect::<Vec<_>>().join("\n");
    println!("{tables}");
    if let Some(path) = &args.report {
        write(path, &args, &results, &tables)?;
    }
    Ok(())
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 { format!("{:.2}x", a / b) } else { "-".into() }
}

fn rows(r: &TreeRates) -> [(&'static str, f64); 5] {
    [
        ("insert", r.insert),
        ("point lookup, cold", r.lookup_cold),
        ("point lookup, hot", r.lookup_hot),
        ("range scan of 1,000", r.range),
        ("remove", r.remove),
    ]
}

fn table(r: &Results) -> String {
    let title = match r.keys {
        Keys::Strings => "String keys (`user-0000123`)",
        Keys::Ints => "Integer keys",
    };
    let z = r.zodb.clone().unwrap_or_default();
    let mut s = format!(
        "### {title}\n\n| entries/s | pbpersist PTreeMap | SQLite table | ZODB BTrees | vs SQLite | vs ZODB |\n\
         |---|---|---|---|---|---|\n"
    );
    for ((name, o), ((_, raw), (_, zz))) in rows(&r.ours).into_iter().zip(rows(&r.raw).into_iter().zip(rows(&z))) {
        let fmt = |v: f64| if v > 0.0 { format!("{v:.0}") } else { "-".into() };
        s.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {} |\n",
            fmt(o),
            fmt(raw),
            fmt(zz),
            ratio(o, raw),
            ratio(o, zz)
        ));
    }
    s.push_str(&format!(
        "| cold lookup p50 / p99 (us) | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | | |\n",
        r.ours.cold_p50_us, r.ours.cold_p99_us, r.raw.cold_p50_us, r.raw.cold_p99_us, z.cold_p50_us, z.cold_p99_us
    ));
    s
}

fn write(path: &std::path::Path, args: &Args, results: &[Results], tables: &str) -> Result<()> {
    let svg = path.with_extension("svg");
    chart(&svg, results)?;
    let text = format!(
        "# Trees: PTreeMap beside an SQLite table and ZODB's BTrees\n\n\
         Generated by `cargo run --release -p pbpersist-bench --bin tree-bench -- --report {}`\n\
         on {} cores, SQLite bundled with rusqlite, Python ZODB with FileStorage.\n\
         N = {} keys, {} inserts or removals per transaction; medians of {} rounds, each running every system in turn.\n\n\
         ![Trees]({})\n\n{tables}\n",
        path.display(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        args.n,
        args.per_tx,
        args.rounds.max(1),
        svg.file_name().and_then(|f| f.to_str()).unwrap_or_default(),
    );
    pbpersist_bench::write_page(path, &text)?;
    Ok(())
}

fn chart(path: &std::path::Path, results: &[Results]) -> Result<()> {
    let mut labels = Vec::new();
    let mut values: Vec<[f64; 3]> = Vec::new();
    for r in results {
        let kind = if r.keys == Keys::Strings { "str" } else { "int" };
        let z = r.zodb.clone().unwrap_or_default();
        for (((name, o), (_, raw)), (_, zz)) in rows(&r.ours).into_iter().zip(rows(&r.raw)).zip(rows(&z)) {
            let short = name.split(',').next().unwrap_or(name).replace("point ", "").replace(" scan of 1,000", "");
            let temp = if name.ends_with("cold") {
                " cold"
            } else if name.ends_with("hot") {
                " hot"
            } else {
                ""
            };
            labels.push(format!("{short}{temp} ({kind})"));
            values.push([o, raw, zz]);
        }
    }
    let systems = ["pbpersist PTreeMap", "SQLite table", "ZODB BTrees"];
    pbpersist_bench::bar_chart(
        path,
        "Trees, entries per second (log scale)",
        (1000, 440),
        1000.0,
        &labels,
        systems,
        &values,
    )
}
