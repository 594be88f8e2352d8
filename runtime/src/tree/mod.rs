//! Scalable sorted collections: [`PTreeMap`] and [`PTreeSet`], B+ trees whose
//! buckets and nodes are persistent objects.
//!
//! A lookup loads the few objects on one path from the head to a bucket; an
//! insert rewrites one bucket (and, when it splits, its parent); concurrent
//! changes of different keys in one bucket merge at commit, and the entry
//! count lives in a counter of its own whose changes add up, so inserts never
//! conflict over it. The stored layout is `proto/pbpersist/tree.proto`,
//! described in docs/format.md; the merge rules are in docs/transactions.md.
//!
//! ```
//! use pbpersist::{Database, PTreeMap, Ref};
//!
//! # fn main() -> pbpersist::Result<()> {
//! let db = Database::in_memory()?;
//! db.transact(|tx| {
//!     let ages = PTreeMap::<String, i64>::create(tx)?;
//!     ages.insert(tx, "ada".into(), 36)?;
//!     ages.insert(tx, "alan".into(), 41)?;
//!     tx.root_mut()?.insert("ages", ages);
//!     Ok(())
//! })?;
//! db.transact(|tx| {
//!     let ages: Ref<PTreeMap<String, i64>> = tx.root()?.require("ages")?;
//!     assert_eq!(ages.get(tx, "alan")?, Some(41));
//!     assert_eq!(ages.len(tx)?, 2);
//!     let names: Vec<String> = ages.keys(tx, ..).collect::<Result<_, _>>()?;
//!     assert_eq!(names, ["ada", "alan"]);
//!     Ok(())
//! })?;
//! # Ok(())
//! # }
//! ```

mod check;
mod kinds;
mod node;
mod ops;

pub use check::{TreeCheck, TreePeek, check_tree, peek_tree};
pub use kinds::{Embedded, TreeKey, TreeValue};
pub use node::{Bounds, TreeBucket, TreeHead, TreeKeys, TreeLength, TreeNode, TreeValues};
pub use ops::{Range, RangeRev};

use crate::{Ref, Result, Transaction};
use ops::Tree;
use std::borrow::Borrow;
use std::marker::PhantomData;
use std::ops::RangeBounds;

/// A sorted map kept as a tree of persistent buckets, for collections too
/// large for one object. Only ever seen as `Ref<PTreeMap<K, V>>`: the
/// reference to the tree's head, stored in fields and the root like any
/// other, with the map's methods.
#[derive(Debug)]
pub struct PTreeMap<K, V>(PhantomData<fn() -> (K, V)>);

/// A sorted set kept as a tree of persistent buckets; seen as
/// `Ref<PTreeSet<K>>`, like [`PTreeMap`].
#[derive(Debug)]
pub struct PTreeSet<K>(PhantomData<fn() -> K>);

impl<K: 'static, V: 'static> crate::persistent::RefTarget for PTreeMap<K, V> {
    const TARGET_NAME: &'static str = "pbpersist.Tree";
}

impl<K: 'static> crate::persistent::RefTarget for PTreeSet<K> {
    const TARGET_NAME: &'static str = "pbpersist.Tree";
}

impl<K: TreeKey, V: TreeValue> PTreeMap<K, V> {
    /// Adds an empty map to the transaction, with the default [`Bounds`].
    pub fn create(tx: &mut Transaction<'_>) -> Result<Ref<PTreeMap<K, V>>> {
        Self::create_with(tx, Bounds::DEFAULT)
    }

    /// Adds an empty map whose buckets and nodes split beyond `bounds`.
    pub fn create_with(tx: &mut Transaction<'_>, bounds: Bounds) -> Result<Ref<PTreeMap<K, V>>> {
        Ok(Tree::<K, V>::create(tx, bounds)?.cast())
    }
}

impl<K: TreeKey> PTreeSet<K> {
    /// Adds an empty set to the transaction, with the default [`Bounds`].
    pub fn create(tx: &mut Transaction<'_>) -> Result<Ref<PTreeSet<K>>> {
        Self::create_with(tx, Bounds::DEFAULT)
    }

    /// Adds an empty set whose buckets and nodes split beyond `bounds`.
    pub fn create_with(tx: &mut Transaction<'_>, bounds: Bounds) -> Result<Ref<PTreeSet<K>>> {
        Ok(Tree::<K, ()>::create(tx, bounds)?.cast())
    }
}

impl<K: TreeKey, V: TreeValue> Ref<PTreeMap<K, V>> {
    fn tree(self) -> Tree<K, V> {
        Tree::new(self.cast())
    }

