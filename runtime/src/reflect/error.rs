//! What goes wrong compiling stored schemas and decoding records with them.

use crate::StorageError;

/// Why the stored schemas give no descriptor pool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The storage could not give its schemas.
    #[error("cannot read the stored schemas")]
    Storage(#[source] StorageError),
    /// A file's name is not one a stored schema may have.
    #[error("{file:?} is not a schema file name: {reason}")]
    BadName {
        /// The name as stored.
        file: String,
        /// What a name must be.
        reason: &'static str,
    },
    /// Two files have the same name.
    #[error("{file} is given twice")]
    Twice {
        /// The name.
        file: String,
    },
    /// A file does not compile: the compiler's message, placed where the
    /// compiler placed it.
    #[error("{}", located(file.as_deref(), *line, *column, message))]
    Compile {
        /// The file, by its stored name, when the compiler names one.
        file: Option<String>,
        /// The line (from 1), when the compiler gives it.
        line: Option<usize>,
        /// The column (from 1, in characters), when the compiler gives it.
        column: Option<usize>,
        /// What the compiler says.
        message: String,
    },
    /// A file declares an edition, which only protoc compiles, and there is
    /// no protoc.
    #[error(
        "{file} declares an edition, which pbpersist compiles with protoc, and no protoc was found: \
         set PROTOC to one, or build pbpersist with the `vendored-protoc` feature"
    )]
    NoProtoc {
        /// The first such file.
        file: String,
    },
    /// A file declares an edition pbpersist does not read.
    #[error("{file} is in edition {edition}: pbpersist reads editions 2023 and 2024")]
    Edition {
        /// The file.
        file: String,
        /// The edition's number in `google.protobuf.Edition`.
        edition: i32,
    },
    /// protoc could not be run, or its files written or read.
    #[error("cannot run protoc ({what})")]
    Protoc {
        /// What failed: the protoc binary, or a file of its scratch directory.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// protoc's descriptors do not decode.
    #[error("the descriptors protoc wrote do not decode: {0}")]
    Descriptors(String),
}

/// `file:line:column: message`, with what is known of the place.
fn located(file: Option<&str>, line: Option<usize>, column: Option<usize>, message: &str) -> String {
    match (file, line, column) {
        (Some(f), Some(l), Some(c)) => format!("{f}:{l}:{c}: {message}"),
        (Some(f), Some(l), None) => format!("{f}:{l}: {message}"),
        (Some(f), _, _) => format!("{f}: {message}"),
        (None, _, _) => message.to_owned(),
    }
}

/// Why a record does not decode with the stored schemas.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not a `pbpersist.Record`.
    #[error("the record of object {oid} is malformed")]
    Record {
        /// The object.
        oid: u64,
        /// The cause.
        #[source]
        source: prost::DecodeError,
    },
    /// No stored schema defines the record's type.
    #[error("object {oid} is of type {type_name}, which the stored schemas do not describe")]
    UnknownType {
        /// The object.
        oid: u64,
        /// The type the record names.
        type_name: String,
    },
    /// The state is not an encoding of the record's type.
    #[error("the state of object {oid} does not decode as {type_name}")]
    State {
        /// The object.
        oid: u64,
        /// The type the record names.
        type_name: String,
        /// The cause.
        #[source]
        source: prost::DecodeError,
    },
    /// The state has no JSON form (an `Any` of a type the schemas lack, a
    /// float that is not a number in a map key, ...).
    #[error("the state of object {oid} ({type_name}) has no JSON form")]
    Json {
        /// The object.
        oid: u64,
        /// The type the record names.
        type_name: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}
