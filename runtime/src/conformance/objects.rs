//! Objects through a backend: storing, reopening, identity, laziness,
//! required fields, change tracking, errors, prefetch and gc.

use super::types::{Address, Contact, Tower};
use super::{Backend, contact, tower};
use pbpersist::{Error, Oid, Persistent, Ref};
use std::sync::Arc;

/// Stores a small graph, reopens, and compares every field through the root.
pub fn store_reopen_and_follow_references(backend: &Backend) {
    let (rapunzel, pisa, alice, bob) = {
        let db = backend.open();
        db.transact(|tx| {
            let rapunzel = tx.add(tower("Rapunzel's", 1000.0, 10.0))?;
            let mut p = tower("Pisa", 15.5, 56.7);
            p.set_build_year(1372);
            p.set_neighbor(rapunzel);
            let pisa = tx.add(p)?;
            let mut a = contact("Alice");
            a.address_mut().set_city("Springfield");
            let alice = tx.add(a)?;
            let mut b = contact("Bob");
            b.guardians_mut().push(alice);
            b.set_phone("555-0100");
            b.labels_mut().insert("team".into(), "blue".into());
            let bob = tx.add(b)?;
            let root = tx.root_mut()?;
            root.insert("pisa", pisa);
            root.insert("bob", bob);
            let objects = (tx.get(rapunzel)?, tx.get(pisa)?, tx.get(alice)?, tx.get(bob)?);
            Ok(objects)
        })
        .unwrap()
    };

    let db = backend.open();
    db.transact(|tx| {
        let root = tx.root()?;
        let pisa_ref = root.require::<Tower>("pisa")?;
        let loaded_pisa = tx.get(pisa_ref)?;
        assert_eq!(*loaded_pisa, *pisa);
        assert_eq!(loaded_pisa.build_year(), 1372);
        let loaded_rapunzel = tx.get(loaded_pisa.neighbor().expect("neighbor is set"))?;
        assert_eq!(*loaded_rapunzel, *rapunzel);
        assert_eq!(loaded_rapunzel.build_year(), 1900);
        assert_eq!(loaded_rapunzel.width(), 1000.0);

        let loaded_bob = tx.get(root.require::<Contact>("bob")?)?;
        assert_eq!(*loaded_bob, *bob);
        assert_eq!(loaded_bob.phone(), "555-0100");
        let loaded_alice = tx.get(loaded_bob.guardians()[0])?;
        assert_eq!(*loaded_alice, *alice);
        assert_eq!(loaded_alice.address().country(), "United States");
        assert!(!loaded_alice.is_changed() && !loaded_bob.is_changed());
        Ok(())
    })
    .unwrap();
}

pub fn identity_one_object_per_oid(backend: &Backend) {
    let db = backend.open();
    let r = db.transact(|tx| tx.add(tower("T", 1.0, 2.0))).unwrap();
    let db = backend.open();
    db.transact(|tx| {
        let a = tx.get(r)?;
        let b = tx.get(r)?;
        assert!(Arc::ptr_eq(&a, &b), "the same oid yields the same object");
        let again = tx.get(Ref::<Tower>::new(r.oid()))?;
        assert!(Arc::ptr_eq(&a, &again));
        Ok(())
    })
    .unwrap();
    assert_eq!(db.stats().loads, 1, "the root is not needed; the tower loads once");
}

pub fn references_load_lazily(backend: &Backend) {
    let db = backend.open();
    let bob = db
        .transact(|tx| {
            let alice = tx.add(contact("Alice"))?;
            let carol = tx.add(contact("Carol"))?;
            let mut b = contact("Bob");
            b.guardians_mut().extend([alice, carol]);
            tx.add(b)
        })
        .unwrap();
    let db = backend.open();
    let before = db.stats().loads;
    db.transact(|tx| {
        let b = tx.get(bob)?;
        assert_eq!(db.stats().loads, before + 1, "loading bob loads no guardian");
        assert_eq!(b.guardians().len(), 2);
        let first = tx.get(b.guardians()[0])?;
        assert_eq!(first.name(), "Alice");
        assert_eq!(db.stats().loads, before + 2, "asking for one guardian loads one");
        Ok(())
    })
    .unwrap();
}

