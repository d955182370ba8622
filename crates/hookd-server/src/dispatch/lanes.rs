//! Fair scheduling. Due leases are parked in a lane per endpoint; a lane sends
//! at most `endpoint_concurrency` requests at once and, when the endpoint has a
//! `throttleRate`, no faster than that rate. A batching endpoint's lane gathers
//! leases until the batch is full or its window closes. Excess work waits in
//! its own lane (never dropped), so one slow endpoint cannot hold anyone else's
//! capacity.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hookd_core::settings::Batch;
use hookd_queue::{Lease, Task};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::step::Slot;
use super::{Engine, Pace};

/// How long leases whose step failed (store or queue trouble) wait before retrying.
const ERROR_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Lane {
    in_flight: usize,
    /// Waiting in one of the scheduler's lines (`Scheduler::starved` or
    /// `Scheduler::quick_line`) for a slot of the node's.
    starved: bool,
    backlog: VecDeque<Lease>,
    /// The throttle in force and its limiter.
    limiter: Option<(u32, DefaultDirectRateLimiter)>,
    /// Set while the throttle holds the lane until a scheduled wake-up.
    waiting: bool,
    /// False until a step has reported the endpoint's settings; until then the
    /// lane sends one request at a time so an unknown throttle is never exceeded.
    known: bool,
    /// The endpoint's batching, when it batches.
    batch: Option<Batch>,
    /// When the batch being gathered must go out, full or not.
    batch_due: Option<Instant>,
    /// How long its requests take.
    timing: Timing,
    /// Leases handed back to the queue and not yet due again, as of
    /// `deferred_at`; they come due at the drain rate.
    deferred: f64,
    deferred_at: Option<Instant>,
    /// When the last lease handed back comes due: the lane (and what it has
    /// measured) is kept until then.
    deferred_until: Option<Instant>,
}

/// Until a request has been timed, each slot is assumed to finish this many
/// requests a second: an endpoint answering in 10 ms. Assuming a slow one would
/// hand a fast endpoint's overflow back for minutes (a backlog of 20,000 at 32
/// requests a second is ten minutes), leaving it idle meanwhile; assuming a
/// fast one only brings a slow endpoint's overflow back early, to be handed
/// back again.
const ASSUMED_PER_SLOT: f64 = 100.0;
/// Weight of the newest request in the moving average of request times.
const REQUEST_TIME_WEIGHT: f64 = 0.05;
/// How long the quickest answer in `Lane::fastest` counts for: between one
/// and two of these.
const FASTEST_SPAN: Duration = Duration::from_secs(5);

/// The quickest answer in the current span and in the one before it.
#[derive(Default, Clone, Copy)]
struct Fastest {
    since: Option<Instant>,
    current: Option<f64>,
    before: Option<f64>,
}

impl Fastest {
    fn note(&mut self, secs: f64, now: Instant) {
        let age = self.since.map(|s| now.saturating_duration_since(s));
        if age.is_none_or(|a| a >= FASTEST_SPAN) {
            // A span with no answers at all leaves nothing to carry over.
            self.before = self
                .current
                .filter(|_| age.is_some_and(|a| a < FASTEST_SPAN * 2));
            self.current = None;
            self.since = Some(now);
        }
        self.current = Some(self.current.map_or(secs, |c| c.min(secs)));
    }

    fn secs(&self) -> Option<f64> {
        match (self.current, self.before) {
            (Some(c), Some(b)) => Some(c.min(b)),
            (c, b) => c.or(b),
        }
    }
}
/// Longest a lease is handed back for.
const MAX_DEFERRAL: Duration = Duration::from_secs(3600);

