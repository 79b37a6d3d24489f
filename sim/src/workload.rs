//! The world a seed builds and the workload it runs.
//!
//! Setup (stream `setup`): 2–4 authors, one namespace secret per document, and per node a
//! random id, a non-empty subset of the authors, a capability per document (write, or read
//! for about one in seven node/document pairs) and a download policy per document (everything;
//! nothing except keys under `a`; everything except keys under `b`). Each document starts
//! with a random set of at least two members, who join one after another in the first
//! second, each naming an earlier member as bootstrap peer. Every node subscribes to every
//! document (the simulator reads `SyncFinished` events to explain failures).
//!
//! Operations (stream `workload`), spread uniformly over the safety phase, on a random node
//! and document:
//!
//! | share | operation |
//! | --- | --- |
//! | 55% | set a random key (1–3 segments of `a`, `b`, `\xff` — or more, see [`SimConfig::key_segments`] — joined by `/`) to fresh content, by one of the node's authors; the blob goes into the node's blob store first |
//! | 15% | delete a key (a prefix delete of a full key, as iroh-docs' `del`) |
//! | 10% | delete a prefix (a truncated key; the empty prefix now and then) |
//! | 20% | join the document if not a member (`StartSync` with one or two current members), leave it (`Leave`) if one |
//!
//! Writes go through the node's store executor as API commands, exactly like the engine's
//! `Doc` API; a write on a read-only capability or on a crashed node is skipped and counted.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use rand::RngExt;
use sheaf_core::{
    hash::{Hash, PeerId},
    keys::{Author, Capability, NamespaceSecret},
    live::{ApiCommand, LiveConfig},
    replica::{OpenOpts, StoreCommand},
    store::{DownloadPolicy, FilterKind},
    Record, SignedEntry,
};

use crate::{
    byzantine::{ByzEvent, Byzantine},
    config::{stream, FaultParams, OpMix, PlantedBug, SimConfig, MS, SEC},
    trace::Trace,
    world::{Blobs, Counters, Doc, Event, Job, Node, Sim},
};

const SEGMENTS: [&[u8]; 3] = [b"a", b"b", b"\xff"];

/// Key segment `i`: `a`, `b`, `\xff`, then `k3`, `k4`, … for wider key spaces.
fn segment(i: usize, out: &mut Vec<u8>) {
    match SEGMENTS.get(i) {
        Some(s) => out.extend_from_slice(s),
        None => out.extend_from_slice(format!("k{i}").as_bytes()),
    }
}

fn random_key(rng: &mut impl RngExt, segments: usize, flat: bool) -> Vec<u8> {
    let depth = if flat { 3 } else { rng.random_range(1..=3) };
    let mut key = Vec::new();
    for i in 0..depth {
        if i > 0 {
            key.push(b'/');
        }
        segment(rng.random_range(0..segments), &mut key);
    }
    key
}

fn random_prefix(rng: &mut impl RngExt, segments: usize) -> Vec<u8> {
    if rng.random_bool(0.03) {
        return Vec::new();
    }
    let key = random_key(rng, segments, false);
    let len = rng.random_range(1..=key.len());
    key[..len].to_vec()
}

