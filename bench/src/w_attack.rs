//! **W9** under attack: W5's no-op sync and W6's live latency on a node that is being
//! attacked, beside the same measurements without the attack, for both implementations.
//!
//! Two memory nodes of one implementation share an `n`-entry document written by the target
//! node and are live (gossip neighbours, one warm-up write delivered). Then, with
//! - **`none`**: no attack;
//! - **`flood`**: a rogue iroh-gossip node (same process, its own endpoint) joins the
//!   document's topic through the target and broadcasts `Put`s whose entries are well formed
//!   but whose signatures do not hold, as fast as its gossip accepts them, for the whole
//!   measurement;
//! - **`idle`**: [`IDLE_CONNECTIONS`] connections from 10 endpoints on the sync ALPN, each
//!   sending one byte of a frame header and nothing more; a connection the node closes is
//!   opened again at once (`idle_reopened_per_s`), so the node faces 500 of them throughout;
//!
//! the honest node writes `writes` entries one after the other, each timed until the target's
//! `InsertRemote` of it (`p50_ms`, `p95_ms`; a write that takes longer than
//! [`PER_WRITE`] counts as `missed`), and then dials the target `syncs` times for a no-op
//! sync, each timed until its own dialed `SyncFinished` (`sync_ms`, the median; one that
//! reported an error counts in `sync_errors` as well, one that did not finish within
//! [`PER_SYNC`] counts as `syncs_failed`). The degradation ratio is each attack's median
//! over the same implementation's `none`.
//!
//! Limits: the attacker shares the process and the machine's cores with both nodes, so the
//! flood's rate is what one rogue node on this machine reaches beside them (`flood_per_s`,
//! recorded per run); the flood is aimed at the target only, but gossip relays it to the
//! honest node as well, in both implementations.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use anyhow::{Context, Result};
use bytes::Bytes;
use iroh::{address_lookup::memory::MemoryLookup, protocol::Router, Endpoint, EndpointAddr};
use iroh_gossip::{net::Gossip, proto::TopicId};
use sheaf_core::{
    entry::{Entry, Record as EntryRecord, RecordIdentifier},
    wire::{Encode, Op},
    Author, Hash, NamespaceId, NamespaceSecret, SignedEntry,
};
use tokio::{sync::mpsc, time::Instant};

use crate::{
    nodes::{self, forward, Doc, Ev, Impl, Node, Stamped},
    report::Record,
    w_live::quantile,
    Out,
};

/// Connections held by the `idle` attack.
pub const IDLE_CONNECTIONS: usize = 500;
/// How long one write may take to reach the target.
pub const PER_WRITE: Duration = Duration::from_secs(10);
/// How long one no-op sync may take.
pub const PER_SYNC: Duration = Duration::from_secs(30);
/// How long the two nodes may take to sync and go live, and an attack to start.
pub const SETUP: Duration = Duration::from_secs(60);
/// One run as a whole, setup, attack, measurements and shutdown included.
pub const RUN: Duration = Duration::from_secs(600);

/// The attacks W9 runs, `none` first (the baseline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// No attack.
    None,
    /// Forged gossip `Put`s.
    Flood,
    /// Connections that never send `Init`.
    Idle,
}

impl Attack {
    /// All of them, baseline first.
    pub const ALL: [Attack; 3] = [Attack::None, Attack::Flood, Attack::Idle];

    /// Its name in the records.
    pub fn name(self) -> &'static str {
        match self {
            Attack::None => "none",
            Attack::Flood => "flood",
            Attack::Idle => "idle",
        }
    }
}

/// What one W9 run does: entries in the document, live writes, no-op syncs.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Entries the attacked node writes before the honest node joins.
    pub n: usize,
    /// Live writes timed.
    pub writes: usize,
    /// No-op syncs timed.
    pub syncs: usize,
}

