//! Messages, and their fan-out into deliveries once accepted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use hookd_core::model::{Delivery, Message};
use hookd_core::IdKind;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use super::cache::{AppEndpoints, EndpointCache};
use super::codec::{ms, opt_json, Cols};
use super::deliveries;
use super::error::db;
use super::query::{message_content, paginate, time_window};
use crate::{fanout, Accepted, MessageFilter, PageReq, Result, INLINE_FANOUT};

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

/// Rows per multi-row message insert (9 parameters each, well under SQLite's
/// bound-parameter limit).
const CHUNK: usize = 400;

/// Inserts the messages in a few statements, fanning out at once those whose
/// app has at most [`INLINE_FANOUT`] endpoints (answered with their
/// deliveries) and leaving the others' fan-out pending. One
/// failing row (say, a duplicate `eventId`) fails the whole call: the writer
/// then retries the messages one by one.
///
/// When every app's endpoints are in the cache, the fan-out is worked out
/// first and all the inserts go to the database thread in one call. Otherwise
/// the message insert goes first, so that the transaction holds SQLite's write
/// lock before the endpoints are read: they cannot change before the
/// deliveries are written, and no read-to-write lock upgrade can fail.
pub(super) async fn accept_many(
    conn: &mut SqliteConnection,
    msgs: &[&Message],
    cache: &EndpointCache,
) -> Result<Vec<Accepted>> {
    if let Some(plan) = Accepts::from_cache(msgs, cache) {
        let mut qb = QueryBuilder::new("");
        plan.push(&mut qb)?;
        qb.build().execute(&mut *conn).await.map_err(db)?;
        drop(qb);
        return Ok(plan.answer());
    }
    let mut qb = QueryBuilder::new("");
    push_inserts(&mut qb, msgs)?;
    qb.build().execute(&mut *conn).await.map_err(db)?;
    let mut lists = HashMap::new();
    for msg in msgs {
        if !lists.contains_key(msg.app_id.as_str()) {
            let list = cache.endpoints_of(&mut *conn, &msg.app_id).await?;
            lists.insert(msg.app_id.as_str(), list);
        }
    }
    let plan = Accepts::new(msgs, lists);
    let mut qb = QueryBuilder::new("");
    plan.push_fanouts(&mut qb);
    // Empty when nothing follows the messages.
    if plan.fanouts.iter().any(|d| !d.is_empty()) || !plan.later.is_empty() {
        qb.build().execute(&mut *conn).await.map_err(db)?;
    }
    drop(qb);
    Ok(plan.answer())
}

/// The endpoints of every app of `msgs`, if all are in the cache.
fn cached_lists<'m>(
    msgs: &[&'m Message],
    cache: &EndpointCache,
) -> Option<HashMap<&'m str, Arc<AppEndpoints>>> {
    let mut lists = HashMap::new();
    for m in msgs {
        if !lists.contains_key(m.app_id.as_str()) {
            lists.insert(m.app_id.as_str(), cache.cached(&m.app_id)?);
        }
    }
    Some(lists)
}

/// New messages, split by the width of their apps: those fanned out at once,
/// with their deliveries worked out, and those whose fan-out is left pending.
pub(super) struct Accepts<'m> {
    msgs: &'m [&'m Message],
    lists: HashMap<&'m str, Arc<AppEndpoints>>,
    now: Vec<&'m Message>,
    later: Vec<&'m Message>,
    /// The deliveries of each message in `now`.
    fanouts: Vec<Vec<Delivery>>,
}

