//! Runs the store conformance suite against the embedded SQLite backend, one
//! fresh database file per test, plus the behaviour only a file has: reopening,
//! URL forms, the journal mode, and closing.

#[macro_use]
mod conformance;

use std::sync::Arc;

use hookd_store::sqlite::SqliteStore;
use hookd_store::{MessageFilter, Store, StoreError};
use tempfile::TempDir;

use conformance::{asc, new_app, new_endpoint, send, DynStore};

/// A migrated store on a new file in its own directory, which lives as long
/// as the returned guard. SQLite is always available, so this never skips.
async fn fresh() -> Option<(DynStore, TempDir)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}", dir.path().join("hookd.db").display());
    let store = hookd_store::open(&url).await.expect("open store");
    Some((store, dir))
}

conformance_tests!(fresh);

/// A store on a new file, with the file's path and the directory's guard.
async fn on_a_file() -> (DynStore, std::path::PathBuf, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookd.db");
    let store: DynStore = Arc::new(
        SqliteStore::open(&format!("sqlite:{}", path.display()))
            .await
            .unwrap(),
    );
    (store, path, dir)
}

#[tokio::test]
async fn data_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("hookd.db").display());

    let first = Arc::new(SqliteStore::open(&url).await.unwrap());
    let store: DynStore = first.clone();
    let app = new_app(&store).await;
    let ep = new_endpoint(&store, &app.id, |_| {}).await;
    let (msg, deliveries) = send(&store, &app.id, "user.created", |_| {}).await;
    drop(store);
    first.close().await;

    // A second open of the same file sees everything and migrates nothing twice.
    let reopened: DynStore = Arc::new(SqliteStore::open(&url).await.unwrap());
    assert_eq!(
        reopened.app_by_key(&app.id).await.unwrap(),
        Some(app.clone())
    );
    assert_eq!(
        reopened.endpoint_by_key(&app.id, &ep.id).await.unwrap(),
        Some(ep)
    );
    assert_eq!(
        reopened.message_by_key(&app.id, &msg.id).await.unwrap(),
        Some(msg)
    );
    assert_eq!(
        reopened.list_pending_deliveries(None, 10).await.unwrap(),
        deliveries
    );
}

/// The first success on each endpoint after a start stops its failing clock.
/// When the clock is not running, that must not need SQLite's write lock: it
/// would otherwise wait behind whatever transaction holds it (the group
/// writer's, under load) and hold up the delivery step.
#[tokio::test]
async fn stopping_a_stopped_failing_clock_needs_no_write_lock() {
    use sqlx::Connection;
    let (store, path, _dir) = on_a_file().await;
    let app = new_app(&store).await;
    let ep = new_endpoint(&store, &app.id, |_| {}).await;

    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let cleared = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        store.set_endpoint_failing_since(&ep.id, None),
    )
    .await;
    assert!(
        matches!(cleared, Ok(Ok(()))),
        "clearing a stopped clock waited for the write lock: {cleared:?}"
    );
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();

    // A running clock is still stopped.
    let now = hookd_core::model::now();
    store.endpoint_failing_since(&ep.id, now).await.unwrap();
    store
        .set_endpoint_failing_since(&ep.id, None)
        .await
        .unwrap();
    let later = now + chrono::Duration::seconds(60);
    assert_eq!(
        store
            .endpoint_failing_since(&ep.id, later)
            .await
            .unwrap()
            .timestamp_millis(),
        later.timestamp_millis()
    );
}

/// Commits leave their pages in the WAL; a task of the store's own copies
/// them into the database file soon after, so that the group writer never
/// stops to do it (its own checkpoint waits for a WAL far larger than this).
#[tokio::test]
async fn commits_are_checkpointed_into_the_file_in_the_background() {
    let (store, path, _dir) = on_a_file().await;
    let before = std::fs::metadata(&path).unwrap().len();
    let app = new_app(&store).await;
    new_endpoint(&store, &app.id, |_| {}).await;
    for _ in 0..20 {
        send(&store, &app.id, "user.created", |_| {}).await;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut size = before;
    while size <= before && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        size = std::fs::metadata(&path).unwrap().len();
    }
    assert!(
        size > before,
        "the database file stayed at {before} bytes: nothing was checkpointed"
    );
}

#[tokio::test]
async fn closed_store_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&format!("sqlite:{}", dir.path().join("x.db").display()))
        .await
        .unwrap();
    store.close().await;
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
}

#[tokio::test]
async fn opens_double_slash_urls_and_creates_missing_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("deeper").join("hookd.db");
    let store = hookd_store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    store.ping().await.unwrap();
    assert!(path.exists(), "the database file was created");
}

#[tokio::test]
async fn database_file_uses_write_ahead_logging() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookd.db");
    let store = SqliteStore::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    store.close().await;

    // The journal mode is a property of the file; read it with a bare connection.
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_store_is_one_database_for_every_caller() {
    let store = hookd_store::open("sqlite::memory:").await.unwrap();
    let app = new_app(&store).await;
    // Concurrent callers, who would each get their own database if the pool
    // opened several connections, all see the same rows.
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let (store, id) = (store.clone(), app.id.clone());
            tokio::spawn(async move { store.app_by_key(&id).await.unwrap() })
        })
        .collect();
    for reader in readers {
        assert_eq!(reader.await.unwrap(), Some(app.clone()));
    }
    let (msg, _) = send(&store, &app.id, "x", |_| {}).await;
    assert_eq!(
        store
            .list_messages(&app.id, &MessageFilter::default(), &asc(5))
            .await
            .unwrap(),
        vec![msg]
    );

    // Separate in-memory stores do not share data.
    let other = hookd_store::open("sqlite::memory:").await.unwrap();
    assert_eq!(other.app_by_key(&app.id).await.unwrap(), None);
}

