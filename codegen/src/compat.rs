//! Compares two versions of a schema and lists the changes that would make
//! stored data unreadable or wrong, in the spirit of `buf breaking`.

use crate::editions::{self, Presence};
use prost_reflect::{Cardinality, DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use std::fmt;

/// What kind of breaking change was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Rule {
    /// A message is gone and no message names it in `(pbpersist.former_names)`:
    /// stored records of that type no longer load.
    MessageRemoved,
    /// A field number now has a type that reads old values wrongly.
    FieldTypeChanged,
    /// A field is gone and its number is not reserved, so it may be reused.
    FieldRemovedNotReserved,
    /// A required field was added, or an optional one made required: old
    /// records do not have it.
    RequiredAdded,
    /// A field changed between singular and repeated (or map).
    CardinalityChanged,
    /// A field moved into, out of or between oneofs.
    OneofChanged,
    /// An enum value is gone and its number is not reserved.
    EnumValueRemoved,
    /// A reference points to another message type than before.
    ReferenceTargetChanged,
    /// A field changed between explicit presence and implicit presence
    /// (editions `field_presence`, or proto2/proto3 `optional`): a stored
    /// zero reads as unset, or a set zero is dropped on the next save.
    PresenceChanged,
    /// A message field changed between length-prefixed and delimited (group)
    /// encoding (editions `message_encoding`): readers refuse the other form.
    EncodingChanged,
    /// An open enum became closed (editions `enum_type`, or proto3 to
    /// proto2): stored numbers the program does not know leave the field for
    /// the unknown fields.
    EnumClosed,
}

/// One breaking change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakingChange {
    /// The rule that found it.
    pub rule: Rule,
    /// The element, such as `demo.Tower.name` or `demo.Tower`.
    pub element: String,
    /// What changed, in words.
    pub detail: String,
}

impl fmt::Display for BreakingChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}: {}", self.rule, self.element, self.detail)
    }
}

/// The changes from `old` to `new` that break stored data, sorted. Only
/// messages and enums of files other than `google/` and `pbpersist/` are compared.
pub fn breaking_changes(old: &DescriptorPool, new: &DescriptorPool) -> Vec<BreakingChange> {
    let mut out = Vec::new();
    for old_msg in user_messages(old) {
        let new_msg = new.get_message_by_name(old_msg.full_name()).or_else(|| renamed_to(new, old_msg.full_name()));
        match new_msg {
            None => out.push(BreakingChange {
                rule: Rule::MessageRemoved,
                element: old_msg.full_name().to_owned(),
                detail: "the message is gone; list its old name in (pbpersist.former_names) if it was renamed".into(),
            }),
            Some(new_msg) => compare_messages(&old_msg, &new_msg, &mut out),
        }
    }
    for old_enum in old.all_enums().filter(|e| is_user_file(e.parent_file().name())) {
        let Some(new_enum) = new.get_enum_by_name(old_enum.full_name()) else { continue };
        if editions::enum_closed(&new_enum) && !editions::enum_closed(&old_enum) {
            out.push(BreakingChange {
                rule: Rule::EnumClosed,
                element: new_enum.full_name().to_owned(),
                detail: "the enum became closed; numbers it does not list move to the unknown fields".into(),
            });
        }
        let reserved = &new_enum.enum_descriptor_proto().reserved_range;
        for v in old_enum.values() {
            let kept = new_enum.get_value(v.number()).is_some();
            let is_reserved = reserved.iter().any(|r| (r.start()..=r.end()).contains(&v.number()));
            if !kept && !is_reserved {
                out.push(BreakingChange {
                    rule: Rule::EnumValueRemoved,
                    element: v.full_name().to_owned(),
                    detail: format!("value {} is gone and its number is not reserved", v.number()),
                });
            }
        }
    }
    compare_extensions(old, new, &mut out);
    out.sort_by(|a, b| (a.rule, &a.element).cmp(&(b.rule, &b.element)));
    out
}

/// Extensions of user messages are fields on the wire: the number of one,
/// on its message, must keep a compatible type and shape, whether it stays
/// an extension or becomes a field. A removed extension breaks nothing: its
/// values stay with the unknown fields.
fn compare_extensions(old: &DescriptorPool, new: &DescriptorPool, out: &mut Vec<BreakingChange>) {
    for ext in old.all_extensions().filter(|e| is_user_file(e.containing_message().parent_file().name())) {
        let extendee = ext.containing_message();
        let Some(new_extendee) = new.get_message_by_name(extendee.full_name()) else { continue };
        let number = ext.number();
        let now = new
            .all_extensions()
            .find(|e| e.containing_message().full_name() == extendee.full_name() && e.number() == number)
            .map(|e| (e.full_name().to_owned(), e.kind(), e.cardinality()))
            .or_else(|| new_extendee.get_field(number).map(|f| (f.full_name().to_owned(), f.kind(), f.cardinality())));
        let Some((element, kind, cardinality)) = now else { continue };
        if !compatible(&ext.kind(), &kind) {
            out.push(BreakingChange {
                rule: Rule::FieldTypeChanged,
                element: element.clone(),
                detail: format!("extension {} of {} changed its type", number, extendee.full_name()),
            });
        }
        if (ext.cardinality() == Cardinality::Repeated) != (cardinality == Cardinality::Repeated) {
            out.push(BreakingChange {
                rule: Rule::CardinalityChanged,
                element,
                detail: format!(
                    "extension {} of {} changed between singular and repeated",
                    number,
                    extendee.full_name()
                ),
            });
        }
    }
}

