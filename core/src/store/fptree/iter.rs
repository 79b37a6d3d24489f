//! The in-order walk of [`FpTree`](super::FpTree): a stack of branches above the current
//! leaf. Separate from the tree because it is the only code that holds borrowed paths into
//! it; starting one is `FpTree::iter_from`, in the tree's module.

use std::iter::FusedIterator;

use bytes::Bytes;

use super::node::{Branch, Leaf, Node};
use crate::ranger::Fingerprint;

/// The iterator of [`FpTree::iter_from`](super::FpTree::iter_from).
#[cfg_attr(not(test), allow(dead_code))]
pub(super) struct Iter<'a, V> {
    /// The branches above the current leaf, each with the index of the child being walked.
    pub(super) stack: Vec<(&'a Branch<V>, usize)>,
    pub(super) leaf: Option<&'a Leaf<V>>,
    /// Next index in `leaf`.
    pub(super) pos: usize,
    /// Entries left to yield.
    pub(super) remaining: usize,
}

#[cfg_attr(not(test), allow(dead_code))]
impl<V> Iter<'_, V> {
    pub(super) fn empty() -> Self {
        Iter {
            stack: Vec::new(),
            leaf: None,
            pos: 0,
            remaining: 0,
        }
    }
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (&'a Bytes, &'a Fingerprint, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.leaf.and_then(|leaf| leaf.get(self.pos)) {
                self.pos += 1;
                self.remaining = self.remaining.saturating_sub(1);
                return Some(item);
            }
            // Climb to the nearest branch with a next child, then down its leftmost path.
            self.leaf = None;
            let (branch, c) = loop {
                let (branch, c) = self.stack.last_mut()?;
                if *c + 1 < branch.children.len() {
                    *c += 1;
                    break (*branch, *c);
                }
                self.stack.pop();
            };
            let mut node = &branch.children[c];
            loop {
                match node {
                    Node::Leaf(leaf) => {
                        self.leaf = Some(leaf);
                        self.pos = 0;
                        break;
                    }
                    Node::Branch(b) => {
                        self.stack.push((b, 0));
                        match b.children.first() {
                            Some(child) => node = child,
                            None => break,
                        }
                    }
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<V> ExactSizeIterator for Iter<'_, V> {}

impl<V> FusedIterator for Iter<'_, V> {}
