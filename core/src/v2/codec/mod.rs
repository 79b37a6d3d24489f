//! Every v2 message and its exact bytes (`docs/sync-v2.md` §5).
//!
//! # Encoding rules
//!
//! * Integers marked *varint* are unsigned LEB128, at most 10 bytes, and **minimal**: a
//!   decoder rejects a varint with a redundant final `0x00` byte ([`V2DecodeError::NonMinimalVarint`]).
//!   Every value therefore has exactly one encoding, so re-encoding a decoded message gives
//!   back its bytes — the property the `decode_v2` fuzz target checks.
//! * Fixed-width fields are raw bytes (ids, hashes, signatures) or little-endian integers
//!   (the 8-byte RIBLT checksum).
//! * A list is a varint count followed by its elements. Before anything is allocated the
//!   count is checked against the bytes left in the frame, at each element's smallest
//!   encoding, so no count can make a decoder allocate more than the (≤ 64 KiB) frame holds.
//! * A message is one type byte and its fields, and fills its frame exactly
//!   ([`V2DecodeError::TrailingBytes`] otherwise).
//!
//! Unlike v1 (postcard, for iroh-docs compatibility) this format is Sheaf's own; it has no
//! serde representation, on purpose: the decoder is the specification's executable form.

use crate::{
    entry::{Entry, EntrySignature, Record, RecordIdentifier, SignedEntry},
    hash::Hash,
    keys::{AuthorId, NamespaceId},
    ranger::ContentStatus,
    v2::{
        fingerprint::{Fingerprint, RangeDigest, RANGE_TAG_LEN},
        riblt::{CodedSymbol, Item},
        tags::{NamespaceTag, NAMESPACE_TAG_LEN},
    },
};

/// Why a v2 payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum V2DecodeError {
    /// The payload ended in the middle of a value.
    #[error("unexpected end of payload")]
    UnexpectedEnd,
    /// A varint with a redundant trailing zero byte.
    #[error("non-minimal varint")]
    NonMinimalVarint,
    /// A varint longer than 10 bytes or above its field's range.
    #[error("varint out of range for {0}")]
    VarintOverflow(&'static str),
    /// A message type byte this version does not define.
    #[error("unknown message type {0:#04x}")]
    UnknownType(u8),
    /// A tag byte outside its field's values.
    #[error("unknown {what} tag {tag}")]
    UnknownTag {
        /// The field.
        what: &'static str,
        /// The byte read.
        tag: u8,
    },
    /// A list count that cannot fit in the bytes left.
    #[error("list of {count} elements cannot fit in {remaining} bytes")]
    CountTooLarge {
        /// The count read.
        count: u64,
        /// Bytes left in the payload.
        remaining: usize,
    },
    /// The message ended before its payload did.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
}

/// A bounds-checked cursor over one payload.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], V2DecodeError> {
        if n > self.buf.len() {
            return Err(V2DecodeError::UnexpectedEnd);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, V2DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], V2DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A minimal LEB128 varint of at most 64 bits.
    fn varint(&mut self, what: &'static str) -> Result<u64, V2DecodeError> {
        let mut value = 0u64;
        for i in 0..10 {
            let byte = self.u8()?;
            let part = u64::from(byte & 0x7f);
            if i == 9 && part > 1 {
                return Err(V2DecodeError::VarintOverflow(what));
            }
            value |= part << (7 * i);
            if byte & 0x80 == 0 {
                if i > 0 && byte == 0 {
                    return Err(V2DecodeError::NonMinimalVarint);
                }
                return Ok(value);
            }
        }
        Err(V2DecodeError::VarintOverflow(what))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, V2DecodeError> {
        u32::try_from(self.varint(what)?).map_err(|_| V2DecodeError::VarintOverflow(what))
    }

    /// A list count, checked against the bytes left at `min_len` bytes per element.
    fn count(&mut self, min_len: usize) -> Result<usize, V2DecodeError> {
        let count = self.varint("count")?;
        let remaining = self.buf.len();
        if count.saturating_mul(min_len as u64) > remaining as u64 {
            return Err(V2DecodeError::CountTooLarge { count, remaining });
        }
        Ok(count as usize)
    }

    fn bytes(&mut self) -> Result<&'a [u8], V2DecodeError> {
        let n = self.count(1)?;
        self.take(n)
    }

    fn bool(&mut self) -> Result<bool, V2DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(V2DecodeError::UnknownTag { what: "bool", tag }),
        }
    }

    fn list<T>(
        &mut self,
        min_len: usize,
        mut f: impl FnMut(&mut Self) -> Result<T, V2DecodeError>,
    ) -> Result<Vec<T>, V2DecodeError> {
        let n = self.count(min_len)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(f(self)?);
        }
        Ok(out)
    }

    fn finish(&self) -> Result<(), V2DecodeError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(V2DecodeError::TrailingBytes(n)),
        }
    }
}

