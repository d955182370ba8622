//! Provider dialects end to end: each signing scheme's requests are checked by
//! a verifier hookd did not write (Python libraries; hookd-verify for Ed25519),
//! plus payload envelopes, batching, retry presets and settings validation.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use common::{eventually, Hit, Receiver, Reply, TestServer};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

/// Creates an endpoint with `settings` (and `secret` when given), sends one
/// message and returns the request the receiver saw plus the endpoint's secret.
async fn deliver_one(
    srv: &TestServer,
    app: &str,
    settings: Value,
    secret: Option<&str>,
) -> (Hit, String) {
    let rx = Receiver::ok().await;
    let mut body = json!({"url": rx.url});
    body.as_object_mut()
        .unwrap()
        .extend(settings.as_object().unwrap().clone());
    if let Some(s) = secret {
        body["secret"] = json!(s);
    }
    let ep = srv.endpoint(app, body).await;
    let (_, key) = srv
        .get(&format!(
            "/app/{app}/endpoint/{}/secret",
            ep["id"].as_str().unwrap()
        ))
        .await;
    srv.post(&format!("/app/{app}/msg"), json!({"eventType": "payment.settled", "payload": {"amount": 125, "currency": "EUR"}, "channels": [ep["id"]]}))
        .await;
    let hit = rx.wait_for(1, WAIT).await.remove(0);
    (hit, key["key"].as_str().unwrap().to_string())
}

fn case(id: &str, scheme: &str, secret: &str, hit: &Hit, extra: Value) -> Value {
    let mut c = json!({
        "id": id,
        "scheme": scheme,
        "secret": secret,
        "headers": hit.headers,
        "body_b64": base64::engine::general_purpose::STANDARD.encode(&hit.body),
    });
    c.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    c
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[tokio::test]
async fn every_scheme_is_accepted_by_an_independent_verifier() {
    let Ok(python) = std::env::var("HOOKD_TEST_PYTHON") else {
        println!("skipping: HOOKD_TEST_PYTHON not set (run scripts/test to create the venv)");
        return;
    };
    let srv = TestServer::start().await;
    let app = srv.app("dialects").await;
    // Endpoints listen on a channel named after themselves so each gets only its message.
    let mut cases = Vec::new();

    let (hit, key) = deliver_one(&srv, &app, json!({}), None).await;
    cases.push(case("default", "standard-webhooks", &key, &hit, json!({})));

    let (hit, key) = deliver_one(&srv, &app, json!({"signing": {"scheme": "svix"}}), None).await;
    cases.push(case("svix-headers", "svix", &key, &hit, json!({})));

    let stripe_secret = "whsec_stripe_style_secret_0123456789";
    let (hit, key) = deliver_one(&srv, &app, json!({"signing": {"scheme": "stripe"}, "payload": {"envelope": "standard", "timestampField": "created"}}), Some(stripe_secret)).await;
    assert_eq!(key, stripe_secret);
    cases.push(case("stripe", "stripe", &key, &hit, json!({})));

    let fire = "fire-webhook-private-token-example-0001";
    let (hit, key) = deliver_one(
        &srv,
        &app,
        json!({"signing": {"scheme": "jwt-hs256", "kid": "003e97ee-ac38-40bc-b097-3f07454258dd"}}),
        Some(fire),
    )
    .await;
    assert_eq!(hit.header("content-type"), "application/jwt");
    cases.push(case(
        "fire-jwt",
        "jwt-hs256",
        &key,
        &hit,
        json!({"kid": "003e97ee-ac38-40bc-b097-3f07454258dd"}),
    ));

    let flashfx = json!({"signing": {"scheme": "hmac-sha256", "header": "flashfx-signature", "idHeader": "flashfx-request-id"}});
    let (hit, key) = deliver_one(&srv, &app, flashfx, Some("flashfx-endpoint-secret-0001")).await;
    assert!(hit.header("flashfx-request-id").starts_with("msg_"));
    cases.push(case(
        "flashfx-hmac",
        "hmac-sha256",
        &key,
        &hit,
        json!({"header": "flashfx-signature", "encoding": "base64"}),
    ));

    let flux = json!({"signing": {"scheme": "hmac-sha256", "header": "flux-signature", "encoding": "hex"}});
    let (hit, key) = deliver_one(&srv, &app, flux, Some("flux-endpoint-secret-000001")).await;
    cases.push(case(
        "flux-hmac-hex",
        "hmac-sha256",
        &key,
        &hit,
        json!({"header": "flux-signature", "encoding": "hex"}),
    ));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cases.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&cases).unwrap()).unwrap();
    let script = repo_root().join("tests/verify/verify_webhooks.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(&file)
        .output()
        .expect("python runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(
        out.status.success(),
        "an independent verifier rejected a webhook:\n{text}"
    );
    assert!(text.contains(&format!("{} verified", cases.len())));
}

