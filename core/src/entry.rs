//! Entries: what a document is made of.
//!
//! An [`Entry`] maps a [`RecordIdentifier`] (namespace ‖ author ‖ key) to a [`Record`] (content
//! length, content hash, timestamp). A [`SignedEntry`] adds two ed25519 signatures over the
//! entry's canonical bytes, one by the namespace key and one by the author key, so any peer can
//! check that the writer held both. These layouts, the signed bytes and the fingerprint function
//! are iroh-docs' exactly; a difference in any of them would break sync with iroh-docs nodes.
//!
//! Conflict resolution is "newer wins" per (namespace, author, key): a [`Record`] orders by
//! timestamp, then by content hash bytes.

use std::{cmp::Ordering, fmt};

use bytes::Bytes;
use ed25519_dalek::{Signature, VerifyingKey};

mod checked;
mod key_cache;
pub use checked::{CheckedSignatures, CheckedStream, NoChecksAhead};
pub use key_cache::KeyCache;

use crate::{
    hash::Hash,
    keys::{Author, AuthorId, NamespaceId, NamespaceSecret},
    ranger::Fingerprint,
    time::Now,
    wire::codec::{put_bytes, put_u64, Decode, DecodeError, Encode, Reader},
};

/// How far in the future (µs) a remote entry's timestamp may be: 10 minutes, as in iroh-docs.
pub const MAX_TIMESTAMP_FUTURE_SHIFT: u64 = 10 * 60 * 1_000_000;

/// Default upper bound on key length, in bytes.
pub const DEFAULT_MAX_KEY_LEN: usize = 4096;

/// The identifier of a record: `namespace (32) ‖ author (32) ‖ key`.
///
/// Ordered by plain byte comparison, which is the key order of range-based reconciliation:
/// namespace, then author, then key, with a prefix sorting before its extensions.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordIdentifier(Bytes);

impl RecordIdentifier {
    /// The identifier of `key` by `author` in `namespace`.
    pub fn new(namespace: NamespaceId, author: AuthorId, key: impl AsRef<[u8]>) -> Self {
        let key = key.as_ref();
        let mut bytes = Vec::with_capacity(64 + key.len());
        bytes.extend_from_slice(namespace.as_bytes());
        bytes.extend_from_slice(author.as_bytes());
        bytes.extend_from_slice(key);
        Self(bytes.into())
    }

    /// Wraps raw identifier bytes, which must hold at least the namespace and author.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Result<Self, DecodeError> {
        let bytes = bytes.into();
        if bytes.len() < 64 {
            return Err(DecodeError::ShortRecordId(bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// The all-zero identifier (64 zero bytes, empty key): the range bound iroh-docs puts in
    /// the initial message of an empty replica.
    pub fn zero() -> Self {
        Self(Bytes::from_static(&[0u8; 64]))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The raw bytes as a cheap clone.
    pub fn to_bytes(&self) -> Bytes {
        self.0.clone()
    }

    /// The namespace.
    pub fn namespace(&self) -> NamespaceId {
        NamespaceId::from_bytes(self.0[..32].try_into().expect("len >= 64"))
    }

    /// The author.
    pub fn author(&self) -> AuthorId {
        AuthorId::from_bytes(self.0[32..64].try_into().expect("len >= 64"))
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        &self.0[64..]
    }

    /// The key as a cheap clone.
    pub fn key_bytes(&self) -> Bytes {
        self.0.slice(64..)
    }
}

impl fmt::Debug for RecordIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RecordIdentifier({}/{}/{})",
            self.namespace().fmt_short(),
            self.author().fmt_short(),
            String::from_utf8_lossy(self.key())
        )
    }
}

impl Encode for RecordIdentifier {
    fn encode(&self, out: &mut Vec<u8>) {
        put_bytes(out, &self.0);
    }
}

impl Decode for RecordIdentifier {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::from_bytes(Bytes::copy_from_slice(r.bytes()?))
    }
}

/// What a record identifier points to: content length, content hash and timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Record {
    len: u64,
    hash: Hash,
    timestamp: u64,
}

impl Record {
    /// A record for content `hash` of `len` bytes written at `timestamp` (µs since the epoch).
    pub fn new(hash: Hash, len: u64, timestamp: u64) -> Self {
        Self {
            len,
            hash,
            timestamp,
        }
    }

    /// A tombstone: length 0 and the hash of empty content.
    pub fn empty(timestamp: u64) -> Self {
        Self::new(Hash::EMPTY, 0, timestamp)
    }

    /// Whether this is a tombstone (its hash is the hash of empty content).
    pub fn is_empty(&self) -> bool {
        self.hash == Hash::EMPTY
    }

    /// Content length in bytes.
    pub fn content_len(&self) -> u64 {
        self.len
    }

    /// Content hash.
    pub fn content_hash(&self) -> Hash {
        self.hash
    }

