//! [`Tap`]: a backend that forwards every call to another and tells an [`Observer`] about it.
//!
//! For tools that look at what the store does rather than change it: counting the rows a sync
//! reads (the benchmarks, the range budget's tests), or failing a chosen call to see how a node
//! copes. The observer hears of a call before it runs and, for calls that return entries, how
//! many came back.

use std::ops::Bound;

use bytes::Bytes;

use super::{Backend, DownloadPolicy, NamespaceSummary, StoreError};
use crate::{
    entry::SignedEntry,
    hash::{Hash, PeerId},
    keys::{Author, AuthorId, Capability, CapabilityKind, NamespaceId},
    wire::AuthorHeads,
};

/// A [`Backend`] method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Call {
    Get,
    Put,
    Remove,
    ScanAuthorKey,
    ScanKeyAuthor,
    PrefixedBy,
    PrefixParents,
    AuthorHeads,
    ContentHashes,
    PutAuthor,
    GetAuthor,
    DeleteAuthor,
    ListAuthors,
    PutNamespace,
    GetNamespace,
    ListNamespaces,
    RemoveNamespace,
    SetDownloadPolicy,
    GetDownloadPolicy,
    RegisterUsefulPeer,
    SyncPeers,
    GetSummary,
    PutSummary,
    GetChunks,
    PutChunks,
    Flush,
}

/// What a [`Tap`] reports to.
pub trait Observer {
    /// `call` is about to run.
    fn before(&mut self, call: Call) {
        let _ = call;
    }
    /// `call` returned `entries` entries (`Get`, `Remove`, the scans, `PrefixedBy` and `PrefixParents`).
    fn entries(&mut self, call: Call, entries: usize) {
        let _ = (call, entries);
    }
}

/// Observes nothing: a `Tap` that only forwards.
impl Observer for () {}

/// `inner`, reporting every call to `observer`.
#[derive(Debug, Default, Clone)]
pub struct Tap<B, O> {
    /// The backend that does the work.
    pub inner: B,
    /// Told of every call.
    pub observer: O,
}

impl<B, O> Tap<B, O> {
    /// Wraps `inner`.
    pub fn new(inner: B, observer: O) -> Self {
        Self { inner, observer }
    }
}

impl<B: Backend, O: Observer> Tap<B, O> {
    fn run<T>(&mut self, call: Call, f: impl FnOnce(&mut B) -> T) -> T {
        self.observer.before(call);
        f(&mut self.inner)
    }

    fn rows<T: Counted>(
        &mut self,
        call: Call,
        f: impl FnOnce(&mut B) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let r = self.run(call, f)?;
        self.observer.entries(call, r.count());
        Ok(r)
    }
}

/// Entries in a result.
trait Counted {
    fn count(&self) -> usize;
}

impl Counted for Option<SignedEntry> {
    fn count(&self) -> usize {
        usize::from(self.is_some())
    }
}

impl Counted for Vec<SignedEntry> {
    fn count(&self) -> usize {
        self.len()
    }
}

