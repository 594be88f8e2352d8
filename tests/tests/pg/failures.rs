//! What happens when things go wrong on a server: lost connections, commits
//! cut off mid-flight, deadlocks, waits on row locks, credentials in errors.

use super::proxy::{Mode, Proxy};
use super::{chain, counter_db, server, url_via, value};
use pbpersist::storage::PostgresStorage;
use pbpersist::{Database, Error, Options, Ref, StorageError};
use pbpersist_tests::bank::Counter;
use pbpersist_tests::place::{PgSchema, postgres_url};

pub(super) fn lost_connection_recovers() {
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

pub(super) fn cut_before_commit() {
    let (stored, written) = cut_commit(Mode::DropCommit);
    assert_eq!(stored, 0, "the change was not written");
    assert_eq!(written, None);
}

pub(super) fn cut_after_commit() {
    let (stored, written) = cut_commit(Mode::DropReply);
    assert_eq!(stored, 42, "the server committed before the connection broke");
    assert!(written.is_some(), "the error's tid is the written one");
}

pub(super) fn credentials_never_appear_in_errors() {
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

pub(super) fn writers_do_not_wait() {
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

pub(super) fn deadlock_is_transient() {
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
