//! # pbpersist
//!
//! Keep Rust objects in a database whose data any language can read.
//!
//! Each object is a protobuf message with an identity (an [`Oid`]). Objects
//! refer to each other with typed [`Ref`]s that load lazily; a [`Transaction`]
//! keeps one object per oid, writes the changed ones at commit and detects
//! conflicting commits. Records are `pbpersist.Record` messages
//! (`proto/pbpersist/record.proto`), stored in plain tables (`docs/format.md`).
//!
//! Types come from `.proto` files through `pbpersist-build`, or from
//! `#[derive(Persistent)]` on annotated structs; both go through the same
//! emitter.
//!
//! ```
//! # fn main() -> pbpersist::Result<()> {
//! use pbpersist::{Database, Persistent};
//!
//! let db = Database::in_memory()?;
//! db.transact(|tx| {
//!     let root = tx.root_mut()?;
//!     assert!(root.is_empty());
//!     assert!(root.is_changed() == false);
//!     Ok(())
//! })?;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

extern crate self as pbpersist;

mod cache;
#[cfg(feature = "conformance")]
pub mod conformance;
mod connection;
mod db;
mod enumeration;
mod error;
pub mod extension;
mod history;
pub mod index;
mod loaded;
mod meta;
mod oid;
mod options;
mod persistent;
pub mod record;
#[cfg(feature = "reflect")]
pub mod reflect;
mod root;
pub mod schema;
mod shared;
pub mod storage;
pub mod tree;
// Public only for `__private::wire`, the path generated code uses.
#[doc(hidden)]
pub mod wire;
pub mod wkt;

pub use connection::{Connection, Transaction};
pub use db::{Database, GcReport, Stats};
pub use enumeration::{EnumValue, Enumeration, UnknownEnumValue};
pub use error::{ConflictError, Error, Result, StorageError, UndoError, report};
pub use history::{Keep, PackReport};
pub use meta::Meta;
pub use oid::{AnyObject, Oid, Ref, Tid};
pub use options::Options;
pub use pbpersist_derive::{Enumeration, Persistent};
pub use persistent::Persistent;
pub use root::Root;
pub use tree::{PTreeMap, PTreeSet};

/// The machinery behind [`Persistent`]: the type-erased objects a cache
/// holds, the registry from protobuf type name to decoder, and the pieces
/// generated code names. An application rarely names these; generated code
/// and tools that handle objects of any type do.
pub mod object {
    pub use crate::meta::FieldInfo;
    pub use crate::persistent::{Object, RefTarget, RequiredFieldError, TypeEntry, lookup_type, registered_types};
}

/// Includes the code `pbpersist-build` generated for a protobuf package.
///
/// `pbpersist::include_proto!("demo")` in a module includes `demo.rs` from
/// `OUT_DIR`.
#[macro_export]
macro_rules! include_proto {
    ($package:tt) => {
        include!(concat!(env!("OUT_DIR"), "/", $package, ".rs"));
    };
}

/// What generated code, pbpersist's tests and its fuzzers use: not a stable
/// API. It changes with every release, which is why the runtime depends on
/// exactly its own version of the derive (`=`): the code a derive emits
/// always meets the `__private` it was written for.
#[doc(hidden)]
pub mod __private {
    pub use crate::wire;
    pub use bytes;
    pub use inventory;
    pub use prost;

    /// Whether an implicit-presence value is its type's default, so
    /// encoding leaves it out.
    #[inline]
    pub fn is_default<T: Default + PartialEq>(value: &T) -> bool {
        *value == T::default()
    }

    /// The pieces of a `.proto` description that generated
    /// `describe_schema` functions assemble.
    pub mod schema {
        pub use crate::schema::{EnumDef, FieldDef, MessageDef, quote_bytes};
    }
}
