//! The v2 fingerprint: the sum of the items' BLAKE3 hashes modulo 2^256, with the item count.
//!
//! # Why not XOR
//!
//! v1 (iroh-docs) fingerprints a range as the XOR of its entries' hashes. XOR is linear over
//! GF(2): given about 257 entries anyone can solve for a subset whose XOR equals any target by
//! Gaussian elimination, in polynomial time, so a writer can build two different sets that look
//! equal, and peers then stop reconciling a range that in fact differs. Addition modulo 2^256
//! carries between bits, so that elimination does not apply; together with the count (which
//! makes sets of different sizes never collide) this is the construction negentropy uses.
//!
//! # What it does not claim
//!
//! A sum is still a group operation. Wagner's generalised-birthday (k-tree) algorithm finds a
//! k-sum collision modulo 2^n in about `k · 2^(n / (1 + log2 k))` hash evaluations, so a
//! determined *writer* (only holders of a write capability can add items) with about 2^31
//! evaluations and sets of about 2^15 crafted entries could build a collision. v2 keeps the
//! damage of such a collision bounded: the rateless IBLT path does not rely on fingerprints at
//! all, its hashing is keyed per connection (see [`crate::v2::riblt`]), and the phase-1 state
//! tags are keyed too. A group-based replacement (ECMH over Ristretto255, or LtHash) can be
//! negotiated later behind the same ALPN version bump; `docs/sync-v2.md` §3 discusses it.
//!
//! # Why a group at all
//!
//! The store keeps per-range aggregates so that the fingerprint of any range costs O(log n)
//! (DESIGN §3). That needs an associative, commutative combination with an inverse:
//! [`Fingerprint::combine`] and [`Fingerprint::remove`] are exactly that, so the same
//! augmented-tree index serves v2.

use std::fmt;

use crate::entry::Entry;

/// BLAKE3 `derive_key` context for [`ItemHash::of_entry`].
pub const ENTRY_ITEM_CONTEXT: &str = "sheaf-sync/2 entry item";

/// The 32-byte hash that stands for one entry in v2: the item of the rateless IBLT, the unit of
/// [`Fingerprint`] and of `Wants` lists.
///
/// `ItemHash::of_entry(e) = BLAKE3-derive_key("sheaf-sync/2 entry item", canonical(e))`, where
/// `canonical(e) = ns ‖ author ‖ key ‖ len u64be ‖ hash ‖ timestamp u64be` are the bytes both
/// signatures cover. Unlike the v1 fingerprint it covers the content length too, so two
/// entries that differ in any signed field differ in item hash.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemHash(pub [u8; 32]);

impl ItemHash {
    /// The item hash of an entry.
    pub fn of_entry(entry: &Entry) -> Self {
        let mut h = blake3::Hasher::new_derive_key(ENTRY_ITEM_CONTEXT);
        h.update(&entry.canonical_bytes());
        Self(*h.finalize().as_bytes())
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for ItemHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ItemHash({})", hex::encode(&self.0[..8]))
    }
}

/// The v2 fingerprint of a set of items: `(Σ items mod 2^256, count mod 2^64)`.
///
/// Each item is read as a 256-bit **little-endian** unsigned integer. The empty set is
/// `(0, 0)`. On the wire: the 32 sum bytes (little-endian) then the count as a varint.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Fingerprint {
    /// The sum as four little-endian 64-bit limbs (limb 0 least significant).
    limbs: [u64; 4],
    count: u64,
}

impl Fingerprint {
    /// The fingerprint of the empty set.
    pub const EMPTY: Fingerprint = Fingerprint {
        limbs: [0; 4],
        count: 0,
    };

