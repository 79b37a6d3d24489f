//! A namespace's index as a list of chunks: the entries cut into consecutive key ranges of a
//! about a hundred entries, each with its entry count and fingerprint, and each either *folded*
//! (only that summary) or *expanded* (an [`FpTree`] of its entries).
//!
//! # Why chunks
//!
//! A tree of every entry costs ~160 bytes per entry and O(n) to build after the store is
//! opened: 2.6 s for the first sync with a difference at 1,000,000 entries. The chunk list is
//! what the backend persists next to the namespace's summary (a row per chunk: its lower
//! bound, count and fingerprint), so after opening, a namespace's index is its chunk list
//! (O(n / 128) rows, ~2 bytes per entry) and a range query expands only the chunks that its
//! bounds fall into: a range's fingerprint is the XOR of the chunks it covers (a Fenwick tree
//! over the chunks answers prefixes in O(log m)) and of the parts of at most two chunks read
//! from the backend. A sync with `d` differences expands O(d · log n) chunks of at most
//! [`CHUNK_MAX`] entries instead of reading all n. Under memory pressure, a namespace is
//! folded back to its list (its trees dropped), not dropped whole.
//!
//! # Size
//!
//! Reading a chunk back (a redb range scan, decoding and hashing its entries) is what a first
//! sync after opening pays for per chunk, so chunks are small. Measured with W12 (two nodes,
//! 100,000 entries, one difference, first sync after opening; medians of 5, alternating
//! builds): 512 entries per chunk 46 ms, 128 entries 22–31 ms, 64 entries 21–25 ms. 128 keeps
//! most of the gain with a list half the size of 64's: a folded chunk costs ~240 bytes (its
//! slot, Fenwick node, start key and cached sync v2 sum), ~2 bytes per entry, and a redb row
//! of ~100 bytes.
//!
//! # Shape
//!
//! Chunk 0 starts at the empty suffix, so every suffix falls in exactly one chunk: the last
//! whose start is `<=` it. Starts are strictly ascending; only a lone chunk may be empty. A
//! chunk that grows past [`CHUNK_MAX`] is split (expanded first, so its keys are known) into
//! pieces of about [`CHUNK_TARGET`]; an emptied chunk is removed, and two neighbours that
//! together hold at most [`CHUNK_MERGE`] entries are merged (folded). Starts are bounds, not
//! necessarily keys that exist.
//!
//! # Persistence
//!
//! The list tracks which rows changed since it was last persisted ([`Chunks::take_rows`]); a
//! list built from a full scan rewrites all of its namespace's rows. `Indexed` writes them in
//! the same transaction as the namespace's summary, and a stored summary vouches for the
//! stored rows (see the parent module).

use std::collections::BTreeSet;

use bytes::Bytes;

use super::memory::{entry_bytes, key_bytes, CHUNK_BYTES, TREE_BYTES};
use crate::{
    ranger::Fingerprint,
    store::{fptree::FpTree, NamespaceSummary},
    v2::{
        riblt::{Item, ITEM_LEN},
        Fingerprint as V2Fingerprint,
    },
};

/// Entries per chunk when chunks are cut (by a full build or a split).
pub(super) const CHUNK_TARGET: usize = 128;
/// A chunk with more entries than this is split.
pub(super) const CHUNK_MAX: usize = 2 * CHUNK_TARGET;
/// Two neighbouring chunks holding at most this many entries together are merged.
pub(super) const CHUNK_MERGE: usize = CHUNK_TARGET / 2;

/// One persisted row: a chunk's start and its summary (`None`: the row is deleted).
pub(super) type Row = (Vec<u8>, Option<NamespaceSummary>);

fn add(a: &mut NamespaceSummary, b: &NamespaceSummary) {
    a.count = a.count.wrapping_add(b.count);
    a.fingerprint ^= &b.fingerprint;
}

