//! Writes every impl of a persistent message or enum from the model.
//!
//! The emitted code names the runtime as `::pbpersist` and reaches prost
//! through `__pbpersist::__private`, so user crates need only depend on
//! `pbpersist`.

mod access;
pub mod fallback;
mod index;
mod schema;
mod wire;

use crate::model::*;
use crate::types::krate;
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

/// Every impl for a message struct: `Default`, `Debug`, accessors,
/// `prost::Message` and `pbpersist::Persistent`.
pub fn message(msg: &Message) -> TokenStream {
    let ctx = Ctx::new(msg);
    let ident = &msg.ident;
    let full_name = &msg.full_name;
    let meta = &msg.meta;

    let field_idents: Vec<_> = msg.fields.iter().map(|f| &f.ident).collect();
    let debug_names: Vec<String> = msg.fields.iter().map(|f| f.name.clone()).collect();
    let infos = msg.proto_fields().into_iter().map(|(name, number)| {
        let number = Literal::u32_unsuffixed(number);
        quote!(__pbpersist::object::FieldInfo::new(#name, #number))
    });

    // A field named `new` keeps its getter; the constructor is then `Default::default()`.
    let constructor = (!ctx.getter_named_new).then(|| {
        quote! {
            /// A new message with every field unset, reading its schema defaults.
            #[inline]
            pub fn new() -> Self {
                ::core::default::Default::default()
            }
        }
    });
    let accessors = msg.fields.iter().enumerate().map(|(i, f)| access::field(&ctx, f, ctx.bits[i]));
    let wire = wire::message(&ctx);
    let visit = msg.fields.iter().map(|f| walk(f, Walk::Refs));
    let required = msg.fields.iter().map(|f| walk(f, Walk::Required));
    let unchanged = msg.fields.iter().map(|f| walk(f, Walk::Unchanged));
    let former_names = &msg.former_names;
    let describe = schema::message(&ctx);
    let (index_consts, index_registrations) = index::indexes(&ctx);
    let tracks_fields = msg.tracks_fields;
    let resolver = msg.resolver.as_ref().map(|path| {
        let path: syn::Path = syn::parse_str(path).expect("checked when parsed");
        quote! {
            const RESOLVES_CONFLICTS: bool = true;

            fn resolve_conflict(old: &Self, committed: &Self, new: &Self) -> ::core::option::Option<Self> {
                #path(old, committed, new)
            }
        }
    });
    let required_checks = msg.fields.iter().filter_map(|f| match &f.kind {
        FieldKind::Single(s) if s.label == Label::Required => {
            let id = &f.ident;
            let name = &f.name;
            Some(quote! {
                if self.#id.is_none() {
                    return ::core::result::Result::Err(__pbpersist::object::RequiredFieldError::new(#full_name, #name));
                }
            })
        }
        _ => None,
    });

    let ref_checks = ref_targets(msg).into_iter().map(|ty| {
        // A reference must point to a persistent type or a tree; the error lands on it.
        quote::quote_spanned! {syn::spanned::Spanned::span(&ty)=>
            let _ = __pbpersist_assert_target::<#ty>;
        }
    });
    let krate = krate(msg.krate.as_ref());
    quote! {
        #[allow(deprecated)]
        const _: () = {
            use #krate as __pbpersist;
            fn __pbpersist_assert_target<T: ?::core::marker::Sized + __pbpersist::object::RefTarget>() {}
            #[allow(dead_code)]
            fn __pbpersist_check_references() {
                #(#ref_checks)*
            }

            impl ::core::default::Default for #ident {
                fn default() -> Self {
                    Self {
                        #(#field_idents: ::core::default::Default::default(),)*
                        #meta: ::core::default::Default::default(),
                    }
                }
            }

            impl ::core::fmt::Debug for #ident {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    f.debug_struct(#full_name)
                        #(.field(#debug_names, &self.#field_idents))*
                        .finish_non_exhaustive()
                }
            }

            impl #ident {
                #constructor
                #(#accessors)*
                #(#index_consts)*
            }

            #wire

            impl __pbpersist::Persistent for #ident {
                const TYPE_NAME: &'static str = #full_name;
                const FIELDS: &'static [__pbpersist::object::FieldInfo] = &[#(#infos),*];
                const FORMER_NAMES: &'static [&'static str] = &[#(#former_names),*];
                const TRACKS_FIELDS: bool = #tracks_fields;
                #resolver

                fn default_instance() -> &'static Self {
                    static INSTANCE: ::std::sync::OnceLock<#ident> = ::std::sync::OnceLock::new();
                    INSTANCE.get_or_init(::core::default::Default::default)
                }

                #[inline]
                fn meta(&self) -> &__pbpersist::Meta {
                    &self.#meta
                }

                #[inline]
                fn meta_mut(&mut self) -> &mut __pbpersist::Meta {
                    &mut self.#meta
                }

                #[allow(unused_variables)]
                fn visit_refs(&self, visit: &mut dyn ::core::ops::FnMut(__pbpersist::Oid)) {
                    #(#visit)*
                }

                fn check_required(&self) -> ::core::result::Result<(), __pbpersist::object::RequiredFieldError> {
                    #(#required_checks)*
                    #(#required)*
                    ::core::result::Result::Ok(())
                }

                #describe

                fn mark_unchanged(&mut self) {
                    self.#meta.clear_changes();
                    #(#unchanged)*
                }
            }

            __pbpersist::__private::inventory::submit! {
                __pbpersist::object::TypeEntry::of::<#ident>()
            }
            #(#index_registrations)*
        };
    }
}

