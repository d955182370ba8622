//! Deliveries: one message bound for one endpoint, the delivery engine's unit
//! of work, and the listings that pair them with their message or endpoint.

use chrono::{DateTime, Utc};
use hookd_core::model::{Delivery, Endpoint, Message, MessageStatus};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use super::codec::{ms, opt_ms, select_list, Cols};
use super::error::db;
use super::query::{message_content, paginate, time_window};
use super::{endpoints, messages};
use crate::{MessageFilter, PageReq, Result};

const COLUMNS: &[&str] = &[
    "id",
    "app_id",
    "msg_id",
    "endpoint_id",
    "status",
    "attempts",
    "next_attempt",
    "created_at",
    "updated_at",
];

fn from_cols(c: &Cols<'_>) -> Result<Delivery> {
    Ok(Delivery {
        id: c.text("id")?,
        app_id: c.text("app_id")?,
        msg_id: c.text("msg_id")?,
        endpoint_id: c.text("endpoint_id")?,
        status: c.status("status")?,
        attempts: c.u32("attempts")?,
        next_attempt: c.opt_time("next_attempt")?,
        created_at: c.time("created_at")?,
        updated_at: c.time("updated_at")?,
    })
}

fn from_row(row: &SqliteRow) -> Result<Delivery> {
    from_cols(&Cols::new(row))
}

fn select(filter: &str) -> String {
    format!(
        "SELECT {} FROM deliveries WHERE {filter}",
        COLUMNS.join(", ")
    )
}

/// Rows per multi-row statement (well under SQLite's bound-parameter limit).
const CHUNK: usize = 500;

/// Appends the inserts of `ds` to `qb`: one multi-row statement per chunk,
/// each ended by `;`, so that they run with the caller's other statements in
/// one call to the database thread.
///
/// The group writer's multi-row statements on deliveries and attempts are
/// `OR FAIL`: a broken constraint stops the statement but keeps the rows
/// before it, where the default (`ABORT`) undoes them, which costs a statement
/// journal (a copy of every page the statement changes). Their callers roll
/// the whole transaction back on any failure, so nothing half-written stays.
/// The tables' foreign keys are deferred to the commit (migration 0008) for
/// the same reason.
pub(super) fn push_inserts<'a>(qb: &mut QueryBuilder<'a, Sqlite>, ds: &[&'a Delivery]) {
    for chunk in ds.chunks(CHUNK) {
        qb.push(
            "INSERT OR FAIL INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempts, next_attempt, created_at, updated_at) ",
        );
        push_rows(qb, chunk);
        qb.push("; ");
    }
}

/// Appends inserts of those of `ds` whose message's fan-out is still pending
/// (has its `pending_fanouts` row), one statement per chunk, each ended by
/// `;`: the fan-outs worked out before their claim (see
/// `messages::FanOuts`).
pub(super) fn push_inserts_if_pending<'a>(qb: &mut QueryBuilder<'a, Sqlite>, ds: &[&'a Delivery]) {
    for chunk in ds.chunks(CHUNK) {
        qb.push(
            // `OR FAIL`: see `push_inserts`.
            "INSERT OR FAIL INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempts, next_attempt, created_at, updated_at) \
             SELECT * FROM (",
        );
        push_rows(qb, chunk);
        qb.push(
            ") AS v WHERE EXISTS (SELECT 1 FROM pending_fanouts p WHERE p.msg_id = v.column3); ",
        );
    }
}

/// Appends `VALUES (...), ...`, the columns of `ds` in table order.
fn push_rows<'a>(qb: &mut QueryBuilder<'a, Sqlite>, ds: &[&'a Delivery]) {
    qb.push_values(ds, |mut b, d| {
        b.push_bind(&d.id)
            .push_bind(&d.app_id)
            .push_bind(&d.msg_id)
            .push_bind(&d.endpoint_id)
            .push_bind(d.status.as_i64())
            .push_bind(i64::from(d.attempts))
            .push_bind(opt_ms(d.next_attempt))
            .push_bind(ms(d.created_at))
            .push_bind(ms(d.updated_at));
    });
}

