//! Parses `#[pbpersist(...)]`-annotated Rust items into the model.
//!
//! Errors are `syn::Error`s spanned on the offending token, so the derive
//! reports them where the user wrote them.

use crate::model::*;
use heck::ToUpperCamelCase;
use proc_macro2::{Ident, Span};
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Expr, Fields, GenericArgument, Lit, LitStr, PathArguments, Type, UnOp};

/// Parses a struct annotated for `#[derive(Persistent)]`.
pub fn message(input: &DeriveInput) -> syn::Result<Message> {
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new(input.ident.span(), "#[derive(Persistent)] needs a struct with named fields"));
    };
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new(input.generics.span(), "persistent messages cannot be generic"));
    }
    let Fields::Named(named) = &data.fields else {
        return Err(syn::Error::new(input.ident.span(), "#[derive(Persistent)] needs a struct with named fields"));
    };
    let mut full_name = None;
    let mut resolver = None;
    let mut former_names = Vec::new();
    let mut package = None;
    for attr in pbpersist_attrs(&input.attrs) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("message") {
                full_name = Some(meta.value()?.parse::<LitStr>()?.value());
                Ok(())
            } else if meta.path.is_ident("package") {
                package = Some(meta.value()?.parse::<LitStr>()?.value());
                Ok(())
            } else if meta.path.is_ident("former_name") {
                former_names.push(meta.value()?.parse::<LitStr>()?.value());
                Ok(())
            } else if meta.path.is_ident("resolve_conflicts") {
                let lit = meta.value()?.parse::<LitStr>()?;
                lit.parse::<syn::Path>()?;
                resolver = Some(lit.value());
                Ok(())
            } else {
                Err(meta.error(
                    "unknown pbpersist option; expected `message = \"package.Name\"` or `resolve_conflicts = \"path\"`",
                ))
            }
        })?;
    }
    let mut fields = Vec::new();
    let tracks_fields = named.named.iter().all(|f| matches!(f.vis, syn::Visibility::Inherited));
    let mut meta_field = None;
    let mut tags: Vec<(u32, Span)> = Vec::new();
    for f in &named.named {
        let ident = f.ident.clone().expect("named fields have names");
        if is_meta_field(f)? {
            if meta_field.is_some() {
                return Err(syn::Error::new(ident.span(), "only one field may be `#[pbpersist(meta)]`"));
            }
            meta_field = Some(ident);
            continue;
        }
        let field = field(f, ident)?;
        let numbers: Vec<u32> = match &field.kind {
            FieldKind::Single(s) => vec![s.tag],
            FieldKind::Map { tag, .. } => vec![*tag],
            FieldKind::Oneof { members, .. } => members.iter().map(|m| m.tag).collect(),
        };
        for n in numbers {
            if let Some((_, first)) = tags.iter().find(|(t, _)| *t == n) {
                let mut err = syn::Error::new(field.ident.span(), format!("duplicate tag {n}"));
                err.combine(syn::Error::new(*first, format!("tag {n} first used here")));
                return Err(err);
            }
            tags.push((n, field.ident.span()));
        }
        fields.push(field);
    }
    let meta = meta_field.ok_or_else(|| {
        syn::Error::new(
            input.ident.span(),
            "a persistent struct needs a bookkeeping field: `#[pbpersist(meta)] meta: pbpersist::Meta`",
        )
    })?;
    let (docs, deprecated) = docs(&input.attrs);
    Ok(Message {
        ident: input.ident.clone(),
        full_name: full_name.unwrap_or_else(|| input.ident.to_string()),
        package,
        docs,
        deprecated,
        fields,
        meta,
        tracks_fields,
        former_names,
        resolver,
    })
}

