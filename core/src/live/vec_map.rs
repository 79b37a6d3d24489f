//! A small ordered map on a sorted `Vec`, for per-document tables that usually hold a
//! handful of entries (a document's peers). It allocates only for what it holds, where a
//! `BTreeMap` allocates a node of eleven slots at its first insert (about 1.2 KB for a
//! document's peer table, per live document). Lookups are binary searches; inserts and
//! removals shift the entries behind them, O(n), which the tables' bounds keep small
//! (`max_peers_per_namespace`). Iteration is in key order, as a `BTreeMap`'s.

/// See the module docs.
#[derive(Debug, Clone)]
pub(super) struct VecMap<K, V>(Vec<(K, V)>);

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<K: Ord, V> VecMap<K, V> {
    fn find(&self, key: &K) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.cmp(key))
    }

    pub(super) fn get(&self, key: &K) -> Option<&V> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    pub(super) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.find(key).ok().map(|i| &mut self.0[i].1)
    }

    pub(super) fn contains_key(&self, key: &K) -> bool {
        self.find(key).is_ok()
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// Removes `key`; gives back memory once the map is a quarter full.
    pub(super) fn remove(&mut self, key: &K) -> Option<V> {
        let i = self.find(key).ok()?;
        let (_, v) = self.0.remove(i);
        if self.0.len() <= self.0.capacity() / 4 {
            self.0.shrink_to_fit();
        }
        Some(v)
    }

    /// The value of `key`, inserted with `make` if absent.
    pub(super) fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let i = match self.find(&key) {
            Ok(i) => i,
            Err(i) => {
                self.0.insert(i, (key, make()));
                i
            }
        };
        &mut self.0[i].1
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = &K> {
        self.0.iter().map(|(k, _)| k)
    }

    #[cfg(any(test, feature = "fuzzing", feature = "invariants"))]
    pub(super) fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, v)| v)
    }
}

impl<'a, K: Ord, V> IntoIterator for &'a VecMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::VecMap;

    /// Random operations give the same answers and the same order as a `BTreeMap`.
    #[test]
    fn behaves_as_a_btree_map() {
        let mut ours: VecMap<u8, u32> = VecMap::default();
        let mut model: BTreeMap<u8, u32> = BTreeMap::new();
        let mut x: u32 = 12345;
        for step in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let key = (x % 40) as u8;
            match x % 5 {
                0 | 1 => {
                    let v = ours.get_or_insert_with(key, || step);
                    *v += 1;
                    *model.entry(key).or_insert(step) += 1;
                }
                2 => assert_eq!(ours.remove(&key), model.remove(&key)),
                3 => {
                    if let Some(v) = ours.get_mut(&key) {
                        *v ^= 7;
                    }
                    if let Some(v) = model.get_mut(&key) {
                        *v ^= 7;
                    }
                }
                _ => assert_eq!(ours.get(&key), model.get(&key)),
            }
            assert_eq!(ours.len(), model.len());
            assert_eq!(ours.contains_key(&key), model.contains_key(&key));
        }
        let a: Vec<_> = ours.iter().collect();
        let b: Vec<_> = model.iter().collect();
        assert_eq!(a, b);
        assert!(ours.keys().eq(model.keys()));
        assert!(ours.values().eq(model.values()));
        assert!((&ours).into_iter().eq(model.iter()));
    }
}
