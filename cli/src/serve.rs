//! `sheaf serve`: a persistent node on a data directory. It takes the directory's lock
//! (a second `serve` fails), resumes syncing the documents it shared or joined, answers the
//! other commands on the control socket, prints its id and addresses and `ready`, and runs
//! until Ctrl-C or SIGTERM.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use serde_json::json;

use crate::{
    args::ServeArgs,
    control,
    node::{ensure_dir, DirLock, LockOutcome, Node},
    output::Printer,
    CliError, Result,
};

/// Runs the node until Ctrl-C or SIGTERM, then shuts it down cleanly (flushing the stores).
pub async fn run(dir: PathBuf, args: ServeArgs, printer: Printer) -> Result<()> {
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
    let node = Arc::new(Node::persistent(&dir, args.bind).await?);
    let result = serve_node(&dir, node.clone(), printer).await;
    node.shutdown().await.ok();
    drop(lock);
    result
}

async fn serve_node(dir: &Path, node: Arc<Node>, printer: Printer) -> Result<()> {
    let resumed = node.resume().await?;
    let control = control::listen(dir, node.clone())?;
    let addrs = node.addrs();
    if printer.json {
        printer.json_line(&json!({
            "node_id": node.id().to_string(),
            "addrs": addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "data": dir.display().to_string(),
            "resumed": resumed,
        }));
    } else {
        printer.line(&format!("node {}", node.id()));
        for a in &addrs {
            printer.line(&format!("addr {a}"));
        }
        printer.line(&format!("data {}", dir.display()));
        printer.line(&format!("syncing {resumed} documents"));
        printer.line("ready");
    }
    shutdown_signal().await;
    control.stop();
    Ok(())
}

/// Resolves on Ctrl-C, or SIGTERM on unix.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
