//! Replica behaviour, ported from iroh-docs' `sync.rs` tests, plus the cases where Sheaf
//! deliberately differs from iroh-docs. Every test runs against MemBackend and RedbBackend.
//!
//! Split by concern so each file stays readable: this module holds the shared helpers and the
//! executor's bookkeeping (authors, capabilities, open/close and subscriptions, policies,
//! commits, the command round trip); `prefix`, `queries` and `sync` hold the rest.

mod batch;
mod prefix;
mod queries;
mod sync;
mod v2;

use bytes::Bytes;

use super::*;
use crate::{
    entry::{Entry, Record, RecordIdentifier, MAX_TIMESTAMP_FUTURE_SHIFT},
    ranger::{MessagePart, RangeItem},
    store::{query::query_all, FilterKind, MemBackend, SortBy, SortDirection},
    testutil::*,
};

fn keys_of(entries: &[SignedEntry]) -> Vec<(Vec<u8>, AuthorId)> {
    entries
        .iter()
        .map(|e| (e.key().to_vec(), e.author()))
        .collect()
}

fn set(
    r: &mut Replicas<impl Backend>,
    ns: NamespaceId,
    a: &Author,
    key: &[u8],
    value: &[u8],
    wall: u64,
) -> SignedEntry {
    r.insert_local(
        now(wall),
        ns,
        a.id(),
        key,
        Hash::new(value),
        value.len() as u64,
    )
    .unwrap()
}

fn basics<B: Backend>(store: B) {
    let secret = ns(1);
    let (a1, a2) = (author(1), author(2));
    let id = secret.id();
    let mut r = replicas(store, &secret, &[&a1, &a2]);
    for i in 0..10u64 {
        set(&mut r, id, &a1, format!("/{i}").as_bytes(), b"v", T0 + i);
    }
    assert_eq!(
        r.get_exact(id, a1.id(), b"/3", false)
            .unwrap()
            .unwrap()
            .timestamp(),
        T0 + 3
    );
    // Overwrite.
    set(&mut r, id, &a1, b"/3", b"w", T0 + 100);
    let e = r.get_exact(id, a1.id(), b"/3", false).unwrap().unwrap();
    assert_eq!(e.content_hash(), Hash::new(b"w"));
    set(&mut r, id, &a1, b"other", b"v", T0 + 101);
    let s = r.indexed_mut();
    assert_eq!(query_all(s, id, &Query::author(a1.id())).unwrap().len(), 11);
    assert_eq!(query_all(s, id, &Query::author(a2.id())).unwrap().len(), 0);
    assert_eq!(query_all(s, id, &Query::key_exact("/3")).unwrap().len(), 1);
    assert_eq!(query_all(s, id, &Query::all()).unwrap().len(), 11);
    assert_eq!(query_all(s, id, &Query::key_prefix("/")).unwrap().len(), 10);
    set(&mut r, id, &a2, b"/3", b"x", T0 + 102);
    let s = r.indexed_mut();
    assert_eq!(query_all(s, id, &Query::key_exact("/3")).unwrap().len(), 2);
    assert_eq!(query_all(s, id, &Query::all()).unwrap().len(), 12);
    // All entries through the ranger view equal the query view.
    let all = s
        .range_entries(
            id,
            &ranger::Range::new(RecordIdentifier::zero(), RecordIdentifier::zero()),
            0,
            usize::MAX,
        )
        .unwrap();
    let mut queried = query_all(s, id, &Query::all().include_empty()).unwrap();
    queried.sort();
    assert_eq!(all, queried);
    // Useful peers: an LRU of five, newest first.
    for p in 1..=6u8 {
        r.register_useful_peer(now(T0), id, peer(p)).unwrap();
    }
    assert_eq!(
        r.sync_peers(id).unwrap().unwrap(),
        (2..=6u8).rev().map(peer).collect::<Vec<_>>()
    );
    r.register_useful_peer(now(T0), id, peer(3)).unwrap();
    assert_eq!(
        r.sync_peers(id).unwrap().unwrap(),
        [3u8, 6, 5, 4, 2].into_iter().map(peer).collect::<Vec<_>>()
    );
}

