//! The stored shape of a tree: its head, interior nodes, buckets and length
//! counter, each an ordinary persistent object (`proto/pbpersist/tree.proto`),
//! and the merges that let concurrent changes of one bucket commit.

use crate::{AnyObject, Meta, Oid, Ref};

/// The object a `Ref<PTreeMap<K, V>>` or `Ref<PTreeSet<K>>` points to.
#[derive(Clone, PartialEq, crate::Persistent)]
#[pbpersist(message = "pbpersist.Tree")]
pub struct TreeHead {
    /// The top of the tree: a bucket if `depth` is 0, else a node.
    #[pbpersist(tag = 1)]
    root: Option<Ref<AnyObject>>,
    /// Interior levels above the buckets.
    #[pbpersist(tag = 2)]
    depth: u32,
    /// The entry counter, a `pbpersist.TreeLength`.
    #[pbpersist(tag = 3, reference = "TreeLength")]
    length: Option<Ref<TreeLength>>,
    /// Which `TreeKeys` list holds the keys: `int64`, `uint64`, `string` or `bytes`.
    #[pbpersist(tag = 4)]
    key_kind: String,
    /// Which `TreeValues` list holds the values (empty for a set).
    #[pbpersist(tag = 5)]
    value_kind: String,
    /// A bucket holding more entries than this splits in two.
    #[pbpersist(tag = 6)]
    max_bucket: u32,
    /// A node with more children than this splits in two.
    #[pbpersist(tag = 7)]
    max_node: u32,
    #[pbpersist(meta)]
    meta: Meta,
}

/// An interior node: `children[i]` holds the keys from `keys[i - 1]`
/// (inclusive) up to `keys[i]` (exclusive).
#[derive(Clone, PartialEq, crate::Persistent)]
#[pbpersist(message = "pbpersist.TreeNode")]
pub struct TreeNode {
    #[pbpersist(tag = 1, message)]
    keys: Option<TreeKeys>,
    /// Nodes one level down, or buckets at the lowest level.
    #[pbpersist(tag = 2)]
    children: Vec<Ref<AnyObject>>,
    #[pbpersist(meta)]
    meta: Meta,
}

/// A leaf: sorted keys and the value of each.
#[derive(Clone, PartialEq, crate::Persistent)]
#[pbpersist(message = "pbpersist.TreeBucket", resolve_conflicts = "merge_buckets")]
pub struct TreeBucket {
    #[pbpersist(tag = 1, message)]
    keys: Option<TreeKeys>,
    #[pbpersist(tag = 2, message)]
    values: Option<TreeValues>,
    /// Changes whenever the bucket's key range changes (a split, or removal
    /// from the tree when it empties), so a merge can tell.
    #[pbpersist(tag = 3)]
    shape: u64,
    #[pbpersist(meta)]
    meta: Meta,
}

/// The number of entries of a tree; concurrent changes add up.
#[derive(Clone, PartialEq, crate::Persistent)]
#[pbpersist(message = "pbpersist.TreeLength", resolve_conflicts = "merge_lengths")]
pub struct TreeLength {
    #[pbpersist(tag = 1, sint64)]
    value: i64,
    #[pbpersist(meta)]
    meta: Meta,
}

/// Sorted keys; one list is used, the one the tree's key kind names.
#[derive(Clone, PartialEq, crate::Persistent)]
#[pbpersist(message = "pbpersist.TreeKeys")]
pub struct TreeKeys {
    #[pbpersist(tag = 1, sint64, packed)]
    ints: Vec<i64>,
    #[pbpersist(tag = 2, packed)]
    uints: Vec<u64>,
    #[pbpersist(tag = 3)]
    strings: Vec<String>,
    #[pbpersist(tag = 4, bytes)]
    bytes: Vec<Vec<u8>>,
    #[pbpersist(meta)]
    meta: Meta,
}

