//! The embedded backend's part in group commit (`crate::group`): its grouped
//! writes, with the fan-out read from the endpoint cache.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use futures::TryStreamExt;
use hookd_core::model::{Attempt, Delivery, Message};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use tokio::sync::Notify;

use super::cache::EndpointCache;
use super::messages::{Accepts, FanOuts};
use super::{attempts, deliveries, error, messages};
use crate::group::{self, GroupWrites, Written};
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

    /// When every app's endpoints are in the cache (the usual case), the whole
    /// group goes to SQLite's thread in one call and the commit in a second;
    /// otherwise statement by statement.
    async fn write_group(
        &self,
        conn: &mut SqliteConnection,
        outcomes: &[(Attempt, Delivery)],
        accepts: &[&Message],
        fanouts: &[&Message],
    ) -> Written {
        let planned = (
            Accepts::from_cache(accepts, &self.cache),
            FanOuts::from_cache(fanouts, &self.cache),
        );
        match planned {
            (Some(accepts), Some(fanouts)) => at_once(conn, outcomes, accepts, fanouts).await,
            _ => group::in_transaction(self, conn, outcomes, accepts, fanouts).await,
        }
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

/// Writes the group in two round trips to SQLite's thread where statement by
/// statement takes five or more: `BEGIN` and every write in one call, then
/// `COMMIT` once the writes' counts are checked. Each round trip waits for the
/// writer's task to be scheduled again, and on a busy runtime (just after a
/// group's callers were answered, thousands of tasks woken at once) that wait
/// was longer than the statements themselves, with SQLite's thread idle.
///
/// The transaction is SQLite's own, begun and ended by these statements
/// (`sqlx` knows nothing of it), and is always ended here: committed, or
/// rolled back on any failure.
async fn at_once(
    conn: &mut SqliteConnection,
    outcomes: &[(Attempt, Delivery)],
    accepts: Accepts<'_>,
    fanouts: FanOuts<'_>,
) -> Written {
    let ds: Vec<&Delivery> = outcomes.iter().map(|(_, d)| d).collect();
    let mut qb = QueryBuilder::new("BEGIN; ");
    // The deliveries' updates are bracketed by the connection's running count
    // of changed rows: an update matches no row for a delivery that is gone,
    // and that outcome must fail (`NotFound`) rather than be committed.
    let updates = (!ds.is_empty()).then(|| {
        qb.push("SELECT total_changes(); ");
        let distinct = deliveries::push_updates(&mut qb, &ds);
        qb.push("SELECT total_changes(); ");
        attempts::push_inserts(&mut qb, outcomes);
        distinct
    });
    if let Err(e) = accepts.push(&mut qb) {
        // Nothing was sent.
        return Written::Refused(e);
    }
    fanouts.push(&mut qb);
    let refused = match run(conn, qb, updates.is_some()).await {
        Err(e) => e,
        Ok(ran) if ran.updated < updates.unwrap_or(0) => StoreError::NotFound,
        Ok(ran) => {
            return match sqlx::query("COMMIT").execute(&mut *conn).await {
                Ok(_) => Written::Committed(accepts.answer(), fanouts.answer(&ran.claimed)),
                // A failed commit leaves the transaction open. A deferred
                // foreign key is one that some write of the group broke.
                Err(e) => match (error::db(e), rollback(conn).await) {
                    (StoreError::NotFound, Ok(())) => Written::Refused(StoreError::NotFound),
                    (e, _) => Written::Failed(e),
                },
            };
        }
    };
    match rollback(conn).await {
        Ok(()) => Written::Refused(refused),
        // No transaction to roll back (it never began, or SQLite ended it
        // itself on an error such as a full disk), or the connection is gone:
        // every write fails with what failed first, and the connection goes.
        Err(_) => Written::Failed(refused),
    }
}

/// What a batch's rows said.
struct Ran {
    /// Deliveries the updates matched.
    updated: usize,
    /// The messages whose fan-outs were claimed.
    claimed: HashSet<String>,
}

/// Runs the batch. Its rows are the two counts of changed rows around the
/// updates (when `counted`), then the ids of the fan-outs claimed.
async fn run(
    conn: &mut SqliteConnection,
    mut qb: QueryBuilder<'_, Sqlite>,
    counted: bool,
) -> Result<Ran> {
    let mut counts = Vec::with_capacity(2);
    let mut claimed = HashSet::new();
    let mut rows = qb.build().fetch(&mut *conn);
    while let Some(row) = rows.try_next().await.map_err(error::db)? {
        if counted && counts.len() < 2 {
            counts.push(row.try_get::<i64, _>(0).map_err(error::db)?);
        } else {
            claimed.insert(row.try_get::<String, _>(0).map_err(error::db)?);
        }
    }
    let updated = match counts[..] {
        [before, after] => usize::try_from(after - before).unwrap_or(0),
        [] if !counted => 0,
        _ => {
            return Err(StoreError::Other(
                format!(
                    "the group's batch answered {} counts of changed rows, not 2",
                    counts.len()
                )
                .into(),
            ))
        }
    };
    Ok(Ran { updated, claimed })
}

async fn rollback(conn: &mut SqliteConnection) -> Result<()> {
    sqlx::query("ROLLBACK")
        .execute(&mut *conn)
        .await
        .map(drop)
        .map_err(error::db)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::SqliteStore;
    use crate::Accepted;
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
        let ep = endpoint(&app.id, "https://receiver.example/hook");
        store.create_endpoint(&ep).await.unwrap();
        let mut sets = Vec::new();
        for _ in 0..n {
            let msg = message(&app.id);
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

    /// A `user.created` message of the app, due now.
    fn message(app_id: &str) -> Message {
        Message {
            id: new_id(IdKind::Message),
            app_id: app_id.into(),
            event_id: None,
            event_type: "user.created".into(),
            payload: Some("{}".into()),
            channels: None,
            tags: None,
            created_at: hookd_core::model::now(),
            deliver_at: None,
        }
    }

    /// An enabled endpoint of the app, with no filters.
    fn endpoint(app_id: &str, url: &str) -> Endpoint {
        let t = hookd_core::model::now();
        Endpoint {
            id: new_id(IdKind::Endpoint),
            app_id: app_id.into(),
            uid: None,
            url: url.into(),
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
        }
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

    /// An app wider than `INLINE_FANOUT`, and a message to it accepted with
    /// its fan-out left pending (which also puts the app's endpoints in the
    /// cache).
    async fn pending_fan_out(store: &SqliteStore) -> Message {
        let (app, _) = outcomes_to_record(store, 0).await;
        for i in 0..crate::INLINE_FANOUT {
            let ep = endpoint(&app, &format!("https://receiver.example/hook/{i}"));
            store.create_endpoint(&ep).await.unwrap();
        }
        let msg = message(&app);
        assert!(matches!(
            store.accept_message(&msg).await.unwrap(),
            Accepted::Pending { .. }
        ));
        msg
    }

    async fn deliveries_of(store: &SqliteStore, msg_id: &str) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE msg_id = ?")
            .bind(msg_id)
            .fetch_one(&store.pool)
            .await
            .unwrap()
    }

    /// A group sent as one batch, its fan-outs worked out before they are
    /// claimed: a fan-out still pending is claimed and written, one already
    /// claimed (by a sweep, say) writes nothing and answers no deliveries.
    #[tokio::test]
    async fn a_batched_fan_out_writes_only_what_it_claims() {
        let (_dir, store, writes) = store_and_writes().await;
        let claimed_here = pending_fan_out(&store).await;
        let claimed_before = pending_fan_out(&store).await;
        sqlx::query("DELETE FROM pending_fanouts WHERE msg_id = ?")
            .bind(&claimed_before.id)
            .execute(&store.pool)
            .await
            .unwrap();
        let msgs = [&claimed_here, &claimed_before];
        let plan = FanOuts::from_cache(&msgs, &writes.cache).expect("the endpoints are cached");
        let accepts = Accepts::from_cache(&[], &writes.cache).unwrap();
        let mut conn = store.writer_pool.acquire().await.unwrap();
        let written = at_once(&mut conn, &[], accepts, plan).await;
        let Written::Committed(_, fanouts) = written else {
            panic!("{written:?}");
        };
        assert_eq!(fanouts[0].len(), crate::INLINE_FANOUT + 1);
        assert!(fanouts[1].is_empty(), "{:?}", fanouts[1]);
        assert_eq!(
            deliveries_of(&store, &claimed_here.id).await,
            (crate::INLINE_FANOUT + 1) as i64
        );
        assert_eq!(deliveries_of(&store, &claimed_before.id).await, 0);
        assert!(store
            .list_pending_fanouts(
                hookd_core::model::now() + chrono::Duration::seconds(1),
                None,
                10
            )
            .await
            .unwrap()
            .is_empty());
    }

    /// The outcomes of `sets` as one batch on the writer's connection, which
    /// must then be out of any transaction.
    async fn outcomes_at_once(
        store: &SqliteStore,
        writes: &SqliteWrites,
        sets: &[Outcomes],
    ) -> Written {
        let outcomes: Vec<(Attempt, Delivery)> = sets.iter().flatten().cloned().collect();
        let accepts = Accepts::from_cache(&[], &writes.cache).unwrap();
        let fanouts = FanOuts::from_cache(&[], &writes.cache).unwrap();
        let mut conn = store.writer_pool.acquire().await.unwrap();
        let written = at_once(&mut conn, &outcomes, accepts, fanouts).await;
        sqlx::Connection::begin(&mut *conn)
            .await
            .expect("no transaction is left open")
            .rollback()
            .await
            .unwrap();
        written
    }

    /// An outcome whose delivery is gone (its update matches no row) refuses
    /// the whole batch before its commit: nothing is stored, and the
    /// connection is left out of any transaction.
    #[tokio::test]
    async fn a_batch_with_an_outcome_for_a_missing_delivery_is_rolled_back() {
        let (_dir, store, writes) = store_and_writes().await;
        let (app, mut sets) = outcomes_to_record(&store, 2).await;
        sets[1][0].1.id = new_id(IdKind::Destination);
        let written = outcomes_at_once(&store, &writes, &sets).await;
        assert!(
            matches!(written, Written::Refused(StoreError::NotFound)),
            "{written:?}"
        );
        assert_stored(&store, &app, &sets[..1], |_| false).await;
    }

    /// A statement that fails half-way through the batch (here a duplicate
    /// attempt id) rolls back what the statements before it wrote.
    #[tokio::test]
    async fn a_batch_that_fails_half_way_is_rolled_back() {
        let (_dir, store, writes) = store_and_writes().await;
        let (app, mut sets) = outcomes_to_record(&store, 2).await;
        sets[1][0].0.id = sets[0][0].0.id.clone();
        let written = outcomes_at_once(&store, &writes, &sets).await;
        assert!(
            matches!(written, Written::Refused(StoreError::Conflict(_))),
            "{written:?}"
        );
        for (i, set) in sets.iter().enumerate() {
            let delivery = store.delivery(&set[0].1.id).await.unwrap().unwrap();
            assert_eq!(
                delivery.status,
                MessageStatus::Pending,
                "set {i}'s update is undone"
            );
        }
        let found = store
            .attempt(&app, &sets[0][0].0.msg_id, &sets[0][0].0.id)
            .await
            .unwrap();
        assert_eq!(found, None);
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
