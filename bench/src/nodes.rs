//! Real nodes of both implementations on loopback, behind one small interface.
//!
//! A [`Node`] is an iroh endpoint bound to `127.0.0.1:0` (`presets::Minimal`: no relay, no
//! DNS, no port mapper) with a Router serving docs, blobs and gossip — Sheaf with iroh-blobs
//! 0.104, iroh-docs 0.101 with the iroh-blobs 0.103 it is built on. A [`Doc`] carries the
//! node's default author so workloads write with one call. Events of both implementations
//! are mapped to [`Ev`], which keeps only what the workloads wait for.

use std::{path::Path, pin::Pin, time::Duration};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use futures_lite::{Stream, StreamExt};
use iroh::{endpoint::presets, protocol::Router, Endpoint, EndpointAddr};
use iroh_gossip::net::Gossip;
use tokio::time::Instant;

/// Which implementation a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Impl {
    /// Sheaf (this workspace).
    Sheaf,
    /// iroh-docs 0.101.
    Iroh,
}

/// The implementations [`Impl::selected`] returns, when narrowed.
static SELECTED: std::sync::OnceLock<&'static [Impl]> = std::sync::OnceLock::new();

impl Impl {
    /// Both implementations, Sheaf first.
    pub const BOTH: [Impl; 2] = [Impl::Sheaf, Impl::Iroh];

    /// The implementations this run measures: both unless [`Impl::select`] narrowed them
    /// (`sheaf-bench --impls sheaf`, e.g. to profile one implementation alone).
    pub fn selected() -> Vec<Impl> {
        let only = SELECTED.get().copied().unwrap_or(Impl::BOTH.as_slice());
        Impl::BOTH
            .into_iter()
            .filter(|i| only.contains(i))
            .collect()
    }

    /// Measures only `impls` from now on (the first call wins).
    pub fn select(impls: &'static [Impl]) {
        let _ = SELECTED.set(impls);
    }

    /// The name used in results: `sheaf` or `iroh-docs`.
    pub fn name(self) -> &'static str {
        match self {
            Impl::Sheaf => "sheaf",
            Impl::Iroh => "iroh-docs",
        }
    }
}

/// The loopback address a node binds: one only, so the addresses it hands out are dialable
/// offline. Two nodes on different families cannot reach each other directly, which keeps
/// their traffic on a [`crate::link::Link`] between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    /// `127.0.0.1`.
    #[default]
    V4,
    /// `[::1]`.
    V6,
}

/// An endpoint on 127.0.0.1 only. Both implementations get room for one gossip stream per
/// document (`sheaf::transport_config`): iroh's default of 100 streams per connection limits
/// either to ~100 live documents per peer.
pub async fn endpoint() -> Result<Endpoint> {
    endpoint_on(Family::V4).await
}

/// [`endpoint`] on the loopback address of `family`.
pub async fn endpoint_on(family: Family) -> Result<Endpoint> {
    Ok(builder(family)?.bind().await?)
}

/// [`endpoint`] with a Sheaf gossip gate's hooks, for the engine that uses `gate`.
pub async fn gated_endpoint(gate: &sheaf_tokio::GossipGate) -> Result<Endpoint> {
    gated_endpoint_on(gate, Family::V4).await
}

async fn gated_endpoint_on(gate: &sheaf_tokio::GossipGate, family: Family) -> Result<Endpoint> {
    Ok(builder(family)?.hooks(gate.hooks()).bind().await?)
}

/// `sheaf::transport_config`, or with `SHEAF_BENCH_IW=BYTES` the same with QUIC's initial
/// congestion window at `BYTES` (Cubic; the default is 12,000 bytes, RFC 9002's ten datagrams),
/// for both implementations: to measure how much of a sync over a slow link is slow start.
fn transport_config() -> iroh::endpoint::QuicTransportConfig {
    let Some(iw) = std::env::var("SHEAF_BENCH_IW")
        .ok()
        .and_then(|v| v.parse().ok())
    else {
        return sheaf_tokio::transport_config();
    };
    let mut cubic = noq_proto::congestion::CubicConfig::default();
    cubic.initial_window(iw);
    iroh::endpoint::QuicTransportConfig::builder()
        .max_concurrent_uni_streams(iroh::endpoint::VarInt::from_u32(
            sheaf_tokio::MAX_LIVE_DOCUMENTS_PER_PEER,
        ))
        .congestion_controller_factory(std::sync::Arc::new(cubic))
        .build()
}

