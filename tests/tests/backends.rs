//! Runs the storage conformance suite (`pbpersist::conformance`) against the
//! memory and SQLite backends, each history-free and history-preserving,
//! with SQLite's own read-only and migration tests.
#![allow(clippy::unit_arg)] // `Ok(assert_eq!(..))` keeps one-line transactions readable.

use pbpersist::Database;
use pbpersist::conformance::{self as suite, Backend};
use pbpersist::storage::History;
use pbpersist::storage::{SqliteStorage, Storage};

pbpersist::conformance_suite!(memory, {
    let storage = pbpersist::storage::MemoryStorage::new();
    Backend::new(move |options| Database::with_storage_and_options(storage.clone(), options).unwrap())
});

pbpersist::conformance_suite!(memory_history, {
    let storage = pbpersist::storage::MemoryStorage::with_history(History::Preserving);
    Backend::new(move |options| Database::with_storage_and_options(storage.clone(), options).unwrap())
});

pbpersist::conformance_suite!(sqlite, {
    let dir = pbpersist_tests::scratch_dir();
    let path = dir.path().join("suite.db");
    Backend::new(move |options| {
        let _keep = &dir;
        Database::open_with(&path, options).unwrap()
    })
});

pbpersist::conformance_suite!(sqlite_history, {
    let dir = pbpersist_tests::scratch_dir();
    let path = dir.path().join("suite.db");
    Backend::new(move |options| {
        let _keep = &dir;
        let storage = SqliteStorage::builder(&path).history(History::Preserving).open().unwrap();
        Database::with_storage_and_options(storage, options).unwrap()
    })
});

#[test]
fn sqlite_read_only() {
    let dir = pbpersist_tests::scratch_dir();
    let path = dir.path().join("read_only.db");
    let writable = path.clone();
    let backend = Backend::new(move |options| Database::open_with(&writable, options).unwrap());
    suite::read_only::reads_and_refuses_writes(&backend, &|| Database::open_read_only(&path).unwrap());
}

#[test]
fn sqlite_read_only_refuses_what_is_not_a_database() {
    let dir = pbpersist_tests::scratch_dir();
    let missing = dir.path().join("missing.db");
    assert!(Database::open_read_only(&missing).is_err());
    assert!(!missing.exists(), "nothing is created");
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other).unwrap().execute_batch("CREATE TABLE t (x)").unwrap();
    let err = Database::open_read_only(&other).unwrap_err();
    assert!(err.to_string().contains("is not a pbpersist database"), "{err}");
}

/// Every earlier SQLite format is brought up to the current one on open, in
/// one transaction; a newer one is refused and left as it was.
#[test]
fn sqlite_migrates_every_earlier_format_and_refuses_a_newer_one() {
    const FORMAT_VERSION: i64 = pbpersist::storage::SqliteStorage::FORMAT_VERSION;
    let dir = pbpersist_tests::scratch_dir();
    let path = dir.path().join("old.db");
    let pisa = {
        let db = Database::open(&path).unwrap();
        db.transact(|tx| {
            let r = tx.add(suite::tower("Pisa", 15.5, 56.7))?;
            tx.root_mut()?.insert("pisa", r);
            Ok(r)
        })
        .unwrap()
    };
    // Each older format is made from a current file by undoing migrations.
    let sql = |q: &str| rusqlite::Connection::open(&path).unwrap().execute_batch(q).unwrap();
    let format = || -> i64 {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.query_row("SELECT value FROM pb_meta WHERE key = 'format'", [], |r| r.get(0)).unwrap()
    };
    // Format 3 had no history table.
    let drop_history = "DROP TABLE pb_object_revision; DELETE FROM pb_meta WHERE key = 'history';";
    sql(&format!("{drop_history} UPDATE pb_meta SET value = 3 WHERE key = 'format';"));
    let db = Database::open(&path).unwrap();
    assert_eq!((format(), db.storage().history_mode()), (FORMAT_VERSION, History::Free));
    assert_eq!(db.history(pisa.oid(), 5).unwrap().len(), 1, "the current state");
    drop(db);
    // Format 2 had no transaction metadata either.
    let drop_meta = "ALTER TABLE pb_transaction DROP COLUMN user_name;
                     ALTER TABLE pb_transaction DROP COLUMN description;
                     ALTER TABLE pb_transaction DROP COLUMN extension;";
    sql(&format!("{drop_history} {drop_meta} UPDATE pb_meta SET value = 2 WHERE key = 'format';"));
    let db = Database::open(&path).unwrap();
    assert_eq!(format(), FORMAT_VERSION);
    let old = db.last_transactions(1).unwrap().remove(0);
    assert_eq!(old.meta, pbpersist::storage::TransactionMeta::default(), "earlier transactions have no metadata");
    db.transact(|tx| {
        tx.set_user("migrated");
        Ok(tx.get_mut(pisa)?.set_height(56.7))
    })
    .unwrap();
    assert_eq!(db.last_transactions(1).unwrap()[0].meta.user, "migrated");
    drop(db);
    // Format 1, as its programs left it: a tid index, no oid lists.
    sql(&format!(
        "{drop_history} {drop_meta} ALTER TABLE pb_transaction DROP COLUMN oids;
         CREATE INDEX pb_object_tid ON pb_object (tid);
         UPDATE pb_meta SET value = 1 WHERE key = 'format';"
    ));
    let db = Database::open(&path).unwrap();
    assert_eq!(format(), FORMAT_VERSION);
    db.transact(|tx| Ok(assert_eq!(tx.get(pisa)?.height(), 56.7))).unwrap();
    db.transact(|tx| Ok(tx.get_mut(pisa)?.set_height(57.0))).unwrap();
    let c = rusqlite::Connection::open(&path).unwrap();
    let index: Option<String> =
        c.query_row("SELECT name FROM sqlite_master WHERE name = 'pb_object_tid'", [], |r| r.get(0)).ok();
    assert_eq!(index, None, "the migration dropped the tid index");
    let listed: i64 =
        c.query_row("SELECT count(*) FROM pb_transaction WHERE oids IS NOT NULL", [], |r| r.get(0)).unwrap();
    assert_eq!(listed, 1, "commits after the migration list their oids");
    drop(db);

    sql("UPDATE pb_meta SET value = 99 WHERE key = 'format'");
    let err = Database::open(&path).unwrap_err();
    assert!(err.to_string().contains("format version 99"), "{err}");
    assert_eq!(format(), 99, "a newer database is left as it was");
}

/// The history mode is chosen when a database is created and kept: asking
/// for the other one later is an error that changes nothing.
#[test]
fn sqlite_keeps_the_history_mode_it_was_created_with() {
    let dir = pbpersist_tests::scratch_dir();
    let (free, kept) = (dir.path().join("free.db"), dir.path().join("kept.db"));
    Database::open(&free).unwrap();
    let err = SqliteStorage::builder(&free).history(History::Preserving).open().unwrap_err();
    assert!(err.to_string().contains("was created history-free, not history-preserving"), "{err}");
    let storage = SqliteStorage::builder(&kept).history(History::Preserving).open().unwrap();
    assert_eq!(storage.history_mode(), History::Preserving);
    drop(storage);
    // Opened without asking, each is what it was made.
    assert_eq!(SqliteStorage::open(&kept).unwrap().history_mode(), History::Preserving);
    assert_eq!(SqliteStorage::open_read_only(&kept).unwrap().history_mode(), History::Preserving);
    assert_eq!(SqliteStorage::open(&free).unwrap().history_mode(), History::Free);
    assert!(SqliteStorage::builder(&kept).history(History::Free).open().is_err());
}