/// W9 for both implementations and every attack.
pub async fn w9(out: &mut Out, sizes: Sizes, reps: usize) -> Result<()> {
    for rep in 0..reps {
        for imp in Impl::selected() {
            for attack in Attack::ALL {
                let mut rec = Record::new(imp.name(), "W9", rep)
                    .param("n", sizes.n)
                    .param("attack", attack.name());
                crate::progress(&format!("W9 {} {}", imp.name(), attack.name()));
                let run = once(imp, attack, sizes, &mut rec);
                rec.status = match tokio::time::timeout(RUN, run).await {
                    Ok(Ok(status)) => status,
                    Ok(Err(e)) => {
                        crate::progress(&format!("W9 {} {}: {e:#}", imp.name(), attack.name()));
                        "error"
                    }
                    Err(_) => "timeout",
                };
                out.push(rec);
            }
        }
    }
    Ok(())
}

/// A running attack; stopping it is bounded, and dropping it (a run that timed out) stops
/// its tasks too.
enum Running {
    None,
    Flood {
        router: Router,
        task: tokio::task::JoinSet<()>,
        sent: Arc<AtomicU64>,
        /// When the measurements started, and how many had been sent by then.
        since: (Instant, u64),
    },
    Idle {
        endpoints: Vec<Endpoint>,
        tasks: tokio::task::JoinSet<()>,
        opened: Arc<AtomicU64>,
        /// When the measurements started, and how many had been opened by then.
        since: (Instant, u64),
    },
}

async fn once(imp: Impl, attack: Attack, sizes: Sizes, rec: &mut Record) -> Result<&'static str> {
    let target = Node::spawn(imp, None).await?;
    let honest = Node::spawn(imp, None).await?;
    let status = measure(&target, &honest, attack, sizes, rec).await;
    target.shutdown().await;
    honest.shutdown().await;
    status
}

async fn measure(
    target: &Node,
    honest: &Node,
    attack: Attack,
    sizes: Sizes,
    rec: &mut Record,
) -> Result<&'static str> {
    let doc_t = target.create_doc().await?;
    for i in 0..sizes.n {
        doc_t
            .set(
                Bytes::from(format!("base/{i:08}")),
                Bytes::from_static(b"v"),
            )
            .await?;
    }
    doc_t.start_sync(vec![]).await?;
    let secret = doc_t.secret().await?;
    let doc_h = honest.import_secret(secret).await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Stamped>();
    let tasks = [
        forward(doc_t.subscribe().await?, 0, tx.clone()),
        forward(doc_h.subscribe().await?, 1, tx),
    ];
    let result = async {
        doc_h.start_sync(vec![target.addr()]).await?;
        if !live(&doc_h, &mut rx).await {
            return Ok("timeout");
        }
        let ns = NamespaceSecret::from_bytes(&secret).id();
        let running = start(attack, target.addr(), ns).await?;
        let status = timed(&doc_h, target, sizes.writes, sizes.syncs, &mut rx, rec).await;
        stop(running, rec).await;
        status
    }
    .await;
    for t in tasks {
        t.abort();
    }
    result
}

/// Waits until the target has the honest node as a gossip neighbour and a warm-up write from
/// the honest node arrived on the target.
async fn live(doc_h: &Doc, rx: &mut mpsc::UnboundedReceiver<Stamped>) -> bool {
    let deadline = Instant::now() + SETUP;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((0, Ev::NeighborUp, _))) => break,
            Ok(Some(_)) => {}
            _ => return false,
        }
    }
    let key = Bytes::from_static(b"warmup");
    if doc_h
        .set(key.clone(), Bytes::from_static(b"w"))
        .await
        .is_err()
    {
        return false;
    }
    arrival(rx, &key, deadline).await.is_some()
}

/// When the target received `key`, if before `deadline`.
async fn arrival(
    rx: &mut mpsc::UnboundedReceiver<Stamped>,
    key: &Bytes,
    deadline: Instant,
) -> Option<Instant> {
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((0, Ev::InsertRemote { key: k }, at))) if k == key => return Some(at),
            Ok(Some(_)) => {}
            _ => return None,
        }
    }
}

