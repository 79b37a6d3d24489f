//! Starting, crashing and restarting nodes; partitions; the heal that ends the safety phase.
//!
//! A crash takes the node's process away at once: `Live`, the executor and its queue, the
//! gossip states, and every store write not yet committed (see [`crate::store`]). Its peers
//! notice after the detection delay (sync connections close with an error, gossip links report
//! `PeerDisconnected`). The restart builds a fresh process from the committed store — a new
//! `Live` with a new rng, the documents reopened — and resumes like an application would:
//! subscribe to every document and `StartSync` the documents it was syncing, with one or two
//! current members as bootstrap peers (`Live` adds the useful peers the store remembers).

use sheaf_core::{
    live::{ApiCommand, Input, Live},
    replica::{OpenOpts, ReplicaConfig, Replicas},
    store::{Backend as _, MemBackend},
    wire::NodeAddr,
};

use crate::{
    config::{stream, Backend, SEC},
    report::FailureKind,
    store::SimStore,
    world::{Event, Proc, Sim, Work},
};

impl Sim {
    /// Starts a process for `node` on an empty store or on `committed`.
    pub fn start_proc(&mut self, node: usize, committed: Option<MemBackend>) -> Result<(), String> {
        let backend: Backend = self.params.backends[node];
        let verified = self.verified.clone();
        let store = match committed {
            Some(c) => SimStore::restore(backend, c, verified),
            None => SimStore::new(backend, verified),
        }
        .map_err(|e| format!("node {node}: cannot open its store: {e}"))?;
        let blobs = self.nodes[node].blobs.clone();
        let config = ReplicaConfig {
            index_budget: self.params.index_budget,
            ..ReplicaConfig::default()
        };
        let mut replicas = Replicas::with_content(store, blobs, config);
        let namespaces = replicas
            .list_namespaces()
            .map_err(|e| format!("node {node}: {e}"))?;
        for (ns, _) in namespaces {
            // The application's own handle, as the engine's `Doc` holds one.
            replicas
                .open(ns, OpenOpts::default())
                .map_err(|e| format!("node {node}: {e}"))?;
        }
        let epoch = self.nodes[node].epoch;
        let mut seed = [0u8; 32];
        rand::RngExt::fill(
            &mut stream(self.cfg.seed, &format!("live/{node}/{epoch}")),
            &mut seed[..],
        );
        let mut live_config = self.live_config.clone();
        live_config.sync_v2 = self.v2.nodes[node];
        let live = Live::new(live_config, self.nodes[node].id, seed);
        self.nodes[node].proc = Some(Proc {
            live,
            replicas,
            executor: Default::default(),
            exec_due: None,
            commit_scheduled: None,
            live_timers: Default::default(),
            topics: Default::default(),
            next_accept: 0,
            next_api: 0,
            api_in_busy: 0,
            gossip_bans: Default::default(),
        });
        Ok(())
    }

    /// Hands an API command to `node`'s `Live` now.
    pub fn api(&mut self, node: usize, command: ApiCommand) {
        let Some(proc) = self.nodes[node].proc.as_mut() else {
            return;
        };
        let request = sheaf_core::live::ApiRequestId(proc.next_api);
        proc.next_api += 1;
        proc.api_in_busy += 1;
        self.drive(node, Work::Live(Input::Api { request, command }));
    }

    /// Up to `n` other current members of `doc`, drawn by the workload rng.
    pub fn bootstrap_peers(&mut self, doc: usize, node: usize, n: usize) -> Vec<NodeAddr> {
        let mut others: Vec<usize> = self
            .members
            .iter()
            .filter(|(d, m)| *d == doc && *m != node)
            .map(|(_, m)| *m)
            .collect();
        let mut out = Vec::new();
        while out.len() < n && !others.is_empty() {
            let i = rand::RngExt::random_range(&mut self.work_rng, 0..others.len());
            out.push(NodeAddr::new(self.nodes[others.swap_remove(i)].id));
        }
        out
    }

    /// Subscribes to every document and rejoins those the node is a member of.
    pub fn resume(&mut self, node: usize) {
        for doc in 0..self.docs.len() {
            let namespace = self.docs[doc].id;
            self.api(node, ApiCommand::Subscribe { namespace });
            if self.members.contains(&(doc, node)) {
                let peers = self.bootstrap_peers(doc, node, 2);
                self.api(node, ApiCommand::StartSync { namespace, peers });
            }
        }
    }

