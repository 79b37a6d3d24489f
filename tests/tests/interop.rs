//! Interop over real iroh endpoints on loopback: Sheaf nodes and iroh-docs 0.101 nodes sync
//! the same documents, both ways, with live updates and content.
//!
//! iroh-docs' `SyncFinished` often reports an error on close even when all data was
//! exchanged, so these tests wait on data, never on iroh-docs' sync results.

mod util;

use std::{collections::BTreeSet, str::FromStr};

use anyhow::{Context, Result};
use futures_lite::StreamExt;
use sheaf_tokio::{AddrInfoOptions, LiveEvent, Query, ShareMode};
use util::{endpoint, iroh_docs::IrohNode, memory_node, wait_for, TIMEOUT};

/// The entries of an iroh-docs document, as rows.
async fn iroh_entries(doc: &iroh_docs::api::Doc) -> Result<BTreeSet<Row>> {
    let stream = doc
        .get_many(iroh_docs::store::Query::all().include_empty().build())
        .await?;
    let entries: Vec<_> = stream.try_collect().await?;
    Ok(entries
        .into_iter()
        .map(|e| Row {
            author: e.author().as_bytes().to_vec(),
            key: e.key().to_vec(),
            hash: e.content_hash().as_bytes().to_vec(),
            timestamp: e.timestamp(),
        })
        .collect())
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    author: Vec<u8>,
    key: Vec<u8>,
    hash: Vec<u8>,
    timestamp: u64,
}

async fn sheaf_entries(doc: &sheaf_tokio::Doc) -> Result<BTreeSet<Row>> {
    Ok(doc
        .get_many(Query::all().include_empty())
        .await?
        .into_iter()
        .map(|e| Row {
            author: e.author().as_bytes().to_vec(),
            key: e.key().to_vec(),
            hash: e.content_hash().as_bytes().to_vec(),
            timestamp: e.timestamp(),
        })
        .collect())
}