/// Appends the updates of the mutable state (status, attempt count,
/// schedule) of `ds` by id to `qb`, one statement per chunk, each ended by
/// `;`. Where a delivery appears more than once its last state is the one
/// written (an `UPDATE ... FROM` with two rows for one target would pick
/// either). Returns how many distinct deliveries the statements should match.
pub(super) fn push_updates<'a>(qb: &mut QueryBuilder<'a, Sqlite>, ds: &[&'a Delivery]) -> usize {
    let mut last = std::collections::HashMap::with_capacity(ds.len());
    for (i, d) in ds.iter().enumerate() {
        last.insert(d.id.as_str(), i);
    }
    let latest: Vec<&Delivery> = ds
        .iter()
        .enumerate()
        .filter(|(i, d)| last.get(d.id.as_str()) == Some(i))
        .map(|(_, d)| *d)
        .collect();
    for chunk in latest.chunks(CHUNK) {
        qb.push(
            // `OR FAIL`: see `push_inserts`.
            "UPDATE OR FAIL deliveries SET status = v.column2, attempts = v.column3, next_attempt = v.column4, \
             updated_at = v.column5 FROM (",
        );
        qb.push_values(chunk, |mut b, d| {
            b.push_bind(&d.id)
                .push_bind(d.status.as_i64())
                .push_bind(i64::from(d.attempts))
                .push_bind(opt_ms(d.next_attempt))
                .push_bind(ms(d.updated_at));
        });
        qb.push(") AS v WHERE deliveries.id = v.column1; ");
    }
    latest.len()
}

