//! The task that drives `Live`: it feeds it inputs from the network, the store thread and the
//! API, and carries out its outputs with iroh, iroh-gossip and iroh-blobs.
//!
//! Each sync session gets a small task owning its QUIC streams (`session_io`), each live
//! document one task for its gossip topic (`topic`); dials and downloads run as tasks of
//! their own, and all report back through the same inbox. The loop itself never waits on the
//! network.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use bytes::Bytes;
use iroh::{
    address_lookup::memory::MemoryLookup,
    endpoint::{Connection, RecvStream, SendStream},
    Endpoint,
};
use iroh_gossip::net::Gossip;
use sheaf_core::{
    hash::{Hash, PeerId},
    keys::NamespaceId,
    live::{
        ApiCommand, ApiRequestId, GossipEvent, Input, LagTracker, Live, LiveError, LiveEvent,
        Output, Role, SessionError, SessionId,
    },
    replica::ReplicaEvent,
};
use tokio::sync::{mpsc, oneshot};

use crate::{
    convert::{blob_hash, endpoint_addr, endpoint_id, peer_id},
    runtime::Runtime,
    store_thread::{to_content_status, Clock, StoreHandle},
    topic::{Topic, TopicOut},
    ALPN,
};

mod rounds;

use rounds::AdmitReply;

/// Capacity of `Live`'s inbox.
pub(crate) const INBOX: usize = 1024;
/// Capacity of each subscriber's channel; a full subscriber loses events (and gets `Lagged`).
pub(crate) const SUBSCRIBER_CAPACITY: usize = 256;
/// Read buffer of a sync stream.
const READ_CHUNK: usize = 64 * 1024;

/// Messages to the live task.
pub(crate) enum LiveMsg {
    Input(Input),
    Api {
        command: ApiCommand,
        reply: oneshot::Sender<Result<(), LiveError>>,
    },
    Subscribe {
        namespace: NamespaceId,
        tx: mpsc::Sender<LiveEvent>,
        reply: oneshot::Sender<Result<(), LiveError>>,
    },
    Accepted {
        conn: Connection,
        send: SendStream,
        recv: RecvStream,
    },
    Dialed {
        session: SessionId,
        conn: Connection,
        send: SendStream,
        recv: RecvStream,
    },
    /// A topic's subscription failed to start or its stream ended (not after a leave).
    TopicEnded {
        namespace: NamespaceId,
        generation: u64,
    },
    /// A subscriber of the document dropped its [`crate::Events`]: its queue is released.
    SubscriberGone {
        namespace: NamespaceId,
    },
    /// Asks for a document's sync state (`None`: not being synced).
    SyncStatus {
        namespace: NamespaceId,
        reply: oneshot::Sender<Option<sheaf_core::live::DocSyncStatus>>,
    },
    /// A peer dialed a sync v2 round: `Live` admits or refuses it
    /// ([`Input::RoundAccepted`]); the reply carries the round's session id and the refusal.
    AdmitRound {
        peer: PeerId,
        reply: AdmitReply,
    },
    /// Ends the task (after `ApiCommand::Shutdown`).
    Stop,
}

enum SessionCmd {
    Send(Vec<u8>),
    Finish,
    Close,
}

/// Commands queued per sync stream. `Live` sends a reply only after it processed a message of
/// the peer, and an honest peer waits for each reply before it sends the next message, so a
/// queue holds two or three commands; a full one ends the session (see `session_cmd`).
const SESSION_COMMANDS: usize = 16;

struct Subscriber {
    tx: mpsc::Sender<LiveEvent>,
    lag: LagTracker,
}

