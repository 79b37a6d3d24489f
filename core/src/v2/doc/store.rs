//! What a v2 document session needs from the store, and its implementation over [`Indexed`].
//!
//! A session sees one document as a sorted set of entries keyed by their *flat key*
//! (`author id (32) ‖ key`, v1's order) and asks for range fingerprints (§3.3), counts,
//! the key at a rank (for splits), entries in order, and inserts. [`DocStore`] is that
//! interface; [`IndexedDoc`] answers it from a node's store.
//!
//! Cost: counts and keys at a rank come from the store's O(log n) index; a range's v2
//! fingerprint from the index's chunk list ([`Indexed::v2_range_fingerprint`]: the cached
//! sums of the chunks it covers plus two partial chunks read, each chunk read once after its
//! last write). The whole document's fingerprint is kept until the document is next written
//! ([`Indexed::v2_fingerprint`]), so phase 1 over unchanged documents costs nothing. A
//! rateless IBLT's item set comes from the item hashes the chunks keep with their sums
//! ([`Indexed::v2_item_hashes`]; learnt when phase 1 sums the document), and the entries of
//! decoded items from one pass over them ([`Indexed::v2_entries_with_items`]).

use std::collections::BTreeSet;

use crate::{
    entry::{
        CheckedSignatures, CheckedStream, EntryLimits, KeyCache, RecordIdentifier, SignedEntry,
    },
    keys::{AuthorId, NamespaceId},
    ranger::{ContentStatus, ContentStatusSource, Range, Received},
    store::{holds_same_or_newer, put_prefix_aware, Backend, Indexed, PutOutcome, StoreError},
    time::Now,
    v2::{fingerprint::Fingerprint, riblt::Item},
};

/// Entries read from the store at once while scanning a range.
pub const READ_CHUNK: usize = 1024;

/// A range of flat keys `[lower, upper)`; `None` is the start of the document (lower) or
/// past its end (upper).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyRange {
    /// Inclusive lower bound.
    pub lower: Option<Vec<u8>>,
    /// Exclusive upper bound.
    pub upper: Option<Vec<u8>>,
}

impl KeyRange {
    /// The whole document.
    pub fn all() -> Self {
        Self::default()
    }

    /// Whether no key can be in the range.
    pub fn is_empty(&self) -> bool {
        match (&self.lower, &self.upper) {
            (_, None) => false,
            (None, Some(u)) => u.is_empty(),
            (Some(l), Some(u)) => u <= l,
        }
    }

    /// Whether `flat` is in the range.
    pub fn contains(&self, flat: &[u8]) -> bool {
        self.lower.as_deref().is_none_or(|l| flat >= l)
            && self.upper.as_deref().is_none_or(|u| flat < u)
    }
}

/// The flat key of an entry: author id then key.
pub fn flat_key(entry: &SignedEntry) -> Vec<u8> {
    let mut k = Vec::with_capacity(32 + entry.key().len());
    k.extend_from_slice(entry.author().as_bytes());
    k.extend_from_slice(entry.key());
    k
}

