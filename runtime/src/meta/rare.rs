//! The parts of a message's bookkeeping that most messages never have.

use thin_vec::ThinVec;

/// Change bits of fields 64 and up, and unknown fields, in one allocation
/// behind a thin pointer (none while both are empty), so that `Meta` stays at
/// three words and keeping unknown fields costs one allocation.
///
/// Word 0 is a header: the number of unknown bytes in its low 48 bits and the
/// number of change words in its high 16. The change words follow, then the
/// unknown bytes, packed into words in memory order.
#[derive(Clone, Default)]
pub(super) struct Rare(ThinVec<u64>);

const LEN_BITS: u32 = 48;
const LEN_MASK: u64 = (1 << LEN_BITS) - 1;

impl Rare {
    /// The number of change words and of unknown bytes.
    #[inline]
    fn header(&self) -> (usize, usize) {
        // Comparing the pointer with the shared empty header needs no load.
        if !self.0.has_capacity() {
            return (0, 0);
        }
        match self.0.first() {
            None => (0, 0),
            Some(h) => ((h >> LEN_BITS) as usize, (h & LEN_MASK) as usize),
        }
    }

    fn set_header(&mut self, words: usize, unknown: usize) {
        // Both limits are far beyond what fits in memory or in a schema.
        let words = u64::try_from(words).ok().filter(|w| *w < 1 << (64 - LEN_BITS));
        let unknown = u64::try_from(unknown).ok().filter(|n| *n <= LEN_MASK);
        let header = words.zip(unknown).map(|(w, n)| w << LEN_BITS | n).expect("bookkeeping within bounds");
        match self.0.first_mut() {
            Some(h) => *h = header,
            None => self.0.push(header),
        }
    }

    /// The change words of fields 64 and up.
    pub(super) fn words(&self) -> &[u64] {
        let (words, _) = self.header();
        self.0.get(1..1 + words).unwrap_or_default()
    }

    /// Sets bit `bit` of change word `word`, adding words as needed.
    pub(super) fn mark(&mut self, word: usize, bit: usize) {
        let (words, unknown) = self.header();
        if word >= words {
            // Rare enough to rebuild: the header, the words grown, the unknown bytes.
            let mut grown = ThinVec::with_capacity(self.0.len().max(1) + word + 1 - words);
            grown.push(0);
            grown.extend_from_slice(self.words());
            grown.extend(std::iter::repeat_n(0, word + 1 - words));
            grown.extend_from_slice(self.0.get(1 + words..).unwrap_or_default());
            self.0 = grown;
            self.set_header(word + 1, unknown);
        }
        self.0[1 + word] |= 1 << bit;
    }

    /// Clears every change bit.
    pub(super) fn clear_marks(&mut self) {
        let (words, _) = self.header();
        if let Some(w) = self.0.get_mut(1..1 + words) {
            w.fill(0);
        }
    }

    /// The unknown fields.
    #[inline]
    pub(super) fn unknown(&self) -> &[u8] {
        if !self.0.has_capacity() {
            return &[];
        }
        let (words, len) = self.header();
        match self.0.get(1 + words..) {
            Some(packed) => &bytemuck::cast_slice(packed)[..len],
            None => &[],
        }
    }

    /// Appends to the unknown fields. When this allocates, it makes room for
    /// `more` bytes in all, so that the fields that follow need not grow it.
    pub(super) fn append(&mut self, mut bytes: &[u8], more: usize) {
        if bytes.is_empty() {
            return;
        }
        let (words, len) = self.header();
        let new_len = len + bytes.len();
        if self.0.is_empty() {
            let needed = 1 + words + more.max(new_len).div_ceil(8);
            self.0 = ThinVec::with_capacity(needed);
            self.0.push(0);
        }
        // Fill the last word's free bytes, then push whole words as they are read.
        let used = len % 8;
        if let Some(last) = self.0.last_mut().filter(|_| used != 0) {
            let (head, rest) = bytes.split_at(bytes.len().min(8 - used));
            // The word's free bytes are zero.
            *last |= part(head, used);
            bytes = rest;
        }
        let mut whole = bytes.chunks_exact(8);
        self.0.extend(whole.by_ref().map(|w| u64::from_ne_bytes(w.try_into().unwrap_or_default())));
        let tail = whole.remainder();
        if !tail.is_empty() {
            self.0.push(part(tail, 0));
        }
        self.set_header(words, new_len);
    }

