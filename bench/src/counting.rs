//! A `Backend` wrapper that counts calls and entries read, to show how backend work scales.
//!
//! Range fingerprints, counts and pivots are answered by the fingerprint index (`Indexed`)
//! above the backend, so they cost no backend call: what is counted is row access (`get`,
//! scans, writes), i.e. the work a disk-backed store does.

use sheaf_core::store::{Call, Observer, Tap};

/// Counts every call into the wrapped backend and every entry it returns.
pub type Counting<S> = Tap<S, Counts>;

/// Calls made and entries returned.
#[derive(Debug, Default)]
pub struct Counts {
    /// Calls made.
    pub calls: u64,
    /// Entries returned.
    pub entries: u64,
}

impl Counts {
    /// Resets the counters.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

impl Observer for Counts {
    fn before(&mut self, _call: Call) {
        self.calls += 1;
    }
    fn entries(&mut self, call: Call, entries: usize) {
        // A removal reads nothing a sync asks for.
        if call != Call::Remove {
            self.entries += entries as u64;
        }
    }
}
