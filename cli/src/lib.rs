//! `sheaf-cli`: the `sheaf` command-line tool.
//!
//! This crate will provide the `sheaf` binary (a demo, a long-running node and document
//! commands). It holds no functionality yet; see the README's status table.
