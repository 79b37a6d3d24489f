//! A persistent node on a data directory: the lock, the secret key, the stores, the router.

use std::{
    collections::BTreeMap,
    fs::{File, OpenOptions},
    io::Write,
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
};

use iroh::{endpoint::presets, protocol::Router, Endpoint, SecretKey};
use iroh_blobs::store::fs::FsStore;
use sheaf_tokio::{Capability, Doc, DocTicket, Docs, LiveConfig, NamespaceId};

use crate::{net::NetArgs, CliError, Result};

/// The data directory to use: `--data`, else `$SHEAF_DATA`, else the platform's one.
pub fn data_dir(flag: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir);
    }
    if let Some(dir) = std::env::var_os("SHEAF_DATA").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    dirs::data_dir()
        .map(|d| d.join("sheaf"))
        .ok_or(CliError::NoDataDir)
}

/// Creates the data directory if needed.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| CliError::DataDir {
        path: dir.to_path_buf(),
        source,
    })
}

/// The exclusive lock on a data directory; released when dropped (or the process ends).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// Whether the lock was taken.
#[derive(Debug)]
pub enum LockOutcome {
    /// It is ours.
    Locked(DirLock),
    /// Another process holds it.
    Busy(Holder),
}

/// Who holds a data directory's lock, as far as its lock file tells.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Its process id.
    pub pid: Option<u32>,
    /// Whether it is a `sheaf serve` (else a short-lived command).
    pub serving: bool,
}

impl DirLock {
    /// Tries to take `DIR/sheaf.lock` without waiting, and writes our pid into it, and
    /// `serve` if `serving`.
    pub fn try_lock(dir: &Path, serving: bool) -> Result<LockOutcome> {
        let path = dir.join("sheaf.lock");
        let data_err = |source| CliError::DataDir {
            path: dir.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(data_err)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0).map_err(data_err)?;
                let role = if serving { "serve" } else { "command" };
                writeln!(file, "{} {role}", std::process::id()).map_err(data_err)?;
                Ok(LockOutcome::Locked(DirLock { _file: file }))
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let mut words = text.split_whitespace();
                Ok(LockOutcome::Busy(Holder {
                    pid: words.next().and_then(|p| p.parse().ok()),
                    serving: words.next() == Some("serve"),
                }))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(data_err(e)),
        }
    }
}

