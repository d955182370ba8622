//! Message attempts and delivery status, seen by endpoint or by message.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use hookd_core::model::{Attempt, Delivery, Endpoint, Message, MessageStatus};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::endpoint::{endpoint_in, load_endpoint};
use super::message::{load_message, payload_json, MessageOut};
use super::util::{parse_bool, parse_query_time, split_list};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::ApiQuery;
use crate::pagination::{ListParams, ListResponse};
use crate::AppState;
use hookd_store::{AttemptFilter, MessageFilter};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_by_endpoint))
        .routes(routes!(list_by_msg))
        .routes(routes!(list_attempted_messages))
        .routes(routes!(list_attempted_destinations))
        .routes(routes!(get_attempt))
        .routes(routes!(expunge_attempt_content))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageAttemptOut {
    pub id: String,
    pub msg_id: String,
    pub endpoint_id: String,
    pub url: String,
    pub response: String,
    pub response_status_code: i32,
    pub response_duration_ms: i64,
    /// 0 success, 1 pending, 2 fail, 3 sending, 4 canceled.
    pub status: i64,
    pub status_text: String,
    /// 0 scheduled, 1 manual.
    pub trigger_type: i64,
    pub timestamp: chrono::DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg: Option<MessageOut>,
}

impl MessageAttemptOut {
    fn new(a: Attempt, with_content: bool, msg: Option<MessageOut>) -> Self {
        let response = match a.response {
            Some(_) if !with_content => "{}".to_string(),
            Some(r) => r,
            None => String::new(),
        };
        Self {
            id: a.id,
            msg_id: a.msg_id,
            endpoint_id: a.endpoint_id,
            url: a.url,
            response,
            response_status_code: a.response_status_code,
            response_duration_ms: a.response_duration_ms,
            status: a.status.as_i64(),
            status_text: a.status.text().into(),
            trigger_type: a.trigger_type as i64,
            timestamp: a.created_at,
            msg,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AttemptListQuery {
    #[serde(flatten)]
    #[param(ignore)]
    page: ListParams,
    status: Option<String>,
    status_code_class: Option<String>,
    channel: Option<String>,
    tag: Option<String>,
    endpoint_id: Option<String>,
    event_types: Option<String>,
    before: Option<String>,
    after: Option<String>,
    with_content: Option<String>,
    with_msg: Option<String>,
}

fn parse_status(raw: Option<&str>) -> ApiResult<Option<MessageStatus>> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    raw.parse::<i64>()
        .ok()
        .and_then(MessageStatus::from_i64)
        .map(Some)
        .ok_or_else(|| {
            ApiError::Validation(vec![FieldError::query(
                "status",
                format!("{raw:?} is not a status (0 to 4)"),
            )])
        })
}

impl AttemptListQuery {
    fn filter(&self) -> ApiResult<AttemptFilter> {
        let class = match self.status_code_class.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(raw) => match raw.parse::<i32>() {
                Ok(c @ (0 | 100 | 200 | 300 | 400 | 500)) => Some(c),
                _ => {
                    return Err(ApiError::Validation(vec![FieldError::query(
                        "status_code_class",
                        format!("{raw:?} is not one of 0, 100, 200, 300, 400, 500"),
                    )]))
                }
            },
        };
        Ok(AttemptFilter {
            msg_id: None,
            endpoint_id: None,
            status: parse_status(self.status.as_deref())?,
            status_code_class: class,
            channel: self.channel.clone().filter(|s| !s.is_empty()),
            tag: self.tag.clone().filter(|s| !s.is_empty()),
            event_types: split_list(self.event_types.as_deref()),
            before: parse_query_time("before", self.before.as_deref())?,
            after: parse_query_time("after", self.after.as_deref())?,
        })
    }

    fn with_content(&self) -> ApiResult<bool> {
        parse_bool("with_content", self.with_content.as_deref(), true)
    }
}

async fn list(
    state: &AppState,
    app_id: &str,
    filter: AttemptFilter,
    q: &AttemptListQuery,
) -> ApiResult<ListResponse<MessageAttemptOut>> {
    let pager = q.page.pager(true)?;
    let with_content = q.with_content()?;
    let with_msg = parse_bool("with_msg", q.with_msg.as_deref(), false)?;
    let rows = state
        .store
        .list_attempts(app_id, &filter, &pager.req)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for a in rows {
        let msg = if with_msg {
            state
                .store
                .message_by_key(app_id, &a.msg_id)
                .await?
                .map(|m| MessageOut::new(m, with_content))
        } else {
            None
        };
        out.push((a, msg));
    }
    Ok(pager.finish(
        out,
        |(a, _)| a.id.clone(),
        |(a, m)| MessageAttemptOut::new(a, with_content, m),
    ))
}

#[utoipa::path(get, path = "/app/{app_id}/attempt/endpoint/{endpoint_id}", tag = "Message Attempt",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path), AttemptListQuery),
    responses((status = 200, body = ListResponse<MessageAttemptOut>)))]
