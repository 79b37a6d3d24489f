//! The commands: parsing their arguments into [`Request`]s and executing requests on a node
//! — the serving one (through the control channel) or a short-lived one.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use serde::{Deserialize, Serialize};
use sheaf_tokio::{
    AuthorId, CapabilityKind, Doc, DocTicket, FileProgress, LiveEvent, NamespaceId, Query,
    ShareMode, SortBy, SortDirection,
};
use tokio::sync::mpsc;

use crate::{
    args::{AddrMode, AuthorCommand, Cli, Command, DocCommand, Mode},
    control,
    keys::{quoted, Key},
    net::RelayState,
    node::{data_dir, ensure_dir, DirLock, LockOutcome, Node},
    output::{Bar, EntryInfo, EventInfo, Output, Printer, Progress},
    CliError, Result,
};

/// How long `doc share --addr relay` waits for the node's home relay before failing
/// (`--addr both` waits [`crate::net::RELAY_STATUS_BOUND`] and shares the direct addresses).
pub const SHARE_RELAY_BOUND: Duration = Duration::from_secs(10);

/// A document or author operation, as sent over the control channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// `doc new`.
    DocNew,
    /// `doc list`.
    DocList,
    /// `doc set`.
    DocSet {
        /// Document id.
        doc: String,
        /// Key.
        key: Key,
        /// Value, or
        value: Option<String>,
        /// a file to import (absolute path).
        file: Option<PathBuf>,
    },
    /// `doc get`.
    DocGet {
        /// Document id.
        doc: String,
        /// Key.
        key: Key,
        /// File to export to (absolute path).
        out: Option<PathBuf>,
    },
    /// `doc ls`.
    DocLs {
        /// Document id.
        doc: String,
        /// Key prefix.
        prefix: Option<Key>,
        /// Every author's entries, not only the newest per key.
        #[serde(default)]
        all: bool,
        /// Tombstones too.
        #[serde(default)]
        include_empty: bool,
    },
    /// `doc del`.
    DocDel {
        /// Document id.
        doc: String,
        /// Key prefix.
        prefix: Key,
    },
    /// `doc import`.
    DocImport {
        /// Document id.
        doc: String,
        /// The folder (absolute path).
        dir: PathBuf,
    },
    /// `doc export`.
    DocExport {
        /// Document id.
        doc: String,
        /// The folder (absolute path).
        dir: PathBuf,
    },
    /// `doc share`.
    DocShare {
        /// Document id.
        doc: String,
        /// Capability.
        mode: Mode,
        /// What the ticket carries to reach this node.
        #[serde(default)]
        addr: AddrMode,
    },
    /// `doc join`.
    DocJoin {
        /// The ticket.
        ticket: String,
        /// Wait for the first sync (and content).
        wait: bool,
        /// Fail unless all content is present when the wait ends (`--wait-content`).
        #[serde(default)]
        wait_content: bool,
        /// For at most this many seconds.
        timeout_secs: u64,
    },
    /// `doc watch`.
    DocWatch {
        /// Document id.
        doc: String,
    },
    /// `doc status`.
    DocStatus {
        /// Document id.
        doc: String,
    },
    /// `status`.
    Status,
    /// `author new`.
    AuthorNew,
    /// `author list`.
    AuthorList,
    /// `author default [ID]`.
    AuthorDefault {
        /// Author to make the default.
        id: Option<String>,
    },
}

/// What a running request reports before its result.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Update {
    /// Progress of a long operation.
    Progress(Progress),
    /// A live event (`doc watch`).
    Event(EventInfo),
    /// The subscription is in place: every later event will be shown (`doc watch`).
    Watching {
        /// The document.
        doc: String,
    },
}

/// Where a request runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// In `sheaf serve`, which keeps running afterwards.
    Served,
    /// In a node that exists only for this command.
    ShortLived,
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let printer = Printer { json: cli.json };
    let request = match cli.command {
        Command::Demo(args) => return crate::demo::run(args, printer).await,
        Command::Serve(args) => {
            return crate::serve::run(data_dir(cli.data)?, args, &cli.net, printer).await
        }
        Command::Doc(cmd) => doc_request(cmd)?,
        Command::Author(cmd) => match cmd {
            AuthorCommand::New => Request::AuthorNew,
            AuthorCommand::List => Request::AuthorList,
            AuthorCommand::Default { id } => Request::AuthorDefault { id },
        },
        Command::Status => Request::Status,
    };
    let dir = data_dir(cli.data)?;
    let output = dispatch(&dir, request, &cli.net, printer).await?;
    printer.output(&output);
    Ok(())
}

