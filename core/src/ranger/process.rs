//! Processing reconciliation messages against a store.
//!
//! The rules that must match iroh-docs exactly, or two peers never converge:
//!
//! * range semantics and key order (see the module docs of [`crate::ranger`]);
//! * the entry fingerprint and its XOR combination;
//! * the **anchor rule**: a mismatched range is answered with our entries when we hold at most
//!   one entry there, or when the peer's fingerprint is the empty one;
//! * the **diff rule**: entries received with `have_local == false` are answered with our
//!   entries of that range which the peer's values do not dominate (same key, not newer).
//!
//! Everything else is local policy ([`SyncConfig`]): into how many parts a mismatched range is
//! split, below which size a part is sent as entries instead of a fingerprint, and how many
//! bytes of entries one message may carry. With `split_factor = 2`, `max_set_size = 1` and no
//! byte budget Sheaf sends exactly the messages iroh-docs sends.
//!
//! Fingerprints, counts and pivots come from the store's O(log n) index. Entries are read
//! lazily, in range order and only as far as the byte budget of the reply reaches (see
//! `budget`): the work of one part is bounded by what it sends, not by the size of its range.
//! A peer's message is bounded as a whole too: by its number of parts
//! ([`SyncConfig::max_parts_per_message`]) and by the entries answering it reads
//! ([`SyncConfig::max_reads_per_message`]); over either, processing fails with
//! [`ProcessError::Limit`] and the session ends.

use super::{
    budget::{self, Diff, Reads, Selection, Theirs},
    ContentStatus, Fingerprint, Message, MessagePart, ProcessError, Range, RangeFingerprint,
    RangeItem, SyncLimit,
};
use crate::{
    entry::{RecordIdentifier, SignedEntry},
    hash::Hash,
    keys::NamespaceId,
    store::{holds_same_or_newer, put_prefix_aware, Backend, Indexed, PutOutcome, StoreError},
};

/// Local reconciliation policy. See the module docs for what it may and may not change.
///
/// The default splits 8 ways and sends parts of one entry as entries. A sweep of other
/// policies (`sheaf-bench reconcile` with `SHEAF_BENCH_POLICIES`, `bench/RESULTS.md`, "W8
/// extended"): 16 ways saves at most one round trip for 1.2–1.9× the bytes (none at 100,000
/// entries), 32 ways at most two for 1.7–3.1×, item lists of 4 triple the bytes at 100
/// differences; over a 100 ms link (W10) the default already needs 4–5 round trips against
/// iroh-docs' ~10, and every extra kilobyte costs QUIC send-window round trips of its own, so
/// the default stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncConfig {
    /// Into how many parts a mismatched range is split (at least 2).
    pub split_factor: usize,
    /// Parts holding at most this many of our entries are sent as entries, not fingerprints.
    pub max_set_size: usize,
    /// Soft limit on the bytes of entries in one outgoing message. When a range's entries do
    /// not fit, the entries that fit are sent and the rest of the range goes as a fingerprint,
    /// to be reconciled in a later round. At least one entry is always sent. Entries are read
    /// only as far as this budget reaches, so it also bounds the store work of a reply.
    pub max_message_bytes: usize,
    /// Most parts an incoming message may hold. A message with more ends the session
    /// ([`SyncLimit::TooManyParts`]) before any of it is processed.
    pub max_parts_per_message: usize,
    /// Most entries read from the store while answering one incoming message. When answering
    /// needs more, processing stops with [`SyncLimit::TooManyReads`] and the session ends
    /// (entries of the parts processed before stay stored; no reply is sent).
    ///
    /// An answer reads the entries it sends (as many as `max_message_bytes` carries, then one
    /// per part), the entry where a range is cut, entries a chunk read ahead of a cut (a chunk
    /// never holds more than the budget left could carry), and, answering entries sent with
    /// `have_local == false`, our entries that those values dominate (at most one per value
    /// received). Fingerprints, counts and pivots read no entries.
    pub max_reads_per_message: usize,
    /// Refuse a message whose parts overlap ([`SyncLimit::OverlappingParts`]) before any of
    /// it is processed. An honest peer's parts are always disjoint (each answers a disjoint
    /// part of the previous message), while overlapping parts let one message ask for the
    /// same entries thousands of times. iroh-docs does not check.
    pub reject_overlapping_parts: bool,
}

