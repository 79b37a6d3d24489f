//! The QUIC transport a Sheaf node's endpoint needs for many documents.
//!
//! iroh-gossip keeps one unidirectional QUIC stream per topic open on its connection to each
//! neighbour, and every Sheaf document is a topic. QUIC caps the streams a peer may have open
//! towards us at once (iroh's default: 100), so two nodes that share more than about 100
//! documents got gossip neighbours on only about 100 of them: the join of the 101st topic waits
//! for a stream that never comes, and the other documents' live updates arrived only by sync.
//! [`transport_config`] raises the cap to [`MAX_LIVE_DOCUMENTS_PER_PEER`]; everything else is
//! iroh's default. Streams cost memory only when opened, and QUIC's flow control still bounds
//! what a peer can make us buffer.

use iroh::endpoint::{QuicTransportConfig, VarInt};

/// Documents two nodes can share live over one connection (incoming unidirectional streams
/// per connection, one per gossip topic). Past it, more documents still sync, but join the
/// gossip swarm only once a stream of another topic closes.
pub const MAX_LIVE_DOCUMENTS_PER_PEER: u32 = 16_384;

/// iroh's QUIC transport configuration with room for the gossip streams of
/// [`MAX_LIVE_DOCUMENTS_PER_PEER`] documents per peer. Give it to the endpoint:
/// `Endpoint::builder(..).transport_config(sheaf::transport_config())`.
pub fn transport_config() -> QuicTransportConfig {
    QuicTransportConfig::builder()
        .max_concurrent_uni_streams(VarInt::from_u32(MAX_LIVE_DOCUMENTS_PER_PEER))
        .build()
}

/// How often iroh-gossip's broadcast layer expires its message caches, per topic (iroh-gossip's
/// default: every second). The timer runs for every topic that ever carried a message, so at
/// the default two idle nodes sharing 1,000 live documents handled 1,000 timer events a second
/// each; every 5 s costs a fifth of that, and a message stays cached at most 5 s past its
/// retention (30 s).
pub const GOSSIP_CACHE_EVICT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// An iroh-gossip builder for a Sheaf node: iroh-gossip's defaults, with the message caches
/// expired every [`GOSSIP_CACHE_EVICT_INTERVAL`] instead of every second, so that idle
/// documents cost little. `sheaf::gossip_builder().spawn(endpoint.clone())`.
pub fn gossip_builder() -> iroh_gossip::net::Builder {
    let broadcast = iroh_gossip::proto::PlumtreeConfig {
        cache_evict_interval: GOSSIP_CACHE_EVICT_INTERVAL,
        ..Default::default()
    };
    iroh_gossip::net::Gossip::builder().broadcast_config(broadcast)
}
