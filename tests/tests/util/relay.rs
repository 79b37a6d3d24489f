//! A real iroh-relay server (HTTPS and QUIC, self-signed certificates) on loopback, which a
//! test can stop and start again on the same ports and URL, and relay-only endpoints: no
//! UDP socket of their own, so every packet they exchange goes through the relay.

use std::{
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

use anyhow::{Context, Result};
use iroh::{
    endpoint::presets, tls::CaTlsConfig, Endpoint, EndpointId, RelayMap, RelayMode, RelayUrl,
    SecretKey, TransportAddr, Watcher,
};
use iroh_relay::server::{
    CertConfig, QuicConfig, RelayConfig as RelayServerConfig, Server, ServerConfig, TlsConfig,
};

use super::TIMEOUT;

/// An iroh-relay server on 127.0.0.1 with fixed ports once started, so that it can be
/// restarted under the same URL.
pub struct TestRelay {
    server: Option<Server>,
    https: SocketAddr,
    quic: SocketAddr,
    /// The relay's URL (`https://127.0.0.1:PORT`).
    pub url: RelayUrl,
    /// A relay map with this relay only (QUIC address discovery included).
    pub map: RelayMap,
    /// The DER certificate the server presents (self-signed), for clients that trust it
    /// explicitly instead of skipping verification.
    pub cert_der: Vec<u8>,
}

impl TestRelay {
    /// Starts a relay on fresh loopback ports.
    pub async fn start() -> Result<Self> {
        let (server, cert_der) = spawn_server(
            (Ipv4Addr::LOCALHOST, 0).into(),
            (Ipv4Addr::LOCALHOST, 0).into(),
        )
        .await?;
        let https = server.https_addr().context("relay has no https address")?;
        let quic = server.quic_addr().context("relay has no quic address")?;
        let url: RelayUrl = format!("https://{https}").parse()?;
        let map: RelayMap = iroh::RelayConfig::new(
            url.clone(),
            Some(iroh_relay::RelayQuicConfig::new(quic.port())),
        )
        .into();
        Ok(Self {
            server: Some(server),
            https,
            quic,
            url,
            map,
            cert_der,
        })
    }

    /// Stops the server: its connections to clients end.
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(server) = self.server.take() {
            server.shutdown().await.context("relay shutdown")?;
        }
        Ok(())
    }

    /// Starts the server again on the same ports (same URL), with a fresh certificate.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await?;
        // The ports were just released; another process could take them in between, so
        // retry briefly on "address in use" rather than fail on the first attempt.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        // Attempts at most every 100 ms (a retry rate; the first is immediate).
        let mut attempts = tokio::time::interval(Duration::from_millis(100));
        loop {
            attempts.tick().await;
            match spawn_server(self.https, self.quic).await {
                Ok((server, cert)) => {
                    self.server = Some(server);
                    self.cert_der = cert;
                    return Ok(());
                }
                Err(e) if tokio::time::Instant::now() < deadline => {
                    eprintln!("relay restart failed, retrying: {e:#}");
                }
                Err(e) => return Err(e.context("relay restart on the same ports")),
            }
        }
    }
}

async fn spawn_server(https: SocketAddr, quic: SocketAddr) -> Result<(Server, Vec<u8>)> {
    let (certs, server_config) = iroh_relay::server::testing::self_signed_tls_certs_and_config();
    let cert_der = certs.first().context("no certificate")?.as_ref().to_vec();
    let tls = TlsConfig::new(https, CertConfig::Manual { server_config });
    // The plain HTTP listener is not used by clients of an https URL; any free port.
    let mut relay = RelayServerConfig::new((Ipv4Addr::LOCALHOST, 0));
    relay.tls = Some(tls);
    relay.key_cache_capacity = Some(1024);
    let mut config = ServerConfig::default();
    config.relay = Some(relay);
    config.quic = Some(QuicConfig::new(quic));
    let server = Server::spawn(config).await?;
    Ok((server, cert_der))
}