/// Appends a minimal LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Smallest encoding of a coded symbol: sum 32 + checksum 8 + count 1.
pub const MIN_SYMBOL_LEN: usize = 41;
/// Largest encoding of a coded symbol (count below 2^63: 9 varint bytes).
pub const MAX_SYMBOL_LEN: usize = 49;
/// Smallest encoding of a [`CompactEntry`].
pub const MIN_COMPACT_ENTRY_LEN: usize = 1 + 1 + 1 + 32 + 1 + 1 + 128;
/// Smallest encoding of a [`Part`]: bound `End` and mode `Skip`.
pub const MIN_PART_LEN: usize = 2;

fn put_fingerprint(out: &mut Vec<u8>, fp: &Fingerprint) {
    out.extend_from_slice(&fp.sum());
    put_varint(out, fp.count());
}

fn read_fingerprint(r: &mut Reader<'_>) -> Result<Fingerprint, V2DecodeError> {
    let sum = r.array::<32>()?;
    Ok(Fingerprint::from_parts(sum, r.varint("fingerprint count")?))
}

fn put_symbol(out: &mut Vec<u8>, s: &CodedSymbol) {
    out.extend_from_slice(&s.sum);
    out.extend_from_slice(&s.checksum.to_le_bytes());
    put_varint(out, s.count);
}

fn read_symbol(r: &mut Reader<'_>) -> Result<CodedSymbol, V2DecodeError> {
    let sum = r.array::<32>()?;
    let checksum = u64::from_le_bytes(r.array::<8>()?);
    let count = r.varint("symbol count")?;
    if count >= 1 << 63 {
        return Err(V2DecodeError::VarintOverflow("symbol count"));
    }
    Ok(CodedSymbol {
        sum,
        checksum,
        count,
    })
}

fn put_items(out: &mut Vec<u8>, items: &[Item]) {
    put_varint(out, items.len() as u64);
    for i in items {
        out.extend_from_slice(i);
    }
}

fn read_items(r: &mut Reader<'_>) -> Result<Vec<Item>, V2DecodeError> {
    r.list(32, |r| r.array::<32>())
}

fn status_byte(s: ContentStatus) -> u8 {
    match s {
        ContentStatus::Complete => 0,
        ContentStatus::Incomplete => 1,
        ContentStatus::Missing => 2,
    }
}

/// An entry without its namespace (implied by the stream) and with its author as an index
/// into the sender's per-connection author dictionary (`Authors` messages).
///
/// Bytes: `author varint ‖ key_len varint ‖ key ‖ len varint ‖ hash(32) ‖ timestamp varint ‖
/// status u8 ‖ author_signature(64) ‖ namespace_signature(64)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactEntry {
    /// Index of the author in the sender's dictionary.
    pub author: u32,
    /// The key.
    pub key: Vec<u8>,
    /// Content length, hash and timestamp.
    pub record: Record,
    /// Whether the sender holds the content.
    pub status: ContentStatus,
    /// Both signatures.
    pub signature: EntrySignature,
}

impl CompactEntry {
    /// The compact form of `entry`, its author being dictionary index `author`.
    pub fn from_signed(entry: &SignedEntry, author: u32, status: ContentStatus) -> Self {
        Self {
            author,
            key: entry.key().to_vec(),
            record: *entry.record(),
            status,
            signature: *entry.signature(),
        }
    }

