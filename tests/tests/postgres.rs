//! The PostgreSQL backend: the storage suite, the multi-process tests and
//! the tests only a server can have (lost connections, credentials,
//! migrations). Each test gets a schema of its own on the server named by
//! `PBPERSIST_POSTGRES_URL` (default: `postgres://postgres@127.0.0.1:5432/test`).
//!
//! Without a reachable server the tests are reported as ignored, with the
//! reason, unless `PBPERSIST_REQUIRE_POSTGRES=1` makes that a failure (CI
//! sets it).
#![allow(clippy::unit_arg)] // `Ok(assert_eq!(..))` keeps one-line transactions readable.

mod index_model;
mod multiprocess;
mod pg;

use libtest_mimic::{Arguments, Trial};
use pbpersist::conformance::{self as suite, Backend};
use pbpersist::storage::PostgresStorage;
use pbpersist_tests::place::{PgSchema, postgres_reachable, postgres_url};

#[macro_export]
macro_rules! suite_trials {
    ($trials:ident; $($module:ident :: $test:ident),* $(,)?) => {
        $(
            $trials.push(Trial::test(concat!("suite::", stringify!($module), "::", stringify!($test)), || {
                let schema = PgSchema::new();
                let backend = Backend::new(move |options| schema.open(options));
                suite::$module::$test(&backend);
                Ok(())
            }));
            $trials.push(Trial::test(concat!("suite_history::", stringify!($module), "::", stringify!($test)), || {
                let schema = PgSchema::new();
                let backend = Backend::new(move |options| {
                    let storage = PostgresStorage::builder(&postgres_url())
                        .schema(schema.name())
                        .history(pbpersist::storage::History::Preserving)
                        .open()
                        .unwrap();
                    pbpersist::Database::with_storage_and_options(storage, options).unwrap()
                })
                // The variants check what they add; the plain suite runs
                // the concurrent workloads at full size.
                .lighter();
                suite::$module::$test(&backend);
                Ok(())
            }));
        )*
        $(
            $trials.push(Trial::test(concat!("suite_state_cache::", stringify!($module), "::", stringify!($test)), || {
                // Each database has a state cache file of its own; the suite
                // checks that serving states from it changes nothing.
                let schema = PgSchema::new();
                let dir = tempfile::tempdir().unwrap();
                let count = std::sync::atomic::AtomicU32::new(0);
                let backend = Backend::new(move |options| {
                    let n = count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let file = dir.path().join(format!("states-{n}.db"));
                    let storage = PostgresStorage::builder(&postgres_url())
                        .schema(schema.name())
                        .state_cache(file, 1 << 26)
                        .open()
                        .unwrap();
                    pbpersist::Database::with_storage_and_options(storage, options).unwrap()
                })
                // The variants check what they add; the plain suite runs
                // the concurrent workloads at full size.
                .lighter();
                suite::$module::$test(&backend);
                Ok(())
            }));
        )*
    };
}

fn new_schema() -> (String, Box<dyn std::any::Any>) {
    let schema = PgSchema::new();
    (schema.spec(), Box::new(schema))
}

fn main() {
    let args = Arguments::from_args();
    let mut trials: Vec<Trial> = Vec::new();
    pbpersist::conformance_tests!(suite_trials!(trials));
    trials.push(Trial::test("multiprocess::four_processes_lose_no_updates", || {
        Ok(multiprocess::four_processes_lose_no_updates_and_resolution_needs_fewer_retries(&new_schema))
    }));
    trials.push(Trial::test("multiprocess::four_processes_insert_indexed_objects", || {
        Ok(multiprocess::four_processes_insert_indexed_objects_and_every_one_is_found(&new_schema))
    }));
    trials.push(Trial::test("multiprocess::four_processes_insert_into_one_tree", || {
        Ok(multiprocess::four_processes_insert_into_one_tree_and_every_key_arrives(&new_schema))
    }));
    trials.push(Trial::test("multiprocess::a_writer_killed_50_times_loses_nothing", || {
        Ok(multiprocess::a_writer_killed_50_times_loses_no_acknowledged_commit_and_leaves_no_partial_one(&new_schema))
    }));
    trials.push(Trial::test("read_only::reads_and_refuses_writes", || {
        let schema = PgSchema::new();
        let name = schema.name().to_owned();
        let backend = Backend::new(move |options| schema.open(options));
        let read_only = move || {
            let storage = PostgresStorage::builder(&postgres_url()).schema(&name).read_only().open().unwrap();
            pbpersist::Database::with_storage(storage).unwrap()
        };
        suite::read_only::reads_and_refuses_writes(&backend, &read_only);
        Ok(())
    }));
    trials.push(Trial::test("indexes::queries_equal_a_model", || {
        // Each case on a schema of its own; fewer cases than on SQLite, as
        // every schema is created on the server.
        let config = proptest::test_runner::Config { cases: 8, ..Default::default() };
        let mut runner = proptest::test_runner::TestRunner::new(config);
        runner
            .run(&index_model::ops(), |ops| {
                let schema = PgSchema::new();
                index_model::run(&|| schema.open(pbpersist::Options::default()), &ops);
                Ok(())
            })
            .map_err(|e| e.to_string().into())
    }));
    for (name, test) in pg::TESTS {
        trials.push(Trial::test(*name, move || Ok(test())));
    }
    if let Err(reason) = postgres_reachable() {
        if std::env::var("PBPERSIST_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
            eprintln!("PBPERSIST_REQUIRE_POSTGRES=1 but {reason}");
            std::process::exit(101);
        }
        eprintln!("skipping {} PostgreSQL tests: {reason}", trials.len());
        trials = trials.into_iter().map(|t| t.with_ignored_flag(true)).collect();
    }
    libtest_mimic::run(&args, trials).exit();
}
