//! The bucket merge rules, one test each.

use super::*;

fn bucket(entries: &[(i64, i64)], shape: u64) -> TreeBucket {
    let mut b = TreeBucket::default();
    b.keys_mut().set_ints(entries.iter().map(|e| e.0).collect::<Vec<_>>());
    b.values_mut().set_ints(entries.iter().map(|e| e.1).collect::<Vec<_>>());
    b.set_shape(shape);
    b
}

fn entries(b: &TreeBucket) -> Vec<(i64, i64)> {
    b.keys().ints().iter().copied().zip(b.values().ints().iter().copied()).collect()
}

#[test]
fn inserts_removals_and_updates_of_different_keys_combine() {
    let old = bucket(&[(1, 10), (2, 20), (3, 30)], 0);
    let committed = bucket(&[(1, 11), (2, 20), (3, 30), (4, 40)], 0);
    let new = bucket(&[(0, 0), (1, 10), (3, 30)], 0);
    let merged = merge_buckets(&old, &committed, &new).expect("merges");
    assert_eq!(entries(&merged), [(0, 0), (1, 11), (3, 30), (4, 40)]);
}

#[test]
fn the_same_key_changed_on_both_sides_conflicts() {
    let old = bucket(&[(1, 10), (2, 20)], 0);
    let update = |v| bucket(&[(1, v), (2, 20)], 0);
    assert!(merge_buckets(&old, &update(11), &update(12)).is_none(), "two updates");
    assert!(merge_buckets(&old, &update(11), &update(11)).is_none(), "the same update twice");
    let removed = bucket(&[(2, 20)], 0);
    assert!(merge_buckets(&old, &update(11), &removed).is_none(), "update and removal");
    assert!(merge_buckets(&old, &removed, &update(11)).is_none(), "removal and update");
    assert!(merge_buckets(&old, &removed, &removed).is_none(), "two removals");
    let inserted = |v| bucket(&[(1, 10), (2, 20), (5, v)], 0);
    assert!(merge_buckets(&old, &inserted(50), &inserted(51)).is_none(), "two inserts");
}

#[test]
fn a_split_or_an_emptied_bucket_conflicts() {
    let old = bucket(&[(1, 10), (2, 20), (3, 30), (4, 40)], 0);
    let split = bucket(&[(1, 10), (2, 20)], 1);
    let insert = bucket(&[(1, 10), (2, 20), (3, 30), (4, 40), (5, 50)], 0);
    assert!(merge_buckets(&old, &split, &insert).is_none());
    assert!(merge_buckets(&old, &insert, &split).is_none());
    let emptied = bucket(&[], 1);
    assert!(merge_buckets(&old, &emptied, &insert).is_none());
    let one = bucket(&[(1, 10), (2, 20)], 0);
    let other = bucket(&[(3, 30), (4, 40)], 0);
    assert!(merge_buckets(&old, &one, &other).is_none(), "together they empty it");
}

#[test]
fn lengths_add_up() {
    let n = |v| {
        let mut l = TreeLength::default();
        l.set_value(v);
        l
    };
    assert_eq!(merge_lengths(&n(10), &n(13), &n(8)).unwrap().value(), 11);
}
