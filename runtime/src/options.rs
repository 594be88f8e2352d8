//! Settings of a `Database`.

/// How a [`Database`](crate::Database) behaves: cache bounds, retries and
/// decoding limits. Start from `Options::default()` and change what you need.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Objects each connection's cache keeps before it turns the least
    /// recently used unchanged ones back into ghosts.
    pub cache_objects: usize,
    /// Estimated bytes (record sizes plus a fixed overhead per object) each
    /// connection's cache keeps before it evicts.
    pub cache_bytes: usize,
    /// How many times `transact` runs its closure when commits conflict.
    pub max_attempts: u32,
    /// The largest record that is decoded; larger ones are an error.
    pub max_record_size: usize,
    /// The deepest nesting of messages that is decoded.
    pub max_depth: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cache_objects: 100_000,
            cache_bytes: 256 << 20,
            max_attempts: 10,
            max_record_size: 64 << 20,
            max_depth: 64,
        }
    }
}

impl Options {
    /// Sets [`cache_objects`](Self::cache_objects).
    pub fn cache_objects(mut self, n: usize) -> Self {
        self.cache_objects = n.max(1);
        self
    }

    /// Sets [`cache_bytes`](Self::cache_bytes).
    pub fn cache_bytes(mut self, n: usize) -> Self {
        self.cache_bytes = n.max(1);
        self
    }

    /// Sets [`max_attempts`](Self::max_attempts).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Sets [`max_record_size`](Self::max_record_size).
    pub fn max_record_size(mut self, n: usize) -> Self {
        self.max_record_size = n;
        self
    }

    /// Sets [`max_depth`](Self::max_depth).
    pub fn max_depth(mut self, n: u32) -> Self {
        self.max_depth = n;
        self
    }
}
