//! Token endpoints: app-portal access (a token limited to one application),
//! logout, and expiring an application's tokens.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use hookd_core::model::TokenScope;
use hookd_core::{new_id, IdKind};
use hookd_store::TokenRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::application::ApplicationIn;
use super::util::Checks;
use crate::auth::{hash_token, mint_token, Caller};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(app_portal_access))
        .routes(routes!(dashboard_access))
        .routes(routes!(logout))
        .routes(routes!(expire_all))
}

const DEFAULT_EXPIRY_SECONDS: i64 = 7 * 24 * 3600;
const MAX_EXPIRY_SECONDS: i64 = 28 * 24 * 3600;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppPortalAccessIn {
    /// Creates the application when it does not exist yet.
    pub application: Option<ApplicationIn>,
    /// Token lifetime in seconds (default 7 days, at most 28).
    pub expiry: Option<i64>,
    pub read_only: Option<bool>,
    pub session_id: Option<String>,
    pub feature_flags: Option<Vec<String>>,
    pub capabilities: Option<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AppPortalAccessOut {
    pub url: String,
    pub token: String,
}

async fn issue(
    state: &AppState,
    caller: &Caller,
    app_key: &str,
    body: AppPortalAccessIn,
) -> ApiResult<AppPortalAccessOut> {
    caller.require_admin()?;
    let mut checks = Checks::default();
    let expiry = body.expiry.unwrap_or(DEFAULT_EXPIRY_SECONDS);
    if !(1..=MAX_EXPIRY_SECONDS).contains(&expiry) {
        checks.fail(
            &["expiry"],
            format!("expiry must be between 1 and {MAX_EXPIRY_SECONDS} seconds"),
        );
    }
    checks.finish()?;
    let app = match (state.store.app_by_key(app_key).await?, body.application) {
        (Some(app), _) => app,
        (None, Some(spec)) => {
            let spec = ApplicationIn {
                uid: spec.uid.or_else(|| Some(app_key.to_string())),
                ..spec
            };
            let app = spec.into_new()?;
            state.store.create_app(&app).await?;
            app
        }
        (None, None) => return Err(ApiError::not_found("Application")),
    };
    let token = mint_token("app");
    let now = hookd_core::model::now();
    state
        .store
        .insert_token(&TokenRecord {
            id: new_id(IdKind::Token),
            hash: hash_token(&token),
            scope: TokenScope::App(app.id.clone()),
            read_only: body.read_only.unwrap_or(false),
            created_at: now,
            expires_at: Some(now + chrono::Duration::seconds(expiry)),
        })
        .await?;
    let url = format!(
        "{}/portal/{}#key={}",
        state.config.public_url.trim_end_matches('/'),
        app.id,
        token
    );
    Ok(AppPortalAccessOut { url, token })
}

#[utoipa::path(post, path = "/auth/app-portal-access/{app_id}", tag = "Authentication",
    request_body = AppPortalAccessIn, params(("app_id" = String, Path)), responses((status = 200, body = AppPortalAccessOut)))]
async fn app_portal_access(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiJson(body): ApiJson<Option<AppPortalAccessIn>>,
) -> ApiResult<Json<AppPortalAccessOut>> {
    Ok(Json(
        issue(&state, &caller, &app_id, body.unwrap_or_default()).await?,
    ))
}

/// The 1.x SDKs' name for app-portal access (no body).
#[utoipa::path(post, path = "/auth/dashboard-access/{app_id}", tag = "Authentication",
    params(("app_id" = String, Path)), responses((status = 200, body = AppPortalAccessOut)))]
async fn dashboard_access(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
) -> ApiResult<Json<AppPortalAccessOut>> {
    Ok(Json(
        issue(&state, &caller, &app_id, AppPortalAccessIn::default()).await?,
    ))
}

/// Ends the calling token's session (app-scoped tokens are expired at once).
#[utoipa::path(post, path = "/auth/logout", tag = "Authentication", responses((status = 204)))]
async fn logout(State(state): State<AppState>, caller: Caller) -> ApiResult<StatusCode> {
    if let TokenScope::App(_) = caller.scope {
        state
            .store
            .expire_token(&caller.token_hash, hookd_core::model::now())
            .await?;
        state.tokens.clear();
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationTokenExpireIn {
    /// Seconds from now until the tokens expire (default 0: now).
    pub expiry: Option<i64>,
    pub session_ids: Option<Vec<String>>,
}

#[utoipa::path(post, path = "/auth/app/{app_id}/expire-all", tag = "Authentication",
    request_body = ApplicationTokenExpireIn, params(("app_id" = String, Path)), responses((status = 204)))]
async fn expire_all(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiJson(body): ApiJson<Option<ApplicationTokenExpireIn>>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    let app = caller.app(&state, &app_id).await?;
    let delay = body.and_then(|b| b.expiry).unwrap_or(0);
    if !(0..=MAX_EXPIRY_SECONDS).contains(&delay) {
        return Err(ApiError::field(
            &["expiry"],
            "expiry must be between 0 and 2419200 seconds",
        ));
    }
    state
        .store
        .expire_app_tokens(
            &app.id,
            hookd_core::model::now() + chrono::Duration::seconds(delay),
        )
        .await?;
    state.tokens.clear();
    Ok(StatusCode::NO_CONTENT)
}
