//! History through a backend: revisions, the database as of a tid or a time,
//! undo, and gc keeping removed states. Each test runs in the mode the
//! backend's database was created with: a history-free one must refuse the
//! past with a typed error and keep its current state unchanged.

use super::types::{Counter, Tower};
use super::{Backend, tower};
use pbpersist::storage::History;
use pbpersist::{Database, Error, Oid, Ref, StorageError, Tid, UndoError};

fn keeps_history(db: &Database) -> bool {
    db.storage().history_mode() == History::Preserving
}

fn no_history<T: std::fmt::Debug>(result: pbpersist::Result<T>) {
    match result {
        Err(Error::Storage(StorageError::NoHistory { .. })) => {}
        other => panic!("expected a history-free refusal, got {other:?}"),
    }
}

fn last_tid(db: &Database) -> Tid {
    db.last_transactions(1).unwrap()[0].tid
}

fn height(db: &Database, r: Ref<Tower>) -> pbpersist::Result<f32> {
    db.transact(|tx| Ok(tx.get(r)?.height()))
}

pub fn history_lists_each_revision_with_its_transaction(backend: &Backend) {
    let db = backend.open();
    let pisa = db
        .transact(|tx| {
            tx.set_user("ada");
            tx.note("builds Pisa");
            tx.add(tower("Pisa", 15.5, 56.0))
        })
        .unwrap();
    let first = last_tid(&db);
    for h in [57.0, 58.0] {
        db.transact(|tx| {
            tx.set_user("bob");
            Ok(tx.get_mut(pisa)?.set_height(h))
        })
        .unwrap();
    }
    let revisions = db.history(pisa.oid(), 10).unwrap();
    let users: Vec<&str> = revisions.iter().map(|r| r.meta.user.as_str()).collect();
    let tids: Vec<Tid> = revisions.iter().map(|r| r.tid).collect();
    assert!(tids.windows(2).all(|w| w[0] > w[1]), "newest first: {tids:?}");
    assert_eq!(tids[0], last_tid(&db));
    assert!(revisions.iter().all(|r| r.size > 10 && r.time > std::time::UNIX_EPOCH));
    if keeps_history(&db) {
        assert_eq!(users, ["bob", "bob", "ada"]);
        assert_eq!((revisions[2].tid, revisions[2].meta.description.as_str()), (first, "builds Pisa"));
        assert_eq!(db.history(pisa.oid(), 2).unwrap().len(), 2, "the limit holds");
    } else {
        assert_eq!(users, ["bob"], "a history-free database lists the current state only");
    }
    assert_eq!(db.history(Oid(999_999_999), 10).unwrap(), [], "no object, no history");
}

