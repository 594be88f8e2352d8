//! Transactions through a backend: lost updates, conflict resolution, write
//! and read conflicts, retries, snapshots, cache bounds and decoding limits.

use super::Backend;
use super::types::Tower;
use super::types::{Account, Counter, Node, ResolvingCounter};
use pbpersist::{Database, Error, Oid, Options, Ref, Tid};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

fn many_attempts() -> Options {
    Options::default().max_attempts(10_000)
}

/// 4 threads each add 1 to one counter `times` times; returns (final value, retries).
fn hammer(db: &Database, resolving: bool, times: usize) -> (i64, u64) {
    let oid = db
        .transact(|tx| {
            Ok(if resolving { tx.add(ResolvingCounter::new())?.oid() } else { tx.add(Counter::new())?.oid() })
        })
        .unwrap();
    let before = db.stats().retries;
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..times {
                    db.transact(|tx| {
                        if resolving {
                            let c = tx.get_mut(Ref::<ResolvingCounter>::new(oid))?;
                            c.set_value(c.value() + 1);
                        } else {
                            let c = tx.get_mut(Ref::<Counter>::new(oid))?;
                            c.set_value(c.value() + 1);
                        }
                        Ok(())
                    })
                    .unwrap();
                }
            });
        }
    });
    let value = db
        .transact(|tx| {
            Ok(if resolving {
                tx.get(Ref::<ResolvingCounter>::new(oid))?.value()
            } else {
                tx.get(Ref::<Counter>::new(oid))?.value()
            })
        })
        .expect("the counter");
    (value, db.stats().retries - before)
}

pub fn four_threads_lose_no_updates_and_resolution_needs_fewer_retries(backend: &Backend) {
    let db = backend.open_with(many_attempts());
    let times = backend.scaled(2000);
    let (plain, plain_retries) = hammer(&db, false, times);
    assert_eq!(plain, 4 * times as i64);
    let resolved_before = db.stats().conflicts_resolved;
    let (resolved, resolving_retries) = hammer(&db, true, times);
    assert_eq!(resolved, 4 * times as i64);
    println!(
        "threads: plain {plain_retries} retries; resolving {resolving_retries} retries, {} conflicts resolved",
        db.stats().conflicts_resolved - resolved_before
    );
    assert!(plain_retries > 0, "4 threads on one counter must collide");
    assert!(resolving_retries < plain_retries, "{resolving_retries} < {plain_retries}");
}

pub fn a_write_conflict_names_the_oid_and_writes_nothing(backend: &Backend) {
    let db = backend.open();
    let (shared, other) = db.transact(|tx| Ok((tx.add(Counter::new())?, tx.add(Counter::new())?))).unwrap();
    let mut first = db.connect().unwrap();
    let mut second = db.connect().unwrap();
    let mut t1 = first.begin().unwrap();
    let mut t2 = second.begin().unwrap();
    t1.get_mut(shared).unwrap().set_value(1);
    t2.get_mut(shared).unwrap().set_value(2);
    t2.get_mut(other).unwrap().set_value(2);
    t1.commit().unwrap();
    match t2.commit() {
        Err(Error::Conflict(c)) => assert_eq!(c.oid, shared.oid()),
        other => panic!("expected a conflict, got {other:?}"),
    }
    backend
        .open()
        .transact(|tx| {
            assert_eq!(tx.get(shared)?.value(), 1);
            assert_eq!(tx.get(other)?.value(), 0, "nothing of the failed transaction was written");
            Ok(())
        })
        .unwrap();
    // The losing connection sees the winner's state in its next transaction.
    let mut t3 = second.begin().unwrap();
    assert_eq!(t3.get(shared).unwrap().value(), 1);
    assert_eq!(t3.get(other).unwrap().value(), 0);
}

