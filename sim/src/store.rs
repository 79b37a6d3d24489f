//! [`SimStore`]: a node's store as the simulator sees it — durable only up to its last flush,
//! and watched by the safety invariants.
//!
//! The production backends keep writes in an open transaction until `flush` (redb) or keep
//! nothing at all across processes (`MemBackend`). To crash a node and restart it from exactly
//! its committed state, whichever backend it runs on, `SimStore` is itself a backend that
//! wraps the live one and keeps a *committed shadow*: a `MemBackend` to which the journal of
//! mutations since the last flush is replayed when — and only when — `flush` succeeds. A crash
//! drops the live backend, its index and the journal; the restart copies the shadow into a
//! fresh backend of the node's kind (`MemBackend` or `RedbBackend::memory()`) through the
//! `Backend` trait, and the index is loaded from the committed summaries and chunk rows (or
//! rebuilt where they are missing) on first use. Uncommitted writes — summaries and chunk
//! rows included — are therefore lost exactly as the executor's commit schedule dictates.
//!
//! A commit can also be made to fail (`store-fail`, see [`crate::executor`]): the flush then
//! returns a backend error and, like redb's failed commit, loses every write since the last
//! commit — the live backend is rebuilt from the committed shadow exactly as at a restart, and
//! every key the lost writes touched is reported as touched.
//!
//! The wrapper is also where the per-event safety checks get their input cheaply: every
//! `put` verifies the entry's signatures (so "every stored entry verifies" is checked once
//! per write instead of once per entry per event; an entry identical to one already verified
//! on any node is not verified again), and every key written or removed is
//! remembered so that the prefix invariant is re-checked only around keys that changed (see
//! [`crate::check`]).

use std::{cell::RefCell, collections::BTreeSet, ops::Bound, rc::Rc};

use bytes::Bytes;
use sheaf_core::{
    entry::{SignedEntry, VerifyError},
    hash::{Hash, PeerId},
    keys::{Author, AuthorId, Capability, CapabilityKind, NamespaceId},
    store::{
        self as core_store, Backend as _, DownloadPolicy, MemBackend, NamespaceSummary,
        RedbBackend, StoreError,
    },
    wire::AuthorHeads,
};

use crate::config::Backend;

/// A mutation since the last flush.
#[derive(Debug, Clone)]
enum Mutation {
    Put(SignedEntry),
    Remove(NamespaceId, AuthorId, Bytes),
    PutAuthor(Author),
    DeleteAuthor(AuthorId),
    PutNamespace(Capability),
    RemoveNamespace(NamespaceId),
    SetPolicy(NamespaceId, DownloadPolicy),
    RegisterPeer(NamespaceId, PeerId),
    PutSummary(NamespaceId, Option<NamespaceSummary>),
    PutChunks(NamespaceId, bool, Vec<ChunkRow>),
}

/// A persisted index chunk row: its start and summary (`None`: deleted).
type ChunkRow = (Vec<u8>, Option<NamespaceSummary>);

/// A key whose entry was written or removed: `(namespace, author, key)`.
pub type TouchedKey = (NamespaceId, AuthorId, Bytes);

/// Digests of entries (identifier, record and both signatures) whose signatures verified,
/// shared by all nodes of a run so that an entry stored on every node is verified once.
#[derive(Debug, Clone, Default)]
pub struct Verified(Rc<RefCell<BTreeSet<[u8; 32]>>>);

impl Verified {
    /// Verifies `entry` unless an identical one already did.
    pub fn check(&self, entry: &SignedEntry) -> Result<(), VerifyError> {
        let mut h = blake3::Hasher::new();
        h.update(&entry.entry().canonical_bytes());
        h.update(&entry.signature().author_bytes());
        h.update(&entry.signature().namespace_bytes());
        let digest = *h.finalize().as_bytes();
        if self.0.borrow().contains(&digest) {
            return Ok(());
        }
        entry.verify()?;
        self.0.borrow_mut().insert(digest);
        Ok(())
    }
}

/// A node's backend as the simulator runs it: the live backend, the committed shadow and the
/// invariant hooks. The executor wraps it in `Indexed`, like any backend.
pub struct SimStore {
    backend: Backend,
    /// The next flush fails (and rolls back).
    fail_flush: bool,
    /// Mutations lost by the last injected flush failure, until taken.
    flush_failure: Option<usize>,
    verified: Verified,
    inner: Box<dyn core_store::Backend>,
    committed: MemBackend,
    journal: Vec<Mutation>,
    touched: BTreeSet<TouchedKey>,
    bad_signatures: Vec<String>,
    /// Writes made (for statistics).
    pub puts: u64,
}

