//! Document sessions between two real stores, through real frames and dictionaries.

use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

use super::*;
use crate::{
    entry::{EntryLimits, Record, SignedEntry},
    hash::Hash,
    keys::{Author, NamespaceSecret},
    store::{put_prefix_aware, Indexed, MemBackend},
    testutil::{now, T0},
    v2::{
        codec::Message,
        frame::{encode_frame, FrameDecoder},
        tags::ConnectionKey,
    },
};

/// One side of a document stream.
struct Side {
    store: Indexed<MemBackend>,
    dict: Dictionary,
    session: DocSession,
    /// Bytes this side wrote (document stream and control).
    bytes: usize,
}

fn secret() -> NamespaceSecret {
    NamespaceSecret::from_bytes(&[7; 32])
}

fn entry(author: u8, key: &[u8], ts: u64, value: Option<&[u8]>) -> SignedEntry {
    let record = match value {
        Some(v) => Record::new(Hash::new(v), v.len() as u64, T0 + ts),
        None => Record::empty(T0 + ts),
    };
    SignedEntry::new(&secret(), &Author::from_bytes(&[author; 32]), key, record)
}

fn store_of(entries: &[SignedEntry]) -> Indexed<MemBackend> {
    let mut s = Indexed::new(MemBackend::new());
    for e in entries {
        put_prefix_aware(&mut s, e.clone()).unwrap();
    }
    s
}

fn all(store: &mut Indexed<MemBackend>) -> Vec<SignedEntry> {
    let mut doc = IndexedDoc::new(store, secret().id(), EntryLimits::default(), now(T0));
    doc.entries(&KeyRange::all(), 0, usize::MAX).unwrap()
}

fn hasher() -> Hasher {
    let key = ConnectionKey::derive(
        &[1; 32],
        &crate::testutil::peer(1),
        &crate::testutil::peer(2),
    );
    Hasher::new(key.riblt_key())
}

/// Writes `msgs` (and the dictionary definitions they need, first) as frames; returns the
/// bytes of the control and document streams.
fn write(side: &mut Side, msgs: Vec<Message>) -> (Vec<u8>, Vec<u8>) {
    let mut control = Vec::new();
    for d in side.dict.take_definitions() {
        encode_frame(&d, &mut control).unwrap();
    }
    let mut doc = Vec::new();
    for m in &msgs {
        encode_frame(m, &mut doc).expect("every message fits a frame");
    }
    side.bytes += control.len() + doc.len();
    (control, doc)
}

fn read(bytes: &[u8]) -> Vec<Message> {
    let mut d = FrameDecoder::new();
    let mut out = Vec::new();
    for c in bytes.chunks(4096) {
        d.feed(c).unwrap();
        while let Some(m) = d.next_message().unwrap() {
            out.push(m);
        }
    }
    d.finish().unwrap();
    out
}

/// Delivers one flight to `to`; returns what it writes back.
fn deliver(to: &mut Side, flight: (Vec<u8>, Vec<u8>)) -> Result<(Vec<u8>, Vec<u8>), DocError> {
    for m in read(&flight.0) {
        let Message::Authors { first, ids } = m else {
            panic!("control holds definitions only")
        };
        to.dict.define(first, &ids).unwrap();
    }
    let mut out = Vec::new();
    for m in read(&flight.1) {
        assert!(!to.dict.is_missing_for(&m), "definitions come first");
        let mut doc = IndexedDoc::new(
            &mut to.store,
            secret().id(),
            EntryLimits::default(),
            now(T0 + 1_000_000),
        );
        out.extend(to.session.handle(&mut doc, &mut to.dict, m)?);
    }
    Ok(write(to, out))
}

/// What a run did.
#[derive(Debug)]
struct Run {
    /// Flights sent, both directions (2 = one round trip).
    flights: u32,
    bytes: usize,
    opener: DocStats,
    responder: DocStats,
}

