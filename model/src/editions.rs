//! Protobuf editions: each field's and enum's features resolved as protoc
//! resolves them, and each editions file lowered to the proto2 descriptor
//! that means the same on the wire, because prost-reflect holds proto2 and
//! proto3 files only.
//!
//! The lowering keeps every byte it does not change (custom options, source
//! info), since it edits the descriptors as dynamic messages. What proto2
//! cannot say (implicit presence, open enums, unchecked strings) it writes
//! into each field's and enum's own `features` option, fully resolved, so
//! that [`presence`] and [`enum_closed`] read any pool without inheritance.
//!
//! `pbpersist-build` lowers what it compiles and `pbpersist::reflect` what
//! it reads from a database, both through [`lower`], so the two never
//! disagree on what an editions file means.

use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, EnumDescriptor, FieldDescriptor, ReflectMessage, Syntax, Value};

/// The editions this compiler resolves features for: 2023 and 2024, by their
/// numbers in `google.protobuf.Edition`.
const SUPPORTED: [i32; 2] = [1000, 1001];

/// Why a descriptor set could not be lowered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LowerError {
    /// The bytes are not an encoded `FileDescriptorSet`.
    #[error("the file descriptor set does not decode: {0}")]
    Decode(String),
    /// A file declares an edition whose features are not known here.
    #[error("{file}: edition number {edition} is not one pbpersist knows")]
    Edition {
        /// The file's name.
        file: String,
        /// Its `google.protobuf.Edition` number.
        edition: i32,
    },
}

impl LowerError {
    /// What to do about it, for a diagnostic's help line.
    pub fn help(&self) -> &'static str {
        match self {
            LowerError::Decode(_) => "pass the output of `protoc --descriptor_set_out` or `buf build -o`",
            LowerError::Edition { .. } => "pbpersist supports editions 2023 and 2024",
        }
    }
}

/// How a field tracks presence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// `has_x()` and `clear_x()`; the value is written whenever set.
    Explicit,
    /// No presence: the default value is not written.
    Implicit,
    /// Explicit, and the message is incomplete without it (proto2 `required`).
    LegacyRequired,
}

/// A set of features as written on one element; unset members inherit.
#[derive(Clone, Copy, PartialEq, prost::Message)]
struct FeatureSet {
    #[prost(int32, optional, tag = "1")]
    field_presence: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    enum_type: Option<i32>,
    #[prost(int32, optional, tag = "3")]
    repeated_field_encoding: Option<i32>,
    #[prost(int32, optional, tag = "4")]
    utf8_validation: Option<i32>,
    #[prost(int32, optional, tag = "5")]
    message_encoding: Option<i32>,
}

impl FeatureSet {
    /// `self` with `child`'s explicit settings on top.
    fn with(self, child: Option<FeatureSet>) -> FeatureSet {
        let Some(c) = child else { return self };
        FeatureSet {
            field_presence: c.field_presence.or(self.field_presence),
            enum_type: c.enum_type.or(self.enum_type),
            repeated_field_encoding: c.repeated_field_encoding.or(self.repeated_field_encoding),
            utf8_validation: c.utf8_validation.or(self.utf8_validation),
            message_encoding: c.message_encoding.or(self.message_encoding),
        }
    }

    /// The defaults of editions 2023 and 2024, which agree on these five.
    fn edition_defaults() -> FeatureSet {
        FeatureSet {
            field_presence: Some(1),
            enum_type: Some(1),
            repeated_field_encoding: Some(1),
            utf8_validation: Some(2),
            message_encoding: Some(1),
        }
    }
}

// Read-only views of the descriptor messages: only what feature resolution
// needs. Each options message keeps its `features` under its own number.
macro_rules! options_view {
    ($name:ident, $tag:literal) => {
        #[derive(Clone, PartialEq, prost::Message)]
        struct $name {
            #[prost(message, optional, tag = $tag)]
            features: Option<FeatureSet>,
        }
    };
}
options_view!(FileOptions, "50");
options_view!(FieldOptions, "21");
options_view!(OneofOptions, "1");
options_view!(EnumOptions, "7");

