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
//! * [`Live::poll_timeout`] says when [`Live::handle_timeout`] next has work (session
//!   deadlines, retries, anti-entropy); calling `handle_timeout` earlier or more often is
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
//! Writes are committed by the store executor on its own schedule ([`crate::replica::Replicas::poll_timeout`],
//! at most every 500 ms), not by `Live`: only the executor sees every write, including the
//! API's local ones. Subscribers are fed by the runtime through [`LagTracker`], so a slow one
//! loses events (and learns how many) instead of stalling anything.

mod content;
mod fanout;
mod peers;
mod scan;
mod session;
#[cfg(test)]
mod tests;
mod types;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand_chacha::{rand_core::SeedableRng, ChaCha12Rng};
use rand_core::Rng;

pub use fanout::LagTracker;
pub use types::*;

use self::{
    content::Downloads,
    peers::{AcceptOutcome, NamespaceStates},
    scan::ContentScans,
    session::{Phase, Session},
};
use crate::{
    hash::{Hash, PeerId},
    keys::NamespaceId,
    ranger::{self, ContentStatus},
    replica::{OpenOpts, ReplicaEvent, StoreCommand, StoreResponse},
    store::query::QueryCursor,
    time::{Mono, Now},
    wire::{
        encode_frame, AbortReason, AuthorHeads, Decode, Encode, NodeAddr, Op, SyncMessage,
        SyncReport,
    },
};

/// Most outputs queued at once; the caller drains after every input, and no single input
/// produces more than a few per peer or per received entry.
const MAX_OUTPUTS: usize = 1 << 20;

/// Missing blobs asked of a peer after each successful sync with it.
const MISSING_PROBES_PER_SYNC: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    SessionIdle(SessionId),
    Retry(NamespaceId, PeerId),
    AntiEntropy(NamespaceId),
    DownloadRetry(Hash),
}

/// What to do with a store reply.
#[derive(Debug)]
enum Cont {
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
    GossipPut,
    MissingContent(NamespaceId),
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
    timers: BTreeSet<(Mono, Timer)>,
    outputs: VecDeque<Output>,
    stats: LiveStats,
    shutting_down: bool,
    now: Now,
}

