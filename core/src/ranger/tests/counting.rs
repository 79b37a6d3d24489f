//! [`Counting`]: a [`Tap`] that counts the entries its range scans by author and key return
//! (the scans `Indexed` reads ranges with), which is what the range budget bounds.

use crate::store::{Call, Observer, Tap};

/// `B`, counting in `observer.reads` the entries `scan_author_key` returned.
pub(super) type Counting<B> = Tap<B, Reads>;

/// Entries returned by `scan_author_key` so far.
#[derive(Debug, Default)]
pub(super) struct Reads {
    pub(super) reads: usize,
}

impl Observer for Reads {
    fn entries(&mut self, call: Call, entries: usize) {
        if call == Call::ScanAuthorKey {
            self.reads += entries;
        }
    }
}
