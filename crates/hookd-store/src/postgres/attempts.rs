//! Attempts: the record of each request made to an endpoint, and the
//! transaction that files one together with its delivery's new state.

use hookd_core::model::{Attempt, Delivery, TriggerType};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, QueryBuilder};

use super::codec::{ms, select_list, Cols};
use super::deliveries;
use super::error::{corrupt, db};
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

fn from_row(row: &PgRow) -> Result<Attempt> {
    let c = Cols::new(row);
    let code = c.int("response_status_code")?;
    Ok(Attempt {
        id: c.text("id")?,
        app_id: c.text("app_id")?,
        msg_id: c.text("msg_id")?,
        endpoint_id: c.text("endpoint_id")?,
        url: c.text("url")?,
        response: c.opt_utf8("response")?,
        response_status_code: i32::try_from(code)
            .map_err(|_| corrupt(format_args!("response_status_code = {code}")))?,
        response_duration_ms: c.int("response_duration_ms")?,
        status: c.status("status")?,
        trigger_type: TriggerType::from_i64(c.int("trigger_type")?),
        created_at: c.time("created_at")?,
    })
}

/// All outcomes in one transaction; a missing delivery rolls every attempt back.
/// Inserts the attempts and updates their deliveries in the caller's
/// transaction, a statement for all of each. A missing delivery is `NotFound`
/// (the caller's transaction then rolls the attempts back).
pub(super) async fn record(
    conn: &mut PgConnection,
    outcomes: &[(Attempt, Delivery)],
) -> Result<()> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let texts = |f: fn(&Attempt) -> &str| outcomes.iter().map(|(a, _)| f(a)).collect::<Vec<_>>();
    let ints = |f: fn(&Attempt) -> i64| outcomes.iter().map(|(a, _)| f(a)).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO attempts (id, app_id, msg_id, endpoint_id, url, response, response_status_code, \
         response_duration_ms, status, trigger_type, created_at) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[], \
         $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[])",
    )
    .bind(texts(|a| a.id.as_str()))
    .bind(texts(|a| a.app_id.as_str()))
    .bind(texts(|a| a.msg_id.as_str()))
    .bind(texts(|a| a.endpoint_id.as_str()))
    .bind(texts(|a| a.url.as_str()))
    .bind(
        outcomes
            .iter()
            .map(|(a, _)| a.response.as_deref().map(str::as_bytes))
            .collect::<Vec<_>>(),
    )
    .bind(ints(|a| i64::from(a.response_status_code)))
    .bind(ints(|a| a.response_duration_ms))
    .bind(ints(|a| a.status.as_i64()))
    .bind(ints(|a| a.trigger_type as i64))
    .bind(ints(|a| ms(a.created_at)))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    let ds: Vec<&Delivery> = outcomes.iter().map(|(_, d)| d).collect();
    if !deliveries::update_states(conn, &ds).await? {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(super) async fn list(
    pool: &PgPool,
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
            let class = i64::from(class);
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
    pool: &PgPool,
    app_id: &str,
    msg_id: &str,
    attempt_id: &str,
) -> Result<Option<Attempt>> {
    let row = sqlx::query(&format!(
        "SELECT {} FROM attempts a WHERE a.id = $1 AND a.app_id = $2 AND a.msg_id = $3",
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
    pool: &PgPool,
    app_id: &str,
    msg_id: &str,
    attempt_id: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE attempts SET response = NULL WHERE id = $1 AND app_id = $2 AND msg_id = $3",
    )
    .bind(attempt_id)
    .bind(app_id)
    .bind(msg_id)
    .execute(pool)
    .await
    .map_err(db)?;
    Ok(done.rows_affected() > 0)
}
