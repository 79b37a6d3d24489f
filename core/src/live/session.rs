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

use std::collections::VecDeque;

use super::types::{Origin, SessionId};
use crate::{
    hash::PeerId,
    keys::NamespaceId,
    ranger::Message,
    replica::SyncOutcome,
    time::{Mono, Now},
    wire::FrameDecoder,
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
    Finishing(Result<(), String>),
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
    pub(super) started: Now,
    pub(super) connected: Option<Mono>,
    /// Aborted if no network progress before this.
    pub(super) deadline: Mono,
    /// Whether this session holds the peer's "running" state (refused accepts do not).
    pub(super) holds_peer_state: bool,
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
            started: now,
            connected: None,
            deadline,
            holds_peer_state: matches!(origin, Origin::Connect(_)),
        }
    }

    pub(super) fn is_finishing(&self) -> bool {
        matches!(self.phase, Phase::Finishing(_))
    }
}
