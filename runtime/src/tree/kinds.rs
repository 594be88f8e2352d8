//! Which Rust types a tree holds as keys and values, and the stored list
//! each one lives in.

use super::node::{TreeKeys, TreeValues};
use crate::{AnyObject, Persistent, Ref};

mod sealed {
    pub trait Sealed {}
}

/// A key type of [`PTreeMap`](super::PTreeMap) and [`PTreeSet`](super::PTreeSet):
/// `i64`, `u64`, `String` or `Vec<u8>`, ordered as Rust orders them (bytes
/// and strings by their bytes).
pub trait TreeKey: Ord + Clone + std::fmt::Debug + Send + Sync + 'static + sealed::Sealed {
    /// The `key_kind` stored in the tree's head.
    const KIND: &'static str;
    #[doc(hidden)]
    fn column(keys: &TreeKeys) -> &[Self];
    #[doc(hidden)]
    fn column_mut(keys: &mut TreeKeys) -> &mut Vec<Self>;
}

macro_rules! keys {
    ($($ty:ty => $kind:literal, $get:ident, $get_mut:ident;)*) => {$(
        impl sealed::Sealed for $ty {}
        impl TreeKey for $ty {
            const KIND: &'static str = $kind;
            fn column(keys: &TreeKeys) -> &[Self] {
                keys.$get()
            }
            fn column_mut(keys: &mut TreeKeys) -> &mut Vec<Self> {
                keys.$get_mut()
            }
        }
    )*};
}

keys! {
    i64 => "int64", ints, ints_mut;
    u64 => "uint64", uints, uints_mut;
    String => "string", strings, strings_mut;
    Vec<u8> => "bytes", bytes, bytes_mut;
}

/// A value type of [`PTreeMap`](super::PTreeMap): a reference (`Ref<T>`),
/// `i64`, `u64`, `String`, `Vec<u8>`, `f64`, `bool`, or a message without
/// references wrapped in [`Embedded`].
pub trait TreeValue: Clone + Send + Sync + 'static {
    /// Whether values are stored at all (not for a set's `()`).
    #[doc(hidden)]
    const STORED: bool = true;
    /// The form the value is stored in.
    #[doc(hidden)]
    type Stored: Clone + PartialEq;
    /// The `value_kind` stored in the tree's head.
    #[doc(hidden)]
    fn kind() -> String;
    /// Whether a head's `value_kind` is this type's (without allocating).
    #[doc(hidden)]
    fn is_kind(stored: &str) -> bool;
    #[doc(hidden)]
    fn column(values: &TreeValues) -> &[Self::Stored];
    #[doc(hidden)]
    fn column_mut(values: &mut TreeValues) -> &mut Vec<Self::Stored>;
    #[doc(hidden)]
    fn store(self) -> Self::Stored;
    /// `None` if the stored form does not decode (an [`Embedded`] message).
    #[doc(hidden)]
    fn load(stored: &Self::Stored) -> Option<Self>;
    /// The value of a set's entries, which is not stored.
    #[doc(hidden)]
    fn unstored() -> Option<Self> {
        None
    }
    /// Whether the value cannot be kept in a bucket.
    #[doc(hidden)]
    fn refused(&self) -> bool {
        false
    }
}

macro_rules! values {
    ($($ty:ty => $kind:literal, $get:ident, $get_mut:ident;)*) => {$(
        impl TreeValue for $ty {
            type Stored = $ty;
            fn kind() -> String {
                $kind.to_owned()
            }
            fn is_kind(stored: &str) -> bool {
                stored == $kind
            }
            fn column(values: &TreeValues) -> &[Self] {
                values.$get()
            }
            fn column_mut(values: &mut TreeValues) -> &mut Vec<Self> {
                values.$get_mut()
            }
            fn store(self) -> Self {
                self
            }
            fn load(stored: &Self) -> Option<Self> {
                Some(stored.clone())
            }
        }
    )*};
}

values! {
    i64 => "int64", ints, ints_mut;
    u64 => "uint64", uints, uints_mut;
    String => "string", strings, strings_mut;
    Vec<u8> => "bytes", bytes, bytes_mut;
    f64 => "double", doubles, doubles_mut;
    bool => "bool", bools, bools_mut;
}

impl<T: ?Sized + 'static> TreeValue for Ref<T> {
    type Stored = Ref<AnyObject>;
    fn kind() -> String {
        "ref".to_owned()
    }
    fn is_kind(stored: &str) -> bool {
        stored == "ref"
    }
    fn column(values: &TreeValues) -> &[Ref<AnyObject>] {
        values.refs()
    }
    fn column_mut(values: &mut TreeValues) -> &mut Vec<Ref<AnyObject>> {
        values.refs_mut()
    }
    fn store(self) -> Ref<AnyObject> {
        self.erase()
    }
    fn load(stored: &Ref<AnyObject>) -> Option<Self> {
        Some(stored.cast())
    }
}

/// A message kept inside a bucket as a value, encoded, rather than as an
/// object of its own: for small values read with their key.
///
/// Its references are not followed by garbage collection (the bucket's
/// record does not list them), so inserting a message that holds any is
/// refused with [`Error::TreeValue`](crate::Error::TreeValue); keep a
/// `Ref<T>` as the value instead.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Embedded<M>(pub M);

impl<M: Persistent + Send + Sync> TreeValue for Embedded<M> {
    type Stored = Vec<u8>;
    fn kind() -> String {
        format!("message:{}", M::TYPE_NAME)
    }
    fn is_kind(stored: &str) -> bool {
        stored.strip_prefix("message:") == Some(M::TYPE_NAME)
    }
    fn column(values: &TreeValues) -> &[Vec<u8>] {
        values.bytes()
    }
    fn column_mut(values: &mut TreeValues) -> &mut Vec<Vec<u8>> {
        values.bytes_mut()
    }
    fn store(self) -> Vec<u8> {
        prost::Message::encode_to_vec(&self.0)
    }
    fn refused(&self) -> bool {
        !self.0.refs().is_empty()
    }
    fn load(stored: &Vec<u8>) -> Option<Self> {
        let mut m = M::decode(stored.as_slice()).ok()?;
        m.mark_unchanged();
        Some(Embedded(m))
    }
}

/// The value of a set's entries: nothing is stored.
impl TreeValue for () {
    const STORED: bool = false;
    type Stored = ();
    fn kind() -> String {
        String::new()
    }
    fn is_kind(stored: &str) -> bool {
        stored.is_empty()
    }
    fn column(_: &TreeValues) -> &[()] {
        &[]
    }
    fn column_mut(_: &mut TreeValues) -> &mut Vec<()> {
        unreachable!("a set's values are never stored (STORED is false)")
    }
    fn store(self) {}
    fn load(_: &()) -> Option<()> {
        Some(())
    }
    fn unstored() -> Option<()> {
        Some(())
    }
}
