//! serde for Sheaf's public data types, in iroh-docs 0.101's representations.
//!
//! Every type iroh-docs serializes has the same serde shape here, so that any serde format
//! gives the same output for a Sheaf value as for the equal iroh-docs value: postcard bytes
//! are identical (checked against the real crate by `sheaf-tests`' `serde_compat` suite), and
//! so is JSON. That means keeping iroh-docs' choices, including where they are uneven:
//!
//! | type | human-readable (JSON) | binary (postcard) |
//! |---|---|---|
//! | [`NamespaceId`], [`AuthorId`], [`Fingerprint`](crate::Fingerprint) | array of 32 numbers | 32 raw bytes |
//! | [`Hash`](struct@Hash) | 64-char lowercase hex string | 32 raw bytes |
//! | [`PeerId`] (iroh's `PublicKey`) | 64-char lowercase hex string | 32 raw bytes (must be a valid key) |
//! | [`Author`], [`NamespaceSecret`] | `{"signing_key": [32 numbers]}` | `varint(32) ‖ secret` |
//! | [`EntrySignature`](crate::EntrySignature) | two arrays of 64 numbers | 128 raw bytes |
//! | [`RecordIdentifier`], filter bytes | array of numbers | `varint(len) ‖ bytes` |
//! | [`TransportAddr::Ip`] | `"127.0.0.1:1234"` | std's `SocketAddr` encoding |
//!
//! Where iroh-docs' deserializer accepts something Sheaf's types cannot hold, Sheaf's refuses
//! it with an error instead: a record identifier shorter than 64 bytes (iroh-docs accepts it and
//! panics later), a peer id that is not an ed25519 point. Hashes and peer ids also parse from
//! unpadded base32 in human-readable formats, as iroh's do.
//!
//! Derived impls sit on the types themselves; this module holds the hand-written ones and the
//! field helpers they share.

use std::fmt;

use serde::{
    de::{self, SeqAccess, Visitor},
    ser::SerializeTuple,
    Deserialize, Deserializer, Serialize, Serializer,
};

use crate::{
    entry::RecordIdentifier,
    hash::{Hash, PeerId},
    keys::{Author, AuthorId, NamespaceId, NamespaceSecret},
    store::query::{KeyFilter, Query, QueryKind, SortBy, SortDirection},
    wire::TransportAddr,
};

/// Parses 32 bytes from 64 hex characters or from unpadded base32 (either case), as iroh's
/// `PublicKey` and iroh-blobs' `Hash` do in human-readable formats.
fn parse_hex_or_base32(s: &str) -> Result<[u8; 32], &'static str> {
    let mut out = [0u8; 32];
    if s.len() == 64 {
        hex::decode_to_slice(s, &mut out).map_err(|_| "invalid hex")?;
        return Ok(out);
    }
    let upper = s.to_ascii_uppercase();
    let encoding = data_encoding::BASE32_NOPAD;
    if encoding.decode_len(upper.len()) != Ok(32) {
        return Err("expected 64 hex or 52 base32 characters");
    }
    match encoding.decode_mut(upper.as_bytes(), &mut out) {
        Ok(32) => Ok(out),
        _ => Err("invalid base32"),
    }
}

/// Serializes 32 bytes as a hex string (human-readable) or as a 32-tuple (binary).
fn serialize_hex32<S: Serializer>(bytes: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
    if serializer.is_human_readable() {
        serializer.serialize_str(&hex::encode(bytes))
    } else {
        bytes.serialize(serializer)
    }
}

/// The inverse of [`serialize_hex32`].
fn deserialize_hex32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 32], D::Error> {
    if deserializer.is_human_readable() {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        parse_hex_or_base32(&s).map_err(de::Error::custom)
    } else {
        <[u8; 32]>::deserialize(deserializer)
    }
}

/// iroh-blobs' `Hash`: hex string when human-readable, 32 raw bytes otherwise.
impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_hex32(self.as_bytes(), serializer)
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_hex32(deserializer).map(Hash::from_bytes)
    }
}