    /// Builds a fingerprint from its wire parts.
    pub fn from_parts(sum: [u8; 32], count: u64) -> Self {
        let mut limbs = [0u64; 4];
        for (i, limb) in limbs.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&sum[8 * i..8 * i + 8]);
            *limb = u64::from_le_bytes(b);
        }
        Self { limbs, count }
    }

    /// The fingerprint of one item.
    pub fn of_item(item: &ItemHash) -> Self {
        Self::from_parts(item.0, 1)
    }

    /// The fingerprint of a collection of items (each counted as often as it occurs).
    pub fn of_items<'a>(items: impl IntoIterator<Item = &'a ItemHash>) -> Self {
        let mut fp = Self::EMPTY;
        for item in items {
            fp.add(item);
        }
        fp
    }

    /// The sum, 32 little-endian bytes.
    pub fn sum(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, limb) in self.limbs.iter().enumerate() {
            out[8 * i..8 * i + 8].copy_from_slice(&limb.to_le_bytes());
        }
        out
    }

    /// The number of items (mod 2^64).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether this is the empty set's fingerprint.
    pub fn is_empty(&self) -> bool {
        *self == Self::EMPTY
    }

    /// Adds one item.
    pub fn add(&mut self, item: &ItemHash) {
        *self = self.combine(&Self::of_item(item));
    }

    /// Removes one item (the inverse of [`add`](Self::add)).
    pub fn remove(&mut self, item: &ItemHash) {
        *self = self.difference(&Self::of_item(item));
    }

    /// The fingerprint of the disjoint union of the two sets.
    #[must_use]
    pub fn combine(&self, other: &Fingerprint) -> Fingerprint {
        let mut limbs = [0u64; 4];
        let mut carry = false;
        for (i, limb) in limbs.iter_mut().enumerate() {
            let (s1, c1) = self.limbs[i].overflowing_add(other.limbs[i]);
            let (s2, c2) = s1.overflowing_add(u64::from(carry));
            *limb = s2;
            carry = c1 || c2;
        }
        Fingerprint {
            limbs,
            count: self.count.wrapping_add(other.count),
        }
    }

    /// The fingerprint of `self`'s set without `other`'s (which must be a subset of it for the
    /// result to mean anything; the arithmetic is defined regardless).
    #[must_use]
    pub fn difference(&self, other: &Fingerprint) -> Fingerprint {
        let mut limbs = [0u64; 4];
        let mut borrow = false;
        for (i, limb) in limbs.iter_mut().enumerate() {
            let (d1, b1) = self.limbs[i].overflowing_sub(other.limbs[i]);
            let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
            *limb = d2;
            borrow = b1 || b2;
        }
        Fingerprint {
            limbs,
            count: self.count.wrapping_sub(other.count),
        }
    }
}

impl Fingerprint {
    /// The 16-byte digest a `Ranges` part carries for this fingerprint, keyed per connection.
    pub fn digest(&self, key: &RangeKey) -> RangeDigest {
        let mut h = blake3::Hasher::new_keyed(&key.0);
        h.update(&self.sum());
        h.update(&self.count.to_be_bytes());
        let mut tag = [0u8; RANGE_TAG_LEN];
        tag.copy_from_slice(&h.finalize().as_bytes()[..RANGE_TAG_LEN]);
        RangeDigest {
            tag,
            count: self.count,
        }
    }
}

/// BLAKE3 `derive_key` context of [`RangeKey::derive`].
pub const RANGE_KEY_CONTEXT: &str = "sheaf-sync/2 range key";

/// Length of a [`RangeDigest`]'s tag.
pub const RANGE_TAG_LEN: usize = 16;

/// The key of one connection's range digests: `BLAKE3-derive_key("sheaf-sync/2 range key",
/// riblt_key)`.
#[derive(Clone, PartialEq, Eq)]
pub struct RangeKey([u8; 32]);

impl RangeKey {
    /// Derives the range key from the connection's RIBLT key.
    pub fn derive(riblt_key: &[u8; 32]) -> Self {
        Self(blake3::derive_key(RANGE_KEY_CONTEXT, riblt_key))
    }
}

impl fmt::Debug for RangeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RangeKey(..)")
    }
}

/// What a `Ranges` part says of a range's [`Fingerprint`] on the wire: a 16-byte tag keyed per
/// connection, `BLAKE3-keyed(range_key, sum(32) ‖ count u64be)[..16]`, and the count.
///
/// Why not the 32-byte sum: half the bytes of every fingerprint part (W8's shape sends about
/// 3,000 of them), and no weaker. Two honest sides' digests of different sets are equal only if
/// the sums collide (as before) or the keyed tags do (2^-128 per comparison), and the key is
/// fresh per connection, so tags cannot be ground offline. The sum itself stays 256 bits in the
/// index, where it must be a group.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RangeDigest {
    /// The keyed tag of the sum and the count.
    pub tag: [u8; RANGE_TAG_LEN],
    /// The number of items in the range (mod 2^64).
    pub count: u64,
}

impl fmt::Debug for RangeDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RangeDigest({}…, count {})",
            hex::encode(&self.tag[..8]),
            self.count
        )
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Fingerprint({}…, count {})",
            hex::encode(&self.sum()[..8]),
            self.count
        )
    }
}

