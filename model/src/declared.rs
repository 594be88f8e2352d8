//! The indexes a descriptor pool declares, named and typed exactly as the
//! generated code names and types them, so that a tool reading a
//! database's stored schemas (`pbpersist::index::stored_indexes`) and the
//! schema-change check (`pbpersist-build`'s `index_changes`) agree with
//! the program on every index.

use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor, Value};

/// One index a schema declares: a field's `(pbpersist.index)`, a message's
/// `(pbpersist.composite_index)` or its `(pbpersist.extent)`.
#[derive(Debug, Clone)]
pub struct DeclaredIndex {
    /// The index's name: `pkg.Msg.field`, `pkg.Msg.a+b`, `pkg.Msg.extent`.
    pub name: String,
    /// The message it indexes.
    pub message: MessageDescriptor,
    /// The key's parts in order, each a path of fields from the message
    /// (one field, or embedded messages' fields down to the value); none
    /// for an extent.
    pub parts: Vec<Vec<FieldDescriptor>>,
    /// Whether two objects may not share a key.
    pub unique: bool,
    /// The key type as the runtime records it: `string`, `(string,int64)`, `()`.
    pub kind: String,
}

/// A declaration that names what cannot be indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The message's full name.
    pub message: String,
    /// Why.
    pub reason: String,
}

/// The key type an indexed value of `field`'s kind has, as the runtime
/// records it; `None` for what cannot be a key (floats, messages).
pub fn key_kind(field: &FieldDescriptor) -> Option<&'static str> {
    Some(match field.kind() {
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Enum(_) => "int32",
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => "int64",
        Kind::Uint32 | Kind::Fixed32 => "uint32",
        Kind::Uint64 | Kind::Fixed64 => "uint64",
        Kind::Bool => "bool",
        Kind::String => "string",
        Kind::Bytes => "bytes",
        Kind::Message(m) if m.full_name() == "pbpersist.Ref" => "uint64",
        Kind::Float | Kind::Double | Kind::Message(_) => return None,
    })
}

/// Whether `msg` is an application's message, not protobuf's or pbpersist's own.
fn is_user_message(msg: &MessageDescriptor) -> bool {
    let file = msg.parent_file();
    let name = file.name();
    !msg.is_map_entry() && !name.starts_with("google/protobuf/") && !name.starts_with("pbpersist/")
}

/// Every index `pool`'s application messages declare, sorted by name, and
/// the declarations that cannot be indexes.
pub fn indexes(pool: &DescriptorPool) -> (Vec<DeclaredIndex>, Vec<Refused>) {
    let (mut out, mut refused) = (Vec::new(), Vec::new());
    let field_ext = pool.get_extension_by_name("pbpersist.index");
    let composite_ext = pool.get_extension_by_name("pbpersist.composite_index");
    let extent_ext = pool.get_extension_by_name("pbpersist.extent");
    for msg in pool.all_messages().filter(is_user_message) {
        if let Some(ext) = &field_ext {
            for field in msg.fields() {
                let options = field.options();
                if !options.has_extension(ext) {
                    continue;
                }
                let Some(kind) = key_kind(&field) else { continue };
                let unique = flag(&options.get_extension(ext), "unique");
                out.push(DeclaredIndex {
                    name: field.full_name().to_owned(),
                    message: msg.clone(),
                    parts: vec![vec![field]],
                    unique,
                    kind: kind.to_owned(),
                });
            }
        }
        let options = msg.options();
        if let Some(ext) = &composite_ext
            && options.has_extension(ext)
        {
            let value = options.get_extension(ext);
            for index in value.as_list().unwrap_or_default() {
                let names: Vec<String> = index
                    .as_message()
                    .and_then(|m| m.get_field_by_name("fields"))
                    .and_then(|v| v.as_list().map(|l| l.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()))
                    .unwrap_or_default();
                match composite(&msg, &names) {
                    Ok((parts, kind)) => out.push(DeclaredIndex {
                        name: format!("{}.{}", msg.full_name(), names.join("+")),
                        message: msg.clone(),
                        parts,
                        unique: flag(index, "unique"),
                        kind,
                    }),
                    Err(reason) => refused.push(Refused { message: msg.full_name().to_owned(), reason }),
                }
            }
        }
        if let Some(ext) = &extent_ext
            && options.has_extension(ext)
            && options.get_extension(ext).as_bool() == Some(true)
        {
            out.push(DeclaredIndex {
                name: format!("{}.extent", msg.full_name()),
                message: msg.clone(),
                parts: Vec::new(),
                unique: false,
                kind: "()".to_owned(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    (out, refused)
}

fn flag(value: &Value, name: &str) -> bool {
    value.as_message().and_then(|m| m.get_field_by_name(name)).and_then(|v| v.as_bool()).unwrap_or(false)
}

/// The parts and key type of a composite index over `names`, each a field
/// of `msg` or a dotted path through its embedded messages; the same rules
/// as `parse::check_composite`.
pub fn composite(msg: &MessageDescriptor, names: &[String]) -> Result<(Vec<Vec<FieldDescriptor>>, String), String> {
    let nested = names.iter().any(|n| n.contains('.'));
    if names.is_empty() || names.len() > 3 || (names.len() == 1 && !nested) {
        return Err("a composite index names two or three fields, or one nested path such as `address.city`".into());
    }
    let mut parts = Vec::new();
    let mut kinds = Vec::new();
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(format!("field `{name}` is named twice in this index"));
        }
        let path = path(msg, name)?;
        let leaf = path.last().ok_or_else(|| format!("no field `{name}` to index"))?;
        match key_kind(leaf) {
            Some(kind) if !leaf.is_list() => kinds.push(kind),
            _ => {
                return Err(format!(
                    "field `{name}` cannot be in a composite index: it takes singular integer, bool, string, bytes, \
                     enum or reference fields"
                ));
            }
        }
        parts.push(path);
    }
    let kind = if kinds.len() == 1 { kinds[0].to_owned() } else { format!("({})", kinds.join(",")) };
    Ok((parts, kind))
}

/// The fields along `path` (`address.city`) from `msg`: every field but the
/// last a singular embedded message.
fn path(msg: &MessageDescriptor, path: &str) -> Result<Vec<FieldDescriptor>, String> {
    let mut fields = Vec::new();
    let mut at = msg.clone();
    let segments: Vec<&str> = path.split('.').collect();
    for (i, segment) in segments.iter().enumerate() {
        let field = at.get_field_by_name(segment).ok_or_else(|| {
            let so_far = segments[..i].join(".");
            if so_far.is_empty() {
                format!("no field `{segment}` to index")
            } else {
                format!("no field `{segment}` in `{so_far}` ({})", at.full_name())
            }
        })?;
        if i + 1 < segments.len() {
            match field.kind() {
                Kind::Message(m) if !field.is_list() && !field.is_map() && m.full_name() != "pbpersist.Ref" => at = m,
                _ => {
                    return Err(format!("`{path}` goes through `{segment}`, which is not a singular embedded message"));
                }
            }
        }
        fields.push(field);
    }
    Ok(fields)
}
