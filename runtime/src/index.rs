//! Secondary indexes: objects found by the value of a field instead of by
//! following references.
//!
//! An [`Index`] names a type and a function from an object to its keys. It
//! is registered once for the whole program with [`register_index!`], so
//! that every transaction of every database that writes an object of the
//! type keeps the index current: added objects gain entries, changed ones
//! move theirs, in the same commit as the change. Queries are methods of the
//! index that take the transaction, so they read the index as of the
//! transaction's snapshot (a view of the past included).
//!
//! Each index is a [`PTreeMap`] from encoded key to oid, named in the root
//! as `pbpersist.index/<name>`: it is stored, conflict-checked, kept in
//! history and undone like any other tree, on every storage, and readable
//! from other languages as one (docs/indexes.md gives the key encoding).
//! Entries hold oids, not references: an index does not keep what it
//! indexes alive, and a lookup passes over an entry whose object garbage
//! collection removed.

#[cfg(feature = "reflect")]
mod stored;
#[cfg(feature = "reflect")]
pub use stored::{StoredIndex, stored_indexes};

use crate::connection::{CommitHook, CommitHooks, Transaction};
use crate::oid::Oid;
use crate::persistent::{Object, Persistent};
use crate::tree::PTreeMap;
use crate::{Error, Ref, Result};
use std::any::Any;
use std::borrow::Borrow;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};

/// The prefix of an index's name in the root.
const ROOT_PREFIX: &str = "pbpersist.index/";

/// A value that can be looked up in an index: encoded so that byte order
/// is the type's order. `str` and `[u8]` look up `String` and `Vec<u8>` keys.
pub trait KeyEncoding {
    /// Appends the order-preserving encoding of `self` to `out`. The
    /// encoding of one value is never a prefix of another's, so an oid may
    /// follow it.
    fn encode_key(&self, out: &mut Vec<u8>);

    /// The key type's name as an index records it (`int64`, `string`,
    /// `(string,int64)`), so that entries of another type are never read.
    fn kind() -> String
    where
        Self: Sized,
    {
        String::new()
    }
}

/// Keys whose ranges may be bounded by `Q`: a key type by itself, `String`
/// by `&str`, `Vec<u8>` by `&[u8]`, so that `range(tx, "A".."P", 10)`
/// reads a `String` index. (Point lookups take any borrowed form.)
pub trait RangeKey<Q: ?Sized> {}

impl<K: KeyEncoding> RangeKey<K> for K {}
impl RangeKey<&str> for String {}
impl RangeKey<&[u8]> for Vec<u8> {}

/// A key type of an [`Index`].
pub trait IndexKey: KeyEncoding + Clone + std::fmt::Debug + Send + Sync + 'static {}

impl<K: KeyEncoding + Clone + std::fmt::Debug + Send + Sync + 'static> IndexKey for K {}

impl KeyEncoding for u64 {
    fn kind() -> String {
        "uint64".to_owned()
    }

    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
}

impl KeyEncoding for i64 {
    fn kind() -> String {
        "int64".to_owned()
    }

    fn encode_key(&self, out: &mut Vec<u8>) {
        // Flipping the sign bit puts negatives first in unsigned order.
        out.extend_from_slice(&((*self as u64) ^ (1 << 63)).to_be_bytes());
    }
}

impl KeyEncoding for u32 {
    fn kind() -> String {
        "uint32".to_owned()
    }

    fn encode_key(&self, out: &mut Vec<u8>) {
        u64::from(*self).encode_key(out);
    }
}

impl KeyEncoding for i32 {
    fn kind() -> String {
        "int32".to_owned()
    }

    fn encode_key(&self, out: &mut Vec<u8>) {
        i64::from(*self).encode_key(out);
    }
}

impl KeyEncoding for bool {
    fn kind() -> String {
        "bool".to_owned()
    }

    fn encode_key(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

impl KeyEncoding for [u8] {
    fn encode_key(&self, out: &mut Vec<u8>) {
        encode_bytes(self, out);
    }
}

impl KeyEncoding for Vec<u8> {
    fn kind() -> String {
        "bytes".to_owned()
    }

    fn encode_key(&self, out: &mut Vec<u8>) {
        encode_bytes(self, out);
    }
}

impl KeyEncoding for str {
    fn encode_key(&self, out: &mut Vec<u8>) {
        encode_bytes(self.as_bytes(), out);
    }
}

impl KeyEncoding for String {
    fn kind() -> String {
        "string".to_owned()
    }

    fn encode_key(&self, out: &mut Vec<u8>) {
        encode_bytes(self.as_bytes(), out);
    }
}

impl<Q: KeyEncoding + ?Sized> KeyEncoding for &Q {
    fn encode_key(&self, out: &mut Vec<u8>) {
        (**self).encode_key(out);
    }
}

/// Bytes with each 0 written as `00 ff` and `00 01` at the end: the order
/// of the bytes, and no encoding a prefix of another.
fn encode_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xff);
        }
    }
    out.extend_from_slice(&[0, 1]);
}

/// The key of a type extent: every object has it, so the entries are in oid order.
impl KeyEncoding for () {
    fn kind() -> String {
        "()".to_owned()
    }

    fn encode_key(&self, _: &mut Vec<u8>) {}
}

impl<A: KeyEncoding, B: KeyEncoding> KeyEncoding for (A, B) {
    fn kind() -> String {
        format!("({},{})", A::kind(), B::kind())
    }

