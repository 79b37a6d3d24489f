//! The in-test router: `Live` + `Replicas` pairs wired together by a FIFO that moves every
//! output to the input it causes.
//!
//! Gossip is a full mesh of the nodes that joined a topic; sync streams are paired sessions;
//! each node has a set of blob hashes as its blob store. Store commands are executed in the
//! order they are emitted, as the contract requires. Everything is deterministic, so event
//! sequences are asserted exactly.

use std::{
    cell::RefCell,
    collections::{BTreeMap, BTreeSet, VecDeque},
    rc::Rc,
    time::Duration,
};

use crate::live::*;
use crate::{
    entry::SignedEntry,
    hash::Hash,
    keys::{Author, Capability, NamespaceSecret},
    ranger::{ContentStatus, ContentStatusSource},
    replica::{OpenOpts, ReplicaConfig, Replicas},
    store::{MemBackend, Query},
    testutil::{author, ns, T0},
    wire::NodeAddr,
};

#[derive(Clone, Default)]
pub(super) struct Blobs(pub(super) Rc<RefCell<BTreeSet<Hash>>>);

impl ContentStatusSource for Blobs {
    fn content_status(&mut self, hash: &Hash) -> ContentStatus {
        if self.0.borrow().contains(hash) {
            ContentStatus::Complete
        } else {
            ContentStatus::Missing
        }
    }
}

pub(super) struct Node {
    pub(super) id: PeerId,
    pub(super) live: Live,
    pub(super) replicas: Replicas<MemBackend, Blobs>,
    pub(super) blobs: Blobs,
    pub(super) events: Vec<(NamespaceId, LiveEvent)>,
    pub(super) replies: BTreeMap<ApiRequestId, Result<(), LiveError>>,
    pub(super) topics: BTreeSet<NamespaceId>,
    /// Documents subscribed through [`Net::subscribe`]: a runtime forwards events only there.
    pub(super) subscribed: BTreeSet<NamespaceId>,
    /// `SyncFinished` outputs, for subscribed documents or not.
    pub(super) syncs_output: usize,
    pub(super) online: bool,
    /// Pages of the missing-content scan read from the store.
    pub(super) scan_pages: usize,
    /// Of those, pages read while the node had a sync connection open.
    pub(super) scan_pages_in_sync: usize,
    /// The next this many scan pages fail with a backend error (a failing store).
    pub(super) failing_scan_pages: usize,
    /// Serves sync v2 (a round dialed to a node that does not answers v1).
    pub(super) serves_v2: bool,
    /// Sync v2 rounds this node dialed and ran: (peer, documents offered, documents that
    /// differed).
    pub(super) rounds: Vec<(PeerId, usize, u64)>,
}

pub(super) struct Conn {
    pub(super) peer: (usize, SessionId),
    pub(super) finished: bool,
}

pub(super) struct Net {
    pub(super) nodes: Vec<Node>,
    pub(super) now: Now,
    pub(super) queue: VecDeque<(usize, Input)>,
    pub(super) conns: BTreeMap<(usize, SessionId), Conn>,
    pub(super) next_accept: u64,
    /// v2 rounds waiting for the acceptor's admission: (acceptor, its session) → (dialer,
    /// its session, the documents offered).
    pub(super) admitting: BTreeMap<(usize, SessionId), (usize, SessionId, Vec<NamespaceId>)>,
    pub(super) next_api: u64,
    pub(super) delivered: usize,
    /// Gossip topics report no neighbours and carry no broadcasts (only direct dials happen).
    pub(super) no_neighbors: bool,
    /// The next this many downloads fail whatever the providers hold (transient failures).
    pub(super) failing_downloads: u32,
    /// Gossip bans asked for: (node, peer, mute).
    pub(super) bans: Vec<(usize, PeerId, Duration)>,
    /// Gossip joins asked for: (node, document, bootstrap peers).
    pub(super) joins: Vec<(usize, NamespaceId, Vec<PeerId>)>,
}

pub(super) fn peer_id(i: usize) -> PeerId {
    // Ids in ascending order of index, so tie-breaks are predictable: node 1 > node 0.
    let mut b = [0u8; 32];
    b[0] = i as u8 + 1;
    PeerId::from_bytes(b)
}

impl Net {
    pub(super) fn new(n: usize) -> Self {
        Self::with_config(n, LiveConfig::default())
    }

