//! Generated types and helpers for the integration tests.

/// The example schema.
pub mod demo {
    pbpersist::include_proto!("demo");
}

/// Two versions of a message, for schema-evolution tests.
pub mod evolution {
    pbpersist::include_proto!("evolution");
}

/// Counters and accounts for transaction tests.
pub mod bank {
    pbpersist::include_proto!("bank");
}

pub mod coverage;
pub mod prost_reference;

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
