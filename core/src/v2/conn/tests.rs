//! Whole v2 connections between two nodes' stores: phase 1, document streams, dictionaries,
//! parked streams, under random interleavings of the streams and in flights (round trips).

use std::collections::{BTreeMap, VecDeque};

use super::*;
use crate::{
    entry::{EntryLimits, Record, SignedEntry},
    hash::Hash,
    keys::{Author, NamespaceSecret},
    store::{put_prefix_aware, Indexed, MemBackend},
    testutil::{now, peer, T0},
    v2::{
        doc::{DocSession, DocStore, IndexedDoc, KeyRange},
        frame::{encode_frame, FrameDecoder},
    },
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stream {
    Control,
    Doc(NamespaceTag),
}

/// One node: its store, the namespaces it offers, its document sessions.
struct Node {
    store: Indexed<MemBackend>,
    namespaces: Vec<NamespaceId>,
    docs: BTreeMap<NamespaceTag, (NamespaceId, DocSession)>,
    done_docs: u64,
}

impl Node {
    fn new(entries: &[SignedEntry], namespaces: &[NamespaceId]) -> Self {
        let mut store = Indexed::new(MemBackend::new());
        for e in entries {
            put_prefix_aware(&mut store, e.clone()).unwrap();
        }
        Self {
            store,
            namespaces: namespaces.to_vec(),
            docs: BTreeMap::new(),
            done_docs: 0,
        }
    }

    fn doc(&mut self, ns: NamespaceId) -> IndexedDoc<'_, MemBackend> {
        IndexedDoc::new(
            &mut self.store,
            ns,
            EntryLimits::default(),
            now(T0 + 1_000_000),
        )
    }

    fn offers(&mut self) -> Vec<Offer> {
        let namespaces = self.namespaces.clone();
        namespaces
            .into_iter()
            .map(|ns| Offer {
                namespace: ns,
                fingerprint: self.doc(ns).fingerprint(&KeyRange::all()).unwrap(),
            })
            .collect()
    }

    fn entries(&mut self, ns: NamespaceId) -> Vec<SignedEntry> {
        self.doc(ns)
            .entries(&KeyRange::all(), 0, usize::MAX)
            .unwrap()
    }
}

/// Messages in flight: per direction (true = towards the acceptor) and stream, in order.
#[derive(Default)]
struct Net {
    queues: BTreeMap<(bool, Stream), VecDeque<Message>>,
    bytes: usize,
}

impl Net {
    fn send(&mut self, to_acceptor: bool, stream: Stream, msgs: Vec<Message>) {
        for m in msgs {
            // Through a real frame, as on the wire.
            let mut buf = Vec::new();
            encode_frame(&m, &mut buf).expect("fits a frame");
            self.bytes += buf.len();
            let mut d = FrameDecoder::new();
            d.feed(&buf).unwrap();
            let m = d.next_message().unwrap().unwrap();
            self.queues
                .entry((to_acceptor, stream))
                .or_default()
                .push_back(m);
        }
    }
}

struct Pair {
    dialer: Dialer,
    acceptor: Acceptor,
    d: Node,
    a: Node,
    net: Net,
    config: ConnConfig,
    /// Deliveries a parked stream had to wait out (random runs).
    parked: u64,
}

impl Pair {
    fn new(mut d: Node, mut a: Node, config: ConnConfig) -> Self {
        let mut net = Net::default();
        let (dialer, hello) = Dialer::new(config, [3; 32], peer(1), peer(2), &d.offers()).unwrap();
        net.send(true, Stream::Control, hello);
        let acceptor = Acceptor::new(config, peer(2), peer(1), a.offers());
        Self {
            dialer,
            acceptor,
            d,
            a,
            net,
            config,
            parked: 0,
        }
    }

    fn done(&self) -> bool {
        self.dialer.is_round_done()
            && self.acceptor.is_round_done()
            && self.net.queues.values().all(|q| q.is_empty())
    }

    /// Whether the head of a queue can be delivered (not parked on a definition).
    fn ready(&self, key: &(bool, Stream)) -> bool {
        let Some(m) = self.net.queues.get(key).and_then(|q| q.front()) else {
            return false;
        };
        match key {
            (_, Stream::Control) => true,
            (true, Stream::Doc(_)) => !self.acceptor.dict.is_missing_for(m),
            (false, Stream::Doc(_)) => !self.dialer.dict.is_missing_for(m),
        }
    }

