//! Results of runs: per seed ([`SeedReport`]) and the summary table over many.

use std::{collections::BTreeMap, fmt};

use crate::{
    byzantine::ByzStats,
    config::{SimConfig, SEC},
    world::Defences,
};

/// What kind of check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The world could not be built.
    Setup,
    /// A safety invariant (including a bound) was violated.
    Safety,
    /// The members did not converge within the bound.
    Liveness,
    /// A state machine (or the simulator) panicked.
    Panic,
    /// Two runs of the same seed produced different traces.
    Determinism,
}

/// A failed run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Which check.
    pub kind: FailureKind,
    /// Virtual time, µs.
    pub at: u64,
    /// Why, for humans.
    pub reason: String,
    /// What each running node's `Live` was still waiting for (`Live::pending`), one line per
    /// node; empty when no node was running.
    pub pending: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            FailureKind::Setup => "setup",
            FailureKind::Safety => "safety",
            FailureKind::Liveness => "liveness",
            FailureKind::Panic => "panic",
            FailureKind::Determinism => "determinism",
        };
        write!(
            f,
            "{kind} failure at {:.3}s: {}",
            self.at as f64 / SEC as f64,
            self.reason
        )
    }
}

/// What sync v2 did in one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct V2Counts {
    /// Rounds run (dialed to a v2 node).
    pub rounds: u64,
    /// Documents they reconciled, counted on both ends.
    pub docs: u64,
    /// Rounds dialed to a v1-only node.
    pub v1_answers: u64,
    /// Connections closed with an error code.
    pub failed: u64,
    /// Rounds refused because both nodes dialed each other at once (the tie-break).
    pub crossed: u64,
}

/// The outcome of one seed.
#[derive(Debug, Clone)]
pub struct SeedReport {
    /// What ran.
    pub config: SimConfig,
    /// The drawn parameters, printable.
    pub params: String,
    /// Events handled.
    pub events: u64,
    /// Virtual time at the end, µs.
    pub virtual_micros: u64,
    /// Virtual time from heal to convergence, µs.
    pub converged_after: Option<u64>,
    /// Dialed syncs that completed.
    pub syncs_ok: u64,
    /// Dialed syncs that failed.
    pub syncs_failed: u64,
    /// Completed dialed syncs by round trips (histogram: round trips → syncs).
    pub sync_round_trips: BTreeMap<u64, u64>,
    /// Completed dialed syncs by virtual milliseconds from dial to end (histogram).
    pub sync_millis: BTreeMap<u64, u64>,
    /// Bytes of sync frames, gossip messages and blobs moved.
    pub bytes: u64,
    /// Largest global event queue.
    pub largest_queue: usize,
    /// Largest store backlog of a node.
    pub largest_store_backlog: usize,
    /// Largest `Live::store_backlog` of a node, and its bound then.
    pub largest_live_backlog: (usize, usize),
    /// Entries stored over all nodes at the end.
    pub entries: usize,
    /// Workload operations performed and skipped.
    pub ops: (u64, u64),
    /// Crashes that happened.
    pub crashes: u64,
    /// The trace hash.
    pub trace_hash: String,
    /// Trace records.
    pub trace_records: u64,
    /// Why it failed, if it did.
    pub failure: Option<Failure>,
    /// Problems tolerated by the configuration.
    pub warnings: Vec<String>,
    /// Per document at convergence: members, and entries each of them holds.
    pub converged_docs: Vec<(usize, usize)>,
    /// Whether the run stopped at its event cap before converging (liveness not judged).
    pub capped: bool,
    /// What the byzantine node did (zero without the family).
    pub byzantine: ByzStats,
    /// Store faults injected: commands failed, commits failed, long stalls.
    pub store_faults: (u64, u64, u64),
    /// Sync v2 in this run.
    pub v2: V2Counts,
    /// What the honest nodes refused or dropped.
    pub defences: Defences,
}

impl SeedReport {
    /// Whether every check passed.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }

