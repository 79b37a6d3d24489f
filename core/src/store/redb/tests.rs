//! [`RedbBackend`] tests: differential against [`MemBackend`] (in memory and on a file that is
//! reopened at random points), persistence and crash behaviour, schema versions and foreign or
//! damaged files.

use std::ops::Bound;

use bytes::Bytes;
use quickcheck::{Arbitrary, Gen, QuickCheck};

use super::*;
use crate::{
    entry::Record,
    keys::NamespaceSecret,
    store::{put_prefix_aware, FilterKind, MemBackend, PutOutcome},
    testutil::{author, ns, peer, T0},
};
use crate::{
    ranger::{Fingerprint, Range},
    store::Indexed,
    RecordIdentifier,
};
use ::redb::TableDefinition;

/// Namespaces: entries go to the first two, the third is only ever queried or registered.
fn secret(i: u8) -> NamespaceSecret {
    ns(i % 3 + 1)
}

/// Namespace ids for range bounds: ours, plus the extremes.
fn bound_namespace(i: u8) -> NamespaceId {
    match i % 5 {
        3 => NamespaceId::from_bytes([0; 32]),
        4 => NamespaceId::from_bytes([0xff; 32]),
        i => secret(i).id(),
    }
}

/// Author ids for bounds: the three writers and the extremes.
fn bound_author(i: u8) -> AuthorId {
    match i % 5 {
        3 => AuthorId::from_bytes([0; 32]),
        4 => AuthorId::from_bytes([0xff; 32]),
        i => author(i + 1).id(),
    }
}

fn small(g: &mut Gen, n: usize) -> usize {
    usize::arbitrary(g) % n
}

fn key(g: &mut Gen) -> Vec<u8> {
    let len = small(g, 4);
    (0..len)
        .map(|_| *g.choose(&[b'a', b'b', 0x00, 0xff]).unwrap_or(&b'a'))
        .collect()
}

fn bound<T>(g: &mut Gen, mut value: impl FnMut(&mut Gen) -> T) -> Bound<T> {
    match small(g, 3) {
        0 => Bound::Unbounded,
        1 => Bound::Included(value(g)),
        _ => Bound::Excluded(value(g)),
    }
}

fn limit(g: &mut Gen) -> usize {
    if small(g, 8) == 0 {
        usize::MAX
    } else {
        small(g, 6)
    }
}

/// A record identifier, mostly in namespace `ns`, sometimes in another one.
fn id(g: &mut Gen, ns: u8) -> RecordIdentifier {
    let space = if bool::arbitrary(g) {
        secret(ns).id()
    } else {
        bound_namespace(u8::arbitrary(g))
    };
    let k = key(g);
    RecordIdentifier::new(space, bound_author(u8::arbitrary(g)), k)
}

/// A range of one of the three forms: `x == y`, `x < y` or `x > y` (the last two by chance).
fn range(g: &mut Gen, ns: u8) -> Range {
    let x = id(g, ns);
    let y = if small(g, 4) == 0 {
        x.clone()
    } else {
        id(g, ns)
    };
    Range::new(x, y)
}

/// A suffix bound: `author ‖ key`, or a short byte string (a partial author).
fn suffix_bound(g: &mut Gen) -> Vec<u8> {
    if small(g, 4) == 0 {
        key(g)
    } else {
        suffix(bound_author(u8::arbitrary(g)), &key(g))
    }
}

fn policy(i: u8) -> DownloadPolicy {
    match i % 3 {
        0 => DownloadPolicy::default(),
        1 => DownloadPolicy::NothingExcept(vec![FilterKind::Prefix(Bytes::from_static(b"a"))]),
        _ => DownloadPolicy::EverythingExcept(vec![
            FilterKind::Exact(Bytes::from_static(b"b")),
            FilterKind::Prefix(Bytes::from_static(&[0xff])),
        ]),
    }
}

