//! The conformance suite of [`Backend`]: checks that an implementation keeps every contract
//! the trait's docs state, and that [`Indexed`] over it answers exactly what brute force over
//! its entries gives.
//!
//! Compiled for this crate's tests and behind the `test-utils` feature. Every check takes a
//! fresh, empty backend, drives it with a fixed, seeded workload (the same on every run) and
//! panics with a message naming the contract on the first difference from a plain model.
//!
//! # Running it on a backend
//!
//! `MemBackend` and `RedbBackend` run it from this crate's tests. A backend in another crate
//! adds `sheaf-core = { version = "…", features = ["test-utils"] }` to its
//! `[dev-dependencies]` and, in a test module:
//!
//! ```ignore
//! // One `#[test]` per check, each on a backend the closure makes.
//! sheaf_core::conformance_suite!(my_backend, || MyBackend::open_temporary());
//!
//! // Durability across a flush and a reopen (the closure gets the old backend, flushed, and
//! // returns one reading the same storage):
//! #[test]
//! fn my_backend_persists() {
//!     let dir = tempfile::tempdir().unwrap();
//!     let path = dir.path().join("db");
//!     sheaf_core::store::conformance::persistence(MyBackend::open(&path), |old| {
//!         drop(old);
//!         MyBackend::open(&path)
//!     });
//! }
//! ```
//!
//! [`run_all`] runs every check but persistence in one call, for a harness without the macro.

use std::{
    collections::{BTreeMap, BTreeSet},
    ops::Bound,
};

use bytes::Bytes;

use super::{suffix, suffix_of, Backend, DownloadPolicy, FilterKind, Indexed, PEERS_PER_DOC};
use crate::{
    entry::{Record, RecordIdentifier, SignedEntry},
    hash::{Hash, PeerId},
    keys::{Author, AuthorId, Capability, CapabilityKind, NamespaceId, NamespaceSecret},
    ranger::{Fingerprint, Range},
};

/// Defines one `#[test]` per conformance check, each on a fresh backend from `$new`, inside a
/// module named `$name`. See the [module docs](crate::store::conformance).
#[macro_export]
macro_rules! conformance_suite {
    ($name:ident, $new:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::conformance_suite!(@tests $new;
                entries_by_author_key,
                entries_by_key_author,
                prefixed_by,
                replace_and_remove,
                heads_never_regress,
                authors,
                namespaces,
                useful_peers,
                download_policy,
                content_hashes,
                index_matches_brute_force,
                index_within_a_tiny_budget,
            );
        }
    };
    (@tests $new:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let new = $new;
                $crate::store::conformance::$check(new());
            }
        )*
    };
}

/// Runs every check but [`persistence`], each on a backend from `new`.
pub fn run_all<B: Backend>(mut new: impl FnMut() -> B) {
    entries_by_author_key(new());
    entries_by_key_author(new());
    prefixed_by(new());
    replace_and_remove(new());
    heads_never_regress(new());
    authors(new());
    namespaces(new());
    useful_peers(new());
    download_policy(new());
    content_hashes(new());
    index_matches_brute_force(new());
    index_within_a_tiny_budget(new());
}

/// A small deterministic generator (SplitMix64): the workload is the same on every run.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// A short key over an alphabet with the edge bytes `0x00` and `0xFF`.
    fn key(&mut self) -> Vec<u8> {
        let len = self.below(4);
        (0..len)
            .map(|_| [0x00, b'a', b'b', 0xff][self.below(4)])
            .collect()
    }
}

/// Namespace `i` (three of them).
fn secret(i: usize) -> NamespaceSecret {
    NamespaceSecret::from_bytes(&[i as u8 % 3 + 1; 32])
}

/// Author `i` (three of them).
fn author(i: usize) -> Author {
    Author::from_bytes(&[i as u8 % 3 + 11; 32])
}

/// A signed entry; `value == 0` makes a tombstone.
fn entry(ns: usize, a: usize, key: &[u8], ts: u64, value: u8) -> SignedEntry {
    let record = if value == 0 {
        Record::empty(ts)
    } else {
        Record::new(Hash::new([value]), 1, ts)
    };
    SignedEntry::new(&secret(ns), &author(a), key, record)
}

