//! `sheaf demo`.
use crate::{args::DemoArgs, output::Printer, Result};

/// Runs the demo.
pub async fn run(_args: DemoArgs, _printer: Printer) -> Result<()> {
    Ok(())
}
