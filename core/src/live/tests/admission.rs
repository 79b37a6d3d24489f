//! Admission of sessions: accepted sessions never hold back our dials, one peer cannot take
//! every slot, connections without `Init` give way to new ones when the bound is full, a
//! connection must deliver `Init` in time and small, dials over a bound wait
//! instead of being dropped, and throwaway peer ids do not fill a document's peer table.

use std::time::Duration;

use super::router::*;
use crate::{
    entry::RecordIdentifier,
    hash::PeerId,
    keys::Capability,
    live::*,
    ranger,
    testutil::ns,
    time::Now,
    wire::{encode_frame, SyncMessage, DEFAULT_MAX_FRAME_LEN},
};

/// A peer that is not one of the router's nodes.
fn stranger(i: usize) -> PeerId {
    let mut b = [0xEE; 32];
    b[..8].copy_from_slice(&(i as u64).to_be_bytes());
    PeerId::from_bytes(b)
}

/// Feeds `input` to `node` directly and returns its outputs (for sessions the router does
/// not know: nothing else may be pending on that node).
fn raw(net: &mut Net, node: usize, input: Input) -> Vec<Output> {
    net.now.mono = net.now.mono + Duration::from_micros(10);
    let now = net.now;
    net.nodes[node].live.handle(now, input);
    net.check(node);
    std::iter::from_fn(|| net.nodes[node].live.poll_output()).collect()
}

fn accepted(n: u64) -> SessionId {
    SessionId {
        role: Role::Accept,
        n: 1_000_000 + n,
    }
}

fn closed_with(outputs: &[Output]) -> Option<SessionError> {
    outputs.iter().find_map(|o| match o {
        Output::SyncClose { reason, .. } => Some(reason.clone()),
        _ => None,
    })
}

/// Node 0 holds one document shared with node 1; both know it, neither has synced yet.
fn one_doc() -> (Net, NamespaceId) {
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::new(2);
    net.no_neighbors = true;
    net.create(0, &secret, &[&a]);
    net.set(0, id, &a, "k", "v");
    net.import(1, Capability::Write(secret), &[]);
    net.start_sync(1, id, &[]);
    net.subscribe(0, id);
    net.run();
    (net, id)
}

#[test]
fn connections_that_never_send_init_do_not_hold_back_our_syncs() {
    let (mut net, id) = one_doc();
    // 600 connections from 100 strangers, one byte each, no `Init`.
    let mut refused = 0;
    for i in 0..600u64 {
        let session = accepted(i);
        let peer = stranger(i as usize % 100);
        let out = raw(&mut net, 0, Input::SyncAccepted { session, peer });
        refused += usize::from(closed_with(&out).is_some());
        raw(
            &mut net,
            0,
            Input::SyncData {
                session,
                bytes: vec![0],
            },
        );
    }
    assert_eq!(
        refused,
        600 - 512,
        "accepts over the bound are closed at once"
    );
    net.start_sync(0, id, &[1]);
    net.run();
    assert_eq!(net.entries(1, id), net.entries(0, id));
    let synced: Vec<Ev> = compact(net.take_events(0))
        .into_iter()
        .filter(|e| matches!(e, Ev::Synced(..)))
        .collect();
    assert_eq!(
        synced,
        vec![Ev::Synced(
            1,
            Origin::Connect(SyncReason::DirectJoin),
            Ok((0, 1))
        )]
    );
}

