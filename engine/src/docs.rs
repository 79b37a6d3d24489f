//! `Docs`: the node-level API (authors, documents) and the iroh protocol handler.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
};

use iroh::{
    address_lookup::memory::MemoryLookup, endpoint::Connection, protocol::ProtocolHandler, Endpoint,
};
use iroh_gossip::net::Gossip;
use rand::Rng;
use sheaf_core::{
    live::{ApiCommand, Live, LiveConfig, LiveError},
    replica::{
        ImportNamespaceOutcome, OpenOpts, ReplicaConfig, ReplicaError, StoreCommand, StoreResponse,
    },
    store::{Backend, RedbBackend, StoreError},
    wire::DocTicket,
    Author, AuthorId, Capability, CapabilityKind, Hash, NamespaceId, NamespaceSecret,
};
use tokio::sync::{mpsc, oneshot};

use crate::{
    convert::{endpoint_id, node_addr, peer_id},
    doc::Doc,
    gc::ProtectCallbackHandler,
    gossip_gate::{GatedGossip, GossipGate},
    live_task::{LiveMsg, LiveTask, INBOX},
    reply::expect_reply,
    runtime::Runtime,
    shutdown::{within, BoundedShutdown, GOSSIP_SHUTDOWN_BOUND, LIVE_SHUTDOWN_BOUND},
    store_thread::{Clock, StoreHandle},
};

