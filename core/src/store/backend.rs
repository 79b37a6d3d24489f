//! The [`Backend`] trait: the rows a node stores, and nothing else.
//!
//! A backend holds, for every namespace (document): its entries, keyed by `author ‖ key`
//! inside the namespace (the record identifier without its namespace, called the *suffix*);
//! a second ordering by `(key, author)` for queries; the newest timestamp per author; the
//! capability, download policy and the most recently useful peers. It also holds the node's
//! authors. It knows nothing about fingerprints: [`Indexed`](super::Indexed) keeps the
//! fingerprint index on top of any backend, built from [`Backend::scan_author_key`].
//!
//! The trait is deliberately small and synchronous, so that a new storage engine needs only
//! row storage and two orderings. `store::conformance` (feature `test-utils`)
//! checks an implementation against every contract written here.

use std::ops::Bound;

use bytes::Bytes;

use super::{prefix_end, suffix, DownloadPolicy, StoreError};
use crate::{
    entry::SignedEntry,
    hash::{Hash, PeerId},
    keys::{Author, AuthorId, Capability, CapabilityKind, NamespaceId},
    ranger::Fingerprint,
    wire::AuthorHeads,
};

/// Row storage for a node's documents, authors and per-document settings.
///
/// Keys inside a namespace are `author ‖ key` byte strings ("suffixes" of the record
/// identifier, whose first 32 bytes are the namespace). All iteration is in ascending byte
/// order of that suffix unless stated otherwise. Reads see all writes made so far, committed
/// or not; [`Backend::flush`] makes them durable. A backend applies no prefix semantics and no
/// validation: [`put_prefix_aware`](super::put_prefix_aware) and the store executor do that,
/// the same way for every backend.
///
/// The trait is object safe: `Box<dyn Backend>` is a backend too.
pub trait Backend {
    /// The entry of `author` at `key`, tombstones included.
    fn get(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Option<SignedEntry>, StoreError>;

    /// Writes `entry`, replacing any entry with the same identifier. Updates the author's head
    /// to the maximum of its old value and the entry's timestamp. No prefix semantics.
    fn put(&mut self, entry: SignedEntry) -> Result<(), StoreError>;

    /// Removes one entry, returning it. Author heads are left as they are.
    fn remove(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Option<SignedEntry>, StoreError>;

    /// Up to `limit` entries of the namespace in suffix (`author ‖ key`) order, between the
    /// bounds on the suffix; descending from the upper bound if `reverse`. Inverted or empty
    /// bounds give no entries (never a panic).
    fn scan_author_key(
        &mut self,
        ns: NamespaceId,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError>;

    /// Up to `limit` entries of the namespace in `(key, author)` order between the bounds;
    /// descending if `reverse`. Inverted or empty bounds give no entries.
    fn scan_key_author(
        &mut self,
        ns: NamespaceId,
        lower: Bound<(Bytes, AuthorId)>,
        upper: Bound<(Bytes, AuthorId)>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError>;

    /// All entries of `author` whose key starts with `prefix` (including `prefix` itself), in
    /// key order. Provided in terms of [`scan_author_key`](Self::scan_author_key).
    fn prefixed_by(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        prefix: &[u8],
    ) -> Result<Vec<SignedEntry>, StoreError> {
        let start = suffix(author, prefix);
        // The suffix starts with the author, so an all-0xFF suffix only happens for the author
        // `ff…ff`; then the namespace's end is the bound.
        let upper = prefix_end(&start).map_or(Bound::Unbounded, Bound::Excluded);
        self.scan_author_key(ns, Bound::Included(start), upper, false, usize::MAX)
    }

    /// The entries of `author` whose key is a prefix of `key` (`key` itself and the empty key
    /// included), shortest key first. The parents that
    /// [`put_prefix_aware`](super::put_prefix_aware) checks before an insert; provided as one
    /// [`get`](Self::get) per prefix length, which a backend may answer with one table lookup
    /// session instead.
    fn prefix_parents(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Vec<SignedEntry>, StoreError> {
        let mut found = Vec::new();
        for len in 0..=key.len() {
            found.extend(self.get(ns, author, &key[..len])?);
        }
        Ok(found)
    }

    /// Newest timestamp per author in the namespace. Never regresses: removing entries leaves
    /// it, only [`remove_namespace`](Self::remove_namespace) deletes it.
    fn author_heads(&mut self, ns: NamespaceId) -> Result<AuthorHeads, StoreError>;

    /// Content hashes of every entry of every namespace (for garbage-collection protection),
    /// in no particular order, one per entry.
    fn content_hashes(&mut self) -> Result<Vec<Hash>, StoreError>;

    /// Stores an author's secret key.
    fn put_author(&mut self, author: Author) -> Result<(), StoreError>;
    /// An author's secret key.
    fn get_author(&mut self, id: AuthorId) -> Result<Option<Author>, StoreError>;
    /// Deletes an author; whether it existed.
    fn delete_author(&mut self, id: AuthorId) -> Result<bool, StoreError>;
    /// All authors, ascending by id.
    fn list_authors(&mut self) -> Result<Vec<AuthorId>, StoreError>;

    /// Stores a namespace's capability, replacing the previous one.
    fn put_namespace(&mut self, capability: Capability) -> Result<(), StoreError>;
    /// A namespace's capability.
    fn get_namespace(&mut self, id: NamespaceId) -> Result<Option<Capability>, StoreError>;
    /// All namespaces and their capability kinds, ascending by id.
    fn list_namespaces(&mut self) -> Result<Vec<(NamespaceId, CapabilityKind)>, StoreError>;
    /// Deletes a namespace with all its entries, heads, peers and policy.
    fn remove_namespace(&mut self, id: NamespaceId) -> Result<(), StoreError>;

    /// Sets a namespace's download policy.
    fn set_download_policy(
        &mut self,
        ns: NamespaceId,
        policy: &DownloadPolicy,
    ) -> Result<(), StoreError>;
    /// A namespace's download policy, if one was set.
    fn get_download_policy(
        &mut self,
        ns: NamespaceId,
    ) -> Result<Option<DownloadPolicy>, StoreError>;

    /// Moves `peer` to the front of the namespace's useful peers, keeping at most
    /// [`PEERS_PER_DOC`](super::PEERS_PER_DOC).
    fn register_useful_peer(&mut self, ns: NamespaceId, peer: PeerId) -> Result<(), StoreError>;
    /// Useful peers, newest first.
    fn sync_peers(&mut self, ns: NamespaceId) -> Result<Vec<PeerId>, StoreError>;

    /// The namespace's persisted [`NamespaceSummary`], if one is stored. Backends that do not
    /// persist summaries keep the default (none): [`Indexed`](super::Indexed) then learns a
    /// namespace's summary by building its index.
    fn get_summary(&mut self, ns: NamespaceId) -> Result<Option<NamespaceSummary>, StoreError> {
        let _ = ns;
        Ok(None)
    }

    /// Stores (`Some`) or deletes (`None`) the namespace's summary, in the same transaction as
    /// the writes before the next [`flush`](Self::flush), so that a flushed summary always
    /// describes the flushed entries. [`remove_namespace`](Self::remove_namespace) deletes it
    /// too. The default stores nothing.
    fn put_summary(
        &mut self,
        ns: NamespaceId,
        summary: Option<NamespaceSummary>,
    ) -> Result<(), StoreError> {
        let _ = (ns, summary);
        Ok(())
    }

    /// The namespace's persisted index chunks: each chunk's start (a suffix bound) and the
    /// summary of its entries, ascending by start. The rows are valid only while the
    /// namespace's summary is stored: [`Indexed`](super::Indexed) writes both in one
    /// transaction. Backends that do not persist them keep the default (none).
    fn get_chunks(
        &mut self,
        ns: NamespaceId,
    ) -> Result<Vec<(Vec<u8>, NamespaceSummary)>, StoreError> {
        let _ = ns;
        Ok(Vec::new())
    }

    /// Writes (`Some`) or deletes (`None`) chunk rows of the namespace, after deleting all of
    /// its rows if `clear`; in the same transaction as the writes before the next
    /// [`flush`](Self::flush). [`remove_namespace`](Self::remove_namespace) deletes them too.
    /// The default stores nothing.
    fn put_chunks(
        &mut self,
        ns: NamespaceId,
        clear: bool,
        rows: &[(Vec<u8>, Option<NamespaceSummary>)],
    ) -> Result<(), StoreError> {
        let _ = (ns, clear, rows);
        Ok(())
    }

    /// Makes every write so far durable. Returning `Ok` means committed.
    fn flush(&mut self) -> Result<(), StoreError>;
}

/// What [`Indexed`](super::Indexed) keeps of a namespace whose index is not loaded: its entry
/// count and the XOR of its entries' fingerprints (starting from zero bytes, so an empty
/// namespace is `[0; 32]`; fold in [`Fingerprint::EMPTY`] for the wire's value). That is
/// enough to answer the whole-namespace fingerprint a sync starts with, so a sync that finds
/// nothing to do needs no index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamespaceSummary {
    /// Number of entries.
    pub count: u64,
    /// XOR of the entries' fingerprints, from zero.
    pub fingerprint: Fingerprint,
}

impl NamespaceSummary {
    /// The summary of no entries.
    pub const EMPTY: Self = Self {
        count: 0,
        fingerprint: Fingerprint([0; 32]),
    };

    /// Encoded size: the count (8 bytes, little endian) then the fingerprint.
    pub const ENCODED_LEN: usize = 40;

    /// `count ‖ fingerprint`, as stored.
    pub fn to_bytes(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0; Self::ENCODED_LEN];
        out[..8].copy_from_slice(&self.count.to_le_bytes());
        out[8..].copy_from_slice(&self.fingerprint.0);
        out
    }

    /// Decodes [`to_bytes`](Self::to_bytes)' output; `None` for any other length.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::ENCODED_LEN {
            return None;
        }
        let mut count = [0; 8];
        count.copy_from_slice(&bytes[..8]);
        let mut fingerprint = [0; 32];
        fingerprint.copy_from_slice(&bytes[8..]);
        Some(Self {
            count: u64::from_le_bytes(count),
            fingerprint: Fingerprint(fingerprint),
        })
    }
}

/// Forwards every method, so a boxed backend (as the simulator picks one at run time) is a
/// backend too.
impl<B: Backend + ?Sized> Backend for Box<B> {
    fn get(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Option<SignedEntry>, StoreError> {
        (**self).get(ns, author, key)
    }
    fn put(&mut self, entry: SignedEntry) -> Result<(), StoreError> {
        (**self).put(entry)
    }
    fn remove(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Option<SignedEntry>, StoreError> {
        (**self).remove(ns, author, key)
    }
    fn scan_author_key(
        &mut self,
        ns: NamespaceId,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        (**self).scan_author_key(ns, lower, upper, reverse, limit)
    }
    fn scan_key_author(
        &mut self,
        ns: NamespaceId,
        lower: Bound<(Bytes, AuthorId)>,
        upper: Bound<(Bytes, AuthorId)>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        (**self).scan_key_author(ns, lower, upper, reverse, limit)
    }
    fn prefixed_by(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        prefix: &[u8],
    ) -> Result<Vec<SignedEntry>, StoreError> {
        (**self).prefixed_by(ns, author, prefix)
    }
    fn prefix_parents(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Vec<SignedEntry>, StoreError> {
        (**self).prefix_parents(ns, author, key)
    }
    fn author_heads(&mut self, ns: NamespaceId) -> Result<AuthorHeads, StoreError> {
        (**self).author_heads(ns)
    }
    fn content_hashes(&mut self) -> Result<Vec<Hash>, StoreError> {
        (**self).content_hashes()
    }
    fn put_author(&mut self, author: Author) -> Result<(), StoreError> {
        (**self).put_author(author)
    }
    fn get_author(&mut self, id: AuthorId) -> Result<Option<Author>, StoreError> {
        (**self).get_author(id)
    }
    fn delete_author(&mut self, id: AuthorId) -> Result<bool, StoreError> {
        (**self).delete_author(id)
    }
    fn list_authors(&mut self) -> Result<Vec<AuthorId>, StoreError> {
        (**self).list_authors()
    }
    fn put_namespace(&mut self, capability: Capability) -> Result<(), StoreError> {
        (**self).put_namespace(capability)
    }
    fn get_namespace(&mut self, id: NamespaceId) -> Result<Option<Capability>, StoreError> {
        (**self).get_namespace(id)
    }
    fn list_namespaces(&mut self) -> Result<Vec<(NamespaceId, CapabilityKind)>, StoreError> {
        (**self).list_namespaces()
    }
    fn remove_namespace(&mut self, id: NamespaceId) -> Result<(), StoreError> {
        (**self).remove_namespace(id)
    }
    fn set_download_policy(
        &mut self,
        ns: NamespaceId,
        policy: &DownloadPolicy,
    ) -> Result<(), StoreError> {
        (**self).set_download_policy(ns, policy)
    }
    fn get_download_policy(
        &mut self,
        ns: NamespaceId,
    ) -> Result<Option<DownloadPolicy>, StoreError> {
        (**self).get_download_policy(ns)
    }
    fn register_useful_peer(&mut self, ns: NamespaceId, peer: PeerId) -> Result<(), StoreError> {
        (**self).register_useful_peer(ns, peer)
    }
    fn sync_peers(&mut self, ns: NamespaceId) -> Result<Vec<PeerId>, StoreError> {
        (**self).sync_peers(ns)
    }
    fn get_summary(&mut self, ns: NamespaceId) -> Result<Option<NamespaceSummary>, StoreError> {
        (**self).get_summary(ns)
    }
    fn put_summary(
        &mut self,
        ns: NamespaceId,
        summary: Option<NamespaceSummary>,
    ) -> Result<(), StoreError> {
        (**self).put_summary(ns, summary)
    }
    fn get_chunks(
        &mut self,
        ns: NamespaceId,
    ) -> Result<Vec<(Vec<u8>, NamespaceSummary)>, StoreError> {
        (**self).get_chunks(ns)
    }
    fn put_chunks(
        &mut self,
        ns: NamespaceId,
        clear: bool,
        rows: &[(Vec<u8>, Option<NamespaceSummary>)],
    ) -> Result<(), StoreError> {
        (**self).put_chunks(ns, clear, rows)
    }
    fn flush(&mut self) -> Result<(), StoreError> {
        (**self).flush()
    }
}
