//! Sync v2 rounds started by `Live`: every document wanted from a peer, over one connection.
//!
//! With [`LiveConfig::sync_v2`](super::LiveConfig::sync_v2) on, a dial that `Live` decides
//! (a join, a new neighbour, a `SyncReport`, a retry, anti-entropy) marks its document and
//! peer as syncing exactly as a v1 dial does, but instead of a session per document it joins
//! the peer's *forming* round. At the end of each input, every peer with documents forming,
//! no round running and room under the dial bounds gets one round, [`Output::SyncAll`], for
//! all of them: a node that joins 1,000 documents shared with one peer dials it once. A round
//! counts as one dialed session for admission; documents wanted while a round with the peer
//! runs wait for the next one.
//!
//! When the round ends ([`Input::SyncAllEnded`]) each of its documents ends as a v1 session
//! of it would: registered as a useful peer, a `SyncReport` gossiped when entries arrived,
//! a `SyncFinished` event, the retry schedule on failure, a queued re-sync. A peer that
//! answered v1 ([`RoundOutcome::V1Only`]) is remembered (at most [`MAX_V1_PEERS`], the
//! oldest forgotten first) and its documents are dialed at once with v1, per document.
//!
//! Rounds peers open with us are admitted here ([`Input::RoundAccepted`] →
//! [`Output::RoundAdmit`]) and counted as accepted sessions (`max_accepted_sessions`, and
//! per peer), then served by the runtime ([`crate::v2::round::Round::accept`]); their inserts
//! reach `Live` as replica events like any others. Their end is reported
//! ([`Input::RoundServed`]); one that ended well ends each document it reconciled as an
//! accepted session of it would (`SyncReport` to neighbours, `SyncFinished`). A pair of peers
//! runs one round at a time: our round with a peer waits while we serve one of the peer's,
//! and when both dial at once the tie-break of `docs/sync-v2.md` §2 keeps one
//! ([`RoundOutcome::Refused`] for the other, handled as v1's `AlreadySyncing`).
//!
//! A round holds its dial slot until the runtime reports its end; the runtime bounds a round's
//! idle time, and `Live` closes a round still open after [`V2_ROUND_TIMEOUT_FACTOR`] ×
//! `session_idle_timeout`.

use std::{collections::BTreeMap, time::Duration};

use super::{error::SessionError, session::Session, timer::Timer, types::*, Live};
use crate::{hash::PeerId, keys::NamespaceId, replica::SyncOutcome, v2::round::RoundReport};

/// Peers remembered as answering v1 only.
pub const MAX_V1_PEERS: usize = 4096;
/// A round open this many session idle timeouts is closed.
pub const V2_ROUND_TIMEOUT_FACTOR: u32 = 10;

/// Sync v2 state of a `Live`.
#[derive(Debug, Default)]
pub(super) struct V2State {
    /// Documents waiting for the next round with each peer (each is marked as syncing with
    /// the peer, with its reason). A document is here at most once per peer.
    pub(super) forming: BTreeMap<PeerId, Vec<(NamespaceId, SyncReason)>>,
    /// Peers with a round running.
    pub(super) running: BTreeMap<PeerId, SessionId>,
    /// Rounds peers dialed that are being served, by session (each counted as an accepted
    /// session by admission control, so at most `max_accepted_sessions`).
    pub(super) served: BTreeMap<SessionId, PeerId>,
    /// Peers with a round being served, and how many. Derivable from `served`, kept so that
    /// each dispatch is O(log n) per peer; the invariants check that both agree.
    served_peers: BTreeMap<PeerId, usize>,
    /// Peers that answered v1, with the order they were learnt in (oldest forgotten first).
    v1_peers: BTreeMap<PeerId, u64>,
    v1_order: BTreeMap<u64, PeerId>,
    next_v1: u64,
}

impl V2State {
    fn remember_v1(&mut self, peer: PeerId) {
        if let Some(n) = self.v1_peers.remove(&peer) {
            self.v1_order.remove(&n);
        }
        if self.v1_peers.len() >= MAX_V1_PEERS {
            if let Some((_, old)) = self.v1_order.pop_first() {
                self.v1_peers.remove(&old);
            }
        }
        let n = self.next_v1;
        self.next_v1 += 1;
        self.v1_peers.insert(peer, n);
        self.v1_order.insert(n, peer);
    }

    /// Peers with a round being served, and how many.
    #[cfg(any(test, feature = "fuzzing", feature = "invariants"))]
    pub(super) fn served_peers(&self) -> &BTreeMap<PeerId, usize> {
        &self.served_peers
    }

