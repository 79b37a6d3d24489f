//! Fuzz target bodies (feature `fuzzing`).
//!
//! The cargo-fuzz harnesses in the repository's `fuzz/` directory are one-liners that call the
//! functions here, so the bodies compile and run in the normal test suite too (`sheaf-tests`
//! replays the committed corpus through them). Every body takes arbitrary bytes, never panics
//! on its own account, and **asserts properties**: a failed assertion is a bug that the fuzzer
//! reports as a crash.
//!
//! | target | what it checks |
//! | --- | --- |
//! | [`decode_frame`] | `data` is a `/iroh-sync/1` byte stream. It is fed to a [`FrameDecoder`](crate::wire::FrameDecoder) all at once and in chunks whose sizes come from the data; both give the same messages, the same error and the same end-of-stream verdict. Every decoded message re-encodes ([`encode_frame`](crate::wire::encode_frame)) to exactly the bytes of its frame when the frame is canonical, and otherwise only to a shorter frame of a non-minimal varint input that decodes to the same message. The buffer's capacity stays within twice the bytes fed. |
//! | [`decode_gossip`] | `data` as an [`Op`](crate::wire::Op) and as [`AuthorHeads`](crate::wire::AuthorHeads): whatever decodes re-encodes to bytes that decode to the same value (an `Op` to the very same bytes when canonical); the heads of a `SyncReport` are checked too, and a size-limited heads encoding keeps exactly the newest authors within the limit. |
//! | [`decode_ticket`] | `data` as [`DocTicket`](crate::wire::DocTicket) bytes, as a ticket string, and as bytes wrapped into a ticket string: the byte and string paths agree, and a parsed ticket round-trips through both forms to a canonical fixpoint. |
//! | [`live_inputs`] | a [`Live`](crate::live::Live) fed up to 256 arbitrary inputs with monotone time: API commands, store replies (right or wrong kinds) for its pending requests, in emission order as the contract requires, replica events, gossip (garbage and real ops), sync connections, frames (garbage, Init, Sync, Abort), closes and download results. Each input produces a bounded number of outputs, `handle_timeout` before the instant `poll_timeout` names does nothing and at that instant acts, `Live::check_invariants` holds after every input, and sessions and downloads in flight stay within their bounds. |
//! | [`decode_v2`] | `data` is a `/sheaf-sync/2` stream (and also one payload): decoding it whole, in data-derived chunks and byte by byte gives the same messages and error; every decoded message re-encodes to exactly its frame (v2 encodings are canonical); the `Symbols` messages drive a rateless IBLT decoder with small limits, which never exceeds them. |
//! | [`v2_sessions`] | a v2 document session (opener or responder, policy from the data) over a store of signed entries, fed up to 64 messages by a hostile peer (raw payloads, `Entries` of signed entries with their authors defined, `Ranges` with arbitrary bounds and modes), and a v2 `Acceptor` and `Dialer` fed arbitrary control messages. Every answer fits a frame, a step sends at most its entry budget plus the wants it answers, and after every message the store holds only entries that verify, are valid, and are not dominated by a prefix entry of their author. |
//! | [`replica_sync`] | a [`Replicas`](crate::replica::Replicas) over a [`MemBackend`](crate::store::MemBackend), seeded with signed entries, fed up to 64 reconciliation messages from a hostile peer: raw decoded bytes, and messages built from the data with properly signed entries, arbitrary ranges and fingerprints. After every message: every stored entry verifies and is within the validation limits, no entry is dominated by a prefix entry of its author, range fingerprints and counts match the stored entries, author heads never regress, the reply round-trips through the codec and carries only stored-state entries inside their ranges, and no more events are queued than values were received. |
//!
//! The input formats are private to each body and may change; the corpus in `fuzz/corpus/`
//! follows them.

mod frame;
mod gossip;
mod live;
mod replica;
mod ticket;
mod v2;
mod v2_session;

pub use frame::decode_frame;
pub use gossip::decode_gossip;
pub use live::live_inputs;
pub use replica::replica_sync;
pub use ticket::decode_ticket;
pub use v2::decode_v2;
pub use v2_session::v2_sessions;

/// Whether `bytes` contain a varint byte sequence that postcard accepts but never writes: a
/// continuation byte followed by a final `0x00` byte (a non-minimal encoding).
///
/// The decoders accept those, like postcard; re-encoding such a value gives a shorter,
/// canonical encoding. This is the only way a decoded value may re-encode differently.
fn may_hold_non_minimal_varint(bytes: &[u8]) -> bool {
    bytes.windows(2).any(|w| w[0] & 0x80 != 0 && w[1] == 0)
}

/// A cursor that hands out fuzz bytes, yielding zeros once they run out.
#[derive(Debug)]
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos = self.pos.saturating_add(1);
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// Up to `n` bytes (fewer at the end of the input).
    fn take(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(n).min(self.data.len());
        self.pos = self.pos.saturating_add(n);
        &self.data[start..end]
    }

    fn array32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        let bytes = self.take(32);
        out[..bytes.len()].copy_from_slice(bytes);
        out
    }
}
