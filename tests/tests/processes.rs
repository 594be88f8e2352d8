//! The multi-process tests (`multiprocess/`) over SQLite files, and a pack
//! killed midway.

#![allow(clippy::unit_arg)] // `Ok(x.set_y(..))` keeps one-line transactions readable.

mod multiprocess;

use pbpersist::storage::History;
use pbpersist::storage::{AdminStorage, HistoryStorage, SqliteStorage};
use pbpersist::{Database, Error, Ref, StorageError, Tid};
use pbpersist_tests::bank::Counter;
use std::process::{Command, Stdio};

fn sqlite_file() -> (String, Box<dyn std::any::Any>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("procs.db").to_str().unwrap().to_owned();
    (path, Box::new(dir))
}

#[test]
fn four_processes_lose_no_updates_and_resolution_needs_fewer_retries() {
    multiprocess::four_processes_lose_no_updates_and_resolution_needs_fewer_retries(&sqlite_file);
}

#[test]
fn four_processes_insert_indexed_objects_and_every_one_is_found() {
    multiprocess::four_processes_insert_indexed_objects_and_every_one_is_found(&sqlite_file);
}

#[test]
fn four_processes_insert_into_one_tree_and_every_key_arrives() {
    multiprocess::four_processes_insert_into_one_tree_and_every_key_arrives(&sqlite_file);
}

#[test]
fn a_writer_killed_50_times_loses_no_acknowledged_commit_and_leaves_no_partial_one() {
    multiprocess::a_writer_killed_50_times_loses_no_acknowledged_commit_and_leaves_no_partial_one(&sqlite_file);
}

/// An index build over 20,000 older products, killed with SIGKILL at 20
/// moments while a writer goes on changing products: each kill leaves a
/// database that opens, the build goes on from where it was, and the
/// finished index agrees with every object (`check_indexes`) and with a
/// build from scratch.
#[test]
fn an_index_build_killed_20_times_finishes_as_a_fresh_build() {
    use pbpersist_tests::catalog::Product;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let db = Database::open(&path).unwrap();
    db.build_indexes().unwrap();
    let products: Vec<Ref<Product>> = (0..20)
        .flat_map(|batch| {
            db.transact(|tx| {
                (0..1000)
                    .map(|i| {
                        let mut p = Product::new();
                        p.set_name(format!("p{}", (batch * 1000 + i) % 97));
                        p.set_price_cents(i64::from(i % 300));
                        tx.add(p)
                    })
                    .collect::<pbpersist::Result<Vec<_>>>()
            })
            .unwrap()
        })
        .collect();
    // The products predate the name index: as if it was declared later.
    assert!(db.drop_index(Product::BY_NAME.name()).unwrap());
    db.transact(|tx| Ok(tx.get_mut(products[0])?.set_name("first"))).unwrap();
    for round in 0..20u64 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pbpersist-worker"))
            .args(["index-build", path.to_str().unwrap()])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20 + (round * 37) % 120));
        // A writer goes on meanwhile.
        let p = products[(round as usize * 997) % products.len()];
        db.transact(|tx| Ok(tx.get_mut(p)?.set_name(format!("moved-{round}")))).unwrap();
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
    }
    db.build_indexes().unwrap();
    let checks = db.check_indexes().unwrap();
    assert!(checks.iter().all(|c| c.is_sound() && c.dangling == 0), "{checks:?}");
    let killed: Vec<Vec<Ref<Product>>> =
        db.transact(|tx| (0..97).map(|n| Product::BY_NAME.get(tx, &format!("p{n}"))).collect()).unwrap();
    // The same index built in one go.
    assert!(db.drop_index(Product::BY_NAME.name()).unwrap());
    db.transact(|tx| Ok(tx.get_mut(products[1])?.set_price_cents(1))).unwrap();
    db.build_indexes().unwrap();
    let fresh: Vec<Vec<Ref<Product>>> =
        db.transact(|tx| (0..97).map(|n| Product::BY_NAME.get(tx, &format!("p{n}"))).collect()).unwrap();
    assert_eq!(killed, fresh);
    assert_eq!(killed.iter().map(Vec::len).sum::<usize>(), 20_000 - 20, "all but the renamed");
}

