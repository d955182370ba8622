//! The worker's step: claim → load → sign → send → record → schedule. One call
//! handles the leases of one request (one message, or a batch for an endpoint
//! that batches) and leaves the store, the queue and the endpoint's health
//! consistent whatever the outcome.

use std::sync::Arc;
use std::time::Duration;

use hookd_core::model::{self, Attempt, Delivery, Endpoint, Message, MessageStatus, TriggerType};
use hookd_core::retry::{RetryDecision, RetryPolicy};
use hookd_core::settings::{Batch, EndpointSettings};
use hookd_core::{new_id, IdKind};
use hookd_queue::Lease;

use super::opevents::OpEvent;
use super::request::{self, Defaults, Item};
use super::{task_for, Engine, Fresh};
use crate::outbound::Response;

/// What one step did, for the scheduler and for tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Nothing was sent (the deliveries are finished, gone, or the endpoint is off).
    Skipped(&'static str),
    Delivered,
    /// Failed; the next attempt is scheduled after this delay.
    Retrying(Duration),
    /// Failed for good (schedule exhausted, 410 Gone, or a failed manual attempt).
    Failed,
}

/// How the scheduler should pace an endpoint, learnt by loading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub throttle_rate: Option<u32>,
    pub batch: Option<Batch>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    pub endpoint_id: String,
    /// `None` when the endpoint was not loaded (the step ended before that).
    pub pace: Option<Pace>,
    pub outcome: Outcome,
}

const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// How often a step waiting for one of an endpoint's shared slots asks again.
const SHARED_SLOT_POLL: Duration = Duration::from_millis(10);

type Release = Box<dyn FnOnce(Option<Pace>) + Send>;

/// An endpoint concurrency slot held by a step; released once, at the latest
/// when dropped.
pub struct Slot(Option<Release>);

impl Slot {
    pub fn new(release: impl FnOnce(Option<Pace>) + Send + 'static) -> Self {
        Self(Some(Box::new(release)))
    }

    pub fn none() -> Self {
        Self(None)
    }

    pub fn release(&mut self, pace: Option<Pace>) {
        if let Some(f) = self.0.take() {
            f(pace);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.release(None);
    }
}

/// A delivery that is going out in this step.
struct Going<'a> {
    lease: &'a Lease,
    delivery: Delivery,
    /// The message, with its payload present.
    msg: Arc<Message>,
}

impl Engine {
    /// Processes the leases of one request; they must all be for the same
    /// endpoint. Errors mean the store or queue failed: the leases are then not
    /// acknowledged and their deliveries stay pending for a later retry.
    pub async fn process(&self, leases: &[Lease]) -> anyhow::Result<StepReport> {
        self.process_with(leases, &mut Slot::none()).await
    }