/// What a backend should hold: entries by identifier.
type Model = BTreeMap<RecordIdentifier, SignedEntry>;

/// Writes `n` random entries (over all namespaces) to both the backend and the model.
fn fill<B: Backend>(b: &mut B, model: &mut Model, g: &mut Gen, n: usize) {
    for _ in 0..n {
        let e = entry(
            g.below(3),
            g.below(3),
            &g.key(),
            g.below(50) as u64,
            g.below(3) as u8,
        );
        b.put(e.clone()).expect("put");
        model.insert(e.id().clone(), e);
    }
}

/// The model's entries of `ns`, in suffix order.
fn model_entries(model: &Model, ns: NamespaceId) -> Vec<SignedEntry> {
    model
        .values()
        .filter(|e| e.namespace() == ns)
        .cloned()
        .collect()
}

/// Whether `v` is within the bounds.
fn within<T: Ord>(v: &T, lower: &Bound<T>, upper: &Bound<T>) -> bool {
    let above = match lower {
        Bound::Included(l) => v >= l,
        Bound::Excluded(l) => v > l,
        Bound::Unbounded => true,
    };
    let below = match upper {
        Bound::Included(u) => v <= u,
        Bound::Excluded(u) => v < u,
        Bound::Unbounded => true,
    };
    above && below
}

/// A random bound built from `value`.
fn bound<T>(g: &mut Gen, value: T) -> Bound<T> {
    match g.below(3) {
        0 => Bound::Unbounded,
        1 => Bound::Included(value),
        _ => Bound::Excluded(value),
    }
}

/// The model's answer to a scan: entries within the bounds on `order`, possibly reversed,
/// at most `limit`.
fn model_scan<T: Ord>(
    mut entries: Vec<SignedEntry>,
    order: impl Fn(&SignedEntry) -> T,
    lower: &Bound<T>,
    upper: &Bound<T>,
    reverse: bool,
    limit: usize,
) -> Vec<SignedEntry> {
    entries.sort_by_key(|e| order(e));
    entries.retain(|e| within(&order(e), lower, upper));
    if reverse {
        entries.reverse();
    }
    entries.truncate(limit);
    entries
}

/// A limit for a scan: often unbounded, sometimes 0 or small.
fn limit(g: &mut Gen) -> usize {
    match g.below(4) {
        0 => usize::MAX,
        1 => 0,
        _ => 1 + g.below(6),
    }
}

/// `scan_author_key`: suffix order within one namespace, every bound kind, reverse, limits,
/// inverted and empty bounds, and nothing from other namespaces.
pub fn entries_by_author_key<B: Backend>(mut b: B) {
    let mut g = Gen(1);
    let mut model = Model::new();
    fill(&mut b, &mut model, &mut g, 120);
    for ns in 0..3 {
        let id = secret(ns).id();
        let all = b
            .scan_author_key(id, Bound::Unbounded, Bound::Unbounded, false, usize::MAX)
            .expect("scan");
        assert_eq!(
            all,
            model_entries(&model, id),
            "scan_author_key: all entries of a namespace in ascending suffix order"
        );
        for (e, m) in all.iter().zip(model_entries(&model, id)) {
            assert_eq!(
                b.get(id, e.author(), e.key()).expect("get"),
                Some(m),
                "get returns what was put"
            );
        }
        for _ in 0..200 {
            let a = suffix(author(g.below(4)).id(), &g.key());
            let z = suffix(author(g.below(4)).id(), &g.key());
            let (lower, upper) = (bound(&mut g, a), bound(&mut g, z));
            let (reverse, limit) = (g.below(2) == 1, limit(&mut g));
            let got = b
                .scan_author_key(id, lower.clone(), upper.clone(), reverse, limit)
                .expect("scan");
            let suffix_of_entry = |e: &SignedEntry| suffix_of(e.id()).to_vec();
            let want = model_scan(
                model_entries(&model, id),
                suffix_of_entry,
                &lower,
                &upper,
                reverse,
                limit,
            );
            assert_eq!(
                got, want,
                "scan_author_key({lower:?}, {upper:?}, reverse {reverse}, limit {limit})"
            );
        }
    }
    let unknown = NamespaceId::from_bytes([0xee; 32]);
    assert!(
        b.scan_author_key(unknown, Bound::Unbounded, Bound::Unbounded, false, 9)
            .expect("scan")
            .is_empty(),
        "an unknown namespace has no entries"
    );
}

