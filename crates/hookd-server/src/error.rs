//! The one error type handlers return. It renders Svix's error bodies:
//! `{"code","detail"}` for most statuses and `{"detail":[{loc,msg,type}]}` for 422.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hookd_store::StoreError;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FieldError {
    pub loc: Vec<String>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl FieldError {
    /// A validation failure of a body field (`loc = ["body", ...path]`).
    pub fn body(path: &[&str], msg: impl Into<String>) -> Self {
        let mut loc = vec!["body".to_string()];
        loc.extend(path.iter().map(|s| s.to_string()));
        Self {
            loc,
            msg: msg.into(),
            kind: "value_error".into(),
        }
    }

    pub fn query(name: &str, msg: impl Into<String>) -> Self {
        Self {
            loc: vec!["query".into(), name.into()],
            msg: msg.into(),
            kind: "value_error".into(),
        }
    }

    pub fn path(name: &str, msg: impl Into<String>) -> Self {
        Self {
            loc: vec!["path".into(), name.into()],
            msg: msg.into(),
            kind: "value_error".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("validation failed: {0:?}")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    BadRequest(String),
    /// A quota was hit (Svix code `limit_reached`).
    #[error("{0}")]
    LimitReached(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the request body exceeds the size limit")]
    PayloadTooLarge,
    #[error("{0}")]
    Unavailable(String),
    #[error("this method is not allowed on this path")]
    MethodNotAllowed,
    #[error("{0}")]
    NotImplemented(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn field(path: &[&str], msg: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::body(path, msg)])
    }

    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "generic_error"),
            Self::LimitReached(_) => (StatusCode::BAD_REQUEST, "limit_reached"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::NotImplemented(_) => (StatusCode::NOT_IMPLEMENTED, "not_implemented"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "authentication_failed"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "insufficient_access"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(msg) => Self::Conflict(msg),
            StoreError::NotFound => Self::NotFound("Entity not found".into()),
            StoreError::Invalid(msg) => Self::Validation(vec![FieldError::body(&[], msg)]),
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "store unavailable");
                Self::Unavailable("the database is unavailable; retry shortly".into())
            }
            StoreError::Other(_) => Self::Internal(anyhow::Error::new(e)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let body = match &self {
            Self::Validation(errors) => serde_json::json!({ "detail": errors }),
            Self::Internal(err) => {
                tracing::error!(error = ?err, "internal error");
                serde_json::json!({ "code": code, "detail": "Internal Server Error" })
            }
            other => serde_json::json!({ "code": code, "detail": other.to_string() }),
        };
        (status, axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value the store cannot hold is the caller's mistake: a Svix-shaped
    /// 422 that says what was wrong, not a 500.
    #[tokio::test]
    async fn a_value_the_store_cannot_hold_is_a_validation_error() {
        let text = "text values cannot contain the NUL character (\\u0000)";
        let resp = ApiError::from(StoreError::Invalid(text.into())).into_response();
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"detail": [{"loc": ["body"], "msg": text, "type": "value_error"}]})
        );
    }
}
