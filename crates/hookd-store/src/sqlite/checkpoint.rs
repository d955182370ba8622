//! Copying the WAL back into the database file, off the writer's path.
//!
//! Left to itself SQLite checkpoints inside the commit that pushes the WAL
//! past a threshold, so the group writer would stop for the copy and its
//! fsyncs while every caller waits on its group. Here a task of its own runs
//! a PASSIVE checkpoint, which never blocks the writer or readers, shortly
//! after commits; the writer's own checkpoint stays on, at a much higher
//! threshold, as the bound on the WAL's size should this task fall behind.

use std::sync::Arc;
use std::time::Duration;

use sqlx::SqlitePool;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The WAL size (in pages) at which a commit checkpoints by itself.
pub(super) const WRITER_CHECKPOINT_PAGES: &str = "10000";
/// How long the task lets commits gather before it copies them.
const PERIOD: Duration = Duration::from_millis(100);

/// Starts the checkpointer: each call to `notify_one` on `commits` asks for
/// one checkpoint within [`PERIOD`]. It ends when the pool closes.
pub(super) fn spawn(pool: SqlitePool, commits: Arc<Notify>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            commits.notified().await;
            tokio::time::sleep(PERIOD).await;
            if pool.is_closed() {
                return;
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                // The next commit asks again, and the writer's own checkpoint
                // bounds the WAL meanwhile.
                tracing::debug!(error = %e, "background WAL checkpoint failed");
            }
        }
    })
}