impl Lane {
    /// Leases per second this lane can complete: its slots over the time a
    /// request takes (measured while busy, so idle spells do not lower it), no
    /// more requests than its throttle allows, times the leases a request takes.
    fn drain_rate(&self, slots: usize) -> f64 {
        // Counted in full even before the first step reports the endpoint's
        // settings (the lane sends one at a time until then, for a moment only).
        let slots = slots.max(1) as f64;
        let rate = match self.timing.request_secs {
            Some(secs) => slots / secs.max(1e-4),
            None => slots * ASSUMED_PER_SLOT,
        };
        let throttle = self
            .limiter
            .as_ref()
            .map_or(f64::MAX, |(r, _)| f64::from(*r));
        // A batching endpoint takes up to a batch of leases per request.
        let per_request = self.batch.map_or(1, |b| b.max_events.max(1)) as f64;
        rate.min(throttle).max(0.1) * per_request
    }

    /// Whether this endpoint's requests count against the node's budget of
    /// quick requests (`EngineConfig::quick_in_flight`): its quickest recent
    /// answers came within `quick_answer`, or it has not answered yet.
    fn quick(&self, quick_answer: Duration) -> bool {
        self.timing
            .fastest
            .secs()
            .is_none_or(|secs| secs < quick_answer.as_secs_f64())
    }

    /// Times a finished request.
    fn note_done(&mut self, took: Duration) {
        self.timing.note(took.as_secs_f64(), Instant::now());
    }

    /// Hands one more lease back to the queue: returns how long it should
    /// stay there, which is how long the lane needs for everything ahead of it
    /// (its backlog, and the leases handed back before that are still out),
    /// so that handed-back leases come due at about the rate the lane drains.
    fn defer_one(&mut self, slots: usize) -> Duration {
        let rate = self.drain_rate(slots);
        let now = Instant::now();
        let returned = self
            .deferred_at
            .map_or(0.0, |at| rate * now.duration_since(at).as_secs_f64());
        self.deferred = (self.deferred - returned).max(0.0) + 1.0;
        self.deferred_at = Some(now);
        let ahead = self.backlog.len() as f64 + self.deferred;
        let wait = Duration::from_secs_f64((ahead / rate).clamp(1.0, MAX_DEFERRAL.as_secs_f64()));
        let until = now + wait;
        if self.deferred_until.is_none_or(|u| u < until) {
            self.deferred_until = Some(until);
        }
        wait
    }

    fn set_rate(&mut self, rate: Option<u32>) {
        match (rate.and_then(NonZeroU32::new), &self.limiter) {
            (None, _) => self.limiter = None,
            (Some(r), Some((cur, _))) if *cur == r.get() => {}
            (Some(r), _) => {
                let quota = Quota::per_second(r).allow_burst(NonZeroU32::MIN);
                self.limiter = Some((r.get(), RateLimiter::direct(quota)));
            }
        }
    }

    /// How many leases from the front go out together now, or `None` while a
    /// batch is still gathering. Manual attempts always go alone.
    fn group_size(&self) -> Option<usize> {
        let Some(batch) = self.batch.filter(|_| self.known) else {
            return Some(1);
        };
        if self.backlog.front().is_some_and(|l| l.task.manual) {
            return Some(1);
        }
        let run = self
            .backlog
            .iter()
            .take(batch.max_events as usize)
            .take_while(|l| !l.task.manual)
            .count();
        let full = run >= batch.max_events as usize;
        let window_closed = self.batch_due.is_some_and(|due| due <= Instant::now());
        let manual_behind = run < self.backlog.len() && run < batch.max_events as usize;
        (full || window_closed || manual_behind).then_some(run)
    }

    fn idle(&self) -> bool {
        self.in_flight == 0
            && !self.starved
            && self.backlog.is_empty()
            && self.limiter.is_none()
            && !self.waiting
            && self.batch.is_none()
            && self.batch_due.is_none()
            && self.deferred_until.is_none_or(|u| u <= Instant::now())
    }
}

/// What a lane has measured of its endpoint's answers.
#[derive(Default, Clone, Copy)]
struct Timing {
    /// How long a request takes (a moving average, seconds).
    request_secs: Option<f64>,
    /// The quickest of its requests in the last one to two `FASTEST_SPAN`s:
    /// what the endpoint itself takes, more nearly than the average, which
    /// grows with how long requests wait for this node's cores when it is
    /// busy.
    fastest: Fastest,
}