/// What loaded lists add up to in the index's totals, kept as they change so that the
/// totals cost nothing to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Footprint {
    /// Estimated heap ([`Chunks::bytes`]).
    pub(super) bytes: usize,
    /// Chunks.
    pub(super) chunks: usize,
    /// Lists with an expanded chunk (0 or 1 per list).
    pub(super) expanded: usize,
}

impl Footprint {
    pub(super) fn add(&mut self, o: Footprint) {
        self.bytes += o.bytes;
        self.chunks += o.chunks;
        self.expanded += o.expanded;
    }

    pub(super) fn sub(&mut self, o: Footprint) {
        self.bytes = self.bytes.saturating_sub(o.bytes);
        self.chunks = self.chunks.saturating_sub(o.chunks);
        self.expanded = self.expanded.saturating_sub(o.expanded);
    }
}

/// One chunk.
struct Chunk {
    /// Lower bound (inclusive) of its suffixes.
    start: Bytes,
    sum: NamespaceSummary,
    tree: Option<Box<FpTree<()>>>,
    /// Estimated heap of `tree`.
    tree_bytes: usize,
    /// Sync v2 fingerprint of the chunk's entries, once read; dropped by every write to it.
    v2: Option<V2Fingerprint>,
    /// The item hashes behind `v2` (in no particular order), read with it and dropped with it,
    /// or earlier when the index folds (see [`Chunks::fold_all`]).
    items: Option<Box<[Item]>>,
}

impl Chunk {
    fn folded(start: Bytes, sum: NamespaceSummary) -> Self {
        Chunk {
            start,
            sum,
            tree: None,
            tree_bytes: 0,
            v2: None,
            items: None,
        }
    }
}

/// Heap of a chunk's cached item hashes.
fn items_bytes(items: &Option<Box<[Item]>>) -> usize {
    items.as_ref().map_or(0, |i| 16 + i.len() * ITEM_LEN)
}

/// A namespace's chunk list. See the module docs.
pub(super) struct Chunks {
    chunks: Vec<Chunk>,
    /// Fenwick tree over the chunks' summaries, 1-based (`fen[0]` unused).
    fen: Vec<NamespaceSummary>,
    total: NamespaceSummary,
    /// Heap of the expanded trees.
    expanded: usize,
    /// Heap of the list itself (recomputed when its shape changes).
    list_bytes: usize,
    /// Heap of the cached item hashes.
    items_bytes: usize,
    /// Starts whose persisted row is stale (changed, added or removed).
    dirty: BTreeSet<Bytes>,
    /// Every persisted row of the namespace is to be replaced.
    rewrite: bool,
}

impl Chunks {
    fn from_chunks(chunks: Vec<Chunk>, rewrite: bool) -> Self {
        let mut c = Chunks {
            chunks,
            fen: Vec::new(),
            total: NamespaceSummary::EMPTY,
            expanded: 0,
            list_bytes: 0,
            items_bytes: 0,
            dirty: BTreeSet::new(),
            rewrite,
        };
        c.reshaped();
        c
    }

    /// The list persisted as `rows` (ascending by start), if they are well formed and add up
    /// to `summary`; folded.
    pub(super) fn from_rows(
        rows: Vec<(Vec<u8>, NamespaceSummary)>,
        summary: NamespaceSummary,
    ) -> Option<Self> {
        if rows.is_empty() {
            return (summary == NamespaceSummary::EMPTY)
                .then(|| Self::from_chunks(vec![Chunk::folded(Bytes::new(), summary)], false));
        }
        if !rows[0].0.is_empty() {
            return None;
        }
        let lone = rows.len() == 1;
        let mut total = NamespaceSummary::EMPTY;
        for (i, (start, sum)) in rows.iter().enumerate() {
            if (sum.count == 0 && !lone) || (i > 0 && rows[i - 1].0 >= *start) {
                return None;
            }
            add(&mut total, sum);
        }
        (total == summary).then(|| {
            let chunks = rows
                .into_iter()
                .map(|(start, sum)| Chunk::folded(start.into(), sum))
                .collect();
            Self::from_chunks(chunks, false)
        })
    }

