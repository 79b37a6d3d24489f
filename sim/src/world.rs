//! The simulated world: nodes, the global event queue and the runtime glue that turns each
//! node's outputs into later inputs.
//!
//! # The event queue
//!
//! Everything that happens is an [`Event`] in one `BTreeMap` keyed by `(virtual time,
//! sequence number)`. The sequence number is global and increases with every scheduled event,
//! so events at the same virtual time run in the order they were scheduled: the run is a pure
//! function of the seed. One event is handled at a time, and handling it may run several
//! state machines of *one* node back to back at the same virtual time (a `Live` output that
//! joins a gossip topic, the gossip event that feeds back into `Live`, …) through a per-node
//! work list ([`Work`]) — never recursion, never another node. Anything that crosses to
//! another node, to the store executor or to a timer goes back into the queue with a delay.
//!
//! # A node
//!
//! A node is its persistent part ([`Node`]: id, blob store, committed store while it is down,
//! clock skew, sync history) and its process ([`Proc`]: `Live`, `Replicas`, the store
//! executor's queue, the gossip states). A crash drops the process; a restart builds a new
//! one from the committed store and bumps the node's *epoch*: every event addressed to a node
//! carries the epoch it was meant for, and events for a dead incarnation are dropped.
//!
//! The store executor and its faults are in [`crate::executor`]; the byzantine node, which
//! is not a [`Node`] but reaches honest nodes through the same events, in
//! [`crate::byzantine`].

use std::{
    cell::RefCell,
    collections::{BTreeMap, BTreeSet, VecDeque},
    rc::Rc,
};

use iroh_gossip::proto::topic;
use rand::RngExt;
use rand_chacha::ChaCha12Rng;
use sheaf_core::{
    hash::{Hash, PeerId},
    keys::{Author, NamespaceId, NamespaceSecret},
    live::{Input, Live, LiveConfig, LiveEvent, Origin, Output, SessionError, SyncDetails},
    ranger::{ContentStatus, ContentStatusSource},
    replica::Replicas,
    store::MemBackend,
    time::{Mono, Now},
};

pub use crate::event::{Event, Job, Work};
use crate::{
    config::{FaultParams, PlantedBug, SimConfig, SEC},
    gossip::Topic,
    net::Conn,
    report::{Failure, FailureKind},
    store::SimStore,
    trace::Trace,
};

/// Wall-clock time of virtual time zero, µs since the UNIX epoch (November 2023).
pub const EPOCH_MICROS: u64 = 1_700_000_000_000_000;

/// Most events waiting in the global queue; more is a runaway.
pub const MAX_QUEUE: usize = 2_000_000;
/// Most commands waiting for one node's store executor.
pub const MAX_STORE_BACKLOG: usize = 100_000;
/// Most store requests one `Live` may have outstanding.
pub const MAX_PENDING_STORE: usize = 100_000;

/// A node's blob store: the set of hashes it holds. Survives crashes (content-addressed
/// blobs are written durably before they are announced).
#[derive(Clone, Default)]
pub struct Blobs(pub Rc<RefCell<BTreeSet<Hash>>>);

impl Blobs {
    /// Whether the blob is held.
    pub fn has(&self, hash: &Hash) -> bool {
        self.0.borrow().contains(hash)
    }

    /// Adds a blob.
    pub fn insert(&self, hash: Hash) {
        self.0.borrow_mut().insert(hash);
    }
}

impl ContentStatusSource for Blobs {
    fn content_status(&mut self, hash: &Hash) -> ContentStatus {
        if self.has(hash) {
            ContentStatus::Complete
        } else {
            ContentStatus::Missing
        }
    }
}

/// What dies with a crash.
pub struct Proc {
    /// The network brain.
    pub live: Live,
    /// The store executor.
    pub replicas: Replicas<SimStore, Blobs>,
    /// Commands waiting for the executor.
    pub executor: VecDeque<Job>,
    /// When the queued `StoreExec` event is due, if one is (an event for another instant is
    /// stale: the heal ends a stall in progress by queuing a new one).
    pub exec_due: Option<u64>,
    /// The commit deadline a `StoreCommit` is queued for.
    pub commit_scheduled: Option<u64>,
    /// Times `LiveTimer` events are queued for.
    pub live_timers: BTreeSet<u64>,
    /// Gossip states, one per topic.
    pub topics: BTreeMap<NamespaceId, Topic>,
    /// Next accept session number.
    pub next_accept: u64,
    /// Next API request id.
    pub next_api: u64,
    /// API calls since `Live` last had no store request outstanding (for the store backlog
    /// bound, see [`crate::check`]).
    pub api_in_busy: usize,
    /// Peers whose gossip this process refuses, until (virtual µs): `Output::GossipBan`.
    /// Process state, as the engine's gate is: a restart forgets it.
    pub gossip_bans: BTreeMap<PeerId, u64>,
}