/// One store operation; namespaces, authors and peers are small indexes.
#[derive(Debug, Clone)]
enum Op {
    Put(u8, u8, Vec<u8>, u64, u8),
    PutPrefixAware(u8, u8, Vec<u8>, u64, u8),
    Remove(u8, u8, Vec<u8>),
    Get(u8, u8, Vec<u8>),
    PrefixedBy(u8, u8, Vec<u8>),
    PrefixParents(u8, u8, Vec<u8>),
    NamespaceLen(u8),
    FirstId(u8),
    RangeLen(u8, Range),
    RangeFingerprint(u8, Range),
    RangePivot(u8, Range, usize),
    RangeEntries(u8, Range, usize, usize),
    ScanAuthorKey(u8, Bound<Vec<u8>>, Bound<Vec<u8>>, bool, usize),
    ScanKeyAuthor(
        u8,
        Bound<(Bytes, AuthorId)>,
        Bound<(Bytes, AuthorId)>,
        bool,
        usize,
    ),
    Heads(u8),
    ContentHashes,
    PutAuthor(u8),
    GetAuthor(u8),
    DeleteAuthor(u8),
    ListAuthors,
    PutNamespace(u8, bool),
    GetNamespace(u8),
    ListNamespaces,
    RemoveNamespace(u8),
    SetPolicy(u8, u8),
    GetPolicy(u8),
    RegisterPeer(u8, u8),
    SyncPeers(u8),
    Flush,
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Self {
        let ns = u8::arbitrary(g) % 3;
        let writer = u8::arbitrary(g) % 2;
        let a = u8::arbitrary(g) % 3 + 1;
        match small(g, 34) {
            0..=5 => Op::Put(
                writer,
                a,
                key(g),
                u64::arbitrary(g) % 6,
                u8::arbitrary(g) % 3,
            ),
            6..=8 => Op::PutPrefixAware(
                writer,
                a,
                key(g),
                u64::arbitrary(g) % 6,
                u8::arbitrary(g) % 3,
            ),
            9 | 10 => Op::Remove(ns, a, key(g)),
            11 => Op::Get(ns, a, key(g)),
            12 if bool::arbitrary(g) => Op::PrefixedBy(ns, a, key(g)),
            12 => Op::PrefixParents(ns, a, key(g)),
            13 => Op::NamespaceLen(ns),
            14 => Op::FirstId(ns),
            15 => Op::RangeLen(ns, range(g, ns)),
            16 => Op::RangeFingerprint(ns, range(g, ns)),
            17 => Op::RangePivot(ns, range(g, ns), small(g, 12)),
            18 | 19 => Op::RangeEntries(ns, range(g, ns), small(g, 4), limit(g)),
            20 => Op::ScanAuthorKey(
                ns,
                bound(g, suffix_bound),
                bound(g, suffix_bound),
                bool::arbitrary(g),
                limit(g),
            ),
            21 => {
                let mut kb = |g: &mut Gen| (Bytes::from(key(g)), bound_author(u8::arbitrary(g)));
                let lower = bound(g, &mut kb);
                let upper = bound(g, &mut kb);
                Op::ScanKeyAuthor(ns, lower, upper, bool::arbitrary(g), limit(g))
            }
            22 => Op::Heads(ns),
            23 => match small(g, 4) {
                0 => Op::ContentHashes,
                1 => Op::ListAuthors,
                2 => Op::ListNamespaces,
                _ => Op::GetAuthor(a),
            },
            24 => match small(g, 3) {
                0 => Op::PutAuthor(a),
                1 => Op::DeleteAuthor(a),
                _ => Op::GetNamespace(ns),
            },
            25 => Op::PutNamespace(ns, bool::arbitrary(g)),
            26 => Op::RemoveNamespace(ns),
            27 => Op::SetPolicy(ns, u8::arbitrary(g)),
            28 => Op::GetPolicy(ns),
            29..=31 => Op::RegisterPeer(ns % 2, u8::arbitrary(g) % 8),
            32 => Op::SyncPeers(ns),
            _ => Op::Flush,
        }
    }
}

/// Everything a store method can return, comparable.
#[derive(Debug, PartialEq)]
enum Out {
    Unit,
    Put(PutOutcome),
    Entry(Option<SignedEntry>),
    Entries(Vec<SignedEntry>),
    Len(usize),
    Id(Option<RecordIdentifier>),
    Fp(Fingerprint),
    Heads(AuthorHeads),
    Hashes(Vec<Hash>),
    Author(Option<Author>),
    Bool(bool),
    Authors(Vec<AuthorId>),
    Capability(Option<Capability>),
    Namespaces(Vec<(NamespaceId, CapabilityKind)>),
    Policy(Option<DownloadPolicy>),
    Peers(Vec<PeerId>),
}

