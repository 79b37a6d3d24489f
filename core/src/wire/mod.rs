//! Everything Sheaf puts on the wire, byte-compatible with iroh-docs 0.101.
//!
//! * [`frame`]: the `/iroh-sync/1` stream — [`SyncMessage`] and its length-prefixed framing;
//! * [`crate::ranger`]: the reconciliation messages carried inside `SyncMessage`;
//! * [`gossip`]: the [`Op`] payload of a document's gossip topic and [`AuthorHeads`];
//! * [`ticket`]: [`DocTicket`] strings;
//! * [`codec`]: the postcard-compatible primitives all of them are built on.
//!
//! Every decoder is total: any input yields a value or a typed [`DecodeError`], never a panic,
//! and no length read from the input can make it allocate more than the input's size.
//!
//! # serde and the wire codec
//!
//! The public data types also implement serde, in iroh-docs' representations (postcard bytes
//! equal to iroh-docs'; see [`crate::serde_impls`]). That is for applications' own storage and
//! messages: a ticket or an entry kept in a database, sent over an app protocol, printed as
//! JSON. The sync protocol, gossip and ticket strings keep using the hand-written codec here,
//! because it gives stricter errors (a typed [`DecodeError`] naming what was wrong, where serde
//! gives a message) and allocation bounds (no length prefix can allocate more than the input
//! holds), because the fuzz targets (`sheaf_core::fuzz`, feature `fuzzing`) cover exactly
//! these decoders, and because it is faster: a 258-byte signed entry decodes in 97 ns here
//! against 158 ns through postcard and serde (`sheaf-bench`'s `decode` binary, median of seven
//! rounds of 100,000). Both read and produce the same bytes.

pub mod codec;
pub mod frame;
pub mod gossip;
pub mod ticket;

pub use codec::{Decode, DecodeError, Encode};
pub use frame::{
    encode_frame, AbortReason, FrameDecoder, FrameError, SyncMessage, DEFAULT_MAX_FRAME_LEN,
};
pub use gossip::{AuthorHeads, Op, SyncReport, DEFAULT_HEADS_SIZE_LIMIT};
pub use ticket::{DocTicket, NodeAddr, TicketError, TransportAddr};

#[cfg(test)]
mod golden;
#[cfg(test)]
mod props;
