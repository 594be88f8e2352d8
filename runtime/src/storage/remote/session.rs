//! A session over the server's `Session` stream: one request and its reply
//! at a time, in order, as the storage's `Session` trait is used.

use std::sync::Arc;

use super::{BACKEND, Inner, wait};
use crate::storage::protocol::{self, session_reply::Reply, session_request::Request};
use crate::storage::{Loaded, Resolve, Session, Snapshot, TransactionMeta, Write};
use crate::{Oid, StorageError, Tid};

/// One open `Session` call: where requests go and replies come from.
struct Stream {
    send: tokio::sync::mpsc::Sender<protocol::SessionRequest>,
    replies: tonic::Streaming<protocol::SessionReply>,
}

/// Why an exchange got no reply.
enum Broken {
    /// The request was not sent: nothing happened on the server.
    NotSent(StorageError),
    /// The request was sent and the stream broke before the reply.
    Lost(StorageError),
}

impl Stream {
    async fn open(inner: &Inner) -> Result<Stream, StorageError> {
        let (send, receive) = tokio::sync::mpsc::channel(4);
        let requests = futures_util::stream::unfold(receive, |mut r| async move { r.recv().await.map(|m| (m, r)) });
        let mut client = inner.client.clone();
        let replies = client.session(requests).await.map_err(|s| protocol::from_status(s, &inner.target))?;
        Ok(Stream { send, replies: replies.into_inner() })
    }

    async fn exchange(&mut self, request: Request, target: &str) -> Result<Reply, Broken> {
        let closed = || StorageError::Unavailable {
            backend: BACKEND,
            target: target.to_owned(),
            source: "the server closed the session".into(),
        };
        let message = protocol::SessionRequest { request: Some(request) };
        self.send.send(message).await.map_err(|_| Broken::NotSent(closed()))?;
        match self.replies.message().await {
            Ok(Some(protocol::SessionReply { reply: Some(reply) })) => Ok(reply),
            Ok(Some(protocol::SessionReply { reply: None })) => Err(Broken::Lost(StorageError::Refused {
                backend: BACKEND,
                reason: "the server sent an empty reply".into(),
            })),
            Ok(None) => Err(Broken::Lost(closed())),
            Err(status) => Err(Broken::Lost(protocol::from_status(status, target))),
        }
    }
}

/// The storage side of one connection, on the server.
pub(super) struct RemoteSession {
    inner: Arc<Inner>,
    /// The tid every snapshot shows, for a historical session.
    at: Option<Tid>,
    stream: Option<Stream>,
    /// Whether the server holds a snapshot this session began: a stream
    /// that broke in between lost it, so the transaction cannot go on.
    began: bool,
    /// The open snapshot's tid, when the state cache serves it.
    cached_snapshot: Option<Tid>,
}

impl RemoteSession {
    pub(super) fn new(inner: Arc<Inner>, at: Option<Tid>) -> Self {
        RemoteSession { inner, at, stream: None, began: false, cached_snapshot: None }
    }

    /// The state cache, for sessions of the present (a historical one
    /// reads the past, which the file does not keep).
    fn state_cache(&self) -> Option<&crate::storage::local_cache::StateCache> {
        self.inner.state_cache.as_ref().filter(|_| self.at.is_none())
    }

    /// The state cache's record of `oid` in the open snapshot.
    fn cached(&self, oid: Oid) -> Option<Loaded> {
        self.state_cache()?.get(self.cached_snapshot?, oid)
    }

    /// Offers records loaded in the open snapshot to the state cache.
    fn keep(&self, found: &[(Oid, Loaded)]) {
        if let (Some(cache), Some(snapshot)) = (self.state_cache(), self.cached_snapshot) {
            for (oid, loaded) in found {
                cache.put(snapshot, *oid, loaded);
            }
        }
    }

