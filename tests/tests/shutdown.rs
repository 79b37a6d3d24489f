//! Shutdown is bounded whatever the number of documents, sessions and peers.
//!
//! A node that syncs many documents with a live peer must stop within a few seconds: the
//! peer keeps dialing it (anti-entropy, gossip reports) while it shuts down, and every
//! write made before the shutdown must be there after a restart.

mod util;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sheaf_tokio::{AddrInfoOptions, LiveConfig, ShareMode};
use util::{spawn, NodeOpts};

/// What a shutdown may take, whatever the load. Generous for a loaded CI machine; a hang
/// exceeds it by far.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(20);

/// Documents shared between the two nodes.
const DOCS: usize = 1_000;
/// Documents created and joined at once.
const JOIN_BATCH: usize = 25;

fn busy_live() -> LiveConfig {
    // Re-sync every document with every peer often, so the peer keeps dialing during the
    // shutdown as a node with many documents does.
    LiveConfig {
        anti_entropy_interval: Some(Duration::from_secs(5)),
        ..LiveConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_1000_documents_and_a_live_peer_shuts_down_in_bounded_time() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let a = spawn(NodeOpts {
        live: Some(busy_live()),
        ..Default::default()
    })
    .await?;
    let b_opts = NodeOpts {
        dir: Some(dir.path().to_path_buf()),
        live: Some(busy_live()),
        ..Default::default()
    };
    let b = spawn(b_opts.clone()).await?;
    // Documents are created and joined a few at a time, as an application would.
    let a_docs = a.docs.clone();
    let b_docs = b.docs.clone();
    let mut ids = Vec::with_capacity(DOCS);
    for batch in (0..DOCS).collect::<Vec<_>>().chunks(JOIN_BATCH) {
        let mut tasks = Vec::new();
        for &i in batch {
            let (a_docs, b_docs) = (a_docs.clone(), b_docs.clone());
            tasks.push(tokio::spawn(async move {
                let doc = a_docs.create().await?;
                doc.set_bytes(a_docs.author_default(), format!("k{i}"), format!("v{i}"))
                    .await?;
                let ticket = doc
                    .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
                    .await?;
                let joined = b_docs.import(ticket).await?;
                joined
                    .set_bytes(b_docs.author_default(), format!("b{i}"), format!("w{i}"))
                    .await?;
                anyhow::Ok(doc.id())
            }));
        }
        for task in tasks {
            ids.push(task.await??);
        }
    }
    let author_b = b.docs.author_default();
    let started = Instant::now();
    tokio::time::timeout(SHUTDOWN_BOUND, b.shutdown())
        .await
        .with_context(|| format!("shutdown did not finish within {SHUTDOWN_BOUND:?}"))??;
    let took = started.elapsed();
    println!("shutdown with {DOCS} documents took {took:?}");

    // Every write made before the shutdown is there after a restart.
    let b = spawn(b_opts).await?;
    for (i, id) in ids.iter().enumerate() {
        let doc = b.docs.open(*id).await?;
        let entry = doc
            .get_exact(author_b, format!("b{i}"), false)
            .await?
            .with_context(|| format!("write {i} lost"))?;
        assert_eq!(entry.content_len(), format!("w{i}").len() as u64);
    }
    tokio::time::timeout(SHUTDOWN_BOUND, b.shutdown()).await??;
    tokio::time::timeout(SHUTDOWN_BOUND, a.shutdown()).await??;
    Ok(())
}