/// The impls of a Rust enum for a protobuf enum.
pub fn enumeration(e: &Enum) -> TokenStream {
    let ident = &e.ident;
    let full_name = &e.full_name;
    let first = &e.variants[0].ident;
    let idents: Vec<_> = e.variants.iter().map(|v| &v.ident).collect();
    let names: Vec<_> = e.variants.iter().map(|v| &v.name).collect();
    let numbers: Vec<_> = e.variants.iter().map(|v| Literal::i32_unsuffixed(v.number)).collect();
    let closed = e.closed;
    let describe = schema::enumeration(e);
    let alias_consts = e.aliases.iter().map(|a| {
        let (ident, variant) = (&a.ident, &a.variant);
        let doc = format!(" `{}`, another name for [`Self::{variant}`].", a.name);
        quote!(#[doc = #doc] pub const #ident: Self = Self::#variant;)
    });
    let alias_names = e.aliases.iter().map(|a| {
        let (name, variant) = (&a.name, &a.variant);
        quote!(#name => ::core::option::Option::Some(Self::#variant),)
    });
    let krate = krate(e.krate.as_ref());
    quote! {
        #[allow(deprecated)]
        const _: () = {
            use #krate as __pbpersist;
            impl __pbpersist::Enumeration for #ident {
                const TYPE_NAME: &'static str = #full_name;
                const VALUES: &'static [Self] = &[#(Self::#idents),*];
                const CLOSED: bool = #closed;

                #[inline]
                fn from_i32(value: i32) -> ::core::option::Option<Self> {
                    match value {
                        #(#numbers => ::core::option::Option::Some(Self::#idents),)*
                        _ => ::core::option::Option::None,
                    }
                }

                #[inline]
                fn to_i32(self) -> i32 {
                    self as i32
                }

                fn proto_name(self) -> &'static str {
                    match self {
                        #(Self::#idents => #names,)*
                    }
                }

                #describe

                fn from_proto_name(name: &str) -> ::core::option::Option<Self> {
                    match name {
                        #(#names => ::core::option::Option::Some(Self::#idents),)*
                        #(#alias_names)*
                        _ => ::core::option::Option::None,
                    }
                }
            }

            impl ::core::default::Default for #ident {
                fn default() -> Self {
                    Self::#first
                }
            }

            impl #ident {
                #(#alias_consts)*
            }

            impl ::core::convert::From<#ident> for i32 {
                fn from(value: #ident) -> i32 {
                    value as i32
                }
            }

            impl ::core::convert::TryFrom<i32> for #ident {
                type Error = __pbpersist::UnknownEnumValue;

                // `Self::Error` would be ambiguous with a variant named `Error`.
                fn try_from(value: i32) -> ::core::result::Result<Self, __pbpersist::UnknownEnumValue> {
                    <Self as __pbpersist::Enumeration>::from_i32(value)
                        .ok_or(__pbpersist::UnknownEnumValue(value))
                }
            }
        };
    }
}

/// The target types of the message's references, except `AnyObject`.
fn ref_targets(msg: &Message) -> Vec<syn::Type> {
    let mut out = Vec::new();
    let mut add = |v: &Value| {
        if let Value::Ref(ty) = v {
            let any =
                matches!(ty, syn::Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "AnyObject"));
            if !any {
                out.push(ty.clone());
            }
        }
    };
    for f in &msg.fields {
        match &f.kind {
            FieldKind::Single(s) => add(&s.value),
            FieldKind::Map { value, .. } => add(value),
            FieldKind::Oneof { members, .. } => members.iter().for_each(|m| add(&m.value)),
        }
    }
    out
}

/// Shared facts about the message being emitted.
pub(crate) struct Ctx<'a> {
    pub msg: &'a Message,
    /// The first change bit of each field (oneofs use one bit per member).
    pub bits: Vec<usize>,
    /// Accessor names by (field name, prefix, suffix), made unique.
    names: std::collections::HashMap<(String, &'static str, &'static str), proc_macro2::Ident>,
    /// Whether a field's getter is called `new`, which then replaces the constructor.
    pub getter_named_new: bool,
}

/// The prefixes and suffixes of derived accessor names, in the order names are given out.
const DERIVED: [(&str, &str); 7] =
    [("has_", ""), ("set_", ""), ("clear_", ""), ("take_", ""), ("", "_opt"), ("", "_mut"), ("", "_raw")];

fn unraw(ident: &proc_macro2::Ident) -> String {
    ident.to_string().trim_start_matches("r#").to_owned()
}