    /// Sends `request` and waits for its reply; a stream that broke is
    /// dropped, so the next snapshot opens a new one.
    fn exchange(&mut self, request: Request) -> Result<Reply, Broken> {
        let stream = match self.stream.take() {
            Some(s) => s,
            None => {
                let inner = self.inner.clone();
                wait(self.inner.runtime(), async move { Stream::open(&inner).await })
                    .and_then(|r| r)
                    .map_err(Broken::NotSent)?
            }
        };
        let target = self.inner.target.clone();
        let (stream, reply) = wait(self.inner.runtime(), async move {
            let mut stream = stream;
            let reply = stream.exchange(request, &target).await;
            (stream, reply)
        })
        .map_err(Broken::NotSent)?;
        if reply.is_ok() {
            self.stream = Some(stream);
        } else {
            self.began = false;
        }
        reply
    }

    /// A request within the snapshot, whose loss changes nothing.
    fn read(&mut self, request: Request) -> Result<Reply, StorageError> {
        if !self.began {
            return Err(self.lost_snapshot());
        }
        let reply = self.exchange(request).map_err(|b| match b {
            Broken::NotSent(e) | Broken::Lost(e) => e,
        })?;
        match reply {
            Reply::Failure(f) => Err(protocol::storage_error(f, &self.inner.target)),
            other => Ok(other),
        }
    }

    fn lost_snapshot(&self) -> StorageError {
        StorageError::Unavailable {
            backend: BACKEND,
            target: self.inner.target.clone(),
            source: "the connection broke during the transaction, and the server ended its snapshot".into(),
        }
    }

    fn objects(&mut self, request: Request) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        match self.read(request)? {
            Reply::Objects(o) => {
                Ok(o.objects.into_iter().map(|o| (Oid(o.oid), Loaded { tid: Tid(o.tid), record: o.record })).collect())
            }
            other => Err(unexpected(&other)),
        }
    }
}

/// A reply that does not answer the request: a server bug or not a
/// pbpersist server.
fn unexpected(reply: &Reply) -> StorageError {
    StorageError::Backend { backend: BACKEND, source: format!("the server answered out of turn: {reply:?}").into() }
}

impl Session for RemoteSession {
    fn begin(&mut self, since: Option<Tid>) -> Result<Snapshot, StorageError> {
        // The server refuses a Begin while a snapshot is open; a stream
        // that cannot end it is dropped, and the Begin opens another.
        if self.began && self.end().is_err() {
            self.stream = None;
            self.began = false;
        }
        let at = self.at;
        self.cached_snapshot = None;
        // A state cache current up to `valid` needs what changed since
        // then; one list from the older of the two tids serves the caller
        // and the file.
        let valid = self.state_cache().map(|c| c.valid()).and_then(|(v, empty)| (!empty).then_some(Tid(v)));
        let ask = match (since, valid) {
            (Some(s), Some(v)) => Some(s.min(v)),
            (s, v) => s.or(v),
        };
        let request = || Request::Begin(protocol::Begin { since: ask.map(|t| t.0), at: at.map(|t| t.0) });
        self.began = true;
        let mut reply = self.read(request());
        if matches!(reply, Err(StorageError::Unavailable { .. })) && self.stream.is_none() {
            // The server ended an idle session, or the connection broke
            // since the last transaction: beginning again on a new stream
            // loses nothing.
            self.began = true;
            reply = self.read(request());
        }
        match reply {
            Ok(Reply::Snapshot(s)) => {
                let tid = Tid(s.tid);
                let changed: Vec<(Oid, Tid)> = s.changed.into_iter().map(|c| (Oid(c.oid), Tid(c.tid))).collect();
                if let Some(cache) = self.state_cache() {
                    // An empty file has nothing to drop; it starts at `tid`.
                    let dropped = changed.iter().filter(|(_, t)| valid.is_some_and(|v| *t > v));
                    cache.advance(valid, tid, dropped.map(|(o, _)| *o));
                }
                self.cached_snapshot = self.state_cache().map(|_| tid);
                // The caller hears of what changed after its own tid only.
                let changed = match since {
                    Some(s) if ask != Some(s) => changed.into_iter().filter(|(_, t)| *t > s).collect(),
                    Some(_) => changed,
                    None => Vec::new(),
                };
                Ok(Snapshot { tid, changed })
            }
            Ok(other) => {
                self.began = false;
                Err(unexpected(&other))
            }
            Err(e) => {
                self.began = false;
                Err(e)
            }
        }
    }

