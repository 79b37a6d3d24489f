//! Range-based set reconciliation (RBSR): the message types.
//!
//! Two peers reconcile the entries of one namespace by exchanging [`Message`]s. Each message
//! part either summarises a key [`Range`] by its [`Fingerprint`] (XOR of the entry
//! fingerprints, seeded with BLAKE3 of nothing) or carries the entries of a range
//! ([`RangeItem`]). A peer answers a fingerprint it disagrees with by splitting the range or, when
//! it holds at most one entry there, by sending its entries; it answers entries with the ones
//! the other side lacks. The layouts here are iroh-docs' wire format.
//!
//! Range semantics, which both sides must share:
//! * `x == y`: the whole namespace;
//! * `x < y`: `[x, y)`;
//! * `x > y`: wrap-around, `{t >= x} ∪ {t < y}`.

mod budget;
mod error;
mod process;
#[cfg(test)]
mod tests;

use std::{fmt, ops::BitXorAssign};

pub use error::{ProcessError, SyncLimit};
pub use process::{
    initial_message, process_message, ContentStatusSource, NoContent, Received, SyncConfig,
};

use crate::{
    entry::{RecordIdentifier, SignedEntry, MIN_SIGNED_ENTRY_LEN},
    wire::codec::{put_u64, Decode, DecodeError, Encode, Reader},
};

/// XOR-combinable summary of a set of entries.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of the empty set: BLAKE3 of the empty string.
    pub const EMPTY: Fingerprint = Fingerprint(*crate::hash::Hash::EMPTY.as_bytes());

    /// The fingerprint of the empty set.
    pub fn empty() -> Self {
        Self::EMPTY
    }

    /// Raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// XOR of two fingerprints (the group operation; its own inverse).
    pub fn xor(mut self, other: &Fingerprint) -> Self {
        self ^= other;
        self
    }
}

impl BitXorAssign<&Fingerprint> for Fingerprint {
    fn bitxor_assign(&mut self, rhs: &Fingerprint) {
        for (a, b) in self.0.iter_mut().zip(rhs.0.iter()) {
            *a ^= b;
        }
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", hex::encode(&self.0[..5]))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl Encode for Fingerprint {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
}

impl Decode for Fingerprint {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array().map(Fingerprint)
    }
}

/// A range of record identifiers (see the module docs for the three forms).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Range {
    x: RecordIdentifier,
    y: RecordIdentifier,
}

impl Range {
    /// The range from `x` to `y`.
    pub fn new(x: RecordIdentifier, y: RecordIdentifier) -> Self {
        Self { x, y }
    }

    /// Lower bound.
    pub fn x(&self) -> &RecordIdentifier {
        &self.x
    }

    /// Upper bound.
    pub fn y(&self) -> &RecordIdentifier {
        &self.y
    }

    /// Whether this range is the whole set (`x == y`).
    pub fn is_all(&self) -> bool {
        self.x == self.y
    }

    /// Whether `t` lies in the range.
    pub fn contains(&self, t: &RecordIdentifier) -> bool {
        match self.x.cmp(&self.y) {
            std::cmp::Ordering::Equal => true,
            std::cmp::Ordering::Less => &self.x <= t && t < &self.y,
            std::cmp::Ordering::Greater => &self.x <= t || t < &self.y,
        }
    }
}

impl Encode for Range {
    fn encode(&self, out: &mut Vec<u8>) {
        self.x.encode(out);
        self.y.encode(out);
    }
}

impl Decode for Range {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let x = RecordIdentifier::decode(r)?;
        let y = RecordIdentifier::decode(r)?;
        Ok(Self { x, y })
    }
}

/// Whether the sender of an entry holds its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ContentStatus {
    /// The content is fully available.
    Complete,
    /// Part of the content is available.
    Incomplete,
    /// The content is not available.
    Missing,
}

impl Encode for ContentStatus {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(match self {
            ContentStatus::Complete => 0,
            ContentStatus::Incomplete => 1,
            ContentStatus::Missing => 2,
        });
    }
}

impl Decode for ContentStatus {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u32()? {
            0 => Ok(ContentStatus::Complete),
            1 => Ok(ContentStatus::Incomplete),
            2 => Ok(ContentStatus::Missing),
            tag => Err(DecodeError::UnknownVariant {
                ty: "ContentStatus",
                tag,
            }),
        }
    }
}

