//! Content downloads: which hashes are missing, who can provide them, what is queued and in
//! flight, and when a document has no pending downloads left.
//!
//! Beyond iroh-docs: downloads run at most `max_concurrent_downloads` at a time (the rest
//! wait in FIFO order), and a hash that is still missing is requested again whenever any peer
//! later shows it holds it — through a sync, a direct `Put` or a `ContentReady` — which
//! iroh-docs never does (its issue #82). Downloads start in batches
//! (`LiveConfig::download_batch`) so that a runtime can fetch a batch from one provider in
//! one request, and while any sync session runs only one batch is in flight: a large sync's
//! entries, whose signature checks keep every core busy, go ahead of their content, which
//! still makes progress (`bench/RESULTS.md`, W3). A download that failed with every known
//! provider is also retried from the same providers after a growing delay, a bounded number of rounds
//! (`LiveConfig::download_retry_attempts`): a provider's transient failure — a connection
//! reset, a dial racing the peer's own dial — must not leave content missing until some peer
//! happens to sync again.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{timer::Timer, types::*, Live};
use crate::{
    hash::{Hash, PeerId},
    keys::NamespaceId,
    wire::Op,
};

#[derive(Debug, Default)]
pub(super) struct Downloads {
    /// Wanted but no provider known (or the last attempt failed), with a document that
    /// wants it.
    missing: BTreeMap<Hash, NamespaceId>,
    /// Queued or in flight, with the documents that want them.
    queued: BTreeMap<Hash, BTreeSet<NamespaceId>>,
    by_namespace: BTreeMap<NamespaceId, BTreeSet<Hash>>,
    /// Waiting for a slot, in arrival order.
    waiting: VecDeque<Hash>,
    in_flight: BTreeSet<Hash>,
    providers: BTreeMap<Hash, BTreeSet<PeerId>>,
    /// Providers already asked for a hash in flight or being retried.
    tried: BTreeMap<Hash, BTreeSet<PeerId>>,
    /// Retry rounds used per missing hash (cleared on success).
    rounds: BTreeMap<Hash, u32>,
    max_concurrent: usize,
    /// Free slots needed to start more downloads while some are in flight.
    batch: usize,
    max_tracked: usize,
    max_providers: usize,
    pub(super) dropped: u64,
}

impl Downloads {
    pub(super) fn new(
        max_concurrent: usize,
        batch: usize,
        max_tracked: usize,
        max_providers: usize,
    ) -> Self {
        let max_concurrent = max_concurrent.max(1);
        Self {
            max_concurrent,
            batch: batch.clamp(1, max_concurrent),
            max_tracked,
            max_providers,
            ..Default::default()
        }
    }

    pub(super) fn tracked(&self) -> usize {
        self.missing.len() + self.queued.len()
    }

    /// Remembers that `hash` is wanted by `ns` but has no provider yet.
    pub(super) fn mark_missing(&mut self, ns: NamespaceId, hash: Hash) {
        if self.queued.contains_key(&hash) || self.missing.contains_key(&hash) {
            return;
        }
        if self.tracked() >= self.max_tracked {
            self.dropped += 1;
            return;
        }
        self.missing.insert(hash, ns);
    }

    pub(super) fn is_missing(&self, hash: &Hash) -> bool {
        self.missing.contains_key(hash)
    }

    /// Up to `limit` hashes that `ns` still misses or is fetching: a peer that just synced may
    /// hold any of them.
    pub(super) fn missing_for(&self, ns: &NamespaceId, limit: usize) -> Vec<Hash> {
        let queued = self.by_namespace.get(ns).into_iter().flatten().copied();
        self.missing
            .iter()
            .filter(|(_, n)| *n == ns)
            .map(|(h, _)| *h)
            .chain(queued)
            .take(limit)
            .collect()
    }

    /// `provider` has `hash`, wanted by `ns`. Queues a download unless `only_if_missing` and
    /// nobody wants it.
    pub(super) fn offer(
        &mut self,
        ns: NamespaceId,
        hash: Hash,
        provider: PeerId,
        only_if_missing: bool,
    ) {
        let providers = self.providers.entry(hash).or_default();
        if providers.len() < self.max_providers {
            providers.insert(provider);
        }
        if let Some(nss) = self.queued.get_mut(&hash) {
            nss.insert(ns);
            self.by_namespace.entry(ns).or_default().insert(hash);
            return;
        }
        if only_if_missing && !self.missing.contains_key(&hash) {
            // Nobody here wants it: keep no provider list for it.
            self.providers.remove(&hash);
            return;
        }
        if self.missing.remove(&hash).is_none() && self.tracked() >= self.max_tracked {
            self.dropped += 1;
            self.providers.remove(&hash);
            return;
        }
        self.queued.entry(hash).or_default().insert(ns);
        self.by_namespace.entry(ns).or_default().insert(hash);
        self.waiting.push_back(hash);
    }

