//! What commands print: human-readable lines, or one JSON object per line with `--json`.
//! Also the progress bar (stderr, only on a terminal and without `--json`).

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sheaf_tokio::{ContentStatus, LiveEvent, SignedEntry};

use crate::keys::{escape, quoted};

/// The result of a document or author command. Also what travels over the control channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Output {
    /// A document id (`doc new`).
    Doc {
        /// The id.
        doc: String,
    },
    /// Documents of the store (`doc list`).
    Docs {
        /// Id and capability (`read` or `write`) of each.
        docs: Vec<(String, String)>,
    },
    /// An entry written (`doc set`).
    Written(EntryInfo),
    /// An entry and its content (`doc get`).
    Value {
        /// The entry.
        entry: EntryInfo,
        /// The content, hex-encoded (absent when exported to a file).
        content_hex: Option<String>,
        /// The file the content was exported to.
        out: Option<String>,
    },
    /// Entries (`doc ls`).
    Entries {
        /// The entries.
        entries: Vec<EntryInfo>,
    },
    /// Entries removed (`doc del`).
    Removed {
        /// How many.
        removed: usize,
    },
    /// A document's status (`doc status`).
    DocStatus(crate::status::DocStatus),
    /// The node's status (`status`).
    NodeStatus(crate::status::NodeStatus),
    /// A ticket (`doc share`).
    Ticket {
        /// The ticket string.
        ticket: String,
    },
    /// A document joined (`doc join`).
    Joined {
        /// Its id.
        doc: String,
        /// Entries it holds now.
        entries: usize,
        /// Whether a first sync finished.
        synced: bool,
    },
    /// A folder imported (`doc import`).
    Imported {
        /// Files written as entries.
        files: usize,
        /// Their total size.
        bytes: u64,
        /// Files left out: empty ones (an entry cannot be empty) and symbolic links.
        skipped: usize,
        /// The folder.
        dir: String,
    },
    /// A document exported (`doc export`).
    Exported {
        /// Files written.
        files: usize,
        /// Their total size.
        bytes: u64,
        /// The folder.
        dir: String,
    },
    /// An author id (`author new`, `author default`).
    Author {
        /// The id.
        author: String,
    },
    /// Authors (`author list`).
    Authors {
        /// Each author and whether it is the default.
        authors: Vec<(String, bool)>,
    },
    /// Nothing more to say (`doc watch` ended).
    Done,
}

/// An entry as printed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntryInfo {
    /// The key, when it is valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub key: Option<String>,
    /// The key's bytes, hex-encoded.
    pub key_hex: String,
    /// The author's id.
    pub author: String,
    /// The content hash.
    pub hash: String,
    /// The content length.
    pub len: u64,
    /// Microseconds since the epoch.
    pub timestamp: u64,
}

impl From<&SignedEntry> for EntryInfo {
    fn from(e: &SignedEntry) -> Self {
        EntryInfo::new(
            e.key(),
            e.author().to_string(),
            e.content_hash().to_string(),
            e.content_len(),
            e.timestamp(),
        )
    }
}

impl EntryInfo {
    /// The entry with key `key` (bytes) and the other fields as given.
    pub fn new(key: &[u8], author: String, hash: String, len: u64, timestamp: u64) -> Self {
        EntryInfo {
            key: std::str::from_utf8(key).ok().map(str::to_string),
            key_hex: hex::encode(key),
            author,
            hash,
            len,
            timestamp,
        }
    }

    /// The key's bytes.
    pub fn key_bytes(&self) -> Vec<u8> {
        match &self.key {
            Some(k) => k.as_bytes().to_vec(),
            None => hex::decode(&self.key_hex).unwrap_or_default(),
        }
    }

    /// The key escaped for text output ([`escape`]).
    pub fn key_text(&self) -> String {
        escape(&self.key_bytes())
    }

    /// The key escaped and quoted, for a sentence ([`quoted`]).
    pub fn key_quoted(&self) -> String {
        quoted(&self.key_bytes())
    }
}

/// A live event as printed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventInfo {
    /// `insert_local`, `insert_remote`, `content_ready`, `pending_content_ready`,
    /// `neighbor_up`, `neighbor_down`, `sync_finished` or `lagged`.
    pub event: String,
    /// The entry, for inserts.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub entry: Option<EntryInfo>,
    /// The peer involved.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub peer: Option<String>,
    /// The content hash (`content_ready`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub hash: Option<String>,
    /// More detail: content status, sync result, events missed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
}

