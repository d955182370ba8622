//! Management API: the delivery views over a message: attempted
//! destinations, attempted messages, attempts (list, get, expunge content)
//! and endpoint stats.

mod common;

use std::time::Duration;

use common::{eventually, Receiver, Reply, TestServer};
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

struct Delivered {
    srv: TestServer,
    app: String,
    msg: String,
    eps: Vec<String>,
    _rx: Vec<Receiver>,
}

/// One message sent to two endpoints whose receivers answer 200 with a body.
async fn delivered_to_two() -> Delivered {
    let srv = TestServer::start().await;
    let app = srv.app("acme").await;
    let mut rx = Vec::new();
    let mut eps = Vec::new();
    for _ in 0..2 {
        let r = Receiver::start(|_| Reply::ok().body("thanks")).await;
        let ep = srv.endpoint(&app, json!({"url": r.url})).await;
        eps.push(ep["id"].as_str().unwrap().to_string());
        rx.push(r);
    }
    let msg = srv.send(&app, "user.created", json!({"n": 1})).await;
    for r in &rx {
        r.wait_for(1, WAIT).await;
    }
    eps.sort();
    Delivered {
        srv,
        app,
        msg,
        eps,
        _rx: rx,
    }
}

/// Waits until `path` lists exactly `n` items, each with `status` 0 (success).
async fn successful_listing(srv: &TestServer, path: &str, n: usize) -> Value {
    eventually(WAIT, || async move {
        let (s, b) = srv.get(path).await;
        assert_eq!(s, 200, "{b}");
        let ok = b["data"]
            .as_array()
            .is_some_and(|d| d.len() == n && d.iter().all(|x| x["status"] == 0));
        ok.then_some(b)
    })
    .await
    .unwrap_or_else(|| panic!("{path} never listed a successful item"))
}

#[tokio::test]
async fn message_destinations_list_every_matching_endpoint() {
    let d = delivered_to_two().await;
    let (s, b) = d
        .srv
        .get(&format!("/app/{}/msg/{}/endpoint", d.app, d.msg))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(ids(&b), d.eps);
    for item in b["data"].as_array().unwrap() {
        assert!(
            item["statusText"].is_string() && item["url"].is_string(),
            "{item}"
        );
        assert_eq!(item["version"], 1);
    }
}

#[tokio::test]
async fn endpoint_message_list_shows_the_message() {
    let d = delivered_to_two().await;
    let path = format!("/app/{}/endpoint/{}/msg", d.app, d.eps[0]);
    let b = successful_listing(&d.srv, &path, 1).await;
    assert_eq!(ids(&b), vec![d.msg.clone()]);
    assert_eq!(b["data"][0]["eventType"], "user.created");
    assert_eq!(b["data"][0]["statusText"], "success");
}

#[tokio::test]
async fn attempts_are_listed_by_endpoint_and_by_message_and_gettable() {
    let d = delivered_to_two().await;
    let by_ep = successful_listing(
        &d.srv,
        &format!("/app/{}/attempt/endpoint/{}", d.app, d.eps[0]),
        1,
    )
    .await;
    let attempt = &by_ep["data"][0];
    assert_eq!(attempt["msgId"], d.msg);
    assert_eq!(attempt["endpointId"], d.eps[0]);
    assert_eq!(attempt["responseStatusCode"], 200);
    assert_eq!(attempt["response"], "thanks");
    assert_eq!(attempt["statusText"], "success");

    let by_msg =
        successful_listing(&d.srv, &format!("/app/{}/attempt/msg/{}", d.app, d.msg), 2).await;
    let mut seen: Vec<String> = by_msg["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["endpointId"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    assert_eq!(seen, d.eps, "one attempt per endpoint");
    let one = successful_listing(
        &d.srv,
        &format!(
            "/app/{}/attempt/msg/{}?endpoint_id={}",
            d.app, d.msg, d.eps[1]
        ),
        1,
    )
    .await;
    assert_eq!(one["data"][0]["endpointId"], d.eps[1]);

    let aid = attempt["id"].as_str().unwrap();
    let (s, got) = d
        .srv
        .get(&format!("/app/{}/msg/{}/attempt/{aid}", d.app, d.msg))
        .await;
    assert_eq!(s, 200, "{got}");
    assert_eq!(&got, attempt);
}

#[tokio::test]
async fn expunging_attempt_content_empties_its_response() {
    let d = delivered_to_two().await;
    let list = successful_listing(
        &d.srv,
        &format!("/app/{}/attempt/endpoint/{}", d.app, d.eps[1]),
        1,
    )
    .await;
    let aid = list["data"][0]["id"].as_str().unwrap();
    let path = format!("/app/{}/msg/{}/attempt/{aid}", d.app, d.msg);
    assert_eq!(d.srv.get(&path).await.1["response"], "thanks");
    let (s, b) = d.srv.call("DELETE", &format!("{path}/content"), None).await;
    assert_eq!(s, 204, "{b}");
    let (s, got) = d.srv.get(&path).await;
    assert_eq!(s, 200);
    assert_eq!(got["response"], "");
    assert_eq!(got["responseStatusCode"], 200, "the rest is kept");
    let (s, _) = d
        .srv
        .call(
            "DELETE",
            &format!("/app/{}/msg/{}/attempt/atmpt_nope/content", d.app, d.msg),
            None,
        )
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn endpoint_stats_count_successful_deliveries() {
    let d = delivered_to_two().await;
    let path = format!("/app/{}/endpoint/{}/stats", d.app, d.eps[0]);
    let stats = eventually(WAIT, || async {
        let (s, b) = d.srv.get(&path).await;
        assert_eq!(s, 200, "{b}");
        (b["success"] == 1).then_some(b)
    })
    .await
    .expect("stats count the delivery");
    assert_eq!(stats["fail"], 0);
    assert_eq!(stats["pending"], 0);
    assert_eq!(stats["sending"], 0);
    assert_eq!(stats["canceled"], 0);
}
