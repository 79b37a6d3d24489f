//! `sheaf status` and `sheaf doc status`: node health, and a document's entries, content and
//! peers with their last syncs.

mod common;

use common::{ok, Serve, Watch};

fn json(dir: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(dir, &all)).expect("one JSON object")
}

#[test]
fn status_shows_health_and_a_documents_peers() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let serve_a = Serve::start(a.path());
    let serve_b = Serve::start(b.path());
    let doc = ok(a.path(), &["doc", "new"]);
    ok(a.path(), &["doc", "set", &doc, "k1", "v1"]);
    ok(a.path(), &["doc", "set", &doc, "k2", "v2"]);
    let ticket = ok(a.path(), &["doc", "share", &doc, "write"]);
    ok(b.path(), &["doc", "join", &ticket]);
    // Every change the status shows (a neighbour up, a sync finished) is an event.
    let mut watch_b = Watch::start(b.path(), &doc);

    // b tracks a: a neighbour once gossip is up, with the join's sync finished.
    let status = watch_b.until("b's status names a as a synced neighbour", || {
        let s = json(b.path(), &["doc", "status", &doc]);
        let a_is_up = s["peers"].as_array().is_some_and(|peers| {
            peers.iter().any(|p| {
                p["peer"] == serve_a.node_id.as_str()
                    && p["neighbor"] == true
                    && p["last_sync"]["entries"].is_array()
            })
        });
        a_is_up.then_some(s)
    });
    assert_eq!(status["doc"], doc.as_str());
    assert_eq!(status["entries"], 2);
    assert_eq!(status["syncing"], true);
    assert_eq!(status["content_missing"], 0, "{status}");

    let text = ok(b.path(), &["doc", "status", &doc]);
    assert!(text.contains("entries 2"), "{text}");
    assert!(text.contains(&serve_a.node_id), "{text}");
    assert!(
        text.contains("neighbour") && text.contains("last sync"),
        "{text}"
    );

    let node = json(b.path(), &["status"]);
    assert_eq!(node["node"], serve_b.node_id.as_str());
    assert_eq!(node["serving"], true);
    assert_eq!(node["documents"], 1);
    assert_eq!(node["store_running"], true);
    assert_eq!(node["gossip_answering"], true);
    assert!(ok(b.path(), &["status"]).contains("healthy"));

    drop(watch_b);
    assert!(serve_b.proc.terminate().success());
    assert!(serve_a.proc.terminate().success());

    // Without a node running, the store's part only.
    let text = ok(b.path(), &["doc", "status", &doc]);
    assert!(text.contains("entries 2"), "{text}");
    assert!(text.contains("not syncing"), "{text}");
    assert_eq!(json(b.path(), &["status"])["serving"], false);
}