/// iroh's `PublicKey` (`EndpointId`): hex string when human-readable, 32 raw bytes otherwise.
impl Serialize for PeerId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_hex32(self.as_bytes(), serializer)
    }
}

/// Refuses bytes that are not an ed25519 public key, as iroh's `PublicKey` does.
impl<'de> Deserialize<'de> for PeerId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = PeerId::from_bytes(deserialize_hex32(deserializer)?);
        if !id.is_valid_key() {
            return Err(de::Error::custom("not a valid ed25519 public key"));
        }
        Ok(id)
    }
}

/// A newtype struct over `[u8; 32]`, in every format (iroh-docs derives its ids this way).
macro_rules! newtype32 {
    ($name:ident) => {
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_newtype_struct(stringify!($name), self.as_bytes())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("a ", stringify!($name), " (32 bytes)"))
                    }
                    fn visit_newtype_struct<D: Deserializer<'de>>(
                        self,
                        d: D,
                    ) -> Result<Self::Value, D::Error> {
                        <[u8; 32]>::deserialize(d).map($name::from_bytes)
                    }
                    fn visit_seq<A: SeqAccess<'de>>(
                        self,
                        mut seq: A,
                    ) -> Result<Self::Value, A::Error> {
                        let bytes: [u8; 32] = seq
                            .next_element()?
                            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                        Ok($name::from_bytes(bytes))
                    }
                }
                deserializer.deserialize_newtype_struct(stringify!($name), V)
            }
        }
    };
}

newtype32!(NamespaceId);
newtype32!(AuthorId);

/// 32 secret bytes written with `serialize_bytes`, as ed25519-dalek's `SigningKey` does.
struct SecretBytes([u8; 32]);

impl Serialize for SecretBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SecretBytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an ed25519 secret key (32 bytes)")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                v.try_into()
                    .map(SecretBytes)
                    .map_err(|_| E::invalid_length(v.len(), &self))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = [0u8; 32];
                for (i, b) in out.iter_mut().enumerate() {
                    *b = seq
                        .next_element()?
                        .ok_or_else(|| de::Error::invalid_length(i, &self))?;
                }
                if seq.next_element::<u8>()?.is_some() {
                    return Err(de::Error::invalid_length(33, &self));
                }
                Ok(SecretBytes(out))
            }
        }
        deserializer.deserialize_bytes(V)
    }
}

/// iroh-docs' `Author` and `NamespaceSecret`: a struct with one field, `signing_key`.
macro_rules! secret_struct {
    ($name:ident, $rename:literal) => {
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                #[derive(Serialize)]
                #[serde(rename = $rename)]
                struct Repr {
                    signing_key: SecretBytes,
                }
                Repr {
                    signing_key: SecretBytes(self.to_bytes()),
                }
                .serialize(serializer)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                #[derive(Deserialize)]
                #[serde(rename = $rename)]
                struct Repr {
                    signing_key: SecretBytes,
                }
                let repr = Repr::deserialize(deserializer)?;
                Ok($name::from_bytes(&repr.signing_key.0))
            }
        }
    };
}

secret_struct!(Author, "Author");
secret_struct!(NamespaceSecret, "NamespaceSecret");

/// Field helper for ed25519 signatures: a 64-tuple of bytes, as iroh's `Signature`.
pub(crate) mod signature {
    use super::*;

    /// Serializes the signature's 64 bytes as a tuple.
    pub(crate) fn serialize<S: Serializer>(
        sig: &ed25519_dalek::Signature,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(64)?;
        for b in sig.to_bytes() {
            tuple.serialize_element(&b)?;
        }
        tuple.end()
    }

