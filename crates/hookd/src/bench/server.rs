//! Starts the `hookd` binary under test (a fresh store per scenario), so its
//! CPU time and memory can be read from `/proc` apart from the bench's own.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

pub struct Spawned {
    child: Child,
    pub url: String,
    pub token: String,
    pub startup: Duration,
    _dir: Option<tempfile::TempDir>,
}

/// Where the server under test keeps its data.
#[derive(Clone, Debug)]
pub struct Backends {
    /// `None`: a fresh SQLite file per scenario.
    pub database_url: Option<String>,
    pub queue_url: Option<String>,
}

impl Spawned {
    pub fn start(backends: &Backends, env: &[(&str, String)]) -> anyhow::Result<Self> {
        let (dir, db) = match &backends.database_url {
            Some(url) => (None, url.clone()),
            None => {
                let dir = tempfile::tempdir()?;
                let db = format!("sqlite:{}", dir.path().join("bench.db").display());
                (Some(dir), db)
            }
        };
        let token = format!("bench-token-{}", rand::random::<u64>());
        let exe = std::env::current_exe().context("finding the hookd binary")?;
        let mut cmd = Command::new(exe);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--database-url", &db])
            .env("HOOKD_ADMIN_TOKEN", &token)
            .env("HOOKD_ALLOWED_NETWORKS", "127.0.0.0/8")
            .env("HOOKD_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if backends.database_url.is_some() {
            cmd.arg("--migrate");
        }
        if let Some(q) = &backends.queue_url {
            cmd.env("HOOKD_QUEUE_URL", q);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let mut child = cmd.spawn().context("starting hookd serve")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("hookd listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                bail!("hookd did not start listening within 60 s");
            }
        };
        Ok(Self {
            startup: started.elapsed(),
            child,
            url,
            token,
            _dir: dir,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then wait (bounded) for a graceful exit; SIGKILL if it hangs.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
