//! Oids and tids at the edges, on the storage itself: `new_oids` refuses
//! counts it cannot hand out and changes nothing, and oids and tids at or
//! above 2^63, which no storage stores, read as the numbers they are: past
//! everything stored. (Commits refusing such oids are in
//! [`commits`](super::commits).)

use super::{Backend, tower};
use pbpersist::storage::{MAX_NEW_OIDS, Session, Storage, TransactionRange};
use pbpersist::{Oid, StorageError, Tid};

/// The numbers at and past 2^63 the tests ask about.
const HUGE: [u64; 3] = [1 << 63, (1 << 63) + 1, u64::MAX];

fn session(storage: &dyn Storage) -> Box<dyn Session> {
    let mut s = storage.open_session().unwrap();
    s.begin(None).unwrap();
    s
}

/// Every stored oid, from a scan.
fn stored(storage: &dyn Storage) -> Vec<Oid> {
    let mut s = session(storage);
    let (mut all, mut after) = (Vec::new(), None);
    loop {
        let page = s.scan(after, 1000).unwrap();
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        all.extend(page.into_iter().map(|(oid, _)| oid));
    }
    all
}

/// A database with a few objects in a few transactions.
fn populated(backend: &Backend) -> pbpersist::Database {
    let db = backend.open();
    for i in 0..3 {
        db.transact(|tx| {
            let t = tx.add(tower(&format!("T{i}"), 1.0, 1.0))?;
            tx.root_mut()?.insert(format!("t{i}"), t);
            Ok(())
        })
        .unwrap();
    }
    db
}

fn range(after: Tid, until: Option<Tid>) -> TransactionRange {
    TransactionRange { after, until, limit: 1000, newest_first: false, records: true }
}

pub fn new_oids_refuses_counts_over_the_limit_or_past_2_63_and_changes_nothing(backend: &Backend) {
    let db = populated(backend);
    let storage = db.storage();
    let first = storage.new_oids(1).unwrap();
    for count in [MAX_NEW_OIDS + 1, 1 << 62, 1 << 63, u64::MAX - 1, u64::MAX] {
        match storage.new_oids(count) {
            Err(StorageError::TooManyOids { count: refused, .. }) => assert_eq!(refused, count),
            // Through a server: its refusal, or the storage's behind it.
            Err(StorageError::Refused { reason, .. }) if storage.name() == "remote" => {
                assert!(reason.contains("oids"), "{reason}");
            }
            other => panic!("new_oids({count}) was not refused: {other:?}"),
        }
    }
    // Nothing was reserved: the next oids are fresh, above every stored
    // one and the last handed out, and below 2^63.
    let highest = stored(storage).into_iter().max().unwrap();
    let next = storage.new_oids(1).unwrap();
    assert_eq!(next.end - next.start, 1, "{next:?}");
    assert!(next.start > highest.0 && next.start >= first.end, "{next:?} after {first:?}, objects up to {highest}");
    assert!(next.end <= 1 << 63);
    let mut s = session(storage);
    assert_eq!(s.load(Oid(next.start)).unwrap(), None);
    // The largest count allowed is allowed.
    let most = storage.new_oids(MAX_NEW_OIDS).unwrap();
    assert_eq!(most.end - most.start, MAX_NEW_OIDS);
    assert!(most.start >= next.end);
}

pub fn new_oids_of_zero_is_an_empty_range(backend: &Backend) {
    let db = populated(backend);
    let storage = db.storage();
    let before = storage.new_oids(1).unwrap();
    assert!(storage.new_oids(0).unwrap().is_empty());
    let after = storage.new_oids(1).unwrap();
    assert!(after.start >= before.end, "{after:?} after {before:?}");
}

pub fn oids_and_tids_past_2_63_read_as_nothing(backend: &Backend) {
    let db = populated(backend);
    let storage = db.storage();
    let all = storage.transactions(range(Tid(0), None)).unwrap();
    assert!(all.len() >= 3, "{all:?}");
    let newest = all.last().unwrap().tid;
    for n in HUGE {
        // Nothing comes after such a tid, and as a bound it bounds nothing.
        assert_eq!(storage.transactions(range(Tid(n), None)).unwrap(), [], "after {n}");
        assert_eq!(storage.transactions(range(Tid(n), Some(Tid(u64::MAX)))).unwrap(), [], "after {n}");
        assert_eq!(storage.transactions(range(Tid(0), Some(Tid(n)))).unwrap(), all, "until {n}");
        let newest_first = TransactionRange { newest_first: true, limit: 1, ..range(Tid(0), Some(Tid(n))) };
        assert_eq!(storage.transactions(newest_first).unwrap()[0].tid, newest, "until {n}");
        assert_eq!(storage.transaction(Tid(n)).unwrap(), None);
        assert_eq!(storage.revisions(Oid(n), 10).unwrap(), []);

        let mut s = storage.open_session().unwrap();
        let snapshot = s.begin(Some(Tid(n))).unwrap();
        assert_eq!(snapshot.tid, newest);
        assert_eq!(snapshot.changed, [], "nothing was committed after tid {n}");
        assert_eq!(s.load(Oid(n)).unwrap(), None, "load of {n}");
        let loaded = s.load_many(&[Oid(n), Oid::ROOT]).unwrap();
        assert_eq!(loaded.iter().map(|l| l.0).collect::<Vec<_>>(), [Oid::ROOT]);
        assert_eq!(s.load_reachable(&[Oid(n)], 3, 100).unwrap(), []);
        assert_eq!(s.scan(Some(Oid(n)), 100).unwrap(), [], "scan after {n}");
        s.end().unwrap();
    }
}

pub fn a_tid_past_every_commit_means_the_newest_one(backend: &Backend) {
    let db = populated(backend);
    let storage = db.storage();
    let Some(history) = storage.history() else { return };
    let newest = session(storage).begin(None).unwrap().tid;
    let root = session(storage).load(Oid::ROOT).unwrap().unwrap();
    for n in HUGE {
        let mut past = history.open_session_at(Tid(n)).unwrap();
        assert_eq!(past.begin(None).unwrap().tid, newest);
        assert_eq!(past.load(Oid::ROOT).unwrap().as_ref(), Some(&root));
        assert_eq!(past.load(Oid(n)).unwrap(), None);
        assert_eq!(past.scan(Some(Oid(n)), 10).unwrap(), []);
        past.end().unwrap();
    }
    // A pack before such a tid packs up to the newest commit: the replaced
    // states go, and the database as of the newest commit stays readable.
    assert!(storage.admin().unwrap().pack(Tid(u64::MAX), 1000).unwrap() > 0, "the root's replaced states are removed");
    assert!(history.packed_tid().unwrap() <= newest);
    let mut past = history.open_session_at(newest).unwrap();
    past.begin(None).unwrap();
    assert_eq!(past.load(Oid::ROOT).unwrap(), Some(root));
    past.end().unwrap();
    db.transact(|tx| tx.add(tower("after the pack", 1.0, 1.0)).map(drop)).unwrap();
}