/// Reconciles `a` (opener) and `b` (responder); checks both end with the prefix-aware union.
fn reconcile(a: &[SignedEntry], b: &[SignedEntry], config: DocConfig) -> Run {
    let mut expected = store_of(a);
    for e in b {
        put_prefix_aware(&mut expected, e.clone()).unwrap();
    }
    let expected = all(&mut expected);
    let mut opener_store = store_of(a);
    let mut dict = Dictionary::new();
    let (session, first) = {
        let mut doc = IndexedDoc::new(
            &mut opener_store,
            secret().id(),
            EntryLimits::default(),
            now(T0),
        );
        let tag = [0; 16];
        DocSession::open(config, hasher(), tag, &mut doc, &mut dict).unwrap()
    };
    let mut opener = Side {
        store: opener_store,
        dict,
        session,
        bytes: 0,
    };
    let mut responder = Side {
        store: store_of(b),
        dict: Dictionary::new(),
        session: DocSession::accept(config, hasher()),
        bytes: 0,
    };
    let mut flight = write(&mut opener, first);
    let mut flights = 1;
    let mut to_responder = true;
    while !(opener.session.is_done() && responder.session.is_done()) {
        assert!(flights < 200, "no end after 200 flights");
        let to = if to_responder {
            &mut responder
        } else {
            &mut opener
        };
        flight = deliver(to, flight).unwrap();
        to_responder = !to_responder;
        if !flight.1.is_empty() {
            flights += 1;
        }
    }
    assert!(flight.1.is_empty(), "messages after both sides were done");
    assert_eq!(all(&mut opener.store), expected, "opener");
    assert_eq!(all(&mut responder.store), expected, "responder");
    Run {
        flights,
        bytes: opener.bytes + responder.bytes,
        opener: *opener.session.stats(),
        responder: *responder.session.stats(),
    }
}

/// `n` entries of `authors` authors, keys `k0..`, all with value `v`.
fn many(n: usize, authors: u8, tag: &[u8]) -> Vec<SignedEntry> {
    (0..n)
        .map(|i| {
            let key = format!("k{i:06}");
            entry(
                1 + (i % authors as usize) as u8,
                key.as_bytes(),
                i as u64,
                Some(tag),
            )
        })
        .collect()
}

#[test]
fn equal_documents_end_at_once() {
    let a = many(100, 3, b"v");
    let run = reconcile(&a, &a, DocConfig::default());
    assert_eq!(run.responder.method, Method::Equal);
    assert_eq!(run.flights, 3, "open, DocDone, DocDone");
}

#[test]
fn a_small_difference_decodes_in_one_round_trip() {
    let shared = many(1000, 4, b"v");
    let mut a = shared.clone();
    let mut b = shared;
    a.extend(
        many(10, 2, b"only a")
            .into_iter()
            .map(|e| entry(9, &[b"a-", e.key()].concat(), 5, Some(b"x"))),
    );
    b.extend((0..7).map(|i| entry(8, format!("b-{i}").as_bytes(), 5, Some(b"y"))));
    let run = reconcile(&a, &b, DocConfig::default());
    assert_eq!(run.responder.method, Method::Riblt);
    // open + symbols; entries, wants, done; entries, done.
    assert_eq!(run.flights, 3, "{run:?}");
    assert_eq!(run.responder.entries_sent, 7);
    assert_eq!(run.opener.entries_sent, 10);
    assert_eq!(run.responder.wants_sent, 10);
}

