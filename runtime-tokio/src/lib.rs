//! `sheaf-tokio`: Sheaf on the tokio runtime.
//!
//! This crate will implement the engine's runtime trait for tokio and re-export the engine's
//! API with the runtime fixed. It holds no functionality yet; see the README's status table.
