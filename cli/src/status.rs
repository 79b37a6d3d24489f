//! `sheaf status` and `sheaf doc status`: what a node and a document look like from inside.
//!
//! A node's health is the engine's ([`sheaf_tokio::Health`]): its store runs, and iroh-gossip
//! answers the engine's probe. A document's status joins the store's view (entries, content
//! present or missing) with the sync engine's ([`sheaf_tokio::DocSyncStatus`]: each peer the
//! document tracks, whether it is a gossip neighbour, syncs running, failures in a row, and
//! the last sync that finished). Without a running `sheaf serve` the command's own short-lived
//! node syncs nothing, so only the store's part is shown.

use serde::{Deserialize, Serialize};
use sheaf_tokio::{DocSyncStatus, Health, PeerSyncStatus};

use crate::node::ContentProgress;

/// A node's status (`sheaf status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node's id.
    pub node: String,
    /// Whether it is a running `sheaf serve` (else a short-lived node of this command).
    pub serving: bool,
    /// Documents in the store.
    pub documents: usize,
    /// The store thread runs.
    pub store_running: bool,
    /// iroh-gossip answers the engine's probe.
    pub gossip_answering: bool,
    /// Estimated heap of the loaded fingerprint indexes, in bytes.
    #[serde(default)]
    pub index_bytes: u64,
    /// The indexes' share of the memory budget, in bytes.
    #[serde(default)]
    pub index_budget: u64,
    /// Documents whose index is loaded.
    #[serde(default)]
    pub index_loaded: u64,
    /// Indexes dropped to stay within the budget since the node started.
    #[serde(default)]
    pub index_evictions: u64,
    /// Size limit of redb's page cache, in bytes.
    #[serde(default)]
    pub store_cache_bytes: u64,
}

impl NodeStatus {
    /// From the engine's health and metrics.
    pub fn new(
        node: String,
        serving: bool,
        documents: usize,
        health: Health,
        metrics: &sheaf_tokio::metrics::Metrics,
    ) -> Self {
        let gauge = |v: i64| u64::try_from(v).unwrap_or(0);
        Self {
            node,
            serving,
            documents,
            store_running: health.store_running,
            gossip_answering: health.gossip_answering,
            index_bytes: gauge(metrics.index_bytes.get()),
            index_budget: gauge(metrics.index_budget_bytes.get()),
            index_loaded: gauge(metrics.index_loaded.get()),
            index_evictions: metrics.index_evictions.get(),
            store_cache_bytes: gauge(metrics.store_cache_bytes.get()),
        }
    }

    /// Text lines.
    pub fn lines(&self) -> Vec<String> {
        let ok = |b: bool, good: &str, bad: &str| if b { good } else { bad }.to_string();
        let health = if self.store_running && self.gossip_answering {
            "healthy".to_string()
        } else {
            "UNHEALTHY".to_string()
        };
        vec![
            format!("node {}", self.node),
            format!(
                "{} ({})",
                health,
                if self.serving {
                    "serving"
                } else {
                    "not serving"
                }
            ),
            format!("documents {}", self.documents),
            format!(
                "store {}",
                ok(self.store_running, "running", "STOPPED (restart the node)")
            ),
            format!(
                "gossip {}",
                ok(
                    self.gossip_answering,
                    "answering",
                    "NOT ANSWERING (live updates arrive by sync)"
                )
            ),
            format!(
                "memory: indexes {} of {} MiB ({} documents loaded, {} evictions), store cache {} MiB",
                mib(self.index_bytes),
                mib(self.index_budget),
                self.index_loaded,
                self.index_evictions,
                mib(self.store_cache_bytes),
            ),
        ]
    }
}

/// Bytes in MiB, one decimal.
fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / f64::from(1u32 << 20))
}

/// A document's status (`sheaf doc status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocStatus {
    /// The document.
    pub doc: String,
    /// Entries stored, every author's.
    pub entries: usize,
    /// Entries whose content is not (completely) stored here.
    pub content_missing: usize,
    /// Content bytes stored, of all entries' content bytes.
    pub content_bytes: (u64, u64),
    /// Whether the node syncs the document (without, `peers` is empty).
    pub syncing: bool,
    /// The peers the document tracks.
    pub peers: Vec<PeerStatus>,
}

