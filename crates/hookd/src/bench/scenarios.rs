//! The scenarios S1–S6 (and `idle`), each against a freshly started server.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use futures::StreamExt;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use super::procstat;
use super::receiver::{Behaviour, Receiver};
use super::report::{Figures, Percentiles};
use super::server::{Backends, Spawned};

pub async fn run(
    name: &str,
    backends: &Backends,
    scale: usize,
    t0: Instant,
) -> anyhow::Result<Figures> {
    match name {
        "idle" => idle(backends).await,
        "s1" => s1(backends, scale, t0).await,
        "s2" => s2(backends, scale, t0).await,
        "s3" => s3(backends, scale, t0).await,
        "s4" => s4(backends, scale, t0).await,
        "s5" => s5(backends, scale, t0).await,
        "s6" => s6(backends, scale, t0).await,
        other => bail!("unknown scenario {other:?}; choose from idle, s1..s6"),
    }
}

/// What the producers saw.
#[derive(Default)]
struct Ingest {
    first_send_us: u64,
    last_done_us: u64,
    post_us: Vec<u64>,
    accepted: u64,
}

impl Ingest {
    fn rate(&self) -> f64 {
        let secs = (self.last_done_us.saturating_sub(self.first_send_us)) as f64 / 1e6;
        if secs > 0.0 {
            self.accepted as f64 / secs
        } else {
            0.0
        }
    }
}

/// The producers' client for `POST /msg`: hyper's pooled client used
/// directly, like the server's own outbound client, so that the load generator
/// takes as little as it can of the cores it shares with the server under test
/// (with reqwest, the bench process took 2,877 samples over 4 s of S1 at
/// 6,615 deliveries/s; with this, 1,804 at 9,820/s).
type Producers = Client<HttpConnector, Full<Bytes>>;

fn producers() -> Producers {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build_http()
}

/// One scenario's server, receiver and application.
struct Run {
    server: Spawned,
    rx: Receiver,
    rx_base: String,
    http: reqwest::Client,
    producers: Producers,
    app: String,
    t0: Instant,
    cpu_at_start: f64,
}

impl Run {
    async fn start(
        backends: &Backends,
        env: &[(&str, String)],
        t0: Instant,
    ) -> anyhow::Result<Self> {
        let server = Spawned::start(backends, env)?;
        Self::on(server, t0).await
    }

    async fn on(server: Spawned, t0: Instant) -> anyhow::Result<Self> {
        let (rx, rx_base) = Receiver::start(t0).await?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()?;
        let cpu_at_start = procstat::cpu_seconds(server.pid()).unwrap_or(0.0);
        let mut run = Self {
            server,
            rx,
            rx_base,
            http,
            producers: producers(),
            app: String::new(),
            t0,
            cpu_at_start,
        };
        let app = run
            .api(
                "POST",
                "/app",
                json!({"name": "bench", "uid": format!("bench-{}", rand::random::<u32>())}),
            )
            .await?;
        run.app = app["id"].as_str().context("app id")?.to_string();
        Ok(run)
    }

