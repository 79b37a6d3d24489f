//! How a node reaches peers: iroh's relays, DNS/pkarr discovery and the port mapper by
//! default, a self-hosted relay with `--relay`, or direct addresses only with `--offline`.
//!
//! Nothing here waits on the network: the endpoint binds at once, connects to its home
//! relay and publishes its address in the background, and works on its direct addresses
//! meanwhile (or forever, without internet access).

use std::{path::PathBuf, time::Duration};

use iroh::{
    address_lookup::{DnsAddressLookup, PkarrPublisher, PkarrResolver},
    endpoint::{Builder, PortmapperConfig},
    tls::CaTlsConfig,
    Endpoint, RelayMode, RelayUrl, Watcher,
};

use crate::{CliError, Result};

/// Network options of every command that runs a node (`serve`, and `doc join` when no node
/// serves the data directory).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NetArgs {
    /// Direct addresses only: no relay, no discovery, no port mapping. Peers must be
    /// reachable at the addresses in their tickets (one machine, or one network).
    #[arg(long, global = true, conflicts_with_all = ["relay", "relay_ca"])]
    pub offline: bool,
    /// Use this iroh-relay server (repeatable) instead of n0's public relays, for example a
    /// self-hosted `iroh-relay`.
    #[arg(long, global = true, value_name = "URL")]
    pub relay: Vec<RelayUrl>,
    /// Also trust this certificate (PEM or DER) for relay and discovery servers, for a
    /// relay whose certificate comes from a private CA or is self-signed.
    #[arg(long, global = true, value_name = "FILE")]
    pub relay_ca: Option<PathBuf>,
    /// Neither publish this node's address to n0's DNS/pkarr discovery nor look peers up
    /// there (tickets must then carry a relay URL or direct addresses).
    #[arg(long, global = true)]
    pub no_discovery: bool,
    /// Do not ask the local router for a port mapping (UPnP, PCP, NAT-PMP).
    #[arg(long, global = true)]
    pub no_portmap: bool,
    /// Reach peers through the relay only: bind no direct address (`--bind` is ignored),
    /// so peers never learn this node's IP addresses; only its relay sees them.
    #[arg(long, global = true, conflicts_with = "offline")]
    pub relay_only: bool,
    /// Memory budget of the node's store caches in MiB: redb's page cache gets a quarter,
    /// the documents' fingerprint indexes the rest (indexes of documents not syncing are
    /// dropped, least recently used first, and rebuilt when needed). `sheaf status` shows
    /// where the node stands.
    #[arg(long, global = true, value_name = "MIB", default_value_t = sheaf_tokio::DEFAULT_MEMORY_BUDGET >> 20)]
    pub memory_budget: usize,
}

impl NetArgs {
    /// The options for a node that needs no peers (a short-lived command other than
    /// `doc join`): offline.
    pub fn offline() -> Self {
        NetArgs {
            offline: true,
            memory_budget: sheaf_tokio::DEFAULT_MEMORY_BUDGET >> 20,
            ..Default::default()
        }
    }

    /// Applies these options to an endpoint builder.
    pub fn apply(&self, mut builder: Builder) -> Result<Builder> {
        if self.offline {
            return Ok(builder.portmapper_config(PortmapperConfig::Disabled));
        }
        builder = builder.relay_mode(if self.relay.is_empty() {
            iroh::endpoint::default_relay_mode()
        } else {
            RelayMode::custom(self.relay.iter().cloned())
        });
        if !self.no_discovery {
            builder = builder
                .address_lookup(PkarrPublisher::n0_dns())
                .address_lookup(PkarrResolver::n0_dns())
                .address_lookup(DnsAddressLookup::n0_dns());
        }
        if self.no_portmap {
            builder = builder.portmapper_config(PortmapperConfig::Disabled);
        }
        if let Some(path) = &self.relay_ca {
            let certs = read_certs(path)?;
            builder = builder.ca_tls_config(CaTlsConfig::default().with_extra_roots(certs));
        }
        Ok(builder)
    }
}

