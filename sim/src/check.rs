//! The invariants.
//!
//! # Safety, after every event
//!
//! For every node that ran during the event:
//!
//! * **Every stored entry verifies.** Checked at the moment it is stored ([`SimStore::put`]
//!   verifies both signatures), which is equivalent to checking the whole store after every
//!   event, at a fraction of the cost.
//! * **Nothing is kept that a newer prefix entry must have removed.** For every key written or
//!   removed during the event: the entry there (if any) is strictly newer than every entry of
//!   the same author at a strict prefix of its key, and strictly older than every entry of that
//!   author that extends its key. Store changes only happen at written or removed keys, so this
//!   local check keeps the global property ("no stored entry is dominated by a same-author
//!   entry at a prefix of its key with a record at least as new") true after every event.
//! * **Bounded queues.** Sync sessions (dialed within `max_sessions`, accepted within
//!   `max_accepted_sessions`), downloads in flight and tracked, outstanding store requests
//!   (`Live::store_backlog` within [`store_backlog_bound`], derived there from the gossip
//!   budget, the session bounds and the API calls in flight), the store executor's backlog and
//!   the global event queue stay within their bounds. `Live::check_invariants` adds the
//!   per-peer session cap and the gossip budget itself.
//! * **No panic** ([`crate::run`] catches one and reports the seed).
//!
//! A full sweep (every entry of every store verified — once per distinct entry of the run —
//! and re-checked) runs at the heal, at convergence and at the end, as a cross-check of the
//! incremental one.
//!
//! # Liveness, after healing
//!
//! Once a second of virtual time, for every document: all running members hold the same
//! number of entries and the same whole-namespace fingerprint, and every member holds every
//! blob its download policy wants for which some other member holds the content. When that
//! holds, the entries themselves are compared with the *expected* set — the prefix-aware union
//! of all members' entries, built by inserting them all into a scratch `MemBackend` with the
//! production `put_prefix_aware` — and the run has converged. If the bound passes first, the
//! failure names each lagging node and document, counts missing and extra entries, and quotes
//! the node's last sync results with the other members.
//!
//! [`SimStore::put`]: crate::store::SimStore

use std::{collections::BTreeMap, ops::Bound};

use sheaf_core::{
    entry::RecordIdentifier,
    hash::PeerId,
    keys::NamespaceId,
    live::LiveConfig,
    ranger::Range,
    store::{put_prefix_aware, Backend, Indexed, MemBackend},
    SignedEntry,
};

use crate::{
    config::{LENIENT_BLOB_GRACE, SEC},
    report::FailureKind,
    store::TouchedKey,
    world::{Event, Sim, MAX_PENDING_STORE, MAX_STORE_BACKLOG},
};

/// A key for humans: printable ASCII as is, other bytes escaped.
pub fn show_key(key: &[u8]) -> String {
    format!("\"{}\"", key.escape_ascii())
}

fn describe(e: &SignedEntry) -> String {
    format!(
        "{} (t={}{})",
        show_key(e.key()),
        e.timestamp(),
        if e.is_empty() { ", tombstone" } else { "" }
    )
}

/// Checks the prefix invariant around one written or removed key.
pub fn check_prefix_key(store: &mut dyn Backend, key: &TouchedKey) -> Result<(), String> {
    let (ns, author, key) = key;
    let err = |e: sheaf_core::store::StoreError| format!("store read failed: {e}");
    let Some(entry) = store.get(*ns, *author, key).map_err(err)? else {
        return Ok(());
    };
    for len in 0..key.len() {
        if let Some(parent) = store.get(*ns, *author, &key[..len]).map_err(err)? {
            if parent.record() >= entry.record() {
                return Err(format!(
                    "prefix invariant violated in document {}: author {}'s entry {} is kept although its entry at prefix {} is at least as new",
                    ns.fmt_short(),
                    author.fmt_short(),
                    describe(&entry),
                    describe(&parent)
                ));
            }
        }
    }
    for child in store.prefixed_by(*ns, *author, key).map_err(err)? {
        if child.key() != &key[..] && child.record() <= entry.record() {
            return Err(format!(
                "prefix invariant violated in document {}: author {}'s entry {} is kept although its entry at prefix {} is at least as new",
                ns.fmt_short(),
                author.fmt_short(),
                describe(&child),
                describe(&entry)
            ));
        }
    }
    Ok(())
}

