//! The object-store storage: the storage suite on an in-memory store, on a
//! local directory, and on an S3-protocol server (moto's server mode from
//! PyPI, started on a loopback port), then what only this storage shows:
//! the store's create-if-absent check, request counts, cold starts from a
//! checkpoint, malformed objects, processes sharing a directory or bucket.
//!
//! Without moto the S3 tests are reported as ignored, with the
//! reason, unless `PBPERSIST_REQUIRE_S3=1` makes that a failure (CI sets it).
#![allow(clippy::unit_arg, clippy::vec_init_then_push)] // Trials are pushed by a macro per suite test.

#[path = "multiprocess/mod.rs"]
mod multiprocess;

use libtest_mimic::{Arguments, Trial};
use pbpersist::conformance::{self as suite, Backend};
use pbpersist::storage::ObjectStorage;
use pbpersist::storage::Storage;
use pbpersist::{Database, StorageError};
use pbpersist_tests::bank::Counter;
use pbpersist_tests::s3::{S3Server, moto_available};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The S3 server every S3 test shares, started by `main`.
static S3: OnceLock<S3Server> = OnceLock::new();

fn s3() -> &'static S3Server {
    S3.get().expect("main starts the server before the S3 tests run")
}

/// A name no other test uses.
fn fresh() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("pbt-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

fn backend_at(url: String, keep: Option<tempfile::TempDir>) -> Backend {
    Backend::new(move |options| {
        let _ = &keep;
        Database::with_storage_and_options(ObjectStorage::open(&url).unwrap(), options).unwrap()
    })
}

fn memory_backend() -> Backend {
    backend_at(format!("memory://{}", fresh()), None)
}

/// A history-preserving database in memory. Lighter, as the file-history
/// suite: the history suites check what history adds, and the plain ones
/// run the concurrent workloads at full size.
fn memory_history_backend() -> Backend {
    backend_at(format!("memory://{}?history=preserving", fresh()), None).lighter()
}

/// A history-preserving database in a directory that checkpoints every
/// few commits, so that packs and cold starts meet checkpoints.
fn file_history_backend() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}?history=preserving&checkpoint-every=3", dir.path().display());
    backend_at(url, Some(dir)).lighter()
}

/// A directory that lives as long as the backend.
fn file_backend() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    backend_at(url, Some(dir))
}

/// Lighter: every commit is a few requests to moto, which serves them one
/// at a time from Python.
fn s3_backend() -> Backend {
    backend_at(s3().url(&fresh()), None).lighter()
}

fn file_place() -> (String, Box<dyn std::any::Any>) {
    let dir = tempfile::tempdir().unwrap();
    (format!("file://{}", dir.path().display()), Box::new(dir))
}

fn s3_place() -> (String, Box<dyn std::any::Any>) {
    (s3().url(&fresh()), Box::new(()))
}

macro_rules! suite_trials {
    ($trials:ident, $kind:literal, $backend:ident; $($module:ident :: $test:ident),* $(,)?) => {
        $(
            $trials.push(Trial::test(
                concat!($kind, "::suite::", stringify!($module), "::", stringify!($test)),
                || Ok(suite::$module::$test(&$backend())),
            ));
        )*
    };
}

