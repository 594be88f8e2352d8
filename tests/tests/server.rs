//! The server: the storage suite through `pbpersist-server` (in this process
//! and in another one), processes sharing a database through it, the
//! protocol handshake, and a client inside a Tokio runtime.
#![allow(clippy::unit_arg, clippy::vec_init_then_push)] // Trials are pushed by a macro per suite test.

#[path = "multiprocess/mod.rs"]
mod multiprocess;

use libtest_mimic::{Arguments, Trial};
use pbpersist::conformance::{self as suite, Backend};
use pbpersist::storage::protocol;
use pbpersist::storage::{History, RemoteStorage, SqliteStorage, Storage};
use pbpersist::{Database, StorageError};
use pbpersist_server::Server;
use pbpersist_tests::Worker;
use pbpersist_tests::bank::Counter;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// A server over a new SQLite database in this process, and what keeps it.
fn serve(history: History) -> (String, Box<dyn std::any::Any>) {
    let dir = pbpersist_tests::scratch_dir();
    let storage = SqliteStorage::builder(dir.path().join("db")).history(history).open().unwrap();
    let running = Server::new(storage).start("127.0.0.1:0".parse().unwrap()).unwrap();
    (running.url(), Box::new((running, dir)))
}

/// A server over a new SQLite database in a process of its own.
fn serve_in_process() -> (String, Box<dyn std::any::Any>) {
    let dir = pbpersist_tests::scratch_dir();
    let (url, child) = start_worker_server(dir.path(), None);
    (url, Box::new((child, dir)))
}

/// Starts a server process over `dir/db`, with a configuration file if
/// given, its log going to `dir/log`.
fn start_worker_server(dir: &std::path::Path, config: Option<&str>) -> (String, Worker) {
    start_worker_server_on(dir, config, "127.0.0.1:0")
}

fn start_worker_server_on(dir: &std::path::Path, config: Option<&str>, listen: &str) -> (String, Worker) {
    let mut args = vec!["serve".to_owned(), dir.join("db").display().to_string()];
    if let Some(config) = config {
        std::fs::write(dir.join("server.toml"), config).unwrap();
        args.push(dir.join("server.toml").display().to_string());
    }
    let mut child = Worker(
        Command::new(env!("CARGO_BIN_EXE_pbpersist-worker"))
            .args(args)
            .env("PBPERSIST_LISTEN", listen)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::options().create(true).append(true).open(dir.join("log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("http://"), "the server did not start: {line:?}");
    (line.trim().to_owned(), child)
}

fn backend_over((url, keep): (String, Box<dyn std::any::Any>)) -> Backend {
    Backend::new(move |options| {
        let _ = &keep;
        Database::with_storage_and_options(RemoteStorage::connect(&url).unwrap(), options).unwrap()
    })
}

fn sqlite_backend() -> Backend {
    backend_over(serve(History::Free))
}

/// A server that validates every record: the suite's honest records pass.
fn validating_backend() -> Backend {
    let dir = pbpersist_tests::scratch_dir();
    let storage = SqliteStorage::open(dir.path().join("db")).unwrap();
    let running = Server::new(storage).validate(true).start("127.0.0.1:0".parse().unwrap()).unwrap();
    backend_over((running.url(), Box::new((running, dir)))).lighter()
}

/// Every client keeps a state cache file: the first of the directory's
/// files no other open storage holds, so a database opened after another
/// was dropped starts from the file that one left, with whatever was
/// committed in between to drop.
fn cached_backend() -> Backend {
    let (url, keep) = serve(History::Free);
    let files = pbpersist_tests::scratch_dir();
    Backend::new(move |options| {
        let _ = &keep;
        let storage = (0..)
            .find_map(|i| {
                let path = files.path().join(format!("cache-{i}.db"));
                match RemoteStorage::builder(&url).state_cache(path, 1 << 20).connect() {
                    Err(StorageError::Config(reason)) if reason.contains("in use") => None,
                    other => Some(other.unwrap()),
                }
            })
            .unwrap();
        Database::with_storage_and_options(storage, options).unwrap()
    })
    .lighter()
}

fn sqlite_history_backend() -> Backend {
    backend_over(serve(History::Preserving)).lighter()
}

fn process_backend() -> Backend {
    backend_over(serve_in_process()).lighter()
}

macro_rules! suite_trials {
    ($trials:ident, $kind:literal, $backend:ident; $($module:ident :: $test:ident),* $(,)?) => {
        $(
            $trials.push(Trial::test(
                concat!($kind, "::suite::", stringify!($module), "::", stringify!($test)),
                || Ok(suite::$module::$test(&$backend())),
            ));
        )*
    };
}

/// The client and server agree on the newest version both speak; a client
/// that speaks only versions the server does not is refused with a clear
/// status, and so is `RemoteStorage` against an address with no server.
fn the_handshake_picks_a_common_version_and_refuses_others() {
    let (url, _keep) = serve(History::Free);
    let storage = RemoteStorage::connect(&url).unwrap();
    assert_eq!(storage.protocol_version(), *protocol::VERSIONS.last().unwrap());
    assert_eq!(storage.server_backend(), "sqlite");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut client = protocol::storage_client::StorageClient::connect(url.clone()).await.unwrap();
        let old = client.hello(protocol::HelloRequest { versions: vec![0] }).await.unwrap_err();
        assert_eq!(old.code(), tonic::Code::FailedPrecondition);
        assert!(old.message().contains("speaks protocol versions [1]"), "{}", old.message());
        let both = client.hello(protocol::HelloRequest { versions: vec![0, 1, 99] }).await.unwrap();
        assert_eq!(both.into_inner().version, 1);
    });

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let e = RemoteStorage::connect(&format!("http://{closed}")).unwrap_err();
    assert!(matches!(e, StorageError::Unavailable { .. }), "{e:?}");
    let e = RemoteStorage::connect("not a url").unwrap_err();
    assert!(matches!(e, StorageError::Config(_)), "{e:?}");
}

/// The storage owns its runtime, so a program that calls it from inside
/// its own Tokio runtime (as a web handler would) works.
fn it_works_called_from_inside_a_tokio_runtime() {
    let (url, _keep) = serve(History::Free);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let db = Database::with_storage(RemoteStorage::connect(&url).unwrap()).unwrap();
        let c = db.transact(|tx| tx.add(Counter::new())).unwrap();
        for i in 1..=5 {
            db.transact(|tx| Ok(tx.get_mut(c)?.set_value(i))).unwrap();
        }
        assert_eq!(db.transact(|tx| Ok(tx.get(c)?.value())).unwrap(), 5);
        drop(db);
    });
}

