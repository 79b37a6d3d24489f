//! Two `sheaf serve` processes that reach each other only through a real iroh-relay server
//! (HTTPS and QUIC, a self-signed certificate) run by the test on loopback: `--relay URL`
//! names it, `--relay-ca FILE` trusts its certificate, `--no-discovery --no-portmap` keep
//! everything on the machine, and `--relay-only` binds no direct address, so the only path
//! between the nodes is the relay. The ticket carries the relay URL only (checked), and
//! `doc status` reports the peer's path as relayed (iroh's view of the connection in use).

#![cfg(unix)]

mod common;

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::Path,
    process::Command,
    str::FromStr,
};

use common::{Proc, Serve, Watch};
use iroh_relay::server::{CertConfig, QuicConfig, RelayConfig, Server, ServerConfig, TlsConfig};
use sheaf_core::wire::{DocTicket, TransportAddr};

/// A relay server on loopback, on its own tokio runtime (the test itself is blocking).
struct Relay {
    rt: tokio::runtime::Runtime,
    server: Option<Server>,
    url: String,
    cert: tempfile::NamedTempFile,
}

impl Relay {
    fn start() -> Relay {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let (certs, server_config) =
            iroh_relay::server::testing::self_signed_tls_certs_and_config();
        let mut relay = RelayConfig::new((Ipv4Addr::LOCALHOST, 0));
        relay.tls = Some(TlsConfig::new(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            CertConfig::Manual { server_config },
        ));
        let mut config = ServerConfig::default();
        config.relay = Some(relay);
        config.quic = Some(QuicConfig::new((Ipv4Addr::LOCALHOST, 0)));
        let server = rt.block_on(Server::spawn(config)).expect("relay server");
        let url = format!("https://{}/", server.https_addr().expect("https"));
        // The certificate in PEM, as a user would get it from their own CA.
        let mut cert = tempfile::NamedTempFile::new().expect("temp file");
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            data_encoding::BASE64.encode(certs[0].as_ref())
        );
        std::io::Write::write_all(&mut cert, pem.as_bytes()).expect("write cert");
        Relay {
            rt,
            server: Some(server),
            url,
            cert,
        }
    }

    /// `sheaf` with this relay only, and nothing else on the network.
    fn sheaf(&self, dir: &Path) -> Command {
        let mut cmd = common::sheaf_networked();
        cmd.arg("--data")
            .arg(dir)
            .args(["--relay", &self.url, "--relay-ca"])
            .arg(self.cert.path())
            .args(["--no-discovery", "--no-portmap", "--relay-only"]);
        cmd
    }

    fn serve(&self, dir: &Path) -> Serve {
        let mut cmd = self.sheaf(dir);
        cmd.arg("serve");
        let mut proc = Proc::spawn(cmd);
        let node = proc.wait_line(|l| l.starts_with("node "));
        let relay = proc.wait_line(|l| l.starts_with("relay "));
        assert!(
            relay == format!("relay {}", self.url) || relay.starts_with("relay none yet"),
            "{relay:?}"
        );
        proc.wait_line(|l| l == "ready");
        assert!(
            !proc.seen.iter().any(|l| l.starts_with("addr ")),
            "a relay-only node has no direct address: {:?}",
            proc.seen
        );
        Serve {
            proc,
            dir: dir.to_path_buf(),
            node_id: node["node ".len()..].to_string(),
        }
    }

    fn ok(&self, dir: &Path, args: &[&str]) -> String {
        let mut cmd = self.sheaf(dir);
        cmd.args(args);
        let out = common::run_cmd(cmd);
        assert!(
            out.status.success(),
            "sheaf {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = self.rt.block_on(server.shutdown());
        }
    }
}

