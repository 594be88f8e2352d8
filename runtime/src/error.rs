//! Errors.
//!
//! One convention for the workspace: an error's message says what failed at
//! its own level, and the lower-level cause is only its `source()`, never
//! repeated in the message. Print the whole chain with a reporter (anyhow's
//! `{:#}`, miette, or [`report`]), as `cargo pbpersist` does.

use crate::persistent::RequiredFieldError;
use crate::{Oid, Tid};

/// The result type of pbpersist operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong loading, changing or committing objects.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An object to be saved has a required field unset; nothing was written.
    #[error("cannot commit object {oid}")]
    Required {
        /// The object that failed the check.
        oid: Oid,
        /// The missing field.
        #[source]
        source: RequiredFieldError,
    },
    /// No object has this oid.
    #[error("object {oid} does not exist")]
    NotFound {
        /// The missing oid.
        oid: Oid,
    },
    /// The root has no entry of this name.
    #[error("the root has no entry named {name:?}")]
    NameNotFound {
        /// The name looked up.
        name: String,
    },
    /// The object exists but has another type than the reference says.
    #[error("object {oid} is a {found}, not a {expected}")]
    WrongType {
        /// The object.
        oid: Oid,
        /// The type the caller asked for.
        expected: &'static str,
        /// The stored type name.
        found: String,
    },
    /// The stored type is not one this program was built with.
    #[error("object {oid} has type {type_name}, which this program does not know")]
    UnknownType {
        /// The object.
        oid: Oid,
        /// The stored type name.
        type_name: String,
    },
    /// The stored bytes could not be decoded.
    #[error("object {oid} has a malformed record")]
    Corrupt {
        /// The object.
        oid: Oid,
        /// What the decoder found.
        #[source]
        source: prost::DecodeError,
    },
    /// The record is larger than [`Options::max_record_size`](crate::Options::max_record_size).
    #[error("object {oid} has a record of {size} bytes, over the limit of {limit}")]
    RecordTooLarge {
        /// The object.
        oid: Oid,
        /// The record's size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Another transaction committed a newer state of this object first.
    #[error(transparent)]
    Conflict(#[from] ConflictError),
    /// The storage failed.
    #[error(transparent)]
    Storage(StorageError),
    /// A tree was opened with key or value types other than those it was
    /// created with.
    #[error("tree {oid} holds {found}, not {expected}")]
    TreeKind {
        /// The tree's head.
        oid: Oid,
        /// The kinds asked for, as `key -> value`.
        expected: String,
        /// The kinds stored in the head.
        found: String,
    },
    /// A tree's stored shape breaks its rules (keys out of order, lists of
    /// different lengths); `cargo pbpersist check-tree` lists every problem.
    #[error("tree object {oid} is broken: {reason}")]
    BrokenTree {
        /// The head, node or bucket.
        oid: Oid,
        /// What is wrong.
        reason: String,
    },
    /// A value cannot be kept in a tree: an embedded message holding
    /// references, which garbage collection would not see.
    #[error("tree {oid} cannot hold this value: an embedded message with references (store a Ref instead)")]
    TreeValue {
        /// The tree's head.
        oid: Oid,
    },
    /// Transactions could not be undone; nothing was written.
    #[error(transparent)]
    Undo(UndoError),
    /// An index was queried before it was built: objects older than it are
    /// not all in it yet. `Database::build_indexes` builds it.
    #[error("index {index} is not built yet{}; run Database::build_indexes", progress(*.built_to, *.build_end))]
    IndexNotReady {
        /// The index's name.
        index: String,
        /// Every object below this oid is indexed.
        built_to: u64,
        /// The build ends at this oid; `None` before the index was created.
        build_end: Option<u64>,
    },
    /// A commit would give two objects one key of a unique index; nothing
    /// was written.
    #[error("object {oid} cannot take key {key} of unique index {index}: object {existing} has it")]
    Unique {
        /// The index's name.
        index: String,
        /// The key, as Rust's `Debug` shows it.
        key: String,
        /// The object that would take it.
        oid: Oid,
        /// The object that has it.
        existing: Oid,
    },
}

/// How far an index build has come, for [`Error::IndexNotReady`].
fn progress(built_to: u64, build_end: Option<u64>) -> String {
    match build_end {
        Some(end) => format!(" (objects below oid {built_to} of {end} indexed)"),
        None => String::new(),
    }
}

impl Error {
    /// Whether retrying the transaction may succeed (a conflict).
    /// A lost connection, or a transaction the server aborted to break a
    /// deadlock, is transient too: nothing was written.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Conflict(_) | Error::Storage(StorageError::Unavailable { .. } | StorageError::Aborted { .. })
        )
    }
}

/// A write conflict: the object changed in storage since this transaction read it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("write conflict on object {oid}: another transaction committed it first")]
pub struct ConflictError {
    /// The object.
    pub oid: Oid,
}

