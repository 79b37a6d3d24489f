//! `sheaf-bench`: side-by-side benchmarks of Sheaf and iroh-docs 0.101.
//!
//! Each workload runs on both implementations in the same process, on the same data, and
//! prints one JSON line per (implementation, workload, parameters, repetition) followed by a
//! table. Speed is reported here, never asserted in tests.
//!
//! Workloads so far: in-process reconciliation (`reconcile`), no network.

pub mod counting;
pub mod reconcile;

/// One measurement, printed as a JSON line.
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
    /// Bytes exchanged (encoded messages).
    pub bytes: usize,
    /// Store calls made (Sheaf only; iroh-docs' store is not instrumented).
    pub store_calls: Option<u64>,
    /// Entries read from the store (Sheaf only).
    pub entries_read: Option<u64>,
}

impl Row {
    /// The row as one JSON object.
    pub fn json(&self) -> String {
        let opt = |v: Option<u64>| v.map_or("null".to_string(), |v| v.to_string());
        format!(
            "{{\"impl\":\"{}\",\"workload\":\"{}\",\"n\":{},\"diff\":{},\"rep\":{},\"millis\":{:.3},\"messages\":{},\"bytes\":{},\"store_calls\":{},\"entries_read\":{}}}",
            self.implementation,
            self.workload,
            self.n,
            self.diff,
            self.rep,
            self.millis,
            self.messages,
            self.bytes,
            opt(self.store_calls),
            opt(self.entries_read)
        )
    }
}
