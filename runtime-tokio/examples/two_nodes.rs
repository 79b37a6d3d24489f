//! Two Sheaf nodes on loopback: the first creates a document and shares it by ticket, the
//! second imports it, and both print the live events they see until the content of a write
//! made after joining has arrived.
//!
//! ```sh
//! cargo run -p sheaf-tokio --example two_nodes
//! ```

use std::time::Duration;

use anyhow::{Context, Result};
use iroh::{endpoint::presets, protocol::Router, Endpoint};
use iroh_blobs::{store::mem::MemStore, BlobsProtocol};
use iroh_gossip::net::Gossip;
use sheaf_tokio::{AddrInfoOptions, Docs, LiveEvent, ShareMode};

struct Node {
    router: Router,
    docs: Docs,
    _blobs: MemStore,
}

async fn node() -> Result<Node> {
    // Loopback only: no relay, no DNS, an address that tickets can carry.
    let endpoint = Endpoint::builder(presets::Minimal)
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")?
        .bind()
        .await?;
    let blobs = MemStore::new();
    let gossip = Gossip::builder().spawn(endpoint.clone());
    let docs = Docs::memory()
        .spawn(endpoint.clone(), (*blobs).clone(), gossip.clone())
        .await?;
    let router = Router::builder(endpoint)
        .accept(sheaf_tokio::ALPN, docs.clone())
        .accept(iroh_blobs::ALPN, BlobsProtocol::new(&blobs, None))
        .accept(iroh_gossip::ALPN, gossip)
        .spawn();
    Ok(Node {
        router,
        docs,
        _blobs: blobs,
    })
}

fn describe(e: &LiveEvent) -> String {
    match e {
        LiveEvent::InsertLocal { entry } => {
            format!("insert local  {}", String::from_utf8_lossy(entry.key()))
        }
        LiveEvent::InsertRemote { from, entry, .. } => {
            format!(
                "insert remote {} from {}",
                String::from_utf8_lossy(entry.key()),
                from.fmt_short()
            )
        }
        LiveEvent::ContentReady { hash } => format!("content ready {}", hash.fmt_short()),
        LiveEvent::PendingContentReady => "no pending downloads".into(),
        LiveEvent::NeighborUp(p) => format!("neighbor up   {}", p.fmt_short()),
        LiveEvent::NeighborDown(p) => format!("neighbor down {}", p.fmt_short()),
        LiveEvent::SyncFinished(s) => {
            format!("sync finished with {}: {:?}", s.peer.fmt_short(), s.result)
        }
        LiveEvent::Lagged { missed } => format!("lagged, missed {missed}"),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let alice = node().await?;
    let bob = node().await?;
    println!("alice {}", alice.router.endpoint().id().fmt_short());
    println!("bob   {}", bob.router.endpoint().id().fmt_short());

    let doc = alice.docs.create().await?;
    let author = alice.docs.author_default();
    doc.set_bytes(author, "greeting", "hello from alice")
        .await?;
    let ticket = doc
        .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
        .await?;
    println!("ticket {ticket}");
    let mut alice_events = doc.subscribe().await?;

    let (bob_doc, mut bob_events) = bob.docs.import_and_subscribe(ticket).await?;
    let deadline = Duration::from_secs(60);
    tokio::time::timeout(deadline, async {
        // Bob: wait until the greeting's content is here and alice is a neighbour.
        let (mut content, mut neighbor) = (false, false);
        while !(content && neighbor) {
            let e = bob_events.recv().await.context("bob's events ended")?;
            println!("bob:   {}", describe(&e));
            content |= matches!(e, LiveEvent::ContentReady { .. });
            neighbor |= matches!(e, LiveEvent::NeighborUp(_));
        }
        // A live write from bob reaches alice through gossip.
        bob_doc
            .set_bytes(bob.docs.author_default(), "reply", "hi alice")
            .await?;
        loop {
            let e = alice_events.recv().await.context("alice's events ended")?;
            println!("alice: {}", describe(&e));
            if matches!(e, LiveEvent::ContentReady { .. }) {
                break;
            }
        }
        anyhow::Ok(())
    })
    .await
    .context("timed out")??;
    let reply = doc
        .get_exact(bob.docs.author_default(), "reply", false)
        .await?
        .context("reply missing")?;
    println!(
        "alice reads reply: {} bytes, hash {}",
        reply.content_len(),
        reply.content_hash().fmt_short()
    );
    bob.router.shutdown().await?;
    alice.router.shutdown().await?;
    Ok(())
}
