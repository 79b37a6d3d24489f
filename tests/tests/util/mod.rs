//! Test nodes on loopback: an iroh endpoint bound to 127.0.0.1 with `presets::Minimal` (no
//! relay, no DNS, no port mapper), a Router serving docs, blobs and gossip.

#![allow(dead_code)]

pub mod fragile;
pub mod iroh_docs;
pub mod relay;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result};
use iroh::{
    address_lookup::memory::MemoryLookup, endpoint::presets, protocol::Router, Endpoint,
    EndpointAddr, SecretKey,
};
use iroh_blobs::store::{fs::FsStore, mem::MemStore};
use iroh_gossip::net::Gossip;
use sheaf_tokio::{Docs, Hash, LiveConfig, LiveEvent, PeerId};

/// How long a test waits for an expected event before failing.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A Sheaf node for tests.
pub struct Node {
    pub router: Router,
    pub docs: Docs,
    /// The blob store: in memory for memory nodes, a file store in `<dir>/blobs` for
    /// persistent ones.
    pub blobs: iroh_blobs::api::Store,
    pub gossip: Gossip,
}

impl Node {
    pub fn endpoint(&self) -> &Endpoint {
        self.router.endpoint()
    }

    /// The node's id as Sheaf sees peers.
    pub fn peer(&self) -> PeerId {
        peer_id(self.endpoint().id())
    }

    /// The node's address (id and loopback socket address).
    pub fn addr(&self) -> EndpointAddr {
        self.endpoint().addr()
    }

    /// Lets this node dial `addr` by id alone (iroh-docs' tests use a DNS/pkarr server for
    /// that; offline, a memory address lookup does the same).
    pub fn learn_addr(&self, addr: EndpointAddr) -> Result<()> {
        let lookup = MemoryLookup::new();
        lookup.add_endpoint_info(addr);
        self.endpoint().address_lookup()?.add(lookup);
        Ok(())
    }

    /// Whether the blob store holds `hash` completely.
    pub async fn has_blob(&self, hash: Hash) -> Result<bool> {
        let status = self.blobs.blobs().status(blob_hash(hash)).await?;
        Ok(matches!(
            status,
            iroh_blobs::api::proto::BlobStatus::Complete { .. }
        ))
    }

    /// The content of `hash` from the blob store.
    pub async fn blob(&self, hash: Hash) -> Result<bytes::Bytes> {
        Ok(self.blobs.blobs().get_bytes(blob_hash(hash)).await?)
    }

    pub async fn shutdown(self) -> Result<()> {
        self.router.shutdown().await?;
        Ok(())
    }
}

/// Sheaf's peer id of an iroh endpoint id.
pub fn peer_id(id: iroh::EndpointId) -> PeerId {
    PeerId::from_bytes(*id.as_bytes())
}

/// iroh-blobs' hash of a Sheaf hash.
pub fn blob_hash(hash: Hash) -> iroh_blobs::Hash {
    iroh_blobs::Hash::from_bytes(hash.to_bytes())
}

/// An endpoint on 127.0.0.1 only, so its address in tickets is dialable offline.
pub async fn endpoint() -> Result<Endpoint> {
    endpoint_with(None).await
}

/// Like [`endpoint`], with a fixed secret key (to restart a node under the same id).
pub async fn endpoint_with(secret_key: Option<SecretKey>) -> Result<Endpoint> {
    gated_endpoint(secret_key, None).await
}

/// Like [`endpoint_with`], with the hooks of a Sheaf gossip gate if one is given.
pub async fn gated_endpoint(
    secret_key: Option<SecretKey>,
    gate: Option<&sheaf_tokio::GossipGate>,
) -> Result<Endpoint> {
    let mut builder = Endpoint::builder(presets::Minimal)
        .transport_config(sheaf_tokio::transport_config())
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")?;
    if let Some(key) = secret_key {
        builder = builder.secret_key(key);
    }
    if let Some(gate) = gate {
        builder = builder.hooks(gate.hooks());
    }
    Ok(builder.bind().await?)
}

/// How to build a test node.
#[derive(Debug, Clone, Default)]
pub struct NodeOpts {
    /// Persist documents (and blobs, in `<dir>/blobs`) here; memory if `None`.
    pub dir: Option<PathBuf>,
    /// The endpoint's secret key; random if `None`.
    pub secret_key: Option<SecretKey>,
    /// The sync engine's configuration; the default if `None`.
    pub live: Option<LiveConfig>,
    /// Run the store on `sheaf_core::store::MemBackend` (through `Docs::with_backend`)
    /// instead of redb; only without `dir`.
    pub mem_backend: bool,
    /// Run the store on this backend instead (only without `dir`).
    pub fragile: Option<fragile::Fragile>,
    /// Turn sync v2 off (`Builder::sync_v2(false)`).
    pub no_sync_v2: bool,
}

/// A node with documents in memory.
pub async fn memory_node() -> Result<Node> {
    spawn(NodeOpts::default()).await
}

/// A node with documents in memory that speaks only v1 (`Builder::sync_v2(false)`).
pub async fn v1_node() -> Result<Node> {
    spawn(NodeOpts {
        no_sync_v2: true,
        ..Default::default()
    })
    .await
}

/// A node with documents in `dir` (and blobs in `dir/blobs`).
pub async fn persistent_node(dir: &Path) -> Result<Node> {
    spawn(NodeOpts {
        dir: Some(dir.to_path_buf()),
        ..Default::default()
    })
    .await
}

/// A memory node, or a persistent one in `dir`.
pub async fn node(dir: Option<&Path>) -> Result<Node> {
    match dir {
        Some(dir) => persistent_node(dir).await,
        None => memory_node().await,
    }
}

