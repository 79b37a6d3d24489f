//! Sync v2 connections: one simulated QUIC connection per round, with its control stream and
//! its document streams, driven by the core's [`Round`] on each end.
//!
//! Which nodes serve v2 is drawn per seed ([`V2Params`]): a mixed swarm of v1-only and v2
//! nodes. A v2 node's `Live` dials rounds (`Output::SyncAll`); a round dialed to a v1-only
//! node answers [`RoundOutcome::V1Only`] after a round trip, as iroh's ALPN negotiation does,
//! and `Live` falls back to v1 per document.
//!
//! Every message is encoded with the production frame codec and decoded on arrival. Streams
//! are reliable and ordered: all of a connection's streams in one direction share one FIFO
//! (a valid schedule of QUIC streams; the harness of `sheaf_core::v2::round` tests random
//! interleavings). Faults act as on v1 connections: a message sent into a partition or hit by
//! the loss fault (`sync_fail`) breaks the connection, and so does a crash of either end;
//! each end still running learns it after the detection delay. A crashed end's round dies
//! with its process (its store state with it).
//!
//! Each end's store commands go through its node's store executor ([`Job::V2`]), in order,
//! with the store faults: a failed command fails the round, which still drops its store state
//! (`V2Command::End`) before it reports. A node serves at most [`MAX_V2_ACCEPTED`] rounds at
//! once, as the engine does; one more is refused (the dialer's round fails).

use std::collections::{BTreeMap, VecDeque};

use rand::RngExt;
use sheaf_core::{
    hash::PeerId,
    keys::NamespaceId,
    live::{Input, Role, RoundOutcome, SessionError, SessionId},
    replica::{V2Command, V2Response},
    v2::{
        codec::{AbortCode, Message},
        conn::{ConnConfig, Offer},
        doc::DocConfig,
        frame::{encode_frame, FrameDecoder},
        round::{Round, RoundInput, RoundOutput},
    },
};

use crate::{
    config::stream,
    world::{Event, Job, Sim, Work},
};

/// Rounds a node serves at once.
pub const MAX_V2_ACCEPTED: usize = 64;
/// An end with no progress (nothing arrived, no store answer) for this long gives up, as the
/// engine's connection task does (`sheaf::v2::IDLE`), µs.
pub const V2_IDLE: u64 = 30 * crate::config::SEC;
/// Items an acceptor holds before its round exists (its offers are being read).
const MAX_EARLY: usize = 1024;

/// Sync v2 in a seed: which nodes serve it, and the round policy.
#[derive(Debug, Clone)]
pub struct V2Params {
    /// Per node: serves (and dials) v2.
    pub nodes: Vec<bool>,
    /// Round policy of every node: small RIBLT and leaf bounds in some seeds, so that range
    /// splits run on the simulator's small documents.
    pub config: ConnConfig,
}

/// Which nodes run v2 (`--v2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum V2Mix {
    /// None: every sync is v1.
    None,
    /// Each node serves v2 with probability ½ (drawn per seed).
    #[default]
    Mixed,
    /// All nodes.
    All,
}

impl std::str::FromStr for V2Mix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(V2Mix::None),
            "mixed" => Ok(V2Mix::Mixed),
            "all" => Ok(V2Mix::All),
            _ => Err(format!(
                "unknown v2 mix {s:?} (expected none, mixed or all)"
            )),
        }
    }
}

impl std::fmt::Display for V2Mix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            V2Mix::None => "none",
            V2Mix::Mixed => "mixed",
            V2Mix::All => "all",
        })
    }
}

impl V2Params {
    /// Draws the parameters from the seed's own stream (no other draw moves).
    pub fn draw(seed: u64, nodes: usize, mix: V2Mix) -> Self {
        let mut rng = stream(seed, "v2");
        let serves: Vec<bool> = (0..nodes).map(|_| rng.random_bool(0.5)).collect();
        let small = rng.random_bool(0.5);
        let max_streams = rng.random_range(1..=4);
        let config = ConnConfig {
            max_streams,
            doc: if small {
                DocConfig {
                    riblt_max_items: 8,
                    // Unasked symbols in several frames: decoded early, the rest dropped.
                    first_symbols: 2,
                    unasked_symbols: 8,
                    leaf: 3,
                    // Below `leaf`, so that sparse and dense turns list differently.
                    eager_leaf: 1,
                    ..DocConfig::default()
                }
            } else {
                DocConfig::default()
            },
            ..ConnConfig::default()
        };
        let nodes = match mix {
            V2Mix::None => vec![false; nodes],
            V2Mix::Mixed => serves,
            V2Mix::All => vec![true; nodes],
        };
        Self { nodes, config }
    }
}

