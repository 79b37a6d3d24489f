//! The store executor: every operation on documents, as deterministic commands.
//!
//! [`Replicas`] is the sans-IO form of iroh-docs' sync actor. A runtime owns one, usually on a
//! thread of its own, and feeds it [`StoreCommand`]s with the current time; it answers each
//! with a [`StoreResponse`] and queues [`ReplicaEvent`]s (local and remote inserts) that the
//! caller drains with [`Replicas::poll_event`] after every command. Nothing inside reads a
//! clock or blocks.
//!
//! ```text
//!   runtime ──apply(now, cmd)──▶ Replicas ──▶ Indexed<B> ──▶ B: Backend (MemBackend | RedbBackend)
//!      ▲                            │
//!      └──── poll_event() ◀─────────┘   LocalInsert / RemoteInsert
//!      └──── poll_timeout() / handle_timeout(now): commit at most every 500 ms
//! ```
//!
//! `Replicas` with its [`Indexed`] backend is the node's *store*. Documents are opened with a
//! reference count; the `sync` flag is OR-ed over all opens and gates every remote write.
//! Whether a document's events are wanted is a flag, not a count: `Live` sends exactly one
//! [`StoreCommand::Subscribe`] per document it wants events for and one `Unsubscribe` when it
//! stops, and counts its own subscribers; both commands are idempotent here. Local writes are stamped with `now.wall_micros`, signed with the
//! namespace and author keys, and refused on a read-only capability. Remote entries are
//! validated ([`EntryLimits::check_remote`]) before the prefix-aware insert.

mod commands;
mod local;
#[cfg(test)]
mod tests;
mod v2;

use std::{
    collections::{BTreeMap, VecDeque},
    num::NonZeroU64,
    time::Duration,
};

pub use commands::{StoreCommand, StoreResponse};
pub use local::{LocalWrite, MAX_LOCAL_BATCH};
pub use v2::{V2Command, V2Response, V2Step, MAX_V2_CONNECTIONS, MAX_V2_STREAMS};

use crate::{
    entry::{
        CheckedSignatures, CheckedStream, EntryLimits, KeyCache, NoChecksAhead, SignedEntry,
        ValidationFailure,
    },
    hash::{Hash, PeerId},
    keys::{
        Author, AuthorId, Capability, CapabilityError, CapabilityKind, NamespaceId, NamespaceSecret,
    },
    ranger::{
        self, ContentStatus, ContentStatusSource, Message, NoContent, ProcessError, Received,
        SyncConfig, SyncLimit,
    },
    store::{
        holds_same_or_newer, put_prefix_aware,
        query::{run_query, QueryCursor, QueryPage},
        Backend, DownloadPolicy, IndexStats, Indexed, PutOutcome, Query, StoreError,
    },
    time::{Mono, Now},
    wire::AuthorHeads,
};

/// How long writes may stay uncommitted, as in iroh-docs.
pub const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_millis(500);

/// The default [`ReplicaConfig::index_budget`]: 192 MiB (three quarters of a node's default
/// 256 MiB memory budget; the rest is the redb page cache).
pub const DEFAULT_INDEX_BUDGET: usize = 192 << 20;

/// How long after its last sync message a document counts as syncing, and its index is kept
/// through evictions. Longer than a session may stay silent (`LiveConfig`'s idle timeout,
/// 60 s), so a running session never finds its index evicted. `Live` ends a hold early with
/// [`StoreCommand::SyncEnded`] when the document's last session ends, so a node that syncs
/// many documents in turn stays within its index budget.
pub const SYNC_HOLD: Duration = Duration::from_secs(65);

/// Configuration of the executor.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// Limits for entries.
    pub limits: EntryLimits,
    /// Reconciliation policy.
    pub sync: SyncConfig,
    /// Longest time writes stay uncommitted.
    pub commit_interval: Duration,
    /// Stored rows scanned per query page.
    pub query_page_budget: usize,
    /// Entries checked per page of the missing-content scan. Each check asks the blob store,
    /// and a page holds up the store queue — and with it any running sync — while it runs,
    /// so pages are small.
    pub content_scan_page: usize,
    /// Memory budget of the fingerprint indexes, in bytes ([`Indexed::set_budget`]): over it,
    /// the least recently used indexes of documents not syncing (no sync message within
    /// [`SYNC_HOLD`]) are dropped and rebuilt on their next use. `usize::MAX`: no budget.
    pub index_budget: usize,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        Self {
            limits: EntryLimits::default(),
            sync: SyncConfig::default(),
            commit_interval: DEFAULT_COMMIT_INTERVAL,
            query_page_budget: 1024,
            content_scan_page: 16,
            index_budget: DEFAULT_INDEX_BUDGET,
        }
    }
}

