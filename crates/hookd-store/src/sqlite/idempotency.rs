//! Idempotency keys. Every step is one statement, so two requests racing for
//! the same key are ordered by the database and exactly one of them wins.

use chrono::{DateTime, Utc};
use sqlx::SqlitePool;

use super::codec::{ms, Cols};
use super::error::{corrupt, db};
use crate::{IdempotencyState, Result, StoredResponse};

/// How often `begin` re-reads a key that changed under it (completed, aborted
/// or taken over by another request between its statements) before it gives up
/// and reports the key as in progress.
const RACE_RETRIES: usize = 5;

pub(super) async fn begin(
    pool: &SqlitePool,
    key: &str,
    now: DateTime<Utc>,
    lock_ttl_ms: i64,
) -> Result<IdempotencyState> {
    let now = ms(now);
    let stale_before = now.saturating_sub(lock_ttl_ms);
    for _ in 0..RACE_RETRIES {
        let claimed = sqlx::query(
            "INSERT INTO idempotency (key, completed, locked_at) VALUES (?, 0, ?) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(now)
        .execute(pool)
        .await
        .map_err(db)?;
        if claimed.rows_affected() == 1 {
            return Ok(IdempotencyState::Started);
        }

        // Take over an expired response or an abandoned claim. The condition is
        // re-checked by the UPDATE itself, so only one of several racers matches.
        let taken = sqlx::query(
            "UPDATE idempotency SET completed = 0, locked_at = ?, status = NULL, content_type = NULL, body = NULL, \
             expires_at = NULL \
             WHERE key = ? AND ((completed = 1 AND expires_at <= ?) OR (completed = 0 AND locked_at < ?))",
        )
        .bind(now)
        .bind(key)
        .bind(now)
        .bind(stale_before)
        .execute(pool)
        .await
        .map_err(db)?;
        if taken.rows_affected() == 1 {
            return Ok(IdempotencyState::Started);
        }

        let row = sqlx::query(
            "SELECT completed, status, content_type, body FROM idempotency WHERE key = ?",
        )
        .bind(key)
        .fetch_optional(pool)
        .await
        .map_err(db)?;
        // Gone: the owner aborted between our statements; try to claim it again.
        let Some(row) = row else { continue };
        let c = Cols::new(&row);
        if !c.flag("completed")? {
            return Ok(IdempotencyState::InProgress);
        }
        let status = c.int("status")?;
        return Ok(IdempotencyState::Completed(StoredResponse {
            status: u16::try_from(status)
                .map_err(|_| corrupt(format_args!("idempotency.status = {status}")))?,
            content_type: c.opt_text("content_type")?,
            body: c.bytes("body")?,
        }));
    }
    Ok(IdempotencyState::InProgress)
}

pub(super) async fn complete(
    pool: &SqlitePool,
    key: &str,
    response: &StoredResponse,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE idempotency SET completed = 1, status = ?, content_type = ?, body = ?, expires_at = ? WHERE key = ?",
    )
    .bind(i64::from(response.status))
    .bind(&response.content_type)
    .bind(&response.body)
    .bind(ms(expires_at))
    .bind(key)
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(())
}

pub(super) async fn abort(pool: &SqlitePool, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM idempotency WHERE key = ?")
        .bind(key)
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(())
}