impl Sim {
    /// Builds the world of `cfg`'s seed and queues its whole timeline.
    pub fn new(cfg: SimConfig, trace: Trace) -> Result<Sim, String> {
        if cfg.nodes < 2 || cfg.docs < 1 {
            return Err("need at least 2 nodes and 1 document".into());
        }
        let params = FaultParams::draw(&cfg);
        let mut setup = stream(cfg.seed, "setup");
        let authors: Vec<Author> = (0..setup.random_range(2..=4usize))
            .map(|_| Author::new(&mut setup))
            .collect();
        let docs: Vec<Doc> = (0..cfg.docs)
            .map(|_| {
                let secret = NamespaceSecret::new(&mut setup);
                let id = secret.id();
                Doc { secret, id }
            })
            .collect();
        let mut nodes = Vec::new();
        let mut index = BTreeMap::new();
        let mut policies = Vec::new();
        for i in 0..cfg.nodes {
            let id = PeerId::from(setup.random::<[u8; 32]>());
            index.insert(id, i);
            let mut mine: Vec<usize> = (0..authors.len())
                .filter(|_| setup.random_bool(0.6))
                .collect();
            if mine.is_empty() {
                mine.push(setup.random_range(0..authors.len()));
            }
            let writable: Vec<bool> = (0..cfg.docs).map(|_| !setup.random_bool(0.15)).collect();
            let policy: Vec<DownloadPolicy> = (0..cfg.docs)
                .map(|_| match setup.random_range(0..10u8) {
                    0 => DownloadPolicy::NothingExcept(vec![FilterKind::Prefix(
                        Bytes::from_static(b"a"),
                    )]),
                    1 => DownloadPolicy::EverythingExcept(vec![FilterKind::Prefix(
                        Bytes::from_static(b"b"),
                    )]),
                    _ => DownloadPolicy::default(),
                })
                .collect();
            policies.push(policy);
            nodes.push(Node {
                id,
                blobs: Blobs::default(),
                skew: params.skew[i],
                epoch: 0,
                proc: None,
                committed: None,
                authors: mine,
                writable,
                last_sync: BTreeMap::new(),
                v2_refused: BTreeMap::new(),
                api_errors: BTreeMap::new(),
            });
        }
        let mut members = BTreeSet::new();
        let mut join_order = Vec::new();
        for doc in 0..cfg.docs {
            let p = if cfg.mix == OpMix::Writes { 1.0 } else { 0.75 };
            let mut m: Vec<usize> = (0..cfg.nodes).filter(|_| setup.random_bool(p)).collect();
            while m.len() < 2 {
                let extra = setup.random_range(0..cfg.nodes);
                if !m.contains(&extra) {
                    m.push(extra);
                }
            }
            // Shuffle the join order.
            for i in (1..m.len()).rev() {
                m.swap(i, setup.random_range(0..=i));
            }
            for &node in &m {
                members.insert((doc, node));
            }
            join_order.push(m);
        }
        let mut live_config = LiveConfig {
            anti_entropy_interval: params.anti_entropy,
            ..LiveConfig::default()
        };
        if params.byzantine.is_some() {
            live_config = crate::byzantine::hostile_config(live_config, cfg.nodes);
        }
        let mut sim = Sim::from_parts(
            cfg,
            params,
            nodes,
            index,
            docs,
            authors,
            members,
            live_config,
            trace,
        );
        for (node, policies) in policies.iter().enumerate() {
            let id = sim.nodes[node].id;
            sim.trace.note(0, &format!("node {node} is {id:?}"));
            sim.start_proc(node, None)?;
            sim.provision(node, policies)
                .map_err(|e| format!("node {node}: setup failed: {e}"))?;
        }
        sim.schedule_timeline(join_order, &mut setup);
        Ok(sim)
    }

    /// Imports the node's authors, capabilities and policies, opens its documents, commits.
    fn provision(
        &mut self,
        node: usize,
        policies: &[DownloadPolicy],
    ) -> Result<(), sheaf_core::replica::ReplicaError> {
        let now = self.node_now(node);
        let authors: Vec<Author> = self.nodes[node]
            .authors
            .iter()
            .map(|a| self.authors[*a].clone())
            .collect();
        let caps: Vec<Capability> = self
            .docs
            .iter()
            .enumerate()
            .map(|(d, doc)| {
                if self.nodes[node].writable[d] {
                    Capability::Write(doc.secret.clone())
                } else {
                    Capability::Read(doc.id)
                }
            })
            .collect();
        let proc = self.nodes[node].proc.as_mut().expect("started");
        let r = &mut proc.replicas;
        for a in authors {
            r.import_author(now, a)?;
        }
        for (cap, policy) in caps.into_iter().zip(policies) {
            let ns = cap.id();
            r.import_namespace(now, cap)?;
            r.set_download_policy(now, ns, policy.clone())?;
            r.open(ns, OpenOpts::default())?;
        }
        r.flush()?;
        Ok(())
    }