    /// Timestamp in microseconds since the UNIX epoch.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// Appends the canonical (signed) bytes: `len u64be ‖ hash ‖ timestamp u64be`.
    fn encode_canonical(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.len.to_be_bytes());
        out.extend_from_slice(self.hash.as_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
    }
}

/// Newer wins: by timestamp, then by hash bytes. The length does not take part.
impl Ord for Record {
    fn cmp(&self, other: &Self) -> Ordering {
        self.timestamp
            .cmp(&other.timestamp)
            .then_with(|| self.hash.cmp(&other.hash))
    }
}

impl PartialOrd for Record {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// postcard: `varint len ‖ hash ‖ varint timestamp`.
impl Encode for Record {
    fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, self.len);
        self.hash.encode(out);
        put_u64(out, self.timestamp);
    }
}

impl Decode for Record {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = r.u64()?;
        let hash = Hash::decode(r)?;
        let timestamp = r.u64()?;
        Ok(Self::new(hash, len, timestamp))
    }
}

/// An unsigned entry: identifier and record.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Entry {
    id: RecordIdentifier,
    record: Record,
}

impl Entry {
    /// An entry from its parts.
    pub fn new(id: RecordIdentifier, record: Record) -> Self {
        Self { id, record }
    }

    /// The identifier.
    pub fn id(&self) -> &RecordIdentifier {
        &self.id
    }

    /// The record.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// The namespace.
    pub fn namespace(&self) -> NamespaceId {
        self.id.namespace()
    }

    /// The author.
    pub fn author(&self) -> AuthorId {
        self.id.author()
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        self.id.key()
    }

    /// Content hash.
    pub fn content_hash(&self) -> Hash {
        self.record.hash
    }

    /// Content length.
    pub fn content_len(&self) -> u64 {
        self.record.len
    }

    /// Timestamp (µs since the epoch).
    pub fn timestamp(&self) -> u64 {
        self.record.timestamp
    }

    /// Whether this is a tombstone.
    pub fn is_empty(&self) -> bool {
        self.record.is_empty()
    }

    /// Appends the canonical bytes both signatures cover:
    /// `ns ‖ author ‖ key ‖ len u64be ‖ hash ‖ timestamp u64be`.
    pub fn encode_canonical(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.id.as_bytes());
        self.record.encode_canonical(out);
    }

    /// The canonical bytes as a fresh vector.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.id.as_bytes().len() + 48);
        self.encode_canonical(&mut out);
        out
    }

    /// The reconciliation fingerprint: `BLAKE3(ns ‖ author ‖ key ‖ timestamp u64be ‖ hash)`.
    pub fn fingerprint(&self) -> Fingerprint {
        let mut h = blake3::Hasher::new();
        h.update(self.id.as_bytes());
        h.update(&self.record.timestamp.to_be_bytes());
        h.update(self.record.hash.as_bytes());
        Fingerprint(*h.finalize().as_bytes())
    }

    /// Signs this entry with both keys.
    pub fn sign(self, namespace: &NamespaceSecret, author: &Author) -> SignedEntry {
        let bytes = self.canonical_bytes();
        let signature = EntrySignature {
            author_signature: author.sign(&bytes),
            namespace_signature: namespace.sign(&bytes),
        };
        SignedEntry {
            signature,
            entry: self,
        }
    }
}

impl Encode for Entry {
    fn encode(&self, out: &mut Vec<u8>) {
        self.id.encode(out);
        self.record.encode(out);
    }
}

impl Decode for Entry {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id = RecordIdentifier::decode(r)?;
        let record = Record::decode(r)?;
        Ok(Self { id, record })
    }
}

/// The two signatures of an entry. On the wire the author's comes first.
#[derive(Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EntrySignature {
    #[serde(with = "crate::serde_impls::signature")]
    author_signature: Signature,
    #[serde(with = "crate::serde_impls::signature")]
    namespace_signature: Signature,
}

impl EntrySignature {
    /// Signatures from their raw 64-byte forms.
    pub fn from_bytes(author: [u8; 64], namespace: [u8; 64]) -> Self {
        Self {
            author_signature: Signature::from_bytes(&author),
            namespace_signature: Signature::from_bytes(&namespace),
        }
    }

    /// The author's signature bytes.
    pub fn author_bytes(&self) -> [u8; 64] {
        self.author_signature.to_bytes()
    }

    /// The namespace's signature bytes.
    pub fn namespace_bytes(&self) -> [u8; 64] {
        self.namespace_signature.to_bytes()
    }
}

impl fmt::Debug for EntrySignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EntrySignature(author {}…, namespace {}…)",
            hex::encode(&self.author_bytes()[..5]),
            hex::encode(&self.namespace_bytes()[..5])
        )
    }
}

