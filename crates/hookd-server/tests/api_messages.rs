//! Management API: messages (create, eventId, filters, on-the-fly apps,
//! expunge, precheck). The delivery views over them are in `api_attempts.rs`.

mod common;

use std::time::Duration;

use common::{assert_validation, eventually, TestServer};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

fn ids(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn post_msg(srv: &TestServer, app: &str, body: Value) -> Value {
    let (s, b) = srv.post(&format!("/app/{app}/msg"), body).await;
    assert_eq!(s, 202, "{b}");
    b
}

async fn all_msgs(srv: &TestServer, app: &str) -> Value {
    let (s, b) = srv.get(&format!("/app/{app}/msg?limit=250")).await;
    assert_eq!(s, 200, "{b}");
    b["data"].clone()
}

/// Waits until the wall clock is in a later millisecond than `ts` (an RFC 3339
/// timestamp), so the next message gets a strictly later timestamp.
async fn clock_past(ts: &str) {
    let t = chrono::DateTime::parse_from_rfc3339(ts)
        .unwrap()
        .timestamp_millis();
    eventually(WAIT, || async move {
        (chrono::Utc::now().timestamp_millis() > t).then_some(())
    })
    .await
    .expect("clock advances");
}

// ---------------------------------------------------------------- messages

#[tokio::test]
async fn created_message_is_202_and_echoes_its_payload() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    let b = post_msg(
        &srv,
        &app,
        json!({"eventType": "user.created", "payload": {"a": [1, 2], "b": "ü"},
               "channels": ["eu"], "tags": ["t1"]}),
    )
    .await;
    assert!(b["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(b["eventType"], "user.created");
    assert_eq!(b["payload"], json!({"a": [1, 2], "b": "ü"}));
    assert_eq!(b["channels"], json!(["eu"]));
    assert_eq!(b["tags"], json!(["t1"]));
    assert!(b["timestamp"].is_string());
    let (s, got) = srv
        .get(&format!("/app/{app}/msg/{}", b["id"].as_str().unwrap()))
        .await;
    assert_eq!((s, &got), (200, &b));
}

#[tokio::test]
async fn without_content_the_payload_is_an_empty_object() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    let (s, b) = srv
        .post(
            &format!("/app/{app}/msg?with_content=false"),
            json!({"eventType": "a.b", "payload": {"big": "data"}}),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["payload"], json!({}));
    let id = b["id"].as_str().unwrap();
    let (_, got) = srv
        .get(&format!("/app/{app}/msg/{id}?with_content=false"))
        .await;
    assert_eq!(got["payload"], json!({}));
    let (_, listed) = srv.get(&format!("/app/{app}/msg?with_content=false")).await;
    assert_eq!(listed["data"][0]["payload"], json!({}));
    let (_, full) = srv.get(&format!("/app/{app}/msg/{id}")).await;
    assert_eq!(full["payload"], json!({"big": "data"}), "stored in full");
}

#[tokio::test]
async fn duplicate_event_id_is_409_conflict_and_stores_nothing() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    post_msg(
        &srv,
        &app,
        json!({"eventType": "a.b", "eventId": "evt-1", "payload": {}}),
    )
    .await;
    let before = all_msgs(&srv, &app).await;
    let (s, b) = srv
        .post(
            &format!("/app/{app}/msg"),
            json!({"eventType": "a.b", "eventId": "evt-1", "payload": {"x": 1}}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["code"], "conflict");
    assert!(b["detail"].is_string());
    assert_eq!(all_msgs(&srv, &app).await, before);
}

#[tokio::test]
async fn message_is_addressable_by_id_and_by_event_id() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    let m = post_msg(
        &srv,
        &app,
        json!({"eventType": "a.b", "eventId": "evt-1", "payload": {"n": 1}}),
    )
    .await;
    let (s, by_id) = srv
        .get(&format!("/app/{app}/msg/{}", m["id"].as_str().unwrap()))
        .await;
    assert_eq!(s, 200);
    let (s, by_event) = srv.get("/app/acme/msg/evt-1").await;
    assert_eq!(s, 200);
    assert_eq!(by_id, by_event);
    assert_eq!(by_event["eventId"], "evt-1");
    let (s, b) = srv.get(&format!("/app/{app}/msg/evt-unknown")).await;
    assert_eq!((s, b["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn message_list_filters_by_event_types_channel_and_tag() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    let a = post_msg(
        &srv,
        &app,
        json!({"eventType": "a.x", "payload": {}, "channels": ["eu"]}),
    )
    .await;
    let b = post_msg(
        &srv,
        &app,
        json!({"eventType": "b.y", "payload": {}, "tags": ["t1"]}),
    )
    .await;
    let c = post_msg(
        &srv,
        &app,
        json!({"eventType": "c.z", "payload": {}, "channels": ["us", "eu"], "tags": ["t2"]}),
    )
    .await;
    let id = |m: &Value| m["id"].as_str().unwrap().to_string();

    let (s, l) = srv
        .get(&format!("/app/{app}/msg?event_types=a.x,c.z"))
        .await;
    assert_eq!(s, 200, "{l}");
    assert_eq!(ids(&l), sorted(vec![id(&a), id(&c)]));
    let (_, l) = srv.get(&format!("/app/{app}/msg?channel=eu")).await;
    assert_eq!(ids(&l), sorted(vec![id(&a), id(&c)]));
    let (_, l) = srv.get(&format!("/app/{app}/msg?channel=us")).await;
    assert_eq!(ids(&l), vec![id(&c)]);
    let (_, l) = srv.get(&format!("/app/{app}/msg?tag=t1")).await;
    assert_eq!(ids(&l), vec![id(&b)]);
    let (_, l) = srv.get(&format!("/app/{app}/msg?tag=none")).await;
    assert_eq!(l["data"], json!([]));
}

#[tokio::test]
async fn message_list_filters_by_before_and_after() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    let m1 = post_msg(&srv, &app, json!({"eventType": "a.b", "payload": {"i": 1}})).await;
    clock_past(m1["timestamp"].as_str().unwrap()).await;
    let m2 = post_msg(&srv, &app, json!({"eventType": "a.b", "payload": {"i": 2}})).await;
    clock_past(m2["timestamp"].as_str().unwrap()).await;
    let m3 = post_msg(&srv, &app, json!({"eventType": "a.b", "payload": {"i": 3}})).await;
    let ts = |m: &Value| m["timestamp"].as_str().unwrap().to_string();
    let id = |m: &Value| m["id"].as_str().unwrap().to_string();

    let (s, l) = srv.get(&format!("/app/{app}/msg?after={}", ts(&m1))).await;
    assert_eq!(s, 200, "{l}");
    assert_eq!(ids(&l), sorted(vec![id(&m2), id(&m3)]));
    let (_, l) = srv.get(&format!("/app/{app}/msg?before={}", ts(&m3))).await;
    assert_eq!(ids(&l), sorted(vec![id(&m1), id(&m2)]));
    let (_, l) = srv
        .get(&format!(
            "/app/{app}/msg?after={}&before={}",
            ts(&m1),
            ts(&m3)
        ))
        .await;
    assert_eq!(ids(&l), vec![id(&m2)]);
    // As the Python SDK sends it: datetime.isoformat() with a +00:00 offset.
    let iso = chrono::DateTime::parse_from_rfc3339(&ts(&m1))
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string();
    let (s, l) = srv
        .get(&format!("/app/{app}/msg?after={}", iso.replace('+', "%2B")))
        .await;
    assert_eq!(s, 200, "{l}");
    assert_eq!(ids(&l), sorted(vec![id(&m2), id(&m3)]));
    let (s, b) = srv.get(&format!("/app/{app}/msg?before=yesterday")).await;
    assert_eq!(s, 422, "{b}");
    assert_validation(&b, &["query", "before"]);
}

#[tokio::test]
async fn application_in_message_body_creates_a_missing_app() {
    let srv = TestServer::start().await;
    let (s, b) = srv
        .post(
            "/app/newco/msg",
            json!({"eventType": "a.b", "payload": {"x": 1},
                   "application": {"name": "New Co", "uid": "newco"}}),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let (s, app) = srv.get("/app/newco").await;
    assert_eq!(s, 200, "{app}");
    assert_eq!(app["name"], "New Co");
    let listed = all_msgs(&srv, "newco").await;
    assert_eq!(listed[0]["id"], b["id"]);
}

#[tokio::test]
async fn message_for_a_missing_app_is_404_and_creates_nothing() {
    let srv = TestServer::start().await;
    let (_, before) = srv.get("/app").await;
    let (s, b) = srv
        .post("/app/ghost/msg", json!({"eventType": "a.b", "payload": {}}))
        .await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(b["code"], "not_found");
    assert_eq!(srv.get("/app/ghost").await.0, 404);
    assert_eq!(srv.get("/app").await.1, before);
}

#[tokio::test]
async fn non_object_payload_is_422_at_body_payload() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    for bad in [json!([1]), json!("text"), json!(3), json!(null)] {
        let (s, b) = srv
            .post(
                &format!("/app/{app}/msg"),
                json!({"eventType": "a.b", "payload": bad}),
            )
            .await;
        assert_eq!(s, 422, "{bad}: {b}");
        assert_validation(&b, &["body", "payload"]);
    }
    assert_eq!(all_msgs(&srv, &app).await, json!([]));
}

#[tokio::test]
async fn expunged_message_content_reads_as_expired() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    let m = post_msg(
        &srv,
        &app,
        json!({"eventType": "a.b", "eventId": "e1", "payload": {"pii": "x"}}),
    )
    .await;
    let id = m["id"].as_str().unwrap();
    let (s, b) = srv
        .call("DELETE", &format!("/app/{app}/msg/{id}/content"), None)
        .await;
    assert_eq!(s, 204, "{b}");
    let (s, got) = srv.get(&format!("/app/{app}/msg/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(got["payload"], json!({"expired": true}));
    assert_eq!(got["eventType"], "a.b", "metadata kept");
    assert_eq!(
        all_msgs(&srv, &app).await[0]["payload"],
        json!({"expired": true})
    );
}

#[tokio::test]
async fn precheck_reports_whether_any_endpoint_would_receive() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    let path = format!("/app/{app}/msg/precheck/active");
    let (s, b) = srv.post(&path, json!({"eventType": "user.created"})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b, json!({"active": false}), "no endpoints");

    let (s, _) = srv
        .post(
            "/event-type",
            json!({"name": "user.created", "description": "d"}),
        )
        .await;
    assert_eq!(s, 201);
    srv.endpoint(
        &app,
        json!({"url": "https://example.com/h", "uid": "filtered", "eventTypes": ["user.created"]}),
    )
    .await;
    let (_, b) = srv.post(&path, json!({"eventType": "user.created"})).await;
    assert_eq!(b["active"], true);
    let (_, b) = srv.post(&path, json!({"eventType": "order.paid"})).await;
    assert_eq!(b["active"], false, "filtered out");

    // A disabled endpoint receives nothing; a channel-bound one only its channels.
    let (s, _) = srv
        .call(
            "PATCH",
            &format!("/app/{app}/endpoint/filtered"),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(s, 200);
    let (_, b) = srv.post(&path, json!({"eventType": "user.created"})).await;
    assert_eq!(b["active"], false, "only endpoint is disabled");
    srv.endpoint(
        &app,
        json!({"url": "https://example.com/c", "channels": ["eu"]}),
    )
    .await;
    let (_, b) = srv
        .post(&path, json!({"eventType": "x.y", "channels": ["us"]}))
        .await;
    assert_eq!(b["active"], false, "wrong channel");
    let (_, b) = srv
        .post(&path, json!({"eventType": "x.y", "channels": ["eu"]}))
        .await;
    assert_eq!(b["active"], true);
}
