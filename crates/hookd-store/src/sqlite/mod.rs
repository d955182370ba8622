//! The embedded backend: one SQLite file in WAL mode behind a small pool, or a
//! private in-memory database for tests. Each resource's SQL lives in its own
//! submodule; this one opens the database and routes the [`Store`] methods.

mod apps;
mod attempts;
mod cache;
mod checkpoint;
mod codec;
mod deliveries;
mod endpoints;
mod error;
mod event_types;
mod idempotency;
mod messages;
mod query;
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
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::{
    Accepted, AttemptFilter, IdempotencyState, MessageFilter, PageReq, Result, Store, StoreError,
    StoredResponse, TokenRecord,
};

/// Connections for a database file: readers run in parallel under WAL, writers
/// queue on SQLite's single write lock.
const FILE_POOL_SIZE: u32 = 8;
/// The group writer's page cache, negative meaning KiB (SQLite's default is
/// 2 MiB): the pages of the tables and indexes that every group touches.
const WRITER_CACHE_KIB: &str = "-16384";
/// Prepared statements the writer's connection keeps (sqlx's default is
/// 100). A group goes to SQLite as one batch (`writer::at_once`) whose text
/// depends on how many rows of each kind it holds, and a prepared batch of a
/// few thousand rows holds megabytes. A few suffice for the shapes that
/// repeat under a steady load: S2 ran as fast with 3 or 8 as with 100, with
/// 30–60 MiB less at its peak and `POST /msg` p99 9–12 ms instead of 13–88 ms
/// (docs/PERFORMANCE.md).
const WRITER_STATEMENTS: usize = 8;
/// How long a writer waits for the write lock before the store reports itself
/// unavailable.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a caller waits for a free connection before the same.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
    /// The group writer's own connection (the same pool as `pool` in memory).
    writer_pool: SqlitePool,
    /// Group-commits new messages and attempt outcomes (see `crate::group`).
    writer: crate::group::Writer,
    endpoints: Arc<cache::EndpointCache>,
    apps: crate::recent::Recent<Application>,
    /// Copies the WAL back into the file after commits (file databases only).
    checkpointer: Option<tokio::task::JoinHandle<()>>,
    content_epoch: crate::ContentEpoch,
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database a `sqlite:PATH`,
    /// `sqlite://PATH` or `sqlite::memory:` URL names.
    ///
    /// Commits are `synchronous = FULL`: a message acknowledged with 202 must
    /// survive a power cut, which WAL's cheaper `NORMAL` does not promise.
    pub async fn open(url: &str) -> Result<Self> {
        let in_memory = is_in_memory(url);
        let mut options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("invalid SQLite URL {url:?}: {e}").into()))?
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Full)
            // Savepoints (one per grouped write) keep their undo pages in memory.
            .pragma("temp_store", "memory")
            .pragma("wal_autocheckpoint", checkpoint::WRITER_CHECKPOINT_PAGES);
        let pool_options = if in_memory {
            // Every connection to `:memory:` would see its own empty database, so
            // there is exactly one, and it is never recycled (that would drop the data).
            SqlitePoolOptions::new()
                .min_connections(1)
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            let path = options.get_filename();
            if path.as_os_str().is_empty() {
                return Err(StoreError::Other(
                    format!("SQLite URL {url:?} names no file").into(),
                ));
            }
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
            }
            options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal);
            // Opened once the schema is in place (below) and then kept.
            SqlitePoolOptions::new()
                .max_connections(FILE_POOL_SIZE)
                .idle_timeout(None)
                .max_lifetime(None)
        };
        // A connection to a local file does not go stale; pinging it on every
        // acquire would cost a round trip to its worker thread per query.
        let pool_options = pool_options.test_before_acquire(false);
        let pool = pool_options
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(error::db)?;
        MIGRATOR.run(&pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => error::db(e),
            other => StoreError::Other(Box::new(other)),
        })?;
        if !in_memory {
            // Every read connection opened now, one after another: a pool
            // that opened them as reads first came in (the first fan-outs, 100
            // endpoints looked up at once) held every `POST /msg` of that
            // moment for 25-35 ms, in about a third of S2's runs
            // (docs/PERFORMANCE.md). Not all at once either: connections
            // opening together on a new file can find it locked while the
            // first switches it to WAL, and fail.
            let mut held = Vec::with_capacity(FILE_POOL_SIZE as usize);
            for _ in 0..FILE_POOL_SIZE {
                held.push(pool.acquire().await.map_err(error::db)?);
            }
        }
        // The group writer gets a connection of its own, so its page cache
        // stays warm: a connection that finds the WAL moved on by another
        // connection's commit drops every page it had cached. With the writer
        // taking whichever pooled connection was free, nearly every group began
        // by reading back the index pages it was about to change. An in-memory
        // database has only the one connection, which the writer shares.
        let writer_pool = if in_memory {
            pool.clone()
        } else {
            SqlitePoolOptions::new()
                .min_connections(1)
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .test_before_acquire(false)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(
                    options
                        .pragma("cache_size", WRITER_CACHE_KIB)
                        .statement_cache_capacity(WRITER_STATEMENTS),
                )
                .await
                .map_err(error::db)?
        };
        let endpoints = Arc::new(cache::EndpointCache::default());
        // An in-memory database has no WAL to copy back.
        let commits = (!in_memory).then(|| Arc::new(tokio::sync::Notify::new()));
        let checkpointer = commits
            .clone()
            .map(|commits| checkpoint::spawn(pool.clone(), commits));
        let writer = crate::group::Writer::spawn(
            writer_pool.clone(),
            writer::SqliteWrites {
                cache: endpoints.clone(),
                commits,
                shared_connection: in_memory,
            },
        );
        Ok(Self {
            pool,
            writer_pool,
            writer,
            endpoints,
            apps: crate::recent::apps(None),
            checkpointer,
            content_epoch: Default::default(),
        })
    }

    /// Waits for in-flight queries and closes every connection, checkpointing
    /// the WAL; later calls fail as unavailable.
    pub async fn close(&self) {
        if let Some(task) = &self.checkpointer {
            task.abort();
        }
        self.writer_pool.close().await;
        self.pool.close().await;
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Its pool handle would otherwise keep the connections open.
        if let Some(task) = &self.checkpointer {
            task.abort();
        }
    }
}

