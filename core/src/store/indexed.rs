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
//!   not loaded yet only touches the backend). `remove_namespace` drops the tree.
//! * **Failures.** If a write fails, the backend may hold part of it: the namespace's tree is
//!   dropped and rebuilt from the backend on next use. If a flush fails, the backend's
//!   uncommitted writes may be gone: every tree is dropped.
//! * **Ranges** sent by a peer are clamped to the namespace: a bound in another namespace
//!   maps to the start or end of this one.
//!
//! Writes made on the backend directly ([`Indexed::backend_mut`]) bypass the index; after
//! one, call [`Indexed::forget`].

use std::{
    collections::{btree_map, BTreeMap},
    ops::Bound,
};

use bytes::Bytes;

use super::{
    fptree::FpTree, id_from_suffix, suffix, suffix_of, Backend, DownloadPolicy, StoreError,
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
/// * A namespace's tree is built lazily, on the first range query, from one ordered walk of
///   its entries ([`Backend::scan_author_key`] in pages of [`BUILD_PAGE`]), in O(n).
/// * Writes through `Indexed` update a loaded tree; a write to a namespace not loaded yet only
///   touches the backend. `remove_namespace` drops the tree.
/// * A failed write drops the namespace's tree, a failed flush drops every tree: they are
///   rebuilt from the backend on next use.
/// * Writes made on [`backend_mut`](Self::backend_mut) bypass the index; call
///   [`forget`](Self::forget) after one.
pub struct Indexed<B> {
    backend: B,
    /// Fingerprint trees of the namespaces loaded so far, keyed by suffix.
    trees: BTreeMap<NamespaceId, FpTree<()>>,
}

impl<B: std::fmt::Debug> std::fmt::Debug for Indexed<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Indexed")
            .field("backend", &self.backend)
            .field("indexed_namespaces", &self.trees.len())
            .finish()
    }
}

impl<B: Default> Default for Indexed<B> {
    fn default() -> Self {
        Self::new(B::default())
    }
}

impl<B> Indexed<B> {
    /// Wraps `backend`; no index is built until a range method needs one.
    pub fn new(backend: B) -> Self {
        Self {
            backend,
            trees: BTreeMap::new(),
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

    /// The backend, dropping the index.
    pub fn into_backend(self) -> B {
        self.backend
    }

    /// Drops the index of `ns` (rebuilt from the backend on next use).
    pub fn forget(&mut self, ns: NamespaceId) {
        self.trees.remove(&ns);
    }

    /// Drops every index.
    pub fn forget_all(&mut self) {
        self.trees.clear();
    }

    /// Number of namespaces whose index is loaded.
    pub fn indexed_namespaces(&self) -> usize {
        self.trees.len()
    }
}

/// Builds the fingerprint tree of `ns` from the backend's entries, in suffix order, streaming
/// pages of [`BUILD_PAGE`] entries into `FpTree::from_sorted` (no copy of the namespace is
/// held besides the tree). A backend that scans out of order or outside the namespace is
/// reported as corrupt.
fn build<B: Backend + ?Sized>(backend: &mut B, ns: NamespaceId) -> Result<FpTree<()>, StoreError> {
    let mut failure = None;
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
        None => Ok(tree),
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

impl<B: Backend> Indexed<B> {
    /// The index of `ns`, built if not loaded yet.
    fn tree(&mut self, ns: NamespaceId) -> Result<&FpTree<()>, StoreError> {
        match self.trees.entry(ns) {
            btree_map::Entry::Occupied(o) => Ok(o.into_mut()),
            btree_map::Entry::Vacant(v) => Ok(v.insert(build(&mut self.backend, ns)?)),
        }
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

    /// Number of entries in the namespace.
    pub fn namespace_len(&mut self, ns: NamespaceId) -> Result<usize, StoreError> {
        Ok(self.tree(ns)?.len())
    }

    /// The smallest record identifier of the namespace.
    pub fn first_id(&mut self, ns: NamespaceId) -> Result<Option<RecordIdentifier>, StoreError> {
        Ok(self
            .tree(ns)?
            .select(0)
            .map(|(k, _, _)| id_from_suffix(ns, k)))
    }

    /// Number of entries of the namespace in `range`.
    pub fn range_len(&mut self, ns: NamespaceId, range: &Range) -> Result<usize, StoreError> {
        Ok(self.spans(ns, range)?.1.len())
    }

    /// Fingerprint of the entries of the namespace in `range` (seeded with
    /// [`Fingerprint::EMPTY`]).
    pub fn range_fingerprint(
        &mut self,
        ns: NamespaceId,
        range: &Range,
    ) -> Result<Fingerprint, StoreError> {
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
                self.trees.remove(&ns);
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
        // Hash the entry only if its namespace's tree is loaded.
        let indexed = self.trees.contains_key(&ns).then(|| {
            (
                Bytes::copy_from_slice(suffix_of(entry.id())),
                entry.fingerprint(),
            )
        });
        if let Err(e) = self.backend.put(entry) {
            self.trees.remove(&ns);
            return Err(e);
        }
        if let (Some(tree), Some((key, fp))) = (self.trees.get_mut(&ns), indexed) {
            tree.insert(key, fp, ());
        }
        Ok(())
    }

    fn remove(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Option<SignedEntry>, StoreError> {
        let removed = self.backend.remove(ns, author, key);
        match &removed {
            Ok(None) => {}
            Ok(Some(_)) => {
                if let Some(tree) = self.trees.get_mut(&ns) {
                    tree.remove(&suffix(author, key));
                }
            }
            Err(_) => {
                self.trees.remove(&ns);
            }
        }
        removed
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
        self.trees.remove(&id);
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

    /// Flushes the backend. On error its uncommitted writes may be lost, so every index is
    /// dropped and rebuilt from the backend on next use.
    fn flush(&mut self) -> Result<(), StoreError> {
        let flushed = self.backend.flush();
        if flushed.is_err() {
            self.trees.clear();
        }
        flushed
    }
}