fn content_hashes<B: Backend>(store: B) {
    let a = author(1);
    let mut r = Replicas::new(store, ReplicaConfig::default());
    r.import_author(now(T0), a.clone()).unwrap();
    let mut expected = Vec::new();
    for d in 1..=3u8 {
        let secret = ns(d);
        r.import_namespace(now(T0), Capability::Write(secret.clone()))
            .unwrap();
        r.open(secret.id(), OpenOpts::default()).unwrap();
        for k in 0..4u8 {
            let value = [d, k];
            set(&mut r, secret.id(), &a, &[k], &value, T0);
            expected.push(Hash::new(value));
        }
    }
    let mut got = r.content_hashes().unwrap();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
}

fn timestamps<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let mut r = replicas(store, &secret, &[&a]);
    set(&mut r, secret.id(), &a, b"k", b"2", T0 + 2);
    let err = r.insert_local(now(T0 + 1), secret.id(), a.id(), b"k", Hash::new(b"1"), 1);
    assert!(matches!(err, Err(ReplicaError::NewerEntryExists)));
    let kept = r
        .get_exact(secret.id(), a.id(), b"k", false)
        .unwrap()
        .unwrap();
    assert_eq!(kept.timestamp(), T0 + 2);
}

fn future_timestamps<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let mut r = replicas(store, &secret, &[&a]);
    let at = |ts: u64, key: &[u8]| {
        SignedEntry::new(&secret, &a, key, Record::new(Hash::new(b"v"), 1, ts))
    };
    let shift = MAX_TIMESTAMP_FUTURE_SHIFT;
    let n = now(T0);
    r.insert_remote(
        n,
        secret.id(),
        at(T0 + shift - 10_000, b"a"),
        peer(9),
        ContentStatus::Missing,
    )
    .unwrap();
    r.insert_remote(
        n,
        secret.id(),
        at(T0 + shift, b"b"),
        peer(9),
        ContentStatus::Missing,
    )
    .unwrap();
    r.insert_remote(
        n,
        secret.id(),
        at(T0 + 1_000_000, b"c"),
        peer(9),
        ContentStatus::Missing,
    )
    .unwrap();
    let err = r.insert_remote(
        n,
        secret.id(),
        at(T0 + shift + 10_000, b"d"),
        peer(9),
        ContentStatus::Missing,
    );
    assert!(matches!(
        err,
        Err(ReplicaError::Validation(
            ValidationFailure::TooFarInTheFuture
        ))
    ));
}

fn capability<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut r = Replicas::new(store, ReplicaConfig::default());
    r.import_author(now(T0), a.clone()).unwrap();
    assert_eq!(
        r.import_namespace(now(T0), Capability::Read(id)).unwrap(),
        ImportNamespaceOutcome::Inserted
    );
    r.open(
        id,
        OpenOpts {
            sync: true,
            subscribe: false,
        },
    )
    .unwrap();
    let err = r.insert_local(now(T0), id, a.id(), b"k", Hash::new(b"v"), 1);
    assert!(matches!(err, Err(ReplicaError::ReadOnly)));
    // Remote entries signed with the namespace key are accepted by a read-only replica.
    let remote = SignedEntry::new(&secret, &a, b"r", Record::new(Hash::new(b"v"), 1, T0));
    r.insert_remote(now(T0), id, remote, peer(2), ContentStatus::Missing)
        .unwrap();
    assert!(matches!(
        r.export_secret_key(id),
        Err(ReplicaError::ReadOnly)
    ));
    assert_eq!(
        r.import_namespace(now(T0), Capability::Write(secret.clone()))
            .unwrap(),
        ImportNamespaceOutcome::Upgraded
    );
    r.insert_local(now(T0), id, a.id(), b"k", Hash::new(b"v"), 1)
        .unwrap();
    assert_eq!(
        r.import_namespace(now(T0), Capability::Read(id)).unwrap(),
        ImportNamespaceOutcome::NoChange
    );
    assert_eq!(r.export_secret_key(id).unwrap(), secret);
    assert_eq!(
        r.list_namespaces().unwrap(),
        vec![(id, CapabilityKind::Write)]
    );
    // Closed documents refuse writes.
    assert!(r.close(id).unwrap());
    let err = r.insert_local(now(T0), id, a.id(), b"k2", Hash::new(b"v"), 1);
    assert!(matches!(err, Err(ReplicaError::Closed(_))));
    // Unknown authors are refused.
    r.open(id, OpenOpts::default()).unwrap();
    let err = r.insert_local(now(T0), id, author(7).id(), b"k2", Hash::new(b"v"), 1);
    assert!(matches!(err, Err(ReplicaError::AuthorNotFound(_))));
    // An author deleted right after a write (which remembers it) writes no more, and one
    // imported again writes again.
    r.insert_local(now(T0), id, a.id(), b"m3", Hash::new(b"v"), 1)
        .unwrap();
    assert!(r.delete_author(now(T0), a.id()).unwrap());
    let err = r.insert_local(now(T0), id, a.id(), b"m4", Hash::new(b"v"), 1);
    assert!(matches!(err, Err(ReplicaError::AuthorNotFound(_))));
    r.import_author(now(T0), a.clone()).unwrap();
    r.insert_local(now(T0), id, a.id(), b"m4", Hash::new(b"v"), 1)
        .unwrap();
}

