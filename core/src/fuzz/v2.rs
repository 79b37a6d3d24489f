//! The `decode_v2` target: v2 frames, messages and the rateless IBLT decoder.

use crate::v2::{
    codec::Message,
    frame::{encode_frame, FrameDecoder, FrameError, MAX_FRAME_LEN},
    riblt::{self, Decoder, Hasher, Limits},
};

/// Largest chunk the data-derived chunking feeds at once.
const MAX_CHUNK: usize = 97;

/// Limits of the fuzzed RIBLT decoder: small, so inputs reach them.
const LIMITS: Limits = Limits {
    max_symbols: 256,
    max_items: 64,
};

/// What decoding a whole stream gave: the messages with their frame ranges, and the error
/// that stopped decoding or the verdict of `finish`.
#[derive(Debug, PartialEq, Eq)]
struct Trace {
    messages: Vec<(std::ops::Range<usize>, Message)>,
    end: Result<(), FrameError>,
}

fn run(stream: &[u8], chunk: &dyn Fn(usize) -> usize) -> Trace {
    let mut d = FrameDecoder::new();
    let mut messages = Vec::new();
    let (mut fed, mut frame_start) = (0, 0);
    while fed < stream.len() {
        let size = chunk(fed).clamp(1, stream.len() - fed);
        d.feed(&stream[fed..fed + size])
            .expect("feed only fails after an error was returned");
        fed += size;
        assert!(
            d.buffered() <= fed - frame_start,
            "the decoder holds bytes that were not fed"
        );
        loop {
            match d.next_message() {
                Ok(Some(msg)) => {
                    let len = usize::from(u16::from_be_bytes([
                        stream[frame_start],
                        stream[frame_start + 1],
                    ]));
                    let end = frame_start + 2 + len;
                    assert!(end <= fed && end - frame_start <= MAX_FRAME_LEN);
                    messages.push((frame_start..end, msg));
                    frame_start = end;
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(!matches!(
                        e,
                        FrameError::Poisoned | FrameError::Truncated(_)
                    ));
                    assert_eq!(d.next_message(), Err(FrameError::Poisoned));
                    return Trace {
                        messages,
                        end: Err(e),
                    };
                }
            }
        }
    }
    Trace {
        messages,
        end: d.finish(),
    }
}

/// Fuzz body: `data` is a v2 stream, and also one payload.
///
/// * Decoding the stream whole, in data-derived chunks and byte by byte gives the same
///   messages and the same error.
/// * Every decoded message re-encodes to exactly the bytes of its frame (the v2 encoding is
///   canonical: minimal varints only), and a payload that decodes re-encodes to itself.
/// * The `Symbols` messages are fed, in order, to a RIBLT [`Decoder`] with small limits
///   against a local set taken from the data: it never panics, holds at most the limits, and
///   after an error stays failed.
pub fn decode_v2(data: &[u8]) {
    let chunk = |pos: usize| usize::from(data[pos]) % MAX_CHUNK + 1;
    let whole = run(data, &|_| usize::MAX);
    assert_eq!(
        whole,
        run(data, &chunk),
        "chunking changed the decoded stream"
    );
    assert_eq!(
        whole,
        run(data, &|_| 1),
        "byte-wise feeding changed the stream"
    );

    for (range, msg) in &whole.messages {
        let mut out = Vec::new();
        encode_frame(msg, &mut out).expect("a decoded message fits a frame");
        assert_eq!(out, data[range.clone()], "frame re-encodes differently");
    }
    if let Ok(msg) = Message::decode(data) {
        assert_eq!(msg.to_payload(), data, "payload re-encodes differently");
    }

    // Local items: 32-byte windows of the data, at most 16.
    let local: Vec<riblt::Item> = data
        .chunks_exact(32)
        .take(16)
        .map(|c| c.try_into().expect("32 bytes"))
        .collect();
    let mut decoder = Decoder::new(Hasher::new([7; 32]), LIMITS, local);
    // After a failure (other than symbols out of order) the decoder stays failed.
    let mut poisoned = false;
    for (_, msg) in &whole.messages {
        if let Message::Symbols { start, symbols } = msg {
            let in_order = *start == decoder.symbols_received();
            let result = decoder.add_symbols(*start, symbols);
            assert!(decoder.symbols_received() <= LIMITS.max_symbols);
            assert!(decoder.decoded().len() <= LIMITS.max_items);
            if poisoned && in_order && !symbols.is_empty() {
                assert!(result.is_err(), "a failed decoder accepted symbols");
            }
            poisoned |= in_order && result.is_err();
            let _ = decoder.estimate_difference();
            let _ = decoder.is_done();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The golden frames, alone, concatenated, truncated and with one byte changed.
    #[test]
    fn golden_frames_and_mutations() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/sync-v2");
        let mut all = Vec::new();
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "hex"))
            .collect();
        names.sort();
        assert!(names.len() >= 15);
        for path in names {
            let text = std::fs::read_to_string(path).unwrap();
            let hex: String = text
                .lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>()
                .concat();
            let frame = hex::decode(hex).unwrap();
            decode_v2(&frame);
            decode_v2(&frame[2..]);
            decode_v2(&frame[..frame.len() - 1]);
            for i in 0..frame.len() {
                let mut m = frame.clone();
                m[i] ^= 0x5a;
                decode_v2(&m);
            }
            all.extend_from_slice(&frame);
        }
        decode_v2(&all);
    }
}
