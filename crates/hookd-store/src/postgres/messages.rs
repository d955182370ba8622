//! Messages, and their fan-out into deliveries once accepted.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use hookd_core::model::{Delivery, Endpoint, Message};
use hookd_core::IdKind;
use sqlx::{PgConnection, PgPool, QueryBuilder};

use super::apps::{self, AppLock};
use super::codec::{ms, opt_json, Cols};
use super::error::db;
use super::query::{message_content, paginate, time_window};
use super::{deliveries, endpoints};
use crate::{fanout, Accepted, MessageFilter, PageReq, Result, StoreError, INLINE_FANOUT};

/// The columns [`from_cols`] reads, for callers that join messages to other rows.
pub(super) const COLUMNS: &[&str] = &[
    "id",
    "app_id",
    "event_id",
    "event_type",
    "payload",
    "channels",
    "tags",
    "created_at",
    "deliver_at",
];

pub(super) fn from_cols(c: &Cols<'_>) -> Result<Message> {
    Ok(Message {
        id: c.text("id")?,
        app_id: c.text("app_id")?,
        event_id: c.opt_text("event_id")?,
        event_type: c.text("event_type")?,
        payload: c.opt_text("payload")?,
        channels: c.opt_json("channels")?,
        tags: c.opt_json("tags")?,
        created_at: c.time("created_at")?,
        deliver_at: c.opt_time("deliver_at")?,
    })
}

fn select_m(filter: &str) -> String {
    format!(
        "SELECT {} FROM messages m WHERE {filter}",
        COLUMNS.join(", ")
    )
}