    async fn api(
        &self,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let resp = self
            .http
            .request(method, format!("{}/api/v1{path}", self.server.url))
            .bearer_auth(&self.server.token)
            .json(&body)
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{path}: {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    /// An endpoint numbered `n` with its own secret, optionally on a channel.
    async fn endpoint(
        &self,
        n: usize,
        behaviour: Behaviour,
        channel: Option<&str>,
    ) -> anyhow::Result<()> {
        let secret = hookd_core::signing::EndpointSecret::generate_hmac().to_secret_string();
        self.rx.add(n, &secret, behaviour)?;
        let mut body = json!({"url": format!("{}/ep/{n}", self.rx_base), "secret": secret});
        if let Some(c) = channel {
            body["channels"] = json!([c]);
        }
        self.api("POST", &format!("/app/{}/endpoint", self.app), body)
            .await?;
        Ok(())
    }

    fn now_us(&self) -> u64 {
        self.t0.elapsed().as_micros() as u64
    }

    async fn post_one(&self, seq: usize, channel: Option<&str>) -> anyhow::Result<(u64, u64)> {
        let sent = self.now_us();
        let mut body = json!({
            "eventType": "invoice.paid",
            "payload": {"seq": seq, "sent_us": sent, "invoice": {"id": format!("in_{seq:08}"), "amount": 4200, "currency": "EUR", "customer": "cus_0001"}},
        });
        if let Some(c) = channel {
            body["channels"] = json!([c]);
        }
        let req = http::Request::post(format!("{}/api/v1/app/{}/msg", self.server.url, self.app))
            .header(AUTHORIZATION, format!("Bearer {}", self.server.token))
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(serde_json::to_vec(&body)?)))?;
        let resp = self.producers.request(req).await?;
        let status = resp.status();
        // Read to the end, so that the connection goes back to the pool.
        let answer = resp.into_body().collect().await?.to_bytes();
        if status != http::StatusCode::ACCEPTED {
            bail!(
                "message {seq}: {status} {}",
                String::from_utf8_lossy(&answer)
            );
        }
        Ok((sent, self.now_us()))
    }

    /// `n` messages from `producers` concurrent producers.
    async fn send_many(
        &self,
        n: usize,
        producers: usize,
        channel: Option<&str>,
    ) -> anyhow::Result<Ingest> {
        let results: Vec<anyhow::Result<(u64, u64)>> = futures::stream::iter(0..n)
            .map(|i| self.post_one(i, channel))
            .buffer_unordered(producers)
            .collect()
            .await;
        let mut ingest = Ingest {
            first_send_us: u64::MAX,
            ..Default::default()
        };
        for r in results {
            let (sent, done) = r?;
            ingest.first_send_us = ingest.first_send_us.min(sent);
            ingest.last_done_us = ingest.last_done_us.max(done);
            ingest.post_us.push(done - sent);
            ingest.accepted += 1;
        }
        Ok(ingest)
    }

    /// `rate` messages per second for `secs` seconds, each sent on its tick.
    async fn send_paced(&self, rate: u32, secs: u32) -> anyhow::Result<Ingest> {
        let total = (rate * secs) as usize;
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut inflight = futures::stream::FuturesUnordered::new();
        let mut ingest = Ingest {
            first_send_us: u64::MAX,
            ..Default::default()
        };
        let mut sent = 0;
        while sent < total || !inflight.is_empty() {
            tokio::select! {
                _ = tick.tick(), if sent < total => {
                    inflight.push(self.post_one(sent, None));
                    sent += 1;
                }
                Some(r) = inflight.next(), if !inflight.is_empty() => {
                    let (s, d) = r?;
                    ingest.first_send_us = ingest.first_send_us.min(s);
                    ingest.last_done_us = ingest.last_done_us.max(d);
                    ingest.post_us.push(d - s);
                    ingest.accepted += 1;
                }
            }
        }
        Ok(ingest)
    }

