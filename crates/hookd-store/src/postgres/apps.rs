//! Applications: the tenants every other record hangs from, and the row lock
//! that orders message fan-out against endpoint changes.

use hookd_core::model::Application;
use hookd_core::IdKind;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, QueryBuilder};

use super::codec::{json, ms, opt_u32, Cols};
use super::error::db;
use super::query::paginate;
use crate::{PageReq, Result, StoreError};

const COLUMNS: &str = "id, uid, name, throttle_rate, metadata, created_at, updated_at";

fn from_row(row: &PgRow) -> Result<Application> {
    let c = Cols::new(row);
    Ok(Application {
        id: c.text("id")?,
        uid: c.opt_text("uid")?,
        name: c.text("name")?,
        throttle_rate: c.opt_u32("throttle_rate")?,
        metadata: c.json("metadata")?,
        created_at: c.time("created_at")?,
        updated_at: c.time("updated_at")?,
    })
}

/// How a transaction holds its application row until it ends.
///
/// Creating a message reads the app's endpoints to fan out to them; changing
/// an endpoint would make that read stale. So message creation takes the row
/// in `Shared` mode (messages do not wait for each other) and endpoint changes
/// take it `Exclusive`ly, which waits for, and holds off, every message being
/// created in that app. Neither mode conflicts with the key-share locks that
/// foreign-key checks take, so inserting under the app is never held up.
#[derive(Debug, Clone, Copy)]
pub(super) enum AppLock {
    Shared,
    Exclusive,
}

/// Locks the app row for the rest of the caller's transaction. False if there
/// is no such app.
pub(super) async fn lock(conn: &mut PgConnection, app_id: &str, mode: AppLock) -> Result<bool> {
    Ok(lock_all(conn, &[app_id], mode).await? == 1)
}

/// Locks the rows of `ids` (sorted, distinct) for the rest of the caller's
/// transaction, in id order so that concurrent callers cannot deadlock.
/// Returns how many exist.
pub(super) async fn lock_all(
    conn: &mut PgConnection,
    ids: &[&str],
    mode: AppLock,
) -> Result<usize> {
    let clause = match mode {
        AppLock::Shared => "FOR SHARE",
        AppLock::Exclusive => "FOR NO KEY UPDATE",
    };
    let found = sqlx::query(&format!(
        "SELECT 1 FROM applications WHERE id = ANY($1) ORDER BY id {clause}"
    ))
    .bind(ids)
    .fetch_all(conn)
    .await
    .map_err(db)?;
    Ok(found.len())
}

pub(super) async fn create(pool: &PgPool, app: &Application) -> Result<()> {
    sqlx::query(
        "INSERT INTO applications (id, uid, name, throttle_rate, metadata, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&app.id)
    .bind(&app.uid)
    .bind(&app.name)
    .bind(opt_u32(app.throttle_rate))
    .bind(json(&app.metadata)?)
    .bind(ms(app.created_at))
    .bind(ms(app.updated_at))
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(())
}

pub(super) async fn by_key(pool: &PgPool, key: &str) -> Result<Option<Application>> {
    let column = if IdKind::App.is_id(key) { "id" } else { "uid" };
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM applications WHERE {column} = $1"
    ))
    .bind(key)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn list(pool: &PgPool, page: &PageReq) -> Result<Vec<Application>> {
    let mut qb = QueryBuilder::new(format!("SELECT {COLUMNS} FROM applications WHERE TRUE"));
    paginate(&mut qb, "id", page);
    let rows = qb.build().fetch_all(pool).await.map_err(db)?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn update(pool: &PgPool, app: &Application) -> Result<()> {
    let done = sqlx::query(
        "UPDATE applications SET uid = $1, name = $2, throttle_rate = $3, metadata = $4, created_at = $5, \
         updated_at = $6 WHERE id = $7",
    )
    .bind(&app.uid)
    .bind(&app.name)
    .bind(opt_u32(app.throttle_rate))
    .bind(json(&app.metadata)?)
    .bind(ms(app.created_at))
    .bind(ms(app.updated_at))
    .bind(&app.id)
    .execute(pool)
    .await
    .map_err(db)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Endpoints, messages, deliveries and attempts go with the application
/// through the schema's cascades; its tokens have no foreign key (admin tokens
/// belong to no app), so they are deleted here in the same transaction.
pub(super) async fn delete(pool: &PgPool, id: &str) -> Result<bool> {
    let mut tx = pool.begin().await.map_err(db)?;
    sqlx::query("DELETE FROM tokens WHERE scope = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let done = sqlx::query("DELETE FROM applications WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(done.rows_affected() > 0)
}
