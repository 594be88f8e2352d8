//! Trees as a property: random inserts, removals and range queries agree
//! with `std::collections::BTreeMap` across commits, reopened databases and
//! cache eviction (memory and SQLite; every backend also runs the suite's
//! seeded version, `conformance::trees`). Also: `proto/pbpersist/tree.proto`
//! describes the stored types, a derived type holds a tree, `prefetch_refs`
//! loads one, and broken trees give errors.

use pbpersist::storage::{MemoryStorage, SqliteStorage};
use pbpersist::tree::{Bounds, TreeBucket, TreeHead, TreeKeys, TreeLength, TreeNode, TreeValues, check_tree};
use pbpersist::{Database, Meta, Options, PTreeMap, PTreeSet, Persistent, Ref};
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
enum Op {
    Insert(u64, String),
    Remove(u64),
    Range(u64, u64),
    Commit,
    Reopen,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        6 => (0..200u64, "[a-z]{0,6}").prop_map(|(k, v)| Op::Insert(k, v)),
        3 => (0..200u64).prop_map(Op::Remove),
        1 => (0..200u64, 0..200u64).prop_map(|(a, b)| Op::Range(a.min(b), a.max(b))),
        1 => Just(Op::Commit),
        1 => Just(Op::Reopen),
    ];
    prop::collection::vec(op, 1..300)
}

/// Runs `ops` on a tree of tiny buckets, comparing every answer with a
/// `BTreeMap`; `open` makes a database (small cache) over the same data.
fn run(ops: &[Op], open: &dyn Fn() -> Database) {
    let mut db = open();
    let tree = db
        .transact(|tx| {
            let tree = PTreeMap::<u64, String>::create_with(tx, Bounds { bucket: 4, node: 4 })?;
            tx.root_mut()?.insert("tree", tree);
            Ok(tree)
        })
        .unwrap();
    let mut committed: BTreeMap<u64, String> = BTreeMap::new();
    let mut batch: Vec<&Op> = Vec::new();
    let apply = |db: &Database, batch: &mut Vec<&Op>, committed: &mut BTreeMap<u64, String>| {
        let mut model = committed.clone();
        db.transact(|tx| {
            model = committed.clone();
            for op in batch.iter() {
                match op {
                    Op::Insert(k, v) => assert_eq!(tree.insert(tx, *k, v.clone())?, model.insert(*k, v.clone())),
                    Op::Remove(k) => assert_eq!(tree.remove(tx, k)?, model.remove(k)),
                    Op::Range(a, b) => {
                        let got: Vec<(u64, String)> = tree.range(tx, a..b).collect::<Result<_, _>>()?;
                        let want: Vec<(u64, String)> = model.range(a..b).map(|(k, v)| (*k, v.clone())).collect();
                        assert_eq!(got, want);
                    }
                    Op::Commit | Op::Reopen => {}
                }
                assert_eq!(tree.len(tx)?, model.len() as u64);
            }
            Ok(())
        })
        .unwrap();
        *committed = model;
        batch.clear();
    };
    for op in ops {
        match op {
            Op::Commit => apply(&db, &mut batch, &mut committed),
            Op::Reopen => {
                apply(&db, &mut batch, &mut committed);
                db = open();
            }
            other => batch.push(other),
        }
    }
    apply(&db, &mut batch, &mut committed);
    db.transact(|tx| {
        let all: Vec<(u64, String)> = tree.iter(tx).collect::<Result<_, _>>()?;
        assert_eq!(all, committed.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>());
        let check = check_tree(tx, tree)?;
        assert_eq!(check.problems, Vec::<String>::new());
        assert_eq!(check.entries, committed.len() as u64);
        Ok(())
    })
    .unwrap();
}

