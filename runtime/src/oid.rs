//! Object ids, transaction ids and typed references.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

/// The identity of a stored object. The root object has oid 0.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Oid(pub u64);

/// A transaction id: commits get strictly increasing tids.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Tid(pub u64);

impl Oid {
    /// The oid of the root object.
    pub const ROOT: Oid = Oid(0);
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({})", self.0)
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Tid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tid({})", self.0)
    }
}

impl fmt::Display for Tid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The target type of a reference that may point to an object of any type.
#[derive(Debug)]
pub enum AnyObject {}

/// A typed reference to a stored object: an oid that remembers its target type.
///
/// A `Ref` is a plain value; it does not load anything. Follow it with
/// [`Transaction::get`](crate::Transaction::get), which loads the target on
/// first use and checks that the stored object has type `T`. On the wire it is
/// the message `pbpersist.Ref { uint64 oid = 1; }`.
pub struct Ref<T: ?Sized = AnyObject> {
    oid: Oid,
    target: PhantomData<fn() -> T>,
}

impl<T: ?Sized> Ref<T> {
    /// A reference to the object with this oid.
    #[inline]
    pub const fn new(oid: Oid) -> Self {
        Ref { oid, target: PhantomData }
    }

    /// The target's oid.
    #[inline]
    pub const fn oid(self) -> Oid {
        self.oid
    }

    /// The same oid, seen as a reference to another type. Loading checks the type.
    #[inline]
    pub const fn cast<U: ?Sized>(self) -> Ref<U> {
        Ref::new(self.oid)
    }

    /// The same oid without a target type.
    #[inline]
    pub const fn erase(self) -> Ref<AnyObject> {
        Ref::new(self.oid)
    }
}

impl<T: ?Sized> Clone for Ref<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: ?Sized> Copy for Ref<T> {}

impl<T: ?Sized> PartialEq for Ref<T> {
    fn eq(&self, other: &Self) -> bool {
        self.oid == other.oid
    }
}

impl<T: ?Sized> Eq for Ref<T> {}

impl<T: ?Sized> PartialOrd for Ref<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: ?Sized> Ord for Ref<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.oid.cmp(&other.oid)
    }
}

impl<T: ?Sized> Hash for Ref<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.oid.hash(state)
    }
}

/// The reference to the root object; a map decoded from the wire starts from it.
impl<T: ?Sized> Default for Ref<T> {
    fn default() -> Self {
        Ref::new(Oid::ROOT)
    }
}

impl<T: ?Sized> fmt::Debug for Ref<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ref({})", self.oid.0)
    }
}

impl<T: ?Sized> From<Ref<T>> for Oid {
    fn from(r: Ref<T>) -> Oid {
        r.oid
    }
}

impl<T: ?Sized + 'static> prost::Message for Ref<T> {
    fn encode_raw(&self, buf: &mut impl bytes::BufMut) {
        if self.oid.0 != 0 {
            crate::wire::scalar::uint64::encode(1, &self.oid.0, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        if tag == 1 {
            prost::encoding::uint64::merge(wire_type, &mut self.oid.0, buf, ctx)
        } else {
            // A reference has one field; anything else is skipped, as a reader of
            // an older pbpersist.Ref would.
            prost::encoding::skip_field(wire_type, tag, buf, ctx)
        }
    }

    fn encoded_len(&self) -> usize {
        if self.oid.0 != 0 { prost::encoding::uint64::encoded_len(1, &self.oid.0) } else { 0 }
    }

    fn clear(&mut self) {
        self.oid = Oid::ROOT;
    }
}