/// The node's secret key from `DIR/node.key` (hex), created on first use.
pub fn secret_key(dir: &Path) -> Result<SecretKey> {
    let path = dir.join("node.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let bytes: [u8; 32] = hex::decode(text.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| CliError::Other(format!("{} is not a node key", path.display())))?;
            Ok(SecretKey::from_bytes(&bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            let mut opts = OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut file = opts.open(&path)?;
            writeln!(file, "{}", hex::encode(key.to_bytes()))?;
            file.sync_all()?;
            Ok(key)
        }
        Err(e) => Err(e.into()),
    }
}

/// How long each part of a node's shutdown (router and endpoint, blob store) may take.
pub const SHUTDOWN_BOUND: std::time::Duration = std::time::Duration::from_secs(5);

/// How often a node re-syncs every document with every peer it knows: it catches up with
/// peers after missed gossip or time offline, and each sync asks the peer again for content
/// still missing here (the engine itself retries a failed download a few times with backoff).
pub const ANTI_ENTROPY: std::time::Duration = std::time::Duration::from_secs(30);

/// The engine's default sync configuration with periodic anti-entropy every `interval`.
pub fn live_config(interval: std::time::Duration) -> LiveConfig {
    LiveConfig {
        anti_entropy_interval: Some(interval),
        ..LiveConfig::default()
    }
}

/// A running node: endpoint, blob store, gossip, Sheaf docs, router.
#[derive(Debug)]
pub struct Node {
    /// The router serving docs, blobs and gossip.
    pub router: Router,
    /// The documents engine.
    pub docs: Docs,
    /// The blob store.
    pub blobs: iroh_blobs::api::Store,
    /// The data directory, if persistent.
    pub dir: Option<PathBuf>,
    /// Whether the node runs without relays and discovery (`--offline`).
    pub offline: bool,
}

impl Node {
    /// Spawns a node persisted in `dir` (which the caller has locked), bound to `bind`,
    /// reaching peers as `net` says, with [`live_config`]`(`[`ANTI_ENTROPY`]`)`.
    pub async fn persistent(dir: &Path, bind: SocketAddr, net: &NetArgs) -> Result<Node> {
        Self::persistent_with(dir, bind, net, live_config(ANTI_ENTROPY)).await
    }

    /// Like [`Node::persistent`], with a sync configuration of the caller's.
    pub async fn persistent_with(
        dir: &Path,
        bind: SocketAddr,
        net: &NetArgs,
        live: LiveConfig,
    ) -> Result<Node> {
        let key = secret_key(dir)?;
        Self::spawn(Some(dir), Some(key), bind, net, live).await
    }

    /// Spawns a node; persistent when `dir` is given. It binds at once whatever the
    /// network: relays and discovery (unless `net` is offline) connect in the background.
    pub async fn spawn(
        dir: Option<&Path>,
        key: Option<SecretKey>,
        bind: SocketAddr,
        net: &NetArgs,
        live: LiveConfig,
    ) -> Result<Node> {
        // Direct addresses on `bind`, plus relays, discovery and the port mapper as `net`
        // says. The gate's hooks cut off peers that forge gossip, whichever side dialed.
        let gate = sheaf_tokio::GossipGate::new();
        let builder = net.apply(Endpoint::builder(presets::Minimal))?;
        let mut builder = builder
            .hooks(gate.hooks())
            .transport_config(sheaf_tokio::transport_config())
            .clear_ip_transports();
        if !net.relay_only {
            builder = builder.bind_addr(bind).map_err(|e| CliError::Bind {
                addr: bind,
                reason: e.to_string(),
            })?;
        }
        if let Some(key) = key {
            builder = builder.secret_key(key);
        }
        let endpoint = builder.bind().await.map_err(|e| CliError::Bind {
            addr: bind,
            reason: e.to_string(),
        })?;
        let (blobs, builder) = match dir {
            Some(dir) => {
                let store = match FsStore::load(dir.join("blobs")).await {
                    Ok(store) => store,
                    Err(e) => {
                        endpoint.close().await;
                        return Err(CliError::Other(format!("blob store: {e}")));
                    }
                };
                ((*store).clone(), Docs::persistent(dir.join("docs")))
            }
            None => {
                let store = iroh_blobs::store::mem::MemStore::new();
                ((*store).clone(), Docs::memory())
            }
        };
        let gossip = sheaf_tokio::gossip_builder().spawn(endpoint.clone());
        let docs = match builder
            .memory_budget(net.memory_budget.saturating_mul(1 << 20))
            .live_config(live)
            .gossip_gate(gate)
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
        let router = docs.router(gossip);
        Ok(Node {
            router,
            docs,
            blobs,
            dir: dir.map(Path::to_path_buf),
            offline: net.offline,
        })
    }

    /// The node's id.
    pub fn id(&self) -> iroh::EndpointId {
        self.router.endpoint().id()
    }

    /// The node's home relay connection, waiting at most `bound` for it.
    pub async fn relay(&self, bound: std::time::Duration) -> crate::net::RelayState {
        crate::net::relay_state(self.router.endpoint(), self.offline, bound).await
    }

    /// How the node reaches `peer` (a node id) now: directly if a direct address is in
    /// use, else through a relay if one is; `None` without a connection in use.
    pub async fn path_to(&self, peer: &str) -> Option<crate::status::Path> {
        use iroh::endpoint::TransportAddrUsage;
        let id = iroh::EndpointId::from_str(peer).ok()?;
        let info = self.router.endpoint().remote_info(id).await?;
        let active: Vec<&iroh::TransportAddr> = info
            .addrs()
            .filter(|a| matches!(a.usage(), TransportAddrUsage::Active))
            .map(|a| a.addr())
            .collect();
        if active
            .iter()
            .any(|a| matches!(a, iroh::TransportAddr::Ip(_)))
        {
            Some(crate::status::Path::Direct)
        } else if active
            .iter()
            .any(|a| matches!(a, iroh::TransportAddr::Relay(_)))
        {
            Some(crate::status::Path::Relay)
        } else {
            None
        }
    }

    /// The node's direct addresses (the bound sockets if none are known yet).
    pub fn addrs(&self) -> Vec<SocketAddr> {
        let addrs: Vec<SocketAddr> = self.router.endpoint().addr().ip_addrs().copied().collect();
        if addrs.is_empty() {
            self.router.endpoint().bound_sockets()
        } else {
            addrs
        }
    }

    /// Stops syncing, flushes and closes the stores, closes the endpoint.
    ///
    /// Bounded in time whatever the number of documents and peers: the docs engine flushes
    /// every write first (its own waits are bounded, see `sheaf::BoundedShutdown`), then the
    /// router and the blob store get [`SHUTDOWN_BOUND`] each; a bound that expires is logged
    /// and the shutdown goes on (the process exit ends what is left).
    pub async fn shutdown(&self) -> Result<()> {
        tracing::info!("node: shutting down");
        let docs = self.docs.shutdown().await;
        match tokio::time::timeout(SHUTDOWN_BOUND, self.router.shutdown()).await {
            Ok(Ok(())) => tracing::info!("node: router and endpoint closed"),
            Ok(Err(e)) => tracing::warn!(%e, "node: router shutdown failed"),
            Err(_) => tracing::warn!(bound = ?SHUTDOWN_BOUND, "node: router did not close in time"),
        }
        match tokio::time::timeout(SHUTDOWN_BOUND, self.blobs.shutdown()).await {
            Ok(_) => tracing::info!("node: blob store closed"),
            Err(_) => {
                tracing::warn!(bound = ?SHUTDOWN_BOUND, "node: blob store did not close in time")
            }
        }
        docs.map_err(CliError::other)
    }

    /// The data directory, for messages.
    pub fn dir_display(&self) -> String {
        self.dir
            .as_deref()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "memory".into())
    }

    /// Whether the blob store holds the complete content of `hash`.
    pub async fn has_content(&self, hash: sheaf_tokio::Hash) -> bool {
        let hash = iroh_blobs::Hash::from_bytes(hash.to_bytes());
        matches!(
            self.blobs.blobs().status(hash).await,
            Ok(iroh_blobs::api::proto::BlobStatus::Complete { .. })
        )
    }

    /// How much of the content of `doc`'s entries is stored here.
    pub async fn content_progress(&self, doc: &Doc) -> Result<ContentProgress> {
        let mut out = ContentProgress::default();
        for e in doc.get_many(sheaf_tokio::Query::all()).await? {
            out.entries += 1;
            if e.content_len() == 0 {
                continue;
            }
            out.total_bytes = out.total_bytes.saturating_add(e.content_len());
            if self.has_content(e.content_hash()).await {
                out.present_bytes = out.present_bytes.saturating_add(e.content_len());
            } else {
                out.missing_entries += 1;
            }
        }
        Ok(out)
    }

    /// Opens a document of the store, failing with "unknown document" for others.
    pub async fn open_doc(&self, id: NamespaceId) -> Result<Doc> {
        if !self.docs.list().await?.iter().any(|(d, _)| *d == id) {
            return Err(CliError::UnknownDoc(id.to_string()));
        }
        Ok(self.docs.open(id).await?)
    }

    /// Starts syncing the documents recorded in `sync.json` (joined or shared ones) and
    /// those with stored sync peers. Returns how many.
    ///
    /// Documents are resumed [`RESUME_IN_FLIGHT`] at a time rather than one after another,
    /// so a node with thousands of documents is ready in a fraction of the time.
    pub async fn resume(&self) -> Result<usize> {
        let Some(dir) = &self.dir else { return Ok(0) };
        let recorded = std::sync::Arc::new(SyncList::load(dir));
        let mut tasks = tokio::task::JoinSet::new();
        let mut n = 0;
        for (id, _) in self.docs.list().await? {
            while tasks.len() >= RESUME_IN_FLIGHT {
                n += usize::from(join_resume(&mut tasks).await?);
            }
            let (docs, recorded) = (self.docs.clone(), recorded.clone());
            tasks.spawn(async move { resume_doc(&docs, &recorded, id).await });
        }
        while !tasks.is_empty() {
            n += usize::from(join_resume(&mut tasks).await?);
        }
        Ok(n)
    }

    /// Records that `doc` is to be synced again after a restart, with the peers of
    /// `ticket` (kept as a read-only ticket, so no secret is written here).
    pub fn record_sync(&self, doc: NamespaceId, ticket: Option<&DocTicket>) -> Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let mut list = SyncList::load(dir);
        let entry = list.docs.entry(doc.to_string()).or_default();
        if let Some(t) = ticket {
            *entry = Some(DocTicket::new(Capability::Read(doc), t.nodes.clone()).to_string());
        }
        list.save(dir)
    }
}

