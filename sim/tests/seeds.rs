//! Many seeds with faults, determinism, and planted bugs the simulator must catch.

use std::ops::Range;

use sheaf_sim::{run, FailureKind, FaultSet, PlantedBug, SeedReport, SimConfig};

fn config(seed: u64) -> SimConfig {
    SimConfig::new(seed)
}

fn assert_ok(r: &SeedReport) {
    assert!(
        r.ok(),
        "{}\n{}replay: {}",
        r.line(),
        r.params,
        r.config.replay_command()
    );
}

fn seeds(range: Range<u64>, faults: FaultSet) -> (u64, usize) {
    let mut events = 0;
    let mut warnings = 0;
    for seed in range {
        let mut cfg = config(seed);
        cfg.faults = faults;
        let r = run(&cfg, None);
        assert_ok(&r);
        events += r.events;
        warnings += r.warnings.len();
    }
    (events, warnings)
}

#[test]
fn seeds_0_to_100_with_all_faults() {
    let (events, _) = seeds(0..100, FaultSet::ALL);
    assert!(events > 100 * 500, "the runs do something: {events} events");
}

#[test]
fn seeds_100_to_200_with_all_faults() {
    seeds(100..200, FaultSet::ALL);
}

#[test]
fn seeds_with_single_fault_families() {
    for (i, faults) in [
        "none",
        "latency",
        "loss",
        "dup,reorder",
        "partition",
        "crash",
        "slow-store",
        "skew",
        "byzantine",
        "store-fail",
        "gossip-stall",
    ]
    .iter()
    .enumerate()
    {
        let start = 1000 + 10 * i as u64;
        seeds(start..start + 5, faults.parse().unwrap());
    }
}

#[test]
fn larger_worlds() {
    for seed in 0..4 {
        let mut cfg = config(seed);
        cfg.nodes = 7;
        cfg.docs = 3;
        cfg.ops = 200;
        assert_ok(&run(&cfg, None));
    }
}

/// Many documents among a few nodes: dials of many documents to one peer wait for room,
/// anti-entropy of all of them stays within each node's rate, and every document converges.
/// (`.ci/run` also runs 200 documents among 5 nodes in a release build.)
#[test]
fn many_documents_among_five_nodes() {
    for seed in 0..2 {
        let mut cfg = config(seed);
        cfg.nodes = 5;
        cfg.docs = 30;
        cfg.ops = 150;
        assert_ok(&run(&cfg, None));
    }
}

#[test]
fn same_seed_same_trace_different_seed_different_trace() {
    let cfg = config(7);
    let a = run(&cfg, None);
    let b = run(&cfg, None);
    assert_ok(&a);
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.events, b.events);
    assert!(a.trace_records > 1000);
    let c = run(&config(8), None);
    assert_ne!(a.trace_hash, c.trace_hash);
    let d = sheaf_sim::check_determinism(&cfg);
    assert_ok(&d);
}

#[test]
fn masking_a_fault_family_keeps_the_other_draws() {
    let all = sheaf_sim::FaultParams::draw(&SimConfig::new(5));
    let mut cfg = SimConfig::new(5);
    cfg.faults = "crash,partition".parse().unwrap();
    let some = sheaf_sim::FaultParams::draw(&cfg);
    assert_eq!(all.crashes, some.crashes);
    assert_eq!(all.partitions, some.partitions);
    assert_eq!(some.gossip_loss, 0.0);
    assert_eq!(some.skew, vec![0; 4]);
}

/// The simulator's own runtime ignores prefix deletes on node 0 (it writes the tombstone with
/// a raw `Backend::put`): the safety invariant must catch it and name the node and the rule.
#[test]
fn planted_prefix_delete_bug_is_caught_and_named() {
    let mut caught = 0;
    for seed in 0..10 {
        let mut cfg = config(seed);
        cfg.planted_bug = Some(PlantedBug::IgnorePrefixDeletes { node: 0 });
        let r = run(&cfg, None);
        if let Some(f) = &r.failure {
            assert_eq!(f.kind, FailureKind::Safety, "{f}");
            assert!(
                f.reason.starts_with("node 0: prefix invariant violated"),
                "{f}"
            );
            assert!(f.reason.contains("tombstone"), "{f}");
            assert!(
                r.config
                    .replay_command()
                    .contains("--plant-bug ignore-prefix-deletes:0"),
                "the replay command carries the planted bug"
            );
            caught += 1;
        }
    }
    assert!(caught >= 2, "caught on {caught} of 10 seeds");
}

