//! A `Store` wrapper that counts calls and entries read, to show how store work scales.

use std::ops::Bound;

use bytes::Bytes;
use sheaf_core::{
    ranger::{Fingerprint, Range},
    store::{DownloadPolicy, Store, StoreError},
    wire::AuthorHeads,
    Author, AuthorId, Capability, CapabilityKind, Hash, NamespaceId, PeerId, RecordIdentifier,
    SignedEntry,
};

/// Counts every call into the wrapped store and every entry it returns.
#[derive(Debug, Default)]
pub struct Counting<S> {
    /// The wrapped store.
    pub inner: S,
    /// Calls made.
    pub calls: u64,
    /// Entries returned.
    pub entries: u64,
}

impl<S> Counting<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            calls: 0,
            entries: 0,
        }
    }

    /// Resets the counters.
    pub fn reset(&mut self) {
        self.calls = 0;
        self.entries = 0;
    }
}

macro_rules! counted {
    ($self:ident, $call:expr) => {{
        $self.calls += 1;
        $call
    }};
}

impl<S: Store> Store for Counting<S> {
    fn get(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Option<SignedEntry>, StoreError> {
        let r = counted!(self, self.inner.get(ns, author, key))?;
        self.entries += u64::from(r.is_some());
        Ok(r)
    }
    fn put(&mut self, entry: SignedEntry) -> Result<(), StoreError> {
        counted!(self, self.inner.put(entry))
    }
    fn remove(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Option<SignedEntry>, StoreError> {
        counted!(self, self.inner.remove(ns, author, key))
    }
    fn prefixed_by(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        prefix: &[u8],
    ) -> Result<Vec<SignedEntry>, StoreError> {
        let r = counted!(self, self.inner.prefixed_by(ns, author, prefix))?;
        self.entries += r.len() as u64;
        Ok(r)
    }
    fn namespace_len(&mut self, ns: NamespaceId) -> Result<usize, StoreError> {
        counted!(self, self.inner.namespace_len(ns))
    }
    fn first_id(&mut self, ns: NamespaceId) -> Result<Option<RecordIdentifier>, StoreError> {
        counted!(self, self.inner.first_id(ns))
    }
    fn range_len(&mut self, ns: NamespaceId, range: &Range) -> Result<usize, StoreError> {
        counted!(self, self.inner.range_len(ns, range))
    }
    fn range_fingerprint(
        &mut self,
        ns: NamespaceId,
        range: &Range,
    ) -> Result<Fingerprint, StoreError> {
        counted!(self, self.inner.range_fingerprint(ns, range))
    }
    fn range_pivot(
        &mut self,
        ns: NamespaceId,
        range: &Range,
        offset: usize,
    ) -> Result<Option<RecordIdentifier>, StoreError> {
        counted!(self, self.inner.range_pivot(ns, range, offset))
    }
    fn range_entries(
        &mut self,
        ns: NamespaceId,
        range: &Range,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        let r = counted!(self, self.inner.range_entries(ns, range, skip, limit))?;
        self.entries += r.len() as u64;
        Ok(r)
    }
    fn scan_author_key(
        &mut self,
        ns: NamespaceId,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        let r = counted!(
            self,
            self.inner.scan_author_key(ns, lower, upper, reverse, limit)
        )?;
        self.entries += r.len() as u64;
        Ok(r)
    }
    fn scan_key_author(
        &mut self,
        ns: NamespaceId,
        lower: Bound<(Bytes, AuthorId)>,
        upper: Bound<(Bytes, AuthorId)>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        let r = counted!(
            self,
            self.inner.scan_key_author(ns, lower, upper, reverse, limit)
        )?;
        self.entries += r.len() as u64;
        Ok(r)
    }
    fn author_heads(&mut self, ns: NamespaceId) -> Result<AuthorHeads, StoreError> {
        counted!(self, self.inner.author_heads(ns))
    }
    fn content_hashes(&mut self) -> Result<Vec<Hash>, StoreError> {
        counted!(self, self.inner.content_hashes())
    }
    fn put_author(&mut self, author: Author) -> Result<(), StoreError> {
        counted!(self, self.inner.put_author(author))
    }
    fn get_author(&mut self, id: AuthorId) -> Result<Option<Author>, StoreError> {
        counted!(self, self.inner.get_author(id))
    }
    fn delete_author(&mut self, id: AuthorId) -> Result<bool, StoreError> {
        counted!(self, self.inner.delete_author(id))
    }
    fn list_authors(&mut self) -> Result<Vec<AuthorId>, StoreError> {
        counted!(self, self.inner.list_authors())
    }
    fn put_namespace(&mut self, capability: Capability) -> Result<(), StoreError> {
        counted!(self, self.inner.put_namespace(capability))
    }
    fn get_namespace(&mut self, id: NamespaceId) -> Result<Option<Capability>, StoreError> {
        counted!(self, self.inner.get_namespace(id))
    }
    fn list_namespaces(&mut self) -> Result<Vec<(NamespaceId, CapabilityKind)>, StoreError> {
        counted!(self, self.inner.list_namespaces())
    }
    fn remove_namespace(&mut self, id: NamespaceId) -> Result<(), StoreError> {
        counted!(self, self.inner.remove_namespace(id))
    }
    fn set_download_policy(
        &mut self,
        ns: NamespaceId,
        policy: &DownloadPolicy,
    ) -> Result<(), StoreError> {
        counted!(self, self.inner.set_download_policy(ns, policy))
    }
    fn get_download_policy(
        &mut self,
        ns: NamespaceId,
    ) -> Result<Option<DownloadPolicy>, StoreError> {
        counted!(self, self.inner.get_download_policy(ns))
    }
    fn register_useful_peer(&mut self, ns: NamespaceId, peer: PeerId) -> Result<(), StoreError> {
        counted!(self, self.inner.register_useful_peer(ns, peer))
    }
    fn sync_peers(&mut self, ns: NamespaceId) -> Result<Vec<PeerId>, StoreError> {
        counted!(self, self.inner.sync_peers(ns))
    }
    fn flush(&mut self) -> Result<(), StoreError> {
        counted!(self, self.inner.flush())
    }
}
