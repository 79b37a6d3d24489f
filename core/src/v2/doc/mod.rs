//! The v2 per-document session (`docs/sync-v2.md` §6.3–§6.6): one document reconciled on one
//! stream, sans-IO.
//!
//! The connection's acceptor *opens* a document stream for each document phase 1 found
//! different ([`DocSession::open`]); the dialer *responds* ([`DocSession::accept`]). Each
//! message read from the stream goes to [`DocSession::handle`], which answers through the
//! store and returns the messages to write, already packed to fit 64 KiB frames. The session is
//! over when [`DocSession::is_done`]; on an error the connection writes `Abort` with
//! [`DocError::code`] and finishes the stream.
//!
//! # Method
//!
//! * **Rateless IBLT** (§6.3) when the opener's document holds at most
//!   [`DocConfig::riblt_max_items`] entries: the opener sends `DocOpen` and
//!   [`DocConfig::unasked_symbols`] coded symbols unasked, in frames of
//!   [`DocConfig::first_symbols`]. The responder tries to decode after every frame: a
//!   difference of up to about 200 decodes before the responder could have asked for more,
//!   and costs one and a half round trips with the transfer; the frames that arrive after it
//!   answered are dropped. Asking costs a round trip, and sending symbols costs bytes only
//!   after the first frame (a few differences decode from it; the rest are in flight while
//!   the responder decodes). When the responder's estimate says the difference is small it
//!   asks for more symbols (doubling); otherwise it switches to ranges.
//!   The item set is the store's cached item hashes ([`DocStore::item_hashes`]): the index
//!   keeps them with its chunks' v2 sums, learnt when phase 1 sums the document, so encoding
//!   and decoding cost a pass over memory, not over the stored entries (100,000 entries, two
//!   differences, in process: 352 ms reading every entry on both sides, ~N ms from the
//!   cache).
//! * **Ranges** (§6.4) otherwise: fanout [`DocConfig::fanout`] splits of fingerprinted ranges,
//!   item lists for ranges of at most [`DocConfig::leaf`] entries. A larger opener starts with
//!   ranges at once: the per-connection RIBLT key means its symbols cannot be prepared ahead,
//!   and past the index's item cache their encoding would read every entry back, which the
//!   ranges avoid.
//!
//! Received entries are validated and inserted prefix-aware as they arrive (the store's
//! [`DocStore::insert`]), so both sides end with the prefix-aware union, as with v1.
//!
//! # Bounds
//!
//! Every bound of §6.7 that concerns one document is a [`DocConfig`] field, and hitting one
//! ends the session with [`DocError::Limit`] (`Abort{LimitExceeded}`): symbols
//! ([`DocConfig::riblt`], which instead switches to ranges when it is the decoder that gives
//! up), turns, parts and wants per turn; a received turn holds at most [`MAX_TURN_BYTES`] of
//! bounds and listed items until it is complete. A turn sends at most
//! [`DocConfig::max_entries_per_turn`] entries; the rest of a range goes back as a fingerprint
//! and is settled in a later turn, so no reply holds more than that many entries in memory.
//! The session's own state is at most one item map of ≤ `riblt_max_items` keys (RIBLT) or of
//! the items listed in its last turn (ranges).

pub(crate) mod outbox;
mod ranges;
pub mod store;

use std::collections::{BTreeMap, BTreeSet};

use outbox::Outbox;
pub use ranges::MAX_TURN_BYTES;
pub use store::{flat_key, DocStore, IndexedDoc, KeyRange};

use crate::{
    ranger::Received,
    store::StoreError,
    v2::{
        codec::{AbortCode, CompactEntry, Message},
        dict::{Dictionary, DictionaryError},
        fingerprint::{Fingerprint, ItemHash, RangeKey},
        frame::MAX_SYMBOLS_PER_FRAME,
        riblt::{Decoder, Encoder, Hasher, Item, Limits, RibltError},
        tags::NamespaceTag,
    },
};

