//! Deliveries: one message bound for one endpoint, the delivery engine's unit
//! of work, and the listings that pair them with their message or endpoint.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use hookd_core::model::{Delivery, Endpoint, Message, MessageStatus};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, QueryBuilder};

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

fn from_row(row: &PgRow) -> Result<Delivery> {
    from_cols(&Cols::new(row))
}

fn select(filter: &str) -> String {
    format!(
        "SELECT {} FROM deliveries WHERE {filter}",
        COLUMNS.join(", ")
    )
}

/// Inserts deliveries inside the caller's transaction (message creation fans
/// out through this), in one round trip however many there are: each column
/// travels as one array and `UNNEST` turns the arrays back into rows.
pub(super) async fn insert_all(conn: &mut PgConnection, all: &[&Delivery]) -> Result<()> {
    if all.is_empty() {
        return Ok(());
    }
    let texts = |f: fn(&Delivery) -> &str| all.iter().map(|d| f(d)).collect::<Vec<_>>();
    let ints = |f: fn(&Delivery) -> i64| all.iter().map(|d| f(d)).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempts, next_attempt, created_at, \
         updated_at) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[], $7::int8[], \
         $8::int8[], $9::int8[])",
    )
    .bind(texts(|d| d.id.as_str()))
    .bind(texts(|d| d.app_id.as_str()))
    .bind(texts(|d| d.msg_id.as_str()))
    .bind(texts(|d| d.endpoint_id.as_str()))
    .bind(ints(|d| d.status.as_i64()))
    .bind(ints(|d| i64::from(d.attempts)))
    .bind(all.iter().map(|d| opt_ms(d.next_attempt)).collect::<Vec<_>>())
    .bind(ints(|d| ms(d.created_at)))
    .bind(ints(|d| ms(d.updated_at)))
    .execute(conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Writes the mutable state (status, attempt count, schedule) of many
/// deliveries by id, in the order given: one statement when the ids are
/// distinct, else one per delivery so that the last state of each wins.
/// Returns whether every row exists.
pub(super) async fn update_states(conn: &mut PgConnection, ds: &[&Delivery]) -> Result<bool> {
    let ds = &lock_order(ds);
    let distinct: HashSet<&str> = ds.iter().map(|d| d.id.as_str()).collect();
    if distinct.len() < ds.len() {
        for d in ds {
            if !update_state(&mut *conn, d).await? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    let ints = |f: fn(&Delivery) -> i64| ds.iter().map(|d| f(d)).collect::<Vec<_>>();
    let done = sqlx::query(
        "UPDATE deliveries d SET status = u.status, attempts = u.attempts, next_attempt = u.next_attempt, \
         updated_at = u.updated_at \
         FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int8[]) \
         AS u(id, status, attempts, next_attempt, updated_at) WHERE d.id = u.id",
    )
    .bind(ds.iter().map(|d| d.id.as_str()).collect::<Vec<_>>())
    .bind(ints(|d| d.status.as_i64()))
    .bind(ints(|d| i64::from(d.attempts)))
    .bind(ds.iter().map(|d| opt_ms(d.next_attempt)).collect::<Vec<_>>())
    .bind(ints(|d| ms(d.updated_at)))
    .execute(conn)
    .await
    .map_err(db)?;
    Ok(done.rows_affected() == ds.len() as u64)
}

/// `ds` sorted by id, so that two nodes' groups lock the rows they share in
/// the same order and cannot deadlock. The sort is stable: two states of one
/// delivery keep their order, and the last still wins.
fn lock_order<'a>(ds: &[&'a Delivery]) -> Vec<&'a Delivery> {
    let mut sorted = ds.to_vec();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    sorted
}