    pub(super) fn with_config(n: usize, config: LiveConfig) -> Self {
        let nodes = (0..n)
            .map(|i| {
                let blobs = Blobs::default();
                Node {
                    id: peer_id(i),
                    live: Live::new(config.clone(), peer_id(i), [i as u8; 32]),
                    replicas: Replicas::with_content(
                        MemBackend::new(),
                        blobs.clone(),
                        ReplicaConfig::default(),
                    ),
                    blobs,
                    events: Vec::new(),
                    replies: BTreeMap::new(),
                    topics: BTreeSet::new(),
                    subscribed: BTreeSet::new(),
                    syncs_output: 0,
                    online: true,
                    scan_pages: 0,
                    scan_pages_in_sync: 0,
                    failing_scan_pages: 0,
                    serves_v2: config.sync_v2,
                    rounds: Vec::new(),
                }
            })
            .collect();
        Self {
            nodes,
            now: Now::new(Mono(1_000_000), T0),
            queue: VecDeque::new(),
            conns: BTreeMap::new(),
            next_accept: 0,
            admitting: BTreeMap::new(),
            next_api: 0,
            delivered: 0,
            no_neighbors: false,
            failing_downloads: 0,
            bans: Vec::new(),
            joins: Vec::new(),
        }
    }

    pub(super) fn index_of(&self, id: PeerId) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    pub(super) fn api(&mut self, node: usize, command: ApiCommand) -> ApiRequestId {
        let request = ApiRequestId(self.next_api);
        self.next_api += 1;
        self.queue
            .push_back((node, Input::Api { request, command }));
        request
    }

    /// Creates a document with a write capability on `node`, opened.
    pub(super) fn create(&mut self, node: usize, secret: &NamespaceSecret, authors: &[&Author]) {
        let now = self.now;
        let r = &mut self.nodes[node].replicas;
        r.import_namespace(now, Capability::Write(secret.clone()))
            .unwrap();
        for a in authors {
            r.import_author(now, (*a).clone()).unwrap();
        }
        r.open(secret.id(), OpenOpts::default()).unwrap();
    }

    pub(super) fn import(&mut self, node: usize, capability: Capability, authors: &[&Author]) {
        let now = self.now;
        let id = capability.id();
        let r = &mut self.nodes[node].replicas;
        r.import_namespace(now, capability).unwrap();
        for a in authors {
            r.import_author(now, (*a).clone()).unwrap();
        }
        r.open(id, OpenOpts::default()).unwrap();
    }

    /// A local write with content: the blob goes into the node's blob store first.
    pub(super) fn set(
        &mut self,
        node: usize,
        ns: NamespaceId,
        a: &Author,
        key: &str,
        value: &str,
    ) -> SignedEntry {
        self.now.mono = self.now.mono + Duration::from_millis(1);
        self.now.wall_micros += 1_000;
        let hash = Hash::new(value);
        self.nodes[node].blobs.0.borrow_mut().insert(hash);
        let now = self.now;
        let e = self.nodes[node]
            .replicas
            .insert_local(now, ns, a.id(), key.as_bytes(), hash, value.len() as u64)
            .unwrap();
        self.drain_replica_events(node);
        e
    }

    /// A v2 round `node` dialed: the acceptor's `Live` admits it first, or the dial ends
    /// at once.
    fn dial_v2_round(
        &mut self,
        node: usize,
        session: SessionId,
        peer: PeerId,
        only: Vec<NamespaceId>,
    ) {
        let outcome = match self.index_of(peer).filter(|j| self.nodes[*j].online) {
            None => RoundOutcome::Failed(SessionError::Transport("unreachable".into())),
            Some(j) if !self.nodes[j].serves_v2 => RoundOutcome::V1Only,
            Some(j) => {
                let accept = SessionId {
                    role: Role::Accept,
                    n: self.next_accept,
                };
                self.next_accept += 1;
                self.admitting.insert((j, accept), (node, session, only));
                let from = self.nodes[node].id;
                self.queue.push_back((
                    j,
                    Input::RoundAccepted {
                        session: accept,
                        peer: from,
                    },
                ));
                return;
            }
        };
        self.queue
            .push_back((node, Input::SyncAllEnded { session, outcome }));
    }

    /// The acceptor `j` answered a round's admission: run it at once, or refuse it.
    fn admitted_v2_round(
        &mut self,
        j: usize,
        accept: SessionId,
        refusal: Option<crate::v2::codec::AbortCode>,
    ) {
        let Some((node, session, only)) = self.admitting.remove(&(j, accept)) else {
            return;
        };
        let outcome = match refusal {
            None => {
                let peer = self.nodes[j].id;
                self.run_v2_round(node, peer, &only, accept)
            }
            Some(crate::v2::codec::AbortCode::Duplicate) => RoundOutcome::Refused,
            Some(code) => RoundOutcome::Failed(SessionError::Transport(format!("{code:?}"))),
        };
        self.queue
            .push_back((node, Input::SyncAllEnded { session, outcome }));
    }

