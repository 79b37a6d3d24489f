//! Timers of [`super::Live`]: one slot per timer, keyed by what it is for.
//!
//! Modelled on quinn-proto's `TimerTable`: [`TimerTable::set`] replaces the previous instant
//! of that timer, [`TimerTable::stop`] removes it, and [`TimerTable::next_timeout`] is the
//! earliest armed instant. Because a timer has one slot, re-arming cannot stack a second
//! chain (a re-joined document has one anti-entropy timer, not two), and because every
//! object stops its timers when it goes away (a session that ends, a document that is left,
//! a hash that is queued again), `Live::poll_timeout` names exactly the next instant at
//! which `Live::handle_timeout` acts: no entry is left to fire into nothing.
//!
//! # Bound
//!
//! One slot per key, so the table never holds more timers than there are objects to time:
//! open sessions (`SessionIdle`, at most `max_sessions` + `max_accepted_sessions`), tracked peers of synced documents
//! (`Retry`, at most `max_peers_per_namespace` per document), synced documents
//! (`AntiEntropy`, `GossipRejoin`) and tracked hashes (`DownloadRetry`, at most
//! `max_tracked_hashes`).
//!
//! Two ordered maps kept in step — timer → instant and (instant, timer) — make `set`, `stop`
//! and popping the earliest due timer logarithmic and every iteration deterministic.

use std::collections::{BTreeMap, BTreeSet};

use super::types::SessionId;
use crate::{
    hash::{Hash, PeerId},
    keys::NamespaceId,
    time::Mono,
};

/// What a timer is for; the key of its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    /// The session's idle deadline: no network progress until then ends it.
    SessionIdle(SessionId),
    /// A dialed sync with the peer failed; dial it again.
    Retry(NamespaceId, PeerId),
    /// Periodic re-sync with every known peer of the document.
    AntiEntropy(NamespaceId),
    /// Every provider of a missing hash failed; try them again.
    DownloadRetry(Hash),
    /// The document's gossip subscription ended; join the topic again.
    GossipRejoin(NamespaceId),
}

/// One slot per [`Timer`]. See the module docs.
#[derive(Debug, Default)]
pub(super) struct TimerTable {
    at: BTreeMap<Timer, Mono>,
    order: BTreeSet<(Mono, Timer)>,
}

impl TimerTable {
    /// Arms `timer` at `at`, replacing its previous instant.
    pub(super) fn set(&mut self, timer: Timer, at: Mono) {
        if let Some(old) = self.at.insert(timer, at) {
            self.order.remove(&(old, timer));
        }
        self.order.insert((at, timer));
        debug_assert_eq!(self.at.len(), self.order.len());
    }

    /// Disarms `timer`; returns the instant it was armed at.
    pub(super) fn stop(&mut self, timer: Timer) -> Option<Mono> {
        let at = self.at.remove(&timer)?;
        self.order.remove(&(at, timer));
        Some(at)
    }

    /// When `timer` is armed, if it is.
    #[cfg(any(test, feature = "fuzzing", feature = "invariants"))]
    pub(super) fn get(&self, timer: &Timer) -> Option<Mono> {
        self.at.get(timer).copied()
    }

    /// The earliest armed instant.
    pub(super) fn next_timeout(&self) -> Option<Mono> {
        self.order.first().map(|(at, _)| *at)
    }

    /// Disarms and returns the earliest timer due at `now`, if any.
    pub(super) fn pop_due(&mut self, now: Mono) -> Option<(Mono, Timer)> {
        let &(at, timer) = self.order.first()?;
        if at > now {
            return None;
        }
        self.order.remove(&(at, timer));
        self.at.remove(&timer);
        Some((at, timer))
    }

    /// Disarms every timer for which `keep` is false.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&Timer) -> bool) {
        let order = &mut self.order;
        self.at.retain(|timer, at| {
            let k = keep(timer);
            if !k {
                order.remove(&(*at, *timer));
            }
            k
        });
    }

    /// Disarms everything.
    pub(super) fn clear(&mut self) {
        self.at.clear();
        self.order.clear();
    }

    /// Armed timers, in key order.
    #[cfg(any(test, feature = "fuzzing", feature = "invariants"))]
    pub(super) fn iter(&self) -> impl Iterator<Item = (&Timer, &Mono)> {
        self.at.iter()
    }

    /// Number of armed timers.
    #[cfg(any(test, feature = "fuzzing", feature = "invariants"))]
    pub(super) fn len(&self) -> usize {
        self.at.len()
    }

    /// Whether the two maps agree.
    #[cfg(any(test, feature = "fuzzing", feature = "invariants"))]
    pub(super) fn is_consistent(&self) -> bool {
        self.at.len() == self.order.len()
            && self.order.iter().all(|(at, t)| self.at.get(t) == Some(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(b: u8) -> NamespaceId {
        NamespaceId::from_bytes([b; 32])
    }

    #[test]
    fn set_replaces_the_previous_instant() {
        let mut t = TimerTable::default();
        t.set(Timer::AntiEntropy(ns(1)), Mono(10));
        t.set(Timer::AntiEntropy(ns(1)), Mono(30));
        assert_eq!(t.len(), 1);
        assert_eq!(t.next_timeout(), Some(Mono(30)));
        assert_eq!(t.pop_due(Mono(20)), None);
        assert_eq!(
            t.pop_due(Mono(30)),
            Some((Mono(30), Timer::AntiEntropy(ns(1))))
        );
        assert_eq!(t.next_timeout(), None);
        assert!(t.is_consistent());
    }

    #[test]
    fn stop_removes_and_the_next_timeout_moves_on() {
        let mut t = TimerTable::default();
        let h = Hash::new("x");
        t.set(Timer::DownloadRetry(h), Mono(5));
        t.set(Timer::AntiEntropy(ns(2)), Mono(7));
        assert_eq!(t.stop(Timer::DownloadRetry(h)), Some(Mono(5)));
        assert_eq!(t.stop(Timer::DownloadRetry(h)), None);
        assert_eq!(t.next_timeout(), Some(Mono(7)));
        assert_eq!(t.get(&Timer::AntiEntropy(ns(2))), Some(Mono(7)));
        assert!(t.is_consistent());
    }

    #[test]
    fn due_timers_pop_in_instant_order_then_key_order() {
        let mut t = TimerTable::default();
        t.set(Timer::AntiEntropy(ns(3)), Mono(2));
        t.set(Timer::AntiEntropy(ns(1)), Mono(2));
        t.set(Timer::DownloadRetry(Hash::new("a")), Mono(1));
        let popped: Vec<_> = std::iter::from_fn(|| t.pop_due(Mono(2))).collect();
        assert_eq!(
            popped,
            vec![
                (Mono(1), Timer::DownloadRetry(Hash::new("a"))),
                (Mono(2), Timer::AntiEntropy(ns(1))),
                (Mono(2), Timer::AntiEntropy(ns(3))),
            ]
        );
    }

    #[test]
    fn retain_and_clear_keep_both_maps_in_step() {
        let mut t = TimerTable::default();
        for b in 0..10u8 {
            t.set(Timer::AntiEntropy(ns(b)), Mono(u64::from(b)));
        }
        t.retain(|timer| matches!(timer, Timer::AntiEntropy(n) if n.as_bytes()[0] % 2 == 0));
        assert_eq!(t.len(), 5);
        assert!(t.is_consistent());
        assert_eq!(t.next_timeout(), Some(Mono(0)));
        t.clear();
        assert_eq!(t.len(), 0);
        assert_eq!(t.next_timeout(), None);
    }
}
