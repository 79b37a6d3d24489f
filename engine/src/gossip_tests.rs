//! Gossip failures, with real endpoints and gossip on loopback.
//!
//! A document whose gossip subscription ends goes live again: the live task reports the end
//! to `Live`, which joins the topic again after a backoff (the end is injected as the
//! subscription task would report it). A gossip actor that stops answering is noticed by the
//! health probe, and live writes then arrive by repair syncs (the actor runs on a runtime of
//! its own, whose only thread the test blocks).

use std::time::{Duration, Instant};

use iroh::Endpoint;
use iroh_gossip::net::Gossip;
use sheaf_core::live::{LiveEvent, Origin, SyncReason};

use crate::{
    live_task::LiveMsg, tests::endpoint, AddrInfoOptions, BoxFuture, Docs, Events, Runtime,
    ShareMode,
};

#[derive(Debug, Clone)]
struct Tokio(tokio::runtime::Handle);

impl Runtime for Tokio {
    fn spawn(&self, future: BoxFuture<()>) {
        self.0.spawn(future);
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }
}

const TIMEOUT: Duration = Duration::from_secs(30);

async fn node() -> (Docs<Tokio>, iroh::protocol::Router) {
    let endpoint = endpoint().await;
    let gossip = Gossip::builder().spawn(endpoint.clone());
    spawn(Docs::memory(), endpoint, gossip).await
}

async fn spawn(
    builder: crate::Builder<Tokio>,
    endpoint: Endpoint,
    gossip: Gossip,
) -> (Docs<Tokio>, iroh::protocol::Router) {
    let blobs = iroh_blobs::store::mem::MemStore::new();
    let docs = builder
        .spawn_on(
            Tokio(tokio::runtime::Handle::current()),
            endpoint,
            (*blobs).clone(),
            gossip.clone(),
        )
        .await
        .expect("spawn");
    let router = docs.router(gossip);
    (docs, router)
}

