//! Properties of the v2 codec: round trips, canonical and total decoding, chunked framing.

use quickcheck::{Arbitrary, Gen, QuickCheck};

use super::{
    codec::{AbortCode, Bound, CompactEntry, Message, Part, PartMode},
    fingerprint::{Fingerprint, RangeDigest},
    frame::{encode_frame, FrameDecoder, FrameError},
    riblt::CodedSymbol,
};
use crate::{
    entry::{EntrySignature, Record},
    hash::Hash,
    keys::AuthorId,
    ranger::ContentStatus,
};

fn arr<const N: usize>(g: &mut Gen) -> [u8; N] {
    std::array::from_fn(|_| u8::arbitrary(g))
}

/// Integers of every varint length, not only small ones.
fn int(g: &mut Gen) -> u64 {
    let bits = u32::arbitrary(g) % 65;
    u64::arbitrary(g).checked_shr(64 - bits).unwrap_or(0)
}

fn small_vec<T>(g: &mut Gen, max: usize, f: impl Fn(&mut Gen) -> T) -> Vec<T> {
    let n = usize::arbitrary(g) % (max + 1);
    (0..n).map(|_| f(g)).collect()
}

fn fingerprint(g: &mut Gen) -> Fingerprint {
    Fingerprint::from_parts(arr(g), int(g))
}

fn compact_entry(g: &mut Gen) -> CompactEntry {
    CompactEntry {
        author: int(g) as u32,
        key: small_vec(g, 20, u8::arbitrary),
        record: Record::new(Hash::from_bytes(arr(g)), int(g), int(g)),
        status: *g
            .choose(&[
                ContentStatus::Complete,
                ContentStatus::Incomplete,
                ContentStatus::Missing,
            ])
            .unwrap(),
        signature: EntrySignature::from_bytes(arr(g), arr(g)),
    }
}

fn part(g: &mut Gen) -> Part {
    let upper = if bool::arbitrary(g) {
        Bound::End
    } else {
        Bound::Key {
            author: int(g) as u32,
            key: small_vec(g, 10, u8::arbitrary),
        }
    };
    let mode = match u8::arbitrary(g) % 3 {
        0 => PartMode::Skip,
        1 => PartMode::Fingerprint(RangeDigest {
            tag: arr(g),
            count: int(g),
        }),
        _ => PartMode::Hashes(small_vec(g, 4, arr)),
    };
    Part { upper, mode }
}

impl Arbitrary for Message {
    fn arbitrary(g: &mut Gen) -> Self {
        match u8::arbitrary(g) % 14 {
            0 => Message::Hello {
                nonce: arr(g),
                max_streams: int(g) as u32,
                doc_count: int(g),
            },
            1 => Message::HelloAck {
                max_streams: int(g) as u32,
            },
            2 => Message::Symbols {
                start: int(g),
                symbols: small_vec(g, 5, |g| CodedSymbol {
                    sum: arr(g),
                    checksum: u64::arbitrary(g),
                    count: int(g) >> 1,
                }),
            },
            3 => Message::MoreSymbols { until: int(g) },
            4 => Message::SendList,
            5 => Message::ItemList {
                last: bool::arbitrary(g),
                items: small_vec(g, 5, arr),
            },
            6 => Message::Differing { count: int(g) },
            7 => Message::Authors {
                first: int(g) as u32,
                ids: small_vec(g, 4, |g| AuthorId::from(arr::<32>(g))),
            },
            8 => Message::Abort {
                code: AbortCode::from_u32(int(g) as u32),
            },
            9 => Message::DocOpen {
                tag: arr(g),
                fingerprint: fingerprint(g),
                unasked: int(g),
            },
            10 => Message::Ranges {
                parts: small_vec(g, 6, part),
            },
            11 => Message::Wants {
                hashes: small_vec(g, 5, arr),
            },
            12 => Message::Entries {
                entries: small_vec(g, 3, compact_entry),
            },
            _ => Message::DocDone,
        }
    }
}

#[test]
fn prop_round_trip() {
    fn prop(m: Message) -> bool {
        let payload = m.to_payload();
        let mut frame = Vec::new();
        encode_frame(&m, &mut frame).unwrap();
        Message::decode(&payload) == Ok(m.clone())
            && frame[2..] == payload[..]
            && usize::from(u16::from_be_bytes([frame[0], frame[1]])) == payload.len()
    }
    QuickCheck::new()
        .tests(2000)
        .quickcheck(prop as fn(Message) -> bool);
}

/// Any bytes: decoding never panics, and whatever decodes re-encodes to the same bytes.
#[test]
fn prop_total_and_canonical() {
    fn prop(bytes: Vec<u8>, ty: u8) -> bool {
        let mut p = vec![ty % 0x16];
        p.extend_from_slice(&bytes);
        match Message::decode(&p) {
            Ok(m) => m.to_payload() == p,
            Err(_) => true,
        }
    }
    QuickCheck::new()
        .tests(5000)
        .quickcheck(prop as fn(Vec<u8>, u8) -> bool);
}

/// Mutating one byte of a valid message gives an error or another canonical message.
#[test]
fn prop_mutations_stay_canonical() {
    fn prop(m: Message, at: usize, byte: u8) -> bool {
        let mut p = m.to_payload();
        let i = at % p.len();
        p[i] = byte;
        match Message::decode(&p) {
            Ok(m2) => m2.to_payload() == p,
            Err(_) => true,
        }
    }
    QuickCheck::new()
        .tests(3000)
        .quickcheck(prop as fn(Message, usize, u8) -> bool);
}

/// A stream of frames decodes the same in any chunking, and truncating it is detected.
#[test]
fn prop_chunked_stream() {
    fn prop(msgs: Vec<Message>, chunk: u8) -> bool {
        let mut stream = Vec::new();
        for m in &msgs {
            encode_frame(m, &mut stream).unwrap();
        }
        let mut d = FrameDecoder::new();
        let mut got = Vec::new();
        for c in stream.chunks(usize::from(chunk).max(1)) {
            d.feed(c).unwrap();
            while let Some(m) = d.next_message().unwrap() {
                got.push(m);
            }
            if d.capacity() > 2 * stream.len() + 64 {
                return false;
            }
        }
        let truncated_ok = stream.is_empty() || {
            let mut t = FrameDecoder::new();
            t.feed(&stream[..stream.len() - 1]).unwrap();
            while let Ok(Some(_)) = t.next_message() {}
            matches!(t.finish(), Err(FrameError::Truncated(_)))
        };
        got == msgs && d.finish().is_ok() && truncated_ok
    }
    QuickCheck::new()
        .tests(500)
        .quickcheck(prop as fn(Vec<Message>, u8) -> bool);
}
