//! The store thread: the node's store (`Replicas<B>` over any [`Backend`], redb by default)
//! on an OS thread of its own, and [`StoreHandle`], the handle to it.
//!
//! Every store operation of the node — the API's and `Live`'s — goes through one channel to
//! this thread and runs in order. After each command the thread drains the executor's replica
//! events to `Live`, and between commands it commits pending writes when the executor's commit
//! deadline (at most 500 ms after the first uncommitted write) has passed. Content status of
//! outgoing entries is read from the iroh-blobs store, blocking this thread only, a reply's
//! entries at once (up to 1,024 look-ups in flight).
//!
//! The thread is generic over the backend; the handle is not: it only speaks
//! [`StoreCommand`]s over a channel, so [`Docs`](crate::Docs) stays one type whatever
//! backend it runs on.
//!
//! The executor is one thread, and checking signatures is most of what ingesting a synced
//! entry costs: the signatures of a sync message with many new entries are checked on all
//! cores while the executor processes it ([`crate::check_ahead`]).

use std::{
    sync::mpsc::RecvTimeoutError,
    thread,
    time::{Duration, Instant},
};

use sheaf_core::{
    live::{Input, StoreRequestId},
    ranger::{ContentStatus, ContentStatusSource},
    replica::{ReplicaConfig, ReplicaError, Replicas, StoreCommand, StoreResponse},
    store::Backend,
    time::{Mono, Now},
    Hash,
};
use tokio::sync::oneshot;

use crate::job_queue::{job_queue, JobRx, JobTx, SendError, MAX_QUEUED};

use crate::convert::blob_hash;

/// Reads content status from the blob store.
pub(crate) struct BlobContent(pub(crate) iroh_blobs::api::Store);

impl ContentStatusSource for BlobContent {
    fn content_status(&mut self, hash: &Hash) -> ContentStatus {
        let status = futures_lite::future::block_on(self.0.blobs().status(blob_hash(*hash)));
        to_content_status(status.ok())
    }

    /// Asks for up to [`STATUS_IN_FLIGHT`] statuses at once: one look-up is a round trip
    /// through the blob store's actor, and a reply of 100,000 entries asked one by one spent
    /// seconds waiting with both cores idle.
    fn content_statuses(&mut self, hashes: &[Hash]) -> Vec<ContentStatus> {
        let blobs = self.0.blobs();
        let mut out = Vec::with_capacity(hashes.len());
        for chunk in hashes.chunks(STATUS_IN_FLIGHT) {
            let asks = chunk.iter().map(|h| blobs.status(blob_hash(*h)));
            let statuses = futures_lite::future::block_on(n0_future::join_all(asks));
            out.extend(statuses.into_iter().map(|s| to_content_status(s.ok())));
        }
        out
    }
}

/// Content-status look-ups a batch keeps in flight at once (the rest wait for the next round).
const STATUS_IN_FLIGHT: usize = 1024;

/// Maps iroh-blobs' status to the wire's content status.
pub(crate) fn to_content_status(
    status: Option<iroh_blobs::api::proto::BlobStatus>,
) -> ContentStatus {
    match status {
        Some(iroh_blobs::api::proto::BlobStatus::Complete { .. }) => ContentStatus::Complete,
        Some(iroh_blobs::api::proto::BlobStatus::Partial { .. }) => ContentStatus::Incomplete,
        _ => ContentStatus::Missing,
    }
}

pub(crate) type StoreResult = Result<StoreResponse, ReplicaError>;

/// API commands queued or running on the store thread at once; further callers wait (async)
/// for one to finish. Bounds the queue whatever number of tasks call the API.
const API_JOBS: usize = 1024;

enum Job {
    Live {
        request: StoreRequestId,
        command: StoreCommand,
    },
    Api {
        command: StoreCommand,
        reply: oneshot::Sender<StoreResult>,
    },
}

