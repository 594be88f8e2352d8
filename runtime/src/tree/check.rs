//! A full walk of a tree that lists every broken rule instead of stopping
//! at the first: what `cargo pbpersist check-tree` prints.

use super::node::{TreeBucket, TreeHead, TreeKeys, TreeNode, TreeValues};
use crate::{AnyObject, Oid, Ref, Result, Transaction};

/// What [`check_tree`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeCheck {
    /// The stored key kind (`int64`, `uint64`, `string`, `bytes`).
    pub key_kind: String,
    /// The stored value kind (empty for a set).
    pub value_kind: String,
    /// Entries counted in the buckets.
    pub entries: u64,
    /// The tree's counter.
    pub length: i64,
    /// Levels from the head to the buckets, buckets included.
    pub depth: u32,
    /// Interior nodes.
    pub nodes: u64,
    /// Buckets.
    pub buckets: u64,
    /// Every broken rule, with the oid of the object breaking it; empty for
    /// a sound tree.
    pub problems: Vec<String>,
}

/// Walks the whole tree at `head`, whatever its kinds: checks key order
/// within and across buckets, that every key lies in the range its parent
/// gives it, the lengths of parallel lists, that only the root bucket may be
/// empty, that the counter matches the entries, and that every object's
/// stored reference list holds every reference its state makes (gc follows
/// the lists, so an omitted reference would have it remove a live object).
pub fn check_tree<T: ?Sized>(tx: &mut Transaction<'_>, head: Ref<T>) -> Result<TreeCheck> {
    let h = tx.get(head.cast::<TreeHead>())?;
    let mut out = TreeCheck {
        key_kind: h.key_kind().to_owned(),
        value_kind: h.value_kind().to_owned(),
        length: tx.get(h.counter(head.oid())?)?.value(),
        depth: h.levels(head.oid())? + 1,
        ..TreeCheck::default()
    };
    let walk = Walk { depth: h.depth(), value_kind: h.value_kind().to_owned() };
    let mut visited = vec![head.oid(), h.counter(head.oid())?.oid()];
    match h.key_kind() {
        "int64" => walk.run::<i64>(tx, h.top(head.oid())?, &mut out, &mut visited, |k| k.ints())?,
        "uint64" => walk.run::<u64>(tx, h.top(head.oid())?, &mut out, &mut visited, |k| k.uints())?,
        "string" => walk.run::<String>(tx, h.top(head.oid())?, &mut out, &mut visited, |k| k.strings())?,
        "bytes" => walk.run::<Vec<u8>>(tx, h.top(head.oid())?, &mut out, &mut visited, |k| k.bytes())?,
        other => out.problems.push(format!("head {}: unknown key kind {other:?}", head.oid())),
    }
    if out.entries as i64 != out.length {
        out.problems.push(format!(
            "head {}: the counter says {} entries, the buckets hold {}",
            head.oid(),
            out.length,
            out.entries
        ));
    }
    check_reference_lists(tx, &visited, &mut out)?;
    Ok(out)
}

/// Reports each of `oids` whose state references an object its stored
/// reference list leaves out. A list may hold more than the state shows
/// (references inside fields this program does not know), never less.
fn check_reference_lists(tx: &mut Transaction<'_>, oids: &[Oid], out: &mut TreeCheck) -> Result<()> {
    for (oid, stored) in tx.stored_refs(oids)? {
        let mut listed: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
        for r in stored {
            *listed.entry(r).or_default() += 1;
        }
        let mut omitted = Vec::new();
        tx.get_object(oid)?.visit_refs(&mut |r| match listed.get_mut(&r.0) {
            Some(n) if *n > 0 => *n -= 1,
            _ => omitted.push(r.0),
        });
        if !omitted.is_empty() {
            out.problems.push(format!(
                "object {oid}: its stored reference list omits {omitted:?}, which its state references (gc would remove them)"
            ));
        }
    }
    Ok(())
}

struct Walk {
    depth: u32,
    value_kind: String,
}

/// How many values a bucket holds in the list its kind names, and whether
/// any other list is used.
fn values_len(kind: &str, v: &TreeValues) -> (usize, bool) {
    let lens = [
        ("ref", v.refs().len()),
        ("int64", v.ints().len()),
        ("uint64", v.uints().len()),
        ("string", v.strings().len()),
        ("bytes", v.bytes().len()),
        ("double", v.doubles().len()),
        ("bool", v.bools().len()),
    ];
    let kind = if kind.starts_with("message:") { "bytes" } else { kind };
    let mine = lens.iter().find(|(k, _)| *k == kind).map_or(0, |(_, n)| *n);
    let others = lens.iter().any(|(k, n)| *k != kind && *n > 0);
    (mine, others)
}

