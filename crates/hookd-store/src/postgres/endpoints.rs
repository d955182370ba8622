//! Endpoints of an application, and the per-status counts of their deliveries.
//!
//! Changes that decide where messages fan out (create, update, delete,
//! disable) hold the application row exclusively for their transaction, so a
//! message is fanned out either wholly before or wholly after them (see
//! [`apps::AppLock`]).

use chrono::{DateTime, Utc};
use hookd_core::model::{Endpoint, EndpointStats, MessageStatus};
use hookd_core::IdKind;
use sqlx::{PgPool, QueryBuilder};

use super::apps::{self, AppLock};
use super::codec::{json, ms, opt_json, opt_u32, to_time, Cols};
use super::error::{corrupt, db};
use super::query::paginate;
use crate::{PageReq, Result, StoreError};

/// The columns [`from_cols`] reads, for callers that join endpoints to other rows.
pub(super) const COLUMNS: &[&str] = &[
    "id",
    "app_id",
    "uid",
    "url",
    "description",
    "disabled",
    "throttle_rate",
    "event_types",
    "channels",
    "metadata",
    "headers",
    "secret",
    "old_secrets",
    "settings",
    "created_at",
    "updated_at",
];

pub(super) fn from_cols(c: &Cols<'_>) -> Result<Endpoint> {
    Ok(Endpoint {
        id: c.text("id")?,
        app_id: c.text("app_id")?,
        uid: c.opt_text("uid")?,
        url: c.text("url")?,
        description: c.text("description")?,
        disabled: c.flag("disabled")?,
        throttle_rate: c.opt_u32("throttle_rate")?,
        event_types: c.opt_json("event_types")?,
        channels: c.opt_json("channels")?,
        metadata: c.json("metadata")?,
        headers: c.json("headers")?,
        secret: c.text("secret")?,
        old_secrets: c.json("old_secrets")?,
        settings: c.json("settings")?,
        created_at: c.time("created_at")?,
        updated_at: c.time("updated_at")?,
    })
}

pub(super) fn select(filter: &str) -> String {
    format!(
        "SELECT {} FROM endpoints WHERE {filter}",
        COLUMNS.join(", ")
    )
}

