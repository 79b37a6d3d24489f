//! Why a sync session or an API command failed, as types.
//!
//! A session ends for one of a small, closed set of reasons; each is a [`SessionError`]
//! variant carrying the typed cause (the frame decoder's [`FrameError`], the peer's
//! [`AbortReason`], the store's [`StoreFailure`]). Only failures that come from outside the
//! core — the runtime's transport, the storage backend — carry their message as text.

use crate::{
    entry::ValidationFailure,
    keys::{AuthorId, CapabilityError, NamespaceId},
    ranger::SyncLimit,
    replica::ReplicaError,
    store::StoreError,
    wire::{AbortReason, FrameError, SyncMessage},
};

/// Why a sync session ended without completing its reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// No network progress within `LiveConfig::session_idle_timeout`.
    #[error("timed out: no network progress within the idle timeout")]
    IdleTimeout,
    /// The peer's bytes are not a valid frame or message.
    #[error("bad frame: {0}")]
    BadFrame(FrameError),
    /// One of our messages cannot be framed (larger than the frame limit).
    #[error("cannot send: {0}")]
    Send(FrameError),
    /// The peer aborted the session.
    #[error("remote abort: {0:?}")]
    RemoteAbort(AbortReason),
    /// We refused the peer's `Init` and told it why.
    #[error("refused: {0:?}")]
    Refused(AbortReason),
    /// The peer exceeded a per-session bound.
    #[error("limit exceeded: {0}")]
    Limit(SessionLimit),
    /// A message that is not valid in the session's phase.
    #[error("unexpected {0} message")]
    UnexpectedMessage(MessageKind),
    /// The runtime reported a connection for a session that was not dialing.
    #[error("unexpected connect")]
    UnexpectedConnect,
    /// An accepted session with an id already in use or of the dial role.
    #[error("invalid accepted session id")]
    InvalidSession,
    /// The peer finished its sending side before the reconciliation began.
    #[error("peer finished before the sync")]
    PeerFinishedEarly,
    /// The store failed a command of this session.
    #[error("store: {0}")]
    Store(StoreFailure),
    /// The runtime's transport failed (its message: it comes from outside the core).
    #[error("transport: {0}")]
    Transport(String),
    /// The node is shutting down.
    #[error("shutting down")]
    Shutdown,
    /// The connection closed before the reconciliation completed.
    #[error("connection closed")]
    ConnectionClosed,
}

/// Which bound a peer exceeded: of one session, or of the node's sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionLimit {
    /// `LiveConfig::max_session_backlog`: frames sent without waiting for replies.
    #[error("message backlog")]
    Backlog,
    /// `LiveConfig::max_session_messages`: a reconciliation that does not converge.
    #[error("messages per session")]
    Messages,
    /// `LiveConfig::max_accepted_sessions`: the node accepts no more sessions now.
    #[error("accepted sessions")]
    AcceptedSessions,
    /// `LiveConfig::max_sessions_per_peer`: the peer holds as many sessions as it may.
    #[error("sessions per peer")]
    PeerSessions,
    /// A bound of the store's `SyncConfig` on the work of one message: too many parts
    /// ([`SyncLimit::TooManyParts`]) or too many entries read to answer it
    /// ([`SyncLimit::TooManyReads`]).
    #[error("sync message: {0}")]
    Message(SyncLimit),
}

/// The kind of a sync message, for errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MessageKind {
    /// `Init`.
    #[error("Init")]
    Init,
    /// `Sync`.
    #[error("Sync")]
    Sync,
    /// `Abort`.
    #[error("Abort")]
    Abort,
}

impl MessageKind {
    /// The kind of `msg`.
    pub fn of(msg: &SyncMessage) -> Self {
        match msg {
            SyncMessage::Init { .. } => Self::Init,
            SyncMessage::Sync(_) => Self::Sync,
            SyncMessage::Abort { .. } => Self::Abort,
        }
    }
}

