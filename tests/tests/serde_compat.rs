//! serde compatibility with iroh-docs 0.101, checked against the real crate.
//!
//! For every public data type that both crates serialize, random values (1,000 per type,
//! seeded) are built on both sides from the same parts, then:
//!
//! * postcard bytes are equal (`postcard::to_stdvec(sheaf) == postcard::to_stdvec(iroh)`);
//! * Sheaf deserializes iroh-docs' bytes into the value it started from, and iroh-docs
//!   deserializes Sheaf's bytes into a value that re-serializes to the same bytes;
//! * the same three checks hold for JSON (serde_json), where iroh-docs prints hashes and peer
//!   ids as hex strings and socket addresses as strings, but ids, secrets and signatures as
//!   arrays of numbers — Sheaf matches all of it.
//!
//! The hand-written wire codec has its own suite (`wire_compat`); this one covers the serde
//! impls applications use for their own storage and messages.

use std::fmt::Debug;

use bytes::Bytes;
use iroh_blobs_0103::Hash as IrohHash;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha12Rng;
use serde::{de::DeserializeOwned, Serialize};
use sheaf_core::{
    live::{Origin, SyncReason},
    replica::OpenState,
    store::{
        query::{Query, SortBy, SortDirection},
        DownloadPolicy, FilterKind,
    },
    wire::{AbortReason, DocTicket},
    Author, AuthorId, Capability, CapabilityKind, ContentStatus, Entry, EntrySignature, Hash,
    NamespaceId, NamespaceSecret, PeerId, Record, RecordIdentifier, SignedEntry,
};

#[path = "support/random_node.rs"]
mod random_node;

use random_node::random_node;

const CASES: usize = 1000;

/// The checks of the module docs for one pair of equal values.
fn check<S, I>(what: &str, case: usize, sheaf: &S, iroh: &I)
where
    S: Serialize + DeserializeOwned + PartialEq + Debug,
    I: Serialize + DeserializeOwned,
{
    let ours = postcard::to_stdvec(sheaf).unwrap();
    let theirs = postcard::to_stdvec(iroh).unwrap();
    assert_eq!(ours, theirs, "{what} case {case}: postcard bytes differ");
    let back: S = postcard::from_bytes(&theirs)
        .unwrap_or_else(|e| panic!("{what} case {case}: iroh-docs' bytes: {e}"));
    assert_eq!(&back, sheaf, "{what} case {case}: postcard round trip");
    let theirs_back: I = postcard::from_bytes(&ours)
        .unwrap_or_else(|e| panic!("{what} case {case}: iroh-docs reads Sheaf's bytes: {e}"));
    assert_eq!(postcard::to_stdvec(&theirs_back).unwrap(), ours);

    let ours = serde_json::to_string(sheaf).unwrap();
    let theirs = serde_json::to_string(iroh).unwrap();
    assert_eq!(ours, theirs, "{what} case {case}: JSON differs");
    let back: S = serde_json::from_str(&theirs)
        .unwrap_or_else(|e| panic!("{what} case {case}: iroh-docs' JSON {theirs}: {e}"));
    assert_eq!(&back, sheaf, "{what} case {case}: JSON round trip");
    let theirs_back: I = serde_json::from_str(&ours)
        .unwrap_or_else(|e| panic!("{what} case {case}: iroh-docs reads Sheaf's JSON: {e}"));
    assert_eq!(serde_json::to_string(&theirs_back).unwrap(), ours);
}

fn rng(seed: u64) -> ChaCha12Rng {
    ChaCha12Rng::seed_from_u64(seed)
}

fn random_key(rng: &mut ChaCha12Rng) -> Vec<u8> {
    let len = rng.random_range(0..16usize);
    (0..len).map(|_| rng.random()).collect()
}

fn pick<T: Clone>(rng: &mut ChaCha12Rng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())].clone()
}

#[test]
fn ids_secrets_and_hashes() {
    let mut rng = rng(11);
    for case in 0..CASES {
        let bytes: [u8; 32] = rng.random();
        check(
            "NamespaceId",
            case,
            &NamespaceId::from_bytes(bytes),
            &iroh_docs::NamespaceId::from(bytes),
        );
        check(
            "AuthorId",
            case,
            &AuthorId::from_bytes(bytes),
            &iroh_docs::AuthorId::from(bytes),
        );
        check(
            "NamespaceSecret",
            case,
            &NamespaceSecret::from_bytes(&bytes),
            &iroh_docs::NamespaceSecret::from_bytes(&bytes),
        );
        check(
            "Author",
            case,
            &Author::from_bytes(&bytes),
            &iroh_docs::Author::from_bytes(&bytes),
        );
        check(
            "Hash",
            case,
            &Hash::from_bytes(bytes),
            &IrohHash::from_bytes(bytes),
        );
        let public = iroh::SecretKey::from_bytes(&bytes).public();
        check(
            "PeerId",
            case,
            &PeerId::from_bytes(*public.as_bytes()),
            &public,
        );
    }
}

