//! Per-document, per-peer sync state: who we are syncing with, the tie-break for concurrent
//! dials, queued re-syncs and retries (iroh-docs' `NamespaceStates` / `PeerState`).

use std::collections::{BTreeMap, BTreeSet};

use rand_core::Rng;

use super::{
    anti_entropy::DocRounds,
    timer::Timer,
    types::{Origin, SyncReason},
    vec_map::VecMap,
    Live,
};
use crate::{
    hash::PeerId,
    keys::NamespaceId,
    time::{Mono, Now},
    wire::AbortReason,
};

/// Whether a sync with a peer is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum SyncState {
    #[default]
    Idle,
    Running {
        start: Now,
        origin: Origin,
    },
}

/// State of one peer within one document.
#[derive(Debug, Clone, Default)]
pub(super) struct PeerState {
    pub(super) state: SyncState,
    pub(super) resync_requested: bool,
    /// Failed dialed syncs in a row.
    pub(super) failures: u32,
    /// When a retry is due, if one is scheduled.
    pub(super) retry_at: Option<Mono>,
    /// The scheduled retry follows a dial the peer refused with `AlreadySyncing`, counted in
    /// `failures` until the peer's own dial is accepted (a crossing, not a failure).
    pub(super) refused_retry: bool,
    /// A dial waits for room (see `admission`), for this reason.
    pub(super) dial_queued: Option<SyncReason>,
    /// When a sync with the peer last completed, other than one our anti-entropy dialed.
    pub(super) last_synced: Option<Mono>,
    /// When the peer was first tracked or last completed a sync: the least recently active
    /// idle peer makes room when the table is full.
    pub(super) last_active: Mono,
    /// The last sync with the peer that finished, either way (for status views).
    pub(super) last_sync: Option<Box<super::types::SyncEvent>>,
}

/// What an acceptor answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AcceptOutcome {
    Allow,
    Reject(AbortReason),
}

/// State of one document being synced.
#[derive(Debug, Default)]
pub(super) struct NamespaceState {
    pub(super) peers: VecMap<PeerId, PeerState>,
    pub(super) neighbors: BTreeSet<PeerId>,
    pub(super) may_emit_ready: bool,
    /// Anti-entropy rounds of the document.
    pub(super) rounds: DocRounds,
    /// Gossip subscriptions that ended in a row (reset when a neighbour comes up).
    pub(super) gossip_failures: u32,
}

/// All documents in the sync set.
#[derive(Debug, Default)]
pub(super) struct NamespaceStates {
    map: BTreeMap<NamespaceId, NamespaceState>,
    max_peers: usize,
    /// Peers dropped to make room for new ones (for metrics).
    pub(super) evicted: u64,
}

impl NamespaceStates {
    pub(super) fn new(max_peers: usize) -> Self {
        Self {
            map: BTreeMap::new(),
            max_peers,
            evicted: 0,
        }
    }

    pub(super) fn is_syncing(&self, ns: &NamespaceId) -> bool {
        self.map.contains_key(ns)
    }

    pub(super) fn insert(&mut self, ns: NamespaceId) {
        self.map.entry(ns).or_default();
    }

    pub(super) fn remove(&mut self, ns: &NamespaceId) -> bool {
        self.map.remove(ns).is_some()
    }

    pub(super) fn get_mut(&mut self, ns: &NamespaceId) -> Option<&mut NamespaceState> {
        self.map.get_mut(ns)
    }

    pub(super) fn get(&self, ns: &NamespaceId) -> Option<&NamespaceState> {
        self.map.get(ns)
    }

    #[cfg(any(test, feature = "fuzzing", feature = "invariants"))]
    pub(super) fn iter(&self) -> impl Iterator<Item = (&NamespaceId, &NamespaceState)> {
        self.map.iter()
    }

    pub(super) fn namespaces(&self) -> impl Iterator<Item = &NamespaceId> {
        self.map.keys()
    }

    /// The peer's state, created on first use. When the document tracks `max_peers` already,
    /// the least recently active idle peer (no sync running, no dial waiting, no retry armed)
    /// is dropped to make room: throwaway ids cannot lock new peers out. Its useful-peer
    /// record in the store stays. `None` only if every tracked peer is busy. O(max_peers)
    /// when the table is full.
    pub(super) fn peer(
        &mut self,
        ns: &NamespaceId,
        peer: PeerId,
        now: Mono,
    ) -> Option<&mut PeerState> {
        let state = self.map.get_mut(ns)?;
        if !state.peers.contains_key(&peer) && state.peers.len() >= self.max_peers {
            let victim = state
                .peers
                .iter()
                .filter(|(_, p)| {
                    p.state == SyncState::Idle && p.dial_queued.is_none() && p.retry_at.is_none()
                })
                .min_by_key(|(id, p)| (p.last_active, **id))
                .map(|(id, _)| *id)?;
            state.peers.remove(&victim);
            self.evicted += 1;
        }
        Some(state.peers.get_or_insert_with(peer, || PeerState {
            last_active: now,
            ..PeerState::default()
        }))
    }

