//! Endpoints: round trips, per-app uids, pages, updates, deletion and stats.

use hookd_core::model::{Delivery, EndpointStats, MessageStatus, OldSecret};
use hookd_core::{new_id, IdKind};
use hookd_store::{AttemptFilter, StoreError};

use super::{
    asc, endpoint_for, new_app, new_endpoint, now, record, secs, send, sorted, walk, DynStore,
};

pub async fn endpoints_round_trip_with_all_their_fields(store: DynStore) {
    let app = new_app(&store).await;
    let other = new_app(&store).await;
    let ep = new_endpoint(&store, &app.id, |e| {
        e.uid = Some("primary".to_owned());
        e.disabled = true;
        e.event_types = Some(vec!["user.created".to_owned(), "user.deleted".to_owned()]);
        e.channels = Some(vec!["eu".to_owned()]);
    })
    .await;
    let bare = new_endpoint(&store, &app.id, |e| {
        e.throttle_rate = None;
        e.metadata.clear();
        e.headers.clear();
        e.old_secrets.clear();
        e.settings = serde_json::Value::Null;
    })
    .await;

    assert_eq!(
        store.endpoint_by_key(&app.id, &ep.id).await.unwrap(),
        Some(ep.clone())
    );
    assert_eq!(
        store.endpoint_by_key(&app.id, "primary").await.unwrap(),
        Some(ep.clone())
    );
    assert_eq!(
        store.endpoint_by_key(&app.id, &bare.id).await.unwrap(),
        Some(bare)
    );
    assert_eq!(
        store.endpoint_by_key(&app.id, "secondary").await.unwrap(),
        None
    );
    // Another app cannot see it, by id or by uid.
    assert_eq!(
        store.endpoint_by_key(&other.id, &ep.id).await.unwrap(),
        None
    );
    assert_eq!(
        store.endpoint_by_key(&other.id, "primary").await.unwrap(),
        None
    );
}

