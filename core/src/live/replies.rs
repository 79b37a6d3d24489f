//! Store continuations and replica events: what `Live` does with each store reply and with
//! the executor's insert notifications.
//!
//! Every store command `Live` emits is remembered with a [`Cont`] saying what to do with its
//! reply; the executor answers in emission order. A reply of the wrong kind for its
//! continuation is an error, never ignored silently.

use super::{error::*, types::*};
use super::{Cont, Live};
use crate::{
    ranger::ContentStatus,
    replica::{ReplicaEvent, StoreCommand, StoreResponse},
    wire::{Encode, NodeAddr, Op},
};

impl Live {
    pub(super) fn on_store_reply(
        &mut self,
        request: StoreRequestId,
        result: Result<StoreResponse, crate::replica::ReplicaError>,
    ) {
        #[cfg(any(test, feature = "fuzzing", feature = "invariants"))]
        if let Some(&oldest) = self.pending.keys().next() {
            if self.pending.contains_key(&request) && request != oldest {
                self.reply_order_violation
                    .get_or_insert((oldest.0, request.0));
            }
        }
        let Some(cont) = self.pending.remove(&request) else {
            return;
        };
        // A reply of another kind than the command asks for is a store failure.
        let result = match result {
            Err(e) => Err(StoreFailure::from(e)),
            Ok(r) => match cont.check(&r) {
                Ok(()) => Ok(r),
                Err(expected) => Err(StoreFailure::UnexpectedReply { expected }),
            },
        };
        // A peer over a sync bound is the peer's failure, not the store's.
        if result
            .as_ref()
            .is_err_and(|e| !matches!(e, StoreFailure::Limit(_)))
        {
            self.stats.store_errors += 1;
        }
        match cont {
            Cont::Ignore => {}
            Cont::GossipPut { from, direct } => {
                self.gossip_answered(from);
                if let Err(e) = &result {
                    self.gossip_put_refused(from, direct, e);
                }
            }
            Cont::StartSyncOpened { api, ns, peers } => match result {
                Ok(_) => {
                    self.update_store_subscription(ns);
                    // Content missing before a restart is not in memory any more: find it
                    // (once per document, see `scan`).
                    if let Some(cursor) = self.scans.start(ns, self.downloads.dropped) {
                        self.read_scan_page(ns, cursor);
                    }
                    // Anti-entropy begins within one interval (not if the document was left
                    // while it opened).
                    self.arm_first_anti_entropy(ns);
                    self.store(
                        StoreCommand::GetSyncPeers(ns),
                        Cont::StartSyncPeers { api, ns, peers },
                    );
                }
                Err(e) => {
                    self.remove_namespace_state(ns);
                    self.reply(api, Err(LiveError::Store(e)));
                }
            },
            Cont::StartSyncPeers { api, ns, mut peers } => {
                if let Ok(StoreResponse::Peers(Some(useful))) = result {
                    peers.extend(useful.into_iter().map(NodeAddr::new));
                }
                if self.states.is_syncing(&ns) {
                    self.join_peers(ns, peers);
                }
                self.reply(api, Ok(()));
            }
            Cont::Subscribed { api, ns } => {
                if result.is_err() {
                    self.store_subscribed.remove(&ns);
                    if api.is_some() {
                        if let Some(n) = self.subscribers.get_mut(&ns) {
                            *n = n.saturating_sub(1);
                            if *n == 0 {
                                self.subscribers.remove(&ns);
                            }
                        }
                    }
                }
                if let Some(api) = api {
                    self.reply(api, result.map(|_| ()).map_err(LiveError::Store));
                }
            }
            Cont::Initial(id) => match result {
                Ok(StoreResponse::Message(message)) => self.send_init(id, message),
                other => self.fail_session(id, store_error(other, "Message")),
            },
            Cont::Process(id) => match result {
                Ok(StoreResponse::Synced { reply, outcome }) => {
                    self.on_processed(id, reply, outcome)
                }
                other => self.fail_session(id, store_error(other, "Synced")),
            },
            Cont::News { ns, from } => {
                self.gossip_answered(from);
                if let Ok(StoreResponse::News(Some(_))) = result {
                    self.sync_with_peer(ns, from, SyncReason::SyncReport);
                }
            }
            Cont::MissingContent { ns, cursor } => match result {
                Ok(StoreResponse::MissingContent { hashes, next }) => {
                    for hash in hashes {
                        self.downloads.mark_missing(ns, hash);
                    }
                    let syncing = self.states.is_syncing(&ns);
                    let hold = !self.sessions.is_empty();
                    let dropped = self.downloads.dropped;
                    if let Some(cursor) = self.scans.page(ns, next, syncing, hold, dropped) {
                        self.read_scan_page(ns, Some(cursor));
                    }
                }
                _ => self.scans.failed(ns, cursor, self.downloads.dropped),
            },
            Cont::Shutdown(api) => {
                self.push(Output::Reply {
                    request: api,
                    result: result.map(|_| ()).map_err(LiveError::Store),
                });
            }
        }
    }

