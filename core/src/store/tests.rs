//! Store and reconciliation tests: range semantics against a naive model, iroh-docs' ranger
//! examples, and convergence properties, on both stores.

use std::collections::BTreeSet;

use quickcheck::{Arbitrary, Gen, QuickCheck};

use crate::wire::Encode;

use super::*;
use crate::{
    entry::Record,
    hash::Hash,
    keys::NamespaceSecret,
    ranger::{initial_message, process_message, Message, NoContent, Received, SyncConfig},
    ranger::{Fingerprint, Range},
    testutil::*,
    RecordIdentifier,
};

#[test]
fn prefix_end_handles_trailing_ff() {
    assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
    assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
    assert_eq!(prefix_end(&[1, 0xff, 0xff]), Some(vec![2]));
    assert_eq!(prefix_end(&[0xff, 0xff]), None);
    assert_eq!(prefix_end(b""), None);
}

/// A small random document: entries `(author, key, ts, value)`; value 0 is a tombstone.
#[derive(Debug, Clone)]
struct Doc(Vec<(u8, Vec<u8>, u64, u8)>);

impl Arbitrary for Doc {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = usize::arbitrary(g) % 24;
        Doc((0..n)
            .map(|_| {
                let len = usize::arbitrary(g) % 4;
                let key = (0..len)
                    .map(|_| *g.choose(&[b'a', b'b', b'/', 0xff]).unwrap())
                    .collect();
                (
                    u8::arbitrary(g) % 3,
                    key,
                    u64::arbitrary(g) % 12,
                    u8::arbitrary(g) % 3,
                )
            })
            .collect())
    }
    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(self.0.shrink().map(Doc))
    }
}

fn entry(secret: &NamespaceSecret, a: u8, key: &[u8], ts: u64, value: u8) -> SignedEntry {
    let record = if value == 0 {
        Record::empty(T0 + ts)
    } else {
        Record::new(Hash::new([value]), 1, T0 + ts)
    };
    SignedEntry::new(secret, &author(a), key, record)
}

fn fill<B: Backend>(store: &mut Indexed<B>, secret: &NamespaceSecret, doc: &Doc) {
    for (a, key, ts, value) in &doc.0 {
        put_prefix_aware(store, entry(secret, *a, key, *ts, *value)).unwrap();
    }
}

fn all_entries<B: Backend>(store: &mut Indexed<B>, ns: NamespaceId) -> Vec<SignedEntry> {
    let all = Range::new(RecordIdentifier::zero(), RecordIdentifier::zero());
    store.range_entries(ns, &all, 0, usize::MAX).unwrap()
}

/// The prefix-aware union: an entry survives unless another entry of the same author whose
/// key is a prefix of (or equal to) its key is at least as new.
fn prefix_aware_union(entries: impl IntoIterator<Item = SignedEntry>) -> Vec<SignedEntry> {
    let set: BTreeSet<SignedEntry> = entries.into_iter().collect();
    let mut out: Vec<SignedEntry> = set
        .iter()
        .filter(|e| {
            !set.iter().any(|f| {
                f != *e
                    && f.author() == e.author()
                    && e.key().starts_with(f.key())
                    && f.record() >= e.record()
            })
        })
        .cloned()
        .collect();
    out.sort();
    out
}

