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