    fn schedule_timeline(&mut self, join_order: Vec<Vec<usize>>, rng: &mut impl RngExt) {
        for node in 0..self.nodes.len() {
            for doc in 0..self.docs.len() {
                let namespace = self.docs[doc].id;
                self.push(
                    0,
                    Event::Api {
                        node,
                        epoch: 0,
                        command: ApiCommand::Subscribe { namespace },
                    },
                );
            }
        }
        for (doc, order) in join_order.into_iter().enumerate() {
            let namespace = self.docs[doc].id;
            let mut t = 100 * MS;
            for (i, &node) in order.iter().enumerate() {
                t += rng.random_range(0..300 * MS);
                let peers = if i == 0 {
                    Vec::new()
                } else {
                    let boot = order[rng.random_range(0..i)];
                    vec![sheaf_core::wire::NodeAddr::new(self.nodes[boot].id)]
                };
                self.push(
                    t,
                    Event::Api {
                        node,
                        epoch: 0,
                        command: ApiCommand::StartSync { namespace, peers },
                    },
                );
            }
        }
        let safety = self.params.safety;
        let mut times: Vec<u64> = (0..self.cfg.ops)
            .map(|_| rng.random_range(SEC..safety))
            .collect();
        times.sort_unstable();
        for t in times {
            self.push(t, Event::Op);
        }
        for (i, p) in self.params.partitions.clone().iter().enumerate() {
            self.push(p.start, Event::PartitionStart(i));
            self.push(p.end, Event::PartitionEnd(i));
        }
        for (i, g) in self.params.gossip_stalls.clone().iter().enumerate() {
            self.push(g.start, Event::GossipStallStart(i));
            self.push(g.end, Event::GossipStallEnd(i));
        }
        for (i, c) in self.params.crashes.clone().iter().enumerate() {
            self.push(c.at, Event::Crash(i));
            self.push(c.restart, Event::Restart(c.node));
        }
        let attacks = self.byz.as_ref().map_or(0, |b| b.plan.attacks.len());
        for i in 0..attacks {
            let at = self.byz.as_ref().expect("counted").plan.attacks[i].at;
            self.push(at, Event::Byzantine(ByzEvent::Attack(i)));
        }
        self.push(safety, Event::Heal);
    }

    /// Runs one workload operation.
    pub fn op(&mut self) {
        let node = self.work_rng.random_range(0..self.nodes.len());
        let doc = self.work_rng.random_range(0..self.docs.len());
        let mut roll = self.work_rng.random_range(0..100u32);
        if self.cfg.mix == OpMix::Writes {
            roll = 0;
        }
        if !self.up(node) {
            self.counters.ops_skipped += 1;
            return;
        }
        let namespace = self.docs[doc].id;
        let writable = self.nodes[node].writable[doc];
        let done = match roll {
            0..55 if writable => {
                let author = self.pick_author(node);
                self.set(node, doc, author);
                true
            }
            55..70 if writable => {
                let author = self.pick_author(node);
                let key = random_key(
                    &mut self.work_rng,
                    self.cfg.key_segments.max(1),
                    self.cfg.mix == OpMix::Writes,
                );
                self.delete(node, doc, author, key);
                true
            }
            70..80 if writable => {
                let author = self.pick_author(node);
                let prefix = random_prefix(&mut self.work_rng, self.cfg.key_segments.max(1));
                self.delete(node, doc, author, prefix);
                true
            }
            80.. if !self.members.contains(&(doc, node)) => {
                let peers = self.bootstrap_peers(doc, node, 2);
                self.members.insert((doc, node));
                self.api(node, ApiCommand::StartSync { namespace, peers });
                true
            }
            80.. => {
                self.members.remove(&(doc, node));
                self.api(
                    node,
                    ApiCommand::Leave {
                        namespace,
                        kill_subscribers: false,
                    },
                );
                true
            }
            _ => false,
        };
        if done {
            self.counters.ops_done += 1;
        } else {
            self.counters.ops_skipped += 1;
        }
    }

