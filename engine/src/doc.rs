//! `Doc`: a handle to one open document.

use std::{
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll},
};

use bytes::Bytes;
use sheaf_core::{
    live::{ApiCommand, LiveEvent},
    replica::{OpenState, StoreCommand, StoreResponse},
    store::{DownloadPolicy, Query},
    wire::{DocTicket, NodeAddr, TransportAddr},
    AuthorId, Capability, Hash, NamespaceId, PeerId, SignedEntry,
};
use tokio::sync::{mpsc, oneshot};

use crate::{
    convert::hash,
    docs::{Docs, DocsError, Result},
    live_task::{LiveMsg, SUBSCRIBER_CAPACITY},
    reply::expect_reply,
    runtime::Runtime,
};

/// Which capability a ticket carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareMode {
    /// Read access: the namespace id.
    Read,
    /// Write access: the namespace secret.
    Write,
}

/// Which of our addresses a ticket carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddrInfoOptions {
    /// Only the node id.
    #[default]
    Id,
    /// Relay URL and direct addresses.
    RelayAndAddresses,
    /// Only the relay URL.
    Relay,
    /// Only direct addresses.
    Addresses,
}

impl AddrInfoOptions {
    fn apply(self, mut addr: NodeAddr) -> NodeAddr {
        addr.addrs.retain(|a| match (self, a) {
            (AddrInfoOptions::Id, _) => false,
            (AddrInfoOptions::RelayAndAddresses, _) => true,
            (AddrInfoOptions::Relay, TransportAddr::Relay(_)) => true,
            (AddrInfoOptions::Addresses, TransportAddr::Ip(_)) => true,
            _ => false,
        });
        addr
    }
}

/// A stream of a document's events. Slow readers lose events and see
/// [`LiveEvent::Lagged`] instead of slowing the node down. Dropping it ends the subscription:
/// the node releases its queue at once, whether or not the document has events.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::Receiver<LiveEvent>,
    namespace: NamespaceId,
    live: mpsc::Sender<LiveMsg>,
}

impl Drop for Events {
    fn drop(&mut self) {
        self.rx.close();
        // A full inbox: the next event of the document finds the queue closed instead.
        let _ = self.live.try_send(LiveMsg::SubscriberGone {
            namespace: self.namespace,
        });
    }
}

impl Events {
    /// The next event; `None` once the subscription ended.
    pub async fn recv(&mut self) -> Option<LiveEvent> {
        self.rx.recv().await
    }
}

impl futures_lite::Stream for Events {
    type Item = LiveEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<LiveEvent>> {
        self.rx.poll_recv(cx)
    }
}

/// Progress of [`Doc::import_file`] and [`Doc::export_file`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileProgress {
    /// The file's size is known.
    Size(u64),
    /// Bytes copied so far.
    Copied(u64),
    /// Bytes hashed so far (imports only).
    Hashed(u64),
}

/// A handle to an open document. Cloning shares the handle; [`Doc::close`] releases it.
pub struct Doc<R: Runtime> {
    docs: Docs<R>,
    id: NamespaceId,
    closed: Arc<AtomicBool>,
}

impl<R: Runtime> Clone for Doc<R> {
    fn clone(&self) -> Self {
        Self {
            docs: self.docs.clone(),
            id: self.id,
            closed: self.closed.clone(),
        }
    }
}

impl<R: Runtime> std::fmt::Debug for Doc<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doc").field("id", &self.id).finish()
    }
}

impl<R: Runtime> Doc<R> {
    pub(crate) fn new(docs: Docs<R>, id: NamespaceId) -> Self {
        Self {
            docs,
            id,
            closed: Arc::new(AtomicBool::new(false)),
        }
    }