/// Store requests outstanding per API call, at most (`Leave`: set sync, unsubscribe, close;
/// `StartSync`: after the open, its subscription and the useful peers).
pub const STORE_REQUESTS_PER_API_CALL: usize = 3;

/// The bound on `Live::store_backlog` (store requests sent and not yet answered) of a node
/// with `config`, `docs` documents and `api_calls` API calls since its backlog was last empty.
///
/// Every request `Live` sends is of one of these sources, each bounded on its own:
///
/// * gossip `Put`s and `SyncReport` checks: `max_gossip_store` (the gossip budget);
/// * a session's initial message or message being processed: one per session at a time;
///   a session that ends leaves its request outstanding, but every request outstanding was
///   sent after the oldest one, which the store answers first — so these belong to sessions
///   open when the oldest outstanding request was sent: at most `S = max_sessions +
///   max_accepted_sessions`;
/// * the useful-peer registration of a session that completed: a session completes only after
///   a store reply, replies come in order, so the sessions that completed while the oldest
///   request is outstanding were open when it was sent: at most `S` again;
/// * missing-content scans: one page per document at a time;
/// * API calls: at most [`STORE_REQUESTS_PER_API_CALL`] each, and only calls made since the
///   backlog was last empty can still have requests outstanding (the simulator counts them
///   per node and resets the count when it sees the backlog empty, which only overestimates).
///
/// So `backlog ≤ max_gossip_store + 2·S + docs + 3·api_calls`. Downloads, timers and the
/// dial queue send no store requests.
pub fn store_backlog_bound(config: &LiveConfig, docs: usize, api_calls: usize) -> usize {
    let sessions = config.max_sessions + config.max_accepted_sessions;
    config.max_gossip_store + 2 * sessions + docs + STORE_REQUESTS_PER_API_CALL * api_calls
}

fn all_entries(store: &mut dyn Backend, ns: NamespaceId) -> Vec<SignedEntry> {
    store
        .scan_author_key(ns, Bound::Unbounded, Bound::Unbounded, false, usize::MAX)
        .unwrap_or_default()
}

fn whole() -> Range {
    Range::new(RecordIdentifier::zero(), RecordIdentifier::zero())
}

impl Sim {
    /// Bounds and incremental invariants of one node.
    pub fn check_node(&mut self, node: usize) -> Result<(), String> {
        let max_downloads = self.live_config.max_concurrent_downloads;
        let max_tracked = self.live_config.max_tracked_hashes;
        let Some(proc) = self.nodes[node].proc.as_mut() else {
            return Ok(());
        };
        if let Err(e) = proc.live.check_invariants() {
            return Err(format!(
                "Live invariant violated: {e} (pending: {})",
                proc.live.pending()
            ));
        }
        let load = proc.live.session_load();
        let (max_dialed, max_accepted) = (
            self.live_config.max_sessions,
            self.live_config.max_accepted_sessions,
        );
        if load.dialed > max_dialed || load.accepted > max_accepted {
            return Err(format!(
                "bound: {} dialed and {} accepted sync sessions (bounds {max_dialed}, {max_accepted})",
                load.dialed, load.accepted
            ));
        }
        let (in_flight, queued) = proc.live.download_load();
        if in_flight > max_downloads || queued > max_tracked {
            return Err(format!(
                "bound: {in_flight} downloads in flight, {queued} tracked (bounds {max_downloads}, {max_tracked})"
            ));
        }
        let pending = proc.live.pending_store_requests();
        if pending > MAX_PENDING_STORE || proc.executor.len() > MAX_STORE_BACKLOG {
            return Err(format!(
                "bound: {pending} store requests outstanding, {} queued at the executor",
                proc.executor.len()
            ));
        }
        let backlog = proc.live.store_backlog();
        if backlog == 0 {
            proc.api_in_busy = 0;
        }
        let bound = store_backlog_bound(&self.live_config, self.docs.len(), proc.api_in_busy);
        if backlog > self.counters.largest_live_backlog.0 {
            self.counters.largest_live_backlog = (backlog, bound);
        }
        if backlog > bound {
            return Err(format!(
                "bound: Live's store backlog is {backlog} requests, over its bound {bound} ({} API calls since it was last empty; pending: {})",
                proc.api_in_busy,
                proc.live.pending()
            ));
        }
        let store = proc.replicas.indexed_mut().backend_mut();
        if let Some(bad) = store.take_bad_signatures().into_iter().next() {
            return Err(format!("stored an entry that does not verify: {bad}"));
        }
        if store.has_touched() {
            for key in store.take_touched() {
                check_prefix_key(store.inner(), &key)?;
            }
        }
        Ok(())
    }

