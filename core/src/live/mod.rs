//! `Live`: the network brain of a node, as a deterministic state machine.
//!
//! `Live` decides when to sync which document with which peer, runs the sync sessions'
//! message exchange, reacts to gossip, schedules content downloads and produces the events
//! subscribers see. It does all of that without IO: everything it needs arrives as an
//! [`Input`], everything it wants done leaves as an [`Output`], and time is passed in. It talks
//! to storage only through [`StoreCommand`]s and their replies, so the same `Live` drives a
//! tokio node, a smol node and the simulator.
//!
//! # Contract
//!
//! * [`Live::handle`] takes one input at the current time; afterwards the caller drains
//!   [`Live::poll_output`] until it returns `None`.
//! * [`Live::poll_timeout`] names exactly the next instant at which [`Live::handle_timeout`]
//!   acts (a session's idle deadline, a retry, an anti-entropy round, a download retry):
//!   every timer has one slot in a table keyed by what it is for, and is stopped when its
//!   object goes away (see `timer`). Calling `handle_timeout` earlier or more often is
//!   harmless. Drain outputs after it too.
//! * Store commands must be executed in the order they are emitted, and each answered with
//!   [`Input::StoreReply`]; replica events drained from the executor are fed back as
//!   [`Input::Replica`].
//!
//! # Behaviour (iroh-docs' `LiveActor`, reference §1.10, §1.12, §2.9–2.11)
//!
//! ```text
//!  StartSync(doc, peers) ─▶ open replica (sync) ─▶ + useful peers ─▶ gossip join ─▶ dial each
//!  gossip NeighborUp ─────▶ dial (NewNeighbor), event NeighborUp
//!  gossip SyncReport ─────▶ store: news for us? ─▶ dial (SyncReport), or queue a re-sync
//!  local insert ──────────▶ gossip Put to the swarm
//!  remote insert ─────────▶ event; download content now (sender has it) or remember it
//!  sync finished ok ──────▶ register useful peer; SyncReport to neighbours if entries arrived;
//!                           event; PendingContentReady when no downloads are queued
//!  sync failed (dialed) ──▶ retry with exponential backoff and seeded jitter (Sheaf only)
//!  download done ─────────▶ ContentReady event + gossip to neighbours
//!  anti-entropy timer ────▶ dial known peers not synced since the last round, within the
//!                           node's budget (Sheaf only; see `anti_entropy`)
//! ```
//!
//! Concurrent dials between two peers are resolved like iroh-docs: the peer with the larger id
//! accepts, the other refuses with `AlreadySyncing`, and the refused dialer stays quiet.
//! Differences from iroh-docs, each deliberate: a gossip message that does not decode is
//! counted and skipped (iroh-docs stops listening to the topic); downloads are bounded in
//! flight; a missing blob is requested again from any peer that later shows it holds it;
//! sessions have an idle timeout and a message limit; a sync whose reconciliation completed is
//! reported as a success even if the connection teardown fails.
//!
//! # Layout
//!
//! Each transition sits next to the state it changes, in `impl Live` blocks of the file
//! that owns that state: this file keeps the struct, the contract (`handle`,
//! `handle_timeout`, `poll_*`) and the output queue; `api` the API commands; `replies` the
//! store continuations and replica events; `gossip` the swarm; `session` the sync sessions
//! (dial, accept, init, process, finish, fail); `peers` the per-peer sync state and retries;
//! `anti_entropy` the periodic re-syncs and their per-node budget; `v2` the sync v2 rounds
//! (one per peer for every document wanted from it); `content` the download queue and its retry arithmetic; `scan` the
//! missing-content scan; `timer` the timer table; `vec_map` the small sorted map of a document's peers; `error` the typed errors
//! ([`SessionError`], [`StoreFailure`]); `invariants` (tests, fuzzing and the simulator's
//! `invariants` feature) `Live::check_invariants`, `Live::pending` and planted bugs.
//!
//! # Bounds, and what each protects against
//!
//! | Bound | Against |
//! |---|---|
//! | `max_frame_len`, `max_init_frame_len` (before `Init`) | a peer announcing a huge frame to make us buffer it |
//! | `init_timeout`, `session_idle_timeout` | connections that drip bytes or stall and hold a slot |
//! | `max_session_backlog`, `max_session_messages` | a peer that floods frames or never converges |
//! | `max_sessions` (dialed), `max_accepted_sessions`, `max_sessions_per_peer` (`admission`) | many connections taking the node's capacity, accepted ones starving our own syncs |
//! | a full accept bound gives way: the session waiting longest for `Init` is closed (`admission`) | many node ids filling the accept bound with connections that never `Init` |
//! | `max_gossip_store_per_peer`, `max_gossip_store`, `gossip_mute` (`gossip`) | gossip `Put`s that cost a signature check each on the one store thread |
//! | a muted peer is banned from our gossip for the mute ([`Output::GossipBan`], `gossip`) | a forger's flood costing the gossip layer and our neighbours, not only the store |
//! | no repair dials to a peer whose dials fail (`gossip`) | a flood turning into a dial per op to a rogue that only gossips |
//! | `SyncConfig` byte budget, parts, reads, overlapping parts (`ranger`) | one message that asks for the same entries thousands of times |
//! | `anti_entropy_max_per_sec` (`anti_entropy`) | background syncs that grow with the number of documents |
//! | `max_concurrent_downloads`, `max_tracked_hashes`, `max_providers_per_hash` | content bursts and hash floods |
//! | `max_peers_per_namespace`, `max_start_sync_peers` | peer tables that grow with every id a peer makes up |
//! | the output queue (`MAX_OUTPUTS`) | a caller that does not drain |
//!
//! Failures the runtime reports, and what `Live` does: a gossip subscription that ended
//! ([`GossipEvent::Ended`]) is joined again with backoff; a gossip stream that lagged
//! ([`GossipEvent::Lagged`]) or a gossip layer that stopped answering the runtime's health
//! probe ([`Input::GossipStalled`]) starts repair syncs with the neighbours, within the
//! session bounds; a store that stopped ([`Input::StoreStopped`]) fails what waits on it.
//!
//! Writes are committed by the store executor on its own schedule ([`crate::replica::Replicas::poll_timeout`],
//! at most every 500 ms), not by `Live`: only the executor sees every write, including the
//! API's local ones. Subscribers are fed by the runtime through [`LagTracker`], so a slow one
//! loses events (and learns how many) instead of stalling anything.

