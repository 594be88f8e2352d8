//! The coverage corpus (`tests/corpus/*.proto`): every package in its module,
//! through the include file pbpersist-build writes, and the file without a
//! package at the root.
#![allow(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/corpus/_includes.rs"));
