//! [`Fragile`]: makes a node's `MemBackend` panic in `put` once armed, the way a bug or a
//! broken disk driver would fail its store thread.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use sheaf_core::store::{Call, MemBackend, Observer, Tap};

/// The switch of a fragile backend; clones share it.
#[derive(Debug, Clone, Default)]
pub struct Fragile {
    armed: Arc<AtomicBool>,
}

impl Fragile {
    /// From now on, the next `put` panics.
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// A `MemBackend` that breaks when this switch is armed.
    pub fn backend(&self) -> Tap<MemBackend, Fragile> {
        Tap::new(MemBackend::new(), self.clone())
    }
}

impl Observer for Fragile {
    fn before(&mut self, call: Call) {
        if call == Call::Put {
            assert!(!self.armed.load(Ordering::SeqCst), "the backend broke");
        }
    }
}