    fn encode_key(&self, out: &mut Vec<u8>) {
        self.0.encode_key(out);
        self.1.encode_key(out);
    }
}

impl<A: KeyEncoding, B: KeyEncoding, C: KeyEncoding> KeyEncoding for (A, B, C) {
    fn kind() -> String {
        format!("({},{},{})", A::kind(), B::kind(), C::kind())
    }

    fn encode_key(&self, out: &mut Vec<u8>) {
        self.0.encode_key(out);
        self.1.encode_key(out);
        self.2.encode_key(out);
    }
}

/// The keys a stored field holds: one for a value, none or one for an
/// optional value, one per element of a repeated field. Generated indexes
/// of a field of an embedded message read it through this, as the derive
/// sees only the embedded message's field's key type, not its shape.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "a field of type `{Self}` has no keys of type `{K}`",
    label = "the type written after the nested index path is not this field's"
)]
pub trait KeyValues<K> {
    /// The keys.
    fn key_values(&self) -> Vec<K>;
}

macro_rules! key_values {
    ($($t:ty),*) => {$(
        impl KeyValues<$t> for $t {
            fn key_values(&self) -> Vec<$t> {
                vec![self.clone()]
            }
        }
        impl KeyValues<$t> for Option<$t> {
            fn key_values(&self) -> Vec<$t> {
                self.iter().cloned().collect()
            }
        }
        impl KeyValues<$t> for Vec<$t> {
            fn key_values(&self) -> Vec<$t> {
                self.clone()
            }
        }
    )*};
}

key_values!(i32, i64, u32, u64, bool, String, Vec<u8>);

impl<E> KeyValues<i32> for crate::EnumValue<E> {
    fn key_values(&self) -> Vec<i32> {
        vec![self.value()]
    }
}

impl<E> KeyValues<i32> for Option<crate::EnumValue<E>> {
    fn key_values(&self) -> Vec<i32> {
        self.iter().map(|v| v.value()).collect()
    }
}

impl<E> KeyValues<i32> for Vec<crate::EnumValue<E>> {
    fn key_values(&self) -> Vec<i32> {
        self.iter().map(|v| v.value()).collect()
    }
}

impl<T: ?Sized> KeyValues<u64> for Ref<T> {
    fn key_values(&self) -> Vec<u64> {
        vec![self.oid().0]
    }
}

impl<T: ?Sized> KeyValues<u64> for Option<Ref<T>> {
    fn key_values(&self) -> Vec<u64> {
        self.iter().map(|r| r.oid().0).collect()
    }
}

impl<T: ?Sized> KeyValues<u64> for Vec<Ref<T>> {
    fn key_values(&self) -> Vec<u64> {
        self.iter().map(|r| r.oid().0).collect()
    }
}

/// An index of objects of type `T` by keys of type `K`.
///
/// ```
/// use pbpersist::index::Index;
/// # #[derive(Clone, PartialEq, pbpersist::Persistent)]
/// # #[pbpersist(message = "doc.City")]
/// # struct City { #[pbpersist(tag = 1, string)] name: String, #[pbpersist(meta)] meta: pbpersist::Meta }
/// static CITY_BY_NAME: Index<City, String> = Index::new("doc.City.name", |c: &City| vec![c.name.clone()]).unique();
/// pbpersist::register_index!(CITY_BY_NAME);
///
/// let db = pbpersist::Database::in_memory()?;
/// db.build_indexes()?;
/// let oslo = db.transact(|tx| tx.add(City { name: "Oslo".into(), ..Default::default() }))?;
/// db.transact(|tx| {
///     assert_eq!(CITY_BY_NAME.find(tx, &"Oslo".to_owned())?, Some(oslo));
///     assert_eq!(CITY_BY_NAME.range(tx, "A".."P", 10)?, [oslo]);
///     assert_eq!(CITY_BY_NAME.query().eq("Oslo").count(tx)?, 1);
///     // A second Oslo is refused at commit, and nothing is written.
///     tx.add(City { name: "Oslo".into(), ..Default::default() })?;
///     Ok(())
/// })
/// .unwrap_err();
/// # Ok::<(), pbpersist::Error>(())
/// ```
pub struct Index<T, K> {
    name: &'static str,
    keys: fn(&T) -> Vec<K>,
    unique: bool,
    _types: PhantomData<fn() -> (T, K)>,
}

impl<T, K> std::fmt::Debug for Index<T, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("name", &self.name).field("unique", &self.unique).finish_non_exhaustive()
    }
}

impl<T: Persistent, K: IndexKey> Index<T, K> {
    /// An index named `name` (unique in the database; the type and field,
    /// such as `demo.Tower.name`, is a good name), holding each object of
    /// type `T` under each key `keys` returns for it: none leaves the
    /// object out, several put it in several times (a repeated field).
    pub const fn new(name: &'static str, keys: fn(&T) -> Vec<K>) -> Self {
        Index { name, keys, unique: false, _types: PhantomData }
    }

    /// The same index, refusing a commit that would give two objects one key.
    pub const fn unique(mut self) -> Self {
        self.unique = true;
        self
    }

    /// The index's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether two objects may not share a key.
    pub fn is_unique(&self) -> bool {
        self.unique
    }