pub fn prefetch_loads_many_objects_in_one_call(backend: &Backend) {
    let db = backend.open();
    let refs = db
        .transact(|tx| (0..5).map(|i| tx.add(tower(&format!("t{i}"), 1.0, 1.0))).collect::<Result<Vec<_>, _>>())
        .unwrap();
    let db = backend.open();
    db.transact(|tx| {
        let oids: Vec<Oid> = refs.iter().map(|r| r.oid()).collect();
        assert_eq!(tx.prefetch(oids.iter().copied())?, 5);
        assert_eq!(tx.prefetch(oids)?, 0, "cached objects are not loaded again");
        let loads = db.stats().loads;
        for (i, r) in refs.iter().enumerate() {
            assert_eq!(tx.get(*r)?.name(), format!("t{i}"));
        }
        assert_eq!(db.stats().loads, loads, "every get was answered by the cache");
        Ok(())
    })
    .unwrap();
}

pub fn prefetch_refs_loads_the_graph_below_an_object(backend: &Backend) {
    let db = backend.open();
    // A family tree: the root contact, 3 guardians, 3 guardians each.
    let top = db
        .transact(|tx| {
            let mut top = contact("top");
            for i in 0..3 {
                let mut middle = contact(&format!("m{i}"));
                for j in 0..3 {
                    middle.guardians_mut().push(tx.add(contact(&format!("l{i}{j}")))?);
                }
                top.guardians_mut().push(tx.add(middle)?);
            }
            tx.add(top)
        })
        .unwrap();
    let db = backend.open();
    db.transact(|tx| {
        let before = db.stats().loads;
        assert_eq!(tx.prefetch_refs(top, 5)?, 13, "the top and the 3 + 9 objects below it");
        assert_eq!(db.stats().loads - before, 13, "the top and everything below it");
        let loads = db.stats().loads;
        let mut names = Vec::new();
        for m in tx.get(top)?.guardians() {
            for l in tx.get(*m)?.guardians() {
                names.push(tx.get(*l)?.name().to_owned());
            }
        }
        assert_eq!(names.len(), 9);
        assert_eq!(db.stats().loads, loads, "the traversal needed no load");
        assert_eq!(tx.prefetch_refs(top, 5)?, 0, "nothing left to load");
        Ok(())
    })
    .unwrap();
}

pub fn prefetch_refs_follows_a_chain(backend: &Backend) {
    let db = backend.open();
    let last = db
        .transact(|tx| {
            let mut prev = None;
            for i in 0..300 {
                let mut t = tower(&format!("t{i}"), 1.0, 1.0);
                if let Some(p) = prev {
                    t.set_neighbor(p);
                }
                prev = Some(tx.add(t)?);
            }
            Ok(prev.unwrap())
        })
        .unwrap();
    let db = backend.open();
    db.transact(|tx| {
        assert_eq!(tx.prefetch_refs(last, 99)?, 100, "the last tower and 99 before it");
        let loads = db.stats().loads;
        let mut next = Some(last);
        for _ in 0..100 {
            next = tx.get(next.unwrap())?.neighbor();
        }
        assert_eq!(db.stats().loads, loads, "the first 100 steps needed no load");
        assert_eq!(tx.prefetch_refs(last, 1000)?, 200, "the rest of the chain, past the cached part");
        Ok(())
    })
    .unwrap();
}

pub fn gc_removes_exactly_the_unreachable_objects(backend: &Backend) {
    let db = backend.open();
    let (a, b, c, d, cycle) = db
        .transact(|tx| {
            let b = tx.add(contact("b"))?;
            let mut a = contact("a");
            a.guardians_mut().push(b);
            let a = tx.add(a)?;
            let c = tx.add(contact("c"))?;
            let mut d = contact("d");
            d.guardians_mut().push(c);
            let d = tx.add(d)?;
            // An unreachable cycle is garbage too.
            let x = tx.add(contact("x"))?;
            let mut y = contact("y");
            y.guardians_mut().push(x);
            let y = tx.add(y)?;
            tx.get_mut(x)?.guardians_mut().push(y);
            tx.root_mut()?.insert("a", a);
            Ok((a, b, c, d, [x, y]))
        })
        .unwrap();
    let mut expected = vec![c.oid(), d.oid(), cycle[0].oid(), cycle[1].oid()];
    expected.sort();
    let report = db.gc(true).unwrap();
    assert_eq!(report.unreachable, expected);
    assert!(!report.removed);
    db.transact(|tx| Ok(assert_eq!(tx.get(c)?.name(), "c"))).unwrap();

    let report = db.gc(false).unwrap();
    assert_eq!(report.unreachable, expected);
    assert!(report.removed);
    let db = backend.open();
    db.transact(|tx| {
        assert_eq!(tx.get(a)?.name(), "a");
        assert_eq!(tx.get(b)?.name(), "b");
        for gone in [c.oid(), d.oid()] {
            match tx.get(Ref::<Contact>::new(gone)) {
                Err(Error::NotFound { oid }) => assert_eq!(oid, gone),
                other => panic!("expected {gone} to be gone, got {other:?}"),
            }
        }
        Ok(())
    })
    .unwrap();
    assert!(db.gc(false).unwrap().unreachable.is_empty());
}

