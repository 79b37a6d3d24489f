//! Per-connection keys and the keyed tags that stand for documents in phase 1.
//!
//! Phase 1 must let two peers find the documents they share, and which of those differ,
//! without telling either about a document whose id it does not already hold. Namespace ids
//! are ed25519 public keys: 32 unguessable bytes. So the dialer sends, per document, a *tag*
//! keyed with a key fresh to the connection, [`ConnectionKey`]: a peer can compute the tag of a
//! namespace only if it knows the namespace id, and a tag for an id it does not know is, to
//! it, a random string. Keying per connection (a nonce the dialer draws, bound to both
//! endpoint ids) means tags cannot be linked across connections or replayed to a third node.
//!
//! Tags flow only from the dialer (who chose the nonce) to the acceptor, so a dialer that
//! reuses a nonce harms only its own unlinkability; the acceptor never sends its tags.

use crate::{hash::PeerId, keys::NamespaceId, v2::fingerprint::Fingerprint};

/// BLAKE3 `derive_key` context of [`ConnectionKey::derive`].
pub const CONNECTION_KEY_CONTEXT: &str = "sheaf-sync/2 connection key";
/// BLAKE3 `derive_key` context of [`ConnectionKey::riblt_key`].
pub const RIBLT_KEY_CONTEXT: &str = "sheaf-sync/2 riblt key";

/// Length of a [`NamespaceTag`].
pub const NAMESPACE_TAG_LEN: usize = 16;

/// A 16-byte keyed tag standing for a namespace on one connection.
pub type NamespaceTag = [u8; NAMESPACE_TAG_LEN];

/// The secret every keyed value of one v2 connection derives from.
///
/// `key = BLAKE3-derive_key("sheaf-sync/2 connection key",
///        dialer_nonce(32) ‖ dialer_id(32) ‖ acceptor_id(32))`.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionKey([u8; 32]);

impl std::fmt::Debug for ConnectionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionKey(..)")
    }
}

impl ConnectionKey {
    /// Derives the key of a connection from the dialer's `Hello` nonce and the two endpoints.
    pub fn derive(dialer_nonce: &[u8; 32], dialer: &PeerId, acceptor: &PeerId) -> Self {
        let mut material = [0u8; 96];
        material[..32].copy_from_slice(dialer_nonce);
        material[32..64].copy_from_slice(dialer.as_bytes());
        material[64..].copy_from_slice(acceptor.as_bytes());
        Self(blake3::derive_key(CONNECTION_KEY_CONTEXT, &material))
    }

    /// The raw key (for golden vectors and tests).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The namespace tag: `keyed_hash(key, 0x00 ‖ namespace)[..16]`.
    pub fn namespace_tag(&self, namespace: &NamespaceId) -> NamespaceTag {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        h.update(&[0x00]);
        h.update(namespace.as_bytes());
        let mut out = [0u8; NAMESPACE_TAG_LEN];
        out.copy_from_slice(&h.finalize().as_bytes()[..NAMESPACE_TAG_LEN]);
        out
    }

    /// The state tag of a document: `keyed_hash(key, 0x01 ‖ namespace ‖ sum(32) ‖ count
    /// u64be)[..16]`, which only a holder of the namespace id can compare with its own.
    pub fn state_tag(&self, namespace: &NamespaceId, fingerprint: &Fingerprint) -> [u8; 16] {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        h.update(&[0x01]);
        h.update(namespace.as_bytes());
        h.update(&fingerprint.sum());
        h.update(&fingerprint.count().to_be_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&h.finalize().as_bytes()[..16]);
        out
    }

    /// The phase-1 item of a document: `namespace_tag ‖ state_tag` (32 bytes). Two peers'
    /// items for a namespace are equal exactly when both hold it with equal fingerprints.
    pub fn document_item(&self, namespace: &NamespaceId, fingerprint: &Fingerprint) -> [u8; 32] {
        let mut out = [0u8; 32];
        out[..16].copy_from_slice(&self.namespace_tag(namespace));
        out[16..].copy_from_slice(&self.state_tag(namespace, fingerprint));
        out
    }

    /// The key of the connection's rateless IBLT hashing (both phases):
    /// `BLAKE3-derive_key("sheaf-sync/2 riblt key", key)`.
    pub fn riblt_key(&self) -> [u8; 32] {
        blake3::derive_key(RIBLT_KEY_CONTEXT, &self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_depend_on_everything_keyed() {
        let (d, a) = (PeerId::from_bytes([1; 32]), PeerId::from_bytes([2; 32]));
        let k = ConnectionKey::derive(&[9; 32], &d, &a);
        let ns = NamespaceId::from([5; 32]);
        let fp = Fingerprint::from_parts([7; 32], 3);
        assert_ne!(k, ConnectionKey::derive(&[8; 32], &d, &a), "nonce");
        assert_ne!(k, ConnectionKey::derive(&[9; 32], &a, &d), "roles");
        let item = k.document_item(&ns, &fp);
        assert_eq!(item[..16], k.namespace_tag(&ns));
        assert_ne!(
            item,
            k.document_item(&ns, &Fingerprint::from_parts([7; 32], 4))
        );
        assert_ne!(
            k.namespace_tag(&ns),
            ConnectionKey::derive(&[8; 32], &d, &a).namespace_tag(&ns)
        );
        assert_ne!(k.riblt_key(), *k.as_bytes());
    }
}