/// Why a docs operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] ReplicaError),
    /// The sync engine refused.
    #[error(transparent)]
    Live(#[from] LiveError),
    /// This handle was closed.
    #[error("document is closed")]
    Closed,
    /// The engine has stopped.
    #[error("engine stopped")]
    Stopped,
    /// The blob store failed.
    #[error("blob store: {0}")]
    Blobs(String),
    /// The default author could not be loaded or saved.
    #[error("default author: {0}")]
    DefaultAuthor(String),
    /// Deleting the default author is refused.
    #[error("the default author cannot be deleted")]
    DefaultAuthorDelete,
    /// IO failure.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The store could not be opened.
    #[error("store: {0}")]
    Open(#[from] sheaf_core::store::StoreError),
    /// A sync v2 connection failed (dial, handshake, a stream, or the peer).
    #[error("sync v2: {0}")]
    SyncV2(String),
    /// The peer refused the sync v2 round with `Duplicate`: it is dialing this node at the
    /// same time and serves that round instead (`docs/sync-v2.md` §2, the tie-break).
    #[error("sync v2: the peer is dialing this node at the same time")]
    SyncV2Refused,
    /// The store answered a command with a reply of another kind (a bug, never a default).
    #[error("the store answered with a {got} reply where {expected} was expected")]
    UnexpectedReply {
        /// The kind of reply the command has.
        expected: &'static str,
        /// The kind that arrived.
        got: &'static str,
    },
}

/// Result of docs operations.
pub type Result<T, E = DocsError> = std::result::Result<T, E>;

/// A backend of the caller's choice, boxed, as the builder holds it.
pub(crate) type BoxedBackend = Box<dyn Backend + Send>;

#[derive(Clone)]
enum Storage {
    /// `RedbBackend::memory()`.
    Memory,
    /// `RedbBackend::persistent(dir/docs.redb)` and `dir/default-author`.
    Persistent(PathBuf),
    /// A caller's backend; taken by the first spawn (a builder's clones share it).
    Custom(Arc<Mutex<Option<BoxedBackend>>>),
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Storage::Memory => f.write_str("Memory"),
            Storage::Persistent(dir) => f.debug_tuple("Persistent").field(dir).finish(),
            Storage::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// Configures and spawns a [`Docs`] engine.
#[derive(Debug, Clone)]
pub struct Builder<R> {
    storage: Storage,
    live: LiveConfig,
    replica: ReplicaConfig,
    protect: Option<Arc<Mutex<Option<ProtectCallbackHandler>>>>,
    gossip_probe: std::time::Duration,
    gate: Option<GossipGate>,
    memory: MemoryBudget,
    sync_v2: Option<sheaf_core::v2::conn::ConnConfig>,
    _rt: std::marker::PhantomData<fn() -> R>,
}

/// The default [`Builder::memory_budget`]: 256 MiB.
pub const DEFAULT_MEMORY_BUDGET: usize = 256 << 20;

/// How a node's memory budget is split between the fingerprint indexes and redb's page cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    /// Budget of the fingerprint indexes, in bytes (see `ReplicaConfig::index_budget`).
    pub index: usize,
    /// Size limit of redb's page cache, in bytes (a persistent store only).
    pub store_cache: usize,
}

impl MemoryBudget {
    /// Splits `total` bytes: a quarter for redb's page cache (at least 4 MiB, at most half),
    /// the rest for the fingerprint indexes.
    pub fn split(total: usize) -> Self {
        let store_cache = (total / 4).max(4 << 20).min(total / 2);
        Self {
            index: total - store_cache,
            store_cache,
        }
    }
}

impl Default for MemoryBudget {
    /// [`DEFAULT_MEMORY_BUDGET`], split.
    fn default() -> Self {
        Self::split(DEFAULT_MEMORY_BUDGET)
    }
}

impl<R: Runtime> Builder<R> {
    /// Runs the store on `backend` instead of redb (for example
    /// [`MemBackend`](sheaf_core::store::MemBackend), or a third-party [`Backend`] that passes
    /// `sheaf_core::store::conformance`). As with [`Docs::memory`], the node keeps no
    /// default-author file: every spawn creates a new default author.
    ///
    /// [`Docs`] does not become generic: the engine talks to the store thread through a
    /// channel of [`StoreCommand`]s, so only that thread knows the backend's type. The builder
    /// holds the backend until the first [`spawn_on`](Self::spawn_on); spawning a clone of
    /// the builder after that fails with [`DocsError::Open`].
    pub fn backend(mut self, backend: impl Backend + Send + 'static) -> Self {
        let boxed: BoxedBackend = Box::new(backend);
        self.storage = Storage::Custom(Arc::new(Mutex::new(Some(boxed))));
        self
    }

    /// Protects the content of all entries from iroh-blobs' garbage collector (see
    /// [`ProtectCallbackHandler`]).
    pub fn protect_handler(mut self, handler: ProtectCallbackHandler) -> Self {
        self.protect = Some(Arc::new(Mutex::new(Some(handler))));
        self
    }

    /// Sets the sync engine's configuration (bounds, retries, anti-entropy).
    pub fn live_config(mut self, config: LiveConfig) -> Self {
        self.live = config;
        self
    }

    /// How often the node checks that iroh-gossip's actor answers (default 5 s; at least
    /// 10 ms). A check not answered within the period reports a stall: every live document
    /// then syncs with its gossip neighbours, after every failed check and once when gossip
    /// answers again, and the `gossip_stalled` gauge is 1 meanwhile (see
    /// [`Metrics`](crate::metrics::Metrics)).
    pub fn gossip_probe_period(mut self, period: std::time::Duration) -> Self {
        self.gossip_probe = period.max(std::time::Duration::from_millis(10));
        self
    }

    /// Uses `gate` for gossip bans: the gate whose [`hooks`](GossipGate::hooks) the endpoint
    /// was built with, so that bans also cut gossip connections this node dials (see
    /// [`crate::gossip_gate`]). Without it the engine makes a gate of its own, which cuts the
    /// connections peers open to us.
    pub fn gossip_gate(mut self, gate: GossipGate) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Turns sync v2 (`/sheaf-sync/2`, `docs/sync-v2.md`) on or off; on by default. On, the
    /// live engine syncs every document it wants from a Sheaf peer in one round over one
    /// connection ([`LiveConfig::sync_v2`]), and [`Docs::sync_all`] is available. Off, the
    /// node neither serves nor dials it, and speaks only iroh-docs' v1, one session per
    /// document.
    pub fn sync_v2(mut self, enabled: bool) -> Self {
        self.sync_v2 = enabled.then(Default::default);
        self
    }

    /// Turns sync v2 on with this policy (streams at once, symbol batches, when documents use
    /// the rateless IBLT or ranges; see [`sheaf_core::v2::conn::ConnConfig`]).
    pub fn sync_v2_config(mut self, config: sheaf_core::v2::conn::ConnConfig) -> Self {
        self.sync_v2 = Some(config);
        self
    }

    /// Sets the store executor's configuration (entry limits, reconciliation policy). Its
    /// `index_budget` is replaced by the [`memory_budget`](Self::memory_budget)'s share.
    pub fn replica_config(mut self, config: ReplicaConfig) -> Self {
        self.replica = config;
        self
    }

    /// Bounds the memory of the store's caches to `bytes` (default
    /// [`DEFAULT_MEMORY_BUDGET`], 256 MiB), split by [`MemoryBudget::split`]: redb's page
    /// cache is limited to its share (redb's own default would be 1 GiB), and the fingerprint
    /// indexes of documents not syncing are dropped, least recently used first, when they
    /// exceed theirs. A dropped index is rebuilt from the store when its document next syncs
    /// with a difference (a sync that finds nothing to do needs none). The indexes of
    /// documents syncing at the moment are kept, and may exceed the budget. Metrics
    /// `index_bytes`, `index_evictions` and `store_cache_bytes` show where the node stands.
    pub fn memory_budget(self, bytes: usize) -> Self {
        self.memory_split(MemoryBudget::split(bytes))
    }

    /// Like [`memory_budget`](Self::memory_budget), with the split chosen by the caller.
    pub fn memory_split(mut self, budget: MemoryBudget) -> Self {
        self.memory = budget;
        self
    }

    /// Spawns the engine on `rt`, using `endpoint` for sync connections, `blobs` for content
    /// and `gossip` for live updates. Serve [`crate::ALPN`] with the returned `Docs` on the
    /// endpoint's router, next to iroh-blobs and iroh-gossip ([`Docs::router`] builds that
    /// router).
    pub async fn spawn_on(
        self,
        rt: R,
        endpoint: Endpoint,
        blobs: iroh_blobs::api::Store,
        gossip: Gossip,
    ) -> Result<Docs<R>> {
        let clock = Clock::new();
        let (live_tx, live_rx) = mpsc::channel(INBOX);
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let (to_live, m) = (live_tx.clone(), metrics.clone());
        let (mut config, content) = (self.replica, blobs.clone());
        config.index_budget = self.memory.index;
        // The default backend runs unboxed; a caller's runs as `Box<dyn Backend + Send>`.
        let (store, author_file) = match &self.storage {
            Storage::Memory => {
                let backend = RedbBackend::memory()?;
                let store = StoreHandle::spawn(backend, content, config, clock, to_live, m)?;
                (store, None)
            }
            Storage::Persistent(dir) => {
                std::fs::create_dir_all(dir)?;
                let cache = self.memory.store_cache;
                let backend = RedbBackend::persistent_with_cache(dir.join("docs.redb"), cache)?;
                metrics
                    .store_cache_bytes
                    .set(i64::try_from(cache).unwrap_or(i64::MAX));
                let store = StoreHandle::spawn(backend, content, config, clock, to_live, m)?;
                (store, Some(dir.join("default-author")))
            }
            Storage::Custom(slot) => {
                let backend = slot.lock().ok().and_then(|mut b| b.take()).ok_or_else(|| {
                    StoreError::Backend("the builder's backend was used by an earlier spawn".into())
                })?;
                let store = StoreHandle::spawn(backend, content, config, clock, to_live, m)?;
                (store, None)
            }
        };
        let lookup = MemoryLookup::new();
        if let Ok(services) = endpoint.address_lookup() {
            services.add(lookup.clone());
        }
        let gate = self.gate.clone().unwrap_or_default();
        gate.attach(metrics.clone());
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        let mut live_config = self.live;
        live_config.sync_v2 = self.sync_v2.is_some();
        let live = Live::new(live_config, peer_id(endpoint.id()), seed);
        let mut task = LiveTask::new(
            rt.clone(),
            live,
            clock,
            live_rx,
            live_tx.clone(),
            store.clone(),
            endpoint.clone(),
            gossip,
            blobs.clone(),
            lookup,
            metrics.clone(),
            self.gossip_probe,
            gate.clone(),
        );
        task.v2 = self.sync_v2;
        let v2_pool = task.v2_pool.clone();
        rt.spawn(Box::pin(task.run()));
        if let Some(handler) = self.protect.and_then(|h| h.lock().ok()?.take()) {
            let store = store.clone();
            rt.spawn(Box::pin(async move {
                let mut handler = handler;
                while let Some(reply) = handler.0.recv().await {
                    let hashes = match store.call(StoreCommand::ContentHashes).await {
                        Ok(reply) => expect_reply!(reply, Hashes).map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    let _ = reply.send(hashes);
                }
            }));
        }
        let default_author = match load_default_author(&store, author_file.as_ref()).await {
            Ok(author) => author,
            Err(e) => {
                // Release the store file before failing, so the caller can fix it and retry.
                let _ = live_tx.send(LiveMsg::Stop).await;
                store.shutdown().await;
                return Err(e);
            }
        };
        Ok(Docs {
            inner: Arc::new(Inner {
                rt,
                store,
                live: live_tx,
                endpoint,
                blobs,
                default_author: Mutex::new(default_author),
                author_file,
                metrics,
                gate,
                sync_v2: self.sync_v2,
                v2_slots: Arc::new(tokio::sync::Semaphore::new(crate::v2::MAX_ACCEPTED)),
                v2_kept: Arc::new(tokio::sync::Semaphore::new(crate::v2::MAX_POOLED)),
                v2_pool,
            }),
        })
    }
}

impl<R: Runtime + Default> Builder<R> {
    /// Spawns the engine on the default instance of the runtime (see [`Builder::spawn_on`]).
    pub async fn spawn(
        self,
        endpoint: Endpoint,
        blobs: iroh_blobs::api::Store,
        gossip: Gossip,
    ) -> Result<Docs<R>> {
        self.spawn_on(R::default(), endpoint, blobs, gossip).await
    }
}

async fn load_default_author(store: &StoreHandle, file: Option<&PathBuf>) -> Result<AuthorId> {
    if let Some(path) = file {
        if let Ok(text) = std::fs::read_to_string(path) {
            let id: AuthorId = text
                .trim()
                .parse()
                .map_err(|e| DocsError::DefaultAuthor(format!("{path:?}: {e}")))?;
            return match expect_reply!(store.call(StoreCommand::ExportAuthor(id)).await?, Author)? {
                Some(_) => Ok(id),
                None => Err(DocsError::DefaultAuthor(format!(
                    "the default author {id} in {path:?} is missing from the store; delete the file to create a new one"
                ))),
            };
        }
    }
    let author = Author::new(&mut rand::rng());
    let id = author.id();
    store.call(StoreCommand::ImportAuthor(author)).await?;
    if let Some(path) = file {
        store.call(StoreCommand::Flush).await?;
        std::fs::write(path, id.to_string())?;
    }
    Ok(id)
}

pub(crate) struct Inner<R: Runtime> {
    pub(crate) rt: R,
    pub(crate) store: StoreHandle,
    pub(crate) live: mpsc::Sender<LiveMsg>,
    pub(crate) endpoint: Endpoint,
    pub(crate) blobs: iroh_blobs::api::Store,
    default_author: Mutex<AuthorId>,
    author_file: Option<PathBuf>,
    metrics: Arc<crate::metrics::Metrics>,
    gate: crate::gossip_gate::GossipGate,
    pub(crate) sync_v2: Option<sheaf_core::v2::conn::ConnConfig>,
    /// Admission of served sync v2 connections ([`crate::v2`]).
    pub(crate) v2_slots: Arc<tokio::sync::Semaphore>,
    /// Served sync v2 connections waiting for the dialer's next round ([`crate::v2`]).
    pub(crate) v2_kept: Arc<tokio::sync::Semaphore>,
    /// Sync v2 connections this node dialed, kept between rounds ([`crate::v2`]).
    pub(crate) v2_pool: Arc<crate::v2::Pool>,
}

/// The health of a node ([`Docs::health`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// The store thread runs; when it stopped (it failed), every document call returns
    /// `ReplicaError::Stopped` until the node is restarted.
    pub store_running: bool,
    /// iroh-gossip answers the engine's probe; while it does not, live updates arrive only
    /// by the syncs the engine starts after each failed probe.
    pub gossip_answering: bool,
}

impl Health {
    /// Whether every part is healthy.
    pub fn ok(&self) -> bool {
        self.store_running && self.gossip_answering
    }
}

/// The docs engine of a node. Cheap to clone.
pub struct Docs<R: Runtime> {
    pub(crate) inner: Arc<Inner<R>>,
}

impl<R: Runtime> Clone for Docs<R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<R: Runtime> std::fmt::Debug for Docs<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Docs")
            .field("node", &self.inner.endpoint.id())
            .finish()
    }
}