    /// [`Engine::process`], releasing `slot` as soon as the endpoint has
    /// answered (or the step ends without a request): recording the outcome waits
    /// for a disk flush, and the endpoint's concurrency should not wait with it.
    pub async fn process_with(
        &self,
        leases: &[Lease],
        slot: &mut Slot,
    ) -> anyhow::Result<StepReport> {
        let first = &leases
            .first()
            .ok_or_else(|| anyhow::anyhow!("a step needs at least one lease"))?
            .task;
        let report = |pace, outcome| StepReport {
            endpoint_id: first.endpoint_id.clone(),
            pace,
            outcome,
        };

        let Some(ep) = self
            .store
            .endpoint_by_key_cached(&first.app_id, &first.endpoint_id)
            .await?
        else {
            self.queue.ack(leases).await?;
            return Ok(report(None, Outcome::Skipped("endpoint no longer exists")));
        };
        let settings = EndpointSettings::from_json(&ep.settings);
        let pace = Some(Pace {
            throttle_rate: ep.throttle_rate,
            batch: settings.batch,
        });

        let mut going = Vec::with_capacity(leases.len());
        let mut finished = Vec::new();
        for lease in leases {
            match self.load(lease, &ep).await? {
                Some(g) => going.push(g),
                None => finished.push(lease.clone()),
            }
        }
        self.queue.ack(&finished).await?;
        if going.is_empty() {
            return Ok(report(pace, Outcome::Skipped("nothing left to send")));
        }

        let now = model::now();
        let items: Vec<Item<'_>> = going
            .iter()
            .map(|g| Item {
                msg_id: &g.msg.id,
                event_type: &g.msg.event_type,
                created_at: g.msg.created_at,
                payload: g.msg.payload.as_deref().unwrap_or("{}"),
            })
            .collect();
        let defaults = Defaults {
            family: self.config.header_family,
            timeout: self.config.request_timeout,
        };
        let mut resp = match request::build(&ep, &settings, &items, now, defaults) {
            Ok(out) => {
                let permit = self.shared_permit(&ep, out.timeout).await?;
                let resp = self
                    .client
                    .post(&ep.url, out.headers, out.body, out.timeout)
                    .await;
                self.release_shared(&ep, permit).await;
                resp
            }
            Err(why) => Response {
                status: 0,
                body: why,
                duration: Duration::ZERO,
                retry_after: None,
            },
        };
        slot.release(pace);
        let ok = (200..300).contains(&resp.status);
        tracing::debug!(
            app.id = %ep.app_id, endpoint.id = %ep.id, messages = going.len(), status = resp.status,
            duration_ms = resp.duration.as_millis() as u64, "attempt"
        );

        let policy = self.retry_policy(&settings);
        let mut outcome = Outcome::Delivered;
        let mut records = Vec::with_capacity(going.len());
        let mut events = Vec::new();
        let mut retries = Vec::new();
        let mut sent = Vec::with_capacity(going.len());
        let mut msgs = Vec::with_capacity(going.len());
        // The response body goes into every attempt of a batch: copied for
        // all but the last, which takes it.
        let mut body = Some(std::mem::take(&mut resp.body));
        let count = going.len();
        for (i, mut g) in going.into_iter().enumerate() {
            let manual = g.lease.task.manual;
            let attempt = Attempt {
                id: new_id(IdKind::Attempt),
                app_id: ep.app_id.clone(),
                msg_id: g.msg.id.clone(),
                endpoint_id: ep.id.clone(),
                url: ep.url.clone(),
                response: if i + 1 == count {
                    body.take()
                } else {
                    body.clone()
                },
                response_status_code: i32::from(resp.status),
                response_duration_ms: resp.duration.as_millis() as i64,
                status: if ok {
                    MessageStatus::Success
                } else {
                    MessageStatus::Fail
                },
                trigger_type: if manual {
                    TriggerType::Manual
                } else {
                    TriggerType::Scheduled
                },
                created_at: now,
            };
            let (o, evs) = if manual {
                settle_manual(&mut g.delivery, ok)
            } else {
                self.settle_scheduled(&mut g.delivery, &policy, &resp, ok)
            };
            g.delivery.updated_at = now;
            if matches!(o, Outcome::Retrying(_)) {
                retries.push(task_for(&g.delivery, false));
            }
            events.extend(evs.into_iter().map(|e| (e, records.len())));
            outcome = o;
            records.push((attempt, g.delivery));
            sent.push(g.lease);
            msgs.push(g.msg);
        }
        self.store.record_attempts(&records).await?;
        // Retries are queued before the leases are let go: a crash in between
        // then costs a duplicate attempt, never a lost retry.
        self.queue.push(retries).await?;
        if sent.len() == leases.len() {
            self.queue.ack(leases).await?;
        } else {
            let sent: Vec<Lease> = sent.into_iter().cloned().collect();
            self.queue.ack(&sent).await?;
        }

        // The attempt is sent, recorded and its lease let go: from here on a
        // failure must not fail the step, which would send it again. The
        // endpoint's health is looked at again with its next attempt.
        let last = &records.last().expect("at least one").0;
        if let Err(e) = self
            .note_health(&ep, &msgs[0], last, ok, resp.status == 410)
            .await
        {
            tracing::warn!(endpoint.id = %ep.id, error = %e, "could not update the endpoint's health");
        }
        for (kind, i) in events {
            self.opevents
                .emit(self, kind, &ep, &msgs[i], &records[i].0)
                .await;
        }
        Ok(report(pace, outcome))
    }

