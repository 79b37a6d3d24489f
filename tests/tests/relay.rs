//! Sheaf nodes that can only reach each other through a real iroh-relay server (HTTPS and
//! QUIC, self-signed certificates) running on loopback in the test, as two nodes on two
//! home networks would.
//!
//! How the tests make sure the path is relayed: the endpoints have **no IP transport at
//! all** (`clear_ip_transports()` without any `bind_addr`; `bound_sockets()` is checked to be
//! empty), so no direct path can exist whatever addresses a peer advertises or a lookup
//! returns; tickets carry the relay URL only (checked); and after each exchange
//! [`assert_relayed`] checks iroh's own view: everything the endpoint knows of the peer
//! (`Endpoint::remote_info`) is a relay address, bytes went both ways over the relay
//! (`send_relay`, `recv_data_relay`), none over IPv4 or IPv6, and no direct path was opened.
//! Nothing leaves the machine: the relay, and for discovery a DNS and a pkarr server, are
//! iroh's test servers on 127.0.0.1, and no endpoint knows any other relay or lookup.

mod util;

use std::{collections::BTreeSet, str::FromStr};

use anyhow::{Context, Result};
use futures_lite::StreamExt;
use iroh::{test_utils::DnsPkarrServer, Endpoint};
use sheaf_core::wire::TransportAddr;
use sheaf_tokio::{AddrInfoOptions, DocTicket, Events, Hash, LiveEvent, ShareMode};
use util::{
    iroh_docs::IrohNode,
    relay::{assert_relayed, relay_only_endpoint, wait_home_relay, TestRelay},
    spawn_on, wait_for, Node, NodeOpts, TIMEOUT,
};

/// A Sheaf node on a relay-only endpoint (and the discovery servers' lookup if given).
async fn relay_node(relay: &TestRelay, dns: Option<&DnsPkarrServer>) -> Result<Node> {
    let gate = sheaf_tokio::GossipGate::new();
    let endpoint = relay_only_endpoint(&relay.map, None, Some(&gate), dns).await?;
    let node = spawn_on(endpoint, gate, NodeOpts::default()).await?;
    wait_home_relay(node.endpoint(), &relay.url).await?;
    Ok(node)
}

/// Re-checks `check` after every event of `events` until it holds (at most [`TIMEOUT`]).
async fn until(
    events: &mut Events,
    what: &str,
    mut check: impl AsyncFnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if check().await? {
            return Ok(());
        }
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(_)) => {}
            Ok(None) => anyhow::bail!("event stream ended while waiting for {what}"),
            Err(_) => anyhow::bail!("timed out waiting for {what}"),
        }
    }
}

/// Waits until `node` holds `key` (by anyone) with its content `value` stored.
async fn until_value(
    node: &Node,
    doc: &sheaf_tokio::Doc,
    events: &mut Events,
    key: &str,
    value: &[u8],
) -> Result<()> {
    let hash = Hash::new(value);
    until(events, &format!("{key:?} with its content"), async || {
        let has_entry = doc
            .get_many(sheaf_tokio::Query::key_exact(key.to_owned()))
            .await?
            .iter()
            .any(|e| e.content_hash() == hash);
        Ok(has_entry && node.has_blob(hash).await?)
    })
    .await?;
    anyhow::ensure!(
        &node.blob(hash).await?[..] == value,
        "content of {key:?} differs"
    );
    Ok(())
}