fn signed(ns: u8, a: u8, key: &[u8], ts: u64, value: u8) -> SignedEntry {
    let record = if value == 0 {
        Record::empty(T0 + ts)
    } else {
        Record::new(Hash::new([value]), 1, T0 + ts)
    };
    SignedEntry::new(&secret(ns), &author(a), key, record)
}

fn apply<B: Backend>(s: &mut Indexed<B>, op: &Op) -> Result<Out, StoreError> {
    let nsid = |i: u8| secret(i).id();
    Ok(match op {
        Op::Put(n, a, k, ts, v) => {
            s.put(signed(*n, *a, k, *ts, *v))?;
            Out::Unit
        }
        Op::PutPrefixAware(n, a, k, ts, v) => {
            Out::Put(put_prefix_aware(s, signed(*n, *a, k, *ts, *v))?)
        }
        Op::Remove(n, a, k) => Out::Entry(s.remove(nsid(*n), author(*a).id(), k)?),
        Op::Get(n, a, k) => Out::Entry(s.get(nsid(*n), author(*a).id(), k)?),
        Op::PrefixedBy(n, a, k) => Out::Entries(s.prefixed_by(nsid(*n), author(*a).id(), k)?),
        Op::PrefixParents(n, a, k) => {
            Out::Entries(s.prefix_parents(nsid(*n), author(*a).id(), k)?)
        }
        Op::NamespaceLen(n) => Out::Len(s.namespace_len(nsid(*n))?),
        Op::FirstId(n) => Out::Id(s.first_id(nsid(*n))?),
        Op::RangeLen(n, r) => Out::Len(s.range_len(nsid(*n), r)?),
        Op::RangeFingerprint(n, r) => Out::Fp(s.range_fingerprint(nsid(*n), r)?),
        Op::RangePivot(n, r, o) => Out::Id(s.range_pivot(nsid(*n), r, *o)?),
        Op::RangeEntries(n, r, skip, limit) => {
            Out::Entries(s.range_entries(nsid(*n), r, *skip, *limit)?)
        }
        Op::ScanAuthorKey(n, lo, hi, rev, limit) => {
            Out::Entries(s.scan_author_key(nsid(*n), lo.clone(), hi.clone(), *rev, *limit)?)
        }
        Op::ScanKeyAuthor(n, lo, hi, rev, limit) => {
            Out::Entries(s.scan_key_author(nsid(*n), lo.clone(), hi.clone(), *rev, *limit)?)
        }
        Op::Heads(n) => Out::Heads(s.author_heads(nsid(*n))?),
        Op::ContentHashes => Out::Hashes(s.content_hashes()?),
        Op::PutAuthor(a) => {
            s.put_author(author(*a))?;
            Out::Unit
        }
        Op::GetAuthor(a) => Out::Author(s.get_author(author(*a).id())?),
        Op::DeleteAuthor(a) => Out::Bool(s.delete_author(author(*a).id())?),
        Op::ListAuthors => Out::Authors(s.list_authors()?),
        Op::PutNamespace(n, write) => {
            let cap = if *write {
                Capability::Write(secret(*n))
            } else {
                Capability::Read(nsid(*n))
            };
            s.put_namespace(cap)?;
            Out::Unit
        }
        Op::GetNamespace(n) => Out::Capability(s.get_namespace(nsid(*n))?),
        Op::ListNamespaces => Out::Namespaces(s.list_namespaces()?),
        Op::RemoveNamespace(n) => {
            s.remove_namespace(nsid(*n))?;
            Out::Unit
        }
        Op::SetPolicy(n, p) => {
            s.set_download_policy(nsid(*n), &policy(*p))?;
            Out::Unit
        }
        Op::GetPolicy(n) => Out::Policy(s.get_download_policy(nsid(*n))?),
        Op::RegisterPeer(n, p) => {
            s.register_useful_peer(nsid(*n), peer(*p))?;
            Out::Unit
        }
        Op::SyncPeers(n) => Out::Peers(s.sync_peers(nsid(*n))?),
        Op::Flush => {
            s.flush()?;
            Out::Unit
        }
    })
}

