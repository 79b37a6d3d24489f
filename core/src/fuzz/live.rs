//! `live_inputs`: a [`Live`] fed an arbitrary sequence of inputs with monotone time.
//!
//! Besides single inputs, two steps play a hostile crowd: a flood of forged gossip `Put`s
//! delivered by many peers (some as the author's own node, some relayed), which the gossip
//! budget per peer and in all and the mute must hold, and many sessions accepted from many
//! peers that never send `Init` (some dripping part of a frame), which the accept caps, the
//! frame limit and the deadline before `Init` must hold. The store replies include the
//! failures a flood provokes (a `Put` refused for its signature) and a failing backend.
//! Half the inputs run with sync v2 on: rounds end however the runtime reports them (done,
//! answered v1, failed, or a served round), in any order.

use std::collections::BTreeSet;

use super::Input as Bytes;
use crate::{
    entry::{Entry, Record, SignedEntry, ValidationFailure, VerifyError},
    hash::{Hash, PeerId},
    keys::{Author, NamespaceSecret},
    live::{
        ApiCommand, ApiRequestId, DownloadOutcome, GossipEvent, Input, Live, LiveConfig, Output,
        Role, RoundOutcome, SessionError, SessionId, StoreRequestId,
    },
    ranger::{ContentStatus, Message},
    replica::{ReplicaError, ReplicaEvent, StoreResponse, SyncOutcome},
    store::StoreError,
    time::{Mono, Now},
    v2::round::{RoundDoc, RoundReport},
    wire::{encode_frame, AbortReason, Encode, NodeAddr, Op, SyncMessage},
};

/// Most steps per run.
const MAX_STEPS: usize = 256;
/// Most outputs one step may produce.
const MAX_OUTPUTS_PER_STEP: usize = 4096;

struct State {
    live: Live,
    now: Now,
    pending: Vec<StoreRequestId>,
    dials: Vec<SessionId>,
    accepts: Vec<SessionId>,
    /// Sync v2 rounds dialed (`Output::SyncAll`).
    rounds: Vec<SessionId>,
    /// Sync v2 rounds peers dialed that `Live` admitted (`Output::RoundAdmit`).
    served: Vec<SessionId>,
    downloads: Vec<Hash>,
    next_accept: u64,
    next_api: u64,
    /// Forged entries made so far (signing is slow in debug builds).
    forged: std::collections::BTreeMap<u8, SignedEntry>,
}

fn peer(i: u8) -> PeerId {
    PeerId::from_bytes([i % 4 + 1; 32])
}

/// One of 8 peers of a hostile crowd, none of them among [`peer`]'s.
fn crowd(i: u8) -> PeerId {
    PeerId::from_bytes([0x80 + i % 8; 32])
}

/// [`entry`] `i` with newer content under the signatures of entry `i + 1`: well-formed, of
/// the same document, and its signatures do not verify.
fn forged(i: u8) -> SignedEntry {
    let e = entry(i);
    let record = Record::new(Hash::new([i, 0xff]), 2, e.timestamp() + 1);
    SignedEntry::from_parts(
        *entry(i.wrapping_add(1)).signature(),
        Entry::new(e.id().clone(), record),
    )
}

fn namespace(i: u8) -> NamespaceSecret {
    NamespaceSecret::from_bytes(&[0x40 + i % 3; 32])
}

fn entry(i: u8) -> SignedEntry {
    let ns = namespace(i);
    let author = Author::from_bytes(&[0x50 + (i >> 2) % 2; 32]);
    SignedEntry::new(
        &ns,
        &author,
        &[i],
        Record::new(Hash::new([i]), 1, 1_700_000_000_000_000 + u64::from(i)),
    )
}

fn pick<T: Copy>(items: &[T], i: u8) -> Option<T> {
    (!items.is_empty()).then(|| items[usize::from(i) % items.len()])
}

