//! The redb file layout of [`RedbBackend`](super::RedbBackend): table definitions, schema
//! versions and migrations, and the encoding of rows. Kept apart from the backend's methods so
//! that the on-disk format can be read (and reviewed for compatibility) in one place.
//!
//! # Tables
//!
//! All ids are raw 32-byte arrays. Every table name is fixed; the layout is versioned by the
//! `meta` table (see *Schema versions* below).
//!
//! | table             | key                                 | value                            |
//! |-------------------|-------------------------------------|----------------------------------|
//! | `records`         | `(ns, suffix: &[u8])`               | `author_sig ‖ ns_sig ‖ record`   |
//! | `records_by_key`  | `(ns, key: &[u8], author)`          | `()`                             |
//! | `heads`           | `(ns, author)`                      | `u64` newest timestamp (µs)      |
//! | `authors`         | `author`                            | `&[u8; 32]` secret key           |
//! | `namespaces`      | `ns`                                | `(kind: u8, &[u8; 32])`          |
//! | `download_policy` | `ns`                                | `&[u8]` postcard policy          |
//! | `sync_peers`      | `ns`                                | `&[u8]` peer ids, newest first   |
//! | `summaries`       | `ns`                                | `&[u8]` count (u64 LE) ‖ XOR fp  |
//! | `chunks`          | `(ns, start: &[u8])`                | `&[u8]` count (u64 LE) ‖ XOR fp  |
//! | `meta`            | `&str`                              | `u64` (`"schema_version"`)       |
//!
//! `ns` and `author` are `&[u8; 32]`; `suffix` is `author ‖ key`.
//!
//! * `records` holds every entry under `(namespace, author ‖ key)`. redb compares a tuple
//!   element by element and a fixed-width first element needs no length header, so the encoded
//!   key is exactly the record identifier and the table's order inside a namespace is the
//!   suffix order every [`Backend`](super::super::Backend) method speaks of. The value is the [`SignedEntry`] without its
//!   identifier (which the key already holds): the two signatures, then the postcard
//!   [`Record`] (`varint len ‖ hash ‖ varint timestamp`), about 170 bytes.
//! * `records_by_key` is the `(key, author)` ordering for [`Backend::scan_key_author`](super::super::Backend::scan_key_author); it has a
//!   row exactly when `records` has the entry.
//! * `heads` only grows: removing entries never lowers it, removing the namespace deletes it.
//! * `summaries` (version 2) holds a namespace's entry count and the XOR of its entries'
//!   fingerprints ([`NamespaceSummary`](crate::store::NamespaceSummary)), written by
//!   [`Indexed`](crate::store::Indexed) before each commit for the namespaces it changed, so a
//!   committed row always describes the committed entries. A namespace may have no row (then
//!   its summary is learnt by building its index); a write that cannot update it deletes it.
//! * `chunks` (version 3) holds a namespace's index chunks: the suffix each starts at and
//!   the summary of its entries (see `Indexed`'s chunk lists). They are written in the same
//!   transactions as the namespace's `summaries` row, and are valid only while that row
//!   exists: a namespace without a summary row may keep stale chunk rows, replaced when its
//!   index is next built.
//! * `namespaces` stores [`Capability::raw`](crate::keys::Capability::raw): the kind byte of [`CapabilityKind::to_u8`](crate::keys::CapabilityKind::to_u8)
//!   (1 = write, 2 = read) and the secret or the id.
//!
//! A namespace's rows are the key range from `(ns, …)` up to (excluding) `(ns + 1, …)`, where
//! `ns + 1` is the id read as a 256-bit big-endian integer plus one (unbounded for `ff…ff`).
//!
//!
//! # Schema versions
//!
//! `meta["schema_version"]` is the layout version, [`RedbBackend::SCHEMA_VERSION`](super::RedbBackend::SCHEMA_VERSION) (3) for this
//! build (1: the first layout; 2: adds `summaries`; 3: adds `chunks` and clears `summaries`,
//! which a version-2 file holds without chunks); a file without it is new (version 0). On open the migrations `MIGRATIONS[v]` (from `v` to
//! `v + 1`) run in order inside one write transaction, then the version is stored; a file with
//! a newer version is refused with [`StoreError::UnsupportedVersion`] and left untouched.
//!