impl Timing {
    fn note(&mut self, secs: f64, now: Instant) {
        self.request_secs = Some(match self.request_secs {
            Some(avg) => avg + REQUEST_TIME_WEIGHT * (secs - avg),
            None => secs,
        });
        self.fastest.note(secs, now);
    }
}

/// How long the timing of a lane that went idle and was dropped is kept, so
/// that an endpoint whose work comes in bursts does not start over at each.
const TIMINGS_KEPT: Duration = Duration::from_secs(10);

/// The timings of lanes dropped within the last `TIMINGS_KEPT`.
struct KeptTimings {
    kept: HashMap<String, (Timing, Instant)>,
    /// The size at which stale entries are next cleared out.
    purge_at: usize,
}

impl Default for KeptTimings {
    fn default() -> Self {
        Self {
            kept: HashMap::new(),
            purge_at: 1024,
        }
    }
}

impl KeptTimings {
    fn keep(&mut self, ep: String, timing: Timing, now: Instant) {
        if timing.request_secs.is_none() {
            return;
        }
        self.kept.insert(ep, (timing, now));
        if self.kept.len() >= self.purge_at {
            self.kept
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < TIMINGS_KEPT);
            self.purge_at = (self.kept.len() * 2).max(1024);
        }
    }

    /// The timing kept for `ep` if it is recent enough, else a new one.
    fn take(&mut self, ep: &str, now: Instant) -> Timing {
        self.kept
            .remove(ep)
            .filter(|(_, at)| now.saturating_duration_since(*at) < TIMINGS_KEPT)
            .map(|(t, _)| t)
            .unwrap_or_default()
    }
}

/// A step's endpoint slot is free again (its request was answered).
struct Done {
    endpoint_id: String,
    pace: Option<Pace>,
    /// From the step's start to the endpoint's answer.
    took: Duration,
    /// The request held one of the node's quick slots.
    quick: bool,
}

pub(super) struct Scheduler {
    engine: Arc<Engine>,
    lanes: HashMap<String, Lane>,
    /// Timings of lanes dropped lately.
    timings: KeptTimings,
    in_flight: usize,
    /// Requests in flight to quick endpoints (`Lane::quick`).
    quick_in_flight: usize,
    buffered: usize,
    wakeups: BinaryHeap<Reverse<(Instant, String)>>,
    /// Lanes that had work but hit the global in-flight cap, in the order
    /// they did (each at most once: `Lane::starved`).
    starved: VecDeque<String>,
    /// Quick lanes that had work but found the node's quick slots all taken,
    /// in the order they did (each at most once, and never also in `starved`).
    quick_line: VecDeque<String>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    running: JoinSet<()>,
}

