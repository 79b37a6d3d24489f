//! **W10** diff sync over a slow link: W4 through the [link emulator](crate::link).
//!
//! Two nodes open copies of the same `n`-entry document, node A on IPv6 and node B on IPv4
//! loopback, with a [`Link`] of round-trip time `rtt` and loss `loss` between them (B dials A
//! at the link's address). They sync once (`first_ms`, a no-op sync on freshly opened
//! documents; whichever node reports a `SyncFinished` first), leave the swarm, each writes `new` entries, and B calls `start_sync` again:
//!
//! Sheaf nodes use the split policy of `SHEAF_BENCH_SPLIT=KxM` if set (records get a `split`
//! parameter).
//!
//! **W10v2** (Sheaf only) runs the same cells with sync v2 for the diff sync: both nodes take
//! the document up without a peer and B calls `sync_all` with A once. `sync_ms` is that round
//! (dial, phase 1, the document), `differing` the documents it reconciled; there is no
//! `SyncFinished`, so no `round_trips` (`flights / 2` estimates them).
//!
//! - `ms`: until both nodes received the other's `new` entries;
//! - `sync_ms`: until the first successful `SyncFinished` of either node (the diff sync
//!   itself; either node may have dialed it: B's `start_sync`, or A on meeting B in the
//!   gossip swarm, in which case B's dial is refused; failed syncs are counted in
//!   `syncs_failed`); Sheaf also reports that sync's own phases, `sync_connect_ms` (dial
//!   to open stream) and `sync_process_ms` (open stream to end);
//! - `round_trips` (Sheaf only): message exchanges of that sync, from its `SyncFinished`
//!   (`SyncDetails::round_trips`, the same on both ends);
//! - `link_bytes`, `link_packets`, `link_lost`: what crossed the link both ways from
//!   `start_sync` until `sync_ms` (or `ms`, whichever is later): QUIC packets of the sync,
//!   its handshake if a new connection was needed, and the gossip rejoin;
//! - `flights`: bursts of packets of at least 200 bytes (acks and keep-alives excluded)
//!   separated by a third of the round trip, summed over both directions
//!   ([`crate::link::DirStats::bursts`]). A message exchange on a slow link shows as two
//!   flights, so `flights / 2` estimates the round trips of either implementation (iroh-docs
//!   does not report its own); the handshake, gossip and a second sync add to it. Next to
//!   Sheaf's exact `round_trips` it shows how far the estimate is off.

use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use tokio::{sync::mpsc, time::Instant};

use crate::{
    data::Stores,
    link::{Link, LinkConfig},
    nodes::{addr_at, forward, Ev, Family, Impl, Node},
    report::Record,
    w_sync::{base, bounded, deadline_for, link_params, ms, IDLE},
    Out,
};

/// How long after both nodes hold everything the dialer's `SyncFinished` is waited for.
const FINISH_GRACE: Duration = Duration::from_secs(10);

/// The W10 matrix: entries, new entries per side, round-trip times, losses.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// Entries in the shared document.
    pub n: usize,
    /// New entries written on each side before the diff sync.
    pub news: Vec<usize>,
    /// Round-trip times of the link, in ms.
    pub rtts_ms: Vec<u64>,
    /// Loss probabilities per direction.
    pub losses: Vec<f64>,
}

