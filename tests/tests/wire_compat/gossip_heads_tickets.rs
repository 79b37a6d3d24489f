//! Gossip ops, author heads, capabilities and tickets, byte for byte against iroh-docs.
//! (Split from `main.rs` to keep files short; the mirrors and helpers live there.)

use super::*;

#[test]
fn random_gossip_ops_are_byte_identical() {
    let mut g = Gen::new(5);
    for case in 0..CASES {
        let op = match case % 3 {
            0 => Op::Put(g.entry()),
            1 => Op::ContentReady(Hash::from_bytes(g.rng.random())),
            _ => {
                let heads: AuthorHeads = (0..g.rng.random_range(0..5usize))
                    .map(|_| (g.pick().1.id(), g.rng.random::<u64>()))
                    .collect();
                Op::SyncReport(SyncReport {
                    namespace: g.pick().0.id(),
                    heads: heads.encode(Some(4096)),
                })
            }
        };
        let ours = op.to_wire();
        let theirs: IrohOp = postcard::from_bytes(&ours).unwrap();
        let back = postcard::to_stdvec(&theirs).unwrap();
        assert_eq!(back, ours, "case {case}");
        assert_eq!(Op::from_wire(&back).unwrap(), op, "case {case}");
    }
    // The golden ContentReady op.
    let ready = IrohOp::ContentReady(IrohHash::new(b"va"));
    assert_eq!(
        hex::encode(postcard::to_stdvec(&ready).unwrap()),
        hex::encode(Op::ContentReady(Hash::new(b"va")).to_wire())
    );
}

fn iroh_heads(heads: &AuthorHeads) -> iroh_docs::AuthorHeads {
    heads
        .iter()
        .map(|(a, t)| (iroh_docs::AuthorId::from(a.as_bytes()), *t))
        .collect()
}

#[test]
fn random_author_heads_are_byte_identical() {
    let mut g = Gen::new(6);
    for case in 0..CASES {
        // Distinct timestamps: iroh-docs collapses equal ones (see the next test).
        let mut used = BTreeSet::new();
        let heads: AuthorHeads = (0..g.rng.random_range(0..40usize))
            .map(|_| {
                let author: [u8; 32] = g.rng.random();
                let bits = g.rng.random_range(1..64u32);
                let mut ts = g.rng.random_range(0..1u64 << bits);
                while !used.insert(ts) {
                    ts = ts.wrapping_add(1);
                }
                (author.into(), ts)
            })
            .collect();
        let limit = if case % 4 == 0 {
            None
        } else {
            Some(g.rng.random_range(1..2000usize))
        };
        let ours = heads.encode(limit);
        let theirs = iroh_heads(&heads).encode(limit).unwrap();
        assert_eq!(ours, theirs, "case {case} limit {limit:?}");
        let decoded = iroh_docs::AuthorHeads::decode(&ours).unwrap();
        assert_eq!(decoded.len(), AuthorHeads::decode(&theirs).unwrap().len());
        for (author, ts) in AuthorHeads::decode(&theirs).unwrap().iter() {
            assert_eq!(
                decoded.get(&iroh_docs::AuthorId::from(author.as_bytes())),
                Some(*ts)
            );
        }
    }
    // The golden heads vector.
    let golden: AuthorHeads = [([1u8; 32].into(), 5), ([2u8; 32].into(), 300)]
        .into_iter()
        .collect();
    assert_eq!(
        golden.encode(Some(4096)),
        iroh_heads(&golden).encode(Some(4096)).unwrap()
    );
}

