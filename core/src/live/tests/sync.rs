//! Sync sessions, tie-breaks, retries, timeouts, anti-entropy and gossip.

use std::time::Duration;

use crate::live::*;
use crate::{
    hash::Hash,
    keys::Capability,
    ranger,
    replica::{ReplicaConfig, Replicas},
    store::MemBackend,
    testutil::{author, T0},
    wire::{encode_frame, AbortReason, AuthorHeads, Encode, Op, SyncMessage, SyncReport},
};

use super::router::*;

#[test]
fn sync_to_a_fresh_peer() {
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::new(2);
    net.create(0, &secret, &[&a]);
    net.set(0, id, &a, "k1", "v1");
    net.subscribe(0, id);
    net.start_sync(0, id, &[]); // share: accept syncs
    net.run();
    net.import(1, Capability::Write(secret.clone()), &[]);
    net.subscribe(1, id);
    net.start_sync(1, id, &[0]);
    net.run();

    assert_eq!(net.entries(1, id), net.entries(0, id));
    assert_eq!(
        compact(net.take_events(1)),
        vec![
            Ev::Up(0),
            Ev::Remote(0, "k1".into()),
            Ev::Ready(Hash::new("v1")),
            // Node 0 dialed too when node 1 became its neighbour; node 1 has the larger id,
            // so it accepted that dial and refused to be accepted (iroh-docs' tie-break).
            Ev::Synced(0, Origin::Accept, Ok((1, 0))),
            Ev::Pending,
        ]
    );
    assert_eq!(
        compact(net.take_events(0)),
        vec![
            Ev::Up(1),
            Ev::Synced(1, Origin::Connect(SyncReason::NewNeighbor), Ok((0, 1))),
            Ev::Pending
        ]
    );
    assert!(net.nodes[1].blobs.0.borrow().contains(&Hash::new("v1")));
    // Both remember each other as useful.
    assert_eq!(
        net.nodes[1].replicas.sync_peers(id).unwrap(),
        Some(vec![net.nodes[0].id])
    );
    assert_eq!(
        net.nodes[0].replicas.sync_peers(id).unwrap(),
        Some(vec![net.nodes[1].id])
    );
    assert!(net.nodes.iter().all(|n| n.live.session_count() == 0));
    // The sessions' end released the documents' indexes at once, not after `SYNC_HOLD`.
    for node in &net.nodes {
        assert_eq!(node.replicas.index_stats().pinned, 0);
    }
}

#[test]
fn both_sides_hold_data_and_live_puts_propagate() {
    let (secret, a) = doc();
    let b = author(9);
    let id = secret.id();
    let mut net = Net::new(2);
    net.create(0, &secret, &[&a]);
    net.import(1, Capability::Write(secret.clone()), &[&b]);
    net.set(0, id, &a, "a/1", "x");
    net.set(1, id, &b, "b/1", "y");
    net.start_sync(0, id, &[]);
    net.run();
    net.subscribe(1, id);
    net.start_sync(1, id, &[0]);
    net.run();
    assert_eq!(net.entries(0, id).len(), 2);
    assert_eq!(net.entries(0, id), net.entries(1, id));
    net.take_events(1);

    // While syncing, a local write on node 0 reaches node 1 through gossip.
    net.set(0, id, &a, "a/2", "z");
    net.run();
    assert_eq!(
        compact(net.take_events(1)),
        vec![Ev::Remote(0, "a/2".into()), Ev::Ready(Hash::new("z"))]
    );
    // And the other way, with node 0 subscribed now.
    net.subscribe(0, id);
    net.run();
    net.set(1, id, &b, "b/2", "w");
    net.run();
    assert_eq!(
        compact(net.take_events(0)),
        vec![Ev::Remote(1, "b/2".into()), Ev::Ready(Hash::new("w"))]
    );
    assert_eq!(net.entries(0, id), net.entries(1, id));
}