impl Encode for EntrySignature {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.author_bytes());
        out.extend_from_slice(&self.namespace_bytes());
    }
}

impl Decode for EntrySignature {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let author = r.array::<64>()?;
        let namespace = r.array::<64>()?;
        Ok(Self::from_bytes(author, namespace))
    }
}

/// Why a signed entry failed verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The namespace id is not a valid ed25519 public key.
    #[error("namespace id is not a valid public key")]
    InvalidNamespaceKey,
    /// The author id is not a valid ed25519 public key.
    #[error("author id is not a valid public key")]
    InvalidAuthorKey,
    /// The namespace signature does not verify.
    #[error("namespace signature does not verify")]
    NamespaceSignature,
    /// The author signature does not verify.
    #[error("author signature does not verify")]
    AuthorSignature,
}

/// Why an entry was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ValidationFailure {
    /// The entry belongs to another namespace.
    #[error("entry belongs to another namespace")]
    InvalidNamespace,
    /// A signature does not verify (or a key is not a valid point).
    #[error("bad signature: {0}")]
    BadSignature(VerifyError),
    /// The timestamp is more than the allowed shift past the receiver's wall clock.
    #[error("timestamp too far in the future")]
    TooFarInTheFuture,
    /// Length 0 without the empty hash, or the empty hash with a non-zero length.
    #[error("entry length and hash disagree on emptiness")]
    InvalidEmptyEntry,
    /// The key is longer than the configured limit.
    #[error("key of {len} bytes exceeds the limit of {max}")]
    KeyTooLarge {
        /// Key length.
        len: usize,
        /// Configured limit.
        max: usize,
    },
    /// A local write of empty content (only deletions create empty entries).
    #[error("entry is empty")]
    EntryIsEmpty,
}

/// Limits applied when validating entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryLimits {
    /// Longest key accepted, in bytes. Default [`DEFAULT_MAX_KEY_LEN`].
    pub max_key_len: usize,
    /// How far past `now` a timestamp may be, in µs. Default [`MAX_TIMESTAMP_FUTURE_SHIFT`].
    pub max_future_shift_micros: u64,
}

impl Default for EntryLimits {
    fn default() -> Self {
        Self {
            max_key_len: DEFAULT_MAX_KEY_LEN,
            max_future_shift_micros: MAX_TIMESTAMP_FUTURE_SHIFT,
        }
    }
}

impl EntryLimits {
    /// Checks a local write before it is stamped and signed: not empty, key within the limit.
    pub fn check_local(&self, key: &[u8], hash: Hash, len: u64) -> Result<(), ValidationFailure> {
        self.check_key(key)?;
        if len == 0 || hash == Hash::EMPTY {
            return Err(ValidationFailure::EntryIsEmpty);
        }
        Ok(())
    }

    fn check_key(&self, key: &[u8]) -> Result<(), ValidationFailure> {
        if key.len() > self.max_key_len {
            return Err(ValidationFailure::KeyTooLarge {
                len: key.len(),
                max: self.max_key_len,
            });
        }
        Ok(())
    }

    /// Validates an entry received from a peer for `namespace` at time `now`.
    ///
    /// Cheap checks run first — namespace, key length, the empty-entry rule, the future
    /// bound — so that oversized or malformed entries never cost signature work. Unlike
    /// iroh-docs, the empty-entry rule applies on every remote path, sync included.
    pub fn check_remote(
        &self,
        entry: &SignedEntry,
        namespace: NamespaceId,
        now: Now,
    ) -> Result<(), ValidationFailure> {
        self.check_cheap(entry, namespace, now)?;
        entry.verify().map_err(ValidationFailure::BadSignature)
    }

    fn check_cheap(
        &self,
        entry: &SignedEntry,
        namespace: NamespaceId,
        now: Now,
    ) -> Result<(), ValidationFailure> {
        if entry.namespace() != namespace {
            return Err(ValidationFailure::InvalidNamespace);
        }
        self.check_key(entry.key())?;
        entry.validate_empty()?;
        let limit = now.wall_micros.saturating_add(self.max_future_shift_micros);
        if entry.timestamp() > limit {
            return Err(ValidationFailure::TooFarInTheFuture);
        }
        Ok(())
    }

    /// [`EntryLimits::check_remote`] with the namespace and author keys taken from `keys`,
    /// taking the signatures of entries in `checked` as verified (every other check still
    /// runs; pass an empty set to verify every entry).
    pub fn check_remote_with(
        &self,
        entry: &SignedEntry,
        namespace: NamespaceId,
        now: Now,
        keys: &mut KeyCache,
        checked: &CheckedSignatures,
    ) -> Result<(), ValidationFailure> {
        self.check_cheap(entry, namespace, now)?;
        if checked.contains(entry) {
            return Ok(());
        }
        entry
            .verify_cached(keys)
            .map_err(ValidationFailure::BadSignature)
    }
}