fn doc_request(cmd: DocCommand) -> Result<Request> {
    let absolute = |p: PathBuf| std::path::absolute(&p).map_err(CliError::from);
    Ok(match cmd {
        DocCommand::New => Request::DocNew,
        DocCommand::List => Request::DocList,
        DocCommand::Set {
            doc,
            key,
            value,
            key_hex,
            file,
        } => {
            // With --key-hex, the first argument after DOC is the value.
            let (key, value) = match (&key_hex, key, value) {
                (Some(_), Some(value), None) if file.is_none() => (None, Some(value)),
                (Some(_), Some(_), None) => {
                    return Err(CliError::Other(
                        "give either a VALUE or --file, not both".into(),
                    ))
                }
                (_, key, value) => (key, value),
            };
            let key = Key::from_args(key, key_hex, "KEY", "--key-hex")?;
            if value.is_some() == file.is_some() {
                return Err(CliError::Other(match value {
                    Some(_) => "give either a VALUE or --file, not both".into(),
                    None => "give a VALUE or --file PATH".into(),
                }));
            }
            Request::DocSet {
                doc,
                key,
                value,
                file: file.map(absolute).transpose()?,
            }
        }
        DocCommand::Get {
            doc,
            key,
            key_hex,
            out,
        } => Request::DocGet {
            doc,
            key: Key::from_args(key, key_hex, "KEY", "--key-hex")?,
            out: out.map(absolute).transpose()?,
        },
        DocCommand::Ls {
            doc,
            prefix,
            prefix_hex,
            all,
            include_empty,
        } => Request::DocLs {
            doc,
            prefix: match (prefix, prefix_hex) {
                (None, None) => None,
                (p, h) => Some(Key::from_args(p, h, "--prefix", "--prefix-hex")?),
            },
            all,
            include_empty,
        },
        DocCommand::Del {
            doc,
            prefix,
            prefix_hex,
        } => Request::DocDel {
            doc,
            prefix: Key::from_args(prefix, prefix_hex, "PREFIX", "--prefix-hex")?,
        },
        DocCommand::Import { doc, dir } => Request::DocImport {
            doc,
            dir: absolute(dir)?,
        },
        DocCommand::Export { doc, dir } => Request::DocExport {
            doc,
            dir: absolute(dir)?,
        },
        DocCommand::Share { doc, mode, addr } => Request::DocShare { doc, mode, addr },
        DocCommand::Join {
            ticket,
            no_wait,
            wait_content,
            timeout,
        } => {
            // Fail fast on a malformed ticket, before touching the store.
            parse_ticket(&ticket)?;
            Request::DocJoin {
                ticket,
                wait: !no_wait,
                wait_content,
                timeout_secs: timeout,
            }
        }
        DocCommand::Watch { doc } => {
            parse_doc(&doc)?;
            Request::DocWatch { doc }
        }
        DocCommand::Status { doc } => {
            parse_doc(&doc)?;
            Request::DocStatus { doc }
        }
    })
}