fn open(backend: Backend) -> Result<Box<dyn core_store::Backend>, StoreError> {
    Ok(match backend {
        Backend::Mem => Box::new(MemBackend::new()),
        Backend::Redb => Box::new(RedbBackend::memory()?),
    })
}

impl SimStore {
    /// An empty store on `backend`.
    pub fn new(backend: Backend, verified: Verified) -> Result<Self, StoreError> {
        Ok(Self {
            backend,
            fail_flush: false,
            flush_failure: None,
            verified,
            inner: open(backend)?,
            committed: MemBackend::new(),
            journal: Vec::new(),
            touched: BTreeSet::new(),
            bad_signatures: Vec::new(),
            puts: 0,
        })
    }

    /// Crashes the store: returns the committed shadow, dropping uncommitted writes.
    pub fn crash(self) -> MemBackend {
        self.committed
    }

    /// A store on `backend` holding exactly `committed` (the state after a restart).
    pub fn restore(
        backend: Backend,
        mut committed: MemBackend,
        verified: Verified,
    ) -> Result<Self, StoreError> {
        let mut inner = open(backend)?;
        copy_all(&mut committed, inner.as_mut())?;
        inner.flush()?;
        Ok(Self {
            backend,
            fail_flush: false,
            flush_failure: None,
            verified,
            inner,
            committed,
            journal: Vec::new(),
            touched: BTreeSet::new(),
            bad_signatures: Vec::new(),
            puts: 0,
        })
    }

    /// Keys written or removed since the last call.
    pub fn take_touched(&mut self) -> BTreeSet<TouchedKey> {
        std::mem::take(&mut self.touched)
    }

    /// Whether keys were written or removed since the last [`SimStore::take_touched`].
    pub fn has_touched(&self) -> bool {
        !self.touched.is_empty()
    }

    /// Entries stored although their signatures do not verify.
    pub fn take_bad_signatures(&mut self) -> Vec<String> {
        std::mem::take(&mut self.bad_signatures)
    }

    /// Mutations not yet committed.
    pub fn uncommitted(&self) -> usize {
        self.journal.len()
    }

    /// The live backend, for the checks.
    pub fn inner(&mut self) -> &mut dyn core_store::Backend {
        self.inner.as_mut()
    }

    /// Makes the next flush fail (`true`) or not.
    pub fn fail_next_flush(&mut self, fail: bool) {
        self.fail_flush = fail;
    }

    /// Whether a flush failed as asked since the last call, and how many mutations it lost.
    pub fn take_flush_failure(&mut self) -> Option<usize> {
        self.flush_failure.take()
    }

    /// A failed commit: every mutation since the last flush is lost, as the transaction of a
    /// failed redb commit is. The live backend is rebuilt from the committed shadow.
    fn roll_back(&mut self) -> Result<usize, StoreError> {
        let lost = self.journal.len();
        for m in self.journal.drain(..) {
            match m {
                Mutation::Put(e) => {
                    self.touched
                        .insert((e.namespace(), e.author(), e.id().key_bytes()));
                }
                Mutation::Remove(ns, a, k) => {
                    self.touched.insert((ns, a, k));
                }
                _ => {}
            }
        }
        let mut inner = open(self.backend)?;
        copy_all(&mut self.committed, inner.as_mut())?;
        inner.flush()?;
        self.inner = inner;
        Ok(lost)
    }
}

/// Copies every namespace, entry, author, policy and useful peer of `from` into `to`.
fn copy_all(
    from: &mut dyn core_store::Backend,
    to: &mut dyn core_store::Backend,
) -> Result<(), StoreError> {
    for author in from.list_authors()? {
        if let Some(a) = from.get_author(author)? {
            to.put_author(a)?;
        }
    }
    for (ns, _) in from.list_namespaces()? {
        if let Some(cap) = from.get_namespace(ns)? {
            to.put_namespace(cap)?;
        }
        for e in from.scan_author_key(ns, Bound::Unbounded, Bound::Unbounded, false, usize::MAX)? {
            to.put(e)?;
        }
        if let Some(p) = from.get_download_policy(ns)? {
            to.set_download_policy(ns, &p)?;
        }
        for peer in from.sync_peers(ns)?.into_iter().rev() {
            to.register_useful_peer(ns, peer)?;
        }
        if let Some(summary) = from.get_summary(ns)? {
            to.put_summary(ns, Some(summary))?;
        }
        let rows: Vec<ChunkRow> = from
            .get_chunks(ns)?
            .into_iter()
            .map(|(start, sum)| (start, Some(sum)))
            .collect();
        to.put_chunks(ns, true, &rows)?;
    }
    Ok(())
}

