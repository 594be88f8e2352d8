//! What every call and session of one server shares: the storage, the
//! limits, the per-client counts of open sessions, watches and waiting
//! merges. The service and the sessions both use it, so it lives below
//! both.

use std::sync::Arc;

use pbpersist::storage::Storage;
use pbpersist::storage::protocol::{self as p, failure::Kind};
use tonic::Status;

use crate::Limits;

/// What every call shares.
pub(crate) struct Shared {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) read_only: bool,
    pub(crate) limits: Limits,
    pub(crate) validator: Option<crate::validate::Validator>,
    pub(crate) watcher: crate::watch::Watcher,
    /// Open sessions per client, for `Limits::max_sessions_per_client`.
    pub(crate) sessions: std::sync::Mutex<std::collections::HashMap<String, usize>>,
    /// Open watches per client, for `Limits::max_watches_per_client`.
    pub(crate) watches: std::sync::Mutex<std::collections::HashMap<String, usize>>,
    /// The clients with a commit waiting for merges (at most one each).
    pub(crate) merging: std::sync::Mutex<MergeWaits>,
    /// Held while `.proto` files are checked and stored, so that two
    /// clients' files are each checked against what the other stored.
    pub(crate) schemas: std::sync::Mutex<()>,
    pub(crate) metrics: Arc<crate::Metrics>,
    /// Set when the server stops; sessions then end after their current
    /// request, so that a graceful shutdown does not wait for idle clients.
    pub(crate) stopping: tokio::sync::watch::Receiver<bool>,
}

/// What a client holds a counted number of.
#[derive(Clone, Copy)]
pub(crate) enum Counted {
    Sessions,
    Watches,
}

impl Counted {
    fn name(self) -> &'static str {
        match self {
            Counted::Sessions => "sessions",
            Counted::Watches => "watches",
        }
    }

    fn limit(self, limits: &Limits) -> usize {
        match self {
            Counted::Sessions => limits.max_sessions_per_client,
            Counted::Watches => limits.max_watches_per_client,
        }
    }

    fn open(self, shared: &Shared) -> &std::sync::Mutex<std::collections::HashMap<String, usize>> {
        match self {
            Counted::Sessions => &shared.sessions,
            Counted::Watches => &shared.watches,
        }
    }
}

/// One client's place among its open sessions or watches, given back when
/// dropped.
pub(crate) struct Slot {
    shared: Arc<Shared>,
    pub(crate) who: String,
    what: Counted,
}

impl Slot {
    /// Takes a place for `who`, or refuses when it has the most it may.
    pub(crate) fn take(shared: Arc<Shared>, who: String, what: Counted) -> Result<Slot, Status> {
        let limit = what.limit(&shared.limits);
        let mut open = what.open(&shared).lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(who.clone()).or_default();
        if *count >= limit {
            drop(open);
            shared.metrics.refused();
            tracing::warn!(client = %who, limit, "refused: too many {}", what.name());
            return Err(p::refusal(Kind::Limit, format!("{who} has {limit} {} open, the most it may", what.name())));
        }
        *count += 1;
        drop(open);
        if let Counted::Sessions = what {
            shared.metrics.session_opened();
        }
        Ok(Slot { shared, who, what })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Counted::Sessions = self.what {
            self.shared.metrics.session_closed();
        }
        let mut open = self.what.open(&self.shared).lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.who) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.who);
            }
        }
    }
}

/// Which clients have a commit waiting for merges, and which are offered
/// none until a time.
#[derive(Default)]
pub(crate) struct MergeWaits {
    pub(crate) waiting: std::collections::HashSet<String>,
    pub(crate) penalized: std::collections::HashMap<String, std::time::Instant>,
}
