//! Messages: an event posted once by the platform, fanned out to every
//! matching endpoint. A 202 is sent only after the message and its deliveries
//! are committed.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use hookd_core::model::{Application, Message};
use hookd_core::{new_id, validate, IdKind};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::application::ApplicationIn;
use super::util::{parse_bool, parse_query_time, split_list, Checks};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery};
use crate::pagination::{ListParams, ListResponse};
use crate::AppState;
use hookd_store::{Accepted, MessageFilter};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_messages, create_message))
        .routes(routes!(get_message))
        .routes(routes!(expunge_content))
        .routes(routes!(precheck))
}

const MAX_CHANNELS: usize = 10;
const MAX_TAGS: usize = 5;
const MAX_DELIVER_AHEAD_DAYS: i64 = 30;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageIn {
    /// Optional idempotent id: a second message with the same eventId is a 409.
    pub event_id: Option<String>,
    pub event_type: String,
    /// Any JSON object; delivered byte for byte as given.
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    pub channels: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    /// Creates the application on the fly when it does not exist (its uid must match the path).
    pub application: Option<ApplicationIn>,
    /// Accepted for compatibility; payloads are kept until expunged.
    pub payload_retention_period: Option<i64>,
    pub payload_retention_hours: Option<i64>,
    /// Start delivering at this time instead of at once (at most 30 days ahead).
    pub deliver_at: Option<chrono::DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageOut {
    pub id: String,
    pub event_id: Option<String>,
    pub event_type: String,
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    pub channels: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub timestamp: chrono::DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliver_at: Option<chrono::DateTime<Utc>>,
}

pub fn payload_json(payload: Option<&str>, with_content: bool) -> Box<RawValue> {
    let text = match payload {
        Some(_) if !with_content => "{}",
        Some(p) => p,
        None => r#"{"expired":true}"#,
    };
    RawValue::from_string(text.to_string())
        .unwrap_or_else(|_| RawValue::from_string("{}".into()).expect("valid"))
}

impl MessageOut {
    pub fn new(m: Message, with_content: bool) -> Self {
        Self {
            payload: payload_json(m.payload.as_deref(), with_content),
            id: m.id,
            event_id: m.event_id,
            event_type: m.event_type,
            channels: m.channels,
            tags: m.tags,
            timestamp: m.created_at,
            deliver_at: m.deliver_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct WithContent {
    with_content: Option<String>,
}

fn check_names(checks: &mut Checks, field: &str, list: Option<&Vec<String>>, max: usize) {
    let Some(list) = list else { return };
    if list.len() > max {
        checks.fail(&[field], format!("at most {max} {field} are allowed"));
    }
    for (i, c) in list.iter().enumerate() {
        checks.check(&[field, &i.to_string()], validate::channel(c));
    }
}

/// Finds the app, creating it from `application` when it is missing and named by uid.
async fn app_for_message(
    state: &AppState,
    caller: &Caller,
    key: &str,
    spec: Option<ApplicationIn>,
) -> ApiResult<Application> {
    match caller.app_cached(state, key).await {
        Err(ApiError::NotFound(_)) if spec.is_some() && caller.is_admin() => {
            let spec = spec.expect("checked");
            if spec.uid.as_deref() != Some(key) {
                return Err(ApiError::field(
                    &["application", "uid"],
                    "application.uid must match the app id in the path",
                ));
            }
            let app = spec.into_new()?;
            match state.store.create_app(&app).await {
                Ok(()) => Ok(app),
                // Another request created it first: use theirs.
                Err(hookd_store::StoreError::Conflict(_)) => caller.app(state, key).await,
                Err(e) => Err(e.into()),
            }
        }
        other => other,
    }
}

#[utoipa::path(post, path = "/app/{app_id}/msg", tag = "Message", request_body = MessageIn,
    params(("app_id" = String, Path), WithContent),
    responses((status = 202, body = MessageOut), (status = 409, description = "eventId already used"), (status = 413), (status = 422)))]
async fn create_message(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiQuery(q): ApiQuery<WithContent>,
    ApiJson(body): ApiJson<MessageIn>,
) -> ApiResult<(StatusCode, Json<MessageOut>)> {
    let with_content = parse_bool("with_content", q.with_content.as_deref(), true)?;
    let mut checks = Checks::default();
    checks.check(&["eventType"], validate::event_type_name(&body.event_type));
    if let Some(id) = &body.event_id {
        checks.check(&["eventId"], validate::uid(id, IdKind::Message.prefix()));
    }
    if !body.payload.get().trim_start().starts_with('{') {
        checks.fail(&["payload"], "payload must be a JSON object");
    }
    check_names(
        &mut checks,
        "channels",
        body.channels.as_ref(),
        MAX_CHANNELS,
    );
    check_names(&mut checks, "tags", body.tags.as_ref(), MAX_TAGS);
    let now = hookd_core::model::now();
    if body
        .deliver_at
        .is_some_and(|t| t > now + chrono::Duration::days(MAX_DELIVER_AHEAD_DAYS))
    {
        checks.fail(
            &["deliverAt"],
            format!("deliverAt may be at most {MAX_DELIVER_AHEAD_DAYS} days in the future"),
        );
    }
    checks.finish()?;
    let app = app_for_message(&state, &caller, &app_id, body.application).await?;
    let msg = Message {
        id: new_id(IdKind::Message),
        app_id: app.id,
        event_id: body.event_id,
        event_type: body.event_type,
        payload: Some(body.payload.get().to_string()),
        channels: body.channels.filter(|c| !c.is_empty()),
        tags: body.tags.filter(|t| !t.is_empty()),
        created_at: now,
        deliver_at: body
            .deliver_at
            .map(hookd_core::model::truncate_ms)
            .filter(|t| *t > now),
    };
    // Read before the message is stored: an expunge of it can only come after.
    let epoch = state.store.content_epoch();
    let fanned = state
        .store
        .accept_message(&msg)
        .await
        .map_err(|e| match e {
            hookd_store::StoreError::Conflict(_) => {
                ApiError::Conflict("A message with that eventId already exists".into())
            }
            other => other.into(),
        })?;
    // Durably stored: the 202 may go. The deliveries of a wide app follow
    // from the fan-out stage; a narrow app's were written with the message.
    let msg = Arc::new(msg);
    match fanned {
        Accepted::FannedOut(deliveries) => state.enqueue_fresh(&deliveries, &msg, epoch).await,
        Accepted::Pending { endpoints } => {
            state.fanouts.submit(msg.clone(), endpoints, epoch).await
        }
    }
    let msg = Arc::unwrap_or_clone(msg);
    Ok((
        StatusCode::ACCEPTED,
        Json(MessageOut::new(msg, with_content)),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct MessageListQuery {
    #[serde(flatten)]
    #[param(ignore)]
    page: ListParams,
    channel: Option<String>,
    tag: Option<String>,
    event_types: Option<String>,
    before: Option<String>,
    after: Option<String>,
    with_content: Option<String>,
}

impl MessageListQuery {
    fn filter(&self) -> ApiResult<MessageFilter> {
        Ok(MessageFilter {
            channel: self.channel.clone().filter(|c| !c.is_empty()),
            tag: self.tag.clone().filter(|t| !t.is_empty()),
            event_types: split_list(self.event_types.as_deref()),
            before: parse_query_time("before", self.before.as_deref())?,
            after: parse_query_time("after", self.after.as_deref())?,
            status: None,
        })
    }
}

#[utoipa::path(get, path = "/app/{app_id}/msg", tag = "Message", params(("app_id" = String, Path), MessageListQuery),
    responses((status = 200, body = ListResponse<MessageOut>)))]
async fn list_messages(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiQuery(q): ApiQuery<MessageListQuery>,
) -> ApiResult<Json<ListResponse<MessageOut>>> {
    let app = caller.app(&state, &app_id).await?;
    let pager = q.page.pager(true)?;
    let with_content = parse_bool("with_content", q.with_content.as_deref(), true)?;
    let rows = state
        .store
        .list_messages(&app.id, &q.filter()?, &pager.req)
        .await?;
    Ok(Json(pager.finish(
        rows,
        |m| m.id.clone(),
        |m| MessageOut::new(m, with_content),
    )))
}

pub async fn load_message(
    state: &AppState,
    caller: &Caller,
    app_id: &str,
    msg_id: &str,
) -> ApiResult<(Application, Message)> {
    let app = caller.app(state, app_id).await?;
    let msg = state
        .store
        .message_by_key(&app.id, msg_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Message"))?;
    Ok((app, msg))
}

#[utoipa::path(get, path = "/app/{app_id}/msg/{msg_id}", tag = "Message",
    params(("app_id" = String, Path), ("msg_id" = String, Path, description = "id or eventId"), WithContent),
    responses((status = 200, body = MessageOut), (status = 404)))]
async fn get_message(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<WithContent>,
) -> ApiResult<Json<MessageOut>> {
    let with_content = parse_bool("with_content", q.with_content.as_deref(), true)?;
    let (_, msg) = load_message(&state, &caller, &app_id, &msg_id).await?;
    Ok(Json(MessageOut::new(msg, with_content)))
}

#[utoipa::path(delete, path = "/app/{app_id}/msg/{msg_id}/content", tag = "Message",
    params(("app_id" = String, Path), ("msg_id" = String, Path)), responses((status = 204)))]
