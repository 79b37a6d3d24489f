//! Sync v2 through the executor's commands reaches exactly the set v1 reaches, and reports
//! its inserts as v1 does.

use super::*;
use crate::v2::{
    conn::ConnConfig,
    doc::DocConfig,
    round::harness::{run_round, Outcome},
};

/// Runs one v2 round between `d` (dialer) and `a` (acceptor) in flights; returns the flights.
fn v2_round<B1: Backend, B2: Backend>(
    d: &mut Replicas<B1>,
    a: &mut Replicas<B2>,
    config: ConnConfig,
    wall: u64,
) -> u32 {
    let Outcome {
        dialer,
        acceptor,
        steps,
    } = run_round(d, a, (peer(1), peer(2)), config, now(wall), None, None);
    dialer.expect("dialer");
    acceptor.expect("acceptor");
    steps
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
