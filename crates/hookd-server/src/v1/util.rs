//! Small helpers shared by the resource modules.

use chrono::{DateTime, NaiveDateTime, Utc};
use hookd_core::model::Metadata;

use crate::error::{ApiError, ApiResult, FieldError};

/// Parses a datetime query parameter the way SDKs send it: RFC 3339, a `+`
/// that arrived as a space, or a naive time taken as UTC.
pub fn parse_query_time(name: &str, value: Option<&str>) -> ApiResult<Option<DateTime<Utc>>> {
    let Some(raw) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let fixed = raw.replace(' ', "+");
    if let Ok(t) = DateTime::parse_from_rfc3339(&fixed) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(raw, fmt) {
            return Ok(Some(t.and_utc()));
        }
    }
    Err(ApiError::Validation(vec![FieldError::query(
        name,
        format!("{raw:?} is not an ISO 8601 datetime"),
    )]))
}

/// Splits a comma-joined list parameter (`event_types=a.b,c.d`).
pub fn split_list(value: Option<&str>) -> Option<Vec<String>> {
    let v: Vec<String> = value?
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    (!v.is_empty()).then_some(v)
}

/// Parses an optional boolean query parameter.
pub fn parse_bool(name: &str, value: Option<&str>, default: bool) -> ApiResult<bool> {
    match value {
        None | Some("") => Ok(default),
        Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(other) => Err(ApiError::Validation(vec![FieldError::query(
            name,
            format!("{other:?} is not a boolean"),
        )])),
    }
}

/// Collects validation failures so one 422 can name every bad field.
#[derive(Default)]
pub struct Checks(Vec<FieldError>);

impl Checks {
    pub fn check(&mut self, path: &[&str], result: Result<(), String>) {
        if let Err(msg) = result {
            self.0.push(FieldError::body(path, msg));
        }
    }

    pub fn fail(&mut self, path: &[&str], msg: impl Into<String>) {
        self.0.push(FieldError::body(path, msg));
    }

    pub fn finish(self) -> ApiResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}

pub fn check_metadata(checks: &mut Checks, metadata: Option<&Metadata>) {
    if let Some(m) = metadata {
        if m.len() > 50 {
            checks.fail(&["metadata"], "metadata may have at most 50 entries");
        }
    }
}

/// `throttleRate` and its 1.x name `rateLimit`: either may be given; both must agree.
pub fn rate(checks: &mut Checks, throttle: Option<u32>, rate_limit: Option<u32>) -> Option<u32> {
    match (throttle, rate_limit) {
        (Some(a), Some(b)) if a != b => {
            checks.fail(&["throttleRate"], "throttleRate and rateLimit disagree");
            Some(a)
        }
        (Some(0), _) | (_, Some(0)) => {
            checks.fail(
                &["throttleRate"],
                "throttleRate must be at least 1 (messages per second)",
            );
            None
        }
        (a, b) => a.or(b),
    }
}
