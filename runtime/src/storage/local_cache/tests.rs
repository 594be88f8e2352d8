//! The cache file's two views, its byte bound, and what it does with a
//! file of another database or of an older layout.

use super::*;

fn scratch() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.db");
    (dir, path)
}

fn count(path: &Path, sql: &str) -> i64 {
    Connection::open(path).unwrap().query_row(sql, [], |r| r.get(0)).unwrap()
}

#[cfg(any(feature = "postgres", feature = "remote"))]
fn loaded(tid: u64, record: &[u8]) -> Loaded {
    Loaded { tid: Tid(tid), record: record.to_vec() }
}

#[cfg(feature = "object-store")]
#[test]
fn records_are_kept_by_oid_and_tid() {
    let (_dir, path) = scratch();
    let file = RecordFile::open(&path, 7, 1 << 20).unwrap();
    file.put(&[(Oid(1), Tid(3), b"one at 3"), (Oid(1), Tid(5), b"one at 5"), (Oid(2), Tid(3), b"two")]);
    let got =
        file.get(&[(Oid(1), Tid(3)), (Oid(1), Tid(5)), (Oid(1), Tid(4)), (Oid(2), Tid(3)), (Oid(u64::MAX), Tid(3))]);
    assert_eq!(got, [Some(b"one at 3".to_vec()), Some(b"one at 5".to_vec()), None, Some(b"two".to_vec()), None]);
    drop(file);
    // Processes share the file, and a restart keeps it.
    let (a, b) = (RecordFile::open(&path, 7, 1 << 20).unwrap(), RecordFile::open(&path, 7, 1 << 20).unwrap());
    b.put(&[(Oid(3), Tid(6), b"three")]);
    assert_eq!(a.get(&[(Oid(1), Tid(5)), (Oid(3), Tid(6))]), [Some(b"one at 5".to_vec()), Some(b"three".to_vec())]);
}

#[cfg(any(feature = "postgres", feature = "remote"))]
#[test]
fn a_current_entry_serves_snapshots_up_to_valid() {
    let (_dir, path) = scratch();
    let cache = StateCache::open(&path, 7, 1 << 20).unwrap();
    assert_eq!(cache.valid(), (0, true));
    cache.advance(None, Tid(10), std::iter::empty());
    cache.put(Tid(10), Oid(1), &loaded(4, b"one at 4"));
    cache.put(Tid(10), Oid(2), &loaded(9, b"two at 9"));
    assert_eq!(cache.valid(), (10, false));
    assert_eq!(cache.get(Tid(10), Oid(1)), Some(loaded(4, b"one at 4")));
    // Before the entry's tid, or past `valid`, the file cannot vouch for it.
    assert_eq!(cache.get(Tid(8), Oid(2)), None);
    assert_eq!(cache.get(Tid(11), Oid(1)), None);

    // Oid 1 changed at 12: it leaves; oid 2 is current up to 15.
    cache.advance(Some(Tid(10)), Tid(15), [Oid(1)].into_iter());
    assert_eq!(cache.get(Tid(15), Oid(1)), None);
    assert_eq!(cache.get(Tid(15), Oid(2)), Some(loaded(9, b"two at 9")));
    // A snapshot older than `valid` does not write what it loaded.
    cache.put(Tid(11), Oid(1), &loaded(4, b"one at 4"));
    assert_eq!(cache.get(Tid(15), Oid(1)), None);
    cache.put(Tid(15), Oid(1), &loaded(12, b"one at 12"));
    assert_eq!(cache.get(Tid(15), Oid(1)), Some(loaded(12, b"one at 12")));
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.entries), (3, 4, 2), "{stats:?}");
    drop(cache);

    // A restart keeps the entries and `valid`; one process holds the file.
    let cache = StateCache::open(&path, 7, 1 << 20).unwrap();
    assert_eq!(cache.valid(), (15, false));
    assert_eq!(cache.get(Tid(15), Oid(1)), Some(loaded(12, b"one at 12")));
    match StateCache::open(&path, 7, 1 << 20) {
        Err(StorageError::Config(reason)) => assert!(reason.contains("in use"), "{reason}"),
        other => panic!("a second open: {:?}", other.map(|_| ())),
    }
}

