//! Runs the storage test suite (`suite/`) against every backend.
#![allow(clippy::unit_arg)] // `Ok(assert_eq!(..))` keeps one-line transactions readable.

mod suite;

use pbpersist::Database;
use suite::Backend;

suite!(memory, {
    let storage = pbpersist::storage::MemoryStorage::new();
    Backend::new(move |options| Database::with_storage_and_options(storage.clone(), options).unwrap())
});

suite!(sqlite, {
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
