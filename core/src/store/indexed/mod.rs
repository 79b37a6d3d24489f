//! [`Indexed`]: any [`Backend`] plus the fingerprint index that reconciliation needs.
//!
//! Reconciliation asks, for arbitrary key ranges of a namespace, for their fingerprint, their
//! size and the element at an offset (the pivot that splits them). iroh-docs answers each by
//! scanning the range; here every namespace gets an in-memory order-statistics tree of entry
//! fingerprints (`FpTree<()>`, see the `fptree` module) and each answer costs O(log n) without
//! touching the backend. The index lives in this one place, the same for every backend, so a
//! backend only stores rows.
//!
//! * **Lazy.** A namespace's tree is built the first time a range method needs it, from one
//!   ordered walk of its entries ([`Backend::scan_author_key`], in pages of
//!   [`BUILD_PAGE`] entries), in O(n) with `FpTree::from_sorted`.
//! * **In step.** Writes go through [`Indexed`]'s own [`Backend`] implementation, which
//!   forwards them and updates the tree of a namespace that is loaded (a write to a namespace
//!   not loaded yet only touches the backend and the namespace's summary). `remove_namespace`
//!   drops the tree.
//! * **Within a budget.** Each loaded tree's heap is estimated (the `memory` module); when the
//!   trees together exceed [`budget`](Indexed::budget), the least recently used ones are
//!   dropped, except the one in use and those [`pin`](Indexed::pin)ned (the store executor
//!   pins the documents that are syncing). A dropped tree is rebuilt on its next range query.
//!   Pinned trees may hold the index above its budget: by at most the indexes of the
//!   documents syncing at once.
//! * **Summaries.** For every namespace it has seen, `Indexed` keeps a [`NamespaceSummary`]
//!   (entry count and XOR of fingerprints, 40 bytes), also while its tree is not loaded, and
//!   persists it through [`Backend::put_summary`] before each flush. The whole-namespace
//!   fingerprint and count, and the first identifier, are answered without a tree: the first
//!   message of every sync and the answer to a peer's that matches need no index, so a sync
//!   that finds nothing to do costs O(1) store reads even right after the store was opened or
//!   the tree evicted. A write to a namespace without a tree reads the entry it replaces (one
//!   `get`) to keep the summary exact.
//! * **Summaries stay true across crashes.** The first write to a namespace after a flush
//!   deletes its persisted summary in the same transaction, and the flush writes the new one
//!   before committing; whatever commits (a flush, or a backend committing on drop), a stored
//!   summary describes the stored entries. A summary that disagrees with a tree built from the
//!   backend is replaced and counted ([`IndexStats::summary_repairs`]).
//! * **Failures.** If a write fails, the backend may hold part of it: the namespace's tree and
//!   summary are dropped and rebuilt from the backend on next use. If a flush fails, the
//!   backend's uncommitted writes may be gone: every tree and summary is dropped.
//! * **Ranges** sent by a peer are clamped to the namespace: a bound in another namespace
//!   maps to the start or end of this one.
//!
//! Writes made on the backend directly ([`Indexed::backend_mut`]) bypass the index; after
//! one, call [`Indexed::forget`].

mod memory;
mod spans;
mod summaries;
#[cfg(test)]
mod tests;

use std::{
    collections::{BTreeMap, BTreeSet},
    ops::Bound,
};

use bytes::Bytes;

pub use self::memory::IndexStats;
use self::{
    memory::{entry_bytes, SUMMARY_BYTES, TREE_BYTES},
    spans::{build, RankSpans},
};
use super::{
    fptree::FpTree, id_from_suffix, suffix, suffix_of, Backend, DownloadPolicy, NamespaceSummary,
    StoreError,
};
use crate::{
    entry::{RecordIdentifier, SignedEntry},
    hash::{Hash, PeerId},
    keys::{Author, AuthorId, Capability, CapabilityKind, NamespaceId},
    ranger::{Fingerprint, Range},
    wire::AuthorHeads,
};

/// Entries read per backend call while building a namespace's index.
pub const BUILD_PAGE: usize = 1024;

