//! Tests only a server can have: the documented tables, migrations, lost
//! connections and commits, credentials in errors, row locks.

mod failures;
mod polling;
mod proxy;

use pbpersist::storage::PostgresStorage;
use pbpersist::{Database, Options, Ref, StorageError};
use pbpersist_tests::bank::Counter;
use pbpersist_tests::place::{PgSchema, postgres_url};

/// Every test here, by name.
pub const TESTS: &[(&str, fn())] = &[
    ("pg::tables_are_the_documented_ones", tables_are_the_documented_ones),
    ("pg::a_newer_format_is_refused", a_newer_format_is_refused),
    ("pg::concurrent_first_opens_migrate_once", concurrent_first_opens_migrate_once),
    ("pg::a_lost_connection_is_transient_and_the_next_transaction_recovers", failures::lost_connection_recovers),
    ("pg::a_commit_cut_off_before_commit_writes_nothing_and_says_unknown", failures::cut_before_commit),
    ("pg::a_commit_cut_off_after_commit_was_written_and_says_unknown", failures::cut_after_commit),
    ("pg::credentials_never_appear_in_errors", failures::credentials_never_appear_in_errors),
    ("pg::writers_of_different_objects_do_not_wait_for_each_other", failures::writers_do_not_wait),
    ("pg::the_url_can_come_from_the_environment", url_from_environment),
    ("pg::dropping_a_database_closes_its_connections", dropping_closes_connections),
    ("pg::a_restarted_process_starts_warm_from_the_state_cache", state_cache_starts_warm),
    ("pg::an_older_format_is_migrated", an_older_format_is_migrated),
    ("pg::a_copy_from_sqlite_and_back_is_identical", a_copy_from_sqlite_and_back_is_identical),
    ("pg::a_deadlock_victim_gets_a_transient_error", failures::deadlock_is_transient),
    ("pg::commits_list_their_oids", polling::commits_list_their_oids),
    (
        "pg::a_commit_without_an_oid_list_is_found_by_scanning",
        polling::a_commit_without_an_oid_list_is_found_by_scanning,
    ),
    (
        "pg::old_oid_lists_are_pruned_and_polls_across_them_scan",
        polling::old_oid_lists_are_pruned_and_polls_across_them_scan,
    ),
];

pub(super) fn counter_db(db: &Database) -> Ref<Counter> {
    db.transact(|tx| {
        let r = tx.add(Counter::new())?;
        tx.root_mut()?.insert("counter", r);
        Ok(r)
    })
    .unwrap()
}

pub(super) fn value(db: &Database, r: Ref<Counter>) -> i64 {
    db.transact(|tx| Ok(tx.get(r)?.value())).unwrap()
}

/// The full error text: the message and every source's.
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = format!("{e} / {e:?}");
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(" / {s}"));
        source = s.source();
    }
    text
}

