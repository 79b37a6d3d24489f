//! Results: one JSON line per measurement, a table of medians with the iroh-docs / Sheaf
//! ratio, and `RESULTS.md` with the table, the machine and every JSON line.
//!
//! Every metric in the table is "lower is better" (milliseconds, bytes per floor byte), so
//! the ratio iroh-docs / Sheaf reads the same way everywhere: above 1, Sheaf is that many
//! times faster (or smaller); below 1, slower. Medians are over the repetitions that
//! completed: a repetition that timed out carries only the metrics it reached (W3's entries
//! time when its content stalled, say), and the table counts, per metric, how many
//! repetitions reached it.

use std::{collections::BTreeMap, fmt::Write as _, process::Command};

use serde::Serialize;

/// One measurement: an (implementation, workload, parameters, repetition).
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// `sheaf` or `iroh-docs`.
    #[serde(rename = "impl")]
    pub imp: &'static str,
    /// `W1` … `W8`.
    pub workload: &'static str,
    /// Parameters, e.g. `n`, `store`.
    pub params: BTreeMap<&'static str, serde_json::Value>,
    /// Repetition index.
    pub rep: usize,
    /// Measured values.
    pub metrics: BTreeMap<&'static str, f64>,
    /// `ok`, or `timeout` with whatever partial metrics were measured.
    pub status: &'static str,
}

impl Record {
    /// A record with no metrics yet, status `ok`.
    pub fn new(imp: &'static str, workload: &'static str, rep: usize) -> Self {
        Self {
            imp,
            workload,
            params: BTreeMap::new(),
            rep,
            metrics: BTreeMap::new(),
            status: "ok",
        }
    }

    /// Adds a parameter.
    pub fn param(mut self, name: &'static str, value: impl Into<serde_json::Value>) -> Self {
        self.params.insert(name, value.into());
        self
    }

    /// Sets a metric.
    pub fn set(&mut self, name: &'static str, value: f64) {
        self.metrics.insert(name, value);
    }

    /// The record as one JSON line.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn params_text(&self) -> String {
        self.params
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                v => format!("{k}={v}"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The metrics of a workload that the table compares, each "lower is better".
pub fn headline(workload: &str) -> &'static [&'static str] {
    match workload {
        "W3" => &["entries_ms", "content_ms"],
        "W6" => &["p50_ms", "p95_ms"],
        "W4" | "W5" => &["ms", "first_ms"],
        "W7" => &["wire_per_floor"],
        "W9" => &["p50_ms", "sync_ms"],
        "W10" | "W10v2" => &["ms", "link_bytes", "flights"],
        "W11" => &["ms", "bytes", "cpu_s"],
        "W11v2" => &["ms", "round_ms", "bytes", "cpu_s"],
        "W12" | "W12D" => &[
            "first_ms",
            "ms",
            "diff_ms",
            "bytes_per_entry",
            "peak_mb",
            "growth_mb",
        ],
        "idle" => &["cpu_pct_two_nodes", "rss_mb_two_nodes"],
        _ => &["ms"],
    }
}

/// What each workload aims at, as printed beside the ratio.
fn target(workload: &str, params: &str, metric: &str) -> &'static str {
    match (workload, metric) {
        ("W4" | "W5", "ms") if params.contains("n=100000") => "≥10×",
        ("W3", "entries_ms") => "≥2×",
        ("W3", "content_ms") => "all runs complete, ≤2× entries",
        ("W1", _) if params.contains("persistent") => "≥2×",
        ("W6", "p50_ms") => "≥1×",
        ("W7", _) => "Sheaf ≤1.3 (of floor)",
        _ => "",
    }
}

/// The median of `values` (sorted copy); `None` if empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

/// How the ratio iroh-docs / Sheaf reads, for lower-is-better metrics.
pub fn ratio_text(sheaf: Option<f64>, iroh: Option<f64>) -> String {
    match (sheaf, iroh) {
        (Some(s), Some(i)) if s > 0.0 && i > 0.0 => {
            let r = i / s;
            if r >= 1.0 {
                format!("Sheaf {r:.2}× faster/smaller")
            } else {
                format!("Sheaf {:.2}× slower/larger", 1.0 / r)
            }
        }
        (Some(_), None) => "iroh-docs did not complete".to_string(),
        (None, Some(_)) => "Sheaf did not complete".to_string(),
        _ => "-".to_string(),
    }
}

fn fmt_value(v: Option<f64>) -> String {
    match v {
        None => "-".to_string(),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 1.0 => format!("{v:.2}"),
        Some(v) => format!("{v:.4}"),
    }
}

