//! Reads `#[pbpersist(...)]` attributes, refusing repeated options and options
//! that do not belong where they are written.
//!
//! Reading goes on after a wrong option, so every mistake of an item is
//! reported at once; only a syntax error ends an attribute early.

use super::ctxt::Errors;
use crate::model::{Alias, Label, Scalar};
use proc_macro2::{Ident, Span};
use syn::meta::ParseNestedMeta;
use syn::{Attribute, Expr, LitStr, Type};

/// The attributes that belong to pbpersist.
pub(crate) fn pbpersist_attrs(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("pbpersist"))
}

/// Runs `item` on every option of every `#[pbpersist(...)]` attribute.
fn each_option(
    attrs: &[Attribute],
    errors: &mut Errors,
    mut item: impl FnMut(&ParseNestedMeta<'_>, &mut Errors) -> syn::Result<()>,
) {
    for attr in pbpersist_attrs(attrs) {
        if let Err(e) = attr.parse_nested_meta(|meta| item(&meta, errors)) {
            errors.push(e);
        }
    }
}

/// The option's name as written (empty for a path such as `a::b`).
fn word(meta: &ParseNestedMeta<'_>) -> String {
    meta.path.get_ident().map(|i| i.to_string()).unwrap_or_default()
}

/// Consumes an option's value (`= ...` or `(...)`) so reading can go on.
fn skip(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<proc_macro2::TokenStream>()?;
    }
    Ok(())
}

/// Whether the option is followed by `()`.
fn empty_parens(meta: &ParseNestedMeta<'_>) -> bool {
    fn parse(input: syn::parse::ParseStream<'_>) -> syn::Result<bool> {
        let content;
        syn::parenthesized!(content in input);
        Ok(content.is_empty())
    }
    parse(&meta.input.fork()).unwrap_or(false)
}

/// Stores `value` unless the option was given already.
fn once<T>(slot: &mut Option<T>, value: T, meta: &ParseNestedMeta<'_>, errors: &mut Errors) {
    if slot.is_some() {
        errors.push(meta.error(format!("`{}` is given twice; keep one", word(meta))));
    } else {
        *slot = Some(value);
    }
}

fn string(meta: &ParseNestedMeta<'_>) -> syn::Result<LitStr> {
    meta.value()?.parse::<LitStr>()
}

/// What `#[pbpersist(...)]` says on a message struct.
#[derive(Default)]
pub(crate) struct MessageAttrs {
    pub full_name: Option<String>,
    pub package: Option<String>,
    pub former_names: Vec<String>,
    pub resolver: Option<String>,
    pub krate: Option<syn::Path>,
    pub indexes: Vec<(crate::model::CompositeIndex, Span)>,
    pub extent: Option<Span>,
}

/// Reads `index(fields("a", "b"), unique)` on a message.
fn composite(meta: &ParseNestedMeta<'_>, errors: &mut Errors) -> syn::Result<crate::model::CompositeIndex> {
    let mut index = crate::model::CompositeIndex { fields: Vec::new(), unique: false };
    meta.parse_nested_meta(|inner| {
        if inner.path.is_ident("unique") {
            index.unique = true;
        } else if inner.path.is_ident("fields") {
            let content;
            syn::parenthesized!(content in inner.input);
            let names = content.parse_terminated(|i| i.parse::<LitStr>(), syn::Token![,])?;
            index.fields.extend(names.iter().map(LitStr::value));
        } else {
            errors.push(inner.error("expected `fields(\"a\", \"b\")` or `unique`"));
            skip(&inner)?;
        }
        Ok(())
    })?;
    Ok(index)
}

/// Reads the attributes of a `#[derive(Persistent)]` struct.
pub(crate) fn message(attrs: &[Attribute], errors: &mut Errors) -> MessageAttrs {
    let mut out = MessageAttrs::default();
    each_option(attrs, errors, |meta, errors| {
        match word(meta).as_str() {
            "message" => once(&mut out.full_name, string(meta)?.value(), meta, errors),
            "package" => once(&mut out.package, string(meta)?.value(), meta, errors),
            "former_name" => out.former_names.push(string(meta)?.value()),
            "resolve_conflicts" => {
                let lit = string(meta)?;
                lit.parse::<syn::Path>()?;
                once(&mut out.resolver, lit.value(), meta, errors);
            }
            "crate" => once(&mut out.krate, string(meta)?.parse()?, meta, errors),
            "index" => {
                let index = composite(meta, errors)?;
                out.indexes.push((index, span(meta)));
            }
            "extent" => once(&mut out.extent, span(meta), meta, errors),
            _ => {
                errors.push(meta.error(
                    "unknown option on a message; expected `message = \"package.Name\"`, `package = \"...\"`, \
                     `former_name = \"...\"`, `resolve_conflicts = \"path::to::fn\"`, `crate = \"path\"`, \
                     `index(fields(\"a\", \"b\"))` or `extent`",
                ));
                skip(meta)?;
            }
        }
        Ok(())
    });
    out
}

