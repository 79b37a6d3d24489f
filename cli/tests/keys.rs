//! Keys are bytes: the `sheaf` binary takes them as text or hex, prints them escaped or as
//! hex, and lists every author's entries and tombstones on request.

#![cfg(unix)]

mod common;

use std::path::Path;

use common::{assert_error, ok, run, Serve};
use serde_json::Value;

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect()
}

/// A key with a control character, an invalid UTF-8 byte and a NUL round-trips through a
/// serving node (so through the control channel) with `--key-hex` / `--prefix-hex`.
#[test]
fn binary_key_round_trips_with_hex() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let _serve = Serve::start(d);
    let doc = ok(d, &["doc", "new"]);

    let written = ok(
        d,
        &[
            "--json",
            "doc",
            "set",
            &doc,
            "--key-hex",
            "01ff00",
            "binary value",
        ],
    );
    let written: Value = serde_json::from_str(&written).unwrap();
    assert_eq!(written["key_hex"], "01ff00", "{written}");
    assert!(
        written.get("key").is_none(),
        "not UTF-8, so no `key`: {written}"
    );

    assert_eq!(
        ok(d, &["doc", "get", &doc, "--key-hex", "01FF00"]),
        "binary value"
    );
    // A key differing only in its last byte stays apart.
    ok(d, &["doc", "set", &doc, "--key-hex", "01ff01", "sibling"]);
    assert_eq!(
        ok(d, &["doc", "get", &doc, "--key-hex", "01ff01"]),
        "sibling"
    );

    let listed = json_lines(&ok(d, &["--json", "doc", "ls", &doc]));
    let hexes: Vec<&str> = listed
        .iter()
        .map(|e| e["key_hex"].as_str().unwrap())
        .collect();
    assert_eq!(hexes, ["01ff00", "01ff01"], "{listed:?}");
    assert!(listed.iter().all(|e| e.get("key").is_none()), "{listed:?}");
    let under = ok(d, &["--json", "doc", "ls", &doc, "--prefix-hex", "01ff00"]);
    assert_eq!(json_lines(&under).len(), 1, "{under}");

    let got = ok(d, &["--json", "doc", "get", &doc, "--key-hex", "01ff00"]);
    let got: Value = serde_json::from_str(&got).unwrap();
    assert_eq!(got["key_hex"], "01ff00");
    assert!(got.get("key").is_none(), "{got}");
    assert_eq!(got["value"], "binary value");

    assert_eq!(
        ok(d, &["doc", "del", &doc, "--prefix-hex", "01ff00"]),
        "removed 1 entries"
    );
    assert_error(
        &run(d, &["doc", "get", &doc, "--key-hex", "01ff00"]),
        "no entry at key \"\\u{1}\\xff\\0\"",
    );
    assert_eq!(
        ok(d, &["doc", "get", &doc, "--key-hex", "01ff01"]),
        "sibling"
    );
}

/// Text and hex forms of a key exclude each other; one of them is needed; hex must be hex.
#[test]
fn key_arguments_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let doc = ok(d, &["doc", "new"]);
    for (args, needle) in [
        (vec!["doc", "get", &doc, "k", "--key-hex", "00"], "not both"),
        (vec!["doc", "get", &doc], "give KEY or --key-hex HEX"),
        (
            vec!["doc", "get", &doc, "--key-hex", "0g"],
            "invalid hex in --key-hex",
        ),
        (vec!["doc", "get", &doc, "--key-hex", "abc"], "invalid hex"),
        (
            vec!["doc", "set", &doc, "k", "v", "--key-hex", "00"],
            "not both",
        ),
        (
            vec!["doc", "set", &doc, "--key-hex", "00"],
            "give a VALUE or --file",
        ),
        (vec!["doc", "del", &doc], "give PREFIX or --prefix-hex HEX"),
        (
            vec!["doc", "del", &doc, "p", "--prefix-hex", "00"],
            "not both",
        ),
        (
            vec!["doc", "ls", &doc, "--prefix", "p", "--prefix-hex", "00"],
            "not both",
        ),
        (
            vec!["doc", "ls", &doc, "--prefix-hex", "x"],
            "invalid hex in --prefix-hex",
        ),
    ] {
        assert_error(&run(d, &args), needle);
    }
}