/// The table: medians per (workload, parameters, metric) for each implementation, completed
/// repetitions over all, and the ratio.
pub fn table(records: &[Record]) -> String {
    // (workload, params) in first-seen order.
    let mut groups: Vec<(&'static str, String)> = Vec::new();
    for r in records {
        let key = (r.workload, r.params_text());
        if !groups.contains(&key) {
            groups.push(key);
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| workload | params | metric | Sheaf (median) | iroh-docs (median) | Sheaf ok | iroh-docs ok | iroh-docs / Sheaf | target |"
    );
    let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|---|---|");
    for (workload, params) in groups {
        let of = |imp: &str| -> Vec<&Record> {
            records
                .iter()
                .filter(|r| r.workload == workload && r.imp == imp && r.params_text() == params)
                .collect()
        };
        let (sheaf, iroh) = (of("sheaf"), of("iroh-docs"));
        for metric in headline(workload) {
            let values = |rs: &[&Record]| -> Vec<f64> {
                rs.iter()
                    .filter_map(|r| r.metrics.get(metric).copied())
                    .collect()
            };
            let (sv, iv) = (values(&sheaf), values(&iroh));
            let (sm, im) = (median(&sv), median(&iv));
            let _ = writeln!(
                out,
                "| {workload} | {params} | {metric} | {} | {} | {}/{} | {}/{} | {} | {} |",
                fmt_value(sm),
                fmt_value(im),
                sv.len(),
                sheaf.len(),
                iv.len(),
                iroh.len(),
                if iroh.is_empty() {
                    "Sheaf only".to_string()
                } else {
                    ratio_text(sm, im)
                },
                target(workload, &params, metric),
            );
        }
    }
    out
}

fn run(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A description of the machine: cores, CPU model, memory, OS, rustc, date, git commit.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown".to_string(), |s| s.trim().to_string());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or("unknown".to_string(), |kb| {
            format!("{:.1} GiB", kb as f64 / 1048576.0)
        });
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("PRETTY_NAME=")).map(|l| {
                l.trim_start_matches("PRETTY_NAME=")
                    .trim_matches('"')
                    .to_string()
            })
        })
        .unwrap_or_else(|| "unknown".to_string());
    let unknown = || "unknown".to_string();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "- cores (nproc): {}",
        run("nproc", &[]).unwrap_or_else(unknown)
    );
    let _ = writeln!(out, "- CPU: {cpu}");
    let _ = writeln!(out, "- memory: {mem}");
    let _ = writeln!(
        out,
        "- OS: {os}, kernel {}",
        run("uname", &["-r"]).unwrap_or_else(unknown)
    );
    let _ = writeln!(
        out,
        "- rustc: {}",
        run("rustc", &["--version"]).unwrap_or_else(unknown)
    );
    let _ = writeln!(
        out,
        "- date: {}",
        run("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_else(unknown)
    );
    let _ = writeln!(
        out,
        "- git commit: {}",
        run("git", &["rev-parse", "--short", "HEAD"]).unwrap_or_else(unknown)
    );
    out
}

