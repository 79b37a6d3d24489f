//! `sheaf demo`: three nodes in one process on loopback, each with its own temporary data
//! directory. Alice creates a document and writes entries with content, shares a write
//! ticket, Bob and Carol join; then Bob and Carol write live and Alice deletes a prefix.
//! Every node's live events are printed as one timeline; after each step the demo waits
//! until all three nodes hold the same entries (equal fingerprints) and all their content,
//! and finally prints a summary. It fails with a reason when they have not converged in
//! time.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    time::{Duration, Instant},
};

use serde_json::json;
use sheaf_tokio::{AddrInfoOptions, Doc, LiveEvent, PeerId, Query, ShareMode};
use tokio::sync::mpsc;

use crate::{
    args::DemoArgs,
    node::Node,
    output::{EventInfo, Printer},
    CliError, Result,
};

const NAMES: [&str; 3] = ["alice", "bob", "carol"];

/// One node's document state, as compared for convergence.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    /// Live (non-empty) entries.
    entries: usize,
    /// XOR of the reconciliation fingerprints of all entries, tombstones included.
    fingerprint: [u8; 32],
    /// Non-empty entries whose content is in the blob store.
    content: usize,
}

impl State {
    async fn of(node: &Node, doc: &Doc) -> Result<State> {
        let all = doc.get_many(Query::all().include_empty()).await?;
        let mut fingerprint = [0u8; 32];
        let (mut entries, mut content) = (0, 0);
        for e in &all {
            for (f, b) in fingerprint.iter_mut().zip(e.fingerprint().0) {
                *f ^= b;
            }
            if !e.is_empty() {
                entries += 1;
                if node.has_content(e.content_hash()).await {
                    content += 1;
                }
            }
        }
        Ok(State {
            entries,
            fingerprint,
            content,
        })
    }

    fn complete(&self) -> bool {
        self.content == self.entries
    }
}

struct Timeline {
    start: Instant,
    printer: Printer,
}

impl Timeline {
    fn phase(&self, text: &str) {
        let t = self.start.elapsed().as_secs_f64();
        if self.printer.json {
            self.printer.json_line(&json!({"t": t, "phase": text}));
        } else {
            self.printer.line(&format!("{t:>8.3}s  ── {text}"));
        }
    }
}

/// Runs the demo; `Ok` only if all nodes converged after every step.
pub async fn run(args: DemoArgs, printer: Printer) -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("sheaf-demo-")
        .tempdir()
        .map_err(|e| CliError::Other(format!("cannot create a temporary directory: {e}")))?;
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut nodes = Vec::new();
    for name in NAMES {
        let dir = tmp.path().join(name);
        crate::node::ensure_dir(&dir)?;
        let live = crate::node::live_config(Duration::from_secs(2));
        // The demo's nodes share one machine: direct loopback addresses only.
        let offline = crate::net::NetArgs::offline();
        match Node::persistent_with(&dir, loopback, &offline, live).await {
            Ok(node) => nodes.push(node),
            Err(e) => {
                for node in &nodes {
                    node.shutdown().await.ok();
                }
                return Err(e);
            }
        }
    }
    // The whole run is bounded, in case a step hangs rather than fails to converge.
    let bound = Duration::from_secs(args.timeout + 30);
    let result = match tokio::time::timeout(bound, demo(&nodes, &args, printer)).await {
        Ok(result) => result,
        Err(_) => Err(CliError::Timeout(format!(
            "the demo did not finish within {}s",
            bound.as_secs()
        ))),
    };
    // Shut down together: a node closing alone waits for peers that are already gone.
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(
            nodes[0].shutdown(),
            nodes[1].shutdown(),
            nodes[2].shutdown()
        )
    })
    .await;
    drop(tmp);
    result
}