#[tokio::test]
async fn ed25519_endpoints_sign_v1a_that_hookd_verify_accepts() {
    let srv = TestServer::start().await;
    let app = srv.app("ed").await;
    let (hit, public) =
        deliver_one(&srv, &app, json!({"signing": {"scheme": "ed25519"}}), None).await;
    assert!(
        public.starts_with("whpk_"),
        "the secret endpoint returns the public key"
    );
    assert!(hit.header("webhook-signature").starts_with("v1a,"));
    hookd_verify::StandardWebhooks::new(&public)
        .unwrap()
        .verify(&hit.headers, &hit.body)
        .unwrap();
    let mut tampered = hit.body.to_vec();
    tampered[2] ^= 1;
    assert!(hookd_verify::StandardWebhooks::new(&public)
        .unwrap()
        .verify(&hit.headers, &tampered)
        .is_err());
}

#[tokio::test]
async fn ed25519_rotation_signs_with_both_keys() {
    let srv = TestServer::start().await;
    let rx = Receiver::ok().await;
    let app = srv.app("edrot").await;
    let ep = srv
        .endpoint(
            &app,
            json!({"url": rx.url, "signing": {"scheme": "ed25519"}}),
        )
        .await;
    let ep_id = ep["id"].as_str().unwrap();
    let (_, old) = srv
        .get(&format!("/app/{app}/endpoint/{ep_id}/secret"))
        .await;
    let (s, new) = srv
        .post(
            &format!("/app/{app}/endpoint/{ep_id}/secret/rotate"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200);
    assert!(new["key"].as_str().unwrap().starts_with("whpk_"));
    srv.send(&app, "a.b", json!({})).await;
    let hit = rx.wait_for(1, WAIT).await.remove(0);
    assert_eq!(hit.header("webhook-signature").matches("v1a,").count(), 2);
    for key in [&old["key"], &new["key"]] {
        hookd_verify::StandardWebhooks::new(key.as_str().unwrap())
            .unwrap()
            .verify(&hit.headers, &hit.body)
            .unwrap();
    }
}

#[tokio::test]
async fn standard_envelope_wraps_payloads_as_the_seeds_describe() {
    let srv = TestServer::start().await;
    let app = srv.app("env").await;
    let flagright = json!({"payload": {"envelope": "standard", "timestampField": "createdTimestamp", "timestampFormat": "unix-ms"}});
    let (hit, _) = deliver_one(&srv, &app, flagright, None).await;
    let v: Value = serde_json::from_slice(&hit.body).unwrap();
    assert_eq!(v["type"], "payment.settled");
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
    assert!(v["createdTimestamp"].as_i64().unwrap() > 1_700_000_000_000);
    assert_eq!(v["data"], json!({"amount": 125, "currency": "EUR"}));
    let flux = json!({"payload": {"envelope": "standard", "timestampField": "created"}});
    let (hit, _) = deliver_one(&srv, &app, flux, None).await;
    let v: Value = serde_json::from_slice(&hit.body).unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(v["created"].as_str().unwrap()).is_ok());
}

