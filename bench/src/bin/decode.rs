//! Decoding signed entries: Sheaf's hand-written wire codec against postcard through serde.
//!
//! Both read the same bytes (iroh-docs' postcard encoding of a `SignedEntry`). The sync
//! protocol decodes every entry a peer sends, so this is the choice the `wire` module docs
//! make. `cargo run --release -p sheaf-bench --bin decode [-- N]` prints the median over
//! seven rounds of N entries (default 100,000) for each decoder, and checks that both give
//! the same values.

use std::time::Instant;

use sheaf_core::{
    entry::{Entry, Record, RecordIdentifier},
    wire::{Decode, Encode},
    Author, Hash, NamespaceSecret, SignedEntry,
};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let secret = NamespaceSecret::from_bytes(&[3; 32]);
    let author = Author::from_bytes(&[4; 32]);
    let template = SignedEntry::new(&secret, &author, b"t", Record::new(Hash::new(b"t"), 1, 1));
    let encoded: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let key = format!("documents/{i:08}/title");
            let record = Record::new(
                Hash::new(key.as_bytes()),
                100 + i as u64,
                1_700_000_000_000_000,
            );
            let entry = Entry::new(RecordIdentifier::new(secret.id(), author.id(), key), record);
            SignedEntry::from_parts(*template.signature(), entry).to_wire()
        })
        .collect();
    let same = encoded.iter().all(|b| {
        let ours = SignedEntry::from_wire(b).expect("hand-written decode");
        let theirs: SignedEntry = postcard::from_bytes(b).expect("postcard decode");
        ours == theirs
    });
    assert!(same, "the decoders disagree");
    let time = |f: &dyn Fn(&[u8]) -> SignedEntry| {
        let mut rounds: Vec<f64> = (0..7)
            .map(|_| {
                let start = Instant::now();
                for b in &encoded {
                    std::hint::black_box(f(b));
                }
                start.elapsed().as_nanos() as f64 / n as f64
            })
            .collect();
        rounds.sort_by(|a, b| a.total_cmp(b));
        (rounds[3], rounds[0], rounds[6])
    };
    let hand = time(&|b| SignedEntry::from_wire(b).expect("decode"));
    let serde = time(&|b| postcard::from_bytes(b).expect("decode"));
    println!(
        "entries {n}, {} bytes each (median, min, max of 7 rounds, ns per entry)",
        encoded[0].len()
    );
    println!("hand-written {:.0} ({:.0}..{:.0})", hand.0, hand.1, hand.2);
    println!(
        "postcard/serde {:.0} ({:.0}..{:.0})",
        serde.0, serde.1, serde.2
    );
}
