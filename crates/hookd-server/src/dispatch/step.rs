//! The worker's step: claim → load → sign → send → record → schedule. One call
//! handles one lease and leaves the store, the queue and the endpoint's health
//! consistent whatever the outcome.

use std::time::Duration;

use hookd_core::model::{self, Attempt, Delivery, Endpoint, Message, MessageStatus, TriggerType};
use hookd_core::retry::{RetryDecision, RetryPolicy};
use hookd_core::{new_id, IdKind};
use hookd_queue::Lease;

use super::opevents::OpEvent;
use super::request::{self, HeaderFamily};
use super::{task_for, Engine};

/// What one step did, for the scheduler and for tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Nothing was sent (the delivery is finished, gone, or its endpoint is off).
    Skipped(&'static str),
    Delivered,
    /// Failed; the next attempt is scheduled after this delay.
    Retrying(Duration),
    /// Failed for good (schedule exhausted, 410 Gone, or a failed manual attempt).
    Failed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    pub endpoint_id: String,
    /// The endpoint's throttle, so the scheduler can pace it; `None` when the
    /// endpoint was not loaded (the step ended before that).
    pub throttle_rate: Option<Option<u32>>,
    pub outcome: Outcome,
}

const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

impl Engine {
    /// Processes one lease. Errors mean the store or queue failed; the lease is
    /// then not acknowledged and the delivery stays pending for a later retry.
    pub async fn process(&self, lease: &Lease) -> anyhow::Result<StepReport> {
        let task = &lease.task;
        let skip = |why, rate| StepReport {
            endpoint_id: task.endpoint_id.clone(),
            throttle_rate: rate,
            outcome: Outcome::Skipped(why),
        };

        let Some(mut delivery) = self.store.delivery(&task.delivery_id).await? else {
            self.queue.ack(std::slice::from_ref(lease)).await?;
            return Ok(skip("delivery no longer exists", None));
        };
        let pending = matches!(
            delivery.status,
            MessageStatus::Pending | MessageStatus::Sending
        );
        if !task.manual && !pending {
            self.queue.ack(std::slice::from_ref(lease)).await?;
            return Ok(skip("delivery already finished", None));
        }
        let Some(ep) = self
            .store
            .endpoint_by_key(&task.app_id, &task.endpoint_id)
            .await?
        else {
            self.queue.ack(std::slice::from_ref(lease)).await?;
            return Ok(skip("endpoint no longer exists", None));
        };
        if ep.disabled && !task.manual {
            // Left as failed so that `recover` can bring it back once re-enabled.
            delivery.status = MessageStatus::Fail;
            delivery.next_attempt = None;
            delivery.updated_at = model::now();
            self.store.upsert_delivery(&delivery).await?;
            self.queue.ack(std::slice::from_ref(lease)).await?;
            return Ok(skip("endpoint is disabled", Some(ep.throttle_rate)));
        }
        let msg = self
            .store
            .message_by_key(&task.app_id, &task.msg_id)
            .await?;
        let Some((msg, payload)) = msg.and_then(|m| m.payload.clone().map(|p| (m, p))) else {
            delivery.status = MessageStatus::Canceled;
            delivery.next_attempt = None;
            delivery.updated_at = model::now();
            self.store.upsert_delivery(&delivery).await?;
            self.queue.ack(std::slice::from_ref(lease)).await?;
            return Ok(skip(
                "message or its payload is gone",
                Some(ep.throttle_rate),
            ));
        };

        let now = model::now();
        let family = HeaderFamily::for_endpoint(&ep, self.config.header_family);
        let resp = match request::build(
            &ep,
            &msg.id,
            &payload,
            now,
            family,
            self.config.request_timeout,
        ) {
            Ok(out) => {
                self.client
                    .post(&ep.url, out.headers, out.body, out.timeout)
                    .await
            }
            Err(why) => crate::outbound::Response {
                status: 0,
                body: why,
                duration: Duration::ZERO,
                retry_after: None,
            },
        };
        let ok = (200..300).contains(&resp.status);
        tracing::debug!(
            app.id = %task.app_id, endpoint.id = %ep.id, msg.id = %msg.id, attempt = delivery.attempts + 1,
            status = resp.status, duration_ms = resp.duration.as_millis() as u64, "attempt"
        );
        let attempt = Attempt {
            id: new_id(IdKind::Attempt),
            app_id: task.app_id.clone(),
            msg_id: msg.id.clone(),
            endpoint_id: ep.id.clone(),
            url: ep.url.clone(),
            response: Some(resp.body.clone()),
            response_status_code: i32::from(resp.status),
            response_duration_ms: resp.duration.as_millis() as i64,
            status: if ok {
                MessageStatus::Success
            } else {
                MessageStatus::Fail
            },
            trigger_type: if task.manual {
                TriggerType::Manual
            } else {
                TriggerType::Scheduled
            },
            created_at: now,
        };

        let (outcome, events) = if task.manual {
            self.settle_manual(&mut delivery, ok)
        } else {
            self.settle_scheduled(&mut delivery, &ep, &resp, ok)
        };
        delivery.updated_at = now;
        self.store.record_attempt(&attempt, &delivery).await?;
        self.queue.ack(std::slice::from_ref(lease)).await?;
        if let (Outcome::Retrying(_), Some(_)) = (&outcome, delivery.next_attempt) {
            self.queue.push(vec![task_for(&delivery, false)]).await?;
        }

        self.note_health(&ep, &msg, &attempt, ok, resp.status == 410)
            .await?;
        for kind in events {
            self.opevents.emit(self, kind, &ep, &msg, &attempt).await;
        }
        Ok(StepReport {
            endpoint_id: ep.id,
            throttle_rate: Some(ep.throttle_rate),
            outcome,
        })
    }