/// Writes the delivery's mutable state (status, attempt count, schedule) by id.
/// Returns whether the row exists.
pub(super) async fn update_state(conn: &mut PgConnection, d: &Delivery) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE deliveries SET status = $1, attempts = $2, next_attempt = $3, updated_at = $4 WHERE id = $5",
    )
    .bind(d.status.as_i64())
    .bind(i64::from(d.attempts))
    .bind(opt_ms(d.next_attempt))
    .bind(ms(d.updated_at))
    .bind(&d.id)
    .execute(conn)
    .await
    .map_err(db)?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn get(pool: &PgPool, id: &str) -> Result<Option<Delivery>> {
    let row = sqlx::query(&select("id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(db)?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn get_for(
    pool: &PgPool,
    msg_id: &str,
    endpoint_id: &str,
) -> Result<Option<Delivery>> {
    let row = sqlx::query(&select("msg_id = $1 AND endpoint_id = $2"))
        .bind(msg_id)
        .bind(endpoint_id)
        .fetch_optional(pool)
        .await
        .map_err(db)?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn destinations(
    pool: &PgPool,
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
    pool: &PgPool,
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
pub(super) async fn with_message(pool: &PgPool, id: &str) -> Result<Option<(Delivery, Message)>> {
    let row = sqlx::query(&with_message_select("d.id = $1"))
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

fn with_message_from(r: &PgRow) -> Result<(Delivery, Message)> {
    Ok((
        from_cols(&Cols::prefixed(r, "d_"))?,
        messages::from_cols(&Cols::prefixed(r, "m_"))?,
    ))
}

/// Pending and sending rows alike: a delivery left `Sending` by a crash is
/// still owed an attempt. The condition is spelled as the schema's partial
/// index `deliveries_unfinished` is, so the planner can use it.
pub(super) async fn pending(
    pool: &PgPool,
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
pub(super) async fn upsert(pool: &PgPool, d: &Delivery) -> Result<Delivery> {
    let row = sqlx::query(&format!(
        "INSERT INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempts, next_attempt, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
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
    pool: &PgPool,
    ids: &[String],
    at: DateTime<Utc>,
) -> Result<Vec<Delivery>> {
    let rows = sqlx::query(&format!(
        "UPDATE deliveries SET status = $1, attempts = 0, next_attempt = $2, updated_at = $2 \
         WHERE status = $3 AND id = ANY($4) RETURNING {}",
        COLUMNS.join(", ")
    ))
    .bind(MessageStatus::Pending.as_i64())
    .bind(ms(at))
    .bind(MessageStatus::Fail.as_i64())
    .bind(ids)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    let mut out = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

pub(super) async fn failed(
    pool: &PgPool,
    app_id: &str,
    endpoint_id: &str,
    (since, until): (DateTime<Utc>, Option<DateTime<Utc>>),
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<Delivery>> {
    let mut qb = QueryBuilder::new(select("app_id = "));
    qb.push_bind(app_id)
        .push(" AND endpoint_id = ")
        .push_bind(endpoint_id)
        .push(" AND status = ")
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
    let rows = qb.build().fetch_all(pool).await.map_err(db)?;
    rows.iter().map(from_row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(id: &str, attempts: u32) -> Delivery {
        let now = hookd_core::model::now();
        Delivery {
            id: id.to_owned(),
            app_id: "app".to_owned(),
            msg_id: "msg".to_owned(),
            endpoint_id: "ep".to_owned(),
            status: MessageStatus::Pending,
            attempts,
            next_attempt: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn rows_are_locked_in_id_order_and_a_deliverys_last_state_stays_last() {
        let (b1, a, b2, c) = (
            delivery("dlv_b", 1),
            delivery("dlv_a", 1),
            delivery("dlv_b", 2),
            delivery("dlv_c", 1),
        );
        let ordered = lock_order(&[&c, &b1, &a, &b2]);
        let got: Vec<(&str, u32)> = ordered
            .iter()
            .map(|d| (d.id.as_str(), d.attempts))
            .collect();
        assert_eq!(
            got,
            [("dlv_a", 1), ("dlv_b", 1), ("dlv_b", 2), ("dlv_c", 1)]
        );
    }
}
