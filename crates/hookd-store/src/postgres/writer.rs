//! PostgreSQL's part in group commit (`crate::group`): the grouped writes run
//! on one pooled connection, so a burst of messages or attempt outcomes costs
//! one transaction and one WAL flush rather than a connection and a flush each.

use async_trait::async_trait;
use hookd_core::model::{Attempt, Delivery, Message};
use sqlx::{PgConnection, Postgres};

use super::{attempts, error, messages};
use crate::group::GroupWrites;
use crate::{Accepted, Result, StoreError};

pub(super) struct PgWrites;

#[async_trait]
impl GroupWrites for PgWrites {
    type Db = Postgres;

    async fn accept_messages(
        &self,
        conn: &mut PgConnection,
        msgs: &[&Message],
    ) -> Result<Vec<Accepted>> {
        messages::accept_many(conn, msgs).await
    }

    async fn fan_out(
        &self,
        conn: &mut PgConnection,
        msgs: &[&Message],
    ) -> Result<Vec<Vec<Delivery>>> {
        messages::fan_out(conn, msgs).await
    }

    async fn record_attempts(
        &self,
        conn: &mut PgConnection,
        outcomes: &[(Attempt, Delivery)],
    ) -> Result<()> {
        attempts::record(conn, outcomes).await
    }

    fn error(e: sqlx::Error) -> StoreError {
        error::db(e)
    }
}
