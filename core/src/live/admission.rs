//! Admission of sync sessions: how many run at once, per direction and per peer, and what
//! waits.
//!
//! Each session is bounded on its own (frame limit, message backlog, message cap, idle
//! timeout); this module bounds how many there are, so that no peer and no burst of triggers
//! can take the node's capacity:
//!
//! * **Dialed and accepted sessions are counted apart.** Sessions a peer opens with us never
//!   hold back the syncs we start, and ours never make us refuse a peer:
//!   [`LiveConfig::max_sessions`] bounds dials, [`LiveConfig::max_accepted_sessions`]
//!   accepts. When the accept bound is full, a new connection takes the place of the
//!   accepted session that has waited longest for its `Init` (closed with
//!   [`SessionLimit::AcceptedSessions`]); only when every accepted session is past `Init` is
//!   the new connection closed at once, before it can buffer anything. Node ids are free, so
//!   many identities can fill the bound with connections that never `Init`; an honest peer
//!   sends its `Init` at once, and holds its place unless a whole bound's worth of
//!   connections arrives within that first round trip.
//! * **Per peer.** One peer holds at most [`LiveConfig::max_sessions_per_peer`] sessions in
//!   each direction; a further accept is closed ([`SessionLimit::PeerSessions`]), so 600
//!   connections from one node cannot take the accept bound from everyone else.
//! * **Before `Init`** an accepted session may buffer at most
//!   [`LiveConfig::max_init_frame_len`] bytes and must send `Init` within
//!   [`LiveConfig::init_timeout`]; bytes that are not a whole `Init` do not extend that
//!   deadline. A connection that drips one byte a minute is closed after the init timeout.
//! * **Dials over a bound wait** in a queue per peer, instead of being dropped, and start as
//!   sessions with that peer end. A node that joins 1,000 documents shared with one peer, or
//!   sees a neighbour come up on all of them, syncs every one of them, a bounded number at a
//!   time. The queue holds at most one dial per (document, tracked peer), like the peer
//!   table it mirrors; the reason of the first queued trigger is kept.
//!
//! [`LiveConfig::max_sessions`]: super::LiveConfig::max_sessions
//! [`LiveConfig::max_accepted_sessions`]: super::LiveConfig::max_accepted_sessions
//! [`LiveConfig::max_sessions_per_peer`]: super::LiveConfig::max_sessions_per_peer
//! [`LiveConfig::max_init_frame_len`]: super::LiveConfig::max_init_frame_len
//! [`LiveConfig::init_timeout`]: super::LiveConfig::init_timeout
//! [`SessionLimit::AcceptedSessions`]: super::SessionLimit::AcceptedSessions
//! [`SessionLimit::PeerSessions`]: super::SessionLimit::PeerSessions

use std::collections::{BTreeMap, VecDeque};

use super::{types::Role, types::SyncReason, Live};
use crate::{hash::PeerId, keys::NamespaceId};

/// Open sessions by direction and peer, and the dials waiting for room.
#[derive(Debug, Default)]
pub(super) struct Admission {
    /// Open sessions we dialed. Derivable from `per_peer`, kept so that every admission is
    /// O(1); the invariants check that both agree.
    dialed: usize,
    /// Open sessions peers opened (as `dialed`).
    accepted: usize,
    /// Open sessions per peer: `[dialed, accepted]`. Peers without sessions are absent.
    per_peer: BTreeMap<PeerId, [usize; 2]>,
    /// Dials waiting, per peer, in the order they were wanted. A document is here at most
    /// once per peer; its `PeerState::dial_queued` holds the reason.
    waiting: BTreeMap<PeerId, VecDeque<NamespaceId>>,
}

fn slot(role: Role) -> usize {
    match role {
        Role::Dial => 0,
        Role::Accept => 1,
    }
}

impl Admission {
    pub(super) fn opened(&mut self, role: Role, peer: PeerId) {
        match role {
            Role::Dial => self.dialed += 1,
            Role::Accept => self.accepted += 1,
        }
        self.per_peer.entry(peer).or_default()[slot(role)] += 1;
    }