/// `scan_key_author`: `(key, author)` order, bounds, reverse and limits.
pub fn entries_by_key_author<B: Backend>(mut b: B) {
    let mut g = Gen(2);
    let mut model = Model::new();
    fill(&mut b, &mut model, &mut g, 120);
    let order = |e: &SignedEntry| (e.id().key_bytes(), e.author());
    for ns in 0..3 {
        let id = secret(ns).id();
        let all = b
            .scan_key_author(id, Bound::Unbounded, Bound::Unbounded, false, usize::MAX)
            .expect("scan");
        let want = model_scan(
            model_entries(&model, id),
            order,
            &Bound::Unbounded,
            &Bound::Unbounded,
            false,
            usize::MAX,
        );
        assert_eq!(
            all, want,
            "scan_key_author: all entries in (key, author) order"
        );
        for _ in 0..200 {
            let lo = (Bytes::from(g.key()), author(g.below(4)).id());
            let hi = (Bytes::from(g.key()), author(g.below(4)).id());
            let (lower, upper) = (bound(&mut g, lo), bound(&mut g, hi));
            let (reverse, limit) = (g.below(2) == 1, limit(&mut g));
            let got = b
                .scan_key_author(id, lower.clone(), upper.clone(), reverse, limit)
                .expect("scan");
            let want = model_scan(
                model_entries(&model, id),
                order,
                &lower,
                &upper,
                reverse,
                limit,
            );
            assert_eq!(
                got, want,
                "scan_key_author({lower:?}, {upper:?}, reverse {reverse}, limit {limit})"
            );
        }
    }
}

/// `prefixed_by`: the author's entries whose key starts with the prefix (the prefix itself
/// included), in key order, for empty, `0xFF`-ending and absent prefixes.
pub fn prefixed_by<B: Backend>(mut b: B) {
    let mut g = Gen(3);
    let mut model = Model::new();
    fill(&mut b, &mut model, &mut g, 120);
    let mut prefixes: Vec<Vec<u8>> = vec![vec![], vec![0xff], vec![0xff, 0xff], vec![b'a', 0xff]];
    prefixes.extend((0..20).map(|_| g.key()));
    for ns in 0..3 {
        let id = secret(ns).id();
        for a in 0..3 {
            let author = author(a).id();
            for prefix in &prefixes {
                let got = b.prefixed_by(id, author, prefix).expect("prefixed_by");
                let want: Vec<SignedEntry> = model_entries(&model, id)
                    .into_iter()
                    .filter(|e| e.author() == author && e.key().starts_with(prefix))
                    .collect();
                assert_eq!(got, want, "prefixed_by({prefix:?})");
            }
        }
    }
}

/// `put` replaces an entry with the same identifier; `remove` returns it once, drops it from
/// both orderings and leaves everything else.
pub fn replace_and_remove<B: Backend>(mut b: B) {
    let mut g = Gen(4);
    let mut model = Model::new();
    fill(&mut b, &mut model, &mut g, 60);
    let id = secret(0).id();
    let older = entry(0, 0, b"k", 10, 1);
    let newer = entry(0, 0, b"k", 20, 2);
    b.put(older).expect("put");
    b.put(newer.clone()).expect("put");
    model.insert(newer.id().clone(), newer.clone());
    assert_eq!(
        b.get(id, author(0).id(), b"k").expect("get"),
        Some(newer.clone()),
        "put replaces the entry with the same identifier"
    );
    let victims: Vec<SignedEntry> = model_entries(&model, id).into_iter().step_by(3).collect();
    for e in &victims {
        let removed = b.remove(id, e.author(), e.key()).expect("remove");
        assert_eq!(
            removed.as_ref(),
            Some(e),
            "remove returns the removed entry"
        );
        assert_eq!(
            b.remove(id, e.author(), e.key()).expect("remove"),
            None,
            "a second remove finds nothing"
        );
        assert_eq!(b.get(id, e.author(), e.key()).expect("get"), None);
        model.remove(e.id());
    }
    let unknown = NamespaceId::from_bytes([0xee; 32]);
    assert_eq!(
        b.remove(unknown, author(0).id(), b"k").expect("remove"),
        None,
        "removing from an unknown namespace finds nothing"
    );
    for ns in 0..3 {
        let id = secret(ns).id();
        let all = b
            .scan_author_key(id, Bound::Unbounded, Bound::Unbounded, false, usize::MAX)
            .expect("scan");
        assert_eq!(all, model_entries(&model, id), "entries after removals");
        let by_key: BTreeSet<SignedEntry> = b
            .scan_key_author(id, Bound::Unbounded, Bound::Unbounded, false, usize::MAX)
            .expect("scan")
            .into_iter()
            .collect();
        let want: BTreeSet<SignedEntry> = all.into_iter().collect();
        assert_eq!(by_key, want, "the (key, author) ordering follows removals");
    }
}

