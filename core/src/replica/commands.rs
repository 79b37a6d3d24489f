//! The executor's command set: one variant per operation of iroh-docs' sync actor, so a
//! runtime can send them over a channel and the simulator can record them.

use std::num::NonZeroU64;

use bytes::Bytes;

use super::{ImportNamespaceOutcome, OpenOpts, OpenState, ReplicaError, Replicas, SyncOutcome};
use crate::{
    entry::{CheckedStream, NoChecksAhead, SignedEntry},
    hash::{Hash, PeerId},
    keys::{Author, AuthorId, Capability, CapabilityKind, NamespaceId, NamespaceSecret},
    ranger::{ContentStatus, ContentStatusSource, Message},
    store::{Backend, DownloadPolicy, Query, QueryCursor, QueryPage},
    time::Now,
    wire::AuthorHeads,
};

/// An operation for [`Replicas::apply`].
#[derive(Debug, Clone)]
pub enum StoreCommand {
    /// Store an author.
    ImportAuthor(Author),
    /// Read an author's secret key.
    ExportAuthor(AuthorId),
    /// Delete an author.
    DeleteAuthor(AuthorId),
    /// List authors.
    ListAuthors,
    /// Import (or upgrade) a capability.
    ImportNamespace(Capability),
    /// List documents.
    ListNamespaces,
    /// All content hashes.
    ContentHashes,
    /// Commit now.
    Flush,
    /// Open a document.
    Open {
        /// Document.
        namespace: NamespaceId,
        /// Options.
        opts: OpenOpts,
    },
    /// Release a handle.
    Close(NamespaceId),
    /// State of an open document.
    GetState(NamespaceId),
    /// Enable or disable sync.
    SetSync {
        /// Document.
        namespace: NamespaceId,
        /// Enabled.
        sync: bool,
    },
    /// Want the document's events (a flag: idempotent).
    Subscribe(NamespaceId),
    /// Want no more events for the document (idempotent).
    Unsubscribe(NamespaceId),
    /// Local write.
    InsertLocal {
        /// Document.
        namespace: NamespaceId,
        /// Author.
        author: AuthorId,
        /// Key.
        key: Bytes,
        /// Content hash.
        hash: Hash,
        /// Content length.
        len: u64,
    },
    /// A batch of local writes by one author (see [`Replicas::insert_local_many`]).
    InsertLocalMany {
        /// Document.
        namespace: NamespaceId,
        /// Author.
        author: AuthorId,
        /// The writes, at most [`MAX_LOCAL_BATCH`](super::MAX_LOCAL_BATCH).
        writes: Vec<super::LocalWrite>,
    },
    /// Prefix delete.
    DeletePrefix {
        /// Document.
        namespace: NamespaceId,
        /// Author.
        author: AuthorId,
        /// Prefix.
        prefix: Bytes,
    },
    /// Entry from a peer outside reconciliation.
    InsertRemote {
        /// Document.
        namespace: NamespaceId,
        /// Entry.
        entry: SignedEntry,
        /// Sender.
        from: PeerId,
        /// Sender's content status.
        content_status: ContentStatus,
    },
    /// First message of a sync.
    SyncInitialMessage(NamespaceId),
    /// The last running sync session of the document ended: its index is no longer held
    /// for [`SYNC_HOLD`](super::SYNC_HOLD) and may be evicted (idempotent).
    SyncEnded(NamespaceId),
    /// Process a reconciliation message.
    SyncProcessMessage {
        /// Document.
        namespace: NamespaceId,
        /// The message.
        message: Message,
        /// Sender.
        from: PeerId,
        /// Session counters so far.
        outcome: SyncOutcome,
    },
    /// A sync v2 operation.
    V2(super::V2Command),
    /// Useful peers.
    GetSyncPeers(NamespaceId),
    /// Remember a useful peer.
    RegisterUsefulPeer {
        /// Document.
        namespace: NamespaceId,
        /// Peer.
        peer: PeerId,
    },
    /// One entry.
    GetExact {
        /// Document.
        namespace: NamespaceId,
        /// Author.
        author: AuthorId,
        /// Key.
        key: Bytes,
        /// Return tombstones too.
        include_empty: bool,
    },
    /// One page of a query.
    GetMany {
        /// Document.
        namespace: NamespaceId,
        /// Query.
        query: Query,
        /// Where to continue.
        cursor: Option<QueryCursor>,
    },
    /// Delete a document.
    DropReplica(NamespaceId),
    /// Namespace secret.
    ExportSecretKey(NamespaceId),
    /// Whether a peer's heads hold news for us.
    HasNewsForUs {
        /// Document.
        namespace: NamespaceId,
        /// Their heads.
        heads: AuthorHeads,
    },
    /// Set the download policy.
    SetDownloadPolicy {
        /// Document.
        namespace: NamespaceId,
        /// Policy.
        policy: DownloadPolicy,
    },
    /// Get the download policy.
    GetDownloadPolicy(NamespaceId),
    /// One page of the content hashes of a document that its download policy wants but the
    /// blob store does not hold completely.
    MissingContent {
        /// Document.
        namespace: NamespaceId,
        /// Where to continue.
        cursor: Option<QueryCursor>,
    },
    /// Commit and stop accepting work (the caller then drops the executor).
    Shutdown,
}

