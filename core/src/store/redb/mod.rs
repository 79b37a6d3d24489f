//! [`RedbBackend`]: the persistent [`Backend`], on a single redb file.
//!
//! The file layout (tables, row encodings, schema versions and migrations) is in the `schema`
//! module beside this one; this module holds the backend itself: its transaction handling and
//! the [`Backend`] methods. Fingerprints are not kept here: [`Indexed`](super::Indexed) builds
//! them from [`Backend::scan_author_key`] and keeps them in memory.
//!
//! # Transactions
//!
//! The store keeps **one** redb [`WriteTransaction`] open, begun lazily by the first access.
//! Every read and every write goes through it, so reads see uncommitted writes (as the
//! [`Backend`] contract requires) and a write costs no commit. [`Backend::flush`] commits it with
//! redb's default [`Durability::Immediate`](::redb::Durability::Immediate) — a `flush` that
//! returns `Ok` means everything written so far is on disk — and the next access begins a new
//! one. A `flush` with nothing written since the last one does nothing (an idle store does not
//! fsync). The replica executor schedules flushes (at least every 500 ms while writes are
//! pending, and before it reports a write as durable), so a crash loses at most the writes of
//! the last interval, and always whole transactions: a file is never left half-written.
//! Dropping the store tries to flush and ignores errors; call `flush` first to see them.
//!
//! If a commit fails, its writes are gone ([`Indexed`](super::Indexed) then drops its
//! fingerprint indexes and rebuilds them from whatever the file holds). If a write fails
//! half-way (an I/O error in the middle of a `put`), the open transaction may hold part of it,
//! and the caller should treat the store as failed (not flush, reopen).
//!
//! # Costs
//!
//! Measured in a release build on 100 000 entries with 32-byte keys (a 71 MB file, of which
//! 36 MB are table data): opening takes ≈40 ms, almost all of it redb's integrity check, which
//! reads the whole file (≈0.5 ms without it). Building a namespace's fingerprint index (by
//! [`Indexed`](super::Indexed), on its first range query) reads every row, decoding and
//! hashing it, ≈0.8 µs per entry (≈80 ms).
//!
//! # Failures
//!
//! A file that is not a redb database, or a redb database with tables of other types under
//! our names, fails to open with an error. Persistent files are opened with redb's integrity
//! check, so a damaged file is reported as [`StoreError::Corrupt`] instead of panicking. Rows
//! that do not decode give [`StoreError::Corrupt`]; every other redb failure is
//! [`StoreError::Backend`].

mod schema;
use std::{fmt, ops::Bound, path::Path};

use ::redb::{backends::InMemoryBackend, Builder, Database, ReadableTable, WriteTransaction};
use bytes::Bytes;

use self::schema::*;
use super::{
    suffix, suffix_of, Backend, DownloadPolicy, NamespaceSummary, StoreError, PEERS_PER_DOC,
};
use crate::{
    entry::{Record, SignedEntry},
    hash::{Hash, PeerId},
    keys::{Author, AuthorId, Capability, CapabilityKind, NamespaceId},
    wire::{
        codec::{Decode, Encode, Reader},
        AuthorHeads,
    },
};

/// The persistent [`Backend`]: a redb database (a file, or memory for tests and simulations)
/// holding rows only; wrap it in [`Indexed`](super::Indexed) for fingerprints.
///
/// * **Transactions.** One redb write transaction stays open from the first access to the next
///   [`flush`](Backend::flush); every read and write goes through it, so reads see unflushed
///   writes. `flush` commits durably: when it returns `Ok`, everything written so far survives
///   a crash. The replica executor schedules flushes (at least every 500 ms while writes are
///   pending). A crash loses the writes since the last flush, as whole transactions. Dropping
///   the store flushes and ignores errors.
/// * **Files.** Opening checks the whole file's integrity (≈40 ms for 100 000 entries) and
///   its schema version ([`SCHEMA_VERSION`](Self::SCHEMA_VERSION)), migrating older files and
///   refusing newer ones. Damaged or foreign files are errors, never panics.
///
/// The table layout is documented in the source of this module (`store/redb.rs`).
pub struct RedbBackend {
    /// The open write transaction, begun by the first access after a flush.
    txn: Option<WriteTransaction>,
    /// Whether `txn` holds writes not committed yet.
    dirty: bool,
    db: Database,
}

