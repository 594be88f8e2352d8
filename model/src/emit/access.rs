//! Typed accessors: getters read defaults and never mark anything; setters,
//! `clear_` and `_mut` mark the field changed.

use super::{Ctx, type_path};
use crate::model::*;
use crate::types::{scalar_type, value_type};
use proc_macro2::{Literal, TokenStream};
use quote::quote;

pub(crate) fn field(ctx: &Ctx<'_>, field: &Field, bit: usize) -> TokenStream {
    let docs = field.docs.iter().map(|l| {
        let l = format!(" {l}");
        quote!(#[doc = #l])
    });
    let docs = if field.docs.is_empty() {
        let line = format!(" Accessor of the `{}` field.", field.name);
        quote!(#[doc = #line])
    } else {
        quote!(#(#docs)*)
    };
    let dep = field.deprecated.then(|| quote!(#[deprecated]));
    let body = match &field.kind {
        FieldKind::Single(s) => match s.label {
            Label::Repeated => repeated(ctx, field, s, bit),
            Label::Implicit => implicit(ctx, field, s, bit),
            Label::Optional | Label::Required => present(ctx, field, s, bit),
        },
        FieldKind::Map { key, value, .. } => map(ctx, field, *key, value, bit),
        FieldKind::Oneof { ty, members } => oneof(ctx, field, ty, members, bit),
    };
    // Every accessor of the field gets its docs and deprecation.
    let mut out = TokenStream::new();
    for item in body {
        out.extend(quote!(#docs #dep #item));
    }
    out
}

/// The value a getter returns when the field is unset.
fn default_expr(value: &Value, default: Option<&DefaultValue>) -> TokenStream {
    match value {
        Value::Scalar(s) => scalar_default(*s, default),
        Value::Enum(ty) => match default {
            Some(DefaultValue::Int(n)) => {
                let n = Literal::i32_unsuffixed(*n as i32);
                quote!(<#ty as __pbpersist::Enumeration>::from_i32(#n).unwrap_or_default())
            }
            _ => quote!(<#ty as ::core::default::Default>::default()),
        },
        Value::Message(ty) => quote!(<#ty as __pbpersist::Persistent>::default_instance()),
        Value::Ref(_) => quote!(::core::option::Option::None),
    }
}

fn scalar_default(s: Scalar, default: Option<&DefaultValue>) -> TokenStream {
    match (s, default) {
        (Scalar::String, Some(DefaultValue::Str(v))) => quote!(#v),
        (Scalar::String, _) => quote!(""),
        (Scalar::Bytes, Some(DefaultValue::Bytes(b))) => {
            let lit = Literal::byte_string(b);
            quote!(&#lit[..])
        }
        (Scalar::Bytes, _) => quote!(&[][..]),
        (Scalar::Bool, Some(DefaultValue::Bool(b))) => quote!(#b),
        (Scalar::Bool, _) => quote!(false),
        (Scalar::Float | Scalar::Double, d) => {
            let f = match d {
                Some(DefaultValue::Float(f)) => *f,
                Some(DefaultValue::Int(i)) => *i as f64,
                _ => 0.0,
            };
            let ty = if s == Scalar::Float { quote!(f32) } else { quote!(f64) };
            if f.is_nan() {
                quote!(#ty::NAN)
            } else if f.is_infinite() && f > 0.0 {
                quote!(#ty::INFINITY)
            } else if f.is_infinite() {
                quote!(#ty::NEG_INFINITY)
            } else if s == Scalar::Float {
                let lit = Literal::f32_suffixed(f as f32);
                quote!(#lit)
            } else {
                let lit = Literal::f64_suffixed(f);
                quote!(#lit)
            }
        }
        (s, d) => {
            let i = match d {
                Some(DefaultValue::Int(i)) => *i,
                _ => 0,
            };
            match s.rust_type() {
                "i32" => paren(Literal::i32_suffixed(i as i32)),
                "i64" => paren(Literal::i64_suffixed(i as i64)),
                "u32" => paren(Literal::u32_suffixed(i as u32)),
                _ => paren(Literal::u64_suffixed(i as u64)),
            }
        }
    }
}

/// A negative literal needs parentheses to stay one expression.
fn paren(lit: Literal) -> TokenStream {
    quote!((#lit))
}

/// Accessors of a field with explicit presence (`Option<T>`).
fn present(ctx: &Ctx<'_>, field: &Field, s: &Single, bit: usize) -> Vec<TokenStream> {
    let id = &field.ident;
    let has = ctx.name(id, "has_", "");
    let set = ctx.name(id, "set_", "");
    let clear = ctx.name(id, "clear_", "");
    let opt = ctx.name(id, "", "_opt");
    let mutf = ctx.name(id, "", "_mut");
    let mark = ctx.mark(bit);
    let default = default_expr(&s.value, s.default.as_ref());
    let mut out = vec![
        quote! {
            #[doc = " Whether the field is set."]
            #[inline]
            pub fn #has(&self) -> bool { self.#id.is_some() }
        },
        quote! {
            #[inline]
            pub fn #clear(&mut self) { self.#id = ::core::option::Option::None; #mark; }
        },
    ];
    match &s.value {
        Value::Scalar(sc) if sc.is_copy() => {
            let ty = scalar_type(*sc);
            out.push(quote! {
                #[inline]
                pub fn #id(&self) -> #ty {
                    match self.#id { ::core::option::Option::Some(v) => v, ::core::option::Option::None => #default }
                }
            });
            out.push(quote! {
                #[inline]
                pub fn #opt(&self) -> ::core::option::Option<#ty> { self.#id }
            });
            out.push(quote! {
                #[inline]
                pub fn #set(&mut self, value: #ty) { self.#id = ::core::option::Option::Some(value); #mark; }
            });
        }
        Value::Scalar(sc) => {
            let (view, owned) = if *sc == Scalar::String {
                (quote!(str), quote!(::std::string::String))
            } else {
                (quote!([u8]), quote!(::std::vec::Vec<u8>))
            };
            out.push(quote! {
                #[inline]
                pub fn #id(&self) -> &#view {
                    match &self.#id { ::core::option::Option::Some(v) => v, ::core::option::Option::None => #default }
                }
            });
            out.push(quote! {
                #[inline]
                pub fn #opt(&self) -> ::core::option::Option<&#view> { self.#id.as_deref() }
            });
            out.push(quote! {
                #[inline]
                pub fn #set(&mut self, value: impl ::core::convert::Into<#owned>) {
                    self.#id = ::core::option::Option::Some(value.into());
                    #mark;
                }
            });
            out.push(quote! {
                #[doc = " The value to change in place; an unset field is first set to its default."]
                #[inline]
                pub fn #mutf(&mut self) -> &mut #owned {
                    #mark;
                    self.#id.get_or_insert_with(|| ::core::convert::Into::into(#default))
                }
            });
        }
        Value::Enum(ty) => {
            let raw = ctx.name(id, "", "_raw");
            let n = match s.default {
                Some(DefaultValue::Int(n)) => n as i32,
                _ => i32::MIN,
            };
            let raw_default = if n == i32::MIN {
                quote!(__pbpersist::EnumValue::from(#default))
            } else {
                let n = Literal::i32_unsuffixed(n);
                quote!(__pbpersist::EnumValue::new(#n))
            };
            out.push(quote! {
                #[doc = " The value, or the default when unset or not a value this program knows."]
                #[inline]
                pub fn #id(&self) -> #ty {
                    match self.#id.and_then(|v| v.known()) {
                        ::core::option::Option::Some(v) => v,
                        ::core::option::Option::None => #default,
                    }
                }
            });
            out.push(quote! {
                #[doc = " The stored number, which may be a value this program does not know."]
                #[inline]
                pub fn #raw(&self) -> __pbpersist::EnumValue<#ty> { self.#id.unwrap_or(#raw_default) }
            });
            out.push(quote! {
                #[inline]
                pub fn #set(&mut self, value: #ty) { self.#id = ::core::option::Option::Some(value.into()); #mark; }
            });
        }
        Value::Message(ty) => {
            let boxed = s.boxed;
            let wrap = if boxed { quote!(::std::boxed::Box::new(value)) } else { quote!(value) };
            let deref = if boxed { quote!(&mut **) } else { quote!() };
            out.push(quote! {
                #[doc = " The message, or a default instance when unset."]
                #[inline]
                pub fn #id(&self) -> &#ty {
                    match &self.#id { ::core::option::Option::Some(v) => v, ::core::option::Option::None => #default }
                }
            });
            let view = if boxed { quote!(as_deref) } else { quote!(as_ref) };
            out.push(quote! {
                #[inline]
                pub fn #opt(&self) -> ::core::option::Option<&#ty> { self.#id.#view() }
            });
            out.push(quote! {
                #[inline]
                pub fn #set(&mut self, value: #ty) { self.#id = ::core::option::Option::Some(#wrap); #mark; }
            });
            out.push(quote! {
                #[doc = " The message to change in place; an unset field is first set to an empty message."]
                #[inline]
                pub fn #mutf(&mut self) -> &mut #ty {
                    #mark;
                    #deref self.#id.get_or_insert_with(::core::default::Default::default)
                }
            });
        }
        Value::Ref(ty) => {
            out.push(quote! {
                #[doc = " The reference, if set. Following it is up to the transaction."]
                #[inline]
                pub fn #id(&self) -> ::core::option::Option<__pbpersist::Ref<#ty>> { self.#id }
            });
            out.push(quote! {
                #[inline]
                pub fn #set(&mut self, value: __pbpersist::Ref<#ty>) {
                    self.#id = ::core::option::Option::Some(value);
                    #mark;
                }
            });
        }
    }
    out
}

/// Accessors of a proto3 field without presence (`T`).
fn implicit(ctx: &Ctx<'_>, field: &Field, s: &Single, bit: usize) -> Vec<TokenStream> {
    let id = &field.ident;
    let set = ctx.name(id, "set_", "");
    let clear = ctx.name(id, "clear_", "");
    let mutf = ctx.name(id, "", "_mut");
    let mark = ctx.mark(bit);
    let elem = value_type(&s.value, s.boxed, &quote!(__pbpersist));
    let mut out = vec![quote! {
        #[doc = " Resets the field to its default."]
        #[inline]
        pub fn #clear(&mut self) { self.#id = ::core::default::Default::default(); #mark; }
    }];
    match &s.value {
        Value::Scalar(sc) if sc.is_copy() => {
            out.push(quote!(#[inline] pub fn #id(&self) -> #elem { self.#id }));
            out.push(quote!(#[inline] pub fn #set(&mut self, value: #elem) { self.#id = value; #mark; }));
        }
        Value::Scalar(sc) => {
            let view = if *sc == Scalar::String { quote!(str) } else { quote!([u8]) };
            out.push(quote!(#[inline] pub fn #id(&self) -> &#view { &self.#id }));
            out.push(quote! {
                #[inline]
                pub fn #set(&mut self, value: impl ::core::convert::Into<#elem>) { self.#id = value.into(); #mark; }
            });
            out.push(quote!(#[inline] pub fn #mutf(&mut self) -> &mut #elem { #mark; &mut self.#id }));
        }
        Value::Enum(ty) => {
            let raw = ctx.name(id, "", "_raw");
            out.push(quote! {
                #[doc = " The value, or the default when not a value this program knows."]
                #[inline]
                pub fn #id(&self) -> #ty { self.#id.known().unwrap_or_default() }
            });
            out.push(quote! {
                #[doc = " The stored number, which may be a value this program does not know."]
                #[inline]
                pub fn #raw(&self) -> __pbpersist::EnumValue<#ty> { self.#id }
            });
            out.push(quote!(#[inline] pub fn #set(&mut self, value: #ty) { self.#id = value.into(); #mark; }));
        }
        Value::Message(ty) | Value::Ref(ty) => {
            out.push(quote!(#[inline] pub fn #id(&self) -> &#ty { &self.#id }));
            out.push(quote!(#[inline] pub fn #set(&mut self, value: #ty) { self.#id = value; #mark; }));
            out.push(quote!(#[inline] pub fn #mutf(&mut self) -> &mut #ty { #mark; &mut self.#id }));
        }
    }
    out
}

/// Accessors of a repeated field (`Vec<T>`).
fn repeated(ctx: &Ctx<'_>, field: &Field, s: &Single, bit: usize) -> Vec<TokenStream> {
    let id = &field.ident;
    let set = ctx.name(id, "set_", "");
    let clear = ctx.name(id, "clear_", "");
    let mutf = ctx.name(id, "", "_mut");
    let mark = ctx.mark(bit);
    let elem = value_type(&s.value, false, &quote!(__pbpersist));
    vec![
        quote!(#[inline] pub fn #id(&self) -> &[#elem] { &self.#id }),
        quote! {
            #[doc = " The list to change in place."]
            #[inline]
            pub fn #mutf(&mut self) -> &mut ::std::vec::Vec<#elem> { #mark; &mut self.#id }
        },
        quote! {
            #[inline]
            pub fn #set(&mut self, values: impl ::core::convert::Into<::std::vec::Vec<#elem>>) {
                self.#id = values.into();
                #mark;
            }
        },
        quote!(#[inline] pub fn #clear(&mut self) { self.#id.clear(); #mark; }),
    ]
}

/// Accessors of a map field (`BTreeMap<K, V>`).
fn map(ctx: &Ctx<'_>, field: &Field, key: Scalar, value: &Value, bit: usize) -> Vec<TokenStream> {
    let id = &field.ident;
    let clear = ctx.name(id, "clear_", "");
    let mutf = ctx.name(id, "", "_mut");
    let mark = ctx.mark(bit);
    let k = scalar_type(key);
    let v = value_type(value, false, &quote!(__pbpersist));
    let map = quote!(::std::collections::BTreeMap<#k, #v>);
    vec![
        quote!(#[inline] pub fn #id(&self) -> &#map { &self.#id }),
        quote! {
            #[doc = " The map to change in place."]
            #[inline]
            pub fn #mutf(&mut self) -> &mut #map { #mark; &mut self.#id }
        },
        quote!(#[inline] pub fn #clear(&mut self) { self.#id.clear(); #mark; }),
    ]
}

/// Accessors of a oneof and of each of its members.
fn oneof(ctx: &Ctx<'_>, field: &Field, ty: &syn::Type, members: &[Member], first_bit: usize) -> Vec<TokenStream> {
    let id = &field.ident;
    let path = type_path(ty);
    let set = ctx.name(id, "set_", "");
    let clear = ctx.name(id, "clear_", "");
    let take = ctx.name(id, "take_", "");
    let meta = &ctx.msg.meta;
    // Marks the bit of whichever member `self.#id` holds.
    let bit_arms: Vec<_> = members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let variant = &m.variant;
            let bit = first_bit + i;
            quote!(::core::option::Option::Some(#path::#variant(_)) => self.#meta.mark(#bit),)
        })
        .collect();
    let mark_current = quote!(match &self.#id { #(#bit_arms)* ::core::option::Option::None => {} });
    let mut out = vec![
        quote! {
            #[doc = " The member that is set, if any."]
            #[inline]
            pub fn #id(&self) -> ::core::option::Option<&#ty> { self.#id.as_ref() }
        },
        quote! {
            #[doc = " Sets a member, replacing whichever was set."]
            #[inline]
            pub fn #set(&mut self, value: #ty) {
                #mark_current
                self.#id = ::core::option::Option::Some(value);
                #mark_current
            }
        },
        quote! {
            #[inline]
            pub fn #clear(&mut self) { #mark_current self.#id = ::core::option::Option::None; }
        },
        quote! {
            #[doc = " Takes the member that is set, leaving none."]
            #[inline]
            pub fn #take(&mut self) -> ::core::option::Option<#ty> { #mark_current self.#id.take() }
        },
    ];
    for (i, m) in members.iter().enumerate() {
        let variant = &m.variant;
        let mid = quote::format_ident!("{}", m.name);
        let mid =
            if syn::parse_str::<syn::Ident>(&m.name).is_ok() { mid } else { quote::format_ident!("r#{}", m.name) };
        let has = ctx.name(&mid, "has_", "");
        let mset = ctx.name(&mid, "set_", "");
        let mclear = ctx.name(&mid, "clear_", "");
        let mmut = ctx.name(&mid, "", "_mut");
        let mark_new = ctx.mark(first_bit + i);
        let pat = quote!(::core::option::Option::Some(#path::#variant(v)));
        out.push(quote! {
            #[doc = " Whether this member of the oneof is the one set."]
            #[inline]
            pub fn #has(&self) -> bool { ::core::matches!(self.#id, ::core::option::Option::Some(#path::#variant(_))) }
        });
        out.push(quote! {
            #[inline]
            pub fn #mclear(&mut self) {
                if self.#has() { self.#id = ::core::option::Option::None; #mark_new; }
            }
        });
        let default = default_expr(&m.value, None);
        match &m.value {
            Value::Scalar(sc) if sc.is_copy() => {
                let t = scalar_type(*sc);
                out.push(quote!(#[inline] pub fn #mid(&self) -> #t { match &self.#id { #pat => *v, _ => #default } }));
                out.push(quote! {
                    #[inline]
                    pub fn #mset(&mut self, value: #t) {
                        #mark_current
                        self.#id = ::core::option::Option::Some(#path::#variant(value));
                        #mark_new;
                    }
                });
            }
            Value::Scalar(sc) => {
                let (view, owned) = if *sc == Scalar::String {
                    (quote!(str), quote!(::std::string::String))
                } else {
                    (quote!([u8]), quote!(::std::vec::Vec<u8>))
                };
                out.push(
                    quote!(#[inline] pub fn #mid(&self) -> &#view { match &self.#id { #pat => v, _ => #default } }),
                );
                out.push(quote! {
                    #[inline]
                    pub fn #mset(&mut self, value: impl ::core::convert::Into<#owned>) {
                        #mark_current
                        self.#id = ::core::option::Option::Some(#path::#variant(value.into()));
                        #mark_new;
                    }
                });
            }
            Value::Enum(ety) => {
                out.push(quote! {
                    #[inline]
                    pub fn #mid(&self) -> #ety {
                        match &self.#id {
                            #pat => v.known().unwrap_or_default(),
                            _ => #default,
                        }
                    }
                });
                out.push(quote! {
                    #[inline]
                    pub fn #mset(&mut self, value: #ety) {
                        #mark_current
                        self.#id = ::core::option::Option::Some(#path::#variant(value.into()));
                        #mark_new;
                    }
                });
            }
            Value::Message(mty) => {
                let wrap = if m.boxed { quote!(::std::boxed::Box::new(value)) } else { quote!(value) };
                let deref = if m.boxed { quote!(&mut **) } else { quote!() };
                out.push(
                    quote!(#[inline] pub fn #mid(&self) -> &#mty { match &self.#id { #pat => v, _ => #default } }),
                );
                out.push(quote! {
                    #[inline]
                    pub fn #mset(&mut self, value: #mty) {
                        #mark_current
                        self.#id = ::core::option::Option::Some(#path::#variant(#wrap));
                        #mark_new;
                    }
                });
                out.push(quote! {
                    #[doc = " The member to change in place; selects this member with an empty message if another"]
                    #[doc = " was set."]
                    #[inline]
                    pub fn #mmut(&mut self) -> &mut #mty {
                        if !self.#has() {
                            #mark_current
                            let empty = #path::#variant(::core::default::Default::default());
                            self.#id = ::core::option::Option::Some(empty);
                        }
                        #mark_new;
                        match &mut self.#id {
                            #pat => #deref v,
                            _ => ::core::unreachable!("the member was selected above"),
                        }
                    }
                });
            }
            Value::Ref(rty) => {
                out.push(quote! {
                    #[inline]
                    pub fn #mid(&self) -> ::core::option::Option<__pbpersist::Ref<#rty>> {
                        match &self.#id { #pat => ::core::option::Option::Some(*v), _ => ::core::option::Option::None }
                    }
                });
                out.push(quote! {
                    #[inline]
                    pub fn #mset(&mut self, value: __pbpersist::Ref<#rty>) {
                        #mark_current
                        self.#id = ::core::option::Option::Some(#path::#variant(value));
                        #mark_new;
                    }
                });
            }
        }
    }
    out
}