#[tokio::test]
async fn unsupported_url_schemes_are_refused() {
    let err = hookd_store::open("mysql://localhost/hookd")
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, StoreError::Other(_)), "{err:?}");
}

#[tokio::test]
async fn a_url_without_a_path_is_refused() {
    assert!(SqliteStore::open("sqlite:").await.is_err());
}

/// Migration 0008 rebuilds `deliveries` and `attempts` (their foreign keys are
/// deferred to the commit). A database made before it keeps every row, every
/// index, and the cascades.
#[tokio::test]
async fn the_deferred_foreign_keys_migration_keeps_every_delivery_and_attempt() {
    use hookd_core::ids::{new_id, IdKind};
    use hookd_core::model::MessageStatus;
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
    use std::str::FromStr;

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("hookd.db").display());
    // The schema as the releases before 0008 left it: the earlier migrations,
    // run from copies of their files.
    let earlier = dir.path().join("earlier-migrations");
    std::fs::create_dir(&earlier).unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if name.as_str() < "0008" {
            std::fs::copy(entry.path(), earlier.join(&name)).unwrap();
        }
    }
    let options = SqliteConnectOptions::from_str(&url)
        .unwrap()
        .create_if_missing(true);
    let pool = SqlitePool::connect_with(options.clone()).await.unwrap();
    sqlx::migrate::Migrator::new(earlier.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let (app, ep) = (new_id(IdKind::App), new_id(IdKind::Endpoint));
    let (first, second) = (new_id(IdKind::Message), new_id(IdKind::Message));
    let (pending, delivered) = (new_id(IdKind::Destination), new_id(IdKind::Destination));
    let attempt = new_id(IdKind::Attempt);
    let rows = [
        "INSERT INTO applications (id, uid, name, throttle_rate, metadata, created_at, updated_at) \
         VALUES (?1, NULL, 'app', NULL, '{}', 1000, 1000)",
        "INSERT INTO endpoints (id, app_id, uid, url, description, disabled, throttle_rate, event_types, \
         channels, metadata, headers, secret, old_secrets, settings, created_at, updated_at) \
         VALUES (?2, ?1, NULL, 'https://receiver.example/hook', '', 0, NULL, NULL, NULL, '{}', '{}', \
         'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '[]', '{}', 1000, 1000)",
        "INSERT INTO messages (id, app_id, event_type, payload, created_at) \
         VALUES (?3, ?1, 'user.created', '{}', 1000), (?4, ?1, 'user.created', '{}', 1000)",
        "INSERT INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempts, next_attempt, \
         created_at, updated_at) VALUES (?5, ?1, ?3, ?2, 1, 0, 5000, 1000, 1000), \
         (?6, ?1, ?4, ?2, 0, 1, NULL, 1000, 2000)",
        "INSERT INTO attempts (id, app_id, msg_id, endpoint_id, url, response, response_status_code, \
         response_duration_ms, status, trigger_type, created_at) \
         VALUES (?7, ?1, ?4, ?2, 'https://receiver.example/hook', 'ok', 200, 3, 0, 0, 2000)",
    ];
    for sql in rows {
        sqlx::query(sql)
            .bind(&app)
            .bind(&ep)
            .bind(&first)
            .bind(&second)
            .bind(&pending)
            .bind(&delivered)
            .bind(&attempt)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;

    let store = SqliteStore::open(&url).await.unwrap();
    let waiting = store
        .delivery(&pending)
        .await
        .unwrap()
        .expect("pending delivery");
    assert_eq!(
        (waiting.status, waiting.attempts, waiting.msg_id.as_str()),
        (MessageStatus::Pending, 0, first.as_str())
    );
    assert_eq!(
        waiting.next_attempt.map(|t| t.timestamp_millis()),
        Some(5000)
    );
    let done = store
        .delivery(&delivered)
        .await
        .unwrap()
        .expect("delivered");
    assert_eq!((done.status, done.attempts), (MessageStatus::Success, 1));
    let owed = store.list_pending_deliveries(None, 10).await.unwrap();
    assert_eq!(
        owed.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        [pending.as_str()]
    );
    let kept = store.attempt(&app, &second, &attempt).await.unwrap();
    let kept = kept.expect("the attempt survives the rebuild");
    assert_eq!(
        (kept.response.as_deref(), kept.response_status_code),
        (Some("ok"), 200)
    );

    let pool = SqlitePool::connect_with(options).await.unwrap();
    for table in ["deliveries", "attempts"] {
        let (sql,): (String,) = sqlx::query_as("SELECT sql FROM sqlite_master WHERE name = ?")
            .bind(table)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(
            sql.matches("ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED")
                .count(),
            2,
            "{sql}"
        );
    }
    let indexes: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'index' \
         AND tbl_name IN ('deliveries', 'attempts') ORDER BY name",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        indexes.iter().map(|(n,)| n.as_str()).collect::<Vec<_>>(),
        [
            "attempts_endpoint_id",
            "attempts_msg_id",
            "deliveries_endpoint_msg",
            "deliveries_endpoint_unsettled",
            "deliveries_unfinished",
            "sqlite_autoindex_attempts_1",
            "sqlite_autoindex_deliveries_1",
            "sqlite_autoindex_deliveries_2",
        ]
    );
    pool.close().await;

    // The cascades still hold.
    assert!(store.delete_endpoint(&app, &ep).await.unwrap());
    assert_eq!(store.delivery(&pending).await.unwrap(), None);
    assert_eq!(store.attempt(&app, &second, &attempt).await.unwrap(), None);
}