impl Live {
    /// A new `Live` for the node `me`; all its randomness (retry jitter) comes from `rng_seed`.
    pub fn new(config: LiveConfig, me: PeerId, rng_seed: [u8; 32]) -> Self {
        let downloads = Downloads::new(
            config.max_concurrent_downloads,
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
            timers: BTreeSet::new(),
            outputs: VecDeque::new(),
            stats: LiveStats::default(),
            shutting_down: false,
            now: Now::default(),
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

    /// When [`Live::handle_timeout`] next has work to do.
    pub fn poll_timeout(&self) -> Option<Mono> {
        self.timers.first().map(|(t, _)| *t)
    }

    fn push(&mut self, out: Output) {
        assert!(self.outputs.len() < MAX_OUTPUTS, "output queue not drained");
        self.outputs.push_back(out);
    }

    fn store(&mut self, command: StoreCommand, cont: Cont) {
        let request = StoreRequestId(self.next_request);
        self.next_request += 1;
        self.pending.insert(request, cont);
        self.push(Output::Store { request, command });
    }

    fn emit(&mut self, ns: NamespaceId, event: LiveEvent) {
        if self.subscribers.get(&ns).is_some_and(|n| *n > 0) {
            self.push(Output::Event {
                namespace: ns,
                event,
            });
        }
    }

    fn reply(&mut self, request: ApiRequestId, result: Result<(), LiveError>) {
        self.push(Output::Reply { request, result });
    }

    /// Handles one input at time `now`.
    pub fn handle(&mut self, now: Now, input: Input) {
        debug_assert!(now.mono >= self.now.mono, "time went backwards");
        self.now = now;
        match input {
            Input::Api { request, command } => self.on_api(request, command),
            Input::StoreReply { request, result } => self.on_store_reply(request, result),
            Input::Replica(event) => self.on_replica_event(event),
            Input::Gossip { namespace, event } => self.on_gossip(namespace, event),
            Input::SyncConnected { session } => self.on_connected(session),
            Input::SyncAccepted { session, peer } => self.on_accepted(session, peer),
            Input::SyncData { session, bytes } => self.on_data(session, &bytes),
            Input::SyncRecvFinished { session } => self.on_recv_finished(session),
            Input::SyncClosed { session, error } => self.on_closed(session, error),
            Input::DownloadFinished { hash, outcome } => self.on_download_finished(hash, outcome),
        }
        self.dispatch_downloads();
    }

    /// Runs due timers. Spurious calls are harmless.
    pub fn handle_timeout(&mut self, now: Now) {
        debug_assert!(now.mono >= self.now.mono, "time went backwards");
        self.now = now;
        while let Some(&(at, timer)) = self.timers.first() {
            if at > now.mono {
                break;
            }
            self.timers.remove(&(at, timer));
            match timer {
                Timer::SessionIdle(id) => {
                    if let Some(s) = self.sessions.get(&id) {
                        if s.deadline <= now.mono {
                            self.fail_session(id, "timed out".into());
                        } else {
                            let deadline = s.deadline;
                            self.timers.insert((deadline, Timer::SessionIdle(id)));
                        }
                    }
                }
                Timer::Retry(ns, peer) => {
                    let due = self
                        .states
                        .get_mut(&ns)
                        .and_then(|s| s.peers.get_mut(&peer))
                        .filter(|p| p.retry_at == Some(at));
                    if let Some(p) = due {
                        p.retry_at = None;
                        self.sync_with_peer(ns, peer, SyncReason::Retry);
                    }
                }
                Timer::AntiEntropy(ns) => {
                    if let Some(state) = self.states.get_mut(&ns) {
                        let peers: Vec<PeerId> = state.peers.keys().copied().collect();
                        for peer in peers {
                            self.sync_with_peer(ns, peer, SyncReason::AntiEntropy);
                        }
                        if let Some(every) = self.config.anti_entropy_interval {
                            self.timers
                                .insert((now.mono + every, Timer::AntiEntropy(ns)));
                        }
                    }
                }
                Timer::DownloadRetry(hash) => {
                    if self.downloads.retry(&hash) {
                        self.stats.download_retries += 1;
                    }
                }
            }
        }
        self.dispatch_downloads();
    }

    // ---- API -------------------------------------------------------------------------

    fn on_api(&mut self, api: ApiRequestId, command: ApiCommand) {
        if self.shutting_down {
            return self.reply(api, Err(LiveError::ShuttingDown));
        }
        match command {
            ApiCommand::StartSync { namespace, peers } => {
                if peers.len() > self.config.max_start_sync_peers {
                    return self.reply(api, Err(LiveError::Limit("too many peers")));
                }
                if self.states.is_syncing(&namespace) {
                    self.store(
                        StoreCommand::GetSyncPeers(namespace),
                        Cont::StartSyncPeers {
                            api,
                            ns: namespace,
                            peers,
                        },
                    );
                } else {
                    self.states.insert(namespace);
                    let opts = OpenOpts {
                        sync: true,
                        subscribe: false,
                    };
                    self.store(
                        StoreCommand::Open { namespace, opts },
                        Cont::StartSyncOpened {
                            api,
                            ns: namespace,
                            peers,
                        },
                    );
                }
            }
            ApiCommand::Leave {
                namespace,
                kill_subscribers,
            } => {
                if self.states.remove(&namespace) {
                    self.store(
                        StoreCommand::SetSync {
                            namespace,
                            sync: false,
                        },
                        Cont::Ignore,
                    );
                    if kill_subscribers {
                        self.subscribers.remove(&namespace);
                    }
                    self.update_store_subscription(namespace);
                    self.store(StoreCommand::Close(namespace), Cont::Ignore);
                    self.push(Output::GossipLeave { namespace });
                }
                if kill_subscribers {
                    self.subscribers.remove(&namespace);
                    self.update_store_subscription(namespace);
                    self.push(Output::CloseSubscribers { namespace });
                }
                self.reply(api, Ok(()));
            }
            ApiCommand::Subscribe { namespace } => {
                *self.subscribers.entry(namespace).or_default() += 1;
                if self.store_subscribed.insert(namespace) {
                    self.store(
                        StoreCommand::Subscribe(namespace),
                        Cont::Subscribed {
                            api: Some(api),
                            ns: namespace,
                        },
                    );
                } else {
                    self.reply(api, Ok(()));
                }
            }
            ApiCommand::Unsubscribe { namespace } => {
                if let Some(n) = self.subscribers.get_mut(&namespace) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.subscribers.remove(&namespace);
                    }
                }
                self.update_store_subscription(namespace);
                self.reply(api, Ok(()));
            }
            ApiCommand::Shutdown => {
                self.shutting_down = true;
                let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
                for id in ids {
                    self.sessions.remove(&id);
                    self.push(Output::SyncClose {
                        session: id,
                        reason: "shutting down".into(),
                    });
                }
                self.timers.clear();
                self.store(StoreCommand::Flush, Cont::Shutdown(api));
            }
        }
    }

