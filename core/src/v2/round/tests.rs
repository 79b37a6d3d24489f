use super::{harness::run_round, *};
use crate::{
    keys::{Capability, NamespaceSecret},
    replica::{OpenOpts, ReplicaConfig, Replicas},
    store::{query::query_all, MemBackend, Query},
    testutil::*,
    v2::doc::DocConfig,
    Hash,
};

/// A node holding `docs` (open, syncing), with `writes` entries in each written by `side`.
fn node(docs: &[NamespaceSecret], writes: u64, side: u8, seed: u64) -> Replicas<MemBackend> {
    let mut r = Replicas::new(MemBackend::new(), ReplicaConfig::default());
    let a = author(side + 1);
    r.import_author(now(T0), a.clone()).unwrap();
    let mut rng = XorShift(seed);
    for s in docs {
        r.import_namespace(now(T0), Capability::Write(s.clone()))
            .unwrap();
        r.open(
            s.id(),
            OpenOpts {
                sync: true,
                subscribe: false,
            },
        )
        .unwrap();
        for i in 0..writes {
            let key = format!("k{}", rng.below(writes * 2));
            let v = [side, i as u8, rng.below(256) as u8];
            r.insert_local(now(T0 + i), s.id(), a.id(), key.as_bytes(), Hash::new(v), 3)
                .unwrap();
        }
    }
    r
}

fn all(r: &mut Replicas<MemBackend>, s: &NamespaceSecret) -> Vec<crate::SignedEntry> {
    query_all(r.indexed_mut(), s.id(), &Query::all().include_empty()).unwrap()
}

fn small_config() -> ConnConfig {
    ConnConfig {
        max_streams: 2,
        doc: DocConfig {
            leaf: 2,
            riblt_max_items: 8,
            ..DocConfig::default()
        },
        ..ConnConfig::default()
    }
}

/// Documents of both sizes (RIBLT and ranges), some shared and some not, delivered in random
/// orders across streams: the shared ones end equal, the others untouched, and each side
/// reports every differing document it ran.
#[test]
fn random_interleavings_reach_the_same_sets() {
    let shared: Vec<NamespaceSecret> = (20..25).map(ns).collect();
    let only_d = ns(30);
    let only_a = ns(31);
    for seed in 1..=12u64 {
        let mut d_docs = shared.clone();
        d_docs.push(only_d.clone());
        let mut a_docs = shared.clone();
        a_docs.push(only_a.clone());
        let mut d = node(&d_docs, 6 + seed % 5, 0, seed);
        let mut a = node(&a_docs, 3 + seed % 7, 1, seed * 7);
        // One shared document already equal: written on neither side.
        let before_d = all(&mut d, &only_d);
        let before_a = all(&mut a, &only_a);
        let mut rng = XorShift(seed * 0x9e37_79b9);
        let out = run_round(
            &mut d,
            &mut a,
            (peer(1), peer(2)),
            small_config(),
            now(T0 + 1_000),
            None,
            Some(&mut rng),
        );
        let (dr, ar) = (out.dialer.unwrap(), out.acceptor.unwrap());
        assert_eq!(dr.differing, shared.len() as u64, "seed {seed}");
        assert_eq!(ar.differing, shared.len() as u64, "seed {seed}");
        assert_eq!(dr.docs.len(), shared.len(), "seed {seed}");
        assert_eq!(ar.docs.len(), shared.len(), "seed {seed}");
        assert_eq!(dr.entries_received, ar.entries_sent, "seed {seed}");
        for s in &shared {
            assert_eq!(all(&mut d, s), all(&mut a, s), "seed {seed}");
        }
        assert_eq!(all(&mut d, &only_d), before_d);
        assert_eq!(all(&mut a, &only_a), before_a);
        // Nothing left over in either store.
        assert_eq!(d.v2_connections(), 0);
        assert_eq!(a.v2_connections(), 0);
    }
}

fn expect(r: &mut Round) -> Vec<RoundOutput> {
    std::iter::from_fn(|| r.poll_output()).collect()
}

fn acceptor() -> Round {
    Round::accept(7, ConnConfig::default(), peer(2), peer(1), Vec::new())
}

