//! The byzantine node (`--faults byzantine`): one extra, hostile participant that knows the
//! documents' ids and attacks the honest nodes during the safety phase.
//!
//! # Why
//!
//! Anyone who knows a document's id can join its gossip topic and dial its members: the
//! bounds of `Live` (gossip budget and mute, frame limit and deadline before `Init`, per-peer
//! and accepted-session caps, the ranger's per-message bounds) exist for exactly that peer.
//! Unit tests prove each bound alone; here they are proven together, inside a faulty network
//! with crashes and store stalls, with the per-event invariants of every honest node and the
//! requirement that the honest nodes still converge once the attacker is gone.
//!
//! # What it is
//!
//! Not a node of [`Sim::nodes`]: it has no `Live` and no store, and it is never a member
//! whose convergence is checked. It is driven by the simulator from a plan drawn from the
//! seed ([`ByzantinePlan`], stream `faults/byzantine`; its behaviour within an attack comes
//! from stream `byzantine/run`), and it uses the same simulated wires as honest nodes: its
//! gossip messages arrive as [`Event::GossipMsg`] and go through the receiver's real
//! iroh-gossip state, its sync connections are [`crate::net::Conn`]s whose acceptor end is an
//! honest node's `Live`. Honest nodes see `Gossip{Received}`, `SyncAccepted` and `SyncData`
//! exactly as from a real peer. It has 1–5 identities (peer ids; a real attacker makes keys
//! for free), numbered after the honest nodes: node index `nodes.len() + k` is identity `k`.
//! It accepts no connections: honest dials to it fail as unreachable, and what honest nodes
//! send it over gossip is dropped.
//!
//! # Attacks
//!
//! | attack | what it sends |
//! | --- | --- |
//! | forged flood | 20–200 gossip `Put`s of forged entries of one document ([`forge::Forgery`]: newer content or a tombstone under someone else's signatures, or its own author's entry signed with a key that is not the namespace's) to one honest node, from its identities in turn, a few ms apart |
//! | replay | 10–80 gossip `Put`s of valid entries it has seen broadcast, mostly of the document, some of another |
//! | hostile sync | 1–4 sessions, from its identities in turn: a well-formed `Init` (sometimes over the frame limit before `Init`), then 1–12 `Sync` messages of up to 3,000 parts ([`forge::Hostile`]: overlapping whole-namespace fingerprints or item requests, many disjoint ranges, forged values), either all at once (past the session backlog) or one per reply |
//! | silent sync | 1–12 sessions from each identity (the per-peer cap is 8 and the accept cap 8 × nodes with this family) that never send `Init`: nothing at all, a frame header dripped a byte every 1–3 s, a frame announced larger than the limit before `Init`, or an early FIN |
//!
//! It stops at the heal: its connections drop and no further attack starts. The `Live`
//! configuration of a run with this family is [`hostile_config`]: smaller session and gossip
//! bounds, so that a handful of attacks reaches every one of them.

pub mod forge;

use std::{
    collections::{BTreeMap, VecDeque},
    fmt,
};

use rand::RngExt;
use rand_chacha::ChaCha12Rng;
use sheaf_core::{
    hash::PeerId,
    keys::{Author, NamespaceSecret},
    live::{LiveConfig, Role, SessionId},
    wire::{Decode, Encode, Op, SyncMessage},
    SignedEntry,
};

use self::forge::{Forgery, Hostile, Keys};
use crate::{
    config::{secs, stream, PlantedBug, SimConfig, SEC},
    net::{Conn, End, StreamItem},
    world::{Event, Job, Sim},
};

/// Valid entries the attacker remembers for replays (the most recent ones).
pub const MAX_SEEN: usize = 512;

/// Sessions per peer and direction with the byzantine family.
pub const PER_PEER: usize = 8;

/// The `Live` configuration of runs with the byzantine family in a world of `nodes` honest
/// nodes: the defaults, with the bounds an attacker pushes against lowered so that its attacks
/// reach them — [`PER_PEER`] sessions per peer and direction (one identity's silent attack
/// overflows it); accepted sessions enough for every honest peer's full share plus one more
/// peer's (so honest load alone never hits the cap, and an attacker with several identities
/// does); 64 dials; a gossip store budget of 8 per delivering peer and 64 in all.
pub fn hostile_config(base: LiveConfig, nodes: usize) -> LiveConfig {
    LiveConfig {
        max_sessions: 64,
        max_accepted_sessions: PER_PEER * nodes,
        max_sessions_per_peer: PER_PEER,
        max_gossip_store: 64,
        max_gossip_store_per_peer: 8,
        ..base
    }
}

