//! Svix API routes hookd knows of but does not serve yet. They answer 501
//! `not_implemented` (not 404), so a client learns the feature is missing
//! rather than that its entity is.

use axum::routing::{get, patch, post};
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::AppState;

async fn not_implemented() -> ApiError {
    ApiError::NotImplemented("hookd does not implement this Svix API route yet".into())
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .route(
            "/app/{app_id}/endpoint/{endpoint_id}/replay-missing",
            post(not_implemented),
        )
        .route(
            "/app/{app_id}/endpoint/{endpoint_id}/bulk-replay",
            post(not_implemented),
        )
        .route(
            "/app/{app_id}/endpoint/{endpoint_id}/send-example",
            post(not_implemented),
        )
        .route(
            "/app/{app_id}/endpoint/{endpoint_id}/attempt-stats",
            get(not_implemented),
        )
        .route(
            "/app/{app_id}/endpoint/{endpoint_id}/transformation",
            patch(not_implemented),
        )
        .route("/event-type/import/openapi", post(not_implemented))
}
