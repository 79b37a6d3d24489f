//! In-process reconciliation between a Sheaf `Replicas` and an iroh-docs 0.101 `Replica`.
//!
//! Messages cross as bytes: Sheaf encodes its reply, iroh-docs decodes it with postcard, and
//! back. Either side initiates; random sets of up to 10,000 entries (several authors, prefix
//! keys, equal keys with different values on the two sides) must end identical on both sides.
//! Tombstones are left out of the random sets on purpose: iroh-docs ignores them as prefix
//! parents (see `tombstone_divergence_is_iroh_docs_side`), which Sheaf deliberately does not.

use iroh_docs::{store::Query as IrohQuery, sync::ProtocolMessage, ContentStatus as IrohStatus};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha12Rng;
use sheaf_core::{
    replica::{OpenOpts, ReplicaConfig, Replicas, SyncOutcome},
    store::{query::query_all, Backend, MemBackend, Query, RedbBackend},
    wire::{Decode, Encode},
    Author, Capability, ContentStatus, Hash, Mono, NamespaceSecret, Now, PeerId, Record,
    SignedEntry,
};

const T0: u64 = 1_700_000_000_000_000;

fn now() -> Now {
    Now::new(Mono(0), T0 + 3_600_000_000)
}

struct Iroh {
    store: iroh_docs::store::Store,
    ns: iroh_docs::NamespaceId,
}

impl Iroh {
    fn new(secret: &NamespaceSecret) -> Self {
        let mut store = iroh_docs::store::Store::memory();
        let s = iroh_docs::NamespaceSecret::from_bytes(&secret.to_bytes());
        let ns = s.id();
        store.new_replica(s).unwrap();
        Self { store, ns }
    }

    fn insert(&mut self, rt: &tokio::runtime::Runtime, e: &SignedEntry) {
        let entry: iroh_docs::SignedEntry = postcard::from_bytes(&e.to_wire()).unwrap();
        let mut r = self.store.open_replica(&self.ns).unwrap();
        let _ = rt.block_on(r.insert_remote_entry(entry, [9; 32], IrohStatus::Missing));
    }

    fn entries(&mut self) -> Vec<SignedEntry> {
        let mut v: Vec<SignedEntry> = self
            .store
            .get_many(self.ns, IrohQuery::all().include_empty())
            .unwrap()
            .map(|e| SignedEntry::from_wire(&postcard::to_stdvec(&e.unwrap()).unwrap()).unwrap())
            .collect();
        v.sort();
        v
    }

    fn initial(&mut self) -> Vec<u8> {
        let m = self
            .store
            .open_replica(&self.ns)
            .unwrap()
            .sync_initial_message()
            .unwrap();
        postcard::to_stdvec(&m).unwrap()
    }

    fn process(&mut self, rt: &tokio::runtime::Runtime, bytes: &[u8]) -> Option<Vec<u8>> {
        let msg: ProtocolMessage = postcard::from_bytes(bytes).unwrap();
        let mut r = self.store.open_replica(&self.ns).unwrap();
        let mut outcome = iroh_docs::SyncOutcome::default();
        let reply = rt
            .block_on(r.sync_process_message(msg, [1; 32], &mut outcome))
            .unwrap();
        reply.map(|m| postcard::to_stdvec(&m).unwrap())
    }
}

fn sheaf<B: Backend>(backend: B, secret: &NamespaceSecret) -> Replicas<B> {
    let mut r = Replicas::new(backend, ReplicaConfig::default());
    r.import_namespace(now(), Capability::Write(secret.clone()))
        .unwrap();
    r.open(
        secret.id(),
        OpenOpts {
            sync: true,
            subscribe: false,
        },
    )
    .unwrap();
    r
}

fn sheaf_entries<B: Backend>(r: &mut Replicas<B>, secret: &NamespaceSecret) -> Vec<SignedEntry> {
    let mut v = query_all(r.indexed_mut(), secret.id(), &Query::all().include_empty()).unwrap();
    v.sort();
    v
}

/// Runs one sync; returns the number of messages exchanged.
fn run<B: Backend>(
    rt: &tokio::runtime::Runtime,
    sheaf: &mut Replicas<B>,
    iroh: &mut Iroh,
    secret: &NamespaceSecret,
    sheaf_starts: bool,
) -> usize {
    let ns = secret.id();
    let mut outcome = SyncOutcome::default();
    let mut to_iroh: Option<Vec<u8>>;
    let mut to_sheaf: Option<Vec<u8>> = None;
    if sheaf_starts {
        to_iroh = Some(sheaf.sync_initial_message(ns).unwrap().to_wire());
    } else {
        to_iroh = None;
        to_sheaf = Some(iroh.initial());
    }
    let mut messages = 1;
    loop {
        assert!(messages < 200, "no convergence after {messages} messages");
        if let Some(bytes) = to_iroh.take() {
            to_sheaf = iroh.process(rt, &bytes);
        } else if let Some(bytes) = to_sheaf.take() {
            let msg = sheaf_core::ranger::Message::from_wire(&bytes).unwrap();
            let reply = sheaf
                .sync_process_message(now(), ns, msg, PeerId::from_bytes([2; 32]), &mut outcome)
                .unwrap();
            to_iroh = reply.map(|m| m.to_wire());
        } else {
            return messages;
        }
        messages += 1;
    }
}

