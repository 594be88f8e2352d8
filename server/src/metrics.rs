//! Counters of what the server did, read by [`Metrics::counts`] or scraped
//! as Prometheus text from the metrics address, and the health the gRPC
//! health service and `/health` report.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

/// What a server has done since it started; shared by every call.
#[derive(Debug, Default)]
pub struct Metrics {
    sessions_opened: AtomicU64,
    sessions_open: AtomicI64,
    load_requests: AtomicU64,
    objects_loaded: AtomicU64,
    commits: AtomicU64,
    commit_micros: AtomicU64,
    conflicts: AtomicU64,
    commit_failures: AtomicU64,
    merges: AtomicU64,
    refused: AtomicU64,
    /// Whether the storage answered the last health probe.
    healthy: AtomicBool,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counts {
    /// Session streams opened.
    pub sessions_opened: u64,
    /// Session streams open now.
    pub sessions_open: u64,
    /// `Load`, `Scan` and `LoadReachable` requests answered.
    pub load_requests: u64,
    /// Objects those requests returned.
    pub objects_loaded: u64,
    /// Commits that wrote a transaction (or ended one with nothing to write).
    pub commits: u64,
    /// Total time those commits took in the storage, in microseconds.
    pub commit_micros: u64,
    /// Commits refused with a conflict.
    pub conflicts: u64,
    /// Commits that failed otherwise (storage errors, refusals).
    pub commit_failures: u64,
    /// Merges the server asked clients for while holding a commit's locks.
    pub merges: u64,
    /// Calls refused by the gate, the limits, rights or validation.
    pub refused: u64,
    /// Whether the storage answered the last health probe.
    pub healthy: bool,
}

impl Metrics {
    /// The counters now.
    pub fn counts(&self) -> Counts {
        Counts {
            sessions_opened: self.sessions_opened.load(Relaxed),
            sessions_open: self.sessions_open.load(Relaxed).max(0) as u64,
            load_requests: self.load_requests.load(Relaxed),
            objects_loaded: self.objects_loaded.load(Relaxed),
            commits: self.commits.load(Relaxed),
            commit_micros: self.commit_micros.load(Relaxed),
            conflicts: self.conflicts.load(Relaxed),
            commit_failures: self.commit_failures.load(Relaxed),
            merges: self.merges.load(Relaxed),
            refused: self.refused.load(Relaxed),
            healthy: self.healthy.load(Relaxed),
        }
    }

    /// The counters in Prometheus's text format.
    pub fn prometheus(&self) -> String {
        let c = self.counts();
        let rows: [(&str, &str, &str, f64); 11] = [
            ("up", "gauge", "1 if the storage answered the last health probe", f64::from(u8::from(c.healthy))),
            ("sessions_opened_total", "counter", "session streams opened", c.sessions_opened as f64),
            ("sessions_open", "gauge", "session streams open now", c.sessions_open as f64),
            ("load_requests_total", "counter", "load, scan and load-reachable requests", c.load_requests as f64),
            ("objects_loaded_total", "counter", "objects those requests returned", c.objects_loaded as f64),
            ("commits_total", "counter", "commits that succeeded", c.commits as f64),
            ("commit_seconds_total", "counter", "time successful commits took", c.commit_micros as f64 / 1e6),
            ("conflicts_total", "counter", "commits refused with a conflict", c.conflicts as f64),
            ("commit_failures_total", "counter", "commits that failed otherwise", c.commit_failures as f64),
            ("merges_total", "counter", "merges asked of clients", c.merges as f64),
            ("refused_total", "counter", "calls refused (access, limits, validation)", c.refused as f64),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in rows {
            out.push_str(&format!(
                "# HELP pbpersist_server_{name} {help}\n# TYPE pbpersist_server_{name} {kind}\n\
                 pbpersist_server_{name} {value}\n"
            ));
        }
        out
    }

    pub(crate) fn session_opened(&self) {
        self.sessions_opened.fetch_add(1, Relaxed);
        self.sessions_open.fetch_add(1, Relaxed);
    }

    pub(crate) fn session_closed(&self) {
        self.sessions_open.fetch_sub(1, Relaxed);
    }

    pub(crate) fn loaded(&self, objects: usize) {
        self.load_requests.fetch_add(1, Relaxed);
        self.objects_loaded.fetch_add(objects as u64, Relaxed);
    }

    /// Counts a commit's outcome and, for a successful one, its time.
    pub(crate) fn committed<T>(&self, result: &Result<T, pbpersist::StorageError>, took: std::time::Duration) {
        match result {
            Ok(_) => {
                self.commits.fetch_add(1, Relaxed);
                self.commit_micros.fetch_add(took.as_micros() as u64, Relaxed);
            }
            Err(pbpersist::StorageError::Conflict(_)) => drop(self.conflicts.fetch_add(1, Relaxed)),
            Err(_) => drop(self.commit_failures.fetch_add(1, Relaxed)),
        }
    }

    pub(crate) fn merge_asked(&self) {
        self.merges.fetch_add(1, Relaxed);
    }

    pub(crate) fn refused(&self) {
        self.refused.fetch_add(1, Relaxed);
    }

    pub(crate) fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Relaxed);
    }
}

/// Serves `/metrics` (Prometheus text) and `/health` (200 while the
/// storage answers, 503 when it does not) over plain HTTP until `shutdown`.
pub(crate) async fn serve_http(
    metrics: std::sync::Arc<Metrics>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::http::{StatusCode, header};
    let scrape = metrics.clone();
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let text = scrape.prometheus();
                async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text) }
            }),
        )
        .route(
            "/health",
            axum::routing::get(move || {
                let healthy = metrics.counts().healthy;
                async move {
                    if healthy {
                        (StatusCode::OK, "serving\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "the storage does not answer\n")
                    }
                }
            }),
        );
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// Takes a snapshot of the storage every `every` until `stopping`, and
/// reports whether it could to the gRPC health service and the metrics.
/// A server that is stopping reports itself not serving.
pub(crate) async fn probe(
    storage: std::sync::Arc<dyn pbpersist::storage::Storage>,
    metrics: std::sync::Arc<Metrics>,
    reporter: tonic_health::server::HealthReporter,
    every: std::time::Duration,
    stopping: impl Future<Output = ()>,
) {
    use crate::grpc::storage_server::SERVICE_NAME as NAME;
    use tonic_health::ServingStatus;
    let report = async |status: ServingStatus| {
        metrics.set_healthy(status == ServingStatus::Serving);
        reporter.set_service_status("", status).await;
        reporter.set_service_status(NAME, status).await;
    };
    // A new session each time: a storage that can no longer open one (its
    // database server gone) is unhealthy even while older sessions last.
    let check = async || {
        let storage = storage.clone();
        let answered = tokio::task::spawn_blocking(move || {
            let mut session = storage.open_session()?;
            session.begin(None)?;
            session.end()
        })
        .await;
        match answered {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(pbpersist::report(&e).to_string()),
            Err(e) => Err(e.to_string()),
        }
    };
    let mut stopping = std::pin::pin!(stopping);
    let mut was_healthy = true;
    loop {
        let answered = check().await;
        // Logged when the health changes, not at every probe.
        match &answered {
            Err(error) if was_healthy => tracing::warn!(%error, "the storage does not answer: not serving"),
            Ok(()) if !was_healthy => tracing::info!("the storage answers again: serving"),
            _ => {}
        }
        was_healthy = answered.is_ok();
        report(if was_healthy { ServingStatus::Serving } else { ServingStatus::NotServing }).await;
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = &mut stopping => break,
        }
    }
    report(ServingStatus::NotServing).await;
}
