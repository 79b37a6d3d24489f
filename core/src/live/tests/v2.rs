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
