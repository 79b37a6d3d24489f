//! The fingerprint index of one namespace: an in-memory, order-statistics, XOR-augmented
//! B+tree.
//!
//! # What it answers
//!
//! [`FpTree`] is an ordered map from keys (byte strings, compared lexicographically) to a
//! fingerprint and a payload. Besides the map operations it answers, in O(log n) worst case:
//!
//! * [`rank`](FpTree::rank): how many keys are smaller than a probe, which turns a key range
//!   into a span of ranks;
//! * [`span_fingerprint`](FpTree::span_fingerprint): the XOR of the fingerprints of a span of
//!   ranks;
//! * [`select`](FpTree::select): the entry at a rank (the pivot when a range is split), and
//!   [`iter_from`](FpTree::iter_from): a lazy in-order walk from a rank;
//! * the span's size is `hi - lo`, and the XOR of everything is kept up to date in O(1).
//!
//! # Why
//!
//! Range-based set reconciliation asks, for every range a peer sends, for its fingerprint, its
//! size and the keys that split it. iroh-docs answers each of those by scanning the range's
//! entries, so one fingerprint costs O(entries in the range) and a session over n entries
//! re-reads the whole namespace at every level of splitting. Here every node caches the count
//! and the XOR of the fingerprints below it, and because XOR is its own inverse a span's
//! fingerprint is the XOR of two prefix fingerprints, each found on one root-to-leaf path.
//!
//! # Structure
//!
//! * **Leaves** hold up to 64 entries as three parallel sorted arrays: keys ([`Bytes`]),
//!   fingerprints and payloads (an array of `()` takes no memory).
//! * **Branches** hold up to 64 children and, per child, its cached summary (entry count and
//!   XOR of fingerprints) plus `children - 1` separator keys. Separator `i` is `<=` every key
//!   of child `i + 1` and `>` every key of child `i`; it is a reference-counted clone of a key
//!   that was the first of child `i + 1` when the separator was set. Removing that key later
//!   leaves the separator valid (it stays a bound), so it may keep the removed key's bytes
//!   alive until the nodes around it are rebalanced: bounded by one key per branch slot.
//! * Every node but the root is at least half full (leaves >= 32 entries, branches >= 32
//!   children; a root branch has >= 2 children) and all leaves are at the same depth. Inserts
//!   split full nodes in halves; removals borrow one slot from a sibling with spare slots or
//!   merge with a sibling, and a root branch left with a single child is replaced by it. The
//!   shape is a deterministic function of the operation sequence: no randomisation, no
//!   hashing, no balancing that depends on the key distribution.
//! * Height: a tree of n entries has at most `1 + log_32(n / 64)` branch levels (three for a
//!   million entries). The only recursion (insert, remove) is one frame per level.
//!
//! # Costs
//!
//! `get`, `rank`, `select`, `insert`, `remove`: one root-to-leaf path, with at most a 64-slot
//! shift per node. Searching a node compares the probe with about ten keys: seven evenly
//! spaced ones first (independent comparisons, so the CPU overlaps their cache misses; every
//! key is its own heap buffer), then a binary search between the two that bound it. A prefix
//! fingerprint XORs at most half of each visited node's summaries: a node's own total is known
//! from its parent, so the prefix of its first `c` children is computed from whichever side is
//! shorter (`total ^ suffix` when `c` is past the middle). `iter_from` costs one path to start
//! and amortised O(1) per step. [`total_fingerprint`](FpTree::total_fingerprint) is O(1).
//!
//! Measured (release, one core of a shared 2-vCPU VM, 1,000,000 random 70-byte keys with 16
//! distinct 32-byte author prefixes, `V = ()`): insert 2.5..3 µs, `rank`/`get` 2.4..3 µs
//! (memory latency on the key buffers; a `std` `BTreeMap<Bytes, _>` `get` takes 1.4..1.7 µs
//! there), `span_fingerprint` 0.4..0.5 µs, `select` 0.3..0.4 µs, `iter_from` + 100 steps
//! 0.5 µs. The same fingerprint by scanning half the keys of a `BTreeMap` takes 11..16 ms.
//!
//! Building from n sorted entries with [`from_sorted`](FpTree::from_sorted) is O(n) (0.13..0.2 µs
//! per entry at n = 10^6): it packs full leaves (evening out the last two), then groups each
//! level into evenly sized branches; it compares each key only with its predecessor (the order
//! check) and clones one key per leaf and per branch as separators. Inserting the same
//! entries one by one costs O(n log n) and leaves the leaves 50 to 100% full.
//!
//! # Memory
//!
//! A leaf slot is the [`Bytes`] handle (32 bytes), the fingerprint (32) and the payload (0 for
//! `()`); leaf arrays grow in steps up to 64 slots and never beyond. The key's bytes are shared,
//! not copied: a 70-byte key in its own exact allocation (as `Bytes::from(Vec)` makes) is an
//! 80-byte glibc chunk, plus a 32-byte chunk for `Bytes`' shared record once the handle is
//! cloned (the tree clones only the keys it uses as separators). A branch spends 152 bytes
//! per child slot (80-byte node, 40-byte summary, 32-byte separator handle), i.e. 2..5 bytes
//! per entry. Measured tree-owned heap per entry, key buffers excluded, at n = 10^6: 66 bytes
//! bulk-built (full leaves), 74 after ascending inserts (a leaf split by an insert into its
//! upper half gives back its lower half's spare slots), 95 after random inserts (leaves ~70%
//! full). So a 70-byte key with `V = ()` costs about **146 bytes** per entry bulk-built and
//! **175** after random inserts, key bytes included. After removing 99% of a million random
//! entries, the 10,000 left take ~110 bytes each (merges keep their arrays' capacity).
//!
//! # Fingerprint convention
//!
//! The XORs here start from zero bytes (the identity), not [`Fingerprint::EMPTY`]: an empty
//! span has fingerprint `[0; 32]`. Callers fold in [`Fingerprint::EMPTY`] once per range to get
//! the wire's fingerprint.

