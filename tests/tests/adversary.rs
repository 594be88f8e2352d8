//! An outside tester's attacks on `pbpersist-server`, written from its
//! public contract only (docs/server.md, docs/format.md and the `.proto`
//! files), as an untrusted client "in any language" would: the raw
//! generated gRPC client, tokens set by hand, records and states encoded by
//! hand.
//!
//! Every attack checks three things: the status (or session `Failure`
//! reply) docs/server.md promises, with the `Failure` in the details; that
//! nothing was written (the log with its records, every object, and the
//! stored schemas are the same before and after); and that an honest client
//! is served afterwards. An attack that gets through fails its test, which
//! keeps asserting what the docs promise.

use bytes::{Buf, BufMut};
use libtest_mimic::{Arguments, Trial};
use pbpersist::storage::protocol::{
    self as p, failure::Kind, session_reply::Reply, session_request::Request, storage_client::StorageClient,
};
use pbpersist::storage::{History, SqliteStorage};
use pbpersist_server::Server;
use prost::Message;
use std::future::Future;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic::{Code, Status};

const READER: &str = "reader-token-0001";
const SHOP: &str = "shop-token-0002";
const WRITER: &str = "writer-token-0003";
const ADMIN: &str = "admin-token-0004";

/// The documented default time a commit waits, in all, for its client's merges.
const MERGE_WAIT: Duration = Duration::from_secs(2);
/// The documented default per-client limits.
const MAX_SESSIONS: usize = 64;
const MAX_WATCHES: usize = 16;

const DEMO_PROTO: &str = r#"syntax = "proto2";
package demo;
import "pbpersist/options.proto";
message Tower {
  required string name = 1;
  optional pbpersist.Ref neighbor = 2 [(pbpersist.target) = "demo.Tower"];
}
message Nest {
  optional Nest child = 1;
  optional string label = 2;
}
"#;

const SHOP_PROTO: &str = r#"syntax = "proto2";
package shop;
import "pbpersist/options.proto";
message Order {
  required string item = 1;
  optional pbpersist.Ref next = 2 [(pbpersist.target) = "shop.Order"];
}
"#;

/// A package whose name merely starts with `shop`.
const SHOPPING_PROTO: &str = r#"syntax = "proto2";
package shopping;
message Cart {
  optional string label = 1;
}
"#;

// ---------------------------------------------------------------------------
// Encoding records and states by hand.

fn ref_state(oid: u64) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::uint64::encode(1, &oid, &mut out);
    out
}

/// A `demo.Tower` state: the name (left out if `None`) and a neighbor.
fn tower(name: Option<&str>, neighbor: Option<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(name) = name {
        prost::encoding::string::encode(1, &name.to_owned(), &mut out);
    }
    if let Some(oid) = neighbor {
        prost::encoding::bytes::encode(2, &ref_state(oid), &mut out);
    }
    out
}

/// A `shop.Order` state.
fn order(item: &str, next: Option<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::string::encode(1, &item.to_owned(), &mut out);
    if let Some(oid) = next {
        prost::encoding::bytes::encode(2, &ref_state(oid), &mut out);
    }
    out
}

/// A `demo.Nest` state nested `depth` levels deep, built without recursion
/// (and in linear time) so that very deep ones are cheap to make.
fn nest(depth: usize) -> Vec<u8> {
    let mut leaf = Vec::new();
    prost::encoding::string::encode(2, &"leaf".to_owned(), &mut leaf);
    let mut lengths = Vec::with_capacity(depth);
    let mut len = leaf.len();
    for _ in 0..depth {
        lengths.push(len);
        len += 1 + prost::encoding::encoded_len_varint(len as u64);
    }
    let mut out = Vec::with_capacity(len);
    for inner in lengths.iter().rev() {
        out.push(0x0a);
        prost::encoding::encode_varint(*inner as u64, &mut out);
    }
    out.extend_from_slice(&leaf);
    out
}

fn record(ty: &str, state: Vec<u8>, refs: Vec<u64>) -> Vec<u8> {
    pbpersist::record::Record { r#type: ty.into(), state: state.into(), refs }.encode_to_vec()
}

/// An honest `demo.Tower` record.
fn tower_record(name: &str, neighbor: Option<u64>) -> Vec<u8> {
    record("demo.Tower", tower(Some(name), neighbor), neighbor.into_iter().collect())
}

/// An honest `shop.Order` record.
fn order_record(item: &str, next: Option<u64>) -> Vec<u8> {
    record("shop.Order", order(item, next), next.into_iter().collect())
}

fn write(oid: u64, base: Option<u64>, record: Vec<u8>) -> p::Write {
    p::Write { oid, base, record }
}

fn file(name: &str, source: &str) -> p::SchemaFile {
    p::SchemaFile { name: name.into(), source: source.into(), expected: None }
}

fn files(files: Vec<p::SchemaFile>, force: bool) -> p::SchemaFiles {
    p::SchemaFiles { files, force }
}

// ---------------------------------------------------------------------------
// Calls.

fn req<T>(token: Option<&str>, msg: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(msg);
    if let Some(token) = token {
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

fn auth<T>(token: &str, msg: T) -> tonic::Request<T> {
    req(Some(token), msg)
}

/// A request with a raw `authorization` header value.
fn raw_auth<T>(header: &str, msg: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(msg);
    request.metadata_mut().insert("authorization", header.parse().unwrap());
    request
}

fn kind_name(kind: i32) -> String {
    Kind::try_from(kind).map_or_else(|_| format!("unknown kind {kind}"), |k| format!("{k:?}"))
}

/// The call failed with `code`, its details decode as a `Failure` of
/// `kind`, and the status's message is the failure's.
#[track_caller]
fn refused<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, kind: Kind) -> p::Failure {
    let status = match result {
        Ok(v) => panic!("expected {code:?} ({kind:?}), but the call succeeded: {v:?}"),
        Err(s) => s,
    };
    assert_eq!(status.code(), code, "wrong status code: {status:?}");
    assert!(!status.details().is_empty(), "the status has no Failure in its details: {status:?}");
    let failure = p::Failure::decode(status.details())
        .unwrap_or_else(|e| panic!("the details do not decode as a Failure ({e}): {status:?}"));
    assert_eq!(failure.kind, kind as i32, "expected a {kind:?} failure, got {}: {failure:?}", kind_name(failure.kind));
    assert_eq!(status.message(), failure.message, "the status's message is not the Failure's");
    failure
}

/// The session answered with a `Failure` reply of `kind`.
#[track_caller]
fn failed(reply: Result<Reply, Status>, kind: Kind) -> p::Failure {
    match reply {
        Ok(Reply::Failure(f)) => {
            assert_eq!(f.kind, kind as i32, "expected a {kind:?} failure, got {}: {f:?}", kind_name(f.kind));
            f
        }
        other => panic!("expected a {kind:?} Failure reply, got {other:?}"),
    }
}

#[track_caller]
fn says(failure: &p::Failure, words: &[&str]) {
    for w in words {
        assert!(failure.message.contains(w), "the message does not say {w:?}: {:?}", failure.message);
    }
}

/// The attacks of one trial that got through or were answered otherwise
/// than the docs say: every case runs, and the trial fails listing them all.
#[derive(Debug, Default)]
struct Findings(Vec<String>);

impl Findings {
    async fn check<F: Future<Output = ()>>(&mut self, what: impl Into<String>, attack: F) {
        use futures_util::FutureExt;
        if let Err(panic) = std::panic::AssertUnwindSafe(attack).catch_unwind().await {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            self.0.push(format!("{}: {message}", what.into()));
        }
    }

    #[track_caller]
    fn assert_none(self) {
        assert!(self.0.is_empty(), "{} case(s) against the docs:\n- {}", self.0.len(), self.0.join("\n- "));
    }
}

/// One `Session` stream.
#[derive(Debug)]
struct Session {
    tx: tokio::sync::mpsc::UnboundedSender<p::SessionRequest>,
    replies: tonic::Streaming<p::SessionReply>,
}

impl Session {
    async fn open(channel: &Channel, token: Option<&str>) -> Result<Session, Status> {
        Session::open_with(channel, token.map(|t| format!("Bearer {t}")).as_deref()).await
    }

    /// A session whose `authorization` header is `header`, as given.
    async fn open_with(channel: &Channel, header: Option<&str>) -> Result<Session, Status> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let requests = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
        let request = match header {
            Some(header) => raw_auth(header, requests),
            None => tonic::Request::new(requests),
        };
        let replies = StorageClient::new(channel.clone()).session(request).await?.into_inner();
        Ok(Session { tx, replies })
    }

    fn send(&self, request: Request) {
        // A stream the server ended no longer takes requests; the next
        // reply tells why.
        let _ = self.tx.send(p::SessionRequest { request: Some(request) });
    }

    fn send_raw(&self, request: p::SessionRequest) {
        let _ = self.tx.send(request);
    }

    async fn reply(&mut self) -> Result<Reply, Status> {
        match tokio::time::timeout(Duration::from_secs(30), self.replies.message()).await {
            Err(_) => panic!("the session sent no reply within 30 s"),
            Ok(Err(status)) => Err(status),
            Ok(Ok(None)) => Err(Status::unknown("(test) the stream ended without a status")),
            Ok(Ok(Some(p::SessionReply { reply: Some(reply) }))) => Ok(reply),
            Ok(Ok(Some(empty))) => panic!("an empty reply: {empty:?}"),
        }
    }

    async fn call(&mut self, request: Request) -> Result<Reply, Status> {
        self.send(request);
        self.reply().await
    }

    async fn begin(&mut self) -> p::Snapshot {
        match self.call(Request::Begin(p::Begin::default())).await {
            Ok(Reply::Snapshot(s)) => s,
            other => panic!("Begin: {other:?}"),
        }
    }

    async fn load(&mut self, oids: Vec<u64>) -> Vec<p::Object> {
        match self.call(Request::Load(p::Load { oids })).await {
            Ok(Reply::Objects(o)) => o.objects,
            other => panic!("Load: {other:?}"),
        }
    }

    async fn end(&mut self) {
        match self.call(Request::End(p::End {})).await {
            Ok(Reply::Done(_)) => {}
            other => panic!("End: {other:?}"),
        }
    }

    async fn commit(&mut self, writes: Vec<p::Write>) -> Result<Reply, Status> {
        self.call(Request::Commit(p::Commit { writes, ..Default::default() })).await
    }

    /// Begins, commits `writes` and returns the reply.
    async fn begin_commit(&mut self, writes: Vec<p::Write>) -> Result<Reply, Status> {
        self.begin().await;
        self.commit(writes).await
    }
}

#[track_caller]
fn committed(reply: Result<Reply, Status>) -> u64 {
    match reply {
        Ok(Reply::Committed(p::CommitReply { tid: Some(tid) })) => tid,
        other => panic!("expected a commit, got {other:?}"),
    }
}

/// Opens a session and sends `Begin`: a refusal may come as the call's
/// status or as the stream's first answer.
async fn first_answer(channel: &Channel, token: Option<&str>) -> Result<(Session, Reply), Status> {
    let mut session = Session::open(channel, token).await?;
    let reply = session.call(Request::Begin(p::Begin::default())).await?;
    Ok((session, reply))
}

/// Opens a watch: a refusal may come as the call's status or as the
/// stream's first item; a stream that says nothing for 300 ms was accepted.
async fn watch(
    channel: &Channel,
    token: Option<&str>,
    since: Option<u64>,
) -> Result<tonic::Streaming<p::Invalidation>, Status> {
    let mut stream =
        StorageClient::new(channel.clone()).watch(req(token, p::WatchRequest { since })).await?.into_inner();
    match tokio::time::timeout(Duration::from_millis(300), stream.message()).await {
        Err(_) | Ok(Ok(Some(_))) => Ok(stream),
        Ok(Err(status)) => Err(status),
        Ok(Ok(None)) => Err(Status::unknown("(test) the watch ended without a status")),
    }
}

/// A gRPC codec for raw bytes: requests no generated client would send.
#[derive(Debug, Clone, Copy)]
struct Raw;

impl tonic::codec::Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl tonic::codec::Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

fn method(name: &'static str) -> tonic::codegen::http::uri::PathAndQuery {
    tonic::codegen::http::uri::PathAndQuery::from_static(name)
}

// ---------------------------------------------------------------------------
// The server under attack.

/// What the database holds: the log with records, every object, the
/// stored schemas.
#[derive(Debug, Clone, PartialEq)]
struct Snap {
    transactions: Vec<p::Transaction>,
    objects: Vec<p::Object>,
    schemas: Vec<p::SchemaFile>,
}

impl Snap {
    /// Without what the commit `tid` wrote (a commit of an honest client
    /// during an attack, made only of new objects).
    fn without(mut self, tid: u64) -> Snap {
        self.transactions.retain(|t| t.tid != tid);
        self.objects.retain(|o| o.tid != tid);
        self
    }
}

#[track_caller]
fn same(before: &Snap, after: &Snap) {
    assert_eq!(before.schemas, after.schemas, "the stored schemas changed");
    assert_eq!(
        before.transactions.iter().map(|t| t.tid).collect::<Vec<_>>(),
        after.transactions.iter().map(|t| t.tid).collect::<Vec<_>>(),
        "the transaction log changed"
    );
    assert_eq!(before.transactions, after.transactions, "a transaction in the log changed");
    assert_eq!(before.objects, after.objects, "the stored objects changed");
}

fn clients() -> Vec<pbpersist_server::Client> {
    let client = |name: &str, token: &str, access, packages: Option<Vec<String>>| pbpersist_server::Client {
        name: name.into(),
        token_sha256: pbpersist_server::hash_token(token),
        access,
        packages,
    };
    vec![
        client("reader", READER, pbpersist_server::Access::ReadOnly, None),
        client("shop", SHOP, pbpersist_server::Access::ReadWrite, Some(vec!["shop".into()])),
        client("writer", WRITER, pbpersist_server::Access::ReadWrite, None),
        client("admin", ADMIN, pbpersist_server::Access::Admin, None),
    ]
}

/// The same clients as a configuration file, for a server process.
fn config_file() -> String {
    let mut out = String::from("validate = true\n");
    for (name, token, access, packages) in [
        ("reader", READER, "read-only", ""),
        ("shop", SHOP, "read-write", "packages = [\"shop\"]\n"),
        ("writer", WRITER, "read-write", ""),
        ("admin", ADMIN, "admin", ""),
    ] {
        out += &format!(
            "[[client]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\naccess = \"{access}\"\n{packages}",
            pbpersist_server::hash_token(token)
        );
    }
    out
}

/// A validating server with the four clients over a new SQLite database,
/// the demo and shop schemas stored by the admin, and one honest tower `x`.
struct Fx {
    rt: tokio::runtime::Runtime,
    channel: Channel,
    /// An honest `demo.Tower` the writer created.
    x: u64,
    _keep: Box<dyn std::any::Any>,
}

impl Fx {
    fn new() -> Fx {
        Fx::with(None, History::Free)
    }

    fn with(limits: Option<pbpersist_server::Limits>, history: History) -> Fx {
        let dir = pbpersist_tests::scratch_dir();
        let storage = SqliteStorage::builder(dir.path().join("db")).history(history).open().unwrap();
        let config = pbpersist_server::Config { clients: clients(), validate: true, ..Default::default() };
        let mut server = Server::new(storage).config(config);
        if let Some(limits) = limits {
            server = server.limits(limits);
        }
        let running = server.start("127.0.0.1:0".parse().unwrap()).unwrap();
        let url = running.url();
        Fx::connect(url, Box::new((running, dir)))
    }

    /// The server in a process of its own (`pbpersist-worker serve` with a
    /// configuration file): for attacks that might bring it down.
    fn in_process() -> Fx {
        use std::io::BufRead;
        let dir = pbpersist_tests::scratch_dir();
        std::fs::write(dir.path().join("server.toml"), config_file()).unwrap();
        let mut child = pbpersist_tests::Worker(
            std::process::Command::new(env!("CARGO_BIN_EXE_pbpersist-worker"))
                .arg("serve")
                .arg(dir.path().join("db"))
                .arg(dir.path().join("server.toml"))
                .env("PBPERSIST_LISTEN", "127.0.0.1:0")
                .stdout(std::process::Stdio::piped())
                .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
                .spawn()
                .unwrap(),
        );
        let mut line = String::new();
        std::io::BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with("http://"), "the server did not start: {line:?}");
        Fx::connect(line.trim().to_owned(), Box::new((child, dir)))
    }

    fn connect(url: String, keep: Box<dyn std::any::Any>) -> Fx {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let channel = rt.block_on(async {
            Channel::from_shared(url)
                .unwrap()
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(60))
                .connect()
                .await
                .unwrap()
        });
        let mut fx = Fx { rt, channel, x: 0, _keep: keep };
        fx.x = fx.rt.block_on(fx.setup());
        fx
    }

    async fn setup(&self) -> u64 {
        let mut c = self.client();
        c.put_schemas(auth(ADMIN, files(vec![file("demo.proto", DEMO_PROTO), file("shop.proto", SHOP_PROTO)], false)))
            .await
            .expect("the admin stores the schemas");
        let x = self.new_oids(WRITER, 1).await.start;
        let mut s = Session::open(&self.channel, Some(WRITER)).await.unwrap();
        committed(s.begin_commit(vec![write(x, None, tower_record("x", None))]).await);
        x
    }

    fn run<F: Future<Output = ()>>(&self, f: F) {
        self.rt.block_on(f)
    }

    fn client(&self) -> StorageClient<Channel> {
        StorageClient::new(self.channel.clone())
    }

    async fn session(&self, token: &str) -> Session {
        Session::open(&self.channel, Some(token)).await.expect("a session")
    }

    async fn new_oids(&self, token: &str, count: u64) -> p::OidRange {
        self.client().new_oids(auth(token, p::NewOidsRequest { count })).await.expect("NewOids").into_inner()
    }

    /// The stored tid of `oid`.
    async fn tid_of(&self, oid: u64) -> u64 {
        let mut s = self.session(ADMIN).await;
        s.begin().await;
        let objects = s.load(vec![oid]).await;
        objects.first().unwrap_or_else(|| panic!("{oid} is not stored")).tid
    }

    /// An honest change to `x` by the writer: returns (old tid, new tid).
    async fn move_x(&self) -> (u64, u64) {
        let old = self.tid_of(self.x).await;
        let mut s = self.session(WRITER).await;
        let new = committed(s.begin_commit(vec![write(self.x, Some(old), tower_record("x moved", None))]).await);
        (old, new)
    }

    async fn snap(&self) -> Snap {
        let mut c = self.client();
        let transactions = c
            .transactions(auth(
                ADMIN,
                p::TransactionsRequest { after: 0, until: None, limit: 1_000_000, newest_first: false, records: true },
            ))
            .await
            .expect("Transactions")
            .into_inner()
            .transactions;
        let mut s = self.session(ADMIN).await;
        s.begin().await;
        let mut objects: Vec<p::Object> = Vec::new();
        let mut after = None;
        loop {
            match s.call(Request::Scan(p::Scan { after, limit: 1000 })).await {
                Ok(Reply::Objects(o)) if o.objects.is_empty() => break,
                Ok(Reply::Objects(o)) => {
                    after = Some(o.objects.last().unwrap().oid);
                    objects.extend(o.objects);
                }
                other => panic!("Scan: {other:?}"),
            }
        }
        s.end().await;
        let mut schemas = c.schemas(auth(ADMIN, p::SchemasRequest {})).await.expect("Schemas").into_inner().files;
        schemas.sort_by(|a, b| a.name.cmp(&b.name));
        Snap { transactions, objects, schemas }
    }

    /// An honest client (`token`) is served: it says hello, loads `x`,
    /// gets an oid and commits a new tower pointing at `x`.
    async fn honest_as(&self, token: &str) -> u64 {
        let mut c = self.client();
        let hello = c.hello(auth(token, p::HelloRequest { versions: vec![1] })).await.expect("honest Hello");
        assert_eq!(hello.into_inner().version, 1);
        let oid = self.new_oids(token, 1).await.start;
        let mut s = Session::open(&self.channel, Some(token)).await.expect("an honest session");
        s.begin().await;
        assert_eq!(s.load(vec![self.x]).await.len(), 1, "the honest client cannot load x");
        committed(s.commit(vec![write(oid, None, tower_record("honest", Some(self.x)))]).await)
    }

    async fn honest(&self) -> u64 {
        self.honest_as(WRITER).await
    }
}

