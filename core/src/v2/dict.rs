//! The per-connection author dictionaries of `docs/sync-v2.md` §6.5.
//!
//! Every compact entry and range bound names its author by a small index instead of 32 bytes.
//! Each direction of a connection has its own dictionary, defined by its sender in `Authors`
//! frames on the control stream. A [`Dictionary`] holds both directions of one side: the
//! indices this side hands out ([`Dictionary::index`], whose new definitions the connection
//! writes to the control stream before the frames that use them, [`Dictionary::take_definitions`])
//! and the indices the peer defined ([`Dictionary::define`], [`Dictionary::resolve`]).
//!
//! Bounds: at most [`MAX_AUTHORS`] ids per direction. Handing out one more fails with
//! [`DictionaryError::Full`] (the document stream that needed it is aborted with
//! `LimitExceeded`); a peer defining more is a connection error. Memory is ≤ 2 × 65,536 × 32
//! bytes plus the reverse map.

use std::collections::BTreeMap;

use crate::{
    keys::AuthorId,
    v2::{
        codec::{Bound, Message, Part},
        frame::MAX_ITEMS_PER_FRAME,
    },
};

/// Most authors one direction's dictionary defines.
pub const MAX_AUTHORS: usize = 1 << 16;

/// Why a dictionary operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DictionaryError {
    /// The dictionary already holds [`MAX_AUTHORS`] ids.
    #[error("author dictionary full ({MAX_AUTHORS} ids)")]
    Full,
    /// A definition that does not continue the peer's dictionary.
    #[error("authors defined from {got}, {expected} expected")]
    Gap {
        /// The next index the dictionary expected.
        expected: u32,
        /// The first index of the definition.
        got: u32,
    },
}

/// Both directions of one side's author dictionaries on a connection.
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    /// Ids this side defined, by index.
    ours: Vec<AuthorId>,
    /// Reverse of `ours`.
    ours_index: BTreeMap<AuthorId, u32>,
    /// How many of `ours` were already handed to the control stream.
    announced: usize,
    /// Ids the peer defined, by index.
    theirs: Vec<AuthorId>,
}

impl Dictionary {
    /// Empty dictionaries.
    pub fn new() -> Self {
        Self::default()
    }

    /// This side's index for `author`, defining a new one if needed.
    pub fn index(&mut self, author: &AuthorId) -> Result<u32, DictionaryError> {
        if let Some(i) = self.ours_index.get(author) {
            return Ok(*i);
        }
        if self.ours.len() >= MAX_AUTHORS {
            return Err(DictionaryError::Full);
        }
        let i = self.ours.len() as u32;
        self.ours.push(*author);
        self.ours_index.insert(*author, i);
        Ok(i)
    }

    /// The `Authors` frames defining the indices handed out since the last call, for the
    /// control stream; they must be written before any document-stream frame produced since.
    pub fn take_definitions(&mut self) -> Vec<Message> {
        let new = &self.ours[self.announced..];
        let out = new
            .chunks(MAX_ITEMS_PER_FRAME)
            .enumerate()
            .map(|(i, ids)| Message::Authors {
                first: (self.announced + i * MAX_ITEMS_PER_FRAME) as u32,
                ids: ids.to_vec(),
            })
            .collect();
        self.announced = self.ours.len();
        out
    }

    /// Records the peer's definition of `ids` from index `first`.
    pub fn define(&mut self, first: u32, ids: &[AuthorId]) -> Result<(), DictionaryError> {
        let expected = self.theirs.len() as u32;
        if first != expected {
            return Err(DictionaryError::Gap {
                expected,
                got: first,
            });
        }
        if self.theirs.len() + ids.len() > MAX_AUTHORS {
            return Err(DictionaryError::Full);
        }
        self.theirs.extend_from_slice(ids);
        Ok(())
    }

    /// The author the peer defined at `index`.
    pub fn resolve(&self, index: u32) -> Option<AuthorId> {
        self.theirs.get(index as usize).copied()
    }

    /// Whether `msg` uses an index the peer has not defined yet: a document stream holding
    /// such a message is parked until the control stream brings the definition.
    pub fn is_missing_for(&self, msg: &Message) -> bool {
        match max_author_index(msg) {
            Some(i) => i as usize >= self.theirs.len(),
            None => false,
        }
    }
}

/// The largest author index `msg` uses, if any.
pub fn max_author_index(msg: &Message) -> Option<u32> {
    match msg {
        Message::Entries { entries } => entries.iter().map(|e| e.author).max(),
        Message::Ranges { parts } => parts
            .iter()
            .filter_map(|Part { upper, .. }| match upper {
                Bound::Key { author, .. } => Some(*author),
                Bound::End => None,
            })
            .max(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> AuthorId {
        AuthorId::from_bytes([b; 32])
    }

    #[test]
    fn indices_are_defined_once_in_order_and_resolved_by_the_peer() {
        let mut a = Dictionary::new();
        let mut b = Dictionary::new();
        assert_eq!(a.index(&id(1)).unwrap(), 0);
        assert_eq!(a.index(&id(2)).unwrap(), 1);
        assert_eq!(a.index(&id(1)).unwrap(), 0);
        let defs = a.take_definitions();
        assert_eq!(defs.len(), 1);
        assert!(a.take_definitions().is_empty());
        let msg = Message::Entries {
            entries: Vec::new(),
        };
        assert!(!b.is_missing_for(&msg));
        let bound = Message::Ranges {
            parts: vec![Part {
                upper: Bound::Key {
                    author: 1,
                    key: vec![],
                },
                mode: crate::v2::codec::PartMode::Skip,
            }],
        };
        assert!(b.is_missing_for(&bound));
        for d in defs {
            let Message::Authors { first, ids } = d else {
                panic!("not a definition")
            };
            b.define(first, &ids).unwrap();
        }
        assert!(!b.is_missing_for(&bound));
        assert_eq!(b.resolve(1), Some(id(2)));
        assert_eq!(b.resolve(2), None);
        assert_eq!(
            b.define(5, &[id(3)]),
            Err(DictionaryError::Gap {
                expected: 2,
                got: 5
            })
        );
    }
}
