//! Endpoints: where an application's messages are delivered, with filters,
//! signing secret (and rotation), custom headers and stats.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use hookd_core::model::{Application, Endpoint, EndpointStats, Metadata, OldSecret};
use hookd_core::settings::{Batch, EndpointSettings, PayloadShape, RetrySetting, Signing};
use hookd_core::{new_id, validate, IdKind};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::util::{check_metadata, parse_query_time, rate, Checks};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, Patch};
use crate::pagination::{ListParams, ListResponse};
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_endpoints, create_endpoint))
        .routes(routes!(
            get_endpoint,
            upsert_endpoint,
            patch_endpoint,
            delete_endpoint
        ))
        .routes(routes!(get_secret))
        .routes(routes!(rotate_secret))
        .routes(routes!(get_headers, set_headers, patch_headers))
        .routes(routes!(get_stats))
}

const MAX_CHANNELS: usize = 10;
const MAX_OLD_SECRETS: usize = 10;
const DEFAULT_GRACE_SECONDS: i64 = 86_400;
const MAX_GRACE_SECONDS: i64 = 604_800;

/// Body of create (POST) and upsert (PUT).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointIn {
    pub url: String,
    pub description: Option<String>,
    pub uid: Option<String>,
    pub throttle_rate: Option<u32>,
    /// 1.x name of `throttleRate`.
    pub rate_limit: Option<u32>,
    pub disabled: Option<bool>,
    pub event_types: Option<Vec<String>>,
    /// 1.x name of `eventTypes`.
    pub filter_types: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
    /// `whsec_...` (HMAC) or `whsk_...` (Ed25519); generated when absent.
    pub secret: Option<String>,
    pub metadata: Option<Metadata>,
    pub headers: Option<BTreeMap<String, String>>,
    /// Accepted for 1.x clients; always 1.
    pub version: Option<i64>,
    // hookd extensions, inlined (not flattened) so a bad value's 422 names its path.
    /// hookd: signature scheme; see `Extensions`.
    #[schema(value_type = Option<Object>)]
    pub signing: Option<Signing>,
    /// hookd: payload shape; see `Extensions`.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<PayloadShape>,
    /// hookd: retry preset or schedule; see `Extensions`.
    #[schema(value_type = Option<Object>)]
    pub retry: Option<RetrySetting>,
    /// hookd: request timeout in ms (1000..=30000).
    pub timeout_ms: Option<u64>,
    /// hookd: batching; see `Extensions`.
    #[schema(value_type = Option<Object>)]
    pub batch: Option<Batch>,
}

impl EndpointIn {
    fn take_ext(&mut self) -> Extensions {
        Extensions {
            signing: self.signing.take(),
            payload: self.payload.take(),
            retry: self.retry.take(),
            timeout_ms: self.timeout_ms.take(),
            batch: self.batch.take(),
        }
    }

    fn put_ext(&mut self, ext: Extensions) {
        self.signing = ext.signing;
        self.payload = ext.payload;
        self.retry = ext.retry;
        self.timeout_ms = ext.timeout_ms;
        self.batch = ext.batch;
    }
}

/// hookd extensions to the endpoint resource (the Svix SDKs ignore them).
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Extensions {
    /// hookd: signature scheme, e.g. `{"scheme": "hmac-sha256", "header": "flashfx-signature",
    /// "encoding": "base64", "idHeader": "flashfx-request-id"}`. Schemes: `standard-webhooks`
    /// (default), `svix`, `ed25519`, `hmac-sha256`, `stripe`, `jwt-hs256` (with `kid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub signing: Option<Signing>,
    /// hookd: payload shape, `{"envelope": "none"|"standard", "timestampField": "timestamp",
    /// "timestampFormat": "rfc3339"|"unix-ms"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub payload: Option<PayloadShape>,
    /// hookd: `{"preset": "standard"|"standard-webhooks"|"flashfx"|"flux"|"fire"|"flagright"}`
    /// or `{"schedule": [seconds, ...]}`; overrides the deployment default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub retry: Option<RetrySetting>,
    /// hookd: request timeout for this endpoint (1000..=30000 ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// hookd: `{"maxEvents": n, "windowMs": n}` sends events arriving within the window as one request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub batch: Option<Batch>,
}

