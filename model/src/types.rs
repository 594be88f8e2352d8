//! The Rust types the model's fields map to and the runtime's path: what
//! the printer writes in struct fields and the emitter in generated code,
//! kept below both so that neither depends on the other.

use crate::model::*;
use proc_macro2::TokenStream;
use quote::quote;

/// The path of the runtime crate: `::pbpersist` unless the item names another.
pub fn krate(path: Option<&syn::Path>) -> TokenStream {
    match path {
        Some(p) => quote!(#p),
        None => quote!(::pbpersist),
    }
}

/// The Rust type of a struct field; `krate` is the runtime's path.
pub fn field_type(field: &Field, krate: &TokenStream) -> TokenStream {
    match &field.kind {
        FieldKind::Single(s) => {
            let elem = value_type(&s.value, s.boxed && s.label != Label::Repeated, krate);
            match s.label {
                Label::Optional | Label::Required => quote!(::core::option::Option<#elem>),
                Label::Implicit => elem,
                Label::Repeated => quote!(::std::vec::Vec<#elem>),
            }
        }
        FieldKind::Map { key, value, .. } => {
            let key = scalar_type(*key);
            let value = value_type(value, false, krate);
            quote!(::std::collections::BTreeMap<#key, #value>)
        }
        FieldKind::Oneof { ty, .. } => quote!(::core::option::Option<#ty>),
    }
}

/// The Rust type of one value; `krate` is the runtime's path.
pub fn value_type(value: &Value, boxed: bool, krate: &TokenStream) -> TokenStream {
    match value {
        Value::Scalar(s) => scalar_type(*s),
        Value::Message(ty) if boxed => quote!(::std::boxed::Box<#ty>),
        Value::Message(ty) => quote!(#ty),
        Value::Enum(ty) => quote!(#krate::EnumValue<#ty>),
        Value::Ref(ty) => quote!(#krate::Ref<#ty>),
    }
}

/// The Rust type of a scalar.
pub fn scalar_type(s: Scalar) -> TokenStream {
    s.rust_type().parse().expect("scalar type names are valid Rust")
}
