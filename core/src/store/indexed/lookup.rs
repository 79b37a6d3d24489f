//! The chunk lists behind [`Indexed`]'s queries: loading a namespace's list (persisted rows,
//! or a build from every entry), expanding a chunk from the backend, and the rank, prefix
//! fingerprint and select operations on top, each O(log n) once the chunks it touches are
//! expanded.

use bytes::Bytes;

use super::{
    chunks::{Chunks, CHUNK_MAX},
    memory::entry_bytes,
    spans::{build, scan, suffix_bounds, RankSpans},
    Indexed,
};
use crate::{
    keys::NamespaceId,
    ranger::{Fingerprint, Range},
    store::{fptree::FpTree, Backend, NamespaceSummary, StoreError},
};

/// Passes of a query that met a repaired chunk before its answer is taken as is.
const REPAIR_PASSES: usize = 3;

impl<B: Backend> Indexed<B> {
    /// Whether writes to `ns` keep its index: its chunk list is loaded, or its summary (and
    /// so its persisted list) is known.
    pub(super) fn indexes(&mut self, ns: NamespaceId) -> Result<bool, StoreError> {
        if self.trees.contains_key(&ns) {
            return Ok(true);
        }
        Ok(self.summary(ns)?.is_some())
    }

    /// The chunk list of `ns`, loaded if needed, marked as used now.
    pub(super) fn loaded(&mut self, ns: NamespaceId) -> Result<&Chunks, StoreError> {
        if !self.trees.contains_key(&ns) {
            self.load_chunks(ns)?;
        }
        let Some(l) = self.trees.get_mut(&ns) else {
            return Err(StoreError::Backend("index not loaded".into()));
        };
        // Queries touch their namespace many times in a row: only a change of namespace
        // moves it in the LRU order.
        if l.used != self.tick {
            self.tick += 1;
            self.lru.remove(&l.used);
            l.used = self.tick;
            self.lru.insert(self.tick, ns);
        }
        Ok(&l.chunks)
    }

    /// The chunk list of `ns` if loaded, without marking it used (for the steps of a query
    /// that [`loaded`](Self::loaded) it already).
    fn chunks(&self, ns: NamespaceId) -> Result<&Chunks, StoreError> {
        self.trees
            .get(&ns)
            .map(|l| &l.chunks)
            .ok_or_else(|| StoreError::Backend("index not loaded".into()))
    }

    /// Loads the persisted chunk list of `ns` if its summary vouches for it, else builds the
    /// list from every entry, checks (and repairs) the summary against it and queues its rows
    /// for the next flush.
    fn load_chunks(&mut self, ns: NamespaceId) -> Result<(), StoreError> {
        let known = self.summary(ns)?;
        if let Some(summary) = known {
            let rows = self.backend.get_chunks(ns)?;
            if let Some(chunks) = Chunks::from_rows(rows, summary) {
                self.insert_loaded(ns, chunks);
                return Ok(());
            }
        }
        let chunks = build(&mut self.backend, ns)?;
        self.stats.builds += 1;
        let built = chunks.total();
        match known {
            Some(known) if known != built => {
                self.stats.summary_repairs += 1;
                self.changed(ns, Some(built))?;
            }
            _ => {
                self.pending.insert(ns, Some(built));
            }
        }
        self.summaries.insert(ns, Some(built));
        self.insert_loaded(ns, chunks);
        Ok(())
    }

    fn insert_loaded(&mut self, ns: NamespaceId, chunks: Chunks) {
        let used = self.next_tick();
        self.held.add(chunks.footprint());
        self.trees.insert(ns, super::Loaded { chunks, used });
        self.lru.insert(used, ns);
        self.enforce(Some(ns));
    }

    /// Reads chunk `i` of `ns` from the backend if it is folded. If its row disagrees with
    /// what was read, the whole list is rebuilt (and chunk `i` may then be another chunk:
    /// queries run under [`consistent`](Self::consistent) start over).
    fn expand(&mut self, ns: NamespaceId, i: usize) -> Result<(), StoreError> {
        let (lo, hi) = {
            let c = self.chunks(ns)?;
            if c.tree(i).is_some() {
                return Ok(());
            }
            c.bounds(i)
        };
        let (lower, upper) = suffix_bounds(&lo, hi.as_deref());
        let mut items = Vec::new();
        let mut bytes = 0;
        scan(&mut self.backend, ns, lower, upper, |key, fp| {
            bytes += entry_bytes(key.len());
            items.push((key, fp, ()));
        })?;
        let tree = FpTree::from_sorted(items);
        self.stats.expansions += 1;
        let read = NamespaceSummary {
            count: tree.len() as u64,
            fingerprint: tree.total_fingerprint(),
        };
        if self.loaded(ns)?.sum(i) != read {
            // A persisted row was wrong, so none of them is trusted.
            return self.rebuild(ns);
        }
        self.with_chunks(ns, |c| c.expand(i, tree, bytes));
        self.enforce(Some(ns));
        Ok(())
    }

