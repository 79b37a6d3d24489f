//! Replica behaviour, ported from iroh-docs' `sync.rs` tests, plus the cases where Sheaf
//! deliberately differs from iroh-docs. Every test runs against MemBackend and RedbBackend.

use bytes::Bytes;

use super::*;
use crate::{
    entry::{Entry, RecordIdentifier, MAX_TIMESTAMP_FUTURE_SHIFT},
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

fn insert_empty<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let mut r = replicas(store, &secret, &[&a]);
    let err = r.insert_local(now(T0), secret.id(), a.id(), b"k", Hash::EMPTY, 0);
    assert!(matches!(
        err,
        Err(ReplicaError::Validation(ValidationFailure::EntryIsEmpty))
    ));
}

fn prefix_delete<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut r = replicas(store, &secret, &[&a]);
    set(&mut r, id, &a, b"foobar", b"1", T0);
    set(&mut r, id, &a, b"fooboo", b"2", T0 + 1);
    set(&mut r, id, &a, b"fob", b"3", T0 + 2);
    assert_eq!(r.delete_prefix(now(T0 + 3), id, a.id(), b"foo").unwrap(), 2);
    assert!(r.get_exact(id, a.id(), b"foo", false).unwrap().is_none());
    assert!(r
        .get_exact(id, a.id(), b"foo", true)
        .unwrap()
        .unwrap()
        .is_empty());
    assert!(r.get_exact(id, a.id(), b"foobar", true).unwrap().is_none());
    assert!(r.get_exact(id, a.id(), b"fob", false).unwrap().is_some());
    // A write under the deleted prefix after the delete is fine.
    set(&mut r, id, &a, b"foobar", b"4", T0 + 4);
    assert!(r.get_exact(id, a.id(), b"foobar", false).unwrap().is_some());
}

/// iroh-docs ignores tombstones when checking for a newer prefix entry, so an older entry under
/// a deleted prefix is accepted again ("resurrection") and two of its nodes never converge.
/// Sheaf counts tombstones as parents and refuses it.
fn tombstones_block_older_entries_unlike_iroh_docs<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut r = replicas(store, &secret, &[&a]);
    r.delete_prefix(now(T0 + 10), id, a.id(), b"foo").unwrap();
    for key in [&b"foo"[..], b"foo/x"] {
        let older = SignedEntry::new(&secret, &a, key, Record::new(Hash::new(b"old"), 3, T0));
        let err = r.insert_remote(now(T0 + 20), id, older, peer(2), ContentStatus::Complete);
        assert!(
            matches!(err, Err(ReplicaError::NewerEntryExists)),
            "{key:?}"
        );
    }
    // Re-receiving the same tombstone is not a new insert either (iroh-docs re-inserts it).
    let tomb = r.get_exact(id, a.id(), b"foo", true).unwrap().unwrap();
    let err = r.insert_remote(now(T0 + 20), id, tomb, peer(2), ContentStatus::Complete);
    assert!(matches!(err, Err(ReplicaError::NewerEntryExists)));
    events(&mut r);
    // A newer entry under the prefix is accepted.
    let newer = SignedEntry::new(
        &secret,
        &a,
        b"foo/y",
        Record::new(Hash::new(b"new"), 3, T0 + 11),
    );
    r.insert_remote(now(T0 + 20), id, newer, peer(2), ContentStatus::Complete)
        .unwrap();
    assert_eq!(events(&mut r).len(), 1);
}

