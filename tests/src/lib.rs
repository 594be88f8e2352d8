//! Generated types for the integration tests.

/// The example schema.
pub mod demo {
    pbpersist::include_proto!("demo");
}

/// Two versions of a message, for schema-evolution tests.
pub mod evolution {
    pbpersist::include_proto!("evolution");
}
