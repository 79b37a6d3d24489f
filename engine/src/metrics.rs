//! Metrics of a docs engine, as an iroh-metrics group.
//!
//! The counters iroh-docs has that mean something here, plus Sheaf's own: entries received and
//! sent through reconciliation (iroh-docs counts only gossip inserts as remote entries),
//! gossip messages that failed to decode, downloads and retries.

use iroh_metrics::{Counter, Gauge, MetricsGroup};
use sheaf_core::{
    live::{LiveStats, SessionLoad},
    store::IndexStats,
};

/// Counters of one engine (see [`crate::Docs::metrics`]).
#[derive(Debug, Default, MetricsGroup)]
#[metrics(name = "sheaf_docs")]
pub struct Metrics {
    /// Local inserts (writes and deletes).
    pub new_entries_local: Counter,
    /// Inserted entries from peers, through gossip or reconciliation.
    pub new_entries_remote: Counter,
    /// Content bytes of local inserts.
    pub new_entries_local_size: Counter,
    /// Content bytes of remote inserts.
    pub new_entries_remote_size: Counter,
    /// Accepted syncs that completed.
    pub sync_via_accept_success: Counter,
    /// Accepted syncs that failed.
    pub sync_via_accept_failure: Counter,
    /// Dialed syncs that completed.
    pub sync_via_connect_success: Counter,
    /// Dialed syncs that failed.
    pub sync_via_connect_failure: Counter,
    /// Entries received through reconciliation, valid or not.
    pub sync_entries_received: Counter,
    /// Entries sent through reconciliation.
    pub sync_entries_sent: Counter,
    /// Sync v2 rounds the live engine dialed (each for every document it wanted from one
    /// peer).
    pub sync_v2_rounds: Counter,
    /// Of those, rounds whose peer answered v1 (its documents were then synced over v1).
    pub sync_v2_v1_answers: Counter,
    /// Sync v2 rounds refused because both nodes dialed each other at once (the tie-break:
    /// our dials the peer refused and the peer's dials we refused; the other round ran).
    pub sync_v2_crossed: Counter,
    /// Sync v2 rounds this node dialed on a connection kept from an earlier round with the
    /// same peer (no handshake).
    pub sync_v2_reused: Counter,
    /// Gossip messages that did not decode.
    pub gossip_decode_errors: Counter,
    /// Gossip `Put`s the store refused.
    pub gossip_puts_refused: Counter,
    /// Gossip ops dropped before the store: over the gossip budget, or from a muted peer.
    pub gossip_dropped: Counter,
    /// Gossip broadcasts and joins dropped because a topic's outbox was full (iroh-gossip did
    /// not take them in time); the document's neighbours get what was dropped by a sync.
    pub gossip_outbox_dropped: Counter,
    /// Health probes of iroh-gossip's actor that it did not answer in time; each makes every
    /// live document sync with its neighbours (see [`crate::Builder::gossip_probe_period`]).
    pub gossip_stalls: Counter,
    /// 1 while iroh-gossip's actor does not answer the health probe: live updates then
    /// arrive only by the repair syncs the probe causes.
    pub gossip_stalled: Gauge,
    /// Peers cut off from our gossip for a while: each sent, as its author's node, a `Put`
    /// that failed verification (see [`crate::gossip_gate`]).
    pub gossip_bans: Counter,
    /// Gossip connections closed for a ban, open ones and new ones refused.
    pub gossip_connections_cut: Counter,
    /// Open event subscriptions ([`crate::Events`] not dropped yet), each holding a queue of
    /// up to 256 events.
    pub subscriptions: Gauge,
    /// 1 once the store thread stopped without a shutdown (it failed): every document call
    /// then returns `ReplicaError::Stopped`, and the node should be restarted.
    pub store_stopped: Gauge,
    /// Sync connections, accepted or dialed, that used a direct path (UDP to one of the
    /// peer's IP addresses) when their session began.
    pub sync_conns_direct: Counter,
    /// Sync connections, accepted or dialed, that went through a relay server when their
    /// session began (iroh may move them onto a direct path later).
    pub sync_conns_relayed: Counter,
    /// Failed syncs scheduled for a retry.
    pub sync_retries: Counter,
    /// Blobs downloaded.
    pub downloads_ok: Counter,
    /// Blob downloads that failed.
    pub downloads_failed: Counter,
    /// Download retry rounds from the same providers after every provider failed.
    pub download_retries: Counter,
    /// Requests that fetched several blobs from one provider at once (see `Fetcher`).
    pub download_batches: Counter,
    /// Blobs fetched by those requests.
    pub downloads_batched: Counter,
    /// Synced entries whose signatures were checked on other threads while the store
    /// processed their message, and that the store took from those checks.
    pub signatures_checked_ahead: Counter,
    /// Anti-entropy rounds run (one per document per interval, at most).
    pub anti_entropy_rounds: Counter,
    /// Peers an anti-entropy round skipped: they had synced the document since its previous
    /// round.
    pub anti_entropy_skipped: Counter,
    /// Anti-entropy rounds that waited for the node's background sync budget.
    pub anti_entropy_deferred: Counter,
    /// Connections closed at once because the node or that peer had as many sessions as
    /// it may.
    pub sessions_refused: Counter,
    /// Dials that waited for room under the session bounds.
    pub dials_queued: Counter,
    /// Peers dropped from a document's full peer table to make room for a new one.
    pub peers_evicted: Counter,
    /// Sync sessions we dialed, open now.
    pub sessions_dialed: Gauge,
    /// Sync sessions peers opened with us, open now (including those before `Init`).
    pub sessions_accepted: Gauge,
    /// Dials waiting for room now.
    pub dials_waiting: Gauge,
    /// Store commands `Live` has sent and the store thread has not answered yet.
    pub store_backlog: Gauge,
    /// The largest `store_backlog` seen since the node started.
    pub store_backlog_max: Gauge,
    /// Iterations of the live loop.
    pub doc_live_tick_main: Counter,
    /// Estimated heap of the fingerprint indexes loaded now (and the documents' summaries), in
    /// bytes; kept within `index_budget_bytes` except for documents syncing at once.
    pub index_bytes: Gauge,
    /// The fingerprint indexes' memory budget, in bytes (see [`crate::Builder::memory_budget`]).
    pub index_budget_bytes: Gauge,
    /// Documents whose fingerprint index (its chunk list) is loaded now.
    pub index_loaded: Gauge,
    /// Chunks of the loaded indexes (key ranges of a few hundred entries each).
    pub index_chunks: Gauge,
    /// Fingerprint indexes built from every entry of a document (its first use without
    /// persisted chunks, or a repair).
    pub index_builds: Counter,
    /// Chunks read back from the store (folded after opening or an eviction, then needed by a
    /// sync).
    pub index_expansions: Counter,
    /// Fingerprint indexes folded or dropped to stay within the budget.
    pub index_evictions: Counter,
    /// Persisted document summaries that disagreed with the entries, and were repaired.
    pub index_summary_repairs: Counter,
    /// The size limit of redb's page cache, in bytes (0 for a store in memory or a backend
    /// the node did not open).
    pub store_cache_bytes: Gauge,
}