    /// Reads a 64-tuple of bytes.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<ed25519_dalek::Signature, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = [u8; 64];
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a signature (64 bytes)")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = [0u8; 64];
                for (i, b) in out.iter_mut().enumerate() {
                    *b = seq
                        .next_element()?
                        .ok_or_else(|| de::Error::invalid_length(i, &self))?;
                }
                Ok(out)
            }
        }
        let bytes = deserializer.deserialize_tuple(64, V)?;
        Ok(ed25519_dalek::Signature::from_bytes(&bytes))
    }
}

/// iroh's `CustomAddr`: `{ id, data }` with the data as bytes.
#[derive(Serialize, Deserialize)]
#[serde(rename = "CustomAddr")]
struct CustomAddrRepr {
    id: u64,
    data: bytes::Bytes,
}

/// iroh's `TransportAddr`: `Relay(RelayUrl)` (a URL string), `Ip(SocketAddr)`,
/// `Custom(CustomAddr)`.
impl Serialize for TransportAddr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// iroh's `RelayUrl`: a newtype over a URL, which serializes as its string.
        struct RelayUrl<'a>(&'a str);
        impl Serialize for RelayUrl<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_newtype_struct("RelayUrl", self.0)
            }
        }
        match self {
            TransportAddr::Relay(url) => {
                serializer.serialize_newtype_variant("TransportAddr", 0, "Relay", &RelayUrl(url))
            }
            TransportAddr::Ip(addr) => {
                serializer.serialize_newtype_variant("TransportAddr", 1, "Ip", addr)
            }
            TransportAddr::Custom { id, data } => serializer.serialize_newtype_variant(
                "TransportAddr",
                2,
                "Custom",
                &CustomAddrRepr {
                    id: *id,
                    data: bytes::Bytes::copy_from_slice(data),
                },
            ),
        }
    }
}

impl<'de> Deserialize<'de> for TransportAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename = "RelayUrl")]
        struct RelayUrl(String);
        #[derive(Deserialize)]
        #[serde(rename = "TransportAddr")]
        enum Repr {
            Relay(RelayUrl),
            Ip(std::net::SocketAddr),
            Custom(CustomAddrRepr),
        }
        Ok(match Repr::deserialize(deserializer)? {
            Repr::Relay(RelayUrl(url)) => TransportAddr::Relay(url),
            Repr::Ip(addr) => TransportAddr::Ip(addr),
            Repr::Custom(c) => TransportAddr::Custom {
                id: c.id,
                data: c.data.to_vec(),
            },
        })
    }
}

/// iroh-docs' `RecordIdentifier(Bytes)`: `varint(len) ‖ namespace ‖ author ‖ key`.
impl Serialize for RecordIdentifier {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct("RecordIdentifier", &self.to_bytes())
    }
}

/// Refuses identifiers shorter than 64 bytes (iroh-docs accepts them and panics later).
impl<'de> Deserialize<'de> for RecordIdentifier {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename = "RecordIdentifier")]
        struct Repr(bytes::Bytes);
        let Repr(bytes) = Repr::deserialize(deserializer)?;
        RecordIdentifier::from_bytes(bytes).map_err(de::Error::custom)
    }
}

/// iroh-docs' `AuthorFilter`.
#[derive(Serialize, Deserialize)]
#[serde(rename = "AuthorFilter")]
enum AuthorFilterRepr {
    Any,
    Exact(AuthorId),
}

/// iroh-docs' `FlatQuery`.
#[derive(Serialize, Deserialize)]
#[serde(rename = "FlatQuery")]
struct FlatQueryRepr {
    sort_by: SortBy,
}

/// iroh-docs' `SingleLatestPerKeyQuery` (a struct with no fields, not a unit struct).
#[derive(Serialize, Deserialize)]
#[serde(rename = "SingleLatestPerKeyQuery")]
struct LatestQueryRepr {}

/// iroh-docs' `QueryKind`.
#[derive(Serialize, Deserialize)]
#[serde(rename = "QueryKind")]
enum QueryKindRepr {
    Flat(FlatQueryRepr),
    SingleLatestPerKey(LatestQueryRepr),
}