/// Something arriving at one end of a v2 connection.
#[derive(Debug, Clone)]
pub enum V2Item {
    /// The acceptor learns of the connection.
    Start,
    /// A frame on the control stream.
    Control(Vec<u8>),
    /// The peer finished the control stream.
    ControlFin,
    /// A frame on a document stream (its link number).
    Doc(u64, Vec<u8>),
    /// The peer finished a document stream.
    DocFin(u64),
    /// The peer closed the connection.
    Closed,
    /// The connection broke.
    Broken(String),
    /// The acceptor's `Live` refused the round and closed the connection with this code.
    Refused(AbortCode),
}

/// One end of a v2 connection.
#[derive(Debug)]
pub struct V2End {
    node: usize,
    epoch: u32,
    /// `None` until its offers are read.
    round: Option<Round>,
    /// The dialer's `Live` session.
    session: Option<SessionId>,
    /// The acceptor's `Live` session, once it asked for admission.
    served: Option<SessionId>,
    /// The acceptor's `Live` admitted the round.
    admitted: bool,
    /// The dialer's round was refused with `Duplicate` (the tie-break).
    refused: bool,
    /// Round stream id → link, and back.
    links: BTreeMap<u64, u64>,
    ids: BTreeMap<u64, u64>,
    /// What arrived before the round existed.
    early: VecDeque<V2Item>,
    /// Closed the connection (sends nothing more).
    closed: bool,
    /// The round is over, or died with its process.
    ended: bool,
    /// Last progress (virtual µs), and whether an idle check is queued.
    progress: u64,
    watched: bool,
    /// Gave up for lack of progress.
    idle: bool,
}

impl V2End {
    fn new(node: usize, epoch: u32, session: Option<SessionId>) -> Self {
        Self {
            node,
            epoch,
            round: None,
            session,
            served: None,
            admitted: false,
            refused: false,
            links: BTreeMap::new(),
            ids: BTreeMap::new(),
            early: VecDeque::new(),
            closed: false,
            ended: false,
            progress: 0,
            watched: false,
            idle: false,
        }
    }
}

/// A v2 connection.
#[derive(Debug)]
pub struct V2Conn {
    /// Dialer (0) and acceptor (1).
    pub ends: [V2End; 2],
    /// Arrival time of the last item towards each end.
    tail: [u64; 2],
    next_link: u64,
    /// Documents the dialer offers.
    only: Vec<NamespaceId>,
    /// Broken: nothing more travels.
    broken: bool,
    /// When it was dialed (virtual µs).
    started: u64,
}

impl Sim {
    fn v2_config(&self) -> ConnConfig {
        self.v2.config
    }

    /// `Output::SyncAll`.
    pub fn sync_all(
        &mut self,
        node: usize,
        session: SessionId,
        peer: PeerId,
        namespaces: Vec<NamespaceId>,
    ) {
        let epoch = self.nodes[node].epoch;
        let target = self.index.get(&peer).copied();
        let report = |sim: &mut Sim, at: u64, outcome: RoundOutcome| {
            let input = Box::new(Input::SyncAllEnded { session, outcome });
            sim.push(at, Event::Input { node, epoch, input });
        };
        let Some(j) = target.filter(|j| self.reachable(node, *j) && *j != node) else {
            let at = self.now + self.params.detect;
            let e = SessionError::Transport("dial failed: peer unreachable".into());
            return report(self, at, RoundOutcome::Failed(e));
        };
        let rtt = self.latency() + self.latency();
        if !self.v2.nodes[j] {
            self.counters.v2_v1_answers += 1;
            return report(self, self.now + rtt, RoundOutcome::V1Only);
        }
        let serving = self
            .v2conns
            .values()
            .filter(|c| c.ends[1].node == j && !c.ends[1].ended)
            .count();
        if serving >= MAX_V2_ACCEPTED {
            let e = SessionError::Transport("closed by peer: busy".into());
            return report(self, self.now + rtt, RoundOutcome::Failed(e));
        }
        let id = self.next_v2;
        self.next_v2 += 1;
        self.counters.v2_rounds += 1;
        let epoch_j = self.nodes[j].epoch;
        self.v2conns.insert(
            id,
            V2Conn {
                ends: [
                    V2End::new(node, epoch, Some(session)),
                    V2End::new(j, epoch_j, None),
                ],
                tail: [0, 0],
                next_link: 1,
                only: namespaces,
                broken: false,
                started: self.now,
            },
        );
        self.trace.note(
            self.now,
            &format!("v2 round {id}: node {node} dials node {j}"),
        );
        self.v2_push(id, 1, V2Item::Start);
        self.v2_progress(id, 0);
        self.enqueue_job(
            node,
            Job::V2 {
                conn: id,
                end: 0,
                command: V2Command::Offers,
            },
        );
    }