impl Extensions {
    fn from_settings(s: EndpointSettings) -> Self {
        Self {
            signing: s.signing,
            payload: s.payload,
            retry: s.retry,
            timeout_ms: s.timeout_ms,
            batch: s.batch,
        }
    }

    /// These extensions laid over `base` (given fields replace, absent ones stay).
    fn over(self, base: EndpointSettings) -> EndpointSettings {
        EndpointSettings {
            signing: self.signing.or(base.signing),
            payload: self.payload.or(base.payload),
            retry: self.retry.or(base.retry),
            timeout_ms: self.timeout_ms.or(base.timeout_ms),
            batch: self.batch.or(base.batch),
        }
    }
}

fn check_settings(checks: &mut Checks, settings: &EndpointSettings) {
    if let Err(errs) = settings.validate() {
        for e in errs {
            checks.fail(&e.path, e.msg);
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPatch {
    #[serde(default)]
    pub url: Patch<String>,
    #[serde(default)]
    pub description: Patch<String>,
    #[serde(default)]
    pub uid: Patch<String>,
    #[serde(default)]
    pub throttle_rate: Patch<u32>,
    #[serde(default)]
    pub rate_limit: Patch<u32>,
    #[serde(default)]
    pub disabled: Patch<bool>,
    #[serde(default)]
    pub event_types: Patch<Vec<String>>,
    #[serde(default)]
    pub filter_types: Patch<Vec<String>>,
    #[serde(default)]
    pub channels: Patch<Vec<String>>,
    #[serde(default)]
    pub metadata: Patch<Metadata>,
    #[serde(default)]
    pub secret: Patch<String>,
    /// hookd extensions; `null` resets one to its default.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub signing: Patch<Signing>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub payload: Patch<PayloadShape>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub retry: Patch<RetrySetting>,
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub timeout_ms: Patch<u64>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub batch: Patch<Batch>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointOut {
    pub id: String,
    pub uid: Option<String>,
    pub url: String,
    pub description: String,
    pub disabled: bool,
    pub throttle_rate: Option<u32>,
    pub rate_limit: Option<u32>,
    pub event_types: Option<Vec<String>>,
    pub filter_types: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
    pub metadata: Metadata,
    pub version: i64,
    pub created_at: chrono::DateTime<Utc>,
    pub updated_at: chrono::DateTime<Utc>,
    #[serde(flatten)]
    pub ext: Extensions,
}

impl From<Endpoint> for EndpointOut {
    fn from(e: Endpoint) -> Self {
        Self {
            ext: Extensions::from_settings(EndpointSettings::from_json(&e.settings)),
            id: e.id,
            uid: e.uid,
            url: e.url,
            description: e.description,
            disabled: e.disabled,
            throttle_rate: e.throttle_rate,
            rate_limit: e.throttle_rate,
            filter_types: e.event_types.clone(),
            event_types: e.event_types,
            channels: e.channels,
            metadata: e.metadata,
            version: 1,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// Picks `eventTypes` or its 1.x alias; an empty list means "all types".
fn event_type_filter(
    checks: &mut Checks,
    a: Option<Vec<String>>,
    b: Option<Vec<String>>,
) -> Option<Vec<String>> {
    let list = match (a, b) {
        (Some(a), Some(b)) if a != b => {
            checks.fail(&["eventTypes"], "eventTypes and filterTypes disagree");
            Some(a)
        }
        (a, b) => a.or(b),
    }?;
    for (i, name) in list.iter().enumerate() {
        checks.check(
            &["eventTypes", &i.to_string()],
            validate::event_type_name(name),
        );
    }
    (!list.is_empty()).then_some(list)
}

fn channel_filter(checks: &mut Checks, channels: Option<Vec<String>>) -> Option<Vec<String>> {
    let list = channels?;
    if list.len() > MAX_CHANNELS {
        checks.fail(
            &["channels"],
            format!("an endpoint may listen on at most {MAX_CHANNELS} channels"),
        );
    }
    for (i, c) in list.iter().enumerate() {
        checks.check(&["channels", &i.to_string()], validate::channel(c));
    }
    (!list.is_empty()).then_some(list)
}

fn check_url(checks: &mut Checks, state: &AppState, url: &str) {
    checks.check(
        &["url"],
        validate::endpoint_url(url, state.config.https_only).map(|_| ()),
    );
}

/// A supplied secret, if it suits the endpoint's signature scheme.
fn check_secret(
    checks: &mut Checks,
    field: &str,
    settings: &EndpointSettings,
    secret: Option<&str>,
) -> Option<String> {
    let secret = secret?;
    match settings.signing().secret_kind().check(secret) {
        Ok(()) => Some(secret.to_string()),
        Err(msg) => {
            checks.fail(&[field], msg);
            None
        }
    }
}

fn check_headers(checks: &mut Checks, headers: &BTreeMap<String, String>) {
    for (name, value) in headers {
        checks.check(&["headers", name], validate::custom_header(name, value));
    }
}

/// Every event type named in a filter must exist, so that a typo is caught at
/// configuration time rather than as silently missing webhooks.
async fn check_types_exist(state: &AppState, types: Option<&Vec<String>>) -> ApiResult<()> {
    let mut checks = Checks::default();
    for (i, name) in types.into_iter().flatten().enumerate() {
        if state.store.event_type(name).await?.is_none() {
            checks.fail(
                &["eventTypes", &i.to_string()],
                format!("event type {name:?} does not exist"),
            );
        }
    }
    checks.finish()
}

/// Builds a new endpoint from a create/upsert body, all validation included.
async fn endpoint_from(
    state: &AppState,
    app: &Application,
    body: EndpointIn,
    uid: Option<String>,
) -> ApiResult<Endpoint> {
    let mut body = body;
    let ext = body.take_ext();
    let mut checks = Checks::default();
    check_url(&mut checks, state, &body.url);
    let uid = body.uid.or(uid);
    if let Some(uid) = &uid {
        checks.check(&["uid"], validate::uid(uid, IdKind::Endpoint.prefix()));
    }
    let throttle = rate(&mut checks, body.throttle_rate, body.rate_limit);
    let types = event_type_filter(&mut checks, body.event_types, body.filter_types);
    let channels = channel_filter(&mut checks, body.channels);
    let settings = ext.over(EndpointSettings::default());
    check_settings(&mut checks, &settings);
    let secret = check_secret(&mut checks, "secret", &settings, body.secret.as_deref());
    check_metadata(&mut checks, body.metadata.as_ref());
    let headers = body.headers.unwrap_or_default();
    check_headers(&mut checks, &headers);
    checks.finish()?;
    check_types_exist(state, types.as_ref()).await?;
    let now = hookd_core::model::now();
    Ok(Endpoint {
        id: new_id(IdKind::Endpoint),
        app_id: app.id.clone(),
        uid,
        url: body.url,
        description: body.description.unwrap_or_default(),
        disabled: body.disabled.unwrap_or(false),
        throttle_rate: throttle,
        event_types: types,
        channels,
        metadata: body.metadata.unwrap_or_default(),
        headers,
        secret: secret.unwrap_or_else(|| settings.signing().secret_kind().generate()),
        old_secrets: vec![],
        settings: settings.to_json(),
        created_at: now,
        updated_at: now,
    })
}

/// The endpoint of an already resolved app, by id or uid, or 404.
pub(super) async fn endpoint_in(
    state: &AppState,
    app_id: &str,
    ep_key: &str,
) -> ApiResult<Endpoint> {
    state
        .store
        .endpoint_by_key(app_id, ep_key)
        .await?
        .ok_or_else(|| ApiError::not_found("Endpoint"))
}

/// The app (within the caller's scope) and its endpoint, both by id or uid.
pub(super) async fn load_endpoint(
    state: &AppState,
    caller: &Caller,
    app_key: &str,
    ep_key: &str,
) -> ApiResult<(Application, Endpoint)> {
    let app = caller.app(state, app_key).await?;
    let ep = endpoint_in(state, &app.id, ep_key).await?;
    Ok((app, ep))
}

#[utoipa::path(get, path = "/app/{app_id}/endpoint", tag = "Endpoint",
    params(("app_id" = String, Path), ("limit" = Option<u32>, Query), ("iterator" = Option<String>, Query), ("order" = Option<String>, Query)),
    responses((status = 200, body = ListResponse<EndpointOut>)))]
async fn list_endpoints(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult<Json<ListResponse<EndpointOut>>> {
    let app = caller.app(&state, &app_id).await?;
    let pager = q.pager(true)?;
    let rows = state.store.list_endpoints(&app.id, &pager.req).await?;
    Ok(Json(pager.finish(
        rows,
        |e| e.id.clone(),
        EndpointOut::from,
    )))
}

#[utoipa::path(post, path = "/app/{app_id}/endpoint", tag = "Endpoint", request_body = EndpointIn,
    params(("app_id" = String, Path)), responses((status = 201, body = EndpointOut), (status = 409), (status = 422)))]
async fn create_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiJson(body): ApiJson<EndpointIn>,
) -> ApiResult<(StatusCode, Json<EndpointOut>)> {
    let app = caller.app(&state, &app_id).await?;
    let ep = endpoint_from(&state, &app, body, None).await?;
    state.store.create_endpoint(&ep).await?;
    Ok((StatusCode::CREATED, Json(ep.into())))
}

#[utoipa::path(get, path = "/app/{app_id}/endpoint/{endpoint_id}", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)), responses((status = 200, body = EndpointOut), (status = 404)))]
async fn get_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, ep_id)): Path<(String, String)>,
) -> ApiResult<Json<EndpointOut>> {
    Ok(Json(
        load_endpoint(&state, &caller, &app_id, &ep_id)
            .await?
            .1
            .into(),
    ))
}