/// Author heads are the maximum timestamp ever put per author: older entries and removals
/// never lower them; `remove_namespace` deletes them.
pub fn heads_never_regress<B: Backend>(mut b: B) {
    let id = secret(0).id();
    b.put(entry(0, 0, b"a", 50, 1)).expect("put");
    b.put(entry(0, 0, b"b", 20, 1)).expect("put");
    b.put(entry(0, 1, b"a", 7, 1)).expect("put");
    b.put(entry(1, 0, b"a", 99, 1)).expect("put");
    let heads = b.author_heads(id).expect("heads");
    assert_eq!(heads.get(&author(0).id()), Some(50), "head is the maximum");
    assert_eq!(heads.get(&author(1).id()), Some(7));
    assert_eq!(heads.len(), 2, "heads are per namespace");
    b.put(entry(0, 0, b"a", 10, 1)).expect("put");
    b.remove(id, author(0).id(), b"b").expect("remove");
    b.remove(id, author(0).id(), b"a").expect("remove");
    assert_eq!(
        b.author_heads(id).expect("heads").get(&author(0).id()),
        Some(50),
        "heads never regress (unlike iroh-docs, whose heads older entries overwrite)"
    );
    b.remove_namespace(id).expect("remove_namespace");
    assert!(
        b.author_heads(id).expect("heads").is_empty(),
        "remove_namespace deletes heads"
    );
    assert_eq!(
        b.author_heads(secret(1).id())
            .expect("heads")
            .get(&author(0).id()),
        Some(99),
        "other namespaces keep theirs"
    );
}

/// Authors: put, get, delete (reporting whether it existed), list ascending by id.
pub fn authors<B: Backend>(mut b: B) {
    assert!(b.list_authors().expect("list").is_empty());
    for a in [2, 0, 1, 0] {
        b.put_author(author(a)).expect("put_author");
    }
    let mut want: Vec<AuthorId> = (0..3).map(|a| author(a).id()).collect();
    want.sort();
    assert_eq!(
        b.list_authors().expect("list"),
        want,
        "authors ascending, no duplicates"
    );
    let got = b.get_author(author(1).id()).expect("get_author");
    assert_eq!(got.map(|a| a.to_bytes()), Some(author(1).to_bytes()));
    assert!(b.delete_author(author(1).id()).expect("delete"));
    assert!(
        !b.delete_author(author(1).id()).expect("delete"),
        "deleting twice"
    );
    assert!(b.get_author(author(1).id()).expect("get").is_none());
    assert_eq!(b.list_authors().expect("list").len(), 2);
}