mod admission;
mod anti_entropy;
mod api;
mod content;
mod error;
mod fanout;
mod gossip;
#[cfg(any(test, feature = "fuzzing", feature = "invariants"))]
mod invariants;
mod peers;
mod replies;
mod scan;
mod session;
#[cfg(test)]
mod tests;
mod timer;
mod types;
mod v2;
mod vec_map;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand_chacha::{rand_core::SeedableRng, ChaCha12Rng};

pub use error::{MessageKind, SessionError, SessionLimit, StoreFailure};
pub use fanout::LagTracker;
pub use gossip::MAX_MUTED;
#[cfg(any(test, feature = "fuzzing", feature = "invariants"))]
pub use invariants::{InvariantViolation, PlantedBug};
pub use types::*;
pub use v2::{MAX_V1_PEERS, V2_ROUND_TIMEOUT_FACTOR};

use self::{
    admission::Admission,
    anti_entropy::AntiEntropyBudget,
    content::Downloads,
    gossip::GossipLoad,
    peers::NamespaceStates,
    scan::ContentScans,
    session::Session,
    timer::{Timer, TimerTable},
};
use crate::{
    hash::PeerId,
    keys::NamespaceId,
    replica::StoreCommand,
    time::{Mono, Now},
    wire::NodeAddr,
};

/// Most outputs queued at once; the caller drains after every input, and no single input
/// produces more than a few per peer or per received entry.
const MAX_OUTPUTS: usize = 1 << 20;

/// Missing blobs asked of a peer after each successful sync with it.
const MISSING_PROBES_PER_SYNC: usize = 256;

/// What to do with a store reply.
#[derive(Debug)]
pub(super) enum Cont {
    Ignore,
    StartSyncOpened {
        api: ApiRequestId,
        ns: NamespaceId,
        peers: Vec<NodeAddr>,
    },
    StartSyncPeers {
        api: ApiRequestId,
        ns: NamespaceId,
        peers: Vec<NodeAddr>,
    },
    Subscribed {
        api: Option<ApiRequestId>,
        ns: NamespaceId,
    },
    Initial(SessionId),
    Process(SessionId),
    News {
        ns: NamespaceId,
        from: PeerId,
    },
    GossipPut {
        from: PeerId,
        direct: bool,
    },
    MissingContent {
        ns: NamespaceId,
        /// The page read (`None`: the first).
        cursor: Option<crate::store::query::QueryCursor>,
    },
    Shutdown(ApiRequestId),
}

