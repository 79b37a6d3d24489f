//! The v2 connection session (`docs/sync-v2.md` §6.1, §6.2): the handshake, phase 1 (which
//! shared documents differ), the scheduling of document streams, and the author dictionary
//! all of a connection's document sessions share. Sans-IO, like [`DocSession`](super::doc::DocSession).
//!
//! # Phase 1
//!
//! The [`Dialer`] sends `Hello` and coded symbols of its *document items* (keyed namespace tag
//! ‖ keyed state tag, one per document it offers). The [`Acceptor`] decodes them against its
//! own items, asking for more symbols (doubling) until decoded, or for the plain item list
//! when the symbols would cost more than the list. A document differs when its namespace tag
//! is on both sides of the difference: both hold it, with different states. The acceptor
//! announces `Differing{count}` and opens that many document streams, at most
//! [`ConnConfig::max_streams`] (and the dialer's) at once, in ascending tag order.
//!
//! Only the dialer's keyed items travel, under a key fresh for each connection, so a peer learns
//! nothing about documents whose id it does not hold (§6.2 "Privacy").
//!
//! # Driving it
//!
//! The runtime writes what [`Dialer::new`] and every `handle` return on the control stream.
//! The acceptor opens a stream for each [`Acceptor::poll_open`] and runs a document session on
//! it; the dialer answers each `DocOpen` after [`Dialer::stream_opened`]. When a document
//! session ends, the runtime calls `stream_ended`; a round is over when `is_round_done`.
//! Before writing a document stream's messages, the runtime writes
//! [`Dictionary::take_definitions`] (of [`dict_mut`](Dialer::dict_mut)) on the control stream;
//! a document stream whose next message [`Dictionary::is_missing_for`] is parked until the
//! control stream brings the definitions.
//!
//! One round per connection: a later sync opens a new connection (a second `Hello` on the same
//! connection is not supported yet and is a protocol error).
//!
//! # Bounds
//!
//! `doc_count` at most [`ConnConfig::max_doc_count`]; phase-1 symbols at most
//! `2·(doc_count + own) + 64` before the list fallback; list items at most `doc_count`;
//! document streams at once at most the smaller `max_streams` (a dialer answers more with
//! `Abort{Unavailable}`); the dictionary's bounds. Each is a [`ConnError::Limit`]
//! (`LimitExceeded`) or, for a stream over the limit, [`AbortCode::Unavailable`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::{
    hash::PeerId,
    keys::NamespaceId,
    v2::{
        codec::{AbortCode, Message},
        dict::{Dictionary, DictionaryError},
        doc::{outbox::symbol_messages, DocConfig},
        fingerprint::Fingerprint,
        frame::MAX_ITEMS_PER_FRAME,
        riblt::{Decoder, Encoder, Hasher, Item, Limits, RibltError},
        tags::{ConnectionKey, NamespaceTag},
    },
};

/// Policy and bounds of a v2 connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnConfig {
    /// Document streams this side runs at once (at most 256).
    pub max_streams: u32,
    /// Most phase-1 symbols the dialer sends with `Hello`, in one frame (it sends
    /// `min(2·docs + 16, this)`).
    pub first_symbols: u64,
    /// Most documents a dialer may offer.
    pub max_doc_count: u64,
    /// Document sessions' policy.
    pub doc: DocConfig,
}

impl Default for ConnConfig {
    fn default() -> Self {
        Self {
            max_streams: 16,
            first_symbols: 128,
            max_doc_count: 1 << 20,
            doc: DocConfig::default(),
        }
    }
}

/// Most document streams a side may run at once.
pub const MAX_STREAMS: u32 = 256;

/// Most phase-1 symbols one `MoreSymbols` may ask for beyond those already sent (≈ 3 MiB of
/// frames). An acceptor asks for at most this many at a time; a dialer refuses more.
pub const MAX_SYMBOLS_PER_REQUEST: u64 = 1 << 16;

/// A document offered for v2 sync and its v2 fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    /// The document.
    pub namespace: NamespaceId,
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
}

/// Why a connection ended early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnError {
    /// A message out of place or inconsistent symbols.
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    /// A bound was exceeded.
    #[error("limit exceeded: {0}")]
    Limit(&'static str),
    /// The peer aborted the connection.
    #[error("aborted by the peer: {0:?}")]
    Aborted(AbortCode),
}

impl ConnError {
    /// The close code for this error (none when the peer aborted).
    pub fn code(&self) -> Option<AbortCode> {
        match self {
            ConnError::Protocol(_) => Some(AbortCode::Protocol),
            ConnError::Limit(_) => Some(AbortCode::LimitExceeded),
            ConnError::Aborted(_) => None,
        }
    }
}