    /// Holds a store subscription exactly while the document is synced or has subscribers.
    fn update_store_subscription(&mut self, ns: NamespaceId) {
        let wanted = self.states.is_syncing(&ns) || self.subscribers.contains_key(&ns);
        let held = self.store_subscribed.contains(&ns);
        if wanted && !held {
            self.store_subscribed.insert(ns);
            self.store(
                StoreCommand::Subscribe(ns),
                Cont::Subscribed { api: None, ns },
            );
        } else if !wanted && held {
            self.store_subscribed.remove(&ns);
            self.store(StoreCommand::Unsubscribe(ns), Cont::Ignore);
        }
    }

    fn join_peers(&mut self, ns: NamespaceId, peers: Vec<NodeAddr>) {
        let mut ids = Vec::new();
        for peer in peers {
            if peer.id == self.me || ids.contains(&peer.id) {
                continue;
            }
            ids.push(peer.id);
            if !peer.addrs.is_empty() {
                self.push(Output::AddAddr(peer));
            }
        }
        self.push(Output::GossipJoin {
            namespace: ns,
            peers: ids.clone(),
        });
        for id in ids {
            self.sync_with_peer(ns, id, SyncReason::DirectJoin);
        }
    }

    // ---- store replies -----------------------------------------------------------------

    fn on_store_reply(
        &mut self,
        request: StoreRequestId,
        result: Result<StoreResponse, crate::replica::ReplicaError>,
    ) {
        let Some(cont) = self.pending.remove(&request) else {
            return;
        };
        if result.is_err() {
            self.stats.store_errors += 1;
        }
        match cont {
            Cont::Ignore | Cont::GossipPut => {
                if matches!(cont, Cont::GossipPut) && result.is_err() {
                    self.stats.gossip_puts_refused += 1;
                }
            }
            Cont::StartSyncOpened { api, ns, peers } => match result {
                Ok(_) => {
                    self.update_store_subscription(ns);
                    // Content missing before a restart is not in memory any more: find it
                    // (once per document, see `scan`).
                    if let Some(cursor) = self.scans.start(ns, self.downloads.dropped) {
                        self.read_scan_page(ns, cursor);
                    }
                    if let Some(every) = self.config.anti_entropy_interval {
                        self.timers
                            .insert((self.now.mono + every, Timer::AntiEntropy(ns)));
                    }
                    self.store(
                        StoreCommand::GetSyncPeers(ns),
                        Cont::StartSyncPeers { api, ns, peers },
                    );
                }
                Err(e) => {
                    self.states.remove(&ns);
                    self.reply(api, Err(LiveError::Store(e.to_string())));
                }
            },
            Cont::StartSyncPeers { api, ns, mut peers } => {
                if let Ok(StoreResponse::Peers(Some(useful))) = result {
                    peers.extend(useful.into_iter().map(NodeAddr::new));
                }
                if self.states.is_syncing(&ns) {
                    self.join_peers(ns, peers);
                }
                self.reply(api, Ok(()));
            }
            Cont::Subscribed { api, ns } => {
                if result.is_err() {
                    self.store_subscribed.remove(&ns);
                    if api.is_some() {
                        if let Some(n) = self.subscribers.get_mut(&ns) {
                            *n = n.saturating_sub(1);
                            if *n == 0 {
                                self.subscribers.remove(&ns);
                            }
                        }
                    }
                }
                if let Some(api) = api {
                    let r = result
                        .map(|_| ())
                        .map_err(|e| LiveError::Store(e.to_string()));
                    self.reply(api, r);
                }
            }
            Cont::Initial(id) => match result {
                Ok(StoreResponse::Message(message)) => self.send_init(id, message),
                Ok(other) => self.fail_session(id, format!("unexpected store reply {other:?}")),
                Err(e) => self.fail_session(id, format!("store: {e}")),
            },
            Cont::Process(id) => match result {
                Ok(StoreResponse::Synced { reply, outcome }) => {
                    self.on_processed(id, reply, outcome)
                }
                Ok(other) => self.fail_session(id, format!("unexpected store reply {other:?}")),
                Err(e) => self.fail_session(id, format!("store: {e}")),
            },
            Cont::News { ns, from } => {
                if let Ok(StoreResponse::News(Some(_))) = result {
                    self.sync_with_peer(ns, from, SyncReason::SyncReport);
                }
            }
            Cont::MissingContent(ns) => match result {
                Ok(StoreResponse::MissingContent { hashes, next }) => {
                    for hash in hashes {
                        self.downloads.mark_missing(ns, hash);
                    }
                    let syncing = self.states.is_syncing(&ns);
                    let hold = !self.sessions.is_empty();
                    let dropped = self.downloads.dropped;
                    if let Some(cursor) = self.scans.page(ns, next, syncing, hold, dropped) {
                        self.read_scan_page(ns, Some(cursor));
                    }
                }
                _ => self.scans.failed(ns),
            },
            Cont::Shutdown(api) => {
                let r = result
                    .map(|_| ())
                    .map_err(|e| LiveError::Store(e.to_string()));
                self.push(Output::Reply {
                    request: api,
                    result: r,
                });
            }
        }
    }

