//! A node holds against hostile peers: real iroh endpoints on loopback, the attackers written
//! here with raw QUIC on `/iroh-sync/1`.
//!
//! * Hundreds of connections that send one byte and never `Init` do not stop the node from
//!   syncing out: dialed and accepted sessions are admitted apart, one peer holds a bounded
//!   number of sessions, and a connection must deliver its `Init` within the init timeout.
//! * Sync messages of thousands of whole-range parts against a 100,000-entry document end
//!   that session with its typed reason before any range is read, while another sync on the
//!   same node proceeds.

mod util;

use std::time::Duration;

use anyhow::{Context, Result};
use iroh::endpoint::{Connection, RecvStream, SendStream};
use sheaf_core::{
    entry::{Entry, Record, RecordIdentifier},
    keys::Capability,
    live::{SessionError, SessionLimit},
    ranger::{Message, MessagePart, Range, RangeFingerprint, SyncLimit},
    replica::{ReplicaConfig, Replicas},
    store::{Backend, RedbBackend},
    wire::{encode_frame, SyncMessage, DEFAULT_MAX_FRAME_LEN},
    Author, Fingerprint, Hash, Mono, NamespaceSecret, Now, SignedEntry,
};
use sheaf_tokio::{AddrInfoOptions, LiveEvent, ShareMode};
use util::{memory_node, spawn, sync_ok, wait_for, NodeOpts, TIMEOUT};

/// A raw connection and bi-stream on the sync ALPN.
struct Raw {
    conn: Connection,
    send: SendStream,
    recv: RecvStream,
}

async fn raw(endpoint: &iroh::Endpoint, to: iroh::EndpointAddr) -> Result<Raw> {
    let conn = endpoint.connect(to, sheaf::ALPN).await?;
    let (send, recv) = conn.open_bi().await?;
    Ok(Raw { conn, send, recv })
}

async fn send_msg(send: &mut SendStream, msg: &SyncMessage) -> Result<()> {
    let mut bytes = Vec::new();
    encode_frame(msg, DEFAULT_MAX_FRAME_LEN, &mut bytes)?;
    send.write_all(&bytes).await?;
    Ok(())
}

/// Polls `cond` every 10 ms until it holds, for at most [`TIMEOUT`].
async fn until(what: &str, mut cond: impl FnMut() -> bool) -> Result<()> {
    tokio::time::timeout(TIMEOUT, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .with_context(|| format!("timed out waiting for {what}"))
}

/// 600 connections from 10 node ids each send the first byte of a frame header and nothing
/// more. The node still syncs out, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_never_init_do_not_block_outgoing_syncs() -> Result<()> {
    const ATTACKERS: usize = 10;
    const PER_ATTACKER: usize = 60;
    let target = memory_node().await?;
    let other = memory_node().await?;
    let doc = other.docs.create().await?;
    doc.set_bytes(other.docs.author_default(), "hello", "world")
        .await?;
    let ticket = doc
        .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
        .await?;

    let mut held = Vec::new();
    let mut endpoints = Vec::new();
    for _ in 0..ATTACKERS {
        let endpoint = util::endpoint().await?;
        for _ in 0..PER_ATTACKER {
            let mut r = raw(&endpoint, target.addr()).await?;
            r.send.write_all(&[0]).await?;
            held.push(r);
        }
        endpoints.push(endpoint);
    }
    // Every connection has reached the node: admitted, or closed at once over a bound.
    let metrics = target.docs.metrics().clone();
    until("the node to see every connection", || {
        let accepted = metrics.sessions_accepted.get() as u64;
        accepted + metrics.sessions_refused.get() >= (ATTACKERS * PER_ATTACKER) as u64
    })
    .await?;
    let accepted = metrics.sessions_accepted.get();
    println!(
        "{accepted} connections held, {} closed at once",
        metrics.sessions_refused.get()
    );

    // The target dials `other` while the connections are held.
    let (joined, mut events) = target.docs.import_and_subscribe(ticket).await?;
    let from = other.peer();
    wait_for(&mut events, |e| sync_ok(e, from))
        .await
        .context("outgoing sync while 600 connections never sent Init")?;
    assert!(joined
        .get_exact(other.docs.author_default(), "hello", false)
        .await?
        .is_some());
    assert!(accepted <= 512, "{accepted} accepted sessions");

    drop(held);
    for endpoint in endpoints {
        endpoint.close().await;
    }
    target.shutdown().await?;
    other.shutdown().await
}

