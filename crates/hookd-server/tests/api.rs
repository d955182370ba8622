//! Management API, cross-cutting behaviour: authentication and app-portal
//! tokens, idempotency keys, persistence across a restart, OpenAPI and health.
//! Resource-specific behaviour lives in the `api_*.rs` files beside this one.

mod common;

use common::{TestServer, TOKEN};
use serde_json::{json, Value};

/// Issues an app-portal token for `app` (id or uid).
async fn portal_token(srv: &TestServer, app: &str) -> String {
    let (s, b) = srv
        .post(&format!("/auth/app-portal-access/{app}"), json!({}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(b["url"].is_string(), "{b}");
    b["token"].as_str().unwrap().to_string()
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect()
}

/// How many apps exist, including any the server made for itself.
async fn app_count(srv: &TestServer) -> usize {
    let (s, b) = srv.get("/app?limit=250").await;
    assert_eq!(s, 200, "{b}");
    b["data"].as_array().unwrap().len()
}

// ---------------------------------------------------------------- auth

#[tokio::test]
async fn request_without_authorization_header_is_rejected_with_401() {
    let srv = TestServer::start().await;
    let resp = srv
        .http
        .get(format!("{}/api/v1/app", srv.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "authentication_failed", "{body}");
    assert!(body["detail"].is_string(), "{body}");
}

#[tokio::test]
async fn request_with_wrong_token_is_rejected_with_401_and_changes_nothing() {
    let srv = TestServer::start().await;
    let (_, before) = srv.get("/app").await;
    let (s, b) = srv
        .call_as(
            "not-the-token",
            "POST",
            "/app",
            Some(json!({"name": "x", "uid": "x"})),
            &[],
        )
        .await;
    assert_eq!(s, 401);
    assert_eq!(b["code"], "authentication_failed", "{b}");
    let (_, after) = srv.get("/app").await;
    assert_eq!(after, before, "nothing was created");
}

#[tokio::test]
async fn app_portal_token_reads_its_own_app_endpoints_and_messages() {
    let srv = TestServer::start().await;
    let app = srv.app("tenant-a").await;
    let ep = srv
        .endpoint(&app, json!({"url": "http://127.0.0.1:9/hook"}))
        .await;
    let msg = srv.send(&app, "order.created", json!({"n": 1})).await;
    let token = portal_token(&srv, "tenant-a").await;

    let (s, b) = srv
        .call_as(&token, "GET", &format!("/app/{app}"), None, &[])
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["id"], app);
    let (s, b) = srv.call_as(&token, "GET", "/app/tenant-a", None, &[]).await;
    assert_eq!((s, b["id"].as_str()), (200, Some(app.as_str())), "by uid");

    let (s, b) = srv
        .call_as(&token, "GET", &format!("/app/{app}/endpoint"), None, &[])
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(ids(&b), vec![ep["id"].as_str().unwrap().to_string()]);

    let (s, b) = srv
        .call_as(&token, "GET", &format!("/app/{app}/msg"), None, &[])
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(ids(&b), vec![msg.clone()]);
    let (s, b) = srv
        .call_as(&token, "GET", &format!("/app/{app}/msg/{msg}"), None, &[])
        .await;
    assert_eq!((s, &b["payload"]), (200, &json!({"n": 1})), "{b}");
}

#[tokio::test]
async fn app_portal_token_is_forbidden_for_other_apps_existing_or_not() {
    let srv = TestServer::start().await;
    srv.app("tenant-a").await;
    let other = srv.app("tenant-b").await;
    let token = portal_token(&srv, "tenant-a").await;

    for path in [
        format!("/app/{other}"),
        "/app/tenant-b".to_string(),
        format!("/app/{other}/endpoint"),
        format!("/app/{other}/msg"),
        "/app/no-such-app".to_string(),
        "/app/app_2ZsTOzfFHjMHIzbbE8nswd5iPGs".to_string(),
    ] {
        let (s, b) = srv.call_as(&token, "GET", &path, None, &[]).await;
        assert_eq!(s, 403, "{path}: {b}");
        assert!(b["code"].is_string() && b["detail"].is_string(), "{b}");
    }
    // Nor may it write to another app.
    let (s, _) = srv
        .call_as(
            &token,
            "POST",
            &format!("/app/{other}/msg"),
            Some(json!({"eventType": "a.b", "payload": {}})),
            &[],
        )
        .await;
    assert_eq!(s, 403);
    let (_, msgs) = srv.get(&format!("/app/{other}/msg")).await;
    assert_eq!(msgs["data"], json!([]));
}

#[tokio::test]
async fn app_portal_token_cannot_list_apps_or_create_event_types() {
    let srv = TestServer::start().await;
    srv.app("tenant-a").await;
    let token = portal_token(&srv, "tenant-a").await;

    let (s, b) = srv.call_as(&token, "GET", "/app", None, &[]).await;
    assert_eq!(s, 403, "{b}");
    assert!(b["code"].is_string() && b["detail"].is_string(), "{b}");

    let (s, b) = srv
        .call_as(
            &token,
            "POST",
            "/event-type",
            Some(json!({"name": "user.created", "description": "d"})),
            &[],
        )
        .await;
    assert_eq!(s, 403, "{b}");
    let (s, _) = srv.get("/event-type/user.created").await;
    assert_eq!(s, 404, "the event type was not created");

    let (s, _) = srv
        .call_as(
            &token,
            "POST",
            "/app",
            Some(json!({"name": "n", "uid": "sneaky"})),
            &[],
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = srv.get("/app/sneaky").await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn expire_all_revokes_app_portal_tokens() {
    let srv = TestServer::start().await;
    let app = srv.app("tenant-a").await;
    let token = portal_token(&srv, &app).await;
    let (s, _) = srv
        .call_as(&token, "GET", &format!("/app/{app}"), None, &[])
        .await;
    assert_eq!(s, 200, "token works before expiry");

    let (s, b) = srv
        .post(&format!("/auth/app/{app}/expire-all"), json!({}))
        .await;
    assert_eq!(s, 204, "{b}");

    let (s, b) = srv
        .call_as(&token, "GET", &format!("/app/{app}"), None, &[])
        .await;
    assert_eq!(s, 401, "{b}");
    assert_eq!(b["code"], "authentication_failed");
    // The admin token is unaffected.
    assert_eq!(srv.get(&format!("/app/{app}")).await.0, 200);
}

#[tokio::test]
async fn dashboard_access_returns_url_and_working_app_token() {
    let srv = TestServer::start().await;
    let app = srv.app("tenant-a").await;
    let (s, b) = srv
        .call("POST", &format!("/auth/dashboard-access/{app}"), None)
        .await;
    assert_eq!(s, 200, "{b}");
    let url = b["url"].as_str().expect("url");
    let token = b["token"].as_str().expect("token");
    assert!(url.starts_with("http"), "{url}");
    assert!(!token.is_empty());
    let (s, _) = srv
        .call_as(token, "GET", &format!("/app/{app}"), None, &[])
        .await;
    assert_eq!(s, 200);
    let (s, _) = srv.call_as(token, "GET", "/app", None, &[]).await;
    assert_eq!(s, 403, "still limited to its app");
}

// ---------------------------------------------------------------- idempotency

#[tokio::test]
async fn repeated_post_with_same_idempotency_key_replays_the_first_response() {
    let srv = TestServer::start().await;
    let (_, before) = srv.get("/app").await;
    let key = [("idempotency-key", "key-1")];
    let (s1, b1) = srv
        .call_as(TOKEN, "POST", "/app", Some(json!({"name": "one"})), &key)
        .await;
    assert_eq!(s1, 201, "{b1}");
    let (s2, b2) = srv
        .call_as(TOKEN, "POST", "/app", Some(json!({"name": "one"})), &key)
        .await;
    assert_eq!(s2, s1);
    assert_eq!(b2, b1, "identical body, same id");
    let (_, after) = srv.get("/app").await;
    let mut expected = ids(&before);
    expected.push(b1["id"].as_str().unwrap().to_string());
    let mut got = ids(&after);
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "exactly one app was created");
}

#[tokio::test]
async fn concurrent_posts_with_same_idempotency_key_create_one_app() {
    let srv = TestServer::start().await;
    let baseline = app_count(&srv).await;
    let key = [("idempotency-key", "racing")];
    let body = json!({"name": "raced", "uid": "raced"});
    let (a, b, c) = tokio::join!(
        srv.call_as(TOKEN, "POST", "/app", Some(body.clone()), &key),
        srv.call_as(TOKEN, "POST", "/app", Some(body.clone()), &key),
        srv.call_as(TOKEN, "POST", "/app", Some(body.clone()), &key),
    );
    for (s, r) in [&a, &b, &c] {
        assert_eq!(*s, 201, "{r}");
        assert_eq!(r, &a.1, "every caller sees the first response");
    }
    assert_eq!(app_count(&srv).await, baseline + 1);
}

#[tokio::test]
async fn same_idempotency_key_on_a_different_uri_is_independent() {
    let srv = TestServer::start().await;
    let baseline = app_count(&srv).await;
    let key = [("idempotency-key", "key-1")];
    let (s1, b1) = srv
        .call_as(TOKEN, "POST", "/app", Some(json!({"name": "one"})), &key)
        .await;
    let (s2, b2) = srv
        .call_as(
            TOKEN,
            "POST",
            "/app?get_if_exists=false",
            Some(json!({"name": "two"})),
            &key,
        )
        .await;
    assert_eq!((s1, s2), (201, 201), "{b1} {b2}");
    assert_ne!(b1["id"], b2["id"]);
    assert_eq!(b2["name"], "two");
    assert_eq!(app_count(&srv).await, baseline + 2);
}

#[tokio::test]
async fn failed_request_does_not_poison_its_idempotency_key() {
    let srv = TestServer::start().await;
    srv.app("taken").await;
    let baseline = app_count(&srv).await;
    let key = [("idempotency-key", "retry-me")];

    // 409: duplicate uid.
    let (s, b) = srv
        .call_as(
            TOKEN,
            "POST",
            "/app",
            Some(json!({"name": "n", "uid": "taken"})),
            &key,
        )
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["code"], "conflict");
    // 422: bad uid.
    let (s, _) = srv
        .call_as(
            TOKEN,
            "POST",
            "/app",
            Some(json!({"name": "n", "uid": "app_bad"})),
            &key,
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(app_count(&srv).await, baseline, "store unchanged");

    // Fixed body, same key: it runs for real.
    let (s, b) = srv
        .call_as(
            TOKEN,
            "POST",
            "/app",
            Some(json!({"name": "n", "uid": "fresh"})),
            &key,
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["uid"], "fresh");
    assert_eq!(app_count(&srv).await, baseline + 1);
}

// ---------------------------------------------------------------- persistence

#[tokio::test]
async fn apps_endpoints_and_messages_survive_a_restart() {
    let srv = TestServer::start().await;
    let app = srv.app("durable").await;
    let ep = srv
        .endpoint(
            &app,
            json!({"url": "http://127.0.0.1:9/hook", "uid": "ep-durable"}),
        )
        .await;
    let (s, msg) = srv
        .post(
            &format!("/app/{app}/msg"),
            json!({"eventType": "a.b", "eventId": "evt-1", "payload": {"keep": true}}),
        )
        .await;
    assert_eq!(s, 202, "{msg}");
    let (_, app_before) = srv.get(&format!("/app/{app}")).await;
    let (_, secret_before) = srv
        .get(&format!("/app/{app}/endpoint/ep-durable/secret"))
        .await;

    let dir = srv.stop().await;
    let srv = TestServer::start_in(dir, |_| {}).await;

    let (s, b) = srv.get("/app/durable").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b, app_before);
    let (s, b) = srv.get(&format!("/app/{app}/endpoint/ep-durable")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["id"], ep["id"]);
    assert_eq!(b["url"], "http://127.0.0.1:9/hook");
    let (_, secret) = srv
        .get(&format!("/app/{app}/endpoint/ep-durable/secret"))
        .await;
    assert_eq!(secret, secret_before);
    let (s, b) = srv.get(&format!("/app/{app}/msg/evt-1")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["id"], msg["id"]);
    assert_eq!(b["payload"], json!({"keep": true}));
}

// ---------------------------------------------------------------- openapi, health

#[tokio::test]
async fn openapi_document_is_served_without_auth() {
    let srv = TestServer::start().await;
    let resp = srv
        .http
        .get(format!("{}/api/v1/openapi.json", srv.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let doc: Value = resp.json().await.unwrap();
    let paths = doc["paths"].as_object().expect("paths");
    for p in ["/api/v1/app", "/api/v1/app/{app_id}/msg"] {
        assert!(paths.contains_key(p), "missing path {p}");
    }
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for s in ["ApplicationIn", "EndpointOut"] {
        assert!(schemas.contains_key(s), "missing schema {s}");
    }
}

#[tokio::test]
async fn health_answers_204() {
    let srv = TestServer::start().await;
    let (s, b) = srv.get("/health").await;
    assert_eq!(s, 204);
    assert_eq!(b, Value::Null);
}

#[tokio::test]
async fn read_only_portal_token_can_read_but_not_write() {
    let srv = TestServer::start().await;
    let app = srv.app("tenant-ro").await;
    let (s, access) = srv
        .post(
            "/auth/app-portal-access/tenant-ro",
            json!({"readOnly": true}),
        )
        .await;
    assert_eq!(s, 200, "{access}");
    let token = access["token"].as_str().unwrap().to_string();

    let (s, _) = srv
        .call_as(&token, "GET", &format!("/app/{app}"), None, &[])
        .await;
    assert_eq!(s, 200, "reading is allowed");
    let (s, b) = srv
        .call_as(
            &token,
            "POST",
            &format!("/app/{app}/endpoint"),
            Some(json!({"url": "https://example.com/h"})),
            &[],
        )
        .await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(b["code"], "insufficient_access");
    let (s, _) = srv
        .call_as(
            &token,
            "PATCH",
            &format!("/app/{app}"),
            Some(json!({"name": "x"})),
            &[],
        )
        .await;
    assert_eq!(s, 403);
    let (_, eps) = srv.get(&format!("/app/{app}/endpoint")).await;
    assert_eq!(
        eps["data"].as_array().unwrap().len(),
        0,
        "nothing was created"
    );
    let (_, got) = srv.get(&format!("/app/{app}")).await;
    assert_eq!(got["name"], "tenant-ro", "nothing was changed");
    let (s, _) = srv.call_as(&token, "POST", "/auth/logout", None, &[]).await;
    assert_eq!(s, 204, "a read-only token may still end its own session");

    // A token issued without readOnly may write.
    let (_, access) = srv
        .post("/auth/app-portal-access/tenant-ro", json!({}))
        .await;
    let rw = access["token"].as_str().unwrap();
    let (s, b) = srv
        .call_as(
            rw,
            "POST",
            &format!("/app/{app}/endpoint"),
            Some(json!({"url": "https://example.com/h"})),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{b}");
}

// ---------------------------------------------------------------- routing

/// Svix's own curl examples end collection paths with a slash
/// (`POST /api/v1/app/`); they reach the same handlers as the bare paths,
/// query strings included, and a path that names no route is still a 404
/// in the error shape.
#[tokio::test]
async fn a_trailing_slash_reaches_the_same_route() {
    let srv = TestServer::start().await;
    let (s, created) = srv
        .post("/app/", json!({"name": "Slash", "uid": "slash"}))
        .await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["uid"], "slash", "{created}");

    let (s, got) = srv.get("/app/slash/").await;
    assert_eq!(s, 200, "{got}");
    assert_eq!(got["id"], created["id"], "{got}");

    let (s, list) = srv.get("/app/?limit=250").await;
    assert_eq!(s, 200, "{list}");
    assert!(
        ids(&list).contains(&created["id"].as_str().unwrap().to_string()),
        "{list}"
    );

    let (s, ep) = srv
        .post(
            "/app/slash/endpoint/",
            json!({"url": "https://receiver.example/hook"}),
        )
        .await;
    assert_eq!(s, 201, "{ep}");

    let (s, b) = srv.get("/no-such-thing/").await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(b["code"], "not_found", "{b}");
}
