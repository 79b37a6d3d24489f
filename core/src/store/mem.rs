//! [`MemStore`]: the whole store in memory, for the simulator, fuzzers and tests.
//!
//! Entries of a namespace live directly in the fingerprint tree (`FpTree<SignedEntry>`), so
//! range fingerprints, counts and pivots are O(log n) and there is no second copy. A
//! `BTreeSet<(key, author)>` gives the by-key order for queries. `flush` is a no-op: nothing
//! here survives the process.

use std::{
    collections::{BTreeMap, BTreeSet},
    ops::Bound,
};

use bytes::Bytes;

use super::{
    fptree::FpTree, id_from_suffix, suffix, suffix_of, DownloadPolicy, RankSpans, Store,
    StoreError, PEERS_PER_DOC,
};
use crate::{
    entry::{RecordIdentifier, SignedEntry},
    hash::{Hash, PeerId},
    keys::{Author, AuthorId, Capability, CapabilityKind, NamespaceId},
    ranger::{Fingerprint, Range},
    wire::AuthorHeads,
};

#[derive(Default)]
struct Namespace {
    entries: FpTree<SignedEntry>,
    by_key: BTreeSet<(Bytes, AuthorId)>,
    heads: AuthorHeads,
}

/// An in-memory [`Store`].
#[derive(Default)]
pub struct MemStore {
    data: BTreeMap<NamespaceId, Namespace>,
    capabilities: BTreeMap<NamespaceId, Capability>,
    authors: BTreeMap<AuthorId, Author>,
    policies: BTreeMap<NamespaceId, DownloadPolicy>,
    peers: BTreeMap<NamespaceId, Vec<PeerId>>,
}

impl std::fmt::Debug for MemStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemStore")
            .field("namespaces", &self.capabilities.len())
            .field("authors", &self.authors.len())
            .finish()
    }
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn spans(&self, ns: NamespaceId, range: &Range) -> Option<(&FpTree<SignedEntry>, RankSpans)> {
        let tree = &self.data.get(&ns)?.entries;
        let spans = RankSpans::new(ns, range, tree.len(), |s| tree.rank(s));
        Some((tree, spans))
    }
}

/// Entries of `tree` in rank order across `spans`, after `skip`, at most `limit`.
pub(super) fn collect_spans<V, T>(
    tree: &FpTree<V>,
    spans: &RankSpans,
    skip: usize,
    limit: usize,
    mut f: impl FnMut(&Bytes, &V) -> T,
) -> Vec<T> {
    let mut out = Vec::new();
    let mut skip = skip;
    for (a, b) in spans.intervals() {
        let n = b - a;
        if skip >= n {
            skip -= n;
            continue;
        }
        let take = (n - skip).min(limit - out.len());
        out.extend(tree.iter_from(a + skip).take(take).map(|(k, _, v)| f(k, v)));
        skip = 0;
        if out.len() == limit {
            break;
        }
    }
    out
}

/// Fingerprint of `spans` in `tree`, seeded with the empty fingerprint.
pub(super) fn spans_fingerprint<V>(tree: &FpTree<V>, spans: &RankSpans) -> Fingerprint {
    spans.intervals().fold(Fingerprint::EMPTY, |fp, (a, b)| {
        fp.xor(&tree.span_fingerprint(a, b))
    })
}

/// Ranks `[lo, hi)` of `tree` whose keys fall within the bounds.
pub(super) fn bound_ranks<V>(
    tree: &FpTree<V>,
    lower: &Bound<&[u8]>,
    upper: &Bound<&[u8]>,
) -> (usize, usize) {
    let lo = match lower {
        Bound::Unbounded => 0,
        Bound::Included(k) => tree.rank(k),
        Bound::Excluded(k) => tree.rank(k) + usize::from(tree.get(k).is_some()),
    };
    let hi = match upper {
        Bound::Unbounded => tree.len(),
        Bound::Included(k) => tree.rank(k) + usize::from(tree.get(k).is_some()),
        Bound::Excluded(k) => tree.rank(k),
    };
    (lo, hi.max(lo))
}

