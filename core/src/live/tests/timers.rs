//! The timer table seen from outside: re-joining a document does not stack timers, and
//! `poll_timeout` names only instants at which `handle_timeout` acts.

use std::time::Duration;

use quickcheck::{Arbitrary, Gen, QuickCheck};

use super::router::*;
use crate::{keys::Capability, live::*, time::Mono};

fn anti_entropy_config() -> LiveConfig {
    LiveConfig {
        anti_entropy_interval: Some(Duration::from_secs(30)),
        ..LiveConfig::default()
    }
}

#[test]
fn start_sync_leave_cycles_keep_one_anti_entropy_timer() {
    let (secret, a) = doc();
    let id = secret.id();
    let mut net = Net::with_config(2, anti_entropy_config());
    net.create(0, &secret, &[&a]);
    net.import(1, Capability::Write(secret.clone()), &[]);
    net.start_sync(1, id, &[]);
    net.run();
    let (mut most_joined, mut most_left) = (0, 0);
    for _ in 0..100 {
        net.start_sync(0, id, &[1]);
        net.run();
        net.api(
            0,
            ApiCommand::Leave {
                namespace: id,
                kill_subscribers: false,
            },
        );
        net.run();
        let left = net.nodes[0].live.timer_counts();
        most_left = most_left.max(left.anti_entropy + left.retry);
        net.start_sync(0, id, &[1]);
        net.run();
        net.start_sync(0, id, &[1]);
        net.run();
        most_joined = most_joined.max(net.nodes[0].live.timer_counts().anti_entropy);
    }
    assert!(net.nodes[0].live.is_syncing(&id));
    assert!(
        most_left == 0 && most_joined <= 1,
        "a left document kept up to {most_left} anti-entropy and retry timers; \
         one joined document had up to {most_joined} anti-entropy timers"
    );
}

/// One step of a random scenario on three nodes sharing one document.
#[derive(Debug, Clone)]
enum Step {
    Join { node: u8, peers: u8 },
    Leave { node: u8 },
    Set { node: u8, key: u8 },
    Offline { node: u8 },
    Online { node: u8 },
    FailDownloads(u8),
    Advance { millis: u32 },
}

impl Arbitrary for Step {
    fn arbitrary(g: &mut Gen) -> Self {
        let node = u8::arbitrary(g) % 3;
        match u8::arbitrary(g) % 10 {
            0 | 1 => Step::Join {
                node,
                peers: u8::arbitrary(g) % 8,
            },
            2 => Step::Leave { node },
            3 | 4 => Step::Set {
                node,
                key: u8::arbitrary(g) % 8,
            },
            5 => Step::Offline { node },
            6 => Step::Online { node },
            7 => Step::FailDownloads(u8::arbitrary(g) % 4),
            _ => Step::Advance {
                millis: u32::arbitrary(g) % 120_000,
            },
        }
    }
}

/// Advances to `limit`, firing every node's timers at the instant its `poll_timeout` names;
/// fails if a node's `handle_timeout` at that instant neither changes its state nor emits.
fn advance_checked(net: &mut Net, limit: Mono) -> Result<(), String> {
    for _ in 0..100_000 {
        net.run();
        let next = (0..net.nodes.len())
            .filter(|i| net.nodes[*i].online)
            .filter_map(|i| net.nodes[i].live.poll_timeout().map(|t| (t, i)))
            .min();
        let Some((t, i)) = next.filter(|(t, _)| *t <= limit) else {
            return Ok(());
        };
        net.now.mono = net.now.mono.max(t);
        let now = net.now;
        let before = net.nodes[i].live.activity_digest();
        net.nodes[i].live.handle_timeout(now);
        net.check(i);
        if net.nodes[i].live.activity_digest() == before {
            return Err(format!(
                "node {i}: poll_timeout named {t:?}, handle_timeout at {:?} did nothing",
                now.mono
            ));
        }
        net.route(i);
    }
    Err("timers did not settle".into())
}

fn timers_are_exact(steps: Vec<Step>) -> Result<(), String> {
    let (secret, a) = doc();
    let id = secret.id();
    let config = LiveConfig {
        session_idle_timeout: Duration::from_secs(5),
        ..anti_entropy_config()
    };
    let mut net = Net::with_config(3, config);
    net.create(0, &secret, &[&a]);
    net.import(1, Capability::Write(secret.clone()), &[&a]);
    net.import(2, Capability::Write(secret.clone()), &[&a]);
    for step in steps {
        match step {
            Step::Join { node, peers } => {
                let peers: Vec<usize> = (0..3).filter(|p| peers & (1 << p) != 0).collect();
                net.start_sync(node as usize, id, &peers);
            }
            Step::Leave { node } => {
                net.api(
                    node as usize,
                    ApiCommand::Leave {
                        namespace: id,
                        kill_subscribers: false,
                    },
                );
            }
            Step::Set { node, key } => {
                net.set(
                    node as usize,
                    id,
                    &a,
                    &format!("k{key}"),
                    &format!("v{key}"),
                );
            }
            Step::Offline { node } => net.nodes[node as usize].online = false,
            Step::Online { node } => net.nodes[node as usize].online = true,
            Step::FailDownloads(n) => net.failing_downloads = u32::from(n),
            Step::Advance { millis } => {
                let limit = net.now.mono + Duration::from_millis(u64::from(millis));
                advance_checked(&mut net, limit)?;
            }
        }
        net.run();
    }
    // Let every timer run out (anti-entropy keeps ticking: stop after two rounds).
    let limit = net.now.mono + Duration::from_secs(200);
    advance_checked(&mut net, limit)
}

#[test]
fn poll_timeout_names_only_instants_at_which_handle_timeout_acts() {
    fn prop(steps: Vec<Step>) -> bool {
        match timers_are_exact(steps) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("{e}");
                false
            }
        }
    }
    QuickCheck::new()
        .tests(200)
        .rng(Gen::new(40))
        .quickcheck(prop as fn(Vec<Step>) -> bool);
}
