//! Behaviour every queue backend must show. Written once against `dyn Queue`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use hookd_queue::{embedded::EmbeddedQueue, Queue, Task};

fn task(n: usize, delay_ms: i64) -> Task {
    Task {
        delivery_id: format!("msgep_{n}"),
        msg_id: format!("msg_{n}"),
        endpoint_id: "ep_1".into(),
        app_id: "app_1".into(),
        due: Utc::now() + chrono::Duration::milliseconds(delay_ms),
        manual: false,
    }
}

fn backends() -> Vec<(&'static str, Arc<dyn Queue>)> {
    vec![("embedded", Arc::new(EmbeddedQueue::new()))]
}

#[tokio::test]
async fn due_tasks_come_out_in_due_order() {
    for (name, q) in backends() {
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
    for (name, q) in backends() {
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
    for (name, q) in backends() {
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
    for (name, q) in backends() {
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
    for (name, q) in backends() {
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
