//! The bookkeeping every persistent message carries: which fields changed
//! since it was loaded or saved, and the fields this program does not know.

use std::sync::atomic::{AtomicU32, Ordering};

mod rare;
use rare::Rare;

/// A field of a message: its protobuf name and number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldInfo {
    /// The protobuf field name.
    pub name: &'static str,
    /// The field number.
    pub number: u32,
}

impl FieldInfo {
    /// Describes a field.
    #[doc(hidden)]
    pub const fn new(name: &'static str, number: u32) -> Self {
        FieldInfo { name, number }
    }
}

/// Change bits and unknown fields. Generated types keep one in a field marked
/// `#[pbpersist(meta)]`; accessors maintain it.
///
/// Every message, nested ones included, carries a `Meta`, so it is kept to
/// three words: what most messages never have (change bits of fields 64 and
/// up, unknown fields) shares one allocation behind a thin pointer.
pub struct Meta {
    /// Bits for the first 64 fields.
    low: u64,
    /// Changed as a whole (types tracked per object).
    touched: bool,
    /// The encoded length that the last `encoded_len` computed, so that the
    /// encode which follows writes each nested message's length without
    /// walking it again; `u32::MAX` when unknown. Relaxed atomics: a message
    /// being encoded is borrowed shared and cannot change, so every thread
    /// that computes the length stores the same value.
    encoded_len: AtomicU32,
    /// No allocation until used.
    rare: Rare,
}

// Every message carries one, nested ones included.
const _: () = assert!(std::mem::size_of::<Meta>() <= 24);

impl Default for Meta {
    #[inline]
    fn default() -> Self {
        Meta { low: 0, touched: false, encoded_len: AtomicU32::new(u32::MAX), rare: Rare::default() }
    }
}

impl Clone for Meta {
    fn clone(&self) -> Self {
        Meta { low: self.low, touched: self.touched, encoded_len: AtomicU32::new(u32::MAX), rare: self.rare.clone() }
    }
}

impl Meta {
    /// Marks the field with this index (its position in `Persistent::FIELDS`) changed.
    #[inline]
    #[doc(hidden)]
    pub fn mark(&mut self, index: usize) {
        if index < 64 {
            self.low |= 1 << index;
        } else {
            self.mark_high(index - 64);
        }
    }

    #[cold]
    fn mark_high(&mut self, index: usize) {
        self.rare.mark(index / 64, index % 64);
    }

    /// Whether the field with this index changed.
    #[inline]
    pub fn is_marked(&self, index: usize) -> bool {
        if index < 64 {
            self.low & (1 << index) != 0
        } else {
            let i = index - 64;
            self.rare.words().get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
        }
    }

    /// Whether any field changed.
    #[inline]
    pub fn any_marked(&self) -> bool {
        self.touched || self.low != 0 || self.rare.words().iter().any(|w| *w != 0)
    }

    /// Marks the whole object changed, for types whose fields are public.
    #[inline]
    #[doc(hidden)]
    pub fn touch(&mut self) {
        self.touched = true;
    }

    /// Whether the whole object was marked changed.
    #[inline]
    pub fn is_touched(&self) -> bool {
        self.touched
    }

    /// Forgets all changes, as after a load or a commit.
    #[inline]
    #[doc(hidden)]
    pub fn clear_changes(&mut self) {
        self.low = 0;
        self.touched = false;
        self.rare.clear_marks();
    }

    /// The encoded fields this program's schema does not know.
    #[inline]
    pub fn unknown_fields(&self) -> &[u8] {
        self.rare.unknown()
    }

    /// Remembers the encoded length `encoded_len` just computed. Not a stable API.
    #[doc(hidden)]
    #[inline]
    pub fn remember_len(&self, len: usize) -> usize {
        self.encoded_len.store(u32::try_from(len).unwrap_or(u32::MAX), Ordering::Relaxed);
        len
    }

    /// The encoded length the last `encoded_len` computed, if known. Not a stable API.
    #[doc(hidden)]
    #[inline]
    pub fn remembered_len(&self) -> Option<usize> {
        let len = self.encoded_len.load(Ordering::Relaxed);
        (len != u32::MAX).then_some(len as usize)
    }

    /// Appends to the unknown fields, reserving room for `more` bytes in all
    /// when it allocates, so that the fields that follow need not grow it.
    pub(crate) fn append_unknown(&mut self, bytes: &[u8], more: usize) {
        self.rare.append(bytes, more);
    }

    /// Replaces the unknown fields.
    pub(crate) fn replace_unknown(&mut self, bytes: &[u8]) {
        self.rare.replace(bytes);
    }

    /// Inserts unknown fields at `at`, an offset into [`Meta::unknown_fields`].
    pub(crate) fn insert_unknown(&mut self, at: usize, bytes: &[u8]) {
        self.rare.insert(at, bytes);
    }
}

/// Two messages are equal when their data is: change bits do not count.
impl PartialEq for Meta {
    fn eq(&self, other: &Self) -> bool {
        self.unknown_fields() == other.unknown_fields()
    }
}

impl std::fmt::Debug for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meta")
            .field("changed", &self.any_marked())
            .field("unknown_bytes", &self.unknown_fields().len())
            .finish()
    }
}
