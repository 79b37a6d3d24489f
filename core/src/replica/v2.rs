//! The store side of sync v2: document sessions and author dictionaries of v2 connections,
//! run by the executor so that every step reads and writes the store directly.
//!
//! A runtime drives a connection's control stream with [`crate::v2::conn`] and sends each
//! document stream's messages here as [`V2Command`]s; the executor keeps, per connection, the
//! [`Dictionary`] all its documents share and one [`DocSession`] per stream. Received entries
//! are validated with the executor's [`EntryLimits`](crate::entry::EntryLimits), inserted
//! prefix-aware, and reported as [`ReplicaEvent::RemoteInsert`] like v1's, so downloads and
//! subscribers see no difference.
//!
//! Bounds: at most [`MAX_V2_CONNECTIONS`] connections and [`MAX_V2_STREAMS`] streams per
//! connection; one more is refused with [`ReplicaError::V2`]. A connection's state is dropped
//! by [`V2Command::End`] (the runtime sends it whenever the connection ends).

use std::collections::BTreeMap;

use super::{ReplicaError, ReplicaEvent, Replicas};
use crate::{
    entry::{CheckedStream, NoChecksAhead, SignedEntry},
    hash::PeerId,
    keys::{AuthorId, NamespaceId},
    ranger::{ContentStatusSource, Received},
    store::{holds_same_or_newer, Backend},
    time::Now,
    v2::{
        codec::{AbortCode, Message},
        conn::{Offer, MAX_STREAMS},
        dict::Dictionary,
        doc::{DocConfig, DocError, DocSession, DocStats, DocStore, IndexedDoc, KeyRange},
        riblt::Hasher,
        tags::NamespaceTag,
    },
    wire::AuthorHeads,
};

/// Most v2 connections whose store state the executor holds at once.
pub const MAX_V2_CONNECTIONS: usize = 1024;
/// Most document streams per connection (twice the protocol's stream limit: a stream the
/// peer has finished may not be closed here yet).
pub const MAX_V2_STREAMS: usize = 2 * MAX_STREAMS as usize;

/// A store operation of sync v2 ([`StoreCommand::V2`](super::StoreCommand::V2)).
#[derive(Debug, Clone)]
pub enum V2Command {
    /// The documents this node syncs (open, sync enabled) with their v2 fingerprints.
    Offers,
    /// A new connection with `peer`.
    Begin {
        /// Connection id, chosen by the runtime.
        conn: u64,
        /// The peer.
        peer: PeerId,
    },
    /// The peer's author definitions (an `Authors` message of its control stream).
    Define {
        /// Connection.
        conn: u64,
        /// First index defined.
        first: u32,
        /// The ids.
        ids: Vec<AuthorId>,
    },
    /// Opens a document stream (the connection's acceptor).
    Open {
        /// Connection.
        conn: u64,
        /// Stream id, chosen by the runtime.
        stream: u64,
        /// The document.
        namespace: NamespaceId,
        /// Its tag on this connection.
        tag: NamespaceTag,
        /// The connection's RIBLT key.
        riblt_key: [u8; 32],
        /// Session policy.
        config: DocConfig,
    },
    /// Answers a document stream the peer opened (the connection's dialer).
    Accept {
        /// Connection.
        conn: u64,
        /// Stream id.
        stream: u64,
        /// The document its tag names.
        namespace: NamespaceId,
        /// The connection's RIBLT key.
        riblt_key: [u8; 32],
        /// Session policy.
        config: DocConfig,
    },
    /// A message read from a document stream.
    Handle {
        /// Connection.
        conn: u64,
        /// Stream id.
        stream: u64,
        /// The message.
        message: Message,
    },
    /// The connection ended: drop its dictionary and sessions.
    End {
        /// Connection.
        conn: u64,
    },
}

/// What a document session step asks the runtime to write.
#[derive(Debug, Clone, Default)]
pub struct V2Step {
    /// `Authors` definitions, for the control stream, to write first.
    pub control: Vec<Message>,
    /// Messages for the document stream.
    pub messages: Vec<Message>,
    /// Both sides sent `DocDone`: the stream is over (the opener finishes it).
    pub done: bool,
    /// The session failed: abort the stream with this code (`None`: the peer aborted).
    pub failed: Option<(Option<AbortCode>, String)>,
    /// The session's counters.
    pub stats: DocStats,
    /// Newest timestamp per author among the entries this step inserted (for the `SyncReport`
    /// a finished sync gossips).
    pub heads: AuthorHeads,
}

/// The answer to a [`V2Command`].
#[derive(Debug, Clone)]
pub enum V2Response {
    /// The offers.
    Offers(Vec<Offer>),
    /// Done.
    Done,
    /// A session step.
    Step(V2Step),
    /// The message (handed back) uses an author index the peer has not defined yet: send it
    /// again after the next [`V2Command::Define`] (and read nothing more from that stream
    /// until then).
    Parked(Message),
}

