//! A webhook receiver on loopback that counts what arrives where.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Path as UrlPath;
use axum::http::{HeaderMap, StatusCode};

/// When one (endpoint, message) pair arrived, and how often.
#[derive(Debug, Clone, Copy)]
pub struct Got {
    pub times: u32,
    pub first: Instant,
}

#[derive(Default)]
struct Book {
    /// (endpoint index, webhook-id) -> arrivals answered 2xx.
    got: HashMap<(usize, String), Got>,
    /// Pairs that have been attempted at all.
    tried: HashSet<(usize, String)>,
    requests: u64,
    refused: u64,
}

/// A webhook receiver on loopback with endpoints `/ep/{i}`. Counts every
/// `webhook-id` each endpoint accepted; answers after a delay the test sets,
/// and can refuse (500) every n-th request that is a message's first attempt
/// at that endpoint, so that some deliveries wait for a retry (never more than
/// one, so no schedule is ever exhausted).
#[derive(Clone, Default)]
pub struct Receiver {
    base: String,
    book: Arc<Mutex<Book>>,
    delay_ms: Arc<AtomicU64>,
    refuse_every: Arc<AtomicU64>,
}

impl Receiver {
    pub async fn start(delay: Duration) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the receiver");
        let rx = Receiver {
            base: format!("http://{}", listener.local_addr().expect("bound address")),
            ..Receiver::default()
        };
        rx.delay_ms
            .store(delay.as_millis() as u64, Ordering::Relaxed);
        let state = rx.clone();
        let app = axum::Router::new().route(
            "/ep/{i}",
            axum::routing::post(move |UrlPath(i): UrlPath<usize>, headers: HeaderMap| {
                let rx = state.clone();
                async move { rx.arrive(i, &headers).await }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        rx
    }

    async fn arrive(&self, endpoint: usize, headers: &HeaderMap) -> StatusCode {
        let id = headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let refuse = {
            let mut book = self.book.lock().unwrap();
            book.requests += 1;
            let every = self.refuse_every.load(Ordering::Relaxed);
            let first = book.tried.insert((endpoint, id.clone()));
            let refuse = every > 0 && first && book.requests.is_multiple_of(every);
            if refuse {
                book.refused += 1;
            }
            refuse
        };
        let delay = self.delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if refuse {
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
        let now = Instant::now();
        let mut book = self.book.lock().unwrap();
        book.got
            .entry((endpoint, id))
            .and_modify(|g| g.times += 1)
            .or_insert(Got {
                times: 1,
                first: now,
            });
        StatusCode::OK
    }

    pub fn url(&self, endpoint: usize) -> String {
        format!("{}/ep/{endpoint}", self.base)
    }

    /// Refuse the first attempt of every `n`-th request (0: never).
    pub fn refuse_every(&self, n: u64) {
        self.refuse_every.store(n, Ordering::Relaxed);
    }

    /// Distinct (endpoint, message) pairs accepted so far.
    pub fn delivered(&self) -> usize {
        self.book.lock().unwrap().got.len()
    }

    pub fn refused(&self) -> u64 {
        self.book.lock().unwrap().refused
    }

    pub fn got(&self) -> HashMap<(usize, String), Got> {
        self.book.lock().unwrap().got.clone()
    }

    /// Of `expected`, the pairs that have not arrived.
    pub fn missing<'a>(&self, expected: &'a [(usize, String)]) -> Vec<&'a (usize, String)> {
        let book = self.book.lock().unwrap();
        expected
            .iter()
            .filter(|p| !book.got.contains_key(*p))
            .collect()
    }
}
