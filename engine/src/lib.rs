//! `sheaf`: the runtime-generic Sheaf node.
//!
//! This crate will wire `sheaf-core`'s state machines to real iroh connections, iroh-gossip,
//! iroh-blobs and a redb store, behind an API that mirrors iroh-docs (`Docs`, `Doc`,
//! `DocTicket`). It holds no functionality yet; see the README's status table.