impl Scheduler {
    pub(super) fn new(engine: Arc<Engine>) -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Self {
            engine,
            lanes: HashMap::new(),
            timings: KeptTimings::default(),
            in_flight: 0,
            quick_in_flight: 0,
            buffered: 0,
            wakeups: BinaryHeap::new(),
            starved: VecDeque::new(),
            quick_line: VecDeque::new(),
            done_tx,
            done_rx,
            running: JoinSet::new(),
        }
    }

    pub(super) async fn run(mut self, shutdown: CancellationToken) {
        let (lease_tx, mut lease_rx) = mpsc::channel::<Vec<Lease>>(64);
        let feeder_stop = shutdown.child_token();
        let feeder = tokio::spawn(feed(self.engine.clone(), lease_tx, feeder_stop.clone()));
        loop {
            let next_wake = self.wakeups.peek().map(|Reverse((at, _))| *at);
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(done) = self.done_rx.recv() => self.on_done(done),
                Some(leases) = lease_rx.recv(), if self.buffered < self.engine.config.max_buffered => self.on_leases(leases),
                _ = tokio::time::sleep_until(next_wake.unwrap_or_else(Instant::now)), if next_wake.is_some() => self.on_wake(),
                // Reap finished step tasks so the set does not grow.
                Some(_) = self.running.join_next(), if !self.running.is_empty() => {}
            }
        }
        feeder_stop.cancel();
        let _ = feeder.await;
        let grace = self.engine.config.shutdown_grace;
        tracing::info!(
            in_flight = self.in_flight,
            ?grace,
            "dispatcher stopping; letting in-flight requests finish"
        );
        let drained = tokio::time::timeout(grace, async {
            while self.running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("grace period over; unfinished deliveries stay pending and resume on the next start");
            self.running.abort_all();
        }
    }

    fn on_leases(&mut self, leases: Vec<Lease>) {
        let mut touched = Vec::new();
        let mut overflow = Vec::new();
        let lane_max = self.engine.config.lane_backlog_max;
        let half_buffer = self.engine.config.max_buffered / 2;
        for lease in leases {
            let ep = lease.task.endpoint_id.clone();
            let lane = self.lanes.entry(ep.clone()).or_insert_with(|| Lane {
                timing: self.timings.take(&ep, Instant::now()),
                ..Lane::default()
            });
            // Once the shared buffer is half full, a lane that already has
            // plenty waiting (a slow endpoint) hands the rest back to the queue,
            // so the buffer never fills with one endpoint's work while everyone
            // else's waits behind it. Below that, a lane takes what comes: a
            // lone endpoint draining a backlog keeps its leases at hand.
            if lane.backlog.len() >= lane_max && self.buffered >= half_buffer {
                let wait = lane.defer_one(self.engine.config.endpoint_concurrency);
                overflow.push((lease, wait));
                continue;
            }
            lane.backlog.push_back(lease);
            self.buffered += 1;
            if touched.last() != Some(&ep) {
                touched.push(ep);
            }
        }
        touched.sort();
        touched.dedup();
        for ep in touched {
            self.launch(&ep);
        }
        if !overflow.is_empty() {
            tokio::spawn(send_back(self.engine.clone(), overflow));
        }
    }

    fn on_done(&mut self, done: Done) {
        self.in_flight -= 1;
        if done.quick {
            self.quick_in_flight -= 1;
        }
        let quick_answer = self.engine.config.quick_answer;
        let mut still_out = 0;
        let mut quick_now = false;
        if let Some(lane) = self.lanes.get_mut(&done.endpoint_id) {
            lane.in_flight -= 1;
            still_out = lane.in_flight;
            lane.note_done(done.took);
            quick_now = lane.quick(quick_answer);
            if let Some(pace) = done.pace {
                lane.set_rate(pace.throttle_rate);
                lane.batch = pace.batch;
                lane.known = true;
            }
        }
        // While every slot is taken, the one that just freed goes to the lane
        // that has waited longest for one if that lane has fewer requests out
        // than this one (which then waits its turn): otherwise lanes that
        // filled the node first (slow endpoints, whose slots come free slowly)
        // would keep every slot until their backlogs were gone, and a healthy
        // endpoint that came later would wait for all of it. Repeated, this
        // evens out the lanes' shares. A quick lane competes with the lanes
        // waiting for a quick slot when there are any, since that is the slot
        // it would take.
        let quick_line = quick_now && !self.quick_line.is_empty();
        let line = if quick_line {
            &self.quick_line
        } else {
            &self.starved
        };
        let poorer_waiting = line.front().is_some_and(|ep| {
            self.lanes
                .get(ep)
                .is_none_or(|lane| lane.in_flight < still_out)
        });
        if poorer_waiting {
            self.mark_starved(&done.endpoint_id, quick_line);
        } else {
            self.launch(&done.endpoint_id);
        }
        // Slots opened up: give the waiting lanes a turn, oldest first.
        self.serve_line(false);
        self.serve_line(true);
        self.drop_if_idle(&done.endpoint_id);
    }

    /// Launches lanes from the front of one line while the slots they wait
    /// for are free; each lane is served once at most.
    fn serve_line(&mut self, quick: bool) {
        let max = self.engine.config.max_in_flight;
        let quick_max = self.engine.config.quick_in_flight;
        let len = if quick {
            self.quick_line.len()
        } else {
            self.starved.len()
        };
        for _ in 0..len {
            if self.in_flight >= max || (quick && self.quick_in_flight >= quick_max) {
                break;
            }
            let line = if quick {
                &mut self.quick_line
            } else {
                &mut self.starved
            };
            let Some(ep) = line.pop_front() else { break };
            if let Some(lane) = self.lanes.get_mut(&ep) {
                lane.starved = false;
            }
            self.launch(&ep);
            // Its backlog may have gone out meanwhile through its own slots.
            self.drop_if_idle(&ep);
        }
    }

    fn on_wake(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, _))) = self.wakeups.peek() {
            if *at > now {
                break;
            }
            let Reverse((_, ep)) = self.wakeups.pop().expect("peeked");
            if let Some(lane) = self.lanes.get_mut(&ep) {
                lane.waiting = false;
            }
            self.launch(&ep);
        }
    }

    /// Drops the lane if it has nothing left to do or wait for, keeping what
    /// it measured for a while (`TIMINGS_KEPT`).
    fn drop_if_idle(&mut self, ep: &str) {
        if !self.lanes.get(ep).is_some_and(Lane::idle) {
            return;
        }
        if let Some((ep, lane)) = self.lanes.remove_entry(ep) {
            self.timings.keep(ep, lane.timing, Instant::now());
        }
    }

    /// Puts a lane that has work waiting in line for the next free slot: a
    /// quick one of the node's, or any.
    fn mark_starved(&mut self, ep: &str, quick: bool) {
        if let Some(lane) = self.lanes.get_mut(ep) {
            if !lane.starved && !lane.backlog.is_empty() {
                lane.starved = true;
                if quick {
                    self.quick_line.push_back(ep.to_string());
                } else {
                    self.starved.push_back(ep.to_string());
                }
            }
        }
    }

    /// Starts as many of the lane's parked leases as its limits allow.
    fn launch(&mut self, ep: &str) {
        let cap = self.engine.config.endpoint_concurrency;
        let max = self.engine.config.max_in_flight;
        let quick_max = self.engine.config.quick_in_flight;
        let Some(lane) = self.lanes.get_mut(ep) else {
            return;
        };
        let quick = lane.quick(self.engine.config.quick_answer);
        let lane_cap = if lane.known { cap } else { 1 };
        while lane.in_flight < lane_cap && !lane.backlog.is_empty() && !lane.waiting {
            let node_full = self.in_flight >= max;
            if node_full || (quick && self.quick_in_flight >= quick_max) {
                if !lane.starved {
                    lane.starved = true;
                    if node_full {
                        self.starved.push_back(ep.to_string());
                    } else {
                        self.quick_line.push_back(ep.to_string());
                    }
                }
                return;
            }
            let Some(take) = lane.group_size() else {
                // Gathering a batch: it goes out when full, or when its window closes.
                if lane.batch_due.is_none() {
                    let window = Duration::from_millis(lane.batch.map_or(0, |b| b.window_ms));
                    let due = Instant::now() + window;
                    lane.batch_due = Some(due);
                    self.wakeups.push(Reverse((due, ep.to_string())));
                }
                return;
            };
            if let Some((_, limiter)) = &lane.limiter {
                if let Err(not_until) = limiter.check() {
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    lane.waiting = true;
                    self.wakeups
                        .push(Reverse((Instant::now() + wait, ep.to_string())));
                    return;
                }
            }
            let group: Vec<Lease> = lane.backlog.drain(..take).collect();
            lane.batch_due = None;
            lane.in_flight += 1;
            self.in_flight += 1;
            if quick {
                self.quick_in_flight += 1;
            }
            self.buffered -= group.len();
            self.running.spawn(step(
                self.engine.clone(),
                group,
                ep.to_string(),
                quick,
                self.done_tx.clone(),
            ));
        }
    }
}