/// Per-connection store state.
#[derive(Debug)]
struct Conn {
    peer: PeerId,
    dict: Dictionary,
    docs: BTreeMap<u64, (NamespaceId, DocSession)>,
}

/// The v2 connections of an executor.
#[derive(Debug, Default)]
pub(super) struct V2Conns(BTreeMap<u64, Conn>);

fn v2_error(msg: &'static str) -> ReplicaError {
    ReplicaError::V2(msg)
}

impl<B: Backend, C: ContentStatusSource> Replicas<B, C> {
    /// Runs one [`V2Command`].
    pub fn apply_v2(&mut self, now: Now, cmd: V2Command) -> Result<V2Response, ReplicaError> {
        self.apply_v2_with(now, cmd, &mut NoChecksAhead)
    }

    /// [`apply_v2`](Self::apply_v2), taking the signatures of received entries from `ahead`
    /// as they come up (see [`Replicas::v2_unchecked_entries`]).
    pub fn apply_v2_with(
        &mut self,
        now: Now,
        cmd: V2Command,
        ahead: &mut dyn CheckedStream,
    ) -> Result<V2Response, ReplicaError> {
        match cmd {
            V2Command::Offers => {
                let syncing: Vec<NamespaceId> = self
                    .open
                    .iter()
                    .filter(|(_, r)| r.sync)
                    .map(|(ns, _)| *ns)
                    .collect();
                let mut offers = Vec::with_capacity(syncing.len());
                for ns in syncing {
                    let fingerprint =
                        IndexedDoc::new(&mut self.indexed, ns, self.config.limits, now)
                            .fingerprint(&KeyRange::all())?;
                    offers.push(Offer {
                        namespace: ns,
                        fingerprint,
                    });
                }
                Ok(V2Response::Offers(offers))
            }
            V2Command::Begin { conn, peer } => {
                if self.v2.0.len() >= MAX_V2_CONNECTIONS && !self.v2.0.contains_key(&conn) {
                    return Err(v2_error("too many v2 connections"));
                }
                self.v2.0.insert(
                    conn,
                    Conn {
                        peer,
                        dict: Dictionary::new(),
                        docs: BTreeMap::new(),
                    },
                );
                Ok(V2Response::Done)
            }
            V2Command::Define { conn, first, ids } => {
                let c = self.conn(conn)?;
                c.dict
                    .define(first, &ids)
                    .map_err(|_| v2_error("bad author definition"))?;
                Ok(V2Response::Done)
            }
            V2Command::Open {
                conn,
                stream,
                namespace,
                tag,
                riblt_key,
                config,
            } => {
                self.admit(now, conn, stream, namespace)?;
                let mut c = self.v2.0.remove(&conn).expect("checked");
                let result = {
                    let mut doc =
                        IndexedDoc::new(&mut self.indexed, namespace, self.config.limits, now)
                            .with_content(&mut self.content);
                    DocSession::open(config, Hasher::new(riblt_key), tag, &mut doc, &mut c.dict)
                };
                let step = match result {
                    Ok((session, messages)) => {
                        let step = step_of(&mut c.dict, &session, messages);
                        c.docs.insert(stream, (namespace, session));
                        Ok(step)
                    }
                    Err(e) => failed_step(e),
                };
                self.v2.0.insert(conn, c);
                step.map(V2Response::Step)
            }
            V2Command::Accept {
                conn,
                stream,
                namespace,
                riblt_key,
                config,
            } => {
                self.admit(now, conn, stream, namespace)?;
                let session = DocSession::accept(config, Hasher::new(riblt_key));
                self.conn(conn)?.docs.insert(stream, (namespace, session));
                Ok(V2Response::Done)
            }
            V2Command::Handle {
                conn,
                stream,
                message,
            } => self.handle_v2(now, conn, stream, message, ahead),
            V2Command::End { conn } => {
                self.v2.0.remove(&conn);
                Ok(V2Response::Done)
            }
        }
    }

