//! Indexes through a backend: entries follow adds and changes in the same
//! commit, a failed or retried commit leaves none behind, unique keys are
//! refused (also between racing writers), concurrent inserts all arrive,
//! and a view of the past reads the index as it was.

use super::Backend;
use super::types::Item;
use crate::index::Index;
use crate::storage::History;
use pbpersist::{Database, Error, Ref, Tid};

fn optional(has: bool, value: &str) -> Vec<String> {
    if has { vec![value.to_owned()] } else { Vec::new() }
}

/// Items by name.
pub static ITEM_BY_NAME: Index<Item, String> =
    Index::new("pbpersist.conformance.Item.name", |i| optional(i.has_name(), i.name()));
/// Items by code, one item per code.
pub static ITEM_BY_CODE: Index<Item, String> =
    Index::new("pbpersist.conformance.Item.code", |i: &Item| optional(i.has_code(), i.code())).unique();
/// Items by size.
pub static ITEM_BY_SIZE: Index<Item, i64> =
    Index::new("pbpersist.conformance.Item.size", |i| if i.has_size() { vec![i.size()] } else { Vec::new() });
/// Items by each of their tags.
pub static ITEM_BY_TAG: Index<Item, String> = Index::new("pbpersist.conformance.Item.tags", |i| i.tags().to_vec());

/// Items by name, then size: a composite key, declared by hand.
pub static ITEM_BY_NAME_AND_SIZE: Index<Item, (String, i64)> =
    Index::new("pbpersist.conformance.Item.name+size", |i| {
        if i.has_name() && i.has_size() { vec![(i.name().to_owned(), i.size())] } else { Vec::new() }
    });

crate::register_index!(ITEM_BY_NAME_AND_SIZE);
crate::register_index!(ITEM_BY_NAME);
crate::register_index!(ITEM_BY_CODE);
crate::register_index!(ITEM_BY_SIZE);
crate::register_index!(ITEM_BY_TAG);

/// A run's own prefix, so tests sharing a database do not see each other's items.
fn prefix(test: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static RUN: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{test}-{nanos}-{}-", RUN.fetch_add(1, Ordering::Relaxed))
}

fn item(name: &str, code: Option<&str>, size: i64, tags: &[&str]) -> Item {
    let mut i = Item::new();
    i.set_name(name);
    if let Some(code) = code {
        i.set_code(code);
    }
    i.set_size(size);
    i.set_tags(tags.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>());
    i
}

fn names(db: &Database, found: &[Ref<Item>]) -> Vec<String> {
    db.transact(|tx| found.iter().map(|r| Ok(tx.get(*r)?.name().to_owned())).collect()).unwrap()
}

fn last_tid(db: &Database) -> Tid {
    db.last_transactions(1).unwrap().first().map_or(Tid(0), |t| t.tid)
}

/// A database with the indexes built.
fn open(backend: &Backend) -> Database {
    let db = backend.open();
    db.build_indexes().unwrap();
    db
}

