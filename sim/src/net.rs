//! Sync connections: one simulated QUIC connection with one bi-stream per sync session.
//!
//! Streams are reliable and ordered, as QUIC's are: every item travels with the seeded latency
//! but never overtakes an earlier item in the same direction. What the network faults do to a
//! stream is therefore what they do to a QUIC connection — kill it: a frame sent into a
//! partition, or hit by the loss fault (`sync_fail` per frame), tears the connection down and
//! both ends learn `SyncClosed` with an error after the detection delay; so does a crash of
//! either end. A dial to a crashed or partitioned peer fails after the detection delay.
//!
//! The session lifecycle follows `Live`'s contract:
//!
//! ```text
//!  dialer                         acceptor
//!  SyncConnect ──(latency)──────▶ SyncAccepted        (first item on the dialer→acceptor stream)
//!  SyncConnected ◀──(round trip)
//!  SyncSend ─────(frames)───────▶ SyncData            (and back)
//!  SyncFinish ───(FIN)──────────▶ SyncRecvFinished    (FIN is acknowledged one latency later)
//!  SyncClosed{None} once an end has sent FIN, seen it acknowledged and received the peer's FIN
//!  SyncClose ────(abort)────────▶ SyncClosed{Some("closed by peer: …")}
//! ```
//!
//! An end may belong to the byzantine node ([`crate::byzantine`]), which only ever dials: what
//! arrives at its end goes to the attacker instead of a `Live`, and a broken connection tells
//! only the honest end.
//!
//! All frames pass through unchanged: `Live` encodes them with the production frame codec and
//! decodes what arrives, in whatever chunking, so the codec is exercised on every message.

use sheaf_core::{
    hash::PeerId,
    live::{Input, Role, SessionError, SessionId},
};

use crate::world::{Event, Sim, Work};

/// Something arriving on one end of a connection.
#[derive(Debug, Clone)]
pub enum StreamItem {
    /// The acceptor learns of the new stream.
    Accepted {
        /// The dialer.
        peer: PeerId,
    },
    /// The dialer's stream is open.
    Connected,
    /// Frame bytes.
    Data(Vec<u8>),
    /// The peer finished its sending side.
    Fin,
    /// The peer read our FIN.
    FinAck,
    /// The peer aborted the connection.
    Abort(String),
}

/// One end of a connection.
#[derive(Debug, Clone)]
pub struct End {
    /// Node.
    pub node: usize,
    /// Its incarnation.
    pub epoch: u32,
    /// Its session id.
    pub session: SessionId,
    /// We sent FIN.
    pub fin_sent: bool,
    /// The peer read our FIN.
    pub fin_acked: bool,
    /// We received the peer's FIN.
    pub fin_got: bool,
    /// `SyncClosed` was delivered (or the end aborted).
    pub closed: bool,
}

impl End {
    /// A fresh end of `node` (incarnation `epoch`) for `session`.
    pub fn new(node: usize, epoch: u32, session: SessionId) -> Self {
        Self {
            node,
            epoch,
            session,
            fin_sent: false,
            fin_acked: false,
            fin_got: false,
            closed: false,
        }
    }
}

/// A sync connection.
#[derive(Debug, Clone)]
pub struct Conn {
    /// Dialer (0) and acceptor (1).
    pub ends: [End; 2],
    /// Arrival time of the last item travelling towards each end.
    pub tail: [u64; 2],
}

impl Sim {
    fn end_of(&self, node: usize, session: SessionId) -> Option<(u64, usize)> {
        let id = *self.sessions.get(&(node, session))?;
        let conn = self.conns.get(&id)?;
        let side = usize::from(conn.ends[1].node == node && conn.ends[1].session == session);
        Some((id, side))
    }

    /// Sends `item` towards end `to` of `conn`, in order, after `latencies` latencies.
    pub(crate) fn stream_push(&mut self, id: u64, to: usize, item: StreamItem, latencies: u32) {
        let mut at = self.now;
        for _ in 0..latencies {
            at += self.latency();
        }
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        at = at.max(conn.tail[to]);
        conn.tail[to] = at;
        self.push(at, Event::Stream { conn: id, to, item });
    }

    /// Tears a connection down: every end still open learns `reason` after the detection delay.
    pub fn fail_conn(&mut self, id: u64, reason: &str) {
        let Some(conn) = self.conns.remove(&id) else {
            return;
        };
        for end in conn.ends {
            if self.is_byzantine(end.node) {
                self.byz_forget(id);
                continue;
            }
            self.sessions.remove(&(end.node, end.session));
            if !end.closed {
                let at = self.now + self.params.detect;
                self.push(
                    at,
                    Event::Input {
                        node: end.node,
                        epoch: end.epoch,
                        input: Box::new(Input::SyncClosed {
                            session: end.session,
                            error: Some(SessionError::Transport(reason.to_string())),
                        }),
                    },
                );
            }
        }
    }

