//! The bench's loopback receiver: verifies every signature and records, per
//! request, which message arrived, when, and whether it was answered 2xx.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use hookd_verify::{Headers, StandardWebhooks};

/// How an endpoint behaves.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    Ok,
    /// Answers 200 after this delay.
    Slow(Duration),
    /// Answers 500 to this fraction of requests, at random.
    Flaky(f64),
}

pub struct Target {
    pub verifier: StandardWebhooks,
    pub behaviour: Behaviour,
}

/// One request as seen by the receiver.
#[derive(Clone, Debug)]
pub struct Receipt {
    pub endpoint: usize,
    pub msg_id: String,
    /// From the payload's `sent_us` to arrival, in microseconds.
    pub latency_us: u64,
    /// Arrival, in microseconds since the bench started.
    pub arrived_us: u64,
    pub answered_ok: bool,
}

#[derive(Clone)]
pub struct Receiver {
    pub t0: Instant,
    /// Read by every request, written once per endpoint before any is sent.
    targets: Arc<RwLock<HashMap<usize, Arc<Target>>>>,
    receipts: Arc<Mutex<Vec<Receipt>>>,
    pub bad_signatures: Arc<AtomicU64>,
    pub ok_count: Arc<AtomicU64>,
}

impl Receiver {
    /// Starts listening on loopback; returns the receiver and its base URL.
    pub async fn start(t0: Instant) -> anyhow::Result<(Self, String)> {
        let rx = Receiver {
            t0,
            targets: Arc::default(),
            receipts: Arc::default(),
            bad_signatures: Arc::default(),
            ok_count: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/ep/{n}", axum::routing::post(handle))
            .with_state(rx.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok((rx, base))
    }

    pub fn add(&self, n: usize, secret: &str, behaviour: Behaviour) -> anyhow::Result<()> {
        let verifier =
            StandardWebhooks::new(secret).map_err(|e| anyhow::anyhow!("bench secret: {e}"))?;
        self.targets.write().expect("receiver lock").insert(
            n,
            Arc::new(Target {
                verifier,
                behaviour,
            }),
        );
        Ok(())
    }

    pub fn take_receipts(&self) -> Vec<Receipt> {
        std::mem::take(&mut *self.receipts.lock().expect("receiver lock"))
    }
}

/// The request's own header map, looked up in place: the receiver should
/// cost the box as little as a real one would, so nothing is copied per request.
struct RequestHeaders<'a>(&'a HeaderMap);

impl Headers for RequestHeaders<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The one payload field the receiver reads; the rest is only scanned over.
#[derive(serde::Deserialize)]
struct Sent {
    sent_us: u64,
}

async fn handle(
    State(rx): State<Receiver>,
    Path(n): Path<usize>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let arrived = rx.t0.elapsed().as_micros() as u64;
    let Some(target) = rx.targets.read().expect("receiver lock").get(&n).cloned() else {
        return StatusCode::NOT_FOUND;
    };
    let headers = RequestHeaders(&headers);
    if target.verifier.verify(&headers, &body).is_err() {
        rx.bad_signatures.fetch_add(1, Ordering::Relaxed);
    }
    let sent_us = serde_json::from_slice::<Sent>(&body).map_or(arrived, |s| s.sent_us);
    let status = match target.behaviour {
        Behaviour::Ok => StatusCode::OK,
        Behaviour::Slow(d) => {
            tokio::time::sleep(d).await;
            StatusCode::OK
        }
        Behaviour::Flaky(p) if rand::random::<f64>() < p => StatusCode::INTERNAL_SERVER_ERROR,
        Behaviour::Flaky(_) => StatusCode::OK,
    };
    let answered_ok = status.is_success();
    if answered_ok {
        rx.ok_count.fetch_add(1, Ordering::Relaxed);
    }
    let msg_id = headers.header("webhook-id").unwrap_or_default().to_string();
    rx.receipts.lock().expect("receiver lock").push(Receipt {
        endpoint: n,
        msg_id,
        latency_us: arrived.saturating_sub(sent_us),
        arrived_us: arrived,
        answered_ok,
    });
    status
}

impl Receiver {
    /// Requests answered 2xx for endpoint `n` so far.
    pub fn take_receipts_count(&self, n: usize) -> usize {
        self.receipts
            .lock()
            .expect("receiver lock")
            .iter()
            .filter(|r| r.endpoint == n && r.answered_ok)
            .count()
    }

    /// Requests received so far, whatever the answer.
    pub fn receipt_total(&self) -> usize {
        self.receipts.lock().expect("receiver lock").len()
    }
}