/// Handle to the store thread.
#[derive(Debug, Clone)]
pub(crate) struct StoreHandle {
    tx: JobTx<Job>,
    /// One permit per API job queued or running: at most [`API_JOBS`] at once.
    api_slots: std::sync::Arc<tokio::sync::Semaphore>,
    /// Set when shutdown begins: `Live`'s queued commands are then dropped, not run, so the
    /// final flush waits behind at most the command in progress.
    stopping: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Resolves once the thread has dropped the store (its file lock is released).
    closed: std::sync::Arc<std::sync::Mutex<Option<oneshot::Receiver<()>>>>,
}

/// The clock the engine hands to the core.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    start: Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }

    pub(crate) fn now(&self) -> Now {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        Now::new(self.mono(Instant::now()), wall)
    }

    pub(crate) fn mono(&self, at: Instant) -> Mono {
        Mono(at.saturating_duration_since(self.start).as_micros() as u64)
    }

    pub(crate) fn instant(&self, mono: Mono) -> Instant {
        self.start + Duration::from_micros(mono.0)
    }
}

impl StoreHandle {
    /// Starts the thread. Replies to `Live`'s commands and replica events go to `to_live`.
    pub(crate) fn spawn<B: Backend + Send + 'static>(
        backend: B,
        blobs: iroh_blobs::api::Store,
        config: ReplicaConfig,
        clock: Clock,
        to_live: tokio::sync::mpsc::Sender<crate::live_task::LiveMsg>,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
    ) -> std::io::Result<Self> {
        // Never blocks a sender (the live task runs on the async runtime); bounded at
        // `MAX_QUEUED` jobs, beyond which a job is answered with a store error. What the
        // senders keep in it is far less: `Live` at most one message being processed per open
        // session, `max_gossip_store` gossip commands and a few commands per ended session;
        // API callers hold one of `API_JOBS` permits until their reply arrives.
        let (tx, rx) = job_queue::<Job>(MAX_QUEUED);
        let (done_tx, done_rx) = oneshot::channel();
        let stopping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop_flag = stopping.clone();
        let exit = Exit {
            to_live: to_live.clone(),
            stopping: stopping.clone(),
            metrics: metrics.clone(),
        };
        thread::Builder::new()
            .name("sheaf-store".into())
            .spawn(move || {
                // Dropped last, also when the thread unwinds from a panic.
                let _exit = exit;
                let mut replicas = Replicas::with_content(backend, BlobContent(blobs), config);
                let threads = thread::available_parallelism().map_or(1, |n| n.get().min(8));
                let ahead = crate::check_ahead::Ahead { threads, metrics };
                ahead
                    .metrics
                    .record_index(&Default::default(), &replicas.index_stats());
                run(&mut replicas, rx, clock, to_live, &ahead, &stop_flag);
                if let Err(e) = replicas.flush_all() {
                    tracing::warn!(%e, "final flush failed");
                }
                drop(replicas);
                let _ = done_tx.send(());
            })?;
        Ok(Self {
            tx,
            api_slots: std::sync::Arc::new(tokio::sync::Semaphore::new(API_JOBS)),
            stopping,
            closed: std::sync::Arc::new(std::sync::Mutex::new(Some(done_rx))),
        })
    }

    /// Runs a command for the API and waits for its result: [`ReplicaError::Stopped`] if the
    /// thread is gone or goes before it answers.
    pub(crate) async fn call(&self, command: StoreCommand) -> StoreResult {
        // Never closed: a permit is always granted eventually.
        let Ok(_slot) = self.api_slots.acquire().await else {
            return Err(ReplicaError::Stopped);
        };
        let (reply, rx) = oneshot::channel();
        if let Err(e) = self.tx.send(Job::Api { command, reply }) {
            return Err(refused(e));
        }
        rx.await.unwrap_or(Err(ReplicaError::Stopped))
    }

    /// Flushes, stops the thread and waits until the store is closed.
    pub(crate) async fn shutdown(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.call(StoreCommand::Shutdown).await;
        let done = self.closed.lock().ok().and_then(|mut c| c.take());
        if let Some(done) = done {
            let _ = done.await;
        }
    }

    /// Queues a command from `Live`; the reply arrives in `Live`'s inbox. Refused when the
    /// thread is gone or the queue is full.
    pub(crate) fn send_live(
        &self,
        request: StoreRequestId,
        command: StoreCommand,
    ) -> Result<(), ReplicaError> {
        self.tx
            .send(Job::Live { request, command })
            .map_err(refused)
    }
}

