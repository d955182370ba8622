//! Endpoints of an application, and the per-status counts of their deliveries.

use chrono::{DateTime, Utc};
use hookd_core::model::{Endpoint, EndpointStats, MessageStatus};
use sqlx::{QueryBuilder, SqlitePool};

use super::codec::{json, ms, opt_json, opt_u32, Cols};
use super::error::db;
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

pub(super) async fn create(pool: &SqlitePool, ep: &Endpoint) -> Result<()> {
    sqlx::query(
        "INSERT INTO endpoints (id, app_id, uid, url, description, disabled, throttle_rate, event_types, \
         channels, metadata, headers, secret, old_secrets, settings, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(())
}

pub(super) async fn list(pool: &SqlitePool, app_id: &str, page: &PageReq) -> Result<Vec<Endpoint>> {
    let mut qb = QueryBuilder::new(select("app_id = "));
    qb.push_bind(app_id);
    paginate(&mut qb, "id", page);
    let rows = qb.build().fetch_all(pool).await.map_err(db)?;
    rows.iter().map(|r| from_cols(&Cols::new(r))).collect()
}

/// Replaces every field but the id and the owning app.
pub(super) async fn update(pool: &SqlitePool, ep: &Endpoint) -> Result<()> {
    let done = sqlx::query(
        "UPDATE endpoints SET uid = ?, url = ?, description = ?, disabled = ?, throttle_rate = ?, \
         event_types = ?, channels = ?, metadata = ?, headers = ?, secret = ?, old_secrets = ?, settings = ?, \
         created_at = ?, updated_at = ?, \
         failing_since = CASE WHEN disabled AND NOT ? THEN NULL ELSE failing_since END \
         WHERE id = ? AND app_id = ?",
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
    .bind(ep.disabled)
    .bind(&ep.id)
    .bind(&ep.app_id)
    .execute(pool)
    .await
    .map_err(db)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// The endpoint's deliveries and attempts go with it through the schema's cascades.
pub(super) async fn delete(pool: &SqlitePool, app_id: &str, id: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM endpoints WHERE id = ? AND app_id = ?")
        .bind(id)
        .bind(app_id)
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn stats(
    pool: &SqlitePool,
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
            None => {
                return Err(super::error::corrupt(format_args!(
                    "deliveries.status = {status}"
                )))
            }
        }
    }
    Ok(stats)
}

pub(super) async fn failing_since(
    pool: &SqlitePool,
    endpoint_id: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>> {
    let started: Option<i64> = sqlx::query_scalar(
        "UPDATE endpoints SET failing_since = COALESCE(failing_since, ?) WHERE id = ? RETURNING failing_since",
    )
    .bind(ms(now))
    .bind(endpoint_id)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    let started = started.ok_or(StoreError::NotFound)?;
    Ok(DateTime::from_timestamp_millis(started).unwrap_or(now))
}

pub(super) async fn set_failing_since(
    pool: &SqlitePool,
    endpoint_id: &str,
    since: Option<DateTime<Utc>>,
) -> Result<()> {
    // Stopping a clock that is not running is the common case (the first
    // success on each endpoint after a start). A read needs no write lock, so
    // it does not wait behind the group writer's transaction as any UPDATE,
    // even one that matches nothing, would.
    if since.is_none() {
        let running: Option<bool> =
            sqlx::query_scalar("SELECT failing_since IS NOT NULL FROM endpoints WHERE id = ?")
                .bind(endpoint_id)
                .fetch_optional(pool)
                .await
                .map_err(db)?;
        if running != Some(true) {
            return Ok(());
        }
    }
    sqlx::query("UPDATE endpoints SET failing_since = ? WHERE id = ?")
        .bind(since.map(ms))
        .bind(endpoint_id)
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(())
}

pub(super) async fn disable(
    pool: &SqlitePool,
    app_id: &str,
    endpoint_id: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE endpoints SET disabled = 1, updated_at = ? WHERE id = ? AND app_id = ? AND disabled = 0",
    )
    .bind(ms(now))
    .bind(endpoint_id)
    .bind(app_id)
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(done.rows_affected() > 0)
}