/// Sends `request` to the node serving `dir`, or runs it on a short-lived node (which
/// reaches peers as `net` says for `doc join`, and stays offline for everything else).
async fn dispatch(
    dir: &Path,
    request: Request,
    net: &crate::net::NetArgs,
    printer: Printer,
) -> Result<Output> {
    ensure_dir(dir)?;
    let mut bar = Bar::new(printer.json);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let lock = loop {
        if let Some(stream) = control::connect(dir).await {
            return control::call(stream, &request, printer, &mut bar).await;
        }
        match DirLock::try_lock(dir, false)? {
            LockOutcome::Locked(lock) => break lock,
            LockOutcome::Busy(holder) => {
                if tokio::time::Instant::now() >= deadline {
                    let who = match (holder.serving, holder.pid) {
                        (true, Some(p)) => format!("a sheaf node (pid {p})"),
                        (true, None) => "a sheaf node".to_string(),
                        (false, Some(p)) => format!("another sheaf command (pid {p})"),
                        (false, None) => "another sheaf process".to_string(),
                    };
                    return Err(CliError::Busy(dir.display().to_string(), who));
                }
                // Another command holds the store briefly, or a node is starting up.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let (bind, net) = match request {
        Request::DocJoin { .. } => (SocketAddr::from(([0, 0, 0, 0], 0)), net.clone()),
        _ => (
            SocketAddr::from(([127, 0, 0, 1], 0)),
            crate::net::NetArgs::offline(),
        ),
    };
    let interrupted = crate::serve::ShutdownSignal::listen();
    let node = Node::persistent(dir, bind, &net).await?;
    let (tx, mut rx) = mpsc::channel(256);
    let render = tokio::spawn(async move {
        while let Some(update) = rx.recv().await {
            match update {
                Update::Progress(p) => bar.update(&p),
                Update::Event(e) => printer.event(&e),
                Update::Watching { doc } => printer.watching(&doc),
            }
        }
        bar.finish();
    });
    let result = tokio::select! {
        r = execute(&node, Host::ShortLived, request, &tx) => r,
        // Interrupted (Ctrl-C, SIGTERM): stop the node cleanly all the same.
        _ = interrupted.recv() => Ok(Output::Done),
    };
    drop(tx);
    let _ = render.await;
    let shutdown = node.shutdown().await;
    drop(lock);
    let output = result?;
    shutdown?;
    Ok(output)
}

/// Parses a document id.
pub fn parse_doc(s: &str) -> Result<NamespaceId> {
    NamespaceId::from_str(s.trim()).map_err(|e| CliError::DocId(s.to_string(), e.to_string()))
}

/// Parses a ticket.
pub fn parse_ticket(s: &str) -> Result<DocTicket> {
    DocTicket::from_str(s.trim()).map_err(|e| CliError::Ticket(e.to_string()))
}

/// Reports progress of a long operation to the renderer.
pub fn progress(tx: &mpsc::Sender<Update>, what: &str, pos: u64, len: Option<u64>) {
    // Progress is advisory: drop reports the renderer has no room for.
    let _ = tx.try_send(Update::Progress(Progress {
        what: what.to_string(),
        pos,
        len,
    }));
}

fn file_progress<'a>(tx: &'a mpsc::Sender<Update>, what: &str) -> impl FnMut(FileProgress) + 'a {
    let what = what.to_string();
    let mut len = None;
    move |p| match p {
        FileProgress::Size(n) => {
            len = Some(n);
            progress(tx, &what, 0, len);
        }
        FileProgress::Copied(n) => progress(tx, &format!("{what} (copying)"), n, len),
        FileProgress::Hashed(n) => progress(tx, &format!("{what} (hashing)"), n, len),
    }
}