/// Most `Wants` messages an opener answers after its coded symbols. Each costs a pass over
/// the document's item hashes; an honest responder sends one list, cut into frames of about
/// [`MAX_ITEMS_PER_FRAME`](crate::v2::frame::MAX_ITEMS_PER_FRAME) hashes, so
/// [`DocConfig::max_wants`]' 65,536 need 33.
pub const MAX_RIBLT_WANTS: u32 = 64;

/// Local policy and bounds of document sessions (`docs/sync-v2.md` §6.3, §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocConfig {
    /// Symbols in the opener's first `Symbols` frame, and in each further frame of its
    /// unasked symbols (64 ≈ 2.8 KB, enough for about 40 differences). The responder tries
    /// to decode after every frame, so a small difference is answered as soon as the first
    /// frame arrives, however many unasked symbols follow it.
    pub first_symbols: u64,
    /// Symbols the opener sends unasked with `DocOpen` (at least `first_symbols`; a document
    /// of n entries sends at most 2·n + 16). 320 decode about 200 differences (100 new
    /// entries per side) without a `MoreSymbols` round trip in 99 of 100 runs (`v2::riblt`
    /// tests: 284 symbols at the median, 315 at the 99th percentile); a smaller difference
    /// wastes them (~11 KB past the first frame). A connection divides them among its
    /// differing documents ([`DocConfig::for_documents`]), at least `first_symbols` each.
    pub unasked_symbols: u64,
    /// Largest document (entries) an opener or responder encodes or decodes symbols for.
    /// 131,072 by default, the largest whose item hashes the index keeps
    /// ([`V2_ITEMS_MAX`](crate::store::V2_ITEMS_MAX)): a session over it holds ~4 MiB of item
    /// hashes and ~8 MiB of encoder or decoder state.
    pub riblt_max_items: u64,
    /// The RIBLT decoder's limits; beyond them the responder switches to ranges.
    pub riblt: Limits,
    /// Sub-ranges a mismatched range is split into.
    pub fanout: usize,
    /// A differing range of at most this many entries (on the side that answers) is listed
    /// as item hashes instead of split. 16 rather than 32: `sheaf-bench reconcile`, 100,000
    /// entries, 100 / 1,000 spread differences: 189 kB / 1.3 MB against 1,064 kB / 3.4 MB, the
    /// same 3 round trips (`SHEAF_BENCH_V2_SPLIT`). Sub-ranges of a split up to this size are
    /// listed at once when at least half the ranges of the turn differ.
    pub leaf: u64,
    /// Sub-ranges of a split of at most this many entries are always listed at once (without a
    /// fingerprint first). When differences are sparse, listing larger ones mostly sends lists
    /// of sub-ranges that turn out equal: 1,000,000 entries and 100 differences sent 890 kB
    /// with every sub-range of up to 16 listed, 170 kB with 2, in one round trip more.
    pub eager_leaf: u64,
    /// Most range turns received.
    pub max_turns: u32,
    /// Most parts in one received turn.
    pub max_parts: usize,
    /// Most wanted items in one received turn, and most sent in one turn.
    pub max_wants: usize,
    /// Most entries sent in one turn, besides answers to wants.
    pub max_entries_per_turn: usize,
}

impl Default for DocConfig {
    fn default() -> Self {
        Self {
            first_symbols: 64,
            unasked_symbols: 320,
            riblt_max_items: crate::store::V2_ITEMS_MAX,
            riblt: Limits::default(),
            fanout: 16,
            leaf: 16,
            eager_leaf: 2,
            max_turns: 256,
            max_parts: 1 << 16,
            max_wants: 1 << 16,
            max_entries_per_turn: 16_384,
        }
    }
}

impl DocConfig {
    /// This policy for one of `documents` documents reconciled at once on a connection: the
    /// unasked symbols are divided among them, at least `first_symbols` each, so that many
    /// small differences do not each cost a large first flight.
    pub fn for_documents(self, documents: u64) -> Self {
        Self {
            unasked_symbols: (self.unasked_symbols / documents.max(1)).max(self.first_symbols),
            ..self
        }
    }
}

