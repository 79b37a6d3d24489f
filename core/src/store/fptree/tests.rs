//! Tests of the fingerprint tree: a model-based property against `BTreeMap` with structural
//! invariant checks after every step, large deterministic workloads, and bulk building.

use std::collections::BTreeMap;

use quickcheck::{Arbitrary, Gen, QuickCheck};

use super::*;

type Model = BTreeMap<Vec<u8>, (Fingerprint, u32)>;

/// A deterministic pseudo-random fingerprint (splitmix64 expanded to 32 bytes).
fn fp_of(seed: u64) -> Fingerprint {
    let mut x = seed;
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(8) {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    Fingerprint(out)
}

fn xor_all<'a>(fps: impl IntoIterator<Item = &'a Fingerprint>) -> Fingerprint {
    fps.into_iter().fold(ZERO, |acc, f| acc.xor(f))
}

// --- structural invariants ---------------------------------------------------------------

/// Checks every structural invariant of `t`; returns its height in levels (1: a leaf root).
fn check<V>(t: &FpTree<V>) -> usize {
    let (sum, height) = check_node(&t.root, &t.sizes, true, None, None);
    assert_eq!(sum, t.total, "tree total");
    height
}

/// Checks the subtree of `node`, whose keys must lie in `[lo, hi)`; returns its recomputed
/// summary and height.
fn check_node<V>(
    node: &Node<V>,
    sizes: &Sizes,
    is_root: bool,
    lo: Option<&[u8]>,
    hi: Option<&[u8]>,
) -> (Sum, usize) {
    let in_bounds = |k: &[u8]| lo.is_none_or(|lo| lo <= k) && hi.is_none_or(|hi| k < hi);
    match node {
        Node::Leaf(l) => {
            assert_eq!(l.keys.len(), l.fps.len());
            assert_eq!(l.keys.len(), l.vals.len());
            assert!(l.len() <= sizes.leaf_max, "leaf overfull");
            assert!(is_root || l.len() >= sizes.leaf_min, "leaf underfull");
            let cap = sizes.leaf_max.max(4);
            assert!(
                l.keys.capacity() <= cap && l.fps.capacity() <= cap,
                "leaf capacity"
            );
            assert!(l.keys.windows(2).all(|w| w[0] < w[1]), "leaf keys unsorted");
            assert!(
                l.keys.iter().all(|k| in_bounds(k)),
                "leaf key outside its bounds"
            );
            (l.sum(), 1)
        }
        Node::Branch(b) => {
            let n = b.children.len();
            assert_eq!(b.sums.len(), n);
            assert_eq!(b.seps.len() + 1, n);
            assert!(n <= sizes.branch_max, "branch overfull");
            let min = if is_root { 2 } else { sizes.branch_min };
            assert!(n >= min, "branch underfull: {n} < {min}");
            assert!(
                b.seps.windows(2).all(|w| w[0] < w[1]),
                "separators unsorted"
            );
            assert!(
                b.seps.iter().all(|k| in_bounds(k)),
                "separator outside bounds"
            );
            let mut total = Sum::ZERO;
            let mut height = None;
            for (i, child) in b.children.iter().enumerate() {
                let clo = if i == 0 { lo } else { Some(&b.seps[i - 1][..]) };
                let chi = if i + 1 == n { hi } else { Some(&b.seps[i][..]) };
                let (s, h) = check_node(child, sizes, false, clo, chi);
                assert_eq!(s, b.sums[i], "cached child summary");
                assert_eq!(*height.get_or_insert(h), h, "leaves at different depths");
                total.add(&s);
            }
            (total, height.unwrap_or(0) + 1)
        }
    }
}

fn count_nodes<V>(t: &FpTree<V>) -> usize {
    let mut stack = vec![&t.root];
    let mut count = 0;
    while let Some(node) = stack.pop() {
        count += 1;
        if let Node::Branch(b) = node {
            stack.extend(&b.children);
        }
    }
    count
}

