//! Pushed invalidations: one task per server reads the storage's log after
//! the last tid it saw, woken by every commit made through the server and
//! every 100 ms for commits made elsewhere (another server, a local
//! program), and broadcasts each transaction to the `Watch` streams.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use pbpersist::Tid;
use pbpersist::storage::protocol as p;
use pbpersist::storage::{Storage, TransactionRange};
use tokio::sync::{Notify, broadcast};
use tonic::Status;

/// How many invalidations a slow stream may fall behind before it catches
/// up from the log instead.
const BACKLOG: usize = 1024;

pub(crate) struct Watcher {
    send: broadcast::Sender<Arc<p::Invalidation>>,
    wake: Arc<Notify>,
    started: AtomicBool,
    /// Set when the server stops: the reader and every stream end, so that
    /// a graceful shutdown does not wait for watching clients to leave.
    stopping: tokio::sync::watch::Receiver<bool>,
}

/// Runs `work` until it ends or the server is stopping.
async fn until_stopping(mut stopping: tokio::sync::watch::Receiver<bool>, work: impl Future<Output = ()>) {
    tokio::select! {
        () = work => {}
        _ = stopping.wait_for(|s| *s) => {}
    }
}

impl Watcher {
    pub(crate) fn new(stopping: tokio::sync::watch::Receiver<bool>) -> Self {
        Watcher {
            send: broadcast::channel(BACKLOG).0,
            wake: Arc::new(Notify::new()),
            started: AtomicBool::new(false),
            stopping,
        }
    }

    /// Tells the reader a commit went through the server.
    pub(crate) fn committed(&self) {
        self.wake.notify_one();
    }

    /// Starts the reader on the first watch.
    fn start(&self, storage: Arc<dyn Storage>) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let (send, wake) = (self.send.clone(), self.wake.clone());
        tokio::spawn(until_stopping(self.stopping.clone(), async move {
            let mut last = match newest(storage.clone()).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %pbpersist::report(&e), "the invalidation reader cannot start");
                    return;
                }
            };
            loop {
                let _ = tokio::time::timeout(std::time::Duration::from_millis(100), wake.notified()).await;
                match after(storage.clone(), last).await {
                    Ok(list) => {
                        for i in list {
                            last = Tid(i.tid);
                            let _ = send.send(Arc::new(i));
                        }
                    }
                    Err(e) => tracing::warn!(error = %pbpersist::report(&e), "reading the log for invalidations"),
                }
            }
        }));
    }

    /// A stream of invalidations from `since` on; `slot` (the client's
    /// place among its watches) is held until the stream ends.
    pub(crate) fn watch(
        &self,
        storage: Arc<dyn Storage>,
        since: Option<u64>,
        slot: impl Send + 'static,
    ) -> tokio_stream::wrappers::ReceiverStream<Result<p::Invalidation, Status>> {
        self.start(storage.clone());
        // Subscribed before catching up, so nothing falls between the two.
        let mut live = self.send.subscribe();
        let (out, stream) = tokio::sync::mpsc::channel(64);
        // The client's place among its watches is given back as soon as it
        // drops the stream, not at the next commit that finds it gone.
        let gone = out.clone();
        let stopping = self.stopping.clone();
        let follow = async move {
            let mut last = match since {
                Some(t) => Tid(t),
                None => match newest(storage.clone()).await {
                    Ok(t) => t,
                    Err(e) => return drop(out.send(Err(p::status(&e))).await),
                },
            };
            loop {
                // Catch up from the log, then follow the broadcast until it
                // gets ahead of this stream.
                loop {
                    let list = match after(storage.clone(), last).await {
                        Ok(list) => list,
                        Err(e) => return drop(out.send(Err(p::status(&e))).await),
                    };
                    if list.is_empty() {
                        break;
                    }
                    for i in list {
                        last = Tid(i.tid);
                        if out.send(Ok(i)).await.is_err() {
                            return;
                        }
                    }
                }
                loop {
                    match live.recv().await {
                        Ok(i) if i.tid <= last.0 => {}
                        Ok(i) => {
                            last = Tid(i.tid);
                            if out.send(Ok((*i).clone())).await.is_err() {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            }
        };
        tokio::spawn(until_stopping(stopping, async move {
            let _slot = slot;
            tokio::select! {
                () = follow => {}
                () = gone.closed() => {}
            }
        }));
        tokio_stream::wrappers::ReceiverStream::new(stream)
    }
}

/// The newest committed tid.
async fn newest(storage: Arc<dyn Storage>) -> Result<Tid, pbpersist::StorageError> {
    let range = TransactionRange { after: Tid(0), until: None, limit: 1, newest_first: true, records: false };
    let list = blocking(move || storage.transactions(range)).await?;
    Ok(list.first().map_or(Tid(0), |t| t.tid))
}

/// The transactions after `last`, oldest first, a page at a time.
async fn after(storage: Arc<dyn Storage>, last: Tid) -> Result<Vec<p::Invalidation>, pbpersist::StorageError> {
    let range = TransactionRange { after: last, until: None, limit: 1000, newest_first: false, records: false };
    let list = blocking(move || storage.transactions(range)).await?;
    Ok(list
        .into_iter()
        .map(|t| p::Invalidation {
            tid: t.tid.0,
            oids_known: t.oids.is_some(),
            oids: t.oids.unwrap_or_default().into_iter().map(|o| o.0).collect(),
        })
        .collect())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, pbpersist::StorageError> + Send + 'static,
) -> Result<T, pbpersist::StorageError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(pbpersist::StorageError::Backend {
            backend: "server",
            source: format!("a blocking task failed: {e}").into(),
        })
    })
}
