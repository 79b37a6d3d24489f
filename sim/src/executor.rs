//! The store executor of each node, and the store faults (`slow-store`, `store-fail`).
//!
//! The executor is modelled as iroh-docs' sync actor: one FIFO of commands per node, each
//! taking the (seeded) store latency, answered in order. `Live`'s commands and the workload's
//! API writes share that FIFO, as they share the actor in the engine. Commits happen when
//! `Replicas::poll_timeout` says so; a failed commit is retried at once, as the engine's
//! store thread does.
//!
//! # Store faults
//!
//! * `slow-store`: every command takes a base latency, and now and then stalls up to 200 ms.
//! * `store-fail` adds three things a real backend does:
//!   * **Failing commands.** A command that reads or writes the backend fails now and then
//!     with [`StoreError::Backend`] (an I/O error, as redb reports one) *before* it runs: the
//!     store is left unchanged and no replica event is emitted. Commands that only touch the
//!     executor's memory (open — the application always holds a handle here —, close, set
//!     sync, subscribe, unsubscribe) never fail. A command that fails halfway through, leaving
//!     some of its writes in the open transaction, is not modelled: the backends do not promise
//!     a command is atomic within a transaction, and `Live` could not tell the difference.
//!   * **Failing commits.** The commit fails and, as with redb (whose `commit` consumes the
//!     transaction), every write since the last commit is lost: `SimStore` rolls the backend
//!     back to its committed shadow and `Indexed` drops its fingerprint indexes (the
//!     production path, see `Indexed::flush`). Data that was *committed* is never lost; writes
//!     acknowledged to `Live` or the API but not yet committed are lost as they are in a crash
//!     — without the restart: `Live` is not told (the engine only logs a failed commit), and
//!     repair comes from later syncs. The rollback touches every rolled-back key, so the prefix
//!     invariant is checked around them after the event.
//!   * **Long stalls.** Rarely, a command waits 2–20 s before it runs (on top of `slow-store`'s
//!     stalls): `Live`'s store work piles up behind it, and the store backlog bound
//!     ([`crate::check`]) must still hold.
//!
//! All three stop at the heal, and a stall in progress then ends at once. Their decisions come from their own rng (stream
//! `store-fail`), so they shift no draw of the network or the workload.

use std::collections::VecDeque;

use rand::RngExt;
use sheaf_core::{
    live::Input,
    replica::{ReplicaError, StoreCommand, V2Command},
    store::StoreError,
};

use crate::{
    report::FailureKind,
    world::{Event, Job, Sim, Work},
};

/// Whether `cmd` reads or writes the backend (and so can fail like it).
fn touches_backend(cmd: &StoreCommand) -> bool {
    use StoreCommand as C;
    !matches!(
        cmd,
        C::Open { .. }
            | C::Close(_)
            | C::GetState(_)
            | C::SetSync { .. }
            | C::Subscribe(_)
            | C::Unsubscribe(_)
            | C::Shutdown
    )
}

/// The error of an injected command failure.
fn injected() -> ReplicaError {
    ReplicaError::Store(StoreError::Backend(
        "simulated I/O error: input/output error (os error 5)".into(),
    ))
}

impl Sim {
    /// Queues a job for the node's store executor.
    pub fn enqueue_job(&mut self, node: usize, job: Job) {
        let epoch = self.nodes[node].epoch;
        let delay = self.store_delay();
        let Some(proc) = self.nodes[node].proc.as_mut() else {
            return;
        };
        proc.executor.push_back(job);
        let backlog = proc.executor.len().max(proc.live.pending_store_requests());
        self.counters.largest_store_backlog = self.counters.largest_store_backlog.max(backlog);
        if proc.exec_due.is_none() {
            proc.exec_due = Some(self.now + delay);
            self.push(self.now + delay, Event::StoreExec { node, epoch });
        }
    }

    fn store_delay(&mut self) -> u64 {
        let p = &self.params;
        let (base, stall, max) = (p.store_latency, p.store_stall, p.store_stall_max);
        let (long, long_max) = (p.store_fail.long_stall, p.store_fail.long_stall_max);
        let mut d = base;
        if stall > 0.0 && self.net_rng.random_bool(stall) {
            d += self.net_rng.random_range(0..=max);
        }
        if long > 0.0 && self.fail_rng.random_bool(long) {
            d += self.fail_rng.random_range(long_max / 4..=long_max);
            self.counters.long_stalls += 1;
        }
        d
    }

    /// Whether the next command (`cmd`) fails by the `store-fail` family.
    fn command_fails(&mut self, cmd: &StoreCommand) -> bool {
        let p = self.params.store_fail.command;
        let fails = p > 0.0 && touches_backend(cmd) && self.fail_rng.random_bool(p);
        if fails {
            self.counters.commands_failed += 1;
        }
        fails
    }

    /// Whether a sync v2 command fails by the `store-fail` family: those that read or write
    /// the backend may; the connection's memory-only ones (begin, definitions, end) never do.
    fn v2_command_fails(&mut self, cmd: &V2Command) -> bool {
        let p = self.params.store_fail.command;
        let touches = !matches!(
            cmd,
            V2Command::Begin { .. } | V2Command::Define { .. } | V2Command::End { .. }
        );
        let fails = p > 0.0 && touches && self.fail_rng.random_bool(p);
        if fails {
            self.counters.commands_failed += 1;
        }
        fails
    }