impl<'m> Accepts<'m> {
    /// The plan, if every app's endpoints are in the cache.
    pub(super) fn from_cache(msgs: &'m [&'m Message], cache: &EndpointCache) -> Option<Self> {
        Some(Self::new(msgs, cached_lists(msgs, cache)?))
    }

    fn new(msgs: &'m [&'m Message], lists: HashMap<&'m str, Arc<AppEndpoints>>) -> Self {
        let inline = |m: &Message| {
            lists
                .get(m.app_id.as_str())
                .is_none_or(|l| l.list.len() <= INLINE_FANOUT)
        };
        let (now, later): (Vec<&Message>, Vec<&Message>) =
            msgs.iter().copied().partition(|m| inline(m));
        let fanouts = fanout::deliveries(&now, |app| {
            lists.get(app).map_or(&[], |l| l.list.as_slice())
        });
        Self {
            msgs,
            lists,
            now,
            later,
            fanouts,
        }
    }

    /// Appends the message inserts, then the deliveries and pending fan-outs.
    pub(super) fn push<'q>(&'q self, qb: &mut QueryBuilder<'q, Sqlite>) -> Result<()> {
        push_inserts(qb, self.msgs)?;
        self.push_fanouts(qb);
        Ok(())
    }

    fn push_fanouts<'q>(&'q self, qb: &mut QueryBuilder<'q, Sqlite>) {
        let all: Vec<&Delivery> = self.fanouts.iter().flatten().collect();
        deliveries::push_inserts(qb, &all);
        for chunk in self.later.chunks(CHUNK) {
            qb.push("INSERT INTO pending_fanouts (msg_id) ");
            qb.push_values(chunk, |mut b, msg| {
                b.push_bind(&msg.id);
            });
            qb.push("; ");
        }
    }

    /// What accepting each message did, in order, once the writes are in.
    pub(super) fn answer(self) -> Vec<Accepted> {
        let lists = self.lists;
        fanout::accepted(self.msgs, &self.now, self.fanouts, |m| {
            lists.get(m.app_id.as_str()).map_or(0, |l| l.list.len())
        })
    }
}

/// Claims the pending fan-outs of `msgs` and inserts their deliveries,
/// answering each message's new deliveries in order (none for a message
/// whose fan-out was claimed before, or that is gone).
///
/// The claim is a delete, so the transaction holds SQLite's write lock
/// before the endpoints are read: they cannot change before the deliveries
/// are written, and no read-to-write lock upgrade can fail.
pub(super) async fn fan_out(
    conn: &mut SqliteConnection,
    msgs: &[&Message],
    cache: &EndpointCache,
) -> Result<Vec<Vec<Delivery>>> {
    let mut qb = QueryBuilder::new("");
    push_claims(&mut qb, msgs);
    let rows: Vec<(String,)> = qb
        .build_query_as()
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    let claimed: HashSet<String> = rows.into_iter().map(|(id,)| id).collect();
    let mine: Vec<&Message> = msgs
        .iter()
        .copied()
        .filter(|m| claimed.contains(&m.id))
        .collect();
    let mut lists = HashMap::new();
    for msg in &mine {
        if !lists.contains_key(msg.app_id.as_str()) {
            let list = cache.endpoints_of(&mut *conn, &msg.app_id).await?;
            lists.insert(msg.app_id.as_str(), list);
        }
    }
    let fanouts = fanout::deliveries(&mine, |app| {
        lists.get(app).map_or(&[], |l| l.list.as_slice())
    });
    let all: Vec<&Delivery> = fanouts.iter().flatten().collect();
    if !all.is_empty() {
        let mut qb = QueryBuilder::new("");
        deliveries::push_inserts(&mut qb, &all);
        qb.build().execute(&mut *conn).await.map_err(db)?;
    }
    Ok(fanout::claimed(msgs, &mine, fanouts))
}

/// Appends the claims of the messages' pending fan-outs, one `DELETE ...
/// RETURNING msg_id` per chunk: the ids returned are the fan-outs claimed.
fn push_claims<'q>(qb: &mut QueryBuilder<'q, Sqlite>, msgs: &[&'q Message]) {
    for chunk in msgs.chunks(CHUNK) {
        qb.push("DELETE FROM pending_fanouts WHERE msg_id IN (");
        let mut ids = qb.separated(", ");
        for msg in chunk {
            ids.push_bind(&msg.id);
        }
        qb.push(") RETURNING msg_id; ");
    }
}

/// Fan-outs worked out from the cached endpoints before they are claimed,
/// for the writer to send in one call with the rest of its group: each
/// message's deliveries are inserted only if its fan-out is still pending, and
/// then the claims are made. Both run under the group's write lock, so the
/// messages whose deliveries went in are exactly those whose claim returns.
pub(super) struct FanOuts<'m> {
    msgs: &'m [&'m Message],
    fanouts: Vec<Vec<Delivery>>,
}