/// A [`Backend`] with the per-namespace fingerprint index on top.
///
/// `Indexed<B>` is itself a [`Backend`] (every write through it keeps the index in step), and
/// adds the range queries of reconciliation: [`range_fingerprint`](Self::range_fingerprint),
/// [`range_len`](Self::range_len), [`range_pivot`](Self::range_pivot),
/// [`range_entries`](Self::range_entries), [`namespace_len`](Self::namespace_len) and
/// [`first_id`](Self::first_id), each O(log n) from an in-memory order-statistics tree of
/// entry fingerprints per namespace.
///
/// * A namespace's tree is built lazily, on the first range query that needs it, from one
///   ordered walk of its entries ([`Backend::scan_author_key`] in pages of [`BUILD_PAGE`]), in
///   O(n). Whole-namespace queries are answered from its [`NamespaceSummary`] when the tree is
///   not loaded.
/// * The trees share a memory [`budget`](Self::budget): over it, the least recently used
///   trees that are not [`pin`](Self::pin)ned are dropped. See the module docs.
/// * Writes through `Indexed` update a loaded tree and the namespace's summary.
/// * A failed write drops the namespace's tree, a failed flush drops every tree: they are
///   rebuilt from the backend on next use.
/// * Writes made on [`backend_mut`](Self::backend_mut) bypass the index; call
///   [`forget`](Self::forget) after one.
pub struct Indexed<B> {
    backend: B,
    /// Fingerprint trees of the namespaces loaded now.
    trees: BTreeMap<NamespaceId, Loaded>,
    /// The loaded namespaces by last use, oldest first (keys are `Loaded::used`).
    lru: BTreeMap<u64, NamespaceId>,
    /// Use counter behind `lru` (a logical clock: deterministic).
    tick: u64,
    /// Namespaces whose trees are not evicted.
    pinned: BTreeSet<NamespaceId>,
    /// Summaries known, of loaded and unloaded namespaces. `None`: the backend holds none that
    /// is valid, so the summary is learnt by building the tree.
    summaries: BTreeMap<NamespaceId, Option<NamespaceSummary>>,
    /// Summaries to write to the backend before the next flush.
    pending: BTreeMap<NamespaceId, Option<NamespaceSummary>>,
    /// Namespaces whose persisted summary was deleted in the backend's current transaction.
    invalidated: BTreeSet<NamespaceId>,
    /// Estimated heap of the loaded trees.
    bytes: usize,
    budget: usize,
    stats: IndexStats,
}

/// A loaded tree with its estimated heap and last use.
struct Loaded {
    tree: FpTree<()>,
    bytes: usize,
    used: u64,
}

impl<B: std::fmt::Debug> std::fmt::Debug for Indexed<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Indexed")
            .field("backend", &self.backend)
            .field("indexed_namespaces", &self.trees.len())
            .field("index_bytes", &self.bytes)
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

    /// Wraps `backend`, keeping the estimated heap of the loaded trees within `budget` bytes
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
            bytes: 0,
            budget,
            stats: IndexStats::default(),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend, for reads (and for tools that write and then call
    /// [`forget`](Self::forget)): writes made here bypass the index.
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// The backend, dropping the index (summaries not flushed yet are not written).
    pub fn into_backend(self) -> B {
        self.backend
    }

    /// Number of namespaces whose index is loaded.
    pub fn indexed_namespaces(&self) -> usize {
        self.trees.len()
    }

    /// The memory budget of the loaded trees, in bytes (`usize::MAX`: none).
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Sets the memory budget; trees over it are evicted at once (least recently used first,
    /// never a pinned one). A budget of 0 keeps only pinned trees and the one in use.
    pub fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
        self.enforce(None);
    }

    /// Keeps the tree of `ns` (once loaded) through evictions until [`unpin`](Self::unpin).
    pub fn pin(&mut self, ns: NamespaceId) {
        self.pinned.insert(ns);
    }

    /// Lets the tree of `ns` be evicted again (at once, if the trees are over budget).
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
        IndexStats {
            loaded: self.trees.len(),
            pinned: self.pinned.len(),
            bytes: self.bytes + self.summaries.len() * SUMMARY_BYTES,
            budget: self.budget,
            ..self.stats
        }
    }

    /// The next use tick.
    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// Drops the tree of `ns`, if loaded.
    fn unload(&mut self, ns: NamespaceId) {
        if let Some(l) = self.trees.remove(&ns) {
            self.lru.remove(&l.used);
            self.bytes = self.bytes.saturating_sub(l.bytes);
        }
    }

    /// Drops every tree.
    fn unload_all(&mut self) {
        self.trees.clear();
        self.lru.clear();
        self.bytes = 0;
    }

    /// Evicts least recently used trees, other than `keep` and the pinned ones, until the
    /// trees fit the budget (or only those are left).
    fn enforce(&mut self, keep: Option<NamespaceId>) {
        while self.bytes > self.budget {
            let victim = self
                .lru
                .values()
                .copied()
                .find(|ns| Some(*ns) != keep && !self.pinned.contains(ns));
            let Some(victim) = victim else {
                return;
            };
            self.unload(victim);
            self.stats.evictions += 1;
        }
    }
}