impl<R: Runtime> Docs<R> {
    /// A builder for documents kept in memory only.
    pub fn memory() -> Builder<R> {
        Builder {
            storage: Storage::Memory,
            live: LiveConfig::default(),
            replica: ReplicaConfig::default(),
            protect: None,
            gossip_probe: crate::gossip_probe::DEFAULT_PERIOD,
            gate: None,
            memory: MemoryBudget::default(),
            sync_v2: Some(Default::default()),
            _rt: std::marker::PhantomData,
        }
    }

    /// A builder for documents on `backend` (see [`Builder::backend`]): any
    /// [`Backend`], for example [`MemBackend`](sheaf_core::store::MemBackend).
    pub fn with_backend(backend: impl Backend + Send + 'static) -> Builder<R> {
        Self::memory().backend(backend)
    }

    /// A builder for documents persisted in `dir` (`docs.redb` and `default-author`).
    pub fn persistent(dir: impl Into<PathBuf>) -> Builder<R> {
        Builder {
            storage: Storage::Persistent(dir.into()),
            live: LiveConfig::default(),
            replica: ReplicaConfig::default(),
            protect: None,
            gossip_probe: crate::gossip_probe::DEFAULT_PERIOD,
            gate: None,
            memory: MemoryBudget::default(),
            sync_v2: Some(Default::default()),
            _rt: std::marker::PhantomData,
        }
    }

