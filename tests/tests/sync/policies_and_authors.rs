//! The second half of the scenarios: download policies, writes while joining, the many-node
//! swarm, authors and the default author, import/export and dropping documents. (Split from
//! `main.rs` to keep files short; the fixture and helpers live there.)

use super::*;

mem_and_fs!(
    test_download_policies,
    test_download_policies_mem,
    test_download_policies_fs
);

/// Two nodes with different download policies sync every entry but download only the
/// content their policy wants.
async fn test_download_policies(mut f: Fixture) -> Result<()> {
    let star_wars = [
        "star_wars/prequel/the_phantom_menace",
        "star_wars/prequel/attack_of_the_clones",
        "star_wars/prequel/revenge_of_the_sith",
        "star_wars/og/a_new_hope",
        "star_wars/og/the_empire_strikes_back",
        "star_wars/og/return_of_the_jedi",
    ];
    let lotr = [
        "lotr/fellowship_of_the_ring",
        "lotr/the_two_towers",
        "lotr/return_of_the_king",
    ];
    let policy_a = DownloadPolicy::NothingExcept(vec![FilterKind::Exact(
        "lotr/fellowship_of_the_ring".into(),
    )]);
    let policy_b =
        DownloadPolicy::EverythingExcept(vec![FilterKind::Prefix("star_wars/og".into())]);

    let a = f.node().await?;
    let b = f.node().await?;
    let doc_a = a.docs.create().await?;
    let author_a = a.docs.author_create().await?;
    let ticket = doc_a
        .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
        .await?;
    let doc_b = b.docs.import(ticket).await?;
    let author_b = b.docs.author_create().await?;
    doc_a.set_download_policy(policy_a.clone()).await?;
    doc_b.set_download_policy(policy_b.clone()).await?;
    assert_eq!(doc_a.get_download_policy().await?, policy_a);
    assert_eq!(doc_b.get_download_policy().await?, policy_b);
    let mut events_a = doc_a.subscribe().await?;
    let mut events_b = doc_b.subscribe().await?;

    let mut keys = std::collections::BTreeMap::new();
    for k in star_wars {
        keys.insert(doc_a.set_bytes(author_a, k, k).await?, k);
    }
    for k in lotr {
        keys.insert(doc_b.set_bytes(author_b, k, k).await?, k);
    }
    assert_eq!(keys.len(), 9);

    // Count synced entries and downloads on both sides until both are complete.
    #[derive(Default, Debug)]
    struct Seen {
        synced: usize,
        downloaded: Vec<&'static str>,
        /// Every event, for the failure message.
        log: Vec<String>,
    }
    let record = |seen: &mut Seen, e: LiveEvent| -> Result<()> {
        seen.log.push(match &e {
            LiveEvent::InsertRemote { entry, .. } => {
                format!("InsertRemote({})", String::from_utf8_lossy(entry.key()))
            }
            e => format!("{e:?}"),
        });
        match e {
            LiveEvent::InsertRemote {
                entry,
                content_status,
                ..
            } => {
                seen.synced += 1;
                if content_status == ContentStatus::Complete {
                    seen.downloaded.push(keys[&entry.content_hash()]);
                }
            }
            LiveEvent::ContentReady { hash } => {
                let key = keys
                    .get(&hash)
                    .context("ContentReady for an unknown hash")?;
                seen.downloaded.push(key);
            }
            LiveEvent::Lagged { missed } => anyhow::bail!("lagged by {missed}"),
            _ => {}
        }
        Ok(())
    };
    let (mut seen_a, mut seen_b) = (Seen::default(), Seen::default());
    tokio::time::timeout(util::TIMEOUT, async {
        while !(seen_a.synced >= 3
            && !seen_a.downloaded.is_empty()
            && seen_b.synced >= 6
            && seen_b.downloaded.len() >= 3)
        {
            tokio::select! {
                Some(e) = events_a.recv() => record(&mut seen_a, e)?,
                Some(e) = events_b.recv() => record(&mut seen_b, e)?,
                else => anyhow::bail!("event streams ended"),
            }
        }
        Ok(())
    })
    .await
    .with_context(|| format!("timed out: a {seen_a:#?}, b {seen_b:#?}"))??;

    assert_eq!(seen_a.synced, 3);
    assert_eq!(seen_a.downloaded, ["lotr/fellowship_of_the_ring"]);
    assert_eq!(seen_b.synced, 6);
    seen_b.downloaded.sort();
    assert_eq!(
        seen_b.downloaded,
        [
            "star_wars/prequel/attack_of_the_clones",
            "star_wars/prequel/revenge_of_the_sith",
            "star_wars/prequel/the_phantom_menace",
        ]
    );

    // Entries all synced, content only per policy: check the blob stores.
    assert_eq!(rows(&doc_a).await?.len(), 9);
    assert_eq!(rows(&doc_b).await?.len(), 9);
    for (hash, key) in &keys {
        let on_a = star_wars.contains(key) || *key == "lotr/fellowship_of_the_ring";
        let on_b = lotr.contains(key) || key.starts_with("star_wars/prequel/");
        assert_eq!(a.has_blob(*hash).await?, on_a, "node a, content of {key}");
        assert_eq!(b.has_blob(*hash).await?, on_b, "node b, content of {key}");
    }

    b.shutdown().await?;
    a.shutdown().await
}

