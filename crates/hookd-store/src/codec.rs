//! How domain values are encoded in columns, the same for every SQL backend:
//! timestamps as integer milliseconds, collections as JSON text. The backends'
//! own `codec` modules add typed row access for their driver.

use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Serialize};

use crate::{Result, StoreError};

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn opt_ms(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(ms)
}

pub(crate) fn json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Other(Box::new(e)))
}

pub(crate) fn opt_json<T: Serialize>(value: Option<&T>) -> Result<Option<String>> {
    value.map(json).transpose()
}

pub(crate) fn opt_u32(v: Option<u32>) -> Option<i64> {
    v.map(i64::from)
}

/// `alias.col AS prefixcol, ...` for the given columns, so that two tables'
/// rows can be read from one joined row.
pub(crate) fn select_list(alias: &str, prefix: &str, columns: &[&str]) -> String {
    columns
        .iter()
        .map(|c| format!("{alias}.{c} AS {prefix}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A stored value that does not decode: the database holds something hookd never wrote.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Other(format!("unreadable stored value: {what}").into())
}

pub(crate) fn to_time(col: &str, v: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(v).ok_or_else(|| corrupt(format_args!("{col} = {v}")))
}

pub(crate) fn from_json<T: DeserializeOwned>(col: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| corrupt(format_args!("{col}: {e}")))
}
