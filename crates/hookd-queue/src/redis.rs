//! The Redis queue, shared by every hookd node pointed at the same Redis.
//!
//! Keys, all under `prefix` (default `hookd`):
//! - `{prefix}:ready`, a stream of due tasks (field `t` = the task as JSON),
//!   read through the consumer group `{prefix}-workers`. An entry stays in the
//!   stream, and in the group's pending list, while it is leased; `ack` removes
//!   it (XACK + XDEL), so the stream holds exactly the unacknowledged tasks.
//!   Acknowledgements made while one such call is on its way go together in
//!   the next (S1: 20,000 calls became 872).
//! - `{prefix}:delayed`, a sorted set of future tasks: member = task JSON,
//!   score = due time in ms. `pop` moves due members to the stream with a Lua
//!   script, so a task is never in both places, nor in neither.
//!
//! Due or not is decided by the Redis server's clock (`TIME` inside scripts),
//! so nodes whose clocks disagree still agree on what is due.
//!
//! Leases: a live process refreshes the leases it holds every third of the
//! visibility timeout, however long the engine parks them. Only the leases of
//! a process that stopped (crashed, killed, cut off from Redis) go stale, and
//! after the visibility timeout any node's `pop` reclaims them (XAUTOCLAIM).
//!
//! Healing: a consumer group or stream that disappeared (Redis restarted
//! without persistence, a key deleted by hand) shows up as `NOGROUP` (or
//! `UNBLOCKED` for a blocked read); the group is then recreated from the start
//! of the stream and the command retried once. Connection errors come back as
//! [`QueueError::Unavailable`] while `ConnectionManager` reconnects in the
//! background; the caller retries. Nothing here needs a hookd restart.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use ::redis::{RedisError, RedisResult};
use async_trait::async_trait;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::{HintBudget, Lease, Queue, QueueError, Result, SharedLimits, Task};

mod scripts;
use scripts::{ACK, LEN, PACE, PROMOTE, PRUNE, PUSH, REFRESH, TAKE_SLOT};

/// Longest single blocking read, so that delayed tasks coming due and stale
/// leases of dead nodes are noticed within this time even when nothing is pushed.
const MAX_BLOCK: Duration = Duration::from_secs(1);
/// Most items one script call handles, so no call holds Redis for long.
const BATCH: usize = 1000;
/// Shorter timeouts would make the lease refresh a constant load on Redis.
const MIN_VISIBILITY: Duration = Duration::from_millis(100);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Heartbeats between two sweeps of departed consumers.
const PRUNE_EVERY: u32 = 12;
/// Most hints of pushed tasks kept for this process's own pops.
const MAX_LOCAL_HINTS: usize = 20_000;

#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Prefix of every key; the nodes sharing one queue use the same prefix.
    pub prefix: String,
    /// This process's name in the consumer group. Must differ between live
    /// processes so that the pending list says who holds what.
    pub consumer: String,
    /// How long the leases of a process that stopped refreshing them (it
    /// died, or lost Redis) stay invisible before another node reclaims them.
    /// At least 100 ms.
    pub visibility_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            prefix: "hookd".into(),
            consumer: default_consumer(),
            visibility_timeout: Duration::from_secs(30),
        }
    }
}

/// `hostname-pid-random`: readable in `XINFO CONSUMERS`, unique per process.
fn default_consumer() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "hookd".into());
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("{host}-{}-{:08x}", std::process::id(), random as u32)
}

pub struct RedisQueue {
    inner: Arc<Inner>,
    heartbeat: AbortHandle,
}

struct Inner {
    conn: ConnectionManager,
    /// A blocked `XREADGROUP` holds its connection until it returns; it gets its
    /// own so that pushes and acks never queue behind it.
    blocking: tokio::sync::Mutex<ConnectionManager>,
    ready: String,
    delayed: String,
    group: String,
    consumer: String,
    visibility: Duration,
    /// Entry ids leased by this process and not yet acknowledged.
    held: Mutex<HashSet<String>>,
    /// Where the next `XAUTOCLAIM` scan resumes, so that a long pending list
    /// is walked whole rather than its first entries over and over.
    cursor: Mutex<String>,
    resets: AtomicU64,
    /// Hints of the tasks this process pushed (see [`LocalHints`]).
    hints: Mutex<LocalHints>,
    /// What those hints may hold.
    hint_budget: HintBudget,
    /// Acknowledgements waiting for the next `ACK` call (see [`flush_acks`]).
    acks: Mutex<AckBatch>,
}

