//! The eager answer of a message, as `process.rs` computed it before reads were lazy: each
//! range's entries loaded whole, then cut at the byte budget. Kept only as the oracle of
//! `lazy_answers_equal_eager_answers`; not reachable outside tests.

use std::collections::BTreeMap;

use crate::{
    entry::{Record, RecordIdentifier, SignedEntry},
    keys::NamespaceId,
    ranger::{
        budget::value_len, ContentStatus, ContentStatusSource, Fingerprint, Message, MessagePart,
        Range, RangeFingerprint, RangeItem, Received, SyncConfig,
    },
    store::{put_prefix_aware, Backend, Indexed, PutOutcome, StoreError},
};

struct Reply<'a, B, C: ?Sized> {
    store: &'a mut Indexed<B>,
    ns: NamespaceId,
    config: &'a SyncConfig,
    status: &'a mut C,
    parts: Vec<MessagePart>,
    bytes: usize,
}

impl<B: Backend, C: ContentStatusSource + ?Sized> Reply<'_, B, C> {
    fn with_status(&mut self, entries: Vec<SignedEntry>) -> Vec<(SignedEntry, ContentStatus)> {
        entries
            .into_iter()
            .map(|e| {
                let status = self.status.content_status(&e.content_hash());
                (e, status)
            })
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

    /// Pushes `entries` (ascending) of `range` as a `RangeItem`, cutting at the byte budget.
    ///
    /// The part of the range that does not fit is sent as a fingerprint. The cut never falls
    /// before `keep_through` (the last of the peer's own values in this range, in range order):
    /// the peer would answer the fingerprint by sending those values again.
    fn items_part(
        &mut self,
        range: Range,
        entries: Vec<SignedEntry>,
        have_local: bool,
        keep_through: Option<&RecordIdentifier>,
    ) -> Result<(), StoreError> {
        let total: usize = entries.iter().map(value_len).sum();
        let budget = self.config.max_message_bytes.saturating_sub(self.bytes);
        if total <= budget || entries.len() <= 1 {
            self.bytes += total;
            let values = self.with_status(entries);
            self.parts.push(MessagePart::RangeItem(RangeItem {
                range,
                values,
                have_local,
            }));
            return Ok(());
        }
        // Take entries in range order starting at x until the budget is spent; the rest of
        // the range becomes a fingerprint for a later round.
        let split = entries.partition_point(|e| e.id() < range.x());
        let mut cyclic: Vec<SignedEntry> = entries[split..].to_vec();
        cyclic.extend_from_slice(&entries[..split]);
        let mut used = 0;
        let mut take = 0;
        let order = |id: &RecordIdentifier| (id < range.x(), id.clone());
        let must = keep_through.map(order);
        for e in &cyclic {
            let len = value_len(e);
            let needed = must.as_ref().is_some_and(|m| order(e.id()) <= *m);
            if take > 0 && used + len > budget && !needed {
                break;
            }
            used += len;
            take += 1;
        }
        if take == cyclic.len() {
            // Everything had to go: no cut.
            self.bytes += used;
            let values = self.with_status(entries);
            self.parts.push(MessagePart::RangeItem(RangeItem {
                range,
                values,
                have_local,
            }));
            return Ok(());
        }
        let cut = cyclic[take].id().clone();
        let mut sent: Vec<SignedEntry> = cyclic.drain(..take).collect();
        sent.sort();
        let y = if range.is_all() {
            range.x().clone()
        } else {
            range.y().clone()
        };
        self.bytes += used;
        let values = self.with_status(sent);
        self.parts.push(MessagePart::RangeItem(RangeItem {
            range: Range::new(range.x().clone(), cut.clone()),
            values,
            have_local,
        }));
        self.fingerprint_part(Range::new(cut, y))
    }

    /// Answers a mismatched fingerprint: entries (anchor rule) or a split.
    fn mismatch(&mut self, range: Range, theirs: Fingerprint) -> Result<(), StoreError> {
        let n = self.store.range_len(self.ns, &range)?;
        if n <= 1 || theirs == Fingerprint::EMPTY {
            let entries = self.store.range_entries(self.ns, &range, 0, usize::MAX)?;
            return self.items_part(range, entries, false, None);
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
                let entries = self.store.range_entries(self.ns, &sub, 0, usize::MAX)?;
                self.items_part(sub, entries, false, None)?;
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

/// Processes one incoming message for namespace `ns` and returns our reply, if any.
///
/// `RangeItem` parts are handled first (in order), then `RangeFingerprint` parts, as iroh-docs
/// does. Each received entry goes to `validate`; valid ones are inserted with prefix semantics
/// and reported to `on_received` with the outcome. Outgoing entries get their content status
/// from `status`.
pub(super) fn process_message<B, V, R, C>(
    store: &mut Indexed<B>,
    ns: NamespaceId,
    config: &SyncConfig,
    message: Message,
    mut validate: V,
    mut on_received: R,
    status: &mut C,
) -> Result<Option<Message>, StoreError>
where
    B: Backend,
    V: FnMut(&SignedEntry) -> bool,
    R: FnMut(&SignedEntry, ContentStatus, Received),
    C: ContentStatusSource + ?Sized,
{
    let mut reply = Reply {
        store,
        ns,
        config,
        status,
        parts: Vec::new(),
        bytes: 0,
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
        let diff = if item.have_local {
            None
        } else {
            let mut theirs: BTreeMap<&RecordIdentifier, &Record> = BTreeMap::new();
            for (e, _) in &item.values {
                let slot = theirs.entry(e.id()).or_insert(e.record());
                if e.record() > *slot {
                    *slot = e.record();
                }
            }
            let ours = reply.store.range_entries(ns, &item.range, 0, usize::MAX)?;
            Some(
                ours.into_iter()
                    .filter(|e| theirs.get(e.id()).is_none_or(|r| *r < e.record()))
                    .collect::<Vec<_>>(),
            )
        };
        for (entry, status) in item.values {
            // Entries we already hold (or hold newer) are dropped before any signature work:
            // they would not be stored whatever their signatures say.
            let held = reply.store.get(ns, entry.author(), entry.key())?;
            let outcome = if held.is_some_and(|h| h.record() >= entry.record()) {
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
        if let Some(diff) = diff.filter(|d| !d.is_empty()) {
            reply.items_part(item.range, diff, true, last_theirs.as_ref())?;
        }
    }
    for RangeFingerprint { range, fingerprint } in fingerprints {
        if reply.store.range_fingerprint(ns, &range)? != fingerprint {
            reply.mismatch(range, fingerprint)?;
        }
    }
    Ok((!reply.parts.is_empty()).then(|| Message::new(reply.parts)))
}
