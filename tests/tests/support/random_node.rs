//! A random node address, as Sheaf's `NodeAddr` and as the equal iroh `EndpointAddr`: relay
//! URLs, IPv4 and IPv6 sockets and custom transports, up to four of them. Shared by the
//! compatibility suites (`wire_compat`, `serde_compat`).

use std::{
    net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6},
    str::FromStr,
};

use rand::RngExt;
use rand_chacha::ChaCha12Rng;
use sheaf_core::{
    wire::{NodeAddr, TransportAddr},
    PeerId,
};

/// The same random address, Sheaf's and iroh's.
pub fn random_node(rng: &mut ChaCha12Rng) -> (NodeAddr, iroh::EndpointAddr) {
    let id = iroh::SecretKey::from_bytes(&rng.random()).public();
    let mut ours = NodeAddr::new(PeerId::from_bytes(*id.as_bytes()));
    let mut theirs = Vec::new();
    for _ in 0..rng.random_range(0..5usize) {
        match rng.random_range(0..4u8) {
            0 => {
                let url = iroh::RelayUrl::from_str(&format!(
                    "https://relay{}.example.org",
                    rng.random_range(0..3u8)
                ))
                .unwrap();
                ours.addrs.insert(TransportAddr::Relay(url.to_string()));
                theirs.push(iroh::TransportAddr::Relay(url));
            }
            1 => {
                let addr = SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(rng.random::<u32>()),
                    rng.random(),
                ));
                ours.addrs.insert(TransportAddr::Ip(addr));
                theirs.push(iroh::TransportAddr::Ip(addr));
            }
            2 => {
                let addr = SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(rng.random::<u128>()),
                    rng.random(),
                    0,
                    0,
                ));
                ours.addrs.insert(TransportAddr::Ip(addr));
                theirs.push(iroh::TransportAddr::Ip(addr));
            }
            _ => {
                let len = rng.random_range(0..40usize);
                let data: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                let id = rng.random_range(0..3u64);
                ours.addrs.insert(TransportAddr::Custom {
                    id,
                    data: data.clone(),
                });
                theirs.push(iroh::TransportAddr::Custom(
                    iroh_base::CustomAddr::from_parts(id, &data),
                ));
            }
        }
    }
    (ours, iroh::EndpointAddr::from_parts(id, theirs))
}
