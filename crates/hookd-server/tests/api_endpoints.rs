//! Management API: endpoints (filters, 1.x aliases, uid addressing, URL
//! rules), their signing secret and rotation, and their custom headers.

mod common;

use common::{assert_validation, TestServer};
use serde_json::{json, Value};

const URL: &str = "https://example.com/hook";
/// 24 random bytes, base64, as Svix generates them.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

async fn event_type(srv: &TestServer, name: &str) {
    let (s, b) = srv
        .post("/event-type", json!({"name": name, "description": name}))
        .await;
    assert_eq!(s, 201, "{b}");
}

async fn list(srv: &TestServer, app: &str) -> Value {
    let (s, b) = srv.get(&format!("/app/{app}/endpoint")).await;
    assert_eq!(s, 200, "{b}");
    b["data"].clone()
}

// ---------------------------------------------------------------- endpoints

#[tokio::test]
async fn endpoint_is_created_with_uid_filters_metadata_and_headers() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    event_type(&srv, "user.created").await;
    event_type(&srv, "user.deleted").await;
    let (s, ep) = srv
        .post(
            &format!("/app/{app}/endpoint"),
            json!({
                "url": URL, "uid": "primary", "description": "main",
                "eventTypes": ["user.created", "user.deleted"],
                "channels": ["eu", "vip"],
                "metadata": {"team": "core"},
                "headers": {"X-Tenant": "t1"}
            }),
        )
        .await;
    assert_eq!(s, 201, "{ep}");
    assert!(ep["id"].as_str().unwrap().starts_with("ep_"));
    assert_eq!(ep["uid"], "primary");
    assert_eq!(ep["url"], URL);
    assert_eq!(ep["description"], "main");
    assert_eq!(ep["eventTypes"], json!(["user.created", "user.deleted"]));
    assert_eq!(ep["channels"], json!(["eu", "vip"]));
    assert_eq!(ep["metadata"], json!({"team": "core"}));
    assert_eq!(ep["disabled"], false);
    let (_, h) = srv
        .get(&format!("/app/{app}/endpoint/primary/headers"))
        .await;
    assert_eq!(h["headers"], json!({"X-Tenant": "t1"}));
    assert_eq!(srv.get(&format!("/app/{app}/endpoint/primary")).await.1, ep);
}

#[tokio::test]
async fn endpoint_filter_naming_a_missing_event_type_is_422_at_its_index() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    event_type(&srv, "user.created").await;
    let (s, b) = srv
        .post(
            &format!("/app/{app}/endpoint"),
            json!({"url": URL, "eventTypes": ["user.created", "user.typo"]}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_validation(&b, &["body", "eventTypes", "1"]);
    assert_eq!(list(&srv, &app).await, json!([]));
}

#[tokio::test]
async fn endpoint_accepts_1x_aliases_and_emits_both_names_and_version() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    event_type(&srv, "user.created").await;
    let (s, ep) = srv
        .post(
            &format!("/app/{app}/endpoint"),
            json!({"url": URL, "filterTypes": ["user.created"], "rateLimit": 12, "version": 1}),
        )
        .await;
    assert_eq!(s, 201, "{ep}");
    assert_eq!(ep["eventTypes"], json!(["user.created"]));
    assert_eq!(ep["filterTypes"], json!(["user.created"]));
    assert_eq!(ep["throttleRate"], 12);
    assert_eq!(ep["rateLimit"], 12);
    assert_eq!(ep["version"], 1);
    let listed = &list(&srv, &app).await[0];
    assert_eq!(listed["filterTypes"], json!(["user.created"]));
    assert_eq!(listed["rateLimit"], 12);
    assert_eq!(listed["version"], 1);
}