// ---- writes while peers join ------------------------------------------------------------

mem_and_fs!(
    writes_while_joining,
    writes_while_joining_mem,
    writes_while_joining_fs
);

/// Entries written on both sides while the first sync runs and before the two nodes are gossip
/// neighbours must still reach the other side (the race behind iroh-docs' flaky
/// `test_download_policies`, iroh #2319: such a write is in neither the running
/// reconciliation nor any gossip broadcast).
async fn writes_while_joining(mut f: Fixture) -> Result<()> {
    const N: usize = 20;
    let a = f.node().await?;
    let b = f.node().await?;
    let doc_a = a.docs.create().await?;
    let author_a = a.docs.author_default();
    let author_b = b.docs.author_default();
    let ticket = doc_a
        .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
        .await?;
    let mut events_a = doc_a.subscribe().await?;
    let (doc_b, mut events_b) = b.docs.import_and_subscribe(ticket).await?;
    let write_a = async {
        for i in 0..N {
            doc_a.set_bytes(author_a, format!("a/{i}"), "a").await?;
        }
        anyhow::Ok(())
    };
    let write_b = async {
        for i in 0..N {
            doc_b.set_bytes(author_b, format!("b/{i}"), "b").await?;
        }
        anyhow::Ok(())
    };
    let (ra, rb) = futures_lite::future::zip(write_a, write_b).await;
    ra?;
    rb?;
    let remote = |e: &LiveEvent| matches!(e, LiveEvent::InsertRemote { .. });
    let (ra, rb) = futures_lite::future::zip(
        wait_for_count(&mut events_a, N, remote),
        wait_for_count(&mut events_b, N, remote),
    )
    .await;
    ra.context("node a: entries of b")?;
    rb.context("node b: entries of a")?;
    assert_eq!(rows(&doc_a).await?, rows(&doc_b).await?);
    b.shutdown().await?;
    a.shutdown().await
}

// ---- sync_big ------------------------------------------------------------------------------

/// Rounds of [`sync_big`] in one test run (iroh-docs marks its own flaky; ours must pass
/// every time).
const SYNC_BIG_ROUNDS: usize = 10;

/// Ten nodes that only know node0 converge to everyone's entries, through syncs with node0,
/// gossip neighbours and sync reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_big() -> Result<()> {
    let total = Instant::now();
    for round in 0..SYNC_BIG_ROUNDS {
        let start = Instant::now();
        sync_big_round(10)
            .await
            .with_context(|| format!("round {round}"))?;
        println!("sync_big round {round}: {:?}", start.elapsed());
    }
    println!(
        "sync_big: {SYNC_BIG_ROUNDS} rounds in {:?}",
        total.elapsed()
    );
    Ok(())
}

async fn sync_big_round(n_nodes: usize) -> Result<()> {
    let mut nodes = Vec::new();
    for _ in 0..n_nodes {
        nodes.push(util::memory_node().await?);
    }
    let mut authors = Vec::new();
    for node in &nodes {
        authors.push(node.docs.author_create().await?);
    }
    let doc0 = nodes[0].docs.create().await?;
    let mut ticket = doc0
        .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
        .await?;
    ticket.nodes.clear();
    let mut docs = vec![doc0];
    for node in &nodes[1..] {
        docs.push(node.docs.import(ticket.clone()).await?);
    }

    // One entry per node.
    let mut expected = BTreeSet::new();
    for (i, doc) in docs.iter().enumerate() {
        let key = format!("init/{}/0", nodes[i].peer().fmt_short());
        let value = format!("init:{i}:0");
        doc.set_bytes(authors[i], key.clone(), value.clone())
            .await?;
        expected.insert((authors[i], key.into_bytes(), Hash::new(value)));
    }
    for (i, doc) in docs.iter().enumerate() {
        let own: BTreeSet<_> = expected
            .iter()
            .filter(|(a, _, _)| *a == authors[i])
            .cloned()
            .collect();
        assert_eq!(rows(doc).await?, own, "node {i} before syncing");
    }

    let mut events = Vec::new();
    for doc in &docs {
        events.push(doc.subscribe().await?);
    }
    let addr0 = nodes[0].addr();
    for doc in &docs[1..] {
        doc.start_sync(vec![addr0.clone()]).await?;
    }

    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut events) in events.into_iter().enumerate() {
        let doc = docs[i].clone();
        let expected = expected.clone();
        tasks.spawn(async move {
            wait_for_count(&mut events, n_nodes - 1, |e| {
                matches!(e, LiveEvent::InsertRemote { .. })
            })
            .await
            .with_context(|| format!("node {i}"))?;
            let have = rows(&doc).await?;
            anyhow::ensure!(
                have == expected,
                "node {i} has {} entries, expected {}",
                have.len(),
                expected.len()
            );
            Ok(())
        });
    }
    while let Some(res) = tasks.join_next().await {
        res??;
    }
    for (i, doc) in docs.iter().enumerate() {
        assert_eq!(rows(doc).await?, expected, "node {i} after syncing");
    }
    // Shut down together: a node closing alone waits for the close of connections to
    // peers that are already gone (iroh's endpoint close takes ~3 s each then).
    let mut closing = tokio::task::JoinSet::new();
    for node in nodes {
        closing.spawn(node.shutdown());
    }
    while let Some(res) = closing.join_next().await {
        res??;
    }
    Ok(())
}

