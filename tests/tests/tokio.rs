//! Sheaf nodes on tokio over real iroh endpoints on loopback.

mod util;

use anyhow::Result;
use sheaf_tokio::{AddrInfoOptions, LiveEvent, Query, ShareMode};
use util::{memory_node, v1_node, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_simple_and_live_updates() -> Result<()> {
    let n0 = memory_node().await?;
    let n1 = memory_node().await?;
    let a0 = n0.docs.author_default();
    let doc0 = n0.docs.create().await?;
    let h1 = doc0.set_bytes(a0, "k1", "v1").await?;
    let ticket = doc0
        .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
        .await?;
    let mut ev0 = doc0.subscribe().await?;

    let (doc1, mut ev1) = n1.docs.import_and_subscribe(ticket).await?;
    let seen = wait_for(
        &mut ev1,
        |e| matches!(e, LiveEvent::ContentReady { hash } if *hash == h1),
    )
    .await?;
    assert!(
        seen.iter()
            .any(|e| matches!(e, LiveEvent::InsertRemote { entry, .. } if entry.key() == b"k1")),
        "{seen:?}"
    );
    let synced = |e: &LiveEvent| matches!(e, LiveEvent::SyncFinished(s) if s.result.is_ok());
    if !seen.iter().any(synced) {
        wait_for(&mut ev1, synced).await?;
    }
    let got = doc1.get_exact(a0, "k1", false).await?.expect("synced");
    assert_eq!(got.content_hash(), h1);
    let bytes = n1
        .blobs
        .blobs()
        .get_bytes(iroh_blobs::Hash::from_bytes(h1.to_bytes()))
        .await?;
    assert_eq!(&bytes[..], b"v1");
    // Unlike iroh-docs, entries received through reconciliation are counted.
    let m = n1.docs.metrics();
    assert!(m.sync_entries_received.get() >= 1);
    assert!(m.new_entries_remote.get() >= 1);

    // Live: a write on node 1 reaches node 0 once they are gossip neighbours.
    wait_for(&mut ev0, |e| matches!(e, LiveEvent::NeighborUp(_))).await?;
    let a1 = n1.docs.author_default();
    let h2 = doc1.set_bytes(a1, "k2", "v2").await?;
    wait_for(
        &mut ev0,
        |e| matches!(e, LiveEvent::InsertRemote { entry, .. } if entry.key() == b"k2"),
    )
    .await?;
    wait_for(
        &mut ev0,
        |e| matches!(e, LiveEvent::ContentReady { hash } if *hash == h2),
    )
    .await?;
    assert_eq!(doc0.get_many(Query::all()).await?.len(), 2);

    n1.shutdown().await?;
    n0.shutdown().await?;
    Ok(())
}

/// `set_many` writes what one `set_bytes` per pair writes, in batches, with the content in
/// the blob store; a peer syncs all of it with its content. A key twice in a batch refuses
/// that batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_many_writes_batches_that_sync_with_their_content() -> Result<()> {
    const N: usize = 2_500; // three batches of at most 1,024
                            // v1 nodes: the checks ahead asserted below are v1's (v2 checks each ≤ 64 KiB frame as
                            // it arrives, on the store thread).
    let n0 = v1_node().await?;
    let n1 = v1_node().await?;
    let a0 = n0.docs.author_default();
    let doc0 = n0.docs.create().await?;
    let pairs: Vec<(String, String)> = (0..N)
        .map(|i| (format!("k/{i:05}"), format!("value {i}")))
        .collect();
    let out = doc0.set_many(a0, pairs.clone()).await?;
    assert_eq!(out.len(), N);
    for ((_, value), hash) in pairs.iter().zip(&out) {
        let hash = hash.expect("written");
        assert_eq!(hash, sheaf_tokio::Hash::new(value.as_bytes()));
        assert_eq!(&n0.blob(hash).await?[..], value.as_bytes());
    }
    let ours = doc0.get_many(Query::all()).await?;
    assert_eq!(ours.len(), N);
    for (e, (key, value)) in ours.iter().zip(&pairs) {
        assert_eq!(e.key(), key.as_bytes());
        assert_eq!(e.author(), a0);
        assert_eq!(e.content_len(), value.len() as u64);
    }

    let err = doc0
        .set_many(a0, [("dup", "1"), ("other", "2"), ("dup", "3")])
        .await
        .expect_err("a key twice in one batch");
    assert!(err.to_string().contains("more than once"), "{err}");
    assert!(doc0.get_exact(a0, "other", false).await?.is_none());

    let ticket = doc0
        .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
        .await?;
    let (doc1, mut ev1) = n1.docs.import_and_subscribe(ticket).await?;
    let from = n0.peer();
    let ready = |e: &LiveEvent| matches!(e, LiveEvent::ContentReady { .. });
    let seen = wait_for(&mut ev1, |e| util::sync_ok(e, from)).await?;
    assert_eq!(doc1.get_many(Query::all()).await?, ours);
    if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
        // Chunks of checks ran on other threads while the store inserted, and the store
        // took more than the first chunk's (all of them when one message carries the
        // document, as here; a concurrent second session may carry some instead).
        let ahead = n1.docs.metrics().signatures_checked_ahead.get();
        assert!(
            ahead > 1024 && ahead <= N as u64,
            "{ahead} of {N} new entries checked ahead"
        );
    }
    // One `ContentReady` per blob, unless the subscriber lagged (2,500 inserts and as many
    // downloads overflow its channel when this task is slow): events are then dropped by
    // design, and the blob store is the judge.
    let mut count = seen.iter().filter(|e| ready(e)).count();
    let mut check_store = seen.iter().any(|e| matches!(e, LiveEvent::Lagged { .. }));
    let deadline = tokio::time::Instant::now() + util::TIMEOUT;
    while count < N {
        if check_store && all_present(&n1, &out).await? {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{count} of {N} contents ready"
        );
        match tokio::time::timeout(std::time::Duration::from_secs(5), ev1.recv()).await {
            Ok(Some(e)) if ready(&e) => count += 1,
            // Dropped events are announced before the next one that fits; the last ones
            // dropped are not: a quiet channel is checked against the store too.
            Ok(Some(LiveEvent::Lagged { .. } | LiveEvent::PendingContentReady)) | Err(_) => {
                check_store |= count < N;
            }
            Ok(Some(_)) => {}
            Ok(None) => anyhow::bail!("the event stream ended"),
        }
    }
    anyhow::ensure!(all_present(&n1, &out).await?, "every content synced");
    // The content came in batches of several blobs per request.
    let metrics = n1.docs.metrics();
    let (batches, batched) = (
        metrics.download_batches.get(),
        metrics.downloads_batched.get(),
    );
    assert!(batches > 0, "no batch request");
    assert!(
        batched >= 2 * batches && batched <= N as u64,
        "{batched} blobs in {batches} batch requests"
    );
    n1.shutdown().await?;
    n0.shutdown().await?;
    Ok(())
}