/// A simulated node.
pub struct Node {
    /// Its peer id.
    pub id: PeerId,
    /// Blob store.
    pub blobs: Blobs,
    /// Clock offset, µs.
    pub skew: i64,
    /// Incarnation (bumped on restart).
    pub epoch: u32,
    /// The running process, `None` while crashed.
    pub proc: Option<Proc>,
    /// The committed store while crashed.
    pub committed: Option<MemBackend>,
    /// Authors (indices into [`Sim::authors`]) whose keys the node holds.
    pub authors: Vec<usize>,
    /// Per document: whether the node holds a write capability.
    pub writable: Vec<bool>,
    /// Last `SyncFinished` per (document, peer): time and result.
    pub last_sync: BTreeMap<(NamespaceId, PeerId), (u64, Result<SyncDetails, SessionError>)>,
    /// API commands that failed, by error.
    pub api_errors: BTreeMap<String, u64>,
    /// Per peer node: when a v2 round this node dialed was last refused, and the code (a
    /// refused round ends no sync, so `last_sync` does not show it).
    pub v2_refused: BTreeMap<usize, (u64, sheaf_core::v2::codec::AbortCode)>,
}

/// Counters over a run.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    /// Events handled.
    pub events: u64,
    /// Sync frame bytes, gossip bytes and blob bytes moved.
    pub bytes: u64,
    /// Dialed syncs that succeeded.
    pub syncs_ok: u64,
    /// Dialed syncs that failed.
    pub syncs_failed: u64,
    /// Largest global queue seen.
    pub largest_queue: usize,
    /// Largest store backlog (executor queue or outstanding `Live` requests) of any node.
    pub largest_store_backlog: usize,
    /// Gossip messages sent.
    pub gossip_msgs: u64,
    /// Workload operations skipped (node down, nothing applicable).
    pub ops_skipped: u64,
    /// Workload operations performed.
    pub ops_done: u64,
    /// Crashes that happened.
    pub crashes: u64,
    /// Largest `Live::store_backlog` of any node, with its bound at that moment.
    pub largest_live_backlog: (usize, usize),
    /// Store commands failed by `store-fail`.
    pub commands_failed: u64,
    /// Commits failed by `store-fail`.
    pub commits_failed: u64,
    /// Long store stalls of `store-fail`.
    pub long_stalls: u64,
    /// Honest nodes' defences, summed over every `Live` of the run (see
    /// [`Counters::add_live_stats`]).
    pub defences: Defences,
    /// Per completed dialed sync (from its `SyncFinished`): round trips → syncs. A histogram,
    /// bounded by the distinct values (at most `max_session_messages / 2`).
    pub sync_round_trips: BTreeMap<u64, u64>,
    /// Per completed dialed sync: virtual milliseconds from dial to end → syncs.
    pub sync_millis: BTreeMap<u64, u64>,
    /// Sync v2 connections opened (rounds dialed to a v2 node).
    pub v2_rounds: u64,
    /// Rounds dialed to a v1-only node (answered v1).
    pub v2_v1_answers: u64,
    /// Documents v2 rounds reconciled (counted on both ends).
    pub v2_docs: u64,
    /// v2 connections closed with an error code.
    pub v2_failed_closes: u64,
    /// Rounds refused with `Duplicate` (both nodes dialed each other at once).
    pub v2_crossed: u64,
}

/// What honest nodes' `Live`s refused or dropped, summed over the run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Defences {
    /// Gossip ops dropped over the gossip budget or from a muted peer.
    pub gossip_dropped: u64,
    /// Gossip `Put`s the store refused.
    pub puts_refused: u64,
    /// Connections closed at once over an accept bound.
    pub sessions_refused: u64,
    /// Accepted sessions that failed (bad frames, limits, timeouts, refusals, …).
    pub accepts_failed: u64,
    /// Store commands that failed.
    pub store_errors: u64,
    /// Gossip stalls reported to `Live` (`gossip-stall`).
    pub gossip_stalls: u64,
    /// Peers whose gossip a node cut off (`Output::GossipBan`).
    pub gossip_bans: u64,
    /// Gossip messages refused from a banned peer.
    pub gossip_banned_msgs: u64,
}

