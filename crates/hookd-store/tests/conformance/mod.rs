//! The behaviour every [`Store`] backend must show, written once against
//! `Arc<dyn Store>`. Each `pub async fn` is one behaviour; a backend's test
//! file runs each of them as its own test against a fresh, empty store.
//!
//! Timestamps are stored with millisecond precision, so the fixtures use
//! millisecond-aligned times and round trips can compare whole records.

/// Declares one `#[tokio::test]` per behaviour in this suite, so every backend
/// runs the same list. `$fresh` is an async fn returning
/// `Option<(DynStore, Guard)>`: a new, empty, migrated store plus whatever must
/// live as long as it (a temp dir, a schema to drop), or `None` when the backend
/// is not configured here (PostgreSQL without `HOOKD_TEST_POSTGRES_URL`), in
/// which case the test returns at once.
///
/// A behaviour added to the suite but not to this list is dead code, which
/// clippy's `-D warnings` refuses.
macro_rules! conformance_tests {
    ($fresh:path) => {
        conformance_tests!(@each $fresh;
            health::ping_succeeds_on_an_open_store,
            tokens::tokens_are_found_by_hash_with_their_scope,
            tokens::expired_tokens_are_still_found,
            tokens::duplicate_token_hash_is_a_conflict,
            tokens::admin_tokens_are_counted_apart_from_app_tokens,
            tokens::expiring_app_tokens_caps_only_that_apps_tokens,
            apps::apps_round_trip_and_are_found_by_id_or_uid,
            apps::duplicate_app_uid_is_a_conflict,
            apps::updating_an_app_replaces_it,
            apps::pages_do_not_overlap_and_cover_everything,
            apps::deleting_an_app_removes_its_endpoints_and_messages,
            apps::app_reads_follow_every_write,
            event_types::event_types_round_trip_with_all_their_fields,
            event_types::duplicate_event_type_name_is_a_conflict,
            event_types::event_types_list_in_name_order_across_pages,
            event_types::archived_event_types_are_listed_only_on_request,
            event_types::updating_and_deleting_event_types,
            endpoints::endpoints_round_trip_with_all_their_fields,
            endpoints::duplicate_endpoint_uid_within_an_app_is_a_conflict,
            endpoints::creating_an_endpoint_for_a_missing_app_is_not_found,
            endpoints::endpoints_list_in_pages_within_their_app,
            endpoints::updating_an_endpoint_replaces_it,
            endpoints::endpoint_reads_follow_every_write,
            endpoints::deleting_an_endpoint_removes_its_deliveries_and_attempts,
            endpoints::endpoint_stats_count_deliveries_by_status_within_the_window,
            endpoints::failing_clock_starts_once_and_stops_on_demand,
            endpoints::disabling_reports_whether_it_changed_anything,
            endpoints::reenabling_an_endpoint_stops_its_failing_clock,
            messages::create_message_fans_out_only_to_matching_enabled_endpoints,
            messages::creating_a_message_for_a_missing_app_is_not_found,
            messages::duplicate_event_id_is_a_conflict,
            messages::concurrent_creations_fail_alone,
            messages::a_message_for_a_missing_app_fails_alone_among_concurrent_ones,
            messages::messages_are_found_by_id_or_event_id_within_their_app,
            messages::message_filters_select_by_channel_tag_type_and_time,
            messages::messages_page_by_id_in_either_direction,
            messages::expunged_message_reads_back_without_payload,
            messages::messages_with_small_payloads_leave_out_large_expunged_and_missing,
            messages::scheduled_message_deliveries_are_due_at_deliver_at,
            messages::a_narrow_apps_message_is_fanned_out_as_it_is_accepted,
            messages::a_wide_apps_message_is_accepted_then_fanned_out_exactly_once,
            messages::concurrent_fan_outs_write_each_message_once,
            messages::pending_fan_outs_page_in_id_order,
            deliveries::deliveries_are_found_by_id_and_by_message_and_endpoint,
            deliveries::a_delivery_is_read_with_its_message,
            deliveries::retrying_failed_deliveries_revives_only_the_failed_ones,
            deliveries::message_destinations_pair_deliveries_with_endpoints_in_pages,
            deliveries::endpoint_messages_filter_by_delivery_status_and_page_by_message_id,
            deliveries::pending_deliveries_include_sending_and_page_by_id,
            deliveries::upsert_delivery_resets_an_existing_row_and_keeps_its_id,
            deliveries::failed_deliveries_are_listed_within_the_window,
            attempts::recording_an_attempt_updates_its_delivery,
            attempts::recording_an_attempt_for_a_missing_delivery_stores_nothing,
            attempts::concurrent_records_fail_alone,
            attempts::a_delivery_twice_in_one_record_keeps_its_last_state,
            attempts::attempt_filters_select_by_status_code_class_and_message,
            attempts::attempts_page_newest_first,
            attempts::attempts_are_scoped_to_their_app_and_message,
            attempts::expunged_attempt_reads_back_without_response,
            idempotency::idempotency_key_is_claimed_once_then_replayed,
            idempotency::concurrent_idempotency_begin_has_one_winner,
            idempotency::concurrent_takeover_of_an_abandoned_claim_has_one_winner,
            idempotency::abandoned_idempotency_claim_is_taken_over,
            idempotency::expired_idempotent_response_is_not_replayed,
            idempotency::aborted_idempotency_key_can_be_claimed_again,
            tasks::background_tasks_are_replaced_by_id,
        );
    };
    (@each $fresh:path; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((store, _guard)) = $fresh().await else { return };
                $crate::conformance::$module::$name(store).await;
            }
        )*
    };
}

