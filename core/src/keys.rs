//! Namespace and author keys, and the capability a node holds for a namespace.
//!
//! A namespace (document) is an ed25519 key pair: its public key is the [`NamespaceId`], and
//! whoever holds the [`NamespaceSecret`] may write. An [`Author`] is a second key pair that every
//! entry is also signed with, so that writers can be told apart. Ids print as lowercase hex of
//! their 32 bytes, exactly like iroh-docs. Keys are generated from an rng the caller passes in:
//! the core never touches OS randomness.

use std::{fmt, str::FromStr};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRng;

use crate::{
    hash::{bytes32, parse_hex32, ParseError},
    wire::codec::{put_bytes, Decode, DecodeError, Encode, Reader},
};

bytes32!(
    /// The public identity of a namespace (document): its ed25519 public key.
    NamespaceId
);

bytes32!(
    /// The public identity of an author: its ed25519 public key.
    AuthorId
);

impl NamespaceId {
    /// The verifying key, if the bytes are a valid ed25519 point.
    pub fn verifying_key(&self) -> Result<VerifyingKey, ParseError> {
        VerifyingKey::from_bytes(self.as_bytes()).map_err(|_| ParseError::InvalidKey)
    }
}

impl AuthorId {
    /// The verifying key, if the bytes are a valid ed25519 point.
    pub fn verifying_key(&self) -> Result<VerifyingKey, ParseError> {
        VerifyingKey::from_bytes(self.as_bytes()).map_err(|_| ParseError::InvalidKey)
    }
}

/// Defines a secret-key wrapper with generation, hex Display/FromStr and postcard encoding.
macro_rules! secret {
    ($(#[$meta:meta])* $name:ident, $id:ident) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name {
            key: SigningKey,
        }

        impl $name {
            /// A fresh key from the caller's rng.
            pub fn new<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
                let mut bytes = [0u8; 32];
                rng.fill_bytes(&mut bytes);
                Self::from_bytes(&bytes)
            }

            /// The key with this 32-byte secret.
            pub fn from_bytes(bytes: &[u8; 32]) -> Self {
                Self { key: SigningKey::from_bytes(bytes) }
            }

            /// The 32-byte secret.
            pub fn to_bytes(&self) -> [u8; 32] {
                self.key.to_bytes()
            }

            /// The public id.
            pub fn id(&self) -> $id {
                $id::from_bytes(self.key.verifying_key().to_bytes())
            }

            /// Signs `msg` (plain RFC 8032 ed25519).
            pub fn sign(&self, msg: &[u8]) -> Signature {
                self.key.sign(msg)
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.key.to_bytes() == other.key.to_bytes()
            }
        }

        impl Eq for $name {}

        /// Lowercase hex of the secret, as iroh-docs prints it (for export and import).
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.key.to_bytes()))
            }
        }

        /// Shows the public id only: secrets stay out of logs.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.id().fmt_short())
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hex32(s).map(|b| Self::from_bytes(&b))
            }
        }

        /// postcard: `varint(32) ‖ secret`, like ed25519-dalek's serde.
        impl Encode for $name {
            fn encode(&self, out: &mut Vec<u8>) {
                put_bytes(out, &self.key.to_bytes());
            }
        }

        impl Decode for $name {
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                let bytes: [u8; 32] = r
                    .bytes()?
                    .try_into()
                    .map_err(|_| DecodeError::Invalid("secret key must be 32 bytes"))?;
                Ok(Self::from_bytes(&bytes))
            }
        }
    };
}

secret!(
    /// The secret key of a namespace: whoever holds it may write to the document.
    NamespaceSecret,
    NamespaceId
);

secret!(
    /// The secret key of an author; every entry carries this author's signature.
    Author,
    AuthorId
);

/// What a node may do in a namespace, as carried in tickets and stored per document.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Capability {
    /// Holding the secret: may read and write.
    Write(NamespaceSecret),
    /// Knowing the id: may read (sync) but not write.
    Read(NamespaceId),
}

/// The kind of a [`Capability`], without key material.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum CapabilityKind {
    /// See [`Capability::Write`].
    Write,
    /// See [`Capability::Read`].
    Read,
}

impl CapabilityKind {
    /// The byte iroh-docs stores for this kind (Write = 1, Read = 2).
    pub fn to_u8(self) -> u8 {
        match self {
            CapabilityKind::Write => 1,
            CapabilityKind::Read => 2,
        }
    }

    /// The kind for a stored byte.
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(CapabilityKind::Write),
            2 => Some(CapabilityKind::Read),
            _ => None,
        }
    }
}

impl fmt::Display for CapabilityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CapabilityKind::Write => "write",
            CapabilityKind::Read => "read",
        })
    }
}

/// Error merging two capabilities.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    /// The capabilities are for different namespaces.
    #[error("capabilities are for different namespaces")]
    NamespaceMismatch,
}

impl Capability {
    /// The namespace this capability is for.
    pub fn id(&self) -> NamespaceId {
        match self {
            Capability::Write(secret) => secret.id(),
            Capability::Read(id) => *id,
        }
    }

    /// The kind.
    pub fn kind(&self) -> CapabilityKind {
        match self {
            Capability::Write(_) => CapabilityKind::Write,
            Capability::Read(_) => CapabilityKind::Read,
        }
    }

    /// The namespace secret, if this is a write capability.
    pub fn secret(&self) -> Option<&NamespaceSecret> {
        match self {
            Capability::Write(secret) => Some(secret),
            Capability::Read(_) => None,
        }
    }