/// What `#[pbpersist(...)]` says on an enumeration.
#[derive(Default)]
pub(crate) struct EnumAttrs {
    pub full_name: Option<String>,
    pub package: Option<String>,
    pub closed: Option<Span>,
    pub aliases: Vec<Alias>,
    pub krate: Option<syn::Path>,
}

/// Reads the attributes of a `#[derive(Enumeration)]` enum.
pub(crate) fn enumeration(attrs: &[Attribute], errors: &mut Errors) -> EnumAttrs {
    let mut out = EnumAttrs::default();
    each_option(attrs, errors, |meta, errors| {
        match word(meta).as_str() {
            "enumeration" => once(&mut out.full_name, string(meta)?.value(), meta, errors),
            "package" => once(&mut out.package, string(meta)?.value(), meta, errors),
            "closed" => {
                once(&mut out.closed, meta.path.get_ident().map_or_else(Span::call_site, Ident::span), meta, errors)
            }
            "crate" => once(&mut out.krate, string(meta)?.parse()?, meta, errors),
            "alias" => {
                let (mut ident, mut name, mut variant) = (None, None, None);
                let mut wrong = false;
                meta.parse_nested_meta(|inner| {
                    match word(&inner).as_str() {
                        "ident" => once(&mut ident, string(&inner)?.parse::<Ident>()?, &inner, errors),
                        "name" => once(&mut name, string(&inner)?.value(), &inner, errors),
                        "variant" => once(&mut variant, string(&inner)?.parse::<Ident>()?, &inner, errors),
                        _ => {
                            errors.push(inner.error("unknown alias option; expected `ident`, `name` or `variant`"));
                            wrong = true;
                            skip(&inner)?;
                        }
                    }
                    Ok(())
                })?;
                match (ident, name, variant) {
                    (Some(ident), Some(name), Some(variant)) => out.aliases.push(Alias { ident, name, variant }),
                    _ if wrong => {}
                    _ => errors.push(meta.error(
                        "an alias needs all three of \
                         `alias(ident = \"CONST\", name = \"PROTO_NAME\", variant = \"Variant\")`",
                    )),
                }
            }
            _ => {
                errors.push(meta.error(
                    "unknown option on an enumeration; expected `enumeration = \"package.Name\"`, `package = \"...\"`, \
                     `closed`, `alias(...)` or `crate = \"path\"`",
                ));
                skip(meta)?;
            }
        }
        Ok(())
    });
    out
}

/// The protobuf name of an enum value (`#[pbpersist(name = "...")]`).
pub(crate) fn variant_name(attrs: &[Attribute], errors: &mut Errors) -> Option<String> {
    let mut name = None;
    each_option(attrs, errors, |meta, errors| {
        if meta.path.is_ident("name") {
            once(&mut name, string(meta)?.value(), meta, errors);
        } else {
            errors.push(meta.error("unknown option on an enum value; expected `name = \"VALUE_NAME\"`"));
            skip(meta)?;
        }
        Ok(())
    });
    name
}

/// A type word with its explicit Rust type, if one was given
/// (`message = "Address"`).
#[derive(Clone)]
pub(crate) enum RawValue {
    Scalar(Scalar),
    Message(Option<Type>),
    Enum(Option<Type>),
    Ref(Option<Type>),
}

/// The kind of a field as its attribute names it.
pub(crate) enum Kind {
    /// A type word, or `group` (a message written as a group).
    Value { value: RawValue, group: bool },
    /// `map(<key>, <value>)`.
    Map(Scalar, RawValue),
    /// `oneof(member(...), ...)`.
    Oneof(Vec<FieldAttrs>),
}

/// Where a field attribute is written: on a struct field or in `member(...)`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Field,
    Member,
}