#[test]
fn hashes_and_peer_ids_read_base32_like_iroh() {
    let public = iroh::SecretKey::from_bytes(&[7; 32]).public();
    let base32 = data_encoding::BASE32_NOPAD
        .encode(public.as_bytes())
        .to_ascii_lowercase();
    let json = format!("\"{base32}\"");
    let theirs: iroh::PublicKey = serde_json::from_str(&json).unwrap();
    let ours: PeerId = serde_json::from_str(&json).unwrap();
    assert_eq!(ours.as_bytes(), theirs.as_bytes());
    let theirs: IrohHash = serde_json::from_str(&json).unwrap();
    let ours: Hash = serde_json::from_str(&json).unwrap();
    assert_eq!(ours.as_bytes(), theirs.as_bytes());
}

#[test]
fn capabilities_and_statuses() {
    let mut rng = rng(12);
    for case in 0..CASES {
        let secret: [u8; 32] = rng.random();
        let ours = NamespaceSecret::from_bytes(&secret);
        let theirs = iroh_docs::NamespaceSecret::from_bytes(&secret);
        if rng.random_bool(0.5) {
            check(
                "Capability",
                case,
                &Capability::Write(ours),
                &iroh_docs::Capability::Write(theirs),
            );
        } else {
            check(
                "Capability",
                case,
                &Capability::Read(ours.id()),
                &iroh_docs::Capability::Read(theirs.id()),
            );
        }
        let i = rng.random_range(0..3usize);
        check(
            "ContentStatus",
            case,
            &[
                ContentStatus::Complete,
                ContentStatus::Incomplete,
                ContentStatus::Missing,
            ][i],
            &[
                iroh_docs::ContentStatus::Complete,
                iroh_docs::ContentStatus::Incomplete,
                iroh_docs::ContentStatus::Missing,
            ][i],
        );
        let i = rng.random_range(0..2usize);
        check(
            "CapabilityKind",
            case,
            &[CapabilityKind::Write, CapabilityKind::Read][i],
            &[
                iroh_docs::CapabilityKind::Write,
                iroh_docs::CapabilityKind::Read,
            ][i],
        );
        let i = rng.random_range(0..3usize);
        check(
            "AbortReason",
            case,
            &[
                AbortReason::NotFound,
                AbortReason::AlreadySyncing,
                AbortReason::InternalServerError,
            ][i],
            &[
                iroh_docs::net::AbortReason::NotFound,
                iroh_docs::net::AbortReason::AlreadySyncing,
                iroh_docs::net::AbortReason::InternalServerError,
            ][i],
        );
        let state = OpenState {
            sync: rng.random_bool(0.5),
            subscribers: rng.random_range(0..1000),
            handles: rng.random_range(0..1000),
        };
        let theirs = iroh_docs::actor::OpenState {
            sync: state.sync,
            subscribers: state.subscribers,
            handles: state.handles,
        };
        check("OpenState", case, &state, &theirs);
        // Sheaf's `Retry` and `AntiEntropy` reasons have no iroh-docs counterpart.
        let i = rng.random_range(0..5usize);
        let reasons = [
            SyncReason::DirectJoin,
            SyncReason::NewNeighbor,
            SyncReason::SyncReport,
            SyncReason::Resync,
        ];
        let iroh_reasons = [
            iroh_docs::engine::SyncReason::DirectJoin,
            iroh_docs::engine::SyncReason::NewNeighbor,
            iroh_docs::engine::SyncReason::SyncReport,
            iroh_docs::engine::SyncReason::Resync,
        ];
        if i == 4 {
            check(
                "Origin",
                case,
                &Origin::Accept,
                &iroh_docs::engine::Origin::Accept,
            );
        } else {
            check("SyncReason", case, &reasons[i], &iroh_reasons[i]);
            check(
                "Origin",
                case,
                &Origin::Connect(reasons[i]),
                &iroh_docs::engine::Origin::Connect(iroh_reasons[i]),
            );
        }
    }
}

