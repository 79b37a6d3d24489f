//! What a run is asked to do ([`SimConfig`]) and the fault parameters its seed draws
//! ([`FaultParams`]).
//!
//! Every random choice of a run comes from the seed, through one ChaCha stream per purpose
//! ([`stream`]): the fault parameters, the workload, the network and each node's `Live` get
//! their own, so that switching a fault family off (`--faults`) leaves the other draws alone.
//! The fault parameters are always drawn in full and then masked by the [`FaultSet`]: a seed
//! replayed with fewer faults keeps the same latencies, crash times and partitions for the
//! families still enabled. Families added later draw from streams of their own
//! (`faults/byzantine`, `faults/store-fail`), never from the `faults` stream, so adding one
//! shifts no draw of the older families.

use std::{fmt, str::FromStr, time::Duration};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha12Rng;

use crate::byzantine::ByzantinePlan;

/// One virtual second, in microseconds.
pub const SEC: u64 = 1_000_000;
/// One virtual millisecond, in microseconds.
pub const MS: u64 = 1_000;
/// With [`SimConfig::lenient_blobs`], how long after the entries converged missing blobs
/// are waited for before they are reported as warnings, µs.
pub const LENIENT_BLOB_GRACE: u64 = 60 * SEC;
/// Largest clock skew of a node, either way (half of the 10-minute future-drift limit, so two
/// skewed nodes always accept each other's entries).
pub const MAX_SKEW_MICROS: i64 = 5 * 60 * 1_000_000;

/// A rng for one purpose of one seed: ChaCha12 keyed by BLAKE3 of the purpose and the seed.
pub fn stream(seed: u64, purpose: &str) -> ChaCha12Rng {
    let mut h = blake3::Hasher::new();
    h.update(b"sheaf-sim/");
    h.update(purpose.as_bytes());
    h.update(&seed.to_le_bytes());
    ChaCha12Rng::from_seed(*h.finalize().as_bytes())
}

/// A family of faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// Random per-message latency and jitter (otherwise a constant 5 ms).
    Latency,
    /// Gossip messages lost; sync connections failing mid-stream.
    Loss,
    /// Gossip messages delivered twice.
    Duplication,
    /// Gossip messages overtaking each other.
    Reordering,
    /// Directed (often asymmetric) partitions that heal.
    Partition,
    /// Nodes crashing (losing uncommitted writes) and restarting.
    Crash,
    /// Store commands taking time, with occasional long stalls.
    SlowStore,
    /// Wall clocks offset by up to ±5 minutes.
    Skew,
    /// An extra, hostile node that floods forged and replayed gossip and opens abusive sync
    /// sessions (see [`crate::byzantine`]).
    Byzantine,
    /// Store commands and commits failing, and rare long store stalls (see
    /// [`crate::executor`]).
    StoreFail,
    /// A node's gossip layer stalling for seconds: nothing goes in or out, and the runtime's
    /// health probe reports it to `Live` (see [`crate::gossip`]).
    GossipStall,
}

