//! One sync v2 connection's task: reads every stream, hands control messages to the core's
//! connection session and document messages to the store's document sessions, writes what
//! they answer.
//!
//! Ending a round without losing frames in flight: the acceptor finishes its control stream
//! once all its document sessions are done (it then holds everything the dialer sends); the
//! dialer closes the connection once its own round is done (it holds everything the
//! acceptor sends) and the acceptor's control stream has ended.

use std::collections::{BTreeMap, VecDeque};

use iroh::endpoint::{Connection, RecvStream, SendStream};
use sheaf_core::{
    replica::{V2Command, V2Response, V2Step},
    v2::{
        codec::{AbortCode, Message},
        conn::{Acceptor, ConnConfig, Dialer, Offer},
        frame::{encode_frame, FrameDecoder, MAX_FRAME_LEN},
    },
};
use tokio::sync::mpsc;

use super::{next_conn_id, unexpected, EVENTS, IDLE, PARKED_PER_STREAM};
use crate::{
    convert::peer_id,
    docs::{Docs, DocsError, Result},
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
}

enum Role {
    Dialer(Dialer),
    Acceptor(Acceptor),
}

struct DocStream {
    send: SendStream,
    /// Messages waiting for an author definition, oldest first.
    parked: VecDeque<Message>,
    /// The store session exists (the dialer creates it on `DocOpen`).
    started: bool,
    /// The peer's side ended while messages were parked: the stream is abandoned if its
    /// session is not done once they are handled.
    peer_ended: bool,
}

/// What a round did.
#[derive(Debug, Default)]
pub(super) struct Done {
    pub(super) differing: u64,
    pub(super) entries_sent: u64,
    pub(super) entries_received: u64,
}

pub(super) struct Driver<R: Runtime> {
    docs: Docs<R>,
    conn: Connection,
    id: u64,
    role: Role,
    config: ConnConfig,
    control: SendStream,
    control_ended: bool,
    control_finished: bool,
    streams: BTreeMap<u64, DocStream>,
    next_stream: u64,
    tx: mpsc::Sender<Ev>,
    rx: mpsc::Receiver<Ev>,
    done: Done,
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
    fn new(
        docs: Docs<R>,
        conn: Connection,
        role: Role,
        config: ConnConfig,
        control: SendStream,
    ) -> Self {
        let (tx, rx) = mpsc::channel(EVENTS);
        Self {
            docs,
            conn,
            id: next_conn_id(),
            role,
            config,
            control,
            control_ended: false,
            control_finished: false,
            streams: BTreeMap::new(),
            next_stream: 0,
            tx,
            rx,
            done: Done::default(),
        }
    }