/// One document, as a v2 session reads and writes it.
pub trait DocStore {
    /// The document's namespace.
    fn namespace(&self) -> NamespaceId;
    /// The v2 fingerprint (sum and count) of the entries in `range`.
    fn fingerprint(&mut self, range: &KeyRange) -> Result<Fingerprint, StoreError>;
    /// [`fingerprint`](Self::fingerprint) of each of `ranges`, which ascend and do not
    /// overlap: a store may share the work at bounds where one range ends and the next
    /// starts.
    fn fingerprints(&mut self, ranges: &[KeyRange]) -> Result<Vec<Fingerprint>, StoreError>;
    /// Number of entries in `range`.
    fn count(&mut self, range: &KeyRange) -> Result<u64, StoreError>;
    /// The flat key of the entry at `rank` (from 0) in `range`.
    fn key_at(&mut self, range: &KeyRange, rank: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// At most `limit` entries of `range` in ascending order, after skipping `skip`.
    fn entries(
        &mut self,
        range: &KeyRange,
        skip: u64,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError>;
    /// The entry at a flat key.
    fn get(&mut self, flat: &[u8]) -> Result<Option<SignedEntry>, StoreError>;
    /// Whether this node holds the content of each of `entries` (sent along with them), in
    /// order. Asked for a batch at once: a look-up may be a round trip to a blob store.
    fn content_statuses(&mut self, entries: &[SignedEntry]) -> Vec<ContentStatus>;
    /// Validates an entry received from the peer (namespace, limits, both signatures) and
    /// inserts it prefix-aware, as v1 does. An entry held already in the same or a newer
    /// version is [`Received::NotInserted`] without validation, as in v1.
    fn insert(&mut self, entry: SignedEntry, status: ContentStatus)
        -> Result<Received, StoreError>;
    /// The item hash of every entry, in any order (a rateless IBLT's set).
    fn item_hashes(&mut self) -> Result<Vec<Item>, StoreError>;
    /// The entries whose item hashes are in `wanted`, in key order (hashes of no entry held
    /// are skipped).
    fn entries_with_items(
        &mut self,
        wanted: &BTreeSet<Item>,
    ) -> Result<Vec<SignedEntry>, StoreError>;
}

/// Splits a flat key into author and key.
fn split(flat: &[u8]) -> (AuthorId, &[u8]) {
    let mut a = [0u8; 32];
    a.copy_from_slice(&flat[..32]);
    (AuthorId::from_bytes(a), &flat[32..])
}

/// A received entry, as reported to [`IndexedDoc`]'s observer.
pub type OnReceived<'a> = dyn FnMut(&SignedEntry, ContentStatus, &Received) + 'a;

/// A [`DocStore`] over a node's store: one namespace of an [`Indexed`] backend, validating
/// received entries with [`EntryLimits`] at `now`.
pub struct IndexedDoc<'a, B> {
    indexed: &'a mut Indexed<B>,
    ns: NamespaceId,
    limits: EntryLimits,
    now: Now,
    keys: KeyCache,
    content: Option<&'a mut dyn ContentStatusSource>,
    observer: Option<&'a mut OnReceived<'a>>,
    ahead: Option<&'a mut dyn CheckedStream>,
    checked: CheckedSignatures,
}

impl<B> std::fmt::Debug for IndexedDoc<'_, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexedDoc").field("ns", &self.ns).finish()
    }
}

impl<'a, B: Backend> IndexedDoc<'a, B> {
    /// Namespace `ns` of `indexed`; entries are sent as [`ContentStatus::Complete`] unless a
    /// content source is given ([`with_content`](Self::with_content)).
    pub fn new(
        indexed: &'a mut Indexed<B>,
        ns: NamespaceId,
        limits: EntryLimits,
        now: Now,
    ) -> Self {
        Self {
            indexed,
            ns,
            limits,
            now,
            keys: KeyCache::default(),
            content: None,
            observer: None,
            ahead: None,
            checked: CheckedSignatures::default(),
        }
    }

    /// Takes the signatures of received entries from `ahead` where it has them (checked on
    /// other threads while this document's entries are inserted; see [`CheckedStream`]).
    /// Same results as without.
    pub fn with_checks(mut self, ahead: &'a mut dyn CheckedStream) -> Self {
        self.ahead = Some(ahead);
        self
    }

    /// Reports content statuses from `content`.
    pub fn with_content(mut self, content: &'a mut dyn ContentStatusSource) -> Self {
        self.content = Some(content);
        self
    }

    /// Calls `observer` with every received entry and what became of it.
    pub fn with_observer(mut self, observer: &'a mut OnReceived<'a>) -> Self {
        self.observer = Some(observer);
        self
    }

    fn id(&self, flat: &[u8]) -> RecordIdentifier {
        let (author, key) = split(flat);
        RecordIdentifier::new(self.ns, author, key)
    }

    /// The v1 range of `range`, or `None` when it is empty. The start of the document is the
    /// smallest identifier (zero author, empty key), so `[x, start)` wraps to "x and above".
    fn v1_range(&self, range: &KeyRange) -> Option<Range> {
        if range.is_empty() {
            return None;
        }
        let start = RecordIdentifier::new(self.ns, AuthorId::from_bytes([0; 32]), b"");
        let x = range.lower.as_deref().map_or(start.clone(), |l| self.id(l));
        let y = range.upper.as_deref().map_or(start, |u| self.id(u));
        Some(Range::new(x, y))
    }
}

