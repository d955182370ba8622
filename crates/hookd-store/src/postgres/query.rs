//! Pieces shared by the list queries: keyset pagination and the message
//! filters that several listings apply to a joined `messages` row.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, QueryBuilder};

use super::codec::ms;
use crate::PageReq;

/// Appends the cursor condition, the order and the limit. The builder must
/// already hold a `WHERE` clause; `col` is the column the cursor refers to,
/// which the schema declares `COLLATE "C"` so that it compares bytewise.
pub(super) fn paginate(qb: &mut QueryBuilder<'_, Postgres>, col: &str, page: &PageReq) {
    let (cmp, dir) = if page.desc {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(after) = &page.after {
        qb.push(format_args!(" AND {col} {cmp} "))
            .push_bind(after.clone());
    }
    qb.push(format_args!(" ORDER BY {col} {dir} LIMIT "))
        .push_bind(i64::from(page.limit));
}

/// `col < before` and `col > after`, each when given.
pub(super) fn time_window(
    qb: &mut QueryBuilder<'_, Postgres>,
    col: &str,
    before: Option<DateTime<Utc>>,
    after: Option<DateTime<Utc>>,
) {
    if let Some(before) = before {
        qb.push(format_args!(" AND {col} < ")).push_bind(ms(before));
    }
    if let Some(after) = after {
        qb.push(format_args!(" AND {col} > ")).push_bind(ms(after));
    }
}

/// Channel, tag and event-type conditions on the message aliased `m`. The
/// lists are JSON text; `@>` on the parsed array matches one element exactly.
pub(super) fn message_content(
    qb: &mut QueryBuilder<'_, Postgres>,
    channel: Option<&str>,
    tag: Option<&str>,
    event_types: Option<&[String]>,
) {
    if let Some(channel) = channel {
        qb.push(" AND m.channels::jsonb @> jsonb_build_array(")
            .push_bind(channel.to_owned())
            .push("::text)");
    }
    if let Some(tag) = tag {
        qb.push(" AND m.tags::jsonb @> jsonb_build_array(")
            .push_bind(tag.to_owned())
            .push("::text)");
    }
    // An empty list is taken as no filter: no caller means "match nothing".
    // One array parameter keeps the statement the same whatever the length.
    if let Some(types) = event_types.filter(|t| !t.is_empty()) {
        qb.push(" AND m.event_type = ANY(")
            .push_bind(types.to_vec())
            .push(")");
    }
}
