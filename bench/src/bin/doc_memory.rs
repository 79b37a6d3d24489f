//! `doc_memory`: where the memory of an idle live document goes, in heap bytes.
//!
//! The `IDLE` workload of `sheaf-bench` reports the growth of the process's resident memory,
//! which mixes the allocator's retention with what is really held. This binary counts instead:
//! its own global allocator (`stats_alloc`, since the workspace forbids `unsafe`) wraps the
//! system allocator with relaxed atomic counters of bytes and allocations, so the live heap
//! is known at any moment. It is a separate binary so that `sheaf-bench`'s timings are not
//! taxed by the counting.
//!
//! Two parts, each best run in its own process (`--part sheaf`, `--part gossip`):
//!
//! * `sheaf`: two Sheaf nodes on loopback (in-memory store, as in `IDLE`) and `--docs`
//!   documents; the live heap after each stage: (a) node A created every document with one
//!   entry and node B imported it (downloading no content), no handle left open, nothing
//!   live; (b) both called `start_sync` without peers (Live state and gossip topic, no
//!   neighbour), then a settle period; (s) B subscribed
//!   to every document (only to wait on its events); (c) B called `start_sync` with A and
//!   every document had its first `SyncFinished` and `NeighborUp` on B, then a settle period;
//!   (d) both left every document, then a settle period.
//! * `gossip`: bare iroh-gossip, no Sheaf: two `Gossip` instances; (g1) one subscribes `--docs`
//!   topics without peers; (g2) the other subscribes them with the first as bootstrap and
//!   every topic is joined; (g3) every subscription dropped, then a settle period.
//!
//! With the `dhat` feature (`cargo run -p sheaf-bench --features dhat --bin doc_memory -- --profile-at c`)
//! the counting allocator is dhat's instead, and at the end of the stage named by
//! `--profile-at` the binary writes `dhat-heap.json` and exits: every allocation site with the bytes it
//! still holds at that moment ("eb"), which is how the per-document bytes are attributed.
//!
//! Per stage it prints the live heap, its change from the previous stage and from the start
//! per document, the change in live allocations per document, and the RSS of the process.
//! Waits are on events (each with one overall deadline); the fixed settle periods only let
//! background work (sessions closing, gossip housekeeping) pass before a reading.

use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Parser;
use futures_lite::StreamExt;
use iroh::{
    address_lookup::memory::MemoryLookup,
    endpoint::{presets, QuicTransportConfig, VarInt},
    protocol::Router,
    Endpoint,
};
use iroh_gossip::{net::Gossip, proto::TopicId};
use sheaf_bench::w_many::rss_mb;
use tokio::time::Instant;

#[cfg(not(feature = "dhat"))]
#[global_allocator]
static GLOBAL: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;
#[cfg(feature = "dhat")]
#[global_allocator]
static GLOBAL: dhat::Alloc = dhat::Alloc;

/// Measures the heap of idle live documents (see the module docs).
#[derive(Parser, Debug)]
struct Args {
    /// Documents (or gossip topics).
    #[arg(long, default_value_t = 1000)]
    docs: usize,
    /// `sheaf` or `gossip`.
    #[arg(long, default_value = "sheaf")]
    part: String,
    /// Incoming unidirectional QUIC streams a connection may hold open; 0 keeps iroh's default
    /// (100). iroh-gossip opens one such stream per topic and peer, so with the default two
    /// nodes get gossip neighbours on about 100 shared topics only.
    #[arg(long, default_value_t = 0)]
    uni_streams: u32,
    /// Seconds all waits for events (joins, syncs, neighbours) may take together.
    #[arg(long, default_value_t = 300)]
    wait: u64,
    /// Seconds to let background work pass before the readings of (b), (c), (d), (g2) and (g3).
    #[arg(long, default_value_t = 5)]
    settle: u64,
    /// With the `dhat` feature: the stage (`a`, `b`, `s`, `c`, `d`) at whose end the heap
    /// profile is written.
    #[arg(long)]
    profile_at: Option<String>,
}

/// One reading of the counters.
struct Snapshot {
    bytes: i64,
    allocs: i64,
}

#[cfg(feature = "dhat")]
fn snapshot() -> Snapshot {
    let s = dhat::HeapStats::get();
    Snapshot {
        bytes: s.curr_bytes as i64,
        allocs: s.curr_blocks as i64,
    }
}

#[cfg(not(feature = "dhat"))]
fn snapshot() -> Snapshot {
    let s = GLOBAL.stats();
    Snapshot {
        bytes: s.bytes_allocated as i64 - s.bytes_deallocated as i64 + s.bytes_reallocated as i64,
        allocs: s.allocations as i64 - s.deallocations as i64,
    }
}