    /// Loads what a lease needs, or settles it without sending (acknowledged by
    /// the caller) when there is nothing to send.
    async fn load<'a>(&self, lease: &'a Lease, ep: &Endpoint) -> anyhow::Result<Option<Going<'a>>> {
        let task = &lease.task;
        // Another copy of this very task is being sent by someone else.
        if !self.queue.claim(task).await? {
            return Ok(None);
        }
        // A just-created delivery's first task carries what the store would
        // say, unless it has waited too long for that to hold or content has
        // been expunged since (this message's, perhaps).
        if let Some(fresh) = task.hint.as_ref().and_then(|h| h.get::<Fresh>()) {
            if !task.manual
                && !ep.disabled
                && fresh.msg.payload.is_some()
                && fresh.trusted(self.config.hint_trusted_for, self.store.content_epoch())
            {
                return Ok(Some(Going {
                    lease,
                    delivery: fresh.delivery.clone(),
                    msg: fresh.msg.clone(),
                }));
            }
        }
        // One read for both: each is a round trip (to SQLite's thread, or
        // across the network), and a backlog drains one task at a time.
        let Some((mut delivery, msg)) = self.store.delivery_with_message(&task.delivery_id).await?
        else {
            return Ok(None);
        };
        let pending = matches!(
            delivery.status,
            MessageStatus::Pending | MessageStatus::Sending
        );
        if !task.manual && !pending {
            return Ok(None);
        }
        // A copy of a task for an earlier attempt (re-queued on start, reclaimed
        // from a dead node): the delivery has moved on, so this one is stale.
        if !task.manual && delivery.next_attempt.is_some_and(|next| task.due < next) {
            return Ok(None);
        }
        if ep.disabled && !task.manual {
            // Left as failed so that `recover` can bring it back once re-enabled.
            delivery.status = MessageStatus::Fail;
            delivery.next_attempt = None;
            delivery.updated_at = model::now();
            self.store.upsert_delivery(&delivery).await?;
            return Ok(None);
        }
        if msg.payload.is_none() {
            // Expunged: there is nothing left to send.
            delivery.status = MessageStatus::Canceled;
            delivery.next_attempt = None;
            delivery.updated_at = model::now();
            self.store.upsert_delivery(&delivery).await?;
            return Ok(None);
        }
        Ok(Some(Going {
            lease,
            delivery,
            msg: Arc::new(msg),
        }))
    }

    fn settle_scheduled(
        &self,
        delivery: &mut Delivery,
        policy: &RetryPolicy,
        resp: &Response,
        ok: bool,
    ) -> (Outcome, Vec<OpEvent>) {
        delivery.attempts += 1;
        let failures_before = delivery.attempts - 1;
        if ok {
            delivery.status = MessageStatus::Success;
            delivery.next_attempt = None;
            let recovered = failures_before >= self.config.failing_after;
            return (
                Outcome::Delivered,
                if recovered {
                    vec![OpEvent::AttemptRecovered]
                } else {
                    vec![]
                },
            );
        }
        let mut events = Vec::new();
        if delivery.attempts == self.config.failing_after {
            events.push(OpEvent::AttemptFailing);
        }
        if resp.status == 410 {
            delivery.status = MessageStatus::Fail;
            delivery.next_attempt = None;
            return (Outcome::Failed, events);
        }
        match policy.decide(delivery.attempts, &mut rand::thread_rng()) {
            RetryDecision::RetryAfter(mut delay) => {
                if let (429 | 503, Some(ra)) = (resp.status, resp.retry_after) {
                    delay = delay.max(ra.min(MAX_RETRY_AFTER));
                }
                delivery.status = MessageStatus::Pending;
                delivery.next_attempt =
                    Some(model::now() + chrono::Duration::from_std(delay).unwrap_or_default());
                (Outcome::Retrying(delay), events)
            }
            RetryDecision::GiveUp => {
                delivery.status = MessageStatus::Fail;
                delivery.next_attempt = None;
                events.push(OpEvent::AttemptExhausted);
                (Outcome::Failed, events)
            }
        }
    }

    /// With a queue shared by several nodes, waits for the endpoint's shared
    /// limits: one of its concurrency slots, then (if throttled) its rate. The
    /// slot lapses by itself if this node dies holding it.
    async fn shared_permit(
        &self,
        ep: &Endpoint,
        timeout: Duration,
    ) -> anyhow::Result<Option<String>> {
        let Some(limits) = self.queue.shared_limits() else {
            return Ok(None);
        };
        let holder = new_id(IdKind::Attempt);
        let ttl = timeout + Duration::from_secs(10);
        let cap = self.config.endpoint_concurrency;
        while !limits.take_slot(&ep.id, cap, &holder, ttl).await? {
            tokio::time::sleep(SHARED_SLOT_POLL).await;
        }
        if let Some(rate) = ep.throttle_rate.filter(|r| *r > 0) {
            while let Some(wait) = limits.pace(&ep.id, rate).await? {
                tokio::time::sleep(wait).await;
            }
        }
        Ok(Some(holder))
    }

    async fn release_shared(&self, ep: &Endpoint, permit: Option<String>) {
        if let (Some(limits), Some(holder)) = (self.queue.shared_limits(), permit) {
            if let Err(e) = limits.release_slot(&ep.id, &holder).await {
                tracing::warn!(error = %e, endpoint.id = %ep.id, "could not release a shared slot; it lapses by itself");
            }
        }
    }

    /// The endpoint's own schedule (`settings.retry`), else the deployment's.
    pub fn retry_policy(&self, settings: &EndpointSettings) -> RetryPolicy {
        settings
            .retry
            .as_ref()
            .and_then(|r| r.policy(self.config.retry.jitter()).ok())
            .unwrap_or_else(|| self.config.retry.clone())
    }

    /// Keeps the endpoint's failing clock: any success stops it; a failure starts
    /// it, and an endpoint failing for longer than the limit (or answering 410)
    /// is disabled and announced.
    async fn note_health(
        &self,
        ep: &Endpoint,
        msg: &Message,
        attempt: &Attempt,
        ok: bool,
        gone: bool,
    ) -> anyhow::Result<()> {
        let now = attempt.created_at;
        if ok {
            if self.health.needs_clear(&ep.id) {
                self.store.set_endpoint_failing_since(&ep.id, None).await?;
                self.health.mark_healthy(&ep.id);
            }
            return Ok(());
        }
        let limit =
            chrono::Duration::from_std(self.config.disable_after).unwrap_or(chrono::Duration::MAX);
        let to_disable = |since| gone || now - since > limit;
        let since = match self.health.failing_since(&ep.id) {
            // Running in the store since then: nothing to write. Whether to
            // disable is decided on the store's own clock, read below, which
            // another node's success may have restarted.
            Some(since) if !to_disable(since) => since,
            _ => {
                let since = self.store.endpoint_failing_since(&ep.id, now).await?;
                self.health.mark_failing(&ep.id, since);
                since
            }
        };
        if to_disable(since) && self.store.disable_endpoint(&ep.app_id, &ep.id, now).await? {
            tracing::warn!(endpoint.id = %ep.id, gone, "endpoint disabled");
            self.opevents
                .emit(
                    self,
                    OpEvent::EndpointDisabled {
                        failing_since: since,
                        gone,
                    },
                    ep,
                    msg,
                    attempt,
                )
                .await;
        }
        Ok(())
    }
}

/// A manual attempt is never retried; success completes the delivery, a
/// failure leaves any scheduled retries as they were.
fn settle_manual(delivery: &mut Delivery, ok: bool) -> (Outcome, Vec<OpEvent>) {
    if ok {
        delivery.status = MessageStatus::Success;
        delivery.next_attempt = None;
        (Outcome::Delivered, vec![])
    } else {
        (Outcome::Failed, vec![])
    }
}
