//! The root object at oid 0: named entry points into the object graph.

use crate::{AnyObject, Error, Meta, Ref, Result};
use std::collections::BTreeMap;

/// The root object, `pbpersist.Root`, always stored at oid 0.
///
/// It maps names to references. Every object reachable from it survives
/// garbage collection.
#[derive(Clone, PartialEq, crate::Persistent)]
#[pbpersist(message = "pbpersist.Root")]
pub struct Root {
    #[pbpersist(tag = 1, map(string, reference))]
    entries: BTreeMap<String, Ref<AnyObject>>,
    #[pbpersist(meta)]
    meta: Meta,
}

impl Root {
    /// Names `target` as `name`, replacing any earlier entry of that name.
    pub fn insert<T: ?Sized>(&mut self, name: impl Into<String>, target: Ref<T>) -> Option<Ref<AnyObject>> {
        self.entries_mut().insert(name.into(), target.erase())
    }

    /// The entry named `name`, as a reference to a `T`. The type is checked
    /// when the reference is followed.
    pub fn get<T: ?Sized>(&self, name: &str) -> Option<Ref<T>> {
        self.entries.get(name).map(|r| r.cast())
    }

    /// The entry named `name`, or [`Error::NameNotFound`].
    pub fn require<T: ?Sized>(&self, name: &str) -> Result<Ref<T>> {
        self.get(name).ok_or_else(|| Error::NameNotFound { name: name.to_owned() })
    }

    /// Removes the entry named `name`.
    pub fn remove(&mut self, name: &str) -> Option<Ref<AnyObject>> {
        if !self.entries.contains_key(name) {
            return None;
        }
        self.entries_mut().remove(name)
    }

    /// The entry names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
