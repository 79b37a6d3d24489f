//! Queries over a document's entries, run in bounded pages.
//!
//! The query language is iroh-docs': a flat listing sorted by author then key or by key then
//! author, or the single latest entry per key across authors; filtered by author and by exact
//! key or key prefix; with offset, limit, and tombstones hidden unless asked for. Results are
//! identical to iroh-docs' (its `test_replica_queries` is ported in the store tests).
//!
//! Unlike iroh-docs, which commits its write transaction to read a snapshot, a query here runs
//! as a sequence of pages: [`run_query`] does a bounded amount of work, returns the entries it
//! found and a [`QueryCursor`] to continue from. The executor stays responsive however large the
//! result, and a slow consumer holds nothing.

use std::ops::Bound;

use bytes::Bytes;

use super::{prefix_end, suffix, suffix_of, Backend, StoreError};
use crate::{
    entry::SignedEntry,
    keys::{AuthorId, NamespaceId},
};

/// Order of a flat query.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum SortBy {
    /// By key, then author.
    KeyAuthor,
    /// By author, then key (the storage order).
    #[default]
    AuthorKey,
}

/// Direction of iteration.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum SortDirection {
    /// Ascending.
    #[default]
    Asc,
    /// Descending.
    Desc,
}

/// Which entries a query returns per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryKind {
    /// Every entry, in the given order.
    Flat(SortBy),
    /// The newest entry per key across authors, ordered by key.
    SingleLatestPerKey,
}

/// Filter on keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub enum KeyFilter {
    /// Any key.
    #[default]
    Any,
    /// Exactly this key.
    Exact(Bytes),
    /// Keys starting with these bytes.
    Prefix(Bytes),
}

impl KeyFilter {
    fn matches(&self, key: &[u8]) -> bool {
        match self {
            KeyFilter::Any => true,
            KeyFilter::Exact(k) => key == k.as_ref(),
            KeyFilter::Prefix(p) => key.starts_with(p),
        }
    }
}

/// A query. Build with [`Query::all`] or [`Query::single_latest_per_key`] and the chainable
/// setters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Query {
    /// Flat or latest-per-key.
    pub kind: QueryKind,
    /// Only this author's entries.
    pub author: Option<AuthorId>,
    /// Key filter.
    pub key: KeyFilter,
    /// At most this many results.
    pub limit: Option<u64>,
    /// Skip this many matching results first.
    pub offset: u64,
    /// Include tombstones.
    pub include_empty: bool,
    /// Direction.
    pub direction: SortDirection,
}

impl Query {
    /// All entries, by author then key, ascending.
    pub fn all() -> Self {
        Self {
            kind: QueryKind::Flat(SortBy::AuthorKey),
            author: None,
            key: KeyFilter::Any,
            limit: None,
            offset: 0,
            include_empty: false,
            direction: SortDirection::Asc,
        }
    }

    /// The newest entry per key, by key, ascending.
    pub fn single_latest_per_key() -> Self {
        Self {
            kind: QueryKind::SingleLatestPerKey,
            ..Self::all()
        }
    }

    /// `all()` filtered to one author.
    pub fn author(author: AuthorId) -> Self {
        Self::all().with_author(author)
    }

    /// `all()` filtered to one exact key.
    pub fn key_exact(key: impl Into<Bytes>) -> Self {
        Self::all().with_key_exact(key)
    }

    /// `all()` filtered to a key prefix.
    pub fn key_prefix(prefix: impl Into<Bytes>) -> Self {
        Self::all().with_key_prefix(prefix)
    }

    /// Only entries of `author`.
    pub fn with_author(mut self, author: AuthorId) -> Self {
        self.author = Some(author);
        self
    }

    /// Only entries with exactly this key.
    pub fn with_key_exact(mut self, key: impl Into<Bytes>) -> Self {
        self.key = KeyFilter::Exact(key.into());
        self
    }

    /// Only entries whose key starts with `prefix`.
    pub fn with_key_prefix(mut self, prefix: impl Into<Bytes>) -> Self {
        self.key = KeyFilter::Prefix(prefix.into());
        self
    }

    /// Order of a flat query (ignored for latest-per-key, which is always by key).
    pub fn sort_by(mut self, sort: SortBy, direction: SortDirection) -> Self {
        if let QueryKind::Flat(_) = self.kind {
            self.kind = QueryKind::Flat(sort);
        }
        self.direction = direction;
        self
    }

    /// Direction.
    pub fn sort_direction(mut self, direction: SortDirection) -> Self {
        self.direction = direction;
        self
    }

    /// At most `limit` results.
    pub fn limit(mut self, limit: u64) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Skip the first `offset` results.
    pub fn offset(mut self, offset: u64) -> Self {
        self.offset = offset;
        self
    }

    /// Include tombstones (empty entries).
    pub fn include_empty(mut self) -> Self {
        self.include_empty = true;
        self
    }
}