    /// Recomputes the Fenwick tree, the total and the list's heap after a change of shape.
    fn reshaped(&mut self) {
        let m = self.chunks.len();
        self.fen = vec![NamespaceSummary::EMPTY; m + 1];
        self.total = NamespaceSummary::EMPTY;
        self.list_bytes = 0;
        self.expanded = 0;
        self.items_bytes = 0;
        for i in 1..=m {
            let c = &self.chunks[i - 1];
            add(&mut self.total, &c.sum);
            self.list_bytes += CHUNK_BYTES + key_bytes(c.start.len());
            self.expanded += c.tree_bytes;
            self.items_bytes += items_bytes(&c.items);
            add(&mut self.fen[i], &c.sum);
            let j = i + (i & i.wrapping_neg());
            if j <= m {
                let v = self.fen[i];
                add(&mut self.fen[j], &v);
            }
        }
    }

    /// Replaces the summary of chunk `i` by `new`, keeping the Fenwick tree and total.
    fn set_sum(&mut self, i: usize, new: NamespaceSummary) {
        let old = self.chunks[i].sum;
        if old == new {
            return;
        }
        self.chunks[i].sum = new;
        self.dirty.insert(self.chunks[i].start.clone());
        let delta_fp = old.fingerprint.xor(&new.fingerprint);
        let bump = |s: &mut NamespaceSummary| {
            s.count = s.count.wrapping_sub(old.count).wrapping_add(new.count);
            s.fingerprint ^= &delta_fp;
        };
        bump(&mut self.total);
        let mut j = i + 1;
        while j < self.fen.len() {
            bump(&mut self.fen[j]);
            j += j & j.wrapping_neg();
        }
    }

    /// Number of entries.
    pub(super) fn len(&self) -> usize {
        self.total.count as usize
    }

    /// Count and fingerprint of every entry.
    pub(super) fn total(&self) -> NamespaceSummary {
        self.total
    }

    /// Number of chunks.
    pub(super) fn count(&self) -> usize {
        self.chunks.len()
    }

    /// Estimated heap: the list, the expanded trees and the cached item hashes.
    pub(super) fn bytes(&self) -> usize {
        TREE_BYTES + self.list_bytes + self.expanded + self.items_bytes
    }

    /// What this list adds to the index's totals.
    pub(super) fn footprint(&self) -> Footprint {
        Footprint {
            bytes: self.bytes(),
            chunks: self.count(),
            expanded: usize::from(self.expanded > 0),
        }
    }

    /// Heap that [`fold_all`](Self::fold_all) frees: expanded trees and cached item hashes.
    pub(super) fn foldable_bytes(&self) -> usize {
        self.expanded + self.items_bytes
    }

    /// Whether rows changed since the list was last persisted.
    pub(super) fn is_dirty(&self) -> bool {
        self.rewrite || !self.dirty.is_empty()
    }

    /// The chunk holding `suffix`.
    pub(super) fn locate(&self, suffix: &[u8]) -> usize {
        self.chunks
            .partition_point(|c| c.start.as_ref() <= suffix)
            .saturating_sub(1)
    }

    /// Start (inclusive) and end (exclusive; `None`: unbounded) of chunk `i`.
    pub(super) fn bounds(&self, i: usize) -> (Bytes, Option<Bytes>) {
        (
            self.chunks[i].start.clone(),
            self.chunks.get(i + 1).map(|c| c.start.clone()),
        )
    }

    /// Whether `suffix` is the start of chunk `i`.
    pub(super) fn starts_at(&self, i: usize, suffix: &[u8]) -> bool {
        self.chunks[i].start.as_ref() == suffix
    }