/// Spawns a node as `opts` says.
pub async fn spawn(opts: NodeOpts) -> Result<Node> {
    // Nodes cut off forgers' gossip in both directions, as `sheaf serve` does.
    let gate = sheaf_tokio::GossipGate::new();
    let endpoint = gated_endpoint(opts.secret_key.clone(), Some(&gate)).await?;
    spawn_on(endpoint, gate, opts).await
}

/// Spawns a node as `opts` says on `endpoint`, which the caller built with `gate`'s hooks
/// (`opts.secret_key` is ignored: the endpoint has its key).
pub async fn spawn_on(
    endpoint: Endpoint,
    gate: sheaf_tokio::GossipGate,
    opts: NodeOpts,
) -> Result<Node> {
    let (blobs, mut builder) = match &opts.dir {
        None if opts.fragile.is_some() => {
            let store = MemStore::new();
            let backend = opts.fragile.as_ref().expect("checked").backend();
            ((*store).clone(), sheaf_tokio::Docs::with_backend(backend))
        }
        None if opts.mem_backend => {
            let store = MemStore::new();
            let backend = sheaf_core::store::MemBackend::new();
            ((*store).clone(), sheaf_tokio::Docs::with_backend(backend))
        }
        None => {
            let store = MemStore::new();
            ((*store).clone(), sheaf_tokio::Docs::memory())
        }
        Some(dir) => {
            let store = FsStore::load(dir.join("blobs")).await?;
            ((*store).clone(), sheaf_tokio::Docs::persistent(dir))
        }
    };
    if let Some(live) = opts.live {
        builder = builder.live_config(live);
    }
    builder = builder.gossip_gate(gate).sync_v2(!opts.no_sync_v2);
    let gossip = sheaf_tokio::gossip_builder().spawn(endpoint.clone());
    let docs = match builder
        .spawn(endpoint.clone(), blobs.clone(), gossip.clone())
        .await
    {
        Ok(docs) => docs,
        Err(e) => {
            blobs.shutdown().await.ok();
            endpoint.close().await;
            return Err(e.into());
        }
    };
    let router = docs.router(gossip.clone());
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

/// Waits (at most [`TIMEOUT`]) until `count` events matched `pred`; returns all events seen.
pub async fn wait_for_count(
    events: &mut sheaf_tokio::Events,
    count: usize,
    mut pred: impl FnMut(&LiveEvent) -> bool,
) -> Result<Vec<LiveEvent>> {
    let mut matched = 0;
    if count == 0 {
        return Ok(Vec::new());
    }
    wait_for(events, |e| {
        matched += usize::from(pred(e));
        matched == count
    })
    .await
    .with_context(|| format!("waiting for {count} events"))
}

/// A predicate on events.
pub type Matcher = Box<dyn Fn(&LiveEvent) -> bool + Send>;

/// Boxes a pattern (and guard) as a [`Matcher`].
#[macro_export]
macro_rules! ev {
    ($pattern:pat $(if $guard:expr)? $(,)?) => {
        Box::new(move |e: &sheaf_tokio::LiveEvent| matches!(e, $pattern $(if $guard)?))
            as $crate::util::Matcher
    };
}

/// Whether `e` is a successful `SyncFinished` with `peer`.
pub fn sync_ok(e: &LiveEvent, peer: PeerId) -> bool {
    matches!(e, LiveEvent::SyncFinished(s) if s.peer == peer && s.result.is_ok())
}

fn take_match(e: &LiveEvent, matchers: &mut Vec<Matcher>) -> bool {
    match matchers.iter().position(|m| m(e)) {
        Some(i) => {
            let _ = matchers.remove(i);
            true
        }
        None => false,
    }
}

/// iroh-docs' `assert_next_unordered_with_optionals`: reads events until every `required`
/// matcher matched one event (in any order). Each event must match a required or an optional
/// matcher (each matcher matches once); anything else, the stream ending, or [`TIMEOUT`] fails.
/// Returns the events read.
pub async fn assert_next_unordered(
    events: &mut sheaf_tokio::Events,
    mut required: Vec<Matcher>,
    mut optional: Vec<Matcher>,
) -> Result<Vec<LiveEvent>> {
    let total = required.len();
    let mut seen = Vec::new();
    let res = tokio::time::timeout(TIMEOUT, async {
        while !required.is_empty() {
            let Some(ev) = events.recv().await else {
                anyhow::bail!("event stream ended");
            };
            seen.push(ev.clone());
            if !take_match(&ev, &mut required) && !take_match(&ev, &mut optional) {
                anyhow::bail!("event matches no matcher: {ev:?}");
            }
        }
        Ok(())
    })
    .await;
    match res {
        Ok(Ok(())) => Ok(seen),
        Ok(Err(e)) => Err(e.context(format!(
            "matched {} of {total} required; saw {seen:#?}",
            total - required.len()
        ))),
        Err(_) => anyhow::bail!(
            "timed out having matched {} of {total} required; saw {seen:#?}",
            total - required.len()
        ),
    }
}

/// iroh-docs' `assert_next`: the next events match `matchers`, in order.
pub async fn assert_next(
    events: &mut sheaf_tokio::Events,
    matchers: Vec<Matcher>,
) -> Result<Vec<LiveEvent>> {
    let mut seen = Vec::new();
    tokio::time::timeout(TIMEOUT, async {
        for (i, m) in matchers.iter().enumerate() {
            let Some(ev) = events.recv().await else {
                anyhow::bail!("event stream ended; saw {seen:?}");
            };
            if !m(&ev) {
                anyhow::bail!("event {i} did not match: {ev:?}; before it: {seen:?}");
            }
            seen.push(ev);
        }
        Ok(())
    })
    .await
    .context("timed out")??;
    Ok(seen)
}
