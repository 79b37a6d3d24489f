//! Choosing the entries that answer one range, reading no more of the store than that.
//!
//! **Why.** A peer chooses how much of our store its message makes us read. A 1 MiB message
//! holds some 7,900 parts, and each may name the whole namespace: a fingerprint we answer
//! with entries (the anchor rule, when it is the empty fingerprint), or entries asking for
//! ours (`have_local == false`). Loading each part's whole range before the byte budget of the
//! reply cuts it costs parts × n reads on the single store thread, for a reply that carries
//! at most the budget. Here the work of a part is bounded by what it sends.
//!
//! **How.** A range is read in *range order* (from the first entry at or after its `x`,
//! wrapping — [`Indexed::range_entries_in_order`]), in chunks of [`FIRST_CHUNK`] entries that
//! double up to [`MAX_CHUNK`], but never more than the budget left can still carry (every
//! value costs at least [`MIN_VALUE_LEN`] bytes), and reading stops where the budget is spent.
//! The choice is the one the eager code made on the whole range: take entries in range order
//! while they fit; the first is always taken ("at least one entry is always sent"), and so
//! is every entry up to the peer's last value in the range (`keep_through`, see [`Diff`]);
//! the first entry not taken is the *cut*: what was taken goes as a `RangeItem` over
//! `[x, cut)`, the rest of the range as a fingerprint over `[cut, y)`. The replies are the
//! eager code's, byte for byte, whatever the budget (the `lazy_answers_equal_eager_answers`
//! property keeps the eager code as its oracle).
//!
//! What is read:
//! * entries that cannot fit whatever their size are not read: the cut is then the pivot at
//!   that offset, from the index, so a part answered after the budget is spent reads only
//!   the one entry it sends;
//! * answering entries (`have_local == false`), the entry that shows where to cut, and our
//!   entries that the peer's values dominate (read to compare, not sent: at most one per
//!   value);
//! * up to `keep_through` every entry is taken, fitting or not; chunks there double from
//!   what was read, so at most twice those entries are read.
//!
//! A peer can still make a reply carry many entries, by `keep_through` or by many parts each
//! sending its one entry: reads are counted per message against
//! [`SyncConfig::max_reads_per_message`](super::SyncConfig::max_reads_per_message)
//! ([`Reads`]), and the message fails with [`SyncLimit::TooManyReads`] past it.

use std::collections::BTreeMap;

use super::{ProcessError, Range, SyncLimit};
use crate::{
    entry::{Record, RecordIdentifier, SignedEntry},
    keys::NamespaceId,
    store::{Backend, Indexed, StoreError},
    wire::codec::varint_len,
};

/// Entries in the first chunk read from a range.
pub(super) const FIRST_CHUNK: usize = 64;

/// Largest chunk read from a range at once (chunks double from [`FIRST_CHUNK`]).
pub(super) const MAX_CHUNK: usize = 4096;

/// Smallest encoded size of one value in a `RangeItem` ([`value_len`] of an entry with an
/// empty key, a one-byte length and a one-byte timestamp).
pub(super) const MIN_VALUE_LEN: usize = 128 + 1 + 64 + 1 + 32 + 1 + 1;

/// Encoded size of one value in a `RangeItem`: the signed entry and its content status.
pub(super) fn value_len(e: &SignedEntry) -> usize {
    let id = e.id().as_bytes().len();
    let len = 128
        + varint_len(id as u64)
        + id
        + varint_len(e.content_len())
        + 32
        + varint_len(e.timestamp())
        + 1;
    debug_assert!(len >= MIN_VALUE_LEN);
    len
}

/// Entries read from the store while answering one message, and the bound on them.
#[derive(Debug)]
pub(super) struct Reads {
    done: usize,
    max: usize,
}

impl Reads {
    /// No reads yet, at most `max`.
    pub(super) fn new(max: usize) -> Self {
        Self { done: 0, max }
    }

    /// How many of `want` (at least one) further reads are allowed; none left is an error.
    fn grant(&self, want: usize) -> Result<usize, SyncLimit> {
        match self.max.saturating_sub(self.done) {
            0 => Err(SyncLimit::TooManyReads { max: self.max }),
            left => Ok(want.clamp(1, left)),
        }
    }
}

/// Our entries of one range, read in range order in growing chunks.
struct RangeReader<'r> {
    ns: NamespaceId,
    range: &'r Range,
    /// Entries in the range.
    len: usize,
    /// Entries read so far (the range-order offset of the next read).
    read: usize,
    /// Size of the next chunk.
    chunk: usize,
    /// Read, not yet yielded.
    buf: std::vec::IntoIter<SignedEntry>,
}

