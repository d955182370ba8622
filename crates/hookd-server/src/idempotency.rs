//! `idempotency-key` on POST: the first successful response for a key is stored
//! and replayed verbatim to repeats; failures release the key so it can be retried.
//! The key is scoped by the caller's token and the full URI.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use hookd_store::{IdempotencyState, StoredResponse};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::AppState;

const LOCK_TTL: Duration = Duration::from_secs(30);
const WAIT_FOR_PEER: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(100);
const KEEP_FOR: chrono::Duration = chrono::Duration::hours(12);

pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(idem) = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
    else {
        return next.run(req).await;
    };
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut h = Sha256::new();
    for part in [auth, idem, &req.uri().to_string()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let key = hex::encode(h.finalize());

    let deadline = tokio::time::Instant::now() + WAIT_FOR_PEER;
    loop {
        match state
            .store
            .idempotency_begin(&key, Utc::now(), LOCK_TTL.as_millis() as i64)
            .await
        {
            Ok(IdempotencyState::Started) => break,
            Ok(IdempotencyState::Completed(stored)) => return replay(stored),
            Ok(IdempotencyState::InProgress) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(POLL).await;
            }
            Ok(IdempotencyState::InProgress) => {
                return ApiError::Conflict(
                    "a request with this idempotency-key is still in progress".into(),
                )
                .into_response()
            }
            Err(e) => return ApiError::from(e).into_response(),
        }
    }

    let resp = next.run(req).await;
    if !resp.status().is_success() {
        if let Err(e) = state.store.idempotency_abort(&key).await {
            tracing::warn!(error = %e, "could not release idempotency key");
        }
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::Internal(anyhow::anyhow!("buffering response: {e}")).into_response()
        }
    };
    let stored = StoredResponse {
        status: parts.status.as_u16(),
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: bytes.to_vec(),
    };
    if let Err(e) = state
        .store
        .idempotency_complete(&key, &stored, Utc::now() + KEEP_FOR)
        .await
    {
        tracing::warn!(error = %e, "could not store idempotent response");
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn replay(stored: StoredResponse) -> Response {
    let mut resp = Response::new(Body::from(stored.body));
    *resp.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    if let Some(ct) = stored
        .content_type
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    resp
}
