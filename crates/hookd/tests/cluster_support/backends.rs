//! The shared PostgreSQL and Redis: a schema and a logical database of one
//! test's own, and outages of either server that always end.

use std::io::Write;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::Rng;
use reqwest::Url;

use super::run;

/// The servers the cluster tests run against.
pub struct Backends {
    pub postgres: String,
    pub redis: String,
}

impl Backends {
    /// The servers `HOOKD_TEST_POSTGRES_URL` and `HOOKD_TEST_REDIS_URL` name,
    /// or `None`, after saying why, when either is unset.
    pub fn from_env(test: &str) -> Option<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        match (var("HOOKD_TEST_POSTGRES_URL"), var("HOOKD_TEST_REDIS_URL")) {
            (Some(postgres), Some(redis)) => Some(Self { postgres, redis }),
            (pg, _) => {
                let missing = if pg.is_none() {
                    "HOOKD_TEST_POSTGRES_URL"
                } else {
                    "HOOKD_TEST_REDIS_URL"
                };
                // Straight to the stream: the harness hides `eprintln!` of passing tests.
                let _ = writeln!(std::io::stderr(), "skipping {test}: {missing} is not set");
                None
            }
        }
    }

    /// Whether this test may stop and start `service` itself, which it can
    /// only do to a server on this machine; says why not otherwise.
    pub fn can_restart(&self, service: Service, test: &str) -> bool {
        let url = match service {
            Service::Postgres => &self.postgres,
            Service::Redis => &self.redis,
        };
        let local = Url::parse(url).ok().is_some_and(|u| {
            matches!(
                u.host_str(),
                Some("127.0.0.1" | "localhost" | "[::1]" | "::1")
            )
        });
        if !local {
            let _ = writeln!(
                std::io::stderr(),
                "skipping {test}: {service:?} at {url} is not on this machine, so it cannot be restarted"
            );
        }
        local
    }
}

/// A schema of one test's own in the shared PostgreSQL: every node of the
/// test connects with `search_path` set to it. Dropped with everything in it
/// when the guard goes (best effort: a leftover `hookd_cluster_*` schema is
/// harmless).
pub struct PgSchema {
    server: String,
    name: String,
    /// The database URL for the nodes.
    pub url: String,
}

impl PgSchema {
    pub fn create(server: &str) -> Self {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_micros();
        let name = format!("hookd_cluster_{}_{micros:x}", std::process::id());
        psql(server, &format!("CREATE SCHEMA {name}")).unwrap_or_else(|e| panic!("{e}"));
        let mut url = Url::parse(server).expect("HOOKD_TEST_POSTGRES_URL is a URL");
        url.query_pairs_mut()
            .append_pair("options", &format!("-c search_path={name}"))
            .append_pair("application_name", &name);
        Self {
            server: server.to_string(),
            name,
            url: url.into(),
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let sql = format!(
            "SET lock_timeout = '5s'; DROP SCHEMA IF EXISTS {} CASCADE",
            self.name
        );
        if let Err(e) = psql(&self.server, &sql) {
            eprintln!("could not drop the test schema {}: {e}", self.name);
        }
    }
}

/// Runs one SQL command with `psql` (the tests have no driver of their own).
fn psql(server: &str, sql: &str) -> Result<String, String> {
    let mut cmd = Command::new("psql");
    cmd.args([
        "-X",
        "-q",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        server,
        "-c",
        sql,
    ])
    .env("PGCONNECT_TIMEOUT", "3");
    run(cmd, Duration::from_secs(30))
}

/// A Redis logical database of one test's own: hookd's keys have a fixed
/// prefix, so two runs on one database would share a queue. Emptied at the
/// start and at the end.
pub struct RedisDb {
    /// The queue URL for the nodes.
    pub url: String,
}

impl RedisDb {
    pub fn create(server: &str) -> Self {
        let mut url = Url::parse(server).expect("HOOKD_TEST_REDIS_URL is a URL");
        // 0 is left to everything else that shares this Redis.
        let db: u8 = rand::thread_rng().gen_range(1..=15);
        url.set_path(&format!("/{db}"));
        let db = Self { url: url.into() };
        db.flush()
            .unwrap_or_else(|e| panic!("emptying {}: {e}", db.url));
        db
    }

    fn flush(&self) -> Result<(), String> {
        let out = redis_cli(&self.url, &["FLUSHDB"])?;
        if out.trim() == "OK" {
            Ok(())
        } else {
            Err(format!("FLUSHDB answered {out:?}"))
        }
    }
}

impl Drop for RedisDb {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            eprintln!("could not empty the test Redis database {}: {e}", self.url);
        }
    }
}