/// Runs one request on `node`, sending progress and events to `updates`.
pub async fn execute(
    node: &Node,
    host: Host,
    request: Request,
    updates: &mpsc::Sender<Update>,
) -> Result<Output> {
    let docs = &node.docs;
    match request {
        Request::DocNew => {
            let doc = docs.create().await?;
            Ok(Output::Doc {
                doc: doc.id().to_string(),
            })
        }
        Request::DocList => Ok(Output::Docs {
            docs: docs
                .list()
                .await?
                .into_iter()
                .map(|(id, kind)| {
                    let kind = match kind {
                        CapabilityKind::Write => "write",
                        CapabilityKind::Read => "read",
                    };
                    (id.to_string(), kind.to_string())
                })
                .collect(),
        }),
        Request::DocSet {
            doc,
            key,
            value,
            file,
        } => {
            let doc = node.open_doc(parse_doc(&doc)?).await?;
            let author = docs.author_default();
            let key = key.0;
            let (hash, len) = match (value, file) {
                (_, Some(path)) => {
                    doc.import_file(author, key.clone(), &path, file_progress(updates, "import"))
                        .await?
                }
                (Some(value), None) => {
                    let len = value.len() as u64;
                    (doc.set_bytes(author, key.clone(), value).await?, len)
                }
                (None, None) => return Err(CliError::Other("give a VALUE or --file".into())),
            };
            match doc.get_exact(author, key.clone(), false).await? {
                Some(entry) => Ok(Output::Written((&entry).into())),
                None => Ok(Output::Written(EntryInfo::new(
                    &key,
                    author.to_string(),
                    hash.to_string(),
                    len,
                    0,
                ))),
            }
        }
        Request::DocGet { doc, key, out } => {
            let doc = node.open_doc(parse_doc(&doc)?).await?;
            let entry = doc
                .get_one(Query::single_latest_per_key().with_key_exact(key.0.clone()))
                .await?
                .ok_or_else(|| CliError::NoEntry(quoted(&key.0)))?;
            if !node.has_content(entry.content_hash()).await {
                return Err(CliError::NoContent(quoted(&key.0)));
            }
            if let Some(path) = out {
                doc.export_file(&entry, &path, file_progress(updates, "export"))
                    .await?;
                return Ok(Output::Value {
                    entry: (&entry).into(),
                    content_hex: None,
                    out: Some(path.display().to_string()),
                });
            }
            let bytes = node
                .blobs
                .blobs()
                .get_bytes(iroh_blobs::Hash::from_bytes(
                    entry.content_hash().to_bytes(),
                ))
                .await
                .map_err(|e| {
                    CliError::Other(format!("reading content of {}: {e}", quoted(&key.0)))
                })?;
            Ok(Output::Value {
                entry: (&entry).into(),
                content_hex: Some(hex::encode(&bytes)),
                out: None,
            })
        }
        Request::DocLs {
            doc,
            prefix,
            all,
            include_empty,
        } => {
            let doc = node.open_doc(parse_doc(&doc)?).await?;
            let mut query = if all {
                // Each key's entries together, by author within a key.
                Query::all().sort_by(SortBy::KeyAuthor, SortDirection::Asc)
            } else {
                Query::single_latest_per_key()
            };
            if let Some(p) = prefix {
                query = query.with_key_prefix(p.0);
            }
            if include_empty {
                query = query.include_empty();
            }
            let entries = doc.get_many(query).await?;
            Ok(Output::Entries {
                entries: entries.iter().map(EntryInfo::from).collect(),
            })
        }
        Request::DocDel { doc, prefix } => {
            let doc = node.open_doc(parse_doc(&doc)?).await?;
            let removed = doc.del(docs.author_default(), prefix.0).await?;
            Ok(Output::Removed { removed })
        }
        Request::DocImport { doc, dir } => {
            let doc = node.open_doc(parse_doc(&doc)?).await?;
            crate::folder::import(&doc, docs.author_default(), &dir, updates).await
        }
        Request::DocExport { doc, dir } => {
            let doc = node.open_doc(parse_doc(&doc)?).await?;
            crate::folder::export(node, &doc, &dir, updates).await
        }
        Request::DocShare { doc, mode, addr } => {
            let id = parse_doc(&doc)?;
            let doc = node.open_doc(id).await?;
            if host == Host::ShortLived {
                return Err(CliError::NeedsServe("doc share", node.dir_display()));
            }
            let mode = match mode {
                Mode::Read => ShareMode::Read,
                Mode::Write => ShareMode::Write,
            };
            if matches!(addr, AddrMode::Relay | AddrMode::Both) && !node.offline {
                // A node that just started may not have reached its relay yet; a ticket
                // without the relay URL would not reach it from another network. With
                // direct addresses to fall back on (`both`), wait only briefly: a node
                // without internet access never reaches one.
                let bound = match addr {
                    AddrMode::Relay => SHARE_RELAY_BOUND,
                    _ => crate::net::RELAY_STATUS_BOUND,
                };
                let relay = node.relay(bound).await;
                if addr == AddrMode::Relay && !matches!(relay, RelayState::Connected(_)) {
                    return Err(CliError::Other(format!(
                        "no relay connection within {bound:?}: a ticket with \
                         --addr relay would carry no address (try --addr both or direct)"
                    )));
                }
            }
            let ticket = doc.share(mode, addr.into()).await?;
            node.record_sync(id, None)?;
            Ok(Output::Ticket {
                ticket: ticket.to_string(),
            })
        }
        Request::DocJoin {
            ticket,
            wait,
            wait_content,
            timeout_secs,
        } => {
            let ticket = parse_ticket(&ticket)?;
            let (doc, events) = docs.import_and_subscribe(ticket.clone()).await?;
            node.record_sync(doc.id(), Some(&ticket))?;
            let synced = if wait {
                let wait = JoinWait {
                    timeout: Duration::from_secs(timeout_secs),
                    all_content: wait_content,
                };
                join_wait(node, &doc, events, updates, wait).await?;
                true
            } else {
                false
            };
            Ok(Output::Joined {
                doc: doc.id().to_string(),
                entries: doc.get_many(Query::all()).await?.len(),
                synced,
            })
        }
        Request::DocWatch { doc } => {
            let id = parse_doc(&doc)?;
            let doc = node.open_doc(id).await?;
            let mut events = doc.subscribe().await?;
            if host == Host::ShortLived {
                node.resume().await?;
            }
            let watching = Update::Watching {
                doc: id.to_string(),
            };
            if updates.send(watching).await.is_err() {
                return Ok(Output::Done);
            }
            while let Some(e) = events.recv().await {
                if updates.send(Update::Event((&e).into())).await.is_err() {
                    break;
                }
            }
            Ok(Output::Done)
        }
        Request::DocStatus { doc } => {
            let doc = node.open_doc(parse_doc(&doc)?).await?;
            let content = node.content_progress(&doc).await?;
            let sync = doc.sync_status().await?;
            let mut status = crate::status::DocStatus::new(doc.id().to_string(), content, sync);
            for peer in &mut status.peers {
                peer.path = node.path_to(&peer.peer).await;
            }
            Ok(Output::DocStatus(status))
        }
        Request::Status => Ok(Output::NodeStatus(crate::status::NodeStatus::new(
            node.id().to_string(),
            host == Host::Served,
            docs.list().await?.len(),
            docs.health(),
            docs.metrics(),
        ))),
        Request::AuthorNew => Ok(Output::Author {
            author: docs.author_create().await?.to_string(),
        }),
        Request::AuthorList => {
            let default = docs.author_default();
            Ok(Output::Authors {
                authors: docs
                    .author_list()
                    .await?
                    .into_iter()
                    .map(|a| (a.to_string(), a == default))
                    .collect(),
            })
        }
        Request::AuthorDefault { id } => {
            if let Some(id) = id {
                let author = AuthorId::from_str(id.trim())
                    .map_err(|e| CliError::AuthorId(id.clone(), e.to_string()))?;
                docs.author_set_default(author).await?;
            }
            Ok(Output::Author {
                author: docs.author_default().to_string(),
            })
        }
    }
}

