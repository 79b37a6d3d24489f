//! Folders as documents (`doc import` / `doc export`) and tickets that outlive a restart of
//! `sheaf serve`.

#![cfg(unix)]

mod common;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use common::{assert_error, ok, run, Serve};

/// Every file under `root` (relative path → bytes), and every folder (→ `None`).
fn tree(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for item in std::fs::read_dir(&dir).unwrap() {
            let path = item.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if path.is_dir() {
                out.insert(rel, None);
                pending.push(path);
            } else {
                out.insert(rel, Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

#[test]
fn nested_folder_round_trips_byte_identically() {
    let (data, files) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let d = data.path();
    let src = files.path().join("src");
    std::fs::create_dir_all(src.join("a/b/c")).unwrap();
    std::fs::create_dir_all(src.join("with space/ünïcode")).unwrap();
    std::fs::write(src.join("top.txt"), b"top level\n").unwrap();
    std::fs::write(src.join("a/b/c/deep.bin"), [0u8, 1, 2, 255, 0, 10]).unwrap();
    let big: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(src.join("a/big.bin"), &big).unwrap();
    std::fs::write(src.join("with space/ünïcode/name ✓.md"), "# ✓\n").unwrap();
    std::fs::write(src.join(".hidden"), b"dot file").unwrap();

    let doc = ok(d, &["doc", "new"]);
    let imported = ok(d, &["--json", "doc", "import", &doc, src.to_str().unwrap()]);
    let imported: serde_json::Value = serde_json::from_str(&imported).unwrap();
    assert_eq!(imported["imported"], 5, "{imported}");
    let keys: Vec<String> = ok(d, &["--json", "doc", "ls", &doc])
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["key"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        keys,
        [
            ".hidden",
            "a/b/c/deep.bin",
            "a/big.bin",
            "top.txt",
            "with space/ünïcode/name ✓.md"
        ]
    );

    let dst = files.path().join("dst");
    let exported = ok(d, &["doc", "export", &doc, dst.to_str().unwrap()]);
    assert!(exported.starts_with("exported 5 files"), "{exported}");
    assert_eq!(tree(&dst), tree(&src));

    // A second export over the first replaces the files in place and leaves no temporary
    // files behind.
    ok(d, &["doc", "set", &doc, "top.txt", "changed"]);
    ok(d, &["doc", "export", &doc, dst.to_str().unwrap()]);
    assert_eq!(std::fs::read(dst.join("top.txt")).unwrap(), b"changed");
    let mut want = tree(&src);
    want.insert("top.txt".into(), Some(b"changed".to_vec()));
    assert_eq!(tree(&dst), want);
}

/// A document holding a key that is not a plain relative path is not exported at all: one
/// `error:` line names the key, and nothing is written, inside DIR or outside it.
#[test]
fn export_refuses_keys_that_escape_the_folder() {
    let (data, files) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let d = data.path();
    let root = files.path();
    let before = tree(root);
    for (args, shown) in [
        (vec!["../evil"], "\"../evil\""),
        (vec!["/abs"], "\"/abs\""),
        (vec!["inner/../../evil"], "\"inner/../../evil\""),
        (vec!["a//b"], "\"a//b\""),
        (vec!["./dot"], "\"./dot\""),
        (vec!["--key-hex", "6e756c00"], "\"nul\\0\""),
        (vec!["--key-hex", "ff2f78"], "\"\\xff/x\""),
    ] {
        let doc = ok(d, &["doc", "new"]);
        // A harmless key sorts first, so a partial export would have written it.
        ok(d, &["doc", "set", &doc, "!first", "fine"]);
        let mut set = vec!["doc", "set", &doc];
        set.extend_from_slice(&args);
        set.push("payload");
        ok(d, &set);
        let out = root.join("out");
        let result = run(d, &["doc", "export", &doc, out.to_str().unwrap()]);
        assert_error(&result, &format!("refusing to export key {shown}"));
        assert_eq!(tree(root), before, "nothing written for {args:?}");
        assert!(!Path::new("/abs").exists());
    }
}

/// A `serve` started without `--bind` comes back on the same port, so a ticket printed
/// before the restart still reaches it.
#[test]
fn restarted_serve_answers_its_old_ticket() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let serve = Serve::start_unbound(a.path());
    let doc = ok(a.path(), &["doc", "new"]);
    ok(
        a.path(),
        &["doc", "set", &doc, "k", "from before the restart"],
    );
    let ticket = ok(a.path(), &["doc", "share", &doc, "read"]);
    let port_file = a.path().join("serve.port");
    let port = std::fs::read_to_string(&port_file).expect("the port is remembered");
    assert!(serve.proc.terminate().success());

    let serve = Serve::start_unbound(a.path());
    assert_eq!(std::fs::read_to_string(&port_file).unwrap(), port);
    ok(
        a.path(),
        &["doc", "set", &doc, "later", "after the restart"],
    );
    let joined = ok(b.path(), &["doc", "join", &ticket, "--timeout", "30"]);
    assert!(joined.contains(&doc), "{joined}");
    assert_eq!(
        ok(b.path(), &["doc", "get", &doc, "later"]),
        "after the restart"
    );
    assert!(serve.proc.terminate().success());
}

/// When the remembered port is taken, `serve` still starts, on a fresh port it remembers.
#[test]
fn serve_takes_a_fresh_port_when_its_own_is_taken() {
    let a = tempfile::tempdir().unwrap();
    let port_file = a.path().join("serve.port");
    let serve = Serve::start_unbound(a.path());
    let port: u16 = std::fs::read_to_string(&port_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(serve.proc.terminate().success());
    let _taken = std::net::UdpSocket::bind(("0.0.0.0", port)).expect("the port is free again");
    let serve = Serve::start_unbound(a.path());
    let now: u16 = std::fs::read_to_string(&port_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(now, port);
    assert!(serve
        .proc
        .seen
        .iter()
        .any(|l| l.starts_with("addr ") && l.ends_with(&format!(":{now}"))));
    assert!(serve.proc.terminate().success());
}

#[test]
fn import_of_something_that_is_not_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let doc = ok(d, &["doc", "new"]);
    let missing = d.join("missing");
    assert_error(
        &run(d, &["doc", "import", &doc, missing.to_str().unwrap()]),
        "cannot read",
    );
    let file = d.join("file");
    std::fs::write(&file, b"x").unwrap();
    assert_error(
        &run(d, &["doc", "import", &doc, file.to_str().unwrap()]),
        "is not a folder",
    );
}
