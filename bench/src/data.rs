//! Generated documents, written straight into each implementation's store file.
//!
//! Workloads that start from a large document (W2's 1,000,000 entries, W4/W5's 100,000 on
//! both peers) do not build it through the API: that would time the setup, not the workload,
//! and take far longer than the workload itself. Instead the entries are signed once (on all
//! cores) and written into a `docs.redb` — with Sheaf's `RedbBackend` for Sheaf and iroh-docs'
//! own `Store` (which verifies every entry) for iroh-docs — that a node then opens with
//! `Docs::persistent(dir)`. Both implementations thus hold the very same signed entries. For
//! the sync workloads the node's blob store holds all their content too: a replica without
//! its content is not the common case, and Sheaf looks for missing content when a document
//! starts syncing. A store is built once per run and copied for each node and repetition.
//! Sheaf's store also gets its documents' summaries (entry count and fingerprint), which a
//! node's store holds after its flushes.

use std::{
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result};
use bytes::Bytes;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha12Rng;
use sheaf_core::{
    entry::RecordIdentifier,
    ranger::Range,
    store::{Backend, Indexed, RedbBackend},
    wire::Encode,
    Author, Capability, Hash, NamespaceSecret, Record, SignedEntry,
};

use crate::nodes::Impl;

/// How keys are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// Every entry has its own key.
    Unique,
    /// Two authors write each key (for latest-per-key queries).
    Pairs,
}

/// A generated document: its secret, entries and their 32-byte values.
pub struct Dataset {
    /// The namespace secret.
    pub secret: NamespaceSecret,
    /// Signed entries.
    pub entries: Vec<SignedEntry>,
    /// `values[i]` is the content of `entries[i]`.
    pub values: Vec<[u8; 32]>,
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Generates `n` entries by four authors with 32-byte random values and timestamps within
/// the last 15 minutes, signing on every core.
pub fn generate(n: usize, keys: Keys, seed: u64) -> Dataset {
    let mut rng = ChaCha12Rng::seed_from_u64(seed);
    let secret = NamespaceSecret::new(&mut rng);
    let authors: Vec<Author> = (0..4).map(|_| Author::new(&mut rng)).collect();
    let values: Vec<[u8; 32]> = (0..n).map(|_| rng.random()).collect();
    let now = now_micros();
    let times: Vec<u64> = (0..n)
        .map(|_| now - rng.random_range(60_000_000..900_000_000u64))
        .collect();
    let indices: Vec<usize> = (0..n).collect();
    let entries = par_map(&indices, |&i| {
        let (author, key) = match keys {
            Keys::Unique => (&authors[i % 4], format!("doc/{i:08}")),
            Keys::Pairs => (&authors[i % 4], format!("doc/{:08}", i / 2)),
        };
        let record = Record::new(Hash::new(values[i]), 32, times[i]);
        SignedEntry::new(&secret, author, key.as_bytes(), record)
    });
    Dataset {
        secret,
        entries,
        values,
    }
}

/// `f` over `items` on every core (signing is the slow part of generating data), in order.
pub fn par_map<T: Sync, U: Send>(items: &[T], f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(f).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker thread"))
            .collect()
    })
}

impl Dataset {
    /// The namespace id.
    pub fn id(&self) -> [u8; 32] {
        self.secret.id().to_bytes()
    }

    /// The namespace secret.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }

    /// The content of entry `i`.
    pub fn value(&self, i: usize) -> Bytes {
        Bytes::copy_from_slice(&self.values[i])
    }

    /// Sum of the encoded sizes of the entries (the wire encoding both implementations share):
    /// the least a sync that transfers all of them can send.
    pub fn encoded_size(&self) -> u64 {
        self.entries.iter().map(|e| e.to_wire().len() as u64).sum()
    }

    /// Writes the document into `dir/docs.redb` in `imp`'s store format.
    pub async fn write_store(&self, imp: Impl, dir: &Path) -> Result<()> {
        write_stores(&[self], imp, dir).await
    }
}

