//! Range reconciliation turns of a document session (`docs/sync-v2.md` §6.4).
//!
//! A turn is the parts of one or more `Ranges` messages up to the part bounded by `End`,
//! preceded by the `Entries` and `Wants` it sends. Each part covers the keys from the previous
//! part's bound (or the document's start) up to its own. This side answers every part of the
//! peer's turn: equal fingerprints are settled (`Skip`); a differing range is listed
//! (`Hashes`) when this side holds at most the leaf size in it, sent whole when the peer holds
//! nothing there, and otherwise split into `fanout` sub-ranges of about equal count, each
//! fingerprinted or, if small enough, listed at once (`Split`: small enough depends on how
//! many of the turn's ranges differ); a listed range is settled by sending the entries the
//! list lacks and asking (`Wants`) for listed items this side lacks. A turn whose parts are
//! all `Skip` ends the range phase.
//!
//! Fingerprints travel as keyed 16-byte digests (`RangeDigest`): a received one is compared
//! with the digest of this side's fingerprint under the connection's range key.
//!
//! A split costs O(log n) per sub-range: its bounds come from the keys around each pivot rank,
//! its fingerprint from the index; only sub-ranges small enough to be listed are read. Bounds
//! are shortened to the shortest prefix of the upper neighbour's key that still sorts above
//! the lower neighbour.

use std::collections::{BTreeMap, BTreeSet};

use super::{store, Ctx, DocError, DocStore, KeyRange};
use crate::v2::{
    codec::{Bound, Part, PartMode},
    fingerprint::{Fingerprint, ItemHash, RangeDigest},
    riblt::Item,
};

/// Most bytes of bounds and listed items one received turn may hold (its parts are kept until
/// the turn is complete).
pub const MAX_TURN_BYTES: usize = 8 << 20;

/// What one received part costs besides its bound key and listed items (its range and mode).
const PART_BYTES: usize = 64;

/// What a received `Ranges` message left the session with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Turn {
    /// The peer's turn continues in a later `Ranges` message.
    Partial,
    /// This side answered with a turn of its own; the peer's is next.
    Answered,
    /// The range phase is over (the peer's turn or this side's answer settled everything).
    Ended,
}

/// A reply part: upper bound (`None` = `End`) and mode.
type ReplyPart = (Option<Vec<u8>>, PartMode);

/// Range-phase state.
#[derive(Debug, Default)]
pub(super) struct Turns {
    received: u32,
    /// Parts of the peer's turn received so far.
    pending: Vec<(KeyRange, PartMode)>,
    /// Bytes of bounds and listed items in `pending`.
    pending_bytes: usize,
    /// Items this side listed in its last turn, with their flat keys (the peer's wants).
    revealed: BTreeMap<Item, Vec<u8>>,
}

impl Turns {
    /// Complete turns received.
    pub(super) fn received(&self) -> u32 {
        self.received
    }

    /// This side's first turn: the whole document, known to differ from the peer's `theirs`
    /// (`None`: the peer's fingerprint is unknown, only that it differs).
    pub(super) fn first_turn<S: DocStore + ?Sized>(
        &mut self,
        ctx: &mut Ctx<'_, S>,
        theirs: Option<Fingerprint>,
    ) -> Result<Turn, DocError> {
        let theirs = theirs.map(|fp| PartMode::Fingerprint(fp.digest(ctx.range_key)));
        self.answer(ctx, vec![(KeyRange::all(), theirs)])
    }

    /// Answers the peer's wants from the items this side listed.
    pub(super) fn wants<S: DocStore + ?Sized>(
        &mut self,
        ctx: &mut Ctx<'_, S>,
        hashes: &[Item],
    ) -> Result<(), DocError> {
        ctx.answer_wants(hashes, &self.revealed)
    }