pub fn read_current_turns_a_changed_read_into_a_conflict(backend: &Backend) {
    let db = backend.open();
    let (a, bb) = db.transact(|tx| Ok((tx.add(Counter::new())?, tx.add(Counter::new())?))).unwrap();
    let mut c1 = db.connect().unwrap();
    let mut c2 = db.connect().unwrap();

    // Without read_current, writing based on a stale read goes through.
    let mut t1 = c1.begin().unwrap();
    let seen = t1.get(a).unwrap().value();
    c2.transact(|tx| Ok(tx.get_mut(a)?.set_value(5))).unwrap();
    t1.get_mut(bb).unwrap().set_value(seen + 1);
    assert!(t1.commit().is_ok());

    let mut t1 = c1.begin().unwrap();
    t1.read_current(a).unwrap();
    c2.transact(|tx| Ok(tx.get_mut(a)?.set_value(6))).unwrap();
    t1.get_mut(bb).unwrap().set_value(100);
    match t1.commit() {
        Err(Error::Conflict(c)) => assert_eq!(c.oid, a.oid()),
        other => panic!("expected a read conflict, got {other:?}"),
    }
    // A read-only transaction with read_current checks too.
    let mut t1 = c1.begin().unwrap();
    t1.read_current(a).unwrap();
    c2.transact(|tx| Ok(tx.get_mut(a)?.set_value(7))).unwrap();
    assert!(matches!(t1.commit(), Err(Error::Conflict(_))));
}