impl State {
    fn forged(&mut self, i: u8) -> SignedEntry {
        self.forged.entry(i).or_insert_with(|| forged(i)).clone()
    }

    fn drain(&mut self) {
        let mut n = 0;
        while let Some(out) = self.live.poll_output() {
            n += 1;
            assert!(
                n <= MAX_OUTPUTS_PER_STEP,
                "one input produced more than {MAX_OUTPUTS_PER_STEP} outputs"
            );
            match out {
                Output::Store { request, .. } => self.pending.push(request),
                Output::SyncConnect { session, .. } => self.dials.push(session),
                Output::SyncAll { session, .. } => self.rounds.push(session),
                Output::RoundAdmit {
                    session,
                    refusal: None,
                } => self.served.push(session),
                Output::Download { hash, .. } => self.downloads.push(hash),
                Output::SyncSend { bytes, .. } => {
                    assert!(bytes.len() >= 4, "frames carry a header")
                }
                _ => {}
            }
        }
    }

    fn handle(&mut self, input: Input) {
        self.live.handle(self.now, input);
        self.check();
        self.drain();
    }

    fn check(&self) {
        if let Err(e) = self.live.check_invariants() {
            panic!("invariant violated: {e}; pending: {}", self.live.pending());
        }
    }

    fn store_reply(&mut self, data: &mut Bytes<'_>) {
        if self.pending.is_empty() {
            return;
        }
        // The contract: replies arrive in emission order (`check_invariants` verifies it).
        let _ = data.u8();
        let request = self.pending.remove(0);
        let result = match data.u8() % 10 {
            0 => Ok(StoreResponse::Done),
            1 => Ok(StoreResponse::Message(Message::default())),
            2 => Ok(StoreResponse::Synced {
                reply: None,
                outcome: SyncOutcome {
                    num_recv: 1,
                    ..Default::default()
                },
            }),
            3 => Ok(StoreResponse::Synced {
                reply: Some(Message::default()),
                outcome: SyncOutcome::default(),
            }),
            4 => Ok(StoreResponse::Peers(Some(vec![peer(data.u8())]))),
            5 => Ok(StoreResponse::News(std::num::NonZeroU64::new(u64::from(
                data.u8(),
            )))),
            6 => Ok(StoreResponse::Bool(true)),
            7 => Err(ReplicaError::ReadOnly),
            8 => Err(ReplicaError::Validation(ValidationFailure::BadSignature(
                VerifyError::NamespaceSignature,
            ))),
            _ => Err(ReplicaError::Store(StoreError::Backend("io".into()))),
        };
        self.handle(Input::StoreReply { request, result });
    }
}

