//! The `/iroh-sync/1` stream: sync messages and their length-prefixed framing.
//!
//! A frame is `u32 big-endian payload length ‖ payload`, the payload being one encoded
//! [`SyncMessage`]. [`FrameDecoder`] is sans-IO: feed it bytes in whatever chunks the transport
//! delivers and pull complete messages out. Its buffer only grows with bytes actually received,
//! so a peer that announces a 1 GiB frame and then goes silent costs nothing but the bytes it
//! sent. Any malformed frame is a [`FrameError`]; after one, the decoder refuses further input
//! and the session should end.

use crate::{
    keys::NamespaceId,
    ranger,
    wire::codec::{Decode, DecodeError, Encode, Reader},
};

/// Default largest frame payload: 1 GiB, as in iroh-docs.
pub const DEFAULT_MAX_FRAME_LEN: u32 = 1024 * 1024 * 1024;

/// Why an acceptor declined a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum AbortReason {
    /// The namespace is not being synced here.
    NotFound,
    /// A sync with this peer for this namespace is already running.
    AlreadySyncing,
    /// The acceptor failed to decide.
    InternalServerError,
}

impl Encode for AbortReason {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(match self {
            AbortReason::NotFound => 0,
            AbortReason::AlreadySyncing => 1,
            AbortReason::InternalServerError => 2,
        });
    }
}

impl Decode for AbortReason {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u32()? {
            0 => Ok(AbortReason::NotFound),
            1 => Ok(AbortReason::AlreadySyncing),
            2 => Ok(AbortReason::InternalServerError),
            tag => Err(DecodeError::UnknownVariant {
                ty: "AbortReason",
                tag,
            }),
        }
    }
}

/// A message on the sync stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncMessage {
    /// The dialer's first message: which namespace, and its initial reconciliation message.
    Init {
        /// The namespace to sync.
        namespace: NamespaceId,
        /// The initial reconciliation message.
        message: ranger::Message,
    },
    /// A reconciliation message, from either side.
    Sync(ranger::Message),
    /// The acceptor declines (only as its first and only message).
    Abort {
        /// Why.
        reason: AbortReason,
    },
}

impl Encode for SyncMessage {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            SyncMessage::Init { namespace, message } => {
                out.push(0);
                namespace.encode(out);
                message.encode(out);
            }
            SyncMessage::Sync(message) => {
                out.push(1);
                message.encode(out);
            }
            SyncMessage::Abort { reason } => {
                out.push(2);
                reason.encode(out);
            }
        }
    }
}

impl Decode for SyncMessage {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u32()? {
            0 => Ok(SyncMessage::Init {
                namespace: NamespaceId::decode(r)?,
                message: ranger::Message::decode(r)?,
            }),
            1 => Ok(SyncMessage::Sync(ranger::Message::decode(r)?)),
            2 => Ok(SyncMessage::Abort {
                reason: AbortReason::decode(r)?,
            }),
            tag => Err(DecodeError::UnknownVariant {
                ty: "SyncMessage",
                tag,
            }),
        }
    }
}

/// A framing failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A frame (announced or to be sent) is larger than the limit.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Payload length.
        len: u64,
        /// Configured limit.
        max: u32,
    },
    /// A complete frame whose payload is not a valid message.
    #[error("malformed frame: {0}")]
    Decode(#[from] DecodeError),
    /// The stream ended inside a frame.
    #[error("stream ended with {0} bytes of an incomplete frame")]
    Truncated(usize),
    /// The decoder already failed; it accepts nothing more.
    #[error("decoder already failed")]
    Poisoned,
}

/// Encodes `msg` as one frame appended to `out`, refusing payloads over `max` bytes.
pub fn encode_frame(msg: &SyncMessage, max: u32, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    msg.encode(out);
    let len = (out.len() - start - 4) as u64;
    if len > u64::from(max) {
        out.truncate(start);
        return Err(FrameError::TooLarge { len, max });
    }
    out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// Incremental decoder for sync frames.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    pos: usize,
    max: u32,
    failed: bool,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_LEN)
    }
}

impl FrameDecoder {
    /// A decoder accepting payloads of at most `max_frame_len` bytes.
    pub fn new(max_frame_len: u32) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            max: max_frame_len,
            failed: false,
        }
    }

    /// Changes the largest accepted payload, for frames not yet announced (a session admits
    /// larger frames once its peer is known).
    pub fn set_max_frame_len(&mut self, max_frame_len: u32) {
        self.max = max_frame_len;
    }

    /// Buffers received bytes. Memory grows only by what is fed.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), FrameError> {
        if self.failed {
            return Err(FrameError::Poisoned);
        }
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 4096 && self.pos * 2 > self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Bytes received but not yet returned as messages.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Capacity of the internal buffer (for tests and metrics).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    ///
    /// An oversized announcement fails as soon as its header is in, before its payload.
    pub fn next_message(&mut self) -> Result<Option<SyncMessage>, FrameError> {
        if self.failed {
            return Err(FrameError::Poisoned);
        }
        let avail = &self.buf[self.pos..];
        let Some(header) = avail.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*header);
        if len > self.max {
            self.failed = true;
            return Err(FrameError::TooLarge {
                len: u64::from(len),
                max: self.max,
            });
        }
        let end = 4 + len as usize;
        if avail.len() < end {
            return Ok(None);
        }
        let result = SyncMessage::from_wire(&avail[4..end]);
        self.pos += end;
        match result {
            Ok(msg) => Ok(Some(msg)),
            Err(e) => {
                self.failed = true;
                Err(FrameError::Decode(e))
            }
        }
    }

    /// Call at end of stream: errors if a partial frame is left over.
    pub fn finish(&self) -> Result<(), FrameError> {
        match self.buffered() {
            0 => Ok(()),
            n => Err(FrameError::Truncated(n)),
        }
    }
}