impl<'a> Ctx<'a> {
    fn new(msg: &'a Message) -> Self {
        let mut next = 0;
        let bits = msg
            .fields
            .iter()
            .map(|f| {
                let first = next;
                next += match &f.kind {
                    FieldKind::Oneof { members, .. } => members.len(),
                    _ => 1,
                };
                first
            })
            .collect();
        // Getters keep their field's name; a derived name that collides with a
        // getter or an earlier derived name gets `_` appended until unique.
        let mut getters: Vec<String> = Vec::new();
        for f in &msg.fields {
            getters.push(unraw(&f.ident));
            if let FieldKind::Oneof { members, .. } = &f.kind {
                getters.extend(members.iter().map(|m| m.name.clone()));
            }
        }
        let mut taken: std::collections::HashSet<String> = getters.iter().cloned().collect();
        let mut names = std::collections::HashMap::new();
        for base in &getters {
            for (prefix, suffix) in DERIVED {
                let mut name = format!("{prefix}{base}{suffix}");
                while taken.contains(&name) {
                    name.push('_');
                }
                taken.insert(name.clone());
                names.insert((base.clone(), prefix, suffix), format_ident!("{name}"));
            }
        }
        let getter_named_new = getters.iter().any(|g| g == "new");
        Ctx { msg, bits, names, getter_named_new }
    }

    /// The derived accessor name `prefix + field + suffix`, made unique in the message.
    pub fn name(&self, field: &proc_macro2::Ident, prefix: &'static str, suffix: &'static str) -> proc_macro2::Ident {
        let base = unraw(field);
        self.names
            .get(&(base.clone(), prefix, suffix))
            .cloned()
            .unwrap_or_else(|| format_ident!("{prefix}{base}{suffix}"))
    }

    /// `self.meta.mark(bit)`.
    pub fn mark(&self, bit: usize) -> TokenStream {
        let meta = &self.msg.meta;
        quote!(self.#meta.mark(#bit))
    }
}

#[derive(Clone, Copy)]
enum Walk {
    Refs,
    Required,
    Unchanged,
}

/// Code that walks the references, required checks or change bits of nested values.
fn walk(field: &Field, what: Walk) -> TokenStream {
    let id = &field.ident;
    let visit = |v: &Value, boxed: bool, expr: TokenStream| -> TokenStream {
        let inner = if boxed { quote!(&**#expr) } else { expr.clone() };
        let inner_mut = if boxed { quote!(&mut **#expr) } else { expr };
        match (v, what) {
            (Value::Ref(_), Walk::Refs) => quote!(visit(#inner.oid());),
            (Value::Message(_), Walk::Refs) => {
                quote!(__pbpersist::Persistent::visit_refs(#inner, visit);)
            }
            (Value::Message(_), Walk::Required) => {
                quote!(__pbpersist::Persistent::check_required(#inner)?;)
            }
            (Value::Message(_), Walk::Unchanged) => {
                quote!(__pbpersist::Persistent::mark_unchanged(#inner_mut);)
            }
            _ => TokenStream::new(),
        }
    };
    let pat = |what: Walk| {
        if matches!(what, Walk::Unchanged) { quote!(&mut) } else { quote!(&) }
    };
    let by = pat(what);
    match &field.kind {
        FieldKind::Single(s) => {
            let body = visit(&s.value, s.boxed && s.label != Label::Repeated, quote!(v));
            if body.is_empty() {
                return body;
            }
            match s.label {
                Label::Optional | Label::Required => {
                    quote!(if let ::core::option::Option::Some(v) = #by self.#id { #body })
                }
                Label::Repeated => quote!(for v in #by self.#id { #body }),
                Label::Implicit => {
                    let body = visit(&s.value, s.boxed, quote!(#by self.#id));
                    quote!({ #body })
                }
            }
        }
        FieldKind::Map { value, .. } => {
            let body = visit(value, false, quote!(v));
            if body.is_empty() {
                return body;
            }
            if matches!(what, Walk::Unchanged) {
                quote!(for v in self.#id.values_mut() { #body })
            } else {
                quote!(for v in self.#id.values() { #body })
            }
        }
        FieldKind::Oneof { ty, members } => {
            let path = type_path(ty);
            let arms: Vec<_> = members
                .iter()
                .filter_map(|m| {
                    let body = visit(&m.value, m.boxed, quote!(v));
                    let variant = &m.variant;
                    (!body.is_empty()).then(|| quote!(::core::option::Option::Some(#path::#variant(v)) => { #body }))
                })
                .collect();
            if arms.is_empty() {
                return TokenStream::new();
            }
            quote!(match #by self.#id { #(#arms)* _ => {} })
        }
    }
}

/// The path of a type, for use in patterns and expressions.
pub(crate) fn type_path(ty: &syn::Type) -> TokenStream {
    match ty {
        syn::Type::Path(p) if p.qself.is_none() => {
            let path = &p.path;
            quote!(#path)
        }
        other => quote!(<#other>),
    }
}
