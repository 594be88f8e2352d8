//! One client session: a thread that owns the storage's session and answers
//! the stream's requests in order. Storages are synchronous and a commit
//! may wait for the client's merges while it holds its locks, so each
//! session gets a thread rather than a task.

use std::sync::Arc;
use std::sync::mpsc;

use pbpersist::storage::remote::protocol::{self as p, session_reply::Reply, session_request::Request};
use pbpersist::storage::{Loaded, Session, TransactionMeta, Write};
use pbpersist::{Oid, StorageError, Tid};
use tokio::sync::mpsc as tokio_mpsc;
use tonic::Status;

use crate::access::{Access, Caller};
use crate::service::Shared;

/// How long a commit waits, holding its locks, for the client's merge.
const MERGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

type Sender = tokio_mpsc::Sender<Result<p::SessionReply, Status>>;

/// Starts serving one `Session` stream; returns the stream of replies.
/// One client's place among its open sessions, given back when dropped.
pub(crate) struct Slot {
    shared: Arc<Shared>,
    who: String,
}

impl Slot {
    /// Takes a place for `who`, or refuses when it has the most it may.
    pub(crate) fn take(shared: Arc<Shared>, who: String) -> Result<Slot, Status> {
        let limit = shared.limits.max_sessions_per_client;
        let mut open = shared.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(who.clone()).or_default();
        if *count >= limit {
            shared.metrics.refused();
            tracing::warn!(client = %who, limit, "refused: too many sessions");
            return Err(Status::resource_exhausted(format!("{who} has {limit} sessions open, the most it may")));
        }
        *count += 1;
        drop(open);
        shared.metrics.session_opened();
        Ok(Slot { shared, who })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.metrics.session_closed();
        let mut open = self.shared.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.who) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.who);
            }
        }
    }
}

