//! Sync v2 over iroh (`docs/sync-v2.md`): every document two Sheaf nodes share, over one
//! connection.
//!
//! This module is wiring. The protocol's decisions are the core's: the connection round
//! ([`sheaf_core::v2::round`], over the connection session [`sheaf_core::v2::conn`]) runs
//! on the connection's task, the document sessions run in the store executor
//! ([`StoreCommand::V2`](sheaf_core::replica::StoreCommand::V2)), and this module moves
//! bytes between QUIC streams and them.
//!
//! * **Negotiation.** [`Docs::sync_all`] dials [`ALPN_V2`] with [`crate::ALPN`] as an
//!   additional ALPN. A peer that serves v2 answers v2; one that serves only v1 (iroh-docs, or
//!   a Sheaf node with v2 turned off) answers v1, and every shared document is then synced over
//!   v1, one connection each, as the live engine does. The router of [`Docs::router`] serves
//!   [`ALPN_V2`] before [`crate::ALPN`], so a v2 dial is answered with v2.
//! * **Switch.** [`Builder::sync_v2`](crate::Builder::sync_v2)`(false)` turns v2 off: the node
//!   neither serves nor dials it.
//! * **Live syncs.** With v2 on, the live engine's own syncs (on joining, on a new neighbour,
//!   after a `SyncReport` or missed gossip, retries, anti-entropy) go through v2: `Live`
//!   gathers every document it wants from a peer into one round
//!   ([`Output::SyncAll`](sheaf_core::live::Output::SyncAll)), run here by the live task, and
//!   reports each document's `SyncFinished` when it ends. A peer that answers v1 is
//!   remembered and synced per document with v1. Rounds peers open with this node are served
//!   by [`SyncV2Handler`] once the live engine admits them
//!   ([`Input::RoundAccepted`](sheaf_core::live::Input::RoundAccepted)): they count as
//!   accepted sessions, and a peer dialing us while we dial it is refused with `Duplicate`
//!   when its id is the larger (the tie-break of `docs/sync-v2.md` §2; the refused dialer
//!   gets [`DocsError::SyncV2Refused`]). When one ends well, the live engine ends each
//!   document it reconciled as an accepted sync (`SyncFinished`, a `SyncReport` to
//!   neighbours).
//! * **On demand.** [`Docs::sync_all`] runs one round with a peer for every document open
//!   for sync.
//! * **Kept connections.** A round this node dialed that ended well leaves its connection
//!   open (the dialer finishes its control stream instead of closing, `docs/sync-v2.md`
//!   §6.6); the next round with that peer, the live engine's or `sync_all`'s, runs on it
//!   without a handshake ([`pool`], bounded by [`MAX_POOLED`] and [`REUSE_IDLE`]). A served
//!   connection waits [`ACCEPT_NEXT_IDLE`] for the dialer's next round, holding no round slot
//!   meanwhile, then is closed.
//!
//! # Bounds
//!
//! A connection runs at most [`ConnConfig::max_streams`] document streams at once (the
//! smaller of both sides'); each stream reads at most one frame (≤ 64 KiB) ahead and holds at
//! most [`PARKED_PER_STREAM`](sheaf_core::v2::round::PARKED_PER_STREAM) messages while it
//! waits for an author definition; all readers share one channel of [`EVENTS`] messages. A
//! connection with no progress for [`IDLE`], or a write that does not complete within
//! [`IDLE`], is closed with `Unavailable`. A node serves at most [`MAX_ACCEPTED`] v2
//! rounds at once and refuses more before asking the live engine, whose accept bounds
//! (`LiveConfig::max_accepted_sessions`, `max_sessions_per_peer`) then apply; each holds one
//! store command at a time per stream, through the API path's permits.

mod io;
mod pool;

pub(crate) use pool::Pool;
pub use pool::{ACCEPT_NEXT_IDLE, MAX_POOLED, REUSE_IDLE};

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use iroh::endpoint::{ConnectOptions, Connection};
use sheaf_core::{
    replica::{StoreCommand, StoreResponse, V2Command, V2Response},
    v2::{
        codec::AbortCode,
        conn::{ConnConfig, Offer},
        round::RoundReport,
    },
    NamespaceId, PeerId,
};
use tokio::sync::oneshot;

use crate::{
    convert::{endpoint_addr, peer_id},
    docs::{Docs, DocsError, Result},
    reply::expect_reply,
    runtime::Runtime,
    store_thread::StoreHandle,
};

/// The ALPN of Sheaf sync v2.
pub const ALPN_V2: &[u8] = b"/sheaf-sync/2";

