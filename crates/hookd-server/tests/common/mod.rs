//! Test harness: the real server (API and delivery engine) on `127.0.0.1:0`
//! over a temporary SQLite file, and HTTP receivers whose answers and latency
//! each test controls.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use hookd_core::retry::RetryPolicy;
use hookd_queue::Queue;
use hookd_server::dispatch::{Engine, EngineConfig};
use hookd_server::outbound::{SsrfGuard, WebhookClient};
use hookd_server::{AppState, ServerConfig};
use hookd_store::Store;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "test-admin-token-0123456789";

pub struct TestServer {
    pub url: String,
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pub dir: tempfile::TempDir,
    engine_config: EngineConfig,
}

/// Knobs a test may turn before the server starts.
pub struct Setup {
    pub engine: EngineConfig,
    pub server: ServerConfig,
    pub allowed_networks: Vec<ipnet::IpNet>,
    /// The queue to use instead of a fresh embedded one.
    pub queue: Option<Arc<dyn Queue>>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            engine: EngineConfig {
                retry: RetryPolicy::parse_schedule("0.1,0.1,0.1")
                    .unwrap()
                    .with_jitter(0.0),
                request_timeout: Duration::from_secs(5),
                shutdown_grace: Duration::from_secs(2),
                ..EngineConfig::default()
            },
            server: ServerConfig {
                admin_token: Some(TOKEN.into()),
                ..ServerConfig::default()
            },
            allowed_networks: vec!["127.0.0.0/8".parse().unwrap()],
            queue: None,
        }
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Setup)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, tweak).await
    }

    /// Starts on the database in `dir` (so a test can restart on the same file).
    pub async fn start_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut Setup)) -> Self {
        let mut setup = Setup::default();
        tweak(&mut setup);
        let engine_config = setup.engine.clone();
        let db = format!("sqlite:{}", dir.path().join("hookd.db").display());
        let store = hookd_store::open(&db).await.unwrap();
        let queue = match setup.queue.take() {
            Some(q) => q,
            None => hookd_queue::open(None).await.unwrap(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = WebhookClient::new(SsrfGuard::new(setup.allowed_networks), "hookd-test");
        let engine = Arc::new(Engine::new(
            store.clone(),
            queue.clone(),
            client,
            setup.engine,
        ));
        engine.prepare().await.unwrap();
        let state = AppState::new(store.clone(), queue.clone(), setup.server);
        let shutdown = CancellationToken::new();
        let tasks = vec![
            tokio::spawn(engine.run(shutdown.clone())),
            tokio::spawn({
                let s = shutdown.clone();
                async move { hookd_server::serve(listener, state, s).await.unwrap() }
            }),
        ];
        Self {
            url: format!("http://{addr}"),
            store,
            queue,
            http: reqwest::Client::new(),
            shutdown,
            tasks,
            dir,
            engine_config,
        }
    }

    /// Starts another delivery engine (a second "node") on the same store,
    /// taking its work from `queue`; it stops with the server.
    pub async fn add_engine(&mut self, queue: Arc<dyn Queue>) {
        let client = WebhookClient::new(
            SsrfGuard::new(vec!["127.0.0.0/8".parse().unwrap()]),
            "hookd-test",
        );
        let engine = Arc::new(Engine::new(
            self.store.clone(),
            queue,
            client,
            self.engine_config.clone(),
        ));
        self.tasks
            .push(tokio::spawn(engine.run(self.shutdown.clone())));
    }

    /// Stops the server gracefully and hands back its directory.
    /// Stops the server and opens its store, as a later process would.
    pub async fn stop_and_open(self) -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = self.stop().await;
        let db = format!("sqlite:{}", dir.path().join("hookd.db").display());
        let store = hookd_store::open(&db).await.unwrap();
        (dir, store)
    }

    pub async fn stop(self) -> tempfile::TempDir {
        self.shutdown.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        self.dir
    }

    /// Sends a request with the admin token; returns status and JSON body (Null if empty).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(TOKEN, method, path, body, &[]).await
    }

    pub async fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.url))
            .bearer_auth(token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(body)).await
    }

    /// Creates an app with this uid; panics unless it worked.
    pub async fn app(&self, uid: &str) -> String {
        let (s, b) = self
            .post("/app", serde_json::json!({"name": uid, "uid": uid}))
            .await;
        assert_eq!(s, 201, "{b}");
        b["id"].as_str().unwrap().to_string()
    }

    /// Creates an endpoint from `body` in `app`; panics unless it worked.
    pub async fn endpoint(&self, app: &str, body: Value) -> Value {
        let (s, b) = self.post(&format!("/app/{app}/endpoint"), body).await;
        assert_eq!(s, 201, "{b}");
        b
    }

    /// Posts a message; panics unless it was accepted.
    pub async fn send(&self, app: &str, event_type: &str, payload: Value) -> String {
        let (s, b) = self
            .post(
                &format!("/app/{app}/msg"),
                serde_json::json!({"eventType": event_type, "payload": payload}),
            )
            .await;
        assert_eq!(s, 202, "{b}");
        b["id"].as_str().unwrap().to_string()
    }
}

