//! Tests of the rateless IBLT: decoding, overhead, the mapping's density, adversarial input.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use super::*;

fn hasher() -> Hasher {
    Hasher::new([0x42; 32])
}

fn random_items(rng: &mut ChaCha8Rng, n: usize) -> Vec<Item> {
    (0..n)
        .map(|_| {
            let mut i = [0u8; 32];
            rng.fill_bytes(&mut i);
            i
        })
        .collect()
}

/// Reconciles `shared` + `remote_only` (encoded) against `shared` + `local_only`, returning
/// the symbols needed and checking the decoded sets exactly.
fn reconcile(shared: &[Item], remote_only: &[Item], local_only: &[Item]) -> u64 {
    let h = hasher();
    let mut enc = Encoder::new(&h, shared.iter().chain(remote_only).copied());
    let mut dec = Decoder::new(
        h,
        Limits::default(),
        shared.iter().chain(local_only).copied(),
    );
    while !dec.is_done() {
        dec.add_symbol(enc.next_symbol())
            .expect("honest symbols decode");
    }
    let mut r: Vec<Item> = dec.remote_only().copied().collect();
    let mut l: Vec<Item> = dec.local_only().copied().collect();
    r.sort_unstable();
    l.sort_unstable();
    assert_eq!(r, sorted_set(remote_only.iter().copied()));
    assert_eq!(l, sorted_set(local_only.iter().copied()));
    dec.symbols_received()
}

#[test]
fn identical_sets_are_done_after_one_symbol() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let shared = random_items(&mut rng, 100);
    assert_eq!(reconcile(&shared, &[], &[]), 1);
    assert_eq!(reconcile(&[], &[], &[]), 1);
}

#[test]
fn one_sided_differences_decode() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let shared = random_items(&mut rng, 50);
    let extra = random_items(&mut rng, 30);
    reconcile(&shared, &extra, &[]);
    reconcile(&shared, &[], &extra);
    reconcile(&[], &extra, &[]);
    reconcile(&[], &[], &extra);
}

/// The overhead (symbols per difference) for d ∈ {1, 10, 100, 1000}, half the differences on
/// each side, 1,000 shared items. Printed (run with `--nocapture`); `docs/sync-v2.md` §4.3
/// quotes a run. The paper reports 1.35–1.7 for these d; the assertions leave room for the
/// few trials a debug test can afford.
#[test]
fn overhead_per_difference() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let shared = random_items(&mut rng, 1000);
    for (d, trials, bound) in [
        (1usize, 200, 1.0),
        (10, 400, 2.2),
        (100, 100, 1.8),
        (1000, 10, 1.6),
    ] {
        let mut total = 0u64;
        for _ in 0..trials {
            let remote = random_items(&mut rng, d.div_ceil(2));
            let local = random_items(&mut rng, d / 2);
            total += reconcile(&shared, &remote, &local);
        }
        let overhead = total as f64 / (trials * d) as f64;
        println!("riblt d={d}: {overhead:.3} symbols per difference over {trials} trials");
        assert!(
            overhead <= bound,
            "d={d}: {overhead:.3} symbols per difference, more than {bound}"
        );
    }
}

#[test]
fn mapping_density_is_one_over_one_plus_half_i() {
    let n = 20_000u64;
    let mut hits = [0u64; 64];
    for seed in 0..n {
        let (_, s) = hasher().hash(&{
            let mut i = [0u8; 32];
            i[..8].copy_from_slice(&seed.to_le_bytes());
            i
        });
        let mut m = Mapping::new(s);
        let mut idx = m.index();
        while idx < 64 {
            hits[idx as usize] += 1;
            idx = m.next_index();
        }
    }
    assert_eq!(hits[0], n, "every item maps to symbol 0");
    for (i, &h) in hits.iter().enumerate().skip(1) {
        let expected = n as f64 / (1.0 + i as f64 / 2.0);
        let ratio = h as f64 / expected;
        assert!(
            (0.9..1.1).contains(&ratio),
            "index {i}: {h} hits, expected about {expected:.0}"
        );
    }
}

#[test]
fn mapping_is_strictly_increasing_and_saturates() {
    for seed in [0u64, 1, 2, u64::MAX, 0x1234_5678_9abc_def0] {
        let mut m = Mapping::new(seed);
        let mut last = m.index();
        for _ in 0..200 {
            let next = m.next_index();
            assert!(next > last || next == u64::MAX);
            last = next;
        }
    }
    // A seed of zero stays at 0 and jumps past every useful index.
    let mut m = Mapping::new(0);
    assert!(m.next_index() > 1 << 32);
}

