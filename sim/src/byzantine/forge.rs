//! The bytes a hostile peer puts on the wire: forged entries, gossip messages built without a
//! gossip state, and reconciliation messages no honest peer would send.
//!
//! Everything here is well-formed — it decodes — because garbage is rejected by the codecs
//! before it reaches anything interesting (the fuzz targets cover that). What must hold the
//! line is what comes after decoding: signature checks, the gossip budget and mute, the frame
//! limit before `Init`, the per-message bounds of the ranger and the session bounds.

use rand::RngExt;
use rand_chacha::ChaCha12Rng;
use serde::Serialize;
use sheaf_core::{
    entry::{Entry, Record, RecordIdentifier},
    hash::Hash,
    keys::{Author, AuthorId, NamespaceId, NamespaceSecret},
    ranger::{Message, MessagePart, Range, RangeFingerprint, RangeItem},
    wire::{encode_frame, SyncMessage},
    ContentStatus, Fingerprint, SignedEntry,
};

/// postcard mirror of `iroh_gossip::proto::topic::Message` (whose payload type has private
/// fields): the attacker writes the wire format itself, as a modified peer would. Variant
/// order and field order must match iroh-gossip's; a test decodes the result with
/// iroh-gossip's own type.
#[derive(Serialize)]
enum WireTopic<'a> {
    /// `Message::Swarm` (never sent; keeps `Gossip` at index 1).
    #[allow(dead_code)]
    Swarm(()),
    /// `Message::Gossip`.
    Gossip(WirePlumtree<'a>),
}

/// `plumtree::Message`: only its first variant, `Gossip`.
#[derive(Serialize)]
enum WirePlumtree<'a> {
    Gossip(WireGossip<'a>),
}

/// `plumtree::Gossip { id, content, scope }`.
#[derive(Serialize)]
struct WireGossip<'a> {
    id: [u8; 32],
    content: &'a [u8],
    scope: WireScope,
}

/// `plumtree::DeliveryScope`.
#[derive(Serialize)]
enum WireScope {
    /// `Swarm(Round)`: round 0 is "from the publisher itself".
    Swarm(u16),
}

/// A postcard-encoded gossip broadcast of `content` as its publisher sends it (round 0, with
/// the correct message id, so iroh-gossip accepts, delivers and forwards it).
pub fn gossip_message(content: &[u8]) -> Vec<u8> {
    let msg = WireTopic::Gossip(WirePlumtree::Gossip(WireGossip {
        id: *blake3::hash(content).as_bytes(),
        content,
        scope: WireScope::Swarm(0),
    }));
    postcard::to_allocvec(&msg).expect("gossip messages encode")
}

/// The attacker's own keys: an author and a namespace secret of no document of the run.
pub struct Keys {
    /// Signs the author half of `Forgery::WrongNamespaceKey` entries.
    pub author: Author,
    /// Signs their namespace half (a key the document does not have).
    pub secret: NamespaceSecret,
}

/// How a forged `Put` is made. None of them verifies.
#[derive(Debug, Clone, Copy)]
pub enum Forgery {
    /// A seen entry of the document with newer content, keeping the old signatures.
    NewerContent,
    /// A tombstone, newer than anything, at a prefix of a seen key (often the empty prefix,
    /// which would wipe the author's whole document), carrying another entry's signatures.
    Tombstone,
    /// An entry by the attacker's own author, signed with its own key for both halves: the
    /// author signature verifies, the namespace signature does not.
    WrongNamespaceKey,
}

impl Forgery {
    /// The three kinds, drawn uniformly.
    pub fn draw(rng: &mut ChaCha12Rng) -> Self {
        match rng.random_range(0..3u8) {
            0 => Forgery::NewerContent,
            1 => Forgery::Tombstone,
            _ => Forgery::WrongNamespaceKey,
        }
    }
}

