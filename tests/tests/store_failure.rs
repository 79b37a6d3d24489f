//! A node whose store thread fails: document calls return `ReplicaError::Stopped`, syncs with
//! it end at once instead of waiting for their idle timeout, the failure shows in the metrics,
//! and the node still shuts down.

mod util;

use anyhow::{Context, Result};
use sheaf_core::replica::ReplicaError;
use sheaf_tokio::{AddrInfoOptions, DocsError, LiveEvent, ShareMode};
use util::{fragile::Fragile, memory_node, spawn, sync_ok, wait_for, NodeOpts};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_store_thread_answers_with_errors_and_ends_syncs() -> Result<()> {
    let fragile = Fragile::default();
    let a = spawn(NodeOpts {
        fragile: Some(fragile.clone()),
        ..Default::default()
    })
    .await?;
    let b = memory_node().await?;
    let doc_a = a.docs.create().await?;
    let author_a = a.docs.author_default();
    doc_a.set_bytes(author_a, "k", "v").await?;
    let ticket = doc_a
        .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
        .await?;
    let (doc_b, mut events_b) = b.docs.import_and_subscribe(ticket).await?;
    let a_id = a.peer();
    wait_for(&mut events_b, |e| sync_ok(e, a_id)).await?;

    // The store thread panics inside the next write.
    fragile.arm();
    let err = doc_a
        .set_bytes(author_a, "boom", "v")
        .await
        .expect_err("a write on a broken store");
    assert!(
        matches!(err, DocsError::Store(ReplicaError::Stopped)),
        "{err:?}"
    );
    // Every later call fails at once, with the same typed error.
    let err = doc_a
        .get_exact(author_a, "k", false)
        .await
        .expect_err("a read on a stopped store");
    assert!(
        matches!(err, DocsError::Store(ReplicaError::Stopped)),
        "{err:?}"
    );

    // b syncs with a: a's session needs the store, gets `Stopped` and ends the session; b
    // sees the sync fail well before any idle timeout.
    doc_b.start_sync(vec![a.addr()]).await?;
    let seen = wait_for(
        &mut events_b,
        |e| matches!(e, LiveEvent::SyncFinished(s) if s.peer == a_id && s.result.is_err()),
    )
    .await
    .context("b's sync with the node whose store stopped")?;
    println!("b saw: {:?}", seen.last());

    let metrics = a.docs.metrics().clone();
    a.shutdown().await?;
    assert_eq!(metrics.store_stopped.get(), 1);
    b.shutdown().await?;
    Ok(())
}