    /// Replaces the chunk list of `ns` by one built from every entry, after a chunk read from
    /// the backend disagreed with its row; counted as a repair, persisted with the next flush.
    fn rebuild(&mut self, ns: NamespaceId) -> Result<(), StoreError> {
        self.unload(ns);
        let chunks = build(&mut self.backend, ns)?;
        self.stats.builds += 1;
        self.stats.summary_repairs += 1;
        let built = chunks.total();
        self.changed(ns, Some(built))?;
        self.insert_loaded(ns, chunks);
        Ok(())
    }

    /// Splits chunk `at` of `ns` if it outgrew [`CHUNK_MAX`] (expanding it first).
    pub(super) fn split_if_full(&mut self, ns: NamespaceId, at: usize) -> Result<(), StoreError> {
        if self.loaded(ns)?.sum(at).count as usize <= CHUNK_MAX {
            return Ok(());
        }
        self.expand(ns, at)?;
        self.with_chunks(ns, |c| c.split(at));
        Ok(())
    }

    /// Runs a query; if it met a chunk whose summary was repaired (so that ranks it computed
    /// before may be off), runs it again.
    pub(super) fn consistent<T>(
        &mut self,
        query: impl Fn(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut passes = 0;
        loop {
            let repairs = self.stats.summary_repairs;
            let out = query(self)?;
            passes += 1;
            if self.stats.summary_repairs == repairs || passes == REPAIR_PASSES {
                return Ok(out);
            }
        }
    }

    /// Number of entries of `ns` below `suffix`.
    fn rank(&mut self, ns: NamespaceId, suffix: &[u8]) -> Result<usize, StoreError> {
        let c = self.loaded(ns)?;
        let i = c.locate(suffix);
        if c.starts_at(i, suffix) {
            return Ok(c.prefix(i).count as usize);
        }
        self.expand(ns, i)?;
        let c = self.chunks(ns)?;
        Ok(c.prefix(i).count as usize + c.tree(i).map_or(0, |t| t.rank(suffix)))
    }

    /// XOR of the fingerprints of the first `r` entries of `ns` (from zero bytes).
    pub(super) fn prefix_fingerprint(
        &mut self,
        ns: NamespaceId,
        r: usize,
    ) -> Result<Fingerprint, StoreError> {
        let c = self.loaded(ns)?;
        let Some((i, local)) = c.find_rank(r) else {
            return Ok(c.total().fingerprint);
        };
        if local == 0 {
            return Ok(c.prefix(i).fingerprint);
        }
        self.expand(ns, i)?;
        let c = self.chunks(ns)?;
        let inner = c
            .tree(i)
            .map_or(Fingerprint([0; 32]), |t| t.span_fingerprint(0, local));
        Ok(c.prefix(i).fingerprint.xor(&inner))
    }

    /// The suffix of the entry of rank `r` in `ns`.
    pub(super) fn select(
        &mut self,
        ns: NamespaceId,
        r: usize,
    ) -> Result<Option<Bytes>, StoreError> {
        let Some((i, local)) = self.loaded(ns)?.find_rank(r) else {
            return Ok(None);
        };
        self.expand(ns, i)?;
        Ok(self
            .chunks(ns)?
            .tree(i)
            .and_then(|t| t.select(local))
            .map(|(k, _, _)| k.clone()))
    }

    /// `range` resolved to rank intervals of `ns`.
    pub(super) fn spans(
        &mut self,
        ns: NamespaceId,
        range: &Range,
    ) -> Result<RankSpans, StoreError> {
        let total = self.loaded(ns)?.len();
        RankSpans::new(ns, range, total, |s| self.rank(ns, s))
    }
}

/// The fingerprint of the entry under `key` in `tree`, if there is one.
pub(super) fn fingerprint_in(tree: &FpTree<()>, key: &[u8]) -> Option<Fingerprint> {
    tree.select(tree.rank(key))
        .filter(|(k, _, _)| k.as_ref() == key)
        .map(|(_, fp, _)| *fp)
}
