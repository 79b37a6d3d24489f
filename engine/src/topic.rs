//! A live document's gossip topic: one task that joins the topic, forwards its events to
//! `Live` and hands `Live`'s broadcasts to iroh-gossip.
//!
//! An idle live document should cost little beyond iroh-gossip's own topic state, so a topic
//! is one task (its events and its sends run side by side in it) and an outbox that holds
//! memory only while commands wait in it; the handle the live task keeps is an `Arc` and a
//! stop signal.
//!
//! Sending has its own order and bound: iroh-gossip's actor can stall for as long as one
//! neighbour does not read (its per-peer send queue is awaited; upstream iroh-gossip issue
//! #47), and then every `broadcast` call waits. A task per broadcast would pile up without
//! bound; the topic's task sends one command at a time, at most [`TOPIC_OUTBOX`] wait, and
//! what does not fit is dropped and repaired by syncs (`Live` hears `Lagged`).

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use futures_lite::StreamExt;
use iroh_gossip::{api::GossipSender, net::Gossip, proto::TopicId};
use sheaf_core::{
    keys::NamespaceId,
    live::{BroadcastScope, GossipEvent, Input},
};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::{convert::peer_id, live_task::LiveMsg, runtime::Runtime};

/// Gossip commands (broadcasts, peers to join) queued per topic: while the topic is being
/// joined, and while iroh-gossip is slow to take them. A full queue drops the command and
/// `Live` syncs the document with its neighbours instead.
const TOPIC_OUTBOX: usize = 64;

/// How long a gossip command may wait for iroh-gossip before `Live` hears that the topic is
/// stalled; repeated while it still waits.
const GOSSIP_STALL: std::time::Duration = std::time::Duration::from_secs(5);

/// A command for a topic's task.
pub(crate) enum TopicOut {
    Broadcast(BroadcastScope, Bytes),
    JoinPeers(Vec<iroh::EndpointId>),
}

/// The live task's handle to a topic. Dropping it stops the topic's task and leaves the topic.
pub(crate) struct Topic {
    /// Which subscription of the topic this is: messages of an earlier one are ignored.
    pub(crate) generation: u64,
    outbox: Arc<Outbox>,
    _stop: oneshot::Sender<()>,
}

impl Topic {
    /// Spawns the topic's task, which joins the topic with `bootstrap`.
    pub(crate) fn spawn<R: Runtime>(
        rt: &R,
        gossip: Gossip,
        namespace: NamespaceId,
        generation: u64,
        bootstrap: Vec<iroh::EndpointId>,
        tx: mpsc::Sender<LiveMsg>,
    ) -> Self {
        let (stop, stopped) = oneshot::channel();
        let outbox = Arc::new(Outbox::default());
        rt.spawn(Box::pin(run(
            rt.clone(),
            gossip,
            namespace,
            generation,
            bootstrap,
            outbox.clone(),
            tx,
            stopped,
        )));
        Self {
            generation,
            outbox,
            _stop: stop,
        }
    }

    /// Queues `out` (also while the topic is being joined); false when the outbox is full.
    /// A topic whose task has ended takes nothing and answers true: its end is reported to
    /// `Live` separately.
    pub(crate) fn send(&self, out: TopicOut) -> bool {
        if Arc::strong_count(&self.outbox) == 1 {
            return true;
        }
        self.outbox.push(out)
    }
}

/// A bounded queue whose memory is given back whenever it runs empty (an idle topic holds
/// none), with one waiting reader.
#[derive(Default)]
struct Outbox {
    queue: Mutex<VecDeque<TopicOut>>,
    ready: Notify,
}

impl Outbox {
    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<TopicOut>> {
        // Nothing panics while holding the lock; a poisoned queue is still a valid queue.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, out: TopicOut) -> bool {
        let mut queue = self.queue();
        if queue.len() >= TOPIC_OUTBOX {
            return false;
        }
        queue.push_back(out);
        drop(queue);
        self.ready.notify_one();
        true
    }

    async fn pop(&self) -> TopicOut {
        loop {
            {
                let mut queue = self.queue();
                if let Some(out) = queue.pop_front() {
                    if queue.is_empty() {
                        *queue = VecDeque::new();
                    }
                    return out;
                }
            }
            // A push since the check left a permit: this returns at once.
            self.ready.notified().await;
        }
    }
}

/// Hands the outbox to iroh-gossip in order, until a send fails (the subscription is gone).
/// A command that waits longer than [`GOSSIP_STALL`] is reported to `Live` as
/// [`GossipEvent::Lagged`] every [`GOSSIP_STALL`] while it waits: what this node broadcast may
/// be stuck, and a neighbour that does not read may be stuck too, so `Live` syncs the
/// document with its neighbours.
async fn send_outbox<R: Runtime>(
    rt: R,
    namespace: NamespaceId,
    sender: GossipSender,
    outbox: &Outbox,
    tx: &mpsc::Sender<LiveMsg>,
) {
    loop {
        let out = outbox.pop().await;
        let mut send = std::pin::pin!(async {
            match out {
                TopicOut::Broadcast(BroadcastScope::Swarm, payload) => {
                    sender.broadcast(payload).await
                }
                TopicOut::Broadcast(BroadcastScope::Neighbors, payload) => {
                    sender.broadcast_neighbors(payload).await
                }
                TopicOut::JoinPeers(peers) => sender.join_peers(peers).await,
            }
            .is_ok()
        });
        let sent = loop {
            let stall = rt.sleep_until(rt.now() + GOSSIP_STALL);
            let step = futures_lite::future::or(async { Some((&mut send).await) }, async {
                stall.await;
                None
            })
            .await;
            match step {
                Some(sent) => break sent,
                None => {
                    tracing::debug!(?namespace, "gossip does not take our messages");
                    let lagged = Input::Gossip {
                        namespace,
                        event: GossipEvent::Lagged,
                    };
                    // A full inbox has work enough; the next stall reports again.
                    let _ = tx.try_send(LiveMsg::Input(lagged));
                }
            }
        };
        if !sent {
            return;
        }
    }
}