impl From<DictionaryError> for ConnError {
    fn from(e: DictionaryError) -> Self {
        match e {
            DictionaryError::Full => ConnError::Limit("author dictionary"),
            DictionaryError::Gap { .. } => ConnError::Protocol("author dictionary gap"),
        }
    }
}

fn clamp_streams(n: u32) -> u32 {
    n.clamp(1, MAX_STREAMS)
}

/// Handles the control messages both roles accept at any time.
fn common(dict: &mut Dictionary, msg: &Message) -> Result<bool, ConnError> {
    match msg {
        Message::Authors { first, ids } => {
            dict.define(*first, ids)?;
            Ok(true)
        }
        Message::Abort { code } => Err(ConnError::Aborted(*code)),
        _ => Ok(false),
    }
}

/// The dialing side of a v2 connection.
#[derive(Debug)]
pub struct Dialer {
    config: ConnConfig,
    hasher: Hasher,
    encoder: Encoder,
    items: Vec<Item>,
    doc_count: u64,
    tags: BTreeMap<NamespaceTag, NamespaceId>,
    dict: Dictionary,
    acked: bool,
    peer_streams: u32,
    differing: Option<u64>,
    open: u32,
    ended: u64,
}

impl Dialer {
    /// Starts a connection offering `offers`; returns the first control messages (`Hello` and
    /// the first symbols). `nonce` must be fresh for each connection (from the node's rng).
    pub fn new(
        config: ConnConfig,
        nonce: [u8; 32],
        me: PeerId,
        peer: PeerId,
        offers: &[Offer],
    ) -> Result<(Self, Vec<Message>), ConnError> {
        let doc_count = offers.len() as u64;
        if doc_count > config.max_doc_count {
            return Err(ConnError::Limit("documents offered"));
        }
        let key = ConnectionKey::derive(&nonce, &me, &peer);
        let hasher = Hasher::new(key.riblt_key());
        let items: Vec<Item> = offers
            .iter()
            .map(|o| key.document_item(&o.namespace, &o.fingerprint))
            .collect();
        let tags = offers
            .iter()
            .map(|o| (key.namespace_tag(&o.namespace), o.namespace))
            .collect();
        let mut encoder = Encoder::new(&hasher, items.iter().copied());
        // 2·docs for the case where every document differs, and a margin that small
        // differences need (one differing document is two items: 3 symbols often fail).
        let first = (2 * doc_count + 16)
            .min(config.first_symbols)
            .clamp(1, crate::v2::frame::MAX_SYMBOLS_PER_FRAME as u64);
        let mut out = vec![Message::Hello {
            nonce,
            max_streams: clamp_streams(config.max_streams),
            doc_count,
        }];
        out.push(Message::Symbols {
            start: 0,
            symbols: encoder.next_symbols(first as usize),
        });
        let s = Self {
            config,
            hasher,
            encoder,
            items,
            doc_count,
            tags,
            dict: Dictionary::new(),
            acked: false,
            peer_streams: 0,
            differing: None,
            open: 0,
            ended: 0,
        };
        Ok((s, out))
    }

    /// The RIBLT hashing of this connection (for document sessions).
    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// The connection's author dictionaries.
    pub fn dict_mut(&mut self) -> &mut Dictionary {
        &mut self.dict
    }

    /// Handles a control message; returns the control messages to write.
    pub fn handle(&mut self, msg: Message) -> Result<Vec<Message>, ConnError> {
        if common(&mut self.dict, &msg)? {
            return Ok(Vec::new());
        }
        if !self.acked {
            return match msg {
                Message::HelloAck { max_streams } => {
                    self.acked = true;
                    self.peer_streams = clamp_streams(max_streams);
                    Ok(Vec::new())
                }
                _ => Err(ConnError::Protocol("expected HelloAck")),
            };
        }
        match msg {
            Message::MoreSymbols { until } if self.differing.is_none() => {
                let sent = self.encoder.next_index();
                let max = 2 * (self.doc_count + self.config.max_doc_count) + 64;
                if until <= sent || until > max {
                    return Err(ConnError::Protocol("MoreSymbols out of range"));
                }
                if until - sent > MAX_SYMBOLS_PER_REQUEST {
                    return Err(ConnError::Limit("symbols asked for at once"));
                }
                let symbols = self.encoder.next_symbols((until - sent) as usize);
                Ok(symbol_messages(
                    sent,
                    &symbols,
                    crate::v2::frame::MAX_SYMBOLS_PER_FRAME,
                ))
            }
            Message::SendList if self.differing.is_none() => {
                let mut out: Vec<Message> = self
                    .items
                    .chunks(MAX_ITEMS_PER_FRAME)
                    .map(|c| Message::ItemList {
                        last: false,
                        items: c.to_vec(),
                    })
                    .collect();
                match out.last_mut() {
                    Some(Message::ItemList { last, .. }) => *last = true,
                    _ => out.push(Message::ItemList {
                        last: true,
                        items: Vec::new(),
                    }),
                }
                Ok(out)
            }
            Message::Differing { count } if self.differing.is_none() => {
                if count > self.doc_count {
                    return Err(ConnError::Protocol("more differing documents than offered"));
                }
                self.differing = Some(count);
                Ok(Vec::new())
            }
            _ => Err(ConnError::Protocol("unexpected control message")),
        }
    }

