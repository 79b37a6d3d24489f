//! Golden vectors recorded from iroh-docs (its snapshot test and real sync frames).

use super::*;
use crate::{
    entry::{Entry, Record, RecordIdentifier, SignedEntry},
    hash::{Hash, PeerId},
    keys::{Author, Capability, NamespaceSecret},
    ranger::{
        ContentStatus, Fingerprint, Message, MessagePart, Range, RangeFingerprint, RangeItem,
    },
};

const NS_HEX: &str = "55154f42065ea5a1bea05463826be2684eb92df92c100027aabaae57ca554207";

fn keys() -> (NamespaceSecret, Author) {
    (
        NamespaceSecret::from_bytes(&[0xb2; 32]),
        Author::from_bytes(&[0xa1; 32]),
    )
}

fn entry(key: &[u8], value: &[u8], ts: u64) -> SignedEntry {
    let (ns, author) = keys();
    SignedEntry::new(
        &ns,
        &author,
        key,
        Record::new(Hash::new(value), value.len() as u64, ts),
    )
}

const TS: u64 = 1_700_000_000_000_000;

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

#[test]
fn signed_entry_snapshot() {
    let (ns, author) = keys();
    let e = SignedEntry::new(&ns, &author, b"wire-format-test", Record::empty(TS));
    let expected = "4b523f1b6d9b00a4779fc9f8f105a9e36f062ceb7d511b632905782042ad30acb6dd07bfced4ecd5f3aa58321e8ace63f48f988ed8461bfdcd8b0e902187a10e228ddc6998329b7faa64875fe80da36406ea8d87e3e57bb048323e9cb66c0b343b60c4e709fb978b878e37d0c362edfc06c8cdc774c8b29d94e48eaa06cca60f5055154f42065ea5a1bea05463826be2684eb92df92c100027aabaae57ca554207bc7cbcb5636375fa1d82434d466724d92377f53b980695dd49d26d0ce12205a5776972652d666f726d61742d7465737400af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f32628080f9c0c1c48203";
    assert_eq!(hex::encode(e.to_wire()), expected);
    let back = SignedEntry::from_wire(&unhex(expected)).unwrap();
    assert_eq!(back, e);
    assert_eq!(back.signature(), e.signature());
    back.verify().unwrap();
}

const ENTRY_A: &str = "b913dd2c6e2bfc5433f5d083b61ba38c03d92406a880d06006ea04eef6a6732c82acf4917e5bca6474e70e1274da227b1524eb72f44444abbf1dab8a843422070a28869f785d227e3e9be7d0c37dd42a4d521f6afb5725ca432011831cb009958ae9664b76b7b647c6561e7c457bbe5d307c6ebf56339be2e25883fa28f3ef054155154f42065ea5a1bea05463826be2684eb92df92c100027aabaae57ca554207bc7cbcb5636375fa1d82434d466724d92377f53b980695dd49d26d0ce12205a56102369bcc9aa5411e140f4cd49208a4436bd0c55e916cd7376e0a6ab84c6578aa288080f9c0c1c48203";

#[test]
fn entry_a_and_fingerprints() {
    let a = entry(b"a", b"va", TS);
    assert_eq!(hex::encode(a.to_wire()), ENTRY_A);
    assert_eq!(
        a.fingerprint().to_string(),
        "130bb0fc9acec5ad989f1cfb49969566285f9e13eafd52a69f16858ca74dcbbd"
    );
    assert_eq!(
        Fingerprint::empty().xor(&a.fingerprint()).to_string(),
        "bc18f9456f37640b38df51117f4a5c2fb394bbda473c4011538c16464352f9df"
    );
    assert_eq!(
        Fingerprint::EMPTY.to_string(),
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    );
}

fn frame(msg: &SyncMessage) -> String {
    let mut out = Vec::new();
    encode_frame(msg, DEFAULT_MAX_FRAME_LEN, &mut out).unwrap();
    hex::encode(out)
}