impl Metrics {
    /// Counts `conn` as direct or relayed by the path it uses now.
    pub(crate) fn count_path(&self, conn: &iroh::endpoint::Connection) {
        let paths = conn.paths();
        match paths.iter().find(|p| p.is_selected()) {
            Some(p) if p.is_ip() => self.sync_conns_direct.inc(),
            Some(p) if p.is_relay() => self.sync_conns_relayed.inc(),
            _ => 0,
        };
    }

    /// Records the index's state, and what its counters did since `before`.
    pub(crate) fn record_index(&self, before: &IndexStats, after: &IndexStats) {
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.index_bytes.set(gauge(after.bytes));
        self.index_budget_bytes.set(gauge(after.budget));
        self.index_loaded.set(gauge(after.loaded));
        self.index_chunks.set(gauge(after.chunks));
        let d = |a: u64, b: u64| b.saturating_sub(a);
        self.index_builds.inc_by(d(before.builds, after.builds));
        self.index_expansions
            .inc_by(d(before.expansions, after.expansions));
        self.index_evictions
            .inc_by(d(before.evictions, after.evictions));
        self.index_summary_repairs
            .inc_by(d(before.summary_repairs, after.summary_repairs));
    }

    /// Adds what changed between two snapshots of the core's counters.
    pub(crate) fn record(
        &self,
        before: &LiveStats,
        after: &LiveStats,
        load: SessionLoad,
        store_backlog: usize,
    ) {
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.store_backlog.set(gauge(store_backlog));
        if gauge(store_backlog) > self.store_backlog_max.get() {
            self.store_backlog_max.set(gauge(store_backlog));
        }
        self.sessions_dialed.set(gauge(load.dialed));
        self.sessions_accepted.set(gauge(load.accepted));
        self.dials_waiting.set(gauge(load.dials_waiting));
        self.sessions_refused.inc_by(
            after
                .sessions_refused
                .saturating_sub(before.sessions_refused),
        );
        self.dials_queued
            .inc_by(after.dials_queued.saturating_sub(before.dials_queued));
        self.peers_evicted
            .inc_by(after.peers_evicted.saturating_sub(before.peers_evicted));
        let d = |a: u64, b: u64| b.saturating_sub(a);
        self.sync_via_accept_success
            .inc_by(d(before.sync_accept_ok, after.sync_accept_ok));
        self.sync_via_accept_failure
            .inc_by(d(before.sync_accept_failed, after.sync_accept_failed));
        self.sync_via_connect_success
            .inc_by(d(before.sync_connect_ok, after.sync_connect_ok));
        self.sync_via_connect_failure
            .inc_by(d(before.sync_connect_failed, after.sync_connect_failed));
        self.sync_entries_received
            .inc_by(d(before.entries_received_sync, after.entries_received_sync));
        self.sync_entries_sent
            .inc_by(d(before.entries_sent_sync, after.entries_sent_sync));
        self.sync_v2_rounds
            .inc_by(d(before.v2_rounds, after.v2_rounds));
        self.sync_v2_v1_answers
            .inc_by(d(before.v2_v1_only, after.v2_v1_only));
        self.sync_v2_crossed
            .inc_by(d(before.v2_crossed, after.v2_crossed));
        self.gossip_decode_errors
            .inc_by(d(before.gossip_decode_errors, after.gossip_decode_errors));
        self.gossip_puts_refused
            .inc_by(d(before.gossip_puts_refused, after.gossip_puts_refused));
        self.gossip_dropped
            .inc_by(d(before.gossip_dropped, after.gossip_dropped));
        self.sync_retries
            .inc_by(d(before.retries_scheduled, after.retries_scheduled));
        self.downloads_ok
            .inc_by(d(before.downloads_ok, after.downloads_ok));
        self.downloads_failed
            .inc_by(d(before.downloads_failed, after.downloads_failed));
        self.download_retries
            .inc_by(d(before.download_retries, after.download_retries));
        self.anti_entropy_rounds
            .inc_by(d(before.anti_entropy_rounds, after.anti_entropy_rounds));
        self.anti_entropy_skipped
            .inc_by(d(before.anti_entropy_skipped, after.anti_entropy_skipped));
        self.anti_entropy_deferred
            .inc_by(d(before.anti_entropy_deferred, after.anti_entropy_deferred));
    }
}
