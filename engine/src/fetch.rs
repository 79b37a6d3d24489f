//! Fetching the blobs of a batch of downloads.
//!
//! `Live` starts downloads in batches ([`LiveConfig::download_batch`]); the live task hands
//! the downloads of one step that share their providers to [`Fetcher::fetch`]. iroh-blobs'
//! downloader makes one request, on its own stream, per blob, and each request costs both
//! peers a fixed amount: on the provider, iroh-blobs 0.104 reads every request into a freshly
//! zeroed 1 MiB buffer (≈18 µs per request on this project's benchmark machine, the largest
//! single item of W3's content download profile). A batch is instead fetched with one
//! `GetMany` request from its first provider over a pooled connection; whatever that did not
//! bring (the provider lacks a blob, the connection failed) goes through the downloader,
//! blob by blob, with every provider, as a single download always did. So the outcome of
//! each hash is what downloading it alone would have given.
//!
//! Bounds: a batch holds at most `LiveConfig::max_concurrent_downloads` hashes (`Live`
//! never has more in flight); the pool keeps at most [`MAX_POOLED`] connections, idle ones
//! close after the pool's idle timeout.
//!
//! [`LiveConfig::download_batch`]: sheaf_core::live::LiveConfig::download_batch

use std::{collections::BTreeMap, sync::Arc};

use iroh::{Endpoint, EndpointId};
use iroh_blobs::{
    api::{downloader::Downloader, proto::BlobStatus, Store},
    protocol::GetManyRequest,
    util::connection_pool::{ConnectionPool, Options},
};
use sheaf_core::{hash::Hash, live::DownloadOutcome};

use crate::{convert::blob_hash, metrics::Metrics};

/// Connections kept by the batch fetcher's pool (one per provider).
pub(crate) const MAX_POOLED: usize = 256;

/// Fetches batches of blobs (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct Fetcher {
    blobs: Store,
    downloader: Downloader,
    pool: ConnectionPool,
    metrics: Arc<Metrics>,
}

impl Fetcher {
    /// A fetcher that imports into `blobs` and dials with `endpoint`.
    pub(crate) fn new(blobs: Store, endpoint: &Endpoint, metrics: Arc<Metrics>) -> Self {
        let mut options = Options::default();
        options.max_connections = MAX_POOLED;
        Self {
            downloader: blobs.downloader(endpoint),
            pool: ConnectionPool::new(endpoint.clone(), iroh_blobs::ALPN, options),
            blobs,
            metrics,
        }
    }

    /// Fetches `hashes`, all offered by `providers`, and returns each hash's outcome, in the
    /// order of `hashes`.
    pub(crate) async fn fetch(
        &self,
        hashes: Vec<Hash>,
        providers: Vec<EndpointId>,
    ) -> Vec<(Hash, DownloadOutcome)> {
        let present = self.complete(&hashes).await;
        let mut outcomes: BTreeMap<Hash, DownloadOutcome> = hashes
            .iter()
            .zip(present)
            .filter(|(_, present)| *present)
            .map(|(h, _)| (*h, DownloadOutcome::AlreadyPresent))
            .collect();
        let missing: Vec<Hash> = hashes
            .iter()
            .filter(|h| !outcomes.contains_key(h))
            .copied()
            .collect();
        if let (true, Some(first)) = (missing.len() >= 2, providers.first()) {
            let done = if self.fetch_many(*first, &missing).await {
                vec![true; missing.len()]
            } else {
                self.complete(&missing).await
            };
            for (hash, _) in missing.iter().zip(done).filter(|(_, done)| *done) {
                outcomes.insert(*hash, DownloadOutcome::Downloaded);
            }
        }
        let rest = missing
            .iter()
            .filter(|h| !outcomes.contains_key(h))
            .map(|h| {
                let providers = providers.clone();
                async move { (*h, self.download(*h, providers).await) }
            });
        outcomes.extend(n0_future::join_all(rest).await);
        hashes
            .into_iter()
            .map(|h| {
                let outcome = outcomes.get(&h).cloned();
                (
                    h,
                    outcome.unwrap_or_else(|| DownloadOutcome::Failed("not fetched".into())),
                )
            })
            .collect()
    }