/// Runs `attack` between two snapshots that must be equal, then checks
/// that an honest client is served.
async fn checked<F: Future<Output = ()>>(fx: &Fx, attack: F) {
    let before = fx.snap().await;
    attack.await;
    let after = fx.snap().await;
    same(&before, &after);
    fx.honest().await;
}

/// Commits `writes` in a new session as `token` and returns the reply; the
/// session still works afterwards (the failed commit ended its snapshot).
async fn commit_as(fx: &Fx, token: &str, writes: Vec<p::Write>) -> Result<Reply, Status> {
    let mut s = fx.session(token).await;
    let reply = s.begin_commit(writes).await;
    if matches!(reply, Ok(Reply::Failure(_))) {
        // A failed commit has ended its snapshot, as a successful one does.
        failed(s.call(Request::Load(p::Load { oids: vec![fx.x] })).await, Kind::Invalid);
        s.begin().await;
        s.end().await;
    }
    reply
}

// ---------------------------------------------------------------------------
// Who may call.

fn auth_no_token_is_unauthenticated_on_every_call() {
    let fx = Fx::new();
    fx.run(checked(&fx, async {
        let mut c = fx.client();
        let u = (Code::Unauthenticated, Kind::Unauthenticated);
        refused(c.hello(req(None, p::HelloRequest { versions: vec![1] })).await, u.0, u.1);
        refused(c.new_oids(req(None, p::NewOidsRequest { count: 1 })).await, u.0, u.1);
        refused(c.transactions(req(None, p::TransactionsRequest::default())).await, u.0, u.1);
        refused(c.history(req(None, p::HistoryRequest { oid: fx.x, limit: 10 })).await, u.0, u.1);
        refused(c.schemas(req(None, p::SchemasRequest {})).await, u.0, u.1);
        refused(c.put_schemas(req(None, files(vec![file("demo.proto", DEMO_PROTO)], false))).await, u.0, u.1);
        refused(c.packed_tid(req(None, p::PackedTidRequest {})).await, u.0, u.1);
        refused(c.pack(req(None, p::PackRequest { before: 1, batch: 10 })).await, u.0, u.1);
        refused(c.collect_garbage(req(None, p::CollectGarbageRequest { dry_run: false })).await, u.0, u.1);
        refused(watch(&fx.channel, None, Some(0)).await.map(drop), u.0, u.1);
        refused(first_answer(&fx.channel, None).await.map(|(_, r)| r), u.0, u.1);
    }));
}

fn auth_unknown_and_malformed_tokens_are_unauthenticated() {
    let fx = Fx::new();
    fx.run(checked(&fx, async {
        let stored_hash = pbpersist_server::hash_token(ADMIN);
        let headers = [
            "Bearer guessed-token".to_owned(),
            format!("Bearer {stored_hash}"), // the hash the server keeps is not a token
            format!("Basic {ADMIN}"),
            ADMIN.to_owned(),
            "Bearer".to_owned(),
            "Bearer ".to_owned(),
            format!("Bearer {ADMIN}x"),
            format!("Bearer x{ADMIN}"),
            format!("Bearer {}", &ADMIN[..ADMIN.len() - 1]),
            format!("Bearer {}", ADMIN.to_uppercase()),
        ];
        let mut findings = Findings::default();
        for header in &headers {
            findings
                .check(format!("authorization {header:?}"), async {
                    let mut c = fx.client();
                    let u = (Code::Unauthenticated, Kind::Unauthenticated);
                    refused(c.hello(raw_auth(header, p::HelloRequest { versions: vec![1] })).await, u.0, u.1);
                    refused(c.new_oids(raw_auth(header, p::NewOidsRequest { count: 1 })).await, u.0, u.1);
                    refused(c.pack(raw_auth(header, p::PackRequest { before: 1, batch: 1 })).await, u.0, u.1);
                    let result = match Session::open_with(&fx.channel, Some(header)).await {
                        Err(status) => Err(status),
                        Ok(mut s) => s.begin_commit(vec![write(fx.x, None, tower_record("evil", None))]).await,
                    };
                    refused(result, u.0, u.1);
                })
                .await;
        }
        findings.assert_none();
    }));
}

