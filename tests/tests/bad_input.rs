//! Bad input against a running Sheaf node from a raw QUIC client on `/iroh-sync/1`.
//!
//! A plain iroh endpoint dials the node, opens one bi-stream and sends what a broken or
//! hostile peer might: garbage, a 1 GiB length header (refused at once before `Init`, followed
//! by silence after it), record ids shorter than 64 bytes, an Init for a namespace the node
//! does not sync, frames after the session ended. Each time the node answers with an error (it closes the connection) or an Abort,
//! stays up, and a normal sync with another node afterwards succeeds.

mod util;

use std::time::Duration;

use anyhow::{Context, Result};
use iroh::endpoint::{Connection, RecvStream, SendStream};
use sheaf_core::{
    entry::RecordIdentifier,
    ranger::{Message, MessagePart, Range, RangeFingerprint},
    replica::{OpenOpts, ReplicaConfig, Replicas, SyncOutcome},
    store::MemBackend,
    wire::{encode_frame, FrameDecoder, SyncMessage, DEFAULT_MAX_FRAME_LEN},
    Author, Fingerprint, Hash, Mono, NamespaceId, NamespaceSecret, Now,
};
use sheaf_tokio::{AddrInfoOptions, DocTicket, LiveConfig, LiveEvent, ShareMode};
use util::{memory_node, spawn, sync_ok, wait_for, Node, NodeOpts, TIMEOUT};

/// The Abort NotFound frame (reference §1.11).
const ABORT_NOT_FOUND: &str = "000000020200";

/// A node sharing one document with one entry.
struct Target {
    node: Node,
    doc: sheaf_tokio::Doc,
    ticket: DocTicket,
    probes: usize,
}

impl Target {
    async fn spawn(live: Option<LiveConfig>) -> Result<Self> {
        let node = spawn(NodeOpts {
            live,
            ..Default::default()
        })
        .await?;
        let doc = node.docs.create().await?;
        doc.set_bytes(node.docs.author_default(), "hello", "world")
            .await?;
        let ticket = doc
            .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
            .await?;
        Ok(Self {
            node,
            doc,
            ticket,
            probes: 0,
        })
    }

    fn namespace(&self) -> NamespaceId {
        self.doc.id()
    }

    /// A raw QUIC connection and bi-stream to the node on the sync ALPN.
    async fn raw(&self) -> Result<Raw> {
        let endpoint = util::endpoint().await?;
        let conn = endpoint.connect(self.node.addr(), sheaf::ALPN).await?;
        let (send, recv) = conn.open_bi().await?;
        Ok(Raw {
            endpoint,
            conn,
            send,
            recv,
        })
    }

    /// The node still works: it writes a new entry and a fresh node syncs it.
    async fn assert_syncs(&mut self) -> Result<()> {
        self.probes += 1;
        let key = format!("probe/{}", self.probes);
        let author = self.node.docs.author_default();
        self.doc.set_bytes(author, key.clone(), "p").await?;
        let peer = memory_node().await?;
        let (doc, mut events) = peer.docs.import_and_subscribe(self.ticket.clone()).await?;
        let target = self.node.peer();
        wait_for(&mut events, |e| sync_ok(e, target))
            .await
            .context("a normal sync after the bad input")?;
        assert!(doc.get_exact(author, key, false).await?.is_some());
        assert!(doc.get_exact(author, "hello", false).await?.is_some());
        peer.shutdown().await
    }
}

struct Raw {
    endpoint: iroh::Endpoint,
    conn: Connection,
    send: SendStream,
    recv: RecvStream,
}

impl Raw {
    async fn send_msg(&mut self, msg: &SyncMessage) -> Result<()> {
        let mut bytes = Vec::new();
        encode_frame(msg, DEFAULT_MAX_FRAME_LEN, &mut bytes)?;
        self.send.write_all(&bytes).await?;
        Ok(())
    }

