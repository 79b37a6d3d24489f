//! The vocabulary of [`super::Live`]: what goes in, what comes out, what subscribers see.

use std::time::Duration;

use super::error::{SessionError, StoreFailure};

use crate::{
    entry::SignedEntry,
    hash::{Hash, PeerId},
    keys::NamespaceId,
    ranger::ContentStatus,
    replica::{ReplicaError, ReplicaEvent, StoreCommand, StoreResponse},
    wire::{NodeAddr, DEFAULT_HEADS_SIZE_LIMIT, DEFAULT_MAX_FRAME_LEN},
};

/// Which side of a sync connection a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// We dialed (iroh-docs' "Alice"). Ids of dialed sessions are allocated by `Live`.
    Dial,
    /// We accepted (iroh-docs' "Bob"). Ids of accepted sessions are allocated by the runtime.
    Accept,
}

/// Identifies one sync session (one QUIC connection with one bi-stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId {
    /// Which side we are.
    pub role: Role,
    /// Number, unique per role.
    pub n: u64,
}

/// Identifies a store command sent by `Live`, to match its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StoreRequestId(pub u64);

/// Identifies an API command, chosen by the caller, echoed in the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiRequestId(pub u64);

/// Why a sync was started (iroh-docs' `SyncReason`, plus Sheaf's own triggers).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum SyncReason {
    /// A peer given to `start_sync`.
    DirectJoin,
    /// A new gossip neighbour.
    NewNeighbor,
    /// A neighbour reported news.
    SyncReport,
    /// A report arrived while a sync was running.
    Resync,
    /// A failed sync is tried again (Sheaf only).
    Retry,
    /// Periodic anti-entropy (Sheaf only).
    AntiEntropy,
}

/// How a sync session came about.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Origin {
    /// We dialed, for this reason.
    Connect(SyncReason),
    /// The peer dialed.
    Accept,
}

/// Counters of a finished sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct SyncDetails {
    /// Valid entries received (forged or otherwise invalid ones are not counted).
    pub entries_received: usize,
    /// Entries sent.
    pub entries_sent: usize,
    /// Sync messages sent (the dialer's `Init` included).
    pub messages_sent: usize,
    /// Sync messages received and processed.
    pub messages_received: usize,
}

impl SyncDetails {
    /// Message exchanges the sync needed: the protocol alternates (each message answers the
    /// previous one), so `m` messages in all take `⌈m / 2⌉` round trips, after the
    /// connection's own handshake. On a slow link these, not the bytes, set the time.
    pub fn round_trips(&self) -> usize {
        (self.messages_sent + self.messages_received).div_ceil(2)
    }
}

/// A finished sync, as subscribers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncEvent {
    /// The peer.
    pub peer: PeerId,
    /// Who dialed.
    pub origin: Origin,
    /// Wall clock when the sync started, µs since the epoch.
    pub started_micros: u64,
    /// Wall clock when it finished, µs since the epoch.
    pub finished_micros: u64,
    /// Time from start to an open stream.
    pub connect: Duration,
    /// Time from an open stream to the end.
    pub process: Duration,
    /// Counters, or why it failed.
    pub result: Result<SyncDetails, SessionError>,
}

/// What a document subscriber sees (iroh-docs' `LiveEvent`, plus `Lagged`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent {
    /// A local write.
    InsertLocal {
        /// The entry.
        entry: SignedEntry,
    },
    /// An entry from a peer.
    InsertRemote {
        /// The peer it came from.
        from: PeerId,
        /// The entry.
        entry: SignedEntry,
        /// Content status. `Live` reports the sender's; the engine replaces it with the local
        /// blob store's status when it delivers the event, as iroh-docs does.
        content_status: ContentStatus,
    },
    /// Content was downloaded.
    ContentReady {
        /// Its hash.
        hash: Hash,
    },
    /// No downloads are pending for this document any more (after a sync).
    PendingContentReady,
    /// A gossip neighbour joined.
    NeighborUp(PeerId),
    /// A gossip neighbour left.
    NeighborDown(PeerId),
    /// A sync finished.
    SyncFinished(SyncEvent),
    /// The subscriber did not keep up and this many events were dropped for it.
    Lagged {
        /// Events dropped.
        missed: u64,
    },
}