impl fmt::Debug for RedbBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbBackend")
            .field("open_transaction", &self.txn.is_some())
            .field("dirty", &self.dirty)
            .finish_non_exhaustive()
    }
}

impl RedbBackend {
    /// The schema version this build writes and understands.
    pub const SCHEMA_VERSION: u64 = SCHEMA_VERSION;

    /// redb's page cache for [`persistent`](Self::persistent): 64 MiB (a node sizes it from
    /// its memory budget instead).
    pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

    /// Opens the database file at `path`, creating it if it does not exist (or is empty).
    ///
    /// The file is integrity-checked (redb verifies every page's checksum, reading the whole
    /// file), migrated to [`SCHEMA_VERSION`](Self::SCHEMA_VERSION) if older, and refused with
    /// [`StoreError::UnsupportedVersion`] if newer. A file that is not a redb database fails
    /// with an error. Only one store may have a file open at a time (redb locks it).
    pub fn persistent(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::persistent_with_cache(path, Self::DEFAULT_CACHE_BYTES)
    }

    /// Like [`persistent`](Self::persistent), with redb's page cache limited to `cache_bytes`
    /// (redb's own default would be 1 GiB per database). The cache holds pages read and
    /// written; a smaller one costs disk reads, not correctness.
    pub fn persistent_with_cache(
        path: impl AsRef<Path>,
        cache_bytes: usize,
    ) -> Result<Self, StoreError> {
        let db = Builder::new()
            .set_check_integrity_on_open(true)
            .set_cache_size(cache_bytes)
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
            db,
        })
    }

    /// The open transaction, begun if needed.
    fn txn(&mut self) -> Result<&WriteTransaction, StoreError> {
        if self.txn.is_none() {
            self.txn = Some(self.db.begin_write().map_err(backend)?);
        }
        match &self.txn {
            Some(txn) => Ok(txn),
            None => Err(StoreError::Backend("no write transaction".into())),
        }
    }

    /// Like [`txn`](Self::txn), for a write: marks the transaction dirty.
    fn txn_mut(&mut self) -> Result<&WriteTransaction, StoreError> {
        self.dirty = true;
        self.txn()
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
        txn.open_table(SUMMARIES)
            .map_err(backend)?
            .remove(ns)
            .map_err(backend)?;
        Self::clear_chunks(txn, ns)
    }

    /// Deletes every chunk row of `ns`.
    fn clear_chunks(txn: &WriteTransaction, ns: &Id) -> Result<(), StoreError> {
        let next = successor(ns);
        let upper = ns_end(&next).map(|n| (n, &[][..]));
        txn.open_table(CHUNKS)
            .map_err(backend)?
            .retain_in::<(&Id, &[u8]), _>((Bound::Included((ns, &[][..])), upper), |_, _| false)
            .map_err(backend)?;
        Ok(())
    }
}