#[test]
fn entries_records_and_signatures() {
    let mut rng = rng(13);
    let namespaces: Vec<[u8; 32]> = (0..3).map(|_| rng.random()).collect();
    let authors: Vec<[u8; 32]> = (0..4).map(|_| rng.random()).collect();
    for case in 0..CASES {
        let (ns, author) = (pick(&mut rng, &namespaces), pick(&mut rng, &authors));
        let key = random_key(&mut rng);
        let (hash, len) = if rng.random_bool(0.2) {
            (Hash::EMPTY, 0)
        } else {
            (
                Hash::from_bytes(rng.random()),
                rng.random_range(1..u64::MAX),
            )
        };
        let timestamp = rng.random();
        let record = Record::new(hash, len, timestamp);
        let (ns_secret, author_secret) = (
            NamespaceSecret::from_bytes(&ns),
            Author::from_bytes(&author),
        );
        let id = RecordIdentifier::new(ns_secret.id(), author_secret.id(), &key);
        let signed = Entry::new(id.clone(), record).sign(&ns_secret, &author_secret);

        let (ins, iauthor) = (
            iroh_docs::NamespaceSecret::from_bytes(&ns),
            iroh_docs::Author::from_bytes(&author),
        );
        let iid = iroh_docs::RecordIdentifier::new(ins.id(), iauthor.id(), &key);
        let irecord =
            iroh_docs::Record::new(IrohHash::from_bytes(*hash.as_bytes()), len, timestamp);
        let isigned = iroh_docs::Entry::new(iid.clone(), irecord.clone()).sign(&ins, &iauthor);

        check("RecordIdentifier", case, &id, &iid);
        check("Record", case, &record, &irecord);
        check("Entry", case, signed.entry(), isigned.entry());
        check(
            "EntrySignature",
            case,
            signed.signature(),
            isigned.signature(),
        );
        check("SignedEntry", case, &signed, &isigned);
    }
}

#[test]
fn tickets() {
    let mut rng = rng(14);
    for case in 0..CASES {
        let secret: [u8; 32] = rng.random();
        let (cap, icap) = if rng.random_bool(0.5) {
            (
                Capability::Write(NamespaceSecret::from_bytes(&secret)),
                iroh_docs::Capability::Write(iroh_docs::NamespaceSecret::from_bytes(&secret)),
            )
        } else {
            let id = NamespaceSecret::from_bytes(&secret).id();
            (
                Capability::Read(id),
                iroh_docs::Capability::Read(id.to_bytes().into()),
            )
        };
        let (ours, theirs): (Vec<_>, Vec<_>) = (0..rng.random_range(0..4usize))
            .map(|_| random_node(&mut rng))
            .unzip();
        let node = ours.first().cloned();
        let inode = theirs.first().cloned();
        check(
            "DocTicket",
            case,
            &DocTicket::new(cap, ours),
            &iroh_docs::DocTicket::new(icap, theirs),
        );
        if let (Some(node), Some(inode)) = (node, inode) {
            check("NodeAddr", case, &node, &inode);
        }
    }
}

fn random_filter(rng: &mut ChaCha12Rng) -> (FilterKind, iroh_docs::store::FilterKind) {
    let bytes = Bytes::from(random_key(rng));
    if rng.random_bool(0.5) {
        (
            FilterKind::Prefix(bytes.clone()),
            iroh_docs::store::FilterKind::Prefix(bytes),
        )
    } else {
        (
            FilterKind::Exact(bytes.clone()),
            iroh_docs::store::FilterKind::Exact(bytes),
        )
    }
}

#[test]
fn download_policies() {
    let mut rng = rng(15);
    for case in 0..CASES {
        let (ours, theirs): (Vec<_>, Vec<_>) = (0..rng.random_range(0..4usize))
            .map(|_| random_filter(&mut rng))
            .unzip();
        if let (Some(f), Some(g)) = (ours.first(), theirs.first()) {
            check("FilterKind", case, f, g);
        }
        let (policy, ipolicy) = if rng.random_bool(0.5) {
            (
                DownloadPolicy::NothingExcept(ours),
                iroh_docs::store::DownloadPolicy::NothingExcept(theirs),
            )
        } else {
            (
                DownloadPolicy::EverythingExcept(ours),
                iroh_docs::store::DownloadPolicy::EverythingExcept(theirs),
            )
        };
        check("DownloadPolicy", case, &policy, &ipolicy);
    }
}