/// Namespaces: capabilities replace each other, list ascending, and `remove_namespace`
/// removes the namespace with its entries, heads, peers and policy, and nothing else.
pub fn namespaces<B: Backend>(mut b: B) {
    let (s0, s1) = (secret(0), secret(1));
    b.put_namespace(Capability::Read(s0.id())).expect("put");
    b.put_namespace(Capability::Write(s1.clone())).expect("put");
    assert_eq!(
        b.get_namespace(s0.id()).expect("get").map(|c| c.kind()),
        Some(CapabilityKind::Read)
    );
    b.put_namespace(Capability::Write(s0.clone())).expect("put");
    let cap = b.get_namespace(s0.id()).expect("get");
    assert_eq!(
        cap.and_then(|c| c.secret().map(|s| s.to_bytes())),
        Some(s0.to_bytes()),
        "a write capability replaces a read one"
    );
    let mut want = vec![
        (s0.id(), CapabilityKind::Write),
        (s1.id(), CapabilityKind::Write),
    ];
    want.sort();
    assert_eq!(
        b.list_namespaces().expect("list"),
        want,
        "namespaces ascending"
    );
    for ns in 0..2 {
        b.put(entry(ns, 0, b"x", 5, 1)).expect("put");
        b.set_download_policy(secret(ns).id(), &DownloadPolicy::default())
            .expect("policy");
        b.register_useful_peer(secret(ns).id(), PeerId::from_bytes([7; 32]))
            .expect("peer");
    }
    b.remove_namespace(s0.id()).expect("remove_namespace");
    assert!(b.get_namespace(s0.id()).expect("get").is_none());
    assert_eq!(b.list_namespaces().expect("list").len(), 1);
    let gone = |b: &mut B, ns: NamespaceId| {
        b.scan_author_key(ns, Bound::Unbounded, Bound::Unbounded, false, usize::MAX)
            .expect("scan")
            .is_empty()
            && b.get_download_policy(ns).expect("policy").is_none()
            && b.sync_peers(ns).expect("peers").is_empty()
    };
    assert!(
        gone(&mut b, s0.id()),
        "remove_namespace removes entries, policy and peers"
    );
    assert!(!gone(&mut b, s1.id()), "other namespaces are untouched");
}

/// Useful peers: newest first, a re-registered peer moves to the front, at most
/// [`PEERS_PER_DOC`] per namespace.
pub fn useful_peers<B: Backend>(mut b: B) {
    let (id, other) = (secret(0).id(), secret(1).id());
    let peer = |i: u8| PeerId::from_bytes([i; 32]);
    assert!(b.sync_peers(id).expect("peers").is_empty());
    for i in 0..(PEERS_PER_DOC as u8 + 3) {
        b.register_useful_peer(id, peer(i)).expect("register");
    }
    let want: Vec<PeerId> = (3..PEERS_PER_DOC as u8 + 3).rev().map(peer).collect();
    assert_eq!(
        b.sync_peers(id).expect("peers"),
        want,
        "newest first, capped"
    );
    b.register_useful_peer(id, peer(4)).expect("register");
    let got = b.sync_peers(id).expect("peers");
    assert_eq!(
        got.first(),
        Some(&peer(4)),
        "a known peer moves to the front"
    );
    assert_eq!(got.len(), PEERS_PER_DOC, "no duplicates");
    assert!(
        b.sync_peers(other).expect("peers").is_empty(),
        "per namespace"
    );
}

/// Download policies round-trip, default to none and are replaced by a later one.
pub fn download_policy<B: Backend>(mut b: B) {
    let id = secret(0).id();
    assert!(b.get_download_policy(id).expect("get").is_none());
    let policies = [
        DownloadPolicy::default(),
        DownloadPolicy::NothingExcept(vec![
            FilterKind::Prefix(Bytes::from_static(b"a/")),
            FilterKind::Exact(Bytes::from_static(&[0xff, 0])),
        ]),
        DownloadPolicy::EverythingExcept(vec![FilterKind::Exact(Bytes::new())]),
    ];
    for p in &policies {
        b.set_download_policy(id, p).expect("set");
        assert_eq!(b.get_download_policy(id).expect("get").as_ref(), Some(p));
    }
    assert!(b
        .get_download_policy(secret(1).id())
        .expect("get")
        .is_none());
}

/// Content hashes: one per entry of every namespace, tombstones included.
pub fn content_hashes<B: Backend>(mut b: B) {
    let mut g = Gen(5);
    let mut model = Model::new();
    fill(&mut b, &mut model, &mut g, 80);
    let mut got = b.content_hashes().expect("hashes");
    let mut want: Vec<Hash> = model.values().map(|e| e.content_hash()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "content_hashes lists every entry's hash");
}