/// A tree's summary.
fn tree_summary(tree: &FpTree<()>) -> NamespaceSummary {
    NamespaceSummary {
        count: tree.len() as u64,
        fingerprint: tree.total_fingerprint(),
    }
}

impl<B: Backend> Indexed<B> {
    /// The index of `ns`, built if not loaded yet, marked as used now.
    fn tree(&mut self, ns: NamespaceId) -> Result<&FpTree<()>, StoreError> {
        if !self.trees.contains_key(&ns) {
            self.load_tree(ns)?;
        }
        let tick = self.next_tick();
        let Some(l) = self.trees.get_mut(&ns) else {
            return Err(StoreError::Backend("index not loaded".into()));
        };
        self.lru.remove(&l.used);
        l.used = tick;
        self.lru.insert(tick, ns);
        Ok(&l.tree)
    }

    /// Builds the tree of `ns`, checks (and repairs) the namespace's summary against it, and
    /// evicts others if the budget is exceeded.
    fn load_tree(&mut self, ns: NamespaceId) -> Result<(), StoreError> {
        let (tree, bytes) = build(&mut self.backend, ns)?;
        self.stats.builds += 1;
        let built = tree_summary(&tree);
        let known = match self.summaries.get(&ns) {
            Some(known) => *known,
            None => self.backend.get_summary(ns)?,
        };
        match known {
            Some(known) if known != built => {
                self.stats.summary_repairs += 1;
                self.changed(ns, Some(built))?;
            }
            Some(_) => {}
            None => {
                self.pending.insert(ns, Some(built));
            }
        }
        self.summaries.insert(ns, Some(built));
        let used = self.next_tick();
        let bytes = bytes + TREE_BYTES;
        self.trees.insert(ns, Loaded { tree, bytes, used });
        self.lru.insert(used, ns);
        self.bytes += bytes;
        self.enforce(Some(ns));
        Ok(())
    }

    /// `range` resolved against the index of `ns`.
    fn spans(
        &mut self,
        ns: NamespaceId,
        range: &Range,
    ) -> Result<(&FpTree<()>, RankSpans), StoreError> {
        let tree = self.tree(ns)?;
        let spans = RankSpans::new(ns, range, tree.len(), |s| tree.rank(s));
        Ok((tree, spans))
    }

    /// Builds the index of `ns` now if it is not loaded (a running node does this when it
    /// opens a document, so that its first sync does not pay for it).
    pub fn load(&mut self, ns: NamespaceId) -> Result<(), StoreError> {
        self.tree(ns).map(|_| ())
    }

    /// Number of entries in the namespace (from its summary when its tree is not loaded).
    pub fn namespace_len(&mut self, ns: NamespaceId) -> Result<usize, StoreError> {
        if let Some(s) = self.unloaded_summary(ns)? {
            return Ok(s.count as usize);
        }
        Ok(self.tree(ns)?.len())
    }

    /// The smallest record identifier of the namespace (one backend read when its tree is not
    /// loaded).
    pub fn first_id(&mut self, ns: NamespaceId) -> Result<Option<RecordIdentifier>, StoreError> {
        if !self.trees.contains_key(&ns) {
            let first =
                self.backend
                    .scan_author_key(ns, Bound::Unbounded, Bound::Unbounded, false, 1)?;
            return Ok(first.first().map(|e| e.id().clone()));
        }
        Ok(self
            .tree(ns)?
            .select(0)
            .map(|(k, _, _)| id_from_suffix(ns, k)))
    }