/// How a receiver answers one request.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Run once the delay is over, before the answer goes out.
    pub before_answer: Option<Hook>,
}

/// A callback a [`Reply`] carries.
#[derive(Clone)]
pub struct Hook(Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            delay: Duration::ZERO,
            headers: vec![],
            body: String::new(),
            before_answer: None,
        }
    }
    pub fn ok() -> Self {
        Self::status(200)
    }
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
    pub fn body(mut self, b: &str) -> Self {
        self.body = b.into();
        self
    }
    /// Calls `f` after the delay and before the answer is written, so a test can
    /// tell exactly when the request stops being in progress.
    pub fn before_answer(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.before_answer = Some(Hook(Arc::new(f)));
        self
    }
}

/// One request a receiver saw.
#[derive(Clone, Debug)]
pub struct Hit {
    pub headers: HashMap<String, String>,
    pub body: Bytes,
    pub at: Instant,
}

impl Hit {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    }
}

type Responder = dyn Fn(usize) -> Reply + Send + Sync;

#[derive(Clone)]
struct RecvState {
    hits: Arc<Mutex<Vec<Hit>>>,
    respond: Arc<Responder>,
}

/// An HTTP receiver on loopback. `respond(n)` decides the answer to the n-th request (0-based).
pub struct Receiver {
    pub url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    pub async fn start(respond: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Self {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let state = RecvState {
            hits: hits.clone(),
            respond: Arc::new(respond),
        };
        let app = axum::Router::new().fallback(handle).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, hits }
    }

    pub async fn ok() -> Self {
        Self::start(|_| Reply::ok()).await
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.hits.lock().unwrap().len()
    }

    /// Waits (up to `within`) until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Hit> {
        let hits = self.hits.clone();
        eventually(within, || {
            let h = hits.lock().unwrap().clone();
            async move { (h.len() >= n).then_some(h) }
        })
        .await
        .unwrap_or_else(|| panic!("receiver got {} requests, wanted {n}", self.count()))
    }
}

async fn handle(State(st): State<RecvState>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let n = {
        let mut hits = st.hits.lock().unwrap();
        hits.push(Hit {
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                .collect(),
            body,
            at: Instant::now(),
        });
        hits.len() - 1
    };
    let reply = (st.respond)(n);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    if let Some(Hook(f)) = &reply.before_answer {
        f();
    }
    let mut h = HeaderMap::new();
    for (k, v) in &reply.headers {
        h.insert(
            axum::http::HeaderName::try_from(k.as_str()).unwrap(),
            v.parse().unwrap(),
        );
    }
    (StatusCode::from_u16(reply.status).unwrap(), h, reply.body)
}

/// Polls `check` until it yields a value or `within` passes. Never a fixed sleep.
pub async fn eventually<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl TestServer {
    /// Sends `body` byte for byte (no JSON encoding) with the admin token; returns
    /// the status and the raw response text, for malformed or oversized bodies.
    pub async fn call_raw(&self, method: &str, path: &str, body: Vec<u8>) -> (u16, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let resp = self
            .http
            .request(method, format!("{}/api/v1{path}", self.url))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }
}

/// Asserts a Svix validation body (`{"detail":[{loc,msg,type}]}`) whose first
/// entry is at `loc`, and returns that entry.
pub fn assert_validation<'a>(body: &'a Value, loc: &[&str]) -> &'a Value {
    let entry = &body["detail"][0];
    assert!(entry["msg"].is_string(), "no msg in {body}");
    assert!(entry["type"].is_string(), "no type in {body}");
    assert_eq!(entry["loc"], serde_json::json!(loc), "{body}");
    entry
}

/// A message of type `a.b` for `app`, as the API would store it.
pub fn message_of(app: &str, i: usize) -> hookd_core::model::Message {
    hookd_core::model::Message {
        id: hookd_core::new_id(hookd_core::IdKind::Message),
        app_id: app.to_owned(),
        event_id: None,
        event_type: "a.b".into(),
        payload: Some(format!(r#"{{"i":{i}}}"#)),
        channels: None,
        tags: None,
        created_at: hookd_core::model::now(),
        deliver_at: None,
    }
}
