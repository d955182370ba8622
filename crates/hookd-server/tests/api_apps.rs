//! Management API: applications (CRUD by id and uid, upsert, patch),
//! cursor pagination, and the uid rules shared by apps, endpoints and messages.

mod common;

use common::{assert_validation, TestServer};
use serde_json::{json, Value};

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every app, including any the server made for itself (operational webhooks),
/// so tests compare against a baseline taken before they act.
async fn all_apps(srv: &TestServer) -> Value {
    let (s, b) = srv.get("/app?limit=250").await;
    assert_eq!(s, 200, "{b}");
    b["data"].clone()
}

async fn app_count(srv: &TestServer) -> usize {
    all_apps(srv).await.as_array().unwrap().len()
}

// ---------------------------------------------------------------- CRUD

#[tokio::test]
async fn creating_an_app_returns_201_with_its_fields() {
    let srv = TestServer::start().await;
    let (s, b) = srv
        .post(
            "/app",
            json!({"name": "Acme", "uid": "acme", "throttleRate": 5, "metadata": {"k": "v"}}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let id = b["id"].as_str().unwrap();
    assert!(id.starts_with("app_") && id.len() == 31, "{id}");
    assert_eq!(b["name"], "Acme");
    assert_eq!(b["uid"], "acme");
    assert_eq!(b["throttleRate"], 5);
    assert_eq!(b["metadata"], json!({"k": "v"}));
    assert!(b["createdAt"].is_string() && b["updatedAt"].is_string());
    let (s, got) = srv.get(&format!("/app/{id}")).await;
    assert_eq!((s, &got), (200, &b));
}

#[tokio::test]
async fn get_if_exists_returns_the_existing_app_with_200() {
    let srv = TestServer::start().await;
    let id = srv.app("acme").await;
    let before = all_apps(&srv).await;
    let (s, b) = srv
        .post(
            "/app?get_if_exists=true",
            json!({"name": "other name", "uid": "acme"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["id"], id);
    assert_eq!(b["name"], "acme", "the existing app, body ignored");
    assert_eq!(all_apps(&srv).await, before);
    // A uid that does not exist yet is created.
    let (s, b) = srv
        .post(
            "/app?get_if_exists=true",
            json!({"name": "new", "uid": "newco"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
}

#[tokio::test]
async fn duplicate_app_uid_is_409_and_changes_nothing() {
    let srv = TestServer::start().await;
    srv.app("acme").await;
    let before = all_apps(&srv).await;
    let (s, b) = srv
        .post("/app", json!({"name": "again", "uid": "acme"}))
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["code"], "conflict");
    assert!(b["detail"].is_string());
    assert_eq!(all_apps(&srv).await, before);
}

#[tokio::test]
async fn app_is_addressable_by_id_and_by_uid_for_get_put_patch_delete() {
    let srv = TestServer::start().await;
    let baseline = all_apps(&srv).await;
    let id = srv.app("acme").await;
    let (_, by_id) = srv.get(&format!("/app/{id}")).await;
    let (s, by_uid) = srv.get("/app/acme").await;
    assert_eq!((s, &by_uid), (200, &by_id));

    let (s, b) = srv
        .call("PUT", "/app/acme", Some(json!({"name": "Put by uid"})))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (b["id"].as_str(), b["name"].as_str()),
        (Some(id.as_str()), Some("Put by uid"))
    );
    let (s, b) = srv
        .call(
            "PUT",
            &format!("/app/{id}"),
            Some(json!({"name": "Put by id"})),
        )
        .await;
    assert_eq!((s, b["name"].as_str()), (200, Some("Put by id")));

    let (s, b) = srv
        .call(
            "PATCH",
            "/app/acme",
            Some(json!({"name": "Patched by uid"})),
        )
        .await;
    assert_eq!(
        (s, b["name"].as_str()),
        (200, Some("Patched by uid")),
        "{b}"
    );
    let (s, b) = srv
        .call(
            "PATCH",
            &format!("/app/{id}"),
            Some(json!({"name": "Patched by id"})),
        )
        .await;
    assert_eq!((s, b["name"].as_str()), (200, Some("Patched by id")), "{b}");

    let (s, _) = srv.call("DELETE", "/app/acme", None).await;
    assert_eq!(s, 204);
    let (s, b) = srv.get(&format!("/app/{id}")).await;
    assert_eq!(s, 404);
    assert_eq!(b["code"], "not_found");

    let other = srv.app("beta").await;
    let (s, _) = srv.call("DELETE", &format!("/app/{other}"), None).await;
    assert_eq!(s, 204);
    let (s, _) = srv.get("/app/beta").await;
    assert_eq!(s, 404);
    assert_eq!(all_apps(&srv).await, baseline);
}

#[tokio::test]
async fn put_upserts_creating_with_201_then_updating_with_200() {
    let srv = TestServer::start().await;
    let baseline = app_count(&srv).await;
    let (s, created) = srv
        .call(
            "PUT",
            "/app/upserted",
            Some(json!({"name": "First", "metadata": {"a": "1"}})),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["uid"], "upserted");
    assert_eq!(created["metadata"], json!({"a": "1"}));

    let (s, updated) = srv
        .call("PUT", "/app/upserted", Some(json!({"name": "Second"})))
        .await;
    assert_eq!(s, 200, "{updated}");
    assert_eq!(updated["id"], created["id"]);
    assert_eq!(updated["name"], "Second");
    assert_eq!(app_count(&srv).await, baseline + 1);
}

#[tokio::test]
async fn patch_leaves_unspecified_fields_alone_and_null_clears_optional_ones() {
    let srv = TestServer::start().await;
    let (_, app) = srv
        .post(
            "/app",
            json!({"name": "Acme", "uid": "acme", "throttleRate": 7, "metadata": {"k": "v"}}),
        )
        .await;
    let id = app["id"].as_str().unwrap();

    let (s, b) = srv
        .call(
            "PATCH",
            &format!("/app/{id}"),
            Some(json!({"name": "Renamed"})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["name"], "Renamed");
    assert_eq!(b["uid"], "acme");
    assert_eq!(b["throttleRate"], 7);
    assert_eq!(b["metadata"], json!({"k": "v"}));

    let (s, b) = srv
        .call(
            "PATCH",
            &format!("/app/{id}"),
            Some(json!({"uid": null, "throttleRate": null, "metadata": null})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["name"], "Renamed", "name untouched");
    assert_eq!(b["uid"], Value::Null);
    assert_eq!(b["throttleRate"], Value::Null);
    assert_eq!(b["metadata"], json!({}));
    let (_, stored) = srv.get(&format!("/app/{id}")).await;
    assert_eq!(stored, b);
    assert_eq!(
        srv.get("/app/acme").await.0,
        404,
        "old uid no longer resolves"
    );
}

// ---------------------------------------------------------------- pagination

/// Creates seven apps; returns the ids of every app (ascending), which
/// includes any the server made for itself.
async fn seven_apps(srv: &TestServer) -> Vec<String> {
    let mut ids: Vec<String> = all_apps(srv)
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    for i in 0..7 {
        ids.push(srv.app(&format!("page-app-{i}")).await);
    }
    ids.sort();
    ids
}

#[tokio::test]
async fn app_list_pages_forward_with_iterator_until_done() {
    let srv = TestServer::start().await;
    let expected = seven_apps(&srv).await;
    let mut seen = Vec::new();
    let mut iterator: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &iterator {
            None => "/app?limit=3".to_string(),
            Some(it) => format!("/app?limit=3&iterator={it}"),
        };
        let (s, b) = srv.get(&path).await;
        assert_eq!(s, 200, "{b}");
        assert!(b.get("iterator").is_some(), "iterator key is required: {b}");
        let page = ids(&b);
        assert!(page.len() <= 3);
        seen.extend(page);
        pages += 1;
        assert!(pages <= expected.len(), "too many pages");
        if b["done"] == json!(true) {
            break;
        }
        iterator = Some(b["iterator"].as_str().unwrap().to_string());
    }
    assert_eq!(pages, expected.len().div_ceil(3));
    assert_eq!(seen, expected, "each id exactly once, ascending");
}

#[tokio::test]
async fn prev_iterator_pages_back_to_the_previous_page() {
    let srv = TestServer::start().await;
    let expected = seven_apps(&srv).await;
    let (_, first) = srv.get("/app?limit=3").await;
    assert_eq!(ids(&first), expected[..3]);
    assert_eq!(first["done"], false);
    let it = first["iterator"].as_str().unwrap();
    let (_, second) = srv.get(&format!("/app?limit=3&iterator={it}")).await;
    assert_eq!(ids(&second), expected[3..6]);
    let prev = second["prevIterator"].as_str().expect("prevIterator");
    let (s, back) = srv.get(&format!("/app?limit=3&iterator={prev}")).await;
    assert_eq!(s, 200, "{back}");
    assert_eq!(ids(&back), ids(&first));
}

#[tokio::test]
async fn descending_order_reverses_the_app_list() {
    let srv = TestServer::start().await;
    let mut expected = seven_apps(&srv).await;
    expected.reverse();
    let mut seen = Vec::new();
    let (_, mut page) = srv.get("/app?limit=4&order=descending").await;
    loop {
        seen.extend(ids(&page));
        if page["done"] == json!(true) {
            break;
        }
        assert!(seen.len() < expected.len(), "done never set: {page}");
        let it = page["iterator"].as_str().unwrap();
        page = srv
            .get(&format!("/app?limit=4&order=descending&iterator={it}"))
            .await
            .1;
    }
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn out_of_range_or_non_numeric_limit_is_422_at_query_limit() {
    let srv = TestServer::start().await;
    srv.app("one").await;
    let before = all_apps(&srv).await;
    for bad in ["251", "0", "abc", "-1"] {
        let (s, b) = srv.get(&format!("/app?limit={bad}")).await;
        assert_eq!(s, 422, "limit={bad}: {b}");
        assert_validation(&b, &["query", "limit"]);
    }
    let (s, b) = srv.get("/app?limit=250").await;
    assert_eq!((s, &b["data"]), (200, &before));
}

// ---------------------------------------------------------------- uid rules

#[tokio::test]
async fn uid_with_an_id_prefix_is_rejected_naming_the_field() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    let before = all_apps(&srv).await;

    let (s, b) = srv
        .post("/app", json!({"name": "x", "uid": "app_lookalike"}))
        .await;
    assert_eq!(s, 422, "{b}");
    let e = assert_validation(&b, &["body", "uid"]);
    assert!(e["msg"].as_str().unwrap().contains("prefix"), "{e}");

    let (s, b) = srv
        .post(
            &format!("/app/{app}/endpoint"),
            json!({"url": "https://example.com/h", "uid": "ep_lookalike"}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_validation(&b, &["body", "uid"]);

    let (s, b) = srv
        .post(
            &format!("/app/{app}/msg"),
            json!({"eventType": "a.b", "eventId": "msg_lookalike", "payload": {}}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_validation(&b, &["body", "eventId"]);

    assert_eq!(all_apps(&srv).await, before);
    assert_eq!(
        srv.get(&format!("/app/{app}/endpoint")).await.1["data"],
        json!([])
    );
    assert_eq!(
        srv.get(&format!("/app/{app}/msg")).await.1["data"],
        json!([])
    );
}

#[tokio::test]
async fn uid_with_invalid_characters_is_rejected() {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    let before = all_apps(&srv).await;
    for bad in ["has space", "slash/y", "ü", ""] {
        let (s, b) = srv.post("/app", json!({"name": "x", "uid": bad})).await;
        assert_eq!(s, 422, "{bad:?}: {b}");
        assert_validation(&b, &["body", "uid"]);
    }
    let (s, b) = srv
        .post("/app", json!({"name": "x", "uid": "a".repeat(257)}))
        .await;
    assert_eq!(s, 422, "{b}");
    let (s, b) = srv
        .post(
            &format!("/app/{app}/endpoint"),
            json!({"url": "https://example.com/h", "uid": "bad uid"}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_validation(&b, &["body", "uid"]);
    let (s, b) = srv
        .post(
            &format!("/app/{app}/msg"),
            json!({"eventType": "a.b", "eventId": "bad id!", "payload": {}}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_validation(&b, &["body", "eventId"]);

    assert_eq!(all_apps(&srv).await, before);
    assert_eq!(
        srv.get(&format!("/app/{app}/endpoint")).await.1["data"],
        json!([])
    );
    assert_eq!(
        srv.get(&format!("/app/{app}/msg")).await.1["data"],
        json!([])
    );
}
