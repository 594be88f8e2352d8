//! What every backend's stored layout shares: the refusal of a newer
//! format, commit times as microseconds, and random database ids.

/// The error for a database whose layout is newer than this program's,
/// worded alike for every backend.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "etcd", feature = "object-store"))]
pub(crate) fn too_new(name: &str, found: i64, latest: i64) -> crate::StorageError {
    crate::StorageError::Format(format!(
        "{name} has format version {found}; this pbpersist reads up to version {latest}"
    ))
}

/// A random number, for identities and nonces (not for cryptography).
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.write_u32(std::process::id());
    h.finish()
}

/// Microseconds since the Unix epoch as a time.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "etcd", feature = "object-store"))]
pub(crate) fn time_from_micros(micros: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_micros(micros.max(0) as u64)
}
