//! What the cluster tests share: the PostgreSQL schema and Redis database of
//! one test, a lock that keeps cluster tests from overlapping, outages of the
//! shared PostgreSQL or Redis that always end, a client for the API, and a
//! webhook receiver that counts what arrives where.

mod api;
mod backends;
mod lock;
mod receiver;

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub use api::{accepted, Api, Producer, Refusal};
pub use backends::{Backends, Outage, PgSchema, RedisDb, Service};
pub use lock::exclusive;
pub use receiver::Receiver;

/// Runs `cmd` to completion within `deadline`; its stdout when it succeeds.
/// Never panics, so that guards may use it while a failed test unwinds.
fn run(mut cmd: Command, deadline: Duration) -> Result<String, String> {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawning {shown}: {e}"))?;
    let read_all = |stream: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut s) = stream {
                let _ = s.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = read_all(child.stdout.take().map(|s| Box::new(s) as _));
    let stderr = read_all(child.stderr.take().map(|s| Box::new(s) as _));
    let until = Instant::now() + deadline;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < until => thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let (out, err) = (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    );
    match status {
        Some(s) if s.success() => Ok(out),
        Some(s) => Err(format!(
            "{shown} failed ({s}): {}{}",
            out.trim(),
            err.trim()
        )),
        None => Err(format!("{shown} did not finish within {deadline:?}")),
    }
}

/// Polls `done` until it holds or `within` passes; false on timeout.
pub async fn wait_for(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + within;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
