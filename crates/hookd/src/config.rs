//! Layered configuration: built-in defaults, then an optional TOML file, then
//! `HOOKD_*` environment variables, then command-line flags (highest).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use hookd_core::retry::RetryPolicy;
use hookd_server::dispatch::{EngineConfig, HeaderFamily};
use hookd_server::outbound::SsrfGuard;
use serde::{Deserialize, Serialize};

/// Every setting `hookd serve` reads. `hookd config` prints these defaults.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the API listens on. Env: HOOKD_LISTEN.
    pub listen: String,
    /// Store URL: `sqlite:PATH` (embedded, the default). Env: HOOKD_DATABASE_URL.
    pub database_url: String,
    /// Fixed admin token; when unset and the store has none, one is generated and
    /// printed once. Env: HOOKD_ADMIN_TOKEN.
    pub admin_token: Option<String>,
    /// Refuse `http://` endpoint URLs. Env: HOOKD_HTTPS_ONLY.
    pub https_only: bool,
    /// Largest accepted request body in bytes; larger ones get 413. Env: HOOKD_MAX_BODY_BYTES.
    pub max_body_bytes: usize,
    /// External base URL of this server (portal links). Env: HOOKD_PUBLIC_URL.
    pub public_url: Option<String>,
    /// Log filter (tracing `EnvFilter` syntax). Env: HOOKD_LOG.
    pub log: String,
    /// Queue URL; unset means the embedded in-process queue. Env: HOOKD_QUEUE_URL.
    pub queue_url: Option<String>,
    /// Default retry delays in seconds, comma-separated (default: the `standard`
    /// preset, 5s 5m 30m 2h 5h 10h 10h, with ±20% jitter). Env: HOOKD_RETRY_SCHEDULE.
    pub retry_schedule: Option<String>,
    /// Per-request timeout in milliseconds (1000..=30000). Env: HOOKD_REQUEST_TIMEOUT_MS.
    pub request_timeout_ms: u64,
    /// Signature header family: `webhook` (webhook-*) or `svix` (svix-*). Env: HOOKD_HEADER_FAMILY.
    pub header_family: String,
    /// Comma-separated CIDRs webhooks may reach despite being private (e.g.
    /// `127.0.0.0/8` for local development). Env: HOOKD_ALLOWED_NETWORKS.
    pub allowed_networks: String,
    /// Most concurrent requests to one endpoint. Env: HOOKD_ENDPOINT_CONCURRENCY.
    pub endpoint_concurrency: usize,
    /// Most concurrent requests in all. Env: HOOKD_MAX_IN_FLIGHT.
    pub max_in_flight: usize,
    /// Most concurrent requests, in all, to endpoints whose quickest recent
    /// answer came within 5 ms (the rest wait in their endpoints' lanes,
    /// shared out fairly); 64 per core by default. Env: HOOKD_QUICK_IN_FLIGHT.
    pub quick_in_flight: usize,
    /// Disable an endpoint after it has failed without a success for this many
    /// seconds (default 5 days). Env: HOOKD_DISABLE_AFTER_SECS.
    pub disable_after_secs: u64,
    /// Seconds in-flight deliveries may take to finish on shutdown. Env: HOOKD_SHUTDOWN_GRACE_SECS.
    pub shutdown_grace_secs: u64,
    /// uid of the application whose endpoints receive operational events
    /// (created on start). Env: HOOKD_OPERATIONAL_APP.
    pub operational_app: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8071".into(),
            database_url: "sqlite:./hookd.db".into(),
            admin_token: None,
            https_only: false,
            max_body_bytes: 2 * 1024 * 1024,
            public_url: None,
            log: "info".into(),
            queue_url: None,
            retry_schedule: None,
            request_timeout_ms: 15_000,
            header_family: "webhook".into(),
            allowed_networks: String::new(),
            endpoint_concurrency: 32,
            max_in_flight: 4096,
            quick_in_flight: hookd_server::dispatch::default_quick_in_flight(),
            disable_after_secs: 5 * 24 * 3600,
            shutdown_grace_secs: 30,
            operational_app: "hookd-operational".into(),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &redact_url(&self.database_url))
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field("https_only", &self.https_only)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("public_url", &self.public_url)
            .field("log", &self.log)
            .field("queue_url", &self.queue_url.as_deref().map(redact_url))
            .field("retry_schedule", &self.retry_schedule)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("header_family", &self.header_family)
            .field("allowed_networks", &self.allowed_networks)
            .field("endpoint_concurrency", &self.endpoint_concurrency)
            .field("max_in_flight", &self.max_in_flight)
            .field("quick_in_flight", &self.quick_in_flight)
            .field("disable_after_secs", &self.disable_after_secs)
            .field("shutdown_grace_secs", &self.shutdown_grace_secs)
            .field("operational_app", &self.operational_app)
            .finish()
    }
}

