//! Gossip: the real `iroh_gossip::proto` state machine (HyParView membership + PlumTree
//! broadcast), one instance per node and topic, over a simulated lossy network.
//!
//! # Why one `topic::State` per topic
//!
//! `iroh_gossip::proto::State` (the multi-topic wrapper) keeps its topics in a `HashMap` and
//! forwards a peer disconnect to all of them in hash order, which would make the order of
//! outputs depend on the process' hash seed. The simulator therefore drives
//! [`topic::State`] directly, one per (node, document): the wrapper's only other job — creating
//! topic states with a derived rng and mapping disconnects — is done here, deterministically.
//! Inside a topic state the hash-based collections are only used for look-ups and
//! `retain`, never to order outputs (checked against iroh-gossip 0.101.0), and all
//! randomness comes from the ChaCha rng handed to it, derived from the seed, the node, its
//! incarnation and the topic.
//!
//! # Time
//!
//! The protocol takes `n0_future::time::Instant` (tokio's `Instant`, a wrapper of the standard
//! one) as "now". There is no way to build one without reading the clock once, so
//! [`instant`] reads it exactly once per process as an opaque origin and adds virtual time to
//! it. The protocol only ever adds durations to the `now` it is given and compares the
//! results, so its behaviour depends on differences alone; the origin never reaches a trace.
//! tokio is compiled in as a dependency of `n0-future` but no runtime is ever started.
//!
//! # The network
//!
//! Messages are postcard-encoded (as on the wire, and to count bytes), then delivered after the
//! seeded latency and jitter, in order per direction unless the reordering fault delays them;
//! they may be lost or duplicated — the datagram-like faults. A message to a crashed or
//! partitioned peer is lost and, after the seeded detection delay, the sender's topic state
//! learns `PeerDisconnected` (a failed dial in iroh-gossip's networking layer). A crash or a
//! partition also tears down existing gossip links after that delay, on both ends.
//! `DisconnectPeer` from a state closes the link; the peer's state learns it after one
//! latency. Received broadcasts become `GossipEvent::Received` with `direct` set exactly as
//! iroh-gossip's `DeliveryScope::is_direct` says (first hop or neighbour scope).
//!
//! # Stalls (`gossip-stall`)
//!
//! iroh-gossip's actor can stop answering (a deadlock under load was seen on loopback); its
//! topics then neither deliver nor send, and no event says so. The engine probes the actor and
//! reports a stall to `Live` as [`Input::GossipStalled`]. Here a stalled node's gossip
//! messages, in and out, are lost while the stall lasts; the node's runtime reports it every
//! [`PROBE`] and once more when the stall ends, as the engine's probe does.
//!
//! # Bans
//!
//! A node whose `Live` bans a peer (`Output::GossipBan`: it sent a forged `Put` as its
//! author's node) takes no gossip message from that peer until the ban ends, as the engine
//! refuses its gossip connections.

use std::{
    collections::VecDeque,
    fmt,
    sync::OnceLock,
    time::{Duration, Instant},
};

use iroh_gossip::proto::{topic, Config as GossipConfig};
use rand::RngExt;
use rand_chacha::ChaCha12Rng;
use serde::{Deserialize, Serialize};
use sheaf_core::{
    hash::PeerId,
    keys::NamespaceId,
    live::{GossipEvent, Input},
};

use crate::{
    config::stream,
    world::{Event, Sim, Work},
};

/// The gossip peer identity: the node's 32-byte id. Its `Debug` shows the first five bytes
/// in hex, like `PeerId`'s, which keeps gossip trace records short.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Pi(pub [u8; 32]);

impl fmt::Debug for Pi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", hex::encode(&self.0[..5]))
    }
}

impl From<PeerId> for Pi {
    fn from(p: PeerId) -> Self {
        Pi(*p.as_bytes())
    }
}

impl From<Pi> for PeerId {
    fn from(p: Pi) -> Self {
        PeerId::from(p.0)
    }
}

/// The gossip state of one topic on one node.
pub struct Topic {
    /// The protocol state.
    pub state: topic::State<Pi, ChaCha12Rng>,
    /// Distinguishes this state's timers from those of an earlier state of the same topic.
    pub generation: u64,
}

/// Virtual time `us` as an `Instant`: a fixed, opaque origin plus `us`. Converted with
/// `.into()` to the protocol's `Instant` (tokio's, which wraps this one), so the simulator
/// never names n0-future's re-export.
pub fn instant(us: u64) -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now) + Duration::from_micros(us)
}

