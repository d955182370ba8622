//! The `hookd` binary: parses the command line, loads configuration, builds the
//! backends and hands them to the server. Logic lives in the library crates.

mod bench;
mod config;
mod verify;

use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use config::{Config, Overrides};
use hookd_queue::Queue;
use hookd_server::dispatch::Engine;

const USER_AGENT: &str = concat!("hookd/", env!("CARGO_PKG_VERSION"), " (webhook delivery)");

/// hookd: webhook delivery. Accepts events over a Svix-compatible API, stores
/// them durably, and delivers them, signed, to every subscribed endpoint.
#[derive(Parser)]
#[command(
    name = "hookd",
    version,
    about = "hookd: webhook delivery. Accepts events over a Svix-compatible API, stores them durably, and delivers them, signed, to every subscribed endpoint."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API (and delivery workers) on the configured store.
    Serve {
        #[command(flatten)]
        over: Overrides,
        /// What this node does: `api` (accept and store), `worker` (deliver), or `all`.
        #[arg(long, value_enum, env = "HOOKD_ROLE", default_value_t = Role::All)]
        role: Role,
        /// Apply pending schema migrations on start (PostgreSQL; SQLite always migrates).
        #[arg(long)]
        migrate: bool,
    },
    /// Measure throughput, latency and resource use against a real server (loopback only).
    Bench(bench::BenchArgs),
    /// Check a captured webhook's signature (for debugging a receiver). Exits 1 if invalid.
    Verify(verify::VerifyArgs),
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        action: TokenCommand,
    },
    /// Apply the store's schema migrations and exit.
    Migrate {
        #[command(flatten)]
        over: Overrides,
    },
    /// Print the default configuration as TOML (a starting point for --config).
    Config,
    /// Print the OpenAPI document of the API.
    Openapi,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Role {
    Api,
    Worker,
    All,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Mint a new admin token and print it (it is stored only as a hash).
    Create {
        #[command(flatten)]
        over: Overrides,
    },
}

/// glibc's allocator spent about a sixth of the server's CPU time in the S1
/// profile (many small, short-lived allocations across threads); mimalloc's
/// per-thread free lists make that a fraction. Built without transparent huge
/// pages, which would otherwise nearly double the idle RSS.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    raise_open_files_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(run(cli))
}

/// Every request in flight holds a socket, to an endpoint or from a producer,
/// and `max_in_flight` allows more than the soft limit on open files that many
/// systems start a process with (1,024). The soft limit is raised to the hard
/// one, as the Go runtime does for every program; should that fail the limit
/// stays as it was, and a request over it fails and is retried.
fn raise_open_files_limit() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            over,
            role,
            migrate,
        } => serve(Config::load(&over)?, role, migrate).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Verify(args) => {
            println!("{}", verify::run(&args)?);
            Ok(())
        }
        Command::Token {
            action: TokenCommand::Create { over },
        } => {
            let cfg = Config::load(&over)?;
            let store = hookd_store::open(&cfg.database_url)
                .await
                .context("opening the store")?;
            let token = hookd_server::auth::create_admin_token(store.as_ref()).await?;
            println!("{token}");
            Ok(())
        }
        Command::Migrate { over } => {
            let cfg = Config::load(&over)?;
            hookd_store::open(&cfg.database_url)
                .await
                .context("opening and migrating the store")?;
            println!("migrations applied to {}", cfg.database_url);
            Ok(())
        }
        Command::Config => {
            print!("{}", toml::to_string(&Config::default())?);
            Ok(())
        }
        Command::Openapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(&hookd_server::openapi())?
            );
            Ok(())
        }
    }
}

async fn serve(cfg: Config, role: Role, migrate: bool) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cfg.log).context("invalid log filter")?,
        )
        .with_writer(std::io::stderr)
        .init();
    tracing::debug!(config = ?cfg, ?role, "starting");
    let store = hookd_store::open_with(&cfg.database_url, migrate)
        .await
        .with_context(|| format!("opening the store at {}", cfg.database_url))?;
    if role != Role::Worker && cfg.admin_token.is_none() && store.count_admin_tokens().await? == 0 {
        let token = hookd_server::auth::create_admin_token(store.as_ref()).await?;
        println!(
            "Generated an admin token. It is shown only this once; keep it safe:\n\n    {token}\n"
        );
    }
    let listener = tokio::net::TcpListener::bind(cfg.listen_addr()?)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let queue: Arc<dyn Queue> = match (role, cfg.queue_url.as_deref()) {
        // With the in-process queue and no workers here, nobody would ever take
        // the tasks: drop them. The deliveries wait in the store, and a worker
        // re-queues them when it starts.
        (Role::Api, None) => Arc::new(DiscardQueue),
        (_, url) => hookd_queue::open(url).await.context("opening the queue")?,
    };
    let state = hookd_server::AppState::new(store.clone(), queue.clone(), cfg.server_config(addr));
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let workers = if role == Role::Api {
        None
    } else {
        let client = hookd_server::outbound::WebhookClient::new(cfg.ssrf_guard(), USER_AGENT);
        let engine = Arc::new(Engine::new(store, queue, client, cfg.engine_config()?));
        let requeued = engine
            .prepare()
            .await
            .context("re-queuing pending deliveries")?;
        if requeued > 0 {
            tracing::info!(requeued, "resuming pending deliveries");
        }
        Some(tokio::spawn(engine.run(shutdown.clone())))
    };
    println!("hookd listening on http://{addr}");
    tracing::info!(%addr, ?role, "listening");
    let app = match role {
        Role::Worker => hookd_server::worker_router(state),
        Role::Api | Role::All => hookd_server::router(state),
    };
    hookd_server::serve_router(listener, app, shutdown)
        .await
        .context("serving")?;
    if let Some(w) = workers {
        w.await.context("delivery workers")?;
    }
    tracing::info!("stopped");
    Ok(())
}

/// The queue of an API-only node that has no shared queue: see `serve`.
struct DiscardQueue;

#[async_trait::async_trait]
impl Queue for DiscardQueue {
    async fn push(&self, _: Vec<hookd_queue::Task>) -> hookd_queue::Result<()> {
        Ok(())
    }
    async fn pop(
        &self,
        _: usize,
        wait: std::time::Duration,
    ) -> hookd_queue::Result<Vec<hookd_queue::Lease>> {
        tokio::time::sleep(wait).await;
        Ok(Vec::new())
    }
    async fn ack(&self, _: &[hookd_queue::Lease]) -> hookd_queue::Result<()> {
        Ok(())
    }
    async fn len(&self) -> hookd_queue::Result<usize> {
        Ok(0)
    }
}

/// Cancels `token` on the first SIGINT or SIGTERM.
async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested");
    token.cancel();
}
