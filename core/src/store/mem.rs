//! [`MemBackend`]: the whole backend in memory, for the simulator, fuzzers and tests.
//!
//! Entries of a namespace live in a `BTreeMap` keyed by their suffix (`author ‖ key`, a
//! [`Bytes`] slice of the entry's own identifier, so no key bytes are copied); a
//! `BTreeSet<(key, author)>` gives the by-key order for queries. `flush` is a no-op: nothing
//! here survives the process. Fingerprints are not this module's business: wrap it in
//! [`Indexed`](super::Indexed).

use std::{
    collections::{BTreeMap, BTreeSet},
    ops::Bound,
};

use bytes::Bytes;

use super::{suffix, Backend, DownloadPolicy, NamespaceSummary, StoreError, PEERS_PER_DOC};
use crate::{
    entry::SignedEntry,
    hash::{Hash, PeerId},
    keys::{Author, AuthorId, Capability, CapabilityKind, NamespaceId},
    wire::AuthorHeads,
};

#[derive(Default, Clone)]
struct Namespace {
    /// Entries by suffix.
    entries: BTreeMap<Bytes, SignedEntry>,
    by_key: BTreeSet<(Bytes, AuthorId)>,
    heads: AuthorHeads,
}

/// An in-memory [`Backend`].
#[derive(Default, Clone)]
pub struct MemBackend {
    data: BTreeMap<NamespaceId, Namespace>,
    capabilities: BTreeMap<NamespaceId, Capability>,
    authors: BTreeMap<AuthorId, Author>,
    policies: BTreeMap<NamespaceId, DownloadPolicy>,
    peers: BTreeMap<NamespaceId, Vec<PeerId>>,
    summaries: BTreeMap<NamespaceId, NamespaceSummary>,
    chunks: BTreeMap<NamespaceId, BTreeMap<Vec<u8>, NamespaceSummary>>,
}

impl std::fmt::Debug for MemBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemBackend")
            .field("namespaces", &self.capabilities.len())
            .field("authors", &self.authors.len())
            .finish()
    }
}

impl MemBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Whether `BTreeMap::range` would panic on these bounds (inverted, or equal and both
/// excluded), i.e. whether they hold nothing.
fn empty_bounds<T: Ord>(lower: &Bound<T>, upper: &Bound<T>) -> bool {
    match (lower, upper) {
        (Bound::Excluded(a), Bound::Excluded(b)) => a >= b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => a > b,
        _ => false,
    }
}

/// Up to `limit` items of `iter`, from the back if `reverse`.
fn take<'a, T: 'a>(
    iter: impl DoubleEndedIterator<Item = &'a T>,
    reverse: bool,
    limit: usize,
) -> Vec<&'a T> {
    if reverse {
        iter.rev().take(limit).collect()
    } else {
        iter.take(limit).collect()
    }
}

impl Backend for MemBackend {
    fn get(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Option<SignedEntry>, StoreError> {
        Ok(self
            .data
            .get(&ns)
            .and_then(|n| n.entries.get(&suffix(author, key)[..]).cloned()))
    }

    fn put(&mut self, entry: SignedEntry) -> Result<(), StoreError> {
        let n = self.data.entry(entry.namespace()).or_default();
        n.heads.insert(entry.author(), entry.timestamp());
        n.by_key.insert((entry.id().key_bytes(), entry.author()));
        let key = entry.id().to_bytes().slice(32..);
        n.entries.insert(key, entry);
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
        let removed = n.entries.remove(&suffix(author, key)[..]);
        if removed.is_some() {
            n.by_key.remove(&(Bytes::copy_from_slice(key), author));
        }
        Ok(removed)
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
        if empty_bounds(&lower, &upper) {
            return Ok(Vec::new());
        }
        let bounds = (
            lower.as_ref().map(|v| v.as_slice()),
            upper.as_ref().map(|v| v.as_slice()),
        );
        let iter = n.entries.range::<[u8], _>(bounds).map(|(_, e)| e);
        Ok(take(iter, reverse, limit).into_iter().cloned().collect())
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
        if empty_bounds(&lower, &upper) {
            return Ok(Vec::new());
        }
        let keys = take(n.by_key.range((lower, upper)), reverse, limit);
        Ok(keys
            .into_iter()
            .filter_map(|(k, a)| n.entries.get(&suffix(*a, k)[..]).cloned())
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
            .flat_map(|n| n.entries.values().map(|e| e.content_hash()))
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
        self.summaries.remove(&id);
        self.chunks.remove(&id);
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

    fn get_summary(&mut self, ns: NamespaceId) -> Result<Option<NamespaceSummary>, StoreError> {
        Ok(self.summaries.get(&ns).copied())
    }

    fn put_summary(
        &mut self,
        ns: NamespaceId,
        summary: Option<NamespaceSummary>,
    ) -> Result<(), StoreError> {
        match summary {
            Some(s) => self.summaries.insert(ns, s),
            None => self.summaries.remove(&ns),
        };
        Ok(())
    }

    fn get_chunks(
        &mut self,
        ns: NamespaceId,
    ) -> Result<Vec<(Vec<u8>, NamespaceSummary)>, StoreError> {
        Ok(self
            .chunks
            .get(&ns)
            .map(|rows| rows.iter().map(|(k, s)| (k.clone(), *s)).collect())
            .unwrap_or_default())
    }

    fn put_chunks(
        &mut self,
        ns: NamespaceId,
        clear: bool,
        rows: &[(Vec<u8>, Option<NamespaceSummary>)],
    ) -> Result<(), StoreError> {
        let stored = self.chunks.entry(ns).or_default();
        if clear {
            stored.clear();
        }
        for (start, sum) in rows {
            match sum {
                Some(s) => stored.insert(start.clone(), *s),
                None => stored.remove(start),
            };
        }
        if stored.is_empty() {
            self.chunks.remove(&ns);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    crate::conformance_suite!(conformance, super::super::MemBackend::new);
}
