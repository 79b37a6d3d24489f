//! `Live` + `Replicas` pairs wired by a small in-test router that moves outputs to inputs:
//! the scenarios of iroh-docs' `tests/sync.rs`, without network or async.
//!
//! The router is a FIFO of (node, input); gossip is a full mesh of the nodes that joined a
//! topic; sync streams are paired sessions; each node has a set of blob hashes as its blob
//! store. Everything is deterministic, so event sequences are asserted exactly.
//!
//! The scenarios are split by topic: `sync` (sessions, tie-breaks, retries, timeouts,
//! anti-entropy, gossip), `content` (downloads and the missing-content scan), `timers` (the
//! timer table as seen from outside), `anti_entropy` (background work: spread, skip, rate), `admission` (session bounds and
//! waiting dials), `failures` (a store executor that stops), `crossing` (a dial refused
//! while the peer runs an older session of ours), `v2` (sync v2 rounds: one per peer).

mod admission;
mod anti_entropy;
mod content;
mod crossing;
mod failures;
mod router;
mod sync;
mod timers;
mod v2;
