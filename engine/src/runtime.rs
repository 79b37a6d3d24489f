//! The runtime abstraction the engine is generic over.
//!
//! Modelled on quinn's `Runtime`: the engine needs to spawn tasks, sleep until an instant and
//! read the clocks. The store executor runs on a plain OS thread of its own, so it needs
//! nothing from the runtime. iroh, iroh-gossip and iroh-blobs need a tokio reactor whatever the
//! runtime: an implementation must make sure futures it spawns can use one (`sheaf-smol` does
//! that with an owned tokio runtime, see its docs).

use std::{
    future::Future,
    pin::Pin,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What the engine needs from an async runtime.
pub trait Runtime: Clone + Send + Sync + std::fmt::Debug + 'static {
    /// Runs `future` in the background.
    fn spawn(&self, future: BoxFuture<()>);

    /// A future that completes at `deadline`.
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()>;

    /// The monotonic clock.
    fn now(&self) -> Instant {
        Instant::now()
    }

    /// Wall-clock time in microseconds since the UNIX epoch.
    fn wall_micros(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0)
    }
}
