use super::*;
use crate::time::Mono;

const NOW: u64 = 1_700_000_000_000_000;

fn now() -> Now {
    Now::new(Mono(0), NOW)
}

fn keys() -> (NamespaceSecret, Author) {
    (
        NamespaceSecret::from_bytes(&[0xb2; 32]),
        Author::from_bytes(&[0xa1; 32]),
    )
}

fn signed(key: &[u8], record: Record) -> SignedEntry {
    let (ns, author) = keys();
    SignedEntry::new(&ns, &author, key, record)
}

#[test]
fn record_order_is_timestamp_then_hash() {
    let lo = Hash::from_bytes([1; 32]);
    let hi = Hash::from_bytes([2; 32]);
    assert!(Record::new(lo, 5, 2) > Record::new(hi, 5, 1));
    assert!(Record::new(hi, 1, 1) > Record::new(lo, 9, 1));
    // Length does not take part.
    assert_eq!(
        Record::new(lo, 1, 1).cmp(&Record::new(lo, 2, 1)),
        Ordering::Equal
    );
}

#[test]
fn canonical_bytes_layout() {
    let e = signed(b"k", Record::new(Hash::new(b"v"), 1, 0x0102)).into_entry();
    let bytes = e.canonical_bytes();
    assert_eq!(bytes.len(), 64 + 1 + 8 + 32 + 8);
    assert_eq!(&bytes[64..65], b"k");
    assert_eq!(&bytes[65..73], &1u64.to_be_bytes());
    assert_eq!(&bytes[73..105], Hash::new(b"v").as_bytes());
    assert_eq!(&bytes[105..], &0x0102u64.to_be_bytes());
}

#[test]
fn remote_validation_accepts_a_good_entry() {
    let (ns, _) = keys();
    let e = signed(b"k", Record::new(Hash::new(b"v"), 1, NOW));
    assert_eq!(
        EntryLimits::default().check_remote(&e, ns.id(), now()),
        Ok(())
    );
}

#[test]
fn future_bound_is_inclusive() {
    let (ns, _) = keys();
    let limits = EntryLimits::default();
    let at = signed(
        b"k",
        Record::new(Hash::new(b"v"), 1, NOW + MAX_TIMESTAMP_FUTURE_SHIFT),
    );
    assert_eq!(limits.check_remote(&at, ns.id(), now()), Ok(()));
    let past = signed(
        b"k",
        Record::new(Hash::new(b"v"), 1, NOW + MAX_TIMESTAMP_FUTURE_SHIFT + 1),
    );
    assert_eq!(
        limits.check_remote(&past, ns.id(), now()),
        Err(ValidationFailure::TooFarInTheFuture)
    );
    // No lower bound.
    let old = signed(b"k", Record::new(Hash::new(b"v"), 1, 0));
    assert_eq!(limits.check_remote(&old, ns.id(), now()), Ok(()));
}

#[test]
fn wrong_namespace_is_refused() {
    let e = signed(b"k", Record::new(Hash::new(b"v"), 1, NOW));
    let other = NamespaceSecret::from_bytes(&[3; 32]).id();
    assert_eq!(
        EntryLimits::default().check_remote(&e, other, now()),
        Err(ValidationFailure::InvalidNamespace)
    );
}

#[test]
fn tampered_entries_fail_verification() {
    let (ns, author) = keys();
    let good = signed(b"k", Record::new(Hash::new(b"v"), 1, NOW));
    // Same signatures over a different record.
    let forged = SignedEntry::from_parts(
        *good.signature(),
        Entry::new(good.id().clone(), Record::new(Hash::new(b"w"), 1, NOW)),
    );
    assert_eq!(forged.verify(), Err(VerifyError::NamespaceSignature));
    assert_eq!(
        EntryLimits::default().check_remote(&forged, ns.id(), now()),
        Err(ValidationFailure::BadSignature(
            VerifyError::NamespaceSignature
        ))
    );
    // Valid namespace signature, author signature by someone else.
    let entry = good.entry().clone();
    let other = Author::from_bytes(&[9; 32]);
    let mixed_sig = EntrySignature::from_bytes(
        other.sign(&entry.canonical_bytes()).to_bytes(),
        ns.sign(&entry.canonical_bytes()).to_bytes(),
    );
    let mixed = SignedEntry::from_parts(mixed_sig, entry.clone());
    assert_eq!(mixed.verify(), Err(VerifyError::AuthorSignature));
    // Author id that is not a curve point.
    let bad_author = (0u8..=255)
        .map(|i| AuthorId::from_bytes([i; 32]))
        .find(|a| a.verifying_key().is_err())
        .unwrap();
    let bad = SignedEntry::from_parts(
        *good.signature(),
        Entry::new(
            RecordIdentifier::new(ns.id(), bad_author, b"k"),
            *entry.record(),
        ),
    );
    assert_eq!(bad.verify(), Err(VerifyError::InvalidAuthorKey));
    // Verifying with kept keys gives the same answers, warm or cold.
    let mut cache = KeyCache::default();
    for _ in 0..2 {
        for e in [&good, &forged, &mixed, &bad] {
            assert_eq!(e.verify_cached(&mut cache), e.verify());
            let limits = EntryLimits::default();
            assert_eq!(
                limits.check_remote_with(
                    e,
                    ns.id(),
                    now(),
                    &mut cache,
                    &CheckedSignatures::default()
                ),
                limits.check_remote(e, ns.id(), now())
            );
        }
    }
    assert_eq!(cache.len(), 2, "the namespace and the valid author");
    let _ = author;
}