#[utoipa::path(put, path = "/app/{app_id}/endpoint/{endpoint_id}", tag = "Endpoint", request_body = EndpointIn,
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)),
    responses((status = 200, body = EndpointOut), (status = 201, body = EndpointOut)))]
async fn upsert_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, ep_id)): Path<(String, String)>,
    ApiJson(mut body): ApiJson<EndpointIn>,
) -> ApiResult<(StatusCode, Json<EndpointOut>)> {
    let app = caller.app(&state, &app_id).await?;
    match state.store.endpoint_by_key(&app.id, &ep_id).await? {
        Some(existing) => {
            // Settings not named in the body stay as they were: the Svix SDKs
            // do not know them and must not wipe them with an upsert.
            let old_settings = EndpointSettings::from_json(&existing.settings);
            let merged = body.take_ext().over(old_settings);
            body.put_ext(Extensions::from_settings(merged));
            let fresh = endpoint_from(&state, &app, body, existing.uid.clone()).await?;
            let kind = EndpointSettings::from_json(&fresh.settings)
                .signing()
                .secret_kind();
            let keeps_secret = kind.check(&existing.secret).is_ok();
            let ep = Endpoint {
                id: existing.id,
                secret: if keeps_secret {
                    existing.secret
                } else {
                    fresh.secret.clone()
                },
                old_secrets: if keeps_secret {
                    existing.old_secrets
                } else {
                    vec![]
                },
                headers: if fresh.headers.is_empty() {
                    existing.headers
                } else {
                    fresh.headers
                },
                created_at: existing.created_at,
                ..fresh
            };
            state.store.update_endpoint(&ep).await?;
            Ok((StatusCode::OK, Json(ep.into())))
        }
        None if IdKind::Endpoint.is_id(&ep_id) => Err(ApiError::not_found("Endpoint")),
        None => {
            let ep = endpoint_from(&state, &app, body, Some(ep_id)).await?;
            state.store.create_endpoint(&ep).await?;
            Ok((StatusCode::CREATED, Json(ep.into())))
        }
    }
}

