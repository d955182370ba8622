//! Content expunges made by every node sharing the database, counted here.
//!
//! A delivery task may carry a copy of its message's payload (a hint), and
//! sends it only while the store's content epoch is what it was before the
//! payload was stored or read ([`crate::ContentEpoch`]). On PostgreSQL the
//! expunge may be made by another node, so each expunge that removed a payload
//! also sends `NOTIFY` on [`CHANNEL`], in the transaction of its `UPDATE`
//! (PostgreSQL delivers it at the commit, once the payload is gone), with the
//! schema as its payload; every node listens and advances its epoch for each
//! notification from its own schema. Within milliseconds of the commit, then,
//! no node sends that copy any more.
//!
//! Notifications are not kept for a listener that is away. While the
//! listening connection is down, every reading of the epoch is a new value, so
//! no copy taken meanwhile is trusted, and the epoch advances again once the
//! listener is back. (A connection that dies without the socket closing is
//! noticed only when TCP gives up; until then the hint's own age limit, 30 s
//! by default, is what bounds a missed expunge.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::PgPool;
use tokio::task::JoinHandle;

use super::error::db;
use crate::{ContentEpoch, Result};

/// The notification channel, one for every schema in the database.
pub(super) const CHANNEL: &str = "hookd_content_expunged";
/// Pauses between attempts to get the listening connection back.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const LAST_PAUSE: Duration = Duration::from_secs(5);

/// This node's count of expunges, its own and the other nodes'.
#[derive(Debug, Default)]
pub(super) struct Expunges {
    epoch: ContentEpoch,
    /// False while notifications may be missed (the listener is down).
    listening: AtomicBool,
}

impl Expunges {
    pub(super) fn current(&self) -> u64 {
        if !self.listening.load(Ordering::Acquire) {
            self.epoch.advance();
        }
        self.epoch.current()
    }

    pub(super) fn advance(&self) {
        self.epoch.advance();
    }

    /// The listener works (again): copies taken while it was away, which
    /// read an epoch that may have missed an expunge, are trusted no more.
    fn heard(&self) {
        if !self.listening.swap(true, Ordering::AcqRel) {
            self.epoch.advance();
        }
    }
}

/// Starts listening, on a connection of its own outside `pool`, and returns
/// the task that counts the notifications into `expunges`. Fails if the
/// first `LISTEN` does: a node that could not hear other nodes' expunges
/// would send what they removed.
pub(super) async fn listen(
    pool: &PgPool,
    options: PgConnectOptions,
    expunges: Arc<Expunges>,
) -> Result<JoinHandle<()>> {
    let schema: String = sqlx::query_scalar("SELECT coalesce(current_schema(), '')")
        .fetch_one(pool)
        .await
        .map_err(db)?;
    let own = PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with(options);
    let mut listener = PgListener::connect_with(&own).await.map_err(db)?;
    listener.listen(CHANNEL).await.map_err(db)?;
    expunges.heard();
    Ok(tokio::spawn(count(listener, schema, expunges)))
}

async fn count(mut listener: PgListener, schema: String, expunges: Arc<Expunges>) {
    let mut pause = FIRST_PAUSE;
    loop {
        match listener.try_recv().await {
            Ok(Some(note)) => {
                expunges.heard();
                if note.payload() == schema {
                    expunges.advance();
                }
                pause = FIRST_PAUSE;
            }
            // The connection was lost and is back, listening again: anything
            // sent in between is gone.
            Ok(None) => {
                expunges.heard();
                expunges.advance();
                pause = FIRST_PAUSE;
            }
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) => {
                expunges.listening.store(false, Ordering::Release);
                tracing::warn!(error = %e, "lost the connection that hears other nodes' expunges; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(LAST_PAUSE);
            }
        }
    }
}