#[test]
fn sync_report_triggers_a_sync_with_a_third_node() {
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::new(3);
    for i in 0..3 {
        net.import(i, Capability::Write(secret.clone()), &[&a]);
    }
    // 1 and 2 are in the swarm first, in sync (both empty).
    net.start_sync(1, id, &[]);
    net.start_sync(2, id, &[1]);
    net.run();
    // 0 writes while offline from the swarm, then syncs with 1 only... but gossip is a full
    // mesh here, so take 2 offline for the gossip Put and bring it back.
    net.set(0, id, &a, "news", "n");
    net.subscribe(2, id);
    net.run();
    net.nodes[2].online = false;
    net.start_sync(0, id, &[1]);
    net.run();
    assert_eq!(net.entries(1, id).len(), 1);
    assert_eq!(net.entries(2, id).len(), 0);
    net.nodes[2].online = true;
    // 1 reports its news to its neighbours after syncing with 0; replay that report now.
    let heads: AuthorHeads = [(a.id(), net.entries(1, id)[0].timestamp())]
        .into_iter()
        .collect();
    let report = Op::SyncReport(SyncReport {
        namespace: id,
        heads: heads.encode(None),
    });
    let from = net.nodes[1].id;
    net.queue.push_back((
        2,
        Input::Gossip {
            namespace: id,
            event: GossipEvent::Received {
                content: report.to_wire(),
                delivered_from: from,
                direct: true,
            },
        },
    ));
    net.run();
    assert_eq!(net.entries(2, id), net.entries(1, id));
    assert_eq!(
        compact(net.take_events(2)),
        vec![
            Ev::Remote(1, "news".into()),
            Ev::Ready(Hash::new("n")),
            Ev::Synced(1, Origin::Connect(SyncReason::SyncReport), Ok((1, 0))),
            Ev::Pending,
        ]
    );
}

#[test]
fn sync_report_during_a_running_sync_queues_a_resync() {
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::new(2);
    net.no_neighbors = true;
    net.create(0, &secret, &[&a]);
    net.import(1, Capability::Write(secret.clone()), &[&a]);
    net.set(0, id, &a, "k", "v");
    net.start_sync(0, id, &[]);
    net.subscribe(1, id);
    net.run();
    net.start_sync(1, id, &[0]);
    // Let the StartSync get as far as dialing, then deliver a report before the sync ends.
    for _ in 0..6 {
        let (node, input) = net.queue.pop_front().unwrap();
        let now = net.now;
        net.nodes[node].live.handle(now, input);
        net.route(node);
    }
    assert_eq!(net.nodes[1].live.session_count(), 1, "a dial is running");
    let heads: AuthorHeads = [(a.id(), T0 * 2)].into_iter().collect();
    let report = Op::SyncReport(SyncReport {
        namespace: id,
        heads: heads.encode(None),
    });
    let from = net.nodes[0].id;
    net.queue.push_back((
        1,
        Input::Gossip {
            namespace: id,
            event: GossipEvent::Received {
                content: report.to_wire(),
                delivered_from: from,
                direct: true,
            },
        },
    ));
    net.run();
    let synced: Vec<Ev> = compact(net.take_events(1))
        .into_iter()
        .filter(|e| matches!(e, Ev::Synced(..)))
        .collect();
    assert_eq!(
        synced,
        vec![
            Ev::Synced(0, Origin::Connect(SyncReason::DirectJoin), Ok((1, 0))),
            Ev::Synced(0, Origin::Connect(SyncReason::Resync), Ok((0, 0))),
        ]
    );
}

