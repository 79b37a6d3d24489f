//! Anti-entropy as background work: rounds spread over the interval, fresh peers skipped, and
//! a per-node rate however many documents the node holds.

use std::{collections::BTreeSet, time::Duration};

use super::router::*;
use crate::{
    keys::Capability,
    live::{timer::Timer, *},
    testutil::ns,
    time::Mono,
};

const EVERY: Duration = Duration::from_secs(30);

fn config(interval: Option<Duration>) -> LiveConfig {
    LiveConfig {
        anti_entropy_interval: interval,
        ..LiveConfig::default()
    }
}

/// Node 0 runs anti-entropy for `docs` documents shared with node 1, which runs none. Both
/// subscribe to every document; gossip carries nothing, so only dials sync.
fn shared_docs(docs: u8) -> (Net, Vec<NamespaceId>) {
    let (_, a) = doc();
    let mut net = Net::with_config(2, config(Some(EVERY)));
    net.nodes[1].live = Live::new(config(None), net.nodes[1].id, [1; 32]);
    net.no_neighbors = true;
    let mut ids = Vec::new();
    for seed in 10..10 + docs {
        let secret = ns(seed);
        let id = secret.id();
        net.create(0, &secret, &[&a]);
        net.import(1, Capability::Write(secret), &[]);
        net.start_sync(1, id, &[]);
        net.subscribe(0, id);
        ids.push(id);
    }
    net.run();
    for id in &ids {
        net.start_sync(0, *id, &[1]);
    }
    net.run();
    (net, ids)
}

/// Instants of node 0's anti-entropy dials until `limit`, with their documents.
fn anti_entropy_dials(net: &mut Net, limit: Mono) -> Vec<(Mono, NamespaceId)> {
    let mut dials = Vec::new();
    loop {
        net.run();
        for (ns, e) in std::mem::take(&mut net.nodes[0].events) {
            if let LiveEvent::SyncFinished(s) = e {
                if s.origin == Origin::Connect(SyncReason::AntiEntropy) {
                    dials.push((net.now.mono, ns));
                }
            }
        }
        let next = net.nodes.iter().filter_map(|n| n.live.poll_timeout()).min();
        match next {
            Some(t) if t <= limit => {
                net.now.mono = net.now.mono.max(t);
                for i in 0..net.nodes.len() {
                    let now = net.now;
                    net.nodes[i].live.handle_timeout(now);
                    net.check(i);
                    net.route(i);
                }
            }
            _ => return dials,
        }
    }
}

#[test]
fn first_rounds_of_documents_joined_together_spread_over_the_interval() {
    let (net, ids) = shared_docs(100);
    let start = net.now.mono;
    let mut buckets = [0usize; 10];
    for id in &ids {
        let at = net.nodes[0]
            .live
            .timers
            .get(&Timer::AntiEntropy(*id))
            .expect("a joined document has an anti-entropy timer");
        let offset = at.saturating_since(start);
        assert!(offset <= EVERY, "first round {offset:?} after joining");
        let bucket = (offset.as_micros() * 10 / EVERY.as_micros()).min(9) as usize;
        buckets[bucket] += 1;
    }
    // 100 documents over 10 tenths of the interval: about 10 each.
    assert!(
        buckets.iter().all(|n| *n <= 25),
        "first rounds per tenth of the interval: {buckets:?}"
    );
}

#[test]
fn anti_entropy_of_many_documents_stays_within_the_node_rate() {
    let (mut net, ids) = shared_docs(200);
    let limit = net.now.mono + Duration::from_secs(300);
    let dials = anti_entropy_dials(&mut net, limit);
    // Default: `rate` sessions a second with a burst of `rate`, per node. Unbudgeted, 200
    // documents every 30 s would dial about 1,800 times in 300 s, 67 a second when their
    // timers meet.
    let rate = LiveConfig::default().anti_entropy_max_per_sec as usize;
    let window = Duration::from_secs(10);
    let mut most = 0;
    for (i, (t, _)) in dials.iter().enumerate() {
        let in_window = dials[i..]
            .iter()
            .take_while(|(u, _)| u.saturating_since(*t) < window)
            .count();
        most = most.max(in_window);
    }
    assert!(
        most <= rate * 10 + rate,
        "{most} anti-entropy dials within {window:?} ({} in all)",
        dials.len()
    );
    // The budget delays rounds, it starves none.
    let reached: BTreeSet<NamespaceId> = dials.iter().map(|(_, ns)| *ns).collect();
    assert_eq!(reached.len(), ids.len(), "documents that had a round");
    assert!(
        dials.len() >= rate * 200,
        "only {} dials in 300 s",
        dials.len()
    );
}

#[test]
fn a_peer_that_synced_since_the_previous_round_is_skipped() {
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::with_config(2, config(Some(EVERY)));
    net.no_neighbors = true;
    net.create(0, &secret, &[&a]);
    net.import(1, Capability::Write(secret.clone()), &[]);
    net.start_sync(0, id, &[]);
    net.start_sync(1, id, &[0]);
    net.subscribe(0, id);
    net.subscribe(1, id);
    net.run();
    for n in 0..2 {
        net.take_events(n);
    }
    let limit = net.now.mono + EVERY * 20;
    net.run_timers_until(limit);
    let dialed: usize = (0..2)
        .map(|n| {
            compact(net.take_events(n))
                .into_iter()
                .filter(|e| {
                    matches!(
                        e,
                        Ev::Synced(_, Origin::Connect(SyncReason::AntiEntropy), Ok(_))
                    )
                })
                .count()
        })
        .sum();
    // Two nodes, one document, 20 intervals: each round of one node finds the other's sync
    // fresh, so about one session per interval between them, not two.
    assert!(
        (15..=26).contains(&dialed),
        "{dialed} anti-entropy sessions in 20 intervals"
    );
}