    /// Runs a v2 round `node` dialed and `peer` admitted as `accept`, at once, with the
    /// harness of `crate::v2::round`.
    fn run_v2_round(
        &mut self,
        node: usize,
        peer: PeerId,
        only: &[NamespaceId],
        accept: SessionId,
    ) -> RoundOutcome {
        let j = self.index_of(peer).expect("admitted by a known node");
        let (lo, hi) = self.nodes.split_at_mut(node.max(j));
        let (d, a) = if node < j {
            (&mut lo[node], &mut hi[0])
        } else {
            (&mut hi[0], &mut lo[j])
        };
        let out = crate::v2::round::harness::run_round(
            &mut d.replicas,
            &mut a.replicas,
            (d.id, a.id),
            Default::default(),
            self.now,
            Some(only),
            None,
        );
        self.drain_replica_events(node);
        self.drain_replica_events(j);
        match (out.dialer, out.acceptor) {
            (Ok(report), Ok(served)) => {
                self.nodes[node]
                    .rounds
                    .push((peer, only.len(), report.differing));
                self.queue.push_back((
                    j,
                    Input::RoundServed {
                        session: accept,
                        report: Some(served),
                        took: Duration::ZERO,
                    },
                ));
                RoundOutcome::Synced(report)
            }
            (Err(e), _) | (_, Err(e)) => {
                self.queue.push_back((
                    j,
                    Input::RoundServed {
                        session: accept,
                        report: None,
                        took: Duration::ZERO,
                    },
                ));
                RoundOutcome::Failed(SessionError::Transport(e))
            }
        }
    }

    pub(super) fn drain_replica_events(&mut self, node: usize) {
        while let Some(e) = self.nodes[node].replicas.poll_event() {
            self.queue.push_back((node, Input::Replica(e)));
        }
    }

    pub(super) fn subscribe(&mut self, node: usize, namespace: NamespaceId) {
        self.nodes[node].subscribed.insert(namespace);
        self.api(node, ApiCommand::Subscribe { namespace });
    }

    pub(super) fn start_sync(
        &mut self,
        node: usize,
        namespace: NamespaceId,
        peers: &[usize],
    ) -> ApiRequestId {
        let peers = peers
            .iter()
            .map(|p| NodeAddr::new(self.nodes[*p].id))
            .collect();
        self.api(node, ApiCommand::StartSync { namespace, peers })
    }

    /// Delivers everything queued, routing outputs, until quiet (with a step bound).
    pub(super) fn run(&mut self) {
        for _ in 0..200_000 {
            let Some((node, input)) = self.queue.pop_front() else {
                return;
            };
            self.now.mono = self.now.mono + Duration::from_micros(10);
            self.now.wall_micros += 10;
            if !self.nodes[node].online {
                continue;
            }
            self.delivered += 1;
            let now = self.now;
            self.nodes[node].live.handle(now, input);
            self.check(node);
            self.route(node);
        }
        panic!("network did not quiesce");
    }

    /// Advances time to the next timer of any node and runs it.
    pub(super) fn run_timers_until(&mut self, limit: Mono) {
        loop {
            self.run();
            let next = self
                .nodes
                .iter()
                .filter(|n| n.online)
                .filter_map(|n| n.live.poll_timeout())
                .min();
            match next {
                Some(t) if t <= limit => {
                    self.now.mono = self.now.mono.max(t);
                    for i in 0..self.nodes.len() {
                        if self.nodes[i].online {
                            let now = self.now;
                            self.nodes[i].live.handle_timeout(now);
                            self.check(i);
                            self.route(i);
                        }
                    }
                }
                _ => return,
            }
        }
    }

    /// Every invariant of `Live` holds on `node`.
    pub(super) fn check(&self, node: usize) {
        if let Err(e) = self.nodes[node].live.check_invariants() {
            panic!(
                "node {node}: {e}; pending: {}",
                self.nodes[node].live.pending()
            );
        }
    }

