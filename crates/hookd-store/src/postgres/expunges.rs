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
//! no copy taken meanwhile is trusted, and the epoch advances again once a new
//! connection listens. A connection that dies without its socket closing (a
//! dropped NAT mapping, a host gone) sends no error, so after
//! [`PROBE_AFTER`] without a notification the listener asks the server
//! something, and a connection that does not answer within [`PROBE_TIMEOUT`]
//! counts as lost.

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
/// Silence after which the listener checks that its connection still answers.
const PROBE_AFTER: Duration = Duration::from_secs(5);
/// How long that check may take before the connection counts as lost.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Pauses between attempts to listen again.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const LAST_PAUSE: Duration = Duration::from_secs(5);

/// This node's count of expunges, its own and the other nodes'.
#[derive(Debug, Default)]
pub(super) struct Expunges {
    epoch: ContentEpoch,
    /// True while a connection listens; false while notifications may be
    /// missed (lost, or not yet back).
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

    fn lost(&self) {
        self.listening.store(false, Ordering::Release);
    }

    /// A connection listens (again): copies taken while none did, which read
    /// an epoch that may have missed an expunge, are trusted no more.
    fn listening_again(&self) {
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
    acquire_timeout: Duration,
    expunges: Arc<Expunges>,
) -> Result<JoinHandle<()>> {
    let schema: String = sqlx::query_scalar("SELECT coalesce(current_schema(), '')")
        .fetch_one(pool)
        .await
        .map_err(db)?;
    let connect = Connect {
        options,
        acquire_timeout,
    };
    let listener = connect.subscribe().await.map_err(db)?;
    expunges.listening_again();
    Ok(tokio::spawn(count(connect, listener, schema, expunges)))
}

struct Connect {
    options: PgConnectOptions,
    acquire_timeout: Duration,
}

impl Connect {
    /// A listener on [`CHANNEL`], on a new connection in a pool of its own
    /// (so that a connection given up on is never handed out again), which
    /// reports a lost connection rather than reconnecting inside `try_recv`,
    /// so that the epoch can say so meanwhile.
    async fn subscribe(&self) -> sqlx::Result<PgListener> {
        let own = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(self.acquire_timeout)
            .connect_lazy_with(self.options.clone());
        let mut listener = PgListener::connect_with(&own).await?;
        listener.eager_reconnect(false);
        listener.ignore_pool_close_event(true);
        listener.listen(CHANNEL).await?;
        Ok(listener)
    }
}

async fn count(
    connect: Connect,
    mut listener: PgListener,
    schema: String,
    expunges: Arc<Expunges>,
) {
    loop {
        let why = hear(&mut listener, &schema, &expunges).await;
        expunges.lost();
        tracing::warn!(error = %why, "lost the connection that hears other nodes' expunges; listening again");
        drop(listener);
        let mut pause = FIRST_PAUSE;
        listener = loop {
            match connect.subscribe().await {
                Ok(l) => break l,
                Err(e) => {
                    tracing::debug!(error = %e, "could not listen for expunges yet");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(LAST_PAUSE);
                }
            }
        };
        expunges.listening_again();
        tracing::info!("listening for other nodes' expunges again");
    }
}

/// Counts the notifications from `schema` until the connection fails or stops
/// answering; returns why it ended. (`try_recv` is cancel-safe while it has a
/// connection: a message is taken from the buffer only once it is whole.)
async fn hear(listener: &mut PgListener, schema: &str, expunges: &Expunges) -> String {
    loop {
        match tokio::time::timeout(PROBE_AFTER, listener.try_recv()).await {
            Ok(Ok(Some(note))) => {
                if note.payload() == schema {
                    expunges.advance();
                }
            }
            Ok(Ok(None)) => return "the connection closed".to_owned(),
            Ok(Err(e)) => return e.to_string(),
            Err(_quiet) => {
                let probe = sqlx::query("SELECT 1").execute(&mut *listener);
                match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return e.to_string(),
                    Err(_) => return format!("no answer within {PROBE_TIMEOUT:?}"),
                }
            }
        }
    }
}