#[test]
fn empty_entry_rule_applies_to_remote_entries() {
    let (ns, _) = keys();
    let limits = EntryLimits::default();
    let len_without_content = signed(b"k", Record::new(Hash::EMPTY, 3, NOW));
    assert_eq!(
        limits.check_remote(&len_without_content, ns.id(), now()),
        Err(ValidationFailure::InvalidEmptyEntry)
    );
    let content_without_len = signed(b"k", Record::new(Hash::new(b"v"), 0, NOW));
    assert_eq!(
        limits.check_remote(&content_without_len, ns.id(), now()),
        Err(ValidationFailure::InvalidEmptyEntry)
    );
    let tombstone = signed(b"k", Record::empty(NOW));
    assert_eq!(limits.check_remote(&tombstone, ns.id(), now()), Ok(()));
}

#[test]
fn key_limit_is_checked_before_signatures() {
    let (ns, _) = keys();
    let limits = EntryLimits {
        max_key_len: 4,
        ..Default::default()
    };
    let good = signed(b"12345", Record::new(Hash::new(b"v"), 1, NOW));
    // Break the signature: the key error must still be the one reported.
    let forged = SignedEntry::from_parts(
        EntrySignature::from_bytes([0; 64], [0; 64]),
        good.entry().clone(),
    );
    assert_eq!(
        limits.check_remote(&forged, ns.id(), now()),
        Err(ValidationFailure::KeyTooLarge { len: 5, max: 4 })
    );
    let ok = signed(b"1234", Record::new(Hash::new(b"v"), 1, NOW));
    assert_eq!(limits.check_remote(&ok, ns.id(), now()), Ok(()));
}

#[test]
fn local_checks() {
    let limits = EntryLimits::default();
    assert_eq!(limits.check_local(b"k", Hash::new(b"v"), 1), Ok(()));
    assert_eq!(
        limits.check_local(b"k", Hash::EMPTY, 0),
        Err(ValidationFailure::EntryIsEmpty)
    );
    assert_eq!(
        limits.check_local(b"k", Hash::new(b"v"), 0),
        Err(ValidationFailure::EntryIsEmpty)
    );
    assert_eq!(
        limits.check_local(b"k", Hash::EMPTY, 5),
        Err(ValidationFailure::EntryIsEmpty)
    );
    let long = vec![0u8; DEFAULT_MAX_KEY_LEN + 1];
    assert_eq!(
        limits.check_local(&long, Hash::new(b"v"), 1),
        Err(ValidationFailure::KeyTooLarge {
            len: DEFAULT_MAX_KEY_LEN + 1,
            max: DEFAULT_MAX_KEY_LEN
        })
    );
}

#[test]
fn record_identifier_parts_and_order() {
    let (ns, author) = keys();
    let a = RecordIdentifier::new(ns.id(), author.id(), b"foo");
    assert_eq!(a.namespace(), ns.id());
    assert_eq!(a.author(), author.id());
    assert_eq!(a.key(), b"foo");
    let b = RecordIdentifier::new(ns.id(), author.id(), b"foobar");
    assert!(a < b, "a prefix sorts before its extensions");
    assert_eq!(
        RecordIdentifier::from_bytes(vec![0u8; 63]),
        Err(DecodeError::ShortRecordId(63))
    );
    assert_eq!(
        RecordIdentifier::from_bytes(vec![0u8; 64]).unwrap().key(),
        b""
    );
}
