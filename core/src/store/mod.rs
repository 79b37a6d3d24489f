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
//!   the element at an offset of arbitrary key ranges from a per-namespace list of chunks of
//!   about 512 entries, each folded (its count and fingerprint) or expanded (an in-memory
//!   order-statistics tree, `fptree`), each in O(log n) instead of iroh-docs' range scans.
//!
//! **Memory and opening, measured** (bench W12, 2 cores, `bench/RESULTS.md`). The design left
//! two ways open: a more compact index, or summaries persisted in the backend. Both were
//! taken, in that order of need:
//!
//! * A document's count and fingerprint live in redb with its entries, so the first sync after
//!   opening that finds nothing to do needs no index (1,000,000 entries: 4.2 ms, iroh-docs
//!   1,444 ms).
//! * The index is persisted too, at the granularity of chunks: a row per ~128 entries (its
//!   start key, count and fingerprint), written with the summary. After opening, a document's
//!   index is its chunk list (≈2 bytes per entry in memory) and a sync with differences
//!   reads back only the chunks its ranges end in, O(d·log n) chunk reads: the first sync
//!   with one difference at 1,000,000 entries takes 28 ms, reading 30 chunks (before: 2.6 s
//!   to rebuild a whole-document tree; iroh-docs 0.4–4.3 s), and the dialing node's index
//!   holds 2.0 MiB instead of 153 MiB (11 bytes per held entry). An expanded chunk costs what
//!   the tree did, ≈160 bytes per entry, so the memory budget ([`Indexed::with_budget`])
//!   folds the least recently used documents back to their lists before it drops them.
//!   Chunks rather than a persisted B-tree of per-node summaries: the chunk rows are one flat
//!   redb table written with the summary (one validity rule for both), and reading one chunk
//!   back is one range scan of at most 256 entries (the size is measured in the `chunks`
//!   module's docs).
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
pub use indexed::{IndexStats, Indexed, SuffixRange, BUILD_PAGE, V2_ITEMS_MAX};
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

/// Whether `store` holds `entry`'s identifier in `ns` in the same or a newer version: a
/// received entry for which this holds would not be stored whatever its signatures say, so
/// sync drops it before any signature work.
pub fn holds_same_or_newer<B: Backend + ?Sized>(
    store: &mut B,
    ns: NamespaceId,
    entry: &SignedEntry,
) -> Result<bool, StoreError> {
    let held = store.get(ns, entry.author(), entry.key())?;
    Ok(held.is_some_and(|h| h.record() >= entry.record()))
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