async fn expunge_content(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (app, msg) = load_message(&state, &caller, &app_id, &msg_id).await?;
    state
        .store
        .expunge_message_content(&app.id, &msg.id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessagePrecheckIn {
    pub event_type: String,
    pub channels: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessagePrecheckOut {
    /// Whether any endpoint would receive such a message.
    pub active: bool,
}

#[utoipa::path(post, path = "/app/{app_id}/msg/precheck/active", tag = "Message", request_body = MessagePrecheckIn,
    params(("app_id" = String, Path)), responses((status = 200, body = MessagePrecheckOut)))]
async fn precheck(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiJson(body): ApiJson<MessagePrecheckIn>,
) -> ApiResult<Json<MessagePrecheckOut>> {
    let app = caller.app(&state, &app_id).await?;
    let mut page = hookd_store::PageReq::first(250, false);
    loop {
        let eps = state.store.list_endpoints(&app.id, &page).await?;
        let matched = eps.iter().any(|ep| {
            hookd_core::filter::endpoint_matches(ep, &body.event_type, body.channels.as_deref())
        });
        if matched {
            return Ok(Json(MessagePrecheckOut { active: true }));
        }
        match eps.last() {
            Some(last) if eps.len() == page.limit as usize => page.after = Some(last.id.clone()),
            _ => return Ok(Json(MessagePrecheckOut { active: false })),
        }
    }
}
