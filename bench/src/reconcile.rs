//! In-process reconciliation: two replicas of `n` entries each that differ in `diff` entries
//! (half unique to each side) reconcile by exchanging encoded messages, no network.
//!
//! Measured: wall time of the whole exchange (encode, decode, process, validate, store),
//! messages and bytes, and for Sheaf the store calls and entries read, which must grow with
//! `diff · log n`, not with `n`.

use std::time::Instant;

use iroh_docs::{sync::ProtocolMessage, ContentStatus as IrohStatus};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha12Rng;
use sheaf_core::{
    ranger::{Message, SyncConfig},
    replica::{OpenOpts, ReplicaConfig, Replicas, SyncOutcome},
    store::{Backend, MemBackend, RedbBackend},
    wire::{Decode, Encode},
    Author, Capability, Hash, Mono, NamespaceSecret, Now, PeerId, Record, SignedEntry,
};

use crate::{counting::Counting, Row};

const T0: u64 = 1_700_000_000_000_000;

fn now() -> Now {
    Now::new(Mono(0), T0 + 3_600_000_000)
}

/// The two sides' entries.
pub struct Data {
    secret: NamespaceSecret,
    a: Vec<SignedEntry>,
    b: Vec<SignedEntry>,
}

/// Generates `n` entries per side, `diff / 2` of them unique to each side. The random parts
/// are drawn in order from `seed`; signing runs on every core.
pub fn data(n: usize, diff: usize, seed: u64) -> Data {
    let mut rng = ChaCha12Rng::seed_from_u64(seed);
    let secret = NamespaceSecret::new(&mut rng);
    let authors: Vec<Author> = (0..4).map(|_| Author::new(&mut rng)).collect();
    let total = n - diff / 2 + diff;
    let parts: Vec<(usize, String, [u8; 32], u64)> = (0..total)
        .map(|_| {
            let author = rng.random_range(0..authors.len());
            let key = format!("doc/{:016x}", rng.random::<u64>());
            let value: [u8; 32] = rng.random();
            (
                author,
                key,
                value,
                T0 + rng.random_range(0..1_000_000_000u64),
            )
        })
        .collect();
    let mut signed = crate::data::par_map(&parts, |(author, key, value, ts)| {
        let record = Record::new(Hash::new(value), 32, *ts);
        SignedEntry::new(&secret, &authors[*author], key.as_bytes(), record)
    });
    let only_b = signed.split_off(n);
    let shared_len = n - diff / 2;
    let a = signed;
    let mut b = a[..shared_len].to_vec();
    b.extend(only_b);
    Data { secret, a, b }
}

struct Stats {
    millis: f64,
    messages: usize,
    bytes: usize,
}

fn sheaf_side<B: Backend>(
    backend: B,
    data: &Data,
    entries: &[SignedEntry],
    sync: SyncConfig,
) -> Replicas<Counting<B>> {
    let config = ReplicaConfig {
        sync,
        ..ReplicaConfig::default()
    };
    let mut r = Replicas::new(Counting::new(backend, Default::default()), config);
    r.import_namespace(now(), Capability::Write(data.secret.clone()))
        .expect("import");
    r.open(
        data.secret.id(),
        OpenOpts {
            sync: true,
            subscribe: false,
        },
    )
    .expect("open");
    for e in entries {
        r.indexed_mut().put(e.clone()).expect("put");
    }
    r.flush().expect("flush");
    // A running node builds its fingerprint index when it opens the document, not during a
    // sync: do that outside the measurement.
    r.sync_initial_message(data.secret.id()).expect("warm up");
    r.indexed_mut().backend_mut().observer.reset();
    r
}