    /// Downloads to start now: (hash, providers). While some are in flight, none start
    /// until a batch of slots is free or every waiting one fits; while `syncing`, at most
    /// one batch is in flight.
    pub(super) fn dispatch(&mut self, syncing: bool) -> Vec<(Hash, Vec<PeerId>)> {
        let mut out = Vec::new();
        let max = if syncing {
            self.batch
        } else {
            self.max_concurrent
        };
        let free = max.saturating_sub(self.in_flight.len());
        if !self.in_flight.is_empty() && free < self.batch && self.waiting.len() > free {
            return out;
        }
        while self.in_flight.len() < max {
            let Some(hash) = self.waiting.pop_front() else {
                break;
            };
            if !self.queued.contains_key(&hash) || !self.in_flight.insert(hash) {
                continue;
            }
            let providers: Vec<PeerId> = self
                .providers
                .get(&hash)
                .map(|p| p.iter().copied().collect())
                .unwrap_or_default();
            self.tried
                .entry(hash)
                .or_default()
                .extend(providers.iter().copied());
            out.push((hash, providers));
        }
        out
    }

    /// A download ended. Returns the documents that wanted it and the documents whose queue
    /// is now empty.
    pub(super) fn finish(&mut self, hash: &Hash, ok: bool) -> (Vec<NamespaceId>, Vec<NamespaceId>) {
        self.in_flight.remove(hash);
        if !ok {
            // Peers that offered the content while this attempt ran have not been asked yet:
            // try again right away with them (each retry needs a provider never tried before).
            let tried = self.tried.get(hash);
            let untried = self
                .providers
                .get(hash)
                .is_some_and(|p| p.iter().any(|peer| tried.is_none_or(|t| !t.contains(peer))));
            if untried && self.queued.contains_key(hash) {
                self.waiting.push_back(*hash);
                return (Vec::new(), Vec::new());
            }
        }
        self.tried.remove(hash);
        let wanted: Vec<NamespaceId> = self
            .queued
            .remove(hash)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let mut drained = Vec::new();
        for ns in &wanted {
            if let Some(hashes) = self.by_namespace.get_mut(ns) {
                hashes.remove(hash);
                if hashes.is_empty() {
                    self.by_namespace.remove(ns);
                    drained.push(*ns);
                }
            }
        }
        if ok {
            self.providers.remove(hash);
            self.rounds.remove(hash);
        } else if let Some(ns) = wanted.first() {
            // Failed: wait for a peer to show it holds the content, or for a retry round.
            self.missing.insert(*hash, *ns);
        }
        (wanted, drained)
    }

    /// After a failed download of `hash`: the number of the next retry round from the same
    /// providers, if one is due within `max_rounds` (the caller schedules it).
    pub(super) fn next_round(&mut self, hash: &Hash, max_rounds: u32) -> Option<u32> {
        if !self.missing.contains_key(hash) || !self.providers.contains_key(hash) {
            return None;
        }
        let rounds = self.rounds.entry(*hash).or_insert(0);
        if *rounds >= max_rounds {
            return None;
        }
        *rounds += 1;
        Some(*rounds)
    }

    /// The retry round last granted by [`Downloads::next_round`] was not run (the hash was
    /// queued again before it was due).
    pub(super) fn unused_round(&mut self, hash: &Hash) {
        if let Some(rounds) = self.rounds.get_mut(hash) {
            *rounds = rounds.saturating_sub(1);
        }
    }

    /// A retry round of `hash` is due: queue it again with its known providers, unless it is
    /// no longer missing (downloaded or queued meanwhile). Returns whether it was queued.
    pub(super) fn retry(&mut self, hash: &Hash) -> bool {
        if !self.providers.contains_key(hash) {
            return false;
        }
        let Some(ns) = self.missing.remove(hash) else {
            return false;
        };
        self.queued.entry(*hash).or_default().insert(ns);
        self.by_namespace.entry(ns).or_default().insert(*hash);
        self.waiting.push_back(*hash);
        true
    }

    /// Whether `hash` waits for a retry round: missing, with providers to ask again.
    pub(super) fn awaits_retry(&self, hash: &Hash) -> bool {
        self.missing.contains_key(hash) && self.providers.contains_key(hash)
    }

    /// Hashes wanted without a provider.
    #[cfg(any(test, feature = "fuzzing", feature = "invariants"))]
    pub(super) fn missing_len(&self) -> usize {
        self.missing.len()
    }

