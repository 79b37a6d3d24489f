//! W11: many documents per node. Two persistent nodes share `docs` documents; one stops, the
//! other changes `changed` of them, the first restarts and resumes every document with its
//! peer. Measured from the restart until every change arrived: wall time, UDP bytes of the
//! restarted node, CPU time of the whole process (both nodes). Then, for Sheaf, with the
//! anti-entropy `sheaf serve` runs (every 30 s): the process's CPU over an idle minute and its
//! resident memory.
//!
//! Every document is resumed with `start_sync` and the peer's address, one call after the
//! other (each returns once the node has taken the document up). `W11v2` (Sheaf only) resumes
//! every document without a peer and then calls `sync_all` with the peer once: sync v2, every
//! shared document over one connection.

use std::{path::Path, time::Duration};

use anyhow::{Context, Result};
use bytes::Bytes;
use futures_lite::StreamExt;
use tokio::time::Instant;

use crate::{
    nodes::{Impl, Node},
    progress,
    report::Record,
    Out,
};

/// How long a phase may take before the run is given up.
const PHASE_LIMIT: Duration = Duration::from_secs(600);

/// CPU time (user + system) of this process so far, in seconds (Linux).
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name (which ends with ')'): utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // The clock tick is 100 Hz on Linux.
    match (ticks(11), ticks(12)) {
        (Some(u), Some(s)) => (u + s) / 100.0,
        _ => f64::NAN,
    }
}

/// Resident memory of this process in MB (Linux).
pub fn rss_mb() -> f64 {
    proc_status_mb("VmRSS:")
}

/// Peak resident memory of this process in MB (Linux).
pub fn peak_rss_mb() -> f64 {
    proc_status_mb("VmHWM:")
}

/// A `kB` field of `/proc/self/status` in MB.
fn proc_status_mb(field: &str) -> f64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return f64::NAN;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn id_of(secret: &[u8; 32]) -> [u8; 32] {
    sheaf_tokio::NamespaceSecret::from_bytes(secret)
        .id()
        .to_bytes()
}

/// Opens (or imports) every document on `node` and starts syncing it with `peer` (with no
/// peer: only takes it up for sync). Each call returns once the node has taken the document
/// up, not when its sync finished.
async fn resume(
    node: &Node,
    secrets: &[[u8; 32]],
    peer: Option<&iroh::EndpointAddr>,
) -> Result<()> {
    for s in secrets {
        let doc = match node.open_doc(id_of(s)).await {
            Ok(doc) => doc,
            Err(_) => node.import_secret(*s).await?,
        };
        doc.start_sync(peer.into_iter().cloned().collect()).await?;
    }
    Ok(())
}

