//! The store on a backend of the caller's choice: a node whose store runs on `MemBackend`
//! (through `Docs::with_backend`) syncs with a node on the default redb backend, both ways,
//! and the backend conformance suite runs from outside `sheaf-core` as a third-party
//! backend's tests would.

mod util;

use anyhow::Result;
use sheaf_tokio::{AddrInfoOptions, LiveEvent, Query, ShareMode};
use util::{memory_node, spawn, wait_for, NodeOpts};

// The conformance suite, as a backend in another crate runs it (feature `test-utils`).
sheaf_core::conformance_suite!(mem_backend_conformance, sheaf_core::store::MemBackend::new);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_mem_backend_syncs_with_a_node_on_redb() -> Result<()> {
    let on_mem = spawn(NodeOpts {
        mem_backend: true,
        ..Default::default()
    })
    .await?;
    let on_redb = memory_node().await?;

    // Local API on the custom backend: authors, writes, reads, queries.
    let a0 = on_mem.docs.author_default();
    let doc0 = on_mem.docs.create().await?;
    doc0.set_bytes(a0, "k1", "v1").await?;
    doc0.set_bytes(a0, "k2", "v2").await?;
    doc0.del(a0, "k2").await?;
    assert_eq!(doc0.get_many(Query::all()).await?.len(), 1);
    assert!(on_mem.docs.author_list().await?.contains(&a0));

    // Sync to the redb node, then a live write back.
    let ticket = doc0
        .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
        .await?;
    let mut ev0 = doc0.subscribe().await?;
    let (doc1, mut ev1) = on_redb.docs.import_and_subscribe(ticket).await?;
    wait_for(
        &mut ev1,
        |e| matches!(e, LiveEvent::SyncFinished(s) if s.result.is_ok()),
    )
    .await?;
    let got = doc1.get_exact(a0, "k1", false).await?.expect("synced");
    assert_eq!(got.key(), b"k1");
    assert_eq!(doc1.get_many(Query::all()).await?.len(), 1);

    wait_for(&mut ev0, |e| matches!(e, LiveEvent::NeighborUp(_))).await?;
    let a1 = on_redb.docs.author_default();
    doc1.set_bytes(a1, "k3", "v3").await?;
    wait_for(
        &mut ev0,
        |e| matches!(e, LiveEvent::InsertRemote { entry, .. } if entry.key() == b"k3"),
    )
    .await?;
    assert_eq!(doc0.get_many(Query::all()).await?.len(), 2);

    on_redb.shutdown().await?;
    on_mem.shutdown().await?;
    Ok(())
}