impl Counters {
    /// Adds the counters of a `Live` that ends (crash, or end of run).
    pub fn add_live_stats(&mut self, s: &sheaf_core::live::LiveStats) {
        self.syncs_ok += s.sync_connect_ok;
        self.syncs_failed += s.sync_connect_failed;
        let d = &mut self.defences;
        d.gossip_dropped += s.gossip_dropped;
        d.puts_refused += s.gossip_puts_refused;
        d.sessions_refused += s.sessions_refused;
        d.accepts_failed += s.sync_accept_failed;
        d.store_errors += s.store_errors;
        d.gossip_stalls += s.gossip_stalls;
    }
}

/// A document of the run.
pub struct Doc {
    /// Its secret.
    pub secret: NamespaceSecret,
    /// Its id.
    pub id: NamespaceId,
}

/// The simulation of one seed.
pub struct Sim {
    /// The configuration.
    pub cfg: SimConfig,
    /// Drawn world parameters.
    pub params: FaultParams,
    /// Current virtual time, µs.
    pub now: u64,
    pub(crate) seq: u64,
    pub(crate) queue: BTreeMap<(u64, u64), Event>,
    /// Nodes.
    pub nodes: Vec<Node>,
    /// Peer id → node.
    pub index: BTreeMap<PeerId, usize>,
    /// Documents.
    pub docs: Vec<Doc>,
    /// Authors.
    pub authors: Vec<Author>,
    /// Intended membership: (document, node).
    pub members: BTreeSet<(usize, usize)>,
    /// Content length of every blob written.
    pub blob_len: BTreeMap<Hash, u64>,
    /// `Live` configuration of every node.
    pub live_config: LiveConfig,
    /// Partitions in force.
    pub active_partitions: BTreeSet<usize>,
    /// Gossip stalls in progress (indices into the parameters' `gossip_stalls`).
    pub gossip_stalled: BTreeSet<usize>,
    /// Sync connections.
    pub conns: BTreeMap<u64, Conn>,
    /// (node, session) → connection.
    pub sessions: BTreeMap<(usize, sheaf_core::live::SessionId), u64>,
    /// Next connection id.
    pub next_conn: u64,
    /// Sync v2 connections.
    pub v2conns: BTreeMap<u64, crate::v2::V2Conn>,
    /// Next sync v2 connection id (unique in the run, so also in every store).
    pub next_v2: u64,
    /// Which nodes serve v2, and the round policy.
    pub v2: crate::v2::V2Params,
    /// Gossip links `(low, high, topic)` that have carried a message.
    pub links: BTreeSet<(usize, usize, NamespaceId)>,
    /// Pending "connection gone" notices `(node, peer, topic)`.
    pub pending_down: BTreeSet<(usize, usize, NamespaceId)>,
    /// Arrival time of the last in-order gossip message per direction.
    pub gossip_tail: BTreeMap<(usize, usize), u64>,
    /// Randomness of the network and the store latencies.
    pub net_rng: ChaCha12Rng,
    /// Randomness of the workload.
    pub work_rng: ChaCha12Rng,
    /// The trace.
    pub trace: Trace,
    /// Counters.
    pub counters: Counters,
    /// Whether the liveness phase has begun, and when.
    pub healed_at: Option<u64>,
    /// When liveness was reached.
    pub converged_at: Option<u64>,
    /// Whether the run stopped at [`SimConfig::max_events`] before converging.
    pub capped: bool,
    /// Since when the members' entries agree (liveness phase).
    pub entries_converged_at: Option<u64>,
    /// Problems tolerated by the configuration (lenient blobs).
    pub warnings: Vec<String>,
    /// Per document at convergence: members and entries each holds.
    pub converged_docs: Vec<(usize, usize)>,
    /// The first failure.
    pub failure: Option<Failure>,
    /// Nodes that ran this event (their invariants are checked after it).
    pub dirty: BTreeSet<usize>,
    /// Entries whose signatures were verified, shared by all stores.
    pub verified: crate::store::Verified,
    /// Randomness of the store failures (`store-fail`).
    pub fail_rng: ChaCha12Rng,
    /// The byzantine node, with the `byzantine` family.
    pub byz: Option<crate::byzantine::Byzantine>,
}

