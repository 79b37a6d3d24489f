//! [`Counting`]: a backend that forwards every method to another and counts the entries its
//! range scans by author and key return (the scans `Indexed` reads ranges with).
//!
//! `sheaf-bench` has a counting backend of its own that counts every read for its reports;
//! this one counts only what the range budget bounds, and the core cannot depend on the bench.

use std::ops::Bound;

use bytes::Bytes;

use crate::{
    entry::SignedEntry,
    hash::{Hash, PeerId},
    keys::{Author, AuthorId, Capability, CapabilityKind, NamespaceId},
    store::{Backend, DownloadPolicy, StoreError},
    wire::AuthorHeads,
};

/// `inner`, counting the entries returned by `scan_author_key` in `reads`.
pub(super) struct Counting<B> {
    inner: B,
    /// Entries returned by `scan_author_key` so far.
    pub(super) reads: usize,
}

impl<B> Counting<B> {
    pub(super) fn new(inner: B) -> Self {
        Self { inner, reads: 0 }
    }
}

impl<B: Backend> Backend for Counting<B> {
    fn get(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Option<SignedEntry>, StoreError> {
        self.inner.get(ns, author, key)
    }
    fn put(&mut self, entry: SignedEntry) -> Result<(), StoreError> {
        self.inner.put(entry)
    }
    fn remove(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Option<SignedEntry>, StoreError> {
        self.inner.remove(ns, author, key)
    }
    fn scan_author_key(
        &mut self,
        ns: NamespaceId,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        let rows = self
            .inner
            .scan_author_key(ns, lower, upper, reverse, limit)?;
        self.reads += rows.len();
        Ok(rows)
    }
    fn scan_key_author(
        &mut self,
        ns: NamespaceId,
        lower: Bound<(Bytes, AuthorId)>,
        upper: Bound<(Bytes, AuthorId)>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        self.inner.scan_key_author(ns, lower, upper, reverse, limit)
    }
    fn prefixed_by(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        prefix: &[u8],
    ) -> Result<Vec<SignedEntry>, StoreError> {
        self.inner.prefixed_by(ns, author, prefix)
    }
    fn author_heads(&mut self, ns: NamespaceId) -> Result<AuthorHeads, StoreError> {
        self.inner.author_heads(ns)
    }
    fn content_hashes(&mut self) -> Result<Vec<Hash>, StoreError> {
        self.inner.content_hashes()
    }
    fn put_author(&mut self, author: Author) -> Result<(), StoreError> {
        self.inner.put_author(author)
    }
    fn get_author(&mut self, id: AuthorId) -> Result<Option<Author>, StoreError> {
        self.inner.get_author(id)
    }
    fn delete_author(&mut self, id: AuthorId) -> Result<bool, StoreError> {
        self.inner.delete_author(id)
    }
    fn list_authors(&mut self) -> Result<Vec<AuthorId>, StoreError> {
        self.inner.list_authors()
    }
    fn put_namespace(&mut self, capability: Capability) -> Result<(), StoreError> {
        self.inner.put_namespace(capability)
    }
    fn get_namespace(&mut self, id: NamespaceId) -> Result<Option<Capability>, StoreError> {
        self.inner.get_namespace(id)
    }
    fn list_namespaces(&mut self) -> Result<Vec<(NamespaceId, CapabilityKind)>, StoreError> {
        self.inner.list_namespaces()
    }
    fn remove_namespace(&mut self, id: NamespaceId) -> Result<(), StoreError> {
        self.inner.remove_namespace(id)
    }
    fn set_download_policy(
        &mut self,
        ns: NamespaceId,
        policy: &DownloadPolicy,
    ) -> Result<(), StoreError> {
        self.inner.set_download_policy(ns, policy)
    }
    fn get_download_policy(
        &mut self,
        ns: NamespaceId,
    ) -> Result<Option<DownloadPolicy>, StoreError> {
        self.inner.get_download_policy(ns)
    }
    fn register_useful_peer(&mut self, ns: NamespaceId, peer: PeerId) -> Result<(), StoreError> {
        self.inner.register_useful_peer(ns, peer)
    }
    fn sync_peers(&mut self, ns: NamespaceId) -> Result<Vec<PeerId>, StoreError> {
        self.inner.sync_peers(ns)
    }
    fn flush(&mut self) -> Result<(), StoreError> {
        self.inner.flush()
    }
}