/// Reports the store thread's end to `Live` unless a shutdown asked for it (a panic is reported
/// in any case): `Live` then
/// answers every command the thread had not ([`Input::StoreStopped`]), and later commands are
/// answered at once by the live task. Runs when the thread returns or unwinds from a panic.
struct Exit {
    to_live: tokio::sync::mpsc::Sender<crate::live_task::LiveMsg>,
    stopping: std::sync::Arc<std::sync::atomic::AtomicBool>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl Drop for Exit {
    fn drop(&mut self) {
        // A panic is a failure even when a shutdown was asked for meanwhile: the thread may
        // still be unwinding from a crash when the node starts shutting down.
        if self.stopping.load(std::sync::atomic::Ordering::Relaxed) && !std::thread::panicking() {
            return;
        }
        tracing::error!("the store thread stopped; documents answer with errors from now on");
        self.metrics.store_stopped.set(1);
        let stopped = crate::live_task::LiveMsg::Input(Input::StoreStopped);
        // Not a runtime thread: waiting for room in the inbox is fine; a closed inbox means
        // the node is gone anyway.
        let _ = self.to_live.blocking_send(stopped);
    }
}

/// The error a refused job is answered with.
fn refused(e: SendError) -> ReplicaError {
    match e {
        SendError::Closed => ReplicaError::Stopped,
        SendError::Full => ReplicaError::Store(sheaf_core::store::StoreError::Backend(format!(
            "the store queue is full ({MAX_QUEUED} jobs)"
        ))),
    }
}

fn run<B: Backend>(
    replicas: &mut Replicas<B, BlobContent>,
    rx: JobRx<Job>,
    clock: Clock,
    to_live: tokio::sync::mpsc::Sender<crate::live_task::LiveMsg>,
    ahead: &crate::check_ahead::Ahead,
    stopping: &std::sync::atomic::AtomicBool,
) {
    let mut index = replicas.index_stats();
    loop {
        let job = match replicas.poll_timeout() {
            Some(due) => {
                let wait = clock.instant(due).saturating_duration_since(Instant::now());
                match rx.recv_timeout(wait) {
                    Ok(job) => Some(job),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            None => match rx.recv() {
                Ok(job) => Some(job),
                Err(_) => return,
            },
        };
        let job = job.filter(|job| {
            // `Live` has stopped: nobody waits for the answers to its queued commands.
            !(matches!(job, Job::Live { .. })
                && stopping.load(std::sync::atomic::Ordering::Relaxed))
        });
        if let Some(job) = job {
            let shutdown = matches!(
                &job,
                Job::Live {
                    command: StoreCommand::Shutdown,
                    ..
                } | Job::Api {
                    command: StoreCommand::Shutdown,
                    ..
                }
            );
            let (result, reply) = match job {
                Job::Live { request, command } => (
                    crate::check_ahead::apply(replicas, || clock.now(), command, ahead),
                    Err(request),
                ),
                // Sync v2's store commands come this way.
                Job::Api { command, reply } => (
                    crate::check_ahead::apply(replicas, || clock.now(), command, ahead),
                    Ok(reply),
                ),
            };
            while let Some(event) = replicas.poll_event() {
                if to_live
                    .blocking_send(crate::live_task::LiveMsg::Input(Input::Replica(event)))
                    .is_err()
                {
                    break;
                }
            }
            match reply {
                Ok(reply) => {
                    let _ = reply.send(result);
                }
                Err(request) => {
                    let _ = to_live.blocking_send(crate::live_task::LiveMsg::Input(
                        Input::StoreReply { request, result },
                    ));
                }
            }
            if shutdown {
                return;
            }
        }
        if let Err(e) = replicas.handle_timeout(clock.now()) {
            tracing::warn!(%e, "commit failed");
        }
        let now = replicas.index_stats();
        if now != index {
            ahead.metrics.record_index(&index, &now);
            index = now;
        }
    }
}
