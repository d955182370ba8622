//! The behaviour every [`Store`] backend must show, written once against
//! `Arc<dyn Store>`. Each `pub async fn` is one behaviour; a backend's test
//! file runs each of them as its own test against a fresh, empty store.
//!
//! Timestamps are stored with millisecond precision, so the fixtures use
//! millisecond-aligned times and round trips can compare whole records.

pub mod apps;
pub mod attempts;
pub mod deliveries;
pub mod endpoints;
pub mod event_types;
pub mod idempotency;
pub mod messages;
pub mod tasks;
pub mod tokens;

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use hookd_core::model::{
    Application, Attempt, Delivery, Endpoint, Message, MessageStatus, OldSecret, TriggerType,
};
use hookd_core::{new_id, IdKind};
use hookd_store::{PageReq, Store};

pub type DynStore = Arc<dyn Store>;

/// The present, cut to the millisecond the store keeps.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now is representable")
}

pub fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

pub fn app_named(name: &str) -> Application {
    let t = now();
    Application {
        id: new_id(IdKind::App),
        uid: None,
        name: name.to_owned(),
        throttle_rate: None,
        metadata: Default::default(),
        created_at: t,
        updated_at: t,
    }
}

pub async fn new_app(store: &DynStore) -> Application {
    let app = app_named("test app");
    store.create_app(&app).await.expect("create app");
    app
}

/// An endpoint that receives everything, with every optional field filled in
/// so that round trips exercise them.
pub fn endpoint_for(app_id: &str) -> Endpoint {
    let t = now();
    Endpoint {
        id: new_id(IdKind::Endpoint),
        app_id: app_id.to_owned(),
        uid: None,
        url: "https://receiver.example/hook".to_owned(),
        description: "test endpoint".to_owned(),
        disabled: false,
        throttle_rate: Some(10),
        event_types: None,
        channels: None,
        metadata: [("team".to_owned(), "billing".to_owned())].into(),
        headers: [("x-custom".to_owned(), "1".to_owned())].into(),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        old_secrets: vec![OldSecret { key: "whsec_old".to_owned(), expires_at: t + secs(3600) }],
        settings: serde_json::json!({ "timeoutMs": 15000 }),
        created_at: t,
        updated_at: t,
    }
}

/// Creates an endpoint of `app_id`, first letting `shape` adjust it.
pub async fn new_endpoint(store: &DynStore, app_id: &str, shape: impl FnOnce(&mut Endpoint)) -> Endpoint {
    let mut ep = endpoint_for(app_id);
    shape(&mut ep);
    store.create_endpoint(&ep).await.expect("create endpoint");
    ep
}

pub fn message_for(app_id: &str, event_type: &str) -> Message {
    Message {
        id: new_id(IdKind::Message),
        app_id: app_id.to_owned(),
        event_id: None,
        event_type: event_type.to_owned(),
        payload: Some(r#"{"user":{"id":42}}"#.to_owned()),
        channels: None,
        tags: None,
        created_at: now(),
    }
}

/// Sends a message shaped by `shape` and returns it with its deliveries.
pub async fn send(
    store: &DynStore,
    app_id: &str,
    event_type: &str,
    shape: impl FnOnce(&mut Message),
) -> (Message, Vec<Delivery>) {
    let mut msg = message_for(app_id, event_type);
    shape(&mut msg);
    let deliveries = store.create_message(&msg).await.expect("create message");
    (msg, deliveries)
}

/// An attempt on `delivery` that ended with `status` and HTTP `code`.
pub fn attempt_on(delivery: &Delivery, status: MessageStatus, code: i32, at: DateTime<Utc>) -> Attempt {
    Attempt {
        id: new_id(IdKind::Attempt),
        app_id: delivery.app_id.clone(),
        msg_id: delivery.msg_id.clone(),
        endpoint_id: delivery.endpoint_id.clone(),
        url: "https://receiver.example/hook".to_owned(),
        response: Some(format!("answered {code}")),
        response_status_code: code,
        response_duration_ms: 12,
        status,
        trigger_type: TriggerType::Scheduled,
        created_at: at,
    }
}

/// Records an attempt and moves the delivery to the attempt's status.
pub async fn record(store: &DynStore, delivery: &Delivery, status: MessageStatus, code: i32) -> Attempt {
    let at = now();
    let attempt = attempt_on(delivery, status, code, at);
    let next = Delivery { status, attempts: delivery.attempts + 1, next_attempt: None, updated_at: at, ..delivery.clone() };
    store.record_attempt(&attempt, &next).await.expect("record attempt");
    attempt
}

pub fn asc(limit: u32) -> PageReq {
    PageReq::first(limit, false)
}

pub fn desc(limit: u32) -> PageReq {
    PageReq::first(limit, true)
}

pub fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// Follows a listing page by page, the way the API's iterator does, and
/// returns the keys seen in order. Checks that no page exceeds its limit.
pub async fn walk<T, F, Fut>(limit: u32, desc: bool, mut fetch: F, key: impl Fn(&T) -> String) -> Vec<String>
where
    F: FnMut(PageReq) -> Fut,
    Fut: Future<Output = hookd_store::Result<Vec<T>>>,
{
    let mut seen = Vec::new();
    let mut page = PageReq::first(limit, desc);
    loop {
        let rows = fetch(page.clone()).await.expect("list page");
        assert!(rows.len() <= limit as usize, "page of {} rows exceeds limit {limit}", rows.len());
        let full = rows.len() == limit as usize;
        seen.extend(rows.iter().map(&key));
        if !full || rows.is_empty() {
            return seen;
        }
        assert!(seen.len() < 10_000, "pagination does not terminate");
        page.after = seen.last().cloned();
    }
}

/// The store answers a readiness check.
pub async fn ping_succeeds_on_an_open_store(store: DynStore) {
    store.ping().await.expect("ping");
}