/// Acknowledgements gathered while an `ACK` call is on its way: under load
/// many steps finish within one round trip to Redis, and they all go in the
/// next call instead of one call each.
#[derive(Default)]
struct AckBatch {
    ids: Vec<String>,
    /// One per caller, answered once the call with its ids has returned.
    waiters: Vec<tokio::sync::oneshot::Sender<std::result::Result<(), String>>>,
    /// A [`flush_acks`] task is running; it takes what is added meanwhile.
    flushing: bool,
}

/// Sends the gathered acknowledgements, and those that gather meanwhile,
/// until none are left. It runs as a task of its own so that a caller that
/// stops waiting does not strand the others.
async fn flush_acks(q: Arc<Inner>) {
    loop {
        let (ids, waiters) = {
            let mut batch = q.acks.lock().expect("ack lock poisoned");
            if batch.waiters.is_empty() {
                batch.flushing = false;
                return;
            }
            (
                std::mem::take(&mut batch.ids),
                std::mem::take(&mut batch.waiters),
            )
        };
        let mut outcome = Ok(());
        for chunk in ids.chunks(BATCH) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            if let Err(e) = q.healing(|| q.ack(&refs)).await {
                outcome = Err(e.to_string());
                break;
            }
        }
        for waiter in waiters {
            let _ = waiter.send(outcome.clone());
        }
    }
}

/// A hint never crosses Redis, but the node that pushes a task is often the
/// one that pops it (a node with both roles). The hints of its pushes are kept
/// here, keyed by what identifies the task, and given back when the same task
/// is read from the stream for the first time; the oldest are forgotten past
/// [`MAX_LOCAL_HINTS`]. Reclaimed entries never get one: another node had them,
/// so what the hint says may be out of date.
#[derive(Default)]
struct LocalHints {
    by_task: HashMap<HintKey, crate::Hint>,
    order: VecDeque<HintKey>,
}

type HintKey = (String, i64, bool);

fn hint_key(task: &Task) -> HintKey {
    (
        task.delivery_id.clone(),
        task.due.timestamp_millis(),
        task.manual,
    )
}

impl LocalHints {
    fn keep(&mut self, task: &Task) {
        let Some(hint) = &task.hint else { return };
        let key = hint_key(task);
        if self.by_task.insert(key.clone(), hint.clone()).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > MAX_LOCAL_HINTS {
            if let Some(old) = self.order.pop_front() {
                self.by_task.remove(&old);
            }
        }
    }

    fn take(&mut self, task: &mut Task) {
        if self.by_task.is_empty() {
            return;
        }
        if let Some(hint) = self.by_task.remove(&hint_key(task)) {
            task.hint = Some(hint);
        }
    }
}

impl RedisQueue {
    /// Connects and makes sure the consumer group exists.
    pub async fn connect(url: &str, opts: RedisOptions) -> Result<Self> {
        if opts.visibility_timeout < MIN_VISIBILITY {
            return Err(QueueError::Unavailable(
                "the Redis queue's visibility timeout must be at least 100 ms".into(),
            ));
        }
        let client = ::redis::Client::open(url).map_err(unavailable)?;
        let config = |response_timeout| {
            ConnectionManagerConfig::new()
                .set_connection_timeout(CONNECT_TIMEOUT)
                .set_response_timeout(response_timeout)
                .set_number_of_retries(2)
                .set_max_delay(1_000)
        };
        let conn = ConnectionManager::new_with_config(client.clone(), config(RESPONSE_TIMEOUT))
            .await
            .map_err(unavailable)?;
        let blocking =
            ConnectionManager::new_with_config(client, config(MAX_BLOCK + RESPONSE_TIMEOUT))
                .await
                .map_err(unavailable)?;
        let inner = Arc::new(Inner {
            conn,
            blocking: tokio::sync::Mutex::new(blocking),
            ready: format!("{}:ready", opts.prefix),
            delayed: format!("{}:delayed", opts.prefix),
            group: format!("{}-workers", opts.prefix),
            consumer: opts.consumer,
            visibility: opts.visibility_timeout,
            held: Mutex::default(),
            cursor: Mutex::new("0-0".into()),
            resets: AtomicU64::new(0),
            hints: Mutex::default(),
            hint_budget: HintBudget::new(HintBudget::DEFAULT_CAP),
            acks: Mutex::default(),
        });
        inner.create_group().await?;
        let heartbeat = tokio::spawn(heartbeat(Arc::downgrade(&inner))).abort_handle();
        Ok(Self { inner, heartbeat })
    }
}