    fn deliver(&mut self, key: (bool, Stream)) {
        let m = self.net.queues.get_mut(&key).unwrap().pop_front().unwrap();
        match key {
            (true, Stream::Control) => {
                let out = self.acceptor.handle(m).unwrap();
                self.net.send(false, Stream::Control, out);
                self.open_streams();
            }
            (false, Stream::Control) => {
                let out = self.dialer.handle(m).unwrap();
                self.net.send(true, Stream::Control, out);
            }
            (false, Stream::Doc(tag)) => {
                if !self.d.docs.contains_key(&tag) {
                    let ns = self.dialer.stream_opened(&tag).expect("a tag offered");
                    let s = DocSession::accept(self.config.doc, self.dialer.hasher().clone());
                    self.d.docs.insert(tag, (ns, s));
                }
                let (ns, mut s) = self.d.docs.remove(&tag).unwrap();
                let out = s
                    .handle(&mut self.d.doc(ns), &mut self.dialer.dict, m)
                    .unwrap();
                let defs = self.dialer.dict.take_definitions();
                self.net.send(true, Stream::Control, defs);
                self.net.send(true, Stream::Doc(tag), out);
                if s.is_done() {
                    self.dialer.stream_ended();
                    self.d.done_docs += 1;
                }
                self.d.docs.insert(tag, (ns, s));
            }
            (true, Stream::Doc(tag)) => {
                let (ns, mut s) = self.a.docs.remove(&tag).expect("opened here");
                let out = s
                    .handle(&mut self.a.doc(ns), &mut self.acceptor.dict, m)
                    .unwrap();
                let defs = self.acceptor.dict.take_definitions();
                self.net.send(false, Stream::Control, defs);
                self.net.send(false, Stream::Doc(tag), out);
                self.a.docs.insert(tag, (ns, s));
            }
        }
        self.close_streams();
    }

    /// A stream is closed when both its sessions are done: only then does QUIC give the
    /// acceptor credit for another, so only then is it ended on the acceptor's side.
    fn close_streams(&mut self) {
        let closed: Vec<NamespaceTag> = self
            .a
            .docs
            .iter()
            .filter(|(tag, (_, s))| {
                s.is_done() && self.d.docs.get(*tag).is_some_and(|(_, s)| s.is_done())
            })
            .map(|(tag, _)| *tag)
            .collect();
        for tag in closed {
            self.a.docs.remove(&tag);
            self.acceptor.stream_ended();
            self.a.done_docs += 1;
        }
        self.open_streams();
    }

    fn open_streams(&mut self) {
        while let Some((tag, ns)) = self.acceptor.poll_open() {
            let hasher = self.acceptor.hasher().unwrap().clone();
            let (s, out) = DocSession::open(
                self.config.doc,
                hasher,
                tag,
                &mut self.a.doc(ns),
                &mut self.acceptor.dict,
            )
            .unwrap();
            let defs = self.acceptor.dict.take_definitions();
            self.net.send(false, Stream::Control, defs);
            self.net.send(false, Stream::Doc(tag), out);
            self.a.docs.insert(tag, (ns, s));
        }
    }

    /// Delivers ready messages in an order drawn from `seed`, until the round is done.
    fn run_random(&mut self, seed: u64) {
        let mut rng = crate::testutil::XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        for _ in 0..1_000_000 {
            if self.done() {
                return;
            }
            let ready: Vec<(bool, Stream)> = self
                .net
                .queues
                .iter()
                .filter(|(_, q)| !q.is_empty())
                .map(|(k, _)| *k)
                .filter(|k| self.ready(k))
                .collect();
            self.parked += self
                .net
                .queues
                .iter()
                .filter(|(k, q)| !q.is_empty() && !ready.contains(k))
                .count() as u64;
            assert!(!ready.is_empty(), "stuck: nothing deliverable");
            self.deliver(ready[rng.below(ready.len() as u64) as usize]);
        }
        panic!("no end");
    }

    /// Delivers everything in flight one direction at a time; returns the flights.
    fn run_flights(&mut self) -> u32 {
        let mut flights = 1;
        let mut to_acceptor = true;
        while !self.done() {
            assert!(flights < 100, "no end after 100 flights");
            // Control first: it carries the definitions the document frames use.
            let keys: Vec<(bool, Stream)> = self
                .net
                .queues
                .iter()
                .filter(|(k, q)| k.0 == to_acceptor && !q.is_empty())
                .map(|(k, _)| *k)
                .collect();
            for k in keys {
                let n = self.net.queues[&k].len();
                for _ in 0..n {
                    assert!(self.ready(&k), "parked within a flight");
                    self.deliver(k);
                }
            }
            to_acceptor = !to_acceptor;
            if self
                .net
                .queues
                .iter()
                .any(|(k, q)| k.0 == to_acceptor && !q.is_empty())
            {
                flights += 1;
            }
        }
        flights
    }
}

fn ns(i: u16) -> NamespaceSecret {
    let mut b = [0u8; 32];
    b[..2].copy_from_slice(&i.to_be_bytes());
    b[2] = 1;
    NamespaceSecret::from_bytes(&b)
}

fn entry(ns: &NamespaceSecret, author: u8, key: &str, ts: u64, v: &str) -> SignedEntry {
    SignedEntry::new(
        ns,
        &Author::from_bytes(&[author; 32]),
        key.as_bytes(),
        Record::new(Hash::new(v), v.len() as u64, T0 + ts),
    )
}

