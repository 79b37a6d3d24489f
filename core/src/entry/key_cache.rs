//! Decompressed verifying keys, kept from one entry to the next.
//!
//! Checking an entry's two signatures needs its namespace and author ids as curve points, and
//! decompressing a point costs a field square root: about a fifth of a signature check. A
//! sync brings many entries of one namespace and a few authors, so a replica keeps the points
//! it has decompressed instead of decompressing both keys for every entry. iroh-docs keeps the
//! same kind of cache (its `PublicKeyStore`).
//!
//! The cache is bounded: when it holds [`KeyCache::CAPACITY`] keys it is cleared before the
//! next one goes in. That keeps memory fixed against a peer that sends entries of very many
//! authors, and needs no eviction order. Ids that are not valid points are not kept. What the
//! cache holds never changes a result, only how fast it is computed.

use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;

/// A bounded map from 32-byte public key ids to their decompressed [`VerifyingKey`]s.
#[derive(Debug, Default, Clone)]
pub struct KeyCache {
    keys: BTreeMap<[u8; 32], VerifyingKey>,
}

impl KeyCache {
    /// Most keys held at once.
    pub const CAPACITY: usize = 1024;

    /// The verifying key for `id`, or `None` when `id` is not a valid ed25519 point.
    pub fn get(&mut self, id: &[u8; 32]) -> Option<VerifyingKey> {
        if let Some(key) = self.keys.get(id) {
            return Some(*key);
        }
        let key = VerifyingKey::from_bytes(id).ok()?;
        if self.keys.len() >= Self::CAPACITY {
            self.keys.clear();
        }
        self.keys.insert(*id, key);
        Some(key)
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Author;

    fn id(seed: u8) -> [u8; 32] {
        *Author::from_bytes(&[seed; 32]).id().as_bytes()
    }

    #[test]
    fn a_kept_key_equals_a_fresh_decompression() {
        let mut cache = KeyCache::default();
        let a = id(1);
        let first = cache.get(&a).unwrap();
        let again = cache.get(&a).unwrap();
        assert_eq!(first, again);
        assert_eq!(first, VerifyingKey::from_bytes(&a).unwrap());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn invalid_points_are_refused_and_not_kept() {
        let mut cache = KeyCache::default();
        // y = 2 is not the y coordinate of a curve point.
        let mut bad = [0u8; 32];
        bad[0] = 2;
        assert!(VerifyingKey::from_bytes(&bad).is_err());
        assert_eq!(cache.get(&bad), None);
        assert!(cache.is_empty());
    }

    #[test]
    fn the_cache_stays_within_its_capacity() {
        let mut cache = KeyCache::default();
        for i in 0..=KeyCache::CAPACITY {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let key = *Author::from_bytes(&seed).id().as_bytes();
            assert!(cache.get(&key).is_some());
            assert!(cache.len() <= KeyCache::CAPACITY);
        }
        assert_eq!(cache.len(), 1, "cleared when full, then the new key kept");
    }
}