    /// The acceptor opened a document stream for `tag`: the namespace to run a responding
    /// document session for, or the code to abort the stream with.
    pub fn stream_opened(&mut self, tag: &NamespaceTag) -> Result<NamespaceId, AbortCode> {
        // Twice the limit: the acceptor opens a stream once its session is done, which may be
        // before this side has read that session's last frame (streams are not ordered).
        if self.open >= 2 * clamp_streams(self.config.max_streams) {
            return Err(AbortCode::Unavailable);
        }
        let ns = *self.tags.get(tag).ok_or(AbortCode::NotFound)?;
        self.open += 1;
        Ok(ns)
    }

    /// A document stream this side accepted has ended (done or aborted).
    pub fn stream_ended(&mut self) {
        self.open = self.open.saturating_sub(1);
        self.ended += 1;
    }

    /// Whether phase 1 is over and every differing document's stream has ended.
    pub fn is_round_done(&self) -> bool {
        self.differing
            .is_some_and(|n| self.ended >= n && self.open == 0)
    }

    /// The number of differing documents, once the acceptor has said.
    pub fn differing(&self) -> Option<u64> {
        self.differing
    }
}

#[derive(Debug)]
enum Phase1 {
    AwaitHello,
    Decoding {
        decoder: Box<Decoder>,
        until: u64,
        max: u64,
    },
    Listing {
        items: BTreeSet<Item>,
    },
    Done,
}

/// The accepting side of a v2 connection.
#[derive(Debug)]
pub struct Acceptor {
    config: ConnConfig,
    me: PeerId,
    peer: PeerId,
    offers: Vec<Offer>,
    hasher: Option<Hasher>,
    /// Own items by item, with the namespace and its tag.
    own: BTreeMap<Item, NamespaceId>,
    doc_count: u64,
    phase: Phase1,
    dict: Dictionary,
    limit: u32,
    to_open: VecDeque<(NamespaceTag, NamespaceId)>,
    open: u32,
    differing: u64,
    ended: u64,
}

impl Acceptor {
    /// Accepts a connection from `peer`, offering `offers`.
    pub fn new(config: ConnConfig, me: PeerId, peer: PeerId, offers: Vec<Offer>) -> Self {
        Self {
            config,
            me,
            peer,
            offers,
            hasher: None,
            own: BTreeMap::new(),
            doc_count: 0,
            phase: Phase1::AwaitHello,
            dict: Dictionary::new(),
            limit: clamp_streams(config.max_streams),
            to_open: VecDeque::new(),
            open: 0,
            differing: 0,
            ended: 0,
        }
    }

    /// The RIBLT hashing of this connection, once `Hello` arrived (for document sessions).
    pub fn hasher(&self) -> Option<&Hasher> {
        self.hasher.as_ref()
    }

    /// The connection's author dictionaries.
    pub fn dict_mut(&mut self) -> &mut Dictionary {
        &mut self.dict
    }