/// Messages all of a connection's stream readers may have queued for it at once.
pub const EVENTS: usize = 64;
/// How long a connection may make no progress (or a write may block) before it is closed.
pub const IDLE: Duration = Duration::from_secs(30);
/// Most sync v2 rounds a node serves at once; the connection of one more is closed at once
/// with `Unavailable` (5), and the dialer may try again later. Connections waiting between
/// rounds hold none of these (at most [`MAX_POOLED`] wait).
pub const MAX_ACCEPTED: usize = 64;

/// Attempts of a [`Docs::sync_all`] whose round the peer refuses as crossing its own.
pub const SYNC_ALL_ATTEMPTS: u32 = 5;
/// Pause before the second attempt (doubled before each further one).
pub const SYNC_ALL_PAUSE: Duration = Duration::from_millis(100);

/// Which protocol a [`Docs::sync_all`] used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncProtocol {
    /// Sync v2: every shared document over one connection.
    V2,
    /// The peer answered v1 (or v2 is off here): a v1 sync of each document was started.
    V1,
}

/// What a [`Docs::sync_all`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncAllReport {
    /// The protocol used.
    pub protocol: SyncProtocol,
    /// Documents offered (those open for sync here).
    pub offered: u64,
    /// Documents found to differ and reconciled (v2).
    pub differing: u64,
    /// Entries sent (v2).
    pub entries_sent: u64,
    /// Entries received (v2).
    pub entries_received: u64,
    /// Wall time, from dialing to the end of the round.
    pub duration: Duration,
}

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// What a v2 connection needs of the node: its runtime, its store and its id.
#[derive(Debug, Clone)]
pub(crate) struct Ctx<R: Runtime> {
    pub(crate) rt: R,
    pub(crate) store: StoreHandle,
    pub(crate) me: PeerId,
    pub(crate) metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Connections kept between rounds, shared by every round this node dials.
    pub(crate) pool: std::sync::Arc<Pool>,
}

impl<R: Runtime> Ctx<R> {
    pub(crate) async fn v2_call(&self, cmd: V2Command) -> Result<V2Response> {
        let reply: StoreResponse = self.store.call(StoreCommand::V2(cmd)).await?;
        expect_reply!(reply, V2)
    }

    /// The documents to offer: every document open for sync, or those of them in `only`.
    async fn offers(&self, only: Option<&[NamespaceId]>) -> Result<Vec<Offer>> {
        match self.v2_call(V2Command::Offers).await? {
            V2Response::Offers(mut offers) => {
                if let Some(only) = only {
                    offers.retain(|o| only.contains(&o.namespace));
                }
                Ok(offers)
            }
            other => Err(unexpected(&other)),
        }
    }
}

/// Dials `peer` on v2 (v1 as an additional ALPN) and runs one round offering `only` (or every
/// document open for sync). `None`: the peer answered v1 (that connection is closed).
pub(crate) async fn dial_round<R: Runtime>(
    ctx: Ctx<R>,
    endpoint: &iroh::Endpoint,
    peer: iroh::EndpointAddr,
    config: ConnConfig,
    only: Option<&[NamespaceId]>,
    cancel: Option<oneshot::Receiver<()>>,
) -> Result<Option<RoundReport>> {
    let offers = ctx.offers(only).await?;
    let peer_id = peer.id;
    if let Some(conn) = ctx.pool.take(peer_id) {
        ctx.metrics.sync_v2_reused.inc();
        // A kept connection the peer closed a moment ago (its wait for a next round ended,
        // or it restarted) fails the round: `sync_all`'s round (no `cancel`) then runs once
        // more on a new connection; the live engine retries its failed rounds itself.
        let retry = cancel.is_none();
        let result = run_on(&ctx, conn.clone(), config, offers.clone(), cancel).await;
        let refused = matches!(result, Err(DocsError::SyncV2Refused));
        if result.is_ok() || refused || !retry || !closed_elsewhere(&conn) {
            return result.map(Some);
        }
        return dial_new(&ctx, endpoint, peer, config, offers, None).await;
    }
    dial_new(&ctx, endpoint, peer, config, offers, cancel).await
}

/// Runs a round on a new connection to `peer`; `None`: the peer answered v1.
async fn dial_new<R: Runtime>(
    ctx: &Ctx<R>,
    endpoint: &iroh::Endpoint,
    peer: iroh::EndpointAddr,
    config: ConnConfig,
    offers: Vec<Offer>,
    cancel: Option<oneshot::Receiver<()>>,
) -> Result<Option<RoundReport>> {
    let conn = endpoint
        .connect_with_opts(
            peer,
            ALPN_V2,
            ConnectOptions::new().with_additional_alpns(vec![crate::ALPN.to_vec()]),
        )
        .await
        .map_err(|e| DocsError::SyncV2(e.to_string()))?
        .await
        .map_err(|e| DocsError::SyncV2(e.to_string()))?;
    if conn.alpn() != ALPN_V2 {
        conn.close(0u32.into(), b"v1 per document");
        return Ok(None);
    }
    ctx.metrics.count_path(&conn);
    run_on(ctx, conn, config, offers, cancel).await.map(Some)
}