impl Fault {
    /// Every family, in display order.
    pub const ALL: [Fault; 11] = [
        Fault::Latency,
        Fault::Loss,
        Fault::Duplication,
        Fault::Reordering,
        Fault::Partition,
        Fault::Crash,
        Fault::SlowStore,
        Fault::Skew,
        Fault::Byzantine,
        Fault::StoreFail,
        Fault::GossipStall,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Latency => "latency",
            Fault::Loss => "loss",
            Fault::Duplication => "dup",
            Fault::Reordering => "reorder",
            Fault::Partition => "partition",
            Fault::Crash => "crash",
            Fault::SlowStore => "slow-store",
            Fault::Skew => "skew",
            Fault::Byzantine => "byzantine",
            Fault::StoreFail => "store-fail",
            Fault::GossipStall => "gossip-stall",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of fault families: `all`, `none` or a comma-separated list of names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultSet(u16);

impl FaultSet {
    /// Every fault family.
    pub const ALL: FaultSet = FaultSet((1 << Fault::ALL.len()) - 1);
    /// No faults.
    pub const NONE: FaultSet = FaultSet(0);

    /// Whether `f` is enabled.
    pub fn has(self, f: Fault) -> bool {
        self.0 & f.bit() != 0
    }
}

impl fmt::Display for FaultSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == FaultSet::ALL {
            return f.write_str("all");
        }
        let names: Vec<&str> = Fault::ALL
            .iter()
            .filter(|x| self.has(**x))
            .map(|x| x.name())
            .collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

/// A `--faults` value that names no known family.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault {0:?} (expected all, none or a list of: latency, loss, dup, reorder, partition, crash, slow-store, skew, byzantine, store-fail)")]
pub struct UnknownFault(pub String);

impl FromStr for FaultSet {
    type Err = UnknownFault;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "all" => return Ok(FaultSet::ALL),
            "none" | "" => return Ok(FaultSet::NONE),
            _ => {}
        }
        let mut set = 0u16;
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let f = Fault::ALL
                .iter()
                .find(|f| f.name() == name)
                .ok_or_else(|| UnknownFault(name.to_string()))?;
            set |= f.bit();
        }
        Ok(FaultSet(set))
    }
}

/// A deliberate bug the simulator can plant in its own runtime, to prove that its checks
/// catch what they claim to. Never set in normal runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedBug {
    /// The node's prefix deletes are written with a raw `Backend::put` of the tombstone,
    /// bypassing prefix semantics: older entries under the prefix survive (a replica that
    /// ignores prefix deletes). The safety invariant must name it.
    IgnorePrefixDeletes {
        /// The buggy node.
        node: usize,
    },
    /// The runtime silently drops every sync frame the node sends. Its sessions time out,
    /// its peers never receive its entries through reconciliation; liveness must name the
    /// failing syncs.
    DropSyncFrames {
        /// The buggy node.
        node: usize,
    },
    /// The node's `Live` forgets an open sync session without ending it
    /// (`Live::plant_bug(LeakSession)`): its peer stays marked as syncing and its idle timer
    /// stays armed. The per-event `Live::check_invariants` must name it.
    LeakLiveSession {
        /// The buggy node.
        node: usize,
    },
    /// Every forged entry the byzantine node floods the node with is also written to its store
    /// with a raw `Backend::put`, as if the node skipped signature checks. Needs the
    /// `byzantine` family; the per-event check that every stored entry verifies must name it.
    StoreForgedPuts {
        /// The buggy node.
        node: usize,
    },
}

impl fmt::Display for PlantedBug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlantedBug::IgnorePrefixDeletes { node } => write!(f, "ignore-prefix-deletes:{node}"),
            PlantedBug::DropSyncFrames { node } => write!(f, "drop-sync-frames:{node}"),
            PlantedBug::LeakLiveSession { node } => write!(f, "leak-live-session:{node}"),
            PlantedBug::StoreForgedPuts { node } => write!(f, "store-forged-puts:{node}"),
        }
    }
}

impl FromStr for PlantedBug {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, node) = s
            .split_once(':')
            .ok_or_else(|| format!("expected KIND:NODE, got {s:?}"))?;
        let node: usize = node
            .parse()
            .map_err(|e| format!("bad node {node:?}: {e}"))?;
        match kind {
            "ignore-prefix-deletes" => Ok(PlantedBug::IgnorePrefixDeletes { node }),
            "drop-sync-frames" => Ok(PlantedBug::DropSyncFrames { node }),
            "leak-live-session" => Ok(PlantedBug::LeakLiveSession { node }),
            "store-forged-puts" => Ok(PlantedBug::StoreForgedPuts { node }),
            _ => Err(format!("unknown planted bug {kind:?}")),
        }
    }
}