/// Values in key order; one list is used, the one the tree's value kind names.
#[derive(Clone, PartialEq, crate::Persistent)]
#[pbpersist(message = "pbpersist.TreeValues")]
pub struct TreeValues {
    #[pbpersist(tag = 1)]
    refs: Vec<Ref<AnyObject>>,
    #[pbpersist(tag = 2, sint64, packed)]
    ints: Vec<i64>,
    #[pbpersist(tag = 3, packed)]
    uints: Vec<u64>,
    #[pbpersist(tag = 4)]
    strings: Vec<String>,
    /// Byte strings, or encoded messages.
    #[pbpersist(tag = 5, bytes)]
    bytes: Vec<Vec<u8>>,
    #[pbpersist(tag = 6, packed)]
    doubles: Vec<f64>,
    #[pbpersist(tag = 7, packed)]
    bools: Vec<bool>,
    #[pbpersist(meta)]
    meta: Meta,
}

impl TreeHead {
    pub(super) fn create(root: Ref<AnyObject>, length: Ref<TreeLength>, kinds: (&str, &str), bounds: Bounds) -> Self {
        let mut head = TreeHead::default();
        head.set_root(root);
        head.set_length(length);
        head.set_key_kind(kinds.0.to_owned());
        head.set_value_kind(kinds.1.to_owned());
        head.set_max_bucket(bounds.bucket as u32);
        head.set_max_node(bounds.node as u32);
        head
    }

    /// The top of the tree.
    pub(super) fn top(&self, oid: Oid) -> crate::Result<Ref<AnyObject>> {
        self.root().ok_or_else(|| crate::Error::BrokenTree { oid, reason: "the head has no root".into() })
    }

    /// The levels of nodes, refused beyond 64: a real tree of 2^64 entries
    /// is 11 levels deep, and a hostile head must not make a walk loop.
    pub(super) fn levels(&self, oid: Oid) -> crate::Result<u32> {
        match self.depth() {
            d @ 0..=64 => Ok(d),
            d => Err(crate::Error::BrokenTree { oid, reason: format!("a depth of {d}") }),
        }
    }

    /// The entry counter.
    pub(super) fn counter(&self, oid: Oid) -> crate::Result<Ref<TreeLength>> {
        self.length().ok_or_else(|| crate::Error::BrokenTree { oid, reason: "the head has no counter".into() })
    }

    /// The bounds, with any stored zero read as the default.
    pub(super) fn bounds(&self) -> Bounds {
        let or = |v: u32, d: usize| if v < 4 { d } else { v as usize };
        Bounds { bucket: or(self.max_bucket, Bounds::DEFAULT.bucket), node: or(self.max_node, Bounds::DEFAULT.node) }
    }
}

/// How large buckets and nodes grow before they split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Entries of a bucket (at least 4).
    pub bucket: usize,
    /// Children of an interior node (at least 4).
    pub node: usize,
}

impl Bounds {
    /// 64 entries per bucket, 256 children per node: a bucket of short keys
    /// and references stays under a kilobyte, and 10 million entries fit in
    /// four levels.
    pub const DEFAULT: Bounds = Bounds { bucket: 64, node: 256 };
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds::DEFAULT
    }
}

/// Where a merged entry comes from.
#[derive(Clone, Copy)]
enum Side {
    Committed(usize),
    New(usize),
    Old(usize),
}

/// One list of keys or values, whichever kind it holds.
trait Column {
    /// Whether entries `i` of `self` and `j` of `other` are equal.
    fn same(&self, i: usize, other: &Self, j: usize) -> bool;
    /// The merged list, taking each entry from the side `plan` names.
    fn pick(plan: &[Side], old: &Self, committed: &Self, new: &Self) -> Self;
}

impl<T: Clone + PartialEq> Column for Vec<T> {
    fn same(&self, i: usize, other: &Self, j: usize) -> bool {
        self.get(i) == other.get(j)
    }

    fn pick(plan: &[Side], old: &Self, committed: &Self, new: &Self) -> Self {
        if old.is_empty() && committed.is_empty() && new.is_empty() {
            return Vec::new();
        }
        plan.iter()
            .filter_map(|s| match *s {
                Side::Old(i) => old.get(i),
                Side::Committed(i) => committed.get(i),
                Side::New(i) => new.get(i),
            })
            .cloned()
            .collect()
    }
}

