//! The index's budget, pins and summaries (the range answers themselves are checked against
//! brute force by `store::conformance`, also with a zero budget).

use super::*;
use crate::{
    entry::Record,
    store::{MemBackend, RedbBackend},
    testutil::{author, ns, T0},
};

fn entry(doc: u8, key: u32, ts: u64) -> SignedEntry {
    let record = Record::new(Hash::new(key.to_be_bytes()), 1, T0 + ts);
    SignedEntry::new(&ns(doc), &author(1), &key.to_be_bytes(), record)
}

fn fill<B: Backend>(s: &mut Indexed<B>, doc: u8, n: u32) {
    for k in 0..n {
        s.put(entry(doc, k, 1)).unwrap();
    }
}

fn all(s: &mut Indexed<impl Backend>, doc: u8) -> Fingerprint {
    let id = ns(doc).id();
    let x = s
        .first_id(id)
        .unwrap()
        .unwrap_or_else(RecordIdentifier::zero);
    s.range_fingerprint(id, &Range::new(x.clone(), x)).unwrap()
}

/// The fingerprint of a proper sub-range: needs the tree.
fn part(s: &mut Indexed<impl Backend>, doc: u8) -> Fingerprint {
    let id = ns(doc).id();
    let x = s.first_id(id).unwrap().unwrap();
    let y = s
        .range_pivot(id, &Range::new(x.clone(), x.clone()), 3)
        .unwrap()
        .unwrap();
    s.range_fingerprint(id, &Range::new(x, y)).unwrap()
}

#[test]
fn least_recently_used_indexes_are_folded_and_pinned_ones_kept() {
    let mut s = Indexed::new(MemBackend::new());
    for doc in 1..=4 {
        fill(&mut s, doc, 100);
        part(&mut s, doc);
    }
    let one = s.stats().bytes / 4;
    assert_eq!(s.stats().loaded, 4);
    assert_eq!(s.stats().expanded, 4);
    s.pin(ns(1).id());
    // Room for two expanded indexes: 1 is pinned, 4 was used last; 2 and 3 are folded,
    // oldest first, and keep only their chunk lists.
    part(&mut s, 4);
    s.set_budget(one * 2 + one / 2);
    let stats = s.stats();
    assert_eq!(stats.expanded, 2, "{stats:?}");
    assert_eq!(stats.evictions, 2);
    assert_eq!(
        stats.loaded, 4,
        "folded lists are small, and not yet persisted"
    );
    let before = s.stats().expansions;
    part(&mut s, 1);
    part(&mut s, 4);
    assert_eq!(s.stats().expansions, before, "the kept ones are 1 and 4");
    // Unpinned, 1 is the oldest once 3 is expanded again.
    s.unpin(ns(1).id());
    part(&mut s, 3);
    assert_eq!(s.stats().expansions, before + 1);
    part(&mut s, 4);
    part(&mut s, 3);
    assert_eq!(s.stats().expansions, before + 1, "3 and 4 stay");
    assert_eq!(s.stats().builds, 4, "read back by chunk, never rebuilt");
    assert!(s.stats().bytes <= s.budget() + SUMMARY_BYTES * 4);
    // Once persisted, folded lists are dropped too under a zero budget.
    s.flush_with(true).unwrap();
    s.set_budget(0);
    assert_eq!(s.stats().loaded, 0, "{:?}", s.stats());
    let x = all(&mut s, 2);
    part(&mut s, 2);
    assert_eq!(all(&mut s, 2), x);
    assert_eq!(s.stats().builds, 4, "the list came back from its rows");
}