#[test]
fn equal_timestamps_keep_both_authors_where_iroh_docs_drops_one() {
    let heads: AuthorHeads = [([1u8; 32].into(), 7), ([2u8; 32].into(), 7)]
        .into_iter()
        .collect();
    let iroh = iroh_docs::AuthorHeads::decode(&iroh_heads(&heads).encode(None).unwrap()).unwrap();
    assert_eq!(iroh.len(), 1, "iroh-docs' known quirk: one author is lost");
    // iroh-docs decodes Sheaf's encoding with both authors intact.
    let from_sheaf = iroh_docs::AuthorHeads::decode(&heads.encode(None)).unwrap();
    assert_eq!(from_sheaf.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Capabilities and tickets

fn iroh_capability(cap: &Capability) -> iroh_docs::Capability {
    postcard::from_bytes(&cap.to_wire()).unwrap()
}

#[test]
fn random_capabilities_are_byte_identical() {
    let mut g = Gen::new(7);
    for case in 0..CASES {
        let secret = NamespaceSecret::from_bytes(&g.rng.random());
        let cap = if case % 2 == 0 {
            Capability::Write(secret.clone())
        } else {
            Capability::Read(secret.id())
        };
        let iroh = match &cap {
            Capability::Write(s) => {
                iroh_docs::Capability::Write(iroh_docs::NamespaceSecret::from_bytes(&s.to_bytes()))
            }
            Capability::Read(id) => iroh_docs::Capability::Read(id.to_bytes().into()),
        };
        assert_eq!(
            postcard::to_stdvec(&iroh).unwrap(),
            cap.to_wire(),
            "case {case}"
        );
        assert_eq!(iroh_capability(&cap).id().as_bytes(), cap.id().as_bytes());
        let raw = iroh.raw();
        assert_eq!(raw, cap.raw(), "case {case}");
    }
}

#[test]
fn random_tickets_are_identical_and_parse_both_ways() {
    let mut g = Gen::new(8);
    for case in 0..CASES {
        let secret = NamespaceSecret::from_bytes(&g.rng.random());
        let cap = if case % 2 == 0 {
            Capability::Write(secret)
        } else {
            Capability::Read(secret.id())
        };
        let (ours, theirs): (Vec<_>, Vec<_>) = (0..g.rng.random_range(1..4usize))
            .map(|_| crate::random_node::random_node(&mut g.rng))
            .unzip();
        let sheaf = DocTicket::new(cap.clone(), ours);
        let iroh = iroh_docs::DocTicket::new(iroh_capability(&cap), theirs);
        let s = sheaf.to_string();
        assert_eq!(s, iroh.to_string(), "case {case}");
        let parsed_by_iroh = iroh_docs::DocTicket::from_str(&s).unwrap();
        assert_eq!(parsed_by_iroh.to_string(), s);
        assert_eq!(s.parse::<DocTicket>().unwrap(), sheaf, "case {case}");
    }
}

#[test]
fn golden_tickets_parse_in_both() {
    let write = "docaaacbmvswkzlfmvswkzlfmvswkzlfmvswkzlfmvswkzlfmvswkzlfmvsahievmrsoqv3jkz2cnul2rqv4ttnaiskw4nac25pquqkgmwjo6dtoaqadnuhi5dqom5c6l3smvwgc6jomv4gc3lqnrss433sm4xc6aiap4aaaaosbe";
    let read = "docaaavkfkpiidf5jnbx2qfiy4cnprgqtvzfx4syeaae6vlvlsxzjkuebyb2bflemtufo2kwoqtnc6umfpe43icesvxdiawxl4fecrtfslxq43qa";
    for t in [write, read] {
        let ours: DocTicket = t.parse().unwrap();
        let theirs = iroh_docs::DocTicket::from_str(t).unwrap();
        assert_eq!(ours.to_string(), t);
        assert_eq!(theirs.to_string(), t);
    }
    // Both refuse a ticket without nodes.
    let empty = DocTicket::new(
        Capability::Read(NamespaceSecret::from_bytes(&[0xb2; 32]).id()),
        vec![],
    );
    assert!(iroh_docs::DocTicket::from_str(&empty.to_string()).is_err());
    assert!(empty.to_string().parse::<DocTicket>().is_err());
}
