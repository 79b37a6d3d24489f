//! Engine tests that need the live task's inbox: its timers must fire while the inbox is
//! never empty.
//!
//! Producers here push cheap API messages into the live task's inbox without waiting for
//! replies, faster than the task handles them, so the inbox stays full (the state a large
//! initial sync or a gossip burst produces). A real peer meanwhile opens a sync stream, sends
//! one byte and goes silent; the node must end that session after its idle timeout. Both
//! runtime shapes the engine runs on are covered: tokio's multi-threaded runtime (`sheaf-tokio`)
//! and an owned one-thread runtime (what `sheaf-smol` drives its engine tasks on).

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use iroh::{endpoint::presets, Endpoint};
use iroh_gossip::net::Gossip;
use sheaf_core::{
    keys::NamespaceId,
    live::{ApiCommand, LiveConfig},
};
use tokio::sync::oneshot;

use crate::{live_task::LiveMsg, BoxFuture, Docs, Runtime};

/// Tokio as the engine's runtime.
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

/// A loopback endpoint without relays, for tests.
pub(crate) async fn endpoint() -> Endpoint {
    Endpoint::builder(presets::Minimal)
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")
        .expect("loopback address")
        .bind()
        .await
        .expect("bind")
}

/// Producers that keep the live task's inbox full.
const PRODUCERS: usize = 2;

async fn idle_session_ends_under_a_full_inbox() {
    let endpoint = endpoint().await;
    let blobs = iroh_blobs::store::mem::MemStore::new();
    let gossip = Gossip::builder().spawn(endpoint.clone());
    let live = LiveConfig {
        session_idle_timeout: Duration::from_millis(300),
        ..LiveConfig::default()
    };
    let docs = Docs::<Tokio>::memory()
        .live_config(live)
        .spawn_on(
            Tokio(tokio::runtime::Handle::current()),
            endpoint.clone(),
            (*blobs).clone(),
            gossip.clone(),
        )
        .await
        .expect("spawn");
    let router = docs.router(gossip);

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut producers = Vec::new();
    for _ in 0..PRODUCERS {
        let tx = docs.inner.live.clone();
        let (stop, sent) = (stop.clone(), sent.clone());
        producers.push(tokio::spawn(async move {
            let namespace = NamespaceId::from_bytes([7; 32]);
            while !stop.load(Ordering::Relaxed) {
                let (reply, _) = oneshot::channel();
                let command = ApiCommand::Unsubscribe { namespace };
                if tx.send(LiveMsg::Api { command, reply }).await.is_err() {
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    while sent.load(Ordering::Relaxed) < 10_000 {
        tokio::task::yield_now().await;
    }

    let client = endpoint_client().await;
    let conn = client
        .connect(endpoint.addr(), crate::ALPN)
        .await
        .expect("connect");
    let (mut send, _recv) = conn.open_bi().await.expect("stream");
    send.write_all(&[0]).await.expect("write");
    let before = sent.load(Ordering::Relaxed);
    let closed = tokio::time::timeout(Duration::from_secs(20), conn.closed()).await;
    let during = sent.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    for p in producers {
        p.await.expect("producer");
    }
    let reason = closed.expect("the idle session was not ended while the inbox was full");
    assert!(
        matches!(
            reason,
            iroh::endpoint::ConnectionError::ApplicationClosed(_)
        ),
        "the node should close the session itself, got {reason}"
    );
    assert!(
        during > 1_000,
        "the inbox was not kept busy: {during} messages"
    );
    client.close().await;
    router.shutdown().await.expect("shutdown");
}

async fn endpoint_client() -> Endpoint {
    endpoint().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_fires_with_a_full_inbox_on_a_multi_threaded_runtime() {
    idle_session_ends_under_a_full_inbox().await;
}

#[test]
fn idle_timeout_fires_with_a_full_inbox_on_a_one_thread_runtime() {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(idle_session_ends_under_a_full_inbox());
}