    /// Fails every connection for which `dead(a, b)` holds.
    pub fn break_conns(&mut self, dead: impl Fn(&Sim, usize, usize) -> bool, reason: &str) {
        let broken: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| dead(self, c.ends[0].node, c.ends[1].node))
            .map(|(id, _)| *id)
            .collect();
        for id in broken {
            self.fail_conn(id, reason);
        }
    }

    /// `Output::SyncConnect`.
    pub fn sync_connect(&mut self, node: usize, session: SessionId, peer: PeerId) {
        let epoch = self.nodes[node].epoch;
        let target = self.index.get(&peer).copied();
        let Some(j) = target.filter(|j| self.reachable(node, *j) && *j != node) else {
            let at = self.now + self.params.detect;
            self.push(
                at,
                Event::Input {
                    node,
                    epoch,
                    input: Box::new(Input::SyncClosed {
                        session,
                        error: Some(SessionError::Transport(
                            "dial failed: peer unreachable".into(),
                        )),
                    }),
                },
            );
            return;
        };
        let proc = self.nodes[j].proc.as_mut().expect("reachable");
        let accept = SessionId {
            role: Role::Accept,
            n: proc.next_accept,
        };
        proc.next_accept += 1;
        let end = End::new;
        let id = self.next_conn;
        self.next_conn += 1;
        let epoch_j = self.nodes[j].epoch;
        self.conns.insert(
            id,
            Conn {
                ends: [end(node, epoch, session), end(j, epoch_j, accept)],
                tail: [0, 0],
            },
        );
        self.sessions.insert((node, session), id);
        self.sessions.insert((j, accept), id);
        let me = self.nodes[node].id;
        self.stream_push(id, 1, StreamItem::Accepted { peer: me }, 1);
        self.stream_push(id, 0, StreamItem::Connected, 2);
    }

    /// `Output::SyncSend`.
    pub fn sync_send(&mut self, node: usize, session: SessionId, bytes: Vec<u8>) {
        let Some((id, side)) = self.end_of(node, session) else {
            return;
        };
        if self.drops_frame(node) {
            return;
        }
        self.counters.bytes += bytes.len() as u64;
        let other = self.conns[&id].ends[1 - side].node;
        let fail = self.params.sync_fail;
        if self.blocked(node, other) {
            return self.fail_conn(id, "connection lost: partitioned");
        }
        if fail > 0.0 && rand::RngExt::random_bool(&mut self.net_rng, fail) {
            return self.fail_conn(id, "connection lost");
        }
        self.stream_push(id, 1 - side, StreamItem::Data(bytes), 1);
    }

    /// `Output::SyncFinish`.
    pub fn sync_finish(&mut self, node: usize, session: SessionId) {
        let Some((id, side)) = self.end_of(node, session) else {
            return;
        };
        let conn = self.conns.get_mut(&id).expect("found");
        conn.ends[side].fin_sent = true;
        let other = conn.ends[1 - side].node;
        if self.blocked(node, other) {
            return self.fail_conn(id, "connection lost: partitioned");
        }
        self.stream_push(id, 1 - side, StreamItem::Fin, 1);
    }

    /// `Output::SyncClose`: abort now; the peer learns it after one latency.
    pub fn sync_close(&mut self, node: usize, session: SessionId, reason: SessionError) {
        let Some((id, side)) = self.end_of(node, session) else {
            return;
        };
        self.sessions.remove(&(node, session));
        let conn = self.conns.get_mut(&id).expect("found");
        conn.ends[side].closed = true;
        let other = conn.ends[1 - side].clone();
        if other.closed {
            self.conns.remove(&id);
            return;
        }
        if self.blocked(node, other.node) {
            return self.fail_conn(id, "connection lost: partitioned");
        }
        self.stream_push(id, 1 - side, StreamItem::Abort(reason.to_string()), 1);
    }

    /// Something arrives at end `to` of connection `id`.
    pub fn stream_arrive(&mut self, id: u64, to: usize, item: StreamItem) {
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        let end = &conn.ends[to];
        if end.closed {
            return;
        }
        if self.is_byzantine(end.node) {
            return self.byz_stream(id, item);
        }
        let (node, epoch, session) = (end.node, end.epoch, end.session);
        if self.nodes[node].epoch != epoch || !self.up(node) {
            return;
        }
        let end = &mut self.conns.get_mut(&id).expect("checked").ends[to];
        let mut work = std::collections::VecDeque::new();
        let live = |input| Work::Live(input);
        match item {
            StreamItem::Accepted { peer } => {
                work.push_back(live(Input::SyncAccepted { session, peer }))
            }
            StreamItem::Connected => work.push_back(live(Input::SyncConnected { session })),
            StreamItem::Data(bytes) => work.push_back(live(Input::SyncData { session, bytes })),
            StreamItem::Fin => {
                end.fin_got = true;
                work.push_back(live(Input::SyncRecvFinished { session }));
                self.stream_push(id, 1 - to, StreamItem::FinAck, 1);
                self.maybe_closed(id, to, &mut work);
            }
            StreamItem::FinAck => {
                end.fin_acked = true;
                self.maybe_closed(id, to, &mut work);
            }
            StreamItem::Abort(reason) => {
                self.conns.remove(&id);
                self.sessions.remove(&(node, session));
                work.push_back(live(Input::SyncClosed {
                    session,
                    error: Some(SessionError::Transport(format!("closed by peer: {reason}"))),
                }));
            }
        }
        self.drive_all(node, &mut work);
    }

    /// Delivers `SyncClosed{None}` to end `side` once its teardown is complete.
    fn maybe_closed(&mut self, id: u64, side: usize, work: &mut std::collections::VecDeque<Work>) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let end = &mut conn.ends[side];
        if end.closed || !(end.fin_sent && end.fin_acked && end.fin_got) {
            return;
        }
        end.closed = true;
        let (node, session) = (end.node, end.session);
        work.push_back(Work::Live(Input::SyncClosed {
            session,
            error: None,
        }));
        self.sessions.remove(&(node, session));
        if conn.ends.iter().all(|e| e.closed) {
            self.conns.remove(&id);
        }
    }
}