#[test]
fn a_full_accept_bound_of_connections_without_init_makes_room_for_a_peer() {
    let (mut net, id) = one_doc();
    let bound = LiveConfig::default().max_accepted_sessions as u64;
    for i in 0..bound {
        let session = accepted(i);
        let out = raw(
            &mut net,
            0,
            Input::SyncAccepted {
                session,
                peer: stranger(i as usize % 100),
            },
        );
        assert_eq!(closed_with(&out), None, "within the bound");
    }
    // One more takes the place of the one that waited longest for its `Init`.
    let out = raw(
        &mut net,
        0,
        Input::SyncAccepted {
            session: accepted(bound),
            peer: stranger(7),
        },
    );
    let closed: Vec<(SessionId, SessionError)> = out
        .iter()
        .filter_map(|o| match o {
            Output::SyncClose { session, reason } => Some((*session, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        closed,
        vec![(
            accepted(0),
            SessionError::Limit(SessionLimit::AcceptedSessions)
        )]
    );
    // The document's peer dials the node while the bound is still full: it gets in, syncs.
    net.start_sync(0, id, &[]);
    net.start_sync(1, id, &[0]);
    net.run();
    assert_eq!(net.entries(1, id), net.entries(0, id));
    let synced: Vec<Ev> = compact(net.take_events(0))
        .into_iter()
        .filter(|e| matches!(e, Ev::Synced(..)))
        .collect();
    assert_eq!(synced, vec![Ev::Synced(1, Origin::Accept, Ok((0, 1)))]);
}

#[test]
fn one_peer_cannot_take_every_accept_slot() {
    let (mut net, _) = one_doc();
    let per_peer = LiveConfig::default().max_sessions_per_peer;
    let mut closed = Vec::new();
    for i in 0..per_peer as u64 + 10 {
        let out = raw(
            &mut net,
            0,
            Input::SyncAccepted {
                session: accepted(i),
                peer: stranger(1),
            },
        );
        closed.extend(closed_with(&out));
    }
    assert_eq!(
        closed,
        vec![SessionError::Limit(SessionLimit::PeerSessions); 10]
    );
    // Another peer is still admitted.
    let out = raw(
        &mut net,
        0,
        Input::SyncAccepted {
            session: accepted(999),
            peer: stranger(2),
        },
    );
    assert_eq!(closed_with(&out), None);
    assert_eq!(net.nodes[0].live.session_load().accepted, per_peer + 1);
    assert_eq!(net.nodes[0].live.stats().sessions_refused, 10);
}

#[test]
fn a_connection_that_drips_bytes_is_closed_at_the_init_deadline() {
    let (mut net, _) = one_doc();
    let session = accepted(0);
    let start = net.now.mono;
    raw(
        &mut net,
        0,
        Input::SyncAccepted {
            session,
            peer: stranger(0),
        },
    );
    // A frame header, then one byte a second: never a whole `Init`.
    raw(
        &mut net,
        0,
        Input::SyncData {
            session,
            bytes: 1000u32.to_be_bytes().to_vec(),
        },
    );
    let mut closed = None;
    for second in 0..120u64 {
        let at = start + Duration::from_secs(second) + Duration::from_millis(1);
        let now = Now::new(at, net.now.wall_micros);
        net.now = now;
        net.nodes[0].live.handle_timeout(now);
        let mut out: Vec<Output> = std::iter::from_fn(|| net.nodes[0].live.poll_output()).collect();
        if closed_with(&out).is_none() {
            out = raw(
                &mut net,
                0,
                Input::SyncData {
                    session,
                    bytes: vec![0],
                },
            );
        }
        if let Some(reason) = closed_with(&out) {
            closed = Some((second, reason));
            break;
        }
    }
    let init_timeout = LiveConfig::default().init_timeout.as_secs();
    assert_eq!(closed, Some((init_timeout, SessionError::IdleTimeout)));
    assert_eq!(net.nodes[0].live.session_count(), 0);
}

#[test]
fn a_large_frame_before_init_ends_the_session_at_its_header() {
    let (mut net, _) = one_doc();
    let session = accepted(0);
    raw(
        &mut net,
        0,
        Input::SyncAccepted {
            session,
            peer: stranger(0),
        },
    );
    let header = (1u32 << 20).to_be_bytes().to_vec();
    let out = raw(
        &mut net,
        0,
        Input::SyncData {
            session,
            bytes: header,
        },
    );
    assert!(
        matches!(closed_with(&out), Some(SessionError::BadFrame(_))),
        "{out:?}"
    );
}

#[test]
fn dials_over_the_bound_wait_and_every_one_syncs() {
    let (_, a) = doc();
    let mut net = Net::with_config(
        2,
        LiveConfig {
            max_sessions: 4,
            ..LiveConfig::default()
        },
    );
    net.no_neighbors = true;
    let mut ids = Vec::new();
    for seed in 10..50u8 {
        let secret = ns(seed);
        let id = secret.id();
        net.create(0, &secret, &[&a]);
        net.set(0, id, &a, "k", "v");
        net.import(1, Capability::Write(secret), &[]);
        net.start_sync(0, id, &[]);
        net.subscribe(1, id);
        ids.push(id);
    }
    net.run();
    // Forty documents joined at once, four dials at a time.
    for id in &ids {
        net.start_sync(1, *id, &[0]);
    }
    // `Net::check` verifies after every input that at most four dials are open.
    net.run();
    for id in &ids {
        assert_eq!(net.entries(1, *id), net.entries(0, *id));
    }
    assert!(net.nodes[1].live.stats().dials_queued >= 36);
    assert_eq!(net.nodes[1].live.session_load(), SessionLoad::default());
}

#[test]
fn throwaway_peer_ids_do_not_lock_a_new_peer_out() {
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::with_config(
        2,
        LiveConfig {
            max_peers_per_namespace: 8,
            ..LiveConfig::default()
        },
    );
    net.no_neighbors = true;
    net.create(0, &secret, &[&a]);
    net.set(0, id, &a, "k", "v");
    net.import(1, Capability::Write(secret), &[]);
    net.start_sync(0, id, &[]);
    net.start_sync(1, id, &[]);
    net.subscribe(1, id);
    net.run();
    // 50 ids each open a session for the document, send `Init`, and vanish.
    let init = SyncMessage::Init {
        namespace: id,
        message: ranger::Message::new(vec![ranger::MessagePart::RangeFingerprint(
            ranger::RangeFingerprint {
                range: ranger::Range::new(RecordIdentifier::zero(), RecordIdentifier::zero()),
                fingerprint: ranger::Fingerprint::EMPTY,
            },
        )]),
    };
    let mut frame = Vec::new();
    encode_frame(&init, DEFAULT_MAX_FRAME_LEN, &mut frame).unwrap();
    for i in 0..50u64 {
        let session = accepted(i);
        net.queue.push_back((
            0,
            Input::SyncAccepted {
                session,
                peer: stranger(i as usize),
            },
        ));
        net.queue.push_back((
            0,
            Input::SyncData {
                session,
                bytes: frame.clone(),
            },
        ));
        net.run();
        net.queue.push_back((
            0,
            Input::SyncClosed {
                session,
                error: Some(SessionError::Transport("gone".into())),
            },
        ));
        net.run();
    }
    assert!(net.nodes[0].live.stats().peers_evicted >= 42);
    // A new, legitimate peer still syncs.
    net.start_sync(1, id, &[0]);
    net.run();
    assert_eq!(net.entries(1, id), net.entries(0, id));
    let synced: Vec<Ev> = compact(net.take_events(1))
        .into_iter()
        .filter(|e| matches!(e, Ev::Synced(..)))
        .collect();
    assert_eq!(
        synced,
        vec![Ev::Synced(
            0,
            Origin::Connect(SyncReason::DirectJoin),
            Ok((1, 0))
        )]
    );
}

/// Gossip `Put`s whose signatures do not hold: a well-formed entry of the document, signed
/// for another entry.
fn forged_puts(ns_id: NamespaceId, n: usize) -> Vec<Vec<u8>> {
    use crate::{
        entry::{Entry, Record, SignedEntry},
        hash::Hash,
        wire::{Encode, Op},
    };
    let (secret, a) = doc();
    let template = SignedEntry::new(&secret, &a, b"t", Record::new(Hash::new(b"t"), 1, 1));
    (0..n)
        .map(|i| {
            let key = format!("forged{i}");
            let record = Record::new(Hash::new(key.as_bytes()), 1, 1_700_000_000_000_000);
            let entry = Entry::new(RecordIdentifier::new(ns_id, a.id(), key), record);
            Op::Put(SignedEntry::from_parts(*template.signature(), entry)).to_wire()
        })
        .collect()
}

#[test]
fn gossip_store_work_is_budgeted_per_peer_and_forgers_are_muted() {
    let (mut net, id) = one_doc();
    net.start_sync(0, id, &[]);
    net.run();
    let puts = forged_puts(id, 100);
    // Without store replies in between, one peer gets `max_gossip_store_per_peer` in flight.
    let mut stored = 0;
    for content in &puts {
        let out = raw(
            &mut net,
            0,
            Input::Gossip {
                namespace: id,
                event: GossipEvent::Received {
                    content: content.clone(),
                    delivered_from: stranger(1),
                    direct: false,
                },
            },
        );
        stored += out
            .iter()
            .filter(|o| matches!(o, Output::Store { .. }))
            .count();
    }
    let per_peer = LiveConfig::default().max_gossip_store_per_peer;
    assert_eq!(stored, per_peer);
    assert_eq!(
        net.nodes[0].live.stats().gossip_dropped,
        (100 - per_peer) as u64
    );
}

#[test]
fn a_peer_whose_own_put_fails_verification_is_muted() {
    let (mut net, id) = one_doc();
    net.start_sync(0, id, &[]);
    net.run();
    // One at a time: the first is refused before the second arrives.
    flood(&mut net, id, &forged_puts(id, 50), stranger(1), true, 1);
    let stats = net.nodes[0].live.stats();
    assert_eq!((stats.gossip_puts_refused, stats.gossip_dropped), (1, 49));
    // Its gossip connections are cut for the mute, once.
    let mute = LiveConfig::default().gossip_mute;
    assert_eq!(net.bans, vec![(0, stranger(1), mute)]);
}

#[test]
fn a_relay_of_forged_puts_is_not_banned() {
    let (mut net, id) = one_doc();
    net.start_sync(0, id, &[]);
    net.run();
    flood(&mut net, id, &forged_puts(id, 50), stranger(1), false, 50);
    assert!(net.nodes[0].live.stats().gossip_puts_refused > 0);
    assert!(net.bans.is_empty(), "{:?}", net.bans);
}

/// Feeds `puts` to node 0, delivered by `from` (as the author's node if `direct`), in bursts
/// of `burst` (50 is more than the peer's store budget), routing everything between bursts.
fn flood(
    net: &mut Net,
    id: NamespaceId,
    puts: &[Vec<u8>],
    from: PeerId,
    direct: bool,
    burst: usize,
) {
    for burst in puts.chunks(burst) {
        for content in burst {
            net.queue.push_back((
                0,
                Input::Gossip {
                    namespace: id,
                    event: GossipEvent::Received {
                        content: content.clone(),
                        delivered_from: from,
                        direct,
                    },
                },
            ));
        }
        net.run();
    }
}

#[test]
fn a_flood_from_a_peer_that_cannot_be_synced_with_dials_it_once() {
    let (mut net, id) = one_doc();
    net.start_sync(0, id, &[]);
    net.run();
    // The rogue only gossips: every dial to it fails.
    flood(&mut net, id, &forged_puts(id, 500), stranger(1), false, 50);
    let stats = net.nodes[0].live.stats();
    assert!(stats.gossip_dropped >= 300, "{stats:?}");
    assert_eq!(
        stats.sync_connect_failed, 1,
        "dials to the rogue: {stats:?}"
    );
}

#[test]
fn a_forger_with_many_puts_in_flight_is_banned_once() {
    let (mut net, id) = one_doc();
    net.start_sync(0, id, &[]);
    net.run();
    // All at once: the peer's whole budget is in flight when the first refusal comes back.
    flood(&mut net, id, &forged_puts(id, 50), stranger(1), true, 50);
    let refused = net.nodes[0].live.stats().gossip_puts_refused;
    assert_eq!(
        refused as usize,
        LiveConfig::default().max_gossip_store_per_peer
    );
    assert_eq!(net.bans.len(), 1, "{:?}", net.bans);
}
