//! Gossip: neighbours joining and leaving a document's swarm, and the ops they deliver
//! (`Put`, `ContentReady`, `SyncReport`).

use super::types::*;
use super::{Cont, Live};
use crate::{
    hash::PeerId,
    keys::NamespaceId,
    ranger::ContentStatus,
    replica::StoreCommand,
    wire::{AuthorHeads, Decode, Encode, Op, SyncReport},
};

impl Live {
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
                        self.offer_content(ns, entry.content_hash(), delivered_from, true);
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
                    self.offer_content(ns, hash, delivered_from, true);
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

    pub(super) fn on_neighbor_up(&mut self, ns: NamespaceId, peer: PeerId) {
        if let Some(state) = self.states.get_mut(&ns) {
            state.neighbors.insert(peer);
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
