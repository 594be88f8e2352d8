//! The one model of a persistent message that both ways into pbpersist share.
//!
//! `pbpersist-build` turns `.proto` descriptors into this model and prints it as
//! plain Rust items annotated with `#[pbpersist(...)]` attributes
//! ([`print`]). `pbpersist-derive` parses those attributes back into the same
//! model ([`parse`]) and writes every impl ([`emit`]). Because generated code
//! goes through the derive, the two paths produce the same code by construction.
#![warn(missing_docs)]

#[cfg(feature = "editions")]
pub mod declared;
#[cfg(feature = "editions")]
pub mod editions;
pub mod emit;
mod model;
pub mod parse;
pub mod print;
pub mod types;

pub use model::*;
