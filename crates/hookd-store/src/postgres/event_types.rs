//! Event types: the global catalogue of names messages are sent under.

use hookd_core::model::EventType;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, QueryBuilder};

use super::codec::{ms, opt_json, Cols};
use super::error::db;
use super::query::paginate;
use crate::{PageReq, Result, StoreError};

const COLUMNS: &str =
    "name, description, archived, deprecated, schemas, group_name, feature_flags, created_at, updated_at";

fn from_row(row: &PgRow) -> Result<EventType> {
    let c = Cols::new(row);
    Ok(EventType {
        name: c.text("name")?,
        description: c.text("description")?,
        archived: c.flag("archived")?,
        deprecated: c.flag("deprecated")?,
        schemas: c.opt_json("schemas")?,
        group_name: c.opt_text("group_name")?,
        feature_flags: c.opt_json("feature_flags")?,
        created_at: c.time("created_at")?,
        updated_at: c.time("updated_at")?,
    })
}

pub(super) async fn create(pool: &PgPool, et: &EventType) -> Result<()> {
    sqlx::query(
        "INSERT INTO event_types (name, description, archived, deprecated, schemas, group_name, feature_flags, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&et.name)
    .bind(&et.description)
    .bind(et.archived)
    .bind(et.deprecated)
    .bind(opt_json(et.schemas.as_ref())?)
    .bind(&et.group_name)
    .bind(opt_json(et.feature_flags.as_ref())?)
    .bind(ms(et.created_at))
    .bind(ms(et.updated_at))
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(())
}

pub(super) async fn get(pool: &PgPool, name: &str) -> Result<Option<EventType>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM event_types WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn list(
    pool: &PgPool,
    page: &PageReq,
    include_archived: bool,
) -> Result<Vec<EventType>> {
    let mut qb = QueryBuilder::new(format!("SELECT {COLUMNS} FROM event_types WHERE TRUE"));
    if !include_archived {
        qb.push(" AND NOT archived");
    }
    paginate(&mut qb, "name", page);
    let rows = qb.build().fetch_all(pool).await.map_err(db)?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn update(pool: &PgPool, et: &EventType) -> Result<()> {
    let done = sqlx::query(
        "UPDATE event_types SET description = $1, archived = $2, deprecated = $3, schemas = $4, group_name = $5, \
         feature_flags = $6, created_at = $7, updated_at = $8 WHERE name = $9",
    )
    .bind(&et.description)
    .bind(et.archived)
    .bind(et.deprecated)
    .bind(opt_json(et.schemas.as_ref())?)
    .bind(&et.group_name)
    .bind(opt_json(et.feature_flags.as_ref())?)
    .bind(ms(et.created_at))
    .bind(ms(et.updated_at))
    .bind(&et.name)
    .execute(pool)
    .await
    .map_err(db)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(super) async fn delete(pool: &PgPool, name: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM event_types WHERE name = $1")
        .bind(name)
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(done.rows_affected() > 0)
}
