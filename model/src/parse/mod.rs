//! Parses `#[pbpersist(...)]`-annotated Rust items into the model.
//!
//! [`attr`] reads the attributes, [`ty`] says what the Rust types mean,
//! this module builds the model from both, and [`check`] applies the rules
//! that span fields. Errors are collected ([`ctxt`]) and spanned on the
//! offending token, so one compile shows every mistake where it was written.

mod attr;
mod check;
mod ctxt;
mod ty;

use crate::model::*;
use attr::{FieldAttrs, Kind, RawValue};
use ctxt::Errors;
use heck::ToUpperCamelCase;
use proc_macro2::{Ident, Span};
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Expr, Fields, Lit};
use ty::type_arg;

/// Why a composite index cannot be on `msg`, if it cannot: the rule the
/// derive and `pbpersist-build` share.
pub fn check_composite(msg: &Message, index: &CompositeIndex) -> Result<(), String> {
    check::composite(msg, index)
}

/// Parses a struct annotated for `#[derive(Persistent)]`.
pub fn message(input: &DeriveInput) -> syn::Result<Message> {
    let mut errors = Errors::default();
    let named = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => Some(named),
            _ => None,
        },
        _ => None,
    };
    if named.is_none() {
        errors.push(syn::Error::new(
            input.ident.span(),
            "#[derive(Persistent)] needs a struct with named fields, such as `struct Note { title: String, .. }`",
        ));
    }
    if !input.generics.params.is_empty() {
        errors.push(syn::Error::new(
            input.generics.span(),
            "persistent messages cannot be generic; name a concrete type for each message",
        ));
    }
    let attrs = attr::message(&input.attrs, &mut errors);
    let mut fields = Vec::new();
    let mut meta: Option<Ident> = None;
    for f in named.into_iter().flat_map(|n| &n.named) {
        let Some(ident) = f.ident.clone() else { continue };
        let a = attr::field(&f.attrs, &mut errors);
        if let Some(span) = a.meta {
            meta_field(&a, span, &ident, &mut meta, &mut errors);
            continue;
        }
        if let Some(field) = field(f, ident, a, &mut errors) {
            fields.push(field);
        }
    }
    if named.is_some() && meta.is_none() {
        errors.push(syn::Error::new(
            input.ident.span(),
            "a persistent struct needs a bookkeeping field: add `#[pbpersist(meta)] meta: pbpersist::Meta`",
        ));
    }
    let (docs, deprecated) = docs(&input.attrs);
    let msg = Message {
        ident: input.ident.clone(),
        full_name: attrs.full_name.unwrap_or_else(|| input.ident.to_string()),
        package: attrs.package,
        docs,
        deprecated,
        fields,
        meta: meta.unwrap_or_else(|| Ident::new("meta", Span::call_site())),
        tracks_fields: named.is_some_and(|n| n.named.iter().all(|f| matches!(f.vis, syn::Visibility::Inherited))),
        former_names: attrs.former_names,
        resolver: attrs.resolver,
        krate: attrs.krate,
        indexes: Vec::new(),
        extent: attrs.extent.is_some(),
    };
    let mut msg = msg;
    for (index, span) in attrs.indexes {
        if let Err(why) = check::composite(&msg, &index) {
            errors.push(syn::Error::new(span, why));
        } else {
            msg.indexes.push(index);
        }
    }
    check::message(&msg, &mut errors);
    errors.finish(msg)
}

fn meta_field(a: &FieldAttrs, span: Span, ident: &Ident, meta: &mut Option<Ident>, errors: &mut Errors) {
    let others = a.tag.is_some()
        || a.label.is_some()
        || a.kind.is_some()
        || a.default.is_some()
        || a.boxed.is_some()
        || a.packed.is_some()
        || a.index.is_some()
        || a.name.is_some();
    if others {
        errors.push(syn::Error::new(span, "`meta` marks the bookkeeping field and takes no other option"));
    }
    if meta.is_some() {
        errors.push(syn::Error::new(ident.span(), "only one field may be `#[pbpersist(meta)]`; remove the others"));
    } else {
        *meta = Some(ident.clone());
    }
}

