//! Errors.

use crate::{Oid, RequiredFieldError, Tid};

/// The result type of pbpersist operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong loading, changing or committing objects.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An object to be saved has a required field unset; nothing was written.
    #[error("cannot commit object {oid}: {source}")]
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
    #[error("object {oid} has a malformed record: {source}")]
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
    /// The transaction was already committed or aborted.
    #[error("the transaction is already finished")]
    Finished,
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
    #[error("{backend} error: {source}")]
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
    #[error("{backend} server {target} is unavailable: {source}")]
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
    #[error("{backend} aborted the transaction (deadlock or serialization failure): {source}")]
    Aborted {
        /// Which backend.
        backend: &'static str,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The storage was configured wrongly (a malformed URL, a missing variable).
    #[error("storage configuration: {0}")]
    Config(String),
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict(c) => Error::Conflict(c),
            other => Error::Storage(other),
        }
    }
}
