//! Garbage collection of blobs with the docs protection callback: content referenced by an
//! entry survives the blob store's GC runs, content of a deleted entry is collected.

mod util;

use std::time::Duration;

use anyhow::{Context, Result};
use iroh_blobs::{
    api::proto::BlobStatus,
    store::{fs::options::Options, GcConfig},
};
use iroh_gossip::net::Gossip;
use util::{endpoint, TIMEOUT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_keeps_referenced_content_and_collects_deleted_content() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (handler, protect) = sheaf_tokio::ProtectCallbackHandler::new();
    let mut options = Options::new(dir.path());
    options.gc = Some(GcConfig {
        interval: Duration::from_millis(100),
        add_protected: Some(protect),
    });
    let blobs =
        iroh_blobs::store::fs::FsStore::load_with_opts(dir.path().join("blobs.db"), options)
            .await?;
    let endpoint = endpoint().await?;
    let gossip = Gossip::builder().spawn(endpoint.clone());
    let docs = sheaf_tokio::Docs::memory()
        .protect_handler(handler)
        .spawn(endpoint.clone(), (*blobs).clone(), gossip.clone())
        .await?;
    let router = docs.router(gossip);

    let doc = docs.create().await?;
    let author = docs.author_default();
    let keep = doc.set_bytes(author, "keep", vec![1u8; 100_000]).await?;
    let drop = doc.set_bytes(author, "drop", vec![2u8; 100_000]).await?;
    assert_eq!(doc.del(author, "drop").await?, 1);
    let status = |h: sheaf_tokio::Hash| {
        let blobs = blobs.clone();
        async move {
            blobs
                .blobs()
                .status(iroh_blobs::Hash::from_bytes(h.to_bytes()))
                .await
        }
    };

    // GC runs every 100 ms; check after each of its periods until the deleted content is gone.
    let mut period = tokio::time::interval(Duration::from_millis(100));
    tokio::time::timeout(TIMEOUT, async {
        loop {
            period.tick().await;
            if matches!(status(drop).await?, BlobStatus::NotFound) {
                return anyhow::Ok(());
            }
        }
    })
    .await
    .context("deleted content was never collected")??;
    assert!(
        matches!(status(keep).await?, BlobStatus::Complete { .. }),
        "referenced content must survive GC"
    );
    router.shutdown().await?;
    Ok(())
}