/// A document above 16,384 entries (once the limit of symbols, which then cost a pass over
/// every stored entry) decodes by symbols too: its item hashes come from the index, which
/// keeps them with the chunk sums.
#[test]
fn a_large_document_with_a_small_difference_decodes_in_one_round_trip() {
    let shared = many(20_000, 4, b"v");
    let mut a = shared.clone();
    let mut b = shared;
    a.push(entry(9, b"only-a", 5, Some(b"x")));
    b.push(entry(8, b"only-b", 5, Some(b"y")));
    let run = reconcile(&a, &b, DocConfig::default());
    assert_eq!(run.responder.method, Method::Riblt, "{run:?}");
    assert_eq!(run.flights, 3, "{run:?}");
    // All unasked symbols travel (the responder drops those after the first frame).
    assert_eq!(run.opener.symbols_sent, 320);
    assert_eq!(run.responder.symbols_received, 320);
    assert!(run.bytes < 17_000, "{run:?}");
    // Without symbols beyond the first frame: the same flights in under 8,000 bytes.
    let config = DocConfig {
        unasked_symbols: 0,
        ..DocConfig::default()
    };
    let run = reconcile(&a, &b, config);
    assert_eq!(run.flights, 3, "{run:?}");
    assert_eq!(run.opener.symbols_sent, 64);
    assert!(run.bytes < 8_000, "{run:?}");
}

/// 200 differences (100 new entries per side) decode from the unasked symbols: no
/// `MoreSymbols` round trip. With only the first frame unasked they need one.
#[test]
fn unasked_symbols_save_the_round_trip_of_more_symbols() {
    let shared = many(20_000, 4, b"v");
    let (mut a, mut b) = (shared.clone(), shared);
    for i in 0..100 {
        a.push(entry(9, format!("only-a-{i:03}").as_bytes(), 5, Some(b"x")));
        b.push(entry(8, format!("only-b-{i:03}").as_bytes(), 5, Some(b"y")));
    }
    let run = reconcile(&a, &b, DocConfig::default());
    assert_eq!(run.responder.method, Method::Riblt, "{run:?}");
    assert_eq!(run.flights, 3, "{run:?}");
    assert_eq!(run.opener.symbols_sent, 320, "{run:?}");
    let config = DocConfig {
        unasked_symbols: 0,
        ..DocConfig::default()
    };
    let asked = reconcile(&a, &b, config);
    assert_eq!(asked.flights, 5, "{asked:?}");
    assert!(asked.opener.symbols_sent > 64, "{asked:?}");
    // Divided among documents, at least the first frame each.
    assert_eq!(DocConfig::default().for_documents(2).unasked_symbols, 160);
    assert_eq!(DocConfig::default().for_documents(10).unasked_symbols, 64);
    assert_eq!(DocConfig::default().for_documents(0).unasked_symbols, 320);
}

#[test]
fn a_large_difference_switches_to_ranges() {
    let a = many(3000, 3, b"a");
    let b = many(2000, 3, b"b");
    let run = reconcile(&a, &b, DocConfig::default());
    assert_eq!(run.responder.method, Method::Ranges);
    assert!(run.responder.turns + run.opener.turns > 0);
}

#[test]
fn an_empty_side_gets_everything_and_a_large_opener_starts_with_ranges() {
    let a = many(500, 2, b"v");
    let config = DocConfig {
        riblt_max_items: 100,
        ..DocConfig::default()
    };
    let run = reconcile(&a, &[], config);
    assert_eq!(run.opener.method, Method::Ranges);
    assert_eq!(run.opener.entries_sent, 500);
    let run = reconcile(&[], &a, config);
    assert_eq!(run.responder.entries_sent, 500);
}

/// `shared` with `d` new entries spread over its keys, alternately on `a` and on `b`.
fn spread(shared: &[SignedEntry], d: usize) -> (Vec<SignedEntry>, Vec<SignedEntry>) {
    let (mut a, mut b) = (shared.to_vec(), shared.to_vec());
    for i in 0..d {
        let at = i * shared.len() / d + 7;
        let e = entry(
            1 + (at % 4) as u8,
            format!("k{at:06}z").as_bytes(),
            500_000,
            Some(b"n"),
        );
        if i % 2 == 0 {
            a.push(e)
        } else {
            b.push(e)
        }
    }
    (a, b)
}