/// What one field's (or oneof member's) attribute says, with the span of each
/// option for errors.
#[derive(Default)]
pub(crate) struct FieldAttrs {
    pub span: Option<Span>,
    pub meta: Option<Span>,
    pub tag: Option<(u32, Span)>,
    pub label: Option<(Label, Span)>,
    pub kind: Option<(Kind, Span)>,
    pub default: Option<Expr>,
    pub boxed: Option<Span>,
    pub packed: Option<Span>,
    /// `index` (false) or `index(unique)` (true).
    pub index: Option<(bool, Span)>,
    pub name: Option<(String, Span)>,
    pub variant: Option<(String, Span)>,
    /// Whether an option was refused, so that checks for what is missing
    /// do not repeat the mistake in other words.
    pub refused: bool,
}

/// Reads the attributes of a struct field.
pub(crate) fn field(attrs: &[Attribute], errors: &mut Errors) -> FieldAttrs {
    let mut out = FieldAttrs::default();
    for attr in pbpersist_attrs(attrs) {
        out.span.get_or_insert(attr.path().get_ident().map_or_else(Span::call_site, Ident::span));
        if let Err(e) = attr.parse_nested_meta(|meta| field_option(&mut out, &meta, Place::Field, errors)) {
            errors.push(e);
        }
    }
    out
}

fn span(meta: &ParseNestedMeta<'_>) -> Span {
    syn::spanned::Spanned::span(&meta.path)
}

fn field_option(
    out: &mut FieldAttrs,
    meta: &ParseNestedMeta<'_>,
    place: Place,
    errors: &mut Errors,
) -> syn::Result<()> {
    let w = word(meta);
    let not_here = |what: &str| meta.error(format!("`{w}` does not belong on {what}; remove it"));
    let before = errors.len();
    field_option_inner(out, meta, place, errors, &w, &not_here)?;
    if errors.len() > before {
        out.refused = true;
    }
    Ok(())
}

