//! Builds the outgoing request for one attempt: body, signature headers and
//! the endpoint's custom headers. Pure, so every byte can be tested.

use std::time::Duration;

use bytes::Bytes;
use chrono::SecondsFormat;
use chrono::{DateTime, Utc};
use hookd_core::model::Endpoint;
use hookd_core::settings::{EndpointSettings, Envelope, PayloadShape, Signing, TimestampFormat};
use hookd_core::signing::{
    sign_body_hmac, sign_jwt_hs256, sign_standard, sign_stripe, EndpointSecret, JWT_CONTENT_TYPE,
};
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use sha2::{Digest, Sha256};

/// Which header names carry the Standard Webhooks values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeaderFamily {
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature` (the default).
    #[default]
    Webhook,
    /// `svix-id`, `svix-timestamp`, `svix-signature`.
    Svix,
}

impl HeaderFamily {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "webhook" | "standard-webhooks" => Some(Self::Webhook),
            "svix" => Some(Self::Svix),
            _ => None,
        }
    }

    fn names(self) -> [&'static str; 3] {
        match self {
            Self::Webhook => ["webhook-id", "webhook-timestamp", "webhook-signature"],
            Self::Svix => ["svix-id", "svix-timestamp", "svix-signature"],
        }
    }
}

#[derive(Debug)]
pub struct Outgoing {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub timeout: Duration,
    /// The id receivers see (`webhook-id` or the scheme's id header): the message
    /// id, or for a batch an id derived from its members.
    pub id: String,
}

/// One message going out in a request.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub msg_id: &'a str,
    pub event_type: &'a str,
    pub created_at: DateTime<Utc>,
    /// The stored payload's JSON text.
    pub payload: &'a str,
}

/// Deployment-wide defaults the endpoint's settings may override.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    pub family: HeaderFamily,
    pub timeout: Duration,
}

/// The request that delivers `items` to `ep` at `now`. With `batch` configured
/// the body is a JSON array of events (or the JWT's `events` claim) even for one
/// item; otherwise `items` holds exactly one message. Fails only when the
/// endpoint's stored secret cannot be used.
pub fn build(
    ep: &Endpoint,
    settings: &EndpointSettings,
    items: &[Item<'_>],
    now: DateTime<Utc>,
    defaults: Defaults,
) -> Result<Outgoing, String> {
    let first = items.first().ok_or("nothing to send")?;
    let batched = settings.batch.is_some();
    let events: Vec<String> = items
        .iter()
        .map(|it| shape(settings.payload.as_ref(), it))
        .collect();
    let id = if batched && items.len() > 1 {
        batch_id(items)
    } else {
        first.msg_id.to_string()
    };
    let signing = settings.signing.clone();
    let ts = now.timestamp();

    let (body, content_type) = match &signing {
        Some(Signing::JwtHs256 { kid }) => {
            let claims = format!(
                r#"{{"generationTime":{},"events":[{}]}}"#,
                now.timestamp_millis(),
                events.join(",")
            );
            (
                sign_jwt_hs256(&ep.secret, kid, claims.as_bytes()),
                JWT_CONTENT_TYPE,
            )
        }
        _ if batched => (format!("[{}]", events.join(",")), "application/json"),
        _ => (
            events.into_iter().next().expect("one item"),
            "application/json",
        ),
    };
    let body = Bytes::from(body);

    let mut headers = HeaderMap::new();
    for (name, value) in &ep.headers {
        // Custom headers were validated on the way in; anything that no longer
        // parses is skipped rather than failing the delivery.
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            headers.insert(n, v);
        }
    }
    // Ours are inserted last so that no custom header can override them.
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    let value = |v: String| HeaderValue::try_from(v).map_err(|e| e.to_string());
    match &signing {
        None | Some(Signing::StandardWebhooks {} | Signing::Svix {} | Signing::Ed25519 {}) => {
            let family = match signing {
                Some(Signing::Svix {}) => HeaderFamily::Svix,
                Some(Signing::StandardWebhooks {}) => HeaderFamily::Webhook,
                _ => defaults.family,
            };
            let keys = ep
                .signing_secrets(now)
                .into_iter()
                .map(EndpointSecret::parse)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("endpoint secret unusable: {e}"))?;
            let [id_h, ts_h, sig_h] = family.names();
            headers.insert(id_h, value(id.clone())?);
            headers.insert(ts_h, HeaderValue::from(ts));
            headers.insert(sig_h, value(sign_standard(&keys, &id, ts, &body))?);
        }
        Some(Signing::HmacSha256 {
            header,
            encoding,
            id_header,
        }) => {
            let name = |n: &str| HeaderName::try_from(n).map_err(|e| e.to_string());
            headers.insert(
                name(header)?,
                value(sign_body_hmac(&ep.secret, &body, *encoding))?,
            );
            headers.insert(name(id_header)?, value(id.clone())?);
        }
        Some(Signing::Stripe {}) => {
            headers.insert(
                "stripe-signature",
                value(sign_stripe(&ep.signing_secrets(now), ts, &body))?,
            );
        }
        Some(Signing::JwtHs256 { .. }) => {}
    }
    let timeout = settings
        .timeout_ms
        .map(Duration::from_millis)
        .unwrap_or(defaults.timeout);
    Ok(Outgoing {
        headers,
        body,
        timeout,
        id,
    })
}

/// The event as the endpoint wants it: the payload as stored, or wrapped in the
/// `{"id","type",<timestampField>,"data"}` envelope (payload bytes kept as they are).
fn shape(shape: Option<&PayloadShape>, it: &Item<'_>) -> String {
    match shape {
        Some(s) if s.envelope == Envelope::Standard => {
            let ts = match s.timestamp_format {
                TimestampFormat::Rfc3339 => {
                    json_str(&it.created_at.to_rfc3339_opts(SecondsFormat::Millis, true))
                }
                TimestampFormat::UnixMs => it.created_at.timestamp_millis().to_string(),
            };
            format!(
                r#"{{"id":{},"type":{},{}:{},"data":{}}}"#,
                json_str(it.msg_id),
                json_str(it.event_type),
                json_str(&s.timestamp_field),
                ts,
                it.payload
            )
        }
        _ => it.payload.to_string(),
    }
}

fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// A stable id for a batch: the same members give the same id on every retry.
fn batch_id(items: &[Item<'_>]) -> String {
    let mut h = Sha256::new();
    for it in items {
        h.update(it.msg_id.as_bytes());
        h.update(b",");
    }
    format!("batch_{}", &hex::encode(h.finalize())[..27])
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookd_core::model::OldSecret;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const DEFAULTS: Defaults = Defaults {
        family: HeaderFamily::Webhook,
        timeout: Duration::from_secs(15),
    };

    fn endpoint(secret: &str) -> Endpoint {
        let now = Utc::now();
        Endpoint {
            id: "ep_1".into(),
            app_id: "app_1".into(),
            uid: None,
            url: "https://example.com".into(),
            description: String::new(),
            disabled: false,
            throttle_rate: None,
            event_types: None,
            channels: None,
            metadata: Default::default(),
            headers: [("x-custom".to_string(), "yes".to_string())].into(),
            secret: secret.into(),
            old_secrets: vec![],
            settings: serde_json::json!({}),
            created_at: now,
            updated_at: now,
        }
    }

    fn settings(v: serde_json::Value) -> EndpointSettings {
        serde_json::from_value(v).unwrap()
    }

    fn item<'a>(id: &'a str, payload: &'a str) -> Item<'a> {
        Item {
            msg_id: id,
            event_type: "user.created",
            created_at: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
            payload,
        }
    }

    #[test]
    fn request_carries_the_official_vector_signature() {
        let at = DateTime::from_timestamp(1614265330, 0).unwrap();
        let items = [item(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            r#"{"test": 2432232314}"#,
        )];
        let out = build(
            &endpoint(SECRET),
            &EndpointSettings::default(),
            &items,
            at,
            DEFAULTS,
        )
        .unwrap();
        assert_eq!(
            out.headers["webhook-signature"],
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert_eq!(out.headers["webhook-id"], "msg_p5jXN8AQM9LWM0D4loKWxJek");
        assert_eq!(out.headers["webhook-timestamp"], "1614265330");
        assert_eq!(out.headers["content-type"], "application/json");
        assert_eq!(out.headers["x-custom"], "yes");
        assert_eq!(&out.body[..], br#"{"test": 2432232314}"#);
    }

    #[test]
    fn svix_family_comes_from_the_deployment_or_the_endpoint() {
        let items = [item("msg_1", "{}")];
        let svix_defaults = Defaults {
            family: HeaderFamily::Svix,
            ..DEFAULTS
        };
        let out = build(
            &endpoint(SECRET),
            &EndpointSettings::default(),
            &items,
            Utc::now(),
            svix_defaults,
        )
        .unwrap();
        assert!(
            out.headers.contains_key("svix-signature")
                && !out.headers.contains_key("webhook-signature")
        );
        let per_ep = settings(serde_json::json!({"signing": {"scheme": "svix"}}));
        let out = build(&endpoint(SECRET), &per_ep, &items, Utc::now(), DEFAULTS).unwrap();
        assert!(out.headers.contains_key("svix-signature"));
        let explicit = settings(serde_json::json!({"signing": {"scheme": "standard-webhooks"}}));
        let out = build(
            &endpoint(SECRET),
            &explicit,
            &items,
            Utc::now(),
            svix_defaults,
        )
        .unwrap();
        assert!(
            out.headers.contains_key("webhook-signature"),
            "an endpoint's explicit choice wins"
        );
    }

    #[test]
    fn during_rotation_every_unexpired_key_signs_current_first() {
        let mut ep = endpoint(SECRET);
        let now = Utc::now();
        ep.old_secrets = vec![
            OldSecret {
                key: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".into(),
                expires_at: now + chrono::Duration::hours(1),
            },
            OldSecret {
                key: "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
                expires_at: now - chrono::Duration::hours(1),
            },
        ];
        let items = [item("msg_1", "{}")];
        let out = build(&ep, &EndpointSettings::default(), &items, now, DEFAULTS).unwrap();
        let sig = out.headers["webhook-signature"]
            .to_str()
            .unwrap()
            .to_string();
        let entries: Vec<_> = sig.split(' ').collect();
        assert_eq!(entries.len(), 2, "expired key must not sign: {sig}");
        let only_current = build(
            &endpoint(SECRET),
            &EndpointSettings::default(),
            &items,
            now,
            DEFAULTS,
        )
        .unwrap();
        assert_eq!(
            entries[0],
            only_current.headers["webhook-signature"].to_str().unwrap()
        );
    }

    #[test]
    fn custom_headers_cannot_override_signature_headers() {
        let mut ep = endpoint(SECRET);
        ep.headers
            .insert("webhook-signature".into(), "forged".into());
        ep.headers
            .insert("content-type".into(), "text/plain".into());
        let out = build(
            &ep,
            &EndpointSettings::default(),
            &[item("msg_1", "{}")],
            Utc::now(),
            DEFAULTS,
        )
        .unwrap();
        assert_ne!(out.headers["webhook-signature"], "forged");
        assert_eq!(out.headers["content-type"], "application/json");
    }

    #[test]
    fn body_hmac_uses_the_configured_header_names() {
        let s = settings(
            serde_json::json!({"signing": {"scheme": "hmac-sha256", "header": "flashfx-signature", "idHeader": "flashfx-request-id"}}),
        );
        let ep = endpoint("flashfx-secret-0123456789");
        let out = build(
            &ep,
            &s,
            &[item("msg_9", r#"{"a":1}"#)],
            Utc::now(),
            DEFAULTS,
        )
        .unwrap();
        assert_eq!(
            out.headers["flashfx-signature"],
            sign_body_hmac(
                "flashfx-secret-0123456789",
                br#"{"a":1}"#,
                Default::default()
            )
        );
        assert_eq!(out.headers["flashfx-request-id"], "msg_9");
        assert!(!out.headers.contains_key("webhook-signature"));
    }

    #[test]
    fn stripe_scheme_signs_with_every_valid_key() {
        let s = settings(serde_json::json!({"signing": {"scheme": "stripe"}}));
        let now = Utc::now();
        let mut ep = endpoint("whsec_stripe_current_secret_0001");
        ep.old_secrets = vec![OldSecret {
            key: "whsec_stripe_old_secret_00000001".into(),
            expires_at: now + chrono::Duration::hours(1),
        }];
        let out = build(&ep, &s, &[item("msg_1", "{}")], now, DEFAULTS).unwrap();
        let expected = sign_stripe(
            &[
                "whsec_stripe_current_secret_0001",
                "whsec_stripe_old_secret_00000001",
            ],
            now.timestamp(),
            b"{}",
        );
        assert_eq!(out.headers["stripe-signature"], expected.as_str());
    }

    #[test]
    fn jwt_scheme_puts_events_in_the_claims() {
        let s = settings(serde_json::json!({"signing": {"scheme": "jwt-hs256", "kid": "kid-1"}}));
        let now = Utc::now();
        let ep = endpoint("fire-webhook-private-token-example-0001");
        let out = build(
            &ep,
            &s,
            &[item("msg_1", r#"{"type":"lodgement.received"}"#)],
            now,
            DEFAULTS,
        )
        .unwrap();
        assert_eq!(out.headers["content-type"], "application/jwt");
        let claims = format!(
            r#"{{"generationTime":{},"events":[{{"type":"lodgement.received"}}]}}"#,
            now.timestamp_millis()
        );
        assert_eq!(
            &out.body[..],
            sign_jwt_hs256(
                "fire-webhook-private-token-example-0001",
                "kid-1",
                claims.as_bytes()
            )
            .as_bytes()
        );
    }

    #[test]
    fn standard_envelope_wraps_the_payload_bytes() {
        let s = settings(
            serde_json::json!({"payload": {"envelope": "standard", "timestampField": "createdTimestamp", "timestampFormat": "unix-ms"}}),
        );
        let out = build(
            &endpoint(SECRET),
            &s,
            &[item("msg_1", r#"{"x": 1}"#)],
            Utc::now(),
            DEFAULTS,
        )
        .unwrap();
        assert_eq!(&out.body[..], br#"{"id":"msg_1","type":"user.created","createdTimestamp":1700000000123,"data":{"x": 1}}"#);
        let s = settings(
            serde_json::json!({"payload": {"envelope": "standard", "timestampField": "created"}}),
        );
        let out = build(
            &endpoint(SECRET),
            &s,
            &[item("msg_1", "{}")],
            Utc::now(),
            DEFAULTS,
        )
        .unwrap();
        assert_eq!(&out.body[..], br#"{"id":"msg_1","type":"user.created","created":"2023-11-14T22:13:20.123Z","data":{}}"#);
    }

    #[test]
    fn a_batch_is_one_array_signed_once_under_a_stable_id() {
        let s = settings(serde_json::json!({"batch": {"maxEvents": 10, "windowMs": 100}}));
        let items = [item("msg_1", r#"{"a":1}"#), item("msg_2", r#"{"b":2}"#)];
        let out = build(&endpoint(SECRET), &s, &items, Utc::now(), DEFAULTS).unwrap();
        assert_eq!(&out.body[..], br#"[{"a":1},{"b":2}]"#);
        assert!(out.id.starts_with("batch_"));
        let again = build(&endpoint(SECRET), &s, &items, Utc::now(), DEFAULTS).unwrap();
        assert_eq!(out.id, again.id, "a retried batch keeps its id");
        assert_eq!(
            out.headers["webhook-signature"]
                .to_str()
                .unwrap()
                .split(' ')
                .count(),
            1
        );
    }
}