fn redis_cli(url: &str, args: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new("redis-cli");
    cmd.args(["-u", url]).args(args);
    run(cmd, Duration::from_secs(15))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Postgres,
    Redis,
}

/// A stopped PostgreSQL or Redis, started again by [`Outage::end`] or, at the
/// latest, when the guard is dropped (also when the test fails).
pub struct Outage {
    service: Service,
    url: String,
    down: bool,
}

/// How long a restarted server may take to accept connections again.
const RESTART_DEADLINE: Duration = Duration::from_secs(60);

impl Outage {
    /// Stops the server `url` names: PostgreSQL with a fast shutdown (open
    /// sessions are terminated), Redis with `SHUTDOWN NOSAVE` (its data is gone).
    pub fn begin(service: Service, url: &str) -> Outage {
        // Down from the start: should stopping fail half-way, dropping the
        // guard still starts it again.
        let outage = Outage {
            service,
            url: url.to_string(),
            down: true,
        };
        let stopped = match service {
            Service::Postgres => pg_cluster(url).and_then(|(version, name)| {
                run(
                    pg_ctlcluster(&version, &name, &["stop", "-m", "fast"]),
                    Duration::from_secs(60),
                )
            }),
            // The connection closes under the command, so its outcome says nothing.
            Service::Redis => redis_cli(url, &["SHUTDOWN", "NOSAVE"]).or(Ok(String::new())),
        };
        if let Err(e) = stopped {
            panic!("could not stop {service:?}: {e}");
        }
        let until = Instant::now() + Duration::from_secs(30);
        while outage.answers() {
            // Dropping `outage` starts it again, whatever state it is in.
            assert!(
                Instant::now() < until,
                "{service:?} still answers after being stopped"
            );
            thread::sleep(Duration::from_millis(50));
        }
        outage
    }

    /// Starts the server again and waits until it accepts connections;
    /// returns when it did.
    pub fn end(&mut self) -> Instant {
        self.restart().unwrap_or_else(|e| panic!("{e}"))
    }

    fn restart(&mut self) -> Result<Instant, String> {
        match self.service {
            Service::Postgres => {
                let (version, name) = pg_cluster(&self.url)?;
                run(
                    pg_ctlcluster(&version, &name, &["start"]),
                    Duration::from_secs(60),
                )?;
            }
            Service::Redis => {
                let url = Url::parse(&self.url).map_err(|e| e.to_string())?;
                let port = url.port().unwrap_or(6379).to_string();
                for dir in ["/var/lib/redis", "/var/log/redis"] {
                    std::fs::create_dir_all(dir).map_err(|e| format!("creating {dir}: {e}"))?;
                }
                let mut cmd = Command::new("redis-server");
                cmd.args(["--daemonize", "yes", "--bind", "127.0.0.1", "-::1"])
                    .args(["--port", &port, "--save", "", "--appendonly", "no"])
                    .args(["--dir", "/var/lib/redis"])
                    .args(["--logfile", "/var/log/redis/ci.log"]);
                run(cmd, Duration::from_secs(30))?;
            }
        }
        let until = Instant::now() + RESTART_DEADLINE;
        while !self.answers() {
            if Instant::now() > until {
                return Err(format!(
                    "{:?} did not accept connections within {RESTART_DEADLINE:?} of being started",
                    self.service
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
        self.down = false;
        Ok(Instant::now())
    }

    fn answers(&self) -> bool {
        match self.service {
            Service::Postgres => psql(&self.url, "SELECT 1").is_ok(),
            Service::Redis => redis_cli(&self.url, &["PING"]).is_ok_and(|o| o.trim() == "PONG"),
        }
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        if self.down {
            if let Err(e) = self.restart() {
                eprintln!("!!! {:?} is still down after the test: {e}", self.service);
            }
        }
    }
}

/// The version and name of the local cluster listening on the URL's port.
fn pg_cluster(url: &str) -> Result<(String, String), String> {
    let port = Url::parse(url)
        .map_err(|e| e.to_string())?
        .port()
        .unwrap_or(5432)
        .to_string();
    let list = run(
        {
            let mut cmd = Command::new("pg_lsclusters");
            cmd.arg("--no-header");
            cmd
        },
        Duration::from_secs(10),
    )?;
    list.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(2) == Some(&port.as_str()))
        .map(|f| (f[0].to_string(), f[1].to_string()))
        .ok_or_else(|| format!("no local PostgreSQL cluster on port {port}:\n{list}"))
}

fn pg_ctlcluster(version: &str, name: &str, action: &[&str]) -> Command {
    let mut cmd = Command::new("pg_ctlcluster");
    cmd.args(["--skip-systemctl-redirect", version, name])
        .args(action);
    cmd
}