/// Writes `n` entries of one author into a fresh redb file for the document `secret`. The
/// entries share one signature: they are only ever served, never checked, in this test.
fn document_file(path: &std::path::Path, secret: &NamespaceSecret, n: usize) -> Result<()> {
    let now = Now::new(Mono(0), 1_700_000_000_000_000);
    let mut replicas = Replicas::new(RedbBackend::persistent(path)?, ReplicaConfig::default());
    replicas.import_namespace(now, Capability::Write(secret.clone()))?;
    let author = Author::from_bytes(&[7; 32]);
    let template = SignedEntry::new(
        secret,
        &author,
        b"t",
        Record::new(Hash::new(b"t"), 1, now.wall_micros),
    );
    let store = replicas.indexed_mut();
    for i in 0..n {
        let key = format!("k{i:07}");
        let record = Record::new(Hash::new(key.as_bytes()), 1, now.wall_micros + i as u64);
        let entry = Entry::new(RecordIdentifier::new(secret.id(), author.id(), key), record);
        store.put(SignedEntry::from_parts(*template.signature(), entry))?;
    }
    replicas.flush()?;
    Ok(())
}

/// A peer sends `Init`, then a message of 10,000 whole-range parts against a document of
/// 100,000 entries: the session ends with its typed reason at once, and another peer's sync
/// with the same node completes meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_range_parts_end_that_session_with_its_reason() -> Result<()> {
    const ENTRIES: usize = 100_000;
    const PARTS: usize = 10_000;
    let dir = tempfile::tempdir()?;
    let secret = NamespaceSecret::from_bytes(&[3; 32]);
    document_file(&dir.path().join("docs.redb"), &secret, ENTRIES)?;
    let target = spawn(NodeOpts {
        dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    })
    .await?;
    let big = target.docs.open(secret.id()).await?;
    let mut big_events = big.subscribe().await?;
    big.start_sync(vec![]).await?;
    // A small document another peer syncs while the attack runs.
    let small = target.docs.create().await?;
    small
        .set_bytes(target.docs.author_default(), "small", "doc")
        .await?;
    let ticket = small
        .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
        .await?;

    let attacker = util::endpoint().await?;
    let mut r = raw(&attacker, target.addr()).await?;
    let whole = |fingerprint| {
        MessagePart::RangeFingerprint(RangeFingerprint {
            range: Range::new(RecordIdentifier::zero(), RecordIdentifier::zero()),
            fingerprint,
        })
    };
    send_msg(
        &mut r.send,
        &SyncMessage::Init {
            namespace: secret.id(),
            message: Message::new(vec![whole(Fingerprint([1; 32]))]),
        },
    )
    .await?;
    let parts = (0..PARTS).map(|_| whole(Fingerprint::EMPTY)).collect();
    send_msg(&mut r.send, &SyncMessage::Sync(Message::new(parts))).await?;

    let honest = memory_node().await?;
    let (_, mut honest_events) = honest.docs.import_and_subscribe(ticket).await?;
    let target_id = target.peer();
    wait_for(&mut honest_events, |e| sync_ok(e, target_id))
        .await
        .context("another peer's sync during the attack")?;

    let attacker_id = util::peer_id(attacker.id());
    let seen = wait_for(
        &mut big_events,
        |e| matches!(e, LiveEvent::SyncFinished(s) if s.peer == attacker_id),
    )
    .await
    .context("the attacker's session did not end")?;
    let Some(LiveEvent::SyncFinished(s)) = seen.last() else {
        unreachable!("wait_for returns the matching event last")
    };
    assert_eq!(
        s.result,
        Err(SessionError::Limit(SessionLimit::Message(
            SyncLimit::OverlappingParts
        )))
    );
    // The node closed the connection.
    tokio::time::timeout(TIMEOUT, r.conn.closed())
        .await
        .context("connection not closed")?;
    let _ = r.recv;

    attacker.close().await;
    honest.shutdown().await?;
    target.shutdown().await
}