fn small_cache() -> Options {
    Options::default().cache_objects(6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_tree_in_memory_agrees_with_btreemap(ops in ops()) {
        let storage = MemoryStorage::new();
        run(&ops, &|| Database::with_storage_and_options(storage.clone(), small_cache()).unwrap());
    }

    #[test]
    fn a_tree_in_sqlite_agrees_with_btreemap(ops in ops()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tree.db");
        run(&ops, &|| Database::with_storage_and_options(SqliteStorage::open(&path).unwrap(), small_cache()).unwrap());
    }
}

/// Every field of the stored tree types is in `proto/pbpersist/tree.proto`
/// under the same name and number, and a state written by Rust decodes
/// there with no unknown fields and encodes back to the same bytes.
#[test]
fn tree_proto_describes_the_stored_types() {
    let pool = pbpersist_build::Config::new().descriptor_pool(&["pbpersist/tree.proto"], &[] as &[&str]).unwrap();
    fn same<T: Persistent>(pool: &prost_reflect::DescriptorPool, sample: &T) {
        let desc = pool.get_message_by_name(T::TYPE_NAME).unwrap_or_else(|| panic!("{} is missing", T::TYPE_NAME));
        let mut theirs: Vec<(String, u32)> = desc.fields().map(|f| (f.name().to_owned(), f.number())).collect();
        let mut ours: Vec<(String, u32)> = T::FIELDS.iter().map(|f| (f.name.to_owned(), f.number)).collect();
        theirs.sort();
        ours.sort();
        assert_eq!(ours, theirs, "{}", T::TYPE_NAME);
        let bytes = prost::Message::encode_to_vec(sample);
        let decoded = prost_reflect::DynamicMessage::decode(desc, bytes.as_slice()).unwrap();
        assert_eq!(decoded.unknown_fields().count(), 0, "{}", T::TYPE_NAME);
        assert_eq!(prost::Message::encode_to_vec(&decoded), bytes, "{}", T::TYPE_NAME);
    }
    // A real tree supplies the samples: a head, nodes, buckets, a counter.
    let db = Database::in_memory().unwrap();
    db.transact(|tx| {
        let tree = PTreeMap::<String, Ref<TreeLength>>::create_with(tx, Bounds { bucket: 4, node: 4 })?;
        for i in 0..40 {
            tree.insert(tx, format!("k{i:02}"), Ref::new(pbpersist::Oid(i)))?;
        }
        let head = tx.get(tree.cast::<TreeHead>())?;
        same(&pool, &*head);
        let root = tx.get(head.root().unwrap().cast::<TreeNode>())?;
        same(&pool, &*root);
        same(&pool, root.keys());
        let mut below = root.children()[0];
        for _ in 1..head.depth() {
            below = tx.get(below.cast::<TreeNode>())?.children()[0];
        }
        let bucket = tx.get(below.cast::<TreeBucket>())?;
        same(&pool, &*bucket);
        same(&pool, bucket.values());
        same(&pool, &*tx.get(head.length().unwrap())?);
        let mut values = TreeValues::default();
        values.set_ints(vec![-1, 2]);
        values.set_uints(vec![3]);
        values.set_strings(vec!["s".to_owned()]);
        values.set_bytes(vec![vec![1]]);
        values.set_doubles(vec![0.5]);
        values.set_bools(vec![true]);
        same(&pool, &values);
        let mut keys = TreeKeys::default();
        keys.set_ints(vec![-5]);
        keys.set_uints(vec![5]);
        keys.set_bytes(vec![vec![0, 1]]);
        same(&pool, &keys);
        Ok(())
    })
    .unwrap();
}

/// A user's type keeps a map and a set as fields.
#[derive(Clone, PartialEq, Persistent)]
#[pbpersist(message = "trees.Directory")]
struct Directory {
    #[pbpersist(tag = 1)]
    by_name: Option<Ref<PTreeMap<String, Ref<Directory>>>>,
    #[pbpersist(tag = 2)]
    tags: Option<Ref<PTreeSet<String>>>,
    #[pbpersist(meta)]
    meta: Meta,
}

#[test]
fn a_derived_type_refers_to_trees() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dir.db");
    let db = Database::open(&path).unwrap();
    db.transact(|tx| {
        let mut top = Directory::default();
        let by_name = PTreeMap::create(tx)?;
        let tags = PTreeSet::create(tx)?;
        top.set_by_name(by_name);
        top.set_tags(tags);
        let top = tx.add(top)?;
        by_name.insert(tx, "self".into(), top)?;
        tags.insert(tx, "root".into())?;
        tx.root_mut()?.insert("top", top);
        Ok(())
    })
    .unwrap();
    drop(db);
    let db = Database::open(&path).unwrap();
    db.transact(|tx| {
        let top = tx.root()?.require::<Directory>("top")?;
        let dir = tx.get(top)?;
        assert_eq!(dir.by_name().unwrap().get(tx, "self")?, Some(top));
        assert!(dir.tags().unwrap().contains(tx, "root")?);
        Ok(())
    })
    .unwrap();
    let stored = Directory::proto_files();
    assert!(stored[0].1.contains("(pbpersist.target) = \"pbpersist.Tree\""), "{}", stored[0].1);
    assert!(db.gc(true).unwrap().unreachable.is_empty(), "the trees are reachable through the fields");
}

/// `prefetch_refs` follows a tree like any other graph: after it, reading
/// every entry loads nothing more.
#[test]
fn prefetch_refs_loads_a_whole_tree() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prefetch.db");
    let db = Database::open(&path).unwrap();
    let tree = db
        .transact(|tx| {
            let tree = PTreeMap::<u64, String>::create_with(tx, Bounds { bucket: 8, node: 4 })?;
            for i in 0..500 {
                tree.insert(tx, i, format!("v{i}"))?;
            }
            Ok(tree)
        })
        .unwrap();
    drop(db);
    let db = Database::open(&path).unwrap();
    db.transact(|tx| {
        let check = check_tree(tx, tree)?;
        assert!(check.buckets > 50, "{check:?}");
        Ok(())
    })
    .unwrap();
    drop(db);
    let db = Database::open(&path).unwrap();
    db.transact(|tx| {
        let fetched = tx.prefetch_refs(tree, 16)?;
        let loads = db.stats().loads;
        assert!(fetched > 60, "{fetched}");
        let all: Vec<(u64, String)> = tree.iter(tx).collect::<Result<_, _>>()?;
        assert_eq!(all.len(), 500);
        assert_eq!(db.stats().loads, loads, "everything was prefetched");
        Ok(())
    })
    .unwrap();
}

