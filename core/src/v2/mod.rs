//! Sync v2: Sheaf ↔ Sheaf reconciliation of every shared document over one connection.
//!
//! v1 (`/iroh-sync/1`, [`crate::wire`]) stays byte-identical to iroh-docs. Between Sheaf nodes,
//! v2 (`/sheaf-sync/2`, specified byte by byte in `docs/sync-v2.md`) removes what v1 costs:
//! one connection and session per document, several round trips per small difference, a
//! repeated namespace and author in every entry, unbounded frames, and a linear fingerprint.
//!
//! This module is the pure, deterministic part that the v2 sessions are built from:
//!
//! * [`fingerprint`]: the non-XOR fingerprint and the entry item hash;
//! * [`tags`]: the per-connection key and the keyed document tags of phase 1;
//! * [`riblt`]: the rateless IBLT that finds small differences in one round trip;
//! * [`codec`] and [`frame`]: every v2 message, its bytes, and the ≤ 64 KiB frames;
//! * [`dict`], [`doc`] and [`conn`]: the author dictionary, the per-document session and the
//!   connection session (handshake, phase 1, stream scheduling);
//! * [`round`]: one connection round, the streams and the store commands in their order, for
//!   a runtime that only moves bytes.
//!
//! Nothing here reads a clock or OS randomness; no output depends on hash-map order.

pub mod codec;
pub mod conn;
pub mod dict;
pub mod doc;
pub mod fingerprint;
pub mod frame;
pub mod riblt;
pub mod round;
pub mod tags;

pub use codec::{AbortCode, Bound, CompactEntry, Message, Part, PartMode, V2DecodeError};
pub use fingerprint::{Fingerprint, ItemHash};
pub use frame::{
    encode_frame, FrameDecoder, FrameError, MAX_FRAME_LEN, MAX_ITEMS_PER_FRAME, MAX_PAYLOAD_LEN,
    MAX_SYMBOLS_PER_FRAME,
};
pub use riblt::{CodedSymbol, Decoder, Encoder, Hasher, Limits, RibltError, Side};
pub use tags::{ConnectionKey, NamespaceTag};

#[cfg(test)]
mod flow_tests;
#[cfg(test)]
mod golden;
#[cfg(test)]
mod props;
