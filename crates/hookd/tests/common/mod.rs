//! Runs the real `hookd` binary for integration tests: starts `hookd serve` on
//! `127.0.0.1:0`, learns its address from the line it prints once it is
//! listening, keeps its output for the failure report, and makes sure the
//! process never outlives the test.

#![allow(dead_code)] // each test file uses its own subset of these helpers

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long `hookd serve` may take to open the store and bind.
pub const START_DEADLINE: Duration = Duration::from_secs(60);

/// How long a graceful shutdown may take after SIGTERM.
pub const STOP_DEADLINE: Duration = Duration::from_secs(20);

const READY_PREFIX: &str = "hookd listening on ";

/// An admin token unique to this process, as `HOOKD_ADMIN_TOKEN` wants it (16+ chars).
pub fn admin_token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("test-admin-token-{}-{nanos}", std::process::id())
}

/// Output a child wrote, collected line by line from both of its streams.
#[derive(Clone, Default)]
pub struct OutputLog(Arc<Mutex<String>>);

impl OutputLog {
    fn push(&self, stream: &str, line: &str) {
        let mut log = self.0.lock().unwrap_or_else(|e| e.into_inner());
        log.push_str(stream);
        log.push_str(line);
        log.push('\n');
    }

    pub fn text(&self) -> String {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Copies every line of `stream` into `log`, offering each to `lines` too
/// while someone still listens there.
fn drain(
    stream: impl Read + Send + 'static,
    tag: &'static str,
    log: OutputLog,
    lines: Option<mpsc::Sender<String>>,
) {
    thread::spawn(move || {
        let mut lines = lines;
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            log.push(tag, &line);
            if let Some(tx) = &lines {
                if tx.send(line).is_err() {
                    lines = None;
                }
            }
        }
    });
}

/// A running `hookd serve`. Dropping it kills the process; a test that fails
/// while one is running also gets the server's output printed.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`, as the server announced it.
    pub url: String,
    pub token: String,
    log: OutputLog,
}

impl Server {
    /// Starts `hookd serve` on a free loopback port with the SQLite store at
    /// `db`, and returns once the server says it is listening.
    pub fn start(db: &Path, token: &str) -> Server {
        Server::start_with(db, token, &[])
    }

    /// [`Server::start`] with extra `HOOKD_*` settings in the environment.
    pub fn start_with(db: &Path, token: &str, env: &[(&str, &str)]) -> Server {
        Server::start_node(&format!("sqlite:{}", db.display()), token, &[], env)
    }

    /// Starts `hookd serve` on the store at `database_url` (any scheme, e.g. a
    /// `postgres://` URL shared by several nodes), with extra `serve`
    /// arguments such as `--role worker` or `--migrate`, and extra `HOOKD_*`
    /// settings in the environment.
    pub fn start_node(
        database_url: &str,
        token: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookd"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--database-url"])
            .arg(database_url)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The developer's own settings must not leak into the server under test.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("HOOKD_") {
                cmd.env_remove(&key);
            }
        }
        cmd.env("HOOKD_ADMIN_TOKEN", token)
            .env("HOOKD_LOG", "info")
            .envs(env.iter().copied());
        let mut child = cmd.spawn().expect("spawning the hookd binary");

        let log = OutputLog::default();
        let (tx, rx) = mpsc::channel();
        drain(
            child.stdout.take().expect("piped stdout"),
            "[out] ",
            log.clone(),
            Some(tx),
        );
        drain(
            child.stderr.take().expect("piped stderr"),
            "[err] ",
            log.clone(),
            None,
        );

        let mut server = Server {
            child,
            url: String::new(),
            token: token.to_string(),
            log,
        };
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix(READY_PREFIX) {
                        server.url = url.trim().trim_end_matches('/').to_string();
                        return server;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    // Dropping `server` kills it and prints what it wrote.
                    panic!("hookd did not report listening within {START_DEADLINE:?}")
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = server.child.wait().ok();
                    panic!("hookd exited ({status:?}) before listening")
                }
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server has printed so far.
    pub fn output(&self) -> String {
        self.log.text()
    }

    /// Kills the process with SIGKILL (no chance to clean up) and reaps it.
    pub fn kill_hard(&mut self) -> ExitStatus {
        self.child.kill().expect("sending SIGKILL to hookd");
        self.child.wait().expect("reaping hookd")
    }

    /// Sends SIGTERM and waits, up to [`STOP_DEADLINE`], for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("running kill(1)");
        assert!(
            status.success(),
            "kill -TERM {} failed: {status}",
            self.pid()
        );
        let deadline = Instant::now() + STOP_DEADLINE;
        loop {
            if let Some(exit) = self.child.try_wait().expect("waiting for hookd") {
                return exit;
            }
            assert!(
                Instant::now() < deadline,
                "hookd did not exit within {STOP_DEADLINE:?} of SIGTERM"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if thread::panicking() {
            eprintln!("--- hookd output ({}) ---\n{}", self.url, self.output());
        }
    }
}

/// What a finished command printed, and how it exited.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion, killing it if it outlives `deadline`.
pub fn run_with_deadline(mut cmd: Command, deadline: Duration) -> Finished {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let read_all = |mut stream: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stream.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = read_all(Box::new(child.stderr.take().expect("piped stderr")));
    let until = Instant::now() + deadline;
    let (status, timed_out) = loop {
        if let Some(status) = child.try_wait().expect("waiting for the command") {
            break (status, false);
        }
        if Instant::now() >= until {
            let _ = child.kill();
            break (child.wait().expect("waiting for the killed command"), true);
        }
        thread::sleep(Duration::from_millis(50));
    };
    let done = Finished {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    if timed_out {
        panic!(
            "{cmd:?} did not finish within {deadline:?}\n{}\n{}",
            done.stdout, done.stderr
        );
    }
    done
}