pub fn the_database_at_a_tid_loads_every_object_as_of_it(backend: &Backend) {
    let db = backend.open();
    let (pisa, rapunzel) = db
        .transact(|tx| {
            let rapunzel = tx.add(tower("Rapunzel", 1.0, 10.0))?;
            let mut pisa = tower("Pisa", 15.5, 56.0);
            pisa.set_neighbor(rapunzel);
            let pisa = tx.add(pisa)?;
            tx.root_mut()?.insert("pisa", pisa);
            Ok((pisa, rapunzel))
        })
        .unwrap();
    let built = last_tid(&db);
    let between = std::time::SystemTime::now();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let eiffel = db
        .transact(|tx| {
            tx.get_mut(pisa)?.set_height(57.0);
            tx.get_mut(rapunzel)?.set_height(11.0);
            let eiffel = tx.add(tower("Eiffel", 125.0, 330.0))?;
            tx.get_mut(pisa)?.set_neighbor(eiffel);
            Ok(eiffel)
        })
        .unwrap();
    if !keeps_history(&db) {
        no_history(db.at(built));
        no_history(db.before(between));
        assert_eq!(height(&db, pisa).unwrap(), 57.0);
        return;
    }
    for past in [db.at(built).unwrap(), db.before(between).unwrap()] {
        assert!(past.is_read_only());
        past.transact(|tx| {
            assert_eq!(tx.snapshot_tid(), built);
            let named = tx.root()?.require::<Tower>("pisa")?;
            let pisa = tx.get(named)?;
            assert_eq!(pisa.height(), 56.0);
            // References are followed at the same point.
            let neighbor = tx.get(pisa.neighbor().unwrap())?;
            assert_eq!((neighbor.name(), neighbor.height()), ("Rapunzel", 10.0));
            assert!(matches!(tx.get(eiffel), Err(Error::NotFound { .. })), "not yet built");
            Ok(())
        })
        .unwrap();
        match past.transact(|tx| Ok(tx.get_mut(pisa)?.set_height(1.0))) {
            Err(Error::Storage(StorageError::ReadOnly { .. })) => {}
            other => panic!("the past is read-only, got {other:?}"),
        }
    }
    // The present is unchanged, and a tid past the newest shows the present.
    assert_eq!(height(&db, pisa).unwrap(), 57.0);
    assert_eq!(height(&db.at(Tid(u64::MAX >> 1)).unwrap(), pisa).unwrap(), 57.0);
    let empty = db.before(std::time::UNIX_EPOCH).unwrap();
    assert!(empty.transact(|tx| tx.get(pisa).map(drop)).is_err(), "before everything, nothing exists");
    // The log of the past ends at its tid.
    assert_eq!(db.at(built).unwrap().last_transactions(1).unwrap()[0].tid, built);
}

/// Commits pseudo-random changes to a few counters, remembers every
/// counter's value after each commit, and checks the database as of each
/// tid against it: time travel agrees with what was committed.
pub fn every_past_tid_shows_exactly_what_was_committed_then(backend: &Backend) {
    let db = backend.open();
    if !keeps_history(&db) {
        return no_history(db.at(Tid(1)));
    }
    let counters: Vec<Ref<Counter>> =
        db.transact(|tx| (0..6).map(|_| tx.add(Counter::new())).collect::<pbpersist::Result<_>>()).unwrap();
    let mut values = vec![0i64; counters.len()];
    let mut expected: Vec<(Tid, Vec<i64>)> = vec![(last_tid(&db), values.clone())];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..40 {
        let changes: Vec<(usize, i64)> =
            (0..1 + next() % 3).map(|_| ((next() % 6) as usize, (next() % 1000) as i64)).collect();
        db.transact(|tx| {
            for (i, v) in &changes {
                tx.get_mut(counters[*i])?.set_value(*v);
            }
            Ok(())
        })
        .unwrap();
        for (i, v) in &changes {
            values[*i] = *v;
        }
        expected.push((last_tid(&db), values.clone()));
    }
    for _ in 0..15 {
        let (tid, want) = &expected[(next() % expected.len() as u64) as usize];
        let past = db.at(*tid).unwrap();
        let got: Vec<i64> = past.transact(|tx| counters.iter().map(|c| Ok(tx.get(*c)?.value())).collect()).unwrap();
        assert_eq!(&got, want, "as of tid {tid}");
    }
}