fn is_user_file(name: &str) -> bool {
    !name.starts_with("google/protobuf/") && !name.starts_with("pbpersist/")
}

fn user_messages(pool: &DescriptorPool) -> Vec<MessageDescriptor> {
    pool.all_messages().filter(|m| !m.is_map_entry() && is_user_file(m.parent_file().name())).collect()
}

/// The message of `pool` that lists `old_name` among its former names.
fn renamed_to(pool: &DescriptorPool, old_name: &str) -> Option<MessageDescriptor> {
    let ext = pool.get_extension_by_name("pbpersist.former_names")?;
    user_messages(pool).into_iter().find(|m| {
        let options = m.options();
        options.has_extension(&ext)
            && options.get_extension(&ext).as_list().is_some_and(|l| l.iter().any(|v| v.as_str() == Some(old_name)))
    })
}

fn compare_messages(old: &MessageDescriptor, new: &MessageDescriptor, out: &mut Vec<BreakingChange>) {
    let reserved = &new.descriptor_proto().reserved_range;
    for of in old.fields() {
        let element = format!("{}.{}", new.full_name(), of.name());
        let Some(nf) = new.get_field(of.number()) else {
            // Reserved ranges are [start, end).
            if !reserved.iter().any(|r| (r.start()..r.end()).contains(&(of.number() as i32))) {
                out.push(BreakingChange {
                    rule: Rule::FieldRemovedNotReserved,
                    element,
                    detail: format!("field {} is gone and its number is not reserved", of.number()),
                });
            }
            continue;
        };
        let element = format!("{}.{}", new.full_name(), nf.name());
        if !compatible_kinds(&of, &nf) {
            out.push(BreakingChange {
                rule: Rule::FieldTypeChanged,
                element: element.clone(),
                detail: format!("field {} was {} and is now {}", of.number(), kind_name(&of), kind_name(&nf)),
            });
        }
        let shape = |f: &FieldDescriptor| (f.is_map(), f.cardinality() == Cardinality::Repeated);
        if shape(&of) != shape(&nf) {
            out.push(BreakingChange {
                rule: Rule::CardinalityChanged,
                element: element.clone(),
                detail: "the field changed between singular, repeated and map".into(),
            });
        }
        if nf.cardinality() == Cardinality::Required && of.cardinality() != Cardinality::Required {
            out.push(BreakingChange {
                rule: Rule::RequiredAdded,
                element: element.clone(),
                detail: "the field became required; stored records may not have it".into(),
            });
        }
        let oneof =
            |f: &FieldDescriptor| f.containing_oneof().filter(|o| !o.is_synthetic()).map(|o| o.name().to_owned());
        if oneof(&of) != oneof(&nf) {
            out.push(BreakingChange {
                rule: Rule::OneofChanged,
                element: element.clone(),
                detail: format!("the field moved from oneof {:?} to {:?}", oneof(&of), oneof(&nf)),
            });
        }
        let explicit = |f: &FieldDescriptor| editions::presence(f) != Presence::Implicit;
        if explicit(&of) != explicit(&nf) && shape(&of) == shape(&nf) {
            out.push(BreakingChange {
                rule: Rule::PresenceChanged,
                element: element.clone(),
                detail: if explicit(&nf) {
                    "the field gained presence; stored zeros were not written and now read as unset".into()
                } else {
                    "the field lost presence; a set zero is no longer written".into()
                },
            });
        }
        if of.kind().as_message().is_some() && nf.kind().as_message().is_some() && of.is_group() != nf.is_group() {
            out.push(BreakingChange {
                rule: Rule::EncodingChanged,
                element: element.clone(),
                detail: "the message changed between length-prefixed and delimited encoding".into(),
            });
        }
        let (ot, nt) = (target(&of), target(&nf));
        if ot != nt {
            out.push(BreakingChange {
                rule: Rule::ReferenceTargetChanged,
                element,
                detail: format!("the reference pointed to {:?} and now to {:?}", ot, nt),
            });
        }
    }
    for nf in new.fields() {
        if nf.cardinality() == Cardinality::Required && old.get_field(nf.number()).is_none() {
            out.push(BreakingChange {
                rule: Rule::RequiredAdded,
                element: format!("{}.{}", new.full_name(), nf.name()),
                detail: "a required field was added; stored records do not have it".into(),
            });
        }
    }
}

