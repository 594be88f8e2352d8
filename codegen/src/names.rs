//! Rust names for protobuf names.

use heck::{ToSnakeCase, ToUpperCamelCase};
use proc_macro2::Ident;
use quote::format_ident;

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern", "false", "fn", "for", "if",
    "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "static", "struct", "trait",
    "true", "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "gen", "macro",
    "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
];

/// Names that cannot be raw identifiers.
const NOT_RAW: &[&str] = &["self", "Self", "super", "crate", "_"];

/// An identifier, escaped if it is a keyword.
pub fn ident(name: &str) -> Ident {
    if NOT_RAW.contains(&name) {
        format_ident!("{name}_")
    } else if KEYWORDS.contains(&name) {
        format_ident!("r#{name}")
    } else {
        format_ident!("{name}")
    }
}

/// The struct field name for a protobuf field.
pub fn field(name: &str) -> Ident {
    ident(&name.to_snake_case())
}

/// The module name for a message's nested types, or a package component.
pub fn module(name: &str) -> Ident {
    ident(&name.to_snake_case())
}

/// The type name for a message, enum or oneof.
pub fn type_name(name: &str) -> Ident {
    ident(&name.to_upper_camel_case())
}

/// The constant name of an extension.
pub fn constant(name: &str) -> Ident {
    use heck::ToShoutySnakeCase;
    ident(&name.to_shouty_snake_case())
}

/// The constant name of an enum alias, without the enum's name as a prefix.
pub fn alias(enum_name: &str, value: &str) -> Ident {
    use heck::ToShoutySnakeCase;
    ident(&variant(enum_name, value).to_string().trim_start_matches("r#").to_shouty_snake_case())
}

/// The variant name of an enum value, without the enum's name as a prefix.
pub fn variant(enum_name: &str, value: &str) -> Ident {
    let prefix = enum_name.to_snake_case().to_uppercase();
    let stripped = value
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .filter(|rest| rest.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
        .unwrap_or(value);
    type_name(stripped)
}
