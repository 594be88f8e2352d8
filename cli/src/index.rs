//! `cargo pbpersist index`: the indexes a database holds and its stored
//! schemas declare, listed, built, checked and dropped without the
//! program's code (keys are read from records decoded with those schemas).

use crate::Failure;
use crate::open::{Source, open_writable, shown};
use crate::progress::Progress;
use pbpersist::Database;
use pbpersist::index::{StoredIndex, stored_indexes};
use pbpersist::reflect::Schemas;
use std::process::ExitCode;

/// The declared indexes among `names` (all when empty); a name the schemas
/// do not declare is an error naming those they do.
fn declared(db: &Database, names: &[String]) -> Result<Vec<StoredIndex>, Failure> {
    let schemas = Schemas::from_storage(db.storage())?;
    let (indexes, refused) = stored_indexes(&schemas);
    for reason in refused {
        eprintln!("warning: not an index: {reason}");
    }
    if let Some(unknown) = names.iter().find(|n| !indexes.iter().any(|i| i.name() == n.as_str())) {
        let known: Vec<&str> = indexes.iter().map(|i| i.name()).collect();
        let known = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
        return Err(Failure(format!("the stored schemas declare no index {unknown} (they declare: {known})")));
    }
    Ok(indexes.into_iter().filter(|i| names.is_empty() || names.iter().any(|n| n == i.name())).collect())
}

pub fn list(database: &str) -> Result<ExitCode, Failure> {
    let source = Source::open(database)?;
    let db = source.database();
    let held = db.indexes()?;
    let declared = declared(db, &[])?;
    for index in &held {
        let unique = if index.unique { ", unique" } else { "" };
        let state = if index.is_built() {
            format!("{} entries", index.entries)
        } else {
            format!("building: objects below {} of {} done, {} entries", index.built_to, index.build_end, index.entries)
        };
        let note =
            if declared.iter().any(|d| d.name() == index.name) { "" } else { "; not declared by the stored schemas" };
        say!("{} ({}{unique}): {state}{note}", index.name, index.key_kind);
    }
    for index in declared.iter().filter(|d| !held.iter().any(|h| h.name == d.name())) {
        let unique = if index.is_unique() { ", unique" } else { "" };
        say!("{} ({}{unique}): declared, not created yet", index.name(), index.key_kind());
    }
    if held.is_empty() && declared.is_empty() {
        say!("{} holds no index and its schemas declare none", shown(database));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn build(database: &str, names: &[String]) -> Result<ExitCode, Failure> {
    let db = open_writable(database)?;
    let indexes = declared(&db, names)?;
    if indexes.is_empty() {
        say!("the stored schemas of {} declare no index", shown(database));
    }
    for index in &indexes {
        let progress = Progress::start(format!("building {}", index.name()));
        let built = db.build_stored_index(index);
        drop(progress);
        let built = built?;
        if built.scanned == 0 {
            say!("{}: built already", built.index);
        } else {
            say!("{}: built; read {} object(s), indexed {}", built.index, built.scanned, built.indexed);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn check(database: &str, names: &[String]) -> Result<ExitCode, Failure> {
    let source = Source::open(database)?;
    let db = source.database();
    let indexes = declared(db, names)?;
    let progress = Progress::start(format!("checking {} index(es) of {}", indexes.len(), shown(database)));
    let checks = db.check_stored_indexes(&indexes);
    drop(progress);
    let mut sound = true;
    for check in checks? {
        if !check.built {
            say!("{}: not built (cargo pbpersist index build builds it)", check.index);
            sound = false;
            continue;
        }
        let verdict = if check.is_sound() { "ok" } else { "BROKEN" };
        sound &= check.is_sound();
        say!(
            "{}: {verdict}: {} entries, {} missing, {} stale, {} dangling",
            check.index,
            check.entries,
            check.missing,
            check.stale,
            check.dangling
        );
    }
    if names.is_empty() {
        for held in db.indexes()?.iter().filter(|h| !indexes.iter().any(|d| d.name() == h.name)) {
            say!("{}: not declared by the stored schemas (cargo pbpersist index drop removes it)", held.name);
        }
    }
    Ok(if sound { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub fn drop_index(database: &str, name: &str) -> Result<ExitCode, Failure> {
    let db = open_writable(database)?;
    if db.drop_index(name)? {
        say!("{name}: dropped; gc removes its entries");
        Ok(ExitCode::SUCCESS)
    } else {
        Err(Failure(format!("{} holds no index {name}", shown(database))))
    }
}
