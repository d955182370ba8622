//! Behaviour every queue backend must show. Written once against `dyn Queue`;
//! runs on the embedded queue always, and on Redis when `HOOKD_TEST_REDIS_URL`
//! is set.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{task, TestKeys};
use hookd_queue::{embedded::EmbeddedQueue, Queue};

/// Each backend with what must live as long as it (a Redis queue's own keys,
/// deleted when the test is done with them).
async fn backends() -> Vec<(&'static str, Arc<dyn Queue>, Option<TestKeys>)> {
    let mut all: Vec<(&'static str, Arc<dyn Queue>, Option<TestKeys>)> =
        vec![("embedded", Arc::new(EmbeddedQueue::new()), None)];
    match common::redis_url() {
        Some(url) => {
            let keys = TestKeys::new(&url);
            let queue = keys.queue("conformance", Duration::from_secs(30)).await;
            all.push(("redis", Arc::new(queue), Some(keys)));
        }
        None => eprintln!("skipping Redis queue conformance: HOOKD_TEST_REDIS_URL not set"),
    }
    all
}

#[tokio::test]
async fn due_tasks_come_out_in_due_order() {
    for (name, q, _keys) in backends().await {
        q.push(vec![task(2, -5), task(1, -10), task(3, 0)])
            .await
            .unwrap();
        let got = q.pop(10, Duration::from_millis(100)).await.unwrap();
        let ids: Vec<_> = got.iter().map(|l| l.task.delivery_id.as_str()).collect();
        assert_eq!(ids, ["msgep_1", "msgep_2", "msgep_3"], "{name}");
        q.ack(&got).await.unwrap();
        assert_eq!(q.len().await.unwrap(), 0, "{name}");
    }
}

#[tokio::test]
async fn future_tasks_wait_until_due() {
    for (name, q, _keys) in backends().await {
        q.push(vec![task(1, 300)]).await.unwrap();
        assert!(
            q.pop(10, Duration::from_millis(50))
                .await
                .unwrap()
                .is_empty(),
            "{name}: popped early"
        );
        let start = Instant::now();
        let got = q.pop(10, Duration::from_secs(2)).await.unwrap();
        assert_eq!(got.len(), 1, "{name}");
        assert!(
            start.elapsed() >= Duration::from_millis(150),
            "{name}: due time not respected"
        );
    }
}

#[tokio::test]
async fn a_push_wakes_a_waiting_pop_at_once() {
    for (name, q, _keys) in backends().await {
        let q2 = q.clone();
        let waiter = tokio::spawn(async move {
            let start = Instant::now();
            let got = q2.pop(1, Duration::from_secs(5)).await.unwrap();
            (got, start.elapsed())
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        q.push(vec![task(7, 0)]).await.unwrap();
        let (got, waited) = waiter.await.unwrap();
        assert_eq!(got.len(), 1, "{name}");
        assert!(
            waited < Duration::from_secs(2),
            "{name}: push did not wake the waiter ({waited:?})"
        );
    }
}

#[tokio::test]
async fn pop_respects_max_and_leaves_the_rest() {
    for (name, q, _keys) in backends().await {
        q.push((0..5).map(|n| task(n, -1)).collect()).await.unwrap();
        assert_eq!(
            q.pop(2, Duration::from_millis(10)).await.unwrap().len(),
            2,
            "{name}"
        );
        assert_eq!(q.len().await.unwrap(), 3, "{name}");
        assert_eq!(
            q.pop(10, Duration::from_millis(10)).await.unwrap().len(),
            3,
            "{name}"
        );
    }
}

#[tokio::test]
async fn every_pushed_task_is_popped_exactly_once_under_concurrency() {
    for (name, q, _keys) in backends().await {
        let n = 2_000;
        q.push((0..n).map(|i| task(i, 0)).collect()).await.unwrap();
        let mut handles = Vec::new();
        for _ in 0..4 {
            let q = q.clone();
            handles.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                loop {
                    let got = q.pop(50, Duration::from_millis(50)).await.unwrap();
                    if got.is_empty() {
                        break seen;
                    }
                    seen.extend(got.into_iter().map(|l| l.task.delivery_id));
                }
            }));
        }
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.unwrap());
        }
        all.sort();
        let before = all.len();
        all.dedup();
        assert_eq!(before, n, "{name}: some tasks were lost or duplicated");
        assert_eq!(all.len(), n, "{name}");
    }
}