/// How `doc join` waits.
#[derive(Debug, Clone, Copy)]
struct JoinWait {
    /// Bound on the whole wait.
    timeout: Duration,
    /// Fail unless every entry's content is present when the wait ends (`--wait-content`).
    all_content: bool,
}

/// Waits until a first sync finished and the content it announced arrived (or the timeout:
/// an error before the first sync, and with `--wait-content` while content is missing).
async fn join_wait(
    node: &Node,
    doc: &Doc,
    mut events: sheaf_tokio::Events,
    updates: &mpsc::Sender<Update>,
    wait: JoinWait,
) -> Result<()> {
    let timeout = wait.timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut received = 0u64;
    let mut last_error = None;
    let mut synced = false;
    let mut missing = 0;
    loop {
        if synced {
            let content = node.content_progress(doc).await?;
            if wait.all_content {
                progress(
                    updates,
                    "content",
                    content.present_bytes,
                    Some(content.total_bytes),
                );
            }
            missing = content.missing_entries;
            if missing == 0 {
                return Ok(());
            }
        }
        let next = tokio::time::timeout_at(deadline, async {
            // Re-check content now and then even without events.
            tokio::time::timeout(Duration::from_millis(500), events.recv()).await
        })
        .await;
        match next {
            Err(_) if synced && wait.all_content => {
                return Err(CliError::Timeout(format!(
                    "the content of {missing} entries is still missing after {}s \
                     (a peer that has it must be reachable; raise --timeout for large documents)",
                    timeout.as_secs()
                )));
            }
            Err(_) if synced => return Ok(()), // content keeps arriving in the background
            Err(_) => {
                let why = last_error
                    .map(|e| format!(" (last attempt: {e})"))
                    .unwrap_or_default();
                return Err(CliError::Timeout(format!(
                    "no sync with the ticket's nodes finished within {}s{why}",
                    timeout.as_secs()
                )));
            }
            Ok(Err(_)) => {} // tick
            Ok(Ok(None)) => return Err(CliError::Other("the document was closed".into())),
            Ok(Ok(Some(event))) => match event {
                LiveEvent::InsertRemote { .. } => {
                    received += 1;
                    progress(updates, "entries received", received, None);
                }
                LiveEvent::SyncFinished(s) => match s.result {
                    Ok(_) => synced = true,
                    Err(e) => last_error = Some(e),
                },
                _ => {}
            },
        }
    }
}