    pub(super) fn on_replica_event(&mut self, event: ReplicaEvent) {
        match event {
            ReplicaEvent::LocalInsert { namespace, entry } => {
                if self.states.is_syncing(&namespace) {
                    let payload = Op::Put(entry.clone()).to_wire();
                    self.push(Output::GossipBroadcast {
                        namespace,
                        scope: BroadcastScope::Swarm,
                        payload,
                    });
                }
                self.emit(namespace, LiveEvent::InsertLocal { entry });
            }
            ReplicaEvent::RemoteInsert {
                namespace,
                entry,
                from,
                should_download,
                remote_content_status,
            } => {
                if should_download {
                    let hash = entry.content_hash();
                    if remote_content_status == ContentStatus::Complete {
                        self.offer_content(namespace, hash, from, false);
                    } else {
                        self.downloads.mark_missing(namespace, hash);
                    }
                }
                self.emit(
                    namespace,
                    LiveEvent::InsertRemote {
                        from,
                        entry,
                        content_status: remote_content_status,
                    },
                );
            }
        }
    }
}

impl Cont {
    /// Whether `reply` is of the kind this continuation's command answers with; if not, the
    /// kind expected.
    fn check(&self, reply: &StoreResponse) -> Result<(), &'static str> {
        let (ok, expected) = match self {
            Cont::Ignore | Cont::GossipPut { .. } => (true, "any"),
            Cont::StartSyncOpened { .. } | Cont::Subscribed { .. } | Cont::Shutdown(_) => {
                (matches!(reply, StoreResponse::Done), "Done")
            }
            Cont::StartSyncPeers { .. } => (matches!(reply, StoreResponse::Peers(_)), "Peers"),
            Cont::Initial(_) => (matches!(reply, StoreResponse::Message(_)), "Message"),
            Cont::Process(_) => (matches!(reply, StoreResponse::Synced { .. }), "Synced"),
            Cont::News { .. } => (matches!(reply, StoreResponse::News(_)), "News"),
            Cont::MissingContent { .. } => (
                matches!(reply, StoreResponse::MissingContent { .. }),
                "MissingContent",
            ),
        };
        if ok {
            Ok(())
        } else {
            Err(expected)
        }
    }
}

/// The session error for a failed (or, defensively, mismatched) store reply: a peer's
/// message over a sync bound is [`SessionError::Limit`], anything else a store failure.
fn store_error(
    result: Result<StoreResponse, StoreFailure>,
    expected: &'static str,
) -> SessionError {
    match result.err() {
        Some(StoreFailure::Limit(limit)) => SessionError::Limit(SessionLimit::Message(limit)),
        Some(failure) => SessionError::Store(failure),
        None => SessionError::Store(StoreFailure::UnexpectedReply { expected }),
    }
}
