//! Building a namespace's index from the backend, and resolving key ranges to rank spans.

use std::ops::{Bound, RangeBounds};

use bytes::Bytes;

use super::{
    chunks::{Chunks, ChunksBuilder},
    BUILD_PAGE,
};
use crate::{
    entry::{RecordIdentifier, SignedEntry},
    keys::NamespaceId,
    ranger::{Fingerprint, Range},
    store::{suffix_of, Backend, StoreError},
};

/// Builds the chunk list of `ns` from every entry of the backend, in suffix order (see
/// [`scan`]).
pub(super) fn build<B: Backend + ?Sized>(
    backend: &mut B,
    ns: NamespaceId,
) -> Result<Chunks, StoreError> {
    let mut builder = ChunksBuilder::new();
    scan(
        backend,
        ns,
        Bound::Unbounded,
        Bound::Unbounded,
        |key, fp| builder.push(key, fp),
    )?;
    Ok(builder.finish())
}

/// Feeds the suffix and fingerprint of every entry of `ns` between `lower` and `upper` to
/// `f`, in ascending order ([`scan_entries`]).
pub(super) fn scan<B: Backend + ?Sized>(
    backend: &mut B,
    ns: NamespaceId,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    mut f: impl FnMut(Bytes, Fingerprint),
) -> Result<(), StoreError> {
    scan_entries(backend, ns, lower, upper, |e| {
        f(Bytes::copy_from_slice(suffix_of(e.id())), e.fingerprint())
    })
}

/// The backend bounds of the suffixes in `[from, to)`: an empty `from` is the first suffix,
/// `None` for `to` the end.
pub(super) fn suffix_bounds(from: &[u8], to: Option<&[u8]>) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let lower = if from.is_empty() {
        Bound::Unbounded
    } else {
        Bound::Included(from.to_vec())
    };
    (
        lower,
        to.map_or(Bound::Unbounded, |t| Bound::Excluded(t.to_vec())),
    )
}

/// Feeds every entry of `ns` between `lower` and `upper` to `f`, in ascending order, reading
/// pages of [`BUILD_PAGE`] entries. A backend that scans out of order, outside the namespace
/// or outside the bounds is reported as corrupt.
pub(super) fn scan_entries<B: Backend + ?Sized>(
    backend: &mut B,
    ns: NamespaceId,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    mut f: impl FnMut(&SignedEntry),
) -> Result<(), StoreError> {
    let corrupt = || {
        StoreError::Corrupt(
            "backend scan is not in ascending suffix order within the namespace".into(),
        )
    };
    let mut from = lower.clone();
    loop {
        let page = backend.scan_author_key(ns, from.clone(), upper.clone(), false, BUILD_PAGE)?;
        let bounds = (
            from.as_ref().map(Vec::as_slice),
            upper.as_ref().map(Vec::as_slice),
        );
        let mut last: Option<&[u8]> = None;
        for e in &page {
            let suffix = suffix_of(e.id());
            if e.namespace() != ns
                || last.is_some_and(|l| l >= suffix)
                || !RangeBounds::<[u8]>::contains(&bounds, suffix)
            {
                return Err(corrupt());
            }
            last = Some(suffix);
            f(e);
        }
        match last {
            Some(last) if page.len() == BUILD_PAGE => from = Bound::Excluded(last.to_vec()),
            _ => return Ok(()),
        }
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
        mut rank: impl FnMut(&[u8]) -> Result<usize, StoreError>,
    ) -> Result<Self, StoreError> {
        let mut pos = |id: &RecordIdentifier| match id.namespace().cmp(&ns) {
            std::cmp::Ordering::Less => Ok(0),
            std::cmp::Ordering::Greater => Ok(total),
            std::cmp::Ordering::Equal => rank(suffix_of(id)),
        };
        let rx = pos(range.x())?;
        let spans = match range.x().cmp(range.y()) {
            std::cmp::Ordering::Equal => [(0, total), (total, total)],
            std::cmp::Ordering::Less => {
                let ry = pos(range.y())?;
                [(rx, ry.max(rx)), (total, total)]
            }
            std::cmp::Ordering::Greater => {
                let ry = pos(range.y())?;
                [(0, ry.min(rx)), (rx, total)]
            }
        };
        Ok(Self { spans, start: rx })
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
