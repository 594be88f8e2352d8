//! The secondary index of each indexed field: an associated constant
//! (`Tower::BY_NAME`), registered for the whole program so that every
//! commit keeps it current.

use super::Ctx;
use crate::model::*;
use heck::ToShoutySnakeCase;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// The constants, for the message's inherent impl, and their registrations.
pub(super) fn indexes(ctx: &Ctx<'_>) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let msg = ctx.msg;
    let ident = &msg.ident;
    let mut consts = Vec::new();
    let mut registrations = Vec::new();
    for f in &msg.fields {
        let FieldKind::Single(s) = &f.kind else { continue };
        let Some(spec) = s.index else { continue };
        let Some((key, convert)) = key(&s.value) else { continue };
        let id = &f.ident;
        let name = format!("{}.{}", msg.full_name, f.name);
        let constant = format_ident!("BY_{}", f.name.to_shouty_snake_case());
        let keys = match s.label {
            Label::Implicit => quote!({
                let v = &m.#id;
                ::std::vec![#convert]
            }),
            Label::Optional | Label::Required | Label::Repeated => {
                quote!(m.#id.iter().map(|v| #convert).collect())
            }
        };
        let unique = spec.unique.then(|| quote!(.unique()));
        let doc = format!(
            " The objects of this message by `{}`{} (`(pbpersist.index)`): queries in `pbpersist::index::Index`.",
            f.name,
            if spec.unique { ", one object per value" } else { "" }
        );
        consts.push(quote! {
            #[doc = #doc]
            pub const #constant: __pbpersist::index::Index<#ident, #key> =
                __pbpersist::index::Index::new(#name, |m: &#ident| -> ::std::vec::Vec<#key> { #keys }) #unique;
        });
        registrations.push(quote! {
            __pbpersist::__private::inventory::submit! {
                __pbpersist::index::Registered(&#ident::#constant)
            }
        });
    }
    for index in &msg.indexes {
        let parts = index.parts();
        let mut types = Vec::new();
        let mut lists = Vec::new();
        let vars: Vec<_> = (0..parts.len()).map(|i| format_ident!("k{i}")).collect();
        for ((path, kind), var) in parts.iter().zip(&vars) {
            let (name, inner) = match path.split_once('.') {
                Some((outer, inner)) => (outer, Some(inner)),
                None => (*path, None),
            };
            let Some((f, s)) = msg.fields.iter().find(|f| f.name == name).and_then(|f| match &f.kind {
                FieldKind::Single(s) => Some((f, s)),
                _ => None,
            }) else {
                break;
            };
            let id = &f.ident;
            let list = match (inner, kind.and_then(key_scalar)) {
                (None, _) => {
                    let Some((ty, convert)) = key(&s.value) else { break };
                    let list = match s.label {
                        Label::Implicit => quote!({
                            let v = &m.#id;
                            ::std::vec![#convert]
                        }),
                        _ => quote!(m.#id.iter().map(|v| #convert).collect()),
                    };
                    types.push(ty.clone());
                    quote!(let #var: ::std::vec::Vec<#ty> = #list;)
                }
                (Some(inner), Some(scalar)) => {
                    let Some((ty, _)) = key(&Value::Scalar(scalar)) else { break };
                    let inner = syn::parse_str::<syn::Ident>(inner)
                        .unwrap_or_else(|_| syn::Ident::new_raw(inner, proc_macro2::Span::call_site()));
                    let values = quote!(__pbpersist::index::KeyValues::<#ty>::key_values);
                    let list = match s.label {
                        Label::Implicit => quote!(#values(&m.#id.#inner)),
                        _ => quote!(m.#id.as_ref().map(|e| #values(&e.#inner)).unwrap_or_default()),
                    };
                    types.push(ty.clone());
                    quote!(let #var: ::std::vec::Vec<#ty> = #list;)
                }
                (Some(_), None) => break,
            };
            lists.push(list);
        }
        if lists.len() != parts.len() {
            // Refused when parsed; nothing to emit.
            continue;
        }
        let key = if types.len() == 1 { types[0].clone() } else { quote!((#(#types),*)) };
        // A field without a value leaves the object out: the loops run zero times.
        let mut tuple = quote!(out.push((#(::core::clone::Clone::clone(#vars)),*)););
        for var in vars.iter().rev() {
            tuple = quote!(for #var in &#var { #tuple });
        }
        let name = format!("{}.{}", msg.full_name, index.suffix());
        let constant = format_ident!(
            "BY_{}",
            parts.iter().map(|(p, _)| p.replace('.', "_").to_shouty_snake_case()).collect::<Vec<_>>().join("_AND_")
        );
        let unique = index.unique.then(|| quote!(.unique()));
        let doc = format!(
            " The objects of this message by {} (`(pbpersist.composite_index)`){}.",
            parts.iter().map(|(p, _)| format!("`{p}`")).collect::<Vec<_>>().join(", then "),
            if index.unique { ", one object per key" } else { "" }
        );
        consts.push(quote! {
            #[doc = #doc]
            pub const #constant: __pbpersist::index::Index<#ident, #key> =
                __pbpersist::index::Index::new(#name, |m: &#ident| -> ::std::vec::Vec<#key> {
                    #(#lists)*
                    let mut out = ::std::vec::Vec::new();
                    #tuple
                    out
                }) #unique;
        });
        registrations.push(quote! {
            __pbpersist::__private::inventory::submit! {
                __pbpersist::index::Registered(&#ident::#constant)
            }
        });
    }
    if msg.extent {
        let name = format!("{}.extent", msg.full_name);
        let doc = " Every object of this message, in oid order (`(pbpersist.extent)`).";
        consts.push(quote! {
            #[doc = #doc]
            pub const EXTENT: __pbpersist::index::Index<#ident, ()> =
                __pbpersist::index::Index::new(#name, |_: &#ident| ::std::vec![()]);
        });
        registrations.push(quote! {
            __pbpersist::__private::inventory::submit! {
                __pbpersist::index::Registered(&#ident::EXTENT)
            }
        });
    }
    (consts, registrations)
}

/// The key type of an index of values of this type, and the expression
/// that makes a key of `v: &T`.
fn key(value: &Value) -> Option<(TokenStream, TokenStream)> {
    Some(match value {
        Value::Scalar(s) => match s {
            Scalar::Int32 | Scalar::Sint32 | Scalar::Sfixed32 => (quote!(i32), quote!(*v)),
            Scalar::Int64 | Scalar::Sint64 | Scalar::Sfixed64 => (quote!(i64), quote!(*v)),
            Scalar::Uint32 | Scalar::Fixed32 => (quote!(u32), quote!(*v)),
            Scalar::Uint64 | Scalar::Fixed64 => (quote!(u64), quote!(*v)),
            Scalar::Bool => (quote!(bool), quote!(*v)),
            Scalar::String => (quote!(::std::string::String), quote!(::core::clone::Clone::clone(v))),
            Scalar::Bytes => (quote!(::std::vec::Vec<u8>), quote!(v.to_vec())),
            Scalar::Double | Scalar::Float => return None,
        },
        Value::Enum(_) => (quote!(i32), quote!(v.value())),
        Value::Ref(_) => (quote!(u64), quote!(v.oid().0)),
        Value::Message(_) => return None,
    })
}
