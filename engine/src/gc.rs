//! Protecting document content from iroh-blobs' garbage collector.
//!
//! iroh-blobs asks a callback for extra hashes to keep before each GC run. Create a
//! [`ProtectCallbackHandler`] with its callback, give the callback to the blob store's
//! `GcConfig::add_protected` and the handler to [`crate::Builder::protect_handler`]: every
//! content hash of every entry of every document is then protected. If the docs engine cannot
//! answer, the GC run is aborted rather than risk deleting content.

use std::sync::Arc;

use iroh_blobs::store::{ProtectCb, ProtectOutcome};
use tokio::sync::{mpsc, oneshot};

use crate::convert::blob_hash;

type Request = oneshot::Sender<Result<Vec<sheaf_core::Hash>, String>>;

/// The docs side of the GC protection callback.
#[derive(Debug)]
pub struct ProtectCallbackHandler(pub(crate) mpsc::Receiver<Request>);

impl ProtectCallbackHandler {
    /// A handler and the callback to install in iroh-blobs' `GcConfig::add_protected`.
    pub fn new() -> (Self, ProtectCb) {
        let (tx, rx) = mpsc::channel::<Request>(4);
        let cb: ProtectCb = Arc::new(move |live| {
            let tx = tx.clone();
            Box::pin(async move {
                let (reply, answer) = oneshot::channel();
                if tx.send(reply).await.is_err() {
                    return ProtectOutcome::Abort;
                }
                match answer.await {
                    Ok(Ok(hashes)) => {
                        live.extend(hashes.into_iter().map(blob_hash));
                        ProtectOutcome::Continue
                    }
                    _ => ProtectOutcome::Abort,
                }
            })
        });
        (Self(rx), cb)
    }
}
