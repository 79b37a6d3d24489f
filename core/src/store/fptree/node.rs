//! The nodes of [`FpTree`](super::FpTree) and their local operations: searching a node,
//! inserting into and removing from a leaf, splitting full nodes, and restoring a node's
//! minimum size by borrowing from or merging with a sibling.
//!
//! Kept apart from the tree's API because everything here touches one node (or two siblings)
//! and its parent's summaries, never the whole tree: the invariants of the module docs of
//! `fptree` (sizes, separators, summaries) are established here, one node at a time.

use std::mem;

use bytes::Bytes;

use crate::ranger::Fingerprint;

/// Most entries in a leaf.
pub(super) const LEAF_MAX: usize = 64;
/// Most children of a branch.
pub(super) const BRANCH_MAX: usize = 64;

/// The XOR identity: the fingerprint of an empty span (deliberately not
/// [`Fingerprint::EMPTY`]).
pub(super) const ZERO: Fingerprint = Fingerprint([0; 32]);

/// Node size bounds. Fixed in production; tests shrink them to exercise deep trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sizes {
    pub(super) leaf_max: usize,
    pub(super) leaf_min: usize,
    pub(super) branch_max: usize,
    pub(super) branch_min: usize,
}

impl Sizes {
    pub(super) const DEFAULT: Sizes = Sizes::new(LEAF_MAX, BRANCH_MAX);

    /// Bounds for the given maxima. A full leaf is split in halves before an insert, so
    /// `leaf_min = leaf_max / 2`; an overfull branch (`branch_max + 1` children) is split in
    /// halves after one, so `branch_min = (branch_max + 1) / 2`. Either way an underfull node
    /// (`min - 1`) merged with a minimal sibling (`min`) fits in `max`.
    pub(super) const fn new(leaf_max: usize, branch_max: usize) -> Self {
        assert!(leaf_max >= 2 && branch_max >= 3, "node sizes too small");
        Sizes {
            leaf_max,
            leaf_min: leaf_max / 2,
            branch_max,
            branch_min: branch_max.div_ceil(2),
        }
    }
}

/// `keys.partition_point(pred)` for sorted keys (`pred` true on a prefix), tuned for keys that
/// live in their own heap buffers: a plain binary search waits for one cache miss (the handle,
/// then the bytes) per step. This first tests seven evenly spaced keys with independent
/// comparisons, whose misses the CPU overlaps, then binary-searches the eighth they bound.
pub(super) fn partition_point(keys: &[Bytes], pred: impl Fn(&[u8]) -> bool) -> usize {
    const FANOUT: usize = 8;
    if keys.len() < 2 * FANOUT {
        return keys.partition_point(|k| pred(k));
    }
    let step = keys.len() / FANOUT;
    // Samples `keys[j * step - 1]`: `below` of them satisfy `pred`.
    let below = (1..FANOUT)
        .map(|j| usize::from(pred(&keys[j * step - 1])))
        .sum::<usize>();
    let start = below * step;
    let end = if below + 1 == FANOUT {
        keys.len()
    } else {
        start + step - 1
    };
    start + keys[start..end].partition_point(|k| pred(k))
}

/// Cached summary of a subtree: its entry count and the XOR of its fingerprints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sum {
    pub(super) count: usize,
    pub(super) fp: Fingerprint,
}

impl Sum {
    pub(super) const ZERO: Sum = Sum { count: 0, fp: ZERO };

    pub(super) fn one(fp: Fingerprint) -> Sum {
        Sum { count: 1, fp }
    }

    pub(super) fn add(&mut self, other: &Sum) {
        self.count += other.count;
        self.fp ^= &other.fp;
    }

    pub(super) fn sub(&mut self, other: &Sum) {
        self.count -= other.count;
        self.fp ^= &other.fp;
    }
}

/// A leaf: sorted entries as parallel arrays of equal length.
#[derive(Clone)]
pub(super) struct Leaf<V> {
    pub(super) keys: Vec<Bytes>,
    pub(super) fps: Vec<Fingerprint>,
    pub(super) vals: Vec<V>,
}

impl<V> Leaf<V> {
    pub(super) fn new() -> Self {
        Leaf {
            keys: Vec::new(),
            fps: Vec::new(),
            vals: Vec::new(),
        }
    }

