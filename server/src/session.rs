//! One client session: a thread that owns the storage's session and answers
//! the stream's requests in order. Storages are synchronous and a commit
//! may wait for the client's merges while it holds its locks, so each
//! session gets a thread rather than a task.

use std::sync::Arc;
use std::sync::mpsc;

use pbpersist::storage::protocol::{self as p, failure::Kind, session_reply::Reply, session_request::Request};
use pbpersist::storage::{Loaded, Session, TransactionMeta, Write};
use pbpersist::{Oid, StorageError, Tid};
use tokio::sync::mpsc as tokio_mpsc;
use tonic::Status;

use crate::access::{Access, Caller};
use crate::state::{Shared, Slot};

type Sender = tokio_mpsc::Sender<Result<p::SessionReply, Status>>;

/// Starts serving one `Session` stream; returns the stream of replies.
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
                    // tonic says OUT_OF_RANGE for a message over the size
                    // limit; the protocol says RESOURCE_EXHAUSTED, as for
                    // every limit, with a Failure as for every error.
                    let status = match status.code() {
                        tonic::Code::OutOfRange => p::refusal(Kind::Limit, status.message()),
                        _ => p::refusal(Kind::Invalid, status.message()),
                    };
                    let _ = refuse.send(Err(status)).await;
                    break;
                }
            }
        }
    });
    std::thread::Builder::new()
        .name("pbpersist-session".into())
        .spawn(move || {
            let who = slot.who.clone();
            let _slot = slot;
            let mut state = State { shared, caller, who, late_merges: 0, current: None, now: None, past: None };
            state.run(&requests, &send);
            state.close();
        })
        .map_err(|e| p::refusal(Kind::Limit, format!("cannot start a session: {e}")))?;
    Ok(tokio_stream::wrappers::ReceiverStream::new(replies))
}