    // ---- replica events ----------------------------------------------------------------

    fn on_replica_event(&mut self, event: ReplicaEvent) {
        match event {
            ReplicaEvent::LocalInsert { namespace, entry } => {
                if self.states.is_syncing(&namespace) {
                    let payload = Op::Put(entry.clone()).to_wire();
                    self.push(Output::GossipBroadcast {
                        namespace,
                        scope: BroadcastScope::Swarm,
                        payload,
                    });
                }
                self.emit(namespace, LiveEvent::InsertLocal { entry });
            }
            ReplicaEvent::RemoteInsert {
                namespace,
                entry,
                from,
                should_download,
                remote_content_status,
            } => {
                if should_download {
                    let hash = entry.content_hash();
                    if remote_content_status == ContentStatus::Complete {
                        self.downloads.offer(namespace, hash, from, false);
                    } else {
                        self.downloads.mark_missing(namespace, hash);
                    }
                }
                self.emit(
                    namespace,
                    LiveEvent::InsertRemote {
                        from,
                        entry,
                        content_status: remote_content_status,
                    },
                );
            }
        }
    }

    // ---- gossip ------------------------------------------------------------------------

    fn on_gossip(&mut self, ns: NamespaceId, event: GossipEvent) {
        if !self.states.is_syncing(&ns) {
            return;
        }
        match event {
            GossipEvent::Joined(neighbors) => {
                for peer in neighbors {
                    self.on_neighbor_up(ns, peer);
                }
            }
            GossipEvent::NeighborUp(peer) => self.on_neighbor_up(ns, peer),
            GossipEvent::NeighborDown(peer) => {
                if let Some(state) = self.states.get_mut(&ns) {
                    state.neighbors.remove(&peer);
                }
                self.emit(ns, LiveEvent::NeighborDown(peer));
            }
            GossipEvent::Lagged => {}
            GossipEvent::Received {
                content,
                delivered_from,
                direct,
            } => match Op::from_wire(&content) {
                Err(_) => self.stats.gossip_decode_errors += 1,
                Ok(Op::Put(entry)) => {
                    let status = if direct {
                        ContentStatus::Complete
                    } else {
                        ContentStatus::Missing
                    };
                    if direct && self.downloads.is_missing(&entry.content_hash()) {
                        self.downloads
                            .offer(ns, entry.content_hash(), delivered_from, true);
                    }
                    self.store(
                        StoreCommand::InsertRemote {
                            namespace: ns,
                            entry,
                            from: delivered_from,
                            content_status: status,
                        },
                        Cont::GossipPut,
                    );
                }
                Ok(Op::ContentReady(hash)) => {
                    self.downloads.offer(ns, hash, delivered_from, true);
                }
                Ok(Op::SyncReport(SyncReport { namespace, heads })) => {
                    if namespace != ns {
                        self.stats.gossip_decode_errors += 1;
                        return;
                    }
                    match AuthorHeads::decode(&heads) {
                        Ok(heads) => self.store(
                            StoreCommand::HasNewsForUs { namespace, heads },
                            Cont::News {
                                ns,
                                from: delivered_from,
                            },
                        ),
                        Err(_) => self.stats.gossip_decode_errors += 1,
                    }
                }
            },
        }
    }