    /// Whether each hash is complete in the local store (a store error counts as not).
    async fn complete(&self, hashes: &[Hash]) -> Vec<bool> {
        let statuses = hashes
            .iter()
            .map(|h| self.blobs.blobs().status(blob_hash(*h)));
        n0_future::join_all(statuses)
            .await
            .into_iter()
            .map(|s| matches!(s, Ok(BlobStatus::Complete { .. })))
            .collect()
    }

    /// One `GetMany` request for `hashes` to `provider`. True when it brought every blob
    /// (each verified and stored as it arrived); after a failure, what it brought is found
    /// by asking the store.
    async fn fetch_many(&self, provider: EndpointId, hashes: &[Hash]) -> bool {
        let Ok(conn) = self.pool.get_or_connect(provider).await else {
            return false;
        };
        let request: GetManyRequest = hashes.iter().map(|h| blob_hash(*h)).collect();
        self.metrics.download_batches.inc();
        self.metrics.downloads_batched.inc_by(hashes.len() as u64);
        let result = self
            .blobs
            .remote()
            .execute_get_many(conn.clone(), request)
            .await;
        result.is_ok()
    }

    /// One blob through the downloader, from any of `providers`.
    async fn download(&self, hash: Hash, providers: Vec<EndpointId>) -> DownloadOutcome {
        if providers.is_empty() {
            return DownloadOutcome::Failed("no providers".into());
        }
        match self.downloader.download(blob_hash(hash), providers).await {
            Ok(()) => DownloadOutcome::Downloaded,
            Err(e) => DownloadOutcome::Failed(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use iroh::address_lookup::memory::MemoryLookup;
    use iroh_blobs::store::mem::MemStore;

    use super::*;
    use crate::tests::endpoint;

    /// A batch from a provider that lacks one of its blobs: the others come in one request,
    /// the lacking one fails as it would alone, and what was held already is not fetched.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_comes_in_one_request_and_a_lacking_blob_fails_alone() {
        let provider = endpoint().await;
        let provider_blobs = MemStore::new();
        let _router = iroh::protocol::Router::builder(provider.clone())
            .accept(
                iroh_blobs::ALPN,
                iroh_blobs::BlobsProtocol::new(&provider_blobs, None),
            )
            .spawn();
        let mut held = Vec::new();
        for i in 0..20u32 {
            let tag = provider_blobs
                .add_bytes(format!("value {i}").into_bytes())
                .await
                .expect("add");
            held.push(Hash::from(*tag.hash.as_bytes()));
        }
        let lacking = Hash::new(b"nobody holds this");

        let receiver = endpoint().await;
        let lookup = MemoryLookup::new();
        receiver
            .address_lookup()
            .expect("lookup")
            .add(lookup.clone());
        lookup.add_endpoint_info(provider.addr());
        let receiver_blobs = MemStore::new();
        let already = receiver_blobs
            .add_bytes(b"value 0".to_vec())
            .await
            .expect("add");
        assert_eq!(Hash::from(*already.hash.as_bytes()), held[0]);
        let metrics = Arc::new(Metrics::default());
        let fetcher = Fetcher::new((*receiver_blobs).clone(), &receiver, metrics.clone());

        let mut batch = held.clone();
        batch.insert(7, lacking);
        let outcomes = tokio::time::timeout(
            Duration::from_secs(60),
            fetcher.fetch(batch.clone(), vec![provider.id()]),
        )
        .await
        .expect("the batch ends");

        assert_eq!(outcomes.iter().map(|(h, _)| *h).collect::<Vec<_>>(), batch);
        for (hash, outcome) in &outcomes {
            let want = if *hash == held[0] {
                DownloadOutcome::AlreadyPresent
            } else if *hash == lacking {
                assert!(matches!(outcome, DownloadOutcome::Failed(_)), "{outcome:?}");
                continue;
            } else {
                DownloadOutcome::Downloaded
            };
            assert_eq!(outcome, &want, "{hash}");
        }
        for hash in &held {
            let bytes = receiver_blobs
                .get_bytes(blob_hash(*hash))
                .await
                .expect("fetched");
            assert_eq!(blob_hash(*hash), iroh_blobs::Hash::new(&bytes));
        }
        assert_eq!(metrics.download_batches.get(), 1);
        assert_eq!(
            metrics.downloads_batched.get(),
            20,
            "held[0] was not asked for"
        );
    }
}