fn range_semantics_match_the_model<B: Backend>(store: B) {
    let mut store = Indexed::new(store);
    let secret = ns(1);
    let other = ns(2);
    let mut g = Gen::new(30);
    for _ in 0..60 {
        let doc = Doc::arbitrary(&mut g);
        let s = &mut store;
        s.remove_namespace(secret.id()).unwrap();
        s.remove_namespace(other.id()).unwrap();
        fill(s, &secret, &doc);
        // Entries of another namespace must never leak into this one.
        fill(s, &other, &Doc::arbitrary(&mut g));
        let ours = all_entries(s, secret.id());
        let mut probes: Vec<RecordIdentifier> = ours.iter().map(|e| e.id().clone()).collect();
        for _ in 0..6 {
            let a = u8::arbitrary(&mut g) % 3;
            let key: Vec<u8> = (0..usize::arbitrary(&mut g) % 3)
                .map(|_| *g.choose(&[b'a', b'b', 0xff]).unwrap())
                .collect();
            let space = *g
                .choose(&[
                    secret.id(),
                    other.id(),
                    NamespaceId::from_bytes([0; 32]),
                    NamespaceId::from_bytes([0xff; 32]),
                ])
                .unwrap();
            probes.push(RecordIdentifier::new(space, author(a).id(), key));
        }
        for x in &probes {
            for y in &probes {
                let range = Range::new(x.clone(), y.clone());
                let expected: Vec<SignedEntry> = ours
                    .iter()
                    .filter(|e| range.contains(e.id()))
                    .cloned()
                    .collect();
                assert_eq!(
                    s.range_entries(secret.id(), &range, 0, usize::MAX).unwrap(),
                    expected
                );
                assert_eq!(s.range_len(secret.id(), &range).unwrap(), expected.len());
                let fp = expected
                    .iter()
                    .fold(Fingerprint::EMPTY, |f, e| f.xor(&e.fingerprint()));
                assert_eq!(s.range_fingerprint(secret.id(), &range).unwrap(), fp);
                // Pivots: cyclic from the first entry at or after x, as iroh-docs counts.
                let start = expected
                    .iter()
                    .position(|e| e.id() >= x)
                    .unwrap_or(expected.len());
                for offset in 0..expected.len() + 2 {
                    let want = (!expected.is_empty())
                        .then(|| expected[(start + offset) % expected.len()].id().clone());
                    assert_eq!(s.range_pivot(secret.id(), &range, offset).unwrap(), want);
                }
                // Range order is the pivots' order.
                let in_order: Vec<SignedEntry> = expected[start..]
                    .iter()
                    .chain(&expected[..start])
                    .cloned()
                    .collect();
                assert_eq!(
                    s.range_entries_in_order(secret.id(), &range, 0, usize::MAX)
                        .unwrap(),
                    in_order
                );
                for skip in 0..expected.len() + 1 {
                    assert_eq!(
                        s.range_entries_in_order(secret.id(), &range, skip, 2)
                            .unwrap(),
                        in_order
                            .iter()
                            .skip(skip)
                            .take(2)
                            .cloned()
                            .collect::<Vec<_>>()
                    );
                }
                if expected.len() > 2 {
                    assert_eq!(
                        s.range_entries(secret.id(), &range, 1, 1).unwrap(),
                        expected[1..2].to_vec()
                    );
                }
            }
        }
    }
}

fn store_content_matches_prefix_aware_union<B: Backend>(store: B) {
    let mut store = Indexed::new(store);
    let secret = ns(1);
    let mut g = Gen::new(30);
    for _ in 0..100 {
        store.remove_namespace(secret.id()).unwrap();
        let doc = Doc::arbitrary(&mut g);
        fill(&mut store, &secret, &doc);
        let entries: Vec<SignedEntry> = doc
            .0
            .iter()
            .map(|(a, k, t, v)| entry(&secret, *a, k, *t, *v))
            .collect();
        assert_eq!(
            all_entries(&mut store, secret.id()),
            prefix_aware_union(entries)
        );
    }
}

crate::testutil::for_each_backend!(
    range_semantics_match_the_model,
    store_content_matches_prefix_aware_union
);

fn step<B: Backend>(
    s: &mut Indexed<B>,
    ns: NamespaceId,
    config: &SyncConfig,
    m: Message,
    seen: &mut BTreeSet<SignedEntry>,
) -> Option<Message> {
    let now = crate::time::Now::new(crate::time::Mono(0), T0 + 1_000_000_000);
    let limits = crate::entry::EntryLimits::default();
    let reply = process_message(
        s,
        ns,
        config,
        m,
        |e| limits.check_remote(e, ns, now).is_ok(),
        |_, _, _: Received| {},
        &mut NoContent,
    )
    .unwrap();
    for (e, _) in reply.iter().flat_map(|r| r.values()) {
        assert!(
            seen.insert(e.clone()),
            "entry {e:?} sent twice with {config:?}"
        );
    }
    reply
}

/// Reconciles two stores directly (no executor), returning messages sent by each side and
/// asserting nobody sends the same entry twice.
fn reconcile<A: Backend, B: Backend>(
    a: &mut Indexed<A>,
    b: &mut Indexed<B>,
    ns: NamespaceId,
    config: &SyncConfig,
) -> (usize, usize) {
    let mut msg = Some(initial_message(a, ns).unwrap());
    let (mut sent_a, mut sent_b) = (1usize, 0usize);
    let mut seen_a: BTreeSet<SignedEntry> = BTreeSet::new();
    let mut seen_b: BTreeSet<SignedEntry> = BTreeSet::new();
    for round in 0.. {
        assert!(round < 100, "no convergence in 100 rounds");
        let Some(m) = msg.take() else { break };
        let reply = if round % 2 == 0 {
            step(b, ns, config, m, &mut seen_b)
        } else {
            step(a, ns, config, m, &mut seen_a)
        };
        if reply.is_some() {
            if round % 2 == 0 {
                sent_b += 1;
            } else {
                sent_a += 1;
            }
        }
        msg = reply;
    }
    (sent_a, sent_b)
}