#[test]
fn encoder_is_deterministic_and_order_independent() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let items = random_items(&mut rng, 200);
    let mut reversed = items.clone();
    reversed.reverse();
    let mut dup = items.clone();
    dup.extend_from_slice(&items[..10]);
    let a = Encoder::new(&hasher(), items).next_symbols(100);
    let b = Encoder::new(&hasher(), reversed).next_symbols(100);
    let c = Encoder::new(&hasher(), dup).next_symbols(100);
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert_eq!(a[0].count, 200);
    // Another key gives other symbols.
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let items = random_items(&mut rng, 200);
    let d = Encoder::new(&Hasher::new([0x43; 32]), items).next_symbols(100);
    assert_ne!(a[1..], d[1..]);
}

#[test]
fn estimate_tracks_the_difference() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let shared = random_items(&mut rng, 500);
    for d in [50usize, 200, 800] {
        let h = hasher();
        let remote = random_items(&mut rng, d / 2);
        let local = random_items(&mut rng, d - d / 2);
        let mut enc = Encoder::new(&h, shared.iter().chain(&remote).copied());
        let mut dec = Decoder::new(h, Limits::default(), shared.iter().chain(&local).copied());
        for _ in 0..64 {
            dec.add_symbol(enc.next_symbol()).unwrap();
        }
        let est = dec.estimate_difference();
        assert!(
            est as usize >= d / 3 && est as usize <= 3 * d,
            "d={d}: estimated {est}"
        );
    }
}

#[test]
fn out_of_order_and_bad_counts_are_errors() {
    let mut dec = Decoder::new(hasher(), Limits::default(), []);
    assert_eq!(
        dec.add_symbols(1, &[CodedSymbol::default()]),
        Err(RibltError::OutOfOrder {
            expected: 0,
            got: 1
        })
    );
    let bad = CodedSymbol {
        count: 1 << 63,
        ..Default::default()
    };
    assert_eq!(dec.add_symbol(bad), Err(RibltError::BadCount(1 << 63)));
    // Spent after an error.
    assert!(dec.add_symbol(CodedSymbol::default()).is_err());
}

/// A symbol that claims a fabricated item decodes it once; claiming it again where the item
/// does not map is caught as inconsistent instead of looping.
#[test]
fn forged_pure_symbols_are_caught() {
    let h = hasher();
    let fake = [7u8; 32];
    let pure = CodedSymbol {
        sum: fake,
        checksum: h.checksum(&fake),
        count: 1,
    };
    let mut dec = Decoder::new(h.clone(), Limits::default(), []);
    let mut result = Ok(());
    for _ in 0..1000 {
        result = dec.add_symbol(pure);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(
        result,
        Err(RibltError::Inconsistent("an item decoded twice"))
    );
    // A local-only claim for an item that is not local: local set {x}, and a symbol 0 of
    // count 0 holding fake ⊕ x, so the residual is exactly −fake.
    let local = [9u8; 32];
    let mut dec = Decoder::new(h.clone(), Limits::default(), [local]);
    let mut sum = fake;
    for (a, b) in sum.iter_mut().zip(local) {
        *a ^= b;
    }
    let forged = CodedSymbol {
        sum,
        checksum: h.checksum(&fake) ^ h.checksum(&local),
        count: 0,
    };
    assert_eq!(
        dec.add_symbol(forged),
        Err(RibltError::Inconsistent("a local-only item is not local"))
    );
    // A remote-only claim for an item that is local: a symbol 0 of count 2 and nothing else
    // leaves the residual +x, pure, while x is local.
    let mut dec = Decoder::new(h.clone(), Limits::default(), [local]);
    let forged = CodedSymbol {
        sum: [0; 32],
        checksum: 0,
        count: 2,
    };
    assert_eq!(
        dec.add_symbol(forged),
        Err(RibltError::Inconsistent("a remote-only item is local"))
    );
}

/// Random symbols never loop, and the limits hold.
#[test]
fn garbage_respects_limits() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let local = random_items(&mut rng, 100);
    let limits = Limits {
        max_symbols: 300,
        max_items: 50,
    };
    for trial in 0..20 {
        let mut dec = Decoder::new(hasher(), limits, local.iter().copied());
        let mut err = None;
        for _ in 0..400 {
            let mut sum = [0u8; 32];
            rng.fill_bytes(&mut sum);
            let s = CodedSymbol {
                sum,
                checksum: rng.next_u64(),
                count: rng.next_u64() % 4,
            };
            if let Err(e) = dec.add_symbol(s) {
                err = Some(e);
                break;
            }
        }
        assert!(dec.symbols_received() <= 300, "trial {trial}");
        assert!(dec.decoded().len() <= 50);
        assert_eq!(err, Some(RibltError::TooManySymbols { max: 300 }));
    }
    // Many distinct forged items hit max_items.
    let h = hasher();
    let mut dec = Decoder::new(h.clone(), limits, []);
    let mut last = Ok(());
    for k in 0..300u32 {
        // A fresh item per symbol; peeling the earlier ones may or may not leave it pure.
        let mut item = [0u8; 32];
        item[..4].copy_from_slice(&k.to_le_bytes());
        last = dec.add_symbol(CodedSymbol {
            sum: item,
            checksum: h.checksum(&item),
            count: 1,
        });
        if last.is_err() {
            break;
        }
    }
    assert!(last.is_err());
    assert!(dec.decoded().len() <= 50);
}

