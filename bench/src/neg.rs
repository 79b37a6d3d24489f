//! Negentropy (the `negentropy` crate 0.5: 16-way splits, id lists below 32 items) over the
//! same two sets as [`crate::reconcile`], as the reference for W8's messages, round trips
//! and bytes.
//!
//! An item is an entry's timestamp and the BLAKE3 hash of its wire encoding. Negentropy
//! reconciles ids only: its initiator ends knowing which ids it has that the other side
//! lacks (`have`) and which it needs (`need`). Moving the entries takes one more exchange:
//! the initiator sends its `have` entries and the `need` ids (32 bytes each) in one flight,
//! the other side answers with the needed entries. So:
//!
//! - `messages`: negentropy messages (both ways);
//! - flights: `messages`, plus 2 when anything is needed (request and answer), or 1 when the
//!   initiator only pushes; round trips are flights / 2, rounded up, as for the
//!   alternating iroh-docs protocol, where every message is a flight;
//! - `bytes`: negentropy messages, need ids, and the wire encoding of every entry moved.
//!
//! Wall time covers building nothing: the storages are built and sealed beforehand, as a
//! running node's index would be.

use std::{collections::HashMap, time::Instant};

use negentropy::{Id, Negentropy, NegentropyStorageVector};
use sheaf_core::{wire::Encode, SignedEntry};

/// What one negentropy reconciliation cost.
#[derive(Debug, Clone, Copy)]
pub struct NegStats {
    /// Wall time of the exchange, ms.
    pub millis: f64,
    /// Negentropy messages, both ways.
    pub messages: usize,
    /// One-way flights, the entry transfer included.
    pub flights: usize,
    /// Bytes of messages, need ids and entries moved.
    pub bytes: usize,
    /// Entries moved, both ways.
    pub moved: usize,
}

fn storage(entries: &[SignedEntry]) -> (NegentropyStorageVector, HashMap<[u8; 32], usize>) {
    let mut s = NegentropyStorageVector::with_capacity(entries.len());
    let mut sizes = HashMap::with_capacity(entries.len());
    for e in entries {
        let wire = e.to_wire();
        let id = *blake3::hash(&wire).as_bytes();
        s.insert(e.timestamp(), Id::from_byte_array(id))
            .expect("insert");
        sizes.insert(id, wire.len());
    }
    s.seal().expect("seal");
    (s, sizes)
}

/// Reconciles `a` (initiator) with `b`; panics if negentropy finds a different difference
/// than the sets hold.
pub fn run(a: &[SignedEntry], b: &[SignedEntry]) -> NegStats {
    let (sa, sizes_a) = storage(a);
    let (sb, sizes_b) = storage(b);
    let start = Instant::now();
    let mut client = Negentropy::borrowed(&sa, 0).expect("client");
    let mut server = Negentropy::borrowed(&sb, 0).expect("server");
    let mut msg = client.initiate().expect("initiate");
    let mut bytes = msg.len();
    let mut messages = 1;
    let (mut have, mut need) = (Vec::new(), Vec::new());
    loop {
        let reply = server.reconcile(&msg).expect("reconcile");
        bytes += reply.len();
        messages += 1;
        match client
            .reconcile_with_ids(&reply, &mut have, &mut need)
            .expect("reconcile_with_ids")
        {
            Some(next) => {
                bytes += next.len();
                messages += 1;
                msg = next;
            }
            None => break,
        }
    }
    let millis = start.elapsed().as_secs_f64() * 1000.0;
    let entry_bytes: usize = have.iter().map(|id| sizes_a[id.as_bytes()]).sum::<usize>()
        + need.iter().map(|id| sizes_b[id.as_bytes()]).sum::<usize>();
    bytes += entry_bytes + need.len() * 32;
    let flights = messages
        + if !need.is_empty() {
            2
        } else {
            usize::from(!have.is_empty())
        };
    NegStats {
        millis,
        messages,
        flights,
        bytes,
        moved: have.len() + need.len(),
    }
}