#[utoipa::path(patch, path = "/app/{app_id}/endpoint/{endpoint_id}", tag = "Endpoint", request_body = EndpointPatch,
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)), responses((status = 200, body = EndpointOut)))]
async fn patch_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, ep_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<EndpointPatch>,
) -> ApiResult<Json<EndpointOut>> {
    let (_, mut ep) = load_endpoint(&state, &caller, &app_id, &ep_id).await?;
    let mut checks = Checks::default();
    match &body.url {
        Patch::Value(u) => check_url(&mut checks, &state, u),
        Patch::Null => checks.fail(&["url"], "url cannot be null"),
        Patch::Absent => {}
    }
    if let Patch::Value(uid) = &body.uid {
        checks.check(&["uid"], validate::uid(uid, IdKind::Endpoint.prefix()));
    }
    let new_rate = rate(
        &mut checks,
        body.throttle_rate.as_value().copied(),
        body.rate_limit.as_value().copied(),
    );
    let types_given = !(body.event_types.is_absent() && body.filter_types.is_absent());
    let types = event_type_filter(
        &mut checks,
        body.event_types.as_value().cloned(),
        body.filter_types.as_value().cloned(),
    );
    let channels_given = !body.channels.is_absent();
    let channels = channel_filter(&mut checks, body.channels.as_value().cloned());
    let mut settings = EndpointSettings::from_json(&ep.settings);
    body.signing.apply_opt(&mut settings.signing);
    body.payload.apply_opt(&mut settings.payload);
    body.retry.apply_opt(&mut settings.retry);
    body.timeout_ms.apply_opt(&mut settings.timeout_ms);
    body.batch.apply_opt(&mut settings.batch);
    check_settings(&mut checks, &settings);
    let secret = match &body.secret {
        Patch::Value(s) => check_secret(&mut checks, "secret", &settings, Some(s)),
        _ => None,
    };
    check_metadata(&mut checks, body.metadata.as_value());
    checks.finish()?;
    let kind = settings.signing().secret_kind();
    if secret.is_none() && kind.check(&ep.secret).is_err() {
        // The scheme changed to one the old secret cannot serve: start afresh.
        ep.secret = kind.generate();
        ep.old_secrets.clear();
    }
    ep.settings = settings.to_json();
    if types_given {
        check_types_exist(&state, types.as_ref()).await?;
        ep.event_types = types;
    }
    if channels_given {
        ep.channels = channels;
    }
    if let Patch::Value(u) = body.url {
        ep.url = u;
    }
    match body.description {
        Patch::Value(d) => ep.description = d,
        Patch::Null => ep.description.clear(),
        Patch::Absent => {}
    }
    body.uid.apply_opt(&mut ep.uid);
    if new_rate.is_some() {
        ep.throttle_rate = new_rate;
    } else if matches!(body.throttle_rate, Patch::Null) || matches!(body.rate_limit, Patch::Null) {
        ep.throttle_rate = None;
    }
    if let Patch::Value(d) = body.disabled {
        ep.disabled = d;
    }
    match body.metadata {
        Patch::Value(m) => ep.metadata = m,
        Patch::Null => ep.metadata.clear(),
        Patch::Absent => {}
    }
    if let Some(s) = secret {
        ep.secret = s;
    }
    ep.updated_at = hookd_core::model::now();
    state.store.update_endpoint(&ep).await?;
    Ok(Json(ep.into()))
}