    /// One line about the run.
    pub fn line(&self) -> String {
        let status = match &self.failure {
            None if self.capped => {
                "ok so far, stopped at the event cap before converging".to_string()
            }
            None if self.warnings.is_empty() => format!(
                "ok, converged {} after the heal",
                fmt_secs(self.converged_after.unwrap_or(0))
            ),
            None => format!(
                "ok with {} warnings, converged {} after the heal",
                self.warnings.len(),
                fmt_secs(self.converged_after.unwrap_or(0))
            ),
            Some(f) => format!("FAILED: {f}"),
        };
        let docs: Vec<String> = self
            .converged_docs
            .iter()
            .map(|(m, n)| format!("{n}×{m}"))
            .collect();
        format!(
            "seed {}: {status} | {} events, {} virtual, syncs {}/{} failed ({}), {}, {} entries stored (converged entries×members per document: {}), {} ops ({} skipped), {} crashes",
            self.config.seed,
            self.events,
            fmt_secs(self.virtual_micros),
            self.syncs_ok,
            self.syncs_failed,
            per_sync(&self.sync_round_trips, &self.sync_millis),
            fmt_bytes(self.bytes),
            self.entries,
            if docs.is_empty() { "-".to_string() } else { docs.join(" ") },
            self.ops.0,
            self.ops.1,
            self.crashes,
        )
    }
}

/// The `q`-quantile (nearest rank, 0..=1) of a histogram value → count; `None` if empty.
pub fn hist_quantile(hist: &BTreeMap<u64, u64>, q: f64) -> Option<u64> {
    let total: u64 = hist.values().sum();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (v, n) in hist {
        seen += n;
        if seen >= rank {
            return Some(*v);
        }
    }
    hist.keys().next_back().copied()
}

/// Round trips and virtual time per completed sync: "median/max round trips, median/max ms".
pub fn per_sync(round_trips: &BTreeMap<u64, u64>, millis: &BTreeMap<u64, u64>) -> String {
    let q = |h, q| hist_quantile(h, q).map_or("-".to_string(), |v| v.to_string());
    format!(
        "per sync {}/{} round trips, {}/{} virtual ms (median/max)",
        q(round_trips, 0.5),
        q(round_trips, 1.0),
        q(millis, 0.5),
        q(millis, 1.0)
    )
}

fn merge(into: &mut BTreeMap<u64, u64>, from: &BTreeMap<u64, u64>) {
    for (v, n) in from {
        *into.entry(*v).or_default() += n;
    }
}

/// Seconds with millisecond precision.
pub fn fmt_secs(us: u64) -> String {
    format!("{:.3}s", us as f64 / SEC as f64)
}

