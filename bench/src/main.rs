//! `sheaf-bench`: runs workloads W1–W12 (W1M: W1 through the batch API; W10: over a slow
//! link; W11: many documents; W12 and W12D: large nodes; `IDLE`: idle cost) on Sheaf and
//! iroh-docs 0.101, prints one JSON line per measurement and a table of medians with the
//! iroh-docs / Sheaf ratio, and writes `RESULTS.md`.
//!
//! `--only` names workloads; `W10` is the diff-sync matrix over the link emulator, `W10-W3`
//! and `W10-W6` are W3 and W6 over a 100 ms link.
//!
//! ```text
//! sheaf-bench [--quick] [--only W1,W3] [--reps R] [--out bench/RESULTS.md] [--json-only]
//!             [--impls sheaf]
//!             [--w10-n N] [--w10-rtts 20,100] [--w10-losses 0,0.01]
//! sheaf-bench reconcile [--n N] [--diff D] [--reps R] [--no-iroh]
//! ```

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Result;
use clap::{Parser, Subcommand};
use sheaf_bench::{
    data::Stores, link::LinkConfig, nodes::Impl, progress, reconcile, report, w_attack, w_live,
    w_local, w_many, w_memory, w_slow, w_sync, Out,
};

/// Side-by-side benchmarks of Sheaf and iroh-docs 0.101 over loopback.
#[derive(Debug, Parser)]
#[command(name = "sheaf-bench")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// A small subset (small N, one repetition) that runs in about two minutes.
    #[arg(long)]
    quick: bool,
    /// Only these workloads, e.g. `W1,W3`.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Repetitions per measurement (default 3, 1 with `--quick`; W8 defaults to 1).
    #[arg(long)]
    reps: Option<usize>,
    /// Where to write the results (default `bench/RESULTS.md` for a full run; a quick run or
    /// one limited by `--only` writes only when asked).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print only the JSON lines, no table.
    #[arg(long)]
    json_only: bool,
    /// Only these implementations: `sheaf`, `iroh-docs` (default both). For profiling one
    /// implementation alone; ratios need both.
    #[arg(long, value_delimiter = ',')]
    impls: Vec<String>,
    /// W3: document sizes (default 10,000,100,000; 10,000 with `--quick`).
    #[arg(long, value_delimiter = ',', value_parser = count)]
    w3_n: Vec<usize>,
    /// W10: entries in the document (default 100,000; 10,000 with `--quick`).
    #[arg(long, value_parser = count)]
    w10_n: Option<usize>,
    /// W12: pair sizes (default 100,000,1,000,000; 10,000 with `--quick`).
    #[arg(long, value_delimiter = ',', value_parser = count)]
    w12_n: Vec<usize>,
    /// W12D: documents and entries per document, as `DOCS,ENTRIES` (default 100,10,000;
    /// 10,1,000 with `--quick`).
    #[arg(long, value_delimiter = ',', value_parser = count)]
    w12d: Vec<usize>,
    /// W10: new entries per side (default 1,100,1000).
    #[arg(long, value_delimiter = ',', value_parser = count)]
    w10_news: Vec<usize>,
    /// W10: round-trip times in ms (default 20,100).
    #[arg(long, value_delimiter = ',')]
    w10_rtts: Vec<u64>,
    /// W10: loss per direction, 0 to 1 (default 0,0.01).
    #[arg(long, value_delimiter = ',')]
    w10_losses: Vec<f64>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// In-process reconciliation with every Sheaf configuration (no network).
    Reconcile {
        /// Entries per side.
        #[arg(long, default_value = "100000", value_parser = count)]
        n: usize,
        /// Differences between the sides.
        #[arg(long, default_value = "100", value_parser = count)]
        diff: usize,
        /// Repetitions.
        #[arg(long, default_value = "3", value_parser = count)]
        reps: usize,
        /// Sheaf only.
        #[arg(long)]
        no_iroh: bool,
    },
    /// One W12 measurement in a fresh process (started by W12 itself).
    #[command(hide = true)]
    W12Child {
        /// `sheaf` or `iroh-docs`.
        #[arg(long)]
        imp: String,
        /// `pair` or `docs`.
        #[arg(long)]
        shape: String,
        /// Entries per document.
        #[arg(long)]
        n: usize,
        /// The accepting node's folder.
        #[arg(long)]
        a: std::path::PathBuf,
        /// The dialing node's folder.
        #[arg(long)]
        b: std::path::PathBuf,
        /// File of document ids (hex, one per line).
        #[arg(long)]
        ids: std::path::PathBuf,
    },
}

fn count(s: &str) -> Result<usize, String> {
    s.replace('_', "").parse().map_err(|e| format!("{e}"))
}