/// Parses an enum annotated for `#[derive(Enumeration)]`.
pub fn enumeration(input: &DeriveInput) -> syn::Result<Enum> {
    let Data::Enum(data) = &input.data else {
        return Err(syn::Error::new(input.ident.span(), "#[derive(Enumeration)] needs a fieldless enum"));
    };
    let mut full_name = None;
    let mut closed = false;
    let mut package = None;
    let mut aliases = Vec::new();
    for attr in pbpersist_attrs(&input.attrs) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("enumeration") {
                full_name = Some(meta.value()?.parse::<LitStr>()?.value());
                Ok(())
            } else if meta.path.is_ident("package") {
                package = Some(meta.value()?.parse::<LitStr>()?.value());
                Ok(())
            } else if meta.path.is_ident("closed") {
                closed = true;
                Ok(())
            } else if meta.path.is_ident("alias") {
                let (mut ident, mut name, mut variant) = (None, None, None);
                meta.parse_nested_meta(|inner| {
                    let value: LitStr = inner.value()?.parse()?;
                    if inner.path.is_ident("ident") {
                        ident = Some(value.parse::<Ident>()?);
                    } else if inner.path.is_ident("name") {
                        name = Some(value.value());
                    } else if inner.path.is_ident("variant") {
                        variant = Some(value.parse::<Ident>()?);
                    } else {
                        return Err(inner.error("expected `ident`, `name` or `variant`"));
                    }
                    Ok(())
                })?;
                match (ident, name, variant) {
                    (Some(ident), Some(name), Some(variant)) => aliases.push(Alias { ident, name, variant }),
                    _ => return Err(meta.error("an alias needs `ident`, `name` and `variant`")),
                }
                Ok(())
            } else {
                Err(meta.error(
                    "unknown pbpersist option; expected `enumeration = \"package.Name\"`, `closed` or `alias(...)`",
                ))
            }
        })?;
    }
    let mut variants = Vec::new();
    for v in &data.variants {
        if !matches!(v.fields, Fields::Unit) {
            return Err(syn::Error::new(v.span(), "enum values cannot carry data"));
        }
        let Some((_, expr)) = &v.discriminant else {
            return Err(syn::Error::new(v.span(), "each enum value needs an explicit number, e.g. `Foo = 1`"));
        };
        let number = int_expr(expr)?;
        let number = i32::try_from(number).map_err(|_| syn::Error::new(expr.span(), "enum numbers must fit in i32"))?;
        let mut name = v.ident.to_string();
        for attr in pbpersist_attrs(&v.attrs) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("name") {
                    name = meta.value()?.parse::<LitStr>()?.value();
                    Ok(())
                } else {
                    Err(meta.error("unknown pbpersist option; expected `name = \"VALUE_NAME\"`"))
                }
            })?;
        }
        let (docs, deprecated) = docs(&v.attrs);
        variants.push(Variant { ident: v.ident.clone(), name, number, docs, deprecated });
    }
    if variants.is_empty() {
        return Err(syn::Error::new(input.ident.span(), "an enum needs at least one value"));
    }
    let (docs, deprecated) = docs(&input.attrs);
    Ok(Enum {
        ident: input.ident.clone(),
        full_name: full_name.unwrap_or_else(|| input.ident.to_string()),
        package,
        docs,
        deprecated,
        variants,
        aliases,
        closed,
    })
}

fn pbpersist_attrs(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("pbpersist"))
}

fn is_meta_field(f: &syn::Field) -> syn::Result<bool> {
    let mut is_meta = false;
    for attr in pbpersist_attrs(&f.attrs) {
        // Only a bare `meta` marks the bookkeeping field; anything else is a field attribute.
        if let Ok(path) = attr.parse_args::<syn::Path>()
            && path.is_ident("meta")
        {
            is_meta = true;
        }
    }
    Ok(is_meta)
}

/// What one field's attribute says, before the type is looked at.
#[derive(Default)]
struct Raw {
    tag: Option<(u32, Span)>,
    label: Option<Label>,
    value: Option<RawValue>,
    default: Option<Expr>,
    boxed: bool,
    packed: bool,
    group: bool,
    name: Option<String>,
    variant: Option<String>,
    map: Option<(Scalar, RawValue)>,
    oneof: Option<Vec<Member>>,
}

#[derive(Clone)]
enum RawValue {
    Scalar(Scalar),
    Message(Option<Type>),
    Enum(Option<Type>),
    Ref(Option<Type>),
}

