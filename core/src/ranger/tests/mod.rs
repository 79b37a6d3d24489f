//! The work of answering one message: bounded by what the answer sends, capped per message,
//! and — the bounds aside — the very answers the eager code gave.
//!
//! Store reads are counted by [`Counting`], a backend that forwards everything and counts
//! the entries its range scans return (after the index is built, which is the open's cost,
//! not a message's).

mod counting;
mod eager;

use quickcheck::{Arbitrary, Gen, QuickCheck};

use self::counting::Counting;
use super::{
    budget::{value_len, FIRST_CHUNK, MIN_VALUE_LEN},
    process_message, ContentStatus, Fingerprint, Message, MessagePart, NoContent, ProcessError,
    Range, RangeFingerprint, RangeItem, Received, SyncConfig, SyncLimit,
};
use crate::{
    entry::{Entry, EntryLimits, Record, RecordIdentifier, SignedEntry},
    hash::Hash,
    keys::{NamespaceId, NamespaceSecret},
    store::{put_prefix_aware, Backend, Indexed, MemBackend},
    testutil::{author, now, ns, T0},
    wire::Encode,
};

/// A store of `n` entries of one namespace (keys `k000000`… of three authors). The entries
/// share one signature: answering never checks our own signatures, and signing 20,000
/// entries would dominate the test.
fn store_of(n: usize) -> (Indexed<Counting<MemBackend>>, NamespaceId) {
    let secret = ns(1);
    let id = secret.id();
    let template = SignedEntry::new(
        &secret,
        &author(0),
        b"t",
        Record::new(Hash::new(b"t"), 1, T0),
    );
    let mut backend = MemBackend::new();
    for i in 0..n {
        let a = author((i % 3) as u8).id();
        let key = format!("k{i:06}");
        let record = Record::new(Hash::new(key.as_bytes()), 1 + i as u64, T0 + i as u64);
        let entry = Entry::new(RecordIdentifier::new(id, a, key), record);
        backend
            .put(SignedEntry::from_parts(*template.signature(), entry))
            .unwrap();
    }
    let mut store = Indexed::new(Counting::new(backend, Default::default()));
    store.load(id).unwrap();
    store.backend_mut().observer.reads = 0;
    (store, id)
}

fn whole() -> Range {
    Range::new(RecordIdentifier::zero(), RecordIdentifier::zero())
}

/// Answers `message`, accepting every received entry as valid.
fn answer<B: Backend>(
    store: &mut Indexed<B>,
    ns: NamespaceId,
    config: &SyncConfig,
    message: Message,
) -> Result<Option<Message>, ProcessError> {
    process_message(
        store,
        ns,
        config,
        message,
        |_| true,
        |_, _, _| {},
        &mut NoContent,
    )
}

/// Bytes of entries in `reply`, counted as the budget counts them.
fn entry_bytes(reply: &Message) -> usize {
    reply.values().map(|(e, _)| value_len(e)).sum()
}

/// 2,000 parts that each name the whole namespace of 20,000 entries — half as the empty
/// fingerprint (answered with entries by the anchor rule), half as entries asking for ours —
/// cost reads in proportion to the reply, not 2,000 × 20,000.
#[test]
fn many_whole_range_parts_do_bounded_work() {
    let n = 20_000;
    let (mut store, id) = store_of(n);
    let config = SyncConfig {
        reject_overlapping_parts: false,
        max_message_bytes: 1024 * 1024,
        ..SyncConfig::default()
    };
    let parts = 2_000;
    let message = Message::new(
        (0..parts)
            .map(|i| {
                if i % 2 == 0 {
                    MessagePart::RangeFingerprint(RangeFingerprint {
                        range: whole(),
                        fingerprint: Fingerprint::EMPTY,
                    })
                } else {
                    MessagePart::RangeItem(RangeItem {
                        range: whole(),
                        values: Vec::new(),
                        have_local: false,
                    })
                }
            })
            .collect(),
    );
    let reply = answer(&mut store, id, &config, message).unwrap().unwrap();
    let reads = store.backend().observer.reads;
    let sent = reply.value_count();
    // Every part is answered; at most one entry read per part beyond those sent (where the
    // part is cut).
    assert!(
        reads <= sent + parts,
        "{reads} entries read for {sent} sent in answer to {parts} parts"
    );
    assert!(reads < 2 * n, "{reads} reads: whole ranges were loaded");
    // The reply keeps to the budget, except for the one entry each part always sends.
    let largest = reply.values().map(|(e, _)| value_len(e)).max().unwrap();
    assert!(
        entry_bytes(&reply) <= config.max_message_bytes + parts * largest,
        "{} bytes of entries",
        entry_bytes(&reply)
    );
    assert!(reply.to_wire().len() <= config.max_message_bytes + parts * (largest + 512));
}