/// Why a replica operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sync v2 command that does not fit the executor's v2 state (unknown connection or
    /// stream, a bound of [`V2Command`] hit, a malformed definition).
    #[error("sync v2: {0}")]
    V2(&'static str),
    /// No such document.
    #[error("document {0:?} not found")]
    NotFound(NamespaceId),
    /// The document is not open.
    #[error("document {0:?} is closed")]
    Closed(NamespaceId),
    /// The document is not open for sync.
    #[error("sync is not enabled for document {0:?}")]
    SyncDisabled(NamespaceId),
    /// A write to a document held with a read capability.
    #[error("document is read-only")]
    ReadOnly,
    /// The author's secret key is not in the store.
    #[error("author {0:?} not found")]
    AuthorNotFound(AuthorId),
    /// The entry failed validation.
    #[error("invalid entry: {0}")]
    Validation(#[from] ValidationFailure),
    /// The key or a prefix of it already holds an entry at least as new.
    #[error("a newer entry exists for this key or a prefix of it")]
    NewerEntryExists,
    /// A batch of local writes larger than [`MAX_LOCAL_BATCH`].
    #[error("a batch of {len} writes exceeds the limit of {max}")]
    BatchTooLarge {
        /// Writes in the batch.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A key that appears more than once in one batch of local writes.
    #[error("key {0:?} appears more than once in the batch")]
    DuplicateKey(bytes::Bytes),
    /// Capabilities of different namespaces.
    #[error(transparent)]
    Capability(#[from] CapabilityError),
    /// A peer's sync message exceeded a per-message bound of the [`SyncConfig`]; the session
    /// it came in must end.
    #[error("sync limit exceeded: {0}")]
    Limit(#[from] SyncLimit),
    /// The store executor stopped (its thread ended or failed): the command was not run, and
    /// no later one will be.
    #[error("the store executor stopped")]
    Stopped,
}

impl From<ProcessError> for ReplicaError {
    fn from(e: ProcessError) -> Self {
        match e {
            ProcessError::Store(e) => Self::Store(e),
            ProcessError::Limit(l) => Self::Limit(l),
        }
    }
}

/// Options for opening a document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenOpts {
    /// Accept sync and remote writes.
    pub sync: bool,
    /// Want the document's events (events are queued only for subscribed documents). Sets the
    /// flag; opening again without it leaves the flag as it is.
    pub subscribe: bool,
}

/// State of an open document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OpenState {
    /// Whether sync is enabled.
    pub sync: bool,
    /// Store subscriptions: 1 while the document's events are wanted, else 0. (A flag, kept
    /// as a count for iroh-docs' `OpenState` shape; `Live` counts the API's subscribers.)
    pub subscribers: usize,
    /// Number of open handles.
    pub handles: usize,
}

/// Result of importing a capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportNamespaceOutcome {
    /// The namespace is new.
    Inserted,
    /// A read capability was upgraded to write.
    Upgraded,
    /// Nothing changed.
    NoChange,
}

/// Counters of one sync session, threaded through its messages.
///
/// Only received entries that pass validation count (held ones, which are dropped before the
/// signature check because they could not change anything, count too): a peer's forged or
/// otherwise invalid entries are neither received nor reported. iroh-docs counts every value of
/// every message and takes the heads over all of them, so one hostile message of forged entries
/// makes it tell all its neighbours, in a `SyncReport`, of heads (authors, timestamps) that
/// nobody holds — and each neighbour that believes it dials a sync (see
/// `forged_values_are_not_received_nor_reported` in the replica tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncOutcome {
    /// Newest timestamp per author among the valid entries received.
    pub heads_received: AuthorHeads,
    /// Valid entries received (stored or not: older than ours, or already held).
    pub num_recv: usize,
    /// Entries sent.
    pub num_sent: usize,
}