impl<B: Backend, O: Observer> Backend for Tap<B, O> {
    fn get(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Option<SignedEntry>, StoreError> {
        self.rows(Call::Get, |b| b.get(ns, author, key))
    }
    fn put(&mut self, entry: SignedEntry) -> Result<(), StoreError> {
        self.run(Call::Put, |b| b.put(entry))
    }
    fn remove(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Option<SignedEntry>, StoreError> {
        self.rows(Call::Remove, |b| b.remove(ns, author, key))
    }
    fn scan_author_key(
        &mut self,
        ns: NamespaceId,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        self.rows(Call::ScanAuthorKey, |b| {
            b.scan_author_key(ns, lower, upper, reverse, limit)
        })
    }
    fn scan_key_author(
        &mut self,
        ns: NamespaceId,
        lower: Bound<(Bytes, AuthorId)>,
        upper: Bound<(Bytes, AuthorId)>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        self.rows(Call::ScanKeyAuthor, |b| {
            b.scan_key_author(ns, lower, upper, reverse, limit)
        })
    }
    fn prefixed_by(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        prefix: &[u8],
    ) -> Result<Vec<SignedEntry>, StoreError> {
        self.rows(Call::PrefixedBy, |b| b.prefixed_by(ns, author, prefix))
    }
    fn prefix_parents(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Vec<SignedEntry>, StoreError> {
        self.rows(Call::PrefixParents, |b| b.prefix_parents(ns, author, key))
    }
    fn author_heads(&mut self, ns: NamespaceId) -> Result<AuthorHeads, StoreError> {
        self.run(Call::AuthorHeads, |b| b.author_heads(ns))
    }
    fn content_hashes(&mut self) -> Result<Vec<Hash>, StoreError> {
        self.run(Call::ContentHashes, |b| b.content_hashes())
    }
    fn put_author(&mut self, author: Author) -> Result<(), StoreError> {
        self.run(Call::PutAuthor, |b| b.put_author(author))
    }
    fn get_author(&mut self, id: AuthorId) -> Result<Option<Author>, StoreError> {
        self.run(Call::GetAuthor, |b| b.get_author(id))
    }
    fn delete_author(&mut self, id: AuthorId) -> Result<bool, StoreError> {
        self.run(Call::DeleteAuthor, |b| b.delete_author(id))
    }
    fn list_authors(&mut self) -> Result<Vec<AuthorId>, StoreError> {
        self.run(Call::ListAuthors, |b| b.list_authors())
    }
    fn put_namespace(&mut self, capability: Capability) -> Result<(), StoreError> {
        self.run(Call::PutNamespace, |b| b.put_namespace(capability))
    }
    fn get_namespace(&mut self, id: NamespaceId) -> Result<Option<Capability>, StoreError> {
        self.run(Call::GetNamespace, |b| b.get_namespace(id))
    }
    fn list_namespaces(&mut self) -> Result<Vec<(NamespaceId, CapabilityKind)>, StoreError> {
        self.run(Call::ListNamespaces, |b| b.list_namespaces())
    }
    fn remove_namespace(&mut self, id: NamespaceId) -> Result<(), StoreError> {
        self.run(Call::RemoveNamespace, |b| b.remove_namespace(id))
    }
    fn set_download_policy(
        &mut self,
        ns: NamespaceId,
        policy: &DownloadPolicy,
    ) -> Result<(), StoreError> {
        self.run(Call::SetDownloadPolicy, |b| {
            b.set_download_policy(ns, policy)
        })
    }
    fn get_download_policy(
        &mut self,
        ns: NamespaceId,
    ) -> Result<Option<DownloadPolicy>, StoreError> {
        self.run(Call::GetDownloadPolicy, |b| b.get_download_policy(ns))
    }
    fn register_useful_peer(&mut self, ns: NamespaceId, peer: PeerId) -> Result<(), StoreError> {
        self.run(Call::RegisterUsefulPeer, |b| {
            b.register_useful_peer(ns, peer)
        })
    }
    fn sync_peers(&mut self, ns: NamespaceId) -> Result<Vec<PeerId>, StoreError> {
        self.run(Call::SyncPeers, |b| b.sync_peers(ns))
    }
    fn get_summary(&mut self, ns: NamespaceId) -> Result<Option<NamespaceSummary>, StoreError> {
        self.run(Call::GetSummary, |b| b.get_summary(ns))
    }
    fn put_summary(
        &mut self,
        ns: NamespaceId,
        summary: Option<NamespaceSummary>,
    ) -> Result<(), StoreError> {
        self.run(Call::PutSummary, |b| b.put_summary(ns, summary))
    }
    fn get_chunks(
        &mut self,
        ns: NamespaceId,
    ) -> Result<Vec<(Vec<u8>, NamespaceSummary)>, StoreError> {
        self.run(Call::GetChunks, |b| b.get_chunks(ns))
    }
    fn put_chunks(
        &mut self,
        ns: NamespaceId,
        clear: bool,
        rows: &[(Vec<u8>, Option<NamespaceSummary>)],
    ) -> Result<(), StoreError> {
        self.run(Call::PutChunks, |b| b.put_chunks(ns, clear, rows))
    }
    fn flush(&mut self) -> Result<(), StoreError> {
        self.run(Call::Flush, |b| b.flush())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{conformance, MemBackend};

    /// Counts calls and returned entries per call kind.
    #[derive(Default)]
    struct Log(Vec<(Call, Option<usize>)>);

    impl Observer for Log {
        fn before(&mut self, call: Call) {
            self.0.push((call, None));
        }
        fn entries(&mut self, call: Call, entries: usize) {
            self.0.push((call, Some(entries)));
        }
    }

    #[test]
    fn a_tap_behaves_as_its_backend() {
        conformance::run_all(|| Tap::new(MemBackend::new(), ()));
    }

    #[test]
    fn a_tap_reports_calls_and_entries() {
        let mut tap = Tap::new(MemBackend::new(), Log::default());
        let ns = crate::testutil::ns(1).id();
        tap.scan_author_key(ns, Bound::Unbounded, Bound::Unbounded, false, 10)
            .unwrap();
        tap.flush().unwrap();
        assert_eq!(
            tap.observer.0,
            vec![
                (Call::ScanAuthorKey, None),
                (Call::ScanAuthorKey, Some(0)),
                (Call::Flush, None)
            ]
        );
    }
}