    /// Forgets the forming dial of `ns` to `peer` (an accepted sync took its state over).
    pub(super) fn forget_dial(&mut self, ns: &NamespaceId, peer: &PeerId) {
        if let Some(docs) = self.forming.get_mut(peer) {
            docs.retain(|(n, _)| n != ns);
            if docs.is_empty() {
                self.forming.remove(peer);
            }
        }
    }

    /// Forgets a document that left the sync set.
    pub(super) fn forget_document(&mut self, ns: &NamespaceId) {
        self.forming.retain(|_, docs| {
            docs.retain(|(n, _)| n != ns);
            !docs.is_empty()
        });
    }
}

impl Live {
    /// Whether a dial to `peer` goes through a v2 round.
    pub(super) fn uses_v2(&self, peer: &PeerId) -> bool {
        self.config.sync_v2 && !self.v2.v1_peers.contains_key(peer)
    }

    /// Whether `peer` is remembered as answering v1 only.
    pub fn is_v1_only(&self, peer: &PeerId) -> bool {
        self.v2.v1_peers.contains_key(peer)
    }

    /// A dial of `ns` (already marked as syncing with `peer`) joins the peer's next round.
    pub(super) fn want_v2(&mut self, ns: NamespaceId, peer: PeerId, reason: SyncReason) {
        let docs = self.v2.forming.entry(peer).or_default();
        if !docs.iter().any(|(n, _)| *n == ns) {
            docs.push((ns, reason));
        }
    }

    /// Starts a round with every peer that has documents forming, no round running and room.
    pub(super) fn dispatch_v2(&mut self) {
        if self.v2.forming.is_empty() || self.shutting_down {
            return;
        }
        let peers: Vec<PeerId> = self.v2.forming.keys().copied().collect();
        for peer in peers {
            if !self.uses_v2(&peer) {
                // Learnt to answer v1 while these waited: dial them per document.
                let docs = self.v2.forming.remove(&peer).unwrap_or_default();
                self.dial_v1(peer, docs);
                continue;
            }
            // One round per pair of peers at a time: ours waits while we serve theirs.
            if self.v2.running.contains_key(&peer)
                || self.v2.served_peers.contains_key(&peer)
                || !self.dial_has_room(&peer)
            {
                continue;
            }
            let Some(docs) = self.v2.forming.remove(&peer) else {
                continue;
            };
            self.start_round(peer, docs);
        }
    }

    fn start_round(&mut self, peer: PeerId, docs: Vec<(NamespaceId, SyncReason)>) {
        let id = SessionId {
            role: Role::Dial,
            n: self.next_session,
        };
        self.next_session += 1;
        let deadline = self.now.mono + self.config.session_idle_timeout * V2_ROUND_TIMEOUT_FACTOR;
        let mut session = Session::new(
            id,
            peer,
            None,
            Origin::Connect(docs[0].1),
            self.now,
            deadline,
            self.config.max_frame_len,
        );
        let namespaces = docs.iter().map(|(ns, _)| *ns).collect();
        session.v2 = Some(docs);
        self.sessions.insert(id, session);
        self.admission.opened(Role::Dial, peer);
        self.timers.set(Timer::SessionIdle(id), deadline);
        self.v2.running.insert(peer, id);
        self.stats.v2_rounds += 1;
        self.push(Output::SyncAll {
            session: id,
            peer,
            namespaces,
        });
    }

    /// The runtime reports a round's end.
    pub(super) fn on_sync_all_ended(&mut self, id: SessionId, outcome: RoundOutcome) {
        let Some(mut s) = self.remove_session(id) else {
            return;
        };
        let Some(docs) = s.v2.take() else {
            // Not a round: the runtime confused its sessions. End it as failed.
            return self.conclude(s, Err(SessionError::UnexpectedConnect));
        };
        self.release_scans();
        match outcome {
            RoundOutcome::V1Only => {
                self.stats.v2_v1_only += 1;
                self.v2.remember_v1(s.peer);
                if s.holds_peer_state {
                    self.dial_v1(s.peer, docs);
                }
            }
            RoundOutcome::Refused => {
                // The peer dials us at the same time and serves that round instead; as v1's
                // `AlreadySyncing`, not a failure.
                self.stats.v2_crossed += 1;
                if s.holds_peer_state {
                    for (ns, _) in docs {
                        self.crossing_refused(ns, s.peer);
                    }
                }
            }
            RoundOutcome::Synced(report) => {
                self.stats.sync_connect_ok += 1;
                let mut by_doc = self.round_outcomes(report);
                for (ns, reason) in docs {
                    let outcome = by_doc.remove(&ns).unwrap_or_default();
                    self.conclude_doc(&s, ns, Origin::Connect(reason), &outcome, &Ok(()));
                }
            }
            RoundOutcome::Failed(e) => {
                self.stats.sync_connect_failed += 1;
                let result = Err(e);
                for (ns, reason) in docs {
                    let outcome = SyncOutcome::default();
                    self.conclude_doc(&s, ns, Origin::Connect(reason), &outcome, &result);
                }
            }
        }
    }