fn sheaf_run<B: Backend>(
    a: &mut Replicas<Counting<B>>,
    b: &mut Replicas<Counting<B>>,
    data: &Data,
) -> Stats {
    let ns = data.secret.id();
    let start = Instant::now();
    let (mut oa, mut ob) = (SyncOutcome::default(), SyncOutcome::default());
    let mut bytes = a.sync_initial_message(ns).expect("init").to_wire();
    let mut total = bytes.len();
    let mut messages = 1;
    let mut to_b = true;
    loop {
        let msg = Message::from_wire(&bytes).expect("decode");
        let reply = if to_b {
            b.sync_process_message(now(), ns, msg, PeerId::from_bytes([1; 32]), &mut ob)
        } else {
            a.sync_process_message(now(), ns, msg, PeerId::from_bytes([2; 32]), &mut oa)
        }
        .expect("process");
        let Some(reply) = reply else { break };
        bytes = reply.to_wire();
        total += bytes.len();
        messages += 1;
        to_b = !to_b;
    }
    Stats {
        millis: start.elapsed().as_secs_f64() * 1000.0,
        messages,
        bytes: total,
    }
}

/// Sync v2's document session between the two executors (no phase 1: one document), through
/// real frames; a flight is everything one side writes before it hears back.
fn v2_run<B: Backend>(
    a: &mut Replicas<Counting<B>>,
    b: &mut Replicas<Counting<B>>,
    data: &Data,
) -> Stats {
    use sheaf_core::{
        replica::{V2Command, V2Response, V2Step},
        v2::{codec::Message as V2, doc::DocConfig, frame::encode_frame},
    };
    let ns = data.secret.id();
    let step = |r: V2Response| match r {
        V2Response::Step(s) => {
            assert!(s.failed.is_none(), "{:?}", s.failed);
            s
        }
        V2Response::Done => V2Step::default(),
        other => panic!("{other:?}"),
    };
    // As v1's index is built when a document opens, a running node's chunks hold their v2
    // sums from its first v2 sync on: learn them outside the measurement.
    for r in [&mut *a, &mut *b] {
        r.indexed_mut()
            .v2_range_fingerprint(ns, None, None)
            .expect("warm up");
        r.indexed_mut().backend_mut().observer.reset();
    }
    let start = Instant::now();
    let (pa, pb) = (PeerId::from_bytes([1; 32]), PeerId::from_bytes([2; 32]));
    a.apply_v2(now(), V2Command::Begin { conn: 1, peer: pb })
        .expect("begin");
    b.apply_v2(now(), V2Command::Begin { conn: 1, peer: pa })
        .expect("begin");
    let mut config = DocConfig::default();
    // `SHEAF_BENCH_V2_SPLIT=FxL[xE]`: fanout, leaf size and eager leaf size of the v2 session,
    // for choosing them.
    if let Ok(v) = std::env::var("SHEAF_BENCH_V2_SPLIT") {
        let mut it = v.split('x').map(|x| x.parse().ok());
        if let Some(f) = it.next().flatten() {
            config.fanout = f as usize;
        }
        if let Some(l) = it.next().flatten() {
            config.leaf = l;
        }
        if let Some(e) = it.next().flatten() {
            config.eager_leaf = e;
        }
    }
    if let Some(m) = crate::nodes::v2_riblt_max() {
        config.riblt_max_items = m;
    }
    let key = [9u8; 32];
    let first = step(
        a.apply_v2(
            now(),
            V2Command::Open {
                conn: 1,
                stream: 1,
                namespace: ns,
                tag: [0; 16],
                riblt_key: key,
                config,
            },
        )
        .expect("open"),
    );
    b.apply_v2(
        now(),
        V2Command::Accept {
            conn: 1,
            stream: 1,
            namespace: ns,
            riblt_key: key,
            config,
        },
    )
    .expect("accept");
    let frames = |msgs: &[V2]| {
        let mut buf = Vec::new();
        for m in msgs {
            encode_frame(m, &mut buf).expect("fits");
        }
        buf.len()
    };
    let mut flight: (Vec<V2>, Vec<V2>) = (first.control, first.messages);
    let mut total = frames(&flight.0) + frames(&flight.1);
    let (mut flights, mut to_b, mut done) = (1, true, [first.done, false]);
    while !(done[0] && done[1]) {
        let (r, side) = if to_b { (&mut *b, 1) } else { (&mut *a, 0) };
        let mut next: (Vec<V2>, Vec<V2>) = (Vec::new(), Vec::new());
        for m in flight.0 {
            if let V2::Authors { first, ids } = m {
                r.apply_v2(
                    now(),
                    V2Command::Define {
                        conn: 1,
                        first,
                        ids,
                    },
                )
                .expect("define");
            }
        }
        for m in flight.1 {
            let s = step(
                r.apply_v2(
                    now(),
                    V2Command::Handle {
                        conn: 1,
                        stream: 1,
                        message: m,
                    },
                )
                .expect("handle"),
            );
            next.0.extend(s.control);
            next.1.extend(s.messages);
            done[side] |= s.done;
        }
        flight = next;
        if flight.1.is_empty() {
            assert!(done[0] && done[1], "v2 session stalled");
            break;
        }
        total += frames(&flight.0) + frames(&flight.1);
        flights += 1;
        to_b = !to_b;
    }
    Stats {
        millis: start.elapsed().as_secs_f64() * 1000.0,
        messages: flights,
        bytes: total,
    }
}

