//! Durability of the redb store: what was inserted before `flush` returned survives a SIGKILL
//! of the writing process; what was written afterwards and never flushed is gone. The same
//! through a node's `Doc::flush`.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use sheaf_core::{
    replica::{OpenOpts, ReplicaConfig, Replicas},
    store::{query::query_all, Query, RedbBackend},
    Author, AuthorId, Mono, NamespaceSecret, Now,
};

#[test]
fn flushed_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docs.redb");
    let mut child = Command::new(env!("CARGO_BIN_EXE_durability_child"))
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.starts_with("unflushed") {
            break;
        }
    }
    assert_eq!(seen, ["flushed 100", "flushed 200", "unflushed 300"]);
    child.kill().unwrap(); // SIGKILL on Unix: no destructors, no final commit.
    child.wait().unwrap();

    let secret = NamespaceSecret::from_bytes(&[1; 32]);
    let author: AuthorId = Author::from_bytes(&[2; 32]).id();
    let now = Now::new(Mono(0), 1_700_000_000_000_000);
    let mut r = Replicas::new(
        RedbBackend::persistent(&path).unwrap(),
        ReplicaConfig::default(),
    );
    r.open(secret.id(), OpenOpts::default()).unwrap();
    let entries = query_all(r.indexed_mut(), secret.id(), &Query::author(author)).unwrap();
    let keys: Vec<String> = entries
        .iter()
        .map(|e| String::from_utf8(e.key().to_vec()).unwrap())
        .collect();
    let expected: Vec<String> = (0..200).map(|i| format!("key/{i:05}")).collect();
    assert_eq!(keys, expected, "exactly the flushed entries survive");
    assert!(r.export_author(author).unwrap().is_some());
    // The store is usable after the crash.
    r.insert_local(
        now,
        secret.id(),
        author,
        b"after",
        sheaf_core::Hash::new(b"x"),
        1,
    )
    .unwrap();
    r.flush().unwrap();
}

/// The same through a node: what `Doc::flush` acknowledged survives a SIGKILL of the process
/// right after it (the store commits on its own only every 500 ms).
#[test]
fn entries_a_node_flushed_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_docs_durability_child"))
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.starts_with("flushed") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let doc: sheaf_core::NamespaceId = seen[0]
        .strip_prefix("doc ")
        .expect("the child names its document first")
        .parse()
        .unwrap();
    assert_eq!(seen[1], "flushed 100");

    let mut r = Replicas::new(
        RedbBackend::persistent(dir.path().join("docs.redb")).unwrap(),
        ReplicaConfig::default(),
    );
    r.open(doc, OpenOpts::default()).unwrap();
    let entries = query_all(r.indexed_mut(), doc, &Query::all()).unwrap();
    let keys: Vec<String> = entries
        .iter()
        .map(|e| String::from_utf8(e.key().to_vec()).unwrap())
        .collect();
    let flushed: Vec<String> = (0..100).map(|i| format!("key/{i:05}")).collect();
    assert_eq!(
        keys[..100.min(keys.len())],
        flushed[..],
        "every flushed entry survives"
    );
}
