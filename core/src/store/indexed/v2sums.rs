//! Sync v2 range fingerprints from the chunk list.
//!
//! A v2 fingerprint (a sum of entry item hashes mod 2^256 with a count, `crate::v2`) cannot be
//! derived from the chunks' XOR fingerprints, so each chunk caches its own v2 sum once it has
//! been read, and every write to the chunk (put, remove, split, merge) drops it. A range's v2
//! fingerprint is then the sum of the cached sums of the chunks it covers, plus the parts of
//! at most two chunks at its bounds read from the backend (≤ [`CHUNK_MAX`] entries each):
//! O(n / 128) additions and two short reads once the document's chunks have been read, instead
//! of hashing every entry of the range each time.
//!
//! Why not persisted, nor kept in the Fenwick tree: a session sums the chunks of the ranges it
//! compares, which after the first round are cached, and a sum per chunk costs 48 bytes of
//! memory. Persisting them would change the chunk rows' format for a gain only on the first
//! sync after opening.
//!
//! [`CHUNK_MAX`]: super::chunks::CHUNK_MAX

use std::ops::Bound;

use super::{spans::scan_entries, Indexed};
use crate::{
    keys::NamespaceId,
    store::{Backend, StoreError},
    v2::{Fingerprint, ItemHash},
};

impl<B: Backend> Indexed<B> {
    /// The sync v2 fingerprint of the entries of `ns` whose suffix (`author ‖ key`) is in
    /// `[lower, upper)` (`None`: unbounded).
    pub fn v2_range_fingerprint(
        &mut self,
        ns: NamespaceId,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
    ) -> Result<Fingerprint, StoreError> {
        if let (Some(l), Some(u)) = (lower, upper) {
            if u <= l {
                return Ok(Fingerprint::default());
            }
        }
        let (first, last) = {
            let c = self.loaded(ns)?;
            let last = match upper {
                Some(u) => c.locate(u),
                None => c.count().saturating_sub(1),
            };
            (c.locate(lower.unwrap_or(&[])), last)
        };
        let mut fp = Fingerprint::default();
        for i in first..=last {
            let (start, end) = match self.trees.get(&ns) {
                Some(l) if i < l.chunks.count() => l.chunks.bounds(i),
                _ => return Err(StoreError::Backend("index not loaded".into())),
            };
            // The part of chunk `i` inside the range.
            let from = match lower {
                Some(l) if l > start.as_ref() => l.to_vec(),
                _ => start.to_vec(),
            };
            let to: Option<Vec<u8>> = match (upper, &end) {
                (Some(u), Some(e)) => Some(if u < e.as_ref() { u } else { e.as_ref() }.to_vec()),
                (Some(u), None) => Some(u.to_vec()),
                (None, e) => e.as_ref().map(|e| e.to_vec()),
            };
            if to.as_ref().is_some_and(|t| *t <= from) {
                continue;
            }
            let whole = from == start.as_ref() && to.as_deref() == end.as_deref();
            if whole {
                if let Some(sum) = self.trees.get(&ns).and_then(|l| l.chunks.v2(i)) {
                    fp = fp.combine(&sum);
                    continue;
                }
            }
            let sum = self.v2_read(ns, from, to)?;
            if whole {
                self.with_chunks(ns, |c| c.set_v2(i, sum));
            }
            fp = fp.combine(&sum);
        }
        Ok(fp)
    }

    /// The v2 fingerprint of the entries of `ns` in `[from, to)`, read from the backend.
    fn v2_read(
        &mut self,
        ns: NamespaceId,
        from: Vec<u8>,
        to: Option<Vec<u8>>,
    ) -> Result<Fingerprint, StoreError> {
        let lower = if from.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Included(from)
        };
        let upper = to.map_or(Bound::Unbounded, Bound::Excluded);
        let mut fp = Fingerprint::default();
        scan_entries(&mut self.backend, ns, lower, upper, |e| {
            fp.add(&ItemHash::of_entry(e.entry()))
        })?;
        Ok(fp)
    }
}