#[tokio::test]
async fn fifty_messages_in_a_window_arrive_as_a_few_batches_each_recorded() {
    let srv = TestServer::start().await;
    let rx = Receiver::start(|_| Reply::ok().body("batch taken")).await;
    let app = srv.app("batch").await;
    let ep = srv
        .endpoint(
            &app,
            json!({"url": rx.url, "batch": {"maxEvents": 100, "windowMs": 1000}}),
        )
        .await;
    let ep_id = ep["id"].as_str().unwrap().to_string();
    // Sent side by side, so that they all fall within a window or two even on
    // a loaded machine (one after another, fifty POSTs can outlast several).
    let app_ref = &app;
    let sends = (0..50).map(|i| srv.send(app_ref, "a.b", json!({"i": i})));
    let ids = futures::future::join_all(sends).await;
    assert_eq!(ids.len(), 50);
    let delivered = eventually(WAIT, || async {
        let (_, s) = srv.get(&format!("/app/{app}/endpoint/{ep_id}/stats")).await;
        (s["success"] == 50).then_some(())
    })
    .await;
    assert!(
        delivered.is_some(),
        "every batched message is recorded as delivered"
    );
    let hits = rx.hits();
    assert!(
        hits.len() < 5,
        "50 messages in one window should need fewer than 5 requests, took {}",
        hits.len()
    );
    let mut seen: Vec<i64> = hits
        .iter()
        .flat_map(|h| {
            serde_json::from_slice::<Vec<Value>>(&h.body).expect("a batch body is a JSON array")
        })
        .map(|e| e["i"].as_i64().unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, (0..50).collect::<Vec<_>>());
    for h in &hits {
        let (_, key) = srv
            .get(&format!("/app/{app}/endpoint/{ep_id}/secret"))
            .await;
        hookd_verify::StandardWebhooks::new(key["key"].as_str().unwrap())
            .unwrap()
            .verify(&h.headers, &h.body)
            .unwrap();
    }
    let (_, attempts) = srv
        .get(&format!("/app/{app}/attempt/endpoint/{ep_id}?limit=250"))
        .await;
    let attempts = attempts["data"].as_array().unwrap();
    assert_eq!(attempts.len(), 50, "one attempt record per message");
    for a in attempts {
        assert_eq!(
            a["response"], "batch taken",
            "each message's attempt keeps the batch's answer: {a}"
        );
    }
}

#[tokio::test]
async fn a_failed_batch_is_retried_as_a_batch() {
    let srv = TestServer::start_with(|s| {
        s.engine.retry = hookd_core::retry::RetryPolicy::parse_schedule("0.3")
            .unwrap()
            .with_jitter(0.0)
    })
    .await;
    // The probe succeeds, the first batch fails once, its retry succeeds.
    let rx = Receiver::start(|n| {
        if n == 1 {
            Reply::status(500)
        } else {
            Reply::ok()
        }
    })
    .await;
    let app = srv.app("batchretry").await;
    let ep = srv
        .endpoint(
            &app,
            json!({"url": rx.url, "batch": {"maxEvents": 10, "windowMs": 300}}),
        )
        .await;
    let ep_id = ep["id"].as_str().unwrap().to_string();
    // The first message probes the endpoint alone; the next five are gathered into one batch.
    srv.send(&app, "a.b", json!({"i": 0})).await;
    rx.wait_for(1, WAIT).await;
    eventually(WAIT, || async {
        let (_, s) = srv.get(&format!("/app/{app}/endpoint/{ep_id}/stats")).await;
        (s["success"] == 1).then_some(())
    })
    .await
    .expect("the probe is recorded");
    for i in 1..6 {
        srv.send(&app, "a.b", json!({"i": i})).await;
    }
    let done = eventually(WAIT, || async {
        let (_, s) = srv.get(&format!("/app/{app}/endpoint/{ep_id}/stats")).await;
        (s["success"] == 6).then_some(())
    })
    .await;
    assert!(done.is_some(), "every message is delivered in the end");
    let hits = rx.hits();
    let sizes: Vec<usize> = hits
        .iter()
        .map(|h| serde_json::from_slice::<Vec<Value>>(&h.body).unwrap().len())
        .collect();
    assert_eq!(
        sizes,
        [1, 5, 5],
        "probe, failed batch, the same batch again"
    );
    assert_eq!(
        hits[1].body, hits[2].body,
        "the retried batch carries the same events"
    );
    assert_eq!(
        hits[1].header("webhook-id"),
        hits[2].header("webhook-id"),
        "the retried batch keeps its id"
    );
}

#[tokio::test]
async fn endpoint_retry_preset_overrides_the_deployment_schedule() {
    let srv = TestServer::start().await;
    let rx = Receiver::start(|_| Reply::status(500)).await;
    let app = srv.app("preset").await;
    srv.endpoint(&app, json!({"url": rx.url, "retry": {"preset": "flashfx"}}))
        .await;
    let msg = srv.send(&app, "a.b", json!({})).await;
    rx.wait_for(1, WAIT).await;
    let next = eventually(WAIT, || async {
        let (_, b) = srv.get(&format!("/app/{app}/msg/{msg}/endpoint")).await;
        b["data"][0]["nextAttempt"].as_str().map(str::to_string)
    })
    .await
    .expect("a retry is scheduled");
    let wait = chrono::DateTime::parse_from_rfc3339(&next)
        .unwrap()
        .with_timezone(&chrono::Utc)
        - chrono::Utc::now();
    let secs = wait.num_milliseconds() as f64 / 1000.0;
    assert!(
        (3.5..=7.3).contains(&secs),
        "flashfx's first retry is 6 s (±20%) away, got {secs:.2} s"
    );
}