/// iroh-docs computes the end of a prefix by incrementing with carry: `[1, 0xFF]` becomes
/// `[2, 0]`, so deleting prefix `[1, 0xFF]` also deletes key `[2]`. Sheaf does not.
fn prefix_ending_in_ff_has_a_correct_bound_unlike_iroh_docs<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut r = replicas(store, &secret, &[&a]);
    set(&mut r, id, &a, &[2], b"two", T0);
    set(&mut r, id, &a, &[1, 0xff], b"y", T0);
    set(&mut r, id, &a, &[1, 0xff, 5], b"x", T0 + 1);
    set(&mut r, id, &a, &[0xff, 0xff], b"z", T0);
    set(&mut r, id, &a, &[0xff, 0xff, 0xff], b"z", T0 + 1);
    let s = r.indexed_mut();
    let q = query_all(
        s,
        id,
        &Query::author(a.id()).with_key_prefix(vec![1u8, 0xff]),
    )
    .unwrap();
    assert_eq!(
        keys_of(&q)
            .iter()
            .map(|(k, _)| k.clone())
            .collect::<Vec<_>>(),
        vec![vec![1, 0xff], vec![1, 0xff, 5]]
    );
    let q = query_all(s, id, &Query::key_prefix(vec![0xffu8])).unwrap();
    assert_eq!(q.len(), 2);
    assert_eq!(
        r.delete_prefix(now(T0 + 2), id, a.id(), &[1, 0xff])
            .unwrap(),
        2
    );
    assert!(r.get_exact(id, a.id(), &[2], false).unwrap().is_some());
}

fn delete_edge_cases<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut r = replicas(store, &secret, &[&a]);
    for prefix in [0u8, 1, 0xff] {
        for suffix in [0u8, 1, 0xff] {
            set(&mut r, id, &a, &[prefix, suffix], b"v", T0);
        }
    }
    assert_eq!(
        r.delete_prefix(now(T0 + 1), id, a.id(), &[1, 1]).unwrap(),
        1
    );
    assert!(r.get_exact(id, a.id(), &[1, 0], false).unwrap().is_some());
    assert!(r
        .get_exact(id, a.id(), &[1, 0xff], false)
        .unwrap()
        .is_some());
    assert_eq!(r.delete_prefix(now(T0 + 1), id, a.id(), &[0]).unwrap(), 3);
    assert_eq!(
        r.delete_prefix(now(T0 + 1), id, a.id(), &[0xff]).unwrap(),
        3
    );
    let left = query_all(r.indexed_mut(), id, &Query::all()).unwrap();
    assert_eq!(left.len(), 2);
    // Deleting the empty prefix wipes the author's subspace.
    assert_eq!(
        r.delete_prefix(now(T0 + 2), id, a.id(), b"").unwrap(),
        2 + 3
    );
    assert!(query_all(r.indexed_mut(), id, &Query::all())
        .unwrap()
        .is_empty());
}

fn heads_never_regress_unlike_iroh_docs<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut r = replicas(store, &secret, &[&a]);
    set(&mut r, id, &a, b"new", b"v", T0 + 10_000_000);
    let older = SignedEntry::new(&secret, &a, b"old", Record::new(Hash::new(b"o"), 1, T0));
    r.insert_remote(
        now(T0 + 10_000_000),
        id,
        older,
        peer(2),
        ContentStatus::Missing,
    )
    .unwrap();
    let heads = r.indexed_mut().author_heads(id).unwrap();
    assert_eq!(heads.get(&a.id()), Some(T0 + 10_000_000));
    // A peer whose head equals ours has no news; one newer does.
    let same: AuthorHeads = [(a.id(), T0 + 10_000_000)].into_iter().collect();
    assert_eq!(r.has_news_for_us(id, &same).unwrap(), None);
    let newer: AuthorHeads = [(a.id(), T0 + 10_000_001)].into_iter().collect();
    assert!(r.has_news_for_us(id, &newer).unwrap().is_some());
}

