//! `sheaf-smol`: Sheaf on the smol runtime.
//!
//! iroh, iroh-gossip and iroh-blobs are built on tokio: their sockets and timers need a tokio
//! reactor. [`SmolRuntime`] therefore owns a small tokio runtime (one worker thread) and runs
//! the engine's background tasks — the `Live` loop, sync streams, gossip receivers, downloads —
//! on it, while the application awaits every API call (`Docs`, `Doc`, event streams) from
//! smol. The API's futures only use runtime-agnostic channels, so they work from any executor.
//!
//! The cost: one extra OS thread (plus the store executor's, which every runtime has), and a
//! thread hop between the application's smol tasks and the engine. Creating iroh objects
//! (binding the endpoint, spawning gossip and the router) must happen inside the tokio context:
//! do it in [`SmolRuntime::tokio`] or while holding [`SmolRuntime::enter`].
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! let rt = sheaf_smol::SmolRuntime::new()?;
//! smol::block_on(async {
//!     let _tokio = rt.enter();
//!     // bind the endpoint, spawn gossip and blobs, then:
//!     // let docs = sheaf_smol::Docs::memory().spawn_on(rt.clone(), endpoint, blobs, gossip).await?;
//!     anyhow::Ok(())
//! })
//! # }
//! ```

use std::{future::Future, sync::Arc, time::Instant};

pub use sheaf::*;

/// Runs the engine's tasks on an owned tokio runtime; see the crate docs.
#[derive(Debug, Clone)]
pub struct SmolRuntime {
    tokio: Arc<tokio::runtime::Runtime>,
}

impl SmolRuntime {
    /// Starts the owned tokio runtime (one worker thread, IO and time enabled).
    pub fn new() -> std::io::Result<Self> {
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sheaf-tokio-reactor")
            .enable_all()
            .build()?;
        Ok(Self {
            tokio: Arc::new(tokio),
        })
    }

    /// Enters the tokio context on this thread (needed while creating iroh objects).
    pub fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        self.tokio.enter()
    }

    /// Runs `future` on the owned tokio runtime and awaits its result from any executor.
    pub async fn tokio<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.tokio.spawn(future).await {
            Ok(out) => out,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

impl Runtime for SmolRuntime {
    fn spawn(&self, future: BoxFuture<()>) {
        self.tokio.spawn(future);
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        let _guard = self.tokio.enter();
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }
}

/// The docs engine on smol.
pub type Docs = sheaf::Docs<SmolRuntime>;
/// A document handle on smol.
pub type Doc = sheaf::Doc<SmolRuntime>;
/// The engine builder on smol.
pub type Builder = sheaf::Builder<SmolRuntime>;
