//! One sync v2 connection round, sans-IO: the connection's streams, the order in which their
//! messages reach the store's document sessions, and when the round is over.
//!
//! The [connection session](super::conn) decides phase 1 and which documents run; the
//! [store's document sessions](crate::replica::V2Command) decide each document. What is left
//! between them is still protocol: which stream a message belongs to, parking a document
//! stream's messages until the control stream defines their authors, opening streams as others
//! end, answering a stream whose tag is unknown, ending the round without losing frames in
//! flight. [`Round`] does all of that, so the engine's connection task and the simulator run
//! the same decisions and only move bytes.
//!
//! # Contract
//!
//! * Create the round with [`Round::dial`] (after opening the control stream) or
//!   [`Round::accept`] (after accepting it), then drain [`Round::poll_output`] and carry out
//!   each [`RoundOutput`] in order. After every [`Round::handle`], drain again.
//! * [`RoundOutput::Store`] asks for one store command; answer it with
//!   [`RoundInput::Store`]. At most one is outstanding: inputs that arrive meanwhile wait in
//!   the round, in order (at most [`MAX_QUEUED_INPUTS`]; one more fails the round).
//! * A stream the peer opens is registered with [`Round::incoming`], which names it.
//! * The round is over after [`RoundOutput::Ended`]; its store state has been dropped
//!   (`V2Command::End`) by then, on success and on failure alike.
//!
//! # Ending without losing frames in flight
//!
//! The acceptor finishes its control stream once all its document sessions are done (it then
//! holds everything the dialer sent) and waits for [`RoundInput::Closed`]; the dialer closes
//! the connection with `Done` once its own sessions are done (it then holds everything the
//! acceptor sent) and the acceptor's control stream has ended.
//!
//! # Bounds
//!
//! A document stream holds at most [`PARKED_PER_STREAM`] messages while it waits for an
//! author definition; one more aborts it (`Protocol`). Streams are at most
//! [`MAX_V2_STREAMS`]: [`Round::incoming`] refuses more. The runtime bounds time (an idle
//! connection is reported as [`RoundInput::Failed`]).

#[cfg(test)]
pub(crate) mod harness;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};

use crate::{
    hash::PeerId,
    keys::NamespaceId,
    replica::{V2Command, V2Response, V2Step, MAX_V2_STREAMS},
    v2::{
        codec::{AbortCode, Message},
        conn::{Acceptor, ConnConfig, ConnError, Dialer, Offer},
        doc::DocStats,
    },
    wire::AuthorHeads,
};

/// Inputs a round holds while it waits for the store; one more fails the round.
pub const MAX_QUEUED_INPUTS: usize = 4096;
/// Messages a document stream may hold while it waits for an author definition; one more
/// aborts the stream (`Protocol`).
pub const PARKED_PER_STREAM: usize = 16;

/// Something the runtime tells a round.
#[derive(Debug)]
pub enum RoundInput {
    /// A message read from the control stream.
    Control(Message),
    /// The peer finished the control stream.
    ControlEnded,
    /// A message read from a document stream.
    Doc {
        /// The stream (named by [`RoundOutput::Open`] or [`Round::incoming`]).
        stream: u64,
        /// The message.
        message: Message,
    },
    /// The peer finished a document stream.
    DocEnded(u64),
    /// Reading a document stream failed (a bad frame, a reset): the stream is dropped.
    DocFailed(u64),
    /// The answer to the last [`RoundOutput::Store`] (`Err`: the store failed).
    Store(Result<V2Response, String>),
    /// The connection was closed by the peer.
    Closed,
    /// The runtime gave up on the connection (an IO error, no progress in time).
    Failed(String),
}