/// What one attack does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttackKind {
    /// Forged gossip `Put`s.
    ForgedFlood,
    /// Replayed valid gossip `Put`s.
    Replay,
    /// Sessions with `Init` and hostile messages.
    HostileSync,
    /// Sessions that never send `Init`.
    SilentSync,
}

/// One attack of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attack {
    /// When, µs of virtual time (within the safety phase).
    pub at: u64,
    /// What.
    pub kind: AttackKind,
    /// The honest node attacked.
    pub target: usize,
    /// The document (index).
    pub doc: usize,
    /// The identity that dials (sessions) or starts the flood.
    pub identity: usize,
    /// Messages (gossip attacks) or sessions (sync attacks).
    pub size: usize,
}

/// The byzantine node's identities and attacks, drawn from the seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByzantinePlan {
    /// Its peer ids.
    pub identities: Vec<PeerId>,
    /// Its attacks, in drawing order.
    pub attacks: Vec<Attack>,
}

impl ByzantinePlan {
    /// Draws the plan of `cfg`'s seed from stream `faults/byzantine`, attacks within
    /// `[1 s, safety)`.
    pub fn draw(cfg: &SimConfig, safety: u64) -> Self {
        let mut rng = stream(cfg.seed, "faults/byzantine");
        let identities = (0..rng.random_range(1..=5usize))
            .map(|_| PeerId::from(rng.random::<[u8; 32]>()))
            .collect::<Vec<_>>();
        let attacks = (0..rng.random_range(4..=12usize))
            .map(|_| {
                let kind = match rng.random_range(0..4u8) {
                    0 => AttackKind::ForgedFlood,
                    1 => AttackKind::Replay,
                    2 => AttackKind::HostileSync,
                    _ => AttackKind::SilentSync,
                };
                let size = match kind {
                    AttackKind::ForgedFlood => rng.random_range(20..=200),
                    AttackKind::Replay => rng.random_range(10..=80),
                    AttackKind::HostileSync => rng.random_range(1..=4),
                    AttackKind::SilentSync => rng.random_range(1..=12),
                };
                Attack {
                    at: rng.random_range(SEC..safety.max(SEC + 1)),
                    kind,
                    target: rng.random_range(0..cfg.nodes),
                    doc: rng.random_range(0..cfg.docs),
                    identity: rng.random_range(0..identities.len()),
                    size,
                }
            })
            .collect();
        Self {
            identities,
            attacks,
        }
    }
}

impl fmt::Display for ByzantinePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sorted = self.attacks.clone();
        sorted.sort_by_key(|a| a.at);
        let attacks: Vec<String> = sorted
            .iter()
            .map(|a| {
                let kind = match a.kind {
                    AttackKind::ForgedFlood => "flood",
                    AttackKind::Replay => "replay",
                    AttackKind::HostileSync => "hostile-sync",
                    AttackKind::SilentSync => "silent-sync",
                };
                format!("{} {kind}×{}→{}", secs(a.at), a.size, a.target)
            })
            .collect();
        let ids: Vec<String> = self.identities.iter().map(|p| p.fmt_short()).collect();
        writeln!(
            f,
            "  byzantine: identities [{}], attacks [{}]",
            ids.join(" "),
            attacks.join(", ")
        )
    }
}

/// Timed work of the byzantine node.
#[derive(Debug, Clone, Copy)]
pub enum ByzEvent {
    /// Attack `i` of the plan starts.
    Attack(usize),
    /// The next byte of a dripping session.
    Drip {
        /// Its connection.
        conn: u64,
    },
}

/// Counters of what the attacker did.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByzStats {
    /// Forged `Put`s sent.
    pub forged: u64,
    /// Replayed `Put`s sent.
    pub replayed: u64,
    /// Sessions opened.
    pub sessions: u64,
}

/// One session the attacker holds (it is always the dialer, end 0 of the connection).
struct ByzSession {
    /// Frames still to send.
    pending: VecDeque<Vec<u8>>,
    /// Send one pending frame per frame received (otherwise all were sent at once).
    paced: bool,
    /// Bytes still to drip.
    drip: VecDeque<u8>,
}

