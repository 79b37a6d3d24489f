//! Packs a session's outgoing lists into messages that each fit one frame (≤ 64 KiB).
//!
//! Entries, wants, symbols and range parts are appended one at a time; a message is started
//! when the previous one of the same kind would outgrow [`MAX_PAYLOAD_LEN`]. Adjacent `Skip`
//! parts are merged (the later bound covers both), so a settled stretch costs one part.

use crate::v2::{
    codec::{Bound, CompactEntry, Message, Part, PartMode},
    fingerprint::RANGE_TAG_LEN,
    frame::{MAX_ITEMS_PER_FRAME, MAX_PAYLOAD_LEN, MAX_SYMBOLS_PER_FRAME},
    riblt::{CodedSymbol, Item},
};

/// Room for a message's type byte and its list count (≤ 3 varint bytes below 2^21).
const HEADER: usize = 4;

/// Bytes of a minimal LEB128 varint.
pub(crate) fn varint_len(v: u64) -> usize {
    ((64 - v.max(1).leading_zeros()) as usize).div_ceil(7)
}

/// Encoded size of a compact entry.
fn entry_len(e: &CompactEntry) -> usize {
    varint_len(u64::from(e.author))
        + varint_len(e.key.len() as u64)
        + e.key.len()
        + varint_len(e.record.content_len())
        + 32
        + varint_len(e.record.timestamp())
        + 1
        + 128
}

/// Encoded size of a range part.
fn part_len(p: &Part) -> usize {
    let bound = match &p.upper {
        Bound::End => 1,
        Bound::Key { author, key } => {
            1 + varint_len(u64::from(*author)) + varint_len(key.len() as u64) + key.len()
        }
    };
    let mode = match &p.mode {
        PartMode::Skip => 1,
        PartMode::Fingerprint(d) => 1 + RANGE_TAG_LEN + varint_len(d.count),
        PartMode::Hashes(items) => 1 + varint_len(items.len() as u64) + 32 * items.len(),
    };
    bound + mode
}

/// `Symbols` messages of `symbols` from index `start`, `per_frame` to a frame (at most as
/// many as fit, [`MAX_SYMBOLS_PER_FRAME`]).
pub(crate) fn symbol_messages(
    start: u64,
    symbols: &[CodedSymbol],
    per_frame: usize,
) -> Vec<Message> {
    let per_frame = per_frame.clamp(1, MAX_SYMBOLS_PER_FRAME);
    symbols
        .chunks(per_frame)
        .enumerate()
        .map(|(i, chunk)| Message::Symbols {
            start: start + (i * per_frame) as u64,
            symbols: chunk.to_vec(),
        })
        .collect()
}

/// Outgoing messages of one session step, in order.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    msgs: Vec<Message>,
    /// Encoded payload size of the last message, when it is an `Entries` or `Ranges` still
    /// open for appending.
    open_len: usize,
}

impl Outbox {
    pub(crate) fn push(&mut self, m: Message) {
        self.open_len = 0;
        self.msgs.push(m);
    }

    pub(crate) fn entry(&mut self, e: CompactEntry) {
        let len = entry_len(&e);
        if let Some(Message::Entries { entries }) = self.msgs.last_mut() {
            if self.open_len > 0 && self.open_len + len <= MAX_PAYLOAD_LEN - HEADER {
                entries.push(e);
                self.open_len += len;
                return;
            }
        }
        self.msgs.push(Message::Entries { entries: vec![e] });
        self.open_len = len;
    }

    pub(crate) fn wants(&mut self, items: Vec<Item>) {
        for chunk in items.chunks(MAX_ITEMS_PER_FRAME) {
            self.push(Message::Wants {
                hashes: chunk.to_vec(),
            });
        }
    }

    pub(crate) fn symbols(&mut self, start: u64, symbols: Vec<CodedSymbol>, per_frame: usize) {
        for m in symbol_messages(start, &symbols, per_frame) {
            self.push(m);
        }
    }

    /// Appends the parts of one turn (the last bound must be `End`), merging adjacent skips.
    pub(crate) fn parts(&mut self, parts: Vec<Part>) {
        let mut merged: Vec<Part> = Vec::with_capacity(parts.len());
        for p in parts {
            match (merged.last_mut(), &p.mode) {
                (Some(last), PartMode::Skip) if last.mode == PartMode::Skip => last.upper = p.upper,
                _ => merged.push(p),
            }
        }
        self.open_len = 0;
        let mut current: Vec<Part> = Vec::new();
        let mut len = 0;
        for p in merged {
            let l = part_len(&p);
            if !current.is_empty() && len + l > MAX_PAYLOAD_LEN - HEADER {
                self.msgs.push(Message::Ranges {
                    parts: std::mem::take(&mut current),
                });
                len = 0;
            }
            len += l;
            current.push(p);
        }
        self.msgs.push(Message::Ranges { parts: current });
    }

    pub(crate) fn into_messages(self) -> Vec<Message> {
        self.msgs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v2::frame::encode_frame;

    #[test]
    fn varint_lengths() {
        for (v, n) in [
            (0, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (u64::MAX, 10),
        ] {
            assert_eq!(varint_len(v), n, "{v}");
            let mut b = Vec::new();
            crate::v2::codec::put_varint(&mut b, v);
            assert_eq!(b.len(), n);
        }
    }

    #[test]
    fn packed_messages_fit_their_frames_and_skips_merge() {
        let mut ob = Outbox::default();
        let e = CompactEntry {
            author: 300,
            key: vec![7; 1000],
            record: crate::entry::Record::new(
                crate::hash::Hash::from_bytes([1; 32]),
                1 << 40,
                1 << 50,
            ),
            status: crate::ranger::ContentStatus::Complete,
            signature: crate::entry::EntrySignature::from_bytes([2; 64], [3; 64]),
        };
        for _ in 0..200 {
            ob.entry(e.clone());
        }
        ob.wants(vec![[9; 32]; 5000]);
        let mut parts = vec![
            Part {
                upper: Bound::Key {
                    author: 1,
                    key: vec![1],
                },
                mode: PartMode::Skip,
            },
            Part {
                upper: Bound::Key {
                    author: 1,
                    key: vec![2],
                },
                mode: PartMode::Skip,
            },
        ];
        for i in 0..100u8 {
            parts.push(Part {
                upper: Bound::Key {
                    author: 2,
                    key: vec![i; 900],
                },
                mode: PartMode::Hashes(vec![[i; 32]; 20]),
            });
        }
        parts.push(Part {
            upper: Bound::End,
            mode: PartMode::Skip,
        });
        ob.parts(parts);
        let msgs = ob.into_messages();
        let mut entries = 0;
        let mut ranges = Vec::new();
        for m in &msgs {
            let mut buf = Vec::new();
            encode_frame(m, &mut buf).expect("fits a frame");
            match m {
                Message::Entries { entries: es } => entries += es.len(),
                Message::Ranges { parts } => ranges.extend(parts.iter().cloned()),
                _ => {}
            }
        }
        assert_eq!(entries, 200);
        assert!(
            msgs.iter()
                .filter(|m| matches!(m, Message::Entries { .. }))
                .count()
                >= 3
        );
        // The two leading skips became one; the hashes parts and the final skip remain.
        assert_eq!(ranges.len(), 102);
        assert_eq!(ranges.last().unwrap().upper, Bound::End);
    }
}
