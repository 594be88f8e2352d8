//! Python ZODB, the peer: its scripts (`bench/zodb_*.py`) run in a
//! virtualenv set up under `target/zodb-venv`.

use crate::Rates;
use std::path::{Path, PathBuf};
use std::process::Command;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The virtualenv's Python, with ZODB, ZEO, RelStorage and psycopg2 installed.
pub fn python() -> Result<PathBuf> {
    let venv = root().join("target/zodb-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    run(Command::new(&python).args(["-m", "pip", "install", "-q", "ZODB", "ZEO", "RelStorage", "psycopg2-binary"]))?;
    Ok(python)
}

/// Installs `packages` from PyPI into the virtualenv as well, for a script
/// that needs more than ZODB (pip passes over those already there).
pub fn install(packages: &[&str]) -> Result<()> {
    run(Command::new(python()?).args(["-m", "pip", "install", "-q"]).args(packages))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status()?;
    if !status.success() {
        return Err(format!("{cmd:?} failed").into());
    }
    Ok(())
}

/// Runs `bench/<script>` with `args` and reads the JSON object it prints.
pub fn script(script: &str, args: &[String]) -> Result<serde_json::Value> {
    let out = Command::new(python()?).arg(root().join("bench").join(script)).args(args).output()?;
    if !out.status.success() {
        return Err(format!("{script} failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The Tower workload on ZODB: FileStorage in a directory, ZEO over one at
/// `zeo:<directory>` (its server a process of its own), or RelStorage at
/// `postgresql:<dsn>` (keeping history if `history`).
pub fn tower(target: &str, n: usize, per_tx: usize, history: bool) -> Result<Rates> {
    let mut args = vec![target.to_owned(), n.to_string(), per_tx.to_string()];
    if history {
        args.push("history".into());
    }
    let v = script("zodb_bench.py", &args)?;
    let f = |k: &str| v[k].as_f64().unwrap_or(0.0);
    Ok(Rates {
        add: f("add"),
        update: f("update"),
        cold_load: f("cold_load"),
        cold_p50_us: f("cold_p50_us"),
        cold_p99_us: f("cold_p99_us"),
        traversal: f("traversal"),
        prefetch_traversal: 0.0,
        warm_traversal: 0.0,
        hot_read: f("hot_read"),
        peak_rss_kib: 0,
    })
}

/// A libpq connection string for RelStorage in `database` on the server at
/// `url` (its stored procedures assume the default schema, so it gets a
/// database of its own), created if missing; RelStorage empties it first.
pub fn relstorage_dsn(url: &str, database: &str) -> Result<String> {
    let config: postgres::Config = url.parse()?;
    let mut client = config.connect(postgres::NoTls)?;
    if let Err(e) = client.batch_execute(&format!("CREATE DATABASE \"{database}\""))
        && e.code() != Some(&postgres::error::SqlState::DUPLICATE_DATABASE)
    {
        return Err(e.into());
    }
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres");
    Ok(format!("postgresql:host={host} port={port} user={user} dbname={database}"))
}
