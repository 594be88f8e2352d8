//! Time travel as a property: random commits on a history-preserving
//! database, then the database as of any tid shows exactly what was
//! committed up to it (memory and SQLite; every backend also runs the
//! suite's seeded version, `conformance::history`).

use pbpersist::storage::History;
use pbpersist::storage::{MemoryStorage, SqliteStorage};
use pbpersist::{Database, Ref, Tid};
use pbpersist_tests::bank::Counter;
use proptest::prelude::*;

/// Each commit sets some of four counters; a counter set twice keeps the last value.
fn commits() -> impl Strategy<Value = Vec<Vec<(usize, i64)>>> {
    prop::collection::vec(prop::collection::vec((0..4usize, -1000..1000i64), 1..4), 1..25)
}

/// Commits `commits` and checks every tid (and one past the last) against
/// the values the commits left.
fn check(db: &Database, commits: &[Vec<(usize, i64)>], probes: &[usize]) {
    let counters: Vec<Ref<Counter>> =
        db.transact(|tx| (0..4).map(|_| tx.add(Counter::new())).collect::<pbpersist::Result<_>>()).unwrap();
    let mut values = [0i64; 4];
    let mut expected: Vec<(Tid, [i64; 4])> = vec![(db.last_transactions(1).unwrap()[0].tid, values)];
    for changes in commits {
        db.transact(|tx| {
            for (i, v) in changes {
                tx.get_mut(counters[*i])?.set_value(*v);
            }
            Ok(())
        })
        .unwrap();
        for (i, v) in changes {
            values[*i] = *v;
        }
        expected.push((db.last_transactions(1).unwrap()[0].tid, values));
    }
    for probe in probes {
        let (tid, want) = expected[probe % expected.len()];
        let got: Vec<i64> =
            db.at(tid).unwrap().transact(|tx| counters.iter().map(|c| Ok(tx.get(*c)?.value())).collect()).unwrap();
        assert_eq!(got, want, "as of tid {tid}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn memory_time_travel_shows_what_was_committed(commits in commits(), probes in prop::collection::vec(0..100usize, 8)) {
        let db = Database::with_storage(MemoryStorage::with_history(History::Preserving)).unwrap();
        check(&db, &commits, &probes);
    }

    #[test]
    fn sqlite_time_travel_shows_what_was_committed(commits in commits(), probes in prop::collection::vec(0..100usize, 8)) {
        let dir = pbpersist_tests::scratch_dir();
        let storage = SqliteStorage::builder(dir.path().join("h.db")).history(History::Preserving).open().unwrap();
        check(&Database::with_storage(storage).unwrap(), &commits, &probes);
    }
}