fn field(f: &syn::Field, ident: Ident) -> syn::Result<Field> {
    let mut raw = Raw::default();
    let mut seen_attr = false;
    for attr in pbpersist_attrs(&f.attrs) {
        seen_attr = true;
        attr.parse_nested_meta(|meta| raw_item(&mut raw, meta))?;
    }
    if !seen_attr {
        return Err(syn::Error::new(ident.span(), "this field needs `#[pbpersist(tag = N, <type>)]`"));
    }
    let (docs, deprecated) = docs(&f.attrs);
    let name = raw.name.clone().unwrap_or_else(|| ident.to_string().trim_start_matches("r#").to_owned());
    let kind = if let Some(members) = raw.oneof.take() {
        let ty = type_arg(&f.ty, "Option", 0)
            .ok_or_else(|| syn::Error::new(f.ty.span(), "a oneof field must have type `Option<OneofEnum>`"))?;
        FieldKind::Oneof { ty: ty.clone(), members }
    } else if let Some((key, value)) = match raw.map.take() {
        Some(map) => Some(map),
        None => infer_map(&f.ty, raw.value.is_none())?,
    } {
        let tag = require_tag(&raw, &ident)?;
        let v = type_arg(&f.ty, "BTreeMap", 1)
            .or_else(|| type_arg(&f.ty, "HashMap", 1))
            .ok_or_else(|| syn::Error::new(f.ty.span(), "a map field must have type `BTreeMap<K, V>`"))?;
        FieldKind::Map { tag, key, value: resolve_value(value, v)? }
    } else {
        let tag = require_tag(&raw, &ident)?;
        // Without a label, the Rust type says: `Option<T>` has presence,
        // `Vec<T>` repeats (except `Vec<u8>`, which is bytes).
        let label = raw.label.unwrap_or_else(|| {
            if type_arg(&f.ty, "Option", 0).is_some() {
                Label::Optional
            } else if type_arg(&f.ty, "Vec", 0).is_some_and(|t| !is_ident(t, "u8")) {
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
        let value = match (raw.value.clone(), element) {
            (Some(v), _) => v,
            (None, Some(elem)) => {
                let (v, boxed) = infer_value(elem)?;
                raw.boxed |= boxed;
                v
            }
            (None, None) => {
                return Err(syn::Error::new(
                    ident.span(),
                    "missing field type, e.g. `string`, `int32`, `message`, `enumeration` or `reference`",
                ));
            }
        };
        let mut elem = &f.ty;
        if matches!(label, Label::Optional | Label::Required) {
            elem = type_arg(elem, "Option", 0)
                .ok_or_else(|| syn::Error::new(f.ty.span(), "a field with presence must have type `Option<T>`"))?;
        } else if label == Label::Repeated {
            elem = type_arg(elem, "Vec", 0)
                .ok_or_else(|| syn::Error::new(f.ty.span(), "a repeated field must have type `Vec<T>`"))?;
        }
        if raw.boxed {
            elem = type_arg(elem, "Box", 0)
                .ok_or_else(|| syn::Error::new(f.ty.span(), "a boxed field must have type `Option<Box<T>>`"))?;
        }
        let value = resolve_value(value, elem)?;
        let default = match &raw.default {
            Some(expr) => Some(default_value(expr, &value)?),
            None => None,
        };
        if raw.packed && !(label == Label::Repeated && value.is_packable()) {
            return Err(syn::Error::new(ident.span(), "only repeated numeric and enum fields can be packed"));
        }
        FieldKind::Single(Single { tag, label, value, default, boxed: raw.boxed, packed: raw.packed, group: raw.group })
    };
    Ok(Field { ident, name, docs, deprecated, kind })
}

fn is_ident(ty: &Type, name: &str) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.is_ident(name))
}

/// The protobuf type a Rust element type stands for, when it is unambiguous.
/// Returns whether a message is boxed.
fn infer_value(ty: &Type) -> syn::Result<(RawValue, bool)> {
    let scalar = |name: &str| match name {
        "String" => Some(Scalar::String),
        "bool" => Some(Scalar::Bool),
        "i32" => Some(Scalar::Int32),
        "i64" => Some(Scalar::Int64),
        "u32" => Some(Scalar::Uint32),
        "u64" => Some(Scalar::Uint64),
        "f32" => Some(Scalar::Float),
        "f64" => Some(Scalar::Double),
        _ => None,
    };
    if let Type::Path(p) = ty
        && let Some(last) = p.path.segments.last()
    {
        let name = last.ident.to_string();
        if let Some(s) = scalar(&name).filter(|_| matches!(last.arguments, PathArguments::None)) {
            return Ok((RawValue::Scalar(s), false));
        }
        if type_arg(ty, "Vec", 0).is_some_and(|t| is_ident(t, "u8")) {
            return Ok((RawValue::Scalar(Scalar::Bytes), false));
        }
        if type_arg(ty, "Ref", 0).is_some() {
            return Ok((RawValue::Ref(None), false));
        }
        if type_arg(ty, "EnumValue", 0).is_some() {
            return Ok((RawValue::Enum(None), false));
        }
        if let Some(inner) = type_arg(ty, "Box", 0) {
            return Ok((RawValue::Message(Some(inner.clone())), true));
        }
    }
    Err(syn::Error::new_spanned(
        ty,
        "unsupported field type: use String, Vec<u8>, bool, i32, i64, u32, u64, f32, f64, Ref<T>, EnumValue<E>, \
         BTreeMap<K, V>, or name the protobuf type, e.g. `message` for a persistent message or `sint32`",
    ))
}

/// A `BTreeMap<K, V>` whose key and value types say their protobuf types.
fn infer_map(ty: &Type, no_type_given: bool) -> syn::Result<Option<(Scalar, RawValue)>> {
    let (Some(k), Some(v)) = (type_arg(ty, "BTreeMap", 0), type_arg(ty, "BTreeMap", 1)) else { return Ok(None) };
    if !no_type_given {
        return Ok(None);
    }
    let key = match infer_value(k)? {
        (RawValue::Scalar(s), _) if s.is_map_key() => s,
        _ => return Err(syn::Error::new(k.span(), "map keys must be an integer type, bool or String")),
    };
    let (value, boxed) = infer_value(v).map_err(|_| {
        syn::Error::new(v.span(), "name the map's types when the value is a message, e.g. `map(string, message)`")
    })?;
    if boxed {
        return Err(syn::Error::new(v.span(), "map values are not boxed"));
    }
    Ok(Some((key, value)))
}

fn require_tag(raw: &Raw, ident: &Ident) -> syn::Result<u32> {
    raw.tag.map(|(t, _)| t).ok_or_else(|| syn::Error::new(ident.span(), "missing `tag = N`"))
}

fn raw_item(raw: &mut Raw, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
    let path = &meta.path;
    let word = path.get_ident().map(|i| i.to_string()).unwrap_or_default();
    match word.as_str() {
        "tag" => {
            let lit: syn::LitInt = meta.value()?.parse()?;
            let tag: u32 = lit.base10_parse()?;
            if tag == 0 || tag > (1 << 29) - 1 || (19_000..=19_999).contains(&tag) {
                return Err(syn::Error::new(lit.span(), "field numbers must be 1..=536870911, outside 19000..=19999"));
            }
            raw.tag = Some((tag, lit.span()));
        }
        "optional" => raw.label = Some(Label::Optional),
        "required" => raw.label = Some(Label::Required),
        "repeated" => raw.label = Some(Label::Repeated),
        "boxed" => raw.boxed = true,
        "packed" => raw.packed = true,
        "group" => {
            raw.group = true;
            let ty =
                if meta.input.peek(syn::Token![=]) { Some(meta.value()?.parse::<LitStr>()?.parse()?) } else { None };
            raw.value = Some(RawValue::Message(ty));
        }
        "default" => raw.default = Some(meta.value()?.parse()?),
        "name" => raw.name = Some(meta.value()?.parse::<LitStr>()?.value()),
        "variant" => raw.variant = Some(meta.value()?.parse::<LitStr>()?.value()),
        "map" => {
            let mut words: Vec<RawValue> = Vec::new();
            meta.parse_nested_meta(|inner| {
                words.push(value_word(&inner)?.ok_or_else(|| inner.error("expected a map key or value type"))?);
                Ok(())
            })?;
            match words.as_slice() {
                [RawValue::Scalar(k), v] if k.is_map_key() => raw.map = Some((*k, v.clone())),
                [_, _] => {
                    return Err(meta.error("map keys must be an integer type, bool or string"));
                }
                _ => return Err(meta.error("expected `map(<key type>, <value type>)`")),
            }
        }
        "oneof" => {
            let mut members = Vec::new();
            meta.parse_nested_meta(|inner| {
                if !inner.path.is_ident("member") {
                    return Err(inner.error("expected `member(name = \"...\", tag = N, <type>)`"));
                }
                let mut m = Raw::default();
                inner.parse_nested_meta(|item| raw_item(&mut m, item))?;
                let name = m.name.clone().ok_or_else(|| inner.error("a oneof member needs `name = \"...\"`"))?;
                let tag = m.tag.map(|t| t.0).ok_or_else(|| inner.error("a oneof member needs `tag = N`"))?;
                let value = match m.value {
                    Some(RawValue::Scalar(s)) => Value::Scalar(s),
                    Some(RawValue::Message(Some(t))) => Value::Message(t),
                    Some(RawValue::Enum(Some(t))) => Value::Enum(t),
                    Some(RawValue::Ref(Some(t))) => Value::Ref(t),
                    Some(_) => {
                        return Err(inner.error("a oneof member needs its type, e.g. `message = \"Address\"`"));
                    }
                    None => return Err(inner.error("a oneof member needs a type")),
                };
                let variant = m.variant.clone().unwrap_or_else(|| name.to_upper_camel_case());
                members.push(Member {
                    variant: syn::parse_str(&variant)?,
                    name,
                    tag,
                    value,
                    boxed: m.boxed,
                    group: m.group,
                    docs: Vec::new(),
                    deprecated: false,
                });
                Ok(())
            })?;
            if members.is_empty() {
                return Err(meta.error("a oneof needs at least one member"));
            }
            raw.oneof = Some(members);
        }
        _ => match value_word(&meta)? {
            Some(v) => raw.value = Some(v),
            None => return Err(meta.error(format!("unknown pbpersist option `{word}`"))),
        },
    }
    Ok(())
}

/// Reads a type word (`int32`, `message`, `message = "Path"`, ...).
fn value_word(meta: &ParseNestedMeta<'_>) -> syn::Result<Option<RawValue>> {
    let word = meta.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
    let explicit = |meta: &ParseNestedMeta<'_>| -> syn::Result<Option<Type>> {
        if meta.input.peek(syn::Token![=]) {
            let s: LitStr = meta.value()?.parse()?;
            Ok(Some(s.parse()?))
        } else {
            Ok(None)
        }
    };
    Ok(Some(match word.as_str() {
        "message" => RawValue::Message(explicit(meta)?),
        "enumeration" => RawValue::Enum(explicit(meta)?),
        "reference" => RawValue::Ref(explicit(meta)?),
        other => match Scalar::from_proto_name(other) {
            Some(s) => RawValue::Scalar(s),
            None => return Ok(None),
        },
    }))
}