#[tokio::test]
async fn endpoint_is_addressable_by_uid_for_get_patch_delete() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    let ep = srv
        .endpoint(
            &app,
            json!({"url": URL, "uid": "primary", "metadata": {"a": "1"}}),
        )
        .await;
    let (s, got) = srv.get("/app/acme/endpoint/primary").await;
    assert_eq!((s, &got), (200, &ep));

    let (s, b) = srv
        .call(
            "PATCH",
            &format!("/app/{app}/endpoint/primary"),
            Some(json!({"description": "patched", "disabled": true})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["id"], ep["id"]);
    assert_eq!(b["description"], "patched");
    assert_eq!(b["disabled"], true);
    assert_eq!(b["url"], URL, "unspecified fields unchanged");
    assert_eq!(b["metadata"], json!({"a": "1"}));

    let (s, _) = srv
        .call("DELETE", &format!("/app/{app}/endpoint/primary"), None)
        .await;
    assert_eq!(s, 204);
    let (s, b) = srv
        .get(&format!(
            "/app/{app}/endpoint/{}",
            ep["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, 404);
    assert_eq!(b["code"], "not_found");
    assert_eq!(list(&srv, &app).await, json!([]));
}

#[tokio::test]
async fn endpoint_patch_accepts_filter_types_alias_and_null_clears_filters() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    event_type(&srv, "user.created").await;
    srv.endpoint(
        &app,
        json!({"url": URL, "uid": "e", "channels": ["eu"], "rateLimit": 3}),
    )
    .await;
    let path = format!("/app/{app}/endpoint/e");
    let (s, b) = srv
        .call(
            "PATCH",
            &path,
            Some(json!({"filterTypes": ["user.created"]})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["eventTypes"], json!(["user.created"]));
    assert_eq!(b["filterTypes"], json!(["user.created"]));
    assert_eq!(b["channels"], json!(["eu"]), "untouched");
    assert_eq!(b["throttleRate"], 3);

    let (s, b) = srv
        .call(
            "PATCH",
            &path,
            Some(json!({"eventTypes": null, "channels": null, "throttleRate": null})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(
        b["eventTypes"].is_null() && b["filterTypes"].is_null(),
        "{b}"
    );
    assert!(b["channels"].is_null(), "{b}");
    assert!(
        b["throttleRate"].is_null() && b["rateLimit"].is_null(),
        "{b}"
    );
    assert_eq!(srv.get(&path).await.1, b);

    let (s, b) = srv
        .call("PATCH", &path, Some(json!({"filterTypes": ["no.such"]})))
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["detail"][0]["loc"][0], "body", "{b}");
    assert!(srv.get(&path).await.1["eventTypes"].is_null(), "unchanged");
}

#[tokio::test]
async fn endpoint_put_creates_by_uid_then_updates_keeping_the_secret() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    let path = format!("/app/{app}/endpoint/upserted");
    let (s, created) = srv
        .call("PUT", &path, Some(json!({"url": URL, "secret": SECRET})))
        .await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["uid"], "upserted");
    let (s, updated) = srv
        .call(
            "PUT",
            &path,
            Some(json!({"url": "https://example.org/v2", "description": "v2"})),
        )
        .await;
    assert_eq!(s, 200, "{updated}");
    assert_eq!(updated["id"], created["id"]);
    assert_eq!(updated["url"], "https://example.org/v2");
    assert_eq!(updated["uid"], "upserted");
    assert_eq!(srv.get(&format!("{path}/secret")).await.1["key"], SECRET);
    assert_eq!(list(&srv, &app).await.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn endpoint_uid_is_unique_per_app_only() {
    let srv = TestServer::start().await;
    let a = srv.app("a").await;
    let b_app = srv.app("b").await;
    srv.endpoint(&a, json!({"url": URL, "uid": "shared"})).await;
    let before = list(&srv, &a).await;
    let (s, b) = srv
        .post(
            &format!("/app/{a}/endpoint"),
            json!({"url": "https://example.org/other", "uid": "shared"}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["code"], "conflict");
    assert_eq!(list(&srv, &a).await, before);
    let other = srv
        .endpoint(&b_app, json!({"url": URL, "uid": "shared"}))
        .await;
    assert_eq!(other["uid"], "shared");
}

#[tokio::test]
async fn invalid_endpoint_url_is_422_at_body_url() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    let ep = srv.endpoint(&app, json!({"url": URL})).await;
    let id = ep["id"].as_str().unwrap();
    for bad in ["not a url", "ftp://x", "", "https://user:pw@example.com/"] {
        let (s, b) = srv
            .post(&format!("/app/{app}/endpoint"), json!({"url": bad}))
            .await;
        assert_eq!(s, 422, "{bad:?}: {b}");
        assert_validation(&b, &["body", "url"]);
        let (s, b) = srv
            .call(
                "PATCH",
                &format!("/app/{app}/endpoint/{id}"),
                Some(json!({"url": bad})),
            )
            .await;
        assert_eq!(s, 422, "patch {bad:?}: {b}");
        assert_validation(&b, &["body", "url"]);
    }
    assert_eq!(list(&srv, &app).await, json!([ep]));
}

#[tokio::test]
async fn https_only_server_rejects_http_endpoint_urls() {
    let srv = TestServer::start_with(|s| s.server.https_only = true).await;
    let app = srv.app("acme").await;
    let (s, b) = srv
        .post(
            &format!("/app/{app}/endpoint"),
            json!({"url": "http://example.com/hook"}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_validation(&b, &["body", "url"]);
    assert_eq!(list(&srv, &app).await, json!([]));
    srv.endpoint(&app, json!({"url": URL})).await;
}

// ---------------------------------------------------------------- secret

#[tokio::test]
async fn generated_secret_is_whsec_and_a_supplied_one_is_kept_verbatim() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    let gen = srv.endpoint(&app, json!({"url": URL})).await;
    let (s, b) = srv
        .get(&format!(
            "/app/{app}/endpoint/{}/secret",
            gen["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(b["key"].as_str().unwrap().starts_with("whsec_"), "{b}");

    srv.endpoint(&app, json!({"url": URL, "uid": "mine", "secret": SECRET}))
        .await;
    let (_, b) = srv.get(&format!("/app/{app}/endpoint/mine/secret")).await;
    assert_eq!(b["key"], SECRET);
}

#[tokio::test]
async fn invalid_secret_is_422_and_creates_nothing() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    for bad in [
        "whsec_short",
        "whsec_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        "whsk_AAAA",
    ] {
        let (s, b) = srv
            .post(
                &format!("/app/{app}/endpoint"),
                json!({"url": URL, "secret": bad}),
            )
            .await;
        assert_eq!(s, 422, "{bad}: {b}");
        assert_validation(&b, &["body", "secret"]);
    }
    assert_eq!(list(&srv, &app).await, json!([]));
}

#[tokio::test]
async fn rotating_the_secret_returns_the_new_key_which_get_then_shows() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    srv.endpoint(&app, json!({"url": URL, "uid": "e", "secret": SECRET}))
        .await;
    let path = format!("/app/{app}/endpoint/e/secret");
    let (s, b) = srv.post(&format!("{path}/rotate"), json!({})).await;
    assert_eq!(s, 200, "{b}");
    let new = b["key"].as_str().expect("key in body").to_string();
    assert!(new.starts_with("whsec_"));
    assert_ne!(new, SECRET);
    assert_eq!(srv.get(&path).await.1["key"], new);

    let (s, b) = srv
        .post(&format!("{path}/rotate"), json!({"key": OTHER_SECRET}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["key"], OTHER_SECRET);
    assert_eq!(srv.get(&path).await.1["key"], OTHER_SECRET);
}

#[tokio::test]
async fn rotation_with_bad_grace_period_or_key_is_422_and_keeps_the_secret() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    srv.endpoint(&app, json!({"url": URL, "uid": "e", "secret": SECRET}))
        .await;
    let path = format!("/app/{app}/endpoint/e/secret");
    for grace in [-1, 604_801] {
        let (s, b) = srv
            .post(
                &format!("{path}/rotate"),
                json!({"gracePeriodSeconds": grace}),
            )
            .await;
        assert_eq!(s, 422, "{grace}: {b}");
        assert_validation(&b, &["body", "gracePeriodSeconds"]);
    }
    let (s, b) = srv
        .post(&format!("{path}/rotate"), json!({"key": "whsec_nope"}))
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(srv.get(&path).await.1["key"], SECRET);
}

// ---------------------------------------------------------------- headers

#[tokio::test]
async fn sensitive_header_values_are_never_shown() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    srv.endpoint(&app, json!({"url": URL, "uid": "e"})).await;
    let path = format!("/app/{app}/endpoint/e/headers");
    let secret_value = "Bearer top-secret-7f3a9c";
    let (s, b) = srv
        .call(
            "PUT",
            &path,
            Some(json!({"headers": {"Authorization": secret_value, "X-Custom": "visible-1"}})),
        )
        .await;
    assert_eq!(s, 204, "{b}");

    let (s, text) = srv.call_raw("GET", &path, Vec::new()).await;
    assert_eq!(s, 200, "{text}");
    assert!(!text.contains("top-secret-7f3a9c"), "secret leaked: {text}");
    let b: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(b["headers"], json!({"X-Custom": "visible-1"}));
    let sensitive: Vec<String> = b["sensitive"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_ascii_lowercase())
        .collect();
    assert_eq!(sensitive, vec!["authorization"]);
    // Nor does the endpoint itself echo it.
    let (_, text) = srv
        .call_raw("GET", &format!("/app/{app}/endpoint/e"), Vec::new())
        .await;
    assert!(!text.contains("top-secret-7f3a9c"), "secret leaked: {text}");
}

#[tokio::test]
async fn patching_headers_adds_and_delete_headers_removes() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    srv.endpoint(
        &app,
        json!({"url": URL, "uid": "e", "headers": {"X-Old": "1", "X-Keep": "k"}}),
    )
    .await;
    let path = format!("/app/{app}/endpoint/e/headers");
    let (s, b) = srv
        .call(
            "PATCH",
            &path,
            Some(json!({"headers": {"X-New": "2"}, "deleteHeaders": ["X-Old"]})),
        )
        .await;
    assert_eq!(s, 204, "{b}");
    let (_, b) = srv.get(&path).await;
    assert_eq!(b["headers"], json!({"X-Keep": "k", "X-New": "2"}));
    assert_eq!(b["sensitive"], json!([]));
}

#[tokio::test]
async fn reserved_header_names_are_422_and_change_nothing() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    srv.endpoint(
        &app,
        json!({"url": URL, "uid": "e", "headers": {"X-Keep": "k"}}),
    )
    .await;
    let path = format!("/app/{app}/endpoint/e/headers");
    let before = srv.get(&path).await.1;
    for name in ["svix-id", "content-type", "webhook-signature"] {
        let (s, b) = srv
            .call("PUT", &path, Some(json!({"headers": {name: "x"}})))
            .await;
        assert_eq!(s, 422, "PUT {name}: {b}");
        assert_validation(&b, &["body", "headers", name]);
        let (s, b) = srv
            .call("PATCH", &path, Some(json!({"headers": {name: "x"}})))
            .await;
        assert_eq!(s, 422, "PATCH {name}: {b}");
        let (s, b) = srv
            .post(
                &format!("/app/{app}/endpoint"),
                json!({"url": URL, "headers": {name: "x"}}),
            )
            .await;
        assert_eq!(s, 422, "create {name}: {b}");
    }
    assert_eq!(srv.get(&path).await.1, before);
    assert_eq!(list(&srv, &app).await.as_array().unwrap().len(), 1);
}