    pub(super) fn closed(&mut self, role: Role, peer: PeerId) {
        match role {
            Role::Dial => self.dialed -= 1,
            Role::Accept => self.accepted -= 1,
        }
        if let Some(n) = self.per_peer.get_mut(&peer) {
            n[slot(role)] -= 1;
            if *n == [0, 0] {
                self.per_peer.remove(&peer);
            }
        }
    }

    fn open_with(&self, role: Role, peer: &PeerId) -> usize {
        self.per_peer.get(peer).map_or(0, |n| n[slot(role)])
    }

    /// Open sessions: `(dialed, accepted)`.
    pub(super) fn open(&self) -> (usize, usize) {
        (self.dialed, self.accepted)
    }

    /// Dials waiting in all.
    pub(super) fn waiting(&self) -> usize {
        self.waiting.values().map(VecDeque::len).sum()
    }

    /// Forgets waiting dials of a document that was left.
    pub(super) fn forget_document(&mut self, ns: &NamespaceId) {
        self.waiting.retain(|_, q| {
            q.retain(|n| n != ns);
            !q.is_empty()
        });
    }

    pub(super) fn clear_waiting(&mut self) {
        self.waiting.clear();
    }

    #[cfg(any(test, feature = "fuzzing", feature = "invariants"))]
    pub(super) fn waiting_entries(&self) -> impl Iterator<Item = (&PeerId, &NamespaceId)> {
        self.waiting
            .iter()
            .flat_map(|(p, q)| q.iter().map(move |ns| (p, ns)))
    }

    #[cfg(any(test, feature = "fuzzing", feature = "invariants"))]
    /// Open sessions per peer, `[dialed, accepted]` (invariants: they sum to `open()`).
    pub(super) fn per_peer(&self) -> &BTreeMap<PeerId, [usize; 2]> {
        &self.per_peer
    }
}

impl Live {
    /// Whether a dial to `peer` fits the dial bounds now.
    pub(super) fn dial_has_room(&self, peer: &PeerId) -> bool {
        self.admission.dialed < self.config.max_sessions
            && self.admission.open_with(Role::Dial, peer) < self.config.max_sessions_per_peer
    }

    /// Why a session the peer opened cannot be admitted, if it cannot.
    pub(super) fn accept_refusal(&self, peer: &PeerId) -> Option<super::SessionLimit> {
        if self.admission.accepted >= self.config.max_accepted_sessions {
            Some(super::SessionLimit::AcceptedSessions)
        } else if self.admission.open_with(Role::Accept, peer) >= self.config.max_sessions_per_peer
        {
            Some(super::SessionLimit::PeerSessions)
        } else {
            None
        }
    }

    /// Queues a dial that does not fit the bounds now (once per document and peer).
    pub(super) fn queue_dial(&mut self, ns: NamespaceId, peer: PeerId, reason: SyncReason) {
        let Some(p) = self.states.peer(&ns, peer, self.now.mono) else {
            return;
        };
        if p.dial_queued.is_some() {
            return;
        }
        p.dial_queued = Some(reason);
        self.admission
            .waiting
            .entry(peer)
            .or_default()
            .push_back(ns);
        self.stats.dials_queued += 1;
    }

    /// Starts waiting dials that fit the bounds now. Bounded: every round starts or drops
    /// one queued dial.
    pub(super) fn dispatch_dials(&mut self) {
        if self.admission.waiting.is_empty() || self.shutting_down {
            return;
        }
        let peers: Vec<PeerId> = self.admission.waiting.keys().copied().collect();
        for peer in peers {
            while self.dial_has_room(&peer) {
                let Some(queue) = self.admission.waiting.get_mut(&peer) else {
                    break;
                };
                let Some(ns) = queue.pop_front() else {
                    self.admission.waiting.remove(&peer);
                    break;
                };
                if queue.is_empty() {
                    self.admission.waiting.remove(&peer);
                }
                let reason = self
                    .states
                    .get_mut(&ns)
                    .and_then(|s| s.peers.get_mut(&peer))
                    .and_then(|p| p.dial_queued.take());
                if let Some(reason) = reason {
                    self.sync_with_peer(ns, peer, reason);
                }
            }
            if self.admission.dialed >= self.config.max_sessions {
                break;
            }
        }
    }
}
