//! [`RedbStore`]: the persistent [`Store`], on a single [redb](::redb) file.
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
//! | `meta`            | `&str`                              | `u64` (`"schema_version"`)       |
//!
//! `ns` and `author` are `&[u8; 32]`; `suffix` is `author ‖ key`.
//!
//! * `records` holds every entry under `(namespace, author ‖ key)`. redb compares a tuple
//!   element by element and a fixed-width first element needs no length header, so the encoded
//!   key is exactly the record identifier and the table's order inside a namespace is the
//!   suffix order every [`Store`] method speaks of. The value is the [`SignedEntry`] without its
//!   identifier (which the key already holds): the two signatures, then the postcard
//!   [`Record`] (`varint len ‖ hash ‖ varint timestamp`), about 170 bytes.
//! * `records_by_key` is the `(key, author)` ordering for [`Store::scan_key_author`]; it has a
//!   row exactly when `records` has the entry.
//! * `heads` only grows: removing entries never lowers it, removing the namespace deletes it.
//! * `namespaces` stores [`Capability::raw`]: the kind byte of [`CapabilityKind::to_u8`]
//!   (1 = write, 2 = read) and the secret or the id.
//!
//! A namespace's rows are the key range from `(ns, …)` up to (excluding) `(ns + 1, …)`, where
//! `ns + 1` is the id read as a 256-bit big-endian integer plus one (unbounded for `ff…ff`).
//!
//! # Transactions
//!
//! The store keeps **one** redb [`WriteTransaction`] open, begun lazily by the first access.
//! Every read and every write goes through it, so reads see uncommitted writes (as the
//! [`Store`] contract requires) and a write costs no commit. [`Store::flush`] commits it with
//! redb's default [`Durability::Immediate`](::redb::Durability::Immediate) — a `flush` that
//! returns `Ok` means everything written so far is on disk — and the next access begins a new
//! one. A `flush` with nothing written since the last one does nothing (an idle store does not
//! fsync). The replica executor schedules flushes (at least every 500 ms while writes are
//! pending, and before it reports a write as durable), so a crash loses at most the writes of
//! the last interval, and always whole transactions: a file is never left half-written.
//! Dropping the store tries to flush and ignores errors; call `flush` first to see them.
//!
//! If a commit fails, its writes are gone; the fingerprint indexes are dropped with them and
//! rebuilt from whatever the file holds. If a write fails half-way (an I/O error in the middle
//! of a `put`), the open transaction may hold part of it; the affected namespace's index is
//! dropped so that it is rebuilt from the tables, and the caller should treat the store as
//! failed (not flush, reopen).
//!
//! # Fingerprint index
//!
//! Range fingerprints, counts and pivots are answered from an in-memory `FpTree<()>` per
//! namespace (keys are the suffixes, fingerprints [`SignedEntry::fingerprint`]), in O(log n)
//! without touching the file. A namespace's tree is built the first time a range method needs
//! it, by one scan of its `records` rows (decoding each entry and hashing it), in O(n) with
//! [`FpTree::from_sorted`]; afterwards `put`, `remove` and `remove_namespace` keep it in step
//! (a write to a namespace whose tree is not built yet only touches the file).
//!
//! Costs, measured in a release build on 100 000 entries with 32-byte keys (a 71 MB file, of
//! which 36 MB are table data): opening takes ≈40 ms, almost all of it redb's integrity check,
//! which reads the whole file (≈0.5 ms without it); the first range query on the namespace
//! builds its index by reading every row, decoding and hashing it, ≈0.8 µs per entry (≈80 ms).
//! Each indexed entry then costs about 150 bytes of memory for a 64-byte suffix: the suffix's
//! own heap allocation, its `Bytes` handle and its fingerprint, plus the tree's branches (see
//! the `fptree` module).
//!
//! # Schema versions
//!
//! `meta["schema_version"]` is the layout version, [`RedbStore::SCHEMA_VERSION`] (1) for this
//! build; a file without it is new (version 0). On open the migrations `MIGRATIONS[v]` (from `v` to
//! `v + 1`) run in order inside one write transaction, then the version is stored; a file with
//! a newer version is refused with [`StoreError::UnsupportedVersion`] and left untouched.
//!
//! # Failures
//!
//! A file that is not a redb database, or a redb database with tables of other types under
//! our names, fails to open with an error. Persistent files are opened with redb's integrity
//! check, so a damaged file is reported as [`StoreError::Corrupt`] instead of panicking. Rows
//! that do not decode give [`StoreError::Corrupt`]; every other redb failure is
//! [`StoreError::Backend`].