struct IrohSide {
    store: iroh_docs::store::Store,
    ns: iroh_docs::NamespaceId,
}

fn iroh_side(rt: &tokio::runtime::Runtime, data: &Data, entries: &[SignedEntry]) -> IrohSide {
    let mut store = iroh_docs::store::Store::memory();
    let secret = iroh_docs::NamespaceSecret::from_bytes(&data.secret.to_bytes());
    let ns = secret.id();
    let mut replica = store.new_replica(secret).expect("replica");
    for e in entries {
        let e: iroh_docs::SignedEntry = postcard::from_bytes(&e.to_wire()).expect("entry");
        rt.block_on(replica.insert_remote_entry(e, [9; 32], IrohStatus::Missing))
            .expect("insert");
    }
    drop(replica);
    store.flush().expect("flush");
    IrohSide { store, ns }
}

fn iroh_run(rt: &tokio::runtime::Runtime, a: &mut IrohSide, b: &mut IrohSide) -> Stats {
    let start = Instant::now();
    let init = a
        .store
        .open_replica(&a.ns)
        .expect("open")
        .sync_initial_message()
        .expect("init");
    let mut bytes = postcard::to_stdvec(&init).expect("encode");
    let mut total = bytes.len();
    let mut messages = 1;
    let mut to_b = true;
    let (mut oa, mut ob) = (
        iroh_docs::SyncOutcome::default(),
        iroh_docs::SyncOutcome::default(),
    );
    loop {
        let msg: ProtocolMessage = postcard::from_bytes(&bytes).expect("decode");
        let (side, outcome, from) = if to_b {
            (&mut *b, &mut ob, [1; 32])
        } else {
            (&mut *a, &mut oa, [2; 32])
        };
        let mut replica = side.store.open_replica(&side.ns).expect("open");
        let reply = rt
            .block_on(replica.sync_process_message(msg, from, outcome))
            .expect("process");
        let Some(reply) = reply else { break };
        bytes = postcard::to_stdvec(&reply).expect("encode");
        total += bytes.len();
        messages += 1;
        to_b = !to_b;
    }
    Stats {
        millis: start.elapsed().as_secs_f64() * 1000.0,
        messages,
        bytes: total,
    }
}

/// Runs the workload `reps` times per implementation: Sheaf on redb with its default and with
/// iroh-docs' split policy (and any in `SHEAF_BENCH_POLICIES`), Sheaf on its memory store,
/// negentropy over the same sets ([`crate::neg`]), and iroh-docs unless `with_iroh` is false.
pub fn run(n: usize, diff: usize, reps: usize, with_iroh: bool) -> Vec<Row> {
    run_with(n, diff, reps, with_iroh, true)
}

/// W8: only Sheaf on redb with its default policy, and iroh-docs.
pub fn run_compared(n: usize, diff: usize, reps: usize) -> Vec<Row> {
    run_with(n, diff, reps, true, false)
}