    /// Sends `item` towards end `to`, after one latency, in order.
    fn v2_push(&mut self, id: u64, to: usize, item: V2Item) {
        let at = self.now + self.latency();
        let Some(conn) = self.v2conns.get_mut(&id) else {
            return;
        };
        let at = at.max(conn.tail[to]);
        conn.tail[to] = at;
        self.push(at, Event::V2 { conn: id, to, item });
    }

    /// Sends what end `from` writes: checked against partitions and the loss fault.
    fn v2_send(&mut self, id: u64, from: usize, item: V2Item) {
        let Some(conn) = self.v2conns.get(&id) else {
            return;
        };
        if conn.broken || conn.ends[from].closed {
            return;
        }
        let (a, b) = (conn.ends[from].node, conn.ends[1 - from].node);
        if let V2Item::Control(bytes) | V2Item::Doc(_, bytes) = &item {
            self.counters.bytes += bytes.len() as u64;
            if self.drops_frame(a) {
                return;
            }
        }
        if self.blocked(a, b) {
            return self.break_v2(id, "connection lost: partitioned");
        }
        let fail = self.params.sync_fail;
        if fail > 0.0 && self.net_rng.random_bool(fail) {
            return self.break_v2(id, "connection lost");
        }
        self.v2_push(id, 1 - from, item);
    }

    /// Breaks a connection: every end still running learns it after the detection delay.
    pub fn break_v2(&mut self, id: u64, reason: &str) {
        let Some(conn) = self.v2conns.get_mut(&id) else {
            return;
        };
        if conn.broken {
            return;
        }
        conn.broken = true;
        let open: Vec<usize> = (0..2).filter(|e| !conn.ends[*e].ended).collect();
        let at = self.now + self.params.detect;
        for to in open {
            let item = V2Item::Broken(reason.to_string());
            self.push(at, Event::V2 { conn: id, to, item });
        }
    }

    /// Breaks every v2 connection between nodes for which `dead(a, b)` holds; the ends on
    /// nodes that are down die with their process.
    pub fn break_v2_conns(&mut self, dead: impl Fn(&Sim, usize, usize) -> bool, reason: &str) {
        let broken: Vec<u64> = self
            .v2conns
            .iter()
            .filter(|(_, c)| dead(self, c.ends[0].node, c.ends[1].node))
            .map(|(id, _)| *id)
            .collect();
        for id in broken {
            let down: Vec<usize> = (0..2)
                .filter(|e| !self.up(self.v2conns[&id].ends[*e].node))
                .collect();
            let conn = self.v2conns.get_mut(&id).expect("listed");
            for e in down {
                conn.ends[e].ended = true;
            }
            self.break_v2(id, reason);
            self.v2_gc(id);
        }
    }

    fn v2_gc(&mut self, id: u64) {
        if self
            .v2conns
            .get(&id)
            .is_some_and(|c| c.ends.iter().all(|e| e.ended))
        {
            self.v2conns.remove(&id);
        }
    }

    /// The end `to` of `id` if it still runs on its node's current process.
    fn v2_live_end(&self, id: u64, to: usize) -> Option<usize> {
        let end = &self.v2conns.get(&id)?.ends[to];
        (!end.ended && self.nodes[end.node].epoch == end.epoch && self.up(end.node))
            .then_some(end.node)
    }