    /// A query of every entry, narrowed by its methods (`eq`, `range`,
    /// `starting_with`, `leading`, `descending`, `limit`, `after`, `and`)
    /// and run by `fetch`, `count` or `explain` with a transaction.
    pub fn query(&self) -> Query<'_, T, K> {
        Query {
            index: self,
            start: Bound::Unbounded,
            end: Bound::Unbounded,
            descending: false,
            limit: usize::MAX,
            after: None,
            also: Vec::new(),
        }
    }

    /// The objects whose keys include `key`, in oid order. `key` may be
    /// borrowed: a `&str` for a `String` index.
    pub fn get<Q>(&self, tx: &mut Transaction<'_>, key: &Q) -> Result<Vec<Ref<T>>>
    where
        Q: KeyEncoding + ?Sized,
        K: Borrow<Q>,
    {
        Ok(self.query().eq(key).fetch(tx)?.refs)
    }

    /// The one object with key `key` of a unique index (the first of a plain one).
    pub fn find<Q>(&self, tx: &mut Transaction<'_>, key: &Q) -> Result<Option<Ref<T>>>
    where
        Q: KeyEncoding + ?Sized,
        K: Borrow<Q>,
    {
        Ok(self.query().eq(key).limit(1).fetch(tx)?.refs.pop())
    }

    /// Up to `limit` objects with keys in `range` (such as `"a"..="c"` or
    /// `10..`), in key order, then oid order; an object appears once for
    /// each of its keys in the range.
    pub fn range<Q, R>(&self, tx: &mut Transaction<'_>, range: R, limit: usize) -> Result<Vec<Ref<T>>>
    where
        Q: KeyEncoding + ?Sized,
        K: RangeKey<Q>,
        R: RangeBounds<Q>,
    {
        Ok(self.query().range(range).limit(limit).fetch(tx)?.refs)
    }

    /// How many entries have keys in `range`, without loading the objects
    /// (entries of objects gc removed included).
    pub fn count<Q, R>(&self, tx: &mut Transaction<'_>, range: R) -> Result<u64>
    where
        Q: KeyEncoding + ?Sized,
        K: RangeKey<Q>,
        R: RangeBounds<Q>,
    {
        self.query().range(range).count(tx)
    }
}

fn encoded<Q: KeyEncoding + ?Sized>(key: &Q) -> Vec<u8> {
    let mut out = Vec::new();
    key.encode_key(&mut out);
    out
}

/// The first tree key at or after `bound`, of an index that is `unique` or not.
fn lower<Q: KeyEncoding + ?Sized>(unique: bool, bound: Bound<&Q>) -> Bound<Vec<u8>> {
    match bound {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(k) => Bound::Included(encoded(k)),
        Bound::Excluded(k) if unique => Bound::Excluded(encoded(k)),
        // Past every oid after the key.
        Bound::Excluded(k) => Bound::Excluded(past_oids(encoded(k))),
    }
}

/// The last tree key at or before `bound`.
fn upper<Q: KeyEncoding + ?Sized>(unique: bool, bound: Bound<&Q>) -> Bound<Vec<u8>> {
    match bound {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(k) if unique => Bound::Included(encoded(k)),
        Bound::Included(k) => Bound::Included(past_oids(encoded(k))),
        Bound::Excluded(k) => Bound::Excluded(encoded(k)),
    }
}

/// The least byte string greater than every string starting with `prefix`,
/// or `None` when there is none (all `ff`).
fn after_prefix(mut prefix: Vec<u8>) -> Option<Vec<u8>> {
    while let Some(last) = prefix.pop() {
        if last < 0xff {
            prefix.push(last + 1);
            return Some(prefix);
        }
    }
    None
}

/// Where a page of results ends, for the next page to start after:
/// [`Query::after`]. Opaque: an index's encoded key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor(Vec<u8>);

impl Cursor {
    /// The cursor as bytes, to hand to a client (it reveals the key).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A cursor from [`as_bytes`](Self::as_bytes).
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Cursor {
        Cursor(bytes.into())
    }
}

/// One page of a query's results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The objects, in the query's order.
    pub refs: Vec<Ref<T>>,
    /// Where to go on from, when the limit cut the results short.
    pub next: Option<Cursor>,
}

/// What a query read, from [`Query::explain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explain {
    /// The index whose entries give the order.
    pub index: &'static str,
    /// The other indexes whose entries narrow the results ([`Query::and`]).
    pub also: Vec<String>,
    /// Entries read, from every index.
    pub entries: u64,
    /// Objects checked for existence (entries of objects gc removed are passed over).
    pub checked: u64,
    /// Results.
    pub results: u64,
}

/// Another index's key range that results must also be in.
#[derive(Clone)]
struct Also<'i> {
    index: &'i dyn Maintained,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
}

/// A query of an [`Index`]: which keys, in which order, how many. A value:
/// build it once, run it in any transaction.
pub struct Query<'i, T, K> {
    index: &'i Index<T, K>,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    descending: bool,
    limit: usize,
    after: Option<Cursor>,
    also: Vec<Also<'i>>,
}

impl<T, K> Clone for Query<'_, T, K> {
    fn clone(&self) -> Self {
        Query {
            index: self.index,
            start: self.start.clone(),
            end: self.end.clone(),
            descending: self.descending,
            limit: self.limit,
            after: self.after.clone(),
            also: self.also.clone(),
        }
    }
}

