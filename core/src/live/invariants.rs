//! Self-checks of [`Live`] for tests, fuzzing and the simulator (features `fuzzing`,
//! `invariants`): [`Live::check_invariants`] verifies what must hold between any two
//! inputs, [`Live::pending`] says in one sentence why the node has not settled, and
//! [`Live::plant_bug`] corrupts the state on purpose so the simulator can prove it notices.
//!
//! The invariants, each named by an [`InvariantViolation`] variant:
//!
//! * Sessions and peer states agree, one to one. A peer marked as syncing (`Running` with an
//!   origin) is held by exactly one open session of that document, peer and origin, and a
//!   session that holds peer state belongs to a synced document whose peer is marked as
//!   syncing with the session's origin. (When two dials cross and we accept, the accepted
//!   session takes the state over from our dial; leaving a document releases the state of
//!   its sessions.)
//! * Downloads: hashes in flight are queued; no hash is both missing and queued; the queue
//!   by document mirrors the documents of each queued hash; tracked hashes (missing +
//!   queued), downloads in flight and providers per hash stay within their configured bounds.
//! * Timers: the table's two maps agree; every armed timer refers to a live object with the
//!   same instant (a session's idle deadline, a peer's `retry_at`, a synced document, a
//!   missing hash with providers); every session and every scheduled retry has its timer.
//! * Queues: each session's backlog within `max_session_backlog`.
//! * Admission: the session counts by direction and peer match the open sessions and stay
//!   within `max_sessions`, `max_accepted_sessions` and `max_sessions_per_peer`; every
//!   waiting dial is flagged on its peer state and every flag has its waiting dial; a
//!   reserved anti-entropy slot has its timer; store work in flight for gossip matches its
//!   count and stays within `max_gossip_store`.
//! * Store replies arrive in emission order: each reply answers the oldest outstanding
//!   request.

use std::fmt::Write as _;

use super::{
    peers::SyncState,
    session::Phase,
    timer::Timer,
    types::{Origin, Role, SessionId, TimerCounts},
    Cont, Live,
};
use crate::{hash::PeerId, keys::NamespaceId};

/// An invariant of [`Live`] that does not hold. See the `invariants` module docs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvariantViolation {
    /// A peer is marked as syncing but no open session holds that state.
    #[error("peer {peer} of {namespace:?} is marked as syncing ({origin:?}) but not held by exactly one session")]
    PeerWithoutSession {
        /// Document.
        namespace: NamespaceId,
        /// Peer.
        peer: PeerId,
        /// The origin the state records.
        origin: Origin,
    },
    /// A session holds peer state that the document does not record.
    #[error("session {session:?} holds the state of peer {peer} but the peer is not marked as syncing with its origin")]
    SessionWithoutPeer {
        /// Session.
        session: SessionId,
        /// Peer.
        peer: PeerId,
    },
    /// The download tracker's sets disagree or exceed a bound.
    #[error("downloads: {0}")]
    Downloads(&'static str),
    /// A timer refers to an object that does not exist, or at another instant.
    #[error("timer {timer} refers to nothing at that instant")]
    DanglingTimer {
        /// The timer, for humans.
        timer: String,
    },
    /// An object that must be timed has no timer.
    #[error("{0} has no timer")]
    MissingTimer(String),
    /// The timer table's maps disagree, or it holds more timers than objects to time.
    #[error("the timer table's maps disagree or exceed their bound")]
    TimerTable,
    /// The session counts, their bounds or the waiting dials disagree with the sessions and
    /// peer states.
    #[error("admission: {0}")]
    Admission(&'static str),
    /// A session's backlog exceeds its bound.
    #[error("session {0:?} holds more messages than its backlog bound")]
    Backlog(SessionId),
    /// A store reply answered another request than the oldest outstanding one.
    #[error("store reply for request {got} while request {expected} was the oldest outstanding")]
    ReplyOrder {
        /// The oldest outstanding request.
        expected: u64,
        /// The request answered.
        got: u64,
    },
}

/// A deliberate corruption of `Live`'s state, to show that the checks notice (tests and the
/// simulator only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedBug {
    /// Forget the first open session without ending it: its peer stays marked as syncing and
    /// its idle timer stays armed. Returns whether there was a session to forget.
    LeakSession,
}

