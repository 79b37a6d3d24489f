//! `sheaf-tokio`: Sheaf on the tokio runtime.
//!
//! [`TokioRuntime`] implements the engine's [`sheaf::Runtime`] with the tokio runtime the
//! caller runs in, and this crate re-exports the engine's API with that runtime fixed:
//!
//! ```no_run
//! # async fn run(endpoint: iroh::Endpoint, blobs: iroh_blobs::api::Store, gossip: iroh_gossip::net::Gossip) -> sheaf::Result<()> {
//! let docs = sheaf_tokio::Docs::memory().spawn(endpoint, blobs, gossip).await?;
//! let doc = docs.create().await?;
//! doc.set_bytes(docs.author_default(), "hello", "world").await?;
//! # Ok(()) }
//! ```

use std::time::Instant;

pub use sheaf::*;

/// The tokio runtime the engine was spawned from.
#[derive(Debug, Clone)]
pub struct TokioRuntime(tokio::runtime::Handle);

impl TokioRuntime {
    /// The runtime of the calling task. Panics outside a tokio runtime.
    pub fn current() -> Self {
        Self(tokio::runtime::Handle::current())
    }

    /// A specific runtime.
    pub fn new(handle: tokio::runtime::Handle) -> Self {
        Self(handle)
    }
}

impl Default for TokioRuntime {
    fn default() -> Self {
        Self::current()
    }
}

impl Runtime for TokioRuntime {
    fn spawn(&self, future: BoxFuture<()>) {
        self.0.spawn(future);
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }
}

/// The docs engine on tokio.
pub type Docs = sheaf::Docs<TokioRuntime>;
/// A document handle on tokio.
pub type Doc = sheaf::Doc<TokioRuntime>;
/// The engine builder on tokio.
pub type Builder = sheaf::Builder<TokioRuntime>;
