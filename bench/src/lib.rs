//! `sheaf-bench`: side-by-side benchmarks of Sheaf and iroh-docs.
//!
//! This crate will run the same workloads on both implementations and report JSON lines and a
//! comparison table. It holds no functionality yet; see the README's status table.