fn decode_frame(hex_frame: &str) -> SyncMessage {
    let mut d = FrameDecoder::default();
    d.feed(&unhex(hex_frame)).unwrap();
    let msg = d.next_message().unwrap().unwrap();
    assert_eq!(d.buffered(), 0);
    msg
}

#[test]
fn transcript_frames() {
    let (ns, author) = keys();
    let a = entry(b"a", b"va", TS);
    let b = entry(b"b", b"vb", TS + 1);
    let id_a = RecordIdentifier::new(ns.id(), author.id(), b"a");
    let range_a = Range::new(id_a.clone(), id_a.clone());

    let init_empty = SyncMessage::Init {
        namespace: ns.id(),
        message: Message::new(vec![MessagePart::RangeFingerprint(RangeFingerprint {
            range: Range::new(RecordIdentifier::zero(), RecordIdentifier::zero()),
            fingerprint: Fingerprint::EMPTY,
        })]),
    };
    let init_empty_hex = format!(
        "000000c500{NS_HEX}010040{z}40{z}af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
        z = "00".repeat(64)
    );
    assert_eq!(frame(&init_empty), init_empty_hex);
    assert_eq!(decode_frame(&init_empty_hex), init_empty);

    let t0 = SyncMessage::Init {
        namespace: ns.id(),
        message: Message::new(vec![MessagePart::RangeFingerprint(RangeFingerprint {
            range: range_a.clone(),
            fingerprint: Fingerprint::EMPTY.xor(&a.fingerprint()),
        })]),
    };
    let t0_hex = "000000c70055154f42065ea5a1bea05463826be2684eb92df92c100027aabaae57ca55420701004155154f42065ea5a1bea05463826be2684eb92df92c100027aabaae57ca554207bc7cbcb5636375fa1d82434d466724d92377f53b980695dd49d26d0ce12205a5614155154f42065ea5a1bea05463826be2684eb92df92c100027aabaae57ca554207bc7cbcb5636375fa1d82434d466724d92377f53b980695dd49d26d0ce12205a561bc18f9456f37640b38df51117f4a5c2fb394bbda473c4011538c16464352f9df";
    assert_eq!(frame(&t0), t0_hex);
    assert_eq!(decode_frame(t0_hex), t0);

    let t1 = SyncMessage::Sync(Message::new(vec![MessagePart::RangeItem(RangeItem {
        range: range_a.clone(),
        values: vec![(b.clone(), ContentStatus::Missing)],
        have_local: false,
    })]));
    let t1_hex = "000001750101014155154f42065ea5a1bea05463826be2684eb92df92c100027aabaae57ca554207bc7cbcb5636375fa1d82434d466724d92377f53b980695dd49d26d0ce12205a5614155154f42065ea5a1bea05463826be2684eb92df92c100027aabaae57ca554207bc7cbcb5636375fa1d82434d466724d92377f53b980695dd49d26d0ce12205a5610180289db43a2848282e8318765a5e7cbd406439ef2d8f93ef0b9642120be477ec034a4f22e4b03a60b4fdfd6bd536c87c83053a807e4d0c78aa954f931bccd508964784336ed54cb821a3ac1fd1abb2dc249ec8a6c98d1664a74f1a6dcf3c99d9076bfabda37aa43a4c7593472aa11262ee08711542a98df72b68bd62e4c76e0f4155154f42065ea5a1bea05463826be2684eb92df92c100027aabaae57ca554207bc7cbcb5636375fa1d82434d466724d92377f53b980695dd49d26d0ce12205a56202ab266ef054045456f1818e51af3546d15ac75142a9f82a0efc87fb41e95832e08180f9c0c1c482030200";
    assert_eq!(frame(&t1), t1_hex);
    assert_eq!(decode_frame(t1_hex), t1);

    let t2 = SyncMessage::Sync(Message::new(vec![MessagePart::RangeItem(RangeItem {
        range: range_a,
        values: vec![(a.clone(), ContentStatus::Missing)],
        have_local: true,
    })]));
    let t2_hex = format!("000001750101014155154f42065ea5a1bea05463826be2684eb92df92c100027aabaae57ca554207bc7cbcb5636375fa1d82434d466724d92377f53b980695dd49d26d0ce12205a5614155154f42065ea5a1bea05463826be2684eb92df92c100027aabaae57ca554207bc7cbcb5636375fa1d82434d466724d92377f53b980695dd49d26d0ce12205a56101{ENTRY_A}0201");
    assert_eq!(frame(&t2), t2_hex);
    assert_eq!(decode_frame(&t2_hex), t2);
}

