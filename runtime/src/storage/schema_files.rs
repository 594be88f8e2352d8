//! The one read-modify-write of a stored schema file, over
//! [`Storage::swap_schema`](super::Storage::swap_schema).

use crate::StorageError;

/// How often [`update_stored`] reads and swaps a file before it gives up:
/// each lost swap means another program stored that file meanwhile, so
/// this many in a row means the file is being rewritten without end.
const SWAP_ATTEMPTS: usize = 1000;

/// Stores the file `name` as `change` makes it from the stored text
/// (`None`: no such file; `change` returning `None` stores nothing), read
/// and swapped with [`Storage::swap_schema`](super::Storage::swap_schema) until no other writer came
/// between: the one read-modify-write of stored schemas.
pub(crate) fn update_stored<S: super::Storage + ?Sized>(
    storage: &S,
    name: &str,
    mut change: impl FnMut(Option<&str>) -> Option<String>,
) -> Result<(), StorageError> {
    for _ in 0..SWAP_ATTEMPTS {
        let stored = storage.schemas()?.into_iter().find(|(n, _)| n == name).map(|(_, text)| text);
        let Some(source) = change(stored.as_deref()) else { return Ok(()) };
        if stored.as_deref() == Some(source.as_str()) || storage.swap_schema(name, stored.as_deref(), &source)? {
            return Ok(());
        }
    }
    let reason = format!("the schema file {name} changed under {SWAP_ATTEMPTS} attempts to store it");
    Err(StorageError::Aborted { backend: storage.name(), source: reason.into() })
}