/// The S3 server refuses a second create of one key, also when eight
/// arrive at once, which every commit relies on; a store set not to send
/// the condition is refused at open.
fn the_server_honours_create_if_absent() {
    use object_store::{ObjectStore, PutMode, PutOptions, PutPayload, path::Path};
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    let store = |conditional: &str| {
        object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(pbpersist_tests::s3::BUCKET)
            .with_config(object_store::aws::AmazonS3ConfigKey::ConditionalPut, conditional)
            .build()
            .unwrap()
    };
    let honest = store("etag");
    let key = Path::from(format!("{}/probe", fresh()));
    let create = PutOptions { mode: PutMode::Create, ..Default::default() };
    runtime.block_on(async {
        honest.put_opts(&key, PutPayload::from_static(b"1"), create.clone()).await.unwrap();
        let second = honest.put_opts(&key, PutPayload::from_static(b"2"), create).await;
        assert!(matches!(second, Err(object_store::Error::AlreadyExists { .. })), "{second:?}");
    });
    let honest = std::sync::Arc::new(honest);
    let prefix = fresh();
    for k in 0..50 {
        let racers: Vec<_> = (0..8)
            .map(|i| {
                let (store, key) = (honest.clone(), Path::from(format!("{prefix}/race-{k}")));
                let create = PutOptions { mode: PutMode::Create, ..Default::default() };
                runtime.spawn(async move { store.put_opts(&key, PutPayload::from(vec![i; 64]), create).await })
            })
            .collect();
        let wins = racers.into_iter().map(|r| runtime.block_on(r).unwrap()).filter(Result::is_ok).count();
        assert_eq!(wins, 1, "key {k}: {wins} concurrent creates succeeded");
    }
    match ObjectStorage::with_store(std::sync::Arc::new(store("disabled")), &fresh()) {
        Err(StorageError::Config(why)) => assert!(why.contains("create-if-absent"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A transaction costs one read (is there a newer commit?) and one
/// conditional write; a fresh process reads the newest checkpoint and the
/// commits after it, not the whole log.
fn requests_per_commit_and_a_cold_start_from_a_checkpoint(url: &str) {
    let url = format!("{url}?checkpoint-every=10");
    let storage = ObjectStorage::open(&url).unwrap();
    let db = Database::with_storage(storage.clone()).unwrap();
    let c = db.transact(|tx| tx.add(Counter::new())).unwrap();
    let before = storage.requests();
    for i in 1..=24 {
        db.transact(|tx| Ok(tx.get_mut(c)?.set_value(i))).unwrap();
    }
    let after = storage.requests();
    let per = |n: u64| n as f64 / 24.0;
    println!("per commit: {} gets, {} puts", per(after.gets - before.gets), per(after.puts - before.puts));
    // Two checkpoints (tids 10 and 20) add a put each.
    assert_eq!(after.puts - before.puts, 24 + 2);
    assert_eq!(after.gets - before.gets, 24, "one read per transaction, when it begins");

    let cold = ObjectStorage::open(&url).unwrap();
    let r = cold.requests();
    // The layout version, the mode, the checkpoint at 20, the commits 21 to
    // 26 (with the root's and the counter's), one that is not there yet.
    assert_eq!((r.lists, r.gets), (1, 1 + 1 + 1 + 6 + 1), "{r:?}");
    let db = Database::with_storage(cold.clone()).unwrap();
    assert_eq!(db.transact(|tx| Ok(tx.get(c)?.value())).unwrap(), 24);

    // A checkpoint asked for now: the next process reads nothing else.
    let tid = cold.checkpoint().unwrap();
    assert_eq!(tid, db.last_transactions(1).unwrap()[0].tid);
    let r = ObjectStorage::open(&url).unwrap().requests();
    assert_eq!((r.lists, r.gets), (1, 4), "the format, the mode, the checkpoint, the next tid: {r:?}");
}

/// With a cache directory, a restarted process reads records from its
/// disk: after a checkpoint it loads every object without asking the store
/// for any record. Another database's file is not trusted.
fn a_restarted_process_reads_records_from_its_cache_directory(base: &str) {
    let cache = tempfile::tempdir().unwrap();
    let with_cache = |url: &str| format!("{url}?cache-dir={}", cache.path().display());
    let towers = fifty_towers(&with_cache(base), 0.0);
    let restarted = ObjectStorage::open(&with_cache(base)).unwrap();
    let before = restarted.requests();
    assert_eq!(heights(&restarted, &towers), (0..50).map(|i| i as f32).collect::<Vec<_>>());
    let spent = restarted.requests().gets - before.gets;
    // One read at each begin (the database checking its root, then the
    // transaction); a record from the store would be one more each.
    assert!(spent <= 2, "{spent} reads: the records came from the cache file, not one read each");

    // Another database has records with the same oids and tids; the file,
    // made for the first, is emptied rather than read.
    let other = fresh_url_like(base);
    let towers = fifty_towers(&with_cache(&other), 100.0);
    let restarted = ObjectStorage::open(&with_cache(&other)).unwrap();
    assert_eq!(heights(&restarted, &towers), (0..50).map(|i| 100.0 + i as f32).collect::<Vec<_>>());
}

/// Fifty towers of heights `base + i` in one commit, then a checkpoint, so
/// that a restarted process has no record in memory.
fn fifty_towers(url: &str, base: f32) -> Vec<pbpersist::Ref<pbpersist_tests::demo::Tower>> {
    let storage = ObjectStorage::open(url).unwrap();
    let db = Database::with_storage(storage.clone()).unwrap();
    let towers = db
        .transact(|tx| {
            (0..50)
                .map(|i| {
                    let mut t = pbpersist_tests::demo::Tower::new();
                    t.set_name(format!("t{i}"));
                    t.set_width(1.0);
                    t.set_height(base + i as f32);
                    tx.add(t)
                })
                .collect()
        })
        .unwrap();
    storage.checkpoint().unwrap();
    towers
}

fn heights(storage: &ObjectStorage, towers: &[pbpersist::Ref<pbpersist_tests::demo::Tower>]) -> Vec<f32> {
    let db = Database::with_storage(storage.clone()).unwrap();
    db.transact(|tx| towers.iter().map(|t| Ok(tx.get(*t)?.height())).collect::<pbpersist::Result<_>>()).unwrap()
}

/// A database at `url` with a counter under the root's "c", so gc keeps it.
fn rooted_counter(url: &str) -> (Database, pbpersist::Ref<Counter>) {
    let db = Database::with_storage(ObjectStorage::open(url).unwrap()).unwrap();
    let c = db
        .transact(|tx| {
            let c = tx.add(Counter::new())?;
            tx.root_mut()?.insert("c", c);
            Ok(c)
        })
        .unwrap();
    (db, c)
}

/// A pack deletes the commit objects that hold no kept state, in either
/// mode, and a process started afterwards reads everything that was kept.
fn pack_deletes_commit_objects_that_hold_nothing_kept(history: &str) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}?history={history}", dir.path().display());
    let (db, c) = rooted_counter(&url);
    let mut tids = Vec::new();
    for i in 1..=20 {
        db.transact(|tx| Ok(tx.get_mut(c)?.set_value(i))).unwrap();
        tids.push(db.last_transactions(1).unwrap()[0].tid);
    }
    let commit_objects = || std::fs::read_dir(dir.path().join("log")).unwrap().count();
    let before = commit_objects();
    db.pack(pbpersist::Keep::From(tids[14])).unwrap();
    // The root's and the counter's creations stay (the root is current),
    // and everything from the kept tid on.
    let removed = before - commit_objects();
    assert!(removed >= 13, "{removed} of {before} commit objects removed");

    let fresh = Database::with_storage(ObjectStorage::open(&url).unwrap()).unwrap();
    assert_eq!(fresh.transact(|tx| Ok(tx.get(c)?.value())).unwrap(), 20);
    if history == "preserving" {
        let kept: Vec<_> = fresh.history(c.oid(), 100).unwrap().into_iter().map(|r| r.tid).collect();
        assert_eq!(kept, tids[14..].iter().rev().copied().collect::<Vec<_>>());
        assert_eq!(fresh.at(tids[15]).unwrap().transact(|tx| Ok(tx.get(c)?.value())).unwrap(), 16);
        assert!(fresh.at(tids[10]).is_err(), "before the pack's tid");
    }
}

/// A pack killed with SIGKILL at random moments, 20 times, with commits in
/// between: every time the database opens in a fresh process, the present
/// is intact, and every state from the newest packed tid on is there.
fn a_pack_killed_20_times_leaves_a_consistent_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}?history=preserving&checkpoint-every=7", dir.path().display());
    let (db, c) = rooted_counter(&url);
    let mut states = Vec::new();
    let (mut value, mut finished) = (0, 0);
    for round in 0..20u64 {
        for _ in 0..10 {
            value += 1;
            db.transact(|tx| Ok(tx.get_mut(c)?.set_value(value))).unwrap();
            states.push((db.last_transactions(1).unwrap()[0].tid, value));
        }
        let keep = states[states.len() - 5].0;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pbpersist-worker"))
            .args(["db-pack", &url, &keep.0.to_string()])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2 * round));
        let _ = child.kill();
        child.wait().unwrap();

        let fresh = Database::with_storage(ObjectStorage::open(&url).unwrap()).unwrap();
        assert_eq!(fresh.transact(|tx| Ok(tx.get(c)?.value())).unwrap(), value, "round {round}: the present");
        let packed = fresh.storage().require_history().unwrap().packed_tid().unwrap();
        finished += u32::from(packed == keep);
        for (tid, v) in states.iter().filter(|(t, _)| *t >= packed) {
            let past = fresh.at(*tid).unwrap();
            assert_eq!(past.transact(|tx| Ok(tx.get(c)?.value())).unwrap(), *v, "round {round}: the state of {tid}");
        }
    }
    println!("packs that recorded their tid before the kill: {finished} of 20");
}