/// iroh-docs' `Query`, field for field.
#[derive(Serialize, Deserialize)]
#[serde(rename = "Query")]
struct QueryRepr {
    kind: QueryKindRepr,
    filter_author: AuthorFilterRepr,
    filter_key: KeyFilter,
    limit: Option<u64>,
    offset: u64,
    include_empty: bool,
    sort_direction: SortDirection,
}

/// In iroh-docs' field order and naming: `kind`, `filter_author`, `filter_key`, `limit`,
/// `offset`, `include_empty`, `sort_direction`.
impl Serialize for Query {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        QueryRepr {
            kind: match self.kind {
                QueryKind::Flat(sort_by) => QueryKindRepr::Flat(FlatQueryRepr { sort_by }),
                QueryKind::SingleLatestPerKey => {
                    QueryKindRepr::SingleLatestPerKey(LatestQueryRepr {})
                }
            },
            filter_author: match self.author {
                None => AuthorFilterRepr::Any,
                Some(author) => AuthorFilterRepr::Exact(author),
            },
            filter_key: self.key.clone(),
            limit: self.limit,
            offset: self.offset,
            include_empty: self.include_empty,
            sort_direction: self.direction,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Query {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = QueryRepr::deserialize(deserializer)?;
        Ok(Query {
            kind: match repr.kind {
                QueryKindRepr::Flat(flat) => QueryKind::Flat(flat.sort_by),
                QueryKindRepr::SingleLatestPerKey(LatestQueryRepr {}) => {
                    QueryKind::SingleLatestPerKey
                }
            },
            author: match repr.filter_author {
                AuthorFilterRepr::Any => None,
                AuthorFilterRepr::Exact(author) => Some(author),
            },
            key: repr.filter_key,
            limit: repr.limit,
            offset: repr.offset,
            include_empty: repr.include_empty,
            direction: repr.sort_direction,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_or_base32() {
        let bytes = [0x5a; 32];
        let hex = hex::encode(bytes);
        let base32 = data_encoding::BASE32_NOPAD
            .encode(&bytes)
            .to_ascii_lowercase();
        assert_eq!(parse_hex_or_base32(&hex), Ok(bytes));
        assert_eq!(parse_hex_or_base32(&base32), Ok(bytes));
        assert!(parse_hex_or_base32("abc").is_err());
        assert!(parse_hex_or_base32(&"z".repeat(64)).is_err());
        assert!(parse_hex_or_base32(&"1".repeat(52)).is_err());
    }

    #[test]
    fn postcard_shapes() {
        let ns = NamespaceSecret::from_bytes(&[0xb2; 32]);
        let bytes = postcard::to_stdvec(&ns).unwrap();
        assert_eq!(bytes[0], 32);
        assert_eq!(&bytes[1..], &[0xb2; 32]);
        assert_eq!(postcard::from_bytes::<NamespaceSecret>(&bytes).unwrap(), ns);
        let id = ns.id();
        assert_eq!(postcard::to_stdvec(&id).unwrap(), id.as_bytes());
        assert_eq!(
            postcard::from_bytes::<NamespaceId>(id.as_bytes()).unwrap(),
            id
        );
        let q = Query::single_latest_per_key()
            .with_key_prefix(&b"a/"[..])
            .limit(3);
        let bytes = postcard::to_stdvec(&q).unwrap();
        assert_eq!(postcard::from_bytes::<Query>(&bytes).unwrap(), q);
        // A secret of the wrong length is an error, not a panic.
        assert!(postcard::from_bytes::<Author>(&[3, 1, 2, 3]).is_err());
        // A peer id that is not an ed25519 point is refused.
        let mut bad = [0u8; 32];
        bad[0] = 2;
        bad[31] = 0x80;
        assert!(!PeerId::from_bytes(bad).is_valid_key());
        assert!(postcard::from_bytes::<PeerId>(&bad).is_err());
    }
}
