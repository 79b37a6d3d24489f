//! Shutdown within a bound, whatever the number of documents, sessions and peers.
//!
//! A node stops in three parts: the docs engine (sessions closed, topics left, writes
//! flushed, store file closed), the protocols beside it on the router (gossip, blobs), then
//! the endpoint. Each wait on another part of the node is bounded, and a bound that expires
//! is logged and passed: the endpoint's close then ends whatever still waits on the network.
//!
//! The bound matters for gossip. iroh-gossip's actor leaves every topic while handling its
//! shutdown, awaiting a bounded send queue per neighbour for each `Disconnect`; with a
//! thousand topics shared with a live peer, both nodes' actors can end up waiting on each
//! other's full queues and neither shutdown returns until the connection dies (measured: a
//! node with 1,000 joined documents did not stop within 300 s while its peer was up).
//! [`BoundedShutdown`] gives such a handler [`GOSSIP_SHUTDOWN_BOUND`] and lets the router
//! close the endpoint, which breaks the wait on both sides. [`crate::Docs::router`] wraps
//! gossip in it; a router built by hand should do the same.
//!
//! Writes are different: every write acknowledged before the shutdown must be durable, so
//! the store's final flush is awaited without a timer. It is bounded by work instead: once
//! shutdown has begun, the store thread answers `Live`'s queued commands with an error
//! instead of running them, so it flushes after at most the command in progress.

use std::{future::Future, time::Duration};

use iroh::{
    endpoint::{Accepting, Connection},
    protocol::{AcceptError, ProtocolHandler},
};

use crate::runtime::Runtime;

/// How long a docs engine's shutdown waits for its live task at each step.
pub const LIVE_SHUTDOWN_BOUND: Duration = Duration::from_secs(2);

/// How long [`crate::Docs::router`] lets gossip shut down before the endpoint closes.
pub const GOSSIP_SHUTDOWN_BOUND: Duration = Duration::from_secs(2);

/// Runs `fut` for at most `bound` on `rt`'s timer; `None` if the bound expired.
pub(crate) async fn within<R: Runtime, T>(
    rt: &R,
    bound: Duration,
    fut: impl Future<Output = T>,
) -> Option<T> {
    let deadline = rt.now() + bound;
    let sleep = rt.sleep_until(deadline);
    futures_lite::future::or(async { Some(fut.await) }, async {
        sleep.await;
        None
    })
    .await
}

/// A protocol handler whose shutdown may take at most a fixed time.
///
/// Accepting is passed through unchanged. When the router shuts down, the inner handler's
/// shutdown runs for at most the bound; if it has not finished then, a warning is logged and
/// the router goes on to close the endpoint (which ends the inner handler's connections).
#[derive(Debug, Clone)]
pub struct BoundedShutdown<P> {
    inner: P,
    bound: Duration,
    name: &'static str,
}

impl<P: ProtocolHandler> BoundedShutdown<P> {
    /// Wraps `inner`, named `name` in logs, with a shutdown of at most `bound`.
    pub fn new(inner: P, name: &'static str, bound: Duration) -> Self {
        Self { inner, bound, name }
    }

    /// The wrapped handler.
    pub fn inner(&self) -> &P {
        &self.inner
    }
}

impl<P: ProtocolHandler> ProtocolHandler for BoundedShutdown<P> {
    async fn on_accepting(&self, accepting: Accepting) -> Result<Connection, AcceptError> {
        self.inner.on_accepting(accepting).await
    }

    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        self.inner.accept(connection).await
    }

    async fn shutdown(&self) {
        // The router runs handlers' shutdowns on its tokio task, so tokio's timer is there.
        tracing::debug!(protocol = self.name, "shutting down");
        match tokio::time::timeout(self.bound, self.inner.shutdown()).await {
            Ok(()) => tracing::debug!(protocol = self.name, "shut down"),
            Err(_) => tracing::warn!(
                protocol = self.name,
                bound = ?self.bound,
                "shutdown did not finish in time; closing the endpoint ends it"
            ),
        }
    }
}