/// A server that refuses writes says so in the handshake, and a commit sent
/// anyway is refused with nothing written.
fn a_read_only_server_refuses_commits() {
    let dir = pbpersist_tests::scratch_dir();
    let path = dir.path().join("db");
    let db = Database::open(&path).unwrap();
    let c = db.transact(|tx| tx.add(Counter::new())).unwrap();
    drop(db);
    let running =
        Server::new(SqliteStorage::open(&path).unwrap()).read_only(true).start("127.0.0.1:0".parse().unwrap()).unwrap();
    let storage = RemoteStorage::connect(&running.url()).unwrap();
    assert!(storage.read_only());
    let mut session = storage.open_session().unwrap();
    session.begin(None).unwrap();
    let stored = session.load(c.oid()).unwrap().unwrap();
    let write = pbpersist::storage::Write { oid: c.oid(), base: Some(stored.tid), record: stored.record.clone() };
    let e = session.commit(&[write], &[], &Default::default(), &mut |_, _| None).unwrap_err();
    assert!(matches!(e, StorageError::ReadOnly { .. }), "{e:?}");
    session.begin(None).unwrap();
    assert_eq!(session.load(c.oid()).unwrap().unwrap().tid, stored.tid);
    assert!(matches!(storage.new_oids(1).unwrap_err(), StorageError::ReadOnly { .. }));
}

/// Tokens, rights and package limits from a configuration file, checked by
/// the server itself (a client that ignores what `Hello` said is refused
/// too); every refusal is logged, and no token reaches the log.
fn tokens_rights_and_packages_are_enforced_and_logged_without_secrets() {
    use pbpersist::storage::Write;
    let dir = pbpersist_tests::scratch_dir();
    let hash = pbpersist_server::hash_token;
    let config = format!(
        r#"
        [[client]]
        name = "reader"
        token_sha256 = "{}"
        access = "read-only"
        [[client]]
        name = "writer"
        token_sha256 = "{}"
        access = "read-write"
        [[client]]
        name = "demo-only"
        token_sha256 = "{}"
        access = "read-write"
        packages = ["demo"]
        [[client]]
        name = "admin"
        token_sha256 = "{}"
        access = "admin"
        "#,
        hash("reader-secret-1"),
        hash("writer-secret-2"),
        hash("demo-secret-3"),
        hash("admin-secret-4"),
    );
    let (url, _server) = start_worker_server(dir.path(), Some(&config));
    let connect = |token: &str| RemoteStorage::builder(&url).token(token).connect();
    let refused = |e: StorageError, says: &str| match e {
        StorageError::Refused { reason, .. } => assert!(reason.contains(says), "{reason}"),
        other => panic!("expected a refusal saying {says:?}, got {other:?}"),
    };

    refused(RemoteStorage::builder(&url).connect().unwrap_err(), "a bearer token is required");
    refused(connect("guessed-secret").unwrap_err(), "not known");

    let writer = Database::with_storage(connect("writer-secret-2").unwrap()).unwrap();
    let c = writer.transact(|tx| tx.add(Counter::new())).unwrap();
    writer.transact(|tx| Ok(tx.get_mut(c)?.set_value(1))).unwrap();
    refused(writer.storage().admin().unwrap().pack(pbpersist::Tid(1), 10).unwrap_err(), "may not pack");

    // A write of the counter, sent as each client; the server decides.
    let try_write = |storage: &RemoteStorage| {
        let mut session = storage.open_session().unwrap();
        session.begin(None).unwrap();
        let stored = session.load(c.oid()).unwrap().unwrap();
        let write = Write { oid: c.oid(), base: Some(stored.tid), record: stored.record };
        session.commit(&[write], &[], &Default::default(), &mut |_, _| None)
    };
    let reader = connect("reader-secret-1").unwrap();
    assert!(reader.read_only(), "the handshake tells a reader it may only read");
    refused(try_write(&reader).unwrap_err(), "may not commit: that takes the read-write right, and it has read-only");
    refused(reader.new_oids(1).unwrap_err(), "may not allocate oids");
    refused(try_write(&connect("demo-secret-3").unwrap()).unwrap_err(), "may not write objects of type bank.Counter");
    assert_eq!(writer.transact(|tx| Ok(tx.get(c)?.value())).unwrap(), 1, "nothing refused was written");
    assert!(try_write(&connect("admin-secret-4").unwrap()).unwrap().is_some());
    connect("admin-secret-4").unwrap().admin().unwrap().pack(pbpersist::Tid(1), 10).unwrap();

    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    for secret in ["reader-secret-1", "writer-secret-2", "demo-secret-3", "admin-secret-4", "guessed-secret"] {
        assert!(!log.contains(secret), "the log shows a token:\n{log}");
    }
    for said in ["refused: no token", "refused: unknown token", "refused a commit: client reader", "bank.Counter"] {
        assert!(log.contains(said), "the log lacks {said:?}:\n{log}");
    }
}

