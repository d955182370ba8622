//! Request extractors that fail the Svix way: JSON and query errors become 422
//! with the location of the bad field, oversized bodies become 413.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::error::{ApiError, FieldError};

/// A JSON body. Parsed directly on the fast path; on failure parsed again to find
/// the path of the offending field.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest(format!("could not read the request body: {rej}"))
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body into `T`, turning a failure into a 422 that names the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match serde_json::from_slice::<T>(bytes) {
        Ok(v) => Ok(v),
        Err(first) => {
            let de = &mut serde_json::Deserializer::from_slice(bytes);
            let (path, err) = match serde_path_to_error::deserialize::<_, T>(de) {
                Ok(_) => (Vec::new(), first),
                Err(e) => {
                    let path = e.path().iter().filter_map(segment_name).collect::<Vec<_>>();
                    (path, e.into_inner())
                }
            };
            let kind = if err.is_syntax() || err.is_eof() {
                "value_error.jsondecode"
            } else {
                "value_error"
            };
            let mut loc = vec!["body".to_string()];
            loc.extend(path);
            Err(ApiError::Validation(vec![FieldError {
                loc,
                msg: err.to_string(),
                kind: kind.into(),
            }]))
        }
    }
}

fn segment_name(seg: &serde_path_to_error::Segment) -> Option<String> {
    use serde_path_to_error::Segment;
    match seg {
        Segment::Map { key } => Some(key.clone()),
        Segment::Seq { index } => Some(index.to_string()),
        Segment::Enum { variant } => Some(variant.clone()),
        Segment::Unknown => None,
    }
}

/// Query parameters; a parse failure is a 422 at `["query", ...]`.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str::<T>(q)
            .map(ApiQuery)
            .map_err(|e| {
                ApiError::Validation(vec![FieldError {
                    loc: vec!["query".into()],
                    msg: e.to_string(),
                    kind: "value_error".into(),
                }])
            })
    }
}

/// A PATCH field: absent (leave as is), explicitly `null` (clear), or a value.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            None => Patch::Null,
            Some(v) => Patch::Value(v),
        })
    }
}

impl<T> Patch<T> {
    /// Applies the patch to an optional field.
    pub fn apply_opt(self, target: &mut Option<T>) {
        match self {
            Patch::Absent => {}
            Patch::Null => *target = None,
            Patch::Value(v) => *target = Some(v),
        }
    }

    pub fn as_value(&self) -> Option<&T> {
        match self {
            Patch::Value(v) => Some(v),
            _ => None,
        }
    }

    pub fn is_absent(&self) -> bool {
        matches!(self, Patch::Absent)
    }
}

// A patch field is documented as the optional (nullable) value it carries.
impl<T: utoipa::__dev::ComposeSchema> utoipa::__dev::ComposeSchema for Patch<T> {
    fn compose(
        generics: Vec<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>>,
    ) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <Option<T> as utoipa::__dev::ComposeSchema>::compose(generics)
    }
}

impl<T: utoipa::ToSchema + utoipa::__dev::ComposeSchema> utoipa::ToSchema for Patch<T> {}
