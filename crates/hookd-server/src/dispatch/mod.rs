//! The delivery engine. [`Engine::run`] is a loop that takes due tasks from the
//! queue and runs [`Engine::process`] (the step) for each, fairly: every
//! endpoint has its own lane with a cap on concurrent requests and an optional
//! rate (`throttleRate`), so a slow or dead endpoint only ever holds its own
//! lane's slots and never delays anyone else.

mod lanes;
pub mod opevents;
pub mod request;
mod step;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookd_core::model::{Delivery, Message, MessageStatus};
use hookd_core::retry::RetryPolicy;
use hookd_core::{id_bound_after, IdKind};
use hookd_queue::{Hint, HintBudget, HintShare, Queue, Task};
use hookd_store::Store;
use tokio_util::sync::CancellationToken;

use crate::outbound::WebhookClient;
pub use opevents::{OpEvent, OpEvents};
pub use request::HeaderFamily;
pub use step::{Outcome, Pace, Slot, StepReport};

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Deployment-wide retry schedule (endpoints may override it).
    pub retry: RetryPolicy,
    /// Default per-request timeout.
    pub request_timeout: Duration,
    /// Default signature header family.
    pub header_family: HeaderFamily,
    /// Most requests in flight across all endpoints.
    pub max_in_flight: usize,
    /// Most requests in flight to one endpoint.
    pub endpoint_concurrency: usize,
    /// Most requests in flight at once, across all endpoints, to endpoints
    /// that answer within `quick_answer` (and to endpoints not yet timed).
    /// Such a request is mostly this node's own work (building, signing,
    /// sending, reading the answer), so past enough of them to keep the cores
    /// busy, more only wait for a core, each holding a connection and its
    /// buffers: the rest wait in their lanes instead, shared out fairly.
    /// Endpoints that take longer are held only by `endpoint_concurrency`
    /// and `max_in_flight`, since their requests mostly wait on the endpoint.
    pub quick_in_flight: usize,
    /// An endpoint whose quickest answer in the last 5–10 s came within this
    /// counts as quick (the average would count time spent waiting for this
    /// node's cores, and would take in endpoints a network away). At 5 ms,
    /// quick endpoints alone could still take 128 / 5 ms = 25,600 requests a
    /// second from two cores, about all they do.
    pub quick_answer: Duration,
    /// Failed attempts of one message after which `message.attempt.failing` is sent.
    pub failing_after: u32,
    /// An endpoint failing without any success for this long is disabled.
    pub disable_after: Duration,
    /// How long in-flight requests may finish after shutdown is requested.
    pub shutdown_grace: Duration,
    /// uid of the application whose endpoints receive operational events.
    pub operational_app_uid: String,
    /// Most pending deliveries re-queued from the store at once on start (the
    /// rest follow as the queue drains), which bounds memory for big backlogs.
    pub requeue_window: usize,
    /// Most leases held in memory (parked in lanes plus in flight) before the
    /// feeder pauses.
    pub max_buffered: usize,
    /// Most leases one endpoint's lane parks once the shared buffer is half
    /// full; more are handed back to the queue for about as long as the lane
    /// needs for what is ahead of them, so one slow endpoint cannot fill the
    /// shared buffer.
    pub lane_backlog_max: usize,
    /// How often the engine looks for accepted messages whose fan-out is still
    /// pending (left by a crash, or by a fan-out the store refused).
    pub fanout_sweep_every: Duration,
    /// How old a pending fan-out must be for the sweep to take it over from
    /// the fan-out stage that should be writing it.
    pub fanout_stale_after: Duration,
    /// Most bytes of message content that the tasks of the re-queue sweep may
    /// hold at once in their hints (see [`Engine::swept_tasks`]); tasks past
    /// it are queued without one and read their message when they run.
    pub sweep_hint_bytes: usize,
    /// How long a task's hint (what its delivery and message were when the
    /// task was made) is used instead of reading them: a task that waited
    /// longer (in a slow endpoint's lane, or handed back to the queue) reads
    /// them when it runs, so that a message expunged, or a delivery resent,
    /// meanwhile is seen.
    pub hint_trusted_for: Duration,
}