/// Sizes per workload.
struct Plan {
    w1: Vec<usize>,
    w2: Vec<usize>,
    w3: Vec<usize>,
    w4: Vec<usize>,
    w5: Vec<usize>,
    w6: Vec<usize>,
    w6_writes: usize,
    w7: Vec<usize>,
    w8: (usize, usize),
    /// W8 repetitions unless `--reps` is given: at 1,000,000 entries one repetition takes
    /// minutes (building the four stores, iroh-docs verifying every entry).
    w8_reps: usize,
    /// W9: entries in the document, live writes, no-op syncs per attack.
    w9: w_attack::Sizes,
    /// W11: documents shared, documents changed while one node was down.
    w11: (usize, usize),
    /// Idle cost of Sheaf nodes with this many documents each.
    idle: Vec<usize>,
    /// W10: diff sync over the link emulator.
    w10: w_slow::Matrix,
    /// W3 over a link of [`SLOW_RTT_MS`]: entries.
    w10_w3: Vec<usize>,
    /// W12 pair: entries.
    w12: Vec<usize>,
    /// W12D: documents, entries each.
    w12_docs: (usize, usize),
}

/// Round-trip time of the link for `W10-W3` and `W10-W6`.
const SLOW_RTT_MS: u64 = 100;

impl Plan {
    fn full() -> Self {
        Plan {
            w1: vec![10_000, 100_000],
            w2: vec![100_000, 1_000_000],
            w3: vec![10_000, 100_000],
            w4: vec![100_000],
            w5: vec![100_000],
            w6: vec![2, 10],
            w6_writes: 100,
            w7: vec![10_000, 100_000],
            w8: (1_000_000, 100),
            w8_reps: 1,
            w9: w_attack::Sizes {
                n: 10_000,
                writes: 30,
                syncs: 5,
            },
            w11: (1_000, 10),
            idle: vec![1_000, 5_000],
            w10: w_slow::Matrix {
                n: 100_000,
                news: vec![1, 100, 1_000],
                rtts_ms: vec![20, 100],
                losses: vec![0.0, 0.01],
            },
            w10_w3: vec![10_000],
            w12: vec![100_000, 1_000_000],
            w12_docs: (100, 10_000),
        }
    }

    fn quick() -> Self {
        Plan {
            w1: vec![10_000],
            w2: vec![100_000],
            w3: vec![10_000],
            w4: vec![10_000],
            w5: vec![10_000],
            w6: vec![2],
            w6_writes: 30,
            w7: vec![10_000],
            w8: (100_000, 100),
            w8_reps: 1,
            w9: w_attack::Sizes {
                n: 1_000,
                writes: 20,
                syncs: 3,
            },
            w11: (100, 10),
            idle: vec![100],
            w10: w_slow::Matrix {
                n: 10_000,
                news: vec![1, 100],
                rtts_ms: vec![100],
                losses: vec![0.0],
            },
            w10_w3: vec![1_000],
            w12: vec![10_000],
            w12_docs: (10, 1_000),
        }
    }
}

fn reconcile_table(rows: &[sheaf_bench::Row]) {
    println!(
        "\n{:<24} {:>9} {:>7} {:>11} {:>9} {:>6} {:>11} {:>12} {:>12}",
        "impl",
        "n",
        "diff",
        "ms (mean)",
        "messages",
        "rtts",
        "bytes",
        "store calls",
        "entries read"
    );
    let mut keys: Vec<(&str, usize, usize)> = rows
        .iter()
        .map(|r| (r.implementation, r.n, r.diff))
        .collect();
    keys.sort();
    keys.dedup();
    for (implementation, n, diff) in keys {
        let group: Vec<_> = rows
            .iter()
            .filter(|r| r.implementation == implementation && r.n == n && r.diff == diff)
            .collect();
        let mean = group.iter().map(|r| r.millis).sum::<f64>() / group.len() as f64;
        let last = group[group.len() - 1];
        let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        println!(
            "{:<24} {:>9} {:>7} {:>11.1} {:>9} {:>6} {:>11} {:>12} {:>12}",
            implementation,
            n,
            diff,
            mean,
            last.messages,
            last.round_trips,
            last.bytes,
            opt(last.store_calls),
            opt(last.entries_read)
        );
    }
}