/// The live writes, then the no-op syncs.
async fn timed(
    doc_h: &Doc,
    target: &Node,
    writes: usize,
    syncs: usize,
    rx: &mut mpsc::UnboundedReceiver<Stamped>,
    rec: &mut Record,
) -> Result<&'static str> {
    let mut latencies = Vec::with_capacity(writes);
    let mut missed = 0usize;
    for w in 0..writes {
        let key = Bytes::from(format!("live/{w:06}"));
        let t0 = Instant::now();
        doc_h
            .set(key.clone(), Bytes::from(vec![w as u8; 32]))
            .await?;
        match arrival(rx, &key, t0 + PER_WRITE).await {
            Some(at) => latencies.push((at - t0).as_secs_f64() * 1000.0),
            None => missed += 1,
        }
    }
    latencies.sort_by(f64::total_cmp);
    if let Some(p50) = quantile(&latencies, 0.5) {
        rec.set("p50_ms", p50);
    }
    if let Some(p95) = quantile(&latencies, 0.95) {
        rec.set("p95_ms", p95);
    }
    rec.set("missed", missed as f64);

    let mut times = Vec::with_capacity(syncs);
    let (mut failed, mut errors) = (0usize, 0usize);
    for _ in 0..syncs {
        let t0 = Instant::now();
        doc_h.start_sync(vec![target.addr()]).await?;
        match dialed_sync(rx, t0 + PER_SYNC).await {
            Some((at, error)) => {
                times.push((at - t0).as_secs_f64() * 1000.0);
                errors += usize::from(error);
            }
            None => failed += 1,
        }
    }
    rec.set("sync_errors", errors as f64);
    if let Some(ms) = crate::report::median(&times) {
        rec.set("sync_ms", ms);
    }
    rec.set("syncs_failed", failed as f64);
    Ok(if missed == 0 && failed == 0 {
        "ok"
    } else {
        "timeout"
    })
}

/// When the honest node's next dialed sync finished, and whether it reported an error;
/// `None` if the deadline passed first.
///
/// iroh-docs 0.101 reports most no-op syncs it dialed as failed ("Failed to close
/// connection") after it exchanged everything: such a sync counts in `sync_ms` and in
/// `sync_errors`.
async fn dialed_sync(
    rx: &mut mpsc::UnboundedReceiver<Stamped>,
    deadline: Instant,
) -> Option<(Instant, bool)> {
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((
                1,
                Ev::SyncFinished {
                    dialed: true,
                    error,
                    ..
                },
                at,
            ))) => {
                if let Some(e) = &error {
                    crate::progress(&format!("W9: a no-op sync reported: {e}"));
                }
                return Some((at, error.is_some()));
            }
            Ok(Some(_)) => {}
            _ => return None,
        }
    }
}

async fn start(attack: Attack, target: EndpointAddr, ns: NamespaceId) -> Result<Running> {
    match attack {
        Attack::None => Ok(Running::None),
        Attack::Flood => flood(target, ns).await,
        Attack::Idle => idle(target).await,
    }
}

async fn flood(target: EndpointAddr, ns: NamespaceId) -> Result<Running> {
    let endpoint = nodes::endpoint().await?;
    let lookup = MemoryLookup::new();
    let target_id = target.id;
    lookup.add_endpoint_info(target);
    endpoint.address_lookup()?.add(lookup);
    let gossip = Gossip::builder().spawn(endpoint.clone());
    let router = Router::builder(endpoint)
        .accept(iroh_gossip::ALPN, gossip.clone())
        .spawn();
    let topic = TopicId::from_bytes(ns.to_bytes());
    let (sender, receiver) =
        tokio::time::timeout(SETUP, gossip.subscribe_and_join(topic, vec![target_id]))
            .await
            .context("the rogue did not join the topic")??
            .split();
    let sent = Arc::new(AtomicU64::new(0));
    let count = sent.clone();
    let mut task = tokio::task::JoinSet::new();
    task.spawn(async move {
        let _receiver = receiver;
        let forge = Forger::new(ns);
        for i in 0u64.. {
            if sender.broadcast(forge.put(i)).await.is_err() {
                break;
            }
            count.fetch_add(1, Ordering::Relaxed);
        }
    });
    // The flood is under way before the measurements start.
    Ok(Running::Flood {
        router,
        task,
        since: under_way(&sent, 1_000).await,
        sent,
    })
}