/// `docs` documents of `per_doc` entries, on both nodes; `changed` of them get one new
/// entry on the dialer and one on the acceptor, each by a new author.
fn shared(docs: u16, per_doc: usize, changed: u16) -> (Node, Node, Vec<NamespaceId>) {
    let mut d = Vec::new();
    let mut a = Vec::new();
    let ids: Vec<NamespaceId> = (0..docs).map(|i| ns(i).id()).collect();
    for i in 0..docs {
        let s = ns(i);
        for k in 0..per_doc {
            let e = entry(&s, 1 + (k % 3) as u8, &format!("k{k}"), k as u64, "v");
            d.push(e.clone());
            a.push(e);
        }
        if i < changed {
            d.push(entry(&s, 50 + (i % 7) as u8, "from-d", 1, "d"));
            a.push(entry(&s, 80 + (i % 5) as u8, "from-a", 1, "a"));
        }
    }
    (Node::new(&d, &ids), Node::new(&a, &ids), ids)
}

fn assert_converged(p: &mut Pair, ids: &[NamespaceId]) {
    for ns in ids {
        assert_eq!(p.d.entries(*ns), p.a.entries(*ns), "document {ns}");
    }
}

#[test]
fn a_thousand_documents_ten_changed_in_two_round_trips() {
    let (d, a, ids) = shared(1000, 3, 10);
    let mut p = Pair::new(d, a, ConnConfig::default());
    let flights = p.run_flights();
    assert_converged(&mut p, &ids);
    assert_eq!(p.acceptor.differing(), 10);
    assert_eq!(p.dialer.differing(), Some(10));
    // Hello+symbols; Differing+DocOpen+symbols; entries+wants; entries.
    assert_eq!(flights, 4);
    assert!(p.net.bytes < 25_000, "{} bytes", p.net.bytes);
    println!(
        "1,000 documents, 10 changed: {flights} flights, {} bytes",
        p.net.bytes
    );
}

#[test]
fn documents_only_one_side_holds_are_neither_synced_nor_revealed() {
    let (mut d, mut a, ids) = shared(20, 2, 5);
    let private = ns(999);
    let e = entry(&private, 1, "secret", 1, "x");
    put_prefix_aware(&mut d.store, e).unwrap();
    d.namespaces.push(private.id());
    let other = ns(998);
    put_prefix_aware(&mut a.store, entry(&other, 2, "mine", 1, "y")).unwrap();
    a.namespaces.push(other.id());
    let mut p = Pair::new(d, a, ConnConfig::default());
    p.run_flights();
    assert_converged(&mut p, &ids);
    assert_eq!(p.acceptor.differing(), 5);
    assert!(p.a.entries(private.id()).is_empty());
    assert!(p.d.entries(other.id()).is_empty());
}

#[test]
fn many_changes_fall_back_to_the_list() {
    let (d, a, ids) = shared(300, 1, 300);
    let config = ConnConfig {
        first_symbols: 16,
        ..ConnConfig::default()
    };
    let mut p = Pair::new(d, a, config);
    p.run_flights();
    assert_converged(&mut p, &ids);
    assert_eq!(p.acceptor.differing(), 300);
}

#[test]
fn streams_interleaved_at_random_park_and_converge() {
    let mut parked = 0;
    for seed in 0..40 {
        let (d, a, ids) = shared(30, 40, 12);
        let config = ConnConfig {
            max_streams: 1 + (seed % 5) as u32,
            doc: crate::v2::doc::DocConfig {
                riblt_max_items: if seed % 2 == 0 { 0 } else { 16_384 },
                leaf: 4,
                ..Default::default()
            },
            ..ConnConfig::default()
        };
        let mut p = Pair::new(d, a, config);
        p.run_random(seed);
        assert_converged(&mut p, &ids);
        assert_eq!(p.a.done_docs, 12);
        parked += p.parked;
    }
    assert!(
        parked > 0,
        "no stream was ever parked: the test does not reach parking"
    );
}

#[test]
fn bounds_and_violations_end_the_connection() {
    let config = ConnConfig {
        max_doc_count: 2,
        ..ConnConfig::default()
    };
    let offers: Vec<Offer> = (0..3)
        .map(|i| Offer {
            namespace: ns(i).id(),
            fingerprint: Fingerprint::default(),
        })
        .collect();
    let e = Dialer::new(config, [0; 32], peer(1), peer(2), &offers).unwrap_err();
    assert_eq!(e.code(), Some(AbortCode::LimitExceeded));
    let mut a = Acceptor::new(config, peer(2), peer(1), Vec::new());
    let e = a
        .handle(Message::Hello {
            nonce: [0; 32],
            max_streams: 4,
            doc_count: 3,
        })
        .unwrap_err();
    assert_eq!(e.code(), Some(AbortCode::LimitExceeded));
    let mut a = Acceptor::new(config, peer(2), peer(1), Vec::new());
    let e = a.handle(Message::Differing { count: 1 }).unwrap_err();
    assert_eq!(e.code(), Some(AbortCode::Protocol));
    let (mut d, _) = Dialer::new(config, [0; 32], peer(1), peer(2), &offers[..1]).unwrap();
    assert_eq!(d.stream_opened(&[0; 16]), Err(AbortCode::NotFound));
    d.handle(Message::HelloAck { max_streams: 1 }).unwrap();
    let e = d.handle(Message::Differing { count: 2 }).unwrap_err();
    assert_eq!(e.code(), Some(AbortCode::Protocol));
}