fn label_word(label: Label) -> &'static str {
    match label {
        Label::Optional => "optional",
        Label::Required => "required",
        Label::Repeated => "repeated",
        Label::Implicit => "implicit",
    }
}

/// Refuses options that do not apply to a map or oneof field.
fn refuse(errors: &mut Errors, what: &str, options: &[(&str, Option<Span>)]) {
    for (option, span) in options {
        if let Some(span) = span {
            errors.push(syn::Error::new(*span, format!("`{option}` does not apply to {what}; remove it")));
        }
    }
}

fn field(f: &syn::Field, ident: Ident, mut a: FieldAttrs, errors: &mut Errors) -> Option<Field> {
    if a.span.is_none() {
        errors.push(syn::Error::new(
            ident.span(),
            "this field needs `#[pbpersist(tag = N)]` (with a protobuf type where the Rust type does not say it), \
             or `#[pbpersist(meta)]` on the bookkeeping field",
        ));
        return None;
    }
    let (docs, deprecated) = docs(&f.attrs);
    let name = a.name.as_ref().map_or_else(|| ident.to_string().trim_start_matches("r#").to_owned(), |n| n.0.clone());
    let default_span = a.default.as_ref().map(Spanned::span);
    let label = a.label.map(|(l, span)| (label_word(l), Some(span))).unwrap_or(("label", None));
    let kind = match a.kind.take() {
        Some((Kind::Oneof(members), _)) => {
            let what = "a oneof (its members carry the numbers and types)";
            let tag_span = a.tag.map(|t| t.1);
            refuse(
                errors,
                what,
                &[
                    ("tag", tag_span),
                    label,
                    ("default", default_span),
                    ("packed", a.packed),
                    ("boxed", a.boxed),
                    ("index", a.index.map(|i| i.1)),
                ],
            );
            let Some(ty) = type_arg(&f.ty, "Option", 0) else {
                errors.push(syn::Error::new(f.ty.span(), "a oneof field must have type `Option<OneofEnum>`"));
                return None;
            };
            let members: Vec<Member> = members.into_iter().filter_map(|m| member(m, errors)).collect();
            FieldKind::Oneof { ty: ty.clone(), members }
        }
        kind => {
            let Some((tag, _)) = a.tag else {
                errors.push(syn::Error::new(
                    ident.span(),
                    "missing `tag = N`: every protobuf field needs its number, e.g. `#[pbpersist(tag = 1)]`",
                ));
                return None;
            };
            match kind {
                Some((Kind::Map(key, value), _)) => map(f, tag, key, value, &a, errors)?,
                Some((Kind::Value { value, group }, _)) => {
                    FieldKind::Single(single(f, tag, &a, Some((value, group)), errors)?)
                }
                Some((Kind::Oneof(_), _)) => unreachable!("handled above"),
                None => match errors.ok(ty::infer_map(&f.ty))? {
                    Some((key, value)) => map(f, tag, key, value, &a, errors)?,
                    None => FieldKind::Single(single(f, tag, &a, None, errors)?),
                },
            }
        }
    };
    let field = Field { ident, name, docs, deprecated, kind };
    check::rust_type(&field, &f.ty, errors);
    Some(field)
}

fn map(
    f: &syn::Field,
    tag: u32,
    key: Scalar,
    value: RawValue,
    a: &FieldAttrs,
    errors: &mut Errors,
) -> Option<FieldKind> {
    let default_span = a.default.as_ref().map(Spanned::span);
    refuse(
        errors,
        "a map",
        &[
            a.label.map(|(l, span)| (label_word(l), Some(span))).unwrap_or(("label", None)),
            ("default", default_span),
            ("packed", a.packed),
            ("boxed", a.boxed),
            ("index", a.index.map(|i| i.1)),
        ],
    );
    let Some((_, v)) = ty::map_args(&f.ty) else {
        errors.push(syn::Error::new(f.ty.span(), "a map field must have type `BTreeMap<K, V>`"));
        return None;
    };
    Some(FieldKind::Map { tag, key, value: errors.ok(ty::resolve_value(value, v))? })
}