/// Everything observable about a store, for comparisons after a run or a reopen.
fn snapshot<B: Backend>(s: &mut Indexed<B>) -> Result<Vec<Out>, StoreError> {
    let all = Range::new(RecordIdentifier::zero(), RecordIdentifier::zero());
    let mut out = vec![
        Out::Hashes(s.content_hashes()?),
        Out::Authors(s.list_authors()?),
        Out::Namespaces(s.list_namespaces()?),
    ];
    for n in 0..3 {
        let id = secret(n).id();
        out.push(Out::Len(s.namespace_len(id)?));
        out.push(Out::Id(s.first_id(id)?));
        out.push(Out::Fp(s.range_fingerprint(id, &all)?));
        out.push(Out::Entries(s.range_entries(id, &all, 0, usize::MAX)?));
        out.push(Out::Entries(s.scan_key_author(
            id,
            Bound::Unbounded,
            Bound::Unbounded,
            false,
            usize::MAX,
        )?));
        out.push(Out::Heads(s.author_heads(id)?));
        out.push(Out::Capability(s.get_namespace(id)?));
        out.push(Out::Policy(s.get_download_policy(id)?));
        out.push(Out::Peers(s.sync_peers(id)?));
    }
    for a in 1..=3 {
        out.push(Out::Author(s.get_author(author(a).id())?));
    }
    Ok(out)
}

/// Applies `ops` to both stores, comparing every result; `reopen` is called before an op when
/// it says so (for the file-backed run).
fn differential(
    ops: &[Op],
    redb: &mut Indexed<RedbBackend>,
    mut reopen: impl FnMut(usize, &mut Indexed<RedbBackend>) -> bool,
) -> bool {
    let mut mem = Indexed::new(MemBackend::new());
    for (i, op) in ops.iter().enumerate() {
        if !reopen(i, redb) {
            return false;
        }
        let got = apply(redb, op).map_err(|e| e.to_string());
        let want = apply(&mut mem, op).map_err(|e| e.to_string());
        if got != want {
            eprintln!("op {i} {op:?}:\n redb {got:?}\n mem  {want:?}");
            return false;
        }
    }
    let (got, want) = (
        snapshot(redb).map_err(|e| e.to_string()),
        snapshot(&mut mem).map_err(|e| e.to_string()),
    );
    if got != want {
        eprintln!("final state:\n redb {got:?}\n mem  {want:?}");
        return false;
    }
    true
}

#[test]
fn differential_against_mem_store() {
    fn prop(ops: Vec<Op>) -> bool {
        let Ok(redb) = RedbBackend::memory() else {
            return false;
        };
        differential(&ops, &mut Indexed::new(redb), |_, _| true)
    }
    QuickCheck::new()
        .tests(300)
        .rng(Gen::new(100))
        .quickcheck(prop as fn(Vec<Op>) -> bool);
}

#[test]
fn differential_on_a_file_reopened_at_random_points() {
    fn prop(ops: Vec<Op>, reopen_at: Vec<u8>) -> bool {
        let Ok(dir) = tempfile::tempdir() else {
            return false;
        };
        let path = dir.path().join("store.redb");
        let Ok(redb) = RedbBackend::persistent(&path) else {
            return false;
        };
        let mut redb = Indexed::new(redb);
        let reopen_at: Vec<usize> = reopen_at
            .iter()
            .map(|i| usize::from(*i) % (ops.len() + 1))
            .take(3)
            .collect();
        differential(&ops, &mut redb, |i, store| {
            if !reopen_at.contains(&i) {
                return true;
            }
            if store.flush().is_err() {
                return false;
            }
            // Drop the old store (and its file lock) before opening the file again.
            let old = std::mem::replace(
                store,
                match RedbBackend::memory() {
                    Ok(s) => Indexed::new(s),
                    Err(_) => return false,
                },
            );
            drop(old);
            match RedbBackend::persistent(&path) {
                Ok(s) => {
                    *store = Indexed::new(s);
                    true
                }
                Err(e) => {
                    eprintln!("reopen failed: {e}");
                    false
                }
            }
        })
    }
    QuickCheck::new()
        .tests(60)
        .rng(Gen::new(40))
        .quickcheck(prop as fn(Vec<Op>, Vec<u8>) -> bool);
}