impl<T, K> std::fmt::Debug for Query<'_, T, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Query")
            .field("index", &self.index.name)
            .field("descending", &self.descending)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<'i, T: Persistent, K: IndexKey> Query<'i, T, K> {
    /// Only entries with key `key`.
    pub fn eq<Q>(mut self, key: &Q) -> Self
    where
        Q: KeyEncoding + ?Sized,
        K: Borrow<Q>,
    {
        let unique = self.index.unique;
        self.start = lower(unique, Bound::Included(key));
        self.end = upper(unique, Bound::Included(key));
        self
    }

    /// Only entries with keys in `range`.
    pub fn range<Q, R>(mut self, range: R) -> Self
    where
        Q: KeyEncoding + ?Sized,
        K: RangeKey<Q>,
        R: RangeBounds<Q>,
    {
        let unique = self.index.unique;
        self.start = lower(unique, range.start_bound());
        self.end = upper(unique, range.end_bound());
        self
    }

    /// Only entries whose string or bytes key starts with `prefix` (of a
    /// `String` or `Vec<u8>` index).
    pub fn starting_with(mut self, prefix: impl AsRef<[u8]>) -> Self {
        let mut bytes = Vec::new();
        encode_bytes(prefix.as_ref(), &mut bytes);
        // Without the terminator: a prefix of every longer value's encoding.
        bytes.truncate(bytes.len() - 2);
        self.end = after_prefix(bytes.clone()).map_or(Bound::Unbounded, Bound::Excluded);
        self.start = Bound::Included(bytes);
        self
    }

    /// Only entries whose key starts with the value `first`: of an index
    /// with a tuple key, those whose first element is `first` (or whose
    /// first elements are, for a tuple `first`).
    pub fn leading<Q: KeyEncoding + ?Sized>(mut self, first: &Q) -> Self {
        let bytes = encoded(first);
        self.end = after_prefix(bytes.clone()).map_or(Bound::Unbounded, Bound::Excluded);
        self.start = Bound::Included(bytes);
        self
    }

    /// Greatest key first (then greatest oid first).
    pub fn descending(mut self) -> Self {
        self.descending = true;
        self
    }

    /// At most `n` results per [`fetch`](Self::fetch); the page's `next`
    /// cursor goes on from there.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n;
        self
    }

    /// Go on after the page that returned `cursor`.
    pub fn after(mut self, cursor: &Cursor) -> Self {
        self.after = Some(cursor.clone());
        self
    }

    /// Only objects that another query of an index of the same type also
    /// finds (its order, limit and cursor are not used).
    pub fn and<K2: IndexKey>(mut self, other: &Query<'i, T, K2>) -> Self {
        self.also.push(Also { index: other.index, start: other.start.clone(), end: other.end.clone() });
        self
    }

    /// The tree key range left to read.
    fn bounds(&self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        let (mut start, mut end) = (self.start.clone(), self.end.clone());
        if let Some(Cursor(c)) = &self.after {
            if self.descending {
                end = Bound::Excluded(c.clone());
            } else {
                start = Bound::Excluded(c.clone());
            }
        }
        (start, end)
    }

    /// Runs the query: up to the limit of objects, in the query's order,
    /// passing over entries whose object gc removed.
    pub fn fetch(&self, tx: &mut Transaction<'_>) -> Result<Page<T>> {
        let mut explain = self.explain_empty();
        self.run(tx, &mut explain)
    }

    /// Runs the query and says what it read.
    pub fn explain(&self, tx: &mut Transaction<'_>) -> Result<Explain> {
        let mut explain = self.explain_empty();
        let page = self.run(tx, &mut explain)?;
        explain.results = page.refs.len() as u64;
        Ok(explain)
    }

    fn explain_empty(&self) -> Explain {
        Explain {
            index: self.index.name,
            also: self.also.iter().map(|a| a.index.name().to_owned()).collect(),
            entries: 0,
            checked: 0,
            results: 0,
        }
    }

    /// How many entries the query's key range holds, without loading any
    /// object (entries of objects gc removed included; `and`, `limit` and
    /// the cursor are not used).
    pub fn count(&self, tx: &mut Transaction<'_>) -> Result<u64> {
        let tree = tree(tx, self.index)?;
        tree.range(tx, (self.start.clone(), self.end.clone())).count_entries()
    }

    fn run(&self, tx: &mut Transaction<'_>, explain: &mut Explain) -> Result<Page<T>> {
        let tree = tree(tx, self.index)?;
        // The other indexes' oids first: their key ranges are read whole.
        let mut allowed: Option<std::collections::HashSet<u64>> = None;
        for also in &self.also {
            let other = self::tree(tx, also.index)?;
            let mut oids = std::collections::HashSet::new();
            for entry in other.range(tx, (also.start.clone(), also.end.clone())) {
                oids.insert(entry?.1);
                explain.entries += 1;
            }
            allowed = Some(match allowed {
                None => oids,
                Some(before) => before.intersection(&oids).copied().collect(),
            });
        }
        let (mut start, mut end) = self.bounds();
        let mut refs = Vec::new();
        let mut last_key = None;
        // Entries are read in batches, then their objects checked; the next
        // batch starts after the last entry read.
        'batches: while refs.len() < self.limit {
            let want = (self.limit - refs.len()).min(1024);
            let batch: Vec<(Vec<u8>, u64)> = if self.descending {
                tree.range_rev(tx, (start.clone(), end.clone())).take(want).collect::<Result<_>>()?
            } else {
                tree.range(tx, (start.clone(), end.clone())).take(want).collect::<Result<_>>()?
            };
            explain.entries += batch.len() as u64;
            let complete = batch.len() < want;
            // The batch's objects in one storage call, not a round trip each.
            let wanted = batch.iter().map(|(_, oid)| *oid).filter(|o| allowed.as_ref().is_none_or(|a| a.contains(o)));
            tx.prefetch(wanted.map(Oid))?;
            for (key, oid) in batch {
                if self.descending {
                    end = Bound::Excluded(key.clone());
                } else {
                    start = Bound::Excluded(key.clone());
                }
                if allowed.as_ref().is_some_and(|a| !a.contains(&oid)) {
                    continue;
                }
                explain.checked += 1;
                if tx.exists(Oid(oid))? {
                    refs.push(Ref::new(Oid(oid)));
                    last_key = Some(key);
                    if refs.len() == self.limit {
                        break 'batches;
                    }
                }
            }
            if complete {
                break;
            }
        }
        let next = (refs.len() == self.limit).then(|| last_key.map(Cursor)).flatten();
        Ok(Page { refs, next })
    }
}

