//! Storage: the [`Store`] trait and its two implementations, [`MemStore`] and `RedbStore`.
//!
//! A store holds, for every namespace (document) on a node: its entries, keyed by
//! `author ‖ key` inside the namespace; a second ordering by `key ‖ author` for queries; the
//! newest timestamp per author (a maximum that never goes back, unlike iroh-docs whose
//! "latest" is overwritten by older remote entries); the capability, download policy and the
//! five most recently useful peers. It also holds the node's authors.
//!
//! Reconciliation needs the fingerprint, the size and the element at an offset of arbitrary key
//! ranges. Both stores answer those from an in-memory order-statistics tree of entry
//! fingerprints per namespace (`fptree`), so each costs O(log n) instead of iroh-docs' range
//! scans. Ranges sent by a peer are always clamped to the session's namespace: a bound in
//! another namespace maps to the start or end of this one.
//!
//! The store is a plain data structure: no prefix semantics, no validation. Those live in
//! [`put_prefix_aware`] and in the replica executor, and are the same for every store.

use std::ops::Bound;

use bytes::Bytes;

use crate::{
    entry::{RecordIdentifier, SignedEntry},
    hash::{Hash, PeerId},
    keys::{Author, AuthorId, Capability, CapabilityKind, NamespaceId},
    ranger::{Fingerprint, Range},
    wire::AuthorHeads,
};

pub(crate) mod fptree;
mod mem;
pub mod policy;
pub mod query;
#[cfg(feature = "redb")]
mod redb;
#[cfg(test)]
mod tests;

pub use mem::MemStore;
pub use policy::{DownloadPolicy, FilterKind};
pub use query::{Query, QueryCursor, QueryPage, SortBy, SortDirection};
#[cfg(feature = "redb")]
pub use redb::RedbStore;

/// How many useful peers are remembered per document.
pub const PEERS_PER_DOC: usize = 5;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend (redb) failed.
    #[error("storage backend: {0}")]
    Backend(String),
    /// Stored data does not decode.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The file was written by a newer schema than this build understands.
    #[error("store schema version {found} is newer than supported version {supported}")]
    UnsupportedVersion {
        /// Version found in the file.
        found: u64,
        /// Newest version this build knows.
        supported: u64,
    },
}

/// The synchronous storage interface the replica executor runs on.
///
/// Keys inside a namespace are `author ‖ key` byte strings ("suffixes" of the record
/// identifier, whose first 32 bytes are the namespace). All iteration is in ascending byte
/// order of that suffix unless stated otherwise. Reads see all writes made so far, committed
/// or not; [`Store::flush`] makes them durable.
pub trait Store {
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