    /// Something arrives at end `to`.
    pub fn v2_arrive(&mut self, id: u64, to: usize, item: V2Item) {
        let Some(node) = self.v2_live_end(id, to) else {
            return;
        };
        self.v2_progress(id, to);
        let conn = self.v2conns.get_mut(&id).expect("live");
        let dialer = self.nodes[conn.ends[0].node].id;
        let acceptor = conn.ends[1].node;
        let end = &mut conn.ends[to];
        if let V2Item::Start = item {
            // The acceptor's `Live` admits the round first (`Output::RoundAdmit`).
            let proc = self.nodes[node].proc.as_mut().expect("live end");
            let session = SessionId {
                role: Role::Accept,
                n: proc.next_accept,
            };
            proc.next_accept += 1;
            end.served = Some(session);
            let mut work = VecDeque::from([Work::Live(Input::RoundAccepted {
                session,
                peer: dialer,
            })]);
            return self.drive_all(node, &mut work);
        }
        let item = match item {
            V2Item::Refused(code) => {
                end.refused = code == AbortCode::Duplicate;
                self.nodes[node]
                    .v2_refused
                    .insert(acceptor, (self.now, code));
                V2Item::Broken(format!("closed by peer: {code:?}"))
            }
            item => item,
        };
        if end.round.is_none() {
            if end.early.len() >= MAX_EARLY {
                return self.break_v2(id, "too much before the round started");
            }
            end.early.push_back(item);
            return;
        }
        let mut work = VecDeque::new();
        self.v2_feed(id, to, item, &mut work);
        self.drive_all(node, &mut work);
    }

