//! A health probe of the iroh-gossip actor.
//!
//! iroh-gossip runs every topic of a node in one actor. That actor can stop answering — under
//! a flood on loopback it was seen to wait forever on a peer's full send queue (upstream
//! iroh-gossip issue #47) — and then no topic delivers anything, and no event says so: a
//! receiving node simply hears nothing. Senders notice (their broadcasts wait, see the topic
//! sender task), receivers do not. Without a signal, live updates stop until the next
//! anti-entropy round, if any.
//!
//! So the engine asks the actor, every [`probe period`](crate::Builder::gossip_probe_period),
//! to do something it must answer: take a subscription to a private topic that no peer knows
//! (no bootstrap peers, so nothing goes on the wire). The actor counts every request it takes
//! (`actor_tick_rx` in iroh-gossip's metrics); a request not taken within one period means the
//! actor is stuck. Neither `GossipSender::broadcast` nor `join_peers` would do: they return
//! once a bounded channel accepts the command, whatever the actor does.
//!
//! Each failed probe is reported to `Live` as [`Input::GossipStalled`], and so is the first
//! probe that succeeds again (ops were lost meanwhile): `Live` repairs every live document by
//! syncing with its gossip neighbours. The `gossip_stalled` gauge is 1 while the actor does
//! not answer. One probe runs at a time and at most one subscription is held, so the probe's
//! cost is fixed whatever the number of documents.

use std::{sync::Arc, time::Duration};

use iroh_gossip::{net::Gossip, proto::TopicId};
use sheaf_core::live::Input;
use tokio::sync::{mpsc, oneshot};

use crate::{live_task::LiveMsg, metrics::Metrics, runtime::Runtime};

/// Default period of the probe, and how long one probe may wait for an answer.
pub(crate) const DEFAULT_PERIOD: Duration = Duration::from_secs(5);

/// Polls of the request counter while a probe waits: first after this, then twice as long
/// each time, up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(2);
const MAX_POLL: Duration = Duration::from_millis(250);

/// Probes `gossip` every `period` until `stop` resolves or `tx` closes, reporting stalls to
/// the live task through `tx`.
pub(crate) async fn run<R: Runtime>(
    rt: R,
    gossip: Gossip,
    period: Duration,
    tx: mpsc::Sender<LiveMsg>,
    metrics: Arc<Metrics>,
    stop: oneshot::Receiver<()>,
) {
    let mut topic = [0u8; 32];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut topic);
    let topic = TopicId::from_bytes(topic);
    let probing = async {
        let mut stalled = false;
        loop {
            rt.sleep_until(rt.now() + period).await;
            if tx.is_closed() {
                return;
            }
            let answered = answers(&rt, &gossip, topic, period).await;
            // A failed probe, or the first one that succeeds after failures.
            let report = !answered || stalled;
            if answered && stalled {
                tracing::info!("gossip answers again");
            } else if !answered && !stalled {
                tracing::warn!(
                    ?period,
                    "gossip does not answer: live documents repair by sync"
                );
            }
            stalled = !answered;
            metrics.gossip_stalled.set(i64::from(stalled));
            if !answered {
                metrics.gossip_stalls.inc();
            }
            if report && tx.send(LiveMsg::Input(Input::GossipStalled)).await.is_err() {
                return;
            }
        }
    };
    futures_lite::future::or(probing, async {
        let _ = stop.await;
    })
    .await;
}

/// Whether the actor takes a request within `limit`: a subscription to `topic` is sent, and
/// the actor's count of requests taken must move.
async fn answers<R: Runtime>(rt: &R, gossip: &Gossip, topic: TopicId, limit: Duration) -> bool {
    let deadline = rt.now() + limit;
    let taken = || gossip.metrics().actor_tick_rx.get();
    let before = taken();
    let probe = async {
        // An error means the actor is gone: it will not answer either.
        let Ok(_subscription) = gossip.subscribe(topic, Vec::new()).await else {
            return false;
        };
        let mut wait = FIRST_POLL;
        loop {
            if taken() != before {
                return true;
            }
            let now = rt.now();
            if now >= deadline {
                return false;
            }
            rt.sleep_until((now + wait).min(deadline)).await;
            wait = (wait * 2).min(MAX_POLL);
        }
    };
    // The subscription itself waits while the actor's request channel is full.
    crate::shutdown::within(rt, limit, probe)
        .await
        .unwrap_or(false)
}