impl<'m> FanOuts<'m> {
    /// The plan, if every app's endpoints are in the cache.
    pub(super) fn from_cache(msgs: &'m [&'m Message], cache: &EndpointCache) -> Option<Self> {
        let lists = cached_lists(msgs, cache)?;
        let fanouts = fanout::deliveries(msgs, |app| {
            lists.get(app).map_or(&[], |l| l.list.as_slice())
        });
        Some(Self { msgs, fanouts })
    }

    /// Appends the conditional inserts, then the claims (whose rows return
    /// the ids of the messages claimed).
    pub(super) fn push<'q>(&'q self, qb: &mut QueryBuilder<'q, Sqlite>) {
        let all: Vec<&Delivery> = self.fanouts.iter().flatten().collect();
        deliveries::push_inserts_if_pending(qb, &all);
        push_claims(qb, self.msgs);
    }

    /// Each message's deliveries, in order: none for one not `claimed`.
    pub(super) fn answer(self, claimed: &HashSet<String>) -> Vec<Vec<Delivery>> {
        self.msgs
            .iter()
            .zip(self.fanouts)
            .map(|(m, d)| {
                if claimed.contains(&m.id) {
                    d
                } else {
                    Vec::new()
                }
            })
            .collect()
    }
}

/// Accepted messages whose fan-out is still pending, created before `before`,
/// in id order after the id `after`.
pub(super) async fn pending_fanouts(
    pool: &SqlitePool,
    before: DateTime<Utc>,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<Message>> {
    let cols: Vec<String> = COLUMNS.iter().map(|c| format!("m.{c}")).collect();
    let rows = sqlx::query(&format!(
        "SELECT {} FROM pending_fanouts p JOIN messages m ON m.id = p.msg_id \
         WHERE m.created_at < ? AND p.msg_id > ? ORDER BY p.msg_id LIMIT ?",
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

/// Appends the message inserts to `qb`, one multi-row statement per chunk,
/// each ended by `;`.
fn push_inserts<'a>(qb: &mut QueryBuilder<'a, Sqlite>, msgs: &[&'a Message]) -> Result<()> {
    for chunk in msgs.chunks(CHUNK) {
        let lists = chunk
            .iter()
            .map(|m| Ok((opt_json(m.channels.as_ref())?, opt_json(m.tags.as_ref())?)))
            .collect::<Result<Vec<_>>>()?;
        qb.push(
            "INSERT INTO messages (id, app_id, event_id, event_type, payload, channels, tags, created_at, deliver_at) ",
        );
        qb.push_values(chunk.iter().zip(lists), |mut b, (msg, (channels, tags))| {
            b.push_bind(&msg.id)
                .push_bind(&msg.app_id)
                .push_bind(&msg.event_id)
                .push_bind(&msg.event_type)
                .push_bind(&msg.payload)
                .push_bind(channels)
                .push_bind(tags)
                .push_bind(ms(msg.created_at))
                .push_bind(msg.deliver_at.map(ms));
        });
        qb.push("; ");
    }
    Ok(())
}

pub(super) async fn by_key(pool: &SqlitePool, app_id: &str, key: &str) -> Result<Option<Message>> {
    let column = if IdKind::Message.is_id(key) {
        "id"
    } else {
        "event_id"
    };
    let row = sqlx::query(&select_m(&format!("app_id = ? AND {column} = ?")))
        .bind(app_id)
        .bind(key)
        .fetch_optional(pool)
        .await
        .map_err(db)?;
    row.as_ref().map(|r| from_cols(&Cols::new(r))).transpose()
}

/// See `Store::messages_with_small_payloads`; a few hundred ids per query.
pub(super) async fn with_small_payloads(
    pool: &SqlitePool,
    ids: &[String],
    max_payload: usize,
) -> Result<Vec<Message>> {
    let max = i64::try_from(max_payload).unwrap_or(i64::MAX);
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        // `octet_length` counts bytes (`length` would count characters).
        let mut qb = QueryBuilder::new(select_m(
            "payload IS NOT NULL AND octet_length(payload) <= ",
        ));
        qb.push_bind(max).push(" AND id IN (");
        let mut list = qb.separated(", ");
        for id in chunk {
            list.push_bind(id);
        }
        qb.push(")");
        for row in qb.build().fetch_all(pool).await.map_err(db)? {
            found.push(from_cols(&Cols::new(&row))?);
        }
    }
    Ok(found)
}

/// `filter.status` describes a delivery, which an app-wide listing has no one
/// of, so it is not applied here.
pub(super) async fn list(
    pool: &SqlitePool,
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

pub(super) async fn expunge(pool: &SqlitePool, app_id: &str, msg_id: &str) -> Result<bool> {
    let done = sqlx::query("UPDATE messages SET payload = NULL WHERE app_id = ? AND id = ?")
        .bind(app_id)
        .bind(msg_id)
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(done.rows_affected() > 0)
}