/// Compares every query of `t` against `model`, with the given probes.
fn check_against(t: &FpTree<u32>, model: &Model, probe: &[u8], lo: usize, hi: usize, from: usize) {
    check(t);
    let n = model.len();
    assert_eq!(t.len(), n);
    assert_eq!(t.is_empty(), n == 0);
    let entries: Vec<(&Vec<u8>, &(Fingerprint, u32))> = model.iter().collect();
    assert_eq!(
        t.total_fingerprint(),
        xor_all(entries.iter().map(|(_, (f, _))| f))
    );

    assert_eq!(t.get(probe), model.get(probe).map(|(_, v)| v));
    let rank = entries.partition_point(|(k, _)| k.as_slice() < probe);
    assert_eq!(t.rank(probe), rank);

    // Every rank: select, and the prefix fingerprint span_fingerprint is built on.
    let mut prefix = ZERO;
    for (i, (k, (f, v))) in entries.iter().enumerate() {
        assert_eq!(t.span_fingerprint(0, i), prefix, "prefix {i}");
        assert_eq!(t.select(i), Some((&Bytes::from((*k).clone()), f, v)));
        assert_eq!(t.rank(k), i);
        assert_eq!(t.get(k), Some(v));
        prefix ^= f;
    }
    assert_eq!(t.span_fingerprint(0, n), prefix);
    assert_eq!(t.span_fingerprint(0, usize::MAX), prefix);
    assert_eq!(t.select(n), None);
    assert_eq!(t.select(usize::MAX), None);

    // A random span (bounds may exceed len).
    let (lo, hi) = (lo % (n + 2), hi % (n + 2));
    let expected = if lo < hi {
        xor_all(entries[lo.min(n)..hi.min(n)].iter().map(|(_, (f, _))| f))
    } else {
        ZERO
    };
    assert_eq!(t.span_fingerprint(lo, hi), expected, "span [{lo}, {hi})");

    // A random starting rank for the iterator.
    let from = from % (n + 2);
    let it = t.iter_from(from);
    let left = n.saturating_sub(from);
    assert_eq!(it.size_hint(), (left, Some(left)));
    let got: Vec<_> = it.map(|(k, f, v)| (k.to_vec(), *f, *v)).collect();
    let want: Vec<_> = entries
        .iter()
        .skip(from)
        .map(|(k, (f, v))| ((*k).clone(), *f, *v))
        .collect();
    assert_eq!(got, want, "iter_from({from})");
}

// --- the model-based property --------------------------------------------------------------

/// Keys from a tiny alphabet, so equal keys and shared prefixes are common.
fn small_key(g: &mut Gen) -> Vec<u8> {
    let len = usize::arbitrary(g) % 6;
    (0..len)
        .map(|_| *g.choose(&[0u8, 1, 2, 0xff]).unwrap_or(&0))
        .collect()
}

/// Fingerprint seeds: often from a tiny set, so equal fingerprints cancel in XORs.
fn small_fp(g: &mut Gen) -> u64 {
    let seed = u64::arbitrary(g);
    if bool::arbitrary(g) {
        seed % 4
    } else {
        seed
    }
}

fn sizes(g: &mut Gen) -> (usize, usize) {
    let leaf = *g.choose(&[2, 3, 4, 5, 8, 64]).unwrap_or(&4);
    let branch = *g.choose(&[3, 4, 5, 8, 64]).unwrap_or(&4);
    (leaf, branch)
}

#[derive(Clone, Debug)]
enum Op {
    /// Insert or replace (key, fingerprint seed).
    Insert(Vec<u8>, u64),
    /// Remove a key that may be absent.
    Remove(Vec<u8>),
    /// Remove the key at this rank (modulo len), so removals mostly hit.
    RemoveRank(usize),
}

#[derive(Clone, Debug)]
struct Step {
    op: Op,
    probe: Vec<u8>,
    lo: usize,
    hi: usize,
    from: usize,
}

#[derive(Clone, Debug)]
struct Script {
    sizes: (usize, usize),
    /// Bulk-loaded before the steps (deduplicated and sorted first).
    initial: Vec<(Vec<u8>, u64)>,
    steps: Vec<Step>,
}

