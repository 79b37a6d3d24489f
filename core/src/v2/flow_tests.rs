//! The small-difference exchange of `docs/sync-v2.md` §6.3, case 1, carried out with real
//! signed entries through frames: it checks that the messages suffice and that both sides end
//! with the same set in one and a half round trips.

use std::collections::BTreeMap;

use super::{
    codec::{CompactEntry, Message},
    fingerprint::{Fingerprint, ItemHash},
    frame::{encode_frame, FrameDecoder, MAX_ITEMS_PER_FRAME},
    riblt::{Decoder, Encoder, Hasher, Limits},
    tags::ConnectionKey,
};
use crate::{
    entry::{Record, SignedEntry},
    hash::{Hash, PeerId},
    keys::{Author, AuthorId, NamespaceSecret},
    ranger::ContentStatus,
};

/// One side's document: entries by item hash.
type Doc = BTreeMap<ItemHash, SignedEntry>;

fn doc(entries: impl IntoIterator<Item = SignedEntry>) -> Doc {
    entries
        .into_iter()
        .map(|e| (ItemHash::of_entry(e.entry()), e))
        .collect()
}

fn fingerprint(d: &Doc) -> Fingerprint {
    Fingerprint::of_items(d.keys())
}

/// Encodes messages as one byte stream.
fn stream(msgs: &[Message]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        encode_frame(m, &mut out).unwrap();
    }
    out
}

/// Decodes a byte stream fed in 1000-byte chunks.
fn read(bytes: &[u8]) -> Vec<Message> {
    let mut d = FrameDecoder::new();
    let mut out = Vec::new();
    for c in bytes.chunks(1000) {
        d.feed(c).unwrap();
        while let Some(m) = d.next_message().unwrap() {
            out.push(m);
        }
    }
    d.finish().unwrap();
    out
}

/// The author dictionary of one direction: ids in order of definition.
#[derive(Default)]
struct Dictionary(Vec<AuthorId>);

impl Dictionary {
    /// The index of `id`, defining it (and queuing an `Authors` frame) if new.
    fn index(&mut self, id: AuthorId, control: &mut Vec<Message>) -> u32 {
        if let Some(i) = self.0.iter().position(|a| *a == id) {
            return i as u32;
        }
        self.0.push(id);
        control.push(Message::Authors {
            first: self.0.len() as u32 - 1,
            ids: vec![id],
        });
        self.0.len() as u32 - 1
    }
}

fn learn(dict: &mut Vec<AuthorId>, control: &[Message]) {
    for m in control {
        if let Message::Authors { first, ids } = m {
            assert_eq!(*first as usize, dict.len(), "definitions are contiguous");
            dict.extend_from_slice(ids);
        }
    }
}

/// Inserts received entries after checking their signatures.
fn receive(doc: &mut Doc, msgs: &[Message], ns: &NamespaceSecret, dict: &[AuthorId]) -> usize {
    let mut n = 0;
    for m in msgs {
        if let Message::Entries { entries } = m {
            for c in entries {
                let e = c.to_signed(ns.id(), dict[c.author as usize]);
                e.verify().expect("entries arrive intact");
                doc.insert(ItemHash::of_entry(e.entry()), e);
                n += 1;
            }
        }
    }
    n
}

#[test]
fn small_difference_in_one_and_a_half_round_trips() {
    let ns = NamespaceSecret::from_bytes(&[0xb2; 32]);
    let authors: Vec<Author> = (1..=3u8).map(|i| Author::from_bytes(&[i; 32])).collect();
    let entry = |i: u64| {
        SignedEntry::new(
            &ns,
            &authors[(i % 3) as usize],
            format!("key/{i}").as_bytes(),
            Record::new(Hash::new(i.to_be_bytes()), 8, 1_700_000_000_000_000 + i),
        )
    };
    let mut opener = doc((0..200).chain(200..230).map(entry));
    let mut responder = doc((0..200).chain(300..340).map(entry));
    let key = ConnectionKey::derive(
        &[1; 32],
        &PeerId::from_bytes([0x11; 32]),
        &PeerId::from_bytes([0x22; 32]),
    );
    let hasher = Hasher::new(key.riblt_key());

    // Flight 1, opener → responder: DocOpen and the first 256 symbols.
    let mut enc = Encoder::new(&hasher, opener.keys().map(|i| i.0));
    let flight1 = stream(&[
        Message::DocOpen {
            tag: key.namespace_tag(&ns.id()),
            fingerprint: fingerprint(&opener),
            unasked: 256,
        },
        Message::Symbols {
            start: 0,
            symbols: enc.next_symbols(256),
        },
    ]);

    // Flight 2, responder → opener: Authors (control), Entries + Wants + DocDone (document).
    let msgs = read(&flight1);
    let Message::DocOpen {
        tag,
        fingerprint: their_fp,
        unasked: 256,
    } = &msgs[0]
    else {
        panic!("DocOpen first")
    };
    assert_eq!(*tag, key.namespace_tag(&ns.id()));
    assert_eq!(their_fp.count(), 230);
    let mut dec = Decoder::new(
        hasher.clone(),
        Limits::default(),
        responder.keys().map(|i| i.0),
    );
    for m in &msgs[1..] {
        let Message::Symbols { start, symbols } = m else {
            panic!("Symbols after DocOpen")
        };
        dec.add_symbols(*start, symbols).unwrap();
    }
    assert!(dec.is_done(), "70 differences decode from 256 symbols");
    let wants: Vec<[u8; 32]> = dec.remote_only().copied().collect();
    assert_eq!(wants.len(), 30);
    let (mut r_control, mut r_dict) = (Vec::new(), Dictionary::default());
    let entries: Vec<CompactEntry> = dec
        .local_only()
        .map(|item| {
            let e = &responder[&ItemHash(*item)];
            let a = r_dict.index(e.author(), &mut r_control);
            CompactEntry::from_signed(e, a, ContentStatus::Complete)
        })
        .collect();
    assert_eq!(entries.len(), 40);
    assert!(wants.len() <= MAX_ITEMS_PER_FRAME);
    let flight2_control = stream(&r_control);
    let flight2 = stream(&[
        Message::Entries { entries },
        Message::Wants { hashes: wants },
        Message::DocDone,
    ]);

    // Flight 3, opener → responder: the wanted entries and DocDone.
    let mut from_responder = Vec::new();
    learn(&mut from_responder, &read(&flight2_control));
    let msgs = read(&flight2);
    assert_eq!(receive(&mut opener, &msgs, &ns, &from_responder), 40);
    let (mut o_control, mut o_dict) = (Vec::new(), Dictionary::default());
    let mut reply = Vec::new();
    for m in &msgs {
        if let Message::Wants { hashes } = m {
            for h in hashes {
                let e = &opener[&ItemHash(*h)];
                let a = o_dict.index(e.author(), &mut o_control);
                reply.push(CompactEntry::from_signed(e, a, ContentStatus::Complete));
            }
        }
    }
    assert_eq!(msgs.last(), Some(&Message::DocDone));
    let flight3_control = stream(&o_control);
    let flight3 = stream(&[Message::Entries { entries: reply }, Message::DocDone]);

    let mut from_opener = Vec::new();
    learn(&mut from_opener, &read(&flight3_control));
    assert_eq!(
        receive(&mut responder, &read(&flight3), &ns, &from_opener),
        30
    );
    assert_eq!(opener.len(), 270);
    assert_eq!(fingerprint(&opener), fingerprint(&responder));
    assert_eq!(
        opener.keys().collect::<Vec<_>>(),
        responder.keys().collect::<Vec<_>>()
    );
}
