//! Event types: the catalogue of what an application can send, with JSON
//! schemas (versioned, each may carry `examples`) and archive/deprecate flags.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use hookd_core::model::EventType;
use hookd_core::validate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::util::{parse_bool, Checks};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, Patch};
use crate::pagination::{ListParams, ListResponse};
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_event_types, create_event_type))
        .routes(routes!(
            get_event_type,
            upsert_event_type,
            patch_event_type,
            delete_event_type
        ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeIn {
    pub name: String,
    pub description: String,
    pub archived: Option<bool>,
    pub deprecated: Option<bool>,
    /// Versioned JSON schemas, e.g. `{"1": {"type": "object", "examples": [...]}}`.
    #[schema(value_type = Option<Object>)]
    pub schemas: Option<serde_json::Value>,
    pub group_name: Option<String>,
    pub feature_flags: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeUpsertIn {
    pub description: String,
    pub archived: Option<bool>,
    pub deprecated: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub schemas: Option<serde_json::Value>,
    pub group_name: Option<String>,
    pub feature_flags: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypePatch {
    #[serde(default)]
    pub description: Patch<String>,
    #[serde(default)]
    pub archived: Patch<bool>,
    #[serde(default)]
    pub deprecated: Patch<bool>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub schemas: Patch<serde_json::Value>,
    #[serde(default)]
    pub group_name: Patch<String>,
    #[serde(default)]
    pub feature_flags: Patch<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeOut {
    pub name: String,
    pub description: String,
    pub archived: bool,
    pub deprecated: bool,
    #[schema(value_type = Option<Object>)]
    pub schemas: Option<serde_json::Value>,
    pub group_name: Option<String>,
    pub feature_flags: Option<Vec<String>>,
    pub created_at: chrono::DateTime<Utc>,
    pub updated_at: chrono::DateTime<Utc>,
}

impl EventTypeOut {
    fn new(et: EventType, with_content: bool) -> Self {
        Self {
            name: et.name,
            description: et.description,
            archived: et.archived,
            deprecated: et.deprecated,
            schemas: if with_content { et.schemas } else { None },
            group_name: et.group_name,
            feature_flags: et.feature_flags,
            created_at: et.created_at,
            updated_at: et.updated_at,
        }
    }
}

/// Schemas are an object of version → JSON Schema object; `examples`, when
/// present, must be an array.
fn check_schemas(checks: &mut Checks, schemas: Option<&serde_json::Value>) {
    let Some(s) = schemas else { return };
    let Some(map) = s.as_object() else {
        checks.fail(
            &["schemas"],
            "schemas must be an object of version -> JSON Schema",
        );
        return;
    };
    for (version, schema) in map {
        match schema.as_object() {
            None => checks.fail(&["schemas", version], "each schema must be a JSON object"),
            Some(obj) => {
                if obj.get("examples").is_some_and(|e| !e.is_array()) {
                    checks.fail(
                        &["schemas", version, "examples"],
                        "examples must be an array",
                    );
                }
                if obj
                    .get("type")
                    .is_some_and(|t| !t.is_string() && !t.is_array())
                {
                    checks.fail(
                        &["schemas", version, "type"],
                        "type must be a string or an array of strings",
                    );
                }
            }
        }
    }
}

fn check_flags(checks: &mut Checks, flags: Option<&Vec<String>>) {
    for (i, f) in flags.into_iter().flatten().enumerate() {
        checks.check(
            &["featureFlags", &i.to_string()],
            validate::identifier(f, 256),
        );
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct EventTypeListQuery {
    #[serde(flatten)]
    #[param(ignore)]
    page: ListParams,
    include_archived: Option<String>,
    with_content: Option<String>,
}

#[utoipa::path(get, path = "/event-type", tag = "Event Type", params(EventTypeListQuery),
    responses((status = 200, body = ListResponse<EventTypeOut>)))]
async fn list_event_types(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(q): ApiQuery<EventTypeListQuery>,
) -> ApiResult<Json<ListResponse<EventTypeOut>>> {
    let pager = q.page.pager(false)?;
    let archived = parse_bool("include_archived", q.include_archived.as_deref(), false)?;
    let with_content = parse_bool("with_content", q.with_content.as_deref(), true)?;
    let rows = state.store.list_event_types(&pager.req, archived).await?;
    Ok(Json(pager.finish(
        rows,
        |e| e.name.clone(),
        |e| EventTypeOut::new(e, with_content),
    )))
}

#[utoipa::path(post, path = "/event-type", tag = "Event Type", request_body = EventTypeIn,
    responses((status = 201, body = EventTypeOut), (status = 409)))]
async fn create_event_type(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<EventTypeIn>,
) -> ApiResult<(StatusCode, Json<EventTypeOut>)> {
    caller.require_admin()?;
    let mut checks = Checks::default();
    checks.check(&["name"], validate::event_type_name(&body.name));
    check_schemas(&mut checks, body.schemas.as_ref());
    check_flags(&mut checks, body.feature_flags.as_ref());
    checks.finish()?;
    let now = hookd_core::model::now();
    let et = EventType {
        name: body.name,
        description: body.description,
        archived: body.archived.unwrap_or(false),
        deprecated: body.deprecated.unwrap_or(false),
        schemas: body.schemas,
        group_name: body.group_name,
        feature_flags: body.feature_flags,
        created_at: now,
        updated_at: now,
    };
    match state.store.event_type(&et.name).await? {
        // Creating an archived event type brings it back, with the new definition.
        Some(existing) if existing.archived => {
            let et = EventType {
                created_at: existing.created_at,
                ..et
            };
            state.store.update_event_type(&et).await?;
            Ok((StatusCode::CREATED, Json(EventTypeOut::new(et, true))))
        }
        _ => {
            state.store.create_event_type(&et).await?;
            Ok((StatusCode::CREATED, Json(EventTypeOut::new(et, true))))
        }
    }
}

async fn load(state: &AppState, name: &str) -> ApiResult<EventType> {
    state
        .store
        .event_type(name)
        .await?
        .ok_or_else(|| ApiError::not_found("Event type"))
}

#[utoipa::path(get, path = "/event-type/{event_type_name}", tag = "Event Type",
    params(("event_type_name" = String, Path)), responses((status = 200, body = EventTypeOut), (status = 404)))]
async fn get_event_type(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<EventTypeOut>> {
    Ok(Json(EventTypeOut::new(load(&state, &name).await?, true)))
}

#[utoipa::path(put, path = "/event-type/{event_type_name}", tag = "Event Type", request_body = EventTypeUpsertIn,
    params(("event_type_name" = String, Path)),
    responses((status = 200, body = EventTypeOut), (status = 201, body = EventTypeOut)))]
