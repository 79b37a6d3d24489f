//! `sheaf-bench`: runs workloads on Sheaf and iroh-docs and prints JSON lines and a table.
//!
//! ```text
//! sheaf-bench reconcile [--n N] [--diff D] [--reps R] [--no-iroh]
//! ```

use anyhow::{bail, Context, Result};
use sheaf_bench::{reconcile, Row};

fn arg(args: &[String], name: &str, default: usize) -> Result<usize> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .context("missing value")?
            .replace('_', "")
            .parse()
            .with_context(|| format!("bad value for {name}")),
    }
}

fn table(rows: &[Row]) {
    println!(
        "\n{:<24} {:>9} {:>7} {:>11} {:>9} {:>11} {:>12} {:>12}",
        "impl", "n", "diff", "ms (mean)", "messages", "bytes", "store calls", "entries read"
    );
    let mut keys: Vec<(&str, usize, usize)> = rows
        .iter()
        .map(|r| (r.implementation, r.n, r.diff))
        .collect();
    keys.dedup();
    keys.sort();
    keys.dedup();
    for (implementation, n, diff) in keys {
        let group: Vec<&Row> = rows
            .iter()
            .filter(|r| r.implementation == implementation && r.n == n && r.diff == diff)
            .collect();
        let mean = group.iter().map(|r| r.millis).sum::<f64>() / group.len() as f64;
        let last = group[group.len() - 1];
        let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        println!(
            "{:<24} {:>9} {:>7} {:>11.1} {:>9} {:>11} {:>12} {:>12}",
            implementation,
            n,
            diff,
            mean,
            last.messages,
            last.bytes,
            opt(last.store_calls),
            opt(last.entries_read)
        );
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(workload) = args.first() else {
        bail!("usage: sheaf-bench reconcile [--n N] [--diff D] [--reps R] [--no-iroh]");
    };
    let rows = match workload.as_str() {
        "reconcile" => {
            let n = arg(&args, "--n", 100_000)?;
            let diff = arg(&args, "--diff", 100)?;
            let reps = arg(&args, "--reps", 3)?;
            reconcile::run(n, diff, reps, !args.iter().any(|a| a == "--no-iroh"))
        }
        other => bail!("unknown workload {other}"),
    };
    for r in &rows {
        println!("{}", r.json());
    }
    table(&rows);
    Ok(())
}