/// A singular or repeated field; `given` is the attribute's type word and
/// whether it said `group`.
fn single(
    f: &syn::Field,
    tag: u32,
    a: &FieldAttrs,
    given: Option<(RawValue, bool)>,
    errors: &mut Errors,
) -> Option<Single> {
    // Without a label, the Rust type says: `Option<T>` has presence,
    // `Vec<T>` repeats (except `Vec<u8>`, which is bytes).
    let label = a.label.map(|l| l.0).unwrap_or_else(|| {
        if type_arg(&f.ty, "Option", 0).is_some() {
            Label::Optional
        } else if type_arg(&f.ty, "Vec", 0).is_some_and(|t| !ty::is_ident(t, "u8")) {
            Label::Repeated
        } else {
            Label::Implicit
        }
    });
    let element = match label {
        Label::Optional | Label::Required => type_arg(&f.ty, "Option", 0),
        Label::Repeated => type_arg(&f.ty, "Vec", 0),
        Label::Implicit => Some(&f.ty),
    };
    let Some(element) = element else {
        let msg = match label {
            Label::Repeated => "a repeated field must have type `Vec<T>`",
            _ => "a field with presence (`optional` or `required`) must have type `Option<T>`",
        };
        errors.push(syn::Error::new(f.ty.span(), msg));
        return None;
    };
    let mut boxed = a.boxed.is_some();
    let (value, group) = match given {
        Some(given) => given,
        None => {
            let (v, b) = errors.ok(ty::infer_value(element))?;
            boxed |= b;
            (v, false)
        }
    };
    let mut elem = element;
    if boxed {
        let Some(inner) = type_arg(elem, "Box", 0) else {
            errors.push(syn::Error::new(f.ty.span(), "a boxed field must have type `Option<Box<T>>`"));
            return None;
        };
        elem = inner;
    }
    let value = errors.ok(ty::resolve_value(value, elem))?;
    let default = match &a.default {
        Some(expr) => Some(errors.ok(ty::default_value(expr, &value))?),
        None => None,
    };
    let packed = a.packed.is_some();
    if let Some(span) = a.packed
        && !(label == Label::Repeated && value.is_packable())
    {
        errors.push(syn::Error::new(span, "only repeated numeric and enum fields can be packed; remove `packed`"));
    }
    let index = a.index.map(|(unique, _)| crate::model::IndexSpec { unique });
    if let Some((_, span)) = a.index
        && !value.is_indexable()
    {
        errors.push(syn::Error::new(
            span,
            "only integer, bool, string, bytes, enum and reference fields can be indexed; remove `index`",
        ));
    }
    Some(Single { tag, label, value, default, boxed, packed, group, index })
}