/// A URL of a new database in the same kind of store as `base`.
fn fresh_url_like(base: &str) -> String {
    match base.strip_prefix("file://") {
        Some(dir) => format!("file://{dir}-other"),
        None => s3().url(&fresh()),
    }
}

/// A commit object that does not decode is a typed error naming its tid,
/// and the database opens again once it is gone.
fn a_malformed_commit_object_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let db = Database::with_storage(ObjectStorage::open(&url).unwrap()).unwrap();
    let next = db.last_transactions(1).unwrap()[0].tid.0 + 1;
    let path = dir.path().join("log").join(format!("{next:020}"));
    std::fs::write(&path, [0xff, 0xff, 0xff]).unwrap();
    match db.transact(|tx| Ok(tx.root()?.len())) {
        Err(pbpersist::Error::Storage(StorageError::Format(why))) => {
            assert!(why.contains(&format!("tid {next}")), "{why}")
        }
        other => panic!("expected a format error, got {other:?}"),
    }
    std::fs::remove_file(&path).unwrap();
    assert!(ObjectStorage::open(&url).is_ok());
}

/// The storage works when called from a task on the caller's Tokio runtime:
/// it never blocks on that runtime.
fn it_works_called_from_inside_a_tokio_runtime(url: String) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let db = Database::with_storage(ObjectStorage::open(&url).unwrap()).unwrap();
        let c = db.transact(|tx| tx.add(Counter::new())).unwrap();
        db.transact(|tx| Ok(tx.get_mut(c)?.set_value(5))).unwrap();
        assert_eq!(db.transact(|tx| Ok(tx.get(c)?.value())).unwrap(), 5);
    });
}