impl Sim {
    /// Feeds one input to a node's topic state (creating it on `Join`) and carries out its
    /// outputs; events for `Live` go to the work list.
    pub fn gossip_handle(
        &mut self,
        node: usize,
        ns: NamespaceId,
        event: topic::InEvent<Pi>,
        work: &mut VecDeque<Work>,
    ) {
        let now = instant(self.now);
        let t = self.now;
        let (seed, epoch) = (self.cfg.seed, self.nodes[node].epoch);
        let Some(proc) = self.nodes[node].proc.as_mut() else {
            return;
        };
        let is_join = matches!(&event, topic::InEvent::Command(topic::Command::Join(_)));
        if is_join && !proc.topics.contains_key(&ns) {
            let generation = self.counters.events;
            let rng = stream(
                seed,
                &format!("gossip/{node}/{epoch}/{}/{generation}", ns.fmt_short()),
            );
            let me = Pi::from(self.nodes[node].id);
            let state = topic::State::with_rng(me, None, GossipConfig::default(), rng);
            let proc = self.nodes[node].proc.as_mut().expect("up");
            proc.topics.insert(ns, Topic { state, generation });
        }
        let proc = self.nodes[node].proc.as_mut().expect("up");
        let Some(topic) = proc.topics.get_mut(&ns) else {
            return;
        };
        let quit = matches!(&event, topic::InEvent::Command(topic::Command::Quit));
        self.trace.record(t, node, "gossip-in", &event);
        let outs: Vec<topic::OutEvent<Pi>> = topic.state.handle(event, now.into()).collect();
        let generation = topic.generation;
        if quit {
            proc.topics.remove(&ns);
        }
        for out in outs {
            self.trace.record(t, node, "gossip-out", &out);
            self.gossip_out(node, ns, generation, out, work);
        }
    }

    fn gossip_out(
        &mut self,
        node: usize,
        ns: NamespaceId,
        generation: u64,
        out: topic::OutEvent<Pi>,
        work: &mut VecDeque<Work>,
    ) {
        let live = |event| {
            Work::Live(Input::Gossip {
                namespace: ns,
                event,
            })
        };
        match out {
            topic::OutEvent::SendMessage(to, message) => {
                let bytes = postcard::to_allocvec(&message).expect("gossip messages encode");
                if let Some(&to) = self.index.get(&PeerId::from(to)) {
                    self.gossip_send(node, to, ns, bytes);
                }
            }
            topic::OutEvent::EmitEvent(topic::Event::NeighborUp(p)) => {
                work.push_back(live(GossipEvent::NeighborUp(PeerId::from(p))))
            }
            topic::OutEvent::EmitEvent(topic::Event::NeighborDown(p)) => {
                work.push_back(live(GossipEvent::NeighborDown(PeerId::from(p))))
            }
            topic::OutEvent::EmitEvent(topic::Event::Received(ev)) => {
                work.push_back(live(GossipEvent::Received {
                    content: ev.content.to_vec(),
                    delivered_from: PeerId::from(ev.delivered_from),
                    direct: ev.scope.is_direct(),
                }))
            }
            topic::OutEvent::ScheduleTimer(delay, timer) => {
                let epoch = self.nodes[node].epoch;
                let at = self.now + u64::try_from(delay.as_micros()).unwrap_or(u64::MAX / 4);
                self.push(
                    at,
                    Event::GossipTimer {
                        node,
                        epoch,
                        ns,
                        generation,
                        timer,
                    },
                );
            }
            topic::OutEvent::DisconnectPeer(p) => {
                if let Some(&peer) = self.index.get(&PeerId::from(p)) {
                    self.links.remove(&link(node, peer, ns));
                    if self.up(peer) {
                        let at = self.now + self.latency();
                        let epoch = self.nodes[peer].epoch;
                        self.push(
                            at,
                            Event::GossipDown {
                                node: peer,
                                epoch,
                                ns,
                                peer: node,
                            },
                        );
                    }
                }
            }
            topic::OutEvent::PeerData(..) => {}
        }
    }

    /// Sends one encoded gossip message over the faulty network.
    fn gossip_send(&mut self, from: usize, to: usize, ns: NamespaceId, bytes: Vec<u8>) {
        self.counters.gossip_msgs += 1;
        self.counters.bytes += bytes.len() as u64;
        if !self.up(to) || self.blocked(from, to) {
            if self.pending_down.insert((from, to, ns)) {
                let epoch = self.nodes[from].epoch;
                let at = self.now + self.params.detect;
                self.push(
                    at,
                    Event::GossipDown {
                        node: from,
                        epoch,
                        ns,
                        peer: to,
                    },
                );
            }
            return;
        }
        self.links.insert(link(from, to, ns));
        if self.gossip_is_stalled(from) || self.gossip_is_stalled(to) {
            return;
        }
        let (loss, dup, reorder) = (
            self.params.gossip_loss,
            self.params.duplicate,
            self.params.reorder,
        );
        if loss > 0.0 && self.net_rng.random_bool(loss) {
            return;
        }
        let copies = if dup > 0.0 && self.net_rng.random_bool(dup) {
            2
        } else {
            1
        };
        let epoch = self.nodes[to].epoch;
        for copy in 0..copies {
            let mut at = self.now + self.latency();
            let reordered = copy == 1 || (reorder > 0.0 && self.net_rng.random_bool(reorder));
            if reordered {
                let max = self.params.reorder_delay;
                at += self.net_rng.random_range(0..=max);
            } else {
                let tail = self.gossip_tail.entry((from, to)).or_default();
                at = at.max(*tail);
                *tail = at;
            }
            self.push(
                at,
                Event::GossipMsg {
                    to,
                    epoch,
                    ns,
                    from,
                    bytes: bytes.clone(),
                },
            );
        }
    }