use std::ops::Bound;

use ::redb::{TableDefinition, WriteTransaction};

use crate::{
    entry::{Entry, EntrySignature, Record, RecordIdentifier, SignedEntry},
    hash::PeerId,
    store::StoreError,
    wire::codec::{Decode, DecodeError, Encode, Reader},
};

/// A 32-byte id as stored.
pub(super) type Id = [u8; 32];

/// `(ns, author ‖ key)` → signatures ‖ record.
pub(super) const RECORDS: TableDefinition<(&Id, &[u8]), &[u8]> = TableDefinition::new("records");
/// `(ns, key, author)` → `()`.
pub(super) const RECORDS_BY_KEY: TableDefinition<(&Id, &[u8], &Id), ()> =
    TableDefinition::new("records_by_key");
/// `(ns, author)` → newest timestamp.
pub(super) const HEADS: TableDefinition<(&Id, &Id), u64> = TableDefinition::new("heads");
/// Author id → secret key.
pub(super) const AUTHORS: TableDefinition<&Id, &Id> = TableDefinition::new("authors");
/// Namespace id → `(kind, secret or id)`.
pub(super) const NAMESPACES: TableDefinition<&Id, (u8, &Id)> = TableDefinition::new("namespaces");
/// Namespace id → postcard download policy.
pub(super) const DOWNLOAD_POLICY: TableDefinition<&Id, &[u8]> =
    TableDefinition::new("download_policy");
/// Namespace id → concatenated peer ids, newest first.
pub(super) const SYNC_PEERS: TableDefinition<&Id, &[u8]> = TableDefinition::new("sync_peers");
/// Namespace id → entry count ‖ XOR of fingerprints.
pub(super) const SUMMARIES: TableDefinition<&Id, &[u8]> = TableDefinition::new("summaries");
/// `(ns, start)` → entry count ‖ XOR of fingerprints of the chunk starting there.
pub(super) const CHUNKS: TableDefinition<(&Id, &[u8]), &[u8]> = TableDefinition::new("chunks");
/// Store metadata.
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The `meta` key of the schema version.
pub(super) const VERSION_KEY: &str = "schema_version";

/// A schema migration: upgrades a file from version `i` to `i + 1` (its index in
/// [`MIGRATIONS`]), inside the open transaction.
pub(super) type Migration = fn(&WriteTransaction) -> Result<(), StoreError>;

/// Migrations by source version. Version 0 is a new (empty) file.
pub(super) const MIGRATIONS: &[Migration] = &[create_v1, create_v2, create_v3];

/// The schema version this build writes and understands.
pub(super) const SCHEMA_VERSION: u64 = MIGRATIONS.len() as u64;

/// Length of the stored signatures (author's, then namespace's).
pub(super) const SIGNATURES_LEN: usize = 128;

/// Version 0 → 1: creates the tables.
fn create_v1(txn: &WriteTransaction) -> Result<(), StoreError> {
    open_all_tables(txn)
}

/// Version 1 → 2: adds the `summaries` table (empty: summaries are learnt on first use).
fn create_v2(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(SUMMARIES).map_err(backend)?;
    Ok(())
}

/// Version 2 → 3: adds the `chunks` table and deletes every summary (a summary vouches for
/// its namespace's chunk rows, and a version-2 file has none: they are learnt on first use).
fn create_v3(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(CHUNKS).map_err(backend)?;
    txn.open_table(SUMMARIES)
        .map_err(backend)?
        .retain(|_, _| false)
        .map_err(backend)?;
    Ok(())
}

/// Opens (creating if missing) every table of the current schema.
pub(super) fn open_all_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(RECORDS).map_err(backend)?;
    txn.open_table(RECORDS_BY_KEY).map_err(backend)?;
    txn.open_table(HEADS).map_err(backend)?;
    txn.open_table(AUTHORS).map_err(backend)?;
    txn.open_table(NAMESPACES).map_err(backend)?;
    txn.open_table(DOWNLOAD_POLICY).map_err(backend)?;
    txn.open_table(SYNC_PEERS).map_err(backend)?;
    txn.open_table(SUMMARIES).map_err(backend)?;
    txn.open_table(CHUNKS).map_err(backend)?;
    txn.open_table(META).map_err(backend)?;
    Ok(())
}