/// An entry with its namespace and author signatures.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedEntry {
    signature: EntrySignature,
    entry: Entry,
}

impl SignedEntry {
    /// Joins an entry and signatures without checking them (see [`SignedEntry::verify`]).
    pub fn from_parts(signature: EntrySignature, entry: Entry) -> Self {
        Self { signature, entry }
    }

    /// Builds and signs the entry `key → record` by `author` in `namespace`.
    pub fn new(namespace: &NamespaceSecret, author: &Author, key: &[u8], record: Record) -> Self {
        Entry::new(
            RecordIdentifier::new(namespace.id(), author.id(), key),
            record,
        )
        .sign(namespace, author)
    }

    /// Strictly verifies both signatures (dalek `verify_strict`, like iroh-docs).
    pub fn verify(&self) -> Result<(), VerifyError> {
        let ns = self
            .namespace()
            .verifying_key()
            .map_err(|_| VerifyError::InvalidNamespaceKey)?;
        let author = self
            .author()
            .verifying_key()
            .map_err(|_| VerifyError::InvalidAuthorKey)?;
        self.verify_with(&ns, &author)
    }

    /// [`SignedEntry::verify`] with the keys decompressed once and kept in `keys`.
    pub fn verify_cached(&self, keys: &mut KeyCache) -> Result<(), VerifyError> {
        let ns = keys
            .get(self.namespace().as_bytes())
            .ok_or(VerifyError::InvalidNamespaceKey)?;
        let author = keys
            .get(self.author().as_bytes())
            .ok_or(VerifyError::InvalidAuthorKey)?;
        self.verify_with(&ns, &author)
    }

    /// Verifies with already-parsed keys (lets callers cache key decompression).
    pub fn verify_with(&self, ns: &VerifyingKey, author: &VerifyingKey) -> Result<(), VerifyError> {
        let bytes = self.entry.canonical_bytes();
        ns.verify_strict(&bytes, &self.signature.namespace_signature)
            .map_err(|_| VerifyError::NamespaceSignature)?;
        author
            .verify_strict(&bytes, &self.signature.author_signature)
            .map_err(|_| VerifyError::AuthorSignature)
    }

    /// The empty-entry rule: length 0 exactly when the hash is the empty hash.
    pub fn validate_empty(&self) -> Result<(), ValidationFailure> {
        let record = self.entry.record();
        if (record.len == 0) != (record.hash == Hash::EMPTY) {
            return Err(ValidationFailure::InvalidEmptyEntry);
        }
        Ok(())
    }

    /// The signatures.
    pub fn signature(&self) -> &EntrySignature {
        &self.signature
    }

    /// The unsigned entry.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// Consumes self, returning the unsigned entry.
    pub fn into_entry(self) -> Entry {
        self.entry
    }

    /// The identifier.
    pub fn id(&self) -> &RecordIdentifier {
        self.entry.id()
    }

    /// The record.
    pub fn record(&self) -> &Record {
        self.entry.record()
    }

    /// The namespace.
    pub fn namespace(&self) -> NamespaceId {
        self.entry.namespace()
    }

    /// The author.
    pub fn author(&self) -> AuthorId {
        self.entry.author()
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        self.entry.key()
    }

    /// Content hash.
    pub fn content_hash(&self) -> Hash {
        self.entry.content_hash()
    }

    /// Content length.
    pub fn content_len(&self) -> u64 {
        self.entry.content_len()
    }

    /// Timestamp (µs since the epoch).
    pub fn timestamp(&self) -> u64 {
        self.entry.timestamp()
    }

    /// Whether this is a tombstone.
    pub fn is_empty(&self) -> bool {
        self.entry.is_empty()
    }

    /// The reconciliation fingerprint (see [`Entry::fingerprint`]).
    pub fn fingerprint(&self) -> Fingerprint {
        self.entry.fingerprint()
    }
}

/// Signed entries order like their entries; signatures do not take part.
impl Ord for SignedEntry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.entry.cmp(&other.entry)
    }
}

impl PartialOrd for SignedEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Smallest possible encoding of a [`SignedEntry`]: 128 signature bytes, a 64-byte id with its
/// length byte, a one-byte length, the hash and a one-byte timestamp.
pub(crate) const MIN_SIGNED_ENTRY_LEN: usize = 128 + 65 + 1 + 32 + 1;

/// postcard: `author_sig ‖ namespace_sig ‖ id ‖ record`.
impl Encode for SignedEntry {
    fn encode(&self, out: &mut Vec<u8>) {
        self.signature.encode(out);
        self.entry.encode(out);
    }
}

impl Decode for SignedEntry {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let signature = EntrySignature::decode(r)?;
        let entry = Entry::decode(r)?;
        Ok(Self { signature, entry })
    }
}

#[cfg(test)]
mod tests;
