//! [`Indexed`]: any [`Backend`] plus the fingerprint index that reconciliation needs.
//!
//! Reconciliation asks, for arbitrary key ranges of a namespace, for their fingerprint, their
//! size and the element at an offset (the pivot that splits them). iroh-docs answers each by
//! scanning the range. Here every namespace's index is a *chunk list* (the `chunks` module):
//! its entries cut into consecutive key ranges of about 128, each with its count and
//! fingerprint, under a Fenwick tree, and each either folded (that summary only) or expanded
//! (an order-statistics tree of its entries' fingerprints, `FpTree<()>`, see the `fptree`
//! module). A query costs O(log n) plus, for each of its bounds that falls in a folded chunk,
//! one backend read of that chunk. The index lives in this one place, the same for every
//! backend, so a backend only stores rows (and the persisted summaries and chunk rows).
//!
//! * **Lazy.** A namespace's list is loaded the first time a range method needs it: from its
//!   persisted chunk rows ([`Backend::get_chunks`], O(n / 128) rows, all folded) when its
//!   summary vouches for them, else built from one ordered walk of its entries
//!   ([`Backend::scan_author_key`], in pages of [`BUILD_PAGE`] entries), in O(n), expanded.
//!   So after opening a store, a sync with `d` differences reads O(d · log n) chunks, not n
//!   entries.
//! * **In step.** Writes go through [`Indexed`]'s own [`Backend`] implementation, which
//!   forwards them and updates the namespace's chunk (its tree if expanded; a folded chunk
//!   reads the entry replaced, one `get`). A chunk past 256 entries is split, an emptied
//!   or small one merged. A namespace whose summary is not known (never indexed, or after a
//!   failure) is written without an index and built on next use. `remove_namespace` drops
//!   the list.
//! * **Within a budget.** Each loaded list's heap is estimated (the `memory` module); when
//!   the lists together exceed [`budget`](Indexed::budget), the least recently used
//!   namespaces are folded (their trees dropped, ~2 bytes per entry left), and then those
//!   whose lists are persisted as they are dropped whole; never the one in use nor those
//!   [`pin`](Indexed::pin)ned (the store executor pins the documents that are syncing). A
//!   folded chunk is read back when a query needs it. Pinned namespaces may hold the index
//!   above its budget: by at most the chunks the syncs running at once have touched.
//! * **Summaries.** For every namespace it has seen, `Indexed` keeps a [`NamespaceSummary`]
//!   (entry count and XOR of fingerprints, 40 bytes), also while its list is not loaded, and
//!   persists it through [`Backend::put_summary`] before each flush, with the chunk rows that
//!   changed ([`Backend::put_chunks`]). The whole-namespace fingerprint and count, and the
//!   first identifier, are answered without a list: the first message of every sync and the
//!   answer to a peer's that matches need no index, so a sync that finds nothing to do costs
//!   O(1) store reads even right after the store was opened or the list dropped.
//! * **Summaries stay true across crashes.** The first write to a namespace after a flush
//!   deletes its persisted summary in the same transaction, and the flush writes the new one
//!   and the chunk rows before committing; whatever commits (a flush, or a backend committing
//!   on drop), a stored summary describes the stored entries and vouches for the stored chunk
//!   rows. Without a summary the rows are ignored and replaced by the next build. A summary
//!   that disagrees with a list built from the backend, or a chunk row that disagrees with
//!   the entries read for it, is replaced and counted ([`IndexStats::summary_repairs`]); a
//!   wrong chunk row makes the whole list be rebuilt, since the other rows may be wrong too.
//! * **Failures.** If a write fails, the backend may hold part of it: the namespace's list
//!   and summary are dropped and rebuilt from the backend on next use. If a flush fails, the
//!   backend's uncommitted writes may be gone: every list and summary is dropped.
//! * **Ranges** sent by a peer are clamped to the namespace: a bound in another namespace
//!   maps to the start or end of this one.
//!
//! Writes made on the backend directly ([`Indexed::backend_mut`]) bypass the index; after
//! one, call [`Indexed::forget`].

mod chunks;
mod lookup;
mod memory;
mod spans;
mod summaries;
#[cfg(test)]
mod tests;
mod v2sums;

use std::{
    collections::{BTreeMap, BTreeSet},
    ops::Bound,
};

use bytes::Bytes;