#[utoipa::path(delete, path = "/app/{app_id}/endpoint/{endpoint_id}", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)), responses((status = 204)))]
async fn delete_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, ep_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (app, ep) = load_endpoint(&state, &caller, &app_id, &ep_id).await?;
    state.store.delete_endpoint(&app.id, &ep.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EndpointSecretOut {
    /// The HMAC secret (`whsec_`), or the public key (`whpk_`) of an Ed25519 endpoint.
    pub key: String,
}

#[utoipa::path(get, path = "/app/{app_id}/endpoint/{endpoint_id}/secret", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)), responses((status = 200, body = EndpointSecretOut)))]
async fn get_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, ep_id)): Path<(String, String)>,
) -> ApiResult<Json<EndpointSecretOut>> {
    let (_, ep) = load_endpoint(&state, &caller, &app_id, &ep_id).await?;
    let kind = EndpointSettings::from_json(&ep.settings)
        .signing()
        .secret_kind();
    Ok(Json(EndpointSecretOut {
        key: kind.receiver_form(&ep.secret),
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSecretRotateIn {
    /// The new secret; generated (of the same kind as the current one) when absent.
    pub key: Option<String>,
    /// How long the old secret keeps signing (0..=604800, default 86400).
    pub grace_period_seconds: Option<i64>,
}

#[utoipa::path(post, path = "/app/{app_id}/endpoint/{endpoint_id}/secret/rotate", tag = "Endpoint",
    request_body = EndpointSecretRotateIn, params(("app_id" = String, Path), ("endpoint_id" = String, Path)),
    responses((status = 200, body = EndpointSecretOut, description = "the new secret (receiver form)")))]
async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, ep_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Option<EndpointSecretRotateIn>>,
) -> ApiResult<Json<EndpointSecretOut>> {
    let body = body.unwrap_or_default();
    let (_, mut ep) = load_endpoint(&state, &caller, &app_id, &ep_id).await?;
    let mut checks = Checks::default();
    let grace = body.grace_period_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
    if !(0..=MAX_GRACE_SECONDS).contains(&grace) {
        checks.fail(
            &["gracePeriodSeconds"],
            format!("gracePeriodSeconds must be between 0 and {MAX_GRACE_SECONDS}"),
        );
    }
    let settings = EndpointSettings::from_json(&ep.settings);
    let kind = settings.signing().secret_kind();
    let new_secret = match body.key.as_deref() {
        Some(k) => check_secret(&mut checks, "key", &settings, Some(k)),
        None => Some(kind.generate()),
    };
    checks.finish()?;
    let new_secret = new_secret.expect("validated above");
    let now = hookd_core::model::now();
    ep.old_secrets.retain(|o| o.expires_at > now);
    if grace > 0 {
        if ep.old_secrets.len() >= MAX_OLD_SECRETS {
            return Err(ApiError::LimitReached(format!(
                "at most {MAX_OLD_SECRETS} previous secrets may still be valid; wait for one to expire"
            )));
        }
        ep.old_secrets.push(OldSecret {
            key: ep.secret.clone(),
            expires_at: now + chrono::Duration::seconds(grace),
        });
        ep.old_secrets.sort_by_key(|o| o.expires_at);
    }
    ep.secret = new_secret;
    ep.updated_at = now;
    state.store.update_endpoint(&ep).await?;
    Ok(Json(EndpointSecretOut {
        key: kind.receiver_form(&ep.secret),
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EndpointHeadersOut {
    /// Headers whose values may be shown.
    pub headers: BTreeMap<String, String>,
    /// Names of headers whose values are never shown (e.g. `authorization`).
    pub sensitive: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct EndpointHeadersIn {
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointHeadersPatchIn {
    pub headers: BTreeMap<String, String>,
    pub delete_headers: Option<Vec<String>>,
}

#[utoipa::path(get, path = "/app/{app_id}/endpoint/{endpoint_id}/headers", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path)), responses((status = 200, body = EndpointHeadersOut)))]
async fn get_headers(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, ep_id)): Path<(String, String)>,
) -> ApiResult<Json<EndpointHeadersOut>> {
    let (_, ep) = load_endpoint(&state, &caller, &app_id, &ep_id).await?;
    let (sensitive, visible): (BTreeMap<_, _>, BTreeMap<_, _>) = ep
        .headers
        .into_iter()
        .partition(|(k, _)| validate::is_sensitive_header(k));
    Ok(Json(EndpointHeadersOut {
        headers: visible,
        sensitive: sensitive.into_keys().collect(),
    }))
}

#[utoipa::path(put, path = "/app/{app_id}/endpoint/{endpoint_id}/headers", tag = "Endpoint",
    request_body = EndpointHeadersIn, params(("app_id" = String, Path), ("endpoint_id" = String, Path)), responses((status = 204)))]
async fn set_headers(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, ep_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<EndpointHeadersIn>,
) -> ApiResult<StatusCode> {
    let (_, mut ep) = load_endpoint(&state, &caller, &app_id, &ep_id).await?;
    let mut checks = Checks::default();
    check_headers(&mut checks, &body.headers);
    checks.finish()?;
    ep.headers = body.headers;
    ep.updated_at = hookd_core::model::now();
    state.store.update_endpoint(&ep).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(patch, path = "/app/{app_id}/endpoint/{endpoint_id}/headers", tag = "Endpoint",
    request_body = EndpointHeadersPatchIn, params(("app_id" = String, Path), ("endpoint_id" = String, Path)), responses((status = 204)))]
async fn patch_headers(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, ep_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<EndpointHeadersPatchIn>,
) -> ApiResult<StatusCode> {
    let (_, mut ep) = load_endpoint(&state, &caller, &app_id, &ep_id).await?;
    let mut checks = Checks::default();
    check_headers(&mut checks, &body.headers);
    checks.finish()?;
    for name in body.delete_headers.unwrap_or_default() {
        ep.headers.retain(|k, _| !k.eq_ignore_ascii_case(&name));
    }
    for (k, v) in body.headers {
        ep.headers
            .retain(|existing, _| !existing.eq_ignore_ascii_case(&k));
        ep.headers.insert(k, v);
    }
    ep.updated_at = hookd_core::model::now();
    state.store.update_endpoint(&ep).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct StatsQuery {
    since: Option<String>,
    until: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointStatsOut {
    pub success: u64,
    pub pending: u64,
    pub sending: u64,
    pub fail: u64,
    pub canceled: u64,
}

impl From<EndpointStats> for EndpointStatsOut {
    fn from(s: EndpointStats) -> Self {
        Self {
            success: s.success,
            pending: s.pending,
            sending: s.sending,
            fail: s.fail,
            canceled: s.canceled,
        }
    }
}

#[utoipa::path(get, path = "/app/{app_id}/endpoint/{endpoint_id}/stats", tag = "Endpoint",
    params(("app_id" = String, Path), ("endpoint_id" = String, Path), StatsQuery), responses((status = 200, body = EndpointStatsOut)))]
async fn get_stats(
    State(state): State<AppState>,
    caller: Caller,
    Path((app_id, ep_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<Json<EndpointStatsOut>> {
    let (app, ep) = load_endpoint(&state, &caller, &app_id, &ep_id).await?;
    let since = parse_query_time("since", q.since.as_deref())?;
    let until = parse_query_time("until", q.until.as_deref())?;
    Ok(Json(
        state
            .store
            .endpoint_stats(&app.id, &ep.id, since, until)
            .await?
            .into(),
    ))
}
