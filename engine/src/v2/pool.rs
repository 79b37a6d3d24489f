//! Sync v2 connections kept between rounds (`docs/sync-v2.md` §6.6: the dialer may start
//! another round on the same connection once the previous one has ended).
//!
//! # Why
//!
//! A round on a new connection pays QUIC's handshake first: at 100 ms RTT a round with one
//! new entry per side took ~420 ms, of which the handshake and the acceptor's wait for the
//! dialer's first data were ~150 ms. The live engine syncs the same peers again and again
//! (a `SyncReport`, missed gossip, anti-entropy), so the dialer keeps the connection of a
//! round that ended well and starts its next round with that peer on it.
//!
//! # Bounds
//!
//! At most [`MAX_POOLED`] connections are kept, one per peer; putting one more closes the
//! one kept longest. A connection is kept at most [`REUSE_IDLE`] (shorter than the
//! acceptor's wait for a next round, [`ACCEPT_NEXT_IDLE`]), and one the peer or QUIC has
//! closed meanwhile is dropped when taken: the round then dials anew. A connection is in
//! the pool only between rounds: a round takes it out, so two rounds never share one.
//! A kept connection costs its QUIC state (stream and congestion state, buffers: tens of
//! KiB), so the pool holds at most a few MiB.

use std::{
    collections::BTreeMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use iroh::{endpoint::Connection, EndpointId};

/// Most connections kept between rounds.
pub const MAX_POOLED: usize = 256;
/// How long a connection is kept between rounds.
pub const REUSE_IDLE: Duration = Duration::from_secs(20);
/// How long an acceptor waits for the dialer's next round on a connection whose round ended
/// well; then it closes the connection.
pub const ACCEPT_NEXT_IDLE: Duration = Duration::from_secs(30);

/// Close code of a kept connection closed unused (0: no error).
const UNUSED: u32 = 0;

/// Connections of rounds that ended well, by peer.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    kept: Mutex<BTreeMap<EndpointId, (Connection, Instant)>>,
}

impl Pool {
    /// The connection kept for `peer`, if it is still open and was kept less than
    /// [`REUSE_IDLE`] ago.
    pub(crate) fn take(&self, peer: EndpointId) -> Option<Connection> {
        let (conn, at) = self.kept.lock().ok()?.remove(&peer)?;
        if conn.close_reason().is_some() || at.elapsed() > REUSE_IDLE {
            conn.close(UNUSED.into(), b"unused");
            return None;
        }
        Some(conn)
    }

    /// Keeps `conn` for the next round with `peer`, closing the one kept longest when
    /// [`MAX_POOLED`] are kept already.
    pub(crate) fn put(&self, peer: EndpointId, conn: Connection) {
        if conn.close_reason().is_some() {
            return;
        }
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        if kept.len() >= MAX_POOLED && !kept.contains_key(&peer) {
            let oldest = kept.iter().min_by_key(|(_, (_, at))| *at).map(|(p, _)| *p);
            if let Some((old, _)) = oldest.and_then(|p| kept.remove(&p)) {
                old.close(UNUSED.into(), b"unused");
            }
        }
        if let Some((old, _)) = kept.insert(peer, (conn, Instant::now())) {
            old.close(UNUSED.into(), b"unused");
        }
    }

    /// Closes every kept connection (the node is shutting down).
    pub(crate) fn clear(&self) {
        if let Ok(mut kept) = self.kept.lock() {
            for (_, (conn, _)) in std::mem::take(&mut *kept) {
                conn.close(UNUSED.into(), b"unused");
            }
        }
    }
}