    /// Inserts unknown fields at offset `at` of the unknown ones.
    pub(super) fn insert(&mut self, at: usize, bytes: &[u8]) {
        let mut all = self.unknown().to_vec();
        let at = at.min(all.len());
        all.splice(at..at, bytes.iter().copied());
        self.replace(&all);
    }

    /// Replaces the unknown fields, keeping the change words.
    pub(super) fn replace(&mut self, bytes: &[u8]) {
        let (words, _) = self.header();
        self.0.truncate(1 + words);
        if !self.0.is_empty() {
            self.set_header(words, 0);
        }
        self.append(bytes, 0);
    }
}

/// The word holding `bytes` (fewer than eight) from byte `at` on, in memory
/// order, zero elsewhere. Built in a register: copying the bytes into a
/// stack array and reading it back as a word stalls on store forwarding
/// (perf: 40% of `append` on a Tower with two added fields).
#[inline]
fn part(bytes: &[u8], at: usize) -> u64 {
    let little = bytes.iter().enumerate().fold(0u64, |w, (i, b)| w | u64::from(*b) << (8 * (at + i)));
    u64::from_le(little)
}

#[cfg(test)]
mod tests {
    use super::Rare;

    #[test]
    fn unknown_bytes_and_change_words_share_one_vector() {
        let mut rare = Rare::default();
        assert_eq!(rare.unknown(), b"");
        assert!(rare.words().is_empty());
        rare.append(b"abc", 0);
        rare.append(b"defghijkl", 0);
        assert_eq!(rare.unknown(), b"abcdefghijkl");
        rare.mark(2, 5);
        assert_eq!(rare.words(), [0, 0, 1 << 5]);
        assert_eq!(rare.unknown(), b"abcdefghijkl");
        rare.insert(3, b"XY");
        assert_eq!(rare.unknown(), b"abcXYdefghijkl");
        rare.mark(0, 63);
        assert_eq!(rare.words(), [1 << 63, 0, 1 << 5]);
        rare.clear_marks();
        assert_eq!(rare.words(), [0, 0, 0]);
        rare.append(&[7; 20], 0);
        assert_eq!(rare.unknown().len(), 34);
        assert_eq!(&rare.unknown()[14..], [7; 20]);
        let copy = rare.clone();
        assert_eq!(copy.unknown(), rare.unknown());
    }

    #[test]
    fn the_first_append_reserves_what_it_is_told_and_no_more() {
        // A header word and the words the bytes need, or `more` of them.
        let mut rare = Rare::default();
        rare.append(b"abc", 0);
        assert_eq!(rare.0.capacity(), 2);
        let mut rare = Rare::default();
        rare.append(b"abc", 100);
        assert_eq!(rare.0.capacity(), 1 + 13);
    }

    #[test]
    fn marks_alone_keep_no_unknown_bytes() {
        let mut rare = Rare::default();
        rare.mark(1, 0);
        assert_eq!(rare.unknown(), b"");
        rare.insert(0, b"k");
        assert_eq!(rare.unknown(), b"k");
        assert_eq!(rare.words(), [0, 1]);
    }

    proptest::proptest! {
        #[test]
        fn behaves_as_a_byte_vector_and_a_word_vector(ops in proptest::collection::vec(
            (0u8..3, proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20), 0usize..200),
            0..12,
        )) {
            let (mut rare, mut bytes, mut words) = (Rare::default(), Vec::new(), Vec::<u64>::new());
            for (op, data, n) in ops {
                match op {
                    0 => {
                        rare.append(&data, n);
                        bytes.extend_from_slice(&data);
                    }
                    1 => {
                        rare.mark(n / 64, n % 64);
                        if words.len() <= n / 64 {
                            words.resize(n / 64 + 1, 0);
                        }
                        words[n / 64] |= 1 << (n % 64);
                    }
                    _ => {
                        let at = n.min(bytes.len());
                        rare.insert(at, &data);
                        bytes.splice(at..at, data);
                    }
                }
                proptest::prop_assert_eq!(rare.unknown(), &bytes[..]);
                proptest::prop_assert_eq!(rare.words(), &words[..]);
            }
        }
    }
}
