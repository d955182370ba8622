//! Builds the outgoing request for one attempt: body, signature headers and
//! the endpoint's custom headers. Pure, so every byte can be tested.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hookd_core::model::Endpoint;
use hookd_core::signing::{sign_standard, EndpointSecret};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};

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

    /// The endpoint's own choice (`settings.signing.scheme`), else the deployment's.
    pub fn for_endpoint(ep: &Endpoint, default: Self) -> Self {
        match ep
            .settings
            .pointer("/signing/scheme")
            .and_then(|v| v.as_str())
        {
            Some("svix") => Self::Svix,
            Some("standard-webhooks") => Self::Webhook,
            _ => default,
        }
    }
}

#[derive(Debug)]
pub struct Outgoing {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub timeout: Duration,
}

/// The request for delivering `payload` (message `msg_id`) to `ep` at `now`.
/// Fails only if the endpoint's stored secret cannot be used.
pub fn build(
    ep: &Endpoint,
    msg_id: &str,
    payload: &str,
    now: DateTime<Utc>,
    family: HeaderFamily,
    timeout: Duration,
) -> Result<Outgoing, String> {
    let keys = ep
        .signing_secrets(now)
        .into_iter()
        .map(EndpointSecret::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("endpoint secret unusable: {e}"))?;
    let body = Bytes::copy_from_slice(payload.as_bytes());
    let ts = now.timestamp();
    let signature = sign_standard(&keys, msg_id, ts, &body);

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
    let [id_h, ts_h, sig_h] = family.names();
    // Ours are inserted last so that no custom header can override them.
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        id_h,
        HeaderValue::try_from(msg_id).map_err(|e| e.to_string())?,
    );
    headers.insert(ts_h, HeaderValue::from(ts));
    headers.insert(
        sig_h,
        HeaderValue::try_from(signature).map_err(|e| e.to_string())?,
    );
    let timeout = ep
        .settings
        .get("timeoutMs")
        .and_then(|v| v.as_u64())
        .map(Duration::from_millis)
        .unwrap_or(timeout);
    Ok(Outgoing {
        headers,
        body,
        timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookd_core::model::OldSecret;

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

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn request_carries_the_official_vector_signature() {
        let ep = endpoint(SECRET);
        let at = DateTime::from_timestamp(1614265330, 0).unwrap();
        let out = build(
            &ep,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            r#"{"test": 2432232314}"#,
            at,
            HeaderFamily::Webhook,
            Duration::from_secs(15),
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
    fn svix_family_uses_svix_header_names() {
        let ep = endpoint(SECRET);
        let out = build(
            &ep,
            "msg_1",
            "{}",
            Utc::now(),
            HeaderFamily::Svix,
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(out.headers.contains_key("svix-signature"));
        assert!(!out.headers.contains_key("webhook-signature"));
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
        let out = build(
            &ep,
            "msg_1",
            "{}",
            now,
            HeaderFamily::Webhook,
            Duration::from_secs(1),
        )
        .unwrap();
        let sig = out.headers["webhook-signature"].to_str().unwrap();
        let entries: Vec<_> = sig.split(' ').collect();
        assert_eq!(entries.len(), 2, "expired key must not sign: {sig}");
        let only_current = build(
            &endpoint(SECRET),
            "msg_1",
            "{}",
            now,
            HeaderFamily::Webhook,
            Duration::from_secs(1),
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
            "msg_1",
            "{}",
            Utc::now(),
            HeaderFamily::Webhook,
            Duration::from_secs(1),
        )
        .unwrap();
        assert_ne!(out.headers["webhook-signature"], "forged");
        assert_eq!(out.headers["content-type"], "application/json");
    }
}
