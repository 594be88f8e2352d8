//! What the Rust types of a field say about its protobuf type, and schema
//! defaults checked against the field's type.

use super::attr::RawValue;
use crate::model::{DefaultValue, Scalar, Value};
use syn::spanned::Spanned;
use syn::{Expr, GenericArgument, Lit, PathArguments, Type, UnOp};

/// The `index`th generic argument of `ty` when its last path segment is `name`.
pub(crate) fn type_arg<'a>(ty: &'a Type, name: &str, index: usize) -> Option<&'a Type> {
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

pub(crate) fn is_ident(ty: &Type, name: &str) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.is_ident(name))
}

/// The key and value types of a `BTreeMap<K, V>` (or `HashMap`).
pub(crate) fn map_args(ty: &Type) -> Option<(&Type, &Type)> {
    ["BTreeMap", "HashMap"].into_iter().find_map(|m| Some((type_arg(ty, m, 0)?, type_arg(ty, m, 1)?)))
}

/// The protobuf type a Rust element type stands for, when it is unambiguous.
/// Returns whether a message is boxed.
pub(crate) fn infer_value(ty: &Type) -> syn::Result<(RawValue, bool)> {
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
pub(crate) fn infer_map(ty: &Type) -> syn::Result<Option<(Scalar, RawValue)>> {
    let Some((k, v)) = map_args(ty) else { return Ok(None) };
    let key = match infer_value(k) {
        Ok((RawValue::Scalar(s), _)) if s.is_map_key() => s,
        _ => return Err(syn::Error::new(k.span(), "map keys must be an integer type, bool or string")),
    };
    let (value, boxed) = infer_value(v).map_err(|_| {
        syn::Error::new(v.span(), "name the map's types when the value is a message, e.g. `map(string, message)`")
    })?;
    if boxed {
        return Err(syn::Error::new(v.span(), "map values are not boxed; write the message type itself"));
    }
    Ok(Some((key, value)))
}

/// Combines the attribute's type word with the Rust element type.
pub(crate) fn resolve_value(raw: RawValue, elem: &Type) -> syn::Result<Value> {
    Ok(match raw {
        RawValue::Scalar(s) => Value::Scalar(s),
        RawValue::Message(t) => Value::Message(t.unwrap_or_else(|| elem.clone())),
        RawValue::Enum(t) => match t {
            Some(t) => Value::Enum(t),
            None => Value::Enum(type_arg(elem, "EnumValue", 0).cloned().ok_or_else(|| {
                syn::Error::new(
                    elem.span(),
                    "an enum field must have type `EnumValue<E>` (or write `enumeration = \"E\"`)",
                )
            })?),
        },
        RawValue::Ref(t) => match t {
            Some(t) => Value::Ref(t),
            None => Value::Ref(type_arg(elem, "Ref", 0).cloned().ok_or_else(|| {
                syn::Error::new(elem.span(), "a reference field must have type `Ref<T>` (or write `reference = \"T\"`)")
            })?),
        },
    })
}

fn int_expr(expr: &Expr) -> syn::Result<i128> {
    match expr {
        Expr::Lit(l) => match &l.lit {
            Lit::Int(i) => i.base10_parse(),
            _ => Err(syn::Error::new(expr.span(), "expected an integer, such as `3` or `-1`")),
        },
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => Ok(-int_expr(&u.expr)?),
        Expr::Group(g) => int_expr(&g.expr),
        _ => Err(syn::Error::new(expr.span(), "expected an integer, such as `3` or `-1`")),
    }
}

/// The number of an enum value's discriminant.
pub(crate) fn discriminant(expr: &Expr) -> syn::Result<i32> {
    let n = int_expr(expr)?;
    i32::try_from(n).map_err(|_| syn::Error::new(expr.span(), "enum numbers must fit in i32"))
}

fn float_expr(expr: &Expr) -> syn::Result<f64> {
    let msg = "expected a number, \"inf\", \"-inf\" or \"nan\"";
    match expr {
        Expr::Lit(l) => match &l.lit {
            Lit::Float(f) => f.base10_parse(),
            Lit::Int(i) => Ok(i.base10_parse::<i128>()? as f64),
            Lit::Str(s) => match s.value().as_str() {
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                "nan" => Ok(f64::NAN),
                _ => Err(syn::Error::new(s.span(), msg)),
            },
            _ => Err(syn::Error::new(expr.span(), msg)),
        },
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => Ok(-float_expr(&u.expr)?),
        Expr::Group(g) => float_expr(&g.expr),
        _ => Err(syn::Error::new(expr.span(), msg)),
    }
}

/// Checks a default against the field type and converts it.
pub(crate) fn default_value(expr: &Expr, value: &Value) -> syn::Result<DefaultValue> {
    let bad = |msg: &str| syn::Error::new(expr.span(), msg);
    let lit = match expr {
        Expr::Lit(l) => Some(&l.lit),
        _ => None,
    };
    match value {
        Value::Scalar(Scalar::String) => match lit {
            Some(Lit::Str(s)) => Ok(DefaultValue::Str(s.value())),
            _ => Err(bad("a string field's default must be a string literal, such as `\"none\"`")),
        },
        Value::Scalar(Scalar::Bytes) => match lit {
            Some(Lit::ByteStr(b)) => Ok(DefaultValue::Bytes(b.value())),
            Some(Lit::Str(s)) => Ok(DefaultValue::Bytes(s.value().into_bytes())),
            _ => Err(bad("a bytes field's default must be a byte string literal, such as `b\"\\x00\"`")),
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
                return Err(bad(&format!("default {v} is out of range for {} ({lo}..={hi})", s.proto_name())));
            }
            Ok(DefaultValue::Int(v))
        }
        Value::Enum(_) => {
            let v = int_expr(expr).map_err(|_| bad("an enum field's default is the value's number, such as `1`"))?;
            if i32::try_from(v).is_err() {
                return Err(bad("enum numbers must fit in i32"));
            }
            Ok(DefaultValue::Int(v))
        }
        Value::Message(_) | Value::Ref(_) => {
            Err(bad("only scalar and enum fields can have a default; remove `default` or set the field in code"))
        }
    }
}
