//! The tree workload (see `docs/benchmarks/trees.md`) for pbpersist's
//! `PTreeMap` and for the ceiling, a plain SQLite table with a primary key
//! holding the same pairs. ZODB's BTrees run the same steps in
//! `bench/zodb_tree_bench.py`.

use crate::{percentile, rate};
use pbpersist::tree::TreeKey;
use pbpersist::{Database, Options, PTreeMap};
use std::path::Path;
use std::time::Instant;

/// Entries per second for each step, and single-lookup latencies.
#[derive(Debug, Clone, Default)]
pub struct TreeRates {
    /// Insert every key, `per_tx` per transaction, in a scrambled order.
    pub insert: f64,
    /// Look up keys in a freshly opened database.
    pub lookup_cold: f64,
    /// p50 of one cold lookup, microseconds.
    pub cold_p50_us: f64,
    /// p99 of one cold lookup, microseconds.
    pub cold_p99_us: f64,
    /// The same lookups again, everything cached.
    pub lookup_hot: f64,
    /// Entries read by range scans of 1,000 keys, freshly opened database.
    pub range: f64,
    /// Remove a tenth of the keys, `per_tx` per transaction.
    pub remove: f64,
}

impl TreeRates {
    /// Each measure's median over several runs.
    pub fn median(runs: &[TreeRates]) -> TreeRates {
        let m = |f: fn(&TreeRates) -> f64| crate::median_by(runs, f);
        TreeRates {
            insert: m(|r| r.insert),
            lookup_cold: m(|r| r.lookup_cold),
            cold_p50_us: m(|r| r.cold_p50_us),
            cold_p99_us: m(|r| r.cold_p99_us),
            lookup_hot: m(|r| r.lookup_hot),
            range: m(|r| r.range),
            remove: m(|r| r.remove),
        }
    }
}

/// Which keys: `user-0000123` strings or the integers themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// `user-` and seven digits.
    Strings,
    /// 64-bit integers.
    Ints,
}

/// The key numbers of each step; `bench/zodb_tree_bench.py` computes the same.
#[derive(Debug)]
pub struct Plan {
    /// Every key, in insertion order: a permutation of `0..n`.
    pub insert: Vec<u64>,
    /// Keys looked up, cold then hot.
    pub lookup: Vec<u64>,
    /// Where each range scan starts.
    pub ranges: Vec<u64>,
    /// Keys removed.
    pub remove: Vec<u64>,
}

impl Plan {
    /// The plan for `n` keys.
    pub fn new(n: u64) -> Plan {
        // Multiplying by a prime larger than n permutes 0..n.
        let walk = |count: u64, step: u64| (0..count).map(move |i| (i * step) % n).collect::<Vec<u64>>();
        Plan {
            insert: walk(n, 1_000_003),
            lookup: walk(n.min(20_000), 7_919),
            ranges: walk(n.min(100), 9_973),
            remove: walk(n / 10, 1_000_033),
        }
    }
}

/// Lookups per second of the hot-lookup step on an in-memory
/// `std::collections::BTreeMap` holding the same keys: what an ordered map
/// with no persistence at all takes, the floor under every tree here.
pub fn std_map_hot<K: Ord>(plan: &Plan, key: fn(u64) -> K) -> f64 {
    let map: std::collections::BTreeMap<K, i64> = plan.insert.iter().map(|i| (key(*i), *i as i64)).collect();
    let mut best = 0.0f64;
    // The best of three passes, as the map is warm from the first on.
    for _ in 0..3 {
        let start = Instant::now();
        for i in &plan.lookup {
            std::hint::black_box(map.get(&key(*i)));
        }
        best = best.max(rate(plan.lookup.len(), start));
    }
    best
}

/// The string key of number `i`.
pub fn string_key(i: u64) -> String {
    format!("user-{i:07}")
}

/// The workload on a `PTreeMap<K, i64>` in the SQLite file `path`.
pub fn pbpersist<K: TreeKey>(
    path: &Path,
    plan: &Plan,
    per_tx: usize,
    key: fn(u64) -> K,
) -> pbpersist::Result<TreeRates> {
    let mut out = TreeRates::default();
    let open = || Database::open_with(path, Options::default());
    let db = open()?;
    let tree = db.transact(|tx| {
        let tree = PTreeMap::<K, i64>::create(tx)?;
        tx.root_mut()?.insert("tree", tree);
        Ok(tree)
    })?;
    let start = Instant::now();
    for chunk in plan.insert.chunks(per_tx) {
        db.transact(|tx| {
            for i in chunk {
                tree.insert(tx, key(*i), *i as i64)?;
            }
            Ok(())
        })?;
    }
    out.insert = rate(plan.insert.len(), start);
    drop(db);

    let db = open()?;
    db.transact(|tx| {
        let mut latencies = Vec::with_capacity(plan.lookup.len());
        let start = Instant::now();
        for i in &plan.lookup {
            let t0 = Instant::now();
            let v = tree.get(tx, &key(*i))?;
            latencies.push(t0.elapsed().as_secs_f64() * 1e6);
            assert_eq!(v, Some(*i as i64));
        }
        out.lookup_cold = rate(plan.lookup.len(), start);
        out.cold_p50_us = percentile(&mut latencies, 0.5);
        out.cold_p99_us = percentile(&mut latencies, 0.99);
        let start = Instant::now();
        for i in &plan.lookup {
            std::hint::black_box(tree.get(tx, &key(*i))?);
        }
        out.lookup_hot = rate(plan.lookup.len(), start);
        Ok(())
    })?;
    drop(db);

    let db = open()?;
    db.transact(|tx| {
        let mut read = 0;
        let start = Instant::now();
        for s in &plan.ranges {
            for entry in tree.range(tx, key(*s)..).take(1000) {
                std::hint::black_box(entry?);
                read += 1;
            }
        }
        out.range = rate(read, start);
        Ok(())
    })?;
    drop(db);

    let db = open()?;
    let start = Instant::now();
    for chunk in plan.remove.chunks(per_tx) {
        db.transact(|tx| {
            for i in chunk {
                tree.remove(tx, &key(*i))?;
            }
            Ok(())
        })?;
    }
    out.remove = rate(plan.remove.len(), start);
    Ok(out)
}