impl<'r> RangeReader<'r> {
    fn new<B: Backend>(
        store: &mut Indexed<B>,
        ns: NamespaceId,
        range: &'r Range,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            ns,
            range,
            len: store.range_len(ns, range)?,
            read: 0,
            chunk: FIRST_CHUNK,
            buf: Vec::new().into_iter(),
        })
    }

    /// Entries yielded so far: the range-order offset of the next one.
    fn yielded(&self) -> usize {
        self.read - self.buf.len()
    }

    /// The next entry in range order. When a chunk must be read, it holds at most `want`
    /// entries (at least one): the caller's bound on how many more it can use.
    fn next<B: Backend>(
        &mut self,
        store: &mut Indexed<B>,
        reads: &mut Reads,
        want: usize,
    ) -> Result<Option<SignedEntry>, ProcessError> {
        if let Some(e) = self.buf.next() {
            return Ok(Some(e));
        }
        let left = self.len - self.read;
        if left == 0 {
            return Ok(None);
        }
        let n = reads.grant(self.chunk.min(want).min(left))?;
        let rows = store.range_entries_in_order(self.ns, self.range, self.read, n)?;
        if rows.len() != n {
            // The index counted entries that it cannot list: do not loop on it.
            return Err(StoreError::Corrupt("range shorter than its index count".into()).into());
        }
        reads.done += n;
        self.read += n;
        self.chunk = (self.chunk * 2).min(MAX_CHUNK);
        self.buf = rows.into_iter();
        Ok(self.buf.next())
    }
}

/// The peer's values of a `RangeItem`: the newest record per identifier.
pub(super) type Theirs<'a> = BTreeMap<&'a RecordIdentifier, &'a Record>;

/// Answering entries the peer sent with `have_local == false` (the diff rule).
#[derive(Debug, Clone, Copy)]
pub(super) struct Diff<'a> {
    /// The peer's values: our entries they dominate (same identifier, not newer) are not
    /// sent.
    pub(super) theirs: &'a Theirs<'a>,
    /// The last of the peer's values in range order. The cut never falls before it: the
    /// peer would answer the fingerprint after the cut by sending those values again.
    pub(super) keep_through: Option<&'a RecordIdentifier>,
}

/// The entries chosen to answer one range.
#[derive(Debug)]
pub(super) struct Selection {
    /// The entries to send, in range order.
    pub(super) taken: Vec<SignedEntry>,
    /// Their encoded size ([`value_len`]).
    pub(super) bytes: usize,
    /// Where the range is cut (the first entry of the range to send that was not taken),
    /// if it is.
    pub(super) cut: Option<RecordIdentifier>,
}

/// Position of `id` in the range order of a range starting at `x`.
fn order<'a>(x: &RecordIdentifier, id: &'a RecordIdentifier) -> (bool, &'a RecordIdentifier) {
    (id < x, id)
}

/// Chooses our entries of `range` to send under `budget` bytes: all of them, or (with
/// `diff`) those the peer's values do not dominate, cut where the budget is spent. See the
/// module docs for the rule and what is read.
pub(super) fn select<B: Backend>(
    store: &mut Indexed<B>,
    ns: NamespaceId,
    range: &Range,
    budget: usize,
    reads: &mut Reads,
    diff: Option<Diff<'_>>,
) -> Result<Selection, ProcessError> {
    let x = range.x();
    let must = diff.and_then(|d| d.keep_through).map(|id| order(x, id));
    let mut reader = RangeReader::new(store, ns, range)?;
    let mut taken = Vec::new();
    let mut used = 0usize;
    // Our entries the peer's values dominate, skipped so far (at most one per value).
    let mut dominated = 0usize;
    // Whether an entry at or after `keep_through` has been read.
    let mut kept_through = must.is_none();
    let cut = loop {
        // How many more entries can still be taken: the first one whatever its size, then
        // as many as the budget left carries at the smallest value size.
        let fits = budget.saturating_sub(used) / MIN_VALUE_LEN + usize::from(taken.is_empty());
        let want = match diff {
            None if fits == 0 => {
                // Nothing more fits whatever its size: cut at the next entry without reading
                // it.
                let offset = reader.yielded();
                if offset == reader.len {
                    break None;
                }
                let pivot = store
                    .range_pivot(ns, range, offset)?
                    .ok_or_else(|| StoreError::Corrupt("pivot outside a non-empty range".into()))?;
                break Some(pivot);
            }
            None => fits,
            Some(d) => {
                // The entries that may fit, the one that shows where to cut, and the dominated
                // ones that may come before them.
                let more = fits
                    .saturating_add(1)
                    .saturating_add(d.theirs.len().saturating_sub(dominated));
                if kept_through {
                    more
                } else {
                    // Up to `keep_through` every entry is taken, fits or not: read as many
                    // again as so far, so that at most twice those are read.
                    more.max(reader.read)
                }
            }
        };
        let Some(e) = reader.next(store, reads, want)? else {
            break None;
        };
        let needed = must.is_some_and(|m| order(x, e.id()) <= m);
        kept_through |= must.is_some_and(|m| order(x, e.id()) >= m);
        if let Some(d) = diff {
            if d.theirs.get(e.id()).is_some_and(|r| *r >= e.record()) {
                dominated += 1;
                continue;
            }
        }
        let len = value_len(&e);
        if !taken.is_empty() && used.saturating_add(len) > budget && !needed {
            break Some(e.id().clone());
        }
        used += len;
        taken.push(e);
    };
    Ok(Selection {
        taken,
        bytes: used,
        cut,
    })
}
