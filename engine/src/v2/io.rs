//! One sync v2 connection's task: reads every stream and feeds what arrives to the core's
//! [`Round`], which decides everything (which session a message goes to, parking, opening
//! streams, ending); this carries out what it asks — store commands through the store
//! thread, writes on QUIC streams — and reports IO failures and the idle bound to it.

use std::collections::BTreeMap;

use iroh::endpoint::{Connection, RecvStream, SendStream};
use sheaf_core::v2::{
    codec::{AbortCode, Message},
    conn::{ConnConfig, Offer},
    frame::{encode_frame, FrameDecoder, MAX_FRAME_LEN},
    round::{Round, RoundInput, RoundOutput, RoundReport},
};
use tokio::sync::{mpsc, oneshot};

use super::Ctx;
use super::{next_conn_id, EVENTS, IDLE};
use crate::{
    convert::peer_id,
    docs::{DocsError, Result},
    runtime::Runtime,
};

/// What a stream reader reports.
enum Read {
    Msg(Message),
    End,
    Failed(String),
}

enum Ev {
    Control(Read),
    Doc(u64, Read),
    Incoming(SendStream, RecvStream),
    /// The peer closed the connection (or the acceptor stopped waiting for it to).
    Closed,
    /// The round is to be aborted (`Live` closed its session).
    Cancel,
}

pub(super) struct Driver<R: Runtime> {
    ctx: Ctx<R>,
    conn: Connection,
    round: Round,
    control: SendStream,
    /// Our sending sides of the document streams, by the round's stream id.
    sends: BTreeMap<u64, SendStream>,
    tx: mpsc::Sender<Ev>,
    rx: mpsc::Receiver<Ev>,
    /// Whether this end dialed (and so accepts the document streams the acceptor opens).
    dialer: bool,
    /// Dropped with the driver: stops the tasks it spawned on the connection, which may
    /// carry another round after this one.
    stops: Vec<oneshot::Sender<()>>,
}

fn spawn_reader<R: Runtime>(
    rt: &R,
    mut recv: RecvStream,
    tx: mpsc::Sender<Ev>,
    wrap: impl Fn(Read) -> Ev + Send + 'static,
) {
    rt.spawn(Box::pin(async move {
        let mut dec = FrameDecoder::new();
        let mut buf = vec![0u8; MAX_FRAME_LEN];
        loop {
            loop {
                let read = match dec.next_message() {
                    Ok(Some(m)) => Read::Msg(m),
                    Ok(None) => break,
                    Err(e) => Read::Failed(e.to_string()),
                };
                let last = matches!(read, Read::Failed(_));
                if tx.send(wrap(read)).await.is_err() || last {
                    return;
                }
            }
            let want = dec.wanted().clamp(1, buf.len());
            let read = match recv.read(&mut buf[..want]).await {
                Ok(Some(n)) => match dec.feed(&buf[..n]) {
                    Ok(()) => continue,
                    Err(e) => Read::Failed(e.to_string()),
                },
                Ok(None) => match dec.finish() {
                    Ok(()) => Read::End,
                    Err(e) => Read::Failed(e.to_string()),
                },
                Err(e) => Read::Failed(e.to_string()),
            };
            let _ = tx.send(wrap(read)).await;
            return;
        }
    }));
}

fn frames(msgs: &[Message]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        // Sessions pack their lists to fit; a message that does not fit is a bug, dropped.
        if encode_frame(m, &mut out).is_err() {
            tracing::warn!(
                kind = m.type_byte(),
                "v2 message over the frame limit dropped"
            );
        }
    }
    out
}

fn v2_err(e: impl std::fmt::Display) -> DocsError {
    DocsError::SyncV2(e.to_string())
}