#[derive(Clone, PartialEq, prost::Message)]
struct FileSet {
    #[prost(message, repeated, tag = "1")]
    file: Vec<File>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct File {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    package: Option<String>,
    #[prost(message, repeated, tag = "4")]
    message_type: Vec<Msg>,
    #[prost(message, repeated, tag = "5")]
    enum_type: Vec<Enum>,
    #[prost(message, repeated, tag = "7")]
    extension: Vec<Field>,
    #[prost(message, optional, tag = "8")]
    options: Option<FileOptions>,
    #[prost(string, optional, tag = "12")]
    syntax: Option<String>,
    #[prost(int32, optional, tag = "14")]
    edition: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Msg {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(message, repeated, tag = "2")]
    field: Vec<Field>,
    #[prost(message, repeated, tag = "3")]
    nested_type: Vec<Msg>,
    #[prost(message, repeated, tag = "4")]
    enum_type: Vec<Enum>,
    #[prost(message, repeated, tag = "6")]
    extension: Vec<Field>,
    #[prost(message, optional, tag = "7")]
    options: Option<MessageOptions>,
    #[prost(message, repeated, tag = "8")]
    oneof_decl: Vec<Oneof>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct MessageOptions {
    #[prost(bool, optional, tag = "7")]
    map_entry: Option<bool>,
    #[prost(message, optional, tag = "12")]
    features: Option<FeatureSet>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Field {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(int32, optional, tag = "4")]
    label: Option<i32>,
    #[prost(int32, optional, tag = "5")]
    r#type: Option<i32>,
    #[prost(string, optional, tag = "6")]
    type_name: Option<String>,
    #[prost(message, optional, tag = "8")]
    options: Option<FieldOptions>,
    #[prost(int32, optional, tag = "9")]
    oneof_index: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Oneof {
    #[prost(message, optional, tag = "2")]
    options: Option<OneofOptions>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Enum {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(message, optional, tag = "3")]
    options: Option<EnumOptions>,
}

/// The number of `features` in `FieldOptions` and in `EnumOptions`.
const FIELD_FEATURES: u32 = 21;
const ENUM_FEATURES: u32 = 7;

const LABEL_REQUIRED: i32 = 2;
const LABEL_REPEATED: i32 = 3;
const TYPE_GROUP: i32 = 10;
const TYPE_MESSAGE: i32 = 11;
const TYPE_STRING: i32 = 9;
const TYPE_BYTES: i32 = 12;

/// Resolves the features of every editions file in `set` (an encoded
/// `FileDescriptorSet`) and returns the set lowered to proto2, each field
/// and enum of an editions file carrying its resolved features.
pub fn lower(set: &[u8]) -> Result<Vec<u8>, LowerError> {
    let view = FileSet::decode(set).map_err(|e| LowerError::Decode(e.to_string()))?;
    if !view.file.iter().any(|f| f.syntax.as_deref() == Some("editions")) {
        return Ok(set.to_vec());
    }
    let global = DescriptorPool::global();
    let set_desc = global
        .get_message_by_name("google.protobuf.FileDescriptorSet")
        .expect("prost-reflect's pool holds descriptor.proto");
    let mut dynamic = DynamicMessage::decode(set_desc, set).map_err(|e| LowerError::Decode(e.to_string()))?;
    let files = list_mut(&mut dynamic, "file");
    for (file, view) in files.iter_mut().zip(&view.file) {
        if view.syntax.as_deref() != Some("editions") {
            continue;
        }
        let name = view.name.clone().unwrap_or_default();
        let edition = view.edition.unwrap_or_default();
        if !SUPPORTED.contains(&edition) {
            return Err(LowerError::Edition { file: name, edition });
        }
        let base = FeatureSet::edition_defaults().with(view.options.as_ref().and_then(|o| o.features));
        let scope = view.package.clone().unwrap_or_default();
        let file = file.as_message_mut().expect("files are messages");
        file.set_field_by_name("syntax", Value::String("proto2".into()));
        file.clear_field_by_name("edition");
        let extensions = Scope { name: &scope, oneofs: &[], map_entry: false, extensions: true };
        lower_fields(list_mut(file, "extension"), &view.extension, base, &extensions);
        for (msg, v) in list_mut(file, "message_type").iter_mut().zip(&view.message_type) {
            lower_message(msg.as_message_mut().expect("messages"), v, base, &scope);
        }
        for (e, v) in list_mut(file, "enum_type").iter_mut().zip(&view.enum_type) {
            lower_enum(e.as_message_mut().expect("enums"), v, base);
        }
    }
    Ok(dynamic.encode_to_vec())
}

fn lower_message(msg: &mut DynamicMessage, view: &Msg, parent: FeatureSet, scope: &str) {
    let own = parent.with(view.options.as_ref().and_then(|o| o.features));
    let name = join(scope, view.name.as_deref().unwrap_or_default());
    let oneofs: Vec<FeatureSet> =
        view.oneof_decl.iter().map(|o| own.with(o.options.as_ref().and_then(|o| o.features))).collect();
    let map_entry = view.options.as_ref().and_then(|o| o.map_entry).unwrap_or(false);
    let fields = Scope { name: &name, oneofs: &oneofs, map_entry, extensions: false };
    lower_fields(list_mut(msg, "field"), &view.field, own, &fields);
    let extensions = Scope { name: &name, oneofs: &[], map_entry: false, extensions: true };
    lower_fields(list_mut(msg, "extension"), &view.extension, own, &extensions);
    for (child, v) in list_mut(msg, "nested_type").iter_mut().zip(&view.nested_type) {
        lower_message(child.as_message_mut().expect("messages"), v, own, &name);
    }
    for (e, v) in list_mut(msg, "enum_type").iter_mut().zip(&view.enum_type) {
        lower_enum(e.as_message_mut().expect("enums"), v, own);
    }
}

fn lower_enum(e: &mut DynamicMessage, view: &Enum, parent: FeatureSet) {
    let own = parent.with(view.options.as_ref().and_then(|o| o.features));
    let resolved = FeatureSet { enum_type: own.enum_type, ..FeatureSet::default() };
    append_features(e, ENUM_FEATURES, &resolved);
}

/// Appends `features` to an element's options. Protobuf merges a repeated
/// message field, so the resolved set overrides what the element wrote.
fn append_features(element: &mut DynamicMessage, tag: u32, features: &FeatureSet) {
    let Some(options) = element.get_field_by_name_mut("options").and_then(Value::as_message_mut) else { return };
    let mut bytes = options.encode_to_vec();
    prost::encoding::message::encode(tag, features, &mut bytes);
    if let Ok(merged) = DynamicMessage::decode(options.descriptor(), bytes.as_slice()) {
        *options = merged;
    }
}

/// Where a list of fields is declared.
struct Scope<'a> {
    /// The full name of the message (or the package, for a file's extensions).
    name: &'a str,
    /// The features of the message's oneofs.
    oneofs: &'a [FeatureSet],
    /// Whether the message is a map entry, whose values are always length-prefixed.
    map_entry: bool,
    /// Whether the fields are extensions, which always have explicit presence.
    extensions: bool,
}

fn lower_fields(fields: &mut [Value], views: &[Field], parent: FeatureSet, scope: &Scope<'_>) {
    for (field, view) in fields.iter_mut().zip(views) {
        let inherited = view.oneof_index.and_then(|i| scope.oneofs.get(i as usize)).copied().unwrap_or(parent);
        let set = inherited.with(view.options.as_ref().and_then(|o| o.features));
        let repeated = view.label == Some(LABEL_REPEATED);
        let ty = view.r#type.unwrap_or_default();
        let is_message = ty == TYPE_MESSAGE || ty == TYPE_GROUP;
        // Presence is a choice only for singular, non-message fields outside oneofs.
        let presence = match set.field_presence {
            _ if repeated || is_message || view.oneof_index.is_some() || scope.extensions => Presence::Explicit,
            Some(2) => Presence::Implicit,
            Some(3) => Presence::LegacyRequired,
            _ => Presence::Explicit,
        };
        let packable = !is_message && ty != TYPE_STRING && ty != TYPE_BYTES;
        let packed = repeated && packable && set.repeated_field_encoding != Some(2);
        // Maps are always length-prefixed, whatever the scope says.
        let delimited =
            ty == TYPE_MESSAGE && set.message_encoding == Some(2) && !scope.map_entry && !is_map(view, scope);
        let resolved = FeatureSet {
            field_presence: Some(match presence {
                Presence::Explicit => 1,
                Presence::Implicit => 2,
                Presence::LegacyRequired => 3,
            }),
            enum_type: None,
            repeated_field_encoding: Some(if packed { 1 } else { 2 }),
            utf8_validation: set.utf8_validation,
            message_encoding: Some(if delimited { 2 } else { 1 }),
        };
        let field = field.as_message_mut().expect("fields are messages");
        if presence == Presence::LegacyRequired {
            field.set_field_by_name("label", Value::EnumNumber(LABEL_REQUIRED));
        }
        if delimited {
            field.set_field_by_name("type", Value::EnumNumber(TYPE_GROUP));
        }
        if repeated && packable {
            let options = field.get_field_by_name_mut("options").expect("fields have options");
            if let Some(options) = options.as_message_mut() {
                options.set_field_by_name("packed", Value::Bool(packed));
            }
        }
        append_features(field, FIELD_FEATURES, &resolved);
    }
}

/// Whether a field is a map: repeated, of the entry type protoc nests
/// beside it (`FooEntry` for `foo`).
fn is_map(view: &Field, scope: &Scope<'_>) -> bool {
    let (Some(type_name), Some(name)) = (view.type_name.as_deref(), view.name.as_deref()) else { return false };
    let entry = format!("{}Entry", heck::ToUpperCamelCase::to_upper_camel_case(name));
    view.label == Some(LABEL_REPEATED) && type_name.trim_start_matches('.') == join(scope.name, &entry)
}

fn list_mut<'a>(msg: &'a mut DynamicMessage, name: &str) -> &'a mut [Value] {
    match msg.get_field_by_name_mut(name) {
        Some(value) => value.as_list_mut().map(Vec::as_mut_slice).unwrap_or_default(),
        None => &mut [],
    }
}