/// Something a round asks the runtime to do.
#[derive(Debug, Clone)]
pub enum RoundOutput {
    /// Run a store command and answer with [`RoundInput::Store`].
    Store(V2Command),
    /// Write these messages on the control stream.
    Control(Vec<Message>),
    /// Open a document stream, named `stream` from now on (the acceptor's).
    Open(u64),
    /// Write these messages on a document stream.
    Send {
        /// The stream.
        stream: u64,
        /// The messages.
        messages: Vec<Message>,
    },
    /// Finish our sending side of a document stream; the round is done with it.
    Finish(u64),
    /// Finish our sending side of the control stream (the acceptor, at the end).
    FinishControl,
    /// Close the connection with this code.
    Close(AbortCode),
    /// The round is over.
    Ended(Result<RoundReport, String>),
}

/// What a round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundReport {
    /// Documents found to differ (streams started).
    pub differing: u64,
    /// Entries sent.
    pub entries_sent: u64,
    /// Entries received.
    pub entries_received: u64,
    /// The documents whose session completed, in the order they ended (at most one per
    /// offered document).
    pub docs: Vec<RoundDoc>,
}

/// A document a round reconciled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundDoc {
    /// The document.
    pub namespace: NamespaceId,
    /// Its session's counters.
    pub stats: DocStats,
    /// Newest timestamp per author among the entries it inserted here.
    pub heads: AuthorHeads,
}

#[derive(Debug)]
enum Side {
    Dialer(Box<Dialer>),
    Acceptor(Box<Acceptor>),
}

#[derive(Debug, Default)]
struct Stream {
    namespace: Option<NamespaceId>,
    /// Messages waiting for an author definition, oldest first.
    parked: VecDeque<Message>,
    /// The store session exists (an opened stream's at once, an incoming one's at `DocOpen`).
    started: bool,
    /// The peer finished the stream while messages were parked: it is dropped once they are
    /// handled, if its session is not done by then.
    peer_ended: bool,
    /// What the session's steps inserted.
    heads: AuthorHeads,
}

#[derive(Debug)]
enum Task {
    Input(RoundInput),
    /// Hand a stream's parked messages to the store again.
    Retry(u64),
    /// Start the next document the acceptor may start.
    OpenNext,
}

/// The store command outstanding, and what its answer continues.
#[derive(Debug)]
enum Waiting {
    Begin,
    Define,
    Open(u64),
    Accept(u64, Box<Message>),
    Handle(u64),
    End,
}

#[derive(Debug)]
enum Phase {
    Running,
    /// The acceptor is done and waits for the dialer to close.
    Closing,
    /// The round ends with this result once the store state is dropped.
    Ending(Result<(), String>),
    Over,
}

/// One v2 connection round (see the module docs).
#[derive(Debug)]
pub struct Round {
    conn: u64,
    side: Side,
    config: ConnConfig,
    streams: BTreeMap<u64, Stream>,
    next_stream: u64,
    tasks: VecDeque<Task>,
    waiting: Option<Waiting>,
    out: VecDeque<RoundOutput>,
    control_ended: bool,
    phase: Phase,
    report: RoundReport,
}

impl Round {
    /// Starts a round as the dialer, on store connection id `conn` (unique among the node's
    /// v2 connections). `nonce` must be fresh for each connection.
    pub fn dial(
        conn: u64,
        config: ConnConfig,
        nonce: [u8; 32],
        me: PeerId,
        peer: PeerId,
        offers: &[Offer],
    ) -> Result<Self, ConnError> {
        let (dialer, hello) = Dialer::new(config, nonce, me, peer, offers)?;
        let mut r = Self::new(conn, Side::Dialer(Box::new(dialer)), config, peer);
        r.out.push_front(RoundOutput::Control(hello));
        Ok(r)
    }

    /// Starts a round as the acceptor, on store connection id `conn`.
    pub fn accept(
        conn: u64,
        config: ConnConfig,
        me: PeerId,
        peer: PeerId,
        offers: Vec<Offer>,
    ) -> Self {
        let acceptor = Acceptor::new(config, me, peer, offers);
        Self::new(conn, Side::Acceptor(Box::new(acceptor)), config, peer)
    }