/// A store with content in every table.
fn fill(s: &mut dyn Backend) {
    for n in 0..2u8 {
        s.put_namespace(Capability::Write(secret(n))).unwrap();
        for a in 1..=3u8 {
            for (i, k) in [&b"a"[..], b"ab", b"b", b"", &[0xff, 0]].iter().enumerate() {
                s.put(signed(n, a, k, i as u64 + u64::from(a), (i % 3) as u8))
                    .unwrap();
            }
        }
        s.set_download_policy(secret(n).id(), &policy(n + 1))
            .unwrap();
        for p in 0..7 {
            s.register_useful_peer(secret(n).id(), peer(p)).unwrap();
        }
    }
    s.put_namespace(Capability::Read(secret(2).id())).unwrap();
    s.put_author(author(1)).unwrap();
    s.put_author(author(2)).unwrap();
}

#[test]
fn flushed_data_survives_reopen_and_the_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let mut store = Indexed::new(RedbBackend::persistent(&path).unwrap());
    let mut mem = Indexed::new(MemBackend::new());
    fill(&mut store);
    fill(&mut mem);
    let before = snapshot(&mut store).unwrap();
    assert_eq!(before, snapshot(&mut mem).unwrap());
    store.flush().unwrap();
    drop(store);

    let mut store = Indexed::new(RedbBackend::persistent(&path).unwrap());
    assert_eq!(store.indexed_namespaces(), 0, "indexes are built lazily");
    assert_eq!(snapshot(&mut store).unwrap(), before);
    // The rebuilt index answers ranges like the reference.
    let r = Range::new(
        RecordIdentifier::new(secret(0).id(), author(2).id(), b"a"),
        RecordIdentifier::new(secret(0).id(), author(1).id(), b"b"),
    );
    let len = store.range_len(secret(0).id(), &r).unwrap();
    assert!(len > 0);
    assert_eq!(len, mem.range_len(secret(0).id(), &r).unwrap());
    assert_eq!(
        store.range_fingerprint(secret(0).id(), &r).unwrap(),
        mem.range_fingerprint(secret(0).id(), &r).unwrap()
    );
    // And keeps working after the reopen.
    let e = signed(0, 3, b"new", 50, 1);
    store.put(e.clone()).unwrap();
    mem.put(e).unwrap();
    assert_eq!(snapshot(&mut store).unwrap(), snapshot(&mut mem).unwrap());
}

#[test]
fn drop_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let mut store = Indexed::new(RedbBackend::persistent(&path).unwrap());
    fill(&mut store);
    let before = snapshot(&mut store).unwrap();
    drop(store);
    let mut store = Indexed::new(RedbBackend::persistent(&path).unwrap());
    assert_eq!(snapshot(&mut store).unwrap(), before);
}

#[test]
fn a_crash_loses_exactly_the_unflushed_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let mut store = Indexed::new(RedbBackend::persistent(&path).unwrap());
    fill(&mut store);
    store.flush().unwrap();
    let flushed = snapshot(&mut store).unwrap();

    // Unflushed: new entries (in an indexed namespace and a new one), a removal, an author,
    // a namespace removal, policies and peers.
    store.put(signed(0, 1, b"zzz", 99, 1)).unwrap();
    store.put(signed(2, 1, b"x", 99, 1)).unwrap();
    assert!(store
        .remove(secret(0).id(), author(1).id(), b"a")
        .unwrap()
        .is_some());
    store.put_author(author(3)).unwrap();
    store.remove_namespace(secret(1).id()).unwrap();
    store
        .set_download_policy(secret(0).id(), &policy(0))
        .unwrap();
    store.register_useful_peer(secret(0).id(), peer(9)).unwrap();
    assert_ne!(snapshot(&mut store).unwrap(), flushed);
    store.into_backend().crash();

    let mut store = Indexed::new(RedbBackend::persistent(&path).unwrap());
    assert_eq!(snapshot(&mut store).unwrap(), flushed);
}

