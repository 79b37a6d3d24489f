//! Local writes: one entry ([`Replicas::insert_local`]), a batch of entries by one author
//! ([`Replicas::insert_local_many`]) and prefix deletes.
//!
//! A batch is one command: an application that writes many entries pays the hand-off to the
//! store executor and the document and author look-ups once per batch instead of once per
//! entry. Every entry of a batch carries the same timestamp; a key that
//! appears twice in one batch is refused before anything is written, since two entries with
//! one timestamp would be ordered by their content hashes, not by their place in the batch.

use bytes::Bytes;

use super::{ReplicaError, ReplicaEvent, Replicas};
use crate::{
    entry::{Record, SignedEntry, ValidationFailure},
    hash::Hash,
    keys::{Author, AuthorId, NamespaceId, NamespaceSecret},
    ranger::ContentStatusSource,
    store::{put_prefix_aware, Backend, PutOutcome},
    time::Now,
};

/// Most writes in one [`Replicas::insert_local_many`] batch; a larger batch is refused with
/// [`ReplicaError::BatchTooLarge`] before anything is written (callers split their writes).
pub const MAX_LOCAL_BATCH: usize = 1024;

/// One write of a batch: `key → (hash, len)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalWrite {
    /// Key.
    pub key: Bytes,
    /// Content hash.
    pub hash: Hash,
    /// Content length.
    pub len: u64,
}

impl<B: Backend, C: ContentStatusSource> Replicas<B, C> {
    fn writable(
        &mut self,
        ns: NamespaceId,
        author: AuthorId,
    ) -> Result<(NamespaceSecret, Author), ReplicaError> {
        let secret = self
            .open_replica(ns)?
            .capability
            .secret()
            .cloned()
            .ok_or(ReplicaError::ReadOnly)?;
        if let Some(last) = self.last_author.as_ref().filter(|a| a.id() == author) {
            return Ok((secret, last.clone()));
        }
        let author = self
            .indexed
            .get_author(author)?
            .ok_or(ReplicaError::AuthorNotFound(author))?;
        self.last_author = Some(author.clone());
        Ok((secret, author))
    }

    fn insert_signed_local(&mut self, now: Now, entry: SignedEntry) -> Result<usize, ReplicaError> {
        let ns = entry.namespace();
        match put_prefix_aware(&mut self.indexed, entry.clone())? {
            PutOutcome::NotInserted => Err(ReplicaError::NewerEntryExists),
            PutOutcome::Inserted { removed } => {
                self.touch(now);
                self.emit(ns, || ReplicaEvent::LocalInsert {
                    namespace: ns,
                    entry,
                });
                Ok(removed)
            }
        }
    }

    /// Writes `key → (hash, len)` by `author`, stamped `now.wall_micros`.
    pub fn insert_local(
        &mut self,
        now: Now,
        ns: NamespaceId,
        author: AuthorId,
        key: &[u8],
        hash: Hash,
        len: u64,
    ) -> Result<SignedEntry, ReplicaError> {
        self.config.limits.check_local(key, hash, len)?;
        let (secret, author) = self.writable(ns, author)?;
        let entry = SignedEntry::new(
            &secret,
            &author,
            key,
            Record::new(hash, len, now.wall_micros),
        );
        self.insert_signed_local(now, entry.clone())?;
        Ok(entry)
    }

    /// Deletes every entry of `author` under `prefix` by writing a tombstone there; returns how
    /// many entries were removed.
    pub fn delete_prefix(
        &mut self,
        now: Now,
        ns: NamespaceId,
        author: AuthorId,
        prefix: &[u8],
    ) -> Result<usize, ReplicaError> {
        if prefix.len() > self.config.limits.max_key_len {
            return Err(ValidationFailure::KeyTooLarge {
                len: prefix.len(),
                max: self.config.limits.max_key_len,
            }
            .into());
        }
        let (secret, author) = self.writable(ns, author)?;
        let entry = SignedEntry::new(&secret, &author, prefix, Record::empty(now.wall_micros));
        self.insert_signed_local(now, entry)
    }

    /// Writes a batch by `author`, in order, every entry stamped `now.wall_micros`; returns
    /// per write the new entry, or `None` where an entry at least as new at the key or a
    /// prefix of it kept the write out.
    ///
    /// Checked before anything is written, refusing the whole batch: at most
    /// [`MAX_LOCAL_BATCH`] writes, the entry limits of every write, no key twice, a writable
    /// document and a known author. A store error stops the batch where it happened (the
    /// writes before it stay, as with one [`insert_local`](Self::insert_local) per entry).
    pub fn insert_local_many(
        &mut self,
        now: Now,
        ns: NamespaceId,
        author: AuthorId,
        writes: &[LocalWrite],
    ) -> Result<Vec<Option<SignedEntry>>, ReplicaError> {
        if writes.len() > MAX_LOCAL_BATCH {
            return Err(ReplicaError::BatchTooLarge {
                len: writes.len(),
                max: MAX_LOCAL_BATCH,
            });
        }
        for w in writes {
            self.config.limits.check_local(&w.key, w.hash, w.len)?;
        }
        let mut keys: Vec<&[u8]> = writes.iter().map(|w| &w.key[..]).collect();
        keys.sort_unstable();
        if let Some(pair) = keys.windows(2).find(|p| p[0] == p[1]) {
            return Err(ReplicaError::DuplicateKey(Bytes::copy_from_slice(pair[0])));
        }
        let (secret, author) = self.writable(ns, author)?;
        let mut out = Vec::with_capacity(writes.len());
        for w in writes {
            let record = Record::new(w.hash, w.len, now.wall_micros);
            let entry = SignedEntry::new(&secret, &author, &w.key, record);
            match self.insert_signed_local(now, entry.clone()) {
                Ok(_) => out.push(Some(entry)),
                Err(ReplicaError::NewerEntryExists) => out.push(None),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}