/// The simulated runtime drops every sync frame node 1 sends (but not its stream FINs): the
/// liveness check must fail, name node 1 and, on most seeds, the syncs that timed out. (A
/// dropped `Abort` followed by the FIN reads as "already in sync" to the dialer — the
/// protocol's answer when the acceptor has nothing to send — so some seeds report a
/// successful last sync instead.)
#[test]
fn planted_frame_dropping_is_caught_and_named() {
    let mut timed_out = 0;
    for seed in 0..6 {
        let mut cfg = config(seed);
        cfg.planted_bug = Some(PlantedBug::DropSyncFrames { node: 1 });
        let r = run(&cfg, None);
        let f = r
            .failure
            .as_ref()
            .expect("a node whose frames vanish never converges");
        assert_eq!(f.kind, FailureKind::Liveness, "{f}");
        assert!(f.reason.starts_with("not converged"), "{f}");
        assert!(f.reason.contains("node 1"), "{f}");
        timed_out += usize::from(f.reason.contains("timed out"));
    }
    assert!(timed_out >= 3, "timeouts named on {timed_out} of 6 seeds");
}

/// Regression (found by the simulator, fixed in sheaf-core): a node that crashes while it misses the content of an entry it already
/// stores never downloads it after the restart — `Live`'s set of missing hashes lives only in
/// memory, and no `RemoteInsert` fires again for an entry the store already holds. Node 2
/// receives key "\xff" (written by node 3) by relayed gossip at 16.4 s, content missing and no
/// provider known; it crashes at 23.5 s and restarts at 25.8 s. From then on it completes
/// syncs with node 3, which holds the content, at 25.8 s, 28.8 s, 30.0 s and every 50 s
/// (anti-entropy), and never asks for the blob.
/// Replay: `cargo run -p sheaf-sim -- --seed 53 --faults crash --trace t.txt`.
#[test]
fn restarted_node_fetches_content_it_was_missing() {
    let mut cfg = SimConfig::new(53);
    cfg.faults = "crash".parse().unwrap();
    assert_ok(&run(&cfg, None));
}

/// Regression (found by the simulator, fixed in sheaf-core): with no faults at all and anti-entropy off (iroh-docs' default), node 2
/// holds key "\xff/b" without its content (it came by relayed gossip from node 1 at 22.7 s).
/// After the heal, at 30.025 s, two of its syncs finish at the same instant: the one with
/// node 1, which lacks the content, probes node 1 (`Download` with providers [node 1]); the
/// one with node 3, which has it, is not asked because `Downloads::missing_for` skips hashes
/// in flight. The probe fails at 30.035 s, the hash goes back to "missing" with no other
/// provider, and nothing ever asks node 3. Node 3 is stuck the same way on a blob of node 2.
/// Replay: `cargo run -p sheaf-sim -- --seed 148 --faults none --trace t.txt`.
#[test]
fn failed_probe_download_is_retried_from_the_peer_that_has_it() {
    let mut cfg = SimConfig::new(148);
    cfg.faults = FaultSet::NONE;
    assert_ok(&run(&cfg, None));
}

/// Node 0's `Live` forgets an open sync session without ending it: the per-event
/// `Live::check_invariants` must catch it at once and name the node and the broken rule.
#[test]
fn planted_live_session_leak_is_caught_by_the_invariants() {
    for seed in 0..3 {
        let mut cfg = config(seed);
        cfg.planted_bug = Some(PlantedBug::LeakLiveSession { node: 0 });
        let r = run(&cfg, None);
        let f = r
            .failure
            .as_ref()
            .expect("a leaked session breaks an invariant");
        assert_eq!(f.kind, FailureKind::Safety, "{f}");
        assert!(
            f.reason.starts_with("node 0: Live invariant violated"),
            "{f}"
        );
        assert!(
            r.config
                .replay_command()
                .contains("--plant-bug leak-live-session:0"),
            "the replay command carries the planted bug"
        );
    }
}

