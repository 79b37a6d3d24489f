//! `sheaf serve` with a thousand joined documents and a live peer stops on SIGTERM within a
//! bound, exits 0, and every write it acknowledged is there after a restart.
//!
//! Both data directories are prepared in-process through the CLI's own `Node` (a thousand
//! `doc new`/`share`/`join` commands would take minutes); then both nodes run as `sheaf serve`
//! processes, the joined node resumes and syncs all documents, writes through its control
//! socket, and is stopped with SIGTERM while its peer is still up.

mod common;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use common::{ok, Serve, Watch};
use sheaf_cli::{net::NetArgs, node::Node};
use sheaf_tokio::{AddrInfoOptions, DocTicket, ShareMode};

/// Documents the two nodes share.
const DOCS: usize = 1_000;
/// Documents the joined node writes to before it is stopped.
const WRITES: usize = 10;
/// What the shutdown may take. The node's own bounds add up to far less (see
/// `sheaf_cli::node::SHUTDOWN_BOUND`); this leaves room for a loaded CI machine, while a hang
/// exceeds it by far.
const BOUND: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Creates `DOCS` documents with one entry each on the node of `dir`, recorded to be synced
/// again by `serve`; returns write tickets naming the node at `bind`.
fn prepare_owner(dir: &Path, bind: &str) -> Vec<DocTicket> {
    runtime().block_on(async {
        let node = Node::persistent(dir, bind.parse().unwrap(), &NetArgs::offline())
            .await
            .unwrap();
        let author = node.docs.author_default();
        let mut tickets = Vec::with_capacity(DOCS);
        for i in 0..DOCS {
            let doc = node.docs.create().await.unwrap();
            doc.set_bytes(author, format!("k{i}"), format!("v{i}"))
                .await
                .unwrap();
            let ticket = doc
                .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
                .await
                .unwrap();
            node.record_sync(doc.id(), None).unwrap();
            tickets.push(ticket);
        }
        node.shutdown().await.unwrap();
        tickets
    })
}

/// Imports every ticket's document on the node of `dir`, recorded to be synced with the
/// ticket's node by `serve`.
fn prepare_joiner(dir: &Path, tickets: &[DocTicket]) {
    runtime().block_on(async {
        let node = Node::persistent(dir, "127.0.0.1:0".parse().unwrap(), &NetArgs::offline())
            .await
            .unwrap();
        for ticket in tickets {
            node.docs
                .import_namespace(ticket.capability.clone())
                .await
                .unwrap();
            node.record_sync(ticket.capability.id(), Some(ticket))
                .unwrap();
        }
        node.shutdown().await.unwrap();
    })
}

#[test]
fn serve_with_1000_joined_documents_stops_on_sigterm_within_the_bound() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let a_bind = format!("127.0.0.1:{}", common::free_port());
    let tickets = prepare_owner(a_dir.path(), &a_bind);
    prepare_joiner(b_dir.path(), &tickets);
    let ids: Vec<String> = tickets
        .iter()
        .map(|t| t.capability.id().to_string())
        .collect();

    let a = Serve::start_on(a_dir.path(), &a_bind);
    let b = Serve::start(b_dir.path());
    assert!(
        b.proc
            .seen
            .iter()
            .any(|l| l == &format!("syncing {DOCS} documents")),
        "b did not resume all documents: {:?}",
        b.proc.seen
    );
    // The peer is live: the joined node syncs the document it resumes first (the store
    // lists documents by id) and holds the owner's entry. (Documents further down the list may
    // wait for a retry while the owner refuses sessions beyond its cap.)
    let first = (0..DOCS).min_by_key(|&i| &ids[i]).unwrap();
    let first_key = format!("k{first}");
    Watch::start(b_dir.path(), &ids[first]).until(&format!("{first_key} on b"), || {
        let out = common::run(b_dir.path(), &["doc", "get", &ids[first], &first_key]);
        out.status.success().then_some(())
    });
    // Writes the running node acknowledged.
    for (i, id) in ids.iter().enumerate().take(WRITES) {
        ok(
            b_dir.path(),
            &["doc", "set", id, &format!("b{i}"), &format!("w{i}")],
        );
    }

    let started = Instant::now();
    let status = b.proc.terminate();
    let took = started.elapsed();
    println!("sheaf serve with {DOCS} joined documents stopped in {took:?} ({status})");
    assert!(status.success(), "exit status {status}");
    assert!(took < BOUND, "shutdown took {took:?}");

    // After a restart (a short-lived node on the same directory), every acknowledged write
    // and the synced entries are there.
    for (i, id) in ids.iter().enumerate().take(WRITES) {
        assert_eq!(
            ok(b_dir.path(), &["doc", "get", id, &format!("b{i}")]),
            format!("w{i}")
        );
    }
    assert_eq!(
        ok(b_dir.path(), &["doc", "get", &ids[first], &first_key]),
        format!("v{first}")
    );
    assert!(a.proc.terminate().success());
}
