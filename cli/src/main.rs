//! The `sheaf` binary: parses the command line, runs it, and reports a failure as one line
//! (`error: ...`) with exit code 1.

use std::process::ExitCode;

use clap::Parser;
use sheaf_cli::args::Cli;

fn main() -> ExitCode {
    // A bug must still end as one line on stderr, not a panic message and backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: internal error{at}: {}", one_line(&msg));
    }));
    let cli = Cli::parse();
    if let Err(e) = init_logs(&cli) {
        eprintln!("error: {}", one_line(&e));
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!(
                "error: cannot start the async runtime: {}",
                one_line(&e.to_string())
            );
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(sheaf_cli::commands::run(cli));
    // Background tasks (sync sessions of a node already shut down) must not delay exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let e = anyhow::Error::from(e);
            eprintln!("error: {}", one_line(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// Logs never go to stdout, so `--json` output stays machine-readable. They go to the file of
/// `serve --log-file` (at `RUST_LOG`'s level, else info for Sheaf), or to stderr when
/// `RUST_LOG` asks for them (`RUST_LOG=info sheaf serve`); otherwise nowhere.
fn init_logs(cli: &Cli) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let log_file = match &cli.command {
        sheaf_cli::args::Command::Serve(args) => args.log_file.as_ref(),
        _ => None,
    };
    if let Some(path) = log_file {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot open the log file {}: {e}", path.display()))?;
        let filter = EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new("warn,sheaf=info,sheaf_cli=info"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .try_init();
    } else if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    Ok(())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