/// An insert that happened in an open, subscribed document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaEvent {
    /// A local write.
    LocalInsert {
        /// Document.
        namespace: NamespaceId,
        /// The new entry.
        entry: SignedEntry,
    },
    /// An entry from a peer.
    RemoteInsert {
        /// Document.
        namespace: NamespaceId,
        /// The new entry.
        entry: SignedEntry,
        /// The peer it came from.
        from: PeerId,
        /// Whether the download policy wants its content (never for tombstones).
        should_download: bool,
        /// The sender's content status.
        remote_content_status: ContentStatus,
    },
}

#[derive(Debug, Clone)]
struct OpenReplica {
    capability: Capability,
    sync: bool,
    handles: usize,
    /// Whether events are wanted.
    subscribed: bool,
}

/// The store executor. See the module docs.
#[derive(Debug)]
pub struct Replicas<B, C = NoContent> {
    indexed: Indexed<B>,
    content: C,
    config: ReplicaConfig,
    open: BTreeMap<NamespaceId, OpenReplica>,
    events: VecDeque<ReplicaEvent>,
    dirty_since: Option<Mono>,
    /// Namespace and author keys of received entries, decompressed once.
    keys: KeyCache,
    /// Signatures checked ahead for the next sync message.
    checked: CheckedSignatures,
    /// Documents syncing, pinned in the index until the deadline ([`SYNC_HOLD`] after their
    /// last sync message). At most one per document in the store.
    sync_holds: BTreeMap<NamespaceId, Mono>,
    /// The author of the last local write, so that a run of writes by one author reads and
    /// decodes its secret once (decoding derives the public key: a scalar multiplication, as
    /// costly as one of the two signatures). Cleared whenever the author table may change
    /// under it: import, delete, raw backend access, a failed commit.
    last_author: Option<Author>,
    /// Sync v2 connections' dictionaries and document sessions.
    v2: v2::V2Conns,
}

impl<B: Backend> Replicas<B, NoContent> {
    /// An executor over `backend` that reports all content as missing.
    pub fn new(backend: B, config: ReplicaConfig) -> Self {
        Self::with_content(backend, NoContent, config)
    }
}