fn rights_a_reader_may_not_write_allocate_store_schemas_pack_or_collect() {
    let fx = Fx::new();
    fx.run(async {
        let (old, new) = fx.move_x().await;
        checked(&fx, async {
            let mut findings = Findings::default();
            let mut s = fx.session(READER).await;
            findings
                .check("a reader's write", async {
                    let reply = s.begin_commit(vec![write(fx.x, Some(new), tower_record("reader", None))]).await;
                    says(&failed(reply, Kind::PermissionDenied), &["read-write", "read-only"]);
                })
                .await;
            findings
                .check("a reader's new object", async {
                    let reply = s.begin_commit(vec![write(fx.x + 1, None, tower_record("new", None))]).await;
                    says(&failed(reply, Kind::PermissionDenied), &["read-write", "read-only"]);
                })
                .await;
            findings
                .check("a reader's conflicting write with merges", async {
                    // Refused before any merge is offered.
                    s.begin().await;
                    let reply = s
                        .call(Request::Commit(p::Commit {
                            writes: vec![write(fx.x, Some(old), tower_record("reader merge", None))],
                            merges: true,
                            ..Default::default()
                        }))
                        .await;
                    says(&failed(reply, Kind::PermissionDenied), &["read-write", "read-only"]);
                })
                .await;
            findings
                .check("the reader's session afterwards", async {
                    s.begin().await;
                    s.end().await;
                })
                .await;
            let pd = (Code::PermissionDenied, Kind::PermissionDenied);
            findings
                .check("a reader's NewOids", async {
                    let f =
                        refused(fx.client().new_oids(auth(READER, p::NewOidsRequest { count: 1 })).await, pd.0, pd.1);
                    says(&f, &["read-write", "read-only"]);
                })
                .await;
            findings
                .check("a reader's PutSchemas", async {
                    let put = files(vec![file("demo.proto", DEMO_PROTO)], false);
                    let f = refused(fx.client().put_schemas(auth(READER, put)).await, pd.0, pd.1);
                    says(&f, &["read-write", "read-only"]);
                })
                .await;
            findings
                .check("a reader's Pack", async {
                    let f = refused(
                        fx.client().pack(auth(READER, p::PackRequest { before: new, batch: 10 })).await,
                        pd.0,
                        pd.1,
                    );
                    says(&f, &["admin", "read-only"]);
                })
                .await;
            for dry_run in [true, false] {
                findings
                    .check(format!("a reader's CollectGarbage (dry run {dry_run})"), async {
                        let call =
                            fx.client().collect_garbage(auth(READER, p::CollectGarbageRequest { dry_run })).await;
                        says(&refused(call, pd.0, pd.1), &["admin", "read-only"]);
                    })
                    .await;
            }
            findings.assert_none();
        })
        .await;
    });
}

fn rights_a_writer_may_not_pack_collect_or_force_schemas() {
    let fx = Fx::new();
    fx.run(async {
        let (_, new) = fx.move_x().await;
        checked(&fx, async {
            let mut c = fx.client();
            let pd = (Code::PermissionDenied, Kind::PermissionDenied);
            for token in [WRITER, SHOP] {
                let f = refused(c.pack(auth(token, p::PackRequest { before: new, batch: 10 })).await, pd.0, pd.1);
                says(&f, &["admin", "read-write"]);
                for dry_run in [true, false] {
                    let f =
                        refused(c.collect_garbage(auth(token, p::CollectGarbageRequest { dry_run })).await, pd.0, pd.1);
                    says(&f, &["admin", "read-write"]);
                }
            }
            // force, even for files that break nothing.
            let f = refused(
                c.put_schemas(auth(WRITER, files(vec![file("demo.proto", DEMO_PROTO)], true))).await,
                pd.0,
                pd.1,
            );
            says(&f, &["admin", "read-write"]);
            let f =
                refused(c.put_schemas(auth(SHOP, files(vec![file("shop.proto", SHOP_PROTO)], true))).await, pd.0, pd.1);
            says(&f, &["admin", "read-write"]);
        })
        .await;
    });
}

fn rights_a_reader_may_read_and_commit_without_writes() {
    let fx = Fx::new();
    fx.run(checked(&fx, async {
        let mut c = fx.client();
        let hello = c.hello(auth(READER, p::HelloRequest { versions: vec![1] })).await.unwrap().into_inner();
        assert!(hello.read_only, "Hello tells a reader it may only read");
        let hello = c.hello(auth(WRITER, p::HelloRequest { versions: vec![1] })).await.unwrap().into_inner();
        assert!(!hello.read_only, "Hello tells a writer it may write");
        c.transactions(auth(READER, p::TransactionsRequest { limit: 10, ..Default::default() })).await.unwrap();
        c.schemas(auth(READER, p::SchemasRequest {})).await.unwrap();
        c.packed_tid(auth(READER, p::PackedTidRequest {})).await.unwrap();
        let _watch = watch(&fx.channel, Some(READER), None).await.expect("a reader may watch");
        let mut s = fx.session(READER).await;
        let snap = s.begin().await;
        let x = s.load(vec![fx.x]).await;
        assert_eq!(x.len(), 1);
        match s.call(Request::Scan(p::Scan { after: None, limit: 10 })).await {
            Ok(Reply::Objects(o)) => assert!(!o.objects.is_empty()),
            other => panic!("Scan: {other:?}"),
        }
        match s.call(Request::LoadReachable(p::LoadReachable { roots: vec![fx.x], depth: 3, limit: 10 })).await {
            Ok(Reply::Objects(o)) => assert_eq!(o.objects.len(), 1),
            other => panic!("LoadReachable: {other:?}"),
        }
        let reads = vec![p::Changed { oid: fx.x, tid: x[0].tid }];
        match s.call(Request::Commit(p::Commit { reads, ..Default::default() })).await {
            Ok(Reply::Committed(p::CommitReply { tid: None })) => {}
            other => panic!("a reader's commit without writes: {other:?}"),
        }
        assert!(snap.tid >= x[0].tid);
    }));
}

// ---------------------------------------------------------------------------
// Packages.

fn packages_the_shop_client_may_not_write_demo_towers() {
    let fx = Fx::new();
    fx.run(async {
        let oids = fx.new_oids(SHOP, 2).await;
        let x_tid = fx.tid_of(fx.x).await;
        checked(&fx, async {
            let f = failed(
                commit_as(&fx, SHOP, vec![write(oids.start, None, tower_record("evil", None))]).await,
                Kind::Invalid,
            );
            says(&f, &["demo.Tower"]);
            failed(
                commit_as(&fx, SHOP, vec![write(fx.x, Some(x_tid), tower_record("evil", None))]).await,
                Kind::Invalid,
            );
            // A good shop record beside it: neither is written.
            failed(
                commit_as(
                    &fx,
                    SHOP,
                    vec![
                        write(oids.start, None, order_record("ok", None)),
                        write(oids.start + 1, None, tower_record("evil", None)),
                    ],
                )
                .await,
                Kind::Invalid,
            );
        })
        .await;
    });
}

fn packages_the_shop_client_may_not_write_the_root() {
    let fx = Fx::new();
    fx.run(async {
        let oid = fx.new_oids(SHOP, 1).await.start;
        checked(&fx, async {
            let mut findings = Findings::default();
            findings
                .check("the root", async {
                    let root = record("pbpersist.Root", Vec::new(), vec![]);
                    failed(commit_as(&fx, SHOP, vec![write(0, None, root)]).await, Kind::Invalid);
                })
                .await;
            // Type names spelled so that a naive check might take them for shop's.
            for ty in [".demo.Tower", "shop.Order.demo.Tower", "shop/../demo.Tower", " demo.Tower"] {
                findings
                    .check(format!("type {ty:?} by the shop client"), async {
                        let reply =
                            commit_as(&fx, SHOP, vec![write(oid, None, record(ty, tower(Some("t"), None), vec![]))])
                                .await;
                        failed(reply, Kind::Invalid);
                    })
                    .await;
            }
            findings.assert_none();
        })
        .await;
    });
}

fn packages_shop_does_not_allow_the_package_shopping() {
    let fx = Fx::new();
    fx.run(async {
        fx.client()
            .put_schemas(auth(ADMIN, files(vec![file("shopping.proto", SHOPPING_PROTO)], false)))
            .await
            .expect("the admin stores shopping.proto");
        let oid = fx.new_oids(SHOP, 1).await.start;
        checked(&fx, async {
            let mut cart = Vec::new();
            prost::encoding::string::encode(1, &"c".to_owned(), &mut cart);
            failed(
                commit_as(&fx, SHOP, vec![write(oid, None, record("shopping.Cart", cart, vec![]))]).await,
                Kind::Invalid,
            );
            let changed = SHOPPING_PROTO.replace("}", "  optional string more = 2;\n}");
            refused(
                fx.client().put_schemas(auth(SHOP, files(vec![file("shopping.proto", &changed)], false))).await,
                Code::InvalidArgument,
                Kind::Invalid,
            );
            refused(
                fx.client()
                    .put_schemas(auth(
                        SHOP,
                        files(vec![file("shopx.proto", "syntax = \"proto3\";\npackage shopx;\nmessage A {}\n")], false),
                    ))
                    .await,
                Code::InvalidArgument,
                Kind::Invalid,
            );
        })
        .await;
    });
}

fn packages_the_shop_client_may_not_store_demo_files() {
    let fx = Fx::new();
    fx.run(checked(&fx, async {
        let mut c = fx.client();
        let inv = (Code::InvalidArgument, Kind::Invalid);
        // Name no longer required: a change that breaks nothing stored.
        let relaxed = DEMO_PROTO.replace("required string name", "optional string name");
        refused(c.put_schemas(auth(SHOP, files(vec![file("demo.proto", &relaxed)], false))).await, inv.0, inv.1);
        // A harmless addition to package demo.
        let added = format!("{DEMO_PROTO}message Extra {{ optional string a = 1; }}\n");
        refused(c.put_schemas(auth(SHOP, files(vec![file("demo.proto", &added)], false))).await, inv.0, inv.1);
        // A new file of package demo, or of a package inside it.
        let other = "syntax = \"proto3\";\npackage demo;\nmessage Other {}\n";
        refused(c.put_schemas(auth(SHOP, files(vec![file("other.proto", other)], false))).await, inv.0, inv.1);
        let inside = "syntax = \"proto3\";\npackage demo.shop;\nmessage Other {}\n";
        refused(c.put_schemas(auth(SHOP, files(vec![file("inside.proto", inside)], false))).await, inv.0, inv.1);
        // A shop file beside it does not carry it through.
        refused(
            c.put_schemas(auth(SHOP, files(vec![file("shop.proto", SHOP_PROTO), file("demo.proto", &added)], false)))
                .await,
            inv.0,
            inv.1,
        );
        // A file without a package.
        let none = "syntax = \"proto3\";\nmessage Loose {}\n";
        refused(c.put_schemas(auth(SHOP, files(vec![file("loose.proto", none)], false))).await, inv.0, inv.1);
    }));
}

/// `demo.proto` replaced by a file of package `shop` under the same name:
/// its package is the client's, but it would remove `demo.Tower`.
fn packages_the_shop_client_may_not_replace_demo_proto_with_a_shop_file() {
    let fx = Fx::new();
    fx.run(checked(&fx, async {
        let sneaky = "syntax = \"proto2\";\npackage shop;\nmessage Extra { optional string a = 1; }\n";
        refused(
            fx.client().put_schemas(auth(SHOP, files(vec![file("demo.proto", sneaky)], false))).await,
            Code::InvalidArgument,
            Kind::Invalid,
        );
    }));
}

fn packages_the_shop_client_may_store_shop_v1_and_write_its_types() {
    let fx = Fx::new();
    fx.run(async {
        let v1 = "syntax = \"proto2\";\npackage shop.v1;\nmessage Item { required string sku = 1; }\n";
        fx.client()
            .put_schemas(auth(SHOP, files(vec![file("shop_v1.proto", v1)], false)))
            .await
            .expect("shop.v1 is inside shop");
        let oids = fx.new_oids(SHOP, 2).await;
        let mut item = Vec::new();
        prost::encoding::string::encode(1, &"sku-1".to_owned(), &mut item);
        committed(
            commit_as(
                &fx,
                SHOP,
                vec![
                    write(oids.start, None, record("shop.v1.Item", item, vec![])),
                    write(oids.start + 1, None, order_record("o", Some(oids.start))),
                ],
            )
            .await,
        );
        fx.honest().await;
    });
}