impl<B: Backend> DocStore for IndexedDoc<'_, B> {
    fn namespace(&self) -> NamespaceId {
        self.ns
    }

    fn fingerprint(&mut self, range: &KeyRange) -> Result<Fingerprint, StoreError> {
        let whole = *range == KeyRange::all();
        if whole {
            if let Some(fp) = self.indexed.v2_fingerprint(self.ns) {
                return Ok(fp);
            }
        }
        if range.is_empty() {
            return Ok(Fingerprint::default());
        }
        let fp = self.indexed.v2_range_fingerprint(
            self.ns,
            range.lower.as_deref(),
            range.upper.as_deref(),
        )?;
        if whole {
            self.indexed.set_v2_fingerprint(self.ns, fp);
        }
        Ok(fp)
    }

    fn fingerprints(&mut self, ranges: &[KeyRange]) -> Result<Vec<Fingerprint>, StoreError> {
        if let [one] = ranges {
            return Ok(vec![self.fingerprint(one)?]);
        }
        let bounds: Vec<_> = ranges
            .iter()
            .map(|r| (r.lower.as_deref(), r.upper.as_deref()))
            .collect();
        self.indexed.v2_range_fingerprints(self.ns, &bounds)
    }

    fn count(&mut self, range: &KeyRange) -> Result<u64, StoreError> {
        match self.v1_range(range) {
            None => Ok(0),
            Some(r) => Ok(self.indexed.range_len(self.ns, &r)? as u64),
        }
    }

    fn key_at(&mut self, range: &KeyRange, rank: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(r) = self.v1_range(range) else {
            return Ok(None);
        };
        if rank >= self.indexed.range_len(self.ns, &r)? as u64 {
            return Ok(None);
        }
        Ok(self
            .indexed
            .range_pivot(self.ns, &r, rank as usize)?
            .map(|id| [id.author().as_bytes().as_slice(), id.key()].concat()))
    }

    fn entries(
        &mut self,
        range: &KeyRange,
        skip: u64,
        limit: usize,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        match self.v1_range(range) {
            None => Ok(Vec::new()),
            Some(r) => self
                .indexed
                .range_entries(self.ns, &r, skip as usize, limit),
        }
    }

    fn get(&mut self, flat: &[u8]) -> Result<Option<SignedEntry>, StoreError> {
        if flat.len() < 32 {
            return Ok(None);
        }
        let (author, key) = split(flat);
        self.indexed.get(self.ns, author, key)
    }

    fn content_statuses(&mut self, entries: &[SignedEntry]) -> Vec<ContentStatus> {
        match &mut self.content {
            Some(c) => {
                let hashes: Vec<_> = entries.iter().map(SignedEntry::content_hash).collect();
                c.content_statuses(&hashes)
            }
            None => vec![ContentStatus::Complete; entries.len()],
        }
    }

    fn insert(
        &mut self,
        entry: SignedEntry,
        status: ContentStatus,
    ) -> Result<Received, StoreError> {
        // Entries already held (or held newer) are dropped before any signature work, as
        // v1 does: they would not be stored whatever their signatures say.
        if holds_same_or_newer(self.indexed, self.ns, &entry)? {
            if let Some(o) = &mut self.observer {
                o(&entry, status, &Received::NotInserted);
            }
            return Ok(Received::NotInserted);
        }
        if !self.checked.contains(&entry) {
            if let Some(more) = self.ahead.as_mut().and_then(|a| a.wait_for(&entry)) {
                self.checked.extend(more);
            }
        }
        let received = if self
            .limits
            .check_remote_with(&entry, self.ns, self.now, &mut self.keys, &self.checked)
            .is_err()
        {
            Received::Invalid
        } else {
            match put_prefix_aware(self.indexed, entry.clone())? {
                PutOutcome::Inserted { removed } => Received::Inserted { removed },
                PutOutcome::NotInserted => Received::NotInserted,
            }
        };
        if let Some(o) = &mut self.observer {
            o(&entry, status, &received);
        }
        Ok(received)
    }

    fn item_hashes(&mut self) -> Result<Vec<Item>, StoreError> {
        self.indexed.v2_item_hashes(self.ns)
    }

    fn entries_with_items(
        &mut self,
        wanted: &BTreeSet<Item>,
    ) -> Result<Vec<SignedEntry>, StoreError> {
        self.indexed.v2_entries_with_items(self.ns, wanted)
    }
}

/// Scans `range` with [`DocStore::entries`] in chunks, calling `f` until it returns `false`.
pub(crate) fn scan<S: DocStore + ?Sized>(
    store: &mut S,
    range: &KeyRange,
    mut f: impl FnMut(SignedEntry) -> bool,
) -> Result<(), StoreError> {
    let mut skip = 0;
    loop {
        let chunk = store.entries(range, skip, READ_CHUNK)?;
        let n = chunk.len();
        for e in chunk {
            if !f(e) {
                return Ok(());
            }
        }
        if n < READ_CHUNK {
            return Ok(());
        }
        skip += n as u64;
    }
}