fn field_option_inner(
    out: &mut FieldAttrs,
    meta: &ParseNestedMeta<'_>,
    place: Place,
    errors: &mut Errors,
    w: &str,
    not_here: &dyn Fn(&str) -> syn::Error,
) -> syn::Result<()> {
    match w {
        "meta" if place == Place::Field => once(&mut out.meta, span(meta), meta, errors),
        "tag" => {
            let lit: syn::LitInt = meta.value()?.parse()?;
            let tag: u32 = lit.base10_parse()?;
            if tag == 0 || tag > (1 << 29) - 1 || (19_000..=19_999).contains(&tag) {
                errors.push(syn::Error::new(
                    lit.span(),
                    "field numbers must be 1..=536870911, outside protobuf's reserved 19000..=19999; pick another",
                ));
            }
            once(&mut out.tag, (tag, lit.span()), meta, errors);
        }
        "optional" | "required" | "repeated" if place == Place::Member => {
            errors.push(not_here("a oneof member (a member is always optional)"));
        }
        "optional" => once(&mut out.label, (Label::Optional, span(meta)), meta, errors),
        "required" => once(&mut out.label, (Label::Required, span(meta)), meta, errors),
        "repeated" => once(&mut out.label, (Label::Repeated, span(meta)), meta, errors),
        "boxed" => once(&mut out.boxed, span(meta), meta, errors),
        "packed" if place == Place::Member => errors.push(not_here("a oneof member")),
        "packed" => once(&mut out.packed, span(meta), meta, errors),
        "index" if place == Place::Member => {
            errors.push(not_here("a oneof member (index the oneof's owner by another field)"));
            skip(meta)?;
        }
        "index" => {
            let mut unique = false;
            if meta.input.peek(syn::token::Paren) {
                meta.parse_nested_meta(|inner| {
                    if inner.path.is_ident("unique") {
                        unique = true;
                    } else {
                        errors.push(inner.error("expected `index` or `index(unique)`"));
                        skip(&inner)?;
                    }
                    Ok(())
                })?;
            }
            once(&mut out.index, (unique, span(meta)), meta, errors);
        }
        "default" if place == Place::Member => {
            errors.push(not_here("a oneof member (members have no defaults)"));
            skip(meta)?;
        }
        "default" => once(&mut out.default, meta.value()?.parse()?, meta, errors),
        "name" => once(&mut out.name, (string(meta)?.value(), span(meta)), meta, errors),
        "variant" if place == Place::Field => {
            errors.push(meta.error("`variant` names a oneof member's enum variant; write it inside `member(...)`"));
            skip(meta)?;
        }
        "variant" => once(&mut out.variant, (string(meta)?.value(), span(meta)), meta, errors),
        "group" => {
            let ty = explicit_type(meta)?;
            kind_once(out, Kind::Value { value: RawValue::Message(ty), group: true }, meta, errors);
        }
        "map" if place == Place::Member => {
            errors.push(not_here("a oneof member (protobuf has no map members)"));
            skip(meta)?;
        }
        "map" => {
            let mut words = Vec::new();
            let mut wrong = false;
            meta.parse_nested_meta(|inner| {
                match value_word(&inner)? {
                    Some(v) => words.push(v),
                    None => {
                        errors.push(inner.error("expected a map key or value type, such as `string` or `message`"));
                        wrong = true;
                        skip(&inner)?;
                    }
                }
                Ok(())
            })?;
            match words.as_slice() {
                _ if wrong => {}
                [RawValue::Scalar(k), v] if k.is_map_key() => {
                    kind_once(out, Kind::Map(*k, v.clone()), meta, errors);
                }
                [_, _] => errors.push(meta.error("map keys must be an integer type, bool or string")),
                _ => errors.push(meta.error("expected `map(<key type>, <value type>)`, e.g. `map(string, int64)`")),
            }
        }
        "oneof" if place == Place::Member => {
            errors.push(not_here("a oneof member (oneofs do not nest)"));
            skip(meta)?;
        }
        "oneof" => {
            let mut members = Vec::new();
            let mut wrong = false;
            if empty_parens(meta) {
                errors.push(meta.error("a oneof needs at least one `member(name = \"...\", tag = N, <type>)`"));
                skip(meta)?;
                kind_once(out, Kind::Oneof(members), meta, errors);
                return Ok(());
            }
            meta.parse_nested_meta(|inner| {
                if inner.path.is_ident("member") {
                    let mut m = FieldAttrs { span: Some(span(&inner)), ..FieldAttrs::default() };
                    inner.parse_nested_meta(|item| field_option(&mut m, &item, Place::Member, errors))?;
                    members.push(m);
                } else {
                    errors.push(inner.error("expected `member(name = \"...\", tag = N, <type>)`"));
                    wrong = true;
                    skip(&inner)?;
                }
                Ok(())
            })?;
            if members.is_empty() && !wrong {
                errors.push(meta.error("a oneof needs at least one `member(name = \"...\", tag = N, <type>)`"));
            }
            kind_once(out, Kind::Oneof(members), meta, errors);
        }
        _ => match value_word(meta)? {
            Some(value) => kind_once(out, Kind::Value { value, group: false }, meta, errors),
            None => {
                errors.push(meta.error(format!(
                    "unknown option `{w}`; expected `tag = N`, a protobuf type such as `int32`, `string`, \
                     `message` or `reference`, `optional`, `repeated`, `default = ...`, `name = \"...\"`, \
                     `map(...)` or `oneof(...)`"
                )));
                skip(meta)?;
            }
        },
    }
    Ok(())
}

fn kind_once(out: &mut FieldAttrs, kind: Kind, meta: &ParseNestedMeta<'_>, errors: &mut Errors) {
    if out.kind.is_some() {
        errors.push(meta.error("a field has one type; remove all but one type option"));
    } else {
        out.kind = Some((kind, span(meta)));
    }
}

/// `= "Type"` after a type word, if present.
fn explicit_type(meta: &ParseNestedMeta<'_>) -> syn::Result<Option<Type>> {
    if meta.input.peek(syn::Token![=]) { Ok(Some(string(meta)?.parse()?)) } else { Ok(None) }
}

/// Reads a type word (`int32`, `message`, `message = "Path"`, ...).
fn value_word(meta: &ParseNestedMeta<'_>) -> syn::Result<Option<RawValue>> {
    Ok(Some(match word(meta).as_str() {
        "message" => RawValue::Message(explicit_type(meta)?),
        "enumeration" => RawValue::Enum(explicit_type(meta)?),
        "reference" => RawValue::Ref(explicit_type(meta)?),
        other => match Scalar::from_proto_name(other) {
            Some(s) => RawValue::Scalar(s),
            None => return Ok(None),
        },
    }))
}
