//! Delivery engine behaviour, end to end: the real server, real receivers.

mod common;

use std::time::{Duration, Instant};

use common::{eventually, message_of, Hit, Receiver, Reply, TestServer};
use hookd_core::retry::RetryPolicy;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn message_is_delivered_with_exact_payload_and_signature_headers() {
    let srv = TestServer::start().await;
    let rx = Receiver::ok().await;
    let app = srv.app("acme").await;
    let ep = srv
        .endpoint(&app, json!({"url": rx.url, "headers": {"X-Tenant": "t1"}}))
        .await;
    let raw = r#"{"b": [1, 2,3],   "a": "ü"}"#;
    let (s, msg) = srv
        .call(
            "POST",
            &format!("/app/{app}/msg"),
            Some(
                serde_json::from_str(&format!(r#"{{"eventType":"x.y","payload":{raw}}}"#)).unwrap(),
            ),
        )
        .await;
    assert_eq!(s, 202);
    let hit = &rx.wait_for(1, WAIT).await[0];
    // reqwest's json() re-serialises; what matters is that hookd sends what it stored.
    let (_, stored) = srv
        .get(&format!("/app/{app}/msg/{}", msg["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&hit.body).unwrap(),
        stored["payload"]
    );
    assert_eq!(hit.header("webhook-id"), msg["id"].as_str().unwrap());
    assert_eq!(hit.header("content-type"), "application/json");
    assert!(hit.header("user-agent").contains("hookd"));
    assert_eq!(hit.header("x-tenant"), "t1");
    let (_, secret) = srv
        .get(&format!(
            "/app/{app}/endpoint/{}/secret",
            ep["id"].as_str().unwrap()
        ))
        .await;
    let key = hookd_core::signing::EndpointSecret::parse(secret["key"].as_str().unwrap()).unwrap();
    let ts: i64 = hit.header("webhook-timestamp").parse().unwrap();
    assert!(
        (ts - chrono::Utc::now().timestamp()).abs() < 30,
        "timestamp is taken at send time"
    );
    let expected =
        hookd_core::signing::sign_standard(&[key], hit.header("webhook-id"), ts, &hit.body);
    assert_eq!(hit.header("webhook-signature"), expected);
}

#[tokio::test]
async fn raw_payload_bytes_are_sent_exactly_as_posted() {
    let srv = TestServer::start().await;
    let rx = Receiver::ok().await;
    let app = srv.app("raw").await;
    srv.endpoint(&app, json!({"url": rx.url})).await;
    let body = r#"{"eventType":"x.y","payload":{"z": 1,   "a" : [ true ,null ], "n": 1.50}}"#;
    let resp = srv
        .http
        .post(format!("{}/api/v1/app/{app}/msg", srv.url))
        .bearer_auth(common::TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let hit = &rx.wait_for(1, WAIT).await[0];
    assert_eq!(
        &hit.body[..],
        br#"{"z": 1,   "a" : [ true ,null ], "n": 1.50}"#
    );
}

#[tokio::test]
async fn failed_delivery_is_retried_on_schedule_then_marked_failed() {
    let srv = TestServer::start_with(|s| {
        s.engine.retry = RetryPolicy::parse_schedule("0.3,0.6")
            .unwrap()
            .with_jitter(0.0)
    })
    .await;
    let rx = Receiver::start(|_| Reply::status(500)).await;
    let app = srv.app("retry").await;
    let ep = srv.endpoint(&app, json!({"url": rx.url})).await;
    let ep_id = ep["id"].as_str().unwrap();
    let msg = srv.send(&app, "a.b", json!({})).await;
    let hits = rx.wait_for(3, WAIT).await;
    let gaps: Vec<f64> = hits
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_secs_f64())
        .collect();
    assert!(
        gaps[0] >= 0.28 && gaps[0] < 1.0,
        "first retry after ~0.3 s, got {gaps:?}"
    );
    assert!(
        gaps[1] >= 0.58 && gaps[1] < 1.5,
        "second retry after ~0.6 s, got {gaps:?}"
    );
    let failed = eventually(WAIT, || async {
        let (_, b) = srv.get(&format!("/app/{app}/msg/{msg}/endpoint")).await;
        (b["data"][0]["status"] == 2).then_some(b)
    })
    .await;
    assert!(failed.is_some(), "delivery should end as failed");
    // No fourth attempt once the schedule is exhausted.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rx.count(), 3);
    let (_, attempts) = srv
        .get(&format!("/app/{app}/attempt/endpoint/{ep_id}"))
        .await;
    assert_eq!(attempts["data"].as_array().unwrap().len(), 3);
    assert!(attempts["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["responseStatusCode"] == 500 && a["triggerType"] == 0));
}

#[tokio::test]
async fn redirect_is_a_failure_and_is_not_followed() {
    let srv =
        TestServer::start_with(|s| s.engine.retry = RetryPolicy::parse_schedule("").unwrap()).await;
    let target = Receiver::ok().await;
    let target_url = target.url.clone();
    let rx = Receiver::start(move |_| Reply::status(302).header("location", &target_url)).await;
    let app = srv.app("redir").await;
    let ep = srv.endpoint(&app, json!({"url": rx.url})).await;
    let msg = srv.send(&app, "a.b", json!({})).await;
    rx.wait_for(1, WAIT).await;
    let got = eventually(WAIT, || async {
        let (_, b) = srv.get(&format!("/app/{app}/attempt/msg/{msg}")).await;
        b["data"].as_array().filter(|d| !d.is_empty()).cloned()
    })
    .await
    .unwrap();
    assert_eq!(got[0]["responseStatusCode"], 302);
    assert_eq!(got[0]["status"], 2, "3xx is a failure");
    assert_eq!(target.count(), 0, "redirects are never followed");
    let _ = ep;
}

#[tokio::test]
async fn timeout_is_recorded_as_an_attempt_with_status_zero() {
    let srv = TestServer::start_with(|s| {
        s.engine.request_timeout = Duration::from_millis(300);
        s.engine.retry = RetryPolicy::parse_schedule("").unwrap();
    })
    .await;
    let rx = Receiver::start(|_| Reply::ok().after(Duration::from_secs(3))).await;
    let app = srv.app("slow").await;
    srv.endpoint(&app, json!({"url": rx.url})).await;
    let msg = srv.send(&app, "a.b", json!({})).await;
    let got = eventually(WAIT, || async {
        let (_, b) = srv.get(&format!("/app/{app}/attempt/msg/{msg}")).await;
        b["data"].as_array().filter(|d| !d.is_empty()).cloned()
    })
    .await
    .unwrap();
    assert_eq!(got[0]["responseStatusCode"], 0);
    assert_eq!(got[0]["status"], 2);
    assert!(
        got[0]["response"].as_str().unwrap().contains("timed out"),
        "{}",
        got[0]
    );
    let ms = got[0]["responseDurationMs"].as_i64().unwrap();
    assert!((250..3000).contains(&ms), "duration {ms} ms");
}

#[tokio::test]
async fn retry_after_on_429_is_honoured() {
    let srv = TestServer::start_with(|s| {
        s.engine.retry = RetryPolicy::parse_schedule("0.1").unwrap().with_jitter(0.0)
    })
    .await;
    let rx = Receiver::start(|n| {
        if n == 0 {
            Reply::status(429).header("retry-after", "2")
        } else {
            Reply::ok()
        }
    })
    .await;
    let app = srv.app("ra").await;
    srv.endpoint(&app, json!({"url": rx.url})).await;
    srv.send(&app, "a.b", json!({})).await;
    let hits = rx.wait_for(2, WAIT).await;
    let gap = hits[1].at - hits[0].at;
    assert!(
        gap >= Duration::from_millis(1900),
        "Retry-After: 2 must delay the retry, got {gap:?}"
    );
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_announces_it() {
    let srv = TestServer::start().await;
    let ops = Receiver::ok().await;
    let rx = Receiver::start(|_| Reply::status(410)).await;
    let app = srv.app("gone").await;
    let ep = srv.endpoint(&app, json!({"url": rx.url})).await;
    let ep_id = ep["id"].as_str().unwrap().to_string();
    srv.endpoint(
        "hookd-operational",
        json!({"url": ops.url, "eventTypes": null}),
    )
    .await;
    srv.send(&app, "a.b", json!({})).await;
    let disabled = eventually(WAIT, || async {
        let (_, b) = srv.get(&format!("/app/{app}/endpoint/{ep_id}")).await;
        (b["disabled"] == true).then_some(())
    })
    .await;
    assert!(disabled.is_some(), "410 must disable the endpoint");
    assert_eq!(rx.count(), 1, "no retry after 410");
    let hit = &ops.wait_for(1, WAIT).await[0];
    let ev: serde_json::Value = serde_json::from_slice(&hit.body).unwrap();
    assert_eq!(ev["type"], "endpoint.disabled");
    assert_eq!(ev["data"]["endpointId"], ep_id.as_str());
    // A disabled endpoint receives nothing more.
    srv.send(&app, "a.b", json!({})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.count(), 1);
}

#[tokio::test]
async fn exhaustion_emits_an_operational_event() {
    let srv =
        TestServer::start_with(|s| s.engine.retry = RetryPolicy::parse_schedule("0.05").unwrap())
            .await;
    let ops = Receiver::ok().await;
    let rx = Receiver::start(|_| Reply::status(500)).await;
    srv.endpoint("hookd-operational", json!({"url": ops.url}))
        .await;
    let app = srv.app("exh").await;
    srv.endpoint(&app, json!({"url": rx.url})).await;
    let msg = srv.send(&app, "a.b", json!({})).await;
    let hit = &ops.wait_for(1, WAIT).await[0];
    let ev: serde_json::Value = serde_json::from_slice(&hit.body).unwrap();
    assert_eq!(ev["type"], "message.attempt.exhausted");
    assert_eq!(ev["data"]["msgId"], msg.as_str());
    assert_eq!(ev["data"]["appUid"], "exh");
    assert_eq!(ev["data"]["lastAttempt"]["responseStatusCode"], 500);
    assert!(
        hit.header("webhook-signature").starts_with("v1,"),
        "operational events are signed too"
    );
}

/// A server that retries every 0.2 s and disables after 0.5 s of failure, and
/// one message sent to an endpoint that always answers 500: the server, the
/// receiver, the app and the endpoint's id.
async fn always_failing(app_name: &str) -> (TestServer, Receiver, String, String) {
    let srv = TestServer::start_with(|s| {
        s.engine.retry = RetryPolicy::parse_schedule("0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2")
            .unwrap()
            .with_jitter(0.0);
        s.engine.disable_after = Duration::from_millis(500);
    })
    .await;
    let rx = Receiver::start(|_| Reply::status(500)).await;
    let app = srv.app(app_name).await;
    let ep = srv.endpoint(&app, json!({"url": rx.url})).await;
    let ep_id = ep["id"].as_str().unwrap().to_string();
    srv.send(&app, "a.b", json!({})).await;
    (srv, rx, app, ep_id)
}

#[tokio::test]
async fn endpoint_failing_longer_than_the_limit_is_disabled() {
    let (srv, rx, app, ep_id) = always_failing("flaky").await;
    let disabled = eventually(WAIT, || async {
        let (_, b) = srv.get(&format!("/app/{app}/endpoint/{ep_id}")).await;
        (b["disabled"] == true).then_some(())
    })
    .await;
    assert!(
        disabled.is_some(),
        "an endpoint failing for longer than disable_after is disabled"
    );
    assert!(
        rx.count() >= 3 && rx.count() <= 6,
        "disabled after ~0.5 s of failures, saw {} attempts",
        rx.count()
    );
}

#[tokio::test]
async fn a_success_resets_the_failing_clock() {
    let srv = TestServer::start_with(|s| {
        s.engine.retry = RetryPolicy::parse_schedule("0.4,0.4,0.4")
            .unwrap()
            .with_jitter(0.0);
        s.engine.disable_after = Duration::from_secs(1);
    })
    .await;
    // Requests in order (n from 0): the first message fails at 0 s, the
    // second at ~0.2 s, the first's retry succeeds at ~0.4 s, and the
    // second's retries fail at ~0.6, 1.0 and 1.4 s (later on a busy machine).
    // From the first failure to the last is well past `disable_after`; from
    // the first failure after the success to the last is 0.8 s, not.
    let rx = Receiver::start(|n| {
        if n == 2 {
            Reply::ok()
        } else {
            Reply::status(500)
        }
    })
    .await;
    let app = srv.app("reset").await;
    let ep = srv.endpoint(&app, json!({"url": rx.url})).await;
    let ep_id = ep["id"].as_str().unwrap().to_string();
    srv.send(&app, "a.b", json!({})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    srv.send(&app, "a.b", json!({})).await;
    rx.wait_for(6, WAIT).await;
    // Every outcome recorded, the last failure's included, before looking.
    let recorded = eventually(WAIT, || async {
        let (_, a) = srv
            .get(&format!("/app/{app}/attempt/endpoint/{ep_id}?limit=50"))
            .await;
        (a["data"].as_array().map_or(0, |d| d.len()) == 6).then_some(())
    })
    .await;
    assert!(recorded.is_some(), "six attempts recorded");
    let (_, b) = srv.get(&format!("/app/{app}/endpoint/{ep_id}")).await;
    assert_eq!(
        b["disabled"], false,
        "the success in between must reset the clock"
    );
}

#[tokio::test]
async fn a_failing_clock_restarted_elsewhere_is_read_again_before_disabling() {
    // The engine remembers when an endpoint's clock started instead of
    // writing it on every failure; another node's success restarts the
    // store's clock meanwhile, and the decision to disable must follow it.
    let (srv, rx, app, ep_id) = always_failing("elsewhere").await;
    rx.wait_for(1, WAIT).await;
    // "Successes on another node" every 100 ms for 1.2 s: no 0.5 s of failure
    // in a row as the store sees it.
    for _ in 0..12 {
        srv.store
            .set_endpoint_failing_since(&ep_id, None)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rx.count() >= 4, "kept failing: {} attempts", rx.count());
    let (_, b) = srv.get(&format!("/app/{app}/endpoint/{ep_id}")).await;
    assert_eq!(
        b["disabled"], false,
        "disabled on a clock that the store had restarted"
    );
}

#[tokio::test]
async fn resend_sends_again_as_a_manual_attempt() {
    let srv = TestServer::start().await;
    let rx = Receiver::ok().await;
    let app = srv.app("resend").await;
    let ep = srv.endpoint(&app, json!({"url": rx.url})).await;
    let ep_id = ep["id"].as_str().unwrap();
    let msg = srv.send(&app, "a.b", json!({"n": 1})).await;
    rx.wait_for(1, WAIT).await;
    let (s, _) = srv
        .post(
            &format!("/app/{app}/msg/{msg}/endpoint/{ep_id}/resend"),
            json!({}),
        )
        .await;
    assert_eq!(s, 202);
    let hits = rx.wait_for(2, WAIT).await;
    assert_eq!(
        hits[0].header("webhook-id"),
        hits[1].header("webhook-id"),
        "the message id is stable"
    );
    let manual = eventually(WAIT, || async {
        let (_, b) = srv.get(&format!("/app/{app}/attempt/msg/{msg}")).await;
        b["data"]
            .as_array()
            .and_then(|d| d.iter().find(|a| a["triggerType"] == 1).cloned())
    })
    .await;
    assert!(manual.is_some(), "resend is recorded as a manual attempt");
}

/// A receiver that answers 503 until the returned switch is turned on, then 200.
async fn failing_until_healed() -> (std::sync::Arc<std::sync::atomic::AtomicBool>, Receiver) {
    let healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let h = healthy.clone();
    let rx = Receiver::start(move |_| {
        if h.load(std::sync::atomic::Ordering::SeqCst) {
            Reply::ok()
        } else {
            Reply::status(503)
        }
    })
    .await;
    (healthy, rx)
}

/// Asks for a recover of the endpoint since `since` and waits for the task to
/// finish; returns the finished task.
async fn recover_and_wait(
    srv: &TestServer,
    app: &str,
    ep_id: &str,
    since: chrono::DateTime<chrono::Utc>,
) -> serde_json::Value {
    let (s, task) = srv
        .post(
            &format!("/app/{app}/endpoint/{ep_id}/recover"),
            json!({"since": since}),
        )
        .await;
    assert_eq!(s, 202, "{task}");
    assert_eq!(task["task"], "endpoint.recover");
    eventually(WAIT, || async {
        let (_, t) = srv
            .get(&format!(
                "/background-task/{}",
                task["id"].as_str().unwrap()
            ))
            .await;
        (t["status"] == "finished").then_some(t)
    })
    .await
    .expect("recover task finishes")
}

#[tokio::test]
async fn recover_requeues_failed_messages_and_reports_its_status() {
    recover_brings_back_every_failed_delivery("recover", 3).await;
}

/// Recover reads the failed deliveries a page (500) at a time; one more than
/// a page must all come back.
#[tokio::test]
async fn recover_reaches_past_its_first_page() {
    recover_brings_back_every_failed_delivery("recover-pages", 501).await;
}

/// `n` messages fail for good (no retries), the endpoint heals, and a recover
/// brings each back once: the task reports `n` and all `n` end as successes.
async fn recover_brings_back_every_failed_delivery(uid: &str, n: usize) {
    let srv =
        TestServer::start_with(|s| s.engine.retry = RetryPolicy::parse_schedule("").unwrap()).await;
    let (healthy, rx) = failing_until_healed().await;
    let app = srv.app(uid).await;
    let ep = srv.endpoint(&app, json!({"url": rx.url})).await;
    let ep_id = ep["id"].as_str().unwrap();
    let since = chrono::Utc::now() - chrono::Duration::minutes(1);
    for i in 0..n {
        srv.send(&app, "a.b", json!({"i": i})).await;
    }
    rx.wait_for(n, WAIT).await;
    eventually(WAIT, || async {
        let (_, s) = srv.get(&format!("/app/{app}/endpoint/{ep_id}/stats")).await;
        (s["fail"] == n).then_some(())
    })
    .await
    .expect("every delivery failed");
    healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    let finished = recover_and_wait(&srv, &app, ep_id, since).await;
    assert_eq!(finished["data"]["recovered"], n);
    rx.wait_for(2 * n, WAIT).await;
    // The receiver has answered them all; each outcome is filed just after.
    let stats = eventually(WAIT, || async {
        let (_, s) = srv.get(&format!("/app/{app}/endpoint/{ep_id}/stats")).await;
        (s["success"] == n).then_some(s)
    })
    .await;
    assert!(
        stats.is_some(),
        "every recovered delivery ends as a success"
    );
}

#[tokio::test]
async fn disabled_endpoint_gets_nothing_and_reenabling_does_not_flood_it() {
    let srv = TestServer::start().await;
    let rx = Receiver::ok().await;
    let app = srv.app("dis").await;
    let ep = srv
        .endpoint(&app, json!({"url": rx.url, "disabled": true}))
        .await;
    let ep_id = ep["id"].as_str().unwrap();
    for _ in 0..3 {
        srv.send(&app, "a.b", json!({})).await;
    }
    let (s, _) = srv
        .call(
            "PATCH",
            &format!("/app/{app}/endpoint/{ep_id}"),
            Some(json!({"disabled": false})),
        )
        .await;
    assert_eq!(s, 200);
    srv.send(&app, "a.b", json!({"after": true})).await;
    let hits = rx.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        rx.count(),
        1,
        "only the message sent after re-enabling arrives"
    );
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&hits[0].body).unwrap()["after"],
        true
    );
}

#[tokio::test]
async fn throttle_rate_holds_the_measured_rate() {
    let srv = TestServer::start().await;
    let rx = Receiver::ok().await;
    let app = srv.app("throttle").await;
    srv.endpoint(&app, json!({"url": rx.url, "throttleRate": 20}))
        .await;
    let n = 41;
    for i in 0..n {
        srv.send(&app, "a.b", json!({"i": i})).await;
    }
    let hits = rx.wait_for(n, Duration::from_secs(20)).await;
    let span = (hits[n - 1].at - hits[0].at).as_secs_f64();
    let rate = (n - 1) as f64 / span;
    assert!(
        rate <= 22.0,
        "throttleRate 20 must hold: measured {rate:.1}/s over {span:.2} s"
    );
    assert!(
        rate >= 10.0,
        "throttled, but not starved: measured {rate:.1}/s"
    );
}

/// Posts `n` messages on `channel`, each accepted.
async fn post_on_channel(srv: &TestServer, app: &str, channel: &str, n: usize) {
    for _ in 0..n {
        let (s, _) = srv
            .post(
                &format!("/app/{app}/msg"),
                json!({"eventType": "a.b", "payload": {}, "channels": [channel]}),
            )
            .await;
        assert_eq!(s, 202);
    }
}

/// When slow endpoints hold every request slot of the node (`max_in_flight`),
/// a slot that frees goes to an endpoint that has fewer requests out, not
/// straight back to the slow one that freed it: a healthy endpoint waits for
/// one slow answer, not for the slow endpoints' whole backlog.
#[tokio::test]
async fn a_healthy_endpoint_gets_a_share_of_slots_that_slow_ones_fill() {
    let srv = TestServer::start_with(|s| {
        s.engine.request_timeout = Duration::from_secs(15);
        s.engine.endpoint_concurrency = 4;
        s.engine.max_in_flight = 4;
    })
    .await;
    let slow_answer = Duration::from_millis(1500);
    let slow = Receiver::start(move |_| Reply::ok().after(slow_answer)).await;
    let fast = Receiver::ok().await;
    let app = srv.app("shares").await;
    srv.endpoint(&app, json!({"url": slow.url, "channels": ["slow"]}))
        .await;
    srv.endpoint(&app, json!({"url": fast.url, "channels": ["fast"]}))
        .await;
    // Four rounds of the slow endpoint's answers: four out, twelve waiting.
    post_on_channel(&srv, &app, "slow", 16).await;
    slow.wait_for(4, WAIT).await;
    let start = Instant::now();
    post_on_channel(&srv, &app, "fast", 6).await;
    fast.wait_for(6, WAIT).await;
    let waited = start.elapsed();
    // One slow answer is at most 1.5 s away; the slow backlog lasts 4.5 s.
    assert!(
        waited < slow_answer * 2,
        "the healthy endpoint waited {waited:?}, behind the slow endpoint's backlog"
    );
    assert!(
        slow.count() < 16,
        "the slow backlog had not gone out first: {} sent",
        slow.count()
    );
}

/// Counts the requests a set of receivers are answering at once, and the most
/// at any moment.
#[derive(Clone, Default)]
struct Gauge {
    now: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    most: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Gauge {
    /// A reply after `delay` that is counted from the request's arrival until
    /// just before the answer goes out.
    fn reply(&self, delay: Duration) -> Reply {
        use std::sync::atomic::Ordering::SeqCst;
        let at_once = self.now.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(at_once, SeqCst);
        let now = self.now.clone();
        Reply::ok().after(delay).before_answer(move || {
            now.fetch_sub(1, SeqCst);
        })
    }

    fn most(&self) -> usize {
        self.most.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Requests to endpoints that answer quickly are mostly the node's own work,
/// so across all of them the node has at most `quick_in_flight` out and the
/// rest wait in their lanes; an endpoint that answers slowly does not count
/// against that budget and keeps its own cap of concurrent requests.
#[tokio::test]
async fn quick_endpoints_share_a_budget_of_requests_that_a_slow_one_keeps_out_of() {
    let srv = TestServer::start_with(|s| {
        s.engine.request_timeout = Duration::from_secs(15);
        s.engine.endpoint_concurrency = 8;
        s.engine.quick_in_flight = 4;
        s.engine.quick_answer = Duration::from_millis(150);
    })
    .await;
    let quick = Gauge::default();
    let mut quick_rx = Vec::new();
    for _ in 0..3 {
        let g = quick.clone();
        quick_rx.push(Receiver::start(move |_| g.reply(Duration::from_millis(30))).await);
    }
    let slow = Gauge::default();
    let g = slow.clone();
    let slow_rx = Receiver::start(move |_| g.reply(Duration::from_millis(600))).await;
    let app = srv.app("budget").await;
    for rx in &quick_rx {
        srv.endpoint(&app, json!({"url": rx.url, "channels": ["quick"]}))
            .await;
    }
    srv.endpoint(&app, json!({"url": slow_rx.url, "channels": ["slow"]}))
        .await;
    post_on_channel(&srv, &app, "slow", 17).await;
    post_on_channel(&srv, &app, "quick", 16).await;
    for rx in &quick_rx {
        rx.wait_for(16, WAIT).await;
    }
    slow_rx.wait_for(17, WAIT).await;
    // Three lanes of 8 would have had up to 24 out at once.
    assert!(
        quick.most() <= 4,
        "{} requests to quick endpoints were out at once, past the budget of 4",
        quick.most()
    );
    assert!(
        quick.most() >= 2,
        "the quick endpoints' requests went out one at a time"
    );
    // One request until the first answer shows the endpoint is slow, then its
    // cap of 8, with none of the budget's 4 in the way.
    assert_eq!(
        slow.most(),
        8,
        "the slow endpoint kept its own cap of concurrent requests"
    );
}

#[tokio::test]
async fn slow_endpoint_does_not_delay_a_healthy_one() {
    let srv = TestServer::start_with(|s| {
        s.engine.request_timeout = Duration::from_secs(15);
        s.engine.endpoint_concurrency = 4;
    })
    .await;
    let slow = Receiver::start(|_| Reply::ok().after(Duration::from_secs(10))).await;
    let fast = Receiver::ok().await;
    let app = srv.app("iso").await;
    srv.endpoint(
        &app,
        json!({"url": slow.url, "eventTypes": null, "channels": ["slow"]}),
    )
    .await;
    srv.endpoint(&app, json!({"url": fast.url, "channels": ["fast"]}))
        .await;
    // Fill the slow endpoint's lane well past its concurrency first.
    post_on_channel(&srv, &app, "slow", 20).await;
    slow.wait_for(1, WAIT).await;
    let start = Instant::now();
    post_on_channel(&srv, &app, "fast", 20).await;
    fast.wait_for(20, Duration::from_secs(5)).await;
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "healthy deliveries waited behind the slow endpoint"
    );
    assert!(
        slow.count() <= 4,
        "the slow endpoint is capped at its concurrency"
    );
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allow_listed() {
    let srv = TestServer::start_with(|s| {
        s.allowed_networks = vec![];
        s.engine.retry = RetryPolicy::parse_schedule("").unwrap();
    })
    .await;
    let rx = Receiver::ok().await;
    let app = srv.app("ssrf").await;
    let port = rx
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    srv.endpoint(&app, json!({"url": rx.url})).await;
    srv.endpoint(
        &app,
        json!({"url": format!("http://localhost:{port}/hook")}),
    )
    .await;
    srv.endpoint(
        &app,
        json!({"url": format!("http://[::ffff:127.0.0.1]:{port}/hook")}),
    )
    .await;
    let msg = srv.send(&app, "a.b", json!({})).await;
    let attempts = eventually(WAIT, || async {
        let (_, b) = srv.get(&format!("/app/{app}/attempt/msg/{msg}")).await;
        b["data"].as_array().filter(|d| d.len() == 3).cloned()
    })
    .await
    .expect("three refused attempts");
    for a in &attempts {
        assert_eq!(a["responseStatusCode"], 0, "{a}");
        assert!(a["response"].as_str().unwrap().contains("refused"), "{a}");
    }
    assert_eq!(rx.count(), 0, "nothing reached the loopback receiver");
}

#[tokio::test]
async fn scheduled_retries_survive_a_restart() {
    let rx = Receiver::start(|n| {
        if n == 0 {
            Reply::status(500)
        } else {
            Reply::ok()
        }
    })
    .await;
    let srv = TestServer::start_with(|s| {
        s.engine.retry = RetryPolicy::parse_schedule("1.5").unwrap().with_jitter(0.0)
    })
    .await;
    let app = srv.app("restart").await;
    srv.endpoint(&app, json!({"url": rx.url})).await;
    srv.send(&app, "a.b", json!({})).await;
    rx.wait_for(1, WAIT).await;
    let dir = srv.stop().await;
    let srv = TestServer::start_in(dir, |_| {}).await;
    let hits = rx.wait_for(2, WAIT).await;
    assert_eq!(hits[0].header("webhook-id"), hits[1].header("webhook-id"));
    srv.stop().await;
}

/// A retry reads the message back from the store; once its content has been
/// expunged there is nothing to send, so the delivery is canceled, not sent.
#[tokio::test]
async fn a_retry_of_an_expunged_message_is_canceled_not_sent() {
    let rx = Receiver::start(|_| Reply::status(500)).await;
    let srv = TestServer::start_with(|s| {
        s.engine.retry = RetryPolicy::parse_schedule("1").unwrap().with_jitter(0.0)
    })
    .await;
    let app = srv.app("expunged").await;
    let ep = srv.endpoint(&app, json!({"url": rx.url})).await;
    let ep_id = ep["id"].as_str().unwrap();
    let msg = srv.send(&app, "a.b", json!({"secret": "gone soon"})).await;
    rx.wait_for(1, WAIT).await;
    let (s, b) = srv
        .call("DELETE", &format!("/app/{app}/msg/{msg}/content"), None)
        .await;
    assert_eq!(s, 204, "{b}");
    let stats = eventually(WAIT, || async {
        let (_, s) = srv.get(&format!("/app/{app}/endpoint/{ep_id}/stats")).await;
        (s["canceled"] == 1).then_some(s)
    })
    .await;
    assert!(stats.is_some(), "the retry was not canceled");
    assert_eq!(rx.hits().len(), 1, "the retry was sent after the expunge");
}

#[tokio::test]
async fn svix_header_family_can_be_chosen_per_deployment() {
    let srv = TestServer::start_with(|s| {
        s.engine.header_family = hookd_server::dispatch::HeaderFamily::Svix
    })
    .await;
    let rx = Receiver::ok().await;
    let app = srv.app("svixfam").await;
    srv.endpoint(&app, json!({"url": rx.url})).await;
    srv.send(&app, "a.b", json!({})).await;
    let hit = &rx.wait_for(1, WAIT).await[0];
    assert!(hit.header("svix-signature").starts_with("v1,"));
    assert!(hit.header("webhook-signature").is_empty());
}

#[tokio::test]
async fn during_rotation_both_keys_sign() {
    let srv = TestServer::start().await;
    let rx = Receiver::ok().await;
    let app = srv.app("rot").await;
    let ep = srv.endpoint(&app, json!({"url": rx.url})).await;
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
    srv.send(&app, "a.b", json!({})).await;
    let hit = &rx.wait_for(1, WAIT).await[0];
    let ts: i64 = hit.header("webhook-timestamp").parse().unwrap();
    let sign = |k: &serde_json::Value| {
        let key = hookd_core::signing::EndpointSecret::parse(k["key"].as_str().unwrap()).unwrap();
        hookd_core::signing::sign_standard(&[key], hit.header("webhook-id"), ts, &hit.body)
    };
    assert_eq!(
        hit.header("webhook-signature"),
        format!("{} {}", sign(&new), sign(&old))
    );
}

#[tokio::test]
async fn a_backlog_larger_than_the_requeue_window_is_delivered_once_after_restart() {
    let rx = Receiver::ok().await;
    let srv = TestServer::start().await;
    let app = srv.app("backlog").await;
    srv.endpoint(&app, json!({"url": rx.url})).await;
    let dir = srv.stop().await;
    // Pending deliveries written straight to the store, as if accepted before a crash.
    let db = format!("sqlite:{}", dir.path().join("hookd.db").display());
    {
        let store = hookd_store::open(&db).await.unwrap();
        for i in 0..300 {
            let msg = message_of(&app, i);
            assert_eq!(store.create_message(&msg).await.unwrap().len(), 1);
        }
    }
    let srv = TestServer::start_in(dir, |s| s.engine.requeue_window = 40).await;
    let hits = rx.wait_for(300, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        distinct_ids(&hits).len(),
        300,
        "every backlogged message arrives"
    );
    assert_eq!(rx.count(), 300, "and each exactly once");
    srv.stop().await;
}

/// On start the sweep re-queues the backlog. With the embedded queue, the
/// tasks of deliveries due now carry their delivery and message, as a
/// fan-out's do, so the worker does not read each back; not those due later,
/// nor messages expunged or too large to hold, and only up to the budget,
/// which the tasks give back once they are gone.
#[tokio::test]
async fn the_requeue_sweep_hands_due_tasks_their_message_within_a_budget() {
    use hookd_server::dispatch::{Engine, EngineConfig, Fresh};
    use hookd_server::outbound::{SsrfGuard, WebhookClient};

    let srv = TestServer::start().await;
    let app = srv.app("swept").await;
    srv.endpoint(&app, json!({"url": "https://receiver.example/hook"}))
        .await;
    let (_dir, store) = srv.stop_and_open().await;
    let mut small = Vec::new();
    for i in 0..3 {
        let msg = message_of(&app, i);
        assert_eq!(store.create_message(&msg).await.unwrap().len(), 1);
        small.push(msg);
    }
    let later = hookd_core::model::Message {
        deliver_at: Some(hookd_core::model::now() + chrono::Duration::hours(1)),
        ..message_of(&app, 3)
    };
    let large = hookd_core::model::Message {
        payload: Some(format!(r#"{{"pad":"{}"}}"#, "x".repeat(70 << 10))),
        ..message_of(&app, 4)
    };
    let expunged = message_of(&app, 5);
    for msg in [&later, &large, &expunged] {
        assert_eq!(store.create_message(msg).await.unwrap().len(), 1);
    }
    assert!(store
        .expunge_message_content(&app, &expunged.id)
        .await
        .unwrap());

    let queue = hookd_queue::open(None).await.unwrap();
    let engine = Engine::new(
        store.clone(),
        queue.clone(),
        WebhookClient::new(SsrfGuard::new(vec![]), "hookd-test"),
        EngineConfig {
            // Two small messages' worth (7 bytes each, plus 512 for the rest).
            sweep_hint_bytes: 1_100,
            ..EngineConfig::default()
        },
    );
    // Pops what is due now and says which messages came with their hint.
    let sweep_and_pop = || async {
        assert_eq!(engine.requeue_pending().await.unwrap(), 6);
        let leases = queue.pop(100, Duration::from_millis(200)).await.unwrap();
        let mut due: Vec<String> = leases.iter().map(|l| l.task.msg_id.clone()).collect();
        due.sort();
        let mut hinted = Vec::new();
        for lease in &leases {
            let Some(fresh) = lease.task.hint.as_ref().and_then(|h| h.get::<Fresh>()) else {
                continue;
            };
            assert!(fresh.swept());
            assert_eq!(fresh.msg.id, lease.task.msg_id);
            let stored = store.delivery(&lease.task.delivery_id).await.unwrap();
            assert_eq!(Some(&fresh.delivery), stored.as_ref());
            let (_, msg) = store
                .delivery_with_message(&lease.task.delivery_id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(*fresh.msg, msg);
            hinted.push(fresh.msg.id.clone());
        }
        queue.ack(&leases).await.unwrap();
        (due, hinted)
    };

    let mut due_now: Vec<String> = small
        .iter()
        .chain([&large, &expunged])
        .map(|m| m.id.clone())
        .collect();
    due_now.sort();
    let small_ids: Vec<String> = small.iter().map(|m| m.id.clone()).collect();
    let (due, hinted) = sweep_and_pop().await;
    assert_eq!(due, due_now, "the scheduled one is not due yet");
    assert_eq!(hinted.len(), 2, "as many as the budget holds: {hinted:?}");
    assert!(hinted.iter().all(|id| small_ids.contains(id)), "{hinted:?}");

    // The first tasks are gone, and with them their share of the budget.
    let (due, hinted) = sweep_and_pop().await;
    assert_eq!(due, due_now);
    assert_eq!(hinted.len(), 2, "the budget was given back: {hinted:?}");
}

/// Once an attempt's outcome is recorded and its lease let go, the request
/// has been made and written down: the endpoint's health bookkeeping after it
/// (its failing clock, here refused by the database) may fail without the
/// step counting as failed, which would send the message again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_health_write_after_the_outcome_is_recorded_sends_nothing_again() {
    use sqlx::Connection;

    let queue = Watched::new(false).await;
    let srv = TestServer::start_with(|s| {
        s.engine.retry = RetryPolicy::parse_schedule("60").unwrap();
        s.queue = Some(queue.clone());
    })
    .await;
    let rx = Receiver::start(|_| Reply::status(500)).await;
    let app = srv.app("health-write").await;
    srv.endpoint(&app, json!({"url": rx.url})).await;
    let db = format!("sqlite:{}", srv.dir.path().join("hookd.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&db).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER failing_clock_refused BEFORE UPDATE OF failing_since ON endpoints \
         BEGIN SELECT RAISE(ABORT, 'injected: the failing clock cannot be written'); END",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    let msg = srv.send(&app, "a.b", json!({"n": 1})).await;
    rx.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A step that fails is queued again for 5 s later; the only retry of the
    // schedule is a minute away.
    assert_eq!(
        queue.pushed_due_within(chrono::Duration::seconds(2), chrono::Duration::seconds(10)),
        0,
        "the step failed and was queued again"
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(rx.count(), 1, "the message was sent again");
    let (status, attempts) = srv.get(&format!("/app/{app}/attempt/msg/{msg}")).await;
    assert_eq!(status, 200, "{attempts}");
    let data = attempts["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{attempts}");
    assert_eq!(data[0]["responseStatusCode"], 500);
}

/// A task that waited behind a slow request for longer than its hint is
/// trusted reads its message when it runs: content expunged meanwhile is not
/// sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_expunged_while_its_task_waits_in_the_lane_is_not_sent() {
    let srv = TestServer::start_with(|s| {
        s.engine.endpoint_concurrency = 1;
        s.engine.hint_trusted_for = Duration::from_millis(300);
    })
    .await;
    let rx = Receiver::start(|n| {
        if n == 0 {
            Reply::ok().after(Duration::from_millis(800))
        } else {
            Reply::ok()
        }
    })
    .await;
    let app = srv.app("expunge-waiting").await;
    srv.endpoint(&app, json!({"url": rx.url})).await;
    let first = srv.send(&app, "a.b", json!({"n": 1})).await;
    rx.wait_for(1, Duration::from_secs(5)).await;
    // The first request is being answered; the second message's task waits
    // in the lane, with the content it was made with.
    send_expunge_and_see_only(&srv, &rx, &app, &first, "1 endpoint").await;
}

/// Sends a second message to `app`, expunges its content at once, and checks
/// that two seconds later `rx` has seen only `first` and no expunged content.
async fn send_expunge_and_see_only(
    srv: &TestServer,
    rx: &Receiver,
    app: &str,
    first: &str,
    case: &str,
) {
    let second = srv.send(app, "a.b", json!({"secret": "expunge me"})).await;
    let (status, body) = srv
        .call("DELETE", &format!("/app/{app}/msg/{second}/content"), None)
        .await;
    assert_eq!(status, 204, "{body}");
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let ids = distinct_ids(&rx.hits());
    assert_eq!(
        ids,
        vec![first.to_string()],
        "{case}: only the first message was sent"
    );
    assert!(
        rx.hits()
            .iter()
            .all(|h| !String::from_utf8_lossy(&h.body).contains("expunge me")),
        "{case}: expunged content was sent"
    );
}

/// The same within the hint's trust window: an expunge since the message was
/// stored leaves its hint untrusted, so the task reads the store, finds no
/// content and sends nothing. Both paths: a narrow app's message (fanned out
/// with the message) and a wide app's (through the fan-out stage).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_expunged_while_a_hinted_task_waits_is_not_sent() {
    for width in [1, 20] {
        let srv = TestServer::start_with(|s| s.engine.endpoint_concurrency = 1).await;
        let rx = Receiver::start(move |n| {
            if n < width {
                Reply::ok().after(Duration::from_millis(800))
            } else {
                Reply::ok()
            }
        })
        .await;
        let app = srv.app(&format!("expunge-hinted-{width}")).await;
        for i in 0..width {
            srv.endpoint(&app, json!({"url": format!("{}/{i}", rx.url)}))
                .await;
        }
        let first = srv.send(&app, "a.b", json!({"n": 1})).await;
        rx.wait_for(width, Duration::from_secs(5)).await;
        // Every endpoint is answering the first message; the second one's
        // tasks wait in the lanes with the content they were made with, well
        // within the 30 s that a hint is trusted for.
        let case = format!("{width} endpoints");
        send_expunge_and_see_only(&srv, &rx, &app, &first, &case).await;
        assert_eq!(
            rx.hits().len(),
            width,
            "{width} endpoints: one request each"
        );
    }
}

/// A fan-out hands a hint only to the tasks due now, and only for messages of
/// at most 64 KiB, and only while the queue's hint budget has room: a message
/// scheduled for later would keep its content in memory for a hint too old to
/// be used, and every task waiting for a slow endpoint holds its message.
#[test]
fn only_small_messages_due_now_get_the_fan_outs_hint_within_a_budget() {
    use hookd_queue::HintBudget;
    use hookd_server::dispatch::fresh_tasks;
    // Room for one small message (its payload and 512 bytes for the rest).
    let budget = HintBudget::new(600);
    let msg = std::sync::Arc::new(message_of("app_1", 0));
    let now = hookd_core::model::now();
    let delivery = |id: &str, next: chrono::DateTime<chrono::Utc>| hookd_core::model::Delivery {
        id: id.into(),
        app_id: "app_1".into(),
        msg_id: msg.id.clone(),
        endpoint_id: "ep_1".into(),
        status: hookd_core::model::MessageStatus::Pending,
        attempts: 0,
        next_attempt: Some(next),
        created_at: now,
        updated_at: now,
    };
    let tasks = fresh_tasks(
        &[
            delivery("msgep_now", now),
            delivery("msgep_later", now + chrono::Duration::hours(1)),
        ],
        &msg,
        Some(&budget),
        0,
    );
    assert!(tasks[0].hint.is_some(), "due now: hinted");
    assert!(tasks[1].hint.is_none(), "due in an hour: no hint");
    assert!(budget.used() > 512, "the message takes its share");
    // The budget is full: the next message's tasks go without.
    let next = std::sync::Arc::new(message_of("app_1", 2));
    let more = fresh_tasks(&[delivery("msgep_next", now)], &next, Some(&budget), 0);
    assert!(more[0].hint.is_none(), "past the budget: no hint");
    // Once the first message's tasks are gone, its share is back.
    drop(tasks);
    assert_eq!(budget.used(), 0);
    let more = fresh_tasks(&[delivery("msgep_next", now)], &next, Some(&budget), 0);
    assert!(more[0].hint.is_some(), "the budget was given back");
    drop(more);
    assert!(
        fresh_tasks(&[delivery("msgep_none", now)], &next, None, 0)[0]
            .hint
            .is_none(),
        "a queue without a budget gets no hints"
    );
    // Nor a message too large to keep in memory while its tasks wait.
    let large = std::sync::Arc::new(hookd_core::model::Message {
        payload: Some(format!(r#"{{"pad":"{}"}}"#, "x".repeat(70 << 10))),
        ..message_of("app_1", 1)
    });
    let tasks = fresh_tasks(&[delivery("msgep_large", now)], &large, Some(&budget), 0);
    assert!(tasks[0].hint.is_none(), "70 KiB: no hint");
    assert_eq!(tasks[0].due, now);
}

/// The embedded queue, watched: it keeps the due time of every task pushed,
/// and with `fail_first_ack` its first acknowledgement of a sent lease fails,
/// as a shared queue's can when it is briefly unreachable.
struct Watched {
    inner: std::sync::Arc<dyn hookd_queue::Queue>,
    fail_first_ack: bool,
    failed: std::sync::atomic::AtomicBool,
    pushed: std::sync::Mutex<Vec<chrono::DateTime<chrono::Utc>>>,
}

impl Watched {
    async fn new(fail_first_ack: bool) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            inner: hookd_queue::open(None).await.unwrap(),
            fail_first_ack,
            failed: std::sync::atomic::AtomicBool::new(false),
            pushed: std::sync::Mutex::default(),
        })
    }

    /// Tasks pushed due between `from` and `to` from now.
    fn pushed_due_within(&self, from: chrono::Duration, to: chrono::Duration) -> usize {
        let now = hookd_core::model::now();
        self.pushed
            .lock()
            .unwrap()
            .iter()
            .filter(|&&due| due > now + from && due < now + to)
            .count()
    }
}

#[async_trait::async_trait]
impl hookd_queue::Queue for Watched {
    async fn push(&self, tasks: Vec<hookd_queue::Task>) -> hookd_queue::Result<()> {
        self.pushed
            .lock()
            .unwrap()
            .extend(tasks.iter().map(|t| t.due));
        self.inner.push(tasks).await
    }
    async fn pop(
        &self,
        max: usize,
        wait: Duration,
    ) -> hookd_queue::Result<Vec<hookd_queue::Lease>> {
        self.inner.pop(max, wait).await
    }
    async fn ack(&self, leases: &[hookd_queue::Lease]) -> hookd_queue::Result<()> {
        if self.fail_first_ack
            && !leases.is_empty()
            && !self.failed.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(hookd_queue::QueueError::Unavailable("injected".into()));
        }
        self.inner.ack(leases).await
    }
    async fn len(&self) -> hookd_queue::Result<usize> {
        self.inner.len().await
    }
    fn hint_budget(&self) -> Option<&hookd_queue::HintBudget> {
        self.inner.hint_budget()
    }
}

/// A step that fails after its outcome is recorded (here the lease's
/// acknowledgement) is tried again; the retry reads the delivery's state from
/// the store, which says it was delivered, rather than trusting the task's
/// hint, which says it is pending: nothing is sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_retried_after_its_outcome_was_recorded_sends_nothing_again() {
    let queue = Watched::new(true).await;
    let srv = TestServer::start_with(|s| s.queue = Some(queue.clone())).await;
    let rx = Receiver::ok().await;
    let app = srv.app("ack-fails").await;
    srv.endpoint(&app, json!({"url": rx.url})).await;
    let msg = srv.send(&app, "a.b", json!({"n": 1})).await;
    rx.wait_for(1, Duration::from_secs(5)).await;
    // A failed step is tried again after 5 s.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(rx.count(), 1, "the message was sent again");
    let (_, attempts) = srv.get(&format!("/app/{app}/attempt/msg/{msg}")).await;
    assert_eq!(attempts["data"].as_array().unwrap().len(), 1, "{attempts}");
}

/// The distinct `webhook-id`s among `hits`, sorted.
fn distinct_ids(hits: &[Hit]) -> Vec<String> {
    let mut ids: Vec<String> = hits
        .iter()
        .map(|h| h.header("webhook-id").to_string())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// An app `uid` with `width` endpoints, all at `url`.
async fn app_with_endpoints(srv: &TestServer, uid: &str, width: usize, url: &str) -> String {
    let app = srv.app(uid).await;
    for _ in 0..width {
        srv.endpoint(&app, json!({"url": url})).await;
    }
    app
}

/// Waits for `messages` messages at each of `width` endpoints, a moment more
/// for duplicates, and checks each arrived exactly once at each; returns the
/// distinct message ids.
async fn each_once_at_each(rx: &Receiver, messages: usize, width: usize) -> Vec<String> {
    let hits = rx.wait_for(messages * width, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ids = distinct_ids(&hits);
    assert_eq!(ids.len(), messages, "every message arrives");
    assert_eq!(rx.count(), messages * width, "once at each endpoint");
    ids
}

/// Whether accepting left the fan-out pending for an app of `width` endpoints.
fn pending_for(accepted: hookd_store::Accepted, width: usize) -> bool {
    matches!(accepted, hookd_store::Accepted::Pending { endpoints } if endpoints == width)
}

#[tokio::test]
async fn messages_accepted_but_not_fanned_out_before_a_crash_are_delivered_after_restart() {
    let rx = Receiver::ok().await;
    let srv = TestServer::start().await;
    // Wide enough that the fan-out is not written with the message.
    let width = hookd_store::INLINE_FANOUT + 1;
    let app = app_with_endpoints(&srv, "crash-before-fan-out", width, &rx.url).await;
    let dir = srv.stop().await;
    // Accepted (what a 202 promises) with the fan-out still to be written.
    let db = format!("sqlite:{}", dir.path().join("hookd.db").display());
    let mut sent = Vec::new();
    {
        let store = hookd_store::open(&db).await.unwrap();
        for i in 0..5 {
            let msg = message_of(&app, i);
            assert!(pending_for(
                store.accept_message(&msg).await.unwrap(),
                width
            ));
            sent.push(msg.id);
        }
    }
    sent.sort();
    let srv = TestServer::start_in(dir, |_| {}).await;
    assert_eq!(each_once_at_each(&rx, 5, width).await, sent);
    srv.stop().await;
}

#[tokio::test]
async fn a_message_to_a_wide_app_reaches_every_endpoint_once_through_the_fan_out_stage() {
    let rx = Receiver::ok().await;
    // No sweep within the test: only the fan-out stage can deliver these.
    let srv =
        TestServer::start_with(|s| s.engine.fanout_sweep_every = Duration::from_secs(3600)).await;
    let width = hookd_store::INLINE_FANOUT + 4;
    let app = app_with_endpoints(&srv, "wide", width, &rx.url).await;
    for _ in 0..3 {
        srv.send(&app, "a.b", json!({})).await;
    }
    each_once_at_each(&rx, 3, width).await;
    srv.stop().await;
}

#[tokio::test]
async fn the_sweep_fans_out_what_the_fan_out_stage_left_pending() {
    let rx = Receiver::ok().await;
    let srv = TestServer::start_with(|s| {
        s.engine.fanout_sweep_every = Duration::from_millis(100);
        s.engine.fanout_stale_after = Duration::ZERO;
    })
    .await;
    let width = hookd_store::INLINE_FANOUT + 1;
    let app = app_with_endpoints(&srv, "left-pending", width, &rx.url).await;
    // Accepted behind the stage's back, as if their fan-outs had failed: more
    // than the sweep writes at once, so that it takes them in several rounds.
    let left = 40;
    let mut ids = Vec::new();
    for i in 0..left {
        let msg = message_of(&app, i);
        assert!(pending_for(
            srv.store.accept_message(&msg).await.unwrap(),
            width
        ));
        ids.push(msg.id);
    }
    let hits = rx.wait_for(left * width, WAIT).await;
    ids.sort();
    assert_eq!(distinct_ids(&hits), ids);
    // Messages through the API meanwhile are fanned out once, by the stage or
    // the sweep, whichever comes first.
    for _ in 0..5 {
        srv.send(&app, "a.b", json!({})).await;
    }
    each_once_at_each(&rx, left + 5, width).await;
    srv.stop().await;
}

#[tokio::test]
async fn a_message_failing_four_times_then_succeeding_emits_failing_then_recovered() {
    let srv = TestServer::start_with(|s| {
        s.engine.retry = RetryPolicy::parse_schedule("0.05,0.05,0.05,0.05,0.05")
            .unwrap()
            .with_jitter(0.0)
    })
    .await;
    let ops = Receiver::ok().await;
    srv.endpoint("hookd-operational", json!({"url": ops.url}))
        .await;
    // Four failures, then success on the fifth attempt.
    let rx = Receiver::start(|n| {
        if n < 4 {
            Reply::status(500)
        } else {
            Reply::ok()
        }
    })
    .await;
    let app = srv.app("flaky-ops").await;
    srv.endpoint(&app, json!({"url": rx.url})).await;
    let msg = srv.send(&app, "a.b", json!({})).await;
    rx.wait_for(5, WAIT).await;
    let hits = ops.wait_for(2, WAIT).await;
    let events: Vec<serde_json::Value> = hits
        .iter()
        .map(|h| serde_json::from_slice(&h.body).unwrap())
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["message.attempt.failing", "message.attempt.recovered"]
    );
    assert!(events.iter().all(|e| e["data"]["msgId"] == msg.as_str()));
    assert_eq!(events[0]["data"]["lastAttempt"]["responseStatusCode"], 500);
    assert_eq!(events[1]["data"]["lastAttempt"]["responseStatusCode"], 200);
}

#[tokio::test]
async fn endpoint_timeout_ms_overrides_the_deployment_timeout() {
    let srv = TestServer::start_with(|s| {
        s.engine.request_timeout = Duration::from_secs(10);
        s.engine.retry = RetryPolicy::parse_schedule("").unwrap();
    })
    .await;
    let rx = Receiver::start(|_| Reply::ok().after(Duration::from_secs(3))).await;
    let app = srv.app("ep-timeout").await;
    srv.endpoint(&app, json!({"url": rx.url, "timeoutMs": 1000}))
        .await;
    let msg = srv.send(&app, "a.b", json!({})).await;
    let got = eventually(WAIT, || async {
        let (_, b) = srv.get(&format!("/app/{app}/attempt/msg/{msg}")).await;
        b["data"].as_array().filter(|d| !d.is_empty()).cloned()
    })
    .await
    .expect("an attempt is recorded");
    assert_eq!(
        got[0]["responseStatusCode"], 0,
        "the endpoint's 1 s timeout fired, not the deployment's 10 s"
    );
    let ms = got[0]["responseDurationMs"].as_i64().unwrap();
    assert!(
        (900..2500).contains(&ms),
        "timed out after ~1 s, took {ms} ms"
    );
}

#[tokio::test]
async fn a_slow_endpoints_backlog_cannot_fill_the_shared_buffer() {
    let srv = TestServer::start_with(|s| {
        s.engine.max_buffered = 20;
        s.engine.lane_backlog_max = 5;
        s.engine.endpoint_concurrency = 1;
        s.engine.request_timeout = Duration::from_secs(15);
    })
    .await;
    let slow = Receiver::start(|_| Reply::ok().after(Duration::from_secs(2))).await;
    let fast = Receiver::ok().await;
    let app = srv.app("buffer").await;
    srv.endpoint(&app, json!({"url": slow.url, "channels": ["slow"]}))
        .await;
    srv.endpoint(&app, json!({"url": fast.url, "channels": ["fast"]}))
        .await;
    // Far more slow work than the whole shared buffer holds.
    post_on_channel(&srv, &app, "slow", 60).await;
    slow.wait_for(1, WAIT).await;
    let start = Instant::now();
    post_on_channel(&srv, &app, "fast", 5).await;
    fast.wait_for(5, Duration::from_secs(6)).await;
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "healthy deliveries waited behind the slow endpoint's backlog"
    );
}

#[tokio::test]
async fn a_lone_endpoints_burst_is_not_held_back_by_the_lane_cap() {
    // The lane cap guards the shared buffer from a slow endpoint; with the
    // buffer nearly empty, a burst far over the cap for one healthy endpoint
    // must go out at once, not be handed back to the queue for later.
    let srv = TestServer::start_with(|s| {
        s.engine.lane_backlog_max = 5;
    })
    .await;
    let rx = Receiver::ok().await;
    let app = srv.app("burst").await;
    srv.endpoint(&app, json!({"url": rx.url})).await;
    // All come due at the same instant, so the feeder hands them over together.
    let due = chrono::Utc::now() + chrono::Duration::seconds(3);
    for _ in 0..200 {
        let (s, _) = srv
            .post(
                &format!("/app/{app}/msg"),
                json!({"eventType": "a.b", "payload": {}, "deliverAt": due}),
            )
            .await;
        assert_eq!(s, 202);
    }
    let hits = rx.wait_for(200, WAIT).await;
    let due_at = Instant::now() - (chrono::Utc::now() - due).to_std().unwrap_or_default();
    let last = hits.iter().map(|h| h.at).max().expect("hits");
    assert!(
        last.saturating_duration_since(due_at) < Duration::from_secs(2),
        "the last of the burst arrived {:?} after it was due",
        last.saturating_duration_since(due_at)
    );
}
