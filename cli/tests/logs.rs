//! `sheaf serve --log-file`: logs go to the file, never to stdout, with one line per finished
//! sync session and per shutdown step.

mod common;

use common::{ok, sheaf, Proc, Serve, Watch};

/// The first line of the log at `path` matching `pred`.
fn log_line(path: &std::path::Path, pred: impl Fn(&str) -> bool) -> Option<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().find(|l| pred(l)).map(str::to_string)
}

#[test]
fn serve_log_file_has_sync_and_shutdown_lines_and_stdout_stays_clean() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let log = a.path().join("serve.log");
    let mut cmd = sheaf();
    cmd.env_remove("RUST_LOG")
        .arg("--data")
        .arg(a.path())
        .args(["serve", "--bind", "127.0.0.1:0", "--log-file"])
        .arg(&log);
    let mut serve = Proc::spawn(cmd);
    serve.wait_line(|l| l.starts_with("node "));
    serve.wait_line(|l| l == "ready");

    let doc = ok(a.path(), &["doc", "new"]);
    ok(a.path(), &["doc", "set", &doc, "k", "v"]);
    let ticket = ok(a.path(), &["doc", "share", &doc, "read"]);
    // Every session is logged; the watcher's events tell when to look.
    let mut watch = Watch::start(a.path(), &doc);
    let serve_b = Serve::start(b.path());
    ok(b.path(), &["doc", "join", &ticket]);

    // The line is written before the event reaches the watcher, so checking after each event
    // sees it as soon as it exists.
    let line = watch.until("a sync line in the log", || {
        log_line(&log, |l| l.contains("sync finished") && l.contains(&doc))
    });
    drop(watch);
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("peer="), "{line}");
    assert!(line.contains("duration="), "{line}");

    // Nothing but the command's own output on stdout.
    assert!(
        serve
            .seen
            .iter()
            .all(|l| !l.contains("INFO") && !l.contains("sync finished")),
        "{:?}",
        serve.seen
    );
    let status = serve.terminate();
    assert!(status.success(), "{status:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    for step in [
        "node: shutting down",
        "docs: shutting down",
        "docs: store flushed and closed",
    ] {
        assert!(text.contains(step), "no {step:?} in the log: {text}");
    }
    assert!(serve_b.proc.terminate().success());
}