impl Drop for RedisQueue {
    fn drop(&mut self) {
        // Stop refreshing: whatever is still leased becomes reclaimable after
        // the visibility timeout, exactly as if this process had died.
        self.heartbeat.abort();
    }
}

/// Keeps this process's leases fresh until the queue is dropped.
async fn heartbeat(inner: Weak<Inner>) {
    let Some(period) = inner.upgrade().map(|i| i.visibility / 3) else {
        return;
    };
    let mut ticks = 0u32;
    loop {
        tokio::time::sleep(period).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if let Err(e) = inner.refresh().await {
            // `pop` heals and reports; the next tick tries again.
            tracing::debug!(error = %e, "could not refresh Redis queue leases");
        }
        ticks += 1;
        if ticks == PRUNE_EVERY {
            ticks = 0;
            if let Err(e) = inner.prune().await {
                tracing::debug!(error = %e, "could not prune Redis queue consumers");
            }
        }
    }
}

impl Inner {
    /// Creates the group unless it exists; true when it had to be created.
    async fn create_group(&self) -> Result<bool> {
        let created: RedisResult<()> = ::redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.ready)
            .arg(&self.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.conn.clone())
            .await;
        let fresh = match created {
            Ok(()) => true,
            Err(e) if e.code() == Some("BUSYGROUP") => false,
            Err(e) => return Err(unavailable(e)),
        };
        // A new epoch whenever the group had to be made anew; otherwise only
        // if none is set (a first start).
        let epoch = format!(
            "{:016x}",
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
        );
        let mut set = ::redis::cmd("SET");
        set.arg(format!("{}:epoch", self.prefix())).arg(epoch);
        if !fresh {
            set.arg("NX");
        }
        let _: Option<String> = set
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(fresh)
    }

    /// Runs `op`; if the stream or group was lost, recreates it and runs `op`
    /// once more.
    async fn healing<T, F, Fut>(&self, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        match op().await {
            Err(e) if lost_state(&e) => {
                if self.create_group().await? {
                    let resets = self.resets.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::warn!(
                        queue.stream = %self.ready, resets, cause = %e,
                        "Redis queue state was lost (Redis restarted without persistence, or keys were \
                         deleted); recreated the consumer group; tasks queued before are gone"
                    );
                }
                op().await.map_err(unavailable)
            }
            r => r.map_err(unavailable),
        }
    }

    async fn push(&self, tasks: &[Task]) -> RedisResult<()> {
        let mut script = PUSH.prepare_invoke();
        script.key(&self.ready).key(&self.delayed);
        for task in tasks {
            let json = serde_json::to_string(task).map_err(|e| {
                RedisError::from((
                    ::redis::ErrorKind::ClientError,
                    "task encoding",
                    e.to_string(),
                ))
            })?;
            script.arg(task.due.timestamp_millis()).arg(json);
        }
        script.invoke_async(&mut self.conn.clone()).await
    }

    /// Promotes due delayed tasks; says how long until the next one is due.
    async fn promote(&self) -> RedisResult<Option<Duration>> {
        let wait_ms: i64 = PROMOTE
            .key(&self.delayed)
            .key(&self.ready)
            .arg(BATCH)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(u64::try_from(wait_ms).ok().map(Duration::from_millis))
    }

    /// Takes over entries leased by others and not refreshed for longer than
    /// the visibility timeout.
    async fn reclaim(&self, max: usize) -> RedisResult<Vec<StreamId>> {
        let cursor = self.cursor.lock().expect("cursor lock poisoned").clone();
        let reply: StreamAutoClaimReply = ::redis::cmd("XAUTOCLAIM")
            .arg(&self.ready)
            .arg(&self.group)
            .arg(&self.consumer)
            .arg(millis(self.visibility))
            .arg(cursor)
            .arg("COUNT")
            .arg(max)
            .query_async(&mut self.conn.clone())
            .await?;
        *self.cursor.lock().expect("cursor lock poisoned") = reply.next_stream_id;
        Ok(reply.claimed)
    }

    /// Reads entries never delivered to the group, blocking up to `block` for
    /// one to arrive (not at all when `None`).
    async fn read(
        &self,
        max: usize,
        block: Option<Duration>,
        deadline: Instant,
    ) -> RedisResult<Vec<StreamId>> {
        let mut cmd = ::redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.group)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(max);
        if let Some(block) = block {
            cmd.arg("BLOCK").arg(millis(block).max(1));
        }
        cmd.arg("STREAMS").arg(&self.ready).arg(">");
        let reply: Option<StreamReadReply> = if block.is_some() {
            // Another pop is blocked already; wait for it, within our own deadline.
            let Ok(mut conn) = tokio::time::timeout_at(deadline, self.blocking.lock()).await else {
                return Ok(Vec::new());
            };
            cmd.query_async(&mut *conn).await?
        } else {
            cmd.query_async(&mut self.conn.clone()).await?
        };
        Ok(reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .collect())
    }

    async fn ack(&self, ids: &[&str]) -> RedisResult<()> {
        ACK.key(&self.ready)
            .arg(&self.group)
            .arg(ids)
            .invoke_async(&mut self.conn.clone())
            .await
    }

    /// Turns entries into leases and remembers them as held. Entries that do
    /// not decode are dropped from the stream (they would come back forever).
    /// Entries this process already holds are skipped: reclaiming them only
    /// means their refresh came late (Redis was unreachable for a while), and
    /// the engine still has them.
    async fn lease(&self, entries: Vec<StreamId>, first_read: bool) -> Vec<Lease> {
        let mut leases = Vec::with_capacity(entries.len());
        let mut bad = Vec::new();
        {
            let mut held = self.held.lock().expect("held lock poisoned");
            let mut hints = self.hints.lock().expect("hints lock poisoned");
            for entry in entries {
                if held.contains(&entry.id) {
                    continue;
                }
                let task = entry
                    .get::<String>("t")
                    .and_then(|json| serde_json::from_str::<Task>(&json).ok());
                match task {
                    Some(mut task) => {
                        if first_read {
                            hints.take(&mut task);
                        }
                        held.insert(entry.id.clone());
                        leases.push(Lease {
                            task,
                            receipt: entry.id,
                        });
                    }
                    None => bad.push(entry.id),
                }
            }
        }
        if !bad.is_empty() {
            tracing::warn!(queue.stream = %self.ready, entries = ?bad, "dropping queue entries that are not tasks");
            let ids: Vec<&str> = bad.iter().map(String::as_str).collect();
            if let Err(e) = self.ack(&ids).await {
                tracing::warn!(error = %e, "could not drop undecodable queue entries");
            }
        }
        leases
    }

    async fn refresh(&self) -> RedisResult<()> {
        let ids: Vec<String> = {
            let held = self.held.lock().expect("held lock poisoned");
            held.iter().cloned().collect()
        };
        for chunk in ids.chunks(BATCH) {
            let gone: Vec<String> = REFRESH
                .key(&self.ready)
                .arg(&self.group)
                .arg(&self.consumer)
                .arg(chunk)
                .invoke_async(&mut self.conn.clone())
                .await?;
            if !gone.is_empty() {
                let mut held = self.held.lock().expect("held lock poisoned");
                for id in &gone {
                    held.remove(id);
                }
            }
        }
        Ok(())
    }

    async fn prune(&self) -> RedisResult<()> {
        let _: i64 = PRUNE
            .key(&self.ready)
            .arg(&self.group)
            .arg(millis(self.visibility * 4))
            .arg(&self.consumer)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Queue for RedisQueue {
    async fn push(&self, mut tasks: Vec<Task>) -> Result<()> {
        // Due tasks enter the stream in due order, as the embedded queue hands them out.
        tasks.sort_by_key(|t| t.due);
        {
            let mut hints = self.inner.hints.lock().expect("hints lock poisoned");
            for task in &tasks {
                hints.keep(task);
            }
        }
        for chunk in tasks.chunks(BATCH) {
            self.inner.push(chunk).await.map_err(unavailable)?;
        }
        Ok(())
    }

    async fn pop(&self, max: usize, wait: Duration) -> Result<Vec<Lease>> {
        let q = &self.inner;
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + wait;
        loop {
            let next_due = q.promote().await.map_err(unavailable)?;
            let reclaimed = q.healing(|| q.reclaim(max)).await?;
            let mut leases = q.lease(reclaimed, false).await;
            if leases.is_empty() {
                let left = deadline.saturating_duration_since(Instant::now());
                // Block (every pass waits here) until a push, the next delayed
                // task's due time, or MAX_BLOCK, whichever comes first.
                let block = (!left.is_zero())
                    .then(|| left.min(next_due.unwrap_or(MAX_BLOCK)).min(MAX_BLOCK));
                let read = q.healing(|| q.read(max, block, deadline)).await?;
                leases = q.lease(read, true).await;
            }
            if !leases.is_empty() {
                return Ok(leases);
            }
            if Instant::now() >= deadline {
                return Ok(Vec::new());
            }
        }
    }

    async fn ack(&self, leases: &[Lease]) -> Result<()> {
        if leases.is_empty() {
            return Ok(());
        }
        let q = &self.inner;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let start = {
            let mut batch = q.acks.lock().expect("ack lock poisoned");
            batch.ids.extend(leases.iter().map(|l| l.receipt.clone()));
            batch.waiters.push(tx);
            !std::mem::replace(&mut batch.flushing, true)
        };
        if start {
            tokio::spawn(flush_acks(q.clone()));
        }
        rx.await
            .map_err(|_| QueueError::Unavailable("the acknowledgement task stopped".into()))?
            .map_err(|e| QueueError::Unavailable(e.into()))?;
        let mut held = q.held.lock().expect("held lock poisoned");
        for lease in leases {
            held.remove(&lease.receipt);
        }
        Ok(())
    }

    /// Approximate: another node may be pushing or popping meanwhile.
    async fn len(&self) -> Result<usize> {
        let q = &self.inner;
        q.healing(|| async move {
            LEN.key(&q.ready)
                .key(&q.delayed)
                .arg(&q.group)
                .invoke_async(&mut q.conn.clone())
                .await
        })
        .await
    }

    fn resets(&self) -> u64 {
        self.inner.resets.load(Ordering::Relaxed)
    }

    async fn epoch(&self) -> Result<Option<String>> {
        let q = &self.inner;
        ::redis::cmd("GET")
            .arg(format!("{}:epoch", q.prefix()))
            .query_async(&mut q.conn.clone())
            .await
            .map_err(unavailable)
    }

    fn shared_limits(&self) -> Option<&dyn SharedLimits> {
        Some(self)
    }

    fn hint_budget(&self) -> Option<&HintBudget> {
        Some(&self.inner.hint_budget)
    }

    async fn claim(&self, task: &Task) -> Result<bool> {
        let q = &self.inner;
        let key = format!(
            "{}:claim:{}:{}:{}",
            q.prefix(),
            task.delivery_id,
            task.due.timestamp_millis(),
            u8::from(task.manual)
        );
        // Shorter than the visibility timeout: by the time a dead node's lease
        // is reclaimed, its claim has lapsed and the new holder can take it.
        let ttl = (q.visibility.as_millis() as u64 * 4 / 5).max(50);
        let set: Option<String> = ::redis::cmd("SET")
            .arg(&key)
            .arg(&q.consumer)
            .arg("NX")
            .arg("PX")
            .arg(ttl)
            .query_async(&mut q.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(set.is_some())
    }
}

fn lost_state(e: &RedisError) -> bool {
    matches!(e.code(), Some("NOGROUP" | "UNBLOCKED"))
}

fn unavailable(e: RedisError) -> QueueError {
    QueueError::Unavailable(Box::new(e))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[async_trait]
impl SharedLimits for RedisQueue {
    async fn pace(&self, key: &str, rate: u32) -> Result<Option<Duration>> {
        let q = &self.inner;
        let interval = (1000 / u64::from(rate.max(1))).max(1);
        let wait: i64 = PACE
            .key(format!("{}:rate:{key}", q.prefix()))
            .arg(interval)
            .invoke_async(&mut q.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok((wait > 0).then(|| Duration::from_millis(wait as u64)))
    }

    async fn take_slot(&self, key: &str, cap: usize, holder: &str, ttl: Duration) -> Result<bool> {
        let q = &self.inner;
        let taken: i64 = TAKE_SLOT
            .key(format!("{}:slots:{key}", q.prefix()))
            .arg(cap)
            .arg(holder)
            .arg(ttl.as_millis() as u64)
            .invoke_async(&mut q.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(taken == 1)
    }

    async fn release_slot(&self, key: &str, holder: &str) -> Result<()> {
        let q = &self.inner;
        let _: i64 = ::redis::cmd("ZREM")
            .arg(format!("{}:slots:{key}", q.prefix()))
            .arg(holder)
            .query_async(&mut q.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

impl Inner {
    /// The key prefix all of this queue's keys share.
    fn prefix(&self) -> &str {
        self.ready.trim_end_matches(":ready")
    }
}
