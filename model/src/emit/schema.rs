//! `describe_schema`: the `.proto` definition of a message or enum, built at
//! run time because field types name other types by their `TYPE_NAME`.

use super::Ctx;
use crate::model::*;
use proc_macro2::TokenStream;
use quote::quote;

/// The package: explicit, or everything before the last dot of the full name.
pub(crate) fn package(full_name: &str, explicit: Option<&String>) -> String {
    explicit.cloned().unwrap_or_else(|| full_name.rsplit_once('.').map(|(p, _)| p.to_owned()).unwrap_or_default())
}

/// The `fn describe_schema` of a message.
pub(crate) fn message(ctx: &Ctx<'_>) -> TokenStream {
    let msg = ctx.msg;
    let package = package(&msg.full_name, msg.package.as_ref());
    let mut fields = Vec::new();
    let mut deps = Vec::new();
    let mut proto2 = false;
    for f in &msg.fields {
        let name = &f.name;
        match &f.kind {
            FieldKind::Single(s) => {
                proto2 |= s.label == Label::Required || s.default.is_some() || s.group;
                let label = match s.label {
                    Label::Optional => "optional",
                    Label::Required => "required",
                    Label::Repeated => "repeated",
                    Label::Implicit => "",
                };
                let ty = type_text(&s.value, &mut deps);
                let target = target_text(&s.value);
                let default = s
                    .default
                    .as_ref()
                    .map(|d| default_text(d, &s.value))
                    .map(|d| quote!(Some(#d)))
                    .unwrap_or(quote!(None));
                let tag = s.tag;
                let packed = if s.label == Label::Repeated && s.value.is_packable() {
                    let p = s.packed;
                    quote!(Some(#p))
                } else {
                    quote!(None)
                };
                let group = s.group;
                let index = match s.index {
                    Some(IndexSpec { unique }) => quote!(Some(#unique)),
                    None => quote!(None),
                };
                fields.push(quote! {
                    __pbpersist::__private::schema::FieldDef {
                        label: #label, ty: #ty, name: #name, tag: #tag, default: #default, packed: #packed,
                        target: #target, group: #group, index: #index, oneof: ::std::vec::Vec::new(),
                    }
                });
            }
            FieldKind::Map { tag, key, value } => {
                let k = key.proto_name();
                let v = type_text(value, &mut deps);
                let target = target_text(value);
                fields.push(quote! {
                    __pbpersist::__private::schema::FieldDef {
                        label: "", ty: format!("map<{}, {}>", #k, #v), name: #name, tag: #tag, default: None,
                        packed: None, target: #target, group: false, index: None, oneof: ::std::vec::Vec::new(),
                    }
                });
            }
            FieldKind::Oneof { members, .. } => {
                let lines = members
                    .iter()
                    .map(|m| {
                        let ty = type_text(&m.value, &mut deps);
                        let target = target_text(&m.value);
                        let (mname, tag, group) = (&m.name, m.tag, m.group);
                        quote! {
                            __pbpersist::__private::schema::FieldDef {
                                label: "", ty: #ty, name: #mname, tag: #tag, default: None, packed: None,
                                target: #target, group: #group, index: None, oneof: ::std::vec::Vec::new(),
                            }
                        }
                    })
                    .collect::<Vec<_>>();
                fields.push(quote! {
                    __pbpersist::__private::schema::FieldDef::oneof(#name, vec![#(#lines),*])
                });
            }
        }
    }
    let indexes = msg.indexes.iter().map(|i| {
        let fields: Vec<&str> = i.parts().into_iter().map(|(path, _)| path).collect();
        let unique = i.unique;
        quote!((vec![#(#fields),*], #unique))
    });
    let extent = msg.extent;
    quote! {
        fn describe_schema(schema: &mut __pbpersist::schema::ProtoSchema) {
            if !schema.begin(<Self as __pbpersist::Persistent>::TYPE_NAME) {
                return;
            }
            schema.add_message(__pbpersist::__private::schema::MessageDef {
                full_name: <Self as __pbpersist::Persistent>::TYPE_NAME,
                package: #package,
                proto2: #proto2,
                fields: vec![#(#fields),*],
                indexes: vec![#(#indexes),*],
                extent: #extent,
            });
            #(#deps)*
        }
    }
}

/// The `fn describe_schema` of an enum.
pub(crate) fn enumeration(e: &Enum) -> TokenStream {
    let package = package(&e.full_name, e.package.as_ref());
    let values = e.variants.iter().map(|v| {
        let (name, number) = (&v.name, v.number);
        quote!((#name, #number))
    });
    let aliases = e.aliases.iter().map(|a| {
        let (name, variant) = (&a.name, &a.variant);
        quote!((#name, Self::#variant as i32))
    });
    let closed = e.closed;
    quote! {
        fn describe_schema(schema: &mut __pbpersist::schema::ProtoSchema) {
            if schema.begin(<Self as __pbpersist::Enumeration>::TYPE_NAME) {
                schema.add_enum(__pbpersist::__private::schema::EnumDef {
                    full_name: <Self as __pbpersist::Enumeration>::TYPE_NAME,
                    package: #package,
                    closed: #closed,
                    values: vec![#(#values,)* #(#aliases),*],
                });
            }
        }
    }
}

/// The field type as text, and the dependency to describe.
fn type_text(value: &Value, deps: &mut Vec<TokenStream>) -> TokenStream {
    match value {
        Value::Scalar(s) => {
            let name = s.proto_name();
            quote!(::std::string::String::from(#name))
        }
        Value::Message(ty) => {
            deps.push(quote!(<#ty as __pbpersist::Persistent>::describe_schema(schema);));
            quote!(format!(".{}", <#ty as __pbpersist::Persistent>::TYPE_NAME))
        }
        Value::Enum(ty) => {
            deps.push(quote!(<#ty as __pbpersist::Enumeration>::describe_schema(schema);));
            quote!(format!(".{}", <#ty as __pbpersist::Enumeration>::TYPE_NAME))
        }
        Value::Ref(_) => quote!(::std::string::String::from(".pbpersist.Ref")),
    }
}

/// A reference's target type name, if it has one.
fn target_text(value: &Value) -> TokenStream {
    match value {
        Value::Ref(ty) if !is_any_object(ty) => {
            quote!(Some(<#ty as __pbpersist::object::RefTarget>::TARGET_NAME))
        }
        _ => quote!(None),
    }
}

/// A default value as `.proto` text.
fn default_text(d: &DefaultValue, value: &Value) -> TokenStream {
    match (d, value) {
        (DefaultValue::Int(n), Value::Enum(ty)) => {
            let n = *n as i32;
            quote!(
                <#ty as __pbpersist::Enumeration>::from_i32(#n)
                    .map(|v| __pbpersist::Enumeration::proto_name(v).to_owned())
                    .unwrap_or_else(|| (#n).to_string())
            )
        }
        (DefaultValue::Int(n), _) => {
            let s = n.to_string();
            quote!(::std::string::String::from(#s))
        }
        (DefaultValue::Float(f), _) => {
            let s = if f.is_nan() {
                "nan".to_owned()
            } else if f.is_infinite() {
                if *f > 0.0 { "inf".to_owned() } else { "-inf".to_owned() }
            } else {
                format!("{f:?}")
            };
            quote!(::std::string::String::from(#s))
        }
        (DefaultValue::Bool(b), _) => {
            let s = b.to_string();
            quote!(::std::string::String::from(#s))
        }
        (DefaultValue::Str(s), _) => quote!(__pbpersist::__private::schema::quote_bytes(#s.as_bytes())),
        (DefaultValue::Bytes(b), _) => {
            let lit = proc_macro2::Literal::byte_string(b);
            quote!(__pbpersist::__private::schema::quote_bytes(#lit))
        }
    }
}

/// Whether a reference may point to any type (`Ref<AnyObject>`).
fn is_any_object(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "AnyObject"))
}