use self::{
    chunks::{Chunks, Footprint},
    lookup::fingerprint_in,
    memory::SUMMARY_BYTES,
};
pub use self::{
    memory::IndexStats,
    v2sums::{SuffixRange, V2_ITEMS_MAX},
};
use super::{
    id_from_suffix, suffix, suffix_of, Backend, DownloadPolicy, NamespaceSummary, StoreError,
};
use crate::{
    entry::{RecordIdentifier, SignedEntry},
    hash::{Hash, PeerId},
    keys::{Author, AuthorId, Capability, CapabilityKind, NamespaceId},
    ranger::{Fingerprint, Range},
    wire::AuthorHeads,
};

/// Entries read per backend call while building a namespace's index or reading a chunk.
pub const BUILD_PAGE: usize = 1024;

/// A [`Backend`] with the per-namespace fingerprint index on top.
///
/// `Indexed<B>` is itself a [`Backend`] (every write through it keeps the index in step), and
/// adds the range queries of reconciliation: [`range_fingerprint`](Self::range_fingerprint),
/// [`range_len`](Self::range_len), [`range_pivot`](Self::range_pivot),
/// [`range_entries`](Self::range_entries), [`namespace_len`](Self::namespace_len) and
/// [`first_id`](Self::first_id), each O(log n) from a per-namespace list of chunks of about
/// 128 entries, reading a chunk from the backend when a query's bound falls in one that is
/// not in memory.
///
/// * A namespace's list is loaded lazily, on the first range query that needs it: from its
///   persisted chunk rows, or built from one ordered walk of its entries in O(n) when there
///   are none. Whole-namespace queries are answered from its [`NamespaceSummary`] when the
///   list is not loaded.
/// * The lists share a memory [`budget`](Self::budget): over it, the least recently used
///   namespaces that are not [`pin`](Self::pin)ned are folded (their chunks' trees dropped),
///   then dropped. See the module docs.
/// * Writes through `Indexed` update the namespace's chunk and summary.
/// * A failed write drops the namespace's list, a failed flush drops every list: they are
///   reloaded or rebuilt from the backend on next use.
/// * Writes made on [`backend_mut`](Self::backend_mut) bypass the index; call
///   [`forget`](Self::forget) after one.
pub struct Indexed<B> {
    backend: B,
    /// Chunk lists of the namespaces loaded now.
    trees: BTreeMap<NamespaceId, Loaded>,
    /// The loaded namespaces by last use, oldest first (keys are `Loaded::used`).
    lru: BTreeMap<u64, NamespaceId>,
    /// Use counter behind `lru` (a logical clock: deterministic).
    tick: u64,
    /// Namespaces whose indexes are not evicted.
    pinned: BTreeSet<NamespaceId>,
    /// Summaries known, of loaded and unloaded namespaces. `None`: the backend holds none that
    /// is valid, so the summary is learnt by building the tree.
    summaries: BTreeMap<NamespaceId, Option<NamespaceSummary>>,
    /// Summaries to write to the backend before the next flush.
    pending: BTreeMap<NamespaceId, Option<NamespaceSummary>>,
    /// Namespaces whose persisted summary was deleted in the backend's current transaction.
    invalidated: BTreeSet<NamespaceId>,
    /// Heap, chunks and expanded lists of the loaded chunk lists, together.
    held: Footprint,
    budget: usize,
    stats: IndexStats,
    /// Sync v2 fingerprints of whole namespaces, learnt by a scan and kept until the
    /// namespace is next written (one per namespace, 40 bytes each).
    v2_sums: BTreeMap<NamespaceId, crate::v2::Fingerprint>,
}

/// A loaded chunk list with its last use.
struct Loaded {
    chunks: Chunks,
    used: u64,
}

impl<B: std::fmt::Debug> std::fmt::Debug for Indexed<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Indexed")
            .field("backend", &self.backend)
            .field("indexed_namespaces", &self.trees.len())
            .field("index_bytes", &self.held.bytes)
            .field("budget", &self.budget)
            .finish()
    }
}

impl<B: Default> Default for Indexed<B> {
    fn default() -> Self {
        Self::new(B::default())
    }
}

impl<B> Indexed<B> {
    /// Wraps `backend` with no memory budget; no index is built until a range method needs
    /// one.
    pub fn new(backend: B) -> Self {
        Self::with_budget(backend, usize::MAX)
    }