#[test]
fn concurrent_dials_resolve_by_tie_break() {
    let (secret, a) = doc();
    let b = author(9);
    let id = secret.id();
    let mut net = Net::new(2);
    net.create(0, &secret, &[&a]);
    net.import(1, Capability::Write(secret.clone()), &[&b]);
    net.set(0, id, &a, "a", "1");
    net.set(1, id, &b, "b", "2");
    net.subscribe(0, id);
    net.subscribe(1, id);
    net.run();
    // Both dial each other at once.
    net.start_sync(0, id, &[1]);
    net.start_sync(1, id, &[0]);
    net.run();
    assert_eq!(net.entries(0, id), net.entries(1, id));
    assert_eq!(net.entries(0, id).len(), 2);
    // Node 1 has the larger id: it accepts node 0's dial; node 0 refuses node 1's dial and
    // node 1 stays quiet about that refusal. The gossip neighbour event that arrived during
    // that sync queues one re-sync, which finds nothing new.
    assert_eq!(
        compact(net.take_events(1)),
        vec![
            Ev::Up(0),
            Ev::Remote(0, "a".into()),
            Ev::Ready(Hash::new("1")),
            Ev::Synced(0, Origin::Accept, Ok((1, 1))),
            Ev::Pending,
            Ev::Synced(0, Origin::Accept, Ok((0, 0))),
            Ev::Pending,
        ]
    );
    assert_eq!(
        compact(net.take_events(0)),
        vec![
            Ev::Up(1),
            Ev::Remote(1, "b".into()),
            Ev::Ready(Hash::new("2")),
            Ev::Synced(1, Origin::Connect(SyncReason::DirectJoin), Ok((1, 1))),
            Ev::Pending,
            Ev::Synced(1, Origin::Connect(SyncReason::Resync), Ok((0, 0))),
            Ev::Pending,
        ]
    );
    // A refusal because of crossing dials is no failure: gossip repairs still dial the peer.
    for node in 0..2 {
        let status = net.nodes[node].live.sync_status(&id).expect("syncing");
        for p in &status.peers {
            assert_eq!(
                (p.failures, p.retry_scheduled),
                (0, false),
                "node {node}: {p:?}"
            );
        }
    }
}

#[test]
fn leave_and_rejoin() {
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::new(2);
    net.create(0, &secret, &[&a]);
    net.import(1, Capability::Write(secret.clone()), &[&a]);
    net.start_sync(0, id, &[]);
    net.start_sync(1, id, &[0]);
    net.subscribe(0, id);
    net.subscribe(1, id);
    net.run();
    assert!(net.nodes[1].replicas.state(id).unwrap().sync);
    net.api(
        1,
        ApiCommand::Leave {
            namespace: id,
            kill_subscribers: false,
        },
    );
    net.run();
    assert!(!net.nodes[1].live.is_syncing(&id));
    assert!(!net.nodes[1].replicas.state(id).unwrap().sync);
    assert_eq!(compact(net.take_events(0)).last(), Some(&Ev::Down(1)));
    // Writes on 0 no longer reach 1.
    net.take_events(1);
    net.set(0, id, &a, "while-away", "1");
    net.run();
    assert!(net.take_events(1).is_empty());
    assert_eq!(net.entries(1, id).len(), 0);
    // Rejoining catches up.
    net.start_sync(1, id, &[0]);
    net.run();
    assert_eq!(net.entries(1, id), net.entries(0, id));
    assert_eq!(
        compact(net.take_events(1)),
        vec![
            Ev::Up(0),
            Ev::Remote(0, "while-away".into()),
            Ev::Ready(Hash::new("1")),
            Ev::Synced(0, Origin::Accept, Ok((1, 0))),
            Ev::Pending,
        ]
    );
}

#[test]
fn abort_not_found_for_a_document_not_synced() {
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::with_config(
        2,
        LiveConfig {
            retry_attempts: 0,
            ..LiveConfig::default()
        },
    );
    net.create(0, &secret, &[&a]); // node 0 has the document but is not syncing it
    net.import(1, Capability::Write(secret.clone()), &[]);
    net.subscribe(1, id);
    net.start_sync(1, id, &[0]);
    net.run();
    let synced: Vec<Ev> = compact(net.take_events(1))
        .into_iter()
        .filter(|e| matches!(e, Ev::Synced(..)))
        .collect();
    assert_eq!(
        synced,
        vec![Ev::Synced(
            0,
            Origin::Connect(SyncReason::DirectJoin),
            Err(SessionError::RemoteAbort(AbortReason::NotFound))
        )]
    );
}

