//! Per-endpoint delivery settings (hookd extensions to the endpoint resource):
//! the signature scheme, the payload shape, the retry schedule, the request
//! timeout and batching. Parsed and checked here, so an endpoint can only ever
//! hold settings the dispatcher knows how to honour.

use serde::{Deserialize, Serialize};

use crate::retry::{RetryPolicy, RetryPolicyError};
use crate::signing::{Encoding, EndpointSecret};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing: Option<Signing>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<PayloadShape>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySetting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<Batch>,
}

/// How requests to the endpoint are signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Signing {
    /// Standard Webhooks `v1` under `webhook-*` headers (the default).
    StandardWebhooks {},
    /// Standard Webhooks `v1` under `svix-*` headers.
    Svix {},
    /// Standard Webhooks `v1a` (Ed25519) under `webhook-*` headers; `whsk_` secrets.
    Ed25519 {},
    /// HMAC-SHA256 of the body alone, in a header of your naming.
    #[serde(rename_all = "camelCase")]
    HmacSha256 {
        #[serde(default = "default_sig_header")]
        header: String,
        #[serde(default)]
        encoding: Encoding,
        #[serde(default = "default_id_header")]
        id_header: String,
    },
    /// `Stripe-Signature: t=...,v1=...`.
    Stripe {},
    /// The body is a compact JWS (HS256) whose header carries `kid`.
    JwtHs256 { kid: String },
}

fn default_sig_header() -> String {
    "x-webhook-signature".into()
}
fn default_id_header() -> String {
    "x-webhook-id".into()
}

impl Default for Signing {
    fn default() -> Self {
        Self::StandardWebhooks {}
    }
}

/// What kind of secret a scheme signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// `whsec_` + base64 (Standard Webhooks HMAC).
    StandardHmac,
    /// `whsk_` Ed25519 keypair.
    Ed25519,
    /// Any string, used as its UTF-8 bytes (provider schemes; migrated secrets).
    Opaque,
}

impl Signing {
    pub fn secret_kind(&self) -> SecretKind {
        match self {
            Self::StandardWebhooks {} | Self::Svix {} => SecretKind::StandardHmac,
            Self::Ed25519 {} => SecretKind::Ed25519,
            Self::HmacSha256 { .. } | Self::Stripe {} | Self::JwtHs256 { .. } => SecretKind::Opaque,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::StandardWebhooks {} => "standard-webhooks",
            Self::Svix {} => "svix",
            Self::Ed25519 {} => "ed25519",
            Self::HmacSha256 { .. } => "hmac-sha256",
            Self::Stripe {} => "stripe",
            Self::JwtHs256 { .. } => "jwt-hs256",
        }
    }
}

impl SecretKind {
    /// Checks that `secret` suits this kind; the message names what is wrong.
    pub fn check(self, secret: &str) -> Result<(), String> {
        let ed = secret.starts_with("whsk_");
        match self {
            Self::StandardHmac if ed => {
                Err("an Ed25519 secret (whsk_) cannot be used with an HMAC scheme".into())
            }
            Self::StandardHmac => EndpointSecret::parse(secret)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Self::Ed25519 {} if !ed => {
                Err("the ed25519 scheme needs an Ed25519 secret (whsk_...)".into())
            }
            Self::Ed25519 {} => EndpointSecret::parse(secret)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Self::Opaque if ed => {
                Err("an Ed25519 secret (whsk_) cannot be used with an HMAC scheme".into())
            }
            Self::Opaque => {
                if !(16..=256).contains(&secret.len()) {
                    return Err("secret must be between 16 and 256 characters".into());
                }
                if secret.chars().any(char::is_control) {
                    return Err("secret must not contain control characters".into());
                }
                Ok(())
            }
        }
    }

    /// A fresh secret of this kind, in its textual form.
    pub fn generate(self) -> String {
        match self {
            Self::Ed25519 {} => EndpointSecret::generate_ed25519().to_secret_string(),
            Self::StandardHmac | Self::Opaque => EndpointSecret::generate_hmac().to_secret_string(),
        }
    }

