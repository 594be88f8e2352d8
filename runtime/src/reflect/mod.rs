//! Records read with the `.proto` files a database stores, without the
//! Rust types that wrote them: for inspectors, data browsers, indexes and
//! the server's validation (the `reflect` feature).
//!
//! [`Schemas`] compiles the stored files (`Storage::schemas`) with
//! pbpersist's own (`pbpersist/options.proto`, `record.proto`,
//! `tree.proto`: roots, references and trees are stored objects too) into
//! a [`prost_reflect::DescriptorPool`], in memory, and decodes records
//! with it:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use pbpersist::reflect::Schemas;
//!
//! let shop = "syntax = \"proto3\";\npackage shop;\nmessage Item { string name = 1; }\n";
//! let schemas = Schemas::compile(&[("shop.proto".to_owned(), shop.to_owned())])?;
//! let record = [0x0a, 0x09, b's', b'h', b'o', b'p', b'.', b'I', b't', b'e', b'm', 0x12, 0x03, 0x0a, 0x01, b'x'];
//! let decoded = schemas.decode(7, &record)?;
//! assert_eq!(decoded.type_name, "shop.Item");
//! assert_eq!(decoded.to_json()?, serde_json::json!({ "name": "x" }));
//! # Ok(())
//! # }
//! ```
//!
//! # How files are compiled
//!
//! protox compiles proto2 and proto3 files in memory; the pool's files are
//! named as the database names them. protox (0.10) does not parse
//! editions, and pbpersist itself stores a package's file in edition 2023
//! when its types mix proto2 and proto3 features (groups, or required
//! fields, defaults or closed enums beside implicit presence or open
//! enums). Files whose first statement is `edition = ...` are compiled by
//! Google's protoc instead: the one the `PROTOC` environment variable
//! names, else the copy the `vendored-protoc` feature carries (the server
//! and `cargo pbpersist` turn it on), run on a scratch directory holding
//! the stored files. Without either, such a file is a
//! [`SchemaError::NoProtoc`] naming it, and a database with no editions
//! file never needs protoc. prost-reflect (0.16) holds proto2 and proto3
//! descriptors only, so protoc's editions descriptors are lowered to the
//! proto2 descriptors that read the same bytes, each field and enum
//! keeping its resolved features in its options; protox then checks them
//! with the other files, as one pool. One protoc for everything would
//! lose protox's placed diagnostics and make every compile need a binary
//! and a process: a small proto3 file with pbpersist's own compiles in
//! about 0.6 ms in memory, a small editions file through protoc in about
//! 9 ms (release build, two busy cores).

mod compile;
mod editions;
mod error;
mod protoc;
#[cfg(test)]
mod tests;

pub use error::{DecodeError, SchemaError};
pub use prost_reflect;

use crate::record::Record;
use crate::storage::Storage;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};

/// The `.proto` files a database stores, compiled with pbpersist's own.
#[derive(Clone, Debug)]
pub struct Schemas {
    pool: DescriptorPool,
}

impl Schemas {
    /// Compiles the files `storage` holds.
    pub fn from_storage(storage: &dyn Storage) -> Result<Schemas, SchemaError> {
        Schemas::compile(&storage.schemas().map_err(SchemaError::Storage)?)
    }

    /// Compiles `files`, as (name, source) pairs such as
    /// `Storage::schemas` gives. Each name must pass [`check_file_name`];
    /// a file that does not compile is an error naming it, with the line
    /// and column where the compiler gives them.
    pub fn compile(files: &[(String, String)]) -> Result<Schemas, SchemaError> {
        Ok(Schemas { pool: compile::compile(files)? })
    }

    /// Every file: the stored ones by their stored names, pbpersist's own
    /// and the well-known types they import.
    pub fn pool(&self) -> &DescriptorPool {
        &self.pool
    }

    /// The message type of a full name (`shop.Item`, without a leading dot).
    pub fn message(&self, type_name: &str) -> Option<MessageDescriptor> {
        self.pool.get_message_by_name(type_name)
    }

    /// Decodes the stored record (an encoded `pbpersist.Record`) of object
    /// `oid`: its type, its state as that type, its reference list.
    pub fn decode(&self, oid: u64, record: &[u8]) -> Result<Decoded, DecodeError> {
        let record = Record::from_bytes(bytes::Bytes::copy_from_slice(record))
            .map_err(|source| DecodeError::Record { oid, source })?;
        self.decode_record(oid, &record)
    }

    /// Decodes the state of an already decoded record of object `oid`.
    pub fn decode_record(&self, oid: u64, record: &Record) -> Result<Decoded, DecodeError> {
        let type_name = record.r#type.clone();
        let Some(descriptor) = self.message(&type_name) else {
            return Err(DecodeError::UnknownType { oid, type_name });
        };
        match DynamicMessage::decode(descriptor, record.state.clone()) {
            Ok(state) => Ok(Decoded { oid, type_name, state, refs: record.refs.clone() }),
            Err(source) => Err(DecodeError::State { oid, type_name, source }),
        }
    }
}

/// Whether `name` may name a stored `.proto` file: a relative path of
/// letters, digits, `_`, `-` and `.` without `.` or `..` parts, ending in
/// `.proto`, outside `pbpersist/` and `google/protobuf/` (whose files come
/// with pbpersist).
pub fn check_file_name(name: &str) -> Result<(), SchemaError> {
    compile::check_name(name)
}

/// A record decoded with the stored schemas.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// The object.
    pub oid: u64,
    /// The full name of the state's type.
    pub type_name: String,
    /// The state.
    pub state: DynamicMessage,
    /// The oids the record lists as referenced.
    pub refs: Vec<u64>,
}

impl Decoded {
    /// The state in protobuf's JSON mapping (field names in lowerCamelCase,
    /// 64-bit integers as strings, unset fields left out).
    pub fn to_json(&self) -> Result<serde_json::Value, DecodeError> {
        serde_json::to_value(&self.state).map_err(|source| DecodeError::Json {
            oid: self.oid,
            type_name: self.type_name.clone(),
            source,
        })
    }
}
