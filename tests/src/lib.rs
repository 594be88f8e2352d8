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
pub mod interop;
pub mod place;
pub mod prost_reference;
pub mod random;

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