/// The mix of workload operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpMix {
    /// 55% sets, 15% deletes, 10% prefix deletes, 20% joins and leaves.
    Default,
    /// Sets only, of 3-segment keys (none a prefix of another), with every node a member of
    /// every document: for large runs that measure how much data converges.
    Writes,
}

impl FromStr for OpMix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "default" => Ok(OpMix::Default),
            "writes" => Ok(OpMix::Writes),
            _ => Err(format!("unknown mix {s:?} (expected default or writes)")),
        }
    }
}

/// What one run simulates.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The seed: every random choice of the run derives from it.
    pub seed: u64,
    /// Number of nodes.
    pub nodes: usize,
    /// Number of documents.
    pub docs: usize,
    /// Number of workload operations (writes, deletes, joins, leaves).
    pub ops: usize,
    /// Distinct key segments (`a`, `b`, `\xff`, then `k3`, `k4`, …); keys have 1–3 segments,
    /// so an author has at most `s + s² + s³` keys per document. The default, 3, keeps the key
    /// space small and prefix conflicts frequent; raise it for large runs.
    pub key_segments: usize,
    /// The mix of operations.
    pub mix: OpMix,
    /// Enabled fault families.
    pub faults: FaultSet,
    /// A deliberate bug in the simulated runtime (tests of the simulator only).
    pub planted_bug: Option<PlantedBug>,
    /// Largest virtual time the liveness phase may take after healing.
    pub liveness_bound: Duration,
    /// Report wanted blobs still missing after convergence as warnings instead of failures.
    /// Exists for two known sheaf-core gaps (missing content forgotten by a restarted node;
    /// a failed probe download not retried from a peer that synced meanwhile), so that the
    /// rest of the checks stay useful until they are fixed; off by default.
    pub lenient_blobs: bool,
    /// Stop after this many events even if the run has not converged yet: the safety checks
    /// still run, liveness is not judged (the report says `capped`). For the fuzzer, which
    /// needs every run short; `None` runs to convergence or failure.
    pub max_events: Option<u64>,
    /// Which nodes serve and dial sync v2 (default: a per-seed mix).
    pub v2: crate::v2::V2Mix,
}

impl SimConfig {
    /// A configuration with the default sizes (4 nodes, 2 documents, 60 operations) and all
    /// faults.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            nodes: 4,
            docs: 2,
            ops: 60,
            key_segments: 3,
            mix: OpMix::Default,
            faults: FaultSet::ALL,
            planted_bug: None,
            liveness_bound: Duration::from_secs(300),
            lenient_blobs: false,
            max_events: None,
            v2: crate::v2::V2Mix::Mixed,
        }
    }

    /// The command that replays this run.
    pub fn replay_command(&self) -> String {
        let mut cmd = format!(
            "cargo run --release -p sheaf-sim -- --seed {} --nodes {} --docs {} --ops {} --faults {}",
            self.seed, self.nodes, self.docs, self.ops, self.faults
        );
        if let Some(bug) = self.planted_bug {
            cmd.push_str(&format!(" --plant-bug {bug}"));
        }
        if self.key_segments != 3 {
            cmd.push_str(&format!(" --key-segments {}", self.key_segments));
        }
        if self.mix == OpMix::Writes {
            cmd.push_str(" --mix writes");
        }
        if self.lenient_blobs {
            cmd.push_str(" --lenient-blobs");
        }
        if self.v2 != crate::v2::V2Mix::Mixed {
            cmd.push_str(&format!(" --v2 {}", self.v2));
        }
        if let Some(max) = self.max_events {
            cmd.push_str(&format!(" --max-events {max}"));
        }
        if self.liveness_bound != Duration::from_secs(300) {
            cmd.push_str(&format!(
                " --liveness-bound {}",
                self.liveness_bound.as_secs()
            ));
        }
        cmd
    }
}

