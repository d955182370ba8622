//! A quick reading of the machine the bench runs on, so that figures taken on
//! different machines can be compared: one core's speed at the work hookd
//! does per delivery (an HMAC-SHA256 signature), a loopback TCP round trip
//! (what every API request and webhook costs in the kernel), and a disk flush
//! (what every SQLite commit waits for). Each probe is bounded in count and
//! in time.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use hookd_core::signing::{sign_body_hmac, Encoding};
use serde::Serialize;

/// How long the signing probe runs, and its cap on signatures.
const SIGN_FOR: Duration = Duration::from_millis(300);
const SIGN_MAX: u64 = 10_000_000;
/// Round trips of the loopback probe, and its time limit.
const ROUND_TRIPS: usize = 2_000;
const ROUND_TRIPS_FOR: Duration = Duration::from_secs(5);
/// Flushes of the disk probe, and its time limit.
const FLUSHES: usize = 100;
const FLUSHES_FOR: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    /// HMAC-SHA256 signatures of a 1 KiB body per second, on one core.
    pub signatures_per_s_one_core: f64,
    /// Median round trip of 64 bytes over a loopback TCP connection.
    pub loopback_round_trip_us: f64,
    /// Median time to write 16 KiB and `fdatasync` it, in the temp directory.
    pub disk_flush_ms: f64,
}

impl Machine {
    /// Takes the readings (about a second in all); a probe that cannot run
    /// reads 0.
    pub fn read() -> Self {
        Self {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            signatures_per_s_one_core: signatures_per_s(),
            loopback_round_trip_us: loopback_round_trip().map_or(0.0, micros),
            disk_flush_ms: disk_flush(&std::env::temp_dir()).map_or(0.0, |d| micros(d) / 1000.0),
        }
    }

    pub fn print(&self) {
        println!(
            "machine: {} cores; one core signs {:.0}k bodies/s (HMAC-SHA256, 1 KiB); \
             loopback TCP round trip p50 {:.0} µs; disk flush p50 {:.2} ms",
            self.cores,
            self.signatures_per_s_one_core / 1000.0,
            self.loopback_round_trip_us,
            self.disk_flush_ms
        );
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn median(mut v: Vec<Duration>) -> Option<Duration> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

fn signatures_per_s() -> f64 {
    let body = vec![b'x'; 1024];
    let start = Instant::now();
    let mut n = 0u64;
    let mut sink = 0usize;
    while n < SIGN_MAX && start.elapsed() < SIGN_FOR {
        for _ in 0..100 {
            sink = sink.wrapping_add(sign_body_hmac("whsec-probe", &body, Encoding::Hex).len());
        }
        n += 100;
    }
    std::hint::black_box(sink);
    n as f64 / start.elapsed().as_secs_f64()
}

fn loopback_round_trip() -> Option<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0").ok()?;
    let addr = listener.local_addr().ok()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = [0u8; 64];
        for _ in 0..ROUND_TRIPS {
            s.read_exact(&mut buf)?;
            s.write_all(&buf)?;
        }
        Ok(())
    });
    let mut c = TcpStream::connect(addr).ok()?;
    c.set_nodelay(true).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    let (mut buf, mut times) = ([7u8; 64], Vec::with_capacity(ROUND_TRIPS));
    let start = Instant::now();
    for _ in 0..ROUND_TRIPS {
        let t = Instant::now();
        if c.write_all(&buf).is_err() || c.read_exact(&mut buf).is_err() {
            break;
        }
        times.push(t.elapsed());
        if start.elapsed() > ROUND_TRIPS_FOR {
            break;
        }
    }
    drop(c);
    let _ = echo.join();
    median(times)
}

fn disk_flush(dir: &Path) -> Option<Duration> {
    let mut f = tempfile::tempfile_in(dir).ok()?;
    let block = vec![0u8; 16 * 1024];
    let (start, mut times) = (Instant::now(), Vec::with_capacity(FLUSHES));
    for _ in 0..FLUSHES {
        let t = Instant::now();
        f.write_all(&block).ok()?;
        f.sync_data().ok()?;
        times.push(t.elapsed());
        if start.elapsed() > FLUSHES_FOR {
            break;
        }
    }
    median(times)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_probe_gives_a_reading() {
        let m = Machine::read();
        assert!(m.cores >= 1);
        assert!(m.signatures_per_s_one_core > 0.0);
        assert!(m.loopback_round_trip_us > 0.0);
        assert!(m.disk_flush_ms > 0.0);
    }
}