/// How each workload is measured, for `RESULTS.md`.
const METHOD: &str = "\
- **W1** local insert: `N` sequential `set_bytes` (32-byte values, distinct keys) on one node, \
documents and blobs in memory or on disk (`Docs::persistent`, iroh-blobs file store).
- **W1M** W1's writes handed over at once: Sheaf's `set_many` (batches of 1,024); iroh-docs has no batch API, so its row runs `set_bytes` with 1,024 calls in flight.
- **W2** `get_many(single_latest_per_key)` over a persistent document of `N` entries (two \
authors per key), collected completely; the document is written into the store file \
beforehand and opened before timing.
- **W3** initial sync: a node whose document holds `N` entries (same signed entries for both \
implementations, content in its blob store) and an empty node that imports the namespace and \
calls `start_sync` with the first node's address. `entries_ms`: until the empty node holds all \
`N` entries; `content_ms`: until it reported `ContentReady` for all `N` values.
- **W5** no-op sync: two nodes open copies of the same `N`-entry document. `first_ms`: from \
`start_sync` to the dialing node's `SyncFinished`, right after the nodes started (Sheaf builds \
its in-memory fingerprint index during this first sync); `ms`: a second `start_sync` on the \
same running nodes.
- **W4** diff sync: after that first sync both leave the swarm and each writes 1% new \
entries (`set_bytes`); then one calls `start_sync` again; `ms` until both received the \
other's new entries. `first_ms` is the first (no-op) sync, as in W5.
- **W6** live latency: `nodes` nodes join one document (and have gossip neighbours); one \
node writes, the others time `InsertRemote` of that key; p50/p95 over all (write, receiver) pairs.
- **W7** bytes on the wire: W3 without content download; the UDP bytes the empty node's \
endpoint sent and received from `start_sync` until it held all entries and the sync \
finished (QUIC packets including headers, handshake, acks and the gossip join, which is idle \
otherwise), divided by the floor: the sum of the encoded sizes of the `N` entries it lacked.
- **W8** in-process reconciliation, no network: two stores of `n` entries that differ in \
`diff`, exchanging encoded messages until done (Sheaf: redb in memory, default split policy).
- **W9** under attack: W6's live latency (`p50_ms`, 2 nodes, writes on the honest node timed until the attacked node's `InsertRemote`) and W5's no-op sync (`sync_ms`, the honest node dials the attacked one) with no attack, with a forged-`Put` gossip flood from a rogue node (`flood`), and with 500 connections that never send `Init` (`idle`); the degradation ratio is each attack's median over the same implementation's `none`.
- **W10** diff sync over a slow link: W4 through the userspace link emulator (`bench/src/link.rs`, a UDP relay with one-way delay and loss per direction) at round-trip time `rtt_ms` and loss `loss_pct`; `ms` until both nodes hold the other's `new_per_side` entries, `round_trips` from Sheaf's `SyncFinished`, `link_bytes` and `flights` (bursts of packets) counted by the link. W3 and W6 with an `rtt_ms` parameter ran over the same link.
- **W10v2** the same diff sync with sync v2 (Sheaf only): both nodes take the document up without a peer, B calls `sync_all` with A once; `sync_ms` is that round, no `round_trips` (`flights / 2` estimates them).
- **W11** many documents: two persistent nodes share `docs` documents; one stops, the other changes `changed` of them, the first restarts and calls `start_sync` with its peer for every document; `ms` until all changes arrived, UDP bytes of the restarted node, CPU of the process. Sheaf's live engine syncs over v2 (its default) unless the run has `SHEAF_BENCH_SYNC_V2=0`.
- **W11v2** the same with sync v2 (Sheaf only): the restarted node takes every document up without a peer (`resume_ms`), then calls `sync_all` with the peer once (`round_ms`: dial, phase 1 and the differing documents); `ms` from the restart until all changes arrived, as in W11; `differing` is the documents the round reconciled.
- **W12** large nodes, each run in a fresh child process: `shape=pair` opens copies of an `N`-entry document on two nodes and syncs twice (`first_ms` right after opening, `ms` no-op), then once more after one node wrote an entry apart (`diff_ms`: the first sync that finds a difference); `bytes_per_entry` is the growth of resident memory over the syncs divided by the `2N` entries held. **W12D** (`shape=docs`): for each of `docs` documents of `N` entries in turn, one node writes one entry, the other syncs with it (a first sync with a difference, which needs the index on both), then a no-op sync, then both close it; `first_ms`/`ms` are medians over documents, `peak_mb` the process's peak RSS (two nodes), `growth_mb` that peak less the RSS after start-up; Sheaf's nodes run with a 24 MiB memory budget each.
- **idle**: two Sheaf nodes sharing `docs` documents with `sheaf serve`'s anti-entropy (every 30 s) or without; the process's CPU over one minute after 45 s to settle, and its RSS growth.
";

/// `RESULTS.md`: how it was run, the machine, the table and all JSON lines.
pub fn results_md(command: &str, records: &[Record], elapsed_secs: f64) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Sheaf vs iroh-docs 0.101 — benchmark results\n");
    let _ = writeln!(
        out,
        "Produced by `{command}` in {:.0} s. Both implementations run in the same process, \
         one after the other, with the same parameters, over loopback iroh endpoints \
         (`127.0.0.1`, no relay).\n",
        elapsed_secs
    );
    let _ = writeln!(out, "## Machine\n\n{}", machine());
    let _ = writeln!(out, "## Workloads\n\n{METHOD}");
    let _ = writeln!(
        out,
        "## Results\n\nMedians over completed repetitions; \"ok\" counts completed repetitions \
         of all. Ratio = iroh-docs median / Sheaf median of a lower-is-better metric: above 1, \
         Sheaf is faster (or smaller). Targets are reported, never asserted.\n"
    );
    let _ = writeln!(out, "{}", table(records));
    let _ = writeln!(out, "## All measurements (JSON lines)\n\n```json");
    for r in records {
        let _ = writeln!(out, "{}", r.json());
    }
    let _ = writeln!(out, "```");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn ratio_reads_in_sheafs_direction() {
        assert_eq!(
            ratio_text(Some(10.0), Some(100.0)),
            "Sheaf 10.00× faster/smaller"
        );
        assert_eq!(
            ratio_text(Some(100.0), Some(50.0)),
            "Sheaf 2.00× slower/larger"
        );
        assert_eq!(ratio_text(Some(1.0), None), "iroh-docs did not complete");
    }

    #[test]
    fn table_uses_completed_runs_only() {
        let mut a = Record::new("sheaf", "W5", 0).param("n", 100);
        a.set("ms", 2.0);
        let mut b = Record::new("iroh-docs", "W5", 0).param("n", 100);
        b.set("ms", 20.0);
        let mut c = Record::new("iroh-docs", "W5", 1).param("n", 100);
        c.set("entries", 5.0);
        c.status = "timeout";
        let t = table(&[a, b, c]);
        assert!(
            t.contains(
                "| W5 | n=100 | ms | 2.00 | 20.00 | 1/1 | 1/2 | Sheaf 10.00× faster/smaller |"
            ),
            "{t}"
        );
    }
}
