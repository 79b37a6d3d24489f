//! Content hashes and peer identifiers: the two 32-byte values Sheaf shares with iroh without
//! depending on it. The engine converts them to and from `iroh_blobs::Hash` and
//! `iroh::EndpointId`.

use std::{fmt, str::FromStr};

use crate::wire::codec::{Decode, DecodeError, Encode, Reader};

/// Error parsing a 32-byte value from hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The string is not 64 hex characters.
    #[error("expected 64 hex characters")]
    BadHex,
    /// The bytes are not a valid ed25519 public key.
    #[error("not a valid ed25519 public key")]
    InvalidKey,
}

/// Parses 64 hex characters (either case) into 32 bytes.
pub(crate) fn parse_hex32(s: &str) -> Result<[u8; 32], ParseError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|_| ParseError::BadHex)?;
    Ok(out)
}

/// Defines a `[u8; 32]` newtype with hex Display/FromStr, `fmt_short`, and raw 32-byte encoding.
macro_rules! bytes32 {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// The raw bytes, by value.
            pub const fn to_bytes(self) -> [u8; 32] {
                self.0
            }

            /// The first 10 hex characters, for logs.
            pub fn fmt_short(&self) -> String {
                hex::encode(&self.0[..5])
            }
        }

        impl From<[u8; 32]> for $name {
            fn from(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }
        }

        impl From<$name> for [u8; 32] {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.fmt_short())
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hex32(s).map(Self)
            }
        }

        impl Encode for $name {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.0);
            }
        }

        impl Decode for $name {
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                r.array().map(Self)
            }
        }
    };
}
pub(crate) use bytes32;

bytes32!(
    /// A BLAKE3 hash of entry content, identical to iroh-blobs' raw `Hash`.
    Hash
);

impl Hash {
    /// BLAKE3 of the empty string: the content hash of every tombstone.
    pub const EMPTY: Hash = Hash(*b"\xaf\x13\x49\xb9\xf5\xf9\xa1\xa6\xa0\x40\x4d\xea\x36\xdc\xc9\x49\x9b\xcb\x25\xc9\xad\xc1\x12\xb7\xcc\x9a\x93\xca\xe4\x1f\x32\x62");

    /// The BLAKE3 hash of `content`.
    pub fn new(content: impl AsRef<[u8]>) -> Self {
        Hash(*blake3::hash(content.as_ref()).as_bytes())
    }
}

bytes32!(
    /// A peer's identity: the 32-byte ed25519 public key that iroh calls `EndpointId`.
    ///
    /// The core never needs the point to be valid; places that must reject invalid keys on the
    /// wire (ticket node ids) check with [`PeerId::is_valid_key`].
    PeerId
);

impl PeerId {
    /// Whether the bytes decode to an ed25519 public key (as iroh's `PublicKey` requires).
    pub fn is_valid_key(&self) -> bool {
        ed25519_dalek::VerifyingKey::from_bytes(&self.0).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_hash_is_blake3_of_nothing() {
        assert_eq!(Hash::new(b""), Hash::EMPTY);
        assert_eq!(
            Hash::EMPTY.to_string(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn hex_round_trip_and_short_form() {
        let h = Hash::new(b"va");
        assert_eq!(h.to_string().parse::<Hash>().unwrap(), h);
        assert_eq!(h.to_string().to_uppercase().parse::<Hash>().unwrap(), h);
        assert_eq!(h.fmt_short(), "369bcc9aa5");
        assert_eq!("abc".parse::<Hash>(), Err(ParseError::BadHex));
        assert_eq!(format!("{h:?}"), "Hash(369bcc9aa5)");
    }
}