    /// Whether a dial may start; marks it running. A report, a new neighbour or a direct join
    /// during a running sync queues one re-sync instead: entries written while that sync runs
    /// (and before gossip connects the two) may be in neither the reconciliation nor any
    /// broadcast. iroh-docs re-syncs only for reports, and loses such entries (the race behind
    /// its flaky `test_download_policies`, iroh #2319).
    pub(super) fn start_connect(
        &mut self,
        ns: &NamespaceId,
        peer: PeerId,
        reason: SyncReason,
        now: Now,
    ) -> bool {
        let Some(state) = self.peer(ns, peer, now.mono) else {
            return false;
        };
        match state.state {
            SyncState::Running { .. } => {
                if matches!(
                    reason,
                    SyncReason::SyncReport | SyncReason::NewNeighbor | SyncReason::DirectJoin
                ) {
                    state.resync_requested = true;
                }
                false
            }
            SyncState::Idle => {
                state.state = SyncState::Running {
                    start: now,
                    origin: Origin::Connect(reason),
                };
                state.resync_requested = false;
                state.retry_at = None;
                state.refused_retry = false;
                true
            }
        }
    }

    /// Accept rules: not syncing → NotFound; already accepting → AlreadySyncing; dialing each
    /// other at the same time → the peer with the larger id accepts.
    pub(super) fn accept_request(
        &mut self,
        me: &PeerId,
        ns: &NamespaceId,
        peer: PeerId,
        now: Now,
    ) -> AcceptOutcome {
        if !self.is_syncing(ns) {
            return AcceptOutcome::Reject(AbortReason::NotFound);
        }
        let Some(state) = self.peer(ns, peer, now.mono) else {
            return AcceptOutcome::Reject(AbortReason::InternalServerError);
        };
        let outcome = match state.state {
            SyncState::Idle => AcceptOutcome::Allow,
            SyncState::Running {
                origin: Origin::Accept,
                ..
            } => AcceptOutcome::Reject(AbortReason::AlreadySyncing),
            SyncState::Running {
                origin: Origin::Connect(_),
                ..
            } => {
                if me.as_bytes() > peer.as_bytes() {
                    AcceptOutcome::Allow
                } else {
                    AcceptOutcome::Reject(AbortReason::AlreadySyncing)
                }
            }
        };
        if outcome == AcceptOutcome::Allow {
            state.state = SyncState::Running {
                start: now,
                origin: Origin::Accept,
            };
            state.resync_requested = false;
        }
        outcome
    }

    /// Ends the running sync of `origin`: returns its start and whether a re-sync is queued.
    /// `None` if the document is no longer synced or no such sync was running.
    pub(super) fn finish(
        &mut self,
        ns: &NamespaceId,
        peer: PeerId,
        origin: Origin,
    ) -> Option<(Now, bool)> {
        let state = self.map.get_mut(ns)?.peers.get_mut(&peer)?;
        match state.state {
            SyncState::Running { start, origin: o } if o == origin => {
                state.state = SyncState::Idle;
                Some((start, state.resync_requested))
            }
            _ => None,
        }
    }

    /// Drops a dial that the peer refused because it is dialing us: the reverse sync will
    /// arrive as an accept. Unlike iroh-docs, the state does not stay "running" if it never
    /// does.
    pub(super) fn cancel_connect(&mut self, ns: &NamespaceId, peer: PeerId) {
        if let Some(state) = self.map.get_mut(ns).and_then(|s| s.peers.get_mut(&peer)) {
            if let SyncState::Running {
                origin: Origin::Connect(_),
                ..
            } = state.state
            {
                state.state = SyncState::Idle;
            }
        }
    }
}

impl Live {
    pub(super) fn schedule_retry(&mut self, ns: NamespaceId, peer: PeerId, ok: bool) {
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
        self.timers.set(Timer::Retry(ns, peer), at);
        self.stats.retries_scheduled += 1;
    }

    /// A scheduled retry of a failed dial is due.
    pub(super) fn on_retry_timer(&mut self, ns: NamespaceId, peer: PeerId) {
        if let Some(p) = self
            .states
            .get_mut(&ns)
            .and_then(|s| s.peers.get_mut(&peer))
        {
            p.retry_at = None;
            p.refused_retry = false;
            self.sync_with_peer(ns, peer, SyncReason::Retry);
        }
    }
}