/// A pack of a history-preserving file, killed with SIGKILL at random
/// points 20 times, each time keeping from a later tid: after each kill the
/// file opens, the present is intact, and every tid from the one the pack
/// promised on shows exactly what was committed then.
#[test]
fn a_pack_killed_20_times_keeps_what_it_promised() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let storage = SqliteStorage::builder(&path).history(History::Preserving).open().unwrap();
    let db = Database::with_storage(storage).unwrap();
    let counters: Vec<Ref<Counter>> =
        db.transact(|tx| (0..10).map(|_| tx.add(Counter::new())).collect::<pbpersist::Result<_>>()).unwrap();
    // Transaction i sets every counter to i.
    let mut tids = vec![db.last_transactions(1).unwrap()[0].tid];
    for i in 1..=400 {
        db.transact(|tx| {
            for c in &counters {
                tx.get_mut(*c)?.set_value(i);
            }
            Ok(())
        })
        .unwrap();
        tids.push(db.last_transactions(1).unwrap()[0].tid);
    }
    drop(db);
    let value_at = |t: Tid| tids.iter().rposition(|tid| *tid <= t).unwrap() as i64;
    let mut promised = Tid(0);
    let mut cut = 0;
    for round in 0..20 {
        let keep = tids[20 * round + 10];
        let args = ["pack", path.to_str().unwrap(), &keep.0.to_string(), "2"];
        let mut child =
            Command::new(env!("CARGO_BIN_EXE_pbpersist-worker")).args(args).stdout(Stdio::null()).spawn().unwrap();
        if round % 2 == 0 {
            // At a time that may be before the promise, after it, or after the end.
            std::thread::sleep(std::time::Duration::from_millis(5 + (round as u64 * 7) % 40));
        } else {
            // As soon as the promise is stored: between it and the last batch,
            // however fast this machine deletes.
            let watch = rusqlite::Connection::open(&path).unwrap();
            let promised_now = || {
                watch
                    .query_row("SELECT value FROM pb_meta WHERE key = 'packed_tid'", [], |r| r.get::<_, i64>(0))
                    .is_ok_and(|t| t == keep.0 as i64)
            };
            while !promised_now() && child.try_wait().unwrap().is_none() {
                std::thread::yield_now();
            }
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();

        let left: i64 = rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM pb_object_revision WHERE end_tid <= ?1", [keep.0 as i64], |r| r.get(0))
            .unwrap();
        let storage = SqliteStorage::open(&path).unwrap();
        let packed = storage.packed_tid().unwrap();
        assert!(packed == promised || packed == keep, "round {round}: packed to {packed}");
        // Killed after its promise and before the last batch.
        cut += usize::from(packed == keep && left > 0);
        promised = packed;
        let db = Database::with_storage(storage).unwrap();
        let now: Vec<i64> = db.transact(|tx| counters.iter().map(|c| Ok(tx.get(*c)?.value())).collect()).unwrap();
        assert_eq!(now, vec![400; 10], "round {round}: the present is intact");
        for t in tids.iter().copied().filter(|t| *t >= promised).step_by(37) {
            let past = db.at(t).unwrap();
            let seen: Vec<i64> =
                past.transact(|tx| counters.iter().map(|c| Ok(tx.get(*c)?.value())).collect()).unwrap();
            assert_eq!(seen, vec![value_at(t); 10], "round {round}: as of tid {t}");
        }
        if promised > tids[0] {
            let before = Tid(promised.0 - 1);
            assert!(matches!(db.at(before), Err(Error::Storage(StorageError::Packed { .. }))), "round {round}");
        }
    }
    println!("{cut} of 20 packs were killed between their promise and their last batch");
    assert!(cut > 0, "no pack was killed midway");
    // A pack run to the end removes every state the last promise allows.
    let storage = SqliteStorage::open(&path).unwrap();
    storage.pack(promised, 1000).unwrap();
    let db = Database::with_storage(storage).unwrap();
    let kept = db.history(counters[0].oid(), 1000).unwrap();
    assert_eq!(kept.last().unwrap().tid, *tids.iter().rev().find(|t| **t <= promised).unwrap());
}