/// Combines the attribute's type word with the Rust element type.
fn resolve_value(raw: RawValue, elem: &Type) -> syn::Result<Value> {
    Ok(match raw {
        RawValue::Scalar(s) => Value::Scalar(s),
        RawValue::Message(t) => Value::Message(t.unwrap_or_else(|| elem.clone())),
        RawValue::Enum(t) => match t {
            Some(t) => Value::Enum(t),
            None => Value::Enum(
                type_arg(elem, "EnumValue", 0)
                    .cloned()
                    .ok_or_else(|| syn::Error::new(elem.span(), "an enum field must have type `EnumValue<E>`"))?,
            ),
        },
        RawValue::Ref(t) => match t {
            Some(t) => Value::Ref(t),
            None => Value::Ref(
                type_arg(elem, "Ref", 0)
                    .cloned()
                    .ok_or_else(|| syn::Error::new(elem.span(), "a reference field must have type `Ref<T>`"))?,
            ),
        },
    })
}

/// The `index`th generic argument of `ty` when its last path segment is `name`.
pub fn type_arg<'a>(ty: &'a Type, name: &str, index: usize) -> Option<&'a Type> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    if seg.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &seg.arguments else {
        return None;
    };
    args.args
        .iter()
        .filter_map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        })
        .nth(index)
}