    /// What a receiver needs to verify: the secret itself, or the Ed25519 public key.
    pub fn receiver_form(self, secret: &str) -> String {
        match EndpointSecret::parse(secret) {
            Ok(s) if self != Self::Opaque => s.to_receiver_string(),
            _ => secret.to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Envelope {
    /// The stored payload exactly as posted.
    #[default]
    None,
    /// `{"id", "type", <timestampField>, "data"}`.
    Standard,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimestampFormat {
    #[default]
    Rfc3339,
    UnixMs,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PayloadShape {
    #[serde(default)]
    pub envelope: Envelope,
    #[serde(default = "default_ts_field")]
    pub timestamp_field: String,
    #[serde(default)]
    pub timestamp_format: TimestampFormat,
}

fn default_ts_field() -> String {
    "timestamp".into()
}

/// A named preset or an explicit schedule (seconds after each failure).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetrySetting {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Vec<f64>>,
}

impl RetrySetting {
    pub fn policy(&self, jitter: f64) -> Result<RetryPolicy, RetryPolicyError> {
        match (&self.preset, &self.schedule) {
            (Some(p), None) => RetryPolicy::preset(p),
            (None, Some(s)) => {
                let delays = s
                    .iter()
                    .map(|d| {
                        (d.is_finite() && *d >= 0.0)
                            .then(|| std::time::Duration::from_secs_f64(*d))
                            .ok_or_else(|| RetryPolicyError::BadDelay(d.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                RetryPolicy::new(delays, jitter)
            }
            _ => Err(RetryPolicyError::BadDelay(
                "give exactly one of preset or schedule".into(),
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Batch {
    pub max_events: u32,
    pub window_ms: u64,
}

/// A rule broken by a settings value: the field path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    pub path: Vec<&'static str>,
    pub msg: String,
}

impl EndpointSettings {
    pub const MIN_TIMEOUT_MS: u64 = 1_000;
    pub const MAX_TIMEOUT_MS: u64 = 30_000;
    pub const MAX_BATCH_EVENTS: u32 = 1_000;
    pub const MAX_BATCH_WINDOW_MS: u64 = 60_000;

    pub fn signing(&self) -> Signing {
        self.signing.clone().unwrap_or_default()
    }

    /// Reads settings stored as JSON; anything unreadable means defaults.
    pub fn from_json(v: &serde_json::Value) -> Self {
        serde_json::from_value(v.clone()).unwrap_or_default()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("settings serialise")
    }

    /// Every rule the types cannot express.
    pub fn validate(&self) -> Result<(), Vec<SettingsError>> {
        let mut errs = Vec::new();
        let mut fail =
            |path: Vec<&'static str>, msg: String| errs.push(SettingsError { path, msg });
        if let Some(Signing::HmacSha256 {
            header, id_header, ..
        }) = &self.signing
        {
            for (name, field) in [(header, "header"), (id_header, "idHeader")] {
                if let Err(e) = crate::validate::custom_header(name, "") {
                    fail(vec!["signing", field], e);
                }
            }
        }
        if let Some(Signing::JwtHs256 { kid }) = &self.signing {
            if kid.is_empty() || kid.len() > 256 {
                fail(
                    vec!["signing", "kid"],
                    "kid must be between 1 and 256 characters".into(),
                );
            }
        }
        if let Some(p) = &self.payload {
            if crate::validate::identifier(&p.timestamp_field, 64).is_err()
                || p.timestamp_field == "id"
                || p.timestamp_field == "type"
                || p.timestamp_field == "data"
            {
                fail(
                    vec!["payload", "timestampField"],
                    "timestampField must be a simple name other than id, type and data".into(),
                );
            }
        }
        if let Some(r) = &self.retry {
            if let Err(e) = r.policy(0.0) {
                let field = if r.schedule.is_some() && r.preset.is_none() {
                    "schedule"
                } else {
                    "preset"
                };
                fail(vec!["retry", field], e.to_string());
            }
        }
        if let Some(t) = self.timeout_ms {
            if !(Self::MIN_TIMEOUT_MS..=Self::MAX_TIMEOUT_MS).contains(&t) {
                fail(
                    vec!["timeoutMs"],
                    format!(
                        "timeoutMs must be between {} and {}",
                        Self::MIN_TIMEOUT_MS,
                        Self::MAX_TIMEOUT_MS
                    ),
                );
            }
        }
        if let Some(b) = &self.batch {
            if !(1..=Self::MAX_BATCH_EVENTS).contains(&b.max_events) {
                fail(
                    vec!["batch", "maxEvents"],
                    format!("maxEvents must be between 1 and {}", Self::MAX_BATCH_EVENTS),
                );
            }
            if !(1..=Self::MAX_BATCH_WINDOW_MS).contains(&b.window_ms) {
                fail(
                    vec!["batch", "windowMs"],
                    format!(
                        "windowMs must be between 1 and {}",
                        Self::MAX_BATCH_WINDOW_MS
                    ),
                );
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Result<EndpointSettings, serde_json::Error> {
        serde_json::from_value(v)
    }

    #[test]
    fn every_scheme_parses_with_its_options() {
        let s = parse(serde_json::json!({"signing": {"scheme": "hmac-sha256", "header": "flashfx-signature", "encoding": "hex", "idHeader": "flashfx-request-id"}})).unwrap();
        assert_eq!(
            s.signing,
            Some(Signing::HmacSha256 {
                header: "flashfx-signature".into(),
                encoding: Encoding::Hex,
                id_header: "flashfx-request-id".into()
            })
        );
        for scheme in ["standard-webhooks", "svix", "ed25519", "stripe"] {
            assert_eq!(
                parse(serde_json::json!({"signing": {"scheme": scheme}}))
                    .unwrap()
                    .signing()
                    .name(),
                scheme
            );
        }
        assert!(
            parse(serde_json::json!({"signing": {"scheme": "jwt-hs256", "kid": "k1"}})).is_ok()
        );
    }

    #[test]
    fn unknown_schemes_fields_and_options_are_rejected() {
        assert!(parse(serde_json::json!({"signing": {"scheme": "md5"}})).is_err());
        assert!(
            parse(serde_json::json!({"signing": {"scheme": "stripe", "header": "x"}})).is_err()
        );
        assert!(parse(serde_json::json!({"colour": "red"})).is_err());
        assert!(
            parse(serde_json::json!({"signing": {"scheme": "jwt-hs256"}})).is_err(),
            "kid is required"
        );
    }

    #[test]
    fn rules_beyond_the_types_are_checked() {
        let bad = parse(serde_json::json!({"batch": {"maxEvents": 0, "windowMs": 10}, "retry": {"schedule": [1, -2]}, "timeoutMs": 10})).unwrap();
        let paths: Vec<_> = bad
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.path.join("."))
            .collect();
        assert_eq!(paths, ["retry.schedule", "timeoutMs", "batch.maxEvents"]);
        let ok = parse(serde_json::json!({"retry": {"preset": "flashfx"}, "timeoutMs": 5000, "batch": {"maxEvents": 50, "windowMs": 200}})).unwrap();
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn secret_kinds_accept_only_their_own_secrets() {
        let hmac = crate::signing::EndpointSecret::generate_hmac().to_secret_string();
        let ed = crate::signing::EndpointSecret::generate_ed25519().to_secret_string();
        assert!(SecretKind::StandardHmac.check(&hmac).is_ok());
        assert!(SecretKind::StandardHmac
            .check(&ed)
            .unwrap_err()
            .contains("Ed25519"));
        assert!(SecretKind::Ed25519.check(&ed).is_ok());
        assert!(SecretKind::Ed25519.check(&hmac).is_err());
        assert!(SecretKind::Opaque
            .check("fire-webhook-private-token-example-0001")
            .is_ok());
        assert!(SecretKind::Opaque.check(&ed).is_err());
        assert!(SecretKind::Opaque.check("short").is_err());
        assert!(SecretKind::Ed25519.receiver_form(&ed).starts_with("whpk_"));
    }
}