/// Documents [`Node::resume`] starts at once.
pub const RESUME_IN_FLIGHT: usize = 32;

async fn join_resume(tasks: &mut tokio::task::JoinSet<Result<bool>>) -> Result<bool> {
    match tasks.join_next().await {
        Some(Ok(resumed)) => resumed,
        Some(Err(e)) => Err(CliError::other(e)),
        None => Ok(false),
    }
}

/// Starts syncing one document if `sync.json` records it or it has sync peers; whether it
/// did.
async fn resume_doc(docs: &Docs, recorded: &SyncList, id: NamespaceId) -> Result<bool> {
    let key = id.to_string();
    let ticket = recorded
        .docs
        .get(&key)
        .and_then(|t| t.as_deref())
        .and_then(|t| DocTicket::from_str(t).ok());
    if let Some(ticket) = ticket {
        docs.import(ticket).await?;
    } else if recorded.docs.contains_key(&key)
        || docs
            .open(id)
            .await?
            .get_sync_peers()
            .await?
            .is_some_and(|p| !p.is_empty())
    {
        docs.open(id).await?.start_sync(Vec::new()).await?;
    } else {
        return Ok(false);
    }
    Ok(true)
}

/// `sync.json`: documents to resume syncing, with a read ticket naming their peers.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct SyncList {
    docs: BTreeMap<String, Option<String>>,
}

impl SyncList {
    fn load(dir: &Path) -> Self {
        std::fs::read(dir.join("sync.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join("sync.json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).map_err(CliError::other)?,
        )?;
        std::fs::rename(tmp, dir.join("sync.json"))?;
        Ok(())
    }
}

/// How much of a document's content is stored locally ([`Node::content_progress`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContentProgress {
    /// Entries of every author, tombstones included.
    pub entries: usize,
    /// Non-empty entries whose content is not (completely) stored.
    pub missing_entries: usize,
    /// Content bytes of the entries whose content is stored.
    pub present_bytes: u64,
    /// Content bytes of all non-empty entries.
    pub total_bytes: u64,
}
