//! `sheaf`: the Sheaf node — iroh-docs compatible multi-writer documents on iroh.
//!
//! The engine wires `sheaf-core`'s state machines to the network: the store (`Replicas` over a
//! redb file, redb's in-memory backend, or any `Backend` given to [`Docs::with_backend`]) on a
//! thread of its own, and the
//! `Live` sync brain on a task that carries out its outputs with iroh connections under ALPN
//! `/iroh-sync/1`, iroh-gossip topics (one per document, topic id = namespace id) and
//! iroh-blobs downloads. It is generic over a small [`Runtime`]; `sheaf-tokio` and
//! `sheaf-smol` fix it.
//!
//! The API mirrors iroh-docs: [`Docs`] manages authors and documents and is the
//! `ProtocolHandler` to mount on iroh's `Router`; [`Doc`] is a handle to one document.

mod check_ahead;
mod convert;
mod doc;
mod docs;
mod fetch;
mod gc;
pub mod gossip_gate;
mod gossip_probe;
#[cfg(test)]
mod gossip_tests;
mod job_queue;
mod live_task;
pub mod metrics;
mod reply;
pub mod runtime;
mod shutdown;
mod store_thread;
#[cfg(test)]
mod tests;
mod topic;
mod transport;
mod v2;

pub use doc::{AddrInfoOptions, Doc, Events, FileProgress, ShareMode};
pub use docs::{Builder, Docs, DocsError, Health, MemoryBudget, Result, DEFAULT_MEMORY_BUDGET};
pub use gc::ProtectCallbackHandler;
pub use gossip_gate::{GatedGossip, GossipGate};
pub use runtime::{BoxFuture, Runtime};
pub use sheaf_core::{
    live::{
        DocSyncStatus, LiveConfig, LiveEvent, Origin, PeerSyncStatus, SyncDetails, SyncEvent,
        SyncReason,
    },
    replica::{OpenState, ReplicaConfig},
    store::{DownloadPolicy, FilterKind, Query, SortBy, SortDirection},
    wire::{DocTicket, NodeAddr},
    Author, AuthorId, Capability, CapabilityKind, ContentStatus, Entry, Hash, NamespaceId,
    NamespaceSecret, PeerId, Record, SignedEntry,
};
pub use shutdown::{BoundedShutdown, GOSSIP_SHUTDOWN_BOUND, LIVE_SHUTDOWN_BOUND};
pub use transport::{
    gossip_builder, transport_config, GOSSIP_CACHE_EVICT_INTERVAL, MAX_LIVE_DOCUMENTS_PER_PEER,
};
pub use v2::{
    SyncAllReport, SyncProtocol, SyncV2Handler, ACCEPT_NEXT_IDLE, ALPN_V2, MAX_POOLED, REUSE_IDLE,
    SYNC_ALL_ATTEMPTS, SYNC_ALL_PAUSE,
};

/// The ALPN of the sync protocol, shared with iroh-docs.
pub const ALPN: &[u8] = b"/iroh-sync/1";