/// A failed store command ends the round: the connection is closed, the store state dropped,
/// and the error reported.
#[test]
fn a_store_failure_ends_the_round_and_drops_its_state() {
    let mut r = acceptor();
    assert!(matches!(
        expect(&mut r)[..],
        [RoundOutput::Store(V2Command::Begin { conn: 7, .. })]
    ));
    r.handle(RoundInput::Store(Err("disk full".into())));
    let out = expect(&mut r);
    assert!(
        matches!(
            out[..],
            [
                RoundOutput::Close(AbortCode::Unavailable),
                RoundOutput::Store(V2Command::End { conn: 7 })
            ]
        ),
        "{out:?}"
    );
    assert!(!r.is_over());
    r.handle(RoundInput::Store(Ok(V2Response::Done)));
    let out = expect(&mut r);
    assert!(
        matches!(&out[..], [RoundOutput::Ended(Err(e))] if e.contains("disk full")),
        "{out:?}"
    );
    assert!(r.is_over());
    // Later inputs are ignored.
    r.handle(RoundInput::ControlEnded);
    assert!(expect(&mut r).is_empty());
}

/// Inputs wait while a store command is outstanding, up to the bound; one more fails the
/// round, which still waits for the outstanding answer before dropping its store state.
#[test]
fn inputs_queued_behind_the_store_are_bounded() {
    let mut r = acceptor();
    expect(&mut r);
    for _ in 0..MAX_QUEUED_INPUTS {
        r.handle(RoundInput::ControlEnded);
    }
    assert!(expect(&mut r).is_empty(), "all wait for the store");
    r.handle(RoundInput::ControlEnded);
    let out = expect(&mut r);
    assert!(
        matches!(out[..], [RoundOutput::Close(AbortCode::LimitExceeded)]),
        "{out:?}"
    );
    r.handle(RoundInput::Store(Ok(V2Response::Done)));
    let out = expect(&mut r);
    assert!(
        matches!(out[..], [RoundOutput::Store(V2Command::End { conn: 7 })]),
        "{out:?}"
    );
    r.handle(RoundInput::Store(Ok(V2Response::Done)));
    assert!(matches!(
        &expect(&mut r)[..],
        [RoundOutput::Ended(Err(e))] if e.contains("queued")
    ));
}

/// An acceptor whose dialer closes the connection before the round is done fails; one that
/// is done and waits for the close succeeds on it, or on the runtime giving up waiting.
#[test]
fn the_acceptor_ends_on_the_dialers_close() {
    let mut r = acceptor();
    expect(&mut r);
    r.handle(RoundInput::Store(Ok(V2Response::Done)));
    assert!(expect(&mut r).is_empty());
    r.handle(RoundInput::Closed);
    let out = expect(&mut r);
    assert!(matches!(
        out[..],
        [
            RoundOutput::Close(AbortCode::Unavailable),
            RoundOutput::Store(V2Command::End { .. })
        ]
    ));
    r.handle(RoundInput::Store(Ok(V2Response::Done)));
    assert!(matches!(&expect(&mut r)[..], [RoundOutput::Ended(Err(_))]));
}

/// A stream the peer opens must start with `DocOpen`; anything else aborts it.
#[test]
fn an_incoming_stream_that_does_not_open_a_document_is_aborted() {
    let (mut r, _) = (
        Round::dial(3, ConnConfig::default(), [1; 32], peer(1), peer(2), &[]).unwrap(),
        (),
    );
    let out = expect(&mut r);
    assert!(matches!(
        out[..],
        [
            RoundOutput::Control(_),
            RoundOutput::Store(V2Command::Begin { .. })
        ]
    ));
    r.handle(RoundInput::Store(Ok(V2Response::Done)));
    let id = r.incoming().unwrap();
    r.handle(RoundInput::Doc {
        stream: id,
        message: Message::DocDone,
    });
    let out = expect(&mut r);
    assert!(
        matches!(
            &out[..],
            [
                RoundOutput::Send { stream, messages },
                RoundOutput::Finish(s2),
            ] if *stream == id && *s2 == id
                && messages[..] == [Message::Abort { code: AbortCode::Protocol }]
        ),
        "{out:?}"
    );
}
