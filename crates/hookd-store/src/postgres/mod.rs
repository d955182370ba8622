//! The cluster backend: a PostgreSQL database shared by every hookd instance,
//! behind a pool that heals itself when the server restarts. Each resource's
//! SQL lives in its own submodule, as in the SQLite backend; this one connects,
//! brings the schema up to date (or checks it), and routes the [`Store`]
//! methods.

mod apps;
mod attempts;
mod codec;
mod deliveries;
mod endpoints;
mod error;
mod event_types;
mod expunges;
mod idempotency;
mod messages;
mod query;
mod schema;
mod tasks;
mod tokens;
mod writer;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hookd_core::model::{
    Application, Attempt, BackgroundTask, Delivery, Endpoint, EndpointStats, EventType, Message,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::recent::{self, Recent};

use crate::{
    Accepted, AttemptFilter, IdempotencyState, MessageFilter, PageReq, Result, Store, StoreError,
    StoredResponse, TokenRecord,
};

/// Pooled connections per instance (each also keeps one that listens for
/// expunges, see `expunges`). Several instances share the server's
/// `max_connections` (100 by default), so this stays well below it.
const POOL_SIZE: u32 = 16;
/// How long a caller waits for a connection (a free one, or a new one while
/// the server is down or restarting) before the store reports itself
/// unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long this node may answer app and endpoint lookups from memory: other
/// nodes' changes (a new uid or URL, a disabled endpoint, a deletion) show
/// here within this time; its own at once.
const CACHE_AGE: Duration = Duration::from_secs(1);
/// Shown in `pg_stat_activity` unless the URL names the application itself.
const APPLICATION_NAME: &str = "hookd";

pub struct PgStore {
    pool: PgPool,
    /// Group-commits new messages and attempt outcomes (see `crate::group`).
    writer: crate::group::Writer,
    apps: Recent<Application>,
    /// For the delivery step's lookups; fan-out reads the table itself, under
    /// the app's lock.
    endpoints: Recent<Arc<Endpoint>>,
    /// Content expunges by this node and by the others (see `expunges`).
    expunges: Arc<expunges::Expunges>,
    /// Counts the other nodes' expunges into `expunges`; ends with the store.
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PgStore {
    /// Connects to the database a `postgres://` or `postgresql://` URL names.
    /// With `migrate`, applies any migrations not yet applied; without, checks
    /// that they all have been and refuses to start otherwise.
    ///
    /// Every connection is pinged as it leaves the pool, so connections that
    /// died with a server restart (or were terminated) are replaced rather than
    /// handed out, and the pool recovers on its own.
    pub async fn connect(url: &str, migrate: bool) -> Result<Self> {
        // The URL may hold a password, so it is left out of the message.
        let mut options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("invalid PostgreSQL URL: {e}").into()))?;
        if options.get_application_name().is_none() {
            options = options.application_name(APPLICATION_NAME);
        }
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(true)
            .connect_with(options.clone())
            .await
            .map_err(error::db)?;
        if migrate {
            schema::migrate(&pool).await?;
        } else {
            schema::verify(&pool).await?;
        }
        let expunges = Arc::new(expunges::Expunges::default());
        let listener = expunges::listen(&pool, options, ACQUIRE_TIMEOUT, expunges.clone()).await?;
        let writer = crate::group::Writer::spawn(pool.clone(), writer::PgWrites);
        Ok(Self {
            pool,
            writer,
            apps: recent::apps(Some(CACHE_AGE)),
            endpoints: recent::endpoints(Some(CACHE_AGE)),
            expunges,
            listener,
        })
    }

    /// Waits for in-flight queries and closes the pool's connections (the one
    /// listening for expunges goes with its task, stopped here); later calls
    /// fail as unavailable.
    pub async fn close(&self) {
        self.listener.abort();
        self.pool.close().await;
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(error::db)?;
        Ok(())
    }

    async fn insert_token(&self, token: &TokenRecord) -> Result<()> {
        tokens::insert(&self.pool, token).await
    }

    async fn find_token(&self, hash: &str) -> Result<Option<TokenRecord>> {
        tokens::find(&self.pool, hash).await
    }

    async fn count_admin_tokens(&self) -> Result<u64> {
        tokens::count_admin(&self.pool).await
    }

    async fn expire_token(&self, hash: &str, at: DateTime<Utc>) -> Result<bool> {
        tokens::expire(&self.pool, hash, at).await
    }