/// Bytes in human units.
pub fn fmt_bytes(b: u64) -> String {
    match b {
        0..1_000 => format!("{b} B"),
        1_000..1_000_000 => format!("{:.1} kB", b as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        _ => format!("{:.2} GB", b as f64 / 1e9),
    }
}

/// The summary table over `reports`, each seed run `runs` times (2 with
/// `--check-determinism`). Nothing in it depends on the wall clock (time a run from outside,
/// e.g. with `time`, for throughput).
pub fn summary(reports: &[SeedReport], runs: u64) -> String {
    let failed = reports.iter().filter(|r| !r.ok()).count();
    let events: u64 = reports.iter().map(|r| r.events).sum();
    let virt: u64 = reports.iter().map(|r| r.virtual_micros).sum();
    let ok: u64 = reports.iter().map(|r| r.syncs_ok).sum();
    let bad: u64 = reports.iter().map(|r| r.syncs_failed).sum();
    let bytes: u64 = reports.iter().map(|r| r.bytes).sum();
    let (mut round_trips, mut millis) = (BTreeMap::new(), BTreeMap::new());
    for r in reports {
        merge(&mut round_trips, &r.sync_round_trips);
        merge(&mut millis, &r.sync_millis);
    }
    let queue = reports.iter().map(|r| r.largest_queue).max().unwrap_or(0);
    let backlog = reports
        .iter()
        .map(|r| r.largest_store_backlog)
        .max()
        .unwrap_or(0);
    let (live_backlog, live_bound) = reports
        .iter()
        .map(|r| r.largest_live_backlog)
        .max()
        .unwrap_or((0, 0));
    let sum = |f: &dyn Fn(&SeedReport) -> u64| reports.iter().map(f).sum::<u64>();
    let forged = sum(&|r| r.byzantine.forged);
    let replayed = sum(&|r| r.byzantine.replayed);
    let hostile_sessions = sum(&|r| r.byzantine.sessions);
    let cmds = sum(&|r| r.store_faults.0);
    let commits = sum(&|r| r.store_faults.1);
    let stalls = sum(&|r| r.store_faults.2);
    let dropped = sum(&|r| r.defences.gossip_dropped);
    let refused = sum(&|r| r.defences.puts_refused);
    let sessions_refused = sum(&|r| r.defences.sessions_refused);
    let accepts_failed = sum(&|r| r.defences.accepts_failed);
    let store_errors = sum(&|r| r.defences.store_errors);
    let gossip_stalls = sum(&|r| r.defences.gossip_stalls);
    let bans = sum(&|r| r.defences.gossip_bans);
    let banned_msgs = sum(&|r| r.defences.gossip_banned_msgs);
    let v2_rounds = sum(&|r| r.v2.rounds);
    let v2_docs = sum(&|r| r.v2.docs);
    let v2_v1 = sum(&|r| r.v2.v1_answers);
    let v2_failed = sum(&|r| r.v2.failed);
    let v2_crossed = sum(&|r| r.v2.crossed);
    let rows = [
        (
            "seeds",
            format!(
                "{} ({} passed, {failed} failed)",
                reports.len(),
                reports.len() - failed
            ),
        ),
        (
            "events",
            if runs > 1 {
                format!("{events} per run, {runs} runs")
            } else {
                format!("{events}")
            },
        ),
        ("virtual time", fmt_secs(virt)),
        (
            "syncs",
            format!("{} ({ok} completed, {bad} failed)", ok + bad),
        ),
        ("per sync", {
            let q = |h, q| hist_quantile(h, q).map_or("-".to_string(), |v| v.to_string());
            format!(
                "{}/{}/{} round trips, {}/{}/{} ms (p50/p95/max)",
                q(&round_trips, 0.5),
                q(&round_trips, 0.95),
                q(&round_trips, 1.0),
                q(&millis, 0.5),
                q(&millis, 0.95),
                q(&millis, 1.0)
            )
        }),
        (
            "sync v2",
            format!("{v2_rounds} rounds, {v2_docs} docs, {v2_failed} failed, {v2_crossed} crossed; {v2_v1} to v1 nodes"),
        ),
        ("bytes moved", fmt_bytes(bytes)),
        (
            "largest queue",
            format!("{queue} events (store backlog {backlog})"),
        ),
        (
            "Live backlog",
            format!("{live_backlog} store requests (bound then {live_bound})"),
        ),
        (
            "byzantine",
            format!("{forged} forged, {replayed} replayed puts; {hostile_sessions} sessions"),
        ),
        (
            "store faults",
            format!("{cmds} commands, {commits} commits failed; {stalls} long stalls"),
        ),
        (
            "refused",
            format!("{refused} puts, {sessions_refused} sessions at once"),
        ),
        (
            "dropped",
            format!("{dropped} gossip ops over budget or muted"),
        ),
        ("gossip stalls", format!("{gossip_stalls} reports to Live")),
        (
            "gossip bans",
            format!("{bans} peers cut off, {banned_msgs} msgs refused"),
        ),
        (
            "failed",
            format!("{accepts_failed} accepted sessions, {store_errors} store commands"),
        ),
    ];
    let mut s =
        String::from("+---------------+------------------------------------------------+\n");
    for (k, v) in rows {
        s.push_str(&format!("| {k:<13} | {v:<46} |\n"));
    }
    s.push_str("+---------------+------------------------------------------------+\n");
    s
}
