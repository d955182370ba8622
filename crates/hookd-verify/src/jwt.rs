//! JWT HS256 verification (fire.com style): the request body is a compact JWS
//! whose header names the key (`kid`) and whose claims carry the events.
//!
//! Only HS256 is accepted, whatever the token's header says, so a forged
//! `"alg":"none"` token fails. `exp` and `nbf` are enforced when present.

use std::time::Duration;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::clock::now_unix;
use crate::VerifyError;

/// Verifies JWT bodies signed with one private token.
pub struct JwtHs256 {
    secret: Vec<u8>,
    kid: String,
    leeway: Duration,
}

impl std::fmt::Debug for JwtHs256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtHs256")
            .field("secret", &"<redacted>")
            .field("kid", &self.kid)
            .field("leeway", &self.leeway)
            .finish()
    }
}

impl JwtHs256 {
    /// `secret` is the private token, used exactly as written; `kid` is the public
    /// token the JWT header must name.
    pub fn new(secret: &str, kid: &str) -> Result<Self, VerifyError> {
        if secret.is_empty() {
            return Err(VerifyError::BadSecret);
        }
        Ok(Self {
            secret: secret.as_bytes().to_vec(),
            kid: kid.to_owned(),
            leeway: Duration::ZERO,
        })
    }

    /// Clock skew allowed when checking `exp` and `nbf` (default none).
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Verifies the request body and returns its claims (a JSON object).
    pub fn verify(&self, body: &[u8]) -> Result<Value, VerifyError> {
        self.verify_at(body, now_unix())
    }

    /// [`verify`](Self::verify) with the clock pinned to `now` (Unix seconds).
    pub fn verify_at(&self, body: &[u8], now: i64) -> Result<Value, VerifyError> {
        let token = std::str::from_utf8(body)
            .map_err(|_| VerifyError::MalformedToken)?
            .trim();
        let mut parts = token.split('.');
        let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(VerifyError::MalformedToken);
        };

        let header = decode_object(header_b64)?;
        match header.get("alg").and_then(Value::as_str) {
            Some("HS256") => {}
            other => {
                return Err(VerifyError::UnsupportedAlgorithm(
                    other.unwrap_or_default().to_owned(),
                ))
            }
        }
        // RFC 7515 4.1.11: a receiver must reject extensions it was told are critical.
        if header.get("crit").is_some() {
            return Err(VerifyError::MalformedToken);
        }
        if header.get("kid").and_then(Value::as_str) != Some(self.kid.as_str()) {
            return Err(VerifyError::KidMismatch);
        }

        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| VerifyError::MalformedToken)?;
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC accepts keys of any length");
        mac.update(&token.as_bytes()[..header_b64.len() + 1 + claims_b64.len()]);
        mac.verify_slice(&signature)
            .map_err(|_| VerifyError::NoMatchingSignature)?;

        let claims = decode_object(claims_b64)?;
        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX);
        if claims
            .get("exp")
            .and_then(Value::as_i64)
            .is_some_and(|exp| now > exp.saturating_add(leeway))
        {
            return Err(VerifyError::TokenExpired);
        }
        if claims
            .get("nbf")
            .and_then(Value::as_i64)
            .is_some_and(|nbf| now.saturating_add(leeway) < nbf)
        {
            return Err(VerifyError::TokenNotYetValid);
        }
        Ok(claims)
    }
}

/// A base64url segment holding a JSON object.
fn decode_object(segment: &str) -> Result<Value, VerifyError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| VerifyError::MalformedToken)?;
    match serde_json::from_slice(&bytes) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(VerifyError::MalformedToken),
    }
}