fn join(scope: &str, name: &str) -> String {
    if scope.is_empty() { name.to_owned() } else { format!("{scope}.{name}") }
}

/// The resolved features a lowered editions element carries in its options.
fn carried(options: &DynamicMessage, tag: u32) -> Option<FeatureSet> {
    let bytes = options.encode_to_vec();
    if tag == FIELD_FEATURES {
        FieldOptions::decode(bytes.as_slice()).ok()?.features
    } else {
        EnumOptions::decode(bytes.as_slice()).ok()?.features
    }
}

/// How a field tracks presence, in a file of any syntax.
pub fn presence(field: &FieldDescriptor) -> Presence {
    match carried(&field.options(), FIELD_FEATURES).and_then(|f| f.field_presence) {
        Some(2) => Presence::Implicit,
        Some(3) => Presence::LegacyRequired,
        Some(_) => Presence::Explicit,
        None if field.cardinality() == prost_reflect::Cardinality::Required => Presence::LegacyRequired,
        None if !field.supports_presence() && !field.is_list() && !field.is_map() => Presence::Implicit,
        None => Presence::Explicit,
    }
}

/// Whether an enum is closed (unknown numbers go to the unknown fields), in
/// a file of any syntax.
pub fn enum_closed(e: &EnumDescriptor) -> bool {
    match carried(&e.options(), ENUM_FEATURES).and_then(|f| f.enum_type) {
        Some(t) => t == 2,
        None => e.parent_file().syntax() == Syntax::Proto2,
    }
}