/// Runs one step. The lane hears back as soon as the endpoint has answered;
/// the outcome is then recorded while the lane moves on. On failure the leases
/// are re-queued for later.
async fn step(
    engine: Arc<Engine>,
    group: Vec<Lease>,
    endpoint_id: String,
    quick: bool,
    done: mpsc::UnboundedSender<Done>,
) {
    let _settling = engine.settling.acquire().await;
    let ep = endpoint_id.clone();
    let started = Instant::now();
    let mut slot = Slot::new(move |pace| {
        let _ = done.send(Done {
            endpoint_id: ep,
            pace,
            took: started.elapsed(),
            quick,
        });
    });
    if let Err(e) = engine.process_with(&group, &mut slot).await {
        tracing::error!(error = ?e, endpoint.id = %endpoint_id, "delivery step failed; will retry");
        let due = hookd_core::model::now()
            + chrono::Duration::from_std(ERROR_BACKOFF).unwrap_or_default();
        // Without their hints: the step may have failed after recording its
        // outcome (a lease not acknowledged, a retry not queued), and then
        // only the store says that the delivery has moved on.
        let tasks = group
            .iter()
            .map(|l| Task {
                due,
                hint: None,
                ..l.task.clone()
            })
            .collect();
        match engine.queue.push(tasks).await {
            // The old leases are done with only once their replacements are queued.
            Ok(()) => {
                if let Err(e) = engine.queue.ack(&group).await {
                    tracing::warn!(error = %e, "could not acknowledge re-queued leases");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "could not re-queue; the deliveries stay pending until restart")
            }
        }
    }
}