#[test]
fn abort_frames() {
    for (reason, hex_frame) in [
        (AbortReason::NotFound, "000000020200"),
        (AbortReason::AlreadySyncing, "000000020201"),
        (AbortReason::InternalServerError, "000000020202"),
    ] {
        let msg = SyncMessage::Abort { reason };
        assert_eq!(frame(&msg), hex_frame);
        assert_eq!(decode_frame(hex_frame), msg);
    }
}

#[test]
fn gossip_ops() {
    let a = entry(b"a", b"va", TS);
    assert_eq!(
        hex::encode(Op::Put(a.clone()).to_wire()),
        format!("00{ENTRY_A}")
    );
    let ready = Op::ContentReady(Hash::new(b"va"));
    assert_eq!(
        hex::encode(ready.to_wire()),
        "01369bcc9aa5411e140f4cd49208a4436bd0c55e916cd7376e0a6ab84c6578aa28"
    );
    let heads: AuthorHeads = [([1u8; 32].into(), 5), ([2u8; 32].into(), 300)]
        .into_iter()
        .collect();
    let heads_hex = format!("02ac02{}05{}", "02".repeat(32), "01".repeat(32));
    let encoded = heads.encode(Some(DEFAULT_HEADS_SIZE_LIMIT));
    assert_eq!(hex::encode(&encoded), heads_hex);
    assert_eq!(AuthorHeads::decode(&encoded).unwrap(), heads);
    let report = Op::SyncReport(SyncReport {
        namespace: keys().0.id(),
        heads: encoded,
    });
    assert_eq!(
        hex::encode(report.to_wire()),
        format!("02{NS_HEX}44{heads_hex}")
    );
    for op in [Op::Put(a), ready, report] {
        assert_eq!(Op::from_wire(&op.to_wire()).unwrap(), op);
    }
}

#[test]
fn heads_keep_authors_with_equal_timestamps() {
    // iroh-docs collapses these two into one author (its heads map is keyed by timestamp).
    let heads: AuthorHeads = [([1u8; 32].into(), 7), ([2u8; 32].into(), 7)]
        .into_iter()
        .collect();
    let decoded = AuthorHeads::decode(&heads.encode(None)).unwrap();
    assert_eq!(decoded.len(), 2);
    assert_eq!(decoded, heads);
}

#[test]
fn heads_truncate_oldest_first() {
    let start = TS;
    let heads: AuthorHeads = (0..10u64)
        .map(|i| ([i as u8; 32].into(), start + i))
        .collect();
    let encoded = heads.encode(Some(256));
    assert!(encoded.len() <= 256);
    let decoded = AuthorHeads::decode(&encoded).unwrap();
    // Each item is 8 + 32 bytes: six fit in 256.
    let expected: AuthorHeads = (4..10u64)
        .map(|i| ([i as u8; 32].into(), start + i))
        .collect();
    assert_eq!(decoded, expected);
    assert_eq!(heads.encode(Some(0)), vec![0]);
}

#[test]
fn heads_news() {
    let a: AuthorHeads = [([0u8; 32].into(), 5), ([1u8; 32].into(), 7)]
        .into_iter()
        .collect();
    let b: AuthorHeads = [
        ([0u8; 32].into(), 4),
        ([1u8; 32].into(), 6),
        ([2u8; 32].into(), 7),
    ]
    .into_iter()
    .collect();
    assert_eq!(a.has_news_for(&b).map(|n| n.get()), Some(2));
    assert_eq!(b.has_news_for(&a).map(|n| n.get()), Some(1));
    assert_eq!(a.has_news_for(&a), None);
}