#[test]
fn failed_syncs_are_retried_with_backoff() {
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::new(2);
    net.no_neighbors = true;
    net.create(0, &secret, &[&a]);
    net.set(0, id, &a, "k", "v");
    net.import(1, Capability::Write(secret.clone()), &[]);
    net.subscribe(1, id);
    // Node 0 is not syncing yet: the first dial is refused, retries follow.
    net.start_sync(1, id, &[0]);
    net.run();
    assert!(
        net.nodes[1].live.poll_timeout().is_some(),
        "a retry is scheduled"
    );
    net.start_sync(0, id, &[]);
    net.run();
    let deadline = net.now.mono + Duration::from_secs(120);
    net.run_timers_until(deadline);
    assert_eq!(net.entries(1, id), net.entries(0, id));
    let synced: Vec<Ev> = compact(net.take_events(1))
        .into_iter()
        .filter(|e| matches!(e, Ev::Synced(..)))
        .collect();
    assert_eq!(synced.len(), 2, "{synced:?}");
    assert_eq!(
        synced[0],
        Ev::Synced(
            0,
            Origin::Connect(SyncReason::DirectJoin),
            Err(SessionError::RemoteAbort(AbortReason::NotFound))
        )
    );
    assert_eq!(
        synced[1],
        Ev::Synced(0, Origin::Connect(SyncReason::Retry), Ok((1, 0)))
    );
}

#[test]
fn garbage_ends_only_that_session() {
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::new(2);
    net.create(0, &secret, &[&a]);
    net.start_sync(0, id, &[]);
    net.run();
    // A raw peer sends garbage on an accepted stream.
    let rogue = SessionId {
        role: Role::Accept,
        n: 999,
    };
    net.queue.push_back((
        0,
        Input::SyncAccepted {
            session: rogue,
            peer: peer_id(5),
        },
    ));
    net.queue.push_back((
        0,
        Input::SyncData {
            session: rogue,
            bytes: vec![0, 0, 0, 3, 9, 9, 9],
        },
    ));
    // A short record id inside an Init for the document.
    let rogue2 = SessionId {
        role: Role::Accept,
        n: 1000,
    };
    let mut frame = Vec::new();
    encode_frame(
        &SyncMessage::Init {
            namespace: id,
            message: ranger::Message::default(),
        },
        u32::MAX,
        &mut frame,
    )
    .unwrap();
    frame.extend_from_slice(&[0, 0, 0, 4, 1, 1, 0, 10]);
    net.queue.push_back((
        0,
        Input::SyncAccepted {
            session: rogue2,
            peer: peer_id(6),
        },
    ));
    net.queue.push_back((
        0,
        Input::SyncData {
            session: rogue2,
            bytes: frame,
        },
    ));
    net.run();
    assert_eq!(
        net.nodes[0].live.session_count(),
        0,
        "both rogue sessions are gone"
    );
    // A normal sync still works.
    net.set(0, id, &a, "k", "v");
    net.import(1, Capability::Write(secret.clone()), &[]);
    net.start_sync(1, id, &[0]);
    net.run();
    assert_eq!(net.entries(1, id), net.entries(0, id));
    assert!(net.nodes[0].live.stats().sync_accept_failed >= 2);
}

#[test]
fn bad_gossip_is_counted_and_the_topic_keeps_working() {
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::new(2);
    net.create(0, &secret, &[&a]);
    net.import(1, Capability::Write(secret.clone()), &[]);
    net.start_sync(0, id, &[]);
    net.start_sync(1, id, &[0]);
    net.subscribe(1, id);
    net.run();
    net.take_events(1);
    let from = net.nodes[0].id;
    net.queue.push_back((
        1,
        Input::Gossip {
            namespace: id,
            event: GossipEvent::Received {
                content: vec![7, 7, 7],
                delivered_from: from,
                direct: true,
            },
        },
    ));
    net.run();
    assert_eq!(net.nodes[1].live.stats().gossip_decode_errors, 1);
    net.set(0, id, &a, "after", "x");
    net.run();
    assert_eq!(
        compact(net.take_events(1)),
        vec![Ev::Remote(0, "after".into()), Ev::Ready(Hash::new("x"))]
    );
}