fn simple_set(secret: &NamespaceSecret, keys: &[&str], ts: u64) -> Indexed<MemBackend> {
    let mut s = Indexed::new(MemBackend::new());
    for k in keys {
        put_prefix_aware(&mut s, entry(secret, 1, k.as_bytes(), ts, 1)).unwrap();
    }
    s
}

/// iroh-docs' ranger examples (its `test_paper_*`, `test_limits`, `test_prefixes_*`), with its
/// policy: Sheaf sends the same number of messages.
#[test]
fn iroh_docs_ranger_examples_with_its_policy() {
    let secret = ns(1);
    let id = secret.id();
    type Case<'a> = (&'a [&'a str], &'a [&'a str], (usize, usize));
    let cases: &[Case] = &[
        (
            &["ape", "eel", "fox", "gnu"],
            &["bee", "cat", "doe", "eel", "fox", "hog"],
            (3, 2),
        ),
        (
            &["ape", "eel", "fox", "gnu"],
            &["bee", "cat", "doe", "eel", "hog"],
            (3, 2),
        ),
        (
            &["ape", "bee", "cat", "doe", "eel", "fox", "gnu", "hog"],
            &["ape", "cat", "eel", "gnu"],
            (3, 2),
        ),
        (&["ape", "bee", "cat"], &["ape", "cat", "doe"], (2, 2)),
        (
            &["/foo/bar", "/foo/baz", "/foo/cat", "/foo/doe"],
            &["/foo/bar", "/foo/bat", "/foo/cat", "/foo/dog"],
            (2, 2),
        ),
        (&[], &["/foo/bar", "/foo/baz"], (1, 1)),
        (&["/foo/bar", "/foo/baz"], &[], (2, 1)),
    ];
    for (alice, bob, expected) in cases {
        let mut a = simple_set(&secret, alice, 0);
        let mut b = simple_set(&secret, bob, 0);
        let counts = reconcile(&mut a, &mut b, id, &SyncConfig::IROH_DOCS);
        assert_eq!(counts, *expected, "{alice:?} vs {bob:?}");
        let union = prefix_aware_union(
            all_entries(&mut a, id)
                .into_iter()
                .chain(all_entries(&mut b, id)),
        );
        assert_eq!(all_entries(&mut a, id), union);
        assert_eq!(all_entries(&mut b, id), union);
    }
}

#[test]
fn equal_key_higher_value_wins_on_both_sides() {
    let secret = ns(1);
    let id = secret.id();
    let mut a = Indexed::new(MemBackend::new());
    let mut b = Indexed::new(MemBackend::new());
    put_prefix_aware(&mut a, entry(&secret, 1, b"foo", 2, 1)).unwrap();
    put_prefix_aware(&mut b, entry(&secret, 1, b"foo", 1, 1)).unwrap();
    assert_eq!(
        reconcile(&mut a, &mut b, id, &SyncConfig::IROH_DOCS),
        (2, 1)
    );
    for s in [&mut a, &mut b] {
        let all = all_entries(s, id);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].timestamp(), T0 + 2);
    }
}

#[test]
fn validate_callback_refusals_change_nothing() {
    let secret = ns(1);
    let id = secret.id();
    let mut a = simple_set(&secret, &["ape", "eel"], 0);
    let mut b = simple_set(&secret, &["bee", "eel"], 1);
    let msg = initial_message(&mut a, id).unwrap();
    let reply = process_message(
        &mut b,
        id,
        &SyncConfig::IROH_DOCS,
        msg,
        |_| false,
        |_, _, _| {},
        &mut NoContent,
    )
    .unwrap()
    .unwrap();
    let mut seen = Vec::new();
    process_message(
        &mut a,
        id,
        &SyncConfig::IROH_DOCS,
        reply.clone(),
        |e| {
            seen.push(e.key().to_vec());
            false
        },
        |_, _, _| {},
        &mut NoContent,
    )
    .unwrap();
    let sent: Vec<Vec<u8>> = reply.values().map(|(e, _)| e.key().to_vec()).collect();
    assert_eq!(seen, sent);
    assert_eq!(all_entries(&mut a, id).len(), 2);
    assert_eq!(all_entries(&mut b, id).len(), 2);
}

