//! Operational webhooks: events about delivery itself (failing, exhausted,
//! recovered, endpoint disabled), sent to the endpoints of a reserved
//! application. They are ordinary messages there, so they are stored, signed,
//! retried and listed like any other.

use chrono::{DateTime, Utc};
use hookd_core::model::{self, Application, Attempt, Endpoint, Message};
use hookd_core::{new_id, IdKind};

use super::Engine;

#[derive(Debug, Clone, PartialEq)]
pub enum OpEvent {
    AttemptFailing,
    AttemptExhausted,
    AttemptRecovered,
    EndpointDisabled {
        failing_since: DateTime<Utc>,
        gone: bool,
    },
}

impl OpEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::AttemptFailing => "message.attempt.failing",
            Self::AttemptExhausted => "message.attempt.exhausted",
            Self::AttemptRecovered => "message.attempt.recovered",
            Self::EndpointDisabled { .. } => "endpoint.disabled",
        }
    }
}

/// Emits operational events into the application whose uid is `app_uid`.
pub struct OpEvents {
    pub app_uid: String,
}

impl OpEvents {
    /// Creates the operational application if it does not exist yet.
    pub async fn ensure_app(&self, engine: &Engine) -> anyhow::Result<Application> {
        if let Some(app) = engine.store.app_by_key(&self.app_uid).await? {
            return Ok(app);
        }
        let now = model::now();
        let app = Application {
            id: new_id(IdKind::App),
            uid: Some(self.app_uid.clone()),
            name: "Operational webhooks".into(),
            throttle_rate: None,
            metadata: Default::default(),
            created_at: now,
            updated_at: now,
        };
        match engine.store.create_app(&app).await {
            Ok(()) => Ok(app),
            Err(hookd_store::StoreError::Conflict(_)) => Ok(engine
                .store
                .app_by_key(&self.app_uid)
                .await?
                .expect("created concurrently")),
            Err(e) => Err(e.into()),
        }
    }

    /// Best effort: a failure to emit is logged, never fails the delivery step.
    pub async fn emit(
        &self,
        engine: &Engine,
        event: OpEvent,
        ep: &Endpoint,
        msg: &Message,
        attempt: &Attempt,
    ) {
        if let Err(e) = self.try_emit(engine, &event, ep, msg, attempt).await {
            tracing::error!(error = ?e, event = event.event_type(), "could not emit operational event");
        }
    }

    async fn try_emit(
        &self,
        engine: &Engine,
        event: &OpEvent,
        ep: &Endpoint,
        msg: &Message,
        attempt: &Attempt,
    ) -> anyhow::Result<()> {
        let op_app = self.ensure_app(engine).await?;
        if ep.app_id == op_app.id {
            // Never report on the operational endpoints themselves: that could loop.
            return Ok(());
        }
        let app_uid = engine
            .store
            .app_by_key(&ep.app_id)
            .await?
            .and_then(|a| a.uid);
        let data = match event {
            OpEvent::EndpointDisabled {
                failing_since,
                gone,
            } => serde_json::json!({
                "appId": ep.app_id,
                "appUid": app_uid,
                "endpointId": ep.id,
                "endpointUid": ep.uid,
                "failSince": failing_since,
                "trigger": if *gone { "gone" } else { "automatic" },
            }),
            _ => serde_json::json!({
                "appId": ep.app_id,
                "appUid": app_uid,
                "endpointId": ep.id,
                "msgId": msg.id,
                "msgEventId": msg.event_id,
                "lastAttempt": {
                    "id": attempt.id,
                    "responseStatusCode": attempt.response_status_code,
                    "timestamp": attempt.created_at,
                },
            }),
        };
        let payload = serde_json::json!({ "type": event.event_type(), "data": data });
        let op_msg = Message {
            id: new_id(IdKind::Message),
            app_id: op_app.id,
            event_id: None,
            event_type: event.event_type().into(),
            payload: Some(payload.to_string()),
            channels: None,
            tags: None,
            created_at: model::now(),
            deliver_at: None,
        };
        let deliveries = engine.store.create_message(&op_msg).await?;
        let tasks = deliveries
            .iter()
            .map(|d| super::task_for(d, false))
            .collect();
        engine.queue.push(tasks).await?;
        Ok(())
    }
}
