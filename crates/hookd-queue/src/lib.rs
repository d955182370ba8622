//! The delivery queue: which delivery to attempt next, and when. The store is
//! the durable truth (every task mirrors a pending delivery row); the queue is
//! how workers learn about due work without polling the store.
//!
//! Backends are chosen by URL scheme in [`open`]: the embedded in-process queue
//! by default, or [`redis::RedisQueue`] for `redis://` / `rediss://`, which lets
//! several hookd nodes share one queue.

pub mod embedded;
pub mod redis;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One unit of work: attempt delivery `delivery_id` at or after `due`.
///
/// Serializable because shared backends store it as JSON; two tasks with the
/// same fields encode identically, which lets a backend collapse duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub delivery_id: String,
    pub msg_id: String,
    pub endpoint_id: String,
    pub app_id: String,
    pub due: DateTime<Utc>,
    /// A person asked for this attempt (resend); it is not retried.
    pub manual: bool,
    /// What the producer of the task already knows (e.g. the record it just
    /// wrote), so that an in-process consumer need not read it back. Never
    /// serialised: a task that crossed a process boundary has none.
    #[serde(skip)]
    pub hint: Option<Hint>,
}

/// An opaque, shareable value carried by a task within one process. Two hints
/// always compare equal: a hint never changes what a task means.
#[derive(Clone)]
pub struct Hint(pub Arc<dyn std::any::Any + Send + Sync>);

impl Hint {
    pub fn new<T: std::any::Any + Send + Sync>(value: T) -> Self {
        Self(Arc::new(value))
    }

    pub fn get<T: std::any::Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

/// A cap on the bytes that the hints of one queue's tasks may hold at once,
/// for everyone in the process who makes hints for them. A hint keeps what it
/// carries (a message, with its payload) in memory until its task has run, and
/// the tasks of a slow or throttled endpoint may wait by the thousand; past the
/// cap tasks go without a hint, and their consumer reads what it needs.
pub struct HintBudget {
    used: Arc<AtomicUsize>,
    cap: usize,
}

impl HintBudget {
    /// The cap for a queue of this process's own (embedded, or the Redis
    /// queue's local copies of its pushes' hints).
    pub const DEFAULT_CAP: usize = 64 << 20;

    pub fn new(cap: usize) -> Self {
        Self {
            used: Arc::default(),
            cap,
        }
    }

    /// Takes `bytes` of the budget, or nothing if they do not fit; they come
    /// back when the share is dropped.
    pub fn take(&self, bytes: usize) -> Option<HintShare> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let next = used.checked_add(bytes).filter(|&n| n <= self.cap)?;
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Some(HintShare {
                        bytes,
                        used: self.used.clone(),
                    })
                }
                Err(now) => used = now,
            }
        }
    }

    /// Bytes taken and not yet given back.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// A share of a [`HintBudget`], given back on drop.
pub struct HintShare {
    bytes: usize,
    used: Arc<AtomicUsize>,
}

impl Drop for HintShare {
    fn drop(&mut self) {
        self.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for Hint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hint(..)")
    }
}

impl PartialEq for Hint {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Hint {}

/// A task handed to a worker. It must be acknowledged once its outcome is
/// durably recorded; an unacknowledged lease may be handed out again (after a
/// crash, or a visibility timeout in shared backends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub task: Task,
    /// Backend-specific receipt used by `ack`.
    pub receipt: String,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("queue closed")]
    Closed,
}

pub type Result<T, E = QueueError> = std::result::Result<T, E>;