    fn on_neighbor_up(&mut self, ns: NamespaceId, peer: PeerId) {
        if let Some(state) = self.states.get_mut(&ns) {
            state.neighbors.insert(peer);
        }
        self.sync_with_peer(ns, peer, SyncReason::NewNeighbor);
        self.emit(ns, LiveEvent::NeighborUp(peer));
    }

    fn broadcast_neighbors(&mut self, ns: NamespaceId, op: Op) {
        if self.states.is_syncing(&ns) {
            self.push(Output::GossipBroadcast {
                namespace: ns,
                scope: BroadcastScope::Neighbors,
                payload: op.to_wire(),
            });
        }
    }

    // ---- sessions ----------------------------------------------------------------------

    fn sync_with_peer(&mut self, ns: NamespaceId, peer: PeerId, reason: SyncReason) {
        if peer == self.me || self.sessions.len() >= self.config.max_sessions {
            return;
        }
        if !self.states.start_connect(&ns, peer, reason, self.now) {
            return;
        }
        let id = SessionId {
            role: Role::Dial,
            n: self.next_session,
        };
        self.next_session += 1;
        let deadline = self.now.mono + self.config.session_idle_timeout;
        let session = Session::new(
            id,
            peer,
            Some(ns),
            Origin::Connect(reason),
            self.now,
            deadline,
            self.config.max_frame_len,
        );
        self.sessions.insert(id, session);
        self.timers.insert((deadline, Timer::SessionIdle(id)));
        self.push(Output::SyncConnect { session: id, peer });
    }

    fn touch(&mut self, id: SessionId) {
        let deadline = self.now.mono + self.config.session_idle_timeout;
        if let Some(s) = self.sessions.get_mut(&id) {
            s.deadline = deadline;
        }
    }

