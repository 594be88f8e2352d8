//! The data types of the model.

use proc_macro2::Ident;
use syn::Type;

/// A protobuf message that becomes a persistent Rust struct.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The Rust name of the struct.
    pub ident: Ident,
    /// The full protobuf name, such as `demo.Tower`: the stored type name.
    pub full_name: String,
    /// The protobuf package, when it is not everything before the last dot
    /// (nested types).
    pub package: Option<String>,
    /// Documentation lines taken from the `.proto` comments.
    pub docs: Vec<String>,
    /// Whether the message is marked `deprecated`.
    pub deprecated: bool,
    /// The fields in declaration order.
    pub fields: Vec<Field>,
    /// The name of the bookkeeping field (change bits and unknown fields).
    pub meta: Ident,
    /// Whether changes are tracked per field: true when every field is
    /// private (so only accessors change it); with public fields, a
    /// transaction counts an object obtained for writing as changed.
    pub tracks_fields: bool,
    /// Earlier full names of the message (`(pbpersist.former_names)`):
    /// records stored under them load as this message.
    pub former_names: Vec<String>,
    /// A function `fn(old: &T, committed: &T, new: &T) -> Option<T>` that
    /// merges conflicting commits, as a Rust path.
    pub resolver: Option<String>,
    /// The path of the pbpersist crate in emitted code, when it is not
    /// `::pbpersist` (a crate that re-exports pbpersist).
    pub krate: Option<syn::Path>,
    /// Indexes by several fields (`(pbpersist.composite_index)`).
    pub indexes: Vec<CompositeIndex>,
    /// Whether an index of every object of the message is kept
    /// (`(pbpersist.extent)`).
    pub extent: bool,
}

/// An index of a message's objects by two or three of its singular fields,
/// in order (its keys are tuples), or by a field of an embedded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompositeIndex {
    /// The fields' protobuf names. A nested path names a singular embedded
    /// message field and a field of that message, with the indexed field's
    /// type: `address.city: string` (a scalar's name, `enum` or `reference`),
    /// since the derive cannot see the embedded message's fields.
    pub fields: Vec<String>,
    /// Whether a commit that gives two objects one key fails.
    pub unique: bool,
}

impl CompositeIndex {
    /// Each part's path (`born`, `address.city`) and the type written after
    /// a nested path.
    pub fn parts(&self) -> Vec<(&str, Option<&str>)> {
        self.fields
            .iter()
            .map(|f| match f.split_once(':') {
                Some((path, kind)) => (path.trim(), Some(kind.trim())),
                None => (f.trim(), None),
            })
            .collect()
    }

    /// The index's name after the message's full name: the paths joined by `+`.
    pub fn suffix(&self) -> String {
        self.parts().iter().map(|(p, _)| *p).collect::<Vec<_>>().join("+")
    }
}

/// The scalar whose Rust type is the key of an indexed field of the type
/// written after a nested path (`string`, `enum`, `reference`, ...).
pub fn key_scalar(kind: &str) -> Option<Scalar> {
    match kind {
        "enum" => Some(Scalar::Int32),
        "reference" => Some(Scalar::Uint64),
        _ => Scalar::from_proto_name(kind).filter(|s| !matches!(s, Scalar::Double | Scalar::Float)),
    }
}

/// One struct field: a protobuf field, a map or a oneof.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// The Rust name of the struct field (may be a raw identifier).
    pub ident: Ident,
    /// The protobuf name of the field (or of the oneof).
    pub name: String,
    /// Documentation lines.
    pub docs: Vec<String>,
    /// Whether the field is marked `deprecated`.
    pub deprecated: bool,
    /// What the field holds.
    pub kind: FieldKind,
}

/// What a struct field holds.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldKind {
    /// A singular or repeated field.
    Single(Single),
    /// A `map<K, V>` field.
    Map {
        /// The field number.
        tag: u32,
        /// The key type.
        key: Scalar,
        /// The value type.
        value: Value,
    },
    /// A `oneof`, stored as an `Option` of a generated enum.
    Oneof {
        /// The enum type that holds the set member.
        ty: Type,
        /// The members in declaration order.
        members: Vec<Member>,
    },
}

/// A singular or repeated field.
#[derive(Clone, Debug, PartialEq)]
pub struct Single {
    /// The field number.
    pub tag: u32,
    /// Presence and cardinality.
    pub label: Label,
    /// The element type.
    pub value: Value,
    /// The schema default for fields with a scalar or enum type.
    pub default: Option<DefaultValue>,
    /// Whether a message element is boxed (needed for recursive messages).
    pub boxed: bool,
    /// Whether a repeated numeric field is written packed.
    pub packed: bool,
    /// Whether a message element is a proto2 group (start/end-group encoding).
    pub group: bool,
    /// The secondary index of the message's objects by this field
    /// (`(pbpersist.index)`), if it has one.
    pub index: Option<IndexSpec>,
}