/// The 64-bit shortcut of [`Mapping::next_index`] gives the 128-bit formula's indices.
#[test]
fn mapping_shortcut_matches_the_formula() {
    let reference = |prng: u64, last: u64| {
        let s = u128::from(prng.isqrt().max(1));
        let gap = ((2 * u128::from(last) + 3) * ((1u128 << 32) - s)).div_ceil(2 * s);
        last.saturating_add(u64::try_from(gap).unwrap_or(u64::MAX))
    };
    let mut rng = crate::testutil::XorShift(99);
    for k in 0..20_000u64 {
        let seed = rng.below(u64::MAX);
        // Around the shortcut's bound, small indices, and anywhere.
        let last = match k % 3 {
            0 => (1 << 31) - 8 + rng.below(16),
            1 => rng.below(1 << 20),
            _ => rng.below(u64::MAX),
        };
        let mut m = Mapping { prng: seed, last };
        let prng = seed.wrapping_mul(MAPPING_MULTIPLIER);
        assert_eq!(
            m.next_index(),
            reference(prng, last),
            "seed {seed}, last {last}"
        );
    }
}

/// Symbols added in batches of any size decode as symbols added one at a time, and an
/// encoder's batches give the same stream as single symbols.
/// The encoder against the definition of §4.2, item by item: symbol `i` is the XOR of the
/// items mapped to `i`, of their checksums, and their number. A set whose size is not a
/// multiple of the items a batch advances side by side, in uneven batches.
#[test]
fn symbols_match_the_definition() {
    let h = Hasher::new([5; 32]);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let items = random_items(&mut rng, 1_003);
    const N: usize = 270;
    let mut want = vec![CodedSymbol::default(); N];
    for item in &items {
        let (checksum, seed) = h.hash(item);
        let mut mapping = Mapping::new(seed);
        let mut i = 0;
        while i < N as u64 {
            let s = &mut want[i as usize];
            for (a, b) in s.sum.iter_mut().zip(item) {
                *a ^= b;
            }
            s.checksum ^= checksum;
            s.count += 1;
            i = mapping.next_index();
        }
    }
    let mut enc = Encoder::new(&h, items.iter().copied());
    let mut got = Vec::new();
    for n in [1, 5, 64, 200] {
        got.extend(enc.next_symbols(n));
    }
    assert_eq!(got, want);
}

#[test]
fn batches_and_single_symbols_agree() {
    let h = Hasher::new([3; 32]);
    let item = |i: u32| *blake3::hash(&i.to_le_bytes()).as_bytes();
    let remote: Vec<Item> = (0..500).map(item).collect();
    let local: Vec<Item> = (20..530).map(item).collect();
    let mut one = Encoder::new(&h, remote.iter().copied());
    let singles: Vec<_> = (0..200).map(|_| one.next_symbol()).collect();
    let mut many = Encoder::new(&h, remote.iter().copied());
    let mut batched = Vec::new();
    for n in [1, 7, 64, 128] {
        batched.extend(many.next_symbols(n));
    }
    assert_eq!(singles, batched);
    let mut a = Decoder::new(h.clone(), Limits::default(), local.iter().copied());
    for s in &singles {
        a.add_symbol(*s).unwrap();
    }
    let mut b = Decoder::new(h, Limits::default(), local.iter().copied());
    let mut at = 0;
    for n in [3, 50, 1, 146] {
        b.add_symbols(at as u64, &singles[at..at + n]).unwrap();
        at += n;
    }
    assert!(a.is_done() && b.is_done());
    assert_eq!(a.decoded(), b.decoded());
    assert_eq!(a.remote_only().count(), 20);
    assert_eq!(a.local_only().count(), 30);
}

#[test]
fn isqrt_is_exact() {
    let mut values = vec![0, 1, 2, 3, 4, 5, 8, 9, 10, u64::MAX, u64::MAX - 1];
    for r in [
        1u64,
        2,
        3,
        1 << 16,
        (1 << 26) + 1,
        (1 << 31) - 1,
        (1 << 32) - 2,
        (1 << 32) - 1,
    ] {
        let sq = r * r;
        values.extend([sq - 1, sq, sq.saturating_add(1)]);
        if r < (1 << 32) - 1 {
            values.push((r + 1) * (r + 1) - 1);
        }
    }
    let mut rng = crate::testutil::XorShift(99);
    values.extend((0..100_000).map(|_| rng.below(u64::MAX)));
    values.extend((0..100_000).map(|_| rng.below(1 << 53)));
    for x in values {
        assert_eq!(super::isqrt(x), x.isqrt(), "isqrt({x})");
    }
}
