//! Management API: event types (schemas with examples, listing options,
//! deprecate, archive, expunge).

mod common;

use common::{assert_validation, TestServer};
use serde_json::{json, Value};

fn names(list: &Value) -> Vec<&str> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect()
}

fn schemas() -> Value {
    json!({
        "1": {
            "type": "object",
            "properties": {"id": {"type": "string"}},
            "examples": [{"id": "u_1"}]
        }
    })
}

async fn create(srv: &TestServer, name: &str) -> Value {
    let (s, b) = srv
        .post(
            "/event-type",
            json!({"name": name, "description": format!("{name} happened"), "schemas": schemas()}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    b
}

#[tokio::test]
async fn event_type_is_created_with_schemas_and_examples_and_can_be_read_back() {
    let srv = TestServer::start().await;
    let b = create(&srv, "user.created").await;
    assert_eq!(b["name"], "user.created");
    assert_eq!(b["description"], "user.created happened");
    assert_eq!(b["schemas"], schemas());
    assert_eq!(b["archived"], false);
    assert_eq!(b["deprecated"], false);
    assert!(b["createdAt"].is_string() && b["updatedAt"].is_string());
    let (s, got) = srv.get("/event-type/user.created").await;
    assert_eq!((s, &got), (200, &b));
    assert_eq!(got["schemas"]["1"]["examples"], json!([{"id": "u_1"}]));
}

#[tokio::test]
async fn duplicate_event_type_name_is_409() {
    let srv = TestServer::start().await;
    let first = create(&srv, "user.created").await;
    let (s, b) = srv
        .post(
            "/event-type",
            json!({"name": "user.created", "description": "other"}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["code"], "conflict");
    assert_eq!(srv.get("/event-type/user.created").await.1, first);
}

#[tokio::test]
async fn event_type_list_hides_archived_unless_asked() {
    let srv = TestServer::start().await;
    create(&srv, "a.live").await;
    create(&srv, "b.old").await;
    let (s, _) = srv
        .call(
            "PATCH",
            "/event-type/b.old",
            Some(json!({"archived": true})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, b) = srv.get("/event-type").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(names(&b), vec!["a.live"]);
    let (_, b) = srv.get("/event-type?include_archived=true").await;
    assert_eq!(names(&b), vec!["a.live", "b.old"]);
    assert_eq!(b["data"][1]["archived"], true);
}

#[tokio::test]
async fn event_type_list_without_content_drops_schemas() {
    let srv = TestServer::start().await;
    create(&srv, "user.created").await;
    let (_, with) = srv.get("/event-type").await;
    assert_eq!(with["data"][0]["schemas"], schemas());
    let (s, without) = srv.get("/event-type?with_content=false").await;
    assert_eq!(s, 200, "{without}");
    assert_eq!(names(&without), vec!["user.created"]);
    let item = &without["data"][0];
    assert!(
        item.get("schemas").is_none_or(Value::is_null),
        "schemas dropped: {item}"
    );
    assert_eq!(item["description"], "user.created happened");
}

#[tokio::test]
async fn patching_deprecated_changes_only_that_flag() {
    let srv = TestServer::start().await;
    let before = create(&srv, "user.created").await;
    let (s, b) = srv
        .call(
            "PATCH",
            "/event-type/user.created",
            Some(json!({"deprecated": true})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["deprecated"], true);
    assert_eq!(b["description"], before["description"]);
    assert_eq!(b["schemas"], before["schemas"]);
    assert_eq!(b["archived"], false);
    assert_eq!(
        srv.get("/event-type/user.created").await.1["deprecated"],
        true
    );
}

#[tokio::test]
async fn deleting_an_event_type_archives_it() {
    let srv = TestServer::start().await;
    create(&srv, "user.created").await;
    let (s, _) = srv.call("DELETE", "/event-type/user.created", None).await;
    assert_eq!(s, 204);
    let (s, b) = srv.get("/event-type/user.created").await;
    assert_eq!(s, 200, "still gettable: {b}");
    assert_eq!(b["archived"], true);
    assert_eq!(b["schemas"], schemas());
    assert_eq!(names(&srv.get("/event-type").await.1), Vec::<&str>::new());
}

#[tokio::test]
async fn deleting_with_expunge_removes_the_event_type() {
    let srv = TestServer::start().await;
    create(&srv, "user.created").await;
    let (s, _) = srv
        .call("DELETE", "/event-type/user.created?expunge=true", None)
        .await;
    assert_eq!(s, 204);
    let (s, b) = srv.get("/event-type/user.created").await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(b["code"], "not_found");
    let (_, all) = srv.get("/event-type?include_archived=true").await;
    assert_eq!(all["data"], json!([]));
}

#[tokio::test]
async fn malformed_schemas_are_422_and_change_nothing() {
    let srv = TestServer::start().await;
    let before = create(&srv, "user.created").await;
    for bad in [json!("a string"), json!([1, 2]), json!(5)] {
        let (s, b) = srv
            .post(
                "/event-type",
                json!({"name": "bad.schema", "description": "d", "schemas": bad}),
            )
            .await;
        assert_eq!(s, 422, "{bad}: {b}");
        assert_validation(&b, &["body", "schemas"]);
    }
    let (s, b) = srv
        .post(
            "/event-type",
            json!({"name": "bad.version", "description": "d", "schemas": {"1": "not an object"}}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_validation(&b, &["body", "schemas", "1"]);
    let (s, b) = srv
        .call(
            "PATCH",
            "/event-type/user.created",
            Some(json!({"schemas": "nope"})),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_validation(&b, &["body", "schemas"]);

    assert_eq!(srv.get("/event-type/bad.schema").await.0, 404);
    assert_eq!(srv.get("/event-type/bad.version").await.0, 404);
    assert_eq!(srv.get("/event-type/user.created").await.1, before);
}