/// A secondary index by one field: objects of the message found by the
/// field's value (each element's, for a repeated field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexSpec {
    /// Whether a commit that gives two objects one value fails.
    pub unique: bool,
}

/// Presence and cardinality of a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    /// Explicit presence: `Option<T>`.
    Optional,
    /// Explicit presence that must be set before commit: `Option<T>`.
    Required,
    /// Implicit presence (proto3 without `optional`): `T`, default not written.
    Implicit,
    /// Repeated: `Vec<T>`.
    Repeated,
}

/// A member of a oneof.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// The enum variant.
    pub variant: Ident,
    /// The protobuf field name, which also names the member's accessors.
    pub name: String,
    /// The field number.
    pub tag: u32,
    /// The member's type.
    pub value: Value,
    /// Whether a message member is boxed.
    pub boxed: bool,
    /// Whether a message member is a proto2 group.
    pub group: bool,
    /// Documentation lines.
    pub docs: Vec<String>,
    /// Whether the member is marked `deprecated`.
    pub deprecated: bool,
}

/// The type of a field element, map value or oneof member.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A scalar, string or bytes value.
    Scalar(Scalar),
    /// A nested (embedded) message of the given Rust type.
    Message(Type),
    /// An enum of the given Rust type, stored as `EnumValue<E>`.
    Enum(Type),
    /// A persistent reference to an object of the given Rust type.
    Ref(Type),
}

/// The protobuf scalar types, plus `string` and `bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Scalar {
    Double,
    Float,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Sint32,
    Sint64,
    Fixed32,
    Fixed64,
    Sfixed32,
    Sfixed64,
    Bool,
    String,
    Bytes,
}

/// A schema default value.
#[derive(Clone, Debug, PartialEq)]
pub enum DefaultValue {
    /// An integer (also an enum's number).
    Int(i128),
    /// A floating point number, finite or not.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(String),
    /// Bytes.
    Bytes(Vec<u8>),
}

/// An extension field of a message (proto2 `extend`), which becomes a
/// constant for typed access through `pbpersist::extension::Extendable`.
#[derive(Clone, Debug, PartialEq)]
pub struct Extension {
    /// The Rust name of the constant.
    pub ident: Ident,
    /// The full protobuf name, such as `demo.nickname`.
    pub full_name: String,
    /// The field number.
    pub number: u32,
    /// The Rust type of the extended message.
    pub extendee: Type,
    /// The value type (scalars, enums and messages; references have no
    /// typed access).
    pub value: Value,
    /// Whether the extension is repeated.
    pub repeated: bool,
    /// Whether a repeated number or enum is written packed.
    pub packed: bool,
    /// Whether a message value is written as a group.
    pub group: bool,
    /// Documentation lines.
    pub docs: Vec<String>,
    /// The path of the pbpersist crate, when it is not `::pbpersist`.
    pub krate: Option<syn::Path>,
}

/// A protobuf enum that becomes a Rust enum.
#[derive(Clone, Debug, PartialEq)]
pub struct Enum {
    /// The Rust name.
    pub ident: Ident,
    /// The full protobuf name, such as `demo.Contact.Kind`.
    pub full_name: String,
    /// The protobuf package, when it is not everything before the last dot.
    pub package: Option<String>,
    /// Documentation lines.
    pub docs: Vec<String>,
    /// Whether the enum is marked `deprecated`.
    pub deprecated: bool,
    /// The values in declaration order; the first is the Rust default.
    pub variants: Vec<Variant>,
    /// Other names for values (`allow_alias`): associated constants.
    pub aliases: Vec<Alias>,
    /// Whether the enum is closed (proto2): numbers it does not list are
    /// kept with the unknown fields instead of in the field.
    pub closed: bool,
    /// The path of the pbpersist crate in emitted code, when it is not
    /// `::pbpersist`.
    pub krate: Option<syn::Path>,
}

/// A second name for an enum value.
#[derive(Clone, Debug, PartialEq)]
pub struct Alias {
    /// The Rust constant name.
    pub ident: Ident,
    /// The protobuf value name.
    pub name: String,
    /// The variant it stands for.
    pub variant: Ident,
}

