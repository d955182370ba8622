//! Applications: the tenants every other record hangs from.

use hookd_core::model::Application;
use hookd_core::IdKind;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, SqlitePool};

use super::codec::{json, ms, opt_u32, Cols};
use super::error::db;
use super::query::paginate;
use crate::{PageReq, Result, StoreError};

const COLUMNS: &str = "id, uid, name, throttle_rate, metadata, created_at, updated_at";

fn from_row(row: &SqliteRow) -> Result<Application> {
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

pub(super) async fn create(pool: &SqlitePool, app: &Application) -> Result<()> {
    sqlx::query(
        "INSERT INTO applications (id, uid, name, throttle_rate, metadata, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
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

pub(super) async fn by_key(pool: &SqlitePool, key: &str) -> Result<Option<Application>> {
    let column = if IdKind::App.is_id(key) { "id" } else { "uid" };
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM applications WHERE {column} = ?"
    ))
    .bind(key)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn list(pool: &SqlitePool, page: &PageReq) -> Result<Vec<Application>> {
    let mut qb = QueryBuilder::new(format!("SELECT {COLUMNS} FROM applications WHERE 1 = 1"));
    paginate(&mut qb, "id", page);
    let rows = qb.build().fetch_all(pool).await.map_err(db)?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn update(pool: &SqlitePool, app: &Application) -> Result<()> {
    let done = sqlx::query(
        "UPDATE applications SET uid = ?, name = ?, throttle_rate = ?, metadata = ?, created_at = ?, \
         updated_at = ? WHERE id = ?",
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
pub(super) async fn delete(pool: &SqlitePool, id: &str) -> Result<bool> {
    let mut tx = pool.begin().await.map_err(db)?;
    sqlx::query("DELETE FROM tokens WHERE scope = ?")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let done = sqlx::query("DELETE FROM applications WHERE id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(done.rows_affected() > 0)
}
