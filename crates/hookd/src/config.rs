//! Layered configuration: built-in defaults, then an optional TOML file, then
//! `HOOKD_*` environment variables, then command-line flags (highest).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
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
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &self.database_url)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<redacted>"))
            .field("https_only", &self.https_only)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("public_url", &self.public_url)
            .field("log", &self.log)
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
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => Config::default(),
        };
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(v) = env("HOOKD_ADMIN_TOKEN") {
            cfg.admin_token = Some(v);
        }
        if let Some(v) = env("HOOKD_HTTPS_ONLY") {
            cfg.https_only = parse_bool("HOOKD_HTTPS_ONLY", &v)?;
        }
        if let Some(v) = env("HOOKD_MAX_BODY_BYTES") {
            cfg.max_body_bytes = v.parse().with_context(|| format!("HOOKD_MAX_BODY_BYTES={v:?} is not a number"))?;
        }
        if let Some(v) = env("HOOKD_PUBLIC_URL") {
            cfg.public_url = Some(v);
        }
        if let Some(v) = env("HOOKD_LOG") {
            cfg.log = v;
        }
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
        if !self.database_url.starts_with("sqlite:") {
            bail!("database_url {:?}: only sqlite: URLs are supported in this build", self.database_url);
        }
        if self.max_body_bytes < 1024 {
            bail!("max_body_bytes must be at least 1024");
        }
        if self.admin_token.as_deref().is_some_and(|t| t.len() < 16) {
            bail!("HOOKD_ADMIN_TOKEN must be at least 16 characters");
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listen.parse().with_context(|| format!("listen address {:?} is not HOST:PORT", self.listen))
    }

    pub fn server_config(&self, bound: SocketAddr) -> hookd_server::ServerConfig {
        hookd_server::ServerConfig {
            admin_token: self.admin_token.clone(),
            https_only: self.https_only,
            max_body_bytes: self.max_body_bytes,
            public_url: self.public_url.clone().unwrap_or_else(|| format!("http://{bound}")),
        }
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
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\ndatabase_url = \"sqlite:/tmp/x.db\"\n").unwrap();
        let over = Overrides { config: Some(path.clone()), listen: Some("127.0.0.1:9001".into()), ..Default::default() };
        let cfg = Config::load(&over).unwrap();
        assert_eq!(cfg.listen, "127.0.0.1:9001");
        assert_eq!(cfg.database_url, "sqlite:/tmp/x.db");
    }

    #[test]
    fn unknown_keys_in_the_file_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookd.toml");
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let err = Config::load(&Overrides { config: Some(path), ..Default::default() }).unwrap_err();
        assert!(format!("{err:#}").contains("lisen"), "{err:#}");
    }

    #[test]
    fn debug_redacts_the_admin_token() {
        let cfg = Config { admin_token: Some("supersecrettoken123".into()), ..Default::default() };
        assert!(!format!("{cfg:?}").contains("supersecret"));
    }
}
