//! The index's memory: what a loaded tree is estimated to cost, and the counters that
//! [`Indexed::stats`](super::Indexed::stats) reports.
//!
//! The cost is an estimate from the tree's layout, not a measurement: a library cannot count
//! its own heap without owning the global allocator. The numbers below come from the `fptree`
//! module's measurements (tree-owned heap 66 bytes per entry bulk-built, 74 after ascending
//! inserts, 95 after random ones; the key in its own allocation), rounded up, so that the
//! estimate errs high: a node kept within its budget by the estimate is within it in fact.

/// Tree-owned heap per entry, key bytes excluded: leaf slot (key handle, fingerprint), the
/// spare slots of leaves filled 70% by random inserts, and the branches above.
pub(super) const ENTRY_BYTES: usize = 96;

/// Fixed heap of one loaded tree (root, summaries, the maps' slots that track it).
pub(super) const TREE_BYTES: usize = 512;

/// Heap of one chunk of a loaded chunk list besides its start key: its slot (start handle,
/// summary, tree pointer and size, cached sync v2 sum) and its Fenwick node.
pub(super) const CHUNK_BYTES: usize = 176;

/// Heap of one known [`NamespaceSummary`](crate::store::NamespaceSummary) (its map slot).
pub(super) const SUMMARY_BYTES: usize = 96;

/// Estimated heap of one entry whose suffix (`author ‖ key`) is `suffix_len` bytes: the
/// tree's share plus the key's own allocation (glibc rounds a chunk of `len + 8` up to 16
/// bytes, at least 32).
pub(super) fn entry_bytes(suffix_len: usize) -> usize {
    ENTRY_BYTES + key_bytes(suffix_len)
}

/// Heap of a key of `len` bytes in its own allocation.
pub(super) fn key_bytes(len: usize) -> usize {
    ((len + 8 + 15) & !15).max(32)
}

/// Memory, evictions and rebuilds of an [`Indexed`](super::Indexed) store's fingerprint index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IndexStats {
    /// Namespaces whose tree is loaded.
    pub loaded: usize,
    /// Loaded namespaces with expanded chunks (the others hold only their chunk list).
    #[serde(default)]
    pub expanded: usize,
    /// Chunks of the loaded namespaces (each a key range of a few hundred entries, folded or
    /// expanded).
    #[serde(default)]
    pub chunks: usize,
    /// Namespaces pinned (syncing): their trees are not evicted.
    pub pinned: usize,
    /// Estimated heap of the loaded trees and the known summaries, in bytes.
    pub bytes: usize,
    /// The budget of the loaded trees, in bytes (`usize::MAX`: none).
    pub budget: usize,
    /// Trees built from the backend (the first use of a namespace, and after an eviction).
    pub builds: u64,
    /// Trees dropped to stay within the budget.
    pub evictions: u64,
    /// Persisted summaries (of a namespace or of a chunk) that disagreed with the entries
    /// read from the backend, and were replaced.
    pub summary_repairs: u64,
    /// Chunks read back from the backend (folded after loading or an eviction, and then
    /// needed by a query).
    #[serde(default)]
    pub expansions: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_costs_its_key_rounded_up_and_a_fixed_share() {
        // 32-byte author + 24-byte key: a 64-byte chunk.
        assert_eq!(entry_bytes(56), ENTRY_BYTES + 64);
        // An empty key still costs the minimum chunk plus the author.
        assert_eq!(entry_bytes(32), ENTRY_BYTES + 48);
        assert_eq!(entry_bytes(0), ENTRY_BYTES + 32);
    }
}
