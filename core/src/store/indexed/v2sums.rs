//! Sync v2 range fingerprints from the chunk list.
//!
//! A v2 fingerprint (a sum of entry item hashes mod 2^256 with a count, `crate::v2`) cannot be
//! derived from the chunks' XOR fingerprints, so each chunk caches its own v2 sum once it has
//! been read, and every write to the chunk (put, remove, split, merge) drops it. A range's v2
//! fingerprint is then the sum of the cached sums of the chunks it covers, plus the parts of
//! at most two chunks at its bounds read from the backend (≤ [`CHUNK_MAX`] entries each):
//! O(n / 128) additions and two short reads once the document's chunks have been read, instead
//! of hashing every entry of the range each time. Ranges asked for together
//! ([`Indexed::v2_range_fingerprints`]: a split's sub-ranges, a turn's parts) share the chunk
//! at a common bound: one read, the other side being the chunk's sum less it (W8's shape,
//! 1,000,000 entries and 100 differences: 439,000 entries read per sync → 253,000).
//!
//! Why not persisted, nor kept in the Fenwick tree: a session sums the chunks of the ranges it
//! compares, which after the first round are cached, and a sum per chunk costs 48 bytes of
//! memory. Persisting them would change the chunk rows' format for a gain only on the first
//! sync after opening.
//!
//! In a namespace of at most [`V2_ITEMS_MAX`] entries a chunk keeps, with its sum, the item
//! hashes it was summed from (32 bytes per entry, counted in the index's memory and dropped
//! when the index folds the namespace, as expanded trees are): a rateless IBLT over the whole
//! document then costs a pass over memory ([`Indexed::v2_item_hashes`]), and the entries of
//! the items it decodes are read from the chunks that hold them only
//! ([`Indexed::v2_entries_with_items`]).
//!
//! [`CHUNK_MAX`]: super::chunks::CHUNK_MAX

use std::collections::BTreeSet;

use super::{
    spans::{scan_entries, suffix_bounds},
    Indexed,
};
use crate::{
    entry::SignedEntry,
    keys::NamespaceId,
    store::{Backend, StoreError},
    v2::{riblt::Item, Fingerprint, ItemHash},
};

/// Namespaces of at most this many entries keep their chunks' item hashes with the chunks'
/// v2 sums (32 bytes per entry, within the index's memory budget, dropped when it folds),
/// so that a rateless IBLT over the document costs a pass over memory instead of reading
/// every entry back. Larger documents reconcile by ranges, which need only the sums.
pub const V2_ITEMS_MAX: u64 = 1 << 17;

/// A range of suffixes `[lower, upper)` (`None`: unbounded).
pub type SuffixRange<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// The sum of the entries of chunk `chunk` below `key`, where a range ended inside it.
#[derive(Debug)]
struct Carry {
    chunk: usize,
    key: Vec<u8>,
    below: Fingerprint,
}

impl<B: Backend> Indexed<B> {
    /// The sync v2 fingerprint of the entries of `ns` whose suffix (`author ‖ key`) is in
    /// `[lower, upper)` (`None`: unbounded).
    pub fn v2_range_fingerprint(
        &mut self,
        ns: NamespaceId,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
    ) -> Result<Fingerprint, StoreError> {
        let fp = self.v2_fingerprint_carried(ns, lower, upper, &mut None)?;
        // Item hashes kept above count against the budget.
        self.enforce(Some(ns));
        Ok(fp)
    }