impl SyncConfig {
    /// The policy of iroh-docs 0.101 (binary splits, single-entry leaves, no byte budget,
    /// no bound on the parts of a message or on the reads answering it). Without a byte
    /// budget a reply carries every entry it owes, so its reads are unbounded too: this is
    /// the reference policy, for tests and comparisons, not for serving untrusted peers.
    pub const IROH_DOCS: SyncConfig = SyncConfig {
        split_factor: 2,
        max_set_size: 1,
        max_message_bytes: usize::MAX,
        max_parts_per_message: usize::MAX,
        max_reads_per_message: usize::MAX,
        reject_overlapping_parts: false,
    };

    /// Default of [`max_parts_per_message`](Self::max_parts_per_message): 1,048,576 (some
    /// 140 MB of the smallest parts). iroh-docs splits in two, so an honest message holds up
    /// to twice as many parts as there are differences left to find; a part read from the
    /// store costs one O(log n) index query, or entries the byte budget bounds.
    pub const DEFAULT_MAX_PARTS_PER_MESSAGE: usize = 1 << 20;

    /// Default of [`max_reads_per_message`](Self::max_reads_per_message): 4,194,304 entries.
    /// With the default byte budget a reply carries at most some 73,600 entries (16 MiB at
    /// the smallest value size) and then one per part; the rest of the bound is for entries
    /// read to compare with a peer's values (at most one per value) and not sent. It is a
    /// backstop: the part cap and the budget bound honest and hostile messages alike first.
    pub const DEFAULT_MAX_READS_PER_MESSAGE: usize = 4 << 20;
}

impl Default for SyncConfig {
    /// Sheaf's defaults: 8-way splits with single-entry leaves, 16 MiB of entries per
    /// message, and the default per-message caps
    /// ([`DEFAULT_MAX_PARTS_PER_MESSAGE`](Self::DEFAULT_MAX_PARTS_PER_MESSAGE),
    /// [`DEFAULT_MAX_READS_PER_MESSAGE`](Self::DEFAULT_MAX_READS_PER_MESSAGE)).
    ///
    /// Measured in process on 100,000 vs 100,000 entries (`sheaf-bench reconcile`): with 100
    /// differences, 8 messages and 548 KB against iroh-docs' 20 messages and 477 KB; with 1,000
    /// differences, 8 messages and 3.8 MB against 20 and 3.4 MB. Leaves of more than one entry
    /// mostly resend entries the peer already has (16 × 4 leaves sent 1.2 MB for 100
    /// differences), and splits beyond 8 add fingerprints faster than they save rounds. Over a
    /// network every message is a round trip, so 60% fewer of them for 15% more bytes is the
    /// better trade. The byte limit bounds memory on both ends: iroh-docs puts a whole namespace
    /// in one message when the peer is empty.
    fn default() -> Self {
        SyncConfig {
            split_factor: 8,
            max_set_size: 1,
            max_message_bytes: 16 * 1024 * 1024,
            max_parts_per_message: Self::DEFAULT_MAX_PARTS_PER_MESSAGE,
            max_reads_per_message: Self::DEFAULT_MAX_READS_PER_MESSAGE,
            reject_overlapping_parts: true,
        }
    }
}

/// Where the content status of outgoing entries comes from (the runtime's blob store).
pub trait ContentStatusSource {
    /// Whether we hold the content with this hash.
    fn content_status(&mut self, hash: &Hash) -> ContentStatus;