/// Asserts that `ticket` names one node, by the relay URL `url` only.
fn assert_relay_only_ticket(ticket: &DocTicket, url: &iroh::RelayUrl) {
    assert_eq!(ticket.nodes.len(), 1, "{ticket:?}");
    let addrs: Vec<&TransportAddr> = ticket.nodes[0].addrs.iter().collect();
    assert_eq!(
        addrs,
        vec![&TransportAddr::Relay(url.to_string())],
        "the ticket must carry the relay URL and no direct address"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_url_ticket_joins_syncs_live_with_content() -> Result<()> {
    let relay = TestRelay::start().await?;
    let alice = relay_node(&relay, None).await?;
    let bob = relay_node(&relay, None).await?;
    let author = alice.docs.author_default();
    let doc = alice.docs.create().await?;
    // Content large enough to take many relayed QUIC packets.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    doc.set_bytes(author, "hello", "world").await?;
    doc.set_bytes(author, "big", big.clone()).await?;
    let mut aevents = doc.subscribe().await?;
    // `RelayAndAddresses`: the node has no direct address, so only the relay goes in.
    let ticket = doc
        .share(ShareMode::Write, AddrInfoOptions::RelayAndAddresses)
        .await?;
    assert_relay_only_ticket(&ticket, &relay.url);

    let (bdoc, mut bevents) = bob.docs.import_and_subscribe(ticket).await?;
    until_value(&bob, &bdoc, &mut bevents, "hello", b"world").await?;
    until_value(&bob, &bdoc, &mut bevents, "big", &big).await?;

    // Live both ways, once they are gossip neighbours.
    wait_for(&mut aevents, |e| matches!(e, LiveEvent::NeighborUp(_))).await?;
    doc.set_bytes(author, "live/alice", "from alice").await?;
    until_value(&bob, &bdoc, &mut bevents, "live/alice", b"from alice").await?;
    bdoc.set_bytes(bob.docs.author_default(), "live/bob", "from bob")
        .await?;
    until_value(&alice, &doc, &mut aevents, "live/bob", b"from bob").await?;

    assert_relayed(bob.endpoint(), alice.endpoint().id()).await?;
    assert_relayed(alice.endpoint(), bob.endpoint().id()).await?;
    // Sheaf's metrics count the sync connections (Bob's dialed, Alice's accepted) as
    // relayed.
    for node in [&alice, &bob] {
        let m = node.docs.metrics();
        assert!(m.sync_conns_relayed.get() > 0, "no relayed sync counted");
        assert_eq!(m.sync_conns_direct.get(), 0);
    }
    bob.shutdown().await?;
    alice.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_only_ticket_joins_through_discovery() -> Result<()> {
    let relay = TestRelay::start().await?;
    let dns = DnsPkarrServer::run().await?;
    let alice = relay_node(&relay, Some(&dns)).await?;
    let bob = relay_node(&relay, Some(&dns)).await?;
    // Alice's relay URL is published to the (local) pkarr server, which the DNS server serves.
    dns.on_endpoint(&alice.endpoint().id(), TIMEOUT).await?;
    let author = alice.docs.author_default();
    let doc = alice.docs.create().await?;
    doc.set_bytes(author, "found", "by id").await?;
    let mut aevents = doc.subscribe().await?;
    let ticket = doc.share(ShareMode::Write, AddrInfoOptions::Id).await?;
    assert_eq!(ticket.nodes.len(), 1);
    assert!(
        ticket.nodes[0].addrs.is_empty(),
        "an id-only ticket: {ticket:?}"
    );

    let (bdoc, mut bevents) = bob.docs.import_and_subscribe(ticket).await?;
    until_value(&bob, &bdoc, &mut bevents, "found", b"by id").await?;
    wait_for(&mut aevents, |e| matches!(e, LiveEvent::NeighborUp(_))).await?;
    doc.set_bytes(author, "live", "after discovery").await?;
    until_value(&bob, &bdoc, &mut bevents, "live", b"after discovery").await?;

    // Bob learnt Alice's relay URL from the lookup alone, and used it.
    let via_lookup = bob
        .endpoint()
        .remote_info(alice.endpoint().id())
        .await
        .context("bob knows nothing of alice")?
        .addrs()
        .any(|a| a.addr() == &iroh::TransportAddr::Relay(relay.url.clone()));
    assert!(via_lookup, "bob does not know alice's relay URL");
    assert_relayed(bob.endpoint(), alice.endpoint().id()).await?;
    bob.shutdown().await?;
    alice.shutdown().await
}

/// Both nodes' relay connections are down (iroh reports them disconnected).
async fn wait_relay_down(endpoint: &Endpoint, url: &iroh::RelayUrl) -> Result<()> {
    use iroh::Watcher;
    let mut status = endpoint.home_relay_status();
    tokio::time::timeout(TIMEOUT, async {
        loop {
            if !status
                .get()
                .iter()
                .any(|s| s.url() == url && s.is_connected())
            {
                return Ok(());
            }
            status
                .updated()
                .await
                .map_err(|e| anyhow::anyhow!("relay status watcher: {e}"))?;
        }
    })
    .await
    .with_context(|| {
        format!(
            "the relay connection did not go down: {:?}",
            endpoint.home_relay_status().get()
        )
    })?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_restart_mid_session_both_reconnect_and_keep_syncing() -> Result<()> {
    let mut relay = TestRelay::start().await?;
    let alice = relay_node(&relay, None).await?;
    let bob = relay_node(&relay, None).await?;
    let (aauthor, bauthor) = (alice.docs.author_default(), bob.docs.author_default());
    let doc = alice.docs.create().await?;
    doc.set_bytes(aauthor, "before", "the restart").await?;
    let mut aevents = doc.subscribe().await?;
    let ticket = doc.share(ShareMode::Write, AddrInfoOptions::Relay).await?;
    assert_relay_only_ticket(&ticket, &relay.url);
    let (bdoc, mut bevents) = bob.docs.import_and_subscribe(ticket).await?;
    until_value(&bob, &bdoc, &mut bevents, "before", b"the restart").await?;
    wait_for(&mut aevents, |e| matches!(e, LiveEvent::NeighborUp(_))).await?;
    doc.set_bytes(aauthor, "live/1", "one").await?;
    until_value(&bob, &bdoc, &mut bevents, "live/1", b"one").await?;

    // The relay goes away in the middle of the live session, on both sides...
    relay.stop().await?;
    wait_relay_down(alice.endpoint(), &relay.url).await?;
    wait_relay_down(bob.endpoint(), &relay.url).await?;
    // ...a write made meanwhile cannot reach Bob yet...
    doc.set_bytes(aauthor, "during", "the outage").await?;
    // ...and it comes back under the same URL (same ports).
    relay.restart().await?;
    wait_home_relay(alice.endpoint(), &relay.url).await?;
    wait_home_relay(bob.endpoint(), &relay.url).await?;

    until_value(&bob, &bdoc, &mut bevents, "during", b"the outage").await?;
    doc.set_bytes(aauthor, "live/2", "two").await?;
    until_value(&bob, &bdoc, &mut bevents, "live/2", b"two").await?;
    bdoc.set_bytes(bauthor, "live/3", "three").await?;
    until_value(&alice, &doc, &mut aevents, "live/3", b"three").await?;
    assert_relayed(bob.endpoint(), alice.endpoint().id()).await?;
    assert_relayed(alice.endpoint(), bob.endpoint().id()).await?;
    bob.shutdown().await?;
    alice.shutdown().await
}

/// An iroh-docs 0.101 node on a relay-only endpoint.
async fn iroh_docs_node(relay: &TestRelay) -> Result<IrohNode> {
    let endpoint = relay_only_endpoint(&relay.map, None, None, None).await?;
    wait_home_relay(&endpoint, &relay.url).await?;
    IrohNode::spawn_on(endpoint).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iroh_docs_node_joins_a_sheaf_document_through_the_relay() -> Result<()> {
    let relay = TestRelay::start().await?;
    let sheaf = relay_node(&relay, None).await?;
    let iroh = iroh_docs_node(&relay).await?;
    let author = sheaf.docs.author_default();
    let sdoc = sheaf.docs.create().await?;
    sdoc.set_bytes(author, "a", "alpha").await?;
    let mut sevents = sdoc.subscribe().await?;
    let ticket = sdoc.share(ShareMode::Write, AddrInfoOptions::Relay).await?;
    assert_relay_only_ticket(&ticket, &relay.url);
    let ticket = iroh_docs::DocTicket::from_str(&ticket.to_string())?;
    let (idoc, ievents) = iroh.docs.import_and_subscribe(ticket).await?;
    let mut ievents = Box::pin(ievents);

    // Initial sync, then Sheaf's live write with its content.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !iroh.keys(&idoc).await?.contains(b"a".as_slice()) {
        tokio::time::timeout_at(deadline, ievents.next())
            .await
            .context("iroh-docs did not get Sheaf's entry through the relay")?
            .context("iroh-docs event stream ended")??;
    }
    wait_for(&mut sevents, |e| matches!(e, LiveEvent::NeighborUp(_))).await?;
    let h = sdoc.set_bytes(author, "live/from-sheaf", "s").await?;
    tokio::time::timeout(TIMEOUT, async {
        while let Some(ev) = ievents.next().await {
            if let Ok(iroh_docs::engine::LiveEvent::ContentReady { hash }) = ev {
                if hash.as_bytes() == h.as_bytes() {
                    return Ok(());
                }
            }
        }
        anyhow::bail!("iroh-docs event stream ended")
    })
    .await
    .context("iroh-docs did not receive Sheaf's live write")??;

    // And iroh-docs → Sheaf, live, with content.
    let ia = iroh.docs.author_default().await?;
    idoc.set_bytes(ia, "live/from-iroh", "i").await?;
    until_value(&sheaf, &sdoc, &mut sevents, "live/from-iroh", b"i").await?;
    assert_relayed(sheaf.endpoint(), iroh.router.endpoint().id()).await?;
    iroh.router.shutdown().await?;
    sheaf.shutdown().await
}

/// `Doc::share`'s address options, as iroh-docs' `AddrInfoOptions`: what each puts in the
/// ticket of a node that has both a relay and a direct address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_address_options_choose_what_the_ticket_carries() -> Result<()> {
    let relay = TestRelay::start().await?;
    let gate = sheaf_tokio::GossipGate::new();
    let endpoint = util::relay::relay_and_direct_endpoint(&relay.map, Some(&gate)).await?;
    let node = spawn_on(endpoint, gate, NodeOpts::default()).await?;
    wait_home_relay(node.endpoint(), &relay.url).await?;
    let direct: BTreeSet<TransportAddr> = node
        .endpoint()
        .bound_sockets()
        .into_iter()
        .map(TransportAddr::Ip)
        .collect();
    assert!(!direct.is_empty());
    let relayed = TransportAddr::Relay(relay.url.to_string());
    let doc = node.docs.create().await?;
    let addrs = async |opts| -> Result<BTreeSet<TransportAddr>> {
        let ticket = doc.share(ShareMode::Read, opts).await?;
        assert_eq!(ticket.nodes.len(), 1);
        assert_eq!(ticket.nodes[0].id, node.peer());
        // The ticket's string form round-trips what it carries.
        let back = DocTicket::from_str(&ticket.to_string())?;
        assert_eq!(back, ticket);
        Ok(ticket.nodes[0].addrs.iter().cloned().collect())
    };
    let mut both = direct.clone();
    both.insert(relayed.clone());
    assert_eq!(addrs(AddrInfoOptions::RelayAndAddresses).await?, both);
    assert_eq!(
        addrs(AddrInfoOptions::Relay).await?,
        BTreeSet::from([relayed])
    );
    assert_eq!(addrs(AddrInfoOptions::Addresses).await?, direct);
    assert_eq!(addrs(AddrInfoOptions::Id).await?, BTreeSet::new());

    // A node without a relay joins by the direct address: the sync connection is direct,
    // and counted so on both sides.
    doc.set_bytes(node.docs.author_default(), "k", "v").await?;
    let ticket = doc
        .share(ShareMode::Read, AddrInfoOptions::Addresses)
        .await?;
    let direct_peer = util::memory_node().await?;
    let (pdoc, mut pevents) = direct_peer.docs.import_and_subscribe(ticket).await?;
    until_value(&direct_peer, &pdoc, &mut pevents, "k", b"v").await?;
    assert!(direct_peer.docs.metrics().sync_conns_direct.get() > 0);
    assert_eq!(direct_peer.docs.metrics().sync_conns_relayed.get(), 0);
    assert!(node.docs.metrics().sync_conns_direct.get() > 0);
    direct_peer.shutdown().await?;
    node.shutdown().await
}