/// A directed partition: messages from `from` to `to` are lost while it lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Start, µs of virtual time.
    pub start: u64,
    /// End (healed), µs.
    pub end: u64,
    /// Blocked directions `(from, to)`.
    pub blocked: Vec<(usize, usize)>,
}

/// A node crash and its restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crash {
    /// The node.
    pub node: usize,
    /// When it crashes, µs.
    pub at: u64,
    /// When it restarts, µs.
    pub restart: u64,
}

/// Which store a node runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `MemBackend`.
    Mem,
    /// `RedbBackend::memory()`.
    Redb,
}

/// Store failures of the `store-fail` family (all zero when it is masked). See
/// [`crate::executor`] for what each does and why.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StoreFail {
    /// Probability that a store command that reads or writes the backend fails with a backend
    /// error, leaving the store unchanged.
    pub command: f64,
    /// Probability that a commit fails; the open transaction is lost, as redb's is.
    pub commit: f64,
    /// Probability of a long stall before a store command (on top of `slow-store`'s).
    pub long_stall: f64,
    /// Longest such stall, µs.
    pub long_stall_max: u64,
}

impl StoreFail {
    /// Draws the parameters of `seed` from their own stream.
    fn draw(seed: u64) -> Self {
        let mut rng = stream(seed, "faults/store-fail");
        Self {
            command: rng.random_range(0.0..0.03),
            commit: rng.random_range(0.0..0.15),
            long_stall: rng.random_range(0.0..0.004),
            long_stall_max: rng.random_range(2 * SEC..=20 * SEC),
        }
    }
}

/// A node's gossip layer stops answering from `start` until `end` (µs).
#[derive(Debug, Clone)]
pub struct GossipStall {
    /// The node.
    pub node: usize,
    /// Start, µs.
    pub start: u64,
    /// End, µs (at the latest the heal).
    pub end: u64,
}

impl GossipStall {
    /// Draws up to two stalls of `seed` from their own stream.
    fn draw(seed: u64, nodes: usize, safety: u64) -> Vec<Self> {
        let mut rng = stream(seed, "faults/gossip-stall");
        (0..rng.random_range(0..=2usize))
            .map(|_| {
                let node = rng.random_range(0..nodes);
                let start = rng.random_range(SEC..safety);
                let end = (start + rng.random_range(2 * SEC..=20 * SEC)).min(safety);
                GossipStall { node, start, end }
            })
            .collect()
    }
}

/// Everything the seed draws about the world of a run. Printed at the start of every run.
#[derive(Debug, Clone)]
pub struct FaultParams {
    /// Base one-way latency, µs.
    pub latency: u64,
    /// Extra latency drawn uniformly in `[0, jitter]`, µs.
    pub jitter: u64,
    /// Probability that a gossip message is lost.
    pub gossip_loss: f64,
    /// Probability that a sync frame kills its connection.
    pub sync_fail: f64,
    /// Probability that a gossip message is delivered twice.
    pub duplicate: f64,
    /// Probability that a gossip message is delayed by up to `reorder_delay`.
    pub reorder: f64,
    /// Largest extra delay of a reordered message, µs.
    pub reorder_delay: u64,
    /// How long a broken connection takes to be noticed, µs.
    pub detect: u64,
    /// Partitions.
    pub partitions: Vec<Partition>,
    /// Crashes.
    pub crashes: Vec<Crash>,
    /// Base time per store command, µs.
    pub store_latency: u64,
    /// Probability of a store stall.
    pub store_stall: f64,
    /// Longest store stall, µs.
    pub store_stall_max: u64,
    /// Wall-clock offset of each node, µs.
    pub skew: Vec<i64>,
    /// Store of each node.
    pub backends: Vec<Backend>,
    /// Memory budget of every node's fingerprint indexes (`ReplicaConfig::index_budget`):
    /// zero in about a third of the seeds, so every store operation may evict an index and
    /// syncs run on chunks read back from the store, rebuilt indexes and persisted summaries.
    pub index_budget: usize,
    /// Anti-entropy interval of every node's `Live`, if enabled.
    pub anti_entropy: Option<Duration>,
    /// Length of the safety phase (workload and faults), µs.
    pub safety: u64,
    /// The byzantine node's identities and attacks (`byzantine` family).
    pub byzantine: Option<ByzantinePlan>,
    /// Store failures (`store-fail` family).
    pub store_fail: StoreFail,
    /// Gossip stalls (`gossip-stall` family).
    pub gossip_stalls: Vec<GossipStall>,
}