    fn new(conn: u64, side: Side, config: ConnConfig, peer: PeerId) -> Self {
        let mut out = VecDeque::new();
        out.push_back(RoundOutput::Store(V2Command::Begin { conn, peer }));
        Self {
            conn,
            side,
            config,
            streams: BTreeMap::new(),
            next_stream: 0,
            tasks: VecDeque::new(),
            waiting: Some(Waiting::Begin),
            out,
            control_ended: false,
            phase: Phase::Running,
            report: RoundReport::default(),
        }
    }

    /// Whether [`RoundOutput::Ended`] was emitted.
    pub fn is_over(&self) -> bool {
        matches!(self.phase, Phase::Over)
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<RoundOutput> {
        self.out.pop_front()
    }

    /// Registers a stream the peer opened and names it; `None` when the round takes no more
    /// (the runtime drops the stream).
    pub fn incoming(&mut self) -> Option<u64> {
        if !matches!(self.phase, Phase::Running) || self.streams.len() >= MAX_V2_STREAMS {
            return None;
        }
        let id = self.next_id();
        self.streams.insert(id, Stream::default());
        Some(id)
    }

    /// Takes one input.
    pub fn handle(&mut self, input: RoundInput) {
        match input {
            RoundInput::Store(reply) => self.on_store(reply),
            RoundInput::Failed(e) => match self.phase {
                Phase::Running => self.fail(None, e),
                Phase::Closing => self.end(Ok(())),
                _ => {}
            },
            RoundInput::Closed => match self.phase {
                Phase::Running => self.fail(None, "connection closed".into()),
                Phase::Closing => self.end(Ok(())),
                _ => {}
            },
            // The dialer finished its control stream instead of closing: it keeps the
            // connection for a later round (§6.6).
            RoundInput::ControlEnded if matches!(self.phase, Phase::Closing) => self.end(Ok(())),
            other => {
                if !matches!(self.phase, Phase::Running) {
                    return;
                }
                if self.tasks.len() >= MAX_QUEUED_INPUTS {
                    return self.fail(
                        Some(AbortCode::LimitExceeded),
                        "too many inputs queued".into(),
                    );
                }
                self.tasks.push_back(Task::Input(other));
            }
        }
        self.run();
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_stream;
        self.next_stream += 1;
        id
    }

    fn store(&mut self, cmd: V2Command, then: Waiting) {
        debug_assert!(self.waiting.is_none());
        self.waiting = Some(then);
        self.out.push_back(RoundOutput::Store(cmd));
    }

    /// Works through the queued tasks until one needs the store.
    fn run(&mut self) {
        while self.waiting.is_none() && matches!(self.phase, Phase::Running) {
            match self.tasks.pop_front() {
                Some(Task::Input(i)) => {
                    self.on_input(i);
                    if matches!(self.side, Side::Acceptor(_)) {
                        self.push_front(Task::OpenNext);
                    }
                }
                Some(Task::Retry(id)) => self.retry(id),
                Some(Task::OpenNext) => self.open_next(),
                None => return self.check_finished(),
            }
        }
    }

    /// Queues a task to run before the inputs already queued (a continuation).
    fn push_front(&mut self, t: Task) {
        self.tasks.push_front(t);
    }

    fn check_finished(&mut self) {
        match &self.side {
            Side::Dialer(d) if d.is_round_done() && self.control_ended => {
                self.out.push_back(RoundOutput::Close(AbortCode::Done));
                self.end(Ok(()));
            }
            Side::Acceptor(a) if a.is_round_done() => {
                self.out.push_back(RoundOutput::FinishControl);
                self.phase = Phase::Closing;
            }
            _ => {}
        }
    }

    /// Ends the round with `result`: the store state is dropped first.
    fn end(&mut self, result: Result<(), String>) {
        self.tasks.clear();
        self.phase = Phase::Ending(result);
        if self.waiting.is_none() {
            let conn = self.conn;
            self.store(V2Command::End { conn }, Waiting::End);
        }
    }

    fn fail(&mut self, code: Option<AbortCode>, e: String) {
        self.out
            .push_back(RoundOutput::Close(code.unwrap_or(AbortCode::Unavailable)));
        self.end(Err(e));
    }

    fn conn_failed(&mut self, e: ConnError) {
        self.fail(e.code(), e.to_string());
    }

    fn on_input(&mut self, input: RoundInput) {
        match input {
            RoundInput::Control(Message::Authors { first, ids }) => {
                let conn = self.conn;
                self.store(V2Command::Define { conn, first, ids }, Waiting::Define);
            }
            RoundInput::Control(m) => {
                let answer = match &mut self.side {
                    Side::Dialer(d) => d.handle(m),
                    Side::Acceptor(a) => a.handle(m),
                };
                match answer {
                    Ok(msgs) => self.control(msgs),
                    Err(e) => self.conn_failed(e),
                }
            }
            RoundInput::ControlEnded => self.control_ended = true,
            RoundInput::Doc { stream, message } => self.on_doc(stream, message),
            RoundInput::DocEnded(id) => self.peer_ended(id),
            RoundInput::DocFailed(id) => {
                if self.streams.remove(&id).is_some() {
                    self.stream_ended();
                }
            }
            // Handled in `handle`.
            RoundInput::Store(_) | RoundInput::Closed | RoundInput::Failed(_) => {}
        }
    }

    fn control(&mut self, msgs: Vec<Message>) {
        if !msgs.is_empty() {
            self.out.push_back(RoundOutput::Control(msgs));
        }
    }

    fn on_doc(&mut self, id: u64, m: Message) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        if !stream.parked.is_empty() {
            if stream.parked.len() >= PARKED_PER_STREAM {
                return self.abort(id, AbortCode::Protocol);
            }
            stream.parked.push_back(m);
            return;
        }
        if stream.started {
            return self.handle_doc(id, m);
        }
        // An incoming stream starts with `DocOpen` naming a document we offered.
        let (Message::DocOpen { tag, .. }, Side::Dialer(d)) = (&m, &mut self.side) else {
            return self.abort(id, AbortCode::Protocol);
        };
        match d.stream_opened(tag) {
            Ok(namespace) => {
                let cmd = V2Command::Accept {
                    conn: self.conn,
                    stream: id,
                    namespace,
                    riblt_key: d.hasher().key(),
                    config: self.config.doc,
                };
                if let Some(s) = self.streams.get_mut(&id) {
                    s.namespace = Some(namespace);
                }
                self.report.differing += 1;
                self.store(cmd, Waiting::Accept(id, Box::new(m)));
            }
            Err(code) => {
                // Not counted as opened: answered with an abort, nothing to end.
                self.streams.remove(&id);
                self.abort_output(id, code);
            }
        }
    }