// ---------------------------------------------------------------------------
// Merges.

/// `token` commits `oid` on the old base `base` with merges, checks the
/// server asks for a merge, answers `answer`, and returns the commit's
/// reply; the session is still usable afterwards.
async fn merge_answered(
    fx: &Fx,
    token: &str,
    oid: u64,
    base: u64,
    own: Vec<u8>,
    answer: p::Merged,
) -> Result<Reply, Status> {
    let mut s = fx.session(token).await;
    s.begin().await;
    s.send(Request::Commit(p::Commit {
        writes: vec![write(oid, Some(base), own)],
        merges: true,
        ..Default::default()
    }));
    match s.reply().await {
        Ok(Reply::Merge(m)) => {
            assert_eq!(m.oid, oid, "{m:?}");
            assert!(m.tid > base, "{m:?}");
        }
        other => panic!("expected a MergeRequest, got {other:?}"),
    }
    s.send(Request::Merged(answer));
    let reply = s.reply().await;
    // The failed commit ended the snapshot; the session goes on.
    s.begin().await;
    s.end().await;
    reply
}

fn merge_attack(answer: fn(u64) -> Option<Vec<u8>>) {
    let fx = Fx::new();
    fx.run(async {
        let (old, _) = fx.move_x().await;
        checked(&fx, async {
            let x = fx.x;
            let reply = merge_answered(
                &fx,
                WRITER,
                x,
                old,
                tower_record("mine", None),
                p::Merged { oid: x, record: answer(x) },
            )
            .await;
            failed(reply, Kind::Invalid);
        })
        .await;
    });
}

fn merges_an_undecodable_merged_state_is_refused() {
    merge_attack(|_| Some(record("demo.Tower", vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], vec![])));
}

fn merges_a_merged_record_that_is_not_a_record_is_refused() {
    merge_attack(|_| Some(vec![0x0a, 0xff]));
}

fn merges_a_merged_record_missing_a_required_field_is_refused() {
    merge_attack(|_| Some(record("demo.Tower", tower(None, None), vec![])));
}

fn merges_a_merged_record_hiding_a_reference_is_refused() {
    // A neighbor in the state, none in the list.
    merge_attack(|x| Some(record("demo.Tower", tower(Some("m"), Some(x)), vec![])));
}

fn merges_a_merged_record_listing_a_reference_it_lacks_is_refused() {
    merge_attack(|x| Some(record("demo.Tower", tower(Some("m"), None), vec![x])));
}

fn merges_a_merged_record_of_an_unknown_type_is_refused() {
    merge_attack(|_| Some(record("demo.Nope", tower(Some("m"), None), vec![])));
}

/// The shop client's merge answer for a `shop.Order` is a `demo.Tower`.
fn merges_a_merged_record_of_a_package_the_client_may_not_write_is_refused() {
    let fx = Fx::new();
    fx.run(async {
        let s_oid = fx.new_oids(SHOP, 1).await.start;
        let old = committed(commit_as(&fx, SHOP, vec![write(s_oid, None, order_record("first", None))]).await);
        committed(commit_as(&fx, WRITER, vec![write(s_oid, Some(old), order_record("second", None))]).await);
        checked(&fx, async {
            let answer = p::Merged { oid: s_oid, record: Some(tower_record("a tower", None)) };
            let reply = merge_answered(&fx, SHOP, s_oid, old, order_record("mine", None), answer).await;
            failed(reply, Kind::Invalid);
        })
        .await;
    });
}

/// A `Merged` naming another oid than the one asked for.
fn merges_a_merged_answer_for_another_oid_is_refused() {
    let fx = Fx::new();
    fx.run(async {
        let (old, _) = fx.move_x().await;
        let other = fx.new_oids(WRITER, 1).await.start;
        checked(&fx, async {
            let answer = p::Merged { oid: other, record: Some(tower_record("elsewhere", None)) };
            let reply = merge_answered(&fx, WRITER, fx.x, old, tower_record("mine", None), answer).await;
            failed(reply, Kind::Invalid);
        })
        .await;
    });
}

/// A `Merged` without a record keeps the conflict.
fn merges_an_answer_without_a_record_keeps_the_conflict() {
    let fx = Fx::new();
    fx.run(async {
        let (old, _) = fx.move_x().await;
        checked(&fx, async {
            let reply = merge_answered(
                &fx,
                WRITER,
                fx.x,
                old,
                tower_record("mine", None),
                p::Merged { oid: fx.x, record: None },
            )
            .await;
            let f = failed(reply, Kind::Conflict);
            assert_eq!(f.oid, fx.x, "{f:?}");
        })
        .await;
    });
}

/// An honest merge commits; a second `Merged` after it was asked for by
/// no `MergeRequest` and is refused, and the session goes on.
fn merges_an_honest_merge_commits_and_an_extra_answer_is_refused() {
    let fx = Fx::new();
    fx.run(async {
        let (old, _) = fx.move_x().await;
        let mut s = fx.session(WRITER).await;
        s.begin().await;
        s.send(Request::Commit(p::Commit {
            writes: vec![write(fx.x, Some(old), tower_record("mine", None))],
            merges: true,
            ..Default::default()
        }));
        match s.reply().await {
            Ok(Reply::Merge(m)) => assert_eq!(m.oid, fx.x),
            other => panic!("expected a MergeRequest, got {other:?}"),
        }
        s.send(Request::Merged(p::Merged { oid: fx.x, record: Some(tower_record("merged", None)) }));
        let tid = committed(s.reply().await);
        let before = fx.snap().await;
        failed(
            s.call(Request::Merged(p::Merged { oid: fx.x, record: Some(tower_record("again", None)) })).await,
            Kind::Invalid,
        );
        s.begin().await;
        let x = s.load(vec![fx.x]).await;
        assert_eq!(x[0].tid, tid);
        assert_eq!(x[0].record, tower_record("merged", None));
        s.end().await;
        same(&before, &fx.snap().await);
        fx.honest().await;
    });
}

/// A client that never answers its `MergeRequest` holds another writer's
/// commit and `NewOids` at most about the merge wait; its own commit then
/// fails with `INVALID`.
fn merges_an_unanswered_merge_request_holds_others_only_for_the_merge_wait() {
    let fx = Fx::new();
    fx.run(async {
        let (old, _) = fx.move_x().await;
        let other_oid = fx.new_oids(ADMIN, 1).await.start;
        let before = fx.snap().await;
        let mut silent = fx.session(WRITER).await;
        silent.begin().await;
        silent.send(Request::Commit(p::Commit {
            writes: vec![write(fx.x, Some(old), tower_record("silent", None))],
            merges: true,
            ..Default::default()
        }));
        match silent.reply().await {
            Ok(Reply::Merge(m)) => assert_eq!(m.oid, fx.x),
            other => panic!("expected a MergeRequest, got {other:?}"),
        }
        let asked = Instant::now();
        // Another client commits and asks for oids while the merge is unanswered.
        let channel = fx.channel.clone();
        let commit = tokio::spawn(async move {
            let start = Instant::now();
            let mut s = Session::open(&channel, Some(ADMIN)).await.unwrap();
            s.begin().await;
            let reply = s.commit(vec![write(other_oid, None, tower_record("other", None))]).await;
            (start.elapsed(), reply)
        });
        let channel = fx.channel.clone();
        let oids = tokio::spawn(async move {
            let start = Instant::now();
            let reply = StorageClient::new(channel).new_oids(auth(ADMIN, p::NewOidsRequest { count: 1 })).await;
            (start.elapsed(), reply)
        });
        let (commit_waited, commit_reply) = commit.await.unwrap();
        let (oids_waited, oids_reply) = oids.await.unwrap();
        println!(
            "while a MergeRequest went unanswered another writer's commit waited {commit_waited:?}, \
             its NewOids {oids_waited:?} (merge wait {MERGE_WAIT:?})"
        );
        let other_tid = committed(commit_reply);
        let range = oids_reply.expect("the other writer's NewOids").into_inner();
        assert!(range.end > range.start);
        assert!(commit_waited < 5 * MERGE_WAIT, "the other writer's commit waited {commit_waited:?}");
        assert!(oids_waited < 5 * MERGE_WAIT, "the other writer's NewOids waited {oids_waited:?}");
        let mut findings = Findings::default();
        findings
            .check("the silent client's commit", async {
                let f = failed(silent.reply().await, Kind::Conflict);
                assert_eq!(f.oid, fx.x, "{f:?}");
                println!("the silent client's commit failed {:?} after its MergeRequest", asked.elapsed());
            })
            .await;
        findings
            .check("a late Merged", async {
                // Dropped without a reply: the next reply is the Begin's.
                silent.send(Request::Merged(p::Merged { oid: fx.x, record: Some(tower_record("late", None)) }));
                match silent.call(Request::Begin(p::Begin::default())).await {
                    Ok(Reply::Snapshot(_)) => {}
                    other => panic!("the Begin after a late Merged got {other:?}"),
                }
                silent.end().await;
            })
            .await;
        findings
            .check("the silent client's next conflicting commit", async {
                // Offered no merges for a while: CONFLICT at once, holding nobody.
                let started = Instant::now();
                silent.begin().await;
                let reply = silent
                    .call(Request::Commit(p::Commit {
                        writes: vec![write(fx.x, Some(old), tower_record("silent again", None))],
                        merges: true,
                        ..Default::default()
                    }))
                    .await;
                let f = failed(reply, Kind::Conflict);
                assert_eq!(f.oid, fx.x, "{f:?}");
                println!("its next conflicting commit failed after {:?}", started.elapsed());
                assert!(started.elapsed() < MERGE_WAIT, "it held its locks for {:?}", started.elapsed());
            })
            .await;
        same(&before, &fx.snap().await.without(other_tid));
        // Another client is still offered merges meanwhile.
        findings
            .check("another client's merge meanwhile", async {
                let mut s = fx.session(ADMIN).await;
                s.begin().await;
                s.send(Request::Commit(p::Commit {
                    writes: vec![write(fx.x, Some(old), tower_record("admin's", None))],
                    merges: true,
                    ..Default::default()
                }));
                match s.reply().await {
                    Ok(Reply::Merge(m)) => assert_eq!(m.oid, fx.x),
                    other => panic!("expected a MergeRequest, got {other:?}"),
                }
                s.send(Request::Merged(p::Merged { oid: fx.x, record: Some(tower_record("merged", None)) }));
                committed(s.reply().await);
            })
            .await;
        fx.honest().await;
        findings.assert_none();
    });
}

// ---------------------------------------------------------------------------
// PutSchemas.

fn schemas_garbage_is_refused_and_validation_still_works() {
    let fx = Fx::new();
    fx.run(checked(&fx, async {
        let mut c = fx.client();
        let inv = (Code::InvalidArgument, Kind::Invalid);
        for token in [WRITER, ADMIN] {
            for force in [false, token == ADMIN] {
                refused(
                    c.put_schemas(auth(token, files(vec![file("garbage.proto", "this is not a proto file {")], force)))
                        .await,
                    inv.0,
                    inv.1,
                );
                refused(
                    c.put_schemas(auth(token, files(vec![file("demo.proto", "this is not a proto file {")], force)))
                        .await,
                    inv.0,
                    inv.1,
                );
            }
        }
        // An import of a file nobody stored.
        let missing = "syntax = \"proto3\";\npackage demo;\nimport \"missing.proto\";\nmessage M { Missing m = 1; }\n";
        refused(c.put_schemas(auth(WRITER, files(vec![file("m.proto", missing)], false))).await, inv.0, inv.1);
        // The stored schemas still validate commits: an admin's good one
        // commits, a bad one is refused.
        let oid = fx.new_oids(ADMIN, 1).await.start;
        failed(
            commit_as(&fx, ADMIN, vec![write(oid, None, record("demo.Tower", tower(None, None), vec![]))]).await,
            Kind::Invalid,
        );
    }));
    fx.run(async {
        fx.honest_as(ADMIN).await;
    });
}

