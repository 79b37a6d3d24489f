//! Helper process for the `durability` test at the level of a node: a persistent Sheaf node
//! writes 100 entries, calls `Doc::flush` and reports on stdout, writes 100 more without
//! flushing, reports again and waits to be killed.

use std::io::{BufRead, Write};

use iroh::{endpoint::presets, Endpoint};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: docs_durability_child DIR");
    let endpoint = Endpoint::builder(presets::Minimal)
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")?
        .bind()
        .await?;
    let blobs = iroh_blobs::store::mem::MemStore::new();
    let gossip = iroh_gossip::net::Gossip::builder().spawn(endpoint.clone());
    let docs = sheaf_tokio::Docs::persistent(&dir)
        .spawn(endpoint, (*blobs).clone(), gossip)
        .await?;
    let doc = docs.create().await?;
    let author = docs.author_default();
    let mut out = std::io::stdout();
    writeln!(out, "doc {}", doc.id())?;
    for i in 0..100 {
        doc.set_bytes(author, format!("key/{i:05}"), "v").await?;
    }
    doc.flush().await?;
    writeln!(out, "flushed 100")?;
    for i in 100..200 {
        doc.set_bytes(author, format!("key/{i:05}"), "v").await?;
    }
    writeln!(out, "unflushed 200")?;
    out.flush()?;
    // Wait to be killed (or for stdin to close).
    let _ = std::io::stdin().lock().lines().next();
    std::process::abort();
}
