//! Properties of the codecs: round trips, total decoding, chunking-independent framing.

use std::{
    collections::BTreeSet,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6},
};

use quickcheck::{Arbitrary, Gen, QuickCheck};

use super::*;
use crate::{
    entry::{Entry, EntrySignature, Record, RecordIdentifier, SignedEntry},
    hash::{Hash, PeerId},
    keys::{Capability, NamespaceId, NamespaceSecret},
    ranger::{
        ContentStatus, Fingerprint, Message, MessagePart, Range, RangeFingerprint, RangeItem,
    },
};

fn bytes32(g: &mut Gen) -> [u8; 32] {
    // A handful of distinct values so equal namespaces and authors do occur.
    let pick = u8::arbitrary(g) % 4;
    if bool::arbitrary(g) {
        [pick; 32]
    } else {
        std::array::from_fn(|_| u8::arbitrary(g))
    }
}

fn small_bytes(g: &mut Gen, max: usize) -> Vec<u8> {
    let len = usize::arbitrary(g) % (max + 1);
    (0..len).map(|_| u8::arbitrary(g)).collect()
}

impl Arbitrary for RecordIdentifier {
    fn arbitrary(g: &mut Gen) -> Self {
        RecordIdentifier::new(bytes32(g).into(), bytes32(g).into(), small_bytes(g, 40))
    }
}

impl Arbitrary for Record {
    fn arbitrary(g: &mut Gen) -> Self {
        Record::new(
            Hash::from_bytes(bytes32(g)),
            u64::arbitrary(g),
            u64::arbitrary(g),
        )
    }
}

impl Arbitrary for SignedEntry {
    fn arbitrary(g: &mut Gen) -> Self {
        let sig = EntrySignature::from_bytes(
            std::array::from_fn(|_| u8::arbitrary(g)),
            std::array::from_fn(|_| u8::arbitrary(g)),
        );
        SignedEntry::from_parts(
            sig,
            Entry::new(RecordIdentifier::arbitrary(g), Record::arbitrary(g)),
        )
    }
}

impl Arbitrary for ContentStatus {
    fn arbitrary(g: &mut Gen) -> Self {
        *g.choose(&[
            ContentStatus::Complete,
            ContentStatus::Incomplete,
            ContentStatus::Missing,
        ])
        .unwrap()
    }
}

impl Arbitrary for MessagePart {
    fn arbitrary(g: &mut Gen) -> Self {
        let range = Range::new(
            RecordIdentifier::arbitrary(g),
            RecordIdentifier::arbitrary(g),
        );
        if bool::arbitrary(g) {
            MessagePart::RangeFingerprint(RangeFingerprint {
                range,
                fingerprint: Fingerprint(bytes32(g)),
            })
        } else {
            let n = usize::arbitrary(g) % 4;
            MessagePart::RangeItem(RangeItem {
                range,
                values: (0..n).map(|_| Arbitrary::arbitrary(g)).collect(),
                have_local: bool::arbitrary(g),
            })
        }
    }
}

impl Arbitrary for Message {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = usize::arbitrary(g) % 4;
        Message::new((0..n).map(|_| MessagePart::arbitrary(g)).collect())
    }
}

impl Arbitrary for AbortReason {
    fn arbitrary(g: &mut Gen) -> Self {
        *g.choose(&[
            AbortReason::NotFound,
            AbortReason::AlreadySyncing,
            AbortReason::InternalServerError,
        ])
        .unwrap()
    }
}

impl Arbitrary for SyncMessage {
    fn arbitrary(g: &mut Gen) -> Self {
        match u8::arbitrary(g) % 3 {
            0 => SyncMessage::Init {
                namespace: NamespaceId::from_bytes(bytes32(g)),
                message: Message::arbitrary(g),
            },
            1 => SyncMessage::Sync(Message::arbitrary(g)),
            _ => SyncMessage::Abort {
                reason: AbortReason::arbitrary(g),
            },
        }
    }
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Self {
        match u8::arbitrary(g) % 3 {
            0 => Op::Put(SignedEntry::arbitrary(g)),
            1 => Op::ContentReady(Hash::from_bytes(bytes32(g))),
            _ => Op::SyncReport(SyncReport {
                namespace: NamespaceId::from_bytes(bytes32(g)),
                heads: small_bytes(g, 100),
            }),
        }
    }
}

impl Arbitrary for Capability {
    fn arbitrary(g: &mut Gen) -> Self {
        if bool::arbitrary(g) {
            Capability::Write(NamespaceSecret::from_bytes(&bytes32(g)))
        } else {
            Capability::Read(NamespaceId::from_bytes(bytes32(g)))
        }
    }
}