/// Values given on the command line or in the environment; `None` = not given.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Overrides {
    /// Address to listen on [env: HOOKD_LISTEN] [default: 127.0.0.1:8071]
    #[arg(long, env = "HOOKD_LISTEN", hide_env = true)]
    pub listen: Option<String>,
    /// Store URL [env: HOOKD_DATABASE_URL] [default: sqlite:./hookd.db]
    #[arg(long, env = "HOOKD_DATABASE_URL", hide_env = true)]
    pub database_url: Option<String>,
    /// TOML config file; flags and env vars override it [env: HOOKD_CONFIG]
    #[arg(long, env = "HOOKD_CONFIG", hide_env = true)]
    pub config: Option<PathBuf>,
}

impl Config {
    /// Resolves the effective configuration from every layer.
    pub fn load(over: &Overrides) -> anyhow::Result<Self> {
        let mut cfg = match &over.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => Config::default(),
        };
        if let Some(v) = env_var("HOOKD_ADMIN_TOKEN") {
            cfg.admin_token = Some(v);
        }
        if let Some(v) = env_var("HOOKD_HTTPS_ONLY") {
            cfg.https_only = parse_bool("HOOKD_HTTPS_ONLY", &v)?;
        }
        from_env(&mut cfg.max_body_bytes, "HOOKD_MAX_BODY_BYTES")?;
        if let Some(v) = env_var("HOOKD_PUBLIC_URL") {
            cfg.public_url = Some(v);
        }
        from_env(&mut cfg.log, "HOOKD_LOG")?;
        if let Some(v) = env_var("HOOKD_QUEUE_URL") {
            cfg.queue_url = Some(v);
        }
        if let Some(v) = env_var("HOOKD_RETRY_SCHEDULE") {
            cfg.retry_schedule = Some(v);
        }
        from_env(&mut cfg.request_timeout_ms, "HOOKD_REQUEST_TIMEOUT_MS")?;
        from_env(&mut cfg.header_family, "HOOKD_HEADER_FAMILY")?;
        from_env(&mut cfg.allowed_networks, "HOOKD_ALLOWED_NETWORKS")?;
        from_env(&mut cfg.endpoint_concurrency, "HOOKD_ENDPOINT_CONCURRENCY")?;
        from_env(&mut cfg.max_in_flight, "HOOKD_MAX_IN_FLIGHT")?;
        from_env(&mut cfg.quick_in_flight, "HOOKD_QUICK_IN_FLIGHT")?;
        from_env(&mut cfg.disable_after_secs, "HOOKD_DISABLE_AFTER_SECS")?;
        from_env(&mut cfg.shutdown_grace_secs, "HOOKD_SHUTDOWN_GRACE_SECS")?;
        from_env(&mut cfg.operational_app, "HOOKD_OPERATIONAL_APP")?;
        if let Some(v) = &over.listen {
            cfg.listen = v.clone();
        }
        if let Some(v) = &over.database_url {
            cfg.database_url = v.clone();
        }
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.listen_addr()?;
        let scheme = self.database_url.split(':').next().unwrap_or_default();
        if !matches!(scheme, "sqlite" | "postgres" | "postgresql") {
            bail!("database_url: unsupported scheme {scheme:?}; use sqlite:PATH or postgres://...");
        }
        if self.max_body_bytes < 1024 {
            bail!("max_body_bytes must be at least 1024");
        }
        if self.admin_token.as_deref().is_some_and(|t| t.len() < 16) {
            bail!("HOOKD_ADMIN_TOKEN must be at least 16 characters");
        }
        self.engine_config()?;
        SsrfGuard::parse_allowed(&self.allowed_networks)
            .map_err(|e| anyhow::anyhow!("allowed_networks: {e}"))?;
        if let Some(q) = &self.queue_url {
            hookd_queue::check_url(q).map_err(|e| anyhow::anyhow!("queue_url: {e}"))?;
        }
        Ok(())
    }

    pub fn engine_config(&self) -> anyhow::Result<EngineConfig> {
        let retry = match &self.retry_schedule {
            Some(s) => RetryPolicy::parse_schedule(s)
                .map_err(|e| anyhow::anyhow!("retry_schedule: {e}"))?,
            None => RetryPolicy::default(),
        };
        if !(1_000..=30_000).contains(&self.request_timeout_ms) {
            bail!(
                "request_timeout_ms must be between 1000 and 30000, not {}",
                self.request_timeout_ms
            );
        }
        let header_family = HeaderFamily::parse(&self.header_family).with_context(|| {
            format!(
                "header_family must be 'webhook' or 'svix', not {:?}",
                self.header_family
            )
        })?;
        if self.endpoint_concurrency == 0 || self.max_in_flight == 0 || self.quick_in_flight == 0 {
            bail!("endpoint_concurrency, max_in_flight and quick_in_flight must be at least 1");
        }
        hookd_core::validate::uid(&self.operational_app, "app_")
            .map_err(|e| anyhow::anyhow!("operational_app: {e}"))?;
        Ok(EngineConfig {
            retry,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            header_family,
            max_in_flight: self.max_in_flight,
            endpoint_concurrency: self.endpoint_concurrency,
            quick_in_flight: self.quick_in_flight,
            failing_after: 4,
            disable_after: Duration::from_secs(self.disable_after_secs),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
            operational_app_uid: self.operational_app.clone(),
            ..EngineConfig::default()
        })
    }

    pub fn ssrf_guard(&self) -> SsrfGuard {
        SsrfGuard::new(SsrfGuard::parse_allowed(&self.allowed_networks).unwrap_or_default())
    }

    pub fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listen
            .parse()
            .with_context(|| format!("listen address {:?} is not HOST:PORT", self.listen))
    }

    pub fn server_config(&self, bound: SocketAddr) -> hookd_server::ServerConfig {
        hookd_server::ServerConfig {
            admin_token: self.admin_token.clone(),
            https_only: self.https_only,
            max_body_bytes: self.max_body_bytes,
            public_url: self
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{bound}")),
        }
    }
}

