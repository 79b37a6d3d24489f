//! `sheaf-smol`: Sheaf on the smol runtime.
//!
//! This crate will implement the engine's runtime trait for smol (providing the tokio reactor
//! that iroh needs) and re-export the engine's API. It holds no functionality yet; see the
//! README's status table.