/// One whole-range part against the empty fingerprint with a 10 KB budget on 10,000 entries
/// reads about the entries it sends: no more than the budget could carry at the smallest
/// entry size. The same for a wrap-around range and for entries asking for ours.
#[test]
fn a_whole_range_part_reads_about_what_the_budget_lets_it_send() {
    let n = 10_000;
    let (mut store, id) = store_of(n);
    let config = SyncConfig {
        reject_overlapping_parts: false,
        max_message_bytes: 10_000,
        ..SyncConfig::default()
    };
    let a = author(1).id();
    let wrapping = Range::new(
        RecordIdentifier::new(id, a, "k005000"),
        RecordIdentifier::new(id, a, "k001000"),
    );
    // One of our entries near the start of the wrap-around range, as a peer's value.
    let theirs = store
        .range_entries_in_order(id, &wrapping, 5, 1)
        .unwrap()
        .remove(0);
    store.backend_mut().observer.reads = 0;
    let parts = [
        MessagePart::RangeFingerprint(RangeFingerprint {
            range: whole(),
            fingerprint: Fingerprint::EMPTY,
        }),
        MessagePart::RangeFingerprint(RangeFingerprint {
            range: wrapping.clone(),
            fingerprint: Fingerprint::EMPTY,
        }),
        MessagePart::RangeItem(RangeItem {
            range: wrapping.clone(),
            values: Vec::new(),
            have_local: false,
        }),
        MessagePart::RangeItem(RangeItem {
            range: wrapping,
            values: vec![(theirs, ContentStatus::Complete)],
            have_local: false,
        }),
    ];
    for part in parts {
        store.backend_mut().observer.reads = 0;
        let reply = answer(&mut store, id, &config, Message::new(vec![part.clone()]))
            .unwrap()
            .unwrap();
        let reads = store.backend().observer.reads;
        let sent = reply.value_count();
        assert!(sent >= config.max_message_bytes / 300, "{sent} sent");
        assert!(
            sent <= config.max_message_bytes / MIN_VALUE_LEN + 1,
            "{sent} sent"
        );
        // At most what the budget can carry at the smallest value size (chunks are sized
        // by it), the one entry always sent and, answering entries, the one that shows
        // where to cut and those compared with the peer's values.
        let values = match &part {
            MessagePart::RangeItem(item) => item.values.len(),
            MessagePart::RangeFingerprint(_) => 0,
        };
        let most = config.max_message_bytes / MIN_VALUE_LEN + 2 + values;
        assert!(
            reads <= most && reads <= sent + FIRST_CHUNK,
            "{reads} read for {sent} sent ({part:?})"
        );
        assert_eq!(
            reply.parts.len(),
            2,
            "entries, then the rest as a fingerprint"
        );
    }
}