    /// Takes the parts of a received `Ranges` message; answers when the turn is complete.
    pub(super) fn receive<S: DocStore + ?Sized>(
        &mut self,
        ctx: &mut Ctx<'_, S>,
        parts: Vec<Part>,
    ) -> Result<Turn, DocError> {
        let mut ended = false;
        for p in parts {
            if ended {
                return Err(DocError::Protocol("range parts after End"));
            }
            if self.pending.len() >= ctx.config.max_parts {
                return Err(DocError::Limit("range parts"));
            }
            let lower = self.pending.last().and_then(|(r, _)| r.upper.clone());
            let upper = match p.upper {
                Bound::End => {
                    ended = true;
                    None
                }
                Bound::Key { author, key } => {
                    let a = ctx
                        .dict
                        .resolve(author)
                        .ok_or(DocError::Protocol("undefined author index"))?;
                    Some([a.as_bytes().as_slice(), &key].concat())
                }
            };
            let range = KeyRange { lower, upper };
            if range.is_empty() {
                return Err(DocError::Protocol("range parts not ascending"));
            }
            self.pending_bytes += PART_BYTES
                + range.upper.as_ref().map_or(0, Vec::len)
                + match &p.mode {
                    PartMode::Hashes(items) => 32 * items.len(),
                    _ => 0,
                };
            if self.pending_bytes > MAX_TURN_BYTES {
                return Err(DocError::Limit("bytes of one turn"));
            }
            self.pending.push((range, p.mode));
        }
        if !ended {
            return Ok(Turn::Partial);
        }
        self.received += 1;
        if self.received > ctx.config.max_turns {
            return Err(DocError::Limit("turns"));
        }
        let parts = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        if parts.iter().all(|(_, m)| *m == PartMode::Skip) {
            return Ok(Turn::Ended);
        }
        self.answer(
            ctx,
            parts
                .into_iter()
                .map(|(r, m)| (r, Some(m)))
                .collect::<Vec<_>>(),
        )
    }

    /// Answers a complete turn (a `None` mode: a range whose peer fingerprint is unknown).
    fn answer<S: DocStore + ?Sized>(
        &mut self,
        ctx: &mut Ctx<'_, S>,
        parts: Vec<(KeyRange, Option<PartMode>)>,
    ) -> Result<Turn, DocError> {
        let mut reply: Vec<ReplyPart> = Vec::new();
        let mut revealed = BTreeMap::new();
        let mut wants = Vec::new();
        let mut budget = ctx.config.max_entries_per_turn;
        // Every incoming part takes at least one reply part, and a reply may hold at most
        // `max_parts`: a split adds `fanout - 1` more when there is room, else the range goes
        // back whole with this side's fingerprint and the peer splits it.
        // One more is kept for the cut of a range whose entries outgrow the turn's entry budget.
        let mut room = ctx.config.max_parts.saturating_sub(parts.len() + 1);
        // This side's fingerprint of every compared range first: how many of them differ
        // decides whether sub-ranges are listed at once (see `Split`).
        let is_compared = |m: &Option<PartMode>| matches!(m, Some(PartMode::Fingerprint(_)) | None);
        let compared_ranges: Vec<KeyRange> = parts
            .iter()
            .filter(|(_, m)| is_compared(m))
            .map(|(r, _)| r.clone())
            .collect();
        let compared = compared_ranges.len();
        let mut owns = ctx.store.fingerprints(&compared_ranges)?.into_iter();
        let mut parts: Vec<(KeyRange, Option<PartMode>, Option<Fingerprint>)> = parts
            .into_iter()
            .map(|(range, mode)| {
                let own = if is_compared(&mode) {
                    owns.next()
                } else {
                    None
                };
                (range, mode, own)
            })
            .collect();
        let mut differ = 0usize;
        for (_, mode, own) in &mut parts {
            if let (Some(PartMode::Fingerprint(theirs)), Some(fp)) = (&*mode, &*own) {
                if *theirs == fp.digest(ctx.range_key) {
                    *mode = Some(PartMode::Skip);
                    *own = None;
                    continue;
                }
            }
            differ += usize::from(own.is_some());
        }
        let split = Split {
            list_up_to: if 2 * differ >= compared {
                ctx.config.leaf
            } else {
                ctx.config.eager_leaf.min(ctx.config.leaf)
            },
        };
        for (range, mode, own) in parts {
            match (mode, own) {
                (Some(PartMode::Hashes(items)), _) => {
                    listed(ctx, range, items, &mut reply, &mut wants, &mut budget)?
                }
                (Some(PartMode::Fingerprint(theirs)), Some(own)) => differing(
                    ctx,
                    range,
                    own,
                    Some(theirs),
                    split,
                    (&mut reply, &mut revealed),
                    &mut budget,
                    &mut room,
                )?,
                (None, Some(own)) => differing(
                    ctx,
                    range,
                    own,
                    None,
                    split,
                    (&mut reply, &mut revealed),
                    &mut budget,
                    &mut room,
                )?,
                _ => reply.push((range.upper, PartMode::Skip)),
            }
        }
        if wants.len() > ctx.config.max_wants {
            return Err(DocError::Limit("wants"));
        }
        ctx.stats.wants_sent += wants.len() as u64;
        ctx.ob.wants(wants);
        self.revealed = revealed;
        let ended = reply.iter().all(|(_, m)| *m == PartMode::Skip);
        let mut parts = Vec::with_capacity(reply.len());
        for (upper, mode) in reply {
            let upper = match upper {
                None => Bound::End,
                Some(flat) => {
                    let mut a = [0u8; 32];
                    a.copy_from_slice(&flat[..32]);
                    Bound::Key {
                        author: ctx.dict.index(&crate::keys::AuthorId::from_bytes(a))?,
                        key: flat[32..].to_vec(),
                    }
                }
            };
            parts.push(Part { upper, mode });
        }
        ctx.ob.parts(parts);
        Ok(if ended { Turn::Ended } else { Turn::Answered })
    }
}