struct Gen {
    rng: ChaCha12Rng,
    authors: Vec<Author>,
}

impl Gen {
    fn entry(&mut self, secret: &NamespaceSecret) -> SignedEntry {
        let author = self.authors[self.rng.random_range(0..self.authors.len())].clone();
        let depth = self.rng.random_range(1..4usize);
        let key: Vec<u8> = (0..depth)
            .flat_map(|_| format!("{}/", self.rng.random_range(0..30u32)).into_bytes())
            .collect();
        let value: u32 = self.rng.random();
        let record = Record::new(
            Hash::new(value.to_be_bytes()),
            4,
            T0 + self.rng.random_range(0..1_000_000u64),
        );
        SignedEntry::new(secret, &author, &key, record)
    }
}

fn case<B: Backend>(backend: B, seed: u64, size: usize, shared: f64, sheaf_starts: bool) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut rng = ChaCha12Rng::seed_from_u64(seed);
    let secret = NamespaceSecret::new(&mut rng);
    let authors = (0..4).map(|_| Author::new(&mut rng)).collect();
    let mut g = Gen { rng, authors };
    let mut s = sheaf(backend, &secret);
    let mut i = Iroh::new(&secret);
    for _ in 0..size {
        let e = g.entry(&secret);
        let roll: f64 = g.rng.random();
        if roll < shared {
            s.insert_remote(
                now(),
                secret.id(),
                e.clone(),
                PeerId::from_bytes([9; 32]),
                ContentStatus::Missing,
            )
            .ok();
            i.insert(&rt, &e);
        } else if roll < shared + (1.0 - shared) / 2.0 {
            s.insert_remote(
                now(),
                secret.id(),
                e,
                PeerId::from_bytes([9; 32]),
                ContentStatus::Missing,
            )
            .ok();
        } else {
            i.insert(&rt, &e);
        }
    }
    let messages = run(&rt, &mut s, &mut i, &secret, sheaf_starts);
    let ours = sheaf_entries(&mut s, &secret);
    let theirs = i.entries();
    assert_eq!(ours.len(), theirs.len(), "seed {seed} size {size}");
    assert_eq!(ours, theirs, "seed {seed} size {size}");
    messages
}

#[test]
fn small_random_sets_converge_either_side_first() {
    for seed in 0..40u64 {
        let size = (seed as usize * 7) % 60;
        case(MemBackend::new(), seed, size, 0.3, seed % 2 == 0);
    }
}

#[test]
fn large_random_sets_converge_either_side_first() {
    for (seed, size, shared) in [
        (100u64, 1_000usize, 0.9),
        (101, 10_000, 0.99),
        (102, 10_000, 0.5),
    ] {
        case(RedbBackend::memory().unwrap(), seed, size, shared, true);
        case(MemBackend::new(), seed + 10, size, shared, false);
    }
}

#[test]
fn empty_sides() {
    case(MemBackend::new(), 7, 0, 0.0, true);
    case(MemBackend::new(), 8, 0, 0.0, false);
    // Everything on one side.
    case(MemBackend::new(), 9, 50, 0.0, true);
}

/// Sheaf keeps iroh-docs' wire rules, but not its tombstone bug. A Sheaf node holding an
/// older `foo/x` syncs with an iroh-docs node holding a tombstone at `foo`: Sheaf applies the
/// tombstone and drops `foo/x`, and sends `foo/x` along as the diff rule requires; iroh-docs,
/// which skips tombstones when looking for newer prefix entries, accepts `foo/x` again under
/// its own tombstone. The resulting divergence is on the iroh-docs side; Sheaf's set is the
/// correct prefix-aware one.
#[test]
fn tombstone_divergence_is_iroh_docs_side() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let secret = NamespaceSecret::from_bytes(&[5; 32]);
    let author = Author::from_bytes(&[6; 32]);
    let older = SignedEntry::new(
        &secret,
        &author,
        b"foo/x",
        Record::new(Hash::new(b"x"), 1, T0),
    );
    let tomb = SignedEntry::new(&secret, &author, b"foo", Record::empty(T0 + 1));
    let mut s = sheaf(MemBackend::new(), &secret);
    s.insert_remote(
        now(),
        secret.id(),
        older.clone(),
        PeerId::from_bytes([9; 32]),
        ContentStatus::Missing,
    )
    .unwrap();
    let mut i = Iroh::new(&secret);
    i.insert(&rt, &tomb);
    run(&rt, &mut s, &mut i, &secret, true);
    assert_eq!(sheaf_entries(&mut s, &secret), vec![tomb.clone()]);
    let mut resurrected = vec![tomb, older];
    resurrected.sort();
    assert_eq!(
        i.entries(),
        resurrected,
        "iroh-docs resurrects foo/x under its tombstone"
    );
}