/// A command from the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiCommand {
    /// Join the document's swarm and sync with these peers (and its useful peers).
    StartSync {
        /// Document.
        namespace: NamespaceId,
        /// Peers to sync with; their addresses are handed to the runtime.
        peers: Vec<NodeAddr>,
    },
    /// Stop syncing the document.
    Leave {
        /// Document.
        namespace: NamespaceId,
        /// Also close all subscriptions.
        kill_subscribers: bool,
    },
    /// A subscriber appeared (the document must be open).
    Subscribe {
        /// Document.
        namespace: NamespaceId,
    },
    /// A subscriber went away.
    Unsubscribe {
        /// Document.
        namespace: NamespaceId,
    },
    /// Stop everything and flush the store.
    Shutdown,
}

/// Why an API command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiveError {
    /// The store refused.
    #[error("store: {0}")]
    Store(StoreFailure),
    /// `Live` is shutting down.
    #[error("shutting down")]
    ShuttingDown,
    /// A bound was reached.
    #[error("limit reached: {0}")]
    Limit(&'static str),
}

/// What the gossip layer reports for a document's topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GossipEvent {
    /// The topic was joined with these neighbours.
    Joined(Vec<PeerId>),
    /// A neighbour joined.
    NeighborUp(PeerId),
    /// A neighbour left.
    NeighborDown(PeerId),
    /// A message arrived.
    Received {
        /// The payload (an encoded `Op`).
        content: Vec<u8>,
        /// The neighbour that delivered it.
        delivered_from: PeerId,
        /// Whether it came straight from its author's node (iroh-gossip's
        /// `Neighbors | Swarm(Round(0))`).
        direct: bool,
    },
    /// The gossip layer dropped messages: for us, or ours before they left (the runtime's
    /// outbox for the topic was full). Either way a sync with each neighbour repairs it.
    Lagged,
    /// The runtime's subscription to the document's topic failed to start or ended: no
    /// gossip arrives or leaves until `Live` joins the topic again (after a backoff).
    Ended,
}

/// How a download ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadOutcome {
    /// The content was fetched.
    Downloaded,
    /// The blob store already held it; nothing was fetched.
    AlreadyPresent,
    /// It could not be fetched from any provider.
    Failed(String),
}

/// Everything `Live` reacts to.
#[derive(Debug)]
pub enum Input {
    /// An API command.
    Api {
        /// Echoed in the reply.
        request: ApiRequestId,
        /// The command.
        command: ApiCommand,
    },
    /// The store executor's reply to an [`Output::Store`].
    StoreReply {
        /// Which command.
        request: StoreRequestId,
        /// Its result.
        result: Result<StoreResponse, ReplicaError>,
    },
    /// An event drained from the store executor.
    Replica(ReplicaEvent),
    /// Gossip for a document.
    Gossip {
        /// Document (the topic).
        namespace: NamespaceId,
        /// What happened.
        event: GossipEvent,
    },
    /// A dialed session has its stream open.
    SyncConnected {
        /// The session from [`Output::SyncConnect`].
        session: SessionId,
    },
    /// A peer opened a sync stream to us. The runtime picks the id (role `Accept`).
    SyncAccepted {
        /// New session id.
        session: SessionId,
        /// The peer.
        peer: PeerId,
    },
    /// Bytes received on a session's stream.
    SyncData {
        /// Session.
        session: SessionId,
        /// The bytes, in any chunking.
        bytes: Vec<u8>,
    },
    /// The peer finished its sending side.
    SyncRecvFinished {
        /// Session.
        session: SessionId,
    },
    /// The session's connection is gone: after our [`Output::SyncFinish`] (with the teardown's
    /// error, if any), or because the transport failed.
    SyncClosed {
        /// Session.
        session: SessionId,
        /// Why, if the connection failed (a transport error from the runtime, usually
        /// [`SessionError::Transport`]).
        error: Option<SessionError>,
    },
    /// The store executor stopped while it should run (its thread ended or failed): commands
    /// it had not answered never will be. `Live` answers each of them with
    /// [`ReplicaError::Stopped`], so that nothing waits on them. The runtime answers every
    /// later [`Output::Store`] the same way.
    StoreStopped,
    /// The gossip layer stopped answering the runtime (or answers again after it did): ops
    /// may have been lost on every topic, ours and our neighbours'. Reported by the runtime
    /// once per failed health probe while the stall lasts, and once when it ends; `Live`
    /// repairs every document as for [`GossipEvent::Lagged`], with the same limits.
    GossipStalled,
    /// A sync v2 round from [`Output::SyncAll`] ended.
    SyncAllEnded {
        /// The session from [`Output::SyncAll`].
        session: SessionId,
        /// How it went.
        outcome: RoundOutcome,
    },
    /// A peer dialed a sync v2 round. The runtime picks the id (role `Accept`) and waits for
    /// [`Output::RoundAdmit`] before serving it.
    RoundAccepted {
        /// New session id.
        session: SessionId,
        /// The peer.
        peer: PeerId,
    },
    /// A round admitted by [`Output::RoundAdmit`] ended; report every admitted round's end
    /// exactly once.
    RoundServed {
        /// The session from [`Input::RoundAccepted`].
        session: SessionId,
        /// What it did, if it ended well; `None` if it failed.
        report: Option<crate::v2::round::RoundReport>,
        /// How long it took (its `SyncFinished` events start that long before now).
        took: Duration,
    },
    /// A download from [`Output::Download`] ended.
    DownloadFinished {
        /// The hash.
        hash: Hash,
        /// How.
        outcome: DownloadOutcome,
    },
}