#[test]
fn two_serve_processes_sync_through_a_self_hosted_relay() {
    let relay = Relay::start();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = relay.serve(a.path());
    let bob = relay.serve(b.path());

    let doc = relay.ok(a.path(), &["doc", "new"]);
    relay.ok(a.path(), &["doc", "set", &doc, "hello", "world"]);
    let photo = a.path().join("photo.bin");
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&photo, &bytes).unwrap();
    relay.ok(
        a.path(),
        &[
            "doc",
            "set",
            &doc,
            "photo",
            "--file",
            photo.to_str().unwrap(),
        ],
    );
    let ticket = relay.ok(
        a.path(),
        &["doc", "share", &doc, "write", "--addr", "relay"],
    );
    let parsed = DocTicket::from_str(&ticket).expect("a ticket");
    assert_eq!(parsed.nodes.len(), 1);
    assert_eq!(parsed.nodes[0].id.to_string(), alice.node_id);
    let addrs: Vec<&TransportAddr> = parsed.nodes[0].addrs.iter().collect();
    assert_eq!(addrs, vec![&TransportAddr::Relay(relay.url.clone())]);

    relay.ok(b.path(), &["doc", "join", &ticket, "--wait-content"]);
    assert_eq!(relay.ok(b.path(), &["doc", "get", &doc, "hello"]), "world");
    let copy = b.path().join("copy.bin");
    relay.ok(
        b.path(),
        &["doc", "get", &doc, "photo", "--out", copy.to_str().unwrap()],
    );
    assert_eq!(std::fs::read(&copy).unwrap(), bytes);

    // Live, both ways.
    let mut watch_b = Watch::start_with(relay.sheaf(b.path()), &doc);
    relay.ok(a.path(), &["doc", "set", &doc, "live", "from alice"]);
    watch_b.until("alice's live write at bob", || {
        let out = common::run_cmd({
            let mut c = relay.sheaf(b.path());
            c.args(["doc", "get", &doc, "live"]);
            c
        });
        (String::from_utf8_lossy(&out.stdout).trim() == "from alice").then_some(())
    });
    let mut watch_a = Watch::start_with(relay.sheaf(a.path()), &doc);
    relay.ok(b.path(), &["doc", "set", &doc, "reply", "from bob"]);
    watch_a.until("bob's live write at alice", || {
        let out = common::run_cmd({
            let mut c = relay.sheaf(a.path());
            c.args(["doc", "get", &doc, "reply"]);
            c
        });
        (String::from_utf8_lossy(&out.stdout).trim() == "from bob").then_some(())
    });

    // Bob's node reaches Alice's through the relay, and says so.
    let status = relay.ok(b.path(), &["--json", "doc", "status", &doc]);
    let status: serde_json::Value = serde_json::from_str(status.lines().last().unwrap()).unwrap();
    let peers = status["peers"]
        .as_array()
        .unwrap_or_else(|| panic!("no peers in {status}"))
        .clone();
    let to_alice = peers
        .iter()
        .find(|p| p["peer"] == alice.node_id.as_str())
        .unwrap_or_else(|| panic!("alice is not a peer: {status}"));
    assert_eq!(to_alice["path"], "relay", "{status}");
    let text = relay.ok(b.path(), &["doc", "status", &doc]);
    assert!(text.contains("relayed"), "{text}");

    assert!(alice.proc.terminate().success());
    assert!(bob.proc.terminate().success());
}

/// `sheaf` whose only relay never answers (a closed port on loopback), without discovery or
/// port mapping: what a node without internet access sees.
fn sheaf_unreachable_relay(dir: &Path) -> Command {
    let mut cmd = common::sheaf_networked();
    cmd.arg("--data").arg(dir).args([
        "--relay",
        "https://127.0.0.1:1/",
        "--no-discovery",
        "--no-portmap",
    ]);
    cmd
}

#[test]
fn without_a_reachable_relay_nodes_start_and_sync_on_direct_addresses() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let serve = |dir: &Path| {
        let mut cmd = sheaf_unreachable_relay(dir);
        cmd.args(["serve", "--bind", "127.0.0.1:0"]);
        let mut proc = Proc::spawn(cmd);
        let node = proc.wait_line(|l| l.starts_with("node "));
        let relay = proc.wait_line(|l| l.starts_with("relay "));
        assert!(relay.starts_with("relay none yet"), "{relay:?}");
        proc.wait_line(|l| l == "ready");
        Serve {
            proc,
            dir: dir.to_path_buf(),
            node_id: node["node ".len()..].to_string(),
        }
    };
    let alice = serve(a.path());
    let bob = serve(b.path());
    let ok = |dir: &Path, args: &[&str]| {
        let mut cmd = sheaf_unreachable_relay(dir);
        cmd.args(args);
        let out = common::run_cmd(cmd);
        assert!(
            out.status.success(),
            "sheaf {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let doc = ok(a.path(), &["doc", "new"]);
    ok(a.path(), &["doc", "set", &doc, "hello", "direct"]);

    // `--addr id`: the node id alone.
    let id_only = DocTicket::from_str(&ok(
        a.path(),
        &["doc", "share", &doc, "read", "--addr", "id"],
    ))
    .expect("a ticket");
    assert_eq!(id_only.nodes[0].id.to_string(), alice.node_id);
    assert!(id_only.nodes[0].addrs.is_empty(), "{id_only:?}");
    // `--addr relay` without a relay connection: a typed error, not an empty ticket.
    let mut cmd = sheaf_unreachable_relay(a.path());
    cmd.args(["doc", "share", &doc, "read", "--addr", "relay"]);
    common::assert_error(&common::run_cmd(cmd), "no relay connection");
    // `--addr direct`: the loopback address only.
    let ticket = ok(
        a.path(),
        &["doc", "share", &doc, "write", "--addr", "direct"],
    );
    let parsed = DocTicket::from_str(&ticket).expect("a ticket");
    assert!(
        !parsed.nodes[0].addrs.is_empty()
            && parsed.nodes[0]
                .addrs
                .iter()
                .all(|a| matches!(a, TransportAddr::Ip(ip) if ip.ip().is_loopback())),
        "{parsed:?}"
    );

    ok(b.path(), &["doc", "join", &ticket]);
    assert_eq!(ok(b.path(), &["doc", "get", &doc, "hello"]), "direct");
    let status = ok(b.path(), &["--json", "doc", "status", &doc]);
    let status: serde_json::Value = serde_json::from_str(status.lines().last().unwrap()).unwrap();
    let to_alice = status["peers"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["peer"] == alice.node_id.as_str()))
        .unwrap_or_else(|| panic!("alice is not a peer: {status}"))
        .clone();
    assert_eq!(to_alice["path"], "direct", "{status}");
    assert!(alice.proc.terminate().success());
    assert!(bob.proc.terminate().success());
}