impl From<&LiveEvent> for EventInfo {
    fn from(e: &LiveEvent) -> Self {
        let mut info = EventInfo {
            event: String::new(),
            entry: None,
            peer: None,
            hash: None,
            detail: None,
        };
        let name = match e {
            LiveEvent::InsertLocal { entry } => {
                info.entry = Some(entry.into());
                "insert_local"
            }
            LiveEvent::InsertRemote {
                from,
                entry,
                content_status,
            } => {
                info.entry = Some(entry.into());
                info.peer = Some(from.to_string());
                info.detail = Some(
                    match content_status {
                        ContentStatus::Complete => "content complete",
                        ContentStatus::Incomplete => "content incomplete",
                        ContentStatus::Missing => "content missing",
                    }
                    .into(),
                );
                "insert_remote"
            }
            LiveEvent::ContentReady { hash } => {
                info.hash = Some(hash.to_string());
                "content_ready"
            }
            LiveEvent::PendingContentReady => "pending_content_ready",
            LiveEvent::NeighborUp(p) => {
                info.peer = Some(p.to_string());
                "neighbor_up"
            }
            LiveEvent::NeighborDown(p) => {
                info.peer = Some(p.to_string());
                "neighbor_down"
            }
            LiveEvent::SyncFinished(s) => {
                info.peer = Some(s.peer.to_string());
                info.detail = Some(match &s.result {
                    Ok(d) => format!(
                        "ok, {} received, {} sent",
                        d.entries_received, d.entries_sent
                    ),
                    Err(e) => format!("failed: {e}"),
                });
                "sync_finished"
            }
            LiveEvent::Lagged { missed } => {
                info.detail = Some(format!("{missed} events missed"));
                "lagged"
            }
        };
        info.event = name.into();
        info
    }
}

fn short(s: &str) -> &str {
    s.get(..10).unwrap_or(s)
}

impl EventInfo {
    /// One human-readable line.
    pub fn human(&self) -> String {
        let peer = self.peer.as_deref().map(short).unwrap_or("?");
        match (self.event.as_str(), &self.entry) {
            ("insert_local", Some(e)) if e.len == 0 => {
                format!("delete local   {}", e.key_quoted())
            }
            ("insert_local", Some(e)) => {
                format!("insert local   {} ({} bytes)", e.key_quoted(), e.len)
            }
            ("insert_remote", Some(e)) if e.len == 0 => {
                format!("delete remote  {} from {peer}", e.key_quoted())
            }
            ("insert_remote", Some(e)) => format!(
                "insert remote  {} ({} bytes) from {peer}, {}",
                e.key_quoted(),
                e.len,
                self.detail.as_deref().unwrap_or("")
            ),
            ("content_ready", _) => format!(
                "content ready  {}",
                short(self.hash.as_deref().unwrap_or(""))
            ),
            ("pending_content_ready", _) => "all pending content downloaded".into(),
            ("neighbor_up", _) => format!("neighbor up    {peer}"),
            ("neighbor_down", _) => format!("neighbor down  {peer}"),
            ("sync_finished", _) => format!(
                "sync finished  with {peer}: {}",
                self.detail.as_deref().unwrap_or("")
            ),
            (other, _) => format!("{other} {}", self.detail.as_deref().unwrap_or("")),
        }
    }
}

/// Prints results and events on stdout. Write errors (a closed pipe) are ignored.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    /// JSON lines instead of text.
    pub json: bool,
}

impl Printer {
    /// Prints one JSON value as a line.
    pub fn json_line(&self, value: &serde_json::Value) {
        self.line(&value.to_string());
    }