    pub(super) fn route(&mut self, node: usize) {
        while let Some(out) = self.nodes[node].live.poll_output() {
            match out {
                Output::Store { request, command } => {
                    if matches!(command, StoreCommand::MissingContent { .. }) {
                        self.nodes[node].scan_pages += 1;
                        if self.conns.keys().any(|(n, _)| *n == node) {
                            self.nodes[node].scan_pages_in_sync += 1;
                        }
                    }
                    let now = self.now;
                    let n = &mut self.nodes[node];
                    let fail = matches!(command, StoreCommand::MissingContent { .. })
                        && n.failing_scan_pages > 0;
                    let result = if fail {
                        n.failing_scan_pages -= 1;
                        Err(crate::replica::ReplicaError::Store(
                            crate::store::StoreError::Backend("injected".into()),
                        ))
                    } else {
                        n.replicas.apply(now, command)
                    };
                    self.drain_replica_events(node);
                    self.queue
                        .push_back((node, Input::StoreReply { request, result }));
                }
                Output::AddAddr(_) => {}
                Output::SyncAll {
                    session,
                    peer,
                    namespaces,
                } => self.dial_v2_round(node, session, peer, namespaces),
                Output::RoundAdmit { session, refusal } => {
                    self.admitted_v2_round(node, session, refusal)
                }
                Output::GossipBan { peer, mute } => self.bans.push((node, peer, mute)),
                Output::GossipJoin { namespace, peers } => {
                    self.joins.push((node, namespace, peers));
                    if self.nodes[node].topics.insert(namespace) && !self.no_neighbors {
                        let me = self.nodes[node].id;
                        let others: Vec<usize> = (0..self.nodes.len())
                            .filter(|j| {
                                *j != node
                                    && self.nodes[*j].topics.contains(&namespace)
                                    && self.nodes[*j].online
                            })
                            .collect();
                        for j in others {
                            let other = self.nodes[j].id;
                            self.queue.push_back((
                                node,
                                Input::Gossip {
                                    namespace,
                                    event: GossipEvent::NeighborUp(other),
                                },
                            ));
                            self.queue.push_back((
                                j,
                                Input::Gossip {
                                    namespace,
                                    event: GossipEvent::NeighborUp(me),
                                },
                            ));
                        }
                    }
                }
                Output::GossipLeave { namespace } => {
                    self.nodes[node].topics.remove(&namespace);
                    let me = self.nodes[node].id;
                    for j in 0..self.nodes.len() {
                        if j != node && self.nodes[j].topics.contains(&namespace) {
                            self.queue.push_back((
                                j,
                                Input::Gossip {
                                    namespace,
                                    event: GossipEvent::NeighborDown(me),
                                },
                            ));
                        }
                    }
                }
                Output::GossipBroadcast { .. } if self.no_neighbors => {}
                Output::GossipBroadcast {
                    namespace, payload, ..
                } => {
                    let me = self.nodes[node].id;
                    for j in 0..self.nodes.len() {
                        if j != node && self.nodes[j].topics.contains(&namespace) {
                            let event = GossipEvent::Received {
                                content: payload.clone(),
                                delivered_from: me,
                                direct: true,
                            };
                            self.queue
                                .push_back((j, Input::Gossip { namespace, event }));
                        }
                    }
                }
                Output::SyncConnect { session, peer } => {
                    match self.index_of(peer).filter(|j| self.nodes[*j].online) {
                        Some(j) => {
                            let accept = SessionId {
                                role: Role::Accept,
                                n: self.next_accept,
                            };
                            self.next_accept += 1;
                            self.conns.insert(
                                (node, session),
                                Conn {
                                    peer: (j, accept),
                                    finished: false,
                                },
                            );
                            self.conns.insert(
                                (j, accept),
                                Conn {
                                    peer: (node, session),
                                    finished: false,
                                },
                            );
                            self.queue
                                .push_back((node, Input::SyncConnected { session }));
                            let me = self.nodes[node].id;
                            self.queue.push_back((
                                j,
                                Input::SyncAccepted {
                                    session: accept,
                                    peer: me,
                                },
                            ));
                        }
                        None => self.queue.push_back((
                            node,
                            Input::SyncClosed {
                                session,
                                error: Some(SessionError::Transport("unreachable".into())),
                            },
                        )),
                    }
                }
                Output::SyncSend { session, bytes } => {
                    if let Some(conn) = self.conns.get(&(node, session)) {
                        let (j, s) = conn.peer;
                        self.queue
                            .push_back((j, Input::SyncData { session: s, bytes }));
                    }
                }
                Output::SyncFinish { session } => {
                    let Some(conn) = self.conns.get_mut(&(node, session)) else {
                        continue;
                    };
                    conn.finished = true;
                    let (j, s) = conn.peer;
                    self.queue
                        .push_back((j, Input::SyncRecvFinished { session: s }));
                    if self.conns.get(&(j, s)).is_some_and(|c| c.finished) {
                        self.conns.remove(&(node, session));
                        self.conns.remove(&(j, s));
                        self.queue.push_back((
                            node,
                            Input::SyncClosed {
                                session,
                                error: None,
                            },
                        ));
                        self.queue.push_back((
                            j,
                            Input::SyncClosed {
                                session: s,
                                error: None,
                            },
                        ));
                    }
                }
                Output::SyncClose { session, reason } => {
                    if let Some(conn) = self.conns.remove(&(node, session)) {
                        let (j, s) = conn.peer;
                        if self.conns.remove(&(j, s)).is_some() {
                            self.queue.push_back((
                                j,
                                Input::SyncClosed {
                                    session: s,
                                    error: Some(SessionError::Transport(format!(
                                        "closed by peer: {reason}"
                                    ))),
                                },
                            ));
                        }
                    }
                }
                Output::Download { hash, providers } => {
                    let outcome = if self.nodes[node].blobs.0.borrow().contains(&hash) {
                        DownloadOutcome::AlreadyPresent
                    } else if self.failing_downloads > 0 {
                        self.failing_downloads -= 1;
                        DownloadOutcome::Failed("connection lost".into())
                    } else if providers.iter().filter_map(|p| self.index_of(*p)).any(|j| {
                        self.nodes[j].online && self.nodes[j].blobs.0.borrow().contains(&hash)
                    }) {
                        self.nodes[node].blobs.0.borrow_mut().insert(hash);
                        DownloadOutcome::Downloaded
                    } else {
                        DownloadOutcome::Failed("no provider has it".into())
                    };
                    self.queue
                        .push_back((node, Input::DownloadFinished { hash, outcome }));
                }
                // `SyncFinished` comes for every document; a runtime forwards it to
                // subscribers only.
                Output::Event { namespace, event } => {
                    if matches!(event, LiveEvent::SyncFinished(_)) {
                        self.nodes[node].syncs_output += 1;
                    }
                    if self.nodes[node].subscribed.contains(&namespace) {
                        self.nodes[node].events.push((namespace, event))
                    }
                }
                Output::CloseSubscribers { .. } => {}
                Output::Reply { request, result } => {
                    self.nodes[node].replies.insert(request, result);
                }
            }
        }
    }

