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