impl<B: Backend, C: ContentStatusSource> Replicas<B, C> {
    /// An executor over `backend` whose outgoing entries get their content status from
    /// `content`. The fingerprint index is built per document on first use.
    pub fn with_content(backend: B, content: C, config: ReplicaConfig) -> Self {
        Self {
            indexed: Indexed::with_budget(backend, config.index_budget),
            content,
            config,
            open: BTreeMap::new(),
            events: VecDeque::new(),
            dirty_since: None,
            keys: KeyCache::default(),
            checked: CheckedSignatures::default(),
            sync_holds: BTreeMap::new(),
            last_author: None,
            v2: v2::V2Conns::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ReplicaConfig {
        &self.config
    }

    /// The indexed backend (reads in tests and tools; writes through it keep the index in
    /// step but bypass validation, prefix semantics and events).
    pub fn indexed_mut(&mut self) -> &mut Indexed<B> {
        self.last_author = None;
        &mut self.indexed
    }

    /// Flushes and returns the backend (the index is dropped).
    pub fn into_backend(mut self) -> Result<B, StoreError> {
        self.indexed.flush()?;
        Ok(self.indexed.into_backend())
    }

    /// The next queued event.
    pub fn poll_event(&mut self) -> Option<ReplicaEvent> {
        self.events.pop_front()
    }

    /// When [`Replicas::handle_timeout`] has work: committing pending writes, or releasing a
    /// document that stopped syncing to the index's budget.
    pub fn poll_timeout(&self) -> Option<Mono> {
        let commit = self.dirty_since.map(|t| t + self.config.commit_interval);
        let hold = self.sync_holds.values().min().copied();
        match (commit, hold) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Commits pending writes if their deadline has passed, and releases the indexes of
    /// documents that stopped syncing. Spurious calls are harmless.
    pub fn handle_timeout(&mut self, now: Now) -> Result<(), StoreError> {
        self.release_holds(now.mono);
        match self.dirty_since.map(|t| t + self.config.commit_interval) {
            Some(due) if due <= now.mono => self.flush(),
            _ => Ok(()),
        }
    }

    /// Memory, evictions and rebuilds of the fingerprint index.
    pub fn index_stats(&self) -> IndexStats {
        self.indexed.stats()
    }

    /// Keeps the index of `ns` loaded until [`SYNC_HOLD`] after `now`.
    fn hold_for_sync(&mut self, now: Mono, ns: NamespaceId) {
        self.sync_holds.insert(ns, now + SYNC_HOLD);
        self.indexed.pin(ns);
    }

    /// Ends the hold of `ns` before its deadline: its last sync session ended.
    fn end_sync_hold(&mut self, ns: NamespaceId) {
        if self.sync_holds.remove(&ns).is_some() {
            self.indexed.unpin(ns);
        }
    }

    /// Unpins the documents whose hold ended by `now`.
    fn release_holds(&mut self, now: Mono) {
        let ended: Vec<NamespaceId> = self
            .sync_holds
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(ns, _)| *ns)
            .collect();
        for ns in ended {
            self.sync_holds.remove(&ns);
            self.indexed.unpin(ns);
        }
    }

    /// Commits all writes now.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.flush_with(false)
    }

    /// [`flush`](Self::flush), also committing the document summaries learnt by building
    /// indexes since the last commit ([`Indexed::flush_with`]): what [`StoreCommand::Flush`]
    /// and [`StoreCommand::Shutdown`] do, so that a node that only served reads opens its
    /// documents in O(1) after a restart.
    pub fn flush_all(&mut self) -> Result<(), StoreError> {
        self.flush_with(true)
    }

    fn flush_with(&mut self, learnt: bool) -> Result<(), StoreError> {
        if let Err(e) = self.indexed.flush_with(learnt) {
            // The uncommitted writes are gone, an imported author among them perhaps.
            self.last_author = None;
            return Err(e);
        }
        self.dirty_since = None;
        Ok(())
    }

    fn touch(&mut self, now: Now) {
        self.dirty_since.get_or_insert(now.mono);
    }

    fn open_replica(&self, ns: NamespaceId) -> Result<&OpenReplica, ReplicaError> {
        self.open.get(&ns).ok_or(ReplicaError::Closed(ns))
    }

    fn syncing(&self, ns: NamespaceId) -> Result<&OpenReplica, ReplicaError> {
        let r = self.open_replica(ns)?;
        if !r.sync {
            return Err(ReplicaError::SyncDisabled(ns));
        }
        Ok(r)
    }

    fn emit(&mut self, ns: NamespaceId, event: impl FnOnce() -> ReplicaEvent) {
        if self.open.get(&ns).is_some_and(|r| r.subscribed) {
            self.events.push_back(event());
        }
    }

    // ---- authors -----------------------------------------------------------------------

    /// Stores an author.
    pub fn import_author(&mut self, now: Now, author: Author) -> Result<(), ReplicaError> {
        self.touch(now);
        self.last_author = None;
        Ok(self.indexed.put_author(author)?)
    }

    /// An author's secret key.
    pub fn export_author(&mut self, id: AuthorId) -> Result<Option<Author>, ReplicaError> {
        Ok(self.indexed.get_author(id)?)
    }

    /// Deletes an author; whether it existed.
    pub fn delete_author(&mut self, now: Now, id: AuthorId) -> Result<bool, ReplicaError> {
        self.touch(now);
        self.last_author = None;
        Ok(self.indexed.delete_author(id)?)
    }

    /// All authors.
    pub fn list_authors(&mut self) -> Result<Vec<AuthorId>, ReplicaError> {
        Ok(self.indexed.list_authors()?)
    }

    // ---- namespaces --------------------------------------------------------------------

    /// Imports a capability: a new document, or a read capability upgraded to write.
    pub fn import_namespace(
        &mut self,
        now: Now,
        capability: Capability,
    ) -> Result<ImportNamespaceOutcome, ReplicaError> {
        let id = capability.id();
        let outcome = match self.indexed.get_namespace(id)? {
            None => {
                self.indexed.put_namespace(capability.clone())?;
                ImportNamespaceOutcome::Inserted
            }
            Some(mut existing) => {
                if existing.merge(capability)? {
                    self.indexed.put_namespace(existing.clone())?;
                    if let Some(open) = self.open.get_mut(&id) {
                        open.capability = existing;
                    }
                    ImportNamespaceOutcome::Upgraded
                } else {
                    ImportNamespaceOutcome::NoChange
                }
            }
        };
        if outcome != ImportNamespaceOutcome::NoChange {
            self.touch(now);
        }
        Ok(outcome)
    }

    /// All documents and their capability kinds.
    pub fn list_namespaces(&mut self) -> Result<Vec<(NamespaceId, CapabilityKind)>, ReplicaError> {
        Ok(self.indexed.list_namespaces()?)
    }

    /// Content hashes of all entries (for garbage-collection protection).
    pub fn content_hashes(&mut self) -> Result<Vec<Hash>, ReplicaError> {
        Ok(self.indexed.content_hashes()?)
    }

    /// Opens a document (one more handle).
    pub fn open(&mut self, ns: NamespaceId, opts: OpenOpts) -> Result<(), ReplicaError> {
        if let Some(open) = self.open.get_mut(&ns) {
            open.handles += 1;
            open.sync |= opts.sync;
            open.subscribed |= opts.subscribe;
            return Ok(());
        }
        let capability = self
            .indexed
            .get_namespace(ns)?
            .ok_or(ReplicaError::NotFound(ns))?;
        self.open.insert(
            ns,
            OpenReplica {
                capability,
                sync: opts.sync,
                handles: 1,
                subscribed: opts.subscribe,
            },
        );
        Ok(())
    }

    /// Releases a handle; returns whether the document is now closed.
    pub fn close(&mut self, ns: NamespaceId) -> Result<bool, ReplicaError> {
        let open = self.open.get_mut(&ns).ok_or(ReplicaError::Closed(ns))?;
        open.handles = open.handles.saturating_sub(1);
        if open.handles == 0 {
            self.open.remove(&ns);
            return Ok(true);
        }
        Ok(false)
    }

    /// State of an open document.
    pub fn state(&self, ns: NamespaceId) -> Result<OpenState, ReplicaError> {
        let r = self.open_replica(ns)?;
        Ok(OpenState {
            sync: r.sync,
            subscribers: usize::from(r.subscribed),
            handles: r.handles,
        })
    }

    /// Enables or disables sync.
    pub fn set_sync(&mut self, ns: NamespaceId, sync: bool) -> Result<(), ReplicaError> {
        self.open.get_mut(&ns).ok_or(ReplicaError::Closed(ns))?.sync = sync;
        Ok(())
    }

    /// Wants the document's events from now on. Idempotent: subscribing twice is
    /// subscribing once (`Live` counts its subscribers, the store keeps a flag).
    pub fn subscribe(&mut self, ns: NamespaceId) -> Result<(), ReplicaError> {
        self.open
            .get_mut(&ns)
            .ok_or(ReplicaError::Closed(ns))?
            .subscribed = true;
        Ok(())
    }

    /// Wants no more events for the document. Idempotent.
    pub fn unsubscribe(&mut self, ns: NamespaceId) -> Result<(), ReplicaError> {
        self.open
            .get_mut(&ns)
            .ok_or(ReplicaError::Closed(ns))?
            .subscribed = false;
        Ok(())
    }

    /// Deletes a document and all its data (it is closed first).
    pub fn drop_replica(&mut self, now: Now, ns: NamespaceId) -> Result<(), ReplicaError> {
        self.open.remove(&ns);
        self.sync_holds.remove(&ns);
        self.touch(now);
        Ok(self.indexed.remove_namespace(ns)?)
    }

    /// The namespace secret of a writable document.
    pub fn export_secret_key(&mut self, ns: NamespaceId) -> Result<NamespaceSecret, ReplicaError> {
        let cap = match self.open.get(&ns) {
            Some(r) => r.capability.clone(),
            None => self
                .indexed
                .get_namespace(ns)?
                .ok_or(ReplicaError::NotFound(ns))?,
        };
        cap.secret().cloned().ok_or(ReplicaError::ReadOnly)
    }

    fn should_download(
        &mut self,
        ns: NamespaceId,
        entry: &SignedEntry,
    ) -> Result<bool, StoreError> {
        if entry.is_empty() {
            return Ok(false);
        }
        Ok(self
            .indexed
            .get_download_policy(ns)?
            .unwrap_or_default()
            .matches(entry.key()))
    }

    /// Inserts an entry received from `from` outside reconciliation (gossip).
    pub fn insert_remote(
        &mut self,
        now: Now,
        ns: NamespaceId,
        entry: SignedEntry,
        from: PeerId,
        remote_content_status: ContentStatus,
    ) -> Result<usize, ReplicaError> {
        self.syncing(ns)?;
        let none_checked = CheckedSignatures::default();
        self.config
            .limits
            .check_remote_with(&entry, ns, now, &mut self.keys, &none_checked)?;
        match put_prefix_aware(&mut self.indexed, entry.clone())? {
            PutOutcome::NotInserted => Err(ReplicaError::NewerEntryExists),
            PutOutcome::Inserted { removed } => {
                self.touch(now);
                let should_download = self.should_download(ns, &entry)?;
                self.emit(ns, || ReplicaEvent::RemoteInsert {
                    namespace: ns,
                    entry,
                    from,
                    should_download,
                    remote_content_status,
                });
                Ok(removed)
            }
        }
    }

    // ---- sync --------------------------------------------------------------------------

    /// The entries of an incoming sync `message` for `ns` whose signatures processing it
    /// would check: those not already held in the same or a newer version. A runtime may
    /// check them on other threads ([`CheckedSignatures::check`]) and pass the result to
    /// [`Replicas::add_checked_signatures`] before the message is processed.
    pub fn unchecked_entries<'a>(
        &mut self,
        ns: NamespaceId,
        message: &'a Message,
    ) -> Result<Vec<&'a SignedEntry>, ReplicaError> {
        let mut out = Vec::new();
        for (entry, _) in message.values() {
            if entry.namespace() != ns {
                continue;
            }
            if !holds_same_or_newer(&mut self.indexed, ns, entry)? {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// Signatures checked ahead for the next sync message processed (see
    /// [`CheckedSignatures`]); they are dropped once that message has been processed.
    pub fn add_checked_signatures(&mut self, checked: CheckedSignatures) {
        self.checked.extend(checked);
    }

    /// The first reconciliation message for a sync of `ns`.
    pub fn sync_initial_message(&mut self, ns: NamespaceId) -> Result<Message, ReplicaError> {
        self.syncing(ns)?;
        Ok(ranger::initial_message(&mut self.indexed, ns)?)
    }

    /// Processes a reconciliation message from `from`, updating `outcome`; returns the reply.
    pub fn sync_process_message(
        &mut self,
        now: Now,
        ns: NamespaceId,
        message: Message,
        from: PeerId,
        outcome: &mut SyncOutcome,
    ) -> Result<Option<Message>, ReplicaError> {
        self.sync_process_message_with(now, ns, message, from, outcome, &mut NoChecksAhead)
    }

    /// [`sync_process_message`](Self::sync_process_message), taking signatures checked ahead
    /// from `ahead` as the entries come up.
    pub fn sync_process_message_with(
        &mut self,
        now: Now,
        ns: NamespaceId,
        message: Message,
        from: PeerId,
        outcome: &mut SyncOutcome,
        ahead: &mut dyn CheckedStream,
    ) -> Result<Option<Message>, ReplicaError> {
        self.syncing(ns)?;
        let limits = self.config.limits;
        let sync = self.config.sync;
        let policy = self.indexed.get_download_policy(ns)?.unwrap_or_default();
        let subscribed = self.open.get(&ns).is_some_and(|r| r.subscribed);
        let mut inserted = false;
        let events = &mut self.events;
        let keys = &mut self.keys;
        let mut checked = std::mem::take(&mut self.checked);
        let reply = ranger::process_message(
            &mut self.indexed,
            ns,
            &sync,
            message,
            |e| {
                if !checked.contains(e) {
                    if let Some(more) = ahead.wait_for(e) {
                        checked.extend(more);
                    }
                }
                limits.check_remote_with(e, ns, now, keys, &checked).is_ok()
            },
            |e, status, received| {
                // Invalid values are neither received nor part of the heads we report.
                if let Received::Invalid = received {
                    return;
                }
                outcome.num_recv += 1;
                outcome.heads_received.insert(e.author(), e.timestamp());
                if let Received::Inserted { .. } = received {
                    inserted = true;
                    if subscribed {
                        events.push_back(ReplicaEvent::RemoteInsert {
                            namespace: ns,
                            entry: e.clone(),
                            from,
                            should_download: !e.is_empty() && policy.matches(e.key()),
                            remote_content_status: status,
                        });
                    }
                }
            },
            &mut self.content,
        )?;
        if inserted {
            self.touch(now);
        }
        if let Some(reply) = &reply {
            outcome.num_sent += reply.value_count();
        }
        Ok(reply)
    }

    /// Whether `heads` of a peer hold anything newer than ours.
    pub fn has_news_for_us(
        &mut self,
        ns: NamespaceId,
        heads: &AuthorHeads,
    ) -> Result<Option<NonZeroU64>, ReplicaError> {
        let ours = self.indexed.author_heads(ns)?;
        Ok(heads.has_news_for(&ours))
    }

    /// Remembers `peer` as useful for `ns`.
    pub fn register_useful_peer(
        &mut self,
        now: Now,
        ns: NamespaceId,
        peer: PeerId,
    ) -> Result<(), ReplicaError> {
        self.touch(now);
        Ok(self.indexed.register_useful_peer(ns, peer)?)
    }

    /// Up to five useful peers, newest first; `None` if there are none.
    pub fn sync_peers(&mut self, ns: NamespaceId) -> Result<Option<Vec<PeerId>>, ReplicaError> {
        let peers = self.indexed.sync_peers(ns)?;
        Ok((!peers.is_empty()).then_some(peers))
    }

    // ---- reads -------------------------------------------------------------------------

    /// The entry of `author` at `key`; tombstones only with `include_empty`. The document
    /// must be open.
    pub fn get_exact(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
        include_empty: bool,
    ) -> Result<Option<SignedEntry>, ReplicaError> {
        self.open_replica(ns)?;
        Ok(self
            .indexed
            .get(ns, author, key)?
            .filter(|e| include_empty || !e.is_empty()))
    }

    /// One bounded page of a query. The document must be open.
    pub fn get_many(
        &mut self,
        ns: NamespaceId,
        query: &Query,
        cursor: Option<QueryCursor>,
    ) -> Result<QueryPage, ReplicaError> {
        self.open_replica(ns)?;
        let budget = self.config.query_page_budget;
        Ok(run_query(&mut self.indexed, ns, query, cursor, budget)?)
    }

    /// One bounded page of the content this document's download policy wants but the blob
    /// store lacks (so a restarted node can fetch what it was missing before).
    pub fn missing_content(
        &mut self,
        ns: NamespaceId,
        cursor: Option<QueryCursor>,
    ) -> Result<(Vec<Hash>, Option<QueryCursor>), ReplicaError> {
        let policy = self.indexed.get_download_policy(ns)?.unwrap_or_default();
        let budget = self.config.content_scan_page;
        let page = run_query(&mut self.indexed, ns, &Query::all(), cursor, budget)?;
        let mut hashes: Vec<Hash> = page
            .entries
            .iter()
            .filter(|e| policy.matches(e.key()))
            .map(|e| e.content_hash())
            .collect();
        hashes.sort();
        hashes.dedup();
        let statuses = self.content.content_statuses(&hashes);
        let mut statuses = statuses.into_iter();
        hashes.retain(|_| statuses.next() != Some(ContentStatus::Complete));
        Ok((hashes, page.next))
    }

    /// Sets the download policy of an existing document.
    pub fn set_download_policy(
        &mut self,
        now: Now,
        ns: NamespaceId,
        policy: DownloadPolicy,
    ) -> Result<(), ReplicaError> {
        if self.indexed.get_namespace(ns)?.is_none() {
            return Err(ReplicaError::NotFound(ns));
        }
        self.touch(now);
        Ok(self.indexed.set_download_policy(ns, &policy)?)
    }

    /// The download policy (the default, download everything, if none was set).
    pub fn get_download_policy(&mut self, ns: NamespaceId) -> Result<DownloadPolicy, ReplicaError> {
        Ok(self.indexed.get_download_policy(ns)?.unwrap_or_default())
    }
}