/// A validating server refuses, with a reason and nothing written, records
/// of unknown types, states that do not decode, missing required fields,
/// nesting over the limit, and reference lists that leave out or add
/// references; a commit with one bad record among good ones writes none.
fn a_validating_server_refuses_records_that_lie() {
    use pbpersist::storage::Write;
    use prost::Message;
    let dir = pbpersist_tests::scratch_dir();
    let storage = SqliteStorage::open(dir.path().join("db")).unwrap();
    let running = Server::new(storage).validate(true).start("127.0.0.1:0".parse().unwrap()).unwrap();
    let remote = RemoteStorage::connect(&running.url()).unwrap();
    let schema = r#"
        syntax = "proto2";
        package check;
        import "pbpersist/options.proto";
        message Node {
          optional Node child = 1;
          optional pbpersist.Ref next = 2;
          required string name = 3;
        }
    "#;
    remote.put_schemas(&[("check.proto".into(), schema.into())]).unwrap();
    let oids = remote.new_oids(3).unwrap();
    let (a, b) = (oids.start, oids.start + 1);

    // check.Node, hand-encoded: a name, an optional reference, `depth`
    // levels of children.
    fn node(name: Option<&str>, next: Option<u64>, depth: usize) -> Vec<u8> {
        let mut out = Vec::new();
        if depth > 0 {
            let child = node(Some("c"), None, depth - 1);
            prost::encoding::bytes::encode(1, &child, &mut out);
        }
        if let Some(oid) = next {
            let mut r = Vec::new();
            prost::encoding::uint64::encode(1, &oid, &mut r);
            prost::encoding::bytes::encode(2, &r, &mut out);
        }
        if let Some(name) = name {
            prost::encoding::string::encode(3, &name.to_owned(), &mut out);
        }
        out
    }
    let record = |ty: &str, state: Vec<u8>, refs: Vec<u64>| {
        pbpersist::record::Record { r#type: ty.into(), state: state.into(), refs }.encode_to_vec()
    };
    let commit = |writes: Vec<(u64, Vec<u8>)>| {
        let mut session = remote.open_session().unwrap();
        session.begin(None).unwrap();
        let writes: Vec<Write> =
            writes.into_iter().map(|(oid, record)| Write { oid: pbpersist::Oid(oid), base: None, record }).collect();
        session.commit(&writes, &[], &Default::default(), &mut |_, _| None)
    };
    let refused = |result: Result<Option<pbpersist::Tid>, StorageError>, says: &str| match result {
        Err(StorageError::Refused { reason, .. }) => assert!(reason.contains(says), "{reason}"),
        other => panic!("expected a refusal saying {says:?}, got {other:?}"),
    };
    let good = record("check.Node", node(Some("a"), Some(b), 0), vec![b]);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (record("check.Node", node(Some("a"), Some(b), 0), vec![]), "does not match the references"),
        (record("check.Node", node(Some("a"), None, 0), vec![b]), "does not match the references"),
        (record("check.Node", vec![0xff, 0xff, 0xff], vec![]), "does not decode as check.Node"),
        (record("check.Node", node(None, None, 0), vec![]), "required field check.Node.name is not set"),
        (record("check.Node", node(Some("a"), None, 40), vec![]), "nest deeper than 32 levels"),
        (record("check.Nope", node(Some("a"), None, 0), vec![]), "no schema for"),
        (vec![0x0a, 0xff], "is malformed"),
    ];
    for (bad, says) in cases {
        refused(commit(vec![(a, good.clone()), (b, bad)]), says);
    }
    let mut session = remote.open_session().unwrap();
    session.begin(None).unwrap();
    assert!(session.load(pbpersist::Oid(a)).unwrap().is_none(), "a refused commit wrote its good record");
    session.end().unwrap();
    let fine = record("check.Node", node(Some("b"), None, 5), vec![]);
    assert!(commit(vec![(a, good), (b, fine)]).unwrap().is_some());
}