/// How a sync v2 round ([`Output::SyncAll`]) ended.
#[derive(Debug, Clone)]
pub enum RoundOutcome {
    /// The round ran to its end.
    Synced(crate::v2::round::RoundReport),
    /// The peer answered v1: it does not speak v2 (or has it turned off).
    V1Only,
    /// The peer refused the round with `Duplicate`: it is dialing us at the same time and
    /// serves that round instead (`docs/sync-v2.md` §2, the tie-break).
    Refused,
    /// The dial or the round failed.
    Failed(SessionError),
}

/// Where a gossip broadcast goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BroadcastScope {
    /// The whole swarm.
    Swarm,
    /// Direct neighbours only.
    Neighbors,
}

/// Everything `Live` asks its runtime to do.
#[derive(Debug)]
pub enum Output {
    /// Run a store command; answer with [`Input::StoreReply`]. Commands must run in order.
    Store {
        /// Echo in the reply.
        request: StoreRequestId,
        /// The command.
        command: StoreCommand,
    },
    /// Remember how to reach a peer.
    AddAddr(NodeAddr),
    /// Join (or add bootstrap peers to) a document's gossip topic.
    GossipJoin {
        /// Document.
        namespace: NamespaceId,
        /// Bootstrap peers.
        peers: Vec<PeerId>,
    },
    /// Leave a document's gossip topic.
    GossipLeave {
        /// Document.
        namespace: NamespaceId,
    },
    /// Broadcast an encoded `Op`.
    GossipBroadcast {
        /// Document.
        namespace: NamespaceId,
        /// Scope.
        scope: BroadcastScope,
        /// The payload.
        payload: Vec<u8>,
    },
    /// `peer` sent us, as its author's node, a gossip `Put` that failed verification, and is
    /// muted: close its gossip connections and refuse new ones for `mute` (from now). Its
    /// `Put`s are dropped meanwhile anyway; cutting the connection also spares the gossip
    /// layer the flood and stops it from relaying the flood to our neighbours.
    GossipBan {
        /// The peer.
        peer: PeerId,
        /// For how long.
        mute: Duration,
    },
    /// Dial `peer` on the sync protocol and open a bi-stream; report
    /// [`Input::SyncConnected`] or [`Input::SyncClosed`].
    SyncConnect {
        /// New session id.
        session: SessionId,
        /// The peer.
        peer: PeerId,
    },
    /// Dial `peer` on sync v2 (`/sheaf-sync/2`, with `/iroh-sync/1` as an additional ALPN)
    /// and run one round ([`crate::v2::round::Round::dial`]) offering `namespaces`; report
    /// [`Input::SyncAllEnded`] exactly once. A peer that answers v1 is reported as
    /// [`RoundOutcome::V1Only`] (close that connection; `Live` dials v1 per document).
    /// [`Output::SyncClose`] of this session aborts the round (still report its end).
    SyncAll {
        /// New session id (role `Dial`).
        session: SessionId,
        /// The peer.
        peer: PeerId,
        /// The documents to offer.
        namespaces: Vec<NamespaceId>,
    },
    /// Serve the round of [`Input::RoundAccepted`] (`refusal` is `None`), or close its
    /// connection with the code. A served round's end comes back as [`Input::RoundServed`].
    RoundAdmit {
        /// The session.
        session: SessionId,
        /// Why not: `Duplicate` when we are dialing the peer and its id is the larger (it
        /// serves our round instead), `Unavailable` when the accept bounds are full, v2 is
        /// off or the node is shutting down.
        refusal: Option<crate::v2::codec::AbortCode>,
    },
    /// Write these bytes (whole frames) to the session's stream.
    SyncSend {
        /// Session.
        session: SessionId,
        /// Frames.
        bytes: Vec<u8>,
    },
    /// Finish our sending side, wait until the peer has read it and finished its own, then
    /// report [`Input::SyncClosed`].
    SyncFinish {
        /// Session.
        session: SessionId,
    },
    /// Abort the session's connection now; no further input is expected for it.
    SyncClose {
        /// Session.
        session: SessionId,
        /// Why.
        reason: SessionError,
    },
    /// Fetch a blob from any of these providers; report [`Input::DownloadFinished`].
    /// Downloads are started in batches ([`LiveConfig::download_batch`]): the `Download`s
    /// of one step may be fetched together.
    Download {
        /// The hash.
        hash: Hash,
        /// Peers believed to hold it.
        providers: Vec<PeerId>,
    },
    /// Deliver an event to the document's subscribers. Only documents with subscribers get
    /// events, except [`LiveEvent::SyncFinished`], which comes for every sync so that the
    /// runtime can log it (with no subscriber, it goes no further).
    Event {
        /// Document.
        namespace: NamespaceId,
        /// The event.
        event: LiveEvent,
    },
    /// End all subscriptions of a document.
    CloseSubscribers {
        /// Document.
        namespace: NamespaceId,
    },
    /// The result of an API command.
    Reply {
        /// The command's id.
        request: ApiRequestId,
        /// Its result.
        result: Result<(), LiveError>,
    },
}