#[test]
fn flush_without_writes_keeps_the_transaction() {
    let mut store = Indexed::new(RedbBackend::memory().unwrap());
    assert_eq!(store.namespace_len(secret(0).id()).unwrap(), 0);
    store.flush().unwrap();
    assert!(
        store.backend().txn.is_some(),
        "a read-only transaction is not committed"
    );
    store.put(signed(0, 1, b"a", 1, 1)).unwrap();
    store.flush().unwrap();
    assert!(store.backend().txn.is_none());
    assert_eq!(store.namespace_len(secret(0).id()).unwrap(), 1);
}

#[test]
fn heads_never_regress() {
    let mut store = Indexed::new(RedbBackend::memory().unwrap());
    store.put(signed(0, 1, b"a", 5, 1)).unwrap();
    store.put(signed(0, 1, b"a", 2, 1)).unwrap();
    store.remove(secret(0).id(), author(1).id(), b"a").unwrap();
    assert_eq!(
        store
            .author_heads(secret(0).id())
            .unwrap()
            .get(&author(1).id()),
        Some(T0 + 5)
    );
    store.remove_namespace(secret(0).id()).unwrap();
    assert!(store.author_heads(secret(0).id()).unwrap().is_empty());
}

#[test]
fn namespace_bounds_at_the_extremes_of_the_id_space() {
    assert_eq!(successor(&[0xff; 32]), None);
    let mut id = [0u8; 32];
    id[31] = 0xff;
    id[30] = 7;
    let mut want = [0u8; 32];
    want[30] = 8;
    assert_eq!(successor(&id), Some(want));
}

#[test]
fn a_newer_schema_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    drop(Indexed::new(RedbBackend::persistent(&path).unwrap()));
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(VERSION_KEY, 7)
            .unwrap();
        txn.commit().unwrap();
    }
    match RedbBackend::persistent(&path) {
        Err(StoreError::UnsupportedVersion {
            found: 7,
            supported,
        }) => assert_eq!(supported, SCHEMA_VERSION),
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    let db = Database::create(&path).unwrap();
    let txn = db.begin_write().unwrap();
    let version = txn
        .open_table(META)
        .unwrap()
        .get(VERSION_KEY)
        .unwrap()
        .map(|v| v.value());
    assert_eq!(version, Some(7));
}

#[test]
fn an_unversioned_redb_file_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    drop(Database::create(&path).unwrap());
    let mut store = Indexed::new(RedbBackend::persistent(&path).unwrap());
    assert_eq!(store.namespace_len(secret(0).id()).unwrap(), 0);
    drop(store);
    let db = Database::create(&path).unwrap();
    let txn = db.begin_write().unwrap();
    let version = txn
        .open_table(META)
        .unwrap()
        .get(VERSION_KEY)
        .unwrap()
        .map(|v| v.value());
    assert_eq!(version, Some(SCHEMA_VERSION));
}

#[test]
fn a_version_2_file_loses_its_summaries_and_keeps_its_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let id = secret(0).id();
    let want = {
        let mut store = Indexed::new(RedbBackend::persistent(&path).unwrap());
        for k in 0..50u32 {
            let record = Record::new(Hash::new(k.to_be_bytes()), 1, T0);
            store
                .put(SignedEntry::new(
                    &secret(0),
                    &author(1),
                    &k.to_be_bytes(),
                    record,
                ))
                .unwrap();
        }
        let x = store.first_id(id).unwrap().unwrap();
        let fp = store
            .range_fingerprint(id, &Range::new(x.clone(), x))
            .unwrap();
        store.flush_with(true).unwrap();
        fp
    };
    // Back to version 2: a summary, a wrong one, and no chunk rows.
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.delete_table(CHUNKS).unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(VERSION_KEY, 2)
            .unwrap();
        let wrong = NamespaceSummary {
            count: 9,
            fingerprint: Fingerprint([1; 32]),
        };
        txn.open_table(SUMMARIES)
            .unwrap()
            .insert(id.as_bytes(), &wrong.to_bytes()[..])
            .unwrap();
        txn.commit().unwrap();
    }
    let mut store = Indexed::new(RedbBackend::persistent(&path).unwrap());
    assert_eq!(store.backend_mut().get_summary(id).unwrap(), None);
    assert_eq!(store.namespace_len(id).unwrap(), 50);
    let x = store.first_id(id).unwrap().unwrap();
    assert_eq!(
        store
            .range_fingerprint(id, &Range::new(x.clone(), x))
            .unwrap(),
        want
    );
    assert_eq!(store.stats().builds, 1);
}