/// The URL with any password replaced, for logs.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Overwrites `target` with the parsed value of env var `name`, when set.
fn from_env<T: FromEnv>(target: &mut T, name: &str) -> anyhow::Result<()> {
    if let Some(v) = env_var(name) {
        *target = T::from_env(&v).with_context(|| format!("{name}={v:?} is not valid"))?;
    }
    Ok(())
}

trait FromEnv: Sized {
    fn from_env(v: &str) -> anyhow::Result<Self>;
}

impl<T: std::str::FromStr> FromEnv for T
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    fn from_env(v: &str) -> anyhow::Result<Self> {
        Ok(v.parse()?)
    }
}

fn parse_bool(name: &str, v: &str) -> anyhow::Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => bail!("{name}={v:?} is not a boolean"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip_through_toml() {
        let text = toml::to_string(&Config::default()).unwrap();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back.listen, "127.0.0.1:8071");
        assert_eq!(back.database_url, "sqlite:./hookd.db");
        back.validate().unwrap();
    }

    #[test]
    fn file_values_are_overridden_by_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookd.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\ndatabase_url = \"sqlite:/tmp/x.db\"\n",
        )
        .unwrap();
        let over = Overrides {
            config: Some(path.clone()),
            listen: Some("127.0.0.1:9001".into()),
            ..Default::default()
        };
        let cfg = Config::load(&over).unwrap();
        assert_eq!(cfg.listen, "127.0.0.1:9001");
        assert_eq!(cfg.database_url, "sqlite:/tmp/x.db");
    }

    #[test]
    fn the_quick_request_budget_reaches_the_engine_and_cannot_be_zero() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookd.toml");
        std::fs::write(&path, "quick_in_flight = 24\n").unwrap();
        let over = Overrides {
            config: Some(path.clone()),
            ..Default::default()
        };
        let cfg = Config::load(&over).unwrap();
        assert_eq!(cfg.engine_config().unwrap().quick_in_flight, 24);
        std::fs::write(&path, "quick_in_flight = 0\n").unwrap();
        let err = Config::load(&over).unwrap_err().to_string();
        assert!(err.contains("quick_in_flight"), "{err}");
    }

    #[test]
    fn unknown_keys_in_the_file_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookd.toml");
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let err = Config::load(&Overrides {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("lisen"), "{err:#}");
    }

    #[test]
    fn debug_redacts_the_admin_token_and_url_passwords() {
        let cfg = Config {
            admin_token: Some("supersecrettoken123".into()),
            database_url: "postgres://hookd:dbsecretpw@db:5432/hookd".into(),
            queue_url: Some("redis://:redissecretpw@cache:6379".into()),
            ..Default::default()
        };
        let shown = format!("{cfg:?}");
        for secret in ["supersecret", "dbsecretpw", "redissecretpw"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
    }

    #[test]
    fn postgres_urls_are_accepted_and_unknown_schemes_refused() {
        let pg = Config {
            database_url: "postgres://postgres@127.0.0.1/test".into(),
            ..Default::default()
        };
        pg.validate().unwrap();
        let bad = Config {
            database_url: "mysql://x".into(),
            ..Default::default()
        };
        assert!(format!("{:#}", bad.validate().unwrap_err()).contains("mysql"));
    }
}
