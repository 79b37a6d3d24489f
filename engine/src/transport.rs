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
