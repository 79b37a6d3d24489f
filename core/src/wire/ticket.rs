//! Document tickets: a capability plus the addresses of peers to sync with, as a string.
//!
//! The string is `doc` followed by lowercase unpadded base32 of `00 ‖ Capability ‖
//! Vec<NodeAddr>`, identical to iroh-docs' `DocTicket` (the `00` is the one-variant wire-format
//! enum iroh-docs wraps tickets in). [`NodeAddr`] mirrors iroh's `EndpointAddr` byte for byte,
//! including the order of its address set, without depending on iroh; the engine converts.

use std::{
    cmp::Ordering,
    collections::BTreeSet,
    fmt,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6},
    str::FromStr,
};

use crate::{
    hash::PeerId,
    keys::Capability,
    wire::codec::{put_bytes, put_u64, Decode, DecodeError, Encode, Reader},
};

/// Prefix of every document ticket string.
pub const TICKET_PREFIX: &str = "doc";

/// One way to reach a peer. Ordered like iroh's `TransportAddr` (relays, then IP, then custom).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransportAddr {
    /// A relay server URL, carried verbatim (iroh writes its normalised form).
    Relay(String),
    /// A direct UDP address.
    Ip(SocketAddr),
    /// An address of a custom transport.
    Custom {
        /// Transport id.
        id: u64,
        /// Opaque address bytes.
        data: Vec<u8>,
    },
}

impl TransportAddr {
    fn rank(&self) -> u8 {
        match self {
            TransportAddr::Relay(_) => 0,
            TransportAddr::Ip(_) => 1,
            TransportAddr::Custom { .. } => 2,
        }
    }
}

/// iroh stores custom address data of up to 30 bytes inline (ordered by length, then the
/// zero-padded bytes) and longer data on the heap (ordered after every inline one).
fn custom_data_cmp(a: &[u8], b: &[u8]) -> Ordering {
    fn key(d: &[u8]) -> (bool, usize, [u8; 30], &[u8]) {
        if d.len() <= 30 {
            let mut inline = [0u8; 30];
            inline[..d.len()].copy_from_slice(d);
            (false, d.len(), inline, &[])
        } else {
            (true, 0, [0; 30], d)
        }
    }
    key(a).cmp(&key(b))
}

impl Ord for TransportAddr {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (TransportAddr::Relay(a), TransportAddr::Relay(b)) => a.cmp(b),
            (TransportAddr::Ip(a), TransportAddr::Ip(b)) => a.cmp(b),
            (
                TransportAddr::Custom { id: ia, data: da },
                TransportAddr::Custom { id: ib, data: db },
            ) => ia.cmp(ib).then_with(|| custom_data_cmp(da, db)),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for TransportAddr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Encode for TransportAddr {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            TransportAddr::Relay(url) => {
                out.push(0);
                put_bytes(out, url.as_bytes());
            }
            TransportAddr::Ip(addr) => {
                out.push(1);
                match addr {
                    SocketAddr::V4(a) => {
                        out.push(0);
                        out.extend_from_slice(&a.ip().octets());
                        put_u64(out, u64::from(a.port()));
                    }
                    SocketAddr::V6(a) => {
                        out.push(1);
                        out.extend_from_slice(&a.ip().octets());
                        put_u64(out, u64::from(a.port()));
                    }
                }
            }
            TransportAddr::Custom { id, data } => {
                out.push(2);
                put_u64(out, *id);
                put_bytes(out, data);
            }
        }
    }
}

impl Decode for TransportAddr {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u32()? {
            0 => {
                let url = std::str::from_utf8(r.bytes()?).map_err(|_| DecodeError::InvalidUtf8)?;
                Ok(TransportAddr::Relay(url.to_owned()))
            }
            1 => {
                let addr = match r.u32()? {
                    0 => {
                        let ip = Ipv4Addr::from(r.array::<4>()?);
                        SocketAddr::V4(SocketAddrV4::new(ip, r.u16()?))
                    }
                    1 => {
                        let ip = Ipv6Addr::from(r.array::<16>()?);
                        SocketAddr::V6(SocketAddrV6::new(ip, r.u16()?, 0, 0))
                    }
                    tag => {
                        return Err(DecodeError::UnknownVariant {
                            ty: "SocketAddr",
                            tag,
                        })
                    }
                };
                Ok(TransportAddr::Ip(addr))
            }
            2 => {
                let id = r.u64()?;
                let data = r.bytes()?.to_vec();
                Ok(TransportAddr::Custom { id, data })
            }
            tag => Err(DecodeError::UnknownVariant {
                ty: "TransportAddr",
                tag,
            }),
        }
    }
}