    /// Summary of chunk `i` (empty past the last chunk).
    pub(super) fn sum(&self, i: usize) -> NamespaceSummary {
        self.chunks
            .get(i)
            .map_or(NamespaceSummary::EMPTY, |c| c.sum)
    }

    /// The sync v2 fingerprint of chunk `i`, if read since its last write.
    pub(super) fn v2(&self, i: usize) -> Option<V2Fingerprint> {
        self.chunks.get(i).and_then(|c| c.v2)
    }

    /// The item hashes of chunk `i`'s entries, if read since its last write (and not folded).
    pub(super) fn v2_items(&self, i: usize) -> Option<&[Item]> {
        self.chunks.get(i).and_then(|c| c.items.as_deref())
    }

    /// Remembers the sync v2 fingerprint of chunk `i` and, if given, its item hashes (both
    /// read from its entries).
    pub(super) fn set_v2(&mut self, i: usize, fp: V2Fingerprint, items: Option<Vec<Item>>) {
        if let Some(c) = self.chunks.get_mut(i) {
            c.v2 = Some(fp);
            if let Some(items) = items {
                self.items_bytes -= items_bytes(&c.items);
                c.items = Some(items.into_boxed_slice());
                self.items_bytes += items_bytes(&c.items);
            }
        }
    }

    /// Drops chunk `i`'s v2 fingerprint and item hashes (it is being written).
    fn drop_v2(&mut self, i: usize) {
        let c = &mut self.chunks[i];
        c.v2 = None;
        self.items_bytes -= items_bytes(&c.items);
        c.items = None;
    }

    /// The tree of chunk `i`, if expanded (`None` past the last chunk: an index taken before
    /// the list was rebuilt).
    pub(super) fn tree(&self, i: usize) -> Option<&FpTree<()>> {
        self.chunks.get(i).and_then(|c| c.tree.as_deref())
    }

    /// Count and fingerprint of the chunks before `i`.
    pub(super) fn prefix(&self, i: usize) -> NamespaceSummary {
        let mut s = NamespaceSummary::EMPTY;
        let mut j = i.min(self.chunks.len());
        while j > 0 {
            add(&mut s, &self.fen[j]);
            j -= j & j.wrapping_neg();
        }
        s
    }

    /// The chunk holding the entry of rank `r`, and `r`'s rank within it (`None` if
    /// `r >= len`).
    pub(super) fn find_rank(&self, r: usize) -> Option<(usize, usize)> {
        if r >= self.len() {
            return None;
        }
        let m = self.chunks.len();
        let (mut pos, mut rest) = (0, r as u64);
        let mut step = m.checked_ilog2().map_or(0, |b| 1 << b);
        while step > 0 {
            if pos + step <= m && self.fen[pos + step].count <= rest {
                pos += step;
                rest -= self.fen[pos].count;
            }
            step >>= 1;
        }
        (pos < m).then_some((pos, rest as usize))
    }

    /// Makes `tree` (of `bytes` estimated heap, read from the backend) chunk `i`'s; its
    /// summary becomes the tree's (the caller has checked that they agree).
    pub(super) fn expand(&mut self, i: usize, tree: FpTree<()>, bytes: usize) {
        self.set_sum(
            i,
            NamespaceSummary {
                count: tree.len() as u64,
                fingerprint: tree.total_fingerprint(),
            },
        );
        let c = &mut self.chunks[i];
        self.expanded = self.expanded - c.tree_bytes + bytes + TREE_BYTES;
        c.tree = Some(Box::new(tree));
        c.tree_bytes = bytes + TREE_BYTES;
    }

    /// Drops every expanded tree and cached item hash list (the v2 sums stay); returns
    /// whether there was any.
    pub(super) fn fold_all(&mut self) -> bool {
        let any = self.foldable_bytes() > 0;
        for c in &mut self.chunks {
            c.tree = None;
            c.tree_bytes = 0;
            c.items = None;
        }
        self.expanded = 0;
        self.items_bytes = 0;
        any
    }