/// Everything the live task owns.
pub(crate) struct LiveTask<R: Runtime> {
    pub(crate) rt: R,
    pub(crate) live: Live,
    pub(crate) clock: Clock,
    pub(crate) inbox: mpsc::Receiver<LiveMsg>,
    pub(crate) tx: mpsc::Sender<LiveMsg>,
    pub(crate) store: StoreHandle,
    pub(crate) endpoint: Endpoint,
    pub(crate) gossip: Gossip,
    pub(crate) blobs: iroh_blobs::api::Store,
    fetcher: crate::fetch::Fetcher,
    /// Downloads `Live` started in the current step, fetched together when it ends (at most
    /// `LiveConfig::max_concurrent_downloads`: `Live` never has more in flight).
    started: Vec<(Hash, Vec<iroh::EndpointId>)>,
    pub(crate) lookup: MemoryLookup,
    pub(crate) next_accept: Arc<AtomicU64>,
    topics: BTreeMap<NamespaceId, Topic>,
    next_topic: u64,
    /// Each open stream's command queue (at most [`SESSION_COMMANDS`]) and its connection.
    sessions: BTreeMap<SessionId, (mpsc::Sender<SessionCmd>, Connection)>,
    dialing: BTreeMap<SessionId, ()>,
    /// Sync v2 policy when v2 is on (`Live` then dials rounds, [`Output::SyncAll`]).
    pub(crate) v2: Option<sheaf_core::v2::conn::ConnConfig>,
    /// Sync v2 connections kept between the rounds this node dials (shared with `Docs`).
    pub(crate) v2_pool: Arc<crate::v2::Pool>,
    /// Running v2 rounds: a send aborts one.
    rounds: BTreeMap<SessionId, oneshot::Sender<()>>,
    /// Served v2 rounds waiting for `Live`'s admission (answered within the step that asked,
    /// so at most one at a time).
    admits: BTreeMap<SessionId, AdmitReply>,
    api: BTreeMap<ApiRequestId, oneshot::Sender<Result<(), LiveError>>>,
    next_api: u64,
    subscribers: BTreeMap<NamespaceId, Vec<Subscriber>>,
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    /// Period of the gossip health probe (see [`crate::gossip_probe`]).
    gossip_probe: std::time::Duration,
    /// Where bans of `Live` take effect (see [`crate::gossip_gate`]).
    gate: crate::gossip_gate::GossipGate,
}