// ---- authors -------------------------------------------------------------------------------

/// Author management on a memory node (`client.rs::test_authors` and
/// `test_default_author_memory`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_authors() -> Result<()> {
    let node = util::memory_node().await?;
    let docs = &node.docs;

    // The default author always exists, is exportable and cannot be deleted.
    let default = docs.author_default();
    assert_eq!(docs.author_list().await?, vec![default]);
    assert!(docs.author_export(default).await?.is_some());
    assert!(matches!(
        docs.author_delete(default).await,
        Err(DocsError::DefaultAuthorDelete)
    ));
    assert_eq!(docs.author_list().await?, vec![default]);

    let id = docs.author_create().await?;
    let listed: BTreeSet<_> = docs.author_list().await?.into_iter().collect();
    assert_eq!(listed, BTreeSet::from([default, id]));

    let author = docs.author_export(id).await?.expect("created author");
    assert_eq!(author.id(), id);
    docs.author_delete(id).await?;
    assert_eq!(docs.author_list().await?, vec![default]);
    assert!(docs.author_export(id).await?.is_none());

    docs.author_import(author).await?;
    let listed: BTreeSet<_> = docs.author_list().await?.into_iter().collect();
    assert_eq!(listed, BTreeSet::from([default, id]));

    assert_ne!(docs.author_default(), id);
    docs.author_set_default(id).await?;
    assert_eq!(docs.author_default(), id);
    // Now the old default may go, the new one may not.
    assert!(matches!(
        docs.author_delete(id).await,
        Err(DocsError::DefaultAuthorDelete)
    ));
    docs.author_delete(default).await?;

    // Setting an unknown author as default fails and changes nothing.
    let unknown = Author::new(&mut rand::rng()).id();
    assert!(docs.author_set_default(unknown).await.is_err());
    assert_eq!(docs.author_default(), id);

    // A write by an author the store does not hold fails.
    let doc = docs.create().await?;
    assert!(doc.set_bytes(unknown, "k", "v").await.is_err());
    doc.set_bytes(id, "k", "v").await?;
    node.shutdown().await
}

/// The persistent default author (`client.rs::test_default_author_persist`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_default_author_persist() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();

    // A fresh node gets a default author, exportable and not deletable, saved as 64 hex chars.
    let default = {
        let node = util::persistent_node(dir).await?;
        let author = node.docs.author_default();
        assert!(node.docs.author_export(author).await?.is_some());
        assert!(matches!(
            node.docs.author_delete(author).await,
            Err(DocsError::DefaultAuthorDelete)
        ));
        assert_eq!(
            std::fs::read_to_string(dir.join("default-author"))?,
            author.to_string()
        );
        node.shutdown().await?;
        author
    };

    // It survives a restart.
    {
        let node = util::persistent_node(dir).await.context("first restart")?;
        assert_eq!(node.docs.author_default(), default);
        assert!(node.docs.author_export(default).await?.is_some());
        assert!(node.docs.author_delete(default).await.is_err());
        node.shutdown().await?;
    }

    // Without the file, a new default author is created.
    let default = {
        std::fs::remove_file(dir.join("default-author"))?;
        let node = util::persistent_node(dir)
            .await
            .context("restart without the default-author file")?;
        let author = node.docs.author_default();
        assert_ne!(author, default);
        assert!(node.docs.author_export(author).await?.is_some());
        node.shutdown().await?;
        author
    };

    // set_default is persisted.
    let new_default = {
        let node = util::persistent_node(dir).await?;
        assert_eq!(node.docs.author_default(), default);
        let author = node.docs.author_create().await?;
        node.docs.author_set_default(author).await?;
        assert_eq!(node.docs.author_default(), author);
        node.shutdown().await?;
        author
    };
    let node = util::persistent_node(dir).await?;
    assert_eq!(node.docs.author_default(), new_default);
    // The previous default is an ordinary author now.
    node.docs.author_delete(default).await?;
    node.shutdown().await
}

