//! W12, large nodes: memory per indexed entry, the first sync after opening, and a node that
//! syncs many documents in turn.
//!
//! Resident memory is only comparable between fresh processes (an allocator keeps what an
//! earlier run freed), so every W12 measurement runs in a child process: `sheaf-bench`
//! starts itself again with the hidden `w12-child` command, hands it copies of the store
//! files, and reads one JSON object of metrics from its last output line.
//!
//! - **W12 pair** (`n` = 100,000 and 1,000,000): two nodes in the child open copies of the
//!   same `n`-entry document on disk (W5's document, without its content; Sheaf's store with
//!   the summaries a node's store has). `first_ms` is the first sync after opening (Sheaf
//!   answers the whole-namespace fingerprint from its stored summary, so a no-op sync needs no
//!   index), `ms` a second no-op sync; then both leave the swarm, the accepting node writes
//!   one entry and they sync again: `diff_ms`, the first sync after opening that finds a
//!   difference (Sheaf reads back the index chunks its ranges end in). `rss_open_mb` is the
//!   growth of resident memory from before the nodes started until both had opened the
//!   document; `rss_sync_mb` its
//!   growth over the three syncs, and `bytes_per_entry` that growth over the `2n` entries the
//!   two nodes hold (what indexing, caching and syncing an entry costs).
//! - **W12D** (`docs` documents of `n` entries each, one store per node): the accepting node
//!   writes one entry to a document, then the dialing node syncs it (a first sync with a
//!   difference: both need the document's index), then a no-op sync, then both close it; so
//!   for every document in turn. `first_ms` and `ms` are the medians over the documents, `ms_p95`
//!   the 95th percentile of the no-op syncs; `peak_mb` is the process's peak resident
//!   memory (two nodes) and `growth_mb` that peak less the memory after start-up. Sheaf's
//!   nodes run with a memory budget of [`DOCS_BUDGET_MB`] each (`budget_mb`); their index
//!   counters at the end are `index_mb`, `evictions`, `expansions` (chunks read back from the
//!   store) and `builds` (indexes built from every entry), of the dialing node.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use sheaf_core::NamespaceId;
use tokio::{sync::mpsc, time::Instant};

use crate::{
    data::{generate, write_stores, Keys, Stores},
    nodes::{forward, Ev, Impl, Node, Stamped},
    report::{median, Record},
    w_live::quantile,
    w_many::{peak_rss_mb, rss_mb},
    w_sync::ms,
    Out,
};

/// The memory budget of each Sheaf node in W12D, in MiB.
pub const DOCS_BUDGET_MB: usize = 24;

/// How long one sync of the child may take before the run counts as a timeout.
const SYNC_DEADLINE: Duration = Duration::from_secs(300);

/// Every metric a child may report (records keep `&'static str` names).
const METRICS: &[&str] = &[
    "first_ms",
    "ms",
    "diff_ms",
    "ms_p95",
    "rss_open_mb",
    "rss_sync_mb",
    "bytes_per_entry",
    "peak_mb",
    "growth_mb",
    "budget_mb",
    "index_mb",
    "evictions",
    "expansions",
    "builds",
];

/// W12 pair for each `n` in `ns`, both implementations.
pub async fn pair(out: &mut Out, ns: &[usize], reps: usize, stores: &Stores) -> Result<()> {
    for &n in ns {
        // W5's document, without the content: a no-op sync downloads none.
        let name = format!("w12-{n}");
        crate::progress(&format!("W12: generating {n} entries"));
        let data = generate(n, Keys::Unique, 3);
        for imp in Impl::selected() {
            crate::progress(&format!(
                "W12: writing the {} store of {n} entries",
                imp.name()
            ));
            stores.ensure(imp, &name, &data, false).await?;
        }
        let id = NamespaceId::from_bytes(data.id()).to_string();
        drop(data);
        for rep in 0..reps {
            for imp in Impl::selected() {
                let rec = Record::new(imp.name(), "W12", rep)
                    .param("n", n)
                    .param("shape", "pair");
                let a = stores.node_dir(imp, Some(&name), "a")?;
                let b = stores.node_dir(imp, Some(&name), "b")?;
                let rec = child(rec, imp, "pair", n, &a, &b, std::slice::from_ref(&id)).await;
                stores.remove(&a);
                stores.remove(&b);
                out.push(rec);
            }
        }
    }
    Ok(())
}