/// The network brain. See the module docs.
#[derive(Debug)]
pub struct Live {
    me: PeerId,
    config: LiveConfig,
    rng: ChaCha12Rng,
    states: NamespaceStates,
    sessions: BTreeMap<SessionId, Session>,
    next_session: u64,
    next_request: u64,
    pending: BTreeMap<StoreRequestId, Cont>,
    downloads: Downloads,
    scans: ContentScans,
    /// Subscribers per document, as counted by Subscribe / Unsubscribe.
    subscribers: BTreeMap<NamespaceId, usize>,
    /// Documents whose store events we receive.
    store_subscribed: BTreeSet<NamespaceId>,
    timers: TimerTable,
    /// Open sessions by direction and peer, and dials waiting for room.
    admission: Admission,
    /// Store work in flight for gossip, per delivering peer; muted peers.
    gossip_load: GossipLoad,
    /// The node's anti-entropy budget.
    anti_entropy: AntiEntropyBudget,
    /// Sync v2 rounds: documents forming per peer, rounds running, peers that answer v1.
    v2: v2::V2State,
    outputs: VecDeque<Output>,
    stats: LiveStats,
    shutting_down: bool,
    now: Now,
    /// The first store reply that did not answer the oldest outstanding request.
    #[cfg(any(test, feature = "fuzzing", feature = "invariants"))]
    reply_order_violation: Option<(u64, u64)>,
}

impl Live {
    /// A new `Live` for the node `me`; all its randomness (retry jitter) comes from `rng_seed`.
    pub fn new(config: LiveConfig, me: PeerId, rng_seed: [u8; 32]) -> Self {
        let downloads = Downloads::new(
            config.max_concurrent_downloads,
            config.download_batch,
            config.max_tracked_hashes,
            config.max_providers_per_hash,
        );
        Self {
            me,
            states: NamespaceStates::new(config.max_peers_per_namespace),
            config,
            rng: ChaCha12Rng::from_seed(rng_seed),
            sessions: BTreeMap::new(),
            next_session: 0,
            next_request: 0,
            pending: BTreeMap::new(),
            downloads,
            scans: ContentScans::default(),
            subscribers: BTreeMap::new(),
            store_subscribed: BTreeSet::new(),
            timers: TimerTable::default(),
            anti_entropy: AntiEntropyBudget::default(),
            admission: Admission::default(),
            gossip_load: GossipLoad::default(),
            v2: v2::V2State::default(),
            outputs: VecDeque::new(),
            stats: LiveStats::default(),
            shutting_down: false,
            now: Now::default(),
            #[cfg(any(test, feature = "fuzzing", feature = "invariants"))]
            reply_order_violation: None,
        }
    }

    /// This node's id.
    pub fn me(&self) -> PeerId {
        self.me
    }

    /// Counters for metrics.
    pub fn stats(&self) -> LiveStats {
        let mut stats = self.stats.clone();
        stats.downloads_dropped = self.downloads.dropped;
        stats.peers_evicted = self.states.evicted;
        stats
    }

    /// Whether `ns` is in the sync set.
    pub fn is_syncing(&self, ns: &NamespaceId) -> bool {
        self.states.is_syncing(ns)
    }

    /// Sessions currently open.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Store commands sent and not yet answered. Bounded by what admits them: sessions (one
    /// message at a time each), gossip (`max_gossip_store`), API calls, downloads and scans.
    pub fn store_backlog(&self) -> usize {
        self.pending.len()
    }

    /// Open sessions by direction, and dials waiting for room (status and metrics).
    pub fn session_load(&self) -> SessionLoad {
        let (dialed, accepted) = self.admission.open();
        SessionLoad {
            dialed,
            accepted,
            dials_waiting: self.admission.waiting(),
        }
    }

    /// Downloads in flight and hashes queued.
    pub fn download_load(&self) -> (usize, usize) {
        (self.downloads.in_flight(), self.downloads.queued_len())
    }

    /// Store commands awaiting a reply.
    pub fn pending_store_requests(&self) -> usize {
        self.pending.len()
    }

    /// The next output, if any. Drain until `None` after every `handle*` call.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Exactly when [`Live::handle_timeout`] next has work to do.
    pub fn poll_timeout(&self) -> Option<Mono> {
        self.timers.next_timeout()
    }

