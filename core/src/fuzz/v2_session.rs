//! The `v2_sessions` target: v2 document and connection sessions driven by a hostile peer.
//!
//! Input format (missing bytes read as zeros; the run ends with the input):
//!
//! * byte 0: the document session's role (bit 0: opener or responder) and policy (leaf size,
//!   fanout, symbol batch, entry budget from the other bits);
//! * then messages, each `op ‖ body`: `op % 4 == 3` is a control message (`Hello`, `Symbols`,
//!   `ItemList`, `MoreSymbols`) for an [`Acceptor`] and a [`Dialer`]; otherwise the next byte
//!   `% 3` picks a document message: 0 a raw payload (`len u16 le ‖ bytes`, decoded with
//!   [`Message::decode`]; undecodable bytes are skipped), 1 `Entries` of properly signed
//!   entries (their authors defined in the dictionary first), 2 `Ranges` with bounds and modes
//!   from the data.
//!
//! Properties, after every message: the sessions never panic; every message they answer with
//! fits a frame; a document step sends at most the turn's entry budget plus the wanted items
//! answered; the store holds only entries that verify, are valid at the run's time, and are not
//! dominated by a prefix entry of their author; once a session fails it is not used again.

use super::Input;
use crate::{
    entry::{EntryLimits, Record, SignedEntry},
    hash::{Hash, PeerId},
    keys::{Author, NamespaceSecret},
    store::{put_prefix_aware, Indexed, MemBackend},
    time::{Mono, Now},
    v2::{
        codec::{Bound, CompactEntry, Message, Part, PartMode},
        conn::{Acceptor, ConnConfig, Dialer, Offer},
        dict::Dictionary,
        doc::{DocConfig, DocSession, DocStore, IndexedDoc, KeyRange},
        fingerprint::{Fingerprint, RangeDigest},
        frame::encode_frame,
        riblt::{CodedSymbol, Hasher},
    },
};

const T0: u64 = 1_700_000_000_000_000;
const MAX_MESSAGES: usize = 64;

fn secret() -> NamespaceSecret {
    NamespaceSecret::from_bytes(&[0xb2; 32])
}

fn author(i: u8) -> Author {
    Author::from_bytes(&[1 + i % 4; 32])
}

fn now() -> Now {
    Now::new(Mono(T0), T0 + 1_000_000)
}

fn fits(msgs: &[Message]) {
    for m in msgs {
        let mut buf = Vec::new();
        assert!(
            encode_frame(m, &mut buf).is_ok(),
            "a session answered with an oversized frame"
        );
    }
}

/// The store's invariants: entries verify, are valid, and no prefix entry of their author
/// dominates them.
fn check_store(store: &mut Indexed<MemBackend>) {
    let ns = secret().id();
    let mut doc = IndexedDoc::new(store, ns, EntryLimits::default(), now());
    let all = doc.entries(&KeyRange::all(), 0, usize::MAX).expect("read");
    for e in &all {
        assert!(
            e.verify().is_ok(),
            "an entry that does not verify was stored"
        );
        assert!(
            EntryLimits::default().check_remote(e, ns, now()).is_ok(),
            "an invalid entry was stored"
        );
        for p in &all {
            if p.author() == e.author()
                && p.key() != e.key()
                && e.key().starts_with(p.key())
                && p.record() >= e.record()
            {
                panic!("an entry dominated by a prefix entry was kept");
            }
        }
    }
    assert_eq!(
        doc.count(&KeyRange::all()).expect("count") as usize,
        all.len(),
        "index count and entries disagree"
    );
}

fn signed(inp: &mut Input<'_>) -> SignedEntry {
    let a = author(inp.u8());
    let n = usize::from(inp.u8() % 6);
    let key = inp.take(n).to_vec();
    let ts = T0 + u64::from(inp.u8());
    let record = if inp.u8().is_multiple_of(5) {
        Record::empty(ts)
    } else {
        let v = [inp.u8()];
        Record::new(Hash::new(v), 1, ts)
    };
    SignedEntry::new(&secret(), &a, &key, record)
}