impl TreeValues {
    fn same(&self, i: usize, other: &Self, j: usize) -> bool {
        self.refs.same(i, &other.refs, j)
            && self.ints.same(i, &other.ints, j)
            && self.uints.same(i, &other.uints, j)
            && self.strings.same(i, &other.strings, j)
            && self.bytes.same(i, &other.bytes, j)
            && self.doubles.same(i, &other.doubles, j)
            && self.bools.same(i, &other.bools, j)
    }

    fn pick(plan: &[Side], o: &Self, c: &Self, n: &Self) -> Self {
        let mut v = TreeValues::default();
        v.set_refs(Column::pick(plan, &o.refs, &c.refs, &n.refs));
        v.set_ints(Column::pick(plan, &o.ints, &c.ints, &n.ints));
        v.set_uints(Column::pick(plan, &o.uints, &c.uints, &n.uints));
        v.set_strings(Column::pick(plan, &o.strings, &c.strings, &n.strings));
        v.set_bytes(Column::pick(plan, &o.bytes, &c.bytes, &n.bytes));
        v.set_doubles(Column::pick(plan, &o.doubles, &c.doubles, &n.doubles));
        v.set_bools(Column::pick(plan, &o.bools, &c.bools, &n.bools));
        v
    }

    /// Moves the values from `at` on into a new list.
    pub(super) fn split_off(&mut self, at: usize) -> TreeValues {
        fn cut<T>(v: &mut Vec<T>, at: usize) -> Vec<T> {
            if v.len() > at { v.split_off(at) } else { Vec::new() }
        }
        let mut out = TreeValues::default();
        out.set_refs(cut(self.refs_mut(), at));
        out.set_ints(cut(self.ints_mut(), at));
        out.set_uints(cut(self.uints_mut(), at));
        out.set_strings(cut(self.strings_mut(), at));
        out.set_bytes(cut(self.bytes_mut(), at));
        out.set_doubles(cut(self.doubles_mut(), at));
        out.set_bools(cut(self.bools_mut(), at));
        out
    }
}

impl TreeKeys {
    /// The number of keys, whichever list holds them.
    pub(super) fn len(&self) -> usize {
        self.ints.len().max(self.uints.len()).max(self.strings.len()).max(self.bytes.len())
    }

    /// Moves the keys from `at` on into a new list.
    pub(super) fn split_off(&mut self, at: usize) -> TreeKeys {
        fn cut<T>(v: &mut Vec<T>, at: usize) -> Vec<T> {
            if v.len() > at { v.split_off(at) } else { Vec::new() }
        }
        let mut out = TreeKeys::default();
        out.set_ints(cut(self.ints_mut(), at));
        out.set_uints(cut(self.uints_mut(), at));
        out.set_strings(cut(self.strings_mut(), at));
        out.set_bytes(cut(self.bytes_mut(), at));
        out
    }

    /// The merge plan of three sorted key lists, or `None` on a conflict.
    fn plan(o: &TreeKeys, c: &TreeKeys, n: &TreeKeys, same: impl Fn(Side, Side) -> bool) -> Option<Vec<Side>> {
        if !o.ints.is_empty() || !c.ints.is_empty() || !n.ints.is_empty() {
            plan3(&o.ints, &c.ints, &n.ints, same)
        } else if !o.uints.is_empty() || !c.uints.is_empty() || !n.uints.is_empty() {
            plan3(&o.uints, &c.uints, &n.uints, same)
        } else if !o.strings.is_empty() || !c.strings.is_empty() || !n.strings.is_empty() {
            plan3(&o.strings, &c.strings, &n.strings, same)
        } else {
            plan3(&o.bytes, &c.bytes, &n.bytes, same)
        }
    }