async fn demo(nodes: &[Node], args: &DemoArgs, printer: Printer) -> Result<()> {
    let start = Instant::now();
    let timeline = Timeline { start, printer };
    let names: BTreeMap<String, &str> = nodes
        .iter()
        .zip(NAMES)
        .map(|(n, name)| (PeerId::from_bytes(*n.id().as_bytes()).to_string(), name))
        .collect();
    for (node, name) in nodes.iter().zip(NAMES) {
        let addrs: Vec<String> = node.addrs().iter().map(|a| a.to_string()).collect();
        if printer.json {
            printer.json_line(
                &json!({"node": name, "node_id": node.id().to_string(), "addrs": addrs}),
            );
        } else {
            printer.line(&format!(
                "{name:<5}  node {}  {}",
                node.id().fmt_short(),
                addrs.join(" ")
            ));
        }
    }

    // All events of all nodes go to one printer, in arrival order.
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, LiveEvent)>();
    let printing = tokio::spawn(async move {
        while let Some((i, event)) = rx.recv().await {
            let t = start.elapsed().as_secs_f64();
            let mut info = EventInfo::from(&event);
            if let Some(name) = info.peer.as_ref().and_then(|p| names.get(p)) {
                info.peer = Some((*name).to_string());
            }
            if printer.json {
                printer.json_line(&json!({"t": t, "node": NAMES[i], "event": info}));
            } else {
                printer.line(&format!("{t:>8.3}s  {:<5}  {}", NAMES[i], info.human()));
            }
        }
    });
    let forward = |i: usize, mut events: sheaf_tokio::Events| {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                if tx.send((i, e)).is_err() {
                    break;
                }
            }
        })
    };

    let alice = &nodes[0];
    let doc = alice.docs.create().await?;
    let mut forwarders = vec![forward(0, doc.subscribe().await?)];
    let photos = args.entries / 3;
    let notes = args.entries - photos;
    timeline.phase(&format!(
        "alice creates document {} and writes {notes} notes and {photos} photos",
        doc.id().fmt_short()
    ));
    let author = alice.docs.author_default();
    for i in 0..notes {
        let text = format!("note {i}: written by alice before sharing");
        doc.set_bytes(author, format!("notes/{i:02}"), text).await?;
    }
    for i in 0..photos {
        let bytes: Vec<u8> = (0..64 * 1024u32)
            .map(|b| (b.wrapping_mul(31).wrapping_add(i as u32) % 251) as u8)
            .collect();
        doc.set_bytes(author, format!("photos/{i:02}.raw"), bytes)
            .await?;
    }
    let ticket = doc
        .share(ShareMode::Write, AddrInfoOptions::Addresses)
        .await?;
    let ticket_text = ticket.to_string();
    timeline.phase(&format!(
        "alice shares a write ticket ({}...); bob and carol join",
        ticket_text.get(..24).unwrap_or(&ticket_text)
    ));
    let mut docs = vec![doc.clone()];
    for (i, node) in nodes.iter().enumerate().skip(1) {
        let (d, events) = node.docs.import_and_subscribe(ticket.clone()).await?;
        forwarders.push(forward(i, events));
        docs.push(d);
    }
    drop(tx);

    let timeout = Duration::from_secs(args.timeout);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut steps = Vec::new();
    let t = converge(nodes, &docs, notes + photos, deadline, "joining").await;
    steps.push(("join", t?));

    timeline.phase("bob and carol write live");
    docs[1]
        .set_bytes(
            nodes[1].docs.author_default(),
            "notes/from-bob",
            "hi from bob",
        )
        .await?;
    docs[2]
        .set_bytes(
            nodes[2].docs.author_default(),
            "notes/from-carol",
            "hi from carol",
        )
        .await?;
    let t = converge(nodes, &docs, notes + photos + 2, deadline, "live writes").await;
    steps.push(("live writes", t?));

    timeline.phase("alice deletes the prefix \"photos/\"");
    let removed = docs[0].del(author, "photos/").await?;
    let t = converge(nodes, &docs, notes + 2, deadline, "the prefix delete").await;
    steps.push(("prefix delete", t?));

    for f in forwarders {
        f.abort();
    }
    let _ = printing.await;

    let mut states = Vec::new();
    for (node, doc) in nodes.iter().zip(&docs) {
        states.push(State::of(node, doc).await?);
    }
    let total: f64 = steps.iter().map(|(_, d)| d.as_secs_f64()).sum();
    if printer.json {
        printer.json_line(&json!({
            "summary": {
                "converged": true,
                "doc": doc.id().to_string(),
                "removed_by_delete": removed,
                "nodes": nodes.iter().zip(NAMES).zip(&states).map(|((n, name), s)| json!({
                    "node": name,
                    "node_id": n.id().to_string(),
                    "entries": s.entries,
                    "content": s.content,
                    "fingerprint": hex::encode(s.fingerprint),
                })).collect::<Vec<_>>(),
                "converge_secs": steps.iter().map(|(n, d)| (n.to_string(), json!(d.as_secs_f64()))).collect::<serde_json::Map<_, _>>(),
                "total_secs": start.elapsed().as_secs_f64(),
            }
        }));
    } else {
        printer.line("");
        printer.line(&format!(
            "summary of document {} (the delete removed {removed} entries)",
            doc.id().fmt_short()
        ));
        printer.line("  node   entries  content  fingerprint");
        for (name, s) in NAMES.iter().zip(&states) {
            printer.line(&format!(
                "  {name:<5}  {:>7}  {:>7}  {}",
                s.entries,
                format!("{}/{}", s.content, s.entries),
                hex::encode(&s.fingerprint[..8])
            ));
        }
        let steps_text: Vec<String> = steps
            .iter()
            .map(|(n, d)| format!("{n} {:.3}s", d.as_secs_f64()))
            .collect();
        printer.line(&format!(
            "converged: all 3 nodes hold equal entries and content; time to converge: {} (sum {total:.3}s, run {:.3}s)",
            steps_text.join(", "),
            start.elapsed().as_secs_f64()
        ));
    }
    Ok(())
}

/// Waits until every node holds `expected` entries with all their content and all
/// fingerprints are equal; returns how long that took.
async fn converge(
    nodes: &[Node],
    docs: &[Doc],
    expected: usize,
    deadline: tokio::time::Instant,
    step: &str,
) -> Result<Duration> {
    let started = Instant::now();
    loop {
        let mut states = Vec::new();
        for (node, doc) in nodes.iter().zip(docs) {
            states.push(State::of(node, doc).await?);
        }
        let converged = states.iter().all(|s| {
            s.entries == expected && s.complete() && s.fingerprint == states[0].fingerprint
        });
        if converged {
            return Ok(started.elapsed());
        }
        if tokio::time::Instant::now() >= deadline {
            let why: Vec<String> = NAMES
                .iter()
                .zip(&states)
                .map(|(name, s)| {
                    format!(
                        "{name} has {} of {expected} entries and {} contents{}",
                        s.entries,
                        s.content,
                        if s.fingerprint == states[0].fingerprint {
                            ""
                        } else {
                            ", fingerprint differs from alice's"
                        }
                    )
                })
                .collect();
            return Err(CliError::Timeout(format!(
                "the nodes did not converge in time after {step}: {}",
                why.join("; ")
            )));
        }
        // The state is re-read at a bounded rate; events drive the engine, not this loop.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