/// How a turn lists the sub-ranges of its splits.
#[derive(Debug, Clone, Copy)]
struct Split {
    /// Sub-ranges of at most this many entries are listed at once instead of fingerprinted.
    ///
    /// Listing saves the round trip a differing sub-range's fingerprint costs, and wastes the
    /// lists of the sub-ranges that turn out equal. So it is `leaf` when at least half the
    /// ranges this turn compared differ (differences are dense: most sub-ranges will differ
    /// too), else [`DocConfig::eager_leaf`]. W8's shape (1,000,000 entries, 100 spread
    /// differences) splits ranges of ~244 entries of which 1 in 13 differs into sub-ranges
    /// of ~15: listing all of them sent 890 kB, fingerprinting them and listing the ~100
    /// that differ 170 kB in all, one round trip more.
    list_up_to: u64,
}

/// A range whose fingerprints differ (`own`: this side's; `theirs`: the peer's digest, `None`
/// when only known to differ).
#[allow(clippy::too_many_arguments)]
fn differing<S: DocStore + ?Sized>(
    ctx: &mut Ctx<'_, S>,
    range: KeyRange,
    own: Fingerprint,
    theirs: Option<RangeDigest>,
    split: Split,
    (reply, revealed): (&mut Vec<ReplyPart>, &mut BTreeMap<Item, Vec<u8>>),
    budget: &mut usize,
    room: &mut usize,
) -> Result<(), DocError> {
    if theirs.is_some_and(|t| t.count == 0) {
        return send_range(ctx, range, &BTreeSet::new(), reply, budget).map(|_| ());
    }
    let n = own.count();
    let fanout = ctx.config.fanout.max(2) as u64;
    // A range of one entry cannot be split: it is listed whatever the leaf size.
    let leaf = ctx.config.leaf.max(1);
    let ranks: Vec<u64> = if n <= leaf {
        Vec::new()
    } else if *room < fanout as usize - 1 {
        // No room to split in this turn: the peer compares and splits it in its own.
        reply.push((
            range.upper,
            PartMode::Fingerprint(own.digest(ctx.range_key)),
        ));
        return Ok(());
    } else {
        let mut r: Vec<u64> = (1..fanout).map(|i| n * i / fanout).collect();
        r.dedup();
        r.retain(|&x| x > 0 && x < n);
        *room = room.saturating_sub(r.len());
        r
    };
    // Sub-range bounds from the keys around each pivot rank (O(log n) each), then the
    // sub-ranges' fingerprints from the index, at once; only small sub-ranges are read, to
    // list them.
    let mut uppers: Vec<Option<Vec<u8>>> = Vec::with_capacity(ranks.len() + 1);
    for r in ranks {
        let (Some(prev), Some(next)) = (
            ctx.store.key_at(&range, r - 1)?,
            ctx.store.key_at(&range, r)?,
        ) else {
            break;
        };
        uppers.push(Some(separator(&prev, &next)));
    }
    uppers.push(range.upper.clone());
    let mut lower = range.lower.clone();
    let subs: Vec<KeyRange> = uppers
        .into_iter()
        .map(|upper| KeyRange {
            lower: std::mem::replace(&mut lower, upper.clone()),
            upper,
        })
        .collect();
    let (fps, list_up_to) = if n <= leaf {
        (vec![own], leaf)
    } else {
        (ctx.store.fingerprints(&subs)?, split.list_up_to.max(1))
    };
    for (sub, fp) in subs.into_iter().zip(fps) {
        if fp.count() <= list_up_to {
            let mut list = Vec::new();
            store::scan(ctx.store, &sub, |e| {
                let item = ItemHash::of_entry(e.entry()).0;
                list.push(item);
                revealed.insert(item, store::flat_key(&e));
                true
            })?;
            reply.push((sub.upper, PartMode::Hashes(list)));
        } else {
            reply.push((sub.upper, PartMode::Fingerprint(fp.digest(ctx.range_key))));
        }
    }
    Ok(())
}