fn builder(family: Family) -> Result<iroh::endpoint::Builder> {
    let bind = match family {
        Family::V4 => "127.0.0.1:0",
        Family::V6 => "[::1]:0",
    };
    Ok(Endpoint::builder(presets::Minimal)
        .transport_config(transport_config())
        .clear_ip_transports()
        .bind_addr(bind)?)
}

/// The split policy Sheaf nodes use instead of the default, from `SHEAF_BENCH_SPLIT=KxM`
/// (split factor `K`, parts of at most `M` entries sent as entries), with its spec.
pub fn split_policy() -> Option<(String, sheaf_core::ranger::SyncConfig)> {
    let spec = std::env::var("SHEAF_BENCH_SPLIT").ok()?;
    let (k, m) = spec.split_once('x')?;
    let sync = sheaf_core::ranger::SyncConfig {
        split_factor: k.parse().ok()?,
        max_set_size: m.parse().ok()?,
        ..Default::default()
    };
    Some((spec, sync))
}

/// `id` reachable at `addr` only (a link's socket, say).
pub fn addr_at(id: iroh::EndpointId, addr: std::net::SocketAddr) -> EndpointAddr {
    EndpointAddr::new(id).with_ip_addr(addr)
}

enum Inner {
    Sheaf {
        docs: sheaf_tokio::Docs,
        blobs: iroh_blobs::api::Store,
    },
    Iroh {
        docs: iroh_docs::protocol::Docs,
        blobs: iroh_blobs_0103::api::Store,
    },
}

/// Whether Sheaf nodes speak sync v2 with each other (the engine's default): off with
/// `SHEAF_BENCH_SYNC_V2=0`, so that every Sheaf sync is v1, one session per document.
pub fn sheaf_sync_v2() -> bool {
    std::env::var("SHEAF_BENCH_SYNC_V2").map_or(true, |v| v != "0")
}

/// The largest document sync v2 reconciles by rateless IBLT (instead of ranges), from
/// `SHEAF_BENCH_V2_RIBLT=N` (default: the engine's, 131,072 entries; also read by `reconcile`).
pub fn v2_riblt_max() -> Option<u64> {
    std::env::var("SHEAF_BENCH_V2_RIBLT").ok()?.parse().ok()
}

/// The memory budget of every Sheaf node this process spawns from now on, if set.
static SHEAF_MEMORY_BUDGET: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// Gives every Sheaf node this process spawns from now on a memory budget of `bytes`
/// (instead of the engine's default); a second call changes nothing.
pub fn set_sheaf_memory_budget(bytes: usize) {
    let _ = SHEAF_MEMORY_BUDGET.set(bytes);
}

/// A running node of either implementation.
pub struct Node {
    router: Router,
    inner: Inner,
}

impl Node {
    /// Spawns a node: documents and blobs in memory, or persisted in `dir` (documents in
    /// `dir/docs.redb`, blobs in `dir/blobs`) for both implementations alike.
    pub async fn spawn(imp: Impl, dir: Option<&Path>) -> Result<Node> {
        Self::spawn_on(imp, dir, Family::V4).await
    }

    /// [`Node::spawn`] on the loopback address of `family`.
    pub async fn spawn_on(imp: Impl, dir: Option<&Path>, family: Family) -> Result<Node> {
        match imp {
            Impl::Sheaf => {
                Self::spawn_sheaf_on(dir, sheaf_tokio::LiveConfig::default(), family).await
            }
            Impl::Iroh => {
                let endpoint = endpoint_on(family).await?;
                let gossip = Gossip::builder().spawn(endpoint.clone());
                let (blobs, builder) = match dir {
                    None => (
                        (*iroh_blobs_0103::store::mem::MemStore::new()).clone(),
                        iroh_docs::protocol::Docs::memory(),
                    ),
                    Some(dir) => (
                        (*iroh_blobs_0103::store::fs::FsStore::load(dir.join("blobs")).await?)
                            .clone(),
                        iroh_docs::protocol::Docs::persistent(dir.to_path_buf()),
                    ),
                };
                let docs = builder
                    .spawn(endpoint.clone(), blobs.clone(), gossip.clone())
                    .await?;
                let router = Router::builder(endpoint)
                    .accept(iroh_docs::ALPN, docs.clone())
                    .accept(
                        iroh_blobs_0103::ALPN,
                        iroh_blobs_0103::BlobsProtocol::new(&blobs, None),
                    )
                    .accept(iroh_gossip::ALPN, gossip)
                    .spawn();
                Ok(Node {
                    router,
                    inner: Inner::Iroh { docs, blobs },
                })
            }
        }
    }