mod iter;
mod node;
#[cfg(test)]
mod tests;

use std::{fmt, mem};

use bytes::Bytes;

use self::{
    iter::Iter,
    node::{partition_point, Branch, Leaf, Node, Sizes, Sum, ZERO},
};
use crate::ranger::Fingerprint;

/// An ordered map from byte-string keys to a fingerprint and a payload, answering rank, select
/// and span-fingerprint queries in O(log n). See the [module docs](self).
#[derive(Clone)]
pub(crate) struct FpTree<V> {
    root: Node<V>,
    /// Count and XOR of all entries (the root's summary).
    total: Sum,
    sizes: Sizes,
}

impl<V> Default for FpTree<V> {
    /// An empty tree.
    fn default() -> Self {
        Self::new()
    }
}

impl<V> fmt::Debug for FpTree<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FpTree")
            .field("len", &self.total.count)
            .field("total_fingerprint", &self.total.fp)
            .finish_non_exhaustive()
    }
}

impl<V> FpTree<V> {
    /// An empty tree.
    pub(crate) fn new() -> Self {
        Self::with_sizes(Sizes::DEFAULT)
    }

    fn with_sizes(sizes: Sizes) -> Self {
        FpTree {
            root: Node::Leaf(Leaf::new()),
            total: Sum::ZERO,
            sizes,
        }
    }

    /// Builds a tree from entries in strictly ascending key order, in O(n), with full leaves.
    ///
    /// The order is debug-asserted. In release builds an out-of-order or repeated key is not
    /// fatal: it and every later item are inserted one by one (later duplicates replace
    /// earlier ones), so the result is always a valid tree.
    pub(crate) fn from_sorted(items: impl IntoIterator<Item = (Bytes, Fingerprint, V)>) -> Self {
        Self::build(items, Sizes::DEFAULT, true)
    }