/// A sync of many entries to an empty node: their signatures are checked on every core
/// before the store takes them, and the result is exactly the sender's document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_sync_checks_signatures_ahead_on_all_cores() -> Result<()> {
    const N: usize = 300;
    // v1 nodes: checking ahead is v1's (one large message; v2 checks each ≤ 64 KiB frame as
    // it arrives).
    let n0 = v1_node().await?;
    let n1 = v1_node().await?;
    let a0 = n0.docs.author_default();
    let doc0 = n0.docs.create().await?;
    for i in 0..N {
        doc0.set_bytes(a0, format!("k/{i:04}"), format!("v{i}"))
            .await?;
    }
    let ticket = doc0
        .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
        .await?;
    let (doc1, mut ev1) = n1.docs.import_and_subscribe(ticket).await?;
    let from = n0.peer();
    wait_for(&mut ev1, |e| util::sync_ok(e, from)).await?;
    let ours = doc0.get_many(Query::all()).await?;
    let theirs = doc1.get_many(Query::all()).await?;
    assert_eq!(ours.len(), N);
    assert_eq!(theirs, ours);
    let ahead = n1.docs.metrics().signatures_checked_ahead.get();
    if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
        assert!(
            ahead > 0 && ahead <= N as u64,
            "{ahead} entries checked ahead"
        );
    } else {
        assert_eq!(ahead, 0, "one core: checked in the store as they come");
    }
    n1.shutdown().await?;
    n0.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_and_export_files_with_progress() -> Result<()> {
    let n0 = memory_node().await?;
    let n1 = memory_node().await?;
    let dir = tempfile::tempdir()?;
    let source = dir.path().join("in.bin");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&source, &data)?;
    let doc0 = n0.docs.create().await?;
    let author = n0.docs.author_default();
    let mut sizes = Vec::new();
    let (hash, size) = doc0
        .import_file(author, "files/in.bin", &source, |p| {
            if let sheaf_tokio::FileProgress::Size(n) = p {
                sizes.push(n)
            }
        })
        .await?;
    assert_eq!(size, data.len() as u64);
    assert_eq!(sizes, vec![data.len() as u64], "the size is reported once");
    assert_eq!(hash, sheaf_tokio::Hash::new(&data));

    // Another node syncs the entry and its content, then exports it.
    let ticket = doc0
        .share(ShareMode::Read, AddrInfoOptions::RelayAndAddresses)
        .await?;
    let (doc1, mut ev1) = n1.docs.import_and_subscribe(ticket).await?;
    wait_for(
        &mut ev1,
        |e| matches!(e, LiveEvent::ContentReady { hash: h } if *h == hash),
    )
    .await?;
    let entry = doc1
        .get_exact(author, "files/in.bin", false)
        .await?
        .expect("synced");
    let target = dir.path().join("out.bin");
    let written = doc1.export_file(&entry, &target, |_| {}).await?;
    assert_eq!(written, data.len() as u64);
    assert_eq!(std::fs::read(&target)?, data);
    n1.shutdown().await?;
    n0.shutdown().await?;
    Ok(())
}

/// More API callers at once than the store queue admits (1,024): the rest wait for a slot,
/// and every call is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_concurrent_api_calls_than_store_slots_all_answer() -> Result<()> {
    const CALLS: usize = 3_000;
    let n0 = memory_node().await?;
    let a0 = n0.docs.author_default();
    let doc = n0.docs.create().await?;
    doc.set_bytes(a0, "k", "v").await?;
    let calls: Vec<_> = (0..CALLS)
        .map(|_| {
            let doc = doc.clone();
            tokio::spawn(async move { doc.get_exact(a0, "k", false).await })
        })
        .collect();
    let all = async {
        let mut found = 0;
        for call in calls {
            found += usize::from(call.await??.is_some());
        }
        anyhow::Ok(found)
    };
    let found = tokio::time::timeout(util::TIMEOUT, all).await??;
    assert_eq!(found, CALLS);
    n0.shutdown().await?;
    Ok(())
}

/// Whether `node` holds the content of every written hash.
async fn all_present(node: &util::Node, hashes: &[Option<sheaf_tokio::Hash>]) -> Result<bool> {
    for hash in hashes.iter().flatten() {
        if !node.has_blob(*hash).await? {
            return Ok(false);
        }
    }
    Ok(true)
}