    /// Spawns a Sheaf node in memory (or persisted in `dir`) with its own sync configuration.
    pub async fn spawn_sheaf(dir: Option<&Path>, live: sheaf_tokio::LiveConfig) -> Result<Node> {
        Self::spawn_sheaf_on(dir, live, Family::V4).await
    }

    /// [`Node::spawn_sheaf`] on the loopback address of `family`.
    pub async fn spawn_sheaf_on(
        dir: Option<&Path>,
        live: sheaf_tokio::LiveConfig,
        family: Family,
    ) -> Result<Node> {
        let gate = sheaf_tokio::GossipGate::new();
        let endpoint = gated_endpoint_on(&gate, family).await?;
        let gossip = sheaf_tokio::gossip_builder().spawn(endpoint.clone());
        let (blobs, builder) = match dir {
            None => (
                (*iroh_blobs::store::mem::MemStore::new()).clone(),
                sheaf_tokio::Docs::memory(),
            ),
            Some(dir) => (
                (*iroh_blobs::store::fs::FsStore::load(dir.join("blobs")).await?).clone(),
                sheaf_tokio::Docs::persistent(dir),
            ),
        };
        let builder = match SHEAF_MEMORY_BUDGET.get() {
            Some(bytes) => builder.memory_budget(*bytes),
            None => builder,
        };
        let builder = builder.sync_v2(sheaf_sync_v2());
        let builder = match v2_riblt_max() {
            Some(max) => {
                let mut config = sheaf_core::v2::conn::ConnConfig::default();
                config.doc.riblt_max_items = max;
                builder.sync_v2_config(config)
            }
            None => builder,
        };
        let docs = builder
            .replica_config(split_policy().map_or_else(Default::default, |(_, sync)| {
                sheaf_core::replica::ReplicaConfig {
                    sync,
                    ..Default::default()
                }
            }))
            .live_config(live)
            .gossip_gate(gate)
            .spawn(endpoint.clone(), blobs.clone(), gossip.clone())
            .await?;
        let router = docs.router(gossip);
        Ok(Node {
            router,
            inner: Inner::Sheaf { docs, blobs },
        })
    }

    /// Sync v2 of every shared document with `peer` (Sheaf only; `None` for iroh-docs).
    pub async fn sync_all(
        &self,
        peer: &EndpointAddr,
    ) -> Result<Option<sheaf_tokio::SyncAllReport>> {
        match &self.inner {
            Inner::Sheaf { docs, .. } => Ok(Some(docs.sync_all(peer.clone()).await?)),
            Inner::Iroh { .. } => Ok(None),
        }
    }

    /// A Sheaf node's engine metrics.
    pub fn sheaf_metrics(&self) -> Option<std::sync::Arc<sheaf_tokio::metrics::Metrics>> {
        match &self.inner {
            Inner::Sheaf { docs, .. } => Some(docs.metrics().clone()),
            Inner::Iroh { .. } => None,
        }
    }