#[cfg(test)]
mod tests {
    use quickcheck::{Arbitrary, Gen, QuickCheck};

    use super::*;
    use crate::{entry::Record, hash::Hash, keys::NamespaceId, AuthorId, RecordIdentifier};

    fn item(seed: u8) -> ItemHash {
        ItemHash(*blake3::hash(&[seed]).as_bytes())
    }

    fn xor(items: &[ItemHash]) -> [u8; 32] {
        let mut out = [0u8; 32];
        for i in items {
            for (o, b) in out.iter_mut().zip(i.0) {
                *o ^= b;
            }
        }
        out
    }

    #[test]
    fn empty_is_zero() {
        assert_eq!(Fingerprint::EMPTY.sum(), [0; 32]);
        assert_eq!(Fingerprint::of_items([]), Fingerprint::EMPTY);
        assert!(Fingerprint::default().is_empty());
        assert!(!Fingerprint::of_item(&item(0)).is_empty());
    }

    #[test]
    fn carries_propagate_across_limbs() {
        let mut max = [0xffu8; 32];
        max[31] = 0x7f;
        let a = Fingerprint::from_parts([0xff; 32], 1);
        let one = Fingerprint::from_parts(
            {
                let mut b = [0u8; 32];
                b[0] = 1;
                b
            },
            1,
        );
        // (2^256 - 1) + 1 = 0 mod 2^256.
        assert_eq!(a.combine(&one).sum(), [0; 32]);
        assert_eq!(a.combine(&one).count(), 2);
        // 0 - 1 = 2^256 - 1.
        assert_eq!(Fingerprint::EMPTY.difference(&one).sum(), [0xff; 32]);
        let b = Fingerprint::from_parts(max, 0);
        assert_eq!(b.combine(&b).difference(&b), b);
    }

    /// Sets built to collide under v1's XOR (same size, same XOR) do not collide here.
    #[test]
    fn xor_colliding_sets_do_not_collide() {
        for seed in 0..64u8 {
            let (a, b, c) = (item(seed), item(seed.wrapping_add(100)), item(seed ^ 0x55));
            let d: [u8; 32] = std::array::from_fn(|i| a.0[i] ^ b.0[i] ^ c.0[i]);
            let left = [a, b];
            let right = [c, ItemHash(d)];
            assert_eq!(xor(&left), xor(&right), "the sets are built to XOR-collide");
            assert_ne!(
                Fingerprint::of_items(&left),
                Fingerprint::of_items(&right),
                "seed {seed}"
            );
        }
        // A pair of equal items cancels under XOR but not under the sum (and the count).
        let x = item(7);
        assert_eq!(xor(&[x, x]), [0; 32]);
        assert_ne!(Fingerprint::of_items(&[x, x]), Fingerprint::EMPTY);
    }

    /// The v1 attack, carried out: among 300 entries, Gaussian elimination over GF(2) finds a
    /// subset whose v1 fingerprints XOR to zero; split in two, its halves are different sets
    /// with equal v1 range fingerprints. Their v2 fingerprints differ.
    #[test]
    fn v1_colliding_entry_sets_differ_under_v2() {
        let ns = NamespaceId::from([1; 32]);
        let author = AuthorId::from([2; 32]);
        let entries: Vec<Entry> = (0u64..300)
            .map(|i| {
                Entry::new(
                    RecordIdentifier::new(ns, author, i.to_be_bytes()),
                    Record::new(Hash::from_bytes([3; 32]), 1, i),
                )
            })
            .collect();
        // Row reduction: each basis row keeps its vector and the set of entries it combines.
        type Row = ([u8; 32], Vec<bool>);
        let mut basis: Vec<(usize, Row)> = Vec::new(); // (pivot bit, row)
        let mut dependency = None;
        for (i, e) in entries.iter().enumerate() {
            let mut v = e.fingerprint().0;
            let mut mask = vec![false; entries.len()];
            mask[i] = true;
            for (pivot, (bv, bm)) in &basis {
                if v[pivot / 8] >> (pivot % 8) & 1 == 1 {
                    for k in 0..32 {
                        v[k] ^= bv[k];
                    }
                    for (m, b) in mask.iter_mut().zip(bm) {
                        *m ^= b;
                    }
                }
            }
            match (0..256).find(|bit| v[bit / 8] >> (bit % 8) & 1 == 1) {
                Some(pivot) => basis.push((pivot, (v, mask))),
                None => {
                    dependency = Some(mask);
                    break;
                }
            }
        }
        let mask = dependency.expect("300 vectors of 256 bits are dependent");
        let subset: Vec<&Entry> = entries
            .iter()
            .zip(&mask)
            .filter_map(|(e, m)| m.then_some(e))
            .collect();
        assert!(subset.len() >= 2);
        let (left, right) = subset.split_at(subset.len() / 2);
        let v1 = |set: &[&Entry]| {
            set.iter().fold(crate::ranger::Fingerprint::EMPTY, |fp, e| {
                fp.xor(&e.fingerprint())
            })
        };
        assert_eq!(v1(left), v1(right), "v1 fingerprints collide");
        let v2 = |set: &[&Entry]| {
            Fingerprint::of_items(
                &set.iter()
                    .map(|e| ItemHash::of_entry(e))
                    .collect::<Vec<_>>(),
            )
        };
        assert_ne!(v2(left), v2(right), "v2 fingerprints must differ");
        // Equal counts are not what separates them: compare sums as well.
        assert_ne!(v2(left).sum(), v2(right).sum());
    }