/// A peer and the addresses it can be reached at (iroh's `EndpointAddr`).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct NodeAddr {
    /// The peer's id.
    pub id: PeerId,
    /// Its addresses.
    pub addrs: BTreeSet<TransportAddr>,
}

impl NodeAddr {
    /// A peer with no known addresses.
    pub fn new(id: PeerId) -> Self {
        Self {
            id,
            addrs: BTreeSet::new(),
        }
    }

    /// Adds direct IP addresses.
    pub fn with_ip_addrs(mut self, addrs: impl IntoIterator<Item = SocketAddr>) -> Self {
        self.addrs.extend(addrs.into_iter().map(TransportAddr::Ip));
        self
    }

    /// The direct IP addresses.
    pub fn ip_addrs(&self) -> impl Iterator<Item = &SocketAddr> {
        self.addrs.iter().filter_map(|a| match a {
            TransportAddr::Ip(addr) => Some(addr),
            _ => None,
        })
    }
}

impl Encode for NodeAddr {
    fn encode(&self, out: &mut Vec<u8>) {
        self.id.encode(out);
        put_u64(out, self.addrs.len() as u64);
        for addr in &self.addrs {
            addr.encode(out);
        }
    }
}

impl Decode for NodeAddr {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id = PeerId::decode(r)?;
        if !id.is_valid_key() {
            return Err(DecodeError::InvalidPublicKey("node id"));
        }
        // Smallest address: tag + empty relay string.
        let n = r.len_prefix(2)?;
        let mut addrs = BTreeSet::new();
        for _ in 0..n {
            addrs.insert(TransportAddr::decode(r)?);
        }
        Ok(Self { id, addrs })
    }
}

/// Why a ticket string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// The string does not start with `doc`.
    #[error("ticket does not start with \"doc\"")]
    Kind,
    /// The rest is not unpadded base32.
    #[error("ticket is not valid base32")]
    Base32,
    /// The bytes do not decode.
    #[error("ticket bytes: {0}")]
    Decode(#[from] DecodeError),
    /// The ticket names no peer to sync with.
    #[error("ticket has no nodes")]
    NoNodes,
}

/// A capability for a document and peers to sync it with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DocTicket {
    /// Read or write access.
    pub capability: Capability,
    /// Peers to contact; never empty in a parsed ticket.
    pub nodes: Vec<NodeAddr>,
}

impl DocTicket {
    /// A ticket from its parts.
    pub fn new(capability: Capability, nodes: Vec<NodeAddr>) -> Self {
        Self { capability, nodes }
    }

    /// The ticket's bytes (before base32).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0];
        self.capability.encode(&mut out);
        put_u64(&mut out, self.nodes.len() as u64);
        for node in &self.nodes {
            node.encode(&mut out);
        }
        out
    }

    /// Parses the ticket's bytes; rejects trailing bytes and an empty node list.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TicketError> {
        let mut r = Reader::new(bytes);
        match r.u32()? {
            0 => {}
            tag => {
                return Err(DecodeError::UnknownVariant {
                    ty: "DocTicket",
                    tag,
                }
                .into())
            }
        }
        let capability = Capability::decode(&mut r)?;
        // Smallest node: 32-byte id + empty address set.
        let nodes = r.seq::<NodeAddr>(33)?;
        r.finish()?;
        if nodes.is_empty() {
            return Err(TicketError::NoNodes);
        }
        Ok(Self { capability, nodes })
    }
}

impl fmt::Display for DocTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = TICKET_PREFIX.to_owned();
        data_encoding::BASE32_NOPAD.encode_append(&self.to_bytes(), &mut out);
        out.make_ascii_lowercase();
        f.write_str(&out)
    }
}

impl FromStr for DocTicket {
    type Err = TicketError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.strip_prefix(TICKET_PREFIX).ok_or(TicketError::Kind)?;
        let bytes = data_encoding::BASE32_NOPAD
            .decode(rest.to_ascii_uppercase().as_bytes())
            .map_err(|_| TicketError::Base32)?;
        Self::from_bytes(&bytes)
    }
}