/// Only an admin deletes schema files, and only files no stored object's
/// type needs and without which the rest compile; a refused deletion
/// changes nothing, an allowed one removes just those files.
fn schemas_only_an_admin_deletes_files_that_nothing_needs() {
    let fx = Fx::new();
    let names = |n: &[&str]| p::DeleteSchemasRequest { names: n.iter().map(|s| s.to_string()).collect() };
    fx.run(checked(&fx, async {
        let mut c = fx.client();
        let denied = (Code::PermissionDenied, Kind::PermissionDenied);
        for token in [READER, SHOP, WRITER] {
            let f = refused(c.delete_schemas(auth(token, names(&["shop.proto"]))).await, denied.0, denied.1);
            says(&f, &["may not delete schemas", "admin"]);
        }
        let inv = (Code::InvalidArgument, Kind::Invalid);
        // demo.Tower `x` is stored: demo.proto is needed.
        let f = refused(c.delete_schemas(auth(ADMIN, names(&["demo.proto"]))).await, inv.0, inv.1);
        says(&f, &["demo.Tower"]);
        let f = refused(c.delete_schemas(auth(ADMIN, names(&["nothing.proto"]))).await, inv.0, inv.1);
        says(&f, &["no schema file"]);
        let f = refused(c.delete_schemas(auth(ADMIN, names(&["../demo.proto"]))).await, inv.0, inv.1);
        says(&f, &["no schema file"]);
    }));
    fx.run(async {
        // A file that imports nothing stored and defines no stored type goes.
        let mut c = fx.client();
        let spare = "syntax = \"proto3\";\npackage spare;\nmessage Spare { int32 n = 1; }\n";
        c.put_schemas(auth(ADMIN, files(vec![file("spare.proto", spare)], false))).await.expect("store spare.proto");
        let before = fx.snap().await;
        c.delete_schemas(auth(ADMIN, names(&["spare.proto"]))).await.expect("delete spare.proto");
        let after = fx.snap().await;
        let left: Vec<&str> = after.schemas.iter().map(|f| f.name.as_str()).collect();
        let had: Vec<&str> = before.schemas.iter().map(|f| f.name.as_str()).filter(|n| *n != "spare.proto").collect();
        assert_eq!(left, had, "exactly spare.proto was deleted");
        assert_eq!(before.objects, after.objects);
        fx.honest().await;
    });
}

/// Tower.neighbor turned into a plain message of the same wire shape:
/// references could then be hidden from gc.
fn schemas_a_reference_turned_into_a_plain_field_is_refused() {
    let fx = Fx::new();
    fx.run(checked(&fx, async {
        let look_alike = DEMO_PROTO
            .replace(
                "optional pbpersist.Ref neighbor = 2 [(pbpersist.target) = \"demo.Tower\"];",
                "optional Ref neighbor = 2;",
            )
            .replace("message Nest {", "message Ref {\n  optional uint64 oid = 1;\n}\nmessage Nest {");
        let as_bytes = DEMO_PROTO.replace(
            "optional pbpersist.Ref neighbor = 2 [(pbpersist.target) = \"demo.Tower\"];",
            "optional bytes neighbor = 2;",
        );
        for token in [WRITER, ADMIN] {
            for source in [&look_alike, &as_bytes] {
                assert_ne!(source, DEMO_PROTO);
                refused(
                    fx.client().put_schemas(auth(token, files(vec![file("demo.proto", source)], false))).await,
                    Code::InvalidArgument,
                    Kind::Invalid,
                );
            }
        }
    }));
}

fn schemas_other_breaking_changes_are_refused_without_force() {
    let fx = Fx::new();
    let neighbor = "optional pbpersist.Ref neighbor = 2 [(pbpersist.target) = \"demo.Tower\"];";
    let no_tower = "syntax = \"proto2\";\npackage demo;\nmessage Nest {\n  optional Nest child = 1;\n  optional string label = 2;\n}\n";
    let changes: Vec<(&str, Vec<p::SchemaFile>)> = vec![
        (
            "the reference pointed at another type",
            vec![file(
                "demo.proto",
                &DEMO_PROTO
                    .replace(neighbor, "optional pbpersist.Ref neighbor = 2 [(pbpersist.target) = \"demo.Nest\"];"),
            )],
        ),
        (
            "the reference made required",
            vec![file("demo.proto", &DEMO_PROTO.replace("optional pbpersist.Ref", "required pbpersist.Ref"))],
        ),
        (
            "the reference made repeated",
            vec![file("demo.proto", &DEMO_PROTO.replace("optional pbpersist.Ref", "repeated pbpersist.Ref"))],
        ),
        (
            "the name's type changed",
            vec![file("demo.proto", &DEMO_PROTO.replace("required string name", "required int64 name"))],
        ),
        ("the reference removed without reserving", vec![file("demo.proto", &DEMO_PROTO.replace(neighbor, ""))]),
        ("the reference renumbered", vec![file("demo.proto", &DEMO_PROTO.replace("neighbor = 2", "neighbor = 3"))]),
        ("Tower removed", vec![file("demo.proto", no_tower)]),
        (
            "Tower moved to another file with a plain neighbor",
            vec![
                file("demo.proto", no_tower),
                file(
                    "towers.proto",
                    "syntax = \"proto2\";\npackage demo;\nmessage Tower {\n  required string name = 1;\n  optional bytes neighbor = 2;\n}\n",
                ),
            ],
        ),
        (
            "Tower's reference moved into a oneof of a look-alike",
            vec![file("demo.proto", &DEMO_PROTO.replace(neighbor, "oneof where { Nest neighbor = 2; }"))],
        ),
    ];
    fx.run(checked(&fx, async {
        let mut findings = Findings::default();
        for (what, change) in changes {
            for token in [WRITER, ADMIN] {
                findings
                    .check(format!("{what}, for {token}"), async {
                        let result = fx.client().put_schemas(auth(token, files(change.clone(), false))).await;
                        refused(result, Code::InvalidArgument, Kind::Invalid);
                    })
                    .await;
            }
        }
        findings.assert_none();
    }));
}

fn schemas_bad_file_names_are_refused() {
    let fx = Fx::new();
    let shop_file = "syntax = \"proto3\";\npackage shop;\nmessage Named {}\n";
    fx.run(checked(&fx, async {
        let names = [
            "../x.proto",
            "/etc/x.proto",
            "pbpersist/record.proto",
            "pbpersist/options.proto",
            "pbpersist/evil.proto",
            "google/protobuf/any.proto",
            "google/protobuf/evil.proto",
            "x.txt",
            "x.proto.txt",
            "x",
            "",
            "a/../x.proto",
            "a/./x.proto",
            "./x.proto",
            "a//x.proto",
            "a\\x.proto",
            "x .proto",
            "x.proto\n",
            "x\0.proto",
            "shop/../../x.proto",
            "C:x.proto",
            "x.proto/",
        ];
        let mut findings = Findings::default();
        for name in names {
            for (token, force) in [(WRITER, false), (ADMIN, true), (SHOP, false)] {
                findings
                    .check(format!("the name {name:?} for {token}"), async {
                        let result =
                            fx.client().put_schemas(auth(token, files(vec![file(name, shop_file)], force))).await;
                        refused(result, Code::InvalidArgument, Kind::Invalid);
                    })
                    .await;
            }
        }
        findings.assert_none();
    }));
}

fn schemas_the_same_name_twice_is_refused() {
    let fx = Fx::new();
    fx.run(checked(&fx, async {
        let extra = format!("{DEMO_PROTO}message Extra {{ optional string a = 1; }}\n");
        let mut findings = Findings::default();
        for pair in [
            vec![file("demo.proto", DEMO_PROTO), file("demo.proto", DEMO_PROTO)],
            vec![file("demo.proto", &extra), file("demo.proto", DEMO_PROTO)],
            vec![
                file("new.proto", "syntax = \"proto3\";\npackage shop;\nmessage A {}\n"),
                file("new.proto", "syntax = \"proto3\";\npackage shop;\nmessage B {}\n"),
            ],
        ] {
            for token in [WRITER, ADMIN] {
                findings
                    .check(format!("{} twice for {token}", pair[0].name), async {
                        refused(
                            fx.client().put_schemas(auth(token, files(pair.clone(), token == ADMIN))).await,
                            Code::InvalidArgument,
                            Kind::Invalid,
                        );
                    })
                    .await;
            }
        }
        findings.assert_none();
    }));
}

/// Files that redefine what another file defines do not compile together.
fn schemas_redefining_stored_or_pbpersist_types_is_refused() {
    let fx = Fx::new();
    fx.run(checked(&fx, async {
        let again = "syntax = \"proto2\";\npackage demo;\nmessage Tower { optional string name = 1; }\n";
        let evil_ref = "syntax = \"proto3\";\npackage pbpersist;\nmessage Ref { string oid = 1; }\n";
        let evil_root = "syntax = \"proto3\";\npackage pbpersist;\nmessage Root { map<string, string> entries = 1; }\n";
        let mut findings = Findings::default();
        for (name, source) in [("demo2.proto", again), ("evil_ref.proto", evil_ref), ("evil_root.proto", evil_root)] {
            for token in [WRITER, ADMIN] {
                findings
                    .check(format!("{name} for {token}"), async {
                        let result =
                            fx.client().put_schemas(auth(token, files(vec![file(name, source)], token == ADMIN))).await;
                        refused(result, Code::InvalidArgument, Kind::Invalid);
                    })
                    .await;
            }
        }
        findings.assert_none();
    }));
}

/// An admin may force a breaking change, and force the original back.
fn schemas_an_admin_may_force_a_breaking_change_and_back() {
    let fx = Fx::new();
    fx.run(checked(&fx, async {
        let relaxed = DEMO_PROTO.replace(
            "optional pbpersist.Ref neighbor = 2 [(pbpersist.target) = \"demo.Tower\"];",
            "optional bytes neighbor = 2;",
        );
        let mut c = fx.client();
        refused(
            c.put_schemas(auth(ADMIN, files(vec![file("demo.proto", &relaxed)], false))).await,
            Code::InvalidArgument,
            Kind::Invalid,
        );
        c.put_schemas(auth(ADMIN, files(vec![file("demo.proto", &relaxed)], true))).await.expect("forced");
        let stored = c.schemas(auth(READER, p::SchemasRequest {})).await.unwrap().into_inner().files;
        assert!(stored.iter().any(|f| f.name == "demo.proto" && f.source == relaxed), "{stored:?}");
        // Restoring turns a plain field back into a reference: breaking too.
        c.put_schemas(auth(ADMIN, files(vec![file("demo.proto", DEMO_PROTO)], true))).await.expect("restored");
    }));
}

// ---------------------------------------------------------------------------
// Oids.

fn oids_creating_objects_at_oids_never_handed_out_is_refused() {
    let fx = Fx::new();
    fx.run(async {
        let handed = fx.new_oids(WRITER, 1).await;
        checked(&fx, async {
            let mut findings = Findings::default();
            for oid in [u64::MAX, 1 << 63, (1 << 63) + 1, (1 << 63) - 1, handed.end + 1_000_000_000] {
                findings
                    .check(format!("a new object at {oid}"), async {
                        let reply = commit_as(&fx, WRITER, vec![write(oid, None, tower_record("far", None))]).await;
                        let f = failed(reply, Kind::Invalid);
                        println!("a new object at {oid}: {}", f.message);
                    })
                    .await;
                findings
                    .check(format!("a new object at {oid} by the admin beside a good one"), async {
                        let writes = vec![
                            write(handed.start, None, tower_record("good", None)),
                            write(oid, None, tower_record("far", None)),
                        ];
                        failed(commit_as(&fx, ADMIN, writes).await, Kind::Invalid);
                    })
                    .await;
            }
            let x_tid = fx.tid_of(fx.x).await;
            for oid in [u64::MAX, 1 << 63] {
                findings
                    .check(format!("a write at {oid} with a base"), async {
                        let reply =
                            commit_as(&fx, WRITER, vec![write(oid, Some(x_tid), tower_record("far", None))]).await;
                        failed(reply, Kind::Invalid);
                    })
                    .await;
            }
            findings.assert_none();
        })
        .await;
    });
}

