//! Sheaf nodes on smol: the application runs under `smol::block_on`, the engine's tasks on
//! `SmolRuntime`'s owned tokio runtime. Real iroh endpoints on loopback.

#[path = "util/iroh_docs.rs"]
mod iroh_node;

use std::{str::FromStr, time::Duration};

use anyhow::{Context, Result};
use futures_lite::{future, StreamExt};
use iroh::{endpoint::presets, protocol::Router, Endpoint};
use iroh_blobs::store::mem::MemStore;
use iroh_gossip::net::Gossip;
use iroh_node::IrohNode;
use sheaf_smol::{AddrInfoOptions, LiveEvent, ShareMode, SmolRuntime};

const TIMEOUT: Duration = Duration::from_secs(60);

struct Node<R: sheaf::Runtime> {
    router: Router,
    docs: sheaf::Docs<R>,
    blobs: MemStore,
}

async fn endpoint() -> Result<Endpoint> {
    Ok(Endpoint::builder(presets::Minimal)
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")?
        .bind()
        .await?)
}

/// A node whose engine runs on `rt`; call inside `rt.enter()`.
async fn node<R: sheaf::Runtime>(rt: R, builder: sheaf::Builder<R>) -> Result<Node<R>> {
    let endpoint = endpoint().await?;
    let blobs = MemStore::new();
    let gossip = Gossip::builder().spawn(endpoint.clone());
    let docs = builder
        .spawn_on(rt, endpoint.clone(), (*blobs).clone(), gossip.clone())
        .await?;
    let router = docs.router(gossip);
    Ok(Node {
        router,
        docs,
        blobs,
    })
}

/// Waits (at most [`TIMEOUT`], on smol's timer) for an event matching `pred`.
async fn wait_for(
    events: &mut sheaf::Events,
    mut pred: impl FnMut(&LiveEvent) -> bool,
) -> Result<()> {
    within(async {
        while let Some(ev) = events.recv().await {
            if pred(&ev) {
                return Ok(());
            }
        }
        anyhow::bail!("event stream ended")
    })
    .await
}

/// `fut` (which waits on events), failed if it has not finished by a deadline [`TIMEOUT`]
/// from now. The timer only fires at that deadline; it orders nothing.
async fn within<T>(fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let deadline = std::time::Instant::now() + TIMEOUT;
    future::or(fut, async move {
        smol::Timer::at(deadline).await;
        anyhow::bail!("no result within {TIMEOUT:?}")
    })
    .await
}

#[test]
fn smol_nodes_sync_subscribe_and_download() -> Result<()> {
    let rt = SmolRuntime::new()?;
    smol::block_on(async {
        let _tokio = rt.enter();
        let a = node(rt.clone(), sheaf_smol::Docs::memory()).await?;
        let b = node(rt.clone(), sheaf_smol::Docs::memory()).await?;
        let doc = a.docs.create().await?;
        let mut a_events = doc.subscribe().await?;
        let h = doc.set_bytes(a.docs.author_default(), "k", "v").await?;
        wait_for(&mut a_events, |e| {
            matches!(e, LiveEvent::InsertLocal { .. })
        })
        .await?;
        let ticket = doc
            .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
            .await?;
        let (bdoc, mut b_events) = b.docs.import_and_subscribe(ticket).await?;
        wait_for(
            &mut b_events,
            |e| matches!(e, LiveEvent::ContentReady { hash } if *hash == h),
        )
        .await?;
        let entry = bdoc
            .get_exact(a.docs.author_default(), "k", false)
            .await?
            .context("synced")?;
        assert_eq!(entry.content_hash(), h);
        let bytes = b
            .blobs
            .blobs()
            .get_bytes(iroh_blobs::Hash::from_bytes(h.to_bytes()))
            .await?;
        assert_eq!(&bytes[..], b"v");
        b.router.shutdown().await?;
        a.router.shutdown().await?;
        Ok(())
    })
}

#[test]
fn a_persistent_smol_node_restarts_with_its_data() -> Result<()> {
    let rt = SmolRuntime::new()?;
    let dir = tempfile::tempdir()?;
    smol::block_on(async {
        let _tokio = rt.enter();
        let (id, author) = {
            let n = node(rt.clone(), sheaf_smol::Docs::persistent(dir.path())).await?;
            let doc = n.docs.create().await?;
            let author = n.docs.author_default();
            doc.set_bytes(author, "kept", "across restarts").await?;
            let id = doc.id();
            n.router.shutdown().await?;
            (id, author)
        };
        let n = node(rt.clone(), sheaf_smol::Docs::persistent(dir.path())).await?;
        assert_eq!(
            n.docs.author_default(),
            author,
            "the default author survives"
        );
        let doc = n.docs.open(id).await?;
        let entry = doc
            .get_exact(author, "kept", false)
            .await?
            .context("entry survives")?;
        assert_eq!(entry.content_len(), "across restarts".len() as u64);
        n.router.shutdown().await?;
        Ok(())
    })
}

#[test]
fn a_smol_node_syncs_with_a_tokio_node() -> Result<()> {
    let rt = SmolRuntime::new()?;
    smol::block_on(async {
        let _tokio = rt.enter();
        let t = node(
            sheaf_tokio::TokioRuntime::current(),
            sheaf_tokio::Docs::memory(),
        )
        .await?;
        let s = node(rt.clone(), sheaf_smol::Docs::memory()).await?;
        let tdoc = t.docs.create().await?;
        let h = tdoc
            .set_bytes(t.docs.author_default(), "from-tokio", "t")
            .await?;
        let ticket = tdoc
            .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
            .await?;
        let (sdoc, mut events) = s.docs.import_and_subscribe(ticket).await?;
        wait_for(
            &mut events,
            |e| matches!(e, LiveEvent::ContentReady { hash } if *hash == h),
        )
        .await?;
        assert!(sdoc
            .get_exact(t.docs.author_default(), "from-tokio", false)
            .await?
            .is_some());
        s.router.shutdown().await?;
        t.router.shutdown().await?;
        Ok(())
    })
}

#[test]
fn a_smol_node_syncs_with_an_iroh_docs_node() -> Result<()> {
    let rt = SmolRuntime::new()?;
    smol::block_on(async {
        let _tokio = rt.enter();
        let endpoint = endpoint().await?;
        let iroh = IrohNode::spawn_on(endpoint).await?;
        let s = node(rt.clone(), sheaf_smol::Docs::memory()).await?;
        let sdoc = s.docs.create().await?;
        sdoc.set_bytes(s.docs.author_default(), "from-smol", "s")
            .await?;
        let ticket = sdoc
            .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
            .await?;
        let idoc = iroh
            .docs
            .import(iroh_docs::DocTicket::from_str(&ticket.to_string())?)
            .await?;
        let mut ievents = Box::pin(idoc.subscribe().await?);
        let author = iroh_docs::AuthorId::from(s.docs.author_default().as_bytes());
        within(async {
            loop {
                if idoc.get_exact(author, "from-smol", false).await?.is_some() {
                    return Ok(());
                }
                ievents.next().await.context("iroh-docs events ended")??;
            }
        })
        .await?;
        s.router.shutdown().await?;
        iroh.router.shutdown().await?;
        Ok(())
    })
}
