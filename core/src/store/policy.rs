//! Download policies: which entries' content a node fetches. Local only, never on the wire.

use std::{fmt, str::FromStr};

use bytes::Bytes;

use crate::wire::codec::{put_bytes, put_u64, Decode, DecodeError, Encode, Reader};

/// A key filter of a [`DownloadPolicy`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum FilterKind {
    /// Keys starting with these bytes.
    Prefix(Bytes),
    /// Exactly this key.
    Exact(Bytes),
}

impl FilterKind {
    /// Whether `key` matches.
    pub fn matches(&self, key: &[u8]) -> bool {
        match self {
            FilterKind::Prefix(p) => key.starts_with(p),
            FilterKind::Exact(e) => key == e.as_ref(),
        }
    }
}

/// `prefix:utf8:memes/` or `exact:hex:00ff`, as iroh-docs prints filters.
impl fmt::Display for FilterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, bytes) = match self {
            FilterKind::Prefix(b) => ("prefix", b),
            FilterKind::Exact(b) => ("exact", b),
        };
        match std::str::from_utf8(bytes) {
            Ok(s) => write!(f, "{kind}:utf8:{s}"),
            Err(_) => write!(f, "{kind}:hex:{}", hex::encode(bytes)),
        }
    }
}

/// Error parsing a [`FilterKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterParseError {
    /// Not `prefix` or `exact`.
    #[error("expected filter kind \"prefix:\" or \"exact:\"")]
    Kind,
    /// Not `utf8` or `hex`.
    #[error("expected encoding \"utf8:\" or \"hex:\"")]
    Encoding,
    /// Bad hex.
    #[error("invalid hex")]
    Hex,
}

impl FromStr for FilterKind {
    type Err = FilterParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, rest) = s.split_once(':').ok_or(FilterParseError::Kind)?;
        let (encoding, value) = rest.split_once(':').ok_or(FilterParseError::Encoding)?;
        let bytes: Bytes = match encoding {
            "utf8" => Bytes::copy_from_slice(value.as_bytes()),
            "hex" => hex::decode(value)
                .map_err(|_| FilterParseError::Hex)?
                .into(),
            _ => return Err(FilterParseError::Encoding),
        };
        match kind {
            "prefix" => Ok(FilterKind::Prefix(bytes)),
            "exact" => Ok(FilterKind::Exact(bytes)),
            _ => Err(FilterParseError::Kind),
        }
    }
}

/// Which entries' content to download.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DownloadPolicy {
    /// Only keys matching one of the filters.
    NothingExcept(Vec<FilterKind>),
    /// All keys except those matching one of the filters.
    EverythingExcept(Vec<FilterKind>),
}

impl Default for DownloadPolicy {
    /// Download everything.
    fn default() -> Self {
        DownloadPolicy::EverythingExcept(Vec::new())
    }
}

impl DownloadPolicy {
    /// Whether the content of `key` should be downloaded.
    pub fn matches(&self, key: &[u8]) -> bool {
        match self {
            DownloadPolicy::NothingExcept(f) => f.iter().any(|f| f.matches(key)),
            DownloadPolicy::EverythingExcept(f) => !f.iter().any(|f| f.matches(key)),
        }
    }
}

impl Encode for FilterKind {
    fn encode(&self, out: &mut Vec<u8>) {
        let (tag, bytes) = match self {
            FilterKind::Prefix(b) => (0, b),
            FilterKind::Exact(b) => (1, b),
        };
        out.push(tag);
        put_bytes(out, bytes);
    }
}

impl Decode for FilterKind {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u32()? {
            0 => Ok(FilterKind::Prefix(Bytes::copy_from_slice(r.bytes()?))),
            1 => Ok(FilterKind::Exact(Bytes::copy_from_slice(r.bytes()?))),
            tag => Err(DecodeError::UnknownVariant {
                ty: "FilterKind",
                tag,
            }),
        }
    }
}

/// postcard layout of iroh-docs' `DownloadPolicy` (how it is stored).
impl Encode for DownloadPolicy {
    fn encode(&self, out: &mut Vec<u8>) {
        let (tag, filters) = match self {
            DownloadPolicy::NothingExcept(f) => (0, f),
            DownloadPolicy::EverythingExcept(f) => (1, f),
        };
        out.push(tag);
        put_u64(out, filters.len() as u64);
        for f in filters {
            f.encode(out);
        }
    }
}

impl Decode for DownloadPolicy {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = r.u32()?;
        let filters = r.seq::<FilterKind>(2)?;
        match tag {
            0 => Ok(DownloadPolicy::NothingExcept(filters)),
            1 => Ok(DownloadPolicy::EverythingExcept(filters)),
            tag => Err(DecodeError::UnknownVariant {
                ty: "DownloadPolicy",
                tag,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_and_text_form() {
        let p = DownloadPolicy::NothingExcept(vec!["prefix:utf8:memes/".parse().unwrap()]);
        assert!(p.matches(b"memes/cat"));
        assert!(!p.matches(b"docs/x"));
        let e =
            DownloadPolicy::EverythingExcept(vec![FilterKind::Exact(Bytes::from_static(b"big"))]);
        assert!(!e.matches(b"big"));
        assert!(e.matches(b"bigger"));
        assert!(DownloadPolicy::default().matches(b"anything"));
        let hex: FilterKind = "exact:hex:00ff".parse().unwrap();
        assert_eq!(hex, FilterKind::Exact(Bytes::from_static(&[0, 0xff])));
        assert_eq!(hex.to_string(), "exact:hex:00ff");
        assert_eq!(
            "nope:utf8:x".parse::<FilterKind>(),
            Err(FilterParseError::Kind)
        );
        assert_eq!(
            "prefix:b64:x".parse::<FilterKind>(),
            Err(FilterParseError::Encoding)
        );
        for p in [p, e, DownloadPolicy::default()] {
            assert_eq!(DownloadPolicy::from_wire(&p.to_wire()).unwrap(), p);
        }
    }
}