// `len` is a gauge for metrics and tests, not a collection API.
#[allow(clippy::len_without_is_empty)]
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Adds tasks; each becomes visible to `pop` at its `due` time.
    async fn push(&self, tasks: Vec<Task>) -> Result<()>;
    /// Up to `max` tasks that are due, waiting at most `wait` for one to become due.
    /// Returns an empty vector on timeout.
    async fn pop(&self, max: usize, wait: Duration) -> Result<Vec<Lease>>;
    /// The task's outcome is recorded; it will not be handed out again.
    async fn ack(&self, leases: &[Lease]) -> Result<()>;
    /// Tasks waiting (due or not), for metrics and tests.
    async fn len(&self) -> Result<usize>;
    /// How many times this backend found its shared state gone (a Redis that
    /// restarted without persistence, a deleted stream) and rebuilt it empty.
    /// Tasks queued before such a loss are gone with it; when this number
    /// changes, the pending deliveries in the store should be queued again.
    /// Always 0 for backends that cannot lose state on their own.
    fn resets(&self) -> u64 {
        0
    }
    /// Claims `task` for this process, for about as long as a lease stays
    /// invisible. With a shared queue two copies of one task can exist (a node
    /// re-queued pending work on start, or after a reset); only the copy whose
    /// claim succeeds may be sent. A claim is keyed by delivery and due time, so
    /// a later retry of the same delivery is a different claim. Always true for
    /// backends that hand each task to one process only.
    async fn claim(&self, _task: &Task) -> Result<bool> {
        Ok(true)
    }
    /// A token that changes whenever the shared queue's state was lost and
    /// rebuilt, by whichever node noticed first (or reads `None` while it is
    /// lost). Workers compare it over time and re-queue pending deliveries
    /// when it changes. `None` always for process-local queues.
    async fn epoch(&self) -> Result<Option<String>> {
        Ok(None)
    }
    /// Limits that hold across every node sharing this queue, or `None` when
    /// the queue serves one process (whose own scheduler then suffices).
    fn shared_limits(&self) -> Option<&dyn SharedLimits> {
        None
    }
    /// What the hints of this queue's tasks may hold in this process, or
    /// `None` when its tasks should carry none (a queue that drops them).
    fn hint_budget(&self) -> Option<&HintBudget> {
        None
    }
}

/// Per-endpoint limits enforced across nodes: `throttleRate` and the cap on
/// concurrent requests.
#[async_trait]
pub trait SharedLimits: Send + Sync {
    /// Books one request at `rate` per second for `key`; `Ok(None)` if booked,
    /// `Ok(Some(wait))` if the caller must wait that long and ask again.
    async fn pace(&self, key: &str, rate: u32) -> Result<Option<Duration>>;
    /// Takes one of `cap` concurrent slots for `key`, held by `holder` until
    /// released or `ttl` passes. False if all are taken.
    async fn take_slot(&self, key: &str, cap: usize, holder: &str, ttl: Duration) -> Result<bool>;
    async fn release_slot(&self, key: &str, holder: &str) -> Result<()>;
}

/// The URL schemes [`open`] understands, checked without connecting (for
/// config validation). The error names the problem but never repeats the URL,
/// which may hold a password.
pub fn check_url(url: &str) -> Result<(), String> {
    match backend(url)? {
        Backend::Embedded => Ok(()),
        Backend::Redis => ::redis::IntoConnectionInfo::into_connection_info(url)
            .map(|_| ())
            .map_err(|e| format!("invalid Redis URL: {e}")),
    }
}

/// Opens the queue the URL names; `None` (or `embedded:`) is the in-process
/// queue, `redis://` and `rediss://` the Redis queue with default options.
pub async fn open(url: Option<&str>) -> Result<Arc<dyn Queue>> {
    let url = url.unwrap_or_default();
    match backend(url).map_err(|e| QueueError::Unavailable(e.into()))? {
        Backend::Embedded => Ok(Arc::new(embedded::EmbeddedQueue::new())),
        Backend::Redis => Ok(Arc::new(
            redis::RedisQueue::connect(url, redis::RedisOptions::default()).await?,
        )),
    }
}

enum Backend {
    Embedded,
    Redis,
}

fn backend(url: &str) -> Result<Backend, String> {
    match url {
        "" | "embedded:" | "memory:" => Ok(Backend::Embedded),
        _ if url.starts_with("redis://") || url.starts_with("rediss://") => Ok(Backend::Redis),
        _ => {
            let scheme = url.split_once(':').map_or("", |(s, _)| s);
            Err(format!(
                "unsupported queue URL scheme {scheme:?}; use embedded:, redis:// or rediss://"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn queue_urls_are_checked_by_scheme_without_connecting() {
        for ok in [
            "",
            "embedded:",
            "memory:",
            "redis://127.0.0.1:1",
            "rediss://user:pw@redis.example:6380/2",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        let err = check_url("amqp://guest:hunter2@mq").unwrap_err();
        assert!(err.contains("\"amqp\""), "{err}");
        assert!(
            !err.contains("hunter2"),
            "the error repeats a password: {err}"
        );
    }

    #[tokio::test]
    async fn no_url_opens_the_embedded_queue() {
        let q = super::open(None).await.unwrap();
        assert_eq!(q.len().await.unwrap(), 0);
        assert!(super::open(Some("amqp://mq")).await.is_err());
    }
}
