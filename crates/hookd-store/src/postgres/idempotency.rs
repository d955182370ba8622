//! Idempotency keys. Claiming is one statement, so requests racing for the
//! same key on different connections are ordered by the row and exactly one
//! of them wins.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::codec::{ms, Cols};
use super::error::{corrupt, db};
use crate::{IdempotencyState, Result, StoredResponse};

/// How often `begin` re-reads a key that changed under it (the owner aborted
/// between its two statements) before it gives up and reports the key as in
/// progress.
const RACE_RETRIES: usize = 5;

pub(super) async fn begin(
    pool: &PgPool,
    key: &str,
    now: DateTime<Utc>,
    lock_ttl_ms: i64,
) -> Result<IdempotencyState> {
    let now = ms(now);
    let stale_before = now.saturating_sub(lock_ttl_ms);
    for _ in 0..RACE_RETRIES {
        // Claim a new key, or take over an expired response or an abandoned
        // claim. A racer that finds the row locked by another waits for it and
        // re-checks the WHERE against the row that one left, so after a
        // takeover the rest see a fresh claim and do not match.
        let claimed = sqlx::query(
            "INSERT INTO idempotency (key, completed, locked_at) VALUES ($1, FALSE, $2) \
             ON CONFLICT (key) DO UPDATE SET completed = FALSE, locked_at = excluded.locked_at, status = NULL, \
             content_type = NULL, body = NULL, expires_at = NULL \
             WHERE (idempotency.completed AND idempotency.expires_at <= $2) \
             OR (NOT idempotency.completed AND idempotency.locked_at < $3) \
             RETURNING key",
        )
        .bind(key)
        .bind(now)
        .bind(stale_before)
        .fetch_optional(pool)
        .await
        .map_err(db)?;
        if claimed.is_some() {
            return Ok(IdempotencyState::Started);
        }

        let row = sqlx::query(
            "SELECT completed, status, content_type, body FROM idempotency WHERE key = $1",
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
    pool: &PgPool,
    key: &str,
    response: &StoredResponse,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE idempotency SET completed = TRUE, status = $1, content_type = $2, body = $3, expires_at = $4 \
         WHERE key = $5",
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

pub(super) async fn abort(pool: &PgPool, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM idempotency WHERE key = $1")
        .bind(key)
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(())
}