    /// [`v2_range_fingerprint`](Self::v2_range_fingerprint) of each of `ranges` (ascending and
    /// disjoint, as the parts of a turn or the sub-ranges of a split are).
    ///
    /// Where one range ends inside a chunk and the next starts at that bound, the chunk is
    /// read once: the first range's part of it is read, and the next range's part is the
    /// chunk's cached sum minus it. A split into 16 sub-ranges read 32 partial chunks, now 17.
    pub fn v2_range_fingerprints(
        &mut self,
        ns: NamespaceId,
        ranges: &[SuffixRange<'_>],
    ) -> Result<Vec<Fingerprint>, StoreError> {
        let mut carry = None;
        let fps = ranges
            .iter()
            .map(|(lower, upper)| self.v2_fingerprint_carried(ns, *lower, *upper, &mut carry))
            .collect::<Result<Vec<_>, _>>()?;
        self.enforce(Some(ns));
        Ok(fps)
    }

    /// One range's fingerprint. `carry` holds, from the range before, the sum of the part of
    /// a chunk below the bound that range ended at inside it; this call uses it if its range
    /// starts at that bound, and leaves the same for the bound it ends at.
    fn v2_fingerprint_carried(
        &mut self,
        ns: NamespaceId,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
        carry: &mut Option<Carry>,
    ) -> Result<Fingerprint, StoreError> {
        let taken = carry.take();
        if let (Some(l), Some(u)) = (lower, upper) {
            if u <= l {
                return Ok(Fingerprint::default());
            }
        }
        let (first, last, keep) = {
            let c = self.loaded(ns)?;
            let last = match upper {
                Some(u) => c.locate(u),
                None => c.count().saturating_sub(1),
            };
            let keep = c.len() as u64 <= V2_ITEMS_MAX;
            (c.locate(lower.unwrap_or(&[])), last, keep)
        };
        let mut fp = Fingerprint::default();
        for i in first..=last {
            let (start, end) = self.chunk_bounds(ns, i)?;
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
            let cached = self.trees.get(&ns).and_then(|l| l.chunks.v2(i));
            let whole = from == start.as_ref() && to.as_deref() == end.as_deref();
            // The sum of chunk `i` below `from`, if known: zero from its start, or carried.
            let below = if from == start.as_ref() {
                Some(Fingerprint::default())
            } else {
                taken
                    .as_ref()
                    .filter(|c| c.chunk == i && c.key == from)
                    .map(|c| c.below)
            };
            let sum = match (cached, below) {
                (Some(sum), _) if whole => sum,
                // Up to the chunk's end: the chunk less what lies below.
                (Some(sum), Some(below)) if to.as_deref() == end.as_deref() => {
                    sum.difference(&below)
                }
                _ => {
                    let (sum, items) = self.v2_read(ns, &from, to.as_deref(), whole && keep)?;
                    if whole {
                        self.with_chunks(ns, |c| c.set_v2(i, sum, items));
                    }
                    sum
                }
            };
            // The range ends inside this chunk: what lies below its end is known if what lay
            // below its start was.
            if let (Some(below), Some(t)) = (below, &to) {
                if end.as_deref() != Some(t.as_slice()) {
                    *carry = Some(Carry {
                        chunk: i,
                        key: t.clone(),
                        below: below.combine(&sum),
                    });
                }
            }
            fp = fp.combine(&sum);
        }
        Ok(fp)
    }

    /// The item hash of every entry of `ns`, chunk by chunk (in no particular order within a
    /// chunk): the cached hashes of the chunks that have them, the others read (and cached if
    /// the namespace holds at most [`V2_ITEMS_MAX`] entries).
    pub fn v2_item_hashes(&mut self, ns: NamespaceId) -> Result<Vec<Item>, StoreError> {
        let (m, keep) = {
            let c = self.loaded(ns)?;
            (c.count(), c.len() as u64 <= V2_ITEMS_MAX)
        };
        let mut out = Vec::with_capacity(self.loaded(ns)?.len());
        for i in 0..m {
            if let Some(items) = self.cached_items(ns, i) {
                out.extend_from_slice(items);
                continue;
            }
            let (start, end) = self.chunk_bounds(ns, i)?;
            let (sum, items) = self.v2_read(ns, &start, end.as_deref(), true)?;
            let items = items.unwrap_or_default();
            out.extend_from_slice(&items);
            self.with_chunks(ns, |c| c.set_v2(i, sum, keep.then_some(items)));
        }
        self.enforce(Some(ns));
        Ok(out)
    }

    /// The entries of `ns` whose item hashes are in `wanted`, in key order: one pass over the
    /// chunks' cached hashes, reading only the chunks that hold a wanted one (and the chunks
    /// whose hashes are not cached).
    pub fn v2_entries_with_items(
        &mut self,
        ns: NamespaceId,
        wanted: &BTreeSet<Item>,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        let mut out = Vec::new();
        if wanted.is_empty() {
            return Ok(out);
        }
        let m = self.loaded(ns)?.count();
        for i in 0..m {
            if let Some(items) = self.cached_items(ns, i) {
                if !items.iter().any(|h| wanted.contains(h)) {
                    continue;
                }
            }
            let (start, end) = self.chunk_bounds(ns, i)?;
            let (lower, upper) = suffix_bounds(&start, end.as_deref());
            scan_entries(&mut self.backend, ns, lower, upper, |e| {
                if wanted.contains(&ItemHash::of_entry(e.entry()).0) {
                    out.push(e.clone());
                }
            })?;
            if out.len() >= wanted.len() {
                break;
            }
        }
        Ok(out)
    }

    /// The item hashes kept for chunk `i` of `ns`, if any.
    fn cached_items(&self, ns: NamespaceId, i: usize) -> Option<&[Item]> {
        self.trees.get(&ns).and_then(|l| l.chunks.v2_items(i))
    }

    /// Start (inclusive) and end (exclusive; `None`: unbounded) of chunk `i` of `ns`.
    fn chunk_bounds(
        &self,
        ns: NamespaceId,
        i: usize,
    ) -> Result<(bytes::Bytes, Option<bytes::Bytes>), StoreError> {
        match self.trees.get(&ns) {
            Some(l) if i < l.chunks.count() => Ok(l.chunks.bounds(i)),
            _ => Err(StoreError::Backend("index not loaded".into())),
        }
    }

    /// The v2 fingerprint of the entries of `ns` in `[from, to)`, read from the backend, and
    /// their item hashes if `keep`.
    fn v2_read(
        &mut self,
        ns: NamespaceId,
        from: &[u8],
        to: Option<&[u8]>,
        keep: bool,
    ) -> Result<(Fingerprint, Option<Vec<Item>>), StoreError> {
        let (lower, upper) = suffix_bounds(from, to);
        let mut fp = Fingerprint::default();
        let mut items = keep.then(Vec::new);
        scan_entries(&mut self.backend, ns, lower, upper, |e| {
            let h = ItemHash::of_entry(e.entry());
            fp.add(&h);
            if let Some(items) = &mut items {
                items.push(h.0);
            }
        })?;
        Ok((fp, items))
    }
}
