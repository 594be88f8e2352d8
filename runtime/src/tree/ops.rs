//! Lookups, inserts, removals and ordered walks over the stored shape.

use super::kinds::{TreeKey, TreeValue};
use super::node::{Bounds, TreeBucket, TreeHead, TreeLength, TreeNode};
use crate::{AnyObject, Error, Oid, Ref, Result, Transaction};
use std::borrow::Borrow;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

/// A tree seen with its key and value types.
pub(super) struct Tree<K, V> {
    head: Ref<TreeHead>,
    types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for Tree<K, V> {
    fn clone(&self) -> Self {
        Tree { head: self.head, types: PhantomData }
    }
}

/// What every operation reads from the head, copied out of it.
#[derive(Clone, Copy)]
struct Top {
    root: Ref<AnyObject>,
    depth: u32,
    length: Ref<TreeLength>,
    bounds: Bounds,
}

/// The nodes passed on the way down, with the child index taken in each.
type Path = Vec<(Ref<TreeNode>, usize)>;

fn broken(oid: Oid, reason: &str) -> Error {
    Error::BrokenTree { oid, reason: reason.to_owned() }
}

/// Where `key` is, or would go, among sorted `keys`.
fn search<K: Borrow<Q>, Q: Ord + ?Sized>(keys: &[K], key: &Q) -> std::result::Result<usize, usize> {
    keys.binary_search_by(|k| k.borrow().cmp(key))
}

/// The child of a node whose range holds `key`.
fn child_index<K: Borrow<Q>, Q: Ord + ?Sized>(keys: &[K], key: &Q) -> usize {
    match search(keys, key) {
        Ok(i) => i + 1,
        Err(i) => i,
    }
}

impl<K: TreeKey, V: TreeValue> Tree<K, V> {
    pub(super) fn new(head: Ref<TreeHead>) -> Self {
        Tree { head, types: PhantomData }
    }

    pub(super) fn create(tx: &mut Transaction<'_>, bounds: Bounds) -> Result<Ref<TreeHead>> {
        let bounds =
            Bounds { bucket: bounds.bucket.clamp(4, u32::MAX as usize), node: bounds.node.clamp(4, u32::MAX as usize) };
        let root = tx.add(TreeBucket::default())?;
        let length = tx.add(TreeLength::default())?;
        tx.add(TreeHead::create(root.erase(), length, (K::KIND, &V::kind()), bounds))
    }

    /// The head, checked to hold these kinds.
    fn head(&self, tx: &mut Transaction<'_>) -> Result<Top> {
        let oid = self.head.oid();
        let head = tx.get_ref(self.head)?;
        if head.key_kind() != K::KIND || !V::is_kind(head.value_kind()) {
            let show = |k: &str, v: &str| if v.is_empty() { format!("a set of {k}") } else { format!("{k} -> {v}") };
            return Err(Error::TreeKind {
                oid,
                expected: show(K::KIND, &V::kind()),
                found: show(head.key_kind(), head.value_kind()),
            });
        }
        Ok(Top { root: head.top(oid)?, depth: head.levels(oid)?, length: head.counter(oid)?, bounds: head.bounds() })
    }

    /// A node, checked to have one more child than keys.
    fn node(tx: &mut Transaction<'_>, r: Ref<TreeNode>) -> Result<Arc<TreeNode>> {
        let node = tx.get(r)?;
        Self::check_node(r, &node)?;
        Ok(node)
    }

    fn check_node(r: Ref<TreeNode>, node: &TreeNode) -> Result<()> {
        if node.children().is_empty() || K::column(node.keys()).len() + 1 != node.children().len() {
            return Err(broken(r.oid(), "a node's keys and children do not match"));
        }
        Ok(())
    }

    /// A bucket, checked to have a value per key.
    fn bucket(tx: &mut Transaction<'_>, r: Ref<TreeBucket>) -> Result<Arc<TreeBucket>> {
        let bucket = tx.get(r)?;
        Self::check_bucket(r, &bucket)?;
        Ok(bucket)
    }

