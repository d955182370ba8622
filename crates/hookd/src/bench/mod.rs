//! `hookd bench`: drives a real `hookd serve` through its public API with a
//! loopback receiver that verifies every signature, and prints throughput,
//! latency, duplicates/missing and the server's CPU time and peak memory for
//! each scenario. Loopback only; every loop is bounded in count and time.

mod machine;
mod procstat;
mod receiver;
mod report;
mod scenarios;
mod server;

use std::time::Instant;

pub use server::Backends;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Scenarios to run, comma-separated (s1..s6, idle). Default: all.
    #[arg(long, value_delimiter = ',')]
    pub scenarios: Option<Vec<String>>,
    /// Divide every message count by 10 (a quick smoke run).
    #[arg(long)]
    pub quick: bool,
    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Store for the server under test (default: a fresh SQLite file per scenario).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Queue for the server under test (default: embedded).
    #[arg(long)]
    pub queue_url: Option<String>,
    /// Run the scenarios this many times over (each pass runs every scenario
    /// once, so that drift of the machine touches all alike), then print each
    /// scenario's median and range. A small machine's figures vary between
    /// runs by more than most changes move them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub repeat: u32,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let wanted = args.scenarios.clone().unwrap_or_else(|| {
        ["idle", "s1", "s2", "s3", "s4", "s5", "s6"]
            .map(String::from)
            .to_vec()
    });
    let backends = Backends {
        database_url: args.database_url.clone(),
        queue_url: args.queue_url.clone(),
    };
    let scale = if args.quick { 10 } else { 1 };
    let machine = tokio::task::spawn_blocking(machine::Machine::read).await?;
    if !args.json {
        machine.print();
        println!(
            "hookd bench: store {}, queue {}\n",
            backends
                .database_url
                .as_deref()
                .unwrap_or("sqlite (fresh file per scenario)"),
            backends.queue_url.as_deref().unwrap_or("embedded"),
        );
    }
    let t0 = Instant::now();
    let mut all = Vec::new();
    for pass in 1..=args.repeat {
        if args.repeat > 1 && !args.json {
            println!("pass {pass} of {}\n", args.repeat);
        }
        for name in &wanted {
            settle().await;
            let mut figures = scenarios::run(name, &backends, scale, t0).await?;
            figures.pass = pass;
            if !args.json {
                figures.print();
            }
            all.push(figures);
        }
    }
    let summary = report::Summary::of_runs(&all);
    if args.json {
        let out = serde_json::json!({ "machine": machine, "scenarios": all, "summary": summary });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if args.repeat > 1 {
        println!("across {} passes (median, and range):", args.repeat);
        for s in &summary {
            s.print();
        }
    }
    Ok(())
}

/// Lets the last scenario's writes reach the disk before the next starts, so
/// that the kernel flushing them (a fan-out run leaves ~100 MB behind) does
/// not stall the next scenario's commits.
async fn settle() {
    let flushed = tokio::task::spawn_blocking(|| std::process::Command::new("sync").status()).await;
    if !matches!(flushed, Ok(Ok(status)) if status.success()) {
        tracing::debug!("could not run sync between scenarios");
    }
}