    /// The full entry, given the stream's namespace and the resolved author id. Signatures
    /// are not checked here.
    pub fn to_signed(&self, namespace: NamespaceId, author: AuthorId) -> SignedEntry {
        SignedEntry::from_parts(
            self.signature,
            Entry::new(
                RecordIdentifier::new(namespace, author, &self.key),
                self.record,
            ),
        )
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, u64::from(self.author));
        put_bytes(out, &self.key);
        put_varint(out, self.record.content_len());
        out.extend_from_slice(self.record.content_hash().as_bytes());
        put_varint(out, self.record.timestamp());
        out.push(status_byte(self.status));
        out.extend_from_slice(&self.signature.author_bytes());
        out.extend_from_slice(&self.signature.namespace_bytes());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, V2DecodeError> {
        let author = r.u32("author index")?;
        let key = r.bytes()?.to_vec();
        let len = r.varint("content length")?;
        let hash = Hash::from_bytes(r.array::<32>()?);
        let timestamp = r.varint("timestamp")?;
        let status = match r.u8()? {
            0 => ContentStatus::Complete,
            1 => ContentStatus::Incomplete,
            2 => ContentStatus::Missing,
            tag => {
                return Err(V2DecodeError::UnknownTag {
                    what: "content status",
                    tag,
                })
            }
        };
        let author_sig = r.array::<64>()?;
        let namespace_sig = r.array::<64>()?;
        Ok(Self {
            author,
            key,
            record: Record::new(hash, len, timestamp),
            status,
            signature: EntrySignature::from_bytes(author_sig, namespace_sig),
        })
    }
}

/// The exclusive upper bound of a range part, in v1's key order (author id bytes, then key
/// bytes).
///
/// Bytes: `0x00` for [`Bound::End`]; `0x01 ‖ author varint ‖ key_len varint ‖ key` for
/// [`Bound::Key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    /// Past every key of the document.
    End,
    /// Before `(author, key)`; `key` may be a prefix of real keys.
    Key {
        /// Index of the author in the sender's dictionary.
        author: u32,
        /// Key bytes.
        key: Vec<u8>,
    },
}

impl Bound {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Bound::End => out.push(0),
            Bound::Key { author, key } => {
                out.push(1);
                put_varint(out, u64::from(*author));
                put_bytes(out, key);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, V2DecodeError> {
        match r.u8()? {
            0 => Ok(Bound::End),
            1 => Ok(Bound::Key {
                author: r.u32("author index")?,
                key: r.bytes()?.to_vec(),
            }),
            tag => Err(V2DecodeError::UnknownTag { what: "bound", tag }),
        }
    }
}

/// What a range part says about the range from the previous part's bound (or the start of
/// the document) to its own.
///
/// Bytes: `0x00` Skip; `0x01 ‖ tag(16) ‖ count varint` Fingerprint (a [`RangeDigest`]);
/// `0x02 ‖ n varint ‖ n × item hash(32)` Hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartMode {
    /// Nothing to reconcile here (the range is settled, or the sender defers it).
    Skip,
    /// The sender's fingerprint of the range, as its keyed digest.
    Fingerprint(RangeDigest),
    /// Every item hash the sender holds in the range, ascending by key.
    Hashes(Vec<Item>),
}

/// One part of a [`Message::Ranges`]: an upper bound and what the sender says about the range
/// below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Exclusive upper bound.
    pub upper: Bound,
    /// The sender's statement about the range.
    pub mode: PartMode,
}