/// Where a paged query continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryCursor {
    after: Position,
    skipped: u64,
    emitted: u64,
}

#[cfg(test)]
impl QueryCursor {
    /// A cursor at the start of a query (tests of cursor bookkeeping).
    pub(crate) fn at_start() -> Self {
        Self {
            after: Position::Start,
            skipped: 0,
            emitted: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Position {
    Start,
    /// Last `author ‖ key` suffix handled.
    AuthorKey(Vec<u8>),
    /// Last `(key, author)` handled.
    KeyAuthor(Bytes, AuthorId),
    /// Last key whose group was handled.
    Key(Bytes),
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryPage {
    /// Entries found in this page (possibly none even if more follow).
    pub entries: Vec<SignedEntry>,
    /// Where to continue; `None` when the query is complete.
    pub next: Option<QueryCursor>,
}

const MIN_AUTHOR: AuthorId = AuthorId::from_bytes([0; 32]);
const MAX_AUTHOR: AuthorId = AuthorId::from_bytes([0xff; 32]);

/// Runs one page of `query`, scanning at most about `budget` stored rows.
pub fn run_query<B: Backend + ?Sized>(
    store: &mut B,
    ns: NamespaceId,
    query: &Query,
    cursor: Option<QueryCursor>,
    budget: usize,
) -> Result<QueryPage, StoreError> {
    let budget = budget.max(1);
    let mut cursor = cursor.unwrap_or(QueryCursor {
        after: Position::Start,
        skipped: 0,
        emitted: 0,
    });
    let mut out = Vec::new();
    let reverse = query.direction == SortDirection::Desc;
    let by_key = match query.kind {
        QueryKind::SingleLatestPerKey => None,
        // With one author, key order is author-key order: walk the primary index.
        QueryKind::Flat(SortBy::KeyAuthor) if query.author.is_none() => Some(true),
        QueryKind::Flat(_) => Some(false),
    };
    let done = match by_key {
        Some(false) => flat_author_key(store, ns, query, &mut cursor, budget, reverse, &mut out)?,
        Some(true) => flat_key_author(store, ns, query, &mut cursor, budget, reverse, &mut out)?,
        None => latest_per_key(store, ns, query, &mut cursor, budget, reverse, &mut out)?,
    };
    let limit_reached = query.limit.is_some_and(|l| cursor.emitted >= l);
    Ok(QueryPage {
        entries: out,
        next: (!done && !limit_reached).then_some(cursor),
    })
}

/// Applies offset, limit and the tombstone filter to one candidate; false once the limit is hit.
fn emit(
    query: &Query,
    cursor: &mut QueryCursor,
    out: &mut Vec<SignedEntry>,
    e: SignedEntry,
) -> bool {
    if query.limit.is_some_and(|l| cursor.emitted >= l) {
        return false;
    }
    if !query.include_empty && e.is_empty() {
        return true;
    }
    if cursor.skipped < query.offset {
        cursor.skipped += 1;
        return true;
    }
    cursor.emitted += 1;
    out.push(e);
    query.limit.is_none_or(|l| cursor.emitted < l)
}

fn bounds_after<T>(
    lower: Bound<T>,
    upper: Bound<T>,
    after: Option<T>,
    reverse: bool,
) -> (Bound<T>, Bound<T>) {
    match (after, reverse) {
        (None, _) => (lower, upper),
        (Some(a), false) => (Bound::Excluded(a), upper),
        (Some(a), true) => (lower, Bound::Excluded(a)),
    }
}

fn flat_author_key<B: Backend + ?Sized>(
    store: &mut B,
    ns: NamespaceId,
    query: &Query,
    cursor: &mut QueryCursor,
    budget: usize,
    reverse: bool,
    out: &mut Vec<SignedEntry>,
) -> Result<bool, StoreError> {
    let (lower, upper) = match (&query.author, &query.key) {
        (None, _) => (Bound::Unbounded, Bound::Unbounded),
        (Some(a), KeyFilter::Exact(k)) => {
            let s = suffix(*a, k);
            (Bound::Included(s.clone()), Bound::Included(s))
        }
        (Some(a), KeyFilter::Prefix(p)) => prefix_bounds(suffix(*a, p)),
        (Some(a), KeyFilter::Any) => prefix_bounds(a.as_bytes().to_vec()),
    };
    let after = match &cursor.after {
        Position::AuthorKey(s) => Some(s.clone()),
        _ => None,
    };
    let (lower, upper) = bounds_after(lower, upper, after, reverse);
    let rows = store.scan_author_key(ns, lower, upper, reverse, budget)?;
    let exhausted = rows.len() < budget;
    for e in rows {
        cursor.after = Position::AuthorKey(suffix_of(e.id()).to_vec());
        if query.author.is_some_and(|a| a != e.author()) || !query.key.matches(e.key()) {
            continue;
        }
        if !emit(query, cursor, out, e) {
            return Ok(true);
        }
    }
    Ok(exhausted)
}

fn prefix_bounds(prefix: Vec<u8>) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let upper = match prefix_end(&prefix) {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    (Bound::Included(prefix), upper)
}

/// A bound in `(key, author)` order.
type KeyAuthorBound = Bound<(Bytes, AuthorId)>;

fn key_bounds(filter: &KeyFilter) -> (KeyAuthorBound, KeyAuthorBound) {
    match filter {
        KeyFilter::Any => (Bound::Unbounded, Bound::Unbounded),
        KeyFilter::Exact(k) => (
            Bound::Included((k.clone(), MIN_AUTHOR)),
            Bound::Included((k.clone(), MAX_AUTHOR)),
        ),
        KeyFilter::Prefix(p) => (
            Bound::Included((p.clone(), MIN_AUTHOR)),
            match prefix_end(p) {
                Some(end) => Bound::Excluded((end.into(), MIN_AUTHOR)),
                None => Bound::Unbounded,
            },
        ),
    }
}

fn flat_key_author<B: Backend + ?Sized>(
    store: &mut B,
    ns: NamespaceId,
    query: &Query,
    cursor: &mut QueryCursor,
    budget: usize,
    reverse: bool,
    out: &mut Vec<SignedEntry>,
) -> Result<bool, StoreError> {
    let (lower, upper) = key_bounds(&query.key);
    let after = match &cursor.after {
        Position::KeyAuthor(k, a) => Some((k.clone(), *a)),
        _ => None,
    };
    let (lower, upper) = bounds_after(lower, upper, after, reverse);
    let rows = store.scan_key_author(ns, lower, upper, reverse, budget)?;
    let exhausted = rows.len() < budget;
    for e in rows {
        cursor.after = Position::KeyAuthor(e.id().key_bytes(), e.author());
        if !emit(query, cursor, out, e) {
            return Ok(true);
        }
    }
    Ok(exhausted)
}

fn latest_per_key<B: Backend + ?Sized>(
    store: &mut B,
    ns: NamespaceId,
    query: &Query,
    cursor: &mut QueryCursor,
    budget: usize,
    reverse: bool,
    out: &mut Vec<SignedEntry>,
) -> Result<bool, StoreError> {
    let (lower, upper) = key_bounds(&query.key);
    // Resume after a whole key group: in ascending order past (key, MAX), descending before (key, MIN).
    let after = match &cursor.after {
        Position::Key(k) => Some(k.clone()),
        _ => None,
    };
    let (lower, upper) = match (after, reverse) {
        (None, _) => (lower, upper),
        (Some(k), false) => (Bound::Excluded((k, MAX_AUTHOR)), upper),
        (Some(k), true) => (lower, Bound::Excluded((k, MIN_AUTHOR))),
    };
    let mut rows = store.scan_key_author(ns, lower.clone(), upper.clone(), reverse, budget)?;
    let exhausted = rows.len() < budget;
    if !exhausted {
        // The last key's group may continue past the page: finish it with a scan of that key.
        let last = rows.last().expect("budget >= 1").id().key_bytes();
        let first_key = rows[0].id().key_bytes();
        if first_key == last {
            let (lo, hi) = key_bounds(&KeyFilter::Exact(last));
            rows = store.scan_key_author(ns, lo, hi, reverse, usize::MAX)?;
        } else {
            rows.retain(|e| e.key() != last.as_ref());
        }
    }
    let mut group: Option<(Bytes, Option<SignedEntry>)> = None;
    let flush = |group: Option<(Bytes, Option<SignedEntry>)>,
                 cursor: &mut QueryCursor,
                 out: &mut Vec<SignedEntry>|
     -> bool {
        match group {
            Some((key, best)) => {
                cursor.after = Position::Key(key);
                match best {
                    Some(e) => emit(query, cursor, out, e),
                    None => true,
                }
            }
            None => true,
        }
    };
    for e in rows {
        let key = e.id().key_bytes();
        if group.as_ref().is_none_or(|(k, _)| *k != key) {
            if !flush(group.take(), cursor, out) {
                return Ok(true);
            }
            group = Some((key, None));
        }
        if query.author.is_some_and(|a| a != e.author()) {
            continue;
        }
        let slot = &mut group.as_mut().expect("set above").1;
        if slot
            .as_ref()
            .is_none_or(|best| e.timestamp() > best.timestamp())
        {
            *slot = Some(e);
        }
    }
    if !flush(group, cursor, out) {
        return Ok(true);
    }
    Ok(exhausted)
}

/// Runs `query` to completion (for tests and small documents).
pub fn query_all<B: Backend + ?Sized>(
    store: &mut B,
    ns: NamespaceId,
    query: &Query,
) -> Result<Vec<SignedEntry>, StoreError> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = run_query(store, ns, query, cursor, 64)?;
        out.extend(page.entries);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(out),
        }
    }
}
