//! Dials that meet another session of the same pair: crossing dials and their tie-break are
//! in `sync`; here a dial refused because the peer still runs an older session of ours.

use std::time::Duration;

use crate::keys::Capability;
use crate::live::*;

use super::router::*;

/// A dial refused with `AlreadySyncing` because the peer is still accepting an older dial of
/// ours (one from before we left and re-joined the document), not because it is dialing
/// us: no dial from the peer follows, so the refused sync must be tried again instead of
/// waiting for one.
#[test]
fn a_dial_refused_by_a_peer_still_accepting_our_older_dial_is_retried() {
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::new(2);
    net.no_neighbors = true;
    // Node 1 has the larger id: it accepts crossing dials, node 0 refuses them.
    net.create(1, &secret, &[&a]);
    net.set(1, id, &a, "k", "v");
    net.start_sync(1, id, &[]);
    net.run();
    net.import(0, Capability::Write(secret.clone()), &[]);
    net.subscribe(0, id);
    net.start_sync(0, id, &[1]);
    // Step until node 1 has accepted that dial.
    let accepted = |net: &Net| {
        net.nodes[1]
            .live
            .sync_status(&id)
            .is_some_and(|s| s.peers.iter().any(|p| p.syncing))
    };
    for _ in 0..10_000 {
        if accepted(&net) {
            break;
        }
        let (node, input) = net.queue.pop_front().expect("the dial goes on");
        let now = net.now;
        net.nodes[node].live.handle(now, input);
        net.route(node);
    }
    assert!(accepted(&net), "node 1 accepted node 0's dial");
    // Node 0 leaves and re-joins while that sync runs, and dials again.
    net.api(
        0,
        ApiCommand::Leave {
            namespace: id,
            kill_subscribers: false,
        },
    );
    net.start_sync(0, id, &[1]);
    // Node 1 is slow to go on with the older session (say, building its index): everything
    // else is delivered first, so the new dial's `Init` finds that session still running.
    let older = |node: usize, input: &Input| {
        node == 1
            && matches!(input,
                Input::SyncData { session, .. }
                | Input::SyncRecvFinished { session }
                | Input::SyncClosed { session, .. } if session.role == Role::Accept && session.n == 0)
    };
    for _ in 0..10_000 {
        let Some(at) = net
            .queue
            .iter()
            .position(|(node, input)| !older(*node, input))
        else {
            break;
        };
        let (node, input) = net.queue.remove(at).expect("found");
        let now = net.now;
        net.nodes[node].live.handle(now, input);
        net.route(node);
    }
    let deadline = net.now.mono + Duration::from_secs(120);
    net.run_timers_until(deadline);
    assert_eq!(net.entries(0, id), net.entries(1, id));
    let synced: Vec<Ev> = compact(net.take_events(0))
        .into_iter()
        .filter(|e| matches!(e, Ev::Synced(..)))
        .collect();
    assert!(
        synced
            .iter()
            .any(|e| matches!(e, Ev::Synced(1, Origin::Connect(_), Ok(_)))),
        "the re-joined document finished a sync with node 1: {synced:?}"
    );
    let status = net.nodes[0].live.sync_status(&id).expect("syncing");
    assert!(status
        .peers
        .iter()
        .all(|p| !p.syncing && p.last_sync.is_some()));
}
