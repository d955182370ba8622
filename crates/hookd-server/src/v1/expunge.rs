//! Bulk removal of message payloads: by id list, or every message of an
//! application (a background task). Metadata and attempts stay.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use hookd_core::model::{self, BackgroundTask, TaskStatus};
use hookd_core::{new_id, IdKind};
use hookd_store::{MessageFilter, PageReq};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::recovery::{finish_task, BackgroundTaskOut};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(bulk_expunge))
        .routes(routes!(expunge_all))
}

const MAX_IDS: usize = 500;

#[derive(Debug, Deserialize, ToSchema)]
pub struct BulkExpungeContentsIn {
    /// Message ids or eventIds (at most 500).
    pub ids: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkExpungeContentsOut {
    /// For each id given: `expunged` or `not-found`.
    pub results: BTreeMap<String, String>,
}

#[utoipa::path(post, path = "/app/{app_id}/msg/bulk-expunge", tag = "Message", request_body = BulkExpungeContentsIn,
    params(("app_id" = String, Path)), responses((status = 200, body = BulkExpungeContentsOut)))]
async fn bulk_expunge(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiJson(body): ApiJson<BulkExpungeContentsIn>,
) -> ApiResult<Json<BulkExpungeContentsOut>> {
    let app = caller.app(&state, &app_id).await?;
    let ids = body.ids.unwrap_or_default();
    if ids.len() > MAX_IDS {
        return Err(ApiError::field(
            &["ids"],
            format!("at most {MAX_IDS} ids per request"),
        ));
    }
    let mut results = BTreeMap::new();
    for key in ids {
        let found = match state.store.message_by_key(&app.id, &key).await? {
            Some(m) => state.store.expunge_message_content(&app.id, &m.id).await?,
            None => false,
        };
        results.insert(
            key,
            if found { "expunged" } else { "not-found" }.to_string(),
        );
    }
    Ok(Json(BulkExpungeContentsOut { results }))
}

/// Expunges the payload of every message of the application, in the background.
#[utoipa::path(post, path = "/app/{app_id}/msg/expunge-all-contents", tag = "Message",
    params(("app_id" = String, Path)), responses((status = 202, body = BackgroundTaskOut)))]
async fn expunge_all(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
) -> ApiResult<(StatusCode, Json<BackgroundTaskOut>)> {
    let app = caller.app(&state, &app_id).await?;
    let now = model::now();
    let task = BackgroundTask {
        id: new_id(IdKind::Task),
        task: "application.purge_content".into(),
        status: TaskStatus::Running,
        data: serde_json::json!({ "appId": app.id, "expunged": 0 }),
        created_at: now,
        updated_at: now,
    };
    state.store.upsert_task(&task).await?;
    let out = BackgroundTaskOut::from(task.clone());
    tokio::spawn(run_expunge_all(state, task, app.id));
    Ok((StatusCode::ACCEPTED, Json(out)))
}

async fn run_expunge_all(state: AppState, task: BackgroundTask, app_id: String) {
    let result: hookd_store::Result<u64> = async {
        let mut page = PageReq::first(500, false);
        let mut n = 0;
        loop {
            let msgs = state
                .store
                .list_messages(&app_id, &MessageFilter::default(), &page)
                .await?;
            for m in msgs.iter().filter(|m| m.payload.is_some()) {
                state.store.expunge_message_content(&app_id, &m.id).await?;
                n += 1;
            }
            match msgs.last() {
                Some(last) if msgs.len() == page.limit as usize => {
                    page.after = Some(last.id.clone())
                }
                _ => return Ok(n),
            }
        }
    }
    .await;
    finish_task(&state, task, result, "expunged").await;
}