/// Runs the matrix, `reps` repetitions of each cell for each implementation.
pub async fn w10(out: &mut Out, m: &Matrix, reps: usize, stores: &Stores) -> Result<()> {
    let (data, name) = base(stores, m.n).await?;
    let id = data.id();
    drop(data);
    for &rtt in &m.rtts_ms {
        for &loss in &m.losses {
            for &new in &m.news {
                for rep in 0..reps {
                    let seed = (rep as u64) << 40 | rtt << 20 | new as u64;
                    let config = LinkConfig::symmetric(Duration::from_millis(rtt), loss, seed);
                    let mut runs: Vec<(Impl, bool)> =
                        Impl::selected().into_iter().map(|i| (i, false)).collect();
                    if runs.iter().any(|(i, _)| *i == Impl::Sheaf) {
                        runs.push((Impl::Sheaf, true));
                    }
                    for (imp, v2) in runs {
                        let rec = once(imp, id, m.n, new, &name, stores, rep, config, v2).await?;
                        out.push(rec);
                    }
                }
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn once(
    imp: Impl,
    id: [u8; 32],
    n: usize,
    new: usize,
    name: &str,
    stores: &Stores,
    rep: usize,
    config: LinkConfig,
    v2: bool,
) -> Result<Record> {
    let workload = if v2 { "W10v2" } else { "W10" };
    let rec = Record::new(imp.name(), workload, rep)
        .param("n", n)
        .param("new_per_side", new);
    let mut rec = link_params(rec, &config);
    if let (Impl::Sheaf, Some((spec, _))) = (imp, crate::nodes::split_policy()) {
        rec = rec.param("split", spec);
    }
    if let (true, Some(max)) = (v2, crate::nodes::v2_riblt_max()) {
        rec = rec.param("riblt_max", max);
    }
    let (a_dir, b_dir) = (
        stores.node_dir(imp, Some(name), "a")?,
        stores.node_dir(imp, Some(name), "b")?,
    );
    let a = Node::spawn_on(imp, Some(&a_dir), Family::V6).await?;
    let b = Node::spawn_on(imp, Some(&b_dir), Family::V4).await?;
    let link = Link::start(a.bound()?, b.bound()?, config).await?;
    let result = bounded(
        "W10",
        imp,
        n,
        run(&a, &b, &link, id, n, new, rep, &mut rec, v2),
    )
    .await;
    rec.status = match result {
        Some(Ok(status)) => status,
        Some(Err(e)) => {
            crate::progress(&format!("W10 {}: {e:#}", imp.name()));
            "error"
        }
        None => "timeout",
    };
    drop(link);
    a.shutdown().await;
    b.shutdown().await;
    stores.remove(&a_dir);
    stores.remove(&b_dir);
    Ok(rec)
}

#[allow(clippy::too_many_arguments)]
async fn run(
    a: &Node,
    b: &Node,
    link: &Link,
    id: [u8; 32],
    n: usize,
    new: usize,
    rep: usize,
    rec: &mut Record,
    v2: bool,
) -> Result<&'static str> {
    let a_addr = addr_at(a.endpoint().id(), link.addr_for_b());
    let (da, db) = (a.open_doc(id).await?, b.open_doc(id).await?);
    let deadline = Instant::now() + deadline_for(n);
    // First sync, on freshly opened documents.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let tasks = [
        forward(da.subscribe().await?, 0, tx.clone()),
        forward(db.subscribe().await?, 1, tx),
    ];
    da.start_sync(vec![]).await?;
    let t0 = Instant::now();
    db.start_sync(vec![a_addr.clone()]).await?;
    loop {
        let wait = deadline.min(Instant::now() + IDLE);
        match tokio::time::timeout_at(wait, rx.recv()).await {
            Ok(Some((_, Ev::SyncFinished { .. }, at))) => {
                rec.set("first_ms", ms(at - t0));
                break;
            }
            Ok(Some(_)) => {}
            _ => return Ok("timeout"),
        }
    }
    tasks.iter().for_each(|t| t.abort());
    // Apart, each writes `new` entries; then they sync.
    da.leave().await?;
    db.leave().await?;
    for i in 0..new {
        let v = Bytes::from(format!("{rep}/{i}"));
        da.set(Bytes::from(format!("new/a/{i:08}")), v.clone())
            .await?;
        db.set(Bytes::from(format!("new/b/{i:08}")), v).await?;
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let tasks = [
        forward(da.subscribe().await?, 0, tx.clone()),
        forward(db.subscribe().await?, 1, tx),
    ];
    da.start_sync(vec![]).await?;
    if v2 {
        db.start_sync(vec![]).await?;
    }
    let before = link.stats();
    let t1 = Instant::now();
    let (mut all_at, mut synced_at) = (None, None);
    if v2 {
        let report = b.sync_all(&a_addr).await?.context("sync v2 needs Sheaf")?;
        synced_at = Some(t1 + report.duration);
        rec.set("sync_ms", ms(report.duration));
        rec.set("differing", report.differing as f64);
    } else {
        db.start_sync(vec![a_addr]).await?;
    }
    let mut got = [0usize; 2];
    let (mut lagged, mut failed) = (0usize, 0usize);
    let mut v1_syncs = 0usize;
    let mut status = "timeout";
    loop {
        let limit = match all_at {
            Some(at) => deadline.min(at + FINISH_GRACE),
            None => deadline.min(Instant::now() + IDLE),
        };
        let Ok(Some((idx, ev, at))) = tokio::time::timeout_at(limit, rx.recv()).await else {
            break;
        };
        match ev {
            Ev::InsertRemote { .. } => got[idx] += 1,
            Ev::Lagged(m) => lagged += m as usize,
            // A v1 sync the live engine ran beside the v2 round.
            Ev::SyncFinished { .. } if v2 => v1_syncs += 1,
            Ev::SyncFinished { error: Some(_), .. } => failed += 1,
            Ev::SyncFinished {
                round_trips,
                phases,
                ..
            } if synced_at.is_none() => {
                synced_at = Some(at);
                rec.set("sync_ms", ms(at - t1));
                if let Some((connect, process)) = phases {
                    rec.set("sync_connect_ms", connect);
                    rec.set("sync_process_ms", process);
                }
                if let Some(r) = round_trips {
                    rec.set("round_trips", r as f64);
                }
            }
            _ => {}
        }
        if all_at.is_none()
            && got[0] + lagged >= new
            && got[1] + lagged >= new
            && (lagged == 0
                || (da.count(false).await? >= n + 2 * new && db.count(false).await? >= n + 2 * new))
        {
            all_at = Some(at);
            rec.set("ms", ms(at - t1));
            status = "ok";
        }
        if all_at.is_some() && synced_at.is_some() {
            break;
        }
    }
    let d = link.stats() - before;
    rec.set("link_bytes", d.bytes() as f64);
    rec.set(
        "link_packets",
        (d.a_to_b.packets_out + d.b_to_a.packets_out) as f64,
    );
    rec.set("link_lost", (d.a_to_b.lost + d.b_to_a.lost) as f64);
    rec.set("flights", (d.a_to_b.bursts + d.b_to_a.bursts) as f64);
    tasks.iter().for_each(|t| t.abort());
    rec.set("syncs_failed", failed as f64);
    if v2 {
        rec.set("v1_syncs", v1_syncs as f64);
    }
    rec.set("received_a", got[0] as f64);
    rec.set("received_b", got[1] as f64);
    if lagged > 0 {
        rec.set("lagged_events", lagged as f64);
    }
    Ok(status)
}
