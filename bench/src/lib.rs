//! `sheaf-bench`: side-by-side benchmarks of Sheaf and iroh-docs 0.101.
//!
//! Each workload runs on both implementations in the same process, one after the other, with
//! the same parameters and, where a workload starts from existing data, the very same signed
//! entries. Nodes are real iroh endpoints on loopback ([`nodes`]). Every measurement becomes
//! one JSON line ([`report::Record`]) as soon as it is taken; at the end a table compares the
//! medians and `RESULTS.md` records the run and the machine. Speed is reported, never
//! asserted: a stalled implementation is recorded as `timeout`, not a failure.
//!
//! Workloads: W1/W2 local insert and query, W1M local inserts through the batch API
//! ([`w_local`]); W3 initial sync, W4 diff sync, W5
//! no-op sync, W7 bytes on the wire ([`w_sync`]); W6 live latency ([`w_live`]); W8
//! in-process reconciliation without network ([`reconcile`]); W9 W5 and W6 under attack
//! ([`w_attack`]); W10 diff sync, W3 and W6 over a slow link ([`w_slow`], through the
//! userspace link emulator [`link`]); W11 and the idle cost of many documents ([`w_many`]);
//! W12 memory and large nodes ([`w_memory`]).

pub mod counting;
pub mod data;
pub mod link;
pub mod neg;
pub mod nodes;
pub mod reconcile;
pub mod report;
pub mod w_attack;
pub mod w_live;
pub mod w_local;
pub mod w_many;
pub mod w_memory;
pub mod w_slow;
pub mod w_sync;

use std::io::Write as _;

/// Collects records, printing each as a JSON line the moment it is pushed.
#[derive(Debug, Default)]
pub struct Out {
    /// Everything measured so far.
    pub records: Vec<report::Record>,
}

impl Out {
    /// Prints `rec` as a JSON line on stdout and keeps it.
    pub fn push(&mut self, rec: report::Record) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{}", rec.json());
        let _ = stdout.flush();
        self.records.push(rec);
    }
}

/// A progress note on stderr.
pub fn progress(msg: &str) {
    eprintln!("[sheaf-bench] {msg}");
}

/// One measurement of the `reconcile` subcommand, printed as a JSON line.
#[derive(Debug, Clone)]
pub struct Row {
    /// `sheaf-mem`, `sheaf-redb` or `iroh-docs`.
    pub implementation: &'static str,
    /// Workload name.
    pub workload: &'static str,
    /// Entries per side.
    pub n: usize,
    /// Differences between the sides.
    pub diff: usize,
    /// Repetition index.
    pub rep: usize,
    /// Wall time in milliseconds.
    pub millis: f64,
    /// Messages exchanged.
    pub messages: usize,
    /// Round trips: one-way flights / 2, rounded up. For the alternating iroh-docs protocol
    /// every message is a flight; negentropy adds the entry transfer ([`crate::neg`]).
    pub round_trips: usize,
    /// Bytes exchanged (encoded messages).
    pub bytes: usize,
    /// Backend calls made (Sheaf only; iroh-docs' store is not instrumented). Range
    /// fingerprints, counts and pivots come from the index above the backend and cost none.
    pub store_calls: Option<u64>,
    /// Entries read from the backend (Sheaf only).
    pub entries_read: Option<u64>,
}

impl Row {
    /// The row as one JSON object.
    pub fn json(&self) -> String {
        let opt = |v: Option<u64>| v.map_or("null".to_string(), |v| v.to_string());
        format!(
            "{{\"impl\":\"{}\",\"workload\":\"{}\",\"n\":{},\"diff\":{},\"rep\":{},\"millis\":{:.3},\"messages\":{},\"round_trips\":{},\"bytes\":{},\"store_calls\":{},\"entries_read\":{}}}",
            self.implementation,
            self.workload,
            self.n,
            self.diff,
            self.rep,
            self.millis,
            self.messages,
            self.round_trips,
            self.bytes,
            opt(self.store_calls),
            opt(self.entries_read)
        )
    }

    /// The row as a W8 record, if it is one of the two compared configurations (Sheaf on redb
    /// with its default split policy, or iroh-docs).
    pub fn w8(&self) -> Option<report::Record> {
        let imp = match self.implementation {
            "sheaf-redb" => "sheaf",
            "iroh-docs" => "iroh-docs",
            _ => return None,
        };
        let mut rec = report::Record::new(imp, "W8", self.rep)
            .param("n", self.n)
            .param("diff", self.diff);
        rec.set("ms", self.millis);
        rec.set("messages", self.messages as f64);
        rec.set("round_trips", self.round_trips as f64);
        rec.set("bytes", self.bytes as f64);
        Some(rec)
    }
}