fn open_close_and_remove<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut r = replicas(store, &secret, &[&a]);
    assert_eq!(
        r.state(id).unwrap(),
        OpenState {
            sync: true,
            subscribers: 1,
            handles: 1
        }
    );
    r.open(id, OpenOpts::default()).unwrap();
    assert_eq!(r.state(id).unwrap().handles, 2);
    assert!(!r.close(id).unwrap());
    set(&mut r, id, &a, b"k", b"v", T0);
    r.drop_replica(now(T0), id).unwrap();
    assert!(matches!(
        r.open(id, OpenOpts::default()),
        Err(ReplicaError::NotFound(_))
    ));
    assert!(query_all(r.indexed_mut(), id, &Query::all())
        .unwrap()
        .is_empty());
    // Re-creating works and starts empty.
    r.import_namespace(now(T0), Capability::Write(secret.clone()))
        .unwrap();
    r.open(id, OpenOpts::default()).unwrap();
    assert!(r.get_exact(id, a.id(), b"k", true).unwrap().is_none());
    assert!(matches!(
        r.open(ns(9).id(), OpenOpts::default()),
        Err(ReplicaError::NotFound(_))
    ));
}

fn download_policies<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut r = replicas(store, &secret, &[&a]);
    let policy =
        DownloadPolicy::NothingExcept(vec![FilterKind::Prefix(Bytes::from_static(b"want/"))]);
    assert!(matches!(
        r.set_download_policy(now(T0), ns(9).id(), policy.clone()),
        Err(ReplicaError::NotFound(_))
    ));
    assert_eq!(
        r.get_download_policy(id).unwrap(),
        DownloadPolicy::default()
    );
    r.set_download_policy(now(T0), id, policy.clone()).unwrap();
    assert_eq!(r.get_download_policy(id).unwrap(), policy);
    events(&mut r);
    for key in [&b"want/1"[..], b"skip/1"] {
        let e = SignedEntry::new(&secret, &a, key, Record::new(Hash::new(key), 1, T0));
        r.insert_remote(now(T0), id, e, peer(2), ContentStatus::Complete)
            .unwrap();
    }
    let should: Vec<bool> = events(&mut r)
        .into_iter()
        .map(|e| match e {
            ReplicaEvent::RemoteInsert {
                should_download, ..
            } => should_download,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(should, vec![true, false]);
}

fn commits_are_scheduled<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut r = replicas(store, &secret, &[&a]);
    r.flush().unwrap();
    assert_eq!(r.poll_timeout(), None);
    set(&mut r, id, &a, b"k", b"v", T0);
    let due = r.poll_timeout().unwrap();
    assert_eq!(due, now(T0).mono + DEFAULT_COMMIT_INTERVAL);
    r.handle_timeout(Now::new(Mono(due.0 - 1), T0)).unwrap();
    assert_eq!(r.poll_timeout(), Some(due), "not due yet");
    r.handle_timeout(Now::new(due, T0)).unwrap();
    assert_eq!(r.poll_timeout(), None);
}

