//! Traversing a graph or a tree far larger than the cache keeps memory
//! bounded by the cache setting. The chain is ignored by default (it builds a
//! million objects); run with
//! `cargo test --release -p pbpersist-tests --test memory -- --ignored --nocapture`.
//! The tree walk runs on 200,000 entries (`PBPERSIST_TREE_N` for more).
//! The figures are recorded in docs/transactions.md.

use std::process::Command;

const WORKER: &str = env!("CARGO_BIN_EXE_pbpersist-worker");

fn worker(args: &[&str]) -> String {
    let out = Command::new(WORKER).args(args).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn peak(report: &str) -> u64 {
    report.split_whitespace().skip_while(|w| *w != "peak_rss_kib").nth(1).unwrap().parse().unwrap()
}

#[test]
#[ignore = "builds 1,000,000 objects; run in release mode"]
fn a_million_object_traversal_is_bounded_by_the_cache_setting() {
    let n: u64 = std::env::var("PBPERSIST_TRAVERSE_N").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.db");
    let path = path.to_str().unwrap();
    worker(&["build", path, &n.to_string()]);
    let small = worker(&["traverse", path, "10000"]);
    let large = worker(&["traverse", path, "100000"]);
    let whole = worker(&["traverse", path, &n.to_string()]);
    println!("n={n}\ncache 10,000: {small}cache 100,000: {large}cache {n}: {whole}");
    assert!(small.starts_with(&format!("visited {n} ")));
    assert!(peak(&small) < peak(&whole), "a smaller cache uses less memory");
}

#[test]
fn walking_a_tree_larger_than_the_cache_is_bounded_by_the_cache_setting() {
    let n: u64 = std::env::var("PBPERSIST_TREE_N").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree.db");
    let path = path.to_str().unwrap();
    worker(&["tree-build", path, &n.to_string()]);
    let small = worker(&["tree-walk", path, "100"]);
    let whole = worker(&["tree-walk", path, &n.to_string()]);
    println!("tree of {n}\ncache 100: {small}cache {n}: {whole}");
    assert!(small.starts_with(&format!("visited {n} ")), "{small}");
    assert!(peak(&small) < peak(&whole), "a smaller cache uses less memory");
}