impl Walk {
    fn run<K: Ord + Clone + std::fmt::Debug>(
        &self,
        tx: &mut Transaction<'_>,
        root: Ref<AnyObject>,
        out: &mut TreeCheck,
        visited: &mut Vec<Oid>,
        keys: fn(&TreeKeys) -> &[K],
    ) -> Result<()> {
        let mut last: Option<K> = None;
        let mut seen = std::collections::HashSet::new();
        // Objects to visit: level, oid, and the key range the parent gives.
        let mut todo = vec![(0u32, root, None::<K>, None::<K>)];
        while let Some((level, r, low, high)) = todo.pop() {
            let oid = r.oid();
            if !seen.insert(oid) {
                out.problems.push(format!("object {oid}: reached twice; a tree's objects each have one parent"));
                continue;
            }
            visited.push(oid);
            let outside = |k: &K| low.as_ref().is_some_and(|l| k < l) || high.as_ref().is_some_and(|h| k >= h);
            if level < self.depth {
                out.nodes += 1;
                let node = tx.get(r.cast::<TreeNode>())?;
                let ks = keys(node.keys());
                if ks.len() + 1 != node.children().len() {
                    out.problems.push(format!("node {oid}: {} keys for {} children", ks.len(), node.children().len()));
                    continue;
                }
                check_order(oid, ks, out);
                if ks.iter().any(outside) {
                    out.problems.push(format!("node {oid}: a separator lies outside the range its parent gives"));
                }
                // Pushed last child first, so buckets come out in key order.
                for (i, child) in node.children().iter().enumerate().rev() {
                    let lo = if i == 0 { low.clone() } else { Some(ks[i - 1].clone()) };
                    let hi = if i == ks.len() { high.clone() } else { Some(ks[i].clone()) };
                    todo.push((level + 1, *child, lo, hi));
                }
            } else {
                out.buckets += 1;
                let bucket = tx.get(r.cast::<TreeBucket>())?;
                let ks = keys(bucket.keys());
                check_order(oid, ks, out);
                if ks.iter().any(outside) {
                    out.problems.push(format!("bucket {oid}: a key lies outside the range its parent gives"));
                }
                if ks.is_empty() && self.depth > 0 {
                    out.problems.push(format!("bucket {oid}: empty, but not the root"));
                }
                if keys_elsewhere(bucket.keys(), ks.len()) {
                    out.problems.push(format!("bucket {oid}: keys in a list its kind does not name"));
                }
                if !self.value_kind.is_empty() || bucket.has_values() {
                    let (n, others) = values_len(&self.value_kind, bucket.values());
                    if n != ks.len() || others {
                        out.problems.push(format!(
                            "bucket {oid}: {} keys but {n} values of kind {:?}",
                            ks.len(),
                            self.value_kind
                        ));
                    }
                }
                if let (Some(prev), Some(first)) = (&last, ks.first())
                    && first <= prev
                {
                    out.problems.push(format!("bucket {oid}: starts at {first:?}, not after {prev:?}"));
                }
                if let Some(k) = ks.last() {
                    last = Some(k.clone());
                }
                out.entries += ks.len() as u64;
            }
        }
        Ok(())
    }
}

fn check_order<K: Ord + std::fmt::Debug>(oid: Oid, ks: &[K], out: &mut TreeCheck) {
    if let Some(w) = ks.windows(2).find(|w| w[0] >= w[1]) {
        out.problems.push(format!("object {oid}: key {:?} is not before {:?}", w[0], w[1]));
    }
}

/// Whether a list other than the tree's key list holds keys.
fn keys_elsewhere(k: &TreeKeys, mine: usize) -> bool {
    k.ints().len() + k.uints().len() + k.strings().len() + k.bytes().len() > mine
}

/// The head of a tree and its first entries, as [`peek_tree`] shows them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TreePeek {
    /// The stored key kind.
    pub key_kind: String,
    /// The stored value kind (empty for a set).
    pub value_kind: String,
    /// The tree's counter.
    pub length: i64,
    /// Levels from the head to the buckets, buckets included.
    pub depth: u32,
    /// The first entries in key order, keys and values in Rust's debug form
    /// (values empty for a set; messages as their encoded length).
    pub first: Vec<(String, String)>,
}

/// The first `n` entries of the tree at `head`, whatever its kinds, loading
/// only the buckets they are in: what `cargo pbpersist inspect` shows.
pub fn peek_tree<T: ?Sized>(tx: &mut Transaction<'_>, head: Ref<T>, n: usize) -> Result<TreePeek> {
    let h = tx.get(head.cast::<TreeHead>())?;
    let mut out = TreePeek {
        key_kind: h.key_kind().to_owned(),
        value_kind: h.value_kind().to_owned(),
        length: tx.get(h.counter(head.oid())?)?.value(),
        depth: h.levels(head.oid())? + 1,
        first: Vec::new(),
    };
    let mut todo = vec![(0u32, h.top(head.oid())?)];
    let mut seen = std::collections::HashSet::new();
    while let Some((level, r)) = todo.pop() {
        if out.first.len() >= n {
            break;
        }
        if !seen.insert(r.oid()) {
            continue;
        }
        if level < h.depth() {
            let node = tx.get(r.cast::<TreeNode>())?;
            todo.extend(node.children().iter().rev().map(|c| (level + 1, *c)));
            continue;
        }
        let bucket = tx.get(r.cast::<TreeBucket>())?;
        let (k, v) = (bucket.keys(), bucket.values());
        for i in 0..k.len().min(n - out.first.len()) {
            let key = match h.key_kind() {
                "int64" => k.ints().get(i).map(|x| format!("{x}")),
                "uint64" => k.uints().get(i).map(|x| format!("{x}")),
                "string" => k.strings().get(i).map(|x| format!("{x:?}")),
                _ => k.bytes().get(i).map(|x| format!("{x:?}")),
            };
            let value = match h.value_kind() {
                "" => Some(String::new()),
                "ref" => v.refs().get(i).map(|x| format!("-> {}", x.oid())),
                "int64" => v.ints().get(i).map(|x| format!("{x}")),
                "uint64" => v.uints().get(i).map(|x| format!("{x}")),
                "string" => v.strings().get(i).map(|x| format!("{x:?}")),
                "double" => v.doubles().get(i).map(|x| format!("{x}")),
                "bool" => v.bools().get(i).map(|x| format!("{x}")),
                "bytes" => v.bytes().get(i).map(|x| format!("{x:?}")),
                _ => v.bytes().get(i).map(|x| format!("({} bytes)", x.len())),
            };
            out.first.push((key.unwrap_or_else(|| "?".into()), value.unwrap_or_else(|| "?".into())));
        }
    }
    Ok(out)
}