/// One peer of a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// The peer's node id.
    pub peer: String,
    /// A gossip neighbour now.
    pub neighbor: bool,
    /// A sync with it is running.
    pub syncing: bool,
    /// Dialed syncs that failed in a row.
    pub failures: u32,
    /// A retry is scheduled.
    pub retry_scheduled: bool,
    /// The last sync that finished.
    pub last_sync: Option<LastSync>,
    /// How the node reaches the peer now: `direct` (UDP to one of its IP addresses) or
    /// `relay` (through its relay server); `None` when no connection is in use.
    #[serde(default)]
    pub path: Option<Path>,
}

/// How a node reaches a peer ([`PeerStatus::path`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Path {
    /// UDP to one of the peer's IP addresses (holepunched or on the same network).
    Direct,
    /// Through a relay server (end-to-end encrypted; the relay forwards packets).
    Relay,
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Path::Direct => "direct",
            Path::Relay => "relayed",
        })
    }
}

/// The last finished sync with a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastSync {
    /// When it finished, µs since the UNIX epoch.
    pub finished_micros: u64,
    /// Whether we dialed it.
    pub dialed: bool,
    /// Entries received and sent, if it succeeded.
    pub entries: Option<(usize, usize)>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

impl DocStatus {
    /// From the store's and the sync engine's views.
    pub fn new(doc: String, content: ContentProgress, sync: Option<DocSyncStatus>) -> Self {
        Self {
            doc,
            entries: content.entries,
            content_missing: content.missing_entries,
            content_bytes: (content.present_bytes, content.total_bytes),
            syncing: sync.is_some(),
            peers: sync
                .map(|s| s.peers.iter().map(PeerStatus::from).collect())
                .unwrap_or_default(),
        }
    }

    /// Text lines; times relative to `now_micros`.
    pub fn lines(&self, now_micros: u64) -> Vec<String> {
        let mut out = vec![
            format!("doc {}", self.doc),
            format!(
                "entries {}, content missing for {} ({} of {} bytes here)",
                self.entries, self.content_missing, self.content_bytes.0, self.content_bytes.1
            ),
        ];
        if !self.syncing {
            out.push("not syncing (run `sheaf serve` to sync)".into());
            return out;
        }
        out.push(format!("peers {}", self.peers.len()));
        for p in &self.peers {
            let mut flags = Vec::new();
            if let Some(path) = p.path {
                flags.push(path.to_string());
            }
            if p.neighbor {
                flags.push("neighbour".to_string());
            }
            if p.syncing {
                flags.push("syncing".to_string());
            }
            if p.failures > 0 {
                flags.push(format!("{} failures", p.failures));
            }
            if p.retry_scheduled {
                flags.push("retry scheduled".to_string());
            }
            let last = match &p.last_sync {
                None => "never synced".to_string(),
                Some(l) => {
                    let ago = now_micros.saturating_sub(l.finished_micros) / 1_000_000;
                    let how = match (&l.entries, &l.error) {
                        (Some((recv, sent)), _) => format!("ok, {recv} received, {sent} sent"),
                        (None, Some(e)) => format!("failed: {e}"),
                        (None, None) => "failed".to_string(),
                    };
                    format!("last sync {ago}s ago: {how}")
                }
            };
            let flags = if flags.is_empty() {
                String::new()
            } else {
                format!(" [{}]", flags.join(", "))
            };
            out.push(format!("  {}{flags} {last}", p.peer));
        }
        out
    }
}

impl From<&PeerSyncStatus> for PeerStatus {
    fn from(p: &PeerSyncStatus) -> Self {
        Self {
            peer: p.peer.to_string(),
            neighbor: p.neighbor,
            syncing: p.syncing,
            failures: p.failures,
            retry_scheduled: p.retry_scheduled,
            path: None,
            last_sync: p.last_sync.as_ref().map(|s| LastSync {
                finished_micros: s.finished_micros,
                dialed: matches!(s.origin, sheaf_tokio::Origin::Connect(_)),
                entries: s
                    .result
                    .as_ref()
                    .ok()
                    .map(|d| (d.entries_received, d.entries_sent)),
                error: s.result.as_ref().err().map(|e| e.to_string()),
            }),
        }
    }
}