async fn upsert_event_type(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<EventTypeUpsertIn>,
) -> ApiResult<(StatusCode, Json<EventTypeOut>)> {
    caller.require_admin()?;
    let mut checks = Checks::default();
    checks.check(&["name"], validate::event_type_name(&name));
    check_schemas(&mut checks, body.schemas.as_ref());
    check_flags(&mut checks, body.feature_flags.as_ref());
    checks.finish()?;
    let now = hookd_core::model::now();
    let existing = state.store.event_type(&name).await?;
    let created = existing.is_none();
    let et = EventType {
        name,
        description: body.description,
        archived: body.archived.unwrap_or(false),
        deprecated: body.deprecated.unwrap_or(false),
        schemas: body.schemas,
        group_name: body.group_name,
        feature_flags: body.feature_flags,
        created_at: existing.map_or(now, |e| e.created_at),
        updated_at: now,
    };
    if created {
        state.store.create_event_type(&et).await?;
    } else {
        state.store.update_event_type(&et).await?;
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(EventTypeOut::new(et, true))))
}

#[utoipa::path(patch, path = "/event-type/{event_type_name}", tag = "Event Type", request_body = EventTypePatch,
    params(("event_type_name" = String, Path)), responses((status = 200, body = EventTypeOut)))]
async fn patch_event_type(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<EventTypePatch>,
) -> ApiResult<Json<EventTypeOut>> {
    caller.require_admin()?;
    let mut et = load(&state, &name).await?;
    let mut checks = Checks::default();
    check_schemas(&mut checks, body.schemas.as_value());
    check_flags(&mut checks, body.feature_flags.as_value());
    if matches!(body.description, Patch::Null) {
        checks.fail(&["description"], "description cannot be null");
    }
    checks.finish()?;
    if let Patch::Value(d) = body.description {
        et.description = d;
    }
    if let Patch::Value(a) = body.archived {
        et.archived = a;
    }
    if let Patch::Value(d) = body.deprecated {
        et.deprecated = d;
    }
    body.schemas.apply_opt(&mut et.schemas);
    body.group_name.apply_opt(&mut et.group_name);
    body.feature_flags.apply_opt(&mut et.feature_flags);
    et.updated_at = hookd_core::model::now();
    state.store.update_event_type(&et).await?;
    Ok(Json(EventTypeOut::new(et, true)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct DeleteQuery {
    /// Delete for good instead of archiving.
    expunge: Option<String>,
}

#[utoipa::path(delete, path = "/event-type/{event_type_name}", tag = "Event Type",
    params(("event_type_name" = String, Path), DeleteQuery), responses((status = 204)))]
async fn delete_event_type(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let mut et = load(&state, &name).await?;
    if parse_bool("expunge", q.expunge.as_deref(), false)? {
        state.store.delete_event_type(&name).await?;
    } else {
        et.archived = true;
        et.updated_at = hookd_core::model::now();
        state.store.update_event_type(&et).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
