//! `sheaf doc join --wait-content`: returns only once every entry's content is stored, and
//! fails with one `error:` line when content cannot be had within `--timeout`.

mod common;

use std::path::Path;

use common::{assert_error, ok, run, Serve};

/// Four files of distinct content, 256 KiB to 1 MiB each (several blob transfers, more than
/// one network round each).
fn write_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    (0..4u32)
        .map(|i| {
            let name = if i % 2 == 0 {
                format!("file{i}.bin")
            } else {
                format!("sub/file{i}.bin")
            };
            let len = 256 * 1024 * (i as usize + 1);
            let data: Vec<u8> = (0..len)
                .map(|j| (j as u32).wrapping_mul(2_654_435_761).rotate_left(i) as u8)
                .collect();
            std::fs::write(dir.join(&name), &data).unwrap();
            (name, data)
        })
        .collect()
}

#[test]
fn join_wait_content_returns_with_all_content_and_times_out_without_a_provider() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let files_dir = tempfile::tempdir().unwrap();
    let files = write_files(files_dir.path());

    let serve_a = Serve::start(a.path());
    let doc = ok(a.path(), &["doc", "new"]);
    ok(
        a.path(),
        &["doc", "import", &doc, files_dir.path().to_str().unwrap()],
    );
    let ticket = ok(a.path(), &["doc", "share", &doc, "read"]);

    // b has no node running: the join runs on a short-lived node, which stops when the
    // command returns, so whatever content b holds afterwards arrived before it returned.
    let joined = ok(
        b.path(),
        &["--json", "doc", "join", "--wait-content", &ticket],
    );
    let joined: serde_json::Value = serde_json::from_str(&joined).unwrap();
    assert_eq!(joined["doc"], doc.as_str());
    assert_eq!(joined["synced"], true);
    assert_eq!(joined["entries"], files.len());
    assert!(serve_a.proc.terminate().success());

    // With a no longer running, b's own store has every file, byte for byte.
    let out = tempfile::tempdir().unwrap();
    ok(
        b.path(),
        &["doc", "export", &doc, out.path().to_str().unwrap()],
    );
    for (name, data) in &files {
        let got = std::fs::read(out.path().join(name)).unwrap();
        assert!(got == *data, "{name}: content differs");
    }

    // b loses its blobs but keeps the entries: a node that shares the document now cannot
    // provide any content, and a is gone.
    std::fs::remove_dir_all(b.path().join("blobs")).unwrap();
    let serve_b = Serve::start(b.path());
    let ticket_b = ok(b.path(), &["doc", "share", &doc, "read"]);
    let failed = run(
        c.path(),
        &[
            "--json",
            "doc",
            "join",
            "--wait-content",
            "--timeout",
            "10",
            &ticket_b,
        ],
    );
    assert_error(
        &failed,
        &format!("the content of {} entries is still missing", files.len()),
    );
    assert!(failed.stdout.is_empty(), "{:?}", failed.stdout);
    // The entries themselves arrived: only their content is missing.
    let listed = ok(c.path(), &["--json", "doc", "ls", &doc]);
    assert_eq!(listed.lines().count(), files.len(), "{listed}");
    assert!(serve_b.proc.terminate().success());
}

#[test]
fn wait_content_and_no_wait_exclude_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &["doc", "join", "--wait-content", "--no-wait", "docaaaa"],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}
