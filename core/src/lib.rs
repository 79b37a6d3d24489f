//! `sheaf-core`: the deterministic, sans-IO heart of Sheaf.
//!
//! Sheaf implements iroh-docs' multi-writer key-value documents and their sync protocol. This
//! crate holds everything that does not touch a socket, a disk, a clock or a thread: the keys,
//! entries and their signatures ([`keys`], [`entry`]), the wire formats ([`wire`], [`ranger`]),
//! and — as they land — the store, reconciliation and live-sync state machines. Runtimes feed it
//! inputs with the current time ([`time::Now`]) and carry out the effects it asks for, so the
//! same code runs under tokio, smol, a deterministic simulator and a fuzzer.
//!
//! Nothing here reads a clock or OS randomness; key generation takes an rng from the caller.

pub mod entry;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
pub mod hash;
pub mod keys;
pub mod live;
pub mod ranger;
pub mod replica;
pub mod store;
pub mod time;
pub mod wire;

#[cfg(test)]
mod testutil;

pub use entry::{
    CheckedSignatures, Entry, EntryLimits, EntrySignature, KeyCache, Record, RecordIdentifier,
    SignedEntry, ValidationFailure, VerifyError, DEFAULT_MAX_KEY_LEN, MAX_TIMESTAMP_FUTURE_SHIFT,
};
pub use hash::{Hash, PeerId};
pub use keys::{
    Author, AuthorId, Capability, CapabilityError, CapabilityKind, NamespaceId, NamespaceSecret,
};
pub use ranger::{ContentStatus, Fingerprint};
pub use time::{Mono, Now};

// The README's examples (the core, and nodes on tokio and smol) are compiled as doctests of
// `sheaf-cli`, which depends on every crate they use.