impl Arbitrary for Script {
    fn arbitrary(g: &mut Gen) -> Self {
        let initial = if bool::arbitrary(g) {
            (0..usize::arbitrary(g) % (g.size() * 2))
                .map(|_| (small_key(g), small_fp(g)))
                .collect()
        } else {
            Vec::new()
        };
        // A growing phase, then a shrinking one.
        let grow = usize::arbitrary(g) % (g.size() * 3);
        let shrink = usize::arbitrary(g) % (g.size() * 3);
        let mut steps = Vec::with_capacity(grow + shrink);
        for i in 0..grow + shrink {
            let insert_pct = if i < grow { 80 } else { 20 };
            let op = match usize::arbitrary(g) % 100 {
                p if p < insert_pct => Op::Insert(small_key(g), small_fp(g)),
                p if p % 2 == 0 => Op::Remove(small_key(g)),
                _ => Op::RemoveRank(usize::arbitrary(g)),
            };
            steps.push(Step {
                op,
                probe: small_key(g),
                lo: usize::arbitrary(g),
                hi: usize::arbitrary(g),
                from: usize::arbitrary(g),
            });
        }
        Script {
            sizes: sizes(g),
            initial,
            steps,
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let base = self.clone();
        let steps = self.steps.clone();
        let fewer_steps = (0..steps.len()).rev().map(move |n| Script {
            steps: steps[..n].to_vec(),
            ..base.clone()
        });
        let base = self.clone();
        let initial = self.initial.clone();
        let fewer_initial = (0..initial.len()).rev().map(move |n| Script {
            initial: initial[..n].to_vec(),
            ..base.clone()
        });
        Box::new(fewer_steps.take(40).chain(fewer_initial.take(20)))
    }
}

fn run_script(script: Script) -> bool {
    let sizes = Sizes::new(script.sizes.0, script.sizes.1);
    let mut model = Model::new();
    for (k, seed) in &script.initial {
        model.insert(k.clone(), (fp_of(*seed), 0));
    }
    let mut tree = FpTree::build(
        model
            .iter()
            .map(|(k, (f, v))| (Bytes::from(k.clone()), *f, *v)),
        sizes,
        true,
    );
    check_against(&tree, &model, &[], 0, usize::MAX, 0);
    for (i, step) in script.steps.iter().enumerate() {
        let payload = u32::try_from(i).unwrap_or(u32::MAX);
        match &step.op {
            Op::Insert(k, seed) => {
                let fp = fp_of(*seed);
                let old = tree.insert(Bytes::from(k.clone()), fp, payload);
                let want = model.insert(k.clone(), (fp, payload)).map(|(_, v)| v);
                assert_eq!(old, want, "insert {k:?}");
            }
            Op::Remove(k) => assert_eq!(tree.remove(k), model.remove(k), "remove {k:?}"),
            Op::RemoveRank(r) => {
                if let Some(k) = model.keys().nth(r % model.len().max(1)).cloned() {
                    assert_eq!(tree.remove(&k), model.remove(&k), "remove {k:?}");
                }
            }
        }
        check_against(&tree, &model, &step.probe, step.lo, step.hi, step.from);
    }
    true
}

#[test]
fn model_based() {
    QuickCheck::new()
        .tests(300)
        .rng(Gen::new(60))
        .quickcheck(run_script as fn(Script) -> bool);
}

/// `from_sorted` (and the bulk builder at every node size) equals inserting one by one.
#[test]
fn bulk_build_equals_incremental() {
    fn prop(items: Vec<(u16, u64)>, leaf: usize, branch: usize) -> bool {
        let sizes = Sizes::new(2 + leaf % 9, 3 + branch % 8);
        let model: BTreeMap<Vec<u8>, Fingerprint> = items
            .iter()
            .map(|(k, s)| (k.to_be_bytes().to_vec(), fp_of(*s)))
            .collect();
        let sorted = || model.iter().map(|(k, f)| (Bytes::from(k.clone()), *f, ()));
        let bulk = FpTree::build(sorted(), sizes, true);
        let mut one_by_one = FpTree::with_sizes(sizes);
        for (k, f, v) in sorted() {
            one_by_one.insert(k, f, v);
        }
        check(&bulk);
        check(&one_by_one);
        assert_trees_equal(&bulk, &one_by_one);
        true
    }
    QuickCheck::new()
        .tests(300)
        .rng(Gen::new(600))
        .quickcheck(prop as fn(Vec<(u16, u64)>, usize, usize) -> bool);

    let n = 100_000u64;
    let bulk = FpTree::from_sorted((0..n).map(|i| (big_key(i), fp_of(i), i)));
    let mut one_by_one = FpTree::new();
    for i in 0..n {
        one_by_one.insert(big_key(i), fp_of(i), i);
    }
    check(&bulk);
    assert_trees_equal(&bulk, &one_by_one);
    // Full leaves: about n / 64 of them.
    assert!(
        count_nodes(&bulk) <= n as usize / 64 + 40,
        "{}",
        count_nodes(&bulk)
    );
}

/// Out-of-order input to the builder (a caller bug) still yields the right map, later
/// duplicates winning.
#[test]
fn bulk_build_tolerates_unsorted_input() {
    fn prop(items: Vec<(u8, u64)>, leaf: usize, branch: usize) -> bool {
        let sizes = Sizes::new(2 + leaf % 9, 3 + branch % 8);
        let mut model = BTreeMap::new();
        for (k, s) in &items {
            model.insert(vec![*k], fp_of(*s));
        }
        let tree = FpTree::build(
            items
                .iter()
                .map(|(k, s)| (Bytes::from(vec![*k]), fp_of(*s), ())),
            sizes,
            false,
        );
        check(&tree);
        let got: Vec<_> = tree
            .iter_from(0)
            .map(|(k, f, _)| (k.to_vec(), *f))
            .collect();
        got == model.into_iter().collect::<Vec<_>>()
    }
    QuickCheck::new()
        .tests(300)
        .rng(Gen::new(200))
        .quickcheck(prop as fn(Vec<(u8, u64)>, usize, usize) -> bool);
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "strictly ascending")]
fn from_sorted_asserts_order() {
    let items = [2u8, 1].map(|k| (Bytes::from(vec![k]), fp_of(k.into()), ()));
    let _ = FpTree::from_sorted(items);
}