fn is_in_memory(url: &str) -> bool {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (db, params) = rest.split_once('?').unwrap_or((rest, ""));
    db == ":memory:" || params.split('&').any(|p| p == "mode=memory")
}

#[async_trait]
impl Store for SqliteStore {
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
        let deleted = apps::delete(&self.pool, id).await;
        self.apps.invalidate();
        self.endpoints.invalidate(Some(id));
        deleted
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
        self.endpoints.invalidate(Some(&ep.app_id));
        r
    }

    async fn endpoint_by_key(&self, app_id: &str, id_or_uid: &str) -> Result<Option<Endpoint>> {
        let found = self.endpoints.by_key(&self.pool, app_id, id_or_uid).await?;
        Ok(found.map(Arc::unwrap_or_clone))
    }

    async fn endpoint_by_key_cached(
        &self,
        app_id: &str,
        id_or_uid: &str,
    ) -> Result<Option<Arc<Endpoint>>> {
        self.endpoints.by_key(&self.pool, app_id, id_or_uid).await
    }

    async fn list_endpoints(&self, app_id: &str, page: &PageReq) -> Result<Vec<Endpoint>> {
        endpoints::list(&self.pool, app_id, page).await
    }

    async fn update_endpoint(&self, ep: &Endpoint) -> Result<()> {
        let r = endpoints::update(&self.pool, ep).await;
        self.endpoints.invalidate(Some(&ep.app_id));
        r
    }

    async fn delete_endpoint(&self, app_id: &str, id: &str) -> Result<bool> {
        let r = endpoints::delete(&self.pool, app_id, id).await;
        self.endpoints.invalidate(Some(app_id));
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
        self.endpoints.invalidate(Some(app_id));
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
        self.content_epoch.advance();
        done
    }

    fn content_epoch(&self) -> u64 {
        self.content_epoch.current()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every read connection is open before the store is, and opening them
    /// does not trip over a new file's switch to WAL (opened all at once,
    /// about one new file in seven failed to open).
    #[tokio::test]
    async fn a_new_file_database_opens_every_read_connection_before_use() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..50 {
            let url = format!("sqlite:{}", dir.path().join(format!("h{i}.db")).display());
            let store = SqliteStore::open(&url)
                .await
                .unwrap_or_else(|e| panic!("new file {i} did not open: {e:?}"));
            // Open, and back in the pool or on their way there.
            assert_eq!(store.pool.size(), FILE_POOL_SIZE);
            store.close().await;
        }
    }
}