    /// Hands an arrived item to the end's round and carries out what it asks.
    fn v2_feed(&mut self, id: u64, to: usize, item: V2Item, work: &mut VecDeque<Work>) {
        let Some(conn) = self.v2conns.get_mut(&id) else {
            return;
        };
        let end = &mut conn.ends[to];
        let Some(round) = end.round.as_mut() else {
            return;
        };
        let decode = |bytes: &[u8]| -> Result<Message, String> {
            let mut d = FrameDecoder::new();
            d.feed(bytes).map_err(|e| e.to_string())?;
            d.next_message()
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "incomplete frame".to_string())
        };
        let input = match item {
            V2Item::Start | V2Item::Refused(_) => return,
            V2Item::Control(bytes) => match decode(&bytes) {
                Ok(m) => RoundInput::Control(m),
                Err(e) => RoundInput::Failed(e),
            },
            V2Item::ControlFin => RoundInput::ControlEnded,
            V2Item::Doc(link, bytes) => {
                let stream = match end.ids.get(&link) {
                    Some(s) => *s,
                    None => match round.incoming() {
                        Some(s) => {
                            end.ids.insert(link, s);
                            end.links.insert(s, link);
                            s
                        }
                        None => return,
                    },
                };
                match decode(&bytes) {
                    Ok(message) => RoundInput::Doc { stream, message },
                    Err(_) => RoundInput::DocFailed(stream),
                }
            }
            V2Item::DocFin(link) => match end.ids.get(&link) {
                Some(s) => RoundInput::DocEnded(*s),
                None => return,
            },
            V2Item::Closed => RoundInput::Closed,
            V2Item::Broken(reason) => RoundInput::Failed(reason),
        };
        round.handle(input);
        self.v2_route(id, to, work);
    }

    /// End `to` made progress now; an idle check is queued if none is.
    fn v2_progress(&mut self, id: u64, to: usize) {
        let now = self.now;
        let Some(end) = self.v2conns.get_mut(&id).map(|c| &mut c.ends[to]) else {
            return;
        };
        end.progress = now;
        if !end.watched {
            end.watched = true;
            self.push(now + V2_IDLE, Event::V2Idle { conn: id, to });
        }
    }

    /// An idle check of end `to`: without progress for [`V2_IDLE`], the round gives up.
    pub fn v2_idle_check(&mut self, id: u64, to: usize) {
        let now = self.now;
        let Some(end) = self.v2conns.get_mut(&id).map(|c| &mut c.ends[to]) else {
            return;
        };
        end.watched = false;
        if end.ended {
            return;
        }
        if now < end.progress + V2_IDLE {
            let at = end.progress + V2_IDLE;
            end.watched = true;
            return self.push(at, Event::V2Idle { conn: id, to });
        }
        end.idle = true;
        let Some(node) = self.v2_live_end(id, to) else {
            return;
        };
        let mut work = VecDeque::new();
        if self.v2conns[&id].ends[to].round.is_some() {
            self.v2_feed(id, to, V2Item::Broken("no progress".into()), &mut work);
        } else {
            self.v2_end(id, to, Err("no progress".into()), &mut work);
        }
        self.drive_all(node, &mut work);
    }

    /// The store executor answered end `end`'s command.
    pub(crate) fn v2_store_reply(
        &mut self,
        id: u64,
        to: usize,
        result: Result<V2Response, String>,
        work: &mut VecDeque<Work>,
    ) {
        let Some(node) = self.v2_live_end(id, to) else {
            return;
        };
        self.v2_progress(id, to);
        let conn = self.v2conns.get_mut(&id).expect("live");
        if conn.ends[to].round.is_some() {
            conn.ends[to]
                .round
                .as_mut()
                .expect("checked")
                .handle(RoundInput::Store(result));
            return self.v2_route(id, to, work);
        }
        // The offers: the round starts.
        let offers: Vec<Offer> = match result {
            Ok(V2Response::Offers(mut o)) => {
                if to == 0 {
                    o.retain(|x| conn.only.contains(&x.namespace));
                }
                o
            }
            other => {
                let e = format!("offers: {other:?}");
                return self.v2_end(id, to, Err(e), work);
            }
        };
        let me = self.nodes[node].id;
        let peer = self.nodes[self.v2conns[&id].ends[1 - to].node].id;
        let config = self.v2_config();
        let round = if to == 0 {
            let mut nonce = [0u8; 32];
            self.net_rng.fill(&mut nonce[..]);
            match Round::dial(id, config, nonce, me, peer, &offers) {
                Ok(r) => r,
                Err(e) => return self.v2_end(id, to, Err(e.to_string()), work),
            }
        } else {
            Round::accept(id, config, me, peer, offers)
        };
        let end = &mut self.v2conns.get_mut(&id).expect("live").ends[to];
        end.round = Some(round);
        let early: Vec<V2Item> = end.early.drain(..).collect();
        self.v2_route(id, to, work);
        for item in early {
            self.v2_feed(id, to, item, work);
        }
    }

    /// Carries out end `to`'s round outputs.
    fn v2_route(&mut self, id: u64, to: usize, work: &mut VecDeque<Work>) {
        loop {
            let Some(conn) = self.v2conns.get_mut(&id) else {
                return;
            };
            let end = &mut conn.ends[to];
            let node = end.node;
            let Some(out) = end.round.as_mut().and_then(Round::poll_output) else {
                return;
            };
            let link_of = |sim: &Sim, stream: u64| {
                sim.v2conns
                    .get(&id)
                    .and_then(|c| c.ends[to].links.get(&stream).copied())
            };
            match out {
                RoundOutput::Store(command) => self.enqueue_job(
                    node,
                    Job::V2 {
                        conn: id,
                        end: to,
                        command,
                    },
                ),
                RoundOutput::Control(msgs) => {
                    for m in msgs {
                        self.v2_send(id, to, V2Item::Control(frame(&m)));
                    }
                }
                RoundOutput::Open(stream) => {
                    let link = conn.next_link;
                    conn.next_link += 1;
                    conn.ends[to].links.insert(stream, link);
                    conn.ends[to].ids.insert(link, stream);
                }
                RoundOutput::Send { stream, messages } => {
                    if let Some(link) = link_of(self, stream) {
                        for m in messages {
                            self.v2_send(id, to, V2Item::Doc(link, frame(&m)));
                        }
                    }
                }
                RoundOutput::Finish(stream) => {
                    if let Some(link) = link_of(self, stream) {
                        self.v2_send(id, to, V2Item::DocFin(link));
                    }
                }
                RoundOutput::FinishControl => self.v2_send(id, to, V2Item::ControlFin),
                // A dialer whose round ended well keeps the connection as the engine does
                // (`docs/sync-v2.md` §6.6): it finishes its control stream instead of closing,
                // on every other connection, so that both endings are exercised.
                RoundOutput::Close(AbortCode::Done) if to == 0 && id.is_multiple_of(2) => {
                    if !conn.ends[to].closed && !conn.broken {
                        self.v2_send(id, to, V2Item::ControlFin);
                        if let Some(c) = self.v2conns.get_mut(&id) {
                            c.ends[to].closed = true;
                        }
                    }
                }
                RoundOutput::Close(code) => {
                    let was = (conn.ends[to].closed, conn.broken);
                    conn.ends[to].closed = true;
                    if was == (false, false) {
                        if code != AbortCode::Done {
                            self.counters.v2_failed_closes += 1;
                        }
                        self.v2_push(id, 1 - to, V2Item::Closed);
                    }
                }
                RoundOutput::Ended(result) => {
                    if let Ok(r) = &result {
                        self.counters.v2_docs += r.differing;
                    }
                    return self.v2_end(id, to, result, work);
                }
            }
        }
    }

    /// End `to`'s round is over: the dialer's `Live` learns how it went.
    fn v2_end(
        &mut self,
        id: u64,
        to: usize,
        result: Result<sheaf_core::v2::round::RoundReport, String>,
        work: &mut VecDeque<Work>,
    ) {
        let Some(conn) = self.v2conns.get_mut(&id) else {
            return;
        };
        let end = &mut conn.ends[to];
        if end.ended {
            return;
        }
        end.ended = true;
        let session = end.session;
        let served = end.served.filter(|_| end.admitted);
        let (idle, refused) = (end.idle, end.refused);
        let failed = result.is_err();
        self.trace.note(
            self.now,
            &format!("v2 round {id}: end {to} over, {result:?}"),
        );
        if failed {
            // The other end learns it: a round that failed here closed the connection.
            self.break_v2(id, "closed by peer: round failed");
        }
        if let Some(session) = served {
            let took = std::time::Duration::from_micros(self.now - self.v2conns[&id].started);
            work.push_back(Work::Live(Input::RoundServed {
                session,
                report: result.as_ref().ok().cloned(),
                took,
            }));
        }
        if let Some(session) = session {
            let outcome = match result {
                Ok(report) => RoundOutcome::Synced(report),
                Err(_) if refused => RoundOutcome::Refused,
                Err(_) if idle => RoundOutcome::Failed(SessionError::IdleTimeout),
                Err(e) => RoundOutcome::Failed(SessionError::Transport(e)),
            };
            work.push_back(Work::Live(Input::SyncAllEnded { session, outcome }));
        }
        self.v2_gc(id);
    }

    /// `Output::RoundAdmit`: the acceptor end of the round `node`'s `Live` was asked about
    /// reads its offers and serves it, or closes the connection with the refusal's code.
    pub fn v2_admit(&mut self, node: usize, session: SessionId, refusal: Option<AbortCode>) {
        let found = self.v2conns.iter().find(|(_, c)| {
            c.ends[1].node == node && c.ends[1].served == Some(session) && !c.ends[1].ended
        });
        let Some(id) = found.map(|(id, _)| *id) else {
            return;
        };
        let conn = self.v2conns.get_mut(&id).expect("found");
        match refusal {
            None => {
                conn.ends[1].admitted = true;
                self.enqueue_job(
                    node,
                    Job::V2 {
                        conn: id,
                        end: 1,
                        command: V2Command::Offers,
                    },
                );
            }
            Some(code) => {
                if code == AbortCode::Duplicate {
                    self.counters.v2_crossed += 1;
                }
                self.trace.note(
                    self.now,
                    &format!("v2 round {id}: refused by node {node}, {code:?}"),
                );
                conn.ends[1].ended = true;
                conn.ends[1].closed = true;
                if !conn.broken {
                    self.v2_push(id, 0, V2Item::Refused(code));
                }
                self.v2_gc(id);
            }
        }
    }

    /// `Output::SyncClose` of a round's session: the round fails (and still reports).
    pub fn v2_close(&mut self, node: usize, session: SessionId) -> bool {
        let found = self
            .v2conns
            .iter()
            .find(|(_, c)| c.ends[0].node == node && c.ends[0].session == Some(session))
            .map(|(id, _)| *id);
        let Some(id) = found else {
            return false;
        };
        let mut work = VecDeque::new();
        self.v2_feed(
            id,
            0,
            V2Item::Broken("closed by the node".into()),
            &mut work,
        );
        self.drive_all(node, &mut work);
        true
    }
}

fn frame(m: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    // Rounds write only messages that fit a frame.
    encode_frame(m, &mut out).expect("a round's message fits a frame");
    out
}