/// Why a document session ended early.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// A message out of place, a malformed part, or inconsistent symbols.
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    /// A bound of [`DocConfig`] or of the author dictionary.
    #[error("limit exceeded: {0}")]
    Limit(&'static str),
    /// The peer aborted the stream.
    #[error("aborted by the peer: {0:?}")]
    Aborted(AbortCode),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl DocError {
    /// The `Abort` code to send for this error (none when the peer aborted).
    pub fn code(&self) -> Option<AbortCode> {
        match self {
            DocError::Protocol(_) => Some(AbortCode::Protocol),
            DocError::Limit(_) => Some(AbortCode::LimitExceeded),
            DocError::Aborted(_) => None,
            DocError::Store(_) => Some(AbortCode::Unavailable),
        }
    }
}

impl From<DictionaryError> for DocError {
    fn from(e: DictionaryError) -> Self {
        match e {
            DictionaryError::Full => DocError::Limit("author dictionary"),
            DictionaryError::Gap { .. } => DocError::Protocol("author dictionary gap"),
        }
    }
}

/// How a session reconciled its document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    /// Not decided yet.
    #[default]
    Undecided,
    /// Both fingerprints were equal.
    Equal,
    /// Coded symbols decoded the difference.
    Riblt,
    /// Range reconciliation.
    Ranges,
}

/// What a session did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DocStats {
    /// How the difference was found.
    pub method: Method,
    /// Range turns received.
    pub turns: u32,
    /// Coded symbols sent.
    pub symbols_sent: u64,
    /// Coded symbols received.
    pub symbols_received: u64,
    /// Entries sent.
    pub entries_sent: u64,
    /// Entries received (valid or not).
    pub entries_received: u64,
    /// Received entries that were stored.
    pub entries_inserted: u64,
    /// Item hashes asked for.
    pub wants_sent: u64,
}

/// Which end of the stream a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Opened the stream (the connection's acceptor).
    Opener,
    /// Answers it (the connection's dialer).
    Responder,
}

#[derive(Debug)]
enum State {
    /// Responder before `DocOpen`.
    AwaitOpen,
    /// Responder after `DocOpen`, before the first symbols or ranges.
    Opened { theirs: Fingerprint },
    /// Opener that sent symbols; `wants` counts the `Wants` messages answered (each a pass
    /// over the document's item hashes, so at most [`MAX_RIBLT_WANTS`]).
    Encoding { encoder: Box<Encoder>, wants: u32 },
    /// Responder decoding symbols; it answers once decoded or once the `due` symbols have
    /// arrived.
    Decoding {
        decoder: Box<Decoder>,
        theirs: Fingerprint,
        own: u64,
    },
    /// Range turns.
    Ranges(ranges::Turns),
    /// This side sent `DocDone`; only entries and the peer's `DocDone` may follow.
    Closing,
}

/// One document's v2 session.
#[derive(Debug)]
pub struct DocSession {
    role: Role,
    config: DocConfig,
    hasher: Hasher,
    range_key: RangeKey,
    state: State,
    sent_done: bool,
    peer_done: bool,
    /// Responder: symbols `0..due` were sent unasked or asked for. While decoding it answers
    /// once all have arrived (if not decoded sooner); those that arrive after it stopped
    /// decoding are dropped, any beyond are a protocol error.
    due: u64,
    stats: DocStats,
}