/// A message of more parts than `max_parts_per_message` is refused with a typed error
/// before any of it is processed: nothing is read, nothing stored.
#[test]
fn too_many_parts_is_a_typed_error() {
    let (mut store, id) = store_of(100);
    let config = SyncConfig {
        reject_overlapping_parts: false,
        max_parts_per_message: 10,
        ..SyncConfig::default()
    };
    let secret = ns(1);
    let new = SignedEntry::new(
        &secret,
        &author(5),
        b"new",
        Record::new(Hash::new(b"n"), 1, T0),
    );
    let mut parts = vec![MessagePart::RangeItem(RangeItem {
        range: whole(),
        values: vec![(new.clone(), ContentStatus::Missing)],
        have_local: false,
    })];
    parts.extend((0..10).map(|_| {
        MessagePart::RangeFingerprint(RangeFingerprint {
            range: whole(),
            fingerprint: Fingerprint::EMPTY,
        })
    }));
    let err = answer(&mut store, id, &config, Message::new(parts.clone())).unwrap_err();
    assert!(
        matches!(
            err,
            ProcessError::Limit(SyncLimit::TooManyParts { parts: 11, max: 10 })
        ),
        "{err:?}"
    );
    assert_eq!(store.backend().observer.reads, 0);
    assert!(store.get(id, new.author(), new.key()).unwrap().is_none());
    // At the bound it is answered.
    parts.pop();
    assert!(answer(&mut store, id, &config, Message::new(parts)).is_ok());
}

/// Answering a message that needs more entries read than `max_reads_per_message` fails with
/// a typed error once the bound is reached, without reading past it.
#[test]
fn too_many_reads_is_a_typed_error() {
    let (mut store, id) = store_of(1_000);
    let config = SyncConfig {
        reject_overlapping_parts: false,
        max_reads_per_message: 100,
        ..SyncConfig::IROH_DOCS
    };
    let fp = |range| {
        MessagePart::RangeFingerprint(RangeFingerprint {
            range,
            fingerprint: Fingerprint::EMPTY,
        })
    };
    let err = answer(&mut store, id, &config, Message::new(vec![fp(whole())])).unwrap_err();
    assert!(
        matches!(
            err,
            ProcessError::Limit(SyncLimit::TooManyReads { max: 100 })
        ),
        "{err:?}"
    );
    assert_eq!(store.backend().observer.reads, 100);
    // Within the bound (a range of 100 entries) it is answered.
    store.backend_mut().observer.reads = 0;
    let a = author(0).id();
    let hundred = Range::new(
        RecordIdentifier::new(id, a, "k000000"),
        RecordIdentifier::new(id, a, "k000300"),
    );
    let reply = answer(&mut store, id, &config, Message::new(vec![fp(hundred)]))
        .unwrap()
        .unwrap();
    assert_eq!(reply.value_count(), 100);
    assert_eq!(store.backend().observer.reads, 100);
}

/// Entries asking for ours over many small ranges (a peer's leaves, each holding one of our
/// entries): once the budget is spent, each part reads the entries it must send (through
/// the peer's value), that value, and the entry where it cuts — not its whole range.
#[test]
fn leaf_parts_with_values_read_what_they_send() {
    let n = 20_000;
    let (mut store, id) = store_of(n);
    let config = SyncConfig {
        reject_overlapping_parts: false,
        max_message_bytes: 100_000,
        ..SyncConfig::default()
    };
    let all = store.range_entries(id, &whole(), 0, usize::MAX).unwrap();
    store.backend_mut().observer.reads = 0;
    let leaf = 20;
    let parts: Vec<MessagePart> = (0..n / leaf - 1)
        .map(|i| {
            MessagePart::RangeItem(RangeItem {
                range: Range::new(all[i * leaf].id().clone(), all[(i + 1) * leaf].id().clone()),
                values: vec![(all[i * leaf + 2].clone(), ContentStatus::Complete)],
                have_local: false,
            })
        })
        .collect();
    let count = parts.len();
    let reply = answer(&mut store, id, &config, Message::new(parts))
        .unwrap()
        .unwrap();
    let reads = store.backend().observer.reads;
    let sent = reply.value_count();
    assert!(
        reads <= sent + 2 * count + FIRST_CHUNK,
        "{reads} entries read for {sent} sent in answer to {count} parts"
    );
}

