//! The `sheaf` binary as a process: the demo, two `serve` nodes syncing through share and
//! join, commands without a running node, watching, and restarts.

#![cfg(unix)]

mod common;

use std::time::Duration;

use common::{ok, run, sheaf, Proc, Serve, Watch};

/// The demo gives up by itself after `--timeout 60`; the test waits longer than that, so a
/// failure shows the demo's own reason.
const DEMO_LIMIT: Duration = Duration::from_secs(150);

#[test]
fn demo_converges() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = sheaf();
    cmd.current_dir(dir.path())
        .args(["demo", "--timeout", "60"]);
    let out = common::run_cmd(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("converged: all 3 nodes"), "{stdout}");
    for name in ["alice", "bob", "carol"] {
        let inserts = stdout.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.len() > 2 && words[1] == name && words[2] == "insert"
        });
        assert!(inserts, "no insert on {name}: {stdout}");
    }
    assert!(stdout.contains("delete remote  \"photos/\""), "{stdout}");
    // The summary rows show equal fingerprints.
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            ["  alice ", "  bob ", "  carol "]
                .iter()
                .any(|n| l.starts_with(n))
        })
        .collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    let fingerprints: Vec<&str> = rows
        .iter()
        .map(|r| r.split_whitespace().last().unwrap())
        .collect();
    assert!(
        fingerprints.iter().all(|f| *f == fingerprints[0]),
        "{rows:?}"
    );
}

#[test]
fn demo_json_summary() {
    let mut cmd = sheaf();
    cmd.args(["demo", "--json", "--entries", "6", "--timeout", "60"]);
    let out = common::run_cmd_within(cmd, DEMO_LIMIT);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(summary["converged"], true);
    let nodes = summary["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    for n in nodes {
        assert_eq!(n["fingerprint"], nodes[0]["fingerprint"]);
        assert_eq!(n["entries"], 6 - 2 + 2);
        assert_eq!(n["content"], n["entries"]);
    }
}

fn get(dir: &std::path::Path, doc: &str, key: &str) -> Option<String> {
    let out = run(dir, &["doc", "get", doc, key]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn two_serves_sync_through_share_and_join() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let serve_a = Serve::start(a.path());
    let serve_b = Serve::start(b.path());
    assert_ne!(serve_a.node_id, serve_b.node_id);

    let doc = ok(a.path(), &["doc", "new"]);
    ok(a.path(), &["doc", "set", &doc, "greeting", "hello from a"]);
    let ticket = ok(a.path(), &["doc", "share", &doc, "write"]);
    assert!(ticket.starts_with("doc"), "{ticket}");

    let joined = ok(b.path(), &["--json", "doc", "join", &ticket]);
    let joined: serde_json::Value = serde_json::from_str(&joined).unwrap();
    assert_eq!(joined["doc"], doc.as_str());
    assert_eq!(joined["synced"], true);
    let mut watch_a = Watch::start(a.path(), &doc);
    let mut watch_b = Watch::start(b.path(), &doc);
    let value = watch_b.until("b reads a's entry", || get(b.path(), &doc, "greeting"));
    assert_eq!(value, "hello from a");

    // A live write on b reaches a.
    ok(b.path(), &["doc", "set", &doc, "reply", "hi from b"]);
    let value = watch_a.until("a reads b's entry", || get(a.path(), &doc, "reply"));
    assert_eq!(value, "hi from b");

    // A prefix delete on a reaches b.
    ok(a.path(), &["doc", "set", &doc, "tmp/1", "x"]);
    watch_b.until("b has tmp/1", || get(b.path(), &doc, "tmp/1"));
    assert_eq!(
        ok(a.path(), &["doc", "del", &doc, "tmp/"]),
        "removed 1 entries"
    );
    watch_b.until("the delete reaches b", || {
        get(b.path(), &doc, "tmp/1").is_none().then_some(())
    });

    // Both list the same keys; --json gives one object per line.
    let keys = |dir: &std::path::Path| -> Vec<String> {
        ok(dir, &["--json", "doc", "ls", &doc])
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["key"].as_str().unwrap().to_string()
            })
            .collect()
    };
    let want = vec!["greeting".to_string(), "reply".to_string()];
    // a made the last change itself; b's events tell when it has it too.
    watch_b.until("equal listings", || {
        (keys(a.path()) == want && keys(b.path()) == want).then_some(())
    });

    drop((watch_a, watch_b));
    let status = serve_b.proc.terminate();
    assert!(status.success(), "{status:?}");
    assert!(serve_a.proc.terminate().success());
}

