//! Protobuf enums as Rust enums, with unknown numbers kept.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

/// A Rust enum generated for a protobuf enum (see `#[derive(Enumeration)]`).
pub trait Enumeration: Copy + Eq + Default + fmt::Debug + Send + Sync + 'static {
    /// The full protobuf name, such as `demo.Contact.Kind`.
    const TYPE_NAME: &'static str;
    /// Every value, in declaration order.
    const VALUES: &'static [Self];
    /// Whether the enum is closed (declared in a proto2 file): a number it
    /// does not list is kept with the message's unknown fields, as protobuf
    /// specifies, rather than in the field.
    const CLOSED: bool = false;
    /// The value with this number, if this program knows it.
    fn from_i32(value: i32) -> Option<Self>;
    /// The number of this value.
    fn to_i32(self) -> i32;
    /// The protobuf name of this value, such as `PERSON`.
    fn proto_name(self) -> &'static str;
    /// The value with this protobuf name.
    fn from_proto_name(name: &str) -> Option<Self>;
    /// Adds this enum's `.proto` definition to `schema`.
    fn describe_schema(schema: &mut crate::schema::ProtoSchema);
}

/// The error for a number that is not a value of the enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a known value of the enum")]
pub struct UnknownEnumValue(pub i32);

/// A stored enum number: a known value of `E` or a number a newer schema
/// added, which is kept as it is so that saving does not lose it.
pub struct EnumValue<E> {
    value: i32,
    kind: PhantomData<fn() -> E>,
}

impl<E> EnumValue<E> {
    /// The stored form of this number.
    #[inline]
    pub const fn new(value: i32) -> Self {
        EnumValue { value, kind: PhantomData }
    }

    /// The number.
    #[inline]
    pub const fn value(self) -> i32 {
        self.value
    }
}

impl<E: Enumeration> EnumValue<E> {
    /// The value, if this program knows the number.
    #[inline]
    pub fn known(self) -> Option<E> {
        E::from_i32(self.value)
    }
}

impl<E: Enumeration> From<E> for EnumValue<E> {
    #[inline]
    fn from(value: E) -> Self {
        EnumValue::new(value.to_i32())
    }
}

impl<E> Clone for EnumValue<E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for EnumValue<E> {}

/// Number 0, the proto3 default.
impl<E> Default for EnumValue<E> {
    fn default() -> Self {
        EnumValue::new(0)
    }
}

impl<E> PartialEq for EnumValue<E> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<E> Eq for EnumValue<E> {}

impl<E: Enumeration> PartialEq<E> for EnumValue<E> {
    fn eq(&self, other: &E) -> bool {
        self.value == other.to_i32()
    }
}

impl<E> Hash for EnumValue<E> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.value.hash(state)
    }
}

impl<E> PartialOrd for EnumValue<E> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for EnumValue<E> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}

impl<E: Enumeration> fmt::Debug for EnumValue<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.known() {
            Some(v) => fmt::Debug::fmt(&v, f),
            None => write!(f, "{}({})", E::TYPE_NAME, self.value),
        }
    }
}