struct State {
    shared: Arc<Shared>,
    caller: Caller,
    /// Who the caller is counted as for per-client limits.
    who: String,
    /// Merge requests whose answers came too late for their commit.
    late_merges: u32,
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
                    let _ = send.blocking_send(Err(p::refusal(
                        Kind::Unavailable,
                        format!("the session was idle for {} s and is closed", idle.as_secs()),
                    )));
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
                Request::Merged(_) if self.late_merges > 0 => {
                    self.late_merges -= 1;
                    continue;
                }
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
                    return Err(refused("a snapshot is open; end it with End or Commit before the next Begin"));
                }
                let session = match b.at {
                    Some(at) => {
                        if self.past.as_ref().is_none_or(|(t, _)| t.0 != at) {
                            self.past =
                                Some((Tid(at), self.shared.storage.require_history()?.open_session_at(Tid(at))?));
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
            Request::Load(mut l) => {
                let session = self.session()?;
                // Each object once, in the order first asked for.
                let mut seen = std::collections::HashSet::with_capacity(l.oids.len());
                l.oids.retain(|o| seen.insert(*o));
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
                let mut seen = std::collections::HashSet::with_capacity(r.roots.len());
                let roots: Vec<Oid> = r.roots.into_iter().filter(|o| seen.insert(*o)).map(Oid).collect();
                let mut found = self.session()?.load_reachable(&roots, r.depth, r.limit as usize)?;
                // Each object once, however many roots reach it.
                seen.clear();
                found.retain(|(o, _)| seen.insert(o.0));
                Ok(self.objects(found))
            }
            Request::End(_) => {
                self.session()?.end()?;
                self.current = None;
                Ok(Reply::Done(p::Done {}))
            }
            Request::Merged(_) => Err(refused("a merge was sent with no commit asking for one")),
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
            if let Some(why) = self.caller.lacks(Access::ReadWrite, "commit").filter(|_| !self.shared.read_only) {
                self.shared.metrics.refused();
                session.end()?;
                tracing::warn!(client = self.caller.name(), "refused a commit: {why}");
                return Ok(Reply::Failure(p::Failure {
                    kind: Kind::PermissionDenied as i32,
                    message: why,
                    ..Default::default()
                }));
            }
            let checked = if self.shared.read_only {
                Err(StorageError::ReadOnly { backend: self.shared.storage.name() })
            } else {
                commit.writes.iter().try_for_each(|w| admit(&self.shared, &self.caller, w.oid, &w.record))
            };
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
        // The client merges while the storage holds the commit's locks, so
        // its answers are bounded: all of one commit's waits together last
        // at most `merge_wait`; one commit per client waits for merges at
        // a time; and a client that let the time run out is offered no
        // merges for four times as long. A client that breaks the exchange,
        // or answers with a record the gate refuses, keeps the conflict.
        let mut merging: Option<Merging> = None;
        let deadline = std::time::Instant::now() + self.shared.limits.merge_wait;
        let mut broken: Option<StorageError> = None;
        let mut timed_out = false;
        let metrics = self.shared.metrics.clone();
        let (shared, caller, who) = (self.shared.clone(), self.caller.clone(), self.who.clone());
        let mut resolve = |oid: Oid, stored: &Loaded| -> Option<Vec<u8>> {
            if !commit.merges || broken.is_some() || timed_out {
                return None;
            }
            if merging.is_none() {
                merging = Some(Merging::take(&shared, &who)?);
            }
            metrics.merge_asked();
            let ask = p::MergeRequest { oid: oid.0, tid: stored.tid.0, record: stored.record.clone() };
            if reply(send, Reply::Merge(ask)).is_err() {
                broken = Some(refused("the client went away during a merge"));
                return None;
            }
            let wait = deadline.saturating_duration_since(std::time::Instant::now());
            match requests.recv_timeout(wait) {
                Ok(p::SessionRequest { request: Some(Request::Merged(m)) }) if m.oid == oid.0 => {
                    let record = m.record?;
                    match admit(&shared, &caller, oid.0, &record) {
                        Ok(()) => Some(record),
                        Err(e) => {
                            broken = Some(e);
                            None
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    // A slow client may be honest: its commit fails on the
                    // conflict, which it retries; the answer it sends late
                    // is dropped.
                    if let Some(m) = &merging {
                        m.penalize();
                    }
                    tracing::warn!(client = %who, "a merge was not answered in time");
                    timed_out = true;
                    None
                }
                _ => {
                    broken = Some(refused("the client answered a merge request with another request"));
                    None
                }
            }
        };
        let started = std::time::Instant::now();
        let result = session.commit(&writes, &reads, &meta, &mut resolve);
        self.shared.metrics.committed(&result, started.elapsed());
        if timed_out {
            // The answer the client still owes is dropped when it comes,
            // so that replies stay in step with requests.
            self.late_merges += 1;
        }
        if let Some(e) = broken {
            // The commit failed on the conflict the merge left in place.
            if result.is_err() {
                self.shared.metrics.refused();
                tracing::warn!(client = self.caller.name(), error = %pbpersist::report(&e), "refused a merge");
                return Err(e);
            }
        }
        let tid = result?;
        if tid.is_some() {
            self.shared.watcher.committed();
        }
        Ok(Reply::Committed(p::CommitReply { tid: tid.map(|t| t.0) }))
    }
}

/// The gate of every record this server's clients write.
fn admit(shared: &Shared, caller: &Caller, oid: u64, record: &[u8]) -> Result<(), StorageError> {
    crate::validate::admit(shared.storage.as_ref(), shared.validator.as_ref(), caller, oid, record)
}

/// A client's one commit that may wait for merges; a second commit of the
/// same client at the same time is offered none, and neither is a client
/// that let a merge wait run out lately.
struct Merging {
    shared: Arc<Shared>,
    who: String,
}

impl Merging {
    fn take(shared: &Arc<Shared>, who: &str) -> Option<Merging> {
        let mut merging = shared.merging.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        merging.penalized.retain(|_, until| *until > now);
        if merging.penalized.contains_key(who) || !merging.waiting.insert(who.to_owned()) {
            return None;
        }
        Some(Merging { shared: shared.clone(), who: who.to_owned() })
    }

    /// Offers the client no merges for four times the merge wait.
    fn penalize(&self) {
        let until = std::time::Instant::now() + self.shared.limits.merge_wait * 4;
        let mut merging = self.shared.merging.lock().unwrap_or_else(|e| e.into_inner());
        merging.penalized.insert(self.who.clone(), until);
    }
}

impl Drop for Merging {
    fn drop(&mut self) {
        self.shared.merging.lock().unwrap_or_else(|e| e.into_inner()).waiting.remove(&self.who);
    }
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

fn refused(reason: impl Into<String>) -> StorageError {
    StorageError::Refused { backend: "pbpersist", reason: reason.into() }
}

fn no_snapshot() -> StorageError {
    refused("the session has no snapshot; send Begin first")
}

fn invalid(what: &str) -> p::Failure {
    p::failure(&refused(what))
}