    /// Number of entries of the namespace in `range`.
    pub fn range_len(&mut self, ns: NamespaceId, range: &Range) -> Result<usize, StoreError> {
        if range.x() == range.y() {
            if let Some(s) = self.unloaded_summary(ns)? {
                return Ok(s.count as usize);
            }
        }
        Ok(self.spans(ns, range)?.1.len())
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
        let (tree, spans) = self.spans(ns, range)?;
        Ok(spans.intervals().fold(Fingerprint::EMPTY, |fp, (a, b)| {
            fp.xor(&tree.span_fingerprint(a, b))
        }))
    }

    /// The identifier at `offset` in `range`, counting cyclically from the first entry at or
    /// after the range's `x` (the pivot rule of iroh-docs' ranger).
    pub fn range_pivot(
        &mut self,
        ns: NamespaceId,
        range: &Range,
        offset: usize,
    ) -> Result<Option<RecordIdentifier>, StoreError> {
        let (tree, spans) = self.spans(ns, range)?;
        Ok(spans
            .cyclic_rank(offset)
            .and_then(|rank| tree.select(rank))
            .map(|(k, _, _)| id_from_suffix(ns, k)))
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
        let scans: Vec<(Vec<u8>, Vec<u8>, usize)> = {
            let (tree, spans) = self.spans(ns, range)?;
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
                let (Some((lo, _, _)), Some((hi, _, _))) =
                    (tree.select(first), tree.select(first + take - 1))
                else {
                    break;
                };
                scans.push((lo.to_vec(), hi.to_vec(), take));
                left -= take;
                skip = 0;
            }
            scans
        };
        let mut out = Vec::with_capacity(scans.iter().map(|s| s.2).sum());
        for (lo, hi, take) in scans {
            let rows = self.backend.scan_author_key(
                ns,
                Bound::Included(lo),
                Bound::Included(hi.clone()),
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
        let loaded = self.trees.contains_key(&ns);
        // Without a tree, a known summary needs the fingerprint of the entry replaced.
        let summary = if loaded { None } else { self.summary(ns)? };
        let replaced = match summary {
            Some(_) => self
                .backend
                .get(ns, entry.author(), entry.key())?
                .map(|old| old.fingerprint()),
            None => None,
        };
        // Hash the entry only if its tree or summary needs it.
        let fp = (loaded || summary.is_some()).then(|| entry.fingerprint());
        let key_len = suffix_of(entry.id()).len();
        let key = loaded.then(|| Bytes::copy_from_slice(suffix_of(entry.id())));
        if let Err(e) = self.backend.put(entry) {
            self.failed(ns);
            return Err(e);
        }
        let new = match (self.trees.get_mut(&ns), key, fp) {
            (Some(l), Some(key), Some(fp)) => {
                if l.tree.insert(key, fp, ()).is_none() {
                    let grown = entry_bytes(key_len);
                    l.bytes += grown;
                    self.bytes += grown;
                }
                Some(tree_summary(&l.tree))
            }
            _ => summary.zip(fp).map(|(s, fp)| NamespaceSummary {
                count: s.count + u64::from(replaced.is_none()),
                fingerprint: s
                    .fingerprint
                    .xor(&fp)
                    .xor(&replaced.unwrap_or(Fingerprint([0; 32]))),
            }),
        };
        self.changed(ns, new)?;
        if loaded {
            self.enforce(Some(ns));
        }
        Ok(())
    }

    fn remove(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Option<SignedEntry>, StoreError> {
        let summary = self.summary(ns)?;
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
        let new = match self.trees.get_mut(&ns) {
            Some(l) => {
                let suffix = suffix(author, key);
                if l.tree.remove(&suffix).is_some() {
                    let shrunk = entry_bytes(suffix.len());
                    l.bytes = l.bytes.saturating_sub(shrunk);
                    self.bytes = self.bytes.saturating_sub(shrunk);
                }
                Some(tree_summary(&l.tree))
            }
            None => summary.map(|s| NamespaceSummary {
                count: s.count.saturating_sub(1),
                fingerprint: s.fingerprint.xor(&entry.fingerprint()),
            }),
        };
        self.changed(ns, new)?;
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

    /// Writes the changed summaries (and, along with them, those learnt by building trees),
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
