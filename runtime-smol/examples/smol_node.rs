//! A Sheaf node under `smol::block_on`: no `#[tokio::main]` anywhere. Two nodes on loopback
//! share a document by ticket; the second prints its events until the content has arrived.
//!
//! ```sh
//! cargo run -p sheaf-smol --example smol_node
//! ```

use std::time::Duration;

use anyhow::{Context, Result};
use iroh::{endpoint::presets, protocol::Router, Endpoint};
use iroh_blobs::{store::mem::MemStore, BlobsProtocol};
use iroh_gossip::net::Gossip;
use sheaf_smol::{AddrInfoOptions, Docs, LiveEvent, ShareMode, SmolRuntime};

async fn node(rt: &SmolRuntime) -> Result<(Router, Docs, MemStore)> {
    // iroh needs the tokio context while its objects are created.
    let _tokio = rt.enter();
    let endpoint = Endpoint::builder(presets::Minimal)
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")?
        .bind()
        .await?;
    let blobs = MemStore::new();
    let gossip = Gossip::builder().spawn(endpoint.clone());
    let docs = Docs::memory()
        .spawn_on(
            rt.clone(),
            endpoint.clone(),
            (*blobs).clone(),
            gossip.clone(),
        )
        .await?;
    let router = Router::builder(endpoint)
        .accept(sheaf_smol::ALPN, docs.clone())
        .accept(iroh_blobs::ALPN, BlobsProtocol::new(&blobs, None))
        .accept(iroh_gossip::ALPN, gossip)
        .spawn();
    Ok((router, docs, blobs))
}

fn main() -> Result<()> {
    let rt = SmolRuntime::new()?;
    smol::block_on(async {
        let (router_a, alice, _blobs_a) = node(&rt).await?;
        let (router_b, bob, _blobs_b) = node(&rt).await?;
        let doc = alice.create().await?;
        doc.set_bytes(alice.author_default(), "hello", "from smol")
            .await?;
        let ticket = doc
            .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
            .await?;
        println!("ticket {ticket}");
        let (bob_doc, mut events) = bob.import_and_subscribe(ticket).await?;
        let wait = async {
            while let Some(event) = events.recv().await {
                println!("bob: {event:?}");
                if matches!(event, LiveEvent::ContentReady { .. }) {
                    return Ok(());
                }
            }
            anyhow::bail!("events ended")
        };
        let timeout = async {
            smol::Timer::after(Duration::from_secs(60)).await;
            anyhow::bail!("timed out")
        };
        smol::future::or(wait, timeout).await?;
        let entry = bob_doc
            .get_exact(alice.author_default(), "hello", false)
            .await?
            .context("missing")?;
        println!("bob reads {} bytes written by alice", entry.content_len());
        router_b.shutdown().await?;
        router_a.shutdown().await?;
        Ok(())
    })
}