/// Quick requests in flight per core by default (`EngineConfig::quick_in_flight`).
/// On two cores S2's fan-out to 100 endpoints ran about as fast with 32 a
/// core, 3% slower with 16, 3–5% slower with 128, 9% slower with 256 and
/// 12–14% slower with no budget at all (every lane at `endpoint_concurrency`:
/// 3,200 requests out). See docs/PERFORMANCE.md.
pub const QUICK_IN_FLIGHT_PER_CORE: usize = 64;

/// `QUICK_IN_FLIGHT_PER_CORE` times the cores this process may use.
pub fn default_quick_in_flight() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    QUICK_IN_FLIGHT_PER_CORE * cores
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(15),
            header_family: HeaderFamily::Webhook,
            max_in_flight: 4096,
            endpoint_concurrency: 32,
            quick_in_flight: default_quick_in_flight(),
            quick_answer: Duration::from_millis(5),
            failing_after: 4,
            disable_after: Duration::from_secs(5 * 24 * 3600),
            shutdown_grace: Duration::from_secs(30),
            operational_app_uid: "hookd-operational".into(),
            requeue_window: 20_000,
            max_buffered: 50_000,
            lane_backlog_max: 2_000,
            fanout_sweep_every: Duration::from_secs(30),
            fanout_stale_after: Duration::from_secs(30),
            sweep_hint_bytes: 32 << 20,
            hint_trusted_for: Duration::from_secs(30),
        }
    }
}

/// The queue task for a delivery, due at its next attempt (or now).
pub fn task_for(d: &Delivery, manual: bool) -> Task {
    Task {
        delivery_id: d.id.clone(),
        msg_id: d.msg_id.clone(),
        endpoint_id: d.endpoint_id.clone(),
        app_id: d.app_id.clone(),
        due: if manual {
            hookd_core::model::now()
        } else {
            d.next_attempt.unwrap_or_else(hookd_core::model::now)
        },
        manual,
        hint: None,
    }
}

/// What the creator of a delivery knows about it, carried by its first task so
/// the step need not read the delivery and its message back from the store;
/// also what the re-queue sweep just read of a delivery due now.
pub struct Fresh {
    pub delivery: Delivery,
    pub msg: Arc<Message>,
    /// The share of a hint budget that the message takes (the queue's for a
    /// fan-out, [`EngineConfig::sweep_hint_bytes`] for the sweep), given back
    /// when the last task holding it is gone.
    _share: Arc<HintShare>,
    /// Made by the re-queue sweep (rather than by a fan-out).
    swept: bool,
    /// When the hint was made.
    made: Instant,
    /// The store's [`hookd_store::Store::content_epoch`] before the message's
    /// payload was stored (a fan-out) or read (the sweep).
    epoch: u64,
}

impl Fresh {
    /// Whether the re-queue sweep made this hint (rather than a fan-out).
    pub fn swept(&self) -> bool {
        self.swept
    }

    /// Whether the hint may stand for the store: made less than `within` ago,
    /// and no content expunged since its payload was stored or read (`epoch`
    /// is the store's count now).
    pub fn trusted(&self, within: Duration, epoch: u64) -> bool {
        self.epoch == epoch && self.made.elapsed() < within
    }
}

/// A fan-out gives a hint only to tasks due within this: a message scheduled
/// for later (`deliverAt`) would otherwise keep its content in memory until
/// then, for a hint too old to be used.
const HINT_HORIZON: Duration = Duration::from_secs(1);

/// The first tasks of a just-created message's deliveries, with hints for
/// those due now, unless the message is too large to hold
/// ([`HINT_MAX_PAYLOAD`]) or `budget` (the queue's) has no room for it.
/// `epoch` is the store's content epoch read before the message was stored
/// (or read back): an expunge since then leaves the hints untrusted.
pub fn fresh_tasks(
    deliveries: &[Delivery],
    msg: &Arc<Message>,
    budget: Option<&HintBudget>,
    epoch: u64,
) -> Vec<Task> {
    let unhinted = || deliveries.iter().map(|d| task_for(d, false)).collect();
    let Some(budget) = budget else {
        return unhinted();
    };
    let bytes = msg.payload.as_ref().map_or(0, String::len);
    if bytes > HINT_MAX_PAYLOAD {
        return unhinted();
    }
    let Some(share) = budget.take(bytes + HINT_OVERHEAD) else {
        return unhinted();
    };
    let share = Arc::new(share);
    let made = Instant::now();
    let horizon =
        hookd_core::model::now() + chrono::Duration::from_std(HINT_HORIZON).unwrap_or_default();
    deliveries
        .iter()
        .map(|d| {
            let task = task_for(d, false);
            if task.due > horizon {
                return task;
            }
            Task {
                hint: Some(Hint::new(Fresh {
                    delivery: d.clone(),
                    msg: msg.clone(),
                    _share: share.clone(),
                    swept: false,
                    made,
                    epoch,
                })),
                ..task
            }
        })
        .collect()
}

