//! iroh-docs' `tests/sync.rs` and `tests/client.rs` scenarios (reference §5.5) on Sheaf nodes:
//! real iroh endpoints on 127.0.0.1 with `presets::Minimal`, Routers serving docs, blobs and
//! gossip. Every wait is on events or on a condition, bounded by [`util::TIMEOUT`].
//!
//! Scenarios that make sense for both run on memory nodes (`*_mem`) and on persistent nodes
//! (`*_fs`: documents in redb files, blobs in an iroh-blobs file store, in a temp dir).
//!
//! Where iroh-docs asserts an exact event sequence, these tests use its
//! `assert_next_unordered_with_optionals` form: the required events must all arrive, and the
//! only other events allowed are the listed optional ones (an extra sync when a gossip
//! neighbour shows up after the ticket's sync finished, and its `PendingContentReady`).

#[path = "../util/mod.rs"]
mod util;

use std::{collections::BTreeSet, path::PathBuf, time::Instant};

use anyhow::{Context, Result};
use sheaf_tokio::{
    AddrInfoOptions, Author, AuthorId, ContentStatus, Doc, DocsError, DownloadPolicy, FilterKind,
    Hash, LiveEvent, Query, ShareMode,
};
use util::{
    assert_next_unordered, spawn, sync_ok, wait_for, wait_for_count, Matcher, Node, NodeOpts,
};

/// Where a test's nodes keep their data.
struct Fixture {
    dir: Option<tempfile::TempDir>,
    next: usize,
}

impl Fixture {
    fn memory() -> Self {
        Self { dir: None, next: 0 }
    }

    fn persistent() -> Result<Self> {
        Ok(Self {
            dir: Some(tempfile::tempdir()?),
            next: 0,
        })
    }

    /// The data directory of the next node (`None` for memory nodes).
    fn next_dir(&mut self) -> Option<PathBuf> {
        let dir = self
            .dir
            .as_ref()
            .map(|d| d.path().join(format!("node{}", self.next)));
        self.next += 1;
        dir
    }

    async fn node(&mut self) -> Result<Node> {
        let dir = self.next_dir();
        spawn(NodeOpts {
            dir,
            ..Default::default()
        })
        .await
    }
}

