//! Encoding and decoding: generated types against prost's types for the same
//! schemas (proptests), every corpus message round-tripping, and the coverage
//! of each construct. One test binary, since linking dominates on two cores.

mod coverage;
mod round_trips;
mod wire_compat;
