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
    for name in &wanted {
        settle().await;
        let figures = scenarios::run(name, &backends, scale, t0).await?;
        if !args.json {
            figures.print();
        }
        all.push(figures);
    }
    if args.json {
        let out = serde_json::json!({ "machine": machine, "scenarios": all });
        println!("{}", serde_json::to_string_pretty(&out)?);
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
