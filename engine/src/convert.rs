//! Conversions between Sheaf's core types and iroh's.

use std::str::FromStr;

use sheaf_core::{
    wire::{NodeAddr, TransportAddr},
    Hash, PeerId,
};

/// iroh's endpoint id for a peer id (fails if the bytes are not a valid key).
pub fn endpoint_id(peer: PeerId) -> Option<iroh::EndpointId> {
    iroh::PublicKey::from_bytes(peer.as_bytes()).ok()
}

/// The peer id of an iroh endpoint id.
pub fn peer_id(id: iroh::EndpointId) -> PeerId {
    PeerId::from_bytes(*id.as_bytes())
}

/// iroh-blobs' hash.
pub fn blob_hash(hash: Hash) -> iroh_blobs::Hash {
    iroh_blobs::Hash::from_bytes(hash.to_bytes())
}

/// Sheaf's hash.
pub fn hash(hash: iroh_blobs::Hash) -> Hash {
    Hash::from_bytes(*hash.as_bytes())
}

/// An iroh address as a core node address.
pub fn node_addr(addr: &iroh::EndpointAddr) -> NodeAddr {
    let mut out = NodeAddr::new(peer_id(addr.id));
    for a in &addr.addrs {
        match a {
            iroh::TransportAddr::Relay(url) => {
                out.addrs.insert(TransportAddr::Relay(url.to_string()));
            }
            iroh::TransportAddr::Ip(ip) => {
                out.addrs.insert(TransportAddr::Ip(*ip));
            }
            _ => {}
        }
    }
    out
}

/// A core node address as an iroh address (unparseable parts are skipped).
pub fn endpoint_addr(addr: &NodeAddr) -> Option<iroh::EndpointAddr> {
    let id = endpoint_id(addr.id)?;
    let addrs = addr.addrs.iter().filter_map(|a| match a {
        TransportAddr::Relay(url) => iroh::RelayUrl::from_str(url)
            .ok()
            .map(iroh::TransportAddr::Relay),
        TransportAddr::Ip(ip) => Some(iroh::TransportAddr::Ip(*ip)),
        TransportAddr::Custom { .. } => None,
    });
    Some(iroh::EndpointAddr::from_parts(id, addrs))
}