impl<R: Runtime> Driver<R> {
    /// Runs a round as the dialer on a connection that negotiated v2.
    /// `cancel`: a send aborts the round (its store state is still dropped).
    pub(super) async fn dial(
        ctx: Ctx<R>,
        conn: Connection,
        config: ConnConfig,
        offers: Vec<Offer>,
        cancel: Option<oneshot::Receiver<()>>,
    ) -> Result<RoundReport> {
        let (send, recv) = conn.open_bi().await.map_err(v2_err)?;
        let mut nonce = [0u8; 32];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut nonce);
        let peer = peer_id(conn.remote_id());
        let round =
            Round::dial(next_conn_id(), config, nonce, ctx.me, peer, &offers).map_err(v2_err)?;
        let d = Self::new(ctx, conn, round, send, true);
        if let Some(cancel) = cancel {
            let tx = d.tx.clone();
            d.ctx.rt.spawn(Box::pin(async move {
                if cancel.await.is_ok() {
                    let _ = tx.send(Ev::Cancel).await;
                }
            }));
        }
        d.run(recv).await
    }

    /// Serves a round as the acceptor.
    /// `control`: the round's control stream, if the dialer has opened it already (a later
    /// round on a kept connection).
    pub(super) async fn accept(
        ctx: Ctx<R>,
        conn: Connection,
        config: ConnConfig,
        offers: Vec<Offer>,
        control: Option<(SendStream, RecvStream)>,
    ) -> Result<RoundReport> {
        let (send, recv) = match control {
            Some(streams) => streams,
            None => {
                // A dialer that never opens its control stream does not hold a slot beyond
                // `IDLE`.
                let rt = ctx.rt.clone();
                let deadline = rt.now() + IDLE;
                futures_lite::future::or(async { conn.accept_bi().await.map_err(v2_err) }, async {
                    rt.sleep_until(deadline).await;
                    Err(v2_err("no control stream"))
                })
                .await
                .inspect_err(|_| conn.close(AbortCode::Unavailable.to_u32().into(), b"idle"))?
            }
        };
        let peer = peer_id(conn.remote_id());
        let round = Round::accept(next_conn_id(), config, ctx.me, peer, offers);
        Self::new(ctx, conn, round, send, false).run(recv).await
    }

    fn new(ctx: Ctx<R>, conn: Connection, round: Round, control: SendStream, dialer: bool) -> Self {
        let (tx, rx) = mpsc::channel(EVENTS);
        Self {
            ctx,
            conn,
            round,
            control,
            sends: BTreeMap::new(),
            tx,
            rx,
            dialer,
            stops: Vec::new(),
        }
    }

    /// Spawns `task`, stopped when this round ends.
    fn spawn_until_end(&mut self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let (stop, stopped) = oneshot::channel::<()>();
        self.stops.push(stop);
        self.ctx.rt.spawn(Box::pin(async move {
            futures_lite::future::or(task, async {
                let _ = stopped.await;
            })
            .await;
        }));
    }

    async fn run(mut self, control: RecvStream) -> Result<RoundReport> {
        let rt = self.ctx.rt.clone();
        spawn_reader(&rt, control, self.tx.clone(), Ev::Control);
        // Streams the acceptor opens (its document streams); only until the round ends, so
        // that a later round on the connection accepts its own.
        if self.dialer {
            let (conn, tx) = (self.conn.clone(), self.tx.clone());
            self.spawn_until_end(async move {
                while let Ok((send, recv)) = conn.accept_bi().await {
                    if tx.send(Ev::Incoming(send, recv)).await.is_err() {
                        return;
                    }
                }
            });
        }
        loop {
            while let Some(out) = self.round.poll_output() {
                if let Some(result) = self.carry_out(out).await {
                    return result;
                }
            }
            let deadline = rt.now() + IDLE;
            let ev = futures_lite::future::or(async { self.rx.recv().await }, async {
                rt.sleep_until(deadline).await;
                None
            })
            .await;
            let input = match ev {
                None => RoundInput::Failed("no progress".into()),
                Some(Ev::Control(Read::Msg(m))) => RoundInput::Control(m),
                Some(Ev::Control(Read::End)) => RoundInput::ControlEnded,
                Some(Ev::Control(Read::Failed(e))) => RoundInput::Failed(e),
                Some(Ev::Incoming(send, recv)) => {
                    // A stream over the round's bound is dropped (and so reset).
                    if let Some(id) = self.round.incoming() {
                        self.add_stream(id, send, recv);
                    }
                    continue;
                }
                Some(Ev::Doc(id, Read::Msg(message))) => RoundInput::Doc {
                    stream: id,
                    message,
                },
                Some(Ev::Doc(id, Read::End)) => RoundInput::DocEnded(id),
                Some(Ev::Doc(id, Read::Failed(_))) => RoundInput::DocFailed(id),
                Some(Ev::Closed) => RoundInput::Closed,
                Some(Ev::Cancel) => RoundInput::Failed("closed by the node".into()),
            };
            self.round.handle(input);
        }
    }

    /// Does what the round asks; the round's result once it is over.
    async fn carry_out(&mut self, out: RoundOutput) -> Option<Result<RoundReport>> {
        let failed = match out {
            RoundOutput::Store(cmd) => {
                let reply = self.ctx.v2_call(cmd).await.map_err(|e| e.to_string());
                self.round.handle(RoundInput::Store(reply));
                None
            }
            RoundOutput::Control(msgs) => write(&self.ctx.rt, &mut self.control, &msgs).await.err(),
            RoundOutput::Open(id) => match self.conn.open_bi().await {
                Ok((send, recv)) => {
                    self.add_stream(id, send, recv);
                    None
                }
                Err(e) => Some(v2_err(e)),
            },
            RoundOutput::Send { stream, messages } => match self.sends.get_mut(&stream) {
                Some(send) => write(&self.ctx.rt, send, &messages).await.err(),
                None => None,
            },
            RoundOutput::Finish(id) => {
                if let Some(mut send) = self.sends.remove(&id) {
                    let _ = send.finish();
                }
                None
            }
            RoundOutput::FinishControl => {
                let _ = self.control.finish();
                // The dialer closes once it has read everything; wait for that, within IDLE.
                let (conn, tx, rt) = (self.conn.clone(), self.tx.clone(), self.ctx.rt.clone());
                let deadline = rt.now() + IDLE;
                self.spawn_until_end(async move {
                    futures_lite::future::or(
                        async {
                            conn.closed().await;
                        },
                        rt.sleep_until(deadline),
                    )
                    .await;
                    let _ = tx.send(Ev::Closed).await;
                });
                None
            }
            // The dialer's round ended well: it finishes its control stream (the acceptor's
            // round ends on reading that) and keeps the connection for a later round.
            RoundOutput::Close(AbortCode::Done) if self.dialer => {
                let _ = self.control.finish();
                None
            }
            RoundOutput::Close(code) => {
                let reason: &[u8] = if code == AbortCode::Done {
                    b"done"
                } else {
                    b"failed"
                };
                // A connection the peer closed keeps its reason (the dialer reads `Duplicate`
                // from it): closing it again here would replace it.
                if self.conn.close_reason().is_none() {
                    self.conn.close(code.to_u32().into(), reason);
                }
                None
            }
            RoundOutput::Ended(result) => {
                if let Err(e) = &result {
                    tracing::debug!(%e, "sync v2 connection failed");
                }
                return Some(result.map_err(v2_err));
            }
        };
        if let Some(e) = failed {
            self.round.handle(RoundInput::Failed(e.to_string()));
        }
        None
    }

    /// Tracks a document stream under the round's id and starts reading it.
    fn add_stream(&mut self, id: u64, send: SendStream, recv: RecvStream) {
        spawn_reader(&self.ctx.rt, recv, self.tx.clone(), move |r| Ev::Doc(id, r));
        self.sends.insert(id, send);
    }
}

/// Writes `msgs` as frames, within [`IDLE`].
async fn write<R: Runtime>(rt: &R, send: &mut SendStream, msgs: &[Message]) -> Result<()> {
    if msgs.is_empty() {
        return Ok(());
    }
    let bytes = frames(msgs);
    let deadline = rt.now() + IDLE;
    futures_lite::future::or(
        async { send.write_all(&bytes).await.map_err(v2_err) },
        async {
            rt.sleep_until(deadline).await;
            Err(v2_err("write blocked"))
        },
    )
    .await
}