    pub(super) fn entries(&mut self, node: usize, ns: NamespaceId) -> Vec<SignedEntry> {
        crate::store::query::query_all(
            self.nodes[node].replicas.indexed_mut(),
            ns,
            &Query::all().include_empty(),
        )
        .unwrap()
    }

    pub(super) fn take_events(&mut self, node: usize) -> Vec<LiveEvent> {
        std::mem::take(&mut self.nodes[node].events)
            .into_iter()
            .map(|(_, e)| e)
            .collect()
    }
}

/// A compact, comparable form of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ev {
    Local(String),
    Remote(usize, String),
    Ready(Hash),
    Pending,
    Up(usize),
    Down(usize),
    Synced(usize, Origin, Result<(usize, usize), SessionError>),
    Lagged,
}

pub(super) fn compact(events: Vec<LiveEvent>) -> Vec<Ev> {
    let idx = |p: PeerId| p.as_bytes()[0] as usize - 1;
    events
        .into_iter()
        .map(|e| match e {
            LiveEvent::InsertLocal { entry } => {
                Ev::Local(String::from_utf8_lossy(entry.key()).into())
            }
            LiveEvent::InsertRemote { from, entry, .. } => {
                Ev::Remote(idx(from), String::from_utf8_lossy(entry.key()).into())
            }
            LiveEvent::ContentReady { hash } => Ev::Ready(hash),
            LiveEvent::PendingContentReady => Ev::Pending,
            LiveEvent::NeighborUp(p) => Ev::Up(idx(p)),
            LiveEvent::NeighborDown(p) => Ev::Down(idx(p)),
            LiveEvent::SyncFinished(s) => Ev::Synced(
                idx(s.peer),
                s.origin,
                s.result.map(|d| (d.entries_received, d.entries_sent)),
            ),
            LiveEvent::Lagged { .. } => Ev::Lagged,
        })
        .collect()
}

pub(super) fn doc() -> (NamespaceSecret, Author) {
    (ns(7), author(8))
}
