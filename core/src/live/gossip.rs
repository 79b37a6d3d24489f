//! Gossip: neighbours joining and leaving a document's swarm, the ops they deliver (`Put`,
//! `ContentReady`, `SyncReport`), and the subscription itself: when the runtime reports it
//! ended ([`GossipEvent::Ended`]: the join failed, or the stream closed), the topic is joined
//! again with backoff, bootstrapped from every peer the document knows.
//!
//! # Budget
//!
//! Anyone who knows a document's id can join its topic and broadcast, and every `Put` costs a
//! strict signature check on the store, which serves every document and every API call. So
//! the store work gossip causes is budgeted: at most
//! [`LiveConfig::max_gossip_store_per_peer`](super::LiveConfig::max_gossip_store_per_peer)
//! store commands (`Put`s and `SyncReport`s) in flight per delivering peer and
//! [`LiveConfig::max_gossip_store`](super::LiveConfig::max_gossip_store) in all; what arrives
//! over the budget is dropped and counted ([`LiveStats::gossip_dropped`]), and a repair sync
//! with the peer that delivered it is started (or queued behind the running one): an honest
//! write that a neighbour relays among a flood arrives by that sync. A `Lagged` gossip stream
//! does the same with every neighbour. A peer whose dials fail is not dialed for repairs
//! until its retry succeeds: otherwise a rogue that only gossips would be dialed again for
//! every op it floods, a QUIC handshake each. (Repairs with a healthy peer are not paced
//! further: a sync runs, and one more is queued behind it; pacing them to one a second, or
//! ten, raised the live latency under a flood from ~8 ms to 40–100 ms in W9.) A peer that
//! sent us, as the author's own
//! node, a `Put` that failed verification is muted for
//! [`LiveConfig::gossip_mute`](super::LiveConfig::gossip_mute): its `Put`s are dropped
//! before they reach the store, and the runtime is asked to close its gossip connections and
//! refuse new ones meanwhile ([`Output::GossipBan`]): a flood costs the gossip layer too (a
//! QUIC stream to read, a message id to hash and remember, a copy relayed to every
//! neighbour), and each forwarded copy costs our neighbours the same. Relays are never muted for what they forward (iroh-gossip
//! forwards before anyone can check), only budgeted; the mute table holds at most
//! [`MAX_MUTED`] peers and forgets the one whose mute ends first.

use std::collections::BTreeMap;

use rand_core::Rng;

use super::types::*;
use super::{error::StoreFailure, timer::Timer, Cont, Live};
use crate::{
    hash::PeerId,
    keys::NamespaceId,
    ranger::ContentStatus,
    replica::StoreCommand,
    time::Mono,
    wire::{AuthorHeads, Decode, Encode, Op, SyncReport},
};

/// Most muted peers remembered at once.
pub const MAX_MUTED: usize = 1024;

/// Store work in flight per delivering peer, and the muted peers.
#[derive(Debug, Default)]
pub(super) struct GossipLoad {
    /// Store commands in flight per delivering peer; peers without any are absent.
    in_flight: BTreeMap<PeerId, usize>,
    /// The sum of `in_flight`, kept so that admitting an op is O(log peers); the invariants
    /// check that both agree.
    total: usize,
    muted: BTreeMap<PeerId, Mono>,
}

impl GossipLoad {
    /// Store commands in flight for gossip, in all (invariants).
    #[cfg(any(test, feature = "fuzzing", feature = "invariants"))]
    pub(super) fn total(&self) -> usize {
        self.total
    }
}

impl Live {
    /// Whether a gossip op from `from` that needs the store may have it now; counts it.
    fn admit_gossip(&mut self, ns: NamespaceId, from: PeerId, put: bool) -> bool {
        let now = self.now.mono;
        let load = &mut self.gossip_load;
        if put {
            if let Some(until) = load.muted.get(&from) {
                if *until > now {
                    self.stats.gossip_dropped += 1;
                    return false;
                }
                load.muted.remove(&from);
            }
        }
        let mine = load.in_flight.get(&from).copied().unwrap_or(0);
        if mine >= self.config.max_gossip_store_per_peer
            || load.total >= self.config.max_gossip_store
        {
            self.stats.gossip_dropped += 1;
            // What was dropped may be an honest write the peer relays among a flood: a sync
            // with it repairs that.
            self.repair_sync(ns, from);
            return false;
        }
        load.in_flight.insert(from, mine + 1);
        load.total += 1;
        true
    }

