//! Why processing a reconciliation message failed: the store, or a per-message bound.
//!
//! A peer chooses the work each of its messages costs us: how many parts it holds, and how
//! many of our entries answering them takes. [`SyncConfig`](super::SyncConfig) bounds both
//! ([`max_parts_per_message`](super::SyncConfig::max_parts_per_message),
//! [`max_reads_per_message`](super::SyncConfig::max_reads_per_message)); a message over a
//! bound fails with [`ProcessError::Limit`], and the session it came in ends with that reason
//! (`SessionError::Limit` in `Live`). Such a failure is the peer's doing, not the store's: it
//! is kept apart from [`StoreError`] all the way up.

use crate::store::StoreError;

/// Why [`process_message`](super::process_message) failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The message exceeded a per-message bound of the [`SyncConfig`](super::SyncConfig).
    #[error("sync limit exceeded: {0}")]
    Limit(#[from] SyncLimit),
}

/// Which per-message bound of the [`SyncConfig`](super::SyncConfig) a peer's message exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SyncLimit {
    /// The message holds more parts than
    /// [`max_parts_per_message`](super::SyncConfig::max_parts_per_message); it was refused
    /// before any of it was processed.
    #[error("{parts} parts in one message (at most {max})")]
    TooManyParts {
        /// Parts in the message.
        parts: usize,
        /// The bound.
        max: usize,
    },
    /// Answering the message would read more entries from the store than
    /// [`max_reads_per_message`](super::SyncConfig::max_reads_per_message). Parts processed
    /// before it was hit may have stored entries; no reply is sent.
    #[error("more than {max} entries read to answer one message")]
    TooManyReads {
        /// The bound.
        max: usize,
    },
    /// Two parts of the message cover common identifiers
    /// ([`reject_overlapping_parts`](super::SyncConfig::reject_overlapping_parts)); it was
    /// refused before any of it was processed.
    #[error("parts of one message overlap")]
    OverlappingParts,
}
