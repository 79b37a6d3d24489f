//! Local workloads, one node, no peers.
//!
//! - **W1** local insert: a fresh node (memory, or documents and blobs on disk), a new
//!   document, then `N` sequential `set_bytes` calls with distinct keys and 32-byte values,
//!   each awaited. `ms` is the wall time of the loop; the node's start-up is not timed.
//! - **W1M** many local inserts at once: as W1, but the application hands all `N` pairs over
//!   at once. Sheaf takes them with `Doc::set_many` (batches of 1,024: values imported
//!   concurrently, entries signed and written by one store command per batch); iroh-docs has
//!   no batch API, so its row runs the same pairs as `set_bytes` calls, 1,024 in flight at a
//!   time (the best an application can do with it).
//! - **W2** latest per key: a document of `N` entries (two authors per key) is written into
//!   the store file before the node starts (see [`crate::data`]); the node opens it, and `ms`
//!   is the time of one `get_many(single_latest_per_key)` collected to the end. The first
//!   query after opening is timed, so caches are as cold as the store leaves them.

use std::time::Instant;

use anyhow::Result;
use bytes::Bytes;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha12Rng;

use crate::{
    data::{Keys, Stores},
    nodes::{Impl, Node},
    report::Record,
    Out,
};

/// W1 (or with `many` W1M) for each `n` in `ns`, memory and persistent, both
/// implementations.
pub async fn w1(
    out: &mut Out,
    ns: &[usize],
    reps: usize,
    stores: &Stores,
    many: bool,
) -> Result<()> {
    let workload = if many { "W1M" } else { "W1" };
    for &n in ns {
        for persistent in [false, true] {
            for rep in 0..reps {
                for imp in Impl::selected() {
                    let mut rec = Record::new(imp.name(), workload, rep)
                        .param("n", n)
                        .param("store", if persistent { "persistent" } else { "memory" });
                    let dir = if persistent {
                        Some(stores.node_dir(imp, None, &workload.to_lowercase())?)
                    } else {
                        None
                    };
                    let node = Node::spawn(imp, dir.as_deref()).await?;
                    let doc = node.create_doc().await?;
                    let mut rng = ChaCha12Rng::seed_from_u64(rep as u64);
                    let values: Vec<Bytes> = (0..n)
                        .map(|_| Bytes::copy_from_slice(&rng.random::<[u8; 32]>()))
                        .collect();
                    let pairs = values
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (Bytes::from(format!("doc/{i:08}")), v));
                    let start = Instant::now();
                    if many {
                        doc.set_many(pairs.collect()).await?;
                    } else {
                        for (k, v) in pairs {
                            doc.set(k, v).await?;
                        }
                    }
                    let ms = start.elapsed().as_secs_f64() * 1000.0;
                    rec.set("ms", ms);
                    rec.set("inserts_per_s", n as f64 / (ms / 1000.0));
                    node.shutdown().await;
                    if let Some(dir) = dir {
                        stores.remove(&dir);
                    }
                    out.push(rec);
                }
            }
        }
    }
    Ok(())
}

/// W2 for each `n` in `ns`, both implementations.
pub async fn w2(out: &mut Out, ns: &[usize], reps: usize, stores: &Stores) -> Result<()> {
    for &n in ns {
        let name = format!("w2-{n}");
        crate::progress(&format!("W2: generating {n} entries"));
        let data = crate::data::generate(n, Keys::Pairs, 2);
        for imp in Impl::selected() {
            crate::progress(&format!("W2: writing the {} store", imp.name()));
            stores.ensure(imp, &name, &data, false).await?;
        }
        let id = data.id();
        drop(data);
        for rep in 0..reps {
            for imp in Impl::selected() {
                let mut rec = Record::new(imp.name(), "W2", rep).param("n", n);
                let dir = stores.node_dir(imp, Some(&name), "w2")?;
                let node = Node::spawn(imp, Some(&dir)).await?;
                let doc = node.open_doc(id).await?;
                let start = Instant::now();
                let count = doc.count(true).await?;
                rec.set("ms", start.elapsed().as_secs_f64() * 1000.0);
                rec.set("results", count as f64);
                node.shutdown().await;
                stores.remove(&dir);
                out.push(rec);
            }
        }
    }
    Ok(())
}
