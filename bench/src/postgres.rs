//! The Tower workload's raw ceiling on PostgreSQL: the postgres crate and
//! prost writing and reading the rows pbpersist writes, one statement per
//! transaction for writes and one point select per cold load.

use crate::{Rates, percentile, prost_tower, rate, record};
use pbpersist_tests::prost_reference::demo::Tower as ProstTower;
use postgres::{Client, NoTls};
use prost::Message;
use std::time::Instant;

/// A client whose tables live in `schema`.
pub fn connect(url: &str, schema: &str) -> Result<Client, postgres::Error> {
    let mut config: postgres::Config = url.parse()?;
    config.options(&format!("-c search_path={schema}"));
    config.connect(NoTls)
}

/// Drops `schema` with everything in it and creates it empty.
pub fn fresh_schema(url: &str, schema: &str) -> Result<(), postgres::Error> {
    let mut c = connect(url, schema)?;
    c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE; CREATE SCHEMA \"{schema}\""))
}

/// The ceiling: bulk `unnest` writes and prepared point selects, with none
/// of pbpersist's locking, polling or bookkeeping.
pub fn raw(url: &str, schema: &str, n: usize, per_tx: usize) -> Result<Rates, postgres::Error> {
    fresh_schema(url, schema)?;
    let mut c = connect(url, schema)?;
    c.batch_execute("CREATE TABLE pb_object (oid BIGINT PRIMARY KEY, tid BIGINT NOT NULL, record BYTEA NOT NULL)")?;
    let insert = c.prepare(
        "INSERT INTO pb_object (oid, tid, record) SELECT o, $2, r FROM unnest($1::bigint[], $3::bytea[]) AS w(o, r)",
    )?;
    let update = c.prepare(
        "UPDATE pb_object SET tid = $2, record = w.r FROM unnest($1::bigint[], $3::bytea[]) AS w(o, r) WHERE oid = w.o",
    )?;
    let mut out = Rates::default();
    let mut towers: Vec<ProstTower> = Vec::with_capacity(n);
    let start = Instant::now();
    for (tid, chunk) in (0..n).collect::<Vec<_>>().chunks(per_tx).enumerate() {
        let mut oids = Vec::with_capacity(chunk.len());
        let mut records = Vec::with_capacity(chunk.len());
        for i in chunk {
            let t = prost_tower(*i);
            oids.push(*i as i64 + 1);
            records.push(record(&t));
            towers.push(t);
        }
        let mut tx = c.transaction()?;
        tx.execute(&insert, &[&oids, &(tid as i64), &records])?;
        tx.commit()?;
    }
    out.add = rate(n, start);

    let start = Instant::now();
    for (chunk_no, chunk) in towers.chunks_mut(per_tx).enumerate() {
        let mut oids = Vec::with_capacity(chunk.len());
        let mut records = Vec::with_capacity(chunk.len());
        for (j, t) in chunk.iter_mut().enumerate() {
            t.height = 11.0;
            oids.push((chunk_no * per_tx + j) as i64 + 1);
            records.push(record(t));
        }
        let mut tx = c.transaction()?;
        tx.execute(&update, &[&oids, &(1_000_000 + chunk_no as i64), &records])?;
        tx.commit()?;
    }
    out.update = rate(n, start);
    drop(c);

    let mut c = connect(url, schema)?;
    let select = c.prepare("SELECT record FROM pb_object WHERE oid = $1")?;
    // One snapshot for the whole load, as pbpersist's transaction has.
    let mut tx = c.build_transaction().isolation_level(postgres::IsolationLevel::RepeatableRead).start()?;
    let mut latencies = Vec::with_capacity(n);
    let mut loaded = Vec::with_capacity(n);
    let start = Instant::now();
    for oid in 1..=n as i64 {
        let t0 = Instant::now();
        let blob: Vec<u8> = tx.query_one(&select, &[&oid])?.get(0);
        let rec = pbpersist::record::Record::from_bytes(blob.into()).expect("valid record");
        loaded.push(ProstTower::decode(rec.state).expect("valid tower"));
        latencies.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    out.cold_load = rate(n, start);
    out.cold_p50_us = percentile(&mut latencies, 0.5);
    out.cold_p99_us = percentile(&mut latencies, 0.99);
    std::hint::black_box(loaded.len());
    tx.commit()?;
    Ok(out)
}

/// The traversal by a restarted process whose local state cache a previous
/// run filled: objects per second.
pub fn warm_traversal(url: &str, schema: &str, cache: &std::path::Path, n: usize) -> pbpersist::Result<f64> {
    let open = || -> pbpersist::Result<pbpersist::Database> {
        let storage =
            pbpersist::storage::PostgresStorage::builder(url).schema(schema).state_cache(cache, 1 << 30).open()?;
        pbpersist::Database::with_storage_and_options(storage, pbpersist::Options::default().cache_objects(n + 1000))
    };
    crate::traverse(&open()?)?;
    let (visited, seconds) = crate::traverse(&open()?)?;
    Ok(visited as f64 / seconds)
}