fn commands_round_trip<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut r = Replicas::new(store, ReplicaConfig::default());
    let n = now(T0);
    r.apply(n, StoreCommand::ImportAuthor(a.clone())).unwrap();
    r.apply(
        n,
        StoreCommand::ImportNamespace(Capability::Write(secret.clone())),
    )
    .unwrap();
    r.apply(
        n,
        StoreCommand::Open {
            namespace: id,
            opts: OpenOpts {
                sync: true,
                subscribe: true,
            },
        },
    )
    .unwrap();
    let StoreResponse::Inserted(e) = r
        .apply(
            n,
            StoreCommand::InsertLocal {
                namespace: id,
                author: a.id(),
                key: Bytes::from_static(b"k"),
                hash: Hash::new(b"v"),
                len: 1,
            },
        )
        .unwrap()
    else {
        panic!("expected Inserted");
    };
    assert_eq!(
        r.poll_event(),
        Some(ReplicaEvent::LocalInsert {
            namespace: id,
            entry: e.clone()
        })
    );
    let StoreResponse::Entry(Some(got)) = r
        .apply(
            n,
            StoreCommand::GetExact {
                namespace: id,
                author: a.id(),
                key: Bytes::from_static(b"k"),
                include_empty: false,
            },
        )
        .unwrap()
    else {
        panic!("expected Entry");
    };
    assert_eq!(got, e);
    let StoreResponse::Page(page) = r
        .apply(
            n,
            StoreCommand::GetMany {
                namespace: id,
                query: Query::all(),
                cursor: None,
            },
        )
        .unwrap()
    else {
        panic!("expected Page");
    };
    assert_eq!(page.entries, vec![e]);
    assert!(page.next.is_none());
    let StoreResponse::Removed(1) = r
        .apply(
            now(T0 + 1),
            StoreCommand::DeletePrefix {
                namespace: id,
                author: a.id(),
                prefix: Bytes::new(),
            },
        )
        .unwrap()
    else {
        panic!("expected Removed(1)");
    };
    assert!(matches!(
        r.apply(n, StoreCommand::Flush),
        Ok(StoreResponse::Done)
    ));
    assert!(matches!(
        r.apply(n, StoreCommand::GetState(ns(5).id())),
        Err(ReplicaError::Closed(_))
    ));
}

fn entry_fingerprints_cover_tombstones<B: Backend>(store: B) {
    let mut store = crate::store::Indexed::new(store);
    let secret = ns(1);
    let a = author(1);
    let e = Entry::new(
        RecordIdentifier::new(secret.id(), a.id(), b"k"),
        Record::empty(T0),
    )
    .sign(&secret, &a);
    store.put(e.clone()).unwrap();
    let all = ranger::Range::new(e.id().clone(), e.id().clone());
    assert_eq!(
        store.range_fingerprint(secret.id(), &all).unwrap(),
        ranger::Fingerprint::EMPTY.xor(&e.fingerprint())
    );
}

/// Subscriptions are a flag, not a count: `Live` counts its own subscribers and sends one
/// `Subscribe` per document and one `Unsubscribe` when it stops, so repeated commands (or
/// opens with `subscribe`) must not leave events flowing after the one `Unsubscribe`.
fn subscriptions_are_a_flag<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut r = replicas(store, &secret, &[&a]);
    let subscribe = OpenOpts {
        sync: false,
        subscribe: true,
    };
    r.open(id, subscribe).unwrap();
    r.apply(now(T0), StoreCommand::Subscribe(id)).unwrap();
    r.apply(now(T0), StoreCommand::Subscribe(id)).unwrap();
    assert_eq!(
        r.state(id).unwrap().subscribers,
        1,
        "one flag, however often set"
    );
    set(&mut r, id, &a, b"k", b"v", T0);
    assert_eq!(events(&mut r).len(), 1, "one event per insert");

    r.apply(now(T0), StoreCommand::Unsubscribe(id)).unwrap();
    assert_eq!(r.state(id).unwrap().subscribers, 0);
    set(&mut r, id, &a, b"k2", b"v", T0 + 1);
    assert!(events(&mut r).is_empty(), "one Unsubscribe stops events");
    r.apply(now(T0), StoreCommand::Unsubscribe(id)).unwrap();
    assert_eq!(
        r.state(id).unwrap().subscribers,
        0,
        "unsubscribing twice is harmless"
    );

    // Opening without `subscribe` leaves the flag; opening with it sets it.
    r.open(id, OpenOpts::default()).unwrap();
    assert_eq!(r.state(id).unwrap().subscribers, 0);
    r.open(id, subscribe).unwrap();
    assert_eq!(r.state(id).unwrap().subscribers, 1);
    r.apply(now(T0), StoreCommand::Subscribe(ns(9).id()))
        .expect_err("subscribing to a closed document is an error");
}

for_each_backend!(
    basics,
    content_hashes,
    timestamps,
    future_timestamps,
    capability,
    open_close_and_remove,
    subscriptions_are_a_flag,
    download_policies,
    commits_are_scheduled,
    commands_round_trip,
    entry_fingerprints_cover_tombstones,
);
