//! The types the conformance suite stores: a small graph of towers and
//! contacts, counters for lost updates and merges, accounts for snapshots,
//! and a recursive node for depth limits. Written with the derive, so the
//! suite needs no code generator.
#![allow(missing_docs)] // Fixture types; their accessors are generated.

use crate::{EnumValue, Meta, Ref};
use std::collections::BTreeMap;

/// A tower, with a reference to its neighbour.
#[derive(Clone, PartialEq, crate::Persistent)]
#[pbpersist(message = "pbpersist.conformance.Tower")]
pub struct Tower {
    #[pbpersist(tag = 1, required, string)]
    name: Option<String>,
    #[pbpersist(tag = 2, required, float)]
    width: Option<f32>,
    #[pbpersist(tag = 3, required, float)]
    height: Option<f32>,
    #[pbpersist(tag = 4, optional, int32, default = 1900)]
    build_year: Option<i32>,
    #[pbpersist(tag = 5, optional, reference)]
    neighbor: Option<Ref<Tower>>,
    #[pbpersist(meta)]
    meta: Meta,
}

/// An item found through indexes (`conformance::indexes`): by name, by its
/// unique code, by size and by each of its tags.
#[derive(Clone, PartialEq, crate::Persistent)]
#[pbpersist(message = "pbpersist.conformance.Item")]
pub struct Item {
    #[pbpersist(tag = 1, optional, string)]
    name: Option<String>,
    #[pbpersist(tag = 2, optional, string)]
    code: Option<String>,
    #[pbpersist(tag = 3, optional, int64)]
    size: Option<i64>,
    #[pbpersist(tag = 4, repeated, string)]
    tags: Vec<String>,
    #[pbpersist(meta)]
    meta: Meta,
}

/// A postal address, kept inside the object that owns it.
#[derive(Clone, PartialEq, crate::Persistent)]
#[pbpersist(message = "pbpersist.conformance.Address")]
pub struct Address {
    #[pbpersist(tag = 1, optional, string)]
    city: Option<String>,
    #[pbpersist(tag = 2, optional, string, default = "United States")]
    country: Option<String>,
    #[pbpersist(meta)]
    meta: Meta,
}

/// A contact whose guardians are other stored contacts.
#[derive(Clone, PartialEq, crate::Persistent)]
#[pbpersist(message = "pbpersist.conformance.Contact")]
pub struct Contact {
    #[pbpersist(tag = 1, required, string)]
    name: Option<String>,
    #[pbpersist(tag = 2, optional, message)]
    address: Option<Address>,
    #[pbpersist(tag = 3, repeated, reference)]
    guardians: Vec<Ref<Contact>>,
    #[pbpersist(tag = 5, optional, enumeration, default = 1)]
    kind: Option<EnumValue<contact::Kind>>,
    #[pbpersist(tag = 6, map(string, string))]
    labels: BTreeMap<String, String>,
    #[pbpersist(oneof(
        member(name = "phone", tag = 7, string),
        member(name = "postal", tag = 8, message = "Address"),
        member(name = "agent", tag = 9, reference = "Contact")
    ))]
    reach: Option<contact::Reach>,
    #[pbpersist(meta)]
    meta: Meta,
}

/// Types nested in `Contact`.
pub mod contact {
    /// The members of the `reach` oneof.
    #[derive(Clone, PartialEq, Debug)]
    pub enum Reach {
        Phone(String),
        Postal(super::Address),
        Agent(crate::Ref<super::Contact>),
    }

    /// What a contact is.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, crate::Enumeration)]
    #[pbpersist(enumeration = "pbpersist.conformance.Contact.Kind", package = "pbpersist.conformance", closed)]
    pub enum Kind {
        #[pbpersist(name = "PERSON")]
        Person = 1,
        #[pbpersist(name = "ORGANIZATION")]
        Organization = 2,
    }
}

/// A counter that conflicts on concurrent increments.
#[derive(Clone, PartialEq, crate::Persistent)]
#[pbpersist(message = "pbpersist.conformance.Counter")]
pub struct Counter {
    #[pbpersist(tag = 1, int64)]
    value: i64,
    #[pbpersist(meta)]
    meta: Meta,
}

/// A counter whose concurrent increments merge.
#[derive(Clone, PartialEq, crate::Persistent)]
#[pbpersist(message = "pbpersist.conformance.ResolvingCounter", resolve_conflicts = "merge_counter")]
pub struct ResolvingCounter {
    #[pbpersist(tag = 1, int64)]
    value: i64,
    #[pbpersist(meta)]
    meta: Meta,
}

/// Adds both transactions' increments to the committed value.
fn merge_counter(
    old: &ResolvingCounter,
    committed: &ResolvingCounter,
    new: &ResolvingCounter,
) -> Option<ResolvingCounter> {
    let mut merged = committed.clone();
    merged.set_value(committed.value() + (new.value() - old.value()));
    Some(merged)
}

/// An account of a bank whose total must not change.
#[derive(Clone, PartialEq, crate::Persistent)]
#[pbpersist(message = "pbpersist.conformance.Account")]
pub struct Account {
    #[pbpersist(tag = 1, string)]
    name: String,
    #[pbpersist(tag = 2, int64)]
    balance: i64,
    #[pbpersist(meta)]
    meta: Meta,
}

/// A node of a chain nested in one record.
#[derive(Clone, PartialEq, crate::Persistent)]
#[pbpersist(message = "pbpersist.conformance.Node")]
pub struct Node {
    #[pbpersist(tag = 1, string)]
    label: String,
    #[pbpersist(tag = 2, optional, message, boxed)]
    child: Option<Box<Node>>,
    #[pbpersist(meta)]
    meta: Meta,
}