/// One `member(...)` of a oneof.
fn member(m: FieldAttrs, errors: &mut Errors) -> Option<Member> {
    let span = m.span.unwrap_or_else(Span::call_site);
    let Some((name, _)) = m.name else {
        errors.push(syn::Error::new(span, "a oneof member needs its protobuf name: `name = \"...\"`"));
        return None;
    };
    let Some((tag, _)) = m.tag else {
        errors.push(syn::Error::new(span, "a oneof member needs its number: `tag = N`"));
        return None;
    };
    let (value, group) = match m.kind {
        Some((Kind::Value { value, group }, span)) => {
            let value = match value {
                RawValue::Scalar(s) => Value::Scalar(s),
                RawValue::Message(Some(t)) => Value::Message(t),
                RawValue::Enum(Some(t)) => Value::Enum(t),
                RawValue::Ref(Some(t)) => Value::Ref(t),
                _ => {
                    errors.push(syn::Error::new(
                        span,
                        "a oneof member names its Rust type, e.g. `message = \"Address\"` or `reference = \"Note\"`",
                    ));
                    return None;
                }
            };
            (value, group)
        }
        _ => {
            if !m.refused {
                errors.push(syn::Error::new(
                    span,
                    "a oneof member needs a type, e.g. `string` or `message = \"Address\"`",
                ));
            }
            return None;
        }
    };
    let variant_name = m.variant.map_or_else(|| name.to_upper_camel_case(), |v| v.0);
    let variant = match syn::parse_str::<Ident>(&variant_name) {
        Ok(v) => v,
        Err(_) => {
            errors.push(syn::Error::new(
                span,
                format!("`{variant_name}` is not a Rust identifier; set `variant = \"...\"`"),
            ));
            return None;
        }
    };
    Some(Member { variant, name, tag, value, boxed: m.boxed.is_some(), group, docs: Vec::new(), deprecated: false })
}

/// Parses an enum annotated for `#[derive(Enumeration)]`.
pub fn enumeration(input: &DeriveInput) -> syn::Result<Enum> {
    let mut errors = Errors::default();
    let Data::Enum(data) = &input.data else {
        return Err(syn::Error::new(
            input.ident.span(),
            "#[derive(Enumeration)] needs a fieldless enum with numbers, such as `enum Mood { Calm = 0, Busy = 1 }`",
        ));
    };
    let attrs = attr::enumeration(&input.attrs, &mut errors);
    let mut variants = Vec::new();
    for v in &data.variants {
        if !matches!(v.fields, Fields::Unit) {
            errors.push(syn::Error::new(v.span(), "enum values cannot carry data; remove the fields"));
        }
        let name = attr::variant_name(&v.attrs, &mut errors).unwrap_or_else(|| v.ident.to_string());
        let Some((_, expr)) = &v.discriminant else {
            errors.push(syn::Error::new(v.span(), "each enum value needs its number, e.g. `Calm = 0`"));
            continue;
        };
        let Some(number) = errors.ok(ty::discriminant(expr)) else { continue };
        let (docs, deprecated) = docs(&v.attrs);
        variants.push(Variant { ident: v.ident.clone(), name, number, docs, deprecated });
    }
    if data.variants.is_empty() {
        errors.push(syn::Error::new(input.ident.span(), "an enum needs at least one value"));
    }
    let (docs, deprecated) = docs(&input.attrs);
    let e = Enum {
        ident: input.ident.clone(),
        full_name: attrs.full_name.unwrap_or_else(|| input.ident.to_string()),
        package: attrs.package,
        docs,
        deprecated,
        variants,
        aliases: attrs.aliases,
        closed: attrs.closed.is_some(),
        krate: attrs.krate,
    };
    check::enumeration(&e, &mut errors);
    errors.finish(e)
}

/// The `crate = "..."` option of an item, read leniently: for placeholder
/// impls emitted beside the item's errors.
pub fn crate_path(input: &DeriveInput) -> Option<syn::Path> {
    let mut errors = Errors::default();
    match &input.data {
        Data::Enum(_) => attr::enumeration(&input.attrs, &mut errors).krate,
        _ => attr::message(&input.attrs, &mut errors).krate,
    }
}

/// Doc lines and whether `#[deprecated]` is present.
fn docs(attrs: &[Attribute]) -> (Vec<String>, bool) {
    let mut lines = Vec::new();
    let mut deprecated = false;
    for attr in attrs {
        if attr.path().is_ident("deprecated") {
            deprecated = true;
        } else if attr.path().is_ident("doc")
            && let syn::Meta::NameValue(nv) = &attr.meta
            && let Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) = &nv.value
        {
            let v = s.value();
            lines.push(v.strip_prefix(' ').unwrap_or(&v).to_owned());
        }
    }
    (lines, deprecated)
}