/// Runs a round on `conn` and keeps the connection if the round ended well.
async fn run_on<R: Runtime>(
    ctx: &Ctx<R>,
    conn: Connection,
    config: ConnConfig,
    offers: Vec<Offer>,
    cancel: Option<oneshot::Receiver<()>>,
) -> Result<RoundReport> {
    let result = io::Driver::dial(ctx.clone(), conn.clone(), config, offers, cancel).await;
    if result.is_err() && refused_as_duplicate(&conn) {
        return Err(DocsError::SyncV2Refused);
    }
    if result.is_ok() {
        ctx.pool.put(conn.remote_id(), conn);
    }
    result
}

/// Whether `conn` ended other than by this node's own close (the peer closed it, restarted,
/// or it timed out).
fn closed_elsewhere(conn: &Connection) -> bool {
    !matches!(
        conn.close_reason(),
        None | Some(iroh::endpoint::ConnectionError::LocallyClosed)
    )
}

/// Whether the peer closed `conn` with `Duplicate` (the tie-break of crossing rounds).
fn refused_as_duplicate(conn: &Connection) -> bool {
    matches!(
        conn.close_reason(),
        Some(iroh::endpoint::ConnectionError::ApplicationClosed(close))
            if close.error_code == AbortCode::Duplicate.to_u32().into()
    )
}

impl<R: Runtime> Docs<R> {
    /// Syncs every document this node has open for sync with `peer`: over one sync v2
    /// connection when the peer serves it (only documents both hold are reconciled, and only
    /// those whose state differs), else by a v1 sync of each document (started, not awaited).
    ///
    /// A peer running its own round with this node refuses a crossing one
    /// ([`DocsError::SyncV2Refused`]); `sync_all` then tries again after a pause, at most
    /// [`SYNC_ALL_ATTEMPTS`] times in all, doubling the pause from [`SYNC_ALL_PAUSE`]
    /// (1.5 s of pauses in all), and returns that error only if every attempt was refused.
    pub async fn sync_all(&self, peer: iroh::EndpointAddr) -> Result<SyncAllReport> {
        let started = Instant::now();
        let offers = self.ctx().offers(None).await?;
        let mut report = SyncAllReport {
            protocol: SyncProtocol::V1,
            offered: offers.len() as u64,
            differing: 0,
            entries_sent: 0,
            entries_received: 0,
            duration: Duration::ZERO,
        };
        if self.sync_v2_enabled() {
            let rt = self.runtime().clone();
            let mut pause = SYNC_ALL_PAUSE;
            let mut attempt = 1;
            let round = loop {
                let ctx = self.ctx();
                let config = self.v2_config();
                match dial_round(ctx, self.endpoint(), peer.clone(), config, None, None).await {
                    Err(DocsError::SyncV2Refused) if attempt < SYNC_ALL_ATTEMPTS => {
                        rt.sleep_until(rt.now() + pause).await;
                        pause *= 2;
                        attempt += 1;
                    }
                    other => break other?,
                }
            };
            if let Some(done) = round {
                report.protocol = SyncProtocol::V2;
                report.differing = done.differing;
                report.entries_sent = done.entries_sent;
                report.entries_received = done.entries_received;
                report.duration = started.elapsed();
                return Ok(report);
            }
        }
        let node = crate::convert::node_addr(&peer);
        for offer in &offers {
            self.start_sync_v1(offer.namespace, node.clone()).await?;
        }
        report.duration = started.elapsed();
        Ok(report)
    }

    /// Serves a connection that negotiated [`ALPN_V2`]: its first round, then each further
    /// round the dialer starts on it, until the dialer closes it or starts none within
    /// [`ACCEPT_NEXT_IDLE`].
    pub async fn handle_v2_connection(&self, conn: Connection) -> Result<()> {
        if !self.sync_v2_enabled() {
            conn.close(5u32.into(), b"sync v2 is off");
            return Err(DocsError::SyncV2("sync v2 is off".into()));
        }
        self.ctx().metrics.count_path(&conn);
        let rt = self.runtime().clone();
        let mut control = None;
        loop {
            self.serve_round(&conn, control.take()).await?;
            // Between rounds the connection holds no round slot, only one of the (more
            // numerous) places of connections kept for a next round.
            let Ok(_kept) = self.inner.v2_kept.clone().try_acquire_owned() else {
                conn.close(AbortCode::Done.to_u32().into(), b"done");
                return Ok(());
            };
            let deadline = rt.now() + ACCEPT_NEXT_IDLE;
            let next = futures_lite::future::or(async { conn.accept_bi().await.ok() }, async {
                rt.sleep_until(deadline).await;
                None
            })
            .await;
            match next {
                Some(streams) => control = Some(streams),
                None => {
                    conn.close(AbortCode::Done.to_u32().into(), b"done");
                    return Ok(());
                }
            }
        }
    }