/// A range summarised by its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeFingerprint {
    /// The range.
    pub range: Range,
    /// XOR of the fingerprints of the sender's entries in it.
    pub fingerprint: Fingerprint,
}

impl Encode for RangeFingerprint {
    fn encode(&self, out: &mut Vec<u8>) {
        self.range.encode(out);
        self.fingerprint.encode(out);
    }
}

impl Decode for RangeFingerprint {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let range = Range::decode(r)?;
        let fingerprint = Fingerprint::decode(r)?;
        Ok(Self { range, fingerprint })
    }
}

/// A range with the sender's entries in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeItem {
    /// The range.
    pub range: Range,
    /// The sender's entries in the range, each with the sender's content status.
    pub values: Vec<(SignedEntry, ContentStatus)>,
    /// `false` asks the receiver to answer with its own entries of the range that the sender
    /// lacks; `true` means the sender already has the receiver's side.
    pub have_local: bool,
}

impl Encode for RangeItem {
    fn encode(&self, out: &mut Vec<u8>) {
        self.range.encode(out);
        put_u64(out, self.values.len() as u64);
        for (entry, status) in &self.values {
            entry.encode(out);
            status.encode(out);
        }
        out.push(u8::from(self.have_local));
    }
}

impl Decode for RangeItem {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let range = Range::decode(r)?;
        let n = r.len_prefix(MIN_SIGNED_ENTRY_LEN + 1)?;
        let mut values = Vec::with_capacity(n);
        for _ in 0..n {
            let entry = SignedEntry::decode(r)?;
            let status = ContentStatus::decode(r)?;
            values.push((entry, status));
        }
        let have_local = r.bool()?;
        Ok(Self {
            range,
            values,
            have_local,
        })
    }
}

/// One part of a reconciliation message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessagePart {
    /// A fingerprinted range (tag 0).
    RangeFingerprint(RangeFingerprint),
    /// A range with entries (tag 1).
    RangeItem(RangeItem),
}

impl MessagePart {
    /// The range this part is about.
    pub fn range(&self) -> &Range {
        match self {
            MessagePart::RangeFingerprint(p) => &p.range,
            MessagePart::RangeItem(p) => &p.range,
        }
    }
}

impl Encode for MessagePart {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            MessagePart::RangeFingerprint(p) => {
                out.push(0);
                p.encode(out);
            }
            MessagePart::RangeItem(p) => {
                out.push(1);
                p.encode(out);
            }
        }
    }
}

impl Decode for MessagePart {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u32()? {
            0 => Ok(MessagePart::RangeFingerprint(RangeFingerprint::decode(r)?)),
            1 => Ok(MessagePart::RangeItem(RangeItem::decode(r)?)),
            tag => Err(DecodeError::UnknownVariant {
                ty: "MessagePart",
                tag,
            }),
        }
    }
}

/// A reconciliation message: a list of parts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// The parts, in order.
    pub parts: Vec<MessagePart>,
}

/// Smallest encoding of a [`MessagePart`]: tag, two 65-byte bounds, a 32-byte fingerprint.
const MIN_PART_LEN: usize = 1 + 65 + 65 + 1 + 1;

impl Message {
    /// A message of these parts.
    pub fn new(parts: Vec<MessagePart>) -> Self {
        Self { parts }
    }

    /// Total number of entries carried.
    pub fn value_count(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match p {
                MessagePart::RangeItem(item) => item.values.len(),
                MessagePart::RangeFingerprint(_) => 0,
            })
            .sum()
    }

    /// The entries carried, in order.
    pub fn values(&self) -> impl Iterator<Item = &(SignedEntry, ContentStatus)> {
        self.parts.iter().flat_map(|p| match p {
            MessagePart::RangeItem(item) => item.values.as_slice(),
            MessagePart::RangeFingerprint(_) => &[],
        })
    }
}

impl Encode for Message {
    fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, self.parts.len() as u64);
        for part in &self.parts {
            part.encode(out);
        }
    }
}

impl Decode for Message {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.len_prefix(MIN_PART_LEN)?;
        let mut parts = Vec::with_capacity(n);
        for _ in 0..n {
            parts.push(MessagePart::decode(r)?);
        }
        Ok(Self { parts })
    }
}