/// The ceiling: the same pairs in an SQLite table with a primary key
/// (WAL, synchronous=FULL, as pbpersist), read and written with rusqlite.
pub fn raw(path: &Path, plan: &Plan, per_tx: usize, keys: Keys) -> rusqlite::Result<TreeRates> {
    use rusqlite::ToSql;
    let open = || -> rusqlite::Result<rusqlite::Connection> {
        let c = rusqlite::Connection::open(path)?;
        c.pragma_update(None, "journal_mode", "WAL")?;
        c.pragma_update(None, "synchronous", "FULL")?;
        Ok(c)
    };
    let key = |i: u64| -> Box<dyn ToSql> {
        match keys {
            Keys::Strings => Box::new(string_key(i)),
            Keys::Ints => Box::new(i as i64),
        }
    };
    let mut out = TreeRates::default();
    let mut conn = open()?;
    conn.execute_batch(match keys {
        Keys::Strings => "CREATE TABLE kv (k TEXT PRIMARY KEY NOT NULL, v INTEGER NOT NULL) WITHOUT ROWID",
        Keys::Ints => "CREATE TABLE kv (k INTEGER PRIMARY KEY NOT NULL, v INTEGER NOT NULL)",
    })?;
    let start = Instant::now();
    for chunk in plan.insert.chunks(per_tx) {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached("INSERT INTO kv (k, v) VALUES (?1, ?2)")?;
            for i in chunk {
                insert.execute(rusqlite::params![key(*i), *i as i64])?;
            }
        }
        tx.commit()?;
    }
    out.insert = rate(plan.insert.len(), start);
    drop(conn);

    let conn = open()?;
    conn.execute_batch("BEGIN")?;
    {
        let mut select = conn.prepare_cached("SELECT v FROM kv WHERE k = ?1")?;
        let mut latencies = Vec::with_capacity(plan.lookup.len());
        let start = Instant::now();
        for i in &plan.lookup {
            let t0 = Instant::now();
            let v: i64 = select.query_row([key(*i)], |r| r.get(0))?;
            latencies.push(t0.elapsed().as_secs_f64() * 1e6);
            assert_eq!(v, *i as i64);
        }
        out.lookup_cold = rate(plan.lookup.len(), start);
        out.cold_p50_us = percentile(&mut latencies, 0.5);
        out.cold_p99_us = percentile(&mut latencies, 0.99);
        let start = Instant::now();
        for i in &plan.lookup {
            std::hint::black_box(select.query_row([key(*i)], |r| r.get::<_, i64>(0))?);
        }
        out.lookup_hot = rate(plan.lookup.len(), start);
    }
    conn.execute_batch("COMMIT")?;
    drop(conn);

    let conn = open()?;
    conn.execute_batch("BEGIN")?;
    {
        let mut scan = conn.prepare_cached("SELECT k, v FROM kv WHERE k >= ?1 ORDER BY k LIMIT 1000")?;
        let mut read = 0;
        let start = Instant::now();
        for s in &plan.ranges {
            let mut rows = scan.query([key(*s)])?;
            while let Some(row) = rows.next()? {
                std::hint::black_box(
                    match keys {
                        Keys::Strings => row.get::<_, String>(0)?.len() as i64,
                        Keys::Ints => row.get::<_, i64>(0)?,
                    } + row.get::<_, i64>(1)?,
                );
                read += 1;
            }
        }
        out.range = rate(read, start);
    }
    conn.execute_batch("COMMIT")?;
    drop(conn);

    let mut conn = open()?;
    let start = Instant::now();
    for chunk in plan.remove.chunks(per_tx) {
        let tx = conn.transaction()?;
        {
            let mut delete = tx.prepare_cached("DELETE FROM kv WHERE k = ?1")?;
            for i in chunk {
                delete.execute([key(*i)])?;
            }
        }
        tx.commit()?;
    }
    out.remove = rate(plan.remove.len(), start);
    Ok(out)
}

/// The workload on ZODB's BTrees (`OOBTree` for strings, `LOBTree` for
/// integers) with FileStorage in `dir`.
pub fn zodb(dir: &Path, n: u64, per_tx: usize, keys: Keys) -> Result<TreeRates, Box<dyn std::error::Error>> {
    let kind = if keys == Keys::Strings { "strings" } else { "ints" };
    let args = [dir.display().to_string(), n.to_string(), per_tx.to_string(), kind.to_owned()];
    let v = crate::zodb::script("zodb_tree_bench.py", &args)?;
    let f = |k: &str| v[k].as_f64().unwrap_or(0.0);
    Ok(TreeRates {
        insert: f("insert"),
        lookup_cold: f("lookup_cold"),
        cold_p50_us: f("cold_p50_us"),
        cold_p99_us: f("cold_p99_us"),
        lookup_hot: f("lookup_hot"),
        range: f("range"),
        remove: f("remove"),
    })
}
