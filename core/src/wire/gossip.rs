//! What travels over iroh-gossip: the [`Op`] payload and the [`AuthorHeads`] summary.
//!
//! The gossip topic of a document is its namespace id; each gossip message is one encoded
//! [`Op`] with no further framing.

use std::{collections::BTreeMap, num::NonZeroU64};

use crate::{
    entry::SignedEntry,
    hash::Hash,
    keys::{AuthorId, NamespaceId},
    wire::codec::{put_bytes, put_u64, varint_len, Decode, DecodeError, Encode, Reader},
};

/// iroh-gossip's default maximum message size, which iroh-docs also uses as the heads limit.
pub const DEFAULT_HEADS_SIZE_LIMIT: usize = 4096;

/// A gossip message of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A new local entry, broadcast to the swarm (tag 0).
    Put(SignedEntry),
    /// The sender now holds this content (tag 1).
    ContentReady(Hash),
    /// The sender finished a sync that brought it news (tag 2).
    SyncReport(SyncReport),
}

/// Heads after a sync, sent to neighbours so they can tell whether they miss anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// The document.
    pub namespace: NamespaceId,
    /// Encoded [`AuthorHeads`] (decode with [`AuthorHeads::decode`]).
    pub heads: Vec<u8>,
}

impl Encode for Op {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Op::Put(entry) => {
                out.push(0);
                entry.encode(out);
            }
            Op::ContentReady(hash) => {
                out.push(1);
                hash.encode(out);
            }
            Op::SyncReport(report) => {
                out.push(2);
                report.namespace.encode(out);
                put_bytes(out, &report.heads);
            }
        }
    }
}

impl Decode for Op {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u32()? {
            0 => Ok(Op::Put(SignedEntry::decode(r)?)),
            1 => Ok(Op::ContentReady(Hash::decode(r)?)),
            2 => {
                let namespace = NamespaceId::decode(r)?;
                let heads = r.bytes()?.to_vec();
                Ok(Op::SyncReport(SyncReport { namespace, heads }))
            }
            tag => Err(DecodeError::UnknownVariant { ty: "Op", tag }),
        }
    }
}

/// The newest timestamp seen per author.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthorHeads {
    heads: BTreeMap<AuthorId, u64>,
}

impl AuthorHeads {
    /// Records `timestamp` for `author`, keeping the maximum.
    pub fn insert(&mut self, author: AuthorId, timestamp: u64) {
        self.heads
            .entry(author)
            .and_modify(|t| *t = (*t).max(timestamp))
            .or_insert(timestamp);
    }

    /// Number of authors.
    pub fn len(&self) -> usize {
        self.heads.len()
    }

    /// Whether no author is known.
    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }

    /// The newest timestamp of `author`.
    pub fn get(&self, author: &AuthorId) -> Option<u64> {
        self.heads.get(author).copied()
    }

    /// Authors and their timestamps, by author.
    pub fn iter(&self) -> impl Iterator<Item = (&AuthorId, &u64)> {
        self.heads.iter()
    }

    /// How many authors `self` knows something newer of than `other`; `None` if none.
    pub fn has_news_for(&self, other: &Self) -> Option<NonZeroU64> {
        let news = self
            .heads
            .iter()
            .filter(|(author, ts)| other.get(author).is_none_or(|theirs| **ts > theirs))
            .count();
        NonZeroU64::new(news as u64)
    }

    /// Merges `other` in, keeping the maximum per author.
    pub fn merge(&mut self, other: &Self) {
        for (author, ts) in other.iter() {
            self.insert(*author, *ts);
        }
    }

    /// Encodes as `Vec<(timestamp, author)>`, newest first, dropping the oldest authors once
    /// the encoding would exceed `size_limit` bytes (it is never shorter than the one byte of
    /// an empty list).
    ///
    /// iroh-docs builds this list from a map keyed by timestamp, so two authors with the same
    /// timestamp collapse into one and the other's news is lost; Sheaf keeps both (ties are
    /// ordered by author id, descending). With distinct timestamps the bytes are identical.
    pub fn encode(&self, size_limit: Option<usize>) -> Vec<u8> {
        let mut items: Vec<(u64, AuthorId)> = self.heads.iter().map(|(a, t)| (*t, *a)).collect();
        items.sort_unstable_by(|a, b| b.cmp(a));
        let limit = size_limit.unwrap_or(usize::MAX);
        let mut body_len = 0usize;
        let mut count = 0usize;
        for (ts, _) in &items {
            let next = body_len + varint_len(*ts) + 32;
            if varint_len(count as u64 + 1) + next > limit {
                break;
            }
            body_len = next;
            count += 1;
        }
        let mut out = Vec::with_capacity(varint_len(count as u64) + body_len);
        put_u64(&mut out, count as u64);
        for (ts, author) in &items[..count] {
            put_u64(&mut out, *ts);
            author.encode(&mut out);
        }
        out
    }

    /// Decodes [`AuthorHeads::encode`]'s output, merging duplicate authors by maximum.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let n = r.len_prefix(33)?;
        let mut heads = AuthorHeads::default();
        for _ in 0..n {
            let ts = r.u64()?;
            let author = AuthorId::decode(&mut r)?;
            heads.insert(author, ts);
        }
        r.finish()?;
        Ok(heads)
    }
}

impl FromIterator<(AuthorId, u64)> for AuthorHeads {
    fn from_iter<T: IntoIterator<Item = (AuthorId, u64)>>(iter: T) -> Self {
        let mut heads = AuthorHeads::default();
        for (author, ts) in iter {
            heads.insert(author, ts);
        }
        heads
    }
}