/// `key` followed by more than any oid.
fn past_oids(mut key: Vec<u8>) -> Vec<u8> {
    key.extend_from_slice(&[0xff; 9]);
    key
}

/// An index's entries: encoded key (then the oid, unless unique) to oid.
type Entries = PTreeMap<Vec<u8>, u64>;

/// An index as stored (`pbpersist.IndexHead` in `proto/pbpersist/tree.proto`):
/// its entries, and how far the build of older objects has come.
#[derive(Clone, PartialEq, crate::Persistent)]
#[pbpersist(message = "pbpersist.IndexHead")]
pub(crate) struct IndexHead {
    #[pbpersist(tag = 1, optional, reference)]
    entries: Option<Ref<Entries>>,
    #[pbpersist(tag = 2, uint64)]
    build_end: u64,
    #[pbpersist(tag = 3, uint64)]
    built_to: u64,
    #[pbpersist(tag = 4, string)]
    pub(crate) key_kind: String,
    #[pbpersist(tag = 5, bool)]
    unique: bool,
    #[pbpersist(meta)]
    meta: crate::Meta,
}

pub(crate) fn root_name(name: &str) -> String {
    format!("{ROOT_PREFIX}{name}")
}

/// The head named for `index`, if it was created with the index's key
/// type and uniqueness: entries of another shape are never read.
fn head(tx: &mut Transaction<'_>, index: &dyn Maintained) -> Result<Option<Ref<IndexHead>>> {
    let Some(h) = tx.root()?.get::<IndexHead>(&root_name(index.name())) else { return Ok(None) };
    let state = tx.get_ref(h)?;
    Ok((state.key_kind == index.key_kind() && state.unique == index.unique()).then_some(h))
}

/// The head of `index`, created if missing or of another shape (which it
/// replaces): an empty tree, and a build to run over every object older
/// than the database's next oid.
fn head_or_create(tx: &mut Transaction<'_>, index: &dyn Maintained) -> Result<Ref<IndexHead>> {
    if let Some(h) = head(tx, index)? {
        return Ok(h);
    }
    let entries = Entries::create(tx)?;
    let build_end = tx.next_oid()?.0;
    let h = tx.add(IndexHead {
        entries: Some(entries),
        build_end,
        built_to: 0,
        key_kind: index.key_kind(),
        unique: index.unique(),
        meta: Default::default(),
    })?;
    tx.root_mut()?.insert(root_name(index.name()), h);
    Ok(h)
}

fn entries_of(tx: &mut Transaction<'_>, head: Ref<IndexHead>) -> Result<Ref<Entries>> {
    tx.get_ref(head)?
        .entries
        .ok_or_else(|| Error::BrokenTree { oid: head.oid(), reason: "an index head without entries".into() })
}

/// The entries of a built index, for a query.
fn tree(tx: &mut Transaction<'_>, index: &dyn Maintained) -> Result<Ref<Entries>> {
    let name = index.name().to_owned();
    let Some(h) = head(tx, index)? else {
        return Err(Error::IndexNotReady { index: name, built_to: 0, build_end: None });
    };
    let state = tx.get_ref(h)?;
    if state.built_to < state.build_end {
        let (built_to, build_end) = (state.built_to, Some(state.build_end));
        return Err(Error::IndexNotReady { index: name, built_to, build_end });
    }
    entries_of(tx, h)
}

/// What a transaction needs of an index whatever its types: registered
/// with [`register_index!`], found by the stored type name.
#[doc(hidden)]
pub trait Maintained: Sync {
    /// The index's name.
    fn name(&self) -> &str;
    /// The stored type name of what it indexes.
    fn type_name(&self) -> &str;
    /// Whether two objects may not share a key.
    fn unique(&self) -> bool;
    /// The key type's name (`KeyEncoding::kind`).
    fn key_kind(&self) -> String;
    /// The encoded keys of `object`, sorted, without duplicates.
    fn keys_of(&self, object: &dyn Any) -> Vec<Vec<u8>>;
    /// The key of `object` encoded as `encoded`, as `Debug` shows it.
    fn show_key(&self, object: &dyn Any, encoded: &[u8]) -> String;
    /// The encoded keys of the stored object `oid`, of the index's type,
    /// sorted, without duplicates.
    fn keys_at(&self, tx: &mut Transaction<'_>, oid: Oid) -> Result<Vec<Vec<u8>>> {
        let object = tx.get_object(oid)?;
        Ok(self.keys_of(object.as_any()))
    }
    /// The key encoded as `encoded` of the stored object `oid`, shown for an error.
    fn show_at(&self, tx: &mut Transaction<'_>, oid: Oid, encoded: &[u8]) -> String {
        match tx.get_object(oid) {
            Ok(object) => self.show_key(object.as_any(), encoded),
            Err(_) => String::new(),
        }
    }
}