    /// A gossip message arrives at `to` (from an honest node or, `from` past the honest
    /// nodes, from an identity of the byzantine node).
    pub fn gossip_arrive(&mut self, to: usize, ns: NamespaceId, from: usize, bytes: &[u8]) {
        let has_topic = self.nodes[to]
            .proc
            .as_ref()
            .is_some_and(|p| p.topics.contains_key(&ns));
        if !has_topic || self.gossip_is_stalled(to) {
            return;
        }
        let sender = self.peer_id(from);
        let now = self.now;
        let banned = self.nodes[to]
            .proc
            .as_mut()
            .and_then(|p| match p.gossip_bans.get(&sender) {
                Some(until) if *until > now => Some(true),
                Some(_) => {
                    p.gossip_bans.remove(&sender);
                    None
                }
                None => None,
            })
            .is_some();
        if banned {
            self.counters.defences.gossip_banned_msgs += 1;
            return;
        }
        match postcard::from_bytes::<topic::Message<Pi>>(bytes) {
            Ok(message) => {
                let from = Pi::from(self.peer_id(from));
                self.drive(
                    to,
                    Work::Gossip(ns, topic::InEvent::RecvMessage(from, message)),
                );
            }
            Err(e) => self.trace.record(self.now, to, "gossip-undecodable", &e),
        }
    }

    /// A gossip timer fires.
    pub fn gossip_timer(
        &mut self,
        node: usize,
        ns: NamespaceId,
        generation: u64,
        timer: topic::Timer<Pi>,
    ) {
        let current = self.nodes[node]
            .proc
            .as_ref()
            .and_then(|p| p.topics.get(&ns))
            .is_some_and(|t| t.generation == generation);
        if current {
            self.drive(node, Work::Gossip(ns, topic::InEvent::TimerExpired(timer)));
        }
    }

    /// The link from `node` to `peer` in topic `ns` is gone.
    pub fn gossip_down(&mut self, node: usize, ns: NamespaceId, peer: usize) {
        let has_topic = self.nodes[node]
            .proc
            .as_ref()
            .is_some_and(|p| p.topics.contains_key(&ns));
        if has_topic {
            let peer = Pi::from(self.nodes[peer].id);
            self.drive(
                node,
                Work::Gossip(ns, topic::InEvent::PeerDisconnected(peer)),
            );
        }
    }

    /// Tears down gossip links that `dead(a, b)` says are broken; both ends learn it after
    /// the detection delay.
    pub fn break_links(&mut self, dead: impl Fn(&Sim, usize, usize) -> bool) {
        let broken: Vec<(usize, usize, NamespaceId)> = self
            .links
            .iter()
            .filter(|(a, b, _)| dead(self, *a, *b))
            .copied()
            .collect();
        for (a, b, ns) in broken {
            self.links.remove(&(a, b, ns));
            for (x, y) in [(a, b), (b, a)] {
                if self.up(x) && self.pending_down.insert((x, y, ns)) {
                    let epoch = self.nodes[x].epoch;
                    let at = self.now + self.params.detect;
                    self.push(
                        at,
                        Event::GossipDown {
                            node: x,
                            epoch,
                            ns,
                            peer: y,
                        },
                    );
                }
            }
        }
    }
}

/// How often a stalled node's runtime reports the stall (the engine's probe period).
pub const PROBE: u64 = 5 * crate::config::SEC;

impl Sim {
    /// Whether `node`'s gossip layer is stalled.
    pub(crate) fn gossip_is_stalled(&self, node: usize) -> bool {
        self.gossip_stalled
            .iter()
            .any(|i| self.params.gossip_stalls[*i].node == node)
    }

    /// Stall `i` starts; the first probe fails one period later.
    pub(crate) fn gossip_stall_start(&mut self, i: usize) {
        let node = self.params.gossip_stalls[i].node;
        self.gossip_stalled.insert(i);
        self.trace
            .note(self.now, &format!("gossip of node {node} stalls"));
        self.push(self.now + PROBE, Event::GossipProbe(i));
    }

    /// A probe of stall `i`'s node: while the stall lasts, reported to its `Live`.
    pub(crate) fn gossip_probe(&mut self, i: usize) {
        if !self.gossip_stalled.contains(&i) {
            return;
        }
        let node = self.params.gossip_stalls[i].node;
        if self.up(node) {
            self.drive(node, Work::Live(Input::GossipStalled));
        }
        self.push(self.now + PROBE, Event::GossipProbe(i));
    }

    /// Stall `i` ends (or the heal ends it): reported once more, since ops were lost.
    pub(crate) fn gossip_stall_end(&mut self, i: usize) {
        if !self.gossip_stalled.remove(&i) {
            return;
        }
        let node = self.params.gossip_stalls[i].node;
        self.trace
            .note(self.now, &format!("gossip of node {node} answers again"));
        if self.up(node) {
            self.drive(node, Work::Live(Input::GossipStalled));
        }
    }
}

/// The undirected link key.
fn link(a: usize, b: usize, ns: NamespaceId) -> (usize, usize, NamespaceId) {
    (a.min(b), a.max(b), ns)
}
