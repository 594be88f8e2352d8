//! Indexes as the stored schemas declare them: built, checked and listed by
//! tools that have no Rust types (`cargo pbpersist index`), with the keys
//! the program's generated code would compute, read from decoded records.

use super::{Built, IndexCheck, Maintained};
use crate::connection::Transaction;
use crate::oid::Oid;
use crate::reflect::Schemas;
use crate::{Database, Error, Result};
use pbpersist_model::declared::{self, DeclaredIndex};
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, Value};
use std::any::Any;

/// An index a stored schema declares (a field's `(pbpersist.index)`, a
/// message's `(pbpersist.composite_index)` or `(pbpersist.extent)`), named
/// and keyed as the generated code's constant for it.
#[derive(Debug, Clone)]
pub struct StoredIndex {
    declared: DeclaredIndex,
}

/// Every index the schemas declare, by name, and a reason for each
/// declaration that cannot be an index.
pub fn stored_indexes(schemas: &Schemas) -> (Vec<StoredIndex>, Vec<String>) {
    let (indexes, refused) = declared::indexes(schemas.pool());
    let refused = refused.into_iter().map(|r| format!("{}: {}", r.message, r.reason)).collect();
    (indexes.into_iter().map(|declared| StoredIndex { declared }).collect(), refused)
}

impl StoredIndex {
    /// The index's name (`shop.Item.sku`, `shop.Item.city+born`, `shop.Item.extent`).
    pub fn name(&self) -> &str {
        &self.declared.name
    }

    /// The full name of the message it indexes.
    pub fn type_name(&self) -> &str {
        self.declared.message.full_name()
    }

    /// Whether two objects may not share a key.
    pub fn is_unique(&self) -> bool {
        self.declared.unique
    }

    /// The key type as the database records it (`string`, `(string,int64)`, `()`).
    pub fn key_kind(&self) -> &str {
        &self.declared.kind
    }

    /// The keys of one decoded state, each part's values in turn (a
    /// repeated field gives one key per element), encoded, sorted and
    /// without duplicates, with how each shows in an error.
    fn keys(&self, state: &DynamicMessage) -> Vec<(Vec<u8>, String)> {
        let mut keys: Vec<(Vec<u8>, Vec<String>)> = vec![(Vec::new(), Vec::new())];
        for part in &self.declared.parts {
            let values = values(state, part);
            keys = keys
                .into_iter()
                .flat_map(|(key, shown)| {
                    values.iter().map(move |(bytes, show)| {
                        let mut k = key.clone();
                        k.extend_from_slice(bytes);
                        let mut s = shown.clone();
                        s.push(show.clone());
                        (k, s)
                    })
                })
                .collect();
        }
        let mut out: Vec<(Vec<u8>, String)> = keys
            .into_iter()
            .map(|(k, s)| (k, if s.len() == 1 { s[0].clone() } else { format!("({})", s.join(", ")) }))
            .collect();
        out.sort();
        out.dedup_by(|a, b| a.0 == b.0);
        out
    }

    /// The decoded state of `oid`, if it is of the index's message.
    fn state(&self, tx: &mut Transaction<'_>, oid: Oid) -> Result<Option<DynamicMessage>> {
        let (type_name, state) = tx.load_state(oid)?;
        if type_name != self.type_name() {
            // Of another type now: no keys, as a typed index's for a foreign object.
            return Ok(None);
        }
        DynamicMessage::decode(self.declared.message.clone(), state)
            .map(Some)
            .map_err(|source| Error::Corrupt { oid, source })
    }
}

/// The encoded values (and how each shows) that the field path `path`
/// reaches in `state`: none where an embedded message or an optional
/// value is absent, one per element of a repeated field.
fn values(state: &DynamicMessage, path: &[FieldDescriptor]) -> Vec<(Vec<u8>, String)> {
    let Some((leaf, through)) = path.split_last() else { return vec![(Vec::new(), "()".to_owned())] };
    let mut at = state.clone();
    for field in through {
        if !at.has_field(field) {
            return Vec::new();
        }
        match at.get_field(field).as_message() {
            Some(m) => at = m.clone(),
            None => return Vec::new(),
        }
    }
    if leaf.supports_presence() && !at.has_field(leaf) {
        return Vec::new();
    }
    let value = at.get_field(leaf);
    match value.as_list() {
        Some(list) => list.iter().filter_map(|v| encode(leaf, v)).collect(),
        None => encode(leaf, &value).into_iter().collect(),
    }
}