/// The byzantine node's state.
pub struct Byzantine {
    /// Its plan.
    pub plan: ByzantinePlan,
    rng: ChaCha12Rng,
    keys: Keys,
    seen: VecDeque<SignedEntry>,
    sessions: BTreeMap<u64, ByzSession>,
    next_session: u64,
    /// Stopped at the heal.
    pub stopped: bool,
    /// What it did.
    pub stats: ByzStats,
}

impl Byzantine {
    /// The attacker of `seed` with `plan`.
    pub fn new(seed: u64, plan: ByzantinePlan) -> Self {
        let mut rng = stream(seed, "byzantine/run");
        let keys = Keys {
            author: Author::new(&mut rng),
            secret: NamespaceSecret::new(&mut rng),
        };
        Self {
            plan,
            rng,
            keys,
            seen: VecDeque::new(),
            sessions: BTreeMap::new(),
            next_session: 0,
            stopped: false,
            stats: ByzStats::default(),
        }
    }

    /// An honest node broadcast `payload` to a swarm the attacker listens to: remember its
    /// entry for replays.
    pub fn observe(&mut self, payload: &[u8]) {
        if let Ok(Op::Put(entry)) = Op::from_wire(payload) {
            if self.seen.len() == MAX_SEEN {
                self.seen.pop_front();
            }
            self.seen.push_back(entry);
        }
    }

    fn seen(&self) -> Vec<SignedEntry> {
        self.seen.iter().cloned().collect()
    }
}

impl Sim {
    /// Whether node index `i` is one of the byzantine node's identities.
    pub fn is_byzantine(&self, i: usize) -> bool {
        i >= self.nodes.len()
    }

    /// The peer id of node index `i`, honest or byzantine.
    pub fn peer_id(&self, i: usize) -> PeerId {
        match self.nodes.get(i) {
            Some(n) => n.id,
            None => {
                let b = self
                    .byz
                    .as_ref()
                    .expect("a byzantine index without the node");
                b.plan.identities[i - self.nodes.len()]
            }
        }
    }

    /// Runs one event of the byzantine node.
    pub fn byz_event(&mut self, event: ByzEvent) {
        if self.byz.as_ref().is_none_or(|b| b.stopped) {
            return;
        }
        match event {
            ByzEvent::Attack(i) => self.byz_attack(i),
            ByzEvent::Drip { conn } => self.byz_drip(conn),
        }
    }

    fn byz_attack(&mut self, i: usize) {
        let attack = self.byz.as_ref().expect("checked").plan.attacks[i];
        if !self.up(attack.target) {
            return;
        }
        self.trace.note(
            self.now,
            &format!(
                "byzantine: {:?}×{} on node {} document {}",
                attack.kind, attack.size, attack.target, attack.doc
            ),
        );
        match attack.kind {
            AttackKind::ForgedFlood | AttackKind::Replay => self.byz_gossip(attack),
            // Each session from the next identity: sessions of different peers run at once.
            AttackKind::HostileSync => {
                for j in 0..attack.size {
                    self.byz_hostile_session(attack, j);
                }
            }
            // `size` sessions from every identity.
            AttackKind::SilentSync => {
                let identities = self.byz.as_ref().expect("checked").plan.identities.len();
                for j in 0..attack.size * identities {
                    self.byz_silent_session(attack, j);
                }
            }
        }
    }