/// Any two documents converge to their prefix-aware union, under iroh-docs' policy, Sheaf's
/// default, wider splits and a byte budget small enough to cut almost every message.
#[test]
fn any_two_sets_converge_to_the_prefix_aware_union() {
    fn prop(alice: Doc, bob: Doc) -> bool {
        let secret = ns(1);
        let id = secret.id();
        for config in [
            SyncConfig::IROH_DOCS,
            SyncConfig::default(),
            SyncConfig {
                split_factor: 3,
                max_set_size: 2,
                max_message_bytes: usize::MAX,
                ..SyncConfig::default()
            },
            SyncConfig {
                split_factor: 4,
                max_set_size: 1,
                max_message_bytes: 700,
                ..SyncConfig::default()
            },
        ] {
            for alice_first in [true, false] {
                let mut a = Indexed::new(MemBackend::new());
                #[cfg(feature = "redb")]
                let mut b = Indexed::new(RedbBackend::memory().unwrap());
                #[cfg(not(feature = "redb"))]
                let mut b = Indexed::new(MemBackend::new());
                fill(&mut a, &secret, &alice);
                fill(&mut b, &secret, &bob);
                let union = prefix_aware_union(
                    all_entries(&mut a, id)
                        .into_iter()
                        .chain(all_entries(&mut b, id)),
                );
                if alice_first {
                    reconcile(&mut a, &mut b, id, &config);
                } else {
                    reconcile(&mut b, &mut a, id, &config);
                }
                if all_entries(&mut a, id) != union || all_entries(&mut b, id) != union {
                    return false;
                }
            }
        }
        true
    }
    QuickCheck::new()
        .tests(150)
        .rng(Gen::new(24))
        .quickcheck(prop as fn(Doc, Doc) -> bool);
}

/// A fresh peer pulling a large document: every message stays near the byte budget, nothing
/// is sent twice, and the sync completes.
#[test]
fn byte_budget_bounds_messages_and_still_converges() {
    let secret = ns(1);
    let id = secret.id();
    let mut full = Indexed::new(MemBackend::new());
    for i in 0..300u64 {
        put_prefix_aware(
            &mut full,
            entry(&secret, (i % 3) as u8, format!("k{i:04}").as_bytes(), i, 1),
        )
        .unwrap();
    }
    let budget = 8 * 1024;
    let config = SyncConfig {
        max_message_bytes: budget,
        ..SyncConfig::default()
    };
    for fresh_starts in [true, false] {
        let mut fresh = Indexed::new(MemBackend::new());
        let (mut seen_full, mut seen_fresh) = (BTreeSet::new(), BTreeSet::new());
        let mut msg = Some(if fresh_starts {
            initial_message(&mut fresh, id).unwrap()
        } else {
            initial_message(&mut full, id).unwrap()
        });
        let mut to_full = fresh_starts;
        let mut rounds = 0;
        while let Some(m) = msg.take() {
            rounds += 1;
            assert!(rounds < 200);
            let reply = if to_full {
                step(&mut full, id, &config, m, &mut seen_full)
            } else {
                step(&mut fresh, id, &config, m, &mut seen_fresh)
            };
            if let Some(r) = &reply {
                let entry_bytes: usize = r.values().map(|(e, _)| e.to_wire().len() + 1).sum();
                assert!(
                    entry_bytes <= budget + 300,
                    "{entry_bytes} bytes of entries in one message"
                );
            }
            msg = reply;
            to_full = !to_full;
        }
        assert!(rounds > 4, "the budget forced several rounds ({rounds})");
        assert_eq!(all_entries(&mut fresh, id), all_entries(&mut full, id));
    }
}

/// The index is built from several pages of the backend's scan (pages of `BUILD_PAGE`), with
/// entries of neighbouring namespaces on both sides, and answers like brute force.
#[test]
fn index_builds_across_scan_pages() {
    let (before, secret, after) = (ns(1), ns(2), ns(3));
    let mut backend = MemBackend::new();
    let n = 2 * BUILD_PAGE + 7;
    let mut fp = Fingerprint::EMPTY;
    for i in 0..n {
        let e = entry(&secret, (i % 3) as u8, format!("k{i:05}").as_bytes(), 1, 1);
        fp = fp.xor(&e.fingerprint());
        backend.put(e).unwrap();
    }
    for other in [&before, &after] {
        backend.put(entry(other, 1, b"x", 1, 1)).unwrap();
    }
    let mut indexed = Indexed::new(backend);
    let id = secret.id();
    let all = Range::new(RecordIdentifier::zero(), RecordIdentifier::zero());
    assert_eq!(indexed.namespace_len(id).unwrap(), n);
    assert_eq!(indexed.range_fingerprint(id, &all).unwrap(), fp);
    let entries = indexed.range_entries(id, &all, 0, usize::MAX).unwrap();
    assert_eq!(entries.len(), n);
    assert_eq!(
        indexed.first_id(id).unwrap().as_ref(),
        entries.first().map(|e| e.id())
    );
    assert!(entries.windows(2).all(|w| w[0].id() < w[1].id()));
}