/// What this process knows of each endpoint's failing clock, so that a
/// success on a healthy endpoint and a failure on one already failing cost no
/// write (on SQLite such a write waits for the write lock with the group
/// writer; a dead endpoint failing hundreds of times a second would otherwise
/// slow everyone's commits).
#[derive(Default)]
struct HealthCache(Mutex<HashMap<String, Health>>);

#[derive(Clone, Copy)]
enum Health {
    /// No clock running.
    Healthy,
    /// The store's clock runs from this time (as this process last wrote or
    /// read it; another node's success may have stopped it since).
    FailingSince(chrono::DateTime<chrono::Utc>),
}

impl HealthCache {
    fn get(&self, ep: &str) -> Option<Health> {
        self.0
            .lock()
            .expect("health cache poisoned")
            .get(ep)
            .copied()
    }
    fn set(&self, ep: &str, health: Health) {
        self.0
            .lock()
            .expect("health cache poisoned")
            .insert(ep.to_string(), health);
    }
    fn needs_clear(&self, ep: &str) -> bool {
        !matches!(self.get(ep), Some(Health::Healthy))
    }
    fn mark_healthy(&self, ep: &str) {
        self.set(ep, Health::Healthy);
    }
    fn mark_failing(&self, ep: &str, since: chrono::DateTime<chrono::Utc>) {
        self.set(ep, Health::FailingSince(since));
    }
    fn failing_since(&self, ep: &str) -> Option<chrono::DateTime<chrono::Utc>> {
        match self.get(ep) {
            Some(Health::FailingSince(t)) => Some(t),
            _ => None,
        }
    }
}

pub struct Engine {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    pub client: WebhookClient,
    pub config: EngineConfig,
    pub opevents: OpEvents,
    health: HealthCache,
    /// Bounds steps still recording their outcome after releasing their slot.
    settling: tokio::sync::Semaphore,
    /// The re-queuing of pending deliveries still under way, if any.
    sweep: Mutex<Option<Sweep>>,
    /// What the swept tasks' hints hold ([`EngineConfig::sweep_hint_bytes`]).
    sweep_hints: HintBudget,
}

const SWEEP_PAGE: u32 = 1_000;
/// Largest payload whose message a task's hint carries, from a fan-out or
/// from the re-queue sweep (see [`Engine::swept_tasks`]): a hint keeps the
/// message in memory until its task runs, and the tasks of a slow endpoint may
/// wait by the thousand.
const HINT_MAX_PAYLOAD: usize = 64 << 10;
/// What a hinted message costs beyond its payload, for the hint budgets: its
/// other fields, and the deliveries and tasks that point to it.
const HINT_OVERHEAD: usize = 512;
/// Pending fan-outs read at once by [`Engine::fan_out_pending`].
const FANOUT_PAGE: u32 = 500;
/// Fan-outs of a page written side by side by [`Engine::fan_out_pending`].
const SWEEP_FANOUTS_AT_ONCE: usize = 16;
/// How often a worker on a shared queue looks for deliveries whose push was lost.
const OVERDUE_SWEEP_EVERY: Duration = Duration::from_secs(120);
/// How late a pending delivery must be to count as lost.
const OVERDUE_AFTER: Duration = Duration::from_secs(300);
/// The overdue sweep runs only while the queue holds fewer tasks than this.
const OVERDUE_IDLE_BELOW: usize = 1_000;

