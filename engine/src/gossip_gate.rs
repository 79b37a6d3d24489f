//! The gate in front of iroh-gossip: peers `Live` bans lose their gossip connections.
//!
//! `Live` mutes a peer that sent, as its author's own node, a gossip `Put` whose signature
//! does not hold, and drops its `Put`s for a while. Dropping them in `Live` is late: each one
//! has already cost the gossip layer a QUIC read, a message id to hash and remember and a
//! copy relayed to every neighbour, and each neighbour pays the same again. Under a flood
//! that work, not the store, is what slows honest live updates down. So `Live` also asks for
//! a ban ([`Output::GossipBan`](sheaf_core::live::Output::GossipBan)), and the gate carries
//! it out: it closes the peer's gossip connections and refuses new ones until the ban ends.
//! iroh-gossip sees a closed connection as the peer leaving.
//!
//! The gate sees gossip connections in two places:
//! - as the router's handler for iroh-gossip's ALPN ([`GatedGossip`], mounted by
//!   [`crate::Docs::router`]): connections peers open to us;
//! - as the endpoint's hooks ([`GossipGate::hooks`], installed when the endpoint is built):
//!   connections in both directions, including those our own gossip dials. iroh-gossip dials
//!   peers that others name (a flooding peer that joined one node gets dialed by its
//!   neighbours), so without the hooks those links stay open; the peer's `Put`s are still
//!   muted in `Live`, but the gossip layer keeps carrying them.
//!
//! An endpoint serves one engine: give the gate whose hooks it has to that engine's builder
//! ([`crate::Builder::gossip_gate`]).
//!
//! # Bounds
//!
//! At most [`MAX_BANNED`] bans (`Live` mutes at most as many peers at once) and the
//! connections of at most [`MAX_TRACKED`] peers are remembered, as weak handles (the gate
//! never keeps a connection open). Closed connections and ended bans are pruned on every
//! change; when the connection table is still full, the peer tracked longest is forgotten
//! (its connections can then not be cut, only its `Put`s muted).

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use iroh::{
    endpoint::{
        AfterHandshakeOutcome, BeforeConnectOutcome, Connection, EndpointHooks,
        WeakConnectionHandle,
    },
    protocol::{AcceptError, ProtocolHandler},
    EndpointAddr, EndpointId,
};
use iroh_gossip::net::Gossip;

use crate::metrics::Metrics;

/// Most bans held at once (the core's mute table has the same bound).
pub const MAX_BANNED: usize = sheaf_core::live::MAX_MUTED;
/// Most peers whose gossip connections are remembered.
pub const MAX_TRACKED: usize = 4096;
/// The QUIC error code of a gossip connection closed for a ban.
const BANNED: u32 = 0x5348_4246;
const REASON: &[u8] = b"banned: forged gossip";

#[derive(Debug, Default)]
struct State {
    banned: BTreeMap<EndpointId, Instant>,
    /// Gossip connections per peer (by stable id), and the peers in the order first tracked.
    conns: BTreeMap<EndpointId, Vec<(usize, WeakConnectionHandle)>>,
    order: VecDeque<EndpointId>,
}

impl State {
    fn is_banned(&mut self, peer: &EndpointId, now: Instant) -> bool {
        match self.banned.get(peer) {
            Some(until) if *until > now => true,
            Some(_) => {
                self.banned.remove(peer);
                false
            }
            None => false,
        }
    }

    /// Forgets closed connections and peers left without any.
    fn prune(&mut self) {
        self.conns.retain(|_, conns| {
            conns.retain(|(_, c)| c.upgrade().is_some_and(|c| c.close_reason().is_none()));
            !conns.is_empty()
        });
        let conns = &self.conns;
        self.order.retain(|p| conns.contains_key(p));
    }

    fn track(&mut self, peer: EndpointId, conn: &Connection) {
        if !self.conns.contains_key(&peer) {
            if self.conns.len() >= MAX_TRACKED {
                self.prune();
            }
            if self.conns.len() >= MAX_TRACKED {
                if let Some(oldest) = self.order.pop_front() {
                    self.conns.remove(&oldest);
                }
            }
            self.order.push_back(peer);
        }
        let conns = self.conns.entry(peer).or_default();
        conns.retain(|(_, c)| c.upgrade().is_some_and(|c| c.close_reason().is_none()));
        let id = conn.stable_id();
        if !conns.iter().any(|(known, _)| *known == id) {
            conns.push((id, conn.weak_handle()));
        }
    }
}

/// Bans shared by the engine's live task (which adds them), [`GatedGossip`] and the
/// endpoint hooks ([`GossipGate::hooks`]), which enforce them. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct GossipGate {
    state: Arc<Mutex<State>>,
    metrics: Arc<OnceLock<Arc<Metrics>>>,
}

impl GossipGate {
    /// A gate without bans.
    pub fn new() -> Self {
        Self::default()
    }

    /// Hooks to install on the endpoint (`Endpoint::builder(..).hooks(gate.hooks())`) so that
    /// the gate also cuts gossip connections this node dials and refuses dials to banned
    /// peers; give the same gate to [`crate::Builder::gossip_gate`].
    pub fn hooks(&self) -> GateHooks {
        GateHooks(self.clone())
    }

