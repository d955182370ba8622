//! What only the Redis queue promises: leases of a dead node come back, delayed
//! tasks live in Redis rather than in the process, and lost Redis state (or a
//! lost connection) heals without restarting hookd. Skipped unless
//! `HOOKD_TEST_REDIS_URL` is set.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{task, TestKeys};
use hookd_queue::{Lease, Queue};
use redis::AsyncCommands;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Short, so that tests about reclaiming do not take long.
const VISIBILITY: Duration = Duration::from_millis(300);

fn keys() -> Option<TestKeys> {
    match common::redis_url() {
        Some(url) => Some(TestKeys::new(&url)),
        None => {
            eprintln!("skipping Redis queue tests: HOOKD_TEST_REDIS_URL not set");
            None
        }
    }
}

/// Pops until `n` leases came out or `within` passed.
async fn pop_n(q: &dyn Queue, n: usize, within: Duration) -> Vec<Lease> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        got.extend(
            q.pop(n - got.len(), Duration::from_millis(200))
                .await
                .unwrap(),
        );
    }
    got
}

#[tokio::test]
async fn unacked_lease_is_reclaimed_after_the_visibility_timeout() {
    let Some(keys) = keys() else { return };
    let a = keys.queue("node-a", VISIBILITY).await;
    a.push(vec![task(1, 0)]).await.unwrap();
    let leased = a.pop(1, Duration::from_secs(1)).await.unwrap();
    assert_eq!(leased.len(), 1);
    let died = Instant::now();
    // Node A dies holding the lease: nothing refreshes it any more.
    drop(a);

    let b = keys.queue("node-b", VISIBILITY).await;
    assert!(
        b.pop(1, Duration::from_millis(100))
            .await
            .unwrap()
            .is_empty(),
        "handed out again before the visibility timeout"
    );
    let got = b.pop(1, Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.len(), 1, "the dead node's lease was never reclaimed");
    assert!(died.elapsed() >= VISIBILITY);
    assert_eq!(got[0].task, leased[0].task);
    assert_eq!(got[0].receipt, leased[0].receipt);
    b.ack(&got).await.unwrap();
    assert_eq!(b.len().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_made_at_once_by_many_callers_all_land() {
    let Some(keys) = keys() else { return };
    // Acknowledgements that arrive while one is on its way to Redis go in the
    // next call together; each caller must still be answered, and each entry
    // must leave the stream, whichever call took it.
    let a = Arc::new(keys.queue("node-a", VISIBILITY).await);
    let n = 300;
    a.push((0..n).map(|i| task(i, 0)).collect()).await.unwrap();
    let leases = pop_n(a.as_ref(), n, Duration::from_secs(5)).await;
    assert_eq!(leases.len(), n);
    let mut acks = tokio::task::JoinSet::new();
    for lease in leases {
        let a = a.clone();
        acks.spawn(async move { a.ack(&[lease]).await });
    }
    let mut answered = 0;
    while let Some(done) = acks.join_next().await {
        done.unwrap().unwrap();
        answered += 1;
    }
    assert_eq!(answered, n);
    assert_eq!(
        a.len().await.unwrap(),
        0,
        "an acknowledged entry is still queued"
    );
    drop(a);
    // Had an id been dropped from a batch, its entry would stay pending and
    // come back to another node once the lease lapsed.
    tokio::time::sleep(VISIBILITY).await;
    let b = keys.queue("node-b", VISIBILITY).await;
    let again = b.pop(n, Duration::from_millis(500)).await.unwrap();
    assert!(
        again.is_empty(),
        "{} acknowledged leases came back",
        again.len()
    );
}

#[tokio::test]
async fn a_live_node_keeps_its_leases_past_the_visibility_timeout() {
    let Some(keys) = keys() else { return };
    // Engines park leases (throttled or batching endpoints) for longer than any
    // timeout; while their node lives, nobody else may take them.
    let visibility = Duration::from_millis(600);
    let a = keys.queue("node-a", visibility).await;
    let b = keys.queue("node-b", visibility).await;
    a.push(vec![task(1, 0)]).await.unwrap();
    let leased = a.pop(1, Duration::from_secs(1)).await.unwrap();
    assert_eq!(leased.len(), 1);
    assert!(
        b.pop(1, visibility * 3).await.unwrap().is_empty(),
        "a live node's lease was handed to another"
    );
    a.ack(&leased).await.unwrap();
    assert_eq!(a.len().await.unwrap(), 0);
}

#[tokio::test]
async fn a_node_never_gets_its_own_unacked_lease_twice() {
    let Some(keys) = keys() else { return };
    let a = keys.queue("node-a", VISIBILITY).await;
    a.push(vec![task(1, 0)]).await.unwrap();
    let leased = a.pop(1, Duration::from_secs(1)).await.unwrap();
    assert_eq!(leased.len(), 1);
    // As if its refresh had been late (Redis out of reach for a while): the
    // entry, still owned by node A, looks stale to everyone, A included.
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(keys.ready())
        .arg(keys.group())
        .arg("node-a")
        .arg(0)
        .arg(&leased[0].receipt)
        .arg("IDLE")
        .arg(3_600_000)
        .arg("JUSTID")
        .query_async(&mut keys.raw().await)
        .await
        .unwrap();
    assert!(
        a.pop(1, Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty(),
        "a lease the engine still holds was handed out again"
    );
    a.ack(&leased).await.unwrap();
    assert_eq!(a.len().await.unwrap(), 0);
}

#[tokio::test]
async fn acked_lease_is_never_handed_out_again() {
    let Some(keys) = keys() else { return };
    let a = keys.queue("node-a", VISIBILITY).await;
    a.push(vec![task(1, 0), task(2, 0)]).await.unwrap();
    let leased = pop_n(&a, 2, Duration::from_secs(2)).await;
    assert_eq!(leased.len(), 2);
    a.ack(&leased).await.unwrap();
    drop(a);

    let b = keys.queue("node-b", VISIBILITY).await;
    assert!(
        b.pop(10, VISIBILITY * 4).await.unwrap().is_empty(),
        "an acknowledged task came back"
    );
    let mut raw = keys.raw().await;
    let stream_len: usize = raw.xlen(keys.ready()).await.unwrap();
    assert_eq!(stream_len, 0, "acknowledged entries stay in the stream");
    let pending: redis::streams::StreamPendingReply =
        raw.xpending(keys.ready(), keys.group()).await.unwrap();
    assert_eq!(pending.count(), 0, "acknowledged entries are still pending");
}

#[tokio::test]
async fn a_task_is_claimed_by_one_node_only_until_the_claim_lapses() {
    let Some(keys) = keys() else { return };
    let a = keys.queue("node-a", VISIBILITY).await;
    let b = keys.queue("node-b", VISIBILITY).await;
    let t = task(7, 0);
    assert!(a.claim(&t).await.unwrap(), "the first claim wins");
    assert!(
        !b.claim(&t).await.unwrap(),
        "a copy of the same task is refused"
    );
    let mut later = t.clone();
    later.due += chrono::Duration::seconds(5);
    assert!(
        b.claim(&later).await.unwrap(),
        "a later attempt of the delivery is a new claim"
    );
    // The claim lapses before the visibility timeout, so a reclaimed lease can be sent.
    tokio::time::sleep(VISIBILITY).await;
    assert!(b.claim(&t).await.unwrap(), "a lapsed claim can be taken");
}

#[tokio::test]
async fn delayed_tasks_survive_a_new_connection() {
    let Some(keys) = keys() else { return };
    let first = keys.queue("node-a", VISIBILITY).await;
    let pushed = task(1, 500);
    first.push(vec![pushed.clone()]).await.unwrap();
    assert_eq!(first.len().await.unwrap(), 1);
    drop(first);

    let second = keys.queue("node-b", VISIBILITY).await;
    assert_eq!(second.len().await.unwrap(), 1);
    let got = second.pop(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        got.len(),
        1,
        "the delayed task was lost with its connection"
    );
    assert_eq!(got[0].task, pushed);
    assert!(Utc::now() >= pushed.due, "handed out before it was due");
}

#[tokio::test]
async fn lost_consumer_group_heals_by_itself() {
    let Some(keys) = keys() else { return };
    let q = Arc::new(keys.queue("node-a", VISIBILITY).await);
    let mut raw = keys.raw().await;
    let round_trip = |n| {
        let q = q.clone();
        async move {
            q.push(vec![task(n, 0)]).await.unwrap();
            let got = pop_n(q.as_ref(), 1, Duration::from_secs(3)).await;
            assert_eq!(got.len(), 1, "task {n} did not come out");
            assert_eq!(got[0].task.delivery_id, format!("msgep_{n}"));
            q.ack(&got).await.unwrap();
        }
    };
    round_trip(1).await;

    let _: () = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(keys.ready())
        .arg(keys.group())
        .query_async(&mut raw)
        .await
        .unwrap();
    round_trip(2).await;
    assert_eq!(q.resets(), 1);

    // As after a Redis restart without persistence: the stream is gone.
    let _: () = raw.del(keys.ready()).await.unwrap();
    round_trip(3).await;
    assert_eq!(q.resets(), 2);

    // Lost while a pop is blocked on it.
    let waiter = tokio::spawn({
        let q = q.clone();
        async move { q.pop(1, Duration::from_secs(5)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _: () = raw.del(keys.ready()).await.unwrap();
    q.push(vec![task(4, 0)]).await.unwrap();
    let got = match waiter.await.unwrap() {
        Ok(got) if !got.is_empty() => got,
        _ => pop_n(q.as_ref(), 1, Duration::from_secs(3)).await,
    };
    assert_eq!(
        got.len(),
        1,
        "the task pushed after the loss did not come out"
    );
    assert_eq!(got[0].task.delivery_id, "msgep_4");
}

#[tokio::test]
async fn tasks_due_in_the_past_are_promoted_at_once() {
    let Some(keys) = keys() else { return };
    let q = keys.queue("node-a", VISIBILITY).await;

    // A retry whose due time passed before it was even pushed.
    q.push(vec![task(1, -3_600_000)]).await.unwrap();
    let start = Instant::now();
    let got = q.pop(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    q.ack(&got).await.unwrap();

    // Scheduled retries that came due while no node was popping, more of them
    // than one promotion moves at a time, some overdue by a day.
    let mut raw = keys.raw().await;
    let n = 2_500;
    let now = Utc::now().timestamp_millis();
    for i in 0..n {
        let mut t = task(i, 0);
        t.due = Utc::now() - chrono::Duration::hours(if i % 2 == 0 { 24 } else { 0 });
        let score = if i % 2 == 0 {
            now - 86_400_000
        } else {
            now - 1
        };
        let _: () = raw
            .zadd(keys.delayed(), serde_json::to_string(&t).unwrap(), score)
            .await
            .unwrap();
    }
    let start = Instant::now();
    let got = pop_n(&q, n, Duration::from_secs(10)).await;
    assert_eq!(got.len(), n, "overdue retries were left behind");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    q.ack(&got).await.unwrap();
    assert_eq!(q.len().await.unwrap(), 0);
}

/// A TCP hop between the queue and Redis that a test can cut, as a Redis
/// restart (or a network partition) would.
struct Proxy {
    url: String,
    cut: watch::Sender<u64>,
    down: Arc<AtomicBool>,
}

impl Proxy {
    async fn start(redis_url: &str) -> Self {
        let mut url = url::Url::parse(redis_url).unwrap();
        let upstream = format!(
            "{}:{}",
            url.host_str().unwrap_or("127.0.0.1"),
            url.port().unwrap_or(6379)
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(addr.port())).unwrap();
        let (cut, _) = watch::channel(0u64);
        let down = Arc::new(AtomicBool::new(false));
        let (cut_tx, accept_down) = (cut.clone(), down.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if accept_down.load(Ordering::SeqCst) {
                    continue; // dropping the socket refuses the client
                }
                let mut cut_rx = cut_tx.subscribe();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Self {
            url: url.to_string(),
            cut,
            down,
        }
    }

    /// Drops every open connection; new ones are refused while `down`.
    fn cut(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }
}

#[tokio::test]
async fn a_redis_restart_heals_without_restarting_hookd() {
    let Some(keys) = keys() else { return };
    if !keys.url.starts_with("redis://") {
        eprintln!("skipping the restart test: it proxies plain TCP only");
        return;
    }
    let proxy = Proxy::start(&keys.url).await;
    let q = keys.queue_at(&proxy.url, "node-a", VISIBILITY).await;
    q.push(vec![task(1, 0)]).await.unwrap();
    let got = q.pop(1, Duration::from_secs(2)).await.unwrap();
    q.ack(&got).await.unwrap();

    // Redis goes away, and comes back empty (`--save "" --appendonly no`).
    proxy.cut(true);
    let _: () = keys.raw().await.del(keys.ready()).await.unwrap();
    let start = Instant::now();
    let while_down = q.pop(1, Duration::from_millis(200)).await;
    assert!(while_down.is_err(), "a pop without Redis should say so");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "a pop without Redis hung"
    );
    proxy.cut(false);

    // The engine's feeder retries with back-off; so does this loop.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut pushed = false;
    let mut got = Vec::new();
    while got.is_empty() && Instant::now() < deadline {
        if !pushed {
            pushed = q.push(vec![task(2, 0)]).await.is_ok();
        }
        match q.pop(1, Duration::from_millis(500)).await {
            Ok(leases) => got = leases,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(got.len(), 1, "the queue never recovered from the restart");
    assert_eq!(got[0].task.delivery_id, "msgep_2");
    assert_eq!(q.resets(), 1);
    q.ack(&got).await.unwrap();
}

#[tokio::test]
async fn hints_come_back_only_to_the_node_that_pushed() {
    let Some(keys) = keys() else { return };
    let a = keys.queue("node-a", VISIBILITY).await;
    let b = keys.queue("node-b", VISIBILITY).await;
    let with_hint = |n| hookd_queue::Task {
        hint: Some(hookd_queue::Hint::new(format!("hint {n}"))),
        ..task(n, 0)
    };
    let hint_of = |l: &Lease| {
        l.task
            .hint
            .as_ref()
            .and_then(|h| h.get::<String>().cloned())
    };

    // Pushed and popped by the same node: the hint is back.
    a.push(vec![with_hint(1)]).await.unwrap();
    let got = pop_n(&a, 1, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(hint_of(&got[0]).as_deref(), Some("hint 1"));
    a.ack(&got).await.unwrap();

    // Popped by another node: none (it never crossed Redis).
    a.push(vec![with_hint(2)]).await.unwrap();
    let got = pop_n(&b, 1, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(hint_of(&got[0]), None);
    // Nor when node A later takes the entry over from node B: node B had it,
    // so what the hint says may be out of date.
    drop(b);
    let got = pop_n(&a, 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1, "the dead node's lease was never reclaimed");
    assert_eq!(hint_of(&got[0]), None);
    a.ack(&got).await.unwrap();
}