    #[test]
    fn entry_item_hash_is_stable() {
        let e = Entry::new(
            RecordIdentifier::new(
                NamespaceId::from([0xb2; 32]),
                AuthorId::from([0xa1; 32]),
                b"a",
            ),
            Record::new(Hash::from_bytes([0x11; 32]), 2, 1_700_000_000_000_000),
        );
        let expected = blake3::derive_key(ENTRY_ITEM_CONTEXT, &e.canonical_bytes());
        assert_eq!(ItemHash::of_entry(&e).0, expected);
        // The length is covered.
        let e2 = Entry::new(
            e.id().clone(),
            Record::new(Hash::from_bytes([0x11; 32]), 3, 1_700_000_000_000_000),
        );
        assert_ne!(ItemHash::of_entry(&e), ItemHash::of_entry(&e2));
    }

    #[derive(Clone, Debug)]
    struct Items(Vec<ItemHash>);

    impl Arbitrary for Items {
        fn arbitrary(g: &mut Gen) -> Self {
            let n = usize::arbitrary(g) % 20;
            Items(
                (0..n)
                    .map(|_| ItemHash(std::array::from_fn(|_| u8::arbitrary(g))))
                    .collect(),
            )
        }
    }

    #[test]
    fn prop_group_laws() {
        fn prop(a: Items, b: Items) -> bool {
            let fa = Fingerprint::of_items(&a.0);
            let fb = Fingerprint::of_items(&b.0);
            let both: Vec<ItemHash> = a.0.iter().chain(b.0.iter()).copied().collect();
            let mut reversed = both.clone();
            reversed.reverse();
            let fab = Fingerprint::of_items(&both);
            let mut removed = fab;
            for i in &b.0 {
                removed.remove(i);
            }
            fab == fa.combine(&fb)
                && fab == fb.combine(&fa)
                && fab == Fingerprint::of_items(&reversed)
                && fab.difference(&fb) == fa
                && removed == fa
                && fab.count() == both.len() as u64
                && Fingerprint::from_parts(fab.sum(), fab.count()) == fab
        }
        QuickCheck::new()
            .tests(300)
            .quickcheck(prop as fn(Items, Items) -> bool);
    }

    #[test]
    fn digests_are_keyed_and_follow_the_fingerprint() {
        let (k1, k2) = (RangeKey::derive(&[1; 32]), RangeKey::derive(&[2; 32]));
        let ab = Fingerprint::of_items(&[item(1), item(2)]);
        let ba = Fingerprint::of_items(&[item(2), item(1)]);
        let ac = Fingerprint::of_items(&[item(1), item(3)]);
        assert_eq!(ab.digest(&k1), ba.digest(&k1));
        assert_ne!(ab.digest(&k1).tag, ac.digest(&k1).tag);
        assert_ne!(ab.digest(&k1).tag, ab.digest(&k2).tag, "keyed");
        assert_eq!(ab.digest(&k1).count, 2);
        // The tag covers the count: the same sum with another count differs.
        let other = Fingerprint::from_parts(ab.sum(), 3);
        assert_ne!(ab.digest(&k1).tag, other.digest(&k1).tag);
        let mut input = ab.sum().to_vec();
        input.extend_from_slice(&2u64.to_be_bytes());
        let key = blake3::derive_key(RANGE_KEY_CONTEXT, &[1; 32]);
        assert_eq!(
            ab.digest(&k1).tag,
            blake3::keyed_hash(&key, &input).as_bytes()[..16]
        );
    }
}
