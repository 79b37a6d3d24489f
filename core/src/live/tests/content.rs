//! Content downloads and the missing-content scan.

use std::time::Duration;

use bytes::Bytes;

use crate::live::*;
use crate::{
    hash::Hash,
    keys::Capability,
    ranger::ContentStatus,
    replica::{ReplicaConfig, Replicas},
    store::{DownloadPolicy, FilterKind, MemBackend},
};

use super::router::*;

#[test]
fn the_missing_content_scan_runs_once_per_document() {
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::new(2);
    net.create(0, &secret, &[&a]);
    net.import(1, Capability::Write(secret.clone()), &[]);
    net.set(0, id, &a, "k", "v");
    net.start_sync(0, id, &[]);
    net.run();
    assert_eq!(net.nodes[0].scan_pages, 1);
    // Each later StartSync, even after leaving, finds the scan done.
    net.start_sync(1, id, &[0]);
    net.start_sync(0, id, &[1]);
    net.run();
    net.api(
        0,
        ApiCommand::Leave {
            namespace: id,
            kill_subscribers: false,
        },
    );
    net.start_sync(0, id, &[1]);
    net.run();
    assert_eq!(net.nodes[0].scan_pages, 1);
    assert_eq!(net.nodes[1].scan_pages, 1);
    assert_eq!(net.entries(1, id), net.entries(0, id));
}

#[test]
fn the_missing_content_scan_waits_while_a_sync_runs() {
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::new(2);
    let config = ReplicaConfig {
        content_scan_page: 1,
        ..Default::default()
    };
    for node in &mut net.nodes {
        node.replicas =
            Replicas::with_content(MemBackend::new(), node.blobs.clone(), config.clone());
    }
    net.create(0, &secret, &[&a]);
    net.import(1, Capability::Write(secret.clone()), &[]);
    for i in 0..20 {
        net.set(0, id, &a, &format!("k{i}"), &format!("v{i}"));
    }
    net.start_sync(1, id, &[]);
    net.run();
    // Node 0 starts its scan (a page per entry) and a sync with node 1 together.
    net.start_sync(0, id, &[1]);
    net.run();
    assert_eq!(net.entries(1, id), net.entries(0, id));
    // The first page goes out before any session; later ones wait for the sessions to end.
    assert!(
        net.nodes[0].scan_pages_in_sync <= 1,
        "{} pages read during a sync",
        net.nodes[0].scan_pages_in_sync
    );
    // The scan still reads every page once the sessions are over, and only once.
    let pages = net.nodes[0].scan_pages;
    assert!(pages >= 20, "{pages} pages");
    net.start_sync(0, id, &[1]);
    net.run();
    assert_eq!(net.nodes[0].scan_pages, pages);
}

/// Found by the simulator (`--seed 886 --faults all`, with `store-fail`): a node restarted
/// holding an entry whose content it misses; the first page of its missing-content scan
/// failed in the store, which dropped the scan until a `StartSync` would *open* the document
/// again — never, as it stayed synced — so the content was never fetched although every sync
/// met a peer that had it. A failed page is now read again when the next session ends.
#[test]
fn a_failed_scan_page_is_read_again_after_the_next_sync() {
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::new(2);
    net.no_neighbors = true;
    net.create(0, &secret, &[&a]);
    net.import(1, Capability::Write(secret.clone()), &[]);
    let entry = net.set(0, id, &a, "k", "content");
    let content = Hash::new("content");
    // Node 1 holds the entry from before a restart, without its content; its `Live` is new.
    let now = net.now;
    let origin = net.nodes[0].id;
    let r = &mut net.nodes[1].replicas;
    r.set_sync(id, true).unwrap();
    r.insert_remote(now, id, entry, origin, ContentStatus::Missing)
        .unwrap();
    r.set_sync(id, false).unwrap();
    net.start_sync(0, id, &[]);
    net.nodes[1].failing_scan_pages = 1;
    net.start_sync(1, id, &[]);
    net.run();
    assert_eq!(net.nodes[1].scan_pages, 1, "the first page failed");
    // A sync ends (0 dials 1): the failed page is read again and finds the hash.
    net.start_sync(0, id, &[1]);
    net.run();
    assert_eq!(
        net.nodes[1].scan_pages, 2,
        "read again once, when the session ended"
    );
    // The next sync with the peer that holds it brings the content, with no StartSync on 1.
    net.start_sync(0, id, &[1]);
    net.run();
    assert!(net.nodes[1].blobs.0.borrow().contains(&content));
    assert_eq!(net.nodes[1].scan_pages, 2);
}