/// One value of `field` encoded as the Rust key type of its kind encodes.
fn encode(field: &FieldDescriptor, value: &Value) -> Option<(Vec<u8>, String)> {
    use super::KeyEncoding;
    let mut out = Vec::new();
    let shown = match (field.kind(), value) {
        (Kind::Int32 | Kind::Sint32 | Kind::Sfixed32, Value::I32(v)) => {
            v.encode_key(&mut out);
            v.to_string()
        }
        (Kind::Enum(_), Value::EnumNumber(v)) => {
            v.encode_key(&mut out);
            v.to_string()
        }
        (Kind::Int64 | Kind::Sint64 | Kind::Sfixed64, Value::I64(v)) => {
            v.encode_key(&mut out);
            v.to_string()
        }
        (Kind::Uint32 | Kind::Fixed32, Value::U32(v)) => {
            v.encode_key(&mut out);
            v.to_string()
        }
        (Kind::Uint64 | Kind::Fixed64, Value::U64(v)) => {
            v.encode_key(&mut out);
            v.to_string()
        }
        (Kind::Bool, Value::Bool(v)) => {
            v.encode_key(&mut out);
            v.to_string()
        }
        (Kind::String, Value::String(v)) => {
            v.as_str().encode_key(&mut out);
            format!("{v:?}")
        }
        (Kind::Bytes, Value::Bytes(v)) => {
            v.as_ref().encode_key(&mut out);
            format!("{:?}", v.as_ref())
        }
        (Kind::Message(m), Value::Message(r)) if m.full_name() == "pbpersist.Ref" => {
            let oid = r.get_field_by_name("oid").and_then(|v| v.as_u64()).unwrap_or(0);
            oid.encode_key(&mut out);
            oid.to_string()
        }
        _ => return None,
    };
    Some((out, shown))
}

impl Maintained for StoredIndex {
    fn name(&self) -> &str {
        StoredIndex::name(self)
    }

    fn type_name(&self) -> &str {
        StoredIndex::type_name(self)
    }

    fn unique(&self) -> bool {
        self.declared.unique
    }

    fn key_kind(&self) -> String {
        self.declared.kind.clone()
    }

    /// Never called: a stored index is not registered, so no commit hook
    /// shows it objects; builds and checks read records through `keys_at`.
    fn keys_of(&self, _: &dyn Any) -> Vec<Vec<u8>> {
        Vec::new()
    }

    fn show_key(&self, _: &dyn Any, _: &[u8]) -> String {
        String::new()
    }

    fn keys_at(&self, tx: &mut Transaction<'_>, oid: Oid) -> Result<Vec<Vec<u8>>> {
        let Some(state) = self.state(tx, oid)? else { return Ok(Vec::new()) };
        Ok(self.keys(&state).into_iter().map(|(k, _)| k).collect())
    }

    fn show_at(&self, tx: &mut Transaction<'_>, oid: Oid, encoded: &[u8]) -> String {
        let Ok(Some(state)) = self.state(tx, oid) else { return String::new() };
        self.keys(&state).into_iter().find(|(k, _)| k == encoded).map(|(_, s)| s).unwrap_or_default()
    }
}

impl Database {
    /// Builds `index` as [`build_indexes`](Self::build_indexes) builds a
    /// registered one: the same entries the program's commits keep.
    pub fn build_stored_index(&self, index: &StoredIndex) -> Result<Built> {
        self.build_index(index)
    }

    /// Checks `indexes` against the objects as
    /// [`check_indexes`](Self::check_indexes) checks registered ones, in one scan.
    pub fn check_stored_indexes(&self, indexes: &[StoredIndex]) -> Result<Vec<IndexCheck>> {
        let indexes: Vec<&dyn Maintained> = indexes.iter().map(|i| i as &dyn Maintained).collect();
        self.check_these(&indexes)
    }
}
