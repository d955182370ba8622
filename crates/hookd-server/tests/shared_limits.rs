//! Two delivery engines ("nodes") sharing one Redis queue hold an endpoint's
//! `throttleRate` and concurrency cap together, not each on its own; and an
//! engine on a shared queue never trusts what its re-queue sweep read.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{Receiver, Reply, TestServer};
use hookd_queue::redis::{RedisOptions, RedisQueue};
use hookd_queue::Queue;
use serde_json::json;

async fn redis_queue(url: &str, prefix: &str, consumer: &str) -> Arc<dyn Queue> {
    let opts = RedisOptions {
        prefix: prefix.into(),
        consumer: consumer.into(),
        ..RedisOptions::default()
    };
    Arc::new(
        RedisQueue::connect(url, opts)
            .await
            .expect("connecting to Redis"),
    )
}

async fn two_nodes(url: &str, tweak: impl FnOnce(&mut common::Setup)) -> TestServer {
    let prefix = format!("hookd-test-limits-{:08x}", rand::random::<u32>());
    let a = redis_queue(url, &prefix, "node-a").await;
    let mut srv = TestServer::start_with(|s| {
        s.queue = Some(a);
        tweak(s);
    })
    .await;
    srv.add_engine(redis_queue(url, &prefix, "node-b").await)
        .await;
    srv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttle_rate_holds_across_two_nodes() {
    let Ok(url) = std::env::var("HOOKD_TEST_REDIS_URL") else {
        eprintln!("skipping shared-limit tests: HOOKD_TEST_REDIS_URL not set");
        return;
    };
    let srv = two_nodes(&url, |_| {}).await;
    let rx = Receiver::ok().await;
    let app = srv.app("shared-throttle").await;
    srv.endpoint(&app, json!({"url": rx.url, "throttleRate": 20}))
        .await;
    let n = 41;
    for i in 0..n {
        srv.send(&app, "a.b", json!({"i": i})).await;
    }
    let hits = rx.wait_for(n, Duration::from_secs(30)).await;
    let span = (hits[n - 1].at - hits[0].at).as_secs_f64();
    let rate = (n - 1) as f64 / span;
    assert!(
        rate <= 22.0,
        "two nodes together must hold throttleRate 20: measured {rate:.1}/s"
    );
    assert!(rate >= 10.0, "throttled, not starved: {rate:.1}/s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_cap_holds_across_two_nodes() {
    let Ok(url) = std::env::var("HOOKD_TEST_REDIS_URL") else {
        eprintln!("skipping shared-limit tests: HOOKD_TEST_REDIS_URL not set");
        return;
    };
    let srv = two_nodes(&url, |s| s.engine.endpoint_concurrency = 3).await;
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (n2, p2) = (now.clone(), peak.clone());
    // Count requests in progress from their arrival until just before their
    // (delayed) answer is written: the node can only free the slot after that.
    let rx = Receiver::start(move |_| {
        let cur = n2.fetch_add(1, Ordering::SeqCst) + 1;
        p2.fetch_max(cur, Ordering::SeqCst);
        let n3 = n2.clone();
        Reply::ok()
            .after(Duration::from_millis(150))
            .before_answer(move || {
                n3.fetch_sub(1, Ordering::SeqCst);
            })
    })
    .await;
    let app = srv.app("shared-cap").await;
    srv.endpoint(&app, json!({"url": rx.url})).await;
    for i in 0..30 {
        srv.send(&app, "a.b", json!({"i": i})).await;
    }
    rx.wait_for(30, Duration::from_secs(30)).await;
    let peak = peak.load(Ordering::SeqCst);
    assert!(
        peak <= 3,
        "at most 3 requests in flight across both nodes, saw {peak}"
    );
    assert!(
        peak >= 2,
        "both nodes did work in parallel up to the cap, saw {peak}"
    );
}

/// With a shared queue another node may be sending the same deliveries, so the
/// re-queue sweep must not hand its tasks what it read (the embedded queue
/// does: `delivery::the_requeue_sweep_hands_due_tasks_their_message_within_a_budget`).
/// The Redis queue keeps the hints of this process's own pushes for its pops,
/// so a hinted sweep would show here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_onto_a_shared_queue_hands_its_tasks_no_hint() {
    use hookd_server::dispatch::{Engine, EngineConfig, Fresh};
    use hookd_server::outbound::{SsrfGuard, WebhookClient};

    let Ok(url) = std::env::var("HOOKD_TEST_REDIS_URL") else {
        eprintln!("skipping shared-queue sweep test: HOOKD_TEST_REDIS_URL not set");
        return;
    };
    let srv = TestServer::start().await;
    let app = srv.app("swept-shared").await;
    srv.endpoint(&app, json!({"url": "https://receiver.example/hook"}))
        .await;
    let (_dir, store) = srv.stop_and_open().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let msg = common::message_of(&app, i);
        assert_eq!(store.create_message(&msg).await.unwrap().len(), 1);
        ids.push(msg.id);
    }
    ids.sort();

    let prefix = format!("hookd-test-sweep-{:08x}", rand::random::<u32>());
    let queue = redis_queue(&url, &prefix, "node-a").await;
    let engine = Engine::new(
        store.clone(),
        queue.clone(),
        WebhookClient::new(SsrfGuard::new(vec![]), "hookd-test"),
        EngineConfig::default(),
    );
    assert_eq!(engine.requeue_pending().await.unwrap(), 3);
    let mut leases = Vec::new();
    for _ in 0..20 {
        leases.extend(queue.pop(100, Duration::from_millis(200)).await.unwrap());
        if leases.len() >= 3 {
            break;
        }
    }
    let mut due: Vec<String> = leases.iter().map(|l| l.task.msg_id.clone()).collect();
    due.sort();
    assert_eq!(due, ids, "each swept delivery is queued once");
    for lease in &leases {
        assert!(
            lease
                .task
                .hint
                .as_ref()
                .and_then(|h| h.get::<Fresh>())
                .is_none(),
            "a task on a shared queue came with what the sweep read: {}",
            lease.task.delivery_id
        );
    }
    queue.ack(&leases).await.unwrap();
}
