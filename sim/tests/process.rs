//! The binary: the same seed hashes the same in two separate processes; a failure exits
//! non-zero and prints the command that replays it.

use std::process::Command;

fn sim(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sheaf-sim"))
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn trace_hash(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("trace hash: "))
        .unwrap_or_else(|| panic!("no trace hash in:\n{stdout}"))
        .to_string()
}

#[test]
fn two_processes_print_the_same_trace_hash() {
    let args = ["--seed", "11", "--ops", "40"];
    let (ok1, out1) = sim(&args);
    let (ok2, out2) = sim(&args);
    assert!(ok1 && ok2, "{out1}\n{out2}");
    assert_eq!(trace_hash(&out1), trace_hash(&out2));
    let (_, other) = sim(&["--seed", "12", "--ops", "40"]);
    assert_ne!(trace_hash(&out1), trace_hash(&other));
}

#[test]
fn check_determinism_flag_passes() {
    let (ok, out) = sim(&["--seeds", "3..5", "--check-determinism"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("determinism: 2 of 2 seeds gave identical traces twice"),
        "{out}"
    );
    assert!(
        out.contains("| seeds         | 2 (2 passed, 0 failed)"),
        "{out}"
    );
}

#[test]
fn a_failure_exits_non_zero_with_the_replay_command() {
    // Seed 3: one of the seeds on which the planted bug meets a check (see `tests/seeds.rs`).
    let (ok, out) = sim(&["--seed", "3", "--plant-bug", "ignore-prefix-deletes:0"]);
    assert!(!ok, "{out}");
    assert!(out.contains("prefix invariant violated"), "{out}");
    assert!(
        out.contains(
            "replay: cargo run --release -p sheaf-sim -- --seed 3 --nodes 4 --docs 2 --ops 60 --faults all --plant-bug ignore-prefix-deletes:0"
        ),
        "{out}"
    );
}
