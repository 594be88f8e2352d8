//! Schemas: every construct, editions, extensions, Google's own and real-world
//! files compile and round-trip; programs of different schema versions share
//! data without loss; the stored format and exported `.proto` files are what
//! another language reads. One test binary, since linking dominates on two
//! cores.

mod editions;
mod evolution;
mod extensions;
mod format;
mod protobuf_release;
mod real_protos;
mod schema_export;
mod unknown_fields;