/// Configuration of [`super::Live`]. Every bound is enforced and documented with its overflow
/// policy.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// Largest sync frame accepted (default 1 GiB, as iroh-docs, whose peers may put a whole
    /// document in one message). A larger one ends that session.
    pub max_frame_len: u32,
    /// Most messages one session may exchange before it is ended with an error (guards against
    /// peers that never converge).
    pub max_session_messages: usize,
    /// Most decoded messages waiting per session while the store works (a peer that floods
    /// frames without waiting for replies is disconnected).
    pub max_session_backlog: usize,
    /// Most sync sessions we dial at once; further dials wait in a queue per peer and start
    /// as sessions end ([`LiveStats::dials_queued`]).
    pub max_sessions: usize,
    /// Most sessions peers have opened with us at once, counting those still waiting for
    /// `Init`; a further connection is closed at once with
    /// [`SessionLimit::AcceptedSessions`](super::SessionLimit::AcceptedSessions)
    /// ([`LiveStats::sessions_refused`]).
    pub max_accepted_sessions: usize,
    /// Most sessions with one peer at once, in each direction: further dials to it wait,
    /// further connections from it are closed with
    /// [`SessionLimit::PeerSessions`](super::SessionLimit::PeerSessions).
    pub max_sessions_per_peer: usize,
    /// Largest frame accepted before the peer's `Init` (default 64 KiB; an `Init` carries
    /// one fingerprint). A larger one ends the session.
    pub max_init_frame_len: u32,
    /// An accepted session must deliver its `Init` within this long (default 10 s); bytes
    /// that do not complete it do not extend the deadline.
    pub init_timeout: Duration,
    /// A session with no network progress for this long is aborted.
    pub session_idle_timeout: Duration,
    /// Downloads in flight at once (iroh-docs has no limit, which makes iroh-blobs 0.103
    /// deadlock on bursts of more than 100 requests to one peer).
    pub max_concurrent_downloads: usize,
    /// While downloads are in flight, waiting ones start only once at least this many slots
    /// are free, or all of them fit (default 8; 1 starts each download as soon as a slot
    /// frees). Downloads started together come out of one step, so a runtime can fetch
    /// those with the same providers in one request: iroh-blobs' per-request cost on both
    /// peers is paid once per batch instead of once per blob. While any sync session runs,
    /// at most one batch is in flight, so that a large sync's entries go ahead of their
    /// content; set this to `max_concurrent_downloads` to download at full width always.
    pub download_batch: usize,
    /// Hashes waiting for a download slot or for a provider; beyond this, new hashes are not
    /// tracked (counted in [`LiveStats::downloads_dropped`]).
    pub max_tracked_hashes: usize,
    /// Providers remembered per hash; further ones are ignored.
    pub max_providers_per_hash: usize,
    /// Peers tracked per document; a further peer takes the place of the least recently
    /// active idle one ([`LiveStats::peers_evicted`]), and is refused only while every
    /// tracked peer is busy.
    pub max_peers_per_namespace: usize,
    /// Retries of a failed dialed sync (0 disables retries, iroh-docs' behaviour).
    pub retry_attempts: u32,
    /// Delay before the first retry; doubles per attempt, with ±50% jitter from the seed.
    pub retry_base: Duration,
    /// Longest delay between retries (of syncs and of downloads).
    pub retry_max: Duration,
    /// Rounds of retrying a download that failed with every known provider, from the same
    /// providers, before the hash waits for a new provider (0: only new providers, as
    /// iroh-docs).
    pub download_retry_attempts: u32,
    /// Delay before the first download retry round; doubles per round.
    pub download_retry_base: Duration,
    /// Periodic re-sync with every known peer of each document (off by default). Rounds are
    /// spread with ±10% jitter, and skip peers that synced the document since the previous
    /// round (see [`Live`](super::Live)'s anti-entropy docs).
    pub anti_entropy_interval: Option<Duration>,
    /// Most anti-entropy sessions this node starts per second, over all documents, with a
    /// burst of one second's worth (default 1; 0 counts as 1). Each session is a QUIC
    /// connection and a reconciliation on both nodes: at 1 a second, a node with 1,000 idle
    /// documents and one peer spends under 1% of a core on anti-entropy
    /// (`bench/RESULTS.md`). Rounds over the budget wait for their slot ([`LiveStats::anti_entropy_deferred`]): with many documents the
    /// effective interval grows, the background work per second does not.
    pub anti_entropy_max_per_sec: u32,
    /// Store commands (gossip `Put`s and `SyncReport`s) in flight per delivering peer; more
    /// from that peer are dropped until the store answers (default 16; see the `gossip`
    /// module's budget).
    pub max_gossip_store_per_peer: usize,
    /// Store commands in flight for gossip in all (default 256); more are dropped.
    pub max_gossip_store: usize,
    /// How long `Put`s of a peer whose own `Put` failed verification are dropped unchecked
    /// (default 30 s).
    pub gossip_mute: Duration,
    /// Size limit for the heads in a `SyncReport`.
    pub heads_size_limit: usize,
    /// Most peers one `StartSync` may name.
    pub max_start_sync_peers: usize,
    /// Dial peers with sync v2 (one round per peer for every document wanted from it, see
    /// [`Output::SyncAll`]) rather than a v1 session per document. Off by default here (a
    /// runtime turns it on when it serves v2; the `sheaf` engine sets it from
    /// `Builder::sync_v2`); a peer that answers v1 is remembered and dialed with v1 from
    /// then on.
    pub sync_v2: bool,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_session_messages: 10_000,
            max_session_backlog: 8,
            max_sessions: 512,
            max_accepted_sessions: 512,
            max_sessions_per_peer: 64,
            max_init_frame_len: 64 * 1024,
            init_timeout: Duration::from_secs(10),
            session_idle_timeout: Duration::from_secs(60),
            max_concurrent_downloads: 32,
            download_batch: 8,
            max_tracked_hashes: 1_000_000,
            max_providers_per_hash: 16,
            max_peers_per_namespace: 4096,
            retry_attempts: 5,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            download_retry_attempts: 5,
            download_retry_base: Duration::from_secs(1),
            anti_entropy_interval: None,
            anti_entropy_max_per_sec: 1,
            max_gossip_store_per_peer: 16,
            max_gossip_store: 256,
            gossip_mute: Duration::from_secs(30),
            heads_size_limit: DEFAULT_HEADS_SIZE_LIMIT,
            max_start_sync_peers: 256,
            sync_v2: false,
        }
    }
}

