//! The scan of a document for content missing from the blob store.
//!
//! Content that went missing before a restart is only on disk, not in [`super::Downloads`]'
//! memory, so the first sync of a document in a process pages through its entries to find
//! it. The scan runs once per document and process: a later `StartSync` of the same document
//! neither restarts it nor adds its pages to the store queue, where every page delays the
//! sync's own store work. A scan interrupted by leaving the document resumes at its cursor on
//! the next `StartSync`; a scan that found more missing hashes than the download tracker
//! keeps runs again on the next `StartSync`, whether the document is still synced or not.
//!
//! A page the store fails to read is read again, at the same cursor, when the next sync
//! session ends (as a held page is, below): the content it would find is fetched from the
//! peers met in syncs anyway, and a store that keeps failing costs one read per session, never
//! a loop. (Found by the simulator's `store-fail` family: a failed first page after a restart
//! used to drop the scan until the next `StartSync` *opened* the document, which never came
//! for a document that stayed synced, and the content missing before the crash was never
//! fetched.)
//!
//! While a sync session runs, the scan holds its next page until a session ends: the store
//! runs commands in order, so a page read between two messages of a sync delays that sync by
//! a page's worth of store reads. Each session that ends releases one page of every held
//! scan, so a node that is always syncing something still finishes its scans.

use std::collections::BTreeMap;

use super::{Cont, Live};
use crate::{keys::NamespaceId, replica::StoreCommand, store::query::QueryCursor};

#[derive(Debug)]
enum Scan {
    /// A page is being read. `dropped` is the tracker's drop count when the scan started.
    Running { dropped: u64 },
    /// Stopped while the document was not synced (`None`: before its first page).
    Paused {
        cursor: Option<QueryCursor>,
        dropped: u64,
    },
    /// Waiting for a sync session to end before reading the page at `cursor` (`None`: the
    /// first page, which failed).
    Held {
        cursor: Option<QueryCursor>,
        dropped: u64,
    },
    /// Every entry was checked.
    Done,
}

/// Missing-content scans per document.
#[derive(Debug, Default)]
pub(super) struct ContentScans {
    scans: BTreeMap<NamespaceId, Scan>,
}

impl ContentScans {
    /// At a `StartSync`: `Some(cursor)` when a page must be read (from the start when the
    /// cursor is `None`), `None` when the scan runs or is done.
    pub(super) fn start(
        &mut self,
        ns: NamespaceId,
        dropped_now: u64,
    ) -> Option<Option<QueryCursor>> {
        match self.scans.remove(&ns) {
            None => {
                self.scans.insert(
                    ns,
                    Scan::Running {
                        dropped: dropped_now,
                    },
                );
                Some(None)
            }
            Some(Scan::Paused { cursor, dropped }) => {
                self.scans.insert(ns, Scan::Running { dropped });
                Some(cursor)
            }
            Some(scan) => {
                self.scans.insert(ns, scan);
                None
            }
        }
    }

    /// A page was read. Returns the cursor of the next page to read, if the scan goes on
    /// now: only while the document is synced, and no sync session runs (`hold`).
    pub(super) fn page(
        &mut self,
        ns: NamespaceId,
        next: Option<QueryCursor>,
        syncing: bool,
        hold: bool,
        dropped_now: u64,
    ) -> Option<QueryCursor> {
        let dropped = match self.scans.get(&ns) {
            Some(Scan::Running { dropped }) => *dropped,
            _ => dropped_now,
        };
        match next {
            Some(cursor) if syncing && hold => {
                let cursor = Some(cursor);
                self.scans.insert(ns, Scan::Held { cursor, dropped });
                None
            }
            Some(cursor) if syncing => {
                self.scans.insert(ns, Scan::Running { dropped });
                Some(cursor)
            }
            Some(cursor) => {
                let cursor = Some(cursor);
                self.scans.insert(ns, Scan::Paused { cursor, dropped });
                None
            }
            // Some missing hashes were not kept: look for them again next time.
            None if dropped_now > dropped => {
                self.scans.remove(&ns);
                None
            }
            None => {
                self.scans.insert(ns, Scan::Done);
                None
            }
        }
    }