/// The server pushes every commit to a watching client in tid order, with
/// the oids it wrote: commits through the server at once, and a commit made
/// beside it, straight into its SQLite file, within its polling interval; a
/// watch from an older tid replays what came after it first.
fn commits_are_pushed_to_watchers() {
    let dir = pbpersist_tests::scratch_dir();
    let path = dir.path().join("db");
    let running = Server::new(SqliteStorage::open(&path).unwrap()).start("127.0.0.1:0".parse().unwrap()).unwrap();
    let remote = RemoteStorage::connect(&running.url()).unwrap();
    let db = Database::with_storage(remote.clone()).unwrap();
    let c = db.transact(|tx| tx.add(Counter::new())).unwrap();
    let first = db.last_transactions(1).unwrap()[0].tid;
    let mut watch = remote.watch(None).unwrap();
    let mut latencies = Vec::new();
    for i in 1..=20 {
        let start = std::time::Instant::now();
        db.transact(|tx| Ok(tx.get_mut(c)?.set_value(i))).unwrap();
        let pushed = watch.next().unwrap().unwrap();
        latencies.push(start.elapsed());
        assert_eq!(pushed.oids, Some(vec![c.oid()]));
        assert_eq!(pushed.tid, db.last_transactions(1).unwrap()[0].tid);
    }
    // A commit the server did not make: found by its poll of the log.
    let beside = Database::open(&path).unwrap();
    beside.transact(|tx| Ok(tx.get_mut(c)?.set_value(100))).unwrap();
    let pushed = watch.next().unwrap().unwrap();
    assert_eq!(pushed.tid, beside.last_transactions(1).unwrap()[0].tid);
    // From an older tid: the 21 commits after it, in order.
    let replayed: Vec<_> = remote.watch(Some(first)).unwrap().take(21).map(|t| t.unwrap().tid).collect();
    assert!(replayed.windows(2).all(|w| w[0] < w[1]) && replayed.len() == 21, "{replayed:?}");
    latencies.sort();
    println!("commit to push: median {:?}, max {:?}", latencies[10], latencies[19]);
}