impl FaultParams {
    /// Draws the parameters of `cfg`'s seed, masked by its fault set.
    pub fn draw(cfg: &SimConfig) -> Self {
        let mut rng = stream(cfg.seed, "faults");
        let n = cfg.nodes;
        let f = cfg.faults;
        let safety = (cfg.ops as u64 * 500 * MS).max(20 * SEC);
        // Draw everything first, so that masking never shifts a draw.
        let latency = rng.random_range(MS..=80 * MS);
        let jitter = rng.random_range(0..=latency);
        let gossip_loss = rng.random_range(0.0..0.15);
        let sync_fail = rng.random_range(0.0..0.02);
        let duplicate = rng.random_range(0.0..0.1);
        let reorder = rng.random_range(0.0..0.3);
        let reorder_delay = rng.random_range(10 * MS..=300 * MS);
        let detect = rng.random_range(500 * MS..=5 * SEC);
        let partitions: Vec<Partition> = (0..rng.random_range(0..=3usize))
            .map(|_| {
                let start = rng.random_range(SEC..safety);
                let end = (start + rng.random_range(SEC..=15 * SEC)).min(safety);
                let group: Vec<bool> = (0..n).map(|_| rng.random_bool(0.5)).collect();
                let dir = rng.random_range(0..3u8);
                let mut blocked = Vec::new();
                for a in 0..n {
                    for b in 0..n {
                        let cross = group[a] && !group[b];
                        let back = !group[a] && group[b];
                        if (cross && dir != 1) || (back && dir != 0) {
                            blocked.push((a, b));
                        }
                    }
                }
                Partition {
                    start,
                    end,
                    blocked,
                }
            })
            .collect();
        let crashes: Vec<Crash> = (0..rng.random_range(0..=2usize))
            .map(|_| {
                let node = rng.random_range(0..n);
                let at = rng.random_range(2 * SEC..safety);
                let restart = (at + rng.random_range(SEC..=10 * SEC)).min(safety);
                Crash { node, at, restart }
            })
            .collect();
        let store_latency = rng.random_range(0..=2 * MS);
        let store_stall = rng.random_range(0.0..0.05);
        let store_stall_max = rng.random_range(10 * MS..=200 * MS);
        let skew: Vec<i64> = (0..n)
            .map(|_| rng.random_range(-MAX_SKEW_MICROS..=MAX_SKEW_MICROS))
            .collect();
        let backends = (0..n)
            .map(|_| {
                if rng.random_bool(0.3) {
                    Backend::Redb
                } else {
                    Backend::Mem
                }
            })
            .collect();
        let anti_entropy = if rng.random_bool(0.25) {
            None
        } else {
            Some(Duration::from_secs(rng.random_range(10..=60)))
        };
        // Later families: streams of their own, so the draws above never move.
        let byzantine = ByzantinePlan::draw(cfg, safety);
        let store_fail = StoreFail::draw(cfg.seed);
        let gossip_stalls = GossipStall::draw(cfg.seed, n, safety);
        let on = |fault: Fault| f.has(fault);
        Self {
            latency: if on(Fault::Latency) { latency } else { 5 * MS },
            jitter: if on(Fault::Latency) { jitter } else { 0 },
            gossip_loss: if on(Fault::Loss) { gossip_loss } else { 0.0 },
            sync_fail: if on(Fault::Loss) { sync_fail } else { 0.0 },
            duplicate: if on(Fault::Duplication) {
                duplicate
            } else {
                0.0
            },
            reorder: if on(Fault::Reordering) { reorder } else { 0.0 },
            reorder_delay,
            detect,
            partitions: if on(Fault::Partition) {
                partitions
            } else {
                Vec::new()
            },
            crashes: if on(Fault::Crash) {
                crashes
            } else {
                Vec::new()
            },
            store_latency: if on(Fault::SlowStore) {
                store_latency
            } else {
                0
            },
            store_stall: if on(Fault::SlowStore) {
                store_stall
            } else {
                0.0
            },
            store_stall_max,
            skew: if on(Fault::Skew) { skew } else { vec![0; n] },
            backends,
            // Its own stream: the other parameters of a seed stay as they were.
            index_budget: if stream(cfg.seed, "index-budget").random_bool(0.35) {
                0
            } else {
                usize::MAX
            },
            anti_entropy,
            safety,
            byzantine: on(Fault::Byzantine).then_some(byzantine),
            store_fail: if on(Fault::StoreFail) {
                store_fail
            } else {
                StoreFail::default()
            },
            gossip_stalls: if on(Fault::GossipStall) {
                gossip_stalls
            } else {
                Vec::new()
            },
        }
    }
}

