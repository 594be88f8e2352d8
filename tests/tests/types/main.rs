//! The types programs use: the API of generated types, and hand-written types
//! with `#[derive(Persistent)]` giving the same code. One test binary, since
//! linking dominates on two cores.

mod derive;
mod generated_api;