/// Gossip `Put`s whose signatures do not hold: every entry carries one signature made for
/// another entry.
struct Forger {
    ns: NamespaceId,
    author: Author,
    signature: SignedEntry,
}

impl Forger {
    fn new(ns: NamespaceId) -> Self {
        let secret = NamespaceSecret::from_bytes(&[9; 32]);
        let author = Author::from_bytes(&[8; 32]);
        let signature = SignedEntry::new(
            &secret,
            &author,
            b"t",
            EntryRecord::new(Hash::new(b"t"), 1, 1),
        );
        Forger {
            ns,
            author,
            signature,
        }
    }

    fn put(&self, i: u64) -> Bytes {
        let key = format!("forged/{i}");
        let record = EntryRecord::new(Hash::new(key.as_bytes()), 1, 1_700_000_000_000_000);
        let entry = Entry::new(
            RecordIdentifier::new(self.ns, self.author.id(), key),
            record,
        );
        let op = Op::Put(SignedEntry::from_parts(*self.signature.signature(), entry));
        Bytes::from(op.to_wire())
    }
}

/// Holds [`IDLE_CONNECTIONS`] connections from 10 endpoints: each opens a stream, sends one
/// byte and waits; when the node closes one, it is opened again.
async fn idle(target: EndpointAddr) -> Result<Running> {
    const ENDPOINTS: usize = 10;
    let opened = Arc::new(AtomicU64::new(0));
    let mut endpoints = Vec::with_capacity(ENDPOINTS);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..ENDPOINTS {
        let endpoint = nodes::endpoint().await?;
        for _ in 0..IDLE_CONNECTIONS / ENDPOINTS {
            let (endpoint, target, opened) = (endpoint.clone(), target.clone(), opened.clone());
            tasks.spawn(async move {
                loop {
                    let open = async {
                        let conn = endpoint.connect(target.clone(), sheaf::ALPN).await?;
                        let (mut send, recv) = conn.open_bi().await?;
                        send.write_all(&[0]).await?;
                        anyhow::Ok((conn, send, recv))
                    };
                    match tokio::time::timeout(Duration::from_secs(10), open).await {
                        Ok(Ok((conn, _send, _recv))) => {
                            opened.fetch_add(1, Ordering::Relaxed);
                            conn.closed().await;
                        }
                        // Not a busy loop when the node refuses at once.
                        _ => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            });
        }
        endpoints.push(endpoint);
    }
    Ok(Running::Idle {
        endpoints,
        tasks,
        since: under_way(&opened, IDLE_CONNECTIONS as u64).await,
        opened,
    })
}

/// Polls `count` (an attacker's progress) until it reaches `target` or [`SETUP`] passed;
/// returns when that was and the count then. (Polling: the attack's tasks only count.)
async fn under_way(count: &AtomicU64, target: u64) -> (Instant, u64) {
    let deadline = Instant::now() + SETUP;
    while count.load(Ordering::Relaxed) < target && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (Instant::now(), count.load(Ordering::Relaxed))
}

async fn stop(running: Running, rec: &mut Record) {
    match running {
        Running::None => {}
        Running::Flood {
            router,
            mut task,
            sent,
            since,
        } => {
            task.abort_all();
            let sent = sent.load(Ordering::Relaxed);
            rec.set("flood_sent", sent as f64);
            let during = sent.saturating_sub(since.1) as f64;
            rec.set("flood_per_s", during / since.0.elapsed().as_secs_f64());
            let _ = tokio::time::timeout(Duration::from_secs(10), router.shutdown()).await;
        }
        Running::Idle {
            endpoints,
            mut tasks,
            opened,
            since,
        } => {
            tasks.abort_all();
            let during = opened.load(Ordering::Relaxed).saturating_sub(since.1) as f64;
            rec.set(
                "idle_reopened_per_s",
                during / since.0.elapsed().as_secs_f64(),
            );
            while tasks.join_next().await.is_some() {}
            for e in endpoints {
                let _ = tokio::time::timeout(Duration::from_secs(10), e.close()).await;
            }
        }
    }
}
