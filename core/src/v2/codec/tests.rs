//! Unit tests of the v2 codec primitives and its error cases.

use super::*;

#[test]
fn varints_are_minimal() {
    for (bytes, want) in [
        (&[0x00][..], Ok(0)),
        (&[0x7f], Ok(127)),
        (&[0x80, 0x01], Ok(128)),
        (&[0x80, 0x00], Err(V2DecodeError::NonMinimalVarint)),
        (&[0xff, 0x80, 0x00], Err(V2DecodeError::NonMinimalVarint)),
        (
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            Ok(u64::MAX),
        ),
        (
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
            Err(V2DecodeError::VarintOverflow("t")),
        ),
        (&[0x80; 11], Err(V2DecodeError::VarintOverflow("t"))),
        (&[0x80], Err(V2DecodeError::UnexpectedEnd)),
    ] {
        assert_eq!(Reader::new(bytes).varint("t"), want, "{bytes:02x?}");
        if let Ok(v) = want {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out, bytes);
        }
    }
}

#[test]
fn huge_counts_fail_before_allocating() {
    // Wants with a count of 2^62 in a 12-byte payload.
    let mut p = vec![0x12];
    put_varint(&mut p, 1 << 62);
    p.extend_from_slice(&[0; 3]);
    assert!(matches!(
        Message::decode(&p),
        Err(V2DecodeError::CountTooLarge { .. })
    ));
    // Entries claiming 2 entries in the bytes of one.
    let mut p = vec![0x13, 2];
    p.extend_from_slice(&[0; MIN_COMPACT_ENTRY_LEN]);
    assert!(matches!(
        Message::decode(&p),
        Err(V2DecodeError::CountTooLarge { .. })
    ));
}

#[test]
fn errors_are_typed() {
    assert_eq!(Message::decode(&[]), Err(V2DecodeError::UnexpectedEnd));
    assert_eq!(
        Message::decode(&[0x15]),
        Err(V2DecodeError::UnknownType(0x15))
    );
    assert_eq!(
        Message::decode(&[0x14, 0]),
        Err(V2DecodeError::TrailingBytes(1))
    );
    assert_eq!(
        Message::decode(&[0x06, 2, 0]),
        Err(V2DecodeError::UnknownTag {
            what: "bool",
            tag: 2
        })
    );
    assert_eq!(
        Message::decode(&[0x11, 1, 0, 3]),
        Err(V2DecodeError::UnknownTag {
            what: "part mode",
            tag: 3
        })
    );
    // A symbol count of 2^63.
    let mut p = vec![0x03, 0, 1];
    p.extend_from_slice(&[0; 40]);
    put_varint(&mut p, 1 << 63);
    assert_eq!(
        Message::decode(&p),
        Err(V2DecodeError::VarintOverflow("symbol count"))
    );
    // An author index above u32.
    let mut p = vec![0x08];
    put_varint(&mut p, 1 << 32);
    p.push(0);
    assert_eq!(
        Message::decode(&p),
        Err(V2DecodeError::VarintOverflow("author index"))
    );
}

#[test]
fn abort_codes_round_trip() {
    for n in 0..10 {
        assert_eq!(AbortCode::from_u32(n).to_u32(), n);
    }
}