/// Armed timers by kind (tests, fuzzing and the simulator's invariants).
#[cfg(any(test, feature = "fuzzing", feature = "invariants"))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimerCounts {
    /// Session idle deadlines.
    pub session_idle: usize,
    /// Retries of failed dialed syncs.
    pub retry: usize,
    /// Periodic re-syncs of documents.
    pub anti_entropy: usize,
    /// Retry rounds of failed downloads.
    pub download_retry: usize,
    /// Rejoins of gossip topics whose subscription ended.
    pub gossip_rejoin: usize,
}

/// Open sessions by direction, and dials waiting for room ([`super::Live::session_load`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionLoad {
    /// Sessions we dialed (at most `LiveConfig::max_sessions`).
    pub dialed: usize,
    /// Sessions peers opened (at most `LiveConfig::max_accepted_sessions`).
    pub accepted: usize,
    /// Dials waiting for room.
    pub dials_waiting: usize,
}

/// Counters for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Download retry rounds started from the same providers after every provider failed.
    pub download_retries: u64,
    /// Syncs we dialed that completed.
    pub sync_connect_ok: u64,
    /// Syncs we dialed that failed.
    pub sync_connect_failed: u64,
    /// Sync v2 rounds started (each also counts once in `sync_connect_ok` or
    /// `sync_connect_failed` when it ends, unless the peer answered v1).
    pub v2_rounds: u64,
    /// Rounds whose peer answered v1 (its documents were then dialed with v1).
    pub v2_v1_only: u64,
    /// Rounds the peer refused because it was dialing us at the same time (not counted in
    /// `sync_connect_failed`), and rounds peers dialed that we refused for that reason.
    pub v2_crossed: u64,
    /// Syncs we accepted that completed.
    pub sync_accept_ok: u64,
    /// Syncs we accepted that failed.
    pub sync_accept_failed: u64,
    /// Entries received through reconciliation (iroh-docs does not count these).
    pub entries_received_sync: u64,
    /// Entries sent through reconciliation.
    pub entries_sent_sync: u64,
    /// Gossip messages that did not decode (skipped; the topic keeps working).
    pub gossip_decode_errors: u64,
    /// Gossip `Put`s the store refused.
    pub gossip_puts_refused: u64,
    /// Gossip ops dropped before the store: over the gossip budget, or from a muted peer.
    pub gossip_dropped: u64,
    /// Gossip topics joined again after their subscription ended.
    pub gossip_rejoins: u64,
    /// Reports that the gossip layer stalled ([`Input::GossipStalled`]).
    pub gossip_stalls: u64,
    /// Retries scheduled.
    pub retries_scheduled: u64,
    /// Downloads completed.
    pub downloads_ok: u64,
    /// Downloads failed.
    pub downloads_failed: u64,
    /// Hashes not tracked because of `max_tracked_hashes`.
    pub downloads_dropped: u64,
    /// Store commands that failed (not counting a peer's sync message refused for a bound of
    /// the `SyncConfig`: that ends its session with `SessionLimit::Message`).
    pub store_errors: u64,
    /// Anti-entropy rounds run (one per document per interval).
    pub anti_entropy_rounds: u64,
    /// Peers an anti-entropy round skipped because they had synced the document since the
    /// previous round.
    pub anti_entropy_skipped: u64,
    /// Peers dropped from a full peer table to make room for a new one.
    pub peers_evicted: u64,
    /// Dials that waited for room under `max_sessions` / `max_sessions_per_peer`.
    pub dials_queued: u64,
    /// Connections closed at once: over `max_accepted_sessions` or
    /// `max_sessions_per_peer`.
    pub sessions_refused: u64,
    /// Anti-entropy rounds that waited for the node's budget
    /// ([`LiveConfig::anti_entropy_max_per_sec`]).
    pub anti_entropy_deferred: u64,
}

/// A document's sync state, for status views ([`Live::sync_status`](super::Live::sync_status)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocSyncStatus {
    /// The peers the document tracks (at most `max_peers_per_namespace`), in id order.
    pub peers: Vec<PeerSyncStatus>,
}

/// One peer of a document, for status views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSyncStatus {
    /// The peer.
    pub peer: PeerId,
    /// Whether it is a gossip neighbour in the document's swarm now.
    pub neighbor: bool,
    /// Whether a sync with it is running.
    pub syncing: bool,
    /// Dialed syncs with it that failed in a row.
    pub failures: u32,
    /// Whether a retry of a failed sync is scheduled.
    pub retry_scheduled: bool,
    /// The last sync with it that finished, successful or not.
    pub last_sync: Option<SyncEvent>,
}