/// W12D: `docs` documents of `n` entries, both implementations.
pub async fn docs(
    out: &mut Out,
    docs: usize,
    n: usize,
    reps: usize,
    stores: &Stores,
) -> Result<()> {
    let name = format!("w12-{docs}x{n}");
    crate::progress(&format!("W12: generating {docs} documents of {n} entries"));
    let data: Vec<_> = (0..docs)
        .map(|i| generate(n, Keys::Unique, 1_000 + i as u64))
        .collect();
    let refs: Vec<_> = data.iter().collect();
    for imp in Impl::selected() {
        crate::progress(&format!("W12: writing the {} store", imp.name()));
        let dir = stores.base_dir(imp, &name);
        if !dir.join("docs.redb").exists() {
            write_stores(&refs, imp, &dir).await?;
        }
    }
    let ids: Vec<String> = data
        .iter()
        .map(|d| NamespaceId::from_bytes(d.id()).to_string())
        .collect();
    drop(refs);
    drop(data);
    for rep in 0..reps {
        for imp in Impl::selected() {
            let rec = Record::new(imp.name(), "W12D", rep)
                .param("n", n)
                .param("docs", docs)
                .param("shape", "docs");
            let a = stores.node_dir(imp, Some(&name), "a")?;
            let b = stores.node_dir(imp, Some(&name), "b")?;
            let rec = child(rec, imp, "docs", n, &a, &b, &ids).await;
            stores.remove(&a);
            stores.remove(&b);
            out.push(rec);
        }
    }
    Ok(())
}

/// Runs one measurement in a child process and copies its metrics into `rec`.
async fn child(
    mut rec: Record,
    imp: Impl,
    shape: &str,
    n: usize,
    a: &Path,
    b: &Path,
    ids: &[String],
) -> Record {
    let ids_file = a.join("w12-ids");
    let run = async {
        std::fs::write(&ids_file, ids.join("\n"))?;
        let exe = std::env::current_exe()?;
        let mut command = std::process::Command::new(exe);
        command
            .arg("w12-child")
            .args(["--imp", imp.name(), "--shape", shape])
            .args(["--n", &n.to_string()])
            .arg("--a")
            .arg(a)
            .arg("--b")
            .arg(b)
            .arg("--ids")
            .arg(&ids_file)
            .stderr(std::process::Stdio::inherit());
        let output = tokio::task::spawn_blocking(move || command.output()).await??;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let last = stdout.lines().last().unwrap_or_default();
        if !output.status.success() {
            bail!("child failed ({}): {last}", output.status);
        }
        let metrics: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(last).with_context(|| format!("child said {last:?}"))?;
        Ok::<_, anyhow::Error>(metrics)
    };
    match run.await {
        Ok(metrics) => {
            for name in METRICS {
                if let Some(v) = metrics.get(*name).and_then(|v| v.as_f64()) {
                    rec.set(name, v);
                }
            }
            if metrics.get("status").and_then(|s| s.as_str()) == Some("timeout") {
                rec.status = "timeout";
            }
        }
        Err(e) => {
            crate::progress(&format!("W12 {} {shape}: {e:#}", imp.name()));
            rec.status = "error";
        }
    }
    rec
}

/// What the child process measures (the hidden `w12-child` command).
#[derive(Debug)]
pub struct ChildArgs {
    /// The implementation.
    pub imp: Impl,
    /// `pair` or `docs`.
    pub shape: String,
    /// Entries per document.
    pub n: usize,
    /// The accepting node's folder.
    pub a: PathBuf,
    /// The dialing node's folder.
    pub b: PathBuf,
    /// A file of document ids, hex, one per line.
    pub ids: PathBuf,
}

