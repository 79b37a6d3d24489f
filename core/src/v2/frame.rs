//! v2 frames: `u16 big-endian payload length ‖ payload`, at most 64 KiB in all.
//!
//! Why so small: v1 lets a reply be one frame of up to 1 GiB, and nothing of it can be
//! checked until all of it has arrived. v2 frames hold at most 65,534 payload bytes (a frame,
//! header included, is at most 65,536 bytes = 64 KiB), so a receiver verifies the signatures of
//! one `Entries` frame while the next is on the wire, and never buffers more than one frame per
//! stream. The length is fixed-width so that the header is always 2 bytes and an oversized or
//! empty announcement is refused from its header alone.

use crate::v2::codec::{Message, V2DecodeError};

/// Largest frame, header included: 64 KiB.
pub const MAX_FRAME_LEN: usize = 64 * 1024;
/// Largest payload: [`MAX_FRAME_LEN`] minus the 2-byte header.
pub const MAX_PAYLOAD_LEN: usize = MAX_FRAME_LEN - 2;

/// Most coded symbols a `Symbols` frame always holds: type 1 + start ≤ 10 + count 2 bytes,
/// then symbols of at most [`MAX_SYMBOL_LEN`](crate::v2::codec::MAX_SYMBOL_LEN) bytes.
pub const MAX_SYMBOLS_PER_FRAME: usize =
    (MAX_PAYLOAD_LEN - 1 - 10 - 2) / crate::v2::codec::MAX_SYMBOL_LEN;
/// Most 32-byte items a `Wants` frame holds (type 1 + count 2 bytes), and an `ItemList` frame
/// (one more byte for `last`).
pub const MAX_ITEMS_PER_FRAME: usize = (MAX_PAYLOAD_LEN - 1 - 1 - 2) / 32;

/// A framing failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A payload over [`MAX_PAYLOAD_LEN`] (announced by a peer, or about to be sent).
    #[error("payload of {0} bytes exceeds {MAX_PAYLOAD_LEN}")]
    TooLarge(usize),
    /// A frame announcing an empty payload (every message has at least its type byte).
    #[error("empty frame")]
    Empty,
    /// A complete frame whose payload is not a message.
    #[error("malformed frame: {0}")]
    Decode(#[from] V2DecodeError),
    /// The stream ended inside a frame.
    #[error("stream ended with {0} bytes of an incomplete frame")]
    Truncated(usize),
    /// The decoder already failed; it accepts nothing more.
    #[error("decoder already failed")]
    Poisoned,
}

/// Appends `msg` as one frame to `out`; refuses (and appends nothing) if its payload is over
/// [`MAX_PAYLOAD_LEN`]. Senders split lists so that this never happens.
pub fn encode_frame(msg: &Message, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0, 0]);
    msg.encode(out);
    let len = out.len() - start - 2;
    if len > MAX_PAYLOAD_LEN {
        out.truncate(start);
        return Err(FrameError::TooLarge(len));
    }
    out[start..start + 2].copy_from_slice(&(len as u16).to_be_bytes());
    Ok(())
}