pub(crate) fn start(
    shared: Arc<Shared>,
    caller: Caller,
    slot: Slot,
    mut incoming: tonic::Streaming<p::SessionRequest>,
) -> Result<tokio_stream::wrappers::ReceiverStream<Result<p::SessionReply, Status>>, Status> {
    let (send, replies) = tokio_mpsc::channel(4);
    let (forward, requests) = mpsc::channel();
    let refuse = send.clone();
    let mut stopping = shared.stopping.clone();
    tokio::spawn(async move {
        // Ends when the client closes its side, the connection breaks or
        // the server stops; dropping `forward` then tells the session
        // thread, which finishes the request it is answering. A request the
        // server cannot take (over the size limit, malformed) ends the
        // stream with its status.
        loop {
            let message = tokio::select! {
                m = incoming.message() => m,
                _ = stopping.wait_for(|s| *s) => break,
            };
            match message {
                Ok(Some(message)) => {
                    if forward.send(message).is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(status) => {
                    // A client that went away shows as Cancelled or Unknown.
                    if !matches!(status.code(), tonic::Code::Cancelled | tonic::Code::Unknown) {
                        tracing::warn!(code = ?status.code(), reason = status.message(), "refused a session request");
                    }
                    let _ = refuse.send(Err(status)).await;
                    break;
                }
            }
        }
    });
    std::thread::Builder::new()
        .name("pbpersist-session".into())
        .spawn(move || {
            let _slot = slot;
            let mut state = State { shared, caller, current: None, now: None, past: None };
            state.run(&requests, &send);
            state.close();
        })
        .map_err(|e| Status::resource_exhausted(format!("cannot start a session: {e}")))?;
    Ok(tokio_stream::wrappers::ReceiverStream::new(replies))
}

struct State {
    shared: Arc<Shared>,
    caller: Caller,
    /// Which session the snapshot began in: the present one or the past one.
    current: Option<Which>,
    now: Option<Box<dyn Session>>,
    past: Option<(Tid, Box<dyn Session>)>,
}

#[derive(Clone, Copy)]
enum Which {
    Now,
    Past,
}

impl State {
    fn run(&mut self, requests: &mpsc::Receiver<p::SessionRequest>, send: &Sender) {
        let idle = self.shared.limits.idle_timeout;
        loop {
            let message = match requests.recv_timeout(idle) {
                Ok(m) => m,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    tracing::debug!(client = self.caller.name(), "ended an idle session");
                    let _ = send.blocking_send(Err(Status::unavailable(format!(
                        "the session was idle for {} s and is closed",
                        idle.as_secs()
                    ))));
                    return;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            };
            let Some(request) = message.request else {
                let f = invalid("an empty request");
                if reply(send, Reply::Failure(f)).is_err() {
                    return;
                }
                continue;
            };
            let answer = match request {
                Request::Commit(commit) => self.commit(commit, requests, send),
                other => self.handle(other),
            };
            let answer = answer.unwrap_or_else(|e| {
                tracing::debug!(error = %pbpersist::report(&e), "a session request failed");
                Reply::Failure(p::failure(&e))
            });
            if reply(send, answer).is_err() {
                return;
            }
        }
    }

    /// Ends an open snapshot when the stream ends.
    fn close(&mut self) {
        if let Ok(session) = self.session() {
            let _ = session.end();
        }
    }

    fn session(&mut self) -> Result<&mut Box<dyn Session>, StorageError> {
        match self.current {
            Some(Which::Now) => self.now.as_mut().ok_or_else(no_snapshot),
            Some(Which::Past) => self.past.as_mut().map(|(_, s)| s).ok_or_else(no_snapshot),
            None => Err(no_snapshot()),
        }
    }

    fn handle(&mut self, request: Request) -> Result<Reply, StorageError> {
        match request {
            Request::Begin(b) => {
                if self.current.is_some() {
                    self.session()?.end()?;
                    self.current = None;
                }
                let session = match b.at {
                    Some(at) => {
                        if self.past.as_ref().is_none_or(|(t, _)| t.0 != at) {
                            self.past = Some((Tid(at), self.shared.storage.open_session_at(Tid(at))?));
                        }
                        self.current = Some(Which::Past);
                        &mut self.past.as_mut().expect("just set").1
                    }
                    None => {
                        if self.now.is_none() {
                            self.now = Some(self.shared.storage.open_session()?);
                        }
                        self.current = Some(Which::Now);
                        self.now.as_mut().expect("just set")
                    }
                };
                match session.begin(b.since.map(Tid)) {
                    Ok(s) => Ok(Reply::Snapshot(p::Snapshot {
                        tid: s.tid.0,
                        changed: s.changed.into_iter().map(|(o, t)| p::Changed { oid: o.0, tid: t.0 }).collect(),
                    })),
                    Err(e) => {
                        self.current = None;
                        Err(e)
                    }
                }
            }
            Request::Load(l) => {
                let session = self.session()?;
                let found = match l.oids.as_slice() {
                    [one] => session.load(Oid(*one))?.map(|l| (Oid(*one), l)).into_iter().collect(),
                    many => session.load_many(&many.iter().copied().map(Oid).collect::<Vec<_>>())?,
                };
                Ok(self.objects(found))
            }
            Request::Scan(s) => {
                let found = self.session()?.scan(s.after.map(Oid), s.limit as usize)?;
                Ok(self.objects(found))
            }
            Request::LoadReachable(r) => {
                let roots: Vec<Oid> = r.roots.into_iter().map(Oid).collect();
                let found = self.session()?.load_reachable(&roots, r.depth, r.limit as usize)?;
                Ok(self.objects(found))
            }
            Request::End(_) => {
                if self.current.is_some() {
                    self.session()?.end()?;
                    self.current = None;
                }
                Ok(Reply::Done(p::Done {}))
            }
            Request::Merged(_) => Err(StorageError::Refused {
                backend: "server",
                reason: "a merge was sent with no commit asking for one".into(),
            }),
            Request::Commit(_) => unreachable!("commits are handled by State::commit"),
        }
    }

    fn commit(
        &mut self,
        commit: p::Commit,
        requests: &mpsc::Receiver<p::SessionRequest>,
        send: &Sender,
    ) -> Result<Reply, StorageError> {
        let which = self.current.take().ok_or_else(no_snapshot)?;
        let session = match which {
            Which::Now => self.now.as_mut().ok_or_else(no_snapshot)?,
            Which::Past => self.past.as_mut().map(|(_, s)| s).ok_or_else(no_snapshot)?,
        };
        if !commit.writes.is_empty() {
            if self.shared.read_only || self.caller.access() < Access::ReadWrite {
                session.end()?;
                self.shared.metrics.refused();
                if !self.shared.read_only {
                    tracing::warn!(client = self.caller.name(), "refused: a commit from a read-only client");
                }
                return Err(StorageError::ReadOnly { backend: self.shared.storage.name() });
            }
            let checked = check_writes(&self.caller, &commit.writes).and_then(|()| match &self.shared.validator {
                Some(v) => {
                    commit.writes.iter().try_for_each(|w| v.check(self.shared.storage.as_ref(), w.oid, &w.record))
                }
                None => Ok(()),
            });
            if let Err(e) = checked {
                self.shared.metrics.refused();
                session.end()?;
                tracing::warn!(client = self.caller.name(), error = %pbpersist::report(&e), "refused a commit");
                return Err(e);
            }
        }
        let writes: Vec<Write> = commit
            .writes
            .into_iter()
            .map(|w| Write { oid: Oid(w.oid), base: w.base.map(Tid), record: w.record })
            .collect();
        let reads: Vec<(Oid, Tid)> = commit.reads.iter().map(|r| (Oid(r.oid), Tid(r.tid))).collect();
        let meta = commit.meta.map(TransactionMeta::from).unwrap_or_default();
        // The client merges while the storage holds the commit's locks; a
        // client that breaks the exchange leaves the conflict in place.
        let mut broken = false;
        let metrics = self.shared.metrics.clone();
        let mut resolve = |oid: Oid, stored: &Loaded| -> Option<Vec<u8>> {
            if !commit.merges || broken {
                return None;
            }
            metrics.merge_asked();
            let ask = p::MergeRequest { oid: oid.0, tid: stored.tid.0, record: stored.record.clone() };
            if reply(send, Reply::Merge(ask)).is_err() {
                broken = true;
                return None;
            }
            // The commit holds its locks while it waits: a client that does
            // not answer soon keeps the conflict.
            match requests.recv_timeout(MERGE_TIMEOUT.min(self.shared.limits.idle_timeout)) {
                Ok(p::SessionRequest { request: Some(Request::Merged(m)) }) if m.oid == oid.0 => m.record,
                _ => {
                    broken = true;
                    None
                }
            }
        };
        let started = std::time::Instant::now();
        let result = session.commit(&writes, &reads, &meta, &mut resolve);
        self.shared.metrics.committed(&result, started.elapsed());
        let tid = result?;
        if broken {
            return Err(StorageError::Refused { backend: "server", reason: "the client broke off a merge".into() });
        }
        if tid.is_some() {
            self.shared.watcher.committed();
        }
        Ok(Reply::Committed(p::CommitReply { tid: tid.map(|t| t.0) }))
    }
}

/// Refuses writes whose records are malformed or of types the caller may
/// not write, before the storage sees any of them.
fn check_writes(caller: &Caller, writes: &[p::Write]) -> Result<(), StorageError> {
    for w in writes {
        let refuse = |reason: String| StorageError::Refused { backend: "server", reason };
        let record = pbpersist::Record::from_bytes(w.record.clone().into())
            .map_err(|e| refuse(format!("the record of object {} is malformed: {e}", w.oid)))?;
        if !caller.may_write_type(&record.r#type) {
            return Err(refuse(format!(
                "client {} may not write objects of type {} (object {})",
                caller.name(),
                record.r#type,
                w.oid
            )));
        }
    }
    Ok(())
}

fn reply(send: &Sender, reply: Reply) -> Result<(), ()> {
    send.blocking_send(Ok(p::SessionReply { reply: Some(reply) })).map_err(drop)
}

impl State {
    fn objects(&self, found: Vec<(Oid, Loaded)>) -> Reply {
        self.shared.metrics.loaded(found.len());
        objects(found)
    }
}

fn objects(found: Vec<(Oid, Loaded)>) -> Reply {
    Reply::Objects(p::Objects {
        objects: found.into_iter().map(|(o, l)| p::Object { oid: o.0, tid: l.tid.0, record: l.record }).collect(),
    })
}

fn no_snapshot() -> StorageError {
    StorageError::Refused { backend: "server", reason: "the session has no snapshot; send Begin first".into() }
}

fn invalid(what: &str) -> p::Failure {
    p::failure(&StorageError::Refused { backend: "server", reason: what.into() })
}