impl<T: Persistent, K: IndexKey> Maintained for Index<T, K> {
    fn name(&self) -> &str {
        self.name
    }

    fn type_name(&self) -> &str {
        T::TYPE_NAME
    }

    fn unique(&self) -> bool {
        self.unique
    }

    fn key_kind(&self) -> String {
        K::kind()
    }

    fn keys_of(&self, object: &dyn Any) -> Vec<Vec<u8>> {
        let Some(object) = object.downcast_ref::<T>() else { return Vec::new() };
        let mut keys: Vec<Vec<u8>> = (self.keys)(object).iter().map(|k| encoded(k)).collect();
        keys.sort();
        keys.dedup();
        keys
    }

    fn show_key(&self, object: &dyn Any, key: &[u8]) -> String {
        let Some(object) = object.downcast_ref::<T>() else { return String::new() };
        let key = (self.keys)(object).into_iter().find(|k| encoded(k) == key);
        key.map(|k| format!("{k:?}")).unwrap_or_default()
    }
}

/// An index registered for the whole program.
#[doc(hidden)]
pub struct Registered(pub &'static dyn Maintained);

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Registered").field(&self.0.name()).finish()
    }
}

inventory::collect!(Registered);

/// Registers an [`Index`] `static` for the whole program: every transaction
/// that writes an object of its type keeps it current.
#[macro_export]
macro_rules! register_index {
    ($index:path) => {
        $crate::__private::inventory::submit! {
            $crate::index::Registered(&$index)
        }
    };
}

/// The registered indexes of the type named `type_name`.
fn indexes_of(type_name: &str) -> Vec<&'static dyn Maintained> {
    inventory::iter::<Registered>.into_iter().map(|r| r.0).filter(|i| i.type_name() == type_name).collect()
}

/// Whether any index is registered, so commits in programs without one
/// pass types over at once.
fn any_registered() -> bool {
    static ANY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ANY.get_or_init(|| inventory::iter::<Registered>.into_iter().next().is_some())
}

/// Keeps every registered index current in the commit of each object of
/// its type.
struct Maintenance;

inventory::submit! { CommitHooks(&Maintenance) }

impl CommitHook for Maintenance {
    fn watches(&self, type_name: &str) -> bool {
        any_registered() && inventory::iter::<Registered>.into_iter().any(|r| r.0.type_name() == type_name)
    }

    fn written(&self, tx: &mut Transaction<'_>, oid: Oid, before: Option<&dyn Object>, now: &dyn Object) -> Result<()> {
        for index in indexes_of(now.type_name()) {
            let old_keys = before.map(|b| index.keys_of(b.as_any())).unwrap_or_default();
            let new_keys = index.keys_of(now.as_any());
            if old_keys != new_keys {
                update(tx, index, oid, &old_keys, &new_keys, now)?;
            }
        }
        Ok(())
    }
}

/// Moves `oid`'s entries in `index` from `old_keys` to `new_keys`. A unique
/// index's key that another live object holds fails with [`Error::Unique`].
fn update(
    tx: &mut Transaction<'_>,
    index: &dyn Maintained,
    oid: Oid,
    old_keys: &[Vec<u8>],
    new_keys: &[Vec<u8>],
    now: &dyn Object,
) -> Result<()> {
    let head = head_or_create(tx, index)?;
    let tree = entries_of(tx, head)?;
    let entry = |key: &[u8]| {
        let mut k = key.to_vec();
        if !index.unique() {
            k.extend_from_slice(&oid.0.to_be_bytes());
        }
        k
    };
    for key in old_keys.iter().filter(|k| !new_keys.contains(k)) {
        tree.remove(tx, &entry(key))?;
    }
    for key in new_keys.iter().filter(|k| !old_keys.contains(k)) {
        if let Some(existing) = insert(tx, tree, index, oid, key)? {
            let key = index.show_key(now.as_any(), key);
            return Err(Error::Unique { index: index.name().to_owned(), key, oid, existing });
        }
    }
    Ok(())
}

/// Adds `oid`'s entry for `key`, unless `key` is of a unique index and
/// another live object holds it: that object, for an [`Error::Unique`].
fn insert(
    tx: &mut Transaction<'_>,
    tree: Ref<Entries>,
    index: &dyn Maintained,
    oid: Oid,
    key: &[u8],
) -> Result<Option<Oid>> {
    let mut k = key.to_vec();
    if !index.unique() {
        k.extend_from_slice(&oid.0.to_be_bytes());
    }
    if index.unique()
        && let Some(other) = tree.get(tx, &k)?
        && other != oid.0
        && tx.exists(Oid(other))?
    {
        return Ok(Some(Oid(other)));
    }
    tree.insert(tx, k, oid.0)?;
    Ok(None)
}

