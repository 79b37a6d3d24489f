//! Sync v2 rounds dialed by `Live`: one round per peer for every document wanted from it, a
//! peer that answers v1 synced per document, a failed round retried.

use std::time::Duration;

use super::router::*;
use crate::{
    keys::{Capability, NamespaceSecret},
    live::*,
    testutil::{author, ns},
};

fn v2_config() -> LiveConfig {
    LiveConfig {
        sync_v2: true,
        ..LiveConfig::default()
    }
}

/// `docs` documents held by nodes 0 and 1, each written on both sides.
fn shared_docs(net: &mut Net, docs: u8) -> Vec<NamespaceSecret> {
    let a = author(8);
    let secrets: Vec<NamespaceSecret> = (0..docs).map(|i| ns(100 + i)).collect();
    for s in &secrets {
        net.create(0, s, &[&a]);
        net.import(1, Capability::Write(s.clone()), &[&a]);
        net.set(0, s.id(), &a, "from-0", "zero");
        net.set(
            1,
            s.id(),
            &a,
            &format!("from-1-{}", s.id().as_bytes()[0]),
            "one",
        );
    }
    secrets
}

fn synced(events: &[LiveEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, LiveEvent::SyncFinished(s) if s.result.is_ok()))
        .count()
}

/// Joining twelve documents shared with one peer dials it in one or two rounds (those joined
/// while the first runs go together in the next), not twelve sessions; every document
/// converges and reports its own `SyncFinished`.
#[test]
fn documents_wanted_from_a_peer_share_its_rounds() {
    let mut net = Net::with_config(2, v2_config());
    net.no_neighbors = true;
    let secrets = shared_docs(&mut net, 12);
    for s in &secrets {
        net.subscribe(0, s.id());
        net.subscribe(1, s.id());
        net.start_sync(1, s.id(), &[]);
    }
    net.run();
    net.take_events(1);
    for s in &secrets {
        net.start_sync(0, s.id(), &[1]);
    }
    net.run();
    let rounds = net.nodes[0].rounds.clone();
    assert!(
        !rounds.is_empty() && rounds.len() <= 2,
        "rounds: {rounds:?}"
    );
    assert_eq!(rounds.iter().map(|r| r.1).sum::<usize>(), secrets.len());
    assert_eq!(
        rounds.iter().map(|r| r.2).sum::<u64>(),
        secrets.len() as u64
    );
    for s in &secrets {
        assert_eq!(net.entries(0, s.id()), net.entries(1, s.id()));
        assert_eq!(net.entries(0, s.id()).len(), 2);
    }
    let events = net.take_events(0);
    assert_eq!(
        synced(&events),
        secrets.len(),
        "one SyncFinished per document"
    );
    assert!(events.iter().any(|e| matches!(
        e,
        LiveEvent::SyncFinished(s) if s.origin == Origin::Connect(SyncReason::DirectJoin)
            && s.result.as_ref().is_ok_and(|d| d.entries_received == 1 && d.entries_sent == 1)
    )));
    // The serving side ends each reconciled document as an accepted sync.
    let served = net.take_events(1);
    let accepted = served
        .iter()
        .filter(|e| {
            matches!(e, LiveEvent::SyncFinished(s) if s.origin == Origin::Accept
                && s.result.as_ref().is_ok_and(|d| d.entries_received == 1))
        })
        .count();
    assert_eq!(accepted, secrets.len());
    let stats = net.nodes[0].live.stats();
    assert_eq!(stats.v2_rounds, rounds.len() as u64);
    assert_eq!(net.nodes[0].live.session_count(), 0);
    // No v1 session was ever opened.
    assert_eq!(stats.sync_connect_ok, rounds.len() as u64);
}

/// A peer that answers v1 is remembered; its documents are synced with a v1 session each,
/// now and later.
#[test]
fn a_peer_that_answers_v1_is_synced_per_document() {
    let mut net = Net::with_config(2, v2_config());
    net.no_neighbors = true;
    net.nodes[1].serves_v2 = false;
    let secrets = shared_docs(&mut net, 3);
    for s in &secrets {
        net.start_sync(1, s.id(), &[]);
    }
    net.run();
    for s in &secrets {
        net.subscribe(0, s.id());
        net.start_sync(0, s.id(), &[1]);
    }
    net.run();
    assert!(net.nodes[0].live.is_v1_only(&peer_id(1)));
    let stats = net.nodes[0].live.stats();
    assert_eq!((stats.v2_rounds, stats.v2_v1_only), (1, 1));
    assert_eq!(stats.sync_connect_ok, secrets.len() as u64, "v1 sessions");
    for s in &secrets {
        assert_eq!(net.entries(0, s.id()), net.entries(1, s.id()));
    }
    assert_eq!(synced(&net.take_events(0)), secrets.len());
    // Later syncs go straight to v1.
    net.start_sync(0, secrets[0].id(), &[1]);
    net.run();
    assert_eq!(net.nodes[0].live.stats().v2_rounds, 1);
}