/// Waits until every document in `secrets` holds at least `entries` entries on `node`.
async fn until_synced(node: &Node, secrets: &[[u8; 32]], entries: usize) -> Result<()> {
    let deadline = Instant::now() + PHASE_LIMIT;
    for s in secrets {
        let doc = node.open_doc(id_of(s)).await?;
        while doc.count(false).await? < entries {
            anyhow::ensure!(Instant::now() < deadline, "documents did not sync in time");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// One repetition of W11 for `imp` (`v2`: resume by one `sync_all`, Sheaf only).
async fn once(
    imp: Impl,
    docs: usize,
    changed: usize,
    rep: usize,
    dir: &Path,
    v2: bool,
) -> Result<Record> {
    let (dir_a, dir_b) = (dir.join("a"), dir.join("b"));
    std::fs::create_dir_all(&dir_a)?;
    std::fs::create_dir_all(&dir_b)?;
    let a = Node::spawn(imp, Some(&dir_a)).await?;
    let mut secrets = Vec::with_capacity(docs);
    for i in 0..docs {
        let doc = a.create_doc().await?;
        doc.set(Bytes::from(format!("k{i}")), Bytes::from("v"))
            .await?;
        doc.start_sync(vec![]).await?;
        secrets.push(doc.secret().await?);
    }
    let b = Node::spawn(imp, Some(&dir_b)).await?;
    let started = Instant::now();
    resume(&b, &secrets, Some(&a.addr())).await?;
    until_synced(&b, &secrets, 1).await?;
    progress(&format!(
        "W11 {}: {docs} documents joined in {:.1} s",
        imp.name(),
        started.elapsed().as_secs_f64()
    ));
    b.shutdown().await;

    for (i, s) in secrets.iter().take(changed).enumerate() {
        let doc = a.open_doc(id_of(s)).await?;
        doc.set(Bytes::from(format!("changed{i}")), Bytes::from("w"))
            .await?;
    }

    let b = Node::spawn(imp, Some(&dir_b)).await?;
    let mut waits = Vec::with_capacity(changed);
    for s in secrets.iter().take(changed) {
        waits.push(b.open_doc(id_of(s)).await?.subscribe().await?);
    }
    let (bytes0, cpu0) = (b.udp_bytes(), cpu_seconds());
    let t0 = Instant::now();
    let mut v2_report = None;
    if v2 {
        resume(&b, &secrets, None).await?;
        let resumed = t0.elapsed();
        let report = b
            .sync_all(&a.addr())
            .await?
            .context("sync v2 needs Sheaf")?;
        v2_report = Some((resumed, report));
    } else {
        resume(&b, &secrets, Some(&a.addr())).await?;
    }
    let resume_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let deadline = t0 + PHASE_LIMIT;
    for (i, events) in waits.iter_mut().enumerate() {
        let key = Bytes::from(format!("changed{i}"));
        loop {
            match tokio::time::timeout_at(deadline, events.next()).await {
                Ok(Some(crate::nodes::Ev::InsertRemote { key: k })) if k == key => break,
                Ok(Some(_)) => {}
                _ => anyhow::bail!("change {i} did not arrive"),
            }
        }
    }
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    let workload = if v2 { "W11v2" } else { "W11" };
    let mut rec = Record::new(imp.name(), workload, rep)
        .param("docs", docs)
        .param("changed", changed);
    match v2_report {
        Some((resumed, report)) => {
            // Taking the documents up, then the one v2 round.
            rec.set("resume_ms", resumed.as_secs_f64() * 1000.0);
            rec.set("round_ms", report.duration.as_secs_f64() * 1000.0);
            rec.set("differing", report.differing as f64);
        }
        // The resume loop already starts every document's sync.
        None => rec.set("resume_ms", resume_ms),
    }
    rec.set("ms", ms);
    rec.set("bytes", (b.udp_bytes() - bytes0) as f64);
    rec.set("cpu_s", cpu_seconds() - cpu0);
    rec.set("rss_mb_two_nodes", rss_mb());
    a.shutdown().await;
    b.shutdown().await;
    Ok(rec)
}

/// W11 for both implementations.
pub async fn w11(out: &mut Out, docs: usize, changed: usize, reps: usize) -> Result<()> {
    for rep in 0..reps {
        let mut runs: Vec<(Impl, bool)> =
            Impl::selected().into_iter().map(|i| (i, false)).collect();
        if runs.iter().any(|(i, _)| *i == Impl::Sheaf) {
            runs.push((Impl::Sheaf, true));
        }
        for (imp, v2) in runs {
            let dir = tempfile::tempdir()?;
            let run = once(imp, docs, changed, rep, dir.path(), v2);
            match tokio::time::timeout(PHASE_LIMIT * 3, run)
                .await
                .context("W11 timed out")
            {
                Ok(Ok(rec)) => out.push(rec),
                Ok(Err(e)) | Err(e) => progress(&format!("W11 {} failed: {e:#}", imp.name())),
            }
        }
    }
    Ok(())
}

/// Idle cost of Sheaf nodes with many documents: two nodes share `docs` documents, with
/// `sheaf serve`'s anti-entropy (every 30 s) or without (what gossip alone costs); after they
/// settled, the process's CPU over one minute (both nodes) and its resident memory.
pub async fn idle(out: &mut Out, docs: usize, anti_entropy: bool) -> Result<()> {
    let live = sheaf_tokio::LiveConfig {
        anti_entropy_interval: anti_entropy.then_some(Duration::from_secs(30)),
        ..sheaf_tokio::LiveConfig::default()
    };
    let rss0 = rss_mb();
    let a = Node::spawn_sheaf(None, live.clone()).await?;
    let b = Node::spawn_sheaf(None, live).await?;
    let mut secrets = Vec::with_capacity(docs);
    for i in 0..docs {
        let doc = a.create_doc().await?;
        doc.set(Bytes::from(format!("k{i}")), Bytes::from("v"))
            .await?;
        doc.start_sync(vec![]).await?;
        secrets.push(doc.secret().await?);
    }
    resume(&b, &secrets, Some(&a.addr())).await?;
    until_synced(&b, &secrets, 1).await?;
    // Let the syncs of joining and the first anti-entropy rounds pass.
    tokio::time::sleep(Duration::from_secs(45)).await;
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    tokio::time::sleep(Duration::from_secs(60)).await;
    let cpu = cpu_seconds() - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    let mut rec = Record::new(Impl::Sheaf.name(), "idle", 0)
        .param("docs", docs)
        .param("anti_entropy", if anti_entropy { "30s" } else { "off" });
    rec.set("cpu_pct_two_nodes", 100.0 * cpu / wall);
    rec.set("rss_mb_two_nodes", rss_mb() - rss0);
    if let (Some(ma), Some(mb)) = (a.sheaf_metrics(), b.sheaf_metrics()) {
        let rounds = ma.anti_entropy_rounds.get() + mb.anti_entropy_rounds.get();
        rec.set("anti_entropy_rounds", rounds as f64);
        let dials = ma.sync_via_connect_success.get() + mb.sync_via_connect_success.get();
        rec.set("syncs_dialed", dials as f64);
    }
    out.push(rec);
    a.shutdown().await;
    b.shutdown().await;
    Ok(())
}