/// Writes the documents into one `dir/docs.redb` in `imp`'s store format, opening it once.
pub async fn write_stores(docs: &[&Dataset], imp: Impl, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("docs.redb");
    match imp {
        Impl::Sheaf => {
            let mut store = RedbBackend::persistent(&path)?;
            for doc in docs {
                store.put_namespace(Capability::Write(doc.secret.clone()))?;
                for e in &doc.entries {
                    store.put(e.clone())?;
                }
            }
            store.flush()?;
            // With their summaries, as a node's store has after its flushes.
            let mut store = Indexed::with_budget(store, 0);
            for doc in docs {
                let ns = doc.secret.id();
                let first = store.first_id(ns)?.unwrap_or_else(RecordIdentifier::zero);
                store.range_fingerprint(ns, &Range::new(first.clone(), first))?;
            }
            store.flush_with(true)?;
        }
        Impl::Iroh => {
            let mut store = iroh_docs::store::Store::persistent(&path)?;
            for doc in docs {
                let secret = iroh_docs::NamespaceSecret::from_bytes(&doc.secret.to_bytes());
                let mut replica = store.new_replica(secret)?;
                for e in &doc.entries {
                    let e: iroh_docs::SignedEntry =
                        postcard::from_bytes(&e.to_wire()).context("entry")?;
                    replica
                        .insert_remote_entry(e, [0; 32], iroh_docs::ContentStatus::Missing)
                        .await?;
                }
                drop(replica);
            }
            store.flush()?;
        }
    }
    Ok(())
}

/// Copies the folder `from` into `to`, recursively.
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

impl Dataset {
    /// Adds every entry's content to an iroh-blobs file store in `dir` (the version `imp`
    /// runs on).
    pub async fn write_blobs(&self, imp: Impl, dir: &Path) -> Result<()> {
        match imp {
            Impl::Sheaf => {
                let store = iroh_blobs::store::fs::FsStore::load(dir).await?;
                for v in &self.values {
                    store.add_slice(v).await?;
                }
                store.shutdown().await?;
            }
            Impl::Iroh => {
                let store = iroh_blobs_0103::store::fs::FsStore::load(dir).await?;
                for v in &self.values {
                    store.add_slice(v).await?;
                }
                store.shutdown().await?;
            }
        }
        Ok(())
    }
}

/// Store files built once per run: one per (implementation, dataset name).
pub struct Stores {
    root: tempfile::TempDir,
}

impl Stores {
    /// An empty set of stores in a temporary folder.
    pub fn new() -> Result<Self> {
        Ok(Self {
            root: tempfile::tempdir()?,
        })
    }

    /// A fresh folder for a node, holding a copy of the store `name` of `imp` (documents,
    /// and blobs if it has them) if given.
    pub fn node_dir(&self, imp: Impl, base: Option<&str>, node: &str) -> Result<PathBuf> {
        let dir = self.root.path().join(format!("node-{node}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        if let Some(name) = base {
            let src = self.base_dir(imp, name);
            copy_dir(&src, &dir).with_context(|| format!("{src:?}"))?;
        }
        Ok(dir)
    }

    /// The folder of the store `name` of `imp`, and whether it is built yet.
    pub fn base_dir(&self, imp: Impl, name: &str) -> PathBuf {
        self.root.path().join(format!("base-{}-{name}", imp.name()))
    }

    /// Builds the store `name` of `imp` from `data` unless it exists; with `blobs`, its blob
    /// store (`blobs/`) holds every entry's content, as a real replica's would.
    pub async fn ensure(&self, imp: Impl, name: &str, data: &Dataset, blobs: bool) -> Result<()> {
        let dir = self.base_dir(imp, name);
        if !dir.join("docs.redb").exists() {
            data.write_store(imp, &dir).await?;
            if blobs {
                data.write_blobs(imp, &dir.join("blobs")).await?;
            }
        }
        Ok(())
    }

    /// Removes a node folder.
    pub fn remove(&self, dir: &Path) {
        let _ = std::fs::remove_dir_all(dir);
    }
}