    pub(crate) async fn call(&self, command: StoreCommand) -> Result<StoreResponse> {
        Ok(self.inner.store.call(command).await?)
    }

    pub(crate) async fn live(&self, command: ApiCommand) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .live
            .send(LiveMsg::Api { command, reply })
            .await
            .map_err(|_| DocsError::Stopped)?;
        Ok(rx.await.map_err(|_| DocsError::Stopped)??)
    }

    /// The endpoint this engine syncs over.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// The blob store holding entry content.
    pub fn blobs(&self) -> &iroh_blobs::api::Store {
        &self.inner.blobs
    }

    /// The engine's counters.
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.inner.metrics
    }

    /// Whether the node is healthy: its store runs and iroh-gossip answers. Unhealthy parts
    /// are also in the metrics (`store_stopped`, `gossip_stalled`); a stopped store needs a
    /// restart, a stalled gossip is worked around by syncs.
    pub fn health(&self) -> Health {
        let m = &self.inner.metrics;
        Health {
            store_running: m.store_stopped.get() == 0,
            gossip_answering: m.gossip_stalled.get() == 0,
        }
    }

    /// The runtime.
    pub fn runtime(&self) -> &R {
        &self.inner.rt
    }

    // ---- authors ---------------------------------------------------------------------

    /// Creates a new author.
    pub async fn author_create(&self) -> Result<AuthorId> {
        let author = Author::new(&mut rand::rng());
        let id = author.id();
        self.call(StoreCommand::ImportAuthor(author)).await?;
        Ok(id)
    }

    /// All authors.
    pub async fn author_list(&self) -> Result<Vec<AuthorId>> {
        expect_reply!(self.call(StoreCommand::ListAuthors).await?, Authors)
    }

    /// The default author.
    pub fn author_default(&self) -> AuthorId {
        *self.inner.default_author.lock().expect("not poisoned")
    }

    /// Makes `id` the default author (it must exist); persisted for persistent nodes.
    pub async fn author_set_default(&self, id: AuthorId) -> Result<()> {
        if self.author_export(id).await?.is_none() {
            return Err(ReplicaError::AuthorNotFound(id).into());
        }
        if let Some(path) = &self.inner.author_file {
            std::fs::write(path, id.to_string())?;
        }
        *self.inner.default_author.lock().expect("not poisoned") = id;
        Ok(())
    }

    /// Imports an author's secret key.
    pub async fn author_import(&self, author: Author) -> Result<()> {
        self.call(StoreCommand::ImportAuthor(author)).await?;
        Ok(())
    }

    /// An author's secret key.
    pub async fn author_export(&self, id: AuthorId) -> Result<Option<Author>> {
        expect_reply!(self.call(StoreCommand::ExportAuthor(id)).await?, Author)
    }

    /// Deletes an author (not the default one).
    pub async fn author_delete(&self, id: AuthorId) -> Result<()> {
        if id == self.author_default() {
            return Err(DocsError::DefaultAuthorDelete);
        }
        self.call(StoreCommand::DeleteAuthor(id)).await?;
        Ok(())
    }

    // ---- documents -------------------------------------------------------------------

    /// Creates a new document with a fresh namespace key and opens it.
    pub async fn create(&self) -> Result<Doc<R>> {
        let secret = NamespaceSecret::new(&mut rand::rng());
        self.import_namespace(Capability::Write(secret)).await
    }

    /// Imports a capability (a read one is upgraded by a later write one) and opens the
    /// document, without syncing.
    pub async fn import_namespace(&self, capability: Capability) -> Result<Doc<R>> {
        let id = capability.id();
        let _: ImportNamespaceOutcome = expect_reply!(
            self.call(StoreCommand::ImportNamespace(capability)).await?,
            Imported
        )?;
        self.open(id).await
    }

    /// Opens an existing document (one more handle).
    pub async fn open(&self, id: NamespaceId) -> Result<Doc<R>> {
        self.call(StoreCommand::Open {
            namespace: id,
            opts: OpenOpts::default(),
        })
        .await?;
        Ok(Doc::new(self.clone(), id))
    }

    /// Imports a ticket's capability and starts syncing with its nodes.
    pub async fn import(&self, ticket: DocTicket) -> Result<Doc<R>> {
        let doc = self.import_namespace(ticket.capability).await?;
        doc.start_sync_nodes(ticket.nodes).await?;
        Ok(doc)
    }

    /// Like [`Docs::import`], but subscribes before syncing so no event is missed.
    pub async fn import_and_subscribe(
        &self,
        ticket: DocTicket,
    ) -> Result<(Doc<R>, crate::doc::Events)> {
        let doc = self.import_namespace(ticket.capability).await?;
        let events = doc.subscribe().await?;
        doc.start_sync_nodes(ticket.nodes).await?;
        Ok((doc, events))
    }

    /// All documents and their capability kinds.
    pub async fn list(&self) -> Result<Vec<(NamespaceId, CapabilityKind)>> {
        expect_reply!(self.call(StoreCommand::ListNamespaces).await?, Namespaces)
    }

    /// Stops syncing a document, ends its subscriptions and deletes all its data.
    pub async fn drop_doc(&self, id: NamespaceId) -> Result<()> {
        self.live(ApiCommand::Leave {
            namespace: id,
            kill_subscribers: true,
        })
        .await?;
        self.call(StoreCommand::DropReplica(id)).await?;
        Ok(())
    }

    /// Content hashes of every entry (for blob garbage-collection protection).
    pub async fn content_hashes(&self) -> Result<Vec<Hash>> {
        expect_reply!(self.call(StoreCommand::ContentHashes).await?, Hashes)
    }

    /// Returns once every write made to any document of this node before the call is
    /// durable (committed to the store file for persistent nodes; see [`Doc::flush`]).
    ///
    /// [`Doc::flush`]: crate::Doc::flush
    pub async fn flush(&self) -> Result<()> {
        match self.call(StoreCommand::Flush).await? {
            sheaf_core::replica::StoreResponse::Done => Ok(()),
            other => Err(DocsError::UnexpectedReply {
                expected: "Done",
                got: crate::reply::kind(&other),
            }),
        }
    }

    /// Stops the engine: ends all syncs, leaves all topics, flushes and closes the store.
    /// Returns once the store file is closed, so a persistent node can be reopened at once.
    ///
    /// Bounded in time whatever the number of documents and peers (see [`crate::BoundedShutdown`]'s
    /// module): each wait on the live task takes at most [`crate::LIVE_SHUTDOWN_BOUND`], and
    /// the store's final flush runs after at most the command it is working on.
    pub async fn shutdown(&self) -> Result<()> {
        let rt = &self.inner.rt;
        tracing::info!("docs: shutting down");
        let result = match within(rt, LIVE_SHUTDOWN_BOUND, self.live(ApiCommand::Shutdown)).await {
            Some(result) => result,
            None => {
                tracing::warn!(bound = ?LIVE_SHUTDOWN_BOUND, "docs: live task did not confirm the shutdown in time");
                Ok(())
            }
        };
        if within(rt, LIVE_SHUTDOWN_BOUND, self.inner.live.send(LiveMsg::Stop))
            .await
            .is_none()
        {
            tracing::warn!(bound = ?LIVE_SHUTDOWN_BOUND, "docs: live task did not take the stop in time");
        }
        self.inner.v2_pool.clear();
        tracing::debug!("docs: live task stopped; flushing and closing the store");
        self.inner.store.shutdown().await;
        tracing::info!("docs: store flushed and closed");
        match result {
            Err(DocsError::Stopped) | Err(DocsError::Live(LiveError::ShuttingDown)) | Ok(()) => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Handles an incoming `/iroh-sync/1` connection.
    pub async fn handle_connection(&self, conn: Connection) -> Result<()> {
        self.inner.metrics.count_path(&conn);
        let (send, recv) = conn
            .accept_bi()
            .await
            .map_err(|e| DocsError::Io(std::io::Error::other(e)))?;
        self.inner
            .live
            .send(LiveMsg::Accepted { conn, send, recv })
            .await
            .map_err(|_| DocsError::Stopped)
    }

    /// The endpoint address other nodes should dial, as a core node address.
    pub fn node_addr(&self) -> sheaf_core::wire::NodeAddr {
        node_addr(&self.inner.endpoint.addr())
    }

    /// A router on this engine's endpoint serving everything a node needs: this engine on
    /// [`crate::ALPN`], its blob store on iroh-blobs' ALPN and `gossip` on iroh-gossip's.
    /// Build the router yourself to serve more protocols; wrap gossip in a
    /// [`crate::BoundedShutdown`] as this one does, or the router's shutdown can hang with
    /// many documents (see that type's module).
    pub fn router(&self, gossip: Gossip) -> iroh::protocol::Router {
        let mut router = iroh::protocol::Router::builder(self.inner.endpoint.clone());
        if self.sync_v2_enabled() {
            // First: the accepting side picks the first of its ALPNs a dialer offers.
            router = router.accept(crate::ALPN_V2, crate::SyncV2Handler(self.clone()));
        }
        router
            .accept(crate::ALPN, self.clone())
            .accept(
                iroh_blobs::ALPN,
                iroh_blobs::BlobsProtocol::new(&self.inner.blobs, None),
            )
            .accept(iroh_gossip::ALPN, self.gossip_handler(gossip))
            .spawn()
    }

    /// The protocol handler for iroh-gossip's ALPN that a router built by hand should mount
    /// (what [`Docs::router`] mounts): `gossip` behind this engine's gate, which cuts off
    /// peers that send forged `Put`s (see [`GatedGossip`]), with a bounded shutdown.
    pub fn gossip_handler(&self, gossip: Gossip) -> BoundedShutdown<GatedGossip> {
        BoundedShutdown::new(
            GatedGossip::new(gossip, self.inner.gate.clone()),
            "gossip",
            GOSSIP_SHUTDOWN_BOUND,
        )
    }

    /// Whether this node serves and dials sync v2 ([`Builder::sync_v2`]).
    pub fn sync_v2_enabled(&self) -> bool {
        self.inner.sync_v2.is_some()
    }

    pub(crate) fn valid_peer(&self, addr: &sheaf_core::wire::NodeAddr) -> bool {
        endpoint_id(addr.id).is_some()
    }
}

impl<R: Runtime> ProtocolHandler for Docs<R> {
    async fn accept(
        &self,
        connection: Connection,
    ) -> std::result::Result<(), iroh::protocol::AcceptError> {
        self.handle_connection(connection).await.map_err(|e| {
            iroh::protocol::AcceptError::from_err(std::io::Error::other(e.to_string()))
        })
    }

    async fn shutdown(&self) {
        if let Err(e) = Docs::shutdown(self).await {
            tracing::warn!(%e, "docs shutdown");
        }
    }
}