    async fn expire_app_tokens(&self, app_id: &str, at: DateTime<Utc>) -> Result<()> {
        tokens::expire_for_app(&self.pool, app_id, at).await
    }

    async fn create_app(&self, app: &Application) -> Result<()> {
        let r = apps::create(&self.pool, app).await;
        self.apps.invalidate();
        r
    }

    async fn app_by_key(&self, id_or_uid: &str) -> Result<Option<Application>> {
        apps::by_key(&self.pool, id_or_uid).await
    }

    async fn app_by_key_cached(&self, id_or_uid: &str) -> Result<Option<Application>> {
        self.apps
            .get_or_load(id_or_uid, apps::by_key(&self.pool, id_or_uid))
            .await
    }

    async fn list_apps(&self, page: &PageReq) -> Result<Vec<Application>> {
        apps::list(&self.pool, page).await
    }

    async fn update_app(&self, app: &Application) -> Result<()> {
        let r = apps::update(&self.pool, app).await;
        self.apps.invalidate();
        r
    }

    async fn delete_app(&self, id: &str) -> Result<bool> {
        let r = apps::delete(&self.pool, id).await;
        self.apps.invalidate();
        self.endpoints.invalidate();
        r
    }

    async fn create_event_type(&self, et: &EventType) -> Result<()> {
        event_types::create(&self.pool, et).await
    }

    async fn event_type(&self, name: &str) -> Result<Option<EventType>> {
        event_types::get(&self.pool, name).await
    }

    async fn list_event_types(
        &self,
        page: &PageReq,
        include_archived: bool,
    ) -> Result<Vec<EventType>> {
        event_types::list(&self.pool, page, include_archived).await
    }

    async fn update_event_type(&self, et: &EventType) -> Result<()> {
        event_types::update(&self.pool, et).await
    }

    async fn delete_event_type(&self, name: &str) -> Result<bool> {
        event_types::delete(&self.pool, name).await
    }

    async fn create_endpoint(&self, ep: &Endpoint) -> Result<()> {
        let r = endpoints::create(&self.pool, ep).await;
        self.endpoints.invalidate();
        r
    }

    async fn endpoint_by_key(&self, app_id: &str, id_or_uid: &str) -> Result<Option<Endpoint>> {
        endpoints::by_key(&self.pool, app_id, id_or_uid).await
    }

    async fn endpoint_by_key_cached(
        &self,
        app_id: &str,
        id_or_uid: &str,
    ) -> Result<Option<Arc<Endpoint>>> {
        self.endpoints
            .get_or_load(&recent::endpoint_key(app_id, id_or_uid), async {
                Ok(endpoints::by_key(&self.pool, app_id, id_or_uid)
                    .await?
                    .map(Arc::new))
            })
            .await
    }

    async fn list_endpoints(&self, app_id: &str, page: &PageReq) -> Result<Vec<Endpoint>> {
        endpoints::list(&self.pool, app_id, page).await
    }

    async fn update_endpoint(&self, ep: &Endpoint) -> Result<()> {
        let r = endpoints::update(&self.pool, ep).await;
        self.endpoints.invalidate();
        r
    }

    async fn delete_endpoint(&self, app_id: &str, id: &str) -> Result<bool> {
        let r = endpoints::delete(&self.pool, app_id, id).await;
        self.endpoints.invalidate();
        r
    }