    fn handle_doc(&mut self, id: u64, message: Message) {
        let conn = self.conn;
        self.store(
            V2Command::Handle {
                conn,
                stream: id,
                message,
            },
            Waiting::Handle(id),
        );
    }

    /// Hands stream `id`'s oldest parked message to the store again.
    fn retry(&mut self, id: u64) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        match s.parked.pop_front() {
            Some(m) => self.handle_doc(id, m),
            None if s.peer_ended => self.peer_ended(id),
            None => {}
        }
    }

    fn open_next(&mut self) {
        let Side::Acceptor(a) = &mut self.side else {
            return;
        };
        let Some((tag, namespace)) = a.poll_open() else {
            return;
        };
        let riblt_key = a.hasher().map(|h| h.key()).unwrap_or_default();
        let config = self.config.doc.for_documents(a.differing());
        let id = self.next_id();
        self.streams.insert(
            id,
            Stream {
                namespace: Some(namespace),
                started: true,
                ..Stream::default()
            },
        );
        self.report.differing += 1;
        self.out.push_back(RoundOutput::Open(id));
        let cmd = V2Command::Open {
            conn: self.conn,
            stream: id,
            namespace,
            tag,
            riblt_key,
            config,
        };
        self.store(cmd, Waiting::Open(id));
    }

    fn on_store(&mut self, reply: Result<V2Response, String>) {
        let Some(waiting) = self.waiting.take() else {
            return;
        };
        if let Phase::Ending(_) = self.phase {
            if let Waiting::End = waiting {
                let Phase::Ending(result) = std::mem::replace(&mut self.phase, Phase::Over) else {
                    unreachable!()
                };
                let report = std::mem::take(&mut self.report);
                self.out
                    .push_back(RoundOutput::Ended(result.map(|()| report)));
            } else {
                let conn = self.conn;
                self.store(V2Command::End { conn }, Waiting::End);
            }
            return;
        }
        let reply = match reply {
            Ok(r) => r,
            Err(e) => return self.fail(None, format!("store: {e}")),
        };
        match (waiting, reply) {
            (Waiting::Begin, _) => {}
            (Waiting::Define, _) => {
                let ids: Vec<u64> = self
                    .streams
                    .iter()
                    .filter(|(_, s)| !s.parked.is_empty())
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids.into_iter().rev() {
                    self.push_front(Task::Retry(id));
                }
            }
            (Waiting::Open(id), V2Response::Step(step)) => {
                self.apply(id, step);
                self.push_front(Task::OpenNext);
            }
            (Waiting::Accept(id, m), _) => {
                if let Some(s) = self.streams.get_mut(&id) {
                    s.started = true;
                }
                self.handle_doc(id, *m);
            }
            (Waiting::Handle(id), V2Response::Parked(m)) => {
                if let Some(s) = self.streams.get_mut(&id) {
                    s.parked.push_front(m);
                }
            }
            (Waiting::Handle(id), V2Response::Step(step)) => {
                self.apply(id, step);
                // In a retry: the stream's next parked message, or its end.
                if self
                    .streams
                    .get(&id)
                    .is_some_and(|s| !s.parked.is_empty() || s.peer_ended)
                {
                    self.push_front(Task::Retry(id));
                }
            }
            (_, other) => return self.fail(None, format!("unexpected store answer {other:?}")),
        }
        self.run();
    }

    /// Carries out a document session's step.
    fn apply(&mut self, id: u64, step: V2Step) {
        self.control(step.control);
        if let Some((code, _error)) = step.failed {
            match code {
                Some(code) => self.abort(id, code),
                None => {
                    self.streams.remove(&id);
                    self.stream_ended();
                }
            }
            return;
        }
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        stream.heads.merge(&step.heads);
        if !step.messages.is_empty() {
            self.out.push_back(RoundOutput::Send {
                stream: id,
                messages: step.messages,
            });
        }
        if step.done {
            self.report.entries_sent += step.stats.entries_sent;
            self.report.entries_received += step.stats.entries_received;
            if let Some(s) = self.streams.remove(&id) {
                if let Some(namespace) = s.namespace {
                    self.report.docs.push(RoundDoc {
                        namespace,
                        stats: step.stats,
                        heads: s.heads,
                    });
                }
            }
            self.out.push_back(RoundOutput::Finish(id));
            self.stream_ended();
        }
    }

    /// The peer finished stream `id`: a session not done by then is dropped, once the
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

    fn abort(&mut self, id: u64, code: AbortCode) {
        if self.streams.remove(&id).is_some() {
            self.abort_output(id, code);
            self.stream_ended();
        }
    }

    fn abort_output(&mut self, id: u64, code: AbortCode) {
        self.out.push_back(RoundOutput::Send {
            stream: id,
            messages: vec![Message::Abort { code }],
        });
        self.out.push_back(RoundOutput::Finish(id));
    }

    fn stream_ended(&mut self) {
        match &mut self.side {
            Side::Dialer(d) => d.stream_ended(),
            Side::Acceptor(a) => a.stream_ended(),
        }
    }
}