/// The byzantine node alone: forged and replayed gossip, hostile and silent sessions. Every
/// honest node's invariants and bounds hold after every event, and the members converge once
/// it stops.
#[test]
fn seeds_with_a_byzantine_node() {
    let (events, _) = seeds(2000..2010, "byzantine".parse().unwrap());
    assert!(events > 10 * 500, "the runs do something: {events} events");
}

/// Store commands and commits failing, and long store stalls.
#[test]
fn seeds_with_store_failures() {
    seeds(2100..2110, "store-fail".parse().unwrap());
}

/// Gossip layers that stall: the stalled nodes hear about it, repair by sync, and converge.
#[test]
fn seeds_with_gossip_stalls() {
    let mut reported = 0;
    for seed in 2300..2320 {
        let mut cfg = config(seed);
        cfg.faults = "gossip-stall,loss".parse().unwrap();
        let r = run(&cfg, None);
        assert_ok(&r);
        reported += r.defences.gossip_stalls;
    }
    assert!(reported > 0, "some seed stalls a node's gossip");
}

/// The new families together with the others they interact with most: crashes and slow
/// stores with failing ones, partitions and loss with the attacker.
#[test]
fn seeds_with_hostile_load_and_faults() {
    seeds(
        2200..2205,
        "byzantine,store-fail,crash,slow-store,partition,loss"
            .parse()
            .unwrap(),
    );
}

/// A node that stores what the byzantine node forges (planted: its runtime writes each forged
/// entry with a raw `Backend::put`): the per-event check that every stored entry verifies must
/// catch it and name the node.
#[test]
fn planted_forged_put_storage_is_caught_and_named() {
    let mut caught = 0;
    for seed in 0..8 {
        let mut cfg = config(seed);
        cfg.faults = "byzantine".parse().unwrap();
        cfg.planted_bug = Some(PlantedBug::StoreForgedPuts { node: 0 });
        let r = run(&cfg, None);
        if let Some(f) = &r.failure {
            assert_eq!(f.kind, FailureKind::Safety, "{f}");
            assert!(
                f.reason
                    .starts_with("node 0: stored an entry that does not verify"),
                "{f}"
            );
            assert!(
                r.config
                    .replay_command()
                    .contains("--plant-bug store-forged-puts:0"),
                "the replay command carries the planted bug"
            );
            caught += 1;
        }
    }
    assert!(caught >= 3, "caught on {caught} of 8 seeds");
}

/// The new families draw from streams of their own: switching one on or off moves no draw of
/// the others, and the attacker's plan is the same whatever else is enabled.
#[test]
fn new_fault_families_keep_the_other_draws() {
    let all = sheaf_sim::FaultParams::draw(&SimConfig::new(11));
    let mut cfg = SimConfig::new(11);
    cfg.faults = "latency,loss,dup,reorder,partition,crash,slow-store,skew"
        .parse()
        .unwrap();
    let old = sheaf_sim::FaultParams::draw(&cfg);
    assert_eq!(all.crashes, old.crashes);
    assert_eq!(all.partitions, old.partitions);
    assert_eq!((all.latency, all.jitter), (old.latency, old.jitter));
    assert_eq!(all.skew, old.skew);
    assert!(old.byzantine.is_none());
    assert_eq!(old.store_fail, Default::default());
    cfg.faults = "byzantine".parse().unwrap();
    let byz = sheaf_sim::FaultParams::draw(&cfg);
    assert_eq!(byz.byzantine, all.byzantine);
    assert!(byz.crashes.is_empty());
    cfg.faults = "store-fail".parse().unwrap();
    assert_eq!(
        sheaf_sim::FaultParams::draw(&cfg).store_fail,
        all.store_fail
    );
}