fn oids_new_oids_out_of_range_is_refused_and_the_server_goes_on() {
    let fx = Fx::new();
    fx.run(async {
        let first = fx.new_oids(WRITER, 1).await;
        checked(&fx, async {
            let next = first.end;
            let wrap = 0u64.wrapping_sub(next);
            let counts = [
                1u64 << 63,
                u64::MAX,
                (1 << 63) - 1,
                (1 << 63) - next + 1,
                // ranges whose end would wrap around 2^64
                wrap,
                wrap.wrapping_add(1),
                wrap.wrapping_sub(1),
            ];
            for count in counts {
                assert!(count > (1 << 63) - next, "{count} is not an attack");
            }
            let mut findings = Findings::default();
            for count in counts {
                for token in [WRITER, ADMIN] {
                    findings
                        .check(format!("NewOids({count}) for {token}"), async {
                            let result = fx.client().new_oids(auth(token, p::NewOidsRequest { count })).await;
                            if let Ok(r) = &result {
                                println!("NewOids({count}) handed out {:?}", r.get_ref());
                            }
                            refused(result, Code::InvalidArgument, Kind::Invalid);
                        })
                        .await;
                }
            }
            findings
                .check("NewOids(1) afterwards", async {
                    let after = fx.new_oids(WRITER, 1).await;
                    assert_eq!(after.end, after.start.wrapping_add(1), "{after:?}");
                    assert!(after.start >= first.end && after.end <= 1 << 63, "{after:?} after {first:?}");
                    let snap = fx.snap().await;
                    let highest = snap.objects.iter().map(|o| o.oid).max().unwrap();
                    assert!(
                        after.start > highest,
                        "NewOids handed out {after:?}, not above the highest object {highest}"
                    );
                })
                .await;
            findings.assert_none();
        })
        .await;
    });
}

/// Objects created at oids handed out, out of order, and then NewOids:
/// never an existing oid, never one handed out before.
fn oids_new_oids_never_hands_out_an_existing_oid() {
    let fx = Fx::new();
    fx.run(async {
        let first = fx.new_oids(WRITER, 10).await;
        assert_eq!(first.end - first.start, 10);
        committed(
            commit_as(
                &fx,
                WRITER,
                vec![
                    write(first.start + 9, None, tower_record("last", None)),
                    write(first.start + 3, None, tower_record("middle", None)),
                ],
            )
            .await,
        );
        let mut handed = vec![(first.start, first.end)];
        for count in [1, 5, 1000] {
            let r = fx.new_oids(WRITER, count).await;
            assert_eq!(r.end - r.start, count, "{r:?}");
            for (s, e) in &handed {
                assert!(r.end <= *s || r.start >= *e, "{r:?} overlaps {s}..{e}, handed out before");
            }
            let snap = fx.snap().await;
            for o in &snap.objects {
                assert!(!(r.start..r.end).contains(&o.oid), "{r:?} holds the existing oid {}", o.oid);
            }
            handed.push((r.start, r.end));
        }
        fx.honest().await;
    });
}

/// A write without a base for an object that exists would overwrite it
/// blindly; a write on a base from the future likewise.
fn oids_a_write_without_base_over_an_existing_object_is_refused() {
    let fx = Fx::new();
    fx.run(checked(&fx, async {
        let x_tid = fx.tid_of(fx.x).await;
        for base in [None, Some(u64::MAX), Some(x_tid + 1_000), Some(0)] {
            let reply = commit_as(&fx, WRITER, vec![write(fx.x, base, tower_record("overwritten", None))]).await;
            match reply {
                Ok(Reply::Failure(f)) => {
                    println!("base {base:?} on an existing object: {} {}", kind_name(f.kind), f.message)
                }
                other => panic!("a write with base {base:?} over x was not refused: {other:?}"),
            }
        }
    }));
}

// ---------------------------------------------------------------------------
// Plain commits and validation.

fn validation_plain_commits_that_lie_are_refused() {
    let fx = Fx::new();
    fx.run(async {
        let oids = fx.new_oids(WRITER, 3).await;
        let (a, b) = (oids.start, oids.start + 1);
        let x = fx.x;
        let empty_ref = {
            let mut s = tower(Some("a"), None);
            prost::encoding::bytes::encode(2, &Vec::new(), &mut s);
            s
        };
        // neighbor = x, then neighbor = b: the last occurrence wins (proto
        // merges a message field's occurrences), so the state refers to b.
        let twice = {
            let mut s = tower(Some("a"), Some(x));
            prost::encoding::bytes::encode(2, &ref_state(b), &mut s);
            s
        };
        // A Ref whose oid field appears twice: x, then b (b wins).
        let oid_twice = {
            let mut r = ref_state(x);
            prost::encoding::uint64::encode(1, &b, &mut r);
            let mut s = tower(Some("a"), None);
            prost::encoding::bytes::encode(2, &r, &mut s);
            s
        };
        // pbpersist.Root { entries: {"e": Ref(x)} }
        let root = {
            let mut entry = Vec::new();
            prost::encoding::string::encode(1, &"e".to_owned(), &mut entry);
            prost::encoding::bytes::encode(2, &ref_state(x), &mut entry);
            let mut s = Vec::new();
            prost::encoding::bytes::encode(1, &entry, &mut s);
            s
        };
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("a hidden reference", record("demo.Tower", tower(Some("a"), Some(x)), vec![])),
            ("a reference listed but absent", record("demo.Tower", tower(Some("a"), None), vec![x])),
            ("an extra reference", record("demo.Tower", tower(Some("a"), Some(x)), vec![x, b])),
            ("another reference", record("demo.Tower", tower(Some("a"), Some(x)), vec![b])),
            ("an empty Ref (the root) not listed", record("demo.Tower", empty_ref.clone(), vec![])),
            ("a reference field twice, listing the one that loses", record("demo.Tower", twice, vec![x])),
            ("a Ref's oid twice, listing the one that loses", record("demo.Tower", oid_twice, vec![x])),
            ("an undecodable state", record("demo.Tower", vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], vec![])),
            ("a state of the wrong wire type", record("demo.Tower", vec![0x08, 0x01], vec![])),
            ("a missing required field", record("demo.Tower", tower(None, None), vec![])),
            ("an unknown type", record("demo.Nope", tower(Some("a"), None), vec![])),
            ("an empty type", record("", tower(Some("a"), None), vec![])),
            ("a type with a leading dot", record(".demo.Tower", tower(Some("a"), None), vec![])),
            ("a type with a trailing space", record("demo.Tower ", tower(Some("a"), None), vec![])),
            ("a type with a trailing dot", record("demo.Tower.", tower(Some("a"), None), vec![])),
            ("a type with two dots", record("demo..Tower", tower(Some("a"), None), vec![])),
            ("a type with two leading dots", record("..demo.Tower", tower(Some("a"), None), vec![])),
            ("a shop type with a leading dot", record(".shop.Order", order("o", None), vec![])),
            ("a leading-dot type hiding a reference", record(".demo.Tower", tower(Some("a"), Some(x)), vec![])),
            ("a leading-dot type missing its name", record(".demo.Tower", tower(None, None), vec![])),
            (
                "a leading-dot type not decoding",
                record(".demo.Tower", vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], vec![]),
            ),
            ("a type naming a package", record("demo", tower(Some("a"), None), vec![])),
            ("a pbpersist.Ref object hiding its oid", record("pbpersist.Ref", ref_state(x), vec![])),
            ("a root hiding its entry", record("pbpersist.Root", root, vec![])),
            ("nesting over 32 levels", record("demo.Nest", nest(40), vec![])),
            ("not a record", vec![0x0a, 0xff]),
            (
                "a truncated reference list",
                vec![0x0a, 0x0a, b'd', b'e', b'm', b'o', b'.', b'T', b'o', b'w', b'e', b'r', 0x1a, 0x02, 0xff],
            ),
        ];
        checked(&fx, async {
            let mut findings = Findings::default();
            for (what, bad) in &cases {
                for token in [WRITER, ADMIN] {
                    // Fresh oids for each case, so that one that got
                    // through does not turn the next into a conflict.
                    let fresh = fx.new_oids(token, 2).await.start;
                    findings
                        .check(format!("{what}, for {token}"), async {
                            let writes = vec![
                                write(fresh, None, tower_record("good", Some(fresh + 1))),
                                write(fresh + 1, None, bad.clone()),
                            ];
                            let f = failed(commit_as(&fx, token, writes).await, Kind::Invalid);
                            println!("{what}: {}", f.message);
                        })
                        .await;
                }
            }
            findings.assert_none();
        })
        .await;
        // Within the nesting limit, a root reference listed: both fine.
        let writes = vec![
            write(a, None, record("demo.Nest", nest(20), vec![])),
            write(b, None, record("demo.Tower", empty_ref, vec![0])),
        ];
        committed(commit_as(&fx, WRITER, writes).await);
    });
}

/// A state nested 200,000 levels deep, against a server in its own process
/// (a stack overflow would take it down): refused, and the server goes on.
fn validation_a_state_nested_200000_levels_deep_is_refused() {
    let fx = Fx::in_process();
    fx.run(async {
        let oid = fx.new_oids(WRITER, 1).await.start;
        checked(&fx, async {
            let deep = record("demo.Nest", nest(200_000), vec![]);
            failed(commit_as(&fx, WRITER, vec![write(oid, None, deep)]).await, Kind::Invalid);
        })
        .await;
    });
}

/// A plain write on an old base without merges fails with CONFLICT naming
/// the oid; a read that moved fails a commit without writes.
fn validation_conflicts_are_conflicts() {
    let fx = Fx::new();
    fx.run(async {
        let (old, _) = fx.move_x().await;
        checked(&fx, async {
            let f = failed(
                commit_as(&fx, WRITER, vec![write(fx.x, Some(old), tower_record("late", None))]).await,
                Kind::Conflict,
            );
            assert_eq!(f.oid, fx.x, "{f:?}");
            let mut s = fx.session(READER).await;
            s.begin().await;
            let reply = s
                .call(Request::Commit(p::Commit {
                    reads: vec![p::Changed { oid: fx.x, tid: old }],
                    ..Default::default()
                }))
                .await;
            let f = failed(reply, Kind::Conflict);
            assert_eq!(f.oid, fx.x, "{f:?}");
        })
        .await;
    });
}

// ---------------------------------------------------------------------------
// Sessions.

fn sessions_out_of_order_requests_are_invalid_and_the_session_goes_on() {
    let fx = Fx::new();
    fx.run(checked(&fx, async {
        let mut findings = Findings::default();
        let mut s = fx.session(WRITER).await;
        let unasked = || Request::Merged(p::Merged { oid: fx.x, record: Some(tower_record("unasked", None)) });
        // Without a snapshot.
        let without: Vec<(&str, Option<Request>)> = vec![
            ("Load", Some(Request::Load(p::Load { oids: vec![fx.x] }))),
            ("Scan", Some(Request::Scan(p::Scan { after: None, limit: 10 }))),
            (
                "LoadReachable",
                Some(Request::LoadReachable(p::LoadReachable { roots: vec![fx.x], depth: 1, limit: 10 })),
            ),
            ("End", Some(Request::End(p::End {}))),
            ("an unasked Merged", Some(unasked())),
            ("an empty request", None),
        ];
        for (what, request) in without {
            findings
                .check(format!("{what} without a snapshot"), async {
                    s.send_raw(p::SessionRequest { request });
                    failed(s.reply().await, Kind::Invalid);
                })
                .await;
        }
        // With a snapshot: refused, and the snapshot stays open.
        let snap = s.begin().await;
        let with: Vec<(&str, Option<Request>)> = vec![
            ("a second Begin", Some(Request::Begin(p::Begin::default()))),
            ("a second Begin with since", Some(Request::Begin(p::Begin { since: Some(0), at: None }))),
            ("an unasked Merged", Some(unasked())),
            ("an unasked Merged without a record", Some(Request::Merged(p::Merged { oid: fx.x, record: None }))),
            ("an empty request", None),
        ];
        for (what, request) in with {
            findings
                .check(format!("{what} in a snapshot"), async {
                    s.send_raw(p::SessionRequest { request });
                    failed(s.reply().await, Kind::Invalid);
                    assert_eq!(s.load(vec![fx.x]).await.len(), 1, "the snapshot is still open");
                })
                .await;
        }
        findings
            .check("the session afterwards", async {
                s.end().await;
                assert!(s.begin().await.tid >= snap.tid);
                s.end().await;
            })
            .await;
        findings.assert_none();
    }));
}