#[test]
fn watch_streams_live_events() {
    let a = tempfile::tempdir().unwrap();
    let _serve = Serve::start(a.path());
    let doc = ok(a.path(), &["doc", "new"]);
    let mut cmd = sheaf();
    cmd.arg("--data")
        .arg(a.path())
        .args(["--json", "doc", "watch", &doc]);
    let mut watch = Proc::spawn(cmd);
    watch.wait_line(|l| l.contains("\"watching\""));
    ok(a.path(), &["doc", "set", &doc, "live", "v"]);
    let line = watch.wait_line(|l| l.contains("insert_local"));
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["entry"]["key"], "live");
    assert_eq!(event["entry"]["len"], 1);
}

#[test]
fn commands_without_serve_use_the_store_directly() {
    let a = tempfile::tempdir().unwrap();
    let dir = a.path();
    let author = ok(dir, &["author", "default"]);
    let listed = ok(dir, &["author", "list"]);
    assert_eq!(listed, format!("{author} (default)"));
    let second = ok(dir, &["author", "new"]);
    ok(dir, &["author", "default", &second]);
    assert_eq!(ok(dir, &["author", "default"]), second);

    let doc = ok(dir, &["doc", "new"]);
    assert_eq!(ok(dir, &["doc", "list"]), format!("{doc} write"));
    ok(dir, &["doc", "set", &doc, "a/1", "one"]);
    ok(dir, &["doc", "set", &doc, "b/1", "two"]);
    let file = dir.join("input.bin");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&file, &content).unwrap();
    ok(
        dir,
        &[
            "doc",
            "set",
            &doc,
            "a/file",
            "--file",
            file.to_str().unwrap(),
        ],
    );
    let out = dir.join("output.bin");
    ok(
        dir,
        &["doc", "get", &doc, "a/file", "--out", out.to_str().unwrap()],
    );
    assert_eq!(std::fs::read(&out).unwrap(), content);

    assert_eq!(ok(dir, &["doc", "get", &doc, "a/1"]), "one");
    let listed = ok(dir, &["doc", "ls", &doc, "--prefix", "a/"]);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert_eq!(ok(dir, &["doc", "del", &doc, "a/"]), "removed 2 entries");
    assert_eq!(ok(dir, &["doc", "ls", &doc]).lines().count(), 1);
}

#[test]
fn serve_restarts_with_the_same_id_and_resumes_joined_documents() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let serve_a = Serve::start(a.path());
    let doc = ok(a.path(), &["doc", "new"]);
    ok(a.path(), &["doc", "set", &doc, "k", "v"]);
    let ticket = ok(a.path(), &["doc", "share", &doc, "read"]);
    // Joined without a running node on b: a short-lived node syncs and exits.
    let joined = ok(b.path(), &["doc", "join", &ticket]);
    assert!(joined.contains(&doc), "{joined}");
    assert_eq!(get(b.path(), &doc, "k").as_deref(), Some("v"));

    let serve_b = Serve::start(b.path());
    let id = serve_b.node_id.clone();
    assert!(serve_b.proc.seen.iter().any(|l| l == "syncing 1 documents"));
    let status = serve_b.proc.terminate();
    assert!(status.success(), "{status:?}");
    let serve_b = Serve::start(b.path());
    assert_eq!(serve_b.node_id, id);
    drop(serve_a);
}

/// A SIGTERM right after `ready` is a clean shutdown (exit 0, lock released), not a kill by
/// the signal's default action; repeated because the window it guards is short.
#[test]
fn sigterm_right_after_ready_stops_serve_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..5 {
        let serve = Serve::start(dir.path());
        let status = serve.proc.terminate();
        assert!(status.success(), "round {round}: {status:?}");
    }
}
