//! Invalidations pushed by etcd: one watch on the whole prefix per storage,
//! kept in memory as the list of objects each revision changed, so that a
//! new snapshot learns what changed since the last one without asking the
//! server. Every commit puts `meta/head`, so the watch has seen a commit once
//! its revision arrived.

use crate::{Oid, Tid};
use etcd_client::{Client, WatchOptions};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Changed objects kept in memory; older ones are answered by a scan.
const KEEP: usize = 1_000_000;

/// How long a snapshot waits for the watch to reach the newest commit
/// before it asks the server instead.
const CATCH_UP: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
struct State {
    /// The changes seen cover every revision after this one.
    from: i64,
    /// The newest revision the watch has delivered.
    seen: i64,
    /// (revision, object) for each object put or deleted, in revision order.
    changes: VecDeque<(i64, Oid)>,
    /// No watch is running (it failed or was cancelled); until one runs
    /// again, snapshots ask the server.
    broken: bool,
}

/// The watch's findings, shared with the task that receives them.
#[derive(Debug, Default)]
pub(super) struct Watch {
    state: Mutex<State>,
    arrived: Condvar,
    /// Snapshots whose changes the watch told, and those it could not.
    pub(super) told: std::sync::atomic::AtomicU64,
    pub(super) missed: std::sync::atomic::AtomicU64,
}

impl Watch {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update below is complete before anything that can panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts watching every key under `prefix` after revision `head`, on
    /// `runtime`; a watch that ends is started again from where it stopped.
    pub(super) fn start(runtime: &tokio::runtime::Runtime, client: Client, prefix: String, head: i64) -> Arc<Watch> {
        let watch = Arc::new(Watch::default());
        {
            let mut s = watch.lock();
            s.from = head;
            s.seen = head;
        }
        runtime.spawn(run(watch.clone(), client, prefix));
        watch
    }

    /// The objects changed after `since` up to and including `head`, once
    /// the watch has delivered `head`; `None` when the watch cannot tell
    /// (it lags, is broken, or `since` is older than what it kept).
    pub(super) fn changed(&self, since: Tid, head: i64) -> Option<Vec<(Oid, Tid)>> {
        let since = since.0 as i64;
        let s = self.lock();
        let (s, _) = self
            .arrived
            .wait_timeout_while(s, CATCH_UP, |s| s.seen < head && !s.broken)
            .unwrap_or_else(|e| e.into_inner());
        if s.broken || s.seen < head || since < s.from {
            self.missed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return None;
        }
        self.told.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let start = s.changes.partition_point(|(r, _)| *r <= since);
        Some(s.changes.range(start..).take_while(|(r, _)| *r <= head).map(|(r, oid)| (*oid, Tid(*r as u64))).collect())
    }
}

/// Receives the watch's responses until the storage is dropped (the
/// runtime stops), restarting the watch when it ends.
async fn run(watch: Arc<Watch>, mut client: Client, prefix: String) {
    let objects = format!("{prefix}/o/");
    loop {
        let start = watch.lock().seen + 1;
        let options = WatchOptions::new().with_prefix().with_start_revision(start).with_progress_notify();
        let mut stream = match client.watch(format!("{prefix}/"), Some(options)).await {
            Ok(s) => s,
            Err(_) => {
                watch.lock().broken = true;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        watch.lock().broken = false;
        loop {
            let response = match stream.message().await {
                Ok(Some(r)) => r,
                _ => break,
            };
            let mut s = watch.lock();
            if response.canceled() {
                // Compaction removed revisions the watch had not delivered:
                // what changed in between is lost, so older snapshots ask
                // the server (a full revalidation) from now on.
                let restart = response.compact_revision().max(s.seen + 1) - 1;
                s.changes.clear();
                s.from = restart;
                s.seen = restart;
                drop(s);
                break;
            }
            for event in response.events() {
                let Some(kv) = event.kv() else { continue };
                let Some(hex) = kv.key().strip_prefix(objects.as_bytes()) else { continue };
                let oid = std::str::from_utf8(hex).ok().and_then(|h| u64::from_str_radix(h, 16).ok());
                if let Some(oid) = oid {
                    s.changes.push_back((kv.mod_revision(), Oid(oid)));
                }
                s.seen = s.seen.max(kv.mod_revision());
            }
            if let Some(h) = response.header()
                && response.events().is_empty()
            {
                // A progress notification: nothing changed up to here.
                s.seen = s.seen.max(h.revision());
            }
            while s.changes.len() > KEEP {
                if let Some((r, _)) = s.changes.pop_front() {
                    s.from = s.from.max(r);
                }
            }
            drop(s);
            watch.arrived.notify_all();
        }
        watch.lock().broken = true;
        watch.arrived.notify_all();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