impl DocSession {
    /// Opens the stream of a document: returns the session and its first messages
    /// (`DocOpen`, then symbols or ranges).
    pub fn open<S: DocStore + ?Sized>(
        config: DocConfig,
        hasher: Hasher,
        tag: NamespaceTag,
        store: &mut S,
        dict: &mut Dictionary,
    ) -> Result<(Self, Vec<Message>), DocError> {
        let mut s = Self::new(Role::Opener, config, hasher);
        let mut ob = Outbox::default();
        let count = store.count(&KeyRange::all())?;
        if count <= config.riblt_max_items {
            let items = store.item_hashes()?;
            let fp = store.fingerprint(&KeyRange::all())?;
            // No more than a small document's own difference could need.
            let frame = config.first_symbols.clamp(1, MAX_SYMBOLS_PER_FRAME as u64);
            let unasked = config
                .unasked_symbols
                .max(frame)
                .min(2 * count + 16)
                .min(config.riblt.max_symbols)
                .max(1);
            ob.push(Message::DocOpen {
                tag,
                fingerprint: fp,
                unasked,
            });
            let mut encoder = Box::new(Encoder::new(&s.hasher, items));
            let symbols = encoder.next_symbols(unasked as usize);
            s.stats.symbols_sent = symbols.len() as u64;
            s.stats.method = Method::Riblt;
            ob.symbols(0, symbols, frame as usize);
            s.state = State::Encoding { encoder, wants: 0 };
        } else {
            let fp = store.fingerprint(&KeyRange::all())?;
            ob.push(Message::DocOpen {
                tag,
                fingerprint: fp,
                unasked: 0,
            });
            s.stats.method = Method::Ranges;
            let mut turns = ranges::Turns::default();
            let turn = turns.first_turn(&mut s.ctx(store, dict, &mut ob), None)?;
            s.state = s.after_turn(&mut ob, turns, turn);
        }
        Ok((s, ob.into_messages()))
    }

    /// A responder, waiting for the opener's `DocOpen` (whose tag the connection has already
    /// resolved to the document of the store it passes to [`handle`](Self::handle)).
    pub fn accept(config: DocConfig, hasher: Hasher) -> Self {
        Self::new(Role::Responder, config, hasher)
    }

    fn new(role: Role, config: DocConfig, hasher: Hasher) -> Self {
        Self {
            role,
            config,
            range_key: RangeKey::derive(&hasher.key()),
            hasher,
            state: State::AwaitOpen,
            sent_done: false,
            peer_done: false,
            due: 0,
            stats: DocStats::default(),
        }
    }

    /// This session's end of the stream.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether both sides have sent `DocDone`: the stream can be finished.
    pub fn is_done(&self) -> bool {
        self.sent_done && self.peer_done
    }

    /// What the session did so far.
    pub fn stats(&self) -> &DocStats {
        &self.stats
    }

    /// Handles one message read from the stream; returns the messages to write, in order.
    /// The connection must have parked the stream until `dict` defines every author index
    /// `msg` uses ([`Dictionary::is_missing_for`]).
    pub fn handle<S: DocStore + ?Sized>(
        &mut self,
        store: &mut S,
        dict: &mut Dictionary,
        msg: Message,
    ) -> Result<Vec<Message>, DocError> {
        let mut ob = Outbox::default();
        self.step(store, dict, msg, &mut ob)?;
        Ok(ob.into_messages())
    }