fn bound(inp: &mut Input<'_>, dict: &mut Dictionary) -> Bound {
    if inp.u8().is_multiple_of(4) {
        return Bound::End;
    }
    let a = author(inp.u8()).id();
    let author = dict.index(&a).unwrap_or(0);
    let n = usize::from(inp.u8() % 4);
    Bound::Key {
        author,
        key: inp.take(n).to_vec(),
    }
}

/// The messages of one op, with any definitions they need delivered to `theirs` first.
fn message(
    inp: &mut Input<'_>,
    peer_dict: &mut Dictionary,
    ours: &mut Dictionary,
) -> Option<Message> {
    let op = inp.u8() % 3;
    let m = match op {
        0 => {
            let len = usize::from(inp.u16() % 2048);
            Message::decode(inp.take(len)).ok()?
        }
        1 => {
            let n = 1 + inp.u8() % 4;
            let entries = (0..n)
                .map(|_| {
                    let e = signed(inp);
                    let idx = peer_dict.index(&e.author()).unwrap_or(0);
                    CompactEntry::from_signed(&e, idx, crate::ranger::ContentStatus::Complete)
                })
                .collect();
            Message::Entries { entries }
        }
        _ => {
            let n = 1 + inp.u8() % 5;
            let parts = (0..n)
                .map(|i| Part {
                    upper: if i + 1 == n {
                        Bound::End
                    } else {
                        bound(inp, peer_dict)
                    },
                    mode: match inp.u8() % 3 {
                        0 => PartMode::Skip,
                        1 => PartMode::Fingerprint(RangeDigest {
                            tag: inp.array32()[..16].try_into().expect("16 bytes"),
                            count: u64::from(inp.u8() % 40),
                        }),
                        _ => PartMode::Hashes((0..inp.u8() % 4).map(|_| inp.array32()).collect()),
                    },
                })
                .collect();
            Message::Ranges { parts }
        }
    };
    for d in peer_dict.take_definitions() {
        if let Message::Authors { first, ids } = d {
            // A definition the session side rejects is skipped, like a closed connection.
            let _ = ours.define(first, &ids);
        }
    }
    Some(m)
}

fn control(inp: &mut Input<'_>) -> Message {
    match inp.u8() % 4 {
        0 => Message::Hello {
            nonce: inp.array32(),
            max_streams: u32::from(inp.u8()),
            doc_count: u64::from(inp.u16()),
        },
        1 => Message::Symbols {
            start: u64::from(inp.u8() % 8),
            symbols: (0..inp.u8() % 8)
                .map(|_| CodedSymbol {
                    sum: inp.array32(),
                    checksum: u64::from(inp.u16()),
                    count: u64::from(inp.u8() % 4),
                })
                .collect(),
        },
        2 => Message::ItemList {
            last: inp.u8().is_multiple_of(2),
            items: (0..inp.u8() % 4).map(|_| inp.array32()).collect(),
        },
        _ => Message::MoreSymbols {
            until: u64::from(inp.u16()),
        },
    }
}