fn byte_keys<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut r = replicas(store, &secret, &[&a]);
    let keys: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        vec![0, 0],
        vec![1],
        vec![0xff],
        vec![0xff, 0],
    ];
    for (i, k) in keys.iter().enumerate().rev() {
        set(&mut r, id, &a, k, &[i as u8 + 1], T0 + i as u64);
    }
    // Written in reverse with rising timestamps, every key was newer than its (absent or
    // older) prefixes when written, so all stay; listing is in byte order.
    let got = query_all(r.indexed_mut(), id, &Query::all()).unwrap();
    assert_eq!(
        keys_of(&got)
            .into_iter()
            .map(|(k, _)| k)
            .collect::<Vec<_>>(),
        keys
    );
    // A newer empty key deletes them all.
    r.delete_prefix(now(T0 + 100), id, a.id(), b"").unwrap();
    assert!(query_all(r.indexed_mut(), id, &Query::all())
        .unwrap()
        .is_empty());
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

fn queries<B: Backend>(store: B) {
    let secret = ns(1);
    // Authors ordered a1 < a2 < a3 by id.
    let mut authors: Vec<Author> = (1..=3u8).map(author).collect();
    authors.sort_by_key(|a| a.id());
    let (a1, a2, a3) = (&authors[0], &authors[1], &authors[2]);
    let id = secret.id();
    let mut r = replicas(store, &secret, &[a1, a2, a3]);
    set(&mut r, id, a2, b"hi/world", b"a2", T0);
    set(&mut r, id, a1, b"hi/world", b"a1", T0 + 1);
    set(&mut r, id, a2, b"hi/moon", b"a2", T0 + 2);
    set(&mut r, id, a3, b"hi", b"a3", T0 + 3);
    let k = |key: &str, a: &Author| (key.as_bytes().to_vec(), a.id());
    let q = |r: &mut Replicas<B>, q: Query| keys_of(&query_all(r.indexed_mut(), id, &q).unwrap());

    assert_eq!(
        q(&mut r, Query::all()),
        vec![
            k("hi/world", a1),
            k("hi/moon", a2),
            k("hi/world", a2),
            k("hi", a3)
        ]
    );
    assert_eq!(
        q(&mut r, Query::single_latest_per_key()),
        vec![k("hi", a3), k("hi/moon", a2), k("hi/world", a1)]
    );
    assert_eq!(
        q(
            &mut r,
            Query::single_latest_per_key().sort_direction(SortDirection::Desc)
        ),
        vec![k("hi/world", a1), k("hi/moon", a2), k("hi", a3)]
    );
    assert_eq!(
        q(
            &mut r,
            Query::all().sort_by(SortBy::KeyAuthor, SortDirection::Asc)
        ),
        vec![
            k("hi", a3),
            k("hi/moon", a2),
            k("hi/world", a1),
            k("hi/world", a2)
        ]
    );
    assert_eq!(
        q(
            &mut r,
            Query::all().sort_by(SortBy::KeyAuthor, SortDirection::Desc)
        ),
        vec![
            k("hi/world", a2),
            k("hi/world", a1),
            k("hi/moon", a2),
            k("hi", a3)
        ]
    );
    assert_eq!(
        q(
            &mut r,
            Query::all().sort_by(SortBy::AuthorKey, SortDirection::Desc)
        ),
        vec![
            k("hi", a3),
            k("hi/world", a2),
            k("hi/moon", a2),
            k("hi/world", a1)
        ]
    );
    assert_eq!(
        q(&mut r, Query::key_prefix("hi/").offset(1).limit(1)),
        vec![k("hi/moon", a2)]
    );
    assert_eq!(
        q(
            &mut r,
            Query::key_prefix("hi/")
                .sort_by(SortBy::KeyAuthor, SortDirection::Asc)
                .limit(2)
        ),
        vec![k("hi/moon", a2), k("hi/world", a1)]
    );
    assert_eq!(
        q(
            &mut r,
            Query::single_latest_per_key()
                .with_key_prefix("hi/")
                .limit(1)
        ),
        vec![k("hi/moon", a2)]
    );
    assert_eq!(
        q(&mut r, Query::single_latest_per_key().with_author(a2.id())),
        vec![k("hi/moon", a2), k("hi/world", a2)]
    );
    assert_eq!(
        q(&mut r, Query::author(a2.id()).with_key_exact("hi/moon")),
        vec![k("hi/moon", a2)]
    );

    r.delete_prefix(now(T0 + 4), id, a2.id(), b"hi/world")
        .unwrap();
    assert_eq!(
        q(&mut r, Query::all()),
        vec![k("hi/world", a1), k("hi/moon", a2), k("hi", a3)]
    );
    assert_eq!(
        q(&mut r, Query::all().include_empty()),
        vec![
            k("hi/world", a1),
            k("hi/moon", a2),
            k("hi/world", a2),
            k("hi", a3)
        ]
    );
    // The latest entry for hi/world is now a2's tombstone: the key disappears.
    assert_eq!(
        q(&mut r, Query::single_latest_per_key()),
        vec![k("hi", a3), k("hi/moon", a2)]
    );
}

