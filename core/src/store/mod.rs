//! Storage: the store's two lower layers, a [`Backend`] holding rows and [`Indexed`] keeping
//! the fingerprint index on top of any backend.
//!
//! A node's *store* is its whole storage layer: a backend, its index, and the executor that
//! applies [`StoreCommand`](crate::replica::StoreCommand)s
//! ([`Replicas`](crate::replica::Replicas)). This module holds the first two:
//!
//! * [`Backend`] (in `backend`): the rows — for every namespace (document) its entries keyed by
//!   `author ‖ key` and by `(key, author)`, the newest timestamp per author (a maximum that
//!   never goes back, unlike iroh-docs whose "latest" is overwritten by older remote entries),
//!   the capability, download policy and the [`PEERS_PER_DOC`] most recently useful peers; and
//!   the node's authors. Two implementations: [`MemBackend`] (in memory, for the simulator,
//!   fuzzers and tests) and `RedbBackend` (feature `redb`, default on: one redb file).
//! * [`Indexed`] (in `indexed`): wraps any backend and answers the fingerprint, the size and
//!   the element at an offset of arbitrary key ranges from an in-memory order-statistics tree
//!   per namespace (`fptree`), each in O(log n) instead of iroh-docs' range scans.
//!
//! **Memory and opening, measured** (bench W12, 2 cores, `bench/RESULTS.md`): of the two ways
//! the design left open — a more compact index, or summaries persisted in the backend — the
//! summaries came first, because they remove the index from the common case instead of
//! shrinking it: a document's count and fingerprint live in redb with its entries, so the
//! first sync after opening that finds nothing to do needs no index (1,000,000 entries: 8 ms,
//! iroh-docs 1,565 ms; 100,000: 20 ms, iroh-docs 206 ms), and an evicted index costs nothing
//! until a sync with differences. The index itself stays ≈160 bytes per entry (`index_bytes`
//! at 1,000,000 entries: 153 MiB) and a sync with differences right after opening rebuilds it
//! in O(n) (1,000,000 entries: 2.6 s, iroh-docs 4.3 s); both sit inside the memory budget
//! ([`Indexed::with_budget`]), which evicts the least recently used indexes of documents that
//! are not syncing. A compact index (≤64 bytes per entry, keys read from the backend) and an
//! O(d·log n) first diff sync (per-node summaries in the backend) are the next steps.
//!
//! `conformance` (feature `test-utils`) checks any backend against the [`Backend`] contract
//! and [`Indexed`] against brute force over that backend's entries.
//!
//! Neither layer applies prefix semantics or validation. Those live in [`put_prefix_aware`]
//! and in the replica executor, and are the same for every backend.

use crate::entry::{RecordIdentifier, SignedEntry};
use crate::keys::{AuthorId, NamespaceId};

mod backend;
#[cfg(any(test, feature = "test-utils"))]
pub mod conformance;
pub(crate) mod fptree;
mod indexed;
mod mem;
pub mod policy;
pub mod query;
#[cfg(feature = "redb")]
mod redb;
pub mod tap;
#[cfg(test)]
mod tests;

pub use backend::{Backend, NamespaceSummary};
pub use indexed::{IndexStats, Indexed, BUILD_PAGE};
pub use mem::MemBackend;
pub use policy::{DownloadPolicy, FilterKind};
pub use query::{Query, QueryCursor, QueryPage, SortBy, SortDirection};
#[cfg(feature = "redb")]
pub use redb::RedbBackend;
pub use tap::{Call, Observer, Tap};

/// How many useful peers are remembered per document.
pub const PEERS_PER_DOC: usize = 5;

/// A failure anywhere in the storage layer (backend, index or executor).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend's storage engine (redb) failed.
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
pub fn put_prefix_aware<B: Backend + ?Sized>(
    store: &mut B,
    entry: SignedEntry,
) -> Result<PutOutcome, StoreError> {
    let ns = entry.namespace();
    let author = entry.author();
    let key = entry.key();
    for parent in store.prefix_parents(ns, author, key)? {
        if entry.record() <= parent.record() {
            return Ok(PutOutcome::NotInserted);
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