    /// The tracker's own invariants: in flight ⊆ queued, missing ∩ queued = ∅, the queue by
    /// document mirrors each queued hash's documents, and the bounds hold.
    #[cfg(any(test, feature = "fuzzing", feature = "invariants"))]
    pub(super) fn check(
        &self,
        max_concurrent: usize,
        max_tracked: usize,
        max_providers: usize,
    ) -> Result<(), &'static str> {
        if !self.in_flight.iter().all(|h| self.queued.contains_key(h)) {
            return Err("a download in flight is not queued");
        }
        if self.missing.keys().any(|h| self.queued.contains_key(h)) {
            return Err("a hash is both missing and queued");
        }
        for (hash, nss) in &self.queued {
            if nss.is_empty() {
                return Err("a queued hash is wanted by no document");
            }
            if !nss
                .iter()
                .all(|ns| self.by_namespace.get(ns).is_some_and(|h| h.contains(hash)))
            {
                return Err("the queue by document misses a queued hash");
            }
        }
        for (ns, hashes) in &self.by_namespace {
            if hashes.is_empty()
                || !hashes
                    .iter()
                    .all(|h| self.queued.get(h).is_some_and(|nss| nss.contains(ns)))
            {
                return Err("the queue by document holds a hash not queued for it");
            }
        }
        if self.in_flight.len() > max_concurrent {
            return Err("more downloads in flight than the bound");
        }
        if self.tracked() > max_tracked {
            return Err("more hashes tracked than the bound");
        }
        if self.providers.values().any(|p| p.len() > max_providers) {
            return Err("more providers for a hash than the bound");
        }
        Ok(())
    }

    pub(super) fn has_queued(&self, ns: &NamespaceId) -> bool {
        self.by_namespace.contains_key(ns)
    }

    pub(super) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    pub(super) fn queued_len(&self) -> usize {
        self.queued.len()
    }
}

impl Live {
    pub(super) fn dispatch_downloads(&mut self) {
        // Entries ahead of content: while any sync session runs, one batch at a time.
        let syncing = !self.sessions.is_empty();
        for (hash, providers) in self.downloads.dispatch(syncing) {
            self.push(Output::Download { hash, providers });
        }
    }

    pub(super) fn on_download_finished(&mut self, hash: Hash, outcome: DownloadOutcome) {
        let ok = !matches!(outcome, DownloadOutcome::Failed(_));
        let (wanted, drained) = self.downloads.finish(&hash, ok);
        if !self.downloads.awaits_retry(&hash) {
            // A retry round scheduled before is void once the hash is no longer missing
            // with providers (a report for a hash that was not in flight can end it).
            self.timers.stop(Timer::DownloadRetry(hash));
        }
        match outcome {
            DownloadOutcome::Downloaded => {
                self.stats.downloads_ok += 1;
                for ns in wanted {
                    self.emit(ns, LiveEvent::ContentReady { hash });
                    self.broadcast_neighbors(ns, Op::ContentReady(hash));
                }
            }
            DownloadOutcome::AlreadyPresent => {}
            DownloadOutcome::Failed(_) => {
                self.stats.downloads_failed += 1;
                let max = self.config.download_retry_attempts;
                if let Some(round) = self.downloads.next_round(&hash, max) {
                    let base = self.config.download_retry_base;
                    let delay = base
                        .saturating_mul(1 << (round - 1).min(16))
                        .min(self.config.retry_max);
                    let at = self.now.mono + delay;
                    self.timers.set(Timer::DownloadRetry(hash), at);
                }
            }
        }
        for ns in drained {
            let ready = self
                .states
                .get_mut(&ns)
                .map(|s| std::mem::take(&mut s.may_emit_ready))
                .unwrap_or(false);
            if ready {
                self.emit(ns, LiveEvent::PendingContentReady);
            }
        }
    }

    /// `provider` has `hash`, wanted by `ns` (see [`Downloads::offer`]). A hash queued again
    /// is no longer waiting for a retry round: its retry timer stops, and the round it stood
    /// for is given back.
    pub(super) fn offer_content(
        &mut self,
        ns: NamespaceId,
        hash: Hash,
        provider: PeerId,
        only_if_missing: bool,
    ) {
        self.downloads.offer(ns, hash, provider, only_if_missing);
        if !self.downloads.is_missing(&hash)
            && self.timers.stop(Timer::DownloadRetry(hash)).is_some()
        {
            // The round that timer stood for never ran: it stays available.
            self.downloads.unused_round(&hash);
        }
    }

    /// A retry round of a failed download is due.
    pub(super) fn on_download_retry(&mut self, hash: Hash) {
        if self.downloads.retry(&hash) {
            self.stats.download_retries += 1;
        }
    }
}