    /// Waits for the node to close the connection (how it answers a protocol error).
    async fn expect_closed(&mut self, what: &str) -> Result<String> {
        let read = tokio::time::timeout(TIMEOUT, self.recv.read_to_end(1 << 20))
            .await
            .with_context(|| format!("{what}: the node neither answered nor closed"))?;
        anyhow::ensure!(
            read.is_err(),
            "{what}: expected the node to close the connection, got a clean stream end {:?}",
            read.map(hex::encode)
        );
        let reason = tokio::time::timeout(TIMEOUT, self.conn.closed())
            .await
            .with_context(|| format!("{what}: connection not closed"))?;
        Ok(reason.to_string())
    }

    async fn close(self) {
        self.conn.close(0u32.into(), b"done");
        self.endpoint.close().await;
    }
}

/// The initial message of a peer that holds nothing (reference §1.11).
fn empty_initial() -> Message {
    Message::new(vec![MessagePart::RangeFingerprint(RangeFingerprint {
        range: Range::new(RecordIdentifier::zero(), RecordIdentifier::zero()),
        fingerprint: Fingerprint::EMPTY,
    })])
}

/// A frame around `payload`.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// A message whose one range has 16-byte bounds (record ids must be at least 64 bytes).
fn short_id_message() -> Vec<u8> {
    let mut m = vec![1, 0]; // one part, RangeFingerprint
    for _ in 0..2 {
        m.push(16);
        m.extend_from_slice(&[7; 16]);
    }
    m.extend_from_slice(Fingerprint::EMPTY.as_bytes());
    m
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes() -> Result<()> {
    let mut t = Target::spawn(None).await?;

    // Bytes that are not a frame: the "length" is 4 GiB.
    let mut raw = t.raw().await?;
    raw.send.write_all(&[0xff; 100]).await?;
    let reason = raw.expect_closed("4 GiB length").await?;
    println!("garbage: {reason}");
    raw.close().await;
    t.assert_syncs().await?;

    // A well-sized frame whose payload is not a message (unknown variant 0x7f).
    let mut raw = t.raw().await?;
    raw.send.write_all(&frame(&[0x7f, 1, 2, 3, 4, 5])).await?;
    raw.expect_closed("unknown variant").await?;
    raw.close().await;
    t.assert_syncs().await?;

    // A Sync before any Init.
    let mut raw = t.raw().await?;
    raw.send_msg(&SyncMessage::Sync(empty_initial())).await?;
    raw.expect_closed("Sync before Init").await?;
    raw.close().await;
    t.assert_syncs().await?;

    // An Init truncated by the end of the stream.
    let mut raw = t.raw().await?;
    let mut bytes = Vec::new();
    encode_frame(
        &SyncMessage::Init {
            namespace: t.namespace(),
            message: empty_initial(),
        },
        DEFAULT_MAX_FRAME_LEN,
        &mut bytes,
    )?;
    raw.send.write_all(&bytes[..bytes.len() / 2]).await?;
    raw.send.finish()?;
    raw.expect_closed("truncated Init").await?;
    raw.close().await;
    t.assert_syncs().await?;

    t.node.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_header_then_silence() -> Result<()> {
    // A short idle timeout, to see the node end the stalled session within the test.
    let live = LiveConfig {
        session_idle_timeout: Duration::from_secs(3),
        ..Default::default()
    };
    let mut t = Target::spawn(Some(live)).await?;
    let rss_before = rss_kib();

    // Before `Init`, a frame over 64 KiB is refused at its header.
    let mut raw = t.raw().await?;
    raw.send
        .write_all(&DEFAULT_MAX_FRAME_LEN.to_be_bytes())
        .await?;
    raw.expect_closed("1 GiB header before Init").await?;
    raw.close().await;

    // After `Init`, exactly 1 GiB is allowed by the framing; the node must wait for it
    // without reserving it.
    let mut raw = t.raw().await?;
    raw.send_msg(&SyncMessage::Init {
        namespace: t.namespace(),
        message: empty_initial(),
    })
    .await?;
    raw.send
        .write_all(&DEFAULT_MAX_FRAME_LEN.to_be_bytes())
        .await?;
    raw.send.write_all(&[0u8; 1024]).await?;
    // While that stream stalls, the node serves others.
    t.assert_syncs().await?;
    let rss_after = rss_kib();
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        println!("RSS before {before} KiB, after {after} KiB");
        assert!(
            after < before + 256 * 1024,
            "memory jumped from {before} KiB to {after} KiB"
        );
    }
    // The idle timeout ends the stalled session.
    let reason = raw.expect_closed("1 GiB header then silence").await?;
    println!("stalled session: {reason}");
    raw.close().await;

    // One byte over 1 GiB is refused as soon as the header is in, also after `Init`.
    let mut raw = t.raw().await?;
    raw.send_msg(&SyncMessage::Init {
        namespace: t.namespace(),
        message: empty_initial(),
    })
    .await?;
    raw.send
        .write_all(&(DEFAULT_MAX_FRAME_LEN + 1).to_be_bytes())
        .await?;
    raw.expect_closed("1 GiB + 1 header").await?;
    raw.close().await;

    t.assert_syncs().await?;
    t.node.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_record_id() -> Result<()> {
    let mut t = Target::spawn(None).await?;

    // In the Init.
    let mut raw = t.raw().await?;
    let mut payload = vec![0];
    payload.extend_from_slice(t.namespace().as_bytes());
    payload.extend_from_slice(&short_id_message());
    raw.send.write_all(&frame(&payload)).await?;
    raw.expect_closed("short record id in Init").await?;
    raw.close().await;
    t.assert_syncs().await?;

    // In a Sync after a valid Init.
    let mut raw = t.raw().await?;
    raw.send_msg(&SyncMessage::Init {
        namespace: t.namespace(),
        message: empty_initial(),
    })
    .await?;
    // Wait for the node's answer, so the session is running.
    let mut decoder = FrameDecoder::default();
    let mut buf = vec![0u8; 64 * 1024];
    let reply = tokio::time::timeout(TIMEOUT, async {
        loop {
            let n = raw.recv.read(&mut buf).await?.context("stream ended")?;
            decoder.feed(&buf[..n])?;
            if let Some(msg) = decoder.next_message()? {
                return anyhow::Ok(msg);
            }
        }
    })
    .await??;
    assert!(matches!(reply, SyncMessage::Sync(_)), "{reply:?}");
    let mut payload = vec![1];
    payload.extend_from_slice(&short_id_message());
    raw.send.write_all(&frame(&payload)).await?;
    raw.expect_closed("short record id in Sync").await?;
    raw.close().await;
    t.assert_syncs().await?;
    t.node.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_for_unknown_namespace_and_frames_after_the_end() -> Result<()> {
    let mut t = Target::spawn(None).await?;
    let unknown = NamespaceSecret::new(&mut rand::rng()).id();

    let mut raw = t.raw().await?;
    raw.send_msg(&SyncMessage::Init {
        namespace: unknown,
        message: empty_initial(),
    })
    .await?;
    let answer = tokio::time::timeout(TIMEOUT, raw.recv.read_to_end(1024))
        .await
        .context("no answer to an Init for an unknown namespace")??;
    assert_eq!(hex::encode(&answer), ABORT_NOT_FOUND);

    // The session is over (Abort, then the node finished its side): more frames and garbage.
    raw.send
        .write_all(&{
            let mut b = Vec::new();
            encode_frame(
                &SyncMessage::Sync(empty_initial()),
                DEFAULT_MAX_FRAME_LEN,
                &mut b,
            )?;
            b
        })
        .await?;
    raw.send.write_all(&[0xff; 64]).await?;
    raw.send.finish()?;
    let reason = tokio::time::timeout(TIMEOUT, raw.conn.closed())
        .await
        .context("the node kept the connection of an aborted session open")?;
    println!("after Abort: {reason}");
    raw.close().await;
    t.assert_syncs().await?;
    t.node.shutdown().await
}

/// A complete, valid sync from the raw client (a `Replicas` over a `MemBackend` plays
/// iroh-docs' Alice with one entry of its own), then frames after the node ended the session.
///
/// Both sides hold one entry the other lacks, so the exchange is the golden transcript's
/// (reference §1.11): Init(fingerprint) → items → our items with `have_local` → the node has
/// nothing to add and finishes its side first, while ours is still open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_after_a_completed_sync() -> Result<()> {
    let mut t = Target::spawn(None).await?;
    let mut events = t.doc.subscribe().await?;
    let ns = t.namespace();
    let target = t.node.peer();
    let wall = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0)
    };
    let now = || Now::new(Mono(0), wall());
    let mut alice = Replicas::new(MemBackend::default(), ReplicaConfig::default());
    alice.import_namespace(now(), t.ticket.capability.clone())?;
    alice.open(
        ns,
        OpenOpts {
            sync: true,
            subscribe: false,
        },
    )?;
    let author = Author::new(&mut rand::rng());
    alice.import_author(now(), author.clone())?;
    alice.insert_local(now(), ns, author.id(), b"from/raw", Hash::new(b"raw"), 3)?;

    let mut raw = t.raw().await?;
    let me = util::peer_id(raw.endpoint.id());
    raw.send_msg(&SyncMessage::Init {
        namespace: ns,
        message: alice.sync_initial_message(ns)?,
    })
    .await?;
    let mut decoder = FrameDecoder::default();
    let mut outcome = SyncOutcome::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut we_are_done = false;
    tokio::time::timeout(TIMEOUT, async {
        loop {
            let Some(n) = raw.recv.read(&mut buf).await? else {
                decoder.finish()?;
                return anyhow::Ok(());
            };
            decoder.feed(&buf[..n])?;
            while let Some(msg) = decoder.next_message()? {
                let SyncMessage::Sync(msg) = msg else {
                    anyhow::bail!("unexpected {msg:?}");
                };
                anyhow::ensure!(!we_are_done, "the node sent after we finished");
                match alice.sync_process_message(now(), ns, msg, target, &mut outcome)? {
                    Some(reply) => raw.send_msg(&SyncMessage::Sync(reply)).await?,
                    None => {
                        // Our loop ends: finish, as iroh-docs' Alice does.
                        we_are_done = true;
                        raw.send.finish()?;
                    }
                }
            }
        }
    })
    .await
    .context("the sync did not end")??;
    anyhow::ensure!(!we_are_done, "expected the node to end the exchange first");
    let got = sheaf_core::store::query::query_all(
        alice.indexed_mut(),
        ns,
        &sheaf_core::store::Query::all(),
    )?;
    assert_eq!(got.len(), 2, "the client holds both entries");
    assert_eq!((outcome.num_recv, outcome.num_sent), (1, 1));

    // The node finished its side; now send more frames and garbage, then finish.
    raw.send_msg(&SyncMessage::Sync(empty_initial())).await?;
    raw.send_msg(&SyncMessage::Init {
        namespace: ns,
        message: empty_initial(),
    })
    .await?;
    raw.send.write_all(&[0xff; 64]).await?;
    raw.send.finish()?;
    // The node reports the session: its reconciliation completed, so it is a success, and
    // the client's entry arrived.
    let seen = wait_for(
        &mut events,
        |e| matches!(e, LiveEvent::SyncFinished(s) if s.peer == me),
    )
    .await?;
    let Some(LiveEvent::SyncFinished(s)) = seen.last() else {
        unreachable!()
    };
    println!("node's view of the session: {:?}", s.result);
    assert!(
        seen.iter()
            .any(|e| matches!(e, LiveEvent::InsertRemote { from, entry, .. }
            if *from == me && entry.key() == b"from/raw")),
        "{seen:?}"
    );
    assert!(t
        .doc
        .get_exact(author.id(), "from/raw", false)
        .await?
        .is_some());
    let reason = tokio::time::timeout(TIMEOUT, raw.conn.closed())
        .await
        .context("connection not closed after the session")?;
    println!("after the session: {reason}");
    raw.close().await;
    t.assert_syncs().await?;
    t.node.shutdown().await
}