/// A hostile or broken tree gives errors, never a panic or an endless walk:
/// a head claiming a depth of 1,000, a node that is its own child, a bucket
/// whose values do not match its keys.
#[test]
fn broken_trees_are_refused_with_errors() {
    use pbpersist::Error;
    let db = Database::in_memory().unwrap();
    let tree = db
        .transact(|tx| {
            let tree = PTreeMap::<i64, i64>::create_with(tx, Bounds { bucket: 4, node: 4 })?;
            for i in 0..40 {
                tree.insert(tx, i, i)?;
            }
            Ok(tree)
        })
        .unwrap();
    let head = tree.cast::<TreeHead>();
    // Too deep.
    db.transact(|tx| {
        let depth = tx.get(head)?.depth();
        tx.get_mut(head)?.set_depth(1000);
        assert!(matches!(tree.get(tx, &1), Err(Error::BrokenTree { .. })));
        assert!(matches!(check_tree(tx, tree), Err(Error::BrokenTree { .. })));
        tx.get_mut(head)?.set_depth(depth);
        Ok(())
    })
    .unwrap();
    // A node that is its own first child.
    db.transact(|tx| {
        let root = tx.get(head)?.root().unwrap().cast::<TreeNode>();
        tx.get_mut(root)?.children_mut()[0] = root.erase();
        let check = check_tree(tx, tree);
        assert!(check.is_err() || check.as_ref().is_ok_and(|c| !c.problems.is_empty()), "{check:?}");
        assert!(tree.get(tx, &0).is_err());
        assert!(tree.iter(tx).any(|e| e.is_err()));
        Err::<(), _>(Error::NameNotFound { name: "undo".into() })
    })
    .unwrap_err();
    // A bucket with a value missing.
    db.transact(|tx| {
        let mut at = tx.get(head)?.root().unwrap();
        for _ in 0..tx.get(head)?.depth() {
            at = tx.get(at.cast::<TreeNode>())?.children()[0];
        }
        tx.get_mut(at.cast::<TreeBucket>())?.values_mut().ints_mut().pop();
        assert!(matches!(tree.get(tx, &0), Err(Error::BrokenTree { .. })));
        assert!(matches!(tree.insert(tx, 0, 1), Err(Error::BrokenTree { .. })));
        assert!(!check_tree(tx, tree)?.problems.is_empty());
        Ok(())
    })
    .unwrap();
}

/// A node whose stored reference list leaves out one of its children (a
/// writer in another language that forgot it) is reported: gc follows the
/// lists and would remove the child with everything below it.
#[test]
fn check_tree_finds_a_reference_list_that_omits_a_child() {
    use pbpersist::storage::Write;
    let storage = MemoryStorage::new();
    let db = Database::with_storage(storage.clone()).unwrap();
    let tree = db
        .transact(|tx| {
            let tree = PTreeMap::<i64, i64>::create_with(tx, Bounds { bucket: 4, node: 4 })?;
            for i in 0..40 {
                tree.insert(tx, i, i)?;
            }
            tx.root_mut()?.insert("tree", tree);
            Ok(tree)
        })
        .unwrap();
    let node = db.transact(|tx| Ok(tx.get(tree.cast::<TreeHead>())?.root().unwrap())).unwrap();
    assert_eq!(db.transact(|tx| check_tree(tx, tree)).unwrap().problems, Vec::<String>::new());
    // Rewrite the node's record with its last child left out of the list.
    let mut session = pbpersist::storage::Storage::open_session(&storage).unwrap();
    session.begin(None).unwrap();
    let loaded = session.load(node.oid()).unwrap().unwrap();
    let mut record = pbpersist::record::Record::from_bytes(loaded.record.into()).unwrap();
    let dropped = record.refs.pop().unwrap();
    let write = Write { oid: node.oid(), base: Some(loaded.tid), record: prost::Message::encode_to_vec(&record) };
    session.commit(&[write], &[], &Default::default(), &mut |_, _| None).unwrap();
    let db = Database::with_storage(storage).unwrap();
    let problems = db.transact(|tx| check_tree(tx, tree)).unwrap().problems;
    let expected = format!("object {}: its stored reference list omits [{dropped}]", node.oid());
    assert!(problems.iter().any(|p| p.starts_with(&expected)), "{problems:#?}");
    // What gc would do with it: the child and its buckets are unreachable.
    assert!(db.gc(true).unwrap().unreachable.contains(&pbpersist::Oid(dropped)));
}