    fn check_bucket(r: Ref<TreeBucket>, bucket: &TreeBucket) -> Result<()> {
        if V::STORED && K::column(bucket.keys()).len() != V::column(bucket.values()).len() {
            return Err(broken(r.oid(), "a bucket's keys and values do not match"));
        }
        Ok(())
    }

    /// The child of node `r` whose range holds `key`, and its index. The
    /// node is borrowed, not counted: the hot path of every lookup.
    fn child<Q: Ord + ?Sized>(tx: &mut Transaction<'_>, r: Ref<TreeNode>, key: &Q) -> Result<(usize, Ref<AnyObject>)>
    where
        K: Borrow<Q>,
    {
        let node = tx.get_ref(r)?;
        Self::check_node(r, node)?;
        let i = child_index(K::column(node.keys()), key);
        Ok((i, node.children()[i]))
    }

    /// The bucket whose range holds `key`.
    fn find<Q: Ord + ?Sized>(tx: &mut Transaction<'_>, top: &Top, key: &Q) -> Result<Ref<TreeBucket>>
    where
        K: Borrow<Q>,
    {
        let mut at = top.root;
        for _ in 0..top.depth {
            at = Self::child(tx, at.cast(), key)?.1;
        }
        Ok(at.cast())
    }

    /// Walks from the root to the bucket whose range holds `key`, keeping
    /// the path for a change that splits or unlinks.
    fn descend<Q: Ord + ?Sized>(tx: &mut Transaction<'_>, top: &Top, key: &Q) -> Result<(Path, Ref<TreeBucket>)>
    where
        K: Borrow<Q>,
    {
        let mut at = top.root;
        let mut path = Vec::with_capacity(top.depth as usize);
        for _ in 0..top.depth {
            let r = at.cast::<TreeNode>();
            let (i, child) = Self::child(tx, r, key)?;
            path.push((r, i));
            at = child;
        }
        Ok((path, at.cast()))
    }

    /// Where `key` is (`Ok`) or would go (`Err`) in bucket `b`.
    fn search_bucket<Q: Ord + ?Sized>(
        tx: &mut Transaction<'_>,
        b: Ref<TreeBucket>,
        key: &Q,
    ) -> Result<std::result::Result<usize, usize>>
    where
        K: Borrow<Q>,
    {
        let bucket = tx.get_ref(b)?;
        Self::check_bucket(b, bucket)?;
        Ok(search(K::column(bucket.keys()), key))
    }

    /// Whether `key` is in the tree.
    pub(super) fn contains<Q: Ord + ?Sized>(&self, tx: &mut Transaction<'_>, key: &Q) -> Result<bool>
    where
        K: Borrow<Q>,
    {
        let top = self.head(tx)?;
        let b = Self::find(tx, &top, key)?;
        Ok(Self::search_bucket(tx, b, key)?.is_ok())
    }

    fn value(oid: Oid, bucket: &TreeBucket, i: usize) -> Result<V> {
        let value = if V::STORED { V::column(bucket.values()).get(i).and_then(V::load) } else { V::unstored() };
        value.ok_or_else(|| broken(oid, "a value does not decode"))
    }

    pub(super) fn get<Q: Ord + ?Sized>(&self, tx: &mut Transaction<'_>, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
    {
        let top = self.head(tx)?;
        let b = Self::find(tx, &top, key)?;
        let bucket = tx.get_ref(b)?;
        Self::check_bucket(b, bucket)?;
        match search(K::column(bucket.keys()), key) {
            Ok(i) => Ok(Some(Self::value(b.oid(), bucket, i)?)),
            Err(_) => Ok(None),
        }
    }

    pub(super) fn len(&self, tx: &mut Transaction<'_>) -> Result<u64> {
        let top = self.head(tx)?;
        Ok(tx.get_ref(top.length)?.value().max(0) as u64)
    }

    fn count(&self, tx: &mut Transaction<'_>, top: &Top, delta: i64) -> Result<()> {
        let length = tx.get_mut(top.length)?;
        let value = length.value();
        length.set_value(value.wrapping_add(delta));
        Ok(())
    }

    pub(super) fn insert(&self, tx: &mut Transaction<'_>, key: K, value: V) -> Result<Option<V>> {
        if value.refused() {
            return Err(Error::TreeValue { oid: self.head.oid() });
        }
        let top = self.head(tx)?;
        let (path, b) = Self::descend(tx, &top, &key)?;
        match Self::search_bucket(tx, b, &key)? {
            Ok(_) if !V::STORED => Ok(Some(value)),
            Ok(i) => {
                let bucket = tx.get_mut(b)?;
                let old = std::mem::replace(&mut V::column_mut(bucket.values_mut())[i], value.store());
                Ok(Some(V::load(&old).ok_or_else(|| broken(b.oid(), "a value does not decode"))?))
            }
            Err(i) => {
                let bucket = tx.get_mut(b)?;
                K::column_mut(bucket.keys_mut()).insert(i, key);
                if V::STORED {
                    V::column_mut(bucket.values_mut()).insert(i, value.store());
                }
                let full = K::column(bucket.keys()).len() > top.bounds.bucket;
                self.count(tx, &top, 1)?;
                if full {
                    self.split(tx, &top, path, b)?;
                }
                Ok(None)
            }
        }
    }

    /// Moves the upper half of an overfull bucket into a new one.
    fn split(&self, tx: &mut Transaction<'_>, top: &Top, path: Path, b: Ref<TreeBucket>) -> Result<()> {
        let bucket = tx.get_mut(b)?;
        let mid = K::column(bucket.keys()).len() / 2;
        let keys = bucket.keys_mut().split_off(mid);
        let values = if V::STORED { Some(bucket.values_mut().split_off(mid)) } else { None };
        let shape = bucket.shape();
        bucket.set_shape(shape.wrapping_add(1));
        let separator = K::column(&keys)[0].clone();
        let mut right = TreeBucket::default();
        right.set_keys(keys);
        if let Some(values) = values {
            right.set_values(values);
        }
        let right = tx.add(right)?;
        self.add_child(tx, top, path, separator, right.erase())
    }

    /// Puts `child`, holding the keys from `separator` on, right of the
    /// child the path last took, splitting nodes that overflow.
    fn add_child(
        &self,
        tx: &mut Transaction<'_>,
        top: &Top,
        mut path: Path,
        mut separator: K,
        mut child: Ref<AnyObject>,
    ) -> Result<()> {
        let max = top.bounds.node;
        while let Some((r, i)) = path.pop() {
            let node = tx.get_mut(r)?;
            K::column_mut(node.keys_mut()).insert(i, separator);
            node.children_mut().insert(i + 1, child);
            let count = node.children().len();
            if count <= max {
                return Ok(());
            }
            let mid = count / 2;
            let children = node.children_mut().split_off(mid);
            let mut keys = node.keys_mut().split_off(mid - 1);
            separator = K::column_mut(&mut keys).remove(0);
            let mut right = TreeNode::default();
            right.set_keys(keys);
            right.set_children(children);
            child = tx.add(right)?.erase();
        }
        // The root split: a new root above the old one and its new sibling.
        let mut root = TreeNode::default();
        K::column_mut(root.keys_mut()).push(separator);
        root.set_children(vec![top.root, child]);
        let root = tx.add(root)?;
        let head = tx.get_mut(self.head)?;
        head.set_root(root.erase());
        let depth = head.depth();
        head.set_depth(depth + 1);
        Ok(())
    }

    pub(super) fn remove<Q: Ord + ?Sized>(&self, tx: &mut Transaction<'_>, key: &Q) -> Result<Option<V>>
    where
        K: Borrow<Q>,
    {
        let top = self.head(tx)?;
        let (path, b) = Self::descend(tx, &top, key)?;
        let value = {
            let bucket = tx.get_ref(b)?;
            Self::check_bucket(b, bucket)?;
            let Ok(i) = search(K::column(bucket.keys()), key) else { return Ok(None) };
            (i, Self::value(b.oid(), bucket, i)?)
        };
        let (i, value) = value;
        let bucket = tx.get_mut(b)?;
        K::column_mut(bucket.keys_mut()).remove(i);
        if V::STORED {
            V::column_mut(bucket.values_mut()).remove(i);
        }
        let empty = K::column(bucket.keys()).is_empty();
        if empty && !path.is_empty() {
            // Its range goes to a neighbour; the new shape makes a
            // concurrent change of this bucket conflict.
            let shape = bucket.shape();
            bucket.set_shape(shape.wrapping_add(1));
            self.unlink(tx, &top, path)?;
        }
        self.count(tx, &top, -1)?;
        Ok(Some(value))
    }

    /// Removes the child the path last took from its node, and nodes left
    /// without children from theirs; then drops roots with one child.
    fn unlink(&self, tx: &mut Transaction<'_>, top: &Top, mut path: Path) -> Result<()> {
        while let Some((r, i)) = path.pop() {
            let node = tx.get_mut(r)?;
            node.children_mut().remove(i);
            let keys = K::column_mut(node.keys_mut());
            if !keys.is_empty() {
                keys.remove(i.saturating_sub(1));
            }
            if !node.children().is_empty() {
                break;
            }
            if path.is_empty() {
                // The whole tree emptied: start again from an empty bucket.
                let root = tx.add(TreeBucket::default())?;
                let head = tx.get_mut(self.head)?;
                head.set_root(root.erase());
                head.set_depth(0);
                return Ok(());
            }
        }
        self.collapse(tx, top)
    }

    /// While the root is a node with a single child, makes that child the
    /// root. The old root is emptied, so a concurrent change of it conflicts.
    fn collapse(&self, tx: &mut Transaction<'_>, top: &Top) -> Result<()> {
        let (mut root, mut depth) = (top.root, top.depth);
        while depth > 0 {
            let r = root.cast::<TreeNode>();
            if tx.get_ref(r)?.children().len() != 1 {
                break;
            }
            let node = tx.get_mut(r)?;
            root = node.children()[0];
            node.children_mut().clear();
            depth -= 1;
        }
        if depth != top.depth {
            let head = tx.get_mut(self.head)?;
            head.set_root(root);
            head.set_depth(depth);
        }
        Ok(())
    }

    pub(super) fn last(&self, tx: &mut Transaction<'_>) -> Result<Option<(K, V)>> {
        let top = self.head(tx)?;
        let mut at = top.root;
        for _ in 0..top.depth {
            let r = at.cast::<TreeNode>();
            let node = tx.get_ref(r)?;
            Self::check_node(r, node)?;
            at = *node.children().last().expect("checked non-empty");
        }
        let b = at.cast::<TreeBucket>();
        let bucket = Self::bucket(tx, b)?;
        let Some(i) = K::column(bucket.keys()).len().checked_sub(1) else { return Ok(None) };
        Ok(Some((K::column(bucket.keys())[i].clone(), Self::value(b.oid(), &bucket, i)?)))
    }
}

/// The entries of a tree in a key range, in order; see
/// [`Ref<PTreeMap>::range`](crate::Ref::range).
pub struct Range<'a, 'c, K, V> {
    tree: Tree<K, V>,
    tx: &'a mut Transaction<'c>,
    /// The start, until the first call descends to it.
    start: Option<Bound<K>>,
    end: Bound<K>,
    /// Levels above the buckets.
    depth: usize,
    /// The nodes on the way to the current bucket, with the next child to visit.
    stack: Vec<(Arc<TreeNode>, usize)>,
    bucket: Option<(Ref<TreeBucket>, Arc<TreeBucket>, usize)>,
    done: bool,
}

impl<'a, 'c, K: TreeKey, V: TreeValue> Range<'a, 'c, K, V> {
    pub(super) fn new(tree: Tree<K, V>, tx: &'a mut Transaction<'c>, range: impl RangeBounds<K>) -> Self {
        Range {
            tree,
            tx,
            start: Some(range.start_bound().cloned()),
            end: range.end_bound().cloned(),
            depth: 0,
            stack: Vec::new(),
            bucket: None,
            done: false,
        }
    }

    /// Descends to the first entry at or after the start.
    fn begin(&mut self, start: Bound<K>) -> Result<()> {
        let top = self.tree.head(self.tx)?;
        self.depth = top.depth as usize;
        let mut at = top.root;
        for _ in 0..self.depth {
            let node = Tree::<K, V>::node(self.tx, at.cast())?;
            let i = match &start {
                Bound::Unbounded => 0,
                Bound::Included(k) | Bound::Excluded(k) => child_index(K::column(node.keys()), k),
            };
            at = node.children()[i];
            self.stack.push((node, i + 1));
        }
        let b = at.cast::<TreeBucket>();
        let bucket = Tree::<K, V>::bucket(self.tx, b)?;
        let keys = K::column(bucket.keys());
        let i = match &start {
            Bound::Unbounded => 0,
            Bound::Included(k) => search(keys, k).unwrap_or_else(|i| i),
            Bound::Excluded(k) => search(keys, k).map_or_else(|i| i, |i| i + 1),
        };
        self.bucket = Some((b, bucket, i));
        Ok(())
    }

    /// Moves to the next bucket; `false` at the end of the tree.
    fn advance(&mut self) -> Result<bool> {
        loop {
            let Some((node, next)) = self.stack.last_mut() else { return Ok(false) };
            let Some(&child) = node.children().get(*next) else {
                self.stack.pop();
                continue;
            };
            *next += 1;
            if self.stack.len() == self.depth {
                let b = child.cast::<TreeBucket>();
                self.bucket = Some((b, Tree::<K, V>::bucket(self.tx, b)?, 0));
                return Ok(true);
            }
            let node = Tree::<K, V>::node(self.tx, child.cast())?;
            self.stack.push((node, 0));
        }
    }

    /// How many entries are left in the range, counted a bucket at a time
    /// (a binary search where the range ends) without copying a key or
    /// decoding a value.
    pub fn count_entries(mut self) -> Result<u64> {
        if self.done {
            return Ok(0);
        }
        if let Some(start) = self.start.take() {
            self.begin(start)?;
        }
        let mut n = 0u64;
        loop {
            if let Some((_, bucket, i)) = &self.bucket {
                let keys = K::column(bucket.keys());
                let rest = keys.get(*i..).unwrap_or_default();
                let within = match &self.end {
                    Bound::Unbounded => rest.len(),
                    Bound::Included(end) => rest.partition_point(|k| k <= end),
                    Bound::Excluded(end) => rest.partition_point(|k| k < end),
                };
                n += within as u64;
                if within < rest.len() {
                    return Ok(n);
                }
            }
            if !self.advance()? {
                return Ok(n);
            }
        }
    }

    fn step(&mut self) -> Result<Option<(K, V)>> {
        if let Some(start) = self.start.take() {
            self.begin(start)?;
        }
        loop {
            if let Some((b, bucket, i)) = &mut self.bucket
                && let Some(key) = K::column(bucket.keys()).get(*i)
            {
                let past = match &self.end {
                    Bound::Unbounded => false,
                    Bound::Included(end) => key > end,
                    Bound::Excluded(end) => key >= end,
                };
                if past {
                    return Ok(None);
                }
                let entry = (key.clone(), Tree::<K, V>::value(b.oid(), bucket, *i)?);
                *i += 1;
                return Ok(Some(entry));
            }
            if !self.advance()? {
                return Ok(None);
            }
        }
    }
}

/// `Debug` and `Iterator` for a range walker with a `step` that gives the
/// next entry, ending for good at the first `None` or error.
macro_rules! walker {
    ($name:ident) => {
        impl<K, V> std::fmt::Debug for $name<'_, '_, K, V> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("tree", &self.tree.head.oid())
                    .field("done", &self.done)
                    .finish_non_exhaustive()
            }
        }

        impl<K: TreeKey, V: TreeValue> Iterator for $name<'_, '_, K, V> {
            type Item = Result<(K, V)>;

            fn next(&mut self) -> Option<Self::Item> {
                if self.done {
                    return None;
                }
                let step = self.step();
                if !matches!(step, Ok(Some(_))) {
                    self.done = true;
                }
                step.transpose()
            }
        }
    };
}

walker!(Range);

/// The entries of a tree in a key range, greatest key first; see
/// [`Ref<PTreeMap>::range_rev`](crate::Ref::range_rev).
pub struct RangeRev<'a, 'c, K, V> {
    tree: Tree<K, V>,
    tx: &'a mut Transaction<'c>,
    /// The end, until the first call descends to it.
    end: Option<Bound<K>>,
    start: Bound<K>,
    /// Levels above the buckets.
    depth: usize,
    /// The nodes on the way to the current bucket, with the child visited.
    stack: Vec<(Arc<TreeNode>, usize)>,
    /// The current bucket and how many of its entries are still to give.
    bucket: Option<(Ref<TreeBucket>, Arc<TreeBucket>, usize)>,
    done: bool,
}

impl<'a, 'c, K: TreeKey, V: TreeValue> RangeRev<'a, 'c, K, V> {
    pub(super) fn new(tree: Tree<K, V>, tx: &'a mut Transaction<'c>, range: impl RangeBounds<K>) -> Self {
        RangeRev {
            tree,
            tx,
            end: Some(range.end_bound().cloned()),
            start: range.start_bound().cloned(),
            depth: 0,
            stack: Vec::new(),
            bucket: None,
            done: false,
        }
    }

    /// Descends to the last entry at or before the end.
    fn begin(&mut self, end: Bound<K>) -> Result<()> {
        let top = self.tree.head(self.tx)?;
        self.depth = top.depth as usize;
        let mut at = top.root;
        for _ in 0..self.depth {
            let node = Tree::<K, V>::node(self.tx, at.cast())?;
            let i = match &end {
                Bound::Unbounded => node.children().len().saturating_sub(1),
                Bound::Included(k) | Bound::Excluded(k) => child_index(K::column(node.keys()), k),
            };
            at = node.children()[i];
            self.stack.push((node, i));
        }
        let b = at.cast::<TreeBucket>();
        let bucket = Tree::<K, V>::bucket(self.tx, b)?;
        let keys = K::column(bucket.keys());
        let left = match &end {
            Bound::Unbounded => keys.len(),
            Bound::Included(k) => search(keys, k).map_or_else(|i| i, |i| i + 1),
            Bound::Excluded(k) => search(keys, k).unwrap_or_else(|i| i),
        };
        self.bucket = Some((b, bucket, left));
        Ok(())
    }

    /// Moves to the previous bucket; `false` at the start of the tree.
    fn retreat(&mut self) -> Result<bool> {
        loop {
            let Some((node, at)) = self.stack.last_mut() else { return Ok(false) };
            if *at == 0 {
                self.stack.pop();
                continue;
            }
            *at -= 1;
            let child = node.children()[*at];
            if self.stack.len() == self.depth {
                let b = child.cast::<TreeBucket>();
                let bucket = Tree::<K, V>::bucket(self.tx, b)?;
                let left = K::column(bucket.keys()).len();
                self.bucket = Some((b, bucket, left));
                return Ok(true);
            }
            let node = Tree::<K, V>::node(self.tx, child.cast())?;
            let children = node.children().len();
            self.stack.push((node, children));
        }
    }

    fn step(&mut self) -> Result<Option<(K, V)>> {
        if let Some(end) = self.end.take() {
            self.begin(end)?;
        }
        loop {
            if let Some((b, bucket, left)) = &mut self.bucket
                && *left > 0
            {
                let i = *left - 1;
                let key = &K::column(bucket.keys())[i];
                let before = match &self.start {
                    Bound::Unbounded => false,
                    Bound::Included(start) => key < start,
                    Bound::Excluded(start) => key <= start,
                };
                if before {
                    return Ok(None);
                }
                let entry = (key.clone(), Tree::<K, V>::value(b.oid(), bucket, i)?);
                *left = i;
                return Ok(Some(entry));
            }
            if !self.retreat()? {
                return Ok(None);
            }
        }
    }
}

walker!(RangeRev);