pub fn entries_follow_adds_and_changes_in_the_same_commit(backend: &Backend) {
    let db = open(backend);
    let p = prefix("follow");
    let key = |s: &str| format!("{p}{s}");
    let (a, b) = db
        .transact(|tx| {
            let a = tx.add(item(&key("a"), None, 10, &[&key("red"), &key("big")]))?;
            let b = tx.add(item(&key("b"), None, 20, &[&key("red")]))?;
            Ok((a, b))
        })
        .unwrap();
    let at_first = last_tid(&db);
    db.transact(|tx| {
        assert_eq!(ITEM_BY_NAME.get(tx, &key("a"))?, [a]);
        assert_eq!(ITEM_BY_TAG.get(tx, &key("red"))?, [a, b]);
        assert_eq!(ITEM_BY_TAG.get(tx, &key("big"))?, [a]);
        assert_eq!(ITEM_BY_NAME.range(tx, key("a")..=key("b"), usize::MAX)?, [a, b]);
        assert_eq!(ITEM_BY_NAME.range(tx, key("a")..key("b"), usize::MAX)?, [a]);
        assert_eq!(ITEM_BY_NAME.range(tx, (std::ops::Bound::Excluded(key("a")), std::ops::Bound::Unbounded), 1)?, [b]);
        assert_eq!(ITEM_BY_TAG.count(tx, key("red")..=key("red"))?, 2);
        Ok(())
    })
    .unwrap();

    // A change moves the entries of the fields it changed, and only those.
    db.transact(|tx| {
        let a = tx.get_mut(a)?;
        a.set_name(key("c"));
        a.set_tags(vec![key("big")]);
        Ok(())
    })
    .unwrap();
    db.transact(|tx| {
        assert_eq!(ITEM_BY_NAME.get(tx, &key("a"))?, []);
        assert_eq!(ITEM_BY_NAME.get(tx, &key("c"))?, [a]);
        assert_eq!(ITEM_BY_TAG.get(tx, &key("red"))?, [b]);
        assert_eq!(ITEM_BY_TAG.get(tx, &key("big"))?, [a]);
        Ok(())
    })
    .unwrap();
    assert_eq!(names(&db, &[a, b]), [key("c"), key("b")]);

    // A transaction that fails after indexing leaves no entry behind.
    let failed = db.transact(|tx| {
        tx.add(item(&key("ghost"), None, 1, &[]))?;
        tx.get_mut(b)?.set_name(key("renamed"));
        Err::<(), _>(Error::NotFound { oid: crate::Oid(u64::MAX >> 2) })
    });
    assert!(failed.is_err());
    db.transact(|tx| {
        assert_eq!(ITEM_BY_NAME.get(tx, &key("ghost"))?, []);
        assert_eq!(ITEM_BY_NAME.get(tx, &key("renamed"))?, []);
        assert_eq!(ITEM_BY_NAME.get(tx, &key("b"))?, [b]);
        Ok(())
    })
    .unwrap();

    // A view of the past reads the index as it was.
    if db.storage().history_mode() == History::Preserving {
        let past = db.at(at_first).unwrap();
        past.transact(|tx| {
            assert_eq!(ITEM_BY_NAME.get(tx, &key("a"))?, [a]);
            assert_eq!(ITEM_BY_NAME.get(tx, &key("c"))?, []);
            assert_eq!(ITEM_BY_TAG.get(tx, &key("red"))?, [a, b]);
            Ok(())
        })
        .unwrap();
    }
}

pub fn ranges_of_integers_order_negatives_first(backend: &Backend) {
    let db = open(backend);
    let p = prefix("sizes");
    // Sizes far from any other test's.
    let base = i64::MIN + 1_000;
    let sizes = [base + 5, base, base + 3, base + 1];
    let refs: Vec<Ref<Item>> =
        db.transact(|tx| sizes.iter().map(|s| tx.add(item(&format!("{p}{s}"), None, *s, &[]))).collect()).unwrap();
    db.transact(|tx| {
        let found = ITEM_BY_SIZE.range(tx, base..=base + 3, usize::MAX)?;
        assert_eq!(found, [refs[1], refs[3], refs[2]]);
        assert_eq!(ITEM_BY_SIZE.count(tx, base..base + 100)?, 4);
        assert_eq!(ITEM_BY_SIZE.range(tx, base..base + 100, 2)?, [refs[1], refs[3]]);
        Ok(())
    })
    .unwrap();
}

pub fn a_unique_key_is_refused_to_a_second_object_and_nothing_is_written(backend: &Backend) {
    let db = open(backend);
    let code = prefix("unique");
    let first = db.transact(|tx| tx.add(item("first", Some(&code), 1, &[]))).unwrap();
    let before = last_tid(&db);
    let refused = db.transact(|tx| tx.add(item("second", Some(&code), 2, &[])));
    match refused {
        Err(Error::Unique { index, key, existing, .. }) => {
            assert_eq!(index, ITEM_BY_CODE.name());
            assert_eq!(key, format!("{code:?}"));
            assert_eq!(existing, first.oid());
        }
        other => panic!("expected a unique-index error, got {other:?}"),
    }
    assert_eq!(last_tid(&db), before, "nothing was written");
    // The same object keeps its key through a change of another field.
    db.transact(|tx| Ok(tx.get_mut(first)?.set_size(5))).unwrap();
    // Once the first gives the key up, another object can take it.
    db.transact(|tx| Ok(tx.get_mut(first)?.set_code(format!("{code}-old")))).unwrap();
    let second = db.transact(|tx| tx.add(item("second", Some(&code), 2, &[]))).unwrap();
    db.transact(|tx| {
        assert_eq!(ITEM_BY_CODE.find(tx, &code)?, Some(second));
        assert_eq!(ITEM_BY_CODE.find(tx, &format!("{code}-old"))?, Some(first));
        Ok(())
    })
    .unwrap();
}