    /// The status of each of `hashes`, in order. Provided as one
    /// [`content_status`](Self::content_status) per hash; a source whose look-ups have latency
    /// (a blob store behind a channel) answers them concurrently instead.
    fn content_statuses(&mut self, hashes: &[Hash]) -> Vec<ContentStatus> {
        hashes.iter().map(|h| self.content_status(h)).collect()
    }
}

impl<F: FnMut(&Hash) -> ContentStatus> ContentStatusSource for F {
    fn content_status(&mut self, hash: &Hash) -> ContentStatus {
        self(hash)
    }
}

/// A source that knows no content: every status is [`ContentStatus::Missing`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoContent;

impl ContentStatusSource for NoContent {
    fn content_status(&mut self, _hash: &Hash) -> ContentStatus {
        ContentStatus::Missing
    }
}

/// The first message of a sync: one fingerprint over the whole namespace, anchored at our
/// first key (or the all-zero identifier when we hold nothing), exactly as iroh-docs does.
pub fn initial_message<B: Backend>(
    store: &mut Indexed<B>,
    ns: NamespaceId,
) -> Result<Message, StoreError> {
    let x = store.first_id(ns)?.unwrap_or_else(RecordIdentifier::zero);
    let range = Range::new(x.clone(), x);
    let fingerprint = store.range_fingerprint(ns, &range)?;
    Ok(Message::new(vec![MessagePart::RangeFingerprint(
        RangeFingerprint { range, fingerprint },
    )]))
}

/// What happened to one received entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Refused by the validator.
    Invalid,
    /// Valid but not newer than what we hold (or under a newer prefix entry).
    NotInserted,
    /// Stored, after removing this many older entries.
    Inserted {
        /// Entries removed by prefix deletion.
        removed: usize,
    },
}

struct Reply<'a, B, C: ?Sized> {
    store: &'a mut Indexed<B>,
    ns: NamespaceId,
    config: &'a SyncConfig,
    status: &'a mut C,
    parts: Vec<MessagePart>,
    /// Bytes of entries in `parts`.
    bytes: usize,
    /// Entries read from the store so far.
    reads: Reads,
}