/// Sparse differences: sub-ranges are fingerprinted, and only the differing ones listed; dense
/// differences: sub-ranges are listed at once. Both against listing every small sub-range.
#[test]
fn sub_ranges_are_listed_at_once_only_where_differences_are_dense() {
    let shared = many(20_000, 4, b"v");
    let ranges = DocConfig {
        riblt_max_items: 0,
        ..DocConfig::default()
    };
    let always = DocConfig {
        eager_leaf: ranges.leaf,
        ..ranges
    };
    // 20,000 → 1,250 → 78 → ~5 entries per range: 4 differences touch 4 of 16, then 4 of 64 ranges.
    let (a, b) = spread(&shared, 4);
    let (sparse, eager) = (reconcile(&a, &b, ranges), reconcile(&a, &b, always));
    assert!(
        sparse.bytes * 2 < eager.bytes,
        "{sparse:?} against {eager:?}"
    );
    assert!(
        sparse.flights <= eager.flights + 2,
        "{sparse:?} against {eager:?}"
    );
    // 2,000 differences: nearly every range of 78 differs, so its sub-ranges are listed.
    let (a, b) = spread(&shared, 2_000);
    let (dense, eager) = (reconcile(&a, &b, ranges), reconcile(&a, &b, always));
    assert_eq!(dense.flights, eager.flights, "{dense:?} against {eager:?}");
    assert_eq!(dense.bytes, eager.bytes, "{dense:?} against {eager:?}");
}

#[test]
fn the_entry_budget_spreads_a_transfer_over_turns() {
    let a = many(700, 2, b"v");
    let config = DocConfig {
        max_entries_per_turn: 100,
        riblt_max_items: 0,
        ..DocConfig::default()
    };
    let run = reconcile(&a, &[], config);
    assert_eq!(run.opener.entries_sent, 700);
    assert!(run.flights >= 14, "{run:?}");
}

/// A responder drops unasked symbols that arrive after it answered, refuses symbols beyond
/// those announced, and refuses an announcement over its symbol limit.
#[test]
fn unasked_symbols_are_bounded_by_the_announcement() {
    let shared = many(500, 2, b"v");
    let mut a = shared.clone();
    a.push(entry(9, b"only-a", 5, Some(b"x")));
    let mut dict = Dictionary::new();
    let (mut store_a, mut store_b) = (store_of(&a), store_of(&shared));
    let mut opener_doc =
        IndexedDoc::new(&mut store_a, secret().id(), EntryLimits::default(), now(T0));
    let (_, out) = DocSession::open(
        DocConfig::default(),
        hasher(),
        [0; 16],
        &mut opener_doc,
        &mut dict,
    )
    .unwrap();
    let Message::DocOpen { unasked, .. } = out[0] else {
        panic!("DocOpen first");
    };
    assert_eq!(unasked, 320);
    assert_eq!(out.len(), 1 + 5, "DocOpen and five frames of 64");
    let mut doc = IndexedDoc::new(&mut store_b, secret().id(), EntryLimits::default(), now(T0));
    let mut s = DocSession::accept(DocConfig::default(), hasher());
    let mut dict = Dictionary::new();
    s.handle(&mut doc, &mut dict, out[0].clone()).unwrap();
    let answer = s.handle(&mut doc, &mut dict, out[1].clone()).unwrap();
    assert!(
        matches!(answer.last(), Some(Message::DocDone)),
        "one difference decodes from the first frame: {answer:?}"
    );
    for m in &out[2..] {
        assert!(s.handle(&mut doc, &mut dict, m.clone()).unwrap().is_empty());
    }
    assert_eq!(s.stats().symbols_received, 320);
    let beyond = Message::Symbols {
        start: 320,
        symbols: vec![crate::v2::riblt::CodedSymbol::default()],
    };
    let e = s.handle(&mut doc, &mut dict, beyond).unwrap_err();
    assert_eq!(e.code(), Some(AbortCode::Protocol));

    let mut s = DocSession::accept(DocConfig::default(), hasher());
    let Message::DocOpen {
        tag, fingerprint, ..
    } = out[0].clone()
    else {
        unreachable!()
    };
    let over = Message::DocOpen {
        tag,
        fingerprint,
        unasked: DocConfig::default().riblt.max_symbols + 1,
    };
    let e = s.handle(&mut doc, &mut dict, over).unwrap_err();
    assert_eq!(e.code(), Some(AbortCode::LimitExceeded));
}