impl Drop for RedbBackend {
    /// Flushes; errors are ignored (call [`Backend::flush`] to see them).
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl Backend for RedbBackend {
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

    fn prefix_parents(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
    ) -> Result<Vec<SignedEntry>, StoreError> {
        // One table open for all the prefix lengths: opening it is most of a point read.
        let suffix = suffix(author, key);
        let records = self.txn()?.open_table(RECORDS).map_err(backend)?;
        let mut found = Vec::new();
        for end in 32..=suffix.len() {
            let part = &suffix[..end];
            if let Some(v) = records.get((ns.as_bytes(), part)).map_err(backend)? {
                found.push(decode_entry(ns.as_bytes(), part, v.value())?);
            }
        }
        Ok(found)
    }

    fn put(&mut self, entry: SignedEntry) -> Result<(), StoreError> {
        Self::put_inner(self.txn_mut()?, &entry)
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
        // A failed removal may have written part of itself.
        if !matches!(removed, Ok(None)) {
            self.dirty = true;
        }
        removed
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
        let txn = self.txn_mut()?;
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
        let txn = self.txn_mut()?;
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
        Self::remove_namespace_inner(self.txn_mut()?, id.as_bytes())
    }

    fn set_download_policy(
        &mut self,
        ns: NamespaceId,
        policy: &DownloadPolicy,
    ) -> Result<(), StoreError> {
        let txn = self.txn_mut()?;
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
        let txn = self.txn_mut()?;
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

    fn get_summary(&mut self, ns: NamespaceId) -> Result<Option<NamespaceSummary>, StoreError> {
        let table = self.txn()?.open_table(SUMMARIES).map_err(backend)?;
        let row = table.get(ns.as_bytes()).map_err(backend)?;
        row.map(|v| {
            NamespaceSummary::from_bytes(v.value())
                .ok_or_else(|| StoreError::Corrupt("namespace summary: wrong length".into()))
        })
        .transpose()
    }

    fn put_summary(
        &mut self,
        ns: NamespaceId,
        summary: Option<NamespaceSummary>,
    ) -> Result<(), StoreError> {
        let txn = self.txn_mut()?;
        let mut table = txn.open_table(SUMMARIES).map_err(backend)?;
        match summary {
            Some(s) => {
                table
                    .insert(ns.as_bytes(), &s.to_bytes()[..])
                    .map_err(backend)?;
            }
            None => {
                table.remove(ns.as_bytes()).map_err(backend)?;
            }
        }
        Ok(())
    }

    fn get_chunks(
        &mut self,
        ns: NamespaceId,
    ) -> Result<Vec<(Vec<u8>, NamespaceSummary)>, StoreError> {
        let table = self.txn()?.open_table(CHUNKS).map_err(backend)?;
        let id = ns.as_bytes();
        let next = successor(id);
        let upper = ns_end(&next).map(|n| (n, &[][..]));
        let rows = table
            .range::<(&Id, &[u8])>((Bound::Included((id, &[][..])), upper))
            .map_err(backend)?;
        let mut out = Vec::new();
        for row in rows {
            let (k, v) = row.map_err(backend)?;
            let sum = NamespaceSummary::from_bytes(v.value())
                .ok_or_else(|| StoreError::Corrupt("index chunk: wrong length".into()))?;
            out.push((k.value().1.to_vec(), sum));
        }
        Ok(out)
    }

    fn put_chunks(
        &mut self,
        ns: NamespaceId,
        clear: bool,
        rows: &[(Vec<u8>, Option<NamespaceSummary>)],
    ) -> Result<(), StoreError> {
        let txn = self.txn_mut()?;
        let id = ns.as_bytes();
        if clear {
            Self::clear_chunks(txn, id)?;
        }
        let mut table = txn.open_table(CHUNKS).map_err(backend)?;
        for (start, sum) in rows {
            match sum {
                Some(s) => {
                    table
                        .insert((id, &start[..]), &s.to_bytes()[..])
                        .map_err(backend)?;
                }
                None => {
                    table.remove((id, &start[..])).map_err(backend)?;
                }
            }
        }
        Ok(())
    }

    /// Commits the open transaction durably if it holds writes (a no-op otherwise). On error the
    /// uncommitted writes are lost.
    fn flush(&mut self) -> Result<(), StoreError> {
        if !self.dirty {
            return Ok(());
        }
        self.dirty = false;
        let Some(txn) = self.txn.take() else {
            return Ok(());
        };
        txn.commit().map_err(backend)
    }
}

#[cfg(test)]
mod tests;
