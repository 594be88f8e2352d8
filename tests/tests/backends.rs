//! Runs the storage conformance suite (`pbpersist::conformance`) against the
//! memory and SQLite backends, with SQLite's own read-only and migration tests.
#![allow(clippy::unit_arg)] // `Ok(assert_eq!(..))` keeps one-line transactions readable.

use pbpersist::Database;
use pbpersist::conformance::{self as suite, Backend};

pbpersist::conformance_suite!(memory, {
    let storage = pbpersist::storage::MemoryStorage::new();
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
    use pbpersist::storage::sqlite::FORMAT_VERSION;
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
    // Format 1, as its programs left it: a tid index, no oid lists.
    let sql = |q: &str| rusqlite::Connection::open(&path).unwrap().execute_batch(q).unwrap();
    let format = || -> i64 {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.query_row("SELECT value FROM pb_meta WHERE key = 'format'", [], |r| r.get(0)).unwrap()
    };
    sql("ALTER TABLE pb_transaction DROP COLUMN oids;
         CREATE INDEX pb_object_tid ON pb_object (tid);
         UPDATE pb_meta SET value = 1 WHERE key = 'format';");
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
