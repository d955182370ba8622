//! Management API: bad input of every kind gets the right 4xx in Svix's error
//! shape, and leaves the store exactly as it was.

mod common;

use common::{assert_validation, TestServer};
use serde_json::{json, Value};

/// Everything a bad request could have touched, for before/after comparison.
async fn snapshot(srv: &TestServer, app: &str) -> Value {
    let mut out = serde_json::Map::new();
    for path in [
        "/app?limit=250".to_string(),
        format!("/app/{app}"),
        format!("/app/{app}/endpoint?limit=250"),
        format!("/app/{app}/msg?limit=250"),
        "/event-type?include_archived=true".to_string(),
    ] {
        let (s, b) = srv.get(&path).await;
        assert_eq!(s, 200, "{path}: {b}");
        out.insert(path, b);
    }
    Value::Object(out)
}

/// An app with one endpoint, one event type and one message.
async fn populated() -> (TestServer, String) {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    let (s, _) = srv
        .post("/event-type", json!({"name": "a.b", "description": "d"}))
        .await;
    assert_eq!(s, 201);
    srv.endpoint(&app, json!({"url": "https://example.com/h", "uid": "e"}))
        .await;
    srv.send(&app, "a.b", json!({"n": 1})).await;
    (srv, app)
}

#[tokio::test]
async fn malformed_json_is_422_jsondecode_and_changes_nothing() {
    let (srv, app) = populated().await;
    let before = snapshot(&srv, &app).await;
    for (method, path) in [
        ("POST", "/app".to_string()),
        ("PUT", format!("/app/{app}")),
        ("PATCH", format!("/app/{app}")),
        ("POST", format!("/app/{app}/endpoint")),
        ("PATCH", format!("/app/{app}/endpoint/e")),
        ("POST", format!("/app/{app}/msg")),
        ("POST", "/event-type".to_string()),
    ] {
        for raw in [&b"{\"name\": \"x\","[..], b"{not json}", b""] {
            let (s, text) = srv.call_raw(method, &path, raw.to_vec()).await;
            assert_eq!(s, 422, "{method} {path} {raw:?}: {text}");
            let b: Value = serde_json::from_str(&text).expect("JSON error body");
            assert_eq!(b["detail"][0]["type"], "value_error.jsondecode", "{b}");
            assert_eq!(b["detail"][0]["loc"][0], "body", "{b}");
            assert!(b["detail"][0]["msg"].is_string(), "{b}");
        }
    }
    assert_eq!(snapshot(&srv, &app).await, before);
}

#[tokio::test]
async fn wrongly_typed_field_is_422_naming_the_field() {
    let (srv, app) = populated().await;
    let before = snapshot(&srv, &app).await;
    let (s, b) = srv.post("/app", json!({"name": 5})).await;
    assert_eq!(s, 422, "{b}");
    let e = assert_validation(&b, &["body", "name"]);
    assert_eq!(e["type"], "value_error");
    let (s, b) = srv
        .call("PATCH", &format!("/app/{app}"), Some(json!({"name": 5})))
        .await;
    assert_eq!(s, 422, "{b}");
    assert_validation(&b, &["body", "name"]);
    let (s, b) = srv
        .post(
            &format!("/app/{app}/endpoint"),
            json!({"url": "https://example.com/x", "channels": "eu"}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_validation(&b, &["body", "channels"]);
    let (s, b) = srv
        .post(
            &format!("/app/{app}/msg"),
            json!({"eventType": "a.b", "payload": {}, "tags": [1]}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_validation(&b, &["body", "tags", "0"]);
    assert_eq!(snapshot(&srv, &app).await, before);
}

#[tokio::test]
async fn unknown_enum_values_in_queries_are_422() {
    let (srv, app) = populated().await;
    let before = snapshot(&srv, &app).await;
    let (_, msgs) = srv.get(&format!("/app/{app}/msg")).await;
    let msg = msgs["data"][0]["id"].as_str().unwrap().to_string();
    for (path, param) in [
        (format!("/app/{app}/attempt/endpoint/e?status=9"), "status"),
        (format!("/app/{app}/attempt/msg/{msg}?status=x"), "status"),
        (
            format!("/app/{app}/attempt/endpoint/e?status_code_class=201"),
            "status_code_class",
        ),
        ("/app?order=sideways".to_string(), "order"),
        (format!("/app/{app}/msg?order=up"), "order"),
        (format!("/app/{app}/msg?with_content=maybe"), "with_content"),
        (
            "/event-type?include_archived=2".to_string(),
            "include_archived",
        ),
    ] {
        let (s, b) = srv.get(&path).await;
        assert_eq!(s, 422, "{path}: {b}");
        assert_validation(&b, &["query", param]);
    }
    assert_eq!(snapshot(&srv, &app).await, before);
}

#[tokio::test]
async fn missing_required_field_is_422_and_changes_nothing() {
    let (srv, app) = populated().await;
    let before = snapshot(&srv, &app).await;
    for (path, body, field) in [
        ("/app".to_string(), json!({"uid": "nameless"}), "name"),
        (
            format!("/app/{app}/endpoint"),
            json!({"uid": "urlless"}),
            "url",
        ),
        (
            format!("/app/{app}/msg"),
            json!({"payload": {}}),
            "eventType",
        ),
        (
            format!("/app/{app}/msg"),
            json!({"eventType": "a.b"}),
            "payload",
        ),
        (
            "/event-type".to_string(),
            json!({"name": "x.y"}),
            "description",
        ),
    ] {
        let (s, b) = srv.post(&path, body).await;
        assert_eq!(s, 422, "{path} without {field}: {b}");
        let e = &b["detail"][0];
        assert_eq!(e["loc"][0], "body", "{b}");
        assert!(e["type"].is_string(), "{b}");
        assert!(
            e["msg"].as_str().unwrap().contains(field)
                || e["loc"].as_array().unwrap().iter().any(|l| l == field),
            "the error names {field}: {b}"
        );
    }
    assert_eq!(snapshot(&srv, &app).await, before);
}

#[tokio::test]
async fn body_over_the_size_limit_is_413_and_stores_no_message() {
    let srv = TestServer::start_with(|s| s.server.max_body_bytes = 4096).await;
    let app = srv.app("acme").await;
    let big = "x".repeat(10 * 1024);
    let body = serde_json::to_vec(&json!({"eventType": "a.b", "payload": {"big": big}})).unwrap();
    let (s, text) = srv.call_raw("POST", &format!("/app/{app}/msg"), body).await;
    assert_eq!(s, 413, "{text}");
    let b: Value = serde_json::from_str(&text).expect("JSON error body");
    assert_eq!(b["code"], "payload_too_large", "{b}");
    assert!(b["detail"].is_string(), "{b}");
    let (_, msgs) = srv.get(&format!("/app/{app}/msg")).await;
    assert_eq!(msgs["data"], json!([]), "no message stored");
    // A small message still goes through.
    srv.send(&app, "a.b", json!({"small": true})).await;
}
