//! Command-line arguments.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use crate::keys::ESCAPING_HELP;

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
    /// How a node reaches peers (relays, discovery, port mapping; `--offline`).
    #[command(flatten)]
    pub net: crate::net::NetArgs,
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
    /// Shows the node's health: its store runs, iroh-gossip answers; and its documents.
    Status,
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
    /// The UDP address to bind. Without it the node binds `0.0.0.0` on the port it used
    /// last time (remembered in `DIR/serve.port`), so tickets shared before a restart stay
    /// valid; on a fresh port if that one is taken (with a warning) or on the first start.
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<SocketAddr>,
    /// Append logs to this file instead of stderr (never stdout). The level comes from
    /// `RUST_LOG`, else `info` for Sheaf and `warn` for everything else.
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<std::path::PathBuf>,
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

/// What a ticket carries to reach the sharing node (iroh-docs' `AddrInfoOptions`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum AddrMode {
    /// The relay URL and the direct addresses.
    #[default]
    Both,
    /// The relay URL only.
    Relay,
    /// The direct addresses only.
    Direct,
    /// The node id only: peers find the node by discovery.
    Id,
}

impl From<AddrMode> for sheaf_tokio::AddrInfoOptions {
    fn from(mode: AddrMode) -> Self {
        match mode {
            AddrMode::Both => sheaf_tokio::AddrInfoOptions::RelayAndAddresses,
            AddrMode::Relay => sheaf_tokio::AddrInfoOptions::Relay,
            AddrMode::Direct => sheaf_tokio::AddrInfoOptions::Addresses,
            AddrMode::Id => sheaf_tokio::AddrInfoOptions::Id,
        }
    }
}

/// `sheaf doc ...`.
#[derive(Debug, Subcommand)]
pub enum DocCommand {
    /// Creates a document and prints its id.
    New,
    /// Lists the documents in the store.
    List,
    /// Writes KEY = VALUE (or the content of --file) as the default author.
    ///
    /// With --key-hex the key is given in hex and the first argument after DOC is the VALUE:
    /// `sheaf doc set DOC --key-hex 01ff00 VALUE`.
    #[command(after_help = ESCAPING_HELP)]
    Set {
        /// Document id.
        doc: String,
        /// Entry key, as text (omit with --key-hex).
        key: Option<String>,
        /// The value (omit with --file).
        value: Option<String>,
        /// Entry key, in hex (instead of KEY).
        #[arg(long, value_name = "HEX")]
        key_hex: Option<String>,
        /// Import this file as the value.
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// Prints the newest value at KEY (or writes it to --out).
    #[command(after_help = ESCAPING_HELP)]
    Get {
        /// Document id.
        doc: String,
        /// Entry key, as text (omit with --key-hex).
        key: Option<String>,
        /// Entry key, in hex (instead of KEY).
        #[arg(long, value_name = "HEX")]
        key_hex: Option<String>,
        /// Export the content to this file instead of printing it.
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
    /// Lists the newest entry of each key (every author's entries with --all).
    #[command(after_help = ESCAPING_HELP)]
    Ls {
        /// Document id.
        doc: String,
        /// Only keys starting with this prefix, as text.
        #[arg(long, value_name = "P")]
        prefix: Option<String>,
        /// Only keys starting with this prefix, in hex (instead of --prefix).
        #[arg(long, value_name = "HEX")]
        prefix_hex: Option<String>,
        /// Every author's entry of each key, not only the newest one.
        #[arg(long)]
        all: bool,
        /// Also empty entries (tombstones left by `doc del`).
        #[arg(long)]
        include_empty: bool,
    },
    /// Deletes the default author's entries under PREFIX.
    #[command(after_help = ESCAPING_HELP)]
    Del {
        /// Document id.
        doc: String,
        /// Key prefix, as text (omit with --prefix-hex).
        prefix: Option<String>,
        /// Key prefix, in hex (instead of PREFIX).
        #[arg(long, value_name = "HEX")]
        prefix_hex: Option<String>,
    },
    /// Writes every file under DIR as an entry (key: its path relative to DIR, with `/`).
    ///
    /// File names must be valid UTF-8. Symbolic links are skipped, and so are empty files: an
    /// entry cannot be empty (an empty entry marks a deletion).
    Import {
        /// Document id.
        doc: String,
        /// The folder to import.
        dir: PathBuf,
    },
    /// Writes the newest entry of each key as a file under DIR (path: the key, split at `/`).
    ///
    /// Each file is written to a temporary file beside it and renamed into place. The export
    /// is refused, before anything is written, when a key is not a safe relative path:
    /// not UTF-8, absolute, with an empty, `.` or `..` component, or with a NUL byte.
    Export {
        /// Document id.
        doc: String,
        /// The folder to write to (created if needed).
        dir: PathBuf,
    },
    /// Prints a ticket for the document (needs a running `sheaf serve`).
    Share {
        /// Document id.
        doc: String,
        /// `read` or `write`.
        mode: Mode,
        /// How the ticket tells peers to reach this node: `both` (the relay URL and the
        /// direct addresses), `relay`, `direct`, or `id` (the node id only, for peers that
        /// find the node by discovery).
        #[arg(long, value_enum, default_value_t = AddrMode::Both, value_name = "WHAT")]
        addr: AddrMode,
    },
    /// Joins a document from a ticket and syncs it.
    Join {
        /// The ticket (`docaaa...`).
        ticket: String,
        /// Return once the document is imported, without waiting for the first sync.
        #[arg(long)]
        no_wait: bool,
        /// Return only when the content of every entry is stored locally (a progress bar
        /// shows the bytes on a terminal); fail if it is not within --timeout. Without it,
        /// content still missing when the wait ends keeps downloading in the background of
        /// `sheaf serve`.
        #[arg(long, conflicts_with = "no_wait")]
        wait_content: bool,
        /// Give up waiting after this many seconds: for the first sync, and with
        /// --wait-content for all content too.
        #[arg(long, default_value_t = 60, value_name = "SECS")]
        timeout: u64,
    },
    /// Streams the document's live events until interrupted.
    Watch {
        /// Document id.
        doc: String,
    },
    /// Shows the document's entries, content still missing, and its peers: gossip
    /// neighbours, syncs running, failures, and each peer's last sync (those need a running
    /// `sheaf serve`).
    Status {
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
