//! Runs the store conformance suite against PostgreSQL when
//! `HOOKD_TEST_POSTGRES_URL` is set (each test skips otherwise), plus the
//! behaviour only a server has: a pool that heals after its connections are
//! killed, a schema that is checked rather than migrated, fan-out racing
//! endpoint changes.
//!
//! Every test gets a schema of its own, created empty and dropped afterwards,
//! and connects with `search_path` set to it, so tests are isolated whether
//! they run as threads of one process (`cargo test`) or as processes
//! (`cargo nextest`).

#[macro_use]
mod conformance;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hookd_core::model::{Endpoint, MessageStatus};
use hookd_store::StoreError;
use sqlx::{Connection, PgConnection};

use conformance::{message_for, new_app, new_endpoint, send, DynStore};

const URL_VAR: &str = "HOOKD_TEST_POSTGRES_URL";

/// The server to test against, or `None` (said once per process) when unset.
fn server_url() -> Option<String> {
    static SKIP_NOTICE: Once = Once::new();
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            // Straight to the stream rather than `eprintln!`, which the test
            // harness captures and hides for passing tests.
            SKIP_NOTICE.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "skipping PostgreSQL conformance: {URL_VAR} not set"
                );
            });
            None
        }
    }
}

/// A schema of this test's own; dropped with everything in it when the guard
/// goes (best effort: a leftover `hookd_t_*` schema is harmless).
struct Schema {
    server: String,
    name: String,
    /// Connects inside the schema and names the connections after it, so a
    /// test can find its store's backends in `pg_stat_activity`.
    url: String,
}

impl Schema {
    async fn create() -> Option<Self> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let server = server_url()?;
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_micros();
        let name = format!(
            "hookd_t_{}_{}_{micros:x}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = PgConnection::connect(&server)
            .await
            .expect("connect to the test server");
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut admin)
            .await
            .expect("create the test schema");
        admin.close().await.ok();

        let mut url = url::Url::parse(&server).expect("HOOKD_TEST_POSTGRES_URL is a URL");
        url.query_pairs_mut()
            .append_pair("options", &format!("-c search_path={name}"))
            .append_pair("application_name", &name);
        Some(Self {
            server,
            name,
            url: url.into(),
        })
    }

    /// A connection outside the store's pool, for poking at the server.
    async fn admin(&self) -> PgConnection {
        PgConnection::connect(&self.server)
            .await
            .expect("connect to the test server")
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on, so
        // the cleanup gets a thread and a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&server).await.ok()?;
                sqlx::query("SET lock_timeout = '5s'")
                    .execute(&mut conn)
                    .await
                    .ok()?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .execute(&mut conn)
                    .await
                    .ok()
            })
        });
        let _ = cleanup.join();
    }
}

/// A migrated store in a new, empty schema, or `None` without a server.
async fn fresh() -> Option<(DynStore, Schema)> {
    let schema = Schema::create().await?;
    let store = hookd_store::open(&schema.url).await.expect("open store");
    Some((store, schema))
}

conformance_tests!(fresh);

/// Ends every server process serving the store's pool, waiting until each is
/// gone. Returns how many there were.
async fn kill_store_connections(schema: &Schema) -> usize {
    let mut admin = schema.admin().await;
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
         WHERE application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&schema.name)
    .fetch_all(&mut admin)
    .await
    .expect("terminate the store's connections");
    assert!(killed.iter().all(|k| *k), "every backend was terminated");
    killed.len()
}