async fn list_by_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, ep_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<AttemptListQuery>,
) -> ApiResult<Json<ListResponse<MessageAttemptOut>>> {
    let (app, ep) = load_endpoint(&state, &caller, &app_id, &ep_id).await?;
    let filter = AttemptFilter {
        endpoint_id: Some(ep.id),
        ..q.filter()?
    };
    Ok(Json(list(&state, &app.id, filter, &q).await?))
}

#[utoipa::path(get, path = "/app/{app_id}/attempt/msg/{msg_id}", tag = "Message Attempt",
    params(("app_id" = String, Path), ("msg_id" = String, Path), AttemptListQuery),
    responses((status = 200, body = ListResponse<MessageAttemptOut>)))]
async fn list_by_msg(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<AttemptListQuery>,
) -> ApiResult<Json<ListResponse<MessageAttemptOut>>> {
    let (app, msg) = load_message(&state, &caller, &app_id, &msg_id).await?;
    let endpoint_id = match q.endpoint_id.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(key) => Some(endpoint_in(&state, &app.id, key).await?.id),
    };
    let filter = AttemptFilter {
        msg_id: Some(msg.id),
        endpoint_id,
        ..q.filter()?
    };
    Ok(Json(list(&state, &app.id, filter, &q).await?))
}

/// A message as seen from one endpoint: its delivery status there.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointMessageOut {
    pub id: String,
    pub event_id: Option<String>,
    pub event_type: String,
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    pub channels: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub timestamp: chrono::DateTime<Utc>,
    pub status: i64,
    pub status_text: String,
    pub next_attempt: Option<chrono::DateTime<Utc>>,
}

fn next_attempt(d: &Delivery) -> Option<chrono::DateTime<Utc>> {
    matches!(d.status, MessageStatus::Pending | MessageStatus::Sending)
        .then_some(d.next_attempt)
        .flatten()
}

impl EndpointMessageOut {
    fn new(d: Delivery, m: Message, with_content: bool) -> Self {
        Self {
            payload: payload_json(m.payload.as_deref(), with_content),
            next_attempt: next_attempt(&d),
            status: d.status.as_i64(),
            status_text: d.status.text().into(),
            id: m.id,
            event_id: m.event_id,
            event_type: m.event_type,
            channels: m.channels,
            tags: m.tags,
            timestamp: m.created_at,
        }
    }
}

#[utoipa::path(get, path = "/app/{app_id}/endpoint/{endpoint_id}/msg", tag = "Message Attempt",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path), AttemptListQuery),
    responses((status = 200, body = ListResponse<EndpointMessageOut>)))]