impl Arbitrary for TransportAddr {
    fn arbitrary(g: &mut Gen) -> Self {
        match u8::arbitrary(g) % 4 {
            0 => TransportAddr::Relay(format!("https://relay{}.example/", u8::arbitrary(g))),
            1 => TransportAddr::Ip(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::arbitrary(g)),
                u16::arbitrary(g),
            ))),
            2 => TransportAddr::Ip(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(u128::arbitrary(g)),
                u16::arbitrary(g),
                0,
                0,
            ))),
            _ => TransportAddr::Custom {
                id: u64::arbitrary(g),
                data: small_bytes(g, 40),
            },
        }
    }
}

impl Arbitrary for NodeAddr {
    fn arbitrary(g: &mut Gen) -> Self {
        let secret = NamespaceSecret::from_bytes(&bytes32(g));
        let n = usize::arbitrary(g) % 4;
        NodeAddr {
            id: PeerId::from_bytes(secret.id().to_bytes()),
            addrs: (0..n)
                .map(|_| TransportAddr::arbitrary(g))
                .collect::<BTreeSet<_>>(),
        }
    }
}

impl Arbitrary for DocTicket {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = 1 + usize::arbitrary(g) % 3;
        DocTicket::new(
            Capability::arbitrary(g),
            (0..n).map(|_| NodeAddr::arbitrary(g)).collect(),
        )
    }
}

fn qc() -> QuickCheck {
    QuickCheck::new().tests(300).rng(Gen::new(40))
}

fn round_trips<T: Encode + Decode + PartialEq + std::fmt::Debug>(v: T) -> bool {
    T::from_wire(&v.to_wire()).as_ref() == Ok(&v)
}

#[test]
fn round_trip_every_wire_type() {
    qc().quickcheck(round_trips::<SignedEntry> as fn(SignedEntry) -> bool);
    qc().quickcheck(round_trips::<SyncMessage> as fn(SyncMessage) -> bool);
    qc().quickcheck(round_trips::<Op> as fn(Op) -> bool);
    qc().quickcheck(round_trips::<Capability> as fn(Capability) -> bool);
    qc().quickcheck(round_trips::<NodeAddr> as fn(NodeAddr) -> bool);
    fn ticket(t: DocTicket) -> bool {
        DocTicket::from_bytes(&t.to_bytes()).as_ref() == Ok(&t)
            && t.to_string().parse::<DocTicket>().as_ref() == Ok(&t)
    }
    qc().quickcheck(ticket as fn(DocTicket) -> bool);
    fn heads(items: Vec<(u8, u64)>) -> bool {
        let h: AuthorHeads = items
            .into_iter()
            .map(|(a, t)| ([a; 32].into(), t))
            .collect();
        AuthorHeads::decode(&h.encode(None)).as_ref() == Ok(&h)
    }
    qc().quickcheck(heads as fn(Vec<(u8, u64)>) -> bool);
}

/// Decoding arbitrary bytes never panics, and whatever decodes re-encodes to a value that
/// decodes to itself.
fn total<T: Encode + Decode + PartialEq + std::fmt::Debug>(bytes: &[u8]) -> bool {
    match T::from_wire(bytes) {
        Ok(v) => T::from_wire(&v.to_wire()).as_ref() == Ok(&v),
        Err(_) => true,
    }
}

#[test]
fn decoding_arbitrary_bytes_is_total() {
    fn all(bytes: Vec<u8>) -> bool {
        // These two have no Encode impl; they only must not panic.
        let _ = DocTicket::from_bytes(&bytes);
        let _ = AuthorHeads::decode(&bytes);
        total::<SyncMessage>(&bytes)
            && total::<Op>(&bytes)
            && total::<SignedEntry>(&bytes)
            && total::<Capability>(&bytes)
            && total::<NodeAddr>(&bytes)
    }
    qc().tests(2000).quickcheck(all as fn(Vec<u8>) -> bool);
}

#[test]
fn mutated_valid_encodings_decode_totally() {
    fn mutate(msg: SyncMessage, flips: Vec<(usize, u8)>, cut: usize) -> bool {
        let mut bytes = msg.to_wire();
        for (i, b) in flips {
            if !bytes.is_empty() {
                let n = bytes.len();
                bytes[i % n] ^= b;
            }
        }
        bytes.truncate(bytes.len().saturating_sub(cut % 8));
        total::<SyncMessage>(&bytes)
    }
    qc().tests(1000)
        .quickcheck(mutate as fn(SyncMessage, Vec<(usize, u8)>, usize) -> bool);
}