#[test]
fn a_sync_that_finds_nothing_needs_no_tree() {
    let mut s = Indexed::with_budget(MemBackend::new(), 0);
    fill(&mut s, 1, 300);
    fill(&mut s, 2, 10);
    let want = all(&mut s, 1);
    part(&mut s, 1);
    part(&mut s, 2); // evicts 1
    let builds = s.stats().builds;
    assert_eq!(all(&mut s, 1), want);
    assert_eq!(s.namespace_len(ns(1).id()).unwrap(), 300);
    // Writes while the tree is out keep the summary exact: a new key, a replaced one.
    s.put(entry(1, 1000, 1)).unwrap();
    s.put(entry(1, 5, 2)).unwrap();
    s.remove(ns(1).id(), author(1).id(), &7u32.to_be_bytes())
        .unwrap();
    let summarised = all(&mut s, 1);
    assert_eq!(s.stats().builds, builds, "answered from the summary");
    s.forget(ns(1).id()).unwrap();
    assert_eq!(all(&mut s, 1), summarised, "a rebuilt tree agrees");
    assert_eq!(s.namespace_len(ns(1).id()).unwrap(), 300);
}

#[test]
fn summaries_persist_with_the_entries_and_are_repaired_when_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let want = {
        let mut s = Indexed::new(RedbBackend::persistent(&path).unwrap());
        fill(&mut s, 1, 200);
        let want = all(&mut s, 1);
        s.flush().unwrap();
        want
    };
    // Reopened: the first message of a sync costs no build.
    let mut s = Indexed::new(RedbBackend::persistent(&path).unwrap());
    assert_eq!(all(&mut s, 1), want);
    assert_eq!(s.stats().builds, 0);
    // A wrong stored summary is replaced when the tree is built.
    let wrong = NamespaceSummary {
        count: 3,
        fingerprint: Fingerprint([7; 32]),
    };
    s.backend_mut()
        .put_summary(ns(1).id(), Some(wrong))
        .unwrap();
    s.backend_mut().flush().unwrap();
    drop(s);
    let mut s = Indexed::new(RedbBackend::persistent(&path).unwrap());
    assert_eq!(s.namespace_len(ns(1).id()).unwrap(), 3, "trusted as stored");
    part(&mut s, 1);
    assert_eq!(s.stats().summary_repairs, 1);
    assert_eq!(all(&mut s, 1), want);
    s.flush().unwrap();
    drop(s);
    let mut s = Indexed::new(RedbBackend::persistent(&path).unwrap());
    assert_eq!(all(&mut s, 1), want);
    assert_eq!(s.stats().builds, 0, "the repaired summary was stored");
}

#[test]
fn writes_committed_without_a_flush_never_leave_a_stale_summary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    {
        let mut s = Indexed::new(RedbBackend::persistent(&path).unwrap());
        fill(&mut s, 1, 50);
        all(&mut s, 1);
        s.flush().unwrap();
        // More writes, then the store is dropped without `Indexed::flush`: the backend
        // commits its transaction on drop, without the new summary.
        fill(&mut s, 1, 80);
    }
    let mut s = Indexed::new(RedbBackend::persistent(&path).unwrap());
    assert_eq!(s.namespace_len(ns(1).id()).unwrap(), 80);
    let summarised = all(&mut s, 1);
    s.forget(ns(1).id()).unwrap();
    part(&mut s, 1);
    assert_eq!(all(&mut s, 1), summarised);
    assert_eq!(s.stats().summary_repairs, 0);
}

#[test]
fn learnt_summaries_are_committed_by_a_deliberate_flush_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    // Entries written on the backend directly: no summary stored (as in a migrated store).
    {
        let mut b = RedbBackend::persistent(&path).unwrap();
        for k in 0..200 {
            b.put(entry(1, k, 1)).unwrap();
        }
        b.flush().unwrap();
    }
    let reopen = || Indexed::new(RedbBackend::persistent(&path).unwrap());
    let mut s = reopen();
    let want = all(&mut s, 1);
    assert_eq!(s.stats().builds, 1, "no summary: built");
    s.flush().unwrap();
    drop(s);
    let mut s = reopen();
    assert_eq!(all(&mut s, 1), want);
    assert_eq!(
        s.stats().builds,
        1,
        "the periodic flush of an idle store wrote nothing"
    );
    s.flush_with(true).unwrap();
    drop(s);
    let mut s = reopen();
    assert_eq!(all(&mut s, 1), want);
    assert_eq!(
        s.stats().builds,
        0,
        "the deliberate flush stored the learnt summary"
    );
}

