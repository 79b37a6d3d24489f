//! A `Backend` wrapper that counts calls and entries read, to show how backend work scales.
//!
//! Range fingerprints, counts and pivots are answered by the fingerprint index (`Indexed`)
//! above the backend, so they cost no backend call: what is counted is row access (`get`,
//! scans, writes), i.e. the work a disk-backed store does.

use std::ops::Bound;

use bytes::Bytes;
use sheaf_core::{
    store::{Backend, DownloadPolicy, StoreError},
    wire::AuthorHeads,
    Author, AuthorId, Capability, CapabilityKind, Hash, NamespaceId, PeerId, SignedEntry,
};

/// Counts every call into the wrapped backend and every entry it returns.
#[derive(Debug, Default)]
pub struct Counting<S> {
    /// The wrapped backend.
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

impl<B: Backend> Backend for Counting<B> {
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
