//! Applications: the tenant under which endpoints and messages live.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use hookd_core::model::{Application, Metadata};
use hookd_core::{new_id, validate, IdKind};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::util::{check_metadata, parse_bool, rate, Checks};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, Patch};
use crate::pagination::{ListParams, ListResponse};
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_apps, create_app))
        .routes(routes!(get_app, upsert_app, patch_app, delete_app))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationIn {
    pub name: String,
    pub uid: Option<String>,
    pub throttle_rate: Option<u32>,
    /// 1.x name of `throttleRate`.
    pub rate_limit: Option<u32>,
    pub metadata: Option<Metadata>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationPatch {
    #[serde(default)]
    pub name: Patch<String>,
    #[serde(default)]
    pub uid: Patch<String>,
    #[serde(default)]
    pub throttle_rate: Patch<u32>,
    #[serde(default)]
    pub rate_limit: Patch<u32>,
    #[serde(default)]
    pub metadata: Patch<Metadata>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationOut {
    pub id: String,
    pub uid: Option<String>,
    pub name: String,
    pub throttle_rate: Option<u32>,
    pub rate_limit: Option<u32>,
    pub metadata: Metadata,
    pub created_at: chrono::DateTime<Utc>,
    pub updated_at: chrono::DateTime<Utc>,
}

impl From<Application> for ApplicationOut {
    fn from(a: Application) -> Self {
        Self {
            id: a.id,
            uid: a.uid,
            name: a.name,
            throttle_rate: a.throttle_rate,
            rate_limit: a.throttle_rate,
            metadata: a.metadata,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

impl ApplicationIn {
    /// Validates the body and builds a new application from it.
    pub fn into_new(self) -> ApiResult<Application> {
        let mut checks = Checks::default();
        let throttle = self.validate(&mut checks);
        checks.finish()?;
        let now = hookd_core::model::now();
        Ok(Application {
            id: new_id(IdKind::App),
            uid: self.uid,
            name: self.name,
            throttle_rate: throttle,
            metadata: self.metadata.unwrap_or_default(),
            created_at: now,
            updated_at: now,
        })
    }

    fn validate(&self, checks: &mut Checks) -> Option<u32> {
        if self.name.trim().is_empty() {
            checks.fail(&["name"], "name must not be empty");
        }
        if let Some(uid) = &self.uid {
            checks.check(&["uid"], validate::uid(uid, IdKind::App.prefix()));
        }
        check_metadata(checks, self.metadata.as_ref());
        rate(checks, self.throttle_rate, self.rate_limit)
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CreateAppQuery {
    /// Return the existing application (200) when one has this uid.
    get_if_exists: Option<String>,
}

#[utoipa::path(get, path = "/app", tag = "Application",
    params(("limit" = Option<u32>, Query), ("iterator" = Option<String>, Query), ("order" = Option<String>, Query)),
    responses((status = 200, body = ListResponse<ApplicationOut>)))]
async fn list_apps(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult<Json<ListResponse<ApplicationOut>>> {
    caller.require_admin()?;
    let pager = q.pager(false)?;
    let rows = state.store.list_apps(&pager.req).await?;
    Ok(Json(pager.finish(
        rows,
        |a| a.id.clone(),
        ApplicationOut::from,
    )))
}

#[utoipa::path(post, path = "/app", tag = "Application", params(CreateAppQuery), request_body = ApplicationIn,
    responses((status = 201, body = ApplicationOut), (status = 200, body = ApplicationOut, description = "existing app (get_if_exists)"), (status = 409)))]
async fn create_app(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CreateAppQuery>,
    ApiJson(body): ApiJson<ApplicationIn>,
) -> ApiResult<(StatusCode, Json<ApplicationOut>)> {
    caller.require_admin()?;
    let get_if_exists = parse_bool("get_if_exists", q.get_if_exists.as_deref(), false)?;
    let app = body.into_new()?;
    if get_if_exists {
        if let Some(uid) = &app.uid {
            if let Some(existing) = state.store.app_by_key(uid).await? {
                return Ok((StatusCode::OK, Json(existing.into())));
            }
        }
    }
    state.store.create_app(&app).await?;
    Ok((StatusCode::CREATED, Json(app.into())))
}

#[utoipa::path(get, path = "/app/{app_id}", tag = "Application",
    params(("app_id" = String, Path, description = "id or uid")),
    responses((status = 200, body = ApplicationOut), (status = 404)))]
async fn get_app(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
) -> ApiResult<Json<ApplicationOut>> {
    Ok(Json(caller.app(&state, &app_id).await?.into()))
}

#[utoipa::path(put, path = "/app/{app_id}", tag = "Application", request_body = ApplicationIn,
    params(("app_id" = String, Path, description = "id or uid")),
    responses((status = 200, body = ApplicationOut), (status = 201, body = ApplicationOut)))]