#[test]
fn foreign_files_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    // Random bytes, a text file, and a valid redb header followed by garbage.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    };
    let valid = dir.path().join("valid.redb");
    drop(RedbBackend::persistent(&valid).unwrap());
    let mut header_then_garbage = std::fs::read(&valid).unwrap();
    let len = header_then_garbage.len();
    header_then_garbage[512..].copy_from_slice(&random(len - 512));
    let random = random(65_536);
    for (name, bytes) in [
        ("random", random.clone()),
        ("text", b"hello, this is not a database\n".repeat(100)),
        ("garbled", header_then_garbage),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let result = RedbBackend::persistent(&path);
        assert!(result.is_err(), "{name}: opened");
    }
}

#[test]
fn a_redb_file_with_other_tables_under_our_names_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.redb");
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        let table: TableDefinition<u64, u64> = TableDefinition::new("records");
        txn.open_table(table).unwrap().insert(1, 2).unwrap();
        txn.commit().unwrap();
    }
    assert!(matches!(
        RedbBackend::persistent(&path),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn undecodable_rows_are_corrupt_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let mut store = Indexed::new(RedbBackend::persistent(&path).unwrap());
    fill(&mut store);
    drop(store);
    let n = secret(0).id();
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut records = txn.open_table(RECORDS).unwrap();
            let suffix = suffix(author(1).id(), b"a");
            records
                .insert((n.as_bytes(), &suffix[..]), &[1u8, 2, 3][..])
                .unwrap();
            // A suffix too short to hold an author.
            records
                .insert((secret(1).id().as_bytes(), &[7u8][..]), &[0u8][..])
                .unwrap();
        }
        txn.open_table(SYNC_PEERS)
            .unwrap()
            .insert(n.as_bytes(), &[1u8; 33][..])
            .unwrap();
        txn.open_table(DOWNLOAD_POLICY)
            .unwrap()
            .insert(n.as_bytes(), &[9u8][..])
            .unwrap();
        txn.open_table(NAMESPACES)
            .unwrap()
            .insert(n.as_bytes(), (9, &[0u8; 32]))
            .unwrap();
        txn.commit().unwrap();
    }
    let mut store = Indexed::new(RedbBackend::persistent(&path).unwrap());
    let is_corrupt = |r: Result<_, StoreError>| matches!(r, Err(StoreError::Corrupt(_)));
    assert!(is_corrupt(store.get(n, author(1).id(), b"a").map(|_| ())));
    assert!(is_corrupt(store.namespace_len(n).map(|_| ())));
    assert!(is_corrupt(store.namespace_len(secret(1).id()).map(|_| ())));
    assert!(is_corrupt(store.content_hashes().map(|_| ())));
    assert!(is_corrupt(
        store.prefixed_by(n, author(1).id(), b"").map(|_| ())
    ));
    assert!(is_corrupt(store.sync_peers(n).map(|_| ())));
    assert!(is_corrupt(store.get_download_policy(n).map(|_| ())));
    assert!(is_corrupt(store.get_namespace(n).map(|_| ())));
    assert!(is_corrupt(store.list_namespaces().map(|_| ())));
    // Intact rows still read.
    assert!(store.get(n, author(2).id(), b"a").unwrap().is_some());
}

#[test]
fn the_store_is_send() {
    fn send<T: Send>() {}
    send::<RedbBackend>();
}

/// The backend conformance suite, in memory and across a reopen of a file.
mod conformance {
    use super::RedbBackend;

    crate::conformance_suite!(memory, || RedbBackend::memory()
        .expect("redb opens in memory"));

    #[test]
    fn persistence_across_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.redb");
        let open = |p: &std::path::Path| RedbBackend::persistent(p).expect("redb opens");
        crate::store::conformance::persistence(open(&path), |old| {
            drop(old);
            open(&path)
        });
    }
}
