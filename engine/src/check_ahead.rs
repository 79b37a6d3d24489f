//! Signature checks of a large sync message on every core, overlapping with its insert.
//!
//! Checking an entry's two signatures is most of what ingesting a synced entry costs, and the
//! store executor is one thread. For a sync message with at least [`PARALLEL_CHECK_MIN`] new
//! entries — a v1 reconciliation message, or a v2 `Entries` frame (≤ 64 KiB, a few hundred
//! entries) — the store thread hands those entries to one checker thread per core, in chunks
//! ([`chunk_len`]: up to [`CHUNK`], smaller so that a v2 frame is shared by every checker) in
//! message order, and starts processing the message at once: before the executor
//! would check an entry itself it asks this module's [`CheckedStream`] for it, which waits until
//! the chunk holding the entry is checked. So the first chunks are inserted while the later
//! ones are still being checked, instead of the insert waiting for every check, with one core
//! idle. For v1 the gain is modest (`bench/RESULTS.md`, A/B on W3: 0–15 % on the entries):
//! with both cores checking, little idle time was left to fill. v2 sends a large document in
//! many frames, each a store command; without checks ahead its first syncs ran on one core.
//!
//! The checkers hand over [`CheckedSignatures`], which only verifying builds; an entry the
//! stream does not know (already held, or out of the expected order) is checked by the
//! executor as usual, so the results are those of checking one by one. When processing ends
//! early (a limit, a store error) the remaining chunks are skipped.
//!
//! Bounds: the checkers hold copies of the message's new entries (at most one message, up to
//! the sync frame limit) and at most one result per chunk.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc, Arc,
    },
    thread,
};

use sheaf_core::{
    entry::{CheckedSignatures, CheckedStream},
    replica::{ReplicaError, Replicas, StoreCommand, StoreResponse},
    store::Backend,
    time::Now,
    SignedEntry,
};

use crate::store_thread::BlobContent;

/// New entries in a sync message from which checking their signatures on other threads pays
/// for starting the threads.
pub(crate) const PARALLEL_CHECK_MIN: usize = 64;

/// Entries per chunk handed to a checker thread (≈80 ms of checks on one core).
const CHUNK: usize = 1024;

/// Fewest entries per chunk (≈4 ms of checks on one core).
const MIN_CHUNK: usize = 32;

/// How far ahead of the last entry it matched the stream looks for the next one.
const LOOKAHEAD: usize = 64;

/// How signatures are checked ahead: on how many threads, counted where.
pub(crate) struct Ahead {
    pub(crate) threads: usize,
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
}

/// Runs `command` on `replicas`, checking the signatures of a large sync message's new
/// entries on other threads while it is processed (see the module docs).
pub(crate) fn apply<B: Backend>(
    replicas: &mut Replicas<B, BlobContent>,
    now: impl FnOnce() -> Now,
    command: StoreCommand,
    ahead: &Ahead,
) -> Result<StoreResponse, ReplicaError> {
    let entries = new_entries(replicas, &command, ahead);
    if entries.is_empty() {
        return replicas.apply(now(), command);
    }
    let chunk = chunk_len(entries.len(), ahead.threads);
    let chunks: Vec<&[SignedEntry]> = entries.chunks(chunk).collect();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel(chunks.len()); // one slot per chunk: never blocks
        let mut checkers = Vec::with_capacity(ahead.threads);
        for _ in 0..ahead.threads {
            let (tx, chunks, next, stop) = (tx.clone(), &chunks, &next, &stop);
            checkers.push(scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= chunks.len() || stop.load(Ordering::Relaxed) {
                    break;
                }
                let checked = CheckedSignatures::check(chunks[i].iter());
                if tx.send((i, checked)).is_err() {
                    break;
                }
            }));
        }
        drop(tx);
        let mut stream = Stream {
            entries: &entries,
            chunk,
            pos: 0,
            rx,
            arrived: BTreeMap::new(),
            handed: 0,
            used: 0,
        };
        let result = replicas.apply_with_checks(now(), command, &mut stream);
        stop.store(true, Ordering::Relaxed);
        ahead
            .metrics
            .signatures_checked_ahead
            .inc_by(stream.used as u64);
        for checker in checkers {
            // A checker that panicked checked nothing more: its entries were verified as usual.
            let _ = checker.join();
        }
        result
    })
}

/// Copies of the sync message's entries whose signatures processing it would check, if
/// there are enough to pay for checking them ahead.
fn new_entries<B: Backend>(
    replicas: &mut Replicas<B, BlobContent>,
    command: &StoreCommand,
    ahead: &Ahead,
) -> Vec<SignedEntry> {
    if ahead.threads < 2 {
        return Vec::new();
    }
    // A store error here shows again, and is reported, when the message is processed.
    let entries = match command {
        StoreCommand::SyncProcessMessage {
            namespace, message, ..
        } if message.value_count() >= PARALLEL_CHECK_MIN => replicas
            .unchecked_entries(*namespace, message)
            .map(|e| e.into_iter().cloned().collect()),
        StoreCommand::V2(cmd) => replicas.v2_unchecked_entries(cmd),
        _ => return Vec::new(),
    };
    match entries {
        Ok(entries) if entries.len() >= PARALLEL_CHECK_MIN => entries,
        _ => Vec::new(),
    }
}

/// Entries per chunk for `n` entries on `threads` checkers: [`CHUNK`] for large messages,
/// smaller for a v2 frame (a few hundred entries) so that every checker gets a share and the
/// executor starts on the first share early.
fn chunk_len(n: usize, threads: usize) -> usize {
    n.div_ceil(2 * threads).clamp(MIN_CHUNK, CHUNK)
}

/// The executor's view of the checks in progress.
struct Stream<'a> {
    /// The entries being checked, in message order.
    entries: &'a [SignedEntry],
    /// Entries per chunk.
    chunk: usize,
    /// Where the next entry the executor asks for is expected.
    pos: usize,
    rx: mpsc::Receiver<(usize, CheckedSignatures)>,
    /// Chunks checked but not handed to the executor yet.
    arrived: BTreeMap<usize, CheckedSignatures>,
    /// Chunks below this index were handed over.
    handed: usize,
    /// Entries handed over as verified.
    used: usize,
}

impl CheckedStream for Stream<'_> {
    fn wait_for(&mut self, entry: &SignedEntry) -> Option<CheckedSignatures> {
        let end = (self.pos + LOOKAHEAD).min(self.entries.len());
        let ahead = &self.entries[self.pos..end];
        let at = self.pos + ahead.iter().position(|e| e == entry)?;
        let chunk = at / self.chunk;
        if chunk < self.handed {
            self.pos = at + 1;
            return None; // handed over already: it did not verify
        }
        while (self.handed..=chunk).any(|i| !self.arrived.contains_key(&i)) {
            // A checker that panicked sends nothing: the executor checks that chunk itself.
            let (i, checked) = self.rx.recv().ok()?;
            self.arrived.insert(i, checked);
        }
        let mut out = CheckedSignatures::default();
        for i in self.handed..=chunk {
            if let Some(checked) = self.arrived.remove(&i) {
                out.extend(checked);
            }
        }
        self.handed = chunk + 1;
        // The entries of handed chunks that verified are not asked for again: the next
        // question is about the next chunk (or about an entry that failed, found nowhere
        // ahead and checked by the executor).
        self.pos = self.handed * self.chunk;
        self.used += out.len();
        Some(out)
    }
}