/// Returns leases to the queue, each to be taken again after its wait.
async fn send_back(engine: Arc<Engine>, overflow: Vec<(Lease, Duration)>) {
    let now = hookd_core::model::now();
    let trusted_for = engine.config.hint_trusted_for;
    let tasks = overflow
        .iter()
        .map(|(l, wait)| handed_back(l, *wait, now, trusted_for))
        .collect();
    let leases: Vec<Lease> = overflow.into_iter().map(|(l, _)| l).collect();
    match engine.queue.push(tasks).await {
        Ok(()) => {
            if let Err(e) = engine.queue.ack(&leases).await {
                tracing::warn!(error = %e, "could not acknowledge leases handed back to the queue");
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "could not hand leases back; they stay pending until restart")
        }
    }
}

/// The task that takes `lease` back to the queue for `wait`. A hint that
/// would come back too old to be used (`EngineConfig::hint_trusted_for`) is
/// dropped rather than held in memory for the wait: a slow endpoint's
/// handed-back backlog would otherwise keep every one of its messages' content.
fn handed_back(
    lease: &Lease,
    wait: Duration,
    now: chrono::DateTime<chrono::Utc>,
    trusted_for: Duration,
) -> Task {
    Task {
        due: (now + chrono::Duration::from_std(wait).unwrap_or_default()).max(lease.task.due),
        hint: lease.task.hint.clone().filter(|_| wait < trusted_for),
        ..lease.task.clone()
    }
}