    /// Records a write of `key` with fingerprint `fp` into chunk `i`, replacing an entry of
    /// fingerprint `replaced` (if any).
    pub(super) fn put(
        &mut self,
        i: usize,
        key: Bytes,
        fp: Fingerprint,
        replaced: Option<Fingerprint>,
    ) {
        let mut sum = self.chunks[i].sum;
        match replaced {
            Some(old) => sum.fingerprint ^= &old,
            None => sum.count += 1,
        }
        sum.fingerprint ^= &fp;
        self.drop_v2(i);
        let c = &mut self.chunks[i];
        if let Some(tree) = c.tree.as_mut() {
            let len = key.len();
            if tree.insert(key, fp, ()).is_none() {
                c.tree_bytes += entry_bytes(len);
                self.expanded += entry_bytes(len);
            }
        }
        self.set_sum(i, sum);
    }

    /// Records the removal of `suffix` (fingerprint `fp`) from chunk `i`, then merges the
    /// chunk away if it is empty or small enough.
    pub(super) fn remove(&mut self, i: usize, suffix: &[u8], fp: Fingerprint) {
        let mut sum = self.chunks[i].sum;
        sum.count = sum.count.saturating_sub(1);
        sum.fingerprint ^= &fp;
        self.drop_v2(i);
        let c = &mut self.chunks[i];
        if let Some(tree) = c.tree.as_mut() {
            if tree.remove(suffix).is_some() {
                let freed = entry_bytes(suffix.len()).min(c.tree_bytes);
                c.tree_bytes -= freed;
                self.expanded -= freed;
            }
        }
        self.set_sum(i, sum);
        self.merge_small(i);
    }

    /// Merges chunk `i` into a neighbour if it is empty, or if the two hold at most
    /// [`CHUNK_MERGE`] entries.
    fn merge_small(&mut self, i: usize) {
        if self.chunks.len() < 2 {
            return;
        }
        if self.chunks[i].sum.count == 0 {
            let gone = if i == 0 {
                // Chunk 0 keeps the empty start and takes chunk 1's entries and tree.
                let next = self.chunks.remove(1);
                let first = &mut self.chunks[0];
                first.sum = next.sum;
                first.tree = next.tree;
                first.tree_bytes = next.tree_bytes;
                first.v2 = next.v2;
                first.items = next.items;
                self.dirty.insert(first.start.clone());
                next.start
            } else {
                self.chunks.remove(i).start
            };
            self.dirty.insert(gone);
            self.reshaped();
            return;
        }
        let (a, b) = if i > 0 { (i - 1, i) } else { (0, 1) };
        if self.chunks[a].sum.count + self.chunks[b].sum.count > CHUNK_MERGE as u64 {
            return;
        }
        let gone = self.chunks.remove(b);
        let into = &mut self.chunks[a];
        add(&mut into.sum, &gone.sum);
        into.tree = None;
        into.tree_bytes = 0;
        into.v2 = match (into.v2, gone.v2) {
            (Some(a), Some(b)) => Some(a.combine(&b)),
            _ => None,
        };
        into.items = match (into.items.take(), gone.items) {
            (Some(a), Some(b)) => Some([a, b].concat().into_boxed_slice()),
            _ => None,
        };
        self.dirty.insert(into.start.clone());
        self.dirty.insert(gone.start);
        self.reshaped();
    }

