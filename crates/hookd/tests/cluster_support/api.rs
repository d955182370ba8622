//! A client for one node's API, and producers that keep sending.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

/// A client for the API of one node.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// What the API said to a message it did not accept.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: u16,
    pub body: String,
}

impl Api {
    pub fn new(base: &str, token: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("building the HTTP client"),
            base: base.to_string(),
            token: token.to_string(),
        }
    }

    pub async fn create_app(&self, uid: &str) -> String {
        let resp = self
            .post("/api/v1/app", json!({"name": uid, "uid": uid}))
            .await;
        assert_eq!(resp.0, 201, "creating the app: {}", resp.1);
        resp.1["id"].as_str().expect("app id").to_string()
    }

    /// An endpoint at `url` that listens on `channel` only, or on everything.
    pub async fn create_endpoint(&self, app: &str, url: &str, channel: Option<&str>) -> String {
        let mut body = json!({ "url": url });
        if let Some(c) = channel {
            body["channels"] = json!([c]);
        }
        let resp = self
            .post(&format!("/api/v1/app/{app}/endpoint"), body)
            .await;
        assert_eq!(resp.0, 201, "creating an endpoint: {}", resp.1);
        resp.1["id"].as_str().expect("endpoint id").to_string()
    }

    /// Sends message `n`; its id when accepted (202).
    pub async fn send(
        &self,
        app: &str,
        n: usize,
        channel: Option<&str>,
    ) -> Result<String, Refusal> {
        let mut body = json!({"eventType": "order.paid", "payload": {"n": n}});
        if let Some(c) = channel {
            body["channels"] = json!([c]);
        }
        let resp = self
            .http
            .post(format!("{}/api/v1/app/{app}/msg", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                return Err(Refusal {
                    status: 0,
                    body: e.to_string(),
                })
            }
        };
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if status == 202 {
            let v: Value = serde_json::from_str(&text).expect("a 202 carries the message");
            Ok(v["id"].as_str().expect("message id").to_string())
        } else {
            Err(Refusal { status, body: text })
        }
    }

    /// Sends messages `range`, `concurrency` at a time; message `n` goes to
    /// the channel `channel(n)` names. Returns each message's outcome, by `n`.
    pub async fn send_many(
        &self,
        app: &str,
        range: std::ops::Range<usize>,
        concurrency: usize,
        channel: impl Fn(usize) -> Option<String>,
    ) -> Vec<(usize, Result<String, Refusal>)> {
        futures::stream::iter(range)
            .map(|n| {
                let c = channel(n);
                async move { (n, self.send(app, n, c.as_deref()).await) }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await
    }

    /// `GET path`: status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        match self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
        {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        }
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

/// Keeps `concurrency` clients sending messages until stopped.
pub struct Producer {
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    outcomes: Arc<Mutex<Outcomes>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

#[derive(Default)]
pub struct Outcomes {
    pub ids: Vec<String>,
    pub refused: Vec<(usize, Refusal)>,
}

/// Most messages one producer sends, so that a run is bounded whatever happens.
const PRODUCER_MAX: usize = 5_000;

impl Producer {
    pub fn start(api: &Api, app: &str, concurrency: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let outcomes = Arc::new(Mutex::new(Outcomes::default()));
        let next = Arc::new(AtomicUsize::new(0));
        let tasks = (0..concurrency)
            .map(|_| {
                let (api, app) = (api.clone(), app.to_string());
                let (stop, accepted, outcomes, next) = (
                    stop.clone(),
                    accepted.clone(),
                    outcomes.clone(),
                    next.clone(),
                );
                tokio::spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        let n = next.fetch_add(1, Ordering::SeqCst);
                        if n >= PRODUCER_MAX {
                            return;
                        }
                        let outcome = api.send(&app, n, None).await;
                        let mut o = outcomes.lock().unwrap();
                        match outcome {
                            Ok(id) => {
                                o.ids.push(id);
                                accepted.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(r) => o.refused.push((n, r)),
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            accepted,
            outcomes,
            tasks,
        }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub async fn stop(self) -> Outcomes {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            t.await.expect("a producer panicked");
        }
        std::mem::take(&mut *self.outcomes.lock().unwrap())
    }
}

/// The ids of the accepted messages; with `all`, fails if any was refused.
pub fn accepted(outcomes: Vec<(usize, Result<String, Refusal>)>, all: bool) -> Vec<String> {
    outcomes
        .into_iter()
        .filter_map(|(n, r)| match r {
            Ok(id) => Some(id),
            Err(e) if all => panic!("message {n} was not accepted: {e:?}"),
            Err(_) => None,
        })
        .collect()
}