fn tables_are_the_documented_ones() {
    let schema = PgSchema::new();
    let db = schema.open(Options::default());
    let counter = counter_db(&db);
    let tid = db.transact(|tx| Ok(tx.get_mut(counter)?.set_value(7))).and_then(|()| {
        let mut conn = db.connect()?;
        Ok(conn.begin()?.snapshot_tid())
    });
    let tid = tid.unwrap().0 as i64;
    let mut c = schema.client();
    let format: i64 = c.query_one("SELECT value FROM pb_meta WHERE key = 'format'", &[]).unwrap().get(0);
    assert_eq!(format, pbpersist::storage::PostgresStorage::FORMAT_VERSION);
    let last: i64 = c.query_one("SELECT value FROM pb_meta WHERE key = 'last_tid'", &[]).unwrap().get(0);
    assert_eq!(last, tid);
    let row = c.query_one("SELECT tid, record FROM pb_object WHERE oid = $1", &[&(counter.oid().0 as i64)]).unwrap();
    assert_eq!(row.get::<_, i64>(0), tid, "the object carries the tid of its last commit");
    let record = pbpersist::record::Record::from_bytes(row.get::<_, Vec<u8>>(1).into()).unwrap();
    assert_eq!(record.r#type, "bank.Counter");
    let logged: i64 = c.query_one("SELECT count(*) FROM pb_transaction WHERE tid <= $1", &[&tid]).unwrap().get(0);
    assert_eq!(logged, tid, "one pb_transaction row per commit");
    let schemas: Vec<String> = c.query("SELECT file FROM pb_schema", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert!(schemas.iter().any(|f| f.contains("bank")), "{schemas:?}");
}

fn a_newer_format_is_refused() {
    let schema = PgSchema::new();
    drop(schema.storage());
    schema.client().execute("UPDATE pb_meta SET value = 99 WHERE key = 'format'", &[]).unwrap();
    match PostgresStorage::builder(&postgres_url()).schema(schema.name()).open() {
        Err(StorageError::Format(msg)) => assert!(msg.contains("99"), "{msg}"),
        other => panic!("expected a format error, got {other:?}"),
    }
}

fn concurrent_first_opens_migrate_once() {
    let schema = PgSchema::new();
    let name = schema.name().to_owned();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let name = name.clone();
            std::thread::spawn(move || {
                let storage = PostgresStorage::builder(&postgres_url()).schema(&name).open().unwrap();
                let db = Database::with_storage(storage).unwrap();
                db.transact(|tx| Ok(tx.root()?.len())).unwrap()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 0);
    }
    let roots: i64 = schema.client().query_one("SELECT count(*) FROM pb_object", &[]).unwrap().get(0);
    assert_eq!(roots, 1, "exactly one root was created");
}

/// A URL for this schema's tables through `host:port`, with an application
/// name to find its server connections by.
pub(super) fn url_via(port: Option<u16>, app: &str) -> String {
    let config: postgres::Config = postgres_url().parse().unwrap();
    let (host, server_port) = server(&config);
    let user = config.get_user().unwrap_or("postgres");
    let db = config.get_dbname().unwrap_or("test");
    format!("postgres://{user}@{host}:{}/{db}?application_name={app}", port.unwrap_or(server_port))
}

pub(super) fn server(config: &postgres::Config) -> (String, u16) {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    (host, config.get_ports().first().copied().unwrap_or(5432))
}

fn url_from_environment() {
    let worker = env!("CARGO_BIN_EXE_pbpersist-worker");
    let unset = std::process::Command::new(worker)
        .arg("env-open")
        .env_remove(pbpersist::storage::PostgresStorage::URL_VARIABLE)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&unset.stderr);
    assert!(!unset.status.success() && text.contains("PBPERSIST_POSTGRES_URL"), "{text}");

    // The URL's own options pick the schema, which must exist.
    let schema = PgSchema::new();
    drop(schema.storage());
    let sep = if postgres_url().contains('?') { '&' } else { '?' };
    let url = format!("{}{sep}options=-c%20search_path%3D{}", postgres_url(), schema.name());
    let set = std::process::Command::new(worker)
        .arg("env-open")
        .env(pbpersist::storage::PostgresStorage::URL_VARIABLE, &url)
        .output()
        .unwrap();
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let db = schema.open(Options::default());
    assert_eq!(db.transact(|tx| Ok(tx.root()?.len())).unwrap(), 1, "the worker's entry is in this schema");
}

fn dropping_closes_connections() {
    let schema = PgSchema::new();
    let count = || -> i64 {
        let sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1";
        schema.client().query_one(sql, &[&schema.name()]).unwrap().get(0)
    };
    let storage = PostgresStorage::builder(&url_via(None, schema.name())).schema(schema.name()).open().unwrap();
    let db = Database::with_storage(storage).unwrap();
    let counter = counter_db(&db);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| value(&db, counter));
        }
    });
    assert!(count() >= 2, "the storage and its sessions are connected");
    drop(db);
    // The server notices closed sockets a moment later.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while count() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(count(), 0, "every connection of the dropped database is closed");
}

fn state_cache_starts_warm() {
    let schema = PgSchema::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("states.db");
    let cached = |schema: &PgSchema| {
        let builder = PostgresStorage::builder(&postgres_url()).schema(schema.name()).state_cache(&file, 1 << 26);
        let storage = builder.open().unwrap();
        (Database::with_storage(storage.clone()).unwrap(), storage)
    };
    let stats = |storage: &PostgresStorage| storage.state_cache_stats().unwrap();
    let read_all = |db: &Database, refs: &[Ref<Counter>]| -> Vec<i64> {
        db.transact(|tx| refs.iter().map(|r| Ok(tx.get(*r)?.value())).collect()).unwrap()
    };
    let refs: Vec<Ref<Counter>> = {
        let (db, _) = cached(&schema);
        db.transact(|tx| (0..50).map(|_| tx.add(Counter::new())).collect()).unwrap()
    };
    {
        // The first run fills the file.
        let (db, storage) = cached(&schema);
        assert_eq!(read_all(&db, &refs), vec![0; 50]);
        assert_eq!(stats(&storage).hits, 0);
        assert!(stats(&storage).entries >= 50);
    }
    // While no process runs, another host changes one object.
    let other = schema.open(Options::default());
    other.transact(|tx| Ok(tx.get_mut(refs[7])?.set_value(99))).unwrap();
    drop(other);
    {
        let (db, storage) = cached(&schema);
        let mut expected = vec![0; 50];
        expected[7] = 99;
        assert_eq!(read_all(&db, &refs), expected, "the changed object is not served stale");
        let s = stats(&storage);
        // The root (read at open) and the 49 unchanged counters.
        assert_eq!((s.hits, s.misses), (50, 1), "every unchanged object came from the file: {s:?}");
    }
    // The same file for another database starts empty.
    let elsewhere = PgSchema::new();
    let (_db, storage) = cached(&elsewhere);
    assert_eq!(stats(&storage).entries, 0);
}

