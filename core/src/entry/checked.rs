//! Signatures checked ahead of the store executor.
//!
//! Checking an entry's two signatures is most of what ingesting a synced entry costs, and the
//! store executor runs on one thread. A runtime with cores to spare can check the entries of a
//! large sync message on several threads first ([`CheckedSignatures::check`] on each share,
//! then [`CheckedSignatures::extend`]) and hand the result to the executor
//! ([`crate::replica::Replicas::add_checked_signatures`]), which then skips the signature work
//! for those entries and still runs every other check.
//!
//! The set holds a digest of each entry that verified — its canonical bytes and both
//! signatures — so it can only speed up entries identical to ones that were checked; an entry
//! that is not in it is verified as usual. The set is only ever built by verifying, so a
//! runtime cannot vouch for an entry it did not check. The results are the same with or
//! without it, on any number of threads.
//!
//! A runtime may also keep checking while the executor processes the message
//! ([`CheckedStream`], [`crate::replica::Replicas::apply_with_checks`]): the executor then asks
//! for the checked signatures covering an entry just before it would check that entry itself,
//! so inserting the first entries overlaps with checking the later ones. What the stream hands
//! over is again a [`CheckedSignatures`], built only by verifying.

use std::collections::BTreeSet;

use super::{KeyCache, SignedEntry};
use crate::hash::Hash;

/// Entries whose namespace and author signatures verified.
#[derive(Debug, Default, Clone)]
pub struct CheckedSignatures {
    ok: BTreeSet<Hash>,
}

impl CheckedSignatures {
    /// Verifies each entry strictly (as [`SignedEntry::verify`]) and keeps those that pass.
    pub fn check<'a>(entries: impl IntoIterator<Item = &'a SignedEntry>) -> Self {
        let mut keys = KeyCache::default();
        let ok = entries
            .into_iter()
            .filter(|e| e.verify_cached(&mut keys).is_ok())
            .map(digest)
            .collect();
        Self { ok }
    }

    /// Adds the entries checked in `other`.
    pub fn extend(&mut self, other: Self) {
        self.ok.extend(other.ok);
    }

    /// How many entries verified.
    pub fn len(&self) -> usize {
        self.ok.len()
    }

    /// Whether no entry verified.
    pub fn is_empty(&self) -> bool {
        self.ok.is_empty()
    }

    /// Whether `entry`, exactly as it is, verified.
    pub fn contains(&self, entry: &SignedEntry) -> bool {
        !self.ok.is_empty() && self.ok.contains(&digest(entry))
    }
}

/// Signatures still being checked ahead while a message is processed (see the module docs).
pub trait CheckedStream {
    /// The checked signatures that cover `entry`, once they are ready (a runtime may block
    /// until its checks of `entry` are done), if `entry` is among the entries it checks ahead;
    /// `None` otherwise, and the executor checks `entry` itself.
    fn wait_for(&mut self, entry: &SignedEntry) -> Option<CheckedSignatures>;
}

/// No checks ahead: every entry is checked by the executor.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoChecksAhead;

impl CheckedStream for NoChecksAhead {
    fn wait_for(&mut self, _entry: &SignedEntry) -> Option<CheckedSignatures> {
        None
    }
}

fn digest(entry: &SignedEntry) -> Hash {
    let mut bytes = entry.entry().canonical_bytes();
    bytes.extend_from_slice(&entry.signature().author_bytes());
    bytes.extend_from_slice(&entry.signature().namespace_bytes());
    Hash::new(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        entry::{Entry, EntrySignature, Record},
        keys::{Author, NamespaceSecret},
    };

    fn signed(key: &[u8]) -> SignedEntry {
        let ns = NamespaceSecret::from_bytes(&[3; 32]);
        let author = Author::from_bytes(&[4; 32]);
        SignedEntry::new(&ns, &author, key, Record::new(Hash::new(key), 1, 5))
    }

    #[test]
    fn only_entries_that_verify_are_kept() {
        let good = signed(b"a");
        let other = signed(b"b");
        // The same signatures over another record.
        let forged = SignedEntry::from_parts(
            *good.signature(),
            Entry::new(good.id().clone(), Record::new(Hash::new(b"x"), 1, 5)),
        );
        // Valid entry bytes with the signatures swapped.
        let sig = good.signature();
        let swapped = SignedEntry::from_parts(
            EntrySignature::from_bytes(sig.namespace_bytes(), sig.author_bytes()),
            good.entry().clone(),
        );
        let checked = CheckedSignatures::check([&good, &forged, &swapped]);
        assert_eq!(checked.len(), 1);
        assert!(checked.contains(&good));
        assert!(!checked.contains(&forged));
        assert!(!checked.contains(&swapped));
        assert!(!checked.contains(&other), "never checked");
    }

    #[test]
    fn shares_checked_apart_add_up() {
        let entries: Vec<SignedEntry> = (0..10u8).map(|i| signed(&[i])).collect();
        let mut all = CheckedSignatures::check(&entries[..4]);
        all.extend(CheckedSignatures::check(&entries[4..]));
        assert_eq!(all.len(), 10);
        assert!(entries.iter().all(|e| all.contains(e)));
        assert!(CheckedSignatures::default().is_empty());
    }
}