fn assert_trees_equal<V: PartialEq + fmt::Debug>(a: &FpTree<V>, b: &FpTree<V>) {
    assert_eq!(a.len(), b.len());
    assert_eq!(a.total_fingerprint(), b.total_fingerprint());
    assert!(a.iter_from(0).eq(b.iter_from(0)), "contents differ");
    let n = a.len();
    let step = (n / 500).max(1);
    for i in (0..=n).step_by(step) {
        assert_eq!(
            a.span_fingerprint(0, i),
            b.span_fingerprint(0, i),
            "prefix {i}"
        );
        assert_eq!(
            a.span_fingerprint(i, n),
            b.span_fingerprint(i, n),
            "suffix {i}"
        );
        assert_eq!(a.select(i), b.select(i));
    }
}

// --- deterministic edge cases and large workloads -------------------------------------------

/// The sampled search agrees with the standard one for every length and every split point.
#[test]
fn partition_point_matches_std() {
    for len in 0..200u16 {
        let keys: Vec<Bytes> = (0..len)
            .map(|i| Bytes::from(i.to_be_bytes().to_vec()))
            .collect();
        for cut in 0..=len {
            let cut = cut.to_be_bytes();
            let pred = |k: &[u8]| k < &cut[..];
            assert_eq!(
                partition_point(&keys, pred),
                keys.partition_point(|k| pred(k))
            );
        }
    }
}

#[test]
fn empty_and_out_of_range() {
    let mut t: FpTree<()> = FpTree::default();
    assert!(t.is_empty());
    assert_eq!(t.total_fingerprint(), ZERO);
    assert_eq!(t.span_fingerprint(0, usize::MAX), ZERO);
    assert_eq!(t.select(0), None);
    assert_eq!(t.rank(b"x"), 0);
    assert_eq!(t.get(b""), None);
    assert_eq!(t.remove(b""), None);
    assert_eq!(t.iter_from(0).count(), 0);
    assert_eq!(t.iter_from(usize::MAX).count(), 0);
    check(&t);

    for i in 0..1000u64 {
        t.insert(big_key(i), fp_of(i), ());
    }
    assert_eq!(t.span_fingerprint(usize::MAX, usize::MAX), ZERO);
    assert_eq!(t.span_fingerprint(700, 300), ZERO);
    assert_eq!(t.span_fingerprint(999, usize::MAX), fp_of(999));
    assert_eq!(t.span_fingerprint(5, 6), fp_of(5));
    assert_eq!(t.select(usize::MAX), None);
    assert_eq!(t.iter_from(usize::MAX).count(), 0);
    assert_eq!(t.iter_from(998).count(), 2);
    assert_eq!(t.rank(&[0xff; 100]), 1000);
    assert_eq!(t.rank(b""), 0);
    // The empty key is a key like any other.
    t.insert(Bytes::new(), fp_of(7), ());
    assert_eq!(t.select(0).map(|(k, _, _)| k.len()), Some(0));
    assert_eq!(t.rank(b""), 0);
    assert_eq!(t.rank(b"\0"), 1);
    check(&t);
    // Replacing keeps the length and updates the fingerprints.
    assert_eq!(t.insert(big_key(3), fp_of(1_000_003), ()), Some(()));
    assert_eq!(t.len(), 1001);
    assert_eq!(t.span_fingerprint(4, 5), fp_of(1_000_003));
    check(&t);
}