impl Live {
    /// How many timers of each kind are armed.
    pub fn timer_counts(&self) -> TimerCounts {
        let mut counts = TimerCounts::default();
        for (timer, _) in self.timers.iter() {
            match timer {
                Timer::SessionIdle(_) => counts.session_idle += 1,
                Timer::Retry(..) => counts.retry += 1,
                Timer::AntiEntropy(_) => counts.anti_entropy += 1,
                Timer::DownloadRetry(_) => counts.download_retry += 1,
                Timer::GossipRejoin(_) => counts.gossip_rejoin += 1,
            }
        }
        counts
    }

    /// A digest of everything `Live` decides with, except its timers and its clock: if
    /// [`Live::handle_timeout`] leaves it unchanged, the call did nothing.
    pub fn activity_digest(&self) -> String {
        format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}",
            self.sessions,
            self.admission,
            self.anti_entropy,
            self.states,
            self.downloads,
            self.scans,
            self.pending,
            self.subscribers,
            self.store_subscribed,
            self.outputs,
            self.stats,
            self.shutting_down,
        )
    }

    /// Verifies the invariants listed in the `invariants` module docs.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        if let Some((expected, got)) = self.reply_order_violation {
            return Err(InvariantViolation::ReplyOrder { expected, got });
        }
        if !self.shutting_down {
            self.check_sessions_and_peers()?;
        }
        self.check_admission()?;
        self.downloads
            .check(
                self.config.max_concurrent_downloads.max(1),
                self.config.max_tracked_hashes,
                self.config.max_providers_per_hash,
            )
            .map_err(InvariantViolation::Downloads)?;
        self.check_timers()?;
        for (id, s) in &self.sessions {
            if s.backlog.len() > self.config.max_session_backlog {
                return Err(InvariantViolation::Backlog(*id));
            }
        }
        Ok(())
    }

    fn check_sessions_and_peers(&self) -> Result<(), InvariantViolation> {
        for (ns, state) in self.states.iter() {
            // A reserved anti-entropy slot is only held through the document's timer.
            if state.rounds.paid && self.timers.get(&Timer::AntiEntropy(*ns)).is_none() {
                return Err(InvariantViolation::MissingTimer(format!(
                    "the reserved anti-entropy round of {ns:?}"
                )));
            }
            for (peer, p) in &state.peers {
                if let SyncState::Running { origin, .. } = p.state {
                    let forming = self.v2.forming.get(peer).is_some_and(|d| {
                        d.iter()
                            .any(|(n, r)| n == ns && Origin::Connect(*r) == origin)
                    });
                    let held = self
                        .sessions
                        .values()
                        .filter(|s| s.peer == *peer && s.holds(ns, origin))
                        .count()
                        + usize::from(forming);
                    if held != 1 {
                        return Err(InvariantViolation::PeerWithoutSession {
                            namespace: *ns,
                            peer: *peer,
                            origin,
                        });
                    }
                }
            }
        }
        for (id, s) in &self.sessions {
            if !s.holds_peer_state {
                continue;
            }
            let is_running = |ns: &NamespaceId, origin: Origin| {
                self.states.get(ns).is_some_and(|st| {
                    st.peers.get(&s.peer).is_some_and(
                        |p| matches!(p.state, SyncState::Running { origin: o, .. } if o == origin),
                    )
                })
            };
            let running = match &s.v2 {
                Some(docs) => docs
                    .iter()
                    .all(|(ns, r)| is_running(ns, Origin::Connect(*r))),
                None => s.namespace.is_some_and(|ns| is_running(&ns, s.origin)),
            };
            if !running {
                return Err(InvariantViolation::SessionWithoutPeer {
                    session: *id,
                    peer: s.peer,
                });
            }
        }
        Ok(())
    }

    fn check_admission(&self) -> Result<(), InvariantViolation> {
        use std::collections::BTreeMap;
        let (dialed, accepted) = self.admission.open();
        let per_peer = self.admission.per_peer();
        let mut counted: BTreeMap<PeerId, [usize; 2]> = BTreeMap::new();
        for s in self.sessions.values() {
            counted.entry(s.peer).or_default()[usize::from(s.id.role == Role::Accept)] += 1;
        }
        // Served v2 rounds count as accepted sessions.
        let mut served: BTreeMap<PeerId, usize> = BTreeMap::new();
        for peer in self.v2.served.values() {
            counted.entry(*peer).or_default()[1] += 1;
            *served.entry(*peer).or_default() += 1;
        }
        if served != *self.v2.served_peers() {
            return Err(InvariantViolation::Admission(
                "served v2 rounds per peer differ from the rounds served",
            ));
        }
        let total = |slot: usize| counted.values().map(|n| n[slot]).sum::<usize>();
        if counted != *per_peer || total(0) != dialed || total(1) != accepted {
            return Err(InvariantViolation::Admission(
                "session counts differ from the open sessions",
            ));
        }
        let cap = self.config.max_sessions_per_peer;
        if dialed > self.config.max_sessions
            || accepted > self.config.max_accepted_sessions
            || per_peer.values().any(|n| n[0] > cap || n[1] > cap)
        {
            return Err(InvariantViolation::Admission("sessions over their bounds"));
        }
        let mut waiting = 0;
        for (peer, ns) in self.admission.waiting_entries() {
            waiting += 1;
            let queued = self
                .states
                .get(ns)
                .and_then(|s| s.peers.get(peer))
                .is_some_and(|p| p.dial_queued.is_some());
            if !queued {
                return Err(InvariantViolation::Admission(
                    "a waiting dial without its peer state",
                ));
            }
        }
        let gossip = self
            .pending
            .values()
            .filter(|c| matches!(c, Cont::GossipPut { .. } | Cont::News { .. }))
            .count();
        if gossip != self.gossip_load.total() || gossip > self.config.max_gossip_store {
            return Err(InvariantViolation::Admission(
                "gossip store work in flight differs from its count or exceeds its bound",
            ));
        }
        let flagged = self
            .states
            .iter()
            .flat_map(|(_, s)| s.peers.values())
            .filter(|p| p.dial_queued.is_some())
            .count();
        if flagged != waiting {
            return Err(InvariantViolation::Admission(
                "queued dials and the dial queue disagree",
            ));
        }
        Ok(())
    }

    fn check_timers(&self) -> Result<(), InvariantViolation> {
        if !self.timers.is_consistent() {
            return Err(InvariantViolation::TimerTable);
        }
        // The table's bound: one slot per object that can be timed.
        let peers: usize = self.states.iter().map(|(_, st)| st.peers.len()).sum();
        let bound =
            self.sessions.len() + peers + 2 * self.states.iter().count() + self.downloads.tracked();
        if self.timers.len() > bound {
            return Err(InvariantViolation::TimerTable);
        }
        for (timer, at) in self.timers.iter() {
            let ok = match timer {
                Timer::SessionIdle(id) => self.sessions.get(id).is_some_and(|s| s.deadline == *at),
                Timer::Retry(ns, peer) => self
                    .states
                    .get(ns)
                    .and_then(|s| s.peers.get(peer))
                    .is_some_and(|p| p.retry_at == Some(*at)),
                Timer::AntiEntropy(ns) => self.states.is_syncing(ns),
                Timer::DownloadRetry(hash) => self.downloads.awaits_retry(hash),
                Timer::GossipRejoin(ns) => self.states.is_syncing(ns),
            };
            if !ok {
                return Err(InvariantViolation::DanglingTimer {
                    timer: format!("{timer:?} at {at:?}"),
                });
            }
        }
        if self.shutting_down {
            return Ok(());
        }
        for id in self.sessions.keys() {
            if self.timers.get(&Timer::SessionIdle(*id)).is_none() {
                return Err(InvariantViolation::MissingTimer(format!("session {id:?}")));
            }
        }
        for (ns, state) in self.states.iter() {
            // A reserved anti-entropy slot is only held through the document's timer.
            if state.rounds.paid && self.timers.get(&Timer::AntiEntropy(*ns)).is_none() {
                return Err(InvariantViolation::MissingTimer(format!(
                    "the reserved anti-entropy round of {ns:?}"
                )));
            }
            for (peer, p) in &state.peers {
                if p.retry_at.is_some() && self.timers.get(&Timer::Retry(*ns, *peer)).is_none() {
                    return Err(InvariantViolation::MissingTimer(format!(
                        "the retry of peer {peer} of {ns:?}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Why this node has not settled, in one sentence: open sessions and their phases,
    /// outstanding store requests, downloads, scans and scheduled retries.
    pub fn pending(&self) -> String {
        let mut parts = Vec::new();
        if !self.sessions.is_empty() {
            let mut s = format!("{} sync sessions open (", self.sessions.len());
            for (i, (id, session)) in self.sessions.iter().take(4).enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                let phase = match &session.phase {
                    Phase::Connecting if session.v2.is_some() => "v2 round",
                    Phase::Connecting => "connecting",
                    Phase::Initializing => "initializing",
                    Phase::AwaitInit => "awaiting Init",
                    Phase::Running if session.processing => "running, store processing",
                    Phase::Running => "running",
                    Phase::Finishing(Ok(())) => "finishing",
                    Phase::Finishing(Err(_)) => "finishing after an error",
                };
                let _ = write!(
                    s,
                    "{:?} #{} with {}: {phase}",
                    id.role,
                    id.n,
                    session.peer.fmt_short()
                );
            }
            if self.sessions.len() > 4 {
                s.push_str(", …");
            }
            s.push(')');
            parts.push(s);
        }
        if !self.pending.is_empty() {
            parts.push(format!("{} store requests outstanding", self.pending.len()));
        }
        let forming: usize = self.v2.forming.values().map(Vec::len).sum();
        if forming > 0 {
            parts.push(format!("{forming} documents waiting for a v2 round"));
        }
        if !self.v2.served.is_empty() {
            parts.push(format!("{} v2 rounds being served", self.v2.served.len()));
        }
        let (in_flight, queued) = (self.downloads.in_flight(), self.downloads.queued_len());
        let missing = self.downloads.missing_len();
        if in_flight + queued + missing > 0 {
            parts.push(format!(
                "downloads: {in_flight} in flight, {queued} queued, {missing} missing without a provider"
            ));
        }
        let scans = self.scans.running();
        if scans > 0 {
            parts.push(format!("{scans} missing-content scans running or held"));
        }
        let counts = self.timer_counts();
        if counts.retry > 0 {
            parts.push(format!("{} sync retries scheduled", counts.retry));
        }
        if counts.download_retry > 0 {
            parts.push(format!(
                "{} download retries scheduled",
                counts.download_retry
            ));
        }
        if self.shutting_down {
            parts.push("shutting down".into());
        }
        if parts.is_empty() {
            "nothing pending".into()
        } else {
            parts.join("; ")
        }
    }

    /// Corrupts the state as `bug` says. Returns whether it applied.
    pub fn plant_bug(&mut self, bug: PlantedBug) -> bool {
        match bug {
            PlantedBug::LeakSession => {
                let Some(id) = self.sessions.keys().next().copied() else {
                    return false;
                };
                self.sessions.remove(&id);
                true
            }
        }
    }
}