    /// The stored form: `(kind byte, secret or id)`.
    pub fn raw(&self) -> (u8, [u8; 32]) {
        match self {
            Capability::Write(secret) => (CapabilityKind::Write.to_u8(), secret.to_bytes()),
            Capability::Read(id) => (CapabilityKind::Read.to_u8(), id.to_bytes()),
        }
    }

    /// Rebuilds a capability from [`Capability::raw`]; `None` for an unknown kind byte.
    pub fn from_raw(kind: u8, bytes: &[u8; 32]) -> Option<Self> {
        match CapabilityKind::from_u8(kind)? {
            CapabilityKind::Write => Some(Capability::Write(NamespaceSecret::from_bytes(bytes))),
            CapabilityKind::Read => Some(Capability::Read(NamespaceId::from_bytes(*bytes))),
        }
    }

    /// Merges `other` into `self`: a write capability upgrades a read one. Returns whether
    /// `self` changed.
    pub fn merge(&mut self, other: Capability) -> Result<bool, CapabilityError> {
        if self.id() != other.id() {
            return Err(CapabilityError::NamespaceMismatch);
        }
        if matches!(self, Capability::Read(_)) && matches!(other, Capability::Write(_)) {
            *self = other;
            return Ok(true);
        }
        Ok(false)
    }
}

impl fmt::Debug for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Capability::{:?}({})",
            self.kind(),
            self.id().fmt_short()
        )
    }
}

/// postcard: tag `0` + secret for Write, tag `1` + id for Read.
impl Encode for Capability {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Capability::Write(secret) => {
                out.push(0);
                secret.encode(out);
            }
            Capability::Read(id) => {
                out.push(1);
                id.encode(out);
            }
        }
    }
}

impl Decode for Capability {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u32()? {
            0 => Ok(Capability::Write(NamespaceSecret::decode(r)?)),
            1 => Ok(Capability::Read(NamespaceId::decode(r)?)),
            tag => Err(DecodeError::UnknownVariant {
                ty: "Capability",
                tag,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS_SECRET: [u8; 32] = [0xb2; 32];
    const NS_ID: &str = "55154f42065ea5a1bea05463826be2684eb92df92c100027aabaae57ca554207";
    const AUTHOR_ID: &str = "bc7cbcb5636375fa1d82434d466724d92377f53b980695dd49d26d0ce12205a5";

    #[test]
    fn golden_public_keys() {
        assert_eq!(
            NamespaceSecret::from_bytes(&NS_SECRET).id().to_string(),
            NS_ID
        );
        assert_eq!(Author::from_bytes(&[0xa1; 32]).id().to_string(), AUTHOR_ID);
        assert_eq!(
            NamespaceSecret::from_bytes(&NS_SECRET).id().fmt_short(),
            &NS_ID[..10]
        );
    }

    #[test]
    fn capability_golden_bytes() {
        let secret = NamespaceSecret::from_bytes(&NS_SECRET);
        let mut expected = vec![0x00, 0x20];
        expected.extend_from_slice(&NS_SECRET);
        assert_eq!(Capability::Write(secret.clone()).to_wire(), expected);
        let read = Capability::Read(secret.id()).to_wire();
        assert_eq!(hex::encode(&read), format!("01{NS_ID}"));
        assert_eq!(
            Capability::from_wire(&read).unwrap(),
            Capability::Read(secret.id())
        );
        assert_eq!(
            Capability::from_wire(&[7]),
            Err(DecodeError::UnknownVariant {
                ty: "Capability",
                tag: 7
            })
        );
        assert_eq!(
            Capability::from_wire(&[0, 3, 1, 2, 3]),
            Err(DecodeError::Invalid("secret key must be 32 bytes"))
        );
    }

    #[test]
    fn merge_upgrades_read_to_write_only() {
        let secret = NamespaceSecret::from_bytes(&NS_SECRET);
        let mut cap = Capability::Read(secret.id());
        assert_eq!(cap.merge(Capability::Read(secret.id())), Ok(false));
        assert_eq!(cap.merge(Capability::Write(secret.clone())), Ok(true));
        assert_eq!(cap.kind(), CapabilityKind::Write);
        assert_eq!(cap.merge(Capability::Read(secret.id())), Ok(false));
        assert_eq!(cap.kind(), CapabilityKind::Write);
        let other = NamespaceSecret::from_bytes(&[1; 32]);
        assert_eq!(
            cap.merge(Capability::Write(other)),
            Err(CapabilityError::NamespaceMismatch)
        );
        let (kind, bytes) = cap.raw();
        assert_eq!(Capability::from_raw(kind, &bytes), Some(cap));
        assert_eq!(Capability::from_raw(9, &bytes), None);
    }

    #[test]
    fn secrets_print_as_hex_and_parse_back() {
        let author = Author::from_bytes(&[0xa1; 32]);
        let s = author.to_string();
        assert_eq!(s, "a1".repeat(32));
        assert_eq!(s.parse::<Author>().unwrap(), author);
        assert!(!format!("{author:?}").contains(&s));
        assert_eq!(AUTHOR_ID.parse::<AuthorId>().unwrap(), author.id());
    }

    #[test]
    fn generation_uses_the_given_rng() {
        use rand_chacha::rand_core::SeedableRng;
        let mut a = rand_chacha::ChaCha12Rng::from_seed([7; 32]);
        let mut b = rand_chacha::ChaCha12Rng::from_seed([7; 32]);
        assert_eq!(Author::new(&mut a), Author::new(&mut b));
        assert_ne!(Author::new(&mut a), Author::new(&mut a));
    }
}