async fn wait_for(events: &mut Events, what: &str, mut pred: impl FnMut(&LiveEvent) -> bool) {
    let found = tokio::time::timeout(TIMEOUT, async {
        while let Some(e) = events.recv().await {
            if pred(&e) {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "{what}: not seen within {TIMEOUT:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_whose_gossip_ended_goes_live_again() {
    let (a, router_a) = node().await;
    let (b, router_b) = node().await;
    let doc_a = a.create().await.expect("create");
    let ticket = doc_a
        .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
        .await
        .expect("share");
    let mut events_a = doc_a.subscribe().await.expect("subscribe");
    let (doc_b, _events_b) = b.import_and_subscribe(ticket).await.expect("import");
    let b_id = crate::convert::peer_id(router_b.endpoint().id());
    wait_for(
        &mut events_a,
        "b as a neighbour",
        |e| matches!(e, LiveEvent::NeighborUp(p) if *p == b_id),
    )
    .await;

    // a's only topic subscription (generation 0) ends.
    a.inner
        .live
        .send(LiveMsg::TopicEnded {
            namespace: doc_a.id(),
            generation: 0,
        })
        .await
        .expect("live task");
    wait_for(
        &mut events_a,
        "b gone with the subscription",
        |e| matches!(e, LiveEvent::NeighborDown(p) if *p == b_id),
    )
    .await;
    wait_for(
        &mut events_a,
        "b back after the rejoin",
        |e| matches!(e, LiveEvent::NeighborUp(p) if *p == b_id),
    )
    .await;
    doc_b
        .set_bytes(b.author_default(), "after", "rejoin")
        .await
        .expect("write");
    wait_for(
        &mut events_a,
        "b's write, live",
        |e| matches!(e, LiveEvent::InsertRemote { entry, .. } if entry.key() == b"after"),
    )
    .await;
    assert_eq!(a.metrics().dials_queued.get(), 0);

    router_b.shutdown().await.expect("shutdown b");
    router_a.shutdown().await.expect("shutdown a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_gossip_actor_is_noticed_and_live_writes_arrive_by_sync() {
    let (a, router_a) = node().await;
    // b's gossip actor runs on a runtime of its own with one thread, which the test can block.
    let gossip_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("gossip runtime");
    let endpoint_b = endpoint().await;
    let gossip_b = {
        let _on = gossip_rt.enter();
        Gossip::builder().spawn(endpoint_b.clone())
    };
    let probe_gossip = gossip_b.clone();
    let builder = Docs::memory().gossip_probe_period(Duration::from_millis(200));
    let (b, router_b) = spawn(builder, endpoint_b, gossip_b).await;

    let doc_a = a.create().await.expect("create");
    let ticket = doc_a
        .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
        .await
        .expect("share");
    let (doc_b, mut events_b) = b.import_and_subscribe(ticket).await.expect("import");
    let a_id = crate::convert::peer_id(router_a.endpoint().id());
    let (mut up, mut synced) = (false, false);
    wait_for(
        &mut events_b,
        "a as a neighbour, and a finished sync",
        |e| {
            match e {
                LiveEvent::NeighborUp(p) => up |= *p == a_id,
                LiveEvent::SyncFinished(s) => synced |= s.peer == a_id && s.result.is_ok(),
                _ => {}
            }
            up && synced
        },
    )
    .await;
    assert_eq!(b.metrics().gossip_stalled.get(), 0);
    assert!(b.health().ok());
    // b's status view names a: a gossip neighbour, synced once (the import's sync).
    let status = doc_b.sync_status().await.expect("status").expect("syncing");
    let peer = status
        .peers
        .iter()
        .find(|p| p.peer == a_id)
        .expect("a tracked");
    assert!(peer.neighbor && peer.failures == 0, "{peer:?}");
    assert!(
        peer.last_sync.as_ref().is_some_and(|s| s.result.is_ok()),
        "{peer:?}"
    );

    // Block the gossip runtime's only thread: b's actor stops answering.
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    // One message ever: the release.
    let (release_tx, release_rx) = std::sync::mpsc::sync_channel::<()>(1);
    gossip_rt.spawn(async move {
        let _ = started_tx.send(());
        let _ = release_rx.recv();
    });
    started_rx
        .await
        .expect("the gossip runtime runs the blocker");
    let ticks = probe_gossip.metrics().actor_tick_main.get();
    let stalled_at =
        crate::runtime::Runtime::wall_micros(&Tokio(tokio::runtime::Handle::current()));

    // The probe notices, and b repairs by syncing with its neighbour: no gossip report can
    // reach b now, so a sync for a report that starts after the stall is that repair.
    let repair = |e: &LiveEvent, after: u64| {
        matches!(e, LiveEvent::SyncFinished(s)
            if s.origin == Origin::Connect(SyncReason::SyncReport)
                && s.started_micros >= after
                && s.result.is_ok())
    };
    let mut first = stalled_at;
    wait_for(&mut events_b, "a repair sync", |e| {
        if let LiveEvent::SyncFinished(s) = e {
            first = s.started_micros;
        }
        repair(e, stalled_at)
    })
    .await;
    // While the stall lasts, every failed probe repairs again, and a's next write arrives by
    // sync (by the next repair, or by a's own dial after ours crossed it).
    doc_a
        .set_bytes(a.author_default(), "during", "stall")
        .await
        .expect("write");
    let (mut write, mut again) = (false, false);
    wait_for(&mut events_b, "a's write, and a second repair", |e| {
        write |= matches!(e, LiveEvent::InsertRemote { entry, .. } if entry.key() == b"during");
        again |= repair(e, first + 1);
        write && again
    })
    .await;
    assert_eq!(b.metrics().gossip_stalled.get(), 1);
    assert!(!b.health().gossip_answering && b.health().store_running);
    assert!(b.metrics().gossip_stalls.get() >= 2);
    assert_eq!(probe_gossip.metrics().actor_tick_main.get(), ticks);

    // Released, gossip carries live writes again.
    release_tx.send(()).expect("blocker waits");
    doc_a
        .set_bytes(a.author_default(), "after", "stall")
        .await
        .expect("write");
    wait_for(
        &mut events_b,
        "a's write after the stall",
        |e| matches!(e, LiveEvent::InsertRemote { entry, .. } if entry.key() == b"after"),
    )
    .await;

    router_b.shutdown().await.expect("shutdown b");
    router_a.shutdown().await.expect("shutdown a");
    gossip_rt.shutdown_background();
}