/// A `default-author` file naming an author the store does not hold makes spawning fail with
/// `DocsError::DefaultAuthor`; deleting the file lets the node start again, with a new
/// default author (the last part of `client.rs::test_default_author_persist`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_author_missing_from_store() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let default = {
        let node = util::persistent_node(dir).await?;
        let author = node.docs.author_default();
        node.shutdown().await?;
        author
    };

    let missing = Author::new(&mut rand::rng()).id();
    std::fs::write(dir.join("default-author"), missing.to_string())?;
    let err = match util::persistent_node(dir).await {
        Ok(_) => anyhow::bail!("spawn succeeded with a default author missing from the store"),
        Err(e) => e,
    };
    assert!(
        matches!(
            err.downcast_ref::<DocsError>(),
            Some(DocsError::DefaultAuthor(_))
        ),
        "expected DocsError::DefaultAuthor, got {err:?}"
    );

    // Deleting the file makes the node start again, in the same process.
    std::fs::remove_file(dir.join("default-author"))?;
    let node = util::persistent_node(dir)
        .await
        .context("restart after removing the bad default-author file")?;
    let author = node.docs.author_default();
    assert_ne!(author, missing);
    assert_ne!(author, default);
    // The earlier default author is still in the store.
    assert!(node.docs.author_export(default).await?.is_some());
    node.shutdown().await
}

// ---- files -------------------------------------------------------------------------------

mem_and_fs!(
    test_doc_import_export,
    test_doc_import_export_mem,
    test_doc_import_export_fs
);

/// A file imported under a key exports to the same bytes (`client.rs::test_doc_import_export`),
/// with progress reported both ways.
async fn test_doc_import_export(mut f: Fixture) -> Result<()> {
    use rand::RngExt;
    let node = f.node().await?;
    let files = tempfile::tempdir()?;
    let input = files.path().join("in").join("test");
    std::fs::create_dir_all(input.parent().expect("has a parent"))?;
    let mut data = vec![0u8; 100 * 1024 + 1];
    rand::rng().fill(&mut data[..]);
    std::fs::write(&input, &data)?;

    let doc = node.docs.create().await?;
    let author = node.docs.author_create().await?;
    let mut import_progress = Vec::new();
    let (hash, size) = doc
        .import_file(author, "in/test\0", &input, |p| import_progress.push(p))
        .await?;
    assert_eq!(size, data.len() as u64);
    assert_eq!(hash, Hash::new(&data));
    assert!(
        import_progress.contains(&sheaf_tokio::FileProgress::Size(size)),
        "{import_progress:?}"
    );

    let entry = doc
        .get_one(Query::author(author).with_key_exact("in/test\0"))
        .await?
        .context("imported entry")?;
    assert_eq!((entry.content_hash(), entry.content_len()), (hash, size));
    let output = files.path().join("out").join("test");
    let mut export_progress = Vec::new();
    let written = doc
        .export_file(&entry, &output, |p| export_progress.push(p))
        .await?;
    assert_eq!(written, size);
    assert_eq!(std::fs::read(&output)?, data);
    node.shutdown().await
}

// ---- drop_doc ------------------------------------------------------------------------------

mem_and_fs!(sync_drop_doc, sync_drop_doc_mem, sync_drop_doc_fs);

/// After `drop_doc`, reads, writes and `open` fail and the subscription ends.
async fn sync_drop_doc(mut f: Fixture) -> Result<()> {
    let node = f.node().await?;
    let doc = node.docs.create().await?;
    let author = node.docs.author_create().await?;
    let mut sub = doc.subscribe().await?;
    doc.set_bytes(author, "foo", "bar").await?;
    util::assert_next(&mut sub, vec![ev!(LiveEvent::InsertLocal { .. })]).await?;

    node.docs.drop_doc(doc.id()).await?;
    let get = doc.get_exact(author, "foo", true).await;
    let set = doc.set_bytes(author, "foo", "bar").await;
    let open = node.docs.open(doc.id()).await;
    let ended = tokio::time::timeout(util::TIMEOUT, sub.recv()).await;
    let listed = node.docs.list().await?;
    assert!(
        !listed.iter().any(|(id, _)| *id == doc.id()),
        "dropped document still listed"
    );
    assert!(set.is_err(), "set_bytes after drop_doc: {set:?}");
    assert!(open.is_err(), "open after drop_doc: {open:?}");
    assert!(
        matches!(ended, Ok(None)),
        "subscription after drop_doc: {ended:?}"
    );
    assert!(get.is_err(), "get_exact after drop_doc: {get:?}");
    node.shutdown().await
}
