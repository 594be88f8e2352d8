//! The `prost::Message` impl: encoding in field-number order, decoding that
//! keeps every field this program does not know.

use super::{Ctx, type_path};
use crate::model::*;
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

/// The module whose `encode`/`merge`/`encoded_len` functions handle a value type.
fn module(value: &Value) -> TokenStream {
    match value {
        Value::Scalar(s) => {
            let m = format_ident!("{}", s.proto_name());
            quote!(__pbpersist::__private::prost::encoding::#m)
        }
        Value::Message(_) => quote!(__pbpersist::__private::wire::message),
        Value::Ref(_) => quote!(__pbpersist::__private::prost::encoding::message),
        Value::Enum(_) => quote!(__pbpersist::__private::wire::enumeration),
    }
}

/// The module that reads and measures a field (prost's, or pbpersist's for
/// messages and enums) and the one whose `encode` writes a single field:
/// pbpersist's own writers, which write a small field number's key as one
/// constant byte. Groups use prost's for both.
fn modules(value: &Value, group: bool) -> (TokenStream, TokenStream) {
    if group {
        let g = quote!(__pbpersist::__private::prost::encoding::group);
        return (g.clone(), g);
    }
    let writer = match value {
        Value::Scalar(s) => {
            let m = format_ident!("{}", s.proto_name());
            quote!(__pbpersist::__private::wire::scalar::#m)
        }
        Value::Ref(_) => quote!(__pbpersist::__private::wire::scalar::reference),
        _ => module(value),
    };
    (module(value), writer)
}

/// The expression that is true when an implicit-presence value differs from its default.
fn nonzero(value: &Value, expr: TokenStream) -> TokenStream {
    match value {
        Value::Scalar(Scalar::String | Scalar::Bytes) => quote!(!#expr.is_empty()),
        Value::Enum(_) => quote!(#expr.value() != 0),
        // A function rather than `!=`: with the right side inferred, another
        // crate's `PartialEq<Other> for u32` (serde_json has them) makes
        // the comparison ambiguous.
        _ => quote!(!__pbpersist::__private::is_default(&#expr)),
    }
}

struct Parts {
    min_tag: u32,
    /// What writes the field, by field number: one piece, or one per oneof
    /// member when other fields' numbers fall between the members'.
    encode: Vec<(u32, TokenStream)>,
    merge: TokenStream,
    len: TokenStream,
}

pub(crate) fn message(ctx: &Ctx<'_>) -> TokenStream {
    let msg = ctx.msg;
    let ident = &msg.ident;
    let meta = &msg.meta;
    let rust_name = ident.to_string();
    let plain_tags: Vec<u32> = msg
        .fields
        .iter()
        .filter_map(|f| match &f.kind {
            FieldKind::Single(s) => Some(s.tag),
            FieldKind::Map { tag, .. } => Some(*tag),
            FieldKind::Oneof { .. } => None,
        })
        .collect();
    let mut parts: Vec<Parts> = msg.fields.iter().map(|f| field(f, meta, &rust_name, &plain_tags)).collect();
    parts.sort_by_key(|p| p.min_tag);
    // Known fields go out in field-number order, as Google's runtimes write them.
    let mut pieces: Vec<&(u32, TokenStream)> = parts.iter().flat_map(|p| &p.encode).collect();
    pieces.sort_by_key(|(tag, _)| *tag);
    let encode = pieces.into_iter().map(|(_, e)| e);
    let merge = parts.iter().map(|p| &p.merge);
    let len = parts.iter().map(|p| &p.len);
    let read = if parts.is_empty() {
        quote!(::core::result::Result::Ok(false))
    } else {
        quote! {
            match tag {
                #(#merge)*
                _ => return ::core::result::Result::Ok(false),
            }
            .map(|()| true)
        }
    };
    quote! {
        impl #ident {
            /// Reads one field this type knows; `Ok(false)` for any other
            /// field number, which the caller keeps as an unknown field. The
            /// decode loop and `merge_field` share it, so each field read
            /// dispatches on its number once.
            #[allow(unused_variables)]
            #[inline(always)]
            fn __pbpersist_merge_known(
                &mut self,
                tag: u32,
                wire_type: __pbpersist::__private::prost::encoding::WireType,
                buf: &mut impl __pbpersist::__private::bytes::Buf,
                ctx: __pbpersist::__private::prost::encoding::DecodeContext,
            ) -> ::core::result::Result<bool, __pbpersist::__private::prost::DecodeError> {
                #read
            }
        }

        impl __pbpersist::__private::prost::Message for #ident {
            #[allow(unused_variables)]
            fn encode_raw(&self, buf: &mut impl __pbpersist::__private::bytes::BufMut) {
                #(#encode)*
                __pbpersist::__private::wire::encode_unknown(&self.#meta, buf);
            }

            fn merge_field(
                &mut self,
                tag: u32,
                wire_type: __pbpersist::__private::prost::encoding::WireType,
                buf: &mut impl __pbpersist::__private::bytes::Buf,
                ctx: __pbpersist::__private::prost::encoding::DecodeContext,
            ) -> ::core::result::Result<(), __pbpersist::__private::prost::DecodeError> {
                if self.__pbpersist_merge_known(tag, wire_type, buf, ctx.clone())? {
                    ::core::result::Result::Ok(())
                } else {
                    __pbpersist::__private::wire::merge_unknown(&mut self.#meta, tag, wire_type, buf, ctx)
                }
            }

            fn merge(
                &mut self,
                buf: impl __pbpersist::__private::bytes::Buf,
            ) -> ::core::result::Result<(), __pbpersist::__private::prost::DecodeError> {
                __pbpersist::__private::wire::merge_message(self, buf, |msg, tag, wire_type, buf, ctx| {
                    msg.__pbpersist_merge_known(tag, wire_type, buf, ctx)
                })
            }

            fn encoded_len(&self) -> usize {
                self.#meta.remember_len(0 #(+ #len)* + self.#meta.unknown_fields().len())
            }

            fn clear(&mut self) {
                *self = ::core::default::Default::default();
            }
        }
    }
}

fn repeated_merge(s: &Single, m: &TokenStream, meta: &Ident, id: &Ident) -> TokenStream {
    let tag = s.tag;
    match s.value {
        Value::Enum(_) => {
            quote!(__pbpersist::__private::wire::enumeration::merge_repeated_closed(
                &mut self.#meta, #tag, wire_type, &mut self.#id, buf, ctx,
            ))
        }
        _ if s.group => quote!(#m::merge_repeated(#tag, wire_type, &mut self.#id, buf, ctx)),
        _ => quote!(#m::merge_repeated(wire_type, &mut self.#id, buf, ctx)),
    }
}

/// Counts a level of message nesting against the configured depth limit.
fn depth_checked(value: &Value, merge: TokenStream) -> TokenStream {
    match value {
        Value::Message(_) => quote!(__pbpersist::__private::wire::nested(|| #merge)),
        _ => merge,
    }
}

fn with_context(expr: TokenStream, message: &str, field: &str) -> TokenStream {
    quote! {
        #expr.map_err(|mut error| { error.push(#message, #field); error })
    }
}

fn field(f: &Field, meta: &Ident, rust_name: &str, plain_tags: &[u32]) -> Parts {
    let id = &f.ident;
    let fname = f.ident.to_string();
    match &f.kind {
        FieldKind::Single(s) => single(id, s, meta, rust_name, &fname),
        FieldKind::Map { tag, key, value } => {
            let km = module(&Value::Scalar(*key));
            let vm = module(value);
            let merge = with_context(
                depth_checked(
                    value,
                    quote!(__pbpersist::__private::prost::encoding::btree_map::merge(
                        #km::merge, #vm::merge, &mut self.#id, buf, ctx,
                    )),
                ),
                rust_name,
                &fname,
            );
            Parts {
                min_tag: *tag,
                encode: vec![(
                    *tag,
                    quote! {
                        __pbpersist::__private::wire::map::encode(
                            #km::encode, #km::encoded_len, #vm::encode, #vm::encoded_len, #tag, &self.#id, buf,
                        );
                    },
                )],
                merge: quote!(#tag => #merge,),
                len: quote! {
                    __pbpersist::__private::wire::map::encoded_len(#km::encoded_len, #vm::encoded_len, #tag, &self.#id)
                },
            }
        }
        FieldKind::Oneof { ty, members } => {
            let low = members.iter().map(|m| m.tag).min().unwrap_or(0);
            let high = members.iter().map(|m| m.tag).max().unwrap_or(0);
            let split = plain_tags.iter().any(|t| (low..high).contains(t));
            oneof(id, ty, members, meta, rust_name, &fname, split)
        }
    }
}

fn single(id: &Ident, s: &Single, meta: &Ident, rust_name: &str, fname: &str) -> Parts {
    let (m, e) = modules(&s.value, s.group);
    // Groups repeat their tag when read, to match the end-group marker.
    let tag = s.tag;
    let tag_arg = s.group.then(|| quote!(#tag,));
    let deref = s.boxed.then(|| quote!(&**));
    let (encode, merge, len) = match s.label {
        Label::Optional | Label::Required => (
            quote! {
                if let ::core::option::Option::Some(v) = &self.#id { #e::encode(#tag, #deref v, buf); }
            },
            match s.value {
                Value::Enum(_) => {
                    quote!(__pbpersist::__private::wire::enumeration::merge_optional(
                        &mut self.#meta, #tag, wire_type, &mut self.#id, buf, ctx,
                    ))
                }
                _ => {
                    quote!(#m::merge(
                        #tag_arg wire_type, self.#id.get_or_insert_with(::core::default::Default::default), buf, ctx,
                    ))
                }
            },
            quote!(self.#id.as_ref().map_or(0, |v| #m::encoded_len(#tag, v))),
        ),
        Label::Implicit => {
            let nz = nonzero(&s.value, quote!(self.#id));
            (
                quote!(if #nz { #e::encode(#tag, &self.#id, buf); }),
                quote!(#m::merge(wire_type, &mut self.#id, buf, ctx)),
                quote!(if #nz { #m::encoded_len(#tag, &self.#id) } else { 0 }),
            )
        }
        Label::Repeated if s.packed => (
            quote!(#m::encode_packed(#tag, &self.#id, buf);),
            repeated_merge(s, &m, meta, id),
            quote!(#m::encoded_len_packed(#tag, &self.#id)),
        ),
        Label::Repeated => (
            quote!(#m::encode_repeated(#tag, &self.#id, buf);),
            repeated_merge(s, &m, meta, id),
            quote!(#m::encoded_len_repeated(#tag, &self.#id)),
        ),
    };
    let merge = with_context(depth_checked(&s.value, merge), rust_name, fname);
    Parts { min_tag: tag, encode: vec![(tag, encode)], merge: quote!(#tag => #merge,), len }
}

/// A oneof's parts; with `split`, one encode piece per member, so that each
/// member goes out in number order among fields numbered between them.
fn oneof(
    id: &Ident,
    ty: &syn::Type,
    members: &[Member],
    meta: &Ident,
    rust_name: &str,
    fname: &str,
    split: bool,
) -> Parts {
    let path = type_path(ty);
    let mut encode_arms = Vec::new();
    let mut len_arms = Vec::new();
    let mut merge_arms = Vec::new();
    for mem in members {
        let (m, e) = modules(&mem.value, mem.group);
        let tag = mem.tag;
        let tag_arg = mem.group.then(|| quote!(#tag,));
        let variant = &mem.variant;
        let deref = mem.boxed.then(|| quote!(&**));
        encode_arms
            .push((tag, quote!(::core::option::Option::Some(#path::#variant(v)) => #e::encode(#tag, #deref v, buf),)));
        len_arms.push(quote!(::core::option::Option::Some(#path::#variant(v)) => #m::encoded_len(#tag, v),));
        let merge = if matches!(mem.value, Value::Enum(_)) {
            // A closed enum's unknown number goes to the unknown fields, not the oneof.
            quote! {{
                let mut v = ::core::option::Option::None;
                __pbpersist::__private::wire::enumeration::merge_optional(
                    &mut self.#meta, #tag, wire_type, &mut v, buf, ctx,
                )
                .map(|()| {
                        if let ::core::option::Option::Some(v) = v {
                            self.#id = ::core::option::Option::Some(#path::#variant(v))
                        }
                    })
            }}
        } else {
            quote! {
                match &mut self.#id {
                    ::core::option::Option::Some(#path::#variant(v)) => #m::merge(#tag_arg wire_type, v, buf, ctx),
                    _ => {
                        let mut v = ::core::default::Default::default();
                        #m::merge(#tag_arg wire_type, &mut v, buf, ctx)
                            .map(|()| self.#id = ::core::option::Option::Some(#path::#variant(v)))
                    }
                }
            }
        };
        let merge = with_context(depth_checked(&mem.value, quote!((#merge))), rust_name, fname);
        merge_arms.push(quote!(#tag => #merge,));
    }
    let min_tag = members.iter().map(|m| m.tag).min().unwrap_or(0);
    let encode = if split {
        encode_arms.into_iter().map(|(tag, arm)| (tag, quote!(match &self.#id { #arm _ => {} }))).collect()
    } else {
        let arms = encode_arms.into_iter().map(|(_, arm)| arm);
        vec![(min_tag, quote!(match &self.#id { #(#arms)* ::core::option::Option::None => {} }))]
    };
    Parts {
        min_tag,
        encode,
        merge: quote!(#(#merge_arms)*),
        len: quote!(match &self.#id { #(#len_arms)* ::core::option::Option::None => 0 }),
    }
}