pub fn required_field_unset_fails_commit_and_writes_nothing(backend: &Backend) {
    let db = backend.open();
    db.transact(|tx| tx.add(tower("kept", 1.0, 1.0)).map(|_| ())).unwrap();
    let before = db.stats();
    let err = db
        .transact(|tx| {
            let ok = tx.add(tower("fine", 1.0, 1.0))?;
            let mut bad = Tower::new();
            bad.set_width(1.0);
            bad.set_height(1.0);
            let bad = tx.add(bad)?;
            let root = tx.root_mut()?;
            root.insert("ok", ok);
            root.insert("bad", bad);
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(err, Error::Required { .. }), "{err:?}");
    assert!(pbpersist::report(&err).contains("pbpersist.conformance.Tower.name is required but not set"), "{err}");
    assert_eq!(db.stats().commits, before.commits, "nothing was committed");

    let db = backend.open();
    db.transact(|tx| {
        let root = tx.root()?;
        assert!(root.is_empty(), "the root change was not written");
        Ok(())
    })
    .unwrap();
}

pub fn change_tracking_through_transactions(backend: &Backend) {
    let db = backend.open();
    let r = db.transact(|tx| tx.add(tower("T", 1.0, 2.0))).unwrap();
    let written_before = db.stats().objects_written;
    db.transact(|tx| {
        let t = tx.get(r)?;
        assert!(!t.is_changed(), "a loaded object is unchanged");
        // Registered for writing but not changed: nothing is written.
        let _ = tx.get_mut(r)?.height();
        Ok(())
    })
    .unwrap();
    assert_eq!(db.stats().objects_written, written_before, "unchanged objects are skipped");
    db.transact(|tx| {
        let t = tx.get_mut(r)?;
        t.set_height(20.0);
        assert_eq!(t.changed_fields().len(), 1);
        Ok(())
    })
    .unwrap();
    assert_eq!(db.stats().objects_written, written_before + 1);
    db.transact(|tx| {
        let t = tx.get(r)?;
        assert!(!t.is_changed(), "after commit nothing is changed");
        assert_eq!(t.height(), 20.0);
        Ok(())
    })
    .unwrap();
    let db = backend.open();
    db.transact(|tx| {
        assert_eq!(tx.get(r)?.height(), 20.0);
        Ok(())
    })
    .unwrap();
}

pub fn errors_abort_and_discard_changes(backend: &Backend) {
    let db = backend.open();
    let r = db.transact(|tx| tx.add(tower("T", 1.0, 2.0))).unwrap();
    let err = db
        .transact(|tx| {
            tx.get_mut(r)?.set_name("changed");
            tx.get(Ref::<Tower>::new(Oid(1 << 40)))?;
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { oid } if oid == Oid(1 << 40)), "{err:?}");
    db.transact(|tx| {
        assert_eq!(tx.get(r)?.name(), "T", "the aborted change did not leak into the next transaction");
        Ok(())
    })
    .unwrap();

    let mut conn = db.connect().unwrap();
    let mut tx = conn.begin().unwrap();
    tx.get_mut(r).unwrap().set_name("dropped");
    tx.abort();
    let mut tx = conn.begin().unwrap();
    assert_eq!(tx.get(r).unwrap().name(), "T");
    assert_eq!(tx.commit().unwrap(), None, "nothing to write");
}

/// `get_ref` borrows the cached object itself: loaded on first use, the same
/// object `get` returns, changes made through `get_mut` seen, types checked.
pub fn get_ref_borrows_the_cached_object(backend: &Backend) {
    let db = backend.open();
    let r = db.transact(|tx| tx.add(tower("T", 1.0, 2.0))).unwrap();
    let db = backend.open();
    db.transact(|tx| {
        assert_eq!(tx.get_ref(r)?.height(), 2.0, "loaded on first use");
        let borrowed: *const Tower = tx.get_ref(r)?;
        let shared = tx.get(r)?;
        assert!(std::ptr::eq(borrowed, &*shared), "the cached object, not a copy");
        drop(shared);
        tx.get_mut(r)?.set_height(5.0);
        assert_eq!(tx.get_ref(r)?.height(), 5.0);
        assert!(matches!(tx.get_ref(r.cast::<Contact>()), Err(Error::WrongType { oid, .. }) if oid == r.oid()));
        let missing = Ref::<Tower>::new(Oid(r.oid().0 + 1000));
        assert!(matches!(tx.get_ref(missing), Err(Error::NotFound { oid }) if oid == missing.oid()));
        Ok(())
    })
    .unwrap();
    let db = backend.open();
    assert_eq!(db.transact(|tx| Ok(tx.get_ref(r)?.height())).unwrap(), 5.0, "the change was committed");
}

pub fn wrong_type_is_a_typed_error(backend: &Backend) {
    let db = backend.open();
    let r = db.transact(|tx| tx.add(tower("T", 1.0, 2.0))).unwrap();
    let db = backend.open();
    let err = db.transact(|tx| tx.get(r.cast::<Contact>()).map(|_| ())).unwrap_err();
    match err {
        Error::WrongType { oid, expected, found } => {
            assert_eq!(oid, r.oid());
            assert_eq!(expected, "pbpersist.conformance.Contact");
            assert_eq!(found, "pbpersist.conformance.Tower");
        }
        other => panic!("unexpected {other:?}"),
    }
    // Untyped loading goes through the registry of generated types.
    db.transact(|tx| {
        let obj = tx.get_object(r.oid())?;
        assert_eq!(obj.type_name(), "pbpersist.conformance.Tower");
        assert!(obj.as_any().is::<Tower>());
        Ok(())
    })
    .unwrap();
}

pub fn copies_held_by_readers_keep_their_state(backend: &Backend) {
    let db = backend.open();
    let r = db.transact(|tx| tx.add(tower("T", 1.0, 2.0))).unwrap();
    db.transact(|tx| {
        let before = tx.get(r)?;
        tx.get_mut(r)?.set_width(5.0);
        assert_eq!(before.width(), 1.0);
        assert_eq!(tx.get(r)?.width(), 5.0, "the transaction sees its change");
        Ok(())
    })
    .unwrap();
    db.transact(|tx| {
        let mut address = Address::new();
        address.set_city("Rome");
        let a = tx.add(address)?;
        assert_eq!(tx.get(a)?.country(), "United States");
        Ok(())
    })
    .unwrap();
}

pub fn a_session_scans_every_object_in_oid_order_as_of_its_snapshot(backend: &Backend) {
    let db = backend.open();
    let added: Vec<Oid> =
        db.transact(|tx| (0..5).map(|i| Ok(tx.add(tower(&format!("T{i}"), 1.0, 1.0))?.oid())).collect()).unwrap();
    let mut session = db.storage().open_session().unwrap();
    session.begin(None).unwrap();
    // A commit after the snapshot began is not part of the scan.
    db.transact(|tx| tx.add(tower("late", 1.0, 1.0)).map(drop)).unwrap();
    let (mut seen, mut after) = (Vec::new(), None);
    loop {
        let page = session.scan(after, 2).unwrap();
        assert!(page.len() <= 2);
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        for (oid, loaded) in page {
            let record = pbpersist::record::Record::from_bytes(loaded.record.into()).unwrap();
            seen.push((oid, record.r#type));
        }
    }
    session.end().unwrap();
    let mut expected = vec![(Oid::ROOT, "pbpersist.Root".to_owned())];
    expected.extend(added.iter().map(|o| (*o, "pbpersist.conformance.Tower".to_owned())));
    assert_eq!(seen, expected);
    session.begin(None).unwrap();
    assert_eq!(session.scan(None, 100).unwrap().len(), 7, "a new snapshot sees the late object");
    session.end().unwrap();
}