#[test]
fn prefix_deletions_and_newer_values_converge() {
    let a = vec![
        entry(1, b"dir/a", 1, Some(b"1")),
        entry(1, b"dir/b", 2, Some(b"2")),
        entry(1, b"x", 9, Some(b"new")),
        entry(2, b"y", 1, Some(b"y")),
    ];
    let b = vec![
        entry(1, b"dir/", 5, None),
        entry(1, b"dir/c", 7, Some(b"3")),
        entry(1, b"x", 3, Some(b"old")),
    ];
    for config in [
        DocConfig::default(),
        DocConfig {
            riblt_max_items: 0,
            leaf: 1,
            fanout: 2,
            ..DocConfig::default()
        },
    ] {
        reconcile(&a, &b, config);
        reconcile(&b, &a, config);
    }
}

#[test]
fn limits_end_the_session_with_their_codes() {
    let mut dict = Dictionary::new();
    let mut store = store_of(&many(10, 1, b"v"));
    let mut doc = IndexedDoc::new(&mut store, secret().id(), EntryLimits::default(), now(T0));
    let mut s = DocSession::accept(DocConfig::default(), hasher());
    let e = s.handle(&mut doc, &mut dict, Message::DocDone).unwrap_err();
    assert_eq!(e.code(), Some(AbortCode::Protocol));
    let mut s = DocSession::accept(DocConfig::default(), hasher());
    s.handle(
        &mut doc,
        &mut dict,
        Message::DocOpen {
            tag: [0; 16],
            fingerprint: Fingerprint::default(),
            unasked: 0,
        },
    )
    .unwrap();
    let e = s
        .handle(&mut doc, &mut dict, Message::MoreSymbols { until: 5 })
        .unwrap_err();
    assert_eq!(e.code(), Some(AbortCode::Protocol));
    // Parts that do not ascend.
    let (mut s, _) = DocSession::open(
        DocConfig {
            riblt_max_items: 0,
            ..DocConfig::default()
        },
        hasher(),
        [0; 16],
        &mut doc,
        &mut dict,
    )
    .unwrap();
    dict.define(0, &[crate::keys::AuthorId::from_bytes([1; 32])])
        .unwrap();
    let part = |k: &[u8]| crate::v2::codec::Part {
        upper: crate::v2::codec::Bound::Key {
            author: 0,
            key: k.to_vec(),
        },
        mode: crate::v2::codec::PartMode::Skip,
    };
    let e = s
        .handle(
            &mut doc,
            &mut dict,
            Message::Ranges {
                parts: vec![part(b"b"), part(b"a")],
            },
        )
        .unwrap_err();
    assert_eq!(e.code(), Some(AbortCode::Protocol));
}