/// A 70-byte key: a fixed 62-byte prefix (like namespace and author) and a big-endian index.
fn big_key(i: u64) -> Bytes {
    let mut k = vec![0xa5; 62];
    k.extend_from_slice(&i.to_be_bytes());
    Bytes::from(k)
}

#[test]
fn large_sequential_and_reverse_then_mass_removal() {
    let n = 200_000u64;
    let mut fwd = FpTree::new();
    for i in 0..n {
        assert_eq!(fwd.insert(big_key(i), fp_of(i), i), None);
    }
    let mut rev = FpTree::new();
    for i in (0..n).rev() {
        assert_eq!(rev.insert(big_key(i), fp_of(i), i), None);
    }
    let heights = (check(&fwd), check(&rev));
    let nodes = (count_nodes(&fwd), count_nodes(&rev));
    assert_eq!(fwd.len(), n as usize);
    assert_trees_equal(&fwd, &rev);
    // Half-full leaves at worst: at most n / 32 of them; height within the bound.
    assert!(
        nodes.0 <= n as usize / 32 * 2 && nodes.1 <= n as usize / 32 * 2,
        "{nodes:?}"
    );
    assert!(heights.0 <= 4 && heights.1 <= 4, "{heights:?}");
    for i in (0..n).step_by(997) {
        let idx = i as usize;
        assert_eq!(fwd.rank(&big_key(i)), idx);
        assert_eq!(
            fwd.select(idx).map(|(k, f, v)| (k.clone(), *f, *v)),
            Some((big_key(i), fp_of(i), i))
        );
        assert_eq!(rev.iter_from(idx).next().map(|(_, _, v)| *v), Some(i));
    }

    // Remove 99%: ascending from one, in a scattered order (a permutation) from the other.
    let keep = |i: u64| i.is_multiple_of(100);
    for i in (0..n).filter(|i| !keep(*i)) {
        assert_eq!(fwd.remove(&big_key(i)), Some((fp_of(i), i)));
    }
    for j in 0..n {
        let i = j * 7919 % n;
        if !keep(i) {
            assert_eq!(rev.remove(&big_key(i)), Some((fp_of(i), i)));
        }
    }
    for t in [&fwd, &rev] {
        let height = check(t);
        assert_eq!(t.len(), 2000);
        assert!(height <= 3, "height {height} after mass removal");
        assert!(height <= heights.0.min(heights.1));
        let count = count_nodes(t);
        assert!(count <= 2000 / 32 + 4, "{count} nodes for 2000 entries");
        let mut prefix = ZERO;
        for (j, (k, f, v)) in t.iter_from(0).enumerate() {
            let i = j as u64 * 100;
            assert_eq!((k, f, *v), (&big_key(i), &fp_of(i), i));
            assert_eq!(t.span_fingerprint(0, j), prefix);
            assert_eq!(t.rank(k), j);
            prefix ^= f;
        }
        assert_eq!(t.total_fingerprint(), prefix);
    }
    assert_trees_equal(&fwd, &rev);

    // And the rest: back to an empty leaf.
    for i in (0..n).filter(|i| keep(*i)) {
        assert!(fwd.remove(&big_key(i)).is_some());
    }
    assert!(fwd.is_empty());
    assert_eq!((check(&fwd), count_nodes(&fwd)), (1, 1));
    assert_eq!(fwd.total_fingerprint(), ZERO);
}

/// Interleaved inserts and removals with adversarial key shapes (long shared prefixes,
/// prefixes of each other) at production node sizes.
#[test]
fn adversarial_keys() {
    let mut t = FpTree::new();
    let mut model = Model::new();
    let key = |i: u32| {
        // Keys that are prefixes of one another: i repeated bytes of (i % 3).
        vec![(i % 3) as u8; (i % 300) as usize]
    };
    for round in 0..3u32 {
        for i in 0..900u32 {
            let k = key(i);
            let fp = fp_of(u64::from(i + round));
            assert_eq!(
                t.insert(Bytes::from(k.clone()), fp, i),
                model.insert(k, (fp, i)).map(|(_, v)| v)
            );
        }
        check_against(&t, &model, &[1, 1], 3, 700, 10);
        for i in (0..900u32).filter(|i| i % 5 != round) {
            let k = key(i);
            assert_eq!(t.remove(&k), model.remove(&k));
        }
        check_against(&t, &model, &[2], 0, 100, 1);
    }
}
