//! The `sim_seed` fuzz target body (feature `fuzzing`).
//!
//! The fuzzer does not search the bytes of a message here but the space of small worlds: the
//! input becomes the seed and the shape of a 3–5 node simulation with a capped event count,
//! and the whole simulator — faults, workload, safety invariants after every event, liveness
//! after the heal — judges the run. Coverage-guided search over seeds reaches interleavings
//! that a linear sweep of `--seeds` visits rarely (a crash during a particular session step,
//! a partition healing while a download is in flight).
//!
//! Input format (missing bytes read as zero, extra bytes are ignored):
//!
//! | bytes | meaning |
//! | --- | --- |
//! | 0..8 | the seed, little endian |
//! | 8 | nodes: `3 + b % 3` |
//! | 9 | documents: `1 + b % 2` |
//! | 10 | workload operations: `1 + b % 40` |
//! | 11 | fault families, one bit each in [`Fault::ALL`] order (the first eight) |
//! | 12 | key segments: `2 + b % 3` |
//! | 13 | mix: odd = writes only, even = default |
//! | 14 | fault families from the ninth on (`byzantine`, `store-fail`, `gossip-stall`), one bit each |
//!
//! Every run is executed twice and must give the same trace hash (determinism). A run that
//! reaches the event cap before converging is judged on safety only; any failure — safety,
//! liveness, a panic, a determinism mismatch — panics with the replay command, which the
//! fuzzer reports as a crash.

use std::time::Duration;

use crate::{check_determinism, config::OpMix, Fault, FaultSet, SimConfig};

/// Largest number of events one run may handle (a typical 60-operation, 4-node run takes
/// about 1,200).
pub const MAX_EVENTS: u64 = 20_000;

/// The configuration the fuzz input `data` describes.
pub fn config(data: &[u8]) -> SimConfig {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let mut seed = [0u8; 8];
    for (i, b) in seed.iter_mut().enumerate() {
        *b = byte(i);
    }
    let bits = u16::from(byte(11)) | u16::from(byte(14)) << 8;
    let faults: String = Fault::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, f)| f.name())
        .collect::<Vec<_>>()
        .join(",");
    let faults: FaultSet = faults.parse().unwrap_or(FaultSet::NONE);
    let mut cfg = SimConfig::new(u64::from_le_bytes(seed));
    cfg.nodes = 3 + usize::from(byte(8) % 3);
    cfg.docs = 1 + usize::from(byte(9) % 2);
    cfg.ops = 1 + usize::from(byte(10) % 40);
    cfg.faults = faults;
    cfg.key_segments = 2 + usize::from(byte(12) % 3);
    cfg.mix = if byte(13) % 2 == 1 {
        OpMix::Writes
    } else {
        OpMix::Default
    };
    cfg.liveness_bound = Duration::from_secs(300);
    cfg.max_events = Some(MAX_EVENTS);
    cfg
}

/// Runs the simulation `data` describes (twice); panics on any failure.
pub fn sim_seed(data: &[u8]) {
    let cfg = config(data);
    let report = check_determinism(&cfg);
    if let Some(failure) = &report.failure {
        panic!(
            "simulation failed: {failure}\nreplay: {}",
            cfg.replay_command()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_bytes_map_to_the_documented_world() {
        let cfg = config(&[7, 0, 0, 0, 0, 0, 0, 0, 4, 1, 39, 0b1000_0001, 5, 1]);
        assert_eq!(cfg.seed, 7);
        assert_eq!(cfg.nodes, 4);
        assert_eq!(cfg.docs, 2);
        assert_eq!(cfg.ops, 40);
        assert_eq!(cfg.faults.to_string(), "latency,skew");
        let cfg = config(&[7, 0, 0, 0, 0, 0, 0, 0, 4, 1, 39, 0b1000_0001, 5, 1, 0b11]);
        assert_eq!(cfg.faults.to_string(), "latency,skew,byzantine,store-fail");
        assert_eq!(cfg.key_segments, 4);
        assert_eq!(cfg.mix, OpMix::Writes);
        assert_eq!(cfg.max_events, Some(MAX_EVENTS));
        let empty = config(&[]);
        assert_eq!(
            (empty.seed, empty.nodes, empty.docs, empty.ops),
            (0, 3, 1, 1)
        );
        assert_eq!(empty.faults, FaultSet::NONE);
    }

    #[test]
    fn a_capped_run_stops_at_the_cap_and_is_judged_on_safety() {
        let mut cfg = SimConfig::new(3);
        cfg.max_events = Some(50);
        let report = crate::run(&cfg, None);
        assert!(report.ok(), "{}", report.line());
        assert!(report.capped);
        assert_eq!(report.events, 50);
    }

    /// The committed corpus (`fuzz/corpus/sim_seed`, including worlds with the byzantine node
    /// and store failures) runs clean.
    #[test]
    fn corpus_runs_clean() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/sim_seed");
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("the corpus directory")
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        assert!(entries.len() >= 9, "{} corpus files", entries.len());
        for path in entries {
            sim_seed(&std::fs::read(&path).expect("readable corpus file"));
        }
    }

    #[test]
    fn small_worlds_pass() {
        for seed in 0..5u8 {
            sim_seed(&[
                seed, 0, 0, 0, 0, 0, 0, 0, seed, seed, 20, 0xff, seed, seed, 0xff,
            ]);
        }
    }
}