/// What building an index did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The index's name.
    pub index: String,
    /// Objects read by the build (0 when the index was built already).
    pub scanned: u64,
    /// Of those, objects of the index's type, each given its entries.
    pub indexed: u64,
}

/// What [`Database::check_indexes`](crate::Database::check_indexes) found in one index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexCheck {
    /// The index's name.
    pub index: String,
    /// Whether it is built (an unbuilt index is not checked).
    pub built: bool,
    /// Its entries.
    pub entries: u64,
    /// Keys of objects that have no entry.
    pub missing: u64,
    /// Entries of live objects that no longer have that key.
    pub stale: u64,
    /// Entries of objects that do not exist (gc removed them).
    pub dangling: u64,
}

impl IndexCheck {
    /// Whether the index is built and agrees with the objects, dangling
    /// entries aside (lookups pass over them).
    pub fn is_sound(&self) -> bool {
        self.built && self.missing == 0 && self.stale == 0
    }
}

/// An index as a database holds it, from [`Database::indexes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexState {
    /// The index's name.
    pub name: String,
    /// Its key type (`string`, `(string,int64)`, `()`).
    pub key_kind: String,
    /// Whether it is unique.
    pub unique: bool,
    /// Its entries.
    pub entries: u64,
    /// Every object below this oid is indexed.
    pub built_to: u64,
    /// The build ends at this oid: the index is built when `built_to` reaches it.
    pub build_end: u64,
}

impl IndexState {
    /// Whether queries may read it.
    pub fn is_built(&self) -> bool {
        self.built_to >= self.build_end
    }
}

impl crate::Database {
    /// The indexes the database holds, by name, whether or not this program
    /// declares them.
    pub fn indexes(&self) -> Result<Vec<IndexState>> {
        self.transact(|tx| {
            let root = tx.root()?;
            let names: Vec<(String, Ref<IndexHead>)> = root
                .names()
                .filter_map(|full| Some((full.strip_prefix(ROOT_PREFIX)?.to_owned(), root.get::<IndexHead>(full)?)))
                .collect();
            let mut out = Vec::new();
            for (name, head) in names {
                let state = tx.get_ref(head)?.clone();
                let entries = match state.entries {
                    Some(e) => e.len(tx)?,
                    None => 0,
                };
                out.push(IndexState {
                    name,
                    key_kind: state.key_kind,
                    unique: state.unique,
                    entries,
                    built_to: state.built_to,
                    build_end: state.build_end,
                });
            }
            Ok(out)
        })
    }
}

/// Entries a pass over an index reads per transaction when it removes
/// those of collected objects.
const PRUNE_BATCH: usize = 10_000;

impl crate::Database {
    /// Removes the entries of `removed`, objects gc removed, from every
    /// index the database holds, reading each index in batches of
    /// transactions. How many entries it removed.
    pub(crate) fn prune_indexes(&self, removed: &[Oid]) -> Result<u64> {
        if removed.is_empty() {
            return Ok(0);
        }
        let removed: std::collections::HashSet<u64> = removed.iter().map(|o| o.0).collect();
        let mut pruned = 0;
        for index in self.indexes()? {
            let mut after: Option<Vec<u8>> = None;
            loop {
                let (gone, next) = self.transact(|tx| {
                    let Some(head) = tx.root()?.get::<IndexHead>(&root_name(&index.name)) else {
                        return Ok((0, None));
                    };
                    let tree = entries_of(tx, head)?;
                    let start = after.clone().map_or(Bound::Unbounded, Bound::Excluded);
                    let batch: Vec<(Vec<u8>, u64)> =
                        tree.range(tx, (start, Bound::Unbounded)).take(PRUNE_BATCH).collect::<Result<_>>()?;
                    let next = (batch.len() == PRUNE_BATCH).then(|| batch.last().map(|(k, _)| k.clone())).flatten();
                    let mut gone = 0;
                    for (key, oid) in &batch {
                        if removed.contains(oid) {
                            tree.remove(tx, key)?;
                            gone += 1;
                        }
                    }
                    Ok((gone, next))
                })?;
                pruned += gone;
                match next {
                    Some(k) => after = Some(k),
                    None => break,
                }
            }
        }
        Ok(pruned)
    }
}

/// Objects a build reads per transaction.
const BUILD_BATCH: usize = 1000;

impl crate::Database {
    /// Builds every registered index that is not built yet: creates it if
    /// missing, then gives each object older than the index its entries,
    /// a thousand objects per transaction while other transactions go on.
    /// A build stopped midway (a killed process) goes on from where it
    /// was. A built index costs one read. Call once at startup, before
    /// queries: until then they fail with [`Error::IndexNotReady`].
    ///
    /// Objects changed during the build are indexed by their own commits;
    /// a batch that read an object changed meanwhile conflicts and is
    /// retried. A unique index whose older objects share a key fails with
    /// [`Error::Unique`] and stays unbuilt.
    pub fn build_indexes(&self) -> Result<Vec<Built>> {
        let mut built = Vec::new();
        for r in inventory::iter::<Registered> {
            built.push(self.build_index(r.0)?);
        }
        Ok(built)
    }

    /// Removes the index `name` from the database: its entries become
    /// garbage for the next gc. An index still registered is created again
    /// by the next commit of its type, unbuilt. Whether it existed.
    pub fn drop_index(&self, name: &str) -> Result<bool> {
        self.transact(|tx| {
            if tx.root()?.get::<IndexHead>(&root_name(name)).is_none() {
                return Ok(false);
            }
            Ok(tx.root_mut()?.remove(&root_name(name)).is_some())
        })
    }

