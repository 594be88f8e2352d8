//! Prints the model as plain Rust items annotated for `#[derive(Persistent)]`.
//!
//! The items carry no impls: the derive writes those, so code generated from a
//! `.proto` file and a hand-written struct go through the same emitter.

use crate::model::*;
use crate::types::{field_type, krate, value_type};
use heck::ToUpperCamelCase;
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

/// The struct for a message, with its derive and field attributes.
pub fn message(msg: &Message) -> TokenStream {
    let krate = krate(msg.krate.as_ref());
    let ident = &msg.ident;
    let full_name = &msg.full_name;
    let top_docs = docs(&msg.docs, msg.deprecated);
    let meta = &msg.meta;
    let resolver = msg.resolver.as_ref().map(|r| quote!(, resolve_conflicts = #r));
    let former = msg.former_names.iter().map(|n| quote!(, former_name = #n));
    let package = msg.package.as_ref().map(|p| quote!(, package = #p));
    let crate_option = crate_option(msg.krate.as_ref());
    let indexes = msg.indexes.iter().map(|i| {
        let fields = &i.fields;
        let unique = i.unique.then(|| quote!(, unique));
        quote!(, index(fields(#(#fields),*) #unique))
    });
    let extent = msg.extent.then(|| quote!(, extent));
    let fields = msg.fields.iter().map(|f| {
        let ident = &f.ident;
        let ty = field_type(f, &krate);
        let attr = field_attr(f);
        let docs = docs(&f.docs, f.deprecated);
        quote! { #docs #attr #ident: #ty, }
    });
    quote! {
        #top_docs
        #[derive(Clone, PartialEq, #krate::Persistent)]
        #[pbpersist(message = #full_name #package #(#former)* #resolver #crate_option #(#indexes)* #extent)]
        pub struct #ident {
            #(#fields)*
            #[pbpersist(meta)]
            #meta: #krate::Meta,
        }
    }
}

/// The enum that holds the set member of a oneof.
pub fn oneof_enum(
    ident: &proc_macro2::Ident,
    name: &str,
    members: &[Member],
    krate: Option<&syn::Path>,
) -> TokenStream {
    let krate = crate::types::krate(krate);
    let doc = format!(" The members of the `{name}` oneof.");
    let variants = members.iter().map(|m| {
        let variant = &m.variant;
        let ty = value_type(&m.value, m.boxed, &krate);
        let docs = docs(&m.docs, m.deprecated);
        quote! { #docs #variant(#ty), }
    });
    quote! {
        #[doc = #doc]
        #[derive(Clone, PartialEq, Debug)]
        pub enum #ident { #(#variants)* }
    }
}

/// The constant of an extension field.
pub fn extension(e: &Extension) -> TokenStream {
    let krate = krate(e.krate.as_ref());
    let (ident, name, extendee) = (&e.ident, &e.full_name, &e.extendee);
    let number = proc_macro2::Literal::u32_unsuffixed(e.number);
    let element = match &e.value {
        Value::Scalar(Scalar::String) => quote!(#krate::extension::Str),
        Value::Scalar(s) => {
            let codec = quote::format_ident!("{}", heck::ToUpperCamelCase::to_upper_camel_case(s.proto_name()));
            quote!(#krate::extension::#codec)
        }
        Value::Enum(ty) => quote!(#krate::extension::Enum<#ty>),
        Value::Message(ty) if e.group => quote!(#krate::extension::Group<#ty>),
        Value::Message(ty) | Value::Ref(ty) => quote!(#krate::extension::Message<#ty>),
    };
    let codec = match (e.repeated, e.packed) {
        (false, _) => element,
        (true, false) => quote!(#krate::extension::Repeated<#element>),
        (true, true) => quote!(#krate::extension::Packed<#element>),
    };
    let mut lines = e.docs.clone();
    if !lines.is_empty() {
        lines.push(String::new());
    }
    lines.push(format!(
        "The `{name}` extension (field {}): read and write it with `pbpersist::extension::Extendable`.",
        e.number
    ));
    let docs = docs(&lines, false);
    let extension = quote!(#krate::extension::Extension);
    quote! {
        #docs
        pub const #ident: #extension<#extendee, #codec> = #extension::new(#name, #number);
    }
}

/// The Rust enum for a protobuf enum.
pub fn enumeration(e: &Enum) -> TokenStream {
    let krate = krate(e.krate.as_ref());
    let crate_option = crate_option(e.krate.as_ref());
    let ident = &e.ident;
    let full_name = &e.full_name;
    let top_docs = docs(&e.docs, e.deprecated);
    let variants = e.variants.iter().map(|v| {
        let ident = &v.ident;
        let name = &v.name;
        let number = Literal::i32_unsuffixed(v.number);
        let docs = docs(&v.docs, v.deprecated);
        quote! { #docs #[pbpersist(name = #name)] #ident = #number, }
    });
    let closed = e.closed.then(|| quote!(, closed));
    let package = e.package.as_ref().map(|p| quote!(, package = #p));
    let aliases = e.aliases.iter().map(|a| {
        let (ident, name, variant) = (a.ident.to_string(), &a.name, a.variant.to_string());
        quote!(, alias(ident = #ident, name = #name, variant = #variant))
    });
    quote! {
        #top_docs
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, #krate::Enumeration)]
        #[pbpersist(enumeration = #full_name #package #closed #(#aliases)* #crate_option)]
        #[repr(i32)]
        pub enum #ident { #(#variants)* }
    }
}

/// `, crate = "..."` when the runtime has another path.
fn crate_option(path: Option<&syn::Path>) -> Option<TokenStream> {
    path.map(|p| {
        let s = quote!(#p).to_string().replace(' ', "");
        quote!(, crate = #s)
    })
}

fn field_attr(field: &Field) -> TokenStream {
    let mut items = Vec::new();
    let unraw = field.ident.to_string().trim_start_matches("r#").to_owned();
    match &field.kind {
        FieldKind::Single(s) => {
            let tag = Literal::u32_unsuffixed(s.tag);
            items.push(quote!(tag = #tag));
            match s.label {
                Label::Optional => items.push(quote!(optional)),
                Label::Required => items.push(quote!(required)),
                Label::Repeated => items.push(quote!(repeated)),
                Label::Implicit => {}
            }
            items.push(if s.group { quote!(group) } else { value_word(&s.value) });
            if let Some(d) = &s.default {
                let lit = default_tokens(d);
                items.push(quote!(default = #lit));
            }
            if s.boxed {
                items.push(quote!(boxed));
            }
            if s.packed {
                items.push(quote!(packed));
            }
            match s.index {
                Some(IndexSpec { unique: true }) => items.push(quote!(index(unique))),
                Some(IndexSpec { unique: false }) => items.push(quote!(index)),
                None => {}
            }
        }
        FieldKind::Map { tag, key, value } => {
            let tag = Literal::u32_unsuffixed(*tag);
            let key = format_ident!("{}", key.proto_name());
            let value = value_word(value);
            items.push(quote!(tag = #tag));
            items.push(quote!(map(#key, #value)));
        }
        FieldKind::Oneof { members, .. } => {
            let members = members.iter().map(|m| {
                let name = &m.name;
                let tag = Literal::u32_unsuffixed(m.tag);
                let mut parts = vec![quote!(name = #name), quote!(tag = #tag)];
                if m.variant != m.name.to_upper_camel_case() {
                    let v = m.variant.to_string();
                    parts.push(quote!(variant = #v));
                }
                parts.push(match &m.value {
                    Value::Scalar(s) => {
                        let s = format_ident!("{}", s.proto_name());
                        quote!(#s)
                    }
                    Value::Message(ty) if m.group => type_string("group", ty),
                    Value::Message(ty) => type_string("message", ty),
                    Value::Enum(ty) => type_string("enumeration", ty),
                    Value::Ref(ty) => type_string("reference", ty),
                });
                if m.boxed {
                    parts.push(quote!(boxed));
                }
                quote!(member(#(#parts),*))
            });
            items.push(quote!(oneof(#(#members),*)));
        }
    }
    if unraw != field.name {
        let name = &field.name;
        items.push(quote!(name = #name));
    }
    quote!(#[pbpersist(#(#items),*)])
}

fn type_string(word: &str, ty: &syn::Type) -> TokenStream {
    let word = format_ident!("{word}");
    let s = quote!(#ty).to_string().replace(' ', "");
    quote!(#word = #s)
}

fn value_word(value: &Value) -> TokenStream {
    match value {
        Value::Scalar(s) => {
            let s = format_ident!("{}", s.proto_name());
            quote!(#s)
        }
        Value::Message(_) => quote!(message),
        Value::Enum(_) => quote!(enumeration),
        Value::Ref(_) => quote!(reference),
    }
}

/// The attribute form of a default value.
pub fn default_tokens(d: &DefaultValue) -> TokenStream {
    match d {
        DefaultValue::Int(i) if *i < 0 => {
            let lit = Literal::u128_unsuffixed(i.unsigned_abs());
            quote!(-#lit)
        }
        DefaultValue::Int(i) => {
            let lit = Literal::u128_unsuffixed(*i as u128);
            quote!(#lit)
        }
        DefaultValue::Float(f) if f.is_nan() => quote!("nan"),
        DefaultValue::Float(f) if f.is_infinite() && *f > 0.0 => quote!("inf"),
        DefaultValue::Float(f) if f.is_infinite() => quote!("-inf"),
        DefaultValue::Float(f) if *f < 0.0 || (*f == 0.0 && f.is_sign_negative()) => {
            let lit = Literal::f64_unsuffixed(-*f);
            quote!(-#lit)
        }
        DefaultValue::Float(f) => {
            let lit = Literal::f64_unsuffixed(*f);
            quote!(#lit)
        }
        DefaultValue::Bool(b) => quote!(#b),
        DefaultValue::Str(s) => quote!(#s),
        DefaultValue::Bytes(b) => {
            let lit = Literal::byte_string(b);
            quote!(#lit)
        }
    }
}

fn docs(lines: &[String], deprecated: bool) -> TokenStream {
    let lines = lines.iter().map(|l| {
        let l = format!(" {l}");
        quote!(#[doc = #l])
    });
    let dep = deprecated.then(|| quote!(#[deprecated]));
    quote!(#(#lines)* #dep)
}
