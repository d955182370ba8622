//! The embedded backend's part in group commit (`crate::group`): its grouped
//! writes, with the fan-out read from the endpoint cache.

use std::sync::Arc;

use async_trait::async_trait;
use hookd_core::model::{Attempt, Delivery, Message};
use sqlx::{Sqlite, SqliteConnection};
use tokio::sync::Notify;

use super::cache::EndpointCache;
use super::{attempts, error, messages};
use crate::group::GroupWrites;
use crate::{Accepted, Result, StoreError};

pub(super) struct SqliteWrites {
    pub(super) cache: Arc<EndpointCache>,
    /// Wakes the background checkpointer (`super::checkpoint`), if any.
    pub(super) commits: Option<Arc<Notify>>,
    /// The writer's connection is the reads' one too (`sqlite::memory:`).
    pub(super) shared_connection: bool,
}

#[async_trait]
impl GroupWrites for SqliteWrites {
    type Db = Sqlite;

    async fn accept_messages(
        &self,
        conn: &mut SqliteConnection,
        msgs: &[&Message],
    ) -> Result<Vec<Accepted>> {
        messages::accept_many(conn, msgs, &self.cache).await
    }

    async fn fan_out(
        &self,
        conn: &mut SqliteConnection,
        msgs: &[&Message],
    ) -> Result<Vec<Vec<Delivery>>> {
        messages::fan_out(conn, msgs, &self.cache).await
    }

    async fn record_attempts(
        &self,
        conn: &mut SqliteConnection,
        outcomes: &[(Attempt, Delivery)],
    ) -> Result<()> {
        attempts::record(conn, outcomes).await
    }

    fn error(e: sqlx::Error) -> StoreError {
        error::db(e)
    }

    fn keeps_connection(&self) -> bool {
        !self.shared_connection
    }