pub fn undo_restores_what_a_transaction_replaced(backend: &Backend) {
    let db = backend.open();
    let pisa = db.transact(|tx| tx.add(tower("Pisa", 15.5, 56.0))).unwrap();
    db.transact(|tx| Ok(tx.get_mut(pisa)?.set_height(57.0))).unwrap();
    let mistake = last_tid(&db);
    if !keeps_history(&db) {
        no_history(db.undo(&[mistake]));
        assert_eq!(height(&db, pisa).unwrap(), 57.0);
        return;
    }
    // The last transaction.
    let undo = db.undo(&[mistake]).unwrap();
    assert_eq!(height(&db, pisa).unwrap(), 56.0);
    let logged = &db.last_transactions(1).unwrap()[0];
    assert_eq!((logged.tid, logged.meta.description.clone()), (undo, format!("undo of transaction {mistake}")));
    // An undo is itself undone like any transaction.
    db.undo(&[undo]).unwrap();
    assert_eq!(height(&db, pisa).unwrap(), 57.0);

    // An older transaction that nothing later touched.
    let other = db.transact(|tx| tx.add(tower("Other", 1.0, 1.0))).unwrap();
    db.transact(|tx| Ok(tx.get_mut(other)?.set_height(2.0))).unwrap();
    let older = last_tid(&db);
    db.transact(|tx| Ok(tx.get_mut(pisa)?.set_height(58.0))).unwrap();
    let changed = last_tid(&db);
    db.undo(&[older]).unwrap();
    assert_eq!((height(&db, other).unwrap(), height(&db, pisa).unwrap()), (1.0, 58.0));

    // Refused when a later transaction changed the object; nothing written.
    db.transact(|tx| Ok(tx.get_mut(pisa)?.set_height(59.0))).unwrap();
    let before = last_tid(&db);
    match db.undo(&[changed]) {
        Err(Error::Undo(UndoError::Changed { oids })) => assert_eq!(oids, [pisa.oid()]),
        other => panic!("expected a refusal naming Pisa, got {other:?}"),
    }
    assert_eq!((last_tid(&db), height(&db, pisa).unwrap()), (before, 59.0));
    // Undone together with the later one, it goes back before both.
    db.undo(&[changed, before]).unwrap();
    assert_eq!(height(&db, pisa).unwrap(), 57.0);
    match db.undo(&[Tid(u64::MAX >> 1)]) {
        Err(Error::Undo(UndoError::UnknownTransaction(_))) => {}
        other => panic!("expected an unknown transaction, got {other:?}"),
    }
}

pub fn undoing_a_creation_leaves_the_object_unreachable(backend: &Backend) {
    let db = backend.open();
    if !keeps_history(&db) {
        return;
    }
    let eiffel = db
        .transact(|tx| {
            let eiffel = tx.add(tower("Eiffel", 125.0, 330.0))?;
            tx.root_mut()?.insert("eiffel", eiffel);
            Ok(eiffel)
        })
        .unwrap();
    let created = last_tid(&db);
    db.undo(&[created]).unwrap();
    db.transact(|tx| Ok(assert!(tx.root()?.get::<Tower>("eiffel").is_none()))).unwrap();
    assert_eq!(db.gc(false).unwrap().unreachable, [eiffel.oid()]);
}

pub fn undo_takes_part_in_conflict_detection(backend: &Backend) {
    let db = backend.open();
    if !keeps_history(&db) {
        return;
    }
    let pisa = db.transact(|tx| tx.add(tower("Pisa", 15.5, 56.0))).unwrap();
    db.transact(|tx| Ok(tx.get_mut(pisa)?.set_height(57.0))).unwrap();
    let mistake = last_tid(&db);
    // A transaction that read Pisa before the undo cannot overwrite it after.
    let mut conn = db.connect().unwrap();
    let mut tx = conn.begin().unwrap();
    tx.get_mut(pisa).unwrap().set_height(100.0);
    db.undo(&[mistake]).unwrap();
    assert!(matches!(tx.commit(), Err(Error::Conflict(c)) if c.oid == pisa.oid()));
    assert_eq!(height(&db, pisa).unwrap(), 56.0);
    // A writer racing undo on another thread: the undo wins or is refused,
    // and no committed value is lost.
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            for h in 0..50 {
                db.transact(|tx| Ok(tx.get_mut(pisa)?.set_height(200.0 + h as f32))).unwrap();
            }
        })
    };
    let mut undone = 0;
    for _ in 0..50 {
        let tid = db.history(pisa.oid(), 1).unwrap()[0].tid;
        match db.undo(&[tid]) {
            Ok(_) => undone += 1,
            Err(Error::Undo(UndoError::Changed { .. })) => {}
            Err(e) => panic!("{e}"),
        }
    }
    writer.join().unwrap();
    println!("{undone} of 50 undos went through beside a writer");
    assert!(height(&db, pisa).unwrap() >= 56.0);
}