/// Runs `call` until it succeeds, allowing at most one `Unavailable` first
/// (the answer a caller retries after); anything else fails the test.
async fn succeeds_within_one_retry<T, F, Fut>(mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = hookd_store::Result<T>>,
{
    match call().await {
        Ok(v) => v,
        Err(StoreError::Unavailable(_)) => call().await.expect("the retry succeeds"),
        Err(e) => panic!("expected success or Unavailable, got {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_heals_after_connections_are_killed() {
    let Some((store, schema)) = fresh().await else {
        return;
    };
    let app = new_app(&store).await;
    new_endpoint(&store, &app.id, |_| {}).await;
    // Fill the pool with several connections, all idle afterwards.
    let pings: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.ping().await })
        })
        .collect();
    for ping in pings {
        ping.await.unwrap().expect("ping");
    }

    assert!(kill_store_connections(&schema).await >= 1);

    // Reads, writes and transactions all work again, with no restart.
    let found = succeeds_within_one_retry(|| store.app_by_key(&app.id)).await;
    assert_eq!(found, Some(app.clone()));
    let msg = message_for(&app.id, "user.created");
    let deliveries = succeeds_within_one_retry(|| store.create_message(&msg)).await;
    assert_eq!(deliveries.len(), 1);

    // And again, with callers in flight on several connections at once.
    kill_store_connections(&schema).await;
    let callers: Vec<_> = (0..6)
        .map(|_| {
            let (store, app_id) = (store.clone(), app.id.clone());
            tokio::spawn(
                async move { succeeds_within_one_retry(|| store.app_by_key(&app_id)).await },
            )
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), Some(app.clone()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_writer_heals_when_its_connection_is_killed_while_busy() {
    let Some((store, schema)) = fresh().await else {
        return;
    };
    let app = new_app(&store).await;
    new_endpoint(&store, &app.id, |_| {}).await;
    // Writers that never pause, so the group writer keeps its connection from
    // one group to the next, and is holding it when it is killed: writes must
    // come back while it stays busy, with no restart. (The writer also lets its
    // connection go whenever it finds nothing waiting, which heals it too, so
    // this cannot single out its dropping a connection after a failed group.)
    let killed = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..32)
        .map(|_| {
            let (store, app_id, killed) = (store.clone(), app.id.clone(), killed.clone());
            tokio::spawn(async move {
                let (mut unavailable, mut after_kill) = (0, 0);
                let deadline = Instant::now() + Duration::from_secs(20);
                while after_kill < 20 && Instant::now() < deadline {
                    let was_killed = killed.load(Ordering::SeqCst);
                    match store.create_message(&message_for(&app_id, "a.b")).await {
                        Ok(_) if was_killed => after_kill += 1,
                        Ok(_) => {}
                        Err(StoreError::Unavailable(_)) => unavailable += 1,
                        Err(e) => panic!("expected success or Unavailable, got {e:?}"),
                    }
                }
                (unavailable, after_kill)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(kill_store_connections(&schema).await >= 1);
    killed.store(true, Ordering::SeqCst);
    for w in writers {
        let (unavailable, after_kill) = w.await.unwrap();
        assert_eq!(
            after_kill, 20,
            "writes succeed again after the kill, with no restart"
        );
        // A caller may meet a dead pooled connection as well as the writer's.
        assert!(
            unavailable <= 3,
            "only the work on the killed connections fails ({unavailable} did)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_behind_is_refused_without_migrate() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let err = hookd_store::open_with(&schema.url, false)
        .await
        .err()
        .expect("an empty schema is refused");
    assert!(matches!(err, StoreError::Other(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(
            "the database schema is behind this hookd; run `hookd migrate` or start with `serve --migrate`"
        ),
        "{text}"
    );
    // Checking changed nothing: not even sqlx's bookkeeping table was created.
    let mut admin = schema.admin().await;
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = $1",
    )
    .bind(&schema.name)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(tables, 0);

    let migrated = hookd_store::open_with(&schema.url, true).await.unwrap();
    migrated.ping().await.unwrap();
    let checked = hookd_store::open_with(&schema.url, false).await.unwrap();
    checked.ping().await.unwrap();

    // A database missing only its newest migration is behind too, and the
    // message says which migration is missing.
    let newest: i64 = sqlx::query_scalar(&format!(
        "DELETE FROM {}._sqlx_migrations WHERE version = (SELECT MAX(version) FROM {0}._sqlx_migrations) \
         RETURNING version",
        schema.name
    ))
    .fetch_one(&mut admin)
    .await
    .unwrap();
    let text = hookd_store::open_with(&schema.url, false)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(text.contains("schema is behind"), "{text}");
    assert!(text.contains(&format!("{newest:04}")), "{text}");
}

#[tokio::test]
async fn both_postgres_url_schemes_open_the_store() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let store = hookd_store::open(&schema.url).await.unwrap();
    store.ping().await.unwrap();
    let long_form = schema.url.replacen("postgres://", "postgresql://", 1);
    assert!(long_form.starts_with("postgresql://"), "{long_form}");
    let store = hookd_store::open(&long_form).await.unwrap();
    store.ping().await.unwrap();
}

#[tokio::test]
async fn unsupported_schemes_are_refused_naming_both_backends() {
    let text = hookd_store::open("mysql://localhost/hookd")
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        text.contains("sqlite:") && text.contains("postgres://"),
        "{text}"
    );
}

/// Messages created while endpoints are being deleted and disabled always
/// succeed, and each fans out exactly to the endpoints that were live when it
/// was stored: never to a deleted or disabled one, never missing a live one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_is_consistent_with_concurrent_endpoint_changes() {
    let Some((store, _schema)) = fresh().await else {
        return;
    };
    let app = new_app(&store).await;
    let mut endpoints: Vec<Endpoint> = Vec::new();
    for _ in 0..24 {
        endpoints.push(new_endpoint(&store, &app.id, |_| {}).await);
    }

    let senders: Vec<_> = (0..4)
        .map(|_| {
            let (store, app_id) = (store.clone(), app.id.clone());
            tokio::spawn(async move {
                let mut sent = Vec::new();
                for _ in 0..15 {
                    sent.push(send(&store, &app_id, "user.created", |_| {}).await);
                }
                sent
            })
        })
        .collect();
    let changer = {
        let (store, app_id, endpoints) = (store.clone(), app.id.clone(), endpoints.clone());
        tokio::spawn(async move {
            for (i, ep) in endpoints.iter().enumerate() {
                if i % 2 == 0 {
                    assert!(store.delete_endpoint(&app_id, &ep.id).await.unwrap());
                } else {
                    assert!(store
                        .disable_endpoint(&app_id, &ep.id, hookd_core::model::now())
                        .await
                        .unwrap());
                }
            }
        })
    };
    let mut sent = Vec::new();
    for sender in senders {
        sent.extend(sender.await.unwrap());
    }
    changer.await.unwrap();

    // The endpoints change one at a time, in order, so each message must have
    // gone to a suffix of the list: everything from the first endpoint still
    // live when it was stored.
    for (msg, deliveries) in &sent {
        let mut got: Vec<&str> = deliveries.iter().map(|d| d.endpoint_id.as_str()).collect();
        got.sort_unstable();
        let first_live = endpoints.len() - got.len();
        let mut expected: Vec<&str> = endpoints[first_live..]
            .iter()
            .map(|e| e.id.as_str())
            .collect();
        expected.sort_unstable();
        assert_eq!(got, expected, "message {}", msg.id);
        assert!(deliveries
            .iter()
            .all(|d| d.status == MessageStatus::Pending));
    }
}

/// A receiver's answer may hold NUL characters (binary bodies survive the
/// lossy UTF-8 decoding as U+0000), which a PostgreSQL TEXT value cannot;
/// recording such an attempt must still work and read back exactly.
#[tokio::test]
async fn attempt_responses_keep_nul_characters() {
    let Some((store, _schema)) = fresh().await else {
        return;
    };
    let app = new_app(&store).await;
    new_endpoint(&store, &app.id, |_| {}).await;
    let (msg, deliveries) = send(&store, &app.id, "user.created", |_| {}).await;
    let attempt = hookd_core::model::Attempt {
        response: Some("\u{0}\u{1}gzip\u{0}\u{fffd}".to_owned()),
        ..conformance::attempt_on(
            &deliveries[0],
            MessageStatus::Fail,
            500,
            hookd_core::model::now(),
        )
    };
    store
        .record_attempt(&attempt, &deliveries[0])
        .await
        .expect("recorded");
    assert_eq!(
        store.attempt(&app.id, &msg.id, &attempt.id).await.unwrap(),
        Some(attempt)
    );
}

/// PostgreSQL's text cannot hold the NUL character. A name or an event type
/// holding one is refused as invalid (the API's 422), not a server error, and
/// nothing is written; the group writer's fallback keeps it from failing the
/// writes grouped with it.
#[tokio::test]
async fn text_with_a_nul_character_is_invalid_and_changes_nothing() {
    let Some((store, _schema)) = fresh().await else {
        return;
    };
    let bad_app = conformance::app_named("bad\u{0}name");
    let refused = store.create_app(&bad_app).await;
    assert!(
        matches!(&refused, Err(StoreError::Invalid(text)) if text.contains("NUL")),
        "{refused:?}"
    );
    assert_eq!(store.app_by_key(&bad_app.id).await.unwrap(), None);

    let app = new_app(&store).await;
    new_endpoint(&store, &app.id, |_| {}).await;
    let bad = message_for(&app.id, "user.\u{0}created");
    let good = message_for(&app.id, "user.created");
    let (bad_result, good_result) =
        tokio::join!(store.create_message(&bad), store.create_message(&good));
    assert!(
        matches!(bad_result, Err(StoreError::Invalid(_))),
        "{bad_result:?}"
    );
    assert_eq!(good_result.expect("the good message is stored").len(), 1);
    assert_eq!(store.message_by_key(&app.id, &bad.id).await.unwrap(), None);
}

/// Listings page by comparing keys, and the API's cursors assume bytewise
/// order (`A` < `_` < `a`), which a database's default collation (often
/// `en_US.UTF-8`) does not give. Every key column is declared `COLLATE "C"`;
/// the test server's own default may well be `C`, so the columns are checked
/// in the catalogue rather than through a listing.
#[tokio::test]
async fn paged_keys_compare_bytewise_whatever_the_database_collation() {
    let Some((_store, schema)) = fresh().await else {
        return;
    };
    let mut admin = schema.admin().await;
    let not_bytewise: Vec<String> = sqlx::query_scalar(
        "SELECT table_name || '.' || column_name FROM information_schema.columns \
         WHERE table_schema = $1 AND table_name <> '_sqlx_migrations' AND data_type = 'text' \
         AND (column_name IN ('id', 'uid', 'key', 'scope', 'event_id', 'event_type') \
              OR column_name LIKE '%\\_id' OR (table_name = 'event_types' AND column_name = 'name')) \
         AND collation_name IS DISTINCT FROM 'C' \
         ORDER BY 1",
    )
    .bind(&schema.name)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(not_bytewise.is_empty(), "{not_bytewise:?}");
}

/// Two nodes on one database: each answers app lookups from memory for a
/// moment, so another node's change to an app shows within about a second,
/// and its own at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_nodes_app_changes_show_within_a_second() {
    let Some((a, schema)) = fresh().await else {
        return;
    };
    let b: DynStore = std::sync::Arc::new(
        hookd_store::postgres::PgStore::connect(&schema.url, false)
            .await
            .expect("second node"),
    );
    let app = hookd_core::model::Application {
        uid: Some("first".to_owned()),
        ..conformance::app_named("shared")
    };
    a.create_app(&app).await.unwrap();
    assert_eq!(
        b.app_by_key_cached("first").await.unwrap(),
        Some(app.clone())
    );

    let renamed = hookd_core::model::Application {
        uid: Some("second".to_owned()),
        ..app.clone()
    };
    a.update_app(&renamed).await.unwrap();
    assert_eq!(
        a.app_by_key_cached(&app.id).await.unwrap(),
        Some(renamed.clone())
    );
    // Uncached lookups see it at once on every node.
    assert_eq!(b.app_by_key(&app.id).await.unwrap(), Some(renamed.clone()));
    let changed = std::time::Instant::now();
    let deadline = changed + std::time::Duration::from_secs(5);
    loop {
        if b.app_by_key_cached(&app.id).await.unwrap() == Some(renamed.clone()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node B never saw node A's change"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        changed.elapsed() < std::time::Duration::from_secs(3),
        "node B saw the change only after {:?}",
        changed.elapsed()
    );
}

/// Polls `cond` every 20 ms for up to 5 s; false if it never held.
async fn within_5s(cond: impl FnMut() -> bool) -> bool {
    within(Duration::from_secs(5), cond).await
}

/// Polls `cond` every 20 ms for up to `limit`; false if it never held.
async fn within(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// A delivery task may hold a copy of its message's payload while the
/// content epoch is unchanged. An expunge made through another node on the
/// same database must change this node's epoch too, within moments (not
/// only when the copy's 30 s age limit runs out), and one made in another
/// schema (another deployment) must not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_nodes_expunge_changes_this_nodes_content_epoch() {
    let Some((a, schema)) = fresh().await else {
        return;
    };
    let b: DynStore = Arc::new(
        hookd_store::postgres::PgStore::connect(&schema.url, false)
            .await
            .expect("second node"),
    );
    let (elsewhere, _other_schema) = fresh().await.expect("a second schema");
    let app = new_app(&a).await;
    let (msg, _) = send(&a, &app.id, "user.created", |_| {}).await;

    let before = b.content_epoch();
    assert_eq!(b.content_epoch(), before, "steady while nothing happens");
    let unrelated = elsewhere.content_epoch();

    assert!(a.expunge_message_content(&app.id, &msg.id).await.unwrap());
    assert!(
        within_5s(|| b.content_epoch() != before).await,
        "node B's epoch never changed after node A's expunge"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        elsewhere.content_epoch(),
        unrelated,
        "an expunge in another schema changed this one's epoch"
    );
}

/// Notifications sent while the listening connection is down are lost, so
/// losing it changes the epoch (copies taken before are not trusted), and the
/// node listens again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_listening_connection_changes_the_content_epoch() {
    let Some((store, schema)) = fresh().await else {
        return;
    };
    let before = store.content_epoch();
    assert_eq!(store.content_epoch(), before);
    assert!(kill_store_connections(&schema).await >= 1);
    assert!(
        within_5s(|| store.content_epoch() != before).await,
        "the epoch did not change when the listener lost its connection"
    );
    // Back to listening: the epoch holds still again, and hears expunges.
    let mut last = store.content_epoch();
    assert!(
        within_5s(|| {
            let now = store.content_epoch();
            std::mem::replace(&mut last, now) == now
        })
        .await,
        "the epoch never settled: the listener did not come back"
    );
    let app = new_app(&store).await;
    let (msg, _) = send(&store, &app.id, "user.created", |_| {}).await;
    let settled = store.content_epoch();
    let other: DynStore = Arc::new(
        hookd_store::postgres::PgStore::connect(&schema.url, false)
            .await
            .expect("second node"),
    );
    assert!(other
        .expunge_message_content(&app.id, &msg.id)
        .await
        .unwrap());
    assert!(
        within_5s(|| store.content_epoch() != settled).await,
        "after reconnecting, another node's expunge went unheard"
    );
}

/// A listening connection that stops answering without closing (its server
/// process stopped here, which is how a dropped NAT mapping or a vanished
/// host looks from the client) counts as lost once the listener's probe goes
/// unanswered, some 7 s later. Stopping the process needs the server on this
/// host and the right to signal it; the test skips, saying so, without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listening_connection_that_stops_answering_counts_as_lost() {
    let Some((store, schema)) = fresh().await else {
        return;
    };
    let mut admin = schema.admin().await;
    let pid: i32 = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query ILIKE 'LISTEN%'",
    )
    .bind(&schema.name)
    .fetch_one(&mut admin)
    .await
    .expect("the store's listening connection");
    let signal = |sig: &str| {
        std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success())
    };
    let before = store.content_epoch();
    if !signal("-STOP") {
        let _ = writeln!(
            std::io::stderr(),
            "skipping: cannot stop PostgreSQL backend {pid} from here"
        );
        return;
    }
    struct Resume<F: Fn(&str) -> bool>(F);
    impl<F: Fn(&str) -> bool> Drop for Resume<F> {
        fn drop(&mut self) {
            (self.0)("-CONT");
        }
    }
    let _resume = Resume(signal);
    assert!(
        within(Duration::from_secs(15), || store.content_epoch() != before).await,
        "the epoch did not change though the listening connection stopped answering"
    );
}
