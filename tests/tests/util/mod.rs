//! Test nodes on loopback: an iroh endpoint bound to 127.0.0.1 with `presets::Minimal` (no
//! relay, no DNS, no port mapper), a Router serving docs, blobs and gossip.

#![allow(dead_code)]

use std::time::Duration;

use anyhow::Result;
use iroh::{endpoint::presets, protocol::Router, Endpoint};
use iroh_blobs::{store::mem::MemStore, BlobsProtocol};
use iroh_gossip::net::Gossip;
use sheaf_tokio::{Docs, LiveEvent};

/// How long a test waits for an expected event before failing.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A Sheaf node for tests.
pub struct Node {
    pub router: Router,
    pub docs: Docs,
    pub blobs: MemStore,
    pub gossip: Gossip,
}

impl Node {
    pub fn endpoint(&self) -> &Endpoint {
        self.router.endpoint()
    }

    pub async fn shutdown(self) -> Result<()> {
        self.router.shutdown().await?;
        Ok(())
    }
}

/// An endpoint on 127.0.0.1 only, so its address in tickets is dialable offline.
pub async fn endpoint() -> Result<Endpoint> {
    Ok(Endpoint::builder(presets::Minimal)
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")?
        .bind()
        .await?)
}

/// A node with documents in memory.
pub async fn memory_node() -> Result<Node> {
    spawn(sheaf_tokio::Docs::memory()).await
}

/// A node with documents in `dir`.
pub async fn persistent_node(dir: &std::path::Path) -> Result<Node> {
    spawn(sheaf_tokio::Docs::persistent(dir)).await
}

async fn spawn(builder: sheaf_tokio::Builder) -> Result<Node> {
    let endpoint = endpoint().await?;
    let blobs = MemStore::new();
    let gossip = Gossip::builder().spawn(endpoint.clone());
    let docs = builder
        .spawn(endpoint.clone(), (*blobs).clone(), gossip.clone())
        .await?;
    let router = Router::builder(endpoint)
        .accept(sheaf::ALPN, docs.clone())
        .accept(iroh_blobs::ALPN, BlobsProtocol::new(&blobs, None))
        .accept(iroh_gossip::ALPN, gossip.clone())
        .spawn();
    Ok(Node {
        router,
        docs,
        blobs,
        gossip,
    })
}

/// Waits (at most [`TIMEOUT`]) for an event matching `pred`, returning the events seen on the
/// way, the matching one last.
pub async fn wait_for(
    events: &mut sheaf_tokio::Events,
    mut pred: impl FnMut(&LiveEvent) -> bool,
) -> Result<Vec<LiveEvent>> {
    let mut seen = Vec::new();
    let res = tokio::time::timeout(TIMEOUT, async {
        while let Some(ev) = events.recv().await {
            let done = pred(&ev);
            seen.push(ev);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    match res {
        Ok(true) => Ok(seen),
        Ok(false) => anyhow::bail!("event stream ended; saw {seen:?}"),
        Err(_) => anyhow::bail!("timed out; saw {seen:?}"),
    }
}