/// Moves due leases from the queue to the scheduler, pausing when it is full.
async fn feed(engine: Arc<Engine>, tx: mpsc::Sender<Vec<Lease>>, stop: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let popped = tokio::select! {
            _ = stop.cancelled() => return,
            r = engine.queue.pop(512, Duration::from_secs(1)) => r,
        };
        match popped {
            Ok(leases) if leases.is_empty() => {}
            Ok(leases) => {
                backoff = Duration::from_millis(100);
                if tx.send(leases).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, ?backoff, "queue unavailable; retrying");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookd_queue::Hint;

    #[test]
    fn a_dropped_lanes_timing_is_kept_for_a_while_and_stale_ones_are_cleared() {
        let t0 = Instant::now();
        let mut kept = KeptTimings::default();
        let mut timing = Timing::default();
        kept.keep("ep_untimed".into(), timing, t0);
        timing.note(0.002, t0);
        kept.keep("ep_1".into(), timing, t0);
        assert_eq!(
            kept.take("ep_untimed", t0).request_secs,
            None,
            "nothing measured, nothing kept"
        );
        let back = kept.take("ep_1", t0 + TIMINGS_KEPT / 2);
        assert_eq!(back.request_secs, Some(0.002));
        assert_eq!(back.fastest.secs(), Some(0.002));
        assert_eq!(
            kept.take("ep_1", t0).request_secs,
            None,
            "taken once, then gone"
        );
        kept.keep("ep_2".into(), timing, t0);
        assert_eq!(
            kept.take("ep_2", t0 + TIMINGS_KEPT).request_secs,
            None,
            "too old to use"
        );
        // Entries past their time are cleared as more come, so the map stays
        // at about the endpoints dropped within the last TIMINGS_KEPT.
        for i in 0..3000 {
            kept.keep(format!("ep_old_{i}"), timing, t0);
        }
        let later = t0 + TIMINGS_KEPT * 2;
        for i in 0..1100 {
            kept.keep(format!("ep_new_{i}"), timing, later);
        }
        assert!(
            kept.kept.len() <= 2048,
            "{} kept, of which 1,100 recent",
            kept.kept.len()
        );
    }

    #[test]
    fn the_quickest_answer_counts_for_one_to_two_spans_then_gives_way() {
        let t0 = Instant::now();
        let mut f = Fastest::default();
        assert_eq!(f.secs(), None);
        f.note(0.002, t0);
        f.note(0.040, t0 + Duration::from_secs(1));
        assert_eq!(f.secs(), Some(0.002), "a slower answer does not raise it");
        // The next span: the last one's quickest still counts.
        f.note(0.030, t0 + FASTEST_SPAN + Duration::from_secs(1));
        assert_eq!(f.secs(), Some(0.002));
        f.note(0.001, t0 + FASTEST_SPAN + Duration::from_secs(2));
        assert_eq!(f.secs(), Some(0.001), "a quicker answer sets it at once");
        // Two spans on, only slow answers: it follows them up.
        f.note(0.050, t0 + FASTEST_SPAN * 2 + Duration::from_secs(2));
        assert_eq!(f.secs(), Some(0.001));
        f.note(0.060, t0 + FASTEST_SPAN * 3 + Duration::from_secs(3));
        assert_eq!(f.secs(), Some(0.050));
        // After a long silence nothing old is carried over.
        f.note(0.070, t0 + FASTEST_SPAN * 10);
        assert_eq!(f.secs(), Some(0.070));
    }

    #[test]
    fn a_lease_handed_back_for_longer_than_a_hint_is_trusted_leaves_the_hint_behind() {
        let now = hookd_core::model::now();
        let lease = Lease {
            task: Task {
                delivery_id: "msgep_1".into(),
                msg_id: "msg_1".into(),
                endpoint_id: "ep_1".into(),
                app_id: "app_1".into(),
                due: now,
                manual: false,
                hint: Some(Hint::new("the message as it was")),
            },
            receipt: "r1".into(),
        };
        let trusted_for = Duration::from_secs(30);
        let soon = handed_back(&lease, Duration::from_secs(2), now, trusted_for);
        assert!(soon.hint.is_some(), "back while its hint is still used");
        assert_eq!(soon.due, now + chrono::Duration::seconds(2));
        let late = handed_back(&lease, Duration::from_secs(60), now, trusted_for);
        assert!(late.hint.is_none(), "the hint would be too old to use");
        assert_eq!(late.due, now + chrono::Duration::seconds(60));
        assert_eq!(late.delivery_id, "msgep_1");
        let later_already = Lease {
            task: Task {
                due: now + chrono::Duration::seconds(90),
                ..lease.task.clone()
            },
            receipt: "r2".into(),
        };
        assert_eq!(
            handed_back(&later_already, Duration::from_secs(2), now, trusted_for).due,
            now + chrono::Duration::seconds(90),
            "never earlier than it was due"
        );
    }
}