/// What a bucket without a database and a malformed URL give.
fn urls_are_checked() {
    for (url, needle) in [
        ("ftp://x", "known schemes"),
        ("file://relative/dir", "absolute path"),
        ("memory://x?checkpoint-every=ten", "not a number"),
        ("memory://x?colour=blue", "unknown parameter"),
    ] {
        match ObjectStorage::open(url) {
            Err(StorageError::Config(why)) => assert!(why.contains(needle), "{url}: {why}"),
            other => panic!("{url}: expected a configuration error, got {other:?}"),
        }
    }
    let storage = ObjectStorage::open(&format!("memory://{}", fresh())).unwrap();
    assert_eq!(storage.name(), "object-store");
}

fn main() {
    let args = Arguments::from_args();
    let mut trials: Vec<Trial> = Vec::new();
    pbpersist::conformance_tests!(suite_trials!(trials, "memory", memory_backend));
    pbpersist::conformance_tests!(suite_trials!(trials, "file", file_backend));
    pbpersist::conformance_tests!(suite_trials!(trials, "memory-history", memory_history_backend));
    pbpersist::conformance_tests!(suite_trials!(trials, "file-history", file_history_backend));
    let mut local: Vec<(&str, fn())> = vec![
        ("file::requests_per_commit_and_a_cold_start_from_a_checkpoint", || {
            let dir = tempfile::tempdir().unwrap();
            requests_per_commit_and_a_cold_start_from_a_checkpoint(&format!("file://{}", dir.path().display()))
        }),
        ("file::a_malformed_commit_object_is_a_typed_error", a_malformed_commit_object_is_a_typed_error),
        ("file::it_works_called_from_inside_a_tokio_runtime", || {
            let dir = tempfile::tempdir().unwrap();
            it_works_called_from_inside_a_tokio_runtime(format!("file://{}", dir.path().display()))
        }),
        ("urls_are_checked", urls_are_checked),
        ("file::pack_deletes_commit_objects_that_hold_nothing_kept", || {
            pack_deletes_commit_objects_that_hold_nothing_kept("free")
        }),
        (
            "file-history::a_pack_killed_20_times_leaves_a_consistent_database",
            a_pack_killed_20_times_leaves_a_consistent_database,
        ),
        ("file-history::pack_deletes_commit_objects_that_hold_nothing_kept", || {
            pack_deletes_commit_objects_that_hold_nothing_kept("preserving")
        }),
        ("file::a_restarted_process_reads_records_from_its_cache_directory", || {
            let dir = tempfile::tempdir().unwrap();
            a_restarted_process_reads_records_from_its_cache_directory(&format!("file://{}/db", dir.path().display()))
        }),
        ("file::processes::four_processes_lose_no_updates", || {
            multiprocess::four_processes_lose_no_updates_and_resolution_needs_fewer_retries(&file_place)
        }),
        ("file::processes::four_processes_insert_indexed_objects", || {
            multiprocess::four_processes_insert_indexed_objects_and_every_one_is_found(&file_place)
        }),
        ("file::processes::four_processes_insert_into_one_tree", || {
            multiprocess::four_processes_insert_into_one_tree_and_every_key_arrives(&file_place)
        }),
        ("file::processes::a_writer_killed_50_times", || {
            multiprocess::a_writer_killed_50_times_loses_no_acknowledged_commit_and_leaves_no_partial_one(&file_place)
        }),
    ];
    for (name, test) in local.drain(..) {
        trials.push(Trial::test(name, move || Ok(test())));
    }

    let mut remote: Vec<Trial> = Vec::new();
    pbpersist::conformance_tests!(suite_trials!(remote, "s3", s3_backend));
    for (name, test) in [
        ("s3::the_server_honours_create_if_absent", the_server_honours_create_if_absent as fn()),
        ("s3::requests_per_commit_and_a_cold_start_from_a_checkpoint", || {
            requests_per_commit_and_a_cold_start_from_a_checkpoint(&s3().url(&fresh()))
        }),
        ("s3::a_restarted_process_reads_records_from_its_cache_directory", || {
            a_restarted_process_reads_records_from_its_cache_directory(&s3().url(&fresh()))
        }),
        ("s3::it_works_called_from_inside_a_tokio_runtime", || {
            it_works_called_from_inside_a_tokio_runtime(s3().url(&fresh()))
        }),
        // 200 each, as moto serves a few hundred requests a second.
        ("s3::processes::four_processes_add_200_each_and_lose_no_update", || {
            let (value, retries) = multiprocess::four_processes_count(&s3_place, 200, false);
            println!("s3, 4 processes: 800 commits, {retries} retries");
            assert_eq!(value, 800);
        }),
        ("s3::processes::a_writer_killed_50_times", || multiprocess::a_writer_killed_50_times_after(&s3_place, 300)),
    ] {
        remote.push(Trial::test(name, move || Ok(test())));
    }
    let wants_s3 = remote.iter().any(|t| args.filter.as_ref().is_none_or(|f| t.name().contains(f.as_str())));
    let server = match moto_available() {
        Ok(()) if wants_s3 && !args.list => S3Server::start().map(Some),
        Ok(()) => Ok(None),
        Err(reason) => Err(reason),
    };
    match server {
        Ok(Some(server)) => {
            for (name, value) in server.environment() {
                // SAFETY: no other thread runs yet: the trials start below,
                // and nothing before this spawned a thread.
                #[allow(unsafe_code)]
                unsafe {
                    std::env::set_var(name, value)
                };
            }
            let _ = S3.set(server);
        }
        Ok(None) => {}
        Err(reason) => {
            if std::env::var("PBPERSIST_REQUIRE_S3").is_ok_and(|v| v == "1") {
                eprintln!("PBPERSIST_REQUIRE_S3=1 but {reason}");
                std::process::exit(101);
            }
            eprintln!("skipping {} S3 tests: {reason}", remote.len());
            remote = remote.into_iter().map(|t| t.with_ignored_flag(true)).collect();
        }
    }
    trials.extend(remote);
    let conclusion = libtest_mimic::run(&args, trials);
    if let Some(server) = S3.get() {
        server.stop();
    }
    conclusion.exit();
}