impl Part {
    fn encode(&self, out: &mut Vec<u8>) {
        self.upper.encode(out);
        match &self.mode {
            PartMode::Skip => out.push(0),
            PartMode::Fingerprint(d) => {
                out.push(1);
                out.extend_from_slice(&d.tag);
                put_varint(out, d.count);
            }
            PartMode::Hashes(items) => {
                out.push(2);
                put_items(out, items);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, V2DecodeError> {
        let upper = Bound::decode(r)?;
        let mode = match r.u8()? {
            0 => PartMode::Skip,
            1 => PartMode::Fingerprint(RangeDigest {
                tag: r.array::<RANGE_TAG_LEN>()?,
                count: r.varint("fingerprint count")?,
            }),
            2 => PartMode::Hashes(read_items(r)?),
            tag => {
                return Err(V2DecodeError::UnknownTag {
                    what: "part mode",
                    tag,
                })
            }
        };
        Ok(Part { upper, mode })
    }
}

/// Why a stream or connection is abandoned (`Abort` messages; the same numbers are the QUIC
/// application error codes when the connection is closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AbortCode {
    /// 0: no error; the peer is done (connection close only).
    Done,
    /// 1: the document of a `DocOpen` is not (or no longer) synced here.
    NotFound,
    /// 2: a bound of the specification was exceeded.
    LimitExceeded,
    /// 3: a malformed frame or a message out of place.
    Protocol,
    /// 4: a second connection to the same peer (the tie-break lost).
    Duplicate,
    /// 5: the node is shutting down or out of resources.
    Unavailable,
    /// Any other code (kept so that newer codes decode).
    Other(u32),
}

impl AbortCode {
    /// The code's number.
    pub fn to_u32(self) -> u32 {
        match self {
            AbortCode::Done => 0,
            AbortCode::NotFound => 1,
            AbortCode::LimitExceeded => 2,
            AbortCode::Protocol => 3,
            AbortCode::Duplicate => 4,
            AbortCode::Unavailable => 5,
            AbortCode::Other(n) => n,
        }
    }

    /// The code for a number (numbers 0–5 always give the named codes).
    pub fn from_u32(n: u32) -> Self {
        match n {
            0 => AbortCode::Done,
            1 => AbortCode::NotFound,
            2 => AbortCode::LimitExceeded,
            3 => AbortCode::Protocol,
            4 => AbortCode::Duplicate,
            5 => AbortCode::Unavailable,
            n => AbortCode::Other(n),
        }
    }
}

/// Every v2 message. The first byte of a payload is the message type (in brackets); the
/// stream a message may appear on is in `docs/sync-v2.md` §5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// \[0x01\] Control, dialer's first frame: its nonce, how many document streams it runs at
    /// once, and how many documents its phase-1 set holds.
    Hello {
        /// 32 random bytes (the connection key's input).
        nonce: [u8; 32],
        /// Most document streams open at once that the dialer accepts.
        max_streams: u32,
        /// Number of items in the dialer's phase-1 set.
        doc_count: u64,
    },
    /// \[0x02\] Control, acceptor's first frame.
    HelloAck {
        /// Most document streams open at once that the acceptor runs.
        max_streams: u32,
    },
    /// \[0x03\] Coded symbols `start, start + 1, …` of the sender's set (phase 1 on the control
    /// stream; phase 2 on a document stream).
    Symbols {
        /// Index of the first symbol.
        start: u64,
        /// The symbols.
        symbols: Vec<CodedSymbol>,
    },
    /// \[0x04\] The decoder asks for symbols up to index `until` (exclusive).
    MoreSymbols {
        /// One past the last symbol wanted.
        until: u64,
    },
    /// \[0x05\] Control, acceptor: phase 1 falls back to a list; send your items.
    SendList,
    /// \[0x06\] Control, dialer: phase-1 items as a list (several frames, the last flagged).
    ItemList {
        /// Whether this frame ends the list.
        last: bool,
        /// Document items.
        items: Vec<Item>,
    },
    /// \[0x07\] Control, acceptor: phase 1 is decoded; this many document streams follow.
    Differing {
        /// Number of documents that differ.
        count: u64,
    },
    /// \[0x08\] Control: defines the sender's author indices `first, first + 1, …`.
    Authors {
        /// Index of the first id.
        first: u32,
        /// Author ids.
        ids: Vec<AuthorId>,
    },
    /// \[0x09\] Any stream: the sender abandons it.
    Abort {
        /// Why.
        code: AbortCode,
    },
    /// \[0x10\] Document stream, opener's first frame: which document, its fingerprint, and
    /// how many coded symbols follow unasked.
    DocOpen {
        /// The namespace's tag on this connection.
        tag: NamespaceTag,
        /// The opener's fingerprint of the whole document.
        fingerprint: Fingerprint,
        /// Coded symbols `0..unasked` the opener sends right after, before any `MoreSymbols`
        /// (0 when its first `Ranges` follows instead).
        unasked: u64,
    },
    /// \[0x11\] Document stream: range parts covering the whole key space, in order.
    Ranges {
        /// The parts; the last one's bound is [`Bound::End`].
        parts: Vec<Part>,
    },
    /// \[0x12\] Document stream: item hashes whose entries the sender wants.
    Wants {
        /// Entry item hashes.
        hashes: Vec<Item>,
    },
    /// \[0x13\] Document stream: entries.
    Entries {
        /// The entries.
        entries: Vec<CompactEntry>,
    },
    /// \[0x14\] Document stream: the sender will send nothing more on this stream.
    DocDone,
}

impl Message {
    /// The type byte.
    pub fn type_byte(&self) -> u8 {
        match self {
            Message::Hello { .. } => 0x01,
            Message::HelloAck { .. } => 0x02,
            Message::Symbols { .. } => 0x03,
            Message::MoreSymbols { .. } => 0x04,
            Message::SendList => 0x05,
            Message::ItemList { .. } => 0x06,
            Message::Differing { .. } => 0x07,
            Message::Authors { .. } => 0x08,
            Message::Abort { .. } => 0x09,
            Message::DocOpen { .. } => 0x10,
            Message::Ranges { .. } => 0x11,
            Message::Wants { .. } => 0x12,
            Message::Entries { .. } => 0x13,
            Message::DocDone => 0x14,
        }
    }