#[tokio::test]
async fn bad_settings_get_a_422_naming_the_field_and_store_nothing() {
    let srv = TestServer::start().await;
    let app = srv.app("badsettings").await;
    let ed_secret = hookd_core::signing::EndpointSecret::generate_ed25519().to_secret_string();
    let cases = [
        (json!({"signing": {"scheme": "md5"}}), "signing"),
        (
            json!({"signing": {"scheme": "stripe"}, "secret": ed_secret}),
            "secret",
        ),
        (
            json!({"signing": {"scheme": "hmac-sha256"}, "secret": ed_secret}),
            "secret",
        ),
        (
            json!({"batch": {"maxEvents": 0, "windowMs": 100}}),
            "maxEvents",
        ),
        (json!({"retry": {"schedule": [5, -1]}}), "schedule"),
        (json!({"retry": {"preset": "weekly"}}), "preset"),
        (json!({"timeoutMs": 60000}), "timeoutMs"),
        (json!({"signing": {"scheme": "jwt-hs256"}}), "signing"),
        (json!({"payload": {"envelope": "fancy"}}), "payload"),
    ];
    for (settings, field) in cases {
        let mut body = json!({"url": "https://example.com/hook"});
        body.as_object_mut()
            .unwrap()
            .extend(settings.as_object().unwrap().clone());
        let (s, err) = srv
            .post(&format!("/app/{app}/endpoint"), body.clone())
            .await;
        assert_eq!(s, 422, "{body} -> {err}");
        let locs = err["detail"].to_string();
        assert!(
            locs.contains(field),
            "{body}: the error should name {field}: {err}"
        );
    }
    let (_, list) = srv.get(&format!("/app/{app}/endpoint")).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        0,
        "nothing was stored"
    );
}

#[tokio::test]
async fn settings_round_trip_and_survive_an_sdk_style_upsert() {
    let srv = TestServer::start().await;
    let app = srv.app("roundtrip").await;
    let settings = json!({
        "signing": {"scheme": "hmac-sha256", "header": "flashfx-signature", "encoding": "base64", "idHeader": "flashfx-request-id"},
        "payload": {"envelope": "standard", "timestampField": "created", "timestampFormat": "rfc3339"},
        "retry": {"preset": "flashfx"},
        "timeoutMs": 5000,
        "batch": {"maxEvents": 10, "windowMs": 50}
    });
    let mut body = json!({"url": "https://example.com/h", "uid": "ff"});
    body.as_object_mut()
        .unwrap()
        .extend(settings.as_object().unwrap().clone());
    srv.endpoint(&app, body).await;
    let (_, got) = srv.get(&format!("/app/{app}/endpoint/ff")).await;
    for k in ["signing", "payload", "retry", "timeoutMs", "batch"] {
        assert_eq!(got[k], settings[k], "{k}");
    }
    // An SDK knows nothing of the extensions; its PUT must not wipe them.
    let (s, _) = srv
        .call(
            "PUT",
            &format!("/app/{app}/endpoint/ff"),
            Some(json!({"url": "https://example.com/h2"})),
        )
        .await;
    assert_eq!(s, 200);
    let (_, got) = srv.get(&format!("/app/{app}/endpoint/ff")).await;
    assert_eq!(got["signing"], settings["signing"]);
    assert_eq!(got["url"], "https://example.com/h2");
    // PATCH with null resets one setting to its default.
    let (s, _) = srv
        .call(
            "PATCH",
            &format!("/app/{app}/endpoint/ff"),
            Some(json!({"batch": null})),
        )
        .await;
    assert_eq!(s, 200);
    let (_, got) = srv.get(&format!("/app/{app}/endpoint/ff")).await;
    assert!(got.get("batch").is_none() || got["batch"].is_null());
    assert_eq!(got["retry"], settings["retry"]);
}