fn run_with(n: usize, diff: usize, reps: usize, with_iroh: bool, variants: bool) -> Vec<Row> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut rows = Vec::new();
    for rep in 0..reps {
        let data = data(n, diff, rep as u64);
        let row = |implementation, s: Stats, calls, entries| Row {
            implementation,
            workload: "reconcile",
            n,
            diff,
            rep,
            millis: s.millis,
            messages: s.messages,
            round_trips: s.messages.div_ceil(2),
            bytes: s.bytes,
            store_calls: calls,
            entries_read: entries,
        };
        let mut configs = vec![("sheaf-redb", SyncConfig::default())];
        if variants {
            configs.push(("sheaf-redb-iroh-policy", SyncConfig::IROH_DOCS));
        }
        if let (true, Ok(spec)) = (variants, std::env::var("SHEAF_BENCH_POLICIES")) {
            // e.g. "4x1,8x1,16x2": split factor x leaf size, for choosing the defaults.
            for p in spec.split(',') {
                let (k, m) = p.split_once('x').expect("KxM");
                let name: &'static str = Box::leak(format!("sheaf-redb-{p}").into_boxed_str());
                let sync = SyncConfig {
                    split_factor: k.parse().expect("K"),
                    max_set_size: m.parse().expect("M"),
                    ..SyncConfig::default()
                };
                configs.push((name, sync));
            }
        }
        for (name, sync) in configs {
            let mut a = sheaf_side(RedbBackend::memory().expect("redb"), &data, &data.a, sync);
            let mut b = sheaf_side(RedbBackend::memory().expect("redb"), &data, &data.b, sync);
            let s = sheaf_run(&mut a, &mut b, &data);
            let (calls, entries) = (
                a.indexed_mut().backend().observer.calls + b.indexed_mut().backend().observer.calls,
                a.indexed_mut().backend().observer.entries
                    + b.indexed_mut().backend().observer.entries,
            );
            rows.push(row(name, s, Some(calls), Some(entries)));
        }
        if variants {
            let mut a = sheaf_side(MemBackend::new(), &data, &data.a, SyncConfig::default());
            let mut b = sheaf_side(MemBackend::new(), &data, &data.b, SyncConfig::default());
            let s = sheaf_run(&mut a, &mut b, &data);
            let (calls, entries) = (
                a.indexed_mut().backend().observer.calls + b.indexed_mut().backend().observer.calls,
                a.indexed_mut().backend().observer.entries
                    + b.indexed_mut().backend().observer.entries,
            );
            rows.push(row("sheaf-mem", s, Some(calls), Some(entries)));
        }
        {
            let sync = SyncConfig::default();
            let mut a = sheaf_side(RedbBackend::memory().expect("redb"), &data, &data.a, sync);
            let mut b = sheaf_side(RedbBackend::memory().expect("redb"), &data, &data.b, sync);
            let s = v2_run(&mut a, &mut b, &data);
            let ns = data.secret.id();
            // The union: `n` on a, of which `n - diff / 2` also on b, plus b's own.
            let want = n - diff / 2 + diff;
            assert_eq!(
                a.indexed_mut().namespace_len(ns).expect("len"),
                want,
                "v2: a"
            );
            assert_eq!(
                b.indexed_mut().namespace_len(ns).expect("len"),
                want,
                "v2: b"
            );
            let (calls, entries) = (
                a.indexed_mut().backend().observer.calls + b.indexed_mut().backend().observer.calls,
                a.indexed_mut().backend().observer.entries
                    + b.indexed_mut().backend().observer.entries,
            );
            rows.push(row("sheaf-v2-redb", s, Some(calls), Some(entries)));
        }
        if variants {
            let s = crate::neg::run(&data.a, &data.b);
            assert_eq!(s.moved, diff, "negentropy found another difference");
            rows.push(Row {
                implementation: "negentropy",
                workload: "reconcile",
                n,
                diff,
                rep,
                millis: s.millis,
                messages: s.messages,
                round_trips: s.flights.div_ceil(2),
                bytes: s.bytes,
                store_calls: None,
                entries_read: None,
            });
        }
        if with_iroh {
            let mut a = iroh_side(&rt, &data, &data.a);
            let mut b = iroh_side(&rt, &data, &data.b);
            rows.push(row("iroh-docs", iroh_run(&rt, &mut a, &mut b), None, None));
        }
    }
    rows
}