/// Identifiers used as range bounds: every stored one, plus others in and around the
/// namespace (other namespaces, the extremes of the id space).
fn probes(entries: &[SignedEntry], ns: NamespaceId, g: &mut Gen) -> Vec<RecordIdentifier> {
    let mut probes: Vec<RecordIdentifier> = entries.iter().map(|e| e.id().clone()).collect();
    for _ in 0..6 {
        let space = [
            ns,
            secret(g.below(3)).id(),
            NamespaceId::from_bytes([0; 32]),
            NamespaceId::from_bytes([0xff; 32]),
        ][g.below(4)];
        probes.push(RecordIdentifier::new(
            space,
            author(g.below(4)).id(),
            g.key(),
        ));
    }
    probes
}

/// Checks every range answer of `indexed` for `ns` against brute force over the backend's
/// own entries.
fn check_index<B: Backend>(indexed: &mut Indexed<B>, ns: NamespaceId, g: &mut Gen) {
    let ours = indexed
        .backend_mut()
        .scan_author_key(ns, Bound::Unbounded, Bound::Unbounded, false, usize::MAX)
        .expect("scan");
    assert_eq!(
        indexed.namespace_len(ns).expect("len"),
        ours.len(),
        "namespace_len"
    );
    assert_eq!(
        indexed.first_id(ns).expect("first_id"),
        ours.first().map(|e| e.id().clone()),
        "first_id"
    );
    let probes = probes(&ours, ns, g);
    for _ in 0..120 {
        let (x, y) = (
            &probes[g.below(probes.len())],
            &probes[g.below(probes.len())],
        );
        let range = Range::new(x.clone(), y.clone());
        let want: Vec<SignedEntry> = ours
            .iter()
            .filter(|e| range.contains(e.id()))
            .cloned()
            .collect();
        let fp = want
            .iter()
            .fold(Fingerprint::EMPTY, |f, e| f.xor(&e.fingerprint()));
        assert_eq!(
            indexed.range_len(ns, &range).expect("len"),
            want.len(),
            "range_len"
        );
        assert_eq!(
            indexed.range_fingerprint(ns, &range).expect("fp"),
            fp,
            "range_fingerprint of {range:?}"
        );
        assert_eq!(
            indexed
                .range_entries(ns, &range, 0, usize::MAX)
                .expect("entries"),
            want,
            "range_entries"
        );
        let (skip, limit) = (g.below(4), 1 + g.below(4));
        let page: Vec<SignedEntry> = want.iter().skip(skip).take(limit).cloned().collect();
        assert_eq!(
            indexed
                .range_entries(ns, &range, skip, limit)
                .expect("entries"),
            page,
            "range_entries skip {skip} limit {limit}"
        );
        // The pivot: cyclic from the first entry at or after x, as iroh-docs counts.
        let start = want.iter().position(|e| e.id() >= x).unwrap_or(want.len());
        // Range order: the same cycle.
        let in_order: Vec<SignedEntry> = want[start..]
            .iter()
            .chain(&want[..start])
            .cloned()
            .collect();
        let (skip, limit) = (g.below(want.len() + 2), 1 + g.below(4));
        let page: Vec<SignedEntry> = in_order.iter().skip(skip).take(limit).cloned().collect();
        assert_eq!(
            indexed
                .range_entries_in_order(ns, &range, skip, limit)
                .expect("entries"),
            page,
            "range_entries_in_order skip {skip} limit {limit} of {range:?}"
        );
        assert_eq!(
            indexed
                .range_entries_in_order(ns, &range, 0, usize::MAX)
                .expect("entries"),
            in_order,
            "range_entries_in_order of {range:?}"
        );
        for offset in [0, 1, want.len() / 2, want.len() + 1] {
            let pivot =
                (!want.is_empty()).then(|| want[(start + offset) % want.len()].id().clone());
            assert_eq!(
                indexed.range_pivot(ns, &range, offset).expect("pivot"),
                pivot,
                "range_pivot offset {offset}"
            );
        }
    }
}

/// [`Indexed`] over the backend: range fingerprints, counts, pivots and entries equal brute
/// force, when the index is built from existing entries and while writes and removals
/// through it keep it in step (including a namespace removed and refilled).
pub fn index_matches_brute_force<B: Backend>(b: B) {
    index_checks(Indexed::new(b));
}

