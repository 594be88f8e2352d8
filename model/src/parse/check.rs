//! Rules that span fields or compare a field's Rust type with its protobuf
//! type, applied to the parsed model.

use super::ctxt::Errors;
use crate::model::*;
use proc_macro2::Span;
use quote::ToTokens;
use syn::{GenericArgument, PathArguments, Type};

/// Why a composite index cannot be, if it cannot: it names two or three
/// singular fields of the message that can be indexed, each once.
pub(crate) fn composite(msg: &Message, index: &CompositeIndex) -> Result<(), String> {
    let parts = index.parts();
    let nested = parts.iter().any(|(p, _)| p.contains('.'));
    if parts.is_empty() || parts.len() > 3 || (parts.len() == 1 && !nested) {
        return Err("a composite index names two or three fields, or a nested path: `index(fields(\"a\", \"b\"))`, \
             `index(fields(\"address.city: string\"))`"
            .into());
    }
    for (i, (path, kind)) in parts.iter().enumerate() {
        if parts[..i].iter().any(|(p, _)| p == path) {
            return Err(format!("field `{path}` is named twice in this index"));
        }
        let (name, inner) = match path.split_once('.') {
            Some((outer, inner)) => (outer, Some(inner)),
            None => (*path, None),
        };
        let field = msg.fields.iter().find(|f| f.name == name).ok_or_else(|| format!("no field `{name}` to index"))?;
        let FieldKind::Single(s) = &field.kind else {
            return Err(format!("field `{name}` cannot be in a composite index: maps and oneofs cannot"));
        };
        match inner {
            None if kind.is_some() => {
                return Err(format!("`{path}` is a field of this message: its type is known, write `\"{path}\"`"));
            }
            None if s.label == Label::Repeated || !s.value.is_indexable() => {
                return Err(format!(
                    "field `{name}` cannot be in a composite index: it takes singular integer, bool, string, bytes, \
                     enum or reference fields"
                ));
            }
            None => {}
            Some(inner) => {
                if inner.contains('.') || (syn::parse_str::<syn::Ident>(inner).is_err() && !is_keyword(inner)) {
                    return Err(format!(
                        "`{path}` is not a nested path: it names a field of this message, a dot, and a field of \
                         the embedded message, such as `address.city`"
                    ));
                }
                if s.label == Label::Repeated || !matches!(s.value, Value::Message(_)) {
                    return Err(format!("`{path}` goes through `{name}`, which is not a singular embedded message"));
                }
                let Some(kind) = kind else {
                    return Err(format!(
                        "`{path}` needs the type of `{inner}`: `\"{path}: string\"` (a scalar's name, `enum` or \
                         `reference`)"
                    ));
                };
                if key_scalar(kind).is_none() {
                    return Err(format!(
                        "`{path}: {kind}` cannot be indexed: it takes integer, bool, string, bytes, `enum` or \
                         `reference` fields"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Whether `word` is a Rust keyword a field may have as a raw identifier.
fn is_keyword(word: &str) -> bool {
    syn::parse_str::<syn::Ident>(&format!("r#{word}")).is_ok()
}

/// Numbers and protobuf names are unique within a message.
pub(crate) fn message(msg: &Message, errors: &mut Errors) {
    let mut tags: Vec<(u32, Span)> = Vec::new();
    let mut names: Vec<(&str, Span)> = Vec::new();
    for field in &msg.fields {
        let span = field.ident.span();
        let mut own: Vec<(u32, &str)> = Vec::new();
        match &field.kind {
            FieldKind::Single(s) => own.push((s.tag, &field.name)),
            FieldKind::Map { tag, .. } => own.push((*tag, &field.name)),
            FieldKind::Oneof { members, .. } => {
                unique_name(&mut names, &field.name, span, errors);
                own.extend(members.iter().map(|m| (m.tag, m.name.as_str())));
            }
        }
        for (tag, name) in own {
            if let Some((_, first)) = tags.iter().find(|(t, _)| *t == tag) {
                let mut err = syn::Error::new(span, format!("duplicate tag {tag}; each field needs its own number"));
                err.combine(syn::Error::new(*first, format!("tag {tag} first used here")));
                errors.push(err);
            } else {
                tags.push((tag, span));
            }
            unique_name(&mut names, name, span, errors);
        }
    }
}

fn unique_name<'a>(names: &mut Vec<(&'a str, Span)>, name: &'a str, span: Span, errors: &mut Errors) {
    if let Some((_, first)) = names.iter().find(|(n, _)| *n == name) {
        let mut err =
            syn::Error::new(span, format!("duplicate protobuf name `{name}`; rename one with `name = \"...\"`"));
        err.combine(syn::Error::new(*first, format!("`{name}` first used here")));
        errors.push(err);
    } else {
        names.push((name, span));
    }
}

/// Value names are unique and aliases name existing variants.
pub(crate) fn enumeration(e: &Enum, errors: &mut Errors) {
    let mut names: Vec<(&str, Span)> = Vec::new();
    for v in &e.variants {
        unique_name(&mut names, &v.name, v.ident.span(), errors);
    }
    for a in &e.aliases {
        unique_name(&mut names, &a.name, a.ident.span(), errors);
        if !e.variants.iter().any(|v| v.ident == a.variant) {
            errors.push(syn::Error::new(
                a.variant.span(),
                format!("alias `{}` names no variant `{}`; name one of this enum's variants", a.ident, a.variant),
            ));
        }
    }
}

/// The Rust type of a field matches what its protobuf type is stored as, so a
/// mismatch is reported on the field and not inside generated code.
pub(crate) fn rust_type(field: &Field, actual: &Type, errors: &mut Errors) {
    let Ok(expected) = syn::parse2::<Type>(crate::types::field_type(field, &quote::quote!(pbpersist))) else { return };
    if !same_shape(&expected, actual) {
        errors.push(syn::Error::new_spanned(
            actual,
            format!("this field's protobuf type is stored as `{}`; change the Rust type to that", short(&expected)),
        ));
    }
}

/// The type names whose meaning the check knows; any other name (an alias, a
/// user type) is left to the compiler.
const KNOWN: [&str; 16] = [
    "Option",
    "Vec",
    "Box",
    "BTreeMap",
    "HashMap",
    "String",
    "bool",
    "i32",
    "i64",
    "u32",
    "u64",
    "f32",
    "f64",
    "u8",
    "Ref",
    "EnumValue",
];

fn last(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        _ => None,
    }
}

fn type_args(seg: &syn::PathSegment) -> Vec<&Type> {
    match &seg.arguments {
        PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|a| match a {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn same_shape(expected: &Type, actual: &Type) -> bool {
    let (Some(e), Some(a)) = (last(expected), last(actual)) else { return true };
    let name = a.ident.to_string();
    if !KNOWN.contains(&name.as_str()) {
        return true;
    }
    let maps = ["BTreeMap", "HashMap"];
    let same = e.ident == a.ident || (maps.contains(&name.as_str()) && maps.iter().any(|m| e.ident == m));
    let (ea, aa) = (type_args(e), type_args(a));
    same && ea.len() == aa.len() && ea.iter().zip(&aa).all(|(e, a)| same_shape(e, a))
}

/// A type with each path shortened to its last segment, for messages.
fn short(ty: &Type) -> String {
    let Some(seg) = last(ty) else { return ty.to_token_stream().to_string() };
    let args = type_args(seg);
    if args.is_empty() {
        seg.ident.to_string()
    } else {
        let args: Vec<String> = args.into_iter().map(short).collect();
        format!("{}<{}>", seg.ident, args.join(", "))
    }
}