    /// Counts a round's entries and sums them per document.
    fn round_outcomes(&mut self, report: RoundReport) -> BTreeMap<NamespaceId, SyncOutcome> {
        self.stats.entries_received_sync += report.entries_received;
        self.stats.entries_sent_sync += report.entries_sent;
        let mut by_doc: BTreeMap<NamespaceId, SyncOutcome> = BTreeMap::new();
        for d in report.docs {
            let o = by_doc.entry(d.namespace).or_default();
            o.num_recv += d.stats.entries_received as usize;
            o.num_sent += d.stats.entries_sent as usize;
            o.heads_received.merge(&d.heads);
        }
        by_doc
    }

    /// A peer dialed a round: admit it (as an accepted session) or refuse it.
    ///
    /// The tie-break of `docs/sync-v2.md` §2: while our own round with the peer runs, the
    /// node with the smaller id refuses the peer's round with `Duplicate` and keeps its own;
    /// the larger serves the peer's (its own is refused there). So two nodes that dial each
    /// other at once reconcile their documents once, not twice.
    pub(super) fn on_round_accepted(&mut self, session: SessionId, peer: PeerId) {
        use crate::v2::codec::AbortCode;
        let refusal = if !self.config.sync_v2 || self.shutting_down || peer == self.me {
            Some(AbortCode::Unavailable)
        } else if self.v2.running.contains_key(&peer) && self.me.as_bytes() < peer.as_bytes() {
            self.stats.v2_crossed += 1;
            Some(AbortCode::Duplicate)
        } else if self.accept_refusal(&peer).is_some() || self.v2.served.contains_key(&session) {
            self.stats.sessions_refused += 1;
            Some(AbortCode::Unavailable)
        } else {
            None
        };
        if refusal.is_none() {
            self.v2.served.insert(session, peer);
            *self.v2.served_peers.entry(peer).or_default() += 1;
            self.admission.opened(Role::Accept, peer);
        }
        self.push(Output::RoundAdmit { session, refusal });
    }

    /// A round a peer dialed and this node served ended. If it ended well, each document it
    /// reconciled that is synced here ends as an accepted v1 session of it would (the peer
    /// is useful, neighbours get a `SyncReport` of what arrived, a `SyncFinished` event),
    /// without touching the peer's dial state (a served round never holds it).
    pub(super) fn on_round_served(
        &mut self,
        session: SessionId,
        report: Option<RoundReport>,
        took: Duration,
    ) {
        let Some(peer) = self.v2.served.remove(&session) else {
            return;
        };
        if let Some(n) = self.v2.served_peers.get_mut(&peer) {
            *n -= 1;
            if *n == 0 {
                self.v2.served_peers.remove(&peer);
            }
        }
        self.admission.closed(Role::Accept, peer);
        let Some(report) = report else {
            self.stats.sync_accept_failed += 1;
            return;
        };
        if self.shutting_down {
            return;
        }
        self.stats.sync_accept_ok += 1;
        let now = self.now;
        for (ns, outcome) in self.round_outcomes(report) {
            if !self.states.is_syncing(&ns) {
                continue;
            }
            self.crossing_served(ns, peer);
            self.synced_with(ns, peer, &outcome);
            self.note_synced(ns, peer, false);
            let event = SyncEvent {
                peer,
                origin: Origin::Accept,
                started_micros: now.wall_micros.saturating_sub(took.as_micros() as u64),
                finished_micros: now.wall_micros,
                connect: Duration::ZERO,
                process: took,
                result: Ok(SyncDetails {
                    entries_received: outcome.num_recv,
                    entries_sent: outcome.num_sent,
                    messages_sent: 0,
                    messages_received: 0,
                }),
            };
            self.push(Output::Event {
                namespace: ns,
                event: LiveEvent::SyncFinished(event),
            });
            self.content_ready_after_sync(ns);
        }
    }

    /// Dials `docs` (marked as syncing with `peer` for a round) with v1 instead.
    fn dial_v1(&mut self, peer: PeerId, docs: Vec<(NamespaceId, SyncReason)>) {
        for (ns, reason) in docs {
            self.states.cancel_connect(&ns, peer);
            self.sync_with_peer(ns, peer, reason);
        }
    }

    /// A round's session is gone (ended, failed or closed): the peer may get the next one.
    pub(super) fn round_removed(&mut self, s: &Session) {
        if s.v2.is_some() && self.v2.running.get(&s.peer) == Some(&s.id) {
            self.v2.running.remove(&s.peer);
        }
    }
}
