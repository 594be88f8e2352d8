//! Tests only a server can have: the documented tables, migrations, lost
//! connections and commits, credentials in errors, row locks.

mod proxy;

use pbpersist::storage::PostgresStorage;
use pbpersist::{Database, Error, Options, Ref, StorageError};
use pbpersist_tests::bank::Counter;
use pbpersist_tests::place::{PgSchema, postgres_url};
use proxy::{Mode, Proxy};

/// Every test here, by name.
pub const TESTS: &[(&str, fn())] = &[
    ("pg::tables_are_the_documented_ones", tables_are_the_documented_ones),
    ("pg::a_newer_format_is_refused", a_newer_format_is_refused),
    ("pg::concurrent_first_opens_migrate_once", concurrent_first_opens_migrate_once),
    ("pg::a_lost_connection_is_transient_and_the_next_transaction_recovers", lost_connection_recovers),
    ("pg::a_commit_cut_off_before_commit_writes_nothing_and_says_unknown", cut_before_commit),
    ("pg::a_commit_cut_off_after_commit_was_written_and_says_unknown", cut_after_commit),
    ("pg::credentials_never_appear_in_errors", credentials_never_appear_in_errors),
    ("pg::writers_of_different_objects_do_not_wait_for_each_other", writers_do_not_wait),
    ("pg::the_url_can_come_from_the_environment", url_from_environment),
    ("pg::dropping_a_database_closes_its_connections", dropping_closes_connections),
    ("pg::a_restarted_process_starts_warm_from_the_state_cache", state_cache_starts_warm),
    ("pg::an_older_format_is_migrated", an_older_format_is_migrated),
    ("pg::a_deadlock_victim_gets_a_transient_error", deadlock_is_transient),
];

fn counter_db(db: &Database) -> Ref<Counter> {
    db.transact(|tx| {
        let r = tx.add(Counter::new())?;
        tx.root_mut()?.insert("counter", r);
        Ok(r)
    })
    .unwrap()
}

fn value(db: &Database, r: Ref<Counter>) -> i64 {
    db.transact(|tx| Ok(tx.get(r)?.value())).unwrap()
}

/// The full error text: the message and every source's.
fn chain(e: &dyn std::error::Error) -> String {
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
    assert_eq!(format, pbpersist::storage::postgres::FORMAT_VERSION);
    let last: i64 = c.query_one("SELECT value FROM pb_meta WHERE key = 'last_tid'", &[]).unwrap().get(0);
    assert_eq!(last, tid);
    let row = c.query_one("SELECT tid, record FROM pb_object WHERE oid = $1", &[&(counter.oid().0 as i64)]).unwrap();
    assert_eq!(row.get::<_, i64>(0), tid, "the object carries the tid of its last commit");
    let record = pbpersist::Record::from_bytes(row.get::<_, Vec<u8>>(1).into()).unwrap();
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
fn url_via(port: Option<u16>, app: &str) -> String {
    let config: postgres::Config = postgres_url().parse().unwrap();
    let (host, server_port) = server(&config);
    let user = config.get_user().unwrap_or("postgres");
    let db = config.get_dbname().unwrap_or("test");
    format!("postgres://{user}@{host}:{}/{db}?application_name={app}", port.unwrap_or(server_port))
}

fn server(config: &postgres::Config) -> (String, u16) {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    (host, config.get_ports().first().copied().unwrap_or(5432))
}

fn lost_connection_recovers() {
    let schema = PgSchema::new();
    let storage = PostgresStorage::builder(&url_via(None, schema.name())).schema(schema.name()).open().unwrap();
    let db = Database::with_storage(storage).unwrap();
    let counter = counter_db(&db);
    let kill = || {
        let n: i64 = schema
            .client()
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                &[&schema.name()],
            )
            .unwrap()
            .get(0);
        assert!(n > 0, "killed the database's connections");
    };

    // Killed between transactions: the next transaction reconnects unseen.
    kill();
    assert_eq!(value(&db, counter), 0);

    // Killed inside a transaction: a typed, transient error, nothing written.
    let mut conn = db.connect().unwrap();
    let mut tx = conn.begin().unwrap();
    kill();
    match tx.get(counter) {
        Err(e @ Error::Storage(StorageError::Unavailable { .. })) => {
            assert!(e.is_transient());
            assert!(e.to_string().contains(schema.name()) || e.to_string().contains("unavailable"), "{e}");
        }
        other => panic!("expected an unavailable error, got {other:?}"),
    }
    drop(tx);
    // The same connection recovers on its next transaction.
    let mut tx = conn.begin().unwrap();
    tx.get_mut(counter).unwrap().set_value(5);
    tx.commit().unwrap();

    // `transact` retries a transaction whose connection was lost.
    let mut first = true;
    db.transact(|tx| {
        if std::mem::take(&mut first) {
            kill();
        }
        let c = tx.get_mut(counter)?;
        c.set_value(c.value() + 1);
        Ok(())
    })
    .unwrap();
    assert_eq!(value(&db, counter), 6);
    assert!(db.stats().retries >= 1);
}