/// Progress through the store's pending deliveries, in id order.
struct Sweep {
    after: Option<String>,
    /// Deliveries from this id on were created after the sweep began.
    high_water: String,
    done: bool,
}

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn Queue>,
        client: WebhookClient,
        config: EngineConfig,
    ) -> Self {
        let opevents = OpEvents {
            app_uid: config.operational_app_uid.clone(),
        };
        // Not fewer than the default's: the outcomes of a group commit's worth
        // of steps are waiting at any moment however few requests are out,
        // and at 800 (a `max_in_flight` of 200) steps queued behind the
        // group writer, S2 25% slower.
        let settling = tokio::sync::Semaphore::new(config.max_in_flight.max(4096) * 4);
        let sweep_hints = HintBudget::new(config.sweep_hint_bytes);
        Self {
            store,
            queue,
            client,
            config,
            opevents,
            health: HealthCache::default(),
            settling,
            sweep: Mutex::new(None),
            sweep_hints,
        }
    }

    /// Start-up work, done before the API accepts requests: creates the
    /// operational-webhooks application, writes the fan-out of every message
    /// accepted but not yet fanned out (a crash between the `202` and the
    /// fan-out), and re-queues every pending delivery, those included.
    /// Returns how many deliveries were re-queued.
    pub async fn prepare(&self) -> anyhow::Result<usize> {
        self.opevents.ensure_app(self).await?;
        let fanned = self
            .fan_out_pending(hookd_core::model::now(), false)
            .await?;
        if fanned > 0 {
            tracing::info!(
                messages = fanned,
                "fanned out messages accepted before the restart"
            );
        }
        self.requeue_pending().await
    }

    /// Fans out the accepted messages whose fan-out is still pending and that
    /// were created before `before`, a page at a time; with `push`, queues the
    /// deliveries (at start-up the re-queue sweep that follows finds them).
    /// Returns how many messages this call fanned out. A fan-out happens once,
    /// so a message that the fan-out stage or another node gets to first
    /// yields nothing here.
    pub async fn fan_out_pending(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        push: bool,
    ) -> anyhow::Result<usize> {
        let (mut after, mut fanned) = (None::<String>, 0);
        loop {
            let epoch = self.store.content_epoch();
            let page = self
                .store
                .list_pending_fanouts(before, after.as_deref(), FANOUT_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            // A few at once, so that the store's writer folds them into one
            // transaction (one at a time, a start-up after a crash in a burst
            // of wide messages waited for one commit per message). Their
            // widths are not known here, so few enough that a group stays
            // small even for apps with thousands of endpoints.
            let mut done = Vec::with_capacity(page.len());
            for chunk in page.chunks(SWEEP_FANOUTS_AT_ONCE) {
                let results =
                    futures::future::join_all(chunk.iter().map(|m| self.store.fan_out(m, 0))).await;
                done.extend(chunk.iter().zip(results));
            }
            let mut failure = None;
            for (msg, result) in done {
                let deliveries = match result {
                    Ok(d) => d,
                    Err(e) => {
                        failure.get_or_insert(e);
                        continue;
                    }
                };
                fanned += 1;
                if push && !deliveries.is_empty() {
                    let msg = Arc::new(msg.clone());
                    let tasks = fresh_tasks(&deliveries, &msg, self.queue.hint_budget(), epoch);
                    self.queue.push(tasks).await?;
                }
            }
            // The ones that failed stay pending for the next sweep or start.
            if let Some(e) = failure {
                return Err(e.into());
            }
            if page.len() < FANOUT_PAGE as usize {
                break;
            }
        }
        Ok(fanned)
    }

    /// Now and then, fans out what the fan-out stage left pending.
    async fn sweep_fanouts(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.config.fanout_sweep_every) => {}
            }
            let stale =
                chrono::Duration::from_std(self.config.fanout_stale_after).unwrap_or_default();
            match self
                .fan_out_pending(hookd_core::model::now() - stale, true)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::warn!(
                    messages = n,
                    "fanned out messages whose fan-out was left pending"
                ),
                Err(e) => {
                    tracing::warn!(error = ?e, "could not sweep pending fan-outs; will try again")
                }
            }
        }
    }

    /// Starts putting every pending delivery back on the queue: the first
    /// window now, the rest as the queue drains (`backfill`), so a backlog of
    /// millions never sits in memory at once. Run at start-up, so that anything
    /// accepted before a crash or restart is delivered, and after a queue reset.
    /// Returns how many were queued now.
    pub async fn requeue_pending(&self) -> anyhow::Result<usize> {
        // Deliveries created from now on are queued by whoever creates them;
        // ids sort by time, so the sweep stops at this bound. Those created
        // this very millisecond (a start-up fan-out just written) are below it.
        let mut sweep = Sweep {
            after: None,
            high_water: id_bound_after(IdKind::Destination, hookd_core::model::now()),
            done: false,
        };
        let n = self.sweep(&mut sweep, self.config.requeue_window).await?;
        *self.sweep.lock().expect("sweep lock poisoned") = Some(sweep);
        Ok(n)
    }

    /// Queues up to about `max` more pending deliveries of the sweep.
    async fn sweep(&self, sweep: &mut Sweep, max: usize) -> anyhow::Result<usize> {
        let mut pushed = 0;
        while !sweep.done && pushed < max {
            let page = self
                .store
                .list_pending_deliveries(sweep.after.as_deref(), SWEEP_PAGE)
                .await?;
            sweep.done = page.len() < SWEEP_PAGE as usize;
            if let Some(last) = page.last() {
                sweep.after = Some(last.id.clone());
            }
            let owed: Vec<&Delivery> = page
                .iter()
                .take_while(|d| d.id < sweep.high_water)
                .filter(|d| matches!(d.status, MessageStatus::Pending | MessageStatus::Sending))
                .collect();
            if owed.len() < page.len() && page.iter().any(|d| d.id >= sweep.high_water) {
                sweep.done = true;
            }
            let tasks = self.swept_tasks(&owed).await;
            pushed += tasks.len();
            self.queue.push(tasks).await?;
        }
        Ok(pushed)
    }

    /// The tasks of deliveries the sweep queues again. With a queue that
    /// serves this process alone (the embedded one), the tasks of those due
    /// now carry the delivery and its message as a fan-out's first tasks do,
    /// the messages read for the whole page at once: a backlog then drains
    /// without one read per task through the pool, and a pool read costs
    /// two round trips to a database thread (the query and sqlx's ping on
    /// release). Only small messages, and only up to
    /// [`EngineConfig::sweep_hint_bytes`] in all, so that a backlog of large
    /// payloads cannot fill memory; the rest read their message when they run.
    ///
    /// Not with a shared queue: other nodes may be sending the same deliveries
    /// (a node re-queues every pending delivery when it starts), so what the
    /// sweep read may be out of date by the time a task runs, and only a read
    /// then tells. Within one process, a sweep queues each pending delivery
    /// once and nothing else is queued for it until its task has run, but for
    /// a resend asked for meanwhile: as with a fan-out's hint, the task then
    /// sends once more than needed (delivery is at least once) and its record
    /// counts from what the sweep read.
    async fn swept_tasks(&self, owed: &[&Delivery]) -> Vec<Task> {
        let mut tasks: Vec<Task> = owed.iter().map(|d| task_for(d, false)).collect();
        if self.queue.shared_limits().is_some() {
            return tasks;
        }
        let now = hookd_core::model::now();
        let due: Vec<usize> = (0..tasks.len()).filter(|&i| tasks[i].due <= now).collect();
        if due.is_empty() {
            return tasks;
        }
        let mut ids: Vec<String> = due.iter().map(|&i| owed[i].msg_id.clone()).collect();
        ids.sort_unstable();
        ids.dedup();
        let epoch = self.store.content_epoch();
        let msgs = match self
            .store
            .messages_with_small_payloads(&ids, HINT_MAX_PAYLOAD)
            .await
        {
            Ok(msgs) => msgs,
            Err(e) => {
                // The tasks still go out; each reads its message when it runs.
                tracing::debug!(error = ?e, "could not read the swept deliveries' messages");
                return tasks;
            }
        };
        let mut found = HashMap::with_capacity(msgs.len());
        for msg in msgs {
            let bytes = msg.payload.as_ref().map_or(0, String::len) + HINT_OVERHEAD;
            let Some(held) = self.sweep_hints.take(bytes) else {
                break;
            };
            found.insert(msg.id.clone(), (Arc::new(msg), Arc::new(held)));
        }
        let made = Instant::now();
        for i in due {
            if let Some((msg, held)) = found.get(&owed[i].msg_id) {
                tasks[i].hint = Some(Hint::new(Fresh {
                    delivery: owed[i].clone(),
                    msg: msg.clone(),
                    _share: held.clone(),
                    swept: true,
                    made,
                    epoch,
                }));
            }
        }
        tasks
    }

    /// Feeds the rest of an unfinished sweep to the queue as it drains.
    async fn backfill(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            let Some(mut sweep) = self.sweep.lock().expect("sweep lock poisoned").take() else {
                continue;
            };
            let low = self
                .queue
                .len()
                .await
                .map(|n| n < self.config.requeue_window / 2)
                .unwrap_or(false);
            if low {
                if let Err(e) = self
                    .sweep(&mut sweep, (self.config.requeue_window / 2).max(1))
                    .await
                {
                    tracing::warn!(error = ?e, "could not re-queue pending deliveries; will try again");
                }
            }
            if !sweep.done {
                let mut slot = self.sweep.lock().expect("sweep lock poisoned");
                // A newer sweep (after a queue reset) supersedes this one.
                if slot.is_none() {
                    *slot = Some(sweep);
                }
            }
        }
    }

    /// Runs the dispatch loop until `shutdown`, then lets in-flight requests
    /// finish for up to the grace period. Anything unfinished stays pending in
    /// the store and is picked up on the next start.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        tokio::spawn(self.clone().watch_resets(shutdown.clone()));
        tokio::spawn(self.clone().backfill(shutdown.clone()));
        tokio::spawn(self.clone().sweep_fanouts(shutdown.clone()));
        lanes::Scheduler::new(self).run(shutdown).await;
    }

    /// A shared queue that lost its state (a Redis restarted without
    /// persistence) lost the tasks in it; the store still has every pending
    /// delivery, so they are queued again. Any node may be the one that notices
    /// and rebuilds the queue, so the signal is the queue's shared epoch, not a
    /// local count. As a safety net for pushes that failed while the queue was
    /// unreachable, long-overdue pending deliveries are also queued again now
    /// and then. Claims keep copies from being sent twice.
    async fn watch_resets(self: Arc<Self>, shutdown: CancellationToken) {
        if self.queue.shared_limits().is_none() {
            return;
        }
        let mut seen = self.queue.epoch().await.ok().flatten();
        let mut last_overdue_sweep = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            match self.queue.epoch().await {
                Ok(now) if now != seen => match self.requeue_pending().await {
                    Ok(n) => {
                        tracing::warn!(
                            requeued = n,
                            "the shared queue lost its state; pending deliveries queued again"
                        );
                        seen = now;
                    }
                    Err(e) => {
                        tracing::error!(error = ?e, "could not re-queue after a queue reset; will try again")
                    }
                },
                _ => {}
            }
            if last_overdue_sweep.elapsed() >= OVERDUE_SWEEP_EVERY {
                last_overdue_sweep = tokio::time::Instant::now();
                if let Err(e) = self.requeue_overdue().await {
                    tracing::warn!(error = ?e, "could not sweep overdue deliveries; will try again");
                }
            }
        }
    }

    /// Queues again the pending deliveries that are long overdue, if the queue
    /// is nearly idle (a big backlog explains lateness; an idle queue does not).
    async fn requeue_overdue(&self) -> anyhow::Result<usize> {
        if self.queue.len().await? > OVERDUE_IDLE_BELOW {
            return Ok(0);
        }
        let cutoff = hookd_core::model::now()
            - chrono::Duration::from_std(OVERDUE_AFTER).unwrap_or_default();
        let (mut after, mut pushed) = (None::<String>, 0);
        loop {
            let page = self
                .store
                .list_pending_deliveries(after.as_deref(), SWEEP_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            let tasks: Vec<Task> = page
                .iter()
                .filter(|d| d.next_attempt.is_some_and(|t| t < cutoff))
                .map(|d| task_for(d, false))
                .collect();
            pushed += tasks.len();
            self.queue.push(tasks).await?;
            if page.len() < SWEEP_PAGE as usize {
                break;
            }
        }
        if pushed > 0 {
            tracing::warn!(
                requeued = pushed,
                "long-overdue pending deliveries queued again"
            );
        }
        Ok(pushed)
    }
}