/// Decodes everything in `stream` fed in `chunks` (sizes cycle; 0 means 1).
fn decode_chunked(
    stream: &[u8],
    chunks: &[usize],
    max: u32,
) -> Vec<Result<SyncMessage, FrameError>> {
    let mut d = FrameDecoder::new(max);
    let mut out = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < stream.len() {
        let size = chunks
            .get(i % chunks.len().max(1))
            .copied()
            .unwrap_or(stream.len())
            .max(1);
        let end = (pos + size).min(stream.len());
        if d.feed(&stream[pos..end]).is_err() {
            break;
        }
        pos = end;
        i += 1;
        loop {
            match d.next_message() {
                Ok(Some(m)) => out.push(Ok(m)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
    }
    if let Err(e) = d.finish() {
        out.push(Err(e));
    }
    out
}

#[test]
fn chunking_does_not_change_decoded_frames() {
    fn prop(msgs: Vec<SyncMessage>, garbage: Vec<u8>, chunks: Vec<usize>) -> bool {
        let mut stream = Vec::new();
        for m in &msgs {
            encode_frame(m, DEFAULT_MAX_FRAME_LEN, &mut stream).unwrap();
        }
        let clean_len = stream.len();
        let one_shot = decode_chunked(&stream, &[], DEFAULT_MAX_FRAME_LEN);
        let expected: Vec<_> = msgs.iter().cloned().map(Ok).collect();
        if one_shot != expected {
            return false;
        }
        stream.extend_from_slice(&garbage);
        let chunks: Vec<usize> = chunks.into_iter().map(|c| c % 64).collect();
        let a = decode_chunked(&stream, &[], 1 << 20);
        let b = decode_chunked(&stream, &chunks, 1 << 20);
        a == b && stream.len() >= clean_len && a.len() >= msgs.len().min(a.len())
    }
    qc().tests(500)
        .quickcheck(prop as fn(Vec<SyncMessage>, Vec<u8>, Vec<usize>) -> bool);
}

#[test]
fn arbitrary_streams_decode_the_same_in_any_chunking() {
    fn prop(stream: Vec<u8>, chunks: Vec<usize>) -> bool {
        let chunks: Vec<usize> = chunks.into_iter().map(|c| c % 16).collect();
        decode_chunked(&stream, &[], 4096) == decode_chunked(&stream, &chunks, 4096)
    }
    qc().tests(2000)
        .quickcheck(prop as fn(Vec<u8>, Vec<usize>) -> bool);
}

#[test]
fn announced_giant_frame_allocates_only_what_arrives() {
    let mut d = FrameDecoder::default();
    let mut bytes = (DEFAULT_MAX_FRAME_LEN - 1).to_be_bytes().to_vec();
    bytes.extend_from_slice(&[1, 0, 0, 0]);
    d.feed(&bytes).unwrap();
    assert_eq!(d.next_message(), Ok(None));
    assert!(d.capacity() < 1024, "capacity {}", d.capacity());
    assert_eq!(d.finish(), Err(FrameError::Truncated(8)));
}

#[test]
fn oversized_frames_are_refused_on_both_ends() {
    let mut d = FrameDecoder::new(100);
    d.feed(&101u32.to_be_bytes()).unwrap();
    assert_eq!(
        d.next_message(),
        Err(FrameError::TooLarge { len: 101, max: 100 })
    );
    assert_eq!(d.feed(&[0]), Err(FrameError::Poisoned));
    let big = SyncMessage::Sync(Message::new(vec![MessagePart::RangeItem(RangeItem {
        range: Range::new(RecordIdentifier::zero(), RecordIdentifier::zero()),
        values: vec![],
        have_local: false,
    })]));
    let mut out = vec![7];
    assert!(matches!(
        encode_frame(&big, 10, &mut out),
        Err(FrameError::TooLarge { max: 10, .. })
    ));
    assert_eq!(out, vec![7], "a refused frame leaves the buffer as it was");
}

#[test]
fn garbage_frame_is_a_typed_error() {
    let mut d = FrameDecoder::default();
    d.feed(&[0, 0, 0, 2, 7, 7]).unwrap();
    assert_eq!(
        d.next_message(),
        Err(FrameError::Decode(DecodeError::UnknownVariant {
            ty: "SyncMessage",
            tag: 7
        }))
    );
    // Trailing bytes inside a frame are refused too.
    let mut d = FrameDecoder::default();
    d.feed(&[0, 0, 0, 3, 2, 0, 0]).unwrap();
    assert_eq!(
        d.next_message(),
        Err(FrameError::Decode(DecodeError::TrailingBytes(1)))
    );
}
