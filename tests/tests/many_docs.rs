//! Many documents shared by two nodes are all live: each gets its gossip neighbour.
//!
//! iroh-gossip keeps one QUIC stream per document open on a connection; with QUIC's default
//! limit of 100 streams a peer may open, two nodes got gossip neighbours on only about 100
//! of the documents they share (`sheaf::transport_config` raises the limit).

mod util;

use anyhow::{Context, Result};
use sheaf_tokio::{AddrInfoOptions, LiveEvent, ShareMode};
use util::{memory_node, wait_for};

/// Past QUIC's default of 100 streams per connection.
const DOCS: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shared_document_gets_its_gossip_neighbour() -> Result<()> {
    let a = memory_node().await?;
    let b = memory_node().await?;
    let a_id = a.peer();
    let mut joined = Vec::with_capacity(DOCS);
    for i in 0..DOCS {
        let doc = a.docs.create().await?;
        doc.set_bytes(a.docs.author_default(), format!("k{i}"), "v")
            .await?;
        let ticket = doc
            .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
            .await?;
        joined.push(b.docs.import_and_subscribe(ticket).await?);
    }
    for (i, (_, events)) in joined.iter_mut().enumerate() {
        wait_for(
            events,
            |e| matches!(e, LiveEvent::NeighborUp(p) if *p == a_id),
        )
        .await
        .with_context(|| format!("document {i} of {DOCS} has no gossip neighbour"))?;
    }
    // And live updates flow on the last one.
    let (doc_b, _) = joined.last().context("documents")?;
    let doc_a = a.docs.open(doc_b.id()).await?;
    let mut events_a = doc_a.subscribe().await?;
    doc_b
        .set_bytes(b.docs.author_default(), "live", "x")
        .await?;
    wait_for(
        &mut events_a,
        |e| matches!(e, LiveEvent::InsertRemote { entry, .. } if entry.key() == b"live"),
    )
    .await
    .context("a live write on the last document")?;
    b.shutdown().await?;
    a.shutdown().await?;
    Ok(())
}

/// A dropped event stream gives its queue back at once, also on a document without events:
/// an idle document keeps nothing for subscribers that are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_subscriptions_are_released_while_the_document_is_idle() -> Result<()> {
    let a = memory_node().await?;
    let open = || a.docs.metrics().subscriptions.get();
    let doc = a.docs.create().await?;
    let first = doc.subscribe().await?;
    let second = doc.subscribe().await?;
    let third = doc.subscribe().await?;
    assert_eq!(open(), 3);
    drop(first);
    drop(second);
    // The live task takes its inbox in order: this answer comes after the drops were seen.
    doc.sync_status().await?;
    assert_eq!(open(), 1, "two dropped subscriptions released");
    drop(third);
    doc.sync_status().await?;
    assert_eq!(open(), 0);
    a.shutdown().await
}