    /// Gossip `Put`s, forged or replayed, straight to the target's gossip state.
    fn byz_gossip(&mut self, attack: Attack) {
        let ns = self.docs[attack.doc].id;
        let wall = self.node_now(attack.target).wall_micros;
        let n = self.nodes.len();
        let epoch = self.nodes[attack.target].epoch;
        let (base, jitter) = (self.params.latency, self.params.jitter);
        let b = self.byz.as_mut().expect("checked");
        let seen = b.seen();
        let identities = b.plan.identities.len();
        let mut at = self.now;
        let mut sends = Vec::new();
        let mut planted = Vec::new();
        let buggy = matches!(self.cfg.planted_bug,
            Some(PlantedBug::StoreForgedPuts { node }) if node == attack.target);
        for j in 0..attack.size {
            let entry = match attack.kind {
                AttackKind::ForgedFlood => {
                    let kind = Forgery::draw(&mut b.rng);
                    b.stats.forged += 1;
                    let e = forge::forged_entry(&mut b.rng, kind, ns, &seen, &b.keys, wall);
                    if buggy {
                        planted.push(e.clone());
                    }
                    e
                }
                _ => {
                    if seen.is_empty() {
                        break;
                    }
                    // Mostly of the document, now and then of another one.
                    let of_doc: Vec<&SignedEntry> =
                        seen.iter().filter(|e| e.namespace() == ns).collect();
                    let e = if of_doc.is_empty() || b.rng.random_bool(0.2) {
                        seen[b.rng.random_range(0..seen.len())].clone()
                    } else {
                        of_doc[b.rng.random_range(0..of_doc.len())].clone()
                    };
                    b.stats.replayed += 1;
                    e
                }
            };
            let bytes = forge::gossip_message(&Op::Put(entry).to_wire());
            let from = n + (attack.identity + j) % identities;
            at += b.rng.random_range(0..=5 * crate::config::MS);
            let arrive = at + base + b.rng.random_range(0..=jitter);
            sends.push((arrive, from, bytes));
        }
        for entry in planted {
            self.enqueue_job(attack.target, Job::RawPut(entry));
        }
        for (arrive, from, bytes) in sends {
            self.counters.bytes += bytes.len() as u64;
            self.push(
                arrive,
                Event::GossipMsg {
                    to: attack.target,
                    epoch,
                    ns,
                    from,
                    bytes,
                },
            );
        }
    }

    /// Opens a connection from identity `identity` to `target`; its session state is `s`.
    fn byz_dial(&mut self, identity: usize, target: usize, s: ByzSession) -> Option<u64> {
        if !self.up(target) {
            return None;
        }
        let node = self.nodes.len() + identity;
        let b = self.byz.as_mut().expect("checked");
        let session = SessionId {
            role: Role::Dial,
            n: b.next_session,
        };
        b.next_session += 1;
        b.stats.sessions += 1;
        let proc = self.nodes[target].proc.as_mut().expect("up");
        let accept = SessionId {
            role: Role::Accept,
            n: proc.next_accept,
        };
        proc.next_accept += 1;
        let id = self.next_conn;
        self.next_conn += 1;
        let epoch = self.nodes[target].epoch;
        self.conns.insert(
            id,
            Conn {
                ends: [End::new(node, 0, session), End::new(target, epoch, accept)],
                tail: [0, 0],
            },
        );
        self.sessions.insert((target, accept), id);
        let peer = self.peer_id(node);
        self.stream_push(id, 1, StreamItem::Accepted { peer }, 1);
        self.stream_push(id, 0, StreamItem::Connected, 2);
        let b = self.byz.as_mut().expect("checked");
        b.sessions.insert(id, s);
        Some(id)
    }

    /// A session with `Init` and hostile messages.
    fn byz_hostile_session(&mut self, attack: Attack, j: usize) {
        let ns = self.docs[attack.doc].id;
        let wall = self.node_now(attack.target).wall_micros;
        let b = self.byz.as_mut().expect("checked");
        let seen = b.seen();
        let rng = &mut b.rng;
        // Mostly under the 64 KiB limit before `Init` (300 parts of any shape), now and then
        // over it.
        let init_parts = if rng.random_bool(0.8) {
            rng.random_range(1..=300)
        } else {
            rng.random_range(600..=2000)
        };
        let shape = Hostile::draw(rng);
        let message = forge::hostile_message(rng, shape, init_parts, ns, &seen, &b.keys, wall);
        let mut frames = VecDeque::from([forge::frame(&SyncMessage::Init {
            namespace: ns,
            message,
        })]);
        // All at once, more than the session backlog (8) at times; or one per reply.
        for _ in 0..b.rng.random_range(1..=12) {
            let shape = Hostile::draw(&mut b.rng);
            let parts = b.rng.random_range(1..=3000);
            let message =
                forge::hostile_message(&mut b.rng, shape, parts, ns, &seen, &b.keys, wall);
            frames.push_back(forge::frame(&SyncMessage::Sync(message)));
        }
        let paced = b.rng.random_bool(0.5);
        let first = frames.pop_front().expect("the Init");
        let rest: Vec<Vec<u8>> = if paced {
            Vec::new()
        } else {
            frames.drain(..).collect()
        };
        let s = ByzSession {
            pending: frames,
            paced,
            drip: VecDeque::new(),
        };
        let identity = (attack.identity + j) % b.plan.identities.len();
        let Some(conn) = self.byz_dial(identity, attack.target, s) else {
            return;
        };
        self.byz_send(conn, first);
        for f in rest {
            self.byz_send(conn, f);
        }
    }