/// A restarted client with a state cache loads from its file what nobody
/// changed, and from the server what others committed while it was away;
/// a file made for another database is emptied, and a historical view
/// does not use it.
fn a_restarted_client_reads_its_state_cache() {
    let (url, _keep) = serve(History::Preserving);
    let files = pbpersist_tests::scratch_dir();
    let cache = files.path().join("client.db");
    let connect = |url: &str| RemoteStorage::builder(url).state_cache(&cache, 1 << 20).connect().unwrap();
    let (counters, before) = {
        let remote = connect(&url);
        let db = Database::with_storage(remote.clone()).unwrap();
        let counters = db
            .transact(|tx| {
                (0..50)
                    .map(|i| {
                        tx.add({
                            let mut c = Counter::new();
                            c.set_value(i);
                            c
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap();
        let before = db.last_transactions(1).unwrap()[0].tid;
        // A fresh object cache, so that every load reaches the storage.
        let reader = Database::with_storage(remote.clone()).unwrap();
        reader.transact(|tx| counters.iter().try_for_each(|c| tx.get(*c).map(drop))).unwrap();
        let stats = remote.state_cache_stats().unwrap();
        // The counters and the database's root object.
        assert_eq!((stats.hits, stats.entries), (0, 51), "{stats:?}");
        let _ = reader;
        (counters, before)
    };
    // Another client changes ten while the first is away.
    let other = Database::with_storage(RemoteStorage::connect(&url).unwrap()).unwrap();
    other.transact(|tx| counters[..10].iter().try_for_each(|c| Ok(tx.get_mut(*c)?.set_value(1000)))).unwrap();

    let remote = connect(&url);
    let db = Database::with_storage(remote.clone()).unwrap();
    let values: Vec<i64> = db.transact(|tx| counters.iter().map(|c| Ok(tx.get(*c)?.value())).collect()).unwrap();
    assert_eq!(values[..10], [1000; 10]);
    assert_eq!(values[10..], (10..50).collect::<Vec<i64>>()[..]);
    let stats = remote.state_cache_stats().unwrap();
    // The root and the 40 unchanged counters from the file.
    assert_eq!((stats.hits, stats.misses), (41, 10), "{stats:?}");
    // The past is read from the server, never from the file.
    let past = db.at(before).unwrap();
    assert_eq!(past.transact(|tx| Ok(tx.get(counters[0])?.value())).unwrap(), 0);
    assert_eq!(remote.state_cache_stats().unwrap().hits, 41);
    drop((past, db, remote));

    // Another database (its own id) with the same oids: the file is emptied.
    let (elsewhere, _keep2) = serve(History::Free);
    let remote = connect(&elsewhere);
    let db = Database::with_storage(remote.clone()).unwrap();
    let theirs = db.transact(|tx| tx.add(Counter::new())).unwrap();
    assert_eq!(theirs, counters[0], "both databases number objects alike");
    assert_eq!(remote.state_cache_stats().unwrap().entries, 0, "the other database's records are gone");
    // Loaded by a fresh object cache: this database's counter (0), not
    // the other's (1000).
    let reader = Database::with_storage(remote.clone()).unwrap();
    assert_eq!(reader.transact(|tx| Ok(tx.get(theirs)?.value())).unwrap(), 0);
}

/// A server run by `Server::serve`, as the binary runs it, until `stop`.
struct Stoppable {
    runtime: tokio::runtime::Runtime,
    url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<Result<(), pbpersist_server::ServerError>>,
}

fn serve_until_stopped(server: Server) -> Stoppable {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = runtime.spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    Stoppable { runtime, url, stop, serving }
}

/// Shutdown: a server told to stop while a client holds an idle session
/// (a `Database` keeps its sessions between transactions) and a watch
/// stops within seconds, not at the idle timeout, and the client's next
/// transaction gets a transient error rather than hanging.
fn shutdown_ends_idle_sessions() {
    let dir = pbpersist_tests::scratch_dir();
    let storage = SqliteStorage::open(dir.path().join("db")).unwrap();
    let Stoppable { runtime, url, stop, serving } = serve_until_stopped(Server::new(storage));
    let remote = RemoteStorage::connect(&url).unwrap();
    let db = Database::with_storage(remote.clone()).unwrap();
    let c = db.transact(|tx| tx.add(Counter::new())).unwrap();
    let mut watch = remote.watch(None).unwrap();
    db.transact(|tx| Ok(tx.get_mut(c)?.set_value(1))).unwrap();
    assert!(watch.next().unwrap().is_ok());
    let asked = std::time::Instant::now();
    stop.send(()).unwrap();
    runtime
        .block_on(async { tokio::time::timeout(std::time::Duration::from_secs(20), serving).await })
        .expect("the server did not stop within 20 s")
        .unwrap()
        .unwrap();
    println!("stopped {:?} after being asked", asked.elapsed());
    let e = db.transact(|tx| Ok(tx.get_mut(c)?.set_value(2))).unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(watch.next().is_none_or(|r| r.is_err()), "the watch ended with the server");
}

/// A session of [`Controlled`] whose commits take half a second.
struct SlowSession {
    inner: Box<dyn pbpersist::storage::Session>,
    started: std::sync::mpsc::SyncSender<()>,
}

impl pbpersist::storage::Session for SlowSession {
    fn begin(&mut self, since: Option<pbpersist::Tid>) -> Result<pbpersist::storage::Snapshot, StorageError> {
        self.inner.begin(since)
    }
    fn load(&mut self, oid: pbpersist::Oid) -> Result<Option<pbpersist::storage::Loaded>, StorageError> {
        self.inner.load(oid)
    }
    fn scan(
        &mut self,
        after: Option<pbpersist::Oid>,
        limit: usize,
    ) -> Result<Vec<(pbpersist::Oid, pbpersist::storage::Loaded)>, StorageError> {
        self.inner.scan(after, limit)
    }
    fn end(&mut self) -> Result<(), StorageError> {
        self.inner.end()
    }
    fn commit(
        &mut self,
        writes: &[pbpersist::storage::Write],
        reads: &[(pbpersist::Oid, pbpersist::Tid)],
        meta: &pbpersist::storage::TransactionMeta,
        resolve: &mut pbpersist::storage::Resolve<'_>,
    ) -> Result<Option<pbpersist::Tid>, StorageError> {
        let _ = self.started.try_send(());
        std::thread::sleep(std::time::Duration::from_millis(500));
        self.inner.commit(writes, reads, meta, resolve)
    }
}

/// Shutdown while a commit is in the storage: the commit finishes, its
/// client hears that it did, and the database has it.
fn shutdown_lets_a_commit_in_flight_finish() {
    let dir = pbpersist_tests::scratch_dir();
    let path = dir.path().join("db");
    let (started, commit_started) = std::sync::mpsc::sync_channel(64);
    let storage = Controlled { slow_commits: Some(started), ..Controlled::new(SqliteStorage::open(&path).unwrap()) };
    let Stoppable { runtime, url, stop, serving } = serve_until_stopped(Server::new(storage));
    let db = Database::with_storage(RemoteStorage::connect(&url).unwrap()).unwrap();
    let c = db.transact(|tx| tx.add(Counter::new())).unwrap();
    while commit_started.try_recv().is_ok() {}
    let writer = std::thread::spawn(move || db.transact(|tx| Ok(tx.get_mut(c)?.set_value(5))));
    commit_started.recv().unwrap();
    stop.send(()).unwrap();
    writer.join().unwrap().expect("the commit in flight finished and was acknowledged");
    runtime
        .block_on(async { tokio::time::timeout(std::time::Duration::from_secs(20), serving).await })
        .unwrap()
        .unwrap()
        .unwrap();
    let direct = Database::open(&path).unwrap();
    assert_eq!(direct.transact(|tx| Ok(tx.get(c)?.value())).unwrap(), 5);
}

/// SQLite with knobs: sessions that fail while `down` is set, as a
/// database server that went away would, and, with `slow_commits`, commits
/// that take half a second and say when one starts.
struct Controlled {
    inner: SqliteStorage,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    slow_commits: Option<std::sync::mpsc::SyncSender<()>>,
}

impl Controlled {
    fn new(inner: SqliteStorage) -> Self {
        Controlled { inner, down: Default::default(), slow_commits: None }
    }
}

impl Storage for Controlled {
    fn name(&self) -> &'static str {
        "controlled"
    }
    fn open_session(&self) -> Result<Box<dyn pbpersist::storage::Session>, StorageError> {
        if self.down.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StorageError::Unavailable {
                backend: "controlled",
                target: "nowhere".into(),
                source: "down".into(),
            });
        }
        let inner = self.inner.open_session()?;
        Ok(match &self.slow_commits {
            Some(started) => Box::new(SlowSession { inner, started: started.clone() }),
            None => inner,
        })
    }
    fn new_oids(&self, count: u64) -> Result<std::ops::Range<u64>, StorageError> {
        self.inner.new_oids(count)
    }
    fn swap_schema(&self, name: &str, expected: Option<&str>, source: &str) -> Result<bool, StorageError> {
        self.inner.swap_schema(name, expected, source)
    }
    fn delete_schemas(&self, names: &[String]) -> Result<(), StorageError> {
        self.inner.delete_schemas(names)
    }
    fn schemas(&self) -> Result<Vec<(String, String)>, StorageError> {
        self.inner.schemas()
    }
    fn transactions(
        &self,
        range: pbpersist::storage::TransactionRange,
    ) -> Result<Vec<pbpersist::storage::Committed>, StorageError> {
        self.inner.transactions(range)
    }
    fn history(&self) -> Option<&dyn pbpersist::storage::HistoryStorage> {
        self.inner.history()
    }
    fn admin(&self) -> Option<&dyn pbpersist::storage::AdminStorage> {
        self.inner.admin()
    }
}

/// An HTTP GET on loopback: the status line's code and the body.
fn http_get(address: std::net::SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let code = response.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (code, body)
}

/// The counters follow what clients do (commits, a conflict, loads, a
/// refused token), `/metrics` shows them to Prometheus, and the health
/// (gRPC health service, `/health`, `up`) follows the storage going away
/// and coming back.
fn metrics_and_health_follow_the_server() {
    let dir = pbpersist_tests::scratch_dir();
    let storage = Controlled::new(SqliteStorage::open(dir.path().join("db")).unwrap());
    let down = storage.down.clone();
    let client = pbpersist_server::Client {
        name: "app".into(),
        token_sha256: pbpersist_server::hash_token("app-secret"),
        access: pbpersist_server::Access::ReadWrite,
        packages: None,
    };
    let running = Server::new(storage)
        .clients(vec![client])
        .metrics_address(Some("127.0.0.1:0".parse().unwrap()))
        .health_interval(std::time::Duration::from_millis(50))
        .start("127.0.0.1:0".parse().unwrap())
        .unwrap();
    let metrics = running.metrics_address().unwrap();
    let connect = |token: &str| RemoteStorage::builder(&running.url()).token(token).connect();
    assert!(connect("wrong").is_err());
    let a = Database::with_storage(connect("app-secret").unwrap()).unwrap();
    let b = Database::with_storage(connect("app-secret").unwrap()).unwrap();
    let c = a.transact(|tx| tx.add(Counter::new())).unwrap();
    // `a` reads the counter, `b` commits a change to it, `a`'s write then
    // conflicts once and its retry commits.
    let mut first = true;
    a.transact(|tx| {
        let value = tx.get(c)?.value();
        if std::mem::take(&mut first) {
            b.transact(|tx| Ok(tx.get_mut(c)?.set_value(10))).unwrap();
        }
        tx.get_mut(c)?.set_value(value + 1);
        Ok(())
    })
    .unwrap();
    assert_eq!(b.transact(|tx| Ok(tx.get(c)?.value())).unwrap(), 11);
    let counts = running.metrics().counts();
    assert_eq!((counts.conflicts, counts.refused), (1, 1), "{counts:?}");
    assert!(counts.commits >= 3 && counts.objects_loaded >= 2 && counts.sessions_open >= 2, "{counts:?}");
    let (code, text) = http_get(metrics, "/metrics");
    assert_eq!(code, 200);
    for line in
        ["pbpersist_server_conflicts_total 1\n", "pbpersist_server_refused_total 1\n", "pbpersist_server_up 1\n"]
    {
        assert!(text.contains(line), "{line:?} not in\n{text}");
    }

    // The gRPC health service, as a load balancer asks it.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let url = running.url();
    let health = |service: &str| {
        let (url, service) = (url.clone(), service.to_owned());
        runtime.block_on(async move {
            use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
            let channel = tonic::transport::Channel::from_shared(url).unwrap().connect().await.unwrap();
            let mut client = HealthClient::new(channel);
            client.check(HealthCheckRequest { service }).await.map(|r| r.into_inner().status)
        })
    };
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    let wait_for = |want_serving: bool| {
        for _ in 0..200 {
            let grpc = health("pbpersist.server.v1.Storage").unwrap() == serving;
            if grpc == want_serving && (http_get(metrics, "/health").0 == 200) == want_serving {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("the health never became {want_serving}");
    };
    wait_for(true);
    assert_eq!(health("").unwrap(), serving, "the server as a whole");
    down.store(true, std::sync::atomic::Ordering::Relaxed);
    wait_for(false);
    assert!(http_get(metrics, "/metrics").1.contains("pbpersist_server_up 0\n"));
    down.store(false, std::sync::atomic::Ordering::Relaxed);
    wait_for(true);
}

/// TLS with client certificates: a client with the CA and a certificate
/// the CA signed works; one without a certificate, one without the CA and
/// one speaking plain HTTP/2 are not served.
fn tls_with_client_certificates() {
    let dir = pbpersist_tests::scratch_dir();
    pbpersist_tests::etcd::make_certificates(dir.path());
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    let tls = pbpersist_server::Tls {
        cert: dir.path().join("server.pem"),
        key: dir.path().join("server.key"),
        client_ca: Some(dir.path().join("ca.pem")),
    };
    let storage = SqliteStorage::open(dir.path().join("db")).unwrap();
    let running = Server::new(storage).tls(Some(tls)).start("127.0.0.1:0".parse().unwrap()).unwrap();
    let url = running.url();
    assert!(url.starts_with("https://"), "{url}");

    let client = RemoteStorage::builder(&url)
        .ca_certificate(read("ca.pem"))
        .identity(read("client.pem"), read("client.key"))
        .connect()
        .unwrap();
    let db = Database::with_storage(client).unwrap();
    let c = db.transact(|tx| tx.add(Counter::new())).unwrap();
    db.transact(|tx| Ok(tx.get_mut(c)?.set_value(7))).unwrap();
    assert_eq!(db.transact(|tx| Ok(tx.get(c)?.value())).unwrap(), 7);

    assert!(RemoteStorage::builder(&url).ca_certificate(read("ca.pem")).connect().is_err(), "no client certificate");
    match RemoteStorage::builder(&url).connect().unwrap_err() {
        StorageError::Config(m) => assert!(m.contains("needs the CA"), "{m}"),
        other => panic!("{other:?}"),
    }
    let plain = format!("http://{}", running.address());
    assert!(RemoteStorage::builder(&plain).connect().is_err(), "plain HTTP/2 to a TLS server");
    let missing = pbpersist_server::Tls {
        cert: dir.path().join("nope.pem"),
        key: dir.path().join("server.key"),
        client_ca: None,
    };
    let storage = SqliteStorage::open(dir.path().join("db2")).unwrap();
    let e = Server::new(storage).tls(Some(missing)).start("127.0.0.1:0".parse().unwrap()).unwrap_err();
    assert!(pbpersist::report(&e).contains("nope.pem"), "{e}");
}

/// A request over the server's size limit is refused: `RemoteStorage`
/// refuses the commit before sending it, and a client that sends it anyway
/// gets `RESOURCE_EXHAUSTED`; nothing is written.
fn an_oversized_request_is_refused() {
    use pbpersist::storage::protocol::{session_request::Request, storage_client::StorageClient};
    let dir = pbpersist_tests::scratch_dir();
    let storage = SqliteStorage::open(dir.path().join("db")).unwrap();
    let limits = pbpersist_server::Limits { max_request_bytes: 64 << 10, ..Default::default() };
    let running = Server::new(storage).limits(limits).start("127.0.0.1:0".parse().unwrap()).unwrap();
    let db = Database::with_storage(RemoteStorage::connect(&running.url()).unwrap()).unwrap();
    let e = db
        .transact(|tx| {
            let mut big = pbpersist_tests::demo::Tower::new();
            big.set_name("x".repeat(100 << 10));
            big.set_width(1.0);
            big.set_height(1.0);
            tx.add(big)
        })
        .unwrap_err();
    assert!(pbpersist::report(&e).contains("accepts requests of at most 65536"), "{e}");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status = runtime.block_on(async {
        let mut client = StorageClient::connect(running.url()).await.unwrap();
        let write = protocol::Write { oid: 9, base: None, record: vec![0; 100 << 10] };
        let commit = protocol::Commit { writes: vec![write], ..Default::default() };
        let requests = [Request::Begin(protocol::Begin::default()), Request::Commit(commit)]
            .map(|r| protocol::SessionRequest { request: Some(r) });
        let mut replies = client.session(futures_util::stream::iter(requests)).await.unwrap().into_inner();
        loop {
            match replies.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended without an error"),
                Err(status) => break status,
            }
        }
    });
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    let mut session = RemoteStorage::connect(&running.url()).unwrap().open_session().unwrap();
    session.begin(None).unwrap();
    assert!(session.load(pbpersist::Oid(9)).unwrap().is_none());
}

/// One client may hold only so many sessions (a flood of streams is
/// refused with `RESOURCE_EXHAUSTED` and logged), a closed one frees its
/// place, and an idle one is ended by the server, which its client notices
/// only as a new stream at its next snapshot.
fn a_flood_of_sessions_and_idle_sessions_are_limited() {
    let dir = pbpersist_tests::scratch_dir();
    let storage = SqliteStorage::open(dir.path().join("db")).unwrap();
    let limits = pbpersist_server::Limits {
        max_sessions_per_client: 4,
        idle_timeout: std::time::Duration::from_millis(300),
        ..Default::default()
    };
    let running = Server::new(storage).limits(limits).start("127.0.0.1:0".parse().unwrap()).unwrap();
    let storage = RemoteStorage::connect(&running.url()).unwrap();
    let open = || {
        let mut s = storage.open_session().unwrap();
        s.begin(None).map(|_| s)
    };
    let mut held: Vec<_> = (0..4).map(|_| open().unwrap()).collect();
    let mut flood = 0;
    for _ in 0..50 {
        match open() {
            Err(StorageError::Refused { reason, .. }) => {
                assert!(reason.contains("4 sessions open, the most it may"), "{reason}");
                flood += 1;
            }
            other => panic!("a session over the limit was served: {:?}", other.map(|_| ())),
        }
    }
    assert_eq!(flood, 50);
    drop(held.pop());
    std::thread::sleep(std::time::Duration::from_millis(100));
    held.push(open().expect("a closed session's place is free again"));

    drop(held);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let db = Database::with_storage(storage.clone()).unwrap();
    let c = db.transact(|tx| tx.add(Counter::new())).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    // The pooled session went idle and was ended; the next transaction
    // begins on a new stream without an error.
    let mut connection = db.connect().unwrap();
    let mut tx = connection.begin().unwrap();
    assert_eq!(tx.get(c).unwrap().value(), 0);
}

/// A server that allows only some networks refuses everyone else.
fn an_address_outside_the_allow_list_is_refused() {
    let dir = pbpersist_tests::scratch_dir();
    let storage = SqliteStorage::open(dir.path().join("db")).unwrap();
    let config = pbpersist_server::Config { allow: vec!["10.0.0.0/8".parse().unwrap()], ..Default::default() };
    let running = Server::new(storage).config(config).start("127.0.0.1:0".parse().unwrap()).unwrap();
    match RemoteStorage::connect(&running.url()).unwrap_err() {
        StorageError::Refused { reason, .. } => assert!(reason.contains("this address may not call"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let storage = SqliteStorage::open(dir.path().join("db2")).unwrap();
    let config = pbpersist_server::Config { allow: vec!["127.0.0.0/8".parse().unwrap()], ..Default::default() };
    let running = Server::new(storage).config(config).start("127.0.0.1:0".parse().unwrap()).unwrap();
    RemoteStorage::connect(&running.url()).unwrap();
}

/// The server is killed with SIGKILL 20 times while four client processes
/// commit through it, and restarted on the same address: every commit a
/// client saw acknowledged is there afterwards, none partially (each client
/// sets three counters in one transaction), and the clients, which saw
/// transient errors or `CommitUnknown`, reconnected and went on.
fn the_server_killed_20_times_loses_no_acknowledged_commit() {
    use pbpersist_tests::steady::SteadyWriters;
    let dir = pbpersist_tests::scratch_dir();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let (url, server) = start_worker_server_on(dir.path(), None, &listen);
    let mut server = Some(server);
    let writers = ["w0", "w1", "w2", "w3"];
    let db = Database::with_storage(RemoteStorage::connect(&url).unwrap()).unwrap();
    let steady = SteadyWriters::start(&db, env!("CARGO_BIN_EXE_pbpersist-worker"), &url, &writers);
    drop(db);
    let mut progress = Vec::new();
    for round in 0..20u64 {
        std::thread::sleep(std::time::Duration::from_millis(150 + (round * 37) % 200));
        drop(server.take());
        progress.push(steady.acknowledged().iter().sum::<i64>());
        std::thread::sleep(std::time::Duration::from_millis(100));
        server = Some(start_worker_server_on(dir.path(), None, &listen).1);
    }
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let acked = steady.stop();
    let db = Database::with_storage(RemoteStorage::connect(&url).unwrap()).unwrap();
    SteadyWriters::check(&writers, &acked, &db);
    let total: i64 = acked.iter().sum();
    assert!(total > *progress.last().unwrap(), "the clients went on after the last restart");
    println!("server killed 20 times: {total} acknowledged commits, progress at each kill {progress:?}");
}

/// Only the plain `sqlite` suite runs the concurrent workloads at full size;
/// the other server suites check what their variant adds (history, a state
/// cache, the server in this process, validation), so they run them
/// [lighter](Backend::lighter).
fn main() {
    let args = Arguments::from_args();
    let mut trials: Vec<Trial> = Vec::new();
    pbpersist::conformance_tests!(suite_trials!(trials, "sqlite", sqlite_backend));
    pbpersist::conformance_tests!(suite_trials!(trials, "sqlite-history", sqlite_history_backend));
    pbpersist::conformance_tests!(suite_trials!(trials, "state-cache", cached_backend));
    pbpersist::conformance_tests!(suite_trials!(trials, "process", process_backend));
    let mut validating: Vec<Trial> = Vec::new();
    pbpersist::conformance_tests!(suite_trials!(validating, "validating", validating_backend));
    // The storage-level commit tests write records of a made-up type with
    // opaque states straight through a session, which a validating server
    // rightly refuses; everything a program does through `Database` passes.
    validating.retain(|t| !t.name().contains("::suite::commits::"));
    trials.extend(validating);
    for (name, test) in [
        (
            "the_handshake_picks_a_common_version_and_refuses_others",
            the_handshake_picks_a_common_version_and_refuses_others as fn(),
        ),
        ("it_works_called_from_inside_a_tokio_runtime", it_works_called_from_inside_a_tokio_runtime),
        ("a_read_only_server_refuses_commits", a_read_only_server_refuses_commits),
        ("commits_are_pushed_to_watchers", commits_are_pushed_to_watchers),
        ("a_restarted_client_reads_its_state_cache", a_restarted_client_reads_its_state_cache),
        ("metrics_and_health_follow_the_server", metrics_and_health_follow_the_server),
        ("shutdown_ends_idle_sessions", shutdown_ends_idle_sessions),
        ("shutdown_lets_a_commit_in_flight_finish", shutdown_lets_a_commit_in_flight_finish),
        (
            "security::tokens_rights_and_packages_are_enforced_and_logged_without_secrets",
            tokens_rights_and_packages_are_enforced_and_logged_without_secrets,
        ),
        ("security::an_address_outside_the_allow_list_is_refused", an_address_outside_the_allow_list_is_refused),
        ("security::tls_with_client_certificates", tls_with_client_certificates),
        ("security::an_oversized_request_is_refused", an_oversized_request_is_refused),
        (
            "security::a_flood_of_sessions_and_idle_sessions_are_limited",
            a_flood_of_sessions_and_idle_sessions_are_limited,
        ),
        ("security::a_validating_server_refuses_records_that_lie", a_validating_server_refuses_records_that_lie),
        ("processes::four_processes_lose_no_updates", || {
            multiprocess::four_processes_lose_no_updates_and_resolution_needs_fewer_retries(&|| serve(History::Free))
        }),
        ("processes::a_client_killed_50_times", || {
            multiprocess::a_writer_killed_50_times_loses_no_acknowledged_commit_and_leaves_no_partial_one(&|| {
                serve(History::Free)
            })
        }),
        (
            "processes::the_server_killed_20_times_loses_no_acknowledged_commit",
            the_server_killed_20_times_loses_no_acknowledged_commit,
        ),
        ("processes::four_processes_insert_indexed_objects", || {
            multiprocess::four_processes_insert_indexed_objects_and_every_one_is_found(&|| serve(History::Free))
        }),
        ("processes::four_processes_insert_into_one_tree", || {
            multiprocess::four_processes_insert_into_one_tree_and_every_key_arrives(&|| serve(History::Free))
        }),
    ] {
        trials.push(Trial::test(name, move || Ok(test())));
    }
    libtest_mimic::run(&args, trials).exit();
}