/// A range the peer listed: send what the list lacks, want what this side lacks.
fn listed<S: DocStore + ?Sized>(
    ctx: &mut Ctx<'_, S>,
    range: KeyRange,
    items: Vec<Item>,
    reply: &mut Vec<ReplyPart>,
    wants: &mut Vec<Item>,
    budget: &mut usize,
) -> Result<(), DocError> {
    let theirs: BTreeSet<Item> = items.into_iter().collect();
    let found = send_range(ctx, range, &theirs, reply, budget)?;
    wants.extend(theirs.difference(&found));
    Ok(())
}

/// Sends this side's entries of `range` whose items are not in `skip`, within `budget`;
/// returns the items of `skip` found. Past the budget, the rest of the range goes back as a
/// fingerprint (settled in a later turn); otherwise the range is settled.
fn send_range<S: DocStore + ?Sized>(
    ctx: &mut Ctx<'_, S>,
    range: KeyRange,
    skip: &BTreeSet<Item>,
    reply: &mut Vec<ReplyPart>,
    budget: &mut usize,
) -> Result<BTreeSet<Item>, DocError> {
    let mut found = BTreeSet::new();
    let mut to_send = Vec::new();
    let mut cut: Option<Vec<u8>> = None;
    let mut rest = Fingerprint::default();
    let mut left = *budget;
    store::scan(ctx.store, &range, |e| {
        let item = ItemHash::of_entry(e.entry());
        if cut.is_none() && !skip.contains(&item.0) {
            if left == 0 {
                cut = Some(store::flat_key(&e));
            } else {
                left -= 1;
                to_send.push(e);
                return true;
            }
        }
        if cut.is_some() {
            rest.add(&item);
        }
        if skip.contains(&item.0) {
            found.insert(item.0);
        }
        true
    })?;
    *budget = left;
    ctx.send(&to_send)?;
    match cut {
        None => reply.push((range.upper, PartMode::Skip)),
        Some(k) => {
            // Nothing sent below the cut when it is the range's first key.
            if range.lower.as_ref() != Some(&k) {
                reply.push((Some(k), PartMode::Skip));
            }
            reply.push((
                range.upper,
                PartMode::Fingerprint(rest.digest(ctx.range_key)),
            ));
        }
    }
    Ok(found)
}

/// The shortest prefix of `next` (at least the 32-byte author) that sorts above `prev`.
fn separator(prev: &[u8], next: &[u8]) -> Vec<u8> {
    (32.min(next.len())..=next.len())
        .map(|len| &next[..len])
        .find(|p| *p > prev)
        .unwrap_or(next)
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::separator;

    #[test]
    fn separators_are_the_shortest_prefix_above_the_lower_neighbour() {
        let a = [[1u8; 32].as_slice(), b"apple"].concat();
        let b = [[1u8; 32].as_slice(), b"apricot"].concat();
        assert_eq!(separator(&a, &b), [[1u8; 32].as_slice(), b"apr"].concat());
        let c = [[2u8; 32].as_slice(), b"zzz"].concat();
        assert_eq!(separator(&b, &c), vec![2u8; 32]);
        let d = [[1u8; 32].as_slice(), b"app"].concat();
        assert_eq!(separator(&d, &a), a[..36].to_vec());
    }
}