/// Inserts the messages inside the caller's transaction, fanning out at once
/// those whose app has at most [`INLINE_FANOUT`] enabled endpoints (answered
/// with their deliveries) and leaving the others' fan-out pending; any failing
/// message (a missing app, a duplicate `eventId`) fails
/// the whole call.
///
/// The apps' rows are first taken in shared mode, in id order: messages of an
/// app are created side by side, but no endpoint of it can be created,
/// changed or deleted until the deliveries are written, so the fan-out matches
/// the endpoints as they are when the messages commit.
pub(super) async fn accept_many(
    conn: &mut PgConnection,
    msgs: &[&Message],
) -> Result<Vec<Accepted>> {
    let mut app_ids: Vec<&str> = msgs.iter().map(|m| m.app_id.as_str()).collect();
    app_ids.sort_unstable();
    app_ids.dedup();
    if apps::lock_all(&mut *conn, &app_ids, AppLock::Shared).await? < app_ids.len() {
        return Err(StoreError::NotFound);
    }
    let texts = |f: fn(&Message) -> &str| msgs.iter().map(|m| f(m)).collect::<Vec<_>>();
    let opt_texts = |f: fn(&Message) -> Option<&str>| msgs.iter().map(|m| f(m)).collect::<Vec<_>>();
    let lists = |f: fn(&Message) -> Option<&Vec<String>>| {
        msgs.iter()
            .map(|m| opt_json(f(m)))
            .collect::<Result<Vec<_>>>()
    };
    sqlx::query(
        "INSERT INTO messages (id, app_id, event_id, event_type, payload, channels, tags, created_at, deliver_at) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
         $7::text[], $8::int8[], $9::int8[])",
    )
    .bind(texts(|m| m.id.as_str()))
    .bind(texts(|m| m.app_id.as_str()))
    .bind(opt_texts(|m| m.event_id.as_deref()))
    .bind(texts(|m| m.event_type.as_str()))
    .bind(opt_texts(|m| m.payload.as_deref()))
    .bind(lists(|m| m.channels.as_ref())?)
    .bind(lists(|m| m.tags.as_ref())?)
    .bind(msgs.iter().map(|m| ms(m.created_at)).collect::<Vec<_>>())
    .bind(msgs.iter().map(|m| m.deliver_at.map(ms)).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await
    .map_err(db)?;

    let by_app = enabled_endpoints(&mut *conn, &app_ids).await?;
    let (now, later): (Vec<&Message>, Vec<&Message>) = msgs.iter().copied().partition(|m| {
        by_app
            .get(&m.app_id)
            .is_none_or(|l| l.len() <= INLINE_FANOUT)
    });
    let fanouts = fanout::deliveries(&now, |app| by_app.get(app).map_or(&[], Vec::as_slice));
    let all: Vec<&Delivery> = fanouts.iter().flatten().collect();
    deliveries::insert_all(&mut *conn, &all).await?;
    if !later.is_empty() {
        sqlx::query("INSERT INTO pending_fanouts (msg_id) SELECT * FROM UNNEST($1::text[])")
            .bind(later.iter().map(|m| m.id.as_str()).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    Ok(fanout::accepted(msgs, &now, fanouts, |m| {
        by_app.get(&m.app_id).map_or(0, Vec::len)
    }))
}

/// The enabled endpoints of the apps, by app.
async fn enabled_endpoints(
    conn: &mut PgConnection,
    app_ids: &[&str],
) -> Result<HashMap<String, Vec<Endpoint>>> {
    let mut by_app: HashMap<String, Vec<Endpoint>> = HashMap::new();
    if app_ids.is_empty() {
        return Ok(by_app);
    }
    let rows = sqlx::query(&endpoints::select(
        "app_id = ANY($1) AND NOT disabled ORDER BY app_id, id",
    ))
    .bind(app_ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    for row in &rows {
        let ep = endpoints::from_cols(&Cols::new(row))?;
        by_app.entry(ep.app_id.clone()).or_default().push(ep);
    }
    Ok(by_app)
}

/// Claims the pending fan-outs of `msgs` and inserts their deliveries inside
/// the caller's transaction, answering each message's new deliveries in order
/// (none for a message whose fan-out was claimed before, or that is gone).
///
/// The claim is a delete: a second claimer waits on its row locks and then
/// finds the rows gone. The apps' rows are then taken in shared mode, in id
/// order, so that no endpoint of them can be created, changed or deleted until
/// the deliveries are written: the fan-out matches the endpoints as they are
/// when it commits.
pub(super) async fn fan_out(
    conn: &mut PgConnection,
    msgs: &[&Message],
) -> Result<Vec<Vec<Delivery>>> {
    let ids: Vec<&str> = msgs.iter().map(|m| m.id.as_str()).collect();
    let claimed: HashSet<String> =
        sqlx::query_scalar("DELETE FROM pending_fanouts WHERE msg_id = ANY($1) RETURNING msg_id")
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?
            .into_iter()
            .collect();
    let mine: Vec<&Message> = msgs
        .iter()
        .copied()
        .filter(|m| claimed.contains(&m.id))
        .collect();
    let mut app_ids: Vec<&str> = mine.iter().map(|m| m.app_id.as_str()).collect();
    app_ids.sort_unstable();
    app_ids.dedup();
    if !app_ids.is_empty() {
        apps::lock_all(&mut *conn, &app_ids, AppLock::Shared).await?;
    }
    let by_app = enabled_endpoints(&mut *conn, &app_ids).await?;
    let fanouts = fanout::deliveries(&mine, |app| by_app.get(app).map_or(&[], Vec::as_slice));
    let all: Vec<&Delivery> = fanouts.iter().flatten().collect();
    deliveries::insert_all(&mut *conn, &all).await?;
    Ok(fanout::claimed(msgs, &mine, fanouts))
}

/// Accepted messages whose fan-out is still pending, created before `before`,
/// in id order after the id `after`.
pub(super) async fn pending_fanouts(
    pool: &PgPool,
    before: DateTime<Utc>,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<Message>> {
    let cols: Vec<String> = COLUMNS.iter().map(|c| format!("m.{c}")).collect();
    let rows = sqlx::query(&format!(
        "SELECT {} FROM pending_fanouts p JOIN messages m ON m.id = p.msg_id \
         WHERE m.created_at < $1 AND p.msg_id > $2 ORDER BY p.msg_id LIMIT $3",
        cols.join(", ")
    ))
    .bind(ms(before))
    .bind(after.unwrap_or(""))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    rows.iter().map(|r| from_cols(&Cols::new(r))).collect()
}

pub(super) async fn by_key(pool: &PgPool, app_id: &str, key: &str) -> Result<Option<Message>> {
    let column = if IdKind::Message.is_id(key) {
        "id"
    } else {
        "event_id"
    };
    let row = sqlx::query(&select_m(&format!("app_id = $1 AND {column} = $2")))
        .bind(app_id)
        .bind(key)
        .fetch_optional(pool)
        .await
        .map_err(db)?;
    row.as_ref().map(|r| from_cols(&Cols::new(r))).transpose()
}

/// See `Store::messages_with_small_payloads`.
pub(super) async fn with_small_payloads(
    pool: &PgPool,
    ids: &[String],
    max_payload: usize,
) -> Result<Vec<Message>> {
    let max = i64::try_from(max_payload).unwrap_or(i64::MAX);
    let rows = sqlx::query(&select_m(
        "id = ANY($1) AND payload IS NOT NULL AND octet_length(payload) <= $2",
    ))
    .bind(ids)
    .bind(max)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    rows.iter().map(|r| from_cols(&Cols::new(r))).collect()
}

/// `filter.status` describes a delivery, which an app-wide listing has no one
/// of, so it is not applied here.
pub(super) async fn list(
    pool: &PgPool,
    app_id: &str,
    filter: &MessageFilter,
    page: &PageReq,
) -> Result<Vec<Message>> {
    let mut qb = QueryBuilder::new(select_m("m.app_id = "));
    qb.push_bind(app_id);
    message_content(
        &mut qb,
        filter.channel.as_deref(),
        filter.tag.as_deref(),
        filter.event_types.as_deref(),
    );
    time_window(&mut qb, "m.created_at", filter.before, filter.after);
    paginate(&mut qb, "m.id", page);
    let rows = qb.build().fetch_all(pool).await.map_err(db)?;
    rows.iter().map(|r| from_cols(&Cols::new(r))).collect()
}

/// Drops the payload and, when there was a message, tells every node in the
/// same statement (the notification goes out at its commit; see
/// `super::expunges`).
pub(super) async fn expunge(pool: &PgPool, app_id: &str, msg_id: &str) -> Result<bool> {
    let notified = sqlx::query(
        "WITH gone AS (UPDATE messages SET payload = NULL WHERE app_id = $1 AND id = $2 RETURNING 1) \
         SELECT pg_notify($3, coalesce(current_schema(), '')) FROM gone",
    )
    .bind(app_id)
    .bind(msg_id)
    .bind(super::expunges::CHANNEL)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    Ok(!notified.is_empty())
}
