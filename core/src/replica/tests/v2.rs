//! Sync v2 through the executor's commands reaches exactly the set v1 reaches, and reports
//! its inserts as v1 does.

use std::collections::{BTreeMap, VecDeque};

use super::*;
use crate::v2::{
    codec::Message as V2Message,
    conn::{Acceptor, ConnConfig, Dialer},
    doc::DocConfig,
};

/// Runs one v2 round between `d` (dialer) and `a` (acceptor) through `StoreCommand::V2`,
/// delivering every stream's messages in flights. Returns the flights.
fn v2_round<B1: Backend, B2: Backend>(
    d: &mut Replicas<B1>,
    a: &mut Replicas<B2>,
    config: ConnConfig,
    wall: u64,
) -> u32 {
    let t = now(wall);
    let offers = |r: &mut dyn FnMut(V2Command) -> V2Response| match r(V2Command::Offers) {
        V2Response::Offers(o) => o,
        other => panic!("{other:?}"),
    };
    let mut dv2 = |cmd| d.apply_v2(t, cmd).unwrap();
    let d_offers = offers(&mut dv2);
    let (mut dialer, hello) = Dialer::new(config, [5; 32], peer(1), peer(2), &d_offers).unwrap();
    let mut av2 = |cmd| a.apply_v2(t, cmd).unwrap();
    let a_offers = offers(&mut av2);
    let mut acceptor = Acceptor::new(config, peer(2), peer(1), a_offers);
    d.apply_v2(
        t,
        V2Command::Begin {
            conn: 1,
            peer: peer(2),
        },
    )
    .unwrap();
    a.apply_v2(
        t,
        V2Command::Begin {
            conn: 1,
            peer: peer(1),
        },
    )
    .unwrap();
    // (towards acceptor, stream) → messages; stream 0 is control.
    let mut queues: BTreeMap<(bool, u64), VecDeque<V2Message>> = BTreeMap::new();
    let push = |q: &mut BTreeMap<(bool, u64), VecDeque<V2Message>>, k, msgs: Vec<V2Message>| {
        q.entry(k).or_default().extend(msgs)
    };
    push(&mut queues, (true, 0), hello);
    let mut flights = 1;
    let mut to_acceptor = true;
    let mut next_stream = 1;
    let step = |r: V2Response| match r {
        V2Response::Step(s) => {
            assert!(s.failed.is_none(), "{:?}", s.failed);
            s
        }
        other => panic!("{other:?}"),
    };
    loop {
        let keys: Vec<(bool, u64)> = queues
            .iter()
            .filter(|(k, q)| k.0 == to_acceptor && !q.is_empty())
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            while let Some(m) = queues.get_mut(&k).unwrap().pop_front() {
                match (k, m) {
                    ((true, 0), m) => {
                        if let V2Message::Authors { first, ids } = &m {
                            a.apply_v2(
                                t,
                                V2Command::Define {
                                    conn: 1,
                                    first: *first,
                                    ids: ids.clone(),
                                },
                            )
                            .unwrap();
                            continue;
                        }
                        let out = acceptor.handle(m).unwrap();
                        push(&mut queues, (false, 0), out);
                    }
                    ((false, 0), m) => {
                        if let V2Message::Authors { first, ids } = &m {
                            d.apply_v2(
                                t,
                                V2Command::Define {
                                    conn: 1,
                                    first: *first,
                                    ids: ids.clone(),
                                },
                            )
                            .unwrap();
                            continue;
                        }
                        let out = dialer.handle(m).unwrap();
                        push(&mut queues, (true, 0), out);
                    }
                    ((false, s), m) => {
                        if let V2Message::DocOpen { tag, .. } = &m {
                            let ns = dialer.stream_opened(tag).unwrap();
                            d.apply_v2(
                                t,
                                V2Command::Accept {
                                    conn: 1,
                                    stream: s,
                                    namespace: ns,
                                    riblt_key: riblt_key(&dialer),
                                    config: config.doc,
                                },
                            )
                            .unwrap();
                        }
                        let st = step(
                            d.apply_v2(
                                t,
                                V2Command::Handle {
                                    conn: 1,
                                    stream: s,
                                    message: m,
                                },
                            )
                            .unwrap(),
                        );
                        push(&mut queues, (true, 0), st.control);
                        push(&mut queues, (true, s), st.messages);
                        if st.done {
                            dialer.stream_ended();
                        }
                    }
                    ((true, s), m) => {
                        let st = step(
                            a.apply_v2(
                                t,
                                V2Command::Handle {
                                    conn: 1,
                                    stream: s,
                                    message: m,
                                },
                            )
                            .unwrap(),
                        );
                        push(&mut queues, (false, 0), st.control);
                        push(&mut queues, (false, s), st.messages);
                        if st.done {
                            acceptor.stream_ended();
                        }
                    }
                }
            }
        }
        while let Some((tag, ns)) = acceptor.poll_open() {
            let s = next_stream;
            next_stream += 1;
            let st = step(
                a.apply_v2(
                    t,
                    V2Command::Open {
                        conn: 1,
                        stream: s,
                        namespace: ns,
                        tag,
                        riblt_key: riblt_key_of(acceptor.hasher().unwrap()),
                        config: config.doc,
                    },
                )
                .unwrap(),
            );
            push(&mut queues, (false, 0), st.control);
            push(&mut queues, (false, s), st.messages);
        }
        to_acceptor = !to_acceptor;
        if queues.values().all(|q| q.is_empty()) {
            break;
        }
        flights += 1;
        assert!(flights < 200, "no end");
    }
    assert!(dialer.is_round_done() && acceptor.is_round_done());
    d.apply_v2(t, V2Command::End { conn: 1 }).unwrap();
    a.apply_v2(t, V2Command::End { conn: 1 }).unwrap();
    flights
}

