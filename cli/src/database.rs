//! The database verbs that are not `inspect`: log, history, check-tree, gc,
//! undo, pack and copy.

use crate::open::{Source, is_url, open_writable, require_database, shown};
use crate::progress::Progress;
use crate::{Failure, HistoryMode};
use std::path::Path;
use std::process::ExitCode;

pub fn copy(source: &str, destination: &str, history: Option<HistoryMode>) -> Result<ExitCode, Failure> {
    use pbpersist::storage::History;
    use pbpersist::storage::{PostgresStorage, SqliteStorage, Storage};
    let from: Box<dyn Storage> = if is_url(source) {
        Box::new(PostgresStorage::open_read_only(source)?)
    } else {
        require_database(Path::new(source))?;
        Box::new(SqliteStorage::open_read_only(source)?)
    };
    // A new destination keeps history as asked, or as the source does; an
    // existing one must already be what was asked.
    let history = history.map(|h| match h {
        HistoryMode::Preserving => History::Preserving,
        HistoryMode::Free => History::Free,
    });
    let to: Box<dyn Storage> = if is_url(destination) {
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
    let progress = Progress::start(format!("copying {} into {}", shown(source), shown(destination)));
    let mut copied = 0u64;
    let report = pbpersist::storage::copy(&*from, &*to, &mut |t| {
        copied += 1;
        progress.show(format!("copied {copied} transaction(s), up to tid {}", t.tid));
    });
    drop(progress);
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

pub fn check_tree(database: &str, oid: Option<u64>, name: Option<&str>) -> Result<ExitCode, Failure> {
    use pbpersist::{AnyObject, Ref};
    let mut source = Source::open(database)?;
    let heads: Vec<u64> = match (oid, name) {
        (Some(oid), _) => vec![oid],
        (None, Some(name)) => {
            vec![source.database().transact(|tx| Ok(tx.root()?.require::<AnyObject>(name)?.oid().0))?]
        }
        (None, None) => source.oids_of_type("pbpersist.Tree")?,
    };
    let mut broken = 0;
    let progress = Progress::start(format!("checking {} tree(s)", heads.len()));
    for (i, head) in heads.iter().enumerate() {
        progress.show(format!("checking tree {head} ({} of {})", i + 1, heads.len()));
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
        progress.suspend(|| {
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
        });
        broken += usize::from(!check.problems.is_empty());
    }
    drop(progress);
    if heads.is_empty() {
        say!("no trees");
    }
    Ok(if broken == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub fn history(database: &str, oid: u64, count: usize) -> Result<ExitCode, Failure> {
    let source = Source::open(database)?;
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

pub fn undo(database: &str, tids: &[u64]) -> Result<ExitCode, Failure> {
    let db = open_writable(database)?;
    let tids: Vec<pbpersist::Tid> = tids.iter().map(|t| pbpersist::Tid(*t)).collect();
    say!("undone in tid {}", db.undo(&tids)?);
    Ok(ExitCode::SUCCESS)
}

pub fn pack(database: &str, days: Option<f64>, tid: Option<u64>) -> Result<ExitCode, Failure> {
    let keep = match (days, tid) {
        (_, Some(tid)) => pbpersist::Keep::From(pbpersist::Tid(tid)),
        (Some(days), None) if days.is_finite() && days >= 0.0 => {
            pbpersist::Keep::Last(std::time::Duration::from_secs_f64(days * 86_400.0))
        }
        (Some(days), None) => return Err(Failure(format!("--days must be a number of days, not {days}"))),
        (None, None) => return Err(Failure("say how much history to keep: --days N or --tid T".into())),
    };
    let db = open_writable(database)?;
    let progress = Progress::start(format!("packing {}", shown(database)));
    let report = db.pack(keep);
    drop(progress);
    let report = report?;
    say!(
        "kept from tid {}; removed {} replaced state(s) and {} unreachable object(s)",
        report.kept_from,
        report.states_removed,
        report.unreachable.len()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn log(database: &str, count: usize) -> Result<ExitCode, Failure> {
    let source = Source::open(database)?;
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

pub fn gc(database: &str, dry_run: bool) -> Result<ExitCode, Failure> {
    use pbpersist::{Database, storage::PostgresStorage};
    // A dry run only reads, so it opens the database read-only; either way a
    // file or server without pbpersist's tables is refused, never created.
    let db = if dry_run {
        if is_url(database) {
            Database::with_storage(PostgresStorage::open_read_only(database)?)?
        } else {
            Database::open_read_only(database)?
        }
    } else {
        open_writable(database)?
    };
    let progress = Progress::start(format!("walking the object graph of {}", shown(database)));
    let report = db.gc(dry_run);
    drop(progress);
    let report = report?;
    let verb = if dry_run { "would remove" } else { "removed" };
    for oid in &report.unreachable {
        say!("{verb} {oid}");
    }
    say!("{verb} {} unreachable object(s)", report.unreachable.len());
    if report.index_entries > 0 {
        say!("removed {} index entries of removed objects", report.index_entries);
    }
    Ok(ExitCode::SUCCESS)
}