    /// Re-verifies and re-checks every entry of a node.
    pub fn check_full(&mut self, node: usize) -> Result<(), String> {
        let Some(proc) = self.nodes[node].proc.as_mut() else {
            return Ok(());
        };
        let verified = self.verified.clone();
        let store = proc.replicas.indexed_mut().backend_mut().inner();
        let namespaces = store.list_namespaces().map_err(|e| e.to_string())?;
        for (ns, _) in namespaces {
            for e in all_entries(store, ns) {
                verified.check(&e).map_err(|err| {
                    format!("stored entry {} does not verify: {err}", describe(&e))
                })?;
                check_prefix_key(store, &(ns, e.author(), e.id().key_bytes()))?;
            }
        }
        Ok(())
    }

    /// Once a second after the heal: converged yet, or out of time?
    pub fn liveness_tick(&mut self) {
        let healed = self.healed_at.unwrap_or(self.now);
        let (entries, blobs) = self.liveness_problems(false);
        if entries.is_empty() {
            let since = *self.entries_converged_at.get_or_insert(self.now);
            let grace_over = self.now - since >= LENIENT_BLOB_GRACE;
            if blobs.is_empty() || (self.cfg.lenient_blobs && grace_over) {
                self.declare_converged(healed, blobs);
                return;
            }
        } else {
            self.entries_converged_at = None;
        }
        let bound = u64::try_from(self.cfg.liveness_bound.as_micros()).unwrap_or(u64::MAX);
        if self.now.saturating_sub(healed) >= bound {
            let (mut detailed, blobs) = self.liveness_problems(true);
            detailed.extend(blobs);
            let shown: Vec<String> = detailed.iter().take(4).cloned().collect();
            let more = detailed.len().saturating_sub(shown.len());
            let mut reason = format!(
                "not converged {} after the heal: {}",
                self.secs(bound),
                shown.join("; ")
            );
            if more > 0 {
                reason.push_str(&format!(" (and {more} more)"));
            }
            self.fail(FailureKind::Liveness, reason);
        } else {
            self.push(self.now + SEC, Event::Check);
        }
    }

    /// Members agree on counts and fingerprints (and blobs, or the lenient grace is over):
    /// compare the entries exactly, sweep the invariants once more, and finish.
    fn declare_converged(&mut self, healed: u64, blob_warnings: Vec<String>) {
        let (exact, _) = self.liveness_problems(true);
        if !exact.is_empty() {
            let reason = format!(
                "fingerprints agree but entries differ: {}",
                exact.join("; ")
            );
            self.fail(FailureKind::Liveness, reason);
            return;
        }
        for node in 0..self.nodes.len() {
            if let Err(reason) = self.check_full(node) {
                self.fail(FailureKind::Safety, format!("node {node}: {reason}"));
                return;
            }
        }
        self.warnings.extend(blob_warnings);
        self.converged_at = Some(self.now);
        let took = self.secs(self.now - healed);
        let mut docs = Vec::new();
        for doc in 0..self.docs.len() {
            let ns = self.docs[doc].id;
            let members: Vec<usize> = self
                .members
                .iter()
                .filter(|(d, _)| *d == doc)
                .map(|(_, m)| *m)
                .collect();
            let len = members.first().map_or(0, |m| {
                let proc = self.nodes[*m].proc.as_mut().expect("up after the heal");
                proc.replicas.indexed_mut().namespace_len(ns).unwrap_or(0)
            });
            docs.push(format!("{} entries on {} members", len, members.len()));
            self.converged_docs.push((members.len(), len));
        }
        self.trace.note(
            self.now,
            &format!("converged {took} after the heal: {}", docs.join(", ")),
        );
    }