    fn ctx<'a, S: DocStore + ?Sized>(
        &'a mut self,
        store: &'a mut S,
        dict: &'a mut Dictionary,
        ob: &'a mut Outbox,
    ) -> Ctx<'a, S> {
        Ctx {
            config: &self.config,
            range_key: &self.range_key,
            stats: &mut self.stats,
            store,
            dict,
            ob,
        }
    }

    fn step<S: DocStore + ?Sized>(
        &mut self,
        store: &mut S,
        dict: &mut Dictionary,
        msg: Message,
        ob: &mut Outbox,
    ) -> Result<(), DocError> {
        if self.peer_done {
            return Err(DocError::Protocol("message after DocDone"));
        }
        match msg {
            Message::Abort { code } => return Err(DocError::Aborted(code)),
            Message::Entries { entries } => return self.ctx(store, dict, ob).receive(entries),
            Message::DocDone => {
                self.peer_done = true;
                if !self.sent_done {
                    if let State::Decoding { .. } | State::AwaitOpen | State::Opened { .. } =
                        self.state
                    {
                        return Err(DocError::Protocol("DocDone before an answer"));
                    }
                    self.finish(ob);
                }
                return Ok(());
            }
            Message::Symbols { start, symbols }
                if self.role == Role::Responder
                    && !matches!(self.state, State::Opened { .. } | State::Decoding { .. }) =>
            {
                // Sent before the opener saw this side stop decoding (unasked, or asked for
                // and decoded early): dropped.
                if start.saturating_add(symbols.len() as u64) > self.due {
                    return Err(DocError::Protocol("symbols beyond those asked for"));
                }
                self.stats.symbols_received += symbols.len() as u64;
                return Ok(());
            }
            _ => {}
        }
        let state = std::mem::replace(&mut self.state, State::Closing);
        self.state = match (state, msg) {
            (
                State::AwaitOpen,
                Message::DocOpen {
                    fingerprint,
                    unasked,
                    ..
                },
            ) if self.role == Role::Responder => {
                if unasked > self.config.riblt.max_symbols {
                    return Err(DocError::Limit("unasked symbols"));
                }
                self.due = unasked;
                State::Opened {
                    theirs: fingerprint,
                }
            }
            (State::Opened { theirs }, first) => self.first(store, dict, ob, theirs, first)?,
            (State::Encoding { mut encoder, wants }, msg) => match msg {
                Message::MoreSymbols { until } => {
                    let sent = encoder.next_index();
                    if until <= sent {
                        return Err(DocError::Protocol("MoreSymbols not beyond what was sent"));
                    }
                    if until > self.config.riblt.max_symbols {
                        return Err(DocError::Limit("coded symbols"));
                    }
                    let symbols = encoder.next_symbols((until - sent) as usize);
                    self.stats.symbols_sent += symbols.len() as u64;
                    ob.symbols(sent, symbols, MAX_SYMBOLS_PER_FRAME);
                    State::Encoding { encoder, wants }
                }
                Message::Wants { hashes } => {
                    if wants >= MAX_RIBLT_WANTS {
                        return Err(DocError::Limit("wants messages"));
                    }
                    self.ctx(store, dict, ob).answer_items(&hashes)?;
                    State::Encoding {
                        encoder,
                        wants: wants + 1,
                    }
                }
                Message::Ranges { parts } => {
                    self.stats.method = Method::Ranges;
                    let mut turns = ranges::Turns::default();
                    let turn = turns.receive(&mut self.ctx(store, dict, ob), parts)?;
                    self.after_turn(ob, turns, turn)
                }
                _ => return Err(DocError::Protocol("unexpected message while encoding")),
            },
            (
                State::Decoding {
                    mut decoder,
                    theirs,
                    own,
                },
                Message::Symbols { start, symbols },
            ) => {
                self.stats.symbols_received += symbols.len() as u64;
                if start + symbols.len() as u64 > self.due {
                    return Err(DocError::Protocol("symbols beyond those asked for"));
                }
                match decoder.add_symbols(start, &symbols) {
                    Ok(()) => {}
                    Err(RibltError::TooManySymbols { .. } | RibltError::TooManyItems { .. }) => {
                        self.state = self.switch_to_ranges(store, dict, ob, theirs)?;
                        return Ok(());
                    }
                    Err(_) => return Err(DocError::Protocol("inconsistent coded symbols")),
                }
                if decoder.symbols_received() < self.due && !decoder.is_done() {
                    State::Decoding {
                        decoder,
                        theirs,
                        own,
                    }
                } else {
                    self.decide(store, dict, ob, decoder, theirs, own)?
                }
            }
            (State::Ranges(mut turns), msg) => match msg {
                Message::Wants { hashes } => {
                    turns.wants(&mut self.ctx(store, dict, ob), &hashes)?;
                    State::Ranges(turns)
                }
                Message::Ranges { parts } => {
                    let turn = turns.receive(&mut self.ctx(store, dict, ob), parts)?;
                    self.after_turn(ob, turns, turn)
                }
                _ => return Err(DocError::Protocol("unexpected message during ranges")),
            },
            _ => return Err(DocError::Protocol("message out of place")),
        };
        Ok(())
    }

    /// The responder's first answer, on the opener's first symbols or ranges.
    fn first<S: DocStore + ?Sized>(
        &mut self,
        store: &mut S,
        dict: &mut Dictionary,
        ob: &mut Outbox,
        theirs: Fingerprint,
        first: Message,
    ) -> Result<State, DocError> {
        let own = store.count(&KeyRange::all())?;
        // With either side empty there is nothing to decode: ranges send everything at once.
        let small = own <= self.config.riblt_max_items && own > 0 && theirs.count() > 0;
        let items = if small {
            store.item_hashes()?
        } else {
            Vec::new()
        };
        let fp = store.fingerprint(&KeyRange::all())?;
        if fp == theirs {
            self.stats.method = Method::Equal;
            self.finish(ob);
            return Ok(State::Closing);
        }
        match first {
            Message::Symbols { start, symbols } if small => {
                self.stats.method = Method::Riblt;
                let mut decoder =
                    Box::new(Decoder::new(self.hasher.clone(), self.config.riblt, items));
                self.stats.symbols_received += symbols.len() as u64;
                // The opener's unasked symbols, in frames of whatever size.
                if start != 0 || symbols.is_empty() {
                    return Err(DocError::Protocol("first symbols out of place"));
                }
                if symbols.len() as u64 > self.due {
                    return Err(DocError::Protocol("symbols beyond those asked for"));
                }
                match decoder.add_symbols(0, &symbols) {
                    Ok(()) => {}
                    Err(RibltError::TooManySymbols { .. } | RibltError::TooManyItems { .. }) => {
                        return self.switch_to_ranges(store, dict, ob, theirs);
                    }
                    Err(_) => return Err(DocError::Protocol("inconsistent coded symbols")),
                }
                if decoder.symbols_received() < self.due && !decoder.is_done() {
                    return Ok(State::Decoding {
                        decoder,
                        theirs,
                        own: fp.count(),
                    });
                }
                self.decide(store, dict, ob, decoder, theirs, fp.count())
            }
            Message::Symbols { start, symbols } => {
                if start != 0 || symbols.len() as u64 > self.due {
                    return Err(DocError::Protocol("first symbols out of place"));
                }
                self.stats.symbols_received += symbols.len() as u64;
                self.switch_to_ranges(store, dict, ob, theirs)
            }
            Message::Ranges { parts } => {
                self.stats.method = Method::Ranges;
                let mut turns = ranges::Turns::default();
                let turn = turns.receive(&mut self.ctx(store, dict, ob), parts)?;
                Ok(self.after_turn(ob, turns, turn))
            }
            _ => Err(DocError::Protocol(
                "expected symbols or ranges after DocOpen",
            )),
        }
    }

    /// The responder has all the symbols it asked for: answer, ask for more, or switch.
    #[allow(clippy::too_many_arguments)]
    fn decide<S: DocStore + ?Sized>(
        &mut self,
        store: &mut S,
        dict: &mut Dictionary,
        ob: &mut Outbox,
        decoder: Box<Decoder>,
        theirs: Fingerprint,
        own: u64,
    ) -> Result<State, DocError> {
        if decoder.is_done() {
            // Wants first: they are small, so the opener answers them while this side's
            // entries (which on a new connection may wait for the congestion window) are
            // still on their way.
            let wants: Vec<Item> = decoder.remote_only().copied().collect();
            if wants.len() > self.config.max_wants {
                return Err(DocError::Limit("wants"));
            }
            self.stats.wants_sent += wants.len() as u64;
            ob.wants(wants);
            let mine: BTreeSet<Item> = decoder.local_only().copied().collect();
            let mut ctx = self.ctx(store, dict, ob);
            let to_send = ctx.store.entries_with_items(&mine)?;
            ctx.send(&to_send)?;
            self.finish(ob);
            return Ok(State::Closing);
        }
        let received = decoder.symbols_received();
        let estimate = decoder.estimate_difference();
        let n = own.max(theirs.count());
        let max = self.config.riblt.max_symbols;
        if estimate <= (n / 8).max(64) && received < max {
            let more = received.max(estimate.saturating_mul(17) / 10 + 32);
            let until = received.saturating_add(more).min(max);
            self.due = until;
            ob.push(Message::MoreSymbols { until });
            return Ok(State::Decoding {
                decoder,
                theirs,
                own,
            });
        }
        self.switch_to_ranges(store, dict, ob, theirs)
    }

    /// Switches the responder to ranges: its first turn splits the whole document; returns
    /// the state that follows.
    fn switch_to_ranges<S: DocStore + ?Sized>(
        &mut self,
        store: &mut S,
        dict: &mut Dictionary,
        ob: &mut Outbox,
        theirs: Fingerprint,
    ) -> Result<State, DocError> {
        self.stats.method = Method::Ranges;
        let mut turns = ranges::Turns::default();
        let turn = turns.first_turn(&mut self.ctx(store, dict, ob), Some(theirs))?;
        Ok(self.after_turn(ob, turns, turn))
    }

    fn after_turn(&mut self, ob: &mut Outbox, turns: ranges::Turns, turn: ranges::Turn) -> State {
        self.stats.turns = turns.received();
        match turn {
            ranges::Turn::Ended => {
                self.finish(ob);
                State::Closing
            }
            ranges::Turn::Partial | ranges::Turn::Answered => State::Ranges(turns),
        }
    }

    fn finish(&mut self, ob: &mut Outbox) {
        if !self.sent_done {
            ob.push(Message::DocDone);
            self.sent_done = true;
        }
    }
}

