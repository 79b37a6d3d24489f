//! Building a namespace's index from the backend, and resolving key ranges to rank spans.

use std::ops::Bound;

use bytes::Bytes;

use super::{memory::entry_bytes, BUILD_PAGE};
use crate::{
    entry::{RecordIdentifier, SignedEntry},
    keys::NamespaceId,
    ranger::Range,
    store::{fptree::FpTree, suffix_of, Backend, StoreError},
};

/// Builds the fingerprint tree of `ns` from the backend's entries, in suffix order, streaming
/// pages of [`BUILD_PAGE`] entries into `FpTree::from_sorted` (no copy of the namespace is
/// held besides the tree). A backend that scans out of order or outside the namespace is
/// reported as corrupt.
/// Also returns the tree's estimated heap bytes (see the `memory` module).
pub(super) fn build<B: Backend + ?Sized>(
    backend: &mut B,
    ns: NamespaceId,
) -> Result<(FpTree<()>, usize), StoreError> {
    let mut failure = None;
    let mut bytes = 0;
    // The previous suffix (for the order check and the next page's bound), in a reused buffer.
    let mut last: Option<Vec<u8>> = None;
    let mut page = Vec::<SignedEntry>::new().into_iter();
    let mut more = true;
    let items = std::iter::from_fn(|| loop {
        if let Some(e) = page.next() {
            let suffix = suffix_of(e.id());
            if e.namespace() != ns || last.as_deref().is_some_and(|l| l >= suffix) {
                failure = Some(StoreError::Corrupt(
                    "backend scan is not in ascending suffix order within the namespace".into(),
                ));
                return None;
            }
            let prev = last.get_or_insert_with(Vec::new);
            prev.clear();
            prev.extend_from_slice(suffix);
            bytes += entry_bytes(suffix.len());
            return Some((Bytes::copy_from_slice(suffix), e.fingerprint(), ()));
        }
        if !more {
            return None;
        }
        let lower = last.clone().map_or(Bound::Unbounded, Bound::Excluded);
        match backend.scan_author_key(ns, lower, Bound::Unbounded, false, BUILD_PAGE) {
            Ok(next) => {
                more = next.len() == BUILD_PAGE;
                if next.is_empty() {
                    return None;
                }
                page = next.into_iter();
            }
            Err(e) => {
                failure = Some(e);
                return None;
            }
        }
    });
    let tree = FpTree::from_sorted(items);
    match failure {
        Some(e) => Err(e),
        None => Ok((tree, bytes)),
    }
}

/// A range resolved to index ranks within one namespace's sorted entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RankSpans {
    /// Up to two rank intervals `[a, b)`, in ascending order.
    spans: [(usize, usize); 2],
    /// Rank of the first entry at or after `x` (for cyclic offsets).
    start: usize,
}

impl RankSpans {
    /// Resolves `range` using `rank` (number of suffixes strictly below a given suffix).
    pub(crate) fn new(
        ns: NamespaceId,
        range: &Range,
        total: usize,
        rank: impl Fn(&[u8]) -> usize,
    ) -> Self {
        let pos = |id: &RecordIdentifier| match id.namespace().cmp(&ns) {
            std::cmp::Ordering::Less => 0,
            std::cmp::Ordering::Greater => total,
            std::cmp::Ordering::Equal => rank(suffix_of(id)),
        };
        let rx = pos(range.x());
        let spans = match range.x().cmp(range.y()) {
            std::cmp::Ordering::Equal => [(0, total), (total, total)],
            std::cmp::Ordering::Less => {
                let ry = pos(range.y());
                [(rx, ry.max(rx)), (total, total)]
            }
            std::cmp::Ordering::Greater => {
                let ry = pos(range.y());
                [(0, ry.min(rx)), (rx, total)]
            }
        };
        Self { spans, start: rx }
    }

    /// Number of entries in the range.
    pub(crate) fn len(&self) -> usize {
        self.spans.iter().map(|(a, b)| b - a).sum()
    }

    /// The non-empty rank intervals, ascending.
    pub(crate) fn intervals(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.spans.iter().copied().filter(|(a, b)| a < b)
    }

    /// The non-empty rank intervals in range order: from the first entry at or after `x`
    /// (rank `start`) to the end of its interval, then on, wrapping to the lowest rank.
    pub(crate) fn ordered(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let start = self.start;
        let contains = move |(a, b): (usize, usize)| (a..b).contains(&start);
        // The part of the range at or after `start`, ascending...
        let from_start = self
            .intervals()
            .filter(move |&(a, b)| contains((a, b)) || a >= start)
            .map(move |(a, b)| (a.max(start), b));
        // ...then the part below it, ascending.
        let below = self
            .intervals()
            .filter(move |&(a, _)| a < start)
            .map(move |(a, b)| (a, b.min(start)));
        from_start.chain(below)
    }

    /// Global rank of the entry at cyclic `offset` from the first entry at or after `x`.
    pub(crate) fn cyclic_rank(&self, offset: usize) -> Option<usize> {
        let len = self.len();
        if len == 0 {
            return None;
        }
        let mut rest = offset % len;
        for (a, b) in self.ordered() {
            if rest < b - a {
                return Some(a + rest);
            }
            rest -= b - a;
        }
        debug_assert!(false, "offset within len always lands");
        None
    }
}