    /// The entries of a [`V2Command::Handle`] carrying `Entries` whose signatures handling it
    /// would check: those not already held in the same or a newer version, in message order.
    /// Empty for any other command, or when the stream or an author index is not known yet.
    /// A runtime may check them on other threads while the command runs
    /// ([`Replicas::apply_with_checks`]).
    pub fn v2_unchecked_entries(
        &mut self,
        cmd: &V2Command,
    ) -> Result<Vec<SignedEntry>, ReplicaError> {
        let V2Command::Handle {
            conn,
            stream,
            message: Message::Entries { entries },
        } = cmd
        else {
            return Ok(Vec::new());
        };
        let Some(c) = self.v2.0.get(conn) else {
            return Ok(Vec::new());
        };
        let Some((ns, _)) = c.docs.get(stream) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let Some(author) = c.dict.resolve(e.author) else {
                return Ok(Vec::new());
            };
            let entry = e.to_signed(*ns, author);
            if !holds_same_or_newer(&mut self.indexed, *ns, &entry)? {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// v2 connections whose store state is held (each until its [`V2Command::End`]).
    pub fn v2_connections(&self) -> usize {
        self.v2.0.len()
    }

    fn conn(&mut self, conn: u64) -> Result<&mut Conn, ReplicaError> {
        self.v2
            .0
            .get_mut(&conn)
            .ok_or(v2_error("unknown v2 connection"))
    }

    /// Checks that stream `stream` of `conn` may start on `namespace` (open for sync, within
    /// the stream bound) and holds the namespace's index for it.
    fn admit(
        &mut self,
        now: Now,
        conn: u64,
        stream: u64,
        namespace: NamespaceId,
    ) -> Result<(), ReplicaError> {
        self.syncing(namespace)?;
        self.room_for(conn, stream)?;
        self.hold_for_sync(now.mono, namespace);
        Ok(())
    }

    fn room_for(&mut self, conn: u64, stream: u64) -> Result<(), ReplicaError> {
        let c = self.conn(conn)?;
        if c.docs.len() >= MAX_V2_STREAMS || c.docs.contains_key(&stream) {
            return Err(v2_error("too many v2 streams, or a stream id reused"));
        }
        Ok(())
    }

    fn handle_v2(
        &mut self,
        now: Now,
        conn: u64,
        stream: u64,
        message: Message,
        ahead: &mut dyn CheckedStream,
    ) -> Result<V2Response, ReplicaError> {
        let c = self.conn(conn)?;
        if c.dict.is_missing_for(&message) {
            return Ok(V2Response::Parked(message));
        }
        let ns = c
            .docs
            .get(&stream)
            .map(|(ns, _)| *ns)
            .ok_or(v2_error("unknown v2 stream"))?;
        let policy = self.indexed.get_download_policy(ns)?.unwrap_or_default();
        let mut c = self.v2.0.remove(&conn).expect("checked");
        let (ns, mut session) = c.docs.remove(&stream).expect("checked");
        self.hold_for_sync(now.mono, ns);
        let subscribed = self.open.get(&ns).is_some_and(|r| r.subscribed);
        let from = c.peer;
        let mut inserted = false;
        let mut heads = AuthorHeads::default();
        let mut events = Vec::new();
        let result = {
            let mut observe = |e: &crate::entry::SignedEntry,
                               status: crate::ranger::ContentStatus,
                               received: &Received| {
                if let Received::Inserted { .. } = received {
                    inserted = true;
                    heads.insert(e.author(), e.timestamp());
                    if subscribed {
                        events.push(ReplicaEvent::RemoteInsert {
                            namespace: ns,
                            entry: e.clone(),
                            from,
                            should_download: !e.is_empty() && policy.matches(e.key()),
                            remote_content_status: status,
                        });
                    }
                }
            };
            let mut doc = IndexedDoc::new(&mut self.indexed, ns, self.config.limits, now)
                .with_content(&mut self.content)
                .with_observer(&mut observe)
                .with_checks(ahead);
            session.handle(&mut doc, &mut c.dict, message)
        };
        self.events.extend(events);
        if inserted {
            self.touch(now);
        }
        let step = match result {
            Ok(messages) => {
                let step = step_of(&mut c.dict, &session, messages);
                if !step.done {
                    c.docs.insert(stream, (ns, session));
                }
                Ok(V2Step { heads, ..step })
            }
            Err(e) => failed_step(e).map(|step| V2Step {
                stats: *session.stats(),
                heads,
                ..step
            }),
        };
        self.v2.0.insert(conn, c);
        step.map(V2Response::Step)
    }
}

/// What a session step asks the runtime to write: the definitions it needs first.
fn step_of(dict: &mut Dictionary, session: &DocSession, messages: Vec<Message>) -> V2Step {
    V2Step {
        control: dict.take_definitions(),
        messages,
        done: session.is_done(),
        failed: None,
        stats: *session.stats(),
        heads: AuthorHeads::default(),
    }
}

/// A step for a failed session; store failures stay errors of the command (the connection's
/// state is kept either way; the failed stream's session is dropped).
fn failed_step(e: DocError) -> Result<V2Step, ReplicaError> {
    match e {
        DocError::Store(e) => Err(ReplicaError::Store(e)),
        e => Ok(V2Step {
            failed: Some((e.code(), e.to_string())),
            ..V2Step::default()
        }),
    }
}
