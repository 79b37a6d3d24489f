//! The `decode_gossip` target: gossip [`Op`]s and [`AuthorHeads`].

use super::may_hold_non_minimal_varint;
use crate::wire::{AuthorHeads, Decode, Encode, Op, DEFAULT_HEADS_SIZE_LIMIT};

/// Checks the heads decoder on `bytes`.
fn check_heads(bytes: &[u8]) {
    let Ok(heads) = AuthorHeads::decode(bytes) else {
        return;
    };
    // The encoding re-sorts (newest first) and merges duplicate authors, so only the value
    // round-trips, and it never grows.
    let encoded = heads.encode(None);
    assert_eq!(AuthorHeads::decode(&encoded).as_ref(), Ok(&heads));
    assert_eq!(heads.encode(None), encoded, "encoding is deterministic");
    assert!(
        encoded.len() <= bytes.len(),
        "heads re-encode to {} bytes from {}",
        encoded.len(),
        bytes.len()
    );
    assert_eq!(heads.has_news_for(&heads), None);
    let mut merged = heads.clone();
    merged.merge(&heads);
    assert_eq!(merged, heads);

    // A size limit keeps the newest authors (by timestamp, then author id, descending) that fit.
    let limit = (bytes.len() / 2).min(DEFAULT_HEADS_SIZE_LIMIT);
    let cut = heads.encode(Some(limit));
    assert!(
        cut.len() <= limit.max(1),
        "{} bytes over limit {limit}",
        cut.len()
    );
    let kept = AuthorHeads::decode(&cut).expect("a limited encoding decodes");
    assert!(kept.len() <= heads.len());
    let mut order: Vec<_> = heads.iter().map(|(a, t)| (*t, *a)).collect();
    order.sort_unstable_by(|a, b| b.cmp(a));
    for (i, (ts, author)) in order.iter().enumerate() {
        assert_eq!(kept.get(author), (i < kept.len()).then_some(*ts));
    }
    assert!(kept.has_news_for(&heads).is_none());
}

/// Fuzz body: `data` as a gossip [`Op`] and as encoded [`AuthorHeads`]. See the
/// [module docs](super).
pub fn decode_gossip(data: &[u8]) {
    if let Ok(op) = Op::from_wire(data) {
        let encoded = op.to_wire();
        if encoded != data {
            assert!(
                encoded.len() < data.len() && may_hold_non_minimal_varint(data),
                "canonical op re-encodes differently:\n in  {}\n out {}",
                hex::encode(data),
                hex::encode(&encoded)
            );
        }
        assert_eq!(Op::from_wire(&encoded).as_ref(), Ok(&op));
        match &op {
            Op::Put(entry) => {
                // Decoding does not verify; verifying must not panic either way.
                let _ = entry.verify();
                let _ = entry.validate_empty();
                let _ = entry.fingerprint();
            }
            Op::ContentReady(_) => {}
            Op::SyncReport(report) => check_heads(&report.heads),
        }
    }
    check_heads(data);
}
