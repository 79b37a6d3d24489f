//! `sheaf-cli`: the `sheaf` command-line tool.
//!
//! `sheaf demo` runs three nodes in one process and shows a document converging;
//! `sheaf serve` runs a persistent node; `sheaf doc ...` and `sheaf author ...` work on the
//! documents and authors of a data directory.
//!
//! # One writer per data directory
//!
//! A data directory (`--data DIR`, else `$SHEAF_DATA`, else the platform's data directory)
//! holds the node's secret key (`node.key`, so its node id is stable), the blob store
//! (`blobs/`), the document store (`docs/docs.redb`) and the list of documents to keep
//! syncing (`sync.json`). Only one process may open it at a time: whoever opens the stores
//! first takes an exclusive lock on `sheaf.lock` (the operating system's advisory file
//! lock, released when the process ends, also on a crash) and writes its pid into it. A
//! second `sheaf serve` fails with `another sheaf node is already serving DIR`.
//!
//! # The control channel
//!
//! While `sheaf serve` runs, the other commands must not open the store, so they talk to
//! the serving node over a Unix domain socket, `DIR/control.sock`: one connection per
//! command, a request as one line of JSON, and the answer as lines of JSON — progress and
//! event lines, then one final result or error line. `doc watch` keeps its connection open
//! and receives events until it disconnects. The socket lives in the data directory, so it
//! is as private as the directory itself.
//!
//! When no node answers on the socket, a command takes the lock itself, runs a short-lived
//! node bound to `127.0.0.1:0` (or `0.0.0.0:0` for `doc join`, which has to reach the
//! ticket's peers), does its work and shuts the node down cleanly, flushing the store. If
//! the lock is held but nobody answers on the socket (another command is running, or a node
//! is starting), the command retries for a few seconds and then fails with one line.
//!
//! A node (served or short-lived) re-syncs every document with every peer it knows every
//! [`node::ANTI_ENTROPY`]; the demo's nodes do so every 2 seconds.
//!
//! On platforms without Unix domain sockets there is no control channel: commands always
//! open the store themselves, and therefore fail while `sheaf serve` runs.
//!
//! # Output
//!
//! Human-readable by default; with `--json`, one JSON object per line. Progress bars are
//! drawn on stderr, only when stderr is a terminal and `--json` is off. Keys are bytes: they
//! are given as text or hex and printed escaped or as hex, see [`keys`].

pub mod args;
pub mod commands;
pub mod control;
pub mod demo;
pub mod folder;
pub mod keys;
pub mod net;
pub mod node;
pub mod output;
pub mod serve;
pub mod status;

use std::path::PathBuf;

/// The workspace README, compiled and run as documentation tests so its examples stay true.
/// Only under `cfg(doctest)`: the file lies outside this crate's package.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// Why a command failed. Every message is one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The data directory cannot be created or used.
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// No data directory was given and the platform has none.
    #[error("no data directory: pass --data DIR or set SHEAF_DATA")]
    NoDataDir,
    /// A `sheaf serve` already runs on this data directory.
    #[error("another sheaf node is already serving {0}")]
    AlreadyServing(String),
    /// Another process holds the store but does not answer on the control socket.
    #[error("the store in {0} is in use by {1}, which does not answer on its control socket")]
    Busy(String, String),
    /// `serve` found the store held by a short-lived command.
    #[error("the store in {0} is in use by a sheaf command{1}; try again when it has finished")]
    InUse(String, String),
    /// A ticket did not parse.
    #[error("invalid ticket: {0}")]
    Ticket(String),
    /// A document id did not parse.
    #[error("invalid document id {0:?}: {1}")]
    DocId(String, String),
    /// An author id did not parse.
    #[error("invalid author id {0:?}: {1}")]
    AuthorId(String, String),
    /// The document is not in the store.
    #[error("unknown document {0}")]
    UnknownDoc(String),
    /// No entry at that key (escaped and quoted, see [`keys::quoted`]).
    #[error("no entry at key {0}")]
    NoEntry(String),
    /// The content of an entry (key escaped and quoted) is not (yet) in the blob store.
    #[error("the content of {0} has not been downloaded yet")]
    NoContent(String),
    /// The node's socket could not be bound.
    #[error("cannot bind {addr}: {reason}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why, as one line.
        reason: String,
    },
    /// The operation needs a running `sheaf serve`.
    #[error("{0} needs a running `sheaf serve` on {1}")]
    NeedsServe(&'static str, String),
    /// Waiting ran out of time.
    #[error("{0}")]
    Timeout(String),
    /// The documents engine failed.
    #[error(transparent)]
    Docs(#[from] sheaf_tokio::DocsError),
    /// Input/output failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The control channel broke or answered nonsense.
    #[error("control channel: {0}")]
    Control(String),
    /// Anything else, as one line.
    #[error("{0}")]
    Other(String),
}

/// Result of command-line operations.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

impl CliError {
    pub(crate) fn other(e: impl std::fmt::Display) -> Self {
        CliError::Other(e.to_string())
    }
}