/// Re-checks `check` after every event of `events` until it holds (at most [`TIMEOUT`]).
async fn until<S: futures_lite::Stream + Unpin>(
    events: &mut S,
    what: &str,
    mut check: impl AsyncFnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if check().await? {
            return Ok(());
        }
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(_)) => {}
            Ok(None) => anyhow::bail!("event stream ended while waiting for {what}"),
            Err(_) => anyhow::bail!("timed out waiting for {what}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sheaf_imports_an_iroh_docs_document() -> Result<()> {
    let iroh = IrohNode::spawn_on(endpoint().await?).await?;
    let sheaf = memory_node().await?;
    let a1 = iroh.docs.author_default().await?;
    let a2 = iroh.docs.author_create().await?;
    let doc = iroh.docs.create().await?;
    doc.set_bytes(a1, "notes/1", "one").await?;
    doc.set_bytes(a1, "notes/2", "two").await?;
    doc.set_bytes(a2, "other", "three").await?;
    doc.set_bytes(a2, "gone/x", "x").await?;
    doc.del(a2, "gone/").await?;
    let expected = iroh_entries(&doc).await?;
    assert_eq!(expected.len(), 4, "3 values and one tombstone");
    let ticket = doc
        .share(
            iroh_docs::api::protocol::ShareMode::Write,
            iroh_docs::api::protocol::AddrInfoOptions::RelayAndAddresses,
        )
        .await?;
    let ticket = sheaf_tokio::DocTicket::from_str(&ticket.to_string())?;

    let (sdoc, mut events) = sheaf.docs.import_and_subscribe(ticket).await?;
    until(
        &mut events,
        "sheaf to hold iroh-docs' entries",
        async || Ok(sheaf_entries(&sdoc).await? == expected),
    )
    .await?;
    // Content arrives too.
    let mut ready = 0;
    wait_for(&mut events, |e| {
        ready += usize::from(matches!(e, LiveEvent::ContentReady { .. }));
        ready == 3
    })
    .await?;
    iroh.router.shutdown().await?;
    sheaf.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iroh_docs_imports_a_sheaf_document_and_live_updates_flow_both_ways() -> Result<()> {
    let iroh = IrohNode::spawn_on(endpoint().await?).await?;
    let sheaf = memory_node().await?;
    let author = sheaf.docs.author_default();
    let sdoc = sheaf.docs.create().await?;
    sdoc.set_bytes(author, "a", "alpha").await?;
    sdoc.set_bytes(author, "b/1", "beta").await?;
    sdoc.del(author, "b/").await?;
    let expected = sheaf_entries(&sdoc).await?;
    let mut sevents = sdoc.subscribe().await?;
    let ticket = sdoc
        .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
        .await?;
    let ticket = iroh_docs::DocTicket::from_str(&ticket.to_string())?;

    let (idoc, ievents) = iroh.docs.import_and_subscribe(ticket).await?;
    let mut ievents = Box::pin(ievents);
    until(
        &mut ievents,
        "iroh-docs to hold Sheaf's entries",
        async || Ok(iroh_entries(&idoc).await? == expected),
    )
    .await?;

    // Live, Sheaf → iroh-docs: wait until they are gossip neighbours first.
    wait_for(&mut sevents, |e| matches!(e, LiveEvent::NeighborUp(_))).await?;
    let h = sdoc.set_bytes(author, "live/from-sheaf", "s").await?;
    tokio::time::timeout(TIMEOUT, async {
        while let Some(ev) = ievents.next().await {
            if let Ok(iroh_docs::engine::LiveEvent::ContentReady { hash }) = ev {
                if hash.as_bytes() == h.as_bytes() {
                    return Ok(());
                }
            }
        }
        anyhow::bail!("iroh-docs event stream ended")
    })
    .await
    .context("iroh-docs did not receive Sheaf's live write")??;

    // Live, iroh-docs → Sheaf.
    let ia = iroh.docs.author_default().await?;
    idoc.set_bytes(ia, "live/from-iroh", "i").await?;
    wait_for(
        &mut sevents,
        |e| matches!(e, LiveEvent::InsertRemote { entry, .. } if entry.key() == b"live/from-iroh"),
    )
    .await?;
    wait_for(&mut sevents, |e| {
        matches!(e, LiveEvent::ContentReady { .. })
    })
    .await?;
    let bytes = sheaf
        .blobs
        .blobs()
        .get_bytes(iroh_blobs::Hash::new("i"))
        .await?;
    assert_eq!(&bytes[..], b"i");
    iroh.router.shutdown().await?;
    sheaf.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_swarm_converges() -> Result<()> {
    let i1 = IrohNode::spawn_on(endpoint().await?).await?;
    let i2 = IrohNode::spawn_on(endpoint().await?).await?;
    let s = memory_node().await?;
    let doc1 = i1.docs.create().await?;
    let a1 = i1.docs.author_default().await?;
    doc1.set_bytes(a1, "from/i1", "1").await?;
    let ticket = doc1
        .share(
            iroh_docs::api::protocol::ShareMode::Write,
            iroh_docs::api::protocol::AddrInfoOptions::RelayAndAddresses,
        )
        .await?;
    let doc2 = i2.docs.import(ticket.clone()).await?;
    let a2 = i2.docs.author_default().await?;
    doc2.set_bytes(a2, "from/i2", "2").await?;
    let mut e1 = Box::pin(doc1.subscribe().await?);
    let mut e2 = Box::pin(doc2.subscribe().await?);
    let (sdoc, mut es) = s
        .docs
        .import_and_subscribe(sheaf_tokio::DocTicket::from_str(&ticket.to_string())?)
        .await?;
    sdoc.set_bytes(s.docs.author_default(), "from/sheaf", "3")
        .await?;
    until(&mut es, "Sheaf to hold all three entries", async || {
        Ok(sheaf_entries(&sdoc).await?.len() == 3)
    })
    .await?;
    let all = sheaf_entries(&sdoc).await?;
    until(&mut e1, "iroh-docs 1 to converge", async || {
        Ok(iroh_entries(&doc1).await? == all)
    })
    .await?;
    until(&mut e2, "iroh-docs 2 to converge", async || {
        Ok(iroh_entries(&doc2).await? == all)
    })
    .await?;
    i1.router.shutdown().await?;
    i2.router.shutdown().await?;
    s.shutdown().await
}

/// Sync v2 in a mixed swarm: two Sheaf nodes reconcile over v2, a Sheaf node's v2 dial to an
/// iroh-docs node is answered with v1, and all three converge, live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sheaf_v2_and_iroh_docs_v1_converge() -> Result<()> {
    let i = IrohNode::spawn_on(endpoint().await?).await?;
    let s1 = memory_node().await?;
    let s2 = memory_node().await?;
    let idoc = i.docs.create().await?;
    let ia = i.docs.author_default().await?;
    idoc.set_bytes(ia, "from/iroh", "1").await?;
    let ticket = idoc
        .share(
            iroh_docs::api::protocol::ShareMode::Write,
            iroh_docs::api::protocol::AddrInfoOptions::RelayAndAddresses,
        )
        .await?;
    let ticket = sheaf_tokio::DocTicket::from_str(&ticket.to_string())?;
    // s1 joins the iroh-docs node's swarm (v1, live); s2 holds the document alone.
    let (d1, mut e1) = s1.docs.import_and_subscribe(ticket.clone()).await?;
    d1.set_bytes(s1.docs.author_default(), "from/s1", "2")
        .await?;
    until(&mut e1, "s1 to hold the iroh-docs entry", async || {
        Ok(sheaf_entries(&d1).await?.len() == 2)
    })
    .await?;
    let d2 = s2.docs.import_namespace(ticket.capability.clone()).await?;
    d2.set_bytes(s2.docs.author_default(), "from/s2", "3")
        .await?;
    d2.start_sync(vec![]).await?;
    let mut e2 = d2.subscribe().await?;

    // Sheaf to Sheaf: v2, both ways in one round.
    let report = tokio::time::timeout(TIMEOUT, s2.docs.sync_all(s1.addr())).await??;
    anyhow::ensure!(
        report.protocol == sheaf_tokio::SyncProtocol::V2,
        "{report:?}"
    );
    anyhow::ensure!(report.differing == 1, "{report:?}");
    anyhow::ensure!(
        sheaf_entries(&d2).await? == sheaf_entries(&d1).await?,
        "s1 and s2 differ"
    );
    // Sheaf to iroh-docs: the v2 dial is answered with v1.
    let iroh_addr = i.router.endpoint().addr();
    s2.learn_addr(iroh_addr.clone())?;
    let report = tokio::time::timeout(TIMEOUT, s2.docs.sync_all(iroh_addr)).await??;
    anyhow::ensure!(
        report.protocol == sheaf_tokio::SyncProtocol::V1,
        "{report:?}"
    );
    let mut ie = Box::pin(idoc.subscribe().await?);
    until(&mut ie, "iroh-docs to hold all three entries", async || {
        Ok(iroh_entries(&idoc).await?.len() == 3)
    })
    .await?;
    let all = iroh_entries(&idoc).await?;
    until(&mut e2, "s2 to converge", async || {
        Ok(sheaf_entries(&d2).await? == all)
    })
    .await?;
    // Live: a write on iroh-docs reaches the Sheaf node that joined its swarm over v1.
    idoc.set_bytes(ia, "live/iroh", "4").await?;
    until(&mut e1, "s1 to get the live write", async || {
        Ok(sheaf_entries(&d1).await?.len() == 4)
    })
    .await?;
    i.router.shutdown().await?;
    s1.shutdown().await?;
    s2.shutdown().await
}
