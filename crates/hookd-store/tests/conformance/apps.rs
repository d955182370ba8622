//! Applications: round trips, uid lookups and clashes, pages, and deletion
//! cascading to everything under an app.

use hookd_core::model::{
    Application, Attempt, Delivery, Endpoint, Message, MessageStatus, TokenScope,
};
use hookd_core::{new_id, IdKind};
use hookd_store::{AttemptFilter, StoreError, TokenRecord};

use super::{app_named, asc, new_app, new_endpoint, now, record, send, sorted, walk, DynStore};

pub async fn apps_round_trip_and_are_found_by_id_or_uid(store: DynStore) {
    let app = Application {
        uid: Some("customer-1".to_owned()),
        throttle_rate: Some(25),
        metadata: [("plan".to_owned(), "pro".to_owned())].into(),
        ..app_named("Customer One")
    };
    store.create_app(&app).await.unwrap();

    assert_eq!(store.app_by_key(&app.id).await.unwrap(), Some(app.clone()));
    assert_eq!(store.app_by_key("customer-1").await.unwrap(), Some(app));
    assert_eq!(store.app_by_key("customer-2").await.unwrap(), None);
    assert_eq!(store.app_by_key(&new_id(IdKind::App)).await.unwrap(), None);
}

pub async fn duplicate_app_uid_is_a_conflict(store: DynStore) {
    let first = Application {
        uid: Some("dup".to_owned()),
        ..app_named("a")
    };
    store.create_app(&first).await.unwrap();
    let second = Application {
        uid: Some("dup".to_owned()),
        ..app_named("b")
    };
    match store.create_app(&second).await {
        Err(StoreError::Conflict(text)) => assert!(text.contains("uid"), "{text}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Apps without a uid never clash with each other.
    store.create_app(&app_named("c")).await.unwrap();
    store.create_app(&app_named("d")).await.unwrap();
}

pub async fn updating_an_app_replaces_it(store: DynStore) {
    let app = new_app(&store).await;
    let taken = Application {
        uid: Some("taken".to_owned()),
        ..app_named("other")
    };
    store.create_app(&taken).await.unwrap();

    let changed = Application {
        uid: Some("renamed".to_owned()),
        name: "Renamed".to_owned(),
        throttle_rate: Some(3),
        metadata: [("k".to_owned(), "v".to_owned())].into(),
        updated_at: now() + super::secs(1),
        ..app.clone()
    };
    store.update_app(&changed).await.unwrap();
    assert_eq!(
        store.app_by_key(&app.id).await.unwrap(),
        Some(changed.clone())
    );
    assert_eq!(
        store.app_by_key("renamed").await.unwrap(),
        Some(changed.clone())
    );

    let clash = Application {
        uid: Some("taken".to_owned()),
        ..changed
    };
    assert!(matches!(
        store.update_app(&clash).await,
        Err(StoreError::Conflict(_))
    ));
    let missing = app_named("ghost");
    assert!(matches!(
        store.update_app(&missing).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn pages_do_not_overlap_and_cover_everything(store: DynStore) {
    let mut ids = Vec::new();
    for i in 0..7 {
        let app = app_named(&format!("app {i}"));
        store.create_app(&app).await.unwrap();
        ids.push(app.id);
    }
    let ascending = sorted(ids);
    let mut descending = ascending.clone();
    descending.reverse();

    for limit in [1, 3, 7, 50] {
        let fwd = walk(
            limit,
            false,
            |p| {
                let s = store.clone();
                async move { s.list_apps(&p).await }
            },
            |a| a.id.clone(),
        )
        .await;
        assert_eq!(fwd, ascending, "ascending pages of {limit}");
        let back = walk(
            limit,
            true,
            |p| {
                let s = store.clone();
                async move { s.list_apps(&p).await }
            },
            |a| a.id.clone(),
        )
        .await;
        assert_eq!(back, descending, "descending pages of {limit}");
    }

    // A cursor from the middle returns only what lies strictly beyond it.
    let mut page = asc(2);
    page.after = Some(ascending[2].clone());
    let beyond: Vec<_> = store
        .list_apps(&page)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(beyond, ascending[3..5].to_vec());
}

/// Gives `app` an endpoint, a message delivered to it, a failed attempt and a
/// token; returns what was made.
async fn populate(
    store: &DynStore,
    app: &Application,
) -> (Endpoint, Message, Delivery, Attempt, String) {
    let ep = new_endpoint(store, &app.id, |_| {}).await;
    let (msg, deliveries) = send(store, &app.id, "user.created", |_| {}).await;
    let attempt = record(store, &deliveries[0], MessageStatus::Fail, 500).await;
    let hash = format!("hash-{}", app.id);
    let token = TokenRecord {
        id: new_id(IdKind::Token),
        hash: hash.clone(),
        scope: TokenScope::App(app.id.clone()),
        read_only: false,
        created_at: now(),
        expires_at: None,
    };
    store.insert_token(&token).await.unwrap();
    (ep, msg, deliveries[0].clone(), attempt, hash)
}

pub async fn deleting_an_app_removes_its_endpoints_and_messages(store: DynStore) {
    let app = new_app(&store).await;
    let keep = new_app(&store).await;
    let (ep, msg, delivery, attempt, hash) = populate(&store, &app).await;
    let (k_ep, k_msg, k_delivery, k_attempt, k_hash) = populate(&store, &keep).await;

    assert!(store.delete_app(&app.id).await.unwrap());

    assert_eq!(store.app_by_key(&app.id).await.unwrap(), None);
    assert_eq!(store.endpoint_by_key(&app.id, &ep.id).await.unwrap(), None);
    assert_eq!(store.message_by_key(&app.id, &msg.id).await.unwrap(), None);
    assert_eq!(store.delivery(&delivery.id).await.unwrap(), None);
    assert_eq!(
        store.attempt(&app.id, &msg.id, &attempt.id).await.unwrap(),
        None
    );
    assert_eq!(store.find_token(&hash).await.unwrap(), None);
    assert!(store
        .list_attempts(&app.id, &AttemptFilter::default(), &asc(10))
        .await
        .unwrap()
        .is_empty());

    // The other app is untouched.
    assert!(store.app_by_key(&keep.id).await.unwrap().is_some());
    assert!(store
        .endpoint_by_key(&keep.id, &k_ep.id)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .message_by_key(&keep.id, &k_msg.id)
        .await
        .unwrap()
        .is_some());
    assert!(store.delivery(&k_delivery.id).await.unwrap().is_some());
    assert!(store
        .attempt(&keep.id, &k_msg.id, &k_attempt.id)
        .await
        .unwrap()
        .is_some());
    assert!(store.find_token(&k_hash).await.unwrap().is_some());

    assert!(
        !store.delete_app(&app.id).await.unwrap(),
        "a second delete finds nothing"
    );
}

/// What both lookups say of `key`, which must agree.
async fn looked_up(store: &DynStore, key: &str) -> Option<Application> {
    let fresh = store.app_by_key(key).await.unwrap();
    let cached = store.app_by_key_cached(key).await.unwrap();
    assert_eq!(
        fresh, cached,
        "app_by_key and app_by_key_cached disagree on {key}"
    );
    fresh
}

/// A read after any app write through the same store sees it, even when the
/// app was read before (a backend may cache apps).
pub async fn app_reads_follow_every_write(store: DynStore) {
    let app = Application {
        uid: Some("before".to_owned()),
        ..app_named("cached")
    };
    store.create_app(&app).await.unwrap();
    assert_eq!(looked_up(&store, "before").await, Some(app.clone()));
    assert_eq!(looked_up(&store, &app.id).await, Some(app.clone()));

    let renamed = Application {
        uid: Some("after".to_owned()),
        name: "renamed".to_owned(),
        ..app.clone()
    };
    store.update_app(&renamed).await.unwrap();
    assert_eq!(looked_up(&store, "before").await, None);
    assert_eq!(looked_up(&store, "after").await, Some(renamed.clone()));
    assert_eq!(looked_up(&store, &app.id).await, Some(renamed));

    // The old uid is free again for a new app.
    let second = Application {
        uid: Some("before".to_owned()),
        ..app_named("second")
    };
    store.create_app(&second).await.unwrap();
    assert_eq!(looked_up(&store, "before").await, Some(second));

    assert!(store.delete_app(&app.id).await.unwrap());
    assert_eq!(looked_up(&store, &app.id).await, None);
    assert_eq!(looked_up(&store, "after").await, None);
}