fn sessions_load_answers_a_repeated_oid_once() {
    let fx = Fx::new();
    fx.run(checked(&fx, async {
        let mut s = fx.session(READER).await;
        s.begin().await;
        let objects = s.load(vec![fx.x; 1200]).await;
        assert_eq!(objects.iter().map(|o| o.oid).collect::<Vec<_>>(), vec![fx.x]);
        let mut mixed = vec![fx.x, u64::MAX, 1 << 63, fx.x + 12345];
        mixed.extend(std::iter::repeat_n(fx.x, 1200));
        mixed.extend(std::iter::repeat_n(u64::MAX, 1200));
        let objects = s.load(mixed).await;
        assert_eq!(objects.iter().map(|o| o.oid).collect::<Vec<_>>(), vec![fx.x]);
        s.end().await;
    }));
}

/// Two towers pointing at each other: LoadReachable with no real bounds
/// stops and answers each once.
fn sessions_load_reachable_on_a_cycle_answers_each_once() {
    let fx = Fx::new();
    fx.run(async {
        let y = fx.new_oids(WRITER, 1).await.start;
        let x_tid = fx.tid_of(fx.x).await;
        let writes =
            vec![write(y, None, tower_record("y", Some(fx.x))), write(fx.x, Some(x_tid), tower_record("x", Some(y)))];
        committed(commit_as(&fx, WRITER, writes).await);
        checked(&fx, async {
            let mut findings = Findings::default();
            let mut s = fx.session(READER).await;
            s.begin().await;
            for (what, roots) in [
                ("one root", vec![fx.x]),
                ("a root 1,200 times", vec![fx.x; 1200]),
                ("both and a missing one", vec![fx.x, y, u64::MAX]),
            ] {
                findings
                    .check(what, async {
                        let request = p::LoadReachable { roots, depth: u32::MAX, limit: u32::MAX };
                        match s.call(Request::LoadReachable(request)).await {
                            Ok(Reply::Objects(o)) => {
                                let oids: Vec<u64> = o.objects.iter().map(|o| o.oid).collect();
                                let mut sorted = oids.clone();
                                sorted.sort();
                                assert_eq!(sorted, vec![fx.x.min(y), fx.x.max(y)], "answered {oids:?}");
                            }
                            other => panic!("LoadReachable: {other:?}"),
                        }
                    })
                    .await;
            }
            s.end().await;
            findings.assert_none();
        })
        .await;
    });
}

fn sessions_the_far_end_of_the_oid_and_tid_ranges_is_empty() {
    let fx = Fx::new();
    fx.run(checked(&fx, async {
        let mut c = fx.client();
        let list = c
            .transactions(auth(
                READER,
                p::TransactionsRequest {
                    after: u64::MAX,
                    until: None,
                    limit: 1000,
                    newest_first: false,
                    records: true,
                },
            ))
            .await
            .expect("Transactions after 2^64-1")
            .into_inner();
        assert!(list.transactions.is_empty(), "{list:?}");
        let list = c
            .transactions(auth(
                READER,
                p::TransactionsRequest { after: u64::MAX, until: None, limit: 1000, newest_first: true, records: true },
            ))
            .await
            .expect("Transactions after 2^64-1, newest first")
            .into_inner();
        assert!(list.transactions.is_empty(), "{list:?}");
        let mut s = fx.session(READER).await;
        s.begin().await;
        for after in [u64::MAX, 1 << 63, (1 << 63) - 1] {
            match s.call(Request::Scan(p::Scan { after: Some(after), limit: 1000 })).await {
                Ok(Reply::Objects(o)) => assert!(o.objects.is_empty(), "Scan after {after}: {o:?}"),
                other => panic!("Scan after {after}: {other:?}"),
            }
        }
        s.end().await;
        match s.call(Request::Begin(p::Begin { since: Some(u64::MAX), at: None })).await {
            Ok(Reply::Snapshot(snap)) => assert!(snap.changed.is_empty(), "{snap:?}"),
            other => panic!("Begin since 2^64-1: {other:?}"),
        }
        s.end().await;
    }));
}

fn sessions_a_historical_begin_on_a_history_free_database_is_no_history() {
    let fx = Fx::new();
    fx.run(checked(&fx, async {
        let mut s = fx.session(WRITER).await;
        failed(s.call(Request::Begin(p::Begin { since: None, at: Some(1) })).await, Kind::NoHistory);
        s.begin().await;
        s.end().await;
    }));
}

fn sessions_a_historical_snapshot_cannot_commit() {
    let fx = Fx::with(None, History::Preserving);
    fx.run(async {
        let (old, _) = fx.move_x().await;
        let oid = fx.new_oids(WRITER, 1).await.start;
        checked(&fx, async {
            let mut s = fx.session(WRITER).await;
            for writes in [
                vec![write(fx.x, Some(old), tower_record("past", None))],
                vec![write(oid, None, tower_record("new", None))],
            ] {
                match s.call(Request::Begin(p::Begin { since: None, at: Some(old) })).await {
                    Ok(Reply::Snapshot(_)) => {}
                    other => panic!("a historical Begin: {other:?}"),
                }
                let reply = s.commit(writes).await;
                match reply {
                    Ok(Reply::Failure(f)) => {
                        println!("a commit on a historical snapshot: {} {}", kind_name(f.kind), f.message)
                    }
                    other => panic!("a historical snapshot committed: {other:?}"),
                }
            }
            s.begin().await;
            s.end().await;
        })
        .await;
    });
}

/// Requests that do not decode: a session's ends the stream with a status,
/// a unary call fails; both with an `INVALID` failure ("a malformed
/// request").
fn sessions_requests_that_do_not_decode_are_invalid() {
    let fx = Fx::new();
    fx.run(checked(&fx, async {
        let mut findings = Findings::default();
        // SessionRequest.begin (a message) sent as a varint, and a truncated varint.
        for body in [vec![0x08, 0x01], vec![0x0a, 0x80]] {
            findings
                .check(format!("the session request {body:02x?}"), async {
                    let mut grpc = tonic::client::Grpc::new(fx.channel.clone());
                    grpc.ready().await.unwrap();
                    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
                    let requests =
                        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
                    tx.send(body).unwrap();
                    let path = method("/pbpersist.server.v1.Storage/Session");
                    let status = match grpc.streaming(auth(WRITER, requests), path, Raw).await {
                        Err(status) => status,
                        Ok(replies) => {
                            let mut replies = replies.into_inner();
                            match tokio::time::timeout(Duration::from_secs(30), replies.message()).await {
                                Ok(Err(status)) => status,
                                other => panic!("a request that does not decode: {other:?}"),
                            }
                        }
                    };
                    drop(tx);
                    refused(Err::<(), _>(status), Code::InvalidArgument, Kind::Invalid);
                })
                .await;
        }
        // NewOidsRequest.count as a length-delimited field, and a truncated varint.
        for body in [vec![0x0a, 0x01, 0x00], vec![0x08]] {
            findings
                .check(format!("the NewOids request {body:02x?}"), async {
                    let mut grpc = tonic::client::Grpc::new(fx.channel.clone());
                    grpc.ready().await.unwrap();
                    let path = method("/pbpersist.server.v1.Storage/NewOids");
                    let result: Result<tonic::Response<Vec<u8>>, Status> =
                        grpc.unary(auth(WRITER, body), path, Raw).await;
                    refused(result, Code::InvalidArgument, Kind::Invalid);
                })
                .await;
        }
        findings.assert_none();
    }));
}

// ---------------------------------------------------------------------------
// Limits.