    /// A store command of gossip from `from` was answered.
    pub(super) fn gossip_answered(&mut self, from: PeerId) {
        let load = &mut self.gossip_load;
        if let Some(n) = load.in_flight.get_mut(&from) {
            *n -= 1;
            if *n == 0 {
                load.in_flight.remove(&from);
            }
            load.total -= 1;
        }
    }

    /// The store refused a `Put` that `from` delivered as its author's node.
    pub(super) fn gossip_put_refused(&mut self, from: PeerId, direct: bool, e: &StoreFailure) {
        self.stats.gossip_puts_refused += 1;
        if !direct || !matches!(e, StoreFailure::Validation(_)) {
            return;
        }
        let until = self.now.mono + self.config.gossip_mute;
        let muted = &mut self.gossip_load.muted;
        if muted.len() >= MAX_MUTED && !muted.contains_key(&from) {
            if let Some(first) = muted
                .iter()
                .min_by_key(|(p, t)| (**t, **p))
                .map(|(p, _)| *p)
            {
                muted.remove(&first);
            }
        }
        // The peer's other `Put`s in flight are refused too: one ban per mute.
        let newly = muted.get(&from).is_none_or(|t| *t <= self.now.mono);
        muted.insert(from, until);
        if newly && !self.config.gossip_mute.is_zero() {
            self.push(Output::GossipBan {
                peer: from,
                mute: self.config.gossip_mute,
            });
        }
    }
}

impl Live {
    /// A sync with `peer` that repairs gossip lost or dropped, unless the peer's dials fail:
    /// a failing peer (one that only gossips, say) is left to its retry schedule instead of
    /// being dialed again for every op it floods.
    pub(super) fn repair_sync(&mut self, ns: NamespaceId, peer: PeerId) {
        let failing = self
            .states
            .get_mut(&ns)
            .and_then(|s| s.peers.get(&peer))
            .is_some_and(|p| p.failures > 0 || p.retry_at.is_some());
        if !failing {
            self.sync_with_peer(ns, peer, SyncReason::SyncReport);
        }
    }

    /// The gossip layer stalled for every topic at once: each document repairs as if its
    /// stream lagged. Bounded like any repair: one sync per neighbour runs and one more is
    /// queued behind it, and dials wait for room under the session bounds.
    pub(super) fn on_gossip_stalled(&mut self) {
        self.stats.gossip_stalls += 1;
        let namespaces: Vec<NamespaceId> = self.states.namespaces().copied().collect();
        for ns in namespaces {
            self.on_gossip(ns, GossipEvent::Lagged);
        }
    }