pub fn racing_writers_of_one_unique_key_commit_exactly_one(backend: &Backend) {
    let (writers, keys) = (4, backend.scaled(1000));
    let p = prefix("race");
    let dbs: Vec<Database> = (0..writers).map(|_| open(backend)).collect();
    let won: Vec<Vec<usize>> = std::thread::scope(|scope| {
        let handles: Vec<_> = dbs
            .iter()
            .enumerate()
            .map(|(w, db)| {
                let p = &p;
                scope.spawn(move || {
                    let mut won = Vec::new();
                    for k in 0..keys {
                        match db.transact(|tx| tx.add(item(&format!("w{w}"), Some(&format!("{p}{k}")), 0, &[]))) {
                            Ok(_) => won.push(k),
                            Err(Error::Unique { .. }) => {}
                            Err(e) => panic!("writer {w}, key {k}: {e}"),
                        }
                    }
                    won
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for k in 0..keys {
        let winners = won.iter().filter(|w| w.contains(&k)).count();
        assert_eq!(winners, 1, "key {k} was committed by {winners} writers");
    }
    dbs[0]
        .transact(|tx| {
            for k in 0..keys {
                assert!(ITEM_BY_CODE.find(tx, &format!("{p}{k}"))?.is_some());
            }
            Ok(())
        })
        .unwrap();
}

pub fn concurrent_inserts_into_one_index_all_arrive(backend: &Backend) {
    let (writers, each) = (8, backend.scaled(125));
    let p = prefix("many");
    let dbs: Vec<Database> = (0..writers).map(|_| open(backend)).collect();
    std::thread::scope(|scope| {
        for (w, db) in dbs.iter().enumerate() {
            let p = &p;
            scope.spawn(move || {
                for i in 0..each {
                    db.transact(|tx| tx.add(item(&format!("{p}{w}-{i:04}"), None, 0, &[p]))).unwrap();
                }
            });
        }
    });
    // Reported, not asserted: how often a commit lost a race depends on timing.
    let conflicts: u64 = dbs.iter().map(|db| db.stats().conflicts).sum();
    let commits = (writers * each) as f64;
    println!("{writers} writers, {commits} commits: {:.1} conflicts per 1,000", conflicts as f64 * 1000.0 / commits);
    dbs[0]
        .transact(|tx| {
            assert_eq!(ITEM_BY_TAG.count(tx, p.clone()..=p.clone())? as usize, writers * each);
            for w in 0..writers {
                for i in 0..each {
                    assert_eq!(ITEM_BY_NAME.get(tx, &format!("{p}{w}-{i:04}"))?.len(), 1, "{w}-{i}");
                }
            }
            Ok(())
        })
        .unwrap();
}

pub fn an_index_added_to_existing_objects_is_built_and_then_answers(backend: &Backend) {
    let db = open(backend);
    let p = prefix("build");
    let count = backend.scaled(2500) as i64;
    // Items stored while the index was not there: dropped, then written.
    assert!(db.drop_index(ITEM_BY_SIZE.name()).unwrap());
    assert!(!db.drop_index(ITEM_BY_SIZE.name()).unwrap(), "dropped already");
    let refs: Vec<Ref<Item>> = db
        .transact(|tx| (0..count).map(|i| tx.add(item(&format!("{p}{i}"), None, 7_000_000 + i, &[]))).collect())
        .unwrap();
    match db.transact(|tx| ITEM_BY_SIZE.count(tx, ..)) {
        Err(Error::IndexNotReady { index, .. }) => assert_eq!(index, ITEM_BY_SIZE.name()),
        other => panic!("expected the index to be unbuilt, got {other:?}"),
    }
    // A change while the index is unbuilt is indexed by its own commit.
    db.transact(|tx| Ok(tx.get_mut(refs[0])?.set_size(6_999_999))).unwrap();
    let built = db.build_indexes().unwrap();
    let size = built.iter().find(|b| b.index == ITEM_BY_SIZE.name()).unwrap();
    assert!(size.indexed >= count as u64, "{size:?}");
    db.transact(|tx| {
        let all = ITEM_BY_SIZE.range(tx, 6_999_999..7_000_000 + count, usize::MAX)?;
        assert_eq!(all.len(), refs.len());
        assert_eq!(all[0], refs[0]);
        assert_eq!(ITEM_BY_SIZE.get(tx, &7_000_000)?, []);
        assert_eq!(ITEM_BY_SIZE.get(tx, &(7_000_000 + count - 1))?, [refs[refs.len() - 1]]);
        Ok(())
    })
    .unwrap();
    // Built indexes cost a read each.
    assert!(db.build_indexes().unwrap().iter().all(|b| b.scanned == 0));
    for check in db.check_indexes().unwrap() {
        assert!(check.is_sound(), "{check:?}");
    }
}

pub fn an_index_of_another_key_type_is_built_anew(backend: &Backend) {
    let db = open(backend);
    let p = prefix("retyped");
    let a = db.transact(|tx| tx.add(item(&p, None, 41, &[]))).unwrap();
    // As a program with the index declared over another key type left it.
    db.transact(|tx| {
        let head = tx.root()?.require::<crate::index::IndexHead>(&crate::index::root_name(ITEM_BY_SIZE.name()))?;
        tx.get_mut(head)?.key_kind = "string".to_owned();
        Ok(())
    })
    .unwrap();
    match db.transact(|tx| ITEM_BY_SIZE.get(tx, &41)) {
        Err(Error::IndexNotReady { index, build_end: None, .. }) => assert_eq!(index, ITEM_BY_SIZE.name()),
        other => panic!("expected the entries of another key type to go unread, got {other:?}"),
    }
    db.build_indexes().unwrap();
    db.transact(|tx| Ok(assert!(ITEM_BY_SIZE.get(tx, &41)?.contains(&a)))).unwrap();
}

pub fn queries_order_page_narrow_and_intersect(backend: &Backend) {
    let db = open(backend);
    let p = prefix("query");
    let tag = format!("{p}tagged");
    // Names p-a0..p-a9 and p-b0..p-b4, sizes 0..15; every third is tagged.
    let refs: Vec<Ref<Item>> = db
        .transact(|tx| {
            (0..15)
                .map(|i: i64| {
                    let name = if i < 10 { format!("{p}a{i}") } else { format!("{p}b{}", i - 10) };
                    let tags = if i % 3 == 0 { vec![tag.as_str()] } else { vec![] };
                    tx.add(item(&name, None, i, &tags))
                })
                .collect()
        })
        .unwrap();
    db.transact(|tx| {
        // Prefixes of strings, ascending and descending.
        let a = ITEM_BY_NAME.query().starting_with(format!("{p}a")).fetch(tx)?;
        assert_eq!(a.refs, refs[..10]);
        assert_eq!(a.next, None);
        let b_desc = ITEM_BY_NAME.query().starting_with(format!("{p}b")).descending().fetch(tx)?;
        assert_eq!(b_desc.refs, refs[10..].iter().rev().copied().collect::<Vec<_>>());
        // Pages of four, each going on after the last.
        let all = ITEM_BY_NAME.query().starting_with(&p).limit(4);
        let mut pages = Vec::new();
        let mut page = all.fetch(tx)?;
        loop {
            pages.extend(page.refs.iter().copied());
            let Some(next) = page.next else { break };
            page = all.clone().after(&next).fetch(tx)?;
        }
        assert_eq!(pages, refs);
        // Descending pages.
        let down = ITEM_BY_NAME.query().starting_with(&p).descending().limit(6);
        let first = down.fetch(tx)?;
        let second = down.clone().after(first.next.as_ref().unwrap()).fetch(tx)?;
        assert_eq!(first.refs, refs.iter().rev().take(6).copied().collect::<Vec<_>>());
        assert_eq!(second.refs, refs.iter().rev().skip(6).take(6).copied().collect::<Vec<_>>());
        // A composite index by its leading field, with a range on the next.
        let name = format!("{p}a4");
        assert_eq!(ITEM_BY_NAME_AND_SIZE.query().leading(&name).fetch(tx)?.refs, [refs[4]]);
        let ranged = ITEM_BY_NAME_AND_SIZE.query().range((name.clone(), 0)..=(name.clone(), 4)).fetch(tx)?;
        assert_eq!(ranged.refs, [refs[4]]);
        assert_eq!(ITEM_BY_NAME_AND_SIZE.query().range((name.clone(), 5)..).limit(1).fetch(tx)?.refs, [refs[5]]);
        // Two indexes intersected: tagged items with sizes 4 to 12.
        let tagged = ITEM_BY_TAG.query().eq(&tag);
        let sized = ITEM_BY_SIZE.query().range(4..=12).and(&tagged);
        assert_eq!(sized.fetch(tx)?.refs, [refs[6], refs[9], refs[12]]);
        let explain = sized.explain(tx)?;
        assert_eq!(
            (explain.index, explain.also.as_slice()),
            (ITEM_BY_SIZE.name(), &[ITEM_BY_TAG.name().to_owned()][..])
        );
        assert_eq!((explain.results, explain.checked), (3, 3));
        assert!(explain.entries >= 5 + 9, "{explain:?}");
        assert_eq!(ITEM_BY_NAME.query().starting_with(&p).count(tx)?, 15);
        Ok(())
    })
    .unwrap();
}

pub fn undo_restores_the_entries_with_the_objects(backend: &Backend) {
    let db = open(backend);
    if db.storage().history_mode() != History::Preserving {
        return;
    }
    let p = prefix("undo");
    let (before, after) = (format!("{p}before"), format!("{p}after"));
    let a = db.transact(|tx| tx.add(item(&before, None, 1, &[]))).unwrap();
    db.transact(|tx| Ok(tx.get_mut(a)?.set_name(after.clone()))).unwrap();
    let renamed = last_tid(&db);
    db.transact(|tx| Ok(assert_eq!(ITEM_BY_NAME.get(tx, &after)?, [a]))).unwrap();
    db.undo(&[renamed]).unwrap();
    db.transact(|tx| {
        assert_eq!(tx.get(a)?.name(), before);
        assert_eq!(ITEM_BY_NAME.get(tx, &before)?, [a]);
        assert_eq!(ITEM_BY_NAME.get(tx, &after)?, []);
        Ok(())
    })
    .unwrap();
}

/// A commit whose index buckets another commit split meanwhile runs its
/// index changes again on the newest buckets instead of going back to its
/// closure; a conflict on an object it changed itself still goes back.
pub fn a_commit_redoes_its_index_changes_on_buckets_split_meanwhile(backend: &Backend) {
    let p = prefix("redo");
    let (a, b) = (open(backend), open(backend));
    let first = a
        .transact(|tx| {
            let first = tx.add(item(&format!("{p}000"), None, 7, &[&p]))?;
            for i in 1..10 {
                tx.add(item(&format!("{p}{i:03}"), None, 7, &[&p]))?;
            }
            Ok(first)
        })
        .unwrap();
    let mut cb = b.connect().unwrap();
    let mut tb = cb.begin().unwrap();
    let late = tb.add(item(&format!("{p}late"), None, 7, &[&p])).unwrap();
    // Meanwhile 200 more objects with the same tag and size split the
    // buckets the late object's entries go to.
    a.transact(|tx| {
        for i in 10..210 {
            tx.add(item(&format!("{p}{i:03}"), None, 7, &[&p]))?;
        }
        Ok(())
    })
    .unwrap();
    let before = b.stats();
    tb.commit().unwrap();
    let after = b.stats();
    assert_eq!(after.conflicts, before.conflicts, "no conflict reached the retry loop");
    assert!(after.conflicts_resolved > before.conflicts_resolved);
    drop(cb);
    a.transact(|tx| {
        assert_eq!(ITEM_BY_TAG.query().eq(&p).count(tx)?, 211);
        assert_eq!(ITEM_BY_NAME.get(tx, &format!("{p}late"))?, [late]);
        let names = ITEM_BY_NAME.query().range(p.clone()..).limit(300).fetch(tx)?.refs;
        assert_eq!(names.len(), 211);
        Ok(())
    })
    .unwrap();

    // Both change the first object: the second commit conflicts, as without indexes.
    let mut cb = b.connect().unwrap();
    let mut tb = cb.begin().unwrap();
    tb.get_mut(first).unwrap().set_size(77_770_008);
    a.transact(|tx| Ok(tx.get_mut(first)?.set_size(77_770_009))).unwrap();
    assert!(matches!(tb.commit(), Err(Error::Conflict(_))));
    drop(cb);
    a.transact(|tx| {
        assert_eq!(ITEM_BY_SIZE.get(tx, &77_770_009)?, [first]);
        assert_eq!(ITEM_BY_SIZE.get(tx, &77_770_008)?, []);
        Ok(())
    })
    .unwrap();
}
