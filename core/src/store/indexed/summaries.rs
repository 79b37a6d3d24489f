//! The summaries side of [`Indexed`]: each namespace's entry count and fingerprint, kept
//! exact through writes while its chunk list is not loaded, persisted with the flushes that
//! commit its changes (or, deliberately, the ones learnt by building a list) together with
//! the chunk rows they vouch for. See the parent module's docs for the rules.

use std::collections::{BTreeMap, BTreeSet};

use super::Indexed;
use crate::{
    keys::NamespaceId,
    store::{Backend, NamespaceSummary, StoreError},
};

impl<B: Backend> Indexed<B> {
    /// Flushes like [`Backend::flush`], and with `learnt` also writes the summaries learnt by
    /// building lists when no entry changed: an explicit flush or a shutdown commits them, so
    /// the next start answers those documents' first sync without building an index. (The
    /// periodic commit leaves them to a flush with changes: an idle store does not commit.)
    pub fn flush_with(&mut self, learnt: bool) -> Result<(), StoreError> {
        let pending = if learnt || !self.invalidated.is_empty() {
            std::mem::take(&mut self.pending)
        } else {
            BTreeMap::new()
        };
        let mut flushed = Ok(());
        for (ns, summary) in pending {
            flushed = self.persist(ns, summary);
            if flushed.is_err() {
                break;
            }
        }
        if flushed.is_ok() {
            flushed = self.backend.flush();
        }
        self.invalidated.clear();
        if flushed.is_err() {
            self.unload_all();
            self.summaries.clear();
        }
        flushed
    }

    /// Writes the summary of `ns` and, with it, the chunk rows it vouches for. A summary
    /// without a loaded chunk list to write is deleted instead.
    fn persist(
        &mut self,
        ns: NamespaceId,
        summary: Option<NamespaceSummary>,
    ) -> Result<(), StoreError> {
        let rows = match (summary, self.trees.get_mut(&ns)) {
            (Some(_), Some(l)) => Some(l.chunks.take_rows()),
            _ => None,
        };
        match rows {
            Some((clear, rows)) => {
                self.backend.put_chunks(ns, clear, rows.as_slice())?;
                self.backend.put_summary(ns, summary)
            }
            None => self.backend.put_summary(ns, None),
        }
    }

    /// The summary of `ns`: from its chunk list if loaded, else as known or persisted (`None`: not
    /// known without building the list).
    pub(super) fn summary(
        &mut self,
        ns: NamespaceId,
    ) -> Result<Option<NamespaceSummary>, StoreError> {
        if let Some(l) = self.trees.get(&ns) {
            return Ok(Some(l.chunks.total()));
        }
        if let Some(known) = self.summaries.get(&ns) {
            return Ok(*known);
        }
        let stored = self.backend.get_summary(ns)?;
        self.summaries.insert(ns, stored);
        Ok(stored)
    }

    /// Records that the entries of `ns` changed and its summary is now `summary`: deletes the
    /// persisted one in the backend's open transaction (once per flush) and writes the new
    /// one at the next flush.
    pub(super) fn changed(
        &mut self,
        ns: NamespaceId,
        summary: Option<NamespaceSummary>,
    ) -> Result<(), StoreError> {
        if !self.invalidated.contains(&ns) {
            self.backend.put_summary(ns, None)?;
            self.invalidated.insert(ns);
        }
        self.summaries.insert(ns, summary);
        self.pending.insert(ns, summary);
        Ok(())
    }

    /// Drops the list and summary of `ns` after a failed write (rebuilt on next use).
    pub(super) fn failed(&mut self, ns: NamespaceId) {
        self.unload(ns);
        // Best effort: the backend is failing, and the flush deletes it again.
        if self.backend.put_summary(ns, None).is_ok() {
            self.invalidated.insert(ns);
        }
        self.summaries.insert(ns, None);
        self.pending.insert(ns, None);
    }

    /// Drops the index and summary of `ns`, e.g. after writes on
    /// [`backend_mut`](Self::backend_mut); both are rebuilt from the backend on next use. The
    /// persisted summary is deleted at once.
    pub fn forget(&mut self, ns: NamespaceId) -> Result<(), StoreError> {
        self.v2_sums.remove(&ns);
        self.unload(ns);
        self.backend.put_summary(ns, None)?;
        self.invalidated.insert(ns);
        self.summaries.insert(ns, None);
        self.pending.remove(&ns);
        Ok(())
    }

    /// [`forget`](Self::forget) for every namespace.
    pub fn forget_all(&mut self) -> Result<(), StoreError> {
        self.v2_sums.clear();
        let mut all: BTreeSet<NamespaceId> = self.summaries.keys().copied().collect();
        all.extend(
            self.backend
                .list_namespaces()?
                .into_iter()
                .map(|(ns, _)| ns),
        );
        for ns in all {
            self.forget(ns)?;
        }
        Ok(())
    }

    /// The summary of `ns` if its chunk list is not loaded and the summary is known.
    pub(super) fn unloaded_summary(
        &mut self,
        ns: NamespaceId,
    ) -> Result<Option<NamespaceSummary>, StoreError> {
        if self.trees.contains_key(&ns) {
            return Ok(None);
        }
        self.summary(ns)
    }
}