    /// Wraps `backend`, keeping the estimated heap of the loaded indexes within `budget` bytes
    /// (see [`set_budget`](Self::set_budget)).
    pub fn with_budget(backend: B, budget: usize) -> Self {
        Self {
            backend,
            trees: BTreeMap::new(),
            lru: BTreeMap::new(),
            tick: 0,
            pinned: BTreeSet::new(),
            summaries: BTreeMap::new(),
            pending: BTreeMap::new(),
            invalidated: BTreeSet::new(),
            held: Footprint::default(),
            budget,
            stats: IndexStats::default(),
            v2_sums: BTreeMap::new(),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend, for reads (and for tools that write and then call
    /// [`forget`](Self::forget)): writes made here bypass the index.
    pub fn backend_mut(&mut self) -> &mut B {
        self.v2_sums.clear();
        &mut self.backend
    }

    /// The sync v2 fingerprint of the whole namespace, if known since its last write.
    pub fn v2_fingerprint(&self, ns: NamespaceId) -> Option<crate::v2::Fingerprint> {
        self.v2_sums.get(&ns).copied()
    }

    /// Remembers the sync v2 fingerprint of the whole namespace until its next write.
    pub fn set_v2_fingerprint(&mut self, ns: NamespaceId, fp: crate::v2::Fingerprint) {
        self.v2_sums.insert(ns, fp);
    }

    /// The backend, dropping the index (summaries not flushed yet are not written).
    pub fn into_backend(self) -> B {
        self.backend
    }

    /// Number of namespaces whose index (chunk list) is loaded.
    pub fn indexed_namespaces(&self) -> usize {
        self.trees.len()
    }

    /// The memory budget of the loaded indexes, in bytes (`usize::MAX`: none).
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Sets the memory budget; indexes over it are evicted at once (least recently used
    /// first, never a pinned one). A budget of 0 keeps expanded only the pinned indexes and
    /// the one in use, and keeps loaded besides them only the lists not yet persisted.
    pub fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
        self.enforce(None);
    }

    /// Keeps the index of `ns` (once loaded) through evictions until [`unpin`](Self::unpin).
    pub fn pin(&mut self, ns: NamespaceId) {
        self.pinned.insert(ns);
    }

    /// Lets the index of `ns` be evicted again (at once, if the indexes are over budget).
    pub fn unpin(&mut self, ns: NamespaceId) {
        if self.pinned.remove(&ns) {
            self.enforce(None);
        }
    }

    /// Whether `ns` is pinned.
    pub fn is_pinned(&self, ns: NamespaceId) -> bool {
        self.pinned.contains(&ns)
    }

    /// Memory, evictions and rebuilds of the index.
    pub fn stats(&self) -> IndexStats {
        debug_assert_eq!(
            self.held,
            self.trees.values().fold(Footprint::default(), |mut f, l| {
                f.add(l.chunks.footprint());
                f
            }),
            "the index's totals follow its lists"
        );
        IndexStats {
            loaded: self.trees.len(),
            expanded: self.held.expanded,
            chunks: self.held.chunks,
            pinned: self.pinned.len(),
            bytes: self.held.bytes + self.summaries.len() * SUMMARY_BYTES,
            budget: self.budget,
            ..self.stats
        }
    }

    /// The next use tick.
    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// Drops the chunk list of `ns`, if loaded.
    fn unload(&mut self, ns: NamespaceId) {
        if let Some(l) = self.trees.remove(&ns) {
            self.lru.remove(&l.used);
            self.held.sub(l.chunks.footprint());
        }
    }

    /// Drops every chunk list.
    fn unload_all(&mut self) {
        self.trees.clear();
        self.lru.clear();
        self.held = Footprint::default();
    }

    /// Runs `f` on the loaded chunk list of `ns`, keeping the index's totals in step.
    fn with_chunks<T>(&mut self, ns: NamespaceId, f: impl FnOnce(&mut Chunks) -> T) -> Option<T> {
        let l = self.trees.get_mut(&ns)?;
        let before = l.chunks.footprint();
        let out = f(&mut l.chunks);
        self.held.sub(before);
        self.held.add(l.chunks.footprint());
        Some(out)
    }

    /// Evicts, least recently used first and never `keep` nor a pinned namespace, until the
    /// index fits the budget: first folds namespaces (drops their expanded chunks), then drops
    /// the chunk lists that are persisted as they are.
    fn enforce(&mut self, keep: Option<NamespaceId>) {
        while self.held.bytes > self.budget {
            let evictable = |ns: &NamespaceId| Some(*ns) != keep && !self.pinned.contains(ns);
            let fold = self
                .lru
                .values()
                .copied()
                .find(|ns| evictable(ns) && self.trees[ns].chunks.foldable_bytes() > 0);
            if let Some(victim) = fold {
                self.with_chunks(victim, Chunks::fold_all);
                self.stats.evictions += 1;
                continue;
            }
            let drop = self.lru.values().copied().find(|ns| {
                evictable(ns) && !self.pending.contains_key(ns) && !self.trees[ns].chunks.is_dirty()
            });
            let Some(victim) = drop else {
                return;
            };
            self.unload(victim);
            self.stats.evictions += 1;
        }
    }
}

impl<B: Backend> Indexed<B> {
    /// Loads the index of `ns` now if it is not loaded: its persisted chunk list (O(n / 128)
    /// rows), or, without a valid one, a build from every entry. A running node does this
    /// when it opens a document, so that its first sync does not pay for it.
    pub fn load(&mut self, ns: NamespaceId) -> Result<(), StoreError> {
        self.loaded(ns).map(|_| ())
    }

    /// Number of entries in the namespace (from its summary when its index is not loaded).
    pub fn namespace_len(&mut self, ns: NamespaceId) -> Result<usize, StoreError> {
        if let Some(s) = self.unloaded_summary(ns)? {
            return Ok(s.count as usize);
        }
        Ok(self.loaded(ns)?.len())
    }

    /// The smallest record identifier of the namespace (one backend read when its first chunk
    /// is not in memory).
    pub fn first_id(&mut self, ns: NamespaceId) -> Result<Option<RecordIdentifier>, StoreError> {
        let folded = self
            .trees
            .get(&ns)
            .is_none_or(|l| l.chunks.tree(0).is_none());
        if folded {
            let first =
                self.backend
                    .scan_author_key(ns, Bound::Unbounded, Bound::Unbounded, false, 1)?;
            return Ok(first.first().map(|e| e.id().clone()));
        }
        Ok(self.select(ns, 0)?.map(|k| id_from_suffix(ns, &k)))
    }

    /// Number of entries of the namespace in `range`.
    pub fn range_len(&mut self, ns: NamespaceId, range: &Range) -> Result<usize, StoreError> {
        if range.x() == range.y() {
            if let Some(s) = self.unloaded_summary(ns)? {
                return Ok(s.count as usize);
            }
        }
        self.consistent(|s| Ok(s.spans(ns, range)?.len()))
    }

    /// Fingerprint of the entries of the namespace in `range` (seeded with
    /// [`Fingerprint::EMPTY`]).
    pub fn range_fingerprint(
        &mut self,
        ns: NamespaceId,
        range: &Range,
    ) -> Result<Fingerprint, StoreError> {
        if range.x() == range.y() {
            if let Some(s) = self.unloaded_summary(ns)? {
                return Ok(Fingerprint::EMPTY.xor(&s.fingerprint));
            }
        }
        self.consistent(|s| {
            let spans = s.spans(ns, range)?;
            let mut fp = Fingerprint::EMPTY;
            for (a, b) in spans.intervals() {
                fp = fp
                    .xor(&s.prefix_fingerprint(ns, a)?)
                    .xor(&s.prefix_fingerprint(ns, b)?);
            }
            Ok(fp)
        })
    }

    /// The identifier at `offset` in `range`, counting cyclically from the first entry at or
    /// after the range's `x` (the pivot rule of iroh-docs' ranger).
    pub fn range_pivot(
        &mut self,
        ns: NamespaceId,
        range: &Range,
        offset: usize,
    ) -> Result<Option<RecordIdentifier>, StoreError> {
        self.consistent(|s| {
            let spans = s.spans(ns, range)?;
            let Some(rank) = spans.cyclic_rank(offset) else {
                return Ok(None);
            };
            Ok(s.select(ns, rank)?.map(|k| id_from_suffix(ns, &k)))
        })
    }

    /// Entries of the namespace in `range`, in ascending order, skipping `skip` and returning
    /// at most `limit`. Each rank interval is one backend scan between its first and last
    /// suffix, checked against the index.
    pub fn range_entries(
        &mut self,
        ns: NamespaceId,
        range: &Range,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        self.read(ns, range, false, skip, limit)
    }

    /// Entries of the namespace in `range` in *range order* — from the first entry at or
    /// after the range's `x` up, then wrapping to the lowest (the order of
    /// [`range_pivot`](Self::range_pivot)'s offsets) — skipping `skip` and returning at most
    /// `limit`. For `x < y` this is ascending order; for a wrap-around range or the whole
    /// namespace the entries at or after `x` come first. Reconciliation reads a range in
    /// chunks this way, so that it can stop where its byte budget is spent.
    pub fn range_entries_in_order(
        &mut self,
        ns: NamespaceId,
        range: &Range,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        self.read(ns, range, true, skip, limit)
    }

    /// The entries of `range` at positions `skip..skip + limit`, counted in ascending or in
    /// range order.
    fn read(
        &mut self,
        ns: NamespaceId,
        range: &Range,
        in_range_order: bool,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        // Suffix bounds and sizes of the wanted part of each interval (at most three).
        let scans = self.consistent(|s| {
            let spans = s.spans(ns, range)?;
            let intervals: Vec<(usize, usize)> = if in_range_order {
                spans.ordered().collect()
            } else {
                spans.intervals().collect()
            };
            let mut scans = Vec::with_capacity(intervals.len());
            let (mut skip, mut left) = (skip, limit);
            for (a, b) in intervals {
                let n = b - a;
                if skip >= n {
                    skip -= n;
                    continue;
                }
                let take = (n - skip).min(left);
                if take == 0 {
                    break;
                }
                let first = a + skip;
                let (Some(lo), Some(hi)) = (s.select(ns, first)?, s.select(ns, first + take - 1)?)
                else {
                    break;
                };
                scans.push((lo.to_vec(), hi, take));
                left -= take;
                skip = 0;
            }
            Ok(scans)
        })?;
        let mut out = Vec::with_capacity(scans.iter().map(|s| s.2).sum());
        for (lo, hi, take) in scans {
            let rows = self.backend.scan_author_key(
                ns,
                Bound::Included(lo),
                Bound::Included(hi.to_vec()),
                false,
                take,
            )?;
            let last = rows.last().map(|e| suffix_of(e.id()));
            if rows.len() != take || last != Some(&hi[..]) {
                self.unload(ns);
                return Err(StoreError::Corrupt(
                    "fingerprint index lists entries the backend lacks".into(),
                ));
            }
            out.extend(rows);
        }
        Ok(out)
    }
}

impl<B: Backend> Backend for Indexed<B> {
    fn get(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Option<SignedEntry>, StoreError> {
        self.backend.get(ns, author, key)
    }

    fn put(&mut self, entry: SignedEntry) -> Result<(), StoreError> {
        let ns = entry.namespace();
        self.v2_sums.remove(&ns);
        // A namespace with a known summary keeps its chunk list exact; one without is learnt
        // by a build on next use.
        if !self.indexes(ns)? {
            if let Err(e) = self.backend.put(entry) {
                self.failed(ns);
                return Err(e);
            }
            return self.changed(ns, None);
        }
        let key = Bytes::copy_from_slice(suffix_of(entry.id()));
        let at = self.loaded(ns)?.locate(&key);
        let replaced = match self.loaded(ns)?.tree(at) {
            Some(tree) => fingerprint_in(tree, &key),
            None => self
                .backend
                .get(ns, entry.author(), entry.key())?
                .map(|old| old.fingerprint()),
        };
        let fp = entry.fingerprint();
        if let Err(e) = self.backend.put(entry) {
            self.failed(ns);
            return Err(e);
        }
        self.with_chunks(ns, |c| c.put(at, key, fp, replaced));
        let total = self.loaded(ns)?.total();
        self.changed(ns, Some(total))?;
        if self.split_if_full(ns, at).is_err() {
            // The entry is written; its chunk could not be read back to be split. The list
            // and summary are rebuilt on next use.
            self.failed(ns);
        }
        self.enforce(Some(ns));
        Ok(())
    }

    fn remove(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Option<SignedEntry>, StoreError> {
        self.v2_sums.remove(&ns);
        let indexes = self.indexes(ns)?;
        if indexes {
            // Loaded before the removal: a list built after it would count it twice.
            self.loaded(ns)?;
        }
        let removed = match self.backend.remove(ns, author, key) {
            Ok(removed) => removed,
            Err(e) => {
                self.failed(ns);
                return Err(e);
            }
        };
        let Some(entry) = removed else {
            return Ok(None);
        };
        if !indexes {
            self.changed(ns, None)?;
            return Ok(Some(entry));
        }
        let suffix = suffix(author, key);
        let fp = entry.fingerprint();
        let at = self.loaded(ns)?.locate(&suffix);
        self.with_chunks(ns, |c| c.remove(at, &suffix, fp));
        let total = self.loaded(ns)?.total();
        self.changed(ns, Some(total))?;
        Ok(Some(entry))
    }

    fn scan_author_key(
        &mut self,
        ns: NamespaceId,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        self.backend
            .scan_author_key(ns, lower, upper, reverse, limit)
    }

    fn scan_key_author(
        &mut self,
        ns: NamespaceId,
        lower: Bound<(Bytes, AuthorId)>,
        upper: Bound<(Bytes, AuthorId)>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        self.backend
            .scan_key_author(ns, lower, upper, reverse, limit)
    }

    fn prefixed_by(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        prefix: &[u8],
    ) -> Result<Vec<SignedEntry>, StoreError> {
        self.backend.prefixed_by(ns, author, prefix)
    }

    fn prefix_parents(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Vec<SignedEntry>, StoreError> {
        self.backend.prefix_parents(ns, author, key)
    }

    fn author_heads(&mut self, ns: NamespaceId) -> Result<AuthorHeads, StoreError> {
        self.backend.author_heads(ns)
    }

    fn content_hashes(&mut self) -> Result<Vec<Hash>, StoreError> {
        self.backend.content_hashes()
    }

    fn put_author(&mut self, author: Author) -> Result<(), StoreError> {
        self.backend.put_author(author)
    }

    fn get_author(&mut self, id: AuthorId) -> Result<Option<Author>, StoreError> {
        self.backend.get_author(id)
    }

    fn delete_author(&mut self, id: AuthorId) -> Result<bool, StoreError> {
        self.backend.delete_author(id)
    }

    fn list_authors(&mut self) -> Result<Vec<AuthorId>, StoreError> {
        self.backend.list_authors()
    }

    fn put_namespace(&mut self, capability: Capability) -> Result<(), StoreError> {
        self.backend.put_namespace(capability)
    }

    fn get_namespace(&mut self, id: NamespaceId) -> Result<Option<Capability>, StoreError> {
        self.backend.get_namespace(id)
    }

    fn list_namespaces(&mut self) -> Result<Vec<(NamespaceId, CapabilityKind)>, StoreError> {
        self.backend.list_namespaces()
    }

    fn remove_namespace(&mut self, id: NamespaceId) -> Result<(), StoreError> {
        self.v2_sums.remove(&id);
        self.unload(id);
        self.pinned.remove(&id);
        self.pending.remove(&id);
        // The backend deletes the persisted summary with the namespace.
        self.summaries.remove(&id);
        self.backend.remove_namespace(id)
    }

    fn set_download_policy(
        &mut self,
        ns: NamespaceId,
        policy: &DownloadPolicy,
    ) -> Result<(), StoreError> {
        self.backend.set_download_policy(ns, policy)
    }

    fn get_download_policy(
        &mut self,
        ns: NamespaceId,
    ) -> Result<Option<DownloadPolicy>, StoreError> {
        self.backend.get_download_policy(ns)
    }

    fn register_useful_peer(&mut self, ns: NamespaceId, peer: PeerId) -> Result<(), StoreError> {
        self.backend.register_useful_peer(ns, peer)
    }

    fn sync_peers(&mut self, ns: NamespaceId) -> Result<Vec<PeerId>, StoreError> {
        self.backend.sync_peers(ns)
    }

    /// Writes the changed summaries and chunk rows (and, along with them, those learnt by
    /// building lists),
    /// then flushes the backend. On error its uncommitted
    /// writes may be lost, so every index and summary is dropped and rebuilt from the backend
    /// on next use.
    fn flush(&mut self) -> Result<(), StoreError> {
        self.flush_with(false)
    }

    fn get_summary(&mut self, ns: NamespaceId) -> Result<Option<NamespaceSummary>, StoreError> {
        self.summary(ns)
    }

    /// Summaries are `Indexed`'s own: writing one through it only forgets the namespace's
    /// (rebuilt from the entries on next use).
    fn put_summary(
        &mut self,
        ns: NamespaceId,
        _summary: Option<NamespaceSummary>,
    ) -> Result<(), StoreError> {
        self.forget(ns)
    }
}