impl Sim {
    /// Queues `event` at virtual time `at` (never in the past).
    pub fn push(&mut self, at: u64, event: Event) {
        let at = at.max(self.now);
        self.seq += 1;
        self.queue.insert((at, self.seq), event);
    }

    /// The clock of `node`.
    pub fn node_now(&self, node: usize) -> Now {
        let wall = (EPOCH_MICROS + self.now) as i64 + self.nodes[node].skew;
        Now::new(Mono(self.now), wall as u64)
    }

    /// Whether the node runs.
    pub fn up(&self, node: usize) -> bool {
        self.nodes[node].proc.is_some()
    }

    /// Whether messages from `a` to `b` are blocked by a partition.
    pub fn blocked(&self, a: usize, b: usize) -> bool {
        self.active_partitions
            .iter()
            .any(|p| self.params.partitions[*p].blocked.contains(&(a, b)))
    }

    /// Whether `b` runs and `a` can reach it and hear back.
    pub fn reachable(&self, a: usize, b: usize) -> bool {
        self.up(b) && !self.blocked(a, b) && !self.blocked(b, a)
    }

    /// One sampled one-way latency, µs.
    pub fn latency(&mut self) -> u64 {
        let jitter = self.params.jitter;
        self.params.latency + self.net_rng.random_range(0..=jitter)
    }

