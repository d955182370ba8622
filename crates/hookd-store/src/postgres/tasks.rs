//! Background tasks (recover, replay, ...) and their progress.

use hookd_core::model::{BackgroundTask, TaskStatus};
use sqlx::PgPool;

use super::codec::{json, ms, Cols};
use super::error::{corrupt, db};
use crate::Result;

fn status_text(s: TaskStatus) -> &'static str {
    match s {
        TaskStatus::Running => "running",
        TaskStatus::Finished => "finished",
        TaskStatus::Failed => "failed",
    }
}

fn parse_status(s: &str) -> Result<TaskStatus> {
    Ok(match s {
        "running" => TaskStatus::Running,
        "finished" => TaskStatus::Finished,
        "failed" => TaskStatus::Failed,
        other => return Err(corrupt(format_args!("background_tasks.status = {other:?}"))),
    })
}

/// Writes the whole task, replacing any stored one with the same id.
pub(super) async fn upsert(pool: &PgPool, task: &BackgroundTask) -> Result<()> {
    sqlx::query(
        "INSERT INTO background_tasks (id, task, status, data, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (id) DO UPDATE SET task = excluded.task, status = excluded.status, data = excluded.data, \
         created_at = excluded.created_at, updated_at = excluded.updated_at",
    )
    .bind(&task.id)
    .bind(&task.task)
    .bind(status_text(task.status))
    .bind(json(&task.data)?)
    .bind(ms(task.created_at))
    .bind(ms(task.updated_at))
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(())
}

pub(super) async fn get(pool: &PgPool, id: &str) -> Result<Option<BackgroundTask>> {
    let row = sqlx::query(
        "SELECT id, task, status, data, created_at, updated_at FROM background_tasks WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    let Some(row) = row else { return Ok(None) };
    let c = Cols::new(&row);
    Ok(Some(BackgroundTask {
        id: c.text("id")?,
        task: c.text("task")?,
        status: parse_status(&c.text("status")?)?,
        data: c.json("data")?,
        created_at: c.time("created_at")?,
        updated_at: c.time("updated_at")?,
    }))
}
