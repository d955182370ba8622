//! Svix-style cursor pagination: `limit`, `iterator`, `order` in; `data`,
//! `iterator`, `prevIterator`, `done` out. An iterator is the id (or name) of the
//! last item seen; one that starts with `-` pages backwards from that item.

use hookd_store::PageReq;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, FieldError};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 250;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Ordering {
    Ascending,
    Descending,
}

/// The pagination part of a list request.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListParams {
    pub limit: Option<String>,
    pub iterator: Option<String>,
    pub order: Option<String>,
}

/// A validated page request plus what is needed to shape the response.
#[derive(Debug, Clone)]
pub struct Pager {
    pub limit: u32,
    pub req: PageReq,
    backwards: bool,
}

impl ListParams {
    /// `default_desc` is the resource's natural order when `order` is not given.
    pub fn pager(&self, default_desc: bool) -> Result<Pager, ApiError> {
        let limit = match self.limit.as_deref() {
            None | Some("") => DEFAULT_LIMIT,
            Some(s) => {
                let n: i64 = s.parse().map_err(|_| {
                    ApiError::Validation(vec![FieldError::query(
                        "limit",
                        "limit must be an integer",
                    )])
                })?;
                if n > MAX_LIMIT as i64 {
                    return Err(ApiError::Validation(vec![FieldError::query(
                        "limit",
                        format!("Given limit must not exceed {MAX_LIMIT}"),
                    )]));
                }
                if n < 1 {
                    return Err(ApiError::Validation(vec![FieldError::query(
                        "limit",
                        "limit must be at least 1",
                    )]));
                }
                n as u32
            }
        };
        let desc = match self.order.as_deref() {
            None | Some("") => default_desc,
            Some("ascending") => false,
            Some("descending") => true,
            Some(other) => {
                return Err(ApiError::Validation(vec![FieldError::query(
                    "order",
                    format!("order must be 'ascending' or 'descending', not {other:?}"),
                )]))
            }
        };
        let (after, backwards) = match self.iterator.as_deref() {
            None | Some("") => (None, false),
            Some(it) => match it.strip_prefix('-') {
                Some(rest) => (Some(rest.to_string()), true),
                None => (Some(it.to_string()), false),
            },
        };
        // Paging backwards reads the other way from the cursor, then flips the rows.
        let req = PageReq {
            limit: limit + 1,
            after,
            desc: desc != backwards,
        };
        Ok(Pager {
            limit,
            req,
            backwards,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T> {
    pub data: Vec<T>,
    pub iterator: Option<String>,
    pub prev_iterator: Option<String>,
    pub done: bool,
}

impl Pager {
    /// Shapes fetched rows (in the store's order) into a response page.
    pub fn finish<R, T>(
        &self,
        mut rows: Vec<R>,
        cursor: impl Fn(&R) -> String,
        out: impl Fn(R) -> T,
    ) -> ListResponse<T> {
        let more = rows.len() > self.limit as usize;
        rows.truncate(self.limit as usize);
        if self.backwards {
            rows.reverse();
        }
        let first = rows.first().map(&cursor);
        let last = rows.last().map(&cursor);
        // `done` speaks of the direction being read: nothing further that way.
        let done = !more;
        ListResponse {
            iterator: last,
            prev_iterator: first.map(|f| format!("-{f}")),
            done,
            data: rows.into_iter().map(out).collect(),
        }
    }
}