impl<B: Backend, C: ContentStatusSource + ?Sized> Reply<'_, B, C> {
    fn with_status(&mut self, entries: Vec<SignedEntry>) -> Vec<(SignedEntry, ContentStatus)> {
        let hashes: Vec<Hash> = entries.iter().map(|e| e.content_hash()).collect();
        let statuses = self.status.content_statuses(&hashes);
        debug_assert_eq!(statuses.len(), entries.len());
        let missing = std::iter::repeat(ContentStatus::Missing);
        entries
            .into_iter()
            .zip(statuses.into_iter().chain(missing))
            .collect()
    }

    fn fingerprint_part(&mut self, range: Range) -> Result<(), StoreError> {
        let fingerprint = self.store.range_fingerprint(self.ns, &range)?;
        self.parts
            .push(MessagePart::RangeFingerprint(RangeFingerprint {
                range,
                fingerprint,
            }));
        Ok(())
    }

    /// Chooses our entries of `range` to send under what is left of the byte budget (all
    /// of them, or with `diff` those the peer lacks), reading no further than that.
    fn select(&mut self, range: &Range, diff: Option<Diff<'_>>) -> Result<Selection, ProcessError> {
        let budget = self.config.max_message_bytes.saturating_sub(self.bytes);
        budget::select(self.store, self.ns, range, budget, &mut self.reads, diff)
    }

    /// Pushes `selection` of `range` as a `RangeItem` and, if it was cut, the rest of the
    /// range as a fingerprint for a later round: entries over `[x, cut)`, fingerprint over
    /// `[cut, y)`.
    fn items_part(
        &mut self,
        range: Range,
        selection: Selection,
        have_local: bool,
    ) -> Result<(), StoreError> {
        let Selection {
            taken: mut sent,
            bytes,
            cut,
        } = selection;
        self.bytes += bytes;
        sent.sort();
        let values = self.with_status(sent);
        let Some(cut) = cut else {
            self.parts.push(MessagePart::RangeItem(RangeItem {
                range,
                values,
                have_local,
            }));
            return Ok(());
        };
        let y = if range.is_all() {
            range.x().clone()
        } else {
            range.y().clone()
        };
        self.parts.push(MessagePart::RangeItem(RangeItem {
            range: Range::new(range.x().clone(), cut.clone()),
            values,
            have_local,
        }));
        self.fingerprint_part(Range::new(cut, y))
    }

    /// Answers a mismatched fingerprint: entries (anchor rule) or a split.
    fn mismatch(&mut self, range: Range, theirs: Fingerprint) -> Result<(), ProcessError> {
        let n = self.store.range_len(self.ns, &range)?;
        if n <= 1 || theirs == Fingerprint::EMPTY {
            let selection = self.select(&range, None)?;
            return Ok(self.items_part(range, selection, false)?);
        }
        let k = self.config.split_factor.max(2);
        let mut offsets: Vec<usize> = (1..k).map(|i| n * i / k).collect();
        offsets.dedup();
        let mut bounds = Vec::with_capacity(k + 1);
        if range.is_all() {
            if offsets.first() != Some(&0) {
                offsets.insert(0, 0);
            }
            for o in &offsets {
                bounds.push(self.pivot(&range, *o)?);
            }
            // iroh-docs' order: start from the second pivot, wrap through the first.
            bounds.rotate_left(1);
            let first = bounds[0].clone();
            bounds.push(first);
        } else {
            offsets.retain(|o| *o != 0);
            bounds.push(range.x().clone());
            for o in &offsets {
                bounds.push(self.pivot(&range, *o)?);
            }
            bounds.push(range.y().clone());
        }
        for pair in bounds.windows(2) {
            if pair[0] == pair[1] {
                continue;
            }
            let sub = Range::new(pair[0].clone(), pair[1].clone());
            if self.store.range_len(self.ns, &sub)? > self.config.max_set_size {
                self.fingerprint_part(sub)?;
            } else {
                let selection = self.select(&sub, None)?;
                self.items_part(sub, selection, false)?;
            }
        }
        Ok(())
    }

    fn pivot(&mut self, range: &Range, offset: usize) -> Result<RecordIdentifier, StoreError> {
        self.store
            .range_pivot(self.ns, range, offset)?
            .ok_or_else(|| StoreError::Corrupt("pivot outside a non-empty range".into()))
    }
}

/// Whether two of `parts` cover a common identifier. O(p log p).
fn overlapping(parts: &[MessagePart]) -> bool {
    if parts.len() < 2 {
        return false;
    }
    // Each range as linear intervals [start, end), `None` standing for the ends of the order.
    type Bound<'a> = Option<&'a RecordIdentifier>;
    let mut intervals: Vec<(Bound<'_>, Bound<'_>)> = Vec::with_capacity(parts.len() + 1);
    for part in parts {
        let range = match part {
            MessagePart::RangeFingerprint(fp) => &fp.range,
            MessagePart::RangeItem(item) => &item.range,
        };
        match range.x().cmp(range.y()) {
            std::cmp::Ordering::Equal => return true,
            std::cmp::Ordering::Less => intervals.push((Some(range.x()), Some(range.y()))),
            std::cmp::Ordering::Greater => {
                intervals.push((Some(range.x()), None));
                intervals.push((None, Some(range.y())));
            }
        }
    }
    // `None` sorts first, as the start of the order should.
    intervals.sort();
    intervals.windows(2).any(|w| {
        let (_, end) = w[0];
        let (start, _) = w[1];
        match (end, start) {
            (None, _) => true,
            (Some(_), None) => true,
            (Some(end), Some(start)) => start < end,
        }
    })
}