    /// A manual attempt is never retried; success completes the delivery, a
    /// failure leaves any scheduled retries as they were.
    fn settle_manual(&self, delivery: &mut Delivery, ok: bool) -> (Outcome, Vec<OpEvent>) {
        if ok {
            delivery.status = MessageStatus::Success;
            delivery.next_attempt = None;
            (Outcome::Delivered, vec![])
        } else {
            (Outcome::Failed, vec![])
        }
    }

    fn settle_scheduled(
        &self,
        delivery: &mut Delivery,
        ep: &Endpoint,
        resp: &crate::outbound::Response,
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
        let policy = self.retry_policy(ep);
        match policy.decide(delivery.attempts, &mut rand::thread_rng()) {
            RetryDecision::RetryAfter(mut delay) => {
                if matches!(resp.status, 429 | 503) {
                    if let Some(ra) = resp.retry_after {
                        delay = delay.max(ra.min(MAX_RETRY_AFTER));
                    }
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

    /// The endpoint's own schedule (`settings.retry`), else the deployment's.
    pub fn retry_policy(&self, ep: &Endpoint) -> RetryPolicy {
        let retry = ep.settings.get("retry");
        let from_preset = retry
            .and_then(|r| r.get("preset"))
            .and_then(|p| p.as_str())
            .and_then(|p| RetryPolicy::preset(p).ok());
        let from_schedule = retry
            .and_then(|r| r.get("schedule"))
            .and_then(|s| s.as_array())
            .and_then(|list| {
                let delays: Option<Vec<Duration>> = list
                    .iter()
                    .map(|v| {
                        v.as_f64()
                            .filter(|f| *f >= 0.0)
                            .map(Duration::from_secs_f64)
                    })
                    .collect();
                RetryPolicy::new(delays?, self.config.retry.jitter()).ok()
            });
        from_preset
            .or(from_schedule)
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
        self.health.mark_failing(&ep.id);
        let since = self.store.endpoint_failing_since(&ep.id, now).await?;
        let too_long = now - since
            > chrono::Duration::from_std(self.config.disable_after)
                .unwrap_or(chrono::Duration::MAX);
        if gone || too_long {
            if self.store.disable_endpoint(&ep.app_id, &ep.id, now).await? {
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
        }
        Ok(())
    }
}
