//! Attempts: the record of each request made to an endpoint, and the
//! transaction that files one together with its delivery's new state.

use hookd_core::model::{Attempt, Delivery, TriggerType};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use super::codec::{ms, select_list, Cols};
use super::deliveries;
use super::error::db;
use super::query::{message_content, paginate, time_window};
use crate::{AttemptFilter, PageReq, Result, StoreError};

const COLUMNS: &[&str] = &[
    "id",
    "app_id",
    "msg_id",
    "endpoint_id",
    "url",
    "response",
    "response_status_code",
    "response_duration_ms",
    "status",
    "trigger_type",
    "created_at",
];

/// The attempt columns of the row aliased `a`, under their own names.
fn select_a() -> String {
    select_list("a", "", COLUMNS)
}

fn from_row(row: &SqliteRow) -> Result<Attempt> {
    let c = Cols::new(row);
    let code = c.int("response_status_code")?;
    Ok(Attempt {
        id: c.text("id")?,
        app_id: c.text("app_id")?,
        msg_id: c.text("msg_id")?,
        endpoint_id: c.text("endpoint_id")?,
        url: c.text("url")?,
        response: c.opt_text("response")?,
        response_status_code: i32::try_from(code)
            .map_err(|_| super::error::corrupt(format_args!("response_status_code = {code}")))?,
        response_duration_ms: c.int("response_duration_ms")?,
        status: c.status("status")?,
        trigger_type: TriggerType::from_i64(c.int("trigger_type")?),
        created_at: c.time("created_at")?,
    })
}

/// Rows per multi-row statement (well under SQLite's bound-parameter limit).
const CHUNK: usize = 400;

/// Inserts the attempts and updates their deliveries, a few hundred rows per
/// statement, all in one call to the database thread. A missing delivery is
/// `NotFound` (the caller then rolls the attempts back).
pub(super) async fn record(
    tx: &mut SqliteConnection,
    outcomes: &[(Attempt, Delivery)],
) -> Result<()> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let mut qb = QueryBuilder::new("");
    push_inserts(&mut qb, outcomes);
    let ds: Vec<&Delivery> = outcomes.iter().map(|(_, d)| d).collect();
    let distinct = deliveries::push_updates(&mut qb, &ds);
    // An insert stores every row or fails, so what the statements changed
    // beyond the attempts is the deliveries they matched.
    let changed = qb
        .build()
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
    if changed < (outcomes.len() + distinct) as u64 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Appends the inserts of the outcomes' attempts, one multi-row statement per
/// chunk, each ended by `;`.
pub(super) fn push_inserts<'a>(
    qb: &mut QueryBuilder<'a, Sqlite>,
    outcomes: &'a [(Attempt, Delivery)],
) {
    for chunk in outcomes.chunks(CHUNK) {
        qb.push(
            // `OR FAIL`: see `deliveries::push_inserts`.
            "INSERT OR FAIL INTO attempts (id, app_id, msg_id, endpoint_id, url, response, response_status_code, \
             response_duration_ms, status, trigger_type, created_at) ",
        );
        qb.push_values(chunk, |mut b, (attempt, _)| {
            b.push_bind(&attempt.id)
                .push_bind(&attempt.app_id)
                .push_bind(&attempt.msg_id)
                .push_bind(&attempt.endpoint_id)
                .push_bind(&attempt.url)
                .push_bind(&attempt.response)
                .push_bind(attempt.response_status_code)
                .push_bind(attempt.response_duration_ms)
                .push_bind(attempt.status.as_i64())
                .push_bind(attempt.trigger_type as i64)
                .push_bind(ms(attempt.created_at));
        });
        qb.push("; ");
    }
}

pub(super) async fn list(
    pool: &SqlitePool,
    app_id: &str,
    filter: &AttemptFilter,
    page: &PageReq,
) -> Result<Vec<Attempt>> {
    let needs_message =
        filter.channel.is_some() || filter.tag.is_some() || filter.event_types.is_some();
    let join = if needs_message {
        " JOIN messages m ON m.id = a.msg_id"
    } else {
        ""
    };
    let mut qb = QueryBuilder::new(format!(
        "SELECT {} FROM attempts a{join} WHERE a.app_id = ",
        select_a()
    ));
    qb.push_bind(app_id);
    if let Some(msg_id) = &filter.msg_id {
        qb.push(" AND a.msg_id = ").push_bind(msg_id.clone());
    }
    if let Some(endpoint_id) = &filter.endpoint_id {
        qb.push(" AND a.endpoint_id = ")
            .push_bind(endpoint_id.clone());
    }
    if let Some(status) = filter.status {
        qb.push(" AND a.status = ").push_bind(status.as_i64());
    }
    match filter.status_code_class {
        None => {}
        Some(0) => {
            qb.push(" AND a.response_status_code = 0");
        }
        Some(class) => {
            qb.push(" AND a.response_status_code BETWEEN ")
                .push_bind(class)
                .push(" AND ")
                .push_bind(class.saturating_add(99));
        }
    }
    if needs_message {
        message_content(
            &mut qb,
            filter.channel.as_deref(),
            filter.tag.as_deref(),
            filter.event_types.as_deref(),
        );
    }
    time_window(&mut qb, "a.created_at", filter.before, filter.after);
    paginate(&mut qb, "a.id", page);
    let rows = qb.build().fetch_all(pool).await.map_err(db)?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn get(
    pool: &SqlitePool,
    app_id: &str,
    msg_id: &str,
    attempt_id: &str,
) -> Result<Option<Attempt>> {
    let row = sqlx::query(&format!(
        "SELECT {} FROM attempts a WHERE a.id = ? AND a.app_id = ? AND a.msg_id = ?",
        select_a()
    ))
    .bind(attempt_id)
    .bind(app_id)
    .bind(msg_id)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn expunge(
    pool: &SqlitePool,
    app_id: &str,
    msg_id: &str,
    attempt_id: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE attempts SET response = NULL WHERE id = ? AND app_id = ? AND msg_id = ?",
    )
    .bind(attempt_id)
    .bind(app_id)
    .bind(msg_id)
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(done.rows_affected() > 0)
}