impl<R: Runtime> LiveTask<R> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        rt: R,
        live: Live,
        clock: Clock,
        inbox: mpsc::Receiver<LiveMsg>,
        tx: mpsc::Sender<LiveMsg>,
        store: StoreHandle,
        endpoint: Endpoint,
        gossip: Gossip,
        blobs: iroh_blobs::api::Store,
        lookup: MemoryLookup,
        metrics: Arc<crate::metrics::Metrics>,
        gossip_probe: std::time::Duration,
        gate: crate::gossip_gate::GossipGate,
    ) -> Self {
        let fetcher = crate::fetch::Fetcher::new(blobs.clone(), &endpoint, metrics.clone());
        Self {
            rt,
            live,
            clock,
            inbox,
            tx,
            store,
            endpoint,
            gossip,
            blobs,
            fetcher,
            started: Vec::new(),
            lookup,
            next_accept: Arc::new(AtomicU64::new(0)),
            topics: BTreeMap::new(),
            next_topic: 0,
            sessions: BTreeMap::new(),
            dialing: BTreeMap::new(),
            v2: None,
            v2_pool: Arc::new(crate::v2::Pool::default()),
            rounds: BTreeMap::new(),
            admits: BTreeMap::new(),
            api: BTreeMap::new(),
            next_api: 0,
            subscribers: BTreeMap::new(),
            metrics,
            gossip_probe,
            gate,
        }
    }

    /// Runs until the inbox closes or shutdown completes.
    pub(crate) async fn run(mut self) {
        // The probe stops when this task ends (its stop sender is dropped).
        let (_probe_stop, probe_stopped) = oneshot::channel();
        self.rt.spawn(Box::pin(crate::gossip_probe::run(
            self.rt.clone(),
            self.gossip.clone(),
            self.gossip_probe,
            self.tx.clone(),
            self.metrics.clone(),
            probe_stopped,
        )));
        loop {
            let timeout = self.live.poll_timeout().map(|t| self.clock.instant(t));
            let msg = match timeout {
                Some(deadline) => {
                    let sleep = self.rt.sleep_until(deadline);
                    let recv = async { Some(self.inbox.recv().await) };
                    futures_lite::future::or(recv, async {
                        sleep.await;
                        None
                    })
                    .await
                }
                None => Some(self.inbox.recv().await),
            };
            match msg {
                None => {
                    let before = self.live.stats();
                    self.live.handle_timeout(self.clock.now());
                    self.record_metrics(&before);
                }
                Some(None) => return,
                Some(Some(msg)) => {
                    if self.on_msg(msg) {
                        self.drain().await;
                        return;
                    }
                    // The race above prefers the inbox: while messages keep arriving the
                    // sleep never wins, so due timers also run after every message.
                    self.run_due_timers();
                }
            }
            self.drain().await;
        }
    }

    /// Runs `Live`'s timers if one is due.
    fn run_due_timers(&mut self) {
        let now = self.clock.now();
        if self.live.poll_timeout().is_some_and(|due| due <= now.mono) {
            let before = self.live.stats();
            self.live.handle_timeout(now);
            self.record_metrics(&before);
        }
    }

    /// Adds what changed since `before` to the metrics, and sets the gauges.
    fn record_metrics(&self, before: &sheaf_core::live::LiveStats) {
        self.metrics.record(
            before,
            &self.live.stats(),
            self.live.session_load(),
            self.live.store_backlog(),
        );
    }

    /// Handles one message; returns true when shutdown completed.
    fn on_msg(&mut self, msg: LiveMsg) -> bool {
        let now = self.clock.now();
        let before = self.live.stats();
        self.metrics.doc_live_tick_main.inc();
        match msg {
            LiveMsg::Input(input) => {
                if let Input::SyncClosed { session, .. } = &input {
                    // The stream task has ended: forget its command channel.
                    self.sessions.remove(session);
                    self.dialing.remove(session);
                }
                if let Input::SyncAllEnded { session, .. } = &input {
                    self.rounds.remove(session);
                }
                if let Input::Replica(event) = &input {
                    match event {
                        ReplicaEvent::LocalInsert { entry, .. } => {
                            self.metrics.new_entries_local.inc();
                            self.metrics
                                .new_entries_local_size
                                .inc_by(entry.content_len());
                        }
                        ReplicaEvent::RemoteInsert { entry, .. } => {
                            self.metrics.new_entries_remote.inc();
                            self.metrics
                                .new_entries_remote_size
                                .inc_by(entry.content_len());
                        }
                    }
                }
                self.live.handle(now, input)
            }
            LiveMsg::Api { command, reply } => {
                let request = ApiRequestId(self.next_api);
                self.next_api += 1;
                self.api.insert(request, reply);
                self.live.handle(now, Input::Api { request, command });
            }
            LiveMsg::SubscriberGone { namespace } => self.prune_subscribers(namespace),
            LiveMsg::SyncStatus { namespace, reply } => {
                let _ = reply.send(self.live.sync_status(&namespace));
            }
            LiveMsg::Subscribe {
                namespace,
                tx,
                reply,
            } => {
                self.subscribers
                    .entry(namespace)
                    .or_default()
                    .push(Subscriber {
                        tx,
                        lag: LagTracker::new(),
                    });
                self.metrics.subscriptions.inc();
                let request = ApiRequestId(self.next_api);
                self.next_api += 1;
                self.api.insert(request, reply);
                self.live.handle(
                    now,
                    Input::Api {
                        request,
                        command: ApiCommand::Subscribe { namespace },
                    },
                );
            }
            LiveMsg::Accepted { conn, send, recv } => {
                let session = SessionId {
                    role: Role::Accept,
                    n: self.next_accept.fetch_add(1, Ordering::Relaxed),
                };
                let peer = peer_id(conn.remote_id());
                self.start_io(session, conn, send, recv);
                self.live.handle(now, Input::SyncAccepted { session, peer });
            }
            LiveMsg::AdmitRound { peer, reply } => self.admit_round(now, peer, reply),
            LiveMsg::Dialed {
                session,
                conn,
                send,
                recv,
            } => {
                if self.dialing.remove(&session).is_some() {
                    self.start_io(session, conn, send, recv);
                    self.live.handle(now, Input::SyncConnected { session });
                } else {
                    conn.close(0u32.into(), b"abandoned");
                }
            }
            LiveMsg::Stop => return true,
            LiveMsg::TopicEnded {
                namespace,
                generation,
            } => {
                if self
                    .topics
                    .get(&namespace)
                    .is_some_and(|t| t.generation == generation)
                {
                    tracing::debug!(?namespace, "gossip subscription ended; Live rejoins");
                    self.topics.remove(&namespace);
                    self.live.handle(
                        now,
                        Input::Gossip {
                            namespace,
                            event: GossipEvent::Ended,
                        },
                    );
                }
            }
        }
        self.record_metrics(&before);
        false
    }

    fn start_io(
        &mut self,
        session: SessionId,
        conn: Connection,
        send: SendStream,
        recv: RecvStream,
    ) {
        let (cmd_tx, cmd_rx) = mpsc::channel(SESSION_COMMANDS);
        self.sessions.insert(session, (cmd_tx, conn.clone()));
        self.rt.spawn(Box::pin(session_io(
            session,
            conn,
            send,
            recv,
            cmd_rx,
            self.tx.clone(),
        )));
    }

    /// Carries out all pending outputs.
    async fn drain(&mut self) {
        while let Some(out) = self.live.poll_output() {
            self.on_output(out).await;
        }
        self.fetch_started();
    }

    /// Fetches the downloads started in this step, those with the same providers together
    /// (see [`crate::fetch`]).
    fn fetch_started(&mut self) {
        let mut groups: BTreeMap<Vec<iroh::EndpointId>, Vec<Hash>> = BTreeMap::new();
        for (hash, providers) in self.started.drain(..) {
            groups.entry(providers).or_default().push(hash);
        }
        for (providers, hashes) in groups {
            let fetcher = self.fetcher.clone();
            let tx = self.tx.clone();
            self.rt.spawn(Box::pin(async move {
                for (hash, outcome) in fetcher.fetch(hashes, providers).await {
                    let finished = Input::DownloadFinished { hash, outcome };
                    if tx.send(LiveMsg::Input(finished)).await.is_err() {
                        return;
                    }
                }
            }));
        }
    }

    async fn on_output(&mut self, out: Output) {
        match out {
            Output::Store { request, command } => {
                // Refused: the store thread is gone (see `store_thread::Exit`) or its queue
                // is full; `Live` handles it as the command's failure.
                if let Err(error) = self.store.send_live(request, command) {
                    self.input(Input::StoreReply {
                        request,
                        result: Err(error),
                    });
                }
            }
            Output::AddAddr(addr) => {
                if let Some(addr) = endpoint_addr(&addr) {
                    self.lookup.add_endpoint_info(addr);
                }
            }
            Output::GossipJoin { namespace, peers } => {
                let peers: Vec<iroh::EndpointId> =
                    peers.into_iter().filter_map(endpoint_id).collect();
                if self.topics.contains_key(&namespace) {
                    // Dropped when the outbox is full: the document's syncs still reach them.
                    self.topic_out(namespace, TopicOut::JoinPeers(peers));
                    return;
                }
                let generation = self.next_topic;
                self.next_topic += 1;
                let topic = Topic::spawn(
                    &self.rt,
                    self.gossip.clone(),
                    namespace,
                    generation,
                    peers,
                    self.tx.clone(),
                );
                self.topics.insert(namespace, topic);
            }
            Output::GossipBan { peer, mute } => {
                if let Some(id) = endpoint_id(peer) {
                    self.gate.ban(id, self.rt.now(), mute);
                }
            }
            Output::GossipLeave { namespace } => {
                self.topics.remove(&namespace);
            }
            Output::GossipBroadcast {
                namespace,
                scope,
                payload,
            } => {
                let out = TopicOut::Broadcast(scope, Bytes::from(payload));
                if !self.topic_out(namespace, out) {
                    // Peers miss this op by gossip: a sync with each neighbour carries it,
                    // as when gossip drops messages for us.
                    self.input(Input::Gossip {
                        namespace,
                        event: GossipEvent::Lagged,
                    });
                }
            }
            Output::SyncConnect { session, peer } => {
                let Some(id) = endpoint_id(peer) else {
                    self.input(Input::SyncClosed {
                        session,
                        error: Some(SessionError::Transport("invalid peer id".into())),
                    });
                    return;
                };
                self.dialing.insert(session, ());
                let endpoint = self.endpoint.clone();
                let tx = self.tx.clone();
                let metrics = self.metrics.clone();
                self.rt.spawn(Box::pin(async move {
                    let res = async {
                        let conn = endpoint
                            .connect(id, ALPN)
                            .await
                            .map_err(|e| e.to_string())?;
                        metrics.count_path(&conn);
                        let (send, recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
                        Ok::<_, String>((conn, send, recv))
                    }
                    .await;
                    let msg = match res {
                        Ok((conn, send, recv)) => LiveMsg::Dialed {
                            session,
                            conn,
                            send,
                            recv,
                        },
                        Err(error) => LiveMsg::Input(Input::SyncClosed {
                            session,
                            error: Some(SessionError::Transport(error)),
                        }),
                    };
                    let _ = tx.send(msg).await;
                }));
            }
            Output::SyncAll {
                session,
                peer,
                namespaces,
            } => self.start_round(session, peer, namespaces),
            Output::RoundAdmit { session, refusal } => self.round_admitted(session, refusal),
            Output::SyncSend { session, bytes } => {
                self.session_cmd(session, SessionCmd::Send(bytes))
            }
            Output::SyncFinish { session } => self.session_cmd(session, SessionCmd::Finish),
            Output::SyncClose { session, .. } => {
                if let Some(cancel) = self.rounds.remove(&session) {
                    let _ = cancel.send(());
                }
                self.dialing.remove(&session);
                self.session_cmd(session, SessionCmd::Close);
                self.sessions.remove(&session);
            }
            Output::Download { hash, providers } => {
                let providers = providers.into_iter().filter_map(endpoint_id).collect();
                self.started.push((hash, providers));
            }
            Output::Event {
                namespace,
                mut event,
            } => {
                if let LiveEvent::InsertRemote {
                    entry,
                    content_status,
                    ..
                } = &mut event
                {
                    let status = self
                        .blobs
                        .blobs()
                        .status(blob_hash(entry.content_hash()))
                        .await
                        .ok();
                    *content_status = to_content_status(status);
                }
                log_sync_finished(namespace, &event);
                self.fanout(namespace, event);
            }
            Output::CloseSubscribers { namespace } => {
                if let Some(subs) = self.subscribers.remove(&namespace) {
                    self.metrics.subscriptions.dec_by(subs.len() as i64);
                }
            }
            Output::Reply { request, result } => {
                if let Some(reply) = self.api.remove(&request) {
                    let _ = reply.send(result);
                }
            }
        }
    }

    fn input(&mut self, input: Input) {
        let now = self.clock.now();
        self.live.handle(now, input);
    }

    /// Queues `out` for the topic's task; false when its outbox is full (the command is
    /// dropped and counted). No topic, or its task ended: nothing to send to, true.
    fn topic_out(&mut self, namespace: NamespaceId, out: TopicOut) -> bool {
        let Some(topic) = self.topics.get(&namespace) else {
            return true;
        };
        if topic.send(out) {
            return true;
        }
        tracing::debug!(?namespace, "gossip outbox full; dropped");
        self.metrics.gossip_outbox_dropped.inc();
        false
    }

    /// Queues `cmd` for the session's stream task. A full queue means the peer stopped
    /// reading our replies while it keeps sending (an honest peer waits for each reply): the
    /// connection is closed, and the stream task reports the session closed to `Live`.
    fn session_cmd(&mut self, session: SessionId, cmd: SessionCmd) {
        let Some((tx, conn)) = self.sessions.get(&session) else {
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(cmd) {
            tracing::debug!(?session, "sync peer does not read its replies; closing");
            conn.close(2u32.into(), b"send queue full");
            self.sessions.remove(&session);
        }
    }

    fn fanout(&mut self, namespace: NamespaceId, event: LiveEvent) {
        self.prune_subscribers(namespace);
        let Some(subs) = self.subscribers.get_mut(&namespace) else {
            return;
        };
        for s in subs {
            s.lag.send(event.clone(), |e| {
                s.tx.try_send(e).err().map(|err| match err {
                    mpsc::error::TrySendError::Full(e) | mpsc::error::TrySendError::Closed(e) => e,
                })
            });
        }
    }

    /// Drops the document's subscribers whose stream is gone, and tells `Live` of each.
    fn prune_subscribers(&mut self, namespace: NamespaceId) {
        let Some(subs) = self.subscribers.get_mut(&namespace) else {
            return;
        };
        let before = subs.len();
        subs.retain(|s| !s.tx.is_closed());
        let gone = before - subs.len();
        if subs.is_empty() {
            self.subscribers.remove(&namespace);
        }
        self.metrics.subscriptions.dec_by(gone as i64);
        for _ in 0..gone {
            let request = ApiRequestId(self.next_api);
            self.next_api += 1;
            let now = self.clock.now();
            self.live.handle(
                now,
                Input::Api {
                    request,
                    command: ApiCommand::Unsubscribe { namespace },
                },
            );
        }
    }
}

/// Owns one sync stream: writes what `Live` sends, reads what the peer sends, and performs
/// the finish / end-of-stream / stopped teardown iroh-docs expects (the outcome is reported
/// before `stopped`, which only keeps the stream alive until the peer acknowledged it).
async fn session_io(
    session: SessionId,
    conn: Connection,
    mut send: SendStream,
    mut recv: RecvStream,
    mut cmds: mpsc::Receiver<SessionCmd>,
    tx: mpsc::Sender<LiveMsg>,
) {
    let report = |input: Input| {
        let tx = tx.clone();
        async move { tx.send(LiveMsg::Input(input)).await.is_ok() }
    };
    let mut buf = vec![0u8; READ_CHUNK];
    let mut finished = false;
    let mut eof = false;
    let error: Option<String> = loop {
        if finished && eof {
            break None;
        }
        enum Step {
            Cmd(Option<SessionCmd>),
            Read(Result<Option<usize>, iroh::endpoint::ReadError>),
        }
        let step = if eof {
            Step::Cmd(cmds.recv().await)
        } else {
            futures_lite::future::or(async { Step::Cmd(cmds.recv().await) }, async {
                Step::Read(recv.read(&mut buf).await)
            })
            .await
        };
        match step {
            Step::Cmd(Some(SessionCmd::Send(bytes))) => {
                if let Err(e) = send.write_all(&bytes).await {
                    break Some(e.to_string());
                }
            }
            Step::Cmd(Some(SessionCmd::Finish)) => {
                if let Err(e) = send.finish() {
                    break Some(e.to_string());
                }
                finished = true;
            }
            Step::Cmd(Some(SessionCmd::Close)) | Step::Cmd(None) => {
                conn.close(1u32.into(), b"sync closed");
                return;
            }
            Step::Read(Ok(Some(n))) => {
                if !report(Input::SyncData {
                    session,
                    bytes: buf[..n].to_vec(),
                })
                .await
                {
                    return;
                }
            }
            Step::Read(Ok(None)) => {
                eof = true;
                if !report(Input::SyncRecvFinished { session }).await {
                    return;
                }
            }
            Step::Read(Err(e)) => break Some(e.to_string()),
        }
    };
    let clean = error.is_none();
    report(Input::SyncClosed {
        session,
        error: error.map(SessionError::Transport),
    })
    .await;
    if clean {
        // Both sides finished and the peer's end of stream arrived: the reconciliation is
        // complete, so the outcome is reported at once. The stream (and with it the
        // connection) stays open until the peer has acknowledged our last bytes; waiting for
        // that first would add the peer's delayed-ACK time (up to 25 ms) to every sync.
        let _ = send.stopped().await;
    }
}

/// One info line per finished sync session: document, peer, origin, outcome, duration.
fn log_sync_finished(namespace: NamespaceId, event: &LiveEvent) {
    let LiveEvent::SyncFinished(sync) = event else {
        return;
    };
    let duration = sync.connect + sync.process;
    match &sync.result {
        Ok(details) => tracing::info!(
            doc = %namespace,
            peer = %sync.peer,
            origin = ?sync.origin,
            ?duration,
            received = details.entries_received,
            sent = details.entries_sent,
            "sync finished: ok"
        ),
        Err(error) => tracing::info!(
            doc = %namespace,
            peer = %sync.peer,
            origin = ?sync.origin,
            ?duration,
            %error,
            "sync finished: failed"
        ),
    }
}