/// A relay-only endpoint: home relay `relay`, no IP transport at all (so no direct path can
/// ever be found, whatever addresses the peer advertises), the test relay's self-signed
/// certificate accepted, and the hooks of `gate` if given.
pub async fn relay_only_endpoint(
    relay: &RelayMap,
    secret_key: Option<SecretKey>,
    gate: Option<&sheaf_tokio::GossipGate>,
    preset: Option<&iroh::test_utils::DnsPkarrServer>,
) -> Result<Endpoint> {
    let builder = relay_builder(relay).clear_ip_transports();
    let endpoint = finish(builder, secret_key, gate, preset).await?;
    anyhow::ensure!(
        endpoint.bound_sockets().is_empty(),
        "a relay-only endpoint bound sockets: {:?}",
        endpoint.bound_sockets()
    );
    Ok(endpoint)
}

/// An endpoint with home relay `relay` and a direct address on 127.0.0.1 too.
pub async fn relay_and_direct_endpoint(
    relay: &RelayMap,
    gate: Option<&sheaf_tokio::GossipGate>,
) -> Result<Endpoint> {
    let builder = relay_builder(relay)
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")?;
    finish(builder, None, gate, None).await
}

/// A builder with `relay` as the only relay, its self-signed certificate accepted, and no
/// port mapping (nothing is asked of the machine's router).
fn relay_builder(relay: &RelayMap) -> iroh::endpoint::Builder {
    Endpoint::builder(presets::Minimal)
        .transport_config(sheaf_tokio::transport_config())
        .relay_mode(RelayMode::Custom(relay.clone()))
        .ca_tls_config(CaTlsConfig::insecure_skip_verify())
        .portmapper_config(iroh::endpoint::PortmapperConfig::Disabled)
}

async fn finish(
    mut builder: iroh::endpoint::Builder,
    secret_key: Option<SecretKey>,
    gate: Option<&sheaf_tokio::GossipGate>,
    preset: Option<&iroh::test_utils::DnsPkarrServer>,
) -> Result<Endpoint> {
    if let Some(dns) = preset {
        builder = builder.preset(dns.preset());
    }
    if let Some(key) = secret_key {
        builder = builder.secret_key(key);
    }
    if let Some(gate) = gate {
        builder = builder.hooks(gate.hooks());
    }
    Ok(builder.bind().await?)
}

/// Waits (at most [`TIMEOUT`]) until `endpoint` is connected to its home relay `url`.
pub async fn wait_home_relay(endpoint: &Endpoint, url: &RelayUrl) -> Result<()> {
    let mut status = endpoint.home_relay_status();
    tokio::time::timeout(TIMEOUT, async {
        loop {
            if status
                .get()
                .iter()
                .any(|s| s.url() == url && s.is_connected())
            {
                return Ok(());
            }
            status
                .updated()
                .await
                .map_err(|e| anyhow::anyhow!("relay status watcher: {e}"))?;
        }
    })
    .await
    .with_context(|| format!("no connection to the home relay {url} within {TIMEOUT:?}"))?
}

/// Asserts that everything `endpoint` knows of `peer` is a relay address, that it sent and
/// received over the relay and nothing over IP: the path between them was relayed.
pub async fn assert_relayed(endpoint: &Endpoint, peer: EndpointId) -> Result<()> {
    let info = endpoint.remote_info(peer).await.with_context(|| {
        format!(
            "{} knows nothing of {}",
            endpoint.id().fmt_short(),
            peer.fmt_short()
        )
    })?;
    let addrs: Vec<TransportAddr> = info.addrs().map(|a| a.addr().clone()).collect();
    anyhow::ensure!(
        !addrs.is_empty() && addrs.iter().all(|a| matches!(a, TransportAddr::Relay(_))),
        "addresses of {} are not relay-only: {addrs:?}",
        peer.fmt_short()
    );
    let socket = &endpoint.metrics().socket;
    let (relay_out, relay_in) = (socket.send_relay.get(), socket.recv_data_relay.get());
    let ip = socket.send_ipv4.get()
        + socket.send_ipv6.get()
        + socket.recv_data_ipv4.get()
        + socket.recv_data_ipv6.get();
    anyhow::ensure!(
        relay_out > 0 && relay_in > 0 && ip == 0,
        "not relayed: {relay_out} bytes sent and {relay_in} received over the relay, {ip} over IP"
    );
    anyhow::ensure!(
        socket.paths_direct.get() == 0,
        "{} direct paths were opened",
        socket.paths_direct.get()
    );
    Ok(())
}
