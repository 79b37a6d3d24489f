//! The golden vectors of `docs/sync-v2.md` §7, checked byte for byte.
//!
//! Every vector is a file in `core/tests/vectors/sync-v2/`: `#` comment lines, then the hex of
//! one whole frame (2-byte header included) or, in `primitives.txt`, `name = hex` lines. The
//! test builds each value from fixed keys, encodes it and compares with the file, then decodes
//! the file and compares with the value. `SHEAF_BLESS=1 cargo test -p sheaf-core v2::golden`
//! rewrites the files (review the diff: a change is a wire-format change).

use std::path::PathBuf;

use super::{
    codec::{AbortCode, Bound, CompactEntry, Message, Part, PartMode},
    fingerprint::{Fingerprint, ItemHash, RangeKey},
    frame::{encode_frame, FrameDecoder},
    riblt::{Encoder, Hasher, Mapping},
    tags::ConnectionKey,
};
use crate::{
    entry::{Record, SignedEntry},
    hash::{Hash, PeerId},
    keys::{Author, NamespaceSecret},
    ranger::ContentStatus,
};

const TS: u64 = 1_700_000_000_000_000;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/sync-v2")
}

fn bless() -> bool {
    std::env::var_os("SHEAF_BLESS").is_some_and(|v| v == "1")
}

fn keys() -> (NamespaceSecret, Author) {
    (
        NamespaceSecret::from_bytes(&[0xb2; 32]),
        Author::from_bytes(&[0xa1; 32]),
    )
}

/// Entries `a` and `b` of the v1 golden transcript (reference §1.11).
fn entries() -> [SignedEntry; 2] {
    let (ns, author) = keys();
    let e = |key: &[u8], value: &[u8], ts| {
        SignedEntry::new(
            &ns,
            &author,
            key,
            Record::new(Hash::new(value), value.len() as u64, ts),
        )
    };
    [e(b"a", b"va", TS), e(b"b", b"vb", TS + 1)]
}

fn connection_key() -> ConnectionKey {
    ConnectionKey::derive(
        &[0x01; 32],
        &PeerId::from_bytes([0x11; 32]),
        &PeerId::from_bytes([0x22; 32]),
    )
}

fn items() -> [ItemHash; 2] {
    let [a, b] = entries();
    [ItemHash::of_entry(a.entry()), ItemHash::of_entry(b.entry())]
}

/// The frames: (file stem, what it shows, message).
fn frames() -> Vec<(&'static str, &'static str, Message)> {
    let key = connection_key();
    let (ns, author) = keys();
    let [a, b] = entries();
    let [ia, ib] = items();
    let fp_ab = Fingerprint::of_items(&[ia, ib]);
    let fp_a = Fingerprint::of_item(&ia);
    let doc_item = key.document_item(&ns.id(), &fp_ab);
    let hasher = Hasher::new(key.riblt_key());
    let range_key = RangeKey::derive(&key.riblt_key());
    let mut phase1 = Encoder::new(&hasher, [doc_item, [0x33; 32], [0x44; 32]]);
    let mut phase2 = Encoder::new(&hasher, [ia.0, ib.0]);
    vec![
        (
            "01-hello",
            "Hello: nonce 01×32, max_streams 16, doc_count 1000",
            Message::Hello {
                nonce: [0x01; 32],
                max_streams: 16,
                doc_count: 1000,
            },
        ),
        (
            "02-hello-ack",
            "HelloAck: max_streams 16",
            Message::HelloAck { max_streams: 16 },
        ),
        (
            "03-symbols-phase1",
            "Symbols 0..4 of the phase-1 set {document item of ns b2 with {a, b}, 33×32, 44×32} \
             under the connection key of nonce 01×32, dialer 11×32, acceptor 22×32",
            Message::Symbols {
                start: 0,
                symbols: phase1.next_symbols(4),
            },
        ),
        (
            "04-more-symbols",
            "MoreSymbols: until 256",
            Message::MoreSymbols { until: 256 },
        ),
        ("05-send-list", "SendList", Message::SendList),
        (
            "06-item-list",
            "ItemList: last, [document item of ns b2 with {a, b}]",
            Message::ItemList {
                last: true,
                items: vec![doc_item],
            },
        ),
        (
            "07-differing",
            "Differing: 1",
            Message::Differing { count: 1 },
        ),
        (
            "08-authors",
            "Authors: first 0, [author of secret a1×32]",
            Message::Authors {
                first: 0,
                ids: vec![author.id()],
            },
        ),
        (
            "09-abort",
            "Abort: NotFound (1)",
            Message::Abort {
                code: AbortCode::NotFound,
            },
        ),
        (
            "10-doc-open",
            "DocOpen: tag of ns b2, fingerprint of {a, b}, 3 unasked symbols",
            Message::DocOpen {
                tag: key.namespace_tag(&ns.id()),
                fingerprint: fp_ab,
                unasked: 3,
            },
        ),
        (
            "11-symbols-phase2",
            "Symbols 0..3 of the entry set {a, b} (same connection key)",
            Message::Symbols {
                start: 0,
                symbols: phase2.next_symbols(3),
            },
        ),
        (
            "12-ranges",
            "Ranges: [below (author 0, \"b\"): Fingerprint of {a} (digest under the range key of \
             the connection key below); below End: Hashes [b]]",
            Message::Ranges {
                parts: vec![
                    Part {
                        upper: Bound::Key {
                            author: 0,
                            key: b"b".to_vec(),
                        },
                        mode: PartMode::Fingerprint(fp_a.digest(&range_key)),
                    },
                    Part {
                        upper: Bound::End,
                        mode: PartMode::Hashes(vec![ib.0]),
                    },
                ],
            },
        ),
        (
            "13-wants",
            "Wants: [item hash of a]",
            Message::Wants { hashes: vec![ia.0] },
        ),
        (
            "14-entries",
            "Entries: [a (author 0, Missing), b (author 0, Complete)]",
            Message::Entries {
                entries: vec![
                    CompactEntry::from_signed(&a, 0, ContentStatus::Missing),
                    CompactEntry::from_signed(&b, 0, ContentStatus::Complete),
                ],
            },
        ),
        ("15-doc-done", "DocDone", Message::DocDone),
    ]
}