fn queries_page_across_budgets<B: Backend>(store: B) {
    let secret = ns(1);
    let authors: Vec<Author> = (1..=4u8).map(author).collect();
    let id = secret.id();
    let refs: Vec<&Author> = authors.iter().collect();
    let mut r = replicas(store, &secret, &refs);
    for (i, a) in authors.iter().enumerate() {
        for k in 0..25u64 {
            let key = format!("k{:02}", (k * 7 + i as u64) % 30);
            set(
                &mut r,
                id,
                a,
                key.as_bytes(),
                key.as_bytes(),
                T0 + k * 4 + i as u64,
            );
        }
    }
    for query in [
        Query::all(),
        Query::all().sort_by(SortBy::KeyAuthor, SortDirection::Desc),
        Query::single_latest_per_key(),
        Query::single_latest_per_key()
            .sort_direction(SortDirection::Desc)
            .offset(3)
            .limit(7),
        Query::key_prefix("k1").offset(2),
    ] {
        let expected = query_all(r.indexed_mut(), id, &query).unwrap();
        for budget in [1, 2, 3, 5, 1000] {
            let mut got = Vec::new();
            let mut cursor = None;
            for _ in 0..10_000 {
                let page = run_query(r.indexed_mut(), id, &query, cursor, budget).unwrap();
                assert!(page.entries.len() <= budget.max(4), "budget {budget}");
                got.extend(page.entries);
                cursor = page.next;
                if cursor.is_none() {
                    break;
                }
            }
            assert_eq!(got, expected, "{query:?} budget {budget}");
        }
    }
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

fn remote_entries_need_sync_enabled_and_a_valid_shape<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut r = Replicas::new(store, ReplicaConfig::default());
    r.import_namespace(now(T0), Capability::Write(secret.clone()))
        .unwrap();
    r.open(id, OpenOpts::default()).unwrap();
    let e = SignedEntry::new(&secret, &a, b"k", Record::new(Hash::new(b"v"), 1, T0));
    assert!(matches!(
        r.insert_remote(now(T0), id, e.clone(), peer(2), ContentStatus::Missing),
        Err(ReplicaError::SyncDisabled(_))
    ));
    assert!(matches!(
        r.sync_initial_message(id),
        Err(ReplicaError::SyncDisabled(_))
    ));
    r.set_sync(id, true).unwrap();
    r.insert_remote(now(T0), id, e, peer(2), ContentStatus::Missing)
        .unwrap();
    // Length without content is refused on the sync path too (iroh-docs checks it on gossip only).
    let bad = SignedEntry::new(&secret, &a, b"bad", Record::new(Hash::EMPTY, 7, T0));
    let msg = Message::new(vec![MessagePart::RangeItem(RangeItem {
        range: ranger::Range::new(RecordIdentifier::zero(), RecordIdentifier::zero()),
        values: vec![(bad, ContentStatus::Missing)],
        have_local: true,
    })]);
    let mut outcome = SyncOutcome::default();
    r.sync_process_message(now(T0), id, msg, peer(2), &mut outcome)
        .unwrap();
    assert_eq!(outcome.num_recv, 1);
    assert!(r.get_exact(id, a.id(), b"bad", true).unwrap().is_none());
}