    /// The node crashes.
    pub fn crash(&mut self, node: usize) {
        let Some(mut proc) = self.nodes[node].proc.take() else {
            return;
        };
        self.counters.crashes += 1;
        self.counters.add_live_stats(&proc.live.stats());
        let lost = proc.replicas.indexed_mut().backend().uncommitted();
        let placeholder =
            SimStore::new(Backend::Mem, Default::default()).expect("an empty MemBackend opens");
        let store = std::mem::replace(proc.replicas.indexed_mut().backend_mut(), placeholder);
        self.nodes[node].committed = Some(store.crash());
        self.trace.note(
            self.now,
            &format!("node {node} crashed, {lost} uncommitted mutations lost"),
        );
        self.break_conns(
            move |_, a, b| a == node || b == node,
            "connection lost: peer crashed",
        );
        self.break_v2_conns(
            move |_, a, b| a == node || b == node,
            "connection lost: peer crashed",
        );
        self.break_links(move |_, a, b| a == node || b == node);
    }

    /// The node restarts from its committed store.
    pub fn restart(&mut self, node: usize) {
        if self.up(node) {
            return;
        }
        let committed = self.nodes[node].committed.take().unwrap_or_default();
        self.nodes[node].epoch += 1;
        self.trace.note(self.now, &format!("node {node} restarts"));
        if let Err(e) = self.start_proc(node, Some(committed)) {
            self.fail(FailureKind::Safety, e);
            return;
        }
        self.resume(node);
    }

    /// A partition starts: connections across it die after the detection delay.
    pub fn partition_start(&mut self, i: usize) {
        self.active_partitions.insert(i);
        let n = self.params.partitions[i].blocked.len();
        self.trace
            .note(self.now, &format!("partition {i} starts ({n} directions)"));
        let dead = |s: &Sim, a: usize, b: usize| s.blocked(a, b) || s.blocked(b, a);
        self.break_conns(dead, "connection lost: partitioned");
        self.break_v2_conns(dead, "connection lost: partitioned");
        self.break_links(dead);
    }

    /// End of the safety phase: heal every fault (store failures stop and stalls in progress
    /// end, the byzantine node stops and its connections drop), restart crashed nodes, ask every member to sync with
    /// every other member, and start checking liveness.
    pub fn heal(&mut self) {
        self.healed_at = Some(self.now);
        self.trace.note(self.now, "heal");
        self.active_partitions.clear();
        let stalls: Vec<usize> = self.gossip_stalled.iter().copied().collect();
        for i in stalls {
            self.gossip_stall_end(i);
        }
        self.params.gossip_loss = 0.0;
        self.params.duplicate = 0.0;
        self.params.reorder = 0.0;
        self.params.sync_fail = 0.0;
        self.params.store_fail = Default::default();
        self.end_store_stalls();
        self.byz_stop();
        for node in 0..self.nodes.len() {
            self.restart(node);
        }
        for node in 0..self.nodes.len() {
            if let Err(reason) = self.check_full(node) {
                self.fail(FailureKind::Safety, format!("node {node}: {reason}"));
                return;
            }
        }
        let members: Vec<(usize, usize)> = self.members.iter().copied().collect();
        for (doc, node) in members {
            let namespace = self.docs[doc].id;
            let peers = self
                .members
                .iter()
                .filter(|(d, m)| *d == doc && *m != node)
                .map(|(_, m)| NodeAddr::new(self.nodes[*m].id))
                .collect();
            self.api(node, ApiCommand::StartSync { namespace, peers });
        }
        self.push(self.now + SEC, Event::Check);
    }

    /// Stored entries of every node's store, for the summary.
    pub fn total_entries(&mut self) -> usize {
        let mut total = 0;
        for node in &mut self.nodes {
            if let Some(proc) = node.proc.as_mut() {
                let store = proc.replicas.indexed_mut();
                for (ns, _) in store.list_namespaces().unwrap_or_default() {
                    total += store.namespace_len(ns).unwrap_or(0);
                }
            }
        }
        total
    }
}
