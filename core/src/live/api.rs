//! API commands: joining and leaving documents, subscriptions, shutdown.
//!
//! `StartSync` opens the document for sync, then asks the store for the peers that were
//! useful before, then joins the gossip swarm and dials every peer it knows; the middle
//! steps are store continuations (see `replies`). `Leave` undoes all of it: the document
//! leaves the sync set, its timers stop, its store subscription and gossip topic close.

use super::{error::*, types::*};
use super::{timer::Timer, Cont, Live};
use crate::{
    keys::NamespaceId,
    replica::{OpenOpts, StoreCommand},
    wire::NodeAddr,
};

impl Live {
    pub(super) fn on_api(&mut self, api: ApiRequestId, command: ApiCommand) {
        if self.shutting_down {
            return self.reply(api, Err(LiveError::ShuttingDown));
        }
        match command {
            ApiCommand::StartSync { namespace, peers } => {
                if peers.len() > self.config.max_start_sync_peers {
                    return self.reply(api, Err(LiveError::Limit("too many peers")));
                }
                if self.states.is_syncing(&namespace) {
                    // A scan that lost missing hashes to the tracker's bound runs again.
                    if let Some(cursor) = self.scans.start(namespace, self.downloads.dropped) {
                        self.read_scan_page(namespace, cursor);
                    }
                    self.store(
                        StoreCommand::GetSyncPeers(namespace),
                        Cont::StartSyncPeers {
                            api,
                            ns: namespace,
                            peers,
                        },
                    );
                } else {
                    self.states.insert(namespace);
                    let opts = OpenOpts {
                        sync: true,
                        subscribe: false,
                    };
                    self.store(
                        StoreCommand::Open { namespace, opts },
                        Cont::StartSyncOpened {
                            api,
                            ns: namespace,
                            peers,
                        },
                    );
                }
            }
            ApiCommand::Leave {
                namespace,
                kill_subscribers,
            } => {
                if self.remove_namespace_state(namespace) {
                    self.store(
                        StoreCommand::SetSync {
                            namespace,
                            sync: false,
                        },
                        Cont::Ignore,
                    );
                    if kill_subscribers {
                        self.subscribers.remove(&namespace);
                    }
                    self.update_store_subscription(namespace);
                    self.store(StoreCommand::Close(namespace), Cont::Ignore);
                    self.push(Output::GossipLeave { namespace });
                }
                if kill_subscribers {
                    self.subscribers.remove(&namespace);
                    self.update_store_subscription(namespace);
                    self.push(Output::CloseSubscribers { namespace });
                }
                self.reply(api, Ok(()));
            }
            ApiCommand::Subscribe { namespace } => {
                *self.subscribers.entry(namespace).or_default() += 1;
                if self.store_subscribed.insert(namespace) {
                    self.store(
                        StoreCommand::Subscribe(namespace),
                        Cont::Subscribed {
                            api: Some(api),
                            ns: namespace,
                        },
                    );
                } else {
                    self.reply(api, Ok(()));
                }
            }
            ApiCommand::Unsubscribe { namespace } => {
                if let Some(n) = self.subscribers.get_mut(&namespace) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.subscribers.remove(&namespace);
                    }
                }
                self.update_store_subscription(namespace);
                self.reply(api, Ok(()));
            }
            ApiCommand::Shutdown => {
                self.shutting_down = true;
                self.admission.clear_waiting();
                self.v2.forming.clear();
                let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
                for id in ids {
                    self.remove_session(id);
                    self.push(Output::SyncClose {
                        session: id,
                        reason: SessionError::Shutdown,
                    });
                }
                self.timers.clear();
                self.store(StoreCommand::Flush, Cont::Shutdown(api));
            }
        }
    }

    /// Takes `ns` out of the sync set: its peer states go, so do their timers and the
    /// document's anti-entropy, and sessions of the document still running hold no peer
    /// state any more (a re-join starts from fresh states that they must not end).
    pub(super) fn remove_namespace_state(&mut self, ns: NamespaceId) -> bool {
        if !self.states.remove(&ns) {
            return false;
        }
        self.admission.forget_document(&ns);
        self.v2.forget_document(&ns);
        for s in self.sessions.values_mut() {
            if s.namespace == Some(ns) {
                s.holds_peer_state = false;
            }
            if let Some(docs) = &mut s.v2 {
                docs.retain(|(n, _)| *n != ns);
            }
        }
        self.timers.retain(|t| match t {
            Timer::AntiEntropy(n) | Timer::Retry(n, _) | Timer::GossipRejoin(n) => *n != ns,
            Timer::SessionIdle(_) | Timer::DownloadRetry(_) => true,
        });
        true
    }

    /// Holds a store subscription exactly while the document is synced or has subscribers.
    pub(super) fn update_store_subscription(&mut self, ns: NamespaceId) {
        let wanted = self.states.is_syncing(&ns) || self.subscribers.contains_key(&ns);
        let held = self.store_subscribed.contains(&ns);
        if wanted && !held {
            self.store_subscribed.insert(ns);
            self.store(
                StoreCommand::Subscribe(ns),
                Cont::Subscribed { api: None, ns },
            );
        } else if !wanted && held {
            self.store_subscribed.remove(&ns);
            self.store(StoreCommand::Unsubscribe(ns), Cont::Ignore);
        }
    }

    pub(super) fn join_peers(&mut self, ns: NamespaceId, peers: Vec<NodeAddr>) {
        let mut ids = Vec::new();
        for peer in peers {
            if peer.id == self.me || ids.contains(&peer.id) {
                continue;
            }
            ids.push(peer.id);
            if !peer.addrs.is_empty() {
                self.push(Output::AddAddr(peer));
            }
        }
        self.push(Output::GossipJoin {
            namespace: ns,
            peers: ids.clone(),
        });
        for id in ids {
            self.sync_with_peer(ns, id, SyncReason::DirectJoin);
        }
    }
}