    /// Splits chunk `i` (which must be expanded) into pieces of about [`CHUNK_TARGET`] entries
    /// if it holds more than [`CHUNK_MAX`].
    pub(super) fn split(&mut self, i: usize) {
        let Some(tree) = self.tree(i) else {
            return;
        };
        let n = tree.len();
        if n <= CHUNK_MAX {
            return;
        }
        let k = n.div_ceil(CHUNK_TARGET);
        let pieces: Vec<Chunk> = (0..k)
            .map(|j| {
                let (lo, hi) = (j * n / k, (j + 1) * n / k);
                let mut bytes = TREE_BYTES;
                let items: Vec<_> = tree
                    .iter_from(lo)
                    .take(hi - lo)
                    .map(|(key, fp, _)| {
                        bytes += entry_bytes(key.len());
                        (key.clone(), *fp, ())
                    })
                    .collect();
                let start = if j == 0 {
                    self.chunks[i].start.clone()
                } else {
                    items[0].0.clone()
                };
                let tree = FpTree::from_sorted(items);
                Chunk {
                    start,
                    sum: NamespaceSummary {
                        count: tree.len() as u64,
                        fingerprint: tree.total_fingerprint(),
                    },
                    tree: Some(Box::new(tree)),
                    tree_bytes: bytes,
                    v2: None,
                    items: None,
                }
            })
            .collect();
        self.dirty.extend(pieces.iter().map(|c| c.start.clone()));
        self.chunks.splice(i..=i, pieces);
        self.reshaped();
    }

    /// The rows to persist since the last call: whether every stored row of the namespace is
    /// to be deleted first, and the rows to write or delete.
    pub(super) fn take_rows(&mut self) -> (bool, Vec<Row>) {
        let rows = if self.rewrite {
            self.chunks
                .iter()
                .map(|c| (c.start.to_vec(), Some(c.sum)))
                .collect()
        } else {
            std::mem::take(&mut self.dirty)
                .into_iter()
                .map(|start| {
                    let i = self.locate(&start);
                    let c = &self.chunks[i];
                    let sum = (c.start == start).then_some(c.sum);
                    (start.to_vec(), sum)
                })
                .collect()
        };
        let rewrite = std::mem::take(&mut self.rewrite);
        self.dirty.clear();
        (rewrite, rows)
    }
}

/// Builds a [`Chunks`] from a namespace's entries in ascending suffix order, expanded, cut
/// every [`CHUNK_TARGET`] entries; its rows are all to be written.
pub(super) struct ChunksBuilder {
    chunks: Vec<Chunk>,
    group: Vec<(Bytes, Fingerprint, ())>,
    bytes: usize,
}

impl ChunksBuilder {
    pub(super) fn new() -> Self {
        ChunksBuilder {
            chunks: Vec::new(),
            group: Vec::with_capacity(CHUNK_TARGET),
            bytes: TREE_BYTES,
        }
    }

    /// Adds the next entry (keys strictly ascending).
    pub(super) fn push(&mut self, key: Bytes, fp: Fingerprint) {
        self.bytes += entry_bytes(key.len());
        self.group.push((key, fp, ()));
        if self.group.len() == CHUNK_TARGET {
            self.cut();
        }
    }

    fn cut(&mut self) {
        let group = std::mem::replace(&mut self.group, Vec::with_capacity(CHUNK_TARGET));
        let start = if self.chunks.is_empty() {
            Bytes::new()
        } else {
            group[0].0.clone()
        };
        let tree = FpTree::from_sorted(group);
        self.chunks.push(Chunk {
            start,
            sum: NamespaceSummary {
                count: tree.len() as u64,
                fingerprint: tree.total_fingerprint(),
            },
            tree: Some(Box::new(tree)),
            tree_bytes: std::mem::replace(&mut self.bytes, TREE_BYTES),
            v2: None,
            items: None,
        });
    }