fn riblt_key(d: &Dialer) -> [u8; 32] {
    riblt_key_of(d.hasher())
}

fn riblt_key_of(h: &crate::v2::riblt::Hasher) -> [u8; 32] {
    h.key()
}

/// Two nodes with four documents, randomly written; one pair syncs them with v1, an identical
/// pair with v2: the stores end equal, document by document.
#[test]
fn v2_reaches_what_v1_reaches() {
    let secrets: Vec<NamespaceSecret> = (10..14).map(ns).collect();
    let authors = [author(1), author(2), author(3)];
    let mut rng = crate::testutil::XorShift(0x1234_5678_u64);
    let mut rnd = |n: u64| rng.below(n);
    let keys: [&[u8]; 7] = [b"", b"a", b"ab", b"abc", b"b", b"bc", b"c"];
    let mut writes: Vec<(usize, u8, usize, usize, u64, bool)> = Vec::new();
    for _ in 0..300 {
        writes.push((
            rnd(4) as usize,
            rnd(2) as u8,
            rnd(3) as usize,
            rnd(keys.len() as u64) as usize,
            rnd(50),
            rnd(5) == 0,
        ));
    }
    let node = |side: u8| {
        let mut r = Replicas::new(MemBackend::new(), ReplicaConfig::default());
        for s in &secrets {
            r.import_namespace(now(T0), Capability::Write(s.clone()))
                .unwrap();
            r.open(
                s.id(),
                OpenOpts {
                    sync: true,
                    subscribe: true,
                },
            )
            .unwrap();
        }
        for a in &authors {
            r.import_author(now(T0), a.clone()).unwrap();
        }
        for (doc, w_side, a, k, ts, delete) in &writes {
            if *w_side != side {
                continue;
            }
            let id = secrets[*doc].id();
            if *delete {
                let _ = r.delete_prefix(now(T0 + ts), id, authors[*a].id(), keys[*k]);
            } else {
                let v = [*doc as u8, *a as u8, *k as u8, *ts as u8, side];
                let _ = r.insert_local(
                    now(T0 + ts),
                    id,
                    authors[*a].id(),
                    keys[*k],
                    Hash::new(v),
                    5,
                );
            }
        }
        r
    };
    let (mut d1, mut a1) = (node(0), node(1));
    for s in &secrets {
        sync(&mut d1, &mut a1, s.id(), T0 + 100);
    }
    let (mut d2, mut a2) = (node(0), node(1));
    events(&mut d2);
    events(&mut a2);
    let config = ConnConfig {
        doc: DocConfig {
            leaf: 2,
            riblt_max_items: 8,
            ..DocConfig::default()
        },
        ..ConnConfig::default()
    };
    v2_round(&mut d2, &mut a2, config, T0 + 100);
    let all = |r: &mut Replicas<MemBackend>, id| {
        query_all(r.indexed_mut(), id, &Query::all().include_empty()).unwrap()
    };
    let mut inserted = 0;
    for s in &secrets {
        let expected = all(&mut d1, s.id());
        assert_eq!(expected, all(&mut a1, s.id()), "v1 converged");
        assert_eq!(all(&mut d2, s.id()), expected, "v2 dialer");
        assert_eq!(all(&mut a2, s.id()), expected, "v2 acceptor");
        inserted += expected.len();
    }
    assert!(inserted > 0);
    // Inserts are reported as remote inserts from the peer, as with v1.
    let ev = events(&mut d2);
    assert!(!ev.is_empty());
    assert!(ev
        .iter()
        .all(|e| matches!(e, ReplicaEvent::RemoteInsert { from, .. } if *from == peer(2))));
    // A second round finds nothing to do.
    let flights = v2_round(&mut d2, &mut a2, config, T0 + 200);
    assert_eq!(flights, 2, "Hello, then Differing{{0}}");
    assert!(events(&mut d2).is_empty());
}