fn limits_sessions_over_the_per_client_limit_are_refused() {
    let fx = Fx::new();
    fx.run(checked(&fx, async {
        let mut held = Vec::new();
        for _ in 0..MAX_SESSIONS {
            let mut s = fx.session(READER).await;
            s.begin().await;
            held.push(s);
        }
        for _ in 0..3 {
            let result = first_answer(&fx.channel, Some(READER)).await.map(|(_, r)| r);
            refused(result, Code::ResourceExhausted, Kind::Limit);
        }
        // Another client is still served while the reader holds its 64.
        let mut other = fx.session(ADMIN).await;
        other.begin().await;
        other.end().await;
        drop(other);
        // A closed session's place is free at once (give the server a
        // moment to see the stream close).
        drop(held.pop());
        let start = Instant::now();
        loop {
            match first_answer(&fx.channel, Some(READER)).await {
                Ok((s, Reply::Snapshot(_))) => {
                    held.push(s);
                    break;
                }
                other => {
                    assert!(
                        start.elapsed() < Duration::from_secs(2),
                        "a closed session's place is not free: {other:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        println!("a closed session's place was free after {:?}", start.elapsed());
        drop(held);
    }));
}

fn limits_watches_over_the_per_client_limit_are_refused() {
    let fx = Fx::new();
    fx.run(checked(&fx, async {
        let mut held = Vec::new();
        for i in 0..MAX_WATCHES {
            held.push(watch(&fx.channel, Some(READER), None).await.unwrap_or_else(|s| panic!("watch {i}: {s:?}")));
        }
        for _ in 0..3 {
            refused(watch(&fx.channel, Some(READER), None).await.map(drop), Code::ResourceExhausted, Kind::Limit);
        }
        // Counted per token: another client still watches.
        let _other = watch(&fx.channel, Some(WRITER), None).await.expect("another client's watch");
        drop(held.pop());
        let start = Instant::now();
        loop {
            match watch(&fx.channel, Some(READER), None).await {
                Ok(w) => {
                    held.push(w);
                    break;
                }
                Err(status) => {
                    assert!(start.elapsed() < Duration::from_secs(2), "a closed watch's place is not free: {status:?}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        println!("a closed watch's place was free after {:?}", start.elapsed());
    }));
}

fn small() -> Fx {
    Fx::with(Some(pbpersist_server::Limits { max_request_bytes: 64 << 10, ..Default::default() }), History::Free)
}

fn limits_an_oversized_session_request_ends_the_stream() {
    let fx = small();
    fx.run(async {
        let oid = fx.new_oids(WRITER, 1).await.start;
        let hello = fx.client().hello(auth(WRITER, p::HelloRequest { versions: vec![1] })).await.unwrap().into_inner();
        assert_eq!(hello.max_request_bytes, 64 << 10);
        let (old, _) = fx.move_x().await;
        let other = fx.new_oids(ADMIN, 1).await.start;
        let before = fx.snap().await;
        let mut findings = Findings::default();
        findings
            .check("a commit over the limit", async {
                let mut s = fx.session(WRITER).await;
                s.begin().await;
                let big = tower_record(&"x".repeat(100 << 10), None);
                refused(s.commit(vec![write(oid, None, big)]).await, Code::ResourceExhausted, Kind::Limit);
            })
            .await;
        findings
            .check("a load of 10,000 large oids", async {
                let mut s = fx.session(WRITER).await;
                s.begin().await;
                let oids: Vec<u64> = (0..10_000u64).map(|i| (1 << 62) + i).collect();
                refused(s.call(Request::Load(p::Load { oids })).await, Code::ResourceExhausted, Kind::Limit);
            })
            .await;
        let mut other_tid = None;
        findings
            .check("a merge answer over the limit", async {
                let mut s = fx.session(WRITER).await;
                s.begin().await;
                s.send(Request::Commit(p::Commit {
                    writes: vec![write(fx.x, Some(old), tower_record("mine", None))],
                    merges: true,
                    ..Default::default()
                }));
                match s.reply().await {
                    Ok(Reply::Merge(m)) => assert_eq!(m.oid, fx.x),
                    other => panic!("expected a MergeRequest, got {other:?}"),
                }
                let started = Instant::now();
                let big = tower_record(&"m".repeat(100 << 10), None);
                s.send(Request::Merged(p::Merged { oid: fx.x, record: Some(big) }));
                refused(s.reply().await, Code::ResourceExhausted, Kind::Limit);
                // The commit's locks are given back: another writer commits.
                let mut o = fx.session(ADMIN).await;
                other_tid =
                    Some(committed(o.begin_commit(vec![write(other, None, tower_record("other", None))]).await));
                println!("after an oversized merge answer another writer committed within {:?}", started.elapsed());
            })
            .await;
        let mut after = fx.snap().await;
        if let Some(tid) = other_tid {
            after = after.without(tid);
        }
        same(&before, &after);
        fx.honest().await;
        findings.assert_none();
    });
}

fn limits_an_oversized_unary_request_is_refused() {
    let fx = small();
    fx.run(checked(&fx, async {
        let mut c = fx.client();
        let padded = format!("{DEMO_PROTO}// {}\n", "x".repeat(100 << 10));
        refused(
            c.put_schemas(auth(WRITER, files(vec![file("demo.proto", &padded)], false))).await,
            Code::ResourceExhausted,
            Kind::Limit,
        );
        refused(
            c.hello(auth(WRITER, p::HelloRequest { versions: vec![u32::MAX; 20_000] })).await,
            Code::ResourceExhausted,
            Kind::Limit,
        );
        // A small request is still served.
        c.transactions(auth(WRITER, p::TransactionsRequest { limit: 1, ..Default::default() }))
            .await
            .expect("a small request");
    }));
}

// ---------------------------------------------------------------------------
// Versions.

fn versions_hello_without_a_common_version_is_refused() {
    let fx = Fx::new();
    fx.run(checked(&fx, async {
        let mut c = fx.client();
        for versions in [vec![0], vec![0, 2, 99], vec![], vec![u32::MAX], vec![2; 100]] {
            let f = refused(
                c.hello(auth(READER, p::HelloRequest { versions: versions.clone() })).await,
                Code::FailedPrecondition,
                Kind::UnsupportedVersion,
            );
            says(&f, &["1"]);
        }
        let hello = c.hello(auth(READER, p::HelloRequest { versions: vec![0, 1, 99] })).await.unwrap().into_inner();
        assert_eq!(hello.version, 1);
    }));
}

/// PutSchemas with `force` takes the admin right: the refusal names it.
fn rights_a_reader_forcing_schemas_is_told_it_takes_admin() {
    let fx = Fx::new();
    fx.run(checked(&fx, async {
        let put = files(vec![file("demo.proto", DEMO_PROTO)], true);
        let f =
            refused(fx.client().put_schemas(auth(READER, put)).await, Code::PermissionDenied, Kind::PermissionDenied);
        says(&f, &["admin", "read-only"]);
    }));
}

/// Two clients' PutSchemas at once are checked one at a time, each against
/// what the other stored: of two files defining the same type, and of two
/// rewrites of `demo.proto` giving a new field number two types, only one
/// is stored each time, and the stored schemas still compile.
fn schemas_concurrent_puts_are_checked_one_at_a_time() {
    let fx = Fx::new();
    fx.run(async {
        let mut findings = Findings::default();
        let before = fx.client().schemas(auth(ADMIN, p::SchemasRequest {})).await.unwrap().into_inner().files;
        let mut stored = 0;
        for i in 0..20u32 {
            let (first, second) = if i % 2 == 0 {
                // The same new type in two files.
                (
                    vec![file(
                        &format!("dup{i}_a.proto"),
                        &format!("syntax = \"proto3\";\npackage shop;\nmessage Dup{i} {{ string a = 1; }}\n"),
                    )],
                    vec![file(
                        &format!("dup{i}_b.proto"),
                        &format!("syntax = \"proto3\";\npackage shop;\nmessage Dup{i} {{ int64 a = 1; }}\n"),
                    )],
                )
            } else {
                // A new field in Tower, as a string in one and an int64 in the other.
                let field = 10 + i;
                let with = |ty: &str| {
                    DEMO_PROTO.replace(
                        "  optional pbpersist.Ref neighbor",
                        &format!("  optional {ty} extra{i} = {field};\n  optional pbpersist.Ref neighbor"),
                    )
                };
                (vec![file("demo.proto", &with("string"))], vec![file("demo.proto", &with("int64"))])
            };
            let channel = fx.channel.clone();
            let a = tokio::spawn(async move {
                StorageClient::new(channel).put_schemas(auth(WRITER, files(first, false))).await.map(drop)
            });
            let channel = fx.channel.clone();
            let b = tokio::spawn(async move {
                StorageClient::new(channel).put_schemas(auth(ADMIN, files(second, false))).await.map(drop)
            });
            let (a, b) = (a.await.unwrap(), b.await.unwrap());
            let ok = usize::from(a.is_ok()) + usize::from(b.is_ok());
            stored += ok;
            findings
                .check(format!("round {i}: {a:?} and {b:?}"), async {
                    assert_eq!(ok, 1, "exactly one of two conflicting PutSchemas is stored");
                    let refusal = if a.is_err() { a } else { b };
                    refused(refusal, Code::InvalidArgument, Kind::Invalid);
                })
                .await;
            if i % 2 == 1 {
                // Back to the original for the next round (removing a field
                // nothing stored uses: forced, as it breaks the type).
                fx.client()
                    .put_schemas(auth(ADMIN, files(vec![file("demo.proto", DEMO_PROTO)], true)))
                    .await
                    .expect("the admin restores demo.proto");
            }
        }
        println!("{stored} of 40 concurrent PutSchemas were stored");
        findings
            .check("the stored schemas afterwards", async {
                let after = fx.client().schemas(auth(ADMIN, p::SchemasRequest {})).await.unwrap().into_inner().files;
                assert_eq!(after.len(), before.len() + 10, "one file of each pair of new files");
                // They still compile: a harmless PutSchemas and validated commits work.
                fx.client()
                    .put_schemas(auth(WRITER, files(vec![file("demo.proto", DEMO_PROTO)], false)))
                    .await
                    .expect("the schemas still compile");
                fx.honest().await;
            })
            .await;
        findings.assert_none();
    });
}

fn main() {
    let args = Arguments::from_args();
    let tests: Vec<(&str, fn())> = vec![
        (
            "schemas::only_an_admin_deletes_files_that_nothing_needs",
            schemas_only_an_admin_deletes_files_that_nothing_needs,
        ),
        ("auth::no_token_is_unauthenticated_on_every_call", auth_no_token_is_unauthenticated_on_every_call),
        (
            "auth::unknown_and_malformed_tokens_are_unauthenticated",
            auth_unknown_and_malformed_tokens_are_unauthenticated,
        ),
        (
            "rights::a_reader_may_not_write_allocate_store_schemas_pack_or_collect",
            rights_a_reader_may_not_write_allocate_store_schemas_pack_or_collect,
        ),
        (
            "rights::a_reader_forcing_schemas_is_told_it_takes_admin",
            rights_a_reader_forcing_schemas_is_told_it_takes_admin,
        ),
        (
            "rights::a_writer_may_not_pack_collect_or_force_schemas",
            rights_a_writer_may_not_pack_collect_or_force_schemas,
        ),
        ("rights::a_reader_may_read_and_commit_without_writes", rights_a_reader_may_read_and_commit_without_writes),
        ("packages::the_shop_client_may_not_write_demo_towers", packages_the_shop_client_may_not_write_demo_towers),
        ("packages::the_shop_client_may_not_write_the_root", packages_the_shop_client_may_not_write_the_root),
        ("packages::shop_does_not_allow_the_package_shopping", packages_shop_does_not_allow_the_package_shopping),
        ("packages::the_shop_client_may_not_store_demo_files", packages_the_shop_client_may_not_store_demo_files),
        (
            "packages::the_shop_client_may_not_replace_demo_proto_with_a_shop_file",
            packages_the_shop_client_may_not_replace_demo_proto_with_a_shop_file,
        ),
        (
            "packages::the_shop_client_may_store_shop_v1_and_write_its_types",
            packages_the_shop_client_may_store_shop_v1_and_write_its_types,
        ),
        ("merges::an_undecodable_merged_state_is_refused", merges_an_undecodable_merged_state_is_refused),
        (
            "merges::a_merged_record_that_is_not_a_record_is_refused",
            merges_a_merged_record_that_is_not_a_record_is_refused,
        ),
        (
            "merges::a_merged_record_missing_a_required_field_is_refused",
            merges_a_merged_record_missing_a_required_field_is_refused,
        ),
        ("merges::a_merged_record_hiding_a_reference_is_refused", merges_a_merged_record_hiding_a_reference_is_refused),
        (
            "merges::a_merged_record_listing_a_reference_it_lacks_is_refused",
            merges_a_merged_record_listing_a_reference_it_lacks_is_refused,
        ),
        ("merges::a_merged_record_of_an_unknown_type_is_refused", merges_a_merged_record_of_an_unknown_type_is_refused),
        (
            "merges::a_merged_record_of_a_package_the_client_may_not_write_is_refused",
            merges_a_merged_record_of_a_package_the_client_may_not_write_is_refused,
        ),
        ("merges::a_merged_answer_for_another_oid_is_refused", merges_a_merged_answer_for_another_oid_is_refused),
        ("merges::an_answer_without_a_record_keeps_the_conflict", merges_an_answer_without_a_record_keeps_the_conflict),
        (
            "merges::an_honest_merge_commits_and_an_extra_answer_is_refused",
            merges_an_honest_merge_commits_and_an_extra_answer_is_refused,
        ),
        (
            "merges::an_unanswered_merge_request_holds_others_only_for_the_merge_wait",
            merges_an_unanswered_merge_request_holds_others_only_for_the_merge_wait,
        ),
        (
            "schemas::garbage_is_refused_and_validation_still_works",
            schemas_garbage_is_refused_and_validation_still_works,
        ),
        (
            "schemas::a_reference_turned_into_a_plain_field_is_refused",
            schemas_a_reference_turned_into_a_plain_field_is_refused,
        ),
        (
            "schemas::other_breaking_changes_are_refused_without_force",
            schemas_other_breaking_changes_are_refused_without_force,
        ),
        ("schemas::bad_file_names_are_refused", schemas_bad_file_names_are_refused),
        ("schemas::the_same_name_twice_is_refused", schemas_the_same_name_twice_is_refused),
        (
            "schemas::redefining_stored_or_pbpersist_types_is_refused",
            schemas_redefining_stored_or_pbpersist_types_is_refused,
        ),
        ("schemas::concurrent_puts_are_checked_one_at_a_time", schemas_concurrent_puts_are_checked_one_at_a_time),
        (
            "schemas::an_admin_may_force_a_breaking_change_and_back",
            schemas_an_admin_may_force_a_breaking_change_and_back,
        ),
        (
            "oids::creating_objects_at_oids_never_handed_out_is_refused",
            oids_creating_objects_at_oids_never_handed_out_is_refused,
        ),
        (
            "oids::new_oids_out_of_range_is_refused_and_the_server_goes_on",
            oids_new_oids_out_of_range_is_refused_and_the_server_goes_on,
        ),
        ("oids::new_oids_never_hands_out_an_existing_oid", oids_new_oids_never_hands_out_an_existing_oid),
        (
            "oids::a_write_without_base_over_an_existing_object_is_refused",
            oids_a_write_without_base_over_an_existing_object_is_refused,
        ),
        ("validation::plain_commits_that_lie_are_refused", validation_plain_commits_that_lie_are_refused),
        (
            "validation::a_state_nested_200000_levels_deep_is_refused",
            validation_a_state_nested_200000_levels_deep_is_refused,
        ),
        ("validation::conflicts_are_conflicts", validation_conflicts_are_conflicts),
        (
            "sessions::out_of_order_requests_are_invalid_and_the_session_goes_on",
            sessions_out_of_order_requests_are_invalid_and_the_session_goes_on,
        ),
        ("sessions::load_answers_a_repeated_oid_once", sessions_load_answers_a_repeated_oid_once),
        ("sessions::load_reachable_on_a_cycle_answers_each_once", sessions_load_reachable_on_a_cycle_answers_each_once),
        (
            "sessions::the_far_end_of_the_oid_and_tid_ranges_is_empty",
            sessions_the_far_end_of_the_oid_and_tid_ranges_is_empty,
        ),
        (
            "sessions::a_historical_begin_on_a_history_free_database_is_no_history",
            sessions_a_historical_begin_on_a_history_free_database_is_no_history,
        ),
        ("sessions::a_historical_snapshot_cannot_commit", sessions_a_historical_snapshot_cannot_commit),
        ("sessions::requests_that_do_not_decode_are_invalid", sessions_requests_that_do_not_decode_are_invalid),
        (
            "limits::sessions_over_the_per_client_limit_are_refused",
            limits_sessions_over_the_per_client_limit_are_refused,
        ),
        ("limits::watches_over_the_per_client_limit_are_refused", limits_watches_over_the_per_client_limit_are_refused),
        ("limits::an_oversized_session_request_ends_the_stream", limits_an_oversized_session_request_ends_the_stream),
        ("limits::an_oversized_unary_request_is_refused", limits_an_oversized_unary_request_is_refused),
        ("versions::hello_without_a_common_version_is_refused", versions_hello_without_a_common_version_is_refused),
    ];
    let trials = tests
        .into_iter()
        .map(|(name, test)| {
            Trial::test(name, move || {
                test();
                Ok(())
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
