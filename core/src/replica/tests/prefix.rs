//! Prefix semantics of the executor: empty entries, prefix deletes, tombstones as prefix
//! parents, `0xFF` prefix bounds, author heads and arbitrary byte keys — each case where Sheaf
//! differs from iroh-docs is named after the iroh-docs behaviour.

use super::*;

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

for_each_backend!(
    insert_empty,
    prefix_delete,
    tombstones_block_older_entries_unlike_iroh_docs,
    prefix_ending_in_ff_has_a_correct_bound_unlike_iroh_docs,
    delete_edge_cases,
    heads_never_regress_unlike_iroh_docs,
    byte_keys,
);