const WRITE_TICKET: &str = "docaaacbmvswkzlfmvswkzlfmvswkzlfmvswkzlfmvswkzlfmvswkzlfmvsahievmrsoqv3jkz2cnul2rqv4ttnaiskw4nac25pquqkgmwjo6dtoaqadnuhi5dqom5c6l3smvwgc6jomv4gc3lqnrss433sm4xc6aiap4aaaaosbe";
const READ_TICKET: &str = "docaaavkfkpiidf5jnbx2qfiy4cnprgqtvzfx4syeaae6vlvlsxzjkuebyb2bflemtufo2kwoqtnc6umfpe43icesvxdiawxl4fecrtfslxq43qa";

#[test]
fn tickets() {
    let node_id = PeerId::from_bytes(NamespaceSecret::from_bytes(&[0x11; 32]).id().to_bytes());
    let mut node = NodeAddr::new(node_id).with_ip_addrs(["127.0.0.1:1234".parse().unwrap()]);
    node.addrs
        .insert(TransportAddr::Relay("https://relay.example.org./".into()));
    let write = DocTicket::new(Capability::Write(keys().0), vec![node]);
    assert_eq!(
        hex::encode(write.to_bytes()),
        format!(
            "000020{}01d04ab232742bb4ab3a1368bd4615e4e6d0224ab71a016baf8520a332c9778737\
             0200 1b68747470733a2f2f72656c61792e6578616d706c652e6f72672e2f01007f000001d209",
            "b2".repeat(32)
        )
        .replace(' ', "")
    );
    assert_eq!(write.to_string(), WRITE_TICKET);
    assert_eq!(WRITE_TICKET.parse::<DocTicket>().unwrap(), write);

    let read = DocTicket::new(
        Capability::Read(keys().0.id()),
        vec![NodeAddr::new(node_id)],
    );
    assert_eq!(read.to_string(), READ_TICKET);
    assert_eq!(READ_TICKET.parse::<DocTicket>().unwrap(), read);

    let empty = DocTicket::new(Capability::Read(keys().0.id()), vec![]);
    assert_eq!(
        empty.to_string().parse::<DocTicket>(),
        Err(TicketError::NoNodes)
    );
    assert_eq!("xyz".parse::<DocTicket>(), Err(TicketError::Kind));
    assert_eq!("doc!!".parse::<DocTicket>(), Err(TicketError::Base32));
}

#[test]
fn invalid_node_id_in_ticket_is_rejected() {
    // Find 32 bytes that are not a valid ed25519 point.
    let bad = (0u8..=255)
        .map(|i| PeerId::from_bytes([i; 32]))
        .find(|p| !p.is_valid_key())
        .expect("some constant byte array is not a point");
    let t = DocTicket::new(Capability::Read(keys().0.id()), vec![NodeAddr::new(bad)]);
    assert_eq!(
        DocTicket::from_bytes(&t.to_bytes()),
        Err(TicketError::Decode(DecodeError::InvalidPublicKey(
            "node id"
        )))
    );
}

#[test]
fn short_record_ids_and_trailing_bytes_are_typed_errors() {
    let short = Entry::new(RecordIdentifier::zero(), Record::empty(1));
    let mut bytes = short.to_wire();
    bytes[0] = 10; // claims a 10-byte identifier
    assert_eq!(
        Entry::from_wire(&bytes),
        Err(DecodeError::ShortRecordId(10))
    );
    let mut good = short.to_wire();
    good.push(0);
    assert_eq!(Entry::from_wire(&good), Err(DecodeError::TrailingBytes(1)));
    assert_eq!(
        SyncMessage::from_wire(&[9]),
        Err(DecodeError::UnknownVariant {
            ty: "SyncMessage",
            tag: 9
        })
    );
    assert_eq!(SyncMessage::from_wire(&[]), Err(DecodeError::UnexpectedEnd));
}