    /// Reasons the running members have not converged: entry problems and blob problems.
    /// Without `exact`, documents whose members agree on count and fingerprint are taken as
    /// converged.
    pub fn liveness_problems(&mut self, exact: bool) -> (Vec<String>, Vec<String>) {
        let mut problems = Vec::new();
        let mut blob_problems = Vec::new();
        for doc in 0..self.docs.len() {
            let ns = self.docs[doc].id;
            let members: Vec<usize> = self
                .members
                .iter()
                .filter(|(d, m)| *d == doc && self.up(*m))
                .map(|(_, m)| *m)
                .collect();
            if members.is_empty() {
                continue;
            }
            let mut views = Vec::new();
            for &m in &members {
                let store = self.nodes[m]
                    .proc
                    .as_mut()
                    .expect("up")
                    .replicas
                    .indexed_mut();
                let len = store.namespace_len(ns).unwrap_or(0);
                let fp = store.range_fingerprint(ns, &whole()).ok();
                views.push((len, fp));
            }
            let agree = views.windows(2).all(|w| w[0] == w[1]);
            if !agree || exact {
                problems.extend(self.entry_problems(doc, &members));
            }
            if agree || exact {
                blob_problems.extend(self.blob_problems(doc, &members));
            }
        }
        (problems, blob_problems)
    }

    fn entry_problems(&mut self, doc: usize, members: &[usize]) -> Vec<String> {
        let ns = self.docs[doc].id;
        let mut held: BTreeMap<usize, BTreeMap<Vec<u8>, SignedEntry>> = BTreeMap::new();
        let mut expected = Indexed::new(MemBackend::new());
        for &m in members {
            let store = self.nodes[m]
                .proc
                .as_mut()
                .expect("up")
                .replicas
                .indexed_mut();
            let entries = all_entries(store.backend_mut().inner(), ns);
            for e in &entries {
                let _ = put_prefix_aware(&mut expected, e.clone());
            }
            held.insert(
                m,
                entries
                    .into_iter()
                    .map(|e| (e.id().as_bytes().to_vec(), e))
                    .collect(),
            );
        }
        let want: BTreeMap<Vec<u8>, SignedEntry> = all_entries(&mut expected, ns)
            .into_iter()
            .map(|e| (e.id().as_bytes().to_vec(), e))
            .collect();
        let want_fp = expected.range_fingerprint(ns, &whole()).ok();
        let mut out = Vec::new();
        for &m in members {
            let have = &held[&m];
            let missing: Vec<&SignedEntry> = want
                .iter()
                .filter(|(id, e)| have.get(*id) != Some(*e))
                .map(|(_, e)| e)
                .collect();
            let extra = have
                .iter()
                .filter(|(id, e)| want.get(*id) != Some(*e))
                .count();
            let store = self.nodes[m]
                .proc
                .as_mut()
                .expect("up")
                .replicas
                .indexed_mut();
            let fp = store.range_fingerprint(ns, &whole()).ok();
            if missing.is_empty() && extra == 0 && fp == want_fp {
                continue;
            }
            let mut p = format!(
                "node {m}, document {}…, missing {} entries, {extra} extra",
                ns.fmt_short(),
                missing.len()
            );
            if let Some(e) = missing.first() {
                p.push_str(&format!(
                    " (e.g. {} by author {})",
                    describe(e),
                    e.author().fmt_short()
                ));
            }
            if missing.is_empty() && extra == 0 {
                p.push_str(&format!(", fingerprint {:?} instead of {:?}", fp, want_fp));
            }
            p.push_str("; ");
            p.push_str(&self.sync_story(m, ns, members));
            out.push(p);
        }
        out
    }

