//! The `decode_frame` target: the sync-stream frame decoder.

use super::may_hold_non_minimal_varint;
use crate::wire::{
    encode_frame, Decode, FrameDecoder, FrameError, SyncMessage, DEFAULT_MAX_FRAME_LEN,
};

/// Frame limit of the second run: small enough that fuzz inputs reach `TooLarge`.
const SMALL_MAX_FRAME_LEN: u32 = 512;

/// Largest chunk the data-derived chunking feeds at once.
const MAX_CHUNK: usize = 64;

/// What decoding a whole stream gave.
#[derive(Debug, PartialEq, Eq)]
struct Trace {
    /// The messages, each with the byte range of its frame in the stream.
    messages: Vec<(std::ops::Range<usize>, SyncMessage)>,
    /// The error that stopped decoding, if any.
    error: Option<FrameError>,
    /// `finish()` after all bytes went in (only when no error stopped decoding).
    finish: Option<Result<(), FrameError>>,
}

/// Decodes `stream` fed in chunks of `chunk(pos)` bytes (`None`: all at once), checking the
/// decoder's bookkeeping after every step.
fn run(stream: &[u8], max: u32, chunk: Option<&dyn Fn(usize) -> usize>) -> Trace {
    let mut d = FrameDecoder::new(max);
    let mut trace = Trace {
        messages: Vec::new(),
        error: None,
        finish: None,
    };
    let mut fed = 0;
    // Start of the next frame in the stream.
    let mut frame_start = 0;
    while fed < stream.len() {
        let size = chunk
            .map_or(stream.len(), |c| c(fed))
            .clamp(1, stream.len() - fed);
        if let Err(e) = d.feed(&stream[fed..fed + size]) {
            unreachable!("feed failed before any error was returned: {e}");
        }
        fed += size;
        assert!(
            d.capacity() <= 2 * fed + 16,
            "decoder holds {} bytes of capacity after {fed} bytes fed",
            d.capacity()
        );
        loop {
            match d.next_message() {
                Ok(Some(msg)) => {
                    let header: [u8; 4] = stream[frame_start..frame_start + 4]
                        .try_into()
                        .expect("a decoded frame has a header");
                    let end = frame_start + 4 + u32::from_be_bytes(header) as usize;
                    assert!(end <= fed, "a message decoded from bytes not yet fed");
                    assert!(u32::from_be_bytes(header) <= max);
                    trace.messages.push((frame_start..end, msg));
                    frame_start = end;
                    assert_eq!(d.buffered(), fed - frame_start);
                }
                Ok(None) => {
                    assert_eq!(d.buffered(), fed - frame_start);
                    break;
                }
                Err(e) => {
                    assert!(!matches!(
                        e,
                        FrameError::Poisoned | FrameError::Truncated(_)
                    ));
                    // A failed decoder refuses everything after.
                    assert_eq!(d.next_message(), Err(FrameError::Poisoned));
                    assert_eq!(d.feed(&[0]), Err(FrameError::Poisoned));
                    trace.error = Some(e);
                    return trace;
                }
            }
        }
    }
    let finish = d.finish();
    match &finish {
        Ok(()) => assert_eq!(frame_start, stream.len()),
        Err(FrameError::Truncated(n)) => {
            assert_eq!(*n, stream.len() - frame_start);
            assert!(*n > 0);
        }
        Err(e) => panic!("finish gave {e}"),
    }
    trace.finish = Some(finish);
    trace
}

/// Checks one decoded message against the bytes of its frame.
fn check_message(frame: &[u8], msg: &SyncMessage, max: u32) {
    let payload = &frame[4..];
    assert_eq!(SyncMessage::from_wire(payload).as_ref(), Ok(msg));
    let mut out = Vec::new();
    encode_frame(msg, max, &mut out).expect("a decoded message fits the limit it came under");
    if out != frame {
        // Only a non-minimal varint can make a valid frame re-encode differently, and
        // postcard's minimal form is always shorter.
        assert!(
            out.len() < frame.len() && may_hold_non_minimal_varint(payload),
            "canonical frame re-encodes differently:\n in  {}\n out {}",
            hex::encode(frame),
            hex::encode(&out)
        );
    }
    // The re-encoding is canonical: it decodes to the same message and encodes to itself.
    let mut d = FrameDecoder::new(max);
    d.feed(&out).expect("a fresh decoder accepts bytes");
    assert_eq!(d.next_message().as_ref(), Ok(&Some(msg.clone())));
    assert_eq!(d.finish(), Ok(()));
    let mut again = Vec::new();
    encode_frame(msg, max, &mut again).expect("encoding is deterministic");
    assert_eq!(again, out);
}

/// Fuzz body: `data` is a sync byte stream. See the [module docs](super).
pub fn decode_frame(data: &[u8]) {
    // Chunk sizes come from the stream itself: the byte at the current position.
    let chunk = |pos: usize| usize::from(data[pos]) % MAX_CHUNK + 1;
    for max in [DEFAULT_MAX_FRAME_LEN, SMALL_MAX_FRAME_LEN] {
        let whole = run(data, max, None);
        let chunked = run(data, max, Some(&chunk));
        let bytewise = run(data, max, Some(&|_| 1));
        assert_eq!(whole, chunked, "chunking changed the decoded stream");
        assert_eq!(
            whole, bytewise,
            "byte-wise feeding changed the decoded stream"
        );
        for (range, msg) in &whole.messages {
            check_message(&data[range.clone()], msg, max);
        }
    }
}