    /// Prints one line.
    pub fn line(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// Prints a live event.
    pub fn event(&self, e: &EventInfo) {
        if self.json {
            self.json_line(&json!(e));
        } else {
            self.line(&e.human());
        }
    }

    /// Announces that `doc watch` is subscribed.
    pub fn watching(&self, doc: &str) {
        if self.json {
            self.json_line(&json!({ "watching": doc }));
        } else {
            self.line(&format!("watching {doc}"));
        }
    }

    /// Prints a command's result.
    pub fn output(&self, o: &Output) {
        match o {
            Output::Doc { doc } => self.one("doc", doc),
            Output::Docs { docs } => {
                for (doc, cap) in docs {
                    if self.json {
                        self.json_line(&json!({"doc": doc, "capability": cap}));
                    } else {
                        self.line(&format!("{doc} {cap}"));
                    }
                }
            }
            Output::Written(e) => {
                if self.json {
                    self.json_line(&json!(e));
                } else {
                    self.line(&format!("{} {} bytes {}", e.key_text(), e.len, e.hash));
                }
            }
            Output::Value {
                entry,
                content_hex,
                out,
            } => {
                let bytes = content_hex
                    .as_deref()
                    .and_then(|h| hex::decode(h).ok())
                    .unwrap_or_default();
                if self.json {
                    let mut v = json!(entry);
                    if let Some(map) = v.as_object_mut() {
                        if let Some(out) = out {
                            map.insert("out".into(), json!(out));
                        } else {
                            map.insert("value".into(), json!(String::from_utf8_lossy(&bytes)));
                        }
                    }
                    self.json_line(&v);
                } else if let Some(out) = out {
                    self.line(&format!("wrote {} bytes to {out}", entry.len));
                } else {
                    let mut stdout = std::io::stdout().lock();
                    let _ = stdout.write_all(&bytes);
                    if !bytes.ends_with(b"\n") {
                        let _ = stdout.write_all(b"\n");
                    }
                    let _ = stdout.flush();
                }
            }
            Output::Entries { entries } => {
                for e in entries {
                    if self.json {
                        self.json_line(&json!(e));
                    } else {
                        let len = if e.len == 0 {
                            "empty".to_string()
                        } else {
                            format!("{} bytes", e.len)
                        };
                        self.line(&format!(
                            "{}\t{len}\t{}\tby {}",
                            e.key_text(),
                            short(&e.hash),
                            short(&e.author)
                        ));
                    }
                }
            }
            Output::Removed { removed } => {
                if self.json {
                    self.json_line(&json!({ "removed": removed }));
                } else {
                    self.line(&format!("removed {removed} entries"));
                }
            }
            Output::Ticket { ticket } => self.one("ticket", ticket),
            Output::DocStatus(status) if self.json => self.json_line(&json!(status)),
            Output::DocStatus(status) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_micros() as u64)
                    .unwrap_or(0);
                for line in status.lines(now) {
                    self.line(&line);
                }
            }
            Output::NodeStatus(status) if self.json => self.json_line(&json!(status)),
            Output::NodeStatus(status) => {
                for line in status.lines() {
                    self.line(&line);
                }
            }
            Output::Joined {
                doc,
                entries,
                synced,
            } => {
                if self.json {
                    self.json_line(&json!({"doc": doc, "entries": entries, "synced": synced}));
                } else if *synced {
                    self.line(&format!("joined {doc}: {entries} entries"));
                } else {
                    self.line(&format!("joined {doc}: {entries} entries so far, syncing"));
                }
            }
            Output::Imported {
                files,
                bytes,
                skipped,
                dir,
            } => {
                if self.json {
                    self.json_line(&json!({
                        "imported": files, "bytes": bytes, "skipped": skipped, "dir": dir
                    }));
                } else if *skipped > 0 {
                    self.line(&format!(
                        "imported {files} files ({bytes} bytes) from {dir}, \
                         skipped {skipped} (empty files and links)"
                    ));
                } else {
                    self.line(&format!(
                        "imported {files} files ({bytes} bytes) from {dir}"
                    ));
                }
            }
            Output::Exported { files, bytes, dir } => {
                if self.json {
                    self.json_line(&json!({"exported": files, "bytes": bytes, "dir": dir}));
                } else {
                    self.line(&format!("exported {files} files ({bytes} bytes) to {dir}"));
                }
            }
            Output::Author { author } => self.one("author", author),
            Output::Authors { authors } => {
                for (author, default) in authors {
                    if self.json {
                        self.json_line(&json!({"author": author, "default": default}));
                    } else if *default {
                        self.line(&format!("{author} (default)"));
                    } else {
                        self.line(author);
                    }
                }
            }
            Output::Done => {}
        }
    }

    fn one(&self, name: &str, value: &str) {
        if self.json {
            self.json_line(&json!({ name: value }));
        } else {
            self.line(value);
        }
    }
}

/// A progress report of a long operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Progress {
    /// What is in progress.
    pub what: String,
    /// Done so far (entries or bytes).
    pub pos: u64,
    /// The total, when known (then `pos` counts bytes).
    pub len: Option<u64>,
}

/// A progress bar on stderr, hidden unless stderr is a terminal and `--json` is off.
#[derive(Debug)]
pub struct Bar {
    bar: Option<ProgressBar>,
    visible: bool,
}

impl Bar {
    /// A bar that appears with the first progress report.
    pub fn new(json: bool) -> Self {
        Bar {
            bar: None,
            visible: !json && std::io::stderr().is_terminal(),
        }
    }

    /// Shows `p`.
    pub fn update(&mut self, p: &Progress) {
        if !self.visible {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        match p.len {
            Some(len) => {
                if bar.length() != Some(len) {
                    bar.set_length(len);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec})",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                }
            }
            None => {
                if bar.length().is_some() || bar.position() == 0 {
                    bar.unset_length();
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {msg}: {pos}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                }
            }
        }
        bar.set_message(p.what.clone());
        bar.set_position(p.pos);
    }

    /// Removes the bar.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.finish();
    }
}