fn int_expr(expr: &Expr) -> syn::Result<i128> {
    match expr {
        Expr::Lit(l) => match &l.lit {
            Lit::Int(i) => i.base10_parse(),
            _ => Err(syn::Error::new(expr.span(), "expected an integer")),
        },
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => Ok(-int_expr(&u.expr)?),
        Expr::Group(g) => int_expr(&g.expr),
        _ => Err(syn::Error::new(expr.span(), "expected an integer")),
    }
}

fn float_expr(expr: &Expr) -> syn::Result<f64> {
    match expr {
        Expr::Lit(l) => match &l.lit {
            Lit::Float(f) => f.base10_parse(),
            Lit::Int(i) => Ok(i.base10_parse::<i128>()? as f64),
            Lit::Str(s) => match s.value().as_str() {
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                "nan" => Ok(f64::NAN),
                _ => Err(syn::Error::new(s.span(), "expected a number, \"inf\", \"-inf\" or \"nan\"")),
            },
            _ => Err(syn::Error::new(expr.span(), "expected a number")),
        },
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => Ok(-float_expr(&u.expr)?),
        Expr::Group(g) => float_expr(&g.expr),
        _ => Err(syn::Error::new(expr.span(), "expected a number")),
    }
}

/// Checks a default against the field type and converts it.
fn default_value(expr: &Expr, value: &Value) -> syn::Result<DefaultValue> {
    let bad = |msg: &str| syn::Error::new(expr.span(), msg);
    let lit = match expr {
        Expr::Lit(l) => Some(&l.lit),
        _ => None,
    };
    match value {
        Value::Scalar(Scalar::String) => match lit {
            Some(Lit::Str(s)) => Ok(DefaultValue::Str(s.value())),
            _ => Err(bad("a string field's default must be a string literal")),
        },
        Value::Scalar(Scalar::Bytes) => match lit {
            Some(Lit::ByteStr(b)) => Ok(DefaultValue::Bytes(b.value())),
            Some(Lit::Str(s)) => Ok(DefaultValue::Bytes(s.value().into_bytes())),
            _ => Err(bad("a bytes field's default must be a byte string literal")),
        },
        Value::Scalar(Scalar::Bool) => match lit {
            Some(Lit::Bool(b)) => Ok(DefaultValue::Bool(b.value)),
            _ => Err(bad("a bool field's default must be `true` or `false`")),
        },
        Value::Scalar(Scalar::Float | Scalar::Double) => Ok(DefaultValue::Float(float_expr(expr)?)),
        Value::Scalar(s) => {
            let v = int_expr(expr)?;
            let (lo, hi): (i128, i128) = match s.rust_type() {
                "i32" => (i32::MIN.into(), i32::MAX.into()),
                "i64" => (i64::MIN.into(), i64::MAX.into()),
                "u32" => (0, u32::MAX.into()),
                _ => (0, u64::MAX.into()),
            };
            if v < lo || v > hi {
                return Err(bad(&format!("default {v} is out of range for {}", s.proto_name())));
            }
            Ok(DefaultValue::Int(v))
        }
        Value::Enum(_) => {
            let v = int_expr(expr).map_err(|_| bad("an enum field's default must be the value's number"))?;
            if i32::try_from(v).is_err() {
                return Err(bad("enum numbers must fit in i32"));
            }
            Ok(DefaultValue::Int(v))
        }
        Value::Message(_) | Value::Ref(_) => Err(bad("only scalar and enum fields can have a default")),
    }
}

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
