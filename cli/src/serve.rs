//! `sheaf serve`: a persistent node on a data directory. It takes the directory's lock
//! (a second `serve` fails), resumes syncing the documents it shared or joined, answers the
//! other commands on the control socket, prints its id and addresses and `ready`, and runs
//! until Ctrl-C or SIGTERM. Without `--bind` it comes back on the port it used last time,
//! so tickets it handed out stay valid across restarts.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde_json::json;

use crate::{
    args::ServeArgs,
    control,
    net::{log_relay_changes, NetArgs, RELAY_STATUS_BOUND},
    node::{ensure_dir, DirLock, LockOutcome, Node},
    output::Printer,
    CliError, Result,
};

/// Runs the node until Ctrl-C or SIGTERM, then shuts it down cleanly (flushing the stores).
pub async fn run(dir: PathBuf, args: ServeArgs, net: &NetArgs, printer: Printer) -> Result<()> {
    ensure_dir(&dir)?;
    let lock = match DirLock::try_lock(&dir, true)? {
        LockOutcome::Locked(lock) => lock,
        LockOutcome::Busy(holder) if holder.serving => {
            return Err(CliError::AlreadyServing(dir.display().to_string()))
        }
        LockOutcome::Busy(holder) => {
            let pid = holder
                .pid
                .map(|p| format!(" (pid {p})"))
                .unwrap_or_default();
            return Err(CliError::InUse(dir.display().to_string(), pid));
        }
    };
    // Listen before the node starts: a SIGTERM right after `ready` (or during start-up) must
    // shut down cleanly, not hit the default action and kill the process.
    let shutdown = ShutdownSignal::listen();
    let node = Arc::new(spawn_node(&dir, args.bind, net).await?);
    let result = serve_node(&dir, node.clone(), printer, shutdown).await;
    node.shutdown().await.ok();
    drop(lock);
    result
}

/// The file in the data directory that remembers the port `serve` last bound without `--bind`.
pub const PORT_FILE: &str = "serve.port";

/// The port remembered in `dir`, if any.
pub fn remembered_port(dir: &Path) -> Option<u16> {
    std::fs::read_to_string(dir.join(PORT_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|p| *p != 0)
}

/// Remembers `port` in `dir` (written to a temporary file and renamed into place).
fn remember_port(dir: &Path, port: u16) -> Result<()> {
    let tmp = dir.join(format!("{PORT_FILE}.tmp"));
    std::fs::write(&tmp, format!("{port}\n"))?;
    std::fs::rename(tmp, dir.join(PORT_FILE))?;
    Ok(())
}

/// Starts the node on `bind`, or, without it, on `0.0.0.0` and the remembered port: tickets
/// name the node's addresses, so a node that came back on another port would leave every
/// ticket handed out before unusable. If the remembered port is taken, the node takes a
/// fresh one and says so on stderr; the port it ends up on is remembered for next time.
async fn spawn_node(dir: &Path, bind: Option<SocketAddr>, net: &NetArgs) -> Result<Node> {
    if let Some(bind) = bind {
        return Node::persistent(dir, bind, net).await;
    }
    let any = |port| SocketAddr::from(([0, 0, 0, 0], port));
    let node = match remembered_port(dir) {
        Some(port) => match Node::persistent(dir, any(port), net).await {
            Ok(node) => node,
            Err(CliError::Bind { reason, .. }) => {
                eprintln!(
                    "warning: port {port} is taken ({}); serving on a fresh port, so \
                     tickets shared before the restart no longer reach this node",
                    reason.split_whitespace().collect::<Vec<_>>().join(" ")
                );
                Node::persistent(dir, any(0), net).await?
            }
            Err(e) => return Err(e),
        },
        None => Node::persistent(dir, any(0), net).await?,
    };
    let port = node
        .router
        .endpoint()
        .bound_sockets()
        .iter()
        .find(|a| a.is_ipv4())
        .map(|a| a.port());
    if let Some(port) = port {
        if let Err(e) = remember_port(dir, port) {
            eprintln!(
                "warning: cannot remember port {port} in {}: {e}",
                dir.display()
            );
        }
    }
    Ok(node)
}

async fn serve_node(
    dir: &Path,
    node: Arc<Node>,
    printer: Printer,
    shutdown: ShutdownSignal,
) -> Result<()> {
    let resumed = node.resume().await?;
    let control = control::listen(dir, node.clone())?;
    let addrs = node.addrs();
    // At most a short wait: without internet access the node is ready on its direct
    // addresses at once, and iroh keeps trying the relay in the background.
    let relay = node.relay(RELAY_STATUS_BOUND).await;
    log_relay_changes(node.router.endpoint().clone());
    if printer.json {
        let home = match &relay {
            crate::net::RelayState::Connected(url) => Some(url.to_string()),
            _ => None,
        };
        printer.json_line(&json!({
            "node_id": node.id().to_string(),
            "addrs": addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "relay": home,
            "offline": node.offline,
            "data": dir.display().to_string(),
            "resumed": resumed,
        }));
    } else {
        printer.line(&format!("node {}", node.id()));
        for a in &addrs {
            printer.line(&format!("addr {a}"));
        }
        printer.line(&format!("relay {relay}"));
        printer.line(&format!("data {}", dir.display()));
        printer.line(&format!("syncing {resumed} documents"));
        printer.line("ready");
    }
    shutdown.recv().await;
    control.stop();
    Ok(())
}

/// Ctrl-C, or SIGTERM on unix, listened for from the moment it is created.
pub struct ShutdownSignal {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignal {
    /// Installs the handlers now; signals that arrive before [`ShutdownSignal::recv`] is
    /// awaited are not lost.
    pub fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            ShutdownSignal {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            ShutdownSignal {}
        }
    }

    /// Resolves once a shutdown signal has arrived.
    pub async fn recv(mut self) {
        #[cfg(unix)]
        {
            async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            if self.term.is_none() && self.int.is_none() {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
            tokio::select! {
                _ = next(&mut self.term) => {}
                _ = next(&mut self.int) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
