//! `cargo pbpersist`: generate code from `.proto` files, check schemas for
//! breaking changes, inspect a database without Rust types, list its recent
//! transactions, and collect its garbage. Install with `cargo install --path cli`.

/// Prints a line to standard output, as `println!` does, except that when
/// the reader has gone (`cargo pbpersist inspect DB | head`) the program
/// ends quietly, as a filter should, instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::write_line(format_args!($($arg)*))
    };
}

mod database;
mod index;
mod inspect;
mod open;
mod progress;
mod schema;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
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
    /// List, build, check or drop the indexes the stored schemas declare.
    Index {
        #[command(subcommand)]
        command: IndexCommand,
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

/// `cargo pbpersist index` verbs.
#[derive(Subcommand)]
enum IndexCommand {
    /// The indexes the database holds and those its stored schemas declare.
    List {
        /// The SQLite database file, a postgres://, etcd://, file:// or s3:// URL.
        database: String,
    },
    /// Build declared indexes over the objects already stored, while writers go on.
    Build {
        /// The SQLite database file, a postgres://, etcd://, file:// or s3:// URL.
        database: String,
        /// The indexes (`pkg.Msg.field`); every declared one if none.
        names: Vec<String>,
    },
    /// Compare declared indexes with the objects: missing, stale and dangling
    /// entries. Fails unless every one is built and sound.
    Check {
        /// The SQLite database file, a postgres://, etcd://, file:// or s3:// URL.
        database: String,
        /// The indexes (`pkg.Msg.field`); every declared one if none.
        names: Vec<String>,
    },
    /// Remove an index; gc then removes its entries.
    Drop {
        /// The SQLite database file, a postgres://, etcd://, file:// or s3:// URL.
        database: String,
        /// The index (`pkg.Msg.field`).
        name: String,
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
            schema::generate(&includes, &out, check, include_file, &files)
        }
        Command::Check { includes, against, files } => schema::check(&includes, against.as_deref(), &files),
        Command::Inspect { database, oid, json, follow } => inspect::run(&database, oid, json, follow),
        Command::CheckTree { database, oid, name } => database::check_tree(&database, oid, name.as_deref()),
        Command::Log { database, count } => database::log(&database, count),
        Command::Index { command } => match command {
            IndexCommand::List { database } => index::list(&database),
            IndexCommand::Build { database, names } => index::build(&database, &names),
            IndexCommand::Check { database, names } => index::check(&database, &names),
            IndexCommand::Drop { database, name } => index::drop_index(&database, &name),
        },
        Command::Gc { database, dry_run } => database::gc(&database, dry_run),
        Command::History { database, oid, count } => database::history(&database, oid, count),
        Command::Undo { database, tids } => database::undo(&database, &tids),
        Command::Pack { database, days, tid } => database::pack(&database, days, tid),
        Command::Copy { source, destination, history } => database::copy(&source, &destination, history),
    }
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