/// A forged entry of document `ns`, timestamped up to a minute after `wall` (inside the
/// drift limit, so only the signature check can refuse it). `seen` are valid entries the
/// attacker has observed, of any document.
pub fn forged_entry(
    rng: &mut ChaCha12Rng,
    kind: Forgery,
    ns: NamespaceId,
    seen: &[SignedEntry],
    keys: &Keys,
    wall: u64,
) -> SignedEntry {
    let ts = wall + rng.random_range(0..60_000_000u64);
    let of_doc: Vec<&SignedEntry> = seen.iter().filter(|e| e.namespace() == ns).collect();
    let pick = |rng: &mut ChaCha12Rng, v: &[&SignedEntry]| -> Option<SignedEntry> {
        (!v.is_empty()).then(|| v[rng.random_range(0..v.len())].clone())
    };
    let model = pick(rng, &of_doc);
    let donor = pick(rng, &seen.iter().collect::<Vec<_>>());
    match (kind, model, donor) {
        (Forgery::NewerContent, Some(m), Some(d)) => {
            let value: [u8; 8] = rng.random();
            let record = Record::new(Hash::new(value), 8, ts);
            let entry = Entry::new(m.id().clone(), record);
            SignedEntry::from_parts(*d.signature(), entry)
        }
        (Forgery::Tombstone, Some(m), Some(d)) => {
            let key = m.key();
            let len = if rng.random_bool(0.5) {
                0
            } else {
                rng.random_range(0..=key.len())
            };
            let id = RecordIdentifier::new(ns, m.author(), &key[..len]);
            SignedEntry::from_parts(*d.signature(), Entry::new(id, Record::empty(ts)))
        }
        _ => {
            let key: [u8; 2] = [b'a' + rng.random_range(0..3u8), b'/'];
            let id = RecordIdentifier::new(ns, keys.author.id(), &key[..rng.random_range(1..=2)]);
            let value: [u8; 8] = rng.random();
            Entry::new(id, Record::new(Hash::new(value), 8, ts)).sign(&keys.secret, &keys.author)
        }
    }
}

/// Shapes of hostile reconciliation messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostile {
    /// `parts` fingerprints of the whole namespace, with random fingerprints: each would make
    /// the receiver answer for everything it holds.
    WholeFingerprints,
    /// `parts` whole-namespace items asking for the receiver's entries
    /// (`have_local == false`).
    WholeItems,
    /// `parts` small, disjoint, sorted ranges with random fingerprints: a legal but wasteful
    /// message the receiver must answer within its read budget.
    DisjointRanges,
    /// One whole-namespace item carrying replayed valid entries and forged ones.
    ForgedValues,
}

impl Hostile {
    /// The four shapes, drawn uniformly.
    pub fn draw(rng: &mut ChaCha12Rng) -> Self {
        match rng.random_range(0..4u8) {
            0 => Hostile::WholeFingerprints,
            1 => Hostile::WholeItems,
            2 => Hostile::DisjointRanges,
            _ => Hostile::ForgedValues,
        }
    }
}

fn whole() -> Range {
    Range::new(RecordIdentifier::zero(), RecordIdentifier::zero())
}

