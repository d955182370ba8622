//! The Svix-compatible v1 API, one file per resource.

pub mod application;
pub mod attempt;
pub mod auth;
pub mod endpoint;
pub mod event_type;
pub mod expunge;
pub mod health;
pub mod message;
pub mod recovery;
mod unsupported;
mod util;

use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(application::routes())
        .merge(event_type::routes())
        .merge(endpoint::routes())
        .merge(message::routes())
        .merge(attempt::routes())
        .merge(auth::routes())
        .merge(health::routes())
        .merge(recovery::routes())
        .merge(expunge::routes())
        .merge(unsupported::routes())
}