    /// The value of `key`.
    pub fn get<Q: Ord + ?Sized>(self, tx: &mut Transaction<'_>, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
    {
        self.tree().get(tx, key)
    }

    /// Whether `key` has a value.
    pub fn contains_key<Q: Ord + ?Sized>(self, tx: &mut Transaction<'_>, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
    {
        self.tree().contains(tx, key)
    }

    /// Sets the value of `key`, returning the one it replaces.
    pub fn insert(self, tx: &mut Transaction<'_>, key: K, value: V) -> Result<Option<V>> {
        self.tree().insert(tx, key, value)
    }

    /// Removes `key`, returning its value.
    pub fn remove<Q: Ord + ?Sized>(self, tx: &mut Transaction<'_>, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
    {
        self.tree().remove(tx, key)
    }

    /// The number of entries, from the tree's counter (no walk).
    pub fn len(self, tx: &mut Transaction<'_>) -> Result<u64> {
        self.tree().len(tx)
    }

    /// Whether the map has no entries.
    pub fn is_empty(self, tx: &mut Transaction<'_>) -> Result<bool> {
        Ok(self.len(tx)? == 0)
    }

    /// The entries whose keys are in `range`, in key order, loading buckets
    /// as it goes.
    pub fn range<'a, 'c>(self, tx: &'a mut Transaction<'c>, range: impl RangeBounds<K>) -> Range<'a, 'c, K, V> {
        Range::new(self.tree(), tx, range)
    }

    /// Every entry in key order.
    pub fn iter<'a, 'c>(self, tx: &'a mut Transaction<'c>) -> Range<'a, 'c, K, V> {
        self.range(tx, ..)
    }

    /// The entries whose keys are in `range`, greatest key first.
    pub fn range_rev<'a, 'c>(self, tx: &'a mut Transaction<'c>, range: impl RangeBounds<K>) -> RangeRev<'a, 'c, K, V> {
        RangeRev::new(self.tree(), tx, range)
    }

    /// The keys in `range`, in order.
    pub fn keys<'a>(
        self,
        tx: &'a mut Transaction<'_>,
        range: impl RangeBounds<K>,
    ) -> impl Iterator<Item = Result<K>> + 'a {
        self.range(tx, range).map(|e| e.map(|(k, _)| k))
    }

    /// The entry with the least key.
    pub fn first(self, tx: &mut Transaction<'_>) -> Result<Option<(K, V)>> {
        self.iter(tx).next().transpose()
    }

    /// The entry with the greatest key.
    pub fn last(self, tx: &mut Transaction<'_>) -> Result<Option<(K, V)>> {
        self.tree().last(tx)
    }
}

impl<K: TreeKey> Ref<PTreeSet<K>> {
    fn tree(self) -> Tree<K, ()> {
        Tree::new(self.cast())
    }

    /// Adds `key`; `false` if it was there already (nothing is written then).
    pub fn insert(self, tx: &mut Transaction<'_>, key: K) -> Result<bool> {
        Ok(self.tree().insert(tx, key, ())?.is_none())
    }

    /// Removes `key`; `false` if it was not there.
    pub fn remove<Q: Ord + ?Sized>(self, tx: &mut Transaction<'_>, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
    {
        Ok(self.tree().remove(tx, key)?.is_some())
    }

    /// Whether `key` is in the set.
    pub fn contains<Q: Ord + ?Sized>(self, tx: &mut Transaction<'_>, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
    {
        self.tree().contains(tx, key)
    }

    /// The number of keys, from the tree's counter (no walk).
    pub fn len(self, tx: &mut Transaction<'_>) -> Result<u64> {
        self.tree().len(tx)
    }

    /// Whether the set is empty.
    pub fn is_empty(self, tx: &mut Transaction<'_>) -> Result<bool> {
        Ok(self.len(tx)? == 0)
    }

    /// The keys in `range`, in order.
    pub fn range<'a>(
        self,
        tx: &'a mut Transaction<'_>,
        range: impl RangeBounds<K>,
    ) -> impl Iterator<Item = Result<K>> + 'a {
        Range::new(self.tree(), tx, range).map(|e| e.map(|(k, ())| k))
    }

    /// Every key in order.
    pub fn iter<'a>(self, tx: &'a mut Transaction<'_>) -> impl Iterator<Item = Result<K>> + 'a {
        self.range(tx, ..)
    }

    /// The least key.
    pub fn first(self, tx: &mut Transaction<'_>) -> Result<Option<K>> {
        self.iter(tx).next().transpose()
    }

    /// The greatest key.
    pub fn last(self, tx: &mut Transaction<'_>) -> Result<Option<K>> {
        Ok(self.tree().last(tx)?.map(|(k, ())| k))
    }
}
