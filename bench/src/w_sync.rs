//! Sync between two nodes over loopback.
//!
//! The documents are generated once and written into each implementation's store file (see
//! [`crate::data`]), so both implementations sync the very same signed entries; each
//! repetition starts from fresh copies of those files.
//!
//! - **W3** initial sync: the source node opens the `N`-entry document (its blob store on disk
//!   holds all `N` values, as for W4/W5) and joins the swarm; an empty memory node imports the namespace,
//!   subscribes, and calls `start_sync` with the source's address. `entries_ms` is when the
//!   `N`-th `InsertRemote` arrived, `content_ms` when the `N`-th `ContentReady` did. A run
//!   that stops making progress for [`IDLE`] or passes its deadline is recorded as `timeout`
//!   with the counts it reached (iroh-docs' content download is known to stall).
//! - **W7** is W3 with the empty node's download policy set to nothing: the UDP bytes its
//!   endpoint sent and received from `start_sync` until it held all entries and its sync
//!   finished, over the floor (the encoded size of the entries it lacked).
//! - **W5** no-op sync: two nodes open copies of the same `N`-entry document; one calls
//!   `start_sync` with the other's address. `first_ms` is the time to the dialing node's
//!   `SyncFinished` for that first sync after opening (Sheaf builds its in-memory fingerprint
//!   index then, once per document and process); `ms` is a second `start_sync` on the same
//!   running nodes, which is what a no-op sync costs a running node.
//! - **W4** diff sync: after that first sync, both leave the swarm and each writes `N/100`
//!   new entries; then one calls `start_sync` again. `ms` until both received the other's
//!   new entries.
//!
//! Sheaf drops events for subscribers that fall behind (`Lagged`); the bench reads events on
//! their own task to keep up, counts dropped events as possible inserts or downloads, and
//! confirms by query (entry count, blob store) when the count says done, and also after any
//! [`POLL`] without events (a `Lagged` notice only comes with the next delivered event), so a
//! lag can delay a measurement (by at most about a poll) but never shorten it.

use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use tokio::{sync::mpsc, time::Instant};

use crate::{
    data::{generate, Dataset, Keys, Stores},
    link::{Link, LinkConfig},
    nodes::{addr_at, forward, Ev, Family, Impl, Node, Stamped},
    report::Record,
    Out,
};

/// A run that sees no event for this long has stalled.
pub const IDLE: Duration = Duration::from_secs(30);
/// How often a run whose subscriber lost events re-checks by query.
pub const POLL: Duration = Duration::from_secs(1);