async fn upsert_app(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiJson(body): ApiJson<ApplicationIn>,
) -> ApiResult<(StatusCode, Json<ApplicationOut>)> {
    let existing = match caller.app(&state, &app_id).await {
        Ok(app) => Some(app),
        Err(ApiError::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    let mut checks = Checks::default();
    let throttle = body.validate(&mut checks);
    checks.finish()?;
    match existing {
        Some(mut app) => {
            app.name = body.name;
            app.uid = body.uid.or(app.uid);
            app.throttle_rate = throttle;
            app.metadata = body.metadata.unwrap_or_default();
            app.updated_at = hookd_core::model::now();
            state.store.update_app(&app).await?;
            Ok((StatusCode::OK, Json(app.into())))
        }
        None => {
            if IdKind::App.is_id(&app_id) {
                return Err(ApiError::not_found("Application"));
            }
            let mut checks = Checks::default();
            checks.check(&["uid"], validate::uid(&app_id, IdKind::App.prefix()));
            checks.finish()?;
            let mut app = ApplicationIn {
                uid: Some(body.uid.unwrap_or(app_id)),
                ..body
            }
            .into_new()?;
            app.throttle_rate = throttle;
            state.store.create_app(&app).await?;
            Ok((StatusCode::CREATED, Json(app.into())))
        }
    }
}

#[utoipa::path(patch, path = "/app/{app_id}", tag = "Application", request_body = ApplicationPatch,
    params(("app_id" = String, Path, description = "id or uid")),
    responses((status = 200, body = ApplicationOut)))]
async fn patch_app(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiJson(body): ApiJson<ApplicationPatch>,
) -> ApiResult<Json<ApplicationOut>> {
    let mut app = caller.app(&state, &app_id).await?;
    let mut checks = Checks::default();
    match &body.name {
        Patch::Value(n) if n.trim().is_empty() => checks.fail(&["name"], "name must not be empty"),
        Patch::Null => checks.fail(&["name"], "name cannot be null"),
        _ => {}
    }
    if let Patch::Value(uid) = &body.uid {
        checks.check(&["uid"], validate::uid(uid, IdKind::App.prefix()));
    }
    check_metadata(&mut checks, body.metadata.as_value());
    let new_rate = rate(
        &mut checks,
        body.throttle_rate.as_value().copied(),
        body.rate_limit.as_value().copied(),
    );
    checks.finish()?;
    if let Patch::Value(n) = body.name {
        app.name = n;
    }
    body.uid.apply_opt(&mut app.uid);
    if new_rate.is_some() {
        app.throttle_rate = new_rate;
    } else if matches!(body.throttle_rate, Patch::Null) || matches!(body.rate_limit, Patch::Null) {
        app.throttle_rate = None;
    }
    match body.metadata {
        Patch::Value(m) => app.metadata = m,
        Patch::Null => app.metadata.clear(),
        Patch::Absent => {}
    }
    app.updated_at = hookd_core::model::now();
    state.store.update_app(&app).await?;
    Ok(Json(app.into()))
}

#[utoipa::path(delete, path = "/app/{app_id}", tag = "Application",
    params(("app_id" = String, Path, description = "id or uid")),
    responses((status = 204)))]
async fn delete_app(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
) -> ApiResult<StatusCode> {
    let app = caller.app(&state, &app_id).await?;
    caller.require_admin()?;
    state.store.delete_app(&app.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