fn cut_commit(mode: Mode) -> (i64, Option<pbpersist::Tid>) {
    let schema = PgSchema::new();
    let config: postgres::Config = postgres_url().parse().unwrap();
    let proxy = Proxy::start(server(&config));
    let storage =
        PostgresStorage::builder(&url_via(Some(proxy.port), schema.name())).schema(schema.name()).open().unwrap();
    let db = Database::with_storage(storage).unwrap();
    let counter = counter_db(&db);
    proxy.arm(mode);
    let mut conn = db.connect().unwrap();
    let mut tx = conn.begin().unwrap();
    tx.get_mut(counter).unwrap().set_value(42);
    let tid = match tx.commit() {
        Err(Error::Storage(StorageError::CommitUnknown { tid, .. })) => tid,
        other => panic!("expected an unknown outcome, got {other:?}"),
    };
    let after = schema.open(Options::default());
    let stored = value(&after, counter);
    let row = schema.client().query_opt("SELECT tid FROM pb_transaction WHERE tid = $1", &[&(tid.0 as i64)]).unwrap();
    (stored, row.map(|_| tid))
}

fn cut_before_commit() {
    let (stored, written) = cut_commit(Mode::DropCommit);
    assert_eq!(stored, 0, "the change was not written");
    assert_eq!(written, None);
}

fn cut_after_commit() {
    let (stored, written) = cut_commit(Mode::DropReply);
    assert_eq!(stored, 42, "the server committed before the connection broke");
    assert!(written.is_some(), "the error's tid is the written one");
}

fn credentials_never_appear_in_errors() {
    let secret = "s3cret-Pa55word";
    // Nothing listens on port 1.
    let refused = PostgresStorage::open(&format!("postgres://postgres:{secret}@127.0.0.1:1/test")).unwrap_err();
    assert!(matches!(refused, StorageError::Unavailable { .. }), "{refused:?}");
    let text = chain(&refused);
    assert!(!text.contains(secret), "{text}");
    assert!(text.contains("postgres@127.0.0.1:1/test"), "the error says where: {text}");

    let malformed =
        PostgresStorage::open(&format!("postgres://postgres:{secret}@127.0.0.1:notaport/test")).unwrap_err();
    assert!(matches!(malformed, StorageError::Config(_)), "{malformed:?}");
    assert!(!chain(&malformed).contains(secret));

    // The test server trusts local users, so the password is accepted and ignored.
    let config: postgres::Config = postgres_url().parse().unwrap();
    let (host, port) = server(&config);
    let user = config.get_user().unwrap_or("postgres");
    let db = config.get_dbname().unwrap_or("test");
    let schema = PgSchema::new();
    let url = format!("postgres://{user}:{secret}@{host}:{port}/{db}");
    let builder = PostgresStorage::builder(&url).schema(schema.name());
    assert!(!format!("{builder:?}").contains(secret), "{builder:?}");
    if let Ok(storage) = PostgresStorage::builder(&url).schema(schema.name()).open() {
        assert!(!format!("{storage:?}").contains(secret));
        let database = Database::with_storage(storage).unwrap();
        assert!(!format!("{database:?}").contains(secret));
    }
}

