//! Liveness for load balancers and the SDK's `health.get()`.

use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::ApiResult;
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

/// 204 when the server is up and its store answers.
#[utoipa::path(get, path = "/health", tag = "Health", responses((status = 204), (status = 503)))]
async fn health(State(state): State<AppState>) -> ApiResult<StatusCode> {
    state.store.ping().await?;
    Ok(StatusCode::NO_CONTENT)
}
