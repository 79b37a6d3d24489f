//! **W6** live latency: how long a write on one node takes to reach the others.
//!
//! `nodes` memory nodes of one implementation: the first creates a document and joins its
//! swarm, the others import the namespace and `start_sync` with the first node's address.
//! Once every node has a gossip neighbour and one warm-up write reached all of them, the first
//! node makes `writes` writes, one after the other; for each, every other node's
//! `InsertRemote` of that key is timed from just before the `set_bytes` call. p50 and p95 are
//! over all (write, receiver) pairs; a write that does not reach a receiver within
//! [`PER_WRITE`] counts as missed and the run as `timeout`.

use std::{collections::HashMap, time::Duration};

use anyhow::Result;
use bytes::Bytes;
use tokio::{sync::mpsc, time::Instant};

use crate::{
    link::{Link, LinkConfig},
    nodes::{addr_at, forward, Ev, Family, Impl, Node, Stamped},
    report::Record,
    Out,
};

/// How long one write may take to reach every node.
pub const PER_WRITE: Duration = Duration::from_secs(10);
/// How long the swarm may take to form.
pub const SETUP: Duration = Duration::from_secs(60);

/// The `q`-quantile (0..=1) of `sorted`, nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// W6 for each node count in `sizes`.
pub async fn w6(out: &mut Out, sizes: &[usize], writes: usize, reps: usize) -> Result<()> {
    for &k in sizes {
        for rep in 0..reps {
            for imp in Impl::selected() {
                out.push(once(imp, k, writes, rep, None).await?);
            }
        }
    }
    Ok(())
}

/// W6 with two nodes on the ends of a [`Link`] of `link` (the writer on IPv6, the receiver on
/// IPv4); records get `rtt_ms` and `loss_pct` parameters.
pub async fn w6_over(out: &mut Out, writes: usize, reps: usize, link: LinkConfig) -> Result<()> {
    for rep in 0..reps {
        for imp in Impl::selected() {
            out.push(once(imp, 2, writes, rep, Some(link)).await?);
        }
    }
    Ok(())
}

async fn once(
    imp: Impl,
    k: usize,
    writes: usize,
    rep: usize,
    link: Option<LinkConfig>,
) -> Result<Record> {
    let mut rec = Record::new(imp.name(), "W6", rep)
        .param("nodes", k)
        .param("writes", writes);
    if let Some(l) = &link {
        rec = crate::w_sync::link_params(rec, l);
    }
    let mut nodes = Vec::new();
    for i in 0..k {
        let family = match (&link, i) {
            (Some(_), 0) => Family::V6,
            _ => Family::V4,
        };
        nodes.push(Node::spawn_on(imp, None, family).await?);
    }
    let link = match link {
        Some(config) => Some(Link::start(nodes[0].bound()?, nodes[1].bound()?, config).await?),
        None => None,
    };
    let first = match &link {
        Some(l) => addr_at(nodes[0].endpoint().id(), l.addr_for_b()),
        None => nodes[0].addr(),
    };
    let writer = nodes[0].create_doc().await?;
    writer.start_sync(vec![]).await?;
    let secret = writer.secret().await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Stamped>();
    let mut tasks = Vec::new();
    let mut docs = Vec::new();
    for (i, node) in nodes.iter().enumerate().skip(1) {
        let doc = node.import_secret(secret).await?;
        tasks.push(forward(doc.subscribe().await?, i, tx.clone()));
        doc.start_sync(vec![first.clone()]).await?;
        docs.push(doc);
    }
    drop(tx);
    let status = run(&writer, k, writes, &mut rx, &mut rec).await;
    rec.status = status;
    if let Some(l) = &link {
        let s = l.stats();
        rec.set("link_bytes", s.bytes() as f64);
        rec.set("link_lost", (s.a_to_b.lost + s.b_to_a.lost) as f64);
    }
    drop(link);
    for t in tasks {
        t.abort();
    }
    for node in nodes {
        node.shutdown().await;
    }
    Ok(rec)
}

async fn run(
    writer: &crate::nodes::Doc,
    k: usize,
    writes: usize,
    rx: &mut mpsc::UnboundedReceiver<Stamped>,
    rec: &mut Record,
) -> &'static str {
    // Every receiver has a neighbour and gets a warm-up write.
    let deadline = Instant::now() + SETUP;
    let mut up = vec![false; k];
    up[0] = true;
    while !up.iter().all(|u| *u) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((i, Ev::NeighborUp, _))) => up[i] = true,
            Ok(Some(_)) => {}
            _ => return "timeout",
        }
    }
    if writer
        .set(Bytes::from_static(b"warmup"), Bytes::from_static(b"w"))
        .await
        .is_err()
    {
        return "error";
    }
    let mut seen = vec![false; k];
    seen[0] = true;
    while !seen.iter().all(|s| *s) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((i, Ev::InsertRemote { key }, _))) if &key[..] == b"warmup" => seen[i] = true,
            Ok(Some(_)) => {}
            _ => return "timeout",
        }
    }
    let mut latencies = Vec::with_capacity(writes * (k - 1));
    let mut missed = 0usize;
    // Keys that arrived early (a receiver can be ahead of the write loop).
    let mut early: HashMap<(usize, Bytes), Instant> = HashMap::new();
    for w in 0..writes {
        let key = Bytes::from(format!("live/{w:06}"));
        let t0 = Instant::now();
        if writer
            .set(key.clone(), Bytes::from(vec![w as u8; 32]))
            .await
            .is_err()
        {
            return "error";
        }
        let mut pending: Vec<usize> = (1..k).collect();
        pending.retain(|&i| match early.remove(&(i, key.clone())) {
            Some(at) => {
                latencies.push((at - t0).as_secs_f64() * 1000.0);
                false
            }
            None => true,
        });
        let until = t0 + PER_WRITE;
        while !pending.is_empty() {
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some((i, Ev::InsertRemote { key: got }, at))) => {
                    if got == key {
                        if let Some(p) = pending.iter().position(|&x| x == i) {
                            pending.swap_remove(p);
                            latencies.push((at - t0).as_secs_f64() * 1000.0);
                        }
                    } else {
                        early.insert((i, got), at);
                    }
                }
                Ok(Some(_)) => {}
                _ => {
                    missed += pending.len();
                    break;
                }
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    if let Some(v) = quantile(&latencies, 0.5) {
        rec.set("p50_ms", v);
    }
    if let Some(v) = quantile(&latencies, 0.95) {
        rec.set("p95_ms", v);
    }
    if let Some(v) = latencies.last() {
        rec.set("max_ms", *v);
    }
    rec.set("received", latencies.len() as f64);
    rec.set("missed", missed as f64);
    if missed > 0 {
        "timeout"
    } else {
        "ok"
    }
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.95), Some(95.0));
        assert_eq!(quantile(&[7.0], 0.95), Some(7.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