impl Store for MemStore {
    fn get(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Option<SignedEntry>, StoreError> {
        Ok(self
            .data
            .get(&ns)
            .and_then(|n| n.entries.get(&suffix(author, key)).cloned()))
    }

    fn put(&mut self, entry: SignedEntry) -> Result<(), StoreError> {
        let n = self.data.entry(entry.namespace()).or_default();
        n.heads.insert(entry.author(), entry.timestamp());
        n.by_key.insert((entry.id().key_bytes(), entry.author()));
        let key = Bytes::copy_from_slice(suffix_of(entry.id()));
        let fp = entry.fingerprint();
        n.entries.insert(key, fp, entry);
        Ok(())
    }

    fn remove(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Option<SignedEntry>, StoreError> {
        let Some(n) = self.data.get_mut(&ns) else {
            return Ok(None);
        };
        let removed = n.entries.remove(&suffix(author, key)).map(|(_, e)| e);
        if removed.is_some() {
            n.by_key.remove(&(Bytes::copy_from_slice(key), author));
        }
        Ok(removed)
    }

    fn prefixed_by(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        prefix: &[u8],
    ) -> Result<Vec<SignedEntry>, StoreError> {
        let Some(n) = self.data.get(&ns) else {
            return Ok(Vec::new());
        };
        let start = suffix(author, prefix);
        let from = n.entries.rank(&start);
        Ok(n.entries
            .iter_from(from)
            .take_while(|(k, _, _)| k.starts_with(&start))
            .map(|(_, _, e)| e.clone())
            .collect())
    }

    fn namespace_len(&mut self, ns: NamespaceId) -> Result<usize, StoreError> {
        Ok(self.data.get(&ns).map_or(0, |n| n.entries.len()))
    }

    fn first_id(&mut self, ns: NamespaceId) -> Result<Option<RecordIdentifier>, StoreError> {
        Ok(self
            .data
            .get(&ns)
            .and_then(|n| n.entries.select(0))
            .map(|(k, _, _)| id_from_suffix(ns, k)))
    }

    fn range_len(&mut self, ns: NamespaceId, range: &Range) -> Result<usize, StoreError> {
        Ok(self.spans(ns, range).map_or(0, |(_, s)| s.len()))
    }

    fn range_fingerprint(
        &mut self,
        ns: NamespaceId,
        range: &Range,
    ) -> Result<Fingerprint, StoreError> {
        Ok(self
            .spans(ns, range)
            .map_or(Fingerprint::EMPTY, |(tree, s)| spans_fingerprint(tree, &s)))
    }

    fn range_pivot(
        &mut self,
        ns: NamespaceId,
        range: &Range,
        offset: usize,
    ) -> Result<Option<RecordIdentifier>, StoreError> {
        Ok(self.spans(ns, range).and_then(|(tree, s)| {
            let rank = s.cyclic_rank(offset)?;
            tree.select(rank).map(|(k, _, _)| id_from_suffix(ns, k))
        }))
    }

    fn range_entries(
        &mut self,
        ns: NamespaceId,
        range: &Range,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        Ok(self.spans(ns, range).map_or_else(Vec::new, |(tree, s)| {
            collect_spans(tree, &s, skip, limit, |_, e| e.clone())
        }))
    }

    fn scan_author_key(
        &mut self,
        ns: NamespaceId,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        let Some(n) = self.data.get(&ns) else {
            return Ok(Vec::new());
        };
        let tree = &n.entries;
        let (lo, hi) = bound_ranks(
            tree,
            &lower.as_ref().map(|v| v.as_slice()),
            &upper.as_ref().map(|v| v.as_slice()),
        );
        let count = (hi - lo).min(limit);
        let start = if reverse { hi - count } else { lo };
        let mut out: Vec<SignedEntry> = tree
            .iter_from(start)
            .take(count)
            .map(|(_, _, e)| e.clone())
            .collect();
        if reverse {
            out.reverse();
        }
        Ok(out)
    }

    fn scan_key_author(
        &mut self,
        ns: NamespaceId,
        lower: Bound<(Bytes, AuthorId)>,
        upper: Bound<(Bytes, AuthorId)>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        let Some(n) = self.data.get(&ns) else {
            return Ok(Vec::new());
        };
        // `BTreeMap::range` panics on inverted bounds and on equal bounds both excluded.
        let empty = match (&lower, &upper) {
            (Bound::Excluded(a), Bound::Excluded(b)) => a >= b,
            (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
                a > b
            }
            _ => false,
        };
        if empty {
            return Ok(Vec::new());
        }
        let iter = n.by_key.range((lower, upper));
        let keys: Vec<&(Bytes, AuthorId)> = if reverse {
            iter.rev().take(limit).collect()
        } else {
            iter.take(limit).collect()
        };
        Ok(keys
            .into_iter()
            .filter_map(|(k, a)| n.entries.get(&suffix(*a, k)).cloned())
            .collect())
    }

    fn author_heads(&mut self, ns: NamespaceId) -> Result<AuthorHeads, StoreError> {
        Ok(self
            .data
            .get(&ns)
            .map(|n| n.heads.clone())
            .unwrap_or_default())
    }

    fn content_hashes(&mut self) -> Result<Vec<Hash>, StoreError> {
        Ok(self
            .data
            .values()
            .flat_map(|n| n.entries.iter_from(0).map(|(_, _, e)| e.content_hash()))
            .collect())
    }

    fn put_author(&mut self, author: Author) -> Result<(), StoreError> {
        self.authors.insert(author.id(), author);
        Ok(())
    }

    fn get_author(&mut self, id: AuthorId) -> Result<Option<Author>, StoreError> {
        Ok(self.authors.get(&id).cloned())
    }

    fn delete_author(&mut self, id: AuthorId) -> Result<bool, StoreError> {
        Ok(self.authors.remove(&id).is_some())
    }

    fn list_authors(&mut self) -> Result<Vec<AuthorId>, StoreError> {
        Ok(self.authors.keys().copied().collect())
    }

    fn put_namespace(&mut self, capability: Capability) -> Result<(), StoreError> {
        self.capabilities.insert(capability.id(), capability);
        Ok(())
    }

    fn get_namespace(&mut self, id: NamespaceId) -> Result<Option<Capability>, StoreError> {
        Ok(self.capabilities.get(&id).cloned())
    }

    fn list_namespaces(&mut self) -> Result<Vec<(NamespaceId, CapabilityKind)>, StoreError> {
        Ok(self
            .capabilities
            .iter()
            .map(|(id, cap)| (*id, cap.kind()))
            .collect())
    }

    fn remove_namespace(&mut self, id: NamespaceId) -> Result<(), StoreError> {
        self.data.remove(&id);
        self.capabilities.remove(&id);
        self.policies.remove(&id);
        self.peers.remove(&id);
        Ok(())
    }

    fn set_download_policy(
        &mut self,
        ns: NamespaceId,
        policy: &DownloadPolicy,
    ) -> Result<(), StoreError> {
        self.policies.insert(ns, policy.clone());
        Ok(())
    }

    fn get_download_policy(
        &mut self,
        ns: NamespaceId,
    ) -> Result<Option<DownloadPolicy>, StoreError> {
        Ok(self.policies.get(&ns).cloned())
    }

    fn register_useful_peer(&mut self, ns: NamespaceId, peer: PeerId) -> Result<(), StoreError> {
        let peers = self.peers.entry(ns).or_default();
        peers.retain(|p| *p != peer);
        peers.insert(0, peer);
        peers.truncate(PEERS_PER_DOC);
        Ok(())
    }

    fn sync_peers(&mut self, ns: NamespaceId) -> Result<Vec<PeerId>, StoreError> {
        Ok(self.peers.get(&ns).cloned().unwrap_or_default())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}