/// Two sessions begin at once: what one keeps after the other read
/// `valid` is not vouched for by the other's list of changes.
#[cfg(any(feature = "postgres", feature = "remote"))]
#[test]
fn a_list_that_misses_what_another_session_kept_empties_the_file() {
    let (_dir, path) = scratch();
    let cache = StateCache::open(&path, 7, 1 << 20).unwrap();
    // The first finds the file empty; the second then keeps oid 1 at 10.
    assert_eq!(cache.valid(), (0, true));
    cache.advance(None, Tid(10), std::iter::empty());
    cache.put(Tid(10), Oid(1), &loaded(4, b"one at 4"));
    // Oid 1 changed at 12; the first, at 12, listed nothing.
    cache.advance(None, Tid(12), std::iter::empty());
    assert_eq!(cache.get(Tid(12), Oid(1)), None);
    assert_eq!(cache.valid(), (12, true));

    // Likewise a list from a `valid` the file has since passed.
    cache.put(Tid(12), Oid(1), &loaded(12, b"one at 12"));
    cache.advance(Some(Tid(12)), Tid(20), std::iter::empty());
    cache.put(Tid(20), Oid(2), &loaded(20, b"two at 20"));
    cache.advance(Some(Tid(30)), Tid(31), std::iter::empty());
    assert_eq!(cache.get(Tid(31), Oid(1)), None);
    assert_eq!(cache.valid(), (31, true));
    // A list from an older `valid` covers more than needed, which is fine.
    cache.put(Tid(31), Oid(2), &loaded(20, b"two at 20"));
    cache.advance(Some(Tid(25)), Tid(35), [Oid(3)].into_iter());
    assert_eq!(cache.get(Tid(35), Oid(2)), Some(loaded(20, b"two at 20")));
}

#[cfg(all(feature = "object-store", any(feature = "postgres", feature = "remote")))]
#[test]
fn both_views_read_one_file() {
    let (_dir, path) = scratch();
    let cache = StateCache::open(&path, 7, 1 << 20).unwrap();
    cache.advance(None, Tid(10), std::iter::empty());
    cache.put(Tid(10), Oid(1), &loaded(4, b"one at 4"));
    drop(cache);
    let records = RecordFile::open(&path, 7, 1 << 20).unwrap();
    // A current entry is a record like any other.
    assert_eq!(records.get(&[(Oid(1), Tid(4))]), [Some(b"one at 4".to_vec())]);
    // A record not known to be current is not served by oid.
    records.put(&[(Oid(2), Tid(6), b"two at 6")]);
    drop(records);
    let cache = StateCache::open(&path, 7, 1 << 20).unwrap();
    assert_eq!(cache.get(Tid(10), Oid(1)), Some(loaded(4, b"one at 4")));
    assert_eq!(cache.get(Tid(10), Oid(2)), None);
    assert_eq!(cache.stats().entries, 1);
}

#[cfg(feature = "object-store")]
#[test]
fn the_oldest_entries_leave_past_the_byte_bound() {
    let (_dir, path) = scratch();
    let file = RecordFile::open(&path, 7, 1000).unwrap();
    let record = [0u8; 100];
    for tid in 1..=10 {
        file.put(&[(Oid(1), Tid(tid), &record)]);
    }
    assert_eq!(count(&path, "SELECT count(*) FROM record"), 10);
    // One more is past 1000 bytes: the oldest go, down to 900.
    file.put(&[(Oid(1), Tid(11), &record)]);
    let kept: Vec<bool> =
        file.get(&(1..=11).map(|t| (Oid(1), Tid(t))).collect::<Vec<_>>()).iter().map(Option::is_some).collect();
    assert_eq!(kept, [false, false, true, true, true, true, true, true, true, true, true]);
}

#[cfg(any(feature = "postgres", feature = "remote"))]
#[test]
fn the_state_cache_keeps_to_its_byte_bound() {
    let (_dir, path) = scratch();
    let cache = StateCache::open(&path, 7, 1000).unwrap();
    cache.advance(None, Tid(10), std::iter::empty());
    for oid in 1..=50 {
        cache.put(Tid(10), Oid(oid), &loaded(5, &[0u8; 100]));
    }
    // One connection holds the file: ask through it.
    let bytes: i64 =
        lock(&cache.file).conn.query_row("SELECT sum(length(record)) FROM record", [], |r| r.get(0)).unwrap();
    assert!(bytes <= 1000, "{bytes} bytes");
    // The newest stay, the oldest left.
    assert!(cache.get(Tid(10), Oid(50)).is_some());
    assert!(cache.get(Tid(10), Oid(1)).is_none());
    assert_eq!(cache.valid(), (10, false));
}

