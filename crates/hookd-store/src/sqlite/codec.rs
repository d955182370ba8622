//! How domain values are laid out in SQLite columns: timestamps as integer
//! milliseconds, collections as JSON text, statuses as Svix's numbers. Reading
//! goes through [`Cols`], which also handles the column prefixes joins use.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use hookd_core::model::MessageStatus;
use serde::de::DeserializeOwned;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite};

use super::error::db;
use crate::codec::{corrupt, from_json, to_time};
pub(super) use crate::codec::{json, ms, opt_json, opt_ms, opt_u32, select_list};
use crate::Result;

/// Typed access to one row's columns, optionally under a prefix.
pub(super) struct Cols<'r> {
    row: &'r SqliteRow,
    prefix: &'static str,
}

impl<'r> Cols<'r> {
    pub(super) fn new(row: &'r SqliteRow) -> Self {
        Self { row, prefix: "" }
    }

    pub(super) fn prefixed(row: &'r SqliteRow, prefix: &'static str) -> Self {
        Self { row, prefix }
    }

    fn get<T>(&self, col: &str) -> Result<T>
    where
        T: for<'a> sqlx::Decode<'a, Sqlite> + sqlx::Type<Sqlite>,
    {
        let name: Cow<'_, str> = if self.prefix.is_empty() {
            Cow::Borrowed(col)
        } else {
            Cow::Owned(format!("{}{col}", self.prefix))
        };
        self.row.try_get::<T, _>(name.as_ref()).map_err(db)
    }

    pub(super) fn text(&self, col: &str) -> Result<String> {
        self.get(col)
    }

    pub(super) fn opt_text(&self, col: &str) -> Result<Option<String>> {
        self.get(col)
    }

    pub(super) fn bytes(&self, col: &str) -> Result<Vec<u8>> {
        self.get(col)
    }

    pub(super) fn int(&self, col: &str) -> Result<i64> {
        self.get(col)
    }

    pub(super) fn flag(&self, col: &str) -> Result<bool> {
        Ok(self.int(col)? != 0)
    }

    pub(super) fn u32(&self, col: &str) -> Result<u32> {
        let v = self.int(col)?;
        u32::try_from(v).map_err(|_| corrupt(format_args!("{col} = {v}")))
    }

    pub(super) fn opt_u32(&self, col: &str) -> Result<Option<u32>> {
        self.get::<Option<i64>>(col)?
            .map(|v| u32::try_from(v).map_err(|_| corrupt(format_args!("{col} = {v}"))))
            .transpose()
    }

    pub(super) fn time(&self, col: &str) -> Result<DateTime<Utc>> {
        to_time(col, self.int(col)?)
    }

    pub(super) fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>> {
        self.get::<Option<i64>>(col)?
            .map(|v| to_time(col, v))
            .transpose()
    }

    pub(super) fn json<T: DeserializeOwned>(&self, col: &str) -> Result<T> {
        from_json(col, &self.text(col)?)
    }

    pub(super) fn opt_json<T: DeserializeOwned>(&self, col: &str) -> Result<Option<T>> {
        self.opt_text(col)?.map(|s| from_json(col, &s)).transpose()
    }

    pub(super) fn status(&self, col: &str) -> Result<MessageStatus> {
        let v = self.int(col)?;
        MessageStatus::from_i64(v).ok_or_else(|| corrupt(format_args!("{col} = {v}")))
    }
}