#[test]
fn idle_sessions_time_out() {
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::new(1);
    net.create(0, &secret, &[&a]);
    net.start_sync(0, id, &[]);
    net.run();
    let s = SessionId {
        role: Role::Accept,
        n: 1,
    };
    net.queue.push_back((
        0,
        Input::SyncAccepted {
            session: s,
            peer: peer_id(3),
        },
    ));
    net.run();
    assert_eq!(net.nodes[0].live.session_count(), 1);
    let t = net.nodes[0].live.poll_timeout().unwrap();
    net.nodes[0]
        .live
        .handle_timeout(Now::new(Mono(t.0 - 1), T0));
    assert_eq!(net.nodes[0].live.session_count(), 1, "not yet");
    net.nodes[0].live.handle_timeout(Now::new(t, T0));
    assert_eq!(net.nodes[0].live.session_count(), 0);
    assert!(matches!(
        net.nodes[0].live.poll_output(),
        Some(Output::SyncClose { .. })
    ));
}

#[test]
fn same_seed_same_outputs() {
    fn trace() -> Vec<String> {
        let (secret, a) = doc();
        let id = secret.id();
        let mut net = Net::new(3);
        for i in 0..3 {
            net.import(i, Capability::Write(secret.clone()), &[&a]);
        }
        for i in 0..10 {
            net.set(i % 3, id, &a, &format!("k{i}"), &format!("v{i}"));
        }
        for i in 0..3 {
            net.subscribe(i, id);
            net.start_sync(i, id, &[(i + 1) % 3]);
        }
        net.run();
        net.nodes
            .iter_mut()
            .flat_map(|n| n.events.drain(..).map(|e| format!("{e:?}")))
            .collect()
    }
    assert_eq!(trace(), trace());
}

#[test]
fn anti_entropy_resyncs_known_peers_periodically() {
    let (secret, a) = doc();
    let id = secret.id();
    let every = Duration::from_secs(30);
    let mut net = Net::with_config(
        2,
        LiveConfig {
            anti_entropy_interval: Some(every),
            ..LiveConfig::default()
        },
    );
    net.no_neighbors = true;
    net.create(0, &secret, &[&a]);
    net.import(1, Capability::Write(secret.clone()), &[]);
    net.start_sync(0, id, &[]);
    net.start_sync(1, id, &[0]);
    net.subscribe(1, id);
    net.run();
    // A write that gossip does not carry (no neighbours): only a later sync brings it.
    net.set(0, id, &a, "late", "l");
    net.run();
    assert_eq!(net.entries(1, id).len(), 0);
    net.take_events(0);
    net.take_events(1);
    // The first rounds come within one interval and skip the peer the join just synced;
    // the next ones, `every ± 10%` later, find the entry.
    let limit = net.now.mono + every * 2 + every / 5;
    net.run_timers_until(limit);
    assert_eq!(net.entries(1, id), net.entries(0, id));
    let mut synced: Vec<Ev> = compact(net.take_events(0));
    synced.extend(compact(net.take_events(1)));
    synced.retain(|e| matches!(e, Ev::Synced(..)));
    assert!(
        synced.contains(&Ev::Synced(0, Origin::Accept, Ok((1, 0))))
            || synced.contains(&Ev::Synced(
                0,
                Origin::Connect(SyncReason::AntiEntropy),
                Ok((1, 0))
            )),
        "the entry came by some anti-entropy sync: {synced:?}"
    );
}