/// Runs the target on `data`.
pub fn v2_sessions(data: &[u8]) {
    let mut inp = Input::new(data);
    let policy = inp.u8();
    let config = DocConfig {
        first_symbols: 1 + u64::from(policy >> 1 & 0x0f),
        unasked_symbols: u64::from(policy >> 3 & 0x1f),
        riblt_max_items: if policy & 0x20 == 0 { 16_384 } else { 0 },
        leaf: u64::from(policy >> 6),
        fanout: 2 + usize::from(policy >> 4 & 3),
        max_entries_per_turn: 1 + usize::from(policy >> 3 & 7),
        ..DocConfig::default()
    };
    let mut store = Indexed::new(MemBackend::new());
    for i in 0..6u8 {
        let e = SignedEntry::new(
            &secret(),
            &author(i),
            &[b'k', i % 3],
            Record::new(Hash::new([i]), 1, T0 + u64::from(i)),
        );
        put_prefix_aware(&mut store, e).expect("seed");
    }
    let hasher = Hasher::new([7; 32]);
    let mut dict = Dictionary::new();
    let mut peer_dict = Dictionary::new();
    let mut session = if policy & 1 == 0 {
        let mut doc = IndexedDoc::new(&mut store, secret().id(), EntryLimits::default(), now());
        let Ok((s, out)) = DocSession::open(config, hasher, [0; 16], &mut doc, &mut dict) else {
            return;
        };
        fits(&out);
        Some(s)
    } else {
        let mut s = DocSession::accept(config, hasher);
        let mut doc = IndexedDoc::new(&mut store, secret().id(), EntryLimits::default(), now());
        let open = Message::DocOpen {
            tag: [0; 16],
            fingerprint: Fingerprint::from_parts([1; 32], 3),
            unasked: u64::from(inp.u8() % 40),
        };
        match s.handle(&mut doc, &mut dict, open) {
            Ok(out) => fits(&out),
            Err(_) => return,
        }
        Some(s)
    };
    let cc = ConnConfig::default();
    let offers = [Offer {
        namespace: secret().id(),
        fingerprint: Fingerprint::default(),
    }];
    let mut acceptor = Some(Acceptor::new(
        cc,
        PeerId::from_bytes([2; 32]),
        PeerId::from_bytes([1; 32]),
        offers.to_vec(),
    ));
    let mut dialer = Dialer::new(
        cc,
        [3; 32],
        PeerId::from_bytes([1; 32]),
        PeerId::from_bytes([2; 32]),
        &offers,
    )
    .ok()
    .map(|(d, hello)| {
        fits(&hello);
        d
    });
    for _ in 0..MAX_MESSAGES {
        if inp.is_empty() {
            break;
        }
        if inp.u8() % 4 == 3 {
            let m = control(&mut inp);
            if let Some(a) = &mut acceptor {
                match a.handle(m.clone()) {
                    Ok(out) => fits(&out),
                    Err(_) => acceptor = None,
                }
                while a_poll(&mut acceptor) {}
            }
            if let Some(d) = &mut dialer {
                match d.handle(m) {
                    Ok(out) => fits(&out),
                    Err(_) => dialer = None,
                }
            }
            continue;
        }
        let Some(m) = message(&mut inp, &mut peer_dict, &mut dict) else {
            continue;
        };
        let Some(s) = &mut session else {
            continue;
        };
        if dict.is_missing_for(&m) {
            continue;
        }
        let before = s.stats().entries_sent;
        let wants = match &m {
            Message::Wants { hashes } => hashes.len() as u64,
            _ => 0,
        };
        let mut doc = IndexedDoc::new(&mut store, secret().id(), EntryLimits::default(), now());
        match s.handle(&mut doc, &mut dict, m) {
            Ok(out) => {
                fits(&out);
                let sent = s.stats().entries_sent - before;
                assert!(
                    sent <= config.max_entries_per_turn as u64 + wants + 64,
                    "a step sent {sent} entries"
                );
            }
            Err(_) => session = None,
        }
        check_store(&mut store);
    }
}

/// Opens what the acceptor would open (the streams are not run here).
fn a_poll(acceptor: &mut Option<Acceptor>) -> bool {
    acceptor.as_mut().is_some_and(|a| {
        if a.poll_open().is_some() {
            a.stream_ended();
            true
        } else {
            false
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_on_simple_inputs() {
        v2_sessions(&[]);
        v2_sessions(&[0, 1, 3, 2, 1, 0, 0, 5]);
        v2_sessions(&[1; 200]);
        let mut x = 7u32;
        for _ in 0..200 {
            let data: Vec<u8> = (0..400)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            v2_sessions(&data);
        }
    }
}
