//! `#[derive(Persistent)]` and `#[derive(Enumeration)]`: a thin shim over the
//! shared model and emitter in `pbpersist-model`. Use them through the
//! `pbpersist` crate, which re-exports both.
#![warn(missing_docs)]

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Makes an annotated struct a persistent protobuf message: accessors with
/// change tracking, defaults, encoding that keeps unknown fields, and the
/// `pbpersist::Persistent` impl.
#[proc_macro_derive(Persistent, attributes(pbpersist))]
pub fn derive_persistent(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match pbpersist_model::parse::message(&input) {
        Ok(model) => pbpersist_model::emit::message(&model).into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// Makes a fieldless enum with explicit numbers a protobuf enum.
#[proc_macro_derive(Enumeration, attributes(pbpersist))]
pub fn derive_enumeration(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match pbpersist_model::parse::enumeration(&input) {
        Ok(model) => pbpersist_model::emit::enumeration(&model).into(),
        Err(e) => e.to_compile_error().into(),
    }
}
