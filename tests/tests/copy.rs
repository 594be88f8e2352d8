//! Copying databases between storages (`pbpersist::storage::copy`): whole,
//! incrementally, with and without history, and refusing a destination
//! that is not an earlier copy. PostgreSQL round trips are in `pg/`.
#![allow(clippy::unit_arg)] // `Ok(..set_value(..))` keeps one-line transactions readable.

use pbpersist::storage::History;
use pbpersist::storage::{MemoryStorage, SqliteStorage, Storage, copy};
use pbpersist::{Database, Ref, Tid};
use pbpersist_tests::bank::Counter;
use pbpersist_tests::dump::dump;
use pbpersist_tests::scratch_dir;

/// A history-preserving SQLite file with changes, metadata, a gc and a
/// pack's worth of history: returns its path and the counters.
fn source(dir: &std::path::Path, history: History) -> (std::path::PathBuf, Vec<Ref<Counter>>) {
    let path = dir.join("source.db");
    let db = Database::with_storage(SqliteStorage::builder(&path).history(history).open().unwrap()).unwrap();
    pbpersist_examples::tower::store_in(&db).unwrap();
    let counters: Vec<Ref<Counter>> = db
        .transact(|tx| {
            let counters = (0..3).map(|_| tx.add(Counter::new())).collect::<pbpersist::Result<Vec<_>>>()?;
            tx.root_mut()?.insert("first", counters[0]);
            tx.root_mut()?.insert("second", counters[1]);
            Ok(counters)
        })
        .unwrap();
    for i in 1..=5 {
        db.transact(|tx| {
            tx.set_user(format!("user {i}"));
            tx.set_extension("round", i.to_string());
            for c in &counters {
                tx.get_mut(*c)?.set_value(i);
            }
            Ok(())
        })
        .unwrap();
    }
    // The third counter is unreachable: gc removes it.
    db.gc(false).unwrap();
    (path, counters)
}

fn sqlite(path: &std::path::Path, history: History) -> SqliteStorage {
    SqliteStorage::builder(path).history(history).open().unwrap()
}

#[test]
fn a_history_preserving_copy_keeps_every_state_and_the_log() {
    let dir = scratch_dir();
    let (path, counters) = source(dir.path(), History::Preserving);
    let from = sqlite(&path, History::Preserving);
    let memory = MemoryStorage::with_history(History::Preserving);
    let report = copy(&from, &memory, &mut |_| {}).unwrap();
    assert_eq!(report.last, dump(&from).transactions.last().unwrap().tid);
    let back = sqlite(&dir.path().join("back.db"), History::Preserving);
    copy(&memory, &back, &mut |_| {}).unwrap();
    let original = dump(&from);
    assert!(original.histories.iter().any(|(_, h)| h.len() == 6), "five changes and the creation are kept");
    assert_eq!(dump(&memory), original);
    assert_eq!(dump(&back), original);
    assert_eq!(back.schemas().unwrap(), from.schemas().unwrap(), "the stored .proto files came along");

    // The copy is a working database: the past, undo, and new oids above the copied ones.
    let db = Database::with_storage(back).unwrap();
    let first = original.transactions.iter().find(|t| t.meta.user == "user 1").unwrap().tid;
    let then = db.at(first).unwrap().transact(|tx| Ok(tx.get(counters[2])?.value())).unwrap();
    assert_eq!(then, 1, "the state gc removed is in the copy's history");
    let added = db.transact(|tx| tx.add(Counter::new())).unwrap();
    assert!(added.oid() > counters[2].oid());
    let last = db.last_transactions(1).unwrap()[0].tid;
    db.undo(&[last]).unwrap();
}

#[test]
fn a_copy_resumes_where_the_last_one_stopped() {
    let dir = scratch_dir();
    let (path, counters) = source(dir.path(), History::Preserving);
    let to = sqlite(&dir.path().join("copy.db"), History::Preserving);
    let first = copy(&sqlite(&path, History::Preserving), &to, &mut |_| {}).unwrap();
    let db = Database::open(&path).unwrap();
    for i in 10..13 {
        db.transact(|tx| Ok(tx.get_mut(counters[0])?.set_value(i))).unwrap();
    }
    let mut seen = Vec::new();
    let second = copy(db.storage(), &to, &mut |t| seen.push(t.tid)).unwrap();
    assert_eq!((second.transactions, seen.len()), (3, 3), "only what the copy lacked");
    assert!(seen.iter().all(|t| *t > first.last));
    assert_eq!(dump(&to), dump(db.storage()));
    assert_eq!(copy(db.storage(), &to, &mut |_| {}).unwrap().transactions, 0, "nothing new, nothing copied");
}

#[test]
fn a_destination_that_is_not_an_earlier_copy_is_refused() {
    let dir = scratch_dir();
    let (path, _) = source(dir.path(), History::Free);
    let other = dir.path().join("other.db");
    // Its own root transaction is not the source's.
    drop(Database::open(&other).unwrap());
    let to = SqliteStorage::open(&other).unwrap();
    let before = dump(&to);
    let err = copy(&SqliteStorage::open(&path).unwrap(), &to, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("not an earlier copy"), "{err}");
    assert_eq!(dump(&to), before, "nothing was written");
}

#[test]
fn a_history_free_copy_finds_records_whose_transactions_lost_their_oid_lists() {
    let dir = scratch_dir();
    let (path, counters) = source(dir.path(), History::Free);
    // As if the lists had aged out of the newest 10,000 transactions.
    let last = Database::open(&path).unwrap().last_transactions(1).unwrap()[0].tid;
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE pb_transaction SET oids = NULL WHERE tid < ?1", [last.0 as i64 - 1])
        .unwrap();
    let from = SqliteStorage::open(&path).unwrap();
    let to = MemoryStorage::new();
    copy(&from, &to, &mut |_| {}).unwrap();
    assert_eq!(dump(&to).objects, dump(&from).objects, "every current state, with its tid");
    let db = Database::with_storage(to).unwrap();
    assert_eq!(db.transact(|tx| Ok(tx.get(counters[1])?.value())).unwrap(), 5);
    let listed: Vec<Tid> = db.transactions_after(Tid(0), 100).unwrap().iter().map(|t| t.tid).collect();
    assert_eq!(listed.len(), Database::open(&path).unwrap().transactions_after(Tid(0), 100).unwrap().len());
}