/// Entries asking for ours must be answered through the last of them whatever the budget
/// (else the peer would resend them): a whole-range `RangeItem` holding our last entry forces
/// the whole namespace into the reply. Repeated, only `max_reads_per_message` stops it.
#[test]
fn entries_that_force_a_whole_range_are_capped_by_reads() {
    let n = 20_000;
    let (mut store, id) = store_of(n);
    let config = SyncConfig {
        reject_overlapping_parts: false,
        ..SyncConfig::default()
    };
    let last = store
        .range_entries(id, &whole(), n - 1, 1)
        .unwrap()
        .remove(0);
    store.backend_mut().observer.reads = 0;
    let parts = config.max_reads_per_message / n + 1;
    let message = Message::new(
        (0..parts)
            .map(|_| {
                MessagePart::RangeItem(RangeItem {
                    range: whole(),
                    values: vec![(last.clone(), ContentStatus::Complete)],
                    have_local: false,
                })
            })
            .collect(),
    );
    let err = answer(&mut store, id, &config, message).unwrap_err();
    assert!(
        matches!(
            err,
            ProcessError::Limit(SyncLimit::TooManyReads { max }) if max == config.max_reads_per_message
        ),
        "{err:?}"
    );
    assert_eq!(store.backend().observer.reads, config.max_reads_per_message);
}

// ---- lazy answers equal eager answers -------------------------------------------------------

/// Entries `(author, key, ts, value)` over a small key space; value 0 is a tombstone.
#[derive(Debug, Clone)]
struct Doc(Vec<(u8, Vec<u8>, u64, u8)>);

fn arbitrary_key(g: &mut Gen) -> Vec<u8> {
    let len = usize::arbitrary(g) % 4;
    (0..len)
        .map(|_| *g.choose(&[b'a', b'b', b'/', 0xff]).unwrap())
        .collect()
}