    fn committed(&self) {
        if let Some(commits) = &self.commits {
            commits.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::SqliteStore;
    use crate::Store;
    use hookd_core::ids::{new_id, IdKind};
    use hookd_core::model::{Application, Endpoint, MessageStatus, TriggerType};

    /// A fixture: an app with one endpoint, and `n` messages, each with its
    /// delivery to the endpoint and a successful first attempt to record.
    async fn outcomes_to_record(store: &SqliteStore, n: usize) -> (String, Vec<Outcomes>) {
        let t = hookd_core::model::now();
        let app = Application {
            id: new_id(IdKind::App),
            uid: None,
            name: "app".into(),
            throttle_rate: None,
            metadata: Default::default(),
            created_at: t,
            updated_at: t,
        };
        store.create_app(&app).await.unwrap();
        let ep = Endpoint {
            id: new_id(IdKind::Endpoint),
            app_id: app.id.clone(),
            uid: None,
            url: "https://receiver.example/hook".into(),
            description: String::new(),
            disabled: false,
            throttle_rate: None,
            event_types: None,
            channels: None,
            metadata: Default::default(),
            headers: Default::default(),
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            old_secrets: Vec::new(),
            settings: serde_json::json!({}),
            created_at: t,
            updated_at: t,
        };
        store.create_endpoint(&ep).await.unwrap();
        let mut sets = Vec::new();
        for _ in 0..n {
            let msg = Message {
                id: new_id(IdKind::Message),
                app_id: app.id.clone(),
                event_id: None,
                event_type: "user.created".into(),
                payload: Some("{}".into()),
                channels: None,
                tags: None,
                created_at: t,
                deliver_at: None,
            };
            let delivery = store.create_message(&msg).await.unwrap().remove(0);
            let attempt = Attempt {
                id: new_id(IdKind::Attempt),
                app_id: app.id.clone(),
                msg_id: msg.id.clone(),
                endpoint_id: ep.id.clone(),
                url: ep.url.clone(),
                response: Some("ok".into()),
                response_status_code: 200,
                response_duration_ms: 3,
                status: MessageStatus::Success,
                trigger_type: TriggerType::Scheduled,
                created_at: t,
            };
            let next = Delivery {
                status: MessageStatus::Success,
                attempts: 1,
                next_attempt: None,
                ..delivery.clone()
            };
            sets.push(vec![(attempt, next)]);
        }
        (app.id, sets)
    }

    type Outcomes = Vec<(Attempt, Delivery)>;

    /// A store in a fresh file, and its backend's grouped writes.
    async fn store_and_writes() -> (tempfile::TempDir, SqliteStore, SqliteWrites) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("hookd.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        let writes = SqliteWrites {
            cache: store.endpoints.clone(),
            commits: None,
            shared_connection: false,
        };
        (dir, store, writes)
    }

    /// Checks that set `i` of `sets` is stored (its attempt, and its
    /// delivery's new state) exactly when `stored(i)`.
    async fn assert_stored(
        store: &SqliteStore,
        app: &str,
        sets: &[Outcomes],
        stored: impl Fn(usize) -> bool,
    ) {
        for (i, set) in sets.iter().enumerate() {
            let (attempt, next) = &set[0];
            let found = store
                .attempt(app, &attempt.msg_id, &attempt.id)
                .await
                .unwrap();
            let delivery = store.delivery(&next.id).await.unwrap().unwrap();
            if stored(i) {
                assert_eq!(found.as_ref(), Some(attempt), "set {i}");
                assert_eq!(&delivery, next, "set {i}");
            } else {
                assert_eq!(found, None, "set {i}'s attempt is not stored");
                assert_eq!(delivery.status, MessageStatus::Pending, "nor its outcome");
            }
        }
    }

    /// The foreign keys of deliveries and attempts are checked at the commit
    /// (migration 0008), so the statement that breaks one succeeds and the
    /// group's commit fails. The group must then go again part by part, so
    /// that only the offending write fails.
    #[tokio::test]
    async fn a_write_that_breaks_a_deferred_foreign_key_fails_alone() {
        let (_dir, store, backend) = store_and_writes().await;
        let (app, mut sets) = outcomes_to_record(&store, 3).await;
        // The middle attempt names a message that does not exist, while its
        // delivery does: only the foreign key refuses it.
        sets[1][0].0.msg_id = new_id(IdKind::Message);
        let results =
            crate::group::record_as_one_group(&store.writer_pool, &backend, sets.clone()).await;
        assert!(results[0].is_ok(), "{:?}", results[0]);
        assert!(
            matches!(results[1], Err(StoreError::NotFound)),
            "{:?}",
            results[1]
        );
        assert!(results[2].is_ok(), "{:?}", results[2]);
        assert_stored(&store, &app, &sets, |i| i != 1).await;
    }

    /// The writes of SQLite's backend, but the connection gives out at the
    /// outcomes of one attempt: the transaction they run in is ended behind
    /// the writer's back, so that its rollback fails as it would on a
    /// connection that died.
    struct DiesAt {
        inner: SqliteWrites,
        attempt_id: String,
    }

    #[async_trait]
    impl GroupWrites for DiesAt {
        type Db = Sqlite;

        async fn accept_messages(
            &self,
            conn: &mut SqliteConnection,
            msgs: &[&Message],
        ) -> Result<Vec<Accepted>> {
            self.inner.accept_messages(conn, msgs).await
        }

        async fn fan_out(
            &self,
            conn: &mut SqliteConnection,
            msgs: &[&Message],
        ) -> Result<Vec<Vec<Delivery>>> {
            self.inner.fan_out(conn, msgs).await
        }

        async fn record_attempts(
            &self,
            conn: &mut SqliteConnection,
            outcomes: &[(Attempt, Delivery)],
        ) -> Result<()> {
            if let [(attempt, _)] = outcomes {
                if attempt.id == self.attempt_id {
                    sqlx::query("COMMIT").execute(&mut *conn).await.unwrap();
                    return Err(StoreError::Unavailable("the connection died".into()));
                }
            }
            self.inner.record_attempts(conn, outcomes).await
        }

        fn error(e: sqlx::Error) -> StoreError {
            error::db(e)
        }
    }

    /// A group that fails goes again one write at a time. If the connection
    /// then fails half-way, the writes committed before it stay answered as
    /// stored, the one that met the failure and those after it are answered
    /// with an error, and none of those is stored: no caller is told "stored"
    /// for a write that is not, nor "failed" for one that is.
    #[tokio::test]
    async fn a_connection_lost_half_way_through_a_failed_group_answers_each_write_truly() {
        let (_dir, store, inner) = store_and_writes().await;
        let (app, mut sets) = outcomes_to_record(&store, 4).await;
        // The second breaks a deferred foreign key, so the group fails as a
        // whole and as one kind, and goes one write at a time; the connection
        // dies at the third.
        sets[1][0].0.msg_id = new_id(IdKind::Message);
        let backend = DiesAt {
            inner,
            attempt_id: sets[2][0].0.id.clone(),
        };
        let results =
            crate::group::record_as_one_group(&store.writer_pool, &backend, sets.clone()).await;
        assert!(
            results[0].is_ok(),
            "written before the failure: {:?}",
            results[0]
        );
        assert!(
            matches!(results[1], Err(StoreError::NotFound)),
            "its own failure: {:?}",
            results[1]
        );
        // Both are answered with what the connection's failure was (here the
        // failed rollback), the last one without having run.
        for i in [2, 3] {
            let Err(e) = &results[i] else {
                panic!("set {i} was answered as stored");
            };
            assert!(e.to_string().contains("cannot rollback"), "set {i}: {e}");
        }
        assert_stored(&store, &app, &sets, |i| i == 0).await;
    }
}