    fn load(&mut self, oid: Oid) -> Result<Option<Loaded>, StorageError> {
        if let Some(found) = self.cached(oid) {
            return Ok(Some(found));
        }
        let found = self.objects(Request::Load(protocol::Load { oids: vec![oid.0] }))?;
        self.keep(&found);
        Ok(found.into_iter().next().map(|(_, l)| l))
    }

    fn load_many(&mut self, oids: &[Oid]) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        let mut out = Vec::with_capacity(oids.len());
        let mut missing = Vec::with_capacity(oids.len());
        for oid in oids {
            match self.cached(*oid) {
                Some(found) => out.push((*oid, found)),
                None => missing.push(oid.0),
            }
        }
        if !missing.is_empty() {
            let found = self.objects(Request::Load(protocol::Load { oids: missing }))?;
            self.keep(&found);
            out.extend(found);
        }
        Ok(out)
    }

    fn scan(&mut self, after: Option<Oid>, limit: usize) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        self.objects(Request::Scan(protocol::Scan { after: after.map(|o| o.0), limit }))
    }

    fn load_reachable(&mut self, roots: &[Oid], depth: u32, limit: usize) -> Result<Vec<(Oid, Loaded)>, StorageError> {
        let roots = roots.iter().map(|o| o.0).collect();
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let found = self.objects(Request::LoadReachable(protocol::LoadReachable { roots, depth, limit }))?;
        self.keep(&found);
        Ok(found)
    }

    fn end(&mut self) -> Result<(), StorageError> {
        if !self.began {
            return Ok(());
        }
        let reply = self.read(Request::End(protocol::End {}));
        self.began = false;
        self.cached_snapshot = None;
        match reply? {
            Reply::Done(_) => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    fn commit(
        &mut self,
        writes: &[Write],
        reads: &[(Oid, Tid)],
        meta: &TransactionMeta,
        resolve: &mut Resolve<'_>,
    ) -> Result<Option<Tid>, StorageError> {
        if !self.began {
            return Err(self.lost_snapshot());
        }
        self.began = false;
        self.cached_snapshot = None;
        // A commit over the server's limit is refused here, before it is
        // sent, rather than breaking the stream.
        let size: usize = writes.iter().map(|w| w.record.len() + 24).sum::<usize>() + reads.len() * 24;
        let limit = self.inner.hello.max_request_bytes;
        if limit > 0 && size as u64 > limit {
            return Err(StorageError::Refused {
                backend: BACKEND,
                reason: format!("this commit is about {size} bytes; the server accepts requests of at most {limit}"),
            });
        }
        let mut request = Request::Commit(protocol::Commit {
            writes: writes
                .iter()
                .map(|w| protocol::Write { oid: w.oid.0, base: w.base.map(|t| t.0), record: w.record.clone() })
                .collect(),
            reads: reads.iter().map(|(oid, tid)| protocol::Changed { oid: oid.0, tid: tid.0 }).collect(),
            meta: Some(meta.into()),
            merges: true,
        });
        loop {
            let reply = match self.exchange(request) {
                Ok(reply) => reply,
                Err(Broken::NotSent(e)) => return Err(e),
                // The server refused the request itself: nothing was written.
                Err(Broken::Lost(e @ StorageError::Refused { .. })) => return Err(e),
                Err(Broken::Lost(e)) => {
                    return Err(StorageError::CommitUnknown { backend: BACKEND, tid: Tid(0), source: Box::new(e) });
                }
            };
            match reply {
                Reply::Committed(c) => return Ok(c.tid.map(Tid)),
                Reply::Failure(f) => return Err(protocol::storage_error(f, &self.inner.target)),
                Reply::Merge(m) => {
                    let stored = Loaded { tid: Tid(m.tid), record: m.record };
                    let record = resolve(Oid(m.oid), &stored);
                    request = Request::Merged(protocol::Merged { oid: m.oid, record });
                }
                other => return Err(unexpected(&other)),
            }
        }
    }
}