/// Fingerprint of the keys `[lo, hi)` of `doc` (author 1), from the index.
fn between(s: &mut Indexed<impl Backend>, doc: u8, lo: u32, hi: u32) -> Fingerprint {
    let id = |k: u32| entry(doc, k, 1).id().clone();
    s.range_fingerprint(ns(doc).id(), &Range::new(id(lo), id(hi)))
        .unwrap()
}

#[test]
fn a_reopened_namespace_answers_ranges_from_the_chunks_they_touch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let reopen = || Indexed::new(RedbBackend::persistent(&path).unwrap());
    let mut s = reopen();
    fill(&mut s, 1, 20_000);
    let want = [
        between(&mut s, 1, 100, 19_000),
        between(&mut s, 1, 7_777, 7_778),
    ];
    s.flush_with(true).unwrap();
    drop(s);
    let mut s = reopen();
    assert_eq!(between(&mut s, 1, 100, 19_000), want[0]);
    assert_eq!(between(&mut s, 1, 7_777, 7_778), want[1]);
    let stats = s.stats();
    assert_eq!(stats.builds, 0, "{stats:?}");
    assert!(stats.chunks >= 20_000 / 256, "{stats:?}");
    assert!(
        stats.expansions <= 3,
        "each bound reads its own chunk only: {stats:?}"
    );
    // Writes after reopening keep the chunks exact, and persist with the next flush.
    for k in 20_000..22_000 {
        s.put(entry(1, k, 1)).unwrap();
    }
    s.remove(ns(1).id(), author(1).id(), &5u32.to_be_bytes())
        .unwrap();
    let after = [between(&mut s, 1, 0, 21_500), all(&mut s, 1)];
    s.flush().unwrap();
    drop(s);
    let mut s = reopen();
    assert_eq!([between(&mut s, 1, 0, 21_500), all(&mut s, 1)], after);
    assert_eq!(s.stats().builds, 0);
    s.forget(ns(1).id()).unwrap();
    assert_eq!(between(&mut s, 1, 0, 21_500), after[0], "a rebuild agrees");
}

#[test]
fn a_wrong_persisted_chunk_is_repaired_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let reopen = || Indexed::new(RedbBackend::persistent(&path).unwrap());
    let mut s = reopen();
    fill(&mut s, 1, 3_000);
    let want = between(&mut s, 1, 10, 2_000);
    s.flush_with(true).unwrap();
    // Two chunk rows trade summaries: the total still matches the namespace's summary.
    let b = s.backend_mut();
    let rows = b.get_chunks(ns(1).id()).unwrap();
    assert!(rows.len() >= 3);
    let swapped = vec![
        (rows[0].0.clone(), Some(rows[1].1)),
        (rows[1].0.clone(), Some(rows[0].1)),
    ];
    b.put_chunks(ns(1).id(), false, &swapped).unwrap();
    b.flush().unwrap();
    drop(s);
    let mut s = reopen();
    assert_eq!(between(&mut s, 1, 10, 2_000), want);
    let stats = s.stats();
    assert_eq!(stats.summary_repairs, 1, "{stats:?}");
    assert_eq!(stats.builds, 1, "the rows are no longer trusted: rebuilt");
    s.flush().unwrap();
    drop(s);
    let mut s = reopen();
    assert_eq!(between(&mut s, 1, 10, 2_000), want);
    assert_eq!(s.stats().summary_repairs, 0, "the repair was stored");
    assert_eq!(s.stats().builds, 0);
}