fn replay(store: &mut MemBackend, m: Mutation) -> Result<(), StoreError> {
    match m {
        Mutation::Put(e) => store.put(e),
        Mutation::Remove(ns, a, k) => store.remove(ns, a, &k).map(|_| ()),
        Mutation::PutAuthor(a) => store.put_author(a),
        Mutation::DeleteAuthor(a) => store.delete_author(a).map(|_| ()),
        Mutation::PutNamespace(c) => store.put_namespace(c),
        Mutation::RemoveNamespace(ns) => store.remove_namespace(ns),
        Mutation::SetPolicy(ns, p) => store.set_download_policy(ns, &p),
        Mutation::RegisterPeer(ns, p) => store.register_useful_peer(ns, p),
        Mutation::PutSummary(ns, summary) => store.put_summary(ns, summary),
        Mutation::PutChunks(ns, clear, rows) => store.put_chunks(ns, clear, &rows),
    }
}

impl core_store::Backend for SimStore {
    fn get(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Option<SignedEntry>, StoreError> {
        self.inner.get(ns, author, key)
    }

    fn put(&mut self, entry: SignedEntry) -> Result<(), StoreError> {
        if let Err(e) = self.verified.check(&entry) {
            self.bad_signatures.push(format!(
                "entry by author {} at key {} does not verify: {e}",
                entry.author().fmt_short(),
                crate::check::show_key(entry.key())
            ));
        }
        self.inner.put(entry.clone())?;
        self.puts += 1;
        self.touched
            .insert((entry.namespace(), entry.author(), entry.id().key_bytes()));
        self.journal.push(Mutation::Put(entry));
        Ok(())
    }

    fn remove(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Option<SignedEntry>, StoreError> {
        let removed = self.inner.remove(ns, author, key)?;
        if removed.is_some() {
            let key = Bytes::copy_from_slice(key);
            self.touched.insert((ns, author, key.clone()));
            self.journal.push(Mutation::Remove(ns, author, key));
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
        self.inner.scan_author_key(ns, lower, upper, reverse, limit)
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

    fn author_heads(&mut self, ns: NamespaceId) -> Result<AuthorHeads, StoreError> {
        self.inner.author_heads(ns)
    }

    fn content_hashes(&mut self) -> Result<Vec<Hash>, StoreError> {
        self.inner.content_hashes()
    }

    fn put_author(&mut self, author: Author) -> Result<(), StoreError> {
        self.inner.put_author(author.clone())?;
        self.journal.push(Mutation::PutAuthor(author));
        Ok(())
    }

    fn get_author(&mut self, id: AuthorId) -> Result<Option<Author>, StoreError> {
        self.inner.get_author(id)
    }

    fn delete_author(&mut self, id: AuthorId) -> Result<bool, StoreError> {
        let existed = self.inner.delete_author(id)?;
        self.journal.push(Mutation::DeleteAuthor(id));
        Ok(existed)
    }

    fn list_authors(&mut self) -> Result<Vec<AuthorId>, StoreError> {
        self.inner.list_authors()
    }

    fn put_namespace(&mut self, capability: Capability) -> Result<(), StoreError> {
        self.inner.put_namespace(capability.clone())?;
        self.journal.push(Mutation::PutNamespace(capability));
        Ok(())
    }

    fn get_namespace(&mut self, id: NamespaceId) -> Result<Option<Capability>, StoreError> {
        self.inner.get_namespace(id)
    }

    fn list_namespaces(&mut self) -> Result<Vec<(NamespaceId, CapabilityKind)>, StoreError> {
        self.inner.list_namespaces()
    }

    fn remove_namespace(&mut self, id: NamespaceId) -> Result<(), StoreError> {
        self.inner.remove_namespace(id)?;
        self.journal.push(Mutation::RemoveNamespace(id));
        Ok(())
    }

    fn set_download_policy(
        &mut self,
        ns: NamespaceId,
        policy: &DownloadPolicy,
    ) -> Result<(), StoreError> {
        self.inner.set_download_policy(ns, policy)?;
        self.journal.push(Mutation::SetPolicy(ns, policy.clone()));
        Ok(())
    }

    fn get_download_policy(
        &mut self,
        ns: NamespaceId,
    ) -> Result<Option<DownloadPolicy>, StoreError> {
        self.inner.get_download_policy(ns)
    }

    fn register_useful_peer(&mut self, ns: NamespaceId, peer: PeerId) -> Result<(), StoreError> {
        self.inner.register_useful_peer(ns, peer)?;
        self.journal.push(Mutation::RegisterPeer(ns, peer));
        Ok(())
    }

    fn sync_peers(&mut self, ns: NamespaceId) -> Result<Vec<PeerId>, StoreError> {
        self.inner.sync_peers(ns)
    }

    fn get_summary(&mut self, ns: NamespaceId) -> Result<Option<NamespaceSummary>, StoreError> {
        self.inner.get_summary(ns)
    }

    fn put_summary(
        &mut self,
        ns: NamespaceId,
        summary: Option<NamespaceSummary>,
    ) -> Result<(), StoreError> {
        self.inner.put_summary(ns, summary)?;
        self.journal.push(Mutation::PutSummary(ns, summary));
        Ok(())
    }

    fn get_chunks(
        &mut self,
        ns: NamespaceId,
    ) -> Result<Vec<(Vec<u8>, NamespaceSummary)>, StoreError> {
        self.inner.get_chunks(ns)
    }

    fn put_chunks(
        &mut self,
        ns: NamespaceId,
        clear: bool,
        rows: &[ChunkRow],
    ) -> Result<(), StoreError> {
        self.inner.put_chunks(ns, clear, rows)?;
        self.journal
            .push(Mutation::PutChunks(ns, clear, rows.to_vec()));
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        if std::mem::take(&mut self.fail_flush) {
            let lost = self.roll_back()?;
            self.flush_failure = Some(lost);
            return Err(StoreError::Backend(
                "simulated commit failure: the transaction is lost".into(),
            ));
        }
        self.inner.flush()?;
        for m in self.journal.drain(..) {
            replay(&mut self.committed, m)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::{rand_core::SeedableRng, ChaCha12Rng};
    use sheaf_core::{Author, NamespaceSecret, Record};

    use super::*;

    #[test]
    fn crash_loses_exactly_the_unflushed_writes() {
        let mut rng = ChaCha12Rng::from_seed([1; 32]);
        let ns = NamespaceSecret::new(&mut rng);
        let a = Author::new(&mut rng);
        let e =
            |k: &str, t| SignedEntry::new(&ns, &a, k.as_bytes(), Record::new(Hash::new(k), 1, t));
        for backend in [Backend::Mem, Backend::Redb] {
            let mut s = SimStore::new(backend, Verified::default()).unwrap();
            s.put_namespace(Capability::Write(ns.clone())).unwrap();
            s.put(e("kept", 1)).unwrap();
            s.register_useful_peer(ns.id(), PeerId::from([9; 32]))
                .unwrap();
            s.flush().unwrap();
            s.put(e("lost", 2)).unwrap();
            s.remove(ns.id(), a.id(), b"kept").unwrap();
            let mut s = SimStore::restore(backend, s.crash(), Verified::default()).unwrap();
            let all = s
                .scan_author_key(ns.id(), Bound::Unbounded, Bound::Unbounded, false, 10)
                .unwrap();
            assert_eq!(all, vec![e("kept", 1)], "{backend:?}");
            assert_eq!(s.sync_peers(ns.id()).unwrap(), vec![PeerId::from([9; 32])]);
            assert!(s.get_namespace(ns.id()).unwrap().is_some());
        }
    }

    /// An injected commit failure loses exactly what a crash would, keeps what was committed,
    /// reports the lost keys as touched, and the next commit works.
    #[test]
    fn a_failed_commit_rolls_back_to_the_last_commit() {
        let mut rng = ChaCha12Rng::from_seed([2; 32]);
        let ns = NamespaceSecret::new(&mut rng);
        let a = Author::new(&mut rng);
        let e =
            |k: &str, t| SignedEntry::new(&ns, &a, k.as_bytes(), Record::new(Hash::new(k), 1, t));
        for backend in [Backend::Mem, Backend::Redb] {
            let mut s = SimStore::new(backend, Verified::default()).unwrap();
            s.put_namespace(Capability::Write(ns.clone())).unwrap();
            s.put(e("kept", 1)).unwrap();
            s.flush().unwrap();
            s.take_touched();
            s.put(e("lost", 2)).unwrap();
            s.remove(ns.id(), a.id(), b"kept").unwrap();
            s.fail_next_flush(true);
            assert!(s.flush().is_err());
            assert_eq!(s.take_flush_failure(), Some(2), "{backend:?}");
            let all = s
                .scan_author_key(ns.id(), Bound::Unbounded, Bound::Unbounded, false, 10)
                .unwrap();
            assert_eq!(all, vec![e("kept", 1)], "{backend:?}");
            assert_eq!(s.take_touched().len(), 2, "both keys are checked again");
            s.put(e("later", 3)).unwrap();
            s.flush().unwrap();
            assert_eq!(s.take_flush_failure(), None);
            let mut committed = SimStore::restore(backend, s.crash(), Verified::default()).unwrap();
            let all = committed
                .scan_author_key(ns.id(), Bound::Unbounded, Bound::Unbounded, false, 10)
                .unwrap();
            assert_eq!(all, vec![e("kept", 1), e("later", 3)], "{backend:?}");
        }
    }
}