    /// Waits until `expected` requests were answered 2xx (bounded by `within`).
    async fn wait_delivered(&self, expected: u64, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.rx.ok_count.load(Ordering::Relaxed) >= expected {
                // A moment more, so that duplicates arriving late are counted.
                tokio::time::sleep(Duration::from_millis(300)).await;
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// Computes the figures over the receipts of `only` (an endpoint number) or all.
    fn finish(
        self,
        scenario: &str,
        description: String,
        expected: u64,
        ingest: &Ingest,
        only: Option<usize>,
    ) -> Figures {
        let receipts = self.rx.take_receipts();
        let mut seen = HashSet::new();
        let mut latencies = Vec::new();
        let mut last_arrival = 0;
        let mut duplicates = 0;
        for r in receipts
            .iter()
            .filter(|r| r.answered_ok && only.is_none_or(|n| n == r.endpoint))
        {
            if seen.insert((r.endpoint, r.msg_id.clone())) {
                latencies.push(r.latency_us);
                last_arrival = last_arrival.max(r.arrived_us);
            } else {
                duplicates += 1;
            }
        }
        let delivered = seen.len() as u64;
        let span = last_arrival.saturating_sub(ingest.first_send_us) as f64 / 1e6;
        let pid = self.server.pid();
        let figures = Figures {
            scenario: scenario.to_string(),
            description,
            ingest_msgs_per_s: ingest.rate(),
            ingest_latency: Percentiles::of(ingest.post_us.clone()),
            deliveries_per_s: if span > 0.0 {
                delivered as f64 / span
            } else {
                0.0
            },
            latency: Percentiles::of(latencies),
            expected_deliveries: expected,
            delivered,
            duplicates,
            missing: expected.saturating_sub(delivered),
            bad_signatures: self.rx.bad_signatures.load(Ordering::Relaxed),
            server_cpu_s: procstat::cpu_seconds(pid).map(|c| c - self.cpu_at_start),
            server_peak_rss_mib: procstat::peak_rss_mib(pid),
            notes: vec![],
            pass: 1,
        };
        self.server.stop();
        figures
    }
}

fn quiet_env() -> Vec<(&'static str, String)> {
    vec![("HOOKD_SHUTDOWN_GRACE_SECS", "1".into())]
}

async fn idle(backends: &Backends) -> anyhow::Result<Figures> {
    let server = Spawned::start(backends, &quiet_env())?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss = procstat::rss_mib(server.pid());
    let figures = Figures {
        scenario: "idle".into(),
        description: "a started server with nothing to do".into(),
        server_cpu_s: procstat::cpu_seconds(server.pid()),
        server_peak_rss_mib: procstat::peak_rss_mib(server.pid()),
        notes: vec![
            (
                "start-up".into(),
                format!(
                    "{:.1} ms (spawn to listening)",
                    server.startup.as_secs_f64() * 1e3
                ),
            ),
            (
                "idle RSS".into(),
                rss.map_or("n/a".into(), |r| format!("{r:.1} MiB")),
            ),
        ],
        ..Default::default()
    };
    server.stop();
    Ok(figures)
}

async fn s1(backends: &Backends, scale: usize, t0: Instant) -> anyhow::Result<Figures> {
    let n = 20_000 / scale;
    let run = Run::start(backends, &quiet_env(), t0).await?;
    run.endpoint(0, Behaviour::Ok, None).await?;
    let ingest = run.send_many(n, 64, None).await?;
    run.wait_delivered(n as u64, Duration::from_secs(300)).await;
    Ok(run.finish(
        "S1",
        format!("1 endpoint, {n} messages, 64 concurrent producers"),
        n as u64,
        &ingest,
        None,
    ))
}

async fn s2(backends: &Backends, scale: usize, t0: Instant) -> anyhow::Result<Figures> {
    let (n, fanout) = (1_000 / scale, 100);
    let run = Run::start(backends, &quiet_env(), t0).await?;
    for e in 0..fanout {
        run.endpoint(e, Behaviour::Ok, None).await?;
    }
    let ingest = run.send_many(n, 16, None).await?;
    let expected = (n * fanout) as u64;
    run.wait_delivered(expected, Duration::from_secs(300)).await;
    Ok(run.finish(
        "S2",
        format!("fan-out: {n} messages to {fanout} endpoints each"),
        expected,
        &ingest,
        None,
    ))
}

async fn s3(backends: &Backends, scale: usize, t0: Instant) -> anyhow::Result<Figures> {
    let secs = (20 / scale).max(2) as u32;
    let run = Run::start(backends, &quiet_env(), t0).await?;
    run.endpoint(0, Behaviour::Ok, None).await?;
    let ingest = run.send_paced(500, secs).await?;
    let expected = ingest.accepted;
    run.wait_delivered(expected, Duration::from_secs(120)).await;
    Ok(run.finish(
        "S3",
        format!("steady 500 msg/s for {secs} s"),
        expected,
        &ingest,
        None,
    ))
}

async fn s4(backends: &Backends, scale: usize, t0: Instant) -> anyhow::Result<Figures> {
    let n = 2_000 / scale;
    let run = Run::start(backends, &quiet_env(), t0).await?;
    run.endpoint(0, Behaviour::Ok, None).await?;
    run.endpoint(1, Behaviour::Slow(Duration::from_secs(5)), None)
        .await?;
    let ingest = run.send_many(n, 64, None).await?;
    // Only the healthy endpoint is waited for: the slow one works through its backlog.
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let healthy = run.rx.take_receipts_count(0);
        if healthy >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let slow_done = run.rx.take_receipts_count(1);
    let mut f = run.finish(
        "S4",
        format!("2 endpoints, one answering after 5 s, {n} messages; healthy endpoint"),
        n as u64,
        &ingest,
        Some(0),
    );
    f.notes.push((
        "slow endpoint".into(),
        format!("{slow_done} of {n} answered by the time the healthy one finished"),
    ));
    Ok(f)
}

async fn s5(backends: &Backends, scale: usize, t0: Instant) -> anyhow::Result<Figures> {
    let n = 5_000 / scale;
    let mut env = quiet_env();
    env.push(("HOOKD_RETRY_SCHEDULE", "1,1,1,1,1,1,1,1,1,1,1,1".into()));
    let run = Run::start(backends, &env, t0).await?;
    run.endpoint(0, Behaviour::Flaky(0.3), None).await?;
    let ingest = run.send_many(n, 64, None).await?;
    run.wait_delivered(n as u64, Duration::from_secs(300)).await;
    let attempts = run.rx.receipt_total();
    let mut f = run.finish(
        "S5",
        format!("30% of attempts fail, 1 s retry schedule, {n} messages"),
        n as u64,
        &ingest,
        None,
    );
    f.notes.push((
        "attempts".into(),
        format!("{attempts} requests for {n} messages"),
    ));
    Ok(f)
}

async fn s6(backends: &Backends, scale: usize, t0: Instant) -> anyhow::Result<Figures> {
    let n = 1_000_000 / scale;
    let dir = tempfile::tempdir()?;
    let backends = Backends {
        database_url: Some(
            backends
                .database_url
                .clone()
                .unwrap_or_else(|| format!("sqlite:{}", dir.path().join("s6.db").display())),
        ),
        queue_url: backends.queue_url.clone(),
    };
    // Phase 1: an API-only server accepts the messages; nothing is delivered,
    // so the whole backlog waits in the store.
    let mut env = quiet_env();
    env.push(("HOOKD_ROLE", "api".into()));
    let api = Run::start(&backends, &env, t0).await?;
    api.endpoint(0, Behaviour::Ok, None).await?;
    let secret_rx = api.rx.clone();
    let rx_base = api.rx_base.clone();
    let ingest = api.send_many(n, 64, None).await?;
    api.server.stop();

    // Phase 2: a full server starts on the backlog and drains it.
    let drain_start = t0.elapsed().as_micros() as u64;
    let server = Spawned::start(&backends, &quiet_env())?;
    let run = Run {
        server,
        rx: secret_rx,
        rx_base,
        http: reqwest::Client::new(),
        producers: producers(),
        app: api.app.clone(),
        t0,
        cpu_at_start: 0.0,
    };
    run.wait_delivered(n as u64, Duration::from_secs(1800))
        .await;
    let drain_ingest = Ingest {
        first_send_us: drain_start,
        ..Default::default()
    };
    let mut f = run.finish(
        "S6",
        format!("backlog: {n} deliveries queued while no worker ran, then drained"),
        n as u64,
        &drain_ingest,
        None,
    );
    f.ingest_msgs_per_s = ingest.rate();
    f.ingest_latency = Percentiles::of(ingest.post_us);
    f.latency = Percentiles::default();
    f.notes.push((
        "drain".into(),
        format!(
            "{:.0} deliveries/s from server start to the last delivery",
            f.deliveries_per_s
        ),
    ));
    Ok(f)
}