/// A round to a peer that is down fails every document it carried; each is retried, and the
/// retries, due together, go as one round once the peer is back.
#[test]
fn a_failed_round_is_retried_as_a_round() {
    let mut net = Net::with_config(2, v2_config());
    net.no_neighbors = true;
    let secrets = shared_docs(&mut net, 3);
    for s in &secrets {
        net.start_sync(1, s.id(), &[]);
    }
    net.run();
    net.nodes[1].online = false;
    for s in &secrets {
        net.subscribe(0, s.id());
        net.start_sync(0, s.id(), &[1]);
    }
    net.run();
    let events = net.take_events(0);
    let failed = events
        .iter()
        .filter(|e| matches!(e, LiveEvent::SyncFinished(s) if s.result.is_err()))
        .count();
    assert_eq!(failed, secrets.len());
    assert!(net.nodes[0].rounds.is_empty());
    net.nodes[1].online = true;
    let until = net.now.mono + Duration::from_secs(120);
    net.run_timers_until(until);
    for s in &secrets {
        assert_eq!(net.entries(0, s.id()), net.entries(1, s.id()));
    }
    let rounds = net.nodes[0].rounds.len();
    assert!((1..=3).contains(&rounds), "retries share rounds: {rounds}");
    assert_eq!(synced(&net.take_events(0)), secrets.len());
}

/// Two nodes that dial each other a round at once reconcile once (`docs/sync-v2.md` §2): the
/// node with the smaller id refuses the other's round with `Duplicate` and keeps its own, the
/// larger serves it; no sync is reported failed, and both converge.
#[test]
fn crossing_rounds_reconcile_once() {
    let mut net = Net::with_config(2, v2_config());
    net.no_neighbors = true;
    let secrets = shared_docs(&mut net, 3);
    for s in &secrets {
        net.subscribe(0, s.id());
        net.subscribe(1, s.id());
    }
    for s in &secrets {
        net.start_sync(0, s.id(), &[1]);
        net.start_sync(1, s.id(), &[0]);
    }
    net.run();
    let small = usize::from(net.nodes[1].id.as_bytes() < net.nodes[0].id.as_bytes());
    let large = 1 - small;
    // Documents wanted while a round runs go in the next one, which crosses too.
    let rounds = &net.nodes[small].rounds;
    assert_eq!(rounds.iter().map(|r| r.1).sum::<usize>(), secrets.len());
    assert_eq!(
        rounds.iter().map(|r| r.2).sum::<u64>(),
        secrets.len() as u64
    );
    assert!(
        net.nodes[large].rounds.is_empty(),
        "the larger's rounds were refused"
    );
    let (ss, ls) = (net.nodes[small].live.stats(), net.nodes[large].live.stats());
    assert!(
        ss.v2_crossed >= 1 && ss.v2_crossed == ls.v2_crossed,
        "{ss:?} / {ls:?}"
    );
    assert_eq!(ls.sync_connect_failed, 0);
    assert_eq!(ls.sync_accept_ok, rounds.len() as u64);
    for s in &secrets {
        assert_eq!(net.entries(0, s.id()), net.entries(1, s.id()));
        assert_eq!(net.entries(0, s.id()).len(), 2);
    }
    for node in [small, large] {
        let events = net.take_events(node);
        let failed = events
            .iter()
            .filter(|e| matches!(e, LiveEvent::SyncFinished(s) if s.result.is_err()))
            .count();
        assert_eq!(failed, 0, "node {node}: {events:?}");
        assert_eq!(synced(&events), secrets.len(), "node {node}");
        // Content that arrived by a served round only is reported ready too.
        let ready = events
            .iter()
            .filter(|e| matches!(e, LiveEvent::PendingContentReady))
            .count();
        assert!(ready >= secrets.len(), "node {node}: {events:?}");
    }
}

/// Rounds peers dial are accepted sessions: over `max_accepted_sessions` (or per peer) they
/// are refused with `Unavailable`, and a served round's end, failed or not, frees its place.
#[test]
fn served_rounds_obey_the_accept_bounds() {
    use crate::{
        time::{Mono, Now},
        v2::codec::AbortCode,
    };
    let config = LiveConfig {
        max_accepted_sessions: 2,
        max_sessions_per_peer: 1,
        ..v2_config()
    };
    let mut live = Live::new(config, peer_id(0), [0; 32]);
    let now = Now {
        mono: Mono(1),
        wall_micros: 1,
    };
    let admit = |live: &mut Live, n: u64, peer: usize| {
        let session = SessionId {
            role: Role::Accept,
            n,
        };
        live.handle(
            now,
            Input::RoundAccepted {
                session,
                peer: peer_id(peer),
            },
        );
        live.check_invariants().unwrap();
        std::iter::from_fn(|| live.poll_output())
            .find_map(|o| match o {
                Output::RoundAdmit {
                    session: s,
                    refusal,
                } if s == session => Some(refusal),
                _ => None,
            })
            .expect("every round gets an answer")
    };
    assert_eq!(admit(&mut live, 0, 1), None);
    assert_eq!(
        admit(&mut live, 1, 1),
        Some(AbortCode::Unavailable),
        "per peer"
    );
    assert_eq!(admit(&mut live, 2, 2), None);
    assert_eq!(
        admit(&mut live, 3, 3),
        Some(AbortCode::Unavailable),
        "in all"
    );
    assert_eq!(live.stats().sessions_refused, 2);
    assert_eq!(
        (live.session_load().dialed, live.session_load().accepted),
        (0, 2)
    );
    live.handle(
        now,
        Input::RoundServed {
            session: SessionId {
                role: Role::Accept,
                n: 0,
            },
            report: None,
            took: Duration::ZERO,
        },
    );
    live.check_invariants().unwrap();
    assert_eq!(live.stats().sync_accept_failed, 1);
    assert_eq!(admit(&mut live, 4, 3), None);
}