#[test]
fn a_query_that_meets_a_wrong_row_starts_over_on_the_rebuilt_list() {
    // One persisted row per two entries (150 chunks), two rows trading fingerprints: the
    // total still matches the summary. The rebuild has three chunks, so a query that met the
    // wrong row at chunk 125 must not go on with that index.
    let mut b = MemBackend::new();
    let mut rows: Vec<(Vec<u8>, NamespaceSummary)> = Vec::new();
    let mut total = NamespaceSummary::EMPTY;
    for k in 0..300u32 {
        let e = entry(1, k, 1);
        if k % 2 == 0 {
            let start = if k == 0 {
                Vec::new()
            } else {
                suffix_of(e.id()).to_vec()
            };
            rows.push((start, NamespaceSummary::EMPTY));
        }
        let row = &mut rows.last_mut().unwrap().1;
        row.count += 1;
        row.fingerprint ^= &e.fingerprint();
        total.count += 1;
        total.fingerprint ^= &e.fingerprint();
        b.put(e).unwrap();
    }
    let (fp125, fp126) = (rows[125].1.fingerprint, rows[126].1.fingerprint);
    rows[125].1.fingerprint = fp126;
    rows[126].1.fingerprint = fp125;
    let rows: Vec<_> = rows.into_iter().map(|(k, s)| (k, Some(s))).collect();
    b.put_chunks(ns(1).id(), true, &rows).unwrap();
    b.put_summary(ns(1).id(), Some(total)).unwrap();
    let mut s = Indexed::new(b.clone());
    let got = between(&mut s, 1, 251, 290);
    assert_eq!(s.stats().summary_repairs, 1, "{:?}", s.stats());
    assert_eq!(s.stats().chunks, 3, "rebuilt in chunks of 128");
    let mut fresh = Indexed::new(b);
    fresh.forget(ns(1).id()).unwrap();
    assert_eq!(got, between(&mut fresh, 1, 251, 290));
}

/// Sync v2 range fingerprints from cached chunk sums equal a brute-force sum over the range,
/// through writes, removals, splits and merges that must drop the cached sums.
#[test]
fn v2_range_fingerprints_follow_writes() {
    use std::collections::BTreeSet;

    use crate::v2::{Fingerprint as V2, ItemHash};
    let id = ns(1).id();
    let mut s = Indexed::new(MemBackend::new());
    let suffix = |k: u32| [author(1).id().as_bytes().as_slice(), &k.to_be_bytes()].concat();
    let brute = |s: &mut Indexed<MemBackend>, lo: Option<u32>, hi: Option<u32>| {
        let mut fp = V2::default();
        for e in s
            .backend_mut()
            .scan_author_key(id, Bound::Unbounded, Bound::Unbounded, false, usize::MAX)
            .unwrap()
        {
            let k = u32::from_be_bytes(e.key().try_into().unwrap());
            if lo.is_none_or(|l| k >= l) && hi.is_none_or(|h| k < h) {
                fp.add(&ItemHash::of_entry(e.entry()));
            }
        }
        fp
    };
    let mut rng = crate::testutil::XorShift(12345u64);
    let mut rnd = |n: u64| rng.below(n);
    for round in 0..40 {
        // A burst of writes (new keys, overwrites) or removals, growing then shrinking.
        for _ in 0..200 {
            let k = rnd(2000) as u32;
            if round < 25 || rnd(3) == 0 {
                s.put(entry(1, k, round + rnd(5))).unwrap();
            } else {
                s.remove(id, author(1).id(), &k.to_be_bytes()).unwrap();
            }
        }
        for _ in 0..5 {
            let (a, b) = (rnd(2100) as u32, rnd(2100) as u32);
            let (lo, hi) = match rnd(4) {
                0 => (None, None),
                1 => (Some(a.min(b)), None),
                2 => (None, Some(a.max(b))),
                _ => (Some(a.min(b)), Some(a.max(b))),
            };
            let (l, h) = (lo.map(suffix), hi.map(suffix));
            let got = s
                .v2_range_fingerprint(id, l.as_deref(), h.as_deref())
                .unwrap();
            let want = brute(&mut s, lo, hi);
            assert_eq!(got, want, "round {round}, range {lo:?}..{hi:?}");
        }
        // Consecutive ranges at once (a split's sub-ranges), some with a gap between them.
        let mut bounds: Vec<u32> = (0..2 + rnd(12)).map(|_| rnd(2100) as u32).collect();
        bounds.sort_unstable();
        bounds.dedup();
        let mut ranges: Vec<(Option<u32>, Option<u32>)> = Vec::new();
        let mut lower = None;
        for (j, b) in bounds.iter().enumerate() {
            if j % 5 != 4 {
                ranges.push((lower, Some(*b)));
            }
            lower = Some(*b);
        }
        ranges.push((lower, None));
        let keys: Vec<_> = ranges
            .iter()
            .map(|(l, h)| (l.map(suffix), h.map(suffix)))
            .collect();
        let refs: Vec<_> = keys
            .iter()
            .map(|(l, h)| (l.as_deref(), h.as_deref()))
            .collect();
        let got = s.v2_range_fingerprints(id, &refs).unwrap();
        for ((lo, hi), got) in ranges.into_iter().zip(got) {
            let want = brute(&mut s, lo, hi);
            assert_eq!(got, want, "round {round}, batch range {lo:?}..{hi:?}");
        }
        // The item hashes (cached by the sums above, or read) are every entry's.
        let entries = s
            .backend_mut()
            .scan_author_key(id, Bound::Unbounded, Bound::Unbounded, false, usize::MAX)
            .unwrap();
        let mut want: Vec<_> = entries
            .iter()
            .map(|e| ItemHash::of_entry(e.entry()).0)
            .collect();
        let mut got = s.v2_item_hashes(id).unwrap();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want, "round {round}: item hashes");
        // Entries by item hash: a few held ones and one of no entry.
        let mut wanted: BTreeSet<_> = (0..3)
            .filter_map(|_| want.get(rnd(want.len() as u64 + 1) as usize).copied())
            .collect();
        wanted.insert([7; 32]);
        let found = s.v2_entries_with_items(id, &wanted).unwrap();
        let expect: Vec<_> = entries
            .into_iter()
            .filter(|e| wanted.contains(&ItemHash::of_entry(e.entry()).0))
            .collect();
        assert_eq!(found, expect, "round {round}: entries by item hash");
    }
    assert!(s.stats().chunks > 5, "the test must span several chunks");
}