pub(super) async fn get(pool: &SqlitePool, id: &str) -> Result<Option<Delivery>> {
    let row = sqlx::query(&select("id = ?"))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(db)?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn get_for(
    pool: &SqlitePool,
    msg_id: &str,
    endpoint_id: &str,
) -> Result<Option<Delivery>> {
    let row = sqlx::query(&select("msg_id = ? AND endpoint_id = ?"))
        .bind(msg_id)
        .bind(endpoint_id)
        .fetch_optional(pool)
        .await
        .map_err(db)?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn destinations(
    pool: &SqlitePool,
    app_id: &str,
    msg_id: &str,
    page: &PageReq,
) -> Result<Vec<(Delivery, Endpoint)>> {
    let mut qb = QueryBuilder::new(format!(
        "SELECT {}, {} FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id WHERE d.app_id = ",
        select_list("d", "d_", COLUMNS),
        select_list("e", "e_", endpoints::COLUMNS),
    ));
    qb.push_bind(app_id)
        .push(" AND d.msg_id = ")
        .push_bind(msg_id);
    paginate(&mut qb, "d.endpoint_id", page);
    let rows = qb.build().fetch_all(pool).await.map_err(db)?;
    rows.iter()
        .map(|r| {
            Ok((
                from_cols(&Cols::prefixed(r, "d_"))?,
                endpoints::from_cols(&Cols::prefixed(r, "e_"))?,
            ))
        })
        .collect()
}

pub(super) async fn endpoint_messages(
    pool: &SqlitePool,
    app_id: &str,
    endpoint_id: &str,
    filter: &MessageFilter,
    page: &PageReq,
) -> Result<Vec<(Delivery, Message)>> {
    let mut qb = QueryBuilder::new(with_message_select("d.app_id = "));
    qb.push_bind(app_id)
        .push(" AND d.endpoint_id = ")
        .push_bind(endpoint_id);
    if let Some(status) = filter.status {
        qb.push(" AND d.status = ").push_bind(status.as_i64());
    }
    message_content(
        &mut qb,
        filter.channel.as_deref(),
        filter.tag.as_deref(),
        filter.event_types.as_deref(),
    );
    time_window(&mut qb, "m.created_at", filter.before, filter.after);
    paginate(&mut qb, "d.msg_id", page);
    let rows = qb.build().fetch_all(pool).await.map_err(db)?;
    rows.iter().map(with_message_from).collect()
}

/// A delivery and its message in one query: what the dispatcher needs for a
/// task that carries neither.
pub(super) async fn with_message(
    pool: &SqlitePool,
    id: &str,
) -> Result<Option<(Delivery, Message)>> {
    let row = sqlx::query(&with_message_select("d.id = ?"))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(db)?;
    row.as_ref().map(with_message_from).transpose()
}

/// Deliveries joined to their messages (`d` and `m`), where `filter` holds.
fn with_message_select(filter: &str) -> String {
    format!(
        "SELECT {}, {} FROM deliveries d JOIN messages m ON m.id = d.msg_id WHERE {filter}",
        select_list("d", "d_", COLUMNS),
        select_list("m", "m_", messages::COLUMNS),
    )
}

fn with_message_from(r: &SqliteRow) -> Result<(Delivery, Message)> {
    Ok((
        from_cols(&Cols::prefixed(r, "d_"))?,
        messages::from_cols(&Cols::prefixed(r, "m_"))?,
    ))
}

/// Pending and sending rows alike: a delivery left `Sending` by a crash is
/// still owed an attempt.
pub(super) async fn pending(
    pool: &SqlitePool,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<Delivery>> {
    let unfinished = format!(
        "status IN ({}, {})",
        MessageStatus::Pending.as_i64(),
        MessageStatus::Sending.as_i64()
    );
    let mut qb = QueryBuilder::new(select(&unfinished));
    if let Some(after) = after {
        qb.push(" AND id > ").push_bind(after);
    }
    qb.push(" ORDER BY id ASC LIMIT ")
        .push_bind(i64::from(limit));
    let rows = qb.build().fetch_all(pool).await.map_err(db)?;
    rows.iter().map(from_row).collect()
}

/// On a clash with an existing (message, endpoint) pair the stored row keeps
/// its id and creation time and takes the new state.
pub(super) async fn upsert(pool: &SqlitePool, d: &Delivery) -> Result<Delivery> {
    let row = sqlx::query(&format!(
        "INSERT INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempts, next_attempt, created_at, \
         updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET status = excluded.status, \
         attempts = excluded.attempts, next_attempt = excluded.next_attempt, updated_at = excluded.updated_at \
         RETURNING {}",
        COLUMNS.join(", ")
    ))
    .bind(&d.id)
    .bind(&d.app_id)
    .bind(&d.msg_id)
    .bind(&d.endpoint_id)
    .bind(d.status.as_i64())
    .bind(i64::from(d.attempts))
    .bind(opt_ms(d.next_attempt))
    .bind(ms(d.created_at))
    .bind(ms(d.updated_at))
    .fetch_one(pool)
    .await
    .map_err(db)?;
    from_row(&row)
}

/// Sets those of the deliveries `ids` that are still failed back to pending,
/// with no attempts, due at `at`, in one statement; returns them as stored.
pub(super) async fn retry_failed(
    pool: &SqlitePool,
    ids: &[String],
    at: DateTime<Utc>,
) -> Result<Vec<Delivery>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let mut qb = QueryBuilder::new("UPDATE deliveries SET status = ");
        qb.push_bind(MessageStatus::Pending.as_i64())
            .push(", attempts = 0, next_attempt = ")
            .push_bind(ms(at))
            .push(", updated_at = ")
            .push_bind(ms(at))
            .push(" WHERE status = ")
            .push_bind(MessageStatus::Fail.as_i64())
            .push(" AND id IN (");
        let mut list = qb.separated(", ");
        for id in chunk {
            list.push_bind(id);
        }
        qb.push(format_args!(") RETURNING {}", COLUMNS.join(", ")));
        let rows = qb.build().fetch_all(pool).await.map_err(db)?;
        for row in &rows {
            out.push(from_row(row)?);
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

pub(super) async fn failed(
    pool: &SqlitePool,
    app_id: &str,
    endpoint_id: &str,
    window: (DateTime<Utc>, Option<DateTime<Utc>>),
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<Delivery>> {
    let rows = failed_query(app_id, endpoint_id, window, after, limit)
        .build()
        .fetch_all(pool)
        .await
        .map_err(db)?;
    rows.iter().map(from_row).collect()
}

/// A page of the endpoint's failed deliveries created in the window, in id
/// order. `status <> 0` adds nothing to `status = fail` but the partial
/// index's own condition, without which SQLite would not read that index and
/// would walk every delivery the endpoint ever had.
fn failed_query<'a>(
    app_id: &'a str,
    endpoint_id: &'a str,
    (since, until): (DateTime<Utc>, Option<DateTime<Utc>>),
    after: Option<&'a str>,
    limit: u32,
) -> QueryBuilder<'a, Sqlite> {
    let mut qb = QueryBuilder::new(select("app_id = "));
    qb.push_bind(app_id)
        .push(" AND endpoint_id = ")
        .push_bind(endpoint_id)
        .push(format_args!(
            " AND status <> {} AND status = ",
            MessageStatus::Success.as_i64()
        ))
        .push_bind(MessageStatus::Fail.as_i64())
        .push(" AND created_at >= ")
        .push_bind(ms(since));
    if let Some(until) = until {
        qb.push(" AND created_at < ").push_bind(ms(until));
    }
    if let Some(after) = after {
        qb.push(" AND id > ").push_bind(after);
    }
    qb.push(" ORDER BY id ASC LIMIT ")
        .push_bind(i64::from(limit));
    qb
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::SqliteStore;

    /// Recover must read the index of unsettled deliveries, not walk all of an
    /// endpoint's deliveries: it would still answer correctly, only slowly.
    #[tokio::test]
    async fn recover_reads_the_index_of_unsettled_deliveries() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        let now = Utc::now();
        let q = failed_query("app_1", "ep_1", (now, Some(now)), Some("msg_1"), 10);
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(&format!("EXPLAIN QUERY PLAN {}", q.sql()))
                .bind("app_1")
                .bind("ep_1")
                .bind(MessageStatus::Fail.as_i64())
                .bind(ms(now))
                .bind(ms(now))
                .bind("msg_1")
                .bind(10_i64)
                .fetch_all(&store.pool)
                .await
                .unwrap();
        let steps: Vec<&str> = plan.iter().map(|(_, _, _, s)| s.as_str()).collect();
        assert!(
            steps
                .iter()
                .any(|s| s.contains("USING INDEX deliveries_endpoint_unsettled")),
            "{steps:?}"
        );
    }
}
