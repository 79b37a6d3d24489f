//! One sync session: the per-connection state of the Init / Sync / Abort exchange.
//!
//! ```text
//!  dial:    Connecting ──connected──▶ Initializing ──init msg──▶ Running ─┐
//!  accept:  AwaitInit ──Init frame, allowed──────────────────────▶ Running ─┤
//!                     └─Init frame, refused: send Abort──────────▶ Finishing
//!  Running: frame ▶ store processes ▶ reply? send : Finishing
//!           peer FIN while idle ▶ Finishing        Abort / bad frame / timeout ▶ Closed
//!  Finishing: our FIN sent, waiting for the runtime's SyncClosed
//! ```
//!
//! Messages are processed one at a time, in order; frames that arrive while the store works
//! wait in a small bounded backlog.
//!
//! Every session transition is here: dial (`Live::sync_with_peer`), accept, the initial
//! message, processing, finishing and failing. A session ends exactly once, in
//! `conclude`, which releases its peer state and reports the `SyncFinished` event.

use std::collections::VecDeque;

use super::{
    error::*, peers::AcceptOutcome, timer::Timer, types::*, Cont, Live, MISSING_PROBES_PER_SYNC,
};
use crate::{
    hash::PeerId,
    keys::NamespaceId,
    ranger::{self, ContentStatus, Message},
    replica::{StoreCommand, SyncOutcome},
    time::{Mono, Now},
    wire::{encode_frame, AbortReason, FrameDecoder, Op, SyncMessage, SyncReport},
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Phase {
    /// Dialing; waiting for the stream.
    Connecting,
    /// Dialed; waiting for the store's initial message.
    Initializing,
    /// Accepted; waiting for the peer's `Init`.
    AwaitInit,
    /// Exchanging messages.
    Running,
    /// Our side finished; waiting for the teardown. `Ok` if reconciliation completed.
    Finishing(Result<(), SessionError>),
}

#[derive(Debug)]
pub(super) struct Session {
    pub(super) id: SessionId,
    pub(super) peer: PeerId,
    /// Known from the start when dialing, from the `Init` frame when accepting.
    pub(super) namespace: Option<NamespaceId>,
    pub(super) origin: Origin,
    pub(super) phase: Phase,
    pub(super) decoder: FrameDecoder,
    pub(super) backlog: VecDeque<Message>,
    /// A message is with the store.
    pub(super) processing: bool,
    /// The peer finished its sending side.
    pub(super) peer_finished: bool,
    pub(super) outcome: SyncOutcome,
    pub(super) messages: usize,
    /// Of `messages`, those we sent.
    pub(super) messages_sent: usize,
    pub(super) started: Now,
    pub(super) connected: Option<Mono>,
    /// Aborted if no network progress before this.
    pub(super) deadline: Mono,
    /// Whether this session holds the peer's "running" state (refused accepts do not).
    pub(super) holds_peer_state: bool,
    /// A sync v2 round (`super::v2`): the documents it was started for, each holding its
    /// peer state with its own reason. `namespace` is `None` then.
    pub(super) v2: Option<Vec<(NamespaceId, SyncReason)>>,
}

impl Session {
    pub(super) fn new(
        id: SessionId,
        peer: PeerId,
        namespace: Option<NamespaceId>,
        origin: Origin,
        now: Now,
        deadline: Mono,
        max_frame_len: u32,
    ) -> Self {
        let phase = match origin {
            Origin::Connect(_) => Phase::Connecting,
            Origin::Accept => Phase::AwaitInit,
        };
        Self {
            id,
            peer,
            namespace,
            origin,
            phase,
            decoder: FrameDecoder::new(max_frame_len),
            backlog: VecDeque::new(),
            processing: false,
            peer_finished: false,
            outcome: SyncOutcome::default(),
            messages: 0,
            messages_sent: 0,
            started: now,
            connected: None,
            deadline,
            holds_peer_state: matches!(origin, Origin::Connect(_)),
            v2: None,
        }
    }

    /// Whether this session syncs `ns` (a v1 session of it, or a v2 round started for it).
    pub(super) fn uses_document(&self, ns: &NamespaceId) -> bool {
        self.namespace == Some(*ns)
            || self
                .v2
                .as_ref()
                .is_some_and(|d| d.iter().any(|(n, _)| n == ns))
    }

    /// Whether this session holds the peer state of `ns` with `origin`.
    #[cfg(any(test, feature = "fuzzing", feature = "invariants"))]
    pub(super) fn holds(&self, ns: &NamespaceId, origin: Origin) -> bool {
        if !self.holds_peer_state {
            return false;
        }
        match &self.v2 {
            Some(docs) => docs
                .iter()
                .any(|(n, r)| n == ns && Origin::Connect(*r) == origin),
            None => self.namespace == Some(*ns) && self.origin == origin,
        }
    }

    pub(super) fn is_finishing(&self) -> bool {
        matches!(self.phase, Phase::Finishing(_))
    }
}

impl Live {
    /// A sync of `ns` ended: `PendingContentReady` now if no download of it is queued, else
    /// once the queued ones are done.
    pub(super) fn content_ready_after_sync(&mut self, ns: NamespaceId) {
        let queued = self.downloads.has_queued(&ns);
        if let Some(state) = self.states.get_mut(&ns) {
            state.may_emit_ready = queued;
        }
        if !queued {
            self.emit(ns, LiveEvent::PendingContentReady);
        }
    }

    /// Our dial of `ns` to `peer` was refused because the peer is dialing us at the same
    /// time (v1's `AlreadySyncing`, v2's `Duplicate`): its dial will sync the document.
    pub(super) fn crossing_refused(&mut self, ns: NamespaceId, peer: PeerId) {
        self.states.cancel_connect(&ns, peer);
        // The peer may also still be accepting an older dial of ours (one from before a leave
        // and re-join): then no dial of its own follows. Retry unless its dial was accepted
        // already; one accepted later replaces the retry.
        let idle = self
            .states
            .get(&ns)
            .and_then(|st| st.peers.get(&peer))
            .is_some_and(|p| p.state == super::peers::SyncState::Idle);
        if idle {
            self.schedule_retry(ns, peer, false);
            if let Some(p) = self
                .states
                .get_mut(&ns)
                .and_then(|st| st.peers.get_mut(&peer))
            {
                p.refused_retry = p.retry_at.is_some();
            }
        }
    }

    /// The peer's dial of `ns` is served here: it replaces the retry of a dial of ours the
    /// peer refused because it was dialing us (that refusal was no failure).
    pub(super) fn crossing_served(&mut self, ns: NamespaceId, peer: PeerId) {
        if let Some(p) = self
            .states
            .get_mut(&ns)
            .and_then(|st| st.peers.get_mut(&peer))
            .filter(|p| p.refused_retry)
        {
            p.refused_retry = false;
            p.retry_at = None;
            p.failures = p.failures.saturating_sub(1);
            self.timers.stop(Timer::Retry(ns, peer));
        }
    }

    pub(super) fn sync_with_peer(&mut self, ns: NamespaceId, peer: PeerId, reason: SyncReason) {
        if peer == self.me || self.shutting_down {
            return;
        }
        if !self.dial_has_room(&peer) {
            return self.queue_dial(ns, peer, reason);
        }
        if !self.states.start_connect(&ns, peer, reason, self.now) {
            return;
        }
        // A dial for any reason replaces a scheduled retry.
        self.timers.stop(Timer::Retry(ns, peer));
        if self.uses_v2(&peer) {
            return self.want_v2(ns, peer, reason);
        }
        let id = SessionId {
            role: Role::Dial,
            n: self.next_session,
        };
        self.next_session += 1;
        let deadline = self.now.mono + self.config.session_idle_timeout;
        let session = Session::new(
            id,
            peer,
            Some(ns),
            Origin::Connect(reason),
            self.now,
            deadline,
            self.config.max_frame_len,
        );
        self.sessions.insert(id, session);
        self.admission.opened(Role::Dial, peer);
        self.timers.set(Timer::SessionIdle(id), deadline);
        self.push(Output::SyncConnect { session: id, peer });
    }

    /// Removes a session and stops its idle timer: every session ends through here.
    pub(super) fn remove_session(&mut self, id: SessionId) -> Option<Session> {
        let s = self.sessions.remove(&id)?;
        self.admission.closed(s.id.role, s.peer);
        self.timers.stop(Timer::SessionIdle(id));
        self.round_removed(&s);
        Some(s)
    }

    /// The session's idle deadline passed (the timer is kept equal to it by `touch`).
    pub(super) fn on_idle_timeout(&mut self, id: SessionId) {
        self.fail_session(id, SessionError::IdleTimeout);
    }

    pub(super) fn touch(&mut self, id: SessionId) {
        let deadline = self.now.mono + self.config.session_idle_timeout;
        if let Some(s) = self.sessions.get_mut(&id) {
            // Before `Init` only the init deadline counts: a drip of bytes does not extend it.
            if s.phase == Phase::AwaitInit {
                return;
            }
            s.deadline = deadline;
            // Kept equal to the deadline, so `poll_timeout` names it exactly.
            self.timers.set(Timer::SessionIdle(id), deadline);
        }
    }

    pub(super) fn on_connected(&mut self, id: SessionId) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let (Phase::Connecting, Some(ns)) = (&s.phase, s.namespace) else {
            return self.fail_session(id, SessionError::UnexpectedConnect);
        };
        s.connected = Some(self.now.mono);
        s.phase = Phase::Initializing;
        self.touch(id);
        self.store(StoreCommand::SyncInitialMessage(ns), Cont::Initial(id));
    }

    pub(super) fn on_accepted(&mut self, id: SessionId, peer: PeerId) {
        if self.shutting_down || self.sessions.contains_key(&id) || id.role != Role::Accept {
            self.push(Output::SyncClose {
                session: id,
                reason: if self.shutting_down {
                    SessionError::Shutdown
                } else {
                    SessionError::InvalidSession
                },
            });
            return;
        }
        let mut refusal = self.accept_refusal(&peer);
        if refusal == Some(SessionLimit::AcceptedSessions) {
            // Full: the session that has waited longest for its `Init` makes room (see the
            // `admission` module docs).
            if let Some(old) = self.oldest_awaiting_init() {
                self.stats.sessions_refused += 1;
                self.fail_session(old, SessionError::Limit(SessionLimit::AcceptedSessions));
                refusal = self.accept_refusal(&peer);
            }
        }
        if let Some(limit) = refusal {
            self.stats.sessions_refused += 1;
            self.push(Output::SyncClose {
                session: id,
                reason: SessionError::Limit(limit),
            });
            return;
        }
        let deadline = self.now.mono
            + self
                .config
                .init_timeout
                .min(self.config.session_idle_timeout);
        let mut session = Session::new(
            id,
            peer,
            None,
            Origin::Accept,
            self.now,
            deadline,
            self.config
                .max_init_frame_len
                .min(self.config.max_frame_len),
        );
        session.connected = Some(self.now.mono);
        self.sessions.insert(id, session);
        self.admission.opened(Role::Accept, peer);
        self.timers.set(Timer::SessionIdle(id), deadline);
    }

    /// The accepted session that has waited longest for its `Init`, if any. Bounded by
    /// `max_accepted_sessions` + `max_sessions`.
    fn oldest_awaiting_init(&self) -> Option<SessionId> {
        self.sessions
            .values()
            .filter(|s| s.phase == Phase::AwaitInit)
            .min_by_key(|s| (s.started.mono, s.id))
            .map(|s| s.id)
    }

    pub(super) fn send(&mut self, id: SessionId, msg: &SyncMessage) -> bool {
        let mut bytes = Vec::new();
        if let Err(e) = encode_frame(msg, self.config.max_frame_len, &mut bytes) {
            self.fail_session(id, SessionError::Send(e));
            return false;
        }
        self.push(Output::SyncSend { session: id, bytes });
        true
    }

    pub(super) fn send_init(&mut self, id: SessionId, message: ranger::Message) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let Some(namespace) = s.namespace else {
            return;
        };
        s.phase = Phase::Running;
        s.messages += 1;
        s.messages_sent += 1;
        self.send(id, &SyncMessage::Init { namespace, message });
        self.maybe_finish(id);
    }

    pub(super) fn on_data(&mut self, id: SessionId, bytes: &[u8]) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if s.is_finishing() || s.phase == Phase::Connecting {
            return;
        }
        if let Err(e) = s.decoder.feed(bytes) {
            return self.fail_session(id, SessionError::BadFrame(e));
        }
        self.touch(id);
        loop {
            let Some(s) = self.sessions.get_mut(&id) else {
                return;
            };
            if s.is_finishing() {
                return;
            }
            match s.decoder.next_message() {
                Ok(None) => return,
                Ok(Some(msg)) => self.on_message(id, msg),
                Err(e) => return self.fail_session(id, SessionError::BadFrame(e)),
            }
        }
    }

    pub(super) fn on_message(&mut self, id: SessionId, msg: SyncMessage) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let (phase, peer, role) = (s.phase.clone(), s.peer, s.id.role);
        match (phase, msg) {
            (Phase::AwaitInit, SyncMessage::Init { namespace, message }) => {
                let outcome = self
                    .states
                    .accept_request(&self.me, &namespace, peer, self.now);
                let s = self.sessions.get_mut(&id).expect("checked above");
                s.namespace = Some(namespace);
                match outcome {
                    AcceptOutcome::Allow => {
                        s.holds_peer_state = true;
                        self.crossing_served(namespace, peer);
                        // Dials crossed and we accept: the peer state now belongs to this
                        // session, not to our dial (which the peer refuses).
                        for (other, o) in self.sessions.iter_mut() {
                            if *other != id && o.namespace == Some(namespace) && o.peer == peer {
                                o.holds_peer_state = false;
                            }
                            // A v2 round with the peer still reconciles it, as a bystander.
                            if let (Some(docs), true) = (&mut o.v2, o.peer == peer) {
                                docs.retain(|(n, _)| *n != namespace);
                            }
                        }
                        self.v2.forget_dial(&namespace, &peer);
                        let s = self.sessions.get_mut(&id).expect("checked above");
                        s.phase = Phase::Running;
                        // Admitted: full frames, and the idle timeout from now on.
                        s.decoder.set_max_frame_len(self.config.max_frame_len);
                        self.touch(id);
                        self.enqueue(id, message);
                    }
                    AcceptOutcome::Reject(reason) => {
                        s.phase = Phase::Finishing(Err(SessionError::Refused(reason)));
                        if self.send(id, &SyncMessage::Abort { reason }) {
                            self.push(Output::SyncFinish { session: id });
                        }
                    }
                }
            }
            (Phase::AwaitInit, msg) => {
                self.fail_session(id, SessionError::UnexpectedMessage(MessageKind::of(&msg)))
            }
            (Phase::Running, SyncMessage::Sync(message)) => self.enqueue(id, message),
            (Phase::Running | Phase::Initializing, SyncMessage::Init { .. }) => {
                self.fail_session(id, SessionError::UnexpectedMessage(MessageKind::Init))
            }
            (_, SyncMessage::Abort { reason }) if role == Role::Dial => {
                if reason == AbortReason::AlreadySyncing {
                    // The peer is dialing us at the same time and will be accepted here.
                    let s = self.remove_session(id).expect("checked above");
                    self.push(Output::SyncClose {
                        session: id,
                        reason: SessionError::RemoteAbort(reason),
                    });
                    self.release_scans();
                    if let Some(ns) = s.namespace.filter(|_| s.holds_peer_state) {
                        self.crossing_refused(ns, s.peer);
                    }
                } else {
                    self.fail_session(id, SessionError::RemoteAbort(reason));
                }
            }
            (_, msg) => {
                self.fail_session(id, SessionError::UnexpectedMessage(MessageKind::of(&msg)))
            }
        }
    }

    pub(super) fn enqueue(&mut self, id: SessionId, message: ranger::Message) {
        let max_backlog = self.config.max_session_backlog;
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if s.backlog.len() >= max_backlog {
            return self.fail_session(id, SessionError::Limit(SessionLimit::Backlog));
        }
        s.backlog.push_back(message);
        self.try_process(id);
    }

    pub(super) fn try_process(&mut self, id: SessionId) {
        let max_messages = self.config.max_session_messages;
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if s.processing || s.phase != Phase::Running {
            return;
        }
        let Some(message) = s.backlog.pop_front() else {
            return self.maybe_finish(id);
        };
        s.messages += 1;
        if s.messages > max_messages {
            return self.fail_session(id, SessionError::Limit(SessionLimit::Messages));
        }
        s.processing = true;
        let (ns, peer, outcome) = (s.namespace.expect("running"), s.peer, s.outcome.clone());
        // Learn providers for content we still miss (iroh-docs issue #82).
        for (entry, status) in message.values() {
            if *status == ContentStatus::Complete
                && self.downloads.is_missing(&entry.content_hash())
            {
                self.offer_content(ns, entry.content_hash(), peer, true);
            }
        }
        self.store(
            StoreCommand::SyncProcessMessage {
                namespace: ns,
                message,
                from: peer,
                outcome,
            },
            Cont::Process(id),
        );
    }

    pub(super) fn on_processed(
        &mut self,
        id: SessionId,
        reply: Option<ranger::Message>,
        outcome: crate::replica::SyncOutcome,
    ) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        s.processing = false;
        self.stats.entries_received_sync += (outcome.num_recv - s.outcome.num_recv) as u64;
        self.stats.entries_sent_sync += (outcome.num_sent - s.outcome.num_sent) as u64;
        s.outcome = outcome;
        match reply {
            Some(message) if !s.peer_finished => {
                s.messages += 1;
                s.messages_sent += 1;
                if self.send(id, &SyncMessage::Sync(message)) {
                    self.try_process(id);
                }
            }
            _ => self.finish_ok(id),
        }
    }

    /// Ends our loop if the peer has finished and nothing is left to process.
    pub(super) fn maybe_finish(&mut self, id: SessionId) {
        if let Some(s) = self.sessions.get(&id) {
            if s.phase == Phase::Running && !s.processing && s.backlog.is_empty() && s.peer_finished
            {
                self.finish_ok(id);
            }
        }
    }

    pub(super) fn finish_ok(&mut self, id: SessionId) {
        if let Some(s) = self.sessions.get_mut(&id) {
            if !s.is_finishing() {
                s.phase = Phase::Finishing(Ok(()));
                self.push(Output::SyncFinish { session: id });
            }
        }
    }

    pub(super) fn on_recv_finished(&mut self, id: SessionId) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        s.peer_finished = true;
        match s.phase {
            Phase::AwaitInit | Phase::Connecting | Phase::Initializing => {
                self.fail_session(id, SessionError::PeerFinishedEarly)
            }
            Phase::Running => self.maybe_finish(id),
            Phase::Finishing(_) => {}
        }
    }

    pub(super) fn on_closed(&mut self, id: SessionId, error: Option<SessionError>) {
        let Some(s) = self.remove_session(id) else {
            return;
        };
        let result = match &s.phase {
            Phase::Finishing(r) => r.clone(),
            _ => Err(error.unwrap_or(SessionError::ConnectionClosed)),
        };
        self.conclude(s, result);
    }

    pub(super) fn fail_session(&mut self, id: SessionId, reason: SessionError) {
        let Some(s) = self.remove_session(id) else {
            return;
        };
        self.push(Output::SyncClose {
            session: id,
            reason: reason.clone(),
        });
        self.conclude(s, Err(reason));
    }

    /// A session ended: held missing-content scans read their next page.
    pub(super) fn conclude(&mut self, mut s: Session, result: Result<(), SessionError>) {
        self.release_scans();
        let dial = s.id.role == Role::Dial;
        match (&result, dial) {
            (Ok(()), true) => self.stats.sync_connect_ok += 1,
            (Ok(()), false) => self.stats.sync_accept_ok += 1,
            (Err(_), true) => self.stats.sync_connect_failed += 1,
            (Err(_), false) => self.stats.sync_accept_failed += 1,
        }
        if let Some(docs) = s.v2.take() {
            for (ns, reason) in docs {
                let outcome = SyncOutcome::default();
                self.conclude_doc(&s, ns, Origin::Connect(reason), &outcome, &result);
            }
            return;
        }
        if let Some(ns) = s.namespace {
            let outcome = std::mem::take(&mut s.outcome);
            self.conclude_doc(&s, ns, s.origin, &outcome, &result);
        }
    }

    /// What a completed sync of `ns` with `peer` leads to: the peer is useful, neighbours
    /// learn of what arrived, the peer is asked for content still missing, and it becomes a
    /// gossip neighbour.
    pub(super) fn synced_with(&mut self, ns: NamespaceId, peer: PeerId, outcome: &SyncOutcome) {
        self.store(
            StoreCommand::RegisterUsefulPeer {
                namespace: ns,
                peer,
            },
            Cont::Ignore,
        );
        if outcome.num_recv > 0 {
            let heads = outcome
                .heads_received
                .encode(Some(self.config.heads_size_limit));
            self.broadcast_neighbors(
                ns,
                Op::SyncReport(SyncReport {
                    namespace: ns,
                    heads,
                }),
            );
        }
        // The peer may hold content we still miss even when it sent no entries: ask it
        // (iroh-docs never asks again, its issue #82).
        for hash in self.downloads.missing_for(&ns, MISSING_PROBES_PER_SYNC) {
            self.offer_content(ns, hash, peer, true);
        }
        self.join_if_not_neighbor(ns, peer);
    }

    /// The part of ending a session that concerns one of its documents: the store lets go of
    /// its index, its peer state ends, and the `SyncFinished` event is reported.
    pub(super) fn conclude_doc(
        &mut self,
        s: &Session,
        ns: NamespaceId,
        origin: Origin,
        outcome: &SyncOutcome,
        result: &Result<(), SessionError>,
    ) {
        let dial = s.id.role == Role::Dial;
        // The store holds a syncing document's index; the last session lets it go.
        if !self.sessions.values().any(|o| o.uses_document(&ns)) {
            self.store(StoreCommand::SyncEnded(ns), Cont::Ignore);
        }
        if !s.holds_peer_state {
            return;
        }
        let now = self.now;
        if result.is_ok() {
            self.synced_with(ns, s.peer, outcome);
        }
        let Some((started, resync)) = self.states.finish(&ns, s.peer, origin) else {
            return;
        };
        let connected = s.connected.unwrap_or(now.mono);
        let event = SyncEvent {
            peer: s.peer,
            origin,
            started_micros: started.wall_micros,
            finished_micros: now.wall_micros,
            connect: connected.saturating_since(s.started.mono),
            process: now.mono.saturating_since(connected),
            result: result.clone().map(|()| SyncDetails {
                entries_received: outcome.num_recv,
                entries_sent: outcome.num_sent,
                messages_sent: s.messages_sent,
                messages_received: s.messages - s.messages_sent,
            }),
        };
        if let Some(p) = self
            .states
            .get_mut(&ns)
            .and_then(|st| st.peers.get_mut(&s.peer))
        {
            p.last_sync = Some(Box::new(event.clone()));
        }
        // Output whether or not the document has subscribers: the runtime logs every sync.
        self.push(Output::Event {
            namespace: ns,
            event: LiveEvent::SyncFinished(event),
        });
        if result.is_ok() {
            let ours = origin == Origin::Connect(SyncReason::AntiEntropy);
            self.note_synced(ns, s.peer, ours);
        }
        self.content_ready_after_sync(ns);
        if dial {
            self.schedule_retry(ns, s.peer, result.is_ok());
        }
        // After a failed dial the retry schedule decides when to dial again.
        if resync && !(dial && result.is_err()) {
            self.sync_with_peer(ns, s.peer, SyncReason::Resync);
        }
    }
}
