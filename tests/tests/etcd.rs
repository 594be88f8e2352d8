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
use pbpersist::{Database, StorageError};
use pbpersist_tests::bank::Counter;
use pbpersist_tests::etcd::{Cluster, etcd_available};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The one cluster every test shares, started on first use and stopped by
/// `main` when the tests are done.
static CLUSTER: OnceLock<Cluster> = OnceLock::new();

fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| Cluster::start(3))
}

/// A key prefix no other test uses.
fn fresh_prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("pbt-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The worker program: the one built with these tests, or the one
/// `PBPERSIST_WORKER` names (CI builds these tests with the etcd feature
/// beside a workspace build that rebuilds the shared one without it).
fn worker() -> String {
    std::env::var("PBPERSIST_WORKER").unwrap_or_else(|_| env!("CARGO_BIN_EXE_pbpersist-worker").to_string())
}

/// A backend whose databases all open the same fresh prefix.
fn backend() -> Backend {
    let url = cluster().url(&fresh_prefix());
    Backend::new(move |options| {
        pbpersist::Database::with_storage_and_options(EtcdStorage::open(&url).unwrap(), options).unwrap()
    })
}

/// A backend whose databases connect to one member each, in turn.
fn backend_per_member() -> Backend {
    let prefix = fresh_prefix();
    let next = AtomicU32::new(0);
    Backend::new(move |options| {
        let member = next.fetch_add(1, Ordering::Relaxed) as usize % 3;
        let storage = EtcdStorage::open(&cluster().member_url(member, &prefix)).unwrap();
        pbpersist::Database::with_storage_and_options(storage, options).unwrap()
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

/// Another database's commit reaches a session through the watch: the
/// next snapshot lists the changed object without asking the server.
fn invalidations_are_pushed_by_the_watch() {
    let url = cluster().url(&fresh_prefix());
    let (a, b) = (EtcdStorage::open(&url).unwrap(), EtcdStorage::open(&url).unwrap());
    let (dba, dbb) = (Database::with_storage(a).unwrap(), Database::with_storage(b.clone()).unwrap());
    let counter = dba.transact(|tx| tx.add(Counter::new())).unwrap();
    for i in 1..=20 {
        assert_eq!(dbb.transact(|tx| Ok(tx.get(counter)?.value())).unwrap(), i - 1, "b sees a's last commit");
        dba.transact(|tx| Ok(tx.get_mut(counter)?.set_value(i))).unwrap();
    }
    let (told, missed) = b.invalidations();
    assert!(told >= 19 && missed == 0, "told {told}, missed {missed}");
}

/// Two writers transfer money between six accounts through two members
/// while a reader on each of the three members sums the balances in long
/// snapshots: every sum is the total.
fn the_bank_invariant_holds_on_every_member() {
    use pbpersist_tests::bank::Account;
    use std::sync::atomic::AtomicBool;
    let prefix = fresh_prefix();
    let open = |m: usize| {
        let storage = EtcdStorage::open(&cluster().member_url(m, &prefix)).unwrap();
        Database::with_storage_and_options(storage, pbpersist::Options::default().max_attempts(10_000)).unwrap()
    };
    let total = 6000;
    let accounts: Vec<pbpersist::Ref<Account>> = open(0)
        .transact(|tx| {
            (0..6)
                .map(|i| {
                    let mut a = Account::new();
                    a.set_name(format!("acct-{i}"));
                    a.set_balance(1000);
                    tx.add(a)
                })
                .collect()
        })
        .unwrap();
    let done = AtomicBool::new(false);
    let checked = AtomicU32::new(0);
    std::thread::scope(|s| {
        let writers: Vec<_> = [1usize, 2]
            .into_iter()
            .map(|m| {
                let (db, accounts) = (open(m), &accounts);
                s.spawn(move || {
                    for i in 0..150usize {
                        let (from, to) = (accounts[(i * 7 + m) % 6], accounts[(i * 13 + m + 1) % 6]);
                        if from == to {
                            continue;
                        }
                        db.transact(|tx| {
                            let amount = (i % 50) as i64;
                            let f = tx.get_mut(from)?;
                            f.set_balance(f.balance() - amount);
                            let t = tx.get_mut(to)?;
                            t.set_balance(t.balance() + amount);
                            Ok(())
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for m in 0..3 {
            let (db, accounts, done, checked) = (open(m), &accounts, &done, &checked);
            s.spawn(move || {
                let mut conn = db.connect().unwrap();
                while !done.load(Ordering::SeqCst) {
                    let mut tx = conn.begin().unwrap();
                    let mut sum = 0;
                    for a in accounts {
                        sum += tx.get(*a).unwrap().balance();
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                    assert_eq!(sum, total, "member {m}: a snapshot showed half a transfer");
                    tx.abort();
                    checked.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::SeqCst);
    });
    assert!(checked.load(Ordering::SeqCst) >= 3);
}

/// A snapshot older than the revision the cluster compacted to fails with
/// a transient error, and the next transaction, on a fresh snapshot, works.
fn a_compacted_snapshot_is_a_transient_error() {
    let cluster = Cluster::start(1);
    let db = Database::with_storage(EtcdStorage::open(&cluster.url("compaction")).unwrap()).unwrap();
    let counter = db.transact(|tx| tx.add(Counter::new())).unwrap();
    let mut conn = db.connect().unwrap();
    let mut old = conn.begin().unwrap();
    for i in 1..=5 {
        db.transact(|tx| {
            tx.get_mut(counter)?.set_value(i);
            Ok(())
        })
        .unwrap();
    }
    let head = cluster.admin(async |c| Ok(c.get("compaction/meta/head", None).await?.kvs()[0].mod_revision())).unwrap();
    cluster.admin(async |c| c.compact(head, None).await.map(drop)).unwrap();
    match old.get(counter) {
        Err(e) => assert!(e.is_transient(), "{e:?}"),
        Ok(c) => panic!("read a compacted revision: {c:?}"),
    }
    old.abort();
    assert_eq!(db.transact(|tx| Ok(tx.get(counter)?.value())).unwrap(), 5);
}

/// With authentication enabled on the cluster, the storage connects with a
/// user and password from the URL; without them it is refused, and no error
/// shows the password.
fn user_and_password_authenticate_and_are_never_shown() {
    let cluster = Cluster::start(1);
    cluster
        .admin(async |c| {
            c.user_add("root", "s3cret-pw", None).await?;
            c.user_grant_role("root", "root").await?;
            c.auth_enable().await.map(drop)
        })
        .unwrap();
    let endpoint = &cluster.endpoints()[0];
    let url = format!("etcd://root:s3cret-pw@{endpoint}/secured");
    let db = Database::with_storage(EtcdStorage::open(&url).unwrap()).unwrap();
    let c = db.transact(|tx| tx.add(Counter::new())).unwrap();
    assert_eq!(db.transact(|tx| Ok(tx.get(c)?.value())).unwrap(), 0);
    let refused = EtcdStorage::open(&format!("etcd://{endpoint}/secured")).unwrap_err();
    let wrong = EtcdStorage::open(&format!("etcd://root:wrong-pw@{endpoint}/secured")).unwrap_err();
    for e in [&refused, &wrong] {
        let shown = format!("{e} / {e:?} / {}", pbpersist::report(e));
        assert!(!shown.contains("s3cret-pw") && !shown.contains("wrong-pw"), "{shown}");
    }
    assert!(
        format!("{wrong:?}").contains("authentication failed") || format!("{wrong:?}").contains("invalid"),
        "{wrong:?}"
    );
}

/// A cluster that serves clients over TLS only, with client certificates:
/// the storage connects with the CA and its certificate from the URL, and
/// without them it is refused.
fn tls_with_client_certificates() {
    let cluster = Cluster::start_tls(1);
    let db = Database::with_storage(EtcdStorage::open(&cluster.tls_url("tls")).unwrap()).unwrap();
    let c = db.transact(|tx| tx.add(Counter::new())).unwrap();
    db.transact(|tx| {
        tx.get_mut(c)?.set_value(3);
        Ok(())
    })
    .unwrap();
    assert_eq!(db.transact(|tx| Ok(tx.get(c)?.value())).unwrap(), 3);
    assert!(EtcdStorage::open(&cluster.url("tls")).is_err(), "plain text is refused");
}

/// A commit over the cluster's operation limit is refused before anything
/// is sent, with the numbers, and writes nothing.
fn a_commit_over_the_clusters_limits_is_refused_before_sending() {
    let prefix = fresh_prefix();
    let url = cluster().url(&prefix).replace("max-txn-ops=10000", "max-txn-ops=20");
    let db = Database::with_storage(EtcdStorage::open(&url).unwrap()).unwrap();
    let before = db.last_transactions(1).unwrap();
    let refused = db.transact(|tx| {
        for _ in 0..30 {
            tx.add(Counter::new())?;
        }
        Ok(())
    });
    match refused {
        Err(pbpersist::Error::Storage(StorageError::Config(why))) => {
            assert!(why.contains("20") && why.contains("max-txn-ops"), "{why}")
        }
        other => panic!("expected a limit error, got {other:?}"),
    }
    assert_eq!(db.last_transactions(1).unwrap(), before, "nothing was written");
}

/// The storage runs its client on a runtime of its own: opened, used and
/// dropped inside an application's Tokio runtime, it neither panics nor
/// deadlocks.
fn it_works_called_from_inside_a_tokio_runtime() {
    let url = cluster().url(&fresh_prefix());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let db = Database::with_storage(EtcdStorage::open(&url).unwrap()).unwrap();
        let c = db.transact(|tx| tx.add(Counter::new())).unwrap();
        db.transact(|tx| Ok(tx.get_mut(c)?.set_value(7))).unwrap();
        assert_eq!(db.transact(|tx| Ok(tx.get(c)?.value())).unwrap(), 7);
        drop(db);
    });
}

/// Three processes, each connected to a different member, add 1 to one
/// counter 1,000 times each: exactly 3,000; then each inserts 1,000
/// distinct keys into one tree: all are there.
fn writers_on_every_member_lose_no_update() {
    let prefix = fresh_prefix();
    let db = Database::with_storage(EtcdStorage::open(&cluster().url(&prefix)).unwrap()).unwrap();
    db.transact(|tx| {
        let c = tx.add(Counter::new())?;
        tx.root_mut()?.insert("counter", c);
        Ok(())
    })
    .unwrap();
    let children: Vec<_> = (0..3)
        .map(|m| {
            Command::new(worker())
                .args(["count", &cluster().member_url(m, &prefix), "1000", "plain"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut retries = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        retries += String::from_utf8(out.stdout).unwrap().trim().trim_start_matches("retries ").parse::<u64>().unwrap();
    }
    let value = db
        .transact(|tx| {
            let c = tx.root()?.require::<Counter>("counter")?;
            Ok(tx.get(c)?.value())
        })
        .unwrap();
    println!("3 processes on 3 members: {value}, {retries} retries");
    assert_eq!(value, 3000);

    // Each inserts 1,000 distinct keys into one tree, 50 per transaction.
    let tree = db
        .transact(|tx| {
            let tree = pbpersist::PTreeMap::<i64, i64>::create(tx)?;
            tx.root_mut()?.insert("tree", tree);
            Ok(tree)
        })
        .unwrap();
    let children: Vec<_> = (0..3)
        .map(|m| {
            Command::new(worker())
                .args(["tree-insert", &cluster().member_url(m, &prefix), &m.to_string(), "1000", "50"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    db.transact(|tx| {
        let keys: Vec<i64> = tree.keys(tx, ..).collect::<Result<_, _>>()?;
        // Worker m inserts i * 4 + m: three of every four numbers below 4,000.
        assert_eq!(keys, (0..4000).filter(|k| k % 4 != 3).collect::<Vec<_>>());
        assert_eq!(tree.len(tx)?, 3000);
        Ok(())
    })
    .unwrap();
}

/// While three writers commit through the cluster, its leader is killed
/// with SIGKILL ten times, restarted between; every commit a writer saw
/// acknowledged is there afterwards, none partially, and the writers went on
/// through the other members.
fn the_leader_killed_10_times_loses_no_acknowledged_commit() {
    use pbpersist_tests::steady::SteadyWriters;
    let cluster = Cluster::start(3);
    let url = cluster.url("faults");
    let db = Database::with_storage(EtcdStorage::open(&url).unwrap()).unwrap();
    let writers = ["w0", "w1", "w2"];
    let steady = SteadyWriters::start(&db, &worker(), &url, &writers);
    drop(db);
    let mut kills = 0;
    for _ in 0..10 {
        std::thread::sleep(std::time::Duration::from_millis(400));
        // Between elections there is no leader; wait for the next one.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let leader = loop {
            match cluster.leader() {
                Some(l) => break l,
                None if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(100))
                }
                None => panic!("the cluster elected no leader in 10 s"),
            }
        };
        cluster.kill(leader);
        kills += 1;
        std::thread::sleep(std::time::Duration::from_millis(600));
        cluster.restart(leader);
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let before_stop = steady.acknowledged();
    let acked = steady.stop();
    let db = Database::with_storage(EtcdStorage::open(&url).unwrap()).unwrap();
    SteadyWriters::check(&writers, &acked, &db);
    for (k, w) in writers.iter().enumerate() {
        assert!(before_stop[k] > 0, "{w} committed nothing");
    }
    // Every member, each killed and restarted on the way, caught up: read
    // through it alone, it shows what the cluster shows.
    let everywhere: Vec<i64> = db
        .transact(|tx| {
            let root = tx.root()?;
            writers.iter().map(|w| Ok(tx.get(root.require::<Counter>(&format!("{w}.a"))?)?.value())).collect()
        })
        .unwrap();
    for m in 0..3 {
        let member = Database::with_storage(EtcdStorage::open(&cluster.member_url(m, "faults")).unwrap()).unwrap();
        let seen: Vec<i64> = member
            .transact(|tx| {
                let root = tx.root()?;
                writers.iter().map(|w| Ok(tx.get(root.require::<Counter>(&format!("{w}.a"))?)?.value())).collect()
            })
            .unwrap();
        assert_eq!(seen, everywhere, "member {m} serves what the cluster committed");
    }
    println!("leader killed {kills} times; writers acknowledged {acked:?}");
    assert_eq!(kills, 10);
}

fn main() {
    let args = Arguments::from_args();
    let mut trials: Vec<Trial> = Vec::new();
    pbpersist::conformance_tests!(suite_trials!(trials));
    for (name, test) in [
        ("etcd::invalidations_are_pushed_by_the_watch", invalidations_are_pushed_by_the_watch as fn()),
        // The bank invariant and lost updates, with each database on a member of its own.
        ("etcd::the_bank_invariant_holds_on_every_member", the_bank_invariant_holds_on_every_member),
        ("etcd::per_member::a_write_conflict_names_the_oid", || {
            suite::transactions::a_write_conflict_names_the_oid_and_writes_nothing(&backend_per_member())
        }),
        ("etcd::per_member::bucket_merges", || {
            suite::trees::inserts_and_removals_of_different_keys_in_one_bucket_both_commit(&backend_per_member())
        }),
        (
            "etcd::a_commit_over_the_clusters_limits_is_refused_before_sending",
            a_commit_over_the_clusters_limits_is_refused_before_sending,
        ),
        ("etcd::it_works_called_from_inside_a_tokio_runtime", it_works_called_from_inside_a_tokio_runtime),
        ("etcd::writers_on_every_member_lose_no_update", writers_on_every_member_lose_no_update),
        ("etcd::a_compacted_snapshot_is_a_transient_error", a_compacted_snapshot_is_a_transient_error),
        ("etcd::tls_with_client_certificates", tls_with_client_certificates),
        (
            "etcd::user_and_password_authenticate_and_are_never_shown",
            user_and_password_authenticate_and_are_never_shown,
        ),
        (
            "etcd::the_leader_killed_10_times_loses_no_acknowledged_commit",
            the_leader_killed_10_times_loses_no_acknowledged_commit,
        ),
    ] {
        trials.push(Trial::test(name, move || Ok(test())));
    }
    if let Err(reason) = etcd_available() {
        if std::env::var("PBPERSIST_REQUIRE_ETCD").is_ok_and(|v| v == "1") {
            eprintln!("PBPERSIST_REQUIRE_ETCD=1 but {reason}");
            std::process::exit(101);
        }
        eprintln!("skipping {} etcd tests: {reason}", trials.len());
        trials = trials.into_iter().map(|t| t.with_ignored_flag(true)).collect();
    }
    let conclusion = libtest_mimic::run(&args, trials);
    if let Some(cluster) = CLUSTER.get() {
        cluster.stop();
    }
    conclusion.exit();
}