/// A hostile reconciliation message of about `parts` parts about document `ns`.
pub fn hostile_message(
    rng: &mut ChaCha12Rng,
    shape: Hostile,
    parts: usize,
    ns: NamespaceId,
    seen: &[SignedEntry],
    keys: &Keys,
    wall: u64,
) -> Message {
    let parts = parts.max(1);
    let message = match shape {
        Hostile::WholeFingerprints => (0..parts)
            .map(|_| {
                MessagePart::RangeFingerprint(RangeFingerprint {
                    range: whole(),
                    fingerprint: Fingerprint(rng.random()),
                })
            })
            .collect(),
        Hostile::WholeItems => (0..parts)
            .map(|_| {
                MessagePart::RangeItem(RangeItem {
                    range: whole(),
                    values: Vec::new(),
                    have_local: false,
                })
            })
            .collect(),
        Hostile::DisjointRanges => {
            let mut ids: Vec<RecordIdentifier> = (0..=parts)
                .map(|_| {
                    let author = AuthorId::from(rng.random::<[u8; 32]>());
                    let key: [u8; 4] = rng.random();
                    RecordIdentifier::new(ns, author, key)
                })
                .collect();
            ids.sort();
            ids.dedup();
            ids.windows(2)
                .map(|w| {
                    MessagePart::RangeFingerprint(RangeFingerprint {
                        range: Range::new(w[0].clone(), w[1].clone()),
                        fingerprint: Fingerprint(rng.random()),
                    })
                })
                .collect()
        }
        Hostile::ForgedValues => {
            let mut values: Vec<(SignedEntry, ContentStatus)> = seen
                .iter()
                .filter(|e| e.namespace() == ns)
                .take(parts)
                .map(|e| (e.clone(), ContentStatus::Complete))
                .collect();
            for _ in 0..rng.random_range(1..=4) {
                let kind = Forgery::draw(rng);
                let e = forged_entry(rng, kind, ns, seen, keys, wall);
                let at = rng.random_range(0..=values.len());
                values.insert(at, (e, ContentStatus::Complete));
            }
            vec![MessagePart::RangeItem(RangeItem {
                range: whole(),
                values,
                have_local: true,
            })]
        }
    };
    Message::new(message)
}

/// `msg` as one frame.
pub fn frame(msg: &SyncMessage) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(msg, u32::MAX, &mut out).expect("a frame within u32::MAX bytes");
    out
}

#[cfg(test)]
mod tests {
    use iroh_gossip::proto::{
        topic::{self, Event, InEvent, OutEvent},
        Config,
    };
    use rand::SeedableRng;

    use super::*;
    use crate::gossip::{instant, Pi};

    /// The hand-written encoding is what iroh-gossip decodes as a first-hop broadcast: the
    /// receiving state delivers it as a direct message from the attacker.
    #[test]
    fn mirrored_gossip_decodes_and_is_delivered_as_direct() {
        let content = b"forged op".to_vec();
        let bytes = gossip_message(&content);
        let msg: topic::Message<Pi> = postcard::from_bytes(&bytes).expect("decodes");
        assert!(matches!(msg, topic::Message::Gossip(_)), "{msg:?}");
        let rng = ChaCha12Rng::from_seed([1; 32]);
        let mut state = topic::State::with_rng(Pi([1; 32]), None, Config::default(), rng);
        let outs: Vec<OutEvent<Pi>> = state
            .handle(InEvent::RecvMessage(Pi([2; 32]), msg), instant(0).into())
            .collect();
        let delivered = outs.iter().find_map(|o| match o {
            OutEvent::EmitEvent(Event::Received(ev)) => Some(ev.clone()),
            _ => None,
        });
        let ev = delivered.expect("delivered to the application");
        assert_eq!(ev.content.to_vec(), content);
        assert_eq!(ev.delivered_from, Pi([2; 32]));
        assert!(ev.scope.is_direct());
    }

    /// Every forgery is an entry of the document that fails verification.
    #[test]
    fn forgeries_do_not_verify() {
        let mut rng = ChaCha12Rng::from_seed([2; 32]);
        let ns = NamespaceSecret::new(&mut rng);
        let author = Author::new(&mut rng);
        let keys = Keys {
            author: Author::new(&mut rng),
            secret: NamespaceSecret::new(&mut rng),
        };
        let seen: Vec<SignedEntry> = [b"a".as_slice(), b"a/b", b"b"]
            .iter()
            .enumerate()
            .map(|(i, k)| {
                SignedEntry::new(&ns, &author, k, Record::new(Hash::new(k), 1, 10 + i as u64))
            })
            .collect();
        for kind in [
            Forgery::NewerContent,
            Forgery::Tombstone,
            Forgery::WrongNamespaceKey,
        ] {
            for _ in 0..20 {
                let e = forged_entry(&mut rng, kind, ns.id(), &seen, &keys, 1_000);
                assert_eq!(e.namespace(), ns.id());
                assert!(e.verify().is_err(), "{kind:?} verifies: {e:?}");
            }
        }
    }
}
