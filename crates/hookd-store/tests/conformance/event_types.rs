//! Event types: keyed and ordered by name, archived ones hidden unless asked for.

use hookd_core::model::EventType;
use hookd_store::StoreError;

use super::{asc, now, secs, walk, DynStore};

fn event_type(name: &str) -> EventType {
    let t = now();
    EventType {
        name: name.to_owned(),
        description: format!("{name} happened"),
        archived: false,
        deprecated: false,
        schemas: None,
        group_name: None,
        feature_flags: None,
        created_at: t,
        updated_at: t,
    }
}

pub async fn event_types_round_trip_with_all_their_fields(store: DynStore) {
    let full = EventType {
        deprecated: true,
        schemas: Some(serde_json::json!({ "1": { "type": "object", "properties": {} } })),
        group_name: Some("user".to_owned()),
        feature_flags: Some(vec!["beta".to_owned()]),
        ..event_type("user.created")
    };
    let bare = event_type("user.deleted");
    store.create_event_type(&full).await.unwrap();
    store.create_event_type(&bare).await.unwrap();
    assert_eq!(store.event_type("user.created").await.unwrap(), Some(full));
    assert_eq!(store.event_type("user.deleted").await.unwrap(), Some(bare));
    assert_eq!(store.event_type("user.updated").await.unwrap(), None);
}

pub async fn duplicate_event_type_name_is_a_conflict(store: DynStore) {
    store
        .create_event_type(&event_type("invoice.paid"))
        .await
        .unwrap();
    match store.create_event_type(&event_type("invoice.paid")).await {
        Err(StoreError::Conflict(text)) => assert!(text.contains("name"), "{text}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

pub async fn event_types_list_in_name_order_across_pages(store: DynStore) {
    // Created out of order on purpose: the listing orders by name, not by age.
    let names = ["b.two", "a.one", "d.four", "c.three", "e.five"];
    for name in names {
        store.create_event_type(&event_type(name)).await.unwrap();
    }
    let mut expected: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    expected.sort();

    let fwd = walk(
        2,
        false,
        |p| {
            let s = store.clone();
            async move { s.list_event_types(&p, false).await }
        },
        |e| e.name.clone(),
    )
    .await;
    assert_eq!(fwd, expected);

    let back = walk(
        2,
        true,
        |p| {
            let s = store.clone();
            async move { s.list_event_types(&p, false).await }
        },
        |e| e.name.clone(),
    )
    .await;
    expected.reverse();
    assert_eq!(back, expected);
}

pub async fn archived_event_types_are_listed_only_on_request(store: DynStore) {
    store
        .create_event_type(&event_type("live.one"))
        .await
        .unwrap();
    store
        .create_event_type(&EventType {
            archived: true,
            ..event_type("old.one")
        })
        .await
        .unwrap();

    let names = |archived: bool| {
        let store = store.clone();
        async move {
            store
                .list_event_types(&asc(50), archived)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names(false).await, vec!["live.one"]);
    assert_eq!(names(true).await, vec!["live.one", "old.one"]);
}

pub async fn updating_and_deleting_event_types(store: DynStore) {
    let original = event_type("order.shipped");
    store.create_event_type(&original).await.unwrap();
    let changed = EventType {
        description: "shipped to the customer".to_owned(),
        archived: true,
        schemas: Some(serde_json::json!({ "1": {} })),
        updated_at: original.updated_at + secs(5),
        ..original.clone()
    };
    store.update_event_type(&changed).await.unwrap();
    assert_eq!(
        store.event_type("order.shipped").await.unwrap(),
        Some(changed)
    );

    let missing = event_type("order.lost");
    assert!(matches!(
        store.update_event_type(&missing).await,
        Err(StoreError::NotFound)
    ));

    assert!(store.delete_event_type("order.shipped").await.unwrap());
    assert_eq!(store.event_type("order.shipped").await.unwrap(), None);
    assert!(!store.delete_event_type("order.shipped").await.unwrap());
}