/// Processes one incoming message for namespace `ns` and returns our reply, if any.
///
/// `RangeItem` parts are handled first (in order), then `RangeFingerprint` parts, as iroh-docs
/// does. Each received entry goes to `validate`; valid ones are inserted with prefix semantics
/// and reported to `on_received` with the outcome. Outgoing entries get their content status
/// from `status`.
///
/// A message of more than [`SyncConfig::max_parts_per_message`] parts fails before any work
/// with [`SyncLimit::TooManyParts`]; answering it fails with [`SyncLimit::TooManyReads`] when
/// it would read more than [`SyncConfig::max_reads_per_message`] entries (the entries of
/// parts processed before stay stored). With [`SyncConfig::reject_overlapping_parts`], a
/// message whose parts overlap fails before any work with [`SyncLimit::OverlappingParts`].
pub fn process_message<B, V, R, C>(
    store: &mut Indexed<B>,
    ns: NamespaceId,
    config: &SyncConfig,
    message: Message,
    mut validate: V,
    mut on_received: R,
    status: &mut C,
) -> Result<Option<Message>, ProcessError>
where
    B: Backend,
    V: FnMut(&SignedEntry) -> bool,
    R: FnMut(&SignedEntry, ContentStatus, Received),
    C: ContentStatusSource + ?Sized,
{
    let parts = message.parts.len();
    if parts > config.max_parts_per_message {
        return Err(SyncLimit::TooManyParts {
            parts,
            max: config.max_parts_per_message,
        }
        .into());
    }
    if config.reject_overlapping_parts && overlapping(&message.parts) {
        return Err(SyncLimit::OverlappingParts.into());
    }
    let mut reply = Reply {
        store,
        ns,
        config,
        status,
        parts: Vec::new(),
        bytes: 0,
        reads: Reads::new(config.max_reads_per_message),
    };
    let mut fingerprints = Vec::new();
    for part in message.parts {
        let item = match part {
            MessagePart::RangeFingerprint(fp) => {
                fingerprints.push(fp);
                continue;
            }
            MessagePart::RangeItem(item) => item,
        };
        let last_theirs = item
            .values
            .iter()
            .map(|(e, _)| e.id())
            .max_by_key(|id| (*id < item.range.x(), (*id).clone()))
            .cloned();
        // Our answer is chosen from the store as it is before the peer's values are stored
        // (an entry of ours that one of theirs removes is still sent).
        let diff = if item.have_local {
            None
        } else {
            let mut theirs: Theirs<'_> = Theirs::new();
            for (e, _) in &item.values {
                let slot = theirs.entry(e.id()).or_insert(e.record());
                if e.record() > *slot {
                    *slot = e.record();
                }
            }
            let diff = Diff {
                theirs: &theirs,
                keep_through: last_theirs.as_ref(),
            };
            Some(reply.select(&item.range, Some(diff))?)
        };
        for (entry, status) in item.values {
            // Entries we already hold (or hold newer) are dropped before any signature work:
            // they would not be stored whatever their signatures say.
            let outcome = if holds_same_or_newer(reply.store, ns, &entry)? {
                Received::NotInserted
            } else if !validate(&entry) {
                Received::Invalid
            } else {
                match put_prefix_aware(reply.store, entry.clone())? {
                    PutOutcome::Inserted { removed } => Received::Inserted { removed },
                    PutOutcome::NotInserted => Received::NotInserted,
                }
            };
            on_received(&entry, status, outcome);
        }
        if let Some(diff) = diff.filter(|d| !d.taken.is_empty()) {
            reply.items_part(item.range, diff, true)?;
        }
    }
    for RangeFingerprint { range, fingerprint } in fingerprints {
        if reply.store.range_fingerprint(ns, &range)? != fingerprint {
            reply.mismatch(range, fingerprint)?;
        }
    }
    Ok((!reply.parts.is_empty()).then(|| Message::new(reply.parts)))
}