/// Feeds `data`, interpreted as a script of inputs, to a `Live`. Checks: no panic; every input
/// produces a bounded number of outputs; time only moves forward; a `handle_timeout` before
/// the time [`Live::poll_timeout`] names does nothing, and at that time acts;
/// [`Live::check_invariants`] holds after every input; replies and sessions stay bounded by
/// what was asked. Store replies answer the oldest outstanding request, as the contract says.
pub fn live_inputs(data: &[u8]) {
    let v2 = data.len() % 2 == 1;
    let mut data = Bytes::new(data);
    let config = LiveConfig {
        max_sessions: 4,
        max_accepted_sessions: 4,
        max_sessions_per_peer: 2,
        max_init_frame_len: 256,
        anti_entropy_max_per_sec: 1,
        max_session_backlog: 2,
        max_concurrent_downloads: 2,
        max_tracked_hashes: 16,
        max_peers_per_namespace: 3,
        max_gossip_store: 8,
        max_gossip_store_per_peer: 2,
        anti_entropy_interval: Some(std::time::Duration::from_secs(5)),
        // Half the inputs run with sync v2 (rounds instead of sessions).
        sync_v2: v2,
        ..LiveConfig::default()
    };
    let mut s = State {
        live: Live::new(config, PeerId::from_bytes([9; 32]), [7; 32]),
        now: Now::new(Mono(1_000_000), 1_700_000_000_000_000),
        pending: Vec::new(),
        dials: Vec::new(),
        accepts: Vec::new(),
        rounds: Vec::new(),
        served: Vec::new(),
        downloads: Vec::new(),
        next_accept: 0,
        next_api: 0,
        forged: Default::default(),
    };
    let mut seen_sessions = BTreeSet::new();
    for _ in 0..MAX_STEPS {
        if data.is_empty() {
            break;
        }
        let op = data.u8();
        let arg = data.u8();
        let ns = namespace(arg).id();
        let api = ApiRequestId(s.next_api);
        match op % 16 {
            0 => {
                s.next_api += 1;
                let peers = (0..arg % 3).map(|i| NodeAddr::new(peer(i))).collect();
                s.handle(Input::Api {
                    request: api,
                    command: ApiCommand::StartSync {
                        namespace: ns,
                        peers,
                    },
                });
            }
            1 => {
                s.next_api += 1;
                s.handle(Input::Api {
                    request: api,
                    command: ApiCommand::Leave {
                        namespace: ns,
                        kill_subscribers: arg.is_multiple_of(2),
                    },
                });
            }
            2 => {
                s.next_api += 1;
                let command = if arg.is_multiple_of(2) {
                    ApiCommand::Subscribe { namespace: ns }
                } else {
                    ApiCommand::Unsubscribe { namespace: ns }
                };
                s.handle(Input::Api {
                    request: api,
                    command,
                });
            }
            3 | 4 => s.store_reply(&mut data),
            5 => {
                let e = entry(data.u8());
                let event = if arg.is_multiple_of(2) {
                    ReplicaEvent::LocalInsert {
                        namespace: e.namespace(),
                        entry: e,
                    }
                } else {
                    ReplicaEvent::RemoteInsert {
                        namespace: e.namespace(),
                        entry: e,
                        from: peer(arg),
                        should_download: true,
                        remote_content_status: if arg % 4 == 1 {
                            ContentStatus::Complete
                        } else {
                            ContentStatus::Missing
                        },
                    }
                };
                s.handle(Input::Replica(event));
            }
            6 if arg % 8 == 7 => s.handle(Input::GossipStalled),
            6 => {
                let event = match arg % 8 {
                    0 => GossipEvent::Joined(vec![peer(data.u8())]),
                    1 => GossipEvent::NeighborUp(peer(data.u8())),
                    2 => GossipEvent::NeighborDown(peer(data.u8())),
                    3 => GossipEvent::Received {
                        content: {
                            let n = usize::from(data.u8() % 64);
                            data.take(n).to_vec()
                        },
                        delivered_from: peer(arg),
                        direct: true,
                    },
                    4 => {
                        let op = match data.u8() % 3 {
                            0 => Op::Put(entry(data.u8())),
                            1 => Op::ContentReady(Hash::new([data.u8()])),
                            _ => Op::SyncReport(crate::wire::SyncReport {
                                namespace: ns,
                                heads: data.take(40).to_vec(),
                            }),
                        };
                        GossipEvent::Received {
                            content: op.to_wire(),
                            delivered_from: peer(arg),
                            direct: arg.is_multiple_of(2),
                        }
                    }
                    5 => GossipEvent::Ended,
                    _ => GossipEvent::Lagged,
                };
                s.handle(Input::Gossip {
                    namespace: ns,
                    event,
                });
            }
            7 => {
                if let Some(session) = pick(&s.dials, arg) {
                    s.handle(Input::SyncConnected { session });
                }
            }
            8 => {
                let session = SessionId {
                    role: Role::Accept,
                    n: s.next_accept,
                };
                s.next_accept += 1;
                s.accepts.push(session);
                s.handle(Input::SyncAccepted {
                    session,
                    peer: peer(arg),
                });
            }
            9 | 10 => {
                let all: Vec<SessionId> = s.dials.iter().chain(s.accepts.iter()).copied().collect();
                if let Some(session) = pick(&all, arg) {
                    let bytes = match data.u8() % 4 {
                        0 => {
                            let n = usize::from(data.u8());
                            data.take(n).to_vec()
                        }
                        1 => {
                            let mut out = Vec::new();
                            encode_frame(
                                &SyncMessage::Init {
                                    namespace: ns,
                                    message: Message::default(),
                                },
                                u32::MAX,
                                &mut out,
                            )
                            .expect("small");
                            out
                        }
                        2 => {
                            let mut out = Vec::new();
                            encode_frame(
                                &SyncMessage::Sync(Message::default()),
                                u32::MAX,
                                &mut out,
                            )
                            .expect("small");
                            out
                        }
                        _ => {
                            let mut out = Vec::new();
                            let reason = [
                                AbortReason::NotFound,
                                AbortReason::AlreadySyncing,
                                AbortReason::InternalServerError,
                            ][usize::from(arg) % 3];
                            encode_frame(&SyncMessage::Abort { reason }, u32::MAX, &mut out)
                                .expect("small");
                            out
                        }
                    };
                    seen_sessions.insert(session);
                    s.handle(Input::SyncData { session, bytes });
                }
            }
            11 => {
                let all: Vec<SessionId> = s.dials.iter().chain(s.accepts.iter()).copied().collect();
                if let Some(session) = pick(&all, arg) {
                    let input = if data.u8().is_multiple_of(2) {
                        Input::SyncRecvFinished { session }
                    } else {
                        Input::SyncClosed {
                            session,
                            error: (arg.is_multiple_of(2))
                                .then(|| SessionError::Transport("boom".into())),
                        }
                    };
                    s.handle(input);
                }
            }
            12 => {
                let hash = pick(&s.downloads, arg).unwrap_or_else(|| Hash::new([arg]));
                let outcome = match data.u8() % 3 {
                    0 => DownloadOutcome::Downloaded,
                    1 => DownloadOutcome::AlreadyPresent,
                    _ => DownloadOutcome::Failed("nope".into()),
                };
                s.handle(Input::DownloadFinished { hash, outcome });
            }
            // A v2 round ends (or a served one is reported), however the runtime says.
            13 if arg % 4 != 3 => {
                let docs = (0..data.u8() % 3)
                    .map(|i| RoundDoc {
                        namespace: namespace(arg.wrapping_add(i)).id(),
                        stats: Default::default(),
                        heads: Default::default(),
                    })
                    .collect();
                let report = RoundReport {
                    differing: u64::from(arg % 3),
                    entries_sent: u64::from(arg % 5),
                    entries_received: u64::from(arg % 7),
                    docs,
                };
                let which = data.u8();
                let input = match (pick(&s.rounds, which), data.u8() % 6) {
                    (Some(session), 0) => Input::SyncAllEnded {
                        session,
                        outcome: RoundOutcome::Synced(report),
                    },
                    (Some(session), 1) => Input::SyncAllEnded {
                        session,
                        outcome: RoundOutcome::V1Only,
                    },
                    (Some(session), 2) => Input::SyncAllEnded {
                        session,
                        outcome: RoundOutcome::Failed(SessionError::Transport("gone".into())),
                    },
                    (Some(session), 3) => Input::SyncAllEnded {
                        session,
                        outcome: RoundOutcome::Refused,
                    },
                    (_, 4) => {
                        let session = SessionId {
                            role: Role::Accept,
                            n: s.next_accept,
                        };
                        s.next_accept += 1;
                        Input::RoundAccepted {
                            session,
                            peer: peer(which),
                        }
                    }
                    _ => Input::RoundServed {
                        session: pick(&s.served, which).unwrap_or(SessionId {
                            role: Role::Accept,
                            n: u64::from(which),
                        }),
                        report: (!arg.is_multiple_of(5)).then_some(report),
                        took: std::time::Duration::from_millis(u64::from(arg)),
                    },
                };
                s.handle(input);
            }
            // A flood of forged `Put`s delivered by many peers.
            14 => {
                let peers = arg % 8 + 1;
                let per_peer = data.u8() % 3 + 1;
                let direct = data.u8();
                for j in 0..peers {
                    for k in 0..per_peer {
                        let event = GossipEvent::Received {
                            content: Op::Put(s.forged(j.wrapping_mul(7).wrapping_add(k) % 16))
                                .to_wire(),
                            delivered_from: crowd(j),
                            direct: direct & (1 << (j % 8)) != 0,
                        };
                        s.handle(Input::Gossip {
                            namespace: ns,
                            event,
                        });
                    }
                }
            }
            // Many peers open sessions and never send `Init`; some drip part of a frame.
            15 => {
                let peers = arg % 6 + 1;
                let sessions = data.u8() % 2 + 1;
                for j in 0..peers {
                    for _ in 0..sessions {
                        let session = SessionId {
                            role: Role::Accept,
                            n: s.next_accept,
                        };
                        s.next_accept += 1;
                        s.accepts.push(session);
                        s.handle(Input::SyncAccepted {
                            session,
                            peer: crowd(j),
                        });
                        let drip = data.u8();
                        if drip % 2 == 1 {
                            // A frame header announcing `drip` bytes, and one of them.
                            let mut bytes = u32::from(drip).to_be_bytes().to_vec();
                            bytes.push(drip);
                            seen_sessions.insert(session);
                            s.handle(Input::SyncData { session, bytes });
                        }
                    }
                }
            }
            _ => {
                // Advance time; a call before the announced timeout must do nothing.
                let step = u64::from(data.u16()) * 1000 * u64::from(arg % 64 + 1);
                if let Some(due) = s.live.poll_timeout() {
                    if due.0 > s.now.mono.0 + 1 {
                        let before = Now::new(Mono(due.0 - 1), s.now.wall_micros);
                        s.live.handle_timeout(before);
                        s.now = before;
                        assert!(
                            s.live.poll_output().is_none(),
                            "handle_timeout acted before poll_timeout"
                        );
                        assert_eq!(s.live.poll_timeout(), Some(due));
                    }
                }
                let target = Now::new(Mono(s.now.mono.0 + step), s.now.wall_micros + step);
                // At the announced instant, `handle_timeout` acts.
                if let Some(due) = s.live.poll_timeout().filter(|d| *d <= target.mono) {
                    let at = Now::new(due.max(s.now.mono), s.now.wall_micros);
                    let before = s.live.activity_digest();
                    s.live.handle_timeout(at);
                    s.now = at;
                    assert_ne!(
                        s.live.activity_digest(),
                        before,
                        "handle_timeout did nothing at the instant poll_timeout named"
                    );
                    s.check();
                    s.drain();
                }
                s.now = target;
                s.live.handle_timeout(s.now);
                s.check();
                s.drain();
            }
        }
        assert!(s.live.session_count() <= s.dials.len() + s.accepts.len() + s.rounds.len());
        let load = s.live.session_load();
        assert!(
            load.dialed <= 4 && load.accepted <= 4,
            "session bounds exceeded"
        );
        let (in_flight, _) = s.live.download_load();
        assert!(in_flight <= 2, "download bound exceeded");
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::{
        rand_core::{Rng, SeedableRng},
        ChaCha8Rng,
    };

    /// The stored corpus and a thousand seeded random inputs run clean, invariants and
    /// exact timers included.
    #[test]
    fn corpus_and_random_inputs_run_clean() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/live_inputs");
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let bytes = std::fs::read(entry.path()).expect("readable corpus file");
                super::live_inputs(&bytes);
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..1000 {
            let len = (rng.next_u32() % 2048) as usize;
            let mut bytes = vec![0u8; len];
            rng.fill_bytes(&mut bytes);
            super::live_inputs(&bytes);
        }
    }
}