use std::{
    collections::{btree_map, BTreeMap},
    fmt,
    ops::Bound,
    path::Path,
};

use ::redb::{
    backends::InMemoryBackend, Builder, Database, ReadableTable, TableDefinition, WriteTransaction,
};
use bytes::Bytes;

use super::{
    fptree::FpTree,
    id_from_suffix,
    mem::{collect_spans, spans_fingerprint},
    suffix, suffix_of, DownloadPolicy, RankSpans, Store, StoreError, PEERS_PER_DOC,
};
use crate::{
    entry::{Entry, EntrySignature, Record, RecordIdentifier, SignedEntry},
    hash::{Hash, PeerId},
    keys::{Author, AuthorId, Capability, CapabilityKind, NamespaceId},
    ranger::{Fingerprint, Range},
    wire::{
        codec::{Decode, DecodeError, Encode, Reader},
        AuthorHeads,
    },
};

/// A 32-byte id as stored.
type Id = [u8; 32];

/// `(ns, author ‖ key)` → signatures ‖ record.
const RECORDS: TableDefinition<(&Id, &[u8]), &[u8]> = TableDefinition::new("records");
/// `(ns, key, author)` → `()`.
const RECORDS_BY_KEY: TableDefinition<(&Id, &[u8], &Id), ()> =
    TableDefinition::new("records_by_key");
/// `(ns, author)` → newest timestamp.
const HEADS: TableDefinition<(&Id, &Id), u64> = TableDefinition::new("heads");
/// Author id → secret key.
const AUTHORS: TableDefinition<&Id, &Id> = TableDefinition::new("authors");
/// Namespace id → `(kind, secret or id)`.
const NAMESPACES: TableDefinition<&Id, (u8, &Id)> = TableDefinition::new("namespaces");
/// Namespace id → postcard download policy.
const DOWNLOAD_POLICY: TableDefinition<&Id, &[u8]> = TableDefinition::new("download_policy");
/// Namespace id → concatenated peer ids, newest first.
const SYNC_PEERS: TableDefinition<&Id, &[u8]> = TableDefinition::new("sync_peers");
/// Store metadata.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The `meta` key of the schema version.
const VERSION_KEY: &str = "schema_version";

/// A schema migration: upgrades a file from version `i` to `i + 1` (its index in
/// [`MIGRATIONS`]), inside the open transaction.
type Migration = fn(&WriteTransaction) -> Result<(), StoreError>;

/// Migrations by source version. Version 0 is a new (empty) file.
const MIGRATIONS: &[Migration] = &[create_v1];

/// The schema version this build writes and understands.
const SCHEMA_VERSION: u64 = MIGRATIONS.len() as u64;

/// Length of the stored signatures (author's, then namespace's).
const SIGNATURES_LEN: usize = 128;

/// Version 0 → 1: creates the tables.
fn create_v1(txn: &WriteTransaction) -> Result<(), StoreError> {
    open_all_tables(txn)
}

/// Opens (creating if missing) every table of the current schema.
fn open_all_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(RECORDS).map_err(backend)?;
    txn.open_table(RECORDS_BY_KEY).map_err(backend)?;
    txn.open_table(HEADS).map_err(backend)?;
    txn.open_table(AUTHORS).map_err(backend)?;
    txn.open_table(NAMESPACES).map_err(backend)?;
    txn.open_table(DOWNLOAD_POLICY).map_err(backend)?;
    txn.open_table(SYNC_PEERS).map_err(backend)?;
    txn.open_table(META).map_err(backend)?;
    Ok(())
}