    fn open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(DocsError::Closed);
        }
        Ok(())
    }

    async fn call(&self, command: StoreCommand) -> Result<StoreResponse> {
        self.open()?;
        self.docs.call(command).await
    }

    /// The document's id.
    pub fn id(&self) -> NamespaceId {
        self.id
    }

    /// Returns once every write made to the node before this call is durable: committed to
    /// the store file (persistent nodes), so it survives a crash. Writes are otherwise
    /// committed on the store's own schedule, at most 500 ms after they were made. Content
    /// written with [`Doc::set_bytes`] is in the blob store when that call returns.
    pub async fn flush(&self) -> Result<()> {
        self.open()?;
        self.docs.flush().await
    }

    /// Releases this handle; the document closes when its last handle does.
    pub async fn close(&self) -> Result<()> {
        self.open()?;
        self.closed.store(true, Ordering::Release);
        self.docs.call(StoreCommand::Close(self.id)).await?;
        Ok(())
    }

    /// Stores `value` in the blob store and writes `key → value` by `author`.
    pub async fn set_bytes(
        &self,
        author: AuthorId,
        key: impl Into<Bytes>,
        value: impl Into<Bytes>,
    ) -> Result<Hash> {
        self.open()?;
        let value: Bytes = value.into();
        let len = value.len() as u64;
        let tag = self
            .docs
            .blobs()
            .add_bytes(value)
            .temp_tag()
            .await
            .map_err(|e| DocsError::Blobs(e.to_string()))?;
        let h = hash(tag.hash());
        self.set_hash(author, key, h, len).await?;
        drop(tag);
        Ok(h)
    }

    /// Stores many values and writes `key → value` for each pair, by `author`: for an
    /// application that writes a lot at once, much cheaper per entry than one
    /// [`set_bytes`](Self::set_bytes) each. Returns per pair, in order, the content hash, or
    /// `None` where an entry at least as new at the key or a prefix of it kept the write out.
    ///
    /// Pairs go in batches of [`MAX_LOCAL_BATCH`](sheaf_core::replica::MAX_LOCAL_BATCH): a
    /// batch's values are imported into the blob store concurrently, then its entries are
    /// signed and written by one store command, all with one timestamp. Keys must be distinct
    /// within a batch ([`ReplicaError::DuplicateKey`](sheaf_core::replica::ReplicaError)
    /// otherwise, before anything of that batch is written); a batch whose key or content
    /// breaks the entry limits is refused as a whole. An error stops the call: the batches
    /// before it are written. At most one batch of values is held at a time beyond what the
    /// iterator holds.
    #[tracing::instrument(skip_all, fields(doc = %self.id.fmt_short()))]
    pub async fn set_many<K, V>(
        &self,
        author: AuthorId,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Vec<Option<Hash>>>
    where
        K: Into<Bytes>,
        V: Into<Bytes>,
    {
        use sheaf_core::replica::{LocalWrite, MAX_LOCAL_BATCH};
        self.open()?;
        let mut out = Vec::new();
        let mut pairs = pairs.into_iter().peekable();
        while pairs.peek().is_some() {
            let batch: Vec<(Bytes, Bytes)> = pairs
                .by_ref()
                .take(MAX_LOCAL_BATCH)
                .map(|(k, v)| (k.into(), v.into()))
                .collect();
            let blobs = self.docs.blobs();
            let imports = batch
                .iter()
                .map(|(_, v)| blobs.add_bytes(v.clone()).temp_tag());
            // The tags keep the content alive until the entries that point at it are written.
            let mut tags = Vec::with_capacity(batch.len());
            for tag in n0_future::join_all(imports).await {
                tags.push(tag.map_err(|e| DocsError::Blobs(e.to_string()))?);
            }
            let writes = batch
                .iter()
                .zip(&tags)
                .map(|((key, value), tag)| LocalWrite {
                    key: key.clone(),
                    hash: hash(tag.hash()),
                    len: value.len() as u64,
                })
                .collect();
            let reply = self
                .call(StoreCommand::InsertLocalMany {
                    namespace: self.id,
                    author,
                    writes,
                })
                .await?;
            let written = expect_reply!(reply, InsertedMany)?;
            out.extend(written.iter().map(|e| e.as_ref().map(|e| e.content_hash())));
            drop(tags);
        }
        Ok(out)
    }

    /// Writes `key → (hash, size)` by `author` for content already in the blob store.
    #[tracing::instrument(skip_all, fields(doc = %self.id.fmt_short()))]
    pub async fn set_hash(
        &self,
        author: AuthorId,
        key: impl Into<Bytes>,
        hash: Hash,
        size: u64,
    ) -> Result<()> {
        self.call(StoreCommand::InsertLocal {
            namespace: self.id,
            author,
            key: key.into(),
            hash,
            len: size,
        })
        .await?;
        Ok(())
    }

    /// Deletes every entry of `author` under `prefix`; returns how many were removed.
    #[tracing::instrument(skip_all, fields(doc = %self.id.fmt_short()))]
    pub async fn del(&self, author: AuthorId, prefix: impl Into<Bytes>) -> Result<usize> {
        let reply = self
            .call(StoreCommand::DeletePrefix {
                namespace: self.id,
                author,
                prefix: prefix.into(),
            })
            .await?;
        expect_reply!(reply, Removed)
    }

    /// The entry of `author` at `key` (tombstones only with `include_empty`).
    pub async fn get_exact(
        &self,
        author: AuthorId,
        key: impl Into<Bytes>,
        include_empty: bool,
    ) -> Result<Option<SignedEntry>> {
        let reply = self
            .call(StoreCommand::GetExact {
                namespace: self.id,
                author,
                key: key.into(),
                include_empty,
            })
            .await?;
        expect_reply!(reply, Entry)
    }

    /// All entries matching `query`, fetched page by page.
    #[tracing::instrument(skip_all, fields(doc = %self.id.fmt_short()))]
    pub async fn get_many(&self, query: impl Into<Query>) -> Result<Vec<SignedEntry>> {
        let query = query.into();
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let reply = self
                .call(StoreCommand::GetMany {
                    namespace: self.id,
                    query: query.clone(),
                    cursor,
                })
                .await?;
            let page = expect_reply!(reply, Page)?;
            out.extend(page.entries);
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// The first entry matching `query`.
    pub async fn get_one(&self, query: impl Into<Query>) -> Result<Option<SignedEntry>> {
        Ok(self
            .get_many(query.into().limit(1))
            .await?
            .into_iter()
            .next())
    }

    /// Imports the file at `path` into the blob store and writes `key → file` by `author`,
    /// reporting progress as it goes. Returns the content hash and size.
    #[tracing::instrument(skip_all, fields(doc = %self.id.fmt_short()))]
    pub async fn import_file(
        &self,
        author: AuthorId,
        key: impl Into<Bytes>,
        path: impl AsRef<std::path::Path>,
        mut progress: impl FnMut(FileProgress),
    ) -> Result<(Hash, u64)> {
        use futures_lite::StreamExt;
        use iroh_blobs::api::proto::AddProgressItem;
        self.open()?;
        let path = std::path::absolute(path.as_ref())?;
        let mut stream = Box::pin(self.docs.blobs().add_path(path).stream().await);
        let mut size = 0;
        while let Some(item) = stream.next().await {
            match item {
                AddProgressItem::Size(n) => {
                    size = n;
                    progress(FileProgress::Size(n));
                }
                AddProgressItem::CopyProgress(n) => progress(FileProgress::Copied(n)),
                AddProgressItem::OutboardProgress(n) => progress(FileProgress::Hashed(n)),
                AddProgressItem::CopyDone => {}
                AddProgressItem::Done(tag) => {
                    let h = hash(tag.hash());
                    self.set_hash(author, key, h, size).await?;
                    drop(tag);
                    return Ok((h, size));
                }
                AddProgressItem::Error(e) => return Err(DocsError::Io(e)),
            }
        }
        Err(DocsError::Blobs("import ended without a result".into()))
    }

    /// Writes the content of `entry` to the file at `path`, reporting progress. Returns the
    /// number of bytes written.
    #[tracing::instrument(skip_all, fields(doc = %self.id.fmt_short()))]
    pub async fn export_file(
        &self,
        entry: &SignedEntry,
        path: impl AsRef<std::path::Path>,
        mut progress: impl FnMut(FileProgress),
    ) -> Result<u64> {
        use futures_lite::StreamExt;
        use iroh_blobs::api::proto::ExportProgressItem;
        self.open()?;
        let path = std::path::absolute(path.as_ref())?;
        let h = crate::convert::blob_hash(entry.content_hash());
        let mut stream = Box::pin(self.docs.blobs().export(h, path).stream().await);
        let mut size = 0;
        while let Some(item) = stream.next().await {
            match item {
                ExportProgressItem::Size(n) => {
                    size = n;
                    progress(FileProgress::Size(n));
                }
                ExportProgressItem::CopyProgress(n) => progress(FileProgress::Copied(n)),
                ExportProgressItem::Done => return Ok(size),
                ExportProgressItem::Error(e) => return Err(DocsError::Blobs(e.to_string())),
            }
        }
        Err(DocsError::Blobs("export ended without a result".into()))
    }

    /// A ticket for this document; also starts accepting syncs for it.
    #[tracing::instrument(skip_all, fields(doc = %self.id.fmt_short()))]
    pub async fn share(&self, mode: ShareMode, addr: AddrInfoOptions) -> Result<DocTicket> {
        self.open()?;
        let capability = match mode {
            ShareMode::Read => Capability::Read(self.id),
            ShareMode::Write => Capability::Write(expect_reply!(
                self.call(StoreCommand::ExportSecretKey(self.id)).await?,
                Secret
            )?),
        };
        self.start_sync_nodes(Vec::new()).await?;
        Ok(DocTicket::new(
            capability,
            vec![addr.apply(self.docs.node_addr())],
        ))
    }

    /// Starts syncing with `peers` (and accepting syncs from anyone who knows the document).
    #[tracing::instrument(skip_all, fields(doc = %self.id.fmt_short()))]
    pub async fn start_sync(&self, peers: Vec<iroh::EndpointAddr>) -> Result<()> {
        let nodes = peers.iter().map(crate::convert::node_addr).collect();
        self.start_sync_nodes(nodes).await
    }

    pub(crate) async fn start_sync_nodes(&self, peers: Vec<NodeAddr>) -> Result<()> {
        self.open()?;
        let peers = peers
            .into_iter()
            .filter(|p| self.docs.valid_peer(p))
            .collect();
        self.docs
            .live(ApiCommand::StartSync {
                namespace: self.id,
                peers,
            })
            .await
    }

    /// Stops syncing (subscriptions stay).
    #[tracing::instrument(skip_all, fields(doc = %self.id.fmt_short()))]
    pub async fn leave(&self) -> Result<()> {
        self.open()?;
        self.docs
            .live(ApiCommand::Leave {
                namespace: self.id,
                kill_subscribers: false,
            })
            .await
    }

    /// Subscribes to the document's events.
    #[tracing::instrument(skip_all, fields(doc = %self.id.fmt_short()))]
    pub async fn subscribe(&self) -> Result<Events> {
        self.open()?;
        let (tx, rx) = mpsc::channel(SUBSCRIBER_CAPACITY);
        let (reply, done) = oneshot::channel();
        self.docs
            .inner
            .live
            .send(LiveMsg::Subscribe {
                namespace: self.id,
                tx,
                reply,
            })
            .await
            .map_err(|_| DocsError::Stopped)?;
        done.await.map_err(|_| DocsError::Stopped)??;
        Ok(Events {
            rx,
            namespace: self.id,
            live: self.docs.inner.live.clone(),
        })
    }

    /// The document's sync state: the peers it tracks, which are gossip neighbours, syncs
    /// running, failures and each peer's last finished sync. `None` while the document is
    /// not being synced (see [`Doc::start_sync`]).
    pub async fn sync_status(&self) -> Result<Option<crate::DocSyncStatus>> {
        self.open()?;
        let (reply, answer) = oneshot::channel();
        self.docs
            .inner
            .live
            .send(LiveMsg::SyncStatus {
                namespace: self.id,
                reply,
            })
            .await
            .map_err(|_| DocsError::Stopped)?;
        answer.await.map_err(|_| DocsError::Stopped)
    }

    /// Sync flag, subscriber and handle counts.
    pub async fn status(&self) -> Result<OpenState> {
        expect_reply!(self.call(StoreCommand::GetState(self.id)).await?, State)
    }

    /// Sets which content is downloaded.
    pub async fn set_download_policy(&self, policy: DownloadPolicy) -> Result<()> {
        self.call(StoreCommand::SetDownloadPolicy {
            namespace: self.id,
            policy,
        })
        .await?;
        Ok(())
    }

    /// The download policy.
    pub async fn get_download_policy(&self) -> Result<DownloadPolicy> {
        expect_reply!(
            self.call(StoreCommand::GetDownloadPolicy(self.id)).await?,
            Policy
        )
    }

    /// Up to five peers this document synced with successfully, newest first.
    pub async fn get_sync_peers(&self) -> Result<Option<Vec<PeerId>>> {
        expect_reply!(self.call(StoreCommand::GetSyncPeers(self.id)).await?, Peers)
    }
}
