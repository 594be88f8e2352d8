//! How SQLite connections learn what other programs committed: each
//! transaction lists the oids it wrote (`pb_transaction.oids`); where a list
//! is missing (an old format, a writer that does not keep them, or pruned
//! history), polling falls back to scanning `pb_object`.

const FORMAT_VERSION: i64 = pbpersist::storage::SqliteStorage::FORMAT_VERSION;
use pbpersist::record::Record;
use pbpersist::{Database, Persistent, Ref};
use pbpersist_tests::bank::Counter;
use pbpersist_tests::scratch_dir;
use prost::Message;
use std::path::Path;

fn counter(value: i64) -> Counter {
    let mut c = Counter::new();
    c.set_value(value);
    c
}

/// Commits `value` into `c` through pbpersist.
fn set(db: &Database, c: Ref<Counter>, value: i64) {
    db.transact(|tx| {
        tx.get_mut(c)?.set_value(value);
        Ok(())
    })
    .unwrap();
}

/// A new database holding counters with `values`, and a reader connection
/// whose cache already holds them.
fn fresh(
    values: &[i64],
) -> (tempfile::TempDir, std::path::PathBuf, Database, pbpersist::Connection, Vec<Ref<Counter>>) {
    let dir = scratch_dir();
    let path = dir.path().join("db.sqlite");
    let db = Database::open(&path).unwrap();
    let refs: Vec<Ref<Counter>> = db.transact(|tx| values.iter().map(|v| tx.add(counter(*v))).collect()).unwrap();
    let mut reader = db.connect().unwrap();
    for (r, v) in refs.iter().zip(values) {
        assert_eq!(cached_value(&mut reader, *r), *v);
    }
    (dir, path, db, reader, refs)
}

/// Reads `c` in a connection that stays open, so its cache holds the state.
fn cached_value(conn: &mut pbpersist::Connection, c: Ref<Counter>) -> i64 {
    conn.transact(|tx| Ok(tx.get(c)?.value())).unwrap()
}

/// Writes `value` into `c` the way a program following format 1 would:
/// a new tid and a `pb_transaction` row without an oid list.
fn foreign_write(path: &Path, c: Ref<Counter>, value: i64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let record =
        Record { r#type: Counter::TYPE_NAME.into(), state: counter(value).encode_to_vec().into(), refs: vec![] };
    let tx = conn.unchecked_transaction().unwrap();
    let tid: i64 = tx.query_row("SELECT max(tid) + 1 FROM pb_transaction", [], |r| r.get(0)).unwrap();
    tx.execute("INSERT INTO pb_transaction (tid, committed_at) VALUES (?1, 0)", [tid]).unwrap();
    tx.execute(
        "UPDATE pb_object SET tid = ?1, record = ?2 WHERE oid = ?3",
        rusqlite::params![tid, record.encode_to_vec(), c.oid().0 as i64],
    )
    .unwrap();
    tx.commit().unwrap();
}

#[test]
fn commits_list_their_oids_and_other_connections_see_them() {
    let (_dir, path, db, mut reader, refs) = fresh(&[1]);
    let c = refs[0];
    set(&db, c, 2);
    assert_eq!(cached_value(&mut reader, c), 2, "the poll dropped the stale state");

    let conn = rusqlite::Connection::open(&path).unwrap();
    let oids: Vec<u8> =
        conn.query_row("SELECT oids FROM pb_transaction ORDER BY tid DESC LIMIT 1", [], |r| r.get(0)).unwrap();
    let mut listed = Vec::new();
    let mut rest = oids.as_slice();
    while !rest.is_empty() {
        listed.push(prost::encoding::decode_varint(&mut rest).unwrap());
    }
    assert_eq!(listed, vec![c.oid().0]);
    let indexes: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'pb_object'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(indexes, 0, "no tid index to maintain on every write");
}

#[test]
fn a_commit_without_an_oid_list_is_found_by_scanning() {
    let (_dir, path, db, mut reader, refs) = fresh(&[1, 10]);
    let (c, other) = (refs[0], refs[1]);
    foreign_write(&path, c, 7);
    assert_eq!(cached_value(&mut reader, c), 7);
    // A later commit with a list does not hide the one without.
    set(&db, other, 11);
    foreign_write(&path, c, 8);
    set(&db, other, 12);
    assert_eq!(cached_value(&mut reader, c), 8);
    assert_eq!(cached_value(&mut reader, other), 12);
}

#[test]
fn a_format_1_database_is_migrated_on_open() {
    let dir = scratch_dir();
    let path = dir.path().join("old.sqlite");
    let c = Database::open(&path).unwrap().transact(|tx| tx.add(counter(3))).unwrap();
    // Turn it into what format 1 looked like.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "ALTER TABLE pb_transaction DROP COLUMN oids;
             ALTER TABLE pb_transaction DROP COLUMN user_name;
             ALTER TABLE pb_transaction DROP COLUMN description;
             ALTER TABLE pb_transaction DROP COLUMN extension;
             DROP TABLE pb_object_revision;
             DELETE FROM pb_meta WHERE key = 'history';
             CREATE INDEX pb_object_tid ON pb_object (tid);
             UPDATE pb_meta SET value = 1 WHERE key = 'format';",
        )
        .unwrap();

    let db = Database::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let format: i64 = conn.query_row("SELECT value FROM pb_meta WHERE key = 'format'", [], |r| r.get(0)).unwrap();
    assert_eq!(format, FORMAT_VERSION);
    let index: Option<String> =
        conn.query_row("SELECT name FROM sqlite_master WHERE name = 'pb_object_tid'", [], |r| r.get(0)).ok();
    assert_eq!(index, None);
    let mut reader = db.connect().unwrap();
    assert_eq!(cached_value(&mut reader, c), 3);
    set(&db, c, 4);
    assert_eq!(cached_value(&mut reader, c), 4);
}

#[test]
fn a_newer_format_is_refused() {
    let dir = scratch_dir();
    let path = dir.path().join("new.sqlite");
    drop(Database::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE pb_meta SET value = ?1 WHERE key = 'format'", [FORMAT_VERSION + 1])
        .unwrap();
    let err = Database::open(&path).unwrap_err().to_string();
    assert!(err.contains(&format!("format version {}", FORMAT_VERSION + 1)), "{err}");
}

#[test]
fn old_oid_lists_are_pruned_and_a_poll_from_before_them_scans() {
    let (_dir, path, db, mut reader, refs) = fresh(&[1, 0]);
    let (c, busy) = (refs[0], refs[1]);
    set(&db, c, 2);
    // Enough commits that the list naming `c` is dropped.
    let mut writer = db.connect().unwrap();
    for i in 0..12_000 {
        writer
            .transact(|tx| {
                tx.get_mut(busy)?.set_value(i);
                Ok(())
            })
            .unwrap();
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (kept, dropped): (i64, i64) = conn
        .query_row("SELECT count(oids), count(*) - count(oids) FROM pb_transaction", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert!(kept <= 11_000, "kept {kept} oid lists");
    assert!(dropped >= 1_000, "dropped {dropped}");
    assert_eq!(cached_value(&mut reader, c), 2, "the poll fell back to a scan");
    assert_eq!(cached_value(&mut reader, busy), 11_999);
}
