//! Persistence for hookd. Handlers and workers see only [`Store`]; the backend
//! is chosen from the database URL's scheme by [`open`] / [`open_with`].

mod codec;
mod fanout;
mod group;
pub mod postgres;
mod recent;
pub mod sqlite;
mod types;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hookd_core::model::{
    Application, Attempt, BackgroundTask, Delivery, Endpoint, EndpointStats, EventType, Message,
};

pub use types::*;

/// Apps with at most this many endpoints have a message fanned out in the
/// transaction that accepts it; wider apps have it fanned out just after.
pub const INLINE_FANOUT: usize = 16;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken; the text names which.
    #[error("{0}")]
    Conflict(String),
    /// The record the write refers to does not exist.
    #[error("not found")]
    NotFound,
    /// The backend cannot store a value of the request (PostgreSQL's text
    /// cannot hold the NUL character); the text says what. Nothing was written.
    #[error("{0}")]
    Invalid(String),
    /// The backend could not be reached; callers answer 503 and retry later.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("store error: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Everything hookd keeps durably. Methods that take an `app_id` only ever see
/// rows of that application, which is what makes app-scoped tokens safe.
///
/// Lookups named `*_by_key` accept either the id or the uid (or, for messages,
/// the `eventId`).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap round trip used by readiness checks.
    async fn ping(&self) -> Result<()>;

    // --- tokens -------------------------------------------------------------
    async fn insert_token(&self, token: &TokenRecord) -> Result<()>;
    /// The token with this SHA-256 hash (hex), whether or not it has expired.
    async fn find_token(&self, hash: &str) -> Result<Option<TokenRecord>>;
    async fn count_admin_tokens(&self) -> Result<u64>;
    /// Expires the token with this hash at `at` (unless it expires sooner). True if it exists.
    async fn expire_token(&self, hash: &str, at: DateTime<Utc>) -> Result<bool>;
    /// Expires every app-scoped token of `app_id` at `at`.
    async fn expire_app_tokens(&self, app_id: &str, at: DateTime<Utc>) -> Result<()>;

    // --- applications -------------------------------------------------------
    /// `Conflict` if the uid is taken.
    async fn create_app(&self, app: &Application) -> Result<()>;
    async fn app_by_key(&self, id_or_uid: &str) -> Result<Option<Application>>;
    /// [`Store::app_by_key`] for the hot paths (message creation), which may
    /// answer from memory: a backend shared by several nodes may then miss
    /// another node's change for a moment (at most a second).
    async fn app_by_key_cached(&self, id_or_uid: &str) -> Result<Option<Application>> {
        self.app_by_key(id_or_uid).await
    }
    async fn list_apps(&self, page: &PageReq) -> Result<Vec<Application>>;
    /// Replaces the stored app with the same id. `NotFound`, or `Conflict` if the uid is taken.
    async fn update_app(&self, app: &Application) -> Result<()>;
    /// Deletes the app and everything under it. False if it did not exist.
    async fn delete_app(&self, id: &str) -> Result<bool>;

    // --- event types --------------------------------------------------------
    async fn create_event_type(&self, et: &EventType) -> Result<()>;
    async fn event_type(&self, name: &str) -> Result<Option<EventType>>;
    /// Ordered by name; the page cursor is a name.
    async fn list_event_types(
        &self,
        page: &PageReq,
        include_archived: bool,
    ) -> Result<Vec<EventType>>;
    async fn update_event_type(&self, et: &EventType) -> Result<()>;
    async fn delete_event_type(&self, name: &str) -> Result<bool>;

    // --- endpoints ----------------------------------------------------------
    /// `Conflict` if the uid is taken within the app.
    async fn create_endpoint(&self, ep: &Endpoint) -> Result<()>;
    async fn endpoint_by_key(&self, app_id: &str, id_or_uid: &str) -> Result<Option<Endpoint>>;
    /// [`Store::endpoint_by_key`] for the delivery step, which may answer from
    /// memory: a backend shared by several nodes may then miss another node's
    /// change (a new URL or secret, a disabled endpoint) for at most a second.
    /// Shared, not copied: the step runs once per request sent.
    async fn endpoint_by_key_cached(
        &self,
        app_id: &str,
        id_or_uid: &str,
    ) -> Result<Option<Arc<Endpoint>>> {
        Ok(self.endpoint_by_key(app_id, id_or_uid).await?.map(Arc::new))
    }
    async fn list_endpoints(&self, app_id: &str, page: &PageReq) -> Result<Vec<Endpoint>>;
    /// Replaces the stored endpoint. Re-enabling a disabled endpoint stops its failing clock.
    async fn update_endpoint(&self, ep: &Endpoint) -> Result<()>;
    async fn delete_endpoint(&self, app_id: &str, id: &str) -> Result<bool>;
    /// Counts of the endpoint's deliveries by status, for deliveries created in the window.
    async fn endpoint_stats(
        &self,
        app_id: &str,
        endpoint_id: &str,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<EndpointStats>;

    /// Starts the endpoint's failing clock at `now` unless it is already running,
    /// and returns when it started.
    async fn endpoint_failing_since(
        &self,
        endpoint_id: &str,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>>;
    /// Sets (or, with `None`, stops) the endpoint's failing clock.
    async fn set_endpoint_failing_since(
        &self,
        endpoint_id: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<()>;
    /// Disables the endpoint. True if it was enabled until now.
    async fn disable_endpoint(
        &self,
        app_id: &str,
        endpoint_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    // --- messages -----------------------------------------------------------
    /// Stores the message durably: what a `202` promises. When its app has at
    /// most [`INLINE_FANOUT`] endpoints, the message is fanned out in the same
    /// transaction and its deliveries are returned; otherwise its fan-out is
    /// left pending for [`Store::fan_out`], so that accepting a message never
    /// waits for one row per endpoint of a wide app.
    /// `Conflict` if the `eventId` was already used in this app, `NotFound` if
    /// the app is gone.
    async fn accept_message(&self, msg: &Message) -> Result<Accepted>;
    /// Fans an accepted message out: one pending delivery for every endpoint of
    /// the app that matches it (see `hookd_core::filter`), due at its first due
    /// time, written in the transaction that ends its pending fan-out. Returns
    /// those deliveries. A message is fanned out once: a second call (from a
    /// sweep, another node, a retry) returns none, as does one for a message
    /// that is gone. `endpoints` is about how many deliveries it will write
    /// (what [`Accepted::Pending`] said; 0 if unknown): the writer lets only so
    /// many go into one transaction, so that transactions stay short.
    async fn fan_out(&self, msg: &Message, endpoints: usize) -> Result<Vec<Delivery>>;
    /// Accepted messages whose fan-out is still pending, created before
    /// `before`, in id order after the id `after`: at most `limit`. Left behind
    /// only by a crash, or by a fan-out that failed.
    async fn list_pending_fanouts(
        &self,
        before: DateTime<Utc>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Message>>;
    /// [`Store::accept_message`] and then [`Store::fan_out`], for callers that
    /// want the deliveries at once (operational events, tests).
    async fn create_message(&self, msg: &Message) -> Result<Vec<Delivery>> {
        match self.accept_message(msg).await? {
            Accepted::FannedOut(deliveries) => Ok(deliveries),
            Accepted::Pending { endpoints } => self.fan_out(msg, endpoints).await,
        }
    }
    async fn message_by_key(&self, app_id: &str, id_or_event_id: &str) -> Result<Option<Message>>;
    /// Newest first unless the page says otherwise; the cursor is a message id.
    async fn list_messages(
        &self,
        app_id: &str,
        filter: &MessageFilter,
        page: &PageReq,
    ) -> Result<Vec<Message>>;
    /// The messages among `ids` that still have their payload and whose
    /// payload is at most `max_payload` bytes, in no particular order; those
    /// gone, expunged or larger are left out. The re-queue sweep reads them
    /// to hand each task what the worker would otherwise read back one by
    /// one; the bound keeps what it holds in memory small.
    async fn messages_with_small_payloads(
        &self,
        ids: &[String],
        max_payload: usize,
    ) -> Result<Vec<Message>>;
    /// Drops the payload (it reads back as expunged). False if no such message.
    /// Advances [`Store::content_epoch`] once the statement has run.
    async fn expunge_message_content(&self, app_id: &str, msg_id: &str) -> Result<bool>;
    /// The count of content expunges made through this store, and on a
    /// database shared by several nodes through theirs too (see
    /// [`ContentEpoch`]): a copy of a payload taken while it read `n` may be
    /// sent only while it still reads `n`.
    fn content_epoch(&self) -> u64;

    // --- deliveries ---------------------------------------------------------
    async fn delivery(&self, id: &str) -> Result<Option<Delivery>>;
    /// A delivery and its message, read together (one round trip where
    /// [`Store::delivery`] and then [`Store::message_by_key`] would take two).
    async fn delivery_with_message(&self, id: &str) -> Result<Option<(Delivery, Message)>>;
    async fn delivery_for(&self, msg_id: &str, endpoint_id: &str) -> Result<Option<Delivery>>;
    /// The message's deliveries with their endpoints; the cursor is an endpoint id.
    async fn list_message_destinations(
        &self,
        app_id: &str,
        msg_id: &str,
        page: &PageReq,
    ) -> Result<Vec<(Delivery, Endpoint)>>;
    /// The endpoint's deliveries with their messages; the cursor is a message id.
    async fn list_endpoint_messages(
        &self,
        app_id: &str,
        endpoint_id: &str,
        filter: &MessageFilter,
        page: &PageReq,
    ) -> Result<Vec<(Delivery, Message)>>;
    /// Deliveries that are pending, in id order after `after`; used to rebuild the
    /// embedded queue on start.
    async fn list_pending_deliveries(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Delivery>>;
    /// Inserts a delivery that does not exist yet, or resets an existing one to
    /// pending (recover). Returns the stored row.
    async fn upsert_delivery(&self, delivery: &Delivery) -> Result<Delivery>;
    /// Records attempts and their deliveries' new states, all in one transaction
    /// (a batch of messages sent in one request is recorded at once). `NotFound`,
    /// and nothing stored, if any delivery is missing.
    async fn record_attempts(&self, outcomes: &[(Attempt, Delivery)]) -> Result<()>;
    /// [`Store::record_attempts`] for one attempt.
    async fn record_attempt(&self, attempt: &Attempt, delivery: &Delivery) -> Result<()> {
        self.record_attempts(&[(attempt.clone(), delivery.clone())])
            .await
    }
    /// Sets those of the deliveries `ids` that are still failed back to
    /// pending, with no attempts, due at `at` (recover), all at once. Returns
    /// the rows changed, in id order: a delivery sent again meanwhile (by a
    /// resend) or gone is left alone and not returned.
    async fn retry_failed_deliveries(
        &self,
        ids: &[String],
        at: DateTime<Utc>,
    ) -> Result<Vec<Delivery>>;
    /// Failed deliveries of an endpoint created in the window (for recover),
    /// in id order: at most `limit` of them, those after the id `after`.
    async fn list_failed_deliveries(
        &self,
        app_id: &str,
        endpoint_id: &str,
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Delivery>>;

    // --- attempts -----------------------------------------------------------
    /// Newest first; the cursor is an attempt id.
    async fn list_attempts(
        &self,
        app_id: &str,
        filter: &AttemptFilter,
        page: &PageReq,
    ) -> Result<Vec<Attempt>>;
    async fn attempt(
        &self,
        app_id: &str,
        msg_id: &str,
        attempt_id: &str,
    ) -> Result<Option<Attempt>>;
    async fn expunge_attempt_content(
        &self,
        app_id: &str,
        msg_id: &str,
        attempt_id: &str,
    ) -> Result<bool>;

    // --- idempotency --------------------------------------------------------
    /// Claims `key` for a request in flight, or reports it is taken. A claim older
    /// than `lock_ttl` is considered abandoned and is taken over.
    async fn idempotency_begin(
        &self,
        key: &str,
        now: DateTime<Utc>,
        lock_ttl_ms: i64,
    ) -> Result<IdempotencyState>;
    /// Stores the finished response so repeats replay it until `expires_at`.
    async fn idempotency_complete(
        &self,
        key: &str,
        response: &StoredResponse,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;
    /// Releases a claim (the request did not succeed, so a repeat should run again).
    async fn idempotency_abort(&self, key: &str) -> Result<()>;

    // --- background tasks ---------------------------------------------------
    async fn upsert_task(&self, task: &BackgroundTask) -> Result<()>;
    async fn task(&self, id: &str) -> Result<Option<BackgroundTask>>;
}

/// Opens the store the URL names and brings its schema up to date:
/// [`open_with`]`(url, true)`.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    open_with(url, true).await
}

/// Opens the store the URL names:
///
/// * `sqlite:PATH` / `sqlite://PATH` (created if missing): always migrated,
///   since an embedded database has exactly one hookd using it;
/// * `postgres://...` / `postgresql://...`: migrated only when `migrate` is
///   true. Otherwise the database must already have every migration this hookd
///   knows, or this fails with `StoreError::Other` saying the schema is behind,
///   so that in a cluster only the instance (or the `hookd migrate` run) told
///   to do so changes the schema.
pub async fn open_with(url: &str, migrate: bool) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::connect(url, migrate).await?))
    } else {
        let scheme = url.split(':').next().unwrap_or_default();
        Err(StoreError::Other(
            format!(
                "unsupported database URL scheme {scheme:?}; use sqlite:PATH or postgres://USER@HOST/DB"
            )
            .into(),
        ))
    }
}