    /// A sync session ended: every held scan reads its next page, or pauses when its
    /// document is no longer synced. Returns the pages to read, in document order.
    pub(super) fn release(
        &mut self,
        syncing: impl Fn(&NamespaceId) -> bool,
    ) -> Vec<(NamespaceId, Option<QueryCursor>)> {
        let mut pages = Vec::new();
        for (ns, scan) in self.scans.iter_mut() {
            if let Scan::Held { cursor, dropped } = scan {
                let (cursor, dropped) = (cursor.clone(), *dropped);
                if syncing(ns) {
                    *scan = Scan::Running { dropped };
                    pages.push((*ns, cursor));
                } else {
                    *scan = Scan::Paused { cursor, dropped };
                }
            }
        }
        pages
    }

    /// Scans reading a page or waiting to.
    #[cfg(any(test, feature = "fuzzing", feature = "invariants"))]
    pub(super) fn running(&self) -> usize {
        self.scans
            .values()
            .filter(|s| matches!(s, Scan::Running { .. } | Scan::Held { .. }))
            .count()
    }

    /// The page at `cursor` failed: it is read again when a sync session ends.
    pub(super) fn failed(
        &mut self,
        ns: NamespaceId,
        cursor: Option<QueryCursor>,
        dropped_now: u64,
    ) {
        let dropped = match self.scans.get(&ns) {
            Some(Scan::Running { dropped }) => *dropped,
            _ => dropped_now,
        };
        self.scans.insert(ns, Scan::Held { cursor, dropped });
    }
}

impl Live {
    /// A session ended: held missing-content scans read their next page.
    pub(super) fn release_scans(&mut self) {
        if self.shutting_down {
            return;
        }
        let states = &self.states;
        for (ns, cursor) in self.scans.release(|ns| states.is_syncing(ns)) {
            self.read_scan_page(ns, cursor);
        }
    }

    /// Asks the store for the page of `ns`'s missing-content scan at `cursor`.
    pub(super) fn read_scan_page(&mut self, namespace: NamespaceId, cursor: Option<QueryCursor>) {
        self.store(
            StoreCommand::MissingContent {
                namespace,
                cursor: cursor.clone(),
            },
            Cont::MissingContent {
                ns: namespace,
                cursor,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn ns() -> NamespaceId {
        NamespaceId::from_bytes([7; 32])
    }

    #[test]
    pub(super) fn a_scan_runs_once() {
        let mut s = ContentScans::default();
        assert_eq!(s.start(ns(), 0), Some(None));
        assert_eq!(s.start(ns(), 0), None, "already running");
        assert_eq!(s.page(ns(), None, true, false, 0), None);
        assert_eq!(s.start(ns(), 0), None, "done");
    }

    #[test]
    pub(super) fn a_failed_or_lossy_scan_runs_again() {
        let mut s = ContentScans::default();
        s.start(ns(), 0);
        s.failed(ns(), None, 0);
        assert_eq!(s.start(ns(), 0), None, "held for the next session end");
        assert_eq!(
            s.release(|_| true),
            vec![(ns(), None)],
            "the failed page again"
        );
        let cursor = QueryCursor::at_start();
        s.page(ns(), Some(cursor.clone()), true, false, 0);
        s.failed(ns(), Some(cursor.clone()), 0);
        assert_eq!(s.release(|_| true), vec![(ns(), Some(cursor))]);
        assert_eq!(s.page(ns(), None, true, false, 3), None);
        assert_eq!(s.start(ns(), 3), Some(None), "3 hashes were dropped");
    }

    #[test]
    pub(super) fn a_scan_waits_for_sync_sessions_to_end() {
        let mut s = ContentScans::default();
        let cursor = QueryCursor::at_start();
        s.start(ns(), 0);
        assert_eq!(s.page(ns(), Some(cursor.clone()), true, true, 0), None);
        assert_eq!(s.start(ns(), 0), None, "held, not restarted");
        assert_eq!(s.release(|_| true), vec![(ns(), Some(cursor.clone()))]);
        assert_eq!(s.release(|_| true), vec![], "released once");
        assert_eq!(
            s.page(ns(), Some(cursor.clone()), true, false, 0),
            Some(cursor.clone()),
            "no session: the next page at once"
        );
        // Held, then the document is left before a session ends: paused, resumed by a sync.
        s.page(ns(), Some(cursor.clone()), true, true, 0);
        assert_eq!(s.release(|_| false), vec![]);
        assert_eq!(s.start(ns(), 0), Some(Some(cursor)));
        // A failed page of a document left before a session ends resumes there too.
        s.failed(ns(), None, 0);
        assert_eq!(s.release(|_| false), vec![]);
        assert_eq!(s.start(ns(), 0), Some(None));
    }
}