    /// Handles a control message; returns the control messages to write.
    pub fn handle(&mut self, msg: Message) -> Result<Vec<Message>, ConnError> {
        if common(&mut self.dict, &msg)? {
            return Ok(Vec::new());
        }
        let phase = std::mem::replace(&mut self.phase, Phase1::Done);
        let mut out = Vec::new();
        self.phase = match (phase, msg) {
            (
                Phase1::AwaitHello,
                Message::Hello {
                    nonce,
                    max_streams,
                    doc_count,
                },
            ) => {
                if doc_count > self.config.max_doc_count {
                    return Err(ConnError::Limit("documents offered"));
                }
                self.doc_count = doc_count;
                self.limit = clamp_streams(self.config.max_streams).min(clamp_streams(max_streams));
                let key = ConnectionKey::derive(&nonce, &self.peer, &self.me);
                let hasher = Hasher::new(key.riblt_key());
                self.own = self
                    .offers
                    .iter()
                    .map(|o| (key.document_item(&o.namespace, &o.fingerprint), o.namespace))
                    .collect();
                let max = 2 * (doc_count + self.own.len() as u64) + 64;
                let limits = Limits {
                    max_symbols: max,
                    max_items: (doc_count as usize).saturating_add(self.own.len()),
                };
                let decoder = Decoder::new(hasher.clone(), limits, self.own.keys().copied());
                self.hasher = Some(hasher);
                out.push(Message::HelloAck {
                    max_streams: clamp_streams(self.config.max_streams),
                });
                // `until` 0: the dialer's first batch, one frame of whatever size.
                Phase1::Decoding {
                    decoder: Box::new(decoder),
                    until: 0,
                    max,
                }
            }
            (Phase1::AwaitHello, _) => return Err(ConnError::Protocol("expected Hello")),
            (
                Phase1::Decoding {
                    mut decoder,
                    until,
                    max,
                },
                Message::Symbols { start, symbols },
            ) => {
                let until = if until == 0 && start == 0 && !symbols.is_empty() {
                    symbols.len() as u64
                } else {
                    until
                };
                if start + symbols.len() as u64 > until {
                    return Err(ConnError::Protocol("symbols beyond those asked for"));
                }
                let fallback = match decoder.add_symbols(start, &symbols) {
                    Ok(()) => false,
                    Err(RibltError::TooManySymbols { .. } | RibltError::TooManyItems { .. }) => {
                        true
                    }
                    Err(_) => return Err(ConnError::Protocol("inconsistent coded symbols")),
                };
                let received = decoder.symbols_received();
                if fallback {
                    out.push(Message::SendList);
                    Phase1::Listing {
                        items: BTreeSet::new(),
                    }
                } else if received < until {
                    Phase1::Decoding {
                        decoder,
                        until,
                        max,
                    }
                } else if decoder.is_done() {
                    let theirs: BTreeSet<NamespaceTag> =
                        decoder.remote_only().map(tag_of).collect();
                    let differ: Vec<(NamespaceTag, NamespaceId)> = decoder
                        .local_only()
                        .filter(|i| theirs.contains(&tag_of(i)))
                        .map(|i| (tag_of(i), self.own[i]))
                        .collect();
                    self.announce(differ, &mut out);
                    Phase1::Done
                } else if received >= max {
                    out.push(Message::SendList);
                    Phase1::Listing {
                        items: BTreeSet::new(),
                    }
                } else {
                    let more = received
                        .max(decoder.estimate_difference() * 17 / 10 + 16)
                        .min(MAX_SYMBOLS_PER_REQUEST);
                    let until = (received + more).min(max);
                    out.push(Message::MoreSymbols { until });
                    Phase1::Decoding {
                        decoder,
                        until,
                        max,
                    }
                }
            }
            (Phase1::Listing { mut items }, Message::ItemList { last, items: more }) => {
                items.extend(more);
                if items.len() as u64 > self.doc_count {
                    return Err(ConnError::Limit("listed documents"));
                }
                if last {
                    let theirs: BTreeSet<NamespaceTag> = items
                        .iter()
                        .filter(|i| !self.own.contains_key(*i))
                        .map(tag_of)
                        .collect();
                    let differ = self
                        .own
                        .iter()
                        .filter(|(i, _)| !items.contains(*i) && theirs.contains(&tag_of(i)))
                        .map(|(i, ns)| (tag_of(i), *ns))
                        .collect();
                    self.announce(differ, &mut out);
                    Phase1::Done
                } else {
                    Phase1::Listing { items }
                }
            }
            _ => return Err(ConnError::Protocol("unexpected control message")),
        };
        Ok(out)
    }

    fn announce(&mut self, mut differ: Vec<(NamespaceTag, NamespaceId)>, out: &mut Vec<Message>) {
        differ.sort();
        self.differing = differ.len() as u64;
        out.push(Message::Differing {
            count: self.differing,
        });
        self.to_open = differ.into();
    }

    /// The next document to open a stream for (its tag goes in `DocOpen`), while fewer than
    /// the agreed number of streams are open.
    pub fn poll_open(&mut self) -> Option<(NamespaceTag, NamespaceId)> {
        if self.open >= self.limit {
            return None;
        }
        let next = self.to_open.pop_front()?;
        self.open += 1;
        Some(next)
    }

    /// A document stream this side opened has ended (done or aborted).
    pub fn stream_ended(&mut self) {
        self.open = self.open.saturating_sub(1);
        self.ended += 1;
    }

    /// Whether phase 1 is over and every differing document's stream has ended.
    pub fn is_round_done(&self) -> bool {
        matches!(self.phase, Phase1::Done) && self.ended >= self.differing && self.open == 0
    }

    /// Documents found to differ (known once phase 1 is over).
    pub fn differing(&self) -> u64 {
        self.differing
    }
}

fn tag_of(item: &Item) -> NamespaceTag {
    let mut t = [0u8; 16];
    t.copy_from_slice(&item[..16]);
    t
}

#[cfg(test)]
mod tests;
