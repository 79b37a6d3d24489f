//! `sheaf-sim`: deterministic network simulation of Sheaf nodes.
//!
//! This crate will drive the production state machines of many nodes over a simulated network
//! with seeded faults, check safety invariants after every event and liveness after healing.
//! It holds no functionality yet; see the README's status table.