impl Arbitrary for Doc {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = usize::arbitrary(g) % 40;
        Doc((0..n)
            .map(|_| {
                (
                    u8::arbitrary(g) % 3,
                    arbitrary_key(g),
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

fn entry(secret: &NamespaceSecret, (a, key, ts, value): &(u8, Vec<u8>, u64, u8)) -> SignedEntry {
    let record = if *value == 0 {
        Record::empty(T0 + ts)
    } else {
        Record::new(Hash::new([*value]), 1, T0 + ts)
    };
    SignedEntry::new(secret, &author(*a), key, record)
}

fn filled(secret: &NamespaceSecret, doc: &Doc) -> MemBackend {
    let mut store = Indexed::new(MemBackend::new());
    for e in &doc.0 {
        put_prefix_aware(&mut store, entry(secret, e)).unwrap();
    }
    store.into_backend()
}

/// A bound of a probe's range: `(author, key, namespace)`, the namespace 0 (all zeros),
/// 1 (ours) or 2 (another one), so that bounds outside ours are clamped.
type ProbeBound = (u8, Vec<u8>, u8);

/// A random message about a namespace: ranges between identifiers of its key space (and
/// now and then of the namespaces around it), fingerprints that are empty, wrong or right,
/// and entries of `theirs` with either `have_local`.
#[derive(Debug, Clone)]
struct Probe {
    /// `(x, y, what)` per part.
    parts: Vec<(ProbeBound, ProbeBound, ProbePart)>,
}

#[derive(Debug, Clone)]
enum ProbePart {
    /// 0: empty, 1: a wrong one, 2: ours over the range.
    Fp(u8),
    /// `have_local`, and which of the peer's entries to send (by index, mod its size).
    Items(bool, Vec<usize>),
}

impl Arbitrary for Probe {
    fn arbitrary(g: &mut Gen) -> Self {
        let bound = |g: &mut Gen| {
            (
                u8::arbitrary(g) % 3,
                arbitrary_key(g),
                *g.choose(&[1, 1, 1, 1, 1, 1, 0, 2]).unwrap(),
            )
        };
        let n = 1 + usize::arbitrary(g) % 6;
        let parts = (0..n)
            .map(|_| {
                let part = if bool::arbitrary(g) {
                    ProbePart::Fp(u8::arbitrary(g) % 3)
                } else {
                    let picks = (0..usize::arbitrary(g) % 8)
                        .map(|_| usize::arbitrary(g))
                        .collect();
                    ProbePart::Items(bool::arbitrary(g), picks)
                };
                (bound(g), bound(g), part)
            })
            .collect();
        Probe { parts }
    }
}

/// Budgets and split policies, from none at all to a budget that cuts nearly every answer.
fn configs() -> Vec<SyncConfig> {
    let overlaps_allowed = SyncConfig {
        reject_overlapping_parts: false,
        ..SyncConfig::default()
    };
    let mut out = vec![SyncConfig::IROH_DOCS, overlaps_allowed];
    for (split_factor, max_set_size, max_message_bytes) in [
        (3, 2, usize::MAX),
        (2, 0, 300),
        (4, 1, 700),
        (2, 3, 1200),
        (8, 1, 3000),
    ] {
        out.push(SyncConfig {
            reject_overlapping_parts: false,
            split_factor,
            max_set_size,
            max_message_bytes,
            ..SyncConfig::default()
        });
    }
    out
}

/// What one side did with a message: its reply and the outcome of every received entry.
type Answered = (Option<Message>, Vec<(SignedEntry, Received)>);

/// Answers `message` on `store` with the lazy `process_message`, or with the eager oracle.
fn answer_with<B: Backend>(
    store: &mut Indexed<B>,
    ns: NamespaceId,
    config: &SyncConfig,
    message: Message,
    with_oracle: bool,
) -> Answered {
    let limits = EntryLimits::default();
    let now = now(T0 + 1_000_000_000);
    let mut received = Vec::new();
    let valid = |e: &SignedEntry| limits.check_remote(e, ns, now).is_ok();
    let record = |e: &SignedEntry, _, r| received.push((e.clone(), r));
    let reply = if with_oracle {
        eager::process_message(store, ns, config, message, valid, record, &mut NoContent).unwrap()
    } else {
        process_message(store, ns, config, message, valid, record, &mut NoContent).unwrap()
    };
    (reply, received)
}

fn all(store: &mut Indexed<MemBackend>, ns: NamespaceId) -> Vec<SignedEntry> {
    store.range_entries(ns, &whole(), 0, usize::MAX).unwrap()
}

/// Answers `message` lazily on `store` and eagerly on a copy of it; both must reply and
/// store alike.
fn same_answer(
    store: &mut Indexed<MemBackend>,
    ns: NamespaceId,
    config: &SyncConfig,
    message: Message,
) -> Option<Message> {
    let mut copy = Indexed::new(store.backend().clone());
    let want = answer_with(&mut copy, ns, config, message.clone(), true);
    let got = answer_with(store, ns, config, message.clone(), false);
    assert_eq!(got, want, "{config:?} answering {message:?}");
    assert_eq!(all(store, ns), all(&mut copy, ns));
    got.0
}

/// Lazy reads change what is read, never what is answered: under every policy and budget,
/// random messages and whole reconciliations get the eager code's replies, byte for byte,
/// and leave the same store.
#[test]
fn lazy_answers_equal_eager_answers() {
    fn prop(ours: Doc, theirs: Doc, probe: Probe) -> bool {
        let secret = ns(1);
        let id = secret.id();
        let near = [NamespaceId::from_bytes([0; 32]), id, ns(2).id()];
        let their_entries: Vec<SignedEntry> = theirs.0.iter().map(|e| entry(&secret, e)).collect();
        for config in configs() {
            // Random messages.
            let mut store = Indexed::new(filled(&secret, &ours));
            let parts = probe
                .parts
                .iter()
                .map(|((xa, xk, xn), (ya, yk, yn), part)| {
                    let x = RecordIdentifier::new(near[usize::from(*xn)], author(*xa).id(), xk);
                    let y = RecordIdentifier::new(near[usize::from(*yn)], author(*ya).id(), yk);
                    let range = Range::new(x, y);
                    match part {
                        ProbePart::Fp(kind) => {
                            let fingerprint = match kind {
                                0 => Fingerprint::EMPTY,
                                1 => Fingerprint([7; 32]),
                                _ => store.range_fingerprint(id, &range).unwrap(),
                            };
                            MessagePart::RangeFingerprint(RangeFingerprint { range, fingerprint })
                        }
                        ProbePart::Items(have_local, picks) => {
                            let values = if their_entries.is_empty() {
                                Vec::new()
                            } else {
                                picks
                                    .iter()
                                    .map(|i| {
                                        let e = &their_entries[i % their_entries.len()];
                                        (e.clone(), ContentStatus::Complete)
                                    })
                                    .collect()
                            };
                            MessagePart::RangeItem(RangeItem {
                                range,
                                values,
                                have_local: *have_local,
                            })
                        }
                    }
                })
                .collect();
            same_answer(&mut store, id, &config, Message::new(parts));
            // A whole reconciliation, both ways round.
            for ours_first in [true, false] {
                let mut a = Indexed::new(filled(&secret, &ours));
                let mut b = Indexed::new(filled(&secret, &theirs));
                if !ours_first {
                    std::mem::swap(&mut a, &mut b);
                }
                let mut msg = Some(super::initial_message(&mut a, id).unwrap());
                for round in 0.. {
                    assert!(round < 100, "no convergence");
                    let Some(m) = msg.take() else { break };
                    let side = if round % 2 == 0 { &mut b } else { &mut a };
                    msg = same_answer(side, id, &config, m);
                }
                assert_eq!(all(&mut a, id), all(&mut b, id));
            }
        }
        true
    }
    QuickCheck::new()
        .tests(120)
        .rng(Gen::new(40))
        .quickcheck(prop as fn(Doc, Doc, Probe) -> bool);
}

/// Parts that overlap are refused before any work: an honest peer's parts are disjoint, and
/// overlapping ones let a message ask for the same entries again and again.
#[test]
fn overlapping_parts_are_refused_before_any_work() {
    let (mut store, id) = store_of(100);
    let config = SyncConfig::default();
    let fp = |range: Range| {
        MessagePart::RangeFingerprint(RangeFingerprint {
            range,
            fingerprint: Fingerprint::EMPTY,
        })
    };
    let key = |k: &[u8]| RecordIdentifier::new(ns(1).id(), author(1).id(), k);
    let cases = [
        (vec![fp(whole()), fp(whole())], true),
        (
            vec![fp(whole()), fp(Range::new(key(b"a"), key(b"b")))],
            true,
        ),
        (
            vec![
                fp(Range::new(key(b"a"), key(b"c"))),
                fp(Range::new(key(b"b"), key(b"d"))),
            ],
            true,
        ),
        // Wrapping [d, b) meets [a, c) below b.
        (
            vec![
                fp(Range::new(key(b"d"), key(b"b"))),
                fp(Range::new(key(b"a"), key(b"c"))),
            ],
            true,
        ),
        // Adjacent and wrapping parts that only touch are disjoint.
        (
            vec![
                fp(Range::new(key(b"a"), key(b"c"))),
                fp(Range::new(key(b"c"), key(b"d"))),
                fp(Range::new(key(b"d"), key(b"a"))),
            ],
            false,
        ),
    ];
    for (parts, overlap) in cases {
        store.backend_mut().observer.reads = 0;
        let result = answer(&mut store, id, &config, Message::new(parts.clone()));
        if overlap {
            assert!(
                matches!(
                    result,
                    Err(ProcessError::Limit(SyncLimit::OverlappingParts))
                ),
                "{parts:?}: {result:?}"
            );
            assert_eq!(store.backend().observer.reads, 0);
        } else {
            assert!(result.is_ok(), "{parts:?}: {result:?}");
        }
    }
}
