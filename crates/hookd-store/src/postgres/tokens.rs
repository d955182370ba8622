//! Bearer tokens, kept only as hashes. The `scope` column holds `admin` or the
//! id of the one application the token may act on.

use chrono::{DateTime, Utc};
use hookd_core::model::TokenScope;
use sqlx::PgPool;

use super::codec::{ms, opt_ms, Cols};
use super::error::db;
use crate::{Result, TokenRecord};

const ADMIN_SCOPE: &str = "admin";

fn scope_text(scope: &TokenScope) -> &str {
    match scope {
        TokenScope::Admin => ADMIN_SCOPE,
        TokenScope::App(app_id) => app_id,
    }
}

pub(super) async fn insert(pool: &PgPool, token: &TokenRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO tokens (id, hash, scope, read_only, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&token.id)
    .bind(&token.hash)
    .bind(scope_text(&token.scope))
    .bind(token.read_only)
    .bind(ms(token.created_at))
    .bind(opt_ms(token.expires_at))
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(())
}

pub(super) async fn find(pool: &PgPool, hash: &str) -> Result<Option<TokenRecord>> {
    let row = sqlx::query(
        "SELECT id, hash, scope, read_only, created_at, expires_at FROM tokens WHERE hash = $1",
    )
    .bind(hash)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    let Some(row) = row else { return Ok(None) };
    let c = Cols::new(&row);
    let scope = c.text("scope")?;
    Ok(Some(TokenRecord {
        id: c.text("id")?,
        hash: c.text("hash")?,
        scope: if scope == ADMIN_SCOPE {
            TokenScope::Admin
        } else {
            TokenScope::App(scope)
        },
        read_only: c.flag("read_only")?,
        created_at: c.time("created_at")?,
        expires_at: c.opt_time("expires_at")?,
    }))
}

pub(super) async fn count_admin(pool: &PgPool) -> Result<u64> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tokens WHERE scope = $1")
        .bind(ADMIN_SCOPE)
        .fetch_one(pool)
        .await
        .map_err(db)?;
    Ok(n.unsigned_abs())
}

/// Brings every expiry of the app's tokens forward to `at`; a token that
/// already expires sooner keeps its earlier expiry.
pub(super) async fn expire_for_app(pool: &PgPool, app_id: &str, at: DateTime<Utc>) -> Result<()> {
    sqlx::query(
        "UPDATE tokens SET expires_at = $1 WHERE scope = $2 AND (expires_at IS NULL OR expires_at > $1)",
    )
    .bind(ms(at))
    .bind(app_id)
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(())
}

pub(super) async fn expire(pool: &PgPool, hash: &str, at: DateTime<Utc>) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE tokens SET expires_at = CASE WHEN expires_at IS NULL OR expires_at > $1 THEN $1 ELSE expires_at END \
         WHERE hash = $2",
    )
    .bind(ms(at))
    .bind(hash)
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(done.rows_affected() > 0)
}
