//! The gRPC service: the handshake and the unary calls, each run on a
//! blocking thread since storages are synchronous; sessions in `session.rs`.

use std::sync::Arc;

use crate::grpc::storage_server::Storage as Grpc;
use pbpersist::storage::protocol as p;
use pbpersist::storage::{Storage, TransactionRange};
use pbpersist::{Oid, StorageError, Tid};
use tonic::{Request, Response, Status};

use crate::Limits;
use crate::access::{Access, caller};
use crate::state::{Counted, Shared, Slot};

pub(crate) struct Service {
    shared: Arc<Shared>,
}

impl Service {
    pub(crate) fn new(
        storage: Arc<dyn Storage>,
        read_only: bool,
        limits: Limits,
        validator: Option<crate::validate::Validator>,
        metrics: Arc<crate::Metrics>,
        stopping: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Service {
            shared: Arc::new(Shared {
                storage,
                read_only,
                limits,
                validator,
                watcher: crate::watch::Watcher::new(stopping.clone()),
                stopping,
                sessions: Default::default(),
                watches: Default::default(),
                merging: Default::default(),
                schemas: Default::default(),
                metrics,
            }),
        }
    }

    /// Runs `f` with the storage on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Storage) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<Response<T>, Status> {
        let shared = self.shared.clone();
        let result = tokio::task::spawn_blocking(move || f(shared.storage.as_ref()))
            .await
            .map_err(|e| p::refusal(p::failure::Kind::Backend, format!("the call failed: {e}")))?;
        match result {
            Ok(v) => Ok(Response::new(v)),
            Err(e) => {
                tracing::info!(error = %pbpersist::report(&e), "a call failed");
                Err(p::status(&e))
            }
        }
    }

    /// Refuses a call that writes, from a read-only server or a client that
    /// may not write.
    fn writable<T>(&self, request: &Request<T>, access: Access, what: &str) -> Result<(), Status> {
        let allowed = caller(request).and_then(|c| c.require(access, what)).and_then(|()| {
            if self.shared.read_only {
                return Err(p::status(&StorageError::ReadOnly { backend: self.shared.storage.name() }));
            }
            Ok(())
        });
        if allowed.is_err() {
            self.shared.metrics.refused();
        }
        allowed
    }
}

type Replies = tokio_stream::wrappers::ReceiverStream<Result<p::SessionReply, Status>>;

#[tonic::async_trait]
impl Grpc for Service {
    async fn hello(&self, request: Request<p::HelloRequest>) -> Result<Response<p::HelloReply>, Status> {
        let caller = caller(&request)?;
        let asked = request.into_inner().versions;
        let Some(version) = p::VERSIONS.iter().rev().find(|v| asked.contains(v)) else {
            return Err(p::refusal(
                p::failure::Kind::UnsupportedVersion,
                format!("this server speaks protocol versions {:?}; the client asked for {asked:?}", p::VERSIONS),
            ));
        };
        let storage = self.shared.storage.clone();
        let database_id = tokio::task::spawn_blocking(move || storage.admin().map_or(Ok(None), |a| a.database_id()))
            .await
            .map_err(|e| p::refusal(p::failure::Kind::Backend, format!("the call failed: {e}")))?
            .map_err(|e| p::status(&e))?
            .unwrap_or(0);
        let storage = &self.shared.storage;
        Ok(Response::new(p::HelloReply {
            version: *version,
            backend: storage.name().to_owned(),
            history_preserving: storage.history_mode() == pbpersist::storage::History::Preserving,
            read_only: self.shared.read_only || storage.read_only() || caller.access() < Access::ReadWrite,
            max_request_bytes: self.shared.limits.max_request_bytes as u64,
            database_id,
        }))
    }

    type SessionStream = Replies;

    async fn session(
        &self,
        request: Request<tonic::Streaming<p::SessionRequest>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let caller = caller(&request)?;
        let who = caller.who(request.remote_addr());
        let slot = Slot::take(self.shared.clone(), who, Counted::Sessions)?;
        let replies = crate::session::start(self.shared.clone(), caller, slot, request.into_inner())?;
        Ok(Response::new(replies))
    }

    type WatchStream = tokio_stream::wrappers::ReceiverStream<Result<p::Invalidation, Status>>;

    async fn watch(&self, request: Request<p::WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let who = caller(&request)?.who(request.remote_addr());
        let slot = Slot::take(self.shared.clone(), who, Counted::Watches)?;
        let since = request.into_inner().since;
        Ok(Response::new(self.shared.watcher.watch(self.shared.storage.clone(), since, slot)))
    }

    async fn new_oids(&self, request: Request<p::NewOidsRequest>) -> Result<Response<p::OidRange>, Status> {
        self.writable(&request, Access::ReadWrite, "allocate oids")?;
        let count = request.into_inner().count;
        self.blocking(move |s| s.new_oids(count).map(|r| p::OidRange { start: r.start, end: r.end })).await
    }

    async fn transactions(
        &self,
        request: Request<p::TransactionsRequest>,
    ) -> Result<Response<p::TransactionList>, Status> {
        let r = request.into_inner();
        let range = TransactionRange {
            after: Tid(r.after),
            until: r.until.map(Tid),
            limit: r.limit as usize,
            newest_first: r.newest_first,
            records: r.records,
        };
        self.blocking(move |s| {
            let list = s.transactions(range)?;
            Ok(p::TransactionList { transactions: list.iter().map(p::Transaction::from).collect() })
        })
        .await
    }

