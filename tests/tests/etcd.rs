//! The etcd storage against a three-member cluster started from Debian's
//! `etcd-server` package on loopback ports: the storage suite, and what only
//! a cluster can show. Each test works under a key prefix of its own.
//!
//! Needs the `etcd` feature (`cargo test -p pbpersist-tests --features etcd
//! --test etcd`, which needs `protoc` to build). Without the `etcd` binary
//! the tests are reported as ignored, with the reason, unless
//! `PBPERSIST_REQUIRE_ETCD=1` makes that a failure (CI sets it).
#![allow(clippy::unit_arg)]

use libtest_mimic::{Arguments, Trial};
use pbpersist::conformance::{self as suite, Backend};
use pbpersist::storage::EtcdStorage;
use pbpersist_tests::etcd::{Cluster, etcd_available};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The one cluster every test shares, started on first use.
fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| Cluster::start(3))
}

/// A key prefix no other test uses.
fn fresh_prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("pbt-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A backend whose databases all open the same fresh prefix.
fn backend() -> Backend {
    let url = cluster().url(&fresh_prefix());
    Backend::new(move |options| {
        pbpersist::Database::with_storage_and_options(EtcdStorage::open(&url).unwrap(), options).unwrap()
    })
}

macro_rules! suite_trials {
    ($trials:ident; $($module:ident :: $test:ident),* $(,)?) => {
        $(
            $trials.push(Trial::test(concat!("suite::", stringify!($module), "::", stringify!($test)), || {
                suite::$module::$test(&backend());
                Ok(())
            }));
        )*
    };
}

fn main() {
    let args = Arguments::from_args();
    let mut trials: Vec<Trial> = Vec::new();
    pbpersist::conformance_tests!(suite_trials!(trials));
    if let Err(reason) = etcd_available() {
        if std::env::var("PBPERSIST_REQUIRE_ETCD").is_ok_and(|v| v == "1") {
            eprintln!("PBPERSIST_REQUIRE_ETCD=1 but {reason}");
            std::process::exit(101);
        }
        eprintln!("skipping {} etcd tests: {reason}", trials.len());
        trials = trials.into_iter().map(|t| t.with_ignored_flag(true)).collect();
    }
    libtest_mimic::run(&args, trials).exit();
}