    pub(super) fn on_gossip(&mut self, ns: NamespaceId, event: GossipEvent) {
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
            GossipEvent::Ended => self.on_gossip_ended(ns),
            GossipEvent::NeighborDown(peer) => {
                if let Some(state) = self.states.get_mut(&ns) {
                    state.neighbors.remove(&peer);
                }
                self.emit(ns, LiveEvent::NeighborDown(peer));
            }
            // The gossip layer dropped messages, for us or ours: a sync with each neighbour
            // repairs.
            GossipEvent::Lagged => {
                let neighbors: Vec<PeerId> = self
                    .states
                    .get_mut(&ns)
                    .map(|s| s.neighbors.iter().copied().collect())
                    .unwrap_or_default();
                for peer in neighbors {
                    self.repair_sync(ns, peer);
                }
            }
            GossipEvent::Received {
                content,
                delivered_from,
                direct,
            } => match Op::from_wire(&content) {
                Err(_) => self.stats.gossip_decode_errors += 1,
                Ok(Op::Put(entry)) => {
                    if !self.admit_gossip(ns, delivered_from, true) {
                        return;
                    }
                    let status = if direct {
                        ContentStatus::Complete
                    } else {
                        ContentStatus::Missing
                    };
                    if direct && self.downloads.is_missing(&entry.content_hash()) {
                        self.offer_content(ns, entry.content_hash(), delivered_from, true);
                    }
                    self.store(
                        StoreCommand::InsertRemote {
                            namespace: ns,
                            entry,
                            from: delivered_from,
                            content_status: status,
                        },
                        Cont::GossipPut {
                            from: delivered_from,
                            direct,
                        },
                    );
                }
                Ok(Op::ContentReady(hash)) => {
                    self.offer_content(ns, hash, delivered_from, true);
                }
                Ok(Op::SyncReport(SyncReport { namespace, heads })) => {
                    if namespace != ns {
                        self.stats.gossip_decode_errors += 1;
                        return;
                    }
                    match AuthorHeads::decode(&heads) {
                        Ok(heads) => {
                            if self.admit_gossip(ns, delivered_from, false) {
                                self.store(
                                    StoreCommand::HasNewsForUs { namespace, heads },
                                    Cont::News {
                                        ns,
                                        from: delivered_from,
                                    },
                                );
                            }
                        }
                        Err(_) => self.stats.gossip_decode_errors += 1,
                    }
                }
            },
        }
    }

    /// The subscription ended: its neighbours are gone, and the topic is joined again after
    /// a backoff (`retry_base` doubling per failure in a row, at most `retry_max`, ±50%
    /// jitter from the seed).
    fn on_gossip_ended(&mut self, ns: NamespaceId) {
        if self.shutting_down {
            return;
        }
        let jitter = self.rng.next_u64();
        let (base, max) = (self.config.retry_base, self.config.retry_max);
        let Some(state) = self.states.get_mut(&ns) else {
            return;
        };
        let gone: Vec<PeerId> = std::mem::take(&mut state.neighbors).into_iter().collect();
        state.gossip_failures = state.gossip_failures.saturating_add(1);
        let exp = base
            .saturating_mul(1u32 << (state.gossip_failures - 1).min(20))
            .min(max);
        let micros = u64::try_from(exp.as_micros()).unwrap_or(u64::MAX).max(1);
        let delay = micros / 2 + jitter % micros;
        let at = Mono(self.now.mono.0.saturating_add(delay.max(1)));
        self.timers.set(Timer::GossipRejoin(ns), at);
        for peer in gone {
            self.emit(ns, LiveEvent::NeighborDown(peer));
        }
    }

    /// Joins the topic again, with every peer the document knows as bootstrap.
    pub(super) fn on_gossip_rejoin(&mut self, ns: NamespaceId) {
        let Some(state) = self.states.get_mut(&ns) else {
            return;
        };
        let peers: Vec<PeerId> = state.peers.keys().copied().collect();
        self.stats.gossip_rejoins += 1;
        self.push(Output::GossipJoin {
            namespace: ns,
            peers,
        });
    }

    /// After a sync with `peer`: joins it on the document's topic unless it is a neighbour
    /// already. iroh-gossip drops a join for a topic its node has not subscribed yet, and the
    /// joiner never asks again: a peer that started syncing the document just after we
    /// joined would stay outside our swarm. Once per successful sync, so bounded by the
    /// sessions. Not while the topic is being joined again (`on_gossip_rejoin` bootstraps
    /// with every known peer).
    pub(super) fn join_if_not_neighbor(&mut self, ns: NamespaceId, peer: PeerId) {
        let Some(state) = self.states.get(&ns) else {
            return;
        };
        if self.shutting_down || state.gossip_failures > 0 || state.neighbors.contains(&peer) {
            return;
        }
        self.push(Output::GossipJoin {
            namespace: ns,
            peers: vec![peer],
        });
    }

    pub(super) fn on_neighbor_up(&mut self, ns: NamespaceId, peer: PeerId) {
        if let Some(state) = self.states.get_mut(&ns) {
            state.neighbors.insert(peer);
            state.gossip_failures = 0;
        }
        self.sync_with_peer(ns, peer, SyncReason::NewNeighbor);
        self.emit(ns, LiveEvent::NeighborUp(peer));
    }

    pub(super) fn broadcast_neighbors(&mut self, ns: NamespaceId, op: Op) {
        if self.states.is_syncing(&ns) {
            self.push(Output::GossipBroadcast {
                namespace: ns,
                scope: BroadcastScope::Neighbors,
                payload: op.to_wire(),
            });
        }
    }
}