    async fn history(&self, request: Request<p::HistoryRequest>) -> Result<Response<p::RevisionList>, Status> {
        let r = request.into_inner();
        self.blocking(move |s| {
            let list = s.revisions(Oid(r.oid), r.limit as usize)?;
            Ok(p::RevisionList { revisions: list.iter().map(p::Revision::from).collect() })
        })
        .await
    }

    async fn schemas(&self, _: Request<p::SchemasRequest>) -> Result<Response<p::SchemaFiles>, Status> {
        self.blocking(|s| {
            let files = s.schemas()?.into_iter().map(|(name, source)| p::SchemaFile { name, source, expected: None });
            Ok(p::SchemaFiles { files: files.collect(), force: false })
        })
        .await
    }

    async fn put_schemas(&self, request: Request<p::SchemaFiles>) -> Result<Response<p::SchemasStored>, Status> {
        let caller = caller(&request)?;
        if request.get_ref().force
            && let Err(refused) = caller.require(Access::Admin, "force a schema change")
        {
            self.shared.metrics.refused();
            return Err(refused);
        }
        self.writable(&request, Access::ReadWrite, "store schemas")?;
        let p::SchemaFiles { files, force } = request.into_inner();
        let expected = match files.iter().position(|f| f.expected.is_some()) {
            Some(_) if files.len() > 1 => {
                self.shared.metrics.refused();
                let reason = "a PutSchemas request with an expected file holds that one file only";
                return Err(p::status(&StorageError::Refused { backend: "pbpersist", reason: reason.into() }));
            }
            Some(i) => files[i].expected.clone().map(|e| e.source),
            None => None,
        };
        let files: Vec<_> = files.into_iter().map(|f| (f.name, f.source)).collect();
        let shared = self.shared.clone();
        let metrics = self.shared.metrics.clone();
        self.blocking(move |s| {
            let _one_at_a_time = shared.schemas.lock().unwrap_or_else(|e| e.into_inner());
            if let (Some(old), [(name, _)]) = (&expected, files.as_slice()) {
                // A file that changed is not stored: no need to check it.
                let now = s.schemas()?.into_iter().find(|(n, _)| n == name).map(|(_, text)| text);
                if now != *old {
                    return Ok(p::SchemasStored { stored: false });
                }
            }
            if let Err(e) = crate::validate::check_schemas(s, &caller, &files, force) {
                metrics.refused();
                tracing::warn!(client = caller.name(), error = %pbpersist::report(&e), "refused schemas");
                return Err(e);
            }
            let stored = match (&expected, files.as_slice()) {
                (Some(old), [(name, source)]) => s.swap_schema(name, old.as_deref(), source)?,
                _ => {
                    s.put_schemas(&files)?;
                    true
                }
            };
            if !stored {
                return Ok(p::SchemasStored { stored });
            }
            if force {
                tracing::warn!(client = caller.name(), files = ?files.iter().map(|f| &f.0).collect::<Vec<_>>(), "forced a schema change");
            }
            if let Some(v) = &shared.validator {
                v.schemas_changed();
            }
            Ok(p::SchemasStored { stored })
        })
        .await
    }

    async fn delete_schemas(&self, request: Request<p::DeleteSchemasRequest>) -> Result<Response<p::Done>, Status> {
        self.writable(&request, Access::Admin, "delete schemas")?;
        let caller = caller(&request)?;
        let names = request.into_inner().names;
        let shared = self.shared.clone();
        let metrics = self.shared.metrics.clone();
        self.blocking(move |s| {
            let _one_at_a_time = shared.schemas.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = crate::validate::check_deletion(s, &names) {
                metrics.refused();
                tracing::warn!(client = caller.name(), error = %pbpersist::report(&e), "refused deleting schemas");
                return Err(e);
            }
            s.delete_schemas(&names)?;
            tracing::info!(client = caller.name(), files = ?names, "deleted schemas");
            if let Some(v) = &shared.validator {
                v.schemas_changed();
            }
            Ok(p::Done {})
        })
        .await
    }

    async fn packed_tid(&self, _: Request<p::PackedTidRequest>) -> Result<Response<p::PackReply>, Status> {
        self.blocking(|s| {
            let packed_tid = s.history().map_or(Ok(Tid(0)), |h| h.packed_tid())?;
            Ok(p::PackReply { removed: 0, packed_tid: packed_tid.0 })
        })
        .await
    }

    async fn collect_garbage(
        &self,
        request: Request<p::CollectGarbageRequest>,
    ) -> Result<Response<p::OidList>, Status> {
        if request.get_ref().dry_run {
            caller(&request)?.require(Access::Admin, "collect garbage")?;
        } else {
            self.writable(&request, Access::Admin, "collect garbage")?;
        }
        let dry_run = request.into_inner().dry_run;
        self.blocking(move |s| {
            let admin = s.admin().ok_or(StorageError::NoAdmin { backend: s.name() })?;
            Ok(p::OidList { oids: admin.collect_garbage(dry_run)?.into_iter().map(|o| o.0).collect() })
        })
        .await
    }

    async fn pack(&self, request: Request<p::PackRequest>) -> Result<Response<p::PackReply>, Status> {
        self.writable(&request, Access::Admin, "pack")?;
        let r = request.into_inner();
        self.blocking(move |s| {
            let admin = s.admin().ok_or(StorageError::NoAdmin { backend: s.name() })?;
            let removed = admin.pack(Tid(r.before), (r.batch as usize).max(1))?;
            let packed_tid = s.history().map_or(Ok(Tid(0)), |h| h.packed_tid())?;
            Ok(p::PackReply { removed, packed_tid: packed_tid.0 })
        })
        .await
    }
}