    /// Serves one round on `conn`: admitted first (this node's bound on rounds at once, then
    /// the live engine's), on the control stream `control` if it has arrived already.
    async fn serve_round(
        &self,
        conn: &Connection,
        control: Option<(iroh::endpoint::SendStream, iroh::endpoint::RecvStream)>,
    ) -> Result<()> {
        // Admission: at most MAX_ACCEPTED rounds at once; more are refused, not queued.
        let Ok(_slot) = self.inner.v2_slots.clone().try_acquire_owned() else {
            conn.close(5u32.into(), b"busy");
            return Err(DocsError::SyncV2("too many sync v2 connections".into()));
        };
        let ctx = self.ctx();
        let peer = peer_id(conn.remote_id());
        let started = Instant::now();
        // Admission by the live engine: its accept bounds, and the tie-break when both nodes
        // dial each other at once (the refused dialer learns it from the close code).
        let (reply, admitted) = oneshot::channel();
        let live = &self.inner.live;
        let asked = live
            .send(crate::live_task::LiveMsg::AdmitRound { peer, reply })
            .await;
        let (session, refusal) = match (asked, admitted.await) {
            (Ok(()), Ok(answer)) => answer,
            _ => {
                conn.close(AbortCode::Unavailable.to_u32().into(), b"shutting down");
                return Err(DocsError::SyncV2("the live engine is gone".into()));
            }
        };
        if let Some(code) = refusal {
            conn.close(code.to_u32().into(), b"refused");
            return Err(DocsError::SyncV2(format!("round refused: {code:?}")));
        }
        let result = match ctx.offers(None).await {
            Ok(offers) => {
                io::Driver::accept(ctx, conn.clone(), self.v2_config(), offers, control).await
            }
            Err(e) => Err(e),
        };
        // The live engine ends each reconciled document as an accepted sync of it.
        let input = sheaf_core::live::Input::RoundServed {
            session,
            report: result.as_ref().ok().cloned(),
            took: started.elapsed(),
        };
        let _ = live.send(crate::live_task::LiveMsg::Input(input)).await;
        result.map(|_| ())
    }

    pub(crate) fn ctx(&self) -> Ctx<R> {
        Ctx {
            rt: self.runtime().clone(),
            store: self.inner.store.clone(),
            me: self.me(),
            metrics: self.metrics().clone(),
            pool: self.inner.v2_pool.clone(),
        }
    }

    fn v2_config(&self) -> ConnConfig {
        self.inner.sync_v2.unwrap_or_default()
    }

    async fn start_sync_v1(
        &self,
        namespace: NamespaceId,
        peer: sheaf_core::wire::NodeAddr,
    ) -> Result<()> {
        if endpoint_addr(&peer).is_none() {
            return Ok(());
        }
        self.live(sheaf_core::live::ApiCommand::StartSync {
            namespace,
            peers: vec![peer],
        })
        .await
    }

    pub(crate) fn me(&self) -> sheaf_core::PeerId {
        peer_id(self.endpoint().id())
    }
}

fn unexpected(r: &V2Response) -> DocsError {
    DocsError::SyncV2(format!("unexpected store answer {r:?}"))
}

/// The protocol handler for [`ALPN_V2`] (what [`Docs::router`] mounts, before
/// [`crate::ALPN`]).
#[derive(Debug, Clone)]
pub struct SyncV2Handler<R: Runtime>(pub Docs<R>);

impl<R: Runtime> iroh::protocol::ProtocolHandler for SyncV2Handler<R> {
    async fn accept(
        &self,
        connection: Connection,
    ) -> std::result::Result<(), iroh::protocol::AcceptError> {
        self.0.handle_v2_connection(connection).await.map_err(|e| {
            iroh::protocol::AcceptError::from_err(std::io::Error::other(e.to_string()))
        })
    }
}

pub(crate) fn next_conn_id() -> u64 {
    NEXT_CONN.fetch_add(1, Ordering::Relaxed)
}