/// A scan that found more missing hashes than the tracker keeps runs again on the next
/// `StartSync`, also when the document stayed synced (it used to wait for a `StartSync` that
/// opens the document, which a synced document never gets).
#[test]
fn a_lossy_scan_runs_again_on_the_next_start_sync_of_a_synced_document() {
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::with_config(
        2,
        LiveConfig {
            max_tracked_hashes: 1,
            ..LiveConfig::default()
        },
    );
    net.no_neighbors = true;
    net.create(0, &secret, &[&a]);
    net.import(1, Capability::Write(secret.clone()), &[]);
    let entries: Vec<_> = (0..3)
        .map(|i| net.set(0, id, &a, &format!("k{i}"), &format!("v{i}")))
        .collect();
    let now = net.now;
    let origin = net.nodes[0].id;
    let r = &mut net.nodes[1].replicas;
    r.set_sync(id, true).unwrap();
    for e in entries {
        r.insert_remote(now, id, e, origin, ContentStatus::Missing)
            .unwrap();
    }
    r.set_sync(id, false).unwrap();
    net.start_sync(1, id, &[]);
    net.run();
    assert_eq!(net.nodes[1].scan_pages, 1);
    assert!(
        net.nodes[1].live.stats().downloads_dropped > 0,
        "hashes dropped"
    );
    net.start_sync(1, id, &[]);
    net.run();
    assert_eq!(net.nodes[1].scan_pages, 2, "the lossy scan ran again");
}

#[test]
fn download_policy_filters_content() {
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::new(2);
    net.create(0, &secret, &[&a]);
    net.import(1, Capability::Read(id), &[]);
    let policy =
        DownloadPolicy::NothingExcept(vec![FilterKind::Prefix(Bytes::from_static(b"want/"))]);
    let now = net.now;
    net.nodes[1]
        .replicas
        .set_download_policy(now, id, policy)
        .unwrap();
    net.set(0, id, &a, "want/1", "w1");
    net.set(0, id, &a, "skip/1", "s1");
    net.start_sync(0, id, &[]);
    net.subscribe(1, id);
    net.start_sync(1, id, &[0]);
    net.run();
    assert_eq!(
        net.entries(1, id).len(),
        2,
        "policies filter content, never entries"
    );
    let blobs = net.nodes[1].blobs.0.borrow().clone();
    assert!(blobs.contains(&Hash::new("w1")));
    assert!(!blobs.contains(&Hash::new("s1")));
    assert_eq!(
        compact(net.take_events(1)),
        vec![
            Ev::Up(0),
            Ev::Remote(0, "skip/1".into()),
            Ev::Remote(0, "want/1".into()),
            Ev::Ready(Hash::new("w1")),
            Ev::Synced(0, Origin::Accept, Ok((2, 0))),
            Ev::Pending,
        ]
    );
}

#[test]
fn missing_content_is_fetched_from_a_later_provider() {
    // 2 holds the entry but not its content; 1 syncs from 2 first, then from 0, which has the
    // content. iroh-docs never downloads in this case (its issue #82): the entry already
    // exists, so no RemoteInsert fires.
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::new(3);
    net.create(0, &secret, &[&a]);
    net.import(1, Capability::Write(secret.clone()), &[]);
    net.import(2, Capability::Write(secret.clone()), &[]);
    let entry = net.set(0, id, &a, "doc", "content");
    let now = net.now;
    net.nodes[2].replicas.set_sync(id, true).unwrap();
    let origin = net.nodes[0].id;
    net.nodes[2]
        .replicas
        .insert_remote(now, id, entry, origin, ContentStatus::Missing)
        .unwrap();
    net.nodes[2].replicas.set_sync(id, false).unwrap();
    net.start_sync(2, id, &[]);
    net.subscribe(1, id);
    net.start_sync(1, id, &[2]);
    net.run();
    assert_eq!(net.entries(1, id).len(), 1);
    assert!(!net.nodes[1]
        .blobs
        .0
        .borrow()
        .contains(&Hash::new("content")));
    net.take_events(1);
    net.start_sync(0, id, &[]);
    net.start_sync(1, id, &[0]);
    net.run();
    assert!(net.nodes[1]
        .blobs
        .0
        .borrow()
        .contains(&Hash::new("content")));
    // The sync with 0 carries no entries (both hold the same one), yet 1 asks 0 for the
    // content it misses, and PendingContentReady waits for that download.
    assert_eq!(
        compact(net.take_events(1)),
        vec![
            Ev::Up(0),
            Ev::Synced(2, Origin::Connect(SyncReason::DirectJoin), Ok((0, 0))),
            Ev::Pending,
            Ev::Synced(0, Origin::Accept, Ok((0, 0))),
            Ev::Ready(Hash::new("content")),
            Ev::Pending,
        ]
    );
}

#[test]
fn a_failed_download_is_retried_from_the_same_provider() {
    // 0 writes an entry whose content it cannot serve at first (the transient failure of a
    // real provider); 1 syncs, its download fails, and a later retry round from the same
    // provider succeeds without any new sync. iroh-docs never retries.
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::new(2);
    net.no_neighbors = true;
    net.create(0, &secret, &[&a]);
    net.import(1, Capability::Write(secret.clone()), &[]);
    net.set(0, id, &a, "doc", "content");
    let content = Hash::new("content");
    net.failing_downloads = u32::MAX;
    net.start_sync(0, id, &[]);
    net.subscribe(1, id);
    net.start_sync(1, id, &[0]);
    net.run();
    assert_eq!(net.entries(1, id).len(), 1);
    assert!(!net.nodes[1].blobs.0.borrow().contains(&content));
    let stats = net.nodes[1].live.stats();
    assert!(stats.downloads_failed >= 1);
    assert_eq!(stats.download_retries, 0);
    net.failing_downloads = 0;
    let deadline = net.now.mono + Duration::from_secs(120);
    net.run_timers_until(deadline);
    assert!(net.nodes[1].blobs.0.borrow().contains(&content));
    let stats = net.nodes[1].live.stats();
    assert_eq!((stats.download_retries, stats.downloads_ok), (1, 1));
    assert!(compact(net.take_events(1)).contains(&Ev::Ready(content)));
}

