//! Editions files lowered to proto2, for prost-reflect, which holds proto2
//! and proto3 files only.
//!
//! Each field's and enum's features are resolved (edition defaults, then
//! what the file, message, oneof and element set) and said the proto2 way
//! where proto2 can say them: legacy-required presence as `required`,
//! delimited message encoding as a group, packed or expanded repeated
//! fields as `packed`. Decoding reads the same bytes either way. What
//! proto2 cannot say (implicit presence, open enums) stays in each field's
//! and enum's own `features` option, written fully resolved, so that a
//! reader of the pool (`pbpersist_build::breaking_changes`, a data
//! browser) finds it without inheritance. The descriptors are edited as
//! dynamic messages, so custom options such as `(pbpersist.target)` keep
//! their bytes.

use super::error::SchemaError;
use prost::Message as _;
use prost_reflect::{DynamicMessage, ReflectMessage as _, Value};
use std::collections::BTreeMap;

/// `google.protobuf.Edition` numbers of the editions read: 2023 and 2024.
const EDITIONS: [i32; 2] = [1000, 1001];

// Numbers of `FieldDescriptorProto`'s and `FeatureSet`'s enums.
const LABEL_REQUIRED: i32 = 2;
const LABEL_REPEATED: i32 = 3;
const TYPE_STRING: i32 = 9;
const TYPE_GROUP: i32 = 10;
const TYPE_MESSAGE: i32 = 11;
const TYPE_BYTES: i32 = 12;
const EXPLICIT: i32 = 1;
const LEGACY_REQUIRED: i32 = 3;
const PACKED: i32 = 1;
const EXPANDED: i32 = 2;
const LENGTH_PREFIXED: i32 = 1;
const DELIMITED: i32 = 2;

/// The features that decide how fields and enums read, resolved.
#[derive(Clone, Copy)]
struct Features {
    field_presence: i32,
    enum_type: i32,
    repeated_field_encoding: i32,
    utf8_validation: i32,
    message_encoding: i32,
}

impl Features {
    /// Editions 2023 and 2024 agree on these: explicit presence, open
    /// enums, packed, verified UTF-8, length-prefixed messages.
    const DEFAULTS: Features = Features {
        field_presence: 1,
        enum_type: 1,
        repeated_field_encoding: 1,
        utf8_validation: 2,
        message_encoding: 1,
    };

    /// These features with what `element`'s `options.features` sets on top.
    fn under(self, element: &DynamicMessage) -> Features {
        let Some(set) = sub(element, "options").and_then(|o| sub(&o, "features")) else { return self };
        let or = |name: &str, inherited: i32| number(&set, name).filter(|n| *n != 0).unwrap_or(inherited);
        Features {
            field_presence: or("field_presence", self.field_presence),
            enum_type: or("enum_type", self.enum_type),
            repeated_field_encoding: or("repeated_field_encoding", self.repeated_field_encoding),
            utf8_validation: or("utf8_validation", self.utf8_validation),
            message_encoding: or("message_encoding", self.message_encoding),
        }
    }
}

/// The editions files of an encoded `FileDescriptorSet`, each lowered to
/// proto2 and encoded as a `FileDescriptorProto`, by name.
pub(super) fn lower(set: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, SchemaError> {
    let set = DynamicMessage::decode(prost_types::FileDescriptorSet::default().descriptor(), set)
        .map_err(SchemaError::Descriptors)?;
    let mut out = BTreeMap::new();
    let files = set.get_field_by_name("file");
    for file in files.as_deref().and_then(Value::as_list).unwrap_or_default() {
        let Some(file) = file.as_message() else { continue };
        if text(file, "syntax") != "editions" {
            continue;
        }
        let name = text(file, "name");
        let edition = number(file, "edition").unwrap_or_default();
        if !EDITIONS.contains(&edition) {
            return Err(SchemaError::Edition { file: name, edition });
        }
        let mut file = file.clone();
        let features = Features::DEFAULTS.under(&file);
        let package = text(&file, "package");
        file.set_field_by_name("syntax", Value::String("proto2".into()));
        file.clear_field_by_name("edition");
        each(&mut file, "message_type", |m| lower_message(m, features, &package));
        each(&mut file, "enum_type", |e| lower_enum(e, features));
        each(&mut file, "extension", |f| lower_field(f, features, Place::EXTENSION));
        out.insert(name, file.encode_to_vec());
    }
    Ok(out)
}

/// Where a field is declared, as far as its encoding cares.
#[derive(Clone, Copy)]
struct Place {
    /// In a oneof: presence is always explicit.
    oneof: bool,
    /// An extension: presence is always explicit.
    extension: bool,
    /// A map, or a field of a map entry: always length-prefixed.
    map: bool,
}

impl Place {
    const EXTENSION: Place = Place { oneof: false, extension: true, map: false };
}

fn lower_message(message: &mut DynamicMessage, parent: Features, scope: &str) {
    let features = parent.under(message);
    let full_name = if scope.is_empty() { text(message, "name") } else { format!("{scope}.{}", text(message, "name")) };
    let is_entry = sub(message, "options").is_some_and(|o| flag(&o, "map_entry"));
    let listed = message.get_field_by_name("nested_type");
    let entries: Vec<String> = listed
        .as_deref()
        .and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_message)
        .filter(|n| sub(n, "options").is_some_and(|o| flag(&o, "map_entry")))
        .map(|n| format!(".{full_name}.{}", text(n, "name")))
        .collect();
    let listed = message.get_field_by_name("oneof_decl");
    let oneofs: Vec<Features> = listed
        .as_deref()
        .and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_message)
        .map(|o| features.under(o))
        .collect();
    each(message, "field", |field| {
        let oneof = number(field, "oneof_index").and_then(|i| usize::try_from(i).ok());
        let inherited = oneof.and_then(|i| oneofs.get(i)).copied().unwrap_or(features);
        let map = is_entry || entries.contains(&text(field, "type_name"));
        lower_field(field, inherited, Place { oneof: oneof.is_some(), extension: false, map });
    });
    each(message, "extension", |f| lower_field(f, features, Place::EXTENSION));
    each(message, "nested_type", |m| lower_message(m, features, &full_name));
    each(message, "enum_type", |e| lower_enum(e, features));
}

