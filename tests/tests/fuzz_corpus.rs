//! Regression replay of the committed fuzz corpus (`fuzz/corpus/<target>/`) through the target
//! bodies in `sheaf_core::fuzz` and `sheaf_sim::fuzz`, so every seed and every input that once crashed a fuzzer is
//! checked by the normal test run. A missing or empty corpus directory fails the test.

use std::{
    fs,
    panic::{catch_unwind, AssertUnwindSafe},
    path::{Path, PathBuf},
};

use sheaf_core::fuzz;

/// The files of one target's corpus, sorted; panics if there are none.
fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus directory {} missing: {e}", dir.display()))
        .map(|entry| entry.expect("readable corpus directory").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "corpus directory {} is empty",
        dir.display()
    );
    files
}

/// Runs `body` on every corpus file of `target`, reporting all failing files at once.
fn replay(target: &str, body: fn(&[u8])) {
    let files = corpus(target);
    let failed: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let data = fs::read(path).expect("readable corpus file");
            catch_unwind(AssertUnwindSafe(|| body(&data)))
                .is_err()
                .then(|| path.display().to_string())
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{target}: {} of {} corpus inputs fail: {failed:#?}",
        failed.len(),
        files.len()
    );
}

#[test]
fn decode_frame_corpus() {
    replay("decode_frame", fuzz::decode_frame);
}

#[test]
fn decode_gossip_corpus() {
    replay("decode_gossip", fuzz::decode_gossip);
}

#[test]
fn decode_ticket_corpus() {
    replay("decode_ticket", fuzz::decode_ticket);
}

#[test]
fn decode_v2_corpus() {
    replay("decode_v2", fuzz::decode_v2);
}

#[test]
fn v2_sessions_corpus() {
    replay("v2_sessions", fuzz::v2_sessions);
}

#[test]
fn replica_sync_corpus() {
    replay("replica_sync", fuzz::replica_sync);
}

#[test]
fn live_inputs_corpus() {
    replay("live_inputs", fuzz::live_inputs);
}

#[test]
fn sim_seed_corpus() {
    replay("sim_seed", sheaf_sim::fuzz::sim_seed);
}