    /// Removes one entry.
    fn remove(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Option<SignedEntry>, StoreError>;

    /// All entries of `author` whose key starts with `prefix` (including `prefix` itself), in
    /// key order.
    fn prefixed_by(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        prefix: &[u8],
    ) -> Result<Vec<SignedEntry>, StoreError>;

    /// Number of entries in the namespace.
    fn namespace_len(&mut self, ns: NamespaceId) -> Result<usize, StoreError>;

    /// The smallest record identifier of the namespace.
    fn first_id(&mut self, ns: NamespaceId) -> Result<Option<RecordIdentifier>, StoreError>;

    /// Number of entries of the namespace in `range`.
    fn range_len(&mut self, ns: NamespaceId, range: &Range) -> Result<usize, StoreError>;

    /// Fingerprint of the entries of the namespace in `range` (seeded with
    /// [`Fingerprint::EMPTY`]).
    fn range_fingerprint(
        &mut self,
        ns: NamespaceId,
        range: &Range,
    ) -> Result<Fingerprint, StoreError>;

    /// The identifier at `offset` in `range`, counting cyclically from the first entry at or
    /// after the range's `x` (the pivot rule of iroh-docs' ranger).
    fn range_pivot(
        &mut self,
        ns: NamespaceId,
        range: &Range,
        offset: usize,
    ) -> Result<Option<RecordIdentifier>, StoreError>;

    /// Entries of the namespace in `range`, in ascending order, skipping `skip` and returning
    /// at most `limit`.
    fn range_entries(
        &mut self,
        ns: NamespaceId,
        range: &Range,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError>;

    /// Up to `limit` entries in `author ‖ key` order between the bounds (on that suffix).
    fn scan_author_key(
        &mut self,
        ns: NamespaceId,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError>;

    /// Up to `limit` entries in `(key, author)` order between the bounds.
    fn scan_key_author(
        &mut self,
        ns: NamespaceId,
        lower: Bound<(Bytes, AuthorId)>,
        upper: Bound<(Bytes, AuthorId)>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError>;

    /// Newest timestamp per author in the namespace (never regresses).
    fn author_heads(&mut self, ns: NamespaceId) -> Result<AuthorHeads, StoreError>;

    /// Content hashes of every entry of every namespace (for garbage-collection protection).
    fn content_hashes(&mut self) -> Result<Vec<Hash>, StoreError>;

    /// Stores an author's secret key.
    fn put_author(&mut self, author: Author) -> Result<(), StoreError>;
    /// An author's secret key.
    fn get_author(&mut self, id: AuthorId) -> Result<Option<Author>, StoreError>;
    /// Deletes an author; whether it existed.
    fn delete_author(&mut self, id: AuthorId) -> Result<bool, StoreError>;
    /// All authors, by id.
    fn list_authors(&mut self) -> Result<Vec<AuthorId>, StoreError>;

    /// Stores a namespace's capability, replacing the previous one.
    fn put_namespace(&mut self, capability: Capability) -> Result<(), StoreError>;
    /// A namespace's capability.
    fn get_namespace(&mut self, id: NamespaceId) -> Result<Option<Capability>, StoreError>;
    /// All namespaces and their capability kinds, by id.
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

    /// Moves `peer` to the front of the namespace's useful peers (at most [`PEERS_PER_DOC`]).
    fn register_useful_peer(&mut self, ns: NamespaceId, peer: PeerId) -> Result<(), StoreError>;
    /// Useful peers, newest first.
    fn sync_peers(&mut self, ns: NamespaceId) -> Result<Vec<PeerId>, StoreError>;

    /// Makes every write so far durable. Returning `Ok` means committed.
    fn flush(&mut self) -> Result<(), StoreError>;
}

/// What a prefix-aware insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// Stored; `removed` older entries under its key were deleted.
    Inserted {
        /// Entries removed by prefix deletion (including an older entry at the same key).
        removed: usize,
    },
    /// Not stored: the same key or a prefix of it holds an entry at least as new.
    NotInserted,
}

/// Inserts `entry` with iroh-docs' (Willow's) prefix semantics, applied to the letter:
///
/// * the entry must be strictly newer than every entry of the same author whose key is a
///   prefix of its key (the key itself included) — **tombstones included**: iroh-docs skips
///   empty entries here, which lets older entries resurrect under a prefix delete and keeps two
///   of its nodes from ever converging;
/// * then every entry of the same author whose key starts with the entry's key and that is not
///   newer than it is removed;
/// * then the entry is stored.
pub fn put_prefix_aware<S: Store + ?Sized>(
    store: &mut S,
    entry: SignedEntry,
) -> Result<PutOutcome, StoreError> {
    let ns = entry.namespace();
    let author = entry.author();
    let key = entry.key();
    for len in 0..=key.len() {
        if let Some(parent) = store.get(ns, author, &key[..len])? {
            if entry.record() <= parent.record() {
                return Ok(PutOutcome::NotInserted);
            }
        }
    }
    let mut removed = 0;
    for child in store.prefixed_by(ns, author, key)? {
        if child.record() <= entry.record() {
            store.remove(ns, author, child.key())?;
            removed += 1;
        }
    }
    store.put(entry)?;
    Ok(PutOutcome::Inserted { removed })
}

/// The exclusive upper bound of all byte strings starting with `prefix`, or `None` if there
/// is none (the prefix is empty or all `0xFF`).
///
/// Trailing `0xFF` bytes are dropped before incrementing: iroh-docs increments with carry and
/// turns `[1, 0xFF]` into `[2, 0]`, so its prefix ranges wrongly include the key `[2]`.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let keep = prefix.iter().rposition(|b| *b != 0xff)?;
    let mut end = prefix[..=keep].to_vec();
    end[keep] += 1;
    Some(end)
}

/// The `author ‖ key` part of a record identifier.
pub(crate) fn suffix_of(id: &RecordIdentifier) -> &[u8] {
    &id.as_bytes()[32..]
}

/// `author ‖ key`.
pub(crate) fn suffix(author: AuthorId, key: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(32 + key.len());
    s.extend_from_slice(author.as_bytes());
    s.extend_from_slice(key);
    s
}

/// Rebuilds a record identifier from namespace and suffix.
pub(crate) fn id_from_suffix(ns: NamespaceId, suffix: &[u8]) -> RecordIdentifier {
    let mut bytes = Vec::with_capacity(32 + suffix.len());
    bytes.extend_from_slice(ns.as_bytes());
    bytes.extend_from_slice(suffix);
    RecordIdentifier::from_bytes(bytes).expect("suffix holds an author")
}

/// A range resolved to index ranks within one namespace's sorted entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RankSpans {
    /// Up to two rank intervals `[a, b)`, in ascending order.
    spans: [(usize, usize); 2],
    /// Rank of the first entry at or after `x` (for cyclic offsets).
    start: usize,
    /// Entries in the namespace.
    total: usize,
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
        Self {
            spans,
            start: rx,
            total,
        }
    }

    /// Number of entries in the range.
    pub(crate) fn len(&self) -> usize {
        self.spans.iter().map(|(a, b)| b - a).sum()
    }

    /// The non-empty rank intervals, ascending.
    pub(crate) fn intervals(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.spans.iter().copied().filter(|(a, b)| a < b)
    }

    /// Global rank of the entry at cyclic `offset` from the first entry at or after `x`.
    pub(crate) fn cyclic_rank(&self, offset: usize) -> Option<usize> {
        let len = self.len();
        if len == 0 {
            return None;
        }
        let offset = offset % len;
        // Walk the range's entries starting from `start`, wrapping within the intervals.
        let mut order: Vec<(usize, usize)> = Vec::with_capacity(3);
        for (a, b) in self.intervals() {
            if (a..b).contains(&self.start) {
                order.push((self.start, b));
            }
        }
        for (a, b) in self.intervals() {
            if a >= self.start && !(a..b).contains(&self.start) {
                order.push((a, b));
            }
        }
        for (a, b) in self.intervals() {
            if b <= self.start {
                order.push((a, b));
            } else if (a..b).contains(&self.start) && a < self.start {
                order.push((a, self.start));
            }
        }
        let mut rest = offset;
        for (a, b) in order {
            if rest < b - a {
                return Some(a + rest);
            }
            rest -= b - a;
        }
        debug_assert!(false, "offset within len always lands");
        None
    }

    /// Total entries in the namespace.
    #[allow(dead_code)]
    pub(crate) fn total(&self) -> usize {
        self.total
    }
}