/// Applies the same random filters to a Sheaf query and an iroh-docs query builder.
macro_rules! filters {
    ($rng:expr, $ours:expr, $theirs:expr) => {{
        let (mut ours, mut theirs) = ($ours, $theirs);
        if $rng.random_bool(0.5) {
            let author = AuthorId::from_bytes($rng.random());
            ours = ours.with_author(author);
            theirs = theirs.author(author.to_bytes().into());
        }
        match $rng.random_range(0..3u8) {
            0 => {}
            1 => {
                let key = random_key(&mut $rng);
                ours = ours.with_key_exact(key.clone());
                theirs = theirs.key_exact(key);
            }
            _ => {
                let key = random_key(&mut $rng);
                ours = ours.with_key_prefix(key.clone());
                theirs = theirs.key_prefix(key);
            }
        }
        if $rng.random_bool(0.5) {
            let limit = $rng.random();
            ours = ours.limit(limit);
            theirs = theirs.limit(limit);
        }
        if $rng.random_bool(0.5) {
            let offset = $rng.random();
            ours = ours.offset(offset);
            theirs = theirs.offset(offset);
        }
        if $rng.random_bool(0.5) {
            ours = ours.include_empty();
            theirs = theirs.include_empty();
        }
        (ours, theirs)
    }};
}

#[test]
fn queries() {
    use iroh_docs::store::{Query as IrohQuery, SortBy as IrohSortBy, SortDirection as IrohDir};
    let mut rng = rng(16);
    for case in 0..CASES {
        let (dir, idir) = pick(
            &mut rng,
            &[
                (SortDirection::Asc, IrohDir::Asc),
                (SortDirection::Desc, IrohDir::Desc),
            ],
        );
        let (query, iquery) = if rng.random_bool(0.5) {
            let (sort, isort) = pick(
                &mut rng,
                &[
                    (SortBy::KeyAuthor, IrohSortBy::KeyAuthor),
                    (SortBy::AuthorKey, IrohSortBy::AuthorKey),
                ],
            );
            let (ours, theirs) = filters!(rng, Query::all(), IrohQuery::all());
            let (ours, theirs) = if rng.random_bool(0.8) {
                (ours.sort_by(sort, dir), theirs.sort_by(isort, idir))
            } else {
                (ours, theirs)
            };
            (ours, theirs.build())
        } else {
            let (ours, theirs) = filters!(
                rng,
                Query::single_latest_per_key(),
                IrohQuery::single_latest_per_key()
            );
            (
                ours.sort_direction(dir),
                theirs.sort_direction(idir).build(),
            )
        };
        check("Query", case, &query, &iquery);
    }
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    // A record identifier shorter than namespace + author: iroh-docs accepts it (and panics on
    // use); Sheaf refuses it.
    let short = [10u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    assert!(postcard::from_bytes::<iroh_docs::RecordIdentifier>(&short).is_ok());
    assert!(postcard::from_bytes::<RecordIdentifier>(&short).is_err());
    assert!(serde_json::from_str::<RecordIdentifier>("[1,2,3]").is_err());
    // Truncated values, wrong lengths and unknown tags.
    let entry = {
        let ns = NamespaceSecret::from_bytes(&[1; 32]);
        let author = Author::from_bytes(&[2; 32]);
        let id = RecordIdentifier::new(ns.id(), author.id(), b"k");
        Entry::new(id, Record::new(Hash::new(b"v"), 1, 5)).sign(&ns, &author)
    };
    let bytes = postcard::to_stdvec(&entry).unwrap();
    for cut in 0..bytes.len() {
        assert!(postcard::from_bytes::<SignedEntry>(&bytes[..cut]).is_err());
    }
    assert!(postcard::from_bytes::<Capability>(&[2, 0]).is_err());
    assert!(serde_json::from_str::<Author>(r#"{"signing_key":[1,2,3]}"#).is_err());
    assert!(serde_json::from_str::<Hash>(r#""not a hash""#).is_err());
    assert!(serde_json::from_str::<EntrySignature>(r#"{"author_signature":[1]}"#).is_err());
    // A point that is not on the curve is not a peer id, as for iroh's `PublicKey`.
    let mut bad = [0u8; 32];
    bad[0] = 2;
    bad[31] = 0x80;
    assert!(postcard::from_bytes::<iroh::PublicKey>(&bad).is_err());
    assert!(postcard::from_bytes::<PeerId>(&bad).is_err());
}