pub async fn duplicate_endpoint_uid_within_an_app_is_a_conflict(store: DynStore) {
    let app = new_app(&store).await;
    let other = new_app(&store).await;
    new_endpoint(&store, &app.id, |e| e.uid = Some("hook".to_owned())).await;

    let mut clash = endpoint_for(&app.id);
    clash.uid = Some("hook".to_owned());
    match store.create_endpoint(&clash).await {
        Err(StoreError::Conflict(text)) => assert!(text.contains("uid"), "{text}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // The same uid in another app is fine, and so are several without a uid.
    new_endpoint(&store, &other.id, |e| e.uid = Some("hook".to_owned())).await;
    new_endpoint(&store, &app.id, |_| {}).await;
    new_endpoint(&store, &app.id, |_| {}).await;
}

pub async fn creating_an_endpoint_for_a_missing_app_is_not_found(store: DynStore) {
    let orphan = endpoint_for(&new_id(IdKind::App));
    assert!(matches!(
        store.create_endpoint(&orphan).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn endpoints_list_in_pages_within_their_app(store: DynStore) {
    let app = new_app(&store).await;
    let other = new_app(&store).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(new_endpoint(&store, &app.id, |_| {}).await.id);
    }
    new_endpoint(&store, &other.id, |_| {}).await;

    let app_id = app.id.clone();
    let listed = walk(
        2,
        false,
        |p| {
            let (s, app_id) = (store.clone(), app_id.clone());
            async move { s.list_endpoints(&app_id, &p).await }
        },
        |e| e.id.clone(),
    )
    .await;
    assert_eq!(listed, sorted(ids.clone()));

    let newest_first = walk(
        4,
        true,
        |p| {
            let (s, app_id) = (store.clone(), app_id.clone());
            async move { s.list_endpoints(&app_id, &p).await }
        },
        |e| e.id.clone(),
    )
    .await;
    let mut expected = sorted(ids);
    expected.reverse();
    assert_eq!(newest_first, expected);
}

pub async fn updating_an_endpoint_replaces_it(store: DynStore) {
    let app = new_app(&store).await;
    let ep = new_endpoint(&store, &app.id, |_| {}).await;
    new_endpoint(&store, &app.id, |e| e.uid = Some("taken".to_owned())).await;

    let mut changed = ep.clone();
    changed.uid = Some("mine".to_owned());
    changed.url = "https://elsewhere.example/in".to_owned();
    changed.description = "moved".to_owned();
    changed.disabled = true;
    changed.event_types = Some(vec!["a.b".to_owned()]);
    changed.channels = Some(vec!["c".to_owned()]);
    changed.secret = "whsec_new".to_owned();
    changed.old_secrets = vec![OldSecret {
        key: ep.secret.clone(),
        expires_at: now() + secs(86_400),
    }];
    changed.settings = serde_json::json!({ "signing": "v1a" });
    changed.updated_at = now() + secs(1);
    store.update_endpoint(&changed).await.unwrap();
    assert_eq!(
        store.endpoint_by_key(&app.id, "mine").await.unwrap(),
        Some(changed.clone())
    );

    let mut clash = changed.clone();
    clash.uid = Some("taken".to_owned());
    assert!(matches!(
        store.update_endpoint(&clash).await,
        Err(StoreError::Conflict(_))
    ));

    let missing = endpoint_for(&app.id);
    assert!(matches!(
        store.update_endpoint(&missing).await,
        Err(StoreError::NotFound)
    ));
    // An endpoint cannot be updated through another app.
    let other = new_app(&store).await;
    let moved = hookd_core::model::Endpoint {
        app_id: other.id.clone(),
        ..changed
    };
    assert!(matches!(
        store.update_endpoint(&moved).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn deleting_an_endpoint_removes_its_deliveries_and_attempts(store: DynStore) {
    let app = new_app(&store).await;
    let doomed = new_endpoint(&store, &app.id, |_| {}).await;
    let kept = new_endpoint(&store, &app.id, |_| {}).await;
    let (msg, deliveries) = send(&store, &app.id, "user.created", |_| {}).await;
    assert_eq!(deliveries.len(), 2);
    for d in &deliveries {
        record(&store, d, MessageStatus::Fail, 503).await;
    }

    let other = new_app(&store).await;
    assert!(
        !store.delete_endpoint(&other.id, &doomed.id).await.unwrap(),
        "not through another app"
    );
    assert!(store.delete_endpoint(&app.id, &doomed.id).await.unwrap());

    assert_eq!(
        store.endpoint_by_key(&app.id, &doomed.id).await.unwrap(),
        None
    );
    assert_eq!(store.delivery_for(&msg.id, &doomed.id).await.unwrap(), None);
    assert!(store
        .delivery_for(&msg.id, &kept.id)
        .await
        .unwrap()
        .is_some());
    let filter = |endpoint_id: &str| AttemptFilter {
        endpoint_id: Some(endpoint_id.to_owned()),
        ..Default::default()
    };
    assert!(store
        .list_attempts(&app.id, &filter(&doomed.id), &asc(10))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .list_attempts(&app.id, &filter(&kept.id), &asc(10))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .message_by_key(&app.id, &msg.id)
            .await
            .unwrap()
            .is_some(),
        "the message stays"
    );

    assert!(!store.delete_endpoint(&app.id, &doomed.id).await.unwrap());
}

pub async fn endpoint_stats_count_deliveries_by_status_within_the_window(store: DynStore) {
    let app = new_app(&store).await;
    let ep = new_endpoint(&store, &app.id, |_| {}).await;
    let other = new_endpoint(&store, &app.id, |_| {}).await;
    let t0 = now() - secs(3600);
    // Deliveries at t0, t0+1s, ... with the given statuses.
    let statuses = [
        MessageStatus::Success,
        MessageStatus::Success,
        MessageStatus::Fail,
        MessageStatus::Pending,
        MessageStatus::Sending,
        MessageStatus::Canceled,
    ];
    for (i, status) in statuses.into_iter().enumerate() {
        let at = t0 + secs(i as i64);
        let (msg, deliveries) = send(&store, &app.id, "user.created", |m| m.created_at = at).await;
        let mine = deliveries
            .iter()
            .find(|d| d.endpoint_id == ep.id)
            .expect("delivered to ep");
        store
            .upsert_delivery(&Delivery {
                status,
                ..mine.clone()
            })
            .await
            .unwrap();
        assert_eq!(msg.created_at, at);
    }

    let all = store
        .endpoint_stats(&app.id, &ep.id, None, None)
        .await
        .unwrap();
    assert_eq!(
        all,
        EndpointStats {
            success: 2,
            pending: 1,
            sending: 1,
            fail: 1,
            canceled: 1
        }
    );

    // [t0+1s, t0+4s) holds the second success, the failure and the pending one.
    let window = store
        .endpoint_stats(&app.id, &ep.id, Some(t0 + secs(1)), Some(t0 + secs(4)))
        .await
        .unwrap();
    assert_eq!(
        window,
        EndpointStats {
            success: 1,
            pending: 1,
            sending: 0,
            fail: 1,
            canceled: 0
        }
    );

    let since = store
        .endpoint_stats(&app.id, &ep.id, Some(t0 + secs(4)), None)
        .await
        .unwrap();
    assert_eq!(
        since,
        EndpointStats {
            sending: 1,
            canceled: 1,
            ..Default::default()
        }
    );

    // The other endpoint's deliveries were left pending.
    let others = store
        .endpoint_stats(&app.id, &other.id, None, None)
        .await
        .unwrap();
    assert_eq!(
        others,
        EndpointStats {
            pending: 6,
            ..Default::default()
        }
    );
    // And no app sees another's endpoint.
    let stranger = new_app(&store).await;
    assert_eq!(
        store
            .endpoint_stats(&stranger.id, &ep.id, None, None)
            .await
            .unwrap(),
        EndpointStats::default()
    );
}

pub async fn failing_clock_starts_once_and_stops_on_demand(store: DynStore) {
    let app = new_app(&store).await;
    let ep = new_endpoint(&store, &app.id, |_| {}).await;
    let t0 = now();
    let started = store.endpoint_failing_since(&ep.id, t0).await.unwrap();
    assert_eq!(started, t0);
    let later = t0 + secs(60);
    assert_eq!(
        store.endpoint_failing_since(&ep.id, later).await.unwrap(),
        t0,
        "a running clock keeps its start"
    );
    store
        .set_endpoint_failing_since(&ep.id, None)
        .await
        .unwrap();
    assert_eq!(
        store.endpoint_failing_since(&ep.id, later).await.unwrap(),
        later,
        "a stopped clock restarts"
    );
    assert!(matches!(
        store.endpoint_failing_since("ep_missing", t0).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn disabling_reports_whether_it_changed_anything(store: DynStore) {
    let app = new_app(&store).await;
    let ep = new_endpoint(&store, &app.id, |e| e.disabled = false).await;
    assert!(store
        .disable_endpoint(&app.id, &ep.id, now())
        .await
        .unwrap());
    assert!(
        !store
            .disable_endpoint(&app.id, &ep.id, now())
            .await
            .unwrap(),
        "already disabled"
    );
    let got = store
        .endpoint_by_key(&app.id, &ep.id)
        .await
        .unwrap()
        .unwrap();
    assert!(got.disabled);
    let other = new_app(&store).await;
    let foreign = new_endpoint(&store, &other.id, |e| e.disabled = false).await;
    assert!(
        !store
            .disable_endpoint(&app.id, &foreign.id, now())
            .await
            .unwrap(),
        "only within its app"
    );
}

pub async fn reenabling_an_endpoint_stops_its_failing_clock(store: DynStore) {
    let app = new_app(&store).await;
    let ep = new_endpoint(&store, &app.id, |e| e.disabled = false).await;
    let t0 = now();
    store.endpoint_failing_since(&ep.id, t0).await.unwrap();
    store.disable_endpoint(&app.id, &ep.id, t0).await.unwrap();
    let mut disabled = store
        .endpoint_by_key(&app.id, &ep.id)
        .await
        .unwrap()
        .unwrap();
    // An update that keeps it disabled keeps the clock.
    disabled.description = "still off".into();
    store.update_endpoint(&disabled).await.unwrap();
    assert_eq!(
        store
            .endpoint_failing_since(&ep.id, t0 + secs(5))
            .await
            .unwrap(),
        t0
    );
    let mut enabled = disabled.clone();
    enabled.disabled = false;
    store.update_endpoint(&enabled).await.unwrap();
    let later = t0 + secs(10);
    assert_eq!(
        store.endpoint_failing_since(&ep.id, later).await.unwrap(),
        later,
        "re-enabling starts afresh"
    );
    assert_eq!(
        store
            .endpoint_by_key(&app.id, &ep.id)
            .await
            .unwrap()
            .unwrap()
            .description,
        "still off"
    );
}

/// What both lookups say of `key` in `app_id`, which must agree.
async fn looked_up(
    store: &DynStore,
    app_id: &str,
    key: &str,
) -> Option<hookd_core::model::Endpoint> {
    let fresh = store.endpoint_by_key(app_id, key).await.unwrap();
    let cached = store.endpoint_by_key_cached(app_id, key).await.unwrap();
    assert_eq!(
        fresh.as_ref(),
        cached.as_deref(),
        "endpoint_by_key and endpoint_by_key_cached disagree on {key}"
    );
    fresh
}

/// A read after any endpoint write through the same store sees it, even when
/// the endpoint was read before (the delivery step's lookups may be cached).
pub async fn endpoint_reads_follow_every_write(store: DynStore) {
    let app = new_app(&store).await;
    let ep = new_endpoint(&store, &app.id, |e| e.uid = Some("one".to_owned())).await;
    assert_eq!(looked_up(&store, &app.id, "one").await, Some(ep.clone()));
    assert_eq!(looked_up(&store, &app.id, &ep.id).await, Some(ep.clone()));

    let mut moved = ep.clone();
    moved.uid = Some("two".to_owned());
    moved.url = "https://elsewhere.example/in".to_owned();
    moved.updated_at = now() + secs(1);
    store.update_endpoint(&moved).await.unwrap();
    assert_eq!(looked_up(&store, &app.id, "one").await, None);
    assert_eq!(looked_up(&store, &app.id, "two").await, Some(moved.clone()));
    assert_eq!(
        looked_up(&store, &app.id, &ep.id).await,
        Some(moved.clone())
    );

    assert!(store
        .disable_endpoint(&app.id, &ep.id, now())
        .await
        .unwrap());
    assert!(
        looked_up(&store, &app.id, &ep.id)
            .await
            .expect("still there")
            .disabled
    );

    assert!(store.delete_endpoint(&app.id, &ep.id).await.unwrap());
    assert_eq!(looked_up(&store, &app.id, &ep.id).await, None);
    assert_eq!(looked_up(&store, &app.id, "two").await, None);

    // An endpoint of another app is not found under this one's id.
    let other = new_app(&store).await;
    let theirs = new_endpoint(&store, &other.id, |_| {}).await;
    assert_eq!(
        looked_up(&store, &other.id, &theirs.id).await,
        Some(theirs.clone())
    );
    assert_eq!(looked_up(&store, &app.id, &theirs.id).await, None);
}