    fn build(
        items: impl IntoIterator<Item = (Bytes, Fingerprint, V)>,
        sizes: Sizes,
        assert_sorted: bool,
    ) -> Self {
        let mut items = items.into_iter();
        let mut leaves: Vec<Leaf<V>> = Vec::new();
        // Leaves grow as they fill (`Leaf::push`): a document of a few entries holds a few
        // slots, not `leaf_max`.
        let mut cur = Leaf::new();
        let mut unsorted = None;
        for (key, fp, value) in items.by_ref() {
            let last = cur
                .keys
                .last()
                .or_else(|| leaves.last().and_then(|l| l.keys.last()));
            if last.is_some_and(|last| *last >= key) {
                debug_assert!(
                    !assert_sorted,
                    "FpTree::from_sorted: keys not strictly ascending"
                );
                unsorted = Some((key, fp, value));
                break;
            }
            if cur.len() == sizes.leaf_max {
                leaves.push(mem::replace(&mut cur, Leaf::new()));
            }
            cur.push(key, fp, value, sizes.leaf_max);
        }
        if cur.len() > 0 || leaves.is_empty() {
            leaves.push(cur);
        }
        // Only the last leaf can be short: even it out with its (full) predecessor.
        if let [.., prev, last] = &mut leaves[..] {
            if last.len() < sizes.leaf_min {
                let total = prev.len() + last.len();
                prev.move_tail_to(total / 2 - last.len(), last);
            }
        }

        let mut level: Vec<(Node<V>, Sum, Bytes)> = leaves
            .into_iter()
            .map(|leaf| {
                let sum = leaf.sum();
                let first = leaf.keys.first().cloned().unwrap_or_default();
                (Node::Leaf(leaf), sum, first)
            })
            .collect();
        while level.len() > 1 {
            // `groups` branches of `base` or `base + 1` children: each at least `branch_min`
            // because `n > (groups - 1) * branch_max`.
            let n = level.len();
            let groups = n.div_ceil(sizes.branch_max);
            let (base, extra) = (n / groups, n % groups);
            let mut nodes = level.into_iter();
            level = (0..groups)
                .map(|g| {
                    let size = base + usize::from(g < extra);
                    let mut branch = Branch {
                        seps: Vec::with_capacity(size.saturating_sub(1)),
                        sums: Vec::with_capacity(size),
                        children: Vec::with_capacity(size),
                    };
                    let mut sum = Sum::ZERO;
                    let mut first = Bytes::new();
                    for (i, (node, s, min)) in nodes.by_ref().take(size).enumerate() {
                        if i == 0 {
                            first = min;
                        } else {
                            branch.seps.push(min);
                        }
                        sum.add(&s);
                        branch.sums.push(s);
                        branch.children.push(node);
                    }
                    (Node::Branch(branch), sum, first)
                })
                .collect();
        }
        let mut tree = Self::with_sizes(sizes);
        if let Some((root, total, _)) = level.pop() {
            tree.root = root;
            tree.total = total;
        }
        if let Some((key, fp, value)) = unsorted {
            tree.insert(key, fp, value);
            for (key, fp, value) in items {
                tree.insert(key, fp, value);
            }
        }
        tree
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.total.count
    }

    /// Whether the tree has no entries.
    pub(crate) fn is_empty(&self) -> bool {
        self.total.count == 0
    }

