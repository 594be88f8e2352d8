//! Generated types and helpers for the integration tests.

/// The example schema.
pub mod demo {
    pbpersist::include_proto!("demo");
}

/// Two versions of a message, for schema-evolution tests.
pub mod evolution {
    pbpersist::include_proto!("evolution");
}

/// Version 1 of the `evolve` schema: what an older program knows.
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/v1/evolve.rs"));
}

/// Version 2 of the `evolve` schema: what a newer program wrote.
pub mod v2 {
    include!(concat!(env!("OUT_DIR"), "/v2/evolve.rs"));
}

/// Products found through indexes.
pub mod catalog {
    pbpersist::include_proto!("catalog");
}

/// The generated twin of the hand-written types in `tests/tests/types/derive.rs`.
pub mod notes {
    pbpersist::include_proto!("notes");
}

/// Counters and accounts for transaction tests.
pub mod bank {
    pbpersist::include_proto!("bank");
}

/// The editions test schemas (`tests/editions/`), every package in its
/// module: `edition_files::editions::Sample`.
pub mod edition_files {
    #![allow(missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/editions/_includes.rs"));
}

/// A current protobuf release's `google/protobuf` files (from the
/// protoc-bin-vendored crate) as persistent types.
pub mod protobuf_release {
    #![allow(missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/release/_includes.rs"));
}

/// Google's API annotation and common-type schemas, when
/// `PBPERSIST_REAL_PROTOS` names where `tests/fetch-real-protos` put them.
#[cfg(real_protos)]
pub mod real_protos {
    #![allow(missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/real/_includes.rs"));
}

pub mod coverage;
pub mod etcd;
#[cfg(feature = "harness")]
pub mod interop;
#[cfg(feature = "harness")]
pub mod place;
pub mod prost_reference;
#[cfg(feature = "harness")]
pub mod random;
pub mod s3;
pub mod steady;

use bank::ResolvingCounter;

/// Conflict resolution for a counter: apply this transaction's increment on
/// top of what was committed meanwhile.
pub fn merge_counter(
    old: &ResolvingCounter,
    committed: &ResolvingCounter,
    new: &ResolvingCounter,
) -> Option<ResolvingCounter> {
    let mut merged = committed.clone();
    merged.set_value(committed.value() + (new.value() - old.value()));
    Some(merged)
}

/// The value of the counter at `oid`, a `ResolvingCounter` if `resolving`.
pub fn counter_value(db: &pbpersist::Database, oid: pbpersist::Oid, resolving: bool) -> i64 {
    use pbpersist::Ref;
    db.transact(|tx| {
        Ok(if resolving {
            tx.get(Ref::<ResolvingCounter>::new(oid))?.value()
        } else {
            tx.get(Ref::<bank::Counter>::new(oid))?.value()
        })
    })
    .expect("the counter")
}

/// A child process killed and reaped when dropped, so that a test that
/// panics leaves no worker running (one still holding the test's output
/// pipe would keep CI waiting).
#[derive(Debug)]
pub struct Worker(pub std::process::Child);

impl std::ops::Deref for Worker {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Worker {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory for test databases: in memory-backed `/dev/shm` when the
/// machine has it (these tests check logic, not disk durability), else the
/// system temporary directory.
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().expect("a temporary directory")
}

/// Everything a storage holds that a copy must carry over, for comparing
/// two storages: transactions with their records, every object's current
/// state, and every object's history.
pub mod dump {
    use pbpersist::storage::{Committed, Loaded, Revision, Storage, TransactionRange};
    use pbpersist::{Oid, Tid};

    /// A storage's contents.
    #[derive(Debug, PartialEq)]
    pub struct Dump {
        /// Every transaction, oldest first, with the records still stored.
        pub transactions: Vec<Committed>,
        /// Every object's current state, in oid order.
        pub objects: Vec<(Oid, Loaded)>,
        /// Every object's kept states, newest first, in oid order.
        pub histories: Vec<(Oid, Vec<Revision>)>,
    }

    /// What `storage` holds now.
    pub fn dump(storage: &dyn Storage) -> Dump {
        let range =
            TransactionRange { after: Tid(0), until: None, limit: usize::MAX, newest_first: false, records: true };
        let transactions = storage.transactions(range).unwrap();
        let mut session = storage.open_session().unwrap();
        session.begin(None).unwrap();
        let objects = session.scan(None, usize::MAX).unwrap();
        session.end().unwrap();
        let mut oids: Vec<Oid> = objects.iter().map(|o| o.0).collect();
        oids.extend(transactions.iter().flat_map(|t| t.oids.clone().unwrap_or_default()));
        oids.sort_unstable();
        oids.dedup();
        let histories = oids.into_iter().map(|oid| (oid, storage.revisions(oid, usize::MAX).unwrap())).collect();
        Dump { transactions, objects, histories }
    }
}