    fn on_connected(&mut self, id: SessionId) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if s.phase != Phase::Connecting {
            return self.fail_session(id, "unexpected connect".into());
        }
        s.connected = Some(self.now.mono);
        s.phase = Phase::Initializing;
        let ns = s.namespace.expect("dialed sessions know their namespace");
        self.touch(id);
        self.store(StoreCommand::SyncInitialMessage(ns), Cont::Initial(id));
    }

    fn on_accepted(&mut self, id: SessionId, peer: PeerId) {
        if self.shutting_down || self.sessions.contains_key(&id) || id.role != Role::Accept {
            self.push(Output::SyncClose {
                session: id,
                reason: "refused".into(),
            });
            return;
        }
        let deadline = self.now.mono + self.config.session_idle_timeout;
        let mut session = Session::new(
            id,
            peer,
            None,
            Origin::Accept,
            self.now,
            deadline,
            self.config.max_frame_len,
        );
        session.connected = Some(self.now.mono);
        self.sessions.insert(id, session);
        self.timers.insert((deadline, Timer::SessionIdle(id)));
    }

    fn send(&mut self, id: SessionId, msg: &SyncMessage) -> bool {
        let mut bytes = Vec::new();
        if let Err(e) = encode_frame(msg, self.config.max_frame_len, &mut bytes) {
            self.fail_session(id, format!("cannot send: {e}"));
            return false;
        }
        self.push(Output::SyncSend { session: id, bytes });
        true
    }

    fn send_init(&mut self, id: SessionId, message: ranger::Message) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let Some(namespace) = s.namespace else {
            return;
        };
        s.phase = Phase::Running;
        s.messages += 1;
        self.send(id, &SyncMessage::Init { namespace, message });
        self.maybe_finish(id);
    }

    fn on_data(&mut self, id: SessionId, bytes: &[u8]) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if s.is_finishing() || s.phase == Phase::Connecting {
            return;
        }
        if let Err(e) = s.decoder.feed(bytes) {
            return self.fail_session(id, format!("bad frame: {e}"));
        }
        self.touch(id);
        loop {
            let Some(s) = self.sessions.get_mut(&id) else {
                return;
            };
            if s.is_finishing() {
                return;
            }
            match s.decoder.next_message() {
                Ok(None) => return,
                Ok(Some(msg)) => self.on_message(id, msg),
                Err(e) => return self.fail_session(id, format!("bad frame: {e}")),
            }
        }
    }

    fn on_message(&mut self, id: SessionId, msg: SyncMessage) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let (phase, peer, role) = (s.phase.clone(), s.peer, s.id.role);
        match (phase, msg) {
            (Phase::AwaitInit, SyncMessage::Init { namespace, message }) => {
                let over = self.sessions.len() > self.config.max_sessions;
                let outcome = if over {
                    AcceptOutcome::Reject(AbortReason::InternalServerError)
                } else {
                    self.states
                        .accept_request(&self.me, &namespace, peer, self.now)
                };
                let s = self.sessions.get_mut(&id).expect("checked above");
                s.namespace = Some(namespace);
                match outcome {
                    AcceptOutcome::Allow => {
                        s.holds_peer_state = true;
                        s.phase = Phase::Running;
                        self.enqueue(id, message);
                    }
                    AcceptOutcome::Reject(reason) => {
                        s.phase = Phase::Finishing(Err(format!("refused: {reason:?}")));
                        if self.send(id, &SyncMessage::Abort { reason }) {
                            self.push(Output::SyncFinish { session: id });
                        }
                    }
                }
            }
            (Phase::AwaitInit, _) => self.fail_session(id, "first message must be Init".into()),
            (Phase::Running, SyncMessage::Sync(message)) => self.enqueue(id, message),
            (Phase::Running | Phase::Initializing, SyncMessage::Init { .. }) => {
                self.fail_session(id, "unexpected Init".into())
            }
            (_, SyncMessage::Abort { reason }) if role == Role::Dial => {
                if reason == AbortReason::AlreadySyncing {
                    // The peer is dialing us at the same time and will be accepted here.
                    let s = self.sessions.remove(&id).expect("checked above");
                    self.push(Output::SyncClose {
                        session: id,
                        reason: "peer syncs with us already".into(),
                    });
                    self.release_scans();
                    if let Some(ns) = s.namespace {
                        self.states.cancel_connect(&ns, s.peer);
                    }
                } else {
                    self.fail_session(id, format!("remote abort: {reason:?}"));
                }
            }
            (_, msg) => self.fail_session(id, format!("unexpected message {msg:?}")),
        }
    }

    fn enqueue(&mut self, id: SessionId, message: ranger::Message) {
        let max_backlog = self.config.max_session_backlog;
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if s.backlog.len() >= max_backlog {
            return self.fail_session(id, "peer floods messages".into());
        }
        s.backlog.push_back(message);
        self.try_process(id);
    }

    fn try_process(&mut self, id: SessionId) {
        let max_messages = self.config.max_session_messages;
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if s.processing || s.phase != Phase::Running {
            return;
        }
        let Some(message) = s.backlog.pop_front() else {
            return self.maybe_finish(id);
        };
        s.messages += 1;
        if s.messages > max_messages {
            return self.fail_session(id, "too many messages".into());
        }
        s.processing = true;
        let (ns, peer, outcome) = (s.namespace.expect("running"), s.peer, s.outcome.clone());
        // Learn providers for content we still miss (iroh-docs issue #82).
        for (entry, status) in message.values() {
            if *status == ContentStatus::Complete
                && self.downloads.is_missing(&entry.content_hash())
            {
                self.downloads.offer(ns, entry.content_hash(), peer, true);
            }
        }
        self.store(
            StoreCommand::SyncProcessMessage {
                namespace: ns,
                message,
                from: peer,
                outcome,
            },
            Cont::Process(id),
        );
    }

    fn on_processed(
        &mut self,
        id: SessionId,
        reply: Option<ranger::Message>,
        outcome: crate::replica::SyncOutcome,
    ) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        s.processing = false;
        self.stats.entries_received_sync += (outcome.num_recv - s.outcome.num_recv) as u64;
        self.stats.entries_sent_sync += (outcome.num_sent - s.outcome.num_sent) as u64;
        s.outcome = outcome;
        match reply {
            Some(message) if !s.peer_finished => {
                s.messages += 1;
                if self.send(id, &SyncMessage::Sync(message)) {
                    self.try_process(id);
                }
            }
            _ => self.finish_ok(id),
        }
    }

    /// Ends our loop if the peer has finished and nothing is left to process.
    fn maybe_finish(&mut self, id: SessionId) {
        if let Some(s) = self.sessions.get(&id) {
            if s.phase == Phase::Running && !s.processing && s.backlog.is_empty() && s.peer_finished
            {
                self.finish_ok(id);
            }
        }
    }

    fn finish_ok(&mut self, id: SessionId) {
        if let Some(s) = self.sessions.get_mut(&id) {
            if !s.is_finishing() {
                s.phase = Phase::Finishing(Ok(()));
                self.push(Output::SyncFinish { session: id });
            }
        }
    }

    fn on_recv_finished(&mut self, id: SessionId) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        s.peer_finished = true;
        match s.phase {
            Phase::AwaitInit | Phase::Connecting | Phase::Initializing => {
                self.fail_session(id, "peer finished before the sync".into())
            }
            Phase::Running => self.maybe_finish(id),
            Phase::Finishing(_) => {}
        }
    }

    fn on_closed(&mut self, id: SessionId, error: Option<String>) {
        let Some(s) = self.sessions.remove(&id) else {
            return;
        };
        let result = match &s.phase {
            Phase::Finishing(r) => r.clone(),
            _ => Err(error.unwrap_or_else(|| "connection closed".into())),
        };
        self.conclude(s, result);
    }

    fn fail_session(&mut self, id: SessionId, reason: String) {
        let Some(s) = self.sessions.remove(&id) else {
            return;
        };
        self.push(Output::SyncClose {
            session: id,
            reason: reason.clone(),
        });
        self.conclude(s, Err(reason));
    }

    /// A session ended: held missing-content scans read their next page.
    fn release_scans(&mut self) {
        if self.shutting_down {
            return;
        }
        let states = &self.states;
        for (ns, cursor) in self.scans.release(|ns| states.is_syncing(ns)) {
            self.read_scan_page(ns, Some(cursor));
        }
    }

    /// Asks the store for the page of `ns`'s missing-content scan at `cursor`.
    fn read_scan_page(&mut self, namespace: NamespaceId, cursor: Option<QueryCursor>) {
        self.store(
            StoreCommand::MissingContent { namespace, cursor },
            Cont::MissingContent(namespace),
        );
    }

    fn conclude(&mut self, s: Session, result: Result<(), String>) {
        self.release_scans();
        let dial = s.id.role == Role::Dial;
        match (&result, dial) {
            (Ok(()), true) => self.stats.sync_connect_ok += 1,
            (Ok(()), false) => self.stats.sync_accept_ok += 1,
            (Err(_), true) => self.stats.sync_connect_failed += 1,
            (Err(_), false) => self.stats.sync_accept_failed += 1,
        }
        if !s.holds_peer_state {
            return;
        }
        let Some(ns) = s.namespace else {
            return;
        };
        let now = self.now;
        if result.is_ok() {
            self.store(
                StoreCommand::RegisterUsefulPeer {
                    namespace: ns,
                    peer: s.peer,
                },
                Cont::Ignore,
            );
            if s.outcome.num_recv > 0 {
                let heads = s
                    .outcome
                    .heads_received
                    .encode(Some(self.config.heads_size_limit));
                self.broadcast_neighbors(
                    ns,
                    Op::SyncReport(SyncReport {
                        namespace: ns,
                        heads,
                    }),
                );
            }
            // The peer may hold content we still miss even when it sent no entries: ask it
            // (iroh-docs never asks again, its issue #82).
            for hash in self.downloads.missing_for(&ns, MISSING_PROBES_PER_SYNC) {
                self.downloads.offer(ns, hash, s.peer, true);
            }
        }
        let Some((started, resync)) = self.states.finish(&ns, s.peer, s.origin) else {
            return;
        };
        let connected = s.connected.unwrap_or(now.mono);
        let event = SyncEvent {
            peer: s.peer,
            origin: s.origin,
            started_micros: started.wall_micros,
            finished_micros: now.wall_micros,
            connect: connected.saturating_since(s.started.mono),
            process: now.mono.saturating_since(connected),
            result: result.clone().map(|()| SyncDetails {
                entries_received: s.outcome.num_recv,
                entries_sent: s.outcome.num_sent,
            }),
        };
        self.emit(ns, LiveEvent::SyncFinished(event));
        let queued = self.downloads.has_queued(&ns);
        if let Some(state) = self.states.get_mut(&ns) {
            state.may_emit_ready = queued;
        }
        if !queued {
            self.emit(ns, LiveEvent::PendingContentReady);
        }
        if dial {
            self.schedule_retry(ns, s.peer, result.is_ok());
        }
        if resync {
            self.sync_with_peer(ns, s.peer, SyncReason::Resync);
        }
    }

    fn schedule_retry(&mut self, ns: NamespaceId, peer: PeerId, ok: bool) {
        let (attempts, base, max) = (
            self.config.retry_attempts,
            self.config.retry_base,
            self.config.retry_max,
        );
        let now = self.now.mono;
        let jitter = self.rng.next_u64();
        let Some(p) = self
            .states
            .get_mut(&ns)
            .and_then(|s| s.peers.get_mut(&peer))
        else {
            return;
        };
        if ok {
            p.failures = 0;
            return;
        }
        p.failures += 1;
        if p.failures > attempts {
            return;
        }
        let exp = base
            .saturating_mul(1u32 << (p.failures - 1).min(20))
            .min(max);
        let micros = u64::try_from(exp.as_micros()).unwrap_or(u64::MAX);
        let delay = micros / 2 + jitter % (micros.max(1));
        let at = now + std::time::Duration::from_micros(delay);
        p.retry_at = Some(at);
        self.timers.insert((at, Timer::Retry(ns, peer)));
        self.stats.retries_scheduled += 1;
    }

    // ---- content -----------------------------------------------------------------------

    fn dispatch_downloads(&mut self) {
        for (hash, providers) in self.downloads.dispatch() {
            self.push(Output::Download { hash, providers });
        }
    }

    fn on_download_finished(&mut self, hash: Hash, outcome: DownloadOutcome) {
        let ok = !matches!(outcome, DownloadOutcome::Failed(_));
        let (wanted, drained) = self.downloads.finish(&hash, ok);
        match outcome {
            DownloadOutcome::Downloaded => {
                self.stats.downloads_ok += 1;
                for ns in wanted {
                    self.emit(ns, LiveEvent::ContentReady { hash });
                    self.broadcast_neighbors(ns, Op::ContentReady(hash));
                }
            }
            DownloadOutcome::AlreadyPresent => {}
            DownloadOutcome::Failed(_) => {
                self.stats.downloads_failed += 1;
                let max = self.config.download_retry_attempts;
                if let Some(round) = self.downloads.next_round(&hash, max) {
                    let base = self.config.download_retry_base;
                    let delay = base
                        .saturating_mul(1 << (round - 1).min(16))
                        .min(self.config.retry_max);
                    let at = self.now.mono + delay;
                    self.timers.insert((at, Timer::DownloadRetry(hash)));
                }
            }
        }
        for ns in drained {
            let ready = self
                .states
                .get_mut(&ns)
                .map(|s| std::mem::take(&mut s.may_emit_ready))
                .unwrap_or(false);
            if ready {
                self.emit(ns, LiveEvent::PendingContentReady);
            }
        }
    }

    /// Ids of the documents in the sync set.
    pub fn syncing(&self) -> Vec<NamespaceId> {
        self.states.namespaces().copied().collect()
    }
}