pub(super) async fn create(pool: &PgPool, ep: &Endpoint) -> Result<()> {
    let mut tx = pool.begin().await.map_err(db)?;
    if !apps::lock(&mut tx, &ep.app_id, AppLock::Exclusive).await? {
        return Err(StoreError::NotFound);
    }
    sqlx::query(
        "INSERT INTO endpoints (id, app_id, uid, url, description, disabled, throttle_rate, event_types, \
         channels, metadata, headers, secret, old_secrets, settings, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(&ep.id)
    .bind(&ep.app_id)
    .bind(&ep.uid)
    .bind(&ep.url)
    .bind(&ep.description)
    .bind(ep.disabled)
    .bind(opt_u32(ep.throttle_rate))
    .bind(opt_json(ep.event_types.as_ref())?)
    .bind(opt_json(ep.channels.as_ref())?)
    .bind(json(&ep.metadata)?)
    .bind(json(&ep.headers)?)
    .bind(&ep.secret)
    .bind(json(&ep.old_secrets)?)
    .bind(json(&ep.settings)?)
    .bind(ms(ep.created_at))
    .bind(ms(ep.updated_at))
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(())
}

pub(super) async fn by_key(pool: &PgPool, app_id: &str, key: &str) -> Result<Option<Endpoint>> {
    let column = if IdKind::Endpoint.is_id(key) {
        "id"
    } else {
        "uid"
    };
    let row = sqlx::query(&select(&format!("app_id = $1 AND {column} = $2")))
        .bind(app_id)
        .bind(key)
        .fetch_optional(pool)
        .await
        .map_err(db)?;
    row.as_ref().map(|r| from_cols(&Cols::new(r))).transpose()
}

pub(super) async fn list(pool: &PgPool, app_id: &str, page: &PageReq) -> Result<Vec<Endpoint>> {
    let mut qb = QueryBuilder::new(select("app_id = "));
    qb.push_bind(app_id);
    paginate(&mut qb, "id", page);
    let rows = qb.build().fetch_all(pool).await.map_err(db)?;
    rows.iter().map(|r| from_cols(&Cols::new(r))).collect()
}

/// Replaces every field but the id and the owning app. Re-enabling stops the
/// failing clock (`disabled` on the right-hand side is the stored value).
pub(super) async fn update(pool: &PgPool, ep: &Endpoint) -> Result<()> {
    let mut tx = pool.begin().await.map_err(db)?;
    if !apps::lock(&mut tx, &ep.app_id, AppLock::Exclusive).await? {
        return Err(StoreError::NotFound);
    }
    let done = sqlx::query(
        "UPDATE endpoints SET uid = $1, url = $2, description = $3, disabled = $4, throttle_rate = $5, \
         event_types = $6, channels = $7, metadata = $8, headers = $9, secret = $10, old_secrets = $11, \
         settings = $12, created_at = $13, updated_at = $14, \
         failing_since = CASE WHEN disabled AND NOT $4 THEN NULL ELSE failing_since END \
         WHERE id = $15 AND app_id = $16",
    )
    .bind(&ep.uid)
    .bind(&ep.url)
    .bind(&ep.description)
    .bind(ep.disabled)
    .bind(opt_u32(ep.throttle_rate))
    .bind(opt_json(ep.event_types.as_ref())?)
    .bind(opt_json(ep.channels.as_ref())?)
    .bind(json(&ep.metadata)?)
    .bind(json(&ep.headers)?)
    .bind(&ep.secret)
    .bind(json(&ep.old_secrets)?)
    .bind(json(&ep.settings)?)
    .bind(ms(ep.created_at))
    .bind(ms(ep.updated_at))
    .bind(&ep.id)
    .bind(&ep.app_id)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    tx.commit().await.map_err(db)?;
    Ok(())
}

/// The endpoint's deliveries and attempts go with it through the schema's cascades.
pub(super) async fn delete(pool: &PgPool, app_id: &str, id: &str) -> Result<bool> {
    let mut tx = pool.begin().await.map_err(db)?;
    if !apps::lock(&mut tx, app_id, AppLock::Exclusive).await? {
        return Ok(false);
    }
    let done = sqlx::query("DELETE FROM endpoints WHERE id = $1 AND app_id = $2")
        .bind(id)
        .bind(app_id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn stats(
    pool: &PgPool,
    app_id: &str,
    endpoint_id: &str,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<EndpointStats> {
    let mut qb = QueryBuilder::new("SELECT status, COUNT(*) FROM deliveries WHERE app_id = ");
    qb.push_bind(app_id)
        .push(" AND endpoint_id = ")
        .push_bind(endpoint_id);
    if let Some(since) = since {
        qb.push(" AND created_at >= ").push_bind(ms(since));
    }
    if let Some(until) = until {
        qb.push(" AND created_at < ").push_bind(ms(until));
    }
    qb.push(" GROUP BY status");
    let counts: Vec<(i64, i64)> = qb.build_query_as().fetch_all(pool).await.map_err(db)?;
    let mut stats = EndpointStats::default();
    for (status, n) in counts {
        let n = n.unsigned_abs();
        match MessageStatus::from_i64(status) {
            Some(MessageStatus::Success) => stats.success = n,
            Some(MessageStatus::Pending) => stats.pending = n,
            Some(MessageStatus::Sending) => stats.sending = n,
            Some(MessageStatus::Fail) => stats.fail = n,
            Some(MessageStatus::Canceled) => stats.canceled = n,
            None => return Err(corrupt(format_args!("deliveries.status = {status}"))),
        }
    }
    Ok(stats)
}

pub(super) async fn failing_since(
    pool: &PgPool,
    endpoint_id: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>> {
    let started: Option<i64> = sqlx::query_scalar(
        "UPDATE endpoints SET failing_since = COALESCE(failing_since, $1) WHERE id = $2 RETURNING failing_since",
    )
    .bind(ms(now))
    .bind(endpoint_id)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    to_time("failing_since", started.ok_or(StoreError::NotFound)?)
}

pub(super) async fn set_failing_since(
    pool: &PgPool,
    endpoint_id: &str,
    since: Option<DateTime<Utc>>,
) -> Result<()> {
    // Unchanged rows are left alone (no new row version for a clock that is
    // already stopped).
    sqlx::query(
        "UPDATE endpoints SET failing_since = $1 WHERE id = $2 AND failing_since IS DISTINCT FROM $1",
    )
        .bind(since.map(ms))
        .bind(endpoint_id)
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(())
}

pub(super) async fn disable(
    pool: &PgPool,
    app_id: &str,
    endpoint_id: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let mut tx = pool.begin().await.map_err(db)?;
    if !apps::lock(&mut tx, app_id, AppLock::Exclusive).await? {
        return Ok(false);
    }
    let done = sqlx::query(
        "UPDATE endpoints SET disabled = TRUE, updated_at = $1 WHERE id = $2 AND app_id = $3 AND NOT disabled",
    )
    .bind(ms(now))
    .bind(endpoint_id)
    .bind(app_id)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(done.rows_affected() > 0)
}