/// The certificates of a PEM file (every `CERTIFICATE` block), else the file as one DER
/// certificate.
fn read_certs(path: &std::path::Path) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>> {
    let bytes = std::fs::read(path).map_err(|e| {
        CliError::Other(format!("cannot read the relay CA {}: {e}", path.display()))
    })?;
    let bad = |why: &str| CliError::Other(format!("relay CA {}: {why}", path.display()));
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Ok(vec![rustls_pki_types::CertificateDer::from(bytes)]);
    };
    let mut certs = Vec::new();
    let mut block: Option<String> = None;
    for line in text.lines().map(str::trim) {
        match (&mut block, line) {
            (None, "-----BEGIN CERTIFICATE-----") => block = Some(String::new()),
            (Some(b64), "-----END CERTIFICATE-----") => {
                let der = data_encoding::BASE64
                    .decode(b64.as_bytes())
                    .map_err(|e| bad(&format!("bad base64: {e}")))?;
                certs.push(rustls_pki_types::CertificateDer::from(der));
                block = None;
            }
            (Some(b64), line) => b64.push_str(line),
            (None, _) => {}
        }
    }
    if block.is_some() {
        return Err(bad("unterminated CERTIFICATE block"));
    }
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE block"));
    }
    Ok(certs)
}

/// How long start-up waits to name the home relay before saying there is none yet.
pub const RELAY_STATUS_BOUND: Duration = Duration::from_secs(2);

/// The node's relay connection, as start-up reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayState {
    /// `--offline`: no relay configured.
    Off,
    /// Connected to this home relay.
    Connected(RelayUrl),
    /// Not connected (yet): iroh keeps trying in the background.
    NotYet,
}

impl std::fmt::Display for RelayState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RelayState::Off => f.write_str("off (--offline)"),
            RelayState::Connected(url) => write!(f, "{url}"),
            RelayState::NotYet => f.write_str("none yet (connecting in the background)"),
        }
    }
}

/// The home relay if the endpoint connects to one within `bound`; never waits longer.
pub async fn relay_state(endpoint: &Endpoint, offline: bool, bound: Duration) -> RelayState {
    if offline {
        return RelayState::Off;
    }
    let mut status = endpoint.home_relay_status();
    let connected = |s: &Vec<iroh::endpoint::RelayStatus>| {
        s.iter().find(|s| s.is_connected()).map(|s| s.url().clone())
    };
    let wait = async {
        loop {
            if let Some(url) = connected(&status.get()) {
                return Some(url);
            }
            if status.updated().await.is_err() {
                return None;
            }
        }
    };
    match tokio::time::timeout(bound, wait).await {
        Ok(Some(url)) => RelayState::Connected(url),
        _ => RelayState::NotYet,
    }
}

/// Logs every change of the home relay connection until the endpoint closes.
pub fn log_relay_changes(endpoint: Endpoint) {
    tokio::spawn(async move {
        let mut status = endpoint.home_relay_status();
        let mut last: Option<RelayUrl> = None;
        loop {
            tokio::select! {
                _ = endpoint.closed() => return,
                r = status.updated() => if r.is_err() { return },
            }
            let now = status
                .get()
                .iter()
                .find(|s| s.is_connected())
                .map(|s| s.url().clone());
            if now != last {
                match &now {
                    Some(url) => tracing::info!(%url, "relay: connected"),
                    None => tracing::info!("relay: disconnected, reconnecting in the background"),
                }
                last = now;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certs_of(bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        let mut file = tempfile::NamedTempFile::new()?;
        std::io::Write::write_all(&mut file, bytes)?;
        Ok(read_certs(file.path())?
            .into_iter()
            .map(|c| c.as_ref().to_vec())
            .collect())
    }

    #[test]
    fn relay_ca_reads_pem_blocks_or_der() {
        let pem = "junk\n-----BEGIN CERTIFICATE-----\nAQID\nBA==\n-----END CERTIFICATE-----\n\
                   -----BEGIN CERTIFICATE-----\nBQY=\n-----END CERTIFICATE-----\n";
        assert_eq!(
            certs_of(pem.as_bytes()).unwrap(),
            vec![vec![1, 2, 3, 4], vec![5, 6]]
        );
        // Not UTF-8: one DER certificate.
        assert_eq!(
            certs_of(&[0x30, 0x82, 0xff]).unwrap(),
            vec![vec![0x30, 0x82, 0xff]]
        );
    }

    #[test]
    fn bad_relay_ca_files_are_errors() {
        for bad in [
            "no certificate here\n",
            "-----BEGIN CERTIFICATE-----\nAQID\n",
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        ] {
            let e = certs_of(bad.as_bytes()).unwrap_err();
            assert!(e.to_string().starts_with("relay CA "), "{e}");
        }
        let missing = read_certs(std::path::Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert!(
            missing.to_string().contains("cannot read the relay CA"),
            "{missing}"
        );
    }
}
