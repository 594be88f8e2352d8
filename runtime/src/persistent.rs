//! The `Persistent` trait that every stored message implements, and the
//! registry from stored type names to decoders.

use crate::meta::FieldInfo;
use crate::{Meta, Oid};
use std::any::Any;
use std::sync::Arc;

/// A protobuf message that can be stored as an object, or nested in one.
///
/// Implemented by `#[derive(Persistent)]`, which `pbpersist-build` applies to
/// every message it generates. The methods here are the bookkeeping a
/// transaction needs; the typed field accessors are inherent methods.
pub trait Persistent: prost::Message + Default + Clone + PartialEq + std::fmt::Debug + 'static {
    /// The full protobuf name, such as `demo.Tower`: what the record stores.
    const TYPE_NAME: &'static str;
    /// Every field in declaration order; a field's index is its change bit.
    const FIELDS: &'static [FieldInfo];
    /// Earlier full names (`(pbpersist.former_names)`): records stored under
    /// them load as this type, and are saved under the current name.
    const FORMER_NAMES: &'static [&'static str] = &[];
    /// Whether changes are tracked per field (fields private, changed only
    /// through accessors). Types with public fields are tracked per object:
    /// `Transaction::get_mut` counts them as changed.
    const TRACKS_FIELDS: bool = true;

    /// A shared instance with every field unset, for getters of unset message fields.
    fn default_instance() -> &'static Self;
    /// The bookkeeping: change bits and unknown fields.
    fn meta(&self) -> &Meta;
    /// The bookkeeping, mutably.
    fn meta_mut(&mut self) -> &mut Meta;
    /// Calls `visit` with the oid of every reference, in field order, nested
    /// messages included.
    fn visit_refs(&self, visit: &mut dyn FnMut(Oid));
    /// Fails with the first required field that is not set, nested messages included.
    fn check_required(&self) -> Result<(), RequiredFieldError>;
    /// Forgets all changes, in nested messages too.
    fn mark_unchanged(&mut self);
    /// Adds this type's `.proto` definition, and those of the types it uses,
    /// to `schema`.
    fn describe_schema(schema: &mut crate::schema::ProtoSchema);

    /// The `.proto` files that describe this type and every type it uses,
    /// as `(name, text)`, the way the database stores them.
    fn proto_files() -> Vec<(String, String)>
    where
        Self: Sized,
    {
        let mut schema = crate::schema::ProtoSchema::new();
        Self::describe_schema(&mut schema);
        schema.files()
    }

    /// Whether [`resolve_conflict`](Self::resolve_conflict) may merge
    /// concurrent changes. Set with `#[pbpersist(resolve_conflicts = "path")]`.
    const RESOLVES_CONFLICTS: bool = false;

    /// Merges a conflicting commit: `old` is the state this transaction
    /// started from, `committed` what another transaction committed since,
    /// `new` this transaction's state. `None` keeps the conflict.
    fn resolve_conflict(old: &Self, committed: &Self, new: &Self) -> Option<Self> {
        let _ = (old, committed, new);
        None
    }

    /// Whether a setter, `clear_` or `_mut` accessor was called since the
    /// object was loaded, created or saved.
    #[inline]
    fn is_changed(&self) -> bool {
        self.meta().any_marked()
    }

    /// The fields changed since the object was loaded, created or saved.
    fn changed_fields(&self) -> Vec<FieldInfo> {
        let meta = self.meta();
        if meta.is_touched() {
            // Tracked per object: any field may have changed.
            return Self::FIELDS.to_vec();
        }
        Self::FIELDS.iter().enumerate().filter(|(i, _)| meta.is_marked(*i)).map(|(_, f)| *f).collect()
    }

    /// The oids of every reference, in field order.
    fn refs(&self) -> Vec<Oid> {
        let mut out = Vec::new();
        self.visit_refs(&mut |oid| out.push(oid));
        out
    }
}

/// What a `Ref<T>` field of a derived type may point to: any persistent
/// type, or a tree ([`PTreeMap`](crate::PTreeMap), [`PTreeSet`](crate::PTreeSet)).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the target of a reference",
    label = "not a persistent message or a tree",
    note = "a `Ref<T>` points to a type with `#[derive(Persistent)]`, a `PTreeMap` or a `PTreeSet`; `Ref<AnyObject>` points to any object"
)]
pub trait RefTarget: 'static {
    /// The stored type name of the target, for the schema's `(pbpersist.target)`.
    const TARGET_NAME: &'static str;
}

impl<T: Persistent> RefTarget for T {
    const TARGET_NAME: &'static str = T::TYPE_NAME;
}

/// A required field was not set when the object was about to be saved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}.{field} is required but not set")]
pub struct RequiredFieldError {
    /// The full name of the message, such as `demo.Tower`.
    pub message: &'static str,
    /// The field name, such as `name`.
    pub field: &'static str,
}

impl RequiredFieldError {
    /// The error for `message.field`.
    #[doc(hidden)]
    pub const fn new(message: &'static str, field: &'static str) -> Self {
        RequiredFieldError { message, field }
    }
}