/// Prints the stages as they are read.
struct Report {
    docs: usize,
    base: Snapshot,
    prev: Snapshot,
    /// The stage at whose end the heap profile is written.
    profile_at: Option<String>,
    #[cfg(feature = "dhat")]
    profiler: Option<dhat::Profiler>,
}

impl Report {
    fn new(docs: usize, profile_at: Option<String>) -> Self {
        println!(
            "{:<44} {:>12} {:>12} {:>12} {:>10} {:>8}",
            "stage", "heap bytes", "Δ bytes/doc", "Σ bytes/doc", "Δ allocs/doc", "RSS MB"
        );
        Self {
            docs,
            #[cfg(feature = "dhat")]
            profiler: Some(dhat::Profiler::new_heap()),
            base: snapshot(),
            prev: snapshot(),
            profile_at,
        }
    }

    fn stage(&mut self, name: &str) {
        let now = snapshot();
        let n = self.docs as f64;
        println!(
            "{:<44} {:>12} {:>12.0} {:>12.0} {:>10.1} {:>8.1}",
            name,
            now.bytes,
            (now.bytes - self.prev.bytes) as f64 / n,
            (now.bytes - self.base.bytes) as f64 / n,
            (now.allocs - self.prev.allocs) as f64 / n,
            rss_mb()
        );
        self.prev = now;
        let stage = name.split_whitespace().next();
        if stage.is_some() && stage == self.profile_at.as_deref() {
            #[cfg(feature = "dhat")]
            {
                drop(self.profiler.take());
                std::process::exit(0);
            }
            #[cfg(not(feature = "dhat"))]
            println!("--profile-at needs the dhat feature; no profile written");
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    println!(
        "doc_memory: part={} docs={} settle={}s uni_streams={}",
        args.part, args.docs, args.settle, args.uni_streams
    );
    match args.part.as_str() {
        "sheaf" => sheaf_part(&args).await,
        "gossip" => gossip_part(&args).await,
        other => anyhow::bail!("unknown part {other}: sheaf or gossip"),
    }
}

/// An endpoint as [`sheaf_bench::nodes::endpoint`] binds it, with `hooks` and, unless `uni_streams` is 0,
/// that many incoming unidirectional streams per connection.
async fn endpoint(uni_streams: u32, gate: Option<&sheaf_tokio::GossipGate>) -> Result<Endpoint> {
    let mut builder = Endpoint::builder(presets::Minimal)
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")?;
    if let Some(gate) = gate {
        builder = builder.hooks(gate.hooks());
    }
    if uni_streams > 0 {
        let config = QuicTransportConfig::builder()
            .max_concurrent_uni_streams(VarInt::from_u32(uni_streams))
            .build();
        builder = builder.transport_config(config);
    }
    Ok(builder.bind().await?)
}

/// A Sheaf node as `sheaf-bench`'s `IDLE` spawns it (in-memory store), with the `Docs` handle.
async fn sheaf_node(
    uni_streams: u32,
) -> Result<(sheaf_tokio::Docs, Router, iroh_blobs::api::Store)> {
    let gate = sheaf_tokio::GossipGate::new();
    let endpoint = endpoint(uni_streams, Some(&gate)).await?;
    let gossip = sheaf_tokio::gossip_builder().spawn(endpoint.clone());
    let blobs = (*iroh_blobs::store::mem::MemStore::new()).clone();
    let docs = sheaf_tokio::Docs::memory()
        .gossip_gate(gate)
        .spawn(endpoint, blobs.clone(), gossip.clone())
        .await?;
    let router = docs.router(gossip);
    Ok((docs, router, blobs))
}

async fn sheaf_part(args: &Args) -> Result<()> {
    let (a, router_a, blobs_a) = sheaf_node(args.uni_streams).await?;
    let (b, router_b, blobs_b) = sheaf_node(args.uni_streams).await?;
    let mut report = Report::new(args.docs, args.profile_at.clone());
    report.stage("0 two nodes spawned");

    let author = a.author_default();
    let mut ids = Vec::with_capacity(args.docs);
    for i in 0..args.docs {
        let doc = a.create().await?;
        doc.set_bytes(author, Bytes::from(format!("k{i}")), Bytes::from("v"))
            .await?;
        let ticket = doc
            .share(
                sheaf_tokio::ShareMode::Write,
                sheaf_tokio::AddrInfoOptions::Id,
            )
            .await?;
        doc.close().await?;
        let doc = b.import_namespace(ticket.capability).await?;
        // Content is not what is measured: B keeps entries, not blobs.
        doc.set_download_policy(sheaf_tokio::DownloadPolicy::NothingExcept(vec![]))
            .await?;
        doc.close().await?;
        ids.push(doc.id());
    }
    report.stage("a created (A: 1 entry) and imported (B)");

    for id in &ids {
        for node in [&a, &b] {
            let doc = node.open(*id).await?;
            doc.start_sync(vec![]).await?;
            doc.close().await?;
        }
    }
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    report.stage("b start_sync on both, no peers (+settle)");

    let mut waits = Vec::with_capacity(ids.len());
    for id in &ids {
        let doc = b.open(*id).await?;
        waits.push(doc.subscribe().await?);
        doc.close().await?;
    }
    report.stage("s B subscribed to every document");

    let addr_a = router_a.endpoint().addr();
    for id in &ids {
        let doc = b.open(*id).await?;
        doc.start_sync(vec![addr_a.clone()]).await?;
        doc.close().await?;
    }
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    for (i, events) in waits.iter_mut().enumerate() {
        let (mut synced, mut neighbour) = (false, false);
        while !(synced && neighbour) {
            match tokio::time::timeout_at(deadline, events.next()).await {
                Ok(Some(sheaf_tokio::LiveEvent::SyncFinished(_))) => synced = true,
                Ok(Some(sheaf_tokio::LiveEvent::NeighborUp(_))) => neighbour = true,
                Ok(Some(_)) => {}
                Ok(None) => anyhow::bail!("document {i}: event stream ended"),
                Err(_) => anyhow::bail!("document {i}: no sync and neighbour in time"),
            }
        }
    }
    drop(waits);
    report.stage("c' B joined all with A (sync + neighbour)");
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    report.stage("c  ... after the settle period");

    for id in &ids {
        for node in [&a, &b] {
            let doc = node.open(*id).await?;
            doc.leave().await?;
            doc.close().await?;
        }
    }
    report.stage("d' left every document on both");
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    report.stage("d  ... after the settle period");

    for (docs, router, blobs) in [(a, router_a, blobs_a), (b, router_b, blobs_b)] {
        let _ = router.shutdown().await;
        let _ = docs.shutdown().await;
        let _ = blobs.shutdown().await;
    }
    Ok(())
}

/// A bare gossip node: endpoint, address look-up, `Gossip` behind a router.
async fn gossip_node(uni_streams: u32) -> Result<(Gossip, Router, MemoryLookup)> {
    let endpoint = endpoint(uni_streams, None).await?;
    let lookup = MemoryLookup::new();
    endpoint
        .address_lookup()
        .context("address lookup")?
        .add(lookup.clone());
    let gossip = Gossip::builder().spawn(endpoint.clone());
    let router = Router::builder(endpoint)
        .accept(iroh_gossip::ALPN, gossip.clone())
        .spawn();
    Ok((gossip, router, lookup))
}

async fn gossip_part(args: &Args) -> Result<()> {
    let (g1, r1, _l1) = gossip_node(args.uni_streams).await?;
    let (g2, r2, l2) = gossip_node(args.uni_streams).await?;
    l2.add_endpoint_info(r1.endpoint().addr());
    let id1 = r1.endpoint().id();
    let mut report = Report::new(args.docs, args.profile_at.clone());
    report.stage("g0 two gossip nodes spawned");

    let topic = |i: usize| {
        let mut t = [0u8; 32];
        t[..8].copy_from_slice(&(i as u64).to_le_bytes());
        TopicId::from_bytes(t)
    };
    let mut subs1 = Vec::with_capacity(args.docs);
    for i in 0..args.docs {
        subs1.push(g1.subscribe(topic(i), vec![]).await?);
    }
    report.stage("g1 node 1 subscribed, no peers");

    // One topic after the other: joining all at once stalls both gossip actors here (each
    // waits on a full send queue to the other, upstream iroh-gossip issue #47).
    let mut subs2 = Vec::with_capacity(args.docs);
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    for i in 0..args.docs {
        let mut sub = g2.subscribe(topic(i), vec![id1]).await?;
        tokio::time::timeout_at(deadline, sub.joined())
            .await
            .with_context(|| format!("topic {i} not joined in time"))??;
        subs2.push(sub);
    }
    report.stage("g2' node 2 subscribed with node 1, joined");
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    report.stage("g2  ... after the settle period");

    drop(subs1);
    drop(subs2);
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    report.stage("g3 all dropped, after the settle period");

    let _ = r1.shutdown().await;
    let _ = r2.shutdown().await;
    Ok(())
}