    /// Records a failure (the first one wins).
    pub fn fail(&mut self, kind: FailureKind, reason: String) {
        if self.failure.is_none() {
            self.trace
                .note(self.now, &format!("FAILURE {kind:?}: {reason}"));
            let pending = self
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(i, n)| {
                    let proc = n.proc.as_ref()?;
                    Some(format!("node {i}: {}", proc.live.pending()))
                })
                .collect();
            self.failure = Some(Failure {
                kind,
                at: self.now,
                reason,
                pending,
            });
        }
    }

    /// Runs until liveness is reached or a check fails.
    pub fn run(&mut self) {
        while self.failure.is_none() && self.converged_at.is_none() {
            if self
                .cfg
                .max_events
                .is_some_and(|max| self.counters.events >= max)
            {
                self.capped = true;
                break;
            }
            let Some(((at, _), event)) = self.queue.pop_first() else {
                self.fail(FailureKind::Liveness, "the event queue ran dry".into());
                break;
            };
            self.now = at;
            self.counters.events += 1;
            self.handle(event);
            self.check_after_event();
            self.counters.largest_queue = self.counters.largest_queue.max(self.queue.len());
            if self.queue.len() > MAX_QUEUE {
                let n = self.queue.len();
                self.fail(
                    FailureKind::Safety,
                    format!("queue bound: {n} events queued (bound {MAX_QUEUE})"),
                );
            }
        }
    }

    fn epoch_ok(&self, node: usize, epoch: u32) -> bool {
        self.nodes[node].epoch == epoch && self.up(node)
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Op => self.op(),
            Event::Api {
                node,
                epoch,
                command,
            } => {
                if self.epoch_ok(node, epoch) {
                    self.api(node, command);
                }
            }
            Event::Input { node, epoch, input } => {
                if self.epoch_ok(node, epoch) {
                    self.drive(node, Work::Live(*input));
                }
            }
            Event::LiveTimer { node, epoch, at } => {
                if self.epoch_ok(node, epoch) {
                    self.nodes[node]
                        .proc
                        .as_mut()
                        .expect("up")
                        .live_timers
                        .remove(&at);
                    self.drive(node, Work::LiveTimeout);
                }
            }
            Event::StoreExec { node, epoch } => {
                let due = self.nodes[node].proc.as_ref().and_then(|p| p.exec_due);
                if self.epoch_ok(node, epoch) && due == Some(self.now) {
                    self.exec(node);
                }
            }
            Event::StoreCommit { node, epoch } => {
                if self.epoch_ok(node, epoch) {
                    self.commit(node);
                }
            }
            Event::GossipMsg {
                to,
                epoch,
                ns,
                from,
                bytes,
            } => {
                if self.epoch_ok(to, epoch) {
                    self.gossip_arrive(to, ns, from, &bytes);
                }
            }
            Event::GossipTimer {
                node,
                epoch,
                ns,
                generation,
                timer,
            } => {
                if self.epoch_ok(node, epoch) {
                    self.gossip_timer(node, ns, generation, timer);
                }
            }
            Event::GossipDown {
                node,
                epoch,
                ns,
                peer,
            } => {
                self.pending_down.remove(&(node, peer, ns));
                if self.epoch_ok(node, epoch) {
                    self.gossip_down(node, ns, peer);
                }
            }
            Event::Stream { conn, to, item } => self.stream_arrive(conn, to, item),
            Event::V2 { conn, to, item } => self.v2_arrive(conn, to, item),
            Event::V2Idle { conn, to } => self.v2_idle_check(conn, to),
            Event::Download {
                node,
                epoch,
                hash,
                providers,
            } => {
                if self.epoch_ok(node, epoch) {
                    self.download_done(node, hash, providers);
                }
            }
            Event::PartitionStart(i) => self.partition_start(i),
            Event::PartitionEnd(i) => {
                self.active_partitions.remove(&i);
                self.trace.note(self.now, &format!("partition {i} healed"));
            }
            Event::GossipStallStart(i) => self.gossip_stall_start(i),
            Event::GossipStallEnd(i) => self.gossip_stall_end(i),
            Event::GossipProbe(i) => self.gossip_probe(i),
            Event::Crash(i) => self.crash(self.params.crashes[i].node),
            Event::Restart(node) => self.restart(node),
            Event::Byzantine(e) => self.byz_event(e),
            Event::Heal => self.heal(),
            Event::Check => self.liveness_tick(),
        }
    }

    /// Runs `first` and everything it causes on `node` at the current instant.
    pub fn drive(&mut self, node: usize, first: Work) {
        let mut work = VecDeque::from([first]);
        self.drive_all(node, &mut work);
    }

    /// Runs the work list of `node` until it is empty.
    pub fn drive_all(&mut self, node: usize, work: &mut VecDeque<Work>) {
        self.dirty.insert(node);
        while let Some(w) = work.pop_front() {
            let now = self.node_now(node);
            let t = self.now;
            let Some(proc) = self.nodes[node].proc.as_mut() else {
                return;
            };
            match w {
                Work::Live(input) => {
                    self.trace.input(t, node, &input);
                    proc.live.handle(now, input);
                    self.route_live(node, work);
                }
                Work::LiveTimeout => {
                    self.trace.record(t, node, "timeout", &now.mono);
                    proc.live.handle_timeout(now);
                    self.route_live(node, work);
                }
                Work::Gossip(ns, event) => self.gossip_handle(node, ns, event, work),
                Work::V2Store { conn, end, result } => self.v2_store_reply(conn, end, result, work),
            }
        }
        self.schedule_live_timer(node);
    }

    fn schedule_live_timer(&mut self, node: usize) {
        let epoch = self.nodes[node].epoch;
        let Some(proc) = self.nodes[node].proc.as_mut() else {
            return;
        };
        if let Some(t) = proc.live.poll_timeout() {
            let at = t.0.max(self.now);
            if proc.live_timers.insert(at) {
                self.push(at, Event::LiveTimer { node, epoch, at });
            }
        }
    }

    /// Drains `Live`'s outputs and carries each out.
    fn route_live(&mut self, node: usize, work: &mut VecDeque<Work>) {
        loop {
            let Some(proc) = self.nodes[node].proc.as_mut() else {
                return;
            };
            let Some(out) = proc.live.poll_output() else {
                return;
            };
            self.trace.output(self.now, node, &out);
            match out {
                Output::Store { request, command } => {
                    self.enqueue_job(node, Job::Live { request, command })
                }
                Output::AddAddr(_) | Output::CloseSubscribers { .. } => {}
                Output::GossipBan { peer, mute } => {
                    let until = self.now + mute.as_micros() as u64;
                    self.counters.defences.gossip_bans += 1;
                    proc.gossip_bans.insert(peer, until);
                }
                Output::GossipJoin { namespace, peers } => {
                    let peers = peers.into_iter().map(crate::gossip::Pi::from).collect();
                    work.push_back(Work::Gossip(
                        namespace,
                        topic::InEvent::Command(topic::Command::Join(peers)),
                    ));
                }
                Output::GossipLeave { namespace } => work.push_back(Work::Gossip(
                    namespace,
                    topic::InEvent::Command(topic::Command::Quit),
                )),
                Output::GossipBroadcast {
                    namespace,
                    scope,
                    payload,
                } => {
                    // The byzantine node listens to every swarm.
                    if let Some(b) = self.byz.as_mut() {
                        b.observe(&payload);
                    }
                    let scope = match scope {
                        sheaf_core::live::BroadcastScope::Swarm => iroh_gossip::proto::Scope::Swarm,
                        sheaf_core::live::BroadcastScope::Neighbors => {
                            iroh_gossip::proto::Scope::Neighbors
                        }
                    };
                    work.push_back(Work::Gossip(
                        namespace,
                        topic::InEvent::Command(topic::Command::Broadcast(payload.into(), scope)),
                    ));
                }
                Output::SyncConnect { session, peer } => self.sync_connect(node, session, peer),
                Output::SyncSend { session, bytes } => self.sync_send(node, session, bytes),
                Output::SyncFinish { session } => self.sync_finish(node, session),
                Output::SyncClose { session, reason } => {
                    if !self.v2_close(node, session) {
                        self.sync_close(node, session, reason)
                    }
                }
                Output::SyncAll {
                    session,
                    peer,
                    namespaces,
                } => self.sync_all(node, session, peer, namespaces),
                Output::RoundAdmit { session, refusal } => self.v2_admit(node, session, refusal),
                Output::Download { hash, providers } => {
                    let rtt = self.latency() + self.latency();
                    let len = self.blob_len.get(&hash).copied().unwrap_or(0);
                    let epoch = self.nodes[node].epoch;
                    // 100 MB/s per download.
                    let at = self.now + rtt + len / 100;
                    self.push(
                        at,
                        Event::Download {
                            node,
                            epoch,
                            hash,
                            providers,
                        },
                    );
                }
                Output::Event { namespace, event } => {
                    if let LiveEvent::SyncFinished(s) = event {
                        let now = self.now;
                        if let (Origin::Connect(_), Ok(d)) = (s.origin, &s.result) {
                            let c = &mut self.counters;
                            *c.sync_round_trips
                                .entry(d.round_trips() as u64)
                                .or_default() += 1;
                            let ms = (s.connect + s.process).as_millis() as u64;
                            *c.sync_millis.entry(ms).or_default() += 1;
                        }
                        self.nodes[node]
                            .last_sync
                            .insert((namespace, s.peer), (now, s.result));
                    }
                }
                Output::Reply { result, .. } => {
                    if let Err(e) = result {
                        *self.nodes[node]
                            .api_errors
                            .entry(e.to_string())
                            .or_default() += 1;
                    }
                }
            }
        }
    }

    fn download_done(&mut self, node: usize, hash: Hash, providers: Vec<PeerId>) {
        use sheaf_core::live::DownloadOutcome;
        let outcome = if self.nodes[node].blobs.has(&hash) {
            DownloadOutcome::AlreadyPresent
        } else {
            let from = providers
                .iter()
                .filter_map(|p| self.index.get(p).copied())
                .find(|j| self.reachable(node, *j) && self.nodes[*j].blobs.has(&hash));
            match from {
                Some(_) => {
                    self.nodes[node].blobs.insert(hash);
                    self.counters.bytes += self.blob_len.get(&hash).copied().unwrap_or(0);
                    DownloadOutcome::Downloaded
                }
                None => DownloadOutcome::Failed("no provider reachable".into()),
            }
        };
        self.drive(node, Work::Live(Input::DownloadFinished { hash, outcome }));
    }

    /// After a node runs: bounds and the incremental safety invariants.
    fn check_after_event(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for node in dirty {
            if let Some(PlantedBug::LeakLiveSession { node: b }) = self.cfg.planted_bug {
                if let Some(proc) = self.nodes[node].proc.as_mut().filter(|_| b == node) {
                    proc.live
                        .plant_bug(sheaf_core::live::PlantedBug::LeakSession);
                }
            }
            if let Err(reason) = self.check_node(node) {
                self.fail(FailureKind::Safety, format!("node {node}: {reason}"));
                return;
            }
        }
    }

    /// Seconds of virtual time, for messages.
    pub fn secs(&self, us: u64) -> String {
        format!("{:.3}s", us as f64 / SEC as f64)
    }

    /// Whether the planted bug drops this node's sync frames.
    pub fn drops_frame(&self, node: usize) -> bool {
        matches!(self.cfg.planted_bug, Some(PlantedBug::DropSyncFrames { node: b }) if b == node)
    }
}