    /// The payload stored under `key`.
    // The map API is complete for the tree's tests and tools; the store itself reads
    // payloads from its backend, not from here.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn get(&self, key: &[u8]) -> Option<&V> {
        let mut node = &self.root;
        loop {
            match node {
                Node::Leaf(leaf) => return leaf.vals.get(leaf.search(key).ok()?),
                Node::Branch(b) => node = b.children.get(b.route(key))?,
            }
        }
    }

    /// Inserts an entry or replaces the one under the same key; returns the old payload. `fp`
    /// is the entry's fingerprint. A replaced entry keeps its original key handle.
    pub(crate) fn insert(&mut self, key: Bytes, fp: Fingerprint, value: V) -> Option<V> {
        let (old, split) = self.root.insert(key, fp, value, &self.sizes);
        match &old {
            Some((old_fp, _)) => {
                self.total.fp ^= old_fp;
                self.total.fp ^= &fp;
            }
            None => self.total.add(&Sum::one(fp)),
        }
        if let Some((sep, right)) = split {
            let left = mem::replace(&mut self.root, Node::Leaf(Leaf::new()));
            let right_sum = right.sum();
            let mut left_sum = self.total;
            left_sum.sub(&right_sum);
            self.root = Node::Branch(Branch {
                seps: vec![sep],
                sums: vec![left_sum, right_sum],
                children: vec![left, right],
            });
        }
        old.map(|(_, value)| value)
    }

    /// Removes the entry under `key`, returning its fingerprint and payload.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<(Fingerprint, V)> {
        let (fp, value) = self.root.remove(key, &self.sizes)?;
        self.total.sub(&Sum::one(fp));
        // A merge can leave the root branch with a single child: shorten the tree.
        while let Node::Branch(b) = &mut self.root {
            if b.children.len() > 1 {
                break;
            }
            match b.children.pop() {
                Some(child) => self.root = child,
                None => self.root = Node::Leaf(Leaf::new()),
            }
        }
        if self.is_empty() {
            // Release the last leaf's arrays.
            self.root = Node::Leaf(Leaf::new());
        }
        Some((fp, value))
    }

    /// Number of keys strictly less than `key` (the rank `key` has or would have).
    pub(crate) fn rank(&self, key: &[u8]) -> usize {
        let mut rank = 0;
        let mut node = &self.root;
        loop {
            match node {
                Node::Leaf(leaf) => return rank + partition_point(&leaf.keys, |k| k < key),
                Node::Branch(b) => {
                    let c = b.route(key);
                    rank += b.sums[..c].iter().map(|s| s.count).sum::<usize>();
                    match b.children.get(c) {
                        Some(child) => node = child,
                        None => return rank,
                    }
                }
            }
        }
    }

    /// XOR of the fingerprints of the entries with rank in `[lo, hi)`, `hi` clamped to
    /// [`len`](Self::len). Starts from zero bytes, not [`Fingerprint::EMPTY`]: an empty span
    /// (`lo >= hi`) gives `[0; 32]`.
    pub(crate) fn span_fingerprint(&self, lo: usize, hi: usize) -> Fingerprint {
        let hi = hi.min(self.len());
        if lo >= hi {
            return ZERO;
        }
        self.prefix_fingerprint(lo)
            .xor(&self.prefix_fingerprint(hi))
    }

    /// XOR of the fingerprints of the `r` first entries.
    fn prefix_fingerprint(&self, mut r: usize) -> Fingerprint {
        if r == 0 {
            return ZERO;
        }
        if r >= self.len() {
            return self.total_fingerprint();
        }
        // Invariant: `r < node_sum.count`, and `acc ^ (prefix r of node)` is the answer.
        let mut acc = ZERO;
        let mut node = &self.root;
        let mut node_sum = self.total;
        loop {
            match node {
                Node::Leaf(leaf) => {
                    let r = r.min(leaf.len());
                    if r <= leaf.len() / 2 {
                        leaf.fps[..r].iter().for_each(|f| acc ^= f);
                    } else {
                        acc ^= &node_sum.fp;
                        leaf.fps[r..].iter().for_each(|f| acc ^= f);
                    }
                    return acc;
                }
                Node::Branch(b) => {
                    // Find the child holding rank `r`, XORing the shorter side's summaries.
                    let mut found = None;
                    if r < node_sum.count / 2 {
                        for (c, s) in b.sums.iter().enumerate() {
                            if r < s.count {
                                found = Some((c, r));
                                break;
                            }
                            r -= s.count;
                            acc ^= &s.fp;
                        }
                    } else {
                        acc ^= &node_sum.fp;
                        let mut rest = node_sum.count.saturating_sub(r);
                        for (c, s) in b.sums.iter().enumerate().rev() {
                            acc ^= &s.fp;
                            if rest <= s.count {
                                found = Some((c, s.count - rest));
                                break;
                            }
                            rest -= s.count;
                        }
                    }
                    let Some((c, rr)) = found else { return acc };
                    if rr == 0 {
                        return acc;
                    }
                    let (Some(child), Some(s)) = (b.children.get(c), b.sums.get(c)) else {
                        return acc;
                    };
                    node = child;
                    node_sum = *s;
                    r = rr;
                }
            }
        }
    }

    /// Key, fingerprint and payload of the entry at rank `i` (`None` if `i >= len`).
    pub(crate) fn select(&self, i: usize) -> Option<(&Bytes, &Fingerprint, &V)> {
        if i >= self.len() {
            return None;
        }
        let mut r = i;
        let mut node = &self.root;
        loop {
            match node {
                Node::Leaf(leaf) => return leaf.get(r),
                Node::Branch(b) => {
                    let (c, rr) = b.locate(r)?;
                    node = b.children.get(c)?;
                    r = rr;
                }
            }
        }
    }

    /// In-order iterator over the entries from rank `i` on (empty if `i >= len`), yielding key,
    /// fingerprint and payload. Lazy: O(log n) to start, amortised O(1) per step.
    // Used by the tests' model checks; the store reads entries from its backend.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn iter_from(
        &self,
        i: usize,
    ) -> impl Iterator<Item = (&Bytes, &Fingerprint, &V)> + '_ {
        let mut iter = Iter {
            stack: Vec::new(),
            leaf: None,
            pos: 0,
            remaining: self.len().saturating_sub(i),
        };
        if iter.remaining == 0 {
            return iter;
        }
        let mut r = i;
        let mut node = &self.root;
        loop {
            match node {
                Node::Leaf(leaf) => {
                    iter.leaf = Some(leaf);
                    iter.pos = r;
                    return iter;
                }
                Node::Branch(b) => {
                    let Some((c, child, rr)) = b
                        .locate(r)
                        .and_then(|(c, rr)| Some((c, b.children.get(c)?, rr)))
                    else {
                        return Iter::empty();
                    };
                    iter.stack.push((b, c));
                    node = child;
                    r = rr;
                }
            }
        }
    }

    /// XOR of all fingerprints, in O(1). Like [`span_fingerprint`](Self::span_fingerprint),
    /// zero bytes for an empty tree.
    pub(crate) fn total_fingerprint(&self) -> Fingerprint {
        self.total.fp
    }
}