/// [`index_matches_brute_force`] with a memory budget of zero bytes: every query may fold
/// or drop the other namespaces' indexes, so answers come from chunks read back from the
/// backend, rebuilt lists and the namespaces' summaries; they must still equal brute force.
pub fn index_within_a_tiny_budget<B: Backend>(b: B) {
    let mut indexed = Indexed::with_budget(b, 0);
    indexed = index_checks(indexed);
    let stats = indexed.stats();
    assert!(stats.evictions > 0, "a zero budget evicts: {stats:?}");
    assert!(
        stats.expanded <= 1,
        "at most the namespace in use stays expanded: {stats:?}"
    );
}

fn index_checks<B: Backend>(mut indexed: Indexed<B>) -> Indexed<B> {
    let mut g = Gen(6);
    let mut model = Model::new();
    fill(&mut indexed, &mut model, &mut g, 150);
    for round in 0..4 {
        for ns in 0..3 {
            check_index(&mut indexed, secret(ns).id(), &mut g);
        }
        // Writes and removals through the loaded index.
        fill(&mut indexed, &mut model, &mut g, 40);
        let id = secret(round % 3).id();
        let victims: Vec<SignedEntry> = model_entries(&model, id).into_iter().step_by(4).collect();
        for e in victims {
            indexed.remove(id, e.author(), e.key()).expect("remove");
            model.remove(e.id());
        }
        if round == 2 {
            indexed.remove_namespace(id).expect("remove_namespace");
            model.retain(|_, e| e.namespace() != id);
            fill(&mut indexed, &mut model, &mut g, 30);
        }
    }
    // A rebuilt index answers the same.
    indexed.forget_all().expect("forget_all");
    for ns in 0..3 {
        check_index(&mut indexed, secret(ns).id(), &mut g);
    }
    indexed
}

/// Everything observable about a backend, for comparing before and after a reopen.
fn snapshot<B: Backend>(b: &mut B) -> String {
    let mut out = format!(
        "{:?}\n{:?}\n",
        b.list_authors().expect("authors"),
        b.list_namespaces().expect("namespaces")
    );
    for ns in 0..3 {
        let id = secret(ns).id();
        out += &format!(
            "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n",
            b.scan_author_key(id, Bound::Unbounded, Bound::Unbounded, false, usize::MAX)
                .expect("scan"),
            b.scan_key_author(id, Bound::Unbounded, Bound::Unbounded, false, usize::MAX)
                .expect("scan"),
            b.author_heads(id).expect("heads"),
            b.get_download_policy(id).expect("policy"),
            b.sync_peers(id).expect("peers"),
        );
    }
    for a in 0..3 {
        out += &format!(
            "{:?}\n",
            b.get_author(author(a).id())
                .expect("author")
                .map(|a| a.to_bytes())
        );
    }
    out
}

/// Durability: after `flush`, a backend opened again on the same storage (`reopen` gets the
/// old one, flushed, and returns the new one) holds exactly what was written, and keeps
/// working.
pub fn persistence<B: Backend>(mut b: B, reopen: impl FnOnce(B) -> B) {
    let mut g = Gen(7);
    let mut model = Model::new();
    fill(&mut b, &mut model, &mut g, 60);
    b.remove(secret(0).id(), author(0).id(), b"")
        .expect("remove");
    for ns in 0..2 {
        b.put_namespace(Capability::Write(secret(ns)))
            .expect("namespace");
        b.set_download_policy(secret(ns).id(), &DownloadPolicy::NothingExcept(vec![]))
            .expect("policy");
        for p in 0..3 {
            b.register_useful_peer(secret(ns).id(), PeerId::from_bytes([p; 32]))
                .expect("peer");
        }
    }
    b.put_author(author(0)).expect("author");
    let before = snapshot(&mut b);
    b.flush().expect("flush");
    let mut b = reopen(b);
    assert_eq!(
        snapshot(&mut b),
        before,
        "a flushed backend reopens with the same content"
    );
    let mut indexed = Indexed::new(b);
    check_index(&mut indexed, secret(1).id(), &mut g);
    fill(&mut indexed, &mut model, &mut g, 10);
    check_index(&mut indexed, secret(1).id(), &mut g);
}