/// The `(pbpersist.target)` of a reference field.
fn target(f: &FieldDescriptor) -> Option<String> {
    let ext = f.parent_pool().get_extension_by_name("pbpersist.target")?;
    let options = f.options();
    options.has_extension(&ext).then(|| options.get_extension(&ext).as_str().unwrap_or_default().to_owned())
}

fn kind_name(f: &FieldDescriptor) -> String {
    match f.kind() {
        Kind::Message(m) => m.full_name().to_owned(),
        Kind::Enum(e) => format!("enum {}", e.full_name()),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Whether values written as `old` read correctly as `new`: the same type, or
/// types protobuf defines as wire-compatible.
fn compatible_kinds(old: &FieldDescriptor, new: &FieldDescriptor) -> bool {
    compatible(&old.kind(), &new.kind())
}

fn compatible(ok: &Kind, nk: &Kind) -> bool {
    fn family(k: &Kind) -> Option<u8> {
        Some(match k {
            Kind::Int32 | Kind::Uint32 | Kind::Int64 | Kind::Uint64 | Kind::Bool | Kind::Enum(_) => 0,
            Kind::Sint32 | Kind::Sint64 => 1,
            Kind::Fixed32 | Kind::Sfixed32 => 2,
            Kind::Fixed64 | Kind::Sfixed64 => 3,
            Kind::String | Kind::Bytes => 4,
            _ => return None,
        })
    }
    match (ok, nk) {
        (Kind::Message(a), Kind::Message(b)) => {
            a.full_name() == b.full_name() || renamed_to(b.parent_pool(), a.full_name()).is_some()
        }
        (Kind::Enum(a), Kind::Enum(b)) => a.full_name() == b.full_name(),
        _ if ok == nk => true,
        _ => family(ok).is_some() && family(ok) == family(nk),
    }
}

/// How a field's index changed between two versions of a schema. None of
/// these breaks stored data: each says what the next
/// `Database::build_indexes` does.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum IndexChange {
    /// A field gained an index: the build indexes every stored object.
    Added {
        /// The index's name, the field's full name (`catalog.Product.sku`).
        index: String,
        /// Whether it is unique.
        unique: bool,
    },
    /// A field lost its index (or the field or its message was renamed,
    /// which renames the index): the old entries stay until
    /// `Database::drop_index`.
    Removed {
        /// The index's name.
        index: String,
    },
    /// An index became unique, or stopped being: it is built anew, and a
    /// unique build over stored duplicates fails.
    UniqueChanged {
        /// The index's name.
        index: String,
        /// Whether it is unique now.
        unique: bool,
    },
    /// The indexed field's type changed the key type: the index is built anew.
    KeyTypeChanged {
        /// The index's name.
        index: String,
        /// The key type before (`int64`, `string`, ...).
        from: String,
        /// The key type now.
        to: String,
    },
}

impl fmt::Display for IndexChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndexChange::Added { index, unique: true } => write!(f, "index {index}: added, unique"),
            IndexChange::Added { index, unique: false } => write!(f, "index {index}: added"),
            IndexChange::Removed { index } => {
                write!(f, "index {index}: removed (Database::drop_index drops its entries)")
            }
            IndexChange::UniqueChanged { index, unique: true } => write!(f, "index {index}: made unique; built anew"),
            IndexChange::UniqueChanged { index, unique: false } => {
                write!(f, "index {index}: no longer unique; built anew")
            }
            IndexChange::KeyTypeChanged { index, from, to } => {
                write!(f, "index {index}: key type {from} -> {to}; built anew")
            }
        }
    }
}

/// The indexes of `old` and `new` that were added, removed or changed,
/// sorted by index name. After deploying `new`, `Database::build_indexes`
/// builds what these list.
pub fn index_changes(old: &DescriptorPool, new: &DescriptorPool) -> Vec<IndexChange> {
    let (before, after) = (indexes(old), indexes(new));
    let mut out = Vec::new();
    for (index, (unique, kind)) in &after {
        match before.get(index) {
            None => out.push(IndexChange::Added { index: index.clone(), unique: *unique }),
            Some((was_unique, _)) if was_unique != unique => {
                out.push(IndexChange::UniqueChanged { index: index.clone(), unique: *unique });
            }
            Some((_, was)) if was != kind => {
                out.push(IndexChange::KeyTypeChanged { index: index.clone(), from: was.clone(), to: kind.clone() });
            }
            Some(_) => {}
        }
    }
    out.extend(before.keys().filter(|i| !after.contains_key(*i)).map(|i| IndexChange::Removed { index: i.clone() }));
    out.sort();
    out
}

/// Every index `pool` declares (fields, composite indexes, extents): index
/// name to whether it is unique and its key type, named as the runtime
/// records it.
fn indexes(pool: &DescriptorPool) -> std::collections::BTreeMap<String, (bool, String)> {
    pbpersist_model::declared::indexes(pool).0.into_iter().map(|i| (i.name, (i.unique, i.kind))).collect()
}
