//! Command-line arguments.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

/// `sheaf`: multi-writer signed key-value documents, synced peer to peer over iroh.
#[derive(Debug, Parser)]
#[command(name = "sheaf", version)]
pub struct Cli {
    /// The data directory (default: `$SHEAF_DATA`, else the platform's data directory).
    #[arg(long, global = true, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Machine-readable output: one JSON object per line, no progress bars.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs three nodes in this process on loopback and shows a document converging.
    Demo(DemoArgs),
    /// Runs a node on the data directory and keeps syncing its documents until Ctrl-C.
    Serve(ServeArgs),
    /// Document commands.
    #[command(subcommand)]
    Doc(DocCommand),
    /// Author commands.
    #[command(subcommand)]
    Author(AuthorCommand),
}

/// Options of `sheaf demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Give up (and exit non-zero) when the nodes have not converged after this many seconds.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub timeout: u64,
    /// How many entries the first node writes before sharing.
    #[arg(long, default_value_t = 12, value_name = "N")]
    pub entries: usize,
}

/// Options of `sheaf serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The UDP address to bind (a fixed port keeps shared tickets valid across restarts).
    #[arg(long, default_value = "0.0.0.0:0", value_name = "ADDR")]
    pub bind: SocketAddr,
}

/// Capability carried by a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Peers may read and sync.
    Read,
    /// Peers may also write.
    Write,
}

/// `sheaf doc ...`.
#[derive(Debug, Subcommand)]
pub enum DocCommand {
    /// Creates a document and prints its id.
    New,
    /// Lists the documents in the store.
    List,
    /// Writes KEY = VALUE (or the content of --file) as the default author.
    Set {
        /// Document id.
        doc: String,
        /// Entry key.
        key: String,
        /// The value (omit with --file).
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        value: Option<String>,
        /// Import this file as the value.
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// Prints the newest value at KEY (or writes it to --out).
    Get {
        /// Document id.
        doc: String,
        /// Entry key.
        key: String,
        /// Export the content to this file instead of printing it.
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
    /// Lists the newest entry of each key.
    Ls {
        /// Document id.
        doc: String,
        /// Only keys starting with this prefix.
        #[arg(long, value_name = "P")]
        prefix: Option<String>,
    },
    /// Deletes the default author's entries under PREFIX.
    Del {
        /// Document id.
        doc: String,
        /// Key prefix.
        prefix: String,
    },
    /// Prints a ticket for the document (needs a running `sheaf serve`).
    Share {
        /// Document id.
        doc: String,
        /// `read` or `write`.
        mode: Mode,
    },
    /// Joins a document from a ticket and syncs it.
    Join {
        /// The ticket (`docaaa...`).
        ticket: String,
        /// Return once the document is imported, without waiting for the first sync.
        #[arg(long)]
        no_wait: bool,
        /// Give up waiting for the first sync after this many seconds.
        #[arg(long, default_value_t = 60, value_name = "SECS")]
        timeout: u64,
    },
    /// Streams the document's live events until interrupted.
    Watch {
        /// Document id.
        doc: String,
    },
}

/// `sheaf author ...`.
#[derive(Debug, Subcommand)]
pub enum AuthorCommand {
    /// Creates an author.
    New,
    /// Lists the authors (the default one marked).
    List,
    /// Prints the default author, or makes ID the default.
    Default {
        /// The author to make the default.
        id: Option<String>,
    },
}