/// The answer to a [`StoreCommand`].
#[derive(Debug, Clone)]
pub enum StoreResponse {
    /// Done, nothing to return.
    Done,
    /// A yes/no answer (author deleted, document closed).
    Bool(bool),
    /// An author.
    Author(Option<Author>),
    /// Author ids.
    Authors(Vec<AuthorId>),
    /// Capability import result.
    Imported(ImportNamespaceOutcome),
    /// Documents.
    Namespaces(Vec<(NamespaceId, CapabilityKind)>),
    /// Content hashes.
    Hashes(Vec<Hash>),
    /// Document state.
    State(OpenState),
    /// The new entry of a local write.
    Inserted(SignedEntry),
    /// Per write of a batch: the new entry, or `None` where a newer entry kept it out.
    InsertedMany(Vec<Option<SignedEntry>>),
    /// Entries removed.
    Removed(usize),
    /// A reconciliation message.
    Message(Message),
    /// Reply to a reconciliation message and the updated counters.
    Synced {
        /// Our reply, if any.
        reply: Option<Message>,
        /// Counters.
        outcome: SyncOutcome,
    },
    /// The answer to a sync v2 operation.
    V2(super::V2Response),
    /// Useful peers.
    Peers(Option<Vec<PeerId>>),
    /// One entry.
    Entry(Option<SignedEntry>),
    /// A query page.
    Page(QueryPage),
    /// A namespace secret.
    Secret(NamespaceSecret),
    /// News count.
    News(Option<NonZeroU64>),
    /// Download policy.
    Policy(DownloadPolicy),
    /// Missing content, and where to continue.
    MissingContent {
        /// Hashes wanted but not held.
        hashes: Vec<Hash>,
        /// Where the next page starts; `None` at the end.
        next: Option<QueryCursor>,
    },
}

impl<B: Backend, C: ContentStatusSource> Replicas<B, C> {
    /// Runs one command.
    pub fn apply(&mut self, now: Now, cmd: StoreCommand) -> Result<StoreResponse, ReplicaError> {
        self.apply_with_checks(now, cmd, &mut NoChecksAhead)
    }