pub(crate) fn secs(us: u64) -> String {
    format!("{:.3}s", us as f64 / SEC as f64)
}

impl fmt::Display for FaultParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  latency {} + jitter {} | gossip loss {:.3} dup {:.3} reorder {:.3} (≤{}) | sync fail/frame {:.4} | detect {}",
            secs(self.latency),
            secs(self.jitter),
            self.gossip_loss,
            self.duplicate,
            self.reorder,
            secs(self.reorder_delay),
            self.sync_fail,
            secs(self.detect),
        )?;
        writeln!(
            f,
            "  store {} per command, stall p={:.3} ≤{} | anti-entropy {} | safety phase {}",
            secs(self.store_latency),
            self.store_stall,
            secs(self.store_stall_max),
            self.anti_entropy
                .map_or("off".to_string(), |d| format!("{}s", d.as_secs())),
            secs(self.safety),
        )?;
        let backends: Vec<&str> = self
            .backends
            .iter()
            .map(|b| match b {
                Backend::Mem => "mem",
                Backend::Redb => "redb",
            })
            .collect();
        let skew: Vec<String> = self
            .skew
            .iter()
            .map(|s| format!("{:+.0}s", *s as f64 / SEC as f64))
            .collect();
        writeln!(
            f,
            "  stores [{}] | index budget {} | skew [{}]",
            backends.join(" "),
            if self.index_budget == usize::MAX {
                "none".to_string()
            } else {
                format!("{} B", self.index_budget)
            },
            skew.join(" ")
        )?;
        for p in &self.partitions {
            writeln!(
                f,
                "  partition {}..{}: {} blocked directions {:?}",
                secs(p.start),
                secs(p.end),
                p.blocked.len(),
                &p.blocked[..p.blocked.len().min(8)]
            )?;
        }
        for c in &self.crashes {
            writeln!(
                f,
                "  crash node {} at {}, restart at {}",
                c.node,
                secs(c.at),
                secs(c.restart)
            )?;
        }
        for g in &self.gossip_stalls {
            writeln!(
                f,
                "  gossip of node {} stalls {}..{}",
                g.node,
                secs(g.start),
                secs(g.end)
            )?;
        }
        let sf = &self.store_fail;
        if *sf != StoreFail::default() {
            writeln!(
                f,
                "  store failures: command p={:.4}, commit p={:.3}, long stall p={:.4} ≤{}",
                sf.command,
                sf.commit,
                sf.long_stall,
                secs(sf.long_stall_max)
            )?;
        }
        if let Some(b) = &self.byzantine {
            write!(f, "{b}")?;
        }
        Ok(())
    }
}
