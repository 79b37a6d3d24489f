//! A document whose gossip subscription ends goes live again: the live task reports the end
//! to `Live`, which joins the topic again after a backoff (real endpoints and gossip on
//! loopback; the end is injected as the subscription task would report it).

use std::time::{Duration, Instant};

use iroh::{endpoint::presets, Endpoint};
use iroh_gossip::net::Gossip;
use sheaf_core::live::LiveEvent;

use crate::{live_task::LiveMsg, AddrInfoOptions, BoxFuture, Docs, Events, Runtime, ShareMode};

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
    let endpoint = Endpoint::builder(presets::Minimal)
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")
        .expect("loopback address")
        .bind()
        .await
        .expect("bind");
    let blobs = iroh_blobs::store::mem::MemStore::new();
    let gossip = Gossip::builder().spawn(endpoint.clone());
    let docs = Docs::<Tokio>::memory()
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