async fn list_attempted_messages(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, ep_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<AttemptListQuery>,
) -> ApiResult<Json<ListResponse<EndpointMessageOut>>> {
    let (app, ep) = load_endpoint(&state, &caller, &app_id, &ep_id).await?;
    let pager = q.page.pager(true)?;
    let f = q.filter()?;
    let filter = MessageFilter {
        channel: f.channel,
        tag: f.tag,
        event_types: f.event_types,
        before: f.before,
        after: f.after,
        status: f.status,
    };
    let with_content = q.with_content()?;
    let rows = state
        .store
        .list_endpoint_messages(&app.id, &ep.id, &filter, &pager.req)
        .await?;
    Ok(Json(pager.finish(
        rows,
        |(_, m)| m.id.clone(),
        |(d, m)| EndpointMessageOut::new(d, m, with_content),
    )))
}

/// An endpoint as seen from one message: the message's status there.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageEndpointOut {
    pub id: String,
    pub uid: Option<String>,
    pub url: String,
    pub description: String,
    pub disabled: bool,
    pub throttle_rate: Option<u32>,
    pub rate_limit: Option<u32>,
    pub event_types: Option<Vec<String>>,
    pub filter_types: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
    pub version: i64,
    pub created_at: chrono::DateTime<Utc>,
    pub updated_at: chrono::DateTime<Utc>,
    pub status: i64,
    pub status_text: String,
    pub next_attempt: Option<chrono::DateTime<Utc>>,
}

impl MessageEndpointOut {
    fn new(d: Delivery, e: Endpoint) -> Self {
        Self {
            next_attempt: next_attempt(&d),
            status: d.status.as_i64(),
            status_text: d.status.text().into(),
            id: e.id,
            uid: e.uid,
            url: e.url,
            description: e.description,
            disabled: e.disabled,
            throttle_rate: e.throttle_rate,
            rate_limit: e.throttle_rate,
            filter_types: e.event_types.clone(),
            event_types: e.event_types,
            channels: e.channels,
            version: 1,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

#[utoipa::path(get, path = "/app/{app_id}/msg/{msg_id}/endpoint", tag = "Message Attempt",
    params(("app_id" = String, Path), ("msg_id" = String, Path), ("limit" = Option<u32>, Query), ("iterator" = Option<String>, Query)),
    responses((status = 200, body = ListResponse<MessageEndpointOut>)))]
async fn list_attempted_destinations(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult<Json<ListResponse<MessageEndpointOut>>> {
    let (app, msg) = load_message(&state, &caller, &app_id, &msg_id).await?;
    let pager = q.pager(false)?;
    let rows = state
        .store
        .list_message_destinations(&app.id, &msg.id, &pager.req)
        .await?;
    Ok(Json(pager.finish(
        rows,
        |(_, e)| e.id.clone(),
        |(d, e)| MessageEndpointOut::new(d, e),
    )))
}

#[utoipa::path(get, path = "/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}", tag = "Message Attempt",
    params(("app_id" = String, Path), ("msg_id" = String, Path), ("attempt_id" = String, Path)),
    responses((status = 200, body = MessageAttemptOut), (status = 404)))]
async fn get_attempt(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id, attempt_id)): Path<(String, String, String)>,
) -> ApiResult<Json<MessageAttemptOut>> {
    let (app, msg) = load_message(&state, &caller, &app_id, &msg_id).await?;
    let a = state
        .store
        .attempt(&app.id, &msg.id, &attempt_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Attempt"))?;
    Ok(Json(MessageAttemptOut::new(a, true, None)))
}

#[utoipa::path(delete, path = "/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/content", tag = "Message Attempt",
    params(("app_id" = String, Path), ("msg_id" = String, Path), ("attempt_id" = String, Path)), responses((status = 204)))]
async fn expunge_attempt_content(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id, attempt_id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let (app, msg) = load_message(&state, &caller, &app_id, &msg_id).await?;
    if !state
        .store
        .expunge_attempt_content(&app.id, &msg.id, &attempt_id)
        .await?
    {
        return Err(ApiError::not_found("Attempt"));
    }
    Ok(StatusCode::NO_CONTENT)
}