pub(crate) fn deadline_for(n: usize) -> Duration {
    Duration::from_secs(60 + (n / 1000) as u64)
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Builds (once) the `n`-entry document with unique keys in both stores; returns it.
pub(crate) async fn base(stores: &Stores, n: usize) -> Result<(Dataset, String)> {
    let name = format!("sync-{n}");
    crate::progress(&format!("generating {n} entries"));
    let data = generate(n, Keys::Unique, 3);
    for imp in Impl::selected() {
        crate::progress(&format!("writing the {} store of {n} entries", imp.name()));
        stores.ensure(imp, &name, &data, true).await?;
    }
    Ok((data, name))
}

/// W3 (content) or W7 (no content) for each `n`.
pub async fn initial(
    out: &mut Out,
    ns: &[usize],
    reps: usize,
    stores: &Stores,
    content: bool,
) -> Result<()> {
    initial_over(out, ns, reps, stores, content, None).await
}

/// [`initial`] with the nodes on the two ends of a [`Link`] of `link` if given (the source
/// on IPv6, the empty node on IPv4; records get `rtt_ms` and `loss_pct` parameters).
pub async fn initial_over(
    out: &mut Out,
    ns: &[usize],
    reps: usize,
    stores: &Stores,
    content: bool,
    link: Option<LinkConfig>,
) -> Result<()> {
    for &n in ns {
        let (data, name) = base(stores, n).await?;
        let floor = data.encoded_size();
        for rep in 0..reps {
            for imp in Impl::selected() {
                let rec =
                    initial_once(imp, &data, &name, stores, rep, content, floor, link).await?;
                out.push(rec);
            }
        }
    }
    Ok(())
}

/// The `rtt_ms` and `loss_pct` parameters of a record measured over `link`.
pub fn link_params(rec: Record, link: &LinkConfig) -> Record {
    let rtt = link.a_to_b.delay + link.b_to_a.delay;
    rec.param("rtt_ms", rtt.as_millis() as u64)
        .param("loss_pct", link.a_to_b.loss * 100.0)
}

#[allow(clippy::too_many_arguments)]
async fn initial_once(
    imp: Impl,
    data: &Dataset,
    name: &str,
    stores: &Stores,
    rep: usize,
    content: bool,
    floor: u64,
    link: Option<LinkConfig>,
) -> Result<Record> {
    let n = data.entries.len();
    let workload = if content { "W3" } else { "W7" };
    let mut rec = Record::new(imp.name(), workload, rep).param("n", n);
    if let Some(l) = &link {
        rec = link_params(rec, l);
    }
    let run = initial_run(imp, data, name, stores, content, floor, link, &mut rec);
    if bounded(workload, imp, n, run).await.is_none() {
        rec.status = "timeout";
    }
    Ok(rec)
}

/// Runs one repetition within its deadline plus twice [`IDLE`], so that a call into an
/// implementation that never returns (not only a stalled sync) ends the repetition as a
/// timeout instead of the whole run. The nodes of a cut-off repetition are left behind.
pub(crate) async fn bounded<T>(
    workload: &str,
    imp: Impl,
    n: usize,
    run: impl std::future::Future<Output = Result<T>>,
) -> Option<Result<T>> {
    let limit = deadline_for(n) + 2 * IDLE;
    let result = tokio::time::timeout(limit, run).await.ok();
    if result.is_none() {
        crate::progress(&format!(
            "{workload} {}: a call did not return within {} s; repetition cut off",
            imp.name(),
            limit.as_secs()
        ));
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn initial_run(
    imp: Impl,
    data: &Dataset,
    name: &str,
    stores: &Stores,
    content: bool,
    floor: u64,
    link: Option<LinkConfig>,
    rec: &mut Record,
) -> Result<()> {
    let n = data.entries.len();
    let src_dir = stores.node_dir(imp, Some(name), "src")?;
    let (src_family, sink_family) = match link {
        Some(_) => (Family::V6, Family::V4),
        None => (Family::V4, Family::V4),
    };
    let src = Node::spawn_on(imp, Some(&src_dir), src_family).await?;
    let src_doc = src.open_doc(data.id()).await?;
    src_doc.start_sync(vec![]).await?;
    let sink = Node::spawn_on(imp, None, sink_family).await?;
    let link = match link {
        Some(config) => Some(Link::start(src.bound()?, sink.bound()?, config).await?),
        None => None,
    };
    let src_addr = match &link {
        Some(l) => addr_at(src.endpoint().id(), l.addr_for_b()),
        None => src.addr(),
    };
    let doc = sink.import_secret(data.secret_bytes()).await?;
    if !content {
        doc.download_nothing().await?;
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = forward(doc.subscribe().await?, 0, tx);
    let bytes0 = sink.udp_bytes();
    let t0 = Instant::now();
    doc.start_sync(vec![src_addr]).await?;
    let deadline = t0 + deadline_for(n);
    let (mut inserts, mut ready, mut lagged) = (0usize, 0usize, 0usize);
    let (mut entries_at, mut content_at, mut synced_at) = (None, None, None);
    let mut wire = None;
    let mut status = "ok";
    let mut last_event = Instant::now();
    let hashes: Vec<[u8; 32]> = if content {
        data.values
            .iter()
            .map(|v| *blake3::hash(v).as_bytes())
            .collect()
    } else {
        Vec::new()
    };
    loop {
        let done = entries_at.is_some()
            && if content {
                content_at.is_some()
            } else {
                synced_at.is_some()
            };
        if done {
            break;
        }
        let now = Instant::now();
        if now >= deadline || now >= last_event + IDLE {
            status = "timeout";
            break;
        }
        // With dropped events, re-check by query at least every POLL.
        let wait = deadline.min(last_event + IDLE).min(now + POLL);
        // A quiet interval: events may have been dropped without a `Lagged` to say so (it
        // comes with the next delivered event), so ask the node.
        let (ev, at, quiet) = match tokio::time::timeout_at(wait, rx.recv()).await {
            Ok(Some((_, ev, at))) => {
                last_event = at;
                (ev, at, false)
            }
            Ok(None) => {
                status = "timeout";
                break;
            }
            Err(_) => (Ev::Other, Instant::now(), true),
        };
        match ev {
            Ev::InsertRemote { .. } => inserts += 1,
            Ev::ContentReady => ready += 1,
            Ev::Lagged(m) => lagged += m as usize,
            Ev::SyncFinished { round_trips, .. } if entries_at.is_some() && synced_at.is_none() => {
                synced_at = Some(at);
                if let Some(r) = round_trips {
                    rec.set("round_trips", r as f64);
                }
                wire = Some(sink.udp_bytes() - bytes0);
            }
            _ => {}
        }
        if entries_at.is_none()
            && (inserts + lagged >= n || quiet)
            && ((lagged == 0 && !quiet) || doc.count(false).await? >= n)
        {
            entries_at = Some(if lagged == 0 && !quiet {
                at
            } else {
                Instant::now()
            });
            if !content {
                wire = Some(sink.udp_bytes() - bytes0);
            }
        }
        if content
            && content_at.is_none()
            && (ready + lagged >= n || (quiet && entries_at.is_some()))
            && ((lagged == 0 && !quiet) || sink.missing_blobs(&hashes).await? == 0)
        {
            content_at = Some(if lagged == 0 && !quiet {
                at
            } else {
                Instant::now()
            });
        }
    }
    // With dropped events the event counts fall short: report what the node holds.
    if entries_at.is_some() {
        inserts = n;
    } else if lagged > 0 {
        inserts = doc.count(false).await?;
    }
    if content_at.is_some() {
        ready = n;
    } else if content {
        ready = n - sink.missing_blobs(&hashes).await?;
    }
    task.abort();
    rec.set("entries", inserts as f64);
    if content {
        rec.set("content", ready as f64);
    }
    if lagged > 0 {
        rec.set("lagged_events", lagged as f64);
    }
    if let Some(at) = entries_at {
        rec.set("entries_ms", ms(at - t0));
    }
    if let Some(at) = content_at {
        rec.set("content_ms", ms(at - t0));
    }
    if let Some(at) = synced_at {
        rec.set("sync_finished_ms", ms(at - t0));
    }
    if !content {
        if let (Some(wire), Some(_)) = (wire, entries_at) {
            rec.set("wire_bytes", wire as f64);
            rec.set("floor_bytes", floor as f64);
            rec.set("wire_per_floor", wire as f64 / floor as f64);
            rec.set("wire_bytes_per_entry", wire as f64 / n as f64);
        }
    }
    rec.status = status;
    if let Some(l) = &link {
        let s = l.stats();
        rec.set("link_bytes", s.bytes() as f64);
        rec.set("link_lost", (s.a_to_b.lost + s.b_to_a.lost) as f64);
    }
    drop(link);
    src.shutdown().await;
    sink.shutdown().await;
    stores.remove(&src_dir);
    Ok(())
}

/// W4 (`diff`) or W5 (no-op) for each `n`.
pub async fn pair(
    out: &mut Out,
    ns: &[usize],
    reps: usize,
    stores: &Stores,
    diff: bool,
) -> Result<()> {
    for &n in ns {
        let (data, name) = base(stores, n).await?;
        let id = data.id();
        drop(data);
        for rep in 0..reps {
            for imp in Impl::selected() {
                let rec = pair_once(imp, id, n, &name, stores, rep, diff).await?;
                out.push(rec);
            }
        }
    }
    Ok(())
}

/// Waits for the first `SyncFinished` on node 1 (the dialing node) after `t0`.
async fn first_sync(
    rx: &mut mpsc::UnboundedReceiver<Stamped>,
    t0: Instant,
    deadline: Instant,
    rec: &mut Record,
    prefix: &'static str,
) -> Option<Instant> {
    loop {
        let wait = deadline.min(Instant::now() + IDLE);
        match tokio::time::timeout_at(wait, rx.recv()).await {
            Ok(Some((1, Ev::SyncFinished { error, phases, .. }, at))) => {
                if let Some((connect, process)) = phases {
                    rec.set(concat_metric(prefix, "connect_ms"), connect);
                    rec.set(concat_metric(prefix, "process_ms"), process);
                }
                rec.set(
                    concat_metric(prefix, "ok"),
                    f64::from(u8::from(error.is_none())),
                );
                let _ = t0;
                return Some(at);
            }
            Ok(Some(_)) => {}
            _ => return None,
        }
    }
}

fn concat_metric(prefix: &'static str, name: &'static str) -> &'static str {
    match (prefix, name) {
        ("first", "connect_ms") => "first_connect_ms",
        ("first", "process_ms") => "first_process_ms",
        ("first", _) => "first_sync_ok",
        (_, "connect_ms") => "sync_connect_ms",
        (_, "process_ms") => "sync_process_ms",
        _ => "sync_ok",
    }
}

async fn pair_once(
    imp: Impl,
    id: [u8; 32],
    n: usize,
    name: &str,
    stores: &Stores,
    rep: usize,
    diff: bool,
) -> Result<Record> {
    let workload = if diff { "W4" } else { "W5" };
    let new = if diff { n / 100 } else { 0 };
    let mut rec = Record::new(imp.name(), workload, rep).param("n", n);
    if diff {
        rec = rec.param("new_per_side", new);
    }
    let (a_dir, b_dir) = (
        stores.node_dir(imp, Some(name), "a")?,
        stores.node_dir(imp, Some(name), "b")?,
    );
    let a = Node::spawn(imp, Some(&a_dir)).await?;
    let b = Node::spawn(imp, Some(&b_dir)).await?;
    let result = bounded(
        workload,
        imp,
        n,
        pair_run(&a, &b, id, n, new, rep, &mut rec),
    )
    .await;
    rec.status = match result {
        Some(Ok(status)) => status,
        Some(Err(e)) => {
            crate::progress(&format!("{workload} {}: {e:#}", imp.name()));
            "error"
        }
        None => "timeout",
    };
    a.shutdown().await;
    b.shutdown().await;
    stores.remove(&a_dir);
    stores.remove(&b_dir);
    Ok(rec)
}

/// The phases of W4/W5 on two started nodes: a first sync right after the nodes opened the
/// document (`first_ms`), then for W5 a second one (`ms`), for W4 — after both left the
/// swarm and wrote `new` entries each — the diff sync (`ms`, until both hold all entries).
async fn pair_run(
    a: &Node,
    b: &Node,
    id: [u8; 32],
    n: usize,
    new: usize,
    rep: usize,
    rec: &mut Record,
) -> Result<&'static str> {
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
    db.start_sync(vec![a.addr()]).await?;
    let first = first_sync(&mut rx, t0, deadline, rec, "first").await;
    let Some(first) = first else {
        return Ok("timeout");
    };
    rec.set("first_ms", ms(first - t0));
    if new == 0 {
        // W5: sync again, now that both nodes are running.
        let t1 = Instant::now();
        db.start_sync(vec![a.addr()]).await?;
        let second = first_sync(&mut rx, t1, deadline, rec, "second").await;
        tasks.iter().for_each(|t| t.abort());
        return Ok(match second {
            Some(at) => {
                rec.set("ms", ms(at - t1));
                "ok"
            }
            None => "timeout",
        });
    }
    tasks.iter().for_each(|t| t.abort());
    // W4: apart, each writes `new` entries; then they sync.
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
    let t1 = Instant::now();
    db.start_sync(vec![a.addr()]).await?;
    let mut got = [0usize; 2];
    let mut lagged = 0usize;
    let mut status = "timeout";
    loop {
        let wait = deadline.min(Instant::now() + IDLE);
        let Ok(Some((idx, ev, at))) = tokio::time::timeout_at(wait, rx.recv()).await else {
            break;
        };
        match ev {
            Ev::InsertRemote { .. } => got[idx] += 1,
            Ev::Lagged(m) => lagged += m as usize,
            _ => {}
        }
        if got[0] + lagged >= new
            && got[1] + lagged >= new
            && (lagged == 0
                || (da.count(false).await? >= n + 2 * new && db.count(false).await? >= n + 2 * new))
        {
            rec.set("ms", ms(at - t1));
            status = "ok";
            break;
        }
    }
    tasks.iter().for_each(|t| t.abort());
    rec.set("received_a", got[0] as f64);
    rec.set("received_b", got[1] as f64);
    if lagged > 0 {
        rec.set("lagged_events", lagged as f64);
    }
    Ok(status)
}
