//! Helper process for the `durability` test: writes entries to a RedbBackend, flushing after each
//! of the first two batches and reporting on stdout, then writes a third batch without
//! flushing and waits to be killed.

use std::io::{BufRead, Write};

use sheaf_core::{
    replica::{OpenOpts, ReplicaConfig, Replicas},
    store::RedbBackend,
    Author, Capability, Hash, Mono, NamespaceSecret, Now,
};

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .expect("usage: durability_child PATH");
    let now = Now::new(Mono(0), 1_700_000_000_000_000);
    let secret = NamespaceSecret::from_bytes(&[1; 32]);
    let author = Author::from_bytes(&[2; 32]);
    let mut r = Replicas::new(RedbBackend::persistent(&path)?, ReplicaConfig::default());
    r.import_namespace(now, Capability::Write(secret.clone()))?;
    r.import_author(now, author.clone())?;
    r.open(secret.id(), OpenOpts::default())?;
    let mut out = std::io::stdout();
    for batch in 0..3u32 {
        for i in batch * 100..(batch + 1) * 100 {
            let key = format!("key/{i:05}");
            r.insert_local(
                now,
                secret.id(),
                author.id(),
                key.as_bytes(),
                Hash::new(key.as_bytes()),
                8,
            )?;
        }
        if batch < 2 {
            r.flush()?;
            writeln!(out, "flushed {}", (batch + 1) * 100)?;
        } else {
            writeln!(out, "unflushed {}", (batch + 1) * 100)?;
        }
        out.flush()?;
    }
    // Wait to be killed (or for stdin to close).
    let _ = std::io::stdin().lock().lines().next();
    std::process::abort();
}
