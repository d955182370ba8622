//! Manual delivery control: resend one message to one endpoint, recover an
//! endpoint's failed messages since a time (a background task), and read the
//! status of background tasks.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use hookd_core::model::{self, BackgroundTask, Delivery, MessageStatus, TaskStatus};
use hookd_core::{new_id, IdKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::endpoint::{endpoint_in, load_endpoint};
use super::message::load_message;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(resend))
        .routes(routes!(recover))
        .routes(routes!(get_task))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmptyResponse {}

/// Sends the message to the endpoint once more, now, as a manual attempt that
/// is not retried. Works whether or not the message was sent there before.
#[utoipa::path(post, path = "/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend", tag = "Message Attempt",
    params(("app_id" = String, Path), ("msg_id" = String, Path), ("endpoint_id" = String, Path)),
    responses((status = 202, body = EmptyResponse)))]
async fn resend(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, msg_id, ep_id)): Path<(String, String, String)>,
) -> ApiResult<(StatusCode, Json<EmptyResponse>)> {
    let (app, msg) = load_message(&state, &caller, &app_id, &msg_id).await?;
    let ep = endpoint_in(&state, &app.id, &ep_id).await?;
    if msg.payload.is_none() {
        return Err(ApiError::BadRequest(
            "the message's payload was expunged; there is nothing to resend".into(),
        ));
    }
    let delivery = match state.store.delivery_for(&msg.id, &ep.id).await? {
        Some(d) => d,
        None => {
            let now = model::now();
            let fresh = Delivery {
                id: new_id(IdKind::Destination),
                app_id: app.id.clone(),
                msg_id: msg.id.clone(),
                endpoint_id: ep.id.clone(),
                // Never attempted by the schedule, so nothing is pending for it.
                status: MessageStatus::Fail,
                attempts: 0,
                next_attempt: None,
                created_at: now,
                updated_at: now,
            };
            state.store.upsert_delivery(&fresh).await?
        }
    };
    state.enqueue(&[delivery], true).await;
    Ok((StatusCode::ACCEPTED, Json(EmptyResponse {})))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RecoverIn {
    /// Recover failed messages created at or after this time.
    pub since: DateTime<Utc>,
    /// ... and before this time (default: now).
    pub until: Option<DateTime<Utc>>,
}

/// The state of a background task (`RecoverOut`, `ReplayOut`, `BackgroundTaskOut`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundTaskOut {
    pub id: String,
    /// `running`, `finished` or `failed`.
    pub status: String,
    /// e.g. `endpoint.recover`.
    pub task: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub updated_at: DateTime<Utc>,
}

impl From<BackgroundTask> for BackgroundTaskOut {
    fn from(t: BackgroundTask) -> Self {
        let status = match t.status {
            TaskStatus::Running => "running",
            TaskStatus::Finished => "finished",
            TaskStatus::Failed => "failed",
        };
        Self {
            id: t.id,
            status: status.into(),
            task: t.task,
            data: t.data,
            updated_at: t.updated_at,
        }
    }
}

/// Re-queues every failed message of the endpoint in the window. Runs in the
/// background; poll `GET /background-task/{id}` for its status.
#[utoipa::path(post, path = "/app/{app_id}/endpoint/{endpoint_id}/recover", tag = "Endpoint", request_body = RecoverIn,
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)), responses((status = 202, body = BackgroundTaskOut)))]
async fn recover(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, ep_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<RecoverIn>,
) -> ApiResult<(StatusCode, Json<BackgroundTaskOut>)> {
    let (app, ep) = load_endpoint(&state, &caller, &app_id, &ep_id).await?;
    let now = model::now();
    if body.since > now {
        return Err(ApiError::field(
            &["since"],
            "since must not be in the future",
        ));
    }
    if body.until.is_some_and(|u| u < body.since) {
        return Err(ApiError::field(
            &["until"],
            "until must not be before since",
        ));
    }
    let task = BackgroundTask {
        id: new_id(IdKind::Task),
        task: "endpoint.recover".into(),
        status: TaskStatus::Running,
        data: serde_json::json!({ "appId": app.id, "endpointId": ep.id, "recovered": 0 }),
        created_at: now,
        updated_at: now,
    };
    state.store.upsert_task(&task).await?;
    let out = BackgroundTaskOut::from(task.clone());
    tokio::spawn(run_recover(
        state.clone(),
        task,
        app.id,
        ep.id,
        body.since,
        body.until,
    ));
    Ok((StatusCode::ACCEPTED, Json(out)))
}

/// Failed deliveries read and re-queued together by a recover.
const RECOVER_PAGE: u32 = 500;

async fn run_recover(
    state: AppState,
    task: BackgroundTask,
    app_id: String,
    ep_id: String,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
) {
    let result: hookd_store::Result<usize> = async {
        // A page at a time, so that recovering a long outage holds one page in
        // memory and the first recovered deliveries go out while the rest are
        // still being read. The cursor only moves forward, and a recovered
        // delivery leaves the failed set, so each one is recovered once.
        let mut after: Option<String> = None;
        let mut recovered = 0;
        loop {
            let page = state
                .store
                .list_failed_deliveries(
                    &app_id,
                    &ep_id,
                    since,
                    until,
                    after.as_deref(),
                    RECOVER_PAGE,
                )
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            let full = page.len() == RECOVER_PAGE as usize;
            let ids: Vec<String> = page.into_iter().map(|d| d.id).collect();
            // One write for the page.
            let requeued = state
                .store
                .retry_failed_deliveries(&ids, model::now())
                .await?;
            state.enqueue(&requeued, false).await;
            recovered += requeued.len();
            if !full {
                break;
            }
        }
        Ok(recovered)
    }
    .await;
    finish_task(&state, task, result.map(|n| n as u64), "recovered").await;
}

/// Records a background task's end: finished with `count` under `field` in
/// its data, or failed with the error.
pub(super) async fn finish_task(
    state: &AppState,
    mut task: BackgroundTask,
    result: hookd_store::Result<u64>,
    field: &str,
) {
    task.updated_at = model::now();
    match result {
        Ok(n) => {
            task.status = TaskStatus::Finished;
            task.data[field] = n.into();
        }
        Err(e) => {
            tracing::error!(error = %e, task.id = %task.id, task.kind = %task.task, "background task failed");
            task.status = TaskStatus::Failed;
            task.data["error"] = e.to_string().into();
        }
    }
    if let Err(e) = state.store.upsert_task(&task).await {
        tracing::error!(error = %e, task.id = %task.id, "could not record the background task's result");
    }
}

#[utoipa::path(get, path = "/background-task/{task_id}", tag = "Background Task",
    params(("task_id" = String, Path)), responses((status = 200, body = BackgroundTaskOut), (status = 404)))]
async fn get_task(
    State(state): State<AppState>,
    caller: Caller,
    Path(task_id): Path<String>,
) -> ApiResult<Json<BackgroundTaskOut>> {
    let task = state
        .store
        .task(&task_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Background task"))?;
    if !caller.is_admin() {
        let app_id = task
            .data
            .get("appId")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        caller.app(&state, &app_id).await?;
    }
    Ok(Json(task.into()))
}
