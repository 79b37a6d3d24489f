//! Anti-entropy: the periodic re-sync of every document with the peers it knows, budgeted so
//! that a node with thousands of documents does bounded background work.
//!
//! Anti-entropy repairs what gossip missed (a node that was offline, a lost broadcast). It is
//! background work: nothing waits for it, so it must never crowd out syncs that someone does
//! wait for, and its cost must not grow with the number of documents a node holds. A node
//! with 1,000 documents and a 30 s interval would otherwise dial about 33 syncs a second
//! forever, and so would its peer. Three rules keep it bounded:
//!
//! * **Spread.** A document's first round comes at a uniformly drawn instant within one
//!   interval of joining, and every later round `interval ± 10%` after the previous one
//!   (drawn from the seeded rng). Documents joined together, as after a restart, do not fire
//!   together, and two nodes do not stay in lock step.
//! * **Skip what is fresh.** A round skips a peer that completed a sync of the document with
//!   us since the document's previous round (within one interval for the first round), other
//!   than a sync our own anti-entropy dialed. So when two nodes run anti-entropy for the same
//!   document, the one that fires second finds the first one's sync and skips: one session
//!   per pair of nodes per interval instead of two. A round that skips every peer costs no
//!   budget.
//! * **A rate per node.** At most [`LiveConfig::anti_entropy_max_per_sec`] anti-entropy
//!   sessions start per second, with a burst of one second's worth (a generic cell rate
//!   algorithm: `tat`, the theoretical arrival time of the next session). A round over budget
//!   reserves its slot and moves the document's own timer to that slot; when the timer fires
//!   again the round runs without charging twice. The reservations form an implicit queue in
//!   the timer table: no extra structure, at most one slot per document, each document's
//!   timer fires at most twice per round. When every document waits, a document's effective
//!   interval is `documents × peers / rate`, never more work per second.
//!
//! [`LiveConfig::anti_entropy_max_per_sec`]: super::LiveConfig::anti_entropy_max_per_sec

use std::time::Duration;

use rand_core::Rng;

use super::{peers::SyncState, timer::Timer, types::SyncReason, Live};
use crate::{hash::PeerId, keys::NamespaceId, time::Mono};

/// Per-node anti-entropy budget state.
#[derive(Debug, Default)]
pub(super) struct AntiEntropyBudget {
    /// Theoretical arrival time of the next session (GCRA): the budget is spent up to here.
    tat: Mono,
}

/// Per-document anti-entropy state (part of the document's `NamespaceState`).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct DocRounds {
    /// When the previous round ran (skipped or not).
    pub(super) last_round: Option<Mono>,
    /// The next round has a reserved, already charged slot (its timer is armed at it).
    pub(super) paid: bool,
}

impl Live {
    /// Arms the first round of a document that just joined: somewhere within one interval.
    pub(super) fn arm_first_anti_entropy(&mut self, ns: NamespaceId) {
        let Some(every) = self.config.anti_entropy_interval else {
            return;
        };
        if !self.states.is_syncing(&ns) {
            return;
        }
        let every = micros(every).max(1);
        let delay = self.rng.next_u64() % every;
        // Strictly later than now: one `handle_timeout` call runs a document's round once.
        let at = Mono(self.now.mono.0.saturating_add(delay.max(1)));
        if let Some(state) = self.states.get_mut(&ns) {
            state.rounds = DocRounds::default();
        }
        self.timers.set(Timer::AntiEntropy(ns), at);
    }

    /// The document's anti-entropy timer fired: run its round, or reserve a slot for it.
    pub(super) fn on_anti_entropy(&mut self, ns: NamespaceId) {
        let Some(every) = self.config.anti_entropy_interval else {
            return;
        };
        let now = self.now.mono;
        let Some(state) = self.states.get_mut(&ns) else {
            return;
        };
        // Syncs since the previous round make a peer fresh; before the first round, those of
        // the last interval do.
        let floor = state
            .rounds
            .last_round
            .unwrap_or(Mono(now.0.saturating_sub(micros(every))));
        let mut due: Vec<PeerId> = Vec::new();
        let mut fresh = 0u64;
        for (peer, p) in &state.peers {
            if p.last_synced.is_some_and(|t| t >= floor) {
                fresh += 1;
            } else if p.state == SyncState::Idle {
                due.push(*peer);
            }
        }
        if !due.is_empty() && !state.rounds.paid {
            if let Some(slot) = self.anti_entropy_charge(due.len() as u64) {
                if let Some(state) = self.states.get_mut(&ns) {
                    state.rounds.paid = true;
                }
                self.stats.anti_entropy_deferred += 1;
                self.timers.set(Timer::AntiEntropy(ns), slot);
                return;
            }
        }
        if let Some(state) = self.states.get_mut(&ns) {
            state.rounds = DocRounds {
                last_round: Some(now),
                paid: false,
            };
        }
        self.stats.anti_entropy_rounds += 1;
        self.stats.anti_entropy_skipped += fresh;
        for peer in due {
            self.sync_with_peer(ns, peer, SyncReason::AntiEntropy);
        }
        // interval ± 10%, strictly later than now.
        let every = micros(every).max(1);
        let spread = every / 5;
        let jitter = self.rng.next_u64() % spread.saturating_add(1);
        let delay = (every - every / 10).saturating_add(jitter).max(1);
        self.timers
            .set(Timer::AntiEntropy(ns), Mono(now.0.saturating_add(delay)));
    }

    /// Charges `sessions` to the node's budget. `None`: within budget, run now. `Some(slot)`:
    /// over budget; the sessions are charged to the reserved `slot`, strictly after now.
    fn anti_entropy_charge(&mut self, sessions: u64) -> Option<Mono> {
        let now = self.now.mono;
        let per = 1_000_000 / u64::from(self.config.anti_entropy_max_per_sec.max(1));
        let burst = per.saturating_mul(u64::from(self.config.anti_entropy_max_per_sec.max(1)));
        let start = self.anti_entropy.tat.max(now);
        let cost = per.saturating_mul(sessions);
        // The session may start once the budget spent beyond now is within one burst.
        let allowed_at = Mono(start.0.saturating_sub(burst.saturating_sub(per)));
        self.anti_entropy.tat = Mono(start.0.saturating_add(cost));
        (allowed_at > now).then_some(allowed_at)
    }

    /// Records a completed sync with `peer` for the freshness rule (see the module docs).
    /// (Any completed sync also marks the peer active for the peer table's eviction.)
    pub(super) fn note_synced(&mut self, ns: NamespaceId, peer: PeerId, by_anti_entropy: bool) {
        let now = self.now.mono;
        if let Some(p) = self
            .states
            .get_mut(&ns)
            .and_then(|s| s.peers.get_mut(&peer))
        {
            p.last_active = now;
            if !by_anti_entropy {
                p.last_synced = Some(now);
            }
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