/// Maps a redb error: corruption and foreign table types are [`StoreError::Corrupt`],
/// everything else [`StoreError::Backend`].
fn backend(e: impl Into<::redb::Error>) -> StoreError {
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
fn corrupt(what: &str, e: DecodeError) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// The id after `id` as a 256-bit big-endian integer, `None` for `ff…ff`.
fn successor(id: &Id) -> Option<Id> {
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
fn ns_end(next: &Option<Id>) -> Bound<&Id> {
    match next {
        Some(next) => Bound::Excluded(next),
        None => Bound::Unbounded,
    }
}

/// The stored value of `entry`: its signatures and record.
fn encode_value(entry: &SignedEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIGNATURES_LEN + 48);
    entry.signature().encode(&mut out);
    entry.record().encode(&mut out);
    out
}

/// Rebuilds the entry stored under `(ns, suffix)`.
fn decode_entry(ns: &Id, suffix: &[u8], value: &[u8]) -> Result<SignedEntry, StoreError> {
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
type RecordKey = (&'static Id, &'static [u8]);

/// A `records` row as redb's range iterators yield it.
type RecordRow<'a> = Result<
    (
        ::redb::AccessGuard<'a, RecordKey>,
        ::redb::AccessGuard<'a, &'static [u8]>,
    ),
    ::redb::StorageError,
>;

/// Rebuilds the entry of a `records` row.
fn decode_row(row: RecordRow<'_>) -> Result<SignedEntry, StoreError> {
    let (k, v) = row.map_err(backend)?;
    let (ns, suffix) = k.value();
    decode_entry(ns, suffix, v.value())
}

/// Decodes stored peer ids.
fn decode_peers(bytes: &[u8]) -> Result<Vec<PeerId>, StoreError> {
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

/// The fingerprint indexes of the namespaces loaded so far.
type Indexes = BTreeMap<NamespaceId, FpTree<()>>;

/// Builds the fingerprint index of `ns` from its `records` rows.
fn build_index(txn: &WriteTransaction, ns: NamespaceId) -> Result<FpTree<()>, StoreError> {
    let records = txn.open_table(RECORDS).map_err(backend)?;
    let next = successor(ns.as_bytes());
    let upper = ns_end(&next).map(|n| (n, &[][..]));
    let rows = records
        .range::<(&Id, &[u8])>((Bound::Included((ns.as_bytes(), &[][..])), upper))
        .map_err(backend)?;
    let mut failure = None;
    let items = rows.map_while(|row| {
        let item = row.map_err(backend).and_then(|(k, v)| {
            let (row_ns, suffix) = k.value();
            let entry = decode_entry(row_ns, suffix, v.value())?;
            Ok((Bytes::copy_from_slice(suffix), entry.fingerprint(), ()))
        });
        match item {
            Ok(item) => Some(item),
            Err(e) => {
                failure = Some(e);
                None
            }
        }
    });
    let tree = FpTree::from_sorted(items);
    match failure {
        Some(e) => Err(e),
        None => Ok(tree),
    }
}

/// The index of `ns`, built if not loaded yet.
fn tree<'a>(
    txn: &WriteTransaction,
    indexes: &'a mut Indexes,
    ns: NamespaceId,
) -> Result<&'a mut FpTree<()>, StoreError> {
    match indexes.entry(ns) {
        btree_map::Entry::Occupied(o) => Ok(o.into_mut()),
        btree_map::Entry::Vacant(v) => Ok(v.insert(build_index(txn, ns)?)),
    }
}

/// Reads the records of `keys` (suffixes of `ns` in ascending order, as the index lists them)
/// with as few range scans as the gaps between them require.
fn read_records(
    txn: &WriteTransaction,
    ns: NamespaceId,
    keys: &[Bytes],
) -> Result<Vec<SignedEntry>, StoreError> {
    let records = txn.open_table(RECORDS).map_err(backend)?;
    let next = successor(ns.as_bytes());
    let mut out = Vec::with_capacity(keys.len());
    while let Some(first) = keys.get(out.len()) {
        let upper = ns_end(&next).map(|n| (n, &[][..]));
        let mut rows = records
            .range::<(&Id, &[u8])>((Bound::Included((ns.as_bytes(), &first[..])), upper))
            .map_err(backend)?;
        let start = out.len();
        while let Some(want) = keys.get(out.len()) {
            let Some(row) = rows.next() else { break };
            let (k, v) = row.map_err(backend)?;
            let (row_ns, suffix) = k.value();
            if suffix != &want[..] {
                break;
            }
            out.push(decode_entry(row_ns, suffix, v.value())?);
        }
        if out.len() == start {
            return Err(StoreError::Corrupt(
                "fingerprint index lists an entry the records table lacks".into(),
            ));
        }
    }
    Ok(out)
}

/// The persistent [`Store`]: a redb database (a file, or memory for tests and simulations)
/// plus an in-memory fingerprint index per namespace.
///
/// * **Transactions.** One redb write transaction stays open from the first access to the next
///   [`flush`](Store::flush); every read and write goes through it, so reads see unflushed
///   writes. `flush` commits durably: when it returns `Ok`, everything written so far survives
///   a crash. The replica executor schedules flushes (at least every 500 ms while writes are
///   pending). A crash loses the writes since the last flush, as whole transactions. Dropping
///   the store flushes and ignores errors.
/// * **Fingerprint index.** Range fingerprints, counts and pivots come from an in-memory
///   order-statistics tree per namespace, O(log n) each. A namespace's tree is built from the
///   file by the first range query on it (≈0.8 µs per entry in release builds) and costs
///   about 150 bytes of memory per entry.
/// * **Files.** Opening checks the whole file's integrity (≈40 ms for 100 000 entries) and
///   its schema version ([`SCHEMA_VERSION`](Self::SCHEMA_VERSION)), migrating older files and
///   refusing newer ones. Damaged or foreign files are errors, never panics.
///
/// The table layout is documented in the source of this module (`store/redb.rs`).
pub struct RedbStore {
    /// The open write transaction, begun by the first access after a flush.
    txn: Option<WriteTransaction>,
    /// Whether `txn` holds writes not committed yet.
    dirty: bool,
    /// Fingerprint indexes of the namespaces loaded so far.
    indexes: Indexes,
    db: Database,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore")
            .field("open_transaction", &self.txn.is_some())
            .field("dirty", &self.dirty)
            .field("indexed_namespaces", &self.indexes.len())
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// The schema version this build writes and understands.
    pub const SCHEMA_VERSION: u64 = SCHEMA_VERSION;

    /// Opens the database file at `path`, creating it if it does not exist (or is empty).
    ///
    /// The file is integrity-checked (redb verifies every page's checksum, reading the whole
    /// file), migrated to [`SCHEMA_VERSION`](Self::SCHEMA_VERSION) if older, and refused with
    /// [`StoreError::UnsupportedVersion`] if newer. A file that is not a redb database fails
    /// with an error. Only one store may have a file open at a time (redb locks it).
    pub fn persistent(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let db = Builder::new()
            .set_check_integrity_on_open(true)
            .create(path)
            .map_err(backend)?;
        Self::init(db)
    }

    /// A store in memory (redb's `InMemoryBackend`): the same code paths as a file, nothing
    /// survives the process.
    pub fn memory() -> Result<Self, StoreError> {
        let db = Builder::new()
            .create_with_backend(InMemoryBackend::new())
            .map_err(backend)?;
        Self::init(db)
    }

    /// Checks the schema version, runs migrations and wraps `db`.
    fn init(db: Database) -> Result<Self, StoreError> {
        let txn = db.begin_write().map_err(backend)?;
        let found = {
            let meta = txn.open_table(META).map_err(backend)?;
            let version = meta.get(VERSION_KEY).map_err(backend)?;
            version.map_or(0, |v| v.value())
        };
        if found > SCHEMA_VERSION {
            txn.abort().map_err(backend)?;
            return Err(StoreError::UnsupportedVersion {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        for migration in MIGRATIONS.iter().skip(found as usize) {
            migration(&txn)?;
        }
        open_all_tables(&txn)?;
        if found != SCHEMA_VERSION {
            let mut meta = txn.open_table(META).map_err(backend)?;
            meta.insert(VERSION_KEY, SCHEMA_VERSION).map_err(backend)?;
        }
        txn.commit().map_err(backend)?;
        Ok(Self {
            txn: None,
            dirty: false,
            indexes: Indexes::new(),
            db,
        })
    }

    /// The open transaction (begun if needed) and the indexes.
    fn parts(&mut self) -> Result<(&WriteTransaction, &mut Indexes), StoreError> {
        if self.txn.is_none() {
            self.txn = Some(self.db.begin_write().map_err(backend)?);
        }
        match &self.txn {
            Some(txn) => Ok((txn, &mut self.indexes)),
            None => Err(StoreError::Backend("no write transaction".into())),
        }
    }

    /// The open transaction, for a read.
    fn txn(&mut self) -> Result<&WriteTransaction, StoreError> {
        self.parts().map(|(txn, _)| txn)
    }

    /// Like [`parts`](Self::parts), for a write: marks the transaction dirty.
    fn parts_mut(&mut self) -> Result<(&WriteTransaction, &mut Indexes), StoreError> {
        self.dirty = true;
        self.parts()
    }

    /// The index of `ns`, built if needed.
    fn index(&mut self, ns: NamespaceId) -> Result<&FpTree<()>, StoreError> {
        let (txn, indexes) = self.parts()?;
        tree(txn, indexes, ns).map(|t| &*t)
    }

    /// `range` resolved against the index of `ns`.
    fn spans(
        &mut self,
        ns: NamespaceId,
        range: &Range,
    ) -> Result<(&FpTree<()>, RankSpans), StoreError> {
        let tree = self.index(ns)?;
        let spans = RankSpans::new(ns, range, tree.len(), |s| tree.rank(s));
        Ok((tree, spans))
    }

    /// Simulates a crash for tests: drops the open transaction without committing it and
    /// closes the database, so that only flushed writes remain.
    #[cfg(test)]
    pub(crate) fn crash(mut self) {
        if let Some(txn) = self.txn.take() {
            let _ = txn.abort();
        }
        self.dirty = false;
    }

    fn put_inner(txn: &WriteTransaction, entry: &SignedEntry) -> Result<(), StoreError> {
        let ns = entry.namespace();
        let author = entry.author();
        {
            let mut records = txn.open_table(RECORDS).map_err(backend)?;
            records
                .insert(
                    (ns.as_bytes(), suffix_of(entry.id())),
                    &encode_value(entry)[..],
                )
                .map_err(backend)?;
        }
        {
            let mut by_key = txn.open_table(RECORDS_BY_KEY).map_err(backend)?;
            by_key
                .insert((ns.as_bytes(), entry.key(), author.as_bytes()), ())
                .map_err(backend)?;
        }
        let mut heads = txn.open_table(HEADS).map_err(backend)?;
        let key = (ns.as_bytes(), author.as_bytes());
        let old = heads.get(key).map_err(backend)?.map(|v| v.value());
        if old.is_none_or(|old| old < entry.timestamp()) {
            heads.insert(key, entry.timestamp()).map_err(backend)?;
        }
        Ok(())
    }

    fn remove_inner(
        txn: &WriteTransaction,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
        suffix: &[u8],
    ) -> Result<Option<SignedEntry>, StoreError> {
        let removed = {
            let mut records = txn.open_table(RECORDS).map_err(backend)?;
            let removed = records.remove((ns.as_bytes(), suffix)).map_err(backend)?;
            removed.map(|v| decode_entry(ns.as_bytes(), suffix, v.value()))
        };
        if removed.is_some() {
            let mut by_key = txn.open_table(RECORDS_BY_KEY).map_err(backend)?;
            by_key
                .remove((ns.as_bytes(), key, author.as_bytes()))
                .map_err(backend)?;
        }
        removed.transpose()
    }

    fn remove_namespace_inner(txn: &WriteTransaction, ns: &Id) -> Result<(), StoreError> {
        let next = successor(ns);
        {
            let mut records = txn.open_table(RECORDS).map_err(backend)?;
            let upper = ns_end(&next).map(|n| (n, &[][..]));
            records
                .retain_in::<(&Id, &[u8]), _>((Bound::Included((ns, &[][..])), upper), |_, _| false)
                .map_err(backend)?;
        }
        {
            let mut by_key = txn.open_table(RECORDS_BY_KEY).map_err(backend)?;
            let upper = ns_end(&next).map(|n| (n, &[][..], &[0u8; 32]));
            by_key
                .retain_in::<(&Id, &[u8], &Id), _>(
                    (Bound::Included((ns, &[][..], &[0u8; 32])), upper),
                    |_, _| false,
                )
                .map_err(backend)?;
        }
        {
            let mut heads = txn.open_table(HEADS).map_err(backend)?;
            heads
                .retain_in::<(&Id, &Id), _>((ns, &[0u8; 32])..=(ns, &[0xffu8; 32]), |_, _| false)
                .map_err(backend)?;
        }
        txn.open_table(SYNC_PEERS)
            .map_err(backend)?
            .remove(ns)
            .map_err(backend)?;
        txn.open_table(DOWNLOAD_POLICY)
            .map_err(backend)?
            .remove(ns)
            .map_err(backend)?;
        txn.open_table(NAMESPACES)
            .map_err(backend)?
            .remove(ns)
            .map_err(backend)?;
        Ok(())
    }
}

impl Drop for RedbStore {
    /// Flushes; errors are ignored (call [`Store::flush`] to see them).
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl Store for RedbStore {
    fn get(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Option<SignedEntry>, StoreError> {
        let suffix = suffix(author, key);
        let records = self.txn()?.open_table(RECORDS).map_err(backend)?;
        let value = records.get((ns.as_bytes(), &suffix[..])).map_err(backend)?;
        value
            .map(|v| decode_entry(ns.as_bytes(), &suffix, v.value()))
            .transpose()
    }

    fn put(&mut self, entry: SignedEntry) -> Result<(), StoreError> {
        let ns = entry.namespace();
        let (txn, indexes) = self.parts_mut()?;
        if let Err(e) = Self::put_inner(txn, &entry) {
            indexes.remove(&ns);
            return Err(e);
        }
        if let Some(tree) = indexes.get_mut(&ns) {
            let key = Bytes::copy_from_slice(suffix_of(entry.id()));
            tree.insert(key, entry.fingerprint(), ());
        }
        Ok(())
    }

    fn remove(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Option<SignedEntry>, StoreError> {
        let suffix = suffix(author, key);
        let txn = self.txn()?;
        let removed = Self::remove_inner(txn, ns, author, key, &suffix);
        match &removed {
            Ok(None) => {}
            Ok(Some(_)) => {
                self.dirty = true;
                if let Some(tree) = self.indexes.get_mut(&ns) {
                    tree.remove(&suffix);
                }
            }
            Err(_) => {
                self.dirty = true;
                self.indexes.remove(&ns);
            }
        }
        removed
    }

    fn prefixed_by(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        prefix: &[u8],
    ) -> Result<Vec<SignedEntry>, StoreError> {
        let start = suffix(author, prefix);
        let records = self.txn()?.open_table(RECORDS).map_err(backend)?;
        let next = successor(ns.as_bytes());
        let upper = ns_end(&next).map(|n| (n, &[][..]));
        let rows = records
            .range::<(&Id, &[u8])>((Bound::Included((ns.as_bytes(), &start[..])), upper))
            .map_err(backend)?;
        let mut out = Vec::new();
        for row in rows {
            let (k, v) = row.map_err(backend)?;
            let (row_ns, suffix) = k.value();
            if !suffix.starts_with(&start) {
                break;
            }
            out.push(decode_entry(row_ns, suffix, v.value())?);
        }
        Ok(out)
    }

    fn namespace_len(&mut self, ns: NamespaceId) -> Result<usize, StoreError> {
        Ok(self.index(ns)?.len())
    }

    fn first_id(&mut self, ns: NamespaceId) -> Result<Option<RecordIdentifier>, StoreError> {
        // Index keys come from `decode_entry`-checked rows, so they hold an author.
        Ok(self
            .index(ns)?
            .select(0)
            .map(|(k, _, _)| id_from_suffix(ns, k)))
    }

    fn range_len(&mut self, ns: NamespaceId, range: &Range) -> Result<usize, StoreError> {
        Ok(self.spans(ns, range)?.1.len())
    }

    fn range_fingerprint(
        &mut self,
        ns: NamespaceId,
        range: &Range,
    ) -> Result<Fingerprint, StoreError> {
        let (tree, spans) = self.spans(ns, range)?;
        Ok(spans_fingerprint(tree, &spans))
    }

    fn range_pivot(
        &mut self,
        ns: NamespaceId,
        range: &Range,
        offset: usize,
    ) -> Result<Option<RecordIdentifier>, StoreError> {
        let (tree, spans) = self.spans(ns, range)?;
        Ok(spans
            .cyclic_rank(offset)
            .and_then(|rank| tree.select(rank))
            .map(|(k, _, _)| id_from_suffix(ns, k)))
    }

    fn range_entries(
        &mut self,
        ns: NamespaceId,
        range: &Range,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        let keys = {
            let (tree, spans) = self.spans(ns, range)?;
            collect_spans(tree, &spans, skip, limit, |k, _| k.clone())
        };
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        read_records(self.txn()?, ns, &keys)
    }

    fn scan_author_key(
        &mut self,
        ns: NamespaceId,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let records = self.txn()?.open_table(RECORDS).map_err(backend)?;
        let n = ns.as_bytes();
        let next = successor(n);
        let lo = match &lower {
            Bound::Unbounded => Bound::Included((n, &[][..])),
            Bound::Included(k) => Bound::Included((n, &k[..])),
            Bound::Excluded(k) => Bound::Excluded((n, &k[..])),
        };
        let hi = match &upper {
            Bound::Unbounded => ns_end(&next).map(|n| (n, &[][..])),
            Bound::Included(k) => Bound::Included((n, &k[..])),
            Bound::Excluded(k) => Bound::Excluded((n, &k[..])),
        };
        let rows = records.range::<(&Id, &[u8])>((lo, hi)).map_err(backend)?;
        let decode = decode_row;
        if reverse {
            rows.rev().take(limit).map(decode).collect()
        } else {
            rows.take(limit).map(decode).collect()
        }
    }

    fn scan_key_author(
        &mut self,
        ns: NamespaceId,
        lower: Bound<(Bytes, AuthorId)>,
        upper: Bound<(Bytes, AuthorId)>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let txn = self.txn()?;
        let n = ns.as_bytes();
        let next = successor(n);
        let zero = [0u8; 32];
        let keys: Vec<(Vec<u8>, Id)> = {
            let by_key = txn.open_table(RECORDS_BY_KEY).map_err(backend)?;
            let lo = match &lower {
                Bound::Unbounded => Bound::Included((n, &[][..], &zero)),
                Bound::Included((k, a)) => Bound::Included((n, &k[..], a.as_bytes())),
                Bound::Excluded((k, a)) => Bound::Excluded((n, &k[..], a.as_bytes())),
            };
            let hi = match &upper {
                Bound::Unbounded => ns_end(&next).map(|n| (n, &[][..], &zero)),
                Bound::Included((k, a)) => Bound::Included((n, &k[..], a.as_bytes())),
                Bound::Excluded((k, a)) => Bound::Excluded((n, &k[..], a.as_bytes())),
            };
            let rows = by_key
                .range::<(&Id, &[u8], &Id)>((lo, hi))
                .map_err(backend)?;
            let key = |row: Result<_, ::redb::StorageError>| {
                let (k, _): (::redb::AccessGuard<(&Id, &[u8], &Id)>, _) = row.map_err(backend)?;
                let (_, key, author) = k.value();
                Ok::<_, StoreError>((key.to_vec(), *author))
            };
            if reverse {
                rows.rev().take(limit).map(key).collect::<Result<_, _>>()?
            } else {
                rows.take(limit).map(key).collect::<Result<_, _>>()?
            }
        };
        let records = txn.open_table(RECORDS).map_err(backend)?;
        keys.into_iter()
            .map(|(key, author)| {
                let suffix = suffix(AuthorId::from_bytes(author), &key);
                let value = records.get((n, &suffix[..])).map_err(backend)?;
                match value {
                    Some(v) => decode_entry(n, &suffix, v.value()),
                    None => Err(StoreError::Corrupt(
                        "records_by_key lists an entry the records table lacks".into(),
                    )),
                }
            })
            .collect()
    }

    fn author_heads(&mut self, ns: NamespaceId) -> Result<AuthorHeads, StoreError> {
        let heads = self.txn()?.open_table(HEADS).map_err(backend)?;
        let n = ns.as_bytes();
        let mut out = AuthorHeads::default();
        for row in heads
            .range::<(&Id, &Id)>((n, &[0u8; 32])..=(n, &[0xffu8; 32]))
            .map_err(backend)?
        {
            let (k, v) = row.map_err(backend)?;
            out.insert(AuthorId::from_bytes(*k.value().1), v.value());
        }
        Ok(out)
    }

    fn content_hashes(&mut self) -> Result<Vec<Hash>, StoreError> {
        let records = self.txn()?.open_table(RECORDS).map_err(backend)?;
        let mut out = Vec::new();
        for row in records.iter().map_err(backend)? {
            let (_, v) = row.map_err(backend)?;
            let value = v.value();
            let mut r = Reader::new(value.get(SIGNATURES_LEN..).unwrap_or_default());
            let record = Record::decode(&mut r).map_err(|e| corrupt("record", e))?;
            r.finish().map_err(|e| corrupt("record", e))?;
            out.push(record.content_hash());
        }
        Ok(out)
    }

    fn put_author(&mut self, author: Author) -> Result<(), StoreError> {
        let (txn, _) = self.parts_mut()?;
        txn.open_table(AUTHORS)
            .map_err(backend)?
            .insert(author.id().as_bytes(), &author.to_bytes())
            .map_err(backend)?;
        Ok(())
    }

    fn get_author(&mut self, id: AuthorId) -> Result<Option<Author>, StoreError> {
        let authors = self.txn()?.open_table(AUTHORS).map_err(backend)?;
        let secret = authors.get(id.as_bytes()).map_err(backend)?;
        Ok(secret.map(|s| Author::from_bytes(s.value())))
    }

    fn delete_author(&mut self, id: AuthorId) -> Result<bool, StoreError> {
        let removed = {
            let mut authors = self.txn()?.open_table(AUTHORS).map_err(backend)?;
            let removed = authors.remove(id.as_bytes()).map_err(backend)?;
            removed.is_some()
        };
        self.dirty |= removed;
        Ok(removed)
    }

    fn list_authors(&mut self) -> Result<Vec<AuthorId>, StoreError> {
        let authors = self.txn()?.open_table(AUTHORS).map_err(backend)?;
        let mut out = Vec::new();
        for row in authors.iter().map_err(backend)? {
            let (k, _) = row.map_err(backend)?;
            out.push(AuthorId::from_bytes(*k.value()));
        }
        Ok(out)
    }

    fn put_namespace(&mut self, capability: Capability) -> Result<(), StoreError> {
        let (txn, _) = self.parts_mut()?;
        let (kind, bytes) = capability.raw();
        txn.open_table(NAMESPACES)
            .map_err(backend)?
            .insert(capability.id().as_bytes(), (kind, &bytes))
            .map_err(backend)?;
        Ok(())
    }

    fn get_namespace(&mut self, id: NamespaceId) -> Result<Option<Capability>, StoreError> {
        let namespaces = self.txn()?.open_table(NAMESPACES).map_err(backend)?;
        let row = namespaces.get(id.as_bytes()).map_err(backend)?;
        row.map(|v| {
            let (kind, bytes) = v.value();
            Capability::from_raw(kind, bytes)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown capability kind {kind}")))
        })
        .transpose()
    }

    fn list_namespaces(&mut self) -> Result<Vec<(NamespaceId, CapabilityKind)>, StoreError> {
        let namespaces = self.txn()?.open_table(NAMESPACES).map_err(backend)?;
        let mut out = Vec::new();
        for row in namespaces.iter().map_err(backend)? {
            let (k, v) = row.map_err(backend)?;
            let kind = v.value().0;
            let kind = CapabilityKind::from_u8(kind)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown capability kind {kind}")))?;
            out.push((NamespaceId::from_bytes(*k.value()), kind));
        }
        Ok(out)
    }

    fn remove_namespace(&mut self, id: NamespaceId) -> Result<(), StoreError> {
        let (txn, indexes) = self.parts_mut()?;
        indexes.remove(&id);
        Self::remove_namespace_inner(txn, id.as_bytes())
    }

    fn set_download_policy(
        &mut self,
        ns: NamespaceId,
        policy: &DownloadPolicy,
    ) -> Result<(), StoreError> {
        let (txn, _) = self.parts_mut()?;
        txn.open_table(DOWNLOAD_POLICY)
            .map_err(backend)?
            .insert(ns.as_bytes(), &policy.to_wire()[..])
            .map_err(backend)?;
        Ok(())
    }

    fn get_download_policy(
        &mut self,
        ns: NamespaceId,
    ) -> Result<Option<DownloadPolicy>, StoreError> {
        let policies = self.txn()?.open_table(DOWNLOAD_POLICY).map_err(backend)?;
        let row = policies.get(ns.as_bytes()).map_err(backend)?;
        row.map(|v| DownloadPolicy::from_wire(v.value()).map_err(|e| corrupt("download policy", e)))
            .transpose()
    }

    fn register_useful_peer(&mut self, ns: NamespaceId, peer: PeerId) -> Result<(), StoreError> {
        let (txn, _) = self.parts_mut()?;
        let mut table = txn.open_table(SYNC_PEERS).map_err(backend)?;
        let mut peers = match table.get(ns.as_bytes()).map_err(backend)? {
            Some(v) => decode_peers(v.value())?,
            None => Vec::new(),
        };
        peers.retain(|p| *p != peer);
        peers.insert(0, peer);
        peers.truncate(PEERS_PER_DOC);
        let bytes: Vec<u8> = peers.iter().flat_map(|p| p.to_bytes()).collect();
        table.insert(ns.as_bytes(), &bytes[..]).map_err(backend)?;
        Ok(())
    }

    fn sync_peers(&mut self, ns: NamespaceId) -> Result<Vec<PeerId>, StoreError> {
        let table = self.txn()?.open_table(SYNC_PEERS).map_err(backend)?;
        let row = table.get(ns.as_bytes()).map_err(backend)?;
        match row {
            Some(v) => decode_peers(v.value()),
            None => Ok(Vec::new()),
        }
    }

    /// Commits the open transaction durably if it holds writes (a no-op otherwise). On error the
    /// uncommitted writes are lost and the indexes are rebuilt from the file on next use.
    fn flush(&mut self) -> Result<(), StoreError> {
        if !self.dirty {
            return Ok(());
        }
        self.dirty = false;
        let Some(txn) = self.txn.take() else {
            return Ok(());
        };
        txn.commit().map_err(|e| {
            self.indexes.clear();
            backend(e)
        })
    }
}

#[cfg(test)]
mod tests;