    /// The executor runs its next job.
    pub(crate) fn exec(&mut self, node: usize) {
        let now = self.node_now(node);
        let epoch = self.nodes[node].epoch;
        let t = self.now;
        let proc = self.nodes[node].proc.as_mut().expect("up");
        proc.exec_due = None;
        let Some(job) = proc.executor.pop_front() else {
            return;
        };
        let fails = match &job {
            Job::Live { command, .. } | Job::Api(command) => self.command_fails(command),
            Job::V2 { command, .. } => self.v2_command_fails(command),
            Job::RawPut(_) => false,
        };
        let proc = self.nodes[node].proc.as_mut().expect("up");
        let mut work = VecDeque::new();
        match job {
            Job::Live { request, command } => {
                let result = if fails {
                    self.trace.record(t, node, "store-fail", &command);
                    Err(injected())
                } else {
                    proc.replicas.apply(now, command)
                };
                while let Some(e) = proc.replicas.poll_event() {
                    work.push_back(Work::Live(Input::Replica(e)));
                }
                work.push_back(Work::Live(Input::StoreReply { request, result }));
            }
            Job::Api(command) => {
                self.trace.record(t, node, "api", &command);
                let result = if fails {
                    Err(injected())
                } else {
                    proc.replicas.apply(now, command)
                };
                self.trace.record(t, node, "api-reply", &result);
                while let Some(e) = proc.replicas.poll_event() {
                    work.push_back(Work::Live(Input::Replica(e)));
                }
            }
            Job::V2 { conn, end, command } => {
                let result = if fails {
                    self.trace.record(t, node, "store-fail", &command);
                    Err(injected().to_string())
                } else {
                    proc.replicas
                        .apply_v2(now, command)
                        .map_err(|e| e.to_string())
                };
                while let Some(e) = proc.replicas.poll_event() {
                    work.push_back(Work::Live(Input::Replica(e)));
                }
                work.push_back(Work::V2Store { conn, end, result });
            }
            Job::RawPut(entry) => {
                self.trace.record(t, node, "raw-put", &entry);
                use sheaf_core::store::Backend;
                if let Err(e) = proc.replicas.indexed_mut().put(entry) {
                    self.trace.record(t, node, "raw-put-error", &e);
                }
            }
        }
        let more = !proc.executor.is_empty();
        let commit_at = proc.replicas.poll_timeout().map(|m| m.0);
        if more {
            let delay = self.store_delay();
            let proc = self.nodes[node].proc.as_mut().expect("up");
            proc.exec_due = Some(self.now + delay);
            self.push(self.now + delay, Event::StoreExec { node, epoch });
        }
        self.schedule_commit(node, commit_at);
        self.drive_all(node, &mut work);
    }

    /// The heal: a store stall in progress ends now (its executor runs its next command at
    /// once), like every other fault. Without it, a long stall would let work of the safety
    /// phase — a session of a document its node has since left — reach a member seconds after
    /// the members' final sync round, with entries older than the authors' heads its
    /// neighbours hold: `SyncReport`s cannot carry those, and without anti-entropy nothing
    /// else would (the protocol's limit, iroh-docs' too, not a fault of the run).
    pub(crate) fn end_store_stalls(&mut self) {
        for node in 0..self.nodes.len() {
            let epoch = self.nodes[node].epoch;
            let now = self.now;
            let Some(proc) = self.nodes[node].proc.as_mut() else {
                continue;
            };
            if proc.exec_due.is_some_and(|due| due > now) {
                proc.exec_due = Some(now);
                self.push(now, Event::StoreExec { node, epoch });
            }
        }
    }

    fn schedule_commit(&mut self, node: usize, at: Option<u64>) {
        let epoch = self.nodes[node].epoch;
        let Some(proc) = self.nodes[node].proc.as_mut() else {
            return;
        };
        if let Some(at) = at {
            if proc.commit_scheduled != Some(at) {
                proc.commit_scheduled = Some(at);
                self.push(at, Event::StoreCommit { node, epoch });
            }
        }
    }

    /// The executor commits (if the commit is due); with `store-fail`, the commit may fail
    /// and lose the open transaction.
    pub(crate) fn commit(&mut self, node: usize) {
        let now = self.node_now(node);
        let p = self.params.store_fail.commit;
        let inject = p > 0.0 && self.fail_rng.random_bool(p);
        let proc = self.nodes[node].proc.as_mut().expect("up");
        proc.commit_scheduled = None;
        let store = proc.replicas.indexed_mut().backend_mut();
        store.fail_next_flush(inject);
        let result = proc.replicas.handle_timeout(now);
        let store = proc.replicas.indexed_mut().backend_mut();
        let injected = store.take_flush_failure();
        store.fail_next_flush(false);
        match result {
            Err(e) if injected.is_some() => {
                self.counters.commits_failed += 1;
                let lost = injected.unwrap_or(0);
                self.trace.note(
                    self.now,
                    &format!("node {node}: commit failed ({e}), {lost} uncommitted mutations lost"),
                );
                // The node ran (its store changed): check it after this event.
                self.dirty.insert(node);
            }
            Err(e) => {
                let reason = format!("node {node}: commit failed: {e}");
                self.fail(FailureKind::Safety, reason);
                return;
            }
            Ok(()) => {}
        }
        let proc = self.nodes[node].proc.as_mut().expect("up");
        let next = proc.replicas.poll_timeout().map(|m| m.0);
        self.schedule_commit(node, next);
    }
}