fn signatures_checked_ahead_change_no_result<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut r = replicas(store, &secret, &[&a]);
    r.set_sync(id, true).unwrap();
    set(&mut r, id, &a, b"held", b"newer", T0 + 5);
    let entry =
        |key: &[u8], wall| SignedEntry::new(&secret, &a, key, Record::new(Hash::new(key), 1, wall));
    let new = entry(b"new", T0);
    let good = entry(b"forged", T0);
    // The signatures of `good` over another record.
    let forged = SignedEntry::from_parts(
        *good.signature(),
        Entry::new(good.id().clone(), Record::new(Hash::new(b"other"), 1, T0)),
    );
    let held_older = entry(b"held", T0);
    let msg = |values: Vec<SignedEntry>| {
        Message::new(vec![MessagePart::RangeItem(RangeItem {
            range: ranger::Range::new(RecordIdentifier::zero(), RecordIdentifier::zero()),
            values: values
                .into_iter()
                .map(|e| (e, ContentStatus::Missing))
                .collect(),
            have_local: true,
        })])
    };
    let message = msg(vec![new.clone(), forged.clone(), held_older]);
    let unchecked = r.unchecked_entries(id, &message).unwrap();
    assert_eq!(
        unchecked,
        vec![&new, &forged],
        "the held entry needs no check"
    );
    let checked = CheckedSignatures::check(unchecked);
    assert!(checked.contains(&new) && !checked.contains(&forged));
    // Vouching for `good` does not let the forgery with its signatures in.
    let mut vouched = checked.clone();
    vouched.extend(CheckedSignatures::check([&good]));
    r.add_checked_signatures(vouched);
    let mut outcome = SyncOutcome::default();
    r.sync_process_message(now(T0), id, message, peer(2), &mut outcome)
        .unwrap();
    assert!(r.get_exact(id, a.id(), b"new", false).unwrap().is_some());
    assert!(r.get_exact(id, a.id(), b"forged", false).unwrap().is_none());
    // Without checks ahead, entries are verified as before.
    let later = entry(b"later", T0);
    r.sync_process_message(now(T0), id, msg(vec![later]), peer(2), &mut outcome)
        .unwrap();
    assert!(r.get_exact(id, a.id(), b"later", false).unwrap().is_some());
}

fn replica_sync<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut alice = replicas(store, &secret, &[&a]);
    let mut bob = replicas(MemBackend::new(), &secret, &[&a]);
    for k in ["ape", "eel", "fox", "gnu"] {
        set(&mut alice, id, &a, k.as_bytes(), b"a", T0);
    }
    for k in ["bee", "cat", "doe", "eel", "fox", "hog"] {
        set(&mut bob, id, &a, k.as_bytes(), b"b", T0 + 1);
    }
    let (_, _, oa, ob) = sync(&mut alice, &mut bob, id, T0 + 2);
    assert_eq!(oa.num_sent, ob.num_recv);
    assert_eq!(ob.num_sent, oa.num_recv);
    let all =
        |r: &mut Replicas<_>| keys_of(&query_all(r.indexed_mut(), id, &Query::all()).unwrap());
    let expected: Vec<_> = ["ape", "bee", "cat", "doe", "eel", "fox", "gnu", "hog"]
        .iter()
        .map(|k| (k.as_bytes().to_vec(), a.id()))
        .collect();
    assert_eq!(all(&mut alice), expected);
    assert_eq!(
        keys_of(&query_all(bob.indexed_mut(), id, &Query::all()).unwrap()),
        expected
    );
    // The later writes won on both sides.
    let eel = alice.get_exact(id, a.id(), b"eel", false).unwrap().unwrap();
    assert_eq!(eel.timestamp(), T0 + 1);
    assert_eq!(oa.heads_received.get(&a.id()), Some(T0 + 1));
}

