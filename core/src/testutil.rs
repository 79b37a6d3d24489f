//! Fixtures shared by the core's unit tests.

use crate::{
    hash::PeerId,
    keys::{Author, Capability, NamespaceId, NamespaceSecret},
    replica::{OpenOpts, ReplicaConfig, ReplicaEvent, Replicas, SyncOutcome},
    store::Backend,
    time::{Mono, Now},
};

/// 2023-11-14, in µs.
pub(crate) const T0: u64 = 1_700_000_000_000_000;

pub(crate) fn now(wall: u64) -> Now {
    Now::new(Mono(wall), wall)
}

pub(crate) fn ns(seed: u8) -> NamespaceSecret {
    NamespaceSecret::from_bytes(&[seed; 32])
}

pub(crate) fn author(seed: u8) -> Author {
    Author::from_bytes(&[seed; 32])
}

pub(crate) fn peer(seed: u8) -> PeerId {
    PeerId::from_bytes([seed; 32])
}

/// Instantiates generic test bodies `fn name<B: Backend>(backend: B)` once per backend.
macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => {
        mod mem_backend {
            $(#[test] fn $name() { super::$name($crate::store::MemBackend::new()) })*
        }
        #[cfg(feature = "redb")]
        mod redb_backend {
            $(#[test] fn $name() { super::$name($crate::store::RedbBackend::memory().unwrap()) })*
        }
    };
}
pub(crate) use for_each_backend;

/// An executor over `backend` holding `secret` (open, syncing, subscribed) and `authors`.
pub(crate) fn replicas<B: Backend>(
    backend: B,
    secret: &NamespaceSecret,
    authors: &[&Author],
) -> Replicas<B> {
    let mut r = Replicas::new(backend, ReplicaConfig::default());
    r.import_namespace(now(T0), Capability::Write(secret.clone()))
        .unwrap();
    for a in authors {
        r.import_author(now(T0), (*a).clone()).unwrap();
    }
    r.open(
        secret.id(),
        OpenOpts {
            sync: true,
            subscribe: true,
        },
    )
    .unwrap();
    r
}

/// Drains all queued events.
pub(crate) fn events<B: Backend, C: crate::ranger::ContentStatusSource>(
    r: &mut Replicas<B, C>,
) -> Vec<ReplicaEvent> {
    std::iter::from_fn(|| r.poll_event()).collect()
}

/// Runs a full sync between `a` (initiator) and `b`; returns messages sent by a and by b, and
/// both outcomes. Panics after 200 rounds.
pub(crate) fn sync<B1: Backend, B2: Backend>(
    a: &mut Replicas<B1>,
    b: &mut Replicas<B2>,
    ns: NamespaceId,
    wall: u64,
) -> (usize, usize, SyncOutcome, SyncOutcome) {
    let (pa, pb) = (peer(1), peer(2));
    let mut oa = SyncOutcome::default();
    let mut ob = SyncOutcome::default();
    let mut msg = Some(a.sync_initial_message(ns).unwrap());
    let (mut sent_a, mut sent_b) = (1, 0);
    for round in 0.. {
        assert!(round < 200, "sync did not terminate");
        let Some(m) = msg.take() else { break };
        let reply = if round % 2 == 0 {
            b.sync_process_message(now(wall), ns, m, pa, &mut ob)
                .unwrap()
        } else {
            a.sync_process_message(now(wall), ns, m, pb, &mut oa)
                .unwrap()
        };
        if reply.is_some() {
            if round % 2 == 0 {
                sent_b += 1;
            } else {
                sent_a += 1;
            }
        }
        msg = reply;
    }
    // The initial message's values are counted by the receiver only.
    (sent_a, sent_b, oa, ob)
}

/// A small deterministic generator (xorshift64) for randomized tests.
#[derive(Debug, Clone)]
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    /// The next value below `n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}