/// One value of an enum.
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    /// The Rust variant name.
    pub ident: Ident,
    /// The protobuf value name, such as `PERSON`.
    pub name: String,
    /// The number.
    pub number: i32,
    /// Documentation lines.
    pub docs: Vec<String>,
    /// Whether the value is marked `deprecated`.
    pub deprecated: bool,
}

impl Scalar {
    /// All scalar types, in the order the protobuf documentation lists them.
    pub const ALL: [Scalar; 15] = [
        Scalar::Double,
        Scalar::Float,
        Scalar::Int32,
        Scalar::Int64,
        Scalar::Uint32,
        Scalar::Uint64,
        Scalar::Sint32,
        Scalar::Sint64,
        Scalar::Fixed32,
        Scalar::Fixed64,
        Scalar::Sfixed32,
        Scalar::Sfixed64,
        Scalar::Bool,
        Scalar::String,
        Scalar::Bytes,
    ];

    /// The name used in `.proto` files and in `#[pbpersist(...)]` attributes.
    pub fn proto_name(self) -> &'static str {
        match self {
            Scalar::Double => "double",
            Scalar::Float => "float",
            Scalar::Int32 => "int32",
            Scalar::Int64 => "int64",
            Scalar::Uint32 => "uint32",
            Scalar::Uint64 => "uint64",
            Scalar::Sint32 => "sint32",
            Scalar::Sint64 => "sint64",
            Scalar::Fixed32 => "fixed32",
            Scalar::Fixed64 => "fixed64",
            Scalar::Sfixed32 => "sfixed32",
            Scalar::Sfixed64 => "sfixed64",
            Scalar::Bool => "bool",
            Scalar::String => "string",
            Scalar::Bytes => "bytes",
        }
    }

    /// Looks a scalar up by its `.proto` name.
    pub fn from_proto_name(name: &str) -> Option<Scalar> {
        Scalar::ALL.into_iter().find(|s| s.proto_name() == name)
    }

    /// The Rust type that stores a value.
    pub fn rust_type(self) -> &'static str {
        match self {
            Scalar::Double => "f64",
            Scalar::Float => "f32",
            Scalar::Int32 | Scalar::Sint32 | Scalar::Sfixed32 => "i32",
            Scalar::Int64 | Scalar::Sint64 | Scalar::Sfixed64 => "i64",
            Scalar::Uint32 | Scalar::Fixed32 => "u32",
            Scalar::Uint64 | Scalar::Fixed64 => "u64",
            Scalar::Bool => "bool",
            Scalar::String => "::std::string::String",
            Scalar::Bytes => "::std::vec::Vec<u8>",
        }
    }

    /// Whether values are `Copy` (everything but `string` and `bytes`).
    pub fn is_copy(self) -> bool {
        !matches!(self, Scalar::String | Scalar::Bytes)
    }

    /// Whether a repeated field of this type may be packed.
    pub fn is_packable(self) -> bool {
        self.is_copy()
    }

    /// Whether the type is a legal map key.
    pub fn is_map_key(self) -> bool {
        !matches!(self, Scalar::Double | Scalar::Float | Scalar::Bytes)
    }
}

impl Value {
    /// Whether values of this type are `Copy`.
    pub fn is_copy(&self) -> bool {
        match self {
            Value::Scalar(s) => s.is_copy(),
            Value::Enum(_) | Value::Ref(_) => true,
            Value::Message(_) => false,
        }
    }

    /// Whether a repeated field of this type may be packed.
    pub fn is_packable(&self) -> bool {
        match self {
            Value::Scalar(s) => s.is_packable(),
            Value::Enum(_) => true,
            Value::Message(_) | Value::Ref(_) => false,
        }
    }

    /// Whether a field of this type may have an index: its values have a
    /// total order that survives encoding (not floats), and it is not a
    /// message.
    pub fn is_indexable(&self) -> bool {
        match self {
            Value::Scalar(s) => !matches!(s, Scalar::Double | Scalar::Float),
            Value::Enum(_) | Value::Ref(_) => true,
            Value::Message(_) => false,
        }
    }
}

impl Message {
    /// Every protobuf field of the message in declaration order, with oneof
    /// members in place of their oneof: `(name, number)`. A field's index in
    /// this list is its change bit.
    pub fn proto_fields(&self) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        for field in &self.fields {
            match &field.kind {
                FieldKind::Single(s) => out.push((field.name.clone(), s.tag)),
                FieldKind::Map { tag, .. } => out.push((field.name.clone(), *tag)),
                FieldKind::Oneof { members, .. } => out.extend(members.iter().map(|m| (m.name.clone(), m.tag))),
            }
        }
        out
    }
}