    /// Runs one command; a [`StoreCommand::SyncProcessMessage`] or a v2 entries message
    /// ([`StoreCommand::V2`]) takes the signatures of its entries from `ahead` where it has them (see [`CheckedStream`]). Same results as
    /// [`apply`](Self::apply).
    pub fn apply_with_checks(
        &mut self,
        now: Now,
        cmd: StoreCommand,
        ahead: &mut dyn CheckedStream,
    ) -> Result<StoreResponse, ReplicaError> {
        use StoreCommand as C;
        use StoreResponse as R;
        if let C::SyncInitialMessage(ns) | C::SyncProcessMessage { namespace: ns, .. } = &cmd {
            self.hold_for_sync(now.mono, *ns);
        }
        Ok(match cmd {
            C::ImportAuthor(a) => self.import_author(now, a).map(|_| R::Done)?,
            C::ExportAuthor(id) => R::Author(self.export_author(id)?),
            C::DeleteAuthor(id) => R::Bool(self.delete_author(now, id)?),
            C::ListAuthors => R::Authors(self.list_authors()?),
            C::ImportNamespace(cap) => R::Imported(self.import_namespace(now, cap)?),
            C::ListNamespaces => R::Namespaces(self.list_namespaces()?),
            C::ContentHashes => R::Hashes(self.content_hashes()?),
            C::Flush | C::Shutdown => self.flush_all().map(|_| R::Done)?,
            C::Open { namespace, opts } => self.open(namespace, opts).map(|_| R::Done)?,
            C::Close(ns) => R::Bool(self.close(ns)?),
            C::GetState(ns) => R::State(self.state(ns)?),
            C::SetSync { namespace, sync } => self.set_sync(namespace, sync).map(|_| R::Done)?,
            C::Subscribe(ns) => self.subscribe(ns).map(|_| R::Done)?,
            C::Unsubscribe(ns) => self.unsubscribe(ns).map(|_| R::Done)?,
            C::InsertLocal {
                namespace,
                author,
                key,
                hash,
                len,
            } => R::Inserted(self.insert_local(now, namespace, author, &key, hash, len)?),
            C::InsertLocalMany {
                namespace,
                author,
                writes,
            } => R::InsertedMany(self.insert_local_many(now, namespace, author, &writes)?),
            C::DeletePrefix {
                namespace,
                author,
                prefix,
            } => R::Removed(self.delete_prefix(now, namespace, author, &prefix)?),
            C::InsertRemote {
                namespace,
                entry,
                from,
                content_status,
            } => R::Removed(self.insert_remote(now, namespace, entry, from, content_status)?),
            C::SyncInitialMessage(ns) => R::Message(self.sync_initial_message(ns)?),
            C::SyncEnded(ns) => {
                self.end_sync_hold(ns);
                R::Done
            }
            C::SyncProcessMessage {
                namespace,
                message,
                from,
                mut outcome,
            } => {
                let reply = self.sync_process_message_with(
                    now,
                    namespace,
                    message,
                    from,
                    &mut outcome,
                    ahead,
                )?;
                R::Synced { reply, outcome }
            }
            C::V2(cmd) => R::V2(self.apply_v2_with(now, cmd, ahead)?),
            C::GetSyncPeers(ns) => R::Peers(self.sync_peers(ns)?),
            C::RegisterUsefulPeer { namespace, peer } => self
                .register_useful_peer(now, namespace, peer)
                .map(|_| R::Done)?,
            C::GetExact {
                namespace,
                author,
                key,
                include_empty,
            } => R::Entry(self.get_exact(namespace, author, &key, include_empty)?),
            C::GetMany {
                namespace,
                query,
                cursor,
            } => R::Page(self.get_many(namespace, &query, cursor)?),
            C::DropReplica(ns) => self.drop_replica(now, ns).map(|_| R::Done)?,
            C::ExportSecretKey(ns) => R::Secret(self.export_secret_key(ns)?),
            C::HasNewsForUs { namespace, heads } => {
                R::News(self.has_news_for_us(namespace, &heads)?)
            }
            C::SetDownloadPolicy { namespace, policy } => self
                .set_download_policy(now, namespace, policy)
                .map(|_| R::Done)?,
            C::GetDownloadPolicy(ns) => R::Policy(self.get_download_policy(ns)?),
            C::MissingContent { namespace, cursor } => {
                let (hashes, next) = self.missing_content(namespace, cursor)?;
                R::MissingContent { hashes, next }
            }
        })
    }
}