#[cfg(any(feature = "postgres", feature = "remote"))]
#[test]
fn another_databases_file_is_emptied() {
    let (_dir, path) = scratch();
    let cache = StateCache::open(&path, 7, 1 << 20).unwrap();
    cache.advance(None, Tid(10), std::iter::empty());
    cache.put(Tid(10), Oid(1), &loaded(4, b"ours"));
    drop(cache);
    let cache = StateCache::open(&path, 8, 1 << 20).unwrap();
    assert_eq!(cache.valid(), (0, true));
    cache.advance(None, Tid(10), std::iter::empty());
    assert_eq!(cache.get(Tid(10), Oid(1)), None);
    assert_eq!(cache.stats().entries, 0);
}

#[cfg(feature = "object-store")]
#[test]
fn another_databases_records_are_emptied() {
    let (_dir, path) = scratch();
    RecordFile::open(&path, 7, 1 << 20).unwrap().put(&[(Oid(1), Tid(3), b"ours")]);
    let file = RecordFile::open(&path, 8, 1 << 20).unwrap();
    assert_eq!(file.get(&[(Oid(1), Tid(3))]), [None]);
    assert_eq!(count(&path, "SELECT count(*) FROM record"), 0);
}

/// The layouts the state cache and the object store's record file had
/// before they shared one.
const OLD_LAYOUTS: &[&str] = &[
    "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;
     CREATE TABLE state (oid INTEGER PRIMARY KEY NOT NULL, tid INTEGER NOT NULL, record BLOB NOT NULL,
         added INTEGER NOT NULL);
     CREATE INDEX state_added ON state (added);
     INSERT INTO meta VALUES ('database_id', 7), ('valid', 10);
     INSERT INTO state VALUES (1, 4, x'6f6c64', 1);",
    "CREATE TABLE cache_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
     CREATE TABLE record (oid INTEGER NOT NULL, tid INTEGER NOT NULL, seq INTEGER NOT NULL, bytes BLOB NOT NULL,
         PRIMARY KEY (oid, tid)) WITHOUT ROWID;
     CREATE INDEX record_seq ON record (seq);
     INSERT INTO cache_meta VALUES ('database', 7);
     INSERT INTO record VALUES (1, 4, 1, x'6f6c64');",
];

#[test]
fn an_older_layout_is_replaced() {
    for old in OLD_LAYOUTS {
        let (_dir, path) = scratch();
        Connection::open(&path).unwrap().execute_batch(old).unwrap();
        let file = open(&path, 7, 1 << 20, Sharing::Exclusive).unwrap();
        let f = lock(&file);
        assert_eq!((f.valid, f.bytes), (0, 0));
        let version: i64 = f.conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, LAYOUT_VERSION);
        let tables: Vec<String> = f
            .conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(tables, ["meta", "record"]);
        let columns: i64 =
            f.conn.query_row("SELECT count(*) FROM pragma_table_info('record')", [], |r| r.get(0)).unwrap();
        assert_eq!(columns, 4);
    }
}

#[test]
fn a_file_that_is_no_cache_is_left_alone() {
    let (_dir, path) = scratch();
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE accounts (id INTEGER); INSERT INTO accounts VALUES (1);")
        .unwrap();
    match open(&path, 7, 1 << 20, Sharing::Exclusive) {
        Err(StorageError::Config(reason)) => assert!(reason.contains("accounts"), "{reason}"),
        other => panic!("opened: {:?}", other.map(|_| ())),
    }
    assert_eq!(count(&path, "SELECT count(*) FROM accounts"), 1);
}

#[test]
fn a_file_that_cannot_be_read_is_made_anew() {
    let (_dir, path) = scratch();
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let file = open(&path, 7, 1 << 20, Sharing::Shared).unwrap();
    assert_eq!(lock(&file).bytes, 0);
    drop(file);
    assert_eq!(count(&path, "SELECT count(*) FROM record"), 0);
}