    fn pick_author(&mut self, node: usize) -> usize {
        let mine = &self.nodes[node].authors;
        mine[self.work_rng.random_range(0..mine.len())]
    }

    fn set(&mut self, node: usize, doc: usize, author: usize) {
        let key = random_key(
            &mut self.work_rng,
            self.cfg.key_segments.max(1),
            self.cfg.mix == OpMix::Writes,
        );
        let len = self.work_rng.random_range(1..=64usize);
        let value: Vec<u8> = (0..len).map(|_| self.work_rng.random::<u8>()).collect();
        let hash = Hash::new(&value);
        self.nodes[node].blobs.insert(hash);
        self.blob_len.insert(hash, len as u64);
        let command = StoreCommand::InsertLocal {
            namespace: self.docs[doc].id,
            author: self.authors[author].id(),
            key: key.into(),
            hash,
            len: len as u64,
        };
        self.enqueue_job(node, Job::Api(command));
    }

    fn delete(&mut self, node: usize, doc: usize, author: usize, prefix: Vec<u8>) {
        let buggy = matches!(self.cfg.planted_bug,
            Some(PlantedBug::IgnorePrefixDeletes { node: b }) if b == node);
        if buggy {
            let wall = self.node_now(node).wall_micros;
            let entry = SignedEntry::new(
                &self.docs[doc].secret,
                &self.authors[author],
                &prefix,
                Record::empty(wall),
            );
            self.enqueue_job(node, Job::RawPut(entry));
            return;
        }
        let command = StoreCommand::DeletePrefix {
            namespace: self.docs[doc].id,
            author: self.authors[author].id(),
            prefix: prefix.into(),
        };
        self.enqueue_job(node, Job::Api(command));
    }

    #[allow(clippy::too_many_arguments)]
    fn from_parts(
        cfg: SimConfig,
        params: FaultParams,
        nodes: Vec<Node>,
        index: BTreeMap<PeerId, usize>,
        docs: Vec<Doc>,
        authors: Vec<Author>,
        members: BTreeSet<(usize, usize)>,
        live_config: LiveConfig,
        trace: Trace,
    ) -> Sim {
        let v2 = crate::v2::V2Params::draw(cfg.seed, cfg.nodes, cfg.v2);
        Sim {
            byz: params
                .byzantine
                .clone()
                .map(|plan| Byzantine::new(cfg.seed, plan)),
            fail_rng: stream(cfg.seed, "store-fail"),
            net_rng: stream(cfg.seed, "net"),
            work_rng: stream(cfg.seed, "workload"),
            cfg,
            params,
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            nodes,
            index,
            docs,
            authors,
            members,
            blob_len: BTreeMap::new(),
            live_config,
            active_partitions: BTreeSet::new(),
            gossip_stalled: BTreeSet::new(),
            conns: BTreeMap::new(),
            sessions: BTreeMap::new(),
            next_conn: 0,
            v2conns: BTreeMap::new(),
            next_v2: 0,
            v2,
            links: BTreeSet::new(),
            pending_down: BTreeSet::new(),
            gossip_tail: BTreeMap::new(),
            trace,
            counters: Counters::default(),
            healed_at: None,
            converged_at: None,
            capped: false,
            entries_converged_at: None,
            warnings: Vec::new(),
            converged_docs: Vec::new(),
            failure: None,
            dirty: BTreeSet::new(),
            verified: Default::default(),
        }
    }
}