    /// Runs a round as the dialer on a connection that negotiated v2.
    pub(super) async fn dial(
        docs: Docs<R>,
        conn: Connection,
        config: ConnConfig,
        offers: Vec<Offer>,
    ) -> Result<Done> {
        let (send, recv) = conn.open_bi().await.map_err(v2_err)?;
        let mut nonce = [0u8; 32];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut nonce);
        let peer = peer_id(conn.remote_id());
        let (dialer, hello) =
            Dialer::new(config, nonce, docs.me(), peer, &offers).map_err(v2_err)?;
        let mut d = Self::new(docs, conn, Role::Dialer(dialer), config, send);
        d.run(recv, hello).await
    }

    /// Serves a round as the acceptor.
    pub(super) async fn accept(
        docs: Docs<R>,
        conn: Connection,
        config: ConnConfig,
        offers: Vec<Offer>,
    ) -> Result<Done> {
        // A dialer that never opens its control stream does not hold a slot beyond `IDLE`.
        let rt = docs.runtime().clone();
        let deadline = rt.now() + IDLE;
        let (send, recv) =
            futures_lite::future::or(async { conn.accept_bi().await.map_err(v2_err) }, async {
                rt.sleep_until(deadline).await;
                Err(v2_err("no control stream"))
            })
            .await
            .inspect_err(|_| conn.close(AbortCode::Unavailable.to_u32().into(), b"idle"))?;
        let peer = peer_id(conn.remote_id());
        let acceptor = Acceptor::new(config, docs.me(), peer, offers);
        let mut d = Self::new(docs, conn, Role::Acceptor(acceptor), config, send);
        d.run(recv, Vec::new()).await
    }

    async fn run(&mut self, control: RecvStream, first: Vec<Message>) -> Result<Done> {
        let peer = peer_id(self.conn.remote_id());
        self.store(V2Command::Begin {
            conn: self.id,
            peer,
        })
        .await?;
        let result = self.round(control, first).await;
        let _ = self.docs.v2_call(V2Command::End { conn: self.id }).await;
        match &result {
            Ok(()) => {}
            Err(e) => {
                tracing::debug!(%e, "sync v2 connection failed");
                self.conn
                    .close(AbortCode::Unavailable.to_u32().into(), b"failed");
            }
        }
        result.map(|()| std::mem::take(&mut self.done))
    }

    async fn round(&mut self, control: RecvStream, first: Vec<Message>) -> Result<()> {
        let rt = self.docs.runtime().clone();
        spawn_reader(&rt, control, self.tx.clone(), Ev::Control);
        self.write_control(&first).await?;
        if let Role::Dialer(_) = self.role {
            // Streams the acceptor opens.
            let (conn, tx) = (self.conn.clone(), self.tx.clone());
            rt.spawn(Box::pin(async move {
                while let Ok((send, recv)) = conn.accept_bi().await {
                    if tx.send(Ev::Incoming(send, recv)).await.is_err() {
                        return;
                    }
                }
            }));
        }
        loop {
            if self.finished().await? {
                return Ok(());
            }
            let deadline = rt.now() + IDLE;
            let ev = futures_lite::future::or(async { self.rx.recv().await }, async {
                rt.sleep_until(deadline).await;
                None
            })
            .await;
            let Some(ev) = ev else {
                return Err(v2_err("no progress"));
            };
            match ev {
                Ev::Control(Read::Msg(m)) => self.on_control(m).await?,
                Ev::Control(Read::End) => self.control_ended = true,
                Ev::Control(Read::Failed(e)) => return Err(v2_err(e)),
                Ev::Incoming(send, recv) => {
                    self.add_stream(send, recv, false);
                }
                Ev::Doc(id, Read::Msg(m)) => self.on_doc(id, m).await?,
                Ev::Doc(id, Read::End) => self.peer_ended(id),
                Ev::Doc(id, Read::Failed(_)) => {
                    if self.streams.remove(&id).is_some() {
                        self.stream_ended();
                    }
                }
            }
            // Streams that ended make room for more.
            self.open_streams().await?;
        }
    }

    /// Whether the round is over (and the connection closed or left to the peer to close).
    async fn finished(&mut self) -> Result<bool> {
        match &self.role {
            Role::Dialer(d) if d.is_round_done() && self.control_ended => {
                self.conn.close(AbortCode::Done.to_u32().into(), b"done");
                Ok(true)
            }
            Role::Acceptor(a) if a.is_round_done() => {
                if !self.control_finished {
                    self.control_finished = true;
                    self.control.finish().map_err(v2_err)?;
                }
                // The dialer closes once it has read everything.
                let rt = self.docs.runtime().clone();
                let deadline = rt.now() + IDLE;
                futures_lite::future::or(
                    async {
                        self.conn.closed().await;
                    },
                    rt.sleep_until(deadline),
                )
                .await;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn on_control(&mut self, m: Message) -> Result<()> {
        if let Message::Authors { first, ids } = m {
            self.store(V2Command::Define {
                conn: self.id,
                first,
                ids,
            })
            .await?;
            return self.unpark().await;
        }
        let out = match &mut self.role {
            Role::Dialer(d) => d.handle(m),
            Role::Acceptor(a) => a.handle(m),
        }
        .map_err(v2_err)?;
        self.write_control(&out).await?;
        self.open_streams().await
    }

    /// Tracks a document stream and starts reading it; returns its id. `started`: its store
    /// session exists (an opened stream's; an accepted one's starts at `DocOpen`).
    fn add_stream(&mut self, send: SendStream, recv: RecvStream, started: bool) -> u64 {
        let id = self.next_stream;
        self.next_stream += 1;
        spawn_reader(self.docs.runtime(), recv, self.tx.clone(), move |r| {
            Ev::Doc(id, r)
        });
        self.streams.insert(
            id,
            DocStream {
                send,
                parked: VecDeque::new(),
                started,
                peer_ended: false,
            },
        );
        id
    }

    /// The acceptor opens a stream for each document it may start now.
    async fn open_streams(&mut self) -> Result<()> {
        loop {
            let Role::Acceptor(a) = &mut self.role else {
                return Ok(());
            };
            let Some((tag, namespace)) = a.poll_open() else {
                return Ok(());
            };
            let riblt_key = a.hasher().map(|h| h.key()).unwrap_or_default();
            let (send, recv) = self.conn.open_bi().await.map_err(v2_err)?;
            let id = self.add_stream(send, recv, true);
            self.done.differing += 1;
            let step = self
                .store(V2Command::Open {
                    conn: self.id,
                    stream: id,
                    namespace,
                    tag,
                    riblt_key,
                    config: self.config.doc,
                })
                .await?;
            self.apply(id, step).await?;
        }
    }

    async fn on_doc(&mut self, id: u64, m: Message) -> Result<()> {
        let Some(stream) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        if !stream.parked.is_empty() {
            if stream.parked.len() >= PARKED_PER_STREAM {
                return self.abort(id, AbortCode::Protocol).await;
            }
            stream.parked.push_back(m);
            return Ok(());
        }
        if !stream.started {
            let Message::DocOpen { tag, .. } = &m else {
                return self.abort(id, AbortCode::Protocol).await;
            };
            let Role::Dialer(d) = &mut self.role else {
                return self.abort(id, AbortCode::Protocol).await;
            };
            let namespace = match d.stream_opened(tag) {
                Ok(ns) => ns,
                Err(code) => {
                    // Not counted as opened here: answered with an abort, nothing to end.
                    if let Some(mut s) = self.streams.remove(&id) {
                        let _ = write(&self.docs, &mut s.send, &[Message::Abort { code }]).await;
                        let _ = s.send.finish();
                    }
                    return Ok(());
                }
            };
            let riblt_key = d.hasher().key();
            self.store(V2Command::Accept {
                conn: self.id,
                stream: id,
                namespace,
                riblt_key,
                config: self.config.doc,
            })
            .await?;
            self.done.differing += 1;
            if let Some(s) = self.streams.get_mut(&id) {
                s.started = true;
            }
        }
        self.handle(id, m).await.map(|_| ())
    }

    /// Hands `m` to the store's session of stream `id`; true when it was parked again.
    async fn handle(&mut self, id: u64, m: Message) -> Result<bool> {
        let reply = self
            .docs
            .v2_call(V2Command::Handle {
                conn: self.id,
                stream: id,
                message: m,
            })
            .await?;
        match reply {
            V2Response::Parked(m) => {
                if let Some(s) = self.streams.get_mut(&id) {
                    s.parked.push_front(m);
                }
                Ok(true)
            }
            V2Response::Step(step) => self.apply(id, step).await.map(|()| false),
            other => Err(unexpected(&other)),
        }
    }

    /// The peer finished stream `id`. A session not done by then is abandoned, once the
    /// messages it parked (which arrived before the end) are handled.
    fn peer_ended(&mut self, id: u64) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.parked.is_empty() {
            self.streams.remove(&id);
            self.stream_ended();
        } else {
            s.peer_ended = true;
        }
    }

    /// Retries parked messages after a definition arrived.
    async fn unpark(&mut self) -> Result<()> {
        let ids: Vec<u64> = self
            .streams
            .iter()
            .filter(|(_, s)| !s.parked.is_empty())
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            while let Some(m) = self.streams.get_mut(&id).and_then(|s| s.parked.pop_front()) {
                if self.handle(id, m).await? {
                    break;
                }
            }
            if self
                .streams
                .get(&id)
                .is_some_and(|s| s.peer_ended && s.parked.is_empty())
            {
                self.peer_ended(id);
            }
        }
        Ok(())
    }

    async fn apply(&mut self, id: u64, step: V2Step) -> Result<()> {
        self.write_control(&step.control).await?;
        if let Some((code, error)) = &step.failed {
            tracing::debug!(stream = id, %error, "v2 document session failed");
            return match code {
                Some(code) => self.abort(id, *code).await,
                None => {
                    self.streams.remove(&id);
                    self.stream_ended();
                    Ok(())
                }
            };
        }
        let Some(stream) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        write(&self.docs, &mut stream.send, &step.messages).await?;
        if step.done {
            self.done.entries_sent += step.stats.entries_sent;
            self.done.entries_received += step.stats.entries_received;
            if let Some(mut s) = self.streams.remove(&id) {
                let _ = s.send.finish();
            }
            self.stream_ended();
        }
        Ok(())
    }

    async fn abort(&mut self, id: u64, code: AbortCode) -> Result<()> {
        if let Some(mut s) = self.streams.remove(&id) {
            let _ = write(&self.docs, &mut s.send, &[Message::Abort { code }]).await;
            let _ = s.send.finish();
            self.stream_ended();
        }
        Ok(())
    }

    fn stream_ended(&mut self) {
        match &mut self.role {
            Role::Dialer(d) => d.stream_ended(),
            Role::Acceptor(a) => a.stream_ended(),
        }
    }

    async fn write_control(&mut self, msgs: &[Message]) -> Result<()> {
        if msgs.is_empty() {
            return Ok(());
        }
        write(&self.docs, &mut self.control, msgs).await
    }

    async fn store(&self, cmd: V2Command) -> Result<V2Step> {
        match self.docs.v2_call(cmd).await? {
            V2Response::Step(s) => Ok(s),
            V2Response::Done => Ok(V2Step::default()),
            other => Err(unexpected(&other)),
        }
    }
}

/// Writes `msgs` as frames, within [`IDLE`].
async fn write<R: Runtime>(docs: &Docs<R>, send: &mut SendStream, msgs: &[Message]) -> Result<()> {
    if msgs.is_empty() {
        return Ok(());
    }
    let bytes = frames(msgs);
    let rt = docs.runtime().clone();
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