/// Named primitive values: hashes, keys, tags, a fingerprint, a mapping.
fn primitives() -> Vec<(&'static str, Vec<u8>)> {
    let key = connection_key();
    let (ns, _) = keys();
    let [ia, ib] = items();
    let fp_ab = Fingerprint::of_items(&[ia, ib]);
    let mut mapping = Mapping::new(1);
    let indices: Vec<u8> = (0..8)
        .flat_map(|_| mapping.next_index().to_be_bytes())
        .collect();
    vec![
        ("item_hash_a", ia.0.to_vec()),
        ("item_hash_b", ib.0.to_vec()),
        ("fingerprint_ab_sum", fp_ab.sum().to_vec()),
        (
            "fingerprint_ab_count_u64be",
            fp_ab.count().to_be_bytes().to_vec(),
        ),
        ("connection_key", key.as_bytes().to_vec()),
        ("namespace_tag_b2", key.namespace_tag(&ns.id()).to_vec()),
        (
            "document_item_b2_ab",
            key.document_item(&ns.id(), &fp_ab).to_vec(),
        ),
        ("riblt_key", key.riblt_key().to_vec()),
        (
            "range_digest_ab_tag",
            fp_ab
                .digest(&RangeKey::derive(&key.riblt_key()))
                .tag
                .to_vec(),
        ),
        ("mapping_seed_1_next8_u64be", indices),
    ]
}

fn read_hex(text: &str) -> Vec<u8> {
    let hex: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    hex::decode(hex).expect("vector files hold hex")
}

#[test]
fn frames_match_the_vectors() {
    for (name, what, msg) in frames() {
        let mut frame = Vec::new();
        encode_frame(&msg, &mut frame).unwrap();
        let path = dir().join(format!("{name}.hex"));
        if bless() {
            let mut text = format!("# {what}\n");
            for line in hex::encode(&frame).as_bytes().chunks(64) {
                text.push_str(std::str::from_utf8(line).unwrap());
                text.push('\n');
            }
            std::fs::write(&path, text).unwrap();
        }
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let bytes = read_hex(&text);
        assert_eq!(hex::encode(&frame), hex::encode(&bytes), "{name}");
        let mut d = FrameDecoder::new();
        d.feed(&bytes).unwrap();
        assert_eq!(d.next_message().unwrap().as_ref(), Some(&msg), "{name}");
        d.finish().unwrap();
    }
}

#[test]
fn primitives_match_the_vectors() {
    let path = dir().join("primitives.txt");
    if bless() {
        let mut text =
            String::from("# v2 primitives for the fixed keys of docs/sync-v2.md §7: name = hex\n");
        for (name, value) in primitives() {
            text.push_str(&format!("{name} = {}\n", hex::encode(value)));
        }
        std::fs::write(&path, text).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let recorded: Vec<(&str, &str)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split_once(" = ").expect("name = hex"))
        .collect();
    let computed = primitives();
    assert_eq!(recorded.len(), computed.len());
    for ((rn, rv), (cn, cv)) in recorded.iter().zip(&computed) {
        assert_eq!(rn, cn);
        assert_eq!(*rv, hex::encode(cv), "{cn}");
    }
}

/// The entries of the vectors are the v1 transcript's: compact, each is at most 0.8× its v1
/// encoding (with its content status), and converts back to the same signed entry.
#[test]
fn compact_entries_are_smaller_than_v1() {
    use crate::wire::Encode;
    for e in entries() {
        let v1 = e.to_wire().len() + 1; // + ContentStatus
        let mut v2 = Vec::new();
        encode_frame(
            &Message::Entries {
                entries: vec![CompactEntry::from_signed(&e, 0, ContentStatus::Missing)],
            },
            &mut v2,
        )
        .unwrap();
        let v2 = v2.len() - 4; // header, type, count
        assert!(v2 * 10 <= v1 * 8, "v2 {v2} bytes against v1 {v1}");
        let back = CompactEntry::from_signed(&e, 0, ContentStatus::Missing)
            .to_signed(e.namespace(), e.author());
        assert_eq!(back, e);
    }
}
