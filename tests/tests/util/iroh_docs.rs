//! An iroh-docs 0.101 node (with iroh-blobs 0.103, as that crate requires) on an endpoint of
//! the test's choosing, for the compatibility tests.

#![allow(dead_code)]

use std::collections::BTreeSet;

use anyhow::Result;
use futures_lite::StreamExt;
use iroh::{protocol::Router, Endpoint};

/// An iroh-docs node: its router (docs, blobs and gossip) and its docs API.
pub struct IrohNode {
    pub router: Router,
    pub docs: iroh_docs::protocol::Docs,
    _blobs: iroh_blobs_0103::store::mem::MemStore,
}

impl IrohNode {
    /// Spawns an iroh-docs node in memory on `endpoint`.
    pub async fn spawn_on(endpoint: Endpoint) -> Result<Self> {
        let blobs = iroh_blobs_0103::store::mem::MemStore::new();
        let gossip = iroh_gossip::net::Gossip::builder().spawn(endpoint.clone());
        let docs = iroh_docs::protocol::Docs::memory()
            .spawn(endpoint.clone(), (*blobs).clone(), gossip.clone())
            .await?;
        let router = Router::builder(endpoint)
            .accept(iroh_docs::ALPN, docs.clone())
            .accept(
                iroh_blobs_0103::ALPN,
                iroh_blobs_0103::BlobsProtocol::new(&blobs, None),
            )
            .accept(iroh_gossip::ALPN, gossip)
            .spawn();
        Ok(Self {
            router,
            docs,
            _blobs: blobs,
        })
    }

    /// The keys of the document's current entries.
    pub async fn keys(&self, doc: &iroh_docs::api::Doc) -> Result<BTreeSet<Vec<u8>>> {
        let entries: Vec<_> = doc
            .get_many(iroh_docs::store::Query::all().build())
            .await?
            .try_collect()
            .await?;
        Ok(entries.iter().map(|e| e.key().to_vec()).collect())
    }
}