async fn run_async(out: &mut Out, plan: &Plan, wanted: &dyn Fn(&str) -> bool, reps: usize) {
    let stores = match Stores::new() {
        Ok(s) => s,
        Err(e) => {
            progress(&format!("cannot create a temporary folder: {e:#}"));
            return;
        }
    };
    macro_rules! step {
        ($name:literal, $call:expr) => {
            if wanted($name) {
                progress(concat!("running ", $name));
                if let Err(e) = $call.await {
                    progress(&format!("{} failed: {e:#}", $name));
                }
            }
        };
    }
    step!("W1", w_local::w1(out, &plan.w1, reps, &stores, false));
    step!("W1M", w_local::w1(out, &plan.w1, reps, &stores, true));
    step!("W2", w_local::w2(out, &plan.w2, reps, &stores));
    step!("W3", w_sync::initial(out, &plan.w3, reps, &stores, true));
    step!("W4", w_sync::pair(out, &plan.w4, reps, &stores, true));
    step!("W5", w_sync::pair(out, &plan.w5, reps, &stores, false));
    step!("W6", w_live::w6(out, &plan.w6, plan.w6_writes, reps));
    step!("W7", w_sync::initial(out, &plan.w7, reps, &stores, false));
    step!("W9", w_attack::w9(out, plan.w9, reps));
    step!("W11", w_many::w11(out, plan.w11.0, plan.w11.1, reps));
    step!("W10", w_slow::w10(out, &plan.w10, reps, &stores));
    let slow = LinkConfig::symmetric(Duration::from_millis(SLOW_RTT_MS), 0.0, 1);
    step!(
        "W10-W3",
        w_sync::initial_over(out, &plan.w10_w3, reps, &stores, true, Some(slow))
    );
    step!("W10-W6", w_live::w6_over(out, plan.w6_writes, reps, slow));
    step!("W12", w_memory::pair(out, &plan.w12, reps, &stores));
    let (docs, per_doc) = plan.w12_docs;
    step!("W12D", w_memory::docs(out, docs, per_doc, reps, &stores));
    for docs in &plan.idle {
        step!("IDLE", w_many::idle(out, *docs, true));
    }
    if let Some(docs) = plan.idle.first() {
        step!("IDLE", w_many::idle(out, *docs, false));
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // Logs of both implementations on stderr when `RUST_LOG` asks for them.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    if let Some(Command::W12Child {
        imp,
        shape,
        n,
        a,
        b,
        ids,
    }) = cli.command
    {
        let Some(imp) = Impl::BOTH.into_iter().find(|i| i.name() == imp) else {
            anyhow::bail!("unknown implementation {imp:?}");
        };
        let args = w_memory::ChildArgs {
            imp,
            shape,
            n,
            a,
            b,
            ids,
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        return rt.block_on(w_memory::run_child(args));
    }
    if let Some(Command::Reconcile {
        n,
        diff,
        reps,
        no_iroh,
    }) = cli.command
    {
        let rows = reconcile::run(n, diff, reps, !no_iroh);
        for r in &rows {
            println!("{}", r.json());
        }
        reconcile_table(&rows);
        return Ok(());
    }
    if !cli.impls.is_empty() {
        let mut chosen = Vec::new();
        for name in &cli.impls {
            match Impl::BOTH.into_iter().find(|i| i.name() == name.trim()) {
                Some(imp) => chosen.push(imp),
                None => anyhow::bail!("unknown implementation {name:?} (sheaf, iroh-docs)"),
            }
        }
        Impl::select(Vec::leak(chosen));
    }
    let started = Instant::now();
    let mut plan = if cli.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    if !cli.w3_n.is_empty() {
        plan.w3 = cli.w3_n.clone();
    }
    if !cli.w12_n.is_empty() {
        plan.w12 = cli.w12_n.clone();
    }
    match cli.w12d[..] {
        [] => {}
        [docs, per_doc] => plan.w12_docs = (docs, per_doc),
        _ => anyhow::bail!("--w12d takes two numbers: DOCS,ENTRIES"),
    }
    if let Some(n) = cli.w10_n {
        plan.w10.n = n;
    }
    if !cli.w10_news.is_empty() {
        plan.w10.news = cli.w10_news.clone();
    }
    if !cli.w10_rtts.is_empty() {
        plan.w10.rtts_ms = cli.w10_rtts.clone();
    }
    if !cli.w10_losses.is_empty() {
        plan.w10.losses = cli.w10_losses.clone();
    }
    let reps = cli.reps.unwrap_or(if cli.quick { 1 } else { 3 });
    let only: Vec<String> = cli.only.iter().map(|w| w.trim().to_uppercase()).collect();
    let wanted = |w: &str| only.is_empty() || only.iter().any(|o| o == w);
    let mut out = Out::default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(&mut out, &plan, &wanted, reps));
    drop(rt);
    if wanted("W8") {
        progress("running W8");
        let (n, diff) = plan.w8;
        for row in reconcile::run_compared(n, diff, cli.reps.unwrap_or(plan.w8_reps)) {
            if let Some(rec) = row.w8() {
                out.push(rec);
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if !cli.json_only {
        println!(
            "\nMedians; ratio = iroh-docs / Sheaf of a lower-is-better metric \
             (above 1: Sheaf is faster or smaller)."
        );
        println!("{}", report::table(&out.records));
        println!("total {elapsed:.0} s");
    }
    // Only a full run replaces the committed results unasked.
    let full = !cli.quick && cli.only.is_empty();
    let path = match (&cli.out, full) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => Some(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/RESULTS.md"
        ))),
        (None, false) => None,
    };
    if let Some(path) = path {
        let command = std::iter::once("sheaf-bench".to_string())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" ");
        std::fs::write(&path, report::results_md(&command, &out.records, elapsed))?;
        progress(&format!("wrote {}", path.display()));
    }
    Ok(())
}