    pub(super) fn with_capacity(n: usize) -> Self {
        Leaf {
            keys: Vec::with_capacity(n),
            fps: Vec::with_capacity(n),
            vals: Vec::with_capacity(n),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(super) fn search(&self, key: &[u8]) -> Result<usize, usize> {
        let i = partition_point(&self.keys, |k| k < key);
        match self.keys.get(i) {
            Some(k) if k[..] == *key => Ok(i),
            _ => Err(i),
        }
    }

    pub(super) fn get(&self, i: usize) -> Option<(&Bytes, &Fingerprint, &V)> {
        Some((self.keys.get(i)?, self.fps.get(i)?, self.vals.get(i)?))
    }

    pub(super) fn sum(&self) -> Sum {
        let mut fp = ZERO;
        for f in &self.fps {
            fp ^= f;
        }
        Sum {
            count: self.len(),
            fp,
        }
    }

    /// Makes room for one more entry, never growing an array's capacity past `max` slots
    /// (plain `Vec` growth could double a 40-slot array to 80).
    pub(super) fn reserve_one(&mut self, max: usize) {
        fn grow<T>(v: &mut Vec<T>, max: usize) {
            let len = v.len();
            if len == v.capacity() {
                let target = (len * 2).max(4).min(max).max(len + 1);
                v.reserve_exact(target - len);
            }
        }
        grow(&mut self.keys, max);
        grow(&mut self.fps, max);
        grow(&mut self.vals, max);
    }

    pub(super) fn insert_at(
        &mut self,
        i: usize,
        key: Bytes,
        fp: Fingerprint,
        value: V,
        max: usize,
    ) {
        self.reserve_one(max);
        self.keys.insert(i, key);
        self.fps.insert(i, fp);
        self.vals.insert(i, value);
    }

    pub(super) fn remove_at(&mut self, i: usize) -> (Bytes, Fingerprint, V) {
        (self.keys.remove(i), self.fps.remove(i), self.vals.remove(i))
    }

    pub(super) fn push(&mut self, key: Bytes, fp: Fingerprint, value: V, max: usize) {
        self.reserve_one(max);
        self.keys.push(key);
        self.fps.push(fp);
        self.vals.push(value);
    }

    pub(super) fn pop(&mut self) -> Option<(Bytes, Fingerprint, V)> {
        if self.keys.is_empty() {
            return None;
        }
        Some((self.keys.pop()?, self.fps.pop()?, self.vals.pop()?))
    }

    pub(super) fn shrink_to_fit(&mut self) {
        self.keys.shrink_to_fit();
        self.fps.shrink_to_fit();
        self.vals.shrink_to_fit();
    }

    /// Splits off entries `[at..]` into a new leaf.
    pub(super) fn split_off(&mut self, at: usize) -> Leaf<V> {
        Leaf {
            keys: self.keys.split_off(at),
            fps: self.fps.split_off(at),
            vals: self.vals.split_off(at),
        }
    }

    /// Moves all of `other`'s entries (all greater than ours) to our end.
    pub(super) fn append(&mut self, other: &mut Leaf<V>) {
        // Exact, so a merged leaf's arrays stay within `leaf_max` slots.
        self.keys.reserve_exact(other.keys.len());
        self.fps.reserve_exact(other.fps.len());
        self.vals.reserve_exact(other.vals.len());
        self.keys.append(&mut other.keys);
        self.fps.append(&mut other.fps);
        self.vals.append(&mut other.vals);
    }

    /// Moves our last `n` entries to the front of `right`.
    pub(super) fn move_tail_to(&mut self, n: usize, right: &mut Leaf<V>) {
        let at = self.len().saturating_sub(n);
        let mut tail = Leaf::with_capacity(self.len() - at + right.len());
        tail.keys.extend(self.keys.drain(at..));
        tail.fps.extend(self.fps.drain(at..));
        tail.vals.extend(self.vals.drain(at..));
        tail.append(right);
        *right = tail;
    }
}

/// A branch: `children.len() == sums.len() == seps.len() + 1`.
#[derive(Clone)]
pub(super) struct Branch<V> {
    /// `seps[i]` is `>` every key of `children[i]` and `<=` every key of `children[i + 1]`.
    pub(super) seps: Vec<Bytes>,
    /// Summary of each child.
    pub(super) sums: Vec<Sum>,
    pub(super) children: Vec<Node<V>>,
}

impl<V> Branch<V> {
    /// The child whose key interval contains `key`.
    pub(super) fn route(&self, key: &[u8]) -> usize {
        partition_point(&self.seps, |s| s <= key)
    }

    /// The child holding the entry of rank `r` (within this branch) and the rank inside it.
    pub(super) fn locate(&self, mut r: usize) -> Option<(usize, usize)> {
        for (c, s) in self.sums.iter().enumerate() {
            if r < s.count {
                return Some((c, r));
            }
            r -= s.count;
        }
        None
    }

    /// Moves the last slot of child `i` to the front of child `i + 1`.
    pub(super) fn shift_right(&mut self, i: usize, sizes: &Sizes) {
        let (a, b) = self.children.split_at_mut(i + 1);
        let (Some(left), Some(right), Some(sep)) =
            (a.last_mut(), b.first_mut(), self.seps.get_mut(i))
        else {
            return;
        };
        let moved = match (left, right) {
            (Node::Leaf(l), Node::Leaf(r)) => {
                let Some((k, f, v)) = l.pop() else { return };
                *sep = k.clone();
                r.insert_at(0, k, f, v, sizes.leaf_max);
                Sum::one(f)
            }
            (Node::Branch(l), Node::Branch(r)) => {
                if l.children.len() < 2 {
                    return;
                }
                let (Some(child), Some(s), Some(lsep)) =
                    (l.children.pop(), l.sums.pop(), l.seps.pop())
                else {
                    return;
                };
                r.seps.insert(0, mem::replace(sep, lsep));
                r.sums.insert(0, s);
                r.children.insert(0, child);
                s
            }
            _ => return,
        };
        self.sums[i].sub(&moved);
        self.sums[i + 1].add(&moved);
    }

    /// Moves the first slot of child `i + 1` to the end of child `i`.
    pub(super) fn shift_left(&mut self, i: usize, sizes: &Sizes) {
        let (a, b) = self.children.split_at_mut(i + 1);
        let (Some(left), Some(right), Some(sep)) =
            (a.last_mut(), b.first_mut(), self.seps.get_mut(i))
        else {
            return;
        };
        let moved = match (left, right) {
            (Node::Leaf(l), Node::Leaf(r)) => {
                if r.len() < 2 {
                    return;
                }
                let (k, f, v) = r.remove_at(0);
                l.push(k, f, v, sizes.leaf_max);
                *sep = r.keys[0].clone();
                Sum::one(f)
            }
            (Node::Branch(l), Node::Branch(r)) => {
                if r.children.len() < 2 {
                    return;
                }
                let (child, s, rsep) = (r.children.remove(0), r.sums.remove(0), r.seps.remove(0));
                l.seps.push(mem::replace(sep, rsep));
                l.sums.push(s);
                l.children.push(child);
                s
            }
            _ => return,
        };
        self.sums[i + 1].sub(&moved);
        self.sums[i].add(&moved);
    }

    /// Merges child `i + 1` into child `i`.
    pub(super) fn merge(&mut self, i: usize) {
        let (a, b) = self.children.split_at_mut(i + 1);
        let (Some(left), Some(right), Some(sep)) = (a.last_mut(), b.first_mut(), self.seps.get(i))
        else {
            return;
        };
        match (left, right) {
            (Node::Leaf(l), Node::Leaf(r)) => l.append(r),
            (Node::Branch(l), Node::Branch(r)) => {
                l.seps.push(sep.clone());
                l.seps.append(&mut r.seps);
                l.sums.append(&mut r.sums);
                l.children.append(&mut r.children);
            }
            _ => return,
        }
        self.children.remove(i + 1);
        self.seps.remove(i);
        let s = self.sums.remove(i + 1);
        self.sums[i].add(&s);
    }

    /// Restores child `c`'s minimum size after a removal: borrow a slot from a sibling that
    /// has one to spare, else merge with a sibling.
    pub(super) fn rebalance(&mut self, c: usize, sizes: &Sizes) {
        let spare = |n: Option<&Node<V>>| n.is_some_and(|n| n.len() > n.min_len(sizes));
        if c > 0 && spare(self.children.get(c - 1)) {
            self.shift_right(c - 1, sizes);
        } else if spare(self.children.get(c + 1)) {
            self.shift_left(c, sizes);
        } else if c > 0 {
            self.merge(c - 1);
        } else if c + 1 < self.children.len() {
            self.merge(c);
        }
    }
}

/// A node of the tree.
#[derive(Clone)]
pub(super) enum Node<V> {
    Leaf(Leaf<V>),
    Branch(Branch<V>),
}

/// What an insert below a node reports to its parent: the replaced fingerprint and payload,
/// and the new right sibling (with its separator) if the node split.
pub(super) type Inserted<V> = (Option<(Fingerprint, V)>, Option<(Bytes, Node<V>)>);

impl<V> Node<V> {
    /// Number of slots: entries of a leaf, children of a branch.
    pub(super) fn len(&self) -> usize {
        match self {
            Node::Leaf(l) => l.len(),
            Node::Branch(b) => b.children.len(),
        }
    }

    pub(super) fn min_len(&self, sizes: &Sizes) -> usize {
        match self {
            Node::Leaf(_) => sizes.leaf_min,
            Node::Branch(_) => sizes.branch_min,
        }
    }

    /// Recomputes the summary from this node's own slots (not from below).
    pub(super) fn sum(&self) -> Sum {
        match self {
            Node::Leaf(l) => l.sum(),
            Node::Branch(b) => b.sums.iter().fold(Sum::ZERO, |mut acc, s| {
                acc.add(s);
                acc
            }),
        }
    }

    /// Inserts or replaces below this node; one recursion level per tree level.
    pub(super) fn insert(
        &mut self,
        key: Bytes,
        fp: Fingerprint,
        value: V,
        sizes: &Sizes,
    ) -> Inserted<V> {
        match self {
            Node::Leaf(leaf) => match leaf.search(&key) {
                Ok(i) => {
                    let old_fp = mem::replace(&mut leaf.fps[i], fp);
                    let old_val = mem::replace(&mut leaf.vals[i], value);
                    (Some((old_fp, old_val)), None)
                }
                Err(i) if leaf.len() < sizes.leaf_max => {
                    leaf.insert_at(i, key, fp, value, sizes.leaf_max);
                    (None, None)
                }
                Err(i) => {
                    // Split before inserting so no leaf array ever outgrows `leaf_max`.
                    let mid = leaf.len() / 2;
                    let mut right = leaf.split_off(mid);
                    if i <= mid {
                        leaf.insert_at(i, key, fp, value, sizes.leaf_max);
                    } else {
                        right.insert_at(i - mid, key, fp, value, sizes.leaf_max);
                        // Ascending inserts never come back to the left half: don't leave it
                        // with half its slots empty. (Descending ones leave the right half
                        // exact already.)
                        leaf.shrink_to_fit();
                    }
                    let sep = right.keys[0].clone();
                    (None, Some((sep, Node::Leaf(right))))
                }
            },
            Node::Branch(b) => {
                let c = b.route(&key);
                let (old, split) = b.children[c].insert(key, fp, value, sizes);
                let s = &mut b.sums[c];
                match &old {
                    Some((old_fp, _)) => {
                        s.fp ^= old_fp;
                        s.fp ^= &fp;
                    }
                    None => s.add(&Sum::one(fp)),
                }
                let Some((sep, right)) = split else {
                    return (old, None);
                };
                let right_sum = right.sum();
                b.sums[c].sub(&right_sum);
                b.sums.insert(c + 1, right_sum);
                b.children.insert(c + 1, right);
                b.seps.insert(c, sep);
                if b.children.len() <= sizes.branch_max {
                    return (old, None);
                }
                let mid = b.children.len() / 2;
                let children = b.children.split_off(mid);
                let sums = b.sums.split_off(mid);
                let mut seps = b.seps.split_off(mid - 1);
                let up = seps.remove(0);
                // The arrays briefly held `branch_max + 1` slots and may have doubled.
                b.children.shrink_to(sizes.branch_max + 1);
                b.sums.shrink_to(sizes.branch_max + 1);
                b.seps.shrink_to(sizes.branch_max);
                let right = Branch {
                    seps,
                    sums,
                    children,
                };
                (old, Some((up, Node::Branch(right))))
            }
        }
    }

    /// Removes `key` below this node, rebalancing children that become underfull; one
    /// recursion level per tree level.
    pub(super) fn remove(&mut self, key: &[u8], sizes: &Sizes) -> Option<(Fingerprint, V)> {
        match self {
            Node::Leaf(leaf) => {
                let i = leaf.search(key).ok()?;
                let (_, fp, value) = leaf.remove_at(i);
                Some((fp, value))
            }
            Node::Branch(b) => {
                let c = b.route(key);
                let (fp, value) = b.children[c].remove(key, sizes)?;
                b.sums[c].sub(&Sum::one(fp));
                let child = &b.children[c];
                if child.len() < child.min_len(sizes) {
                    b.rebalance(c, sizes);
                }
                Some((fp, value))
            }
        }
    }
}