pub fn transact_retries_see_fresh_state_and_give_up_after_max_attempts(backend: &Backend) {
    let db = backend.open_with(Options::default().max_attempts(3));
    let r = db.transact(|tx| tx.add(Counter::new())).unwrap();
    let before = db.stats().retries;
    let attempts = AtomicU64::new(0);
    let other = db.clone();
    let err = db
        .transact(|tx| {
            let n = attempts.fetch_add(1, Ordering::SeqCst) as i64;
            assert_eq!(tx.get(r)?.value(), n, "each attempt sees the commits before it");
            tx.get_mut(r)?.set_value(100);
            // Another writer always commits first.
            other.transact(|tx2| Ok(tx2.get_mut(r)?.set_value(n + 1)))?;
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(db.stats().retries - before, 2);
}

pub fn a_long_reader_sees_one_consistent_snapshot_while_writers_transfer(backend: &Backend) {
    let db = backend.open_with(many_attempts());
    const ACCOUNTS: usize = 6;
    const TOTAL: i64 = 6000;
    let accounts: Vec<Ref<Account>> = db
        .transact(|tx| {
            (0..ACCOUNTS)
                .map(|i| {
                    let mut a = Account::new();
                    a.set_name(format!("acct-{i}"));
                    a.set_balance(TOTAL / ACCOUNTS as i64);
                    tx.add(a)
                })
                .collect()
        })
        .unwrap();
    let writers_done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let reads = AtomicU64::new(0);
    std::thread::scope(|s| {
        for w in 0..2u64 {
            let (db, accounts, writers_done) = (&db, &accounts, &writers_done);
            s.spawn(move || {
                for i in 0..300u64 {
                    let from = accounts[((i * 7 + w) % ACCOUNTS as u64) as usize];
                    let to = accounts[((i * 13 + w + 1) % ACCOUNTS as u64) as usize];
                    if from == to {
                        continue;
                    }
                    let amount = (i % 50) as i64;
                    db.transact(|tx| {
                        let f = tx.get_mut(from)?;
                        f.set_balance(f.balance() - amount);
                        let t = tx.get_mut(to)?;
                        t.set_balance(t.balance() + amount);
                        Ok(())
                    })
                    .unwrap();
                }
                writers_done.fetch_add(1, Ordering::SeqCst);
            });
        }
        let (db, accounts, writers_done, reads, stop) = (&db, &accounts, &writers_done, &reads, &stop);
        s.spawn(move || {
            let mut conn = db.connect().unwrap();
            while !stop.load(Ordering::SeqCst) {
                let mut tx = conn.begin().unwrap();
                let mut sum = 0;
                for a in accounts {
                    sum += tx.get(*a).unwrap().balance();
                    // Give writers time to commit between reads of one snapshot.
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                assert_eq!(sum, TOTAL, "a snapshot never shows half a transfer");
                tx.abort();
                if reads.fetch_add(1, Ordering::SeqCst) >= 5 && writers_done.load(Ordering::SeqCst) == 2 {
                    stop.store(true, Ordering::SeqCst);
                }
            }
        });
    });
    assert!(reads.load(Ordering::SeqCst) >= 5);
}

pub fn the_cache_stays_within_its_object_bound(backend: &Backend) {
    let db = backend.open_with(Options::default().cache_objects(100));
    let refs: Vec<Ref<Counter>> = db
        .transact(|tx| {
            (0..1000)
                .map(|i| {
                    let mut c = Counter::new();
                    c.set_value(i);
                    tx.add(c)
                })
                .collect()
        })
        .unwrap();
    let before = db.stats().evictions;
    let mut conn = db.connect().unwrap();
    // One long transaction that holds nothing: the cache stays bounded.
    let mut tx = conn.begin().unwrap();
    let kept = tx.get(refs[0]).unwrap();
    for (i, r) in refs.iter().enumerate() {
        assert_eq!(tx.get(*r).unwrap().value(), i as i64);
    }
    assert!(Arc::ptr_eq(&kept, &tx.get(refs[0]).unwrap()), "an object someone holds keeps its identity");
    tx.commit().unwrap();
    assert!(conn.cache_len() <= 100, "cache holds {}", conn.cache_len());
    assert!(db.stats().evictions - before >= 900);
    // Evicted objects load again on demand.
    conn.transact(|tx| Ok(assert_eq!(tx.get(refs[500])?.value(), 500))).unwrap();
}

pub fn the_cache_stays_within_its_byte_bound(backend: &Backend) {
    let db = backend.open_with(Options::default().cache_bytes(64 * 1024));
    let refs: Vec<Ref<Tower>> = db
        .transact(|tx| {
            (0..200)
                .map(|i| {
                    let mut t = Tower::new();
                    t.set_name("x".repeat(1000) + &i.to_string());
                    t.set_width(1.0);
                    t.set_height(1.0);
                    tx.add(t)
                })
                .collect()
        })
        .unwrap();
    let mut conn = db.connect().unwrap();
    conn.transact(|tx| {
        for r in &refs {
            tx.get(*r)?;
        }
        Ok(())
    })
    .unwrap();
    assert!(conn.cache_len() < 64, "about 1.1 KB per object fits 64 KB about 57 times; cached {}", conn.cache_len());
}

pub fn hostile_records_hit_the_size_and_depth_limits(backend: &Backend) {
    let db = backend.open();
    let (tower, deep) = db
        .transact(|tx| {
            let mut t = Tower::new();
            t.set_name("a name longer than twenty bytes");
            t.set_width(1.0);
            t.set_height(1.0);
            let mut node = Node::new();
            for i in 0..20 {
                let mut parent = Node::new();
                parent.set_label(i.to_string());
                parent.set_child(node);
                node = parent;
            }
            Ok((tx.add(t)?, tx.add(node)?))
        })
        .unwrap();

    let strict = backend.open_with(Options::default().max_record_size(20).max_depth(10));
    strict
        .transact(|tx| {
            match tx.get(tower) {
                Err(Error::RecordTooLarge { oid, limit: 20, .. }) => assert_eq!(oid, tower.oid()),
                other => panic!("expected a size error, got {other:?}"),
            }
            Ok(())
        })
        .unwrap();
    let shallow = backend.open_with(Options::default().max_depth(10));
    shallow
        .transact(|tx| {
            match tx.get(deep) {
                Err(Error::Corrupt { oid, source }) => {
                    assert_eq!(oid, deep.oid());
                    assert!(source.to_string().contains("nested deeper"), "{source}");
                }
                other => panic!("expected a depth error, got {other:?}"),
            }
            assert_eq!(tx.get(tower)?.width(), 1.0, "other objects still load");
            Ok(())
        })
        .unwrap();
    backend.open().transact(|tx| Ok(assert_eq!(tx.get(deep)?.label(), "19"))).unwrap();
    let _: Oid = deep.oid();
}

pub fn the_transaction_log_lists_commits_with_their_records(backend: &Backend) {
    let db = backend.open();
    let start = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
    let before = db.last_transactions(1).unwrap().first().map_or(pbpersist::Tid(0), |t| t.tid);
    let (a, b) = db
        .transact(|tx| {
            let a = tx.add(super::tower("A", 1.0, 1.0))?;
            let b = tx.add(super::tower("B", 2.0, 2.0))?;
            Ok((a, b))
        })
        .unwrap();
    db.transact(|tx| Ok(tx.get_mut(a)?.set_height(3.0))).unwrap();
    db.transact(|tx| Ok(tx.root_mut()?.insert("b", b))).unwrap();

    // Newest first, each with the oids it wrote.
    let last = db.last_transactions(3).unwrap();
    let oids: Vec<Option<Vec<Oid>>> = last.iter().map(|t| t.oids.clone()).collect();
    let mut first = vec![a.oid(), b.oid()];
    first.sort_unstable();
    assert_eq!(oids, [Some(vec![Oid::ROOT]), Some(vec![a.oid()]), Some(first.clone())]);
    assert!(last.windows(2).all(|w| w[0].tid > w[1].tid && w[0].time >= w[1].time));
    assert!(last.iter().all(|t| t.time >= start && t.records.is_empty()), "no records unless asked");
    assert_eq!(db.last_transactions(0).unwrap(), []);

    // Oldest first after a tid, with the records still stored: `a` was
    // overwritten by the second transaction, so unless the database keeps
    // history the first lists only `b`'s.
    let after = db.transactions_after(before, 10).unwrap();
    assert_eq!(after.len(), 3);
    assert!(after.windows(2).all(|w| w[0].tid < w[1].tid));
    assert_eq!(after[0].oids, Some(first.clone()));
    let listed: Vec<Oid> = after[0].records.iter().map(|(oid, _)| *oid).collect();
    if db.storage().history_mode() == pbpersist::storage::History::Preserving {
        assert_eq!(listed, first);
    } else {
        assert_eq!(listed, [b.oid()]);
    }
    let record = pbpersist::record::Record::from_bytes(after[1].records[0].1.clone().into()).unwrap();
    assert_eq!((after[1].records[0].0, record.r#type.as_str()), (a.oid(), "pbpersist.conformance.Tower"));
    assert_eq!(db.transactions_after(after[1].tid, 10).unwrap().len(), 1);
    assert_eq!(db.transactions_after(before, 2).unwrap().len(), 2, "the limit holds");
}

pub fn each_commit_keeps_its_user_description_and_extension(backend: &Backend) {
    let db = backend.open();
    let a = db
        .transact(|tx| {
            tx.set_user("ada");
            tx.note("adds a tower");
            tx.note("second line: ünïcode");
            tx.set_extension("request", "r-1");
            tx.set_extension("request", "r-2");
            tx.set_extension("host", "");
            tx.add(super::tower("A", 1.0, 1.0))
        })
        .unwrap();
    db.transact(|tx| Ok(tx.get_mut(a)?.set_height(3.0))).unwrap();
    // Metadata of a transaction that writes nothing is not stored anywhere.
    db.transact(|tx| {
        tx.set_user("nobody");
        tx.get(a).map(drop)
    })
    .unwrap();

    let last = db.last_transactions(2).unwrap();
    let range = pbpersist::storage::TransactionRange {
        after: Tid(0),
        until: None,
        limit: 2,
        newest_first: true,
        records: false,
    };
    assert_eq!(db.transactions(range).unwrap(), last, "the log through a range");
    assert_eq!(last[0].meta, pbpersist::storage::TransactionMeta::default(), "a commit without metadata has none");
    let meta = &last[1].meta;
    assert_eq!((meta.user.as_str(), meta.description.as_str()), ("ada", "adds a tower\nsecond line: ünïcode"));
    let extension: Vec<(&str, &str)> = meta.extension.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(extension, [("host", ""), ("request", "r-2")]);
    // A retried transaction starts without the failed attempt's metadata.
    let attempts = std::sync::atomic::AtomicU32::new(0);
    db.transact(|tx| {
        assert_eq!(tx.meta(), &pbpersist::storage::TransactionMeta::default());
        tx.note("attempt");
        tx.get_mut(a)?.set_height(4.0);
        if attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0 {
            return Err(pbpersist::ConflictError { oid: a.oid() }.into());
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(db.last_transactions(1).unwrap()[0].meta.description, "attempt");
}