/// Maps a redb error: corruption and foreign table types are [`StoreError::Corrupt`],
/// everything else [`StoreError::Backend`].
pub(super) fn backend(e: impl Into<::redb::Error>) -> StoreError {
    let e: ::redb::Error = e.into();
    match e {
        ::redb::Error::Corrupted(msg) => StoreError::Corrupt(msg),
        ::redb::Error::TableTypeMismatch { .. }
        | ::redb::Error::TableIsMultimap(_)
        | ::redb::Error::TableIsNotMultimap(_)
        | ::redb::Error::TypeDefinitionChanged { .. } => StoreError::Corrupt(e.to_string()),
        e => StoreError::Backend(e.to_string()),
    }
}

/// A decode failure of stored bytes.
pub(super) fn corrupt(what: &str, e: DecodeError) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// The id after `id` as a 256-bit big-endian integer, `None` for `ff…ff`.
pub(super) fn successor(id: &Id) -> Option<Id> {
    let mut next = *id;
    for b in next.iter_mut().rev() {
        if *b == 0xff {
            *b = 0;
        } else {
            *b += 1;
            return Some(next);
        }
    }
    None
}

/// The upper bound of the rows of namespace `ns` in a table keyed by `(ns, …)`: excluding
/// namespace `next` (the successor of `ns`), unbounded if there is none.
pub(super) fn ns_end(next: &Option<Id>) -> Bound<&Id> {
    match next {
        Some(next) => Bound::Excluded(next),
        None => Bound::Unbounded,
    }
}

/// The stored value of `entry`: its signatures and record.
pub(super) fn encode_value(entry: &SignedEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIGNATURES_LEN + 48);
    entry.signature().encode(&mut out);
    entry.record().encode(&mut out);
    out
}

/// Rebuilds the entry stored under `(ns, suffix)`.
pub(super) fn decode_entry(
    ns: &Id,
    suffix: &[u8],
    value: &[u8],
) -> Result<SignedEntry, StoreError> {
    let mut id = Vec::with_capacity(32 + suffix.len());
    id.extend_from_slice(ns);
    id.extend_from_slice(suffix);
    let id = RecordIdentifier::from_bytes(id).map_err(|e| corrupt("record key", e))?;
    let mut r = Reader::new(value);
    let signature = EntrySignature::decode(&mut r).map_err(|e| corrupt("record", e))?;
    let record = Record::decode(&mut r).map_err(|e| corrupt("record", e))?;
    r.finish().map_err(|e| corrupt("record", e))?;
    Ok(SignedEntry::from_parts(signature, Entry::new(id, record)))
}

/// A key of `records`.
pub(super) type RecordKey = (&'static Id, &'static [u8]);

/// A `records` row as redb's range iterators yield it.
pub(super) type RecordRow<'a> = Result<
    (
        ::redb::AccessGuard<'a, RecordKey>,
        ::redb::AccessGuard<'a, &'static [u8]>,
    ),
    ::redb::StorageError,
>;

/// Rebuilds the entry of a `records` row.
pub(super) fn decode_row(row: RecordRow<'_>) -> Result<SignedEntry, StoreError> {
    let (k, v) = row.map_err(backend)?;
    let (ns, suffix) = k.value();
    decode_entry(ns, suffix, v.value())
}

/// Decodes stored peer ids.
pub(super) fn decode_peers(bytes: &[u8]) -> Result<Vec<PeerId>, StoreError> {
    if !bytes.len().is_multiple_of(32) {
        return Err(StoreError::Corrupt(format!(
            "sync peers: {} bytes is not a multiple of 32",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|c| {
            let mut id = [0u8; 32];
            id.copy_from_slice(c);
            PeerId::from_bytes(id)
        })
        .collect())
}