/// One `#[tokio::test]` on memory nodes and one on persistent nodes, sharing a body.
macro_rules! mem_and_fs {
    ($body:ident, $mem:ident, $fs:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $mem() -> Result<()> {
            $body(Fixture::memory()).await
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $fs() -> Result<()> {
            $body(Fixture::persistent()?).await
        }
    };
}

fn sync_with(peer: sheaf_tokio::PeerId) -> Matcher {
    Box::new(move |e| sync_ok(e, peer))
}

/// Optional events of a join: the ticket's sync may finish before the peers become gossip
/// neighbours, and then each side's `NewNeighbor` dial can run one more sync (iroh-docs
/// allows the same in `sync_full_basic`); a dial requested while a sync with the same peer
/// runs becomes a `Resync` after it. Each sync may be followed by `PendingContentReady`.
fn extra_syncs(peer: sheaf_tokio::PeerId) -> Vec<Matcher> {
    let mut optional = Vec::new();
    for _ in 0..3 {
        optional.push(sync_with(peer));
        optional.push(ev!(LiveEvent::PendingContentReady));
    }
    optional
}

/// iroh-docs' `assert_latest`: the newest entry at `key` points to `value` in the node's blobs.
async fn assert_latest(node: &Node, doc: &Doc, key: &[u8], value: &[u8]) -> Result<()> {
    let entry = doc
        .get_one(Query::single_latest_per_key().with_key_exact(key.to_vec()))
        .await?
        .with_context(|| format!("no entry at {:?}", String::from_utf8_lossy(key)))?;
    let content = node.blob(entry.content_hash()).await?;
    assert_eq!(&content[..], value, "content at {key:?}");
    Ok(())
}

/// (author, key, content hash) of every entry.
async fn rows(doc: &Doc) -> Result<BTreeSet<(AuthorId, Vec<u8>, Hash)>> {
    Ok(doc
        .get_many(Query::all())
        .await?
        .into_iter()
        .map(|e| (e.author(), e.key().to_vec(), e.content_hash()))
        .collect())
}

fn wall_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

// ---- sync_simple ---------------------------------------------------------------------------

mem_and_fs!(sync_simple, sync_simple_mem, sync_simple_fs);

/// A node imports another's ticket and gets its entry, content and the expected events.
async fn sync_simple(mut f: Fixture) -> Result<()> {
    let n0 = f.node().await?;
    let n1 = f.node().await?;
    let (p0, p1) = (n0.peer(), n1.peer());

    let author0 = n0.docs.author_create().await?;
    let doc0 = n0.docs.create().await?;
    let hash0 = doc0.set_bytes(author0, "k1", "v1").await?;
    assert_latest(&n0, &doc0, b"k1", b"v1").await?;
    let ticket = doc0
        .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
        .await?;
    let mut events0 = doc0.subscribe().await?;

    let (doc1, mut events1) = n1.docs.import_and_subscribe(ticket).await?;
    assert_next_unordered(
        &mut events1,
        vec![
            ev!(LiveEvent::NeighborUp(p) if *p == p0),
            ev!(LiveEvent::InsertRemote { from, entry, .. } if *from == p0 && entry.key() == b"k1"),
            sync_with(p0),
            ev!(LiveEvent::ContentReady { hash } if *hash == hash0),
            ev!(LiveEvent::PendingContentReady),
        ],
        extra_syncs(p0),
    )
    .await
    .context("node1 events")?;
    assert_latest(&n1, &doc1, b"k1", b"v1").await?;

    assert_next_unordered(
        &mut events0,
        vec![
            ev!(LiveEvent::NeighborUp(p) if *p == p1),
            sync_with(p1),
            ev!(LiveEvent::PendingContentReady),
        ],
        extra_syncs(p1),
    )
    .await
    .context("node0 events")?;

    n1.shutdown().await?;
    n0.shutdown().await
}

// ---- sync_subscribe_no_sync ----------------------------------------------------------------

mem_and_fs!(
    sync_subscribe_no_sync,
    sync_subscribe_no_sync_mem,
    sync_subscribe_no_sync_fs
);

/// Subscribing to a document that does not sync still reports local writes.
async fn sync_subscribe_no_sync(mut f: Fixture) -> Result<()> {
    let node = f.node().await?;
    let doc = node.docs.create().await?;
    let mut sub = doc.subscribe().await?;
    let author = node.docs.author_create().await?;
    let hash = doc.set_bytes(author, "k", "v").await?;
    util::assert_next(
        &mut sub,
        vec![ev!(LiveEvent::InsertLocal { entry }
            if entry.key() == b"k" && entry.content_hash() == hash && entry.author() == author)],
    )
    .await?;
    node.shutdown().await
}

// ---- sync_gossip_bulk ----------------------------------------------------------------------

mem_and_fs!(sync_gossip_bulk, sync_gossip_bulk_mem, sync_gossip_bulk_fs);

/// 100 entries arrive by the initial sync, then 100 more live over gossip.
async fn sync_gossip_bulk(mut f: Fixture) -> Result<()> {
    const N: usize = 100;
    let n0 = f.node().await?;
    let n1 = f.node().await?;
    let (p0, p1) = (n0.peer(), n1.peer());

    let author0 = n0.docs.author_create().await?;
    let doc0 = n0.docs.create().await?;
    let mut ticket = doc0
        .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
        .await?;
    // Import without peers: no sync yet.
    ticket.nodes.clear();
    let doc1 = n1.docs.import(ticket).await?;
    let mut events1 = doc1.subscribe().await?;
    let mut events0 = doc0.subscribe().await?;

    for i in 0..N {
        doc0.set_bytes(author0, format!("init/{i}"), "foo").await?;
    }
    let start = Instant::now();
    doc0.start_sync(vec![]).await?;
    doc1.start_sync(vec![n0.addr()]).await?;
    let seen = wait_for_count(
        &mut events1,
        N,
        |e| matches!(e, LiveEvent::InsertRemote { from, .. } if *from == p0),
    )
    .await
    .context("initial sync")?;
    println!("initial sync of {N} entries: {:?}", start.elapsed());

    // Live updates need gossip neighbours on both sides.
    if !seen
        .iter()
        .any(|e| matches!(e, LiveEvent::NeighborUp(p) if *p == p0))
    {
        wait_for(
            &mut events1,
            |e| matches!(e, LiveEvent::NeighborUp(p) if *p == p0),
        )
        .await?;
    }
    wait_for(
        &mut events0,
        |e| matches!(e, LiveEvent::NeighborUp(p) if *p == p1),
    )
    .await?;

    let start = Instant::now();
    let phase2 = wall_micros();
    for i in 0..N {
        doc0.set_bytes(author0, format!("gossip/{i}"), "foo")
            .await?;
    }
    let seen = wait_for_count(&mut events1, N, |e| {
        matches!(e, LiveEvent::InsertRemote { from, entry, .. }
            if *from == p0 && entry.key().starts_with(b"gossip/"))
    })
    .await
    .context("gossip")?;
    println!("gossip of {N} entries: {:?}", start.elapsed());
    // None of the live entries may have come twice or from elsewhere.
    let remote = seen
        .iter()
        .filter(|e| matches!(e, LiveEvent::InsertRemote { .. }))
        .count();
    assert_eq!(remote, N, "only the new entries arrive in phase 2");
    // They came over gossip: a sync started in this phase (a gossip neighbour's first sync)
    // may carry a few, not all.
    let by_sync: usize = seen
        .iter()
        .filter_map(|e| match e {
            LiveEvent::SyncFinished(s) if s.started_micros >= phase2 => {
                s.result.as_ref().ok().map(|d| d.entries_received)
            }
            _ => None,
        })
        .sum();
    println!("phase 2: {by_sync} entries received by sync");

    assert!(by_sync < N, "the live entries all came by sync, not gossip");
    assert_eq!(doc1.get_many(Query::all()).await?.len(), 2 * N);

    n1.shutdown().await?;
    n0.shutdown().await
}

// ---- sync_full_basic -----------------------------------------------------------------------

mem_and_fs!(sync_full_basic, sync_full_basic_mem, sync_full_basic_fs);

/// Three peers: initial sync, a gossiped entry, a third peer joining, everyone converging.
async fn sync_full_basic(mut f: Fixture) -> Result<()> {
    let n0 = f.node().await?;
    let n1 = f.node().await?;
    let (p0, p1) = (n0.peer(), n1.peer());

    // peer0: create a document with one entry.
    let author0 = n0.docs.author_create().await?;
    let doc0 = n0.docs.create().await?;
    let mut events0 = doc0.subscribe().await?;
    let hash0 = doc0.set_bytes(author0, "k1", "v1").await?;
    util::assert_next(
        &mut events0,
        vec![ev!(LiveEvent::InsertLocal { entry } if entry.content_hash() == hash0)],
    )
    .await?;
    assert_latest(&n0, &doc0, b"k1", b"v1").await?;
    let ticket = doc0
        .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
        .await?;

    // peer1 joins.
    let author1 = n1.docs.author_create().await?;
    let (doc1, mut events1) = n1.docs.import_and_subscribe(ticket.clone()).await?;
    assert_next_unordered(
        &mut events1,
        vec![
            ev!(LiveEvent::NeighborUp(p) if *p == p0),
            ev!(LiveEvent::InsertRemote { from, entry, .. }
                if *from == p0 && entry.content_hash() == hash0),
            sync_with(p0),
            ev!(LiveEvent::ContentReady { hash } if *hash == hash0),
            ev!(LiveEvent::PendingContentReady),
        ],
        extra_syncs(p0),
    )
    .await
    .context("peer1 joins: peer1's events")?;
    assert_next_unordered(
        &mut events0,
        vec![
            ev!(LiveEvent::NeighborUp(p) if *p == p1),
            sync_with(p1),
            ev!(LiveEvent::PendingContentReady),
        ],
        extra_syncs(p1),
    )
    .await
    .context("peer1 joins: peer0's events")?;

    // peer1 writes; the entry reaches peer0 over gossip, its content by download.
    let hash1 = doc1.set_bytes(author1, "k2", "v2").await?;
    assert_latest(&n1, &doc1, b"k2", b"v2").await?;
    assert_next_unordered(
        &mut events1,
        vec![ev!(LiveEvent::InsertLocal { entry } if entry.content_hash() == hash1)],
        extra_syncs(p0),
    )
    .await
    .context("peer1's local insert")?;
    assert_next_unordered(
        &mut events0,
        vec![
            ev!(LiveEvent::InsertRemote { from, content_status: ContentStatus::Missing, entry }
                if *from == p1 && entry.content_hash() == hash1),
            ev!(LiveEvent::ContentReady { hash } if *hash == hash1),
        ],
        extra_syncs(p1),
    )
    .await
    .context("peer0 receives the gossiped entry")?;
    assert_latest(&n0, &doc0, b"k2", b"v2").await?;

    // peer2 joins through peer0's ticket and meets peer1 through gossip.
    let n2 = f.node().await?;
    let p2 = n2.peer();
    let (doc2, mut events2) = n2.docs.import_and_subscribe(ticket).await?;
    assert_next_unordered(
        &mut events2,
        vec![
            ev!(LiveEvent::NeighborUp(p) if *p == p0),
            ev!(LiveEvent::NeighborUp(p) if *p == p1),
            sync_with(p0),
            sync_with(p1),
            ev!(LiveEvent::InsertRemote { entry, content_status: ContentStatus::Missing, .. }
                if entry.content_hash() == hash0),
            ev!(LiveEvent::InsertRemote { entry, content_status: ContentStatus::Missing, .. }
                if entry.content_hash() == hash1),
            ev!(LiveEvent::ContentReady { hash } if *hash == hash0),
            ev!(LiveEvent::ContentReady { hash } if *hash == hash1),
            ev!(LiveEvent::PendingContentReady),
        ],
        [p0, p1].into_iter().flat_map(extra_syncs).collect(),
    )
    .await
    .context("peer2's events")?;
    assert_latest(&n2, &doc2, b"k1", b"v1").await?;
    assert_latest(&n2, &doc2, b"k2", b"v2").await?;

    for (name, events) in [("peer0", &mut events0), ("peer1", &mut events1)] {
        assert_next_unordered(
            events,
            vec![
                ev!(LiveEvent::NeighborUp(p) if *p == p2),
                sync_with(p2),
                ev!(LiveEvent::PendingContentReady),
            ],
            // Leftovers of the earlier phases, too.
            [p2, p0, p1].into_iter().flat_map(extra_syncs).collect(),
        )
        .await
        .with_context(|| format!("{name} sees peer2"))?;
    }

    // Everyone holds the same entries and their content.
    let all = rows(&doc0).await?;
    assert_eq!(all.len(), 2);
    assert_eq!(rows(&doc1).await?, all);
    assert_eq!(rows(&doc2).await?, all);
    for node in [&n0, &n1, &n2] {
        assert!(node.has_blob(hash0).await? && node.has_blob(hash1).await?);
    }

    n2.shutdown().await?;
    n1.shutdown().await?;
    n0.shutdown().await
}

// ---- handles and status counters -----------------------------------------------------------

mem_and_fs!(sync_open_close, sync_open_close_mem, sync_open_close_fs);

/// Handles are counted; a closed handle refuses everything with `DocsError::Closed`, other
/// handles of the same document keep working (iroh-docs' `sync_open_close` and
/// `client.rs::test_doc_close`).
async fn sync_open_close(mut f: Fixture) -> Result<()> {
    let node = f.node().await?;
    let author = node.docs.author_default();
    let doc = node.docs.create().await?;
    assert_eq!(doc.status().await?.handles, 1);

    let doc2 = node.docs.open(doc.id()).await?;
    assert_eq!(doc2.status().await?.handles, 2);
    assert_eq!(doc.status().await?.handles, 2);

    doc.close().await?;
    assert!(matches!(doc.status().await, Err(DocsError::Closed)));
    assert!(matches!(
        doc.set_bytes(author, "foo", "bar").await,
        Err(DocsError::Closed)
    ));
    assert!(matches!(
        doc.get_exact(author, "foo", false).await,
        Err(DocsError::Closed)
    ));
    assert!(matches!(doc.subscribe().await, Err(DocsError::Closed)));
    assert!(matches!(doc.close().await, Err(DocsError::Closed)));
    // A clone shares the closed handle.
    assert!(matches!(doc.clone().status().await, Err(DocsError::Closed)));

    assert_eq!(doc2.status().await?.handles, 1);
    doc2.set_bytes(author, "foo", "bar").await?;
    assert!(doc2.get_exact(author, "foo", false).await?.is_some());

    // Closing the last handle closes the document; opening it again works.
    doc2.close().await?;
    let doc3 = node.docs.open(doc.id()).await?;
    assert_eq!(doc3.status().await?.handles, 1);
    assert!(doc3.get_exact(author, "foo", false).await?.is_some());
    node.shutdown().await
}

mem_and_fs!(
    sync_subscribe_stop_close,
    sync_subscribe_stop_close_mem,
    sync_subscribe_stop_close_fs
);

/// Status counters across start_sync / subscribe / leave.
///
/// Sheaf's `status().subscribers` counts *store* subscriptions, and `Live` holds exactly one
/// per document while the document syncs or has at least one API subscriber (see
/// `Live::update_store_subscription` in core/src/live/mod.rs). So it is 0 or 1, where
/// iroh-docs counts every `subscribe()` call on top of the live actor's own subscription:
///
/// | step                          | iroh-docs (h/sync/subs) | Sheaf (h/sync/subs) |
/// |-------------------------------|-------------------------|---------------------|
/// | create                        | 1 / false / 0           | 1 / false / 0       |
/// | start_sync                    | 2 / true / 1            | 2 / true / 1        |
/// | + subscribe()                 | 2 / true / 2            | 2 / true / 1        |
/// | drop it, next event           | 2 / true / 1            | 2 / true / 1        |
/// | leave                         | 1 / false / 0           | 1 / false / 0       |
async fn sync_subscribe_stop_close(mut f: Fixture) -> Result<()> {
    let node = f.node().await?;
    let doc = node.docs.create().await?;
    let author = node.docs.author_create().await?;

    let status = doc.status().await?;
    assert_eq!(
        (status.handles, status.sync, status.subscribers),
        (1, false, 0)
    );

    // Without sync, an API subscriber is what makes the store subscription exist, and a
    // dropped one is noticed on the next event.
    let sub = doc.subscribe().await?;
    assert_eq!(doc.status().await?.subscribers, 1);
    let sub2 = doc.subscribe().await?;
    assert_eq!(
        doc.status().await?.subscribers,
        1,
        "Sheaf: one shared store subscription"
    );
    drop(sub);
    drop(sub2);
    doc.set_bytes(author, "x", "x").await?;
    // The entry's event is in the live task's inbox when `set_bytes` returns; handling it
    // notices the dropped subscribers and queues the store unsubscription. A `leave` of the
    // unsynced document changes nothing but passes that inbox after the event, so the
    // unsubscription reaches the store before the `status` call that follows.
    doc.leave().await?;
    assert_eq!(doc.status().await?.subscribers, 0);

    doc.start_sync(vec![]).await?;
    let status = doc.status().await?;
    assert_eq!(
        (status.handles, status.sync, status.subscribers),
        (2, true, 1)
    );

    let sub = doc.subscribe().await?;
    let status = doc.status().await?;
    // iroh-docs: 2.
    assert_eq!(
        (status.handles, status.sync, status.subscribers),
        (2, true, 1)
    );
    drop(sub);
    doc.set_bytes(author, "y", "y").await?;
    let status = doc.status().await?;
    assert_eq!(
        (status.handles, status.sync, status.subscribers),
        (2, true, 1)
    );

    doc.leave().await?;
    let status = doc.status().await?;
    assert_eq!(
        (status.handles, status.sync, status.subscribers),
        (1, false, 0)
    );

    // Leaving keeps live subscribers: they still see local writes.
    let mut sub = doc.subscribe().await?;
    doc.start_sync(vec![]).await?;
    doc.leave().await?;
    assert_eq!(doc.status().await?.subscribers, 1);
    doc.set_bytes(author, "z", "z").await?;
    wait_for(
        &mut sub,
        |e| matches!(e, LiveEvent::InsertLocal { entry } if entry.key() == b"z"),
    )
    .await?;
    node.shutdown().await
}

// ---- restart of a persistent node ----------------------------------------------------------

/// A persistent node restarts with the same key and data directory: its entries, blobs and
/// default author survive, and `start_sync` without peers re-syncs with the stored useful
/// peer (iroh-docs' `sync_restart_node`, flaky there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_restart_node() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir1 = tmp.path().join("node1");
    let key1 = iroh::SecretKey::generate();
    let opts1 = NodeOpts {
        dir: Some(dir1.clone()),
        secret_key: Some(key1.clone()),
        ..Default::default()
    };

    let node1 = spawn(opts1.clone()).await?;
    let p1 = node1.peer();
    let default1 = node1.docs.author_default();
    let doc1 = node1.docs.create().await?;
    let mut events1 = doc1.subscribe().await?;
    let ticket = doc1
        .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
        .await?;
    let hash_x = doc1.set_bytes(default1, "n1/x", "x").await?;

    let node2 = util::memory_node().await?;
    let p2 = node2.peer();
    let author2 = node2.docs.author_create().await?;
    let doc2 = node2.docs.import(ticket).await?;
    let hash_a = doc2.set_bytes(author2, "n2/a", "a").await?;
    assert_latest(&node2, &doc2, b"n2/a", b"a").await?;

    assert_next_unordered(
        &mut events1,
        vec![
            ev!(LiveEvent::InsertLocal { entry } if entry.content_hash() == hash_x),
            ev!(LiveEvent::NeighborUp(p) if *p == p2),
            sync_with(p2),
            ev!(LiveEvent::InsertRemote { from, entry, .. }
                if *from == p2 && entry.content_hash() == hash_a),
            ev!(LiveEvent::ContentReady { hash } if *hash == hash_a),
            ev!(LiveEvent::PendingContentReady),
        ],
        extra_syncs(p2),
    )
    .await
    .context("node1 before the restart")?;
    assert_latest(&node1, &doc1, b"n2/a", b"a").await?;
    assert_eq!(doc1.get_sync_peers().await?, Some(vec![p2]));
    let before = rows(&doc1).await?;
    let doc_id = doc1.id();

    node1.shutdown().await?;
    drop((doc1, events1));

    // While node1 is down, node2 writes.
    let hash_b = doc2.set_bytes(author2, "n2/b", "b").await?;

    let node1 = spawn(opts1)
        .await
        .context("respawning the persistent node")?;
    assert_eq!(node1.peer(), p1);
    node1.learn_addr(node2.addr())?;
    assert_eq!(
        node1.docs.author_default(),
        default1,
        "default author survives"
    );
    assert!(node1.docs.author_export(default1).await?.is_some());
    let doc1 = node1.docs.open(doc_id).await?;
    assert_eq!(rows(&doc1).await?, before, "entries survive");
    assert_latest(&node1, &doc1, b"n1/x", b"x").await?;
    assert_latest(&node1, &doc1, b"n2/a", b"a").await?;
    assert_eq!(doc1.get_sync_peers().await?, Some(vec![p2]));

    // start_sync without peers syncs with the stored useful peer.
    let mut events1 = doc1.subscribe().await?;
    doc1.start_sync(vec![]).await?;
    assert_next_unordered(
        &mut events1,
        vec![
            ev!(LiveEvent::NeighborUp(p) if *p == p2),
            sync_with(p2),
            ev!(LiveEvent::InsertRemote { from, entry, .. }
                if *from == p2 && entry.content_hash() == hash_b),
            ev!(LiveEvent::ContentReady { hash } if *hash == hash_b),
        ],
        {
            let mut optional = extra_syncs(p2);
            optional.push(ev!(LiveEvent::PendingContentReady));
            optional
        },
    )
    .await
    .context("node1 re-syncs after the restart")?;
    assert_latest(&node1, &doc1, b"n2/b", b"b").await?;

    // And live updates flow again.
    let hash_c = doc2.set_bytes(author2, "n2/c", "c").await?;
    assert_next_unordered(
        &mut events1,
        vec![
            ev!(LiveEvent::InsertRemote { from, entry, .. }
                if *from == p2 && entry.content_hash() == hash_c),
            ev!(LiveEvent::ContentReady { hash } if *hash == hash_c),
        ],
        extra_syncs(p2),
    )
    .await
    .context("live update after the restart")?;
    assert_latest(&node1, &doc1, b"n2/c", b"c").await?;

    node1.shutdown().await?;
    node2.shutdown().await
}

// ---- download policies ---------------------------------------------------------------------

mod policies_and_authors;