    fn pick(plan: &[Side], o: &Self, c: &Self, n: &Self) -> Self {
        let mut k = TreeKeys::default();
        k.set_ints(Column::pick(plan, &o.ints, &c.ints, &n.ints));
        k.set_uints(Column::pick(plan, &o.uints, &c.uints, &n.uints));
        k.set_strings(Column::pick(plan, &o.strings, &c.strings, &n.strings));
        k.set_bytes(Column::pick(plan, &o.bytes, &c.bytes, &n.bytes));
        k
    }
}

/// Walks three sorted key lists at once, keeping each side's change of each
/// key: a key changed (inserted, removed or given another value) by both
/// sides is a conflict, even if both made the same change.
fn plan3<K: Ord>(o: &[K], c: &[K], n: &[K], same: impl Fn(Side, Side) -> bool) -> Option<Vec<Side>> {
    let (mut i, mut j, mut k) = (0, 0, 0);
    let mut plan = Vec::with_capacity(c.len().max(n.len()) + 1);
    loop {
        let least = [o.get(i), c.get(j), n.get(k)].into_iter().flatten().min()?;
        let (ino, inc, inn) = (o.get(i) == Some(least), c.get(j) == Some(least), n.get(k) == Some(least));
        match (ino, inc, inn) {
            (true, true, true) => {
                if same(Side::Old(i), Side::Committed(j)) {
                    plan.push(Side::New(k));
                } else if same(Side::Old(i), Side::New(k)) {
                    plan.push(Side::Committed(j));
                } else {
                    return None;
                }
            }
            // Removed by this transaction: the committed side must not have changed it.
            (true, true, false) => {
                if !same(Side::Old(i), Side::Committed(j)) {
                    return None;
                }
            }
            // Removed by the committed transaction: this one must not have changed it.
            (true, false, true) => {
                if !same(Side::Old(i), Side::New(k)) {
                    return None;
                }
            }
            // Removed by both, or inserted by both.
            (true, false, false) | (false, true, true) => return None,
            (false, true, false) => plan.push(Side::Committed(j)),
            (false, false, true) => plan.push(Side::New(k)),
            (false, false, false) => unreachable!("the least key is on some side"),
        }
        i += usize::from(ino);
        j += usize::from(inc);
        k += usize::from(inn);
        if i == o.len() && j == c.len() && k == n.len() {
            return Some(plan);
        }
    }
}

/// Merges two transactions' changes of one bucket: entries of different
/// keys combine; the same key changed on both sides, a split or removal of
/// the bucket on either side, or a merge that would empty it is a conflict.
fn merge_buckets(old: &TreeBucket, committed: &TreeBucket, new: &TreeBucket) -> Option<TreeBucket> {
    if committed.shape != old.shape || new.shape != old.shape {
        return None;
    }
    if committed.keys().len() == 0 || new.keys().len() == 0 {
        return None;
    }
    let (ov, cv, nv) = (old.values(), committed.values(), new.values());
    let value = |s: Side| match s {
        Side::Old(i) => (ov, i),
        Side::Committed(i) => (cv, i),
        Side::New(i) => (nv, i),
    };
    let same = |a: Side, b: Side| {
        let ((x, i), (y, j)) = (value(a), value(b));
        x.same(i, y, j)
    };
    let plan = TreeKeys::plan(old.keys(), committed.keys(), new.keys(), same)?;
    if plan.is_empty() {
        return None;
    }
    let mut merged = committed.clone();
    merged.set_keys(TreeKeys::pick(&plan, old.keys(), committed.keys(), new.keys()));
    if old.has_values() || committed.has_values() || new.has_values() {
        merged.set_values(TreeValues::pick(&plan, ov, cv, nv));
    }
    Some(merged)
}

/// Adds this transaction's change of the count to the committed count.
fn merge_lengths(old: &TreeLength, committed: &TreeLength, new: &TreeLength) -> Option<TreeLength> {
    let mut merged = committed.clone();
    merged.set_value(committed.value.wrapping_add(new.value.wrapping_sub(old.value)));
    Some(merged)
}

#[cfg(test)]
mod tests;