    async fn endpoint_stats(
        &self,
        app_id: &str,
        endpoint_id: &str,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<EndpointStats> {
        endpoints::stats(&self.pool, app_id, endpoint_id, since, until).await
    }

    async fn endpoint_failing_since(
        &self,
        endpoint_id: &str,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>> {
        endpoints::failing_since(&self.pool, endpoint_id, now).await
    }

    async fn set_endpoint_failing_since(
        &self,
        endpoint_id: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<()> {
        endpoints::set_failing_since(&self.pool, endpoint_id, since).await
    }

    async fn disable_endpoint(
        &self,
        app_id: &str,
        endpoint_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let r = endpoints::disable(&self.pool, app_id, endpoint_id, now).await;
        self.endpoints.invalidate();
        r
    }

    async fn accept_message(&self, msg: &Message) -> Result<Accepted> {
        self.writer.accept_message(msg).await
    }

    async fn fan_out(&self, msg: &Message, endpoints: usize) -> Result<Vec<Delivery>> {
        self.writer.fan_out(msg, endpoints).await
    }

    async fn list_pending_fanouts(
        &self,
        before: DateTime<Utc>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Message>> {
        messages::pending_fanouts(&self.pool, before, after, limit).await
    }

    async fn message_by_key(&self, app_id: &str, id_or_event_id: &str) -> Result<Option<Message>> {
        messages::by_key(&self.pool, app_id, id_or_event_id).await
    }

    async fn messages_with_small_payloads(
        &self,
        ids: &[String],
        max_payload: usize,
    ) -> Result<Vec<Message>> {
        messages::with_small_payloads(&self.pool, ids, max_payload).await
    }

    async fn list_messages(
        &self,
        app_id: &str,
        filter: &MessageFilter,
        page: &PageReq,
    ) -> Result<Vec<Message>> {
        messages::list(&self.pool, app_id, filter, page).await
    }

    async fn expunge_message_content(&self, app_id: &str, msg_id: &str) -> Result<bool> {
        let done = messages::expunge(&self.pool, app_id, msg_id).await;
        self.expunges.advance();
        done
    }

    fn content_epoch(&self) -> u64 {
        self.expunges.current()
    }

    async fn delivery(&self, id: &str) -> Result<Option<Delivery>> {
        deliveries::get(&self.pool, id).await
    }

    async fn delivery_with_message(&self, id: &str) -> Result<Option<(Delivery, Message)>> {
        deliveries::with_message(&self.pool, id).await
    }

    async fn delivery_for(&self, msg_id: &str, endpoint_id: &str) -> Result<Option<Delivery>> {
        deliveries::get_for(&self.pool, msg_id, endpoint_id).await
    }

    async fn list_message_destinations(
        &self,
        app_id: &str,
        msg_id: &str,
        page: &PageReq,
    ) -> Result<Vec<(Delivery, Endpoint)>> {
        deliveries::destinations(&self.pool, app_id, msg_id, page).await
    }

    async fn list_endpoint_messages(
        &self,
        app_id: &str,
        endpoint_id: &str,
        filter: &MessageFilter,
        page: &PageReq,
    ) -> Result<Vec<(Delivery, Message)>> {
        deliveries::endpoint_messages(&self.pool, app_id, endpoint_id, filter, page).await
    }

    async fn list_pending_deliveries(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        deliveries::pending(&self.pool, after, limit).await
    }

    async fn upsert_delivery(&self, delivery: &Delivery) -> Result<Delivery> {
        deliveries::upsert(&self.pool, delivery).await
    }

    async fn record_attempts(&self, outcomes: &[(Attempt, Delivery)]) -> Result<()> {
        self.writer.record_attempts(outcomes).await
    }

    async fn retry_failed_deliveries(
        &self,
        ids: &[String],
        at: DateTime<Utc>,
    ) -> Result<Vec<Delivery>> {
        deliveries::retry_failed(&self.pool, ids, at).await
    }

    async fn list_failed_deliveries(
        &self,
        app_id: &str,
        endpoint_id: &str,
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        deliveries::failed(
            &self.pool,
            app_id,
            endpoint_id,
            (since, until),
            after,
            limit,
        )
        .await
    }

    async fn list_attempts(
        &self,
        app_id: &str,
        filter: &AttemptFilter,
        page: &PageReq,
    ) -> Result<Vec<Attempt>> {
        attempts::list(&self.pool, app_id, filter, page).await
    }

    async fn attempt(
        &self,
        app_id: &str,
        msg_id: &str,
        attempt_id: &str,
    ) -> Result<Option<Attempt>> {
        attempts::get(&self.pool, app_id, msg_id, attempt_id).await
    }

    async fn expunge_attempt_content(
        &self,
        app_id: &str,
        msg_id: &str,
        attempt_id: &str,
    ) -> Result<bool> {
        attempts::expunge(&self.pool, app_id, msg_id, attempt_id).await
    }

    async fn idempotency_begin(
        &self,
        key: &str,
        now: DateTime<Utc>,
        lock_ttl_ms: i64,
    ) -> Result<IdempotencyState> {
        idempotency::begin(&self.pool, key, now, lock_ttl_ms).await
    }

    async fn idempotency_complete(
        &self,
        key: &str,
        response: &StoredResponse,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        idempotency::complete(&self.pool, key, response, expires_at).await
    }

    async fn idempotency_abort(&self, key: &str) -> Result<()> {
        idempotency::abort(&self.pool, key).await
    }

    async fn upsert_task(&self, task: &BackgroundTask) -> Result<()> {
        tasks::upsert(&self.pool, task).await
    }

    async fn task(&self, id: &str) -> Result<Option<BackgroundTask>> {
        tasks::get(&self.pool, id).await
    }
}
