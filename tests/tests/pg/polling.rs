//! How sessions learn what others committed on PostgreSQL: each transaction
//! lists the oids it wrote (`pb_transaction.oids`); where a list is missing,
//! the poll scans `pb_object` instead.

use super::{counter_db, value};
use pbpersist::record::Record;
use pbpersist::{Options, Persistent, Ref};
use pbpersist_tests::bank::Counter;
use pbpersist_tests::place::PgSchema;
use prost::Message;

/// The record of a counter holding `v`, as a program in any language would write it.
fn counter_record(v: i64) -> Vec<u8> {
    let mut c = Counter::new();
    c.set_value(v);
    Record { r#type: Counter::TYPE_NAME.into(), state: c.encode_to_vec().into(), refs: vec![] }.encode_to_vec()
}

/// A database in a schema of its own with a counter, and a reader whose
/// cache holds the counter.
fn fresh() -> (PgSchema, pbpersist::Database, Ref<Counter>, pbpersist::Connection) {
    let schema = PgSchema::new();
    let db = schema.open(Options::default());
    let counter = counter_db(&db);
    let mut reader = db.connect().unwrap();
    assert_eq!(cached(&mut reader, counter), 0);
    (schema, db, counter, reader)
}

/// Reads `r` in a connection that stays open, so its cache holds the state.
fn cached(conn: &mut pbpersist::Connection, r: Ref<Counter>) -> i64 {
    conn.transact(|tx| Ok(tx.get(r)?.value())).unwrap()
}

pub(super) fn commits_list_their_oids() {
    let (schema, db, counter, mut reader) = fresh();
    db.transact(|tx| Ok(tx.get_mut(counter)?.set_value(5))).unwrap();
    assert_eq!(cached(&mut reader, counter), 5, "the poll dropped the stale state");

    let mut c = schema.client();
    let oids: Vec<i64> = c.query_one("SELECT oids FROM pb_transaction ORDER BY tid DESC LIMIT 1", &[]).unwrap().get(0);
    assert_eq!(oids, vec![counter.oid().0 as i64]);
    let indexes: Vec<String> = c
        .query("SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'pb_object'", &[&schema.name()])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(indexes, vec!["pb_object_pkey".to_owned()], "no index on tid: updates can be HOT");
    let options: Vec<String> = c
        .query_one(
            "SELECT reloptions FROM pg_class WHERE oid = (quote_ident($1) || '.pb_object')::regclass",
            &[&schema.name()],
        )
        .unwrap()
        .get(0);
    assert!(options.iter().any(|o| o.starts_with("fillfactor=")), "{options:?}");
}

pub(super) fn a_commit_without_an_oid_list_is_found_by_scanning() {
    let (schema, _db, counter, mut reader) = fresh();
    let mut c = schema.client();
    let mut tx = c.transaction().unwrap();
    let tid: i64 = tx
        .query_one("UPDATE pb_meta SET value = value + 1 WHERE key = 'last_tid' RETURNING value", &[])
        .unwrap()
        .get(0);
    tx.execute("INSERT INTO pb_transaction (tid, committed_at) VALUES ($1, 0)", &[&tid]).unwrap();
    tx.execute(
        "UPDATE pb_object SET tid = $1, record = $2 WHERE oid = $3",
        &[&tid, &counter_record(7), &(counter.oid().0 as i64)],
    )
    .unwrap();
    tx.commit().unwrap();
    assert_eq!(cached(&mut reader, counter), 7);
}

pub(super) fn old_oid_lists_are_pruned_and_polls_across_them_scan() {
    let (schema, db, counter, mut reader) = fresh();
    // A long history, written directly: the counter changed at tid 10,500.
    let mut c = schema.client();
    let oid = counter.oid().0 as i64;
    c.execute(
        "INSERT INTO pb_transaction (tid, committed_at, oids)
         SELECT t, 0, CASE WHEN t = 10500 THEN ARRAY[$1::bigint] ELSE '{}' END
         FROM generate_series((SELECT max(tid) + 1 FROM pb_transaction), 20999) AS t",
        &[&oid],
    )
    .unwrap();
    c.execute("UPDATE pb_object SET tid = 10500, record = $1 WHERE oid = $2", &[&counter_record(9), &oid]).unwrap();
    c.execute("UPDATE pb_meta SET value = 20999 WHERE key = 'last_tid'", &[]).unwrap();
    // Commit 21,000 drops the lists of commits 10,001 to 11,000.
    let other = db.transact(|tx| tx.add(Counter::new())).unwrap();
    let dropped: i64 = c
        .query_one("SELECT count(*) FROM pb_transaction WHERE oids IS NULL AND tid BETWEEN 10001 AND 11000", &[])
        .unwrap()
        .get(0);
    assert_eq!(dropped, 1000);
    assert_eq!(cached(&mut reader, counter), 9, "the poll fell back to a scan");
    assert_eq!(value(&db, other), 0);
}