    /// The node's endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        self.router.endpoint()
    }

    /// The node's address: id and loopback socket address.
    pub fn addr(&self) -> EndpointAddr {
        self.endpoint().addr()
    }

    /// The socket address the endpoint is bound to.
    pub fn bound(&self) -> Result<std::net::SocketAddr> {
        self.endpoint()
            .bound_sockets()
            .into_iter()
            .next()
            .context("endpoint bound no socket")
    }

    /// UDP bytes this endpoint sent and received so far (payload of the UDP datagrams: QUIC
    /// packets with their headers, acks and handshakes).
    pub fn udp_bytes(&self) -> u64 {
        let m = &self.endpoint().metrics().socket;
        m.send_ipv4.get() + m.send_ipv6.get() + m.recv_data_ipv4.get() + m.recv_data_ipv6.get()
    }

    async fn author(&self) -> Result<Author> {
        Ok(match &self.inner {
            Inner::Sheaf { docs, .. } => Author::Sheaf(docs.author_default()),
            Inner::Iroh { docs, .. } => Author::Iroh(docs.author_default().await?),
        })
    }

    /// Creates a new document.
    pub async fn create_doc(&self) -> Result<Doc> {
        let author = self.author().await?;
        Ok(match &self.inner {
            Inner::Sheaf { docs, .. } => Doc::Sheaf(docs.create().await?, author),
            Inner::Iroh { docs, .. } => Doc::Iroh(docs.create().await?, author),
        })
    }

    /// Opens a document the store already holds.
    pub async fn open_doc(&self, id: [u8; 32]) -> Result<Doc> {
        let author = self.author().await?;
        Ok(match &self.inner {
            Inner::Sheaf { docs, .. } => Doc::Sheaf(
                docs.open(sheaf_tokio::NamespaceId::from_bytes(id)).await?,
                author,
            ),
            Inner::Iroh { docs, .. } => Doc::Iroh(
                docs.open(iroh_docs::NamespaceId::from(&id))
                    .await?
                    .context("no such document")?,
                author,
            ),
        })
    }

    /// Imports a document by its namespace secret, without syncing yet.
    pub async fn import_secret(&self, secret: [u8; 32]) -> Result<Doc> {
        let author = self.author().await?;
        Ok(match &self.inner {
            Inner::Sheaf { docs, .. } => {
                let cap = sheaf_tokio::Capability::Write(sheaf_tokio::NamespaceSecret::from_bytes(
                    &secret,
                ));
                Doc::Sheaf(docs.import_namespace(cap).await?, author)
            }
            Inner::Iroh { docs, .. } => {
                let cap =
                    iroh_docs::Capability::Write(iroh_docs::NamespaceSecret::from_bytes(&secret));
                Doc::Iroh(docs.import_namespace(cap).await?, author)
            }
        })
    }

    /// How many of `hashes` (BLAKE3 hashes of content) the blob store lacks completely.
    pub async fn missing_blobs(&self, hashes: &[[u8; 32]]) -> Result<usize> {
        let mut missing = 0;
        for h in hashes {
            let has = match &self.inner {
                Inner::Sheaf { blobs, .. } => {
                    blobs.blobs().has(iroh_blobs::Hash::from_bytes(*h)).await?
                }
                Inner::Iroh { blobs, .. } => {
                    blobs
                        .blobs()
                        .has(iroh_blobs_0103::Hash::from_bytes(*h))
                        .await?
                }
            };
            missing += usize::from(!has);
        }
        Ok(missing)
    }

    /// Shuts the node down (router, docs engine, blob store), giving up after 30 s: a node
    /// that does not stop is left behind rather than holding up the run.
    pub async fn shutdown(self) {
        let stop = async {
            let _ = self.router.shutdown().await;
            match self.inner {
                Inner::Sheaf { docs, blobs } => {
                    let _ = docs.shutdown().await;
                    let _ = blobs.shutdown().await;
                }
                Inner::Iroh { blobs, .. } => {
                    let _ = blobs.shutdown().await;
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(30), stop)
            .await
            .is_err()
        {
            crate::progress("a node did not shut down within 30 s; left behind");
        }
    }
}

/// A node's default author.
#[derive(Debug, Clone, Copy)]
pub enum Author {
    /// Sheaf's.
    Sheaf(sheaf_tokio::AuthorId),
    /// iroh-docs'.
    Iroh(iroh_docs::AuthorId),
}

/// An open document with the author its node writes with.
#[derive(Clone)]
pub enum Doc {
    /// Sheaf's.
    Sheaf(sheaf_tokio::Doc, Author),
    /// iroh-docs'.
    Iroh(iroh_docs::api::Doc, Author),
}

/// An event of either implementation, reduced to what the workloads wait for.
#[derive(Debug, Clone, PartialEq)]
pub enum Ev {
    /// An entry arrived from a peer (sync or gossip).
    InsertRemote {
        /// Its key.
        key: Bytes,
    },
    /// Content finished downloading.
    ContentReady,
    /// No downloads pending after a sync.
    PendingContentReady,
    /// A gossip neighbour joined.
    NeighborUp,
    /// A sync finished.
    SyncFinished {
        /// The error it reported, if any.
        error: Option<String>,
        /// Sheaf's own timing of the sync: connect and process phases, in ms.
        phases: Option<(f64, f64)>,
        /// This node dialed (rather than accepted) the sync.
        dialed: bool,
        /// Message exchanges the sync needed, from Sheaf's `SyncDetails::round_trips` (a
        /// successful Sheaf sync only).
        round_trips: Option<usize>,
    },
    /// The subscriber fell behind and this many events were dropped (Sheaf only).
    Lagged(u64),
    /// Anything else.
    Other,
}

/// A document's event stream.
pub type Events = Pin<Box<dyn Stream<Item = Ev> + Send>>;

impl Doc {
    /// Writes `key → value` as the node's default author.
    pub async fn set(&self, key: Bytes, value: Bytes) -> Result<()> {
        match (self, self.author()) {
            (Doc::Sheaf(doc, _), Author::Sheaf(a)) => {
                doc.set_bytes(a, key, value).await?;
            }
            (Doc::Iroh(doc, _), Author::Iroh(a)) => {
                doc.set_bytes(a, key, value).await?;
            }
            _ => bail!("author of the wrong implementation"),
        }
        Ok(())
    }

    /// Writes all `pairs` as the node's default author: Sheaf through `set_many`, iroh-docs
    /// (which has no batch API) as `set_bytes` calls, 1,024 in flight at a time.
    pub async fn set_many(&self, pairs: Vec<(Bytes, Bytes)>) -> Result<()> {
        match (self, self.author()) {
            (Doc::Sheaf(doc, _), Author::Sheaf(a)) => {
                let out = doc.set_many(a, pairs).await?;
                if out.iter().any(Option::is_none) {
                    bail!("a write was kept out by a newer entry");
                }
            }
            (Doc::Iroh(doc, _), Author::Iroh(a)) => {
                for chunk in pairs.chunks(1024) {
                    let writes = chunk
                        .iter()
                        .map(|(k, v)| doc.set_bytes(a, k.clone(), v.clone()));
                    for r in n0_future::join_all(writes).await {
                        r?;
                    }
                }
            }
            _ => bail!("author of the wrong implementation"),
        }
        Ok(())
    }

    fn author(&self) -> Author {
        match self {
            Doc::Sheaf(_, a) | Doc::Iroh(_, a) => *a,
        }
    }

    /// The namespace secret (from a write ticket).
    pub async fn secret(&self) -> Result<[u8; 32]> {
        match self {
            Doc::Sheaf(doc, _) => {
                let t = doc
                    .share(
                        sheaf_tokio::ShareMode::Write,
                        sheaf_tokio::AddrInfoOptions::Id,
                    )
                    .await?;
                match t.capability {
                    sheaf_tokio::Capability::Write(s) => Ok(s.to_bytes()),
                    sheaf_tokio::Capability::Read(_) => bail!("read-only ticket"),
                }
            }
            Doc::Iroh(doc, _) => {
                let t = doc
                    .share(
                        iroh_docs::api::protocol::ShareMode::Write,
                        iroh_docs::api::protocol::AddrInfoOptions::Id,
                    )
                    .await?;
                match t.capability {
                    iroh_docs::Capability::Write(s) => Ok(s.to_bytes()),
                    iroh_docs::Capability::Read(_) => bail!("read-only ticket"),
                }
            }
        }
    }

    /// Entries a query returns: all entries, or the latest entry per key.
    pub async fn count(&self, latest_per_key: bool) -> Result<usize> {
        match self {
            Doc::Sheaf(doc, _) => {
                let q = if latest_per_key {
                    sheaf_tokio::Query::single_latest_per_key()
                } else {
                    sheaf_tokio::Query::all()
                };
                Ok(doc.get_many(q).await?.len())
            }
            Doc::Iroh(doc, _) => {
                let q = if latest_per_key {
                    iroh_docs::store::Query::single_latest_per_key().build()
                } else {
                    iroh_docs::store::Query::all().build()
                };
                let mut stream = Box::pin(doc.get_many(q).await?);
                let mut n = 0;
                while let Some(e) = stream.next().await {
                    e?;
                    n += 1;
                }
                Ok(n)
            }
        }
    }

    /// Joins the document's swarm and syncs with `peers`.
    pub async fn start_sync(&self, peers: Vec<EndpointAddr>) -> Result<()> {
        match self {
            Doc::Sheaf(doc, _) => doc.start_sync(peers).await?,
            Doc::Iroh(doc, _) => doc.start_sync(peers).await?,
        }
        Ok(())
    }

    /// Closes this handle to the document.
    pub async fn close(&self) -> Result<()> {
        match self {
            Doc::Sheaf(doc, _) => doc.close().await?,
            Doc::Iroh(doc, _) => doc.close().await?,
        }
        Ok(())
    }

    /// Leaves the document's swarm (subscriptions stay).
    pub async fn leave(&self) -> Result<()> {
        match self {
            Doc::Sheaf(doc, _) => doc.leave().await?,
            Doc::Iroh(doc, _) => doc.leave().await?,
        }
        Ok(())
    }

    /// Downloads no content for this document.
    pub async fn download_nothing(&self) -> Result<()> {
        match self {
            Doc::Sheaf(doc, _) => {
                doc.set_download_policy(sheaf_tokio::DownloadPolicy::NothingExcept(vec![]))
                    .await?
            }
            Doc::Iroh(doc, _) => {
                doc.set_download_policy(iroh_docs::store::DownloadPolicy::NothingExcept(vec![]))
                    .await?
            }
        }
        Ok(())
    }

    /// Subscribes to the document's events.
    pub async fn subscribe(&self) -> Result<Events> {
        Ok(match self {
            Doc::Sheaf(doc, _) => Box::pin(doc.subscribe().await?.map(|e| {
                use sheaf_tokio::LiveEvent as E;
                match e {
                    E::InsertRemote { entry, .. } => Ev::InsertRemote {
                        key: Bytes::copy_from_slice(entry.key()),
                    },
                    E::ContentReady { .. } => Ev::ContentReady,
                    E::PendingContentReady => Ev::PendingContentReady,
                    E::NeighborUp(_) => Ev::NeighborUp,
                    E::SyncFinished(s) => Ev::SyncFinished {
                        phases: Some((
                            s.connect.as_secs_f64() * 1000.0,
                            s.process.as_secs_f64() * 1000.0,
                        )),
                        dialed: matches!(s.origin, sheaf_tokio::Origin::Connect(_)),
                        round_trips: s.result.as_ref().ok().map(|d| d.round_trips()),
                        error: s.result.err().map(|e| e.to_string()),
                    },
                    E::Lagged { missed } => Ev::Lagged(missed),
                    _ => Ev::Other,
                }
            })),
            Doc::Iroh(doc, _) => Box::pin(doc.subscribe().await?.map(|e| {
                use iroh_docs::engine::LiveEvent as E;
                match e {
                    Ok(E::InsertRemote { entry, .. }) => Ev::InsertRemote {
                        key: Bytes::copy_from_slice(entry.key()),
                    },
                    Ok(E::ContentReady { .. }) => Ev::ContentReady,
                    Ok(E::PendingContentReady) => Ev::PendingContentReady,
                    Ok(E::NeighborUp(_)) => Ev::NeighborUp,
                    Ok(E::SyncFinished(s)) => Ev::SyncFinished {
                        dialed: matches!(s.origin, iroh_docs::engine::Origin::Connect(_)),
                        error: s.result.err(),
                        phases: None,
                        round_trips: None,
                    },
                    _ => Ev::Other,
                }
            })),
        })
    }
}

/// The next event before `deadline`; `None` when the deadline passed or the stream ended.
pub async fn next_before(events: &mut Events, deadline: Instant) -> Option<Ev> {
    tokio::time::timeout_at(deadline, events.next())
        .await
        .ok()
        .flatten()
}

/// An event of node `.0`, received at `.2`.
pub type Stamped = (usize, Ev, Instant);

/// Forwards `events` of node `idx` into `tx`, stamped with their arrival time, until the
/// stream ends or the receiver goes away. Abort the returned task to stop early.
pub fn forward(
    mut events: Events,
    idx: usize,
    tx: tokio::sync::mpsc::UnboundedSender<Stamped>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(ev) = events.next().await {
            if tx.send((idx, ev, Instant::now())).is_err() {
                break;
            }
        }
    })
}
