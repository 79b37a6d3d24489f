//! `sheaf-core`: the deterministic, sans-IO heart of Sheaf.
//!
//! Sheaf implements iroh-docs' multi-writer key-value documents and their sync protocol. This
//! crate holds everything that does not touch a socket, a disk, a clock or a thread: the keys,
//! entries and their signatures ([`keys`], [`entry`]), the wire formats ([`wire`], [`ranger`]),
//! the store ([`store`]: backends and the fingerprint index; [`replica`]: the executor of store
//! commands) and the live-sync state machine ([`live`]). Runtimes feed it
//! inputs with the current time ([`time::Now`]) and carry out the effects it asks for, so the
//! same code runs under tokio, smol, a deterministic simulator and a fuzzer.
//!
//! Nothing here reads a clock or OS randomness; key generation takes an rng from the caller.
//!
//! # Glossary: the store
//!
//! "Store" means one thing everywhere in Sheaf:
//!
//! * **store** — a node's whole storage layer: a backend, its index, and the executor that
//!   applies store commands ([`replica::Replicas`]).
//! * **[`StoreCommand`](replica::StoreCommand) / [`StoreResponse`](replica::StoreResponse)**
//!   — requests to the store and their answers.
//! * **[`StoreError`](store::StoreError)** — a failure anywhere in the storage layer.
//! * **backend** — the [`Backend`](store::Backend) trait and its implementations
//!   ([`MemBackend`](store::MemBackend), `RedbBackend`, or a third party's, checked by
//!   `store::conformance`), which hold rows and nothing else.
//! * **index** — the fingerprint trees of [`Indexed<B>`](store::Indexed), one per document,
//!   built from a backend's entries and answering range fingerprints, counts and pivots.
//! * **`StoreHandle`** (in the engine) — the handle to the store running on its own thread.

pub mod entry;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
pub mod hash;
pub mod keys;
pub mod live;
pub mod ranger;
pub mod replica;
pub mod serde_impls;
pub mod store;
pub mod time;
pub mod v2;
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
