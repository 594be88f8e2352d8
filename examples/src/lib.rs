//! Types generated from `proto/demo.proto`, shared by the examples.

/// The `demo` protobuf package.
pub mod demo {
    pbpersist::include_proto!("demo");
}