/// A peer's message over a per-message bound of the store's `SyncConfig` ends that session
/// with the typed limit — not as a store failure — and the node keeps its data.
#[test]
fn a_message_over_a_sync_bound_ends_the_session_with_its_limit() {
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::with_config(
        2,
        LiveConfig {
            retry_attempts: 0,
            ..LiveConfig::default()
        },
    );
    net.no_neighbors = true;
    // Node 0 reads at most one entry to answer a message; answering an empty peer takes 3.
    let sync = ranger::SyncConfig {
        max_reads_per_message: 1,
        ..ranger::SyncConfig::default()
    };
    net.nodes[0].replicas = Replicas::with_content(
        MemBackend::new(),
        net.nodes[0].blobs.clone(),
        ReplicaConfig {
            sync,
            ..ReplicaConfig::default()
        },
    );
    net.create(0, &secret, &[&a]);
    for key in ["k1", "k2", "k3"] {
        net.set(0, id, &a, key, "v");
    }
    net.subscribe(0, id);
    net.start_sync(0, id, &[]);
    net.run();
    net.import(1, Capability::Write(secret.clone()), &[]);
    net.start_sync(1, id, &[0]);
    net.run();
    let synced: Vec<Ev> = compact(net.take_events(0))
        .into_iter()
        .filter(|e| matches!(e, Ev::Synced(..)))
        .collect();
    assert_eq!(
        synced,
        vec![Ev::Synced(
            1,
            Origin::Accept,
            Err(SessionError::Limit(SessionLimit::Message(
                ranger::SyncLimit::TooManyReads { max: 1 }
            )))
        )]
    );
    assert_eq!(net.nodes[0].live.stats().store_errors, 0);
    assert_eq!(net.entries(0, id).len(), 3);
    assert!(net.entries(1, id).is_empty());
}

#[test]
fn an_ended_gossip_subscription_is_joined_again() {
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::new(2);
    net.create(0, &secret, &[&a]);
    net.import(1, Capability::Write(secret.clone()), &[&a]);
    net.start_sync(0, id, &[]);
    net.start_sync(1, id, &[0]);
    net.subscribe(0, id);
    net.run();
    net.take_events(0);
    // The runtime's subscription on node 0 ends (its topic is gone there).
    net.nodes[0].topics.remove(&id);
    net.queue.push_back((
        0,
        Input::Gossip {
            namespace: id,
            event: GossipEvent::Ended,
        },
    ));
    net.run();
    assert_eq!(compact(net.take_events(0)), vec![Ev::Down(1)]);
    assert_eq!(net.nodes[0].live.timer_counts().gossip_rejoin, 1);
    // After the backoff the topic is joined again and live updates flow.
    let limit = net.now.mono + Duration::from_secs(2);
    net.run_timers_until(limit);
    assert_eq!(net.nodes[0].live.stats().gossip_rejoins, 1);
    assert!(net.nodes[0].topics.contains(&id));
    net.set(1, id, &a, "after", "x");
    net.run();
    let events = compact(net.take_events(0));
    assert!(events.contains(&Ev::Up(1)), "{events:?}");
    assert!(
        events.contains(&Ev::Remote(1, "after".into())),
        "{events:?}"
    );
}

/// Two nodes sharing [`doc`]: node 0 creates it, node 1 imports it with write access, and both
/// start syncing it (node 1 from node 0). Nothing has run yet.
fn two_nodes_sharing() -> (Net, NamespaceId, crate::keys::Author) {
    let (secret, a) = doc();
    let mut net = Net::new(2);
    net.create(0, &secret, &[&a]);
    net.import(1, Capability::Write(secret.clone()), &[&a]);
    net.start_sync(0, secret.id(), &[]);
    net.start_sync(1, secret.id(), &[0]);
    (net, secret.id(), a)
}