    pub(super) fn push(&mut self, out: Output) {
        assert!(self.outputs.len() < MAX_OUTPUTS, "output queue not drained");
        self.outputs.push_back(out);
    }

    pub(super) fn store(&mut self, command: StoreCommand, cont: Cont) {
        let request = StoreRequestId(self.next_request);
        self.next_request += 1;
        self.pending.insert(request, cont);
        self.push(Output::Store { request, command });
    }

    pub(super) fn emit(&mut self, ns: NamespaceId, event: LiveEvent) {
        if self.subscribers.get(&ns).is_some_and(|n| *n > 0) {
            self.push(Output::Event {
                namespace: ns,
                event,
            });
        }
    }

    pub(super) fn reply(&mut self, request: ApiRequestId, result: Result<(), LiveError>) {
        self.push(Output::Reply { request, result });
    }

    /// The sync state of `namespace` (`None` if it is not being synced): its peers, which of
    /// them are gossip neighbours, running syncs, failures and each peer's last sync.
    pub fn sync_status(&self, namespace: &NamespaceId) -> Option<DocSyncStatus> {
        let state = self.states.get(namespace)?;
        let peers = state
            .peers
            .iter()
            .map(|(peer, p)| PeerSyncStatus {
                peer: *peer,
                neighbor: state.neighbors.contains(peer),
                syncing: p.state != peers::SyncState::Idle,
                failures: p.failures,
                retry_scheduled: p.retry_at.is_some(),
                last_sync: p.last_sync.as_deref().cloned(),
            })
            .collect();
        Some(DocSyncStatus { peers })
    }

    /// Handles one input at time `now`.
    pub fn handle(&mut self, now: Now, input: Input) {
        debug_assert!(now.mono >= self.now.mono, "time went backwards");
        self.now = now;
        match input {
            Input::Api { request, command } => self.on_api(request, command),
            Input::StoreReply { request, result } => self.on_store_reply(request, result),
            Input::Replica(event) => self.on_replica_event(event),
            Input::StoreStopped => {
                let unanswered: Vec<StoreRequestId> = self.pending.keys().copied().collect();
                for request in unanswered {
                    self.on_store_reply(request, Err(crate::replica::ReplicaError::Stopped));
                }
            }
            Input::Gossip { namespace, event } => self.on_gossip(namespace, event),
            Input::GossipStalled => self.on_gossip_stalled(),
            Input::SyncConnected { session } => self.on_connected(session),
            Input::SyncAccepted { session, peer } => self.on_accepted(session, peer),
            Input::SyncData { session, bytes } => self.on_data(session, &bytes),
            Input::SyncRecvFinished { session } => self.on_recv_finished(session),
            Input::SyncClosed { session, error } => self.on_closed(session, error),
            Input::SyncAllEnded { session, outcome } => self.on_sync_all_ended(session, outcome),
            Input::RoundAccepted { session, peer } => self.on_round_accepted(session, peer),
            Input::RoundServed {
                session,
                report,
                took,
            } => self.on_round_served(session, report, took),
            Input::DownloadFinished { hash, outcome } => self.on_download_finished(hash, outcome),
        }
        self.dispatch_dials();
        self.dispatch_v2();
        self.dispatch_downloads();
    }

    /// Runs due timers. Spurious calls are harmless.
    pub fn handle_timeout(&mut self, now: Now) {
        debug_assert!(now.mono >= self.now.mono, "time went backwards");
        self.now = now;
        // Bounded: each round disarms one timer, and a timer re-armed while firing is armed
        // strictly after `now` (anti-entropy), so each fires at most once per call.
        while let Some((_, timer)) = self.timers.pop_due(now.mono) {
            match timer {
                Timer::SessionIdle(id) => self.on_idle_timeout(id),
                Timer::Retry(ns, peer) => self.on_retry_timer(ns, peer),
                Timer::AntiEntropy(ns) => self.on_anti_entropy(ns),
                Timer::DownloadRetry(hash) => self.on_download_retry(hash),
                Timer::GossipRejoin(ns) => self.on_gossip_rejoin(ns),
            }
        }
        self.dispatch_dials();
        self.dispatch_v2();
        self.dispatch_downloads();
    }

    /// Ids of the documents in the sync set.
    pub fn syncing(&self) -> Vec<NamespaceId> {
        self.states.namespaces().copied().collect()
    }
}