#[test]
fn download_retries_stop_after_the_configured_rounds() {
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::with_config(
        2,
        LiveConfig {
            download_retry_attempts: 3,
            ..LiveConfig::default()
        },
    );
    net.no_neighbors = true;
    net.create(0, &secret, &[&a]);
    net.import(1, Capability::Write(secret.clone()), &[]);
    net.set(0, id, &a, "doc", "content");
    net.failing_downloads = u32::MAX;
    net.start_sync(0, id, &[]);
    net.start_sync(1, id, &[0]);
    net.run();
    let failed_before = net.nodes[1].live.stats().downloads_failed;
    let deadline = net.now.mono + Duration::from_secs(600);
    net.run_timers_until(deadline);
    let stats = net.nodes[1].live.stats();
    assert_eq!(stats.download_retries, 3);
    assert_eq!(stats.downloads_failed, failed_before + 3);
    assert!(!net.nodes[1]
        .blobs
        .0
        .borrow()
        .contains(&Hash::new("content")));
}

#[test]
fn downloads_are_bounded_in_flight() {
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::with_config(
        2,
        LiveConfig {
            max_concurrent_downloads: 3,
            ..LiveConfig::default()
        },
    );
    net.create(0, &secret, &[&a]);
    for i in 0..20 {
        net.set(0, id, &a, &format!("k{i:02}"), &format!("v{i}"));
    }
    net.start_sync(0, id, &[]);
    net.run();
    net.import(1, Capability::Write(secret.clone()), &[]);
    net.subscribe(1, id);
    net.start_sync(1, id, &[0]);
    // Step manually and watch the in-flight count.
    let mut max_in_flight = 0;
    for _ in 0..100_000 {
        let Some((node, input)) = net.queue.pop_front() else {
            break;
        };
        let now = net.now;
        net.nodes[node].live.handle(now, input);
        max_in_flight = max_in_flight.max(net.nodes[1].live.download_load().0);
        net.route(node);
    }
    assert_eq!(max_in_flight, 3);
    assert_eq!(net.nodes[1].blobs.0.borrow().len(), 20);
    let evs = compact(net.take_events(1));
    assert_eq!(evs.iter().filter(|e| matches!(e, Ev::Ready(_))).count(), 20);
    assert_eq!(
        evs.last(),
        Some(&Ev::Pending),
        "PendingContentReady once the queue drained"
    );
}

#[test]
fn downloads_start_in_batches() {
    use crate::live::content::Downloads;
    let (secret, _) = doc();
    let ns = secret.id();
    let provider = PeerId::from_bytes([7; 32]);
    let mut downloads = Downloads::new(8, 4, 1_000, 16);
    for i in 0..20u32 {
        downloads.offer(ns, Hash::new(i.to_be_bytes()), provider, false);
    }
    let mut started = downloads.dispatch(false);
    assert_eq!(started.len(), 8, "an idle queue fills every slot");
    let mut sizes = Vec::new();
    while !started.is_empty() || downloads.in_flight() > 0 {
        // One download ends at a time; more start only when four slots are free, or when
        // all the waiting ones fit.
        let (hash, _) = started.remove(0);
        downloads.finish(&hash, true);
        let more = downloads.dispatch(false);
        if !more.is_empty() {
            sizes.push(more.len());
        }
        started.extend(more);
    }
    assert_eq!(sizes, vec![4, 4, 4]);
    assert_eq!(downloads.queued_len(), 0);

    // With one slot per batch, each finished download starts the next at once.
    let mut downloads = Downloads::new(2, 1, 1_000, 16);
    for i in 0..3u32 {
        downloads.offer(ns, Hash::new(i.to_be_bytes()), provider, false);
    }
    let first = downloads.dispatch(false);
    assert_eq!(first.len(), 2);
    downloads.finish(&first[0].0, true);
    assert_eq!(downloads.dispatch(false).len(), 1);

    // While syncing, one batch at a time.
    let mut downloads = Downloads::new(8, 4, 1_000, 16);
    for i in 0..10u32 {
        downloads.offer(ns, Hash::new(i.to_be_bytes()), provider, false);
    }
    let first = downloads.dispatch(true);
    assert_eq!(first.len(), 4);
    for (hash, _) in &first[..3] {
        downloads.finish(hash, true);
        assert!(downloads.dispatch(true).is_empty());
    }
    downloads.finish(&first[3].0, true);
    assert_eq!(downloads.dispatch(true).len(), 4);
    // Once no session runs, every slot fills.
    assert_eq!(downloads.dispatch(false).len(), 2);
}