/// A store failure as `Live` reports it: the executor's [`ReplicaError`], in a form that can
/// be cloned into events and replies, or a reply of the wrong kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreFailure {
    /// The storage backend failed (its message: it comes from outside the core).
    #[error("storage backend: {0}")]
    Backend(String),
    /// Stored data does not decode.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The store was written by a newer schema.
    #[error("store schema version {found} is newer than supported version {supported}")]
    UnsupportedVersion {
        /// Version found.
        found: u64,
        /// Newest version this build knows.
        supported: u64,
    },
    /// No such document.
    #[error("document {0:?} not found")]
    NotFound(NamespaceId),
    /// The document is not open.
    #[error("document {0:?} is closed")]
    Closed(NamespaceId),
    /// The document is not open for sync.
    #[error("sync is not enabled for document {0:?}")]
    SyncDisabled(NamespaceId),
    /// A write to a read-only document.
    #[error("document is read-only")]
    ReadOnly,
    /// The author's secret key is not in the store.
    #[error("author {0:?} not found")]
    AuthorNotFound(AuthorId),
    /// The entry failed validation.
    #[error("invalid entry: {0}")]
    Validation(ValidationFailure),
    /// A newer entry exists for the key or a prefix of it.
    #[error("a newer entry exists for this key or a prefix of it")]
    NewerEntryExists,
    /// A batch of local writes was refused as a whole (too large, or a key twice).
    #[error("batch refused: {0}")]
    Batch(String),
    /// Capabilities of different namespaces.
    #[error(transparent)]
    Capability(CapabilityError),
    /// The executor answered with a reply of another kind than the command asks for.
    #[error("unexpected store reply (expected {expected})")]
    UnexpectedReply {
        /// The reply the command asks for.
        expected: &'static str,
    },
    /// A peer's sync message exceeded a per-message bound: not a failure of the store but of
    /// the peer. `Live` ends the session with [`SessionError::Limit`] and
    /// [`SessionLimit::Message`].
    #[error("sync limit exceeded: {0}")]
    Limit(SyncLimit),
    /// The store executor stopped: no command runs any more ([`Input::StoreStopped`]).
    ///
    /// [`Input::StoreStopped`]: super::Input::StoreStopped
    #[error("the store executor stopped")]
    Stopped,
    /// A sync v2 command did not fit the executor's v2 state.
    #[error("sync v2: {0}")]
    V2(&'static str),
}

impl From<&ReplicaError> for StoreFailure {
    fn from(e: &ReplicaError) -> Self {
        match e {
            ReplicaError::Store(StoreError::Backend(m)) => Self::Backend(m.clone()),
            ReplicaError::Store(StoreError::Corrupt(m)) => Self::Corrupt(m.clone()),
            ReplicaError::Store(StoreError::UnsupportedVersion { found, supported }) => {
                Self::UnsupportedVersion {
                    found: *found,
                    supported: *supported,
                }
            }
            ReplicaError::NotFound(ns) => Self::NotFound(*ns),
            ReplicaError::Closed(ns) => Self::Closed(*ns),
            ReplicaError::SyncDisabled(ns) => Self::SyncDisabled(*ns),
            ReplicaError::ReadOnly => Self::ReadOnly,
            ReplicaError::AuthorNotFound(a) => Self::AuthorNotFound(*a),
            ReplicaError::Validation(v) => Self::Validation(*v),
            ReplicaError::NewerEntryExists => Self::NewerEntryExists,
            ReplicaError::BatchTooLarge { .. } | ReplicaError::DuplicateKey(_) => {
                Self::Batch(e.to_string())
            }
            ReplicaError::V2(m) => Self::V2(m),
            ReplicaError::Capability(c) => Self::Capability(c.clone()),
            ReplicaError::Limit(l) => Self::Limit(*l),
            ReplicaError::Stopped => Self::Stopped,
        }
    }
}

impl From<ReplicaError> for StoreFailure {
    fn from(e: ReplicaError) -> Self {
        Self::from(&e)
    }
}