#[test]
fn a_turn_that_never_ends_is_bounded_in_bytes() {
    let mut dict = Dictionary::new();
    dict.define(0, &[crate::keys::AuthorId::from_bytes([1; 32])])
        .unwrap();
    let mut store = store_of(&many(10, 1, b"v"));
    let mut doc = IndexedDoc::new(&mut store, secret().id(), EntryLimits::default(), now(T0));
    let config = DocConfig {
        riblt_max_items: 0,
        ..DocConfig::default()
    };
    let (mut s, _) = DocSession::open(config, hasher(), [0; 16], &mut doc, &mut dict).unwrap();
    // Parts with 60 kB bounds, never reaching `End`: the session refuses before 8 MiB.
    let mut result = Ok(Vec::new());
    for i in 0..200u8 {
        let part = crate::v2::codec::Part {
            upper: crate::v2::codec::Bound::Key {
                author: 0,
                key: [vec![i], vec![0; 60_000]].concat(),
            },
            mode: crate::v2::codec::PartMode::Skip,
        };
        result = s.handle(&mut doc, &mut dict, Message::Ranges { parts: vec![part] });
        if result.is_err() {
            assert!(i > 120, "refused after {i} parts");
            break;
        }
    }
    let e = result.unwrap_err();
    assert_eq!(e.code(), Some(AbortCode::LimitExceeded), "{e}");
}

#[derive(Clone, Debug)]
struct Docs(Vec<SignedEntry>, Vec<SignedEntry>, DocConfig);

impl Arbitrary for Docs {
    fn arbitrary(g: &mut Gen) -> Self {
        let keys: [&[u8]; 8] = [b"", b"a", b"ab", b"abc", b"b", b"ba", b"c", b"cc"];
        let side = |g: &mut Gen| {
            let n = usize::arbitrary(g) % 40;
            (0..n)
                .map(|_| {
                    let author = 1 + u8::arbitrary(g) % 3;
                    let key = keys[usize::arbitrary(g) % keys.len()];
                    let ts = u64::from(u8::arbitrary(g) % 16);
                    let value = if u8::arbitrary(g) % 6 == 0 {
                        None
                    } else {
                        Some([u8::arbitrary(g) % 3])
                    };
                    entry(author, key, ts, value.as_ref().map(|v| v.as_slice()))
                })
                .collect::<Vec<_>>()
        };
        let shared = side(g);
        let mut a = shared.clone();
        let mut b = shared;
        a.extend(side(g));
        b.extend(side(g));
        let config = DocConfig {
            first_symbols: 1 + u64::arbitrary(g) % 64,
            unasked_symbols: u64::arbitrary(g) % 100,
            riblt_max_items: u64::arbitrary(g) % 100,
            fanout: 2 + usize::arbitrary(g) % 15,
            leaf: u64::arbitrary(g) % 8,
            eager_leaf: u64::arbitrary(g) % 8,
            max_entries_per_turn: 1 + usize::arbitrary(g) % 20,
            max_turns: 1000,
            // Small enough that replies must defer splits (and at least two splits' worth).
            max_parts: 40 + usize::arbitrary(g) % 40,
            ..DocConfig::default()
        };
        Docs(a, b, config)
    }
}

/// Any two documents, any policy: both sides end with the prefix-aware union, as with v1.
#[test]
fn prop_any_two_documents_converge_to_the_union() {
    fn prop(d: Docs) -> TestResult {
        reconcile(&d.0, &d.1, d.2);
        TestResult::passed()
    }
    QuickCheck::new()
        .tests(300)
        .quickcheck(prop as fn(Docs) -> TestResult);
}

/// Flights and bytes of small differences in a 10,000-entry document (printed for the docs).
#[test]
fn costs_of_small_differences() {
    for d in [1usize, 10, 100] {
        let shared = many(10_000, 8, b"v");
        let mut a = shared.clone();
        let mut b = shared;
        for i in 0..d {
            let e = entry(20, format!("new-{i}").as_bytes(), 1, Some(b"n"));
            if i % 2 == 0 {
                a.push(e)
            } else {
                b.push(e)
            }
        }
        let run = reconcile(&a, &b, DocConfig::default());
        println!(
            "d={d}: {} flights, {} bytes ({:.0} per difference), {:?}",
            run.flights,
            run.bytes,
            run.bytes as f64 / d as f64,
            run.responder.method
        );
        // Up to about 200 differences decode from the unasked symbols: one round trip with
        // the transfer.
        assert!(run.flights <= 3, "{run:?}");
    }
}
