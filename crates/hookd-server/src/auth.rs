//! Bearer-token authentication. Tokens are stored only as SHA-256 hashes; an
//! optional operator token from the environment is compared in constant time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::Utc;
use hookd_core::model::{Application, TokenScope};
use hookd_core::{new_id, IdKind};
use hookd_store::{Store, TokenRecord};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// How long a looked-up token is trusted before asking the store again.
const CACHE_TTL: Duration = Duration::from_secs(5);

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Mints a random token; `kind` is a readable tag (`adm`, `app`).
pub fn mint_token(kind: &str) -> String {
    let mut raw = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    format!("hookd_{kind}_{}", URL_SAFE_NO_PAD.encode(raw))
}

/// Creates and stores a new admin token, returning its only plaintext copy.
pub async fn create_admin_token(store: &dyn Store) -> hookd_store::Result<String> {
    let token = mint_token("adm");
    store
        .insert_token(&TokenRecord {
            id: new_id(IdKind::Token),
            hash: hash_token(&token),
            scope: TokenScope::Admin,
            read_only: false,
            created_at: Utc::now(),
            expires_at: None,
        })
        .await?;
    Ok(token)
}

/// Remembers recent token look-ups so that each request does not hit the store.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, (TokenRecord, Instant)>>,
}

impl TokenCache {
    fn get(&self, hash: &str) -> Option<TokenRecord> {
        let map = self.entries.lock().expect("token cache poisoned");
        map.get(hash)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(r, _)| r.clone())
    }

    fn put(&self, rec: TokenRecord) {
        let mut map = self.entries.lock().expect("token cache poisoned");
        if map.len() > 10_000 {
            map.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
        }
        map.insert(rec.hash.clone(), (rec, Instant::now()));
    }

    /// Forgets every cached token, e.g. after tokens were expired.
    pub fn clear(&self) {
        self.entries.lock().expect("token cache poisoned").clear();
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub scope: TokenScope,
    pub token_hash: String,
    /// Only reads are allowed (an app-portal token issued with `readOnly`).
    pub read_only: bool,
}

impl Caller {
    pub fn require_admin(&self) -> ApiResult<()> {
        match self.scope {
            TokenScope::Admin => Ok(()),
            TokenScope::App(_) => Err(ApiError::Forbidden(
                "this token is limited to one application".into(),
            )),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.scope == TokenScope::Admin
    }

    /// Resolves an app by id or uid, enforcing the token's scope: a scoped token
    /// gets 403 for any other app, existing or not, so it learns nothing.
    pub async fn app(&self, state: &AppState, key: &str) -> ApiResult<Application> {
        let app = state.store.app_by_key(key).await?;
        self.in_scope(app)
    }

    /// [`Caller::app`] for message creation, which may answer from memory (on a
    /// store shared by a cluster, another node's change shows within a second).
    pub async fn app_cached(&self, state: &AppState, key: &str) -> ApiResult<Application> {
        let app = state.store.app_by_key_cached(key).await?;
        self.in_scope(app)
    }

    fn in_scope(&self, app: Option<Application>) -> ApiResult<Application> {
        match (&self.scope, app) {
            (TokenScope::Admin, Some(app)) => Ok(app),
            (TokenScope::Admin, None) => Err(ApiError::not_found("Application")),
            (TokenScope::App(id), Some(app)) if *id == app.id => Ok(app),
            (TokenScope::App(_), _) => Err(ApiError::Forbidden(
                "this token is not valid for that application".into(),
            )),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::Unauthorized("missing Authorization: Bearer <token> header".into())
            })?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("Authorization header must be 'Bearer <token>'".into())
            })?;
        let caller = state.authenticate(token).await?;
        // A read-only token may look, and end its own session, but change nothing.
        let reading = matches!(
            parts.method,
            axum::http::Method::GET | axum::http::Method::HEAD
        );
        // (Inside the nested /api/v1 router the path has that prefix stripped.)
        if caller.read_only && !reading && !parts.uri.path().ends_with("/auth/logout") {
            return Err(ApiError::Forbidden("this token is read-only".into()));
        }
        Ok(caller)
    }
}

impl AppState {
    pub async fn authenticate(&self, token: &str) -> ApiResult<Caller> {
        let hash = hash_token(token);
        if let Some(admin) = self.config.admin_token.as_deref() {
            if bool::from(admin.as_bytes().ct_eq(token.as_bytes())) {
                return Ok(Caller {
                    scope: TokenScope::Admin,
                    token_hash: hash,
                    read_only: false,
                });
            }
        }
        let rec = match self.tokens.get(&hash) {
            Some(rec) => Some(rec),
            None => {
                let found = self.store.find_token(&hash).await?;
                if let Some(rec) = &found {
                    self.tokens.put(rec.clone());
                }
                found
            }
        };
        match rec {
            Some(rec) if rec.expires_at.is_none_or(|at| at > Utc::now()) => Ok(Caller {
                scope: rec.scope,
                token_hash: hash,
                read_only: rec.read_only,
            }),
            _ => Err(ApiError::Unauthorized("invalid or expired token".into())),
        }
    }
}