fn writers_do_not_wait() {
    let schema = PgSchema::new();
    let db = schema.open(Options::default());
    let (x, y) = db.transact(|tx| Ok((tx.add(Counter::new())?, tx.add(Counter::new())?))).unwrap();
    // Another committer holds x's row lock, as in the middle of its commit.
    let mut holder = schema.client();
    let mut held = holder.transaction().unwrap();
    held.execute("SELECT tid FROM pb_object WHERE oid = $1 FOR NO KEY UPDATE", &[&(x.oid().0 as i64)]).unwrap();

    let finished = |r: Ref<Counter>| {
        let db = db.clone();
        let (done, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut conn = db.connect().unwrap();
            let mut tx = conn.begin().unwrap();
            tx.get_mut(r).unwrap().set_value(1);
            let _ = done.send(tx.commit().map(|_| ()));
        });
        wait
    };
    let on_y = finished(y);
    let y_result = on_y.recv_timeout(std::time::Duration::from_secs(30)).expect("a commit of y while x is locked");
    assert!(y_result.is_ok(), "{y_result:?}");

    let on_x = finished(x);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(on_x.try_recv().is_err(), "a commit of x waits for x's lock");
    // The holder commits a newer x: the waiting commit then conflicts on x.
    held.execute("UPDATE pb_object SET tid = tid + 1000 WHERE oid = $1", &[&(x.oid().0 as i64)]).unwrap();
    held.commit().unwrap();
    match on_x.recv_timeout(std::time::Duration::from_secs(30)).unwrap() {
        Err(Error::Conflict(c)) => assert_eq!(c.oid, x.oid()),
        other => panic!("expected a conflict on x, got {other:?}"),
    }
}

fn url_from_environment() {
    let worker = env!("CARGO_BIN_EXE_pbpersist-worker");
    let unset = std::process::Command::new(worker)
        .arg("env-open")
        .env_remove(pbpersist::storage::postgres::URL_VARIABLE)
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
        .env(pbpersist::storage::postgres::URL_VARIABLE, &url)
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
    // Back to version 1 of the layout: no database identity, no reference column.
    c.batch_execute(
        "DELETE FROM pb_meta WHERE key = 'database_id'; ALTER TABLE pb_object DROP COLUMN refs;
         UPDATE pb_meta SET value = 1 WHERE key = 'format'",
    )
    .unwrap();
    let db = schema.open(Options::default());
    assert_eq!(db.transact(|tx| Ok(tx.get(pisa)?.name().to_owned())).unwrap(), "Pisa");
    let rows =
        c.query("SELECT key, value FROM pb_meta WHERE key IN ('format', 'database_id') ORDER BY key", &[]).unwrap();
    assert_eq!(rows.len(), 2, "the migration added the identity");
    assert_eq!(rows[1].get::<_, i64>(1), pbpersist::storage::postgres::FORMAT_VERSION);
    assert_eq!(refs_of(&mut c, pisa), vec![rapunzel.oid().0 as i64], "the migration filled the reference column");
}

fn deadlock_is_transient() {
    let schema = PgSchema::new();
    let db = schema.open(Options::default());
    let (x, y) = db.transact(|tx| Ok((tx.add(Counter::new())?, tx.add(Counter::new())?))).unwrap();
    // Another client, which waits long before checking for deadlocks, holds y.
    let mut other = schema.client();
    other.batch_execute("SET deadlock_timeout = '20s'").unwrap();
    let mut held = other.transaction().unwrap();
    held.execute("SELECT 1 FROM pb_object WHERE oid = $1 FOR UPDATE", &[&(y.oid().0 as i64)]).unwrap();
    let committer = {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut conn = db.connect().unwrap();
            let mut tx = conn.begin().unwrap();
            tx.get_mut(x).unwrap().set_value(1);
            tx.get_mut(y).unwrap().set_value(1);
            // Locks x, then waits for y.
            tx.commit()
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Now the other client wants x: a cycle, which the committer's server
    // process finds first and breaks by aborting the commit.
    held.execute("SELECT 1 FROM pb_object WHERE oid = $1 FOR UPDATE", &[&(x.oid().0 as i64)]).unwrap();
    held.commit().unwrap();
    match committer.join().unwrap() {
        Err(e @ Error::Storage(StorageError::Aborted { .. })) => assert!(e.is_transient(), "{e}"),
        other => panic!("expected an aborted commit, got {other:?}"),
    }
    assert_eq!((value(&db, x), value(&db, y)), (0, 0), "nothing was written");
}