/// Counts the entries the backend's scans return.
#[derive(Default)]
struct Scanned(usize);

impl crate::store::Observer for Scanned {
    fn entries(&mut self, call: crate::store::Call, entries: usize) {
        if call == crate::store::Call::ScanAuthorKey {
            self.0 += entries;
        }
    }
}

/// A namespace's item hashes are kept with its chunks' v2 sums, counted in the index's
/// memory, and dropped when the index folds it to stay within its budget.
#[test]
fn item_hashes_are_cached_counted_and_folded() {
    let id = ns(1).id();
    let mut s = Indexed::new(crate::store::Tap::new(
        MemBackend::new(),
        Scanned::default(),
    ));
    fill(&mut s, 1, 1000);
    let before = s.stats().bytes;
    let fp = s.v2_range_fingerprint(id, None, None).unwrap();
    let cached = s.stats().bytes;
    assert!(
        cached >= before + 1000 * 32,
        "item hashes counted: {before} -> {cached}"
    );
    // From the cache: no entry is read again.
    let reads = |s: &Indexed<crate::store::Tap<MemBackend, Scanned>>| s.backend().observer.0;
    let r0 = reads(&s);
    let items = s.v2_item_hashes(id).unwrap();
    assert_eq!(items.len(), 1000);
    assert_eq!(reads(&s), r0, "answered from the cache");
    let mut sum = crate::v2::Fingerprint::default();
    items.iter().for_each(|h| sum.add(&crate::v2::ItemHash(*h)));
    assert_eq!(sum, fp);
    // Folding drops them (the sums stay); asking again reads the entries back.
    s.set_budget(0);
    assert!(s.stats().bytes + 1000 * 32 <= cached, "folded");
    assert_eq!(s.v2_range_fingerprint(id, None, None).unwrap(), fp);
    assert_eq!(reads(&s), r0, "the sums stayed");
    let again = s.v2_item_hashes(id).unwrap();
    assert_eq!(again.len(), 1000);
    assert!(reads(&s) >= r0 + 1000, "read back");
}
