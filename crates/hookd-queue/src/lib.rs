//! The delivery queue: which delivery to attempt next, and when. The store is
//! the durable truth (every task mirrors a pending delivery row); the queue is
//! how workers learn about due work without polling the store.

pub mod embedded;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// One unit of work: attempt delivery `delivery_id` at or after `due`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub delivery_id: String,
    pub msg_id: String,
    pub endpoint_id: String,
    pub app_id: String,
    pub due: DateTime<Utc>,
    /// A person asked for this attempt (resend); it is not retried.
    pub manual: bool,
}

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
}

/// Opens the queue the URL names; `None` (or `embedded:`) is the in-process queue.
pub fn open(url: Option<&str>) -> Result<Arc<dyn Queue>> {
    match url {
        None | Some("") | Some("embedded:") | Some("memory:") => {
            Ok(Arc::new(embedded::EmbeddedQueue::new()))
        }
        Some(other) => Err(QueueError::Unavailable(
            format!("unsupported queue URL {other:?}; this build has the embedded queue only")
                .into(),
        )),
    }
}