    pub(super) fn finish(mut self) -> Chunks {
        if !self.group.is_empty() || self.chunks.is_empty() {
            self.cut();
        }
        Chunks::from_chunks(self.chunks, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> Bytes {
        Bytes::copy_from_slice(&i.to_be_bytes())
    }

    fn fp(i: u32) -> Fingerprint {
        let mut f = [0; 32];
        f[..4].copy_from_slice(&i.to_le_bytes());
        f[31] = 1;
        Fingerprint(f)
    }

    fn built(n: u32) -> Chunks {
        let mut b = ChunksBuilder::new();
        for i in 0..n {
            b.push(key(i), fp(i));
        }
        b.finish()
    }

    fn xor(range: std::ops::Range<u32>) -> Fingerprint {
        range.fold(Fingerprint([0; 32]), |a, i| a.xor(&fp(i)))
    }

    #[test]
    fn ranks_and_prefixes_follow_the_chunks() {
        let t = CHUNK_TARGET as u32;
        let n = 4 * t - 10;
        let c = built(n);
        assert_eq!(c.count(), 4);
        assert_eq!(c.len(), n as usize);
        assert_eq!(c.find_rank(0), Some((0, 0)));
        assert_eq!(c.find_rank(t as usize + 1), Some((1, 1)));
        assert_eq!(
            c.find_rank(n as usize - 1),
            Some((3, (n - 1 - 3 * t) as usize))
        );
        assert_eq!(c.find_rank(n as usize), None);
        assert_eq!(c.prefix(2).count, 2 * t as u64);
        assert_eq!(c.prefix(2).fingerprint, xor(0..2 * t));
        assert_eq!(c.total().fingerprint, xor(0..n));
        assert_eq!(c.locate(&key(2 * t - 1)), 1);
        assert_eq!(c.locate(&key(2 * t)), 2);
        assert_eq!(c.locate(b""), 0);
    }

    #[test]
    fn growth_splits_and_shrinking_merges() {
        let mut c = built(600);
        assert_eq!(c.count(), 600usize.div_ceil(CHUNK_TARGET));
        let _ = c.take_rows();
        // 1,400 more keys at the end: the last chunk outgrows the maximum and is cut.
        for i in 600..2000 {
            let at = c.locate(&key(i));
            c.put(at, key(i), fp(i), None);
            c.split(at);
        }
        assert_eq!(c.len(), 2000);
        assert!(c.count() >= 4, "{}", c.count());
        assert!((0..c.count()).all(|i| c.sum(i).count as usize <= CHUNK_MAX));
        assert_eq!(c.total().fingerprint, xor(0..2000));
        assert_eq!(
            c.find_rank(1500)
                .map(|(i, r)| c.prefix(i).count as usize + r),
            Some(1500)
        );
        let (rewrite, rows) = c.take_rows();
        assert!(!rewrite);
        assert!(rows.iter().all(|(_, s)| s.is_some()));
        // Removing all but the first keys merges the rest back.
        for i in (10..2000).rev() {
            let at = c.locate(&key(i));
            c.remove(at, &key(i), fp(i));
        }
        assert_eq!(c.count(), 1);
        assert_eq!(c.total().fingerprint, xor(0..10));
        let (_, rows) = c.take_rows();
        assert_eq!(rows.iter().filter(|(_, s)| s.is_some()).count(), 1);
        assert!(
            rows.iter().any(|(_, s)| s.is_none()),
            "removed rows deleted"
        );
    }

    #[test]
    fn persisted_rows_must_add_up() {
        let mut c = built(1500);
        let (rewrite, rows) = c.take_rows();
        assert!(rewrite);
        let rows: Vec<_> = rows.into_iter().map(|(k, s)| (k, s.unwrap())).collect();
        let back = Chunks::from_rows(rows.clone(), c.total()).unwrap();
        assert_eq!(back.total(), c.total());
        assert_eq!(back.foldable_bytes(), 0, "loaded folded");
        let wrong = NamespaceSummary {
            count: 1,
            ..c.total()
        };
        assert!(Chunks::from_rows(rows.clone(), wrong).is_none());
        let mut unordered = rows;
        unordered.swap(1, 2);
        assert!(Chunks::from_rows(unordered, c.total()).is_none());
        assert!(Chunks::from_rows(Vec::new(), NamespaceSummary::EMPTY).is_some());
    }
}