/// Text output shows each key on one line, escaped, so that different keys look different.
#[test]
fn text_output_escapes_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let doc = ok(d, &["doc", "new"]);
    ok(d, &["doc", "set", &doc, "back\\slash", "1"]);
    ok(d, &["doc", "set", &doc, "new\nline", "2"]);
    ok(d, &["doc", "set", &doc, "tab\there", "3"]);
    // The bytes `\xff` as text, and the byte 0xff: they must print differently.
    ok(d, &["doc", "set", &doc, "\\xff", "4"]);
    ok(d, &["doc", "set", &doc, "--key-hex", "ff", "5"]);
    ok(d, &["doc", "set", &doc, "plain/ü", "6"]);

    let listed = ok(d, &["doc", "ls", &doc]);
    let keys: Vec<&str> = listed
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    // Key order is byte order.
    assert_eq!(
        keys,
        [
            "\\\\xff",
            "back\\\\slash",
            "new\\nline",
            "plain/ü",
            "tab\\there",
            "\\xff"
        ],
        "{listed}"
    );
    let written = ok(d, &["doc", "set", &doc, "--key-hex", "0a", "7"]);
    assert!(written.starts_with("\\n 1 bytes "), "{written}");
    // JSON keeps the text form for UTF-8 keys, exactly.
    let listed = json_lines(&ok(d, &["--json", "doc", "ls", &doc, "--prefix", "new"]));
    assert_eq!(listed[0]["key"], "new\nline");
    assert_eq!(listed[0]["key_hex"], hex::encode("new\nline"));
}

fn authors_of(listed: &[Value]) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = listed
        .iter()
        .map(|e| {
            (
                e["author"].as_str().unwrap().to_string(),
                e["len"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn ls(d: &Path, doc: &str, flags: &[&str]) -> Vec<Value> {
    let mut args = vec!["--json", "doc", "ls", doc];
    args.extend_from_slice(flags);
    json_lines(&ok(d, &args))
}

/// `ls --all` lists each author's entry of a key, `--include-empty` adds the tombstone a
/// deletion leaves.
#[test]
fn ls_all_and_include_empty() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let doc = ok(d, &["doc", "new"]);
    let first = ok(d, &["author", "default"]);
    ok(d, &["doc", "set", &doc, "shared", "by the first author"]);
    let second = ok(d, &["author", "new"]);
    ok(d, &["author", "default", &second]);
    ok(d, &["doc", "set", &doc, "shared", "by the second"]);

    let newest = ls(d, &doc, &[]);
    assert_eq!(authors_of(&newest), [(second.clone(), 13)], "{newest:?}");
    let all = ls(d, &doc, &["--all"]);
    let mut want = vec![(first.clone(), 19), (second.clone(), 13)];
    want.sort();
    assert_eq!(authors_of(&all), want, "{all:?}");
    assert!(all.iter().all(|e| e["key"] == "shared"), "{all:?}");
    let text = ok(d, &["doc", "ls", &doc, "--all"]);
    assert_eq!(text.lines().count(), 2, "{text}");

    // The second author deletes its entry: a tombstone remains, the first author's entry too.
    assert_eq!(ok(d, &["doc", "del", &doc, "shared"]), "removed 1 entries");
    assert!(
        ls(d, &doc, &[]).is_empty(),
        "the newest entry is the tombstone"
    );
    assert_eq!(authors_of(&ls(d, &doc, &["--all"])), [(first.clone(), 19)]);
    let with_empty = ls(d, &doc, &["--all", "--include-empty"]);
    let mut want = vec![(first.clone(), 19), (second.clone(), 0)];
    want.sort();
    assert_eq!(authors_of(&with_empty), want, "{with_empty:?}");
    let newest_with_empty = ls(d, &doc, &["--include-empty"]);
    assert_eq!(authors_of(&newest_with_empty), [(second.clone(), 0)]);
    let text = ok(d, &["doc", "ls", &doc, "--include-empty"]);
    assert!(text.starts_with("shared\tempty\t"), "{text}");
}