/// The topic's task: joins the topic, then forwards its events to `Live` and sends the
/// outbox side by side, until told to stop. A subscription that fails to start, or whose
/// stream ends while no one asked it to stop, is reported as [`LiveMsg::TopicEnded`]: `Live`
/// decides when to join again.
#[allow(clippy::too_many_arguments)]
async fn run<R: Runtime>(
    rt: R,
    gossip: Gossip,
    namespace: NamespaceId,
    generation: u64,
    bootstrap: Vec<iroh::EndpointId>,
    outbox: Arc<Outbox>,
    tx: mpsc::Sender<LiveMsg>,
    stop: oneshot::Receiver<()>,
) {
    let topic = TopicId::from_bytes(namespace.to_bytes());
    let run = async {
        // Boxed: the subscription's future is large and needed only until the topic is joined.
        let sub = match Box::pin(gossip.subscribe(topic, bootstrap)).await {
            Ok(sub) => sub,
            Err(e) => {
                tracing::warn!(?namespace, error = %e, "gossip subscription failed");
                return true;
            }
        };
        let (sender, mut receiver) = sub.split();
        let forward = async {
            while let Some(event) = receiver.next().await {
                let event = match event {
                    Ok(iroh_gossip::api::Event::NeighborUp(p)) => {
                        GossipEvent::NeighborUp(peer_id(p))
                    }
                    Ok(iroh_gossip::api::Event::NeighborDown(p)) => {
                        GossipEvent::NeighborDown(peer_id(p))
                    }
                    Ok(iroh_gossip::api::Event::Received(msg)) => GossipEvent::Received {
                        content: msg.content.to_vec(),
                        delivered_from: peer_id(msg.delivered_from),
                        direct: msg.scope.is_direct(),
                    },
                    Ok(iroh_gossip::api::Event::Lagged) => GossipEvent::Lagged,
                    Err(_) => break,
                };
                // A permit first: the waiting future need not hold the message.
                let Ok(permit) = tx.reserve().await else {
                    return false;
                };
                permit.send(LiveMsg::Input(Input::Gossip { namespace, event }));
            }
            true
        };
        // Sending ends only when the subscription is gone; the events decide the report.
        let send = async {
            send_outbox(rt, namespace, sender, &outbox, &tx).await;
            std::future::pending::<bool>().await
        };
        futures_lite::future::or(forward, send).await
    };
    let report = futures_lite::future::or(run, async {
        let _ = stop.await;
        false
    })
    .await;
    if report {
        let ended = LiveMsg::TopicEnded {
            namespace,
            generation,
        };
        let _ = tx.send(ended).await;
    }
}

#[cfg(test)]
mod tests {
    use super::{Outbox, TopicOut, TOPIC_OUTBOX};

    fn join() -> TopicOut {
        TopicOut::JoinPeers(Vec::new())
    }

    /// The outbox keeps its bound, gives commands back in order, and holds no memory once
    /// drained.
    #[tokio::test]
    async fn outbox_bounded_ordered_and_released() {
        let outbox = Outbox::default();
        for i in 0..TOPIC_OUTBOX {
            let payload = bytes::Bytes::from(vec![i as u8]);
            let out = TopicOut::Broadcast(sheaf_core::live::BroadcastScope::Swarm, payload);
            assert!(outbox.push(out));
        }
        assert!(!outbox.push(join()), "a full outbox refuses");
        for i in 0..TOPIC_OUTBOX {
            match outbox.pop().await {
                TopicOut::Broadcast(_, payload) => assert_eq!(payload[..], [i as u8]),
                TopicOut::JoinPeers(_) => panic!("out of order"),
            }
        }
        assert_eq!(
            outbox.queue().capacity(),
            0,
            "a drained outbox holds no memory"
        );
        assert!(outbox.push(join()));
    }

    /// A reader waiting on an empty outbox wakes for the next command.
    #[tokio::test]
    async fn outbox_wakes_its_reader() {
        let outbox = std::sync::Arc::new(Outbox::default());
        let reader = tokio::spawn({
            let outbox = outbox.clone();
            async move { matches!(outbox.pop().await, TopicOut::JoinPeers(_)) }
        });
        tokio::task::yield_now().await;
        assert!(outbox.push(join()));
        let woke = tokio::time::timeout(std::time::Duration::from_secs(30), reader).await;
        assert!(woke.expect("reader woke").expect("reader ran"));
    }
}