    /// A session that never sends `Init`.
    fn byz_silent_session(&mut self, attack: Attack, j: usize) {
        let b = self.byz.as_mut().expect("checked");
        let identity = (attack.identity + j) % b.plan.identities.len();
        let mode = b.rng.random_range(0..4u8);
        let mut s = ByzSession {
            pending: VecDeque::new(),
            paced: false,
            drip: VecDeque::new(),
        };
        let mut now_bytes = Vec::new();
        match mode {
            // A small frame's header, then its body, a byte at a time.
            1 => {
                let len: u32 = b.rng.random_range(8..=200);
                s.drip.extend(len.to_be_bytes());
                s.drip.extend((0..len).map(|_| b.rng.random::<u8>()));
            }
            // A frame announced over the limit before `Init`.
            2 => now_bytes.extend(b.rng.random_range(65_537u32..=u32::MAX).to_be_bytes()),
            _ => {}
        }
        let delay = b.rng.random_range(SEC..=3 * SEC);
        let Some(conn) = self.byz_dial(identity, attack.target, s) else {
            return;
        };
        match mode {
            1 => self.push(self.now + delay, Event::Byzantine(ByzEvent::Drip { conn })),
            2 => self.byz_send(conn, now_bytes),
            3 => self.stream_push(conn, 1, StreamItem::Fin, 1),
            _ => {}
        }
    }

    /// Sends frame bytes to the honest end of `conn`.
    fn byz_send(&mut self, conn: u64, bytes: Vec<u8>) {
        if self.conns.get(&conn).is_none_or(|c| c.ends[0].closed) {
            return;
        }
        self.counters.bytes += bytes.len() as u64;
        self.stream_push(conn, 1, StreamItem::Data(bytes), 1);
    }

    fn byz_drip(&mut self, conn: u64) {
        let Some(s) = self.byz.as_mut().and_then(|b| b.sessions.get_mut(&conn)) else {
            return;
        };
        let Some(byte) = s.drip.pop_front() else {
            return;
        };
        let more = !s.drip.is_empty();
        let b = self.byz.as_mut().expect("checked");
        let delay = b.rng.random_range(SEC..=3 * SEC);
        self.byz_send(conn, vec![byte]);
        if more {
            self.push(self.now + delay, Event::Byzantine(ByzEvent::Drip { conn }));
        }
    }

    /// Something arrives at the attacker's end of `conn`.
    pub fn byz_stream(&mut self, conn: u64, item: StreamItem) {
        match item {
            StreamItem::Data(_) => {
                let next = self
                    .byz
                    .as_mut()
                    .and_then(|b| b.sessions.get_mut(&conn))
                    .filter(|s| s.paced)
                    .and_then(|s| s.pending.pop_front());
                if let Some(frame) = next {
                    self.byz_send(conn, frame);
                }
            }
            // The honest end is done: acknowledge and finish too, so it closes cleanly.
            StreamItem::Fin => {
                self.stream_push(conn, 1, StreamItem::FinAck, 1);
                self.stream_push(conn, 1, StreamItem::Fin, 1);
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.ends[0].fin_sent = true;
                    c.ends[0].closed = true;
                }
                self.byz_forget(conn);
            }
            StreamItem::Abort(_) => {
                self.conns.remove(&conn);
                self.byz_forget(conn);
            }
            StreamItem::Accepted { .. } | StreamItem::Connected | StreamItem::FinAck => {}
        }
    }

    /// The attacker's end of `conn` is gone.
    pub fn byz_forget(&mut self, conn: u64) {
        if let Some(b) = self.byz.as_mut() {
            b.sessions.remove(&conn);
        }
    }

    /// The heal: the attacker stops; its connections drop.
    pub fn byz_stop(&mut self) {
        let n = self.nodes.len();
        let Some(b) = self.byz.as_mut() else {
            return;
        };
        b.stopped = true;
        let stats = b.stats;
        let conns: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.ends[0].node >= n)
            .map(|(id, _)| *id)
            .collect();
        for id in conns {
            self.fail_conn(id, "connection lost: peer gone");
        }
        self.trace.note(
            self.now,
            &format!(
                "byzantine node stops: {} forged and {} replayed puts sent, {} sessions opened",
                stats.forged, stats.replayed, stats.sessions
            ),
        );
    }
}