/// What a session step works with.
struct Ctx<'a, S: ?Sized> {
    config: &'a DocConfig,
    range_key: &'a RangeKey,
    stats: &'a mut DocStats,
    store: &'a mut S,
    dict: &'a mut Dictionary,
    ob: &'a mut Outbox,
}

impl<S: DocStore + ?Sized> Ctx<'_, S> {
    /// Queues `entries` for sending, in order (their content statuses asked for at once).
    fn send(&mut self, entries: &[crate::entry::SignedEntry]) -> Result<(), DocError> {
        let statuses = self.store.content_statuses(entries);
        for (e, status) in entries.iter().zip(statuses) {
            let author = self.dict.index(&e.author())?;
            self.ob.entry(CompactEntry::from_signed(e, author, status));
            self.stats.entries_sent += 1;
        }
        Ok(())
    }

    /// Inserts received entries.
    fn receive(&mut self, entries: Vec<CompactEntry>) -> Result<(), DocError> {
        let ns = self.store.namespace();
        for c in entries {
            let author = self
                .dict
                .resolve(c.author)
                .ok_or(DocError::Protocol("undefined author index"))?;
            self.stats.entries_received += 1;
            let status = c.status;
            if let Received::Inserted { .. } = self.store.insert(c.to_signed(ns, author), status)? {
                self.stats.entries_inserted += 1;
            }
        }
        Ok(())
    }

    /// Sends the entries of wanted items of a rateless IBLT's set (the whole document);
    /// hashes of no entry held (replaced since, or never held) are skipped.
    fn answer_items(&mut self, hashes: &[Item]) -> Result<(), DocError> {
        if hashes.len() > self.config.max_wants {
            return Err(DocError::Limit("wants"));
        }
        let wanted: BTreeSet<Item> = hashes.iter().copied().collect();
        let to_send = self.store.entries_with_items(&wanted)?;
        self.send(&to_send)
    }

    /// Sends the entries of wanted items, looked up in `revealed` (items this side listed).
    fn answer_wants(
        &mut self,
        hashes: &[Item],
        revealed: &BTreeMap<Item, Vec<u8>>,
    ) -> Result<(), DocError> {
        if hashes.len() > self.config.max_wants {
            return Err(DocError::Limit("wants"));
        }
        let mut to_send = Vec::new();
        for h in hashes {
            let flat = revealed
                .get(h)
                .ok_or(DocError::Protocol("wanted an item never listed"))?;
            // Gone since it was listed (replaced or deleted by a newer entry): nothing to send.
            if let Some(e) = self.store.get(flat)? {
                if ItemHash::of_entry(e.entry()).0 == *h {
                    to_send.push(e);
                }
            }
        }
        self.send(&to_send)
    }
}

#[cfg(test)]
mod tests;
