//! `cargo pbpersist`: generate code from `.proto` files, check schemas for
//! breaking changes, inspect a database without Rust types, list its recent
//! transactions, and collect its garbage. Install with `cargo install --path codegen/cli`.

/// Prints a line to standard output, as `println!` does, except that when
/// the reader has gone (`cargo pbpersist inspect DB | head`) the program
/// ends quietly, as a filter should, instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::write_line(format_args!($($arg)*))
    };
}

mod inspect;

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "cargo", bin_name = "cargo")]
enum Cargo {
    /// pbpersist's tools.
    Pbpersist(Cli),
}

#[derive(clap::Args)]
#[command(version, about = "Generate code, check schemas, inspect and collect pbpersist databases")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the Rust code for .proto files, the same as build.rs would.
    Generate {
        /// Directories to search for imports.
        #[arg(short = 'I', long = "include", value_name = "DIR")]
        includes: Vec<PathBuf>,
        /// Where to write one .rs file per package.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Write nothing; fail if the files in --out are not what would be written.
        #[arg(long)]
        check: bool,
        /// Also write this file (such as protos.rs): every package's module,
        /// for one `include!` in the crate.
        #[arg(long, value_name = "NAME")]
        include_file: Option<String>,
        /// The .proto files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Compile .proto files with full diagnostics; with --against, list breaking changes.
    Check {
        /// Directories to search for imports.
        #[arg(short = 'I', long = "include", value_name = "DIR")]
        includes: Vec<PathBuf>,
        /// An encoded FileDescriptorSet, or a pbpersist database (its stored
        /// schemas): an SQLite file or a postgres:// URL.
        #[arg(long, value_name = "FILE|URL")]
        against: Option<String>,
        /// The .proto files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List a database's objects, or show one as JSON, decoded with the schemas it stores.
    Inspect {
        /// The SQLite database file, a postgres://, etcd://, file:// or s3:// URL.
        database: String,
        /// Show this object.
        #[arg(long)]
        oid: Option<u64>,
        /// Show the object as JSON.
        #[arg(long, requires = "oid")]
        json: bool,
        /// Also show every object reachable from it.
        #[arg(long, requires = "oid")]
        follow: bool,
    },
    /// Check trees: key order, key ranges, list lengths and counters. Every
    /// tree in the database unless one is named.
    CheckTree {
        /// The SQLite database file, a postgres://, etcd://, file:// or s3:// URL.
        database: String,
        /// The tree's head.
        #[arg(long, conflicts_with = "name")]
        oid: Option<u64>,
        /// The root entry naming the tree.
        #[arg(long)]
        name: Option<String>,
    },
    /// List the newest committed transactions: tid, time and the objects each wrote.
    Log {
        /// The SQLite database file, a postgres://, etcd://, file:// or s3:// URL.
        database: String,
        /// How many, newest first.
        #[arg(short = 'n', long = "count", default_value_t = 20)]
        count: usize,
    },
    /// Remove objects unreachable from the root, following stored reference lists.
    Gc {
        /// The SQLite database file, a postgres://, etcd://, file:// or s3:// URL.
        database: String,
        /// Report what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// List an object's stored states, newest first, with who wrote each and when.
    History {
        /// The SQLite database file, a postgres://, etcd://, file:// or s3:// URL.
        database: String,
        /// The object.
        #[arg(long)]
        oid: u64,
        /// How many, newest first.
        #[arg(short = 'n', long = "count", default_value_t = 20)]
        count: usize,
    },
    /// Undo transactions in one new transaction (history-preserving databases).
    Undo {
        /// The SQLite database file, a postgres://, etcd://, file:// or s3:// URL.
        database: String,
        /// The transactions to undo.
        #[arg(required = true)]
        tids: Vec<u64>,
    },
    /// Copy a database into another storage, keeping tids and history; into
    /// an earlier copy, only what it lacks.
    Copy {
        /// The source: an SQLite database file, or a postgres:// URL.
        source: String,
        /// The destination: an SQLite file (created if missing), or a postgres:// URL.
        destination: String,
        /// Whether a new destination keeps history (default: as the source does).
        #[arg(long, value_enum)]
        history: Option<HistoryMode>,
    },
    /// Remove unreachable objects and the history no view from the kept point on needs.
    Pack {
        /// The SQLite database file, a postgres://, etcd://, file:// or s3:// URL.
        database: String,
        /// Keep what is needed to see the database as it was at any time in the last DAYS days.
        #[arg(long, conflicts_with = "tid")]
        days: Option<f64>,
        /// Keep what is needed to see the database as of TID and later.
        #[arg(long)]
        tid: Option<u64>,
    },
}

/// `--history` values.
#[derive(Clone, Copy, clap::ValueEnum)]
enum HistoryMode {
    /// Keep every replaced state.
    Preserving,
    /// Keep current states only.
    Free,
}

/// A failure to report: the message is for the user, never a debug dump.
struct Failure(String);

impl<E: std::error::Error> From<E> for Failure {
    /// The error with its whole cause chain, each cause once.
    fn from(e: E) -> Self {
        Failure(pbpersist::report(&e))
    }
}

fn main() -> ExitCode {
    let Cargo::Pbpersist(cli) = Cargo::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(Failure(message)) => {
            eprintln!("error: {}", message.trim_end());
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<ExitCode, Failure> {
    match command {
        Command::Generate { includes, out, check, include_file, files } => {
            generate(&includes, &out, check, include_file, &files)
        }
        Command::Check { includes, against, files } => check(&includes, against.as_deref(), &files),
        Command::Inspect { database, oid, json, follow } => inspect::run(&database, oid, json, follow),
        Command::CheckTree { database, oid, name } => check_tree(&database, oid, name.as_deref()),
        Command::Log { database, count } => log(&database, count),
        Command::Gc { database, dry_run } => gc(&database, dry_run),
        Command::History { database, oid, count } => history(&database, oid, count),
        Command::Undo { database, tids } => undo(&database, &tids),
        Command::Pack { database, days, tid } => pack(&database, days, tid),
        Command::Copy { source, destination, history } => copy(&source, &destination, history),
    }
}

/// Opens an existing database for writing; a file or server without
/// pbpersist's tables is refused, never created.
fn open_writable(database: &str) -> Result<pbpersist::Database, Failure> {
    use pbpersist::{Database, storage::PostgresStorage};
    if database.starts_with("etcd://") {
        inspect::open_etcd(database)
    } else if inspect::is_object_store(database) {
        inspect::open_object_store(database)
    } else if inspect::is_url(database) {
        inspect::Source::open(database)?;
        Ok(Database::with_storage(PostgresStorage::open(database)?)?)
    } else {
        inspect::require_database(Path::new(database))?;
        Ok(Database::open(database)?)
    }
}

fn copy(source: &str, destination: &str, history: Option<HistoryMode>) -> Result<ExitCode, Failure> {
    use pbpersist::storage::History;
    use pbpersist::storage::{PostgresStorage, SqliteStorage, Storage};
    let from: Box<dyn Storage> = if inspect::is_url(source) {
        Box::new(PostgresStorage::open_read_only(source)?)
    } else {
        inspect::require_database(Path::new(source))?;
        Box::new(SqliteStorage::open_read_only(source)?)
    };
    // A new destination keeps history as asked, or as the source does; an
    // existing one must already be what was asked.
    let history = history.map(|h| match h {
        HistoryMode::Preserving => History::Preserving,
        HistoryMode::Free => History::Free,
    });
    let to: Box<dyn Storage> = if inspect::is_url(destination) {
        let exists = PostgresStorage::open_read_only(destination).is_ok();
        let mut builder = PostgresStorage::builder(destination);
        if let Some(h) = history.or((!exists).then(|| from.history_mode())) {
            builder = builder.history(h);
        }
        Box::new(builder.open()?)
    } else {
        let exists = Path::new(destination).exists();
        let mut builder = SqliteStorage::builder(destination);
        if let Some(h) = history.or((!exists).then(|| from.history_mode())) {
            builder = builder.history(h);
        }
        Box::new(builder.open()?)
    };
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.enable_steady_tick(std::time::Duration::from_millis(100));
    let mut copied = 0u64;
    let report = pbpersist::storage::copy(&*from, &*to, &mut |t| {
        copied += 1;
        spinner.set_message(format!("copied {copied} transaction(s), up to tid {}", t.tid));
    });
    spinner.finish_and_clear();
    let report = report?;
    say!(
        "copied {} transaction(s) and {} record(s); {} is at tid {}",
        report.transactions,
        report.records,
        shown(destination),
        report.last
    );
    Ok(ExitCode::SUCCESS)
}

fn check_tree(database: &str, oid: Option<u64>, name: Option<&str>) -> Result<ExitCode, Failure> {
    use pbpersist::{AnyObject, Ref};
    let mut source = inspect::Source::open(database)?;
    let heads: Vec<u64> = match (oid, name) {
        (Some(oid), _) => vec![oid],
        (None, Some(name)) => {
            vec![source.database().transact(|tx| Ok(tx.root()?.require::<AnyObject>(name)?.oid().0))?]
        }
        (None, None) => source.oids_of_type("pbpersist.Tree")?,
    };
    let mut broken = 0;
    for head in &heads {
        let check = source
            .database()
            .transact(|tx| pbpersist::tree::check_tree(tx, Ref::<AnyObject>::new(pbpersist::Oid(*head))))?;
        let kinds = if check.value_kind.is_empty() {
            format!("set of {}", check.key_kind)
        } else {
            format!("{} -> {}", check.key_kind, check.value_kind)
        };
        let verdict = if check.problems.is_empty() { "ok" } else { "BROKEN" };
        // `depth` as the head stores it (docs/format.md): levels of nodes
        // above the buckets, where the check counts the buckets too.
        say!(
            "tree {head} ({kinds}): {} entries, depth {}, {} nodes, {} buckets: {verdict}",
            check.entries,
            check.depth.saturating_sub(1),
            check.nodes,
            check.buckets
        );
        for problem in &check.problems {
            say!("    {problem}");
        }
        broken += usize::from(!check.problems.is_empty());
    }
    if heads.is_empty() {
        say!("no trees");
    }
    Ok(if broken == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn history(database: &str, oid: u64, count: usize) -> Result<ExitCode, Failure> {
    let source = inspect::Source::open(database)?;
    for r in source.database().history(pbpersist::Oid(oid), count)? {
        let time = humantime::format_rfc3339_millis(r.time);
        let user = if r.meta.user.is_empty() { String::new() } else { format!("  {}", r.meta.user) };
        say!("tid {}  {time}  {} bytes{user}", r.tid, r.size);
        for line in r.meta.description.lines() {
            say!("    {line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn undo(database: &str, tids: &[u64]) -> Result<ExitCode, Failure> {
    let db = open_writable(database)?;
    let tids: Vec<pbpersist::Tid> = tids.iter().map(|t| pbpersist::Tid(*t)).collect();
    say!("undone in tid {}", db.undo(&tids)?);
    Ok(ExitCode::SUCCESS)
}

fn pack(database: &str, days: Option<f64>, tid: Option<u64>) -> Result<ExitCode, Failure> {
    let keep = match (days, tid) {
        (_, Some(tid)) => pbpersist::Keep::From(pbpersist::Tid(tid)),
        (Some(days), None) if days.is_finite() && days >= 0.0 => {
            pbpersist::Keep::Last(std::time::Duration::from_secs_f64(days * 86_400.0))
        }
        (Some(days), None) => return Err(Failure(format!("--days must be a number of days, not {days}"))),
        (None, None) => return Err(Failure("say how much history to keep: --days N or --tid T".into())),
    };
    let db = open_writable(database)?;
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message(format!("packing {}", shown(database)));
    spinner.enable_steady_tick(std::time::Duration::from_millis(100));
    let report = db.pack(keep);
    spinner.finish_and_clear();
    let report = report?;
    say!(
        "kept from tid {}; removed {} replaced state(s) and {} unreachable object(s)",
        report.kept_from,
        report.states_removed,
        report.unreachable.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn log(database: &str, count: usize) -> Result<ExitCode, Failure> {
    let source = inspect::Source::open(database)?;
    // As `git log`: a line per transaction, then its details indented.
    for t in source.database().last_transactions(count)? {
        let time = humantime::format_rfc3339_millis(t.time);
        let user = if t.meta.user.is_empty() { String::new() } else { format!("  {}", t.meta.user) };
        say!("tid {}  {time}{user}", t.tid);
        for line in t.meta.description.lines() {
            say!("    {line}");
        }
        for (key, value) in &t.meta.extension {
            say!("    {key}: {value}");
        }
        match &t.oids {
            Some(oids) => {
                say!("    oids: {}", oids.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "))
            }
            None => say!("    oids: (no longer listed)"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Compile errors as full diagnostics (file, line, column and the line).
fn diagnostic(e: pbpersist_build::Error) -> Failure {
    Failure(format!("{e:?}"))
}

fn config() -> pbpersist_build::Config {
    let mut c = pbpersist_build::Config::new();
    c.cargo_directives(false);
    c
}

fn generate(
    includes: &[PathBuf],
    out: &Path,
    check: bool,
    include_file: Option<String>,
    files: &[PathBuf],
) -> Result<ExitCode, Failure> {
    let mut config = config();
    if let Some(name) = include_file {
        config.include_file(name);
    }
    let generated = config.generate(files, includes).map_err(diagnostic)?;
    let mut stale = Vec::new();
    for file in &generated {
        let path = out.join(&file.name);
        if check {
            if std::fs::read_to_string(&path).ok().as_deref() != Some(file.content.as_str()) {
                stale.push(path.display().to_string());
            }
        } else {
            std::fs::create_dir_all(out).map_err(|e| Failure(format!("cannot create {}: {e}", out.display())))?;
            std::fs::write(&path, &file.content)
                .map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))?;
            say!("wrote {}", path.display());
        }
    }
    if !stale.is_empty() {
        return Err(Failure(format!(
            "generated code is stale; run `cargo pbpersist generate` without --check:\n  {}",
            stale.join("\n  ")
        )));
    }
    if check {
        say!("{} file(s) up to date", generated.len());
    }
    Ok(ExitCode::SUCCESS)
}

fn check(includes: &[PathBuf], against: Option<&str>, files: &[PathBuf]) -> Result<ExitCode, Failure> {
    let new = config().descriptor_pool(files, includes).map_err(diagnostic)?;
    // Generating also runs pbpersist's own checks (options, unsupported features).
    config().generate(files, includes).map_err(diagnostic)?;
    let Some(against) = against else {
        say!("{} file(s) compile", files.len());
        return Ok(ExitCode::SUCCESS);
    };
    let old = old_schema(against)?;
    let changes = pbpersist_build::breaking_changes(&old, &new);
    if changes.is_empty() {
        say!("no breaking changes against {}", shown(against));
        return Ok(ExitCode::SUCCESS);
    }
    for c in &changes {
        say!("{c}");
    }
    Err(Failure(format!("{} breaking change(s) against {}", changes.len(), shown(against))))
}

/// How to name a database in messages: a URL loses its password.
fn shown(database: &str) -> String {
    if !inspect::is_url(database) {
        return database.to_owned();
    }
    match database.parse::<postgres::Config>() {
        Ok(c) => {
            let user = c.get_user().map(|u| format!("{u}@")).unwrap_or_default();
            let host = match c.get_hosts().first() {
                Some(postgres::config::Host::Tcp(h)) => h.clone(),
                _ => "localhost".into(),
            };
            let port = c.get_ports().first().copied().unwrap_or(5432);
            format!("{user}{host}:{port}/{}", c.get_dbname().unwrap_or(""))
        }
        Err(_) => "the PostgreSQL database".into(),
    }
}

/// The schemas a database stores, compiled.
fn stored_schemas(database: &str) -> Result<prost_reflect::DescriptorPool, Failure> {
    let files = inspect::Source::open(database)?.schemas()?;
    Ok(pbpersist::reflect::Schemas::compile(&files)?.pool().clone())
}

/// The schema to compare with: a database's stored schemas, or a descriptor set.
fn old_schema(database: &str) -> Result<prost_reflect::DescriptorPool, Failure> {
    if inspect::is_url(database) {
        return stored_schemas(database);
    }
    let path = Path::new(database);
    let bytes = std::fs::read(path).map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?;
    if bytes.starts_with(b"SQLite format 3\0") {
        return stored_schemas(database);
    }
    config()
        .descriptor_pool_from_set(&bytes)
        .map_err(|e| Failure(format!("{} is neither a database nor a descriptor set: {e}", path.display())))
}

fn gc(database: &str, dry_run: bool) -> Result<ExitCode, Failure> {
    use pbpersist::{Database, storage::PostgresStorage};
    // A dry run only reads, so it opens the database read-only; either way a
    // file or server without pbpersist's tables is refused, never created.
    let db = if dry_run {
        if inspect::is_url(database) {
            Database::with_storage(PostgresStorage::open_read_only(database)?)?
        } else {
            Database::open_read_only(database)?
        }
    } else {
        open_writable(database)?
    };
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message(format!("walking the object graph of {}", shown(database)));
    spinner.enable_steady_tick(std::time::Duration::from_millis(100));
    let report = db.gc(dry_run);
    spinner.finish_and_clear();
    let report = report?;
    let verb = if dry_run { "would remove" } else { "removed" };
    for oid in &report.unreachable {
        say!("{verb} {oid}");
    }
    say!("{verb} {} unreachable object(s)", report.unreachable.len());
    Ok(ExitCode::SUCCESS)
}

/// Writes one line for [`say!`]: a closed pipe ends the program with
/// success, any other failure to write with an error.
fn write_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(line).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write the output: {e}");
        std::process::exit(1);
    }
}
