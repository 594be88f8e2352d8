//! Indexes, side by side: pbpersist's secondary indexes on SQLite, one
//! SQLite table with the same `CREATE INDEX`es (the peer) and Python ZODB
//! with zope.index field indexes on FileStorage, in one run. Prints a table,
//! writes `docs/benchmarks/indexes.md`.
//!
//! `cargo run --release -p pbpersist-bench --bin index-bench [-- --n 1000000]`

use clap::Parser;
use pbpersist_bench::indexes::{self, IndexRates, Plan, QueryRates};
use std::path::{Path, PathBuf};

#[derive(Parser)]
struct Args {
    /// People inserted.
    #[arg(long, default_value_t = 1_000_000)]
    n: u64,
    /// Inserts per transaction.
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
    no_sqlite: bool,
    /// Where to write the report; nothing if absent.
    #[arg(long)]
    report: Option<PathBuf>,
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// ZODB's medians, or why there are none.
enum Zodb {
    Ran(IndexRates),
    Skipped,
    Failed(String),
}

fn main() -> Result<()> {
    let args = Args::parse();
    let plan = Plan::new(args.n);
    let rounds = args.rounds.max(1);
    let (mut ours, mut sqlite, mut zodb) = (Vec::new(), Vec::new(), Vec::new());
    let mut zodb_error = None;
    for round in 0..rounds {
        eprintln!("round {} of {rounds}", round + 1);
        let dir = tempfile::tempdir()?;
        eprintln!("  pbpersist ...");
        ours.push(indexes::pbpersist(dir.path(), &plan, args.per_tx)?);
        if !args.no_sqlite {
            eprintln!("  SQLite table ...");
            sqlite.push(indexes::sqlite(dir.path(), &plan, args.per_tx)?);
        }
        if !args.no_zodb && zodb_error.is_none() {
            eprintln!("  ZODB with zope.index ...");
            // The benchmark goes on without its peer if Python, PyPI or the
            // script fail; the page says why.
            match indexes::zodb(dir.path(), args.n, args.per_tx) {
                Ok(r) => zodb.push(r),
                Err(e) => {
                    eprintln!("  ZODB failed: {e}");
                    zodb_error = Some(e.to_string());
                }
            }
        }
    }
    let ours = IndexRates::median(&ours);
    let sqlite = (!sqlite.is_empty()).then(|| IndexRates::median(&sqlite));
    let zodb = match zodb_error {
        Some(e) => Zodb::Failed(e),
        None if zodb.is_empty() => Zodb::Skipped,
        None => Zodb::Ran(IndexRates::median(&zodb)),
    };
    check_same_answers(&ours, sqlite.as_ref(), &zodb);
    let tables = tables(&ours, sqlite.as_ref(), &zodb);
    println!("{tables}");
    if let Some(path) = &args.report {
        write(path, &args, &tables, &zodb)?;
    }
    Ok(())
}

/// The query kinds, as the tables name them.
fn queries(r: &IndexRates) -> [(&'static str, &QueryRates); 4] {
    [
        ("equality (email)", &r.email),
        ("range of 100 (born)", &r.born),
        ("composite (city, born range)", &r.city_born),
        ("count (a year of births)", &r.count),
    ]
}

/// Every system must have found the same objects; a difference means the
/// queries differ, and their rates are not comparable.
fn check_same_answers(ours: &IndexRates, sqlite: Option<&IndexRates>, zodb: &Zodb) {
    let others = sqlite.into_iter().map(|s| ("SQLite", s));
    let others = others.chain(match zodb {
        Zodb::Ran(z) => Some(("ZODB", z)),
        _ => None,
    });
    for (system, other) in others {
        for ((name, a), (_, b)) in queries(ours).into_iter().zip(queries(other)) {
            assert_eq!(a.found, b.found, "{name}: pbpersist and {system} found different numbers of objects");
        }
    }
}

fn ratio(a: f64, b: f64) -> String {
    if a > 0.0 && b > 0.0 { format!("{:.2}x", a / b) } else { "-".into() }
}

fn fmt(v: f64) -> String {
    if v > 0.0 { format!("{v:.0}") } else { "-".into() }
}

fn tables(ours: &IndexRates, sqlite: Option<&IndexRates>, zodb: &Zodb) -> String {
    let s = sqlite.cloned().unwrap_or_default();
    let z = match zodb {
        Zodb::Ran(z) => z.clone(),
        _ => IndexRates::default(),
    };
    let header = "| pbpersist | SQLite table | ZODB + zope.index | vs SQLite | vs ZODB |\n|---|---|---|---|---|---|\n";
    let mut out = format!("### Inserts, objects/s\n\n| {header}");
    let row = |name: &str, o: f64, s: f64, z: f64| {
        format!("| {name} | {} | {} | {} | {} | {} |\n", fmt(o), fmt(s), fmt(z), ratio(o, s), ratio(o, z))
    };
    out.push_str(&row("with the three indexes", ours.insert, s.insert, z.insert));
    out.push_str(&row("without indexes", ours.insert_plain, s.insert_plain, z.insert_plain));
    // The cost of the indexes: how many times longer the same inserts take.
    let cost = |r: &IndexRates| ratio(r.insert_plain, r.insert);
    out.push_str(&format!("| time with indexes / without | {} | {} | {} | | |\n", cost(ours), cost(&s), cost(&z)));

    out.push_str(&format!("\n### Queries, queries/s\n\n| {header}"));
    let all = queries(ours).into_iter().zip(queries(&s).into_iter().zip(queries(&z)));
    for ((name, o), ((_, s), (_, z))) in all.clone() {
        out.push_str(&row(&format!("{name}, cold"), o.cold, s.cold, z.cold));
        out.push_str(&row(&format!("{name}, hot"), o.hot, s.hot, z.hot));
    }
    out.push_str("\n### Single cold queries, p50 / p99 (us)\n\n| | pbpersist | SQLite table | ZODB + zope.index |\n");
    out.push_str("|---|---|---|---|\n");
    let lat = |q: &QueryRates| if q.cold > 0.0 { format!("{:.1} / {:.1}", q.p50_us, q.p99_us) } else { "-".into() };
    for ((name, o), ((_, s), (_, z))) in all {
        out.push_str(&format!("| {name} | {} | {} | {} |\n", lat(o), lat(s), lat(z)));
    }
    out
}

fn write(path: &Path, args: &Args, tables: &str, zodb: &Zodb) -> Result<()> {
    let plan = Plan::new(args.n);
    let zodb_note = match zodb {
        Zodb::Ran(_) => String::new(),
        Zodb::Skipped => "ZODB was skipped (`--no-zodb`) in this run.\n\n".to_owned(),
        Zodb::Failed(e) => format!("ZODB could not run in this run, and its columns are empty: {e}\n\n"),
    };
    let text = format!(
        "# Indexes: pbpersist beside an SQLite table and ZODB with zope.index\n\n\
         Generated on {} cores (SQLite bundled with rusqlite, Python ZODB with zope.index on FileStorage) by\n\
         `cargo run --release -p pbpersist-bench --bin index-bench -- --n {} --report {}`.\n\
         N = {} people, {} inserts per transaction; {} equality, {} range, {} composite and {} count queries;\n\
         medians of {} rounds, each running every system in turn.\n\n{zodb_note}{tables}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        args.n,
        path.display(),
        args.n,
        args.per_tx,
        plan.emails.len(),
        plan.born_from.len(),
        plan.city_born.len(),
        plan.count_from.len(),
        args.rounds.max(1),
    );
    pbpersist_bench::write_page(path, &text)?;
    Ok(())
}