    /// Appends the payload (type byte and fields) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.type_byte());
        match self {
            Message::Hello {
                nonce,
                max_streams,
                doc_count,
            } => {
                out.extend_from_slice(nonce);
                put_varint(out, u64::from(*max_streams));
                put_varint(out, *doc_count);
            }
            Message::HelloAck { max_streams } => put_varint(out, u64::from(*max_streams)),
            Message::Symbols { start, symbols } => {
                put_varint(out, *start);
                put_varint(out, symbols.len() as u64);
                for s in symbols {
                    put_symbol(out, s);
                }
            }
            Message::MoreSymbols { until } => put_varint(out, *until),
            Message::SendList | Message::DocDone => {}
            Message::ItemList { last, items } => {
                out.push(u8::from(*last));
                put_items(out, items);
            }
            Message::Differing { count } => put_varint(out, *count),
            Message::Authors { first, ids } => {
                put_varint(out, u64::from(*first));
                put_varint(out, ids.len() as u64);
                for id in ids {
                    out.extend_from_slice(id.as_bytes());
                }
            }
            Message::Abort { code } => put_varint(out, u64::from(code.to_u32())),
            Message::DocOpen {
                tag,
                fingerprint,
                unasked,
            } => {
                out.extend_from_slice(tag);
                put_fingerprint(out, fingerprint);
                put_varint(out, *unasked);
            }
            Message::Ranges { parts } => {
                put_varint(out, parts.len() as u64);
                for p in parts {
                    p.encode(out);
                }
            }
            Message::Wants { hashes } => put_items(out, hashes),
            Message::Entries { entries } => {
                put_varint(out, entries.len() as u64);
                for e in entries {
                    e.encode(out);
                }
            }
        }
    }

    /// The payload as a fresh vector.
    pub fn to_payload(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes a payload that must hold exactly one message.
    pub fn decode(payload: &[u8]) -> Result<Self, V2DecodeError> {
        let mut r = Reader::new(payload);
        let msg = Self::decode_fields(&mut r)?;
        r.finish()?;
        Ok(msg)
    }

    fn decode_fields(r: &mut Reader<'_>) -> Result<Self, V2DecodeError> {
        Ok(match r.u8()? {
            0x01 => Message::Hello {
                nonce: r.array::<32>()?,
                max_streams: r.u32("max_streams")?,
                doc_count: r.varint("doc_count")?,
            },
            0x02 => Message::HelloAck {
                max_streams: r.u32("max_streams")?,
            },
            0x03 => Message::Symbols {
                start: r.varint("symbol start")?,
                symbols: r.list(MIN_SYMBOL_LEN, read_symbol)?,
            },
            0x04 => Message::MoreSymbols {
                until: r.varint("until")?,
            },
            0x05 => Message::SendList,
            0x06 => Message::ItemList {
                last: r.bool()?,
                items: read_items(r)?,
            },
            0x07 => Message::Differing {
                count: r.varint("differing count")?,
            },
            0x08 => Message::Authors {
                first: r.u32("author index")?,
                ids: r.list(32, |r| Ok(AuthorId::from(r.array::<32>()?)))?,
            },
            0x09 => Message::Abort {
                code: AbortCode::from_u32(r.u32("abort code")?),
            },
            0x10 => Message::DocOpen {
                tag: r.array::<NAMESPACE_TAG_LEN>()?,
                fingerprint: read_fingerprint(r)?,
                unasked: r.varint("unasked symbols")?,
            },
            0x11 => Message::Ranges {
                parts: r.list(MIN_PART_LEN, Part::decode)?,
            },
            0x12 => Message::Wants {
                hashes: read_items(r)?,
            },
            0x13 => Message::Entries {
                entries: r.list(MIN_COMPACT_ENTRY_LEN, CompactEntry::decode)?,
            },
            0x14 => Message::DocDone,
            t => return Err(V2DecodeError::UnknownType(t)),
        })
    }
}

#[cfg(test)]
mod tests;