/// Incremental, sans-IO decoder of one stream's frames.
///
/// Feed bytes as they arrive and pull messages. Its buffer holds at most the unread bytes
/// fed; a stream's session feeds at most one frame's worth before pulling (QUIC flow control
/// holds back the rest), so a stream costs at most about 64 KiB.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    pos: usize,
    failed: bool,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Buffers received bytes.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), FrameError> {
        if self.failed {
            return Err(FrameError::Poisoned);
        }
        if self.pos > 0 && (self.pos == self.buf.len() || self.pos >= MAX_FRAME_LEN) {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Bytes fed but not yet returned as messages.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Capacity of the internal buffer (for tests and metrics).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Bytes still needed to complete the frame at the head of the buffer (0 when a message
    /// can be pulled or the decoder has failed). A session reads at most this much from its
    /// stream before pulling.
    pub fn wanted(&self) -> usize {
        let avail = &self.buf[self.pos..];
        match avail.first_chunk::<2>() {
            None => 2 - avail.len(),
            Some(h) => (2 + usize::from(u16::from_be_bytes(*h))).saturating_sub(avail.len()),
        }
    }

    /// The next complete message, `Ok(None)` if more bytes are needed. A bad header fails as
    /// soon as its two bytes are in.
    pub fn next_message(&mut self) -> Result<Option<Message>, FrameError> {
        if self.failed {
            return Err(FrameError::Poisoned);
        }
        let avail = &self.buf[self.pos..];
        let Some(header) = avail.first_chunk::<2>() else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes(*header));
        if len == 0 || len > MAX_PAYLOAD_LEN {
            self.failed = true;
            return Err(if len == 0 {
                FrameError::Empty
            } else {
                FrameError::TooLarge(len)
            });
        }
        if avail.len() < 2 + len {
            return Ok(None);
        }
        let result = Message::decode(&avail[2..2 + len]);
        self.pos += 2 + len;
        result.map(Some).map_err(|e| {
            self.failed = true;
            FrameError::Decode(e)
        })
    }

    /// Call at end of stream: errors if a partial frame is left.
    pub fn finish(&self) -> Result<(), FrameError> {
        match self.buffered() {
            0 => Ok(()),
            n => Err(FrameError::Truncated(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_checked_before_payloads() {
        let mut d = FrameDecoder::new();
        d.feed(&[0xff, 0xff]).unwrap();
        assert_eq!(d.next_message(), Err(FrameError::TooLarge(65535)));
        assert_eq!(d.next_message(), Err(FrameError::Poisoned));
        assert_eq!(d.feed(&[1]), Err(FrameError::Poisoned));
        let mut d = FrameDecoder::new();
        d.feed(&[0, 0]).unwrap();
        assert_eq!(d.next_message(), Err(FrameError::Empty));
        // The largest payload is accepted.
        let mut d = FrameDecoder::new();
        d.feed(&[0xff, 0xfe, 0x14]).unwrap();
        assert_eq!(d.next_message(), Ok(None));
        assert_eq!(d.wanted(), MAX_PAYLOAD_LEN - 1);
    }

    #[test]
    fn frames_split_anywhere_decode_the_same() {
        let msgs = [
            Message::DocDone,
            Message::MoreSymbols { until: 300 },
            Message::Wants {
                hashes: vec![[7; 32]; 3],
            },
        ];
        let mut stream = Vec::new();
        for m in &msgs {
            encode_frame(m, &mut stream).unwrap();
        }
        for chunk in 1..stream.len() {
            let mut d = FrameDecoder::new();
            let mut got = Vec::new();
            for c in stream.chunks(chunk) {
                d.feed(c).unwrap();
                while let Some(m) = d.next_message().unwrap() {
                    got.push(m);
                }
            }
            d.finish().unwrap();
            assert_eq!(got, msgs);
        }
        let mut d = FrameDecoder::new();
        d.feed(&stream[..stream.len() - 1]).unwrap();
        while d.next_message().unwrap().is_some() {}
        assert!(matches!(d.finish(), Err(FrameError::Truncated(_))));
    }

    #[test]
    fn per_frame_maxima_fit_at_worst_case() {
        use crate::v2::riblt::CodedSymbol;
        assert_eq!(MAX_SYMBOLS_PER_FRAME, 1337);
        assert_eq!(MAX_ITEMS_PER_FRAME, 2047);
        let worst = CodedSymbol {
            sum: [0xff; 32],
            checksum: u64::MAX,
            count: (1 << 63) - 1,
        };
        let symbols = Message::Symbols {
            start: u64::MAX,
            symbols: vec![worst; MAX_SYMBOLS_PER_FRAME],
        };
        let list = Message::ItemList {
            last: true,
            items: vec![[0xff; 32]; MAX_ITEMS_PER_FRAME],
        };
        let wants = Message::Wants {
            hashes: vec![[0xff; 32]; MAX_ITEMS_PER_FRAME],
        };
        for m in [symbols, list, wants] {
            encode_frame(&m, &mut Vec::new()).unwrap();
        }
    }

    #[test]
    fn oversized_messages_are_refused_on_encode() {
        let msg = Message::Wants {
            hashes: vec![[1; 32]; MAX_PAYLOAD_LEN / 32 + 1],
        };
        let mut out = vec![9];
        assert!(matches!(
            encode_frame(&msg, &mut out),
            Err(FrameError::TooLarge(_))
        ));
        assert_eq!(out, [9]);
        let fits = Message::Wants {
            hashes: vec![[1; 32]; (MAX_PAYLOAD_LEN - 4) / 32],
        };
        encode_frame(&fits, &mut out).unwrap();
        assert!(out.len() - 1 <= MAX_FRAME_LEN);
    }
}
