//! Bad input ends in one `error: ...` line on stderr and exit code 1 — never a panic or a
//! backtrace — with and without a running node.

#![cfg(unix)]

mod common;

use common::{assert_error, ok, run, Serve};

const UNKNOWN_DOC: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

#[test]
fn malformed_tickets() {
    let dir = tempfile::tempdir().unwrap();
    for ticket in ["not-a-ticket", "docaaaa", "doc!!!!", ""] {
        let out = run(dir.path(), &["doc", "join", ticket]);
        assert_error(&out, "invalid ticket");
    }
}

#[test]
fn unknown_and_malformed_document_ids() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["doc", "get", UNKNOWN_DOC, "k"],
        vec!["doc", "set", UNKNOWN_DOC, "k", "v"],
        vec!["doc", "ls", UNKNOWN_DOC],
        vec!["doc", "del", UNKNOWN_DOC, "k"],
        vec!["doc", "watch", UNKNOWN_DOC],
    ] {
        assert_error(&run(dir.path(), &args), "unknown document");
    }
    assert_error(
        &run(dir.path(), &["doc", "get", "xyz", "k"]),
        "invalid document id",
    );
    assert_error(
        &run(dir.path(), &["author", "default", "nope"]),
        "invalid author id",
    );
    // Without a running node there is no address to put in a ticket.
    let doc = ok(dir.path(), &["doc", "new"]);
    assert_error(
        &run(dir.path(), &["doc", "share", &doc, "read"]),
        "needs a running `sheaf serve`",
    );
    assert_error(
        &run(dir.path(), &["doc", "get", &doc, "missing"]),
        "no entry",
    );
}

#[test]
fn bad_input_through_a_running_node() {
    let dir = tempfile::tempdir().unwrap();
    let _serve = Serve::start(dir.path());
    assert_error(
        &run(dir.path(), &["doc", "get", UNKNOWN_DOC, "k"]),
        "unknown document",
    );
    assert_error(
        &run(dir.path(), &["doc", "join", "docnonsense"]),
        "invalid ticket",
    );
    assert_error(
        &run(dir.path(), &["doc", "share", "12", "write"]),
        "invalid document id",
    );
}

#[test]
fn unwritable_data_directory() {
    // Tests may run as root, where permissions do not stop writes: use a path below a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let data = file.join("data");
    assert_error(&run(&data, &["doc", "new"]), "cannot use data directory");
    assert_error(
        &run(&data, &["serve", "--bind", "127.0.0.1:0"]),
        "cannot use data directory",
    );
}

#[test]
fn a_second_serve_on_the_same_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let _serve = Serve::start(dir.path());
    let out = run(dir.path(), &["serve", "--bind", "127.0.0.1:0"]);
    assert_error(&out, "another sheaf node is already serving");
    // The first one still answers.
    ok(dir.path(), &["doc", "new"]);
}

#[test]
fn a_ticket_whose_node_is_gone() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let serve = Serve::start(a.path());
    let doc = ok(a.path(), &["doc", "new"]);
    let ticket = ok(a.path(), &["doc", "share", &doc, "read"]);
    assert!(serve.proc.terminate().success());
    let out = run(b.path(), &["doc", "join", &ticket, "--timeout", "3"]);
    assert_error(&out, "no sync with the ticket's nodes finished within 3s");
}

#[test]
fn serve_while_a_command_holds_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let doc = ok(dir.path(), &["doc", "new"]);
    // Without a node, `doc watch` runs its own short-lived node for as long as it watches.
    let mut cmd = common::sheaf();
    cmd.arg("--data")
        .arg(dir.path())
        .args(["doc", "watch", &doc]);
    let mut watch = common::Proc::spawn(cmd);
    watch.wait_line(|l| l.starts_with("watching "));
    let out = run(dir.path(), &["serve", "--bind", "127.0.0.1:0"]);
    assert_error(&out, "is in use by a sheaf command");
    assert!(watch.terminate().success());
    // Released: now a node can serve it.
    let _serve = Serve::start(dir.path());
}
