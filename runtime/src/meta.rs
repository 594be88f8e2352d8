//! The bookkeeping every persistent message carries: which fields changed
//! since it was loaded or saved, and the fields this program does not know.

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
    pub const fn new(name: &'static str, number: u32) -> Self {
        FieldInfo { name, number }
    }
}

/// Change bits and unknown fields. Generated types keep one in a field marked
/// `#[pbpersist(meta)]`; accessors maintain it.
#[derive(Clone, Default)]
pub struct Meta {
    /// Bits for the first 64 fields.
    low: u64,
    /// Bits for fields 64 and up; empty (no allocation) for most messages.
    high: Vec<u64>,
    /// Encoded fields that the message's schema does not declare, in the order read.
    unknown: Vec<u8>,
    /// Changed as a whole (types tracked per object).
    touched: bool,
}

impl Meta {
    /// Marks the field with this index (its position in `Persistent::FIELDS`) changed.
    #[inline]
    pub fn mark(&mut self, index: usize) {
        if index < 64 {
            self.low |= 1 << index;
        } else {
            self.mark_high(index - 64);
        }
    }

    #[cold]
    fn mark_high(&mut self, index: usize) {
        let word = index / 64;
        if self.high.len() <= word {
            self.high.resize(word + 1, 0);
        }
        self.high[word] |= 1 << (index % 64);
    }

    /// Whether the field with this index changed.
    #[inline]
    pub fn is_marked(&self, index: usize) -> bool {
        if index < 64 {
            self.low & (1 << index) != 0
        } else {
            let i = index - 64;
            self.high.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
        }
    }

    /// Whether any field changed.
    #[inline]
    pub fn any_marked(&self) -> bool {
        self.touched || self.low != 0 || self.high.iter().any(|w| *w != 0)
    }

    /// Marks the whole object changed, for types whose fields are public.
    #[inline]
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
    pub fn clear_changes(&mut self) {
        self.low = 0;
        self.high.clear();
        self.touched = false;
    }

    /// The encoded fields this program's schema does not know.
    #[inline]
    pub fn unknown_fields(&self) -> &[u8] {
        &self.unknown
    }

    pub(crate) fn unknown_mut(&mut self) -> &mut Vec<u8> {
        &mut self.unknown
    }
}

/// Two messages are equal when their data is: change bits do not count.
impl PartialEq for Meta {
    fn eq(&self, other: &Self) -> bool {
        self.unknown == other.unknown
    }
}

impl std::fmt::Debug for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meta").field("changed", &self.any_marked()).field("unknown_bytes", &self.unknown.len()).finish()
    }
}