    /// Checks every registered, built index against the objects of its
    /// type, reading the whole database in one snapshot: entries missing for
    /// an object's keys, entries an object no longer has (stale), and
    /// entries whose object does not exist (dangling, after gc). An unbuilt
    /// index is reported as such and not checked.
    pub fn check_indexes(&self) -> Result<Vec<IndexCheck>> {
        let indexes: Vec<&dyn Maintained> = inventory::iter::<Registered>.into_iter().map(|r| r.0 as _).collect();
        self.check_these(&indexes)
    }

    /// [`check_indexes`](Self::check_indexes) of `indexes`, in one scan.
    pub(crate) fn check_these(&self, indexes: &[&dyn Maintained]) -> Result<Vec<IndexCheck>> {
        self.transact(|tx| {
            let mut out = Vec::new();
            let mut wanted: Vec<std::collections::BTreeMap<Vec<u8>, u64>> = vec![Default::default(); indexes.len()];
            let mut after = None;
            loop {
                let batch = tx.scan_types(after, BUILD_BATCH)?;
                let Some((last, _)) = batch.last() else { break };
                after = Some(*last);
                for (oid, type_name) in &batch {
                    for (i, index) in indexes.iter().enumerate().filter(|(_, x)| x.type_name() == type_name) {
                        for key in index.keys_at(tx, *oid)? {
                            let mut k = key;
                            if !index.unique() {
                                k.extend_from_slice(&oid.0.to_be_bytes());
                            }
                            wanted[i].insert(k, oid.0);
                        }
                    }
                }
            }
            for (index, wanted) in indexes.iter().zip(wanted) {
                let mut check = IndexCheck {
                    index: index.name().to_owned(),
                    built: false,
                    entries: 0,
                    missing: 0,
                    stale: 0,
                    dangling: 0,
                };
                let tree = match tree(tx, *index) {
                    Ok(t) => t,
                    Err(Error::IndexNotReady { .. }) => {
                        out.push(check);
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                check.built = true;
                let stored: Vec<(Vec<u8>, u64)> = tree.iter(tx).collect::<Result<_>>()?;
                check.entries = stored.len() as u64;
                for (key, oid) in &stored {
                    if wanted.get(key) == Some(oid) {
                        continue;
                    }
                    if tx.exists(Oid(*oid))? {
                        check.stale += 1;
                    } else {
                        check.dangling += 1;
                    }
                }
                let have: std::collections::HashSet<&Vec<u8>> = stored.iter().map(|(k, _)| k).collect();
                check.missing = wanted.keys().filter(|k| !have.contains(k)).count() as u64;
                out.push(check);
            }
            Ok(out)
        })
    }

    /// Builds `index` to the end (see [`build_indexes`](Self::build_indexes)).
    pub(crate) fn build_index(&self, index: &dyn Maintained) -> Result<Built> {
        let mut report = Built { index: index.name().to_owned(), scanned: 0, indexed: 0 };
        loop {
            let step = self.transact(|tx| {
                let head = head_or_create(tx, index)?;
                let (built_to, build_end) = {
                    let state = tx.get_ref(head)?;
                    (state.built_to, state.build_end)
                };
                if built_to >= build_end {
                    return Ok(None);
                }
                let tree = entries_of(tx, head)?;
                let objects = tx.scan_types(built_to.checked_sub(1).map(Oid), BUILD_BATCH)?;
                let mut next = build_end;
                if objects.len() == BUILD_BATCH
                    && let Some((last, _)) = objects.last()
                {
                    next = next.min(last.0 + 1);
                }
                let mut indexed = 0;
                for (oid, type_name) in objects.iter().filter(|(oid, _)| oid.0 < next) {
                    if type_name != index.type_name() {
                        continue;
                    }
                    // A change committed after this read makes the batch conflict.
                    tx.read_current_oid(*oid);
                    for key in index.keys_at(tx, *oid)? {
                        if let Some(existing) = insert(tx, tree, index, *oid, &key)? {
                            let key = index.show_at(tx, *oid, &key);
                            return Err(Error::Unique { index: index.name().to_owned(), key, oid: *oid, existing });
                        }
                    }
                    indexed += 1;
                }
                tx.get_mut(head)?.built_to = next;
                Ok(Some((objects.len() as u64, indexed)))
            })?;
            let Some((scanned, indexed)) = step else { return Ok(report) };
            report.scanned += scanned;
            report.indexed += indexed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::KeyEncoding;

    fn enc<K: KeyEncoding>(k: K) -> Vec<u8> {
        let mut out = Vec::new();
        k.encode_key(&mut out);
        out
    }

    #[test]
    fn encodings_keep_the_order_of_the_values() {
        let ints = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        assert!(ints.windows(2).all(|w| enc(w[0]) < enc(w[1])));
        let strings = ["", "\0", "\0\0", "a", "a\0", "a\0b", "ab", "b"];
        assert!(strings.windows(2).all(|w| enc(w[0].to_owned()) < enc(w[1].to_owned())), "{strings:?}");
        // With an oid after it, a key still sorts before every longer key.
        let mut a = enc("a".to_owned());
        a.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(a < enc("a\0".to_owned()));
        assert!(enc(("a".to_owned(), 9u64)) < enc(("ab".to_owned(), 0u64)));
    }
}