    fn blob_problems(&mut self, doc: usize, members: &[usize]) -> Vec<String> {
        let ns = self.docs[doc].id;
        let mut out = Vec::new();
        for &m in members {
            let proc = self.nodes[m].proc.as_mut().expect("up");
            let policy = proc.replicas.get_download_policy(ns).unwrap_or_default();
            let entries = all_entries(proc.replicas.indexed_mut().backend_mut().inner(), ns);
            let mut missing = Vec::new();
            for e in entries {
                if e.is_empty() || !policy.matches(e.key()) {
                    continue;
                }
                let h = e.content_hash();
                if self.nodes[m].blobs.has(&h) {
                    continue;
                }
                if let Some(&k) = members
                    .iter()
                    .find(|k| **k != m && self.nodes[**k].blobs.has(&h))
                {
                    missing.push((e, k));
                }
            }
            if let Some((e, k)) = missing.first() {
                let with_holder = match self.nodes[m].last_sync.get(&(ns, self.nodes[*k].id)) {
                    Some((t, Ok(_))) => {
                        format!("last sync with node {k} succeeded at {}", self.secs(*t))
                    }
                    Some((t, Err(e))) => {
                        format!("last sync with node {k} failed at {}: {e}", self.secs(*t))
                    }
                    None => format!("no sync with node {k} finished"),
                };
                out.push(format!(
                    "node {m}, document {}…, missing {} wanted blobs (e.g. {} of key {}, which node {k} holds); {with_holder}",
                    ns.fmt_short(),
                    missing.len(),
                    e.content_hash().fmt_short(),
                    show_key(e.key()),
                ));
            }
        }
        out
    }

    /// What the node's last syncs with the other members said.
    fn sync_story(&self, m: usize, ns: NamespaceId, members: &[usize]) -> String {
        let node = &self.nodes[m];
        let syncing = node.proc.as_ref().is_some_and(|p| p.live.is_syncing(&ns));
        let mut last: Vec<(u64, usize, &Result<_, _>)> = members
            .iter()
            .filter(|k| **k != m)
            .filter_map(|k| {
                let peer: PeerId = self.nodes[*k].id;
                node.last_sync.get(&(ns, peer)).map(|(t, r)| (*t, *k, r))
            })
            .collect();
        last.sort_by_key(|(t, k, _)| (std::cmp::Reverse(*t), *k));
        let mut s = String::new();
        if !syncing {
            s.push_str("its Live is not syncing the document; ");
        }
        if !node.api_errors.is_empty() {
            let errors: Vec<String> = node
                .api_errors
                .iter()
                .map(|(e, n)| format!("{e} ×{n}"))
                .collect();
            s.push_str(&format!("API errors: {}; ", errors.join(", ")));
        }
        let failed = last.iter().find(|(_, _, r)| r.is_err());
        match (failed, last.first()) {
            (Some((t, k, Err(e))), _) => s.push_str(&format!(
                "last sync with node {k} failed at {}: {e}",
                self.secs(*t)
            )),
            (_, Some((t, k, Ok(d)))) => s.push_str(&format!(
                "last sync with node {k} succeeded at {} ({} received, {} sent)",
                self.secs(*t),
                d.entries_received,
                d.entries_sent
            )),
            _ => s.push_str("no sync with another member finished"),
        }
        let refused = members
            .iter()
            .filter_map(|k| node.v2_refused.get(k).map(|(t, code)| (*t, *k, *code)))
            .max();
        if let Some((t, k, code)) = refused {
            s.push_str(&format!(
                "; its last v2 round with node {k} was refused at {} ({code:?})",
                self.secs(t)
            ));
        }
        s
    }
}