#[test]
fn a_stalled_gossip_layer_repairs_every_document_with_its_neighbours() {
    let (mut net, id, a) = two_nodes_sharing();
    // A document of node 0 alone, without neighbours.
    let lonely = crate::keys::NamespaceSecret::from_bytes(&[78; 32]);
    net.create(0, &lonely, &[&a]);
    net.start_sync(0, lonely.id(), &[]);
    net.subscribe(0, id);
    net.run();
    net.take_events(0);
    // Node 0's gossip stops delivering: node 1's write does not reach it.
    net.nodes[0].topics.remove(&id);
    net.set(1, id, &a, "while-stalled", "x");
    net.run();
    assert!(compact(net.take_events(0)).is_empty());
    let dialed = net.nodes[0].live.stats().sync_connect_ok;
    net.queue.push_back((0, Input::GossipStalled));
    net.run();
    let events = compact(net.take_events(0));
    assert!(
        events.contains(&Ev::Remote(1, "while-stalled".into())),
        "{events:?}"
    );
    // One repair: the document with a neighbour, with that neighbour; none for the other.
    assert_eq!(net.nodes[0].live.stats().sync_connect_ok, dialed + 1);
    assert_eq!(net.nodes[0].live.stats().gossip_stalls, 1);
}

#[test]
fn every_finished_sync_is_output_for_the_runtime_to_log() {
    let (mut net, _, _) = two_nodes_sharing();
    net.run();
    // Neither node subscribed: no events, but each sync still came out once per side.
    assert!(net.take_events(0).is_empty() && net.take_events(1).is_empty());
    assert!(net.nodes[0].syncs_output >= 1, "accepting side");
    assert!(net.nodes[1].syncs_output >= 1, "dialing side");
}

#[test]
fn sync_status_names_each_peer_with_its_last_sync() {
    let (mut net, id, a) = two_nodes_sharing();
    net.set(0, id, &a, "k", "v");
    net.run();
    let status = net.nodes[1].live.sync_status(&id).expect("syncing");
    assert_eq!(status.peers.len(), 1);
    let p = &status.peers[0];
    assert_eq!(p.peer, net.nodes[0].id);
    assert!(p.neighbor && !p.syncing && !p.retry_scheduled);
    assert_eq!(p.failures, 0);
    let last = p.last_sync.as_ref().expect("a finished sync");
    assert_eq!(last.result.as_ref().map(|d| d.entries_received), Ok(1));
    let other = crate::keys::NamespaceSecret::from_bytes(&[77; 32]).id();
    assert_eq!(net.nodes[1].live.sync_status(&other), None);
}

/// A peer we synced with but that is not our gossip neighbour is joined on the document's
/// topic (iroh-gossip drops a join that reaches a node before it subscribed the topic, and
/// nobody asks again); a neighbour is not joined again.
#[test]
fn a_synced_peer_that_is_no_neighbour_is_joined_on_the_topic() {
    let (secret, a) = doc();
    let id = secret.id();
    // Node 0 shares, node 1 joins it; gossip gives neighbours or not.
    let synced = |no_neighbors: bool| {
        let mut net = Net::new(2);
        net.no_neighbors = no_neighbors;
        net.create(0, &secret, &[&a]);
        net.set(0, id, &a, "k1", "v1");
        net.start_sync(0, id, &[]);
        net.run();
        net.import(1, Capability::Write(secret.clone()), &[]);
        net.start_sync(1, id, &[0]);
        net.run();
        assert_eq!(net.entries(1, id), net.entries(0, id));
        net
    };
    let joins_naming = |net: &Net, node: usize, peer: usize| {
        let peer = net.nodes[peer].id;
        net.joins
            .iter()
            .filter(|(n, ns, peers)| *n == node && *ns == id && *peers == vec![peer])
            .count()
    };

    // Node 0 (shared without peers) joins node 1 after the sync; node 1 joins node 0 twice:
    // its start_sync bootstrap, and again after the sync.
    let net = synced(true);
    assert_eq!(joins_naming(&net, 0, 1), 1, "{:?}", net.joins);
    assert_eq!(joins_naming(&net, 1, 0), 2, "{:?}", net.joins);

    // With gossip neighbours, a sync adds no join: only node 1's bootstrap names a peer.
    let net = synced(false);
    assert_eq!(joins_naming(&net, 0, 1), 0, "{:?}", net.joins);
    assert_eq!(joins_naming(&net, 1, 0), 1, "{:?}", net.joins);
}