/// The divergence iroh-docs cannot resolve: one side deleted "foo" while the other still has
/// an older "foo/x". Sheaf nodes end with the same set whichever side starts the sync.
fn converge_after_prefix_delete(x_store: impl Backend, y_store: impl Backend, x_starts: bool) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut x = replicas(x_store, &secret, &[&a]);
    let mut y = replicas(y_store, &secret, &[&a]);
    set(&mut x, id, &a, b"foo/x", b"old", T0);
    set(&mut y, id, &a, b"foo/x", b"old", T0);
    set(&mut y, id, &a, b"fooz", b"z", T0 + 2);
    x.delete_prefix(now(T0 + 1), id, a.id(), b"foo").unwrap();
    if x_starts {
        sync(&mut x, &mut y, id, T0 + 3);
    } else {
        sync(&mut y, &mut x, id, T0 + 3);
    }
    let xs = query_all(x.indexed_mut(), id, &Query::all().include_empty()).unwrap();
    let ys = query_all(y.indexed_mut(), id, &Query::all().include_empty()).unwrap();
    assert_eq!(xs, ys);
    let keys: Vec<Vec<u8>> = keys_of(&xs).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, vec![b"foo".to_vec(), b"fooz".to_vec()]);
}

fn sync_after_prefix_delete_converges<B: Backend>(store: B) {
    converge_after_prefix_delete(store, MemBackend::new(), true);
    converge_after_prefix_delete(MemBackend::new(), MemBackend::new(), false);
}

fn no_remote_insert_event_for_obsolete_entries<B: Backend>(store: B) {
    let secret = ns(1);
    let a = author(1);
    let id = secret.id();
    let mut alice = replicas(store, &secret, &[&a]);
    let mut bob = replicas(MemBackend::new(), &secret, &[&a]);
    set(&mut alice, id, &a, b"ape", b"1", T0);
    // Alice's initial message anchors the sync; before Bob answers, Alice overwrites "ape".
    let init = alice.sync_initial_message(id).unwrap();
    set(&mut bob, id, &a, b"ape", b"0", T0 - 1);
    let mut ob = SyncOutcome::default();
    let reply = bob
        .sync_process_message(now(T0), id, init, peer(1), &mut ob)
        .unwrap()
        .unwrap();
    set(&mut alice, id, &a, b"ape", b"2", T0 + 5);
    events(&mut alice);
    let mut oa = SyncOutcome::default();
    let back = alice
        .sync_process_message(now(T0 + 6), id, reply, peer(2), &mut oa)
        .unwrap();
    assert!(
        events(&mut alice).is_empty(),
        "bob's older ape must not surface as an insert"
    );
    assert_eq!((ob.num_sent, ob.num_recv), (1, 0));
    assert_eq!(
        (oa.num_sent, oa.num_recv),
        (back.as_ref().map_or(0, |m| m.value_count()), 1)
    );
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

for_each_backend!(
    basics,
    content_hashes,
    timestamps,
    future_timestamps,
    insert_empty,
    prefix_delete,
    tombstones_block_older_entries_unlike_iroh_docs,
    prefix_ending_in_ff_has_a_correct_bound_unlike_iroh_docs,
    delete_edge_cases,
    heads_never_regress_unlike_iroh_docs,
    byte_keys,
    capability,
    open_close_and_remove,
    queries,
    queries_page_across_budgets,
    download_policies,
    remote_entries_need_sync_enabled_and_a_valid_shape,
    signatures_checked_ahead_change_no_result,
    replica_sync,
    sync_after_prefix_delete_converges,
    no_remote_insert_event_for_obsolete_entries,
    commits_are_scheduled,
    commands_round_trip,
    entry_fingerprints_cover_tombstones,
);