pub fn gc_keeps_removed_states_in_the_history(backend: &Backend) {
    let db = backend.open();
    let lonely = db.transact(|tx| tx.add(tower("Lonely", 1.0, 1.0))).unwrap();
    let before_gc = last_tid(&db);
    assert_eq!(db.gc(false).unwrap().unreachable, [lonely.oid()]);
    let fresh = backend.open();
    assert!(fresh.transact(|tx| tx.get(lonely).map(drop)).is_err(), "removed from the present");
    if !keeps_history(&db) {
        return;
    }
    let gc = &db.last_transactions(1).unwrap()[0];
    assert!(gc.tid > before_gc && gc.meta.description.starts_with("gc:"), "{gc:?}");
    assert_eq!(gc.oids.as_deref(), Some(&[lonely.oid()][..]));
    assert_eq!(height(&db.at(before_gc).unwrap(), lonely).unwrap(), 1.0, "the past still has it");
    assert_eq!(db.history(lonely.oid(), 10).unwrap().len(), 1);
}

pub fn pack_keeps_what_it_promised_and_removes_the_rest(backend: &Backend) {
    let db = backend.open();
    let (pisa, lonely) = db
        .transact(|tx| {
            let pisa = tx.add(tower("Pisa", 15.5, 50.0))?;
            tx.root_mut()?.insert("pisa", pisa);
            Ok((pisa, tx.add(tower("Lonely", 1.0, 1.0))?))
        })
        .unwrap();
    let mut tids = vec![last_tid(&db)];
    for h in 51..55 {
        db.transact(|tx| Ok(tx.get_mut(pisa)?.set_height(h as f32))).unwrap();
        tids.push(last_tid(&db));
    }
    // Everything was committed within the hour: nothing to remove but `lonely`.
    let report = db.pack(std::time::Duration::from_secs(3600)).unwrap();
    assert_eq!((report.states_removed, report.unreachable.clone()), (0, vec![lonely.oid()]));
    if !keeps_history(&db) {
        assert_eq!(db.pack(tids[3]).unwrap().states_removed, 0, "a history-free pack is gc");
        return;
    }
    let report = db.pack(pbpersist::Keep::From(tids[2])).unwrap();
    // Pisa's states written at tids[0] and tids[1] were replaced by tids[2].
    assert!(report.states_removed >= 2, "{report:?}");
    assert_eq!(db.storage().history().unwrap().packed_tid().unwrap(), tids[2]);
    let kept: Vec<Tid> = db.history(pisa.oid(), 10).unwrap().iter().map(|r| r.tid).collect();
    assert_eq!(kept, [tids[4], tids[3], tids[2]]);
    for (i, tid) in tids.iter().enumerate().skip(2) {
        assert_eq!(height(&db.at(*tid).unwrap(), pisa).unwrap(), 50.0 + i as f32);
    }
    match db.at(tids[1]) {
        Err(Error::Storage(StorageError::Packed { at, packed, .. })) => assert_eq!((at, packed), (tids[1], tids[2])),
        other => panic!("expected a packed refusal, got {:?}", other.map(|_| ())),
    }
    // Undoing back to before the kept tid would need a removed state.
    let undone = db.undo(&tids[2..]);
    assert!(matches!(undone, Err(Error::Storage(StorageError::Packed { .. }))), "{undone:?}");
    // A later pack to an earlier tid keeps the promise of the first.
    db.pack(tids[0]).unwrap();
    assert_eq!(db.storage().history().unwrap().packed_tid().unwrap(), tids[2]);
    // The state gc removed stays until a pack passes its removal.
    let gc = db.last_transactions(10).unwrap().into_iter().find(|t| t.meta.description.starts_with("gc:")).unwrap();
    assert_eq!(height(&db.at(Tid(gc.tid.0 - 1)).unwrap(), lonely).unwrap(), 1.0);
    db.pack(gc.tid).unwrap();
    assert_eq!(db.history(lonely.oid(), 10).unwrap(), []);
    assert_eq!(height(&db, pisa).unwrap(), 54.0, "the present is untouched");
}