/// A failure of the storage backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The database file or server failed.
    #[error("{backend} failed")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database has a layout this version of pbpersist does not read.
    #[error("unsupported database format: {0}")]
    Format(String),
    /// The commit was refused because an object changed (see [`ConflictError`]).
    #[error(transparent)]
    Conflict(#[from] ConflictError),
    /// The server could not be reached, or the connection broke before the
    /// commit was sent: nothing was written. The next transaction connects
    /// again, so retrying is safe.
    #[error("{backend} server {target} is unavailable")]
    Unavailable {
        /// Which backend.
        backend: &'static str,
        /// Where the server is (`user@host:port/db`), never with credentials.
        target: String,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The connection broke after the commit was sent and before the server
    /// confirmed it: the transaction may or may not have been written, and
    /// no one can tell from this side. Not retried automatically, since
    /// repeating a commit that happened would apply its changes twice.
    #[error("the connection to {backend} broke during the commit of tid {tid}; whether it was written is unknown")]
    CommitUnknown {
        /// Which backend.
        backend: &'static str,
        /// The tid the commit would have; if it happened, its objects carry it.
        tid: Tid,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server aborted the transaction to break a deadlock or a
    /// serialization failure; nothing was written and retrying may succeed.
    #[error("{backend} aborted the transaction (deadlock or serialization failure)")]
    Aborted {
        /// Which backend.
        backend: &'static str,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database was opened read-only and the operation would write.
    #[error("the {backend} database is open read-only; this would write to it")]
    ReadOnly {
        /// Which backend.
        backend: &'static str,
    },
    /// The storage was configured wrongly (a malformed URL, a missing variable).
    #[error("storage configuration: {0}")]
    Config(String),
    /// The state as of `at` was asked for, and a pack removed what it needs:
    /// only tids from `packed` on can be read.
    #[error("the {backend} database was packed to tid {packed}; tid {at} is before what it keeps")]
    Packed {
        /// Which backend.
        backend: &'static str,
        /// The tid asked for.
        at: Tid,
        /// The oldest tid whose states are all kept.
        packed: Tid,
    },
    /// A server refused the request: the client may not make it (no or a
    /// wrong token, a read-only client writing, a type it may not write),
    /// or the request broke a rule (a record that does not decode with its
    /// type's schema, a reference list that lies, a size over a limit).
    /// Nothing was written; retrying the same request fails again.
    #[error("the {backend} server refused the request: {reason}")]
    Refused {
        /// Which backend.
        backend: &'static str,
        /// Why, as the server said it.
        reason: String,
    },
    /// Past states were asked for, and the database keeps none: it was
    /// created history-free.
    #[error("the {backend} database keeps no history (it was created history-free)")]
    NoHistory {
        /// Which backend.
        backend: &'static str,
    },
    /// Administration (gc, copying transactions in) was asked of a storage
    /// that offers none: [`Storage::admin`](crate::storage::Storage::admin)
    /// is `None`, as for a view of the database as of a past tid.
    #[error("the {backend} storage offers no administration (gc, copying transactions in)")]
    NoAdmin {
        /// Which backend.
        backend: &'static str,
    },
    /// A write names an oid it may not: a new object at an oid the database
    /// never handed out (one at or above its next oid, other than the
    /// root's), or any oid at or above 2^63. Nothing was written; retrying
    /// the same write fails again.
    #[error("the {backend} database refuses to write object {oid}: {reason}")]
    OidOutOfRange {
        /// Which backend.
        backend: &'static str,
        /// The first oid of the write that breaks the rule.
        oid: Oid,
        /// Which rule it breaks.
        reason: String,
    },
    /// A reservation of oids was refused: more than
    /// [`MAX_NEW_OIDS`](crate::storage::MAX_NEW_OIDS) at once, or more than
    /// remain below 2^63. Nothing was reserved.
    #[error("the {backend} database refuses to reserve {count} oids: {reason}")]
    TooManyOids {
        /// Which backend.
        backend: &'static str,
        /// How many were asked for.
        count: u64,
        /// Which limit the count passes.
        reason: String,
    },
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict(c) => Error::Conflict(c),
            other => Error::Storage(other),
        }
    }
}

/// An error and its causes on one line, outermost first, separated by `: `
/// (`cannot commit object 7: demo.Tower.name is required but not set`).
pub fn report(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant with a cause leaves it to `source()`: the report shows
    /// each cause once.
    #[test]
    fn causes_print_once() {
        let cause =
            || Box::new(std::io::Error::other("the disk is on fire")) as Box<dyn std::error::Error + Send + Sync>;
        let errors: Vec<Error> = vec![
            Error::Required { oid: Oid(7), source: RequiredFieldError::new("demo.Tower", "name") },
            Error::Corrupt { oid: Oid(7), source: prost::encoding::decode_varint(&mut &[0xff; 11][..]).unwrap_err() },
            StorageError::Backend { backend: "sqlite", source: cause() }.into(),
            StorageError::Unavailable { backend: "postgres", target: "db:5432".into(), source: cause() }.into(),
            StorageError::CommitUnknown { backend: "postgres", tid: Tid(9), source: cause() }.into(),
            StorageError::Aborted { backend: "postgres", source: cause() }.into(),
        ];
        for e in errors {
            let report = report(&e);
            let cause = std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default();
            let shown = match &e {
                Error::Storage(s) => std::error::Error::source(s).map(ToString::to_string).unwrap_or(cause),
                _ => cause,
            };
            assert!(!shown.is_empty(), "{e:?} has no cause");
            assert_eq!(report.matches(&shown).count(), 1, "{report}");
        }
    }
}

/// Why transactions could not be undone. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UndoError {
    /// The tid is not one of the database's transactions.
    #[error("transaction {0} is not in the database's history")]
    UnknownTransaction(Tid),
    /// Later transactions, not undone with it, changed these objects: undoing
    /// would throw their changes away.
    #[error("objects {} changed after the transaction to undo", list(.oids))]
    Changed {
        /// The objects, sorted.
        oids: Vec<Oid>,
    },
}

fn list(oids: &[Oid]) -> String {
    oids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

impl From<UndoError> for Error {
    fn from(e: UndoError) -> Self {
        Error::Undo(e)
    }
}
