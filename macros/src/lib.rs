//! `#[derive(Persistent)]` and `#[derive(Enumeration)]`: a thin shim over the
//! shared model and emitter in `pbpersist-model`. Use them through the
//! `pbpersist` crate, which re-exports both; their documentation there is the
//! reference of every attribute.
#![warn(missing_docs)]

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

#[doc = include_str!("../doc/persistent.md")]
#[proc_macro_derive(Persistent, attributes(pbpersist))]
pub fn derive_persistent(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match pbpersist_model::parse::message(&input) {
        Ok(model) => pbpersist_model::emit::message(&model).into(),
        Err(e) => {
            let krate = pbpersist_model::parse::crate_path(&input);
            let mut out = e.to_compile_error();
            out.extend(pbpersist_model::emit::fallback::message(&input, krate.as_ref()));
            out.into()
        }
    }
}

#[doc = include_str!("../doc/enumeration.md")]
#[proc_macro_derive(Enumeration, attributes(pbpersist))]
pub fn derive_enumeration(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match pbpersist_model::parse::enumeration(&input) {
        Ok(model) => pbpersist_model::emit::enumeration(&model).into(),
        Err(e) => {
            let krate = pbpersist_model::parse::crate_path(&input);
            let mut out = e.to_compile_error();
            out.extend(pbpersist_model::emit::fallback::enumeration(&input, krate.as_ref()));
            out.into()
        }
    }
}