fn lower_field(field: &mut DynamicMessage, inherited: Features, place: Place) {
    let features = inherited.under(field);
    let repeated = number(field, "label") == Some(LABEL_REPEATED);
    let kind = number(field, "type").unwrap_or_default();
    let message = kind == TYPE_MESSAGE || kind == TYPE_GROUP;
    let presence =
        if repeated || message || place.oneof || place.extension { EXPLICIT } else { features.field_presence };
    if presence == LEGACY_REQUIRED {
        field.set_field_by_name("label", Value::EnumNumber(LABEL_REQUIRED));
    }
    let delimited = kind == TYPE_MESSAGE && features.message_encoding == DELIMITED && !place.map;
    if delimited {
        field.set_field_by_name("type", Value::EnumNumber(TYPE_GROUP));
    }
    let packable = repeated && !message && kind != TYPE_STRING && kind != TYPE_BYTES;
    let packed = packable && features.repeated_field_encoding == PACKED;
    let resolved = [
        ("field_presence", presence),
        ("repeated_field_encoding", if packed { PACKED } else { EXPANDED }),
        ("utf8_validation", features.utf8_validation),
        ("message_encoding", if delimited { DELIMITED } else { LENGTH_PREFIXED }),
    ];
    with_options(field, |options| {
        if packable {
            options.set_field_by_name("packed", Value::Bool(packed));
        }
        set_features(options, &resolved);
    });
}

fn lower_enum(e: &mut DynamicMessage, parent: Features) {
    let features = parent.under(e);
    with_options(e, |options| set_features(options, &[("enum_type", features.enum_type)]));
}

/// Runs `f` on an element's options, set if they were not.
fn with_options(element: &mut DynamicMessage, f: impl FnOnce(&mut DynamicMessage)) {
    if let Some(options) = element.get_field_by_name_mut("options").and_then(Value::as_message_mut) {
        f(options);
    }
}

/// Sets features in an options message's `features`, keeping the others.
fn set_features(options: &mut DynamicMessage, values: &[(&str, i32)]) {
    if let Some(set) = options.get_field_by_name_mut("features").and_then(Value::as_message_mut) {
        for (name, value) in values {
            set.set_field_by_name(name, Value::EnumNumber(*value));
        }
    }
}

/// Runs `f` on each message of a repeated message field.
fn each(message: &mut DynamicMessage, name: &str, mut f: impl FnMut(&mut DynamicMessage)) {
    if !message.has_field_by_name(name) {
        return;
    }
    if let Some(list) = message.get_field_by_name_mut(name).and_then(Value::as_list_mut) {
        list.iter_mut().filter_map(Value::as_message_mut).for_each(&mut f);
    }
}

/// A set message field.
fn sub(message: &DynamicMessage, name: &str) -> Option<DynamicMessage> {
    if !message.has_field_by_name(name) {
        return None;
    }
    message.get_field_by_name(name)?.as_message().cloned()
}

/// A set enum or integer field.
fn number(message: &DynamicMessage, name: &str) -> Option<i32> {
    if !message.has_field_by_name(name) {
        return None;
    }
    let value = message.get_field_by_name(name)?;
    value.as_enum_number().or_else(|| value.as_i32())
}

fn text(message: &DynamicMessage, name: &str) -> String {
    message.get_field_by_name(name).and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn flag(message: &DynamicMessage, name: &str) -> bool {
    message.get_field_by_name(name).and_then(|v| v.as_bool()).unwrap_or(false)
}