fn an_older_format_is_migrated() {
    use pbpersist_examples::demo::Tower;
    let schema = PgSchema::new();
    let db = schema.open(Options::default());
    pbpersist_examples::tower::store_in(&db).unwrap();
    let (pisa, rapunzel) = db
        .transact(|tx| {
            let root = tx.root()?;
            Ok((root.require::<Tower>("pisa")?, root.require::<Tower>("rapunzel")?))
        })
        .unwrap();
    drop(db);
    let mut c = schema.client();
    let refs_of = |c: &mut postgres::Client, r: Ref<Tower>| -> Vec<i64> {
        c.query_one("SELECT refs FROM pb_object WHERE oid = $1", &[&(r.oid().0 as i64)]).unwrap().get(0)
    };
    assert_eq!(refs_of(&mut c, pisa), vec![rapunzel.oid().0 as i64], "commits write the reference column");
    // Back to version 1 of the layout: no database identity, no reference
    // column, a tid index instead of oid lists, no transaction metadata, no
    // history table.
    c.batch_execute(
        "DELETE FROM pb_meta WHERE key IN ('database_id', 'history'); ALTER TABLE pb_object DROP COLUMN refs;
         ALTER TABLE pb_transaction DROP COLUMN oids, DROP COLUMN user_name, DROP COLUMN description,
                                    DROP COLUMN extension;
         DROP TABLE pb_object_revision; CREATE INDEX pb_object_tid ON pb_object (tid);
         UPDATE pb_meta SET value = 1 WHERE key = 'format'",
    )
    .unwrap();
    let db = schema.open(Options::default());
    let mut reader = db.connect().unwrap();
    let name = |conn: &mut pbpersist::Connection| conn.transact(|tx| Ok(tx.get(pisa)?.name().to_owned())).unwrap();
    assert_eq!(name(&mut reader), "Pisa");
    // Commits after the migration list their oids for other sessions' polls.
    db.transact(|tx| Ok(tx.get_mut(pisa)?.set_name("Pisa, straightened"))).unwrap();
    assert_eq!(name(&mut reader), "Pisa, straightened");
    let index = c
        .query_opt("SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND indexname = 'pb_object_tid'", &[&schema.name()])
        .unwrap();
    assert!(index.is_none(), "the migration dropped the tid index");
    let rows =
        c.query("SELECT key, value FROM pb_meta WHERE key IN ('format', 'database_id') ORDER BY key", &[]).unwrap();
    assert_eq!(rows.len(), 2, "the migration added the identity");
    assert_eq!(rows[1].get::<_, i64>(1), pbpersist::storage::PostgresStorage::FORMAT_VERSION);
    assert_eq!(refs_of(&mut c, pisa), vec![rapunzel.oid().0 as i64], "the migration filled the reference column");
}

/// SQLite to PostgreSQL and back, both history-preserving: the same
/// transactions, records, current states and histories on all three.
fn a_copy_from_sqlite_and_back_is_identical() {
    use pbpersist::storage::History;
    use pbpersist::storage::{SqliteStorage, copy};
    use pbpersist_tests::dump::dump;
    let dir = tempfile::tempdir().unwrap();
    let sqlite =
        |name: &str| SqliteStorage::builder(dir.path().join(name)).history(History::Preserving).open().unwrap();
    let db = Database::with_storage(sqlite("source.db")).unwrap();
    pbpersist_examples::tower::store_in(&db).unwrap();
    let pisa = db.transact(|tx| tx.root()?.require::<pbpersist_examples::demo::Tower>("pisa")).unwrap();
    for h in [57.0, 58.0] {
        db.transact(|tx| {
            tx.set_user("surveyor");
            Ok(tx.get_mut(pisa)?.set_height(h))
        })
        .unwrap();
    }
    db.transact(|tx| Ok(tx.root_mut()?.remove("bob"))).unwrap();
    db.gc(false).unwrap();
    let schema = PgSchema::new();
    let pg =
        PostgresStorage::builder(&postgres_url()).schema(schema.name()).history(History::Preserving).open().unwrap();
    copy(db.storage(), &pg, &mut |_| {}).unwrap();
    let back = sqlite("back.db");
    copy(&pg, &back, &mut |_| {}).unwrap();
    let original = dump(db.storage());
    assert_eq!(dump(&pg), original);
    assert_eq!(dump(&back), original);
    // The copy on the server takes commits and reads its past.
    let on_server = Database::with_storage(pg).unwrap();
    on_server.transact(|tx| Ok(tx.get_mut(pisa)?.set_height(59.0))).unwrap();
    let first = original.transactions[1].tid;
    let then = on_server.at(first).unwrap().transact(|tx| Ok(tx.get(pisa)?.height())).unwrap();
    assert_eq!(then, 56.7);
}