pub mod apps;
pub mod attempts;
pub mod deliveries;
pub mod endpoints;
pub mod event_types;
pub mod health;
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

/// The present, cut to the millisecond the stores keep.
pub use hookd_core::model::now;

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
        old_secrets: vec![OldSecret {
            key: "whsec_old".to_owned(),
            expires_at: t + secs(3600),
        }],
        settings: serde_json::json!({ "timeoutMs": 15000 }),
        created_at: t,
        updated_at: t,
    }
}

/// Creates an endpoint of `app_id`, first letting `shape` adjust it.
pub async fn new_endpoint(
    store: &DynStore,
    app_id: &str,
    shape: impl FnOnce(&mut Endpoint),
) -> Endpoint {
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
        deliver_at: None,
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
pub fn attempt_on(
    delivery: &Delivery,
    status: MessageStatus,
    code: i32,
    at: DateTime<Utc>,
) -> Attempt {
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
pub async fn record(
    store: &DynStore,
    delivery: &Delivery,
    status: MessageStatus,
    code: i32,
) -> Attempt {
    let at = now();
    let attempt = attempt_on(delivery, status, code, at);
    let next = Delivery {
        status,
        attempts: delivery.attempts + 1,
        next_attempt: None,
        updated_at: at,
        ..delivery.clone()
    };
    store
        .record_attempt(&attempt, &next)
        .await
        .expect("record attempt");
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
pub async fn walk<T, F, Fut>(
    limit: u32,
    desc: bool,
    mut fetch: F,
    key: impl Fn(&T) -> String,
) -> Vec<String>
where
    F: FnMut(PageReq) -> Fut,
    Fut: Future<Output = hookd_store::Result<Vec<T>>>,
{
    let mut seen = Vec::new();
    let mut page = PageReq::first(limit, desc);
    loop {
        let rows = fetch(page.clone()).await.expect("list page");
        assert!(
            rows.len() <= limit as usize,
            "page of {} rows exceeds limit {limit}",
            rows.len()
        );
        let full = rows.len() == limit as usize;
        seen.extend(rows.iter().map(&key));
        if !full || rows.is_empty() {
            return seen;
        }
        assert!(seen.len() < 10_000, "pagination does not terminate");
        page.after = seen.last().cloned();
    }
}