/// The child: measures and prints its metrics as one JSON object on the last line.
pub async fn run_child(args: ChildArgs) -> Result<()> {
    let ids: Vec<[u8; 32]> = std::fs::read_to_string(&args.ids)?
        .lines()
        .map(|s| Ok(s.trim().parse::<NamespaceId>()?.to_bytes()))
        .collect::<Result<_>>()?;
    let mut m = serde_json::Map::new();
    let mut open_mb = 0.0;
    let before = rss_mb();
    if args.shape == "docs" {
        crate::nodes::set_sheaf_memory_budget(DOCS_BUDGET_MB << 20);
        if args.imp == Impl::Sheaf {
            put(&mut m, "budget_mb", DOCS_BUDGET_MB as f64);
        }
    }
    let a = Node::spawn(args.imp, Some(&args.a)).await?;
    let b = Node::spawn(args.imp, Some(&args.b)).await?;
    let started = rss_mb();
    let mut first = Vec::new();
    let mut noop = Vec::new();
    let mut timeout = false;
    for id in &ids {
        let (da, db) = (a.open_doc(*id).await?, b.open_doc(*id).await?);
        if args.shape == "pair" {
            open_mb = rss_mb() - before;
            put(&mut m, "rss_open_mb", open_mb);
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        let tasks = [
            forward(da.subscribe().await?, 0, tx.clone()),
            forward(db.subscribe().await?, 1, tx),
        ];
        if args.shape == "docs" {
            // Each document changed on the accepting node while apart: its first sync finds a
            // difference and needs the index on both nodes (the budget's case).
            da.set(
                Bytes::from_static(b"w12/new"),
                Bytes::from_static(b"new value"),
            )
            .await?;
        }
        da.start_sync(vec![]).await?;
        let mut times = Vec::new();
        for _ in 0..2 {
            let t0 = Instant::now();
            db.start_sync(vec![a.addr()]).await?;
            match synced(&mut rx, t0 + SYNC_DEADLINE).await {
                Some(at) => times.push(ms(at - t0)),
                None => {
                    timeout = true;
                    break;
                }
            }
        }
        if args.shape == "pair" && !timeout {
            // One new entry, written apart (gossip would carry it), then synced: the first
            // sync after opening that finds a difference.
            da.leave().await?;
            db.leave().await?;
            da.set(
                Bytes::from_static(b"w12/new"),
                Bytes::from_static(b"new value"),
            )
            .await?;
            da.start_sync(vec![]).await?;
            let t0 = Instant::now();
            db.start_sync(vec![a.addr()]).await?;
            match synced(&mut rx, t0 + SYNC_DEADLINE).await {
                Some(at) => put(&mut m, "diff_ms", ms(at - t0)),
                None => timeout = true,
            }
        }
        tasks.iter().for_each(|t| t.abort());
        if let [f, s] = times[..] {
            first.push(f);
            noop.push(s);
        }
        da.leave().await?;
        db.leave().await?;
        da.close().await?;
        db.close().await?;
        if timeout {
            break;
        }
    }
    let after = rss_mb();
    if let Some(v) = median(&first) {
        put(&mut m, "first_ms", v);
    }
    if let Some(v) = median(&noop) {
        put(&mut m, "ms", v);
    }
    noop.sort_by(f64::total_cmp);
    if let Some(v) = quantile(&noop, 0.95) {
        put(&mut m, "ms_p95", v);
    }
    let peak = peak_rss_mb();
    put(&mut m, "peak_mb", peak);
    put(&mut m, "growth_mb", peak - started);
    if args.shape == "pair" {
        let grown = after - before - open_mb;
        put(&mut m, "rss_sync_mb", grown);
        let per_entry = grown * (1 << 20) as f64 / (2 * args.n) as f64;
        put(&mut m, "bytes_per_entry", per_entry);
    }
    if let Some(metrics) = b.sheaf_metrics() {
        let index = metrics.index_bytes.get() as f64 / (1 << 20) as f64;
        put(&mut m, "index_mb", index);
        put(&mut m, "evictions", metrics.index_evictions.get() as f64);
        put(&mut m, "expansions", metrics.index_expansions.get() as f64);
        put(&mut m, "builds", metrics.index_builds.get() as f64);
    }
    m.insert(
        "status".into(),
        if timeout { "timeout" } else { "ok" }.into(),
    );
    a.shutdown().await;
    b.shutdown().await;
    println!("{}", serde_json::Value::Object(m));
    Ok(())
}

fn put(m: &mut serde_json::Map<String, serde_json::Value>, name: &str, value: f64) {
    m.insert(name.to_string(), value.into());
}

/// Waits for the dialing node's (index 1) next `SyncFinished`.
async fn synced(rx: &mut mpsc::UnboundedReceiver<Stamped>, deadline: Instant) -> Option<Instant> {
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((1, Ev::SyncFinished { .. }, at))) => return Some(at),
            Ok(Some(_)) => {}
            _ => return None,
        }
    }
}