    /// Counts into `metrics` from now on (the first engine's).
    pub(crate) fn attach(&self, metrics: Arc<Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    fn count_cut(&self) {
        if let Some(m) = self.metrics.get() {
            m.gossip_connections_cut.inc();
        }
    }

    /// Bans `peer` for `period` from `now`: closes its gossip connections at once.
    pub(crate) fn ban(&self, peer: EndpointId, now: Instant, period: Duration) {
        let Ok(mut s) = self.state.lock() else { return };
        s.banned.retain(|_, until| *until > now);
        if s.banned.len() >= MAX_BANNED && !s.banned.contains_key(&peer) {
            if let Some(first) = s.banned.iter().min_by_key(|(_, t)| **t).map(|(p, _)| *p) {
                s.banned.remove(&first);
            }
        }
        s.banned.insert(peer, now + period);
        if let Some(m) = self.metrics.get() {
            m.gossip_bans.inc();
        }
        for (_, weak) in s.conns.remove(&peer).unwrap_or_default() {
            if let Some(conn) = weak.upgrade().filter(|c| c.close_reason().is_none()) {
                conn.close(BANNED.into(), REASON);
                self.count_cut();
            }
        }
        s.order.retain(|p| *p != peer);
        tracing::info!(peer = %peer.fmt_short(), ?period, "gossip connections cut: forged Put");
    }

    /// Whether a gossip connection of `peer` may stay open now; tracks it if so.
    fn admit(&self, conn: &Connection, now: Instant) -> bool {
        let peer = conn.remote_id();
        let Ok(mut s) = self.state.lock() else {
            return true;
        };
        if s.is_banned(&peer, now) {
            self.count_cut();
            return false;
        }
        s.track(peer, conn);
        true
    }

    fn may_dial(&self, peer: &EndpointId, now: Instant) -> bool {
        let Ok(mut s) = self.state.lock() else {
            return true;
        };
        !s.is_banned(peer, now)
    }
}

/// The [`EndpointHooks`] of a [`GossipGate`]: gossip connections of banned peers are refused
/// after the handshake, in both directions, and dials to them are not started. Other ALPNs
/// pass untouched.
#[derive(Debug, Clone)]
pub struct GateHooks(GossipGate);

impl EndpointHooks for GateHooks {
    async fn before_connect<'a>(
        &'a self,
        remote_addr: &'a EndpointAddr,
        alpn: &'a [u8],
    ) -> BeforeConnectOutcome {
        if alpn == iroh_gossip::ALPN && !self.0.may_dial(&remote_addr.id, Instant::now()) {
            self.0.count_cut();
            return BeforeConnectOutcome::Reject;
        }
        BeforeConnectOutcome::Accept
    }

    async fn after_handshake<'a>(&'a self, conn: &'a Connection) -> AfterHandshakeOutcome {
        if conn.alpn() == iroh_gossip::ALPN && !self.0.admit(conn, Instant::now()) {
            return AfterHandshakeOutcome::Reject {
                error_code: BANNED.into(),
                reason: REASON.to_vec(),
            };
        }
        AfterHandshakeOutcome::Accept
    }
}

/// iroh-gossip behind a [`GossipGate`]: the protocol handler [`crate::Docs::router`] mounts
/// for iroh-gossip's ALPN. Connections from banned peers are closed at once; the others go to
/// gossip unchanged. A router built by hand should mount
/// [`crate::Docs::gossip_handler`] instead of the bare `Gossip`.
#[derive(Debug, Clone)]
pub struct GatedGossip {
    gossip: Gossip,
    gate: GossipGate,
}

impl GatedGossip {
    pub(crate) fn new(gossip: Gossip, gate: GossipGate) -> Self {
        Self { gossip, gate }
    }
}

impl ProtocolHandler for GatedGossip {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        if !self.gate.admit(&connection, Instant::now()) {
            connection.close(BANNED.into(), REASON);
            return Ok(());
        }
        self.gossip.accept(connection).await
    }

    async fn shutdown(&self) {
        ProtocolHandler::shutdown(&self.gossip).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(i: u16) -> EndpointId {
        let mut b = [7u8; 32];
        b[..2].copy_from_slice(&i.to_le_bytes());
        iroh::SecretKey::from_bytes(&b).public()
    }

    #[test]
    fn a_ban_ends_after_its_period_and_the_table_keeps_its_bound() {
        let gate = GossipGate::new();
        let t0 = Instant::now();
        let mute = Duration::from_secs(30);
        gate.ban(peer(0), t0, mute);
        assert!(!gate.may_dial(&peer(0), t0 + Duration::from_secs(29)));
        assert!(gate.may_dial(&peer(0), t0 + mute));
        // A full table forgets the ban that ends first.
        for i in 0..=MAX_BANNED as u16 {
            gate.ban(peer(i), t0 + Duration::from_millis(u64::from(i)), mute);
        }
        let now = t0 + Duration::from_millis(MAX_BANNED as u64 + 1);
        assert_eq!(gate.state.lock().unwrap().banned.len(), MAX_BANNED);
        assert!(gate.may_dial(&peer(0), now), "the first ban was evicted");
        assert!(!gate.may_dial(&peer(1), now));
        assert!(!gate.may_dial(&peer(MAX_BANNED as u16), now));
    }
}