/// A stored object with its type erased, as the object cache holds it.
pub trait Object: Any + Send + Sync + std::fmt::Debug {
    /// The stored type name.
    fn type_name(&self) -> &'static str;
    /// Encodes the whole record (type, state, references) into `out`.
    /// `extra_refs` are references held in unknown fields, which this program
    /// cannot see but must keep listing.
    fn encode_record(&self, out: &mut Vec<u8>, extra_refs: &[u64]);
    /// Encodes the state alone.
    fn encode_state(&self) -> Vec<u8>;
    /// See [`Persistent::describe_schema`].
    fn describe_schema(&self, schema: &mut crate::schema::ProtoSchema);
    /// Calls `visit` with every referenced oid.
    fn visit_refs(&self, visit: &mut dyn FnMut(Oid));
    /// See [`Persistent::check_required`].
    fn check_required(&self) -> Result<(), RequiredFieldError>;
    /// See [`Persistent::is_changed`].
    fn is_changed(&self) -> bool;
    /// See [`Persistent::mark_unchanged`].
    fn mark_unchanged(&mut self);
    /// A copy in a new allocation.
    fn clone_object(&self) -> Arc<dyn Object>;
    /// Whether the type merges conflicting commits.
    fn resolves_conflicts(&self) -> bool;
    /// Merges `self` (the new state) with `old` and the committed `state`;
    /// see [`Persistent::resolve_conflict`].
    fn resolve_conflict(&self, old: &dyn Object, committed: &[u8]) -> Option<Arc<dyn Object>>;
    /// For downcasting.
    fn as_any(&self) -> &dyn Any;
    /// For downcasting.
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// For downcasting the `Arc`.
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<T: Persistent> Object for T {
    fn type_name(&self) -> &'static str {
        T::TYPE_NAME
    }

    fn encode_record(&self, out: &mut Vec<u8>, extra_refs: &[u64]) {
        crate::record::encode(self, out, extra_refs)
    }

    fn encode_state(&self) -> Vec<u8> {
        prost::Message::encode_to_vec(self)
    }

    fn describe_schema(&self, schema: &mut crate::schema::ProtoSchema) {
        T::describe_schema(schema)
    }

    fn visit_refs(&self, visit: &mut dyn FnMut(Oid)) {
        Persistent::visit_refs(self, visit)
    }

    fn check_required(&self) -> Result<(), RequiredFieldError> {
        Persistent::check_required(self)
    }

    fn is_changed(&self) -> bool {
        Persistent::is_changed(self)
    }

    fn mark_unchanged(&mut self) {
        Persistent::mark_unchanged(self)
    }

    fn clone_object(&self) -> Arc<dyn Object> {
        Arc::new(self.clone())
    }

    fn resolves_conflicts(&self) -> bool {
        T::RESOLVES_CONFLICTS
    }

    fn resolve_conflict(&self, old: &dyn Object, committed: &[u8]) -> Option<Arc<dyn Object>> {
        if !T::RESOLVES_CONFLICTS {
            return None;
        }
        let old = old.as_any().downcast_ref::<T>()?;
        let committed = T::decode(committed).ok()?;
        let mut merged = T::resolve_conflict(old, &committed, self)?;
        merged.mark_unchanged();
        Some(Arc::new(merged))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// Decodes a state into a fresh, unchanged object of a registered type.
/// Unknown fields are copied out, so the object never keeps the state's buffer alive.
pub type DecodeFn = fn(bytes::Bytes) -> Result<Arc<dyn Object>, prost::DecodeError>;

/// How to decode a stored type: an entry of the registry.
///
/// `#[derive(Persistent)]` submits one for every type, so a program can load
/// any object whose type it was built with, without naming the Rust type.
#[derive(Debug, Clone, Copy)]
pub struct TypeEntry {
    /// The stored type name.
    pub name: &'static str,
    /// Earlier names that also load as this type.
    pub former_names: &'static [&'static str],
    /// Decodes a state into a fresh, unchanged object.
    pub decode: DecodeFn,
}

impl TypeEntry {
    /// The entry for `T`.
    #[doc(hidden)]
    pub const fn of<T: Persistent>() -> Self {
        TypeEntry { name: T::TYPE_NAME, former_names: T::FORMER_NAMES, decode: decode_object::<T> }
    }
}

fn decode_object<T: Persistent>(state: bytes::Bytes) -> Result<Arc<dyn Object>, prost::DecodeError> {
    Ok(Arc::new(T::decode(state)?))
}

inventory::collect!(TypeEntry);

/// Finds the registered decoder for a stored type name.
pub fn lookup_type(name: &str) -> Option<&'static TypeEntry> {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static TABLE: OnceLock<HashMap<&'static str, &'static TypeEntry>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            let entries = || inventory::iter::<TypeEntry>.into_iter();
            // Current names win over former ones.
            let former = entries().flat_map(|e| e.former_names.iter().map(move |n| (*n, e)));
            former.chain(entries().map(|e| (e.name, e))).collect()
        })
        .get(name)
        .copied()
}

/// Every registered stored type name, sorted.
pub fn registered_types() -> Vec<&'static str> {
    let mut names: Vec<_> = inventory::iter::<TypeEntry>.into_iter().map(|e| e.name).collect();
    names.sort_unstable();
    names.dedup();
    names
}
