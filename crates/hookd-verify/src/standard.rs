//! Standard Webhooks verification: `v1` (HMAC-SHA256, secret `whsec_...`) and
//! `v1a` (Ed25519, public key `whpk_...`) over `{id}.{timestamp}.{body}`, read from
//! the `webhook-*` headers or, failing those, the `svix-*` ones.

use std::time::Duration;

use base64::{engine::general_purpose::STANDARD, Engine};
use ed25519_dalek::{Signature, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::clock::{check_tolerance, now_unix, parse_timestamp, DEFAULT_TOLERANCE};
use crate::headers::require;
use crate::{Headers, VerifyError};

/// `[id, timestamp, signature]` header names, in the order they are tried.
const HEADER_FAMILIES: [[&str; 3]; 2] = [
    ["webhook-id", "webhook-timestamp", "webhook-signature"],
    ["svix-id", "svix-timestamp", "svix-signature"],
];

enum Key {
    Hmac(Vec<u8>),
    Ed25519(VerifyingKey),
}

/// Verifies Standard Webhooks requests for one endpoint key.
pub struct StandardWebhooks {
    key: Key,
    tolerance: Duration,
}

impl std::fmt::Debug for StandardWebhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.key {
            Key::Hmac(_) => "v1 (HMAC, redacted)",
            Key::Ed25519(_) => "v1a (Ed25519)",
        };
        f.debug_struct("StandardWebhooks")
            .field("key", &kind)
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl StandardWebhooks {
    /// `key` is the endpoint secret (`whsec_<base64>`, or the bare base64), which
    /// checks `v1` entries, or its Ed25519 public key (`whpk_<base64 of 32 bytes>`),
    /// which checks `v1a` entries.
    pub fn new(key: &str) -> Result<Self, VerifyError> {
        let key = if let Some(public) = key.strip_prefix("whpk_") {
            let bytes: [u8; 32] = STANDARD
                .decode(public)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or(VerifyError::BadSecret)?;
            Key::Ed25519(VerifyingKey::from_bytes(&bytes).map_err(|_| VerifyError::BadSecret)?)
        } else {
            let secret = STANDARD
                .decode(key.strip_prefix("whsec_").unwrap_or(key))
                .map_err(|_| VerifyError::BadSecret)?;
            if secret.is_empty() {
                return Err(VerifyError::BadSecret);
            }
            Key::Hmac(secret)
        };
        Ok(Self {
            key,
            tolerance: DEFAULT_TOLERANCE,
        })
    }

    /// How far `webhook-timestamp` may be from now, either way (default 5 minutes).
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Verifies `body` (the exact bytes received) against the request's headers.
    pub fn verify<H: Headers + ?Sized>(&self, headers: &H, body: &[u8]) -> Result<(), VerifyError> {
        self.verify_at(headers, body, now_unix())
    }

    /// [`verify`](Self::verify) with the clock pinned to `now` (Unix seconds).
    pub fn verify_at<H: Headers + ?Sized>(
        &self,
        headers: &H,
        body: &[u8],
        now: i64,
    ) -> Result<(), VerifyError> {
        let [id_name, ts_name, sig_name] = HEADER_FAMILIES
            .into_iter()
            .find(|f| headers.header(f[0]).is_some())
            .unwrap_or(HEADER_FAMILIES[0]);
        let msg_id = require(headers, id_name)?;
        let timestamp_text = require(headers, ts_name)?;
        let signatures = require(headers, sig_name)?;

        let timestamp = parse_timestamp(timestamp_text)?;
        check_tolerance(timestamp, now, self.tolerance)?;

        // Entries are `<version>,<base64>` separated by spaces; any one match passes.
        let entries: Vec<(&str, &str)> = signatures
            .split_whitespace()
            .filter_map(|e| e.split_once(','))
            .collect();
        if entries.is_empty() {
            return Err(VerifyError::MalformedSignature);
        }
        let prefix = format!("{msg_id}.{timestamp}.");
        let matched = match &self.key {
            Key::Hmac(secret) => {
                let mut mac = Hmac::<Sha256>::new_from_slice(secret)
                    .expect("HMAC accepts keys of any length");
                mac.update(prefix.as_bytes());
                mac.update(body);
                let expected = mac.finalize().into_bytes();
                candidates(&entries, "v1").any(|sig| bool::from(expected.as_slice().ct_eq(&sig)))
            }
            Key::Ed25519(public) => {
                let content = [prefix.as_bytes(), body].concat();
                candidates(&entries, "v1a").any(|sig| {
                    Signature::from_slice(&sig)
                        .is_ok_and(|sig| public.verify_strict(&content, &sig).is_ok())
                })
            }
        };
        if matched {
            Ok(())
        } else {
            Err(VerifyError::NoMatchingSignature)
        }
    }
}

/// The decoded signatures of the entries with `version`; undecodable ones are
/// skipped, since another entry (e.g. from a newer key) may still match.
fn candidates<'a>(
    entries: &'a [(&'a str, &'a str)],
    version: &'a str,
) -> impl Iterator<Item = Vec<u8>> + 'a {
    entries
        .iter()
        .filter(move |(v, _)| *v == version)
        .filter_map(|(_, sig)| STANDARD.decode(sig).ok())
}
